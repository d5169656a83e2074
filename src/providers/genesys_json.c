/* genesys_json.c — the Genesys Cloud parsers and request builders (gjs_*). Contract in
 * genesys_json.h; the shared strict-parsing machinery (pjson_*) is provider_json.c.
 */
#include "providers/genesys_json.h"

#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rolesync/http.h"
#include "rolesync/util.h"

/* ========================================================================================== */
/* Genesys: canonical role definition                                                         */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sort and de-duplicate an array of strings in place; returns the new count. */
static size_t sort_unique(const char **v, size_t n)
{
    if (n < 2)
        return n;
    qsort(v, n, sizeof(*v), cmp_str);
    size_t o = 1;
    for (size_t i = 1; i < n; i++)
        if (strcmp(v[i], v[o - 1]) != 0)
            v[o++] = v[i];
    return o;
}

/* Collect array `arr` (may be NULL) of strings of `kind` into *out (malloc'd, caller frees),
 * sorted and unique. */
static int collect_strings(struct pjson_cur *c, struct json_object *arr, enum pjson_kind kind,
                           const char ***out, size_t *n)
{
    size_t len = arr ? json_object_array_length(arr) : 0;
    const char **v = xcalloc(len ? len : 1, sizeof(*v));
    for (size_t i = 0; i < len; i++) {
        struct json_object *e = json_object_array_get_idx(arr, i);
        size_t mark = pjson_push_idx(c, i);
        if (pjson_check_string(c, e, kind) < 0) {
            free(v);
            return -1;
        }
        if (json_object_get_string_len(e) == 0) {
            free(v);
            return pjson_fail(c, "must not be empty");
        }
        pjson_pop(c, mark);
        v[i] = json_object_get_string(e);
    }
    *out = v;
    *n = sort_unique(v, len);
    return 0;
}

static void put_string_list(struct pjson_buf *b, const char **v, size_t n)
{
    pjson_buf_puts(b, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            pjson_buf_puts(b, ",");
        pjson_buf_put_string(b, v[i]);
    }
    pjson_buf_puts(b, "]");
}

struct kv {
    const char *k;
    struct json_object *v;
};

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const struct kv *)a)->k, ((const struct kv *)b)->k);
}

/* Canonical JSON of any value: object keys sorted byte-wise, null members dropped, arrays in
 * order, numbers as integers or %.17g. Recursion is bounded by the parser's depth limit. */
