/* sim_state.c — the simulated tenant: roles, users, groups, OAuth clients, divisions, grants,
 * and the state JSON of tests/sim/README.md (load, dump). All functions here expect the caller
 * to hold ctx->lock exclusively, except sim_role_find/sim_role_find_name/sim_user_find/
 * sim_div_find/sim_subj_find/sim_role_json, which only read and are safe under the shared lock.
 *
 * State format decisions (tests/sim/README.md has the whole format):
 * - users[].roles keeps its version 1 meaning: the user's direct grants in the home division.
 *   users[].grants ([{role, division}], division an id or "*") holds further direct grants in
 *   any division; a home-division entry there is merged with `roles`, duplicates dropped. A dump
 *   writes `roles` = the home-division grants and `grants` = the others, and leaves `grants` out
 *   when there are none, so a version 1 state dumps as version 1. groups[] and oauth_clients[]
 *   follow the same roles/grants convention and are left out of a dump when there are none.
 * - divisions: exactly one is home (the first marked "home": true, else the first listed, else
 *   one named "Home" is created); a dump writes "home" on every division. The id "*" is
 *   reserved for the all-divisions grant. A user's `division` must name a division (absent:
 *   home).
 * - employee (the keeper) is always granted in the home division, first, to every user.
 * - subject ids are unique across users, groups and OAuth clients (subjects/{id} is one space).
 */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *type;
    const char *name;
    const char *desc;
} identity_builtins[] = {
    {"2dc742ab-39ea-4fc0-a39e-2bcb71c26a5f", "Tenant Administrator",
     "Full administrative access to the tenant"},
    {"f1439595-e5a2-487f-8a4f-0627fefe75df", "Tenant Contributor",
     "Read and write access to tenant resources"},
    {"45b66433-5f57-420b-bbdf-8bbd60c1cd9d", "Tenant Data Steward",
     "Manages data and its metadata"},
    {"e6cbf91e-0be8-4858-92b5-f88ecafd5574", "Tenant Viewer", "Read access to tenant resources"},
    {SIM_MEMBER_TYPE, "Tenant Member", "Every user and client of the tenant"},
    {"b50b3349-fa9e-4a03-9220-cf99184b4645", "Community Administrator",
     "Administers the tenant's communities"},
};

/* Default roles every simulated Genesys org has (the platform's factory set, abridged). */
static const struct {
    const char *drid;
    const char *name;
    const char *desc;
    const char *perms;    /* JSON array of legacy permissions */
    const char *policies; /* JSON array of DomainPermissionPolicy */
} genesys_defaults[] = {
    {"employee", "Employee", "Default role for every user", "[]",
     "[{\"domain\":\"directory\",\"entityName\":\"user\",\"actionSet\":[\"view\"],"
     "\"allowConditions\":false,\"policyName\":\"directory:user:view\",\"namedResources\":[]},"
     "{\"domain\":\"authorization\",\"entityName\":\"grant\",\"actionSet\":[\"view\"],"
     "\"allowConditions\":false,\"policyName\":\"authorization:grant:view\",\"namedResources\":[]}"
     "]"},
    {"admin", "Master Admin", "Full access to the organization", "[\"admin\"]",
     "[{\"domain\":\"authorization\",\"entityName\":\"*\",\"actionSet\":[\"*\"],"
     "\"allowConditions\":false,\"policyName\":\"authorization:*:*\",\"namedResources\":[]},"
     "{\"domain\":\"directory\",\"entityName\":\"*\",\"actionSet\":[\"*\"],"
     "\"allowConditions\":false,\"policyName\":\"directory:*:*\",\"namedResources\":[]}]"},
};

static void set_err(char *err, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
}

sim_role *sim_role_find(sim_tenant *t, const char *id)
{
    sim_role *r = NULL;
    if (id)
        HASH_FIND(hh, t->role_by_id, id, strlen(id), r);
    return r;
}

sim_role *sim_role_find_name(sim_tenant *t, const char *name)
{
    sim_role *r = NULL;
    if (!name)
        return NULL;
    char *lc = sim_strlower(name);
    HASH_FIND(hh_name, t->role_by_name, lc, strlen(lc), r);
    free(lc);
    return r;
}

sim_user *sim_user_find(sim_tenant *t, const char *id)
{
    sim_user *u = NULL;
    if (id)
        HASH_FIND(hh, t->user_by_id, id, strlen(id), u);
    return u;
}

bool sim_domain_licensed(const sim_tenant *t, const char *domain)
{
    if (!domain)
        return true;
    for (size_t i = 0; i < t->nunlicensed; i++)
        if (strcasecmp(t->unlicensed[i], domain) == 0)
            return false;
    return true;
}

/* Serialise o (borrowed) to JSON and drop the closing brace: callers append more members. */
static void set_api_prefix(char **api, size_t *len, json_object *o)
{
    free(*api);
    char *s = sim_json_dup_string(o);
    size_t n = strlen(s);
    /* An object always ends with '}'; "{}" becomes "{" and the caller must not start with ','. */
    if (n > 0 && s[n - 1] == '}')
        s[--n] = '\0';
    *api = s;
    *len = n;
}

/* Copy every member of src into a new object (shared references; write lock only). */
static json_object *shallow_copy(json_object *src)
{
    json_object *o = json_object_new_object();
    json_object_object_foreach(src, k, v)
    {
        json_object_object_add(o, k, json_object_get(v));
    }
    return o;
}

/* A user's reference to the role, as a users listing with expand=authorization repeats it for
 * every holder: rendered once here rather than escaped again for each of them. */
static void role_ref_refresh(sim_role *r)
{
    sim_sb sb = {0};
    sb_puts(&sb, "{\"id\":");
    sb_json_str(&sb, r->id);
    sb_puts(&sb, ",\"name\":");
    sb_json_str(&sb, r->name);
    sb_putc(&sb, '}');
    free(r->ref);
    r->ref_len = sb.len;
    r->ref = sb_steal(&sb);
}

void sim_role_refresh(sim_tenant *t, sim_role *r)
{
    role_ref_refresh(r);
    json_object *tmp = shallow_copy(r->obj);
    if (t->api == SIM_GENESYS) {
        char *enc = util_pct_encode(r->id);
        char *uri = xasprintf("/api/v2/authorization/roles/%s", enc);
        json_object_object_add(tmp, "selfUri", json_object_new_string(uri));
        free(uri);
        free(enc);
        json_object *pol = NULL;
        json_object_object_get_ex(r->obj, "permissionPolicies", &pol);
        free(r->policies);
        r->policies = pol ? sim_json_dup_string(pol) : xstrdup("[]");
        size_t n = strlen(r->policies);
        /* "[a,b]" -> "a,b" so that several roles' lists can be concatenated. */
        if (n >= 2 && r->policies[0] == '[' && r->policies[n - 1] == ']') {
            memmove(r->policies, r->policies + 1, n - 2);
            r->policies[n - 2] = '\0';
        }
    }
    set_api_prefix(&r->api, &r->api_len, tmp);
    json_object_put(tmp);
}

