/* http.c — libcurl multi on the libuv loop: tenants, tokens, queueing, rate limits, retries.
 *
 * Shape (anchors.md §3): curl tells us which sockets to watch (on_curl_socket) and when to call
 * it back (on_curl_timer); we watch with one uv_poll_t per socket and one uv_timer_t, and feed
 * readiness back with curl_multi_socket_action(). Finished transfers are collected by
 * collect_done(). Nothing calls curl from inside a curl callback, and nothing calls a user
 * callback from inside curl processing: every outcome is delivered from the request's own timer
 * on a later loop turn, so user code may submit, cancel or free anything from a callback.
 *
 * Memory: every struct that embeds a uv handle is freed in that handle's close callback, never
 * before. A tenant lives until its last request's timer has closed; the engine lives until its
 * last tenant is gone, then cleans the multi (which may still close sockets through
 * on_curl_socket) and closes its own timers.
 */
#include "rolesync/http.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>
#include <uthash.h>
#include <utlist.h>

#include "rolesync/auth.h"
#include "rolesync/backoff.h"
#include "rolesync/log.h"
#include "rolesync/ratelimit.h"
#include "rolesync/util.h"

#define MAX_REPLY_HEADERS 256
#define MAX_REPLY_HEADER_BYTES (64 * 1024)
#define MAX_CORRELATION_LEN 128
#define ERRMSG_LEN 512

/* ---- data ------------------------------------------------------------------------------ */

enum xfer_kind { XFER_API, XFER_TOKEN };

/* One attempt on the wire, and the reply it produced (kept until the next attempt). */
struct xfer {
    enum xfer_kind kind;
    void *owner;                  /* struct http_request or struct http_tenant */
    CURL *easy;                   /* non-NULL while added to the multi */
    struct curl_slist *req_hdrs;  /* may carry Authorization: wiped before freeing */
    char errbuf[CURL_ERROR_SIZE]; /* curl's detail for a transport error */
    char *body;                   /* reply body, NUL-terminated, or NULL */
    size_t len, cap;              /* bytes in body / allocated */
    size_t max_body;              /* cap from the tenant */
    bool too_large;               /* the write callback refused more data */
    bool secret_body;             /* wipe body when freed (token replies) */
    struct http_header *hdrs;     /* reply headers; name points at one block "name\0value\0" */
    size_t nhdrs, caphdrs;
    size_t hdr_bytes; /* sum of stored header lines, bounded */
    bool gated;       /* the owner's gate is asked again once the connection is ready */
};

enum req_state {
    REQ_QUEUED,    /* in the tenant's queue, waiting for a slot, a token or the rate limiter */
    REQ_RUNNING,   /* an attempt is on the multi */
    REQ_BACKOFF,   /* waiting on its timer before going back to the queue */
    REQ_DONE,      /* outcome decided, delivery due on its timer */
    REQ_DELIVERED, /* callback called, timer closing */
};

struct http_request {
    struct http_tenant *t;
    uv_timer_t timer; /* backoff waits and deferred delivery */
    enum req_state state;
    struct http_request *qprev, *qnext; /* tenant queue (REQ_QUEUED only) */
    struct http_request *lprev, *lnext; /* tenant's live requests */
    char *method, *path, *url, *body;
    http_done_cb cb;
    void *arg;
    unsigned attempts;     /* attempts sent */
    bool auth_retried;     /* the one renewal after a 401 is used */
    unsigned tok_gen;      /* token generation the current attempt carried */
    unsigned flags;        /* HTTP_REQ_* */
    struct http_gate gate; /* check == NULL: none */
    char *gate_hdr;        /* the header line the gate gave for the next attempt, or NULL */
    char *gate_why;        /* set when the gate said no at the last moment (on_prereq) */
    bool gated_running;    /* an attempt the gate let through is on the multi */
    struct xfer x;
    /* outcome, valid from REQ_DONE */
    enum http_outcome outcome;
    long status;
    char *error;
    char *corr;
};

struct http_tenant {
    struct http_engine *e;
    struct http_tenant *prev, *next; /* engine's tenants */
    char *name;
    enum http_auth auth;
    char *base_url; /* without trailing '/' */
    size_t base_len;
    char *write_base_url; /* or NULL (http_tenant_opts.write_base_url) */
    size_t write_base_len;
    char *token_url;
    char *client_id;
    char *client_secret; /* wiped on free */
    char *corr_header;   /* or NULL */
    /* the platform's hooks (http_tenant_opts) */
    void (*error_message)(const char *body, size_t len, char *buf, size_t n);
    bool (*rate_window)(const struct http_header *h, size_t n, struct http_rate_window *w);
    struct cfg_http http; /* copy; ca_file owned */
    char *client_cert;    /* TLS client certificate file, or NULL */
    char *client_key;     /* its key file, or NULL */
    char *extra_header;   /* http_tenant_set_header; a secret, wiped on replace */
    size_t max_body;
    struct backoff_policy policy;
    struct ratelimit rl;

    uv_timer_t pump_timer;  /* starts queued requests; also rate-limit waits */
    uv_timer_t token_timer; /* token request backoff */
    int open_handles;       /* timers not yet closed */
    bool handles_closing;
    bool closing; /* http_tenant_free called */

    struct http_request *queue; /* FIFO, head starts first */
    struct http_request *live;  /* every request not yet closed */
    unsigned nlive;
    unsigned in_flight; /* API attempts on the multi */

    /* token manager */
    char *token;           /* current access token or NULL; wiped on replace */
    unsigned tok_gen;      /* bumped on every new token */
    uint64_t tok_renew_at; /* loop time after which the token is no longer used */
    uint64_t tok_sent_at;  /* loop time the current token attempt was sent */
    bool tok_fetching;     /* token attempt on the multi */
    bool tok_backoff;      /* token_timer running */
    unsigned tok_attempts; /* attempts in the current token round */
    struct xfer tok_x;
    struct auth_request tok_req;
    uint64_t auth_fail_until; /* loop time; new requests fail before it */
    char *auth_fail_msg;
    long auth_fail_status; /* the refusing token reply's status (0: none) */
    char *auth_fail_corr;  /* ... and its correlation id, or NULL */

    struct http_counters counters;
};

/* One watched socket. */
struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct http_engine *e;
    bool closing;
    UT_hash_handle hh; /* e->socks, keyed by fd */
};

struct http_engine {
    uv_loop_t *loop;
    CURLM *multi;
    CURLSH *share;
    uv_timer_t curl_timer;  /* curl's timeout */
    uv_timer_t drain_timer; /* drain deadline / drain completion */
    int open_handles;
    char *user_agent;
    struct http_tenant *tenants;
    struct sock *socks;
    uint64_t rng;             /* splitmix64 state for jitter */
    unsigned in_flight;       /* transfers on the multi (API + token) */
    unsigned gated_in_flight; /* of those, attempts a gate let through (fenced writes) */
    long max_conns; /* connections the live tenants may keep open (CURLMOPT_MAXCONNECTS) */
    bool draining, closing, finished;
    http_drained_cb drain_cb;
    void *drain_arg;
};

static void collect_done(struct http_engine *e);
static void schedule_pump(struct http_tenant *t);
static void tenant_maybe_finish(struct http_tenant *t);
static void engine_maybe_finish(struct http_engine *e);
static void check_drained(struct http_engine *e);

/* ---- small helpers ---------------------------------------------------------------------- */

static uint64_t loop_now(struct http_engine *e)
{
    uv_update_time(e->loop);
    return uv_now(e->loop);
}

static void wipe(char *p, size_t n)
{
    volatile char *v = p;
    for (size_t i = 0; i < n; i++)
        v[i] = 0;
}

/* Free a header list after overwriting it: it may hold a bearer token or Basic credentials. */
static void slist_free_wiped(struct curl_slist *l)
{
    for (struct curl_slist *p = l; p; p = p->next)
        if (p->data)
            wipe(p->data, strlen(p->data));
    curl_slist_free_all(l);
}

/* Single-line, printable, bounded copy for logs and error texts. */
static void sanitize_into(char *dst, size_t n, const char *src, size_t len)
{
    size_t o = 0;
    bool space = false;

    if (n == 0)
        return;
    for (size_t i = 0; i < len && o + 1 < n; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c < 0x20 || c == 0x7f) {
            if (!space && o > 0)
                dst[o++] = ' ';
            space = true;
            continue;
        }
        space = false;
        dst[o++] = (char)c;
    }
    while (o > 0 && dst[o - 1] == ' ')
        o--;
    dst[o] = '\0';
}

