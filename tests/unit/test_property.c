/* test_property.c — randomised model check of diff + plan (fixed seeds, 600 worlds).
 *
 * Each iteration builds a random source and target tenant (built-ins, custom roles with case
 * variants, users with deleted/inactive states and duplicate keys, random assignments) and a
 * random job (include/exclude globs, rename, definitions, prune, mirror/additive/off,
 * max_deletes, force). The plan is applied to a copy of the target by a tiny simulator of the
 * target API (forced role always kept, built-ins cannot be deleted, batches <= 100, created ids
 * known only after the create). Then an independent, deliberately naive oracle checks:
 *   - refused <=> deletions > max_deletes and not forced; a refused plan changes nothing;
 *   - every matched, in-scope user holds the mapped in-scope source roles (mirror: exactly,
 *     except a protected admin; additive: at least);
 *   - nothing out of scope changed (roles, definitions, memberships, unmatched users);
 *   - definitions and prune reached their desired state;
 *   - re-planning the result yields an empty plan.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fx_platform.h"
#include "rolesync/diff.h"
#include "rolesync/plan.h"
#include "rolesync/util.h"

#define MAXR 24
#define MAXU 20

struct trole {
    char id[16], name[24], desc[8], def[8];
    const char *key; /* builtin key or NULL */
    bool foreign, alive;
};

struct tuser {
    char id[16], email[24];
    enum mdl_user_state state;
    uint32_t roles; /* bit per role slot */
};

struct tenant {
    enum cfg_api api;
    struct trole r[MAXR + 8];
    int nr;
    struct tuser u[MAXU];
    int nu;
    int next_id;
    /* snapshot index <-> slot */
    int slot_of[MAXR + 8];
};

static uint64_t rng;
/* How much the random worlds exercise: printed, and asserted non-trivial at the end. */
static struct {
    size_t worlds, refused, creates, updates, deletes, adds, removes, conflicts, ambiguous, batches,
        user_sets, cross_api;
} st;
static uint32_t rnd(uint32_t n)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)((rng >> 33) % n);
}

static const char *NAMES[] = {"Alpha", "Beta", "Gamma", "Delta", "Ops", "Sales", "Support", "Lead"};
static const char *DESCS[] = {"", "d1", "d2"};
static const char *DEFS[] = {"", "p1", "p1,p2"};
static const char *EMAILS[] = {"ann@a.com", "bob@a.com", "cat@a.com", "dan@b.com", "eve@b.com",
                               "fay@a.com", "gus@b.com", "hal@a.com", "ivy@a.com", "jon@b.com"};

static int add_role(struct tenant *t, const char *name, const char *key, bool foreign)
{
    struct trole *r = &t->r[t->nr];
    memset(r, 0, sizeof(*r));
    snprintf(r->id, sizeof(r->id), "r%d", t->next_id++);
    snprintf(r->name, sizeof(r->name), "%s", name);
    snprintf(r->desc, sizeof(r->desc), "%s", DESCS[rnd(3)]);
    snprintf(r->def, sizeof(r->def), "%s", DEFS[rnd(3)]);
    r->key = key;
    r->foreign = foreign;
    r->alive = true;
    return t->nr++;
}

