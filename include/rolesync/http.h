/* http.h — the asynchronous HTTP engine: libcurl multi driven by the libuv loop, OAuth 2
 * client-credentials tokens, per-tenant concurrency and rate limits, retries (product.md §5).
 *
 * It knows nothing about roles: providers (genesys.c, identity.c) build paths and JSON bodies,
 * submit requests and read the replies.
 *
 *   engine  one per loop: one CURLM (connection cache, HTTP/2 multiplexing) plus a CURLSH sharing
 *           DNS and TLS sessions; sockets are watched with uv_poll_t, curl's timer is a uv_timer_t.
 *   tenant  one per configured tenant: base URL, credentials and token, FIFO queue, at most
 *           max_connections requests in flight, token bucket, Retry-After pause, counters.
 *   request one logical call; it may be sent several times (retries, one renewal after a 401).
 *
 * Life of a request. http_request() queues it and returns at once; the callback is never called
 * from inside http_request(), http_cancel(), http_tenant_free(), http_engine_drain() or
 * http_engine_close(): every callback comes from the loop, exactly once per request, whatever
 * happens (success, error, cancellation, shutdown). The queue is started in order when
 *   - fewer than max_connections of the tenant's requests are in flight,
 *   - the tenant holds a usable token (fetched first if not; see Tokens),
 *   - the rate limiter allows (ratelimit.h: bucket, Retry-After pause, server window).
 * An attempt ends with a reply or a transport error:
 *   - 2xx: delivered as HTTP_OK.
 *   - 401 with a token: the token is renewed (once per request) and the call is sent again.
 *   - 408, 429, 500, 502, 503, 504 and transport failures (connect refused, reset, timeout,
 *     TLS handshake failure, truncated body, empty reply, DNS failure): retried after the
 *     backoff.h delay while attempts < retry max_attempts; Retry-After is a floor for that
 *     request and pauses the whole tenant (a 429 without Retry-After pauses it for the
 *     computed delay). A retried request goes back to the front of the queue.
 *   - any other status: delivered as HTTP_ERR_STATUS with "HTTP <code>: <server message>".
 * Every final failure is logged at warning with tenant, method, path, status, correlation id
 * and error; retries and 3xx answers at info; cancellations, and requests failed by a token
 * failure (logged once per token request, at warning, with the token endpoint's status and
 * correlation id), at debug. Tokens, secrets and Authorization headers are never logged.
 *
 * Tokens (auth != HTTP_AUTH_NONE). Cached per tenant and used until min(5 min, 10 % of the
 * lifetime) before expires_in runs out; then the next request triggers a renewal. Only one token
 * request is in flight per tenant however many requests wait (single flight). A 4xx token reply
 * other than 408/429 (e.g. 400/401 invalid_client) or an unreadable 200 fails every waiting
 * request with HTTP_ERR_AUTH and a clear message, without retries, and new requests to that
 * tenant fail the same way for HTTP_AUTH_HOLD_MS (no retry storm). Transport errors, 408, 429 and
 * 5xx from the token endpoint are retried with the tenant's retry policy.
 *
 * Transfers: CURLOPT_TIMEOUT_MS = timeout (the whole attempt; our own queue time is not
 * included), CURLOPT_CONNECTTIMEOUT_MS = connect_timeout, HTTP/2 over TLS where offered, TLS
 * peer and host verification always on, CURLOPT_CAINFO only when ca_file is set, no redirects
 * followed, http/https only, compressed replies accepted. Headers: User-Agent, Accept:
 * application/json, Authorization: Bearer, Content-Type: application/json when a body is given.
 * A reply body above max_response_bytes (default 64 MiB) aborts the transfer (HTTP_ERR_TOO_LARGE,
 * not retried).
 *
 * Shutdown. http_engine_drain() stops starting anything new, lets attempts in flight finish
 * (without retrying them) and calls back when none is left or the deadline passed (then the rest
 * is cancelled). http_engine_close() cancels everything and frees the engine and its tenants
 * once the loop has run their close callbacks: run uv_run() until it returns, after which
 * uv_loop_close() succeeds.
 *
 * Not thread-safe: everything runs on the loop's thread.
 */
