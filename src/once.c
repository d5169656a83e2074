/* once.c — run selected jobs one time on a private loop, keep status.json (and the metrics
 * file) as the daemon would, and map results to exit codes. */
#include "rolesync/once.h"

#include <stdlib.h>
#include <string.h>

#include "rolesync/approve.h"
#include "rolesync/coord.h"
#include "rolesync/diff.h"
#include "rolesync/http.h"
#include "rolesync/journal.h"
#include "rolesync/log.h"
#include "rolesync/metrics.h"
#include "rolesync/status.h"
#include "rolesync/sync.h"
#include "rolesync/tenants.h"
#include "rolesync/util.h"

/* status.json of this run (product.md 6: rewritten at every job start and end). Holds the
 * jobs this run selected; nothing is written when a running daemon owns the file, and each file
 * stops being written after its first failure (logged once), so an unwritable state_dir costs
 * one warning, not one per job. */
struct once_status {
    struct status st;
    bool enabled, metrics;
    const struct cfg_config *cfg;
    const struct tnt_set *tenants;
};

static void status_save(struct once_status *os)
{
    char err[512];
    if (os->enabled && status_write(&os->st, os->cfg->state_dir, err, sizeof err) != 0)
        os->enabled = false; /* status_write logged the warning */
    if (os->metrics && os->tenants) {
        struct metrics_rows rows = {0};
        tnt_sets_metrics_rows(&os->tenants, 1, &rows);
        struct metrics_http http = metrics_rows_view(&rows);
        if (metrics_write(&os->st, &http, os->cfg->metrics_file, err, sizeof err) != 0)
            os->metrics = false; /* metrics_write logged the warning */
        metrics_rows_free(&rows);
    }
}

struct once_job {
    bool done;
    bool cli_dry_run; /* --dry-run given: pending changes are exit code 2 */
    int code;
    struct once_status *os;
    struct status_job *sj;
    const char *name;             /* the job's name */
    struct approve_set *approved; /* --approve: the set recorded under the fingerprint, or NULL */
};

/* Severity order of exit codes: a fatal error outranks a refusal, which outranks failed
 * operations, which outrank pending changes. */
static int rank(int code)
{
    static const int order[] = {0, 4, 1, 2, 3}; /* index: code, value: rank */
    return code >= 0 && code <= 4 ? order[code] : 4;
}

static int worst(int a, int b)
{
    return rank(a) >= rank(b) ? a : b;
}

static void on_done(const struct sync_result *r, void *arg)
{
    struct once_job *j = arg;
    j->done = true;
    /* recorded even when a daemon owns status.json: the files are per job, replaced
     * atomically */
    sync_record_refusal(j->os->cfg->state_dir, j->name, r);
    if (j->sj) {
        sync_status_fill(&j->sj->current, r);
        status_job_run_end(j->sj, util_now_ms(), sync_status_result(r));
        sync_status_settle(j->sj, r, false); /* no later cycle will retry */
        status_save(j->os);
    }
    if (r->fenced) {
        /* --coordinate: the job's key was lost mid-run; what was not sent is the next
         * holder's. The run could not do its job, whether or not a write went out first. */
        j->code = ONCE_EXIT_FATAL;
        return;
    }
    switch (r->outcome) {
    case SYNC_OK:
        j->code = ONCE_EXIT_OK;
        break;
    case SYNC_DRY_RUN:
        /* Exit 2 belongs to --dry-run; a job that is dry_run in its config reports its plan
         * but a plain --once still succeeds. */
        j->code = j->cli_dry_run && r->pending > 0 ? ONCE_EXIT_PENDING : ONCE_EXIT_OK;
        break;
    case SYNC_REFUSED:
        j->code = ONCE_EXIT_REFUSED;
        break;
    case SYNC_PARTIAL:
        j->code = ONCE_EXIT_FAILED_OPS;
        break;
    case SYNC_FAILED:
        /* Nothing could be read (incl. refused credentials): fatal. Writes that were attempted
         * and all failed (a 403 on a write included): code 3 like any failed operation. */
        j->code = r->failed_ops == 0 ? ONCE_EXIT_FATAL : ONCE_EXIT_FAILED_OPS;
        break;
    }
}