void sim_role_json(sim_sb *sb, const sim_role *r, bool user_count)
{
    sb_putn(sb, r->api, r->api_len);
    if (user_count)
        sb_printf(sb, ",\"userCount\":%zu}", r->user_count);
    else
        sb_putc(sb, '}');
}

/* ---- divisions ------------------------------------------------------------------------- */

sim_div *sim_div_find(sim_tenant *t, const char *id)
{
    sim_div *d = NULL;
    if (!id)
        return NULL;
    if (strcmp(id, "*") == 0)
        return &t->all_div;
    HASH_FIND(hh, t->div_by_id, id, strlen(id), d);
    return d;
}

/* AuthzDivision, rendered once: grants, subject grants and listings repeat it. */
static void div_refresh(sim_div *d)
{
    sim_sb sb = {0};
    const char *desc = sim_json_str(d->obj, "description");
    sb_putl(&sb, "{\"id\":");
    sb_json_str(&sb, d->id);
    sb_putl(&sb, ",\"name\":");
    sb_json_str(&sb, d->name);
    sb_putl(&sb, ",\"description\":");
    sb_json_str(&sb, desc ? desc : "");
    sb_printf(&sb, ",\"homeDivision\":%s,\"selfUri\":", d->home ? "true" : "false");
    sb_json_uri(&sb, "/api/v2/authorization/divisions/", d->id);
    sb_putc(&sb, '}');
    free(d->api);
    d->api_len = sb.len;
    d->api = sb_steal(&sb);
}

static void user_refresh(sim_tenant *t, sim_user *u)
{
    if (t->api == SIM_IDENTITY) {
        set_api_prefix(&u->api, &u->api_len, u->obj);
        return;
    }
    /* Genesys User: the state's flat fields mapped onto the API's shape. */
    sim_sb sb = {0};
    sim_div *div = sim_div_find(t, sim_json_str(u->obj, "division"));
    sb_puts(&sb, "{\"id\":");
    sb_json_str(&sb, u->id);
    sb_puts(&sb, ",\"name\":");
    sb_json_str(&sb, sim_json_str(u->obj, "name"));
    sb_puts(&sb, ",\"division\":{\"id\":");
    sb_json_str(&sb, div->id);
    sb_puts(&sb, ",\"name\":");
    sb_json_str(&sb, div->name);
    sb_puts(&sb, ",\"selfUri\":");
    sb_json_uri(&sb, "/api/v2/authorization/divisions/", div->id);
    sb_putc(&sb, '}');
    sb_puts(&sb, ",\"email\":");
    sb_json_str(&sb, sim_json_str(u->obj, "email"));
    sb_puts(&sb, ",\"state\":");
    sb_json_str(&sb, u->state == SIM_ACTIVE     ? "active"
                     : u->state == SIM_INACTIVE ? "inactive"
                                                : "deleted");
    sb_puts(&sb, ",\"username\":");
    sb_json_str(&sb, sim_json_str(u->obj, "username"));
    sb_puts(&sb, ",\"version\":1,\"selfUri\":");
    sb_json_uri(&sb, "/api/v2/users/", u->id);
    free(u->api);
    u->api_len = sb.len;
    u->api = sb_steal(&sb);
}

bool sim_user_has_role(const sim_user *u, const sim_role *r)
{
    for (size_t i = 0; i < u->nroles; i++)
        if (u->roles[i] == r)
            return true;
    return false;
}

void sim_user_add_role(sim_user *u, sim_role *r)
{
    if (sim_user_has_role(u, r))
        return;
    util_grow((void **)&u->roles, &u->rcap, u->nroles + 1, sizeof *u->roles);
    u->roles[u->nroles++] = r;
    r->user_count++;
}

void sim_user_remove_role(sim_user *u, sim_role *r)
{
    for (size_t i = 0; i < u->nroles; i++) {
        if (u->roles[i] == r) {
            memmove(&u->roles[i], &u->roles[i + 1], (u->nroles - i - 1) * sizeof *u->roles);
            u->nroles--;
            r->user_count--;
            return;
        }
    }
}

void sim_user_clear_roles(sim_user *u)
{
    for (size_t i = 0; i < u->nroles; i++)
        u->roles[i]->user_count--;
    u->nroles = 0;
}

/* ---- grants (genesys) ------------------------------------------------------------------ */

sim_subj *sim_subj_find(sim_tenant *t, const char *id, int type)
{
    if (!id)
        return NULL;
    size_t n = strlen(id);
    if (type < 0 || type == SIM_SUBJ_USER) {
        sim_user *u = NULL;
        HASH_FIND(hh, t->user_by_id, id, n, u);
        if (u)
            return &u->subj;
    }
    if (type < 0 || type == SIM_SUBJ_GROUP) {
        sim_group *g = NULL;
        HASH_FIND(hh, t->group_by_id, id, n, g);
        if (g)
            return &g->subj;
    }
    if (type < 0 || type == SIM_SUBJ_CLIENT) {
        sim_oauth *c = NULL;
        HASH_FIND(hh, t->oauth_by_id, id, n, c);
        if (c)
            return &c->subj;
    }
    return NULL;
}

bool sim_subj_has(const sim_subj *s, const sim_role *r, const sim_div *d)
{
    for (size_t i = 0; i < s->ngrants; i++)
        if (s->grants[i].role == r && s->grants[i].div == d)
            return true;
    return false;
}

static bool grants_have_role(const sim_grant *v, size_t n, const sim_role *r)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].role == r)
            return true;
    return false;
}

