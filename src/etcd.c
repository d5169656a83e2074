/* etcd.c — etcd v3 JSON gateway messages and a client on the HTTP engine (etcd.h). */
#include "rolesync/etcd.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "rolesync/log.h"
#include "rolesync/util.h"

static const char *const PATHS[ETCD_NCALLS] = {
    "/v3/lease/grant", "/v3/lease/keepalive", "/v3/lease/revoke",
    "/v3/kv/range",    "/v3/kv/txn",          "/v3/auth/authenticate",
};

/* ---- base64 ---- */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *etcd_b64(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    char *out = xmalloc((n + 2) / 3 * 4 + 1), *o = out;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        *o++ = B64[v >> 18 & 63];
        *o++ = B64[v >> 12 & 63];
        *o++ = i + 1 < n ? B64[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? B64[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

static int b64_val(char c)
{
    const char *p = c ? strchr(B64, c) : NULL;
    return p ? (int)(p - B64) : -1;
}

int etcd_unb64(const char *s, char **out, size_t *outlen)
{
    size_t n = strlen(s);
    if (n % 4)
        return -1;
    char *buf = xmalloc(n / 4 * 3 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) {
            v[k] = s[i + k] == '=' && i + 4 == n && k >= 2 ? 0 : b64_val(s[i + k]);
            if (v[k] < 0 || (k == 3 && s[i + 2] == '=' && s[i + 3] != '=')) {
                free(buf);
                return -1;
            }
        }
        uint32_t x =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        buf[o++] = (char)(x >> 16);
        if (s[i + 2] != '=')
            buf[o++] = (char)(x >> 8 & 0xff);
        if (s[i + 3] != '=')
            buf[o++] = (char)(x & 0xff);
    }
    buf[o] = '\0';
    *out = buf;
    if (outlen)
        *outlen = o;
    return 0;
}

/* ---- encoders ---- */

static json_object *j_b64(const char *s)
{
    char *b = etcd_b64(s, strlen(s));
    json_object *o = json_object_new_string(b);
    free(b);
    return o;
}

/* The gateway takes 64-bit integers as decimal strings (JSON numbers lose precision above
 * 2^53, and lease ids are random 63-bit values). */
static json_object *j_i64(int64_t v)
{
    char b[32];
    snprintf(b, sizeof b, "%" PRId64, v);
    return json_object_new_string(b);
}

static char *render(json_object *o)
{
    char *s = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return s;
}

char *etcd_enc_grant(int64_t ttl_s)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "TTL", j_i64(ttl_s));
    return render(o);
}

char *etcd_enc_lease(int64_t id)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ID", j_i64(id));
    return render(o);
}

char *etcd_prefix_end(const char *prefix)
{
    size_t n = strlen(prefix);
    char *e = xstrdup(prefix);
    while (n > 0 && (unsigned char)e[n - 1] == 0xff)
        e[--n] = '\0';
    if (n > 0)
        e[n - 1] = (char)((unsigned char)e[n - 1] + 1);
    return e;
}

char *etcd_enc_range_prefix(const char *prefix)
{
    json_object *o = json_object_new_object();
    char *end = etcd_prefix_end(prefix);
    json_object_object_add(o, "key", j_b64(prefix));
    json_object_object_add(o, "range_end", j_b64(end));
    free(end);
    return render(o);
}

static json_object *put_op(const char *key, const char *value, int64_t lease)
{
    json_object *p = json_object_new_object(), *op = json_object_new_object();
    json_object_object_add(p, "key", j_b64(key));
    json_object_object_add(p, "value", j_b64(value));
    json_object_object_add(p, "lease", j_i64(lease));
    json_object_object_add(op, "request_put", p);
    return op;
}

static json_object *key_op(const char *what, const char *key)
{
    json_object *r = json_object_new_object(), *op = json_object_new_object();
    json_object_object_add(r, "key", j_b64(key));
    json_object_object_add(op, what, r);
    return op;
}

