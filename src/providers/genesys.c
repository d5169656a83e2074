/* genesys.c — the Genesys Cloud Platform API v2 provider (api/genesys.md): URLs and paging. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rolesync/provider.h"
#include "rolesync/log.h"
#include "providers/genesys_json.h"
#include "providers/internal.h"
#include "rolesync/util.h"

#define GEN_ROLES "/api/v2/authorization/roles"
#define GEN_USERS "/api/v2/users"
#define GEN_PERMS "/api/v2/authorization/permissions"
#define GEN_PERMS_PAGE 100

/* ---- reads ---- */

static void roles_page(struct prov_page *pg, const struct http_result *res);
static void users_page(struct prov_page *pg, const struct http_result *res);
static void perms_page(struct prov_page *pg, const struct http_result *res);

static void *users_prepare(const char *body, size_t len)
{
    return gjs_users_prepare(body, len);
}

static void users_discard(void *p)
{
    gjs_users_discard(p);
}

/* Users pages are parsed off the loop (provider.h, struct prov_page_parser). */
static const struct prov_page_parser users_parser = {users_prepare, users_discard};

static void request_page(struct prov_fetch *f, struct prov_listing *l, unsigned number)
{
    const struct cfg_tenant *c = f->t.cfg;
    char path[256];

    if (l == &f->roles) {
        snprintf(path, sizeof path, GEN_ROLES "?pageSize=%u&pageNumber=%u&userCount=false",
                 c->page_size_roles, number);
        prov_fetch_page(f, l, number, path, NULL, roles_page);
    } else if (l == &f->users) {
        /* state=any: inactive users are matched like active ones; deleted ones are read so the
         * core can ignore them explicitly. expand=authorization brings each user's roles in the
         * same page, so no per-user reads are needed. */
        snprintf(path, sizeof path,
                 GEN_USERS "?pageSize=%u&pageNumber=%u&expand=authorization&state=any",
                 c->page_size_users, number);
        prov_fetch_page(f, l, number, path, &users_parser, users_page);
    } else {
        snprintf(path, sizeof path, GEN_PERMS "?pageSize=%u&pageNumber=%u", GEN_PERMS_PAGE, number);
        prov_fetch_page(f, l, number, path, NULL, perms_page);
    }
}

/* Envelope bookkeeping shared by the three listings: page 1 tells how many pages follow, and
 * those are requested concurrently (a window at a time, see prov_fetch_more); later pages must
 * agree with page 1's total. The envelope must be self-consistent, so a server that claims
 * millions of pages of an empty listing is refused instead of obeyed. */
static void account_page(struct prov_page *pg, const struct gjs_page *page, const char *path)
{
    struct prov_fetch *f = pg->f;
    struct prov_listing *l = pg->l;

    if (page->page_number != pg->number) {
        prov_fetch_fail(f, false, "GET %s: %s page %u asked, the server answered page %u", path,
                        l->what, pg->number, page->page_number);
        return;
    }
    if (pg->number == 1) {
        uint64_t expect =
            page->page_size ? ((uint64_t)page->total + page->page_size - 1) / page->page_size : 0;
        bool empty_ok = page->total == 0 && page->page_count <= 1;
        if (!empty_ok && page->page_count != expect) {
            prov_fetch_fail(f, false,
                            "GET %s: inconsistent %s listing: pageCount %u for total %lld in "
                            "pages of %u",
                            path, l->what, page->page_count, (long long)page->total,
                            page->page_size);
            return;
        }
        if (page->total > PROV_MAX_ENTITIES) {
            prov_fetch_fail(f, false, "GET %s: the %s listing claims %lld entries (limit %d)", path,
                            l->what, (long long)page->total, PROV_MAX_ENTITIES);
            return;
        }
        l->started = true;
        l->total = page->total;
        l->page_size = page->page_size;
        l->next = 2;
        l->end = page->page_count + 1;
    } else if (page->total != l->total) {
        prov_fetch_fail(f, false,
                        "GET %s: %s listing changed while it was read: total %lld on page 1, "
                        "%lld on page %u",
                        path, l->what, (long long)l->total, (long long)page->total, pg->number);
        return;
    }
    if (!prov_page_count_ok(f, l, pg->number - 1, page->entities, path))
        return;
    l->seen += page->entities;
}

