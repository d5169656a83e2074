/* sync.c — one cycle of one job: read, diff, plan, guard, apply in three phases, report. */
#include "rolesync/sync.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "rolesync/approve.h"
#include "rolesync/journal.h"
#include "rolesync/log.h"
#include "rolesync/plan.h"
#include "rolesync/recent.h"
#include "rolesync/util.h"

struct sync_run {
    uv_loop_t *loop;
    const struct cfg_job *job;
    struct prov_tenant src, tgt;
    const struct prov_ops *sops, *tops;
    struct diff_memory *mem;
    struct sync_opts opts;
    sync_done_cb cb;
    void *arg;

    struct mdl_snapshot *ssnap, *tsnap;
    unsigned reads_pending;
    /* The two-step read (provider.h prov_fetch_opts.roles_read): each side's read while it is
     * alive, and its snapshot once its role listing is whole. */
    struct prov_fetch *fetch[2];              /* [0] source, [1] target; NULL once ended */
    const struct mdl_snapshot *roles_snap[2]; /* roles readable, not finished */
    struct plan *plan;
    struct sync_result res;
    uint64_t req0, retry0; /* HTTP counters when the cycle started */
    uint64_t t0;           /* monotonic ms */

    char **adapt_notes;  /* per source role: why its definition was adapted, or NULL */
    bool licensing_read; /* the target's licensed permission domains were read this cycle */
    bool *role_ok;       /* per diff->role_ops entry */
    bool *assign_ok;     /* per plan->assign_ops entry */
    size_t ok_writes;
    unsigned inflight;
    /* fan-out (product.md 4b.1): the source read this run shares with the group's other
     * targets, or NULL when it reads its source itself */
    struct sync_source *shared;
    bool mask_given; /* this run said which source roles' grants it needs */
    void (*fenced_next)(struct sync_run *run); /* the write batch waiting for the fence */
    char fence_reason[256];                    /* why the fence said no */
    struct http_gate gate;                     /* tgt.write_gate when opts.write_gate is set */
    /* approved plans (approve.h): the deletion set when the guard or an approval needed it,
     * and under an approval the indexes of its deletions outside the approved set */
    struct approve_set *dels;
    size_t *new_dels, nnew_dels;
    /* the change journal (journal.h): lines written so far (the last seq), and whether a
     * failed write was already reported (once a cycle, not once a line) */
    uint64_t jseq;
    bool jwarned;
};

/* One source read shared by the cycles of a fan-out job's targets. The source's roles are
 * listed once; the grants read are those any member needs (the union of their masks, known
 * once every member's target role listing is in or its read ended); the finished snapshot is
 * handed to each member as a view (mdl_snapshot_view), since definitions are adapted per
 * target. Members register in sync_start, before the loop runs any callback. Freed when the
 * creator and every member released it. */
struct sync_source {
    struct prov_tenant src;
    const struct prov_ops *ops;
    struct prov_fetch *fetch;        /* alive until the read's callback */
    struct mdl_snapshot *roles_snap; /* roles readable, until the read ends */
    bool *mask;                      /* union of the members' source masks (roles_snap->nroles) */
    unsigned waiting; /* members whose mask is not in yet, plus 1 until the creator released */
    struct sync_run **runs; /* members waiting for the snapshot */
    size_t nruns, cap_runs;
    bool done, failed;
    struct mdl_snapshot *snap; /* the finished read (owned), or NULL */
    struct {
        char *message, *method, *path, *correlation_id;
        bool auth_failed;
        long status;
    } err;
    unsigned refs;
};

/* One write in flight. */
struct op_ctx {
    struct sync_run *run;
    size_t idx;    /* into diff->role_ops (phases 1, 3) or plan->assign_ops (phase 2) */
    bool partial;  /* phase 2, per-user set: sent without the adds of roles that could not be
                      created and without its removals (plan_write_prepare) */
    uint64_t jseq; /* phase 3: the seq of the deletion's "pending" journal line, 0 if none */
};

static void phase_assign(struct sync_run *run);
static void on_role_written(const struct prov_result *r, void *arg);
static void phase_deletes(struct sync_run *run);
static void finish(struct sync_run *run);
static void phase_roles(struct sync_run *run);

/* ---- fencing: every write batch waits for the daemon's confirmation (sync.h) ---- */

static void abandon(struct sync_run *run, const char *reason)
{
    char q[600];
    run->res.fenced = true;
    snprintf(run->fence_reason, sizeof run->fence_reason, "%s",
             reason && reason[0] ? reason : "job no longer held");
    log_warning(run->job->name, "writes stopped, cycle abandoned reason=%s",
                log_quote(q, sizeof q, run->fence_reason));
}

static void on_fence(bool held, const char *reason, void *arg)
{
    struct sync_run *run = arg;
    void (*next)(struct sync_run *) = run->fenced_next;

    run->fenced_next = NULL;
    if (held) {
        next(run);
        return;
    }
    abandon(run, reason);
    finish(run);
}

/* http_gate of every write of the cycle (sync_write_gate_fn): once one is refused, the cycle
 * is abandoned and no later write of it is sent, even if the job were held again. */
static bool gate_check(void *arg, char *header, size_t hn, char *why, size_t wn)
{
    struct sync_run *run = arg;
    if (run->res.fenced) {
        snprintf(why, wn, "not sent: cycle abandoned (%s)", run->fence_reason);
        return false;
    }
    char reason[256] = "";
    if (run->opts.write_gate(run->job->name, header, hn, reason, sizeof reason,
                             run->opts.fence_arg))
        return true;
    abandon(run, reason);
    snprintf(why, wn, "not sent: %s", run->fence_reason);
    return false;
}

static bool batch_empty(struct sync_run *run, void (*next)(struct sync_run *run))
{
    size_t n = 1;
    if (next == phase_assign)
        plan_phase_assign(run->plan, &n);
    else if (next == phase_deletes)
        plan_phase_deletes(run->plan, &n);
    return n == 0;
}

/* Run a write batch now, or once the fence confirms the job is still ours (an empty batch
 * writes nothing and needs no confirmation: a cycle in sync costs no round trip). */
static void fenced(struct sync_run *run, void (*next)(struct sync_run *run))
{
    if (run->res.fenced) { /* a write of the last batch was refused by the gate */
        finish(run);
        return;
    }
    if (!run->opts.fence || batch_empty(run, next)) {
        next(run);
        return;
    }
    run->fenced_next = next;
    run->opts.fence(run->job->name, on_fence, run, run->opts.fence_arg);
}

const char *sync_outcome_name(enum sync_outcome o)
{
    switch (o) {
    case SYNC_OK:
        return "ok";
    case SYNC_PARTIAL:
        return "partial";
    case SYNC_FAILED:
        return "failed";
    case SYNC_REFUSED:
        return "refused";
    default:
        return "dry_run";
    }
}

static void counters(const struct sync_run *run, uint64_t *req, uint64_t *retries)
{
    const struct http_counters *s = http_tenant_counters(run->src.http);
    const struct http_counters *t = http_tenant_counters(run->tgt.http);
    *req = s->requests + t->requests;
    *retries = s->retries + t->retries;
}

static void add_error(struct sync_run *run, const char *op, const char *method, const char *path,
                      long status, const char *message, const char *cid)
{
    struct sync_result *r = &run->res;
    r->error_count++;
    if (r->nerrors == SYNC_MAX_ERRORS)
        return;
    struct sync_error *e = &r->errors[r->nerrors++];
    snprintf(e->op, sizeof e->op, "%s", op);
    snprintf(e->method, sizeof e->method, "%s", method ? method : "");
    snprintf(e->path, sizeof e->path, "%s", path ? path : "");
    e->status = status;
    snprintf(e->message, sizeof e->message, "%s", message ? message : "");
    snprintf(e->correlation_id, sizeof e->correlation_id, "%s", cid ? cid : "");
}

