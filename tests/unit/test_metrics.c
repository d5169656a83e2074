/* test_metrics.c — Prometheus text exposition of the status model. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rolesync/http.h"
#include "rolesync/log.h"
#include "rolesync/metrics.h"
#include "rolesync/status.h"
#include "rolesync/util.h"

#define T0 1795323600000LL /* 2026-11-22T05:00:00Z */
#define SEC 1000LL

static void build_model(struct status *st)
{
    status_init(st, "1.0.0", "/etc/rolesyncd/rolesyncd.yaml", T0);
    struct status_job *a = status_job_add(st, "prod-to-dev");
    status_job_add(st, "dev-to-qa");

    struct status_run *r = status_job_run_begin(a, T0, false);
    r->changes.roles_updated = 1;
    r->changes.assignments_added = 12;
    r->changes.assignments_removed = 3;
    status_job_run_end(a, T0 + 7 * SEC, STATUS_RESULT_OK);

    r = status_job_run_begin(a, T0 + 600 * SEC, false);
    r->changes.assignments_added = 2;
    r->failed_ops = 1;
    r->pending = 1;
    r->unmatched_source_only = 4;
    r->unmatched_target_only = 1;
    status_run_add_not_converging(r, "role_definition", "Supervisor", "not licensed");
    status_job_run_end(a, T0 + 604 * SEC, STATUS_RESULT_PARTIAL);
    status_job_set_next_run(a, T0 + 634 * SEC);

    /* a dry run elsewhere must not count as applied changes */
    struct status_job *b = st->jobs[1];
    r = status_job_run_begin(b, T0 + 1 * SEC, true);
    r->changes.roles_created = 9;
    r->pending = 9;
    status_job_run_end(b, T0 + 2 * SEC, STATUS_RESULT_DRY_RUN);
    status_job_set_next_run(b, T0 + 5 * SEC);
}

/* Unsorted, with a duplicate row (prod 200 twice), as an engine's hash table might give it. */
static const struct metrics_http_requests http_req[] = {
    {"prod", 200, 40}, {"dev", 200, 5}, {"prod", 500, 1}, {"dev", 0, 2}, {"prod", 200, 2},
};
static const struct metrics_http_retries http_ret[] = {{"prod", 3}, {"dev", 1}};
static const struct metrics_http http = {http_req, 5, http_ret, 2};

