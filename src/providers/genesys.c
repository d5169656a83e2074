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
#define GEN_SUBJECTS "/api/v2/authorization/subjects"
#define GEN_GROUPS "/api/v2/groups"
#define GEN_PERMS "/api/v2/authorization/permissions"
#define GEN_PERMS_PAGE 100

/* ---- reads ----
 *
 * Version 2 (product.md 4a): a grant is (user, role, division), and only direct grants count,
 * so the grants are read role by role from subject grants -- the direct holders of each role
 * the job needs, with their divisions -- and the users listing serves only matching (no
 * expand=authorization: that lists every role held anywhere, inherited ones included, without
 * divisions). Users: the active ones by offset pages (concurrent), every other one through the
 * cursor listing, which the platform does not cap (offset paging past 10,000 results is
 * refused for states other than active, 4a.9). */

#define GEN_DIVISIONS "/api/v2/authorization/divisions"
#define GEN_GRANTS_PAGE 100 /* subject grants' largest page */
#define GEN_CURSOR_PAGE 500 /* the cursor listing's largest page */
#define GEN_DIVISIONS_PAGE 100

static void roles_page(struct prov_page *pg, const struct http_result *res);
static void users_page(struct prov_page *pg, const struct http_result *res);
static void cursor_page(struct prov_page *pg, const struct http_result *res);
static void perms_page(struct prov_page *pg, const struct http_result *res);
static void divisions_page(struct prov_page *pg, const struct http_result *res);
static void grants_page(struct prov_page *pg, const struct http_result *res);

static void *users_prepare(const char *body, size_t len)
{
    return gjs_users_prepare_mode(body, len, GJS_USERS_PLAIN);
}

static void *cursor_prepare(const char *body, size_t len)
{
    return gjs_users_prepare_mode(body, len, GJS_USERS_CURSOR);
}

static void users_discard(void *p)
{
    gjs_users_discard(p);
}

/* Users pages are parsed off the loop (provider.h, struct prov_page_parser). */
static const struct prov_page_parser users_parser = {users_prepare, users_discard};
static const struct prov_page_parser cursor_parser = {cursor_prepare, users_discard};

static void request_page(struct prov_fetch *f, struct prov_listing *l, unsigned number)
{
    const struct cfg_tenant *c = f->t.cfg;
    char path[512];

    if (l == &f->roles) {
        snprintf(path, sizeof path, GEN_ROLES "?pageSize=%u&pageNumber=%u&userCount=false",
                 c->page_size_roles, number);
        prov_fetch_page(f, l, number, path, NULL, roles_page);
    } else if (l == &f->users) {
        snprintf(path, sizeof path, GEN_USERS "?pageSize=%u&pageNumber=%u&state=active",
                 c->page_size_users, number);
        prov_fetch_page(f, l, number, path, &users_parser, users_page);
    } else if (l == &f->inactive || l == &f->deleted) {
        unsigned ps = c->page_size_users < GEN_CURSOR_PAGE ? c->page_size_users : GEN_CURSOR_PAGE;
        const char *state = l == &f->inactive ? "inactive" : "deleted";
        if (l->cursor) {
            char *cur = util_pct_encode(l->cursor);
            snprintf(path, sizeof path, GEN_USERS "/query?pageSize=%u&state=%s&cursor=%s", ps,
                     state, cur);
            free(cur);
        } else {
            snprintf(path, sizeof path, GEN_USERS "/query?pageSize=%u&state=%s", ps, state);
        }
        prov_fetch_page(f, l, number, path, &cursor_parser, cursor_page);
    } else if (l == &f->divisions) {
        snprintf(path, sizeof path, GEN_DIVISIONS "?pageSize=%u&pageNumber=%u", GEN_DIVISIONS_PAGE,
                 number);
        prov_fetch_page(f, l, number, path, NULL, divisions_page);
    } else if (l == &f->perms) {
        snprintf(path, sizeof path, GEN_PERMS "?pageSize=%u&pageNumber=%u", GEN_PERMS_PAGE, number);
        prov_fetch_page(f, l, number, path, NULL, perms_page);
    } else {
        char err[256];
        const struct mdl_role *r = &f->snap->roles[l->role];
        char *seg = pjson_path_segment(r->id, err, sizeof err); /* the listing checked it */
        snprintf(path, sizeof path, GEN_ROLES "/%s/subjectgrants?pageSize=%u&pageNumber=%u",
                 seg ? seg : "", GEN_GRANTS_PAGE, number);
        free(seg);
        prov_fetch_page(f, l, number, path, NULL, grants_page);
    }
}

/* Envelope bookkeeping shared by the offset listings: page 1 tells how many pages follow, and
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

/* A cursor page: the next one is requested once this one names its cursor (the pages come one
 * after the other); a page without a cursor is the last. */
