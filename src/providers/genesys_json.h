/* genesys_json.h — Genesys Cloud response parsers and request builders (gjs_*) (private to
 * src/providers/). The rules every parser follows (validation, messages, ownership) are in
 * provider_json.h. */
#ifndef ROLESYNC_GENESYS_JSON_H
#define ROLESYNC_GENESYS_JSON_H

#include "providers/provider_json.h"
#include "rolesync/provider.h"

/* ------------------------------------------------------------------------------------------ */
/* Genesys Cloud (api/genesys.md sections 4-7)                                                */

/* defaultRoleIds with a meaning to the core (product.md section 4 point 6): every user holds
 * `employee` (it cannot be removed); `admin` is the organisation's administrator role. The
 * roles parsers mark them (mdl_role.forced / .admin). */
#define GJS_FORCED_ROLE "employee"
#define GJS_ADMIN_ROLE "admin"

/* Envelope of a genesys listing page. total is bounded to 0..10^9, pageSize to 0..100000,
 * pageNumber to 1..10^7, pageCount to 0..10^7; pageCount * pageSize must cover total (else
 * pages could be missed) and entities must not exceed pageSize. The caller checks pageNumber
 * and total against what it asked for and what page 1 said. */
struct gjs_page {
    int64_t total;
    uint32_t page_count;
    uint32_t page_number;
    uint32_t page_size;
    size_t entities; /* elements in this page's `entities` */
};

/* GET /api/v2/authorization/roles page (OrganizationRoleEntityListing) -> roles appended to
 * `s`. Per DomainOrganizationRole: id (required id), name (required name), description
 * (optional text), defaultRoleId -> builtin_key, permissions[] and permissionPolicies[].
 * A role is built-in when `default` is true or defaultRoleId is non-empty; its key is the
 * defaultRoleId, and `default: true` without a defaultRoleId is an error (a default role that
 * cannot be keyed would be taken for a custom role, and could be pruned).
 *
 * def_canon = def_json = compact JSON, byte-for-byte canonical:
 *   {"permissions":[sorted unique strings],
 *    "permissionPolicies":[sorted unique policies]}
 * each policy {"domain","entityName","actionSet":[sorted unique],"allowConditions":bool,
 *   "namedResources":[sorted unique] (only when non-empty),
 *   "resourceConditionNode":{keys sorted, null members dropped} (only when present)}.
 * policyName/policyDescription are dropped (the platform derives them; type-checked only).
 * Absent permissions/permissionPolicies read as empty (the platform omits empty fields).
 * Wildcards are kept as written: actionSet ["*"] and its expansion differ, as do policies that
 * a platform splits or merges; a target that rewrites what it is sent shows up as
 * "not converging" in the core, which is the honest report. */
int gjs_parse_roles_page(struct mdl_snapshot *s, const char *body, size_t len,
                         struct gjs_page *page, char *err, size_t errlen);

/* GET /api/v2/users?expand=authorization page (UserEntityListing) -> users appended to `s`,
 * their role ids recorded in `refs`. Per User: id (required), email, username (optional
 * names; "" reads as absent), state (required: active|inactive|deleted), authorization.roles
 * [{id}] (required: a user without the expansion would read as holding no roles, so it
 * fails the page rather than revoke everything). */
int gjs_parse_users_page(struct mdl_snapshot *s, struct pjson_role_refs *refs, const char *body,
                         size_t len, struct gjs_page *page, char *err, size_t errlen);

/* gjs_parse_users_page in two halves, so the costly one can run off the event loop.
 * gjs_users_prepare reads and checks the page and touches nothing shared (any thread); it
 * never returns NULL, and what it returns points into `body`, which must outlive it.
 * gjs_users_commit appends it to `s` and `refs` exactly as gjs_parse_users_page would (the
 * same result, *page and message) and frees it; gjs_users_discard only frees it. */
struct gjs_users_prep;
struct gjs_users_prep *gjs_users_prepare(const char *body, size_t len);
int gjs_users_commit(struct gjs_users_prep *p, struct mdl_snapshot *s, struct pjson_role_refs *refs,
                     struct gjs_page *page, char *err, size_t errlen);
void gjs_users_discard(struct gjs_users_prep *p);

/* The users listings of version 2 reads (product.md 4a): the grants come from subject grants,
 * so a user's `authorization` is neither required nor read. GJS_USERS_ROLES: the version 1
 * page (authorization.roles required), as gjs_users_prepare. GJS_USERS_PLAIN: GET
 * /api/v2/users without the expansion (the offset envelope). GJS_USERS_CURSOR: GET
 * /api/v2/users/query (UserCursorEntityListing {entities, results, cursor}): gjs_page has
 * entities = page_size = the users of this page, no total; the next page's cursor comes out
 * of gjs_users_commit_cursor (NULL on the last page; caller frees). */
enum { GJS_USERS_ROLES = 0, GJS_USERS_PLAIN = 1, GJS_USERS_CURSOR = 2 };
struct gjs_users_prep *gjs_users_prepare_mode(const char *body, size_t len, unsigned mode);
int gjs_users_commit_cursor(struct gjs_users_prep *p, struct mdl_snapshot *s,
                            struct pjson_role_refs *refs, struct gjs_page *page, char **cursor,
                            char *err, size_t errlen);

/* GET /api/v2/authorization/divisions page (AuthzDivisionEntityListing) -> qualifiers of `s`:
 * the entity with homeDivision true names qualifier 0 (mdl_set_home), the others are appended.
 * Per AuthzDivision: id (required id; "*" refused, it is the all-divisions grant's), name
 * (required name), homeDivision (optional bool). A second home division fails the page. */
