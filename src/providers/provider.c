/* provider.c — what both providers share: write submission, result shaping, paged reads. */
#include "providers/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "rolesync/log.h"
#include "rolesync/util.h"

const struct prov_ops *prov_for_api(enum cfg_api api)
{
    return api == CFG_API_GENESYS ? &prov_genesys : &prov_identity;
}

/* The server's message for a failed reply: the platform's error body when it has one. */
static void result_message(enum cfg_api api, const struct http_result *res, char *buf, size_t n,
                           char *cid, size_t cidn)
{
    struct pjson_error_info info;
    int have = -1;

    snprintf(cid, cidn, "%s", res->correlation_id ? res->correlation_id : "");
    if (res->outcome == HTTP_ERR_STATUS && res->body_len > 0) {
        have = prov_for_api(api)->parse_error(res->body, res->body_len, &info);
    }
    if (have == 0 && info.message[0]) {
        snprintf(buf, n, "HTTP %ld: %s%s%s%s", res->status, info.message, info.code[0] ? " (" : "",
                 info.code, info.code[0] ? ")" : "");
        if (!cid[0] && info.correlation_id[0])
            snprintf(cid, cidn, "%s", info.correlation_id);
    } else {
        snprintf(buf, n, "%s", res->error ? res->error : "failed");
    }
}

static bool result_is_auth_failure(const struct http_result *res)
{
    return res->outcome == HTTP_ERR_AUTH ||
           (res->outcome == HTTP_ERR_STATUS && (res->status == 401 || res->status == 403));
}

static void on_write_reply(const struct http_result *res, void *arg)
{
    struct prov_tenant_req *req = arg;
    struct prov_result r = {0};
    char msg[768], cid[160];

    r.method = res->method;
    r.path = res->path;
    r.status = res->status;
    r.message = "";
    r.correlation_id = res->correlation_id ? res->correlation_id : "";
    /* A status the provider reads as success besides 2xx (identity answers the create of an
     * identical existing role with 302 + Location; a revocation of a grant that is gone
     * already is done): its hook judges the reply; any other non-2xx is a failure. */
    bool accepted =
        res->outcome == HTTP_ERR_STATUS && req->accept_status && res->status == req->accept_status;
    if (res->outcome == HTTP_OK || accepted) {
        if (req->on_reply)
            req->on_reply(req, res);
        if (req->parse_error) {
            snprintf(msg, sizeof msg, "HTTP %ld but the reply is unreadable: %s", res->status,
                     req->parse_error);
            r.message = msg;
        } else {
            r.ok = true;
            r.id = req->id;
        }
    } else {
        result_message(req->api, res, msg, sizeof msg, cid, sizeof cid);
        if (req->hint_405 && res->outcome == HTTP_ERR_STATUS && res->status == 405) {
            size_t used = strlen(msg);
            snprintf(msg + used, sizeof msg - used, " (%s)", req->hint_405);
        }
        r.message = msg;
        r.correlation_id = cid;
        r.auth_failed = result_is_auth_failure(res);
        r.cancelled = res->outcome == HTTP_ERR_CANCELLED;
    }
    req->cb(&r, req->arg);
    free(req->id);
    free(req->parse_error);
    free(req);
}

void prov_reply_empty_or_json(struct prov_tenant_req *req, const struct http_result *res)
{
    if (res->body_len == 0)
        return;
    struct pjson_cur c;
    char err[512];
    pjson_cur_init(&c, "reply", err, sizeof err);
    struct json_object *v = pjson_parse(&c, res->body, res->body_len);
    if (!v)
        req->parse_error = xstrdup(err);
    json_object_put(v);
}

void prov_reply_check_ids(struct prov_tenant_req *req, const struct http_result *res,
                          prov_ids_parser parse)
{
    struct pjson_ids got = {0};
    char err[512];
    if (parse(res->body, res->body_len, &got, err, sizeof err) != 0)
        req->parse_error = xstrdup(err);
    pjson_ids_free(&got);
}

