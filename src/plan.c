/* plan.c — guard, write economy, phases, memory notes and plan text (contract in plan.h). */
#include "rolesync/plan.h"

#include <stdlib.h>
#include <string.h>

#include "rolesync/util.h"

struct plan_priv {
    uint32_t *items; /* storage behind every plan_assign_op.items */
    size_t nitems, items_cap;
    size_t ops_cap, notes_cap;
};

static uint32_t items_reserve(struct plan *p, size_t n)
{
    struct plan_priv *q = p->priv;
    util_grow((void **)&q->items, &q->items_cap, q->nitems + n, sizeof(uint32_t));
    uint32_t off = (uint32_t)q->nitems;
    q->nitems += n;
    return off;
}

static size_t ceil_div(size_t a, size_t b)
{
    return (a + b - 1) / b;
}

/* Ops store the offset into items in `items` (as an integer) until the storage stops moving. */
static void push_op(struct plan *p, enum plan_assign_kind kind, uint32_t ref, uint32_t qual,
                    uint32_t user, uint32_t off, uint32_t n)
{
    util_grow((void **)&p->assign_ops, &p->priv->ops_cap, p->nassign_ops + 1,
              sizeof(*p->assign_ops));
    p->assign_ops[p->nassign_ops++] =
        (struct plan_assign_op){kind, ref, qual, user, (const uint32_t *)(uintptr_t)off, n};
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Whether every direct grant the user holds of role `ref` is among its removals ch[0..nrem). */
static bool all_grants_removed(const struct mdl_user *u, uint32_t ref, const struct diff_change *ch,
                               uint32_t nrem)
{
    for (uint32_t k = 0; k < u->ngrants; k++) {
        const struct mdl_grant *g = &u->grants[k];
        if (g->role != ref || (g->flags & MDL_GRANT_INHERITED))
            continue;
        bool removed = false;
        for (uint32_t r = 0; r < nrem && !removed; r++)
            removed = ch[r].ref == ref && ch[r].qual == g->qual;
        if (!removed)
            return false;
    }
    return true;
}

/* Whether one of the adds ch[0..nadd) grants role `ref` (in any qualifier). */
static bool gains_role(const struct diff_change *ch, uint32_t nadd, uint32_t ref)
{
    for (uint32_t k = 0; k < nadd; k++)
        if (ch[k].ref == ref)
            return true;
    return false;
}

/* Removals come first in a user's run of changes (diff.h): how many. */
static uint32_t removal_count(const struct diff *d, const struct diff_user_change *uc)
{
    uint32_t n = 0;
    while (n < uc->n && !d->changes[uc->first + n].add)
        n++;
    return n;
}

/* ---- targets that write a user's whole role set (no MDL_CAP_GRANT_WRITES) ----

 * One PUT of the full new role set per changed user: the roles it holds directly, less those
 * whose every grant goes, plus the added ones. */
static void build_user_sets(struct plan *p)
{
    const struct diff *d = p->diff;
    for (size_t i = 0; i < d->nusers; i++) {
        const struct diff_user_change *uc = &d->users[i];
        const struct mdl_user *u = &d->tgt->users[uc->tgt_user];
        const struct diff_change *ch = &d->changes[uc->first];
        uint32_t max = u->ngrants + uc->n;
        uint32_t off = items_reserve(p, max);
        uint32_t *set = p->priv->items + off, n = 0;
        uint32_t nrem = removal_count(d, uc);
        for (uint32_t k = 0; k < u->ngrants; k++) {
            const struct mdl_grant *g = &u->grants[k];
            if ((g->flags & MDL_GRANT_INHERITED) || (n > 0 && set[n - 1] == g->role))
                continue; /* grants are sorted by role: one entry per role */
            if (!all_grants_removed(u, g->role, ch, nrem))
                set[n++] = g->role;
        }
        for (uint32_t k = nrem; k < uc->n; k++)
            set[n++] = ch[k].ref;
        qsort(set, n, sizeof(uint32_t), cmp_u32);
        uint32_t w = 0; /* a role added in one qualifier that is held in another */
        for (uint32_t k = 0; k < n; k++)
            if (w == 0 || set[w - 1] != set[k])
                set[w++] = set[k];
        n = w;
        p->priv->nitems -= max - n; /* give back what was not used */
        push_op(p, PLAN_ASSIGN_USER_SET, MDL_NONE, MDL_NONE, uc->tgt_user, off, n);
    }
    p->cost_per_user = d->nusers;
    p->strategy = d->nusers ? PLAN_STRATEGY_PER_USER : PLAN_STRATEGY_NONE;
}

/* ---- targets that write grants (MDL_CAP_GRANT_WRITES) ----

 * Each changed user's adds travel either in role-wide batches (one role, one qualifier, up to
 * PLAN_BATCH_MAX users) or in one request of its own; so do its removals, in role-wide
 * revocations (one role, every qualifier) or one request of its own. A revocation takes the
 * role from the user in every qualifier, so it carries a user's removals of a role only when
 * they are all of that user's direct grants of it (a grant elsewhere, in an out-of-scope
 * qualifier say, must stay): any other removal forces the user's removals into its own
 * request, where the others then ride for free. */
struct grant_mix {
    unsigned char *add_put, *rem_put; /* per diff user: adds / removals in its own request */
    unsigned char *rem_slot;          /* per change: the removal that stands for its (user,
                                         role) in a revocation (the first of each role) */
    size_t *cnt_add, *cnt_rem;        /* batch members per (role, qualifier) / per role */
    size_t nq;
};

static size_t add_group(const struct grant_mix *m, const struct diff_change *c)
{
    return (size_t)c->ref * m->nq + c->qual;
}

static size_t mix_cost(const struct diff *d, const struct grant_mix *m, size_t nrefs)
{
    size_t cost = 0;
    for (size_t g = 0; g < nrefs * m->nq; g++)
        cost += ceil_div(m->cnt_add[g], PLAN_BATCH_MAX);
    for (size_t r = 0; r < nrefs; r++)
        cost += ceil_div(m->cnt_rem[r], PLAN_BATCH_MAX);
    for (size_t i = 0; i < d->nusers; i++) {
        uint32_t nrem = removal_count(d, &d->users[i]);
        cost += (m->add_put[i] && nrem < d->users[i].n) + (m->rem_put[i] && nrem > 0);
    }
    return cost;
}

/* A heuristic for the mix (the optimum is a covering problem): start from batches and move a
 * user's adds (or removals) into a request of its own when that empties at least two batches
 * (its changes are the 1st, 101st, ... member of two or more groups): the move costs one and
 * saves at least two. Moves can make other groups small, so the walk repeats while it moves. */
static void choose_grant_mix(const struct diff *d, struct grant_mix *m)
{
    for (bool moved = true; moved;) {
        moved = false;
        for (size_t i = 0; i < d->nusers; i++) {
            const struct diff_user_change *uc = &d->users[i];
            const struct diff_change *ch = &d->changes[uc->first];
            uint32_t nrem = removal_count(d, uc);
            size_t saved = 0;
            for (uint32_t k = nrem; !m->add_put[i] && k < uc->n; k++)
                saved += m->cnt_add[add_group(m, &ch[k])] % PLAN_BATCH_MAX == 1;
            if (saved >= 2) {
                for (uint32_t k = nrem; k < uc->n; k++)
                    m->cnt_add[add_group(m, &ch[k])]--;
                m->add_put[i] = 1;
                moved = true;
            }
            saved = 0;
            for (uint32_t k = 0; !m->rem_put[i] && k < nrem; k++)
                saved += m->rem_slot[uc->first + k] && m->cnt_rem[ch[k].ref] % PLAN_BATCH_MAX == 1;
            if (saved >= 2) {
                for (uint32_t k = 0; k < nrem; k++)
                    if (m->rem_slot[uc->first + k])
                        m->cnt_rem[ch[k].ref]--;
                m->rem_put[i] = 1;
                moved = true;
            }
        }
    }
}

/* Role-wide batches of the users not writing on their own: `adds` selects grants (per role
 * and qualifier) or revocations (per role, the first removal of each (user, role)). Users are
 * walked ascending, so each batch lists them ascending. */
static void build_role_batches(struct plan *p, const struct grant_mix *m, size_t nrefs, bool adds)
{
    const struct diff *d = p->diff;
    size_t nb = adds ? nrefs * m->nq : nrefs;
    uint32_t *cnt = xcalloc(nb + 1, sizeof(uint32_t));
    uint32_t *users = xmalloc((d->nchanges + 1) * sizeof(uint32_t));
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < d->nusers; i++) {
            const struct diff_user_change *uc = &d->users[i];
            if (adds ? m->add_put[i] : m->rem_put[i])
                continue;
            uint32_t nrem = removal_count(d, uc);
            for (uint32_t k = adds ? nrem : 0; k < (adds ? uc->n : nrem); k++) {
                const struct diff_change *c = &d->changes[uc->first + k];
                if (!adds && !m->rem_slot[uc->first + k])
                    continue;
                size_t b = adds ? add_group(m, c) : c->ref;
                if (pass == 0)
                    cnt[b + 1]++;
                else
                    users[cnt[b]++] = uc->tgt_user;
            }
        }
        if (pass == 0)
            for (size_t b = 1; b <= nb; b++)
                cnt[b] += cnt[b - 1];
    }
    /* cnt[b] is now the end of bucket b (and the start of bucket b + 1) */
    for (size_t b = 0; b < nb; b++) {
        for (uint32_t at = b ? cnt[b - 1] : 0; at < cnt[b]; at += PLAN_BATCH_MAX) {
            uint32_t n = cnt[b] - at < PLAN_BATCH_MAX ? cnt[b] - at : PLAN_BATCH_MAX;
            uint32_t off = items_reserve(p, n);
            memcpy(p->priv->items + off, users + at, n * sizeof(uint32_t));
            if (adds)
                push_op(p, PLAN_ASSIGN_ROLE_ADD, (uint32_t)(b / m->nq), (uint32_t)(b % m->nq),
                        MDL_NONE, off, n);
            else
                push_op(p, PLAN_ASSIGN_ROLE_REMOVE, (uint32_t)b, MDL_NONE, MDL_NONE, off, n);
        }
    }
    free(cnt);
    free(users);
}