static const char *golden =
    "# HELP rolesyncd_build_info Always 1; the version is a label.\n"
    "# TYPE rolesyncd_build_info gauge\n"
    "rolesyncd_build_info{version=\"1.0.0\"} 1\n"
    "# HELP rolesyncd_start_time_seconds When the daemon started, epoch seconds.\n"
    "# TYPE rolesyncd_start_time_seconds gauge\n"
    "rolesyncd_start_time_seconds 1795323600\n"
    "# HELP rolesyncd_config_last_reload_successful 0 if the last reload failed (the previous "
    "config is still in use), else 1.\n"
    "# TYPE rolesyncd_config_last_reload_successful gauge\n"
    "rolesyncd_config_last_reload_successful 1\n"
    "# HELP rolesyncd_job_last_run_timestamp_seconds End of the job's last finished run, epoch "
    "seconds (0: none yet).\n"
    "# TYPE rolesyncd_job_last_run_timestamp_seconds gauge\n"
    "rolesyncd_job_last_run_timestamp_seconds{job=\"prod-to-dev\"} 1795324204\n"
    "rolesyncd_job_last_run_timestamp_seconds{job=\"dev-to-qa\"} 1795323602\n"
    "# HELP rolesyncd_job_last_success_timestamp_seconds End of the job's last successful run, "
    "epoch seconds (0: never).\n"
    "# TYPE rolesyncd_job_last_success_timestamp_seconds gauge\n"
    "rolesyncd_job_last_success_timestamp_seconds{job=\"prod-to-dev\"} 1795323607\n"
    "rolesyncd_job_last_success_timestamp_seconds{job=\"dev-to-qa\"} 1795323602\n"
    "# HELP rolesyncd_job_next_run_timestamp_seconds When the job runs next, epoch seconds (0: "
    "not scheduled).\n"
    "# TYPE rolesyncd_job_next_run_timestamp_seconds gauge\n"
    "rolesyncd_job_next_run_timestamp_seconds{job=\"prod-to-dev\"} 1795324234\n"
    "rolesyncd_job_next_run_timestamp_seconds{job=\"dev-to-qa\"} 1795323605\n"
    "# HELP rolesyncd_job_in_sync 1 if the job's last run found the target in sync with the "
    "source.\n"
    "# TYPE rolesyncd_job_in_sync gauge\n"
    "rolesyncd_job_in_sync{job=\"prod-to-dev\"} 0\n"
    "rolesyncd_job_in_sync{job=\"dev-to-qa\"} 0\n"
    "# HELP rolesyncd_job_state 1 for the job's current state, 0 for the others.\n"
    "# TYPE rolesyncd_job_state gauge\n"
    "rolesyncd_job_state{job=\"prod-to-dev\",state=\"idle\"} 0\n"
    "rolesyncd_job_state{job=\"prod-to-dev\",state=\"running\"} 0\n"
    "rolesyncd_job_state{job=\"prod-to-dev\",state=\"waiting_retry\"} 1\n"
    "rolesyncd_job_state{job=\"prod-to-dev\",state=\"refused\"} 0\n"
    "rolesyncd_job_state{job=\"prod-to-dev\",state=\"failed\"} 0\n"
    "rolesyncd_job_state{job=\"dev-to-qa\",state=\"idle\"} 1\n"
    "rolesyncd_job_state{job=\"dev-to-qa\",state=\"running\"} 0\n"
    "rolesyncd_job_state{job=\"dev-to-qa\",state=\"waiting_retry\"} 0\n"
    "rolesyncd_job_state{job=\"dev-to-qa\",state=\"refused\"} 0\n"
    "rolesyncd_job_state{job=\"dev-to-qa\",state=\"failed\"} 0\n"
    "# HELP rolesyncd_job_consecutive_failures Failed or partial runs since the job's last "
    "success.\n"
    "# TYPE rolesyncd_job_consecutive_failures gauge\n"
    "rolesyncd_job_consecutive_failures{job=\"prod-to-dev\"} 1\n"
    "rolesyncd_job_consecutive_failures{job=\"dev-to-qa\"} 0\n"
    "# HELP rolesyncd_job_changes_total Changes applied to the target since the daemon started "
    "(dry runs excluded).\n"
    "# TYPE rolesyncd_job_changes_total counter\n"
    "rolesyncd_job_changes_total{job=\"prod-to-dev\",kind=\"roles_created\"} 0\n"
    "rolesyncd_job_changes_total{job=\"prod-to-dev\",kind=\"roles_updated\"} 1\n"
    "rolesyncd_job_changes_total{job=\"prod-to-dev\",kind=\"roles_deleted\"} 0\n"
    "rolesyncd_job_changes_total{job=\"prod-to-dev\",kind=\"assignments_added\"} 14\n"
    "rolesyncd_job_changes_total{job=\"prod-to-dev\",kind=\"assignments_removed\"} 3\n"
    "rolesyncd_job_changes_total{job=\"dev-to-qa\",kind=\"roles_created\"} 0\n"
    "rolesyncd_job_changes_total{job=\"dev-to-qa\",kind=\"roles_updated\"} 0\n"
    "rolesyncd_job_changes_total{job=\"dev-to-qa\",kind=\"roles_deleted\"} 0\n"
    "rolesyncd_job_changes_total{job=\"dev-to-qa\",kind=\"assignments_added\"} 0\n"
    "rolesyncd_job_changes_total{job=\"dev-to-qa\",kind=\"assignments_removed\"} 0\n"
    "# HELP rolesyncd_job_runs_total Finished runs since the daemon started, by result.\n"
    "# TYPE rolesyncd_job_runs_total counter\n"
    "rolesyncd_job_runs_total{job=\"prod-to-dev\",result=\"ok\"} 1\n"
    "rolesyncd_job_runs_total{job=\"prod-to-dev\",result=\"partial\"} 1\n"
    "rolesyncd_job_runs_total{job=\"prod-to-dev\",result=\"failed\"} 0\n"
    "rolesyncd_job_runs_total{job=\"prod-to-dev\",result=\"refused\"} 0\n"
    "rolesyncd_job_runs_total{job=\"prod-to-dev\",result=\"dry_run\"} 0\n"
    "rolesyncd_job_runs_total{job=\"dev-to-qa\",result=\"ok\"} 0\n"
    "rolesyncd_job_runs_total{job=\"dev-to-qa\",result=\"partial\"} 0\n"
    "rolesyncd_job_runs_total{job=\"dev-to-qa\",result=\"failed\"} 0\n"
    "rolesyncd_job_runs_total{job=\"dev-to-qa\",result=\"refused\"} 0\n"
    "rolesyncd_job_runs_total{job=\"dev-to-qa\",result=\"dry_run\"} 1\n"
    "# HELP rolesyncd_job_pending_changes Changes still to apply after the job's last run.\n"
    "# TYPE rolesyncd_job_pending_changes gauge\n"
    "rolesyncd_job_pending_changes{job=\"prod-to-dev\"} 1\n"
    "rolesyncd_job_pending_changes{job=\"dev-to-qa\"} 9\n"
    "# HELP rolesyncd_job_failed_operations Operations of the job's last run that failed after "
    "all retries.\n"
    "# TYPE rolesyncd_job_failed_operations gauge\n"
    "rolesyncd_job_failed_operations{job=\"prod-to-dev\"} 1\n"
    "rolesyncd_job_failed_operations{job=\"dev-to-qa\"} 0\n"
    "# HELP rolesyncd_job_not_converging Changes the target accepted but did not keep, in the "
    "job's last run.\n"
    "# TYPE rolesyncd_job_not_converging gauge\n"
    "rolesyncd_job_not_converging{job=\"prod-to-dev\"} 1\n"
    "rolesyncd_job_not_converging{job=\"dev-to-qa\"} 0\n"
    "# HELP rolesyncd_job_unmatched_users In-scope users found on one side only, in the job's "
    "last run.\n"
    "# TYPE rolesyncd_job_unmatched_users gauge\n"
    "rolesyncd_job_unmatched_users{job=\"prod-to-dev\",side=\"source_only\"} 4\n"
    "rolesyncd_job_unmatched_users{job=\"prod-to-dev\",side=\"target_only\"} 1\n"
    "rolesyncd_job_unmatched_users{job=\"dev-to-qa\",side=\"source_only\"} 0\n"
    "rolesyncd_job_unmatched_users{job=\"dev-to-qa\",side=\"target_only\"} 0\n"
    "# HELP rolesyncd_http_requests_total HTTP requests sent, by tenant and response status (0: "
    "no response).\n"
    "# TYPE rolesyncd_http_requests_total counter\n"
    "rolesyncd_http_requests_total{tenant=\"dev\",code=\"0\"} 2\n"
    "rolesyncd_http_requests_total{tenant=\"dev\",code=\"200\"} 5\n"
    "rolesyncd_http_requests_total{tenant=\"prod\",code=\"200\"} 42\n"
    "rolesyncd_http_requests_total{tenant=\"prod\",code=\"500\"} 1\n"
    "# HELP rolesyncd_http_retries_total HTTP requests retried, by tenant.\n"
    "# TYPE rolesyncd_http_retries_total counter\n"
    "rolesyncd_http_retries_total{tenant=\"dev\"} 1\n"
    "rolesyncd_http_retries_total{tenant=\"prod\"} 3\n";

