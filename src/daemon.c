/* daemon.c — the long-running mode: job scheduling, signals, reload, status/metrics files,
 * systemd notifications. The contract is in include/rolesync/daemon.h. */
#include "rolesync/daemon.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rolesync/approve.h"
#include "rolesync/coord.h"
#include "rolesync/diff.h"
#include "rolesync/http.h"
#include "rolesync/journal.h"
#include "rolesync/log.h"
#include "rolesync/metrics.h"
#include "rolesync/notify.h"
#include "rolesync/status.h"
#include "rolesync/sync.h"
#include "rolesync/tenants.h"
#include "rolesync/util.h"

/* Extra time after the drain deadline for cycles to notice their cancelled requests. Only a bug
 * (a cycle that never calls back) can reach it; then the daemon exits 1 without cleaning up
 * rather than hang until systemd kills it. */
#define BACKSTOP_EXTRA_MS 5000u

/* A loaded config and the engine tenants built from it. */
struct dm_gen {
    unsigned refs;           /* the daemon's current pointer + each running cycle */
    unsigned deferred;       /* references to drop on the next loop turn (on_reap) */
    struct cfg_config *cfg;  /* owned */
    struct tnt_set *tenants; /* owned; one engine tenant per cfg tenant */
    struct dm_gen *next;     /* daemon's list of live generations */
};

/* HTTP counts of tenants whose generation is gone, so metrics counters never go backwards. */
struct dm_retired {
    char *tenant;
    uint64_t by_status[HTTP_STATUS_SLOTS];
    uint64_t retries;
};

struct dm_job {
    struct daemon *d;
    char *name;                /* owned copy: outlives any one config */
    const struct cfg_job *cfg; /* in d->gen: what the next cycle uses */
    struct diff_memory *mem;   /* not-converging memory, kept across cycles and reloads */
    uv_timer_t timer;          /* next cycle; freed in its close callback */
    bool running;              /* a cycle is in progress */
    bool removed;              /* dropped by a reload; closed once its cycle ends */
    bool reset_mem;            /* tenant changed by a reload: fresh memory at the next start */
    uint64_t retry_ms;         /* last retry delay of the current failure streak, 0 = none */
    uint64_t due_mono;         /* monotonic ms when the timer fires, 0 = not armed */
    uint64_t last_end_mono;    /* monotonic ms when the last cycle ended, 0 = never */
    /* the running cycle */
    struct dm_gen *run_gen; /* reference held until the cycle ends */
    int64_t run_started_ms;
    bool run_dry;
    /* approved plans (product.md 4c): the approval the running cycle uses (fingerprint, the
     * set recorded under it or NULL, the state_dir it came from), removed when the cycle ends;
     * and whether another was announced while it ran (SIGUSR2: run again at once) */
    char run_approval[APPROVE_FP_LEN];
    struct approve_set *run_approved;
    char *run_approval_dir;
    bool approval_waiting;
    FILE *plan_f; /* dry run: the plan, rendered into plan_buf */
    char *plan_buf;
    size_t plan_len;
};

struct daemon {
    uv_loop_t *loop;
    char *config_path;
    bool use_signals;
    struct http_engine *engine;
    struct dm_gen *gen;   /* current generation */
    struct dm_gen *gens;  /* every live generation, current included */
    struct dm_job **jobs; /* current config order; removed jobs still running at the end */
    size_t njobs, cap_jobs;
    struct status st;
    struct recent_roles *recent; /* roles created lately, shared by every job (recent.h) */
    char *recent_dir;            /* the state_dir it lives in */
    /* the change journal (journal.h), shared by every job; NULL when it cannot be opened.
     * One a reload moved away from stays open until the end: cycles that started with it
     * still write their lines there (old_journals). */
    struct journal *journal;
    char *journal_dir;
    struct journal **old_journals;
    size_t nold_journals, cap_old_journals;
    struct dm_retired *retired;
    size_t nretired, cap_retired;

    uv_signal_t sig_hup, sig_usr1, sig_usr2, sig_term, sig_int;
    uv_timer_t watchdog; /* WATCHDOG=1 every half $WATCHDOG_USEC */
    uv_timer_t reap;     /* next loop turn: drop cycle references, finish a stop */
    uv_timer_t backstop; /* stop taking too long (see BACKSTOP_EXTRA_MS) */
    bool handles_open;

    unsigned nrunning; /* cycles in progress, removed jobs included */
    bool stopping, drained, finished, forced;
    int exit_code;
    uint64_t rng; /* splitmix64 state for the schedule jitter */
    /* coordination (product.md 7a; coord.h): NULL without `coordination:` */
    struct coord *coord;
    struct coord *coord_old; /* replaced by a reload, revoking its lease; freed after */
};

static void write_files(struct daemon *d);
static void on_job_timer(uv_timer_t *t);
static void coord_refresh(struct daemon *d, bool write);
static void recent_follow(struct daemon *d, const char *state_dir);
static void journal_follow(struct daemon *d, const struct cfg_config *cfg);

/* ---- small helpers ------------------------------------------------------------------------ */

