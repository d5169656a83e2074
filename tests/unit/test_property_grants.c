/* test_property_grants.c — randomised model check of diff + plan on genesys -> genesys worlds
 * with divisions and inherited grants (product.md 4a; fixed seeds, 500 worlds).
 *
 * Each iteration builds a random source and target org as the genesys provider reads them
 * (MDL_CAP_GRANT_WRITES caps, a home division plus 0..4 others per side, some names shared,
 * some on one side only, case variants, two target divisions of one name now and then, the
 * all-divisions qualifier `*` most of the time, a division known only by its id), the built-ins
 * (Employee, forced; Master Admin), custom roles of the same names on both sides (one sometimes
 * only on the source, one only on the target), users matched by email (some unmatched on either
 * side, some deleted, duplicate keys), random direct grants and random inherited
 * (MDL_GRANT_INHERITED) grants, and a random job (divisions include/exclude globs incl. "home",
 * divisions.rename, roles include/exclude, users include/exclude, mirror/additive/off,
 * max_deletes large or small with or without force). A world is now and then large enough for
 * role-wide batches to split at PLAN_BATCH_MAX.
 *
 * The core runs as src/sync.c runs it: diff_grant_masks on the role listings (only masked roles'
 * grants are read, the rest are marked grants_unread, as genesys.c request_grants does),
 * diff_compute, plan_build, then plan_phase_assign + plan_write_prepare for every write. A tiny
 * simulator of the genesys grant writes applies them by id to a copy of the target (ROLE_ADD:
 * a direct grant of the role in that division to each user; USER_ADD / USER_REMOVE: the listed
 * (role, division) grants; ROLE_REMOVE: the user's direct grants of the role in every division;
 * inherited grants are never touched by any write). An independent, naive oracle then checks:
 *   - the read masks are what the scope says (managed roles on both sides, nothing when off);
 *   - the division mapping: home <-> home, * <-> *, others by name after rename, never onto the
 *     target's home; none or two counterparts (or two source divisions onto one) = reported
 *     and skipped, with the number of skipped grants;
 *   - refused <=> deletions > max_deletes and not forced; a refused plan writes nothing;
 *   - every matched in-scope user's direct grants of managed roles in in-scope mapped divisions
 *     equal the source's direct grants mapped through the division mapping (mirror; a
 *     protected admin grant stays), or are a superset (additive), or are unchanged (off);
 *   - inherited grants are unchanged; grants in unmapped, conflicting, out-of-scope or
 *     target-only divisions, of unmanaged roles and of unmatched users are unchanged;
 *   - no write adds a grant the user already holds directly, or removes one it does not hold
 *     directly (an inherited-only grant is never written); batches carry 1..PLAN_BATCH_MAX users;
 *   - re-reading and re-planning the result yields an empty plan.
 * What the worlds exercised is counted, printed, and asserted non-trivial at the end.
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

#define MAXR 10  /* logical roles: 0 Employee, 1 Master Admin, 2..7 R0..R5, 8 Legacy, 9 Extra */
#define MAXQ 10  /* qualifiers per side */
#define MAXU 260 /* users per side */
#define NWORLDS 500

#define GD 0x1u /* a direct grant */
#define GI 0x2u /* an inherited grant (through a group) */

enum { L_EMPLOYEE = 0, L_ADMIN = 1, L_CUSTOM = 2, L_LEGACY = 8, L_EXTRA = 9 };

struct wrole {
    bool present;
    char id[16], name[24];
    const char *key; /* builtin key or NULL */
};

struct wqual {
    char id[16], name[24];
    bool named, home, all;
};

struct wuser {
    char id[16], email[32];
    enum mdl_user_state state;
    uint8_t g[MAXR][MAXQ]; /* GD | GI per (logical role, qualifier) */
};

struct world {
    char side; /* 's' or 't' */
    struct wrole r[MAXR];
    struct wqual q[MAXQ];
    int nq;
    struct wuser *u;
    int nu;
    int snap_role[MAXR]; /* logical role -> snapshot index, -1 */
};

static uint64_t rng;
static uint32_t rnd(uint32_t n)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)((rng >> 33) % n);
}

/* How much the random worlds exercise: printed, and asserted non-trivial at the end. */
static struct {
    size_t worlds, refused, forced_over, mirror, additive, off, large;
    size_t adds, removes, role_add_ops, user_add_ops, role_remove_ops, user_remove_ops;
    size_t full_batches, split_batches;
    size_t skipped, unmapped_quals, two_counterparts, shared_counterparts, renamed_maps;
    size_t all_maps, out_of_scope_quals, target_only_quals, target_only_grants_kept;
    size_t inherited_kept, add_over_inherited, remove_keeps_inherited, kept_elsewhere;
    size_t protected_admin, unread_roles, matched_pairs;
} st;

/* ---- random worlds -------------------------------------------------------------------------*/

static void case_variant(char *s)
{
    uint32_t k = rnd(3);
    for (char *c = s; *c; c++)
        *c = (char)(k == 0 ? tolower((unsigned char)*c) : k == 1 ? toupper((unsigned char)*c) : *c);
}

static void add_qual(struct world *w, const char *name, bool all)
{
    assert_true(w->nq < MAXQ);
    struct wqual *q = &w->q[w->nq];
    memset(q, 0, sizeof(*q));
    if (all) {
        snprintf(q->id, sizeof(q->id), "*");
        snprintf(q->name, sizeof(q->name), "*");
        q->named = q->all = true;
    } else {
        snprintf(q->id, sizeof(q->id), "%c-d%d", w->side, w->nq);
        if (name) {
            snprintf(q->name, sizeof(q->name), "%s", name);
            q->named = true;
        }
    }
    w->nq++;
}

static void shuffle(const char **v, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int k = (int)rnd((uint32_t)i + 1);
        const char *t = v[i];
        v[i] = v[k];
        v[k] = t;
    }
}