void prov_submit(const struct prov_tenant *t, const char *op, const char *method, const char *path,
                 const char *body, prov_reply_fn on_reply, prov_done_cb cb, void *arg)
{
    prov_submit_opts(t, op, method, path, body, NULL, on_reply, cb, arg);
}

void prov_submit_opts(const struct prov_tenant *t, const char *op, const char *method,
                      const char *path, const char *body, const struct prov_submit_opts *o,
                      prov_reply_fn on_reply, prov_done_cb cb, void *arg)
{
    struct prov_tenant_req *req = xcalloc(1, sizeof *req);
    req->accept_status = o ? o->accept_status : 0;
    req->hint_405 = o ? o->hint_405 : NULL;

    req->api = t->cfg->api;
    req->op = op;
    req->cb = cb;
    req->arg = arg;
    req->on_reply = on_reply;
    http_request_gated(t->http, method, path, body, o && o->retry_404 ? HTTP_REQ_RETRY_404 : 0,
                       t->write_gate, on_write_reply, req);
}

/* A failure found before sending, delivered from the loop like any other result. */
struct prov_late {
    uv_timer_t timer;
    struct prov_result r;
    char *method, *path, *message;
    prov_done_cb cb;
    void *arg;
};

static void late_closed(uv_handle_t *h)
{
    struct prov_late *l = UTIL_CONTAINER_OF((uv_timer_t *)h, struct prov_late, timer);
    free(l->method);
    free(l->path);
    free(l->message);
    free(l);
}

static void late_fire(uv_timer_t *tm)
{
    struct prov_late *l = UTIL_CONTAINER_OF(tm, struct prov_late, timer);
    l->r.method = l->method;
    l->r.path = l->path;
    l->r.message = l->message;
    l->r.correlation_id = "";
    l->cb(&l->r, l->arg);
    uv_close((uv_handle_t *)&l->timer, late_closed);
}

void prov_fail_later(const struct prov_tenant *t, const char *op, const char *method,
                     const char *path, const char *message, prov_done_cb cb, void *arg)
{
    struct prov_late *l = xcalloc(1, sizeof *l);
    (void)op;
    l->method = xstrdup(method);
    l->path = xstrdup(path ? path : "");
    l->message = xstrdup(message);
    l->cb = cb;
    l->arg = arg;
    uv_timer_init(t->loop, &l->timer);
    uv_timer_start(&l->timer, late_fire, 0, 0);
}

/* ---- paged reads ---- */

struct prov_fetch *prov_fetch_new(const struct prov_tenant *t, enum cfg_api api, prov_fetch_cb cb,
                                  void *arg)
{
    struct prov_fetch *f = xcalloc(1, sizeof *f);
    f->t = *t;
    f->snap = mdl_snapshot_new(api);
    f->snap->caps = prov_for_api(api)->caps;
    f->refs = pjson_role_refs_new();
    f->grefs = pjson_grant_refs_new();
    f->roles.what = "roles";
    f->users.what = "users";
    f->perms.what = "permissions";
    f->divisions.what = "divisions";
    f->inactive.what = "inactive users";
    f->deleted.what = "deleted users";
    f->roles.total = f->users.total = f->perms.total = f->divisions.total = -1;
    f->inactive.total = f->deleted.total = -1;
    f->cb = cb;
    f->arg = arg;
    return f;
}

struct page_req {
    struct prov_page pg;
    const struct prov_page_parser *parser; /* NULL: on_page parses on the loop */
    void (*on_page)(struct prov_page *pg, const struct http_result *res);
    uv_work_t work;
    struct http_result *kept; /* the reply, while `parser` prepares it */
    bool queued;              /* on the thread pool: its body counts in f->held_bytes */
};

