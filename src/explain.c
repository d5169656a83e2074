/* explain.c — `rolesyncd --explain`: one user's or one role's part in a cycle, and why
 * (contract in explain.h). The renderers only ask the diff (diff.h queries); explain_run runs
 * the cycle's own reads and planning through sync.c and stops before any write. */
#include "rolesync/explain.h"

#include <stdlib.h>
#include <string.h>

#include "rolesync/diff.h"
#include "rolesync/http.h"
#include "rolesync/log.h"
#include "rolesync/provider.h"
#include "rolesync/recent.h"
#include "rolesync/sync.h"
#include "rolesync/tenants.h"
#include "rolesync/util.h"

#define MAX_DUPS 8 /* users of one key named on a line; more are counted */

static const char *match_name(enum cfg_match_by m)
{
    switch (m) {
    case CFG_MATCH_USERNAME:
        return "username";
    case CFG_MATCH_EXTERNAL_ID:
        return "external id";
    case CFG_MATCH_EMAIL:
    default:
        return "email";
    }
}

/* "(what.include "glob")", "(what.exclude "glob")" or "(no what.include glob matched)". */
static void put_scope(FILE *out, const char *what, bool in, const char *inc, const char *exc)
{
    if (in) {
        fprintf(out, "%s.include ", what);
        plan_put_quoted(out, inc);
    } else if (inc && exc) {
        fprintf(out, "%s.exclude ", what);
        plan_put_quoted(out, exc);
    } else {
        fprintf(out, "no %s.include glob matched", what);
    }
}

/* A qualifier as explain lines name it: home, * (all divisions), the quoted name, or tenant
 * (an undivided tenant). */
static void put_qual(FILE *out, const struct mdl_snapshot *s, uint32_t q)
{
    if (q == MDL_NONE || q >= s->nquals) {
        fputs("none", out);
        return;
    }
    const struct mdl_qual *mq = &s->quals[q];
    if (!s->divided)
        fputs("tenant", out); /* identity: the tenant as a whole */
    else if (mq->home)
        fputs("home", out);
    else if (mq->all)
        fputs("*", out);
    else
        plan_put_quoted(out, mq->name ? mq->name : mq->id);
}

static const char *state_name(enum mdl_user_state st)
{
    return st == MDL_USER_DELETED ? "deleted" : st == MDL_USER_INACTIVE ? "inactive" : "active";
}

/* The users of one side with the key, the representative (first not deleted, else first) and
 * how many are not deleted (only those take part, diff.h). */
struct found {
    uint32_t v[MAX_DUPS];
    size_t n, live;
    uint32_t rep;
};

static void find_side(const struct diff *d, bool target, const char *key, struct found *f)
{
    const struct mdl_snapshot *s = target ? d->tgt : d->src;
    f->n = diff_find_users(d, target, key, f->v, MAX_DUPS);
    f->live = 0;
    f->rep = MDL_NONE;
    for (size_t i = 0; i < f->n && i < MAX_DUPS; i++) {
        if (s->users[f->v[i]].state == MDL_USER_DELETED)
            continue;
        if (f->live++ == 0)
            f->rep = f->v[i];
    }
    if (f->rep == MDL_NONE && f->n)
        f->rep = f->v[0];
    if (f->n > MAX_DUPS) /* the ones not stored: count them as live, the worst case */
        f->live += f->n - MAX_DUPS;
}

static void put_side(FILE *out, const struct diff *d, bool target, const struct found *f,
                     const char *key)
{
    const struct mdl_snapshot *s = target ? d->tgt : d->src;
    const char *side = target ? "target" : "source";
    const char *kn = match_name(d->job->match_by);
    fprintf(out, "  %s: ", side);
    if (f->n == 0) {
        fprintf(out, "no user with %s ", kn);
        plan_put_plain(out, key);
        fprintf(out, " in %s\n", side);
        return;
    }
    if (f->live > 1) {
        fprintf(out, "%zu users with %s ", f->live, kn);
        plan_put_plain(out, key);
        fputs(" (ids", out);
        for (size_t i = 0; i < f->n && i < MAX_DUPS; i++)
            if (s->users[f->v[i]].state != MDL_USER_DELETED) {
                fputc(' ', out);
                plan_put_plain(out, s->users[f->v[i]].id);
            }
        fputs("): ambiguous, every user with that key is skipped\n", out);
        return;
    }
    const struct mdl_user *u = &s->users[f->rep];
    fputs("id ", out);
    plan_put_plain(out, u->id);
    fprintf(out, " %s%s\n", state_name(u->state),
            u->state == MDL_USER_DELETED ? " (deleted users are ignored)" : "");
}

/* ---- one user's grants, row by row ---- */

enum hold { HOLD_NONE = 0, HOLD_DIRECT, HOLD_INHERITED };

struct row {
    int kind;      /* 0: under a source role's heading, 1: under a target role's */
    uint32_t head; /* that role */
    size_t order;  /* insertion order, for a stable sort */
    bool src_row;  /* it starts from a source grant */
    uint32_t srole, squal;
    uint32_t ref, tqual; /* where it goes / is on the target (MDL_NONE: nowhere) */
    enum hold shold, thold;
    const char *sgroup, *tgroup; /* inherited: the group's name (else id), or NULL */
    enum diff_grant_why why;
};

struct rows {
    struct row *v;
    size_t n, cap;
};

