/* sim_genesys.c — the Genesys Cloud Platform API v2 surface of tenantsim: the AuthorizationApi
 * role operations, divisions, grants (subjects, subject grants, the division-aware and the
 * division-blind grant writes), groups and the users listings (offset and cursor) (api/genesys.md,
 * simulator.md §3 and §3b).
 *
 * Decisions where the public material is silent (simulator.md §3 and §3b, api/genesys.md
 * UNVERIFIED; tests/sim/README.md lists them all):
 * - listings keep a stable insertion order (sortBy is accepted and ignored);
 * - the roles and divisions `name` filters are a case-insensitive substring match (TF re-checks
 *   names itself, which suggests the platform's filter is not exact);
 * - PUT/PATCH role: members absent from the body keep their values;
 * - POST creates answer 200 with the new DomainOrganizationRole;
 * - the division-blind grant endpoints (simulator.md §3b): users/add grants in the home
 *   division; users/remove removes the role's direct grants in every division;
 *   PUT users/{id}/roles replaces the direct home-division grants and, for a role that leaves
 *   that set, drops its direct grants in the other divisions too (a role staying in the set, or
 *   held only outside the home division, keeps them); DELETE users/{id}/roles removes every
 *   direct grant but employee's. None of them ever removes an employee grant, and the
 *   employee grant in the home division can be removed by no endpoint (bulkremove, bulkreplace
 *   and DELETE subjects/../roles/.. leave it in place and answer as if done);
 * - expand=authorization, GET users/{id}/roles and the PUT's reply list every role the user
 *   holds in any division, inherited ones included, each once, without divisions; userCount
 *   and roles/{id}/users count users holding the role directly in any division;
 * - an operation with a subjectType parameter (bulk grant, bulkadd, bulkreplace, grant one)
 *   defaults it to PC_USER and finds the subject among that type only; the others (subjects/{id},
 *   bulkremove, DELETE one) look the id up among users, groups and OAuth clients;
 * - DELETE subjects/{s}/divisions/{d}/roles/{r} of a grant the subject does not hold directly:
 *   404 not.found (the unkind reading: Terraform ignores 404 there);
 * - SubjectDivisions and RoleDivisionGrants bodies: subjectIds and divisionIds must be non-empty
 *   (at most 100 subject ids); an empty grants list is allowed (bulkreplace with it keeps only
 *   employee in the home division);
 * - the all-divisions grant "*" shows as the division {"id":"*","name":"All divisions"};
 * - --lag: while a new role is invisible every request naming it by id answers 404 not.found
 *   (grant endpoints, GET/PUT/PATCH/DELETE of the role, comparedefault), listings and filters
 *   omit it, and its name is taken (a second create with it: 409);
 * - the cursor listing /users/query orders users by id (sortOrder=DESC reverses), and its cursor
 *   names the last user returned, so users added or removed between pages neither repeat nor
 *   shift others; it is capped at pageSize 500 whatever --max-page-size says;
 * - the offset cap (--offset-cap) refuses pageNumber x pageSize above the cap for state
 *   inactive, deleted and any, id filter or not.
 */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef void (*route_fn)(sim_req *rq, sim_reply *rp, char **p);

#define ROLES "/api/v2/authorization/roles"

/* ---- helpers ------------------------------------------------------------------------------- */

static void ok(sim_reply *rp, unsigned status)
{
    rp->status = status;
    rp->has_body = status != 204;
    rp->body.len = 0;
}

static json_object *body_json(sim_req *rq, sim_reply *rp)
{
    json_object *o = sim_json_parse(rq->body, rq->body_len);
    if (!o)
        genesys_error(rq, rp, 400, "bad.request",
                      "The request could not be understood by the server due to malformed "
                      "syntax.");
    return o;
}

static size_t utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

static bool list_has(char **v, size_t n, const char *s, bool icase)
{
    for (size_t i = 0; i < n; i++)
        if (s && (icase ? strcasecmp(v[i], s) : strcmp(v[i], s)) == 0)
            return true;
    return false;
}

/* pageSize / pageNumber with defaults; false (and a 400 reply) when invalid. */
static bool paging(sim_req *rq, sim_reply *rp, long *size, long *num)
{
    long long v;
    const char *s = req_arg(rq, "pageSize");
    *size = 25;
    *num = 1;
    if (s) {
        if (!sim_parse_int(s, &v) || v < 1) {
            genesys_error(rq, rp, 400, "bad.request", "Invalid pageSize [%s]", s);
            return false;
        }
        if (v > rq->ctx->max_page) {
            genesys_error(rq, rp, 400, "bad.request", "pageSize [%lld] exceeds the maximum of %ld",
                          v, rq->ctx->max_page);
            return false;
        }
        *size = (long)v;
    }
    s = req_arg(rq, "pageNumber");
    if (s) {
        if (!sim_parse_int(s, &v) || v < 1 || v > 100000000) {
            genesys_error(rq, rp, 400, "bad.request", "Invalid pageNumber [%s]", s);
            return false;
        }
        *num = (long)v;
    }
    return true;
}

/* Close "{"entities":[..." with the paging members. */
static void envelope_end(sim_sb *b, sim_req *rq, long size, long num, size_t total, bool uris)
{
    long pages = (long)((total + (size_t)size - 1) / (size_t)size);
    sb_printf(b, "],\"pageSize\":%ld,\"pageNumber\":%ld,\"total\":%zu,\"pageCount\":%ld", size, num,
              total, pages);
    if (uris) {
        sim_sb u = {0};
        const char *names[] = {"firstUri", "selfUri", "lastUri", "nextUri", "previousUri"};
        long nums[] = {1, num, pages > 0 ? pages : 1, num + 1, num - 1};
        for (size_t i = 0; i < UTIL_ARRAY_LEN(names); i++) {
            if (i == 3 && num >= pages)
                continue; /* no nextUri on (or past) the last page */
            if (i == 4 && num <= 1)
                continue; /* no previousUri on the first page */
            u.len = 0;
            sb_printf(&u, "%s?pageSize=%ld&pageNumber=%ld", rq->path, size, nums[i]);
            for (size_t k = 0; k < rq->nargs; k++) {
                const char *key = rq->args[k].key;
                if (strcmp(key, "pageSize") == 0 || strcmp(key, "pageNumber") == 0)
                    continue;
                char *ek = util_pct_encode(key);
                char *ev = util_pct_encode(rq->args[k].val ? rq->args[k].val : "");
                sb_printf(&u, "&%s=%s", ek, ev);
                free(ek);
                free(ev);
            }
            sb_printf(b, ",\"%s\":", names[i]);
            sb_json_str(b, u.buf);
        }
        sb_free(&u);
    }
    sb_putc(b, '}');
}

static void role_ref(sim_sb *b, const sim_role *r)
{
    sb_putn(b, r->ref, r->ref_len);
}

/* A role the request may name: during --lag a new role is not there yet for the platform's
 * authorization service, so it answers 404 exactly as for an unknown id. */
static sim_role *find_role_or_404(sim_req *rq, sim_reply *rp, const char *id)
{
    sim_role *r = sim_role_find(rq->ctx->t, id);
    if (r && !sim_role_visible(r, sim_mono_ms()))
        r = NULL;
    if (!r)
        genesys_error(rq, rp, 404, "not.found", "The role [%s] was not found", id);
    return r;
}

static sim_div *find_div_or_404(sim_req *rq, sim_reply *rp, const char *id)
{
    sim_div *d = sim_div_find(rq->ctx->t, id);
    if (!d)
        genesys_error(rq, rp, 404, "not.found", "The division [%s] was not found", id);
    return d;
}

static sim_subj *find_subj_or_404(sim_req *rq, sim_reply *rp, const char *id, int type)
{
    sim_subj *s = sim_subj_find(rq->ctx->t, id, type);
    if (!s)
        genesys_error(rq, rp, 404, "not.found", "The subject [%s] was not found", id);
    return s;
}

/* The subjectType query parameter: PC_USER by default; -2 (and a 400 reply) when unknown. */
static int subject_type_arg(sim_req *rq, sim_reply *rp)
{
    static const char *names[] = {"PC_USER", "PC_GROUP", "PC_OAUTH_CLIENT"};
    const char *st = req_arg(rq, "subjectType");
    if (!st)
        return SIM_SUBJ_USER;
    for (int i = 0; i < (int)UTIL_ARRAY_LEN(names); i++)
        if (strcmp(st, names[i]) == 0)
            return i;
    genesys_error(rq, rp, 400, "bad.request",
                  "Value [%s] is not valid for field type [subjectType]. Allowable values are: "
                  "PC_USER, PC_GROUP, PC_OAUTH_CLIENT",
                  st);
    return -2;
}

static const char *subject_type_name(int type)
{
    return type == SIM_SUBJ_USER    ? "PC_USER"
           : type == SIM_SUBJ_GROUP ? "PC_GROUP"
                                    : "PC_OAUTH_CLIENT";
}

static const char *subject_uri_prefix(int type)
{
    return type == SIM_SUBJ_USER    ? "/api/v2/users/"
           : type == SIM_SUBJ_GROUP ? "/api/v2/groups/"
                                    : "/api/v2/oauth/clients/";
}

/* The key of a cached page: the path and every argument in order (they shape the URIs),
 * percent-encoded so that no two argument lists share a key. */
static void page_key(sim_req *rq, sim_sb *key)
{
    sb_puts(key, rq->path);
    for (size_t k = 0; k < rq->nargs; k++) {
        char *ek = util_pct_encode(rq->args[k].key);
        char *ev = util_pct_encode(rq->args[k].val ? rq->args[k].val : "");
        sb_printf(key, "&%s=%s", ek, ev);
        free(ek);
        free(ev);
    }
}

