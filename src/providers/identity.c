/* identity.c — the AVEVA CONNECT / OCS Identity API provider (api/identity.md): URLs, paging. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rolesync/provider.h"
#include "providers/identity_json.h"
#include "providers/internal.h"
#include "rolesync/util.h"

/* "/api/v1/Tenants/{tenantId}" (tenant id percent-encoded). Caller frees. */
static char *tenant_base(const struct prov_tenant *t)
{
    char *tid = util_pct_encode(t->cfg->tenant_id ? t->cfg->tenant_id : "");
    char *base = xasprintf("/api/v1/Tenants/%s", tid);
    free(tid);
    return base;
}

/* Where Users and Roles writes go: "{write_base_url}/api/v1/Tenants/{tenantId}" when the
 * tenant names a write host (product.md 4b.2: regional hosts are read-only replicas that answer
 * 405), else tenant_base (relative to base_url). Caller frees. */
static char *write_base(const struct prov_tenant *t)
{
    char *base = tenant_base(t);
    if (!t->cfg->write_base_url)
        return base;
    char *abs = xasprintf("%s%s", t->cfg->write_base_url, base);
    free(base);
    return abs;
}

/* The 405 of a write: what it means on this platform, and the key that fixes it. */
#define HINT_REGIONAL                                                                              \
    "identity takes Users and Roles writes only on its global (US-West) host; regional hosts "     \
    "are read-only: set write_base_url: https://uswe.datahub.connect.aveva.com on this tenant"
#define HINT_NAMED "the write_base_url host refused the write too"

static const struct prov_submit_opts WRITE_OPTS[2][2] = {
    {{.hint_405 = HINT_REGIONAL}, {.hint_405 = HINT_NAMED}},
    {{.accept_status = 302, .hint_405 = HINT_REGIONAL},
     {.accept_status = 302, .hint_405 = HINT_NAMED}},
};

static const struct prov_submit_opts *write_opts(const struct prov_tenant *t, bool accept_302)
{
    return &WRITE_OPTS[accept_302][t->cfg->write_base_url != NULL];
}

/* ---- reads ---- */

static void roles_page(struct prov_page *pg, const struct http_result *res);
static void users_page(struct prov_page *pg, const struct http_result *res);

static void *users_prepare(const char *body, size_t len)
{
    return ijs_users_prepare(body, len);
}

static void users_discard(void *p)
{
    ijs_users_discard(p);
}

/* Users pages are parsed off the loop (provider.h, struct prov_page_parser). */
static const struct prov_page_parser users_parser = {users_prepare, users_discard};

static unsigned page_size(const struct prov_fetch *f, const struct prov_listing *l)
{
    return l == &f->roles ? f->t.cfg->page_size_roles : f->t.cfg->page_size_users;
}

static void request_page(struct prov_fetch *f, struct prov_listing *l, unsigned index)
{
    unsigned count = page_size(f, l);
    char *base = tenant_base(&f->t);
    char *path = xasprintf("%s/%s?skip=%llu&count=%u", base, l == &f->roles ? "Roles" : "Users",
                           (unsigned long long)index * count, count);
    if (l == &f->roles)
        prov_fetch_page(f, l, index, path, NULL, roles_page);
    else
        prov_fetch_page(f, l, index, path, &users_parser, users_page);
    free(path);
    free(base);
}

/* Page 0 carries Total-Count: the remaining pages are requested at once, and each must hold
 * what the count implies (prov_page_count_ok). The count is not trusted for the end either
 * (identity.md: page until a short page): when it is a multiple of the page size the last
 * page is full, so one more page is read, which must be empty. Without the header (the docs do
 * not promise it everywhere) pages are read one after the other until a short one. */
