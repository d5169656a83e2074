/* util.h — small helpers shared by every module: checked allocation, strings, globs, time.
 *
 * Allocation failure is fatal (the process logs and aborts): a daemon that cannot allocate a few
 * bytes cannot do anything useful, and checking every strdup would hide the real logic.
 */
#ifndef ROLESYNC_UTIL_H
#define ROLESYNC_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UTIL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define UTIL_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
/* Grow *p (an array of *cap elements of `elem` bytes) so it holds at least `need`. */
void util_grow(void **p, size_t *cap, size_t need, size_t elem);
char *xstrdup(const char *s); /* NULL in, NULL out */
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Overwrite then free a secret so it does not linger in freed heap memory. */
void util_free_secret(char *s);

/* Case-insensitive (ASCII) glob: '*' any run, '?' one character, '[...]' not supported
 * (matched literally). Used for role and user scope. */
bool util_glob_match(const char *pattern, const char *s);

/* ASCII lower-case copy, caller frees. */
char *util_strdup_lower(const char *s);

/* Wall clock in milliseconds since the epoch, and a monotonic clock in milliseconds. */
int64_t util_now_ms(void);
uint64_t util_mono_ms(void);

/* RFC 3339 UTC with a literal 'Z' ("2026-11-22T05:00:00Z") into buf (>= 21 bytes). */
char *util_rfc3339(char *buf, size_t n, int64_t epoch_ms);

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates (U+D800..DFFF), nothing above
 * U+10FFFF. Returns true when all n bytes are valid; *bad (if non-NULL) gets the offset of the
 * first invalid byte otherwise. */
bool util_utf8_valid(const char *s, size_t n, size_t *bad);

/* Percent-encode everything but RFC 3986 unreserved characters; caller frees. Ids from
 * responses go through this before they enter a URL path. */
char *util_pct_encode(const char *s);
/* Value of one hex digit (either case), or -1. */
int util_hex_value(char c);

#endif