static sim_user *find_user_or_404(sim_req *rq, sim_reply *rp, const char *id)
{
    sim_user *u = sim_user_find(rq->ctx->t, id);
    if (!u)
        genesys_error(rq, rp, 404, "not.found", "The user [%s] was not found", id);
    return u;
}

/* UserAuthorization of one user: roles, unusedRoles, permissions, permissionPolicies. */
static void user_authorization(sim_sb *b, const sim_user *u, bool full)
{
    sb_putl(b, "{\"roles\":[");
    for (size_t i = 0; i < u->nroles; i++) {
        if (i)
            sb_putc(b, ',');
        role_ref(b, u->roles[i]);
    }
    sb_putc(b, ']');
    if (!full) {
        sb_putc(b, '}');
        return;
    }
    sb_puts(b, ",\"unusedRoles\":[],\"permissions\":[");
    /* Union of the legacy permissions, first occurrence order. Read-only json-c access. */
    const char *seen[256];
    size_t nseen = 0;
    for (size_t i = 0; i < u->nroles; i++) {
        json_object *perms;
        if (!json_object_object_get_ex(u->roles[i]->obj, "permissions", &perms) ||
            !json_object_is_type(perms, json_type_array))
            continue;
        for (size_t k = 0; k < json_object_array_length(perms); k++) {
            const char *p = json_object_get_string(json_object_array_get_idx(perms, k));
            bool dup = false;
            for (size_t s = 0; s < nseen && !dup; s++)
                dup = strcmp(seen[s], p) == 0;
            if (dup || nseen >= UTIL_ARRAY_LEN(seen))
                continue;
            if (nseen)
                sb_putc(b, ',');
            seen[nseen++] = p;
            sb_json_str(b, p);
        }
    }
    sb_puts(b, "],\"permissionPolicies\":[");
    bool first = true;
    for (size_t i = 0; i < u->nroles; i++) {
        if (!u->roles[i]->policies || !*u->roles[i]->policies)
            continue;
        if (!first)
            sb_putc(b, ',');
        first = false;
        sb_puts(b, u->roles[i]->policies);
    }
    sb_puts(b, "]}");
}

static void user_json(sim_sb *b, const sim_user *u, bool expand_auth)
{
    sb_putn(b, u->api, u->api_len);
    if (expand_auth) {
        sb_putl(b, ",\"authorization\":");
        user_authorization(b, u, false);
    }
    sb_putc(b, '}');
}

/* ---- role body validation (shared by POST, PUT, PATCH) ------------------------------------- */

/* Validate a role body against the tenant; nothing is changed. self = role being updated. */
static bool role_body_ok(sim_req *rq, sim_reply *rp, json_object *o, sim_role *self,
                         bool name_required)
{
    sim_tenant *t = rq->ctx->t;
    if (!json_object_is_type(o, json_type_object)) {
        genesys_error(rq, rp, 400, "bad.request", "The role body must be a JSON object");
        return false;
    }
    json_object *v;
    if (json_object_object_get_ex(o, "name", &v) && v) {
        if (!json_object_is_type(v, json_type_string)) {
            genesys_error(rq, rp, 400, "bad.request", "name must be a string");
            return false;
        }
        const char *name = json_object_get_string(v);
        size_t n = utf8_len(name);
        if (n < 1 || n > 200) {
            genesys_error(rq, rp, 400, "bad.request",
                          "The role name must be between 1 and 200 characters");
            return false;
        }
        if (self && self->kind && strcmp(name, self->name) != 0) {
            genesys_error(rq, rp, 400, "bad.request", "Default role names cannot be changed");
            return false;
        }
        sim_role *other = sim_role_find_name(t, name);
        if (other && other != self) {
            genesys_error(rq, rp, 409, "general.conflict",
                          "A role with the name [%s] already exists", name);
            return false;
        }
    } else if (name_required) {
        genesys_error(rq, rp, 400, "bad.request", "The role name is required");
        return false;
    }
    if (json_object_object_get_ex(o, "description", &v) && v &&
        !json_object_is_type(v, json_type_string)) {
        genesys_error(rq, rp, 400, "bad.request", "description must be a string");
        return false;
    }
    if (json_object_object_get_ex(o, "permissions", &v) && v) {
        if (!json_object_is_type(v, json_type_array)) {
            genesys_error(rq, rp, 400, "bad.request", "permissions must be an array");
            return false;
        }
        for (size_t i = 0; i < json_object_array_length(v); i++)
            if (!json_object_is_type(json_object_array_get_idx(v, i), json_type_string)) {
                genesys_error(rq, rp, 400, "bad.request", "permissions must be strings");
                return false;
            }
    }
    if (json_object_object_get_ex(o, "permissionPolicies", &v) && v) {
        if (!json_object_is_type(v, json_type_array)) {
            genesys_error(rq, rp, 400, "bad.request", "permissionPolicies must be an array");
            return false;
        }
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            json_object *p = json_object_array_get_idx(v, i), *as;
            if (!sim_json_str(p, "domain") || !sim_json_str(p, "entityName")) {
                genesys_error(rq, rp, 400, "bad.request",
                              "permissionPolicies[%zu] needs domain and entityName", i);
                return false;
            }
            if (json_object_object_get_ex(p, "actionSet", &as) && as &&
                !json_object_is_type(as, json_type_array)) {
                genesys_error(rq, rp, 400, "bad.request",
                              "permissionPolicies[%zu].actionSet must be an array", i);
                return false;
            }
        }
    }
    if (json_object_object_get_ex(o, "roleNeedsUpdate", &v) && v &&
        !json_object_is_type(v, json_type_boolean)) {
        genesys_error(rq, rp, 400, "bad.request", "roleNeedsUpdate must be a boolean");
        return false;
    }
    return true;
}

/* Apply a validated body to a role object (state form); unlicensed policies are dropped. */
static void role_apply(sim_tenant *t, json_object *dst, json_object *src)
{
    json_object *v;
    if (json_object_object_get_ex(src, "description", &v))
        json_object_object_add(dst, "description",
                               json_object_new_string(v ? json_object_get_string(v) : ""));
    if (json_object_object_get_ex(src, "permissions", &v) && v) {
        json_object *c = NULL;
        json_object_deep_copy(v, &c, NULL);
        json_object_object_add(dst, "permissions", c);
    }
    if (json_object_object_get_ex(src, "permissionPolicies", &v) && v) {
        json_object *kept = json_object_new_array();
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            json_object *p = json_object_array_get_idx(v, i);
            if (!sim_domain_licensed(t, sim_json_str(p, "domain")))
                continue; /* the platform drops policies of unlicensed products silently */
            json_object *c = NULL;
            json_object_deep_copy(p, &c, NULL);
            json_object_array_add(kept, c);
        }
        json_object_object_add(dst, "permissionPolicies", kept);
    }
    if (json_object_object_get_ex(src, "roleNeedsUpdate", &v) && v)
        json_object_object_add(dst, "roleNeedsUpdate", json_object_get(v));
}

/* ---- roles ---------------------------------------------------------------------------------- */

static bool role_has_permission(const sim_role *r, char **perms, size_t n)
{
    json_object *v;
    if (json_object_object_get_ex(r->obj, "permissions", &v) &&
        json_object_is_type(v, json_type_array))
        for (size_t i = 0; i < json_object_array_length(v); i++)
            if (list_has(perms, n, json_object_get_string(json_object_array_get_idx(v, i)), false))
                return true;
    if (!json_object_object_get_ex(r->obj, "permissionPolicies", &v) ||
        !json_object_is_type(v, json_type_array))
        return false;
    for (size_t i = 0; i < json_object_array_length(v); i++) {
        json_object *p = json_object_array_get_idx(v, i), *as;
        const char *dom = sim_json_str(p, "domain"), *ent = sim_json_str(p, "entityName");
        if (!dom || !ent || !json_object_object_get_ex(p, "actionSet", &as) ||
            !json_object_is_type(as, json_type_array))
            continue;
        for (size_t a = 0; a < json_object_array_length(as); a++) {
            const char *act = json_object_get_string(json_object_array_get_idx(as, a));
            for (size_t k = 0; k < n; k++) {
                char d[128], e[128], x[128];
                if (sscanf(perms[k], "%127[^:]:%127[^:]:%127s", d, e, x) != 3)
                    continue;
                if (strcasecmp(d, dom) == 0 && (strcmp(ent, "*") == 0 || strcmp(e, ent) == 0) &&
                    (strcmp(act, "*") == 0 || strcmp(x, act) == 0))
                    return true;
            }
        }
    }
    return false;
}

static void roles_list(sim_req *rq, sim_reply *rp, char **p)
{
    (void)p;
    long size, num;
    if (!paging(rq, rp, &size, &num))
        return;
    const char *name = req_arg(rq, "name");
    char *name_lc = name ? sim_strlower(name) : NULL;
    char **ids = NULL, **drids = NULL, **perms = NULL;
    size_t nids = req_arg_list(rq, "id", &ids);
    size_t ndr = req_arg_list(rq, "defaultRoleId", &drids);
    size_t nperm = req_arg_list(rq, "permission", &perms);
    const char *uc = req_arg(rq, "userCount");
    bool user_count = !(uc && strcasecmp(uc, "false") == 0);
    bool filtered = name_lc || nids || ndr || nperm;
    ok(rp, 200);
    sim_sb *b = &rp->body;
    sb_puts(b, "{\"entities\":[");
    sim_rdlock(rq);
    sim_tenant *t = rq->ctx->t;
    size_t start = (size_t)(num - 1) * (size_t)size, total = 0, emitted = 0;
    uint64_t now = sim_mono_ms();
    /* With --lag some roles may be invisible, and only counting finds how many. */
    bool counted = filtered || rq->ctx->lag_ms > 0;
    for (size_t i = 0; i < t->nroles; i++) {
        if (!counted && total + (t->nroles - i) <= start) {
            total += t->nroles - i; /* unfiltered: jump, nothing on this page remains */
            break;
        }
        sim_role *r = t->roles[i];
        if (!sim_role_visible(r, now))
            continue;
        if (filtered) {
            if (name_lc && !strstr(r->name_lc, name_lc))
                continue;
            if (nids && !list_has(ids, nids, r->id, false))
                continue;
            if (ndr && !list_has(drids, ndr, r->kind, false))
                continue;
            if (nperm && !role_has_permission(r, perms, nperm))
                continue;
        }
        if (total >= start && emitted < (size_t)size) {
            if (emitted++)
                sb_putc(b, ',');
            sim_role_json(b, r, user_count);
        }
        total++;
    }
    sim_rdunlock(rq);
    envelope_end(b, rq, size, num, total, true);
    free(name_lc);
    sim_free_list(ids, nids);
    sim_free_list(drids, ndr);
    sim_free_list(perms, nperm);
}

