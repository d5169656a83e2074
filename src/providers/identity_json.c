/* identity_json.c — the AVEVA CONNECT / OCS Identity API's JSON boundary (ijs_*): Role[] and
 * User[] pages into the model, single Role replies, ErrorResponse, Total-Count, Location, and
 * request bodies. Contract in identity_json.h; the shared strict-parsing
 * machinery (pjson_*) is in provider_json.c.
 */
#include "providers/identity_json.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rolesync/http.h"
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
                             .foreign = t[i].foreign,
                             .forced = key && strcasecmp(key, IJS_TENANT_MEMBER) == 0,
                             .admin = key && strcasecmp(key, IJS_TENANT_ADMIN) == 0};
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

/* A users page is scanned whole first (jscan, no tree: this is the largest reply a cycle
 * reads), recording per user the members the parser uses, then checked in the order and with
 * the messages of the other parsers (see provider_json.h). */

struct i_user_raw {
    enum jscan_type type; /* of the element */
    struct jscan_val id, email, contact, idp, ext;
    enum jscan_type roles;   /* RoleIds; NONE when absent */
    size_t first_ref, nrefs; /* recorded elements: refs[first_ref .. first_ref + nrefs) */
    size_t roles_count;      /* elements of RoleIds, recorded or not */
};

/* Recording stops where the checks are sure to stop (as for genesys, genesys_json.c): at a
 * user's first RoleIds element that is not a string or past PJSON_MAX_LIST of them, and after
 * a user that must fail or past PJSON_MAX_LIST users, elements are only counted. */
struct i_users_raw {
    struct i_user_raw *u;
    size_t nu, ucap; /* recorded users */
    size_t count;    /* elements of the page, recorded or not */
    bool settled;    /* a recorded user must fail */
    struct jscan_val *refs;
    size_t nrefs, rcap;
};

static int i_scan_user(struct jscan *j, struct i_users_raw *pg, struct i_user_raw *u)
{
    struct jscan_val k, v;
    int r;
    while ((r = jscan_member(j, &k)) == 1) {
        if (PJSON_KEY_IS(&k, "Id")) {
            r = pjson_scan_flat(j, &u->id);
        } else if (PJSON_KEY_IS(&k, "Email")) {
            r = pjson_scan_flat(j, &u->email);
        } else if (PJSON_KEY_IS(&k, "ContactEmail")) {
            r = pjson_scan_flat(j, &u->contact);
        } else if (PJSON_KEY_IS(&k, "IdentityProviderId")) {
            r = pjson_scan_flat(j, &u->idp);
        } else if (PJSON_KEY_IS(&k, "ExternalUserId")) {
            r = pjson_scan_flat(j, &u->ext);
        } else if (PJSON_KEY_IS(&k, "RoleIds")) {
            pg->nrefs = u->first_ref; /* a repeated member replaces the earlier one */
            u->roles_count = 0;
            if (jscan_value(j, &v) < 0)
                return -1;
            u->roles = v.type;
            if (v.type == JSCAN_OBJECT) {
                r = jscan_skip_rest(j);
            } else if (v.type == JSCAN_ARRAY) {
                bool record = true;
                while ((r = jscan_element(j)) == 1) {
                    u->roles_count++;
                    if (!record) {
                        if ((r = jscan_skip(j)) < 0)
                            return -1;
                        continue;
                    }
                    util_grow((void **)&pg->refs, &pg->rcap, pg->nrefs + 1, sizeof(*pg->refs));
                    const struct jscan_val *x = &pg->refs[pg->nrefs++];
                    if ((r = pjson_scan_flat(j, &pg->refs[pg->nrefs - 1])) < 0)
                        return -1;
                    record = x->type == JSCAN_STRING && pg->nrefs - u->first_ref <= PJSON_MAX_LIST;
                }
            }
        } else {
            r = jscan_skip(j);
        }
        if (r < 0)
            return -1;
    }
    u->nrefs = pg->nrefs - u->first_ref;
    return r;
}