static void roles_page(struct prov_page *pg, const struct http_result *res)
{
    struct gjs_page page;
    char err[512];
    if (gjs_parse_roles_page(pg->f->snap, res->body, res->body_len, &page, err, sizeof err) != 0)
        prov_fetch_fail(pg->f, false, "GET %s: %s", res->path, err);
    else
        account_page(pg, &page, res->path);
}

static void users_page(struct prov_page *pg, const struct http_result *res)
{
    struct gjs_page page;
    char err[512];
    if (gjs_users_commit(pg->prepared, pg->f->snap, pg->f->refs, &page, err, sizeof err) != 0)
        prov_fetch_fail(pg->f, false, "GET %s: %s", res->path, err);
    else
        account_page(pg, &page, res->path);
}

static void perms_page(struct prov_page *pg, const struct http_result *res)
{
    struct gjs_page page;
    char err[512];
    if (gjs_parse_permissions_page(pg->f->snap, res->body, res->body_len, &page, err, sizeof err) !=
        0)
        prov_fetch_fail(pg->f, false, "GET %s: %s", res->path, err);
    else
        account_page(pg, &page, res->path);
}

static void genesys_fetch(const struct prov_tenant *t, const struct prov_fetch_opts *o,
                          prov_fetch_cb cb, void *arg)
{
    struct prov_fetch *f = prov_fetch_new(t, CFG_API_GENESYS, cb, arg);
    f->roles.request = f->users.request = f->perms.request = request_page;
    if (!(o && o->licensed_only)) {
        request_page(f, &f->roles, 1);
        request_page(f, &f->users, 1);
    }
    if (o && (o->licensed_domains || o->licensed_only))
        request_page(f, &f->perms, 1);
}

/* ---- writes ---- */

static void on_role_reply(struct prov_tenant_req *req, const struct http_result *res)
{
    struct pjson_role r;
    char err[512];
    if (gjs_parse_role(res->body, res->body_len, &r, err, sizeof err) != 0) {
        req->parse_error = xstrdup(err);
        return;
    }
    /* What the target kept is judged by the next cycle's read (diff memory); the reply only has
     * to be a role, and gives a created role's id. */
    req->id = r.id;
    r.id = NULL;
    pjson_role_free(&r);
}

/* PUT /authorization/roles/{id}/users/add|remove answers the ids it applied; PUT
 * /users/{id}/roles the user's authorization. A 2xx reply that does not read as that cannot be
 * trusted to mean the write happened (a proxy's page, a truncated or garbled body): the write
 * counts as failed and the next cycle's read decides what is left to do. */
static void on_id_array_reply(struct prov_tenant_req *req, const struct http_result *res)
{
    prov_reply_check_ids(req, res, gjs_parse_id_array);
}

static void on_user_authorization_reply(struct prov_tenant_req *req, const struct http_result *res)
{
    prov_reply_check_ids(req, res, gjs_parse_user_authorization);
}

static void genesys_role_create(const struct prov_tenant *t, const struct mdl_role *src,
                                const char *name, prov_done_cb cb, void *arg)
{
    char err[256];
    char *body = gjs_build_role_create(name, src->description, src->def_json, err, sizeof err);
    if (!body) {
        prov_fail_later(t, "role create", "POST", GEN_ROLES, err, cb, arg);
        return;
    }
    prov_submit(t, "role create", "POST", GEN_ROLES, body, on_role_reply, cb, arg);
    free(body);
}

