/* test_http.c — the HTTP engine against real tenantsim processes (ROLESYNC_SIM), plus its pure
 * helpers (JSON guard, error texts, OAuth pieces).
 *
 * Each sim test starts its own tenantsim, runs a loop with one engine and one tenant, and ends
 * by closing the engine and asserting that every handle closed and uv_loop_close() succeeds.
 * Timing assertions are lower bounds caused by the engine's own waits (Retry-After, rate
 * limits), never upper bounds on speed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "http_test_sim.h"

#include "rolesync/auth.h"
#include "rolesync/http.h"
#include "rolesync/log.h"
#include "rolesync/provider.h"
#include "rolesync/util.h"

#define ROLES "/api/v2/authorization/roles"

/* ---- fixture ----------------------------------------------------------------------------- */

struct call {
    int ncb; /* callbacks received: must end at exactly 1 */
    enum http_outcome outcome;
    long status;
    unsigned attempts;
    char *body;
    size_t len;
    char *error;
    char *corr;
    char *hdr_corr; /* via http_result_header */
    uint64_t t_done;
    struct fx *fx;
    bool chain; /* token-expiry test: submit the next request from the callback */
};

struct fx {
    uv_loop_t loop;
    struct http_engine *e;
    struct http_tenant *t;
    struct sim sim;
    struct cfg_http http;
    char dir[PATH_MAX];
    bool sim_up;
    int in_cb; /* set while inside http_request(), to catch re-entrant callbacks */
    int reentrant;
};

static void on_done(const struct http_result *r, void *arg)
{
    struct call *c = arg;
    c->ncb++;
    if (c->fx && c->fx->in_cb)
        c->fx->reentrant++;
    c->outcome = r->outcome;
    c->status = r->status;
    c->attempts = r->attempts;
    free(c->body);
    c->body = xstrndup(r->body, r->body_len);
    c->len = r->body_len;
    free(c->error);
    c->error = r->error ? xstrdup(r->error) : NULL;
    free(c->corr);
    c->corr = xstrdup(r->correlation_id);
    free(c->hdr_corr);
    const char *h = http_result_header(r, "inin-correlation-id");
    c->hdr_corr = h ? xstrdup(h) : NULL;
    c->t_done = util_mono_ms();
}

static void call_free(struct call *c)
{
    free(c->body);
    free(c->error);
    free(c->corr);
    free(c->hdr_corr);
    memset(c, 0, sizeof(*c));
}

static struct http_request *submit(struct fx *f, struct call *c, const char *method,
                                   const char *path, const char *body)
{
    c->fx = f;
    f->in_cb = 1;
    struct http_request *r = http_request(f->t, method, path, body, on_done, c);
    f->in_cb = 0;
    assert_int_equal(c->ncb, 0); /* never called back from inside http_request */
    return r;
}

static void default_http(struct cfg_http *h)
{
    memset(h, 0, sizeof(*h));
    h->timeout_ms = 5000;
    h->connect_timeout_ms = 2000;
    h->max_connections = 4;
    h->rate_per_sec = 0;
    h->ca_file = NULL;
    h->retry_max_attempts = 4;
    h->retry_initial_delay_ms = 50;
    h->retry_max_delay_ms = 200;
}

static void fx_init(struct fx *f)
{
    char err[256];
    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/rolesync-http-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->e = http_engine_new(&f->loop, NULL, err, sizeof(err));
    assert_non_null(f->e);
    default_http(&f->http);
}

static void fx_sim(struct fx *f, const char *api, const char *const *extra)
{
    assert_int_equal(sim_start(&f->sim, api, extra, f->dir), 0);
    f->sim_up = true;
}

/* Make the tenant for the running sim. `secret` NULL = the right one. */
static void fx_tenant(struct fx *f, enum http_auth auth, const char *secret, size_t max_body)
{
    char err[256], token_url[160];
    bool identity = auth == HTTP_AUTH_POST_FORM;
    snprintf(token_url, sizeof(token_url), "%s%s", f->sim.base,
             identity ? "/identity/connect/token" : "/oauth/token");
    struct http_tenant_opts o = {
        .name = identity ? "test-identity" : "test-genesys",
        .auth = auth,
        .base_url = f->sim.base,
        .token_url = token_url,
        .client_id = SIM_CLIENT_ID,
        .client_secret = secret ? secret : SIM_CLIENT_SECRET,
        .correlation_header = identity ? "Operation-Id" : "ININ-Correlation-Id",
        .http = &f->http,
        .max_response_bytes = max_body,
        /* the platform's hooks, as tenants.c wires them */
        .error_message = (identity ? &prov_identity : &prov_genesys)->error_message,
        .rate_window = (identity ? &prov_identity : &prov_genesys)->rate_window,
    };
    f->t = http_tenant_new(f->e, &o, err, sizeof(err));
    assert_non_null(f->t);
}

static void on_guard(uv_timer_t *h)
{
    (void)h; /* only wakes uv_run so the deadline is checked */
}

