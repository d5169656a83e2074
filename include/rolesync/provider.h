/* provider.h — one platform's REST API behind a common interface (genesys.c, identity.c).
 *
 * Providers are the only code that knows a platform's URLs and JSON (with provider_json.h, their
 * pure JSON boundary). The sync engine (sync.c) reads snapshots and applies plan operations only
 * through struct prov_ops, so adding a platform means adding one provider file.
 *
 * Every operation submits its request(s) through the HTTP engine (http.h, which owns retries,
 * tokens and limits) and calls back exactly once, from the loop, never from inside the call.
 *
 * Reads: prov_ops.fetch() lists roles and users (first pages, then the remaining pages
 * concurrently once the page count is known) into a fresh, finished snapshot. A read fails whole
 * — never "an empty listing" — when any page fails, does not parse, or the listing changed under
 * it (the page totals disagree), because a partial listing read as complete would look like
 * deletions.
 *
 * Writes: one call per plan request; the result names the method, the path, the status, the
 * server's message and correlation id, for the log and status.json.
 */
#ifndef ROLESYNC_PROVIDER_H
#define ROLESYNC_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>

#include "rolesync/config.h"
#include "rolesync/http.h"
#include "rolesync/model.h"

/* A tenant as the providers see it: its config and its HTTP engine tenant (both borrowed). */
struct prov_tenant {
    const struct cfg_tenant *cfg;
    struct http_tenant *http;
    uv_loop_t *loop;
    /* Asked before every write request is sent (http_gate; the fencing of product.md 7a), or
     * NULL. Borrowed: set by the cycle on its own copy of the tenant, for its writes only. */
    const struct http_gate *write_gate;
};

struct prov_fetch; /* a read in progress; valid until its callback has run */

struct prov_fetch_opts {
    bool licensed_domains; /* genesys: also read the org's licensed permission domains */
    bool licensed_only;    /* genesys: read only those (the snapshot has no roles or users) */
    /* A read in two steps, for platforms whose grants are read role by role (genesys subject
     * grants, product.md 4a.1): once the role listing is complete, roles_read() is called
     * (from the loop) with the snapshot, whose roles are readable (not finished); the read
     * then waits until prov_fetch_grants() says whose grants to read. The callback may add roles
     * to the snapshot first (the roles it created lately that the listing does not show yet,
     * recent.h: flagged mdl_role.recent, their grants are not read). NULL: the grants of every
     * role but the forced one are read. Never called when the read fails first. */
    void (*roles_read)(struct prov_fetch *f, struct mdl_snapshot *roles, void *arg);
    void *roles_read_arg;
};

/* Second step of a two-step read: read the grants of the roles whose `mask` entry is true
 * (indexes of the snapshot's roles as roles_read showed them); the others are marked
 * mdl_role.grants_unread. mask NULL: none. Once per read, after roles_read and before the read's
 * callback. A platform whose users listing brings every grant reads nothing more. */
void prov_fetch_grants(struct prov_fetch *f, const bool *mask);

/* Why a read failed. The request fields name the request whose reply failed the read (an error
 * status, a transport failure, or a reply that could not be used); they are NULL / 0 when the
 * failure concerns no single request (e.g. a listing that changed while it was read). */
struct prov_read_error {
    const char *message;        /* one line, includes method and path when there is a request */
    bool auth_failed;           /* the tenant's credentials were refused */
    const char *method;         /* or NULL */
    const char *path;           /* as requested (with its query), or NULL */
    long status;                /* that reply's HTTP status; 0 = none */
    const char *correlation_id; /* that reply's correlation id, or NULL */
};

/* `snap` (finished) belongs to the callee; NULL with `err` on failure (err and its strings live
 * until the callback returns). */
typedef void (*prov_fetch_cb)(struct mdl_snapshot *snap, const struct prov_read_error *err,
                              void *arg);

/* Outcome of one write request. Strings live until the callback returns. */
struct prov_result {
    bool ok;
    bool auth_failed; /* credentials refused (401 after renewal, 403, token refused) */
    bool cancelled;   /* not sent, or cut short, because the daemon is stopping: no failure */
    const char *method;
    const char *path;           /* request path (ids percent-encoded) */
    long status;                /* 0 when there was no reply */
    const char *message;        /* server's message or transport error; "" on success */
    const char *correlation_id; /* ININ-Correlation-Id / Operation-Id, or "" */
    const char *id;             /* role create: the new role's id; else NULL */
};
typedef void (*prov_done_cb)(const struct prov_result *r, void *arg);

struct pjson_error_info; /* providers/provider_json.h */

/* A grant as a write names it (plan.h struct plan_grant_ids). */
struct prov_grant {
    const char *role_id;
    const char *qual_id; /* the qualifier's platform id (genesys division id, "*") */
};

#define PROV_W_NEW_ROLE 0x1u /* see prov_ops.grant_users */

/* Write capabilities and conventions of a platform, copied into each snapshot it reads
 * (mdl_snapshot.caps), where the pure core reads them. */
#define PROV_MATCH(m) (1u << (m)) /* bit of a cfg_match_by in prov_ops.match_by */

/* One grant of one subject as the platform lists it for that subject (prov_ops.subject_grants):
 * ids as the platform spells them, resolved by the caller against a snapshot. */