/* ---- JSON and error texts ---------------------------------------------------------------- */

/* json-c's strict mode still takes single-quoted strings, NaN/Infinity and raw control
 * characters inside strings, none of which is JSON (RFC 8259). One lexical pass refuses them
 * before the parser runs; json-c checks the grammar. Returns the offending offset or -1. */
static long json_lexically_bad(const char *s, size_t len)
{
    static const char *const words[] = {"true", "false", "null"};
    size_t i = 0;

    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') {
            for (i++; i < len && s[i] != '"'; i++) {
                if ((unsigned char)s[i] < 0x20)
                    return (long)i;
                if (s[i] == '\\')
                    i++;
            }
            i++;
        } else if (c && strchr(" \t\r\n{}[],:", c)) {
            i++;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            while (i < len && strchr("0123456789.eE+-", s[i]) && s[i])
                i++;
        } else {
            size_t k;
            for (k = 0; k < UTIL_ARRAY_LEN(words); k++) {
                size_t wl = strlen(words[k]);
                if (len - i >= wl && memcmp(s + i, words[k], wl) == 0) {
                    i += wl;
                    break;
                }
            }
            if (k == UTIL_ARRAY_LEN(words))
                return (long)i;
        }
    }
    return -1;
}

struct json_object *http_parse_json(const char *body, size_t len, char *err, size_t errlen)
{
    long bad;
    struct json_tokener *tok;
    struct json_object *obj;
    enum json_tokener_error jerr;

    if (!body || len == 0) {
        snprintf(err, errlen, "empty body where JSON was expected");
        return NULL;
    }
    if (len > (size_t)INT32_MAX - 2) {
        snprintf(err, errlen, "body too large to parse");
        return NULL;
    }
    if (memchr(body, '\0', len)) {
        snprintf(err, errlen, "NUL byte in JSON body");
        return NULL;
    }
    bad = json_lexically_bad(body, len);
    if (bad >= 0) {
        snprintf(err, errlen, "invalid JSON at offset %ld", bad);
        return NULL;
    }
    tok = json_tokener_new_ex(HTTP_JSON_MAX_DEPTH);
    if (!tok) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    obj = json_tokener_parse_ex(tok, body, (int)len);
    jerr = json_tokener_get_error(tok);
    if (!obj && jerr == json_tokener_continue) {
        /* A bare number at the very end waits for a delimiter; one blank settles it, while a
         * truly cut-off document stays incomplete. */
        obj = json_tokener_parse_ex(tok, " ", 1);
        jerr = json_tokener_get_error(tok);
        if (!obj && jerr == json_tokener_continue) {
            snprintf(err, errlen, "incomplete JSON");
            json_tokener_free(tok);
            return NULL;
        }
    } else if (obj) {
        size_t end = json_tokener_get_parse_end(tok);
        for (size_t i = end; i < len; i++) {
            if (body[i] != ' ' && body[i] != '\t' && body[i] != '\r' && body[i] != '\n') {
                json_object_put(obj);
                snprintf(err, errlen, "trailing data after JSON at offset %zu", i);
                json_tokener_free(tok);
                return NULL;
            }
        }
    }
    if (!obj) {
        snprintf(err, errlen, "invalid JSON: %s", json_tokener_error_desc(jerr));
        json_tokener_free(tok);
        return NULL;
    }
    json_tokener_free(tok);
    return obj;
}

static const char *jstr(struct json_object *o, const char *key)
{
    struct json_object *v;
    if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) &&
        json_object_get_string_len(v) > 0)
        return json_object_get_string(v);
    return NULL;
}

const char *http_error_message(const char *body, size_t len, char *buf, size_t n)
{
    char perr[64];
    struct json_object *o;

    if (n == 0)
        return buf;
    buf[0] = '\0';
    if (!body || len == 0)
        return buf;
    o = http_parse_json(body, len, perr, sizeof(perr));
    if (o && json_object_is_type(o, json_type_object)) {
        const char *oe = jstr(o, "error"); /* OAuth (RFC 6749 section 5.2) */
        const char *od = jstr(o, "error_description");
        char tmp[1024];
        if (!od)
            od = jstr(o, "description");
        if (oe && od)
            snprintf(tmp, sizeof(tmp), "%s: %s", oe, od);
        else if (oe)
            snprintf(tmp, sizeof(tmp), "%s", oe);
        else
            tmp[0] = '\0';
        sanitize_into(buf, n, tmp, strlen(tmp));
        json_object_put(o);
        if (buf[0])
            return buf;
        /* a JSON object in no known shape: the start of its text, as for any other body */
    } else if (o) {
        json_object_put(o);
    }
    /* Not a known error shape: the start of the body, if it is text. */
    size_t m = len < 200 ? len : 200;
    for (size_t i = 0; i < m; i++) {
        unsigned char c = (unsigned char)body[i];
        if (c == 0 || (c < 0x20 && c != '\t' && c != '\r' && c != '\n'))
            return buf; /* binary */
    }
    sanitize_into(buf, n, body, m);
    return buf;
}

const char *http_clean_line(char *buf, size_t n, const char *s, size_t len)
{
    sanitize_into(buf, n, s, len);
    return buf;
}

const char *http_header_find(const struct http_header *h, size_t n, const char *name)
{
    const char *v = NULL;
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(h[i].name, name) == 0)
            v = h[i].value;
    return v;
}

const char *http_result_header(const struct http_result *res, const char *name)
{
    return http_header_find(res->headers, res->nheaders, name);
}

struct kept_result {
    struct http_result res; /* first: http_result_free casts back */
    char *body, *corr, *error, *method, *path;
    struct http_header *hdrs;
    char *hdr_block; /* every header's "name\0value\0", back to back */
};

struct http_result *http_result_keep(const struct http_result *res)
{
    struct kept_result *k = xcalloc(1, sizeof *k);
    struct http_request *r = res->owner_;

    k->res = *res;
    k->res.owner_ = NULL;
    if (r && r->x.body && res->body == r->x.body) {
        /* Moved: the request frees nothing it no longer holds. Request bodies are never secret
         * (only token replies are, and those are not delivered here). */
        k->body = r->x.body;
        r->x.body = NULL;
        r->x.len = r->x.cap = 0;
    } else {
        k->body = xmalloc(res->body_len + 1);
        memcpy(k->body, res->body, res->body_len);
        k->body[res->body_len] = '\0';
    }
    k->res.body = k->body;
    k->res.correlation_id = k->corr = xstrdup(res->correlation_id ? res->correlation_id : "");
    k->res.error = k->error = res->error ? xstrdup(res->error) : NULL;
    k->res.method = k->method = res->method ? xstrdup(res->method) : NULL;
    k->res.path = k->path = res->path ? xstrdup(res->path) : NULL;
    size_t bytes = 0;
    for (size_t i = 0; i < res->nheaders; i++)
        bytes += strlen(res->headers[i].name) + strlen(res->headers[i].value) + 2;
    k->hdrs = xcalloc(res->nheaders ? res->nheaders : 1, sizeof *k->hdrs);
    char *at = k->hdr_block = xmalloc(bytes ? bytes : 1);
    for (size_t i = 0; i < res->nheaders; i++) {
        size_t nn = strlen(res->headers[i].name) + 1, nv = strlen(res->headers[i].value) + 1;
        k->hdrs[i].name = memcpy(at, res->headers[i].name, nn);
        k->hdrs[i].value = memcpy(at + nn, res->headers[i].value, nv);
        at += nn + nv;
    }
    k->res.headers = k->hdrs;
    return &k->res;
}

void http_result_free(struct http_result *kept)
{
    if (!kept)
        return;
    struct kept_result *k = (struct kept_result *)kept;
    free(k->body);
    free(k->corr);
    free(k->error);
    free(k->method);
    free(k->path);
    free(k->hdrs);
    free(k->hdr_block);
    free(k);
}

/* ---- transfers ---------------------------------------------------------------------------- */