static struct row *row_add(struct rows *r)
{
    util_grow((void **)&r->v, &r->cap, r->n + 1, sizeof(*r->v));
    struct row *w = &r->v[r->n];
    memset(w, 0, sizeof(*w));
    w->order = r->n++;
    return w;
}

static int row_cmp(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind - y->kind;
    if (x->head != y->head)
        return x->head < y->head ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* The target user's hold on (role, qual): direct in the snapshot, else inherited (the
 * snapshot's flag or the side's subject read, with its group). */
static enum hold tgt_hold(const struct mdl_user *tu, const struct explain_side *ts, uint32_t role,
                          uint32_t qual, const char **group)
{
    *group = NULL;
    enum hold h = HOLD_NONE;
    for (uint32_t i = 0; tu && i < tu->ngrants; i++) {
        const struct mdl_grant *g = &tu->grants[i];
        if (g->role != role || g->qual != qual)
            continue;
        if (!(g->flags & MDL_GRANT_INHERITED))
            return HOLD_DIRECT;
        h = HOLD_INHERITED;
    }
    for (size_t i = 0; ts && i < ts->n; i++)
        if (ts->v[i].role == role && ts->v[i].qual == qual && !ts->v[i].group_id)
            return HOLD_DIRECT;
    for (size_t i = 0; ts && i < ts->n; i++)
        if (ts->v[i].role == role && ts->v[i].qual == qual) {
            *group = ts->v[i].group_name ? ts->v[i].group_name : ts->v[i].group_id;
            return HOLD_INHERITED;
        }
    return h;
}

static void put_hold(FILE *out, enum hold h, const char *group)
{
    if (h == HOLD_DIRECT) {
        fputs("direct", out);
    } else if (h == HOLD_INHERITED) {
        fputs("inherited", out);
        if (group) {
            fputs(" (group ", out);
            plan_put_quoted(out, group);
            fputc(')', out);
        }
    } else {
        fputs("none", out);
    }
}

/* Whether the user's planned changes hold (ref, qual) added / removed. */
static bool has_change(const struct diff *d, const struct diff_user_change *uc, uint32_t ref,
                       uint32_t qual, bool add)
{
    for (uint32_t i = 0; uc && i < uc->n; i++) {
        const struct diff_change *ch = &d->changes[uc->first + i];
        if (ch->ref == ref && ch->qual == qual && ch->add == add)
            return true;
    }
    return false;
}

/* Why a source grant is not copied, in the words of the explain lines. */
static void put_not_copied(FILE *out, const struct diff *d, const struct row *r)
{
    switch (r->why) {
    case DIFF_GRANT_INHERITED:
        fputs("not copied (inherited grants are never copied)", out);
        break;
    case DIFF_GRANT_ROLE_UNMAPPED: {
        const char *why = d->src_roles[r->srole].reason;
        fprintf(out, "not copied (unmapped role: %s)", why ? why : "no counterpart");
        break;
    }
    case DIFF_GRANT_QUAL_UNMAPPED: {
        const char *why = d->src_quals[r->squal].reason;
        fprintf(out, "skipped (unmapped division: %s on the target)", why ? why : "no counterpart");
        break;
    }
    case DIFF_GRANT_FORCED:
        fputs("never added or removed (forced role: the platform gives it to every user)", out);
        break;
    case DIFF_GRANT_ROLE_OUT_OF_SCOPE:
    case DIFF_GRANT_QUAL_OUT_OF_SCOPE:
    case DIFF_GRANT_NOT_MANAGED:
    case DIFF_GRANT_ASSIGNMENTS_OFF:
    case DIFF_GRANT_ADDITIVE:
    case DIFF_GRANT_PROTECTED_ADMIN:
    case DIFF_GRANT_MIRRORED:
        fprintf(out, "not copied (%s)", diff_grant_why_text(r->why));
        break;
    }
}

/* Why a target grant the source does not call for stays. */
static void put_kept(FILE *out, enum diff_grant_why w)
{
    switch (w) {
    case DIFF_GRANT_INHERITED:
        fputs("kept (inherited grants are never revoked)", out);
        break;
    case DIFF_GRANT_PROTECTED_ADMIN:
        fputs("kept (protected admin role: revoked only when roles.include names it verbatim)",
              out);
        break;
    case DIFF_GRANT_FORCED:
        fputs("kept (forced role: never added or removed)", out);
        break;
    case DIFF_GRANT_ADDITIVE:
        fputs("kept (assignments: additive never removes)", out);
        break;
    case DIFF_GRANT_MIRRORED:
        fputs("no change", out);
        break;
    default:
        fprintf(out, "kept (%s)", diff_grant_why_text(w));
        break;
    }
}