static void role_create(sim_req *rq, sim_reply *rp, char **p)
{
    (void)p;
    json_object *o = body_json(rq, rp);
    if (!o)
        return;
    sim_wrlock(rq);
    sim_tenant *t = rq->ctx->t;
    if (role_body_ok(rq, rp, o, NULL, true)) {
        char id[37];
        sim_guid(id);
        json_object *r = json_object_new_object();
        json_object_object_add(r, "id", json_object_new_string(id));
        json_object_object_add(r, "name", json_object_new_string(sim_json_str(o, "name")));
        json_object_object_add(r, "description", json_object_new_string(""));
        json_object_object_add(r, "default", json_object_new_boolean(0));
        json_object_object_add(r, "base", json_object_new_boolean(0));
        json_object_object_add(r, "permissions", json_object_new_array());
        json_object_object_add(r, "permissionPolicies", json_object_new_array());
        role_apply(t, r, o);
        sim_role *nr = sim_role_add(t, r);
        if (rq->ctx->lag_ms > 0)
            nr->visible_ms = sim_mono_ms() + (uint64_t)rq->ctx->lag_ms;
        ok(rp, 200);
        sim_role_json(&rp->body, nr, true);
    }
    sim_wrunlock(rq);
    json_object_put(o);
}

static void role_get(sim_req *rq, sim_reply *rp, char **p)
{
    const char *uc = req_arg(rq, "userCount");
    sim_rdlock(rq);
    sim_role *r = find_role_or_404(rq, rp, p[0]);
    if (r) {
        ok(rp, 200);
        sim_role_json(&rp->body, r, !(uc && strcasecmp(uc, "false") == 0));
    }
    sim_rdunlock(rq);
}

static void role_update(sim_req *rq, sim_reply *rp, char **p, bool patch)
{
    json_object *o = body_json(rq, rp);
    if (!o)
        return;
    sim_wrlock(rq);
    sim_tenant *t = rq->ctx->t;
    sim_role *r = find_role_or_404(rq, rp, p[0]);
    if (r && role_body_ok(rq, rp, o, r, !patch)) {
        const char *name = sim_json_str(o, "name");
        if (name && strcmp(name, r->name) != 0)
            sim_role_set_name(t, r, name);
        role_apply(t, r->obj, o);
        sim_role_refresh(t, r);
        ok(rp, 200);
        sim_role_json(&rp->body, r, true);
    }
    sim_wrunlock(rq);
    json_object_put(o);
}

static void role_put(sim_req *rq, sim_reply *rp, char **p)
{
    role_update(rq, rp, p, false);
}

static void role_patch(sim_req *rq, sim_reply *rp, char **p)
{
    role_update(rq, rp, p, true);
}

static void role_delete(sim_req *rq, sim_reply *rp, char **p)
{
    sim_wrlock(rq);
    sim_role *r = find_role_or_404(rq, rp, p[0]);
    if (r && r->kind) {
        genesys_error(rq, rp, 400, "bad.request", "Default roles cannot be deleted");
    } else if (r) {
        sim_role_remove(rq->ctx->t, r);
        ok(rp, 204);
    }
    sim_wrunlock(rq);
}

/* Check a JSON array of user ids; every id must name a user. */
static bool user_ids_ok(sim_req *rq, sim_reply *rp, json_object *arr, size_t max)
{
    if (!json_object_is_type(arr, json_type_array)) {
        genesys_error(rq, rp, 400, "bad.request", "The body must be an array of user ids");
        return false;
    }
    size_t n = json_object_array_length(arr);
    if (max && n > max) {
        genesys_error(rq, rp, 400, "bad.request", "At most %zu user ids per request, got %zu", max,
                      n);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        if (!json_object_is_type(e, json_type_string)) {
            genesys_error(rq, rp, 400, "bad.request", "User ids must be strings");
            return false;
        }
        if (!find_user_or_404(rq, rp, json_object_get_string(e)))
            return false;
    }
    return true;
}

/* The role's direct grants of one subject, in any division, removed (simulator.md §3b). */
static void revoke_everywhere(sim_tenant *t, sim_subj *s, sim_role *r)
{
    size_t k = 0;
    for (size_t i = 0; i < s->ngrants; i++)
        if (s->grants[i].role != r)
            k++;
    if (k == s->ngrants)
        return;
    sim_grant *keep = xcalloc(k + 1, sizeof *keep);
    k = 0;
    for (size_t i = 0; i < s->ngrants; i++)
        if (s->grants[i].role != r)
            keep[k++] = s->grants[i];
    sim_subj_set_grants(t, s, keep, k);
    free(keep);
}

/* PUT roles/{id}/users/add|remove: add grants in the home division; remove the role's direct
 * grants in every division (never employee's, never inherited ones). */
static void role_users_change(sim_req *rq, sim_reply *rp, char **p, bool add)
{
    json_object *o = body_json(rq, rp);
    if (!o)
        return;
    sim_wrlock(rq);
    sim_tenant *t = rq->ctx->t;
    sim_role *r = find_role_or_404(rq, rp, p[0]);
    if (r && user_ids_ok(rq, rp, o, 100)) {
        ok(rp, 200);
        sb_putc(&rp->body, '[');
        for (size_t i = 0; i < json_object_array_length(o); i++) {
            const char *id = json_object_get_string(json_object_array_get_idx(o, i));
            sim_user *u = sim_user_find(t, id);
            if (add)
                sim_grant_add(t, &u->subj, r, t->home);
            else if (r != t->keeper)
                revoke_everywhere(t, &u->subj, r);
            sim_subj_changed(t, &u->subj);
            if (i)
                sb_putc(&rp->body, ',');
            sb_json_str(&rp->body, id);
        }
        sb_putc(&rp->body, ']');
    }
    sim_wrunlock(rq);
    json_object_put(o);
}

static void role_users_add(sim_req *rq, sim_reply *rp, char **p)
{
    role_users_change(rq, rp, p, true);
}

static void role_users_remove(sim_req *rq, sim_reply *rp, char **p)
{
    role_users_change(rq, rp, p, false);
}