static void xfer_clear_reply(struct xfer *x)
{
    if (x->body) {
        if (x->secret_body)
            wipe(x->body, x->len);
        free(x->body);
    }
    x->body = NULL;
    x->len = x->cap = 0;
    x->too_large = false;
    for (size_t i = 0; i < x->nhdrs; i++)
        free((char *)x->hdrs[i].name);
    x->nhdrs = 0;
    x->hdr_bytes = 0;
    x->errbuf[0] = '\0';
}

static void xfer_free(struct xfer *x)
{
    xfer_clear_reply(x);
    free(x->hdrs);
    x->hdrs = NULL;
    x->caphdrs = 0;
}

#define PRESIZE_MAX (8u << 20) /* largest Content-Length a body buffer is sized from */

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nmemb;

    if (n > x->max_body - x->len) {
        x->too_large = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (x->len + n + 1 > x->cap) {
        size_t c = x->cap ? x->cap : 4096;
        curl_off_t cl = -1;
        /* A declared length sizes the buffer once instead of by doubling and copying. It is
         * only a hint: at most PRESIZE_MAX is taken on trust (a server's claim must not reserve
         * the whole body cap per connection), and a reply longer than declared grows below. */
        if (x->cap == 0 && x->easy &&
            curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK &&
            cl > 0 && (uint64_t)cl < PRESIZE_MAX && (uint64_t)cl < x->max_body)
            c = (size_t)cl + 1;
        while (c < x->len + n + 1)
            c *= 2;
        x->body = xrealloc(x->body, c);
        x->cap = c;
    }
    memcpy(x->body + x->len, p, n);
    x->len += n;
    x->body[x->len] = '\0';
    return n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nmemb;
    const char *colon, *ns, *ne, *vs, *ve;

    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* A new status line (e.g. after 100 Continue): only the final reply's headers count. */
        for (size_t i = 0; i < x->nhdrs; i++)
            free((char *)x->hdrs[i].name);
        x->nhdrs = 0;
        x->hdr_bytes = 0;
        return n;
    }
    colon = memchr(p, ':', n);
    if (!colon || x->nhdrs >= MAX_REPLY_HEADERS || x->hdr_bytes + n > MAX_REPLY_HEADER_BYTES)
        return n;
    ns = p;
    ne = colon;
    while (ne > ns && (ne[-1] == ' ' || ne[-1] == '\t'))
        ne--;
    vs = colon + 1;
    ve = p + n;
    while (vs < ve && (*vs == ' ' || *vs == '\t'))
        vs++;
    while (ve > vs && (ve[-1] == '\r' || ve[-1] == '\n' || ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
    if (ne == ns)
        return n;

    size_t nl = (size_t)(ne - ns), vl = (size_t)(ve - vs);
    char *blk = xmalloc(nl + vl + 2);
    memcpy(blk, ns, nl);
    blk[nl] = '\0';
    memcpy(blk + nl + 1, vs, vl);
    blk[nl + 1 + vl] = '\0';
    util_grow((void **)&x->hdrs, &x->caphdrs, x->nhdrs + 1, sizeof(*x->hdrs));
    x->hdrs[x->nhdrs].name = blk;
    x->hdrs[x->nhdrs].value = blk + nl + 1;
    x->nhdrs++;
    x->hdr_bytes += n;
    return n;
}

static const char *xfer_header(const struct xfer *x, const char *name)
{
    return http_header_find(x->hdrs, x->nhdrs, name);
}

static int on_close_socket(void *clientp, curl_socket_t s);
static int on_prereq(void *clientp, char *conn_primary_ip, char *conn_local_ip,
                     int conn_primary_port, int conn_local_port);

/* Set up and add one attempt. `hdrs` is taken over (freed wiped by xfer_end). Returns 0, or -1
 * with a message in err (nothing left on the multi). */
static int xfer_start(struct http_engine *e, const struct http_tenant *t, struct xfer *x,
                      const char *method, const char *url, const char *body,
                      struct curl_slist *hdrs, char *err, size_t errlen)
{
    CURL *c;
    CURLcode rc = CURLE_OK;
    CURLMcode mrc;

    xfer_clear_reply(x);
    x->req_hdrs = hdrs;
    x->max_body = t->max_body;
    c = curl_easy_init();
    if (!c) {
        snprintf(err, errlen, "curl_easy_init failed");
        goto fail;
    }
    rc |= curl_easy_setopt(c, CURLOPT_URL, url);
    rc |= curl_easy_setopt(c, CURLOPT_PRIVATE, x);
    rc |= curl_easy_setopt(c, CURLOPT_SHARE, e->share);
    rc |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt(c, CURLOPT_USERAGENT, e->user_agent);
    rc |= curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    rc |= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)t->http.timeout_ms);
    rc |= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)t->http.connect_timeout_ms);
    rc |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    rc |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (t->http.ca_file)
        rc |= curl_easy_setopt(c, CURLOPT_CAINFO, t->http.ca_file);
    if (t->client_cert)
        rc |= curl_easy_setopt(c, CURLOPT_SSLCERT, t->client_cert);
    if (t->client_key)
        rc |= curl_easy_setopt(c, CURLOPT_SSLKEY, t->client_key);
    rc |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    rc |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    rc |= curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    rc |= curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)t->max_body);
    rc |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    rc |= curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    rc |= curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    rc |= curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    rc |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->errbuf);
    rc |= curl_easy_setopt(c, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    rc |= curl_easy_setopt(c, CURLOPT_CLOSESOCKETDATA, e);
    if (x->gated) {
        /* the gate again once the connection (and TLS) is up, right before the request's
         * bytes leave: a connect that took long, or a pause, does not let a write out late */
        rc |= curl_easy_setopt(c, CURLOPT_PREREQFUNCTION, on_prereq);
        rc |= curl_easy_setopt(c, CURLOPT_PREREQDATA, x);
    }
    /* HTTP/2 is optional in the libcurl build: failing to ask for it is not an error. */
    (void)curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    (void)curl_easy_setopt(c, CURLOPT_PIPEWAIT, 1L);

    if (strcmp(method, "GET") == 0) {
        rc |= curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        rc |= curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else {
        if (strcmp(method, "POST") != 0)
            rc |= curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        if (body || strcmp(method, "DELETE") != 0) {
            /* POSTFIELDS points at our buffer (no copy inside curl); it outlives the transfer. */
            rc |= curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
            rc |= curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                                   (curl_off_t)(body ? strlen(body) : 0));
        }
    }
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "cannot set up transfer (libcurl option refused)");
        goto fail;
    }
    mrc = curl_multi_add_handle(e->multi, c);
    if (mrc != CURLM_OK) {
        snprintf(err, errlen, "cannot start transfer: %s", curl_multi_strerror(mrc));
        goto fail;
    }
    x->easy = c;
    e->in_flight++;
    return 0;
fail:
    if (c)
        curl_easy_cleanup(c);
    slist_free_wiped(hdrs);
    x->req_hdrs = NULL;
    return -1;
}

/* Take the attempt off the multi; the reply (body, headers) stays in x. */
static void xfer_end(struct http_engine *e, struct xfer *x)
{
    if (!x->easy)
        return;
    curl_multi_remove_handle(e->multi, x->easy);
    curl_easy_cleanup(x->easy);
    x->easy = NULL;
    slist_free_wiped(x->req_hdrs);
    x->req_hdrs = NULL;
    e->in_flight--;
}

