/* test_provider_fetch.c — the two-step read (provider.h prov_fetch_opts.roles_read) of
 * provider.c against a real tenantsim (ROLESYNC_SIM), with the loop run one turn at a time.
 *
 * What it proves: a read whose role listing is whole (roles_read ran, the caller holds the
 * prov_fetch_grants call) and whose users page then fails ends exactly once, with the error,
 * even when the caller calls prov_fetch_grants after the read has failed and fetch_finish has
 * queued the read's end on the thread pool, but before that end's after-callback (the fetch
 * callback) has come. provider.h allows that call (after roles_read, before the callback); it
 * used to queue finish_work a second time (uv_queue_work on a queued req), which corrupted
 * libuv's work queue and crashed the daemon in a pool thread (SIGSEGV, pc=0). The second case
 * shows the ordinary two-step read still completes when prov_fetch_grants comes from the loop.
 *
 * How the window is hit every time:
 *   - max_connections 1: the engine starts a tenant's requests one at a time in FIFO order, and
 *     genesys_fetch submits roles, divisions, users, inactive users, deleted users in that order,
 *     so the one-page role listing is whole before the users request is even sent.
 *   - the racing call is made from a uv_prepare handle, not between two uv_run(UV_RUN_ONCE)
 *     calls. The read's end is queued from a page's reply (a timer callback) or from a page's
 *     after-work callback (the poll phase), and a work's after-callback only runs in a poll
 *     phase, after the one that queued it; the prepare phase comes before every poll phase, so
 *     the prepare callback always sees the read ended but not called back. Between two uv_run
 *     calls it may not: with libuv 1.44 a work queued from a timer at the start of
 *     uv_run(UV_RUN_ONCE) has its after-callback in the same call's poll phase.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* The helpers are written for test_http.c, which uses all of them; this file uses a few. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "http_test_sim.h"
#pragma GCC diagnostic pop

#include "providers/internal.h"
#include "rolesync/http.h"
#include "rolesync/log.h"
#include "rolesync/model.h"
#include "rolesync/provider.h"
#include "rolesync/util.h"

#define USERS "/api/v2/users"
#define LIMIT_MS 10000 /* a read against a local sim takes milliseconds */

/* ---- fixture ----------------------------------------------------------------------------- */

/* One simulator for the group (reads change nothing in its state; each test sets its own
 * faults): a tenant of a few users in a few divisions, whose role listing is one page. */
struct simenv {
    struct sim sim;
    char dir[PATH_MAX];
    size_t roles, users; /* in its state: what a whole read finds */
};
static struct simenv g_sim;

struct fx {
    uv_loop_t loop;
    uv_timer_t guard; /* wakes uv_run so deadlines are checked even when nothing else happens */
    struct http_engine *e;
    char name[32];
    char base[96];
    struct cfg_tenant cfg;
    struct prov_tenant pt;
    uv_prepare_t watch; /* the racing call (see the file header); started by the test */
    void (*on_watch)(struct fx *f);
    void *watch_arg;
};

static void on_guard(uv_timer_t *h)
{
    (void)h;
}

static void on_prepare(uv_prepare_t *h)
{
    struct fx *f = UTIL_CONTAINER_OF(h, struct fx, watch);
    f->on_watch(f);
}

/* One loop turn; fails after the deadline. */
static void fx_step(struct fx *f, uint64_t deadline)
{
    if (util_mono_ms() > deadline)
        fail_msg("the read did not end in time");
    uv_run(&f->loop, UV_RUN_ONCE);
}

/* Count the roles and users of the simulator's state, which a whole read must find. */
static void sim_count_state(struct simenv *g)
{
    char *body = NULL;
    struct json_object *st, *v;
    assert_int_equal(sim_ctl(&g->sim, "GET", "/_sim/state", NULL, &body), 200);
    st = json_tokener_parse(body);
    free(body);
    assert_non_null(st);
    assert_true(json_object_object_get_ex(st, "roles", &v));
    g->roles = json_object_array_length(v);
    assert_true(json_object_object_get_ex(st, "users", &v));
    g->users = json_object_array_length(v);
    json_object_put(st);
    assert_true(g->roles > 0 && g->users > 0);
}

static int sim_setup(void **state)
{
    char cmd[2 * PATH_MAX + 128], path[PATH_MAX + 16];
    const char *bin = getenv("ROLESYNC_SIM");
    (void)state;

    assert_non_null(bin);
    snprintf(g_sim.dir, sizeof(g_sim.dir), "/tmp/rolesync-fetch-XXXXXX");
    assert_non_null(mkdtemp(g_sim.dir));
    snprintf(path, sizeof(path), "%s/state.json", g_sim.dir);
    snprintf(cmd, sizeof(cmd), "'%s' gen --api genesys --users 12 --roles 3 --seed 7 > '%s'", bin,
             path);
    assert_int_equal(system(cmd), 0);
    const char *extra[] = {"--state", path, NULL};
    assert_int_equal(sim_start(&g_sim.sim, "genesys", extra, g_sim.dir), 0);
    sim_count_state(&g_sim);
    return 0;
}

