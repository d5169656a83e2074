/* log.c — stderr event logger with journald priority prefixes. */
#include "rolesync/log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Process-wide logger settings: written by main at start-up and on reload only. */
static enum log_level g_level = LOG_LVL_INFO;
static int g_journald; /* 1: `<N>` prefix, no timestamp */
static FILE *g_stream; /* NULL means stderr */

static int stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
        return 0;
    if (fstat(STDERR_FILENO, &st) != 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(enum log_level level)
{
    g_level = level;
    g_journald = stderr_is_journal();
}

void log_set_level(enum log_level level)
{
    g_level = level;
}

enum log_level log_get_level(void)
{
    return g_level;
}

void log_set_stream(FILE *f, int journald)
{
    g_stream = f;
    g_journald = journald;
}

int log_level_parse(const char *s, enum log_level *out)
{
    static const char *names[] = {"error", "warning", "info", "debug"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

const char *log_level_name(enum log_level level)
{
    switch (level) {
    case LOG_LVL_ERROR:
        return "ERROR";
    case LOG_LVL_WARNING:
        return "WARNING";
    case LOG_LVL_INFO:
        return "INFO";
    default:
        return "DEBUG";
    }
}

static int syslog_prio(enum log_level level)
{
    switch (level) {
    case LOG_LVL_ERROR:
        return 3;
    case LOG_LVL_WARNING:
        return 4;
    case LOG_LVL_INFO:
        return 6;
    default:
        return 7;
    }
}

void log_event(enum log_level level, const char *job, const char *fmt, ...)
{
    char line[4096];
    size_t off = 0;
    va_list ap;
    int n;

    if (level > g_level)
        return;
    if (g_journald) {
        n = snprintf(line, sizeof line, "<%d>", syslog_prio(level));
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000);
    }
    off = (size_t)n;
    if (job) {
        char q[256];
        n = snprintf(line + off, sizeof line - off, "%s job=%s ", log_level_name(level),
                     log_quote(q, sizeof q, job));
    } else {
        n = snprintf(line + off, sizeof line - off, "%s ", log_level_name(level));
    }
    if (n > 0 && (size_t)n < sizeof line - off)
        off += (size_t)n;
    va_start(ap, fmt);
    n = vsnprintf(line + off, sizeof line - off, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    off = ((size_t)n < sizeof line - off) ? off + (size_t)n : sizeof line - 1;
    /* One event, one line: fold any newline a caller let through. */
    for (size_t i = 0; i < off; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[off++] = '\n';
    fwrite(line, 1, off, g_stream ? g_stream : stderr);
    fflush(g_stream ? g_stream : stderr);
}

const char *log_quote(char *buf, size_t n, const char *s)
{
    size_t o = 0;
    int bare = *s != '\0';

    if (n == 0)
        return buf;
    for (const char *p = s; *p; p++)
        if (*p == ' ' || *p == '"' || *p == '=' || *p == '\\' || (unsigned char)*p < 0x20)
            bare = 0;
    if (bare) {
        snprintf(buf, n, "%s", s);
        return buf;
    }
    if (n < 3) {
        buf[0] = '\0';
        return buf;
    }
    buf[o++] = '"';
    for (const char *p = s; *p && o + 3 < n; p++) {
        char c = *p;
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = c;
        } else if (c == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else if ((unsigned char)c < 0x20) {
            buf[o++] = '?';
        } else {
            buf[o++] = c;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}