/* Transport failures worth another attempt (product.md §5). */
static bool curl_retryable(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SSL_CONNECT_ERROR: /* handshake interrupted; verification failures differ */
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

static void transport_error_text(CURLcode rc, const struct xfer *x, char *buf, size_t n)
{
    if (x->errbuf[0])
        snprintf(buf, n, "%s: %s", curl_easy_strerror(rc), x->errbuf);
    else
        snprintf(buf, n, "%s", curl_easy_strerror(rc));
}

/* Mask every occurrence of needle[0..n) in body[0..len) with '*'. */
static void mask_all(char *body, size_t len, const char *needle, size_t n)
{
    if (!needle || n == 0)
        return;
    for (char *at = body; (at = memmem(at, len - (size_t)(at - body), needle, n)) != NULL; at += n)
        memset(at, '*', n);
}

/* A failed reply's body is about to be read for a message that goes to the log and to
 * status.json. Servers and proxies do echo what they were sent (an error quoting the form body
 * or the Authorization header), so the tenant's secret -- raw, form-encoded, inside the Basic
 * credential -- and its current token are masked in place first (same length: a JSON body stays
 * JSON). Successful replies are data and are never touched. */
static void redact_reply(const struct http_tenant *t, struct xfer *x)
{
    if (!x->body || x->len == 0 || !t->client_secret)
        return;
    struct auth_request basic = {0}, form = {0};
    mask_all(x->body, x->len, t->client_secret, strlen(t->client_secret));
    if (t->token)
        mask_all(x->body, x->len, t->token, strlen(t->token));
    if (auth_build_request(HTTP_AUTH_BASIC_FORM, t->client_id, t->client_secret, &basic) == 0) {
        const char *b64 = strrchr(basic.authorization, ' ') + 1;
        mask_all(x->body, x->len, b64, strlen(b64));
    }
    if (auth_build_request(HTTP_AUTH_POST_FORM, t->client_id, t->client_secret, &form) == 0) {
        const char *enc = strstr(form.body, "&client_secret=") + strlen("&client_secret=");
        mask_all(x->body, x->len, enc, strlen(enc));
    }
    auth_request_clear(&basic);
    auth_request_clear(&form);
}

static void status_error_text(const struct http_tenant *t, long status, const struct xfer *x,
                              char *buf, size_t n)
{
    char msg[300] = "";
    if (t->error_message && x->len > 0)
        t->error_message(x->body, x->len, msg, sizeof(msg));
    if (!msg[0])
        http_error_message(x->body, x->len, msg, sizeof(msg));
    if (msg[0])
        snprintf(buf, n, "HTTP %ld: %s", status, msg);
    else
        snprintf(buf, n, "HTTP %ld", status);
}

/* The Retry-After of a reply in ms, or 0. */
static uint64_t reply_retry_after(const struct xfer *x)
{
    const char *v = xfer_header(x, "Retry-After");
    uint64_t ms = 0;
    if (v && backoff_parse_retry_after(v, util_now_ms(), &ms) == 0)
        return ms;
    return 0;
}

/* ---- sockets and timers (anchors.md §3) -------------------------------------------------- */

static void on_sock_closed(uv_handle_t *h)
{
    free(UTIL_CONTAINER_OF((uv_poll_t *)h, struct sock, poll));
}

static void sock_close(struct http_engine *e, struct sock *sk)
{
    if (sk->closing)
        return;
    sk->closing = true;
    HASH_DEL(e->socks, sk);
    /* uv_poll_stop drops the fd from epoll at once, so curl may close it right after. */
    uv_poll_stop(&sk->poll);
    uv_close((uv_handle_t *)&sk->poll, on_sock_closed);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sock *sk = UTIL_CONTAINER_OF(h, struct sock, poll);
    struct http_engine *e = sk->e;
    int flags = 0, running;

    if (status < 0) {
        flags = CURL_CSELECT_ERR; /* let curl notice the reset and fail the transfer */
    } else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    curl_multi_socket_action(e->multi, sk->fd, flags, &running);
    collect_done(e);
}

static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct http_engine *e = userp;
    struct sock *sk = socketp;
    int ev = 0, rc;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (sk)
            sock_close(e, sk);
        curl_multi_assign(e->multi, s, NULL);
        return 0;
    }
    if (!sk) {
        sk = xcalloc(1, sizeof(*sk));
        sk->fd = s;
        sk->e = e;
        rc = uv_poll_init_socket(e->loop, &sk->poll, s);
        if (rc != 0) {
            /* The transfer then runs into its timeout and is retried like any other. */
            log_error(NULL, "http cannot watch socket fd=%d error=%s", (int)s, uv_strerror(rc));
            free(sk);
            return 0;
        }
        HASH_ADD(hh, e->socks, fd, sizeof(sk->fd), sk);
        curl_multi_assign(e->multi, s, sk);
    }
    if (what & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    uv_poll_start(&sk->poll, ev, on_poll);
    return 0;
}

/* Safety net for curl versions that close a socket before announcing CURL_POLL_REMOVE
 * (anchors.md §3.2 pitfall 5): never let an fd be closed while libuv still polls it. */
static int on_close_socket(void *clientp, curl_socket_t s)
{
    struct http_engine *e = clientp;
    struct sock *sk;

    HASH_FIND(hh, e->socks, &s, sizeof(s), sk);
    if (sk)
        sock_close(e, sk);
    return close(s);
}

static void on_curl_timeout(uv_timer_t *h)
{
    struct http_engine *e = UTIL_CONTAINER_OF(h, struct http_engine, curl_timer);
    int running;

    curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    collect_done(e);
}

/* curl's timer: -1 deletes, anything else replaces. Never call curl from here; a 0 ms uv timer
 * runs on the next loop turn, outside this callback. */