static int canon_value(struct pjson_cur *c, struct pjson_buf *b, struct json_object *v)
{
    char num[64];
    switch (json_object_get_type(v)) {
    case json_type_null:
        pjson_buf_puts(b, "null");
        return 0;
    case json_type_boolean:
        pjson_buf_puts(b, json_object_get_boolean(v) ? "true" : "false");
        return 0;
    case json_type_int:
        snprintf(num, sizeof(num), "%lld", (long long)json_object_get_int64(v));
        pjson_buf_puts(b, num);
        return 0;
    case json_type_double: {
        double d = json_object_get_double(v);
        if (!isfinite(d))
            return pjson_fail(c, "number out of range");
        snprintf(num, sizeof(num), "%.17g", d);
        pjson_buf_puts(b, num);
        return 0;
    }
    case json_type_string:
        if (strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
            return pjson_fail(c, "contains a NUL character");
        pjson_buf_put_string(b, json_object_get_string(v));
        return 0;
    case json_type_array: {
        size_t n = json_object_array_length(v);
        if (n > PJSON_MAX_LIST)
            return pjson_fail(c, "array of %zu elements exceeds the limit of %d", n,
                              PJSON_MAX_LIST);
        pjson_buf_puts(b, "[");
        for (size_t i = 0; i < n; i++) {
            if (i)
                pjson_buf_puts(b, ",");
            size_t mark = pjson_push_idx(c, i);
            if (canon_value(c, b, json_object_array_get_idx(v, i)) < 0)
                return -1;
            pjson_pop(c, mark);
        }
        pjson_buf_puts(b, "]");
        return 0;
    }
    case json_type_object: {
        size_t n = (size_t)json_object_object_length(v), k = 0;
        struct kv *kvs = xcalloc(n ? n : 1, sizeof(*kvs));
        json_object_object_foreach(v, key, val)
        {
            if (val && !json_object_is_type(val, json_type_null) && k < n) {
                kvs[k].k = key;
                kvs[k].v = val;
                k++;
            }
        }
        qsort(kvs, k, sizeof(*kvs), cmp_kv);
        pjson_buf_puts(b, "{");
        for (size_t i = 0; i < k; i++) {
            if (i)
                pjson_buf_puts(b, ",");
            pjson_buf_put_string(b, kvs[i].k);
            pjson_buf_puts(b, ":");
            size_t mark = pjson_push_key(c, kvs[i].k);
            if (canon_value(c, b, kvs[i].v) < 0) {
                free(kvs);
                return -1;
            }
            pjson_pop(c, mark);
        }
        pjson_buf_puts(b, "}");
        free(kvs);
        return 0;
    }
    }
    return pjson_fail(c, "unsupported JSON type");
}

/* One DomainPermissionPolicy -> its canonical JSON (malloc'd). */
static int canon_policy(struct pjson_cur *c, struct json_object *p, char **out)
{
    const char *domain, *entity, *ignored;
    struct json_object *actions, *named, *node;
    bool allow;
    const char **av = NULL, **nv = NULL;
    size_t an = 0, nn = 0;
    int rc = -1;
    *out = NULL;

    if (pjson_expect_object(c, p) < 0 ||
        pjson_get_string(c, p, "domain", PJSON_NAME, true, &domain) < 0 ||
        pjson_get_string(c, p, "entityName", PJSON_NAME, true, &entity) < 0 ||
        pjson_get_array(c, p, "actionSet", true, &actions) < 0 ||
        pjson_get_bool(c, p, "allowConditions", false, &allow) < 0 ||
        pjson_get_array(c, p, "namedResources", false, &named) < 0 ||
        pjson_get_object(c, p, "resourceConditionNode", false, &node) < 0 ||
        pjson_get_string(c, p, "policyName", PJSON_TEXT, false, &ignored) < 0 ||
        pjson_get_string(c, p, "policyDescription", PJSON_TEXT, false, &ignored) < 0)
        return -1;

    size_t mark = pjson_push_key(c, "actionSet");
    if (collect_strings(c, actions, PJSON_NAME, &av, &an) < 0)
        goto done;
    pjson_pop(c, mark);
    mark = pjson_push_key(c, "namedResources");
    if (collect_strings(c, named, PJSON_NAME, &nv, &nn) < 0)
        goto done;
    pjson_pop(c, mark);

    struct pjson_buf b = {0};
    pjson_buf_puts(&b, "{\"domain\":");
    pjson_buf_put_string(&b, domain);
    pjson_buf_puts(&b, ",\"entityName\":");
    pjson_buf_put_string(&b, entity);
    pjson_buf_puts(&b, ",\"actionSet\":");
    put_string_list(&b, av, an);
    pjson_buf_puts(&b, allow ? ",\"allowConditions\":true" : ",\"allowConditions\":false");
    if (nn) {
        pjson_buf_puts(&b, ",\"namedResources\":");
        put_string_list(&b, nv, nn);
    }
    if (node) {
        pjson_buf_puts(&b, ",\"resourceConditionNode\":");
        mark = pjson_push_key(c, "resourceConditionNode");
        if (canon_value(c, &b, node) < 0) {
            free(b.p);
            goto done;
        }
        pjson_pop(c, mark);
    }
    pjson_buf_puts(&b, "}");
    *out = pjson_buf_take(&b);
    rc = 0;
done:
    free(av);
    free(nv);
    return rc;
}

/* permissions[] + permissionPolicies[] of `obj` -> canonical definition JSON (malloc'd). */
static int canon_definition(struct pjson_cur *c, struct json_object *obj, char **out)
{
    struct json_object *perms, *pols;
    const char **pv = NULL;
    size_t pn = 0;
    *out = NULL;
    if (pjson_get_array(c, obj, "permissions", false, &perms) < 0 ||
        pjson_get_array(c, obj, "permissionPolicies", false, &pols) < 0)
        return -1;
    size_t mark = pjson_push_key(c, "permissions");
    if (collect_strings(c, perms, PJSON_NAME, &pv, &pn) < 0)
        return -1;
    pjson_pop(c, mark);

    size_t npol = pols ? json_object_array_length(pols) : 0;
    char **polv = xcalloc(npol ? npol : 1, sizeof(char *));
    int rc = -1;
    mark = pjson_push_key(c, "permissionPolicies");
    for (size_t i = 0; i < npol; i++) {
        size_t m2 = pjson_push_idx(c, i);
        if (canon_policy(c, json_object_array_get_idx(pols, i), &polv[i]) < 0)
            goto done;
        pjson_pop(c, m2);
    }
    pjson_pop(c, mark);
    /* Sorted by their canonical text; identical policies written once. */
    qsort(polv, npol, sizeof(*polv), cmp_str);

    struct pjson_buf b = {0};
    pjson_buf_puts(&b, "{\"permissions\":");
    put_string_list(&b, pv, pn);
    pjson_buf_puts(&b, ",\"permissionPolicies\":[");
    for (size_t i = 0; i < npol; i++) {
        if (i && strcmp(polv[i], polv[i - 1]) == 0)
            continue;
        if (i)
            pjson_buf_puts(&b, ",");
        pjson_buf_puts(&b, polv[i]);
    }
    pjson_buf_puts(&b, "]}");
    *out = pjson_buf_take(&b);
    rc = 0;
done:
    for (size_t i = 0; i < npol; i++)
        free(polv[i]);
    free(polv);
    free(pv);
    return rc;
}

/* ========================================================================================== */
/* Genesys: listings                                                                          */

/* Optional id member where "" means absent (custom roles may carry "defaultRoleId": ""). */
static int opt_id(struct pjson_cur *c, struct json_object *obj, const char *key, const char **out)
{
    struct json_object *v = NULL;
    *out = NULL;
    if (json_object_object_get_ex(obj, key, &v) && json_object_is_type(v, json_type_string) &&
        json_object_get_string_len(v) == 0)
        return 0;
    return pjson_get_string(c, obj, key, PJSON_ID, false, out);
}

/* The envelope's checks once its fields are read (json-c tree or scanned page): n entities,
 * pageSize ps, pageNumber pn, total, pageCount pc. Fills *pg. */
static int g_envelope_fill(struct pjson_cur *c, size_t n, int64_t ps, int64_t pn, int64_t total,
                           int64_t pc, struct gjs_page *pg)
{
    if (n > (size_t)ps)
        return pjson_fail(c, "entities: %zu elements exceed pageSize %lld", n, (long long)ps);
    /* A pageCount that cannot hold `total` would make the caller stop early and read the
     * missing entries as deleted. */
    if ((uint64_t)pc * (uint64_t)ps < (uint64_t)total)
        return pjson_fail(c, "pageCount %lld x pageSize %lld does not cover total %lld",
                          (long long)pc, (long long)ps, (long long)total);
    pg->total = total;
    pg->page_count = (uint32_t)pc;
    pg->page_number = (uint32_t)pn;
    pg->page_size = (uint32_t)ps;
    pg->entities = n;
    return 0;
}

static int g_envelope(struct pjson_cur *c, struct json_object *root, struct gjs_page *pg,
                      struct json_object **ents)
{
    int64_t total, pc, pn, ps;
    memset(pg, 0, sizeof(*pg));
    if (pjson_expect_object(c, root) < 0 || pjson_get_array(c, root, "entities", true, ents) < 0 ||
        pjson_get_int(c, root, "pageSize", 0, 100000, true, &ps, NULL) < 0 ||
        pjson_get_int(c, root, "pageNumber", 1, 10000000, true, &pn, NULL) < 0 ||
        pjson_get_int(c, root, "total", 0, 1000000000, true, &total, NULL) < 0 ||
        pjson_get_int(c, root, "pageCount", 0, 10000000, true, &pc, NULL) < 0)
        return -1;
    size_t n = json_object_array_length(*ents);
    return g_envelope_fill(c, n, ps, pn, total, pc, pg);
}

struct g_role_tmp {
    const char *id, *name, *desc, *key; /* point into the json-c tree */
    char *canon;                        /* malloc'd */
    char *org_ref;                      /* malloc'd, see org_reference */
};

/* "queue 9f0c1e2a..." for an object id, the id cut to eight bytes for a report line. */
static char *ref_text(const char *kind, const char *id)
{
    size_t n = strlen(id);
    return xasprintf("%s %.8s%s", kind, id, n > 8 ? "..." : "");
}

/* The first object of this org a condition node names (an operand of type USER, QUEUE or
 * TEAM, whose value is that object's id), or NULL. The tree was validated and its depth
 * bounded by the parse (PJSON_MAX_DEPTH). */
static char *condition_reference(struct json_object *node)
{
    struct json_object *v;
    if (!json_object_is_type(node, json_type_object))
        return NULL;
    if (json_object_object_get_ex(node, "operands", &v) && json_object_is_type(v, json_type_array))
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            struct json_object *op = json_object_array_get_idx(v, i), *obj, *id;
            const char *type = pjson_loose_string(op, "type");
            static const char *const kinds[][2] = {
                {"USER", "user"}, {"QUEUE", "queue"}, {"TEAM", "team"}};
            for (size_t k = 0; type && k < UTIL_ARRAY_LEN(kinds); k++) {
                if (strcmp(type, kinds[k][0]) != 0)
                    continue;
                const char *oid = NULL;
                if (json_object_object_get_ex(op, kinds[k][1], &obj) &&
                    json_object_object_get_ex(obj, "id", &id) &&
                    json_object_is_type(id, json_type_string))
                    oid = json_object_get_string(id);
                else
                    oid = pjson_loose_string(op, "value");
                return ref_text(kinds[k][1], oid ? oid : "");
            }
        }
    if (json_object_object_get_ex(node, "terms", &v) && json_object_is_type(v, json_type_array))
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            char *r = condition_reference(json_object_array_get_idx(v, i));
            if (r)
                return r;
        }
    return NULL;
}

/* product.md 4a.6: the first object of this org that a role's permission policies name -- a
 * condition operand, or a named resource -- as report text, or NULL. Such a definition means
 * nothing (or something else) in another org, and stripping it would widen the role. */
static char *org_reference(struct json_object *role)
{
    struct json_object *pols, *v;
    if (!json_object_object_get_ex(role, "permissionPolicies", &pols) ||
        !json_object_is_type(pols, json_type_array))
        return NULL;
    for (size_t i = 0; i < json_object_array_length(pols); i++) {
        struct json_object *p = json_object_array_get_idx(pols, i);
        if (json_object_object_get_ex(p, "namedResources", &v) &&
            json_object_is_type(v, json_type_array) && json_object_array_length(v) > 0) {
            const char *first = json_object_get_string(json_object_array_get_idx(v, 0));
            return ref_text("named resource", first ? first : "");
        }
        if (json_object_object_get_ex(p, "resourceConditionNode", &v)) {
            char *r = condition_reference(v);
            if (r)
                return r;
        }
    }
    return NULL;
}