static void gen_quals(struct world *w, bool target)
{
    static const char *SPOOL[] = {"EMEA", "APAC", "LATAM", "NA", "Sandbox", "Main"};
    static const char *TPOOL[] = {"EMEA",   "APAC", "LATAM", "NA",          "Sandbox",
                                  "Europe", "Asia", "Main",  "Headquarters"};
    w->nq = 0;
    /* qualifier 0: home */
    static const char *SHOME[] = {"Headquarters", "Home"}, *THOME[] = {"Home", "Main"};
    add_qual(w, target ? THOME[rnd(2)] : SHOME[rnd(2)], false);
    w->q[0].home = true;
    snprintf(w->q[0].id, sizeof(w->q[0].id), "%ch", w->side);
    const char *pool[9];
    int npool = target ? 9 : 6;
    memcpy(pool, target ? TPOOL : SPOOL, sizeof(char *) * (size_t)npool);
    shuffle(pool, npool);
    int k = (int)rnd(5);
    /* the other qualifiers in a random order: divisions, the all-divisions grant, and now and
     * then a division known only by its id (a grant in one the listing lacks) */
    const char *items[MAXQ];
    int n = 0;
    for (int i = 0; i < k; i++) {
        if (target && strcmp(pool[i], "Main") == 0 && strcmp(w->q[0].name, "Main") == 0)
            continue; /* the home's own name */
        items[n++] = pool[i];
    }
    bool all = rnd(6) != 0;
    if (all)
        items[n++] = "*";
    if (rnd(15) == 0)
        items[n++] = ""; /* unnamed */
    if (n > 0 && rnd(target ? 7 : 15) == 0 && strcmp(items[0], "*") && items[0][0])
        items[n++] = "dup"; /* a case variant of items[0]: two divisions of one name */
    shuffle(items, n);
    const char *dupof = NULL;
    for (int i = 0; i < n; i++)
        if (strcmp(items[i], "dup") && strcmp(items[i], "*") && items[i][0]) {
            dupof = items[i];
            break;
        }
    for (int i = 0; i < n; i++) {
        if (strcmp(items[i], "*") == 0) {
            add_qual(w, NULL, true);
        } else if (!items[i][0]) {
            add_qual(w, NULL, false);
        } else if (strcmp(items[i], "dup") == 0) {
            if (!dupof)
                continue;
            add_qual(w, dupof, false);
            case_variant(w->q[w->nq - 1].name);
        } else {
            add_qual(w, items[i], false);
            if (target)
                case_variant(w->q[w->nq - 1].name);
        }
    }
}

static void gen_roles(struct world *w, int ncustom, bool target)
{
    for (int l = 0; l < MAXR; l++) {
        struct wrole *r = &w->r[l];
        memset(r, 0, sizeof(*r));
        snprintf(r->id, sizeof(r->id), "%c-r%d", w->side, l);
        if (l == L_EMPLOYEE) {
            snprintf(r->name, sizeof(r->name), "Employee");
            r->key = GJS_FORCED_ROLE;
            r->present = true;
        } else if (l == L_ADMIN) {
            snprintf(r->name, sizeof(r->name), "Master Admin");
            r->key = GJS_ADMIN_ROLE;
            r->present = true;
        } else if (l < L_LEGACY) {
            snprintf(r->name, sizeof(r->name), "R%d", l - L_CUSTOM);
            r->present = l - L_CUSTOM < ncustom;
            if (target && rnd(8) == 0)
                case_variant(r->name);
        } else if (l == L_LEGACY) { /* source only: unmapped */
            snprintf(r->name, sizeof(r->name), "Legacy");
            r->present = !target && rnd(3) == 0;
        } else { /* target only: nothing maps to it */
            snprintf(r->name, sizeof(r->name), "Extra");
            r->present = target && rnd(3) == 0;
        }
    }
}

static const char *EMAILS[] = {"ann@a.com", "bob@a.com", "cat@a.com", "dan@b.com", "eve@b.com",
                               "fay@a.com", "gus@b.com", "hal@a.com", "ivy@a.com", "jon@b.com"};

static void gen_users(struct world *w, bool target, int nkeys, bool large)
{
    w->nu = 0;
    uint32_t dens = large ? 14 : 6;
    for (int i = 0; i < nkeys && w->nu < MAXU - 1; i++) {
        if (rnd(6) == 0)
            continue; /* on the other side only */
        struct wuser *u = &w->u[w->nu++];
        memset(u, 0, sizeof(*u));
        snprintf(u->id, sizeof(u->id), "%c-u%d", w->side, i);
        if (large)
            snprintf(u->email, sizeof(u->email), "user%d@%s.com", i, i % 7 ? "a" : "b");
        else
            snprintf(u->email, sizeof(u->email), "%s", EMAILS[i]);
        if (target && rnd(3) == 0)
            case_variant(u->email);
        uint32_t sv = rnd(14);
        u->state = sv == 0 ? MDL_USER_DELETED : sv == 1 ? MDL_USER_INACTIVE : MDL_USER_ACTIVE;
        for (int l = 0; l < MAXR; l++) {
            if (!w->r[l].present)
                continue;
            for (int q = 0; q < w->nq; q++) {
                if (l == L_EMPLOYEE) {
                    u->g[l][q] = q == 0 ? GD : 0; /* the platform gives it to every user */
                    continue;
                }
                if (rnd(dens) == 0)
                    u->g[l][q] |= GD;
                if (rnd(dens * 2) == 0)
                    u->g[l][q] |= GI;
            }
        }
        if (!large && rnd(25) == 0 && w->nu < MAXU) { /* a second user with the key */
            struct wuser *v = &w->u[w->nu++];
            *v = *u;
            snprintf(v->id, sizeof(v->id), "%c-x%d", w->side, i);
            v->email[0] = (char)toupper((unsigned char)v->email[0]);
        }
    }
}

/* A target twin that starts close to its source user (so that worlds also hold grants in sync,
 * not only differences): copy some of the source's grants through the names of the
 * divisions. */