static int on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
    struct http_engine *e = userp;

    (void)m;
    if (timeout_ms < 0)
        uv_timer_stop(&e->curl_timer);
    else
        uv_timer_start(&e->curl_timer, on_curl_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- requests: finishing and delivery ---------------------------------------------------- */

static void on_req_timer(uv_timer_t *h);

static void log_failure(const struct http_request *r)
{
    char qp[300], qe[600];
    enum log_level lvl = LOG_LVL_WARNING;

    /* Cancellations are the caller's own doing; token failures were logged once for the whole
     * tenant; a 3xx (never followed) is an answer the provider interprets. */
    if (r->outcome == HTTP_ERR_CANCELLED || r->outcome == HTTP_ERR_AUTH)
        lvl = LOG_LVL_DEBUG;
    else if (r->outcome == HTTP_ERR_STATUS && r->status >= 300 && r->status < 400)
        lvl = LOG_LVL_INFO;

    log_event(lvl, NULL,
              "http request failed tenant=%s method=%s path=%s status=%ld correlation_id=%s "
              "attempts=%u error=%s",
              r->t->name, r->method, log_quote(qp, sizeof(qp), r->path), r->status,
              r->corr && r->corr[0] ? r->corr : "-", r->attempts,
              log_quote(qe, sizeof(qe), r->error ? r->error : "-"));
}

/* Decide the outcome; the callback follows from the request's timer on a later loop turn. */
static void finish(struct http_request *r, enum http_outcome outcome, long status,
                   const char *error)
{
    struct http_tenant *t = r->t;

    if (r->state == REQ_QUEUED)
        DL_DELETE2(t->queue, r, qprev, qnext);
    r->state = REQ_DONE;
    r->outcome = outcome;
    r->status = status;
    free(r->error);
    r->error = error ? xstrdup(error) : NULL;
    if (outcome != HTTP_OK)
        log_failure(r);
    uv_timer_start(&r->timer, on_req_timer, 0, 0);
}

static void on_req_closed(uv_handle_t *h)
{
    struct http_request *r = UTIL_CONTAINER_OF((uv_timer_t *)h, struct http_request, timer);
    struct http_tenant *t = r->t;

    xfer_free(&r->x);
    free(r->method);
    free(r->path);
    free(r->url);
    free(r->body);
    free(r->error);
    free(r->corr);
    free(r->gate_hdr);
    free(r->gate_why);
    free(r);
    t->nlive--;
    tenant_maybe_finish(t);
}

static void deliver(struct http_request *r)
{
    struct http_tenant *t = r->t;
    struct http_result res = {
        .outcome = r->outcome,
        .status = r->status,
        .body = r->x.body ? r->x.body : "",
        .body_len = r->x.body ? r->x.len : 0,
        .correlation_id = r->corr ? r->corr : "",
        .error = r->outcome == HTTP_OK ? NULL : (r->error ? r->error : "failed"),
        .attempts = r->attempts,
        .method = r->method,
        .path = r->path,
        .headers = r->x.hdrs,
        .nheaders = r->x.nhdrs,
        .owner_ = r,
    };

    r->state = REQ_DELIVERED;
    DL_DELETE2(t->live, r, lprev, lnext);
    r->cb(&res, r->arg);
    uv_close((uv_handle_t *)&r->timer, on_req_closed);
}

static void on_req_timer(uv_timer_t *h)
{
    struct http_request *r = UTIL_CONTAINER_OF(h, struct http_request, timer);

    if (r->state == REQ_BACKOFF) {
        r->state = REQ_QUEUED;
        DL_PREPEND2(r->t->queue, r, qprev, qnext); /* a retry keeps its place at the front */
        schedule_pump(r->t);
    } else if (r->state == REQ_DONE) {
        deliver(r);
    }
}

/* The attempt a gate let through is off the multi. */
static void gated_end(struct http_request *r)
{
    if (r->gated_running) {
        r->gated_running = false;
        r->t->e->gated_in_flight--;
    }
}

/* Ask a request's gate (http.h http_gate) now. true: go on, with its header kept for the
 * attempt; false: the request is finished unsent with the gate's reason. */
static bool gate_lets_through(struct http_request *r)
{
    char hdr[512] = "", why[256] = "";
    free(r->gate_hdr);
    r->gate_hdr = NULL;
    if (!r->gate.check(r->gate.arg, hdr, sizeof hdr, why, sizeof why)) {
        finish(r, HTTP_ERR_CANCELLED, 0, why[0] ? why : "not sent: refused by its gate");
        return false;
    }
    if (hdr[0] && !strpbrk(hdr, "\r\n") && strchr(hdr, ':'))
        r->gate_hdr = xstrdup(hdr); /* anything else is no header line: never split a request */
    return true;
}

/* CURLOPT_PREREQFUNCTION of a gated attempt: connected, about to send. */
static int on_prereq(void *clientp, char *conn_primary_ip, char *conn_local_ip,
                     int conn_primary_port, int conn_local_port)
{
    (void)conn_primary_ip;
    (void)conn_local_ip;
    (void)conn_primary_port;
    (void)conn_local_port;
    struct xfer *x = clientp;
    struct http_request *r = x->owner;
    char hdr[512], why[256] = "";
    if (r->gate.check(r->gate.arg, hdr, sizeof hdr, why, sizeof why))
        return CURL_PREREQFUNC_OK;
    free(r->gate_why);
    r->gate_why = xstrdup(why[0] ? why : "not sent: refused by its gate");
    return CURL_PREREQFUNC_ABORT;
}

static void cancel_request(struct http_request *r, const char *why)
{
    struct http_tenant *t = r->t;

    switch (r->state) {
    case REQ_RUNNING:
        xfer_end(t->e, &r->x);
        t->in_flight--;
        gated_end(r);
        finish(r, HTTP_ERR_CANCELLED, 0, why);
        schedule_pump(t);
        check_drained(t->e);
        break;
    case REQ_QUEUED:
    case REQ_BACKOFF:
        finish(r, HTTP_ERR_CANCELLED, 0, why);
        break;
    case REQ_DONE:
    case REQ_DELIVERED:
        break;
    }
}

void http_cancel(struct http_request *r)
{
    if (r)
        cancel_request(r, "cancelled");
}

/* ---- tokens ------------------------------------------------------------------------------ */

static void token_fetch(struct http_tenant *t);

static void on_token_timer(uv_timer_t *h)
{
    struct http_tenant *t = UTIL_CONTAINER_OF(h, struct http_tenant, token_timer);
    t->tok_backoff = false;
    if (t->queue)
        token_fetch(t);
}

static void token_drop(struct http_tenant *t)
{
    util_free_secret(t->token);
    t->token = NULL;
}

/* A request failed because no token could be had: the request that failed is the token POST,
 * not the call that waited for it, so the result names that one (status.json's error then says
 * which URL answered what). */
static void fail_for_token(struct http_tenant *t, struct http_request *r, enum http_outcome out,
                           long status, const char *corr, const char *msg)
{
    free(r->method);
    r->method = xstrdup("POST");
    free(r->path);
    r->path = xstrdup(t->token_url);
    free(r->corr);
    r->corr = corr && corr[0] ? xstrdup(corr) : NULL;
    finish(r, out, status, msg);
}

/* Fail every request waiting for a token. `status`/`corr` describe the token reply, if any. */
static void token_failed(struct http_tenant *t, const char *msg, bool refused, long status,
                         const char *corr)
{
    struct http_request *r, *tmp;
    char qp[300], qe[2 * ERRMSG_LEN];

    if (refused) {
        t->counters.auth_failures++;
        t->auth_fail_until = loop_now(t->e) + HTTP_AUTH_HOLD_MS;
        free(t->auth_fail_msg);
        t->auth_fail_msg = xstrdup(msg);
        t->auth_fail_status = status;
        free(t->auth_fail_corr);
        t->auth_fail_corr = corr && corr[0] ? xstrdup(corr) : NULL;
    }
    log_warning(NULL,
                "http token request failed tenant=%s method=POST path=%s status=%ld "
                "correlation_id=%s attempts=%u error=%s",
                t->name, log_quote(qp, sizeof(qp), t->token_url), status,
                corr && corr[0] ? corr : "-", t->tok_attempts, log_quote(qe, sizeof(qe), msg));
    t->tok_attempts = 0;
    /* Only refused credentials are an authentication failure; a token endpoint that stayed
     * unreachable or kept failing is a transport problem the caller retries later. */
    DL_FOREACH_SAFE2(t->queue, r, tmp, qnext)
    {
        fail_for_token(t, r, refused ? HTTP_ERR_AUTH : HTTP_ERR_TRANSPORT, status, corr, msg);
    }
}

static void token_fetch(struct http_tenant *t)
{
    struct curl_slist *h = NULL;
    char err[256];

    if (t->tok_fetching || t->tok_backoff || t->closing || t->e->draining)
        return;
    auth_request_clear(&t->tok_req);
    if (auth_build_request(t->auth, t->client_id, t->client_secret, &t->tok_req) != 0) {
        token_failed(t, "no token request for this authentication style", true, 0, NULL);
        return;
    }
    h = curl_slist_append(h, "Accept: application/json");
    h = curl_slist_append(h, "Content-Type: application/x-www-form-urlencoded");
    h = curl_slist_append(h, "Expect:");
    if (t->tok_req.authorization)
        h = curl_slist_append(h, t->tok_req.authorization);
    if (!h) {
        token_failed(t, "out of memory", false, 0, NULL);
        return;
    }
    t->tok_attempts++;
    t->counters.token_requests++;
    t->tok_sent_at = loop_now(t->e);
    if (xfer_start(t->e, t, &t->tok_x, "POST", t->token_url, t->tok_req.body, h, err,
                   sizeof(err)) != 0) {
        auth_request_clear(&t->tok_req);
        token_failed(t, err, false, 0, NULL);
        return;
    }
    t->tok_fetching = true;
}

static void token_attempt_done(struct http_tenant *t, CURLcode rc)
{
    struct http_engine *e = t->e;
    struct xfer *x = &t->tok_x;
    long status = 0;
    char msg[2 * ERRMSG_LEN], detail[ERRMSG_LEN], corr[MAX_CORRELATION_LEN + 1] = "";
    const char *c;

    if (rc == CURLE_OK)
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    xfer_end(e, x);
    t->counters.token_by_status[status >= 100 && status < HTTP_STATUS_SLOTS ? status : 0]++;
    if (t->tok_attempts > 1)
        t->counters.token_retries++;
    if (t->corr_header && (c = xfer_header(x, t->corr_header)))
        sanitize_into(corr, sizeof(corr), c, strlen(c));
    t->tok_fetching = false;
    auth_request_clear(&t->tok_req);

    if (!(rc == CURLE_OK && status == 200))
        redact_reply(t, x);
    if (rc == CURLE_OK && status == 200) {
        struct auth_token tok;
        if (auth_parse_token(x->body, x->len, &tok, detail, sizeof(detail)) == 0) {
            token_drop(t);
            t->token = tok.access_token; /* ownership moves to the tenant */
            t->tok_gen++;
            /* The server's clock for expires_in starts when it issued the token, which can be
             * a whole round trip before the reply arrived: count from the request's start. */
            t->tok_renew_at =
                t->tok_sent_at + tok.lifetime_ms - auth_renew_margin_ms(tok.lifetime_ms);
            t->tok_attempts = 0;
            t->auth_fail_until = 0;
            xfer_clear_reply(x);
            log_debug(NULL, "http token obtained tenant=%s lifetime_ms=%llu", t->name,
                      (unsigned long long)tok.lifetime_ms);
            schedule_pump(t);
            check_drained(e);
            return;
        }
        snprintf(msg, sizeof(msg), "authentication failed: %s", detail);
        xfer_clear_reply(x);
        token_failed(t, msg, true, status, corr);
        check_drained(e);
        return;
    }

    bool retryable;
    if (rc != CURLE_OK) {
        transport_error_text(rc, x, detail, sizeof(detail));
        retryable = curl_retryable(rc);
    } else {
        status_error_text(t, status, x, detail, sizeof(detail));
        retryable = backoff_status_retryable(status);
    }
    uint64_t ra = rc == CURLE_OK ? reply_retry_after(x) : 0;
    xfer_clear_reply(x);

    if (retryable && backoff_may_retry(&t->policy, t->tok_attempts) && !e->draining &&
        !t->closing) {
        uint64_t d = backoff_delay_ms(&t->policy, t->tok_attempts, ra, backoff_splitmix64, &e->rng);
        char qp[300], qe[ERRMSG_LEN + 16];
        log_info(NULL,
                 "http token request retry tenant=%s method=POST path=%s status=%ld "
                 "correlation_id=%s attempt=%u delay_ms=%llu error=%s",
                 t->name, log_quote(qp, sizeof(qp), t->token_url), status, corr[0] ? corr : "-",
                 t->tok_attempts, (unsigned long long)d, log_quote(qe, sizeof(qe), detail));
        t->tok_backoff = true;
        uv_timer_start(&t->token_timer, on_token_timer, d, 0);
    } else if (rc == CURLE_OK && status >= 400 && status < 500) {
        /* The endpoint answered and said no: retrying would only repeat the refusal. */
        if (status == 400 || status == 401 || status == 403)
            snprintf(msg, sizeof(msg), "authentication failed: client credentials refused: %s",
                     detail);
        else
            snprintf(msg, sizeof(msg), "authentication failed: token endpoint answered %s", detail);
        token_failed(t, msg, true, status, corr);
    } else {
        snprintf(msg, sizeof(msg), "token request failed after %u attempts: %s", t->tok_attempts,
                 detail);
        token_failed(t, msg, false, status, corr);
    }
    check_drained(e);
}

static void token_cancel(struct http_tenant *t)
{
    if (t->tok_fetching) {
        xfer_end(t->e, &t->tok_x);
        t->tok_fetching = false;
    }
    if (t->tok_backoff) {
        uv_timer_stop(&t->token_timer);
        t->tok_backoff = false;
    }
    auth_request_clear(&t->tok_req);
    xfer_clear_reply(&t->tok_x);
    t->tok_attempts = 0;
}

/* ---- requests: attempts ------------------------------------------------------------------ */

static void start_attempt(struct http_request *r)
{
    struct http_tenant *t = r->t;
    struct curl_slist *h = NULL;
    char err[256];

    h = curl_slist_append(h, "Accept: application/json");
    if (h && r->body)
        h = curl_slist_append(h, "Content-Type: application/json");
    if (h)
        h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
    if (h && t->auth != HTTP_AUTH_NONE) {
        char *a = xasprintf("Authorization: Bearer %s", t->token);
        h = curl_slist_append(h, a);
        util_free_secret(a);
    }
    if (h && t->extra_header)
        h = curl_slist_append(h, t->extra_header);
    if (h && r->gate_hdr)
        h = curl_slist_append(h, r->gate_hdr);
    if (!h) {
        finish(r, HTTP_ERR_TRANSPORT, 0, "out of memory");
        return;
    }
    r->tok_gen = t->tok_gen;
    r->x.gated = r->gate.check != NULL;
    if (xfer_start(t->e, t, &r->x, r->method, r->url, r->body, h, err, sizeof(err)) != 0) {
        finish(r, HTTP_ERR_TRANSPORT, 0, err);
        return;
    }
    if (r->x.gated) {
        r->gated_running = true;
        t->e->gated_in_flight++;
    }
    if (r->attempts > 0)
        t->counters.retries++;
    r->attempts++;
    t->counters.requests++;
    t->in_flight++;
    r->state = REQ_RUNNING;
}

/* Feed the platform's advertised window into the limiter (ratelimit.h). */
static void apply_server_window(struct http_tenant *t, const struct xfer *x, uint64_t now)
{
    struct http_rate_window w;
    if (t->rate_window && t->rate_window(x->hdrs, x->nhdrs, &w))
        ratelimit_server_window(&t->rl, w.allowed, w.count, w.reset_ms, t->in_flight, now);
}

static void api_attempt_done(struct http_request *r, CURLcode rc)
{
    struct http_tenant *t = r->t;
    struct http_engine *e = t->e;
    struct xfer *x = &r->x;
    long status = 0, seen = 0; /* seen: the status line, even of a reply cut short */
    char err[ERRMSG_LEN];
    uint64_t now;
    const char *corr;

    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &seen);
    if (rc == CURLE_OK)
        status = seen;
    xfer_end(e, x);
    t->in_flight--;
    gated_end(r);
    if (r->gate_why) {
        /* the gate said no once the connection was ready: nothing was sent, so the attempt
         * is not counted, and it is not retried */
        char *why = r->gate_why;
        r->gate_why = NULL;
        r->attempts--;
        t->counters.requests--;
        if (r->attempts > 0)
            t->counters.retries--;
        finish(r, HTTP_ERR_CANCELLED, 0, why);
        free(why);
        goto out;
    }
    now = loop_now(e);
    t->counters.by_status[status >= 100 && status < HTTP_STATUS_SLOTS ? status : 0]++;

    free(r->corr);
    r->corr = NULL;
    corr = t->corr_header ? xfer_header(x, t->corr_header) : NULL;
    if (corr) {
        char buf[MAX_CORRELATION_LEN + 1];
        sanitize_into(buf, sizeof(buf), corr, strlen(corr));
        r->corr = xstrdup(buf);
    }
    if (rc == CURLE_OK)
        apply_server_window(t, x, now);

    if (rc == CURLE_OK && status >= 200 && status < 300) {
        finish(r, HTTP_OK, status, NULL);
        goto out;
    }
    redact_reply(t, x);
    if (rc == CURLE_OK && status == 401 && t->auth != HTTP_AUTH_NONE && !r->auth_retried &&
        !e->draining && !t->closing) {
        /* Expired or revoked token: renew once (unless someone already did) and resend. */
        char qp[300];
        r->auth_retried = true;
        if (r->tok_gen == t->tok_gen)
            token_drop(t);
        log_info(NULL,
                 "http token rejected, renewing tenant=%s method=%s path=%s status=401 "
                 "correlation_id=%s",
                 t->name, r->method, log_quote(qp, sizeof(qp), r->path), r->corr ? r->corr : "-");
        r->state = REQ_QUEUED;
        DL_PREPEND2(t->queue, r, qprev, qnext);
        goto out;
    }
    if (x->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
        snprintf(err, sizeof(err), "response larger than %zu bytes", t->max_body);
        finish(r, HTTP_ERR_TOO_LARGE, seen, err);
        goto out;
    }

    bool retryable;
    uint64_t ra = 0;
    if (rc != CURLE_OK) {
        status = 0; /* a cut-off reply is no reply */
        transport_error_text(rc, x, err, sizeof(err));
        retryable = curl_retryable(rc);
    } else {
        status_error_text(t, status, x, err, sizeof(err));
        retryable =
            backoff_status_retryable(status) || (status == 404 && (r->flags & HTTP_REQ_RETRY_404));
        ra = reply_retry_after(x);
    }
    if (retryable && backoff_may_retry(&t->policy, r->attempts) && !e->draining && !t->closing) {
        uint64_t d = backoff_delay_ms(&t->policy, r->attempts, ra, backoff_splitmix64, &e->rng);
        char qp[300], qe[ERRMSG_LEN + 16];
        /* Retry-After (or a bare 429) holds back the whole tenant, not just this request. */
        if (ra)
            ratelimit_pause_until(
                &t->rl, now + (ra < BACKOFF_RETRY_AFTER_CAP_MS ? ra : BACKOFF_RETRY_AFTER_CAP_MS));
        else if (status == 429)
            ratelimit_pause_until(&t->rl, now + d);
        log_info(NULL,
                 "http request retry tenant=%s method=%s path=%s status=%ld "
                 "correlation_id=%s attempt=%u delay_ms=%llu error=%s",
                 t->name, r->method, log_quote(qp, sizeof(qp), r->path), status,
                 r->corr ? r->corr : "-", r->attempts, (unsigned long long)d,
                 log_quote(qe, sizeof(qe), err));
        r->status = status;
        r->state = REQ_BACKOFF;
        uv_timer_start(&r->timer, on_req_timer, d, 0);
        goto out;
    }
    finish(r, rc != CURLE_OK ? HTTP_ERR_TRANSPORT : HTTP_ERR_STATUS, status, err);
out:
    schedule_pump(t);
    check_drained(e);
}

