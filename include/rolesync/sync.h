/* sync.h — one cycle of one job: read both tenants, diff, plan, guard, apply, report.
 *
 * sync_start() runs the cycle asynchronously on the loop (product.md section 4):
 *   1. read the source and the target concurrently (provider fetch: first pages, then the rest);
 *   2. diff and plan (pure core), with the job's not-converging memory;
 *   3. refuse the whole cycle when the plan exceeds max_deletes (unless forced, or approved:
 *      its deletions a subset of an approved set, approve.h), with the fingerprint of the
 *      refused deletion set;
 *   4. dry run: render the plan and stop; otherwise apply it in three phases — role creates and
 *      updates, then assignment changes, then role deletions — each phase's requests submitted
 *      together (the HTTP engine enforces the tenant's concurrency and rate limits);
 *   5. log one info line per applied change and one summary line, and call back with a result
 *      that status.json and the exit code are made from; every applied (or failed) change is
 *      also a line of the change journal (sync_opts.journal), under the cycle's id.
 * A failed read stops the cycle before anything is written. A write whose role could not be
 * created is not sent (counted as failed). Nothing here retries: the HTTP engine already did,
 * and the next cycle starts from fresh reads.
 *
 * Ownership: the job, both tenants, the memory and the plan stream are borrowed and must outlive
 * the run; the result passed to the callback lives until the callback returns.
 */
#ifndef ROLESYNC_SYNC_H
#define ROLESYNC_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <uv.h>

#include "rolesync/approve.h"
#include "rolesync/config.h"
#include "rolesync/diff.h"
#include "rolesync/journal.h"
#include "rolesync/provider.h"
#include "rolesync/recent.h"
#include "rolesync/status.h"

#define SYNC_MAX_ERRORS 20

struct plan;         /* plan.h */
struct mdl_snapshot; /* model.h */

enum sync_outcome {
    SYNC_OK = 0,  /* plan applied (or nothing to do) */
    SYNC_PARTIAL, /* some writes failed after retries; the rest were applied */
    SYNC_FAILED,  /* a read failed, or every write failed: nothing (more) applied */
    SYNC_REFUSED, /* max_deletes guard: nothing written */
    SYNC_DRY_RUN, /* plan computed and reported, nothing written */
};

struct sync_error {
    char op[32]; /* "read source", "role create", "user roles set", ... */
    char method[8];
    char path[256];
    long status; /* 0: no reply */
    char message[512];
    char correlation_id[128];
};

/* A change the target accepts but does not keep (product.md section 4 point 9). */
struct sync_not_converging {
    const char *kind; /* "role_definition" or "assignment" (static) */
    char *name;       /* target role name, or the user's match key */
    char *reason;
};

struct sync_result {
    char cycle[JOURNAL_CYCLE_LEN]; /* this cycle's id (journal.h): in its log lines, its
                                      journal lines and status.json last_run.cycle */
    enum sync_outcome outcome;
    bool in_sync;     /* target equals the desired state (not-converging items aside) */
    bool auth_failed; /* credentials refused (401 after renewal, 403) */
    bool fenced;      /* a fence check (sync_opts.fence) said no: the rest was not sent */
    char reason[512]; /* one line for failed/refused cycles, else "" */
    /* applied changes ((user, role) pairs for assignments) */
    size_t roles_created, roles_updated, roles_deleted;
    size_t assignments_added, assignments_removed;
    /* planned changes (what the plan contains, applied or not): a dry run reports these */
    size_t planned_roles_created, planned_roles_updated, planned_roles_deleted;
    size_t planned_assignments_added, planned_assignments_removed;
    size_t pending;       /* changes planned but not applied (dry run, refused, failed) */
    size_t failed_ops;    /* write requests that failed */
    size_t cancelled_ops; /* writes not sent (or cut short) because the daemon stopped: they
                             stay pending, they did not fail */
    size_t deletions;     /* the guard's figure for this plan */
    unsigned max_deletes;
    uint64_t requests, retries; /* HTTP attempts to both tenants during the cycle */
    size_t unmatched_source_only, unmatched_target_only;
    struct sync_not_converging *not_converging;
    size_t nnot_converging;
    struct sync_error errors[SYNC_MAX_ERRORS];
    size_t nerrors;     /* entries in errors (<= SYNC_MAX_ERRORS) */
    size_t error_count; /* exact number of errors */
    /* approved plans (product.md 4c; approve.h) */
    char fingerprint[APPROVE_FP_LEN]; /* refused: its deletion set's fingerprint, else "" */
    struct approve_set *refused_set;  /* refused (or approval_unknown): that set, for the caller
                                         to record (sync_record_refusal); owned by the run,
                                         valid during the callback; else NULL */
    bool approved;                    /* over max_deletes, applied (or dry-run planned) under
                                         sync_opts.approve_fp, copied to `approval` */
    char approval[APPROVE_FP_LEN];
    bool approval_unknown; /* approve_fp names no recorded set and is not the fresh
                              plan's fingerprint: outcome failed, nothing written */
    size_t not_approved;   /* refused under an approval: deletions outside it */
};

struct sync_source;
/* Fencing (product.md 7a). Called right before each write batch (role creates and updates,
 * assignment changes, role deletions) with the job's name; the batch is sent only when `done`
 * comes back with held = true, from the loop (never from inside the fence call). held = false
 * abandons the cycle at once: nothing more is written, the result is `fenced` with `reason`
 * (copied). */