/* Run the loop until every call has its callback (or fail after `limit_ms`). */
static void run_until(struct fx *f, struct call *calls, size_t n, uint64_t limit_ms)
{
    uv_timer_t guard;
    uint64_t end = util_mono_ms() + limit_ms;

    uv_timer_init(&f->loop, &guard);
    uv_timer_start(&guard, on_guard, 50, 50);
    for (;;) {
        size_t done = 0;
        for (size_t i = 0; i < n; i++)
            done += calls[i].ncb > 0;
        if (done == n)
            break;
        if (util_mono_ms() > end) {
            fprintf(stderr, "run_until: %zu of %zu calls done after %llu ms\n", done, n,
                    (unsigned long long)limit_ms);
            fail();
        }
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* Run the loop for `ms` regardless. */
static void run_for(struct fx *f, uint64_t ms)
{
    uv_timer_t guard;
    uint64_t end = util_mono_ms() + ms;
    uv_timer_init(&f->loop, &guard);
    uv_timer_start(&guard, on_guard, 10, 10);
    while (util_mono_ms() < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void walk_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    fprintf(stderr, "  handle still open: type=%s active=%d\n", uv_handle_type_name(h->type),
            uv_is_active(h));
}

/* Close the engine; every handle must close and the loop must close cleanly. */
static void fx_close(struct fx *f)
{
    if (f->e) {
        http_engine_close(f->e);
        f->e = NULL;
        f->t = NULL;
    }
    uint64_t end = util_mono_ms() + 5000;
    while (uv_loop_alive(&f->loop) && util_mono_ms() < end) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        sim_msleep(1);
    }
    if (uv_loop_alive(&f->loop))
        uv_walk(&f->loop, walk_cb, NULL);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    if (f->sim_up)
        sim_stop(&f->sim);
    rm_rf(f->dir);
}

/* ---- pure helpers ------------------------------------------------------------------------ */

static void nest(char *buf, int depth)
{
    int k = 0;
    for (int i = 0; i < depth; i++)
        buf[k++] = '[';
    for (int i = 0; i < depth; i++)
        buf[k++] = ']';
    buf[k] = '\0';
}

static void test_parse_json(void **state)
{
    (void)state;
    char err[128], buf[300];
    struct json_object *o;

    o = http_parse_json("{\"a\":[1,2,{\"b\":null}]}", 22, err, sizeof(err));
    assert_non_null(o);
    json_object_put(o);
    o = http_parse_json(" 42 ", 4, err, sizeof(err));
    assert_non_null(o);
    json_object_put(o);
    o = http_parse_json("42", 2, err, sizeof(err)); /* bare number at the very end */
    assert_non_null(o);
    assert_int_equal(json_object_get_int(o), 42);
    json_object_put(o);

    assert_null(http_parse_json("", 0, err, sizeof(err)));
    assert_null(http_parse_json("<html>oops</html>", 17, err, sizeof(err)));
    assert_null(http_parse_json("{\"a\":1} x", 9, err, sizeof(err))); /* trailing data */
    assert_null(http_parse_json("{} {}", 5, err, sizeof(err)));
    assert_null(http_parse_json("{\"a\":", 5, err, sizeof(err)));
    assert_null(http_parse_json("{\"a\":1}\0{}", 10, err, sizeof(err)));
    assert_null(http_parse_json("{'a':1}", 7, err, sizeof(err))); /* strict */
    assert_null(http_parse_json("[1,2,]", 6, err, sizeof(err)));  /* strict */
    static const char *not_json[] = {"[NaN]", "[Infinity]", "[-Infinity]", "[\"a\tb\"]", "[/*c*/1]",
                                     "{a:1}", "[01]",       "[truth]",     "[nul]",      "\"x"};
    for (size_t k = 0; k < sizeof(not_json) / sizeof(not_json[0]); k++)
        assert_null(http_parse_json(not_json[k], strlen(not_json[k]), err, sizeof(err)));
    static const char *json[] = {"[true,false,null]", "[\"it's\"]",          "[\"a\\\"b\"]",
                                 "[-1.5e+3,0,2E-2]",  "{\"k\":\"\\u00e9\"}", "\"\""};
    for (size_t k = 0; k < sizeof(json) / sizeof(json[0]); k++) {
        o = http_parse_json(json[k], strlen(json[k]), err, sizeof(err));
        assert_non_null(o);
        json_object_put(o);
    }

    nest(buf, HTTP_JSON_MAX_DEPTH);
    o = http_parse_json(buf, strlen(buf), err, sizeof(err));
    assert_non_null(o);
    json_object_put(o);
    nest(buf, HTTP_JSON_MAX_DEPTH + 1);
    assert_null(http_parse_json(buf, strlen(buf), err, sizeof(err)));
    nest(buf, 140);
    assert_null(http_parse_json(buf, strlen(buf), err, sizeof(err)));
}

/* The generic reading (a platform's own error shape is its provider's hook, tested there). */
static void test_error_message(void **state)
{
    (void)state;
    char buf[128];
    const char *g = "{\"message\":\"Rate limit exceeded\",\"code\":\"too.many.requests\","
                    "\"status\":429}";
    /* not a shape every platform shares: the start of the text */
    assert_string_equal(http_error_message(g, strlen(g), buf, sizeof(buf)), g);
    const char *a = "{\"error\":\"invalid_client\",\"error_description\":\"bad secret\"}";
    assert_string_equal(http_error_message(a, strlen(a), buf, sizeof(buf)),
                        "invalid_client: bad secret");
    const char *t = "Service\nUnavailable";
    assert_string_equal(http_error_message(t, strlen(t), buf, sizeof(buf)), "Service Unavailable");
    assert_string_equal(http_error_message("\x01\x02\x03", 3, buf, sizeof(buf)), "");
    assert_string_equal(http_error_message(NULL, 0, buf, sizeof(buf)), "");
    char small[8];
    http_error_message(g, strlen(g), small, sizeof(small));
    assert_int_equal(strlen(small), 7);
}

static void test_auth_helpers(void **state)
{
    (void)state;
    static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    char b[32];
    for (size_t k = 0; k < 7; k++) {
        auth_base64((const unsigned char *)in[k], strlen(in[k]), b);
        assert_string_equal(b, out[k]);
    }

    struct auth_request r;
    assert_int_equal(auth_build_request(HTTP_AUTH_BASIC_FORM, "id", "pw", &r), 0);
    assert_string_equal(r.authorization, "Authorization: Basic aWQ6cHc=");
    assert_string_equal(r.body, "grant_type=client_credentials");
    auth_request_clear(&r);
    assert_null(r.body);

    assert_int_equal(auth_build_request(HTTP_AUTH_POST_FORM, "a b", "p&w=", &r), 0);
    assert_null(r.authorization);
    assert_string_equal(r.body,
                        "grant_type=client_credentials&client_id=a%20b&client_secret=p%26w%3D");
    auth_request_clear(&r);
    assert_int_equal(auth_build_request(HTTP_AUTH_NONE, "a", "b", &r), -1);

    struct auth_token tok;
    char err[128];
    const char *ok =
        "{\"access_token\":\"abc.def\",\"token_type\":\"bearer\",\"expires_in\":86399}";
    assert_int_equal(auth_parse_token(ok, strlen(ok), &tok, err, sizeof(err)), 0);
    assert_string_equal(tok.access_token, "abc.def");
    assert_true(tok.lifetime_ms == 86399000ull);
    auth_token_clear(&tok);
    const char *ok2 = "{\"access_token\":\"x\",\"expires_in\":3600}"; /* no token_type */
    assert_int_equal(auth_parse_token(ok2, strlen(ok2), &tok, err, sizeof(err)), 0);
    auth_token_clear(&tok);
    static const char *bad[] = {
        "{\"token_type\":\"bearer\",\"expires_in\":3600}",
        "{\"access_token\":\"\",\"expires_in\":3600}",
        "{\"access_token\":\"a b\",\"expires_in\":3600}",
        "{\"access_token\":\"a\\r\\nX-Evil: 1\",\"expires_in\":3600}",
        "{\"access_token\":\"abc\"}",
        "{\"access_token\":\"abc\",\"expires_in\":0}",
        "{\"access_token\":\"abc\",\"expires_in\":\"3600\"}",
        "{\"access_token\":\"abc\",\"expires_in\":60,\"token_type\":\"mac\"}",
        "[1]",
        "not json",
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        assert_int_equal(auth_parse_token(bad[k], strlen(bad[k]), &tok, err, sizeof(err)), -1);
        assert_null(tok.access_token);
        assert_null(strstr(err, "abc")); /* the reason never quotes the token */
    }

    assert_true(auth_renew_margin_ms(86400000) == 300000); /* 24 h: 5 min */
    assert_true(auth_renew_margin_ms(3600000) == 300000);  /* 1 h: 5 min (10 % = 6 min) */
    assert_true(auth_renew_margin_ms(1000000) == 100000);  /* 10 % */
    assert_true(auth_renew_margin_ms(2000) == 200);
}

/* ---- engine without a server ------------------------------------------------------------- */

static void test_invalid_and_unreachable(void **state)
{
    (void)state;
    struct fx f;
    char err[256];
    fx_init(&f);

    /* option checks */
    struct http_tenant_opts bad = {
        .name = "x", .auth = HTTP_AUTH_BASIC_FORM, .base_url = "ftp://h", .http = &f.http};
    assert_null(http_tenant_new(f.e, &bad, err, sizeof(err)));
    bad.base_url = "http://127.0.0.1:1";
    assert_null(http_tenant_new(f.e, &bad, err, sizeof(err))); /* no token_url/credentials */

    /* a port nothing listens on: connection refused, retried, then a transport error */
    f.http.retry_max_attempts = 3;
    f.http.retry_initial_delay_ms = 10;
    f.http.retry_max_delay_ms = 20;
    struct http_tenant_opts o = {.name = "nowhere",
                                 .auth = HTTP_AUTH_NONE,
                                 .base_url = "http://127.0.0.1:1/",
                                 .http = &f.http};
    f.t = http_tenant_new(f.e, &o, err, sizeof(err));
    assert_non_null(f.t);

    struct call c[4] = {0};
    submit(&f, &c[0], "GET", "/x", NULL);
    submit(&f, &c[1], "BREW", "/x", NULL);
    submit(&f, &c[2], "GET", "https://evil.example.com/steal", NULL);
    submit(&f, &c[3], "GET", "/a b", NULL);
    run_until(&f, c, 4, 10000);

    assert_int_equal(c[0].outcome, HTTP_ERR_TRANSPORT);
    assert_int_equal(c[0].status, 0);
    assert_int_equal(c[0].attempts, 3);
    assert_non_null(c[0].error);
    assert_non_null(strstr(c[0].error, "connect"));
    for (int i = 1; i < 4; i++) {
        assert_int_equal(c[i].outcome, HTTP_ERR_INVALID);
        assert_int_equal(c[i].attempts, 0);
    }
    const struct http_counters *k = http_tenant_counters(f.t);
    assert_true(k->requests == 3);
    assert_true(k->retries == 2);
    assert_true(k->by_status[0] == 3);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(c[i].ncb, 1);
        call_free(&c[i]);
    }
    assert_int_equal(f.reentrant, 0);
    fx_close(&f);
}

/* ---- against tenantsim -------------------------------------------------------------------- */

static void test_get_and_single_flight_token(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_sim(&f, "genesys", NULL);
    fx_tenant(&f, HTTP_AUTH_BASIC_FORM, NULL, 0);

    enum { N = 20 };
    struct call c[N] = {0};
    for (int i = 0; i < N; i++)
        submit(&f, &c[i], "GET", ROLES "?pageSize=25&pageNumber=1", NULL);
    run_until(&f, c, N, 20000);

    for (int i = 0; i < N; i++) {
        assert_int_equal(c[i].ncb, 1);
        assert_int_equal(c[i].outcome, HTTP_OK);
        assert_int_equal(c[i].status, 200);
        assert_int_equal(c[i].attempts, 1);
        assert_null(c[i].error);
        assert_true(c[i].corr[0] != '\0');
        assert_non_null(c[i].hdr_corr);
        assert_string_equal(c[i].corr, c[i].hdr_corr);
        char err[128];
        struct json_object *o = http_parse_json(c[i].body, c[i].len, err, sizeof(err));
        assert_non_null(o);
        struct json_object *ent;
        assert_true(json_object_object_get_ex(o, "entities", &ent));
        json_object_put(o);
    }
    const struct http_counters *k = http_tenant_counters(f.t);
    assert_true(k->token_requests == 1); /* 20 waiters, one token request */
    assert_true(k->requests == N);
    assert_true(k->retries == 0);
    assert_true(k->by_status[200] == N);

    struct json_object *st = sim_stats(&f.sim);
    assert_non_null(st);
    assert_int_equal(sim_stat(st, "by_route", "POST /oauth/token"), 1);
    assert_int_equal(sim_stat(st, "by_route", "GET " ROLES), N);
    assert_true(sim_stat(st, NULL, "max_in_flight") <= 4);
    json_object_put(st);

    for (int i = 0; i < N; i++)
        call_free(&c[i]);
    fx_close(&f);
}

/* http_gate: asked before every attempt (a retry too), its header line sent, a "no" fails the
 * request unsent with its reason; a header with a line break in it is never sent. */
struct gate_fx {
    int calls, allow; /* calls answered yes while calls <= allow */
    const char *header;
};

static bool test_gate_check(void *arg, char *header, size_t hn, char *why, size_t wn)
{
    struct gate_fx *g = arg;
    if (++g->calls > g->allow) {
        snprintf(why, wn, "not sent: the lease is gone");
        return false;
    }
    snprintf(header, hn, "%s", g->header);
    return true;
}

static char *slurp_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return xstrdup("");
    char *buf = xcalloc(1, 65536);
    size_t n = fread(buf, 1, 65535, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* One gated call, run to its end. */
static void gated_call(struct fx *f, struct call *c, const char *method, const char *path,
                       const char *body, const struct http_gate *gate)
{
    memset(c, 0, sizeof *c);
    c->fx = f;
    http_request_gated(f->t, method, path, body, 0, gate, on_done, c);
    run_until(f, c, 1, 20000);
}

static void test_gate(void **state)
{
    (void)state;
    struct fx f;
    char log[PATH_MAX + 32];
    fx_init(&f);
    snprintf(log, sizeof log, "%s/requests.jsonl", f.dir);
    const char *extra[] = {"--request-log", log, NULL};
    fx_sim(&f, "genesys", extra);
    fx_tenant(&f, HTTP_AUTH_BASIC_FORM, NULL, 0);
    sim_faults(&f.sim, "[{\"method\":\"GET\",\"path\":\"" ROLES "\",\"times\":1,"
                       "\"action\":\"status\",\"status\":503}]");

    struct gate_fx g = {.allow = 1000, .header = "X-Rolesyncd-Fence: job=j1; member=m; lease=2a"};
    struct http_gate gate = {.check = test_gate_check, .arg = &g};
    struct call c;
    gated_call(&f, &c, "GET", ROLES, NULL, &gate);
    assert_int_equal(c.outcome, HTTP_OK);
    assert_int_equal(c.attempts, 2); /* the 503, then its retry */
    /* each asked at the queue's head (again while it waited for the token) and connected */
    assert_true(g.calls >= 4);
    call_free(&c);

    /* the gate says no: nothing sent, the reason is the error (the token is cached from here
     * on, so each attempt is asked exactly twice) */
    struct gate_fx no = {.allow = 0, .header = ""};
    gate.arg = &no;
    gated_call(&f, &c, "PUT", ROLES "/x", "{}", &gate);
    assert_int_equal(c.outcome, HTTP_ERR_CANCELLED);
    assert_int_equal(c.attempts, 0);
    assert_non_null(c.error);
    assert_string_equal(c.error, "not sent: the lease is gone");
    assert_int_equal(no.calls, 1);
    call_free(&c);

    /* a yes at the head of the queue, a no once connected (the last moment): not sent, not
     * counted, not retried */
    const struct http_counters *k = http_tenant_counters(f.t);
    uint64_t sent = k->requests;
    struct gate_fx late = {.allow = 1, .header = ""};
    gate.arg = &late;
    gated_call(&f, &c, "PUT", ROLES "/y", "{}", &gate);
    assert_int_equal(c.outcome, HTTP_ERR_CANCELLED);
    assert_int_equal(c.attempts, 0);
    assert_int_equal(late.calls, 2);
    assert_true(k->requests == sent);
    call_free(&c);

    /* the retry of a sent attempt is refused: one attempt, cancelled, not a failure */
    sim_faults(&f.sim, "[{\"method\":\"PUT\",\"path\":\"" ROLES "/z\",\"times\":1,"
                       "\"action\":\"status\",\"status\":503}]");
    struct gate_fx retry = {.allow = 2, .header = ""};
    gate.arg = &retry;
    gated_call(&f, &c, "PUT", ROLES "/z", "{}", &gate);
    assert_int_equal(c.outcome, HTTP_ERR_CANCELLED);
    assert_int_equal(c.attempts, 1);
    assert_int_equal(retry.calls, 3);
    call_free(&c);
    gate.arg = &g;

    /* a header that would split the request is dropped, the request still sent */
    struct gate_fx bad = {.allow = 2, .header = "X-Rolesyncd-Fence: a\r\nX-Injected: b"};
    gate.arg = &bad;
    gated_call(&f, &c, "GET", ROLES, NULL, &gate);
    assert_int_equal(c.outcome, HTTP_OK);
    call_free(&c);

    char *text = slurp_file(log);
    assert_int_equal(count_of(text, "\"fence\":\"job=j1; member=m; lease=2a\""), 2);
    assert_int_equal(count_of(text, "\"path\":\"" ROLES "/x\""), 0);
    assert_int_equal(count_of(text, "\"path\":\"" ROLES "/y\""), 0);
    assert_int_equal(count_of(text, "\"path\":\"" ROLES "/z\""), 1); /* the 503 */
    /* without a fence header: the token requests (no gate), /z (its gate gave none) and the
     * request whose header was dropped */
    assert_int_equal(count_of(text, "\"fence\":null"),
                     count_of(text, "\"path\":\"/oauth/token\"") + 2);
    assert_int_equal(count_of(text, "Injected"), 0);
    free(text);
    fx_close(&f);
}

/* A refused write behind the rate limiter goes at once: it waits for no slot, and holds back
 * nothing. At one request per 2 s the ungated GET behind three refused PUTs is answered after
 * one slot; were the PUTs to take a slot each before being refused, it would take four (8 s),
 * past run_until's 5 s. */
static void test_gate_refusal_skips_rate_limit(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_sim(&f, "genesys", NULL);
    f.http.rate_per_sec = 0.5;
    fx_tenant(&f, HTTP_AUTH_BASIC_FORM, NULL, 0);
    struct gate_fx no = {.allow = 0, .header = ""};
    struct http_gate gate = {.check = test_gate_check, .arg = &no};
    struct call c[5];
    memset(c, 0, sizeof c);
    for (int i = 0; i < 5; i++)
        c[i].fx = &f;
    submit(&f, &c[0], "GET", ROLES, NULL);
    for (int i = 1; i < 4; i++)
        http_request_gated(f.t, "PUT", ROLES "/x", "{}", 0, &gate, on_done, &c[i]);
    submit(&f, &c[4], "GET", ROLES, NULL);
    run_until(&f, c, 5, 5000);
    for (int i = 1; i < 4; i++) {
        assert_int_equal(c[i].outcome, HTTP_ERR_CANCELLED);
        assert_true(c[i].t_done <= c[4].t_done);
    }
    assert_int_equal(c[0].outcome, HTTP_OK);
    assert_int_equal(c[4].outcome, HTTP_OK);
    assert_int_equal(no.calls, 3);
    const struct http_counters *k = http_tenant_counters(f.t);
    assert_true(k->requests == 2); /* the two GETs only */
    for (int i = 0; i < 5; i++)
        call_free(&c[i]);
    fx_close(&f);
}

static void test_5xx_retried_to_success(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_sim(&f, "genesys", NULL);
    fx_tenant(&f, HTTP_AUTH_BASIC_FORM, NULL, 0);
    sim_faults(&f.sim, "[{\"method\":\"GET\",\"path\":\"" ROLES "\",\"times\":3,"
                       "\"action\":\"status\",\"status\":503}]");

    struct call c = {0};
    submit(&f, &c, "GET", ROLES, NULL);
    run_until(&f, &c, 1, 20000);
    assert_int_equal(c.outcome, HTTP_OK);
    assert_int_equal(c.attempts, 4);
    const struct http_counters *k = http_tenant_counters(f.t);
    assert_true(k->by_status[503] == 3);
    assert_true(k->by_status[200] == 1);
    assert_true(k->retries == 3);
    assert_true(k->requests == 4);
    call_free(&c);

    /* more failures than attempts: the final 503 is reported with the server's message */
    sim_faults(&f.sim, "[{\"method\":\"GET\",\"path\":\"" ROLES "\",\"times\":10,"
                       "\"action\":\"status\",\"status\":502}]");
    submit(&f, &c, "GET", ROLES, NULL);
    run_until(&f, &c, 1, 20000);
    assert_int_equal(c.outcome, HTTP_ERR_STATUS);
    assert_int_equal(c.status, 502);
    assert_int_equal(c.attempts, 4);
    assert_non_null(c.error);
    assert_true(strncmp(c.error, "HTTP 502", 8) == 0);
    call_free(&c);

    /* other 4xx: not retried */
    sim_ctl(&f.sim, "DELETE", "/_sim/faults", NULL, NULL);
    submit(&f, &c, "GET", ROLES "/00000000-0000-4000-8000-000000000000", NULL);
    run_until(&f, &c, 1, 20000);
    assert_int_equal(c.outcome, HTTP_ERR_STATUS);
    assert_int_equal(c.status, 404);
    assert_int_equal(c.attempts, 1);
    assert_true(strncmp(c.error, "HTTP 404: ", 10) == 0);
    call_free(&c);
    fx_close(&f);
}

static void test_429_retry_after_pauses_tenant(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    f.http.max_connections = 1;
    f.http.retry_initial_delay_ms = 10;
    f.http.retry_max_delay_ms = 20;
    fx_sim(&f, "genesys", NULL);
    fx_tenant(&f, HTTP_AUTH_BASIC_FORM, NULL, 0);
    sim_faults(&f.sim, "[{\"method\":\"GET\",\"path\":\"" ROLES "\",\"times\":1,"
                       "\"action\":\"status\",\"status\":429,\"retry_after\":1}]");

    struct call c[3] = {0};
    uint64_t t0 = util_mono_ms();
    submit(&f, &c[0], "GET", ROLES, NULL);
    submit(&f, &c[1], "GET", "/api/v2/authorization/divisions", NULL);
    submit(&f, &c[2], "GET", "/api/v2/users?pageSize=5", NULL);
    run_until(&f, c, 3, 20000);

    assert_int_equal(c[0].outcome, HTTP_OK);
    assert_int_equal(c[0].attempts, 2);
    /* Retry-After: 1 is a floor for the request that got the 429 (backoff alone would be
     * <= 20 ms) ... */
    assert_true(c[0].t_done - t0 >= 990);
    /* ... and it held back the whole tenant: the others, free to go with a slot open, waited */
    for (int i = 1; i < 3; i++) {
        assert_int_equal(c[i].ncb, 1);
        assert_int_equal(c[i].attempts, 1);
        assert_true(c[i].t_done - t0 >= 990);
    }
    assert_true(http_tenant_counters(f.t)->by_status[429] == 1);
    for (int i = 0; i < 3; i++)
        call_free(&c[i]);
    fx_close(&f);
}

static void test_reset_truncate_garbage(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_sim(&f, "genesys", NULL);
    fx_tenant(&f, HTTP_AUTH_BASIC_FORM, NULL, 0);

    struct call c = {0};
    /* connection reset twice, then fine. libcurl itself resends once, silently, when a reused
     * keep-alive connection dies before any reply byte, so the engine sees 2 or 3 attempts;
     * the server sees all 3. */
    sim_faults(&f.sim, "[{\"method\":\"GET\",\"path\":\"" ROLES "\",\"times\":2,"
                       "\"action\":\"reset\"}]");
    submit(&f, &c, "GET", ROLES, NULL);
    run_until(&f, &c, 1, 20000);
    assert_int_equal(c.outcome, HTTP_OK);
    assert_true(c.attempts >= 2 && c.attempts <= 3);
    struct json_object *st = sim_stats(&f.sim);
    assert_int_equal(sim_stat(st, "by_route", "GET " ROLES), 3);
    json_object_put(st);
    call_free(&c);

    /* truncated body: a transport error, retried */
    sim_faults(&f.sim, "[{\"method\":\"GET\",\"path\":\"" ROLES "\",\"times\":1,"
                       "\"action\":\"truncate\"}]");
    submit(&f, &c, "GET", ROLES, NULL);
    run_until(&f, &c, 1, 20000);
    assert_int_equal(c.outcome, HTTP_OK);
    assert_int_equal(c.attempts, 2);
    call_free(&c);

    /* always truncated: fails as a transport error with no status */
    sim_faults(&f.sim, "[{\"method\":\"GET\",\"path\":\"" ROLES "\",\"times\":0,"
                       "\"action\":\"truncate\"}]");
    submit(&f, &c, "GET", ROLES, NULL);
    run_until(&f, &c, 1, 20000);
    assert_int_equal(c.outcome, HTTP_ERR_TRANSPORT);
    assert_int_equal(c.status, 0);
    assert_int_equal(c.attempts, 4);
    assert_non_null(strstr(c.error, "partial"));
    call_free(&c);
    sim_ctl(&f.sim, "DELETE", "/_sim/faults", NULL, NULL);

    /* garbage: a 200 delivered as is; the JSON guard refuses it */
    sim_faults(&f.sim, "[{\"method\":\"GET\",\"path\":\"" ROLES "\",\"times\":1,"
                       "\"action\":\"garbage\"}]");
    submit(&f, &c, "GET", ROLES, NULL);
    run_until(&f, &c, 1, 20000);
    assert_int_equal(c.outcome, HTTP_OK);
    assert_int_equal(c.status, 200);
    assert_int_equal(c.attempts, 1);
    char err[128];
    assert_null(http_parse_json(c.body, c.len, err, sizeof(err)));
    call_free(&c);
    fx_close(&f);
}

static void test_stall_timeout(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    f.http.timeout_ms = 300;
    f.http.retry_max_attempts = 2;
    fx_sim(&f, "genesys", NULL);
    fx_tenant(&f, HTTP_AUTH_BASIC_FORM, NULL, 0);

    struct call c = {0};
    sim_faults(&f.sim, "[{\"method\":\"GET\",\"path\":\"" ROLES "\",\"times\":1,"
                       "\"action\":\"stall\",\"stall_ms\":1500}]");
    uint64_t t0 = util_mono_ms();
    submit(&f, &c, "GET", ROLES, NULL);
    run_until(&f, &c, 1, 20000);
    assert_int_equal(c.outcome, HTTP_OK);
    assert_int_equal(c.attempts, 2);
    assert_true(c.t_done - t0 >= 300);
    assert_true(http_tenant_counters(f.t)->by_status[0] == 1);
    call_free(&c);

    sim_faults(&f.sim, "[{\"method\":\"GET\",\"path\":\"" ROLES "\",\"times\":0,"
                       "\"action\":\"stall\",\"stall_ms\":1500}]");
    submit(&f, &c, "GET", ROLES, NULL);
    run_until(&f, &c, 1, 20000);
    assert_int_equal(c.outcome, HTTP_ERR_TRANSPORT);
    assert_int_equal(c.attempts, 2);
    assert_non_null(strstr(c.error, "Timeout"));
    call_free(&c);
    fx_close(&f);
}

/* A chain of requests over ~5 s with 2 s tokens: every call works, tokens are renewed. */
static void chain_done(const struct http_result *r, void *arg);

struct chain {
    struct fx *f;
    struct call c;
    int sent, ok, failed;
    uint64_t until;
    uv_timer_t timer;
};

static void chain_next(uv_timer_t *h)
{
    struct chain *ch = h->data;
    ch->sent++;
    http_request(ch->f->t, "GET", ROLES, NULL, chain_done, ch);
}

static void chain_done(const struct http_result *r, void *arg)
{
    struct chain *ch = arg;
    if (r->outcome == HTTP_OK)
        ch->ok++;
    else
        ch->failed++;
    if (util_mono_ms() < ch->until)
        uv_timer_start(&ch->timer, chain_next, 100, 0);
    else
        ch->c.ncb = 1;
}

static void test_token_expiry_mid_run(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    const char *extra[] = {"--token-ttl", "2s", NULL};
    fx_sim(&f, "genesys", extra);
    fx_tenant(&f, HTTP_AUTH_BASIC_FORM, NULL, 0);

    struct chain ch = {.f = &f, .until = util_mono_ms() + 5000};
    uv_timer_init(&f.loop, &ch.timer);
    ch.timer.data = &ch;
    uv_timer_start(&ch.timer, chain_next, 0, 0);
    run_until(&f, &ch.c, 1, 30000);
    uv_close((uv_handle_t *)&ch.timer, NULL);

    assert_int_equal(ch.failed, 0);
    assert_int_equal(ch.ok, ch.sent);
    assert_true(ch.sent >= 10);
    const struct http_counters *k = http_tenant_counters(f.t);
    /* 5 s of 2 s tokens renewed 200 ms early: 3 or 4 tokens (a 401 would add one) */
    assert_true(k->token_requests >= 3);
    assert_true(k->token_requests <= 5);
    struct json_object *st = sim_stats(&f.sim);
    assert_int_equal(sim_stat(st, "by_route", "POST /oauth/token"), (long)k->token_requests);
    json_object_put(st);
    fx_close(&f);
}

static void test_401_renews_once(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_sim(&f, "genesys", NULL);
    fx_tenant(&f, HTTP_AUTH_BASIC_FORM, NULL, 0);

    struct call c = {0};
    submit(&f, &c, "GET", ROLES, NULL);
    run_until(&f, &c, 1, 20000);
    assert_int_equal(c.outcome, HTTP_OK);
    call_free(&c);

    /* the server rejects the token once: renewed, call repeated */
    sim_faults(&f.sim, "[{\"method\":\"GET\",\"path\":\"" ROLES "\",\"times\":1,"
                       "\"action\":\"status\",\"status\":401}]");
    submit(&f, &c, "GET", ROLES, NULL);
    run_until(&f, &c, 1, 20000);
    assert_int_equal(c.outcome, HTTP_OK);
    assert_int_equal(c.attempts, 2);
    assert_true(http_tenant_counters(f.t)->token_requests == 2);
    call_free(&c);

    /* rejected every time: renewed once only, then the 401 is the answer */
    sim_faults(&f.sim, "[{\"method\":\"GET\",\"path\":\"" ROLES "\",\"times\":0,"
                       "\"action\":\"status\",\"status\":401}]");
    submit(&f, &c, "GET", ROLES, NULL);
    run_until(&f, &c, 1, 20000);
    assert_int_equal(c.outcome, HTTP_ERR_STATUS);
    assert_int_equal(c.status, 401);
    assert_int_equal(c.attempts, 2);
    assert_true(http_tenant_counters(f.t)->token_requests == 3);
    call_free(&c);
    fx_close(&f);
}

static void test_token_endpoint_5xx_retried(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_sim(&f, "genesys", NULL);
    fx_tenant(&f, HTTP_AUTH_BASIC_FORM, NULL, 0);
    sim_faults(&f.sim, "[{\"method\":\"POST\",\"path\":\"/oauth/token\",\"times\":2,"
                       "\"action\":\"status\",\"status\":503}]");
    enum { N = 5 };
    struct call c[N] = {0};
    for (int i = 0; i < N; i++)
        submit(&f, &c[i], "GET", ROLES, NULL);
    run_until(&f, c, N, 20000);
    for (int i = 0; i < N; i++) {
        assert_int_equal(c[i].outcome, HTTP_OK);
        assert_int_equal(c[i].attempts, 1);
        call_free(&c[i]);
    }
    /* still single flight: three token attempts in a row, not three per waiter */
    const struct http_counters *k = http_tenant_counters(f.t);
    assert_true(k->token_requests == 3);
    assert_true(k->auth_failures == 0);
    /* token attempts are counted per status for the metrics, apart from the API's */
    assert_true(k->token_by_status[503] == 2 && k->token_by_status[200] == 1);
    assert_true(k->token_retries == 2);
    assert_true(k->by_status[503] == 0 && k->by_status[200] == N);
    fx_close(&f);
}

/* Freeing the tenant from inside a callback: every other request still gets exactly one
 * (cancelled) callback and the loop closes cleanly. */

static void free_tenant_cb(const struct http_result *r, void *arg)
{
    struct call *c = arg;
    on_done(r, arg);
    http_tenant_free(c->fx->t);
    c->fx->t = NULL;
}

static void test_free_tenant_from_callback(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    f.http.max_connections = 1;
    const char *extra[] = {"--latency", "50ms", NULL};
    fx_sim(&f, "genesys", extra);
    fx_tenant(&f, HTTP_AUTH_BASIC_FORM, NULL, 0);

    struct call c[4] = {0};
    c[0].fx = &f;
    http_request(f.t, "GET", ROLES, NULL, free_tenant_cb, &c[0]);
    for (int i = 1; i < 4; i++)
        submit(&f, &c[i], "GET", ROLES, NULL);
    run_until(&f, c, 4, 20000);
    assert_int_equal(c[0].outcome, HTTP_OK);
    for (int i = 1; i < 4; i++)
        assert_int_equal(c[i].outcome, HTTP_ERR_CANCELLED);
    run_for(&f, 50);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(c[i].ncb, 1);
        call_free(&c[i]);
    }
    fx_close(&f);
}

static void test_bad_credentials_no_storm(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_sim(&f, "genesys", NULL);
    fx_tenant(&f, HTTP_AUTH_BASIC_FORM, "wrong-secret", 0);

    enum { N = 10 };
    struct call c[N + 1] = {0};
    for (int i = 0; i < N; i++)
        submit(&f, &c[i], "GET", ROLES, NULL);
    run_until(&f, c, N, 20000);
    for (int i = 0; i < N; i++) {
        assert_int_equal(c[i].outcome, HTTP_ERR_AUTH);
        assert_int_equal(c[i].attempts, 0);
        assert_non_null(strstr(c[i].error, "authentication failed"));
        assert_non_null(strstr(c[i].error, "invalid_client"));
        assert_null(strstr(c[i].error, "wrong-secret"));
    }
    /* a request right after: refused without asking again */
    submit(&f, &c[N], "GET", ROLES, NULL);
    run_until(&f, &c[N], 1, 20000);
    assert_int_equal(c[N].outcome, HTTP_ERR_AUTH);

    const struct http_counters *k = http_tenant_counters(f.t);
    assert_true(k->token_requests == 1);
    assert_true(k->auth_failures == 1);
    assert_true(k->requests == 0);
    struct json_object *st = sim_stats(&f.sim);
    assert_int_equal(sim_stat(st, "by_route", "POST /oauth/token"), 1);
    assert_int_equal(sim_stat(st, NULL, "total"), 1);
    json_object_put(st);
    for (int i = 0; i <= N; i++)
        call_free(&c[i]);
    fx_close(&f);
}

static void test_client_rate_limit(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    f.http.rate_per_sec = 20;
    f.http.max_connections = 4; /* burst = min(20, 4) = 4 */
    fx_sim(&f, "genesys", NULL);
    fx_tenant(&f, HTTP_AUTH_BASIC_FORM, NULL, 0);

    enum { N = 24 };
    struct call c[N] = {0};
    uint64_t t0 = util_mono_ms();
    for (int i = 0; i < N; i++)
        submit(&f, &c[i], "GET", ROLES, NULL);
    run_until(&f, c, N, 30000);
    uint64_t first = UINT64_MAX, last = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(c[i].outcome, HTTP_OK);
        if (c[i].t_done < first)
            first = c[i].t_done;
        if (c[i].t_done > last)
            last = c[i].t_done;
        call_free(&c[i]);
    }
    /* 24 requests at 20/s with a burst of 4 cannot finish in under (24-4)/20 s = 1 s */
    assert_true(last - t0 >= 950);
    struct json_object *st = sim_stats(&f.sim);
    assert_int_equal(sim_stat(st, "by_route", "GET " ROLES), N);
    json_object_put(st);
    fx_close(&f);
}

