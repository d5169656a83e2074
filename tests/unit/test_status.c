/* test_status.c — status model, status.json contract shape, atomic writes, `--status` printer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rolesync/log.h"
#include "rolesync/status.h"
#include "rolesync/util.h"

/* 2026-11-22T05:00:00Z, the time in product.md's example. */
#define T0 1795323600000LL
#define SEC 1000LL

/* product.md section 6, verbatim. */
static const char *spec_example =
    "{\n"
    "  \"schema_version\": 1,\n"
    "  \"daemon\": { \"pid\": 4242, \"version\": \"1.0.0\", \"started_at\": "
    "\"2026-11-22T05:00:00Z\",\n"
    "              \"config_file\": \"/etc/rolesyncd/rolesyncd.yaml\", \"config_loaded_at\": "
    "\"2026-11-22T05:00:00Z\",\n"
    "              \"last_reload\": { \"at\": null, \"ok\": true, \"error\": null } },\n"
    "  \"jobs\": {\n"
    "    \"prod-to-dev\": {\n"
    "      \"state\": \"idle\",\n"
    "      \"in_sync\": true,\n"
    "      \"last_run\": {\n"
    "        \"started_at\": \"2026-11-22T05:00:00Z\", \"finished_at\": \"2026-11-22T05:00:07Z\",\n"
    "        \"result\": \"ok\",\n"
    "        \"dry_run\": false,\n"
    "        \"changes\": { \"roles_created\": 0, \"roles_updated\": 1, \"roles_deleted\": 0,\n"
    "                     \"assignments_added\": 12, \"assignments_removed\": 3 },\n"
    "        \"pending\": 0,\n"
    "        \"failed_ops\": 0,\n"
    "        \"requests\": 41, \"retries\": 2,\n"
    "        \"unmatched_users\": { \"source_only\": 4, \"target_only\": 1 },\n"
    "        \"not_converging\": [],\n"
    "        \"errors\": []\n"
    "      },\n"
    "      \"last_success_at\": \"2026-11-22T05:00:07Z\",\n"
    "      \"consecutive_failures\": 0,\n"
    "      \"next_run_at\": \"2026-11-22T05:10:07Z\"\n"
    "    }\n"
    "  }\n"
    "}\n";

/* ---- helpers ------------------------------------------------------------------------------ */

static struct json_object *get(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;
    assert_true(json_object_is_type(o, json_type_object));
    if (!json_object_object_get_ex(o, key, &v))
        fail_msg("missing key \"%s\"", key);
    return v;
}

/* The object has exactly these keys. */
static void assert_keys(struct json_object *o, const char *const *keys, size_t n)
{
    assert_true(json_object_is_type(o, json_type_object));
    for (size_t i = 0; i < n; i++)
        if (!json_object_object_get_ex(o, keys[i], NULL))
            fail_msg("missing key \"%s\"", keys[i]);
    assert_int_equal(json_object_object_length(o), n);
}

static void assert_type(struct json_object *o, const char *key, enum json_type t)
{
    struct json_object *v = get(o, key);
    if (t == json_type_null) {
        if (v != NULL)
            fail_msg("\"%s\" should be null, is %s", key, json_object_to_json_string(v));
        return;
    }
    if (!json_object_is_type(v, t))
        fail_msg("\"%s\" has type %s, expected %s", key, json_type_to_name(json_object_get_type(v)),
                 json_type_to_name(t));
}

static void assert_str(struct json_object *o, const char *key, const char *want)
{
    assert_type(o, key, json_type_string);
    assert_string_equal(json_object_get_string(get(o, key)), want);
}

static void assert_int(struct json_object *o, const char *key, int64_t want)
{
    assert_type(o, key, json_type_int);
    assert_int_equal(json_object_get_int64(get(o, key)), want);
}

static struct json_object *render_parse(const struct status *st)
{
    char *s = status_render_json(st);
    struct json_object *o = json_tokener_parse(s);
    assert_non_null(o);
    assert_true(s[strlen(s) - 1] == '\n');
    free(s);
    return o;
}

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/rolesync-status-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return xstrdup(d);
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *p = xasprintf("%s/%s", dir, e->d_name);
        unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Count the entries of dir (not . and ..), copying up to max names. */
