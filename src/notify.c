/* notify.c — sd_notify wrappers and the STATUS= summary line. */
#include "rolesync/notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>
#include <time.h>

/* Skip formatting when there is no one to tell; sd_notify would return 0 anyway. */
static int have_socket(void)
{
    const char *s = getenv("NOTIFY_SOCKET");
    return s && *s;
}

int notify_ready(void)
{
    return have_socket() ? sd_notify(0, "READY=1") : 0;
}

int notify_ready_status(const char *status_line)
{
    if (!have_socket())
        return 0;
    if (!status_line)
        return sd_notify(0, "READY=1");
    return sd_notifyf(0, "READY=1\nSTATUS=%s", status_line);
}

int notify_reloading(void)
{
    struct timespec ts;

    if (!have_socket())
        return 0;
    /* MONOTONIC_USEC lets systemd tell this reload from an earlier one (notify-reload). */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
                      (unsigned long long)ts.tv_sec * 1000000ULL +
                          (unsigned long long)ts.tv_nsec / 1000ULL);
}

int notify_stopping(void)
{
    return have_socket() ? sd_notify(0, "STOPPING=1") : 0;
}

int notify_status(const char *status_line)
{
    return have_socket() && status_line ? sd_notifyf(0, "STATUS=%s", status_line) : 0;
}

int notify_watchdog(void)
{
    return have_socket() ? sd_notify(0, "WATCHDOG=1") : 0;
}

uint64_t notify_watchdog_interval_ms(void)
{
    uint64_t usec = 0;

    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return 0;
    usec /= 2;
    return usec < 1000 ? 1 : usec / 1000;
}

char *notify_status_line(const struct status *st, char *buf, size_t n)
{
    size_t in_sync = 0, running = 0, retry = 0, refused = 0, failed = 0;
    int64_t next = 0;
    size_t off = 0;

    for (size_t i = 0; i < st->njobs; i++) {
        const struct status_job *j = st->jobs[i];
        in_sync += j->in_sync;
        running += j->state == STATUS_JOB_RUNNING;
        retry += j->state == STATUS_JOB_WAITING_RETRY;
        refused += j->state == STATUS_JOB_REFUSED;
        failed += j->state == STATUS_JOB_FAILED;
        if (j->next_run_at_ms > 0 && (next == 0 || j->next_run_at_ms < next))
            next = j->next_run_at_ms;
    }
#define APPEND(...)                                                                                \
    do {                                                                                           \
        if (off < n) {                                                                             \
            int w_ = snprintf(buf + off, n - off, __VA_ARGS__);                                    \
            off = w_ < 0 ? n : off + (size_t)w_;                                                   \
        }                                                                                          \
    } while (0)
    if (n == 0)
        return buf;
    buf[0] = '\0';
    APPEND("%zu job%s, %zu in sync", st->njobs, st->njobs == 1 ? "" : "s", in_sync);
    if (running)
        APPEND(", %zu running", running);
    if (retry)
        APPEND(", %zu waiting to retry", retry);
    if (refused)
        APPEND(", %zu refused", refused);
    if (failed)
        APPEND(", %zu failed", failed);
    if (!st->last_reload_ok)
        APPEND(", last reload failed");
    if (next > 0) {
        time_t t = (time_t)(next / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        APPEND(", next run %02d:%02d:%02d", tm.tm_hour, tm.tm_min, tm.tm_sec);
    }
#undef APPEND
    return buf;
}