static uint64_t rng_next(struct daemon *d)
{
    uint64_t z = (d->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* interval ± up to 10 %, so jobs started together drift apart instead of hitting a shared
 * tenant in lockstep forever. */
static uint64_t jitter(struct daemon *d, uint64_t interval_ms)
{
    uint64_t span = interval_ms / 5; /* 20 % wide window centred on the interval */
    if (span == 0)
        return interval_ms;
    return interval_ms - interval_ms / 10 + rng_next(d) % (span + 1);
}

static const char *dur(uint64_t ms, char *buf, size_t n)
{
    /* Round to whole seconds above 10 s: "9m41s" reads better than "581234ms". */
    if (ms >= 10000) {
        uint64_t s = (ms + 500) / 1000, h = s / 3600, m = s / 60 % 60;
        if (h)
            snprintf(buf, n, "%lluh%02llum%02llus", (unsigned long long)h, (unsigned long long)m,
                     (unsigned long long)(s % 60));
        else if (m)
            snprintf(buf, n, "%llum%02llus", (unsigned long long)m, (unsigned long long)(s % 60));
        else
            snprintf(buf, n, "%llus", (unsigned long long)s);
        return buf;
    }
    snprintf(buf, n, "%llums", (unsigned long long)ms);
    return buf;
}

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Same remote tenant: what the not-converging memory's observations are about. */
static bool same_remote(const struct cfg_tenant *a, const struct cfg_tenant *b)
{
    return a->api == b->api && str_eq(a->base_url, b->base_url) &&
           str_eq(a->tenant_id, b->tenant_id);
}

/* ---- generations ----------------------------------------------------------------------------*/

static struct dm_gen *gen_new(struct daemon *d, struct cfg_config *cfg, struct tnt_set *tenants)
{
    struct dm_gen *g = xcalloc(1, sizeof *g);
    g->refs = 1;
    g->cfg = cfg;
    g->tenants = tenants;
    g->next = d->gens;
    d->gens = g;
    return g;
}

static struct dm_retired *retired_for(struct daemon *d, const char *tenant)
{
    for (size_t i = 0; i < d->nretired; i++)
        if (strcmp(d->retired[i].tenant, tenant) == 0)
            return &d->retired[i];
    util_grow((void **)&d->retired, &d->cap_retired, d->nretired + 1, sizeof *d->retired);
    struct dm_retired *r = &d->retired[d->nretired++];
    memset(r, 0, sizeof *r);
    r->tenant = xstrdup(tenant);
    return r;
}

static void gen_unref(struct daemon *d, struct dm_gen *g)
{
    if (--g->refs > 0)
        return;
    for (size_t i = 0; i < g->tenants->n; i++) {
        /* An engine tenant a newer config still uses keeps counting there. */
        if (!tnt_set_last_user(g->tenants, i))
            continue;
        const struct http_counters *c = http_tenant_counters(g->tenants->t[i].http);
        struct dm_retired *r = retired_for(d, g->tenants->t[i].cfg->name);
        for (size_t k = 0; k < HTTP_STATUS_SLOTS; k++)
            r->by_status[k] += c->by_status[k] + c->token_by_status[k];
        r->retries += c->retries + c->token_retries;
    }
    for (struct dm_gen **pp = &d->gens; *pp; pp = &(*pp)->next) {
        if (*pp == g) {
            *pp = g->next;
            break;
        }
    }
    tnt_set_free(g->tenants);
    cfg_free(g->cfg);
    free(g);
}

/* ---- files and notifications ----------------------------------------------------------------*/

static void write_metrics(struct daemon *d, const char *path)
{
    struct metrics_rows rows = {0};
    char err[512];

    /* metrics_render sums rows with the same (tenant, code): live generations and retired
     * totals add up to counters that survive reloads. */
    size_t nsets = 0;
    for (struct dm_gen *g = d->gens; g; g = g->next)
        nsets++;
    const struct tnt_set **sets = xcalloc(nsets ? nsets : 1, sizeof *sets);
    nsets = 0;
    for (struct dm_gen *g = d->gens; g; g = g->next)
        sets[nsets++] = g->tenants;
    tnt_sets_metrics_rows(sets, nsets, &rows);
    free(sets);
    for (size_t i = 0; i < d->nretired; i++)
        metrics_rows_add(&rows, d->retired[i].tenant, d->retired[i].by_status, NULL,
                         d->retired[i].retries);
    struct metrics_http http = metrics_rows_view(&rows);
    metrics_write(&d->st, &http, path, err, sizeof err); /* logs its own warning */
    metrics_rows_free(&rows);
}

/* status.json, the metrics file and STATUS=, at every event worth telling. A failed write is
 * logged by status_write and retried at the next event: the daemon's real work goes on. */
static void write_files(struct daemon *d)
{
    char err[512], line[256];

    status_write(&d->st, d->gen->cfg->state_dir, err, sizeof err);
    if (d->gen->cfg->metrics_file)
        write_metrics(d, d->gen->cfg->metrics_file);
    notify_status(notify_status_line(&d->st, line, sizeof line));
}

/* ---- jobs -----------------------------------------------------------------------------------*/

static void on_job_closed(uv_handle_t *h)
{
    struct dm_job *j = UTIL_CONTAINER_OF(h, struct dm_job, timer);
    approve_set_free(j->run_approved);
    free(j->run_approval_dir);
    diff_memory_free(j->mem);
    free(j->name);
    free(j);
}

static void jobs_remove(struct daemon *d, struct dm_job *j)
{
    for (size_t i = 0; i < d->njobs; i++) {
        if (d->jobs[i] == j) {
            memmove(&d->jobs[i], &d->jobs[i + 1], (d->njobs - i - 1) * sizeof *d->jobs);
            d->njobs--;
            return;
        }
    }
}

/* Forget a job that is not running: out of the list, freed once the loop closed its timer. */
static void job_close(struct dm_job *j)
{
    jobs_remove(j->d, j);
    uv_close((uv_handle_t *)&j->timer, on_job_closed);
}

static struct dm_job *job_new(struct daemon *d, const struct cfg_job *cfg)
{
    struct dm_job *j = xcalloc(1, sizeof *j);
    j->d = d;
    j->name = xstrdup(cfg->name);
    j->cfg = cfg;
    j->mem = diff_memory_new();
    uv_timer_init(d->loop, &j->timer);
    return j;
}

static void job_arm(struct dm_job *j, uint64_t delay_ms)
{
    struct status_job *sj = status_job_find(&j->d->st, j->name);
    uv_timer_start(&j->timer, on_job_timer, delay_ms, 0);
    j->due_mono = util_mono_ms() + delay_ms;
    if (sj)
        status_job_set_next_run(sj, util_now_ms() + (int64_t)delay_ms);
}

static void job_disarm(struct dm_job *j)
{
    struct status_job *sj = status_job_find(&j->d->st, j->name);
    uv_timer_stop(&j->timer);
    j->due_mono = 0;
    if (sj)
        status_job_set_next_run(sj, 0);
}

/* Dry run: log the planned changes (capped) so "plan and report every cycle" reaches the
 * journal; the counts are in the summary line and the status file, and the report lines
 * (conflicts, unmapped, not converging, refusal) are logged by sync.c every cycle. */
static void log_plan(struct dm_job *j)
{
    size_t changes = 0, logged = 0;
    char q[1024];

    fclose(j->plan_f);
    j->plan_f = NULL;
    for (char *line = j->plan_buf, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if ((line[0] == '+' || line[0] == '-' || line[0] == '~') && line[1] == ' ') {
            changes++;
            if (logged < DAEMON_PLAN_LOG_LINES) {
                logged++;
                log_info(j->name, "planned change=%s", log_quote(q, sizeof q, line));
            }
        }
        if (!nl)
            break;
    }
    if (changes > logged) {
        char hint[300], qh[700];
        snprintf(hint, sizeof hint, "see rolesyncd --once --dry-run --job %s", j->name);
        log_info(j->name, "plan lines not logged=%zu hint=%s", changes - logged,
                 log_quote(qh, sizeof qh, hint));
    }
    free(j->plan_buf);
    j->plan_buf = NULL;
    j->plan_len = 0;
}

/* Put a finished cycle into the job's status entry. */
static void record(struct dm_job *j, const struct sync_result *r, int64_t now, bool interrupted)
{
    struct status_job *sj = status_job_find(&j->d->st, j->name);
    if (!sj)
        return;
    if (!sj->running) /* the entry was recreated by a reload while the cycle ran */
        status_job_run_begin(sj, j->run_started_ms, j->run_dry);

    struct status_run *run = &sj->current;
    sync_status_fill(run, r);
    if (interrupted)
        status_run_add_error(run, "shutdown", NULL, NULL, 0, "interrupted by shutdown", NULL);

    unsigned failures = sj->consecutive_failures;
    status_job_run_end(sj, now, sync_status_result(r));
    if (interrupted) {
        /* Recorded with its own result (partial when something was applied, the log's summary
         * says the same); but a cycle cut short is no failure of the tenant, so it does not
         * count in consecutive_failures and the job is idle, not waiting to retry. */
        sj->consecutive_failures = failures;
        status_job_set_state(sj, STATUS_JOB_IDLE, "interrupted by shutdown");
    } else {
        sync_status_settle(sj, r, true);
    }
}

/* When the next cycle starts after this one. */
static void schedule_next(struct dm_job *j, const struct sync_result *r)
{
    struct daemon *d = j->d;
    uint64_t interval = j->cfg->interval_ms, delay;
    struct status_job *sj = status_job_find(&d->st, j->name);
    unsigned failures = sj ? sj->consecutive_failures : 0;
    char b[32], q[600];

    if ((r->outcome == SYNC_FAILED || r->outcome == SYNC_PARTIAL) && !r->auth_failed) {
        j->retry_ms = j->retry_ms ? j->retry_ms * 2 : DAEMON_RETRY_MS;
        if (j->retry_ms > interval)
            j->retry_ms = interval;
        delay = j->retry_ms;
        log_warning(j->name, "cycle failed, retrying in=%s consecutive_failures=%u reason=%s",
                    dur(delay, b, sizeof b), failures, log_quote(q, sizeof q, r->reason));
    } else {
        j->retry_ms = 0;
        delay = jitter(d, interval);
        if (r->auth_failed)
            log_error(j->name,
                      "authentication failed, trying again at the interval in=%s "
                      "consecutive_failures=%u reason=%s hint=\"fix the client credentials on the "
                      "platform, or update the secret and reload (systemctl reload rolesyncd)\"",
                      dur(delay, b, sizeof b), failures, log_quote(q, sizeof q, r->reason));
        else
            log_debug(j->name, "next cycle in=%s", dur(delay, b, sizeof b));
    }
    job_arm(j, delay);
}

/* An approval waiting in state_dir (approve.h) is taken by the job's next cycle, whatever
 * started it: SIGUSR2 only makes that cycle come now, so a lost signal or a restart loses no
 * approval. */
static void job_take_approval(struct dm_job *j)
{
    const char *dir = j->d->gen->cfg->state_dir;
    char err[512], q[600];
    int rc = approve_pending(dir, j->name, j->run_approval, err, sizeof err);
    if (rc < 0) {
        log_warning(j->name, "approval not readable error=%s", log_quote(q, sizeof q, err));
        approve_consume(dir, j->name, "", err, sizeof err); /* damaged: never usable */
    }
    if (rc != 1) {
        j->run_approval[0] = '\0';
        return;
    }
    j->run_approved = approve_load_refused(dir, j->name, j->run_approval, err, sizeof err);
    if (err[0])
        log_warning(j->name, "recorded refusals not readable error=%s",
                    log_quote(q, sizeof q, err));
    j->run_approval_dir = xstrdup(dir);
    log_info(j->name, "cycle runs under an approval approval=%s deletions_approved=%zu",
             j->run_approval, j->run_approved ? j->run_approved->n : (size_t)0);
}

/* The cycle that took an approval has ended: the approval is used, whatever the result (a
 * newer one recorded meanwhile stays for the next cycle) -- unless the daemon's stop cut the
 * cycle short (`keep`): then it was not given its chance, and the next start takes it (the
 * subset rule holds it to the reviewed deletions whatever was applied before the stop). */
static void job_drop_approval(struct dm_job *j, bool keep)
{
    char err[512], q[600];
    if (!j->run_approval[0])
        return;
    if (!keep &&
        approve_consume(j->run_approval_dir, j->name, j->run_approval, err, sizeof err) != 0)
        log_warning(j->name, "used approval not removed error=%s", log_quote(q, sizeof q, err));
    j->run_approval[0] = '\0';
    approve_set_free(j->run_approved);
    j->run_approved = NULL;
    free(j->run_approval_dir);
    j->run_approval_dir = NULL;
}

static void kick_reap(struct daemon *d);

static void on_cycle_done(const struct sync_result *r, void *arg)
{
    struct dm_job *j = arg;
    struct daemon *d = j->d;
    int64_t now = util_now_ms();
    bool interrupted = d->stopping && (r->outcome == SYNC_FAILED || r->outcome == SYNC_PARTIAL);

    j->running = false;
    d->nrunning--;
    j->last_end_mono = util_mono_ms();
    /* sync.c still uses the cycle's config and tenants after this callback returns: drop the
     * reference on the next loop turn (on_reap). */
    j->run_gen->deferred++;
    j->run_gen = NULL;
    kick_reap(d);
    if (j->plan_f)
        log_plan(j);
    sync_record_refusal(j->run_approval_dir ? j->run_approval_dir : d->gen->cfg->state_dir, j->name,
                        r);
    job_drop_approval(j, interrupted);
    if (j->removed) {
        log_info(j->name, "removed job's last cycle ended; not scheduled again");
        job_close(j);
        return;
    }
    struct status_job *sj = status_job_find(&d->st, j->name);
    unsigned failures = sj ? sj->consecutive_failures : 0;
    record(j, r, now, interrupted);
    if (interrupted)
        log_warning(j->name, "cycle interrupted by shutdown");
    if (r->fenced && sj) {
        /* Not a failure of the tenant: the job went to another instance (or etcd went away)
         * before a write batch; whoever holds it next starts from fresh reads. */
        sj->consecutive_failures = failures;
        status_job_set_state(sj, STATUS_JOB_STANDBY, r->reason);
    }
    if (!d->stopping) {
        if (d->coord && !coord_job_runnable(d->coord, j->name))
            coord_refresh(d, false); /* standby until coordination hands it back */
        else
            schedule_next(j, r);
        if (j->approval_waiting) { /* announced while this cycle ran: its turn now */
            j->approval_waiting = false;
            job_arm(j, 0);
        }
    }
    write_files(d);
}

/* sync.h's fence for a job started under coordination. The coordinator is looked up now, not
 * when the cycle started: a reload may have replaced or removed it. */
static void job_fence(const char *job, sync_fence_done_cb done, void *done_arg, void *arg)
{
    struct dm_job *j = arg;
    if (j->d->coord) {
        coord_fence(job, done, done_arg, j->d->coord);
        return;
    }
    /* coordination switched off by a reload mid-cycle: the next cycle runs unfenced; this
     * one was started under a lease that is gone, so it stops (said from the loop) */
    coord_fence_refuse(j->d->loop, "coordination turned off by a reload", done, done_arg);
}

/* sync.h's per-request gate, looked up the same way. */
static bool job_write_gate(const char *job, char *header, size_t hn, char *why, size_t wn,
                           void *arg)
{
    struct dm_job *j = arg;
    if (j->d->coord)
        return coord_write_gate(j->d->coord, job, header, hn, why, wn);
    snprintf(why, wn, "coordination turned off by a reload");
    return false;
}

static void job_start_cycle(struct dm_job *j, struct sync_source *shared)
{
    struct daemon *d = j->d;
    const struct cfg_job *cj = j->cfg;
    const struct prov_tenant *src = tnt_find(d->gen->tenants, cj->source);
    const struct prov_tenant *tgt = tnt_find(d->gen->tenants, cj->target);
    struct status_job *sj = status_job_find(&d->st, j->name);

    j->due_mono = 0;
    if (!src || !tgt) {
        /* cannot happen: cfg_load resolves every job's tenants into this config */
        log_error(j->name, "internal error: job tenants not found; cycle skipped");
        job_arm(j, cj->interval_ms);
        return;
    }
    if (j->reset_mem) { /* a reload changed the job's tenants (job_take_config) */
        diff_memory_free(j->mem);
        j->mem = diff_memory_new();
        j->reset_mem = false;
    }
    j->running = true;
    d->nrunning++;
    j->run_gen = d->gen;
    d->gen->refs++;
    j->run_started_ms = util_now_ms();
    j->run_dry = cj->dry_run;
    if (sj) {
        status_job_run_begin(sj, j->run_started_ms, j->run_dry);
        status_job_set_next_run(sj, 0);
    }
    if (j->run_dry) {
        j->plan_f = open_memstream(&j->plan_buf, &j->plan_len);
        if (!j->plan_f)
            log_warning(j->name, "cannot capture the dry-run plan: %s", strerror(errno));
    }
    job_take_approval(j);
    write_files(d);
    struct sync_opts o = {.dry_run = j->run_dry,
                          .force_deletes = false,
                          .plan_out = j->plan_f,
                          .config_file = d->st.config_file,
                          .recent = d->recent,
                          .source = shared,
                          .fence = d->coord ? job_fence : NULL,
                          .write_gate = d->coord ? job_write_gate : NULL,
                          .fence_arg = j,
                          .approve_fp = j->run_approval[0] ? j->run_approval : NULL,
                          .approved = j->run_approved,
                          .journal = d->journal};
    sync_start(d->loop, cj, src, tgt, j->mem, &o, on_cycle_done, j);
}

/* Fan-out (product.md 4b.1): the targets of one job read their source once per cycle. When
 * one target's cycle is due, every other idle target of the job due within the schedule's
 * jitter window (a fifth of the interval) starts with it, on one shared source read. Targets
 * started together end together and so stay together; a target retrying after a failure
 * runs on its own (reading the source for itself) and does not pull the others along. */
static void job_start_group(struct dm_job *j)
{
    struct daemon *d = j->d;
    const char *group = j->cfg->group;
    if (!group) {
        job_start_cycle(j, NULL);
        return;
    }
    uint64_t now = util_mono_ms();
    struct dm_job **members = xcalloc(d->njobs + 1, sizeof *members);
    size_t n = 0;
    members[n++] = j;
    for (size_t i = 0; i < d->njobs; i++) {
        struct dm_job *m = d->jobs[i];
        if (m == j || m->removed || m->running || !m->cfg || !m->cfg->group ||
            strcmp(m->cfg->group, group) != 0 || m->cfg->source != j->cfg->source)
            continue;
        if (m->due_mono && m->due_mono > now + m->cfg->interval_ms / 5)
            continue;
        if (d->coord && !coord_job_runnable(d->coord, m->name))
            continue; /* another instance holds that target */
        members[n++] = m;
    }
    const struct prov_tenant *src = tnt_find(d->gen->tenants, j->cfg->source);
    struct sync_source *shared = n > 1 && src ? sync_source_new(src) : NULL;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            job_disarm(members[i]);
        job_start_cycle(members[i], shared);
    }
    sync_source_release(shared);
    if (n > 1)
        log_debug(group, "fan-out cycle started targets=%zu", n);
    free(members);
}

static void on_job_timer(uv_timer_t *t)
{
    struct dm_job *j = UTIL_CONTAINER_OF(t, struct dm_job, timer);
    j->due_mono = 0;
    if (j->d->stopping || j->removed || j->running)
        return;
    if (j->d->coord && !coord_job_runnable(j->d->coord, j->name)) {
        coord_refresh(j->d, true); /* shows it standby; armed again when it is ours */
        return;
    }
    job_start_group(j);
}

/* ---- coordination ---------------------------------------------------------------------------*/

/* Level-triggered: every job's state follows what the coordinator says now. A job this
 * instance may run and that waits for nothing starts at once; one it may not run is disarmed
 * and shown standby, with the holder, or with the reason etcd cannot be used. */
static void coord_refresh(struct daemon *d, bool write)
{
    bool dirty = false;
    for (size_t i = 0; i < d->njobs; i++) {
        struct dm_job *j = d->jobs[i];
        struct status_job *sj = status_job_find(&d->st, j->name);
        if (j->removed || !sj)
            continue;
        if (!d->coord) {
            if (sj->state == STATUS_JOB_STANDBY && !j->running && !j->due_mono && !d->stopping) {
                status_job_set_state(sj, STATUS_JOB_IDLE, NULL);
                job_arm(j, 0);
                dirty = true;
            }
            continue;
        }
        bool held = coord_job_held(d->coord, j->name);
        const char *holder = coord_job_holder(d->coord, j->name);
        if (held != sj->held || !str_eq(holder, sj->holder)) {
            status_job_set_holder(sj, held, holder);
            dirty = true;
        }
        if (j->running || d->stopping)
            continue;
        if (coord_job_runnable(d->coord, j->name)) {
            if (sj->state == STATUS_JOB_STANDBY || !j->due_mono) {
                if (sj->state == STATUS_JOB_STANDBY)
                    status_job_set_state(sj, STATUS_JOB_IDLE, NULL);
                if (!j->due_mono)
                    job_arm(j, 0);
                dirty = true;
            }
            continue;
        }
        const char *problem = coord_problem(d->coord);
        char why[600];
        if (problem)
            snprintf(why, sizeof why, "%s", problem);
        else if (holder && !held)
            snprintf(why, sizeof why, "held by another instance (%s)", holder);
        else
            snprintf(why, sizeof why, "waiting for the job's lease");
        if (j->due_mono) {
            job_disarm(j);
            dirty = true;
        }
        if (sj->state != STATUS_JOB_STANDBY || !str_eq(sj->reason, why)) {
            status_job_set_state(sj, STATUS_JOB_STANDBY, why);
            dirty = true;
        }
    }
    if (dirty && write)
        write_files(d);
}

static void on_coord_change(void *arg)
{
    coord_refresh(arg, true);
}

static bool coord_job_busy(const char *job, void *arg)
{
    struct daemon *d = arg;
    for (size_t i = 0; i < d->njobs; i++)
        if (strcmp(d->jobs[i]->name, job) == 0)
            return d->jobs[i]->running;
    return false;
}

static void coord_jobs(struct daemon *d)
{
    const struct cfg_config *cfg = d->gen->cfg;
    const char **names = xcalloc(cfg->njobs ? cfg->njobs : 1, sizeof *names);
    for (size_t i = 0; i < cfg->njobs; i++)
        names[i] = cfg->jobs[i].name;
    coord_set_jobs(d->coord, names, cfg->njobs);
    free(names);
}

static int coord_begin(struct daemon *d, const struct cfg_coord *cc, char *err, size_t errlen)
{
    d->coord = coord_new(d->loop, d->engine, cc, on_coord_change, coord_job_busy, d, err, errlen);
    if (!d->coord)
        return -1;
    status_set_coordination(&d->st, "etcd", coord_member(d->coord));
    log_info(NULL, "coordination on etcd member=%s endpoints=%zu lease_ttl_ms=%llu",
             coord_member(d->coord), cc->endpoints.n, (unsigned long long)cc->lease_ttl_ms);
    return 0;
}

static void on_old_coord_shut(void *arg)
{
    struct daemon *d = arg;
    coord_free(d->coord_old);
    d->coord_old = NULL;
}

static void jobs_push(struct daemon *d, struct dm_job *j)
{
    util_grow((void **)&d->jobs, &d->cap_jobs, d->njobs + 1, sizeof *d->jobs);
    d->jobs[d->njobs++] = j;
}

/* ---- stop -----------------------------------------------------------------------------------*/

static void close_all(struct daemon *d)
{
    while (d->njobs > 0) {
        struct dm_job *j = d->jobs[d->njobs - 1];
        uv_timer_stop(&j->timer);
        job_close(j);
    }
    if (d->handles_open) {
        if (d->use_signals) {
            uv_close((uv_handle_t *)&d->sig_hup, NULL);
            uv_close((uv_handle_t *)&d->sig_usr1, NULL);
            uv_close((uv_handle_t *)&d->sig_usr2, NULL);
            uv_close((uv_handle_t *)&d->sig_term, NULL);
            uv_close((uv_handle_t *)&d->sig_int, NULL);
        }
        uv_close((uv_handle_t *)&d->watchdog, NULL);
        uv_close((uv_handle_t *)&d->reap, NULL);
        uv_close((uv_handle_t *)&d->backstop, NULL);
        d->handles_open = false;
    }
    /* Every cycle has ended, so only the daemon's own reference is left on the current
     * generation and none on older ones. */
    for (struct dm_gen *g = d->gens; g; g = g->next)
        while (g->deferred) {
            g->deferred--;
            g->refs--;
        }
    if (d->gen) {
        struct dm_gen *g = d->gen;
        d->gen = NULL;
        g->refs = 1;
        gen_unref(d, g);
    }
    while (d->gens) { /* only reachable through a bug; free rather than leak */
        d->gens->refs = 1;
        gen_unref(d, d->gens);
    }
    coord_free(d->coord);
    d->coord = NULL;
    coord_free(d->coord_old);
    d->coord_old = NULL;
    if (d->engine) {
        http_engine_close(d->engine);
        d->engine = NULL;
    }
}

static void finish_stop(struct daemon *d)
{
    d->finished = true;
    uv_timer_stop(&d->backstop);
    for (size_t i = 0; i < d->njobs; i++) {
        struct status_job *sj = status_job_find(&d->st, d->jobs[i]->name);
        if (sj)
            status_job_set_next_run(sj, 0);
    }
    write_files(d);
    notify_stopping();
    log_info(NULL, "stopped");
    close_all(d);
    d->exit_code = 0;
}

static void on_reap(uv_timer_t *t)
{
    struct daemon *d = UTIL_CONTAINER_OF(t, struct daemon, reap);
    for (struct dm_gen *g = d->gens, *next; g; g = next) {
        next = g->next;
        while (g->deferred > 0) {
            g->deferred--;
            if (g->refs == 1) {
                /* last reference: gen_unref frees g, so stop looking at it */
                g->deferred = 0;
                gen_unref(d, g);
                break;
            }
            gen_unref(d, g);
        }
    }
    if (d->nrunning == 0 && !d->stopping) {
        /* Idle until the next cycle: hand the cycle's memory back to the system. Pages were
         * parsed on libuv's worker threads, whose malloc arenas keep what they freed. */
        malloc_trim(0);
    }
    if (d->stopping && d->drained && d->nrunning == 0 && !d->finished)
        finish_stop(d);
}

static void kick_reap(struct daemon *d)
{
    if (d->handles_open)
        uv_timer_start(&d->reap, on_reap, 0, 0);
}

static void on_drained(void *arg)
{
    struct daemon *d = arg;
    d->drained = true;
    if (d->nrunning > 0)
        log_info(NULL, "requests drained; waiting for running_jobs=%u to end", d->nrunning);
    kick_reap(d);
}

static void on_backstop(uv_timer_t *t)
{
    struct daemon *d = UTIL_CONTAINER_OF(t, struct daemon, backstop);
    if (d->finished)
        return;
    log_error(NULL, "stop: running_jobs=%u did not end after the grace period; exiting anyway",
              d->nrunning);
    d->finished = true;
    d->forced = true;
    write_files(d);
    notify_stopping();
    d->exit_code = 1;
    uv_stop(d->loop);
}

static void start_drain(void *arg)
{
    struct daemon *d = arg;
    http_engine_drain(d->engine, DAEMON_DRAIN_MS, on_drained, d);
}

void daemon_stop(struct daemon *d)
{
    if (d->stopping) {
        log_info(NULL, "already stopping running_jobs=%u", d->nrunning);
        return;
    }
    d->stopping = true;
    log_info(NULL, "stopping running_jobs=%u grace_ms=%u", d->nrunning, DAEMON_DRAIN_MS);
    for (size_t i = 0; i < d->njobs; i++)
        job_disarm(d->jobs[i]);
    /* The watchdog keeps pinging while draining: the loop is alive and working. */
    uv_timer_start(&d->backstop, on_backstop, DAEMON_DRAIN_MS + BACKSTOP_EXTRA_MS, 0);
    if (d->coord) {
        /* Revoke first (the engine refuses new requests once draining): others take the jobs
         * now instead of after lease_ttl, and a running cycle's next fence says no. */
        coord_shutdown(d->coord, start_drain, d);
        return;
    }
    start_drain(d);
}

/* ---- reload ---------------------------------------------------------------------------------*/

static char *join_lines(char **v, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(v[i]) + 1;
    char *s = xmalloc(len), *p = s;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(v[i]);
        memcpy(p, v[i], l);
        p += l;
        if (i + 1 < n)
            *p++ = '\n';
    }
    *p = '\0';
    return s;
}