/* A write failed after the engine's retries: log it with what an operator needs to find it. */
static void write_failed(struct sync_run *run, const char *op, const struct prov_result *r)
{
    char q[600], p[300];
    if (r->cancelled && run->res.fenced) {
        /* refused by the write gate: the job is no longer held here */
        run->res.cancelled_ops++;
        log_debug(run->job->name, "operation not sent, fenced op=\"%s\" method=%s path=%s", op,
                  r->method ? r->method : "-", log_quote(p, sizeof p, r->path ? r->path : "-"));
        return;
    }
    if (r->cancelled) {
        /* The daemon is stopping: the write was not made, which is no failure of the target;
         * it stays pending for the next start (the cycle is marked interrupted). */
        run->res.cancelled_ops++;
        log_info(run->job->name, "operation not sent, stopping op=\"%s\" method=%s path=%s", op,
                 r->method ? r->method : "-", log_quote(p, sizeof p, r->path ? r->path : "-"));
        return;
    }
    run->res.failed_ops++;
    if (r->auth_failed)
        run->res.auth_failed = true;
    add_error(run, op, r->method, r->path, r->status, r->message, r->correlation_id);
    log_warning(run->job->name,
                "operation failed op=\"%s\" target=%s method=%s path=%s status=%ld "
                "correlation_id=%s error=%s",
                op, run->tgt.cfg->name, r->method ? r->method : "-",
                log_quote(p, sizeof p, r->path ? r->path : "-"), r->status,
                r->correlation_id && r->correlation_id[0] ? r->correlation_id : "-",
                log_quote(q, sizeof q, r->message ? r->message : ""));
}

/* ---- the change journal (journal.h): one line per change applied or tried ---- */

/* Fill the cycle's fields, append, report a failure once a cycle. A journal that cannot be
 * written never stops the cycle (product.md 4c: it is a record, not a precondition). Returns
 * the line's seq (e->seq when the caller gave one), 0 when nothing is journaled. */
static uint64_t jwrite(struct sync_run *run, struct journal_entry *e, bool sync)
{
    char err[512], q[600];
    if (!run->opts.journal)
        return 0;
    e->cycle = run->res.cycle;
    if (!e->seq)
        e->seq = ++run->jseq;
    e->job = run->job->name;
    e->target = run->tgt.cfg->name;
    e->at_ms = util_now_ms();
    if (journal_append(run->opts.journal, e, sync, err, sizeof err) != 0 && !run->jwarned) {
        run->jwarned = true;
        log_warning(run->job->name, "change not journaled, the cycle goes on cycle=%s error=%s",
                    run->res.cycle, log_quote(q, sizeof q, err));
    }
    return e->seq;
}

static void jset_str(struct json_object *o, const char *key, const char *v)
{
    json_object_object_add(o, key, v ? json_object_new_string(v) : NULL);
}

/* A role as the journal holds it: {"name", "description", "definition"} with the provider's
 * definition JSON parsed in (null when there is none). Not yet rendered: a deletion adds its
 * holders. */
static struct json_object *jrole(const char *name, const char *description, const char *def_json)
{
    struct json_object *o = json_object_new_object();
    jset_str(o, "name", name);
    jset_str(o, "description", description);
    struct json_object *def = def_json ? json_tokener_parse(def_json) : NULL;
    json_object_object_add(o, "definition", def);
    return o;
}