/* Where subject seq is (or would go) in r->holders, which is sorted by seq. */
static size_t holder_pos(const sim_role *r, size_t seq)
{
    size_t lo = 0, hi = r->nholders;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->holders[mid]->seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The subject started (held = true) or stopped holding r directly. Loading appends subjects in
 * seq order, so the insertion point is the end and nothing moves. */
static void holder_set(sim_role *r, sim_subj *s, bool held)
{
    size_t pos = holder_pos(r, s->seq);
    if (held) {
        util_grow((void **)&r->holders, &r->hcap, r->nholders + 1, sizeof *r->holders);
        memmove(&r->holders[pos + 1], &r->holders[pos], (r->nholders - pos) * sizeof *r->holders);
        r->holders[pos] = s;
        r->nholders++;
    } else {
        if (pos >= r->nholders || r->holders[pos] != s)
            return;
        memmove(&r->holders[pos], &r->holders[pos + 1],
                (r->nholders - pos - 1) * sizeof *r->holders);
        r->nholders--;
    }
    if (s->type == SIM_SUBJ_USER) {
        if (held)
            r->user_count++;
        else
            r->user_count--;
    }
}

bool sim_grant_add(sim_tenant *t, sim_subj *s, sim_role *r, sim_div *d)
{
    (void)t;
    if (sim_subj_has(s, r, d))
        return false;
    bool first = !grants_have_role(s->grants, s->ngrants, r);
    util_grow((void **)&s->grants, &s->gcap, s->ngrants + 1, sizeof *s->grants);
    s->grants[s->ngrants].role = r;
    s->grants[s->ngrants].div = d;
    s->ngrants++;
    if (first)
        holder_set(r, s, true);
    return true;
}

bool sim_grant_remove(sim_tenant *t, sim_subj *s, sim_role *r, sim_div *d)
{
    (void)t;
    for (size_t i = 0; i < s->ngrants; i++) {
        if (s->grants[i].role != r || s->grants[i].div != d)
            continue;
        memmove(&s->grants[i], &s->grants[i + 1], (s->ngrants - i - 1) * sizeof *s->grants);
        s->ngrants--;
        if (!grants_have_role(s->grants, s->ngrants, r))
            holder_set(r, s, false);
        return true;
    }
    return false;
}

void sim_subj_set_grants(sim_tenant *t, sim_subj *s, const sim_grant *list, size_t n)
{
    (void)t;
    /* Holder changes for the roles that come or go; a role counted once, at its first grant. */
    for (size_t i = 0; i < s->ngrants; i++) {
        sim_role *r = s->grants[i].role;
        if (!grants_have_role(s->grants, i, r) && !grants_have_role(list, n, r))
            holder_set(r, s, false);
    }
    for (size_t i = 0; i < n; i++) {
        sim_role *r = list[i].role;
        if (!grants_have_role(list, i, r) && !grants_have_role(s->grants, s->ngrants, r))
            holder_set(r, s, true);
    }
    if (n) {
        util_grow((void **)&s->grants, &s->gcap, n, sizeof *s->grants);
        memmove(s->grants, list, n * sizeof *s->grants);
    }
    s->ngrants = n;
}

static void view_add(sim_user *u, sim_role *r, unsigned stamp)
{
    if (r->mark == stamp)
        return;
    r->mark = stamp;
    util_grow((void **)&u->roles, &u->rcap, u->nroles + 1, sizeof *u->roles);
    u->roles[u->nroles++] = r;
}

static unsigned next_stamp(sim_tenant *t)
{
    if (++t->stamp == 0) { /* wrapped: forget every old mark */
        for (size_t i = 0; i < t->nroles; i++)
            t->roles[i]->mark = 0;
        t->stamp = 1;
    }
    return t->stamp;
}

/* The held view: direct grants' roles in grant order, then the groups' (in the order the user
 * joined them), each role once. */
static void user_view_refresh(sim_tenant *t, sim_user *u)
{
    unsigned stamp = next_stamp(t);
    u->nroles = 0;
    for (size_t i = 0; i < u->subj.ngrants; i++)
        view_add(u, u->subj.grants[i].role, stamp);
    for (size_t g = 0; g < u->ngroups; g++)
        for (size_t i = 0; i < u->groups[g]->subj.ngrants; i++)
            view_add(u, u->groups[g]->subj.grants[i].role, stamp);
}

void sim_subj_changed(sim_tenant *t, sim_subj *s)
{
    if (s->type == SIM_SUBJ_USER) {
        user_view_refresh(t, sim_subj_user(s));
    } else if (s->type == SIM_SUBJ_GROUP) {
        sim_group *g = sim_subj_group(s);
        for (size_t i = 0; i < g->nmembers; i++)
            user_view_refresh(t, g->members[i]);
    }
}

static void name_index_add(sim_tenant *t, sim_role *r)
{
    sim_role *other = NULL;
    HASH_FIND(hh_name, t->role_by_name, r->name_lc, strlen(r->name_lc), other);
    r->in_name_index = other == NULL;
    if (r->in_name_index)
        HASH_ADD_KEYPTR(hh_name, t->role_by_name, r->name_lc, strlen(r->name_lc), r);
}

static void name_index_del(sim_tenant *t, sim_role *r)
{
    if (r->in_name_index)
        HASH_DELETE(hh_name, t->role_by_name, r);
    r->in_name_index = false;
}

sim_role *sim_role_add(sim_tenant *t, json_object *obj)
{
    sim_role *r = xcalloc(1, sizeof *r);
    const bool g = t->api == SIM_GENESYS;
    r->obj = obj;
    r->id = xstrdup(sim_json_str(obj, g ? "id" : "Id"));
    r->name = xstrdup(sim_json_str(obj, g ? "name" : "Name"));
    r->name_lc = sim_strlower(r->name);
    r->kind = xstrdup(sim_json_str(obj, g ? "defaultRoleId" : "RoleTypeId"));
    HASH_ADD_KEYPTR(hh, t->role_by_id, r->id, strlen(r->id), r);
    name_index_add(t, r);
    util_grow((void **)&t->roles, &t->rcap, t->nroles + 1, sizeof *t->roles);
    r->idx = t->nroles;
    t->roles[t->nroles++] = r;
    sim_role_refresh(t, r);
    return r;
}

static void role_free(sim_role *r)
{
    free(r->id);
    free(r->name);
    free(r->name_lc);
    free(r->kind);
    free(r->api);
    free(r->policies);
    free(r->ref);
    free(r->holders);
    json_object_put(r->obj);
    free(r);
}

void sim_role_remove(sim_tenant *t, sim_role *r)
{
    if (t->api == SIM_IDENTITY) {
        for (size_t i = 0; i < t->nusers; i++)
            sim_user_remove_role(t->users[i], r);
    } else {
        /* Every grant of the role, of every subject and in every division: its holders are
         * exactly the subjects concerned (users through a group follow their group). */
        for (size_t h = 0; h < r->nholders; h++) {
            sim_subj *s = r->holders[h];
            size_t k = 0;
            for (size_t i = 0; i < s->ngrants; i++)
                if (s->grants[i].role != r)
                    s->grants[k++] = s->grants[i];
            s->ngrants = k;
        }
        for (size_t h = 0; h < r->nholders; h++)
            sim_subj_changed(t, r->holders[h]);
        r->nholders = 0;
    }
    HASH_DELETE(hh, t->role_by_id, r);
    name_index_del(t, r);
    memmove(&t->roles[r->idx], &t->roles[r->idx + 1], (t->nroles - r->idx - 1) * sizeof *t->roles);
    t->nroles--;
    for (size_t i = r->idx; i < t->nroles; i++)
        t->roles[i]->idx = i;
    /* A duplicate-named role that lost the index slot at load may take it over now. */
    for (size_t i = 0; i < t->nroles; i++)
        if (!t->roles[i]->in_name_index && strcmp(t->roles[i]->name_lc, r->name_lc) == 0) {
            name_index_add(t, t->roles[i]);
            break;
        }
    role_free(r);
}

void sim_role_set_name(sim_tenant *t, sim_role *r, const char *name)
{
    name_index_del(t, r);
    free(r->name);
    free(r->name_lc);
    r->name = xstrdup(name);
    r->name_lc = sim_strlower(name);
    name_index_add(t, r);
    json_object_object_add(r->obj, t->api == SIM_GENESYS ? "name" : "Name",
                           json_object_new_string(name));
    role_ref_refresh(r);
}

/* ---- loading ----------------------------------------------------------------------------- */

static json_object *ensure_array(json_object *obj, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_array)) {
        v = json_object_new_array();
        json_object_object_add(obj, key, v);
    }
    return v;
}