static void test_golden(void **state)
{
    struct status st;
    build_model(&st);
    char *text = metrics_render(&st, &http);
    if (strcmp(text, golden) != 0) {
        /* point at the first differing line to keep the failure readable */
        size_t i = 0;
        while (text[i] && text[i] == golden[i])
            i++;
        while (i > 0 && text[i - 1] != '\n')
            i--;
        fail_msg("metrics differ from the golden text at:\n got: %.120s\nwant: %.120s", text + i,
                 golden + i);
    }
    free(text);
    status_free(&st);
}

/* Each sample line is `name{labels} value` or `name value`, each name has its HELP and TYPE
 * before its first sample, and no series appears twice. */
static void check_format(const char *text)
{
    regex_t sample, help, type;
    char seen_type[64][96];
    size_t ntype = 0;
    char *series[512];
    size_t nseries = 0;

    assert_int_equal(regcomp(&sample,
                             /* inside [] a backslash is literal, hence the real newline */
                             "^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{([a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\\n]"
                             "|\\\\[\"\\\\n])*\",?)*\\})? -?[0-9]+(\\.[0-9]+)?$",
                             REG_EXTENDED),
                     0);
    assert_int_equal(regcomp(&help, "^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .+$", REG_EXTENDED), 0);
    assert_int_equal(
        regcomp(&type, "^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (gauge|counter)$", REG_EXTENDED), 0);

    char *copy = xstrdup(text), *save = NULL;
    assert_true(text[strlen(text) - 1] == '\n');
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        regmatch_t m[2];
        if (strncmp(line, "# HELP ", 7) == 0) {
            assert_int_equal(regexec(&help, line, 0, NULL, 0), 0);
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            assert_int_equal(regexec(&type, line, 2, m, 0), 0);
            assert_true(ntype < 64);
            snprintf(seen_type[ntype++], 96, "%.*s", (int)(m[1].rm_eo - m[1].rm_so),
                     line + m[1].rm_so);
            continue;
        }
        if (regexec(&sample, line, 2, m, 0) != 0)
            fail_msg("not a valid sample line: %s", line);
        char name[96];
        snprintf(name, sizeof name, "%.*s", (int)(m[1].rm_eo - m[1].rm_so), line + m[1].rm_so);
        int typed = 0;
        for (size_t i = 0; i < ntype; i++)
            typed |= strcmp(seen_type[i], name) == 0;
        if (!typed)
            fail_msg("sample before its TYPE line: %s", line);
        char *sp = strrchr(line, ' ');
        char *key = xstrndup(line, (size_t)(sp - line));
        for (size_t i = 0; i < nseries; i++)
            if (strcmp(series[i], key) == 0)
                fail_msg("duplicate series: %s", key);
        assert_true(nseries < 512);
        series[nseries++] = key;
    }
    for (size_t i = 0; i < nseries; i++)
        free(series[i]);
    free(copy);
    regfree(&sample);
    regfree(&help);
    regfree(&type);
}