#ifndef ROLESYNC_HTTP_H
#define ROLESYNC_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "rolesync/config.h"

struct json_object;
struct http_engine;
struct http_tenant;
struct http_request;

/* Default cap on a reply body. */
#define HTTP_MAX_RESPONSE_BYTES ((size_t)64 * 1024 * 1024)
/* Deepest JSON nesting http_parse_json() accepts. */
#define HTTP_JSON_MAX_DEPTH 64
/* How long a tenant keeps failing new requests after its credentials were refused. */
#define HTTP_AUTH_HOLD_MS 10000u
/* Statuses counted individually: 0 (no reply) and 100..599; others land in slot 0 too. */
#define HTTP_STATUS_SLOTS 600

enum http_auth {
    HTTP_AUTH_NONE = 0,   /* no token (tests, simulators' control endpoints) */
    HTTP_AUTH_BASIC_FORM, /* genesys: Authorization: Basic base64(id:secret),
                             body grant_type=client_credentials */
    HTTP_AUTH_POST_FORM,  /* identity: form grant_type, client_id, client_secret */
};

enum http_outcome {
    HTTP_OK = 0,        /* 2xx */
    HTTP_ERR_STATUS,    /* final non-2xx reply; `status` and `body` hold it */
    HTTP_ERR_TRANSPORT, /* no complete reply (connect, TLS, timeout, reset, truncated body) */
    HTTP_ERR_TOO_LARGE, /* reply body above the cap */
    HTTP_ERR_AUTH,      /* no token: the credentials were refused (400/401/403, bad reply);
                           an unreachable or failing token endpoint is HTTP_ERR_TRANSPORT */
    HTTP_ERR_CANCELLED, /* http_cancel, tenant freed, engine closing or draining */
    HTTP_ERR_INVALID,   /* refused before sending: bad method or URL (see http_request) */
};

struct http_header {
    const char *name;  /* as received; compare case-insensitively */
    const char *value; /* leading and trailing blanks removed */
};

/* What a callback receives. Everything it points to lives until the callback returns: copy what
 * you keep, or keep all of it with http_result_keep. */
struct http_result {
    enum http_outcome outcome;
    long status;                /* HTTP status of the last attempt; 0 when there was no reply */
    const char *body;           /* reply body of the last attempt, NUL-terminated; "" if none */
    size_t body_len;            /* bytes in body, without the NUL */
    const char *correlation_id; /* the tenant's correlation header from the reply, or "" */
    const char *error;          /* NULL for HTTP_OK; else one line: a curl error text,
                                   "HTTP 404: <server message>", "cancelled", ... */
    unsigned attempts;          /* times the request was sent (0 if never) */
    const char *method;         /* as submitted */
    const char *path;           /* as submitted (path or absolute URL) */
    const struct http_header *headers; /* reply headers of the last attempt */
    size_t nheaders;
    void *owner_; /* private to http.c (lets http_result_keep take the body instead of copying) */
};

typedef void (*http_done_cb)(const struct http_result *res, void *arg);
typedef void (*http_drained_cb)(void *arg);

/* A rate-limit window a server advertises in its replies' headers: `allowed` requests per
 * window, `count` of them used, the window ends in `reset_ms`. */
struct http_rate_window {
    long allowed, count;
    uint64_t reset_ms;
};

