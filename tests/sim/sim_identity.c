/* sim_identity.c — the AVEVA CONNECT / OCS Identity API surface of tenantsim: tenant roles,
 * users and user-role assignment under /api/v1/Tenants/{tenantId} (api/identity.md,
 * simulator.md §3).
 *
 * ASSUME decisions taken here (api/identity.md §10): count 0..max (default 1000, --max-page-size),
 * negative skip/count -> 400; insertion order; Total-Count on every list GET and HEAD; PUT or
 * DELETE on a built-in role -> 405; body Id != path Id -> 400; names unique case-insensitively;
 * PUT user roles reads only Id, unknown Id -> 400, Tenant Member first then body order without
 * duplicates. Path segments (Tenants, Roles, Users, users) match case-insensitively.
 *
 * --read-only-region (simulator.md §3b, api/identity.md §8 and §12): every POST, PUT, PATCH and
 * DELETE under .../Tenants/{id}/Users and .../Roles answers 405 with an ErrorResponse, whatever
 * the rest of the path, before the tenant or the route is looked at (a regional host holds
 * read-only replicas and knows no writes); reads are served as usual.
 */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef void (*route_fn)(sim_req *rq, sim_reply *rp, char **p);

#define BAD_REQ "The request is not valid."
#define FIX_REQ "Correct the request and try again."

static void ok(sim_reply *rp, unsigned status)
{
    rp->status = status;
    rp->has_body = status != 204;
    rp->body.len = 0;
}

static void total_count(sim_reply *rp, size_t n)
{
    char v[32];
    snprintf(v, sizeof v, "%zu", n);
    reply_header(rp, "Total-Count", v);
}

static size_t utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

/* skip/count with defaults 0/100; false (and a 400 reply) when invalid. */
static bool window(sim_req *rq, sim_reply *rp, size_t *skip, size_t *count)
{
    long long v;
    const char *s = req_arg(rq, "skip");
    *skip = 0;
    *count = 100;
    if (s) {
        if (!sim_parse_int(s, &v) || v < 0) {
            identity_error(rq, rp, 400, BAD_REQ, "skip must be a non-negative integer.", FIX_REQ);
            return false;
        }
        *skip = (size_t)v;
    }
    s = req_arg(rq, "count");
    if (s) {
        if (!sim_parse_int(s, &v) || v < 0) {
            identity_error(rq, rp, 400, BAD_REQ, "count must be a non-negative integer.", FIX_REQ);
            return false;
        }
        if (v > rq->ctx->max_page) {
            char reason[96];
            snprintf(reason, sizeof reason, "count must not exceed %ld.", rq->ctx->max_page);
            identity_error(rq, rp, 400, BAD_REQ, reason, FIX_REQ);
            return false;
        }
        *count = (size_t)v;
    }
    return true;
}

static void not_found(sim_req *rq, sim_reply *rp, const char *what, const char *id)
{
    char reason[256];
    snprintf(reason, sizeof reason, "The %s with Id '%.100s' was not found.", what, id);
    identity_error(rq, rp, 404, "The resource was not found.", reason,
                   "Check the identifier and try again.");
}

static sim_role *find_role_or_404(sim_req *rq, sim_reply *rp, const char *id)
{
    sim_role *r = sim_role_find(rq->ctx->t, id);
    if (!r)
        not_found(rq, rp, "role", id);
    return r;
}

static sim_user *find_user_or_404(sim_req *rq, sim_reply *rp, const char *id)
{
    sim_user *u = sim_user_find(rq->ctx->t, id);
    if (!u)
        not_found(rq, rp, "user", id);
    return u;
}

static void user_json(sim_sb *b, const sim_user *u)
{
    sb_putn(b, u->api, u->api_len);
    sb_puts(b, u->api_len > 1 ? ",\"RoleIds\":[" : "\"RoleIds\":[");
    for (size_t i = 0; i < u->nroles; i++) {
        if (i)
            sb_putc(b, ',');
        sb_json_str(b, u->roles[i]->id);
    }
    sb_puts(b, "]}");
}

static json_object *body_json(sim_req *rq, sim_reply *rp)
{
    json_object *o = sim_json_parse(rq->body, rq->body_len);
    if (!o)
        identity_error(rq, rp, 400, BAD_REQ, "The request body is not valid JSON.", FIX_REQ);
    return o;
}

/* ---- roles ---------------------------------------------------------------------------------- */