/* --job NAME/TARGET selects one target of a fan-out job, --job NAME all of them. */
static bool selected(const struct cfg_job *job, const char *const *jobs, size_t njobs)
{
    if (njobs == 0)
        return true;
    for (size_t i = 0; i < njobs; i++)
        if (strcmp(jobs[i], job->name) == 0 || (job->group && strcmp(jobs[i], job->group) == 0))
            return true;
    return false;
}

static bool known_job(const struct cfg_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->njobs; i++)
        if (strcmp(cfg->jobs[i].name, name) == 0 ||
            (cfg->jobs[i].group && strcmp(cfg->jobs[i].group, name) == 0))
            return true;
    return false;
}

/* The jobs among those selected (every job when njobs is 0) whose recorded refusals carry
 * `fp`: malloc'd array of names borrowed from cfg, *n of them. */
static const char **jobs_with_refusal(const struct cfg_config *cfg, const char *const *jobs,
                                      size_t njobs, const char *fp, size_t *n)
{
    const char **names = xcalloc(cfg->njobs + 1, sizeof *names);
    char err[512];
    *n = 0;
    for (size_t i = 0; i < cfg->njobs; i++) {
        if (!selected(&cfg->jobs[i], jobs, njobs))
            continue;
        struct approve_set *s =
            approve_load_refused(cfg->state_dir, cfg->jobs[i].name, fp, err, sizeof err);
        if (s)
            names[(*n)++] = cfg->jobs[i].name;
        approve_set_free(s);
    }
    return names;
}

static int run_jobs(const struct cfg_config *cfg, const char *const *jobs, size_t njobs,
                    bool dry_run, bool force_deletes, const char *approve_fp, bool coordinate,
                    FILE *plan_out);

int once_run(const struct cfg_config *cfg, const char *const *jobs, size_t njobs, bool dry_run,
             bool force_deletes, const char *approve_fp, bool coordinate, FILE *plan_out)
{
    if (coordinate && !cfg->coordination) {
        fprintf(stderr, "rolesyncd: --coordinate needs a coordination: block in %s\n", cfg->file);
        return ONCE_EXIT_FATAL;
    }
    if (!approve_fp)
        return run_jobs(cfg, jobs, njobs, dry_run, force_deletes, NULL, coordinate, plan_out);
    for (size_t i = 0; i < njobs; i++) {
        if (!known_job(cfg, jobs[i])) {
            fprintf(stderr, "rolesyncd: no job named \"%s\" in %s\n", jobs[i], cfg->file);
            return ONCE_EXIT_FATAL;
        }
    }
    /* The approval names the job whose refusal it is: of the jobs selected (a fan-out job's
     * NAME selects its targets), those whose recorded refusals carry it. */
    size_t n;
    const char **found = jobs_with_refusal(cfg, jobs, njobs, approve_fp, &n);
    int rc;
    if (n > 0) {
        rc = run_jobs(cfg, found, n, dry_run, force_deletes, approve_fp, coordinate, plan_out);
    } else if (njobs > 0) {
        /* nothing recorded (state_dir lost?): only a fresh plan with exactly these
         * deletions applies (sync.h) */
        rc = run_jobs(cfg, jobs, njobs, dry_run, force_deletes, approve_fp, coordinate, plan_out);
    } else {
        fprintf(stderr,
                "rolesyncd: no refused plan recorded in %s has fingerprint %s; name the job "
                "with --job to apply a fresh plan whose deletions have exactly that "
                "fingerprint\n",
                cfg->state_dir, approve_fp);
        rc = ONCE_EXIT_FATAL;
    }
    free(found);
    return rc;
}

static bool once_write_gate(const char *job, char *header, size_t hn, char *why, size_t wn,
                            void *coord)
{
    return coord_write_gate(coord, job, header, hn, why, wn);
}