/* "/api/v2/authorization/roles/{id}" + suffix, or NULL (failure reported) for a bad id. */
static char *role_path(const struct prov_tenant *t, const char *op, const char *method,
                       const char *id, const char *suffix, prov_done_cb cb, void *arg)
{
    char err[256];
    char *seg = pjson_path_segment(id, err, sizeof err);
    if (!seg) {
        prov_fail_later(t, op, method, GEN_ROLES "/?", err, cb, arg);
        return NULL;
    }
    char *path = xasprintf(GEN_ROLES "/%s%s", seg, suffix);
    free(seg);
    return path;
}

static void genesys_role_update(const struct prov_tenant *t, const struct mdl_role *src,
                                const struct mdl_role *tgt, prov_done_cb cb, void *arg)
{
    char err[256];
    char *path = role_path(t, "role update", "PUT", tgt->id, "", cb, arg);
    if (!path)
        return;
    /* A default role keeps its own name and description; only its permissions change. */
    char *body =
        tgt->builtin_key
            ? gjs_build_default_role_update(tgt, src->def_json, err, sizeof err)
            : gjs_build_role_update(tgt->name, src->description, src->def_json, err, sizeof err);
    if (!body)
        prov_fail_later(t, "role update", "PUT", path, err, cb, arg);
    else
        prov_submit(t, "role update", "PUT", path, body, on_role_reply, cb, arg);
    free(body);
    free(path);
}

static void genesys_role_delete(const struct prov_tenant *t, const struct mdl_role *tgt,
                                prov_done_cb cb, void *arg)
{
    char *path = role_path(t, "role delete", "DELETE", tgt->id, "", cb, arg);
    if (!path)
        return;
    prov_submit(t, "role delete", "DELETE", path, NULL, prov_reply_empty_or_json, cb, arg);
    free(path);
}

static void genesys_role_users(const struct prov_tenant *t, const char *role_id, bool add,
                               const char *const *user_ids, size_t n, prov_done_cb cb, void *arg)
{
    const char *op = add ? "role users add" : "role users remove";
    char *path = role_path(t, op, "PUT", role_id, add ? "/users/add" : "/users/remove", cb, arg);
    if (!path)
        return;
    char *body = pjson_build_string_array(user_ids, n);
    prov_submit(t, op, "PUT", path, body, on_id_array_reply, cb, arg);
    free(body);
    free(path);
}

static void genesys_user_set_roles(const struct prov_tenant *t, const char *user_id,
                                   const char *const *role_ids, size_t n, prov_done_cb cb,
                                   void *arg)
{
    char err[256];
    char *seg = pjson_path_segment(user_id, err, sizeof err);
    if (!seg) {
        prov_fail_later(t, "user roles set", "PUT", GEN_USERS "/?/roles", err, cb, arg);
        return;
    }
    char *path = xasprintf(GEN_USERS "/%s/roles", seg);
    char *body = pjson_build_string_array(role_ids, n);
    prov_submit(t, "user roles set", "PUT", path, body, on_user_authorization_reply, cb, arg);
    free(body);
    free(path);
    free(seg);
}

/* Leave the policies of domains the target does not license out of role r's definition (in
 * snapshot s); returns the dropped domains (malloc'd) or NULL when nothing was left out. */
static char *filter_role(struct mdl_snapshot *s, struct mdl_role *r, const struct mdl_snapshot *tgt,
                         bool with_json)
{
    char err[256], *dropped = NULL;
    if (!r->def_canon || r->foreign)
        return NULL;
    char *def = gjs_def_filter_domains(r->def_canon, (const char *const *)tgt->licensed_domains,
                                       tgt->nlicensed_domains, &dropped, err, sizeof err);
    if (def && dropped) {
        r->def_canon_read = r->def_canon;
        r->def_canon = mdl_strdup(s, def);
        if (with_json)
            r->def_json = r->def_canon;
    }
    if (!def) {
        /* Not expected (def_canon is our own canonical JSON); the definition stays as read. */
        log_warning(NULL, "cannot leave unlicensed domains out of role \"%s\": %s", r->name, err);
        free(dropped);
        return NULL;
    }
    free(def);
    return dropped;
}