static void test_max_connections(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    f.http.max_connections = 3;
    const char *extra[] = {"--latency", "100ms", NULL};
    fx_sim(&f, "genesys", extra);
    fx_tenant(&f, HTTP_AUTH_BASIC_FORM, NULL, 0);

    enum { N = 15 };
    struct call c[N] = {0};
    for (int i = 0; i < N; i++)
        submit(&f, &c[i], "GET", ROLES, NULL);
    run_until(&f, c, N, 30000);
    for (int i = 0; i < N; i++) {
        assert_int_equal(c[i].outcome, HTTP_OK);
        call_free(&c[i]);
    }
    struct json_object *st = sim_stats(&f.sim);
    long mif = sim_stat(st, NULL, "max_in_flight");
    assert_true(mif <= 3);
    assert_true(mif >= 2); /* it did run requests side by side */
    json_object_put(st);
    fx_close(&f);
}

/* The server advertises 10 requests per 1 s window; the client has no limit of its own and
 * must stay under the server's without ever getting a 429. */
static void test_server_advertised_limit(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    f.http.max_connections = 4;
    const char *extra[] = {"--rate-limit", "10/s", NULL};
    fx_sim(&f, "genesys", extra);
    fx_tenant(&f, HTTP_AUTH_BASIC_FORM, NULL, 0);

    enum { N = 30 };
    struct call c[N] = {0};
    for (int i = 0; i < N; i++)
        submit(&f, &c[i], "GET", ROLES, NULL);
    run_until(&f, c, N, 30000);
    for (int i = 0; i < N; i++) {
        assert_int_equal(c[i].outcome, HTTP_OK);
        assert_int_equal(c[i].attempts, 1);
        call_free(&c[i]);
    }
    struct json_object *st = sim_stats(&f.sim);
    assert_int_equal(sim_stat(st, "by_status", "429"), 0);
    assert_int_equal(sim_stat(st, "by_route", "GET " ROLES), N);
    json_object_put(st);
    assert_true(http_tenant_counters(f.t)->by_status[429] == 0);
    fx_close(&f);
}