/* One request per user writing on its own: its adds (or removals) as change indexes. */
static void build_user_grants(struct plan *p, const struct grant_mix *m, bool adds)
{
    const struct diff *d = p->diff;
    for (size_t i = 0; i < d->nusers; i++) {
        const struct diff_user_change *uc = &d->users[i];
        uint32_t nrem = removal_count(d, uc);
        uint32_t lo = adds ? nrem : 0, hi = adds ? uc->n : nrem;
        if (!(adds ? m->add_put[i] : m->rem_put[i]) || lo == hi)
            continue;
        uint32_t off = items_reserve(p, hi - lo);
        for (uint32_t k = lo; k < hi; k++)
            p->priv->items[off + k - lo] = uc->first + k;
        push_op(p, adds ? PLAN_ASSIGN_USER_ADD : PLAN_ASSIGN_USER_REMOVE, MDL_NONE, MDL_NONE,
                uc->tgt_user, off, hi - lo);
    }
}

static void build_grant_writes(struct plan *p, size_t nrefs)
{
    const struct diff *d = p->diff;
    struct grant_mix m = {.nq = d->tgt->nquals};
    m.add_put = xcalloc(d->nusers + 1, 1);
    m.rem_put = xcalloc(d->nusers + 1, 1);
    m.rem_slot = xcalloc(d->nchanges + 1, 1);
    m.cnt_add = xcalloc(nrefs * m.nq + 1, sizeof(size_t));
    m.cnt_rem = xcalloc(nrefs + 1, sizeof(size_t));
    size_t with_adds = 0, with_rems = 0;
    for (size_t i = 0; i < d->nusers; i++) {
        const struct diff_user_change *uc = &d->users[i];
        const struct mdl_user *u = &d->tgt->users[uc->tgt_user];
        const struct diff_change *ch = &d->changes[uc->first];
        uint32_t nrem = removal_count(d, uc);
        with_adds += nrem < uc->n;
        with_rems += nrem > 0;
        for (uint32_t k = 0; k < nrem; k++) {
            if (k > 0 && ch[k - 1].ref == ch[k].ref)
                continue; /* removals are sorted by role: the first one stands for the role */
            /* A revocation takes the role in every qualifier, the grants this plan adds
             * included (whether it runs after the grant or alongside it): a user who gains
             * the role elsewhere (a grant moving division) cannot ride one either. */
            if (all_grants_removed(u, ch[k].ref, ch, nrem) &&
                !gains_role(ch + nrem, uc->n - nrem, ch[k].ref))
                m.rem_slot[uc->first + k] = 1;
            else
                m.rem_put[i] = 1; /* a grant of the role stays: no revocation can carry it */
        }
    }
    unsigned char *forced = xmalloc(d->nusers + 1);
    memcpy(forced, m.rem_put, d->nusers + 1);
    for (size_t i = 0; i < d->nusers; i++) {
        const struct diff_user_change *uc = &d->users[i];
        uint32_t nrem = removal_count(d, uc);
        for (uint32_t k = 0; k < uc->n; k++) {
            const struct diff_change *c = &d->changes[uc->first + k];
            if (k >= nrem)
                m.cnt_add[add_group(&m, c)]++;
            else if (!m.rem_put[i] && m.rem_slot[uc->first + k])
                m.cnt_rem[c->ref]++;
        }
    }
    p->cost_batch = mix_cost(d, &m, nrefs);
    choose_grant_mix(d, &m);
    p->cost_mixed = mix_cost(d, &m, nrefs);
    p->cost_per_user = with_adds + with_rems;
    size_t voluntary = 0;
    for (size_t i = 0; i < d->nusers; i++)
        voluntary += m.add_put[i] || (m.rem_put[i] && !forced[i]);
    /* Ties go to batches: a role-wide grant leaves the rest of each user alone. */
    if (p->cost_per_user < p->cost_mixed) {
        memset(m.add_put, 1, d->nusers);
        memset(m.rem_put, 1, d->nusers);
        p->strategy = PLAN_STRATEGY_PER_USER;
    } else {
        p->strategy = voluntary ? PLAN_STRATEGY_MIXED : PLAN_STRATEGY_BATCH;
    }
    /* Grants before revocations, so a user moved from one role to another is never left with
     * neither (in submission order: the engine may still overlap them). */
    build_role_batches(p, &m, nrefs, true);
    build_user_grants(p, &m, true);
    build_role_batches(p, &m, nrefs, false);
    build_user_grants(p, &m, false);
    free(forced);
    free(m.add_put);
    free(m.rem_put);
    free(m.rem_slot);
    free(m.cnt_add);
    free(m.cnt_rem);
}

