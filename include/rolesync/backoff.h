/* backoff.h — retry policy: which failures are retried and how long to wait (product.md §5).
 *
 * Pure functions: no clock, no global random state. The caller injects the random source
 * (backoff_rng_fn) and, for HTTP dates, the current wall-clock time, so every schedule is
 * reproducible in tests.
 *
 * Delay ("full jitter", AWS Architecture Blog 2015; anchors.md §2.5):
 *     after attempt n (n >= 1 attempts made so far)
 *     delay = uniform_random[0, min(max_delay, initial_delay * 2^(n-1))]
 *     delay = max(delay, retry_after)            Retry-After is a floor, never shortened
 * Full jitter spreads clients that failed together; the cap keeps one request from waiting
 * longer than max_delay unless the server itself asked for more (Retry-After). A Retry-After
 * larger than BACKOFF_RETRY_AFTER_CAP_MS is clamped to it so one hostile header cannot park a
 * tenant for days.
 */
#ifndef ROLESYNC_BACKOFF_H
#define ROLESYNC_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

/* Longest Retry-After honoured (1 hour). */
#define BACKOFF_RETRY_AFTER_CAP_MS (3600u * 1000u)

struct backoff_policy {
    unsigned max_attempts;     /* attempts in total, including the first; >= 1 */
    uint64_t initial_delay_ms; /* cap of the first retry's delay */
    uint64_t max_delay_ms;     /* cap of every delay (Retry-After excepted) */
};

/* Uniform 64-bit random numbers; `ctx` is the caller's state. */
typedef uint64_t (*backoff_rng_fn)(void *ctx);

/* A small seeded generator (splitmix64) usable as a backoff_rng_fn with ctx = &state.
 * Not cryptographic; jitter only needs to decorrelate clients. */
uint64_t backoff_splitmix64(void *state /* uint64_t * */);

/* True when another attempt is allowed after `attempts_made` attempts. */
bool backoff_may_retry(const struct backoff_policy *p, unsigned attempts_made);

/* The exponential ceiling for the wait after `attempts_made` attempts (>= 1):
 * min(max_delay, initial_delay * 2^(attempts_made-1)), overflow-safe. */
uint64_t backoff_ceiling_ms(const struct backoff_policy *p, unsigned attempts_made);

/* The wait before the next attempt, see the banner. `retry_after_ms` 0 = none. */
uint64_t backoff_delay_ms(const struct backoff_policy *p, unsigned attempts_made,
                          uint64_t retry_after_ms, backoff_rng_fn rng, void *rng_ctx);

/* HTTP statuses worth retrying: 408, 429, 500, 502, 503, 504. */
bool backoff_status_retryable(long status);

/* Parse a Retry-After header value: delta-seconds ("120") or an HTTP-date (IMF-fixdate, RFC 850
 * or asctime form). `now_epoch_ms` is the current wall-clock time. Sets *out_ms to the wait
 * (0 for a date in the past), clamped to BACKOFF_RETRY_AFTER_CAP_MS. Returns 0, or -1 when the
 * value is neither form (then *out_ms is untouched). */
int backoff_parse_retry_after(const char *value, int64_t now_epoch_ms, uint64_t *out_ms);

#endif