struct http_tenant_opts {
    const char *name; /* for logs and counters */
    enum http_auth auth;
    const char *base_url; /* "https://api.example.com", no trailing '/' needed */
    /* a second host this tenant's requests may name by absolute URL (identity writes go to the
     * global host while reads use a regional one, product.md 4b.2); NULL = none */
    const char *write_base_url;
    const char *token_url;          /* required unless HTTP_AUTH_NONE */
    const char *client_id;          /* required unless HTTP_AUTH_NONE */
    const char *client_secret;      /* required unless HTTP_AUTH_NONE; copied, wiped on free */
    const char *correlation_header; /* "ININ-Correlation-Id", "Operation-Id", or NULL */
    const struct cfg_http *http;    /* limits; copied (ca_file too) */
    const char *client_cert_file;   /* TLS client certificate (PEM), or NULL; copied */
    const char *client_key_file;    /* its private key (PEM), or NULL; copied */
    size_t max_response_bytes;      /* 0 = HTTP_MAX_RESPONSE_BYTES */
    /* The platform's reading of an error body (its own message field), written into buf as
     * one line, "" when the body says nothing; NULL = none. It comes before the generic
     * reading of http_error_message() in the engine's error texts. */
    void (*error_message)(const char *body, size_t len, char *buf, size_t n);
    /* The rate-limit window the platform advertises in a reply's headers: true and *w filled
     * when they hold one (the limiter then stays under it, ratelimit.h); NULL = none. */
    bool (*rate_window)(const struct http_header *h, size_t n, struct http_rate_window *w);
};

/* Per-tenant counters, monotonically increasing for the tenant's life. */
struct http_counters {
    uint64_t requests;                     /* API attempts sent (each retry counts) */
    uint64_t retries;                      /* attempts that were repeats of an earlier attempt */
    uint64_t token_requests;               /* token endpoint attempts */
    uint64_t token_retries;                /* token attempts that repeated a failed one */
    uint64_t auth_failures;                /* times the credentials were refused */
    uint64_t by_status[HTTP_STATUS_SLOTS]; /* API attempts per reply status; [0] = no reply */
    uint64_t token_by_status[HTTP_STATUS_SLOTS]; /* token attempts, the same way */
};

/* Create an engine on `loop`. `user_agent` NULL means "rolesyncd/" ROLESYNC_VERSION. Returns
 * NULL with a message in err when libcurl cannot be set up. The engine is freed by
 * http_engine_close() only. */
struct http_engine *http_engine_new(uv_loop_t *loop, const char *user_agent, char *err,
                                    size_t errlen);

/* Fail every request of every tenant (queued, waiting to retry, waiting for a token or in
 * flight) with HTTP_ERR_CANCELLED. The engine stays usable. */
void http_engine_cancel_all(struct http_engine *e);

/* Graceful stop: queued and retry-waiting requests, and any submitted from now on, fail with
 * HTTP_ERR_CANCELLED ("shutting down"); attempts in flight finish but are not retried. `cb` runs
 * from the loop once nothing is in flight, or after `deadline_ms` when the rest is cancelled.
 * Not called if http_engine_close() comes first. Calling it twice replaces the callback. */
void http_engine_drain(struct http_engine *e, uint64_t deadline_ms, http_drained_cb cb, void *arg);
/* Attempts on the wire that a gate let through (fenced writes): coordination waits for them
 * before it gives a lease back. */
unsigned http_engine_gated_in_flight(const struct http_engine *e);

/* Cancel everything, free every tenant and then the engine. The pointers are invalid on return;
 * outstanding callbacks are still delivered (HTTP_ERR_CANCELLED) by the loop, then the handles
 * close. Safe to call from inside a callback. */
void http_engine_close(struct http_engine *e);

/* Add a tenant. `opts` is copied. Returns NULL with a message in err when opts are incomplete
 * (missing base_url, token_url or credentials for the auth style, non-http(s) URL). */
struct http_tenant *http_tenant_new(struct http_engine *e, const struct http_tenant_opts *opts,
                                    char *err, size_t errlen);

/* Cancel the tenant's requests (each still gets its HTTP_ERR_CANCELLED callback from the loop)
 * and free it once its handles are closed. Invalid on return. Safe inside a callback. */
void http_tenant_free(struct http_tenant *t);

/* A header line ("Name: value") sent with every API request of the tenant from now on, in
 * place of the previous one; NULL removes it. Copied, treated as a secret (never logged, wiped
 * when replaced or freed): an etcd auth token travels this way. */
void http_tenant_set_header(struct http_tenant *t, const char *line);

const struct http_counters *http_tenant_counters(const struct http_tenant *t);
const char *http_tenant_name(const struct http_tenant *t);