static void gen_tenant(struct tenant *t, enum cfg_api api, bool target)
{
    memset(t, 0, sizeof(*t));
    t->api = api;
    if (api == CFG_API_GENESYS) {
        add_role(t, "Employee", GJS_FORCED_ROLE, false);
        add_role(t, rnd(4) ? "Master Admin" : "Admin", GJS_ADMIN_ROLE, false);
        add_role(t, "Trusted", "trusteduser", false);
    } else {
        add_role(t, "Tenant Member", IJS_TENANT_MEMBER, false);
        add_role(t, "Tenant Administrator", IJS_TENANT_ADMIN, false);
        add_role(t, "Tenant Viewer", "e6cbf91e-0be8-4858-92b5-f88ecafd5574", false);
        if (target && rnd(2))
            add_role(t, "Community", NULL, true);
    }
    for (size_t i = 0; i < 8; i++) {
        if (rnd(3) == 0)
            continue;
        int k = add_role(t, NAMES[i], NULL, false);
        if (target && rnd(12) == 0) /* case variant: a conflict on the target */
            for (char *c = t->r[add_role(t, t->r[k].name, NULL, false)].name; *c; c++)
                *c = (char)toupper((unsigned char)*c);
    }
    int nemails = 4 + (int)rnd(6);
    for (int i = 0; i < nemails && t->nu < MAXU - 1; i++) {
        if (rnd(5) == 0)
            continue;
        struct tuser *u = &t->u[t->nu++];
        snprintf(u->id, sizeof(u->id), "u%d", i);
        snprintf(u->email, sizeof(u->email), "%s", EMAILS[i]);
        int sv = (int)rnd(10);
        u->state = api == CFG_API_GENESYS && sv == 0   ? MDL_USER_DELETED
                   : api == CFG_API_GENESYS && sv == 1 ? MDL_USER_INACTIVE
                                                       : MDL_USER_ACTIVE;
        for (int r = 0; r < t->nr; r++)
            if (rnd(3) == 0 || (t->r[r].key && strcmp(t->r[r].key, fx_forced_key(api)) == 0))
                u->roles |= 1u << r;
        if (rnd(15) == 0) { /* a second user with the same key in another case */
            struct tuser *v = &t->u[t->nu++];
            *v = *u;
            snprintf(v->id, sizeof(v->id), "x%d", i);
            v->email[0] = (char)toupper((unsigned char)v->email[0]);
        }
    }
}

static struct mdl_snapshot *snap(struct tenant *t)
{
    struct mdl_snapshot *s = fx_snapshot_new(t->api);
    int idx_of[MAXR + 8];
    for (int i = 0; i < t->nr; i++) {
        idx_of[i] = -1;
        if (!t->r[i].alive)
            continue;
        struct mdl_role r = {.id = t->r[i].id,
                             .name = t->r[i].name,
                             .builtin_key = t->r[i].key,
                             .description = t->r[i].desc[0] ? t->r[i].desc : NULL,
                             .def_canon = t->r[i].def[0] ? t->r[i].def : NULL,
                             .foreign = t->r[i].foreign};
        fx_mark_role(t->api, &r);
        idx_of[i] = (int)mdl_add_role(s, &r);
        t->slot_of[idx_of[i]] = i;
    }
    for (int i = 0; i < t->nu; i++) {
        struct mdl_user u = {.id = t->u[i].id, .email = t->u[i].email, .state = t->u[i].state};
        uint32_t ui = mdl_add_user(s, &u);
        for (int r = 0; r < t->nr; r++)
            if ((t->u[i].roles >> r) & 1)
                mdl_user_add_role(s, ui, (uint32_t)idx_of[r]);
    }
    char err[64];
    assert_int_equal(mdl_snapshot_finish(s, err, sizeof(err)), 0);
    return s;
}

/* ---- random job ----------------------------------------------------------------------------*/

static void set_list(struct cfg_strlist *l, const char **v, size_t n)
{
    l->v = calloc(n + 1, sizeof(char *));
    l->n = n;
    for (size_t i = 0; i < n; i++)
        l->v[i] = strdup(v[i]);
}