static void correlate(struct world *t, const struct world *s)
{
    for (int i = 0; i < t->nu; i++) {
        struct wuser *tu = &t->u[i];
        const struct wuser *su = NULL;
        for (int k = 0; k < s->nu && !su; k++)
            if (strcasecmp(s->u[k].email, tu->email) == 0)
                su = &s->u[k];
        if (!su || rnd(2))
            continue;
        for (int l = L_ADMIN; l < MAXR; l++)
            for (int sq = 0; sq < s->nq; sq++) {
                if (!(su->g[l][sq] & GD) || !t->r[l].present || rnd(3) == 0)
                    continue;
                for (int tq = 0; tq < t->nq; tq++)
                    if ((sq == 0 && tq == 0) || (s->q[sq].all && t->q[tq].all) ||
                        (sq && tq && s->q[sq].named && t->q[tq].named && !s->q[sq].all &&
                         !t->q[tq].all && strcasecmp(s->q[sq].name, t->q[tq].name) == 0))
                        tu->g[l][tq] |= GD;
            }
    }
}

/* ---- random job ----------------------------------------------------------------------------*/

static void set_list(struct cfg_strlist *l, const char *const *v)
{
    size_t n = 0;
    while (v[n])
        n++;
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

#define PICK(arr) (arr[rnd((uint32_t)(sizeof(arr) / sizeof(arr[0])))])

static void gen_job(struct cfg_job *j, bool large)
{
    memset(j, 0, sizeof(*j));
    j->name = "propg";
    static const char *const RINC[][3] = {
        {"*", NULL}, {"*", NULL}, {"*", "Master Admin", NULL}, {"R*", "master admin", NULL}};
    static const char *const REXC[][2] = {{NULL}, {NULL}, {"R1", NULL}, {"Extra", NULL}};
    static const char *const UINC[][2] = {{"*", NULL}, {"*", NULL}, {"*@a.com", NULL}};
    static const char *const UEXC[][2] = {{NULL}, {NULL}, {"bob@a.com", NULL}};
    static const char *const DINC[][4] = {{"*", NULL},
                                          {"*", NULL},
                                          {"*", NULL},
                                          {"home", NULL},
                                          {"home", "E*", NULL},
                                          {"*a*", NULL},
                                          {"Headquarters", "APAC", "NA", NULL},
                                          {"e*", "s*", "home", NULL}};
    static const char *const DEXC[][3] = {{NULL},         {NULL},         {NULL},
                                          {"home", NULL}, {"APAC", NULL}, {"sandbox", "na", NULL},
                                          {"*", NULL}};
    set_list(&j->roles_include, PICK(RINC));
    set_list(&j->roles_exclude, PICK(REXC));
    set_list(&j->users_include, PICK(UINC));
    set_list(&j->users_exclude, PICK(UEXC));
    set_list(&j->divisions_include, PICK(DINC));
    set_list(&j->divisions_exclude, PICK(DEXC));
    static const char *const REN[][2] = {
        {"EMEA", "Europe"}, {"APAC", "asia"}, {"NA", "EMEA"}, {"Sandbox", "Main"}, {"latam", "NA"}};
    j->division_rename = calloc(3, sizeof(*j->division_rename));
    size_t nren = rnd(4);
    for (size_t i = 0; i < nren && i < 3; i++) {
        size_t r = rnd(5);
        bool dup = false;
        for (size_t k = 0; k < j->ndivision_rename; k++)
            dup = dup || strcasecmp(j->division_rename[k].from, REN[r][0]) == 0;
        if (dup)
            continue;
        j->division_rename[j->ndivision_rename].from = strdup(REN[r][0]);
        j->division_rename[j->ndivision_rename].to = strdup(REN[r][1]);
        j->ndivision_rename++;
    }
    uint32_t k = rnd(10);
    j->assignments = k < 6 ? CFG_ASSIGN_MIRROR : k < 9 ? CFG_ASSIGN_ADDITIVE : CFG_ASSIGN_OFF;
    j->match_by = CFG_MATCH_EMAIL;
    j->max_deletes = rnd(2) ? 100000 : large ? rnd(200) : rnd(8);
}

static void free_job(struct cfg_job *j)
{
    free_list(&j->roles_include);
    free_list(&j->roles_exclude);
    free_list(&j->users_include);
    free_list(&j->users_exclude);
    free_list(&j->divisions_include);
    free_list(&j->divisions_exclude);
    for (size_t i = 0; i < j->ndivision_rename; i++) {
        free(j->division_rename[i].from);
        free(j->division_rename[i].to);
    }
    free(j->division_rename);
}

/* ---- snapshots, read as the genesys provider reads them ------------------------------------*/

/* The listings: divisions, roles, users (no grants yet). */
static struct mdl_snapshot *snap_listings(struct world *w)
{
    struct mdl_snapshot *s = fx_snapshot_new(CFG_API_GENESYS);
    s->divided = true;
    mdl_set_home(s, w->q[0].id, w->q[0].name);
    for (int q = 1; q < w->nq; q++) {
        uint32_t k = mdl_add_qual(s, &(struct mdl_qual){.id = w->q[q].id,
                                                        .name = w->q[q].named ? w->q[q].name : NULL,
                                                        .all = w->q[q].all});
        assert_int_equal(k, q);
    }
    for (int l = 0; l < MAXR; l++) {
        w->snap_role[l] = -1;
        if (!w->r[l].present)
            continue;
        struct mdl_role r = {.id = w->r[l].id, .name = w->r[l].name, .builtin_key = w->r[l].key};
        fx_mark_role(CFG_API_GENESYS, &r);
        w->snap_role[l] = (int)mdl_add_role(s, &r);
    }
    for (int i = 0; i < w->nu; i++) {
        uint32_t k = mdl_add_user(
            s,
            &(struct mdl_user){.id = w->u[i].id, .email = w->u[i].email, .state = w->u[i].state});
        assert_int_equal(k, i);
    }
    return s;
}

/* The second step: subject grants of the masked roles only (genesys.c request_grants), then
 * finish. */
static void snap_grants(struct mdl_snapshot *s, const struct world *w, const bool *mask)
{
    char err[128];
    assert_int_equal(mdl_index_users(s, err, sizeof(err)), 0);
    for (int l = 0; l < MAXR; l++) {
        int k = w->snap_role[l];
        if (k < 0)
            continue;
        struct mdl_role *r = &s->roles[k];
        bool read = mask[k] && !r->forced && !r->foreign;
        r->grants_unread = !read;
        if (!read)
            continue;
        for (int i = 0; i < w->nu; i++)
            for (int q = 0; q < w->nq; q++) {
                if (w->u[i].g[l][q] & GD)
                    mdl_user_add_grant(s, (uint32_t)i, (uint32_t)k, (uint32_t)q, 0);
                if (w->u[i].g[l][q] & GI)
                    mdl_user_add_grant(s, (uint32_t)i, (uint32_t)k, (uint32_t)q,
                                       MDL_GRANT_INHERITED);
            }
    }
    assert_int_equal(mdl_snapshot_finish(s, err, sizeof(err)), 0);
}

/* Both reads, the masks between the two steps as sync.c grants_step computes them. */
static void read_both(const struct cfg_job *job, struct world *S, struct world *T,
                      struct mdl_snapshot **ss, struct mdl_snapshot **ts, bool *smask, bool *tmask)
{
    *ss = snap_listings(S);
    *ts = snap_listings(T);
    diff_grant_masks(job, *ss, *ts, smask, tmask);
    snap_grants(*ss, S, smask);
    snap_grants(*ts, T, tmask);
}

/* ---- oracle --------------------------------------------------------------------------------*/

static bool glob_any(const struct cfg_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (util_glob_match(l->v[i], s))
            return true;
    return false;
}

struct oracle {
    bool managed[MAXR];   /* logical role: its target grants are mirrored */
    bool revocable[MAXR]; /* a direct grant of it may be revoked (not a protected admin) */
    bool sel[MAXQ];       /* source qualifier selected by the division globs */
    int smap[MAXQ];       /* source qualifier -> target qualifier, -1 */
    int why[MAXQ];        /* selected without counterpart: 1 none, 2 two, 3 shared */
    bool renamed[MAXQ];   /* mapped through divisions.rename */
    bool tin[MAXQ];       /* target qualifier in scope */
    int pair[MAXU];       /* target user -> matched source user, -1 */
};

static bool role_in_scope(const struct cfg_job *j, const char *name)
{
    return glob_any(&j->roles_include, name) && !glob_any(&j->roles_exclude, name);
}

static bool qual_selected(const struct cfg_job *j, const struct wqual *q)
{
    const char *names[3];
    int n = 0;
    if (q->home)
        names[n++] = "home";
    if (q->all)
        names[n++] = "*";
    if (q->named)
        names[n++] = q->name;
    bool inc = false, exc = false;
    for (int i = 0; i < n; i++) {
        inc = inc || glob_any(&j->divisions_include, names[i]);
        exc = exc || glob_any(&j->divisions_exclude, names[i]);
    }
    return inc && !exc;
}

/* the unique in-scope, non-deleted user with this key; -1 none, -2 ambiguous */
static int find_user(const struct cfg_job *j, const struct world *w, const char *email)
{
    int found = -1;
    for (int i = 0; i < w->nu; i++) {
        const struct wuser *u = &w->u[i];
        if (u->state == MDL_USER_DELETED || strcasecmp(u->email, email) != 0)
            continue;
        if (!glob_any(&j->users_include, u->email) || glob_any(&j->users_exclude, u->email))
            continue;
        if (found >= 0)
            return -2;
        found = i;
    }
    return found;
}

static void oracle_build(const struct cfg_job *j, const struct world *S, const struct world *T,
                         struct oracle *o)
{
    memset(o, 0, sizeof(*o));
    /* roles: every role has at most one counterpart by name (built-ins by key) */
    for (int l = 0; l < MAXR; l++) {
        const char *scope_name = S->r[l].present ? S->r[l].name : T->r[l].name;
        o->managed[l] = T->r[l].present && l != L_EMPLOYEE && role_in_scope(j, scope_name) &&
                        j->assignments != CFG_ASSIGN_OFF;
        o->revocable[l] = true;
        if (l == L_ADMIN) {
            /* only when roles.include names it verbatim (product.md 4.6): the exact name, case
             * included ("master admin" does not do; diff.c named_verbatim) */
            o->revocable[l] = false;
            for (size_t i = 0; i < j->roles_include.n; i++)
                if (!strpbrk(j->roles_include.v[i], "*?") &&
                    strcmp(j->roles_include.v[i], scope_name) == 0)
                    o->revocable[l] = true;
        }
    }
    /* divisions */
    int onto[MAXQ] = {0};
    for (int q = 0; q < S->nq; q++) {
        const struct wqual *sq = &S->q[q];
        o->smap[q] = -1;
        o->sel[q] = qual_selected(j, sq);
        if (!o->sel[q])
            continue;
        int found = -1, count = 0;
        if (sq->home) {
            found = 0;
            count = 1;
        } else if (sq->all || sq->named) {
            const char *want = sq->name;
            for (size_t i = 0; !sq->all && i < j->ndivision_rename; i++)
                if (strcasecmp(j->division_rename[i].from, sq->name) == 0) {
                    want = j->division_rename[i].to;
                    o->renamed[q] = true;
                    break;
                }
            for (int t = 1; t < T->nq; t++) {
                const struct wqual *tq = &T->q[t];
                if (sq->all ? tq->all : (!tq->all && tq->named && !strcasecmp(tq->name, want))) {
                    if (found < 0)
                        found = t;
                    count++;
                }
            }
        }
        if (count == 1) {
            o->smap[q] = found;
            onto[found]++;
        } else {
            o->why[q] = count == 0 ? 1 : 2;
        }
    }
    for (int q = 0; q < S->nq; q++)
        if (o->smap[q] >= 0 && onto[o->smap[q]] > 1) {
            o->smap[q] = -1;
            o->why[q] = 3;
        }
    for (int q = 0; q < S->nq; q++)
        if (o->smap[q] >= 0)
            o->tin[o->smap[q]] = true;
    /* users */
    for (int i = 0; i < T->nu; i++) {
        o->pair[i] = -1;
        if (find_user(j, T, T->u[i].email) == i) {
            int si = find_user(j, S, T->u[i].email);
            o->pair[i] = si >= 0 ? si : -1;
        }
    }
}

/* ---- simulator of the genesys grant writes --------------------------------------------------*/

static int role_by_id(const struct world *T, const char *id)
{
    assert_non_null(id);
    for (int l = 0; l < MAXR; l++)
        if (T->r[l].present && strcmp(T->r[l].id, id) == 0)
            return l;
    fail_msg("write names an unknown role id %s", id);
    return -1;
}

static int qual_by_id(const struct world *T, const char *id)
{
    assert_non_null(id); /* a divided target: every write says where */
    for (int q = 0; q < T->nq; q++)
        if (strcmp(T->q[q].id, id) == 0)
            return q;
    fail_msg("write names an unknown division id %s", id);
    return -1;
}

static int user_by_id(const struct world *T, const char *id)
{
    assert_non_null(id);
    for (int i = 0; i < T->nu; i++)
        if (strcmp(T->u[i].id, id) == 0)
            return i;
    fail_msg("write names an unknown user id %s", id);
    return -1;
}

static void grant_add(struct world *T, int u, int l, int q)
{
    uint8_t *g = &T->u[u].g[l][q];
    if (*g & GD)
        fail_msg("adds %s role %s in %s, already held directly", T->u[u].email, T->r[l].name,
                 T->q[q].id);
    st.add_over_inherited += (*g & GI) != 0;
    *g |= GD;
}

static void grant_remove(struct world *T, int u, int l, int q)
{
    uint8_t *g = &T->u[u].g[l][q];
    if (!(*g & GD))
        fail_msg("removes %s role %s in %s, not held directly%s", T->u[u].email, T->r[l].name,
                 T->q[q].id, (*g & GI) ? " (inherited only)" : "");
    st.remove_keeps_inherited += (*g & GI) != 0;
    *g &= (uint8_t)~GD;
}

static void apply(struct world *T, struct plan *p)
{
    size_t n;
    const struct diff_role_op *rops = plan_phase_roles(p, &n);
    assert_int_equal(n, 0); /* no definitions, no prune */
    (void)rops;
    const struct plan_assign_op *a = plan_phase_assign(p, &n);
    for (size_t i = 0; i < n; i++) {
        struct plan_write w;
        plan_write_prepare(p, i, false, &w);
        assert_false(w.hold);
        assert_false(w.partial);
        switch (a[i].kind) {
        case PLAN_ASSIGN_ROLE_ADD: {
            assert_true(w.nids >= 1 && w.nids <= PLAN_BATCH_MAX);
            int l = role_by_id(T, w.role_id), q = qual_by_id(T, w.qual_id);
            for (size_t k = 0; k < w.nids; k++)
                grant_add(T, user_by_id(T, w.ids[k]), l, q);
            st.role_add_ops++;
            st.full_batches += w.nids == PLAN_BATCH_MAX;
            break;
        }
        case PLAN_ASSIGN_ROLE_REMOVE: {
            assert_true(w.nids >= 1 && w.nids <= PLAN_BATCH_MAX);
            int l = role_by_id(T, w.role_id);
            for (size_t k = 0; k < w.nids; k++) {
                int u = user_by_id(T, w.ids[k]);
                bool direct = false;
                for (int q = 0; q < T->nq; q++)
                    if (T->u[u].g[l][q] & GD) {
                        grant_remove(T, u, l, q); /* every division */
                        direct = true;
                    }
                if (!direct)
                    fail_msg("revokes role %s from %s, who holds it directly nowhere", T->r[l].name,
                             T->u[u].email);
            }
            st.role_remove_ops++;
            st.full_batches += w.nids == PLAN_BATCH_MAX;
            break;
        }
        case PLAN_ASSIGN_USER_ADD:
        case PLAN_ASSIGN_USER_REMOVE: {
            assert_true(w.ngrants >= 1);
            int u = user_by_id(T, p->diff->tgt->users[a[i].tgt_user].id);
            for (size_t k = 0; k < w.ngrants; k++) {
                int l = role_by_id(T, w.grants[k].role_id);
                int q = qual_by_id(T, w.grants[k].qual_id);
                if (a[i].kind == PLAN_ASSIGN_USER_ADD)
                    grant_add(T, u, l, q);
                else
                    grant_remove(T, u, l, q);
            }
            *(a[i].kind == PLAN_ASSIGN_USER_ADD ? &st.user_add_ops : &st.user_remove_ops) += 1;
            break;
        }
        case PLAN_ASSIGN_USER_SET:
            fail_msg("a whole role set written to a grant-writing target");
            break;
        }
        plan_write_release(&w);
    }
    /* a batch split at PLAN_BATCH_MAX: two ops of one role (and division) */
    for (size_t i = 0; i + 1 < n; i++)
        st.split_batches +=
            a[i].kind == a[i + 1].kind && a[i].ref == a[i + 1].ref && a[i].qual == a[i + 1].qual &&
            (a[i].kind == PLAN_ASSIGN_ROLE_ADD || a[i].kind == PLAN_ASSIGN_ROLE_REMOVE);
    rops = plan_phase_deletes(p, &n);
    assert_int_equal(n, 0);
}

/* ---- one world -----------------------------------------------------------------------------*/

static void dump_list(const char *what, const struct cfg_strlist *l)
{
    print_error(" %s=[", what);
    for (size_t i = 0; i < l->n; i++)
        print_error("%s%s", i ? "," : "", l->v[i]);
    print_error("]");
}

static void dump_job(const struct cfg_job *j)
{
    print_error("job: assignments=%d max_deletes=%u", (int)j->assignments, j->max_deletes);
    dump_list("roles.include", &j->roles_include);
    dump_list("roles.exclude", &j->roles_exclude);
    dump_list("users.include", &j->users_include);
    dump_list("users.exclude", &j->users_exclude);
    dump_list("divisions.include", &j->divisions_include);
    dump_list("divisions.exclude", &j->divisions_exclude);
    for (size_t i = 0; i < j->ndivision_rename; i++)
        print_error(" rename %s=%s", j->division_rename[i].from, j->division_rename[i].to);
    print_error("\n");
}

static void dump_world(const char *what, const struct world *w)
{
    for (int i = 0; i < w->nu; i++) {
        print_error("%s user %s %s state %d:", what, w->u[i].id, w->u[i].email, (int)w->u[i].state);
        for (int l = 1; l < MAXR; l++)
            for (int q = 0; q < w->nq; q++)
                if (w->u[i].g[l][q])
                    print_error(" %s@%s%s%s", w->r[l].name, w->q[q].id,
                                (w->u[i].g[l][q] & GD) ? "" : "^",
                                (w->u[i].g[l][q] & GD) && (w->u[i].g[l][q] & GI) ? "+^" : "");
        print_error("\n");
    }
    print_error("%s quals:", what);
    for (int q = 0; q < w->nq; q++)
        print_error(" [%d]%s=%s%s", q, w->q[q].id, w->q[q].named ? w->q[q].name : "(none)",
                    w->q[q].home ? "(home)" : "");
    print_error("\n");
}

static void check_world(uint64_t seed)
{
    rng = seed;
    bool large = rnd(25) == 0;
    struct world *S = calloc(1, sizeof(*S)), *T = calloc(1, sizeof(*T)),
                 *T0 = calloc(1, sizeof(*T0));
    S->u = calloc(MAXU, sizeof(struct wuser));
    T->u = calloc(MAXU, sizeof(struct wuser));
    T0->u = calloc(MAXU, sizeof(struct wuser));
    S->side = 's';
    T->side = 't';
    int ncustom = 2 + (int)rnd(5);
    int nkeys = large ? 150 + (int)rnd(100) : 4 + (int)rnd(7);
    gen_quals(S, false);
    gen_quals(T, true);
    gen_roles(S, ncustom, false);
    gen_roles(T, ncustom, true);
    gen_users(S, false, nkeys, large);
    gen_users(T, true, nkeys, large);
    correlate(T, S);
    if (large) {
        /* a mass move: most users gain R0 and lose R1 in the home division, so that role-wide
         * batches fill up and split at PLAN_BATCH_MAX */
        for (int i = 0; i < S->nu; i++) {
            S->u[i].g[L_CUSTOM][0] = (uint8_t)((S->u[i].g[L_CUSTOM][0] & GI) | (rnd(5) ? GD : 0));
            S->u[i].g[L_CUSTOM + 1][0] &= (uint8_t)(rnd(10) ? GI : GI | GD);
        }
        for (int i = 0; i < T->nu; i++) {
            T->u[i].g[L_CUSTOM][0] &= (uint8_t)(rnd(10) ? GI : GI | GD);
            T->u[i].g[L_CUSTOM + 1][0] |= rnd(5) ? GD : 0;
        }
    }
    struct cfg_job job;
    gen_job(&job, large);
    bool force = rnd(3) == 0;
    {
        struct wuser *keep = T0->u;
        *T0 = *T;
        T0->u = keep;
        memcpy(T0->u, T->u, MAXU * sizeof(struct wuser));
    }

    struct oracle o;
    oracle_build(&job, S, T, &o);

    struct mdl_snapshot *ss, *ts;
    bool smask[MAXR + 1], tmask[MAXR + 1];
    read_both(&job, S, T, &ss, &ts, smask, tmask);
    /* the masks read exactly the managed roles' grants, on both sides */
    for (int l = 0; l < MAXR; l++) {
        if (S->snap_role[l] >= 0)
            assert_int_equal(smask[S->snap_role[l]], o.managed[l] && S->r[l].present);
        if (T->snap_role[l] >= 0)
            assert_int_equal(tmask[T->snap_role[l]], o.managed[l]);
        st.unread_roles += T->r[l].present && !o.managed[l];
    }

    char err[128];
    struct diff *d = diff_compute(&job, ss, ts, NULL, err, sizeof(err));
    assert_non_null(d);

    /* the division mapping */
    size_t nunmapped = 0;
    for (int q = 0; q < S->nq; q++) {
        const struct diff_src_qual *dq = &d->src_quals[q];
        if (dq->in_scope != o.sel[q] ||
            (int)(dq->map == MDL_NONE ? -1 : (int)dq->map) != o.smap[q]) {
            dump_world("source", S);
            dump_world("target", T);
            fail_msg("seed %llu: source division %d: in_scope %d map %d, expected %d %d",
                     (unsigned long long)seed, q, dq->in_scope, (int)dq->map, o.sel[q], o.smap[q]);
        }
        nunmapped += o.sel[q] && o.smap[q] < 0;
        st.unmapped_quals += o.sel[q] && o.smap[q] < 0;
        st.two_counterparts += o.why[q] == 2;
        st.shared_counterparts += o.why[q] == 3;
        st.renamed_maps += o.renamed[q] && o.smap[q] >= 0;
        st.all_maps += S->q[q].all && o.smap[q] >= 0;
        st.out_of_scope_quals += !o.sel[q];
    }
    for (int q = 0; q < T->nq; q++) {
        assert_int_equal(d->tgt_quals[q].in_scope, o.tin[q]);
        st.target_only_quals += !o.tin[q];
    }
    assert_int_equal(d->report.nunmapped_quals, nunmapped);

    /* expected changes, grant by grant */
    bool mirror = job.assignments == CFG_ASSIGN_MIRROR;
    bool additive = job.assignments == CFG_ASSIGN_ADDITIVE;
    size_t want_adds = 0, want_removes = 0, skipped[MAXQ] = {0};
    static uint8_t want[MAXU][MAXR][MAXQ]; /* expected final grants of each target user */
    for (int i = 0; i < T->nu; i++) {
        memcpy(want[i], T0->u[i].g, sizeof(want[i]));
        int si = o.pair[i];
        if (si < 0)
            continue;
        st.matched_pairs++;
        bool D[MAXR][MAXQ] = {{false}};
        for (int l = 0; l < MAXR; l++) {
            if (!o.managed[l] || !S->r[l].present)
                continue;
            for (int q = 0; q < S->nq; q++) {
                if (!(S->u[si].g[l][q] & GD) || !o.sel[q])
                    continue;
                if (o.smap[q] < 0)
                    skipped[q]++;
                else
                    D[l][o.smap[q]] = true;
            }
        }
        for (int l = 0; l < MAXR; l++) {
            for (int q = 0; q < T->nq; q++) {
                uint8_t before = T0->u[i].g[l][q];
                if (!o.managed[l] || !o.tin[q]) {
                    st.target_only_grants_kept += (before & GD) && o.managed[l] && !o.tin[q];
                    continue;
                }
                st.inherited_kept += (before & GI) != 0;
                bool had = before & GD, has = had;
                if (mirror)
                    has = D[l][q] || (had && !o.revocable[l]);
                else if (additive)
                    has = D[l][q] || had;
                st.protected_admin += mirror && had && !D[l][q] && !o.revocable[l];
                want_adds += has && !had;
                want_removes += had && !has;
                want[i][l][q] = (uint8_t)((before & GI) | (has ? GD : 0));
            }
        }
    }
    for (int q = 0; q < S->nq; q++)
        assert_int_equal(d->src_quals[q].skipped, skipped[q]);
    for (int q = 0; q < S->nq; q++)
        st.skipped += skipped[q];
    if (d->nadds != want_adds || d->nremoves != want_removes) {
        dump_job(&job);
        dump_world("source", S);
        dump_world("target", T0);
        char *text = plan_render_string(plan_build(d, true));
        print_error("%s", text);
        free(text);
        fail_msg("seed %llu: %zu adds %zu removes, expected %zu %zu", (unsigned long long)seed,
                 d->nadds, d->nremoves, want_adds, want_removes);
    }

    struct plan *p = plan_build(d, force);
    bool refuse = want_removes > job.max_deletes && !force;
    assert_int_equal(p->deletions, want_removes);
    assert_int_equal(p->refused, refuse);
    size_t nnotes, ndiv = 0;
    const struct plan_note *notes = plan_notes(p, &nnotes);
    for (size_t i = 0; i < nnotes; i++)
        ndiv += notes[i].kind == PLAN_NOTE_DIVISION;
    assert_int_equal(ndiv, nunmapped);
    st.worlds++;
    st.large += large;
    st.refused += refuse;
    st.forced_over += force && want_removes > job.max_deletes;
    st.mirror += mirror;
    st.additive += additive;
    st.off += job.assignments == CFG_ASSIGN_OFF;
    if (!refuse) {
        st.adds += want_adds;
        st.removes += want_removes;
    }
    /* a removal that must leave the user's other direct grants of the role alone */
    for (size_t c = 0; c < d->nchanges; c++) {
        const struct diff_change *ch = &d->changes[c];
        if (ch->add || ch->ref >= ts->nroles)
            continue;
        const struct mdl_user *u = &ts->users[ch->tgt_user];
        for (uint32_t k = 0; k < u->ngrants; k++)
            if (u->grants[k].role == ch->ref && !(u->grants[k].flags & MDL_GRANT_INHERITED) &&
                !d->tgt_quals[u->grants[k].qual].in_scope) {
                st.kept_elsewhere++;
                break;
            }
    }

    apply(T, p);
    if (refuse) {
        for (int i = 0; i < T->nu; i++)
            assert_memory_equal(T->u[i].g, T0->u[i].g, sizeof(T->u[i].g));
    } else {
        for (int i = 0; i < T->nu; i++)
            for (int l = 0; l < MAXR; l++)
                for (int q = 0; q < T->nq; q++)
                    if (T->u[i].g[l][q] != want[i][l][q]) {
                        char *text = plan_render_string(p);
                        dump_job(&job);
                        dump_world("source", S);
                        dump_world("target before", T0);
                        dump_world("target after", T);
                        for (size_t k = 0; k < p->nassign_ops; k++) {
                            const struct plan_assign_op *op = &p->assign_ops[k];
                            print_error("op %zu kind %d ref %u qual %u user %u items", k,
                                        (int)op->kind, op->ref, op->qual, op->tgt_user);
                            for (uint32_t m = 0; m < op->nitems; m++)
                                print_error(" %u", op->items[m]);
                            print_error("\n");
                        }
                        print_error("%s", text);
                        free(text);
                        fail_msg("seed %llu: user %s role %s division %s: grants %u, expected "
                                 "%u (before %u)",
                                 (unsigned long long)seed, T->u[i].email, T->r[l].name, T->q[q].id,
                                 T->u[i].g[l][q], want[i][l][q], T0->u[i].g[l][q]);
                    }
    }
    plan_free(p);
    mdl_snapshot_free(ts);

    /* re-read and re-plan: nothing left to do (a refused plan still has its changes) */
    if (!refuse) {
        mdl_snapshot_free(ss);
        read_both(&job, S, T, &ss, &ts, smask, tmask);
        d = diff_compute(&job, ss, ts, NULL, err, sizeof(err));
        assert_non_null(d);
        p = plan_build(d, false);
        size_t n;
        plan_phase_assign(p, &n);
        if (!plan_is_empty(p) || n != 0 || d->nchanges != 0) {
            char *text = plan_render_string(p);
            print_error("seed %llu: second plan not empty:\n%s", (unsigned long long)seed, text);
            free(text);
            fail();
        }
        plan_free(p);
        mdl_snapshot_free(ts);
    }
    mdl_snapshot_free(ss);
    free_job(&job);
    free(S->u);
    free(T->u);
    free(T0->u);
    free(S);
    free(T);
    free(T0);
}

static void test_property_grants(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= NWORLDS; seed++)
        check_world(seed * 104729);
    print_message(
        "property_grants: %zu worlds (%zu large; %zu mirror, %zu additive, %zu off), %zu "
        "refused, %zu forced over the limit, %zu matched pairs; %zu adds, %zu removes; "
        "requests: %zu role grants, %zu user adds, %zu role revocations, %zu user removals, %zu "
        "full batches, %zu split; divisions: %zu unmapped (%zu with two counterparts, %zu "
        "sharing one), %zu renamed, %zu '*', %zu source out of scope, %zu target left alone; "
        "%zu grants skipped, %zu kept in divisions left alone, %zu inherited kept, %zu adds "
        "over an inherited grant, %zu removals leaving an inherited one, %zu removals with "
        "the role kept elsewhere, %zu protected admin grants, %zu unread roles\n",
        st.worlds, st.large, st.mirror, st.additive, st.off, st.refused, st.forced_over,
        st.matched_pairs, st.adds, st.removes, st.role_add_ops, st.user_add_ops, st.role_remove_ops,
        st.user_remove_ops, st.full_batches, st.split_batches, st.unmapped_quals,
        st.two_counterparts, st.shared_counterparts, st.renamed_maps, st.all_maps,
        st.out_of_scope_quals, st.target_only_quals, st.skipped, st.target_only_grants_kept,
        st.inherited_kept, st.add_over_inherited, st.remove_keeps_inherited, st.kept_elsewhere,
        st.protected_admin, st.unread_roles);
    assert_int_equal(st.worlds, NWORLDS);
    assert_true(st.refused > 10 && st.forced_over > 5 && st.large > 5);
    assert_true(st.mirror > 50 && st.additive > 50 && st.off > 10);
    assert_true(st.adds > 200 && st.removes > 200);
    assert_true(st.role_add_ops > 20 && st.user_add_ops > 20 && st.role_remove_ops > 20 &&
                st.user_remove_ops > 20);
    assert_true(st.full_batches > 0 && st.split_batches > 0);
    assert_true(st.unmapped_quals > 20 && st.two_counterparts > 5 && st.shared_counterparts > 5);
    assert_true(st.renamed_maps > 10 && st.all_maps > 50 && st.out_of_scope_quals > 20);
    assert_true(st.target_only_quals > 20 && st.skipped > 20 && st.target_only_grants_kept > 20);
    assert_true(st.inherited_kept > 50 && st.add_over_inherited > 10 &&
                st.remove_keeps_inherited > 10 && st.kept_elsewhere > 10);
    assert_true(st.protected_admin > 5 && st.unread_roles > 20);
}