static void reload_failed(struct daemon *d, char **errors, size_t n)
{
    char q[1200], line[256];
    char *all = join_lines(errors, n);

    for (size_t i = 0; i < n; i++)
        log_error(NULL, "reload error=%s", log_quote(q, sizeof q, errors[i]));
    log_error(NULL, "reload failed, still running the previous config errors=%zu config=%s", n,
              log_quote(q, sizeof q, d->config_path));
    status_reload_done(&d->st, util_now_ms(), false, d->config_path, all);
    free(all);
    write_files(d);
    notify_ready_status(notify_status_line(&d->st, line, sizeof line));
}

/* An existing job takes its entry in the new config. */
static void job_take_config(struct dm_job *j, const struct cfg_job *ncfg)
{
    const struct cfg_job *old = j->cfg; /* NULL for a removed job coming back */

    if (!old || !same_remote(old->source, ncfg->source) ||
        !same_remote(old->target, ncfg->target)) {
        /* Remembered writes were made to another tenant. Applied at the next cycle start: a
         * running cycle still uses this memory. */
        j->reset_mem = true;
    }
    j->cfg = ncfg;
    /* A shorter interval brings a waiting job forward; a longer one applies after its next
     * cycle (the one already promised stays). */
    if (old && ncfg->interval_ms < old->interval_ms) {
        if (j->retry_ms > ncfg->interval_ms)
            j->retry_ms = ncfg->interval_ms;
        if (!j->running && j->due_mono) {
            uint64_t now = util_mono_ms();
            uint64_t base = j->last_end_mono ? j->last_end_mono : now;
            uint64_t target = base + jitter(j->d, ncfg->interval_ms);
            if (target < j->due_mono)
                job_arm(j, target > now ? target - now : 0);
        }
    }
}

