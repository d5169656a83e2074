/* internal.h — what the provider files share (provider.c): paged reads into a snapshot and
 * write submission. Private to src/providers/ (as libuv keeps its internal.h): the sync engine
 * sees only provider.h's prov_ops.
 */
#ifndef ROLESYNC_PROVIDERS_INTERNAL_H
#define ROLESYNC_PROVIDERS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "rolesync/provider.h"
#include "providers/provider_json.h"

/* Most page requests of one listing queued at once: the rest are requested as pages come
 * back, so a listing that claims a million pages costs a window of requests, not a million. */
#define PROV_PAGE_WINDOW 32u
/* Most reply bytes a read keeps waiting for the thread pool; a page beyond it is prepared on
 * the loop at once, so memory stays bounded by bytes (one 64 MiB body) and not by the window. */
#define PROV_HELD_MAX (64u << 20)
/* Most entities a listing may claim (a Genesys org or identity tenant is far smaller; identity
 * caps tenants at 50,000 users). Beyond it the read fails instead of growing without bound. */
#define PROV_MAX_ENTITIES 5000000

struct prov_fetch;
struct prov_listing;
/* A provider's page request: GET page `number` of listing `l`. */
typedef void (*prov_request_fn)(struct prov_fetch *f, struct prov_listing *l, unsigned number);

/* A listing being read page by page. */
struct prov_listing {
    const char *what;     /* "roles", "users", "permissions" */
    bool started;         /* first page answered */
    int64_t total;        /* from the first page (envelope total or Total-Count); -1 unknown */
    size_t seen;          /* entities parsed so far */
    unsigned next;        /* next page number to request */
    unsigned end;         /* one past the last page number to request (0: not known yet) */
    unsigned outstanding; /* page requests of this listing in flight */
    unsigned page_size;   /* entries per full page (genesys: page 1's pageSize; identity: count) */
    prov_request_fn request;
    uint32_t role; /* a role's grants listing: the role's index in the snapshot */
    char *cursor;  /* a cursor listing: the next page's cursor (NULL: none, or the end) */
};

/* A snapshot read in progress (one per fetch). */
struct prov_fetch {
    struct prov_tenant t;
    struct mdl_snapshot *snap;
    struct pjson_role_refs *refs;
    struct prov_listing roles, users, perms;
    struct prov_listing divisions;         /* genesys: the org's divisions */
    struct prov_listing inactive, deleted; /* genesys: users read by cursor, per state */
    struct prov_listing *grants;           /* genesys: one listing per role whose grants are
                                              read (prov_fetch_grants) */
    size_t ngrants;
    struct pjson_grant_refs *grefs; /* grants read by user id, resolved at the end */
    struct pjson_grant_stats grant_stats;
    /* The two-step read (provider.h prov_fetch_opts.roles_read): roles_done once the role
     * listing is complete; until prov_fetch_grants, the read waits (grants_wait). */
    void (*roles_read)(struct prov_fetch *f, struct mdl_snapshot *roles, void *arg);
    void *roles_read_arg;
    bool roles_done, grants_wait;
    /* fetch_finish ran: the read's end is queued on the thread pool. It runs once, and a
     * prov_fetch_grants that comes after a failed read finished (the caller has not had the
     * callback yet, provider.h allows the call) must not queue finish_work a second time. */
    bool finishing;
    /* The provider's part of prov_fetch_grants: request the grants of the masked roles and
     * mark the others mdl_role.grants_unread. NULL: the users listing brings every grant. */
    void (*request_grants)(struct prov_fetch *f, const bool *mask);
    unsigned pending;  /* page requests in flight */
    size_t held_bytes; /* bodies of pages waiting for or on the thread pool */
    bool failed, auth_failed;
    char err[512];
    /* The request whose reply failed the read (see struct prov_read_error); `reply` is the
     * reply being handled, so a failure raised meanwhile is attributed to it. */
    const struct http_result *reply;
    bool err_req;
    char err_method[16], err_path[512], err_cid[160];
    long err_status;
    prov_fetch_cb cb;
    void *arg;
    /* The end of the read, on libuv's thread pool (see fetch_resolve in provider.c). */
    uv_work_t finish_work;
    int resolve_rc, finish_rc;
    struct pjson_resolve_stats resolve_stats;
    char finish_err[512];
};

/* One page request of a fetch. */
struct prov_page {
    struct prov_fetch *f;
    struct prov_listing *l;
    unsigned number; /* genesys pageNumber (1-based) / identity page index (0-based) */
    void *prepared;  /* pages read with a prov_page_parser: what its prepare returned */
};