/* A JSON array of 1..max id strings (max 0 = no limit); false with a 400 reply otherwise. */
static bool id_list_ok(sim_req *rq, sim_reply *rp, json_object *arr, const char *what, size_t max)
{
    if (!arr || !json_object_is_type(arr, json_type_array) || json_object_array_length(arr) == 0) {
        genesys_error(rq, rp, 400, "bad.request", "%s must be a non-empty array of ids", what);
        return false;
    }
    size_t n = json_object_array_length(arr);
    if (max && n > max) {
        genesys_error(rq, rp, 400, "bad.request", "At most %zu %s per request, got %zu", max, what,
                      n);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (!json_object_is_type(json_object_array_get_idx(arr, i), json_type_string)) {
            genesys_error(rq, rp, 400, "bad.request", "%s must be strings", what);
            return false;
        }
    return true;
}

/* POST /roles/{id}?subjectType=..: SubjectDivisions, the role to every subject in every
 * division; all validated before anything changes. */
static void role_bulk_grant(sim_req *rq, sim_reply *rp, char **p)
{
    int type = subject_type_arg(rq, rp);
    if (type < 0)
        return;
    json_object *o = body_json(rq, rp);
    if (!o)
        return;
    json_object *subj = NULL, *divs = NULL;
    sim_wrlock(rq);
    sim_tenant *t = rq->ctx->t;
    sim_role *r = find_role_or_404(rq, rp, p[0]);
    if (!r)
        goto out;
    if (!json_object_is_type(o, json_type_object)) {
        genesys_error(rq, rp, 400, "bad.request", "The body must be a SubjectDivisions object");
        goto out;
    }
    json_object_object_get_ex(o, "subjectIds", &subj);
    json_object_object_get_ex(o, "divisionIds", &divs);
    if (!id_list_ok(rq, rp, subj, "subjectIds", 100) || !id_list_ok(rq, rp, divs, "divisionIds", 0))
        goto out;
    size_t ns = json_object_array_length(subj), nd = json_object_array_length(divs);
    sim_subj **sv = xcalloc(ns, sizeof *sv);
    sim_div **dv = xcalloc(nd, sizeof *dv);
    bool valid = true;
    for (size_t i = 0; valid && i < ns; i++)
        valid = (sv[i] = find_subj_or_404(
                     rq, rp, json_object_get_string(json_object_array_get_idx(subj, i)), type));
    for (size_t i = 0; valid && i < nd; i++)
        valid = (dv[i] = find_div_or_404(
                     rq, rp, json_object_get_string(json_object_array_get_idx(divs, i))));
    if (valid) {
        for (size_t i = 0; i < ns; i++) {
            for (size_t k = 0; k < nd; k++)
                sim_grant_add(t, sv[i], r, dv[k]);
            sim_subj_changed(t, sv[i]);
        }
        ok(rp, 204);
    }
    free(sv);
    free(dv);
out:
    sim_wrunlock(rq);
    json_object_put(o);
}

/* Users holding the role directly in any division (as userCount counts them). */
static void role_users(sim_req *rq, sim_reply *rp, char **p)
{
    long size, num;
    if (!paging(rq, rp, &size, &num))
        return;
    sim_rdlock(rq);
    sim_role *r = find_role_or_404(rq, rp, p[0]);
    if (r) {
        ok(rp, 200);
        sim_sb *b = &rp->body;
        sb_puts(b, "{\"entities\":[");
        size_t start = (size_t)(num - 1) * (size_t)size, total = 0, emitted = 0;
        for (size_t i = 0; i < r->nholders; i++) {
            sim_subj *s = r->holders[i];
            if (s->type != SIM_SUBJ_USER)
                continue;
            if (total >= start && emitted < (size_t)size) {
                if (emitted++)
                    sb_putc(b, ',');
                sb_puts(b, "{\"id\":");
                sb_json_str(b, s->id);
                sb_puts(b, ",\"selfUri\":");
                sb_json_uri(b, "/api/v2/users/", s->id);
                sb_putc(b, '}');
            }
            total++;
        }
        envelope_end(b, rq, size, num, total, false);
    }
    sim_rdunlock(rq);
}

static void division_json(sim_sb *b, const sim_div *d)
{
    sb_putn(b, d->api, d->api_len);
}

/* GET roles/{id}/subjectgrants: the role's direct holders, a page of the holder index, each
 * with the divisions it holds the role in. Pages of at most 100. */
static void role_subjectgrants(sim_req *rq, sim_reply *rp, char **p)
{
    long size, num;
    if (!paging(rq, rp, &size, &num))
        return;
    if (size > 100) {
        genesys_error(rq, rp, 400, "bad.request", "pageSize [%ld] exceeds the maximum of 100",
                      size);
        return;
    }
    sim_rdlock(rq);
    sim_role *r = find_role_or_404(rq, rp, p[0]);
    if (r) {
        ok(rp, 200);
        sim_sb *b = &rp->body;
        sb_puts(b, "{\"entities\":[");
        size_t start = (size_t)(num - 1) * (size_t)size;
        for (size_t i = start; i < r->nholders && i < start + (size_t)size; i++) {
            sim_subj *s = r->holders[i];
            if (i > start)
                sb_putc(b, ',');
            sb_puts(b, "{\"id\":");
            sb_json_str(b, s->id);
            sb_puts(b, ",\"name\":");
            sb_json_str(b, sim_json_str(s->obj, "name"));
            sb_printf(b, ",\"type\":\"%s\",\"divisions\":[", subject_type_name(s->type));
            bool first = true;
            for (size_t k = 0; k < s->ngrants; k++) {
                if (s->grants[k].role != r)
                    continue;
                if (!first)
                    sb_putc(b, ',');
                first = false;
                division_json(b, s->grants[k].div);
            }
            sb_puts(b, "],\"selfUri\":");
            sb_json_uri(b, subject_uri_prefix(s->type), s->id);
            sb_putc(b, '}');
        }
        envelope_end(b, rq, size, num, r->nholders, true);
    }
    sim_rdunlock(rq);
}

/* ---- default roles ------------------------------------------------------------------------- */

static void restore_default(sim_tenant *t, sim_role *r)
{
    json_object *f;
    if (!t->factory || !json_object_object_get_ex(t->factory, r->kind, &f))
        return;
    json_object *v;
    const char *keys[] = {"description", "permissions", "permissionPolicies"};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(keys); i++)
        if (json_object_object_get_ex(f, keys[i], &v)) {
            json_object *c = NULL;
            json_object_deep_copy(v, &c, NULL);
            json_object_object_add(r->obj, keys[i], c);
        }
    json_object_object_del(r->obj, "roleNeedsUpdate");
    sim_role_refresh(t, r);
}

static void default_listing(sim_req *rq, sim_reply *rp, sim_role **v, size_t n)
{
    ok(rp, 200);
    sb_puts(&rp->body, "{\"entities\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_putc(&rp->body, ',');
        sim_role_json(&rp->body, v[i], true);
    }
    envelope_end(&rp->body, rq, n ? (long)n : 25, 1, n, true);
}

static void roles_default_post(sim_req *rq, sim_reply *rp, char **p)
{
    (void)p;
    const char *force = req_arg(rq, "force");
    bool f = force && strcasecmp(force, "true") == 0;
    sim_wrlock(rq);
    sim_tenant *t = rq->ctx->t;
    /* Missing default roles cannot occur (they cannot be deleted and load adds them), so
     * without force there is nothing to add; with force every default role is restored. */
    sim_role **v = xcalloc(t->nroles + 1, sizeof *v);
    size_t n = 0;
    for (size_t i = 0; i < t->nroles; i++)
        if (t->roles[i]->kind) {
            if (f)
                restore_default(t, t->roles[i]);
            v[n++] = t->roles[i];
        }
    default_listing(rq, rp, v, n);
    free(v);
    sim_wrunlock(rq);
}

static void roles_default_put(sim_req *rq, sim_reply *rp, char **p)
{
    (void)p;
    json_object *o = body_json(rq, rp);
    if (!o)
        return;
    sim_wrlock(rq);
    sim_tenant *t = rq->ctx->t;
    if (!json_object_is_type(o, json_type_array)) {
        genesys_error(rq, rp, 400, "bad.request", "The body must be an array of roles");
        goto out;
    }
    size_t n = json_object_array_length(o);
    sim_role **v = xcalloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        const char *id = sim_json_str(json_object_array_get_idx(o, i), "id");
        if (!id) {
            genesys_error(rq, rp, 400, "bad.request", "Every role needs an id");
            free(v);
            goto out;
        }
        v[i] = find_role_or_404(rq, rp, id);
        if (!v[i]) {
            free(v);
            goto out;
        }
        if (!v[i]->kind) {
            genesys_error(rq, rp, 400, "bad.request", "Role [%s] is not a default role", id);
            free(v);
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++)
        restore_default(t, v[i]);
    default_listing(rq, rp, v, n);
    free(v);
out:
    sim_wrunlock(rq);
    json_object_put(o);
}

/* ---- compare with default ------------------------------------------------------------------- */

static bool policy_in(json_object *p, json_object *arr)
{
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++)
        if (json_object_equal(p, json_object_array_get_idx(arr, i)))
            return true;
    return false;
}

static void compare(sim_req *rq, sim_reply *rp, char **p, json_object *unsaved)
{
    /* Serialises stored objects: exclusive lock (no state change, so no drop_write snapshot). */
    sim_lock_exclusive(rq->ctx);
    sim_tenant *t = rq->ctx->t;
    sim_role *left = find_role_or_404(rq, rp, p[0]);
    sim_role *right = NULL;
    json_object *factory = NULL;
    if (left) {
        right = sim_role_find(t, p[1]);
        const char *kind = right ? right->kind : p[1];
        if (!kind || !t->factory || !json_object_object_get_ex(t->factory, kind, &factory)) {
            genesys_error(rq, rp, 404, "not.found", "No default role [%s]", p[1]);
            left = NULL;
        }
    }
    if (left) {
        json_object *cur = NULL, *fpol = NULL;
        json_object_object_get_ex(unsaved ? unsaved : left->obj, "permissionPolicies", &cur);
        json_object_object_get_ex(factory, "permissionPolicies", &fpol);
        if (cur && !json_object_is_type(cur, json_type_array))
            cur = NULL;
        json_object *added = json_object_new_array(), *removed = json_object_new_array(),
                    *same = json_object_new_array();
        for (size_t i = 0; cur && i < json_object_array_length(cur); i++) {
            json_object *x = json_object_array_get_idx(cur, i);
            json_object_array_add(policy_in(x, fpol) ? same : added, json_object_get(x));
        }
        for (size_t i = 0; fpol && i < json_object_array_length(fpol); i++) {
            json_object *x = json_object_array_get_idx(fpol, i);
            if (!policy_in(x, cur))
                json_object_array_add(removed, json_object_get(x));
        }
        json_object *res = json_object_new_object();
        json_object_object_add(res, "removedPermissionPolicies", removed);
        json_object_object_add(res, "addedPermissionPolicies", added);
        json_object_object_add(res, "samePermissionPolicies", same);
        ok(rp, 200);
        sb_puts(&rp->body, json_object_to_json_string_ext(res, JSON_C_TO_STRING_PLAIN |
                                                                   JSON_C_TO_STRING_NOSLASHESCAPE));
        rp->body.len--; /* reopen the object to append the two roles */
        sb_puts(&rp->body, ",\"userOrgRole\":");
        if (unsaved)
            sb_puts(&rp->body, json_object_to_json_string_ext(unsaved, JSON_C_TO_STRING_PLAIN));
        else
            sim_role_json(&rp->body, left, true);
        sb_puts(&rp->body, ",\"roleFromDefault\":");
        sb_puts(&rp->body, json_object_to_json_string_ext(factory, JSON_C_TO_STRING_PLAIN));
        sb_putc(&rp->body, '}');
        json_object_put(res);
    }
    pthread_rwlock_unlock(&rq->ctx->lock);
}

static void compare_get(sim_req *rq, sim_reply *rp, char **p)
{
    compare(rq, rp, p, NULL);
}

