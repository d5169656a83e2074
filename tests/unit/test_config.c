/* test_config.c — the YAML config loader (src/config.c, product.md section 3).
 *
 * Every invalid-input case asserts the complete list of diagnostics, text and LINE:COLUMN, so a
 * changed message or position fails here first. Secret files live in a mkdtemp folder; no
 * diagnostic may ever contain a secret's value ("s3cret" is in every test secret).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rolesync/config.h"
#include "rolesync/util.h"

static char tmpdir[64];
static char cfgpath[128];
static char credsdir[128];

static void write_file(const char *dir, const char *name, const char *content, mode_t mode)
{
    char *p = xasprintf("%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    assert_int_equal(chmod(p, mode), 0);
    free(p);
}

static int group_setup(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/rs-test-config-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(cfgpath, sizeof cfgpath, "%s/t.yaml", tmpdir);
    snprintf(credsdir, sizeof credsdir, "%s/creds", tmpdir);
    if (mkdir(credsdir, 0700) != 0)
        return -1;
    write_file(tmpdir, "prod.secret", "prod-s3cret\n", 0600);
    write_file(tmpdir, "dev.secret", "dev-s3cret\n\n  \n", 0600);
    /* a ca_file must hold a PEM certificate; --check looks no further than its header */
    write_file(tmpdir, "ca.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
               0644);
    write_file(tmpdir, "not-a-ca.pem", "hello\n", 0644);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char *cmd = xasprintf("rm -rf '%s'", tmpdir);
    int rc = system(cmd);
    free(cmd);
    return rc == 0 ? 0 : -1;
}

static int setup(void **state)
{
    (void)state;
    unsetenv("CREDENTIALS_DIRECTORY");
    unsetenv("STATE_DIRECTORY");
    setenv("RS_TEST_PLANT_SECRET", "plant-s3cret", 1);
    return 0;
}

/* Lines 1-17 of most test configs: two genesys tenants and one identity tenant. */
#define TENANTS                                                                                    \
    "tenants:\n"                                                                                   \
    "  prod:\n"                                                                                    \
    "    api: genesys\n"                                                                           \
    "    base_url: https://api.mypurecloud.com\n"                                                  \
    "    client_id: prod-client\n"                                                                 \
    "    client_secret_file: prod.secret\n"                                                        \
    "  dev:\n"                                                                                     \
    "    api: genesys\n"                                                                           \
    "    base_url: https://api.usw2.pure.cloud/\n"                                                 \
    "    client_id: dev-client\n"                                                                  \
    "    client_secret_file: dev.secret\n"                                                         \
    "  plant:\n"                                                                                   \
    "    api: identity\n"                                                                          \
    "    base_url: https://uswe.datahub.connect.aveva.com\n"                                       \
    "    tenant_id: 3f1c0c1e-5f61-4a8e-9c59-0a4b2b8c9d01\n"                                        \
    "    client_id: plant-client\n"                                                                \
    "    client_secret_env: RS_TEST_PLANT_SECRET\n"

/* Lines 18-21. */
#define JOB                                                                                        \
    "jobs:\n"                                                                                      \
    "  - name: prod-to-dev\n"                                                                      \
    "    source: prod\n"                                                                           \
    "    target: dev\n"

static void assert_no_secret(const struct cfg_diags *d)
{
    for (size_t i = 0; i < d->nerrors; i++)
        assert_null(strstr(d->errors[i], "s3cret"));
    for (size_t i = 0; i < d->nwarnings; i++)
        assert_null(strstr(d->warnings[i], "s3cret"));
}

static void dump(const struct cfg_diags *d)
{
    for (size_t i = 0; i < d->nerrors; i++)
        fprintf(stderr, "  error: %s\n", d->errors[i]);
    for (size_t i = 0; i < d->nwarnings; i++)
        fprintf(stderr, "  warning: %s\n", d->warnings[i]);
}

static struct cfg_config *load_ok(const char *yaml, struct cfg_diags *d)
{
    struct cfg_config *cfg = NULL;
    int rc = cfg_load_buffer(cfgpath, yaml, strlen(yaml), &cfg, d);
    if (rc != 0)
        dump(d);
    assert_int_equal(rc, 0);
    assert_non_null(cfg);
    assert_no_secret(d);
    return cfg;
}

/* Compare a list of "LINE:COL: message" (or ": message") with the diagnostics. */
static void check_list(char **got, size_t ngot, const char *const *want)
{
    size_t n = 0;
    while (want[n])
        n++;
    if (ngot != n) {
        for (size_t i = 0; i < ngot; i++)
            fprintf(stderr, "  got: %s\n", got[i]);
    }
    assert_int_equal(ngot, n);
    for (size_t i = 0; i < n; i++) {
        char *exp = xasprintf("%s%s%s", cfgpath, want[i][0] == ':' ? "" : ":", want[i]);
        assert_string_equal(got[i], exp);
        free(exp);
    }
}

static void expect_errs_len(const char *yaml, size_t len, const char *const *want)
{
    struct cfg_diags d = {0};
    struct cfg_config *cfg = (struct cfg_config *)&d; /* must stay untouched */
    int rc = cfg_load_buffer(cfgpath, yaml, len, &cfg, &d);
    assert_int_equal(rc, -1);
    assert_ptr_equal(cfg, (struct cfg_config *)&d);
    check_list(d.errors, d.nerrors, want);
    assert_no_secret(&d);
    cfg_diags_free(&d);
}

#define EXPECT_ERRS(yaml, ...)                                                                     \
    expect_errs_len(yaml, strlen(yaml), (const char *const[]){__VA_ARGS__, NULL})

/* ---------------------------------------------------------------------------------------- */
/* valid configs, defaults, merging                                                         */

static void test_defaults(void **state)
{
    (void)state;
    struct cfg_diags d = {0};
    struct cfg_config *cfg = load_ok(TENANTS JOB, &d);
    assert_int_equal(d.nwarnings, 0);

    assert_string_equal(cfg->file, cfgpath);
    assert_string_equal(cfg->state_dir, "/var/lib/rolesyncd");
    assert_int_equal(cfg->log_level, LOG_LVL_INFO);
    assert_null(cfg->metrics_file);
    assert_int_equal(cfg->http.timeout_ms, 30000);
    assert_int_equal(cfg->http.connect_timeout_ms, 10000);
    assert_int_equal(cfg->http.max_connections, 8);
    assert_true(fabs(cfg->http.rate_per_sec - 5.0) < 1e-9);
    assert_null(cfg->http.ca_file);
    assert_int_equal(cfg->http.retry_max_attempts, 8);
    assert_int_equal(cfg->http.retry_initial_delay_ms, 1000);
    assert_int_equal(cfg->http.retry_max_delay_ms, 60000);

    assert_int_equal(cfg->ntenants, 3);
    const struct cfg_tenant *prod = cfg_find_tenant(cfg, "prod");
    const struct cfg_tenant *plant = cfg_find_tenant(cfg, "plant");
    assert_non_null(prod);
    assert_non_null(plant);
    assert_null(cfg_find_tenant(cfg, "nope"));
    assert_int_equal(prod->api, CFG_API_GENESYS);
    assert_int_equal(prod->page_size_roles, 100);
    assert_int_equal(prod->page_size_users, 500);
    assert_int_equal(plant->api, CFG_API_IDENTITY);
    assert_int_equal(plant->page_size_roles, 1000);
    assert_int_equal(plant->page_size_users, 1000);
    assert_string_equal(plant->tenant_id, "3f1c0c1e-5f61-4a8e-9c59-0a4b2b8c9d01");
    assert_null(prod->tenant_id);
    assert_string_equal(prod->client_id, "prod-client");
    assert_int_equal(prod->line, 2);
    assert_int_equal(prod->column, 3);
    assert_int_equal(prod->http.max_connections, 8);

    assert_int_equal(cfg->njobs, 1);
    const struct cfg_job *j = cfg_find_job(cfg, "prod-to-dev");
    assert_non_null(j);
    assert_null(cfg_find_job(cfg, "other"));
    assert_ptr_equal(j->source, prod);
    assert_ptr_equal(j->target, cfg_find_tenant(cfg, "dev"));
    assert_int_equal(j->interval_ms, 600000);
    assert_int_equal(j->roles_include.n, 1);
    assert_string_equal(j->roles_include.v[0], "*");
    assert_int_equal(j->roles_exclude.n, 0);
    assert_false(j->definitions);
    assert_int_equal(j->nrename, 0);
    assert_int_equal(j->match_by, CFG_MATCH_EMAIL);
    assert_int_equal(j->users_include.n, 1);
    assert_string_equal(j->users_include.v[0], "*");
    assert_int_equal(j->users_exclude.n, 0);
    assert_int_equal(j->assignments, CFG_ASSIGN_MIRROR);
    assert_false(j->prune);
    assert_int_equal(j->max_deletes, 50);
    assert_false(j->dry_run);
    assert_int_equal(j->line, 19);
    assert_int_equal(j->column, 5);
    cfg_free(cfg);
    cfg_diags_free(&d);
}