static size_t dir_entries(const char *dir, char names[][64], size_t max)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n < max)
            snprintf(names[n], 64, "%.63s", e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

/* The model behind product.md's example. */
static void build_spec_example(struct status *st)
{
    status_init(st, "1.0.0", "/etc/rolesyncd/rolesyncd.yaml", T0);
    st->pid = 4242;
    struct status_job *job = status_job_add(st, "prod-to-dev");
    struct status_run *run = status_job_run_begin(job, T0, false);
    run->changes.roles_updated = 1;
    run->changes.assignments_added = 12;
    run->changes.assignments_removed = 3;
    run->requests = 41;
    run->retries = 2;
    run->unmatched_source_only = 4;
    run->unmatched_target_only = 1;
    status_job_run_end(job, T0 + 7 * SEC, STATUS_RESULT_OK);
    status_job_set_next_run(job, T0 + 607 * SEC);
}

/* ---- shape -------------------------------------------------------------------------------- */

/* The rendered model equals the spec's example, key for key and type for type; the only extra
 * key is the documented job "reason" (null here). */
static void test_matches_spec_example(void **state)
{
    struct status st;
    build_spec_example(&st);
    struct json_object *got = render_parse(&st);
    struct json_object *want = json_tokener_parse(spec_example);
    assert_non_null(want);

    struct json_object *job = get(get(got, "jobs"), "prod-to-dev");
    assert_type(job, "reason", json_type_null);
    json_object_object_del(job, "reason");
    /* product.md 4c additions: null unless the run was refused / applied under an approval */
    struct json_object *lr = get(job, "last_run");
    assert_type(lr, "refusal", json_type_null);
    assert_type(lr, "approved", json_type_null);
    json_object_object_del(lr, "refusal");
    json_object_object_del(lr, "approved");
    /* product.md 7a addition: null unless the fence stopped the run's writes */
    assert_type(lr, "abandoned", json_type_null);
    json_object_object_del(lr, "abandoned");
    /* and the cycle's id (none given here) and the job's in-sync stretch (since this run) */
    assert_type(lr, "cycle", json_type_null);
    json_object_object_del(lr, "cycle");
    assert_str(job, "in_sync_since", "2026-11-22T05:00:00Z");
    json_object_object_del(job, "in_sync_since");
    if (!json_object_equal(got, want))
        fail_msg("rendered status differs from the spec:\n%s",
                 json_object_to_json_string_ext(got, JSON_C_TO_STRING_PRETTY));
    json_object_put(got);
    json_object_put(want);
    status_free(&st);
}

static void test_shape_before_first_run(void **state)
{
    static const char *const top[] = {"schema_version", "daemon", "jobs"};
    static const char *const daemon[] = {"pid",         "version",          "started_at",
                                         "config_file", "config_loaded_at", "last_reload"};
    static const char *const reload[] = {"at", "ok", "error"};
    static const char *const jobkeys[] = {"state",       "in_sync",         "in_sync_since",
                                          "last_run",    "last_success_at", "consecutive_failures",
                                          "next_run_at", "reason"};
    struct status st;
    status_init(&st, "9.9.9", "/x/y.yaml", T0);
    status_job_add(&st, "b-job");
    status_job_add(&st, "a-job");
    struct json_object *o = render_parse(&st);

    assert_keys(o, top, UTIL_ARRAY_LEN(top));
    assert_int(o, "schema_version", 1);
    struct json_object *d = get(o, "daemon");
    assert_keys(d, daemon, UTIL_ARRAY_LEN(daemon));
    assert_int(d, "pid", getpid());
    assert_str(d, "version", "9.9.9");
    assert_str(d, "started_at", "2026-11-22T05:00:00Z");
    assert_str(d, "config_file", "/x/y.yaml");
    assert_str(d, "config_loaded_at", "2026-11-22T05:00:00Z");
    struct json_object *lr = get(d, "last_reload");
    assert_keys(lr, reload, UTIL_ARRAY_LEN(reload));
    assert_type(lr, "at", json_type_null);
    assert_type(lr, "ok", json_type_boolean);
    assert_true(json_object_get_boolean(get(lr, "ok")));
    assert_type(lr, "error", json_type_null);

    struct json_object *jobs = get(o, "jobs");
    assert_int_equal(json_object_object_length(jobs), 2);
    /* config order, not sorted */
    const char *order[2];
    int i = 0;
    json_object_object_foreach(jobs, name, val)
    {
        (void)val;
        order[i++] = name;
    }
    assert_string_equal(order[0], "b-job");
    assert_string_equal(order[1], "a-job");
    struct json_object *j = get(jobs, "a-job");
    assert_keys(j, jobkeys, UTIL_ARRAY_LEN(jobkeys));
    assert_str(j, "state", "idle");
    assert_type(j, "in_sync", json_type_boolean);
    assert_false(json_object_get_boolean(get(j, "in_sync")));
    assert_type(j, "in_sync_since", json_type_null);
    assert_type(j, "last_run", json_type_null);
    assert_type(j, "last_success_at", json_type_null);
    assert_int(j, "consecutive_failures", 0);
    assert_type(j, "next_run_at", json_type_null);
    assert_type(j, "reason", json_type_null);
    json_object_put(o);
    status_free(&st);
}

static void test_errors_capped_counts_exact(void **state)
{
    static const char *const runkeys[] = {
        "cycle",   "started_at", "finished_at", "result",   "dry_run",         "changes",
        "pending", "failed_ops", "requests",    "retries",  "unmatched_users", "not_converging",
        "errors",  "refusal",    "approved",    "abandoned"};
    static const char *const errkeys[] = {"op",     "method",  "path",
                                          "status", "message", "correlation_id"};
    static const char *const nckeys[] = {"kind", "name", "reason"};
    struct status st;
    status_init(&st, "1", "/c", T0);
    struct status_job *job = status_job_add(&st, "j");
    struct status_run *run = status_job_run_begin(job, T0, false);
    for (int i = 0; i < 25; i++) {
        char path[64], msg[64];
        snprintf(path, sizeof path, "/api/v2/users/u%d/roles", i);
        snprintf(msg, sizeof msg, "error number %d", i);
        /* every third error is a transport failure: no status, no correlation id */
        status_run_add_error(run, "add_assignments", "PUT", path, i % 3 ? 404 : 0, msg,
                             i % 3 ? "corr-1" : NULL);
    }
    run->failed_ops = 25;
    run->pending = 25;
    run->requests = 70;
    status_run_add_not_converging(run, "role_definition", "Supervisor",
                                  "permission \"x:y\" not licensed");
    assert_int_equal(run->nerrors, STATUS_MAX_ERRORS);
    assert_int_equal(run->error_count, 25);
    status_job_run_end(job, T0 + 3 * SEC, STATUS_RESULT_PARTIAL);
    status_job_set_next_run(job, T0 + 33 * SEC);

    struct json_object *o = render_parse(&st);
    struct json_object *j = get(get(o, "jobs"), "j");
    assert_str(j, "state", "waiting_retry");
    assert_false(json_object_get_boolean(get(j, "in_sync")));
    assert_int(j, "consecutive_failures", 1);
    assert_type(j, "last_success_at", json_type_null);
    assert_str(j, "next_run_at", "2026-11-22T05:00:33Z");
    struct json_object *r = get(j, "last_run");
    assert_keys(r, runkeys, UTIL_ARRAY_LEN(runkeys));
    assert_str(r, "result", "partial");
    assert_str(r, "started_at", "2026-11-22T05:00:00Z");
    assert_str(r, "finished_at", "2026-11-22T05:00:03Z");
    assert_int(r, "failed_ops", 25);
    assert_int(r, "pending", 25);
    assert_int(r, "requests", 70);
    assert_type(r, "dry_run", json_type_boolean);

    struct json_object *errs = get(r, "errors");
    assert_true(json_object_is_type(errs, json_type_array));
    assert_int_equal(json_object_array_length(errs), 20);
    for (size_t i = 0; i < 20; i++) {
        struct json_object *e = json_object_array_get_idx(errs, i);
        char msg[64];
        assert_keys(e, errkeys, UTIL_ARRAY_LEN(errkeys));
        snprintf(msg, sizeof msg, "error number %zu", i); /* the first 20 are kept, in order */
        assert_str(e, "message", msg);
        assert_str(e, "op", "add_assignments");
        assert_str(e, "method", "PUT");
        if (i % 3) {
            assert_int(e, "status", 404);
            assert_str(e, "correlation_id", "corr-1");
        } else {
            assert_type(e, "status", json_type_null);
            assert_type(e, "correlation_id", json_type_null);
        }
    }
    struct json_object *nc = get(r, "not_converging");
    assert_int_equal(json_object_array_length(nc), 1);
    struct json_object *n0 = json_object_array_get_idx(nc, 0);
    assert_keys(n0, nckeys, UTIL_ARRAY_LEN(nckeys));
    assert_str(n0, "reason", "permission \"x:y\" not licensed");
    json_object_put(o);
    status_free(&st);
}

/* Server text is made valid UTF-8 and bounded before it enters the file. */
static void test_server_text_sanitized(void **state)
{
    struct status st;
    status_init(&st, "1", "/c", T0);
    struct status_job *job = status_job_add(&st, "j");
    struct status_run *run = status_job_run_begin(job, T0, false);
    char *big = xmalloc(5000);
    memset(big, 'a', 4999);
    big[4999] = '\0';
    big[1023] = '\xc3'; /* a 2-byte character straddling the 1 KiB cut */
    big[1024] = '\xa9';
    status_run_add_error(run, "op", "GET", "/p", 500,
                         "Z\xc3\xbcrich \xff\xfe bad \xed\xa0\x80 surrogate \xe2\x82", NULL);
    status_run_add_error(run, "op", "GET", "/p", 500, big, NULL);
    status_run_add_not_converging(run, "assignment", "\xc0\xaf", "ok \xf0\x9f\x98\x80");
    status_job_run_end(job, T0 + SEC, STATUS_RESULT_FAILED);
    status_job_set_state(job, STATUS_JOB_FAILED, "\x80reason\x1b[2J\n\x7f");

    struct json_object *o = render_parse(&st);
    struct json_object *j = get(get(o, "jobs"), "j");
    struct json_object *errs = get(get(j, "last_run"), "errors");
    assert_str(json_object_array_get_idx(errs, 0), "message",
               "Z\xc3\xbcrich ?? bad ??? surrogate ??");
    const char *m = json_object_get_string(get(json_object_array_get_idx(errs, 1), "message"));
    assert_int_equal(strlen(m), 1023 + 3);
    assert_string_equal(m + 1023, "...");
    struct json_object *nc =
        json_object_array_get_idx(get(get(j, "last_run"), "not_converging"), 0);
    assert_str(nc, "name", "??");
    assert_str(nc, "reason", "ok \xf0\x9f\x98\x80");
    assert_str(j, "reason", "?reason?[2J??"); /* no terminal escapes for `--status` */
    json_object_put(o);
    free(big);
    status_free(&st);
}

/* ---- model -------------------------------------------------------------------------------- */

static void test_state_transitions(void **state)
{
    struct status st;
    status_init(&st, "1", "/c", T0);
    struct status_job *job = status_job_add(&st, "j");
    assert_ptr_equal(status_job_add(&st, "j"), job); /* no duplicate */
    assert_int_equal(st.njobs, 1);

    struct status_run *run = status_job_run_begin(job, T0, false);
    assert_int_equal(job->state, STATUS_JOB_RUNNING);
    assert_false(job->has_last_run);
    run->changes.roles_created = 2;
    run->changes.assignments_added = 5;
    status_job_run_end(job, T0 + SEC, STATUS_RESULT_OK);
    assert_int_equal(job->state, STATUS_JOB_IDLE);
    assert_true(job->in_sync);
    assert_int_equal(job->last_success_at_ms, T0 + SEC);

    /* While the next run is in progress, last_run still shows the finished one. */
    run = status_job_run_begin(job, T0 + 10 * SEC, false);
    struct json_object *o = render_parse(&st);
    struct json_object *j = get(get(o, "jobs"), "j");
    assert_str(j, "state", "running");
    assert_str(get(j, "last_run"), "result", "ok");
    assert_str(get(j, "last_run"), "finished_at", "2026-11-22T05:00:01Z");
    json_object_put(o);

    run->failed_ops = 1;
    run->changes.assignments_added = 1;
    status_job_run_end(job, T0 + 11 * SEC, STATUS_RESULT_PARTIAL);
    assert_int_equal(job->state, STATUS_JOB_WAITING_RETRY);
    assert_false(job->in_sync);
    assert_int_equal(job->consecutive_failures, 1);
    assert_int_equal(job->last_success_at_ms, T0 + SEC);

    status_job_run_begin(job, T0 + 20 * SEC, false);
    status_job_run_end(job, T0 + 21 * SEC, STATUS_RESULT_FAILED);
    status_job_set_state(job, STATUS_JOB_FAILED, "authentication failed: 403 Forbidden");
    assert_int_equal(job->consecutive_failures, 2);
    o = render_parse(&st);
    j = get(get(o, "jobs"), "j");
    assert_str(j, "state", "failed");
    assert_str(j, "reason", "authentication failed: 403 Forbidden");
    assert_int(j, "consecutive_failures", 2);
    json_object_put(o);

    /* refused: not a failure (retrying sooner cannot help), reason kept when set after. */
    run = status_job_run_begin(job, T0 + 30 * SEC, false);
    run->pending = 120;
    status_job_run_end(job, T0 + 31 * SEC, STATUS_RESULT_REFUSED);
    assert_null(job->reason); /* cleared by run_end */
    status_job_set_state(job, STATUS_JOB_REFUSED, "plan deletes 120, max_deletes is 50");
    assert_int_equal(job->state, STATUS_JOB_REFUSED);
    assert_int_equal(job->consecutive_failures, 2);
    assert_false(job->in_sync);

    /* dry run with pending changes: a success, but not in sync; changes not counted as applied */
    run = status_job_run_begin(job, T0 + 40 * SEC, true);
    run->pending = 3;
    run->changes.roles_created = 3;
    status_job_run_end(job, T0 + 41 * SEC, STATUS_RESULT_DRY_RUN);
    assert_int_equal(job->state, STATUS_JOB_IDLE);
    assert_false(job->in_sync);
    assert_int_equal(job->consecutive_failures, 0);
    assert_int_equal(job->last_success_at_ms, T0 + 41 * SEC);
    assert_true(job->last_run.dry_run);

    run = status_job_run_begin(job, T0 + 50 * SEC, true);
    status_job_run_end(job, T0 + 51 * SEC, STATUS_RESULT_DRY_RUN);
    assert_true(job->in_sync);

    assert_int_equal(job->changes_total.roles_created, 2);
    assert_int_equal(job->changes_total.assignments_added, 6);
    assert_int_equal(job->runs_total[STATUS_RESULT_OK], 1);
    assert_int_equal(job->runs_total[STATUS_RESULT_PARTIAL], 1);
    assert_int_equal(job->runs_total[STATUS_RESULT_FAILED], 1);
    assert_int_equal(job->runs_total[STATUS_RESULT_REFUSED], 1);
    assert_int_equal(job->runs_total[STATUS_RESULT_DRY_RUN], 2);
    status_free(&st);
}

static void test_jobs_sync_and_remove(void **state)
{
    struct status st;
    status_init(&st, "1", "/c", T0);
    status_job_add(&st, "a");
    struct status_job *b = status_job_add(&st, "b");
    status_job_add(&st, "c");
    struct status_run *run = status_job_run_begin(b, T0, false);
    status_run_add_error(run, "x", NULL, NULL, 0, "boom", NULL);
    status_job_run_end(b, T0 + SEC, STATUS_RESULT_FAILED);

    const char *names[] = {"c", "b", "d", "d"};
    status_jobs_sync(&st, names, 4);
    assert_int_equal(st.njobs, 3);
    assert_string_equal(st.jobs[0]->name, "c");
    assert_string_equal(st.jobs[1]->name, "b");
    assert_string_equal(st.jobs[2]->name, "d");
    assert_ptr_equal(st.jobs[1], b); /* history kept */
    assert_int_equal(b->consecutive_failures, 1);
    assert_int_equal(b->last_run.nerrors, 1);
    assert_null(status_job_find(&st, "a"));
    assert_false(st.jobs[2]->has_last_run);

    status_job_remove(&st, "b");
    status_job_remove(&st, "nope");
    assert_int_equal(st.njobs, 2);
    assert_string_equal(st.jobs[0]->name, "c");
    assert_string_equal(st.jobs[1]->name, "d");
    status_jobs_sync(&st, NULL, 0);
    assert_int_equal(st.njobs, 0);
    struct json_object *o = render_parse(&st);
    assert_int_equal(json_object_object_length(get(o, "jobs")), 0);
    json_object_put(o);
    status_free(&st);
}

static void test_reload_recorded(void **state)
{
    struct status st;
    status_init(&st, "1", "/etc/a.yaml", T0);
    status_reload_done(&st, T0 + 60 * SEC, false, NULL,
                       "/etc/a.yaml:3:5: unknown key \"intervall\"\n/etc/a.yaml:9:1: bad");
    struct json_object *o = render_parse(&st);
    struct json_object *d = get(o, "daemon");
    struct json_object *lr = get(d, "last_reload");
    assert_str(lr, "at", "2026-11-22T05:01:00Z");
    assert_false(json_object_get_boolean(get(lr, "ok")));
    assert_str(lr, "error", "/etc/a.yaml:3:5: unknown key \"intervall\"\n/etc/a.yaml:9:1: bad");
    assert_str(d, "config_loaded_at", "2026-11-22T05:00:00Z"); /* old config still in use */
    json_object_put(o);

    status_reload_done(&st, T0 + 120 * SEC, true, "/etc/b.yaml", NULL);
    o = render_parse(&st);
    d = get(o, "daemon");
    lr = get(d, "last_reload");
    assert_true(json_object_get_boolean(get(lr, "ok")));
    assert_type(lr, "error", json_type_null);
    assert_str(lr, "at", "2026-11-22T05:02:00Z");
    assert_str(d, "config_loaded_at", "2026-11-22T05:02:00Z");
    assert_str(d, "config_file", "/etc/b.yaml");
    json_object_put(o);
    status_free(&st);
}

/* ---- atomic write ------------------------------------------------------------------------- */

static void test_write_mode_and_no_temp_left(void **state)
{
    char *dir = make_tmpdir();
    char err[256] = "", names[8][64];
    struct status st;
    struct stat sb;
    build_spec_example(&st);

    mode_t old = umask(0077); /* the mode must not depend on the umask */
    assert_int_equal(status_write(&st, dir, err, sizeof err), 0);
    /* a second write replaces the first */
    st.jobs[0]->consecutive_failures = 7;
    assert_int_equal(status_write(&st, dir, err, sizeof err), 0);
    umask(old);

    char *path = xasprintf("%s/status.json", dir);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0640);
    assert_int_equal(dir_entries(dir, names, 8), 1);
    assert_string_equal(names[0], "status.json");
    struct json_object *o = json_object_from_file(path);
    assert_non_null(o);
    assert_int(get(get(o, "jobs"), "prod-to-dev"), "consecutive_failures", 7);
    json_object_put(o);

    /* the generic writer with a bare file name uses the current directory */
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(dir), 0);
    assert_int_equal(status_write_file_atomic("x.prom", "a 1\n", 4, 0644, err, sizeof err), 0);
    assert_int_equal(chdir(cwd), 0);
    char *xp = xasprintf("%s/x.prom", dir);
    assert_int_equal(stat(xp, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0644);
    assert_int_equal(sb.st_size, 4);
    assert_int_equal(dir_entries(dir, names, 8), 2);
    free(xp);

    free(path);
    status_free(&st);
    rm_tree(dir);
    free(dir);
}

