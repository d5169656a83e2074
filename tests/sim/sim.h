/* sim.h — internals of tenantsim, the simulated Genesys / identity tenant (spec/simulator.md).
 *
 * Layout: sim_main.c (command line, daemon life cycle), sim_server.c (libmicrohttpd glue: the
 * request pipeline, tokens, rate limit, faults, stats, /_sim control routes), sim_state.c (the
 * tenant model and its state JSON, tests/sim/README.md), sim_genesys.c and sim_identity.c (the two
 * platform APIs), sim_util.c (string builder, ids, query/form parsing, globs), sim_gen.c (the
 * fixture generator behind `tenantsim gen`).
 *
 * The genesys model (simulator.md §3b): a grant is a (subject, role, division) triple. Subjects
 * are users, groups and OAuth clients (sim_subj, embedded in each); each keeps its direct grants
 * in grant order. A role keeps the subjects holding it directly (sim_role.holders, in subject
 * order) so a subjectgrants page costs O(page); a user keeps the de-duplicated roles it holds in
 * any division, directly or through a group (sim_user.roles, the "held view" that
 * expand=authorization renders), rebuilt by the writes that change it rather than per page.
 *
 * Threading: libmicrohttpd runs one thread per connection. The tenant is guarded by ctx->lock
 * (a writer-preferring rwlock): a reader builds its reply from the cached API strings of
 * roles/users and may use json-c's pure accessors (object_get_ex, get_string, array_get_idx) on
 * the stored objects, but never serialises them or takes references (json-c's print buffers
 * and reference counts are not thread-safe; handlers that need that take the lock
 * exclusively); a writer holds the lock exclusively, validates the whole request
 * first and mutates only once nothing can fail, so a failed request changes nothing.
 */
#ifndef TENANTSIM_SIM_H
#define TENANTSIM_SIM_H

#include <json-c/json.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uthash.h>

#include "rolesync/util.h"

enum sim_api { SIM_GENESYS = 1, SIM_IDENTITY = 2 };

/* ---- string builder (sim_util.c) -------------------------------------------------------- */
typedef struct sim_sb {
    char *buf;  /* NUL-terminated when non-NULL */
    size_t len; /* bytes used, without the NUL */
    size_t cap; /* bytes allocated */
} sim_sb;

