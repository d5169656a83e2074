/* status.h — the daemon's status model, its status.json file and the `--status` printer
 * (product.md section 6).
 *
 * The scheduler and the job cycle record what happens in a struct status (one per daemon, hung
 * off the loop context); status_write() renders it as JSON and replaces {state_dir}/status.json
 * atomically (temp file in the same directory, write, fsync, fchmod 0640, rename, fsync of the
 * directory), so a reader sees either the old file or the new one, never a partial one.
 * metrics.h renders the same model as Prometheus text.
 *
 * JSON shape (schema_version 1) is the one in product.md section 6, plus product.md 4c's
 * last_run.cycle and the job's in_sync_since, plus one documented
 * addition: each job carries "reason" (string or null), set when the job is `failed`
 * (e.g. "authentication failed: 403 ...") or `refused` (the max_deletes guard's message), null
 * otherwise; and product.md 4c's last_run.refusal (with "approved", see struct status_run). Other
 * choices the spec leaves open:
 *  - "last_run" is null until a job's first run has finished. While a run is in progress the
 *    job's "state" is "running" and "last_run" still describes the previous, finished run, so
 *    its "result" is always meaningful.
 *  - "not_converging" entries are objects { "kind", "name", "reason" }: kind is what did not
 *    stick ("role_definition", "assignment", ...), name identifies it (role name, or
 *    "user -> role"), reason is the explanation. Not capped (bounded by the plan size).
 *  - "errors" keeps the first STATUS_MAX_ERRORS entries of a run; "failed_ops" is the exact
 *    number of failed operations (status_run.error_count counts every recorded error, kept
 *    for logs). An error's "status" is the HTTP status, or null when no response was received
 *    (transport failure); "correlation_id" is null when the server sent none.
 *  - Timestamps are epoch milliseconds in memory (0 = unknown) and RFC 3339 UTC seconds with
 *    'Z' in the file, null when unknown.
 *  - A run the daemon's stop cut short keeps its own result (partial when something was
 *    applied; writes not sent count as pending, not as failed_ops) and an error "interrupted
 *    by shutdown"; the job is then "idle" with that reason, and consecutive_failures is left
 *    as it was: no failure of the tenant (daemon.c record()).
 *
 * Text that may come from a server (error fields, not_converging, reasons, the reload error) is
 * copied with invalid UTF-8 bytes and control characters (but the reload error's newlines)
 * replaced by '?' and cut at 1 KiB (16 KiB for the reload
 * error) with a trailing "...", so the file stays valid, bounded JSON whatever a server sends.
 *
 * Ownership: struct status owns every string and job it holds (copied on the way in), released
 * by status_free(). Pointers to jobs stay valid until that job is removed or the status freed.
 * Nothing in here may hold a secret: callers pass server messages and paths, never tokens.
 */
#ifndef ROLESYNC_STATUS_H
#define ROLESYNC_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "rolesync/journal.h"

#define STATUS_SCHEMA_VERSION 1
#define STATUS_MAX_ERRORS 20
#define STATUS_FILE_NAME "status.json"
#define STATUS_FILE_MODE 0640

enum status_job_state {
    STATUS_JOB_IDLE = 0,
    STATUS_JOB_RUNNING,
    STATUS_JOB_WAITING_RETRY,
    STATUS_JOB_REFUSED,
    STATUS_JOB_FAILED,
    STATUS_JOB_STANDBY, /* coordination (product.md 7a): held elsewhere, or etcd unavailable */
};

enum status_result {
    STATUS_RESULT_OK = 0,
    STATUS_RESULT_PARTIAL,
    STATUS_RESULT_FAILED,
    STATUS_RESULT_REFUSED,
    STATUS_RESULT_DRY_RUN,
    STATUS_RESULT_COUNT
};

/* Changes of one run (applied, or planned for a dry run), or cumulative totals. */
struct status_changes {
    uint64_t roles_created;
    uint64_t roles_updated;
    uint64_t roles_deleted;
    uint64_t assignments_added;   /* (user, role) pairs */
    uint64_t assignments_removed; /* (user, role) pairs */
};

/* One failed operation or request, as shown under "errors". */
struct status_error {
    char *op;             /* what the daemon was doing: "create_role", "add_assignments", ... */
    char *method;         /* HTTP method, or NULL */
    char *path;           /* request path (no host, no query secrets), or NULL */
    int http_status;      /* 0 = no HTTP response (rendered as null) */
    char *message;        /* server's message or transport error text */
    char *correlation_id; /* server's correlation id, or NULL */
};

struct status_not_converging {
    char *kind;   /* "role_definition", "assignment", ... */
    char *name;   /* role name, or "user -> role" */
    char *reason; /* why it does not stick */
};

