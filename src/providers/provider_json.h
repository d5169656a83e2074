/* provider_json.h — the JSON boundary of both providers: strict parsers that turn API response
 * bodies into the provider-neutral model (model.h), and builders of request bodies.
 *
 * Everything here is pure: no I/O, no logging, no global state. The providers (genesys.c,
 * identity.c) own the HTTP side; they hand each response body to one of these functions and
 * fail the whole read when one returns -1 — a page that does not parse must never be read as
 * "those roles/users were deleted".
 *
 * Validation (every response, every field used):
 *  - The body must be one complete JSON text: not empty, no NUL byte, valid UTF-8, nothing but
 *    white space after it, at most PJSON_MAX_BODY bytes, nested at most PJSON_MAX_DEPTH levels.
 *  - Required fields must be present and of the right type; optional fields may be absent or
 *    null (the platforms drop null fields) but when present must have the right type.
 *    Fields we do not use are ignored (the platforms add fields over time).
 *  - Integers must be JSON integers (1e2, 1.5, 1e400 are refused) within a documented range;
 *    json-c saturates huge integers (99999999999999999999 -> INT64_MAX), which the ranges catch.
 *  - Ids (role/user ids, genesys defaultRoleId): 1..PJSON_MAX_ID bytes of text without NUL or
 *    control characters (C0, DEL, C1). Platform ids are GUIDs; anything else printable is
 *    accepted and percent-encoded into a URL path (pjson_path_segment), never spliced raw.
 *  - Names (role names, emails, usernames, permission strings, external ids): at most
 *    PJSON_MAX_NAME bytes, no NUL, no control characters (C0, DEL, C1).
 *  - Descriptions: at most PJSON_MAX_TEXT bytes, no NUL, no control characters but tab, CR, LF.
 *  - Lists (entities, permissions, policies, actions, a user's roles): at most PJSON_MAX_LIST.
 *  Each failure yields one message "WHAT: PATH: PROBLEM" in the caller's buffer, e.g.
 *  "genesys roles page: entities[3].permissionPolicies[0].actionSet[1]: expected string, got
 *  number". Messages never quote the offending value (it may be hostile).
 *
 * Page parsers are atomic: on error nothing of that page has been added to the snapshot.
 * They append to a snapshot that is not finished yet (mdl_snapshot_finish comes after
 * pjson_role_refs_resolve).
 *
 * Ownership: strings and arrays added to a snapshot live in its arena; every char * returned by
 * a builder, and the contents of struct pjson_role / struct pjson_ids, are malloc'd and belong
 * to the caller (free with free() / pjson_role_free() / pjson_ids_free()).
 *
 * This header is private to the providers (src/providers/); the platform parsers are declared
 * in genesys_json.h (gjs_*) and identity_json.h (ijs_*). Implementation: the shared part
 * (pjson_*) in provider_json.c, genesys in genesys_json.c, identity in identity_json.c. The user
 * listings (gjs_parse_users_page, ijs_parse_users_page: nearly all the bytes of a cycle) are
 * read with jscan (jscan.h), without a tree; every other body with json-c. The rules above are
 * the same for both, with one difference at the syntax level: jscan takes only RFC 8259 JSON,
 * where json-c also takes NaN, Infinity, "1.", "00", raw tabs in strings and unpaired
 * surrogates, and it refuses a member name holding U+0000.
 */
#ifndef ROLESYNC_PROVIDER_JSON_H
#define ROLESYNC_PROVIDER_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h> /* PJSON_KEY_IS */

#include "providers/jscan.h"
#include "rolesync/model.h"

#define PJSON_MAX_BODY (64u * 1024u * 1024u) /* bytes; product.md section 5 */
#define PJSON_MAX_DEPTH 64                   /* nesting levels; deeper is refused */
#define PJSON_MAX_ID 128                     /* bytes of an id or built-in key */
#define PJSON_MAX_NAME 256                   /* bytes of a name, email, permission string */
#define PJSON_MAX_TEXT 4096                  /* bytes of a description */
#define PJSON_MAX_LIST 100000                /* elements of any one array */

/* ------------------------------------------------------------------------------------------ */
/* Shared                                                                                     */

/* A list of ids (malloc'd strings). */
struct pjson_ids {
    char **v;
    size_t n;
};
void pjson_ids_free(struct pjson_ids *ids); /* frees the strings and the array; zeroes *ids */