static json_object *compare(const char *key, const char *target, const char *field, int64_t v)
{
    json_object *c = json_object_new_object();
    json_object_object_add(c, "key", j_b64(key));
    json_object_object_add(c, "result", json_object_new_string("EQUAL"));
    json_object_object_add(c, "target", json_object_new_string(target));
    json_object_object_add(c, field, j_i64(v));
    return c;
}

static char *txn(json_object *cmp, json_object *success, json_object *failure)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "compare", cmp);
    json_object_object_add(o, "success", success);
    if (failure)
        json_object_object_add(o, "failure", failure);
    return render(o);
}

char *etcd_enc_put_if_absent(const char *key, const char *value, int64_t lease)
{
    json_object *cmp = json_object_new_array(), *ok = json_object_new_array(),
                *ko = json_object_new_array();
    json_object_array_add(cmp, compare(key, "CREATE", "create_revision", 0));
    json_object_array_add(ok, put_op(key, value, lease));
    json_object_array_add(ko, key_op("request_range", key));
    return txn(cmp, ok, ko);
}

char *etcd_enc_put(const char *key, const char *value, int64_t lease)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "key", j_b64(key));
    json_object_object_add(o, "value", j_b64(value));
    json_object_object_add(o, "lease", j_i64(lease));
    /* sent as a txn without compares, so every write goes through the same call */
    json_object *ok = json_object_new_array(), *op = json_object_new_object();
    json_object_object_add(op, "request_put", o);
    json_object_array_add(ok, op);
    return txn(json_object_new_array(), ok, NULL);
}

static json_object *held_compares(const char *key, int64_t create_revision, int64_t lease)
{
    json_object *cmp = json_object_new_array();
    json_object_array_add(cmp, compare(key, "CREATE", "create_revision", create_revision));
    json_object_array_add(cmp, compare(key, "LEASE", "lease", lease));
    return cmp;
}

char *etcd_enc_held(const char *key, int64_t create_revision, int64_t lease)
{
    json_object *ok = json_object_new_array(), *ko = json_object_new_array();
    json_object_array_add(ok, key_op("request_range", key));
    json_object_array_add(ko, key_op("request_range", key));
    return txn(held_compares(key, create_revision, lease), ok, ko);
}

char *etcd_enc_delete_if_held(const char *key, int64_t create_revision, int64_t lease)
{
    json_object *ok = json_object_new_array();
    json_object_array_add(ok, key_op("request_delete_range", key));
    return txn(held_compares(key, create_revision, lease), ok, NULL);
}

char *etcd_enc_auth(const char *user, const char *password)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "name", json_object_new_string(user));
    json_object_object_add(o, "password", json_object_new_string(password));
    char *s = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    /* json-c's copy of the password goes with the object; the rendered text is the caller's */
    json_object_put(o);
    return s;
}

/* ---- decoders ---- */

static json_object *jget(json_object *o, const char *k)
{
    json_object *v = NULL;
    if (o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, k, &v))
        return v;
    return NULL;
}

/* An int64 field, as the gateway writes it (a string) or as a number; absent = 0. */
static int i64_field(json_object *o, const char *k, int64_t *out)
{
    json_object *v = jget(o, k);
    *out = 0;
    if (!v)
        return 0;
    if (json_object_is_type(v, json_type_int)) {
        *out = json_object_get_int64(v);
        return 0;
    }
    if (!json_object_is_type(v, json_type_string))
        return -1;
    const char *s = json_object_get_string(v);
    char *end;
    long long x = strtoll(s, &end, 10);
    if (!*s || *end)
        return -1;
    *out = x;
    return 0;
}

static int b64_field(json_object *o, const char *k, char **out)
{
    json_object *v = jget(o, k);
    *out = NULL;
    if (!v) {
        *out = xstrdup("");
        return 0;
    }
    if (!json_object_is_type(v, json_type_string))
        return -1;
    return etcd_unb64(json_object_get_string(v), out, NULL);
}