/* Submit one call. `method`: GET, HEAD, POST, PUT, PATCH or DELETE. `path`: either a path
 * starting with '/' (appended to base_url; ids in it must already be percent-encoded, see
 * util_pct_encode) or an absolute URL that starts with base_url (e.g. a nextUri), so a token
 * never leaves for another host. `body`: JSON text sent with Content-Type: application/json,
 * or NULL; copied. Returns a handle valid until `cb` returns; `cb` is called exactly once, from
 * the loop. A bad method or path is reported through `cb` as HTTP_ERR_INVALID. */
struct http_request *http_request(struct http_tenant *t, const char *method, const char *path,
                                  const char *body, http_done_cb cb, void *arg);

/* The same with HTTP_REQ_* flags. HTTP_REQ_RETRY_404: a 404 is retried like a 503 (a write
 * naming an object the platform has only just created, which an eventually consistent service
 * may not know yet: product.md 4a.8). */
#define HTTP_REQ_RETRY_404 0x1u
struct http_request *http_request_flags(struct http_tenant *t, const char *method, const char *path,
                                        const char *body, unsigned flags, http_done_cb cb,
                                        void *arg);

/* A check asked for each attempt of a request (its retries too): the fencing of writes under
 * coordination (product.md 7a). It is asked when the attempt reaches the head of the
 * tenant's queue, before it waits for a token or a rate-limit slot, and again from libcurl's
 * CURLOPT_PREREQFUNCTION once the connection is up, right before the request is sent.
 * check() returns true to send; the first call may write one more request header line
 * ("Name: value", no CR/LF) into header[0..hn), left "" for none. false fails the request
 * unsent (not retried, the attempt not counted) with HTTP_ERR_CANCELLED and the text written
 * into why[0..wn). Called on the loop's thread; `arg` must outlive the request. */
struct http_gate {
    bool (*check)(void *arg, char *header, size_t hn, char *why, size_t wn);
    void *arg;
};
/* http_request_flags with a gate (copied; NULL = none). */
struct http_request *http_request_gated(struct http_tenant *t, const char *method, const char *path,
                                        const char *body, unsigned flags,
                                        const struct http_gate *gate, http_done_cb cb, void *arg);
/* Cancel a request whose callback has not run yet: it gets HTTP_ERR_CANCELLED from the loop.
 * An attempt in flight is aborted. No effect once the outcome is decided. */
void http_cancel(struct http_request *r);

/* Parse a reply body as JSON: rejects an empty body, embedded NULs, trailing data, nesting
 * deeper than HTTP_JSON_MAX_DEPTH and anything json-c's strict mode refuses. Returns a new
 * reference (json_object_put it) or NULL with the reason in err. */
struct json_object *http_parse_json(const char *body, size_t len, char *err, size_t errlen);

/* The value of reply header `name` (case-insensitive; the last one if repeated), or NULL. */
const char *http_result_header(const struct http_result *res, const char *name);

/* Inside a callback: a copy of `res` that outlives it, for work finished later (a page parsed
 * on a worker thread). The body is moved, not copied, so after this call `res->body` must not
 * be read again. Free with http_result_free (any thread). */
struct http_result *http_result_keep(const struct http_result *res);
void http_result_free(struct http_result *kept);

/* The server's own message from an error body in the shapes every platform shares (an OAuth
 * token endpoint's `error` + `error_description`), else the start of a printable body, else "".
 * Written into buf (single line, control characters replaced, bounded); returns buf. A
 * platform's own error shape is read by its tenant's `error_message` hook. */
const char *http_error_message(const char *body, size_t len, char *buf, size_t n);
/* Copy s into buf as one bounded line: control characters become '?', cut on a UTF-8 boundary
 * (for error_message hooks). Returns buf. */
const char *http_clean_line(char *buf, size_t n, const char *s, size_t len);
/* The value of header `name` in h[0..n) (case-insensitive; the last one if repeated), or NULL. */
const char *http_header_find(const struct http_header *h, size_t n, const char *name);

#endif
