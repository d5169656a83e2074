/* notify.h — systemd readiness, reload, stop, status and watchdog notifications.
 *
 * A thin layer over libsystemd's sd_notify() (product.md section 7, anchors.md section 4). Every
 * call is a no-op returning 0 when $NOTIFY_SOCKET is not set (not under systemd, or the tests);
 * the return value is advisory (sd_notify's: > 0 sent, 0 no socket, < 0 -errno) and callers may
 * ignore it, as the sd_notify man page recommends. Nothing here keeps state: libsystemd reads the
 * environment on each call.
 *
 * Sequences the daemon uses:
 *   start:  notify_ready_status(line)       READY=1 + STATUS=
 *   SIGHUP: notify_reloading() ... notify_ready_status(line)
 *           (RELOADING=1 with MONOTONIC_USEC=, then READY=1: what Type=notify-reload expects,
 *           and harmless with the Type=notify of systemd 252)
 *   cycle:  notify_status(line)             STATUS= after every job start and end
 *   stop:   notify_stopping()               STOPPING=1
 *   timer:  notify_watchdog() every notify_watchdog_interval_ms() (half of $WATCHDOG_USEC),
 *           driven by a uv timer so a stuck loop stops pinging and systemd restarts it.
 */
#ifndef ROLESYNC_NOTIFY_H
#define ROLESYNC_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "rolesync/status.h"

int notify_ready(void);
int notify_ready_status(const char *status_line); /* status_line may be NULL */
int notify_reloading(void);
int notify_stopping(void);
int notify_status(const char *status_line);
int notify_watchdog(void);

/* Half of $WATCHDOG_USEC in milliseconds (at least 1) when systemd asks this process for
 * watchdog pings (sd_watchdog_enabled), else 0. */
uint64_t notify_watchdog_interval_ms(void);

/* One-line summary for STATUS=: "3 jobs, 3 in sync, next run 05:10:07" (UTC, like the status
 * file), with ", N running", ", N waiting to retry", ", N refused", ", N failed" and
 * ", last reload failed" inserted when they apply, and no "next run" when none is scheduled.
 * Returns buf. */
char *notify_status_line(const struct status *st, char *buf, size_t n);

#endif