static void compare_post(sim_req *rq, sim_reply *rp, char **p)
{
    json_object *o = body_json(rq, rp);
    if (!o)
        return;
    if (!json_object_is_type(o, json_type_object))
        genesys_error(rq, rp, 400, "bad.request", "The body must be a role object");
    else
        compare(rq, rp, p, o);
    json_object_put(o);
}

/* ---- settings, products, permissions, divisions, subjects ----------------------------------- */

static void settings_json(sim_req *rq, sim_reply *rp)
{
    sim_tenant *t = rq->ctx->t;
    json_object *s = NULL, *v;
    json_object_object_get_ex(t->meta, "settings", &s);
    bool bf =
        s && json_object_object_get_ex(s, "backfillEnabled", &v) && json_object_get_boolean(v);
    bool da = s && json_object_object_get_ex(s, "authorizationGrantDivisionAware", &v) &&
              json_object_get_boolean(v);
    ok(rp, 200);
    sb_printf(&rp->body,
              "{\"id\":\"%s\",\"backfillEnabled\":%s,\"authorizationGrantDivisionAware\":%s,"
              "\"selfUri\":\"/api/v2/authorization/roles/settings\"}",
              t->org_id, bf ? "true" : "false", da ? "true" : "false");
}

static void settings_get(sim_req *rq, sim_reply *rp, char **p)
{
    (void)p;
    sim_rdlock(rq);
    settings_json(rq, rp);
    sim_rdunlock(rq);
}

static void settings_put(sim_req *rq, sim_reply *rp, char **p)
{
    (void)p;
    json_object *o = body_json(rq, rp);
    if (!o)
        return;
    if (!json_object_is_type(o, json_type_object)) {
        genesys_error(rq, rp, 400, "bad.request", "The body must be a RoleSettings object");
        json_object_put(o);
        return;
    }
    const char *keys[] = {"backfillEnabled", "authorizationGrantDivisionAware"};
    json_object *v;
    for (size_t i = 0; i < UTIL_ARRAY_LEN(keys); i++)
        if (json_object_object_get_ex(o, keys[i], &v) && v &&
            !json_object_is_type(v, json_type_boolean)) {
            genesys_error(rq, rp, 400, "bad.request", "%s must be a boolean", keys[i]);
            json_object_put(o);
            return;
        }
    sim_wrlock(rq);
    json_object *s = NULL;
    json_object_object_get_ex(rq->ctx->t->meta, "settings", &s);
    for (size_t i = 0; s && i < UTIL_ARRAY_LEN(keys); i++)
        if (json_object_object_get_ex(o, keys[i], &v) && v)
            json_object_object_add(s, keys[i], json_object_get(v));
    settings_json(rq, rp);
    sim_wrunlock(rq);
    json_object_put(o);
}

static void products(sim_req *rq, sim_reply *rp, char **p)
{
    (void)p;
    static const char *prods[][2] = {{"genesysCloud", "Genesys Cloud"},
                                     {"genesysCloudCX", "Genesys Cloud CX"},
                                     {"workforceEngagement", "Workforce Engagement Management"}};
    ok(rp, 200);
    sb_puts(&rp->body, "{\"entities\":[");
    for (size_t i = 0; i < UTIL_ARRAY_LEN(prods); i++)
        sb_printf(&rp->body, "%s{\"id\":\"%s\",\"name\":\"%s\"}", i ? "," : "", prods[i][0],
                  prods[i][1]);
    envelope_end(&rp->body, rq, 25, 1, UTIL_ARRAY_LEN(prods), true);
}

/* The permission catalog the simulated platform knows: domain, entity, actions. */
static const struct {
    const char *domain;
    const char *entity;
    const char *actions[6];
} catalog[] = {
    {"admin", "*", {"*"}},
    {"analytics", "conversationDetail", {"view"}},
    {"analytics", "queueObservation", {"view"}},
    {"architect", "flow", {"add", "edit", "delete", "view", "publish"}},
    {"authorization", "role", {"add", "edit", "delete", "view"}},
    {"authorization", "grant", {"add", "delete", "view"}},
    {"authorization", "division", {"add", "edit", "delete", "view"}},
    {"billing", "subscription", {"view"}},
    {"coaching", "appointment", {"add", "edit", "delete", "view"}},
    {"conversation", "communication", {"view", "monitor", "disconnect"}},
    {"directory", "user", {"add", "edit", "delete", "view"}},
    {"directory", "group", {"add", "edit", "delete", "view"}},
    {"externalContacts", "contact", {"add", "edit", "delete", "view"}},
    {"groups", "team", {"add", "edit", "delete", "view"}},
    {"integrations", "integration", {"add", "edit", "delete", "view"}},
    {"knowledge", "knowledgebase", {"add", "edit", "delete", "view"}},
    {"learning", "module", {"add", "edit", "delete", "view"}},
    {"outbound", "campaign", {"add", "edit", "delete", "view"}},
    {"quality", "evaluation", {"add", "edit", "delete", "view"}},
    {"quality", "calibration", {"add", "edit", "delete", "view"}},
    {"recording", "recording", {"view", "delete", "export"}},
    {"routing", "queue", {"add", "edit", "delete", "view", "join"}},
    {"routing", "skill", {"manage", "assign"}},
    {"speechAndTextAnalytics", "topic", {"add", "edit", "delete", "view"}},
    {"telephony", "plugin", {"all"}},
    {"workforceManagement", "schedule", {"add", "edit", "delete", "view"}},
};

static void permissions(sim_req *rq, sim_reply *rp, char **p)
{
    (void)p;
    long size, num;
    if (!paging(rq, rp, &size, &num))
        return;
    const char *qt = req_arg(rq, "queryType");
    const char *q = req_arg(rq, "query");
    if (q && !*q)
        q = NULL;
    sim_rdlock(rq);
    sim_tenant *t = rq->ctx->t;
    ok(rp, 200);
    sim_sb *b = &rp->body;
    sb_puts(b, "{\"entities\":[");
    size_t start = (size_t)(num - 1) * (size_t)size, total = 0, emitted = 0;
    for (size_t i = 0; i < UTIL_ARRAY_LEN(catalog); i++) {
        const char *dom = catalog[i].domain;
        if (i > 0 && strcmp(catalog[i - 1].domain, dom) == 0)
            continue; /* one entity per domain; the catalog is grouped by domain */
        if (!sim_domain_licensed(t, dom))
            continue;
        bool match;
        if (!q)
            match = true;
        else if (qt && strcasecmp(qt, "domain") == 0)
            match = strcasecmp(dom, q) == 0;
        else if (qt && strcasecmp(qt, "permission") == 0) {
            match = false;
            for (size_t k = i; k < UTIL_ARRAY_LEN(catalog) && strcmp(catalog[k].domain, dom) == 0;
                 k++)
                match = match || strcasestr(catalog[k].entity, q) != NULL;
        } else
            match = strcasestr(dom, q) != NULL;
        if (!match)
            continue;
        if (total >= start && emitted < (size_t)size) {
            if (emitted++)
                sb_putc(b, ',');
            sb_printf(b, "{\"id\":\"%s\",\"permissionMap\":{", dom);
            for (size_t k = i; k < UTIL_ARRAY_LEN(catalog) && strcmp(catalog[k].domain, dom) == 0;
                 k++) {
                sb_printf(b, "%s\"%s\":[", k > i ? "," : "", catalog[k].entity);
                for (size_t a = 0; a < 6 && catalog[k].actions[a]; a++)
                    sb_printf(b,
                              "%s{\"domain\":\"%s\",\"entityType\":\"%s\",\"action\":\"%s\","
                              "\"label\":\"%s %s\",\"allowsConditions\":false,"
                              "\"divisionAware\":false}",
                              a ? "," : "", dom, catalog[k].entity, catalog[k].actions[a],
                              catalog[k].actions[a], catalog[k].entity);
                sb_putc(b, ']');
            }
            sb_puts(b, "}}");
        }
        total++;
    }
    sim_rdunlock(rq);
    envelope_end(b, rq, size, num, total, true);
}

static void division_home(sim_req *rq, sim_reply *rp, char **p)
{
    (void)p;
    sim_rdlock(rq);
    ok(rp, 200);
    division_json(&rp->body, rq->ctx->t->home);
    sim_rdunlock(rq);
}

static void division_get(sim_req *rq, sim_reply *rp, char **p)
{
    sim_rdlock(rq);
    sim_div *d = sim_div_find(rq->ctx->t, p[0]);
    if (d && d != &rq->ctx->t->all_div) {
        ok(rp, 200);
        division_json(&rp->body, d);
    } else {
        genesys_error(rq, rp, 404, "not.found", "The division [%s] was not found", p[0]);
    }
    sim_rdunlock(rq);
}

static void divisions_list(sim_req *rq, sim_reply *rp, char **p)
{
    (void)p;
    long size, num;
    if (!paging(rq, rp, &size, &num))
        return;
    const char *name = req_arg(rq, "name");
    char *name_lc = name && *name ? sim_strlower(name) : NULL;
    char **ids = NULL;
    size_t nids = req_arg_list(rq, "id", &ids);
    sim_rdlock(rq);
    sim_tenant *t = rq->ctx->t;
    size_t start = (size_t)(num - 1) * (size_t)size, total = 0, emitted = 0;
    ok(rp, 200);
    sb_puts(&rp->body, "{\"entities\":[");
    for (size_t i = 0; i < t->ndivs; i++) {
        sim_div *d = t->divs[i];
        if (nids && !list_has(ids, nids, d->id, false))
            continue;
        if (name_lc) {
            char *lc = sim_strlower(d->name);
            bool match = strstr(lc, name_lc) != NULL;
            free(lc);
            if (!match)
                continue;
        }
        if (total >= start && emitted < (size_t)size) {
            if (emitted++)
                sb_putc(&rp->body, ',');
            division_json(&rp->body, d);
        }
        total++;
    }
    sim_rdunlock(rq);
    envelope_end(&rp->body, rq, size, num, total, true);
    free(name_lc);
    sim_free_list(ids, nids);
}