int gjs_parse_divisions_page(struct mdl_snapshot *s, const char *body, size_t len,
                             struct gjs_page *page, char *err, size_t errlen);

/* GET /api/v2/authorization/roles/{id}/subjectgrants page (SubjectDivisionGrantsEntityListing)
 * of the role with index `role` in `s`: per subject id (required id), type (required name),
 * divisions[] (required, each with a required id). PC_USER subjects' (user, division) pairs go
 * to `refs`; every other subject (groups, OAuth clients, types unknown to this reader) counts
 * as a holder outside the users (mdl_role.other_holders). */
int gjs_parse_subjectgrants_page(struct mdl_snapshot *s, struct pjson_grant_refs *refs,
                                 uint32_t role, const char *body, size_t len, struct gjs_page *page,
                                 char *err, size_t errlen);

/* GET /api/v2/authorization/permissions page (a listing of DomainPermissionCollection) ->
 * each entity's `domain` (or, lacking one, its `id`) is added to s->licensed_domains
 * (sorted, unique across pages). */
int gjs_parse_permissions_page(struct mdl_snapshot *s, const char *body, size_t len,
                               struct gjs_page *page, char *err, size_t errlen);

/* POST/PUT /api/v2/authorization/roles[/{id}] reply (DomainOrganizationRole) -> *out, with
 * def_canon computed as above (for the "not converging" check). */
int gjs_parse_role(const char *body, size_t len, struct pjson_role *out, char *err, size_t errlen);

/* GET/PUT /api/v2/users/{id}/roles reply (UserAuthorization) -> role ids of `roles`. */
int gjs_parse_user_authorization(const char *body, size_t len, struct pjson_ids *out, char *err,
                                 size_t errlen);

/* PUT /api/v2/authorization/roles/{id}/users/add|remove reply: a JSON array of ids. */
int gjs_parse_id_array(const char *body, size_t len, struct pjson_ids *out, char *err,
                       size_t errlen);

/* ErrorBody {message, code, status, contextId}. Returns 0 when the body is a JSON object with
 * at least `message` or `code`, else -1 (out is still zeroed). Never fails loudly: it only
 * decorates an HTTP error the caller already has. */
int gjs_parse_error(const char *body, size_t len, struct pjson_error_info *out);
/* The one line the HTTP engine puts in its error texts and logs for such a body (the
 * ErrorBody: its `message`); "" when it is none. For http_tenant_opts.error_message. */
void gjs_error_line(const char *body, size_t len, char *buf, size_t n);

/* Request bodies (caller frees; NULL + err on invalid input). `def_json` is a role's def_json
 * from a genesys snapshot (or NULL = no permissions, no policies); it is re-validated.
 *  create: DomainOrganizationRoleCreate {name, description?, permissions, permissionPolicies}
 *  update: DomainOrganizationRoleUpdate {name (required), description, permissions,
 *          permissionPolicies} — all always sent, PUT replaces (description NULL -> "")
 *  default-role update: the target's own name and description (a default role is never
 *          renamed) with the source's permissions and policies. */
char *gjs_build_role_create(const char *name, const char *description, const char *def_json,
                            char *err, size_t errlen);
char *gjs_build_role_update(const char *name, const char *description, const char *def_json,
                            char *err, size_t errlen);
char *gjs_build_default_role_update(const struct mdl_role *target, const char *source_def_json,
                                    char *err, size_t errlen);

/* Grant writes (api/genesys.md section 4, RoleDivisionGrants / SubjectDivisions):
 *  POST /authorization/roles/{id}: {"subjectIds":[...],"divisionIds":[division]} (the caller
 *          batches at most 100 subjects)
 *  POST /authorization/subjects/{id}/bulkadd|bulkremove: {"grants":[{"roleId","divisionId"}]}
 * Ids are written as given (JSON-escaped); the caller has them from validated snapshots. */
char *gjs_build_subject_divisions(const char *const *subject_ids, size_t n, const char *division);
char *gjs_build_role_division_grants(const char *const *role_ids, const char *const *division_ids,
                                     size_t n);

/* Licensing: an org silently drops permission policies whose domain it does not license
 * (api/genesys.md section 7), so a definition copied from another org would be re-sent every
 * cycle. Remove from `def_json` (a canonical definition as above) the policies whose domain is
 * not in `licensed` (sorted, unique, e.g. snapshot->licensed_domains). Returns the filtered
 * canonical definition (caller frees); *dropped is NULL when nothing was removed, else the
 * removed domains joined by ", " (caller frees). NULL + err when def_json is invalid. */
char *gjs_def_filter_domains(const char *def_json, const char *const *licensed, size_t n,
                             char **dropped, char *err, size_t errlen);

/* GET /api/v2/authorization/subjects/{id} (AuthzSubject): its grants[], each with a required
 * subjectId (the user, or the group a grant is inherited from), division.id and role.id, into a
 * malloc'd array (subject_name NULL; free with gjs_subject_free). */
int gjs_parse_subject(const char *body, size_t len, struct prov_subject_grant **out, size_t *n,
                      char *err, size_t errlen);
void gjs_subject_free(struct prov_subject_grant *v, size_t n);
/* GET /api/v2/groups/{id}: the group's name (optional: *name NULL when absent; caller frees). */
int gjs_parse_group_name(const char *body, size_t len, char **name, char *err, size_t errlen);
/* A definition as JSON text (a role's def_json, or one a change journal kept) in the canonical
 * form gjs_parse_roles_page gives def_canon, so the two compare byte-wise (prov_ops.def_canon).
 * Caller frees; NULL + err when it is not a definition. */
char *gjs_def_canon(const char *def_json, char *err, size_t errlen);

#endif