static void collect_done(struct http_engine *e)
{
    CURLMsg *m;
    int left;

    while ((m = curl_multi_info_read(e->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURLcode rc = m->data.result; /* m is gone once the handle is removed */
        char *priv = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        struct xfer *x = (struct xfer *)(void *)priv;
        if (!x)
            continue;
        if (x->kind == XFER_API)
            api_attempt_done(x->owner, rc);
        else
            token_attempt_done(x->owner, rc);
    }
}

/* ---- the tenant's queue ------------------------------------------------------------------ */

static void on_pump(uv_timer_t *h);

static void schedule_pump(struct http_tenant *t)
{
    if (!t->closing)
        uv_timer_start(&t->pump_timer, on_pump, 0, 0);
}

static void on_pump(uv_timer_t *h)
{
    struct http_tenant *t = UTIL_CONTAINER_OF(h, struct http_tenant, pump_timer);
    struct http_engine *e = t->e;
    uint64_t now = loop_now(e);

    while (t->queue && !t->closing && !e->draining && t->in_flight < t->http.max_connections) {
        /* a fenced write the gate refuses goes now, without waiting for a token or a
         * rate-limit slot it would waste (and without holding back those behind it) */
        if (t->queue->gate.check && !gate_lets_through(t->queue))
            continue;
        if (t->auth != HTTP_AUTH_NONE) {
            if (now < t->auth_fail_until) {
                struct http_request *r, *tmp;
                DL_FOREACH_SAFE2(t->queue, r, tmp, qnext)
                {
                    fail_for_token(t, r, HTTP_ERR_AUTH, t->auth_fail_status, t->auth_fail_corr,
                                   t->auth_fail_msg);
                }
                return;
            }
            if (!t->token || now >= t->tok_renew_at) {
                token_fetch(t); /* single flight: a no-op while one is pending */
                return;
            }
        }
        uint64_t wait = ratelimit_acquire(&t->rl, now);
        if (wait) {
            uv_timer_start(&t->pump_timer, on_pump, wait, 0);
            return;
        }
        struct http_request *r = t->queue;
        DL_DELETE2(t->queue, r, qprev, qnext);
        r->state = REQ_RUNNING; /* not queued any more; start_attempt finishes it on failure */
        start_attempt(r);
    }
}

/* ---- public: requests -------------------------------------------------------------------- */

static bool method_ok(const char *m)
{
    static const char *const ok[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(ok); i++)
        if (strcmp(m, ok[i]) == 0)
            return true;
    return false;
}

static bool url_chars_ok(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return false;
    return true;
}

/* The URL for `path`, or NULL with the reason. */
static char *build_url(const struct http_tenant *t, const char *path, const char **why)
{
    if (!url_chars_ok(path)) {
        *why = "invalid request: path has blanks, control or non-ASCII characters";
        return NULL;
    }
    if (path[0] == '/')
        return xasprintf("%s%s", t->base_url, path);
    if (strncmp(path, t->base_url, t->base_len) == 0 &&
        (path[t->base_len] == '/' || path[t->base_len] == '?' || path[t->base_len] == '\0'))
        return xstrdup(path);
    if (t->write_base_url && strncmp(path, t->write_base_url, t->write_base_len) == 0 &&
        (path[t->write_base_len] == '/' || path[t->write_base_len] == '?' ||
         path[t->write_base_len] == '\0'))
        return xstrdup(path);
    *why = "invalid request: URL outside the tenant's base_url";
    return NULL;
}

static void ignore_result(const struct http_result *res, void *arg)
{
    (void)res;
    (void)arg;
}

struct http_request *http_request(struct http_tenant *t, const char *method, const char *path,
                                  const char *body, http_done_cb cb, void *arg)
{
    return http_request_flags(t, method, path, body, 0, cb, arg);
}

struct http_request *http_request_flags(struct http_tenant *t, const char *method, const char *path,
                                        const char *body, unsigned flags, http_done_cb cb,
                                        void *arg)
{
    return http_request_gated(t, method, path, body, flags, NULL, cb, arg);
}

struct http_request *http_request_gated(struct http_tenant *t, const char *method, const char *path,
                                        const char *body, unsigned flags,
                                        const struct http_gate *gate, http_done_cb cb, void *arg)
{
    struct http_engine *e = t->e;
    struct http_request *r = xcalloc(1, sizeof(*r));
    const char *why = NULL;

    r->flags = flags;
    if (gate)
        r->gate = *gate;
    if (!cb)
        cb = ignore_result;
    r->t = t;
    uv_timer_init(e->loop, &r->timer);
    r->method = xstrdup(method ? method : "");
    r->path = xstrdup(path ? path : "");
    r->body = xstrdup(body);
    r->cb = cb;
    r->arg = arg;
    r->x.kind = XFER_API;
    r->x.owner = r;
    r->state = REQ_QUEUED;
    DL_APPEND2(t->live, r, lprev, lnext);
    t->nlive++;

    if (!method_ok(r->method))
        why = "invalid request: unsupported method";
    else
        r->url = build_url(t, r->path, &why);
    if (!r->url) {
        r->state = REQ_DONE; /* never queued */
        finish(r, HTTP_ERR_INVALID, 0, why);
    } else if (e->draining || e->closing || t->closing) {
        r->state = REQ_DONE;
        finish(r, HTTP_ERR_CANCELLED, 0, "cancelled: shutting down");
    } else {
        DL_APPEND2(t->queue, r, qprev, qnext);
        schedule_pump(t);
    }
    return r;
}

/* ---- public: tenants --------------------------------------------------------------------- */

static void on_tenant_handle_closed(uv_handle_t *h)
{
    struct http_tenant *t = h->data;
    struct http_engine *e = t->e;

    if (--t->open_handles > 0)
        return;
    DL_DELETE(e->tenants, t);
    token_drop(t);
    xfer_free(&t->tok_x);
    auth_request_clear(&t->tok_req);
    free(t->name);
    free(t->base_url);
    free(t->write_base_url);
    free(t->token_url);
    free(t->client_id);
    util_free_secret(t->client_secret);
    free(t->corr_header);
    free(t->http.ca_file);
    free(t->client_cert);
    free(t->client_key);
    util_free_secret(t->extra_header);
    free(t->auth_fail_msg);
    free(t->auth_fail_corr);
    free(t);
    engine_maybe_finish(e);
}

static void tenant_maybe_finish(struct http_tenant *t)
{
    if (!t->closing || t->nlive > 0 || t->handles_closing)
        return;
    t->handles_closing = true;
    uv_close((uv_handle_t *)&t->pump_timer, on_tenant_handle_closed);
    uv_close((uv_handle_t *)&t->token_timer, on_tenant_handle_closed);
}

static void tenant_cancel_all(struct http_tenant *t, const char *why)
{
    struct http_request *r, *tmp;

    token_cancel(t);
    DL_FOREACH_SAFE2(t->live, r, tmp, lnext)
    {
        cancel_request(r, why);
    }
}

void http_tenant_set_header(struct http_tenant *t, const char *line)
{
    util_free_secret(t->extra_header);
    t->extra_header = xstrdup(line);
}

struct http_tenant *http_tenant_new(struct http_engine *e, const struct http_tenant_opts *o,
                                    char *err, size_t errlen)
{
    struct http_tenant *t;
    size_t bl;

    if (e->closing) {
        snprintf(err, errlen, "HTTP engine is closing");
        return NULL;
    }
    if (!o->name || !o->http) {
        snprintf(err, errlen, "tenant needs a name and http settings");
        return NULL;
    }
    if (!o->base_url ||
        (strncmp(o->base_url, "https://", 8) != 0 && strncmp(o->base_url, "http://", 7) != 0)) {
        snprintf(err, errlen, "tenant %s: base_url must be an http(s) URL", o->name);
        return NULL;
    }
    if (o->auth != HTTP_AUTH_NONE) {
        if (!o->token_url || (strncmp(o->token_url, "https://", 8) != 0 &&
                              strncmp(o->token_url, "http://", 7) != 0)) {
            snprintf(err, errlen, "tenant %s: token_url must be an http(s) URL", o->name);
            return NULL;
        }
        if (!o->client_id || !o->client_id[0] || !o->client_secret || !o->client_secret[0]) {
            snprintf(err, errlen, "tenant %s: client_id and client_secret are required", o->name);
            return NULL;
        }
    }

    t = xcalloc(1, sizeof(*t));
    t->e = e;
    t->name = xstrdup(o->name);
    t->auth = o->auth;
    bl = strlen(o->base_url);
    while (bl > 0 && o->base_url[bl - 1] == '/')
        bl--;
    t->base_url = xstrndup(o->base_url, bl);
    t->base_len = bl;
    if (o->write_base_url) {
        size_t wl = strlen(o->write_base_url);
        while (wl > 0 && o->write_base_url[wl - 1] == '/')
            wl--;
        t->write_base_url = xstrndup(o->write_base_url, wl);
        t->write_base_len = wl;
    }
    if (o->auth != HTTP_AUTH_NONE) {
        t->token_url = xstrdup(o->token_url);
        t->client_id = xstrdup(o->client_id);
        t->client_secret = xstrdup(o->client_secret);
    }
    t->corr_header = xstrdup(o->correlation_header);
    t->error_message = o->error_message;
    t->rate_window = o->rate_window;
    t->http = *o->http;
    t->http.ca_file = xstrdup(o->http->ca_file);
    t->client_cert = xstrdup(o->client_cert_file);
    t->client_key = xstrdup(o->client_key_file);
    if (t->http.max_connections < 1)
        t->http.max_connections = 1;
    if (t->http.retry_max_attempts < 1)
        t->http.retry_max_attempts = 1;
    t->max_body = o->max_response_bytes ? o->max_response_bytes : HTTP_MAX_RESPONSE_BYTES;
    t->policy.max_attempts = t->http.retry_max_attempts;
    t->policy.initial_delay_ms = t->http.retry_initial_delay_ms;
    t->policy.max_delay_ms = t->http.retry_max_delay_ms;
    ratelimit_init(&t->rl, t->http.rate_per_sec,
                   ratelimit_default_burst(t->http.rate_per_sec, t->http.max_connections),
                   loop_now(e));
    t->tok_x.kind = XFER_TOKEN;
    t->tok_x.owner = t;
    t->tok_x.secret_body = true;

    uv_timer_init(e->loop, &t->pump_timer);
    uv_timer_init(e->loop, &t->token_timer);
    t->pump_timer.data = t;
    t->token_timer.data = t;
    t->open_handles = 2;
    DL_APPEND(e->tenants, t);
    /* libcurl sizes its connection cache to 4 x the transfers on the multi unless told: each
     * lull (the tail of a listing before the writes) would close pooled connections, and the
     * next burst would open new ones, a TLS handshake each. A tenant needs its own
     * max_connections plus one for its token. */
    e->max_conns += (long)t->http.max_connections + 1;
    curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, e->max_conns);
    return t;
}

void http_tenant_free(struct http_tenant *t)
{
    if (!t || t->closing)
        return;
    t->closing = true;
    t->e->max_conns -= (long)t->http.max_connections + 1;
    curl_multi_setopt(t->e->multi, CURLMOPT_MAXCONNECTS, t->e->max_conns > 0 ? t->e->max_conns : 1);
    tenant_cancel_all(t, "cancelled");
    uv_timer_stop(&t->pump_timer);
    tenant_maybe_finish(t);
}

const struct http_counters *http_tenant_counters(const struct http_tenant *t)
{
    return &t->counters;
}

const char *http_tenant_name(const struct http_tenant *t)
{
    return t->name;
}

/* ---- public: engine ---------------------------------------------------------------------- */

static void on_engine_handle_closed(uv_handle_t *h)
{
    struct http_engine *e = h->data;

    if (--e->open_handles > 0)
        return;
    free(e->user_agent);
    free(e);
    curl_global_cleanup();
}

static void engine_maybe_finish(struct http_engine *e)
{
    struct sock *sk, *tmp;

    if (!e->closing || e->tenants || e->finished)
        return;
    e->finished = true;
    /* Cached connections close now; curl announces their sockets through on_curl_socket, so
     * the loop must still run afterwards to finish the poll handles' close callbacks. */
    curl_multi_cleanup(e->multi);
    e->multi = NULL;
    curl_share_cleanup(e->share);
    e->share = NULL;
    HASH_ITER(hh, e->socks, sk, tmp)
    {
        sock_close(e, sk);
    }
    uv_close((uv_handle_t *)&e->curl_timer, on_engine_handle_closed);
    uv_close((uv_handle_t *)&e->drain_timer, on_engine_handle_closed);
}

struct http_engine *http_engine_new(uv_loop_t *loop, const char *user_agent, char *err,
                                    size_t errlen)
{
    struct http_engine *e;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "curl_global_init failed");
        return NULL;
    }
    e = xcalloc(1, sizeof(*e));
    e->loop = loop;
    e->user_agent = user_agent ? xstrdup(user_agent) : xstrdup("rolesyncd/" ROLESYNC_VERSION);
    e->multi = curl_multi_init();
    e->share = curl_share_init();
    if (!e->multi || !e->share) {
        snprintf(err, errlen, "cannot create libcurl multi/share handles");
        goto fail;
    }
    /* Single-threaded: no lock callbacks needed. Connections are shared by the multi itself. */
    curl_share_setopt(e->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(e->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
    curl_multi_setopt(e->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);

    if (getrandom(&e->rng, sizeof(e->rng), GRND_NONBLOCK) != (ssize_t)sizeof(e->rng))
        e->rng = util_mono_ms() ^ ((uint64_t)getpid() << 32);

    uv_timer_init(loop, &e->curl_timer);
    uv_timer_init(loop, &e->drain_timer);
    e->curl_timer.data = e;
    e->drain_timer.data = e;
    e->open_handles = 2;
    return e;
fail:
    if (e->multi)
        curl_multi_cleanup(e->multi);
    if (e->share)
        curl_share_cleanup(e->share);
    free(e->user_agent);
    free(e);
    curl_global_cleanup();
    return NULL;
}

void http_engine_cancel_all(struct http_engine *e)
{
    struct http_tenant *t;
    DL_FOREACH(e->tenants, t)
    {
        tenant_cancel_all(t, "cancelled");
    }
}

static void on_drain_timer(uv_timer_t *h)
{
    struct http_engine *e = UTIL_CONTAINER_OF(h, struct http_engine, drain_timer);
    http_drained_cb cb = e->drain_cb;
    struct http_tenant *t;

    if (e->in_flight > 0) {
        log_warning(NULL, "http drain deadline passed in_flight=%u", e->in_flight);
        DL_FOREACH(e->tenants, t)
        {
            tenant_cancel_all(t, "cancelled: shutdown deadline");
        }
    }
    e->drain_cb = NULL;
    if (cb)
        cb(e->drain_arg);
}

static void check_drained(struct http_engine *e)
{
    if (e->draining && e->drain_cb && !e->closing && e->in_flight == 0)
        uv_timer_start(&e->drain_timer, on_drain_timer, 0, 0);
}

unsigned http_engine_gated_in_flight(const struct http_engine *e)
{
    return e->gated_in_flight;
}

void http_engine_drain(struct http_engine *e, uint64_t deadline_ms, http_drained_cb cb, void *arg)
{
    struct http_tenant *t;

    if (e->closing)
        return;
    e->draining = true;
    e->drain_cb = cb;
    e->drain_arg = arg;
    DL_FOREACH(e->tenants, t)
    {
        struct http_request *r, *tmp;
        token_cancel(t); /* whoever waited for it is failed just below */
        DL_FOREACH_SAFE2(t->live, r, tmp, lnext)
        {
            if (r->state == REQ_QUEUED || r->state == REQ_BACKOFF)
                cancel_request(r, "cancelled: shutting down");
        }
    }
    uv_timer_start(&e->drain_timer, on_drain_timer, e->in_flight ? deadline_ms : 0, 0);
}

void http_engine_close(struct http_engine *e)
{
    struct http_tenant *t, *tmp;

    if (!e || e->closing)
        return;
    e->closing = true;
    e->drain_cb = NULL;
    uv_timer_stop(&e->drain_timer);
    DL_FOREACH_SAFE(e->tenants, t, tmp)
    {
        http_tenant_free(t);
    }
    engine_maybe_finish(e);
}