static int i_scan_users_page(struct jscan *j, struct i_users_raw *pg, enum jscan_type *root)
{
    struct jscan_val v;
    if (jscan_value(j, &v) < 0)
        return -1;
    *root = v.type;
    if (v.type == JSCAN_OBJECT)
        return jscan_skip_rest(j) < 0 ? -1 : jscan_end(j);
    if (v.type != JSCAN_ARRAY)
        return jscan_end(j);
    int r;
    while ((r = jscan_element(j)) == 1) {
        pg->count++;
        if (pg->settled || pg->nu >= PJSON_MAX_LIST) {
            if (jscan_skip(j) < 0)
                return -1;
            continue;
        }
        if (jscan_value(j, &v) < 0)
            return -1;
        util_grow((void **)&pg->u, &pg->ucap, pg->nu + 1, sizeof(*pg->u));
        struct i_user_raw *u = &pg->u[pg->nu++];
        memset(u, 0, sizeof(*u));
        u->type = v.type;
        u->first_ref = pg->nrefs;
        if (v.type == JSCAN_OBJECT)
            r = i_scan_user(j, pg, u);
        else if (v.type == JSCAN_ARRAY)
            r = jscan_skip_rest(j);
        if (r < 0)
            return -1;
        pg->settled = u->type != JSCAN_OBJECT || u->roles_count > PJSON_MAX_LIST ||
                      (u->nrefs && pg->refs[u->first_ref + u->nrefs - 1].type != JSCAN_STRING);
    }
    return r < 0 ? -1 : jscan_end(j);
}

/* opt_id for a scanned value: "" and null read as absent. */
static int opt_id_sv(struct pjson_cur *c, const struct jscan_val *v, const char *key,
                     struct pjson_sv *out)
{
    memset(out, 0, sizeof(*out));
    if (v->type == JSCAN_STRING && v->len == 0)
        return 0;
    return pjson_sv_get(c, v, key, PJSON_ID, false, out);
}

struct i_user_ok {
    struct pjson_sv id, email, contact, idp, ext;
};

static void i_user_ok_free(struct i_user_ok *t)
{
    pjson_sv_free(&t->id);
    pjson_sv_free(&t->email);
    pjson_sv_free(&t->contact);
    pjson_sv_free(&t->idp);
    pjson_sv_free(&t->ext);
}

static int i_check_user(struct pjson_cur *c, const struct i_users_raw *pg,
                        const struct i_user_raw *u, struct i_user_ok *t)
{
    memset(t, 0, sizeof(*t));
    if (pjson_sv_expect_object(c, u->type) < 0 ||
        pjson_sv_get(c, &u->id, "Id", PJSON_ID, true, &t->id) < 0 ||
        pjson_sv_get(c, &u->email, "Email", PJSON_NAME, false, &t->email) < 0 ||
        pjson_sv_get(c, &u->contact, "ContactEmail", PJSON_NAME, false, &t->contact) < 0 ||
        opt_id_sv(c, &u->idp, "IdentityProviderId", &t->idp) < 0 ||
        pjson_sv_get(c, &u->ext, "ExternalUserId", PJSON_NAME, false, &t->ext) < 0)
        return -1;
    /* RoleIds is nullable in the schema, but every user holds Tenant Member: a user without
     * the list has unknown roles, which must fail the page rather than read as "none". */
    if (pjson_sv_array(c, u->roles, u->roles_count, "RoleIds", true) < 0)
        return -1;
    size_t mark = pjson_push_key(c, "RoleIds");
    for (size_t i = 0; i < u->nrefs; i++) {
        const struct jscan_val *x = &pg->refs[u->first_ref + i];
        struct pjson_sv id;
        size_t m2 = pjson_push_idx(c, i);
        if (pjson_sv_check(c, x, PJSON_ID, &id) < 0)
            return -1;
        pjson_sv_free(&id);
        pjson_pop(c, m2);
    }
    pjson_pop(c, mark);
    return 0;
}

/* A page read and checked, not yet in a snapshot (ijs_users_prepare). */
struct ijs_users_prep {
    int rc;
    char err[512];
    struct i_users_raw pg;
    struct i_user_ok *t; /* pg.nu of them when rc == 0 */
};

void ijs_users_discard(struct ijs_users_prep *p)
{
    if (!p)
        return;
    for (size_t i = 0; p->t && i < p->pg.nu; i++)
        i_user_ok_free(&p->t[i]);
    free(p->t);
    free(p->pg.u);
    free(p->pg.refs);
    free(p);
}