/* Render and free (malloc'd text). */
static char *jtext(struct json_object *o)
{
    char *s = xstrdup(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return s;
}

static const char *jnz(const char *s)
{
    return s && *s ? s : NULL;
}

/* A role create or update, once its reply is in (not for a write cut short by a stop: what
 * happened is unknown, and nothing claims it). */
static void journal_role_written(struct sync_run *run, const struct diff_role_op *op,
                                 const struct prov_result *r)
{
    const struct mdl_role *src = &run->ssnap->roles[op->src_role];
    struct journal_entry e = {.role = op->name,
                              .result = r->ok ? JOURNAL_OK : JOURNAL_FAILED,
                              .correlation_id = jnz(r->correlation_id),
                              .message = r->ok ? NULL : (r->message ? r->message : "")};
    char *before = NULL, *after;
    if (op->action == DIFF_ROLE_OP_CREATE) {
        e.kind = JOURNAL_ROLE_CREATE;
        e.role_id = r->ok ? jnz(r->id) : NULL;
        after = jtext(jrole(op->name, src->description, src->def_json));
    } else {
        /* before: the target role as read; after: what it is once the write is made (only the
         * fields that differ are written, the others are as they were). */
        const struct mdl_role *t = &run->tsnap->roles[op->tgt_role];
        e.kind = JOURNAL_ROLE_UPDATE;
        e.role_id = t->id;
        before = jtext(jrole(t->name, t->description, t->def_json));
        after = jtext(jrole(t->name,
                            (op->fields & DIFF_F_DESCRIPTION) ? src->description : t->description,
                            (op->fields & DIFF_F_DEFINITION) ? src->def_json : t->def_json));
    }
    e.before = before;
    e.after = after;
    jwrite(run, &e, false);
    free(before);
    free(after);
}

struct jholders {
    const struct sync_run *run;
    struct json_object *list;
};

static void jholder(uint32_t tgt_user, uint32_t qual, void *arg)
{
    struct jholders *h = arg;
    const struct diff *d = h->run->plan->diff;
    const struct mdl_snapshot *t = h->run->tsnap;
    struct json_object *o = json_object_new_object();
    jset_str(o, "user", diff_user_label(d, tgt_user));
    jset_str(o, "user_id", t->users[tgt_user].id);
    jset_str(o, "division", diff_qual_name(d, qual));
    jset_str(o, "division_id", qual < t->nquals ? t->quals[qual].id : NULL);
    json_object_array_add(h->list, o);
}

/* A deletion's `before`: the whole role and every holder the job removes with it (exactly the
 * grants the guard counted, diff_delete_holders). */
static char *jdeleted_role(struct sync_run *run, const struct diff_role_op *op)
{
    const struct mdl_role *t = &run->tsnap->roles[op->tgt_role];
    struct json_object *o = jrole(t->name, t->description, t->def_json);
    struct jholders h = {run, json_object_new_array()};
    diff_delete_holders(run->plan->diff, op, jholder, &h);
    json_object_object_add(o, "holders", h.list);
    return jtext(o);
}

/* The outcome line of a deletion whose "pending" line was written (same seq). */
static void journal_role_deleted(struct sync_run *run, const struct diff_role_op *op, uint64_t seq,
                                 const struct prov_result *r)
{
    const struct mdl_role *t = &run->tsnap->roles[op->tgt_role];
    char *before = jdeleted_role(run, op);
    struct journal_entry e = {.seq = seq,
                              .kind = JOURNAL_ROLE_DELETE,
                              .role = op->name,
                              .role_id = t->id,
                              .before = before,
                              .result = r->ok ? JOURNAL_OK : JOURNAL_FAILED,
                              .correlation_id = jnz(r->correlation_id),
                              .message = r->ok ? NULL : (r->message ? r->message : "")};
    jwrite(run, &e, false);
    free(before);
}

/* One grant change, applied (ok) or carried by a write that failed. */
static void journal_change(struct sync_run *run, const struct diff_change *ch,
                           const struct prov_result *r)
{
    const struct diff *d = run->plan->diff;
    const struct mdl_snapshot *t = run->tsnap;
    struct journal_entry e = {.kind = ch->add ? JOURNAL_GRANT_ADD : JOURNAL_GRANT_REMOVE,
                              .role = diff_ref_name(d, ch->ref),
                              .role_id = plan_ref_id(run->plan, ch->ref),
                              .user = diff_user_label(d, ch->tgt_user),
                              .user_id = t->users[ch->tgt_user].id,
                              .division = diff_qual_name(d, ch->qual),
                              .division_id = ch->qual < t->nquals ? t->quals[ch->qual].id : NULL,
                              .result = r->ok ? JOURNAL_OK : JOURNAL_FAILED,
                              .correlation_id = jnz(r->correlation_id),
                              .message = r->ok ? NULL : (r->message ? r->message : "")};
    jwrite(run, &e, false);
}

/* ---- reads ---- */

static void read_failed(struct sync_run *run, const char *side, const struct prov_read_error *e)
{
    char q[600];
    const char *err = e->message;
    if (run->res.outcome != SYNC_FAILED) {
        run->res.outcome = SYNC_FAILED;
        snprintf(run->res.reason, sizeof run->res.reason, "reading the %s failed: %s", side, err);
    }
    if (e->auth_failed)
        run->res.auth_failed = true;
    add_error(run, strcmp(side, "source") == 0 ? "read source" : "read target", e->method, e->path,
              e->status, err, e->correlation_id);
    char p[300];
    log_error(run->job->name,
              "read failed side=%s tenant=%s method=%s path=%s status=%ld correlation_id=%s "
              "error=%s",
              side, strcmp(side, "source") == 0 ? run->src.cfg->name : run->tgt.cfg->name,
              e->method ? e->method : "-", log_quote(p, sizeof p, e->path ? e->path : "-"),
              e->status, e->correlation_id && e->correlation_id[0] ? e->correlation_id : "-",
              log_quote(q, sizeof q, err));
}

static void plan_and_apply(struct sync_run *run);

/* Both role listings are whole (or a side's read ended): say whose grants to read. A side
 * whose read failed reads none (the cycle fails anyway). */
static void source_mask_done(struct sync_source *ss)
{
    if (--ss->waiting > 0 || !ss->fetch || !ss->roles_snap)
        return;
    bool any = false;
    for (size_t i = 0; i < ss->roles_snap->nroles && !any; i++)
        any = ss->mask[i];
    prov_fetch_grants(ss->fetch, any ? ss->mask : NULL);
}

/* grants_step of a member of a shared source read: its target's grants as usual, its part of
 * the source's mask to the union. */
static void grants_step_shared(struct sync_run *run)
{
    struct sync_source *ss = run->shared;
    if (run->mask_given || (run->fetch[1] && !run->roles_snap[1]))
        return; /* said already, or its target's roles are not in yet */
    if (ss->done && ss->failed) {
        if (run->fetch[1]) /* the cycle fails: read no grants */
            prov_fetch_grants(run->fetch[1], NULL);
        run->mask_given = true;
        return;
    }
    if (!ss->roles_snap)
        return; /* the source's roles are not in yet: source_roles_read calls again */
    run->mask_given = true;
    if (run->fetch[1]) {
        const struct mdl_snapshot *s = ss->roles_snap, *t = run->roles_snap[1];
        bool *sm = xcalloc(s->nroles + 1, sizeof(bool)), *tm = xcalloc(t->nroles + 1, sizeof(bool));
        diff_grant_masks(run->job, s, t, sm, tm);
        for (size_t i = 0; i < s->nroles; i++)
            ss->mask[i] = ss->mask[i] || sm[i];
        prov_fetch_grants(run->fetch[1], tm);
        free(sm);
        free(tm);
    }
    source_mask_done(ss);
}

static void grants_step(struct sync_run *run)
{
    if (run->shared) {
        grants_step_shared(run);
        return;
    }
    for (int i = 0; i < 2; i++)
        if (run->fetch[i] && !run->roles_snap[i])
            return; /* still waiting for that side's roles */
    if (run->fetch[0] && run->fetch[1]) {
        const struct mdl_snapshot *s = run->roles_snap[0], *t = run->roles_snap[1];
        bool *sm = xcalloc(s->nroles + 1, sizeof(bool)), *tm = xcalloc(t->nroles + 1, sizeof(bool));
        diff_grant_masks(run->job, s, t, sm, tm);
        /* neither call ends a read at once: its callback comes from the loop */
        prov_fetch_grants(run->fetch[0], sm);
        prov_fetch_grants(run->fetch[1], tm);
        free(sm);
        free(tm);
        return;
    }
    for (int i = 0; i < 2; i++)
        if (run->fetch[i])
            prov_fetch_grants(run->fetch[i], NULL);
}

static void on_roles_read(struct sync_run *run, int side, struct prov_fetch *f,
                          struct mdl_snapshot *roles)
{
    run->fetch[side] = f;
    run->roles_snap[side] = roles;
    if (side == 1 && run->opts.recent && (roles->caps & MDL_CAP_LAGGING_LISTINGS)) {
        /* product.md 4a.8: trust what this daemon created over a listing that lags */
        char *key = recent_tenant_key(run->tgt.cfg->name, run->tgt.cfg->base_url);
        size_t n = recent_inject(run->opts.recent, key, roles, (int64_t)util_now_ms());
        free(key);
        if (n)
            log_info(run->job->name,
                     "roles created lately are not listed yet, taken as they were written "
                     "roles=%zu target=%s",
                     n, run->tgt.cfg->name);
    }
    grants_step(run);
}

static void on_roles_read_source(struct prov_fetch *f, struct mdl_snapshot *roles, void *arg)
{
    on_roles_read(arg, 0, f, roles);
}

static void on_roles_read_target(struct prov_fetch *f, struct mdl_snapshot *roles, void *arg)
{
    on_roles_read(arg, 1, f, roles);
}

static void on_read(struct sync_run *run, struct mdl_snapshot *snap,
                    const struct prov_read_error *err, bool source)
{
    run->fetch[source ? 0 : 1] = NULL;
    run->roles_snap[source ? 0 : 1] = NULL;
    if (snap) {
        if (source)
            run->ssnap = snap;
        else
            run->tsnap = snap;
    } else {
        read_failed(run, source ? "source" : "target", err);
    }
    if (--run->reads_pending > 0) {
        grants_step(run); /* the other side may be waiting for this one's roles */
        return;
    }
    if (run->res.outcome == SYNC_FAILED) {
        finish(run);
        return;
    }
    plan_and_apply(run);
}

static void on_read_source(struct mdl_snapshot *snap, const struct prov_read_error *err, void *arg)
{
    on_read(arg, snap, err, true);
}

static void on_read_target(struct mdl_snapshot *snap, const struct prov_read_error *err, void *arg)
{
    on_read(arg, snap, err, false);
}

/* ---- a source read shared by a fan-out job's targets ---- */

struct sync_source *sync_source_new(const struct prov_tenant *src)
{
    struct sync_source *ss = xcalloc(1, sizeof *ss);
    ss->src = *src;
    ss->ops = prov_for_api(src->cfg->api);
    ss->waiting = 1; /* the creator's hold: more members may come until it releases */
    ss->refs = 1;
    return ss;
}

static void source_unref(struct sync_source *ss)
{
    if (!ss || --ss->refs > 0)
        return;
    mdl_snapshot_free(ss->snap);
    free(ss->mask);
    free(ss->runs);
    free(ss->err.message);
    free(ss->err.method);
    free(ss->err.path);
    free(ss->err.correlation_id);
    free(ss);
}

void sync_source_release(struct sync_source *ss)
{
    if (!ss)
        return;
    source_mask_done(ss); /* no member comes after this one */
    source_unref(ss);
}

static void source_roles_read(struct prov_fetch *f, struct mdl_snapshot *roles, void *arg)
{
    struct sync_source *ss = arg;
    (void)f;
    ss->roles_snap = roles;
    ss->mask = xcalloc(roles->nroles + 1, sizeof(bool));
    /* members whose target roles are in (or whose target read ended) say their part now;
     * waiting counts the members not started yet too, so the grants wait for them */
    for (size_t i = 0; i < ss->nruns; i++)
        grants_step_shared(ss->runs[i]);
}

static void on_read_shared_source(struct mdl_snapshot *snap, const struct prov_read_error *err,
                                  void *arg)
{
    struct sync_source *ss = arg;
    ss->fetch = NULL;
    ss->roles_snap = NULL;
    ss->done = true;
    ss->snap = snap;
    if (!snap) {
        ss->failed = true;
        ss->err.message = xstrdup(err->message ? err->message : "");
        ss->err.method = err->method ? xstrdup(err->method) : NULL;
        ss->err.path = err->path ? xstrdup(err->path) : NULL;
        ss->err.correlation_id = err->correlation_id ? xstrdup(err->correlation_id) : NULL;
        ss->err.auth_failed = err->auth_failed;
        ss->err.status = err->status;
    }
    struct prov_read_error e = {.message = ss->err.message,
                                .auth_failed = ss->err.auth_failed,
                                .method = ss->err.method,
                                .path = ss->err.path,
                                .status = ss->err.status,
                                .correlation_id = ss->err.correlation_id};
    /* Hand the read to every member. A member may finish inside on_read (its target read
     * ended first) and release the source: hold a reference for the walk. */
    ss->refs++;
    struct sync_run **runs = ss->runs;
    size_t n = ss->nruns;
    ss->runs = NULL;
    ss->nruns = ss->cap_runs = 0;
    for (size_t i = 0; i < n; i++)
        on_read(runs[i], snap ? mdl_snapshot_view(snap) : NULL, snap ? NULL : &e, true);
    free(runs);
    source_unref(ss);
}

/* Join `run` to its shared source read; the first member starts it. */
static void source_join(struct sync_run *run, struct sync_source *ss)
{
    run->shared = ss;
    ss->refs++;
    ss->waiting++;
    util_grow((void **)&ss->runs, &ss->cap_runs, ss->nruns + 1, sizeof *ss->runs);
    ss->runs[ss->nruns++] = run;
    if (!ss->fetch && !ss->done) {
        struct prov_fetch_opts so = {.roles_read = source_roles_read, .roles_read_arg = ss};
        ss->fetch = ss->ops->fetch(&ss->src, &so, on_read_shared_source, ss);
    }
}

/* ---- plan ---- */

static void add_not_converging(struct sync_run *run, bool role, const char *name,
                               const char *reason)
{
    struct sync_result *r = &run->res;
    struct sync_not_converging *nc = &r->not_converging[r->nnot_converging++];
    char q[300], qr[600];
    nc->kind = role ? "role_definition" : "assignment";
    nc->name = xstrdup(name);
    nc->reason = xstrdup(reason);
    log_warning(run->job->name, "not converging %s=%s reason=%s", role ? "role" : "user",
                log_quote(q, sizeof q, name), log_quote(qr, sizeof qr, reason));
}

static void note_adapted(uint32_t role, const char *reason, void *arg)
{
    struct sync_run *run = arg;
    if (!run->adapt_notes)
        run->adapt_notes = xcalloc(run->ssnap->nroles, sizeof(char *));
    free(run->adapt_notes[role]);
    run->adapt_notes[role] = xstrdup(reason);
}

/* Items the target does not keep: the diff's memory findings, and source definitions adapted to
 * the target (only for roles this job mirrors). */
static void note_not_converging(struct sync_run *run)
{
    const struct diff *d = run->plan->diff;
    const struct diff_report *rep = &d->report;
    size_t cap = rep->nnot_converging + (run->adapt_notes ? run->ssnap->nroles : 0);

    run->res.not_converging = xcalloc(cap ? cap : 1, sizeof(struct sync_not_converging));
    for (size_t i = 0; i < rep->nnot_converging; i++) {
        const struct diff_not_converging *nc = &rep->not_converging[i];
        add_not_converging(run, nc->kind == DIFF_MEM_ROLE, nc->name, nc->reason);
    }
    for (size_t i = 0; run->adapt_notes && i < run->ssnap->nroles; i++) {
        const struct diff_src_role *sr = &d->src_roles[i];
        if (!run->adapt_notes[i] || !sr->in_scope ||
            (sr->status != DIFF_ROLE_MAPPED && sr->status != DIFF_ROLE_CREATE))
            continue;
        if (sr->status == DIFF_ROLE_MAPPED && sr->map < run->tsnap->nroles) {
            /* A target role that already holds what the source holds (policies of a lapsed
             * licence included) is in sync: nothing is missing there. */
            const struct mdl_role *s = &run->ssnap->roles[i], *t = &run->tsnap->roles[sr->map];
            const char *sdef = s->def_canon_read ? s->def_canon_read : s->def_canon;
            const char *tdef = t->def_canon_read ? t->def_canon_read : t->def_canon;
            if (sdef && tdef && strcmp(sdef, tdef) == 0)
                continue;
        }
        add_not_converging(run, true, diff_ref_name(d, sr->map), run->adapt_notes[i]);
    }
}

static void on_read_licensing(struct mdl_snapshot *snap, const struct prov_read_error *err,
                              void *arg)
{
    struct sync_run *run = arg;
    if (!snap) {
        /* Optional: without it, definitions are sent as they are (and whatever the target does
         * not keep is caught by the not-converging memory). */
        char q[600];
        log_warning(run->job->name,
                    "cannot read the target's licensed permission domains; definitions are sent "
                    "unfiltered tenant=%s error=%s",
                    run->tgt.cfg->name, log_quote(q, sizeof q, err ? err->message : ""));
        plan_and_apply(run);
        return;
    }
    /* The target snapshot is finished (indexed); its licensed-domain list is plain data. */
    run->tsnap->licensed_domains = mdl_alloc(
        run->tsnap, (snap->nlicensed_domains ? snap->nlicensed_domains : 1) * sizeof(char *));
    for (size_t i = 0; i < snap->nlicensed_domains; i++)
        run->tsnap->licensed_domains[i] = (char *)mdl_strdup(run->tsnap, snap->licensed_domains[i]);
    run->tsnap->nlicensed_domains = snap->nlicensed_domains;
    mdl_snapshot_free(snap);
    plan_and_apply(run);
}

/* Definitions copied between two orgs of one platform may carry what the target cannot keep
 * (genesys: unlicensed permission domains). What the target licenses is read only when this
 * cycle would write a role definition at all, so a cycle in sync costs no extra request (a job
 * with roles that keep not converging reads it every cycle: one extra read, never a write). The
 * role half of a memory-less diff decides; the real diff follows the adaptation. Returns true
 * when a read was started (plan_and_apply runs again when it completes). */
static bool need_licensing(struct sync_run *run)
{
    if (run->licensing_read || !run->job->definitions || run->sops != run->tops ||
        !run->tops->adapt_definitions)
        return false;
    if (!diff_writes_roles(run->job, run->ssnap, run->tsnap))
        return false;
    struct prov_fetch_opts o = {.licensed_only = true};
    run->licensing_read = true;
    run->tops->fetch(&run->tgt, &o, on_read_licensing, run);
    return true;
}

/* "OPT WORD " (malloc'd), WORD single-quoted for a POSIX shell unless it is plainly safe, so
 * the advice a refusal logs can be pasted as it is. */
static char *shell_arg(const char *opt, const char *word)
{
    bool plain = *word && strspn(word, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                       "0123456789._/-+,:=@%") == strlen(word);
    const char *q = plain ? "" : "'";
    size_t cap = strlen(opt) + 4 * strlen(word) + 8, k;
    char *out = xmalloc(cap);
    k = (size_t)snprintf(out, cap, "%s %s", opt, q);
    for (const char *p = word; *p; p++) {
        if (*p == '\'') { /* inside single quotes a quote is: close, escaped quote, reopen */
            memcpy(out + k, "'\\''", 4);
            k += 4;
        } else {
            out[k++] = *p;
        }
    }
    snprintf(out + k, cap - k, "%s ", q);
    return out;
}

/* Conflicts, unmapped roles and ambiguous users are "reported, not guessed" (product.md 4.3):
 * one warning per item every cycle -- the daemon prints no plan, so the log is where an
 * operator sees them -- at most SYNC_REPORT_LOG_LINES, then a count of the rest. */
#define SYNC_REPORT_LOG_LINES 50
static void log_report(struct sync_run *run)
{
    size_t n, logged = 0, more = 0;
    const struct plan_note *notes = plan_notes(run->plan, &n);
    char q[1024];
    for (size_t i = 0; i < n; i++) {
        if (!plan_note_is_report(&notes[i]))
            continue;
        if (logged++ < SYNC_REPORT_LOG_LINES)
            log_warning(run->job->name, "not applied item=%s",
                        log_quote(q, sizeof q, notes[i].text));
        else
            more++;
    }
    if (more)
        log_warning(run->job->name, "not applied more_items=%zu", more);
}

/* The guard's decision under an approval (product.md 4c; sync.h sync_opts.approve_fp). Returns
 * whether the plan may go over max_deletes; the deletions outside the approval are left in
 * run->new_dels (indexes into run->dels). */
static bool approval_covers(struct sync_run *run)
{
    const char *fp = run->opts.approve_fp;
    if (run->opts.approved) {
        run->nnew_dels = approve_new_items(run->dels, run->opts.approved, &run->new_dels);
        return run->nnew_dels == 0;
    }
    if (strcmp(run->res.fingerprint, fp) == 0)
        return true;
    run->res.approval_unknown = true;
    return false;
}

/* A refused plan: why, its fingerprint, and how to proceed -- printed with the plan and
 * logged (the daemon prints no plan). */
#define SYNC_NOT_APPROVED_LOG_LINES 50
static void report_refusal(struct sync_run *run, const struct plan_counts *c)
{
    FILE *out = run->opts.plan_out;
    const char *fp = run->res.fingerprint;
    char q[1024];
    for (size_t i = 0; i < run->nnew_dels; i++) {
        const char *label = run->dels->items[run->new_dels[i]].label;
        if (out)
            fprintf(out, "! not approved: %s\n", label);
        if (i < SYNC_NOT_APPROVED_LOG_LINES)
            log_error(run->job->name, "deletion not in the approval deletion=%s",
                      log_quote(q, sizeof q, label));
    }
    if (run->nnew_dels > SYNC_NOT_APPROVED_LOG_LINES)
        log_error(run->job->name, "deletions not in the approval more=%zu",
                  run->nnew_dels - SYNC_NOT_APPROVED_LOG_LINES);
    char *cfgarg = run->opts.config_file ? shell_arg("-c", run->opts.config_file) : NULL;
    char *jobarg = shell_arg("--job", run->job->name);
    jobarg[strlen(jobarg) - 1] = '\0'; /* shell_arg's trailing space: it ends the line here */
    if (out)
        fprintf(out,
                "! fingerprint %s of these %zu deletions; to apply exactly them: rolesyncd "
                "%s--once --approve %s %s\n",
                fp, c->deletions, cfgarg ? cfgarg : "", fp, jobarg);
    const char *cf = cfgarg ? cfgarg : "";
    char *hint = xasprintf("to apply exactly these deletions run `rolesyncd %s--once --approve %s "
                           "%s` (or `rolesyncd %s--approve %s %s` for the running daemon); to "
                           "apply whatever the plan holds run `rolesyncd %s--once "
                           "--force-deletes %s`, or raise max_deletes",
                           cf, fp, jobarg, cf, fp, jobarg, cf, jobarg);
    char qh[2400];
    log_error(run->job->name,
              "plan refused, nothing was written deletions=%zu max_deletes=%u fingerprint=%s "
              "not_approved=%zu hint=%s",
              c->deletions, run->job->max_deletes, fp, run->nnew_dels,
              log_quote(qh, sizeof qh, hint));
    free(hint);
    free(jobarg);
    free(cfgarg);
}

static void plan_and_apply(struct sync_run *run)
{
    char err[512];
    struct plan_counts c;

    if (need_licensing(run))
        return;
    if (run->licensing_read)
        run->tops->adapt_definitions(run->ssnap, run->tsnap, note_adapted, run);
    struct diff *d = diff_compute(run->job, run->ssnap, run->tsnap, run->mem, err, sizeof err);

    if (!d) {
        run->res.outcome = SYNC_FAILED;
        snprintf(run->res.reason, sizeof run->res.reason, "diff failed: %s", err);
        add_error(run, "diff", "", "", 0, err, "");
        finish(run);
        return;
    }
    /* The deletion set is named only when the guard trips: a cycle within max_deletes costs
     * nothing more, and needs no approval (one given is not needed, and is not checked). */
    bool force = run->opts.force_deletes;
    if (!force && plan_guard_deletions(d) > run->job->max_deletes) {
        run->dels = approve_set_from_diff(d);
        approve_fingerprint(run->dels, run->res.fingerprint);
        if (run->opts.approve_fp && approval_covers(run)) {
            force = run->res.approved = true;
            snprintf(run->res.approval, sizeof run->res.approval, "%s", run->opts.approve_fp);
        }
    }
    run->plan = plan_build(d, force);
    plan_counts(run->plan, &c);
    run->res.unmatched_source_only = c.unmatched_source_only;
    run->res.unmatched_target_only = c.unmatched_target_only;
    run->res.deletions = c.deletions;
    run->res.planned_roles_created = c.roles_created;
    run->res.planned_roles_updated = c.roles_updated;
    run->res.planned_roles_deleted = c.roles_deleted;
    run->res.planned_assignments_added = c.assignments_added;
    run->res.planned_assignments_removed = c.assignments_removed;
    run->res.max_deletes = run->job->max_deletes;
    if (run->opts.inspect) {
        /* --explain (explain.h): the plan is looked at, never rendered, reported or applied */
        run->res.outcome = SYNC_DRY_RUN;
        run->res.pending = c.pending;
        if (run->opts.inspect(run->plan, run->ssnap, run->tsnap, run->opts.inspect_arg)) {
            for (size_t i = 0; run->adapt_notes && i < run->ssnap->nroles; i++)
                free(run->adapt_notes[i]);
            free(run->adapt_notes);
            run->adapt_notes = NULL;
            run->plan = NULL; /* the inspector's now, with both snapshots */
            run->ssnap = run->tsnap = NULL;
        }
        finish(run);
        return;
    }
    note_not_converging(run);
    log_report(run);
    if (run->opts.plan_out) {
        plan_render(run->plan, run->opts.plan_out);
        fflush(run->opts.plan_out);
    }
    if (run->res.approval_unknown) {
        /* Nothing reviewed can be found under that fingerprint: no subset to hold the plan
         * to, so nothing is applied (and it is no refusal of this plan either). */
        run->res.outcome = SYNC_FAILED;
        run->res.pending = c.pending;
        run->res.refused_set = run->dels; /* recorded: it may be approved under its own */
        snprintf(run->res.reason, sizeof run->res.reason,
                 "approval %s is unknown for this job: no refused plan was recorded with it, "
                 "and the fresh plan's deletions have fingerprint %s",
                 run->opts.approve_fp, run->res.fingerprint);
        char q[800];
        log_error(run->job->name, "approval not applied, nothing was written reason=%s",
                  log_quote(q, sizeof q, run->res.reason));
        if (run->opts.plan_out)
            fprintf(run->opts.plan_out, "! %s\n", run->res.reason);
        finish(run);
        return;
    }
    if (run->plan->refused) {
        run->res.outcome = SYNC_REFUSED;
        run->res.pending = c.pending;
        run->res.refused_set = run->dels;
        run->res.not_approved = run->nnew_dels;
        if (run->opts.approve_fp)
            snprintf(run->res.reason, sizeof run->res.reason,
                     "%zu deletions exceed max_deletes %u and %zu of them are not in approval %s",
                     c.deletions, run->job->max_deletes, run->nnew_dels, run->opts.approve_fp);
        else
            snprintf(run->res.reason, sizeof run->res.reason, "%zu deletions exceed max_deletes %u",
                     c.deletions, run->job->max_deletes);
        report_refusal(run, &c);
        if (run->opts.plan_out)
            fflush(run->opts.plan_out);
        finish(run);
        return;
    }
    if (run->res.approved) {
        char q[300];
        log_info(run->job->name, "plan approved deletions=%zu max_deletes=%u approval=%s",
                 c.deletions, run->job->max_deletes, log_quote(q, sizeof q, run->opts.approve_fp));
    }
    if (run->opts.dry_run) {
        run->res.outcome = SYNC_DRY_RUN;
        run->res.pending = c.pending;
        finish(run);
        return;
    }
    run->role_ok = xcalloc(d->nrole_ops ? d->nrole_ops : 1, sizeof(bool));
    run->assign_ok = xcalloc(run->plan->nassign_ops ? run->plan->nassign_ops : 1, sizeof(bool));
    run->res.pending = c.pending;

    size_t n;
    plan_phase_roles(run->plan, &n);
    if (n == 0)
        fenced(run, phase_assign);
    else
        fenced(run, phase_roles);
}

/* ---- phase 1: role creates and updates; phase 3: deletions ---- */

static void phase_roles(struct sync_run *run)
{
    const struct diff *d = run->plan->diff;
    size_t n;
    const struct diff_role_op *ops = plan_phase_roles(run->plan, &n);
    run->inflight = (unsigned)n;
    for (size_t i = 0; i < n; i++) {
        const struct diff_role_op *op = &ops[i];
        struct op_ctx *ctx = xmalloc(sizeof *ctx);
        ctx->run = run;
        ctx->idx = (size_t)(op - d->role_ops);
        const struct mdl_role *src = &run->ssnap->roles[op->src_role];
        if (op->action == DIFF_ROLE_OP_CREATE)
            run->tops->role_create(&run->tgt, src, op->name, on_role_written, ctx);
        else
            run->tops->role_update(&run->tgt, src, &run->tsnap->roles[op->tgt_role],
                                   on_role_written, ctx);
    }
}

static const char *fields_text(unsigned f)
{
    if ((f & DIFF_F_DESCRIPTION) && (f & DIFF_F_DEFINITION))
        return "description,permissions";
    if (f & DIFF_F_DEFINITION)
        return "permissions";
    return "description";
}

static void on_role_written(const struct prov_result *r, void *arg)
{
    struct op_ctx *ctx = arg;
    struct sync_run *run = ctx->run;
    const struct diff *d = run->plan->diff;
    const struct diff_role_op *op = &d->role_ops[ctx->idx];
    static const char *ops[] = {"role create", "role update", "role delete"};
    char q[300];

    uint64_t jseq = ctx->jseq;
    free(ctx);
    if (op->action != DIFF_ROLE_OP_DELETE && !r->cancelled)
        journal_role_written(run, op, r);
    else if (op->action == DIFF_ROLE_OP_DELETE && jseq && !r->cancelled)
        journal_role_deleted(run, op, jseq, r);
    if (!r->ok) {
        write_failed(run, ops[op->action], r);
    } else {
        run->role_ok[op - d->role_ops] = true;
        run->ok_writes++;
        switch (op->action) {
        case DIFF_ROLE_OP_CREATE:
            plan_set_created_id(run->plan, (size_t)(op - d->role_ops), r->id);
            run->res.roles_created++;
            if (run->opts.recent && r->id && (run->tsnap->caps & MDL_CAP_LAGGING_LISTINGS)) {
                const struct mdl_role *src = &run->ssnap->roles[op->src_role];
                char *key = recent_tenant_key(run->tgt.cfg->name, run->tgt.cfg->base_url);
                char err[512], qe[600];
                if (recent_note(run->opts.recent, key, r->id, op->name, src->description,
                                src->def_json, (int64_t)util_now_ms(), err, sizeof err) != 0)
                    log_warning(run->job->name, "cannot remember the created role error=%s",
                                log_quote(qe, sizeof qe, err));
                free(key);
            }
            log_info(run->job->name, "role created role=%s target=%s",
                     log_quote(q, sizeof q, op->name), run->tgt.cfg->name);
            break;
        case DIFF_ROLE_OP_UPDATE:
            run->res.roles_updated++;
            log_info(run->job->name, "role updated role=%s fields=%s target=%s",
                     log_quote(q, sizeof q, op->name), fields_text(op->fields), run->tgt.cfg->name);
            break;
        case DIFF_ROLE_OP_DELETE:
            run->res.roles_deleted++;
            log_info(run->job->name, "role deleted role=%s target=%s",
                     log_quote(q, sizeof q, op->name), run->tgt.cfg->name);
            break;
        }
    }
    if (--run->inflight > 0)
        return;
    if (op->action == DIFF_ROLE_OP_DELETE)
        finish(run);
    else
        fenced(run, phase_assign);
}

static void phase_deletes(struct sync_run *run)
{
    size_t n;
    const struct diff_role_op *ops = plan_phase_deletes(run->plan, &n);
    if (n == 0) {
        finish(run);
        return;
    }
    const char *hold = plan_deletes_hold_reason(run->res.failed_ops);
    /* The journal first (product.md 4c): each deletion's "pending" line, with the whole role
     * and its holders, is on disk before any DELETE is sent, so an undo can re-create a role
     * whatever happens to this process from here on. One fsync covers the batch. */
    uint64_t *jseq = xcalloc(n, sizeof *jseq);
    if (!hold && run->opts.journal) {
        for (size_t i = 0; i < n; i++) {
            char *before = jdeleted_role(run, &ops[i]);
            struct journal_entry e = {.kind = JOURNAL_ROLE_DELETE,
                                      .role = ops[i].name,
                                      .role_id = run->tsnap->roles[ops[i].tgt_role].id,
                                      .before = before,
                                      .result = JOURNAL_PENDING};
            jseq[i] = jwrite(run, &e, false);
            free(before);
        }
        char err[512], q[600];
        if (journal_sync(run->opts.journal, err, sizeof err) != 0 && !run->jwarned) {
            run->jwarned = true;
            log_warning(run->job->name,
                        "journal not synced before the deletions, the cycle goes on cycle=%s "
                        "error=%s",
                        run->res.cycle, log_quote(q, sizeof q, err));
        }
    }
    run->inflight = (unsigned)n + 1; /* held ones are reported at once: see phase_assign */
    for (size_t i = 0; i < n; i++) {
        struct op_ctx *ctx = xcalloc(1, sizeof *ctx);
        ctx->run = run;
        ctx->idx = (size_t)(&ops[i] - run->plan->diff->role_ops);
        ctx->jseq = jseq[i];
        if (hold) {
            /* counted as a failed deletion, as before: it was due and did not happen */
            struct prov_result r = {
                .method = "DELETE", .path = "", .message = hold, .correlation_id = ""};
            on_role_written(&r, ctx);
            continue;
        }
        run->tops->role_delete(&run->tgt, &run->tsnap->roles[ops[i].tgt_role], on_role_written,
                               ctx);
    }
    free(jseq);
    if (--run->inflight == 0)
        finish(run);
}

/* ---- phase 2: assignments ---- */

static void log_change(struct sync_run *run, const struct diff_change *ch)
{
    const struct diff *d = run->plan->diff;
    const char *div = diff_qual_name(d, ch->qual);
    char qu[300], qr[300], qd[300];
    if (div)
        log_info(run->job->name, "assignment %s user=%s role=%s division=%s target=%s",
                 ch->add ? "added" : "removed",
                 log_quote(qu, sizeof qu, diff_user_label(d, ch->tgt_user)),
                 log_quote(qr, sizeof qr, diff_ref_name(d, ch->ref)), log_quote(qd, sizeof qd, div),
                 run->tgt.cfg->name);
    else
        log_info(run->job->name, "assignment %s user=%s role=%s target=%s",
                 ch->add ? "added" : "removed",
                 log_quote(qu, sizeof qu, diff_user_label(d, ch->tgt_user)),
                 log_quote(qr, sizeof qr, diff_ref_name(d, ch->ref)), run->tgt.cfg->name);
}

struct applied {
    struct sync_run *run;
    bool partial;
    const struct prov_result *r; /* the write's reply */
};

/* One change a successful write made: counted, logged and journaled. */
static void change_applied(const struct diff_change *ch, void *arg)
{
    struct applied *a = arg;
    if (!plan_change_carried(a->run->plan, a->partial, ch))
        return; /* not in what was sent: still pending */
    journal_change(a->run, ch, a->r);
    if (ch->add)
        a->run->res.assignments_added++;
    else
        a->run->res.assignments_removed++;
    log_change(a->run, ch);
}

/* One change a failed write carried: journaled as failed, with the server's message. */
static void change_failed(const struct diff_change *ch, void *arg)
{
    struct applied *a = arg;
    if (plan_change_carried(a->run->plan, a->partial, ch))
        journal_change(a->run, ch, a->r);
}

static const char *assign_op_name(enum plan_assign_kind k)
{
    switch (k) {
    case PLAN_ASSIGN_ROLE_ADD:
        return "role grant";
    case PLAN_ASSIGN_USER_ADD:
        return "user grants add";
    case PLAN_ASSIGN_USER_SET:
        return "user roles set";
    case PLAN_ASSIGN_ROLE_REMOVE:
        return "role users remove";
    default:
        return "user grants remove";
    }
}

static void on_assign_written(const struct prov_result *r, void *arg)
{
    struct op_ctx *ctx = arg;
    struct sync_run *run = ctx->run;
    const struct plan_assign_op *op = &run->plan->assign_ops[ctx->idx];

    if (!r->ok) {
        /* journaled before write_failed counts it: each change the write carried, failed */
        struct applied a = {run, ctx->partial, r};
        if (!r->cancelled)
            plan_op_changes(run->plan, ctx->idx, change_failed, &a);
        write_failed(run, assign_op_name(op->kind), r);
    } else {
        /* a partial write is not what the plan wanted: the memory must not note it */
        run->assign_ok[ctx->idx] = !ctx->partial;
        run->ok_writes++;
        struct applied a = {run, ctx->partial, r};
        plan_op_changes(run->plan, ctx->idx, change_applied, &a);
    }
    free(ctx);
    if (--run->inflight == 0)
        fenced(run, phase_deletes);
}

static void phase_assign(struct sync_run *run)
{
    size_t n;
    const struct plan_assign_op *ops = plan_phase_assign(run->plan, &n);
    const struct mdl_snapshot *t = run->tsnap;

    /* One more than the ops until all are submitted, so that held ones (and callbacks, which
     * come from the loop anyway) cannot end the phase early. */
    run->inflight = (unsigned)n + 1;
    bool roles_failed = run->res.failed_ops > 0;
    for (size_t i = 0; i < n; i++) {
        const struct plan_assign_op *op = &ops[i];
        struct plan_write w;
        plan_write_prepare(run->plan, i, roles_failed, &w);
        if (w.hold) {
            /* Its changes stay pending for the next cycle (plan.h says when and why). */
            char q[600];
            log_info(run->job->name, "assignment change not sent reason=%s",
                     log_quote(q, sizeof q, w.reason));
            run->inflight--;
            plan_write_release(&w);
            continue;
        }
        struct op_ctx *ctx = xcalloc(1, sizeof *ctx);
        ctx->run = run;
        ctx->idx = i;
        ctx->partial = w.partial;
        unsigned flags = w.new_role ? PROV_W_NEW_ROLE : 0;
        const char *user = op->tgt_user != MDL_NONE ? t->users[op->tgt_user].id : NULL;
        switch (op->kind) {
        case PLAN_ASSIGN_ROLE_ADD:
            run->tops->grant_users(&run->tgt, w.role_id, w.qual_id, w.ids, w.nids, flags,
                                   on_assign_written, ctx);
            break;
        case PLAN_ASSIGN_ROLE_REMOVE:
            run->tops->revoke_users(&run->tgt, w.role_id, w.ids, w.nids, on_assign_written, ctx);
            break;
        case PLAN_ASSIGN_USER_ADD:
        case PLAN_ASSIGN_USER_REMOVE: {
            struct prov_grant *g = xcalloc(w.ngrants + 1, sizeof(*g));
            for (size_t k = 0; k < w.ngrants; k++)
                g[k] = (struct prov_grant){w.grants[k].role_id, w.grants[k].qual_id};
            run->tops->user_grants(&run->tgt, user, op->kind == PLAN_ASSIGN_USER_ADD, g, w.ngrants,
                                   flags, on_assign_written, ctx);
            free(g);
            break;
        }
        case PLAN_ASSIGN_USER_SET:
            run->tops->user_set_roles(&run->tgt, user, w.ids, w.nids, on_assign_written, ctx);
            break;
        }
        plan_write_release(&w);
    }
    if (--run->inflight == 0)
        fenced(run, phase_deletes);
}

/* ---- end of cycle ---- */

static void finish(struct sync_run *run)
{
    struct sync_result *r = &run->res;
    uint64_t req, retries;

    counters(run, &req, &retries);
    r->requests = req - run->req0;
    r->retries = retries - run->retry0;
    if (run->role_ok) {
        /* Applied: tell the not-converging memory what was written. */
        plan_note_applied(run->plan, run->mem, run->role_ok, run->assign_ok);
        size_t applied = r->roles_created + r->roles_updated + r->roles_deleted +
                         r->assignments_added + r->assignments_removed;
        r->pending = r->pending > applied ? r->pending - applied : 0;
        if (r->failed_ops == 0 && r->cancelled_ops == 0)
            r->outcome = SYNC_OK;
        else if (run->ok_writes > 0)
            r->outcome = SYNC_PARTIAL;
        else
            r->outcome = SYNC_FAILED;
        if (r->failed_ops > 0)
            snprintf(r->reason, sizeof r->reason, "%zu operation(s) failed after retries",
                     r->failed_ops);
        else if (r->cancelled_ops > 0)
            snprintf(r->reason, sizeof r->reason,
                     "interrupted by shutdown: %zu operation(s) not sent", r->cancelled_ops);
    }
    if (r->fenced) {
        /* What was not sent stays pending for whoever holds the job next. */
        r->outcome = run->ok_writes > 0 ? SYNC_PARTIAL : SYNC_FAILED;
        snprintf(r->reason, sizeof r->reason, "%s", run->fence_reason);
    }
    r->in_sync = (r->outcome == SYNC_OK) ||
                 (r->outcome == SYNC_DRY_RUN && run->plan && plan_is_empty(run->plan));
    if (r->outcome == SYNC_OK && run->plan && r->failed_ops == 0)
        r->pending = 0;
    /* The same figures as status.json's `changes`: what a dry run would do, else what was
     * applied (sync_status_fill). */
    bool dry = r->outcome == SYNC_DRY_RUN;
    if (run->jseq > 0) {
        /* The cycle's lines are durable before its status is written (the callback writes
         * status.json): the status never names a cycle the journal could lose. */
        char err[512], q[600];
        if (journal_sync(run->opts.journal, err, sizeof err) != 0 && !run->jwarned) {
            run->jwarned = true;
            log_warning(run->job->name, "journal not synced cycle=%s error=%s", r->cycle,
                        log_quote(q, sizeof q, err));
        }
    }
    log_info(run->job->name,
             "cycle finished result=%s in_sync=%s roles_created=%zu roles_updated=%zu "
             "roles_deleted=%zu assignments_added=%zu assignments_removed=%zu pending=%zu "
             "failed_ops=%zu not_converging=%zu unmatched_source_only=%zu "
             "unmatched_target_only=%zu requests=%llu retries=%llu duration_ms=%llu cycle=%s",
             sync_outcome_name(r->outcome), r->in_sync ? "true" : "false",
             dry ? r->planned_roles_created : r->roles_created,
             dry ? r->planned_roles_updated : r->roles_updated,
             dry ? r->planned_roles_deleted : r->roles_deleted,
             dry ? r->planned_assignments_added : r->assignments_added,
             dry ? r->planned_assignments_removed : r->assignments_removed, r->pending,
             r->failed_ops, r->nnot_converging, r->unmatched_source_only, r->unmatched_target_only,
             (unsigned long long)r->requests, (unsigned long long)r->retries,
             (unsigned long long)(util_mono_ms() - run->t0), r->cycle);
    run->cb(r, run->arg);

    for (size_t i = 0; i < r->nnot_converging; i++) {
        free(r->not_converging[i].name);
        free(r->not_converging[i].reason);
    }
    free(r->not_converging);
    plan_free(run->plan);
    for (size_t i = 0; run->adapt_notes && i < run->ssnap->nroles; i++)
        free(run->adapt_notes[i]);
    free(run->adapt_notes);
    free(run->role_ok);
    free(run->assign_ok);
    approve_set_free(run->dels);
    free(run->new_dels);
    mdl_snapshot_free(run->ssnap); /* a view of the shared read is freed before it */
    mdl_snapshot_free(run->tsnap);
    source_unref(run->shared);
    free(run);
}

int sync_start(uv_loop_t *loop, const struct cfg_job *job, const struct prov_tenant *src,
               const struct prov_tenant *tgt, struct diff_memory *mem, const struct sync_opts *opts,
               sync_done_cb cb, void *arg)
{
    struct sync_run *run = xcalloc(1, sizeof *run);
    struct prov_fetch_opts so = {.roles_read = on_roles_read_source, .roles_read_arg = run},
                           to = {.roles_read = on_roles_read_target, .roles_read_arg = run};

    run->loop = loop;
    run->job = job;
    run->src = *src;
    run->tgt = *tgt;
    if (opts->write_gate) {
        run->gate = (struct http_gate){.check = gate_check, .arg = run};
        run->tgt.write_gate = &run->gate;
    }
    run->sops = prov_for_api(src->cfg->api);
    run->tops = prov_for_api(tgt->cfg->api);
    run->mem = mem;
    run->opts = *opts;
    run->cb = cb;
    run->arg = arg;
    run->t0 = util_mono_ms();
    run->res.max_deletes = job->max_deletes;
    counters(run, &run->req0, &run->retry0);
    journal_new_cycle(run->res.cycle);
    log_info(job->name, "cycle started source=%s target=%s dry_run=%s cycle=%s", src->cfg->name,
             tgt->cfg->name, opts->dry_run ? "true" : "false", run->res.cycle);
    run->reads_pending = 2;
    /* The handles are set before any callback can come: callbacks come from the loop. */
    if (opts->source)
        source_join(run, opts->source);
    else
        run->fetch[0] = run->sops->fetch(&run->src, &so, on_read_source, run);
    run->fetch[1] = run->tops->fetch(&run->tgt, &to, on_read_target, run);
    return 0;
}

/* ---- status ---- */

static const char *nz(const char *s)
{
    return s && *s ? s : NULL;
}

void sync_status_fill(struct status_run *run, const struct sync_result *r)
{
    /* A dry run applies nothing: its `changes` are what the plan would do (the metrics'
     * changes_total counts applied changes only, see status.h). */
    if (r->outcome == SYNC_DRY_RUN)
        run->changes = (struct status_changes){
            r->planned_roles_created, r->planned_roles_updated, r->planned_roles_deleted,
            r->planned_assignments_added, r->planned_assignments_removed};
    else
        run->changes = (struct status_changes){r->roles_created, r->roles_updated, r->roles_deleted,
                                               r->assignments_added, r->assignments_removed};
    snprintf(run->cycle, sizeof run->cycle, "%s", r->cycle);
    run->pending = r->pending;
    run->failed_ops = r->failed_ops;
    run->requests = r->requests;
    run->retries = r->retries;
    run->unmatched_source_only = r->unmatched_source_only;
    run->unmatched_target_only = r->unmatched_target_only;
    for (size_t i = 0; i < r->nnot_converging; i++)
        status_run_add_not_converging(run, r->not_converging[i].kind, r->not_converging[i].name,
                                      r->not_converging[i].reason);
    for (size_t i = 0; i < r->nerrors; i++) {
        const struct sync_error *e = &r->errors[i];
        status_run_add_error(run, e->op, nz(e->method), nz(e->path), (int)e->status, e->message,
                             nz(e->correlation_id));
    }
    run->error_count = r->error_count;
    run->refused = r->outcome == SYNC_REFUSED;
    if (run->refused) {
        run->refusal_deletions = r->deletions;
        run->refusal_max_deletes = r->max_deletes;
        run->refusal_not_approved = r->not_approved;
        snprintf(run->refusal_fingerprint, sizeof run->refusal_fingerprint, "%s", r->fingerprint);
    }
    snprintf(run->approved_fingerprint, sizeof run->approved_fingerprint, "%s",
             r->approved ? r->approval : "");
    snprintf(run->abandoned, sizeof run->abandoned, "%s", r->fenced ? r->reason : "");
}

enum status_result sync_status_result(const struct sync_result *r)
{
    switch (r->outcome) {
    case SYNC_OK:
        return STATUS_RESULT_OK;
    case SYNC_PARTIAL:
        return STATUS_RESULT_PARTIAL;
    case SYNC_REFUSED:
        return STATUS_RESULT_REFUSED;
    case SYNC_DRY_RUN:
        return STATUS_RESULT_DRY_RUN;
    default:
        return STATUS_RESULT_FAILED;
    }
}

void sync_status_settle(struct status_job *sj, const struct sync_result *r, bool will_retry)
{
    bool failed = r->outcome == SYNC_FAILED || r->outcome == SYNC_PARTIAL;
    if (r->outcome == SYNC_REFUSED) {
        status_job_set_state(sj, STATUS_JOB_REFUSED, r->reason);
    } else if (failed && r->auth_failed) {
        char reason[600];
        snprintf(reason, sizeof reason, "authentication failed: %s", r->reason);
        status_job_set_state(sj, STATUS_JOB_FAILED, reason);
    } else if (failed) {
        status_job_set_state(sj, will_retry ? STATUS_JOB_WAITING_RETRY : STATUS_JOB_FAILED,
                             r->reason);
    }
}

void sync_record_refusal(const char *state_dir, const char *job, const struct sync_result *r)
{
    char err[512], q[600];
    if (!r->refused_set)
        return;
    if (approve_store_refused(state_dir, job, r->refused_set, r->fingerprint, util_now_ms(), err,
                              sizeof err) != 0)
        log_warning(job,
                    "refused deletions not recorded, --approve can only match them exactly "
                    "error=%s",
                    log_quote(q, sizeof q, err));
}