static void cursor_page(struct prov_page *pg, const struct http_result *res)
{
    struct prov_fetch *f = pg->f;
    struct prov_listing *l = pg->l;
    struct gjs_page page;
    char err[512], *cursor = NULL;
    if (gjs_users_commit_cursor(pg->prepared, f->snap, f->refs, &page, &cursor, err, sizeof err) !=
        0) {
        prov_fetch_fail(f, false, "GET %s: %s", res->path, err);
        return;
    }
    l->started = true;
    l->seen += page.entities;
    if (cursor && l->cursor && strcmp(cursor, l->cursor) == 0) {
        /* the same cursor again would page forever */
        prov_fetch_fail(f, false, "GET %s: the %s listing answered the cursor it was sent",
                        res->path, l->what);
        free(cursor);
        return;
    }
    if (cursor && page.entities == 0) {
        prov_fetch_fail(f, false, "GET %s: an empty %s page that names a next one", res->path,
                        l->what);
        free(cursor);
        return;
    }
    free(l->cursor);
    l->cursor = cursor;
    if (cursor) { /* one more page, after this one (prov_fetch_more requests it) */
        l->next = pg->number + 1;
        l->end = pg->number + 2;
    }
}

static void divisions_page(struct prov_page *pg, const struct http_result *res)
{
    struct gjs_page page;
    char err[512];
    if (gjs_parse_divisions_page(pg->f->snap, res->body, res->body_len, &page, err, sizeof err) !=
        0)
        prov_fetch_fail(pg->f, false, "GET %s: %s", res->path, err);
    else
        account_page(pg, &page, res->path);
}