static void test_format_valid_and_required_series(void **state)
{
    static const char *const required[] = {
        "rolesyncd_job_last_run_timestamp_seconds{job=",
        "rolesyncd_job_last_success_timestamp_seconds{job=",
        "rolesyncd_job_in_sync{job=",
        "rolesyncd_job_changes_total{job=",
        "rolesyncd_job_consecutive_failures{job=",
        "rolesyncd_http_requests_total{tenant=",
        "rolesyncd_http_retries_total{tenant=",
        "# TYPE rolesyncd_job_changes_total counter\n",
        "# TYPE rolesyncd_http_requests_total counter\n",
        "# TYPE rolesyncd_http_retries_total counter\n",
    };
    struct status st;
    build_model(&st);
    char *text = metrics_render(&st, &http);
    check_format(text);
    for (size_t i = 0; i < UTIL_ARRAY_LEN(required); i++)
        if (!strstr(text, required[i]))
            fail_msg("missing %s", required[i]);
    free(text);

    /* no jobs, no HTTP data: still valid, headers only */
    struct status empty;
    status_init(&empty, "1", "/c", T0);
    text = metrics_render(&empty, NULL);
    check_format(text);
    assert_non_null(strstr(text, "# TYPE rolesyncd_http_requests_total counter\n"));
    assert_null(strstr(text, "{job="));
    free(text);
    status_free(&empty);
    status_free(&st);
}