typedef void (*sync_fence_done_cb)(bool held, const char *reason, void *done_arg);
typedef void (*sync_fence_fn)(const char *job, sync_fence_done_cb done, void *done_arg,
                              void *fence_arg);
/* The fence's last word, asked synchronously right before each write request of a batch is
 * sent (its retries too; http_gate): a batch that outlives the job's lease -- a rate-limited
 * queue, a paused process -- stops at once. true: send it, with the header line written into
 * header[0..hn) ("" for none). false: the write and every later one of the cycle are not sent,
 * the cycle is abandoned as `fenced` with the text written into why[0..wn). */
typedef bool (*sync_write_gate_fn)(const char *job, char *header, size_t hn, char *why, size_t wn,
                                   void *fence_arg);

struct sync_opts {
    bool dry_run;                  /* job dry_run or --dry-run */
    bool force_deletes;            /* --force-deletes */
    FILE *plan_out;                /* when non-NULL the plan is rendered there (dry run, --once) */
    const char *config_file;       /* named in the advice a refusal logs; NULL = left out */
    struct recent_roles *recent;   /* roles created lately (recent.h), shared by every job of
                                      the process; NULL = none kept */
    struct sync_source *source;    /* a source read shared with other cycles (fan-out), or NULL:
                                      the cycle reads its source itself */
    sync_fence_fn fence;           /* NULL: writes are not fenced (no coordination) */
    sync_write_gate_fn write_gate; /* NULL: none; with `fence`, its per-request check */
    void *fence_arg;               /* for both */
    /* An approval (product.md 4c): the plan is applied over max_deletes only when its
     * deletions are a subset of `approved` (approve_new_items finds none new); without
     * `approved` (no set recorded under the fingerprint) only when the fresh deletion set's
     * fingerprint is approve_fp itself. Else it is refused again, the new deletions listed
     * on plan_out and in the log (or, with no set and another fingerprint, the cycle fails
     * with approval_unknown). Both borrowed; NULL approve_fp = no approval. */
    const char *approve_fp;
    struct approve_set *approved;
    /* Inspection (rolesyncd --explain, explain.h): when set, it is called once with the plan
     * right after plan_build -- the same reads, adaptation, diff and guard as any cycle -- and
     * the cycle then ends as a dry run: nothing rendered, logged as a report, or written.
     * Returning true takes the plan and both snapshots (the plan borrows them: plan_free it
     * first, then mdl_snapshot_free them); false leaves them to the cycle, which frees them
     * once the callback of sync_start returns. Not for a shared source (sync_opts.source). */
    bool (*inspect)(struct plan *p, struct mdl_snapshot *src, struct mdl_snapshot *tgt, void *arg);
    void *inspect_arg;
    /* The change journal (journal.h), shared by every job of the process; NULL = nothing
     * journaled. Only applied (or tried) writes are journaled: a dry run or a refused plan
     * writes no line. A deletion's "pending" line is fsync'd before its DELETE is sent, and the
     * cycle's lines before the callback runs. A journal that cannot be written is logged once
     * a cycle and never stops it. */
    struct journal *journal;
};

typedef void (*sync_done_cb)(const struct sync_result *r, void *arg);

/* Start one cycle. `src` and `tgt` are the job's tenants. Returns 0; the callback runs once,
 * from the loop. */
int sync_start(uv_loop_t *loop, const struct cfg_job *job, const struct prov_tenant *src,
               const struct prov_tenant *tgt, struct diff_memory *mem, const struct sync_opts *opts,
               sync_done_cb cb, void *arg);

/* Fan-out (product.md 4b.1): one source read for the cycles of several targets started
 * together. Create it, start each member with sync_start(..., opts.source = it), then
 * sync_source_release() it, all in one loop turn (before the loop runs): the first member
 * starts the read. The source's roles are listed once; the grants read are those any member
 * needs, once every member's target role listing is in (or its read ended); each member gets
 * the finished snapshot (as its own view: definitions are adapted per target) or the read's
 * error. A member whose target read fails takes no part and holds no one back. The read is
 * freed when the creator released it and the last member finished. Never shared across
 * cycles. */
struct sync_source *sync_source_new(const struct prov_tenant *src);
void sync_source_release(struct sync_source *ss); /* NULL is fine */

const char *sync_outcome_name(enum sync_outcome o); /* "ok", "partial", ... */

/* From a cycle's callback: record its refused deletion set (sync_result.refused_set) in
 * state_dir for a later --approve (approve_store_refused); a failure is logged, never fatal. */
void sync_record_refusal(const char *state_dir, const char *job, const struct sync_result *r);

/* ---- a finished cycle into status.h's model (daemon and --once share these) ---- */

/* The run's figures: changes (applied, or planned for a dry run), pending, failed_ops,
 * requests, retries, unmatched users, not_converging items and errors. */
void sync_status_fill(struct status_run *run, const struct sync_result *r);
/* The status result of an outcome. */
enum status_result sync_status_result(const struct sync_result *r);
/* After status_job_run_end(): the job's state beyond what the result implies — refused with
 * the guard's message; failed with the reason after refused credentials; after other failures
 * waiting_retry when another cycle will come (`will_retry`, the daemon), else failed. */
void sync_status_settle(struct status_job *sj, const struct sync_result *r, bool will_retry);

#endif