static bool ensure_string(json_object *obj, const char *key, const char *dflt, bool null_ok)
{
    json_object *v;
    if (!json_object_object_get_ex(obj, key, &v)) {
        json_object_object_add(obj, key, dflt ? json_object_new_string(dflt) : NULL);
        return true;
    }
    if (v == NULL)
        return null_ok;
    return json_object_is_type(v, json_type_string);
}

/* A deep copy of a state entry whose id member (idkey) is given, or made a new GUID. */
static json_object *copy_with_id(json_object *src, const char *idkey, const char **id)
{
    json_object *o = NULL;
    json_object_deep_copy(src, &o, NULL);
    if (!sim_json_str(o, idkey)) {
        char gid[37];
        sim_guid(gid);
        json_object_object_add(o, idkey, json_object_new_string(gid));
    }
    *id = sim_json_str(o, idkey);
    return o;
}

static bool load_genesys_role(sim_tenant *t, json_object *src, size_t i, char *err, size_t errlen)
{
    if (!json_object_is_type(src, json_type_object)) {
        set_err(err, errlen, "roles[%zu] is not an object", i);
        return false;
    }
    const char *id;
    json_object *o = copy_with_id(src, "id", &id);
    const char *name = sim_json_str(o, "name");
    if (!name || !*name) {
        set_err(err, errlen, "roles[%zu] (%s) has no name", i, id);
        json_object_put(o);
        return false;
    }
    if (sim_role_find(t, id)) {
        set_err(err, errlen, "roles[%zu]: duplicate id %s", i, id);
        json_object_put(o);
        return false;
    }
    if (!ensure_string(o, "description", "", true)) {
        set_err(err, errlen, "roles[%zu]: description is not a string", i);
        json_object_put(o);
        return false;
    }
    const char *drid = sim_json_str(o, "defaultRoleId");
    if (!drid)
        json_object_object_del(o, "defaultRoleId");
    json_object_object_add(o, "default", json_object_new_boolean(drid != NULL));
    json_object *b;
    if (!json_object_object_get_ex(o, "base", &b) || !json_object_is_type(b, json_type_boolean))
        json_object_object_add(o, "base", json_object_new_boolean(0));
    ensure_array(o, "permissions");
    ensure_array(o, "permissionPolicies");
    sim_role_add(t, o);
    return true;
}

static bool parse_state(const char *s, int *st)
{
    if (!s || strcmp(s, "active") == 0)
        *st = SIM_ACTIVE;
    else if (strcmp(s, "inactive") == 0)
        *st = SIM_INACTIVE;
    else if (strcmp(s, "deleted") == 0)
        *st = SIM_DELETED;
    else
        return false;
    return true;
}

/* The subject's "roles" (home-division grants) and "grants" ([{role, division}]) members of o,
 * which are then removed from o: the dump writes them again from the model. what/i name the
 * subject in messages. */
static bool load_grants(sim_tenant *t, sim_subj *s, json_object *o, const char *what, size_t i,
                        char *err, size_t errlen)
{
    json_object *rl = NULL, *gl = NULL;
    if (json_object_object_get_ex(o, "roles", &rl) && rl) {
        if (!json_object_is_type(rl, json_type_array)) {
            set_err(err, errlen, "%s[%zu]: roles is not an array", what, i);
            return false;
        }
        for (size_t k = 0; k < json_object_array_length(rl); k++) {
            json_object *e = json_object_array_get_idx(rl, k);
            sim_role *r = json_object_is_type(e, json_type_string)
                              ? sim_role_find(t, json_object_get_string(e))
                              : NULL;
            if (!r) {
                set_err(err, errlen, "%s[%zu] (%s): unknown role %s", what, i, s->id,
                        json_object_get_string(e));
                return false;
            }
            sim_grant_add(t, s, r, t->home);
        }
    }
    if (json_object_object_get_ex(o, "grants", &gl) && gl) {
        if (!json_object_is_type(gl, json_type_array)) {
            set_err(err, errlen, "%s[%zu]: grants is not an array", what, i);
            return false;
        }
        for (size_t k = 0; k < json_object_array_length(gl); k++) {
            json_object *e = json_object_array_get_idx(gl, k);
            const char *rid = sim_json_str(e, "role"), *did = sim_json_str(e, "division");
            sim_role *r = sim_role_find(t, rid);
            sim_div *d = sim_div_find(t, did);
            if (!r || !d) {
                set_err(err, errlen,
                        "%s[%zu] (%s): grants[%zu] needs a known \"role\" and \"division\" "
                        "(an id or \"*\")",
                        what, i, s->id, k);
                return false;
            }
            sim_grant_add(t, s, r, d);
        }
    }
    json_object_object_del(o, "roles");
    json_object_object_del(o, "grants");
    return true;
}

