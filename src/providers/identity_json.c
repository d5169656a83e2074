/* identity_json.c — the AVEVA CONNECT / OCS Identity API's JSON boundary (ijs_*): Role[] and
 * User[] pages into the model, single Role replies, ErrorResponse, Total-Count, Location, and
 * request bodies. Contract in include/rolesync/provider_json.h; the shared strict-parsing
 * machinery (pjson_*) is in genesys_json.c.
 */
#include "rolesync/provider_json.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rolesync/util.h"

/* Optional id member; "" and null read as absent. */
static int opt_id(struct pjson_cur *c, struct json_object *obj, const char *key, const char **out)
{
    struct json_object *v = NULL;
    *out = NULL;
    if (json_object_object_get_ex(obj, key, &v) && json_object_is_type(v, json_type_string) &&
        json_object_get_string_len(v) == 0)
        return 0;
    return pjson_get_string(c, obj, key, PJSON_ID, false, out);
}

static char *lower_dup(const char *s)
{
    return s ? util_strdup_fold(s) : NULL;
}

/* ========================================================================================== */
/* Roles                                                                                      */

struct i_role_tmp {
    const char *id, *name, *desc, *type; /* point into the json-c tree */
    bool foreign;
};

static int i_role(struct pjson_cur *c, struct json_object *e, struct i_role_tmp *t)
{
    int64_t scope;
    bool has_scope;
    const char *tenant, *community;
    memset(t, 0, sizeof(*t));
    if (pjson_expect_object(c, e) < 0 || pjson_get_string(c, e, "Id", PJSON_ID, true, &t->id) < 0 ||
        pjson_get_string(c, e, "Name", PJSON_NAME, true, &t->name) < 0 ||
        pjson_get_string(c, e, "Description", PJSON_TEXT, false, &t->desc) < 0 ||
        pjson_get_int(c, e, "RoleScope", 0, 1000, false, &scope, &has_scope) < 0 ||
        opt_id(c, e, "TenantId", &tenant) < 0 || opt_id(c, e, "CommunityId", &community) < 0 ||
        opt_id(c, e, "RoleTypeId", &t->type) < 0)
        return -1;
    /* Only tenant-scoped (RoleScope 1) non-community roles are the daemon's to manage; a role
     * whose scope is unknown is left alone too. */
    t->foreign = !has_scope || scope != 1 || community != NULL;
    return 0;
}

int ijs_parse_roles_page(struct mdl_snapshot *s, const char *body, size_t len, size_t *count,
                         char *err, size_t errlen)
{
    struct pjson_cur c;
    *count = 0;
    pjson_cur_init(&c, "identity roles page", err, errlen);
    struct json_object *root = pjson_parse(&c, body, len);
    if (!root)
        return -1;
    if (pjson_expect_array(&c, root) < 0) {
        json_object_put(root);
        return -1;
    }
    size_t n = json_object_array_length(root);
    struct i_role_tmp *t = xcalloc(n ? n : 1, sizeof(*t));
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t mark = pjson_push_idx(&c, i);
        rc = i_role(&c, json_object_array_get_idx(root, i), &t[i]);
        pjson_pop(&c, mark);
    }
    /* Only a page that is valid as a whole reaches the snapshot. */
    for (size_t i = 0; i < n && rc == 0; i++) {
        char *key = lower_dup(t[i].type);
        struct mdl_role r = {.id = t[i].id,
                             .name = t[i].name,
                             .description = t[i].desc,
                             .builtin_key = key,
                             .foreign = t[i].foreign};
        mdl_add_role(s, &r);
        free(key);
    }
    if (rc == 0)
        *count = n;
    free(t);
    json_object_put(root);
    return rc;
}