static void test_write_failure_reported(void **state)
{
    char err[512] = "";
    struct status st;
    char *buf = NULL;
    size_t len = 0;
    FILE *logf = open_memstream(&buf, &len);
    build_spec_example(&st);

    log_set_stream(logf, 0);
    assert_int_equal(status_write(&st, "/nonexistent/rolesync-test-dir", err, sizeof err), -1);
    log_set_stream(NULL, 0);
    fclose(logf);
    assert_non_null(strstr(err, "/nonexistent/rolesync-test-dir"));
    assert_non_null(strstr(err, "No such file or directory"));
    assert_non_null(strstr(buf, "WARNING cannot write status file"));
    free(buf);

    /* the target is a directory: rename fails, and the temp file must not be left behind */
    char *dir = make_tmpdir(), names[8][64];
    char *sub = xasprintf("%s/status.json", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    FILE *quiet = fopen("/dev/null", "w");
    log_set_stream(quiet, 0);
    assert_int_equal(status_write(&st, dir, err, sizeof err), -1);
    log_set_stream(NULL, 0);
    fclose(quiet);
    assert_non_null(strstr(err, "cannot rename"));
    assert_int_equal(dir_entries(dir, names, 8), 1);
    assert_string_equal(names[0], "status.json");
    rmdir(sub);
    free(sub);
    rm_tree(dir);
    free(dir);
    status_free(&st);
}

/* A reader polling the file while it is rewritten many times (sizes alternating between ~1 KB
 * and ~60 KB) must always find complete, valid JSON. */
static void test_reader_never_sees_partial_file(void **state)
{
    char *dir = make_tmpdir(), err[256];
    char *path = xasprintf("%s/status.json", dir);
    char *done = xasprintf("%s/done", dir);
    struct status st;
    build_spec_example(&st);
    assert_int_equal(status_write(&st, dir, err, sizeof err), 0);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        long good = 0, bad = 0;
        while (access(done, F_OK) != 0) {
            struct json_object *o = json_object_from_file(path);
            if (o && json_object_object_get_ex(o, "jobs", NULL))
                good++;
            else
                bad++;
            json_object_put(o);
        }
        _exit(bad ? 1 : good ? 0 : 2);
    }
    struct status_job *job = st.jobs[0];
    for (int i = 0; i < 200; i++) {
        struct status_run *run = status_job_run_begin(job, T0 + i * SEC, false);
        if (i % 2)
            for (int k = 0; k < 400; k++)
                status_run_add_not_converging(run, "assignment", "someone@example.com -> Role",
                                              "the target did not keep it");
        status_job_run_end(job, T0 + i * SEC + 1, STATUS_RESULT_OK);
        assert_int_equal(status_write(&st, dir, err, sizeof err), 0);
    }
    int fd = open(done, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    int wst = 0;
    assert_int_equal(waitpid(pid, &wst, 0), pid);
    assert_true(WIFEXITED(wst));
    if (WEXITSTATUS(wst) == 1)
        fail_msg("the reader saw a partial or invalid status file");
    assert_int_equal(WEXITSTATUS(wst), 0);

    char names[8][64];
    assert_int_equal(dir_entries(dir, names, 8), 2); /* status.json + done: no temp files */
    free(path);
    free(done);
    status_free(&st);
    rm_tree(dir);
    free(dir);
}

/* ---- `--status` ----------------------------------------------------------------------------- */

static char *print_to_string(const char *path, int64_t now_ms, int *rc, char *err, size_t n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    *rc = status_print_human_file(path, f, now_ms, err, n);
    fclose(f);
    return buf;
}

static void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        fail_msg("expected \"%s\" in:\n%s", needle, hay);
}