struct prov_subject_grant {
    const char *role_id;
    const char *qual_id;      /* division id ("*": all divisions) */
    const char *subject_id;   /* the user itself (direct), or the group it is inherited from */
    const char *subject_name; /* that group's name when it could be read, else NULL */
};
/* `g` (n entries) lives until the callback returns; NULL with `err` on failure. */
typedef void (*prov_subject_cb)(const struct prov_subject_grant *g, size_t n,
                                const struct prov_read_error *err, void *arg);

struct prov_ops {
    enum cfg_api api;
    const char *name;

    /* ---- platform facts: what the config loader and the HTTP engine must know ---- */
    enum http_auth auth;            /* how the token is requested */
    const char *correlation_header; /* the request id header of replies */
    /* The token endpoint when the config names none (product.md section 3); malloc'd. */
    char *(*token_url)(const char *base_url);
    unsigned page_size_roles, page_size_users; /* default page sizes of the listings */
    unsigned page_size_max;                    /* the largest page the platform serves */
    unsigned match_by;                         /* PROV_MATCH() bits of the usable match keys */
    const char *match_by_names;                /* the same for messages: "email, username" */
    unsigned caps;                             /* MDL_CAP_* of its snapshots (model.h) */
    /* The engine's hooks (http.h http_tenant_opts): the platform's error body as one line, and
     * the rate-limit window its replies advertise (NULL: none). */
    void (*error_message)(const char *body, size_t len, char *buf, size_t n);
    bool (*rate_window)(const struct http_header *h, size_t n, struct http_rate_window *w);
    /* The platform's error body for results and status.json (message, code, correlation id):
     * 0 when the body is one, -1 otherwise. */
    int (*parse_error)(const char *body, size_t len, struct pjson_error_info *out);

    /* ---- reads and writes ---- */
    struct prov_fetch *(*fetch)(const struct prov_tenant *t, const struct prov_fetch_opts *o,
                                prov_fetch_cb cb, void *arg);
    /* Create a custom role named `name` with `src`'s description and definition (same api). */
    void (*role_create)(const struct prov_tenant *t, const struct mdl_role *src, const char *name,
                        prov_done_cb cb, void *arg);
    /* Write `src`'s definition to the target role `tgt` (a default role keeps its name and
     * description). */
    void (*role_update)(const struct prov_tenant *t, const struct mdl_role *src,
                        const struct mdl_role *tgt, prov_done_cb cb, void *arg);
    void (*role_delete)(const struct prov_tenant *t, const struct mdl_role *tgt, prov_done_cb cb,
                        void *arg);
    /* Grant writes (snapshot cap MDL_CAP_GRANT_WRITES; NULL where the platform has none):
     * grant one role in one qualifier to up to 100 users; revoke one role from up to 100 users
     * in every qualifier; add or remove several (role, qualifier) grants of one user. `flags`:
     * PROV_W_NEW_ROLE when a role named was created this cycle (product.md 4a.8: the platform
     * may answer 404 for it a while; the write is retried with the retry policy's backoff). */
    void (*grant_users)(const struct prov_tenant *t, const char *role_id, const char *qual_id,
                        const char *const *user_ids, size_t n, unsigned flags, prov_done_cb cb,
                        void *arg);
    void (*revoke_users)(const struct prov_tenant *t, const char *role_id,
                         const char *const *user_ids, size_t n, prov_done_cb cb, void *arg);
    void (*user_grants)(const struct prov_tenant *t, const char *user_id, bool add,
                        const struct prov_grant *g, size_t n, unsigned flags, prov_done_cb cb,
                        void *arg);
    /* Replace a user's whole role set (targets without grant writes). */
    void (*user_set_roles)(const struct prov_tenant *t, const char *user_id,
                           const char *const *role_ids, size_t n, prov_done_cb cb, void *arg);
    /* Before the diff of a same-api job with definitions: rewrite the role definitions of both
     * snapshots into what this target can keep (genesys: leave out permission policies of
     * domains the target org does not license, read with fetch's licensed_domains), so the diff
     * compares only what a write could change, and keep what was read in def_canon_read. Calls
     * note() with the reason for every source role changed that way; the caller reports it as
     * "not converging" (each cycle, never re-sent) where the target's role differs from what
     * the source holds. NULL where a platform keeps what it is sent. */
    void (*adapt_definitions)(struct mdl_snapshot *src, struct mdl_snapshot *tgt,
                              void (*note)(uint32_t role, const char *reason, void *arg),
                              void *arg);
    /* One user's own grants, inherited ones included with the group they come from (genesys:
     * GET .../subjects/{id}?includeDuplicates=true, then each such group's name): read by
     * rolesyncd --explain for the one user it explains, since a cycle's reads (role by role
     * subject grants) see direct grants only. Reads only. NULL where the platform's reads
     * already tell direct from inherited, or cannot (identity). */
    void (*subject_grants)(const struct prov_tenant *t, const char *user_id, prov_subject_cb cb,
                           void *arg);
    /* A definition as JSON text (def_json, or as a change journal kept it) in the canonical
     * form of this platform's def_canon, so an undo can tell whether a role still holds what a
     * cycle wrote (undo.h); malloc'd, NULL + err when it is not one. NULL where a platform has
     * no definition beyond the description (def_canon is always NULL). */
    char *(*def_canon)(const char *def_json, char *err, size_t errlen);
};

const struct prov_ops *prov_for_api(enum cfg_api api);
extern const struct prov_ops prov_genesys;
extern const struct prov_ops prov_identity;

#endif