static int sim_teardown(void **state)
{
    (void)state;
    sim_stop(&g_sim.sim);
    rm_rf(g_sim.dir);
    return 0;
}

static void fx_init(struct fx *f)
{
    char err[256], token_url[160];

    memset(f, 0, sizeof(*f));
    long st = sim_ctl(&g_sim.sim, "DELETE", "/_sim/faults", NULL, NULL); /* the last test's */
    assert_true(st >= 200 && st < 300);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->guard);
    uv_timer_start(&f->guard, on_guard, 20, 20);
    uv_prepare_init(&f->loop, &f->watch);
    f->e = http_engine_new(&f->loop, NULL, err, sizeof(err));
    assert_non_null(f->e);

    snprintf(f->name, sizeof(f->name), "test-genesys");
    snprintf(f->base, sizeof(f->base), "%s", g_sim.sim.base);
    f->cfg.name = f->name;
    f->cfg.api = CFG_API_GENESYS;
    f->cfg.base_url = f->base;
    f->cfg.page_size_roles = 100; /* above the state's roles: the role listing is one page */
    f->cfg.page_size_users = 100;
    f->cfg.http.timeout_ms = 5000;
    f->cfg.http.connect_timeout_ms = 2000;
    f->cfg.http.max_connections = 1; /* requests in submission order (see the file header) */
    f->cfg.http.retry_max_attempts = 1;
    f->cfg.http.retry_initial_delay_ms = 50;
    f->cfg.http.retry_max_delay_ms = 200;
    assert_true(g_sim.roles < f->cfg.page_size_roles);

    snprintf(token_url, sizeof(token_url), "%s/oauth/token", g_sim.sim.base);
    struct http_tenant_opts o = {
        .name = f->name,
        .auth = prov_genesys.auth,
        .base_url = f->base,
        .token_url = token_url,
        .client_id = SIM_CLIENT_ID,
        .client_secret = SIM_CLIENT_SECRET,
        .correlation_header = prov_genesys.correlation_header,
        .http = &f->cfg.http,
        .error_message = prov_genesys.error_message,
        .rate_window = prov_genesys.rate_window,
    };
    f->pt.cfg = &f->cfg;
    f->pt.loop = &f->loop;
    f->pt.http = http_tenant_new(f->e, &o, err, sizeof(err));
    assert_non_null(f->pt.http);
}

/* Close the engine; every handle and request (the thread pool's included: a finish_work queued
 * twice would keep the loop alive) must end, and the loop must close cleanly. */
static void fx_close(struct fx *f)
{
    http_engine_close(f->e);
    f->e = NULL;
    uv_close((uv_handle_t *)&f->guard, NULL);
    uv_close((uv_handle_t *)&f->watch, NULL);
    uint64_t end = util_mono_ms() + 5000;
    while (uv_loop_alive(&f->loop) && util_mono_ms() < end) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        sim_msleep(1);
    }
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

/* ---- one read ---------------------------------------------------------------------------- */

struct read {
    struct prov_fetch *f; /* from roles_read; valid until the callback */
    int nroles_read;
    int ncb;           /* fetch callbacks: must end at exactly 1 */
    bool in_grants;    /* inside the test's prov_fetch_grants call */
    bool cb_in_grants; /* a callback came from inside it (provider.h: never) */
    struct mdl_snapshot *snap;
    char *message, *method, *path;
    long status;
};

static void on_roles_read(struct prov_fetch *f, struct mdl_snapshot *roles, void *arg)
{
    struct read *rd = arg;
    (void)roles;
    /* The caller's part: keep the read and say whose grants to read later, from the loop, as
     * sync.c does while the other side's roles are not in yet. */
    rd->f = f;
    rd->nroles_read++;
}

static void on_fetched(struct mdl_snapshot *snap, const struct prov_read_error *err, void *arg)
{
    struct read *rd = arg;
    rd->ncb++;
    if (rd->in_grants)
        rd->cb_in_grants = true;
    if (rd->ncb > 1) { /* the snapshot / error of a second callback: keep the first */
        mdl_snapshot_free(snap);
        return;
    }
    rd->snap = snap;
    if (err) {
        rd->message = xstrdup(err->message ? err->message : "");
        rd->method = err->method ? xstrdup(err->method) : NULL;
        rd->path = err->path ? xstrdup(err->path) : NULL;
        rd->status = err->status;
    }
}

static void read_free(struct read *rd)
{
    mdl_snapshot_free(rd->snap);
    free(rd->message);
    free(rd->method);
    free(rd->path);
    memset(rd, 0, sizeof(*rd));
}

/* The test's prov_fetch_grants, as a caller on the loop makes it. */
static void read_grants(struct read *rd, struct prov_fetch *f)
{
    rd->in_grants = true;
    prov_fetch_grants(f, NULL);
    rd->in_grants = false;
}

/* ---- tests ------------------------------------------------------------------------------- */