/* The reply of a page, parsed and accounted on the loop. */
static void page_handle(struct page_req *pr, const struct http_result *res)
{
    struct prov_fetch *f = pr->pg.f;
    f->reply = res;
    pr->on_page(&pr->pg, res);
    if (!f->failed && pr->pg.l->seen > PROV_MAX_ENTITIES)
        prov_fetch_fail(f, false, "GET %s: the %s listing exceeds %d entries", res->path,
                        pr->pg.l->what, PROV_MAX_ENTITIES);
    f->reply = NULL;
}

static void page_finish(struct page_req *pr)
{
    struct prov_page pg = pr->pg;
    http_result_free(pr->kept);
    free(pr);
    prov_fetch_page_done(&pg);
}

static void page_prepare(uv_work_t *w)
{
    struct page_req *pr = UTIL_CONTAINER_OF(w, struct page_req, work);
    pr->pg.prepared = pr->parser->prepare(pr->kept->body, pr->kept->body_len);
}

static void page_prepared(uv_work_t *w, int status)
{
    struct page_req *pr = UTIL_CONTAINER_OF(w, struct page_req, work);
    struct prov_fetch *f = pr->pg.f;

    if (pr->queued) {
        f->held_bytes -= pr->kept->body_len;
        pr->queued = false;
    }

    /* status is UV_ECANCELED only after uv_cancel, which nothing calls; a page that was not
     * prepared must still never count as read. */
    if (f->failed || status != 0 || !pr->pg.prepared) {
        if (pr->pg.prepared)
            pr->parser->discard(pr->pg.prepared);
        if (!f->failed) {
            f->reply = pr->kept;
            prov_fetch_fail(f, false, "GET %s: the page was not parsed", pr->kept->path);
            f->reply = NULL;
        }
    } else {
        page_handle(pr, pr->kept);
    }
    page_finish(pr);
}

static void on_page_reply(const struct http_result *res, void *arg)
{
    struct page_req *pr = arg;
    struct prov_fetch *f = pr->pg.f;

    if (f->failed) {
        /* Another page already failed the read: this one only needs accounting. */
    } else if (res->outcome != HTTP_OK) {
        prov_fetch_fail_result(f, res);
    } else if (pr->parser) {
        /* The page stays outstanding (its listing's window and f->pending) until prepared and
         * handled; the bodies waiting meanwhile are bounded by PROV_HELD_MAX. */
        pr->kept = http_result_keep(res);
        bool room = f->held_bytes == 0 || f->held_bytes + res->body_len <= PROV_HELD_MAX;
        if (room && uv_queue_work(f->t.loop, &pr->work, page_prepare, page_prepared) == 0) {
            pr->queued = true;
            f->held_bytes += res->body_len;
            return;
        }
        /* Enough bodies wait already (or the pool refused, which only a NULL callback can
         * cause): this page is prepared here and now. */
        page_prepare(&pr->work);
        page_prepared(&pr->work, 0);
        return;
    } else {
        page_handle(pr, res);
    }
    page_finish(pr);
}

void prov_fetch_page(struct prov_fetch *f, struct prov_listing *l, unsigned number,
                     const char *path, const struct prov_page_parser *parser,
                     void (*on_page)(struct prov_page *pg, const struct http_result *res))
{
    struct page_req *pr = xcalloc(1, sizeof *pr);
    pr->pg.f = f;
    pr->pg.l = l;
    pr->pg.number = number;
    pr->parser = parser;
    pr->on_page = on_page;
    f->pending++;
    l->outstanding++;
    http_request(f->t.http, "GET", path, NULL, on_page_reply, pr);
}

void prov_fetch_fail(struct prov_fetch *f, bool auth, const char *fmt, ...)
{
    va_list ap;
    if (f->failed)
        return;
    f->failed = true;
    f->auth_failed = auth;
    va_start(ap, fmt);
    vsnprintf(f->err, sizeof f->err, fmt, ap);
    va_end(ap);
    if (f->reply) {
        const struct http_result *r = f->reply;
        f->err_req = true;
        snprintf(f->err_method, sizeof f->err_method, "%s", r->method ? r->method : "GET");
        snprintf(f->err_path, sizeof f->err_path, "%s", r->path ? r->path : "");
        snprintf(f->err_cid, sizeof f->err_cid, "%s", r->correlation_id ? r->correlation_id : "");
        f->err_status = r->status;
    }
}