static void build_notes(struct plan *p);

size_t plan_guard_deletions(const struct diff *d)
{
    size_t n = d->ndeletes + d->nremoves;
    for (size_t i = d->ncreates + d->nupdates; i < d->nrole_ops; i++)
        n += d->role_ops[i].holders;
    return n;
}

struct plan *plan_build(struct diff *d, bool force)
{
    struct plan *p = xcalloc(1, sizeof(*p));
    p->priv = xcalloc(1, sizeof(*p->priv));
    p->diff = d;
    p->forced = force;
    p->max_deletes = d->job->max_deletes;
    /* product.md 4.8, 4a.5, 4a.7 */
    p->deletions = plan_guard_deletions(d);
    p->refused = p->deletions > p->max_deletes && !force;
    p->created_ids = xcalloc(d->ncreates + 1, sizeof(char *));

    size_t nrefs = d->tgt->nroles + d->ncreates;
    if (d->nchanges > 0) {
        if (d->tgt->caps & MDL_CAP_GRANT_WRITES)
            build_grant_writes(p, nrefs);
        else
            build_user_sets(p);
        for (size_t i = 0; i < p->nassign_ops; i++)
            p->assign_ops[i].items = p->priv->items + (uintptr_t)p->assign_ops[i].items;
    }
    build_notes(p);
    return p;
}

