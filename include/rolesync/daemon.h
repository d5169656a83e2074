/* daemon.h — rolesyncd as a long-running service: scheduling, signals, reload, status file,
 * metrics, systemd notifications (product.md sections 6 and 7).
 *
 * One struct daemon holds everything (no global state), so two daemons can live on one loop.
 *
 * Generations. A loaded config and the HTTP engine tenants built from it (tenants.h) form a
 * generation with a reference count: the daemon holds one on the current generation and every
 * running cycle holds one on the generation it started with. SIGHUP parses and validates the new
 * file completely, builds its tenants, and only then swaps the current generation; the old one
 * is freed when its last cycle ends, so a running cycle never sees its config or tenants vanish.
 * One HTTP engine serves every generation. Jobs that share a tenant share its engine tenant (its
 * connection and rate limits) within a generation.
 *
 * Jobs are identified by name across reloads. A job that keeps its name keeps its schedule, its
 * retry state and its not-converging memory (diff.h) and uses the new config from its next cycle
 * (the memory is reset when its source or target tenant's identity — api, base_url, tenant_id —
 * changes, since remembered writes were made to another tenant; a shorter interval brings a
 * waiting job's next run forward). A removed job stops: a running cycle of it finishes, its
 * result is logged but not recorded or scheduled. New jobs start staggered by 2 s.
 *
 * Schedule. Job i's first cycle starts at i * 2 s. After a cycle ends, the next starts `interval`
 * later with up to ±10 % jitter (measured from the end of one cycle to the start of the next, so
 * a job never overlaps itself), except:
 *   - partial / failed (read failed, or operations failed after the engine's retries): state
 *     waiting_retry, retried after 30 s, then 60 s, 120 s ... but never later than `interval`;
 *   - authentication failure (sync_result.auth_failed): state failed with the reason, retried at
 *     the normal interval — a credential fixed on the platform recovers without a restart (a
 *     changed secret file needs a reload); the state stays failed until a cycle gets further;
 *   - refused by max_deletes: state refused, next cycle at the interval (sync.c logs how to
 *     proceed: --once --force-deletes, or raise max_deletes).
 * Dry-run jobs plan every cycle; the first 100 planned changes are logged at info.
 *
 * Signals (uv_signal_t, so handlers run on the loop):
 *   SIGHUP   reload as above. RELOADING=1 (with MONOTONIC_USEC) is sent when the reload starts
 *            and READY=1 when it is over, whether the new file was accepted or not (systemd's
 *            notify-reload waits for READY=1 either way); a rejected file is logged error by
 *            error and recorded under last_reload.
 *   SIGUSR1  "sync now": every job that is not running starts a cycle at once; a running job is
 *            not started twice and is not queued again (its cycle reads fresh data anyway).
 *   SIGUSR2  "approvals waiting" (product.md 4c; approve.h): every job with an approval in
 *            {state_dir}/approvals starts a cycle at once (a running one right after its
 *            cycle ends). Whatever starts a cycle, the cycle takes the job's waiting approval
 *            (sync_opts.approve_fp, with the refused set recorded under it) and removes it when
 *            it ends, whatever the result (but a cycle the daemon's stop cut short):
 *            an approval is used once. Every refused plan's
 *            deletion set is recorded (sync_record_refusal) for `rolesyncd --approve`.
 *   SIGTERM, SIGINT  stop: no new cycle starts, requests in flight may finish for up to 10 s
 *            (http_engine_drain), queued ones are cancelled; then the status file is written,
 *            STOPPING=1 sent, every handle closed and daemon_run() returns 0. A cycle cut short
 *            by the stop is recorded as result failed with an error "interrupted by shutdown",
 *            state idle, and does not count as a consecutive failure.
 *
 * Status. status.json (and metrics_file when set) is rewritten atomically at start, at every
 * cycle start and end, at every reload and at exit; each write also sends STATUS= with the
 * one-line summary. HTTP counters in the metrics are kept per tenant name across reloads (the
 * counts of retired generations are folded into running totals).
 *
 * Watchdog. When systemd asks for it ($WATCHDOG_USEC), WATCHDOG=1 is sent every half of that
 * interval from a uv timer.
 */
#ifndef ROLESYNC_DAEMON_H
#define ROLESYNC_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <uv.h>

#include "rolesync/config.h"

/* Grace period for requests in flight at stop (product.md section 7). */
#define DAEMON_DRAIN_MS 10000u
/* Stagger between the first cycles of jobs started together. */
#define DAEMON_STAGGER_MS 2000u
/* First retry delay after a failed cycle (doubling, capped at the job's interval). */
#define DAEMON_RETRY_MS 30000u
/* Planned changes of a dry-run cycle logged one per line; the rest is counted. */
#define DAEMON_PLAN_LOG_LINES 100u

struct daemon;

struct daemon_opts {
    const char *config_path; /* file re-read on reload; copied */
    bool signals;            /* install SIGHUP/SIGUSR1/SIGUSR2/SIGTERM/SIGINT handlers */
};

/* Create a daemon on `loop`, taking ownership of `cfg` (freed on failure too). Creates the
 * state directory (mode 0750) if it is missing. Returns NULL with a message in err when the
 * state directory, the HTTP engine or a tenant cannot be set up. */
struct daemon *daemon_new(uv_loop_t *loop, struct cfg_config *cfg, const struct daemon_opts *o,
                          char *err, size_t errlen);

/* Write the first status file (failure is fatal: -1 with a message in err), send READY=1 and
 * schedule every job's first cycle. */
int daemon_start(struct daemon *d, char *err, size_t errlen);

/* What the signals do, callable directly (tests, embedding). */
void daemon_reload(struct daemon *d);
void daemon_sync_now(struct daemon *d);
void daemon_run_approved(struct daemon *d);
void daemon_stop(struct daemon *d);

/* After uv_run() returned (every handle of the daemon closed): the exit code (0 after a clean
 * stop) and freeing the daemon. */
int daemon_exit_code(const struct daemon *d);
void daemon_free(struct daemon *d);

/* `rolesyncd --approve FP [--job NAME]` without --once (product.md 4c), the client side of
 * SIGUSR2: the jobs selected (--job NAME/TARGET, or NAME for all its targets; none: every job)
 * whose refusals recorded in state_dir carry `fp` (normalised) get an approval file, and the
 * daemon that owns {state_dir}/status.json (status_file_owner) gets SIGUSR2. Returns 0 when
 * recorded and signalled (a line per job on `out`); 1 with a message on stderr for an unknown
 * job name, a fingerprint no selected job's refusals carry, or no running daemon (then
 * nothing is recorded). */
int daemon_approve(const struct cfg_config *cfg, const char *const *jobs, size_t njobs,
                   const char *fp, FILE *out);

/* The whole daemon mode for main(): a private loop, daemon_new + daemon_start with signals,
 * run until stopped, close the loop. Takes ownership of cfg. Returns the process exit code:
 * 0 after SIGTERM/SIGINT, 1 when start-up failed (message on stderr). */
int daemon_run(struct cfg_config *cfg, const char *config_path);

#endif