/* --once -j A keeps job B as the last file recorded it (a black-box test saw B vanish). A job
 * read back renders as it was written, but next_run_at (no daemon schedules it now); a job the
 * file does not have is not added; a recorded "running" comes back "idle". */
static void test_prev_jobs_carried_over(void **state)
{
    (void)state;
    char *dir = make_tmpdir(), err[512] = "";
    struct status st;
    build_spec_example(&st);
    struct status_job *qa = status_job_add(&st, "prod-to-qa");
    struct status_run *run = status_job_run_begin(qa, T0 + 10 * SEC, true);
    status_run_add_error(run, "role users add", "PUT", "/api/v2/users/u1/roles", 0,
                         "connection refused", NULL);
    status_run_add_error(run, "role users add", "PUT", "/api/v2/users/u2/roles", 403, "Forbidden",
                         "c0ffee");
    run->failed_ops = 2;
    run->pending = 5;
    status_run_add_not_converging(run, "role_definition", "Supervisor", "not licensed");
    status_job_run_end(qa, T0 + 12 * SEC, STATUS_RESULT_PARTIAL);
    status_job_set_state(qa, STATUS_JOB_FAILED, "authentication failed: 403 Forbidden");
    qa->consecutive_failures = 3;
    struct status_job *busy = status_job_add(&st, "busy");
    status_job_run_begin(busy, T0 + 20 * SEC, false);
    assert_int_equal(status_write(&st, dir, err, sizeof err), 0);

    struct status_prev *prev = status_prev_read(dir);
    assert_non_null(prev);
    struct status again;
    status_init(&again, "1.0.0", "/etc/rolesyncd/rolesyncd.yaml", T0);
    assert_true(status_prev_add_job(&again, prev, "prod-to-dev"));
    assert_true(status_prev_add_job(&again, prev, "prod-to-qa"));
    assert_true(status_prev_add_job(&again, prev, "busy"));
    assert_false(status_prev_add_job(&again, prev, "no-such-job"));
    assert_false(status_prev_add_job(&again, prev, "prod-to-qa")); /* already there */
    status_prev_free(prev);

    struct json_object *a = render_parse(&st), *b = render_parse(&again);
    struct json_object *ja = get(a, "jobs"), *jb = get(b, "jobs");
    assert_int_equal(json_object_object_length(jb), 3);
    for (int k = 0; k < 2; k++) {
        const char *name = k ? "prod-to-qa" : "prod-to-dev";
        struct json_object *x = get(ja, name), *y = get(jb, name);
        json_object_object_add(x, "next_run_at", NULL);
        if (!json_object_equal(x, y))
            fail_msg("%s: %s != %s", name, json_object_to_json_string(x),
                     json_object_to_json_string(y));
    }
    assert_string_equal(json_object_get_string(get(get(jb, "busy"), "state")), "idle");
    json_object_put(a);
    json_object_put(b);
    status_free(&again);
    status_free(&st);

    /* no file, or not a status file: nothing to carry */
    rm_tree(dir);
    assert_null(status_prev_read(dir));
    free(dir);
    dir = make_tmpdir();
    char *path = xasprintf("%s/%s", dir, STATUS_FILE_NAME);
    FILE *f = fopen(path, "w");
    fputs("{\"schema_version\": 2, \"jobs\": {}}", f);
    fclose(f);
    assert_null(status_prev_read(dir));
    free(path);
    rm_tree(dir);
    free(dir);
}