static int g_role(struct pjson_cur *c, struct json_object *e, struct g_role_tmp *t)
{
    bool dflt;
    memset(t, 0, sizeof(*t));
    if (pjson_expect_object(c, e) < 0 || pjson_get_string(c, e, "id", PJSON_ID, true, &t->id) < 0 ||
        pjson_get_string(c, e, "name", PJSON_NAME, true, &t->name) < 0 ||
        pjson_get_string(c, e, "description", PJSON_TEXT, false, &t->desc) < 0 ||
        pjson_get_bool(c, e, "default", false, &dflt) < 0 ||
        opt_id(c, e, "defaultRoleId", &t->key) < 0)
        return -1;
    if (dflt && !t->key)
        return pjson_fail(c, "default role without a defaultRoleId");
    if (canon_definition(c, e, &t->canon) < 0)
        return -1;
    t->org_ref = org_reference(e);
    return 0;
}

static struct json_object *parse_root(struct pjson_cur *c, const char *body, size_t len)
{
    return pjson_parse(c, body, len);
}

int gjs_parse_roles_page(struct mdl_snapshot *s, const char *body, size_t len,
                         struct gjs_page *page, char *err, size_t errlen)
{
    struct pjson_cur c;
    struct json_object *ents = NULL;
    pjson_cur_init(&c, "genesys roles page", err, errlen);
    memset(page, 0, sizeof(*page));
    struct json_object *root = parse_root(&c, body, len);
    if (!root)
        return -1;
    if (g_envelope(&c, root, page, &ents) < 0) {
        json_object_put(root);
        return -1;
    }
    size_t n = page->entities;
    struct g_role_tmp *t = xcalloc(n ? n : 1, sizeof(*t));
    int rc = 0;
    size_t mark = pjson_push_key(&c, "entities");
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t m2 = pjson_push_idx(&c, i);
        rc = g_role(&c, json_object_array_get_idx(ents, i), &t[i]);
        pjson_pop(&c, m2);
    }
    pjson_pop(&c, mark);
    /* Only a page that is valid as a whole reaches the snapshot. */
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct mdl_role r = {.id = t[i].id,
                             .name = t[i].name,
                             .description = t[i].desc,
                             .builtin_key = t[i].key,
                             .def_canon = t[i].canon,
                             .def_json = t[i].canon,
                             .forced = t[i].key && strcasecmp(t[i].key, GJS_FORCED_ROLE) == 0,
                             .admin = t[i].key && strcasecmp(t[i].key, GJS_ADMIN_ROLE) == 0,
                             .uncopyable = t[i].org_ref};
        mdl_add_role(s, &r);
    }
    for (size_t i = 0; i < n; i++) {
        free(t[i].canon);
        free(t[i].org_ref);
    }
    free(t);
    json_object_put(root);
    if (rc < 0)
        memset(page, 0, sizeof(*page));
    return rc;
}

/* Ids already validated on this page. A page's grant lists repeat the same few hundred role ids
 * (a large tenant has millions of grants), so each id is checked once and then recognised by a
 * compare; a collision only costs a fresh check. */
struct id_seen {
    const char *v[256];
    size_t len[256];
};

static bool id_ok_cached(struct id_seen *c, const char *s, size_t len)
{
    if (len == 0)
        return false;
    unsigned h = pjson_id_slot8(s, len);
    if (c->v[h] && c->len[h] == len && memcmp(c->v[h], s, len) == 0)
        return true;
    if (pjson_id_problem(s, len))
        return false;
    c->v[h] = s;
    c->len[h] = len;
    return true;
}

/* A users page is scanned whole first (jscan, no tree), recording per user the members the
 * parser uses, then checked in the order and with the messages of the other page parsers. */

/* One element of a user's authorization.roles. */
struct g_ref_raw {
    enum jscan_type type; /* of the element */
    struct jscan_val id;  /* its "id" member; JSCAN_NONE when absent */
};

struct g_user_raw {
    enum jscan_type type; /* of the entity */
    struct jscan_val id, email, username, state;
    enum jscan_type auth, roles; /* authorization and authorization.roles; NONE when absent */
    size_t first_ref, nrefs;     /* recorded elements of roles: refs[first_ref .. + nrefs) */
    size_t roles_count;          /* elements of roles, recorded or not */
};

/* Memory stays bounded on hostile pages: what is recorded stops where the checks are sure to
 * stop. A user's roles are recorded up to the first element that must fail (not an object, or
 * no string id) or PJSON_MAX_LIST of them; after a user that must fail (settled), and past
 * PJSON_MAX_LIST users, elements are only counted: the checks stop at the first failure. */
struct g_users_raw {
    enum jscan_type ents; /* "entities" */
    struct jscan_val page_size, page_number, total, page_count;
    struct jscan_val cursor, results; /* UserCursorEntityListing */
    struct g_user_raw *u;
    size_t nu, ucap; /* recorded users */
    size_t count;    /* elements of entities, recorded or not */
    bool settled;    /* a recorded user must fail: later ones are only counted */
    struct g_ref_raw *refs;
    size_t nrefs, rcap;
};

/* A recorded role reference that the checks must refuse. */
static bool g_ref_fails(const struct g_ref_raw *x)
{
    return x->type != JSCAN_OBJECT || x->id.type != JSCAN_STRING;
}

/* Elements of user u's authorization.roles, after its '['. */
static int g_scan_roles(struct jscan *j, struct g_users_raw *pg, struct g_user_raw *u)
{
    int r;
    bool record = true;
    while ((r = jscan_element(j)) == 1) {
        struct jscan_val el, k;
        u->roles_count++;
        if (!record) {
            if (jscan_skip(j) < 0)
                return -1;
            continue;
        }
        if (jscan_value(j, &el) < 0)
            return -1;
        util_grow((void **)&pg->refs, &pg->rcap, pg->nrefs + 1, sizeof(*pg->refs));
        struct g_ref_raw *x = &pg->refs[pg->nrefs++];
        x->type = el.type;
        x->id.type = JSCAN_NONE;
        if (el.type == JSCAN_ARRAY)
            r = jscan_skip_rest(j);
        else if (el.type == JSCAN_OBJECT)
            while ((r = jscan_member(j, &k)) == 1)
                r = PJSON_KEY_IS(&k, "id") ? pjson_scan_flat(j, &x->id) : jscan_skip(j);
        if (r < 0)
            return -1;
        record = !g_ref_fails(x) && pg->nrefs - u->first_ref <= PJSON_MAX_LIST;
    }
    return r;
}