void sb_putn(sim_sb *sb, const char *s, size_t n);
void sb_puts(sim_sb *sb, const char *s);
#define sb_putl(sb, lit) sb_putn((sb), "" lit, sizeof(lit) - 1) /* a string literal */
void sb_putc(sim_sb *sb, char c);
void sb_printf(sim_sb *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_json_str(sim_sb *sb, const char *s); /* quoted, escaped JSON string; NULL -> null */
/* A URI as a JSON string: prefix followed by the percent-encoded id ("/api/v2/users/a%2Fb"). */
void sb_json_uri(sim_sb *sb, const char *prefix, const char *id);
void sb_free(sim_sb *sb);
char *sb_steal(sim_sb *sb); /* returns the buffer (never NULL), leaves sb empty */

/* ---- misc helpers (sim_util.c) ----------------------------------------------------------- */
void sim_guid(char out[37]);                 /* random version-4 GUID, lower case */
void sim_random_hex(char *out, size_t nhex); /* nhex hex digits + NUL */
double sim_random01(void);
uint64_t sim_mono_ms(void);
/* "500ms", "30s", "10m", "2h", plain number = seconds. Returns -1 on error. */
int64_t sim_parse_duration_ms(const char *s);
/* Glob over a request path: '*' matches any run (also across '/'), '?' one character. */
bool sim_glob(const char *pat, const char *s);
char *sim_strlower(const char *s);
/* Decode %XX and '+' in place (application/x-www-form-urlencoded). */
void sim_form_decode(char *s);
/* Parse a whole JSON text; NULL when malformed or when anything but whitespace follows. */
json_object *sim_json_parse(const char *buf, size_t len);
/* JSON text of an object, compact; caller frees. Only under the exclusive lock for shared objects.
 */
char *sim_json_dup_string(json_object *o);
const char *sim_json_str(json_object *obj, const char *key); /* string member or NULL */
bool sim_parse_int(const char *s, long long *out); /* whole string must be a decimal integer */
/* Percent-decoding in two steps, so that an id holding '/' (sent as %2F) stays one path
 * segment: libmicrohttpd's unescape callback runs sim_unescape_keep_slash() over the path and
 * every query key and value (decodes %XX in place except %2F and %25, returns the new length);
 * sim_pct_decode() then decodes what is left -- once, in route parameters and query values. */
size_t sim_unescape_keep_slash(char *s);
char *sim_pct_decode(const char *s, size_t n); /* malloc'd */
/* base64 (standard or URL alphabet, padding optional) into a new NUL-terminated string, NULL
 * when malformed; and n bytes as unpadded base64url (new string). */
char *sim_b64_decode(const char *s);
char *sim_b64url_encode(const void *data, size_t n);
/* Match a path against a route pattern ("/api/v2/users/{id}/roles"). On a match the "{...}"
 * segments are copied, percent-decoded, into params[0..] (caller frees; at most maxp) and true
 * is returned. */
bool sim_path_match(const char *pattern, const char *path, bool icase, char **params, int maxp);

/* ---- the tenant model (sim_state.c) ------------------------------------------------------ */
struct sim_subj;

typedef struct sim_role {
    char *id;
    char *name;
    char *name_lc;    /* key of the case-insensitive name index */
    char *kind;       /* genesys defaultRoleId / identity RoleTypeId; NULL for custom roles */
    json_object *obj; /* the role in state-JSON form; touched only under the write lock */
    char *api;        /* cached API JSON of the role without its closing '}' */
    size_t api_len;
    char *policies; /* genesys: cached JSON of permissionPolicies without the brackets */
    char *ref;      /* genesys: cached {"id":..,"name":..} for users' authorization */
    size_t ref_len;
    size_t user_count;  /* identity: users holding the role; genesys: users holding it directly
                           in any division (the platform's userCount, simulator decision) */
    size_t idx;         /* position in sim_tenant.roles */
    bool in_name_index; /* false for a (loaded) duplicate name that lost the index slot */
    /* genesys */
    struct sim_subj **holders; /* subjects holding the role directly, by sim_subj.seq */
    size_t nholders, hcap;
    uint64_t visible_ms;    /* --lag: grant endpoints and listings ignore the role until then
                               (sim_mono_ms clock); 0 for every role not created through the API */
    unsigned mark;          /* de-duplication stamp (sim_tenant.stamp), write lock only */
    UT_hash_handle hh;      /* by id */
    UT_hash_handle hh_name; /* by name_lc */
} sim_role;

/* A division of a genesys org. The all-divisions grant target "*" is sim_tenant.all_div: it can
 * be granted in but is not listed. */
typedef struct sim_div {
    char *id;
    char *name;
    bool home;
    json_object *obj; /* state form: borrowed, an element of meta's "divisions" */
    char *api;        /* cached AuthzDivision JSON */
    size_t api_len;
    UT_hash_handle hh;
} sim_div;

typedef struct sim_grant {
    sim_role *role;
    sim_div *div;
} sim_grant;

enum sim_subj_type { SIM_SUBJ_USER = 0, SIM_SUBJ_GROUP = 1, SIM_SUBJ_CLIENT = 2 };

/* What users, groups and OAuth clients share as holders of grants (genesys). */
typedef struct sim_subj {
    int type;          /* enum sim_subj_type */
    size_t seq;        /* order among the tenant's subjects: users, then groups, then clients */
    const char *id;    /* the owner's id */
    json_object *obj;  /* the owner's state form (for its name) */
    sim_grant *grants; /* direct grants in grant order, no duplicate (role, division) */
    size_t ngrants, gcap;
} sim_subj;

enum sim_user_state { SIM_ACTIVE = 0, SIM_INACTIVE = 1, SIM_DELETED = 2, SIM_NSTATES = 3 };
#define SIM_ANY_STATE SIM_NSTATES /* index of "every state" in sim_tenant.by_id */

struct sim_group;

typedef struct sim_user {
    char *id;
    json_object *obj; /* state-JSON form without the role list; write lock only */
    char *api;        /* cached API JSON without the role list and the closing '}' */
    size_t api_len;
    /* identity: the held roles. genesys: the held view, every role held in any division,
     * directly (grant order) then through groups, de-duplicated; derived from the grants. */
    sim_role **roles;
    size_t nroles, rcap;
    int state;                 /* enum sim_user_state (genesys); SIM_ACTIVE for identity */
    sim_subj subj;             /* genesys: the user's direct grants */
    struct sim_group **groups; /* genesys: groups the user is a member of */
    size_t ngroups;
    UT_hash_handle hh;
} sim_user;

typedef struct sim_group {
    char *id;
    json_object *obj; /* state form without members, roles and grants */
    sim_subj subj;
    sim_user **members;
    size_t nmembers;
    UT_hash_handle hh;
} sim_group;

/* An OAuth client holding grants (PC_OAUTH_CLIENT): visible in subjectgrants and subjects. */
typedef struct sim_oauth {
    char *id;
    json_object *obj; /* state form without roles and grants */
    sim_subj subj;
    UT_hash_handle hh;
} sim_oauth;

typedef struct sim_tenant {
    int api;
    json_object *meta; /* every top-level state key except roles and users */
    sim_role **roles;  /* stable listing order */
    size_t nroles, rcap;
    sim_role *role_by_id, *role_by_name;
    sim_user **users; /* stable listing order */
    size_t nusers, ucap;
    sim_user *user_by_id;
    sim_user **by_state[SIM_NSTATES]; /* genesys: users per state, listing order */
    size_t nby_state[SIM_NSTATES];
    /* genesys: users per state (SIM_ANY_STATE: all) sorted by id, the order of the cursor
     * listing, whose cursor names the last user returned (robust to users added or removed) */
    sim_user **by_id[SIM_NSTATES + 1];
    char **unlicensed; /* genesys: lower-case unlicensed permission domains */
    size_t nunlicensed;
    char *org_id;   /* genesys */
    sim_div **divs; /* genesys: listing order; exactly one is home */
    size_t ndivs;
    sim_div *div_by_id, *home;
    sim_div all_div; /* "*" */
    sim_group **groups;
    size_t ngroups;
    sim_group *group_by_id;
    sim_oauth **oauths;
    size_t noauths;
    sim_oauth *oauth_by_id;
    unsigned stamp;       /* for sim_role.mark */
    char *tenant_id;      /* identity */
    sim_role *keeper;     /* employee (genesys) / Tenant Member (identity): always held */
    json_object *factory; /* genesys: defaultRoleId -> factory role object (for restore/compare) */
} sim_tenant;

#define SIM_MEMBER_TYPE "7ad2b9ef-5386-4ead-ac9f-ad99c5c5b977"

/* Build a tenant from state JSON (borrowed). tenant_id overrides the identity tenant id when
 * non-NULL. Adds missing default/built-in roles. NULL + message on invalid input. */
sim_tenant *sim_tenant_load(int api, json_object *root, const char *tenant_id, char *err,
                            size_t errlen);
json_object *sim_tenant_dump(sim_tenant *t); /* new reference; caller puts */
void sim_tenant_free(sim_tenant *t);

sim_role *sim_role_find(sim_tenant *t, const char *id);
sim_role *sim_role_find_name(sim_tenant *t, const char *name); /* case-insensitive */
sim_user *sim_user_find(sim_tenant *t, const char *id);
/* genesys: a division by id ("*" is &t->all_div), a subject by id and type (-1: any type). */
sim_div *sim_div_find(sim_tenant *t, const char *id);
sim_subj *sim_subj_find(sim_tenant *t, const char *id, int type);
static inline sim_user *sim_subj_user(sim_subj *s)
{
    return (sim_user *)(void *)((char *)s - offsetof(sim_user, subj));
}
static inline sim_group *sim_subj_group(sim_subj *s)
{
    return (sim_group *)(void *)((char *)s - offsetof(sim_group, subj));
}
/* Takes ownership of obj (state form). Adds the role at the end of the listing. */
sim_role *sim_role_add(sim_tenant *t, json_object *obj);
/* Drops the role from every user (identity) / every grant of every subject (genesys), frees it. */
void sim_role_remove(sim_tenant *t, sim_role *r);
void sim_role_set_name(sim_tenant *t, sim_role *r, const char *name);
void sim_role_refresh(sim_tenant *t, sim_role *r); /* re-derive caches after editing r->obj */
/* identity: the user's role list (also keeps user_count). */
bool sim_user_has_role(const sim_user *u, const sim_role *r);
void sim_user_add_role(sim_user *u, sim_role *r);
void sim_user_remove_role(sim_user *u, sim_role *r);
void sim_user_clear_roles(sim_user *u);
/* genesys grants (write lock). add/remove return whether anything changed; set_grants makes the
 * direct grants exactly list[0..n) (no duplicates in it). Each keeps the holder index and
 * userCount; the held views of the users concerned are rebuilt by sim_subj_changed, which the
 * caller runs once per subject after its last change. */
bool sim_subj_has(const sim_subj *s, const sim_role *r, const sim_div *d);
bool sim_grant_add(sim_tenant *t, sim_subj *s, sim_role *r, sim_div *d);
bool sim_grant_remove(sim_tenant *t, sim_subj *s, sim_role *r, sim_div *d);
void sim_subj_set_grants(sim_tenant *t, sim_subj *s, const sim_grant *list, size_t n);
void sim_subj_changed(sim_tenant *t, sim_subj *s);
/* genesys --lag: is the role visible to grant endpoints and listings at now_ms? */
static inline bool sim_role_visible(const sim_role *r, uint64_t now_ms)
{
    return r->visible_ms <= now_ms;
}
/* genesys: is a permission domain licensed? */
bool sim_domain_licensed(const sim_tenant *t, const char *domain);
/* Writes the role's API JSON (genesys: userCount appended unless !user_count). */
void sim_role_json(sim_sb *sb, const sim_role *r, bool user_count);

/* ---- request / reply (sim_server.c) ------------------------------------------------------ */
typedef struct sim_qarg {
    char *key;
    char *val;
} sim_qarg;

typedef struct sim_reply {
    unsigned status;
    sim_sb body;
    bool has_body; /* false: no body at all (204, HEAD, identity 401) */
    char *hname[12];
    char *hval[12];
    int nhdr;
} sim_reply;

struct sim_ctx;

typedef struct sim_req {
    struct sim_ctx *ctx;
    const char *method;
    const char *path;
    const char *body;
    size_t body_len;
    sim_qarg *args; /* decoded query arguments in request order (repeated keys kept) */
    size_t nargs;
    const char *host; /* Host header or NULL */
    const char *authorization;
    const char *content_type;
    bool head;
    const char *route;     /* route template for stats; set by the router */
    char corr_id[37];      /* ININ-Correlation-Id / Operation-Id of this reply */
    bool is_write;         /* POST/PUT/PATCH/DELETE */
    bool drop_write;       /* fault: answer as if the write happened, keep nothing */
    json_object *snapshot; /* drop_write: tenant state taken when the write lock was acquired */
} sim_req;

/* The tenant lock. Writers go through sim_wrlock/sim_wrunlock so that a drop_write fault can
 * restore the state the request started from before the lock is released. */
void sim_rdlock(sim_req *rq);
void sim_rdunlock(sim_req *rq);
void sim_wrlock(sim_req *rq);
void sim_wrunlock(sim_req *rq);

void reply_header(sim_reply *rp, const char *name, const char *value);
const char *req_arg(const sim_req *rq, const char *key); /* first value of key or key[] */
/* All values of key / key[] (repeated and comma-joined, empty items skipped) as a new array of
 * new strings (*out; free with sim_free_list). Returns the count. */
size_t req_arg_list(const sim_req *rq, const char *key, char ***out);
void sim_free_list(char **v, size_t n);

/* ---- server context ---------------------------------------------------------------------- */
typedef struct sim_client {
    char *id;
    char *secret;
} sim_client;

#define SIM_TOKEN_REALM_MAX 32 /* --token-realm */

typedef struct sim_token {
    char tok[SIM_TOKEN_REALM_MAX + 1 + 64 + 1]; /* [realm.]64 hex */
    uint64_t expires_ms;                        /* monotonic */
    uint64_t window_start;                      /* rate limit window start, monotonic ms */
    long count;                                 /* requests in the current window */
    UT_hash_handle hh;
} sim_token;

typedef struct sim_fault {
    char *method; /* NULL = any */
    char *path;
    long skip, times;
    double probability;
    int action;
    unsigned status;
    long retry_after; /* -1 = none */
    long stall_ms;
    long seen;        /* matching requests so far */
    long fired;       /* times the fault fired */
    json_object *src; /* the rule as given, for listing */
} sim_fault;

enum sim_fault_action {
    SIM_F_STATUS = 1,
    SIM_F_RESET,
    SIM_F_STALL,
    SIM_F_GARBAGE,
    SIM_F_TRUNCATE,
    SIM_F_DROP_WRITE
};

typedef struct sim_count {
    char *key;
    long n;
    UT_hash_handle hh;
} sim_count;

typedef struct sim_ctx {
    int api;
    /* configuration (read-only once serving) */
    sim_client *clients;
    size_t nclients;
    int64_t token_ttl_ms;
    char *token_realm; /* --token-realm: tokens NAME.<hex>, shared with same-realm peers */
    long rate_limit;   /* requests per window, 0 = unlimited */
    int64_t rate_window_ms;
    int64_t latency_ms;
    long max_page;         /* genesys pageSize / identity count ceiling */
    long offset_cap;       /* genesys --offset-cap: users listings other than active (0 = off) */
    int64_t lag_ms;        /* genesys --lag: how long a new role stays invisible to grants */
    bool read_only_region; /* identity --read-only-region: 405 on Users/Roles writes */
    char *tenant_id_opt;   /* --tenant-id */
    bool tls;
    /* tenant */
    pthread_rwlock_t lock;
    sim_tenant *t;
    unsigned long gen; /* bumped whenever the write lock is taken (under it) */
    /* rendered listing pages of the current gen (sim_page_cached) */
    pthread_mutex_t cache_mu;
    struct sim_page *pages;
    size_t pages_bytes;
    /* tokens */
    pthread_mutex_t tok_mu;
    sim_token *tokens;
    /* stats */
    pthread_mutex_t st_mu;
    long st_total, st_writes;
    sim_count *st_route, *st_status;
    atomic_long in_flight;
    long max_in_flight;
    long st_connections; /* TCP connections accepted (each new one a handshake for a client) */
    /* faults */
    pthread_mutex_t f_mu;
    sim_fault *faults;
    size_t nfaults, fcap;
    /* --request-log: one JSON line per API request, appended under reqlog_mu */
    FILE *reqlog;
    pthread_mutex_t reqlog_mu;
    /* shutdown */
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    bool stopping;
} sim_ctx;

/* A rendered listing page, reused until the tenant next changes: a benchmark's steady-state
 * cycle reads the same pages again, and rendering them (10^5 users) was most of the
 * simulators' CPU, taken from the two cores the daemon under test runs on. The reply is
 * byte-identical. Call both with the read lock held: sim_page_cached appends the page to `out`
 * and returns true when it is cached for this state; sim_page_keep stores it. The key must
 * determine the body (path and every argument). */
bool sim_page_cached(sim_req *rq, const char *key, sim_sb *out);
void sim_page_keep(sim_req *rq, const char *key, const char *body, size_t len);
/* The tenant's exclusive lock without the drop_write machinery (state load, dumps). */
void sim_lock_exclusive(sim_ctx *ctx);

/* Sleep ms milliseconds unless the server is stopping (then return early). */
void sim_sleep(sim_ctx *ctx, int64_t ms);

/* Platform error replies. */
void genesys_error(sim_req *rq, sim_reply *rp, unsigned status, const char *code, const char *fmt,
                   ...) __attribute__((format(printf, 5, 6)));
void identity_error(sim_req *rq, sim_reply *rp, unsigned status, const char *error,
                    const char *reason, const char *resolution);
/* Standard genesys error code for an HTTP status (faults). */
const char *genesys_code_for_status(unsigned status);

/* The API routers: called with the bearer token already checked; take the lock themselves. */
void genesys_route(sim_req *rq, sim_reply *rp);
void identity_route(sim_req *rq, sim_reply *rp);
/* Route template for stats/faults without executing the request. */
const char *genesys_template(const char *method, const char *path);
const char *identity_template(const char *method, const char *path);

/* Server life cycle (sim_server.c). */
struct MHD_Daemon;
struct MHD_Daemon *sim_server_start(sim_ctx *ctx, const char *listen, const char *cert_pem,
                                    const char *key_pem, unsigned *port, char *err, size_t errlen);
void sim_ctx_init(sim_ctx *ctx);
void sim_ctx_free(sim_ctx *ctx);

#endif