static bool load_user(sim_tenant *t, json_object *src, size_t i, char *err, size_t errlen)
{
    const bool g = t->api == SIM_GENESYS;
    if (!json_object_is_type(src, json_type_object)) {
        set_err(err, errlen, "users[%zu] is not an object", i);
        return false;
    }
    const char *id;
    json_object *o = copy_with_id(src, g ? "id" : "Id", &id);
    if (sim_user_find(t, id)) {
        set_err(err, errlen, "users[%zu]: duplicate id %s", i, id);
        json_object_put(o);
        return false;
    }
    sim_user *u = xcalloc(1, sizeof *u);
    u->id = xstrdup(id);
    u->obj = o;
    u->subj.type = SIM_SUBJ_USER;
    u->subj.seq = t->nusers;
    u->subj.id = u->id;
    u->subj.obj = o;
    if (g) {
        if (!parse_state(sim_json_str(o, "state"), &u->state)) {
            set_err(err, errlen, "users[%zu]: state must be active, inactive or deleted", i);
            goto fail;
        }
        json_object *dv = NULL;
        if (!json_object_object_get_ex(o, "division", &dv) || !dv) {
            json_object_object_add(o, "division", json_object_new_string(t->home->id));
        } else {
            sim_div *d = sim_div_find(t, sim_json_str(o, "division"));
            if (!d || d == &t->all_div) {
                set_err(err, errlen, "users[%zu] (%s): division must name a division", i, id);
                goto fail;
            }
        }
        json_object_object_add(o, "state",
                               json_object_new_string(u->state == SIM_ACTIVE     ? "active"
                                                      : u->state == SIM_INACTIVE ? "inactive"
                                                                                 : "deleted"));
        if (!load_grants(t, &u->subj, o, "users", i, err, errlen))
            goto fail;
        if (t->keeper && !sim_subj_has(&u->subj, t->keeper, t->home)) {
            /* employee in the home division goes first, as the platform lists it. */
            sim_grant_add(t, &u->subj, t->keeper, t->home);
            sim_grant *v = u->subj.grants;
            memmove(&v[1], &v[0], (u->subj.ngrants - 1) * sizeof *v);
            v[0].role = t->keeper;
            v[0].div = t->home;
        }
    } else {
        static const char *fields[] = {"GivenName",      "Surname",        "Name",
                                       "Email",          "ContactEmail",   "ContactGivenName",
                                       "ContactSurname", "ExternalUserId", "IdentityProviderId"};
        for (size_t k = 0; k < UTIL_ARRAY_LEN(fields); k++)
            if (!ensure_string(o, fields[k], NULL, true)) {
                set_err(err, errlen, "users[%zu]: %s is not a string", i, fields[k]);
                goto fail;
            }
        json_object *rl = NULL;
        if (json_object_object_get_ex(o, "RoleIds", &rl) && rl) {
            if (!json_object_is_type(rl, json_type_array)) {
                set_err(err, errlen, "users[%zu]: RoleIds is not an array", i);
                goto fail;
            }
            for (size_t k = 0; k < json_object_array_length(rl); k++) {
                json_object *e = json_object_array_get_idx(rl, k);
                sim_role *r = json_object_is_type(e, json_type_string)
                                  ? sim_role_find(t, json_object_get_string(e))
                                  : NULL;
                if (!r) {
                    set_err(err, errlen, "users[%zu] (%s): unknown role %s", i, u->id,
                            json_object_get_string(e));
                    goto fail;
                }
                sim_user_add_role(u, r);
            }
        }
        json_object_object_del(o, "RoleIds");
        if (t->keeper && !sim_user_has_role(u, t->keeper)) {
            /* The always-held role goes first, as the platform lists it. */
            sim_user_add_role(u, t->keeper);
            memmove(&u->roles[1], &u->roles[0], (u->nroles - 1) * sizeof *u->roles);
            u->roles[0] = t->keeper;
        }
    }
    HASH_ADD_KEYPTR(hh, t->user_by_id, u->id, strlen(u->id), u);
    util_grow((void **)&t->users, &t->ucap, t->nusers + 1, sizeof *t->users);
    t->users[t->nusers++] = u;
    user_refresh(t, u);
    return true;
fail:
    /* The whole load fails with this user: the roles' holder lists and counts go with the
     * tenant, so only what the user owns is freed. */
    if (!g)
        sim_user_clear_roles(u);
    free(u->roles);
    free(u->subj.grants);
    free(u->id);
    json_object_put(u->obj);
    free(u);
    return false;
}

/* A group or an OAuth client (genesys). Its id must not be another subject's. */
static bool load_other_subject(sim_tenant *t, json_object *src, int type, size_t i, char *err,
                               size_t errlen)
{
    const char *what = type == SIM_SUBJ_GROUP ? "groups" : "oauth_clients";
    if (!json_object_is_type(src, json_type_object)) {
        set_err(err, errlen, "%s[%zu] is not an object", what, i);
        return false;
    }
    const char *id;
    json_object *o = copy_with_id(src, "id", &id);
    const char *name = sim_json_str(o, "name");
    if (!name || !*name || sim_subj_find(t, id, -1)) {
        set_err(err, errlen, "%s[%zu] (%s): %s", what, i, id,
                name && *name ? "the id is already a user's, group's or client's" : "no name");
        json_object_put(o);
        return false;
    }
    sim_subj *s;
    sim_group *g = NULL;
    sim_oauth *c = NULL;
    if (type == SIM_SUBJ_GROUP) {
        g = xcalloc(1, sizeof *g);
        g->id = xstrdup(id);
        g->obj = o;
        s = &g->subj;
        s->id = g->id;
        s->seq = t->nusers + t->ngroups;
    } else {
        c = xcalloc(1, sizeof *c);
        c->id = xstrdup(id);
        c->obj = o;
        s = &c->subj;
        s->id = c->id;
        s->seq = t->nusers + t->ngroups + t->noauths;
    }
    s->type = type;
    s->obj = o;
    /* Registered before its grants are read, so a failure below is freed with the tenant. */
    if (g) {
        HASH_ADD_KEYPTR(hh, t->group_by_id, g->id, strlen(g->id), g);
        t->groups = xrealloc(t->groups, (t->ngroups + 1) * sizeof *t->groups);
        t->groups[t->ngroups++] = g;
    } else {
        HASH_ADD_KEYPTR(hh, t->oauth_by_id, c->id, strlen(c->id), c);
        t->oauths = xrealloc(t->oauths, (t->noauths + 1) * sizeof *t->oauths);
        t->oauths[t->noauths++] = c;
    }
    if (!load_grants(t, s, o, what, i, err, errlen))
        return false;
    if (!g)
        return true;
    json_object *ml = NULL;
    if (json_object_object_get_ex(o, "members", &ml) && ml) {
        if (!json_object_is_type(ml, json_type_array)) {
            set_err(err, errlen, "groups[%zu]: members is not an array", i);
            return false;
        }
        size_t n = json_object_array_length(ml);
        g->members = xcalloc(n + 1, sizeof *g->members);
        for (size_t k = 0; k < n; k++) {
            json_object *e = json_object_array_get_idx(ml, k);
            sim_user *u = json_object_is_type(e, json_type_string)
                              ? sim_user_find(t, json_object_get_string(e))
                              : NULL;
            if (!u) {
                set_err(err, errlen, "groups[%zu] (%s): unknown member %s", i, g->id,
                        json_object_get_string(e));
                return false;
            }
            bool dup = false; /* a member listed twice counts once */
            for (size_t m = 0; m < u->ngroups && !dup; m++)
                dup = u->groups[m] == g;
            if (dup)
                continue;
            g->members[g->nmembers++] = u;
            u->groups = xrealloc(u->groups, (u->ngroups + 1) * sizeof *u->groups);
            u->groups[u->ngroups++] = g;
        }
    }
    json_object_object_del(o, "members");
    return true;
}