static void account_page(struct prov_page *pg, const struct http_result *res, size_t count)
{
    struct prov_fetch *f = pg->f;
    struct prov_listing *l = pg->l;
    unsigned size = page_size(f, l);
    const char *tc = http_result_header(res, "Total-Count");
    uint64_t total = 0;
    char err[256];
    bool have_total = false;

    if (tc) {
        if (ijs_parse_total_count(tc, &total, err, sizeof err) != 0) {
            prov_fetch_fail(f, false, "GET %s: Total-Count: %s", res->path, err);
            return;
        }
        have_total = true;
    }
    if (count > size) {
        prov_fetch_fail(f, false, "GET %s: %zu %s in a page of %u", res->path, count, l->what,
                        size);
        return;
    }
    l->seen += count;
    if (pg->number == 0) {
        if (have_total && total > PROV_MAX_ENTITIES) {
            prov_fetch_fail(f, false, "GET %s: Total-Count %llu exceeds the limit of %d %s",
                            res->path, (unsigned long long)total, PROV_MAX_ENTITIES, l->what);
            return;
        }
        if (have_total && total > count && count < size) {
            /* A short first page of a longer listing: the pages would not add up. */
            prov_fetch_fail(f, false, "GET %s: %zu %s on the first page but Total-Count %llu",
                            res->path, count, l->what, (unsigned long long)total);
            return;
        }
        l->started = true;
        l->total = have_total ? (int64_t)total : -1;
        if (have_total) {
            /* The remaining pages, a window at a time (prov_fetch_more). */
            l->page_size = size;
            l->next = 1;
            l->end = (unsigned)((total + size - 1) / size);
            if (total > 0 && total % size == 0)
                l->end++; /* the empty page that shows the last full one was the last */
            (void)prov_page_count_ok(f, l, 0, count, res->path); /* fails the read if not */
            return;
        }
    } else if (have_total && l->total >= 0 && (int64_t)total != l->total) {
        prov_fetch_fail(f, false,
                        "GET %s: %s listing changed while it was read: Total-Count %lld, then %llu",
                        res->path, l->what, (long long)l->total, (unsigned long long)total);
        return;
    } else if (!prov_page_count_ok(f, l, pg->number, count, res->path)) {
        return;
    }
    if (l->total < 0 && count == size)
        request_page(f, l, pg->number + 1);
}

static void roles_page(struct prov_page *pg, const struct http_result *res)
{
    size_t count;
    char err[512];
    if (ijs_parse_roles_page(pg->f->snap, res->body, res->body_len, &count, err, sizeof err) != 0)
        prov_fetch_fail(pg->f, false, "GET %s: %s", res->path, err);
    else
        account_page(pg, res, count);
}

static void users_page(struct prov_page *pg, const struct http_result *res)
{
    size_t count;
    char err[512];
    if (ijs_users_commit(pg->prepared, pg->f->snap, pg->f->refs, &count, err, sizeof err) != 0)
        prov_fetch_fail(pg->f, false, "GET %s: %s", res->path, err);
    else
        account_page(pg, res, count);
}

static struct prov_fetch *identity_fetch(const struct prov_tenant *t,
                                         const struct prov_fetch_opts *o, prov_fetch_cb cb,
                                         void *arg)
{
    /* No licensing concept on this platform. A user's RoleIds are its grants (the tenant has
     * no qualifiers), so the second step of a two-step read reads nothing more. */
    struct prov_fetch *f = prov_fetch_new(t, CFG_API_IDENTITY, cb, arg);
    f->roles.request = f->users.request = request_page;
    f->grants_wait = true;
    f->roles_read = o ? o->roles_read : NULL;
    f->roles_read_arg = o ? o->roles_read_arg : NULL;
    request_page(f, &f->roles, 0);
    request_page(f, &f->users, 0);
    return f;
}

/* ---- writes ---- */

static void on_role_reply(struct prov_tenant_req *req, const struct http_result *res)
{
    char err[512];
    if (res->status == 302) {
        /* A role with this name and the same values exists already: take its id. */
        const char *loc = http_result_header(res, "Location");
        req->id = loc ? ijs_role_id_from_location(loc, err, sizeof err) : NULL;
        if (!req->id)
            req->parse_error = xstrdup(loc ? err : "302 without a Location header");
        return;
    }
    struct pjson_role r;
    if (ijs_parse_role(res->body, res->body_len, &r, err, sizeof err) != 0) {
        req->parse_error = xstrdup(err);
        return;
    }
    req->id = r.id;
    r.id = NULL;
    pjson_role_free(&r);
}

static void identity_role_create(const struct prov_tenant *t, const struct mdl_role *src,
                                 const char *name, prov_done_cb cb, void *arg)
{
    char err[256];
    char *base = write_base(t);
    char *path = xasprintf("%s/Roles", base);
    char *body = ijs_build_role_create(name, src->description, err, sizeof err);
    if (!body)
        prov_fail_later(t, "role create", "POST", path, err, cb, arg);
    else
        /* 302 + Location: an identical role exists already (api/identity.md section 9) */
        prov_submit_opts(t, "role create", "POST", path, body, write_opts(t, true), on_role_reply,
                         cb, arg);
    free(body);
    free(path);
    free(base);
}