void daemon_reload(struct daemon *d)
{
    struct cfg_diags dg = {0};
    struct cfg_config *nc = NULL;
    struct tnt_set *tenants = NULL;
    char err[600], q[1200], line[256];

    if (d->stopping)
        return;
    notify_reloading();
    log_info(NULL, "reloading config=%s", log_quote(q, sizeof q, d->config_path));
    int rc = cfg_load(d->config_path, &nc, &dg);
    for (size_t i = 0; i < dg.nwarnings; i++)
        log_warning(NULL, "config warning=%s", log_quote(q, sizeof q, dg.warnings[i]));
    if (rc != 0) {
        reload_failed(d, dg.errors, dg.nerrors);
        cfg_diags_free(&dg);
        return;
    }
    cfg_diags_free(&dg);
    if (status_ensure_dir(nc->state_dir, err, sizeof err) != 0 ||
        !(tenants = tnt_set_new(d->loop, d->engine, nc, d->gen->tenants, err, sizeof err))) {
        char *one = err;
        reload_failed(d, &one, 1);
        cfg_free(nc);
        return;
    }

    struct dm_gen *old = d->gen;
    bool coord_changed = !cfg_coord_equal(old->cfg->coordination, nc->coordination);
    struct coord *prev_coord = NULL;
    if (coord_changed) {
        struct coord *nco = NULL;
        if (nc->coordination) {
            nco = coord_new(d->loop, d->engine, nc->coordination, on_coord_change, coord_job_busy,
                            d, err, sizeof err);
            if (!nco) {
                char *one = err;
                reload_failed(d, &one, 1);
                tnt_set_free(tenants);
                cfg_free(nc);
                return;
            }
        }
        prev_coord = d->coord;
        d->coord = nco;
    }
    d->gen = gen_new(d, nc, tenants);
    recent_follow(d, nc->state_dir);
    journal_follow(d, nc);

    /* Jobs in the new order; leftovers are removed (kept in the list while they run). */
    struct dm_job **prev = d->jobs;
    size_t nprev = d->njobs;
    size_t added = 0, kept = 0, removed = 0;
    const char **names = xcalloc(nc->njobs ? nc->njobs : 1, sizeof *names);
    d->jobs = NULL;
    d->njobs = d->cap_jobs = 0;
    for (size_t i = 0; i < nc->njobs; i++) {
        struct dm_job *j = NULL;
        for (size_t k = 0; k < nprev; k++) {
            if (prev[k] && strcmp(prev[k]->name, nc->jobs[i].name) == 0) {
                j = prev[k];
                prev[k] = NULL;
                break;
            }
        }
        names[i] = nc->jobs[i].name;
        if (j) {
            bool was_removed = j->removed;
            j->removed = false;
            job_take_config(j, &nc->jobs[i]);
            kept++;
            if (was_removed)
                log_info(j->name, "job back in the config while its last cycle runs");
        }
        jobs_push(d, j ? j : job_new(d, &nc->jobs[i]));
    }
    status_jobs_sync(&d->st, names, nc->njobs);
    free(names);
    for (size_t i = 0; i < d->njobs; i++) {
        struct dm_job *j = d->jobs[i];
        if (!j->running && !j->due_mono) /* new job (kept ones are armed or running) */
            job_arm(j, added++ * DAEMON_STAGGER_MS);
    }
    for (size_t k = 0; k < nprev; k++) {
        struct dm_job *j = prev[k];
        if (!j)
            continue;
        if (!j->removed) {
            removed++;
            log_info(j->name, "job removed by reload%s", j->running ? "; its cycle finishes" : "");
        }
        j->removed = true;
        j->cfg = NULL; /* its config generation may go before the cycle ends */
        uv_timer_stop(&j->timer);
        j->due_mono = 0;
        if (j->running)
            jobs_push(d, j);
        else {
            uv_close((uv_handle_t *)&j->timer, on_job_closed);
        }
    }
    free(prev);
    gen_unref(d, old);
    if (coord_changed) {
        if (prev_coord) {
            /* its lease goes now, so no instance waits a TTL for the jobs it held */
            if (d->coord_old)
                coord_free(d->coord_old);
            d->coord_old = prev_coord;
            coord_shutdown(prev_coord, on_old_coord_shut, d);
        }
        if (d->coord) {
            status_set_coordination(&d->st, "etcd", coord_member(d->coord));
            log_info(NULL, "coordination (re)started by reload member=%s", coord_member(d->coord));
        } else {
            status_set_coordination(&d->st, NULL, NULL);
            log_info(NULL, "coordination turned off by reload; this instance runs every job");
        }
    }
    if (d->coord)
        coord_jobs(d);
    coord_refresh(d, false);

    log_set_level(nc->log_level);
    status_reload_done(&d->st, util_now_ms(), true, nc->file, NULL);
    write_files(d);
    notify_ready_status(notify_status_line(&d->st, line, sizeof line));
    log_info(NULL, "reload ok config=%s jobs=%zu added=%zu removed=%zu kept=%zu",
             log_quote(q, sizeof q, nc->file), nc->njobs, added, removed, kept);
}