/* A user object's members, after its '{'. */
static int g_scan_user(struct jscan *j, struct g_users_raw *pg, struct g_user_raw *u)
{
    struct jscan_val k, v;
    int r;
    while ((r = jscan_member(j, &k)) == 1) {
        if (PJSON_KEY_IS(&k, "id")) {
            r = pjson_scan_flat(j, &u->id);
        } else if (PJSON_KEY_IS(&k, "email")) {
            r = pjson_scan_flat(j, &u->email);
        } else if (PJSON_KEY_IS(&k, "username")) {
            r = pjson_scan_flat(j, &u->username);
        } else if (PJSON_KEY_IS(&k, "state")) {
            r = pjson_scan_flat(j, &u->state);
        } else if (PJSON_KEY_IS(&k, "authorization")) {
            /* A repeated member replaces the earlier one, as in json-c's objects. */
            pg->nrefs = u->first_ref;
            u->roles_count = 0;
            u->roles = JSCAN_NONE;
            if ((r = jscan_value(j, &v)) < 0)
                return -1;
            u->auth = v.type;
            if (v.type == JSCAN_ARRAY) {
                r = jscan_skip_rest(j);
            } else if (v.type == JSCAN_OBJECT) {
                while ((r = jscan_member(j, &k)) == 1) {
                    if (!PJSON_KEY_IS(&k, "roles")) {
                        r = jscan_skip(j);
                        continue;
                    }
                    pg->nrefs = u->first_ref;
                    u->roles_count = 0;
                    if ((r = jscan_value(j, &v)) < 0)
                        return -1;
                    u->roles = v.type;
                    if (v.type == JSCAN_ARRAY)
                        r = g_scan_roles(j, pg, u);
                    else if (v.type == JSCAN_OBJECT)
                        r = jscan_skip_rest(j);
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

/* The whole body: 0, or -1 with the reader's error. */
static int g_scan_users_page(struct jscan *j, struct g_users_raw *pg, enum jscan_type *root)
{
    struct jscan_val v, k;
    if (jscan_value(j, &v) < 0)
        return -1;
    *root = v.type;
    if (v.type == JSCAN_ARRAY)
        return jscan_skip_rest(j) < 0 ? -1 : jscan_end(j);
    if (v.type != JSCAN_OBJECT)
        return jscan_end(j);
    int r;
    while ((r = jscan_member(j, &k)) == 1) {
        if (PJSON_KEY_IS(&k, "entities")) {
            pg->nu = pg->nrefs = pg->count = 0;
            pg->settled = false;
            if (jscan_value(j, &v) < 0)
                return -1;
            pg->ents = v.type;
            if (v.type == JSCAN_OBJECT) {
                r = jscan_skip_rest(j);
            } else if (v.type == JSCAN_ARRAY) {
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
                    struct g_user_raw *u = &pg->u[pg->nu++];
                    memset(u, 0, sizeof(*u));
                    u->type = v.type;
                    u->first_ref = pg->nrefs;
                    if (v.type == JSCAN_OBJECT)
                        r = g_scan_user(j, pg, u);
                    else if (v.type == JSCAN_ARRAY)
                        r = jscan_skip_rest(j);
                    if (r < 0)
                        return -1;
                    pg->settled = u->type != JSCAN_OBJECT || u->roles_count > PJSON_MAX_LIST ||
                                  (u->nrefs && g_ref_fails(&pg->refs[u->first_ref + u->nrefs - 1]));
                }
            }
        } else if (PJSON_KEY_IS(&k, "pageSize")) {
            r = pjson_scan_flat(j, &pg->page_size);
        } else if (PJSON_KEY_IS(&k, "pageNumber")) {
            r = pjson_scan_flat(j, &pg->page_number);
        } else if (PJSON_KEY_IS(&k, "total")) {
            r = pjson_scan_flat(j, &pg->total);
        } else if (PJSON_KEY_IS(&k, "pageCount")) {
            r = pjson_scan_flat(j, &pg->page_count);
        } else if (PJSON_KEY_IS(&k, "cursor")) {
            r = pjson_scan_flat(j, &pg->cursor);
        } else if (PJSON_KEY_IS(&k, "results")) {
            r = pjson_scan_flat(j, &pg->results);
        } else {
            r = jscan_skip(j);
        }
        if (r < 0)
            return -1;
    }
    return r < 0 ? -1 : jscan_end(j);
}

/* g_envelope's checks over the recorded envelope. */
static int g_envelope_raw(struct pjson_cur *c, enum jscan_type root, const struct g_users_raw *pg,
                          struct gjs_page *out)
{
    int64_t total, pc, pn, ps;
    memset(out, 0, sizeof(*out));
    if (root == JSCAN_NULL) /* pjson_parse's wording for a JSON null */
        return pjson_fail(c, "expected object or array, got null");
    if (pjson_sv_expect_object(c, root) < 0 ||
        pjson_sv_array(c, pg->ents, pg->count, "entities", true) < 0 ||
        pjson_sv_int(c, &pg->page_size, "pageSize", 0, 100000, true, &ps) < 0 ||
        pjson_sv_int(c, &pg->page_number, "pageNumber", 1, 10000000, true, &pn) < 0 ||
        pjson_sv_int(c, &pg->total, "total", 0, 1000000000, true, &total) < 0 ||
        pjson_sv_int(c, &pg->page_count, "pageCount", 0, 10000000, true, &pc) < 0)
        return -1;
    size_t n = pg->count;
    return g_envelope_fill(c, n, ps, pn, total, pc, out);
}

/* The cursor listing's envelope (UserCursorEntityListing): entities, results (the users in this
 * response, which must agree), cursor (absent on the last page). */
static int g_cursor_envelope_raw(struct pjson_cur *c, enum jscan_type root,
                                 const struct g_users_raw *pg, struct gjs_page *out,
                                 struct pjson_sv *cursor)
{
    int64_t results;
    memset(out, 0, sizeof(*out));
    if (root == JSCAN_NULL)
        return pjson_fail(c, "expected object or array, got null");
    if (pjson_sv_expect_object(c, root) < 0 ||
        pjson_sv_array(c, pg->ents, pg->count, "entities", true) < 0 ||
        pjson_sv_int(c, &pg->results, "results", 0, 100000, false, &results) < 0 ||
        pjson_sv_get(c, &pg->cursor, "cursor", PJSON_TEXT, false, cursor) < 0)
        return -1;
    if (pg->results.type != JSCAN_NONE && pg->results.type != JSCAN_NULL &&
        (size_t)results != pg->count)
        return pjson_fail(c, "results %lld but %zu entities", (long long)results, pg->count);
    if (cursor->s && cursor->len == 0)
        pjson_sv_free(cursor); /* an empty cursor is no cursor */
    out->entities = pg->count;
    out->page_size = (uint32_t)pg->count;
    return 0;
}

/* One user checked, in the order of the fields' documentation; its texts in the sv's. */
struct g_user_ok {
    struct pjson_sv id, email, username;
    enum mdl_user_state state;
};

static int g_check_user(struct pjson_cur *c, const struct g_users_raw *pg,
                        const struct g_user_raw *u, struct id_seen *seen, struct g_user_ok *t,
                        bool with_roles)
{
    struct pjson_sv state = {0};
    memset(t, 0, sizeof(*t));
    if (pjson_sv_expect_object(c, u->type) < 0 ||
        pjson_sv_get(c, &u->id, "id", PJSON_ID, true, &t->id) < 0 ||
        pjson_sv_get(c, &u->email, "email", PJSON_NAME, false, &t->email) < 0 ||
        pjson_sv_get(c, &u->username, "username", PJSON_NAME, false, &t->username) < 0 ||
        pjson_sv_get(c, &u->state, "state", PJSON_NAME, true, &state) < 0)
        return -1;
#define STATE_IS(lit) (state.len == sizeof(lit) - 1 && memcmp(state.s, lit, sizeof(lit) - 1) == 0)
    if (STATE_IS("active")) {
        t->state = MDL_USER_ACTIVE;
    } else if (STATE_IS("inactive")) {
        t->state = MDL_USER_INACTIVE;
    } else if (STATE_IS("deleted")) {
        t->state = MDL_USER_DELETED;
    } else {
        pjson_sv_free(&state);
        pjson_push_key(c, "state");
        return pjson_fail(c, "expected active, inactive or deleted");
    }
#undef STATE_IS
    pjson_sv_free(&state);
    if (!with_roles)
        return 0; /* the grants come from elsewhere (subject grants): authorization unread */
    /* Without the expansion the user's roles are unknown; reading them as "none" would make a
     * mirror revoke everything, so the page fails instead. */
    if (pjson_sv_object(c, u->auth, "authorization", true) < 0)
        return -1;
    size_t mark = pjson_push_key(c, "authorization");
    if (pjson_sv_array(c, u->roles, u->roles_count, "roles", true) < 0)
        return -1;
    pjson_push_key(c, "roles");
    for (size_t i = 0; i < u->nrefs; i++) {
        const struct g_ref_raw *x = &pg->refs[u->first_ref + i];
        /* Hot path: a well-formed reference needs no error path; the full check below runs only
         * to word the error. */
        if (x->type == JSCAN_OBJECT && x->id.type == JSCAN_STRING && !x->id.escaped &&
            id_ok_cached(seen, x->id.raw, x->id.len))
            continue;
        struct pjson_sv id;
        size_t m2 = pjson_push_idx(c, i);
        if (pjson_sv_expect_object(c, x->type) < 0 ||
            pjson_sv_get(c, &x->id, "id", PJSON_ID, true, &id) < 0)
            return -1;
        pjson_sv_free(&id);
        pjson_pop(c, m2);
    }
    pjson_pop(c, mark);
    return 0;
}

static void g_user_ok_free(struct g_user_ok *t)
{
    pjson_sv_free(&t->id);
    pjson_sv_free(&t->email);
    pjson_sv_free(&t->username);
}

/* A page read and checked, not yet in a snapshot (gjs_users_prepare). */
struct gjs_users_prep {
    int rc;
    char err[512];
    unsigned mode;
    struct pjson_sv cursor; /* GJS_USERS_CURSOR: the next page's cursor, or none */
    struct gjs_page page;
    struct g_users_raw pg;
    struct g_user_ok *t; /* pg.nu of them when rc == 0 */
};

void gjs_users_discard(struct gjs_users_prep *p)
{
    if (!p)
        return;
    for (size_t i = 0; p->t && i < p->pg.nu; i++)
        g_user_ok_free(&p->t[i]);
    free(p->t);
    free(p->pg.u);
    free(p->pg.refs);
    pjson_sv_free(&p->cursor);
    free(p);
}

struct gjs_users_prep *gjs_users_prepare(const char *body, size_t len)
{
    return gjs_users_prepare_mode(body, len, GJS_USERS_ROLES);
}

struct gjs_users_prep *gjs_users_prepare_mode(const char *body, size_t len, unsigned mode)
{
    struct gjs_users_prep *p = xcalloc(1, sizeof(*p));
    p->mode = mode;
    struct pjson_cur c;
    struct jscan j;
    enum jscan_type root = JSCAN_NONE;
    p->rc = -1;
    pjson_cur_init(&c, "genesys users page", p->err, sizeof(p->err));
    if (pjson_scan_init(&c, &j, body, len) < 0)
        return p;
    if (g_scan_users_page(&j, &p->pg, &root) < 0) {
        pjson_scan_fail(&c, &j);
        return p;
    }
    if (mode == GJS_USERS_CURSOR ? g_cursor_envelope_raw(&c, root, &p->pg, &p->page, &p->cursor) < 0
                                 : g_envelope_raw(&c, root, &p->pg, &p->page) < 0)
        return p;
    size_t n = p->pg.nu;
    p->t = xcalloc(n ? n : 1, sizeof(*p->t));
    struct id_seen seen = {0};
    int rc = 0;
    size_t mark = pjson_push_key(&c, "entities");
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t m2 = pjson_push_idx(&c, i);
        rc = g_check_user(&c, &p->pg, &p->pg.u[i], &seen, &p->t[i], mode == GJS_USERS_ROLES);
        pjson_pop(&c, m2);
    }
    pjson_pop(&c, mark);
    /* Users go unrecorded only after one that fails, or past a limit the envelope refuses. */
    if (rc == 0 && n != p->pg.count)
        rc = pjson_fail(&c, "internal error: %zu of %zu users recorded", n, p->pg.count);
    p->rc = rc;
    return p;
}

int gjs_users_commit(struct gjs_users_prep *p, struct mdl_snapshot *s, struct pjson_role_refs *refs,
                     struct gjs_page *page, char *err, size_t errlen)
{
    return gjs_users_commit_cursor(p, s, refs, page, NULL, err, errlen);
}

int gjs_users_commit_cursor(struct gjs_users_prep *p, struct mdl_snapshot *s,
                            struct pjson_role_refs *refs, struct gjs_page *page, char **cursor,
                            char *err, size_t errlen)
{
    int rc = p->rc;
    memset(page, 0, sizeof(*page));
    if (cursor)
        *cursor = rc == 0 && p->cursor.s ? xstrndup(p->cursor.s, p->cursor.len) : NULL;
    if (rc != 0) {
        snprintf(err, errlen, "%s", p->err);
        gjs_users_discard(p);
        return -1;
    }
    /* Only a page that parsed whole reaches the snapshot (page parsers are atomic). */
    for (size_t i = 0; i < p->pg.nu; i++) {
        const struct g_user_ok *t = &p->t[i];
        char idb[PJSON_MAX_NAME + 1], eb[PJSON_MAX_NAME + 1], ub[PJSON_MAX_NAME + 1];
        struct mdl_user u = {.id = pjson_sv_cstr(&t->id, idb, sizeof(idb)),
                             .email = pjson_sv_cstr(&t->email, eb, sizeof(eb)),
                             .username = pjson_sv_cstr(&t->username, ub, sizeof(ub)),
                             .state = t->state};
        uint32_t ui = mdl_add_user(s, &u);
        const struct g_user_raw *r = &p->pg.u[i];
        for (size_t k = 0; p->mode == GJS_USERS_ROLES && k < r->nrefs; k++)
            pjson_role_refs_add_val(refs, ui, &p->pg.refs[r->first_ref + k].id);
    }
    *page = p->page;
    gjs_users_discard(p);
    return 0;
}

int gjs_parse_users_page(struct mdl_snapshot *s, struct pjson_role_refs *refs, const char *body,
                         size_t len, struct gjs_page *page, char *err, size_t errlen)
{
    return gjs_users_commit(gjs_users_prepare(body, len), s, refs, page, err, errlen);
}

int gjs_parse_permissions_page(struct mdl_snapshot *s, const char *body, size_t len,
                               struct gjs_page *page, char *err, size_t errlen)
{
    struct pjson_cur c;
    struct json_object *ents = NULL;
    pjson_cur_init(&c, "genesys permissions page", err, errlen);
    memset(page, 0, sizeof(*page));
    struct json_object *root = parse_root(&c, body, len);
    if (!root)
        return -1;
    if (g_envelope(&c, root, page, &ents) < 0) {
        json_object_put(root);
        return -1;
    }
    size_t n = page->entities;
    const char **dv = xcalloc(n ? n : 1, sizeof(*dv));
    int rc = 0;
    size_t mark = pjson_push_key(&c, "entities");
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct json_object *e = json_object_array_get_idx(ents, i);
        size_t m2 = pjson_push_idx(&c, i);
        rc = pjson_expect_object(&c, e);
        if (rc == 0)
            rc = pjson_get_string(&c, e, "domain", PJSON_NAME, false, &dv[i]);
        if (rc == 0 && !dv[i])
            rc = pjson_get_string(&c, e, "id", PJSON_NAME, false, &dv[i]);
        if (rc == 0 && !dv[i])
            rc = pjson_fail(&c, "permission collection without a domain");
        pjson_pop(&c, m2);
    }
    pjson_pop(&c, mark);
    if (rc == 0 && n) {
        /* The snapshot's array is arena memory: build the merged, sorted, unique list anew. */
        size_t old = s->nlicensed_domains, total = old + n;
        const char **all = xcalloc(total, sizeof(*all));
        for (size_t i = 0; i < old; i++)
            all[i] = s->licensed_domains[i];
        for (size_t i = 0; i < n; i++)
            all[old + i] = dv[i];
        size_t u = sort_unique(all, total);
        char **dst = mdl_alloc(s, u * sizeof(char *));
        for (size_t i = 0; i < u; i++)
            dst[i] = (char *)mdl_strdup(s, all[i]); /* re-copying old ones keeps this linear */
        s->licensed_domains = dst;
        s->nlicensed_domains = u;
        free(all);
    }
    free(dv);
    json_object_put(root);
    if (rc < 0)
        memset(page, 0, sizeof(*page));
    return rc;
}

/* ========================================================================================== */
/* Genesys: single objects                                                                    */

int gjs_parse_role(const char *body, size_t len, struct pjson_role *out, char *err, size_t errlen)
{
    struct pjson_cur c;
    struct g_role_tmp t;
    memset(out, 0, sizeof(*out));
    pjson_cur_init(&c, "genesys role", err, errlen);
    struct json_object *root = parse_root(&c, body, len);
    if (!root)
        return -1;
    if (g_role(&c, root, &t) < 0) {
        free(t.canon);
        json_object_put(root);
        return -1;
    }
    out->id = xstrdup(t.id);
    out->name = xstrdup(t.name);
    out->description = xstrdup(t.desc);
    out->builtin_key = xstrdup(t.key);
    out->def_canon = t.canon;
    out->def_json = xstrdup(t.canon);
    free(t.org_ref);
    json_object_put(root);
    return 0;
}

/* Role ids of a reply (pointers into its JSON tree). */
struct g_refs {
    const char **v;
    size_t n, cap;
};

/* Array of objects each with a valid `id` (DomainRole / Role references); the ids are appended
 * to `out`. */
static int check_role_refs(struct pjson_cur *c, struct json_object *arr, const char *idkey,
                           struct id_seen *seen, struct g_refs *out)
{
    size_t n = json_object_array_length(arr);
    util_grow((void **)&out->v, &out->cap, out->n + n, sizeof(*out->v));
    for (size_t i = 0; i < n; i++) {
        const char *id;
        struct json_object *el = json_object_array_get_idx(arr, i), *v;
        /* Hot path: a well-formed reference needs no error path; the full check below runs only
         * to word the error. */
        if (json_object_is_type(el, json_type_object) && json_object_object_get_ex(el, idkey, &v) &&
            json_object_is_type(v, json_type_string) &&
            id_ok_cached(seen, json_object_get_string(v), (size_t)json_object_get_string_len(v))) {
            out->v[out->n++] = json_object_get_string(v);
            continue;
        }
        size_t mark = pjson_push_idx(c, i);
        if (pjson_expect_object(c, el) < 0 ||
            pjson_get_string(c, el, idkey, PJSON_ID, true, &id) < 0)
            return -1;
        pjson_pop(c, mark);
        out->v[out->n++] = id;
    }
    return 0;
}

/* Array `arr` of objects with an id member -> out (malloc'd copies). */
static void collect_ref_ids(struct json_object *arr, const char *idkey, struct pjson_ids *out)
{
    size_t n = json_object_array_length(arr);
    out->v = xcalloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        struct json_object *id = NULL;
        json_object_object_get_ex(json_object_array_get_idx(arr, i), idkey, &id);
        out->v[i] = xstrdup(json_object_get_string(id));
    }
    out->n = n;
}

int gjs_parse_user_authorization(const char *body, size_t len, struct pjson_ids *out, char *err,
                                 size_t errlen)
{
    struct pjson_cur c;
    struct json_object *roles;
    memset(out, 0, sizeof(*out));
    pjson_cur_init(&c, "genesys user authorization", err, errlen);
    struct json_object *root = parse_root(&c, body, len);
    if (!root)
        return -1;
    int rc = -1;
    if (pjson_expect_object(&c, root) < 0 || pjson_get_array(&c, root, "roles", true, &roles) < 0)
        goto out;
    size_t mark = pjson_push_key(&c, "roles");
    struct id_seen seen = {0};
    struct g_refs ids = {0};
    if (check_role_refs(&c, roles, "id", &seen, &ids) < 0) {
        free(ids.v);
        goto out;
    }
    pjson_pop(&c, mark);
    free(ids.v);
    collect_ref_ids(roles, "id", out);
    rc = 0;
out:
    json_object_put(root);
    return rc;
}

int gjs_parse_id_array(const char *body, size_t len, struct pjson_ids *out, char *err,
                       size_t errlen)
{
    struct pjson_cur c;
    memset(out, 0, sizeof(*out));
    pjson_cur_init(&c, "genesys id list", err, errlen);
    struct json_object *root = parse_root(&c, body, len);
    if (!root)
        return -1;
    if (pjson_expect_array(&c, root) < 0) {
        json_object_put(root);
        return -1;
    }
    size_t n = json_object_array_length(root);
    for (size_t i = 0; i < n; i++) {
        size_t mark = pjson_push_idx(&c, i);
        if (pjson_check_string(&c, json_object_array_get_idx(root, i), PJSON_ID) < 0) {
            json_object_put(root);
            return -1;
        }
        pjson_pop(&c, mark);
    }
    out->v = xcalloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        out->v[i] = xstrdup(json_object_get_string(json_object_array_get_idx(root, i)));
    out->n = n;
    json_object_put(root);
    return 0;
}

/* Member `key` as a string, or NULL (any other type, absent). For error decoration only. */
void gjs_error_line(const char *body, size_t len, char *buf, size_t n)
{
    char e[160];
    struct pjson_cur c;
    if (n == 0)
        return;
    buf[0] = '\0';
    pjson_cur_init(&c, "genesys error body", e, sizeof(e));
    struct json_object *root = pjson_parse(&c, body, len);
    if (root && json_object_is_type(root, json_type_object)) {
        const char *m = pjson_loose_string(root, "message");
        if (m && *m)
            http_clean_line(buf, n, m, strlen(m));
    }
    json_object_put(root);
}

int gjs_parse_error(const char *body, size_t len, struct pjson_error_info *out)
{
    char e[160];
    struct pjson_cur c;
    memset(out, 0, sizeof(*out));
    pjson_cur_init(&c, "genesys error body", e, sizeof(e));
    struct json_object *root = parse_root(&c, body, len);
    if (!root)
        return -1;
    if (!json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        return -1;
    }
    pjson_copy_clean(out->message, sizeof(out->message), pjson_loose_string(root, "message"));
    pjson_copy_clean(out->code, sizeof(out->code), pjson_loose_string(root, "code"));
    pjson_copy_clean(out->correlation_id, sizeof(out->correlation_id),
                     pjson_loose_string(root, "contextId"));
    struct json_object *st = NULL;
    if (json_object_object_get_ex(root, "status", &st) && json_object_is_type(st, json_type_int)) {
        int64_t x = json_object_get_int64(st);
        out->status = (x >= 100 && x <= 599) ? (int)x : 0;
    }
    json_object_put(root);
    return (out->message[0] || out->code[0]) ? 0 : -1;
}

/* ========================================================================================== */
/* Genesys: request bodies                                                                    */

/* Checks a caller-supplied string the way the parsers check response strings. */
static int check_out_string(const char *what, const char *s, size_t max, bool newlines, char *err,
                            size_t errlen)
{
    size_t n = strlen(s);
    const char *p = n > max ? "too long" : pjson_text_problem(s, n, newlines);
    if (p) {
        snprintf(err, errlen, "%s: %s", what, p);
        return -1;
    }
    return 0;
}

static char *g_build(const char *name, const char *description, bool always_description,
                     const char *def_json, char *err, size_t errlen)
{
    if (!name || !*name) {
        snprintf(err, errlen, "genesys role body: the role name is required");
        return NULL;
    }
    if (check_out_string("genesys role body: name", name, PJSON_MAX_NAME, false, err, errlen) < 0 ||
        (description && check_out_string("genesys role body: description", description,
                                         PJSON_MAX_TEXT, true, err, errlen) < 0))
        return NULL;
    char *canon = NULL;
    if (def_json) {
        /* def_json came from our own parser, but it crosses module boundaries as a plain
         * string: re-validate and re-canonicalise rather than splice it in blindly. */
        struct pjson_cur c;
        pjson_cur_init(&c, "genesys role definition", err, errlen);
        struct json_object *d = pjson_parse(&c, def_json, strlen(def_json));
        if (!d)
            return NULL;
        int rc = pjson_expect_object(&c, d);
        if (rc == 0)
            rc = canon_definition(&c, d, &canon);
        json_object_put(d);
        if (rc < 0)
            return NULL;
    } else {
        canon = xstrdup("{\"permissions\":[],\"permissionPolicies\":[]}");
    }
    struct pjson_buf b = {0};
    pjson_buf_puts(&b, "{\"name\":");
    pjson_buf_put_string(&b, name);
    if (description || always_description) {
        pjson_buf_puts(&b, ",\"description\":");
        pjson_buf_put_string(&b, description ? description : "");
    }
    pjson_buf_puts(&b, ",");
    pjson_buf_puts(&b, canon + 1); /* canon is {"permissions":...,"permissionPolicies":...} */
    free(canon);
    return pjson_buf_take(&b);
}

char *gjs_build_role_create(const char *name, const char *description, const char *def_json,
                            char *err, size_t errlen)
{
    return g_build(name, description, false, def_json, err, errlen);
}

char *gjs_build_role_update(const char *name, const char *description, const char *def_json,
                            char *err, size_t errlen)
{
    return g_build(name, description, true, def_json, err, errlen);
}

char *gjs_build_default_role_update(const struct mdl_role *target, const char *source_def_json,
                                    char *err, size_t errlen)
{
    if (!target) {
        snprintf(err, errlen, "genesys role body: no target role");
        return NULL;
    }
    return g_build(target->name, target->description, true, source_def_json, err, errlen);
}

/* ========================================================================================== */
/* Genesys: licensing                                                                         */

static bool domain_licensed(const char *domain, const char *const *licensed, size_t n)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(licensed[mid], domain);
        if (c == 0)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

char *gjs_def_filter_domains(const char *def_json, const char *const *licensed, size_t n,
                             char **dropped, char *err, size_t errlen)
{
    struct pjson_cur c;
    struct json_object *root, *pols, *kept;
    struct pjson_buf names = {0};
    char *out = NULL;

    *dropped = NULL;
    pjson_cur_init(&c, "genesys role definition", err, errlen);
    root = pjson_parse(&c, def_json, strlen(def_json));
    if (!root)
        return NULL;
    if (pjson_expect_object(&c, root) < 0 ||
        pjson_get_array(&c, root, "permissionPolicies", false, &pols) < 0)
        goto done;
    kept = json_object_new_array();
    for (size_t i = 0; pols && i < json_object_array_length(pols); i++) {
        struct json_object *p = json_object_array_get_idx(pols, i), *d;
        const char *dom =
            json_object_object_get_ex(p, "domain", &d) && json_object_is_type(d, json_type_string)
                ? json_object_get_string(d)
                : NULL;
        if (!dom || domain_licensed(dom, licensed, n)) {
            json_object_array_add(kept, json_object_get(p));
            continue;
        }
        /* Policies are sorted by domain first, so a repeated domain is the previous one. */
        const char *last = names.n ? strrchr(names.p, ' ') : NULL;
        if (!names.n || strcmp(last ? last + 1 : names.p, dom) != 0) {
            if (names.n)
                pjson_buf_puts(&names, ", ");
            pjson_buf_puts(&names, dom);
        }
    }
    json_object_object_add(root, "permissionPolicies", kept);
    if (canon_definition(&c, root, &out) < 0)
        out = NULL;
    else if (names.n)
        *dropped = pjson_buf_take(&names);
done:
    free(names.p);
    json_object_put(root);
    return out;
}

char *gjs_def_canon(const char *def_json, char *err, size_t errlen)
{
    struct pjson_cur c;
    char *out = NULL;
    pjson_cur_init(&c, "genesys role definition", err, errlen);
    struct json_object *d = pjson_parse(&c, def_json, strlen(def_json));
    if (!d)
        return NULL;
    if (pjson_expect_object(&c, d) < 0 || canon_definition(&c, d, &out) < 0)
        out = NULL;
    json_object_put(d);
    return out;
}

/* ========================================================================================== */
/* Genesys: grant request bodies                                                              */

char *gjs_build_subject_divisions(const char *const *subject_ids, size_t n, const char *division)
{
    struct pjson_buf b = {0};
    char *subjects = pjson_build_string_array(subject_ids, n);
    pjson_buf_puts(&b, "{\"subjectIds\":");
    pjson_buf_puts(&b, subjects);
    pjson_buf_puts(&b, ",\"divisionIds\":[");
    pjson_buf_put_string(&b, division ? division : "");
    pjson_buf_puts(&b, "]}");
    free(subjects);
    return pjson_buf_take(&b);
}

char *gjs_build_role_division_grants(const char *const *role_ids, const char *const *division_ids,
                                     size_t n)
{
    struct pjson_buf b = {0};
    pjson_buf_puts(&b, "{\"grants\":[");
    for (size_t i = 0; i < n; i++) {
        pjson_buf_puts(&b, i ? ",{\"roleId\":" : "{\"roleId\":");
        pjson_buf_put_string(&b, role_ids[i] ? role_ids[i] : "");
        pjson_buf_puts(&b, ",\"divisionId\":");
        pjson_buf_put_string(&b, division_ids[i] ? division_ids[i] : "");
        pjson_buf_puts(&b, "}");
    }
    pjson_buf_puts(&b, "]}");
    return pjson_buf_take(&b);
}

/* ========================================================================================== */
/* Genesys: divisions and subject grants                                                      */

int gjs_parse_divisions_page(struct mdl_snapshot *s, const char *body, size_t len,
                             struct gjs_page *page, char *err, size_t errlen)
{
    struct pjson_cur c;
    struct json_object *ents = NULL;
    pjson_cur_init(&c, "genesys divisions page", err, errlen);
    memset(page, 0, sizeof(*page));
    struct json_object *root = parse_root(&c, body, len);
    if (!root)
        return -1;
    int rc = g_envelope(&c, root, page, &ents);
    size_t n = rc == 0 ? json_object_array_length(ents) : 0;
    struct d_tmp {
        const char *id, *name;
        bool home;
    } *t = xcalloc(n + 1, sizeof(*t));
    bool home_seen = false; /* on this page; an earlier page's set quals[0].id */
    size_t mark = pjson_push_key(&c, "entities");
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct json_object *e = json_object_array_get_idx(ents, i);
        size_t m2 = pjson_push_idx(&c, i);
        rc = pjson_expect_object(&c, e) < 0 ||
                     pjson_get_string(&c, e, "id", PJSON_ID, true, &t[i].id) < 0 ||
                     pjson_get_string(&c, e, "name", PJSON_NAME, true, &t[i].name) < 0 ||
                     pjson_get_bool(&c, e, "homeDivision", false, &t[i].home) < 0
                 ? -1
                 : 0;
        if (rc == 0 && strcmp(t[i].id, "*") == 0)
            rc = pjson_fail(&c, "a division with the id \"*\" (the all-divisions grant's)");
        if (rc == 0 && t[i].home && (s->quals[0].id || home_seen))
            rc = pjson_fail(&c, "a second home division");
        home_seen = home_seen || t[i].home;
        pjson_pop(&c, m2);
    }
    pjson_pop(&c, mark);
    /* Only a page valid as a whole reaches the snapshot. */
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (t[i].home)
            mdl_set_home(s, t[i].id, t[i].name);
        else
            mdl_add_qual(s, &(struct mdl_qual){.id = t[i].id, .name = t[i].name});
    }
    free(t);
    json_object_put(root);
    return rc;
}

