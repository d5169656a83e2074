/* coord.h — several instances share the jobs through leases on etcd (product.md 7a).
 *
 * An instance (a "member", named HOST:PID) keeps one etcd lease of lease_ttl, renewed every
 * third of it, and registers {prefix}members/{member} under it. A job runs only on the member
 * holding {prefix}jobs/{job} (value: the member's name) under its live lease, taken with a
 * put-if-absent transaction. Every third of the TTL the coordinator reads the prefix, computes
 * who should hold what (coord_assign: no member above ceil(jobs / members), stable), takes the
 * free jobs assigned to it and gives back (compare-and-delete) the ones assigned elsewhere once
 * they are not running. A dead member's keys vanish with its lease, so its jobs are taken
 * within lease_ttl plus one poll.
 *
 * Held means: etcd confirmed the key under our lease, and the lease is alive by our own clock
 * (last keep-alive sent + its TTL, less a third of the TTL so a write has time to leave). When
 * etcd cannot be reached or refuses, the instance is unhealthy: it starts no cycle (the daemon
 * shows every job `standby` with the reason) and keeps trying, with backoff when it has no
 * lease; once its lease is past, it holds nothing. coord_fence() is the check right before a
 * write batch: a linearizable transaction comparing the key's create_revision and lease.
 *
 * Life cycle: coord_new -> (coord_set_jobs whenever the config changes) -> coord_shutdown
 * (revokes the lease so others take over at once; calls back when etcd answered or after
 * COORD_SHUTDOWN_MS) -> coord_free. Every callback comes from the loop. The coordinator owns
 * its etcd client and timers (freed in their close callbacks); it borrows the cfg_coord only
 * during coord_new.
 */
#ifndef ROLESYNC_COORD_H
#define ROLESYNC_COORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "rolesync/config.h"
#include "rolesync/http.h"

#define COORD_SHUTDOWN_MS 2000u

/* Who should hold each job. nmembers >= 1 members (sorted, indexes 0..n-1); holder[j] is the
 * member holding job j now, -1 when the job is free, -2 when it is held under a lease that is
 * not a member's (left alone). Writes out[j]: the member that should hold it (-2 where holder
 * is -2). Each member gets floor or ceil of the jobs it can get; members that hold more keep
 * the extra ones first, and held jobs stay where they are while the holder is within its
 * share (no needless moves). Pure. */
void coord_assign(size_t nmembers, size_t njobs, const int *holder, int *out);

struct coord;

/* Called whenever what this member holds, or its health, changes. */
typedef void (*coord_change_cb)(void *arg);
/* Whether the daemon is running a cycle of `job` (a running job is not given back). */
typedef bool (*coord_busy_cb)(const char *job, void *arg);

struct coord *coord_new(uv_loop_t *loop, struct http_engine *e, const struct cfg_coord *cfg,
                        coord_change_cb on_change, coord_busy_cb busy, void *arg, char *err,
                        size_t errlen);
/* For `--once --coordinate` (product.md 7a): a coordinator that is no member -- the daemons
 * neither count it when they spread jobs nor take the keys it holds (coord_assign's "not a
 * member's") -- and that takes the free keys of `jobs` (copied) as soon as it has a lease,
 * keeping them, renewed, until coord_shutdown. Jobs held elsewhere are left to their holder.
 * Fencing as for a member. No change callback: poll coord_job_settled / coord_job_runnable. */
struct coord *coord_new_oneshot(uv_loop_t *loop, struct http_engine *e, const struct cfg_coord *cfg,
                                const char *const *jobs, size_t njobs, char *err, size_t errlen);
/* Whether etcd has answered for `job`: healthy, and its key is either held here or named
 * another holder (coord_job_holder) -- a one-time run waits for this before it starts. */
bool coord_job_settled(const struct coord *c, const char *job);

/* The jobs of the current config (copied). */
void coord_set_jobs(struct coord *c, const char *const *names, size_t n);

const char *coord_member(const struct coord *c);
/* The job may run here now: held and healthy. */
bool coord_job_runnable(const struct coord *c, const char *job);
/* Held by this member (the status file's holding[]). */
bool coord_job_held(const struct coord *c, const char *job);
/* The member etcd says holds the job, or NULL (free or unknown). Valid until the next loop
 * turn. */
const char *coord_job_holder(const struct coord *c, const char *job);
/* NULL when healthy, else why not ("etcd unreachable: ..."). */
const char *coord_problem(const struct coord *c);

/* The fence (sync.h sync_fence_fn): `done` says whether `job` is held at this moment. */
void coord_fence(const char *job, void (*done)(bool held, const char *reason, void *done_arg),
                 void *done_arg, void *coord);

/* The per-request part of the fence (sync.h sync_write_gate_fn): true when `job` is runnable
 * here at this instant by our own clock (held, healthy, the lease alive for a third of its TTL
 * more, so the write leaves well before it could expire), with the header line
 * "X-Rolesyncd-Fence: job=J; member=M; lease=HEX" (J and M percent-encoded) written into
 * header[0..hn) -- what a target's request log can check against etcd's key history. false
 * with the reason in why[0..wn) otherwise. No I/O. */
bool coord_write_gate(const struct coord *c, const char *job, char *header, size_t hn, char *why,
                      size_t wn);

/* A fence answer of "no" with `reason`, from the loop, without a coordinator. */
void coord_fence_refuse(uv_loop_t *loop, const char *reason,
                        void (*done)(bool held, const char *reason, void *done_arg),
                        void *done_arg);

/* Stop: hold nothing (every fence and write gate says no from now on), then revoke the lease
 * once the fenced writes already on the wire (http_engine_gated_in_flight) are answered;
 * `cb` once etcd answered the revoke, or after COORD_SHUTDOWN_MS -- when writes are still in
 * flight by then, the lease is not revoked but left to expire, so no other instance takes the
 * jobs while they may still land. */
void coord_shutdown(struct coord *c, void (*cb)(void *arg), void *arg);
/* Free (after coord_shutdown, or at once when shutting down is moot). No callback after it. */
void coord_free(struct coord *c);

#endif
