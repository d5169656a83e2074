/* backoff.c — retry classification and full-jitter exponential backoff (pure). */
#include "rolesync/backoff.h"

#include <ctype.h>
#include <string.h>

#include <curl/curl.h>

uint64_t backoff_splitmix64(void *state)
{
    uint64_t *s = state;
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

bool backoff_may_retry(const struct backoff_policy *p, unsigned attempts_made)
{
    return attempts_made < p->max_attempts;
}

uint64_t backoff_ceiling_ms(const struct backoff_policy *p, unsigned attempts_made)
{
    uint64_t c = p->initial_delay_ms;
    unsigned n = attempts_made ? attempts_made - 1 : 0;

    /* Double until the cap; stop early so a large attempt count can never overflow. */
    while (n-- > 0 && c < p->max_delay_ms)
        c = c > UINT64_MAX / 2 ? UINT64_MAX : c * 2;
    return c < p->max_delay_ms ? c : p->max_delay_ms;
}

uint64_t backoff_delay_ms(const struct backoff_policy *p, unsigned attempts_made,
                          uint64_t retry_after_ms, backoff_rng_fn rng, void *rng_ctx)
{
    uint64_t ceiling = backoff_ceiling_ms(p, attempts_made);
    uint64_t d = 0;

    /* Uniform over [0, ceiling]; the modulo bias is below 2^-40 for any sane ceiling. */
    if (ceiling > 0)
        d = ceiling == UINT64_MAX ? rng(rng_ctx) : rng(rng_ctx) % (ceiling + 1);
    if (retry_after_ms > BACKOFF_RETRY_AFTER_CAP_MS)
        retry_after_ms = BACKOFF_RETRY_AFTER_CAP_MS;
    return d > retry_after_ms ? d : retry_after_ms;
}

bool backoff_status_retryable(long status)
{
    switch (status) {
    case 408:
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
        return true;
    default:
        return false;
    }
}

int backoff_parse_retry_after(const char *value, int64_t now_epoch_ms, uint64_t *out_ms)
{
    const char *s = value, *e;
    uint64_t ms;

    if (!value)
        return -1;
    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        e--;
    if (e == s)
        return -1;

    if (isdigit((unsigned char)*s)) {
        uint64_t secs = 0;
        for (const char *p = s; p < e; p++) {
            if (!isdigit((unsigned char)*p))
                goto date; /* "12abc": maybe a date after all; let the date parser judge */
            if (secs < BACKOFF_RETRY_AFTER_CAP_MS)
                secs = secs * 10 + (uint64_t)(*p - '0');
        }
        ms = secs * 1000;
        goto done;
    }

date:;
    /* curl_getdate() understands all three HTTP-date forms and ignores the locale. It needs a
     * NUL-terminated string; the trimmed value is bounded by the header line. */
    char buf[128];
    size_t n = (size_t)(e - s);
    if (n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    time_t t = curl_getdate(buf, NULL);
    if (t == (time_t)-1)
        return -1;
    int64_t when_ms = (int64_t)t * 1000;
    ms = when_ms > now_epoch_ms ? (uint64_t)(when_ms - now_epoch_ms) : 0;

done:
    *out_ms = ms < BACKOFF_RETRY_AFTER_CAP_MS ? ms : BACKOFF_RETRY_AFTER_CAP_MS;
    return 0;
}
