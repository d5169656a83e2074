/* sim_server.c — tenantsim's HTTP side on libmicrohttpd: the per-request pipeline (latency,
 * faults, token check, rate limit, routing, common headers, stats), the token endpoints, and
 * the loopback-only /_sim control routes.
 *
 * MHD runs one thread per connection, so per-request latency and stall faults are plain sleeps
 * that never hold up other connections.
 */
#include "sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#define SIM_MAX_BODY (512u * 1024u * 1024u) /* /_sim/state of a very large tenant */
#define SIM_MAX_API_BODY (16u * 1024u * 1024u)
#define SIM_UNLIMITED_ADVERTISED 1000000L

/* Per-request state kept by MHD between callbacks. */
typedef struct conn_req {
    sim_sb body;
    bool too_big;
    bool in_flight; /* counted in ctx->in_flight */
} conn_req;

/* ---- small shared pieces ------------------------------------------------------------------ */

void reply_header(sim_reply *rp, const char *name, const char *value)
{
    if (rp->nhdr >= (int)UTIL_ARRAY_LEN(rp->hname))
        return;
    rp->hname[rp->nhdr] = xstrdup(name);
    rp->hval[rp->nhdr] = xstrdup(value);
    rp->nhdr++;
}

static void reply_free(sim_reply *rp)
{
    sb_free(&rp->body);
    for (int i = 0; i < rp->nhdr; i++) {
        free(rp->hname[i]);
        free(rp->hval[i]);
    }
    rp->nhdr = 0;
}

static void reply_json(sim_reply *rp, unsigned status, const char *json)
{
    rp->status = status;
    rp->has_body = true;
    rp->body.len = 0;
    sb_puts(&rp->body, json);
}

static bool arg_key_is(const char *k, const char *key)
{
    size_t n = strlen(key);
    return strncmp(k, key, n) == 0 && (k[n] == '\0' || strcmp(k + n, "[]") == 0);
}

const char *req_arg(const sim_req *rq, const char *key)
{
    for (size_t i = 0; i < rq->nargs; i++)
        if (arg_key_is(rq->args[i].key, key))
            return rq->args[i].val ? rq->args[i].val : "";
    return NULL;
}

size_t req_arg_list(const sim_req *rq, const char *key, char ***out)
{
    size_t n = 0, cap = 0;
    char **v = NULL;
    for (size_t i = 0; i < rq->nargs; i++) {
        if (!arg_key_is(rq->args[i].key, key) || !rq->args[i].val)
            continue;
        const char *s = rq->args[i].val;
        while (*s) {
            const char *e = strchr(s, ',');
            size_t l = e ? (size_t)(e - s) : strlen(s);
            if (l > 0) {
                util_grow((void **)&v, &cap, n + 1, sizeof *v);
                v[n++] = xstrndup(s, l);
            }
            s += l;
            if (*s == ',')
                s++;
        }
    }
    *out = v;
    return n;
}

void sim_sleep(sim_ctx *ctx, int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&ctx->stop_mu);
    while (!ctx->stopping) {
        int rc = pthread_cond_timedwait(&ctx->stop_cv, &ctx->stop_mu, &until);
        if (rc == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&ctx->stop_mu);
}

void sim_rdlock(sim_req *rq)
{
    pthread_rwlock_rdlock(&rq->ctx->lock);
}

void sim_rdunlock(sim_req *rq)
{
    pthread_rwlock_unlock(&rq->ctx->lock);
}

void sim_lock_exclusive(sim_ctx *ctx)
{
    pthread_rwlock_wrlock(&ctx->lock);
    ctx->gen++; /* every cached page is stale from here on */
}

struct sim_page {
    char *key;
    unsigned long gen;
    char *body;
    size_t len;
    UT_hash_handle hh;
};

/* Cached pages beyond this are dropped, all at once. */
#define SIM_PAGES_MAX_BYTES (512u << 20)

static void pages_clear(sim_ctx *ctx)
{
    struct sim_page *e, *tmp;
    HASH_ITER(hh, ctx->pages, e, tmp)
    {
        HASH_DEL(ctx->pages, e);
        free(e->key);
        free(e->body);
        free(e);
    }
    ctx->pages_bytes = 0;
}

bool sim_page_cached(sim_req *rq, const char *key, sim_sb *out)
{
    sim_ctx *ctx = rq->ctx;
    struct sim_page *e = NULL;
    bool hit = false;
    pthread_mutex_lock(&ctx->cache_mu);
    HASH_FIND_STR(ctx->pages, key, e);
    if (e && e->gen == ctx->gen) {
        sb_putn(out, e->body, e->len);
        hit = true;
    }
    pthread_mutex_unlock(&ctx->cache_mu);
    return hit;
}

void sim_page_keep(sim_req *rq, const char *key, const char *body, size_t len)
{
    sim_ctx *ctx = rq->ctx;
    pthread_mutex_lock(&ctx->cache_mu);
    struct sim_page *e = NULL;
    HASH_FIND_STR(ctx->pages, key, e);
    if (e) {
        HASH_DEL(ctx->pages, e);
        ctx->pages_bytes -= e->len;
        free(e->key);
        free(e->body);
        free(e);
    }
    if (ctx->pages_bytes + len > SIM_PAGES_MAX_BYTES)
        pages_clear(ctx);
    e = xcalloc(1, sizeof *e);
    e->key = xstrdup(key);
    e->gen = ctx->gen;
    e->body = xmalloc(len + 1);
    memcpy(e->body, body, len);
    e->body[len] = '\0';
    e->len = len;
    ctx->pages_bytes += len;
    HASH_ADD_KEYPTR(hh, ctx->pages, e->key, strlen(e->key), e);
    pthread_mutex_unlock(&ctx->cache_mu);
}

void sim_wrlock(sim_req *rq)
{
    sim_lock_exclusive(rq->ctx);
    if (rq->drop_write && !rq->snapshot)
        rq->snapshot = sim_tenant_dump(rq->ctx->t);
}