/* ---- sync now -------------------------------------------------------------------------------*/

/* Start now every job `pick` selects (NULL: all), from the timer on the next loop turn like
 * every other cycle start. A running job is not started twice; with `queue` it runs again
 * right after its cycle ends (approval_waiting), else not (its cycle reads fresh data anyway).
 * Returns how many start now; *busy gets how many were running. */
static size_t jobs_start_now(struct daemon *d, bool (*pick)(struct dm_job *j), bool queue,
                             size_t *busy)
{
    size_t started = 0;
    *busy = 0;
    for (size_t i = 0; i < d->njobs; i++) {
        struct dm_job *j = d->jobs[i];
        if (j->removed || (pick && !pick(j)))
            continue;
        if (j->running) {
            (*busy)++;
            j->approval_waiting = j->approval_waiting || queue;
            continue;
        }
        job_arm(j, 0);
        started++;
    }
    return started;
}

void daemon_sync_now(struct daemon *d)
{
    size_t busy;
    if (d->stopping)
        return;
    size_t started = jobs_start_now(d, NULL, false, &busy);
    log_info(NULL, "sync now requested starting=%zu already_running=%zu", started, busy);
}

static bool has_approval(struct dm_job *j)
{
    char fp[APPROVE_FP_LEN], err[512], q[600];
    int rc = approve_pending(j->d->gen->cfg->state_dir, j->name, fp, err, sizeof err);
    if (rc < 0)
        log_warning(j->name, "approval not readable error=%s", log_quote(q, sizeof q, err));
    return rc == 1;
}