static void put_role_heading(FILE *out, const struct diff *d, const struct row *r)
{
    const struct cfg_job *j = d->job;
    const char *inc, *exc;
    fputs("  role ", out);
    if (r->kind == 0) {
        const struct mdl_role *sr = &d->src->roles[r->srole];
        const struct diff_src_role *ds = &d->src_roles[r->srole];
        bool in = diff_scope_why(&j->roles_include, &j->roles_exclude, sr->name, &inc, &exc);
        plan_put_quoted(out, sr->name);
        fputs(" -> ", out);
        if (ds->map != MDL_NONE)
            plan_put_quoted(out, diff_ref_name(d, ds->map));
        else
            fputs("none", out);
        fputs(" (", out);
        if (sr->foreign)
            fputs("not a tenant role", out);
        else
            put_scope(out, "roles", in, inc, exc);
        if (ds->map != MDL_NONE && util_fold_cmp(sr->name, diff_ref_name(d, ds->map)) != 0)
            fputs(", renamed", out);
        if (ds->status == DIFF_ROLE_CREATE)
            fputs(", created by this cycle", out);
        if (ds->status == DIFF_ROLE_CONFLICT)
            fprintf(out, ", conflict: %s", ds->reason ? ds->reason : "ambiguous");
        if (ds->map != MDL_NONE && ds->map < d->tgt->nroles) {
            const struct diff_tgt_role *tr = &d->tgt_roles[ds->map];
            if (tr->forced)
                fputs(", forced", out);
            if (tr->admin)
                fputs(tr->admin_revocable ? ", admin role named verbatim: revocable"
                                          : ", admin role: protected",
                      out);
        }
        fputs(")\n", out);
        return;
    }
    const struct diff_tgt_role *tr = &d->tgt_roles[r->head];
    bool in = !d->tgt->roles[r->head].foreign &&
              diff_scope_why(&j->roles_include, &j->roles_exclude, tr->scope_name, &inc, &exc);
    plan_put_quoted(out, d->tgt->roles[r->head].name);
    fputs(" on the target only (", out);
    if (d->tgt->roles[r->head].foreign)
        fputs("not a tenant role", out);
    else
        put_scope(out, "roles", in, inc, exc);
    if (tr->forced)
        fputs(", forced", out);
    if (tr->admin)
        fputs(tr->admin_revocable ? ", admin role named verbatim: revocable"
                                  : ", admin role: protected",
              out);
    fputs(")\n", out);
}

/* Whether the cycle deletes target role t (prune), and with it every grant of it. */
static bool role_pruned(const struct diff *d, uint32_t t)
{
    for (size_t i = 0; i < d->nrole_ops; i++)
        if (d->role_ops[i].action == DIFF_ROLE_OP_DELETE && d->role_ops[i].tgt_role == t)
            return true;
    return false;
}

/* One row; true when its grant goes with a role the prune deletes. */
static bool put_row(FILE *out, const struct diff *d, const struct diff_user_change *uc,
                    const struct row *r)
{
    bool with_role = false;
    bool divided = d->src->divided || d->tgt->divided;
    fputs("    ", out);
    if (divided) {
        fputs("division ", out);
        if (r->src_row) {
            put_qual(out, d->src, r->squal);
            fputs(" -> ", out);
            put_qual(out, d->tgt, r->tqual);
            const char *inc, *exc;
            if (!diff_qual_scope_why(d, r->squal, &inc, &exc) && d->src->divided &&
                d->tgt->divided) {
                fputs(" (", out);
                put_scope(out, "divisions", false, inc, exc);
                fputc(')', out);
            }
        } else {
            put_qual(out, d->tgt, r->tqual);
        }
        fputs(": ", out);
    }
    fputs("source ", out);
    put_hold(out, r->shold, r->sgroup);
    fputs(", target ", out);
    put_hold(out, r->thold, r->tgroup);
    fputs(": ", out);
    bool add = r->ref != MDL_NONE && r->tqual != MDL_NONE && has_change(d, uc, r->ref, r->tqual, 1);
    bool rem = r->ref != MDL_NONE && r->tqual != MDL_NONE && has_change(d, uc, r->ref, r->tqual, 0);
    if (r->src_row) {
        if (add)
            fputs(r->thold == HOLD_INHERITED
                      ? "cycle adds it (a direct grant: an inherited one does not count)"
                      : "cycle adds it",
                  out);
        else if (r->why == DIFF_GRANT_MIRRORED)
            fputs(r->thold == HOLD_DIRECT ? "in sync" : "no change", out);
        else
            put_not_copied(out, d, r);
        if (rem)
            fputs("; cycle removes the target's direct grant (the source holds none)", out);
        else if (!add && r->why != DIFF_GRANT_MIRRORED && r->thold == HOLD_DIRECT) {
            struct mdl_grant g = {r->ref, (uint16_t)r->tqual, 0};
            enum diff_grant_why tw = r->ref < d->tgt->nroles ? diff_tgt_grant_why(d, &g) : r->why;
            if (tw != r->why) { /* why the target's own grant stays, when that is another rule */
                fputs("; target's grant ", out);
                put_kept(out, tw);
            }
        }
    } else if (rem) {
        fputs("cycle removes it (the source does not hold it directly)", out);
    } else if (r->thold != HOLD_NONE && r->ref != MDL_NONE && role_pruned(d, r->ref)) {
        /* whatever keeps the grant in the assignment phase, the role's deletion takes it */
        fputs("removed with its role: prune deletes the role at the end of the cycle", out);
        with_role = true;
    } else {
        put_kept(out, r->why);
    }
    fputc('\n', out);
    return with_role;
}