/* A page whose parsing is split so that the costly half runs off the event loop (the users
 * listings: nearly all the bytes and CPU of a cycle). `prepare` runs on libuv's thread pool and
 * must touch nothing shared: it reads and checks the body (which stays alive until the page is
 * done) and returns an owned result. The page's `on_page` then runs on the loop as usual, with
 * pg->prepared set, and must consume it; if the read has failed meanwhile, `discard` frees it
 * instead. */
struct prov_page_parser {
    void *(*prepare)(const char *body, size_t len);
    void (*discard)(void *prepared);
};

struct prov_fetch *prov_fetch_new(const struct prov_tenant *t, enum cfg_api api, prov_fetch_cb cb,
                                  void *arg);
/* Submit a page GET; `on_page` parses it, after `parser`'s prepare when `parser` is not NULL. */
void prov_fetch_page(struct prov_fetch *f, struct prov_listing *l, unsigned number,
                     const char *path, const struct prov_page_parser *parser,
                     void (*on_page)(struct prov_page *pg, const struct http_result *res));
/* Record a read failure (first one wins). */
void prov_fetch_fail(struct prov_fetch *f, bool auth, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Once the page range [next, end) is known: request pages up to the window. */
void prov_fetch_more(struct prov_fetch *f, struct prov_listing *l);
/* Check the entry count of page `index` (0-based) of a listing whose total and page_size are
 * known: every page but the last is full, the last holds the rest, a page past the end is
 * empty. Otherwise the read fails naming this page's request (call while handling its reply):
 * the listing changed while it was read, or its total lies — and paging on would only ask for
 * empty pages, up to the millions a lying total can claim. true when it matches. */
bool prov_page_count_ok(struct prov_fetch *f, struct prov_listing *l, unsigned index, size_t count,
                        const char *path);
/* Mark one page done; requests more pages of its listing, and finishes the fetch (callback)
 * when nothing is left in flight. */
void prov_fetch_page_done(struct prov_page *pg);
/* Turn a failed engine result into a fetch failure message. */
void prov_fetch_fail_result(struct prov_fetch *f, const struct http_result *res);

struct prov_tenant_req;
/* Called with the outcome of one provider request; `res` is the engine's result. */
typedef void (*prov_reply_fn)(struct prov_tenant_req *req, const struct http_result *res);

/* One write request in flight: the user's callback plus scratch for the provider. */
struct prov_tenant_req {
    enum cfg_api api;
    const char *op; /* static: "role create", ... */
    prov_done_cb cb;
    void *arg;
    prov_reply_fn on_reply; /* provider hook run on 2xx before the callback; may set fields */
    long accept_status;     /* a non-2xx status that is success too (0: none) */
    const char *hint_405;   /* prov_submit_opts.hint_405 */
    char *id;               /* filled by on_reply for creates */
    char *parse_error;      /* set by on_reply when a 2xx reply is unreadable */
};

/* on_reply hook for writes the platform answers without a body (DELETE): an empty body is
 * success; a body that is there must be JSON, else the reply cannot be trusted (a proxy's or a
 * broken server's page) and the write counts as failed. */
void prov_reply_empty_or_json(struct prov_tenant_req *req, const struct http_result *res);

/* For an on_reply hook whose reply must read as a list of ids (genesys users/add|remove and
 * user authorization, identity user roles): a 2xx reply that `parse` refuses cannot be trusted
 * to mean the write happened, so it sets req->parse_error and the write counts as failed. */
struct pjson_ids; /* provider_json.h */
typedef int (*prov_ids_parser)(const char *body, size_t len, struct pjson_ids *out, char *err,
                               size_t errlen);
void prov_reply_check_ids(struct prov_tenant_req *req, const struct http_result *res,
                          prov_ids_parser parse);

/* Submit a write; takes ownership of nothing (body and path are copied by the engine). */
void prov_submit(const struct prov_tenant *t, const char *op, const char *method, const char *path,
                 const char *body, prov_reply_fn on_reply, prov_done_cb cb, void *arg);
/* The same with options: `accept_status`, a non-2xx reply status that is success too (its
 * on_reply hook then judges the reply: identity's 302 to the create of an existing identical
 * role, a revocation of a grant already gone); `retry_404`, retry a 404 with the retry policy
 * (a write naming a role created this cycle, product.md 4a.8). o may be NULL. */
struct prov_submit_opts {
    long accept_status;
    bool retry_404;
    const char *hint_405; /* appended to the message of a 405 failure (static), or NULL */
};
void prov_submit_opts(const struct prov_tenant *t, const char *op, const char *method,
                      const char *path, const char *body, const struct prov_submit_opts *o,
                      prov_reply_fn on_reply, prov_done_cb cb, void *arg);

/* Report a failure without a request (bad input detected before sending), from the loop. */
void prov_fail_later(const struct prov_tenant *t, const char *op, const char *method,
                     const char *path, const char *message, prov_done_cb cb, void *arg);

#endif