static void test_full_job(void **state)
{
    (void)state;
    struct cfg_diags d = {0};
    struct cfg_config *cfg = load_ok("state_dir: /srv/rs\n"
                                     "log_level: debug\n"
                                     "metrics_file: /tmp/rs.prom\n" TENANTS "jobs:\n"
                                     "  - name: prod-to-dev\n"
                                     "    source: prod\n"
                                     "    target: dev\n"
                                     "    interval: 90s\n"
                                     "    roles:\n"
                                     "      include: [\"*\"]\n"
                                     "      exclude: [\"Master Admin\", \"Temp*\"]\n"
                                     "      definitions: true\n"
                                     "      rename: { \"Supervisor\": \"Team Lead\", A: B }\n"
                                     "    users:\n"
                                     "      match_by: username\n"
                                     "      include: [\"*@example.com\"]\n"
                                     "      exclude:\n"
                                     "        - breakglass@example.com\n"
                                     "    assignments: additive\n"
                                     "    prune: true\n"
                                     "    max_deletes: 0\n"
                                     "    dry_run: true\n"
                                     "  - name: plant-to-prod\n"
                                     "    source: plant\n"
                                     "    target: prod\n"
                                     "    assignments: off\n",
                                     &d);
    assert_string_equal(cfg->state_dir, "/srv/rs");
    assert_int_equal(cfg->log_level, LOG_LVL_DEBUG);
    assert_string_equal(cfg->metrics_file, "/tmp/rs.prom");
    assert_int_equal(cfg->njobs, 2);
    const struct cfg_job *j = &cfg->jobs[0];
    assert_int_equal(j->interval_ms, 90000);
    assert_int_equal(j->roles_exclude.n, 2);
    assert_string_equal(j->roles_exclude.v[0], "Master Admin");
    assert_string_equal(j->roles_exclude.v[1], "Temp*");
    assert_true(j->definitions);
    assert_int_equal(j->nrename, 2);
    assert_string_equal(j->rename[0].from, "Supervisor");
    assert_string_equal(j->rename[0].to, "Team Lead");
    assert_string_equal(j->rename[1].from, "A");
    assert_string_equal(j->rename[1].to, "B");
    assert_int_equal(j->match_by, CFG_MATCH_USERNAME);
    assert_string_equal(j->users_include.v[0], "*@example.com");
    assert_string_equal(j->users_exclude.v[0], "breakglass@example.com");
    assert_int_equal(j->assignments, CFG_ASSIGN_ADDITIVE);
    assert_true(j->prune);
    assert_int_equal(j->max_deletes, 0);
    assert_true(j->dry_run);
    assert_int_equal(cfg->jobs[1].assignments, CFG_ASSIGN_OFF);
    assert_string_equal(cfg->jobs[1].source->name, "plant");
    cfg_free(cfg);
    cfg_diags_free(&d);
}

static void test_state_dir_env(void **state)
{
    (void)state;
    struct cfg_diags d = {0};
    setenv("STATE_DIRECTORY", "/var/lib/private/rolesyncd:/var/lib/other", 1);
    struct cfg_config *cfg = load_ok(TENANTS JOB, &d);
    assert_string_equal(cfg->state_dir, "/var/lib/private/rolesyncd");
    cfg_free(cfg);
    /* the key wins over the environment */
    cfg = load_ok("state_dir: /srv/x\n" TENANTS JOB, &d);
    assert_string_equal(cfg->state_dir, "/srv/x");
    cfg_free(cfg);
    cfg_diags_free(&d);
}

static void test_http_merge(void **state)
{
    (void)state;
    struct cfg_diags d = {0};
    char *ca = xasprintf("%s/ca.pem", tmpdir);
    char *yaml = xasprintf("http:\n"
                           "  timeout: 5s\n"
                           "  rate_limit: 10/s\n"
                           "  ca_file: %s\n"
                           "  retry: { max_attempts: 3, initial_delay: 250ms }\n"
                           "tenants:\n"
                           "  prod:\n"
                           "    api: genesys\n"
                           "    base_url: https://api.mypurecloud.com\n"
                           "    client_id: a\n"
                           "    client_secret_file: prod.secret\n"
                           "  dev:\n"
                           "    api: genesys\n"
                           "    base_url: https://api.usw2.pure.cloud\n"
                           "    client_id: b\n"
                           "    client_secret_file: dev.secret\n"
                           "    page_size: 250\n"
                           "    http:\n"
                           "      max_connections: 4\n"
                           "      rate_limit: 0\n"
                           "      connect_timeout: 2s\n"
                           "      retry: { max_delay: 10s }\n" JOB,
                           ca);
    struct cfg_config *cfg = load_ok(yaml, &d);
    assert_int_equal(cfg->http.timeout_ms, 5000);
    assert_string_equal(cfg->http.ca_file, ca);
    const struct cfg_tenant *p = cfg_find_tenant(cfg, "prod"), *v = cfg_find_tenant(cfg, "dev");
    assert_int_equal(p->http.timeout_ms, 5000);
    assert_int_equal(p->http.connect_timeout_ms, 10000);
    assert_int_equal(p->http.max_connections, 8);
    assert_true(fabs(p->http.rate_per_sec - 10.0) < 1e-9);
    assert_int_equal(p->http.retry_max_attempts, 3);
    assert_int_equal(p->http.retry_initial_delay_ms, 250);
    assert_int_equal(p->http.retry_max_delay_ms, 60000);
    assert_string_equal(p->http.ca_file, ca);
    assert_int_equal(p->page_size_roles, 100);
    assert_int_equal(v->http.timeout_ms, 5000);
    assert_int_equal(v->http.connect_timeout_ms, 2000);
    assert_int_equal(v->http.max_connections, 4);
    assert_true(v->http.rate_per_sec == 0.0);
    assert_int_equal(v->http.retry_max_attempts, 3);
    assert_int_equal(v->http.retry_initial_delay_ms, 250);
    assert_int_equal(v->http.retry_max_delay_ms, 10000);
    assert_string_equal(v->http.ca_file, ca);
    assert_int_equal(v->page_size_roles, 250);
    assert_int_equal(v->page_size_users, 250);
    cfg_free(cfg);
    cfg_diags_free(&d);
    free(yaml);
    free(ca);
}

/* A ca_file that is a directory, not PEM, or missing is a --check error at its node: it
 * passed, and then every TLS request failed at run time (found by a black-box test). */
