/* log.h — one-line event logging to stderr (product.md section 6).
 *
 * Every line is `LEVEL job=NAME msg key=value ...`. When stderr is the systemd journal
 * ($JOURNAL_STREAM names stderr's device:inode) the line starts with the `<N>` syslog priority
 * prefix and carries no timestamp (journald stamps it); otherwise it starts with an RFC 3339 UTC
 * timestamp. The logger's level and mode are process-wide (set once by main), like OpenBSD's
 * log.c; everything else in the program is per-context.
 *
 * Values that may contain spaces or quotes go through log_quote() so each line stays parseable.
 * Secrets and tokens must never be passed to these functions.
 */
#ifndef ROLESYNC_LOG_H
#define ROLESYNC_LOG_H

#include <stddef.h>
#include <stdio.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARNING = 1, LOG_LVL_INFO = 2, LOG_LVL_DEBUG = 3 };

/* Detect journald on stderr and set the threshold. Safe to call again (e.g. after reload). */
void log_init(enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Redirect output (tests); NULL restores stderr. `journald` forces the prefix mode. */
void log_set_stream(FILE *f, int journald);

/* Parse "error|warning|info|debug"; returns 0 or -1. */
int log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level level);

/* Log one event. `job` may be NULL (no job= field). `fmt` yields "msg key=value ...". */
void log_event(enum log_level level, const char *job, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(job, ...) log_event(LOG_LVL_ERROR, job, __VA_ARGS__)
#define log_warning(job, ...) log_event(LOG_LVL_WARNING, job, __VA_ARGS__)
#define log_info(job, ...) log_event(LOG_LVL_INFO, job, __VA_ARGS__)
#define log_debug(job, ...) log_event(LOG_LVL_DEBUG, job, __VA_ARGS__)

/* Format `s` as a log value into buf: bare if it has no space, quote, '=' or control character,
 * else double-quoted with \" \\ \n escapes; truncated to fit. Returns buf. */
const char *log_quote(char *buf, size_t n, const char *s);

#endif