void daemon_run_approved(struct daemon *d)
{
    size_t busy;
    if (d->stopping)
        return;
    size_t started = jobs_start_now(d, has_approval, true, &busy);
    log_info(NULL, "approvals checked starting=%zu after_running_cycle=%zu", started, busy);
}

/* ---- signals and watchdog -------------------------------------------------------------------*/

static void on_signal(uv_signal_t *h, int signum)
{
    struct daemon *d = h->data;
    switch (signum) {
    case SIGHUP:
        daemon_reload(d);
        break;
    case SIGUSR1:
        daemon_sync_now(d);
        break;
    case SIGUSR2:
        daemon_run_approved(d);
        break;
    default:
        log_info(NULL, "signal received signal=%s", signum == SIGINT ? "SIGINT" : "SIGTERM");
        daemon_stop(d);
        break;
    }
}

static void on_watchdog(uv_timer_t *t)
{
    notify_watchdog();
}

static void start_signal(struct daemon *d, uv_signal_t *h, int signum)
{
    uv_signal_init(d->loop, h);
    h->data = d;
    uv_signal_start(h, on_signal, signum);
}

/* ---- life cycle -----------------------------------------------------------------------------*/

/* The created-roles store lives in state_dir: opened at start, and again when a reload moves
 * state_dir (what the old one remembered stays there, for at most RECENT_TTL_MS). */