/* One run of a job: filled while it runs, then becomes the job's last_run. */
struct status_run {
    char cycle[JOURNAL_CYCLE_LEN]; /* the cycle's id (journal.h), "" = none (rendered null) */
    int64_t started_at_ms;         /* epoch ms */
    int64_t finished_at_ms;        /* epoch ms; 0 while running */
    enum status_result result;
    bool dry_run;
    struct status_changes changes;
    uint64_t pending;               /* changes still to do (planned but not applied) */
    uint64_t failed_ops;            /* operations that failed after all retries; exact */
    uint64_t requests;              /* HTTP requests sent for this run */
    uint64_t retries;               /* of which retries */
    uint64_t unmatched_source_only; /* in-scope users found in the source only */
    uint64_t unmatched_target_only; /* ... in the target only */
    struct status_not_converging *not_converging;
    size_t n_not_converging, cap_not_converging;
    struct status_error errors[STATUS_MAX_ERRORS];
    size_t nerrors;       /* entries in errors[], <= STATUS_MAX_ERRORS */
    uint64_t error_count; /* every error recorded, including those not kept */
    /* Approved plans (product.md 4c). A run refused by the guard renders "refusal":
     * { "deletions", "max_deletes", "fingerprint", "not_approved" } (null otherwise):
     * not_approved counts the deletions outside the approval the run was given (0 without
     * one). A run applied under an approval renders "approved": its fingerprint (else null). */
    bool refused;
    uint64_t refusal_deletions;
    uint64_t refusal_max_deletes;
    uint64_t refusal_not_approved;
    char refusal_fingerprint[80]; /* "sha256:..." (approve.h APPROVE_FP_LEN), or "" */
    char approved_fingerprint[80];
    /* Coordination (product.md 7a): why the cycle stopped writing before its end -- the
     * fence found the job no longer held here ("abandoned": the text, else null). */
    char abandoned[256];
};

struct status_job {
    char *name;
    enum status_job_state state;
    bool in_sync; /* false until a run shows the target matches */
    /* product.md 4c: the start of the first of the consecutive in-sync runs up to the last
     * one; 0 = not in sync (rendered null). Kept across a restart when the first run of the
     * new process is in sync too (status_prev_carry). */
    int64_t in_sync_since_ms;
    char *reason;              /* why the job is failed/refused, or NULL */
    bool running;              /* `current` is in use */
    struct status_run current; /* the run in progress */
    bool has_last_run;
    struct status_run last_run;    /* last finished run (valid when has_last_run) */
    int64_t last_success_at_ms;    /* end of the last ok/dry_run run; 0 = never */
    unsigned consecutive_failures; /* partial/failed runs since the last success */
    int64_t next_run_at_ms;        /* 0 = not scheduled */
    bool held;                     /* coordination: this instance holds the job's key */
    char *holder;                  /* coordination: the member holding it, or NULL */
    /* Cumulative since the daemon started (metrics counters). */
    struct status_changes changes_total; /* applied changes only (dry runs excluded) */
    uint64_t runs_total[STATUS_RESULT_COUNT];
};

struct status {
    pid_t pid;
    char *version;
    int64_t started_at_ms;
    char *config_file;
    int64_t config_loaded_at_ms;
    int64_t last_reload_at_ms; /* 0 = never reloaded */
    bool last_reload_ok;       /* true until a reload fails */
    char *last_reload_error;   /* NULL unless the last reload failed */
    /* coordination (product.md 7a): rendered as daemon.coordination {backend, member,
     * holding[]} and a "holder" on every job, only when coord_backend is set */
    char *coord_backend;      /* "etcd", or NULL without coordination */
    char *coord_member;       /* this instance's member name */
    struct status_job **jobs; /* config order */
    size_t njobs, cap_jobs;
};

/* --- model ---------------------------------------------------------------------------------- */

/* Start a model for this process (pid = getpid()). Strings are copied. */
void status_init(struct status *st, const char *version, const char *config_file, int64_t now_ms);
void status_free(struct status *st);

/* A reload finished. ok: config_file/config_loaded_at move to the new config and the error is
 * cleared; not ok: `error` (copied; all messages, newline-separated) is recorded. */
void status_reload_done(struct status *st, int64_t at_ms, bool ok, const char *config_file,
                        const char *error);

struct status_job *status_job_find(const struct status *st, const char *name);
/* Append a job (or return the existing one with that name). */
struct status_job *status_job_add(struct status *st, const char *name);
/* Remove a job (no-op if unknown); pointers to it become invalid. */
void status_job_remove(struct status *st, const char *name);
/* Make the job list exactly `names`, in that order (after a reload): existing jobs keep their
 * history, new ones start empty, the rest are removed. */
void status_jobs_sync(struct status *st, const char *const *names, size_t n);

/* A run starts: state becomes running and a fresh `current` run is returned for the caller to
 * fill (counts, status_run_add_error, status_run_add_not_converging). */
