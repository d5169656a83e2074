/* util.c — checked allocation, strings, globs and clocks. */
#include "rolesync/util.h"

#include <ctype.h>
#include <errno.h>
#include <locale.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wctype.h>

static void oom(void)
{
    fputs("<2>FATAL out of memory\n", stderr);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom();
    return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (!p)
        oom();
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom();
    return q;
}

void util_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    size_t c = *cap;
    if (need <= c)
        return;
    if (c < 8)
        c = 8;
    while (c < need)
        c *= 2;
    *p = xrealloc(*p, c * elem);
    *cap = c;
}

char *xstrdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = xmalloc(n);
    memcpy(d, s, n);
    return d;
}

char *xstrndup(const char *s, size_t n)
{
    char *d = xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        oom();
    va_end(ap);
    return s;
}

void util_free_secret(char *s)
{
    if (!s)
        return;
    volatile char *v = s;
    while (*v)
        *v++ = 0;
    free(s);
}

/* ---- case folding --------------------------------------------------------------------------*/

/* glibc's C.UTF-8 ctype, opened once: immutable after that, so no state to protect. */
static locale_t utf8_locale;
static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;

static void utf8_open(void)
{
    utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

#define NOT_UTF8 0x110000u /* + byte: a byte that starts no valid sequence, kept as it is */

/* The next character of *p (advanced past it), folded. */
/* ASCII A-Z -> a-z by arithmetic: every key of a cycle (10^5 emails) passes here, and tolower()
 * is a call through the locale tables per byte (and locale-dependent, which keys must not be). */
static inline unsigned char ascii_lower(unsigned char c)
{
    return (unsigned char)(c + (((unsigned)(c - 'A') < 26u) << 5));
}

static uint32_t fold_next(const unsigned char **p)
{
    const unsigned char *s = *p;
    uint32_t cp;
    size_t n;
    if (s[0] < 0x80) {
        *p = s + 1;
        return ascii_lower(s[0]);
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2, cp = s[0] & 0x1f;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3, cp = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4, cp = s[0] & 0x07;
    else
        n = 0, cp = 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            n = 0;
            break;
        }
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (n == 0 || (n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
        *p = s + 1;
        return NOT_UTF8 + s[0];
    }
    *p = s + n;
    pthread_once(&utf8_once, utf8_open);
    if (utf8_locale != (locale_t)0) {
        wint_t l = towlower_l((wint_t)cp, utf8_locale);
        if (l != WEOF && l < 0x110000 && !(l >= 0xd800 && l <= 0xdfff))
            cp = (uint32_t)l;
    }
    return cp;
}

/* UTF-8 of a folded character into out (4 bytes room); returns the bytes written. */
static size_t fold_put(char *out, uint32_t cp)
{
    unsigned char *o = (unsigned char *)out;
    if (cp >= NOT_UTF8) {
        o[0] = (unsigned char)(cp - NOT_UTF8);
        return 1;
    }
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Eight ASCII bytes at a time (no byte >= 0x80): the common case of every key. */
#define FOLD_ONES 0x0101010101010101ull
#define FOLD_HIGH 0x8080808080808080ull

size_t util_fold_len(const char *s)
{
    const size_t len = strlen(s);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & FOLD_HIGH)
            break;
    }
    size_t n = i;
    char tmp[4];
    for (const unsigned char *p = (const unsigned char *)s + i; *p;) {
        if (*p < 0x80) {
            p++;
            n++;
        } else {
            n += fold_put(tmp, fold_next(&p));
        }
    }
    return n;
}

size_t util_fold_into(char *dst, const char *s)
{
    const size_t len = strlen(s);
    size_t n = 0;
    for (; n + 8 <= len; n += 8) {
        uint64_t w;
        memcpy(&w, s + n, 8);
        if (w & FOLD_HIGH)
            break;
        /* A byte's high bit is free (all < 0x80): set it where the byte is >= 'A' and clear it
         * where it is > 'Z', then move what is left to bit 5, the case bit. */
        uint64_t upper = (w + FOLD_ONES * (0x80 - 'A')) & ~(w + FOLD_ONES * (0x80 - 'Z' - 1));
        w |= (upper & FOLD_HIGH) >> 2;
        memcpy(dst + n, &w, 8);
    }
    for (const unsigned char *p = (const unsigned char *)s + n; *p;) {
        if (*p < 0x80)
            dst[n++] = (char)ascii_lower(*p++);
        else
            n += fold_put(dst + n, fold_next(&p));
    }
    dst[n] = '\0';
    return n;
}

char *util_strdup_fold(const char *s)
{
    char *d = xmalloc(util_fold_len(s) + 1);
    util_fold_into(d, s);
    return d;
}

int util_fold_cmp(const char *a, const char *b)
{
    const unsigned char *p = (const unsigned char *)a, *q = (const unsigned char *)b;
    while (*p && *q) {
        uint32_t x = fold_next(&p), y = fold_next(&q);
        if (x != y)
            return x < y ? -1 : 1;
    }
    return *p ? 1 : *q ? -1 : 0;
}

bool util_glob_match(const char *pattern, const char *str)
{
    const unsigned char *p = (const unsigned char *)pattern, *s = (const unsigned char *)str;
    const unsigned char *star_p = NULL, *star_s = NULL;

    if (p[0] == '*' && p[1] == '\0')
        return true; /* the default scope, asked once per user and role */

    while (*s) {
        const unsigned char *pn = p, *sn = s;
        if (*p == '*') {
            star_p = ++p;
            star_s = s;
            continue;
        }
        uint32_t sc = fold_next(&sn);
        if (*p && (*p == '?' || fold_next(&pn) == sc)) {
            p = *p == '?' ? p + 1 : pn;
            s = sn;
        } else if (star_p) {
            /* let the star take one more character */
            p = star_p;
            const unsigned char *t = star_s;
            fold_next(&t);
            s = star_s = t;
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

int64_t util_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t util_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

char *util_rfc3339(char *buf, size_t n, int64_t epoch_ms)
{
    time_t t = (time_t)(epoch_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

char *util_pct_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = xmalloc(n * 3 + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

int util_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool util_utf8_valid(const char *str, size_t n, size_t *bad)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < n) {
        /* Fast path: response bodies are mostly ASCII. */
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if ((w & 0x8080808080808080ull) == 0) {
                i += 8;
                continue;
            }
        }
        unsigned c = s[i];
        size_t len;
        unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0)
                lo = 0xA0; /* overlong */
            else if (c == 0xED)
                hi = 0x9F; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0)
                lo = 0x90; /* overlong */
            else if (c == 0xF4)
                hi = 0x8F; /* above U+10FFFF */
        } else {
            break; /* C0, C1, F5..FF, stray continuation byte */
        }
        if (i + len > n || s[i + 1] < lo || s[i + 1] > hi)
            break;
        size_t k = 2;
        while (k < len && s[i + k] >= 0x80 && s[i + k] <= 0xBF)
            k++;
        if (k < len)
            break;
        i += len;
    }
    if (i < n) {
        if (bad)
            *bad = i;
        return false;
    }
    return true;
}

char *util_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        if (e != ENOENT)
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(e));
        errno = e;
        return NULL;
    }
    char *buf = xmalloc(max + 2);
    size_t n = fread(buf, 1, max + 1, f);
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad || n > max) {
        if (bad)
            snprintf(err, errlen, "cannot read %s", path);
        else
            snprintf(err, errlen, "%s is larger than %zu bytes; ignored", path, max);
        free(buf);
        errno = EIO;
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}