static void recent_follow(struct daemon *d, const char *state_dir)
{
    if (d->recent && d->recent_dir && strcmp(d->recent_dir, state_dir) == 0)
        return;
    char err[512], q[600];
    recent_free(d->recent);
    free(d->recent_dir);
    d->recent = recent_open(state_dir, err, sizeof err);
    d->recent_dir = xstrdup(state_dir);
    if (err[0])
        log_warning(NULL, "created roles not remembered across the restart error=%s",
                    log_quote(q, sizeof q, err));
}

/* The journal lives in state_dir: opened at start; a reload applies new journal: limits to it
 * in place, opens it anew when state_dir moved (or when it could not be opened before). */
static void journal_follow(struct daemon *d, const struct cfg_config *cfg)
{
    if (d->journal && d->journal_dir && strcmp(d->journal_dir, cfg->state_dir) == 0) {
        journal_set_limits(d->journal, cfg->journal_max_size, cfg->journal_keep);
        return;
    }
    char err[512], q[600];
    if (d->journal) {
        util_grow((void **)&d->old_journals, &d->cap_old_journals, d->nold_journals + 1,
                  sizeof *d->old_journals);
        d->old_journals[d->nold_journals++] = d->journal;
    }
    free(d->journal_dir);
    d->journal_dir = xstrdup(cfg->state_dir);
    d->journal =
        journal_open(cfg->state_dir, cfg->journal_max_size, cfg->journal_keep, err, sizeof err);
    if (!d->journal)
        log_warning(NULL, "changes are not journaled error=%s", log_quote(q, sizeof q, err));
}

struct daemon *daemon_new(uv_loop_t *loop, struct cfg_config *cfg, const struct daemon_opts *o,
                          char *err, size_t errlen)
{
    struct tnt_set *tenants;

    if (status_ensure_dir(cfg->state_dir, err, errlen) != 0) {
        cfg_free(cfg);
        return NULL;
    }
    struct daemon *d = xcalloc(1, sizeof *d);
    d->loop = loop;
    d->config_path = xstrdup(o->config_path ? o->config_path : cfg->file);
    d->use_signals = o->signals;
    d->rng = (uint64_t)util_now_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)d;
    d->engine = http_engine_new(loop, NULL, err, errlen);
    if (!d->engine) {
        cfg_free(cfg);
        free(d->config_path);
        free(d);
        return NULL;
    }
    tenants = tnt_set_new(loop, d->engine, cfg, NULL, err, errlen);
    if (!tenants) {
        http_engine_close(d->engine); /* finished by the caller's uv_run */
        cfg_free(cfg);
        free(d->config_path);
        free(d);
        return NULL;
    }
    d->gen = gen_new(d, cfg, tenants);
    status_init(&d->st, ROLESYNC_VERSION, d->config_path, util_now_ms());
    recent_follow(d, cfg->state_dir);
    journal_follow(d, cfg);
    if (cfg->coordination && coord_begin(d, cfg->coordination, err, errlen) != 0) {
        d->finished = true;
        close_all(d); /* finished by the caller's uv_run */
        daemon_free(d);
        return NULL;
    }
    return d;
}