static bool load_identity_role(sim_tenant *t, json_object *src, size_t i, char *err, size_t errlen)
{
    if (!json_object_is_type(src, json_type_object)) {
        set_err(err, errlen, "roles[%zu] is not an object", i);
        return false;
    }
    const char *id;
    json_object *o = copy_with_id(src, "Id", &id);
    const char *name = sim_json_str(o, "Name");
    if (!name || !*name || sim_role_find(t, id)) {
        set_err(err, errlen, "roles[%zu] (%s): %s", i, id,
                name && *name ? "duplicate Id" : "no Name");
        json_object_put(o);
        return false;
    }
    /* Members in the order the platform returns them. */
    json_object *r = json_object_new_object();
    json_object *v;
    json_object_object_add(r, "Id", json_object_new_string(id));
    json_object_object_add(r, "Name", json_object_new_string(name));
    const char *desc = sim_json_str(o, "Description");
    json_object_object_add(r, "Description", desc ? json_object_new_string(desc) : NULL);
    int scope = 1;
    if (json_object_object_get_ex(o, "RoleScope", &v) && json_object_is_type(v, json_type_int))
        scope = json_object_get_int(v);
    json_object_object_add(r, "RoleScope", json_object_new_int(scope));
    json_object_object_add(r, "TenantId", scope == 1 ? json_object_new_string(t->tenant_id) : NULL);
    const char *cid = sim_json_str(o, "CommunityId");
    json_object_object_add(r, "CommunityId", cid ? json_object_new_string(cid) : NULL);
    const char *rt = sim_json_str(o, "RoleTypeId");
    json_object_object_add(r, "RoleTypeId", rt ? json_object_new_string(rt) : NULL);
    json_object_put(o);
    sim_role_add(t, r);
    return true;
}

static void add_genesys_default(sim_tenant *t, size_t k)
{
    char gid[37];
    sim_guid(gid);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(gid));
    json_object_object_add(o, "name", json_object_new_string(genesys_defaults[k].name));
    json_object_object_add(o, "description", json_object_new_string(genesys_defaults[k].desc));
    json_object_object_add(o, "defaultRoleId", json_object_new_string(genesys_defaults[k].drid));
    json_object_object_add(o, "default", json_object_new_boolean(1));
    json_object_object_add(o, "base", json_object_new_boolean(0));
    json_object_object_add(o, "permissions", json_tokener_parse(genesys_defaults[k].perms));
    json_object_object_add(o, "permissionPolicies",
                           json_tokener_parse(genesys_defaults[k].policies));
    sim_role_add(t, o);
}

static sim_role *find_kind(sim_tenant *t, const char *kind)
{
    for (size_t i = 0; i < t->nroles; i++)
        if (t->roles[i]->kind && strcmp(t->roles[i]->kind, kind) == 0)
            return t->roles[i];
    return NULL;
}

static bool load_genesys_meta(sim_tenant *t, char *err, size_t errlen)
{
    json_object *org, *v;
    if (!json_object_object_get_ex(t->meta, "org", &org) ||
        !json_object_is_type(org, json_type_object)) {
        org = json_object_new_object();
        json_object_object_add(t->meta, "org", org);
    }
    if (!sim_json_str(org, "id")) {
        char gid[37];
        sim_guid(gid);
        json_object_object_add(org, "id", json_object_new_string(gid));
    }
    if (!sim_json_str(org, "name"))
        json_object_object_add(org, "name", json_object_new_string("Simulated Org"));
    t->org_id = xstrdup(sim_json_str(org, "id"));
    json_object *ul = ensure_array(t->meta, "unlicensed_domains");
    for (size_t i = 0; i < json_object_array_length(ul); i++) {
        json_object *e = json_object_array_get_idx(ul, i);
        if (!json_object_is_type(e, json_type_string)) {
            set_err(err, errlen, "unlicensed_domains[%zu] is not a string", i);
            return false;
        }
        t->unlicensed = xrealloc(t->unlicensed, (t->nunlicensed + 1) * sizeof *t->unlicensed);
        t->unlicensed[t->nunlicensed++] = sim_strlower(json_object_get_string(e));
    }
    json_object *divs = NULL;
    if (json_object_object_get_ex(t->meta, "divisions", &divs) && divs &&
        !json_object_is_type(divs, json_type_array)) {
        set_err(err, errlen, "divisions is not an array");
        return false;
    }
    divs = ensure_array(t->meta, "divisions");
    size_t nd = json_object_array_length(divs);
    if (nd == 0) {
        char gid[37];
        sim_guid(gid);
        json_object *d = json_object_new_object();
        json_object_object_add(d, "id", json_object_new_string(gid));
        json_object_object_add(d, "name", json_object_new_string("Home"));
        json_object_object_add(d, "home", json_object_new_boolean(1));
        json_object_array_add(divs, d);
        nd = 1;
    }
    t->divs = xcalloc(nd, sizeof *t->divs);
    for (size_t i = 0; i < nd; i++) {
        json_object *d = json_object_array_get_idx(divs, i);
        const char *id = sim_json_str(d, "id");
        if (!id || !*id || strcmp(id, "*") == 0 || sim_div_find(t, id)) {
            set_err(err, errlen, "divisions[%zu]: %s", i,
                    !id || !*id ? "no id" : "the id is \"*\" or repeated");
            return false;
        }
        json_object *nm = NULL;
        if (json_object_object_get_ex(d, "name", &nm) && nm &&
            !json_object_is_type(nm, json_type_string)) {
            set_err(err, errlen, "divisions[%zu]: name is not a string", i);
            return false;
        }
        sim_div *dv = xcalloc(1, sizeof *dv);
        dv->id = xstrdup(id);
        dv->obj = d;
        dv->home = json_object_object_get_ex(d, "home", &v) && json_object_get_boolean(v);
        HASH_ADD_KEYPTR(hh, t->div_by_id, dv->id, strlen(dv->id), dv);
        t->divs[t->ndivs++] = dv;
        if (dv->home && !t->home)
            t->home = dv;
    }
    if (!t->home)
        t->home = t->divs[0];
    for (size_t i = 0; i < t->ndivs; i++) {
        sim_div *dv = t->divs[i];
        dv->home = dv == t->home;
        json_object_object_add(dv->obj, "home", json_object_new_boolean(dv->home));
        const char *name = sim_json_str(dv->obj, "name");
        dv->name = xstrdup(name ? name : dv->home ? "Home" : dv->id);
        div_refresh(dv);
    }
    /* Decision: the all-divisions grant target is listed nowhere; its name is ours. */
    t->all_div.id = xstrdup("*");
    t->all_div.name = xstrdup("All divisions");
    t->all_div.obj = NULL;
    div_refresh(&t->all_div);
    json_object *set;
    if (!json_object_object_get_ex(t->meta, "settings", &set) ||
        !json_object_is_type(set, json_type_object)) {
        set = json_object_new_object();
        json_object_object_add(t->meta, "settings", set);
    }
    if (!json_object_object_get_ex(set, "backfillEnabled", &v))
        json_object_object_add(set, "backfillEnabled", json_object_new_boolean(0));
    if (!json_object_object_get_ex(set, "authorizationGrantDivisionAware", &v))
        json_object_object_add(set, "authorizationGrantDivisionAware", json_object_new_boolean(0));
    return true;
}