/* The regression's race, checked before every poll phase. Expressed without provider.c's
 * `finishing`, so it reads the same on the code before the fix: the read has failed and no page
 * is in flight, so fetch_finish has queued finish_work, and the callback has not come. */
struct race {
    struct prov_fetch *f; /* valid while rd->ncb == 0 */
    struct read *rd;
    bool raced;
    int roles_read_before; /* roles_read calls when the read had failed */
};

static void race_watch(struct fx *fx)
{
    struct race *r = fx->watch_arg;
    if (r->raced || r->rd->ncb > 0 || !r->f->failed || r->f->pending > 0)
        return;
    r->raced = true;
    r->roles_read_before = r->rd->nroles_read;
    read_grants(r->rd, r->f); /* the racing call */
}

/* The users page fails after roles_read, the last page in flight ends the read (fetch_finish
 * queues finish_work), and prov_fetch_grants comes before the fetch callback. */
static void test_failed_read_then_grants(void **state)
{
    (void)state;
    struct fx fx;
    struct read rd = {0};

    fx_init(&fx);
    /* a 200 whose body is no JSON: the engine delivers it, the users page does not parse (on
     * the thread pool, as in the daemon). The sim matches the path without its query;
     * /api/v2/users/query (the cursor listings) is another path. */
    sim_faults(&g_sim.sim, "[{\"method\":\"GET\",\"path\":\"" USERS "\",\"times\":1,"
                           "\"action\":\"garbage\"}]");

    struct prov_fetch_opts o = {.roles_read = on_roles_read, .roles_read_arg = &rd};
    struct prov_fetch *f = prov_genesys.fetch(&fx.pt, &o, on_fetched, &rd);
    assert_non_null(f);
    assert_int_equal(rd.ncb, 0);
    struct race r = {.f = f, .rd = &rd};
    fx.on_watch = race_watch;
    fx.watch_arg = &r;
    uv_prepare_start(&fx.watch, on_prepare);

    uint64_t deadline = util_mono_ms() + LIMIT_MS;
    while (rd.ncb == 0)
        fx_step(&fx, deadline);
    assert_true(r.raced);
    /* the order the race needs: the role listing was whole before the users page failed
     * (roles_read is never called once the read has failed), and the caller held its call */
    assert_int_equal(r.roles_read_before, 1);
    assert_int_equal(rd.nroles_read, 1);
    assert_ptr_equal(rd.f, f);
    assert_false(rd.cb_in_grants);

    /* Whatever is left (a second finish_work, had one been queued) comes in while the engine
     * closes; then the read must still have ended once. */
    fx_close(&fx);
    assert_int_equal(rd.ncb, 1);
    assert_null(rd.snap);
    assert_non_null(rd.message);
    assert_non_null(strstr(rd.message, "GET " USERS "?"));
    assert_non_null(rd.method);
    assert_string_equal(rd.method, "GET");
    assert_non_null(rd.path);
    assert_true(strncmp(rd.path, USERS "?", strlen(USERS "?")) == 0);
    assert_int_equal(rd.status, 200);
    read_free(&rd);
}

/* The ordinary two-step read: once every listing is in, the read waits for prov_fetch_grants;
 * called from the loop, it ends the read with a snapshot through the loop (never from inside
 * the call), with no role's grants read (mask NULL). */
static void test_two_step_read(void **state)
{
    (void)state;
    struct fx fx;
    struct read rd = {0};
    bool asked = false;

    fx_init(&fx);
    struct prov_fetch_opts o = {.roles_read = on_roles_read, .roles_read_arg = &rd};
    assert_non_null(prov_genesys.fetch(&fx.pt, &o, on_fetched, &rd));

    uint64_t deadline = util_mono_ms() + LIMIT_MS;
    while (rd.ncb == 0) {
        fx_step(&fx, deadline);
        if (rd.ncb > 0)
            break;
        /* every listing read, the read held by grants_wait alone: prov_fetch_grants ends it */
        if (rd.f && !asked && rd.f->pending == 0) {
            asked = true;
            read_grants(&rd, rd.f);
            assert_int_equal(rd.ncb, 0); /* the end comes from the loop */
        }
    }
    assert_true(asked);
    assert_int_equal(rd.ncb, 1);
    assert_int_equal(rd.nroles_read, 1);
    assert_false(rd.cb_in_grants);
    assert_null(rd.message);
    assert_non_null(rd.snap);
    assert_int_equal(rd.snap->nroles, g_sim.roles);
    assert_int_equal(rd.snap->nusers, g_sim.users);
    for (size_t i = 0; i < rd.snap->nroles; i++)
        assert_true(rd.snap->roles[i].grants_unread);

    fx_close(&fx);
    assert_int_equal(rd.ncb, 1);
    read_free(&rd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failed_read_then_grants),
        cmocka_unit_test(test_two_step_read),
    };
    int rc;

    signal(SIGPIPE, SIG_IGN);
    log_set_level(LOG_LVL_ERROR); /* the failing page is logged as expected noise */
    rc = cmocka_run_group_tests_name("provider_fetch", tests, sim_setup, sim_teardown);
    return rc;
}