static void test_response_cap(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_sim(&f, "genesys", NULL);
    /* above the token reply (~130 bytes), below the role listing (~1.4 KiB) */
    fx_tenant(&f, HTTP_AUTH_BASIC_FORM, NULL, 512);

    struct call c = {0};
    submit(&f, &c, "GET", ROLES, NULL);
    run_until(&f, &c, 1, 20000);
    assert_int_equal(c.outcome, HTTP_ERR_TOO_LARGE);
    assert_int_equal(c.attempts, 1);
    assert_non_null(strstr(c.error, "larger than"));
    call_free(&c);
    fx_close(&f);
}

static void test_cancel(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    f.http.max_connections = 1;
    const char *extra[] = {"--latency", "300ms", NULL};
    fx_sim(&f, "genesys", extra);
    fx_tenant(&f, HTTP_AUTH_BASIC_FORM, NULL, 0);

    /* warm up the token so the next request goes on the wire at once */
    struct call w = {0};
    submit(&f, &w, "GET", ROLES, NULL);
    run_until(&f, &w, 1, 20000);
    call_free(&w);

    struct call c[3] = {0};
    submit(&f, &c[0], "GET", ROLES, NULL);
    struct http_request *r1 = submit(&f, &c[1], "GET", ROLES, NULL); /* queued behind c[0] */
    submit(&f, &c[2], "GET", ROLES, NULL);
    run_for(&f, 100); /* c[0] is in flight now */
    http_cancel(r1);
    assert_int_equal(c[1].ncb, 0); /* delivered from the loop, not from http_cancel */
    run_until(&f, c, 3, 20000);
    assert_int_equal(c[0].outcome, HTTP_OK);
    assert_int_equal(c[1].outcome, HTTP_ERR_CANCELLED);
    assert_int_equal(c[1].attempts, 0);
    assert_int_equal(c[2].outcome, HTTP_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(c[i].ncb, 1);
        call_free(&c[i]);
    }

    /* cancel everything, one in flight and two queued; then close with work outstanding */
    struct call d[4] = {0};
    for (int i = 0; i < 3; i++)
        submit(&f, &d[i], "GET", ROLES, NULL);
    run_for(&f, 100);
    http_engine_cancel_all(f.e);
    run_until(&f, d, 3, 20000);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(d[i].outcome, HTTP_ERR_CANCELLED);
        assert_int_equal(d[i].ncb, 1);
    }
    submit(&f, &d[3], "GET", ROLES, NULL);
    run_for(&f, 50);
    http_engine_close(f.e); /* d[3] in flight: cancelled, delivered, then everything closes */
    f.e = NULL;
    run_until(&f, &d[3], 1, 20000);
    assert_int_equal(d[3].outcome, HTTP_ERR_CANCELLED);
    for (int i = 0; i < 4; i++)
        call_free(&d[i]);
    fx_close(&f);
}