/* One role parsed from a single-object response (POST/PUT reply). All strings malloc'd. */
struct pjson_role {
    char *id;
    char *name;
    char *description; /* NULL when absent */
    char *builtin_key; /* genesys defaultRoleId / identity RoleTypeId (lower case); NULL = custom */
    char *def_canon;   /* genesys canonical definition (see gjs_parse_roles_page); identity NULL */
    char *def_json;    /* genesys writable definition JSON; identity NULL */
    bool foreign;      /* identity: RoleScope != 1 or a CommunityId */
};
void pjson_role_free(struct pjson_role *r); /* frees the strings; zeroes *r; NULL-safe */

/* A platform error body, reduced to what a log line and status.json need. Strings are
 * truncated (on a UTF-8 boundary), control characters replaced by '?'; empty when absent. */
struct pjson_error_info {
    char message[512];
    char code[128];           /* genesys `code` (e.g. "not.found"); identity `Error` */
    char correlation_id[128]; /* genesys `contextId`; identity `OperationId` */
    int status;               /* genesys `status`; 0 when absent (identity has none) */
};

/* Validate an id as the parsers do (len bytes at s; embedded NUL refused). 0 or -1 + err. */
int pjson_check_id(const char *s, size_t len, char *err, size_t errlen);

/* A URL path segment for an id: validated like pjson_check_id, then percent-encoded (every
 * byte outside RFC 3986 unreserved; the dots of a "." or ".." id too). Caller frees. NULL + err
 * when the id is invalid (NULL, empty, too long, control characters). */
char *pjson_path_segment(const char *id, char *err, size_t errlen);

/* JSON array of strings, `["a","b"]`, properly escaped. Caller frees. Used for genesys
 * PUT /authorization/roles/{id}/users/add|remove (the caller batches at most 100 ids) and
 * PUT /users/{id}/roles. */
char *pjson_build_string_array(const char *const *v, size_t n);

/* User -> role-id references read from user pages, waiting for the role list to be complete.
 *
 * Pages arrive in any order and the snapshot's role index exists only after
 * mdl_snapshot_finish(), which must come after every user is added. So user pages record each
 * (user index, role id) here, with role ids interned (a tenant has few distinct roles, many
 * grants), and once every role and user page is in, pjson_role_refs_resolve() maps ids to role
 * indexes with a temporary hash and calls mdl_user_add_role(). Then the caller finishes. */
struct pjson_role_refs;
struct pjson_role_refs *pjson_role_refs_new(void);
void pjson_role_refs_free(struct pjson_role_refs *r);          /* NULL-safe */
size_t pjson_role_refs_count(const struct pjson_role_refs *r); /* references recorded */

struct pjson_resolve_stats {
    size_t refs;                          /* references resolved (incl. unknown ones) */
    size_t unknown_refs;                  /* references to role ids absent from the role listing */
    size_t unknown_ids;                   /* distinct such role ids */
    char first_unknown[PJSON_MAX_ID + 1]; /* one of them, for the warning; "" when none */
};

/* Resolve every recorded reference into `s` (not yet finished). A reference to a role id the
 * role listing lacks is either dropped (keep_unknown false) or — recommended for targets whose
 * role-set writes replace the whole set — kept through a placeholder role added to `s`:
 * {id, name = id, foreign = true}, which the core never grants, revokes or matches, so a
 * rewrite of that user's roles keeps it. Counts go to *st (the caller logs a warning when
 * unknown_refs > 0). Returns 0, or -1 + err when `s` is finished or two roles share an id.
 * The references are consumed (the list is empty afterwards). */
int pjson_role_refs_resolve(struct pjson_role_refs *r, struct mdl_snapshot *s, bool keep_unknown,
                            struct pjson_resolve_stats *st, char *err, size_t errlen);

/* Grants read by subject id (genesys subject grants pages), waiting for the users listing.
 *
 * A page lists the subjects holding one role, each with the divisions it holds it in; it may
 * arrive before the user it names. Each (user id, role index, division id) is recorded here
 * (ids copied; division ids interned), and once every page is in, pjson_grant_refs_resolve()
 * indexes the users (mdl_index_users), adds each grant with mdl_user_add_grant, and adds a
 * qualifier for a division id the divisions listing lacked (id only, no name: it matches no
 * division elsewhere, so its grants are never touched). A user id the listing lacks (a user
 * deleted meanwhile, one the client cannot see) counts as a holder outside the snapshot
 * (mdl_role.other_holders). */