static void user_rows(const struct diff *d, uint32_t su, uint32_t tu, const struct explain_side *ss,
                      const struct explain_side *ts, struct rows *rows)
{
    const struct mdl_user *s = &d->src->users[su], *t = &d->tgt->users[tu];
    /* source grants: the snapshot's, then those inherited that the subject read found */
    size_t nsrc = s->ngrants + (ss ? ss->n : 0);
    for (size_t i = 0; i < nsrc; i++) {
        struct mdl_grant g;
        const char *group = NULL;
        if (i < s->ngrants) {
            g = s->grants[i];
        } else {
            const struct explain_grant *in = &ss->v[i - s->ngrants];
            g = (struct mdl_grant){in->role, (uint16_t)in->qual,
                                   in->group_id ? MDL_GRANT_INHERITED : 0};
            group = in->group_name ? in->group_name : in->group_id;
        }
        struct row *r = row_add(rows);
        r->kind = 0;
        r->head = g.role;
        r->src_row = true;
        r->srole = g.role;
        r->squal = g.qual;
        r->why = diff_src_grant_why(d, &g, &r->ref, &r->tqual);
        r->shold = (g.flags & MDL_GRANT_INHERITED) ? HOLD_INHERITED : HOLD_DIRECT;
        r->sgroup = group;
        if (r->ref != MDL_NONE && r->ref < d->tgt->nroles && r->tqual != MDL_NONE)
            r->thold = tgt_hold(t, ts, r->ref, r->tqual, &r->tgroup);
    }
    size_t nsrc_rows = rows->n;
    /* target grants no source row stands for */
    size_t ntgt = t->ngrants + (ts ? ts->n : 0);
    for (size_t i = 0; i < ntgt; i++) {
        struct mdl_grant g;
        const char *group = NULL;
        if (i < t->ngrants) {
            g = t->grants[i];
        } else {
            const struct explain_grant *in = &ts->v[i - t->ngrants];
            g = (struct mdl_grant){in->role, (uint16_t)in->qual,
                                   in->group_id ? MDL_GRANT_INHERITED : 0};
            group = in->group_name ? in->group_name : in->group_id;
        }
        bool covered = false;
        for (size_t k = 0; k < rows->n && !covered; k++)
            covered = rows->v[k].ref == g.role && rows->v[k].tqual == g.qual &&
                      (k < nsrc_rows || rows->v[k].thold == HOLD_DIRECT);
        if (covered)
            continue;
        struct row *r = row_add(rows);
        uint32_t src = d->tgt_roles[g.role].src;
        r->kind = src != MDL_NONE ? 0 : 1;
        r->head = src != MDL_NONE ? src : g.role;
        r->srole = src;
        r->squal = MDL_NONE;
        r->ref = g.role;
        r->tqual = g.qual;
        r->thold = (g.flags & MDL_GRANT_INHERITED) ? HOLD_INHERITED : HOLD_DIRECT;
        r->tgroup = group;
        r->why = diff_tgt_grant_why(d, &g);
    }
    qsort(rows->v, rows->n, sizeof(*rows->v), row_cmp);
}

static void put_guard(FILE *out, const struct plan *p)
{
    if (p->refused)
        fprintf(out,
                "  guard: the job's plan has %zu deletions, over max_deletes %u: a cycle is "
                "refused and writes nothing (--once --force-deletes, or --approve)\n",
                p->deletions, p->max_deletes);
}

static void put_unread(FILE *out, const char *side, const struct mdl_snapshot *s,
                       const struct explain_side *es)
{
    if (s->divided && (!es || !es->read))
        fprintf(out, "  note: the %s user's inherited grants were not read (direct grants only)\n",
                side);
}

int explain_user(const struct plan *p, const char *key, const struct explain_side *ss,
                 const struct explain_side *ts, FILE *out)
{
    const struct diff *d = p->diff;
    const struct cfg_job *j = d->job;
    const char *kn = match_name(j->match_by);
    struct found fs, ft;
    find_side(d, false, key, &fs);
    find_side(d, true, key, &ft);

    fputs("user ", out);
    plan_put_plain(out, key);
    if (fs.n == 0 && ft.n == 0) {
        fprintf(out, ": not found (no user with %s ", kn);
        plan_put_plain(out, key);
        fputs(" in source or target)\n", out);
        return 1;
    }
    const struct mdl_user *any =
        fs.rep != MDL_NONE ? &d->src->users[fs.rep] : &d->tgt->users[ft.rep];
    const char *inc, *exc;
    bool in =
        diff_scope_why(&j->users_include, &j->users_exclude, diff_user_key(d, any), &inc, &exc);
    fprintf(out, ": %s (", in ? "in scope" : "out of scope");
    put_scope(out, "users", in, inc, exc);
    fputs(")\n", out);
    put_side(out, d, false, &fs, key);
    put_side(out, d, true, &ft, key);

    uint32_t su = fs.rep, tu = ft.rep;
    bool matched = in && su != MDL_NONE && tu != MDL_NONE && diff_matched_source(d, tu) == su;
    fputs("  match: ", out);
    if (matched) {
        fprintf(out, "matched by %s\n", kn);
    } else {
        if (!in)
            fputs("not matched: user out of scope (never touched)", out);
        else if (fs.live > 1 || ft.live > 1)
            fputs("not matched: ambiguous", out);
        else if (fs.live == 0 || ft.live == 0) {
            fprintf(out, "unmatched: no user with %s ", kn);
            plan_put_plain(out, key); /* the operator's argument: escaped like any name */
            fprintf(out, " in %s (reported, never created)", fs.live == 0 ? "source" : "target");
        } else
            fputs("not matched", out);
        fputs("\n  cycle: no change for this user\n", out);
        return 0;
    }
    /* assignments: off still shows the rows: a role the prune deletes takes its grants */
    struct rows rows = {0};
    size_t npruned = 0;
    user_rows(d, su, tu, ss, ts, &rows);
    const struct diff_user_change *uc = diff_user_changes(d, tu);
    for (size_t i = 0; i < rows.n; i++) {
        const struct row *r = &rows.v[i];
        if (i == 0 || r->kind != rows.v[i - 1].kind || r->head != rows.v[i - 1].head)
            put_role_heading(out, d, r);
        npruned += put_row(out, d, uc, r);
    }
    if (rows.n == 0)
        fputs("  no grants on either side\n", out);
    free(rows.v);
    size_t nadd = 0, nrem = 0;
    for (uint32_t i = 0; uc && i < uc->n; i++)
        *(d->changes[uc->first + i].add ? &nadd : &nrem) += 1;
    if (nadd + nrem) {
        fprintf(out, "  cycle: adds %zu, removes %zu grant(s) of this user", nadd, nrem);
        if (npruned)
            fprintf(out, "; %zu more go with the roles prune deletes", npruned);
        fputc('\n', out);
    } else if (npruned) {
        fprintf(out, "  cycle: %zu grant(s) of this user go with the roles prune deletes\n",
                npruned);
    } else {
        fputs(j->assignments == CFG_ASSIGN_OFF
                  ? "  cycle: no change for this user (assignments: off)\n"
                  : "  cycle: no change for this user\n",
              out);
    }
    put_guard(out, p);
    put_unread(out, "source", d->src, ss);
    put_unread(out, "target", d->tgt, ts);
    return 0;
}