int gjs_parse_subjectgrants_page(struct mdl_snapshot *s, struct pjson_grant_refs *refs,
                                 uint32_t role, const char *body, size_t len, struct gjs_page *page,
                                 char *err, size_t errlen)
{
    struct pjson_cur c;
    struct json_object *ents = NULL;
    pjson_cur_init(&c, "genesys subject grants page", err, errlen);
    memset(page, 0, sizeof(*page));
    struct json_object *root = parse_root(&c, body, len);
    if (!root)
        return -1;
    int rc = g_envelope(&c, root, page, &ents);
    size_t n = rc == 0 ? json_object_array_length(ents) : 0;
    size_t mark = pjson_push_key(&c, "entities");
    /* Checked whole first: only a page valid as a whole is recorded. */
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct json_object *e = json_object_array_get_idx(ents, i), *divs = NULL;
        const char *id, *type;
        size_t m2 = pjson_push_idx(&c, i);
        rc = pjson_expect_object(&c, e) < 0 ||
                     pjson_get_string(&c, e, "id", PJSON_ID, true, &id) < 0 ||
                     pjson_get_string(&c, e, "type", PJSON_NAME, true, &type) < 0 ||
                     pjson_get_array(&c, e, "divisions", true, &divs) < 0
                 ? -1
                 : 0;
        size_t m3 = pjson_push_key(&c, "divisions");
        for (size_t k = 0; rc == 0 && k < json_object_array_length(divs); k++) {
            const char *did;
            size_t m4 = pjson_push_idx(&c, k);
            rc = pjson_expect_object(&c, json_object_array_get_idx(divs, k)) < 0 ||
                         pjson_get_string(&c, json_object_array_get_idx(divs, k), "id", PJSON_ID,
                                          true, &did) < 0
                     ? -1
                     : 0;
            pjson_pop(&c, m4);
        }
        pjson_pop(&c, m3);
        pjson_pop(&c, m2);
    }
    pjson_pop(&c, mark);
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct json_object *e = json_object_array_get_idx(ents, i), *divs = NULL, *v;
        json_object_object_get_ex(e, "id", &v);
        const char *id = json_object_get_string(v);
        json_object_object_get_ex(e, "type", &v);
        const char *type = json_object_get_string(v);
        json_object_object_get_ex(e, "divisions", &divs);
        if (strcmp(type, "PC_USER") != 0) {
            /* a group, an OAuth client, or a kind this reader does not know: a holder that is
             * no user of the snapshot (product.md 4a.7) */
            s->roles[role].other_holders++;
            continue;
        }
        for (size_t k = 0; k < json_object_array_length(divs); k++) {
            json_object_object_get_ex(json_object_array_get_idx(divs, k), "id", &v);
            pjson_grant_refs_add(refs, id, strlen(id), role, json_object_get_string(v),
                                 (size_t)json_object_get_string_len(v));
        }
    }
    json_object_put(root);
    return rc;
}