static void genesys_adapt_definitions(struct mdl_snapshot *src, struct mdl_snapshot *tgt,
                                      void (*note)(uint32_t role, const char *reason, void *arg),
                                      void *arg)
{
    /* An empty list means the target's licensing is unknown (not "nothing licensed"). */
    if (tgt->nlicensed_domains == 0)
        return;
    for (size_t i = 0; i < src->nroles; i++) {
        char *dropped = filter_role(src, &src->roles[i], tgt, true);
        if (dropped) {
            char *why = xasprintf("the target org does not license permission domain(s) %s; "
                                  "those policies are left out",
                                  dropped);
            note((uint32_t)i, why, arg);
            free(why);
            free(dropped);
        }
    }
    /* The target's own roles may hold policies of such domains (licensed once, since lapsed).
     * The daemon cannot make them match (a write makes Genesys drop them), so they are no
     * difference to act on: a role equal apart from them is not rewritten. A role updated for
     * another reason loses them, as any write would, and is reported as not converging. */
    for (size_t i = 0; i < tgt->nroles; i++)
        free(filter_role(tgt, &tgt->roles[i], tgt, false));
}

/* ---- platform facts ---- */

/* product.md section 3: https://api.X -> https://login.X/oauth/token; a host without the api.
 * prefix (a gateway, a simulator) serves the token beside the API, as the SDKs' gateway mode
 * expects (api/genesys.md section 1). */
static char *genesys_token_url(const char *base)
{
    const char *sep = strstr(base, "://");
    if (sep && strncasecmp(sep, "://api.", 7) == 0)
        return xasprintf("%.*s://login.%s/oauth/token", (int)(sep - base), base, sep + 7);
    return xasprintf("%s/oauth/token", base);
}

/* The window every reply advertises (api/genesys.md section 3): inin-ratelimit-allowed,
 * -count (used in the window) and -reset (seconds to its end). */
static bool genesys_rate_window(const struct http_header *h, size_t n, struct http_rate_window *w)
{
    const char *a = http_header_find(h, n, "inin-ratelimit-allowed");
    const char *c = http_header_find(h, n, "inin-ratelimit-count");
    const char *s = http_header_find(h, n, "inin-ratelimit-reset");
    char *end;
    long allowed, count, reset;

    if (!a || !c || !s)
        return false;
    errno = 0;
    allowed = strtol(a, &end, 10);
    if (errno || *end)
        return false;
    count = strtol(c, &end, 10);
    if (errno || *end)
        return false;
    reset = strtol(s, &end, 10);
    if (errno || *end || reset < 0 || reset > 3600)
        return false;
    *w = (struct http_rate_window){allowed, count, (uint64_t)reset * 1000};
    return true;
}

const struct prov_ops prov_genesys = {
    .api = CFG_API_GENESYS,
    .name = "genesys",
    .auth = HTTP_AUTH_BASIC_FORM,
    .correlation_header = "ININ-Correlation-Id",
    .token_url = genesys_token_url,
    .page_size_roles = 100,
    .page_size_users = 500,
    .page_size_max = 500, /* a bigger pageSize is the platform's 400 */
    .match_by = PROV_MATCH(CFG_MATCH_EMAIL) | PROV_MATCH(CFG_MATCH_USERNAME),
    .match_by_names = "email, username",
    .caps = MDL_CAP_ROLE_BATCHES | MDL_CAP_BUILTIN_DEFINITIONS,
    .error_message = gjs_error_line,
    .rate_window = genesys_rate_window,
    .parse_error = gjs_parse_error,
    .fetch = genesys_fetch,
    .role_create = genesys_role_create,
    .role_update = genesys_role_update,
    .role_delete = genesys_role_delete,
    .role_users = genesys_role_users,
    .user_set_roles = genesys_user_set_roles,
    .adapt_definitions = genesys_adapt_definitions,
};