int ijs_parse_role(const char *body, size_t len, struct pjson_role *out, char *err, size_t errlen)
{
    struct pjson_cur c;
    struct i_role_tmp t;
    memset(out, 0, sizeof(*out));
    pjson_cur_init(&c, "identity role", err, errlen);
    struct json_object *root = pjson_parse(&c, body, len);
    if (!root)
        return -1;
    if (i_role(&c, root, &t) < 0) {
        json_object_put(root);
        return -1;
    }
    out->id = xstrdup(t.id);
    out->name = xstrdup(t.name);
    out->description = xstrdup(t.desc);
    out->builtin_key = lower_dup(t.type);
    out->foreign = t.foreign;
    json_object_put(root);
    return 0;
}

/* Array of objects each with a valid `Id`. */
static int check_id_objects(struct pjson_cur *c, struct json_object *arr)
{
    size_t n = json_object_array_length(arr);
    for (size_t i = 0; i < n; i++) {
        const char *id;
        size_t mark = pjson_push_idx(c, i);
        struct json_object *e = json_object_array_get_idx(arr, i);
        if (pjson_expect_object(c, e) < 0 || pjson_get_string(c, e, "Id", PJSON_ID, true, &id) < 0)
            return -1;
        pjson_pop(c, mark);
    }
    return 0;
}

int ijs_parse_role_ids(const char *body, size_t len, struct pjson_ids *out, char *err,
                       size_t errlen)
{
    struct pjson_cur c;
    memset(out, 0, sizeof(*out));
    pjson_cur_init(&c, "identity user roles", err, errlen);
    struct json_object *root = pjson_parse(&c, body, len);
    if (!root)
        return -1;
    if (pjson_expect_array(&c, root) < 0 || check_id_objects(&c, root) < 0) {
        json_object_put(root);
        return -1;
    }
    size_t n = json_object_array_length(root);
    out->v = xcalloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        struct json_object *id = NULL;
        json_object_object_get_ex(json_object_array_get_idx(root, i), "Id", &id);
        out->v[i] = xstrdup(json_object_get_string(id));
    }
    out->n = n;
    json_object_put(root);
    return 0;
}

/* ========================================================================================== */
/* Users                                                                                      */

struct i_user_tmp {
    const char *id, *email;
    char *external_key;        /* malloc'd, lower case; NULL unless both parts are present */
    struct json_object *roles; /* validated array of ids */
};

static int i_user(struct pjson_cur *c, struct json_object *e, struct i_user_tmp *t)
{
    const char *email, *contact, *idp, *ext;
    memset(t, 0, sizeof(*t));
    if (pjson_expect_object(c, e) < 0 || pjson_get_string(c, e, "Id", PJSON_ID, true, &t->id) < 0 ||
        pjson_get_string(c, e, "Email", PJSON_NAME, false, &email) < 0 ||
        pjson_get_string(c, e, "ContactEmail", PJSON_NAME, false, &contact) < 0 ||
        opt_id(c, e, "IdentityProviderId", &idp) < 0 ||
        pjson_get_string(c, e, "ExternalUserId", PJSON_NAME, false, &ext) < 0)
        return -1;
    /* A user who has not accepted the invitation has no Email yet (product.md 4.4). */
    t->email = email ? email : contact;
    /* RoleIds is nullable in the schema, but every user holds Tenant Member: a user without
     * the list has unknown roles, which must fail the page rather than read as "none". */
    if (pjson_get_array(c, e, "RoleIds", true, &t->roles) < 0)
        return -1;
    size_t mark = pjson_push_key(c, "RoleIds");
    size_t n = json_object_array_length(t->roles);
    for (size_t i = 0; i < n; i++) {
        size_t m2 = pjson_push_idx(c, i);
        if (pjson_check_string(c, json_object_array_get_idx(t->roles, i), PJSON_ID) < 0)
            return -1;
        pjson_pop(c, m2);
    }
    pjson_pop(c, mark);
    if (idp && ext) {
        char *k = xasprintf("%s/%s", idp, ext);
        t->external_key = util_strdup_fold(k);
        free(k);
    }
    return 0;
}