void plan_free(struct plan *p)
{
    if (!p)
        return;
    if (p->diff) {
        for (size_t k = 0; k < p->diff->ncreates; k++)
            free(p->created_ids[k]);
    }
    free(p->created_ids);
    for (size_t i = 0; i < p->nnotes; i++)
        free(p->notes[i].text);
    free(p->notes);
    free(p->assign_ops);
    free(p->priv->items);
    free(p->priv);
    diff_free(p->diff);
    free(p);
}

const struct diff_role_op *plan_phase_roles(const struct plan *p, size_t *n)
{
    *n = p->refused ? 0 : p->diff->ncreates + p->diff->nupdates;
    return p->diff->role_ops;
}

const struct plan_assign_op *plan_phase_assign(const struct plan *p, size_t *n)
{
    *n = p->refused ? 0 : p->nassign_ops;
    return p->assign_ops;
}

const struct diff_role_op *plan_phase_deletes(const struct plan *p, size_t *n)
{
    *n = p->refused ? 0 : p->diff->ndeletes;
    return p->diff->role_ops + p->diff->ncreates + p->diff->nupdates;
}

void plan_set_created_id(struct plan *p, size_t k, const char *id)
{
    if (k >= p->diff->ncreates)
        return;
    free(p->created_ids[k]);
    p->created_ids[k] = xstrdup(id);
}

const char *plan_ref_id(const struct plan *p, uint32_t ref)
{
    const struct mdl_snapshot *t = p->diff->tgt;
    if (ref < t->nroles)
        return t->roles[ref].id;
    size_t k = ref - t->nroles;
    return k < p->diff->ncreates ? p->created_ids[k] : NULL;
}

void plan_note_applied(const struct plan *p, struct diff_memory *mem, const bool *role_ok,
                       const bool *assign_ok)
{
    const struct diff *d = p->diff;
    if (!mem || p->refused)
        return;
    for (size_t i = 0; i < d->nrole_ops; i++)
        if (!role_ok || role_ok[i])
            diff_memory_note_written(mem, DIFF_MEM_ROLE, d->role_ops[i].mem_key,
                                     d->role_ops[i].want);
    unsigned char *failed = xcalloc(d->tgt->nusers + 1, 1);
    for (size_t i = 0; assign_ok && i < p->nassign_ops; i++) {
        if (assign_ok[i])
            continue;
        const struct plan_assign_op *op = &p->assign_ops[i];
        if (op->tgt_user != MDL_NONE)
            failed[op->tgt_user] = 1;
        else
            for (uint32_t k = 0; k < op->nitems; k++)
                failed[op->items[k]] = 1;
    }
    for (size_t i = 0; i < d->nusers; i++)
        if (!failed[d->users[i].tgt_user])
            diff_memory_note_written(mem, DIFF_MEM_USER, d->tgt->users[d->users[i].tgt_user].id,
                                     d->users[i].want);
    free(failed);
}