struct ijs_users_prep *ijs_users_prepare(const char *body, size_t len)
{
    struct ijs_users_prep *p = xcalloc(1, sizeof(*p));
    struct pjson_cur c;
    struct jscan j;
    enum jscan_type root = JSCAN_NONE;
    p->rc = -1;
    pjson_cur_init(&c, "identity users page", p->err, sizeof(p->err));
    if (pjson_scan_init(&c, &j, body, len) < 0)
        return p;
    if (i_scan_users_page(&j, &p->pg, &root) < 0) {
        pjson_scan_fail(&c, &j);
        return p;
    }
    if (root == JSCAN_NULL) { /* pjson_parse's wording for a JSON null */
        pjson_fail(&c, "expected object or array, got null");
        return p;
    }
    if (pjson_sv_expect_array(&c, root, p->pg.count) < 0)
        return p;
    size_t n = p->pg.nu;
    p->t = xcalloc(n ? n : 1, sizeof(*p->t));
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t mark = pjson_push_idx(&c, i);
        rc = i_check_user(&c, &p->pg, &p->pg.u[i], &p->t[i]);
        pjson_pop(&c, mark);
    }
    /* Users go unrecorded only after one that fails, or past a limit already refused. */
    if (rc == 0 && n != p->pg.count)
        rc = pjson_fail(&c, "internal error: %zu of %zu users recorded", n, p->pg.count);
    p->rc = rc;
    return p;
}

int ijs_users_commit(struct ijs_users_prep *p, struct mdl_snapshot *s, struct pjson_role_refs *refs,
                     size_t *count, char *err, size_t errlen)
{
    *count = 0;
    if (p->rc != 0) {
        snprintf(err, errlen, "%s", p->err);
        ijs_users_discard(p);
        return -1;
    }
    /* Only a page that parsed whole reaches the snapshot (page parsers are atomic). */
    for (size_t i = 0; i < p->pg.nu; i++) {
        const struct i_user_ok *t = &p->t[i];
        char idb[PJSON_MAX_NAME + 1], eb[PJSON_MAX_NAME + 1], xb[PJSON_MAX_NAME + 1],
            pb[PJSON_MAX_NAME + 1];
        /* A user who has not accepted the invitation has no Email yet (product.md 4.4). */
        const struct pjson_sv *mail = t->email.s ? &t->email : &t->contact;
        const char *idp = pjson_sv_cstr(&t->idp, pb, sizeof(pb));
        const char *ext = pjson_sv_cstr(&t->ext, xb, sizeof(xb));
        char *key = NULL;
        if (idp && ext) {
            char *k = xasprintf("%s/%s", idp, ext);
            key = util_strdup_fold(k);
            free(k);
        }
        struct mdl_user u = {.id = pjson_sv_cstr(&t->id, idb, sizeof(idb)),
                             .email = pjson_sv_cstr(mail, eb, sizeof(eb)),
                             .external_key = key,
                             .state = MDL_USER_ACTIVE};
        uint32_t ui = mdl_add_user(s, &u);
        free(key);
        const struct i_user_raw *r = &p->pg.u[i];
        for (size_t k = 0; k < r->nrefs; k++)
            pjson_role_refs_add_val(refs, ui, &p->pg.refs[r->first_ref + k]);
    }
    *count = p->pg.nu;
    ijs_users_discard(p);
    return 0;
}

int ijs_parse_users_page(struct mdl_snapshot *s, struct pjson_role_refs *refs, const char *body,
                         size_t len, size_t *count, char *err, size_t errlen)
{
    return ijs_users_commit(ijs_users_prepare(body, len), s, refs, count, err, errlen);
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

void ijs_error_line(const char *body, size_t len, char *buf, size_t n)
{
    char e[160];
    struct pjson_cur c;
    if (n == 0)
        return;
    buf[0] = '\0';
    pjson_cur_init(&c, "identity error body", e, sizeof(e));
    struct json_object *root = pjson_parse(&c, body, len);
    if (root && json_object_is_type(root, json_type_object)) {
        const char *a = pjson_loose_string(root, "Error"), *b = pjson_loose_string(root, "Reason");
        char tmp[1024] = "";
        if (a && *a && b && *b)
            snprintf(tmp, sizeof tmp, "%s (%s)", a, b);
        else if (a && *a)
            snprintf(tmp, sizeof tmp, "%s", a);
        http_clean_line(buf, n, tmp, strlen(tmp));
    }
    json_object_put(root);
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
    const char *error = pjson_loose_string(root, "Error");
    const char *reason = pjson_loose_string(root, "Reason");
    const char *resolution = pjson_loose_string(root, "Resolution");
    char *msg = xasprintf("%s%s%s", reason ? reason : (error ? error : ""),
                          (resolution && *resolution && (reason || error)) ? " " : "",
                          resolution ? resolution : "");
    pjson_copy_clean(out->message, sizeof(out->message), msg);
    free(msg);
    pjson_copy_clean(out->code, sizeof(out->code), error);
    pjson_copy_clean(out->correlation_id, sizeof(out->correlation_id),
                     pjson_loose_string(root, "OperationId"));
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