static int user_id_cmp(const void *a, const void *b)
{
    return strcmp((*(sim_user *const *)a)->id, (*(sim_user *const *)b)->id);
}

sim_tenant *sim_tenant_load(int api, json_object *root, const char *tenant_id, char *err,
                            size_t errlen)
{
    json_object *empty = NULL;
    if (!root)
        root = empty = json_object_new_object();
    if (!json_object_is_type(root, json_type_object)) {
        set_err(err, errlen, "state must be a JSON object");
        return NULL;
    }
    const char *sapi = sim_json_str(root, "api");
    if (sapi && strcmp(sapi, api == SIM_GENESYS ? "genesys" : "identity") != 0) {
        set_err(err, errlen, "state is for api \"%s\", this server is %s", sapi,
                api == SIM_GENESYS ? "genesys" : "identity");
        return NULL;
    }
    sim_tenant *t = xcalloc(1, sizeof *t);
    t->api = api;
    t->meta = json_object_new_object();
    {
        json_object_object_foreach(root, mk, mv)
        {
            /* genesys groups and OAuth clients are subjects of the model, dumped from it */
            bool subjects = api == SIM_GENESYS &&
                            (strcmp(mk, "groups") == 0 || strcmp(mk, "oauth_clients") == 0);
            if (strcmp(mk, "roles") != 0 && strcmp(mk, "users") != 0 && !subjects) {
                json_object *c = NULL;
                json_object_deep_copy(mv, &c, NULL);
                json_object_object_add(t->meta, mk, c);
            }
        }
    }
    json_object_object_add(t->meta, "api",
                           json_object_new_string(api == SIM_GENESYS ? "genesys" : "identity"));
    json_object *roles = NULL, *users = NULL;
    json_object_object_get_ex(root, "roles", &roles);
    json_object_object_get_ex(root, "users", &users);
    if ((roles && !json_object_is_type(roles, json_type_array)) ||
        (users && !json_object_is_type(users, json_type_array))) {
        set_err(err, errlen, "roles and users must be arrays");
        goto fail;
    }
    if (api == SIM_GENESYS) {
        if (!load_genesys_meta(t, err, errlen))
            goto fail;
        for (size_t i = 0; roles && i < json_object_array_length(roles); i++)
            if (!load_genesys_role(t, json_object_array_get_idx(roles, i), i, err, errlen))
                goto fail;
        for (size_t k = 0; k < UTIL_ARRAY_LEN(genesys_defaults); k++)
            if (!find_kind(t, genesys_defaults[k].drid))
                add_genesys_default(t, k);
        t->keeper = find_kind(t, "employee");
        /* Factory definitions of the default roles: what "restore default" goes back to. */
        t->factory = json_object_new_object();
        for (size_t i = 0; i < t->nroles; i++)
            if (t->roles[i]->kind) {
                json_object *c = NULL;
                json_object_deep_copy(t->roles[i]->obj, &c, NULL);
                json_object_object_add(t->factory, t->roles[i]->kind, c);
            }
    } else {
        const char *tid = tenant_id ? tenant_id : sim_json_str(root, "tenant_id");
        char gid[37];
        if (!tid) {
            sim_guid(gid);
            tid = gid;
        }
        t->tenant_id = xstrdup(tid);
        json_object_object_add(t->meta, "tenant_id", json_object_new_string(t->tenant_id));
        for (size_t i = 0; roles && i < json_object_array_length(roles); i++)
            if (!load_identity_role(t, json_object_array_get_idx(roles, i), i, err, errlen))
                goto fail;
        for (size_t k = 0; k < UTIL_ARRAY_LEN(identity_builtins); k++) {
            if (find_kind(t, identity_builtins[k].type))
                continue;
            char rid[37];
            sim_guid(rid);
            json_object *r = json_object_new_object();
            json_object_object_add(r, "Id", json_object_new_string(rid));
            json_object_object_add(r, "Name", json_object_new_string(identity_builtins[k].name));
            json_object_object_add(r, "Description",
                                   json_object_new_string(identity_builtins[k].desc));
            json_object_object_add(r, "RoleScope", json_object_new_int(1));
            json_object_object_add(r, "TenantId", json_object_new_string(t->tenant_id));
            json_object_object_add(r, "CommunityId", NULL);
            json_object_object_add(r, "RoleTypeId",
                                   json_object_new_string(identity_builtins[k].type));
            sim_role_add(t, r);
        }
        t->keeper = find_kind(t, SIM_MEMBER_TYPE);
    }
    for (size_t i = 0; users && i < json_object_array_length(users); i++)
        if (!load_user(t, json_object_array_get_idx(users, i), i, err, errlen))
            goto fail;
    if (api == SIM_GENESYS) {
        static const struct {
            const char *key;
            int type;
        } others[] = {{"groups", SIM_SUBJ_GROUP}, {"oauth_clients", SIM_SUBJ_CLIENT}};
        for (size_t k = 0; k < UTIL_ARRAY_LEN(others); k++) {
            json_object *arr = NULL;
            if (!json_object_object_get_ex(root, others[k].key, &arr) || !arr)
                continue;
            if (!json_object_is_type(arr, json_type_array)) {
                set_err(err, errlen, "%s must be an array", others[k].key);
                goto fail;
            }
            for (size_t i = 0; i < json_object_array_length(arr); i++)
                if (!load_other_subject(t, json_object_array_get_idx(arr, i), others[k].type, i,
                                        err, errlen))
                    goto fail;
        }
        for (size_t i = 0; i < t->nusers; i++)
            user_view_refresh(t, t->users[i]);
    }
    for (int s = 0; s < SIM_NSTATES; s++) {
        t->by_state[s] = xcalloc(t->nusers + 1, sizeof(sim_user *));
        t->nby_state[s] = 0;
    }
    for (size_t i = 0; i < t->nusers; i++) {
        int s = t->users[i]->state;
        t->by_state[s][t->nby_state[s]++] = t->users[i];
    }
    if (api == SIM_GENESYS)
        for (int s = 0; s <= SIM_NSTATES; s++) {
            size_t n = s == SIM_ANY_STATE ? t->nusers : t->nby_state[s];
            t->by_id[s] = xmalloc((n + 1) * sizeof(sim_user *));
            if (n) {
                memcpy(t->by_id[s], s == SIM_ANY_STATE ? t->users : t->by_state[s],
                       n * sizeof(sim_user *));
                qsort(t->by_id[s], n, sizeof(sim_user *), user_id_cmp);
            }
        }
    json_object_put(empty);
    return t;
fail:
    json_object_put(empty);
    sim_tenant_free(t);
    return NULL;
}

