/* metrics.c — Prometheus text exposition of the status model, written atomically. */
#include "rolesync/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rolesync/http.h"
#include "rolesync/log.h"
#include "rolesync/util.h"

char *metrics_label_escape(const char *s)
{
    size_t n = 0;
    for (const char *p = s; *p; p++)
        n += (*p == '\\' || *p == '"' || *p == '\n') ? 2 : 1;
    char *out = xmalloc(n + 1), *o = out;
    for (const char *p = s; *p; p++) {
        if (*p == '\\' || *p == '"') {
            *o++ = '\\';
            *o++ = *p;
        } else if (*p == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

static void header(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Seconds since the epoch; whole seconds like the status file. */
static long long secs(int64_t ms)
{
    return ms > 0 ? (long long)(ms / 1000) : 0;
}

static unsigned long long u(uint64_t v)
{
    return (unsigned long long)v;
}

/* One gauge per job whose value comes from `get`. */
static void per_job(FILE *f, const struct status *st, char **jobs, const char *name,
                    const char *help, long long (*get)(const struct status_job *))
{
    header(f, name, "gauge", help);
    for (size_t i = 0; i < st->njobs; i++)
        fprintf(f, "%s{job=\"%s\"} %lld\n", name, jobs[i], get(st->jobs[i]));
}

static long long g_last_run(const struct status_job *j)
{
    return j->has_last_run ? secs(j->last_run.finished_at_ms) : 0;
}
static long long g_last_success(const struct status_job *j)
{
    return secs(j->last_success_at_ms);
}
static long long g_next_run(const struct status_job *j)
{
    return secs(j->next_run_at_ms);
}
static long long g_held(const struct status_job *j)
{
    return j->held;
}

static long long g_in_sync(const struct status_job *j)
{
    return j->in_sync ? 1 : 0;
}
static long long g_failures(const struct status_job *j)
{
    return (long long)j->consecutive_failures;
}
static long long g_pending(const struct status_job *j)
{
    return j->has_last_run ? (long long)j->last_run.pending : 0;
}
static long long g_failed_ops(const struct status_job *j)
{
    return j->has_last_run ? (long long)j->last_run.failed_ops : 0;
}
static long long g_not_converging(const struct status_job *j)
{
    return j->has_last_run ? (long long)j->last_run.n_not_converging : 0;
}

static int cmp_requests(const void *a, const void *b)
{
    const struct metrics_http_requests *x = a, *y = b;
    int c = strcmp(x->tenant, y->tenant);
    return c ? c : (x->code > y->code) - (x->code < y->code);
}

static int cmp_retries(const void *a, const void *b)
{
    const struct metrics_http_retries *x = a, *y = b;
    return strcmp(x->tenant, y->tenant);
}

static void render_http(FILE *f, const struct metrics_http *http)
{
    size_t nreq = http ? http->nrequests : 0, nret = http ? http->nretries : 0;
    struct metrics_http_requests *req = xcalloc(nreq, sizeof *req);
    struct metrics_http_retries *ret = xcalloc(nret, sizeof *ret);

    if (nreq)
        memcpy(req, http->requests, nreq * sizeof *req);
    if (nret)
        memcpy(ret, http->retries, nret * sizeof *ret);
    qsort(req, nreq, sizeof *req, cmp_requests);
    qsort(ret, nret, sizeof *ret, cmp_retries);

    /* A series may appear once only: duplicates (same tenant and code) are summed. */
    header(f, "rolesyncd_http_requests_total", "counter",
           "HTTP requests sent, by tenant and response status (0: no response).");
    for (size_t i = 0; i < nreq;) {
        uint64_t sum = 0;
        size_t k = i;
        while (k < nreq && cmp_requests(&req[i], &req[k]) == 0)
            sum += req[k++].count;
        char *t = metrics_label_escape(req[i].tenant);
        fprintf(f, "rolesyncd_http_requests_total{tenant=\"%s\",code=\"%d\"} %llu\n", t,
                req[i].code, u(sum));
        free(t);
        i = k;
    }
    header(f, "rolesyncd_http_retries_total", "counter", "HTTP requests retried, by tenant.");
    for (size_t i = 0; i < nret;) {
        uint64_t sum = 0;
        size_t k = i;
        while (k < nret && cmp_retries(&ret[i], &ret[k]) == 0)
            sum += ret[k++].count;
        char *t = metrics_label_escape(ret[i].tenant);
        fprintf(f, "rolesyncd_http_retries_total{tenant=\"%s\"} %llu\n", t, u(sum));
        free(t);
        i = k;
    }
    free(req);
    free(ret);
}

char *metrics_render(const struct status *st, const struct metrics_http *http)
{
    static const enum status_job_state states[] = {STATUS_JOB_IDLE, STATUS_JOB_RUNNING,
                                                   STATUS_JOB_WAITING_RETRY, STATUS_JOB_REFUSED,
                                                   STATUS_JOB_FAILED};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    char **jobs = xcalloc(st->njobs, sizeof *jobs);

    if (!f) {
        fputs("<2>FATAL out of memory\n", stderr);
        abort();
    }
    for (size_t i = 0; i < st->njobs; i++)
        jobs[i] = metrics_label_escape(st->jobs[i]->name);

    char *ver = metrics_label_escape(st->version ? st->version : "");
    header(f, "rolesyncd_build_info", "gauge", "Always 1; the version is a label.");
    fprintf(f, "rolesyncd_build_info{version=\"%s\"} 1\n", ver);
    free(ver);
    header(f, "rolesyncd_start_time_seconds", "gauge", "When the daemon started, epoch seconds.");
    fprintf(f, "rolesyncd_start_time_seconds %lld\n", secs(st->started_at_ms));
    header(f, "rolesyncd_config_last_reload_successful", "gauge",
           "0 if the last reload failed (the previous config is still in use), else 1.");
    fprintf(f, "rolesyncd_config_last_reload_successful %d\n", st->last_reload_ok ? 1 : 0);

    per_job(f, st, jobs, "rolesyncd_job_last_run_timestamp_seconds",
            "End of the job's last finished run, epoch seconds (0: none yet).", g_last_run);
    per_job(f, st, jobs, "rolesyncd_job_last_success_timestamp_seconds",
            "End of the job's last successful run, epoch seconds (0: never).", g_last_success);
    per_job(f, st, jobs, "rolesyncd_job_next_run_timestamp_seconds",
            "When the job runs next, epoch seconds (0: not scheduled).", g_next_run);
    per_job(f, st, jobs, "rolesyncd_job_in_sync",
            "1 if the job's last run found the target in sync with the source.", g_in_sync);

    header(f, "rolesyncd_job_state", "gauge", "1 for the job's current state, 0 for the others.");
    for (size_t i = 0; i < st->njobs; i++)
        for (size_t s = 0; s < UTIL_ARRAY_LEN(states); s++)
            fprintf(f, "rolesyncd_job_state{job=\"%s\",state=\"%s\"} %d\n", jobs[i],
                    status_job_state_name(states[s]), st->jobs[i]->state == states[s]);
    if (st->coord_backend) {
        /* standby exists only with coordination: without it the output is as it was */
        for (size_t i = 0; i < st->njobs; i++)
            fprintf(f, "rolesyncd_job_state{job=\"%s\",state=\"standby\"} %d\n", jobs[i],
                    st->jobs[i]->state == STATUS_JOB_STANDBY);
        size_t held = 0;
        for (size_t i = 0; i < st->njobs; i++)
            held += st->jobs[i]->held;
        header(f, "rolesyncd_jobs_held", "gauge",
               "Jobs whose etcd key this instance holds under its lease (coordination).");
        fprintf(f, "rolesyncd_jobs_held %zu\n", held);
        per_job(f, st, jobs, "rolesyncd_job_held", "1 if this instance holds the job.", g_held);
    }

    per_job(f, st, jobs, "rolesyncd_job_consecutive_failures",
            "Failed or partial runs since the job's last success.", g_failures);

    header(f, "rolesyncd_job_changes_total", "counter",
           "Changes applied to the target since the daemon started (dry runs excluded).");
    for (size_t i = 0; i < st->njobs; i++) {
        const struct status_changes *c = &st->jobs[i]->changes_total;
        const struct {
            const char *kind;
            uint64_t v;
        } rows[] = {{"roles_created", c->roles_created},
                    {"roles_updated", c->roles_updated},
                    {"roles_deleted", c->roles_deleted},
                    {"assignments_added", c->assignments_added},
                    {"assignments_removed", c->assignments_removed}};
        for (size_t r = 0; r < UTIL_ARRAY_LEN(rows); r++)
            fprintf(f, "rolesyncd_job_changes_total{job=\"%s\",kind=\"%s\"} %llu\n", jobs[i],
                    rows[r].kind, u(rows[r].v));
    }

    header(f, "rolesyncd_job_runs_total", "counter",
           "Finished runs since the daemon started, by result.");
    for (size_t i = 0; i < st->njobs; i++)
        for (int r = 0; r < STATUS_RESULT_COUNT; r++)
            fprintf(f, "rolesyncd_job_runs_total{job=\"%s\",result=\"%s\"} %llu\n", jobs[i],
                    status_result_name((enum status_result)r), u(st->jobs[i]->runs_total[r]));

    per_job(f, st, jobs, "rolesyncd_job_pending_changes",
            "Changes still to apply after the job's last run.", g_pending);
    per_job(f, st, jobs, "rolesyncd_job_failed_operations",
            "Operations of the job's last run that failed after all retries.", g_failed_ops);
    per_job(f, st, jobs, "rolesyncd_job_not_converging",
            "Changes the target accepted but did not keep, in the job's last run.",
            g_not_converging);

    header(f, "rolesyncd_job_unmatched_users", "gauge",
           "In-scope users found on one side only, in the job's last run.");
    for (size_t i = 0; i < st->njobs; i++) {
        const struct status_job *j = st->jobs[i];
        fprintf(f, "rolesyncd_job_unmatched_users{job=\"%s\",side=\"source_only\"} %llu\n", jobs[i],
                u(j->has_last_run ? j->last_run.unmatched_source_only : 0));
        fprintf(f, "rolesyncd_job_unmatched_users{job=\"%s\",side=\"target_only\"} %llu\n", jobs[i],
                u(j->has_last_run ? j->last_run.unmatched_target_only : 0));
    }

    render_http(f, http);

    for (size_t i = 0; i < st->njobs; i++)
        free(jobs[i]);
    free(jobs);
    if (fclose(f) != 0 || !buf) {
        fputs("<2>FATAL out of memory\n", stderr);
        abort();
    }
    return buf;
}

int metrics_write(const struct status *st, const struct metrics_http *http, const char *path,
                  char *err, size_t errlen)
{
    char *text = metrics_render(st, http);
    int rc = status_write_file_atomic(path, text, strlen(text), METRICS_FILE_MODE, err, errlen);

    if (rc != 0) {
        char q[512];
        log_warning(NULL, "cannot write metrics file error=%s", log_quote(q, sizeof q, err));
    }
    free(text);
    return rc;
}

void metrics_rows_add(struct metrics_rows *r, const char *tenant, const uint64_t *by_status,
                      const uint64_t *token_by_status, uint64_t retries)
{
    for (int code = 0; code < HTTP_STATUS_SLOTS; code++) {
        uint64_t n = by_status[code] + (token_by_status ? token_by_status[code] : 0);
        if (n == 0)
            continue;
        util_grow((void **)&r->req, &r->capreq, r->nreq + 1, sizeof *r->req);
        r->req[r->nreq++] = (struct metrics_http_requests){tenant, code, n};
    }
    util_grow((void **)&r->ret, &r->capret, r->nret + 1, sizeof *r->ret);
    r->ret[r->nret++] = (struct metrics_http_retries){tenant, retries};
}

struct metrics_http metrics_rows_view(const struct metrics_rows *r)
{
    return (struct metrics_http){r->req, r->nreq, r->ret, r->nret};
}

void metrics_rows_free(struct metrics_rows *r)
{
    free(r->req);
    free(r->ret);
    memset(r, 0, sizeof *r);
}