/* product.md 4c: in_sync_since is the start of the first of the consecutive in-sync runs,
 * null when the last run was not in sync; a restart keeps it when the first run after it is
 * in sync again (status_prev_carry), not when it is not; last_run.cycle is the run's id. */
static void test_in_sync_since(void **state)
{
    (void)state;
    char *dir = make_tmpdir(), err[512] = "";
    struct status st;
    status_init(&st, "1", "/c", T0);
    struct status_job *job = status_job_add(&st, "j");
    struct status_run *run = status_job_run_begin(job, T0, false);
    snprintf(run->cycle, sizeof run->cycle, "20261122T050000Z-0badf00d");
    status_job_run_end(job, T0 + SEC, STATUS_RESULT_OK);
    assert_int_equal(job->in_sync_since_ms, T0);
    /* a second in-sync run keeps it */
    status_job_run_begin(job, T0 + 60 * SEC, false);
    status_job_run_end(job, T0 + 61 * SEC, STATUS_RESULT_OK);
    assert_int_equal(job->in_sync_since_ms, T0);
    struct json_object *o = render_parse(&st), *j = get(get(o, "jobs"), "j");
    assert_str(j, "in_sync_since", "2026-11-22T05:00:00Z");
    assert_type(get(j, "last_run"), "cycle", json_type_null); /* the second run had none */
    json_object_put(o);
    /* one with pending changes ends it; the next in-sync one starts a new stretch */
    run = status_job_run_begin(job, T0 + 120 * SEC, false);
    run->pending = 2;
    status_job_run_end(job, T0 + 121 * SEC, STATUS_RESULT_OK);
    assert_int_equal(job->in_sync_since_ms, 0);
    o = render_parse(&st);
    assert_type(get(get(o, "jobs"), "j"), "in_sync_since", json_type_null);
    json_object_put(o);
    run = status_job_run_begin(job, T0 + 180 * SEC, false);
    snprintf(run->cycle, sizeof run->cycle, "20261122T050300.250Z-00c0ffee");
    status_job_run_end(job, T0 + 181 * SEC, STATUS_RESULT_OK);
    assert_int_equal(job->in_sync_since_ms, T0 + 180 * SEC);
    /* failed and refused runs end it too */
    struct status_job *k = status_job_add(&st, "k");
    status_job_run_begin(k, T0, false);
    status_job_run_end(k, T0 + SEC, STATUS_RESULT_OK);
    status_job_run_begin(k, T0 + 2 * SEC, false);
    status_job_run_end(k, T0 + 3 * SEC, STATUS_RESULT_FAILED);
    assert_int_equal(k->in_sync_since_ms, 0);
    status_job_run_begin(k, T0 + 4 * SEC, false);
    status_job_run_end(k, T0 + 5 * SEC, STATUS_RESULT_OK);
    status_job_run_begin(k, T0 + 6 * SEC, false);
    status_job_run_end(k, T0 + 7 * SEC, STATUS_RESULT_REFUSED);
    assert_int_equal(k->in_sync_since_ms, 0);
    assert_int_equal(status_write(&st, dir, err, sizeof err), 0);

    /* --status shows it, and the cycle */
    char *path = xasprintf("%s/%s", dir, STATUS_FILE_NAME);
    int rc;
    char *text = print_to_string(path, T0 + 3600 * SEC, &rc, err, sizeof err);
    assert_int_equal(rc, 0);
    assert_contains(text, "in sync since         2026-11-22T05:03:00Z (57m ago)");
    assert_contains(text, "cycle                 20261122T050300.250Z-00c0ffee");
    free(text);
    free(path);

    /* a restart: the stretch goes on when the first run is in sync, else it is over */
    struct status_prev *prev = status_prev_read(dir);
    assert_non_null(prev);
    struct status again;
    status_init(&again, "1", "/c", T0 + 3600 * SEC);
    struct status_job *j2 = status_job_add(&again, "j"), *k2 = status_job_add(&again, "k"),
                      *n2 = status_job_add(&again, "new");
    status_prev_carry(j2, prev);
    status_prev_carry(k2, prev);
    status_prev_carry(n2, prev);
    assert_int_equal(j2->in_sync_since_ms, T0 + 180 * SEC);
    assert_false(j2->in_sync); /* until a run says so */
    assert_int_equal(k2->in_sync_since_ms, 0);
    assert_int_equal(n2->in_sync_since_ms, 0);
    o = render_parse(&again);
    assert_type(get(get(o, "jobs"), "j"), "in_sync_since", json_type_null);
    json_object_put(o);
    status_job_run_begin(j2, T0 + 3601 * SEC, false);
    status_job_run_end(j2, T0 + 3602 * SEC, STATUS_RESULT_OK);
    assert_int_equal(j2->in_sync_since_ms, T0 + 180 * SEC);
    status_job_run_begin(k2, T0 + 3601 * SEC, false);
    status_job_run_end(k2, T0 + 3602 * SEC, STATUS_RESULT_OK);
    assert_int_equal(k2->in_sync_since_ms, T0 + 3601 * SEC);
    /* a job carried over unrun (status_prev_add_job) keeps its stretch as it was */
    struct status third;
    status_init(&third, "1", "/c", T0);
    assert_true(status_prev_add_job(&third, prev, "j"));
    assert_int_equal(status_job_find(&third, "j")->in_sync_since_ms, T0 + 180 * SEC);
    assert_string_equal(status_job_find(&third, "j")->last_run.cycle,
                        "20261122T050300.250Z-00c0ffee");
    status_free(&third);
    status_prev_free(prev);
    status_free(&again);
    status_free(&st);
    rm_tree(dir);
    free(dir);
}