/* "{base}/{coll}/{id}{suffix}", or NULL (failure reported) for a bad id. */
static char *item_path(const struct prov_tenant *t, const char *op, const char *method,
                       const char *coll, const char *id, const char *suffix, prov_done_cb cb,
                       void *arg)
{
    char err[256];
    char *base = write_base(t); /* only writes name single items */
    char *seg = pjson_path_segment(id, err, sizeof err);
    char *path = NULL;
    if (!seg) {
        char *p = xasprintf("%s/%s/?%s", base, coll, suffix);
        prov_fail_later(t, op, method, p, err, cb, arg);
        free(p);
    } else {
        path = xasprintf("%s/%s/%s%s", base, coll, seg, suffix);
    }
    free(seg);
    free(base);
    return path;
}

static void identity_role_update(const struct prov_tenant *t, const struct mdl_role *src,
                                 const struct mdl_role *tgt, prov_done_cb cb, void *arg)
{
    char err[256];
    char *path = item_path(t, "role update", "PUT", "Roles", tgt->id, "", cb, arg);
    if (!path)
        return;
    char *body = ijs_build_role_update(tgt->id, tgt->name, src->description, err, sizeof err);
    if (!body)
        prov_fail_later(t, "role update", "PUT", path, err, cb, arg);
    else
        prov_submit_opts(t, "role update", "PUT", path, body, write_opts(t, false), on_role_reply,
                         cb, arg);
    free(body);
    free(path);
}

static void identity_role_delete(const struct prov_tenant *t, const struct mdl_role *tgt,
                                 prov_done_cb cb, void *arg)
{
    char *path = item_path(t, "role delete", "DELETE", "Roles", tgt->id, "", cb, arg);
    if (!path)
        return;
    prov_submit_opts(t, "role delete", "DELETE", path, NULL, write_opts(t, false),
                     prov_reply_empty_or_json, cb, arg);
    free(path);
}

/* PUT .../Users/{id}/Roles answers the user's new role set: a reply that does not read as one
 * means the write cannot be trusted to have happened (product.md section 5). Whether the set
 * was kept is the next cycle's read to judge (not-converging memory), like on genesys. */
static void on_user_roles_reply(struct prov_tenant_req *req, const struct http_result *res)
{
    prov_reply_check_ids(req, res, ijs_parse_role_ids);
}

static void identity_user_set_roles(const struct prov_tenant *t, const char *user_id,
                                    const char *const *role_ids, size_t n, prov_done_cb cb,
                                    void *arg)
{
    char *path = item_path(t, "user roles set", "PUT", "Users", user_id, "/Roles", cb, arg);
    if (!path)
        return;
    char *body = ijs_build_user_roles(role_ids, n);
    prov_submit_opts(t, "user roles set", "PUT", path, body, write_opts(t, false),
                     on_user_roles_reply, cb, arg);
    free(body);
    free(path);
}

/* ---- platform facts ---- */

static char *identity_token_url(const char *base)
{
    return xasprintf("%s/identity/connect/token", base);
}

const struct prov_ops prov_identity = {
    .api = CFG_API_IDENTITY,
    .name = "identity",
    .auth = HTTP_AUTH_POST_FORM,
    .correlation_header = "Operation-Id",
    .token_url = identity_token_url,
    .page_size_roles = 1000,
    .page_size_users = 1000,
    .page_size_max = 1000, /* `count` above 1000 is a 400 */
    .match_by = PROV_MATCH(CFG_MATCH_EMAIL) | PROV_MATCH(CFG_MATCH_EXTERNAL_ID),
    .match_by_names = "email, external_id",
    .caps = 0, /* one PUT of a user's whole role set; built-ins are never written */
    .error_message = ijs_error_line,
    .rate_window = NULL, /* no published limit, no advertised window */
    .parse_error = ijs_parse_error,
    .fetch = identity_fetch,
    .role_create = identity_role_create,
    .role_update = identity_role_update,
    .role_delete = identity_role_delete,
    .grant_users = NULL, /* a user's whole role set is written at once */
    .revoke_users = NULL,
    .user_grants = NULL,
    .user_set_roles = identity_user_set_roles,
};