void plan_counts(const struct plan *p, struct plan_counts *o)
{
    const struct diff *d = p->diff;
    memset(o, 0, sizeof(*o));
    o->roles_created = d->ncreates;
    o->roles_updated = d->nupdates;
    o->roles_deleted = d->ndeletes;
    o->assignments_added = d->nadds;
    o->assignments_removed = d->nremoves;
    o->pending = d->nrole_ops + d->nchanges;
    o->deletions = p->deletions;
    o->requests = p->refused ? 0 : d->nrole_ops + p->nassign_ops;
    o->not_converging = d->report.nnot_converging;
    o->unmapped = d->report.nunmapped;
    o->conflicts = d->report.nconflicts;
    o->ambiguous = d->report.nambiguous;
    o->unmatched_source_only = d->report.unmatched_source_only;
    o->unmatched_target_only = d->report.unmatched_target_only;
}

bool plan_is_empty(const struct plan *p)
{
    return diff_is_empty(p->diff);
}

/* ---- execution ---------------------------------------------------------------------------*/

const struct diff_user_change *plan_user_change(const struct plan *p, uint32_t tgt_user)
{
    const struct diff *d = p->diff;
    size_t lo = 0, hi = d->nusers;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->users[mid].tgt_user == tgt_user)
            return &d->users[mid];
        if (d->users[mid].tgt_user < tgt_user)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static const char *qual_id(const struct plan *p, uint32_t q)
{
    return p->diff->tgt->quals[q].id;
}

static bool is_new(const struct plan *p, uint32_t ref)
{
    return ref >= p->diff->tgt->nroles;
}

void plan_write_prepare(const struct plan *p, size_t i, bool roles_failed, struct plan_write *w)
{
    const struct diff *d = p->diff;
    const struct plan_assign_op *op = &p->assign_ops[i];
    const struct diff_user_change *uc =
        op->kind == PLAN_ASSIGN_USER_SET ? plan_user_change(p, op->tgt_user) : NULL;
    size_t cap = op->nitems + (uc ? uc->n : 0);
    const char *missing = NULL;

    memset(w, 0, sizeof(*w));
    w->ids = xcalloc(cap ? cap : 1, sizeof(char *));
    if (roles_failed &&
        (op->kind == PLAN_ASSIGN_ROLE_REMOVE || op->kind == PLAN_ASSIGN_USER_REMOVE)) {
        /* A removal may be one half of a move to a role that could not be created or updated:
         * revoking now could leave users with neither. It waits for the next cycle. (A user
         * set carries both halves, and is held below when a role it needs is missing.) */
        w->hold = true;
        snprintf(w->reason, sizeof w->reason,
                 "not sent: role changes of this cycle failed; removals wait for the next cycle");
        return;
    }
    size_t usable = 0; /* the changes that can be made now */
    switch (op->kind) {
    case PLAN_ASSIGN_USER_SET:
        for (uint32_t k = 0; k < op->nitems; k++) {
            const char *id = plan_ref_id(p, op->items[k]);
            if (id)
                w->ids[w->nids++] = id;
            else
                missing = diff_ref_name(d, op->items[k]);
            w->new_role = w->new_role || is_new(p, op->items[k]);
        }
        for (uint32_t k = 0; uc && k < uc->n; k++) {
            const struct diff_change *ch = &d->changes[uc->first + k];
            usable += ch->add && plan_ref_id(p, ch->ref);
        }
        if (missing) {
            /* A role this user gains could not be created: its assignments are skipped
             * (product.md 4.3), the user's other grants go out, and its removals wait for the
             * next cycle -- the set keeps the roles it would lose, so a user moving to the
             * missing role is never left with neither. */
            for (uint32_t k = 0; uc && k < uc->n; k++) {
                const struct diff_change *ch = &d->changes[uc->first + k];
                if (!ch->add)
                    w->ids[w->nids++] = plan_ref_id(p, ch->ref);
            }
            w->partial = true;
        }
        break;
    case PLAN_ASSIGN_USER_ADD:
    case PLAN_ASSIGN_USER_REMOVE:
        w->grants = xcalloc(op->nitems + 1, sizeof(*w->grants));
        for (uint32_t k = 0; k < op->nitems; k++) {
            const struct diff_change *ch = &d->changes[op->items[k]];
            const char *id = plan_ref_id(p, ch->ref);
            if (!id) {
                missing = diff_ref_name(d, ch->ref);
                w->partial = true;
                continue;
            }
            w->grants[w->ngrants++] = (struct plan_grant_ids){id, qual_id(p, ch->qual)};
            w->new_role = w->new_role || is_new(p, ch->ref);
        }
        usable = w->ngrants;
        break;
    case PLAN_ASSIGN_ROLE_ADD:
    case PLAN_ASSIGN_ROLE_REMOVE:
        for (uint32_t k = 0; k < op->nitems; k++)
            w->ids[w->nids++] = d->tgt->users[op->items[k]].id;
        w->role_id = plan_ref_id(p, op->ref);
        if (op->kind == PLAN_ASSIGN_ROLE_ADD)
            w->qual_id = qual_id(p, op->qual);
        w->new_role = is_new(p, op->ref);
        if (!w->role_id)
            missing = diff_ref_name(d, op->ref);
        break;
    }
    if (missing && usable == 0) {
        /* Nothing of this write can be made: the role it needs was not created. Its changes
         * stay pending; the failed create is the failure reported. */
        w->hold = true;
        snprintf(w->reason, sizeof w->reason, "role \"%s\" could not be created", missing);
    }
}