/* ---- one role ---- */

static const char *rename_to(const struct cfg_job *j, const char *src_name)
{
    for (size_t i = 0; i < j->nrename; i++)
        if (util_fold_cmp(j->rename[i].from, src_name) == 0)
            return j->rename[i].to;
    return src_name;
}

static void put_role_side(FILE *out, const char *side, const struct mdl_snapshot *s, uint32_t r)
{
    fprintf(out, "  %s: ", side);
    if (r == MDL_NONE) {
        fputs("none\n", out);
        return;
    }
    const struct mdl_role *m = &s->roles[r];
    plan_put_quoted(out, m->name);
    fputs(" id ", out);
    plan_put_plain(out, m->id);
    if (m->builtin_key) {
        fputs(", built-in ", out);
        plan_put_quoted(out, m->builtin_key);
    } else {
        fputs(m->foreign ? ", not a tenant role" : ", custom", out);
    }
    if (m->forced)
        fputs(", forced", out);
    if (m->admin)
        fputs(", admin", out);
    fputc('\n', out);
}

/* Grants of role r per qualifier: "home 3 direct, 1 inherited; "EMEA" 1 direct". */
static void put_holders(FILE *out, const char *side, const struct mdl_snapshot *s, uint32_t r)
{
    if (r == MDL_NONE)
        return;
    const struct mdl_role *m = &s->roles[r];
    fprintf(out, "  holders in %s: ", side);
    if (m->grants_unread || m->recent) {
        fputs("not read (this job reads no grants of it)\n", out);
        return;
    }
    size_t *direct = xcalloc(s->nquals + 1, sizeof(size_t)),
           *inher = xcalloc(s->nquals + 1, sizeof(size_t));
    for (size_t u = 0; u < s->nusers; u++) {
        const struct mdl_user *us = &s->users[u];
        if (us->state == MDL_USER_DELETED)
            continue;
        for (uint32_t k = 0; k < us->ngrants; k++)
            if (us->grants[k].role == r)
                (us->grants[k].flags & MDL_GRANT_INHERITED ? inher : direct)[us->grants[k].qual]++;
    }
    bool any = false;
    for (size_t q = 0; q < s->nquals; q++) {
        if (!direct[q] && !inher[q])
            continue;
        if (any)
            fputs("; ", out);
        any = true;
        put_qual(out, s, (uint32_t)q);
        fprintf(out, " %zu direct", direct[q]);
        if (inher[q])
            fprintf(out, ", %zu inherited", inher[q]);
    }
    if (m->other_holders) {
        fprintf(out, "%s%u other subject(s) (groups, OAuth clients)", any ? "; " : "",
                m->other_holders);
        any = true;
    }
    fputs(any ? "\n" : "none\n", out);
    free(direct);
    free(inher);
}

static const struct diff_role_op *find_op(const struct diff *d, uint32_t s, uint32_t t)
{
    for (size_t i = 0; i < d->nrole_ops; i++) {
        const struct diff_role_op *op = &d->role_ops[i];
        if ((s != MDL_NONE && op->src_role == s) || (t != MDL_NONE && op->tgt_role == t))
            return op;
    }
    return NULL;
}

static const char *fields_text(unsigned f)
{
    switch (f & (DIFF_F_DESCRIPTION | DIFF_F_DEFINITION)) {
    case DIFF_F_DESCRIPTION:
        return "description";
    case DIFF_F_DEFINITION:
        return "permission policies";
    default:
        return "description, permission policies";
    }
}

static void put_prune(FILE *out, const struct diff *d, uint32_t t, const struct diff_role_op *op)
{
    const struct mdl_role *m = &d->tgt->roles[t];
    const struct diff_tgt_role *tr = &d->tgt_roles[t];
    fputs("  prune: ", out);
    if (tr->src != MDL_NONE) {
        fputs("no (source role ", out);
        plan_put_quoted(out, d->src->roles[tr->src].name);
        fputs(" maps to it)\n", out);
        return;
    }
    if (op && op->action == DIFF_ROLE_OP_DELETE) {
        fprintf(out,
                "candidate: no source role maps to it; the cycle deletes it last, taking %u "
                "in-scope grant(s) the assignment phase has not removed\n",
                op->holders);
        return;
    }
    for (size_t i = 0; i < d->report.nnot_pruned; i++)
        if (d->report.not_pruned[i].tgt_role == t) {
            fprintf(out, "not pruned: held by %u subject(s) outside this job's scope\n",
                    d->report.not_pruned[i].holders);
            return;
        }
    if (!d->job->prune)
        fputs("no (prune: false)\n", out);
    else if (m->foreign || m->builtin_key)
        fputs("never (built-in or not a tenant role)\n", out);
    else if (!tr->in_scope)
        fputs("never (out of scope)\n", out);
    else if (tr->conflict)
        fputs("no (part of a conflict)\n", out);
    else if (m->grants_unread)
        fputs("no (its grants were not read)\n", out);
    else
        fputs("no (not converging: the target kept it after a deletion)\n", out);
}