struct drained {
    int n;
    uint64_t at;
};

static void on_drained(void *arg)
{
    struct drained *d = arg;
    d->n++;
    d->at = util_mono_ms();
}

static void test_drain(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    f.http.max_connections = 2;
    const char *extra[] = {"--latency", "300ms", NULL};
    fx_sim(&f, "genesys", extra);
    fx_tenant(&f, HTTP_AUTH_BASIC_FORM, NULL, 0);

    struct call w = {0};
    submit(&f, &w, "GET", ROLES, NULL);
    run_until(&f, &w, 1, 20000);
    call_free(&w);

    struct call c[5] = {0};
    for (int i = 0; i < 4; i++)
        submit(&f, &c[i], "GET", ROLES, NULL);
    run_for(&f, 100); /* two in flight, two queued */
    struct drained d = {0};
    http_engine_drain(f.e, 5000, on_drained, &d);
    assert_int_equal(d.n, 0);
    submit(&f, &c[4], "GET", ROLES, NULL); /* refused while draining */
    run_until(&f, c, 5, 20000);
    while (d.n == 0)
        uv_run(&f.loop, UV_RUN_ONCE);
    assert_int_equal(c[0].outcome, HTTP_OK);
    assert_int_equal(c[1].outcome, HTTP_OK);
    assert_int_equal(c[2].outcome, HTTP_ERR_CANCELLED);
    assert_int_equal(c[3].outcome, HTTP_ERR_CANCELLED);
    assert_int_equal(c[4].outcome, HTTP_ERR_CANCELLED);
    assert_int_equal(d.n, 1);
    for (int i = 0; i < 5; i++)
        call_free(&c[i]);
    fx_close(&f);

    /* the deadline cuts a stalled request short */
    fx_init(&f);
    fx_sim(&f, "genesys", NULL);
    fx_tenant(&f, HTTP_AUTH_BASIC_FORM, NULL, 0);
    sim_faults(&f.sim, "[{\"method\":\"GET\",\"path\":\"" ROLES "\",\"times\":1,"
                       "\"action\":\"stall\",\"stall_ms\":3000}]");
    struct call s = {0};
    submit(&f, &s, "GET", ROLES, NULL);
    run_for(&f, 300);
    memset(&d, 0, sizeof(d));
    uint64_t t0 = util_mono_ms();
    http_engine_drain(f.e, 200, on_drained, &d);
    run_until(&f, &s, 1, 20000);
    while (d.n == 0)
        uv_run(&f.loop, UV_RUN_ONCE);
    assert_int_equal(s.outcome, HTTP_ERR_CANCELLED);
    assert_true(d.at - t0 >= 190);
    call_free(&s);
    fx_close(&f);
}