static void test_ca_file_checked(void **state)
{
    (void)state;
    char *cases[][2] = {
        {xasprintf("%s", tmpdir), "not a regular file"},
        {xasprintf("%s/not-a-ca.pem", tmpdir),
         "no PEM certificate in it (\"-----BEGIN CERTIFICATE-----\")"},
        {xasprintf("%s/missing.pem", tmpdir), "No such file or directory"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *yaml = xasprintf("http:\n  ca_file: %s\n" TENANTS JOB, cases[i][0]);
        char *want = xasprintf("2:12: cannot use ca_file \"%s\": %s", cases[i][0], cases[i][1]);
        EXPECT_ERRS(yaml, want);
        free(want);
        free(yaml);
        free(cases[i][0]);
    }
}

static void test_token_url(void **state)
{
    (void)state;
    struct cfg_diags d = {0};
    struct cfg_config *cfg = load_ok(TENANTS "  sim:\n"
                                             "    api: genesys\n"
                                             "    base_url: http://127.0.0.1:8080/\n"
                                             "    client_id: s\n"
                                             "    client_secret_file: prod.secret\n"
                                             "  sim6:\n"
                                             "    api: identity\n"
                                             "    base_url: http://[::1]:9000/gw//\n"
                                             "    tenant_id: 3F1C0C1E-5F61-4A8E-9C59-0A4B2B8C9D01\n"
                                             "    client_id: s\n"
                                             "    client_secret_file: prod.secret\n"
                                             "  local:\n"
                                             "    api: genesys\n"
                                             "    base_url: http://LocalHost:1\n"
                                             "    token_url: https://auth.example.com/t/\n"
                                             "    client_id: s\n"
                                             "    client_secret_file: prod.secret\n" JOB,
                                     &d);
    const struct cfg_tenant *t = cfg_find_tenant(cfg, "prod");
    assert_string_equal(t->base_url, "https://api.mypurecloud.com");
    assert_string_equal(t->token_url, "https://login.mypurecloud.com/oauth/token");
    t = cfg_find_tenant(cfg, "dev");
    assert_string_equal(t->base_url, "https://api.usw2.pure.cloud");
    assert_string_equal(t->token_url, "https://login.usw2.pure.cloud/oauth/token");
    t = cfg_find_tenant(cfg, "plant");
    assert_string_equal(t->token_url,
                        "https://uswe.datahub.connect.aveva.com/identity/connect/token");
    t = cfg_find_tenant(cfg, "sim");
    assert_string_equal(t->base_url, "http://127.0.0.1:8080");
    assert_string_equal(t->token_url, "http://127.0.0.1:8080/oauth/token");
    t = cfg_find_tenant(cfg, "sim6");
    assert_string_equal(t->base_url, "http://[::1]:9000/gw");
    assert_string_equal(t->token_url, "http://[::1]:9000/gw/identity/connect/token");
    t = cfg_find_tenant(cfg, "local");
    assert_string_equal(t->token_url, "https://auth.example.com/t");
    cfg_free(cfg);
    cfg_diags_free(&d);
}

static void test_parse_duration(void **state)
{
    (void)state;
    uint64_t ms = 0;
    assert_int_equal(cfg_parse_duration("500ms", &ms), 0);
    assert_int_equal(ms, 500);
    assert_int_equal(cfg_parse_duration("30s", &ms), 0);
    assert_int_equal(ms, 30000);
    assert_int_equal(cfg_parse_duration("10m", &ms), 0);
    assert_int_equal(ms, 600000);
    assert_int_equal(cfg_parse_duration("1h", &ms), 0);
    assert_int_equal(ms, 3600000);
    ms = 7;
    const char *bad[] = {"",
                         "0s",
                         "10",
                         "10 m",
                         " 10m",
                         "10min",
                         "-5s",
                         "1.5s",
                         "s",
                         "1d",
                         "10M",
                         "5sec",
                         "18446744073709551615h",
                         "99999999999999999999ms",
                         NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(cfg_parse_duration(bad[i], &ms), -1);
    assert_int_equal(ms, 7);
    assert_int_equal(cfg_parse_duration(NULL, &ms), -1);
}

static void test_parse_rate(void **state)
{
    (void)state;
    double r = -1;
    assert_int_equal(cfg_parse_rate("5/s", &r), 0);
    assert_true(fabs(r - 5.0) < 1e-9);
    assert_int_equal(cfg_parse_rate("300/min", &r), 0);
    assert_true(fabs(r - 5.0) < 1e-9);
    assert_int_equal(cfg_parse_rate("7200/h", &r), 0);
    assert_true(fabs(r - 2.0) < 1e-9);
    assert_int_equal(cfg_parse_rate("0", &r), 0);
    assert_true(r == 0.0);
    const char *bad[] = {"",     "5",     "0/s", "5/sec",      "5 /s", "/s",
                         "-1/s", "1.5/s", "5/m", "99999999/s", "00",   NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(cfg_parse_rate(bad[i], &r), -1);
}

static void test_format_duration(void **state)
{
    (void)state;
    char b[32];
    assert_string_equal(cfg_format_duration(600000, b, sizeof b), "10m");
    assert_string_equal(cfg_format_duration(7200000, b, sizeof b), "2h");
    assert_string_equal(cfg_format_duration(90000, b, sizeof b), "90s");
    assert_string_equal(cfg_format_duration(1500, b, sizeof b), "1500ms");
    assert_string_equal(cfg_format_duration(0, b, sizeof b), "0ms");
    assert_string_equal(cfg_api_name(CFG_API_GENESYS), "genesys");
    assert_string_equal(cfg_api_name(CFG_API_IDENTITY), "identity");
}

static void test_no_jobs_warns(void **state)
{
    (void)state;
    struct cfg_diags d = {0};
    struct cfg_config *cfg = load_ok(TENANTS "jobs: []\n", &d);
    assert_int_equal(cfg->njobs, 0);
    check_list(d.warnings, d.nwarnings,
               (const char *const[]){
                   "18:1: no jobs are defined; the daemon will have nothing to do", NULL});
    cfg_free(cfg);
    cfg_diags_free(&d);
}

/* ---------------------------------------------------------------------------------------- */
/* unknown keys and types                                                                   */

static void test_unknown_key_job(void **state)
{
    (void)state;
    EXPECT_ERRS(TENANTS JOB "    intervall: 10m\n",
                "22:5: unknown key \"intervall\" in job (expected one of: name, source, target, "
                "interval, roles, divisions, users, assignments, prune, max_deletes, dry_run)");
}

static void test_unknown_keys_everywhere(void **state)
{
    (void)state;
    EXPECT_ERRS(
        "loglevel: info\n"
        "http:\n"
        "  timeouts: 5s\n"
        "  retry:\n"
        "    attempts: 3\n" TENANTS "    colour: blue\n" JOB "    roles: { inclde: [a] }\n"
        "    users: { match: email }\n",
        "1:1: unknown key \"loglevel\" at top level (expected one of: state_dir, "
        "log_level, metrics_file, http, tenants, jobs, coordination, journal)",
        "3:3: unknown key \"timeouts\" in http (expected one of: timeout, "
        "connect_timeout, max_connections, rate_limit, ca_file, retry)",
        "5:5: unknown key \"attempts\" in retry (expected one of: max_attempts, "
        "initial_delay, max_delay)",
        "23:5: unknown key \"colour\" in tenant (expected one of: api, base_url, "
        "write_base_url, token_url, tenant_id, client_id, client_secret_file, client_secret_env, "
        "page_size, http)",
        "28:14: unknown key \"inclde\" in roles (expected one of: include, exclude, "
        "definitions, rename)",
        "29:14: unknown key \"match\" in users (expected one of: match_by, include, "
        "exclude)");
}

static void test_inline_secret(void **state)
{
    (void)state;
    EXPECT_ERRS("tenants:\n"
                "  prod:\n"
                "    api: genesys\n"
                "    base_url: https://api.mypurecloud.com\n"
                "    client_id: prod-client\n"
                "    client_secret: inline-s3cret\n"
                "jobs: []\n",
                "6:5: an inline \"client_secret\" is not allowed: keep the secret out of the "
                "config and use client_secret_file (a file with the secret) or "
                "client_secret_env (an environment variable)");
}

static void test_wrong_types(void **state)
{
    (void)state;
    EXPECT_ERRS(TENANTS "jobs:\n"
                        "  - name: [a]\n"
                        "    source: prod\n"
                        "    target: dev\n"
                        "    interval: { every: 10m }\n"
                        "    max_deletes: yes\n"
                        "    prune: yes\n"
                        "    dry_run: 1\n"
                        "    roles: [a]\n"
                        "    users:\n"
                        "      include: \"*\"\n"
                        "      exclude: [[a]]\n"
                        "    assignments:\n",
                "19:11: \"name\" must be a string, not a list",
                "22:15: \"interval\" must be a duration (e.g. 30s), not a mapping",
                "23:18: invalid value \"yes\" for \"max_deletes\" (expected a whole number from 0 "
                "to 1000000000)",
                "24:12: invalid boolean \"yes\" for \"prune\" (use true or false)",
                "25:14: invalid boolean \"1\" for \"dry_run\" (use true or false)",
                "26:12: \"roles\" must be a mapping (include, exclude, definitions, rename), not "
                "a list",
                "28:16: \"include\" must be a list of strings (e.g. [\"*\"]), not a single value",
                "29:17: items of \"exclude\" must be non-empty strings, not a list",
                "30:17: \"assignments\" has no value");
}

static void test_top_level_types(void **state)
{
    (void)state;
    EXPECT_ERRS("http: 5\n"
                "tenants: [a]\n"
                "jobs: { a: 1 }\n"
                "state_dir: relative/dir\n"
                "metrics_file: {}\n",
                "1:7: \"http\" must be a mapping (timeout, max_connections, ...), not a single "
                "value",
                "2:10: \"tenants\" must be a mapping of tenant names, not a list",
                "3:7: \"jobs\" must be a list of jobs (- name: ...), not a mapping",
                "4:12: \"state_dir\" must be an absolute path (starting with /)",
                "5:15: \"metrics_file\" must be a string, not a mapping");
}

static void test_root_not_mapping(void **state)
{
    (void)state;
    EXPECT_ERRS("- a\n- b\n",
                "1:1: the configuration must be a mapping (state_dir, http, tenants, jobs, ...), "
                "not a list");
}

static void test_empty_file(void **state)
{
    (void)state;
    EXPECT_ERRS("# nothing but a comment\n",
                "1:1: the configuration is empty (expected a mapping with tenants: and jobs:)");
    EXPECT_ERRS("---\n~\n",
                "2:1: the configuration is empty (expected a mapping with tenants: and jobs:)");
}

static void test_tenant_not_mapping(void **state)
{
    (void)state;
    EXPECT_ERRS("tenants:\n"
                "  prod: https://api.mypurecloud.com\n"
                "  bad name:\n"
                "    api: genesys\n"
                "    base_url: https://api.mypurecloud.com\n"
                "    client_id: x\n"
                "    client_secret_file: prod.secret\n"
                "jobs: []\n",
                "2:9: tenant \"prod\" must be a mapping (api, base_url, client_id, ...), not a "
                "single value",
                "3:3: invalid tenant name \"bad name\" (use up to 64 letters, digits, '.', '_' and "
                "'-')");
}

/* ---------------------------------------------------------------------------------------- */
/* values                                                                                   */

static void test_bad_durations(void **state)
{
    (void)state;
    EXPECT_ERRS("http:\n"
                "  timeout: 30\n"
                "  connect_timeout: 0s\n"
                "  retry:\n"
                "    initial_delay: 1.5s\n" TENANTS JOB "    interval: 10 minutes\n",
                "2:12: invalid duration \"30\" (use e.g. 500ms, 30s, 10m, 1h)",
                "3:20: invalid duration \"0s\" (use e.g. 500ms, 30s, 10m, 1h)",
                "5:20: invalid duration \"1.5s\" (use e.g. 500ms, 30s, 10m, 1h)",
                "27:15: invalid duration \"10 minutes\" (use e.g. 500ms, 30s, 10m, 1h)");
}

static void test_interval_minimum(void **state)
{
    (void)state;
    EXPECT_ERRS(TENANTS JOB "    interval: 999ms\n", "22:15: \"interval\" must be at least 1s");
}

static void test_bad_rates_and_ints(void **state)
{
    (void)state;
    EXPECT_ERRS("http:\n"
                "  rate_limit: 5 per second\n"
                "  max_connections: 0\n"
                "  retry: { max_attempts: 101 }\n" TENANTS "    page_size: -1\n" JOB
                "    max_deletes: 12abc\n",
                "2:15: invalid rate \"5 per second\" (use e.g. 5/s, 300/min, 1000/h, or 0 for no "
                "limit)",
                "3:20: invalid value \"0\" for \"max_connections\" (expected a whole number from 1 "
                "to 1024)",
                "4:26: invalid value \"101\" for \"max_attempts\" (expected a whole number from 1 "
                "to 100)",
                "22:16: invalid value \"-1\" for \"page_size\" (expected a whole number from 1 to "
                "1000)",
                "27:18: invalid value \"12abc\" for \"max_deletes\" (expected a whole number from "
                "0 to 1000000000)");
}

/* The largest page each platform serves: a bigger page_size passed --check and then failed
 * every cycle with the platform's 400 (found by a black-box test). */
static void test_page_size_limits(void **state)
{
    (void)state;
    EXPECT_ERRS(TENANTS "    page_size: 1001\n" JOB,
                "18:16: invalid value \"1001\" for \"page_size\" (expected a whole number from 1 "
                "to 1000)");
    EXPECT_ERRS("tenants:\n"
                "  prod:\n"
                "    api: genesys\n"
                "    base_url: https://api.mypurecloud.com\n"
                "    client_id: prod-client\n"
                "    client_secret_file: prod.secret\n"
                "    page_size: 501\n"
                "  dev:\n"
                "    api: genesys\n"
                "    base_url: https://api.usw2.pure.cloud/\n"
                "    client_id: dev-client\n"
                "    client_secret_file: dev.secret\n"
                "    page_size: 500\n" JOB,
                "7:16: invalid value \"501\" for \"page_size\" (expected a whole number from 1 "
                "to 500)");
}

/* Found by fuzzing: the "defined tenants" list of an unknown-tenant error carried a malformed
 * tenant name raw, newline and all, so one diagnostic became three lines. */
static void test_diagnostics_stay_one_line(void **state)
{
    (void)state;
    const char *yaml = "tenants:\n"
                       "  \"a\\nb\": {api: genesys}\n"
                       "  ok: {api: genesys}\n"
                       "jobs:\n"
                       "  - {name: j, source: nowhere, target: ok}\n";
    struct cfg_diags d = {0};
    struct cfg_config *cfg = NULL;
    assert_int_equal(cfg_load_buffer(cfgpath, yaml, strlen(yaml), &cfg, &d), -1);
    bool listed = false;
    for (size_t i = 0; i < d.nerrors; i++) {
        assert_null(strchr(d.errors[i], '\n'));
        listed |= strstr(d.errors[i], "unknown tenant \"nowhere\" (defined tenants: ok)") != NULL;
    }
    assert_true(listed);
    cfg_diags_free(&d);
}

static void test_delay_order(void **state)
{
    (void)state;
    EXPECT_ERRS("http:\n"
                "  retry: { initial_delay: 2m, max_delay: 1m }\n" TENANTS
                "    http: { retry: { initial_delay: 5s } }\n" JOB,
                "2:42: initial_delay (2m) must not be longer than max_delay (1m)");
    EXPECT_ERRS("http:\n"
                "  retry: { max_delay: 2s }\n" TENANTS
                "    http: { retry: { initial_delay: 5s } }\n" JOB,
                "20:37: initial_delay (5s) must not be longer than max_delay (2s)");
}

static void test_enums(void **state)
{
    (void)state;
    EXPECT_ERRS(
        "log_level: verbose\n"
        "tenants:\n"
        "  prod:\n"
        "    api: purecloud\n"
        "    base_url: https://api.mypurecloud.com\n"
        "    client_id: x\n"
        "    client_secret_file: prod.secret\n"
        "  dev:\n"
        "    api: genesys\n"
        "    base_url: https://api.usw2.pure.cloud\n"
        "    client_id: x\n"
        "    client_secret_file: dev.secret\n"
        "jobs:\n"
        "  - name: a\n"
        "    source: prod\n"
        "    target: dev\n"
        "    assignments: replace\n"
        "    users: { match_by: upn }\n",
        "1:12: invalid log_level \"verbose\" (expected one of: error, warning, info, debug)",
        "4:10: invalid api \"purecloud\" (expected one of: genesys, identity)",
        "17:18: invalid assignments \"replace\" (expected one of: mirror, additive, off)",
        "18:24: invalid match_by \"upn\" (expected one of: email, username, external_id)");
}

static void test_match_by_mismatch(void **state)
{
    (void)state;
    EXPECT_ERRS(TENANTS "jobs:\n"
                        "  - name: a\n"
                        "    source: prod\n"
                        "    target: plant\n"
                        "    users:\n"
                        "      match_by: username\n"
                        "  - name: b\n"
                        "    source: plant\n"
                        "    target: dev\n"
                        "    users: { match_by: external_id }\n",
                "23:17: match_by \"username\" does not work with target tenant \"plant\" (api "
                "identity supports: email, external_id)",
                "27:24: match_by \"external_id\" does not work with target tenant \"dev\" (api "
                "genesys supports: email, username)");
    /* identity on both sides accepts external_id */
    struct cfg_diags d = {0};
    struct cfg_config *cfg =
        load_ok(TENANTS "  plant2:\n"
                        "    api: identity\n"
                        "    base_url: https://euno.datahub.connect.aveva.com\n"
                        "    tenant_id: 00000000-0000-4000-8000-000000000002\n"
                        "    client_id: x\n"
                        "    client_secret_env: RS_TEST_PLANT_SECRET\n"
                        "jobs:\n"
                        "  - name: p\n"
                        "    source: plant\n"
                        "    target: plant2\n"
                        "    users: { match_by: external_id }\n",
                &d);
    assert_int_equal(cfg->jobs[0].match_by, CFG_MATCH_EXTERNAL_ID);
    cfg_free(cfg);
    cfg_diags_free(&d);
}

/* ---------------------------------------------------------------------------------------- */
/* cross references                                                                         */

static void test_unknown_tenant(void **state)
{
    (void)state;
    EXPECT_ERRS(TENANTS "jobs:\n"
                        "  - name: a\n"
                        "    source: prd\n"
                        "    target: dev\n",
                "20:13: unknown tenant \"prd\" (defined tenants: prod, dev, plant)");
    EXPECT_ERRS("jobs:\n"
                "  - name: a\n"
                "    source: prod\n"
                "    target: dev\n",
                "3:13: unknown tenant \"prod\" (no tenants are defined)",
                "4:13: unknown tenant \"dev\" (no tenants are defined)");
}

static void test_same_tenant(void **state)
{
    (void)state;
    EXPECT_ERRS(TENANTS "jobs:\n"
                        "  - name: a\n"
                        "    source: dev\n"
                        "    target: dev\n",
                "21:13: source and target are the same tenant \"dev\"");
}

static void test_definitions_across_apis(void **state)
{
    (void)state;
    EXPECT_ERRS(TENANTS "jobs:\n"
                        "  - name: a\n"
                        "    source: prod\n"
                        "    target: plant\n"
                        "    roles:\n"
                        "      definitions: true\n",
                "23:20: \"definitions: true\" needs source and target of the same api (\"prod\" is "
                "genesys, \"plant\" is identity)");
    /* definitions: false across apis is fine */
    struct cfg_diags d = {0};
    struct cfg_config *cfg = load_ok(TENANTS "jobs:\n"
                                             "  - name: a\n"
                                             "    source: prod\n"
                                             "    target: plant\n"
                                             "    roles: { definitions: false }\n",
                                     &d);
    cfg_free(cfg);
    cfg_diags_free(&d);
}

static void test_duplicate_job_name(void **state)
{
    (void)state;
    EXPECT_ERRS(TENANTS JOB "  - name: prod-to-dev\n"
                            "    source: prod\n"
                            "    target: plant\n",
                "22:11: duplicate job name \"prod-to-dev\" (first defined at line 19, column 11)");
}

static void test_missing_job_keys(void **state)
{
    (void)state;
    EXPECT_ERRS(TENANTS "jobs:\n"
                        "  - source: prod\n"
                        "  - name: x\n"
                        "  - name: bad/name\n"
                        "    source: prod\n"
                        "    target: dev\n"
                        "  - 5\n",
                "19:5: job is missing \"name\"", "19:5: job is missing \"target\"",
                "20:5: job \"x\" is missing \"source\"", "20:5: job \"x\" is missing \"target\"",
                "21:11: invalid job name \"bad/name\" (use up to 64 letters, digits, '.', '_' and "
                "'-')",
                "24:5: a job must be a mapping (name, source, target, ...), not a single value");
}

static void test_rename(void **state)
{
    (void)state;
    EXPECT_ERRS(TENANTS JOB "    roles:\n"
                            "      rename:\n"
                            "        Supervisor: Team Lead\n"
                            "        supervisor: Boss\n"
                            "        Agent: team lead\n"
                            "        X: [a]\n"
                            "        Y: \"\"\n",
                "25:9: role \"supervisor\" is renamed twice (names are compared "
                "case-insensitively)",
                "26:16: roles \"Supervisor\" and \"Agent\" are both renamed to \"team lead\"",
                "27:12: the new name for role \"X\" must be a non-empty string, not a list",
                "28:12: the new name for role \"Y\" must be a non-empty string, not empty");
    EXPECT_ERRS(TENANTS JOB "    roles: { rename: [a, b] }\n",
                "22:22: \"rename\" must be a mapping of source name: target name, not a list");
}

/* product.md 4a: divisions on genesys <-> genesys jobs, refused with an identity side. */
static void test_divisions(void **state)
{
    (void)state;
    struct cfg_diags d = {0};
    struct cfg_config *cfg = load_ok(TENANTS JOB "    divisions:\n"
                                                 "      include: [home, \"E*\"]\n"
                                                 "      exclude: [\"EMEA-Test\"]\n"
                                                 "      rename: { EMEA: Europe }\n",
                                     &d);
    const struct cfg_job *j = &cfg->jobs[0];
    assert_int_equal(j->divisions_include.n, 2);
    assert_string_equal(j->divisions_include.v[0], "home");
    assert_int_equal(j->divisions_exclude.n, 1);
    assert_int_equal(j->ndivision_rename, 1);
    assert_string_equal(j->division_rename[0].from, "EMEA");
    assert_string_equal(j->division_rename[0].to, "Europe");
    cfg_free(cfg);
    cfg_diags_free(&d);
    /* default: every division */
    cfg = load_ok(TENANTS JOB, &d);
    assert_int_equal(cfg->jobs[0].divisions_include.n, 1);
    assert_string_equal(cfg->jobs[0].divisions_include.v[0], "*");
    assert_int_equal(cfg->jobs[0].divisions_exclude.n, 0);
    cfg_free(cfg);
    cfg_diags_free(&d);
    EXPECT_ERRS(TENANTS "jobs:\n"
                        "  - name: a\n"
                        "    source: prod\n"
                        "    target: plant\n"
                        "    divisions: { include: [home] }\n",
                "22:5: \"divisions\" needs genesys on both sides (target tenant \"plant\" is "
                "identity, which has no divisions)");
    EXPECT_ERRS(
        TENANTS JOB "    divisions:\n"
                    "      includ: [x]\n"
                    "      rename: { EMEA: Europe, emea: X }\n",
        "23:7: unknown key \"includ\" in divisions (expected one of: include, exclude, rename)",
        "24:31: division \"emea\" is renamed twice (names are compared "
        "case-insensitively)");
    EXPECT_ERRS(TENANTS JOB "    divisions: [a]\n",
                "22:16: \"divisions\" must be a mapping (include, exclude, rename), not a list");
}

/* ---------------------------------------------------------------------------------------- */
/* tenants: required keys, ids, URLs                                                        */

static void test_tenant_missing_keys(void **state)
{
    (void)state;
    EXPECT_ERRS("tenants:\n"
                "  a:\n"
                "    client_secret_file: prod.secret\n"
                "  b:\n"
                "    api: identity\n"
                "    base_url: https://x.example.com\n"
                "    client_id: c\n"
                "    client_secret_env: RS_TEST_PLANT_SECRET\n"
                "  c:\n"
                "    api: genesys\n"
                "    base_url: https://api.mypurecloud.com\n"
                "    client_id: c\n"
                "jobs: []\n",
                "3:5: tenant \"a\" is missing \"api\" (genesys or identity)",
                "3:5: tenant \"a\" is missing \"base_url\"",
                "3:5: tenant \"a\" is missing \"client_id\"",
                "5:5: tenant \"b\" (api identity) is missing \"tenant_id\"",
                "10:5: tenant \"c\" needs client_secret_file or client_secret_env");
}

static void test_tenant_id_rules(void **state)
{
    (void)state;
    EXPECT_ERRS("tenants:\n"
                "  g:\n"
                "    api: genesys\n"
                "    tenant_id: 3f1c0c1e-5f61-4a8e-9c59-0a4b2b8c9d01\n"
                "    base_url: https://api.mypurecloud.com\n"
                "    client_id: c\n"
                "    client_secret_file: prod.secret\n"
                "  i:\n"
                "    api: identity\n"
                "    tenant_id: not-a-guid\n"
                "    base_url: https://x.example.com\n"
                "    client_id: c\n"
                "    client_secret_file: prod.secret\n"
                "jobs: []\n",
                "4:5: \"tenant_id\" is only for api: identity",
                "10:16: invalid tenant_id \"not-a-guid\" (expected a GUID like "
                "3f1c0c1e-5f61-4a8e-9c59-0a4b2b8c9d01)");
}

#define URL_TENANT(url)                                                                            \
    "  t:\n"                                                                                       \
    "    api: genesys\n"                                                                           \
    "    base_url: " url "\n"                                                                      \
    "    client_id: c\n"                                                                           \
    "    client_secret_file: prod.secret\n"

static void test_urls(void **state)
{
    (void)state;
    EXPECT_ERRS("tenants:\n" URL_TENANT("http://api.mypurecloud.com") "jobs: []\n",
                "4:15: \"base_url\" uses http:// with host \"api.mypurecloud.com\"; http:// is "
                "allowed only for loopback hosts (127.0.0.0/8, ::1, localhost), use https://");
    EXPECT_ERRS("tenants:\n" URL_TENANT("ftp://api.mypurecloud.com") "jobs: []\n",
                "4:15: \"base_url\" must be a URL starting with https:// (http:// only for "
                "loopback hosts)");
    EXPECT_ERRS("tenants:\n" URL_TENANT("api.mypurecloud.com") "jobs: []\n",
                "4:15: \"base_url\" must be a URL starting with https:// (http:// only for "
                "loopback hosts)");
    EXPECT_ERRS("tenants:\n" URL_TENANT("https://user:pw@api.mypurecloud.com") "jobs: []\n",
                "4:15: \"base_url\" must not contain a user name or password");
    EXPECT_ERRS("tenants:\n" URL_TENANT("https://api.mypurecloud.com/?x=1") "jobs: []\n",
                "4:15: \"base_url\" must not contain a query string or fragment");
    EXPECT_ERRS("tenants:\n" URL_TENANT("https://api.mypurecloud.com:99999") "jobs: []\n",
                "4:15: \"base_url\" has an invalid port");
    EXPECT_ERRS("tenants:\n" URL_TENANT("https:///path") "jobs: []\n",
                "4:15: \"base_url\" has no valid host name");
    EXPECT_ERRS("tenants:\n" URL_TENANT("http://[::2]:80") "jobs: []\n",
                "4:15: \"base_url\" uses http:// with host \"::2\"; http:// is allowed only for "
                "loopback hosts (127.0.0.0/8, ::1, localhost), use https://");
    EXPECT_ERRS("tenants:\n" URL_TENANT("http://128.0.0.1") "jobs: []\n",
                "4:15: \"base_url\" uses http:// with host \"128.0.0.1\"; http:// is allowed only "
                "for loopback hosts (127.0.0.0/8, ::1, localhost), use https://");
    EXPECT_ERRS("tenants:\n"
                "  t:\n"
                "    api: genesys\n"
                "    base_url: http://127.0.0.1:1\n"
                "    token_url: http://login.example.com/oauth/token\n"
                "    client_id: c\n"
                "    client_secret_file: prod.secret\n"
                "jobs: []\n",
                "5:16: \"token_url\" uses http:// with host \"login.example.com\"; http:// is "
                "allowed only for loopback hosts (127.0.0.0/8, ::1, localhost), use https://");
}

/* ---------------------------------------------------------------------------------------- */
/* secrets                                                                                  */

static void test_secret_missing_file(void **state)
{
    (void)state;
    char *want = xasprintf("6:25: cannot read secret file \"%s/nope.secret\": No such file or "
                           "directory",
                           tmpdir);
    EXPECT_ERRS("tenants:\n"
                "  prod:\n"
                "    api: genesys\n"
                "    base_url: https://api.mypurecloud.com\n"
                "    client_id: prod-client\n"
                "    client_secret_file: nope.secret\n"
                "jobs: []\n",
                want);
    free(want);
}

static void test_secret_env_problems(void **state)
{
    (void)state;
    unsetenv("RS_TEST_UNSET");
    setenv("RS_TEST_EMPTY", " \n", 1);
    EXPECT_ERRS(
        "tenants:\n"
        "  a:\n"
        "    api: genesys\n"
        "    base_url: https://api.mypurecloud.com\n"
        "    client_id: c\n"
        "    client_secret_env: RS_TEST_UNSET\n"
        "  b:\n"
        "    api: genesys\n"
        "    base_url: https://api.mypurecloud.com\n"
        "    client_id: c\n"
        "    client_secret_env: RS_TEST_EMPTY\n"
        "  c:\n"
        "    api: genesys\n"
        "    base_url: https://api.mypurecloud.com\n"
        "    client_id: c\n"
        "    client_secret_env: 1BAD-NAME\n"
        "  d:\n"
        "    api: genesys\n"
        "    base_url: https://api.mypurecloud.com\n"
        "    client_id: c\n"
        "    client_secret_file: prod.secret\n"
        "    client_secret_env: RS_TEST_PLANT_SECRET\n"
        "jobs: []\n",
        "6:24: environment variable \"RS_TEST_UNSET\" (client_secret_env) is not set",
        "11:24: environment variable \"RS_TEST_EMPTY\" (client_secret_env) is empty",
        "16:24: \"client_secret_env\" must be the name of an environment variable (letters, "
        "digits and '_', not starting with a digit)",
        "22:5: use either client_secret_file or client_secret_env, not both");
    unsetenv("RS_TEST_EMPTY");
}

static void test_secret_values_stripped(void **state)
{
    (void)state;
    struct cfg_diags d = {0};
    setenv("RS_TEST_PLANT_SECRET", "plant-s3cret \r\n", 1);
    struct cfg_config *cfg = load_ok(TENANTS JOB, &d);
    const struct cfg_tenant *t = cfg_find_tenant(cfg, "prod");
    assert_string_equal(t->client_secret, "prod-s3cret");
    char *origin = xasprintf("file %s/prod.secret", tmpdir);
    assert_string_equal(t->secret_origin, origin);
    free(origin);
    t = cfg_find_tenant(cfg, "dev");
    assert_string_equal(t->client_secret, "dev-s3cret");
    t = cfg_find_tenant(cfg, "plant");
    assert_string_equal(t->client_secret, "plant-s3cret");
    assert_string_equal(t->secret_origin, "env RS_TEST_PLANT_SECRET");
    cfg_free(cfg);
    cfg_diags_free(&d);
}

static void test_secret_group_readable_warns(void **state)
{
    (void)state;
    struct cfg_diags d = {0};
    write_file(tmpdir, "loose.secret", "loose-s3cret\n", 0640);
    struct cfg_config *cfg = load_ok("tenants:\n"
                                     "  prod:\n"
                                     "    api: genesys\n"
                                     "    base_url: https://api.mypurecloud.com\n"
                                     "    client_id: prod-client\n"
                                     "    client_secret_file: loose.secret\n"
                                     "jobs: []\n",
                                     &d);
    char *w = xasprintf("6:25: secret file \"%s/loose.secret\" is readable by group or others "
                        "(mode 0640); run chmod 600 on it",
                        tmpdir);
    check_list(d.warnings, d.nwarnings,
               (const char *const[]){
                   w, "7:1: no jobs are defined; the daemon will have nothing to do", NULL});
    free(w);
    assert_string_equal(cfg->tenants[0].client_secret, "loose-s3cret");
    cfg_free(cfg);
    cfg_diags_free(&d);
}

static void test_secret_empty_credentials_directory(void **state)
{
    (void)state;
    /* an empty $CREDENTIALS_DIRECTORY is "not set": relative files come from the config's folder */
    struct cfg_diags d = {0};
    setenv("CREDENTIALS_DIRECTORY", "", 1);
    struct cfg_config *cfg = load_ok(TENANTS JOB, &d);
    assert_string_equal(cfg_find_tenant(cfg, "prod")->client_secret, "prod-s3cret");
    cfg_free(cfg);
    cfg_diags_free(&d);
    unsetenv("CREDENTIALS_DIRECTORY");
}

static void test_secret_credentials_directory_resolution(void **state)
{
    (void)state;
    struct cfg_diags d = {0};
    char *yaml;
    write_file(credsdir, "prod.secret", "creds-s3cret\n", 0400);
    setenv("CREDENTIALS_DIRECTORY", credsdir, 1);
    yaml = xasprintf("tenants:\n"
                     "  prod:\n"
                     "    api: genesys\n"
                     "    base_url: https://api.mypurecloud.com\n"
                     "    client_id: prod-client\n"
                     "    client_secret_file: prod.secret\n"
                     "  abs:\n"
                     "    api: genesys\n"
                     "    base_url: https://api.mypurecloud.com\n"
                     "    client_id: abs-client\n"
                     "    client_secret_file: %s/dev.secret\n"
                     "jobs: []\n",
                     tmpdir);
    struct cfg_config *cfg = load_ok(yaml, &d);
    /* relative: from $CREDENTIALS_DIRECTORY, not from the config's folder */
    assert_string_equal(cfg_find_tenant(cfg, "prod")->client_secret, "creds-s3cret");
    /* absolute: as written */
    assert_string_equal(cfg_find_tenant(cfg, "abs")->client_secret, "dev-s3cret");
    cfg_free(cfg);
    cfg_diags_free(&d);
    free(yaml);

    /* a secret only in the config's folder is not found while CREDENTIALS_DIRECTORY is set */
    char *want = xasprintf("6:25: cannot read secret file \"%s/dev.secret\": No such file or "
                           "directory",
                           credsdir);
    EXPECT_ERRS("tenants:\n"
                "  prod:\n"
                "    api: genesys\n"
                "    base_url: https://api.mypurecloud.com\n"
                "    client_id: prod-client\n"
                "    client_secret_file: dev.secret\n"
                "jobs: []\n",
                want);
    free(want);
    unsetenv("CREDENTIALS_DIRECTORY");
}

static void test_secret_file_contents(void **state)
{
    (void)state;
    write_file(tmpdir, "empty.secret", "\n\n", 0600);
    write_file(tmpdir, "two.secret", "line-s3cret\nsecond\n", 0600);
    char *w1 = xasprintf("6:25: secret file \"%s/empty.secret\" is empty", tmpdir);
    char *w2 = xasprintf("11:25: secret file \"%s/two.secret\" must hold the secret on a single "
                         "line",
                         tmpdir);
    char *w3 = xasprintf("16:25: secret file \"%s/.\" is not a regular file", tmpdir);
    EXPECT_ERRS("tenants:\n"
                "  a:\n"
                "    api: genesys\n"
                "    base_url: https://api.mypurecloud.com\n"
                "    client_id: c\n"
                "    client_secret_file: empty.secret\n"
                "  b:\n"
                "    api: genesys\n"
                "    base_url: https://api.mypurecloud.com\n"
                "    client_id: c\n"
                "    client_secret_file: two.secret\n"
                "  c:\n"
                "    api: genesys\n"
                "    base_url: https://api.mypurecloud.com\n"
                "    client_id: c\n"
                "    client_secret_file: .\n"
                "jobs: []\n",
                w1, w2, w3);
    free(w1);
    free(w2);
    free(w3);
}

/* ---------------------------------------------------------------------------------------- */
/* hostile and broken YAML                                                                  */

static void test_syntax_error(void **state)
{
    (void)state;
    EXPECT_ERRS("tenants:\n"
                "  prod:\n"
                "    api: genesys\n"
                "   base_url: x\n",
                "4:4: YAML syntax error: did not find expected key (while parsing a block "
                "mapping at line 2, column 3)");
    EXPECT_ERRS("jobs: [a, b\n",
                "2:1: YAML syntax error: did not find expected ',' or ']' (while parsing a flow "
                "sequence at line 1, column 7)");
}

static void test_aliases_refused(void **state)
{
    (void)state;
    EXPECT_ERRS("x: &a [1, 2]\n"
                "http: &h { timeout: 5s }\n"
                "tenants:\n"
                "  a: *h\n"
                "jobs: []\n",
                "1:1: unknown key \"x\" at top level (expected one of: state_dir, log_level, "
                "metrics_file, http, tenants, jobs, coordination, journal)",
                "4:6: YAML aliases are not allowed (*h); write the value out");
    /* billion laughs: refused at the first alias, nothing expanded */
    EXPECT_ERRS("a: &a [x, x]\n"
                "b: &b [*a, *a]\n",
                "1:1: unknown key \"a\" at top level (expected one of: state_dir, log_level, "
                "metrics_file, http, tenants, jobs, coordination, journal)",
                "2:1: unknown key \"b\" at top level (expected one of: state_dir, log_level, "
                "metrics_file, http, tenants, jobs, coordination, journal)",
                "2:8: YAML aliases are not allowed (*a); write the value out",
                "2:12: YAML aliases are not allowed (*a); write the value out");
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    EXPECT_ERRS(TENANTS "  prod:\n"
                        "    api: genesys\n" JOB "    source: dev\n",
                "18:3: duplicate key \"prod\" (first defined at line 2, column 3)",
                "24:5: duplicate key \"source\" (first defined at line 22, column 5)");
}

static void test_multiple_documents(void **state)
{
    (void)state;
    EXPECT_ERRS(TENANTS JOB "---\n"
                            "log_level: debug\n",
                "22:1: a second YAML document is not allowed (one configuration per file)");
}

static void test_deep_nesting(void **state)
{
    (void)state;
    size_t depth = 10000;
    char *buf = xmalloc(depth * 2 + 16);
    size_t o = 0;
    o += (size_t)sprintf(buf, "jobs: ");
    for (size_t i = 0; i < depth; i++)
        buf[o++] = '[';
    for (size_t i = 0; i < depth; i++)
        buf[o++] = ']';
    buf[o++] = '\n';
    buf[o] = '\0';
    /* levels 1 (root) .. 32 are kept; the 33rd opening bracket is column 6 + 31 = 38 */
    /* (the first item of jobs: is itself a list, not a job mapping) */
    EXPECT_ERRS(buf, "1:8: a job must be a mapping (name, source, target, ...), not a list",
                "1:38: nesting is deeper than 32 levels");
    free(buf);
}

static void test_nul_bytes(void **state)
{
    (void)state;
    static const char raw[] = "log_level: info\nstate_dir: /x\0y\n";
    expect_errs_len(raw, sizeof raw - 1,
                    (const char *const[]){"2:14: YAML syntax error: control characters are not "
                                          "allowed (character 0x00)",
                                          NULL});
    EXPECT_ERRS("state_dir: \"/x\\0y\"\n", "1:12: a NUL character is not allowed in a value");
}

static void test_tags(void **state)
{
    (void)state;
    EXPECT_ERRS("log_level: !!python/object:os.system info\n"
                "state_dir: !!str /x\n"
                "http: !custom { timeout: 5s }\n" TENANTS JOB,
                "1:12: YAML tag \"tag:yaml.org,2002:python/object:os.system\" is not supported",
                "3:7: YAML tag \"!custom\" is not supported");
}

static void test_huge_scalar(void **state)
{
    (void)state;
    size_t n = 300000;
    char *buf = xmalloc(n + 256);
    /* a 300 kB value is echoed cut to 60 characters; a 100-character tenant name is refused */
    int o = sprintf(buf, "log_level: ");
    memset(buf + o, 'x', n);
    strcpy(buf + o + n,
           "\ntenants:\n  aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:\n"
           "    api: genesys\n"
           "    base_url: https://api.mypurecloud.com\n"
           "    client_id: c\n"
           "    client_secret_file: prod.secret\n"
           "jobs: []\n");
    EXPECT_ERRS(
        buf,
        "1:12: invalid log_level \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxx...\" (expected one of: error, warning, info, debug)",
        "3:3: invalid tenant name \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaa...\" (use up to 64 letters, digits, '.', '_' and '-')");
    free(buf);
}

static void test_too_large(void **state)
{
    (void)state;
    size_t n = 1024 * 1024 + 1;
    char *buf = xmalloc(n);
    memset(buf, '#', n);
    expect_errs_len(buf, n,
                    (const char *const[]){": cannot read: file is larger than 1024 KiB", NULL});
    free(buf);
}

static void test_all_errors_sorted(void **state)
{
    (void)state;
    /* errors found in different passes still come out in file order */
    EXPECT_ERRS(TENANTS "jobs:\n"
                        "  - name: a\n"
                        "    source: nobody\n"
                        "    target: dev\n"
                        "    interval: soon\n"
                        "http:\n"
                        "  timeout: never\n",
                "20:13: unknown tenant \"nobody\" (defined tenants: prod, dev, plant)",
                "22:15: invalid duration \"soon\" (use e.g. 500ms, 30s, 10m, 1h)",
                "24:12: invalid duration \"never\" (use e.g. 500ms, 30s, 10m, 1h)");
}

/* ---------------------------------------------------------------------------------------- */
/* files                                                                                    */

static void test_load_missing_file(void **state)
{
    (void)state;
    struct cfg_diags d = {0};
    struct cfg_config *cfg = NULL;
    char *p = xasprintf("%s/does-not-exist.yaml", tmpdir);
    assert_int_equal(cfg_load(p, &cfg, &d), -1);
    assert_null(cfg);
    assert_int_equal(d.nerrors, 1);
    char *want = xasprintf("%s: cannot read: No such file or directory", p);
    assert_string_equal(d.errors[0], want);
    free(want);
    cfg_diags_free(&d);
    assert_int_equal(cfg_load(tmpdir, &cfg, &d), -1);
    want = xasprintf("%s: cannot read: Is a directory", tmpdir);
    assert_string_equal(d.errors[0], want);
    free(want);
    cfg_diags_free(&d);
    free(p);
}

static void test_load_file_relative_secret(void **state)
{
    (void)state;
    /* the secret sits next to the config file, not in the working directory */
    char *sub = xasprintf("%s/etc", tmpdir);
    mkdir(sub, 0700);
    write_file(sub, "prod.secret", "etc-s3cret\n", 0600);
    write_file(sub, "rolesyncd.yaml",
               "tenants:\n"
               "  prod:\n"
               "    api: genesys\n"
               "    base_url: https://api.mypurecloud.com\n"
               "    client_id: prod-client\n"
               "    client_secret_file: prod.secret\n"
               "jobs: []\n",
               0644);
    char *p = xasprintf("%s/rolesyncd.yaml", sub);
    struct cfg_diags d = {0};
    struct cfg_config *cfg = NULL;
    assert_int_equal(cfg_load(p, &cfg, &d), 0);
    assert_string_equal(cfg->tenants[0].client_secret, "etc-s3cret");
    assert_string_equal(cfg->file, p);
    assert_int_equal(d.nwarnings, 1);
    assert_null(strstr(d.warnings[0], "s3cret"));
    cfg_free(cfg);
    cfg_diags_free(&d);
    free(p);
    free(sub);
}

static void test_example_config(void **state)
{
    (void)state;
    /* conf/rolesyncd.yaml must stay valid: copy it next to secret files and load it */
    if (access("/etc/ssl/certs/ca-certificates.crt", R_OK) != 0)
        skip(); /* the example's ca_file; tests/e2e/test_check.py covers this case */
    /* the source tree from this file's path: <root>/tests/unit/test_config.c */
    const char *me = __FILE__;
    size_t cut = strlen(me);
    for (int up = 0; up < 3 && cut > 0; up++)
        while (cut > 0 && me[--cut] != '/')
            ;
    char *src = xasprintf("%.*s%sconf/rolesyncd.yaml", (int)cut, me, cut ? "/" : "");
    FILE *f = fopen(src, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", src);
        fail();
    }
    char *buf = xmalloc(1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    buf[n] = '\0';
    write_file(tmpdir, "prod.secret", "prod-s3cret\n", 0600);
    write_file(tmpdir, "dev.secret", "dev-s3cret\n", 0600);
    write_file(tmpdir, "plant-a.secret", "plant-s3cret\n", 0600);
    /* the coordination block's TLS client files and etcd password (credentials folder) */
    write_file(tmpdir, "etcd-client.pem", "-----BEGIN CERTIFICATE-----\n", 0600);
    write_file(tmpdir, "etcd-client.key", "-----BEGIN PRIVATE KEY-----\n", 0600);
    write_file(tmpdir, "etcd.secret", "etcd-s3cret\n", 0600);
    setenv("PLANT_B_SECRET", "plant-b-s3cret", 1);
    struct cfg_diags d = {0};
    struct cfg_config *cfg = load_ok(buf, &d);
    assert_int_equal(d.nwarnings, 0);
    assert_true(cfg->ntenants >= 3);
    assert_true(cfg->njobs >= 2);
    assert_non_null(cfg_find_job(cfg, "prod-to-dev"));
    cfg_free(cfg);
    cfg_diags_free(&d);
    free(buf);
    free(src);
    unsetenv("PLANT_B_SECRET");
}

/* journal: { max_size, keep } (product.md 4c): sizes in bytes or KiB/MiB/GiB, 0 = never rotate,
 * else 64KiB..16GiB; keep 0..100; defaults 64MiB and 4. */
static void test_journal_block(void **state)
{
    (void)state;
    struct cfg_diags d = {0};
    struct cfg_config *cfg = load_ok(TENANTS JOB, &d);
    assert_int_equal(cfg->journal_max_size, 64ull << 20);
    assert_int_equal(cfg->journal_keep, 4);
    cfg_free(cfg);
    cfg_diags_free(&d);
    static const struct {
        const char *text;
        uint64_t bytes;
        unsigned keep;
    } ok[] = {{"journal: { max_size: 512KiB, keep: 0 }\n", 512ull << 10, 0},
              {"journal: { max_size: 1GiB, keep: 100 }\n", 1ull << 30, 100},
              {"journal: { max_size: 1048576 }\n", 1048576, 4},
              {"journal: { max_size: 0 }\n", 0, 4},
              {"journal: { max_size: 16GiB }\n", 16ull << 30, 4},
              {"journal: { max_size: 64KiB }\n", 64ull << 10, 4},
              {"journal: { keep: 7 }\n", 64ull << 20, 7},
              {"journal:\n", 64ull << 20, 4}};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(ok); i++) {
        char *y = xasprintf("%s" TENANTS JOB, ok[i].text);
        cfg = load_ok(y, &d);
        assert_int_equal(cfg->journal_max_size, ok[i].bytes);
        assert_int_equal(cfg->journal_keep, ok[i].keep);
        cfg_free(cfg);
        cfg_diags_free(&d);
        free(y);
    }
    EXPECT_ERRS("journal: { max_size: 64MB }\n" TENANTS JOB,
                "1:22: invalid size \"64MB\" for \"max_size\" (use bytes or e.g. 512KiB, 64MiB, "
                "1GiB)");
    EXPECT_ERRS("journal:\n  max_size: 1KiB\n" TENANTS JOB,
                "2:13: size \"1KiB\" for \"max_size\" is out of range (0 for never, or from "
                "64KiB to 16GiB)");
    EXPECT_ERRS("journal:\n  max_size: 17GiB\n" TENANTS JOB,
                "2:13: size \"17GiB\" for \"max_size\" is out of range (0 for never, or from "
                "64KiB to 16GiB)");
    EXPECT_ERRS("journal:\n  max_size: 099\n" TENANTS JOB,
                "2:13: invalid size \"099\" for \"max_size\" (use bytes or e.g. 512KiB, 64MiB, "
                "1GiB)");
    EXPECT_ERRS("journal:\n  max_size: 99999999999999999999999GiB\n" TENANTS JOB,
                "2:13: invalid size \"99999999999999999999999GiB\" for \"max_size\" (use bytes "
                "or e.g. 512KiB, 64MiB, 1GiB)");
    EXPECT_ERRS("journal:\n  max_size: -1\n" TENANTS JOB,
                "2:13: invalid size \"-1\" for \"max_size\" (use bytes or e.g. 512KiB, 64MiB, "
                "1GiB)");
    EXPECT_ERRS("journal:\n  max_size: [1]\n" TENANTS JOB,
                "2:13: \"max_size\" must be a size (e.g. 64MiB), not a list");
    EXPECT_ERRS("journal:\n  keep: 101\n" TENANTS JOB,
                "2:9: invalid value \"101\" for \"keep\" (expected a whole number from 0 to 100)");
    EXPECT_ERRS("journal:\n  kept: 1\n" TENANTS JOB,
                "2:3: unknown key \"kept\" in journal (expected one of: max_size, keep)");
    EXPECT_ERRS("journal: 64MiB\n" TENANTS JOB,
                "1:10: \"journal\" must be a mapping (max_size, keep), not a single value");

    uint64_t b;
    assert_int_equal(cfg_parse_size("0", &b), 0);
    assert_int_equal(b, 0);
    assert_int_equal(cfg_parse_size("18446744073709551615", &b), 0);
    assert_int_equal(b, UINT64_MAX);
    assert_int_equal(cfg_parse_size("18446744073709551616", &b), -1);
    assert_int_equal(cfg_parse_size("17179869183GiB", &b), 0);
    assert_int_equal(cfg_parse_size("17179869184GiB", &b), -1);
    assert_int_equal(cfg_parse_size("1 MiB", &b), -1);
    assert_int_equal(cfg_parse_size("MiB", &b), -1);
    assert_int_equal(cfg_parse_size("1mib", &b), -1);
    assert_int_equal(cfg_parse_size("", &b), -1);
    char buf[32];
    assert_string_equal(cfg_format_size(64ull << 20, buf, sizeof buf), "64MiB");
    assert_string_equal(cfg_format_size(1536, buf, sizeof buf), "1536");
    assert_string_equal(cfg_format_size(2048, buf, sizeof buf), "2KiB");
    assert_string_equal(cfg_format_size(0, buf, sizeof buf), "0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, setup),
        cmocka_unit_test_setup(test_divisions, setup),
        cmocka_unit_test_setup(test_full_job, setup),
        cmocka_unit_test_setup(test_state_dir_env, setup),
        cmocka_unit_test_setup(test_http_merge, setup),
        cmocka_unit_test_setup(test_token_url, setup),
        cmocka_unit_test_setup(test_parse_duration, setup),
        cmocka_unit_test_setup(test_parse_rate, setup),
        cmocka_unit_test_setup(test_format_duration, setup),
        cmocka_unit_test_setup(test_no_jobs_warns, setup),
        cmocka_unit_test_setup(test_unknown_key_job, setup),
        cmocka_unit_test_setup(test_unknown_keys_everywhere, setup),
        cmocka_unit_test_setup(test_inline_secret, setup),
        cmocka_unit_test_setup(test_wrong_types, setup),
        cmocka_unit_test_setup(test_top_level_types, setup),
        cmocka_unit_test_setup(test_root_not_mapping, setup),
        cmocka_unit_test_setup(test_empty_file, setup),
        cmocka_unit_test_setup(test_tenant_not_mapping, setup),
        cmocka_unit_test_setup(test_bad_durations, setup),
        cmocka_unit_test_setup(test_interval_minimum, setup),
        cmocka_unit_test_setup(test_bad_rates_and_ints, setup),
        cmocka_unit_test_setup(test_page_size_limits, setup),
        cmocka_unit_test_setup(test_diagnostics_stay_one_line, setup),
        cmocka_unit_test_setup(test_ca_file_checked, setup),
        cmocka_unit_test_setup(test_delay_order, setup),
        cmocka_unit_test_setup(test_enums, setup),
        cmocka_unit_test_setup(test_match_by_mismatch, setup),
        cmocka_unit_test_setup(test_unknown_tenant, setup),
        cmocka_unit_test_setup(test_same_tenant, setup),
        cmocka_unit_test_setup(test_definitions_across_apis, setup),
        cmocka_unit_test_setup(test_duplicate_job_name, setup),
        cmocka_unit_test_setup(test_missing_job_keys, setup),
        cmocka_unit_test_setup(test_rename, setup),
        cmocka_unit_test_setup(test_tenant_missing_keys, setup),
        cmocka_unit_test_setup(test_tenant_id_rules, setup),
        cmocka_unit_test_setup(test_urls, setup),
        cmocka_unit_test_setup(test_secret_missing_file, setup),
        cmocka_unit_test_setup(test_secret_env_problems, setup),
        cmocka_unit_test_setup(test_secret_values_stripped, setup),
        cmocka_unit_test_setup(test_secret_group_readable_warns, setup),
        cmocka_unit_test_setup(test_secret_empty_credentials_directory, setup),
        cmocka_unit_test_setup(test_secret_credentials_directory_resolution, setup),
        cmocka_unit_test_setup(test_secret_file_contents, setup),
        cmocka_unit_test_setup(test_syntax_error, setup),
        cmocka_unit_test_setup(test_aliases_refused, setup),
        cmocka_unit_test_setup(test_duplicate_keys, setup),
        cmocka_unit_test_setup(test_multiple_documents, setup),
        cmocka_unit_test_setup(test_deep_nesting, setup),
        cmocka_unit_test_setup(test_nul_bytes, setup),
        cmocka_unit_test_setup(test_tags, setup),
        cmocka_unit_test_setup(test_huge_scalar, setup),
        cmocka_unit_test_setup(test_too_large, setup),
        cmocka_unit_test_setup(test_all_errors_sorted, setup),
        cmocka_unit_test_setup(test_load_missing_file, setup),
        cmocka_unit_test_setup(test_load_file_relative_secret, setup),
        cmocka_unit_test_setup(test_example_config, setup),
        cmocka_unit_test_setup(test_journal_block, setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