static void test_human_output(void **state)
{
    char *dir = make_tmpdir(), err[512] = "";
    struct status st;
    build_spec_example(&st);
    st.pid = getpid(); /* so the printer finds the process running */
    status_reload_done(&st, T0 + 300 * SEC, false, NULL,
                       "/etc/rolesyncd/rolesyncd.yaml:3:5: unknown key \"intervall\"\n"
                       "/etc/rolesyncd/rolesyncd.yaml:9:1: missing key \"target\"");

    struct status_job *qa = status_job_add(&st, "prod-to-qa");
    struct status_run *run = status_job_run_begin(qa, T0 + 10 * SEC, false);
    for (int i = 0; i < 7; i++)
        status_run_add_error(run, "add_assignments", "PUT", "/api/v2/users/u1/roles",
                             i == 0 ? 0 : 403, i == 0 ? "connection refused" : "Forbidden",
                             i == 0 ? NULL : "c0ffee");
    run->failed_ops = 7;
    run->requests = 9;
    run->retries = 3;
    run->unmatched_source_only = 2;
    status_run_add_not_converging(run, "role_definition", "Supervisor",
                                  "permission analytics:view is not licensed on the target");
    status_job_run_end(qa, T0 + 12 * SEC, STATUS_RESULT_FAILED);
    status_job_set_state(qa, STATUS_JOB_FAILED, "authentication failed: 403 Forbidden");
    qa->consecutive_failures = 3;
    status_job_add(&st, "new-job");
    assert_int_equal(status_write(&st, dir, err, sizeof err), 0);

    char *path = xasprintf("%s/status.json", dir);
    int rc;
    /* now = 05:06:07, so prod-to-dev's next run (05:10:07) is "in 4m" */
    char *out = print_to_string(path, T0 + 367 * SEC, &rc, err, sizeof err);
    assert_int_equal(rc, 0);
    char line[128];
    snprintf(line, sizeof line, "rolesyncd 1.0.0, pid %d (running)\n", (int)getpid());
    assert_contains(out, line);
    assert_contains(out, "config                /etc/rolesyncd/rolesyncd.yaml\n");
    assert_contains(out, "started               2026-11-22T05:00:00Z (6m7s ago)\n");
    assert_contains(out, "last reload           FAILED (still running the previous config), "
                         "2026-11-22T05:05:00Z (1m7s ago)\n"
                         "      /etc/rolesyncd/rolesyncd.yaml:3:5: unknown key \"intervall\"\n"
                         "      /etc/rolesyncd/rolesyncd.yaml:9:1: missing key \"target\"\n");
    assert_contains(out, "\njob prod-to-dev: idle, in sync\n");
    assert_contains(out,
                    "last run              ok, took 7s, finished 2026-11-22T05:00:07Z (6m ago)\n");
    assert_contains(out, "changes               roles 0 created, 1 updated, 0 deleted; "
                         "assignments 12 added, 3 removed\n");
    assert_contains(out,
                    "operations            0 pending, 0 failed ops (41 requests, 2 retries)\n");
    assert_contains(out, "unmatched users       4 in the source only, 1 in the target only\n");
    assert_contains(out, "next run              2026-11-22T05:10:07Z (in 4m)\n");
    assert_contains(out, "consecutive failures  0\n");
    assert_contains(out, "\njob prod-to-qa: failed, NOT in sync\n"
                         "  reason                authentication failed: 403 Forbidden\n");
    assert_contains(out, "errors                7 recorded\n"
                         "      add_assignments PUT /api/v2/users/u1/roles -> no response: "
                         "connection refused\n"
                         "      add_assignments PUT /api/v2/users/u1/roles -> 403: Forbidden "
                         "[correlation id c0ffee]\n");
    assert_contains(out, "      ... and 2 more (see status.json)\n");
    assert_contains(out, "not converging        1\n"
                         "      role_definition Supervisor: permission analytics:view is not "
                         "licensed on the target\n");
    assert_contains(out, "consecutive failures  3\n");
    assert_contains(out, "\njob new-job: idle, NOT in sync\n"
                         "  last run              none yet\n"
                         "  last success          never\n"
                         "  consecutive failures  0\n"
                         "  next run              not scheduled\n");
    /* jobs in config order */
    assert_true(strstr(out, "job prod-to-dev") < strstr(out, "job prod-to-qa"));
    assert_true(strstr(out, "job prod-to-qa") < strstr(out, "job new-job"));
    if (getenv("ROLESYNC_TEST_VERBOSE"))
        fputs(out, stdout);
    free(out);

    /* through the state_dir entry point */
    FILE *devnull = fopen("/dev/null", "w");
    assert_int_equal(status_print_human(dir, devnull, err, sizeof err), 0);
    fclose(devnull);

    free(path);
    status_free(&st);
    rm_tree(dir);
    free(dir);
}