static void on_deadline(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* --once --coordinate (product.md 7a): take the selected jobs' keys on etcd before anything
 * runs. Returns once etcd has answered for every job (held here, or named another holder); when
 * it has not within two lease TTLs, *code = 1 (logged) and nothing may run. The coordinator
 * returned (NULL only when it could not be set up) is shut down by the caller. */
static struct coord *coordinate_jobs(uv_loop_t *loop, struct http_engine *engine,
                                     const struct cfg_config *cfg, const char *const *jobs,
                                     size_t njobs, int *code, char *why, size_t whylen)
{
    const char **names = xcalloc(cfg->njobs ? cfg->njobs : 1, sizeof *names);
    size_t n = 0;
    char err[512], q[600];
    for (size_t i = 0; i < cfg->njobs; i++)
        if (selected(&cfg->jobs[i], jobs, njobs))
            names[n++] = cfg->jobs[i].name;
    struct coord *c = coord_new_oneshot(loop, engine, cfg->coordination, names, n, err, sizeof err);
    if (!c) {
        free(names);
        snprintf(why, whylen, "%s", err);
        log_error(NULL, "coordination unavailable, nothing run error=%s",
                  log_quote(q, sizeof q, err));
        *code = ONCE_EXIT_FATAL;
        return NULL;
    }
    /* a timer, so a wait inside the coordinator's backoff cannot outlast the deadline */
    bool late = false;
    uv_timer_t deadline;
    uv_timer_init(loop, &deadline);
    deadline.data = &late;
    uv_timer_start(&deadline, on_deadline, 2 * cfg->coordination->lease_ttl_ms, 0);
    bool all = false;
    while (!all && !late) {
        all = true;
        for (size_t i = 0; i < n && all; i++)
            all = coord_job_settled(c, names[i]);
        if (!all)
            uv_run(loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&deadline, NULL);
    uv_run(loop, UV_RUN_NOWAIT); /* the close callback: the timer lives on this stack */
    free(names);
    if (!all) {
        const char *p = coord_problem(c);
        snprintf(why, whylen, "%s", p ? p : "etcd did not answer for every job in time");
        log_error(NULL, "coordination unavailable, nothing run error=%s",
                  log_quote(q, sizeof q, why));
        *code = ONCE_EXIT_FATAL;
    }
    return c;
}

static void on_coord_shut(void *arg)
{
    *(bool *)arg = true;
}

static int run_jobs(const struct cfg_config *cfg, const char *const *jobs, size_t njobs,
                    bool dry_run, bool force_deletes, const char *approve_fp, bool coordinate,
                    FILE *plan_out)
{
    uv_loop_t loop;
    struct http_engine *engine;
    struct tnt_set *tenants;
    char err[512];
    int code = ONCE_EXIT_OK;

    for (size_t i = 0; i < njobs; i++) {
        if (!known_job(cfg, jobs[i])) {
            fprintf(stderr, "rolesyncd: no job named \"%s\" in %s\n", jobs[i], cfg->file);
            return ONCE_EXIT_FATAL;
        }
    }
    if (uv_loop_init(&loop) != 0) {
        fprintf(stderr, "rolesyncd: cannot create the event loop\n");
        return ONCE_EXIT_FATAL;
    }
    engine = http_engine_new(&loop, NULL, err, sizeof err);
    if (!engine) {
        fprintf(stderr, "rolesyncd: %s\n", err);
        uv_loop_close(&loop);
        return ONCE_EXIT_FATAL;
    }
    tenants = tnt_set_new(&loop, engine, cfg, NULL, err, sizeof err);
    if (!tenants) {
        fprintf(stderr, "rolesyncd: %s\n", err);
        code = ONCE_EXIT_FATAL;
    }
    struct once_status os = {
        .enabled = true, .metrics = cfg->metrics_file != NULL, .cfg = cfg, .tenants = tenants};
    status_init(&os.st, ROLESYNC_VERSION, cfg->file, util_now_ms());
    /* Jobs this run does not run (-j) keep what the last file said about them; those it runs
     * keep the start of their in-sync stretch (product.md 4c in_sync_since). */
    struct status_prev *prev = status_prev_read(cfg->state_dir);
    for (size_t i = 0; i < cfg->njobs; i++) {
        if (selected(&cfg->jobs[i], jobs, njobs))
            status_prev_carry(status_job_add(&os.st, cfg->jobs[i].name), prev);
        else
            status_prev_add_job(&os.st, prev, cfg->jobs[i].name);
    }
    status_prev_free(prev);
    pid_t owner = status_file_owner(cfg->state_dir);
    if (owner) {
        os.enabled = os.metrics = false; /* the daemon writes both */
        log_info(NULL, "status.json left alone, the running daemon keeps it pid=%ld", (long)owner);
    } else if (status_ensure_dir(cfg->state_dir, err, sizeof err) != 0) {
        os.enabled = false;
        log_warning(NULL, "status file not written: %s", err);
    }
    /* what earlier runs (and a daemon) created lately, product.md 4a.8 */
    char rerr[512];
    struct recent_roles *recent =
        recent_open(os.enabled ? cfg->state_dir : NULL, rerr, sizeof rerr);
    if (rerr[0]) {
        char q[600];
        log_warning(NULL, "created roles not remembered error=%s", log_quote(q, sizeof q, rerr));
    }
    /* The change journal (product.md 4c), shared with a running daemon's (each line is one
     * O_APPEND write). A --dry-run writes nothing, so it opens none; one that cannot be
     * opened is said once and the run goes on without it. */
    struct journal *journal = NULL;
    if (!dry_run) {
        char jerr[512];
        journal = journal_open(cfg->state_dir, cfg->journal_max_size, cfg->journal_keep, jerr,
                               sizeof jerr);
        if (!journal) {
            char q[600];
            log_warning(NULL, "changes are not journaled error=%s", log_quote(q, sizeof q, jerr));
        }
    }
    struct coord *coord = NULL;
    char coord_err[400] = "";
    if (coordinate && dry_run) {
        /* a dry run writes nothing: there is nothing to fence, and taking keys would only
         * keep the daemons from jobs for the length of a preview */
        log_info(NULL, "dry run: --coordinate takes no keys");
        coordinate = false;
    }
    if (coordinate && tenants) {
        status_set_coordination(&os.st, "etcd", NULL);
        coord =
            coordinate_jobs(&loop, engine, cfg, jobs, njobs, &code, coord_err, sizeof coord_err);
        if (coord)
            status_set_coordination(&os.st, "etcd", coord_member(coord));
    }
    /* One job at a time; the selected targets of a fan-out job together, on one source read
     * (product.md 4b.1). */
    struct once_job *oj = xcalloc(cfg->njobs ? cfg->njobs : 1, sizeof *oj);
    struct diff_memory **mem = xcalloc(cfg->njobs ? cfg->njobs : 1, sizeof *mem);
    bool *runs = xcalloc(cfg->njobs ? cfg->njobs : 1, sizeof *runs);
    for (size_t i = 0; i < cfg->njobs; i++) {
        const struct cfg_job *job = &cfg->jobs[i];
        runs[i] = selected(job, jobs, njobs);
        if (!runs[i] || !coordinate || !tenants)
            continue;
        struct status_job *sj = status_job_find(&os.st, job->name);
        const char *holder = coord ? coord_job_holder(coord, job->name) : NULL;
        if (coord && code != ONCE_EXIT_FATAL && coord_job_runnable(coord, job->name)) {
            status_job_set_holder(sj, true, coord_member(coord));
            continue;
        }
        runs[i] = false;
        char why[400];
        if (coord && holder && code != ONCE_EXIT_FATAL) {
            /* not a failure: the job is mirrored by its holder */
            snprintf(why, sizeof why, "held by another instance (%s)", holder);
            log_info(job->name, "job held by another instance, not run holder=%s", holder);
        } else {
            snprintf(why, sizeof why, "coordination unavailable: %s",
                     coord_err[0] ? coord_err : "no key taken");
            code = ONCE_EXIT_FATAL;
        }
        status_job_set_holder(sj, false, holder);
        status_job_set_state(sj, STATUS_JOB_STANDBY, why);
    }
    if (coordinate)
        status_save(&os);
    for (size_t i = 0; tenants && i < cfg->njobs;) {
        size_t end = i + 1;
        while (cfg->jobs[i].group && end < cfg->njobs && cfg->jobs[end].group &&
               strcmp(cfg->jobs[end].group, cfg->jobs[i].group) == 0)
            end++;
        size_t members = 0;
        for (size_t k = i; k < end; k++)
            members += runs[k];
        struct sync_source *shared =
            members > 1 ? sync_source_new(tnt_find(tenants, cfg->jobs[i].source)) : NULL;
        for (size_t k = i; k < end; k++) {
            const struct cfg_job *job = &cfg->jobs[k];
            if (!runs[k])
                continue;
            if (coord && !coord_job_runnable(coord, job->name)) {
                /* held at the start, lost while earlier jobs ran (a pause, etcd gone) */
                const char *p = coord_problem(coord);
                char why[500];
                snprintf(why, sizeof why, "not run: the job's key is no longer held (%s)",
                         p ? p : "lease lost");
                char q[600];
                log_warning(job->name, "job not run reason=%s", log_quote(q, sizeof q, why));
                struct status_job *sj = status_job_find(&os.st, job->name);
                status_job_set_holder(sj, false, coord_job_holder(coord, job->name));
                status_job_set_state(sj, STATUS_JOB_STANDBY, why);
                status_save(&os);
                code = worst(code, ONCE_EXIT_FATAL);
                continue;
            }
            oj[k] = (struct once_job){.cli_dry_run = dry_run, .os = &os, .name = job->name};
            if (approve_fp) {
                char aerr[512], q[600];
                oj[k].approved =
                    approve_load_refused(cfg->state_dir, job->name, approve_fp, aerr, sizeof aerr);
                if (aerr[0])
                    log_warning(job->name, "recorded refusals not readable error=%s",
                                log_quote(q, sizeof q, aerr));
            }
            mem[k] = diff_memory_new();
            struct sync_opts opts = {
                .dry_run = dry_run || job->dry_run,
                .force_deletes = force_deletes,
                .plan_out = plan_out,
                .config_file = os.st.config_file, /* absolute when it resolves */
                .recent = recent,
                .source = shared,
                .approve_fp = approve_fp,
                .approved = oj[k].approved,
                .journal = journal,
                .fence = coord ? coord_fence : NULL,
                .write_gate = coord ? once_write_gate : NULL,
                .fence_arg = coord,
            };
            oj[k].sj = status_job_find(&os.st, job->name);
            status_job_run_begin(oj[k].sj, util_now_ms(), opts.dry_run);
            status_save(&os);
            sync_start(&loop, job, tnt_find(tenants, job->source), tnt_find(tenants, job->target),
                       mem[k], &opts, on_done, &oj[k]);
        }
        sync_source_release(shared);
        for (;;) {
            bool all = true;
            for (size_t k = i; k < end; k++)
                all = all && (!mem[k] || oj[k].done);
            if (all || !uv_run(&loop, UV_RUN_ONCE))
                break;
        }
        for (size_t k = i; k < end; k++) {
            if (!mem[k])
                continue;
            diff_memory_free(mem[k]);
            mem[k] = NULL;
            approve_set_free(oj[k].approved);
            oj[k].approved = NULL;
            if (!oj[k].done) {
                /* The loop ran dry with the cycle unfinished: a bug, never a silent success. */
                log_error(cfg->jobs[k].name, "cycle did not complete");
                oj[k].code = ONCE_EXIT_FATAL;
                status_job_run_end(oj[k].sj, util_now_ms(), STATUS_RESULT_FAILED);
                status_job_set_state(oj[k].sj, STATUS_JOB_FAILED, "cycle did not complete");
                status_save(&os);
            }
            code = worst(code, oj[k].code);
        }
        i = end;
    }
    free(oj);
    free(mem);
    free(runs);
    if (coord) {
        /* give the keys back at once (the lease revoked), then free */
        bool shut = false;
        coord_shutdown(coord, on_coord_shut, &shut);
        while (!shut && uv_run(&loop, UV_RUN_ONCE))
            ;
        coord_free(coord);
    }
    tnt_set_free(tenants);
    recent_free(recent);
    journal_close(journal);
    status_free(&os.st);
    http_engine_close(engine);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        log_warning(NULL, "event loop closed with handles still open");
    return code;
}