/* Why a cycle leaves role (s, t) as it is: the first of the diff's reasons that applies. */
static void put_no_change(FILE *out, const struct diff *d, uint32_t s, uint32_t t)
{
    const struct cfg_job *j = d->job;
    if (s == MDL_NONE) {
        fputs(j->prune ? "not pruned, see the prune line" : "prune: false", out);
        return;
    }
    const struct diff_src_role *sr = &d->src_roles[s];
    const struct mdl_role *r = &d->src->roles[s];
    bool defs = j->definitions && d->src->api == d->tgt->api;
    if (!sr->in_scope || sr->status == DIFF_ROLE_OUT_OF_SCOPE)
        fputs("out of scope", out);
    else if (sr->status == DIFF_ROLE_CONFLICT || sr->status == DIFF_ROLE_FOREIGN)
        fputs(sr->reason ? sr->reason : "left alone", out);
    else if (r->uncopyable &&
             (sr->status == DIFF_ROLE_UNMAPPED || (defs && diff_def_fields(d, s, t))))
        fputs("not copied: its definition names org-specific objects", out);
    else if (sr->status == DIFF_ROLE_UNMAPPED && !defs)
        fprintf(out, "unmapped: %s; %s", sr->reason,
                j->definitions ? "definitions are not mirrored across apis"
                               : "roles.definitions is false, so it is not created");
    else if (sr->status == DIFF_ROLE_UNMAPPED)
        fprintf(out, "unmapped: %s", sr->reason);
    else if (t == MDL_NONE || !diff_def_fields(d, s, t))
        fputs("definition in sync", out);
    else if (!defs)
        fputs(j->definitions ? "definitions are not mirrored across apis"
                             : "roles.definitions is false",
              out);
    else
        fputs("no update planned", out);
}