/* A subject's grants as the state writes them: "roles" (home division, grant order) and
 * "grants" (every other division), the latter left out when empty. */
static void dump_grants(sim_tenant *t, const sim_subj *s, json_object *dst)
{
    json_object *rl = json_object_new_array(), *gl = NULL;
    for (size_t k = 0; k < s->ngrants; k++) {
        const sim_grant *gr = &s->grants[k];
        if (gr->div == t->home) {
            json_object_array_add(rl, json_object_new_string(gr->role->id));
            continue;
        }
        if (!gl)
            gl = json_object_new_array();
        json_object *e = json_object_new_object();
        json_object_object_add(e, "role", json_object_new_string(gr->role->id));
        json_object_object_add(e, "division", json_object_new_string(gr->div->id));
        json_object_array_add(gl, e);
    }
    json_object_object_add(dst, "roles", rl);
    if (gl)
        json_object_object_add(dst, "grants", gl);
}

json_object *sim_tenant_dump(sim_tenant *t)
{
    const bool g = t->api == SIM_GENESYS;
    json_object *root = NULL;
    json_object_deep_copy(t->meta, &root, NULL);
    json_object *roles = json_object_new_array_ext((int)t->nroles);
    for (size_t i = 0; i < t->nroles; i++) {
        json_object *c = NULL;
        json_object_deep_copy(t->roles[i]->obj, &c, NULL);
        json_object_array_add(roles, c);
    }
    json_object_object_add(root, "roles", roles);
    json_object *users = json_object_new_array_ext((int)t->nusers);
    for (size_t i = 0; i < t->nusers; i++) {
        sim_user *u = t->users[i];
        json_object *c = NULL;
        json_object_deep_copy(u->obj, &c, NULL);
        if (g) {
            dump_grants(t, &u->subj, c);
        } else {
            json_object *rl = json_object_new_array_ext((int)u->nroles);
            for (size_t k = 0; k < u->nroles; k++)
                json_object_array_add(rl, json_object_new_string(u->roles[k]->id));
            json_object_object_add(c, "RoleIds", rl);
        }
        json_object_array_add(users, c);
    }
    json_object_object_add(root, "users", users);
    if (t->ngroups) {
        json_object *arr = json_object_new_array_ext((int)t->ngroups);
        for (size_t i = 0; i < t->ngroups; i++) {
            sim_group *gr = t->groups[i];
            json_object *c = NULL, *ml = json_object_new_array_ext((int)gr->nmembers);
            json_object_deep_copy(gr->obj, &c, NULL);
            for (size_t k = 0; k < gr->nmembers; k++)
                json_object_array_add(ml, json_object_new_string(gr->members[k]->id));
            json_object_object_add(c, "members", ml);
            dump_grants(t, &gr->subj, c);
            json_object_array_add(arr, c);
        }
        json_object_object_add(root, "groups", arr);
    }
    if (t->noauths) {
        json_object *arr = json_object_new_array_ext((int)t->noauths);
        for (size_t i = 0; i < t->noauths; i++) {
            json_object *c = NULL;
            json_object_deep_copy(t->oauths[i]->obj, &c, NULL);
            dump_grants(t, &t->oauths[i]->subj, c);
            json_object_array_add(arr, c);
        }
        json_object_object_add(root, "oauth_clients", arr);
    }
    return root;
}

static void div_free(sim_div *d)
{
    free(d->id);
    free(d->name);
    free(d->api);
}

void sim_tenant_free(sim_tenant *t)
{
    if (!t)
        return;
    /* Empty the hash heads first: HASH_CLEAR reads the table through the first element. */
    HASH_CLEAR(hh, t->user_by_id);
    HASH_CLEAR(hh, t->role_by_id);
    HASH_CLEAR(hh_name, t->role_by_name);
    HASH_CLEAR(hh, t->div_by_id);
    HASH_CLEAR(hh, t->group_by_id);
    HASH_CLEAR(hh, t->oauth_by_id);
    for (size_t i = 0; i < t->nusers; i++) {
        sim_user *u = t->users[i];
        free(u->id);
        free(u->api);
        free(u->roles);
        free(u->subj.grants);
        free(u->groups);
        json_object_put(u->obj);
        free(u);
    }
    free(t->users);
    for (size_t i = 0; i < t->ngroups; i++) {
        sim_group *g = t->groups[i];
        free(g->id);
        free(g->members);
        free(g->subj.grants);
        json_object_put(g->obj);
        free(g);
    }
    free(t->groups);
    for (size_t i = 0; i < t->noauths; i++) {
        sim_oauth *c = t->oauths[i];
        free(c->id);
        free(c->subj.grants);
        json_object_put(c->obj);
        free(c);
    }
    free(t->oauths);
    for (size_t i = 0; i < t->nroles; i++)
        role_free(t->roles[i]);
    free(t->roles);
    for (size_t i = 0; i < t->ndivs; i++) {
        div_free(t->divs[i]);
        free(t->divs[i]);
    }
    free(t->divs);
    div_free(&t->all_div);
    for (int s = 0; s < SIM_NSTATES; s++)
        free(t->by_state[s]);
    for (int s = 0; s <= SIM_NSTATES; s++)
        free(t->by_id[s]);
    sim_free_list(t->unlicensed, t->nunlicensed);
    free(t->org_id);
    free(t->tenant_id);
    json_object_put(t->factory);
    json_object_put(t->meta);
    free(t);
}