/* Found by the property test (seed 5864824): a grant that moves division. The target user
 * holds R directly in EMEA only, its source twin in home only: the plan removes R@EMEA and adds
 * R@home. A role-wide revocation (users/remove) takes R in every division, so it must not
 * carry that removal: sent after the grant (or alongside it) it would take the new home grant
 * too, and the next cycle would add it again, forever. The removal goes in a request of the
 * user's own. */
static void test_moved_grant_not_revoked_role_wide(void **state)
{
    (void)state;
    struct mdl_snapshot *s = fx_snapshot_new(CFG_API_GENESYS),
                        *t = fx_snapshot_new(CFG_API_GENESYS);
    struct mdl_snapshot *both[2] = {s, t};
    for (int i = 0; i < 2; i++) {
        struct mdl_snapshot *x = both[i];
        x->divided = true;
        mdl_set_home(x, i ? "th" : "sh", "Home");
        mdl_add_qual(x, &(struct mdl_qual){.id = i ? "te" : "se", .name = "EMEA"});
        mdl_add_role(x, &(struct mdl_role){.id = i ? "tr" : "sr", .name = "R"});
        mdl_add_user(x, &(struct mdl_user){.id = i ? "tu" : "su", .email = "a@x.com"});
        mdl_user_add_grant(x, 0, 0, i ? 1 : 0, 0); /* target: R@EMEA, source: R@home */
        char err[64];
        assert_int_equal(mdl_snapshot_finish(x, err, sizeof(err)), 0);
    }
    struct cfg_job job = {.name = "move", .max_deletes = 50};
    static const char *const star[] = {"*", NULL};
    set_list(&job.roles_include, star);
    set_list(&job.users_include, star);
    set_list(&job.divisions_include, star);
    char err[64];
    struct plan *p = plan_build(diff_compute(&job, s, t, NULL, err, sizeof(err)), false);
    assert_int_equal(p->diff->nadds, 1);
    assert_int_equal(p->diff->nremoves, 1);
    size_t n;
    const struct plan_assign_op *a = plan_phase_assign(p, &n);
    bool removed = false;
    for (size_t i = 0; i < n; i++) {
        assert_int_not_equal(a[i].kind, PLAN_ASSIGN_ROLE_REMOVE);
        if (a[i].kind == PLAN_ASSIGN_USER_REMOVE) {
            struct plan_write w;
            plan_write_prepare(p, i, false, &w);
            assert_int_equal(w.ngrants, 1);
            assert_string_equal(w.grants[0].role_id, "tr");
            assert_string_equal(w.grants[0].qual_id, "te");
            plan_write_release(&w);
            removed = true;
        }
    }
    assert_true(removed);
    plan_free(p);
    free_job(&job);
    mdl_snapshot_free(s);
    mdl_snapshot_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_moved_grant_not_revoked_role_wide),
        cmocka_unit_test(test_property_grants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