void sim_wrunlock(sim_req *rq)
{
    sim_ctx *ctx = rq->ctx;
    if (rq->snapshot) {
        /* drop_write: put back the tenant as it was when this request took the lock. The
         * snapshot was produced by this very tenant, so loading it cannot fail. */
        char err[256];
        sim_tenant *nt =
            sim_tenant_load(ctx->api, rq->snapshot, ctx->t->tenant_id, err, sizeof err);
        if (nt) {
            json_object_put(nt->factory);
            nt->factory = ctx->t->factory;
            ctx->t->factory = NULL;
            /* --lag is in memory, not in the state: the restored roles keep theirs. */
            for (size_t i = 0; i < ctx->t->nroles; i++) {
                sim_role *old = ctx->t->roles[i], *r = sim_role_find(nt, old->id);
                if (r && old->visible_ms)
                    r->visible_ms = old->visible_ms;
            }
            sim_tenant_free(ctx->t);
            ctx->t = nt;
        } else {
            fprintf(stderr, "tenantsim: drop_write restore failed: %s\n", err);
        }
        json_object_put(rq->snapshot);
        rq->snapshot = NULL;
    }
    pthread_rwlock_unlock(&ctx->lock);
}

/* ---- error bodies ------------------------------------------------------------------------- */

const char *genesys_code_for_status(unsigned status)
{
    switch (status) {
    case 400:
        return "bad.request";
    case 401:
        return "bad.credentials";
    case 403:
        return "missing.permissions";
    case 404:
        return "not.found";
    case 405:
        return "method.not.allowed";
    case 409:
        return "general.conflict";
    case 413:
        return "request.entity.too.large";
    case 415:
        return "unsupported.media.type";
    case 429:
        return "too.many.requests.retry.after";
    case 500:
        return "internal.server.error";
    case 502:
        return "bad.gateway";
    case 503:
        return "service.unavailable";
    case 504:
        return "request.timeout";
    default:
        return status >= 500 ? "internal.server.error" : "bad.request";
    }
}

void genesys_error(sim_req *rq, sim_reply *rp, unsigned status, const char *code, const char *fmt,
                   ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rp->status = status;
    rp->has_body = true;
    rp->body.len = 0;
    sb_puts(&rp->body, "{\"message\":");
    sb_json_str(&rp->body, msg);
    sb_puts(&rp->body, ",\"code\":");
    sb_json_str(&rp->body, code);
    sb_printf(&rp->body, ",\"status\":%u,\"contextId\":\"%s\",\"details\":[],\"errors\":[]}",
              status, rq->corr_id);
}

void identity_error(sim_req *rq, sim_reply *rp, unsigned status, const char *error,
                    const char *reason, const char *resolution)
{
    rp->status = status;
    rp->has_body = true;
    rp->body.len = 0;
    sb_printf(&rp->body, "{\"OperationId\":\"%s\",\"Error\":", rq->corr_id);
    sb_json_str(&rp->body, error);
    sb_puts(&rp->body, ",\"Reason\":");
    sb_json_str(&rp->body, reason);
    sb_puts(&rp->body, ",\"Resolution\":");
    sb_json_str(&rp->body, resolution);
    sb_putc(&rp->body, '}');
}

static void platform_error(sim_req *rq, sim_reply *rp, unsigned status)
{
    if (rq->ctx->api == SIM_GENESYS) {
        if (status == 429)
            genesys_error(rq, rp, status, "too.many.requests.retry.after",
                          "Rate limit exceeded the maximum. Retry the request later");
        else
            genesys_error(rq, rp, status, genesys_code_for_status(status),
                          "The requested operation failed with status %u", status);
    } else if (status == 401) {
        rp->status = 401;
        rp->has_body = false;
        reply_header(rp, "WWW-Authenticate", "Bearer");
    } else {
        char reason[96];
        snprintf(reason, sizeof reason, "The request failed with status %u.", status);
        identity_error(rq, rp, status, "The request could not be completed.", reason,
                       "Retry the request later.");
    }
}

/* ---- tokens and rate limit ---------------------------------------------------------------- */

static bool client_ok(sim_ctx *ctx, const char *id, const char *secret)
{
    if (!id || !secret)
        return false;
    for (size_t i = 0; i < ctx->nclients; i++)
        if (strcmp(ctx->clients[i].id, id) == 0 && strcmp(ctx->clients[i].secret, secret) == 0)
            return true;
    return false;
}

static char *issue_token(sim_ctx *ctx)
{
    sim_token *tk = xcalloc(1, sizeof *tk);
    size_t off = 0;
    if (ctx->token_realm) /* "realm." then the random part, within the fixed-size token */
        off = (size_t)snprintf(tk->tok, SIM_TOKEN_REALM_MAX + 2, "%s.", ctx->token_realm);
    sim_random_hex(tk->tok + off, 64);
    uint64_t now = sim_mono_ms();
    tk->expires_ms = now + (uint64_t)ctx->token_ttl_ms;
    tk->window_start = now;
    pthread_mutex_lock(&ctx->tok_mu);
    /* Keep the table bounded for long benchmark runs: drop expired tokens now and then. */
    if (HASH_COUNT(ctx->tokens) > 10000) {
        sim_token *e, *tmp;
        HASH_ITER(hh, ctx->tokens, e, tmp)
        {
            if (e->expires_ms <= now) {
                HASH_DEL(ctx->tokens, e);
                free(e);
            }
        }
    }
    HASH_ADD_STR(ctx->tokens, tok, tk);
    pthread_mutex_unlock(&ctx->tok_mu);
    return xstrdup(tk->tok);
}