static void free_list(struct cfg_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

static void gen_job(struct cfg_job *j, bool same_api)
{
    memset(j, 0, sizeof(*j));
    j->name = "prop";
    static const char *inc[][3] = {{"*"},
                                   {"*", "Master Admin"},
                                   {"A*", "Ops", "Tenant Administrator"},
                                   {"*", "tenant administrator"},
                                   {"?e*", "S*"}};
    static const size_t ninc[] = {1, 2, 3, 2, 2};
    size_t k = rnd(5);
    set_list(&j->roles_include, inc[k], ninc[k]);
    static const char *exc[][2] = {{0}, {"Beta"}, {"S*", "Trusted"}, {"Delta"}};
    static const size_t nexc[] = {0, 1, 2, 1};
    k = rnd(4);
    set_list(&j->roles_exclude, exc[k], nexc[k]);
    static const char *uinc[][1] = {{"*"}, {"*@a.com"}};
    k = rnd(3) == 0;
    set_list(&j->users_include, uinc[k], 1);
    static const char *uexc[] = {"bob@a.com"};
    set_list(&j->users_exclude, uexc, rnd(3) == 0);
    static const char *ren[][2] = {{"Alpha", "Lead"}, {"Gamma", "Delta"}, {"Ops", "Operations"}};
    j->nrename = rnd(3);
    j->rename = calloc(3, sizeof(*j->rename));
    for (size_t i = 0; i < j->nrename; i++) {
        size_t r = rnd(3);
        j->rename[i].from = strdup(ren[r][0]);
        j->rename[i].to = strdup(ren[r][1]);
    }
    j->definitions = same_api && rnd(2);
    j->prune = rnd(2);
    k = rnd(5);
    j->assignments = k < 3 ? CFG_ASSIGN_MIRROR : k == 3 ? CFG_ASSIGN_ADDITIVE : CFG_ASSIGN_OFF;
    j->match_by = CFG_MATCH_EMAIL;
    static const char *star[] = {"*"};
    set_list(&j->divisions_include, star, 1);
    static const unsigned md[] = {0, 3, 50};
    j->max_deletes = md[rnd(3)];
}

static void free_job(struct cfg_job *j)
{
    free_list(&j->roles_include);
    free_list(&j->roles_exclude);
    free_list(&j->users_include);
    free_list(&j->users_exclude);
    free_list(&j->divisions_include);
    for (size_t i = 0; i < j->nrename; i++) {
        free(j->rename[i].from);
        free(j->rename[i].to);
    }
    free(j->rename);
}

/* ---- simulator -----------------------------------------------------------------------------*/

static int slot_by_id(const struct tenant *t, const char *id)
{
    assert_non_null(id); /* a created role's id must be known before it is used */
    for (int i = 0; i < t->nr; i++)
        if (t->r[i].alive && strcmp(t->r[i].id, id) == 0)
            return i;
    fail_msg("unknown role id %s", id);
    return -1;
}

static bool is_forced(const struct tenant *t, int slot)
{
    return t->r[slot].key && strcmp(t->r[slot].key, fx_forced_key(t->api)) == 0;
}

static void apply(struct tenant *t, struct plan *p, const struct mdl_snapshot *src)
{
    size_t n;
    const struct diff_role_op *ops = plan_phase_roles(p, &n);
    for (size_t i = 0; i < n; i++) {
        const struct mdl_role *sr = &src->roles[ops[i].src_role];
        if (ops[i].action == DIFF_ROLE_OP_CREATE) {
            assert_true(t->nr < MAXR + 8);
            struct trole *r = &t->r[t->nr++];
            memset(r, 0, sizeof(*r));
            snprintf(r->id, sizeof(r->id), "n%d", t->next_id++);
            snprintf(r->name, sizeof(r->name), "%s", ops[i].name);
            snprintf(r->desc, sizeof(r->desc), "%s", sr->description ? sr->description : "");
            snprintf(r->def, sizeof(r->def), "%s", sr->def_canon ? sr->def_canon : "");
            r->alive = true;
            plan_set_created_id(p, i, r->id);
        } else {
            assert_int_equal(ops[i].action, DIFF_ROLE_OP_UPDATE);
            struct trole *r = &t->r[t->slot_of[ops[i].tgt_role]];
            assert_false(r->foreign);
            if (r->key) {
                assert_int_equal(t->api, CFG_API_GENESYS); /* identity built-ins: 405 */
            } else {
                snprintf(r->desc, sizeof(r->desc), "%s", sr->description ? sr->description : "");
            }
            snprintf(r->def, sizeof(r->def), "%s", sr->def_canon ? sr->def_canon : "");
        }
    }
    const struct plan_assign_op *a = plan_phase_assign(p, &n);
    for (size_t i = 0; i < n; i++) {
        if (a[i].kind == PLAN_ASSIGN_USER_SET) {
            uint32_t set = 0;
            for (uint32_t k = 0; k < a[i].nitems; k++)
                set |= 1u << slot_by_id(t, plan_ref_id(p, a[i].items[k]));
            for (int r = 0; r < t->nr; r++)
                if (is_forced(t, r) && t->r[r].alive)
                    set |= 1u << r;
            t->u[a[i].tgt_user].roles = set;
        } else if (a[i].kind == PLAN_ASSIGN_USER_ADD || a[i].kind == PLAN_ASSIGN_USER_REMOVE) {
            assert_int_equal(t->api, CFG_API_GENESYS);
            for (uint32_t k = 0; k < a[i].nitems; k++) {
                const struct diff_change *ch = &p->diff->changes[a[i].items[k]];
                assert_int_equal(ch->tgt_user, a[i].tgt_user);
                assert_int_equal(ch->add, a[i].kind == PLAN_ASSIGN_USER_ADD);
                int r = slot_by_id(t, plan_ref_id(p, ch->ref));
                if (ch->add)
                    t->u[a[i].tgt_user].roles |= 1u << r;
                else if (!is_forced(t, r))
                    t->u[a[i].tgt_user].roles &= ~(1u << r);
            }
        } else {
            assert_int_equal(t->api, CFG_API_GENESYS);
            assert_true(a[i].nitems >= 1 && a[i].nitems <= PLAN_BATCH_MAX);
            int r = slot_by_id(t, plan_ref_id(p, a[i].ref));
            for (uint32_t k = 0; k < a[i].nitems; k++) {
                if (a[i].kind == PLAN_ASSIGN_ROLE_ADD)
                    t->u[a[i].items[k]].roles |= 1u << r;
                else if (!is_forced(t, r))
                    t->u[a[i].items[k]].roles &= ~(1u << r);
            }
        }
    }
    ops = plan_phase_deletes(p, &n);
    for (size_t i = 0; i < n; i++) {
        int s = t->slot_of[ops[i].tgt_role];
        assert_null(t->r[s].key); /* built-ins cannot be deleted */
        assert_false(t->r[s].foreign);
        t->r[s].alive = false;
        for (int u = 0; u < t->nu; u++)
            t->u[u].roles &= ~(1u << s);
    }
}

/* ---- oracle --------------------------------------------------------------------------------*/

static bool glob_any(const struct cfg_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (util_glob_match(l->v[i], s))
            return true;
    return false;
}

static bool role_scope(const struct cfg_job *j, const char *name)
{
    return glob_any(&j->roles_include, name) && !glob_any(&j->roles_exclude, name);
}

static const char *ren_fwd(const struct cfg_job *j, const char *n)
{
    for (size_t i = 0; i < j->nrename; i++)
        if (!strcasecmp(j->rename[i].from, n))
            return j->rename[i].to;
    return n;
}

static const char *ren_back(const struct cfg_job *j, const char *n)
{
    for (size_t i = 0; i < j->nrename; i++)
        if (!strcasecmp(j->rename[i].to, n))
            return j->rename[i].from;
    return n;
}

struct omap {
    int map[MAXR + 8];      /* source slot -> target slot, -1 */
    bool tconf[MAXR + 8];   /* target slot involved in a conflict */
    int tsrc[MAXR + 8];     /* target slot -> unique source slot, -1 */
    bool managed[MAXR + 8]; /* target slot */
    bool tscope[MAXR + 8];
    bool revocable[MAXR + 8];
};

static void oracle_map(const struct cfg_job *j, const struct tenant *s, const struct tenant *t,
                       struct omap *o)
{
    /* in-scope roles mapping to each target role (an out-of-scope role takes no
     * part in conflicts: it steps aside for an in-scope one, product.md 4.2) */
    int nin[MAXR + 8] = {0};
    for (int x = 0; x < t->nr; x++) {
        o->tconf[x] = false;
        o->tsrc[x] = -1;
    }
    for (int a = 0; a < s->nr; a++) {
        o->map[a] = -1;
        const struct trole *sr = &s->r[a];
        if (sr->foreign || (sr->key && s->api != t->api))
            continue;
        bool scoped = role_scope(j, sr->name);
        int c[MAXR + 8], nc = 0;
        for (int x = 0; x < t->nr; x++) {
            const struct trole *tr = &t->r[x];
            if (!tr->alive || tr->foreign)
                continue;
            if (sr->key ? (tr->key && !strcasecmp(tr->key, sr->key))
                        : !strcasecmp(tr->name, ren_fwd(j, sr->name)))
                c[nc++] = x;
        }
        if (nc > 1 && scoped) {
            for (int i = 0; i < nc; i++)
                o->tconf[c[i]] = true;
        } else if (nc == 1 && !(t->r[c[0]].key && !sr->key)) {
            o->map[a] = c[0];
            nin[c[0]] += scoped;
        }
    }
    for (int a = 0; a < s->nr; a++) {
        int x = o->map[a];
        if (x < 0)
            continue;
        bool scoped = role_scope(j, s->r[a].name);
        if (!scoped && (nin[x] > 0 || o->tsrc[x] >= 0)) {
            o->map[a] = -1; /* steps aside */
        } else if (scoped && nin[x] > 1) {
            o->tconf[x] = true;
            o->map[a] = -1;
        } else {
            o->tsrc[x] = a;
        }
    }
    for (int x = 0; x < t->nr; x++) {
        const struct trole *tr = &t->r[x];
        const char *sname = o->tsrc[x] >= 0 ? s->r[o->tsrc[x]].name : ren_back(j, tr->name);
        o->tscope[x] =
            tr->alive && !tr->foreign &&
            (o->tsrc[x] >= 0 ? role_scope(j, s->r[o->tsrc[x]].name) : role_scope(j, sname));
        o->managed[x] = o->tscope[x] && !o->tconf[x] && !is_forced(t, x);
        o->revocable[x] = true;
        if (tr->key && !strcmp(tr->key, fx_admin_key(t->api))) {
            o->revocable[x] = false;
            for (size_t i = 0; i < j->roles_include.n; i++)
                if (!strpbrk(j->roles_include.v[i], "*?") && !strcmp(j->roles_include.v[i], sname))
                    o->revocable[x] = true;
        }
    }
}

/* index of the unique in-scope, non-deleted user with this key; -1 none, -2 ambiguous */
static int find_user(const struct cfg_job *j, const struct tenant *t, const char *email)
{
    int found = -1;
    for (int i = 0; i < t->nu; i++) {
        const struct tuser *u = &t->u[i];
        if (u->state == MDL_USER_DELETED || strcasecmp(u->email, email))
            continue;
        if (!glob_any(&j->users_include, u->email) || glob_any(&j->users_exclude, u->email))
            continue;
        if (found >= 0)
            return -2;
        found = i;
    }
    return found;
}

static void check_world(uint64_t seed)
{
    rng = seed;
    enum cfg_api sapi = rnd(5) == 0 ? CFG_API_IDENTITY : CFG_API_GENESYS;
    enum cfg_api tapi = rnd(8) == 0 ? CFG_API_IDENTITY : sapi;
    struct tenant *S = calloc(1, sizeof(*S)), *T = calloc(1, sizeof(*T)),
                  *T0 = calloc(1, sizeof(*T0));
    gen_tenant(S, sapi, false);
    gen_tenant(T, tapi, true);
    *T0 = *T;
    struct cfg_job job;
    gen_job(&job, sapi == tapi);
    bool force = rnd(4) == 0;

    struct mdl_snapshot *ss = snap(S), *ts = snap(T);
    char err[64];
    struct diff *d = diff_compute(&job, ss, ts, NULL, err, sizeof(err));
    assert_non_null(d);
    struct plan *p = plan_build(d, force);
    size_t deletions = d->ndeletes + d->nremoves;
    for (size_t i = d->ncreates + d->nupdates; i < d->nrole_ops; i++)
        deletions += d->role_ops[i].holders; /* grants a deleted role takes with it */
    st.worlds++;
    st.refused += p->refused;
    st.creates += d->ncreates;
    st.updates += d->nupdates;
    st.deletes += d->ndeletes;
    st.adds += d->nadds;
    st.removes += d->nremoves;
    st.conflicts += d->report.nconflicts;
    st.ambiguous += d->report.nambiguous;
    st.cross_api += sapi != tapi;
    for (size_t i = 0; i < p->nassign_ops; i++)
        *(p->assign_ops[i].tgt_user != MDL_NONE ? &st.user_sets : &st.batches) += 1;
    assert_int_equal(p->refused, deletions > job.max_deletes && !force);
    struct omap pre;
    oracle_map(&job, S, T0, &pre);
    apply(T, p, ss);
    plan_free(p);
    mdl_snapshot_free(ts);

    if (deletions > job.max_deletes && !force) {
        /* refused: nothing written */
        assert_memory_equal(T->r, T0->r, sizeof(T->r));
        assert_memory_equal(T->u, T0->u, sizeof(T->u));
        assert_int_equal(T->nr, T0->nr);
        goto done;
    }

    struct omap post;
    oracle_map(&job, S, T, &post);
    bool same_api = sapi == tapi;
    /* roles: out of scope / foreign / conflicted untouched; definitions; prune */
    for (int x = 0; x < T0->nr; x++) {
        const struct trole *a = &T0->r[x], *b = &T->r[x];
        if (!pre.tscope[x] || pre.tconf[x]) {
            assert_int_equal(a->alive, b->alive);
            assert_string_equal(a->name, b->name);
            assert_string_equal(a->desc, b->desc);
            assert_string_equal(a->def, b->def);
        }
        if (a->key) {
            assert_true(b->alive);
            assert_string_equal(a->name, b->name);
            assert_string_equal(a->desc, b->desc); /* never a built-in's description */
        }
        /* product.md 4a.7: a role an out-of-scope user holds is not pruned */
        bool held_outside = false;
        for (int u = 0; u < T0->nu; u++)
            if ((T0->u[u].roles >> x & 1) && T0->u[u].state != MDL_USER_DELETED &&
                (!glob_any(&job.users_include, T0->u[u].email) ||
                 glob_any(&job.users_exclude, T0->u[u].email)))
                held_outside = true;
        if (job.prune && b->alive && !b->key && !b->foreign && post.tscope[x] && !post.tconf[x] &&
            !held_outside)
            assert_true(post.tsrc[x] >= 0);
        if (held_outside && pre.tscope[x] && !a->key)
            assert_true(b->alive);
    }
    for (int a = 0; a < S->nr && job.definitions && same_api; a++) {
        int x = post.map[a];
        if (!role_scope(&job, S->r[a].name) || S->r[a].foreign)
            continue;
        if (!S->r[a].key) {
            bool blocked = false; /* a conflicted name is neither matched nor created */
            for (int y = 0; y < T->nr; y++)
                if (T->r[y].alive && !T->r[y].foreign &&
                    !strcasecmp(T->r[y].name, ren_fwd(&job, S->r[a].name)) && post.tconf[y])
                    blocked = true;
            for (int b = 0; b < S->nr; b++)
                if (b != a && !S->r[b].foreign && !S->r[b].key &&
                    !strcasecmp(ren_fwd(&job, S->r[b].name), ren_fwd(&job, S->r[a].name)))
                    blocked = true;
            for (int y = 0; y < T->nr; y++)
                if (T->r[y].alive && T->r[y].key &&
                    !strcasecmp(T->r[y].name, ren_fwd(&job, S->r[a].name)))
                    blocked = true;
            if (blocked)
                continue;
            assert_true(x >= 0);
            assert_string_equal(T->r[x].desc, S->r[a].desc);
            assert_string_equal(T->r[x].def, S->r[a].def);
        } else if (x >= 0 && tapi == CFG_API_GENESYS) {
            assert_string_equal(T->r[x].def, S->r[a].def);
        }
    }
    /* users */
    for (int i = 0; i < T->nu; i++) {
        const struct tuser *tu = &T->u[i], *tu0 = &T0->u[i];
        int me = find_user(&job, T, tu->email);
        int si = me == i ? find_user(&job, S, tu->email) : -1;
        if (si < 0 || job.assignments == CFG_ASSIGN_OFF) {
            /* unmatched, ambiguous, deleted or out of scope: only pruned roles vanish */
            for (int x = 0; x < T0->nr; x++)
                if (T->r[x].alive)
                    assert_int_equal((tu->roles >> x) & 1, (tu0->roles >> x) & 1);
            continue;
        }
        uint32_t want = 0;
        for (int a = 0; a < S->nr; a++)
            if (((S->u[si].roles >> a) & 1) && role_scope(&job, S->r[a].name) && post.map[a] >= 0 &&
                post.managed[post.map[a]])
                want |= 1u << post.map[a];
        uint32_t have = 0;
        for (int x = 0; x < T->nr; x++)
            if (post.managed[x] && ((tu->roles >> x) & 1))
                have |= 1u << x;
        assert_int_equal(have & want, want);
        if (job.assignments == CFG_ASSIGN_MIRROR)
            for (int x = 0; x < T->nr; x++)
                if (((have & ~want) >> x) & 1) {
                    assert_false(post.revocable[x]); /* only a protected admin stays */
                    assert_true((tu0->roles >> x) & 1);
                }
        /* a protected admin is never revoked, whatever the mode */
        for (int x = 0; x < T0->nr; x++)
            if (T->r[x].alive && !pre.revocable[x] && ((tu0->roles >> x) & 1))
                assert_true((tu->roles >> x) & 1);
        /* roles that are not managed keep their membership */
        for (int x = 0; x < T0->nr; x++)
            if (T->r[x].alive && x < T0->nr && !pre.managed[x] && !post.managed[x])
                assert_int_equal((tu->roles >> x) & 1, (tu0->roles >> x) & 1);
    }
    /* re-plan: nothing left to do */
    ts = snap(T);
    d = diff_compute(&job, ss, ts, NULL, err, sizeof(err));
    p = plan_build(d, false);
    if (!plan_is_empty(p)) {
        char *text = plan_render_string(p);
        print_error("seed %llu: second plan not empty:\n%s", (unsigned long long)seed, text);
        free(text);
        fail();
    }
    plan_free(p);
    mdl_snapshot_free(ts);
done:
    mdl_snapshot_free(ss);
    free_job(&job);
    free(S);
    free(T);
    free(T0);
}

static void test_property(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 600; seed++)
        check_world(seed * 7919);
    print_message("property: %zu worlds, %zu refused, %zu cross-api; %zu creates, %zu updates, "
                  "%zu deletes, %zu adds, %zu removes, %zu conflicts, %zu ambiguous keys, %zu "
                  "batch and %zu per-user requests\n",
                  st.worlds, st.refused, st.cross_api, st.creates, st.updates, st.deletes, st.adds,
                  st.removes, st.conflicts, st.ambiguous, st.batches, st.user_sets);
    assert_true(st.refused > 10 && st.creates > 10 && st.updates > 10 && st.deletes > 10);
    assert_true(st.conflicts > 10 && st.ambiguous > 10 && st.batches > 10 && st.user_sets > 10);
    assert_true(st.cross_api > 10);
}