/* ---- subjects and division-aware grants ------------------------------------------------------ */

static void grant_json(sim_sb *b, const char *subject_id, const sim_grant *g, const char *ts)
{
    const sim_role *r = g->role;
    sb_puts(b, "{\"subjectId\":");
    sb_json_str(b, subject_id);
    sb_puts(b, ",\"division\":");
    division_json(b, g->div);
    sb_puts(b, ",\"role\":{\"id\":");
    sb_json_str(b, r->id);
    sb_puts(b, ",\"name\":");
    sb_json_str(b, r->name);
    sb_puts(b, ",\"description\":");
    sb_json_str(b, sim_json_str(r->obj, "description"));
    sb_printf(b, ",\"default\":%s,\"selfUri\":", r->kind ? "true" : "false");
    sb_json_uri(b, "/api/v2/authorization/roles/", r->id);
    sb_printf(b, "},\"grantMadeAt\":\"%s\"}", ts);
}

static bool pair_in_list(const sim_grant *v, size_t n, const sim_role *r, const sim_div *d)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].role == r && v[i].div == d)
            return true;
    return false;
}

/* Has the user's subject reply already shown (role, division) of group gi's grant k: directly,
 * through an earlier group, or earlier in the same group? */
static bool inherited_seen(const sim_user *u, size_t gi, size_t k)
{
    const sim_grant *g = &u->groups[gi]->subj.grants[k];
    if (sim_subj_has(&u->subj, g->role, g->div))
        return true;
    for (size_t i = 0; i < gi; i++)
        if (sim_subj_has(&u->groups[i]->subj, g->role, g->div))
            return true;
    return false;
}

/* GET subjects/{id}: AuthzSubject. A user's grants are its direct ones (subjectId = the user)
 * and every one inherited from its groups (subjectId = the group); without includeDuplicates a
 * (role, division) pair shows once, the direct grant first. */
static void subject_get(sim_req *rq, sim_reply *rp, char **p)
{
    const char *dup = req_arg(rq, "includeDuplicates");
    bool dups = dup && strcasecmp(dup, "true") == 0;
    sim_rdlock(rq);
    sim_subj *s = find_subj_or_404(rq, rp, p[0], -1);
    if (s) {
        char ts[32];
        util_rfc3339(ts, sizeof ts, util_now_ms());
        ok(rp, 200);
        sim_sb *b = &rp->body;
        sb_puts(b, "{\"id\":");
        sb_json_str(b, s->id);
        sb_puts(b, ",\"name\":");
        sb_json_str(b, sim_json_str(s->obj, "name"));
        sb_puts(b, ",\"grants\":[");
        bool first = true;
        for (size_t i = 0; i < s->ngrants; i++) {
            if (!first)
                sb_putc(b, ',');
            first = false;
            grant_json(b, s->id, &s->grants[i], ts);
        }
        if (s->type == SIM_SUBJ_USER) {
            const sim_user *u = sim_subj_user(s);
            for (size_t gi = 0; gi < u->ngroups; gi++) {
                const sim_subj *gs = &u->groups[gi]->subj;
                for (size_t k = 0; k < gs->ngrants; k++) {
                    if (!dups && inherited_seen(u, gi, k))
                        continue;
                    if (!first)
                        sb_putc(b, ',');
                    first = false;
                    grant_json(b, gs->id, &gs->grants[k], ts);
                }
            }
        }
        sb_puts(b, "],\"version\":1,\"selfUri\":");
        sb_json_uri(b, "/api/v2/authorization/subjects/", s->id);
        sb_putc(b, '}');
    }
    sim_rdunlock(rq);
}

/* The pairs of a RoleDivisionGrants body {grants: [{roleId, divisionId}]}, each once, checked
 * against the tenant: NULL with a 400/404 reply when anything is wrong. */
static sim_grant *body_grants(sim_req *rq, sim_reply *rp, json_object *o, size_t *n)
{
    json_object *gl = NULL;
    if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "grants", &gl) ||
        !json_object_is_type(gl, json_type_array)) {
        genesys_error(rq, rp, 400, "bad.request", "The body must be {\"grants\": [...]}");
        return NULL;
    }
    size_t len = json_object_array_length(gl);
    sim_grant *v = xcalloc(len + 1, sizeof *v);
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        json_object *e = json_object_array_get_idx(gl, i);
        const char *rid = sim_json_str(e, "roleId"), *did = sim_json_str(e, "divisionId");
        if (!rid || !did) {
            genesys_error(rq, rp, 400, "bad.request", "grants[%zu] needs roleId and divisionId", i);
            free(v);
            return NULL;
        }
        sim_grant g = {find_role_or_404(rq, rp, rid), NULL};
        if (g.role)
            g.div = find_div_or_404(rq, rp, did);
        if (!g.div) {
            free(v);
            return NULL;
        }
        if (!pair_in_list(v, k, g.role, g.div))
            v[k++] = g;
    }
    *n = k;
    return v;
}

enum bulk_op { BULK_ADD, BULK_REMOVE, BULK_REPLACE };

/* Is this the grant no endpoint takes away: employee in a user's home division? */
static bool is_kept_grant(sim_tenant *t, const sim_subj *s, const sim_role *r, const sim_div *d)
{
    return s->type == SIM_SUBJ_USER && r == t->keeper && d == t->home;
}

/* POST subjects/{id}/bulkadd|bulkremove|bulkreplace: validated first, then applied. */
static void subject_bulk(sim_req *rq, sim_reply *rp, char **p, enum bulk_op op)
{
    /* bulkremove has no subjectType in the SDK: any subject, unless the caller names a type */
    int type = op == BULK_REMOVE && !req_arg(rq, "subjectType") ? -1 : subject_type_arg(rq, rp);
    if (type == -2)
        return;
    json_object *o = body_json(rq, rp);
    if (!o)
        return;
    sim_wrlock(rq);
    sim_tenant *t = rq->ctx->t;
    size_t n = 0;
    sim_grant *v = NULL;
    sim_subj *s = find_subj_or_404(rq, rp, p[0], type);
    if (s && (v = body_grants(rq, rp, o, &n))) {
        if (op == BULK_ADD) {
            for (size_t i = 0; i < n; i++)
                sim_grant_add(t, s, v[i].role, v[i].div);
        } else if (op == BULK_REMOVE) {
            for (size_t i = 0; i < n; i++)
                if (!is_kept_grant(t, s, v[i].role, v[i].div))
                    sim_grant_remove(t, s, v[i].role, v[i].div); /* not held: ignored */
        } else {
            if (s->type == SIM_SUBJ_USER && t->keeper && !pair_in_list(v, n, t->keeper, t->home)) {
                memmove(&v[1], &v[0], n * sizeof *v); /* v has room for one more */
                v[0].role = t->keeper;
                v[0].div = t->home;
                n++;
            }
            sim_subj_set_grants(t, s, v, n);
        }
        sim_subj_changed(t, s);
        ok(rp, 204);
    }
    free(v);
    sim_wrunlock(rq);
    json_object_put(o);
}

static void subject_bulkadd(sim_req *rq, sim_reply *rp, char **p)
{
    subject_bulk(rq, rp, p, BULK_ADD);
}

static void subject_bulkremove(sim_req *rq, sim_reply *rp, char **p)
{
    subject_bulk(rq, rp, p, BULK_REMOVE);
}

static void subject_bulkreplace(sim_req *rq, sim_reply *rp, char **p)
{
    subject_bulk(rq, rp, p, BULK_REPLACE);
}

/* POST|DELETE subjects/{s}/divisions/{d}/roles/{r}: one grant. */
static void subject_grant_one(sim_req *rq, sim_reply *rp, char **p, bool add)
{
    int type = add ? subject_type_arg(rq, rp) : -1;
    if (type == -2)
        return;
    sim_wrlock(rq);
    sim_tenant *t = rq->ctx->t;
    sim_subj *s = find_subj_or_404(rq, rp, p[0], type);
    sim_div *d = s ? find_div_or_404(rq, rp, p[1]) : NULL;
    sim_role *r = d ? find_role_or_404(rq, rp, p[2]) : NULL;
    if (r) {
        if (add) {
            sim_grant_add(t, s, r, d); /* already held: nothing to do */
            ok(rp, 204);
        } else if (!sim_subj_has(s, r, d)) {
            genesys_error(rq, rp, 404, "not.found",
                          "The subject [%s] holds no grant of role [%s] in division [%s]", p[0],
                          p[2], p[1]);
        } else {
            if (!is_kept_grant(t, s, r, d))
                sim_grant_remove(t, s, r, d);
            ok(rp, 204);
        }
        sim_subj_changed(t, s);
    }
    sim_wrunlock(rq);
}

static void subject_grant_post(sim_req *rq, sim_reply *rp, char **p)
{
    subject_grant_one(rq, rp, p, true);
}

static void subject_grant_delete(sim_req *rq, sim_reply *rp, char **p)
{
    subject_grant_one(rq, rp, p, false);
}

/* ---- users ---------------------------------------------------------------------------------- */

static bool want_expand(sim_req *rq, const char *what)
{
    char **v = NULL;
    size_t n = req_arg_list(rq, "expand", &v);
    bool r = list_has(v, n, what, false);
    sim_free_list(v, n);
    return r;
}