int explain_role(const struct plan *p, const char *name, FILE *out)
{
    const struct diff *d = p->diff;
    const struct cfg_job *j = d->job;
    const struct mdl_snapshot *src = d->src, *tgt = d->tgt;
    uint32_t s = mdl_find_role_by_name(src, name, NULL), t = MDL_NONE;
    if (s == MDL_NONE) {
        /* a target name: the role itself, or the target name of a rename */
        t = mdl_find_role_by_name(tgt, name, NULL);
        if (t != MDL_NONE)
            s = d->tgt_roles[t].src;
        for (size_t i = 0; s == MDL_NONE && i < j->nrename; i++)
            if (util_fold_cmp(j->rename[i].to, name) == 0)
                s = mdl_find_role_by_name(src, j->rename[i].from, NULL);
    }
    if (s != MDL_NONE && t == MDL_NONE) {
        const struct diff_src_role *sr = &d->src_roles[s];
        if (sr->map != MDL_NONE && sr->map < tgt->nroles)
            t = sr->map;
        else if (sr->status != DIFF_ROLE_CREATE && !src->roles[s].builtin_key)
            t = mdl_find_role_by_name(tgt, rename_to(j, src->roles[s].name), NULL);
    }
    fputs("role ", out);
    plan_put_quoted(out, name);
    if (s == MDL_NONE && t == MDL_NONE) {
        fputs(": not found (no role with that name in source or target)\n", out);
        return 1;
    }
    const char *scope_name = s != MDL_NONE ? src->roles[s].name : d->tgt_roles[t].scope_name;
    bool foreign = s != MDL_NONE ? src->roles[s].foreign : tgt->roles[t].foreign;
    const char *inc, *exc;
    bool in =
        !foreign && diff_scope_why(&j->roles_include, &j->roles_exclude, scope_name, &inc, &exc);
    fprintf(out, ": %s (", in ? "in scope" : "out of scope");
    if (foreign)
        fputs("not a tenant role", out);
    else
        put_scope(out, "roles", in, inc, exc);
    fputs(")\n", out);
    put_role_side(out, "source", src, s);
    put_role_side(out, "target", tgt, t);

    const struct diff_role_op *op = find_op(d, s, t);
    fputs("  mapping: ", out);
    if (s == MDL_NONE) {
        fputs("no source role maps to it\n", out);
    } else {
        const struct diff_src_role *sr = &d->src_roles[s];
        switch (sr->status) {
        case DIFF_ROLE_MAPPED:
            fputs("mapped", out);
            break;
        case DIFF_ROLE_CREATE:
            fputs("no counterpart: created by this cycle as ", out);
            plan_put_quoted(out, diff_ref_name(d, sr->map));
            break;
        case DIFF_ROLE_OUT_OF_SCOPE:
            fputs(sr->map != MDL_NONE ? "mapped, out of scope" : "out of scope", out);
            break;
        case DIFF_ROLE_UNMAPPED:
            fprintf(out, "unmapped: %s (its grants are skipped)", sr->reason);
            break;
        case DIFF_ROLE_CONFLICT:
            fprintf(out, "conflict: %s (left alone)", sr->reason);
            break;
        case DIFF_ROLE_FOREIGN:
            fputs("not a tenant role (never touched)", out);
            break;
        }
        if (sr->map != MDL_NONE && sr->map < tgt->nroles &&
            util_fold_cmp(src->roles[s].name, tgt->roles[sr->map].name) != 0)
            fputs(" (renamed)", out);
        fputc('\n', out);
        if (src->roles[s].uncopyable) {
            fputs("  uncopyable: its definition names org-specific objects (", out);
            plan_put_plain(out, src->roles[s].uncopyable);
            fputs("): never created or updated; its grants are mirrored only where the role "
                  "exists on the target\n",
                  out);
        }
    }
    if (s != MDL_NONE && t != MDL_NONE && src->api != tgt->api) {
        /* two apis' definitions are different things (permission policies, none): comparing
         * them would always say "differs" */
        fputs("  definition: not compared (definitions are not mirrored across apis)\n", out);
    } else if (s != MDL_NONE && t != MDL_NONE) {
        unsigned f = diff_def_fields(d, s, t);
        fputs("  definition: ", out);
        fputs(f ? "differs (" : "equal", out);
        if (f)
            fprintf(out, "%s)", fields_text(f));
        if (!j->definitions)
            fputs("; roles.definitions is false: definitions are not written", out);
        fputc('\n', out);
    }
    if (t != MDL_NONE) {
        const struct diff_tgt_role *tr = &d->tgt_roles[t];
        if (tr->forced)
            fputs("  forced: the platform gives it to every user; never added or removed\n", out);
        if (tr->admin) {
            if (tr->admin_revocable)
                fputs("  admin: revocable (roles.include names it verbatim)\n", out);
            else {
                fputs("  admin: protected (revoked only when roles.include names ", out);
                plan_put_quoted(out, tr->scope_name);
                fputs(" verbatim)\n", out);
            }
        }
        put_prune(out, d, t, op);
    }
    fputs("  cycle: ", out);
    if (op && op->action == DIFF_ROLE_OP_CREATE) {
        fputs("creates it as ", out);
        plan_put_quoted(out, op->name);
    } else if (op && op->action == DIFF_ROLE_OP_UPDATE) {
        fprintf(out, "updates it (%s)", fields_text(op->fields));
    } else if (op && op->action == DIFF_ROLE_OP_DELETE) {
        fputs("deletes it (prune)", out);
    } else {
        fputs("no change to the role (", out);
        put_no_change(out, d, s, t);
        fputc(')', out);
    }
    fputc('\n', out);
    uint32_t ref = s != MDL_NONE && d->src_roles[s].map != MDL_NONE ? d->src_roles[s].map : t;
    size_t nadd = 0, nrem = 0;
    for (size_t i = 0; ref != MDL_NONE && i < d->nchanges; i++)
        if (d->changes[i].ref == ref)
            *(d->changes[i].add ? &nadd : &nrem) += 1;
    fprintf(out, "  assignments: cycle adds %zu, removes %zu grant(s) of it\n", nadd, nrem);
    put_holders(out, "source", src, s);
    put_holders(out, "target", tgt, t);
    put_guard(out, p);
    return 0;
}

/* ---- the command ---- */

struct explain_run {
    bool done;   /* the cycle's callback ran */
    bool failed; /* ... without a plan: `reason` says why */
    char reason[600];
    struct plan *plan;              /* taken from the cycle (sync_opts.inspect), owned */
    struct mdl_snapshot *src, *tgt; /* the plan's snapshots, owned (freed after the plan) */
    /* the user's own grants, per side ([0] source, [1] target) */
    unsigned pending;             /* subject reads in flight */
    struct explain_grant *inh[2]; /* what they found beyond the snapshot */
    size_t ninh[2];
    bool read[2];                            /* that side's read succeeded */
    const struct mdl_snapshot *side_snap[2]; /* the snapshot its ids resolve against */
    const char *side_user[2];                /* the user's id (borrowed from the snapshot) */
};

static bool on_inspect(struct plan *p, struct mdl_snapshot *src, struct mdl_snapshot *tgt,
                       void *arg)
{
    struct explain_run *er = arg;
    er->plan = p;
    er->src = src;
    er->tgt = tgt;
    return true;
}

static void on_cycle(const struct sync_result *r, void *arg)
{
    struct explain_run *er = arg;
    er->done = true;
    if (!er->plan) {
        er->failed = true;
        snprintf(er->reason, sizeof er->reason, "%s", r->reason[0] ? r->reason : "read failed");
    }
}

struct subject_ctx {
    struct explain_run *er;
    int side;
};

static void on_subject(const struct prov_subject_grant *g, size_t n,
                       const struct prov_read_error *err, void *arg)
{
    struct subject_ctx *c = arg;
    struct explain_run *er = c->er;
    int side = c->side;
    free(c);
    er->pending--;
    if (!g && err) {
        char q[800];
        log_warning(NULL,
                    "cannot read the user's own grants; inherited grants not shown side=%s "
                    "error=%s",
                    side ? "target" : "source", log_quote(q, sizeof q, err->message));
        return;
    }
    const struct mdl_snapshot *s = er->side_snap[side];
    er->read[side] = true;
    er->inh[side] = xcalloc(n + 1, sizeof(struct explain_grant));
    for (size_t i = 0; i < n; i++) {
        bool direct = strcmp(g[i].subject_id, er->side_user[side]) == 0;
        uint32_t role = mdl_find_role_by_id(s, g[i].role_id),
                 q = mdl_find_qual_by_id(s, g[i].qual_id);
        if (role == MDL_NONE || q == MDL_NONE)
            continue; /* a role or division the listing did not show: nothing to explain */
        if (direct && !s->roles[role].grants_unread)
            continue; /* the snapshot has it, as the cycle read it */
        er->inh[side][er->ninh[side]++] = (struct explain_grant){
            role, q, direct ? NULL : mdl_strdup((struct mdl_snapshot *)s, g[i].subject_id),
            g[i].subject_name ? mdl_strdup((struct mdl_snapshot *)s, g[i].subject_name) : NULL};
    }
}