struct status_run *status_job_run_begin(struct status_job *job, int64_t now_ms, bool dry_run);
/* The run ended with `result`: it becomes last_run, and the job's state, in_sync,
 * last_success_at, consecutive_failures and totals follow from the result:
 *   ok, dry_run -> idle, success, in sync iff pending == 0 (not_converging items do not count:
 *                  product.md 4.9 says the rest of the job counts as in sync);
 *   partial, failed -> waiting_retry, not in sync, consecutive_failures + 1;
 *   refused  -> refused, not in sync (not counted as a failure: retrying sooner cannot help).
 * in_sync_since follows in_sync: kept while runs stay in sync (set to this run's start when
 * it was 0), 0 when this one is not.
 * The reason is cleared; set it (and e.g. state failed) afterwards with status_job_set_state. */
void status_job_run_end(struct status_job *job, int64_t now_ms, enum status_result result);
/* Override the state (copying `reason`, which may be NULL). */
void status_job_set_state(struct status_job *job, enum status_job_state state, const char *reason);
void status_job_set_next_run(struct status_job *job, int64_t at_ms);
/* Coordination on (backend and member copied) or off (backend NULL). */
void status_set_coordination(struct status *st, const char *backend, const char *member);
/* Who holds the job (copied; NULL = nobody known) and whether it is this instance. */
void status_job_set_holder(struct status_job *job, bool held, const char *holder);

/* Record an error (strings copied; any may be NULL). Kept while fewer than STATUS_MAX_ERRORS
 * are held; error_count counts all. */
void status_run_add_error(struct status_run *run, const char *op, const char *method,
                          const char *path, int http_status, const char *message,
                          const char *correlation_id);
void status_run_add_not_converging(struct status_run *run, const char *kind, const char *name,
                                   const char *reason);

const char *status_job_state_name(enum status_job_state s);
const char *status_result_name(enum status_result r);

/* --- files ---------------------------------------------------------------------------------- */

/* The JSON document (pretty-printed, trailing newline). Caller frees. */
char *status_render_json(const struct status *st);

/* Replace {state_dir}/status.json atomically. Returns 0, or -1 with a message in err (and a
 * warning logged): the daemon keeps running and tries again at the next event. */
int status_write(const struct status *st, const char *state_dir, char *err, size_t errlen);

/* Replace `path` with `len` bytes of `data` atomically, with permissions `mode`: a temp file
 * ".NAME.XXXXXX" in the same directory (so the rename is atomic and a textfile collector that
 * reads *.prom never sees it), write, fsync, fchmod, rename, fsync of the directory. The temp
 * file is removed on failure. Returns 0 or -1 with a message in err. Used by metrics too. */
int status_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, char *err,
                             size_t errlen);

/* Create the state directory (and its parents, mode 0750) when missing. Returns 0, or -1 with
 * a message in err (also when the path exists and is not a directory). */
int status_ensure_dir(const char *path, char *err, size_t errlen);

/* The pid of another live rolesyncd process that wrote {state_dir}/status.json (its
 * daemon.pid is alive and named rolesyncd in /proc), else 0: `--once` leaves a running
 * daemon's file alone. */
pid_t status_file_owner(const char *state_dir);

/* `rolesyncd --status`: read {state_dir}/status.json and print it for humans. Returns 0, or -1
 * with a message in err when the file is missing or not a status file. */
int status_print_human(const char *state_dir, FILE *out, char *err, size_t errlen);

/* --- carrying jobs over from an earlier file ---------------------------------------------
 * `--once -j A` writes a status file of its own; job B, which it does not run, keeps what the
 * last file recorded for it instead of disappearing. status_prev_read() reads
 * {state_dir}/status.json (NULL when it is missing, unreadable or of another schema);
 * status_prev_add_job() adds job `name` to `st` as recorded there -- state (a recorded
 * "running" becomes "idle": nothing runs it now), in_sync, reason, last run with its errors
 * and not-converging items, last success, consecutive failures; next_run_at is dropped (no
 * daemon schedules it) -- and returns false, adding nothing, when the file has no such job.
 * Text is copied through the same checks as live data. */
struct status_prev;
struct status_prev *status_prev_read(const char *state_dir);
bool status_prev_add_job(struct status *st, const struct status_prev *prev, const char *name);
/* A job this process runs (daemon start, --once) carries over from the earlier file only the
 * start of its in-sync stretch: when the file shows job `name` in sync since T, the job's
 * in_sync_since_ms becomes T (in_sync stays false until a run says so), so a first run that
 * is in sync continues the stretch instead of restarting it. No-op for a missing job. */
void status_prev_carry(struct status_job *job, const struct status_prev *prev);
void status_prev_free(struct status_prev *prev);
/* Same from a file path with an explicit "now" for relative times (tests). */
int status_print_human_file(const char *path, FILE *out, int64_t now_ms, char *err, size_t errlen);

#endif