/* The users listings' state parameter: SIM_ACTIVE.. or SIM_ANY_STATE; -1 with a 400 reply. */
static int state_arg(sim_req *rq, sim_reply *rp)
{
    static const char *names[] = {"active", "inactive", "deleted", "any"};
    const char *st = req_arg(rq, "state");
    if (!st)
        return SIM_ACTIVE;
    for (int i = 0; i < (int)UTIL_ARRAY_LEN(names); i++)
        if (strcmp(st, names[i]) == 0)
            return i; /* "any" is SIM_ANY_STATE */
    genesys_error(rq, rp, 400, "bad.request",
                  "Value [%s] is not valid for field type [state]. Allowable values are: "
                  "active, inactive, deleted, any",
                  st);
    return -1;
}

static void users_list(sim_req *rq, sim_reply *rp, char **p)
{
    (void)p;
    long size, num;
    if (!paging(rq, rp, &size, &num))
        return;
    const char *st = req_arg(rq, "state");
    int state = state_arg(rq, rp);
    if (state < 0)
        return;
    bool any = state == SIM_ANY_STATE;
    /* The platform refuses offset paging this deep for users that are not active (TF
     * genesyscloud_user_proxy.go): the cursor listing below is the way there. */
    long cap = rq->ctx->offset_cap;
    if (cap > 0 && state != SIM_ACTIVE && (long long)num * size > cap) {
        genesys_error(rq, rp, 400, "bad.request",
                      "pageNumber x pageSize (%lld) exceeds the maximum of %ld results for users "
                      "in state [%s]; use /api/v2/users/query",
                      (long long)num * size, cap, st);
        return;
    }
    bool auth = want_expand(rq, "authorization");
    char **ids = NULL;
    size_t nids = req_arg_list(rq, "id", &ids);
    ok(rp, 200);
    sim_sb *b = &rp->body;
    sim_sb key = {0};
    page_key(rq, &key); /* the page is a function of the tenant and the arguments */
    sim_rdlock(rq);
    if (sim_page_cached(rq, key.buf, b)) {
        sim_rdunlock(rq);
        sb_free(&key);
        sim_free_list(ids, nids);
        return;
    }
    sb_puts(b, "{\"entities\":[");
    sim_tenant *t = rq->ctx->t;
    size_t start = (size_t)(num - 1) * (size_t)size, total = 0, emitted = 0;
    if (nids) {
        /* Bulk fetch by id: the state filter applies only when asked for explicitly. */
        for (size_t i = 0; i < nids; i++) {
            sim_user *u = sim_user_find(t, ids[i]);
            if (!u || (st && !any && u->state != state))
                continue;
            if (total >= start && emitted < (size_t)size) {
                if (emitted++)
                    sb_putc(b, ',');
                user_json(b, u, auth);
            }
            total++;
        }
    } else {
        sim_user **v = any ? t->users : t->by_state[state];
        total = any ? t->nusers : t->nby_state[state];
        for (size_t i = start; i < total && emitted < (size_t)size; i++) {
            if (emitted++)
                sb_putc(b, ',');
            user_json(b, v[i], auth);
        }
    }
    envelope_end(b, rq, size, num, total, true);
    sim_page_keep(rq, key.buf, b->buf, b->len);
    sim_rdunlock(rq);
    sb_free(&key);
    sim_free_list(ids, nids);
}

#define CURSOR_MAX_PAGE 500

/* The cursor of /users/query: "u1:<A|D>:<last user id>", base64url without padding. It names a
 * user, not an offset, so it stays valid (and means the same place) when users come and go. */
static char *cursor_make(bool desc, const char *last_id)
{
    char *plain = xasprintf("u1:%c:%s", desc ? 'D' : 'A', last_id);
    char *c = sim_b64url_encode(plain, strlen(plain));
    free(plain);
    return c;
}

/* The last id a cursor names (new string), or NULL when it is not one of ours for this order. */
static char *cursor_read(const char *cursor, bool desc)
{
    char *plain = sim_b64_decode(cursor);
    char *id = NULL;
    if (plain && strncmp(plain, desc ? "u1:D:" : "u1:A:", 5) == 0 && plain[5])
        id = xstrdup(plain + 5);
    free(plain);
    return id;
}