/* Parse an application/x-www-form-urlencoded body into decoded key/value pairs. */
static size_t parse_form(const char *body, size_t len, sim_qarg **out)
{
    char *copy = xstrndup(body ? body : "", len);
    size_t n = 0, cap = 0;
    sim_qarg *v = NULL;
    char *save = NULL;
    for (char *tok = strtok_r(copy, "&", &save); tok; tok = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(tok, '=');
        if (eq)
            *eq++ = '\0';
        sim_form_decode(tok);
        if (eq)
            sim_form_decode(eq);
        util_grow((void **)&v, &cap, n + 1, sizeof *v);
        v[n].key = xstrdup(tok);
        v[n].val = xstrdup(eq ? eq : "");
        n++;
    }
    free(copy);
    *out = v;
    return n;
}

static const char *form_get(sim_qarg *f, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(f[i].key, key) == 0)
            return f[i].val;
    return NULL;
}

static void free_args(sim_qarg *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(a[i].key);
        free(a[i].val);
    }
    free(a);
}

/* Client id and secret from "Authorization: Basic ..." (new strings) or false. */
static bool basic_auth(const char *hdr, char **id, char **secret)
{
    if (!hdr || strncasecmp(hdr, "Basic ", 6) != 0)
        return false;
    const char *p = hdr + 6;
    while (*p == ' ')
        p++;
    char *dec = sim_b64_decode(p);
    if (!dec)
        return false;
    char *colon = strchr(dec, ':');
    if (!colon) {
        free(dec);
        return false;
    }
    *colon = '\0';
    *id = xstrdup(dec);
    *secret = xstrdup(colon + 1);
    util_free_secret(dec);
    return true;
}

static void token_endpoint(sim_req *rq, sim_reply *rp)
{
    sim_ctx *ctx = rq->ctx;
    const bool g = ctx->api == SIM_GENESYS;
    sim_qarg *form = NULL;
    size_t nform = parse_form(rq->body, rq->body_len, &form);
    char *id = NULL, *secret = NULL;
    if (!basic_auth(rq->authorization, &id, &secret) && !g) {
        id = xstrdup(form_get(form, nform, "client_id"));
        secret = xstrdup(form_get(form, nform, "client_secret"));
    }
    const char *grant = form_get(form, nform, "grant_type");
    if (!grant || strcmp(grant, "client_credentials") != 0) {
        reply_json(rp, 400,
                   g ? "{\"error\":\"unsupported_grant_type\",\"description\":\"grant type not "
                       "supported\",\"error_description\":\"grant type not supported\"}"
                     : "{\"error\":\"unsupported_grant_type\"}");
    } else if (!client_ok(ctx, id, secret)) {
        if (g)
            reply_json(rp, 401,
                       "{\"error\":\"invalid_client\",\"description\":\"client not found or bad "
                       "credentials\",\"error_description\":\"client not found or bad "
                       "credentials\"}");
        else
            reply_json(rp, 400, "{\"error\":\"invalid_client\"}");
    } else {
        char *tok = issue_token(ctx);
        rp->status = 200;
        rp->has_body = true;
        sb_printf(&rp->body,
                  "{\"access_token\":\"%s\",\"token_type\":\"%s\",\"expires_in\":%lld%s}", tok,
                  g ? "bearer" : "Bearer", (long long)(ctx->token_ttl_ms / 1000),
                  g ? "" : ",\"scope\":\"ocsapi\"");
        free(tok);
    }
    util_free_secret(secret);
    free(id);
    free_args(form, nform);
}

static void discovery(sim_req *rq, sim_reply *rp)
{
    sim_sb base = {0};
    sb_printf(&base, "%s://%s", rq->ctx->tls ? "https" : "http", rq->host ? rq->host : "127.0.0.1");
    sim_sb *b = &rp->body;
    rp->status = 200;
    rp->has_body = true;
    const char *paths[][2] = {{"issuer", "/identity"},
                              {"authorization_endpoint", "/identity/connect/authorize"},
                              {"token_endpoint", "/identity/connect/token"},
                              {"userinfo_endpoint", "/identity/connect/userinfo"},
                              {"jwks_uri", "/identity/.well-known/openid-configuration/jwks"}};
    sb_putc(b, '{');
    for (size_t i = 0; i < UTIL_ARRAY_LEN(paths); i++) {
        sim_sb u = {0};
        sb_printf(&u, "%s%s", base.buf, paths[i][1]);
        sb_printf(b, "%s\"%s\":", i ? "," : "", paths[i][0]);
        sb_json_str(b, u.buf);
        sb_free(&u);
    }
    sb_puts(b, ",\"grant_types_supported\":[\"client_credentials\",\"authorization_code\","
               "\"refresh_token\"],\"scopes_supported\":[\"openid\",\"ocsapi\"],"
               "\"response_types_supported\":[\"code\"],"
               "\"token_endpoint_auth_methods_supported\":[\"client_secret_basic\","
               "\"client_secret_post\"]}");
    sb_free(&base);
}

enum auth_result { AUTH_OK, AUTH_MISSING, AUTH_BAD, AUTH_LIMITED };

typedef struct rate_info {
    bool known;
    long count;
    long reset_s;
} rate_info;