static void roles_list(sim_req *rq, sim_reply *rp, char **p)
{
    (void)p;
    size_t skip, count;
    if (!window(rq, rp, &skip, &count))
        return;
    const char *rt = req_arg(rq, "roleTypeId");
    if (rt && !*rt)
        rt = NULL;
    ok(rp, 200);
    sb_putc(&rp->body, '[');
    sim_rdlock(rq);
    sim_tenant *t = rq->ctx->t;
    size_t total = 0, emitted = 0;
    for (size_t i = 0; i < t->nroles; i++) {
        sim_role *r = t->roles[i];
        if (rt && !(r->kind && strcasecmp(r->kind, rt) == 0))
            continue;
        if (total >= skip && emitted < count && !rq->head) {
            if (emitted++)
                sb_putc(&rp->body, ',');
            sim_role_json(&rp->body, r, false);
        }
        total++;
    }
    sim_rdunlock(rq);
    sb_putc(&rp->body, ']');
    total_count(rp, total);
}

static void role_get(sim_req *rq, sim_reply *rp, char **p)
{
    sim_rdlock(rq);
    sim_role *r = find_role_or_404(rq, rp, p[1]);
    if (r) {
        ok(rp, 200);
        sim_role_json(&rp->body, r, false);
    }
    sim_rdunlock(rq);
}

/* Validate Name/Description/RoleScope/RoleTypeId/CommunityId of a role body. */
static bool role_fields_ok(sim_req *rq, sim_reply *rp, json_object *o, bool name_required)
{
    if (!json_object_is_type(o, json_type_object)) {
        identity_error(rq, rp, 400, BAD_REQ, "The role must be a JSON object.", FIX_REQ);
        return false;
    }
    json_object *v;
    const char *name = sim_json_str(o, "Name");
    bool has_name = json_object_object_get_ex(o, "Name", &v) && v;
    if (has_name && (!name || utf8_len(name) < 1 || utf8_len(name) > 128)) {
        identity_error(rq, rp, 400, BAD_REQ, "Name must be between 1 and 128 characters.", FIX_REQ);
        return false;
    }
    if (!has_name && name_required) {
        identity_error(rq, rp, 400, BAD_REQ, "Name is required.", FIX_REQ);
        return false;
    }
    if (json_object_object_get_ex(o, "Description", &v) && v &&
        (!json_object_is_type(v, json_type_string) || utf8_len(json_object_get_string(v)) > 128)) {
        identity_error(rq, rp, 400, BAD_REQ, "Description must be at most 128 characters.",
                       FIX_REQ);
        return false;
    }
    if (json_object_object_get_ex(o, "RoleScope", &v) && v &&
        !(json_object_is_type(v, json_type_int) && json_object_get_int(v) == 1)) {
        identity_error(rq, rp, 400, BAD_REQ, "Only tenant roles (RoleScope 1) can be managed.",
                       FIX_REQ);
        return false;
    }
    if (json_object_object_get_ex(o, "RoleTypeId", &v) && v) {
        identity_error(rq, rp, 400, BAD_REQ, "RoleTypeId must be null for custom roles.", FIX_REQ);
        return false;
    }
    if (json_object_object_get_ex(o, "CommunityId", &v) && v) {
        identity_error(rq, rp, 400, BAD_REQ, "CommunityId must be null for tenant roles.", FIX_REQ);
        return false;
    }
    if (json_object_object_get_ex(o, "Id", &v) && v && !json_object_is_type(v, json_type_string)) {
        identity_error(rq, rp, 400, BAD_REQ, "Id must be a string.", FIX_REQ);
        return false;
    }
    return true;
}