static void test_label_escaping(void **state)
{
    char *e = metrics_label_escape("a\"b\\c\nd");
    assert_string_equal(e, "a\\\"b\\\\c\\nd");
    free(e);
    e = metrics_label_escape("plain-name_1.x");
    assert_string_equal(e, "plain-name_1.x");
    free(e);
    e = metrics_label_escape("");
    assert_string_equal(e, "");
    free(e);

    struct status st;
    status_init(&st, "1\"beta", "/c", T0);
    status_job_add(&st, "we\"ird\\job\nname");
    const struct metrics_http_requests req[] = {{"ten\"ant", 200, 1}};
    const struct metrics_http_retries ret[] = {{"back\\slash", 4}};
    const struct metrics_http h = {req, 1, ret, 1};
    char *text = metrics_render(&st, &h);
    check_format(text);
    assert_non_null(strstr(text, "rolesyncd_build_info{version=\"1\\\"beta\"} 1\n"));
    assert_non_null(strstr(text, "rolesyncd_job_in_sync{job=\"we\\\"ird\\\\job\\nname\"} 0\n"));
    assert_non_null(
        strstr(text, "rolesyncd_http_requests_total{tenant=\"ten\\\"ant\",code=\"200\"} 1\n"));
    assert_non_null(strstr(text, "rolesyncd_http_retries_total{tenant=\"back\\\\slash\"} 4\n"));
    free(text);
    status_free(&st);
}

/* API and token attempts of a tenant add up per status; zero slots make no row. */
static void test_rows_sum_api_and_token_requests(void **state)
{
    (void)state;
    static uint64_t api[HTTP_STATUS_SLOTS], tok[HTTP_STATUS_SLOTS];
    api[200] = 3;
    tok[200] = 1;
    tok[503] = 2;
    api[0] = 1;
    struct metrics_rows rows = {0};
    metrics_rows_add(&rows, "src", api, tok, 5);
    metrics_rows_add(&rows, "dst", api, NULL, 0);
    struct metrics_http v = metrics_rows_view(&rows);
    assert_int_equal(v.nrequests, 5);
    assert_string_equal(v.requests[0].tenant, "src");
    assert_int_equal(v.requests[0].code, 0);
    assert_int_equal(v.requests[0].count, 1);
    assert_int_equal(v.requests[1].code, 200);
    assert_int_equal(v.requests[1].count, 4);
    assert_int_equal(v.requests[2].code, 503);
    assert_int_equal(v.requests[2].count, 2);
    assert_int_equal(v.requests[4].code, 200);
    assert_int_equal(v.requests[4].count, 3);
    assert_int_equal(v.nretries, 2);
    assert_int_equal(v.retries[0].count, 5);
    metrics_rows_free(&rows);
    assert_null(rows.req);
}

static void test_write_atomic(void **state)
{
    char tmpl[] = "/tmp/rolesync-metrics-XXXXXX", err[256] = "";
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    char *path = xasprintf("%s/rolesyncd.prom", dir);
    struct status st;
    struct stat sb;
    build_model(&st);

    mode_t old = umask(0077);
    assert_int_equal(metrics_write(&st, &http, path, err, sizeof err), 0);
    assert_int_equal(metrics_write(&st, &http, path, err, sizeof err), 0);
    umask(old);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0644);

    FILE *f = fopen(path, "r");
    char *buf = xmalloc((size_t)sb.st_size + 1);
    assert_int_equal(fread(buf, 1, (size_t)sb.st_size, f), (size_t)sb.st_size);
    buf[sb.st_size] = '\0';
    fclose(f);
    assert_string_equal(buf, golden);
    free(buf);

    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        assert_string_equal(e->d_name, "rolesyncd.prom"); /* no temp file left */
        n++;
    }
    closedir(d);
    assert_int_equal(n, 1);
    unlink(path);
    rmdir(dir);
    free(path);

    /* failure: reported, logged, daemon carries on */
    char *logbuf = NULL;
    size_t loglen = 0;
    FILE *logf = open_memstream(&logbuf, &loglen);
    log_set_stream(logf, 0);
    assert_int_equal(metrics_write(&st, &http, "/nonexistent/dir/x.prom", err, sizeof err), -1);
    log_set_stream(NULL, 0);
    fclose(logf);
    assert_non_null(strstr(err, "/nonexistent/dir"));
    assert_non_null(strstr(logbuf, "WARNING cannot write metrics file"));
    free(logbuf);
    status_free(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_format_valid_and_required_series),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_write_atomic),
        cmocka_unit_test(test_rows_sum_api_and_token_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
