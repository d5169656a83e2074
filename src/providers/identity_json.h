/* identity_json.h — AVEVA / OCS identity response parsers and request builders (ijs_*) (private to
 * src/providers/). The rules every parser follows (validation, messages, ownership) are in
 * provider_json.h. */
#ifndef ROLESYNC_IDENTITY_JSON_H
#define ROLESYNC_IDENTITY_JSON_H

#include "providers/provider_json.h"

/* ------------------------------------------------------------------------------------------ */
/* Identity (api/identity.md sections 2-6, 9)                                                 */

/* RoleTypeIds (lower case) with a meaning to the core (api/identity.md section 5): Tenant
 * Member, which every user and client holds, and Tenant Administrator. The roles parser marks
 * them (mdl_role.forced / .admin). */
#define IJS_TENANT_MEMBER "7ad2b9ef-5386-4ead-ac9f-ad99c5c5b977"
#define IJS_TENANT_ADMIN "2dc742ab-39ea-4fc0-a39e-2bcb71c26a5f"

/* GET /api/v1/Tenants/{t}/Roles page (Role[]) -> roles appended to `s`; *count = elements.
 * Per Role: Id (required id), Name (required name), Description (optional text; it is the
 * whole definition, def_canon/def_json stay NULL), RoleScope (integer 0..1000 or null),
 * TenantId, CommunityId (optional ids), RoleTypeId (optional id, lower-cased -> builtin_key).
 * A role with RoleScope != 1 or a non-empty CommunityId is `foreign`. The listing has no
 * envelope: the caller pages with skip/count, stops on a short page, and may compare with
 * the Total-Count header (ijs_parse_total_count). */
int ijs_parse_roles_page(struct mdl_snapshot *s, const char *body, size_t len, size_t *count,
                         char *err, size_t errlen);

/* GET /api/v1/Tenants/{t}/Users page (User[]) -> users appended to `s`, role ids recorded in
 * `refs`; *count = elements. Per User: Id (required), Email else ContactEmail -> email
 * ("" reads as absent), IdentityProviderId + ExternalUserId -> external_key
 * "idp/ext" lower-cased when both are non-empty, RoleIds (required array: a user whose roles
 * are unknown must fail the page, not read as holding none). username NULL, state ACTIVE. */
int ijs_parse_users_page(struct mdl_snapshot *s, struct pjson_role_refs *refs, const char *body,
                         size_t len, size_t *count, char *err, size_t errlen);

/* ijs_parse_users_page in two halves, as gjs_users_prepare / _commit / _discard. */
struct ijs_users_prep;
struct ijs_users_prep *ijs_users_prepare(const char *body, size_t len);
int ijs_users_commit(struct ijs_users_prep *p, struct mdl_snapshot *s, struct pjson_role_refs *refs,
                     size_t *count, char *err, size_t errlen);
void ijs_users_discard(struct ijs_users_prep *p);

/* Total-Count header value: decimal digits only, 0..10^9. */
int ijs_parse_total_count(const char *value, uint64_t *out, char *err, size_t errlen);

/* POST (201) / PUT (200) .../Roles[/{id}] reply (Role) -> *out. A 302 reply to POST (a role
 * with that name exists) has no body: do not call this; take the id from Location with
 * ijs_role_id_from_location(), or re-list. */
int ijs_parse_role(const char *body, size_t len, struct pjson_role *out, char *err, size_t errlen);

/* Last path segment of a Location such as "/api/v1/Tenants/{t}/Roles/{id}" (absolute URLs,
 * query and fragment allowed), validated as an id. Caller frees. NULL + err otherwise. */
char *ijs_role_id_from_location(const char *location, char *err, size_t errlen);

/* PUT .../Users/{id}/Roles reply (Role[]) -> the Ids (each element must carry a valid Id). */
int ijs_parse_role_ids(const char *body, size_t len, struct pjson_ids *out, char *err,
                       size_t errlen);

/* ErrorResponse {OperationId, Error, Reason, Resolution}: message = Reason (else Error),
 * then " Resolution" when present, code = Error, correlation_id = OperationId. Same contract as
 * gjs_parse_error (0 when at least one of Error/Reason is present). */
int ijs_parse_error(const char *body, size_t len, struct pjson_error_info *out);
/* The one line the HTTP engine puts in its error texts and logs for such a body (the
 * ErrorResponse: "Error (Reason)", else Error); "" when it is none. For
 * http_tenant_opts.error_message. */
void ijs_error_line(const char *body, size_t len, char *buf, size_t n);

/* Request bodies (caller frees; NULL + err when name/id is missing or empty).
 *  create: {"Name","Description","RoleScope":1}   (Description null when NULL)
 *  update: {"Id","Name","Description","RoleScope":1}
 *  user roles: [{"Id":"..."}, ...] (PUT .../Users/{id}/Roles replaces the whole set) */
char *ijs_build_role_create(const char *name, const char *description, char *err, size_t errlen);
char *ijs_build_role_update(const char *id, const char *name, const char *description, char *err,
                            size_t errlen);
char *ijs_build_user_roles(const char *const *ids, size_t n);

#endif