static bool same_text(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static void role_create(sim_req *rq, sim_reply *rp, char **p)
{
    json_object *o = body_json(rq, rp);
    if (!o)
        return;
    sim_wrlock(rq);
    sim_tenant *t = rq->ctx->t;
    if (!role_fields_ok(rq, rp, o, true))
        goto out;
    const char *name = sim_json_str(o, "Name");
    const char *desc = sim_json_str(o, "Description");
    const char *bid = sim_json_str(o, "Id");
    sim_role *ex = sim_role_find_name(t, name);
    if (!ex && bid)
        ex = sim_role_find(t, bid);
    if (ex) {
        const char *edesc = sim_json_str(ex->obj, "Description");
        if (strcmp(ex->name, name) == 0 && same_text(edesc, desc) && !ex->kind) {
            /* the id percent-encoded, as any id in a path */
            char *tenc = util_pct_encode(p[0]), *ienc = util_pct_encode(ex->id);
            char *loc = xasprintf("/api/v1/Tenants/%s/Roles/%s", tenc, ienc);
            rp->status = 302;
            rp->has_body = false;
            reply_header(rp, "Location", loc);
            free(loc);
            free(tenc);
            free(ienc);
        } else {
            identity_error(rq, rp, 409, "The role conflicts with an existing role.",
                           "A role with the same Name or Id but different values exists.",
                           "Use a different Name, or update the existing role.");
        }
        goto out;
    }
    char id[37];
    sim_guid(id);
    json_object *r = json_object_new_object();
    json_object_object_add(r, "Id", json_object_new_string(id));
    json_object_object_add(r, "Name", json_object_new_string(name));
    json_object_object_add(r, "Description", desc ? json_object_new_string(desc) : NULL);
    json_object_object_add(r, "RoleScope", json_object_new_int(1));
    json_object_object_add(r, "TenantId", json_object_new_string(t->tenant_id));
    json_object_object_add(r, "CommunityId", NULL);
    json_object_object_add(r, "RoleTypeId", NULL);
    sim_role *nr = sim_role_add(t, r);
    ok(rp, 201);
    sim_role_json(&rp->body, nr, false);
    char loc[256];
    snprintf(loc, sizeof loc, "/api/v1/Tenants/%s/Roles/%s", p[0], nr->id);
    reply_header(rp, "Location", loc);
out:
    sim_wrunlock(rq);
    json_object_put(o);
}

static void builtin_405(sim_req *rq, sim_reply *rp)
{
    identity_error(rq, rp, 405, "The operation is not allowed.",
                   "Built-in roles cannot be changed or deleted.",
                   "Only custom roles can be changed or deleted.");
}

static void role_put(sim_req *rq, sim_reply *rp, char **p)
{
    json_object *o = body_json(rq, rp);
    if (!o)
        return;
    sim_wrlock(rq);
    sim_tenant *t = rq->ctx->t;
    sim_role *r = find_role_or_404(rq, rp, p[1]);
    if (!r)
        goto out;
    if (r->kind) {
        builtin_405(rq, rp);
        goto out;
    }
    if (!role_fields_ok(rq, rp, o, false))
        goto out;
    const char *bid = sim_json_str(o, "Id");
    if (bid && strcasecmp(bid, r->id) != 0) {
        identity_error(rq, rp, 400, BAD_REQ, "The Id in the body does not match the Id in the URL.",
                       FIX_REQ);
        goto out;
    }
    const char *name = sim_json_str(o, "Name");
    sim_role *other = name ? sim_role_find_name(t, name) : NULL;
    if (other && other != r) {
        identity_error(rq, rp, 409, "The role conflicts with an existing role.",
                       "Another role already has this Name.", "Use a different Name.");
        goto out;
    }
    json_object *v;
    if (name && strcmp(name, r->name) != 0)
        sim_role_set_name(t, r, name);
    if (json_object_object_get_ex(o, "Description", &v))
        json_object_object_add(r->obj, "Description", v ? json_object_get(v) : NULL);
    sim_role_refresh(t, r);
    ok(rp, 200);
    sim_role_json(&rp->body, r, false);
out:
    sim_wrunlock(rq);
    json_object_put(o);
}

static void role_delete(sim_req *rq, sim_reply *rp, char **p)
{
    sim_wrlock(rq);
    sim_role *r = find_role_or_404(rq, rp, p[1]);
    if (r && r->kind) {
        builtin_405(rq, rp);
    } else if (r) {
        sim_role_remove(rq->ctx->t, r);
        ok(rp, 204);
    }
    sim_wrunlock(rq);
}

static void role_users(sim_req *rq, sim_reply *rp, char **p)
{
    size_t skip, count;
    if (!window(rq, rp, &skip, &count))
        return;
    sim_rdlock(rq);
    sim_tenant *t = rq->ctx->t;
    sim_role *r = find_role_or_404(rq, rp, p[1]);
    if (r) {
        ok(rp, 200);
        sb_putc(&rp->body, '[');
        size_t total = 0, emitted = 0;
        for (size_t i = 0; i < t->nusers; i++) {
            if (!sim_user_has_role(t->users[i], r))
                continue;
            if (total >= skip && emitted < count && !rq->head) {
                if (emitted++)
                    sb_putc(&rp->body, ',');
                user_json(&rp->body, t->users[i]);
            }
            total++;
        }
        sb_putc(&rp->body, ']');
        total_count(rp, total);
    }
    sim_rdunlock(rq);
}

/* ---- users ---------------------------------------------------------------------------------- */

static void users_list(sim_req *rq, sim_reply *rp, char **p)
{
    (void)p;
    size_t skip, count;
    if (!window(rq, rp, &skip, &count))
        return;
    char **ids = NULL;
    size_t nids = req_arg_list(rq, "id", &ids);
    ok(rp, 200);
    sim_sb *b = &rp->body;
    sim_rdlock(rq);
    sim_tenant *t = rq->ctx->t;
    if (nids) {
        /* By id: skip/count do not apply; unknown ids make it a 207 multi-status. */
        size_t found = 0, missing = 0;
        sim_sb data = {0}, errs = {0};
        for (size_t i = 0; i < nids; i++) {
            sim_user *u = sim_user_find(t, ids[i]);
            if (u) {
                if (found++)
                    sb_putc(&data, ',');
                user_json(&data, u);
            } else {
                char op[37];
                sim_guid(op);
                if (missing++)
                    sb_putc(&errs, ',');
                sb_printf(&errs,
                          "{\"OperationId\":\"%s\",\"Error\":\"The user was not found.\","
                          "\"Reason\":\"No user with this Id exists in the tenant.\","
                          "\"Resolution\":\"Check the Id.\",\"StatusCode\":404,\"ModelId\":",
                          op);
                sb_json_str(&errs, ids[i]);
                sb_putc(&errs, '}');
            }
        }
        if (missing) {
            rp->status = 207;
            sb_printf(b,
                      "{\"OperationId\":\"%s\",\"Error\":\"Some users were not found.\","
                      "\"Reason\":\"%zu of %zu requested users do not exist.\",\"ChildErrors\":[",
                      rq->corr_id, missing, nids);
            if (errs.buf)
                sb_puts(b, errs.buf);
            sb_puts(b, "],\"Data\":[");
            if (data.buf)
                sb_puts(b, data.buf);
            sb_puts(b, "]}");
        } else {
            sb_putc(b, '[');
            if (data.buf && !rq->head)
                sb_puts(b, data.buf);
            sb_putc(b, ']');
        }
        sb_free(&data);
        sb_free(&errs);
        total_count(rp, found);
    } else {
        sb_putc(b, '[');
        for (size_t i = skip, e = 0; i < t->nusers && e < count && !rq->head; i++, e++) {
            if (e)
                sb_putc(b, ',');
            user_json(b, t->users[i]);
        }
        sb_putc(b, ']');
        total_count(rp, t->nusers);
    }
    sim_rdunlock(rq);
    sim_free_list(ids, nids);
}

static void user_get(sim_req *rq, sim_reply *rp, char **p)
{
    sim_rdlock(rq);
    sim_user *u = find_user_or_404(rq, rp, p[1]);
    if (u) {
        ok(rp, 200);
        user_json(&rp->body, u);
    }
    sim_rdunlock(rq);
}

static void user_roles_get(sim_req *rq, sim_reply *rp, char **p)
{
    size_t skip, count;
    if (!window(rq, rp, &skip, &count))
        return;
    sim_rdlock(rq);
    sim_user *u = find_user_or_404(rq, rp, p[1]);
    if (u) {
        ok(rp, 200);
        sb_putc(&rp->body, '[');
        for (size_t i = skip, e = 0; i < u->nroles && e < count && !rq->head; i++, e++) {
            if (e)
                sb_putc(&rp->body, ',');
            sim_role_json(&rp->body, u->roles[i], false);
        }
        sb_putc(&rp->body, ']');
        total_count(rp, u->nroles);
    }
    sim_rdunlock(rq);
}

static void user_roles_put(sim_req *rq, sim_reply *rp, char **p)
{
    json_object *o = body_json(rq, rp);
    if (!o)
        return;
    sim_wrlock(rq);
    sim_tenant *t = rq->ctx->t;
    sim_user *u = find_user_or_404(rq, rp, p[1]);
    if (!u)
        goto out;
    if (!json_object_is_type(o, json_type_array)) {
        identity_error(rq, rp, 400, BAD_REQ, "The body must be an array of roles.", FIX_REQ);
        goto out;
    }
    size_t n = json_object_array_length(o);
    sim_role **want = xcalloc(n + 1, sizeof *want);
    for (size_t i = 0; i < n; i++) {
        const char *id = sim_json_str(json_object_array_get_idx(o, i), "Id");
        if (!id) {
            identity_error(rq, rp, 400, BAD_REQ, "Every role needs an Id.", FIX_REQ);
            free(want);
            goto out;
        }
        want[i] = sim_role_find(t, id);
        if (!want[i]) {
            char reason[200];
            snprintf(reason, sizeof reason, "The role with Id '%.100s' does not exist.", id);
            identity_error(rq, rp, 400, BAD_REQ, reason, FIX_REQ);
            free(want);
            goto out;
        }
    }
    sim_user_clear_roles(u);
    if (t->keeper)
        sim_user_add_role(u, t->keeper);
    for (size_t i = 0; i < n; i++)
        sim_user_add_role(u, want[i]); /* ignores duplicates */
    free(want);
    ok(rp, 200);
    sb_putc(&rp->body, '[');
    for (size_t i = 0; i < u->nroles; i++) {
        if (i)
            sb_putc(&rp->body, ',');
        sim_role_json(&rp->body, u->roles[i], false);
    }
    sb_putc(&rp->body, ']');
out:
    sim_wrunlock(rq);
    json_object_put(o);
}

/* ---- routing -------------------------------------------------------------------------------- */

#define T "/api/v1/Tenants/{tenantId}"

static const struct {
    const char *method;
    const char *pattern;
    route_fn fn;
} routes[] = {
    {"GET", T "/Roles", roles_list},
    {"HEAD", T "/Roles", roles_list},
    {"POST", T "/Roles", role_create},
    {"GET", T "/Roles/{id}", role_get},
    {"HEAD", T "/Roles/{id}", role_get},
    {"PUT", T "/Roles/{id}", role_put},
    {"DELETE", T "/Roles/{id}", role_delete},
    {"GET", T "/Roles/{id}/users", role_users},
    {"HEAD", T "/Roles/{id}/users", role_users},
    {"GET", T "/Users", users_list},
    {"HEAD", T "/Users", users_list},
    {"GET", T "/Users/{id}", user_get},
    {"HEAD", T "/Users/{id}", user_get},
    {"GET", T "/Users/{id}/Roles", user_roles_get},
    {"HEAD", T "/Users/{id}/Roles", user_roles_get},
    {"PUT", T "/Users/{id}/Roles", user_roles_put},
};

static int find_route(const char *method, const char *path, char **params)
{
    bool path_known = false;
    for (size_t i = 0; i < UTIL_ARRAY_LEN(routes); i++) {
        if (!sim_path_match(routes[i].pattern, path, true, params, 2))
            continue;
        if (strcmp(routes[i].method, method) == 0)
            return (int)i;
        path_known = true;
        for (int k = 0; k < 2; k++) {
            free(params[k]);
            params[k] = NULL;
        }
    }
    return path_known ? -2 : -1;
}

const char *identity_template(const char *method, const char *path)
{
    char *params[2] = {NULL, NULL};
    int i = find_route(method, path, params);
    free(params[0]);
    free(params[1]);
    return i >= 0 ? routes[i].pattern : "(unmatched)";
}

static bool segment_is(const char *s, const char *seg)
{
    size_t n = strlen(seg);
    return strncasecmp(s, seg, n) == 0 && (s[n] == '\0' || s[n] == '/');
}

/* Is this a write a regional (read-only) host refuses: POST/PUT/PATCH/DELETE on Users or Roles
 * of a tenant? */
static bool regional_write(const sim_req *rq)
{
    static const char prefix[] = "/api/v1/Tenants/";
    if (!rq->is_write || strncasecmp(rq->path, prefix, sizeof prefix - 1) != 0)
        return false;
    const char *rest = strchr(rq->path + sizeof prefix - 1, '/');
    return rest && (segment_is(rest + 1, "Users") || segment_is(rest + 1, "Roles"));
}

void identity_route(sim_req *rq, sim_reply *rp)
{
    if (rq->ctx->read_only_region && regional_write(rq)) {
        identity_error(rq, rp, 405, "Method not allowed at this base URL.",
                       "This region holds a read-only replica of the tenant's users and roles.",
                       "Retry at the global base URL (https://uswe.datahub.connect.aveva.com).");
        return;
    }
    char *params[2] = {NULL, NULL};
    int i = find_route(rq->method, rq->path, params);
    if (i >= 0) {
        sim_rdlock(rq);
        bool tenant_ok = strcasecmp(params[0], rq->ctx->t->tenant_id) == 0;
        sim_rdunlock(rq);
        if (tenant_ok)
            routes[i].fn(rq, rp, params);
        else
            not_found(rq, rp, "tenant", params[0]);
    } else if (i == -2) {
        identity_error(rq, rp, 405, "The operation is not allowed.",
                       "This HTTP method is not supported for this resource.",
                       "Use a supported method.");
    } else {
        identity_error(rq, rp, 404, "The resource was not found.", "Unknown path.",
                       "Check the request URL.");
    }
    free(params[0]);
    free(params[1]);
}