int ijs_parse_users_page(struct mdl_snapshot *s, struct pjson_role_refs *refs, const char *body,
                         size_t len, size_t *count, char *err, size_t errlen)
{
    struct pjson_cur c;
    *count = 0;
    pjson_cur_init(&c, "identity users page", err, errlen);
    struct json_object *root = pjson_parse(&c, body, len);
    if (!root)
        return -1;
    if (pjson_expect_array(&c, root) < 0) {
        json_object_put(root);
        return -1;
    }
    size_t n = json_object_array_length(root);
    struct i_user_tmp *t = xcalloc(n ? n : 1, sizeof(*t));
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t mark = pjson_push_idx(&c, i);
        rc = i_user(&c, json_object_array_get_idx(root, i), &t[i]);
        pjson_pop(&c, mark);
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct mdl_user u = {.id = t[i].id,
                             .email = t[i].email,
                             .external_key = t[i].external_key,
                             .state = MDL_USER_ACTIVE};
        uint32_t ui = mdl_add_user(s, &u);
        size_t nr = json_object_array_length(t[i].roles);
        for (size_t k = 0; k < nr; k++)
            pjson_role_refs_add(refs, ui,
                                json_object_get_string(json_object_array_get_idx(t[i].roles, k)));
    }
    if (rc == 0)
        *count = n;
    for (size_t i = 0; i < n; i++)
        free(t[i].external_key);
    free(t);
    json_object_put(root);
    return rc;
}

int ijs_parse_total_count(const char *value, uint64_t *out, char *err, size_t errlen)
{
    *out = 0;
    if (!value) {
        snprintf(err, errlen, "identity Total-Count header: missing");
        return -1;
    }
    const char *p = value;
    while (*p == ' ' || *p == '\t')
        p++;
    uint64_t x = 0;
    size_t digits = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        if (digits >= 10) {
            snprintf(err, errlen, "identity Total-Count header: number too large");
            return -1;
        }
        x = x * 10 + (uint64_t)(*p - '0');
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (digits == 0 || *p != '\0') {
        snprintf(err, errlen, "identity Total-Count header: not a decimal number");
        return -1;
    }
    if (x > 1000000000u) {
        snprintf(err, errlen, "identity Total-Count header: number too large");
        return -1;
    }
    *out = x;
    return 0;
}

/* ========================================================================================== */
/* Errors, Location                                                                           */