/* First index of v (sorted by id) whose id is above id (after) or not below it (!after). */
static size_t users_bound(sim_user **v, size_t n, const char *id, bool after)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(v[mid]->id, id);
        if (c < 0 || (after && c == 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* An URI of this listing: the path, the arguments but `cursor` (and pageSize, given first), and
 * the cursor when there is one. */
static void query_uri(sim_sb *b, sim_req *rq, long size, const char *cursor)
{
    sim_sb u = {0};
    sb_printf(&u, "%s?pageSize=%ld", rq->path, size);
    for (size_t k = 0; k < rq->nargs; k++) {
        const char *key = rq->args[k].key;
        if (strcmp(key, "pageSize") == 0 || strcmp(key, "cursor") == 0)
            continue;
        char *ek = util_pct_encode(key);
        char *ev = util_pct_encode(rq->args[k].val ? rq->args[k].val : "");
        sb_printf(&u, "&%s=%s", ek, ev);
        free(ek);
        free(ev);
    }
    if (cursor) {
        char *ec = util_pct_encode(cursor);
        sb_printf(&u, "&cursor=%s", ec);
        free(ec);
    }
    sb_json_str(b, u.buf);
    sb_free(&u);
}

/* GET /users/query: UserCursorEntityListing, no offset cap. */
static void users_query(sim_req *rq, sim_reply *rp, char **p)
{
    (void)p;
    long long v;
    long size = 25;
    const char *s = req_arg(rq, "pageSize");
    if (s) {
        if (!sim_parse_int(s, &v) || v < 1 || v > CURSOR_MAX_PAGE) {
            genesys_error(rq, rp, 400, "bad.request",
                          "Invalid pageSize [%s]: 1 to %d for the cursor listing", s,
                          CURSOR_MAX_PAGE);
            return;
        }
        size = (long)v;
    }
    int state = state_arg(rq, rp);
    if (state < 0)
        return;
    const char *so = req_arg(rq, "sortOrder");
    bool desc = so && (strcasecmp(so, "DESC") == 0 || strcasecmp(so, "descending") == 0);
    if (so && !desc && strcasecmp(so, "ASC") != 0 && strcasecmp(so, "ascending") != 0) {
        genesys_error(rq, rp, 400, "bad.request",
                      "Value [%s] is not valid for field type [sortOrder]. Allowable values are: "
                      "ASC, DESC",
                      so);
        return;
    }
    const char *cur = req_arg(rq, "cursor");
    char *last = NULL;
    if (cur && !(last = cursor_read(cur, desc))) {
        genesys_error(rq, rp, 400, "bad.request", "Invalid cursor [%s]", cur);
        return;
    }
    bool auth = want_expand(rq, "authorization");
    ok(rp, 200);
    sim_sb *b = &rp->body;
    sim_sb key = {0};
    page_key(rq, &key);
    sim_rdlock(rq);
    if (!sim_page_cached(rq, key.buf, b)) {
        sim_tenant *t = rq->ctx->t;
        sim_user **list = t->by_id[state];
        size_t n = state == SIM_ANY_STATE ? t->nusers : t->nby_state[state];
        /* The page starts after the cursor's user: ascending at pos, descending below pos. */
        size_t pos, avail, emitted = 0;
        if (!desc) {
            pos = last ? users_bound(list, n, last, true) : 0;
            avail = n - pos;
        } else {
            pos = last ? users_bound(list, n, last, false) : n;
            avail = pos;
        }
        sb_puts(b, "{\"entities\":[");
        const sim_user *lastu = NULL;
        for (; emitted < avail && emitted < (size_t)size; emitted++) {
            const sim_user *u = desc ? list[pos - 1 - emitted] : list[pos + emitted];
            if (emitted)
                sb_putc(b, ',');
            user_json(b, u, auth);
            lastu = u;
        }
        sb_putc(b, ']');
        char *next = emitted < avail && lastu ? cursor_make(desc, lastu->id) : NULL;
        if (next) {
            sb_puts(b, ",\"nextUri\":");
            query_uri(b, rq, size, next);
        }
        sb_puts(b, ",\"selfUri\":");
        query_uri(b, rq, size, cur);
        sb_printf(b, ",\"results\":%zu", emitted);
        if (next) {
            sb_puts(b, ",\"cursor\":");
            sb_json_str(b, next);
        }
        sb_putc(b, '}');
        free(next);
        sim_page_keep(rq, key.buf, b->buf, b->len);
    }
    sim_rdunlock(rq);
    sb_free(&key);
    free(last);
}

static void user_get(sim_req *rq, sim_reply *rp, char **p)
{
    bool auth = want_expand(rq, "authorization");
    sim_rdlock(rq);
    sim_user *u = find_user_or_404(rq, rp, p[0]);
    if (u) {
        ok(rp, 200);
        user_json(&rp->body, u, auth);
    }
    sim_rdunlock(rq);
}

static void user_roles_get(sim_req *rq, sim_reply *rp, char **p)
{
    sim_rdlock(rq);
    sim_user *u = find_user_or_404(rq, rp, p[0]);
    if (u) {
        ok(rp, 200);
        user_authorization(&rp->body, u, true);
    }
    sim_rdunlock(rq);
}

/* PUT users/{id}/roles (simulator.md §3b): the direct home-division grants become employee plus
 * the body's roles (in its order); a role that was among them before and is not now also loses
 * its direct grants in the other divisions; every other grant outside the home division stays. */
static void user_roles_put(sim_req *rq, sim_reply *rp, char **p)
{
    json_object *o = body_json(rq, rp);
    if (!o)
        return;
    sim_wrlock(rq);
    sim_tenant *t = rq->ctx->t;
    sim_user *u = find_user_or_404(rq, rp, p[0]);
    if (!u)
        goto out;
    if (!json_object_is_type(o, json_type_array)) {
        genesys_error(rq, rp, 400, "bad.request", "The body must be an array of role ids");
        goto out;
    }
    size_t n = json_object_array_length(o);
    sim_subj *s = &u->subj;
    sim_grant *v = xcalloc(n + s->ngrants + 2, sizeof *v);
    size_t k = 0;
    if (t->keeper)
        v[k++] = (sim_grant){t->keeper, t->home};
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(o, i);
        if (!json_object_is_type(e, json_type_string)) {
            genesys_error(rq, rp, 400, "bad.request", "Role ids must be strings");
            free(v);
            goto out;
        }
        sim_role *r = find_role_or_404(rq, rp, json_object_get_string(e));
        if (!r) {
            free(v);
            goto out;
        }
        if (!pair_in_list(v, k, r, t->home))
            v[k++] = (sim_grant){r, t->home};
    }
    size_t nhome = k;
    for (size_t i = 0; i < s->ngrants; i++) {
        sim_grant g = s->grants[i];
        if (g.div == t->home)
            continue;
        bool left = sim_subj_has(s, g.role, t->home) && !pair_in_list(v, nhome, g.role, t->home);
        if (!left)
            v[k++] = g;
    }
    sim_subj_set_grants(t, s, v, k);
    sim_subj_changed(t, s);
    free(v);
    ok(rp, 200);
    user_authorization(&rp->body, u, true);
out:
    sim_wrunlock(rq);
    json_object_put(o);
}

/* DELETE users/{id}/roles: every direct grant goes but employee's. */
static void user_roles_delete(sim_req *rq, sim_reply *rp, char **p)
{
    sim_wrlock(rq);
    sim_tenant *t = rq->ctx->t;
    sim_user *u = find_user_or_404(rq, rp, p[0]);
    if (u) {
        sim_subj *s = &u->subj;
        sim_grant *v = xcalloc(s->ngrants + 1, sizeof *v);
        size_t k = 0;
        for (size_t i = 0; i < s->ngrants; i++)
            if (s->grants[i].role == t->keeper)
                v[k++] = s->grants[i];
        sim_subj_set_grants(t, s, v, k);
        sim_subj_changed(t, s);
        free(v);
        ok(rp, 204);
    }
    sim_wrunlock(rq);
}

/* ---- groups --------------------------------------------------------------------------------- */

static sim_group *find_group_or_404(sim_req *rq, sim_reply *rp, const char *id)
{
    sim_group *g = NULL;
    if (id)
        HASH_FIND(hh, rq->ctx->t->group_by_id, id, strlen(id), g);
    if (!g)
        genesys_error(rq, rp, 404, "not.found", "The group [%s] was not found", id);
    return g;
}

/* Group: official groups with role grants enabled; what the state does not say is fixed. */
static void group_json(sim_sb *b, const sim_group *g)
{
    const char *desc = sim_json_str(g->obj, "description");
    sb_puts(b, "{\"id\":");
    sb_json_str(b, g->id);
    sb_puts(b, ",\"name\":");
    sb_json_str(b, sim_json_str(g->obj, "name"));
    if (desc) {
        sb_puts(b, ",\"description\":");
        sb_json_str(b, desc);
    }
    sb_printf(b,
              ",\"memberCount\":%zu,\"state\":\"active\",\"version\":1,\"type\":\"official\","
              "\"rulesVisible\":true,\"visibility\":\"public\",\"rolesEnabled\":true,\"selfUri\":",
              g->nmembers);
    sb_json_uri(b, "/api/v2/groups/", g->id);
    sb_putc(b, '}');
}

static void groups_list(sim_req *rq, sim_reply *rp, char **p)
{
    (void)p;
    long size, num;
    if (!paging(rq, rp, &size, &num))
        return;
    char **ids = NULL;
    size_t nids = req_arg_list(rq, "id", &ids);
    sim_rdlock(rq);
    sim_tenant *t = rq->ctx->t;
    size_t start = (size_t)(num - 1) * (size_t)size, total = 0, emitted = 0;
    ok(rp, 200);
    sb_puts(&rp->body, "{\"entities\":[");
    for (size_t i = 0; i < t->ngroups; i++) {
        if (nids && !list_has(ids, nids, t->groups[i]->id, false))
            continue;
        if (total >= start && emitted < (size_t)size) {
            if (emitted++)
                sb_putc(&rp->body, ',');
            group_json(&rp->body, t->groups[i]);
        }
        total++;
    }
    sim_rdunlock(rq);
    envelope_end(&rp->body, rq, size, num, total, true);
    sim_free_list(ids, nids);
}

static void group_get(sim_req *rq, sim_reply *rp, char **p)
{
    sim_rdlock(rq);
    sim_group *g = find_group_or_404(rq, rp, p[0]);
    if (g) {
        ok(rp, 200);
        group_json(&rp->body, g);
    }
    sim_rdunlock(rq);
}

static void group_members(sim_req *rq, sim_reply *rp, char **p)
{
    long size, num;
    if (!paging(rq, rp, &size, &num))
        return;
    bool auth = want_expand(rq, "authorization");
    sim_rdlock(rq);
    sim_group *g = find_group_or_404(rq, rp, p[0]);
    if (g) {
        ok(rp, 200);
        sb_puts(&rp->body, "{\"entities\":[");
        size_t start = (size_t)(num - 1) * (size_t)size;
        for (size_t i = start; i < g->nmembers && i < start + (size_t)size; i++) {
            if (i > start)
                sb_putc(&rp->body, ',');
            user_json(&rp->body, g->members[i], auth);
        }
        envelope_end(&rp->body, rq, size, num, g->nmembers, true);
    }
    sim_rdunlock(rq);
}

/* ---- routing -------------------------------------------------------------------------------- */

#define SUBJ "/api/v2/authorization/subjects/{id}"
#define MAXP 3 /* route parameters at most */

static const struct {
    const char *method;
    const char *pattern;
    route_fn fn;
} routes[] = {
    {"GET", ROLES, roles_list},
    {"POST", ROLES, role_create},
    {"POST", ROLES "/default", roles_default_post},
    {"PUT", ROLES "/default", roles_default_put},
    {"GET", ROLES "/settings", settings_get},
    {"PUT", ROLES "/settings", settings_put},
    {"GET", ROLES "/{id}", role_get},
    {"PUT", ROLES "/{id}", role_put},
    {"PATCH", ROLES "/{id}", role_patch},
    {"DELETE", ROLES "/{id}", role_delete},
    {"POST", ROLES "/{id}", role_bulk_grant},
    {"GET", ROLES "/{id}/users", role_users},
    {"GET", ROLES "/{id}/subjectgrants", role_subjectgrants},
    {"PUT", ROLES "/{id}/users/add", role_users_add},
    {"PUT", ROLES "/{id}/users/remove", role_users_remove},
    {"GET", ROLES "/{leftRoleId}/comparedefault/{rightRoleId}", compare_get},
    {"POST", ROLES "/{leftRoleId}/comparedefault/{rightRoleId}", compare_post},
    {"GET", "/api/v2/authorization/products", products},
    {"GET", "/api/v2/authorization/permissions", permissions},
    {"GET", "/api/v2/authorization/divisions/home", division_home},
    {"GET", "/api/v2/authorization/divisions", divisions_list},
    {"GET", "/api/v2/authorization/divisions/{id}", division_get},
    {"GET", SUBJ, subject_get},
    {"POST", SUBJ "/bulkadd", subject_bulkadd},
    {"POST", SUBJ "/bulkremove", subject_bulkremove},
    {"POST", SUBJ "/bulkreplace", subject_bulkreplace},
    {"POST", SUBJ "/divisions/{divisionId}/roles/{roleId}", subject_grant_post},
    {"DELETE", SUBJ "/divisions/{divisionId}/roles/{roleId}", subject_grant_delete},
    {"GET", "/api/v2/groups", groups_list},
    {"GET", "/api/v2/groups/{id}", group_get},
    {"GET", "/api/v2/groups/{id}/members", group_members},
    {"GET", "/api/v2/users", users_list},
    {"GET", "/api/v2/users/query", users_query},
    {"GET", "/api/v2/users/{id}", user_get},
    {"GET", "/api/v2/users/{id}/roles", user_roles_get},
    {"PUT", "/api/v2/users/{id}/roles", user_roles_put},
    {"DELETE", "/api/v2/users/{id}/roles", user_roles_delete},
};

static void free_params(char **params)
{
    for (int k = 0; k < MAXP; k++) {
        free(params[k]);
        params[k] = NULL;
    }
}

/* Index of the route for method+path, -1 none, -2 path known but not for this method. */
static int find_route(const char *method, const char *path, char **params)
{
    bool path_known = false;
    for (size_t i = 0; i < UTIL_ARRAY_LEN(routes); i++) {
        if (!sim_path_match(routes[i].pattern, path, false, params, MAXP))
            continue;
        if (strcmp(routes[i].method, method) == 0)
            return (int)i;
        path_known = true;
        free_params(params);
    }
    return path_known ? -2 : -1;
}

const char *genesys_template(const char *method, const char *path)
{
    char *params[MAXP] = {NULL};
    int i = find_route(method, path, params);
    free_params(params);
    return i >= 0 ? routes[i].pattern : "(unmatched)";
}

void genesys_route(sim_req *rq, sim_reply *rp)
{
    char *params[MAXP] = {NULL};
    int i = find_route(rq->method, rq->path, params);
    if (i >= 0)
        routes[i].fn(rq, rp, params);
    else if (i == -2)
        genesys_error(rq, rp, 405, "method.not.allowed", "HTTP method %s is not supported here",
                      rq->method);
    else
        genesys_error(rq, rp, 404, "not.found", "Resource not found: %s", rq->path);
    free_params(params);
}