/* Scale: 100,000 users x 300 roles must stay linear (run time is reported, not asserted). */
static void test_scale(void **state)
{
    (void)state;
    enum { NU = 100000, NR = 300 };
    struct mdl_snapshot *s = fx_snapshot_new(CFG_API_GENESYS),
                        *t = fx_snapshot_new(CFG_API_GENESYS);
    char name[32], id[32], email[48];
    for (int side = 0; side < 2; side++) {
        struct mdl_snapshot *x = side ? t : s;
        mdl_add_role(x, &(struct mdl_role){.id = side ? "te" : "se",
                                           .name = "Employee",
                                           .builtin_key = GJS_FORCED_ROLE,
                                           .forced = true});
        for (int r = 1; r < NR; r++) {
            snprintf(name, sizeof(name), "Role %d", r);
            snprintf(id, sizeof(id), "%c%d", side ? 't' : 's', r);
            mdl_add_role(x, &(struct mdl_role){.id = id, .name = name, .def_canon = "p"});
        }
        for (int u = 0; u < NU; u++) {
            snprintf(id, sizeof(id), "%c-u%d", side ? 't' : 's', u);
            snprintf(email, sizeof(email), "user%d@example.com", u);
            uint32_t ui = mdl_add_user(x, &(struct mdl_user){.id = id, .email = email});
            mdl_user_add_role(x, ui, 0);
            for (int k = 0; k < 4; k++)
                mdl_user_add_role(x, ui, (uint32_t)(1 + (u * 7 + k * 13) % (NR - 1)));
            if (side && u % 100 == 0) /* 1 % drift */
                mdl_user_add_role(x, ui, (uint32_t)(1 + u % (NR - 1)));
        }
        char err[64];
        assert_int_equal(mdl_snapshot_finish(x, err, sizeof(err)), 0);
    }
    struct cfg_job job = {.name = "scale", .max_deletes = 100000};
    set_list(&job.roles_include, (const char *[]){"*"}, 1);
    set_list(&job.users_include, (const char *[]){"*@example.com"}, 1);
    char err[64];
    uint64_t t0 = util_mono_ms();
    struct plan *p = plan_build(diff_compute(&job, s, t, NULL, err, sizeof(err)), false);
    uint64_t t1 = util_mono_ms();
    assert_int_equal(p->diff->report.matched_users, NU);
    /* every 100th target user has one extra role unless it collides with one of its four */
    assert_true(p->diff->nremoves > 0 && p->diff->nremoves <= NU / 100);
    assert_int_equal(p->diff->nadds, 0);
    print_message("scale: diff+plan of %d users x %d roles took %llu ms (%zu removals, %zu "
                  "requests)\n",
                  NU, NR, (unsigned long long)(t1 - t0), p->diff->nremoves, p->nassign_ops);
    plan_free(p);
    free_list(&job.roles_include);
    free_list(&job.users_include);
    mdl_snapshot_free(s);
    mdl_snapshot_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_property),
        cmocka_unit_test(test_scale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