static void test_identity_form_auth(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f);
    fx_sim(&f, "identity", NULL);
    fx_tenant(&f, HTTP_AUTH_POST_FORM, NULL, 0);

    struct call c = {0};
    submit(&f, &c, "GET", "/api/v1/Tenants/" SIM_TENANT_ID "/Roles", NULL);
    run_until(&f, &c, 1, 20000);
    assert_int_equal(c.outcome, HTTP_OK);
    assert_true(c.corr[0] != '\0'); /* Operation-Id */
    char err[128];
    struct json_object *o = http_parse_json(c.body, c.len, err, sizeof(err));
    assert_non_null(o);
    assert_true(json_object_is_type(o, json_type_array));
    json_object_put(o);
    call_free(&c);
    fx_close(&f);

    /* wrong secret: 400 invalid_client, one token request, clear message */
    fx_init(&f);
    fx_sim(&f, "identity", NULL);
    fx_tenant(&f, HTTP_AUTH_POST_FORM, "nope", 0);
    struct call d[3] = {0};
    for (int i = 0; i < 3; i++)
        submit(&f, &d[i], "GET", "/api/v1/Tenants/" SIM_TENANT_ID "/Roles", NULL);
    run_until(&f, d, 3, 20000);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(d[i].outcome, HTTP_ERR_AUTH);
        assert_non_null(strstr(d[i].error, "invalid_client"));
        call_free(&d[i]);
    }
    assert_true(http_tenant_counters(f.t)->token_requests == 1);
    fx_close(&f);
}