static int decode_kvs(json_object *o, struct etcd_reply *r)
{
    json_object *kvs = jget(o, "kvs");
    if (!kvs)
        return 0;
    if (!json_object_is_type(kvs, json_type_array))
        return -1;
    size_t n = json_object_array_length(kvs);
    r->kvs = xcalloc(n ? n : 1, sizeof *r->kvs);
    for (size_t i = 0; i < n; i++) {
        json_object *kv = json_object_array_get_idx(kvs, i);
        struct etcd_kv *e = &r->kvs[r->nkvs++];
        if (b64_field(kv, "key", &e->key) || b64_field(kv, "value", &e->value) ||
            i64_field(kv, "lease", &e->lease) ||
            i64_field(kv, "create_revision", &e->create_revision) ||
            i64_field(kv, "mod_revision", &e->mod_revision))
            return -1;
    }
    return 0;
}

void etcd_reply_clear(struct etcd_reply *r)
{
    for (size_t i = 0; i < r->nkvs; i++) {
        free(r->kvs[i].key);
        free(r->kvs[i].value);
    }
    free(r->kvs);
    util_free_secret(r->token);
    memset(r, 0, sizeof *r);
}

int etcd_decode(enum etcd_call kind, const char *body, size_t len, struct etcd_reply *out)
{
    char err[256];
    memset(out, 0, sizeof *out);
    json_object *root = http_parse_json(body, len, err, sizeof err);
    if (!root) {
        snprintf(out->error, sizeof out->error, "unreadable etcd reply: %s", err);
        return -1;
    }
    json_object *o = root;
    int bad = 0;
    /* The keep-alive is a stream on the gateway: each message is wrapped in "result" (or
     * "error"). */
    if (kind == ETCD_KEEPALIVE) {
        if (jget(root, "error")) {
            etcd_decode_error(body, len, out);
            json_object_put(root);
            return -1;
        }
        if (jget(root, "result"))
            o = jget(root, "result");
    }
    bad |= i64_field(jget(o, "header"), "revision", &out->revision);
    switch (kind) {
    case ETCD_GRANT:
    case ETCD_KEEPALIVE:
        bad |= i64_field(o, "ID", &out->id);
        bad |= i64_field(o, "TTL", &out->ttl);
        if (!bad && kind == ETCD_GRANT && jget(o, "error")) {
            snprintf(out->error, sizeof out->error, "lease grant refused: %s",
                     json_object_get_string(jget(o, "error")));
            bad = 1;
        }
        break;
    case ETCD_RANGE:
        bad |= decode_kvs(o, out);
        break;
    case ETCD_TXN: {
        json_object *s = jget(o, "succeeded");
        out->succeeded = s && json_object_get_boolean(s);
        json_object *resp = jget(o, "responses");
        if (resp && json_object_is_type(resp, json_type_array)) {
            for (size_t i = 0; i < json_object_array_length(resp); i++) {
                json_object *rr = jget(json_object_array_get_idx(resp, i), "response_range");
                if (rr) {
                    bad |= decode_kvs(rr, out);
                    break;
                }
            }
        }
        break;
    }
    case ETCD_AUTH: {
        json_object *t = jget(o, "token");
        if (t && json_object_is_type(t, json_type_string))
            out->token = xstrdup(json_object_get_string(t));
        else
            bad = 1;
        break;
    }
    default:
        break;
    }
    json_object_put(root);
    if (bad) {
        if (!out->error[0])
            snprintf(out->error, sizeof out->error, "unexpected etcd reply to %s", PATHS[kind]);
        return -1;
    }
    out->ok = true;
    return 0;
}

void etcd_decode_error(const char *body, size_t len, struct etcd_reply *out)
{
    char err[256];
    json_object *root = http_parse_json(body, len, err, sizeof err);
    json_object *o = root, *e = jget(root, "error");
    if (e && json_object_is_type(e, json_type_object))
        o = e; /* the stream form: {"error": {"grpc_code", "message", ...}} */
    json_object *m = jget(o, "message");
    if (!m)
        m = jget(o, "error");
    int64_t code = 0;
    if (i64_field(o, "code", &code) != 0 || !code)
        i64_field(o, "grpc_code", &code);
    out->code = (int)code;
    if (m && json_object_is_type(m, json_type_string))
        http_clean_line(out->error, sizeof out->error, json_object_get_string(m),
                        strlen(json_object_get_string(m)));
    else
        http_error_message(body, len, out->error, sizeof out->error);
    json_object_put(root);
}