static enum auth_result check_bearer(sim_ctx *ctx, const char *hdr, rate_info *ri)
{
    if (!hdr || strncasecmp(hdr, "Bearer ", 7) != 0)
        return AUTH_MISSING;
    const char *tok = hdr + 7;
    while (*tok == ' ')
        tok++;
    if (!*tok)
        return AUTH_MISSING;
    enum auth_result res = AUTH_BAD;
    uint64_t now = sim_mono_ms();
    pthread_mutex_lock(&ctx->tok_mu);
    sim_token *tk = NULL;
    HASH_FIND_STR(ctx->tokens, tok, tk);
    size_t rl = ctx->token_realm ? strlen(ctx->token_realm) : 0;
    if (!tk && rl && strncmp(tok, ctx->token_realm, rl) == 0 && tok[rl] == '.' &&
        strlen(tok) < sizeof tk->tok) {
        /* issued by a peer of the realm (the same service behind another host): adopt it */
        tk = xcalloc(1, sizeof *tk);
        snprintf(tk->tok, sizeof tk->tok, "%s", tok);
        tk->expires_ms = now + (uint64_t)ctx->token_ttl_ms;
        tk->window_start = now;
        HASH_ADD_STR(ctx->tokens, tok, tk);
    }
    if (tk && tk->expires_ms > now) {
        /* Fixed window per token: 60 s (or the --rate-limit unit) from its first request. */
        uint64_t window = (uint64_t)(ctx->rate_limit > 0 ? ctx->rate_window_ms : 60000);
        if (now - tk->window_start >= window) {
            tk->window_start = now;
            tk->count = 0;
        }
        tk->count++;
        ri->known = true;
        ri->count = tk->count;
        uint64_t left = tk->window_start + window - now;
        ri->reset_s = (long)((left + 999) / 1000);
        if (ri->reset_s < 1)
            ri->reset_s = 1;
        res = ctx->rate_limit > 0 && tk->count > ctx->rate_limit ? AUTH_LIMITED : AUTH_OK;
    }
    pthread_mutex_unlock(&ctx->tok_mu);
    return res;
}

/* ---- faults -------------------------------------------------------------------------------- */

static void fault_free(sim_fault *f)
{
    free(f->method);
    free(f->path);
    json_object_put(f->src);
}

/* The fault that fires for this request, copied into *out; false when none does. */
static bool fault_pick(sim_ctx *ctx, const char *method, const char *path, sim_fault *out)
{
    bool fire = false;
    pthread_mutex_lock(&ctx->f_mu);
    for (size_t i = 0; i < ctx->nfaults; i++) {
        sim_fault *f = &ctx->faults[i];
        if (f->method && strcasecmp(f->method, method) != 0)
            continue;
        if (!sim_glob(f->path, path))
            continue;
        if (f->times > 0 && f->fired >= f->times)
            continue; /* spent: later rules may still match */
        f->seen++;
        if (f->seen > f->skip && (f->probability >= 1.0 || sim_random01() < f->probability)) {
            f->fired++;
            *out = *f;
            fire = true;
        }
        break;
    }
    pthread_mutex_unlock(&ctx->f_mu);
    return fire;
}

static bool fault_parse(json_object *o, sim_fault *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    f->probability = 1.0;
    f->retry_after = -1;
    if (!json_object_is_type(o, json_type_object)) {
        snprintf(err, errlen, "a fault rule must be an object");
        return false;
    }
    static const char *actions[] = {"status",  "reset",    "stall",
                                    "garbage", "truncate", "drop_write"};
    const char *a = sim_json_str(o, "action");
    for (size_t i = 0; a && i < UTIL_ARRAY_LEN(actions); i++)
        if (strcmp(a, actions[i]) == 0)
            f->action = (int)i + 1;
    if (!f->action) {
        snprintf(err, errlen,
                 "action must be one of status, reset, stall, garbage, truncate, "
                 "drop_write");
        return false;
    }
    json_object *v;
    const char *m = sim_json_str(o, "method");
    if (m && strcmp(m, "*") != 0)
        f->method = xstrdup(m);
    const char *p = sim_json_str(o, "path");
    f->path = xstrdup(p ? p : "*");
#define INTFIELD(name, dst, dflt)                                                                  \
    do {                                                                                           \
        dst = dflt;                                                                                \
        if (json_object_object_get_ex(o, name, &v) && v) {                                         \
            if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0) {          \
                snprintf(err, errlen, "%s must be a non-negative integer", name);                  \
                goto fail;                                                                         \
            }                                                                                      \
            dst = (long)json_object_get_int64(v);                                                  \
        }                                                                                          \
    } while (0)
    long status;
    INTFIELD("skip", f->skip, 0);
    INTFIELD("times", f->times, 0);
    INTFIELD("status", status, 503);
    INTFIELD("retry_after", f->retry_after, -1);
    INTFIELD("stall_ms", f->stall_ms, 5000);
#undef INTFIELD
    if (status < 100 || status > 599) {
        snprintf(err, errlen, "status must be an HTTP status code");
        goto fail;
    }
    f->status = (unsigned)status;
    if (json_object_object_get_ex(o, "probability", &v) && v) {
        if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)) {
            snprintf(err, errlen, "probability must be a number");
            goto fail;
        }
        f->probability = json_object_get_double(v);
        if (f->probability < 0 || f->probability > 1) {
            snprintf(err, errlen, "probability must be within 0..1");
            goto fail;
        }
    }
    f->src = json_object_get(o);
    return true;
fail:
    free(f->method);
    free(f->path);
    return false;
}

/* ---- stats --------------------------------------------------------------------------------- */

static void count_inc(sim_count **h, const char *key)
{
    sim_count *c = NULL;
    HASH_FIND_STR(*h, key, c);
    if (!c) {
        c = xcalloc(1, sizeof *c);
        c->key = xstrdup(key);
        HASH_ADD_KEYPTR(hh, *h, c->key, strlen(c->key), c);
    }
    c->n++;
}

static void count_clear(sim_count **h)
{
    sim_count *c, *tmp;
    HASH_ITER(hh, *h, c, tmp)
    {
        HASH_DEL(*h, c);
        free(c->key);
        free(c);
    }
}

static void stats_record(sim_ctx *ctx, const char *method, const char *tmpl, unsigned status,
                         bool api_write)
{
    char key[320];
    snprintf(key, sizeof key, "%s %s", method, tmpl);
    pthread_mutex_lock(&ctx->st_mu);
    ctx->st_total++;
    if (api_write)
        ctx->st_writes++;
    count_inc(&ctx->st_route, key);
    if (status) {
        char s[16];
        snprintf(s, sizeof s, "%u", status);
        count_inc(&ctx->st_status, s);
    }
    pthread_mutex_unlock(&ctx->st_mu);
}