void prov_fetch_fail_result(struct prov_fetch *f, const struct http_result *res)
{
    char msg[768], cid[160];
    const struct http_result *outer = f->reply;
    result_message(f->t.cfg->api, res, msg, sizeof msg, cid, sizeof cid);
    f->reply = res;
    prov_fetch_fail(f, result_is_auth_failure(res), "%s %s: %s%s%s",
                    res->method ? res->method : "GET", res->path, msg,
                    cid[0] ? " correlation_id=" : "", cid);
    f->reply = outer;
}

/* The end of a read, off the loop: resolving the users' role references and finishing the
 * snapshot (sorting and indexing 10^5 users) touch only this fetch's own data, and the source's
 * and the target's reads, which end together, then finish side by side. */
static void fetch_resolve(uv_work_t *w)
{
    struct prov_fetch *f = UTIL_CONTAINER_OF(w, struct prov_fetch, finish_work);
    f->resolve_rc = pjson_role_refs_resolve(f->refs, f->snap, true, &f->resolve_stats,
                                            f->finish_err, sizeof f->finish_err);
    if (f->resolve_rc == 0 && pjson_grant_refs_count(f->grefs) > 0)
        f->resolve_rc = pjson_grant_refs_resolve(f->grefs, f->snap, &f->grant_stats, f->finish_err,
                                                 sizeof f->finish_err);
    if (f->resolve_rc == 0)
        f->finish_rc = mdl_snapshot_finish(f->snap, f->finish_err, sizeof f->finish_err);
}

static void fetch_nothing(uv_work_t *w)
{
    (void)w;
}

static void fetch_resolved(uv_work_t *w, int status)
{
    struct prov_fetch *f = UTIL_CONTAINER_OF(w, struct prov_fetch, finish_work);
    struct mdl_snapshot *snap = NULL;

    if (status != 0) { /* only after uv_cancel, which nothing calls */
        prov_fetch_fail(f, false, "the read was not finished");
    } else if (!f->failed) {
        if (f->resolve_rc == 0 && f->resolve_stats.unknown_refs > 0) {
            char q[2 * PJSON_MAX_ID + 8];
            log_warning(NULL,
                        "users hold roles missing from the role listing, kept as they are "
                        "tenant=%s refs=%zu roles=%zu example=%s",
                        f->t.cfg->name, f->resolve_stats.unknown_refs, f->resolve_stats.unknown_ids,
                        log_quote(q, sizeof q, f->resolve_stats.first_unknown));
        }
        if (f->resolve_rc == 0 && f->grant_stats.unknown_users > 0)
            log_info(NULL,
                     "role holders missing from the users listing counted as outside "
                     "tenant=%s holders=%zu",
                     f->t.cfg->name, f->grant_stats.unknown_users);
        if (f->resolve_rc != 0 || f->finish_rc != 0)
            prov_fetch_fail(f, false, "%s", f->finish_err);
    }
    if (!f->failed) {
        snap = f->snap;
        f->snap = NULL;
    }
    struct prov_read_error e = {
        .message = f->err,
        .auth_failed = f->auth_failed,
        .method = f->err_req ? f->err_method : NULL,
        .path = f->err_req && f->err_path[0] ? f->err_path : NULL,
        .status = f->err_req ? f->err_status : 0,
        .correlation_id = f->err_req && f->err_cid[0] ? f->err_cid : NULL,
    };
    f->cb(snap, f->failed ? &e : NULL, f->arg);
    mdl_snapshot_free(f->snap);
    pjson_role_refs_free(f->refs);
    pjson_grant_refs_free(f->grefs);
    struct prov_listing *ls[] = {&f->roles,     &f->users,    &f->perms,
                                 &f->divisions, &f->inactive, &f->deleted};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(ls); i++)
        free(ls[i]->cursor);
    for (size_t i = 0; i < f->ngrants; i++)
        free(f->grants[i].cursor);
    free(f->grants);
    free(f);
}