void etcd_explain_error(const char *endpoint, struct etcd_reply *r)
{
    if (r->code != 14 || strcmp(r->error, "connection closed") != 0 || !endpoint ||
        strncmp(endpoint, "https://", 8) != 0)
        return;
    snprintf(r->error, sizeof r->error,
             "connection closed: etcd's JSON gateway could not reach etcd's own gRPC service (with "
             "--client-cert-auth, etcd's server certificate must also allow clientAuth)");
}

/* ---- client ---- */

struct etcd_client {
    struct http_tenant **t; /* one per endpoint */
    char **endpoints;
    size_t n, cur;         /* endpoints; the one calls go to */
    char *user, *password; /* password: a secret */
    char *token;           /* from /v3/auth/authenticate; a secret */
    unsigned calls;        /* calls not yet ended */
    bool freed;            /* etcd_client_free called: no more callbacks */
};

struct call {
    struct etcd_client *c;
    enum etcd_call kind;
    char *body; /* a secret for ETCD_AUTH */
    etcd_cb cb;
    void *arg;
    size_t tries;      /* endpoints tried */
    bool reauthed;     /* the token was renewed once for this call */
    struct call *then; /* ETCD_AUTH: the call waiting for the token */
};

static void client_maybe_free(struct etcd_client *c)
{
    if (!c->freed || c->calls > 0)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->endpoints[i]);
    free(c->endpoints);
    free(c->t);
    free(c->user);
    util_free_secret(c->password);
    util_free_secret(c->token);
    free(c);
}

static void call_end(struct call *k, const struct etcd_reply *r)
{
    struct etcd_client *c = k->c;
    if (!c->freed && k->cb)
        k->cb(r, k->arg);
    if (k->kind == ETCD_AUTH)
        util_free_secret(k->body);
    else
        free(k->body);
    free(k);
    c->calls--;
    client_maybe_free(c);
}

static void send_call(struct call *k);

static void set_token(struct etcd_client *c, const char *token)
{
    util_free_secret(c->token);
    c->token = xstrdup(token);
    for (size_t i = 0; i < c->n; i++) {
        char *h = token ? xasprintf("Authorization: %s", token) : NULL;
        http_tenant_set_header(c->t[i], h);
        util_free_secret(h);
    }
}

/* Log in first, then send `k`. */
static void authenticate(struct call *k)
{
    struct etcd_client *c = k->c;
    struct call *a = xcalloc(1, sizeof *a);
    a->c = c;
    a->kind = ETCD_AUTH;
    a->body = etcd_enc_auth(c->user, c->password);
    a->then = k;
    c->calls++;
    send_call(a);
}

static void on_http(const struct http_result *res, void *arg)
{
    struct call *k = arg;
    struct etcd_client *c = k->c;
    struct etcd_reply r;

    memset(&r, 0, sizeof r);
    if (c->freed || res->outcome == HTTP_ERR_CANCELLED) {
        snprintf(r.error, sizeof r.error, "cancelled");
        if (k->then)
            call_end(k->then, &r);
        call_end(k, &r);
        return;
    }
    r.status = res->status;
    if (res->outcome == HTTP_OK) {
        etcd_decode(k->kind, res->body, res->body_len, &r);
        r.status = res->status;
    } else if (res->outcome == HTTP_ERR_STATUS) {
        etcd_decode_error(res->body, res->body_len, &r);
        etcd_explain_error(c->endpoints[c->cur], &r);
        r.status = res->status;
    } else {
        snprintf(r.error, sizeof r.error, "%s", res->error ? res->error : "no reply");
    }

    /* An invalid or expired token: log in again, once per call. */
    if (!r.ok && c->user && k->kind != ETCD_AUTH && !k->reauthed &&
        (r.code == 16 || res->status == 401)) {
        k->reauthed = true;
        etcd_reply_clear(&r);
        set_token(c, NULL);
        authenticate(k);
        return;
    }
    /* No answer from this endpoint (or it has no leader): the next one, each once. */
    bool unavailable = res->outcome == HTTP_ERR_TRANSPORT || res->status == 503 ||
                       res->status == 502 || res->status == 504 || r.code == 14;
    if (!r.ok && unavailable && k->tries < c->n) {
        log_info(NULL, "etcd endpoint failed, trying the next endpoint=%s error=%s",
                 c->endpoints[c->cur], r.error);
        c->cur = (c->cur + 1) % c->n;
        etcd_reply_clear(&r);
        send_call(k);
        return;
    }
    if (k->kind == ETCD_AUTH) {
        struct call *next = k->then;
        if (r.ok) {
            set_token(c, r.token);
            send_call(next);
        } else {
            struct etcd_reply e;
            memset(&e, 0, sizeof e);
            e.status = r.status;
            snprintf(e.error, sizeof e.error, "login as %s: %s", c->user, r.error);
            call_end(next, &e);
        }
        k->then = NULL;
        etcd_reply_clear(&r);
        call_end(k, &r);
        return;
    }
    call_end(k, &r);
    etcd_reply_clear(&r);
}

