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

/* Case folding for the contract's case-insensitive comparisons (role names, emails, globs):
 * every character is replaced by its simple lowercase mapping (towlower in the C.UTF-8 locale,
 * which glibc always has; ASCII only should that locale be missing), so "Équipe" and
 * "équipe" are one name. Bytes that are not UTF-8 stay as they are. A folded text can be
 * shorter or longer than the original (at most 3/2 as long).
 *   util_fold_len   bytes of the folded text (without the NUL);
 *   util_fold_into  writes it to dst, which has util_fold_len(s) + 1 bytes; returns the length;
 *   util_strdup_fold  malloc'd copy, caller frees;
 *   util_fold_cmp   <0, 0, >0 comparing the folded texts (0: equal ignoring case). */
size_t util_fold_len(const char *s);
size_t util_fold_into(char *dst, const char *s);
char *util_strdup_fold(const char *s);
int util_fold_cmp(const char *a, const char *b);

/* Case-insensitive glob (folded as above): '*' any run, '?' one character, '[...]' not
 * supported (matched literally). Used for role and user scope. */
bool util_glob_match(const char *pattern, const char *s);

/* Read a whole file of at most `max` bytes into a malloc'd, NUL-terminated buffer (*len
 * without the NUL). Returns NULL with errno ENOENT (err "") when the file does not exist, else
 * NULL with a message in err (unreadable, or larger than max). */
char *util_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen);

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