static void test_tls(void **state)
{
    (void)state;
    struct fx f;
    char cert[PATH_MAX + 16], key[PATH_MAX + 16], ca[PATH_MAX + 16], other[PATH_MAX + 16];

    fx_init(&f);
    assert_int_equal(tls_make_certs(f.dir), 0);
    snprintf(cert, sizeof(cert), "%s/server.pem", f.dir);
    snprintf(key, sizeof(key), "%s/server.key", f.dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", f.dir);
    snprintf(other, sizeof(other), "%s/untrusted.pem", f.dir);
    const char *extra[] = {"--tls-cert", cert, "--tls-key", key, NULL};
    fx_sim(&f, "genesys", extra);
    snprintf(f.sim.ca, sizeof(f.sim.ca), "%s", ca);
    assert_true(strncmp(f.sim.base, "https://", 8) == 0);

    /* trusted through ca_file */
    f.http.ca_file = ca;
    fx_tenant(&f, HTTP_AUTH_BASIC_FORM, NULL, 0);
    struct call c = {0};
    submit(&f, &c, "GET", ROLES, NULL);
    run_until(&f, &c, 1, 20000);
    assert_int_equal(c.outcome, HTTP_OK);
    call_free(&c);

    /* an unrelated CA: verification fails at the token endpoint (the first thing contacted),
     * not retried, and reported as the transport failure it is — not as refused credentials */
    struct http_tenant *good = f.t;
    f.http.ca_file = other;
    fx_tenant(&f, HTTP_AUTH_BASIC_FORM, NULL, 0);
    submit(&f, &c, "GET", ROLES, NULL);
    run_until(&f, &c, 1, 20000);
    assert_int_equal(c.outcome, HTTP_ERR_TRANSPORT);
    assert_non_null(strstr(c.error, "certificate"));
    assert_true(http_tenant_counters(f.t)->token_requests == 1);
    call_free(&c);

    /* the same without a token: an untrusted certificate is a transport error, one attempt */
    char err[256];
    struct http_tenant_opts o = {
        .name = "tls-none", .auth = HTTP_AUTH_NONE, .base_url = f.sim.base, .http = &f.http};
    f.t = http_tenant_new(f.e, &o, err, sizeof(err));
    assert_non_null(f.t);
    submit(&f, &c, "GET", "/_sim/stats", NULL);
    run_until(&f, &c, 1, 20000);
    assert_int_equal(c.outcome, HTTP_ERR_TRANSPORT);
    assert_int_equal(c.attempts, 1);
    assert_non_null(strstr(c.error, "certificate"));
    call_free(&c);
    (void)good;
    f.http.ca_file = NULL;
    fx_close(&f);
}

/* Everything the engine logged during the sim tests (at debug level) is in g_log: it must
 * name failures properly and never carry a secret, a token or an Authorization header. */
static FILE *g_log;

static void test_logs_carry_no_secrets(void **state)
{
    (void)state;
    long n;
    char *text;

    fflush(g_log);
    n = ftell(g_log);
    assert_true(n > 0);
    text = xmalloc((size_t)n + 1);
    rewind(g_log);
    assert_int_equal(fread(text, 1, (size_t)n, g_log), (size_t)n);
    text[n] = '\0';
    if (getenv("HTTP_TEST_DEBUG"))
        fputs(text, stderr);

    assert_non_null(strstr(text, "http request failed tenant=test-genesys method=GET path="));
    assert_non_null(strstr(text, "status=503 correlation_id="));
    assert_non_null(strstr(text, "http token request failed tenant=test-genesys method=POST"));
    assert_null(strstr(text, SIM_CLIENT_SECRET));
    assert_null(strstr(text, "wrong-secret"));
    assert_null(strstr(text, "Bearer"));
    assert_null(strstr(text, "Basic "));
    assert_null(strstr(text, "Authorization"));
    assert_null(strstr(text, "access_token"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_parse_json),
        cmocka_unit_test(test_error_message),
        cmocka_unit_test(test_auth_helpers),
        cmocka_unit_test(test_invalid_and_unreachable),
    };
    const struct CMUnitTest sim[] = {
        cmocka_unit_test(test_get_and_single_flight_token),
        cmocka_unit_test(test_5xx_retried_to_success),
        cmocka_unit_test(test_gate),
        cmocka_unit_test(test_gate_refusal_skips_rate_limit),
        cmocka_unit_test(test_429_retry_after_pauses_tenant),
        cmocka_unit_test(test_reset_truncate_garbage),
        cmocka_unit_test(test_stall_timeout),
        cmocka_unit_test(test_token_expiry_mid_run),
        cmocka_unit_test(test_401_renews_once),
        cmocka_unit_test(test_token_endpoint_5xx_retried),
        cmocka_unit_test(test_free_tenant_from_callback),
        cmocka_unit_test(test_bad_credentials_no_storm),
        cmocka_unit_test(test_client_rate_limit),
        cmocka_unit_test(test_max_connections),
        cmocka_unit_test(test_server_advertised_limit),
        cmocka_unit_test(test_response_cap),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_drain),
        cmocka_unit_test(test_identity_form_auth),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_logs_carry_no_secrets),
    };
    int rc;

    signal(SIGPIPE, SIG_IGN);
    g_log = tmpfile();
    assert_non_null(g_log);
    log_set_stream(g_log, 0);
    log_set_level(LOG_LVL_DEBUG);
    rc = cmocka_run_group_tests_name("http_pure", pure, NULL, NULL);
    rc |= cmocka_run_group_tests_name("http_sim", sim, NULL, NULL);
    log_set_stream(NULL, 0);
    fclose(g_log);
    return rc;
}