static const char *loose_string(struct json_object *obj, const char *key)
{
    struct json_object *v = NULL;
    if (json_object_object_get_ex(obj, key, &v) && json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return NULL;
}

int ijs_parse_error(const char *body, size_t len, struct pjson_error_info *out)
{
    char e[160];
    struct pjson_cur c;
    memset(out, 0, sizeof(*out));
    pjson_cur_init(&c, "identity error body", e, sizeof(e));
    struct json_object *root = pjson_parse(&c, body, len);
    if (!root)
        return -1;
    if (!json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        return -1;
    }
    const char *error = loose_string(root, "Error");
    const char *reason = loose_string(root, "Reason");
    const char *resolution = loose_string(root, "Resolution");
    char *msg = xasprintf("%s%s%s", reason ? reason : (error ? error : ""),
                          (resolution && *resolution && (reason || error)) ? " " : "",
                          resolution ? resolution : "");
    pjson_copy_clean(out->message, sizeof(out->message), msg);
    free(msg);
    pjson_copy_clean(out->code, sizeof(out->code), error);
    pjson_copy_clean(out->correlation_id, sizeof(out->correlation_id),
                     loose_string(root, "OperationId"));
    int rc = (error && *error) || (reason && *reason) ? 0 : -1; /* before the strings go */
    json_object_put(root);
    return rc;
}

char *ijs_role_id_from_location(const char *location, char *err, size_t errlen)
{
    if (!location || !*location) {
        snprintf(err, errlen, "identity Location header: missing");
        return NULL;
    }
    size_t end = strcspn(location, "?#");
    while (end > 0 && location[end - 1] == '/')
        end--;
    size_t start = end;
    while (start > 0 && location[start - 1] != '/')
        start--;
    /* The segment before the id must be "Roles": a Location elsewhere is not a role. */
    size_t pend = start ? start - 1 : 0, pstart = pend;
    while (pstart > 0 && location[pstart - 1] != '/')
        pstart--;
    if (start == 0 || pend - pstart != 5 || strncasecmp(location + pstart, "Roles", 5) != 0) {
        snprintf(err, errlen, "identity Location header: not a .../Roles/{id} path");
        return NULL;
    }
    /* The segment is percent-encoded (as our own paths are): decode it, then check the id. */
    char *id = xmalloc(end - start + 1);
    size_t n = 0;
    for (size_t i = start; i < end; i++) {
        int hi, lo;
        if (location[i] != '%') {
            id[n++] = location[i];
        } else if (i + 2 < end && (hi = util_hex_value(location[i + 1])) >= 0 &&
                   (lo = util_hex_value(location[i + 2])) >= 0) {
            id[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            free(id);
            snprintf(err, errlen, "identity Location header: bad percent-encoding");
            return NULL;
        }
    }
    id[n] = '\0';
    char e2[96];
    if (pjson_check_id(id, n, e2, sizeof(e2)) < 0) {
        free(id);
        snprintf(err, errlen, "identity Location header: %s", e2);
        return NULL;
    }
    return id;
}

/* ========================================================================================== */
/* Request bodies                                                                             */

static int check_field(const char *what, const char *s, size_t max, bool required, char *err,
                       size_t errlen)
{
    if (!s || !*s) {
        if (!required)
            return 0;
        snprintf(err, errlen, "identity role body: %s is required", what);
        return -1;
    }
    size_t n = strlen(s);
    if (n > max) {
        snprintf(err, errlen, "identity role body: %s too long", what);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') || ch == 0x7f) {
            snprintf(err, errlen, "identity role body: %s contains a control character", what);
            return -1;
        }
    }
    return 0;
}

static char *i_build_role(const char *id, const char *name, const char *description, char *err,
                          size_t errlen)
{
    if ((id && pjson_check_id(id, strlen(id), err, errlen) < 0) ||
        check_field("Name", name, PJSON_MAX_NAME, true, err, errlen) < 0 ||
        check_field("Description", description, PJSON_MAX_TEXT, false, err, errlen) < 0)
        return NULL;
    struct pjson_buf b = {0};
    pjson_buf_puts(&b, "{");
    if (id) {
        pjson_buf_puts(&b, "\"Id\":");
        pjson_buf_put_string(&b, id);
        pjson_buf_puts(&b, ",");
    }
    pjson_buf_puts(&b, "\"Name\":");
    pjson_buf_put_string(&b, name);
    pjson_buf_puts(&b, ",\"Description\":");
    if (description)
        pjson_buf_put_string(&b, description);
    else
        pjson_buf_puts(&b, "null");
    pjson_buf_puts(&b, ",\"RoleScope\":1}");
    return pjson_buf_take(&b);
}

char *ijs_build_role_create(const char *name, const char *description, char *err, size_t errlen)
{
    return i_build_role(NULL, name, description, err, errlen);
}

char *ijs_build_role_update(const char *id, const char *name, const char *description, char *err,
                            size_t errlen)
{
    if (!id || !*id) {
        snprintf(err, errlen, "identity role body: Id is required");
        return NULL;
    }
    return i_build_role(id, name, description, err, errlen);
}

char *ijs_build_user_roles(const char *const *ids, size_t n)
{
    struct pjson_buf b = {0};
    pjson_buf_puts(&b, "[");
    for (size_t i = 0; i < n; i++) {
        pjson_buf_puts(&b, i ? ",{\"Id\":" : "{\"Id\":");
        pjson_buf_put_string(&b, ids[i] ? ids[i] : "");
        pjson_buf_puts(&b, "}");
    }
    pjson_buf_puts(&b, "]");
    return pjson_buf_take(&b);
}