/* Whether a listing's entity count contradicts its first page's total. */
static bool listing_changed(struct prov_fetch *f, struct prov_listing *l)
{
    /* The first page's total is the contract: fewer (or more) entities means the listing
     * changed while it was read, and a short listing must never look like deletions. */
    if (l->started && l->total >= 0 && (int64_t)l->seen != l->total) {
        prov_fetch_fail(f, false, "%s listing changed while it was read: expected %lld, got %zu",
                        l->what, (long long)l->total, l->seen);
        return true;
    }
    return false;
}

static void fetch_finish(struct prov_fetch *f)
{
    struct prov_listing *ls[] = {&f->roles,     &f->users,    &f->perms,
                                 &f->divisions, &f->inactive, &f->deleted};

    if (f->finishing)
        return;
    f->finishing = true;
    for (size_t i = 0; !f->failed && i < f->ngrants; i++)
        listing_changed(f, &f->grants[i]);
    for (size_t i = 0; !f->failed && i < UTIL_ARRAY_LEN(ls); i++) {
        listing_changed(f, ls[i]);
    }
    /* Through the thread pool even when there is nothing to resolve (a failed read): the
     * callback then always comes from the loop, never from inside prov_fetch_grants. */
    if (uv_queue_work(f->t.loop, &f->finish_work, f->failed ? fetch_nothing : fetch_resolve,
                      fetch_resolved) != 0) {
        (f->failed ? fetch_nothing : fetch_resolve)(&f->finish_work); /* cannot happen */
        fetch_resolved(&f->finish_work, 0);
    }
}

bool prov_page_count_ok(struct prov_fetch *f, struct prov_listing *l, unsigned index, size_t count,
                        const char *path)
{
    if (l->total < 0 || l->page_size == 0)
        return true;
    uint64_t before = (uint64_t)index * l->page_size;
    uint64_t expect = (uint64_t)l->total > before ? (uint64_t)l->total - before : 0;
    if (expect > l->page_size)
        expect = l->page_size;
    if (count == expect)
        return true;
    prov_fetch_fail(f, false,
                    "GET %s: %s page %u holds %zu entries, where a listing of %lld in pages of %u "
                    "holds %llu: the listing changed while it was read",
                    path, l->what, index + 1, count, (long long)l->total, l->page_size,
                    (unsigned long long)expect);
    return false;
}

void prov_fetch_more(struct prov_fetch *f, struct prov_listing *l)
{
    while (!f->failed && l->next < l->end && l->outstanding < PROV_PAGE_WINDOW)
        l->request(f, l, l->next++);
}

void prov_fetch_page_done(struct prov_page *pg)
{
    struct prov_fetch *f = pg->f;
    struct prov_listing *l = pg->l;
    l->outstanding--;
    prov_fetch_more(f, l);
    if (l == &f->roles && !f->roles_done && !f->failed && l->started && l->next >= l->end &&
        l->outstanding == 0) {
        /* The role listing is whole: the caller can say whose grants to read. */
        f->roles_done = true;
        if (f->roles_read) {
            f->roles_read(f, f->snap, f->roles_read_arg);
        } else {
            bool *all = xmalloc(f->snap->nroles + 1); /* provider.h: every role's grants */
            memset(all, 1, f->snap->nroles + 1);
            prov_fetch_grants(f, all);
            free(all);
        }
    }
    if (--f->pending == 0 && (!f->grants_wait || f->failed))
        fetch_finish(f);
}

void prov_fetch_grants(struct prov_fetch *f, const bool *mask)
{
    if (!f->grants_wait)
        return;
    f->grants_wait = false;
    if (f->finishing)
        return; /* the read failed and its end is queued already (see fetch_finish) */
    if (f->request_grants && !f->failed)
        f->request_grants(f, mask);
    if (f->pending == 0)
        fetch_finish(f);
}