void plan_write_release(struct plan_write *w)
{
    free(w->ids);
    free(w->grants);
    w->ids = NULL;
    w->grants = NULL;
    w->nids = w->ngrants = 0;
}

bool plan_change_carried(const struct plan *p, bool partial, const struct diff_change *ch)
{
    return !partial || (ch->add && plan_ref_id(p, ch->ref));
}

void plan_op_changes(const struct plan *p, size_t i,
                     void (*fn)(const struct diff_change *ch, void *arg), void *arg)
{
    const struct diff *d = p->diff;
    const struct plan_assign_op *op = &p->assign_ops[i];
    switch (op->kind) {
    case PLAN_ASSIGN_USER_ADD:
    case PLAN_ASSIGN_USER_REMOVE:
        for (uint32_t k = 0; k < op->nitems; k++)
            fn(&d->changes[op->items[k]], arg);
        break;
    case PLAN_ASSIGN_USER_SET: {
        const struct diff_user_change *uc = plan_user_change(p, op->tgt_user);
        for (uint32_t k = 0; uc && k < uc->n; k++)
            fn(&d->changes[uc->first + k], arg);
        break;
    }
    case PLAN_ASSIGN_ROLE_ADD:
    case PLAN_ASSIGN_ROLE_REMOVE: {
        bool add = op->kind == PLAN_ASSIGN_ROLE_ADD;
        for (uint32_t k = 0; k < op->nitems; k++) {
            const struct diff_user_change *uc = plan_user_change(p, op->items[k]);
            for (uint32_t c = 0; uc && c < uc->n; c++) {
                const struct diff_change *ch = &d->changes[uc->first + c];
                if (ch->add == add && ch->ref == op->ref && (!add || ch->qual == op->qual))
                    fn(ch, arg); /* a revocation carries the user's every removal of the role */
            }
        }
        break;
    }
    }
}

const char *plan_deletes_hold_reason(size_t failed_before)
{
    /* Deletions are the cycle's last step because assignments must have moved off the roles
     * first (product.md 4.5); after any failure that is not certain, so they wait for the next
     * cycle, which starts from fresh reads. */
    return failed_before ? "not sent: earlier changes of this cycle failed; the deletion waits "
                           "for the next cycle"
                         : NULL;
}

/* ---- text ----------------------------------------------------------------------------------*/

/* A double-quoted name; quotes, backslashes and control characters escaped so one change stays
 * one line whatever the platform allows in a role name. */
static void put_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(f, "\\%c", *c);
        else if (*c < 0x20 || *c == 0x7f)
            fprintf(f, "\\x%02x", *c);
        else
            fputc(*c, f);
    }
    fputc('"', f);
}

static void put_plain(FILE *f, const char *s)
{
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++)
        fputc(*c < 0x20 || *c == 0x7f ? '?' : *c, f);
}

void plan_put_quoted(FILE *f, const char *s)
{
    put_quoted(f, s);
}

void plan_put_plain(FILE *f, const char *s)
{
    put_plain(f, s);
}