/* The job --job names: exactly one cfg_job (a job with a target list needs NAME/TARGET). */
static const struct cfg_job *pick_job(const struct cfg_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->njobs; i++)
        if (strcmp(cfg->jobs[i].name, name) == 0)
            return &cfg->jobs[i];
    bool group = false;
    for (size_t i = 0; i < cfg->njobs; i++)
        group = group || (cfg->jobs[i].group && strcmp(cfg->jobs[i].group, name) == 0);
    if (!group) {
        fprintf(stderr, "rolesyncd: no job named \"%s\" in %s\n", name, cfg->file);
        return NULL;
    }
    fprintf(stderr,
            "rolesyncd: job \"%s\" has several targets; --explain needs one of them:", name);
    for (size_t i = 0; i < cfg->njobs; i++)
        if (cfg->jobs[i].group && strcmp(cfg->jobs[i].group, name) == 0)
            fprintf(stderr, " --job %s", cfg->jobs[i].name);
    fputc('\n', stderr);
    return NULL;
}

static void run_until(uv_loop_t *loop, const bool *done, const unsigned *pending)
{
    while (!(done ? *done : *pending == 0))
        if (!uv_run(loop, UV_RUN_ONCE))
            break;
}

int explain_run(const struct cfg_config *cfg, const char *jobname, const char *user,
                const char *role, FILE *out)
{
    const struct cfg_job *job = pick_job(cfg, jobname);
    if (!job)
        return 1;
    uv_loop_t loop;
    char err[512];
    if (uv_loop_init(&loop) != 0) {
        fprintf(stderr, "rolesyncd: cannot create the event loop\n");
        return 1;
    }
    struct http_engine *engine = http_engine_new(&loop, NULL, err, sizeof err);
    if (!engine) {
        fprintf(stderr, "rolesyncd: %s\n", err);
        uv_loop_close(&loop);
        return 1;
    }
    int code = 1;
    struct explain_run er = {0};
    struct recent_roles *recent = NULL;
    struct tnt_set *tenants = tnt_set_new(&loop, engine, cfg, NULL, err, sizeof err);
    if (!tenants) {
        fprintf(stderr, "rolesyncd: %s\n", err);
        goto out;
    }
    /* What the daemon created lately, as a cycle trusts it (product.md 4a.8) -- read, never
     * written back. */
    recent = recent_open(cfg->state_dir, err, sizeof err);
    recent_detach(recent);
    struct diff_memory *mem = diff_memory_new();
    const struct prov_tenant *st = tnt_find(tenants, job->source),
                             *tt = tnt_find(tenants, job->target);
    struct sync_opts opts = {
        .dry_run = true, .recent = recent, .inspect = on_inspect, .inspect_arg = &er};
    sync_start(&loop, job, st, tt, mem, &opts, on_cycle, &er);
    run_until(&loop, &er.done, NULL);
    diff_memory_free(mem);
    if (!er.plan) {
        fprintf(stderr, "rolesyncd: job %s: cannot explain, the cycle's reads failed: %s\n",
                job->name, er.failed ? er.reason : "cycle did not complete");
        goto out;
    }
    if (role) {
        code = explain_role(er.plan, role, out);
        goto out;
    }
    /* the user's own grants on each side whose cycle reads see direct grants only */
    const struct prov_tenant *side_t[2] = {st, tt};
    for (int side = 0; side < 2; side++) {
        const struct mdl_snapshot *s = side ? er.tgt : er.src;
        const struct prov_ops *ops = prov_for_api(side_t[side]->cfg->api);
        /* the one live user with the key, as explain_user picks it: a deleted user sharing
         * the key does not cost the live one its subject read */
        struct found f;
        find_side(er.plan->diff, side == 1, user, &f);
        if (!ops->subject_grants || f.live != 1)
            continue;
        er.side_snap[side] = s;
        er.side_user[side] = s->users[f.rep].id;
        struct subject_ctx *c = xcalloc(1, sizeof *c);
        c->er = &er;
        c->side = side;
        er.pending++;
        ops->subject_grants(side_t[side], s->users[f.rep].id, on_subject, c);
    }
    run_until(&loop, NULL, &er.pending);
    struct explain_side es[2];
    for (int side = 0; side < 2; side++)
        es[side] = (struct explain_side){er.read[side], er.inh[side], er.ninh[side]};
    code = explain_user(er.plan, user, &es[0], &es[1], out);
out:
    fflush(out);
    plan_free(er.plan);
    mdl_snapshot_free(er.src);
    mdl_snapshot_free(er.tgt);
    free(er.inh[0]);
    free(er.inh[1]);
    recent_free(recent);
    tnt_set_free(tenants);
    http_engine_close(engine);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        log_warning(NULL, "event loop closed with handles still open");
    return code;
}