static void grants_page(struct prov_page *pg, const struct http_result *res)
{
    struct gjs_page page;
    char err[512];
    if (gjs_parse_subjectgrants_page(pg->f->snap, pg->f->grefs, pg->l->role, res->body,
                                     res->body_len, &page, err, sizeof err) != 0)
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

/* The second step (prov_fetch_grants): subject grants of the masked roles, never of the forced
 * one (every user holds employee; the core never adds or removes it). The listings array is
 * sized once, before any request, so the page requests' listing pointers stay valid. */
static void request_grants(struct prov_fetch *f, const bool *mask)
{
    struct mdl_snapshot *s = f->snap;
    size_t n = 0;
    for (size_t i = 0; i < s->nroles; i++) {
        bool read = mask && mask[i] && !s->roles[i].forced && !s->roles[i].foreign;
        /* a role the daemon just created and the listing lacks: the platform answers 404 for
         * it a while, and holders it has none the daemon does not know of */
        if (s->roles[i].recent) {
            s->roles[i].grants_unread = false;
            continue;
        }
        s->roles[i].grants_unread = !read;
        n += read;
    }
    f->grants = xcalloc(n + 1, sizeof(*f->grants));
    for (size_t i = 0; i < s->nroles; i++) {
        if (s->roles[i].grants_unread || s->roles[i].recent)
            continue;
        struct prov_listing *l = &f->grants[f->ngrants++];
        l->what = "subject grants";
        l->total = -1;
        l->role = (uint32_t)i;
        l->request = request_page;
    }
    for (size_t i = 0; i < f->ngrants; i++)
        request_page(f, &f->grants[i], 1);
}

static struct prov_fetch *genesys_fetch(const struct prov_tenant *t,
                                        const struct prov_fetch_opts *o, prov_fetch_cb cb,
                                        void *arg)
{
    struct prov_fetch *f = prov_fetch_new(t, CFG_API_GENESYS, cb, arg);
    struct prov_listing *ls[] = {&f->roles,   &f->users,     &f->inactive,
                                 &f->deleted, &f->divisions, &f->perms};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(ls); i++)
        ls[i]->request = request_page;
    if (!(o && o->licensed_only)) {
        /* A grant's division is its qualifier; "*", the all-divisions grant, is no division
         * of the listing but a qualifier of its own. */
        f->snap->divided = true;
        mdl_add_qual(f->snap, &(struct mdl_qual){.id = "*", .name = "*", .all = true});
        f->request_grants = request_grants;
        f->grants_wait = true;
        f->roles_read = o ? o->roles_read : NULL;
        f->roles_read_arg = o ? o->roles_read_arg : NULL;
        request_page(f, &f->roles, 1);
        request_page(f, &f->divisions, 1);
        request_page(f, &f->users, 1);
        request_page(f, &f->inactive, 1);
        /* deleted users are read so that their grants are known as theirs (the core ignores
         * both), not taken for holders the listing cannot show */
        request_page(f, &f->deleted, 1);
    }
    if (o && (o->licensed_domains || o->licensed_only))
        request_page(f, &f->perms, 1);
    return f;
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

/* PUT /authorization/roles/{id}/users/remove answers the ids it applied. A 2xx reply that does
 * not read as that cannot be trusted to mean the write happened (a proxy's page, a truncated or
 * garbled body): the write counts as failed and the next cycle's read decides what is left. */
static void on_id_array_reply(struct prov_tenant_req *req, const struct http_result *res)
{
    prov_reply_check_ids(req, res, gjs_parse_id_array);
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

/* POST /authorization/roles/{id}?subjectType=PC_USER: the role for these users in one
 * division (SubjectDivisions; the platform answers 204). */
static void genesys_grant_users(const struct prov_tenant *t, const char *role_id,
                                const char *qual_id, const char *const *user_ids, size_t n,
                                unsigned flags, prov_done_cb cb, void *arg)
{
    const char *op = "role grant";
    char *path = role_path(t, op, "POST", role_id, "?subjectType=PC_USER", cb, arg);
    if (!path)
        return;
    char *body = gjs_build_subject_divisions(user_ids, n, qual_id);
    prov_submit_opts(t, op, "POST", path, body,
                     &(struct prov_submit_opts){.retry_404 = flags & PROV_W_NEW_ROLE},
                     prov_reply_empty_or_json, cb, arg);
    free(body);
    free(path);
}

/* PUT /authorization/roles/{id}/users/remove: the role's direct grants of these users in every
 * division. Division-blind, so the plan sends it only for users whose every direct grant of the
 * role goes (plan.h); it answers the ids it applied. */
static void genesys_revoke_users(const struct prov_tenant *t, const char *role_id,
                                 const char *const *user_ids, size_t n, prov_done_cb cb, void *arg)
{
    const char *op = "role users remove";
    char *path = role_path(t, op, "PUT", role_id, "/users/remove", cb, arg);
    if (!path)
        return;
    char *body = pjson_build_string_array(user_ids, n);
    prov_submit(t, op, "PUT", path, body, on_id_array_reply, cb, arg);
    free(body);
    free(path);
}

/* A user's grants: POST .../subjects/{id}/bulkadd, and for removals bulkremove -- or, for a
 * single grant, DELETE .../subjects/{id}/divisions/{d}/roles/{r}, which cannot fail on another
 * grant's role or division having gone meanwhile, and whose 404 means the grant is gone
 * already: what the removal wanted (Terraform reads it the same way). */
static void genesys_user_grants(const struct prov_tenant *t, const char *user_id, bool add,
                                const struct prov_grant *g, size_t n, unsigned flags,
                                prov_done_cb cb, void *arg)
{
    const char *op = add ? "user grants add" : "user grants remove";
    char err[256];
    char *seg = pjson_path_segment(user_id, err, sizeof err);
    if (!seg) {
        prov_fail_later(t, op, "POST", GEN_SUBJECTS "/?", err, cb, arg);
        return;
    }
    struct prov_submit_opts o = {.retry_404 = add && (flags & PROV_W_NEW_ROLE)};
    if (!add && n == 1) {
        char *dseg = pjson_path_segment(g[0].qual_id, err, sizeof err);
        char *rseg = dseg ? pjson_path_segment(g[0].role_id, err, sizeof err) : NULL;
        if (!rseg) {
            prov_fail_later(t, op, "DELETE", GEN_SUBJECTS "/?", err, cb, arg);
        } else {
            char *path = xasprintf(GEN_SUBJECTS "/%s/divisions/%s/roles/%s", seg, dseg, rseg);
            o.accept_status = 404;
            prov_submit_opts(t, op, "DELETE", path, NULL, &o, prov_reply_empty_or_json, cb, arg);
            free(path);
        }
        free(dseg);
        free(rseg);
        free(seg);
        return;
    }
    const char **roles = xcalloc(n + 1, sizeof(char *)), **divs = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        roles[i] = g[i].role_id;
        divs[i] = g[i].qual_id;
    }
    char *body = gjs_build_role_division_grants(roles, divs, n);
    char *path =
        xasprintf(GEN_SUBJECTS "/%s/%s", seg, add ? "bulkadd?subjectType=PC_USER" : "bulkremove");
    prov_submit_opts(t, op, "POST", path, body, &o, prov_reply_empty_or_json, cb, arg);
    free(path);
    free(body);
    free(roles);
    free(divs);
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

/* ---- one user's grants with their origin (rolesyncd --explain) ----
 *
 * GET subjects/{id}?includeDuplicates=true lists a user's direct grants and every inherited
 * one with the group as subjectId; then each distinct group's name (GET groups/{id},
 * concurrently). A group whose name cannot be read is named by its id only: the grants are
 * what matters, so that is no failure. */

struct subject_read {
    prov_subject_cb cb;
    void *arg;
    char *user_id;
    struct prov_subject_grant *g;
    size_t n;
    unsigned pending; /* group name reads in flight, + 1 while they are being submitted */
};

struct group_read {
    struct subject_read *sr;
    char *group_id;
};

static void subject_done(struct subject_read *sr)
{
    sr->cb(sr->g, sr->n, NULL, sr->arg);
    gjs_subject_free(sr->g, sr->n);
    free(sr->user_id);
    free(sr);
}

static void group_name_read(const struct http_result *res, void *arg)
{
    struct group_read *gr = arg;
    struct subject_read *sr = gr->sr;
    char *name = NULL, err[256];
    if (res->outcome == HTTP_OK &&
        gjs_parse_group_name(res->body, res->body_len, &name, err, sizeof err) == 0 && name) {
        for (size_t i = 0; i < sr->n; i++)
            if (strcmp(sr->g[i].subject_id, gr->group_id) == 0 && !sr->g[i].subject_name)
                sr->g[i].subject_name = xstrdup(name);
    }
    free(name);
    free(gr->group_id);
    free(gr);
    if (--sr->pending == 0)
        subject_done(sr);
}

struct subject_ctx {
    struct subject_read *sr;
    struct http_tenant *http;
};

static void subject_read_done(const struct http_result *res, void *arg)
{
    struct subject_ctx *ctx = arg;
    struct subject_read *sr = ctx->sr;
    struct http_tenant *http = ctx->http;
    char err[512], msg[900];
    free(ctx);
    if (res->outcome != HTTP_OK ||
        gjs_parse_subject(res->body, res->body_len, &sr->g, &sr->n, err, sizeof err) != 0) {
        if (res->outcome != HTTP_OK)
            snprintf(err, sizeof err, "%s", res->error ? res->error : "failed");
        snprintf(msg, sizeof msg, "%s %s: %s", res->method, res->path, err);
        struct prov_read_error e = {.message = msg,
                                    .auth_failed = res->outcome == HTTP_ERR_AUTH ||
                                                   res->status == 401 || res->status == 403,
                                    .method = res->method,
                                    .path = res->path,
                                    .status = res->status,
                                    .correlation_id = res->correlation_id};
        sr->cb(NULL, 0, &e, sr->arg);
        free(sr->user_id);
        free(sr);
        return;
    }
    sr->pending = 1;
    for (size_t i = 0; i < sr->n; i++) {
        const char *sid = sr->g[i].subject_id;
        bool seen = strcmp(sid, sr->user_id) == 0; /* direct: no group to name */
        for (size_t k = 0; k < i && !seen; k++)
            seen = strcmp(sr->g[k].subject_id, sid) == 0;
        if (seen)
            continue;
        struct group_read *gr = xcalloc(1, sizeof *gr);
        gr->sr = sr;
        gr->group_id = xstrdup(sid);
        char *enc = util_pct_encode(sid), *path = xasprintf(GEN_GROUPS "/%s", enc);
        sr->pending++;
        http_request(http, "GET", path, NULL, group_name_read, gr);
        free(enc);
        free(path);
    }
    if (--sr->pending == 0)
        subject_done(sr);
}

static void genesys_subject_grants(const struct prov_tenant *t, const char *user_id,
                                   prov_subject_cb cb, void *arg)
{
    struct subject_read *sr = xcalloc(1, sizeof *sr);
    struct subject_ctx *ctx = xcalloc(1, sizeof *ctx);
    sr->cb = cb;
    sr->arg = arg;
    sr->user_id = xstrdup(user_id);
    ctx->sr = sr;
    ctx->http = t->http;
    char *enc = util_pct_encode(user_id),
         *path = xasprintf(GEN_SUBJECTS "/%s?includeDuplicates=true", enc);
    http_request(t->http, "GET", path, NULL, subject_read_done, ctx);
    free(enc);
    free(path);
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
    .caps = MDL_CAP_GRANT_WRITES | MDL_CAP_BUILTIN_DEFINITIONS | MDL_CAP_LAGGING_LISTINGS,
    .error_message = gjs_error_line,
    .rate_window = genesys_rate_window,
    .parse_error = gjs_parse_error,
    .fetch = genesys_fetch,
    .role_create = genesys_role_create,
    .role_update = genesys_role_update,
    .role_delete = genesys_role_delete,
    .grant_users = genesys_grant_users,
    .revoke_users = genesys_revoke_users,
    .user_grants = genesys_user_grants,
    .user_set_roles = NULL, /* PUT /users/{id}/roles names no division (product.md 4a) */
    .adapt_definitions = genesys_adapt_definitions,
    .subject_grants = genesys_subject_grants,
    .def_canon = gjs_def_canon,
};