static void stats_json(sim_ctx *ctx, sim_sb *b)
{
    pthread_mutex_lock(&ctx->st_mu);
    sb_printf(b, "{\"total\":%ld,\"writes\":%ld,\"by_route\":{", ctx->st_total, ctx->st_writes);
    sim_count *c, *tmp;
    bool first = true;
    HASH_ITER(hh, ctx->st_route, c, tmp)
    {
        if (!first)
            sb_putc(b, ',');
        first = false;
        sb_json_str(b, c->key);
        sb_printf(b, ":%ld", c->n);
    }
    sb_puts(b, "},\"by_status\":{");
    first = true;
    HASH_ITER(hh, ctx->st_status, c, tmp)
    {
        if (!first)
            sb_putc(b, ',');
        first = false;
        sb_json_str(b, c->key);
        sb_printf(b, ":%ld", c->n);
    }
    sb_printf(b, "},\"max_in_flight\":%ld,\"connections\":%ld}", ctx->max_in_flight,
              ctx->st_connections);
    pthread_mutex_unlock(&ctx->st_mu);
}

/* ---- /_sim control routes ------------------------------------------------------------------ */

static bool is_loopback(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return false;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return true;
        return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

static void sim_msg(sim_reply *rp, unsigned status, const char *msg)
{
    rp->status = status;
    rp->has_body = true;
    rp->body.len = 0;
    sb_puts(&rp->body, "{\"error\":");
    sb_json_str(&rp->body, msg);
    sb_putc(&rp->body, '}');
}

static void control_route(sim_req *rq, sim_reply *rp)
{
    sim_ctx *ctx = rq->ctx;
    const char *m = rq->method, *p = rq->path;
    if (strcmp(p, "/_sim/state") == 0 && strcmp(m, "GET") == 0) {
        sim_lock_exclusive(ctx); /* dumping reads json-c objects: exclusive */
        json_object *st = sim_tenant_dump(ctx->t);
        pthread_rwlock_unlock(&ctx->lock);
        rp->status = 200;
        rp->has_body = true;
        sb_puts(&rp->body, json_object_to_json_string_ext(st, JSON_C_TO_STRING_PLAIN |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(st);
    } else if (strcmp(p, "/_sim/state") == 0 && strcmp(m, "PUT") == 0) {
        json_object *o = sim_json_parse(rq->body, rq->body_len);
        char err[512];
        sim_tenant *nt =
            o ? sim_tenant_load(ctx->api, o, ctx->tenant_id_opt, err, sizeof err) : NULL;
        if (!o)
            sim_msg(rp, 400, "body is not valid JSON");
        else if (!nt)
            sim_msg(rp, 400, err);
        else {
            sim_lock_exclusive(ctx);
            sim_tenant *old = ctx->t;
            ctx->t = nt;
            pthread_rwlock_unlock(&ctx->lock);
            sim_tenant_free(old);
            rp->status = 200;
            rp->has_body = true;
            sb_printf(&rp->body, "{\"roles\":%zu,\"users\":%zu}", nt->nroles, nt->nusers);
        }
        json_object_put(o);
    } else if (strcmp(p, "/_sim/stats") == 0 && strcmp(m, "GET") == 0) {
        rp->status = 200;
        rp->has_body = true;
        stats_json(ctx, &rp->body);
    } else if (strcmp(p, "/_sim/stats") == 0 && strcmp(m, "DELETE") == 0) {
        pthread_mutex_lock(&ctx->st_mu);
        ctx->st_total = ctx->st_writes = ctx->st_connections = 0;
        count_clear(&ctx->st_route);
        count_clear(&ctx->st_status);
        ctx->max_in_flight = atomic_load(&ctx->in_flight);
        pthread_mutex_unlock(&ctx->st_mu);
        rp->status = 204;
    } else if (strcmp(p, "/_sim/faults") == 0 && strcmp(m, "POST") == 0) {
        json_object *o = sim_json_parse(rq->body, rq->body_len);
        if (!o) {
            sim_msg(rp, 400, "body is not valid JSON");
            return;
        }
        size_t n = json_object_is_type(o, json_type_array) ? json_object_array_length(o) : 1;
        sim_fault *nf = xcalloc(n, sizeof *nf);
        char err[256];
        for (size_t i = 0; i < n; i++) {
            json_object *e =
                json_object_is_type(o, json_type_array) ? json_object_array_get_idx(o, i) : o;
            if (!fault_parse(e, &nf[i], err, sizeof err)) {
                for (size_t k = 0; k < i; k++)
                    fault_free(&nf[k]);
                free(nf);
                json_object_put(o);
                sim_msg(rp, 400, err);
                return;
            }
        }
        pthread_mutex_lock(&ctx->f_mu);
        util_grow((void **)&ctx->faults, &ctx->fcap, ctx->nfaults + n, sizeof *ctx->faults);
        memcpy(&ctx->faults[ctx->nfaults], nf, n * sizeof *nf);
        ctx->nfaults += n;
        size_t total = ctx->nfaults;
        pthread_mutex_unlock(&ctx->f_mu);
        free(nf);
        json_object_put(o);
        rp->status = 200;
        rp->has_body = true;
        sb_printf(&rp->body, "{\"added\":%zu,\"rules\":%zu}", n, total);
    } else if (strcmp(p, "/_sim/faults") == 0 && strcmp(m, "GET") == 0) {
        rp->status = 200;
        rp->has_body = true;
        sb_putc(&rp->body, '[');
        pthread_mutex_lock(&ctx->f_mu);
        for (size_t i = 0; i < ctx->nfaults; i++) {
            sim_fault *f = &ctx->faults[i];
            if (i)
                sb_putc(&rp->body, ',');
            /* f->src is only ever touched under f_mu, so serialising it here is safe. */
            sb_printf(&rp->body, "{\"rule\":%s,\"seen\":%ld,\"fired\":%ld}",
                      json_object_to_json_string_ext(f->src, JSON_C_TO_STRING_PLAIN), f->seen,
                      f->fired);
        }
        pthread_mutex_unlock(&ctx->f_mu);
        sb_putc(&rp->body, ']');
    } else if (strcmp(p, "/_sim/faults") == 0 && strcmp(m, "DELETE") == 0) {
        pthread_mutex_lock(&ctx->f_mu);
        for (size_t i = 0; i < ctx->nfaults; i++)
            fault_free(&ctx->faults[i]);
        ctx->nfaults = 0;
        pthread_mutex_unlock(&ctx->f_mu);
        rp->status = 204;
    } else {
        sim_msg(rp, 404,
                "unknown control route (GET/PUT /_sim/state, GET/DELETE /_sim/stats, "
                "GET/POST/DELETE /_sim/faults)");
    }
}

/* ---- the pipeline -------------------------------------------------------------------------- */

/* The path keeps %2F (and %25) so an encoded '/' inside an id cannot split a segment; route
 * parameters and query values are decoded the rest of the way (sim.h). */
static size_t unescape_keep_slash(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return sim_unescape_keep_slash(s);
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    sim_req *rq = cls;
    rq->args = xrealloc(rq->args, (rq->nargs + 1) * sizeof *rq->args);
    rq->args[rq->nargs].key = sim_pct_decode(key ? key : "", key ? strlen(key) : 0);
    rq->args[rq->nargs].val = value ? sim_pct_decode(value, strlen(value)) : NULL;
    rq->nargs++;
    return MHD_YES;
}

typedef struct trunc_body {
    char *buf;
    size_t send; /* bytes actually sent before the stream is cut */
} trunc_body;

static ssize_t trunc_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    trunc_body *tb = cls;
    if (pos >= tb->send)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = tb->send - (size_t)pos;
    if (n > max)
        n = max;
    memcpy(buf, tb->buf + pos, n);
    return (ssize_t)n;
}

static void trunc_free(void *cls)
{
    trunc_body *tb = cls;
    free(tb->buf);
    free(tb);
}

static bool is_api_path(const char *p)
{
    return strncmp(p, "/api/", 5) == 0;
}

static const char *route_template(sim_ctx *ctx, const char *method, const char *path)
{
    if (ctx->api == SIM_GENESYS) {
        if (strcmp(path, "/oauth/token") == 0)
            return "/oauth/token";
        return genesys_template(method, path);
    }
    if (strcasecmp(path, "/identity/connect/token") == 0)
        return "/identity/connect/token";
    if (strcasecmp(path, "/identity/.well-known/openid-configuration") == 0)
        return "/identity/.well-known/openid-configuration";
    return identity_template(method, path);
}

static void serve_api(sim_req *rq, sim_reply *rp, rate_info *ri)
{
    sim_ctx *ctx = rq->ctx;
    const bool g = ctx->api == SIM_GENESYS;
    if (g && strcmp(rq->path, "/oauth/token") == 0) {
        if (strcmp(rq->method, "POST") == 0)
            token_endpoint(rq, rp);
        else
            genesys_error(rq, rp, 404, "not.found", "Resource not found");
        return;
    }
    if (!g && strcasecmp(rq->path, "/identity/connect/token") == 0) {
        if (strcmp(rq->method, "POST") == 0)
            token_endpoint(rq, rp);
        else
            identity_error(rq, rp, 405, "Method not allowed.", "Use POST.", "Use POST.");
        return;
    }
    if (!g && strcasecmp(rq->path, "/identity/.well-known/openid-configuration") == 0) {
        discovery(rq, rp);
        return;
    }
    if (!is_api_path(rq->path)) {
        if (g)
            genesys_error(rq, rp, 404, "not.found", "Resource not found");
        else
            identity_error(rq, rp, 404, "The resource was not found.", "Unknown path.",
                           "Check the request URL.");
        return;
    }
    switch (check_bearer(ctx, rq->authorization, ri)) {
    case AUTH_MISSING:
        if (g)
            genesys_error(rq, rp, 401, "authentication.required",
                          "No authentication bearer token specified in authorization header.");
        else
            platform_error(rq, rp, 401);
        return;
    case AUTH_BAD:
        if (g)
            genesys_error(rq, rp, 401, "bad.credentials", "Invalid login credentials.");
        else
            platform_error(rq, rp, 401);
        return;
    case AUTH_LIMITED: {
        char ra[32];
        snprintf(ra, sizeof ra, "%ld", ri->reset_s);
        reply_header(rp, "Retry-After", ra);
        if (g)
            genesys_error(rq, rp, 429, "too.many.requests.retry.after",
                          "Rate limit exceeded the maximum. Retry the request in [%ld] seconds",
                          ri->reset_s);
        else
            identity_error(rq, rp, 429, "Too many requests.",
                           "The client exceeded the request rate limit.",
                           "Retry after the number of seconds in the Retry-After header.");
        return;
    }
    case AUTH_OK:
        break;
    }
    if (g)
        genesys_route(rq, rp);
    else
        identity_route(rq, rp);
}

static enum MHD_Result send_reply(struct MHD_Connection *c, sim_req *rq, sim_reply *rp,
                                  bool truncate)
{
    struct MHD_Response *resp;
    size_t len = rp->has_body ? rp->body.len : 0;
    if (truncate) {
        trunc_body *tb = xcalloc(1, sizeof *tb);
        tb->buf = sb_steal(&rp->body);
        tb->send = len / 2;
        /* Declare at least a few bytes more than we send, even for an empty body. */
        uint64_t declared = len > tb->send ? len : tb->send + 16;
        resp = MHD_create_response_from_callback(declared, 4096, trunc_read, tb, trunc_free);
        if (rp->status == 204 || rp->status == 304)
            rp->status = 200;
    } else if (len) {
        resp = MHD_create_response_from_buffer(len, sb_steal(&rp->body), MHD_RESPMEM_MUST_FREE);
    } else {
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    }
    if (!resp)
        return MHD_NO;
    bool json_ct =
        rq->ctx->api == SIM_GENESYS || rp->has_body || strncmp(rq->path, "/_sim", 5) == 0;
    if (json_ct)
        MHD_add_response_header(resp, "Content-Type", "application/json");
    for (int i = 0; i < rp->nhdr; i++)
        MHD_add_response_header(resp, rp->hname[i], rp->hval[i]);
    enum MHD_Result r = MHD_queue_response(c, rp->status ? rp->status : 500, resp);
    MHD_destroy_response(resp);
    return r;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --request-log (simulator.md 3b): when the request arrived (before --latency), when its
 * answer was decided (its effect, for a write, is in the state by then), what it was, and the
 * fencing header rolesyncd sends under coordination, so a test can check every write against
 * etcd's history of the job's key. One line per request, flushed: it survives a kill -9 of
 * anything but tenantsim itself. */
static void reqlog_line(sim_ctx *ctx, struct MHD_Connection *c, const char *method, const char *url,
                        double t0, long status, bool write)
{
    sim_sb sb = {0};
    sb_printf(&sb, "{\"t0\":%.6f,\"t1\":%.6f,\"method\":", t0, wall_now());
    sb_json_str(&sb, method);
    sb_puts(&sb, ",\"path\":");
    sb_json_str(&sb, url);
    sb_printf(&sb, ",\"status\":%ld,\"write\":%s,\"fence\":", status, write ? "true" : "false");
    sb_json_str(&sb, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Rolesyncd-Fence"));
    sb_puts(&sb, "}\n");
    pthread_mutex_lock(&ctx->reqlog_mu);
    fwrite(sb.buf, 1, sb.len, ctx->reqlog);
    fflush(ctx->reqlog);
    pthread_mutex_unlock(&ctx->reqlog_mu);
    sb_free(&sb);
}

static enum MHD_Result handle(sim_ctx *ctx, struct MHD_Connection *c, const char *url,
                              const char *method, conn_req *cr)
{
    const double t0 = wall_now();
    sim_req rq = {0};
    sim_reply rp = {0};
    enum MHD_Result ret;
    rq.ctx = ctx;
    rq.method = method;
    rq.path = url;
    rq.body = cr->body.buf;
    rq.body_len = cr->body.len;
    rq.head = strcmp(method, "HEAD") == 0;
    rq.is_write = strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
                  strcmp(method, "PATCH") == 0 || strcmp(method, "DELETE") == 0;
    rq.host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
    rq.authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    rq.content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, &rq);
    sim_guid(rq.corr_id);

    if (strncmp(url, "/_sim", 5) == 0 && (url[5] == '\0' || url[5] == '/')) {
        if (!is_loopback(c))
            sim_msg(&rp, 403, "control routes answer loopback clients only");
        else if (cr->too_big)
            sim_msg(&rp, 413, "body too large");
        else
            control_route(&rq, &rp);
        ret = send_reply(c, &rq, &rp, false);
        goto out;
    }

    sim_sleep(ctx, ctx->latency_ms);
    const char *tmpl = route_template(ctx, method, url);
    const bool api_write = rq.is_write && is_api_path(url);
    sim_fault f;
    bool truncate = false;
    rate_info ri = {0};
    if (fault_pick(ctx, method, url, &f)) {
        switch (f.action) {
        case SIM_F_RESET:
            stats_record(ctx, method, tmpl, 0, api_write);
            if (ctx->reqlog)
                reqlog_line(ctx, c, method, url, t0, 0, api_write);
            ret = MHD_NO; /* MHD closes the connection without a response */
            goto out;
        case SIM_F_STATUS:
            platform_error(&rq, &rp, f.status);
            if (f.retry_after >= 0) {
                char ra[32];
                snprintf(ra, sizeof ra, "%ld", f.retry_after);
                reply_header(&rp, "Retry-After", ra);
            }
            goto respond;
        case SIM_F_GARBAGE:
            rp.status = 200;
            rp.has_body = true;
            sb_puts(&rp.body, "<html><body>upstream proxy says hello {\"not\": json</body>");
            goto respond;
        case SIM_F_STALL:
            sim_sleep(ctx, f.stall_ms);
            break;
        case SIM_F_TRUNCATE:
            truncate = true;
            break;
        case SIM_F_DROP_WRITE:
            rq.drop_write = rq.is_write;
            break;
        }
    }
    if (cr->too_big) {
        platform_error(&rq, &rp, 413);
        goto respond;
    }
    serve_api(&rq, &rp, &ri);
    /* simulator.md 2: a dropped write answers 200 as if it succeeded (also where the route
     * would say 201 or 204); one that failed anyway keeps its error. */
    if (rq.drop_write && rp.status >= 200 && rp.status < 300)
        rp.status = 200;
respond:
    if (ctx->api == SIM_GENESYS) {
        char v[32];
        reply_header(&rp, "ININ-Correlation-Id", rq.corr_id);
        snprintf(v, sizeof v, "%ld",
                 ctx->rate_limit > 0 ? ctx->rate_limit : SIM_UNLIMITED_ADVERTISED);
        reply_header(&rp, "inin-ratelimit-allowed", v);
        snprintf(v, sizeof v, "%ld", ri.known ? ri.count : 0L);
        reply_header(&rp, "inin-ratelimit-count", v);
        snprintf(v, sizeof v, "%ld", ri.known ? ri.reset_s : 60L);
        reply_header(&rp, "inin-ratelimit-reset", v);
        reply_header(&rp, "Cache-Control", "no-cache, no-store, must-revalidate");
    } else {
        reply_header(&rp, "Operation-Id", rq.corr_id);
    }
    stats_record(ctx, method, tmpl, rp.status, api_write);
    if (ctx->reqlog)
        reqlog_line(ctx, c, method, url, t0, rp.status, api_write);
    ret = send_reply(c, &rq, &rp, truncate);
out:
    if (rq.snapshot)
        json_object_put(rq.snapshot);
    free_args(rq.args, rq.nargs);
    reply_free(&rp);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    sim_ctx *ctx = cls;
    conn_req *cr = *con_cls;
    if (!cr) {
        cr = xcalloc(1, sizeof *cr);
        *con_cls = cr;
        if (strncmp(url, "/_sim", 5) != 0) {
            long n = atomic_fetch_add(&ctx->in_flight, 1) + 1;
            cr->in_flight = true;
            pthread_mutex_lock(&ctx->st_mu);
            if (n > ctx->max_in_flight)
                ctx->max_in_flight = n;
            pthread_mutex_unlock(&ctx->st_mu);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t limit = strncmp(url, "/_sim", 5) == 0 ? SIM_MAX_BODY : SIM_MAX_API_BODY;
        if (cr->body.len + *upload_data_size > limit)
            cr->too_big = true;
        if (!cr->too_big)
            sb_putn(&cr->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    return handle(ctx, c, url, method, cr);
}

/* Counts the connections clients open, so tests can see whether they are reused. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    sim_ctx *ctx = cls;
    (void)c;
    (void)socket_context;
    if (code != MHD_CONNECTION_NOTIFY_STARTED)
        return;
    pthread_mutex_lock(&ctx->st_mu);
    ctx->st_connections++;
    pthread_mutex_unlock(&ctx->st_mu);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    (void)toe;
    sim_ctx *ctx = cls;
    conn_req *cr = *con_cls;
    if (!cr)
        return;
    if (cr->in_flight)
        atomic_fetch_sub(&ctx->in_flight, 1);
    sb_free(&cr->body);
    free(cr);
    *con_cls = NULL;
}

/* ---- life cycle ---------------------------------------------------------------------------- */

void sim_ctx_init(sim_ctx *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    /* Writers must not starve behind a steady stream of benchmark readers. */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&ctx->lock, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&ctx->tok_mu, NULL);
    pthread_mutex_init(&ctx->cache_mu, NULL);
    pthread_mutex_init(&ctx->st_mu, NULL);
    pthread_mutex_init(&ctx->f_mu, NULL);
    pthread_mutex_init(&ctx->reqlog_mu, NULL);
    pthread_mutex_init(&ctx->stop_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ctx->stop_cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&ctx->in_flight, 0);
}

void sim_ctx_free(sim_ctx *ctx)
{
    sim_tenant_free(ctx->t);
    ctx->t = NULL;
    pages_clear(ctx);
    sim_token *tk, *tmp;
    HASH_ITER(hh, ctx->tokens, tk, tmp)
    {
        HASH_DEL(ctx->tokens, tk);
        free(tk);
    }
    count_clear(&ctx->st_route);
    count_clear(&ctx->st_status);
    for (size_t i = 0; i < ctx->nfaults; i++)
        fault_free(&ctx->faults[i]);
    free(ctx->faults);
    for (size_t i = 0; i < ctx->nclients; i++) {
        free(ctx->clients[i].id);
        util_free_secret(ctx->clients[i].secret);
    }
    free(ctx->clients);
    free(ctx->tenant_id_opt);
    if (ctx->reqlog)
        fclose(ctx->reqlog);
    ctx->reqlog = NULL;
    free(ctx->token_realm);
    pthread_rwlock_destroy(&ctx->lock);
    pthread_mutex_destroy(&ctx->tok_mu);
    pthread_mutex_destroy(&ctx->cache_mu);
    pthread_mutex_destroy(&ctx->st_mu);
    pthread_mutex_destroy(&ctx->f_mu);
    pthread_mutex_destroy(&ctx->reqlog_mu);
    pthread_mutex_destroy(&ctx->stop_mu);
    pthread_cond_destroy(&ctx->stop_cv);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    fputs("tenantsim: mhd: ", stderr);
    vfprintf(stderr, fmt, ap);
}

struct MHD_Daemon *sim_server_start(sim_ctx *ctx, const char *listen, const char *cert_pem,
                                    const char *key_pem, unsigned *port, char *err, size_t errlen)
{
    /* HOST:PORT, [V6]:PORT */
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof host) {
        snprintf(err, errlen, "--listen wants HOST:PORT, got \"%s\"", listen);
        return NULL;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    long long p;
    if (!sim_parse_int(colon + 1, &p) || p < 0 || p > 65535) {
        snprintf(err, errlen, "bad port in --listen \"%s\"", listen);
        return NULL;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    char *h = host;
    size_t hl = strlen(h);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h[hl - 1] = '\0';
        h++;
    }
    if (strcmp(h, "") == 0 || strcmp(h, "localhost") == 0)
        h = "127.0.0.1";
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, h, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)p);
    } else if (inet_pton(AF_INET6, h, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)p);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, errlen, "--listen host must be a numeric IPv4/IPv6 address: \"%s\"", h);
        return NULL;
    }
    if (cert_pem) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            snprintf(err, errlen, "this libmicrohttpd has no TLS support");
            return NULL;
        }
        flags |= MHD_USE_TLS;
    }
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_SOCK_ADDR, 0, &ss},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, ctx},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, ctx},
        {MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)unescape_keep_slash, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, 4096, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, 120, NULL},
        {MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL},
        {cert_pem ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, (void *)cert_pem},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)key_pem},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_Daemon *d =
        MHD_start_daemon(flags, 0, NULL, NULL, on_request, ctx, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
                         NULL, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!d) {
        snprintf(err, errlen, "cannot listen on %s (address in use, or TLS setup failed)", listen);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    *port = di ? di->port : 0;
    return d;
}