static void test_human_missing_or_invalid(void **state)
{
    char *dir = make_tmpdir(), err[512] = "";
    int rc;
    FILE *devnull = fopen("/dev/null", "w");

    assert_int_equal(status_print_human(dir, devnull, err, sizeof err), -1);
    char *want = xasprintf("no status file at %s/status.json (is rolesyncd running with this "
                           "state_dir?)",
                           dir);
    assert_string_equal(err, want);
    free(want);

    char *path = xasprintf("%s/status.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"schema_version\": 1, \"daemon\": {", f); /* truncated */
    fclose(f);
    char *out = print_to_string(path, T0, &rc, err, sizeof err);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "cannot read the status file"));
    assert_null(strchr(err, '\n'));
    free(out);

    f = fopen(path, "w");
    fputs("{\"schema_version\": 2, \"daemon\": {}, \"jobs\": {}}", f);
    fclose(f);
    out = print_to_string(path, T0, &rc, err, sizeof err);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "not a rolesyncd status file"));
    free(out);

    fclose(devnull);
    free(path);
    rm_tree(dir);
    free(dir);
}

static void write_pid_status(const char *dir, long pid)
{
    char path[512];
    snprintf(path, sizeof path, "%s/status.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "{\"schema_version\": 1, \"daemon\": {\"pid\": %ld}, \"jobs\": {}}\n", pid);
    fclose(f);
}

/* --once leaves a file alone only when a live process named rolesyncd wrote it: not for its own
 * pid, a dead pid, another program, or no file at all. */
static void test_file_owner(void **state)
{
    (void)state;
    char dir[] = "/tmp/rolesync-owner-XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(status_file_owner(dir), 0); /* no file */
    write_pid_status(dir, (long)getpid());
    assert_int_equal(status_file_owner(dir), 0); /* this process */
    pid_t other = fork();
    assert_true(other >= 0);
    if (other == 0) {
        pause();
        _exit(0);
    }
    write_pid_status(dir, (long)other);
    assert_int_equal(status_file_owner(dir), 0); /* alive, but not rolesyncd */
    kill(other, SIGKILL);
    waitpid(other, NULL, 0);
    assert_int_equal(status_file_owner(dir), 0); /* dead */
    pid_t daemon = fork();
    assert_true(daemon >= 0);
    if (daemon == 0) {
        prctl(PR_SET_NAME, "rolesyncd", 0, 0, 0);
        pause();
        _exit(0);
    }
    for (int i = 0; i < 200; i++) { /* until the child has renamed itself */
        write_pid_status(dir, (long)daemon);
        if (status_file_owner(dir) == daemon)
            break;
        usleep(5000);
    }
    assert_int_equal(status_file_owner(dir), daemon);
    kill(daemon, SIGKILL);
    waitpid(daemon, NULL, 0);
    char path[512];
    snprintf(path, sizeof path, "%s/status.json", dir);
    unlink(path);
    rmdir(dir);
}

/* A relative config path is shown absolute (it means nothing to a reader elsewhere); one
 * that does not resolve is kept as given. */
static void test_config_file_absolute(void **state)
{
    (void)state;
    char dir[] = "/tmp/rolesync-stcfg-XXXXXX", cwd[4096], want[4200];
    assert_non_null(mkdtemp(dir));
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(dir), 0);
    FILE *f = fopen("rel.yaml", "w");
    assert_non_null(f);
    fclose(f);
    char *real = realpath(dir, NULL);
    snprintf(want, sizeof want, "%s/rel.yaml", real);
    struct status st;
    status_init(&st, "1.0", "rel.yaml", 1000);
    assert_string_equal(st.config_file, want);
    status_reload_done(&st, 2000, true, "./missing.yaml", NULL);
    assert_string_equal(st.config_file, "./missing.yaml");
    status_free(&st);
    unlink("rel.yaml");
    assert_int_equal(chdir(cwd), 0);
    rmdir(dir);
    free(real);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_spec_example),
        cmocka_unit_test(test_config_file_absolute),
        cmocka_unit_test(test_file_owner),
        cmocka_unit_test(test_shape_before_first_run),
        cmocka_unit_test(test_errors_capped_counts_exact),
        cmocka_unit_test(test_server_text_sanitized),
        cmocka_unit_test(test_state_transitions),
        cmocka_unit_test(test_jobs_sync_and_remove),
        cmocka_unit_test(test_reload_recorded),
        cmocka_unit_test(test_write_mode_and_no_temp_left),
        cmocka_unit_test(test_write_failure_reported),
        cmocka_unit_test(test_reader_never_sees_partial_file),
        cmocka_unit_test(test_prev_jobs_carried_over),
        cmocka_unit_test(test_in_sync_since),
        cmocka_unit_test(test_human_output),
        cmocka_unit_test(test_human_missing_or_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