static void send_call(struct call *k)
{
    struct etcd_client *c = k->c;
    if (c->user && !c->token && k->kind != ETCD_AUTH) {
        authenticate(k);
        return;
    }
    k->tries++;
    http_request(c->t[c->cur], "POST", PATHS[k->kind], k->body, on_http, k);
}

void etcd_call(struct etcd_client *c, enum etcd_call kind, const char *body, etcd_cb cb, void *arg)
{
    struct call *k = xcalloc(1, sizeof *k);
    k->c = c;
    k->kind = kind;
    k->body = xstrdup(body);
    k->cb = cb;
    k->arg = arg;
    c->calls++;
    send_call(k);
}

const char *etcd_client_endpoint(const struct etcd_client *c)
{
    return c->endpoints[c->cur];
}

struct etcd_client *etcd_client_new(struct http_engine *e, const struct cfg_coord *cc,
                                    uint64_t timeout_ms, char *err, size_t errlen)
{
    struct etcd_client *c = xcalloc(1, sizeof *c);
    struct cfg_http h = {
        .timeout_ms = timeout_ms,
        .connect_timeout_ms = timeout_ms,
        .max_connections = 8,
        .rate_per_sec = 0,
        .ca_file = cc->ca_file,
        .retry_max_attempts = 1, /* failover to the next endpoint instead (on_http) */
        .retry_initial_delay_ms = 100,
        .retry_max_delay_ms = 100,
    };
    c->n = cc->endpoints.n;
    c->t = xcalloc(c->n ? c->n : 1, sizeof *c->t);
    c->endpoints = xcalloc(c->n ? c->n : 1, sizeof *c->endpoints);
    for (size_t i = 0; i < c->n; i++) {
        char name[32];
        snprintf(name, sizeof name, "etcd-%zu", i + 1);
        struct http_tenant_opts o = {.name = name,
                                     .auth = HTTP_AUTH_NONE,
                                     .base_url = cc->endpoints.v[i],
                                     .http = &h,
                                     .client_cert_file = cc->client_cert_file,
                                     .client_key_file = cc->client_key_file,
                                     .max_response_bytes = 16u << 20};
        c->endpoints[i] = xstrdup(cc->endpoints.v[i]);
        c->t[i] = http_tenant_new(e, &o, err, errlen);
        if (!c->t[i]) {
            c->freed = true;
            for (size_t k = 0; k < i; k++)
                http_tenant_free(c->t[k]);
            c->n = i + 1;
            client_maybe_free(c);
            return NULL;
        }
    }
    c->user = xstrdup(cc->username);
    c->password = xstrdup(cc->password);
    return c;
}

void etcd_client_free(struct etcd_client *c)
{
    if (!c)
        return;
    c->freed = true;
    for (size_t i = 0; i < c->n; i++)
        http_tenant_free(c->t[i]);
    client_maybe_free(c);
}