static const char *plural(size_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

/* The "!" lines, built once at plan_build (plan.h, struct plan_note). Each is written into a
 * memory stream with the same quoting as the change lines. */
static FILE *note_begin(char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    FILE *f = open_memstream(buf, len);
    if (!f)
        abort(); /* out of memory, as everywhere else (util.h) */
    return f;
}

static void note_end(struct plan *p, enum plan_note_kind kind, FILE *f, char **buf)
{
    fclose(f);
    util_grow((void **)&p->notes, &p->priv->notes_cap, p->nnotes + 1, sizeof(*p->notes));
    p->notes[p->nnotes++] = (struct plan_note){kind, *buf};
}

static void build_notes(struct plan *p)
{
    const struct diff *d = p->diff;
    const struct diff_report *r = &d->report;
    const struct mdl_snapshot *src = d->src, *tgt = d->tgt;
    char *buf;
    size_t len;
    FILE *f;

    for (size_t i = 0; i < r->nnot_converging; i++) {
        const struct diff_not_converging *nc = &r->not_converging[i];
        f = note_begin(&buf, &len);
        fputs(nc->kind == DIFF_MEM_ROLE ? "not converging: role " : "not converging: user ", f);
        if (nc->kind == DIFF_MEM_ROLE)
            put_quoted(f, nc->name);
        else
            put_plain(f, nc->name);
        fprintf(f, ": %s", nc->reason);
        note_end(p, PLAN_NOTE_NOT_CONVERGING, f, &buf);
    }
    for (size_t i = 0; i < r->nconflicts; i++) {
        const struct diff_conflict *c = &r->conflicts[i];
        const struct {
            const char *label;
            const struct mdl_snapshot *snap;
            uint32_t role;
        } part[] = {{" source role ", src, c->src_role},
                    {" and ", src, c->src_role2},
                    {" -> target ", tgt, c->tgt_role},
                    {" and ", tgt, c->tgt_role2}};
        f = note_begin(&buf, &len);
        fputs("conflict:", f);
        for (size_t k = 0; k < sizeof part / sizeof part[0]; k++) {
            if (part[k].role == MDL_NONE)
                continue;
            fputs(part[k].label, f);
            put_quoted(f, part[k].snap->roles[part[k].role].name);
        }
        fprintf(f, ": %s; left alone", c->reason);
        note_end(p, PLAN_NOTE_CONFLICT, f, &buf);
    }
    for (size_t i = 0; i < r->nunmapped; i++) {
        uint32_t s = r->unmapped[i];
        f = note_begin(&buf, &len);
        fputs("unmapped: role ", f);
        put_quoted(f, src->roles[s].name);
        fprintf(f, ": %s; its assignments are skipped", d->src_roles[s].reason);
        note_end(p, PLAN_NOTE_UNMAPPED, f, &buf);
    }
    for (size_t i = 0; i < r->nambiguous; i++) {
        f = note_begin(&buf, &len);
        fprintf(f, "ambiguous: %u %s users share the key ", r->ambiguous[i].count,
                r->ambiguous[i].target ? "target" : "source");
        put_plain(f, r->ambiguous[i].key);
        fputs("; skipped", f);
        note_end(p, PLAN_NOTE_AMBIGUOUS, f, &buf);
    }
    const char *tname = d->job->target ? d->job->target->name : "target";
    for (size_t i = 0; i < r->nunmapped_quals; i++) {
        const struct diff_src_qual *m = &d->src_quals[r->unmapped_quals[i]];
        const struct mdl_qual *q = &src->quals[r->unmapped_quals[i]];
        f = note_begin(&buf, &len);
        fputs("division ", f);
        put_quoted(f, q->all ? "*" : q->name ? q->name : q->id);
        if (m->tgt2 != MDL_NONE) {
            fputs(" matches two divisions on target ", f);
            put_quoted(f, tname);
        } else if (strcmp(m->reason, "no counterpart") == 0) {
            fputs(" has no counterpart on target ", f);
            put_quoted(f, tname);
        } else {
            fputs(" shares its counterpart on target ", f);
            put_quoted(f, tname);
            fputs(" with another division", f);
        }
        fprintf(f, " (%zu %s skipped)", m->skipped, plural(m->skipped, "grant", "grants"));
        note_end(p, PLAN_NOTE_DIVISION, f, &buf);
    }
    for (size_t i = 0; i < r->nnot_copied; i++) {
        const struct mdl_role *sr = &src->roles[r->not_copied[i]];
        f = note_begin(&buf, &len);
        fputs("role ", f);
        put_quoted(f, sr->name);
        fputs(": permission condition names org-specific objects (", f);
        put_plain(f, sr->uncopyable);
        fputs("), not copied", f);
        note_end(p, PLAN_NOTE_NOT_COPIED, f, &buf);
    }
    for (size_t i = 0; i < r->nnot_pruned; i++) {
        const struct diff_not_pruned *np = &r->not_pruned[i];
        f = note_begin(&buf, &len);
        fputs("role ", f);
        put_quoted(f, tgt->roles[np->tgt_role].name);
        fprintf(f, " not pruned: held by %u %s outside this job's scope", np->holders,
                np->holders == 1 ? "subject" : "subjects");
        note_end(p, PLAN_NOTE_NOT_PRUNED, f, &buf);
    }
    if (r->unmatched_source_only || r->unmatched_target_only) {
        f = note_begin(&buf, &len);
        fprintf(f, "unmatched users: %zu source only, %zu target only", r->unmatched_source_only,
                r->unmatched_target_only);
        note_end(p, PLAN_NOTE_UNMATCHED, f, &buf);
    }
    if (p->refused) {
        f = note_begin(&buf, &len);
        fprintf(f,
                "refused: %zu %s exceed max_deletes %u; nothing will be written (run once "
                "with --force-deletes, or raise max_deletes)",
                p->deletions, plural(p->deletions, "deletion", "deletions"), p->max_deletes);
        note_end(p, PLAN_NOTE_REFUSED, f, &buf);
    }
}

const struct plan_note *plan_notes(const struct plan *p, size_t *n)
{
    *n = p->nnotes;
    return p->notes;
}

bool plan_note_is_report(const struct plan_note *n)
{
    return n->kind == PLAN_NOTE_CONFLICT || n->kind == PLAN_NOTE_UNMAPPED ||
           n->kind == PLAN_NOTE_AMBIGUOUS || n->kind == PLAN_NOTE_DIVISION ||
           n->kind == PLAN_NOTE_NOT_COPIED || n->kind == PLAN_NOTE_NOT_PRUNED;
}

void plan_render_report(const struct plan *p, FILE *f)
{
    for (size_t i = 0; i < p->nnotes; i++)
        if (plan_note_is_report(&p->notes[i]))
            fprintf(f, "! %s\n", p->notes[i].text);
}

void plan_render(const struct plan *p, FILE *f)
{
    const struct diff *d = p->diff;
    const struct diff_report *r = &d->report;

    for (size_t i = 0; i < d->ncreates + d->nupdates; i++) {
        const struct diff_role_op *op = &d->role_ops[i];
        fputs(op->action == DIFF_ROLE_OP_CREATE ? "+ role " : "~ role ", f);
        put_quoted(f, op->name);
        if (op->action == DIFF_ROLE_OP_UPDATE) {
            bool desc = op->fields & DIFF_F_DESCRIPTION, def = op->fields & DIFF_F_DEFINITION;
            fprintf(f, " (%s%s%s)", desc ? "description" : "", desc && def ? ", " : "",
                    def ? "permission policies" : "");
        }
        fputc('\n', f);
    }
    for (size_t i = 0; i < d->nchanges; i++) {
        const struct diff_change *c = &d->changes[i];
        fputs(c->add ? "+ user " : "- user ", f);
        put_plain(f, diff_user_label(d, c->tgt_user));
        fputs(" role ", f);
        put_quoted(f, diff_ref_name(d, c->ref));
        const char *div = diff_qual_name(d, c->qual);
        if (div) {
            fputs(" division ", f);
            put_quoted(f, div);
        }
        fputc('\n', f);
    }
    for (size_t i = d->ncreates + d->nupdates; i < d->nrole_ops; i++) {
        fputs("- role ", f);
        put_quoted(f, d->role_ops[i].name);
        fputc('\n', f);
    }
    for (size_t i = 0; i < p->nnotes; i++)
        fprintf(f, "! %s\n", p->notes[i].text);

    fputs("job ", f);
    put_plain(f, d->job->name);
    fprintf(f, ": %zu %s to create, %zu to update, %zu to delete, %zu %s to add, %zu to remove",
            d->ncreates, plural(d->ncreates, "role", "roles"), d->nupdates, d->ndeletes, d->nadds,
            plural(d->nadds, "assignment", "assignments"), d->nremoves);
    if (r->nnot_converging)
        fprintf(f, ", %zu not converging", r->nnot_converging);
    if (r->nunmapped)
        fprintf(f, ", %zu unmapped %s", r->nunmapped, plural(r->nunmapped, "role", "roles"));
    if (r->nconflicts)
        fprintf(f, ", %zu %s", r->nconflicts, plural(r->nconflicts, "conflict", "conflicts"));
    if (p->refused)
        fputs(" (refused)", f);
    fputc('\n', f);
}

char *plan_render_string(const struct plan *p)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return xstrdup("");
    plan_render(p, f);
    fclose(f);
    return buf;
}