struct pjson_grant_refs;
struct pjson_grant_refs *pjson_grant_refs_new(void);
void pjson_grant_refs_free(struct pjson_grant_refs *r); /* NULL-safe */
void pjson_grant_refs_add(struct pjson_grant_refs *r, const char *user_id, size_t ulen,
                          uint32_t role, const char *division_id, size_t dlen);
size_t pjson_grant_refs_count(const struct pjson_grant_refs *r);

struct pjson_grant_stats {
    size_t grants;            /* grants added */
    size_t unknown_users;     /* distinct (user id, role) pairs whose user the listing lacks */
    size_t unknown_divisions; /* division ids the divisions listing lacks */
};
/* Resolve into `s` (users complete, not finished). 0, or -1 + err (duplicate user ids). */
int pjson_grant_refs_resolve(struct pjson_grant_refs *r, struct mdl_snapshot *s,
                             struct pjson_grant_stats *st, char *err, size_t errlen);

/* ------------------------------------------------------------------------------------------ */
/* Internal: shared by genesys_json.c and identity_json.c (implemented in provider_json.c).
 * Not for other modules: they must not see json-c objects.                                   */

struct json_object;

/* Parse state: the error buffer and the JSON path of the value being checked. */
struct pjson_cur {
    const char *what; /* "genesys roles page", ... */
    char *err;
    size_t errlen;
    char path[200];
    size_t plen;
};
void pjson_cur_init(struct pjson_cur *c, const char *what, char *err, size_t errlen);
size_t pjson_push_key(struct pjson_cur *c, const char *key); /* returns the mark to pop to */
size_t pjson_push_idx(struct pjson_cur *c, size_t i);
void pjson_pop(struct pjson_cur *c, size_t mark);
int pjson_fail(struct pjson_cur *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Body -> json-c tree per the rules above; NULL + error. Caller json_object_put()s. */
struct json_object *pjson_parse(struct pjson_cur *c, const char *body, size_t len);

enum pjson_kind {
    PJSON_ID,   /* see pjson_check_id */
    PJSON_NAME, /* 1..PJSON_MAX_NAME, no control characters */
    PJSON_TEXT, /* 0..PJSON_MAX_TEXT, no control characters but \t \r \n */
};
/* Check a JSON string value (already known to be a string) against a kind. */
int pjson_check_string(struct pjson_cur *c, struct json_object *v, enum pjson_kind kind);
/* Member `key` of object `obj` as a string of `kind`. Absent or null: *out = NULL, and an
 * error when `required`. An empty string of PJSON_NAME reads as absent when !required. */
int pjson_get_string(struct pjson_cur *c, struct json_object *obj, const char *key,
                     enum pjson_kind kind, bool required, const char **out);
/* Member as an integer in [min, max]; absent/null: *present = false (error when required). */
int pjson_get_int(struct pjson_cur *c, struct json_object *obj, const char *key, int64_t min,
                  int64_t max, bool required, int64_t *out, bool *present);
int pjson_get_bool(struct pjson_cur *c, struct json_object *obj, const char *key, bool dflt,
                   bool *out);
/* Member as an array of at most PJSON_MAX_LIST elements; absent/null: *out = NULL (error when
 * required). */
int pjson_get_array(struct pjson_cur *c, struct json_object *obj, const char *key, bool required,
                    struct json_object **out);
/* Member as an object; absent/null: *out = NULL (error when required). */
int pjson_get_object(struct pjson_cur *c, struct json_object *obj, const char *key, bool required,
                     struct json_object **out);
/* Member `key` as a string when it is one, else NULL; no checks (for error bodies, which only
 * decorate a failure the caller already has). */
const char *pjson_loose_string(struct json_object *obj, const char *key);
/* Top-level value must be an array / object. */
int pjson_expect_array(struct pjson_cur *c, struct json_object *v);
int pjson_expect_object(struct pjson_cur *c, struct json_object *v);

/* Growable output buffer for building JSON. */
struct pjson_buf {
    char *p;
    size_t n, cap;
};
void pjson_buf_put(struct pjson_buf *b, const char *s, size_t n);
void pjson_buf_puts(struct pjson_buf *b, const char *s);
void pjson_buf_put_string(struct pjson_buf *b, const char *s); /* JSON-escaped, quoted */
char *pjson_buf_take(struct pjson_buf *b);                     /* NUL-terminated; caller frees */

/* NULL when s[0..len) is a usable id (see pjson_check_id) / text of a kind (allow_newlines:
 * PJSON_TEXT), else a short description of the problem (static text). */
const char *pjson_id_problem(const char *s, size_t len);
const char *pjson_text_problem(const char *s, size_t len, bool allow_newlines);
/* Eight bits of an id (len >= 1) for direct-mapped caches of recently seen ids. */
unsigned pjson_id_slot8(const char *id, size_t len);

/* Copy src into dst (size n): truncated on a UTF-8 boundary, control characters -> '?'. */
void pjson_copy_clean(char *dst, size_t n, const char *src);

/* ASCII lower-case copy into the snapshot's arena. */
const char *pjson_arena_lower(struct mdl_snapshot *s, const char *str);

/* Record (user, role id) in refs; role_id already validated. The _n form takes a span
 * (len bytes at role_id, no NUL needed). */
void pjson_role_refs_add(struct pjson_role_refs *r, uint32_t user, const char *role_id);
void pjson_role_refs_addn(struct pjson_role_refs *r, uint32_t user, const char *role_id,
                          size_t len);

/* ---- Pages read with jscan (the user listings; see jscan.h for why) ----
 * Same rules, and the same field-error messages, as the json-c helpers above (syntax errors are
 * worded alike but come from jscan, so their byte offsets and which of two comes first may
 * differ), over values recorded while scanning
 * (struct jscan_val, type JSCAN_NONE when the member was absent). The page parsers scan the
 * whole body first, recording the members they use (the last one wins, as in json-c's
 * objects), and check them afterwards in the json-c parsers' order, so a syntax error anywhere
 * is reported before any field error, as pjson_parse() does. */
/* pjson_parse()'s checks before any scanning (empty, size, NUL byte), then jscan_init() with
 * PJSON_MAX_DEPTH. 0 or -1 + error. */
int pjson_scan_init(struct pjson_cur *c, struct jscan *j, const char *body, size_t len);
/* Word the reader's (syntax) error as pjson_parse() would, without a path. Returns -1. */
int pjson_scan_fail(struct pjson_cur *c, const struct jscan *j);

/* A string value's text: s[0..len) points into the body (unescaped strings) or into heap
 * (NUL-terminated, escaped strings); s is NULL for an absent optional value. */
struct pjson_sv {
    const char *s;
    size_t len;
    char *heap;
};
void pjson_sv_free(struct pjson_sv *sv);
/* The text NUL-terminated: sv->heap, or a copy into buf (bufsz > sv->len, which the kind's
 * length limit guarantees for a buffer of PJSON_MAX_NAME + 1). NULL when absent. */
const char *pjson_sv_cstr(const struct pjson_sv *sv, char *buf, size_t bufsz);
/* pjson_check_string / pjson_get_string for a scanned value (`key` names it in the path). */
int pjson_sv_check(struct pjson_cur *c, const struct jscan_val *v, enum pjson_kind kind,
                   struct pjson_sv *out);
int pjson_sv_get(struct pjson_cur *c, const struct jscan_val *v, const char *key,
                 enum pjson_kind kind, bool required, struct pjson_sv *out);
/* pjson_get_int for a scanned value. */
int pjson_sv_int(struct pjson_cur *c, const struct jscan_val *v, const char *key, int64_t min,
                 int64_t max, bool required, int64_t *out);
/* pjson_get_object / pjson_get_array (with the element count it held) for a scanned value of
 * type `t`: 1 when present and of the kind, 0 when absent or null and not required, -1. */
int pjson_sv_object(struct pjson_cur *c, enum jscan_type t, const char *key, bool required);
int pjson_sv_array(struct pjson_cur *c, enum jscan_type t, size_t count, const char *key,
                   bool required);
/* pjson_expect_object / pjson_expect_array for a scanned value of type `t`. */
int pjson_sv_expect_object(struct pjson_cur *c, enum jscan_type t);
int pjson_sv_expect_array(struct pjson_cur *c, enum jscan_type t, size_t count);
/* pjson_role_refs_addn for a checked string value (escapes decoded first). */
void pjson_role_refs_add_val(struct pjson_role_refs *r, uint32_t user, const struct jscan_val *id);
/* jscan_value(), then for an object or array jscan_skip_rest(): *v keeps the type only. */
int pjson_scan_flat(struct jscan *j, struct jscan_val *v);
/* A member name equals the literal (escaped names compared after unescaping). */
#define PJSON_KEY_IS(k, lit)                                                                       \
    ((!(k)->escaped && (k)->len == sizeof(lit) - 1 &&                                              \
      memcmp((k)->raw, lit, sizeof(lit) - 1) == 0) ||                                              \
     ((k)->escaped && jscan_eq((k), lit)))

#endif