/* ---- one subject's grants (rolesyncd --explain) ---- */

int gjs_parse_subject(const char *body, size_t len, struct prov_subject_grant **out, size_t *n,
                      char *err, size_t errlen)
{
    struct pjson_cur c;
    struct json_object *grants = NULL;
    pjson_cur_init(&c, "genesys subject", err, errlen);
    *out = NULL;
    *n = 0;
    struct json_object *root = parse_root(&c, body, len);
    if (!root)
        return -1;
    int rc =
        pjson_expect_object(&c, root) < 0 || pjson_get_array(&c, root, "grants", true, &grants) < 0
            ? -1
            : 0;
    size_t cnt = rc == 0 ? json_object_array_length(grants) : 0;
    struct prov_subject_grant *v = xcalloc(cnt + 1, sizeof(*v));
    size_t mark = pjson_push_key(&c, "grants");
    for (size_t i = 0; i < cnt && rc == 0; i++) {
        struct json_object *e = json_object_array_get_idx(grants, i), *div = NULL, *role = NULL;
        const char *sid, *did, *rid;
        size_t m2 = pjson_push_idx(&c, i);
        rc = pjson_expect_object(&c, e) < 0 ||
                     pjson_get_string(&c, e, "subjectId", PJSON_ID, true, &sid) < 0 ||
                     pjson_get_object(&c, e, "division", true, &div) < 0 ||
                     pjson_get_object(&c, e, "role", true, &role) < 0
                 ? -1
                 : 0;
        size_t m3 = pjson_push_key(&c, "division");
        rc = rc == 0 && pjson_get_string(&c, div, "id", PJSON_ID, true, &did) == 0 ? 0 : -1;
        pjson_pop(&c, m3);
        m3 = pjson_push_key(&c, "role");
        rc = rc == 0 && pjson_get_string(&c, role, "id", PJSON_ID, true, &rid) == 0 ? 0 : -1;
        pjson_pop(&c, m3);
        if (rc == 0)
            v[i] = (struct prov_subject_grant){xstrdup(rid), xstrdup(did), xstrdup(sid), NULL};
        pjson_pop(&c, m2);
    }
    pjson_pop(&c, mark);
    json_object_put(root);
    if (rc != 0) {
        gjs_subject_free(v, cnt);
        return -1;
    }
    *out = v;
    *n = cnt;
    return 0;
}

void gjs_subject_free(struct prov_subject_grant *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free((char *)v[i].role_id);
        free((char *)v[i].qual_id);
        free((char *)v[i].subject_id);
        free((char *)v[i].subject_name);
    }
    free(v);
}

int gjs_parse_group_name(const char *body, size_t len, char **name, char *err, size_t errlen)
{
    struct pjson_cur c;
    const char *nm = NULL;
    pjson_cur_init(&c, "genesys group", err, errlen);
    *name = NULL;
    struct json_object *root = parse_root(&c, body, len);
    if (!root)
        return -1;
    int rc = pjson_expect_object(&c, root) < 0 ||
                     pjson_get_string(&c, root, "name", PJSON_NAME, false, &nm) < 0
                 ? -1
                 : 0;
    if (rc == 0 && nm)
        *name = xstrdup(nm);
    json_object_put(root);
    return rc;
}