int daemon_start(struct daemon *d, char *err, size_t errlen)
{
    const struct cfg_config *cfg = d->gen->cfg;
    const char **names = xcalloc(cfg->njobs ? cfg->njobs : 1, sizeof *names);
    char line[256], q[1200];

    uv_timer_init(d->loop, &d->watchdog);
    uv_timer_init(d->loop, &d->reap);
    uv_timer_init(d->loop, &d->backstop);
    if (d->use_signals) {
        start_signal(d, &d->sig_hup, SIGHUP);
        start_signal(d, &d->sig_usr1, SIGUSR1);
        start_signal(d, &d->sig_usr2, SIGUSR2);
        start_signal(d, &d->sig_term, SIGTERM);
        start_signal(d, &d->sig_int, SIGINT);
    }
    d->handles_open = true;

    for (size_t i = 0; i < cfg->njobs; i++) {
        names[i] = cfg->jobs[i].name;
        jobs_push(d, job_new(d, &cfg->jobs[i]));
    }
    status_jobs_sync(&d->st, names, cfg->njobs);
    free(names);
    /* A job that was in sync before the restart stays "in sync since" then if its first cycle
     * here is in sync too (product.md 4c). */
    struct status_prev *prev = status_prev_read(cfg->state_dir);
    for (size_t i = 0; prev && i < d->st.njobs; i++)
        status_prev_carry(d->st.jobs[i], prev);
    status_prev_free(prev);
    if (d->coord) {
        /* nothing runs before etcd says which jobs are ours (coord_refresh arms them) */
        coord_jobs(d);
        coord_refresh(d, false);
    } else {
        for (size_t i = 0; i < d->njobs; i++)
            job_arm(d->jobs[i], i * DAEMON_STAGGER_MS);
    }

    if (status_write(&d->st, cfg->state_dir, err, errlen) != 0) {
        d->exit_code = 1;
        d->finished = true;
        close_all(d);
        return -1;
    }
    if (cfg->metrics_file)
        write_metrics(d, cfg->metrics_file);
    notify_ready_status(notify_status_line(&d->st, line, sizeof line));

    uint64_t wd = notify_watchdog_interval_ms();
    if (wd) {
        notify_watchdog();
        uv_timer_start(&d->watchdog, on_watchdog, wd, wd);
    }
    log_info(NULL, "started version=%s pid=%ld config=%s jobs=%zu state_dir=%s%s", ROLESYNC_VERSION,
             (long)getpid(), log_quote(q, sizeof q, d->config_path), cfg->njobs, cfg->state_dir,
             wd ? " watchdog=on" : "");
    return 0;
}

int daemon_exit_code(const struct daemon *d)
{
    return d->exit_code;
}

void daemon_free(struct daemon *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->nretired; i++)
        free(d->retired[i].tenant);
    free(d->retired);
    free(d->jobs);
    status_free(&d->st);
    recent_free(d->recent);
    free(d->recent_dir);
    journal_close(d->journal);
    for (size_t i = 0; i < d->nold_journals; i++)
        journal_close(d->old_journals[i]);
    free(d->old_journals);
    free(d->journal_dir);
    free(d->config_path);
    free(d);
}

int daemon_run(struct cfg_config *cfg, const char *config_path)
{
    /* Static: after a forced exit (the backstop) the loop is never closed, and libuv's worker
     * threads, joined at process exit, may still post a finished page to it. */
    static uv_loop_t loop;
    char err[1024];
    struct daemon_opts o = {.config_path = config_path, .signals = true};
    int code;

    if (uv_loop_init(&loop) != 0) {
        fprintf(stderr, "rolesyncd: cannot create the event loop\n");
        cfg_free(cfg);
        return 1;
    }
    struct daemon *d = daemon_new(&loop, cfg, &o, err, sizeof err);
    if (!d) {
        fprintf(stderr, "rolesyncd: %s\n", err);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return 1;
    }
    if (daemon_start(d, err, sizeof err) != 0) {
        fprintf(stderr, "rolesyncd: %s\n", err);
        uv_run(&loop, UV_RUN_DEFAULT);
        daemon_free(d);
        uv_loop_close(&loop);
        return 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    code = daemon_exit_code(d);
    if (d->forced)
        return code; /* a cycle never ended: its memory cannot be freed safely; exit now */
    daemon_free(d);
    if (uv_loop_close(&loop) != 0) {
        log_warning(NULL, "event loop closed with handles still open");
        return code ? code : 1;
    }
    return code;
}

/* ---- `rolesyncd --approve` for a running daemon ---------------------------------------------*/

static bool job_named(const struct cfg_job *job, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], job->name) == 0 || (job->group && strcmp(names[i], job->group) == 0))
            return true;
    return n == 0;
}

int daemon_approve(const struct cfg_config *cfg, const char *const *jobs, size_t njobs,
                   const char *fp, FILE *out)
{
    char err[512];
    const char **hit = xcalloc(cfg->njobs + 1, sizeof *hit);
    size_t nhit = 0;
    int rc = 1;

    for (size_t k = 0; k < njobs; k++) {
        bool known = false;
        for (size_t i = 0; i < cfg->njobs && !known; i++)
            known = job_named(&cfg->jobs[i], &jobs[k], 1);
        if (!known) {
            fprintf(stderr, "rolesyncd: no job named \"%s\" in %s\n", jobs[k], cfg->file);
            goto out;
        }
    }
    for (size_t i = 0; i < cfg->njobs; i++) {
        if (!job_named(&cfg->jobs[i], jobs, njobs))
            continue;
        struct approve_set *s =
            approve_load_refused(cfg->state_dir, cfg->jobs[i].name, fp, err, sizeof err);
        if (err[0])
            fprintf(stderr, "rolesyncd: %s\n", err);
        if (s)
            hit[nhit++] = cfg->jobs[i].name;
        approve_set_free(s);
    }
    if (nhit == 0) {
        /* The daemon records every refused plan; an approval of anything else would have no
         * reviewed set to hold the plan to. */
        fprintf(stderr,
                "rolesyncd: fingerprint %s is unknown%s%s: no refused plan recorded in %s has "
                "it (rolesyncd --status shows the last refusal's fingerprint)\n",
                fp, njobs ? " for job " : "", njobs ? jobs[0] : "", cfg->state_dir);
        goto out;
    }
    pid_t pid = status_file_owner(cfg->state_dir);
    if (pid <= 0) {
        fprintf(stderr,
                "rolesyncd: no running daemon found (%s/%s names no live rolesyncd); nothing "
                "recorded. Apply it now with: rolesyncd --once --approve %s%s%s\n",
                cfg->state_dir, STATUS_FILE_NAME, fp, nhit == 1 ? " --job " : "",
                nhit == 1 ? hit[0] : "");
        goto out;
    }
    for (size_t i = 0; i < nhit; i++) {
        if (approve_record(cfg->state_dir, hit[i], fp, util_now_ms(), err, sizeof err) != 0) {
            fprintf(stderr, "rolesyncd: %s\n", err);
            goto out;
        }
    }
    if (kill(pid, SIGUSR2) != 0) {
        fprintf(stderr,
                "rolesyncd: approval recorded, but the daemon (pid %ld) could not be signalled: "
                "%s; it takes the approval at the job's next cycle\n",
                (long)pid, strerror(errno));
        goto out;
    }
    for (size_t i = 0; i < nhit; i++)
        fprintf(out, "approval %s recorded for job %s; daemon pid %ld signalled (SIGUSR2)\n", fp,
                hit[i], (long)pid);
    rc = 0;
out:
    free(hit);
    return rc;
}
