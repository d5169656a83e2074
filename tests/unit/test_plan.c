/* test_plan.c — guard, phases/order, write economy (genesys batches vs per-user, identity
 * per-user full sets), created-role references, counts and the plan text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

/* ---- fixture: snapshots and jobs from compact strings (shared text with test_plan.c) --------
 * roles: "id|name|key|description|def_canon;..."   key "" = custom, "!" = foreign custom
 * users: "id|email|state|Role,Role|username|external_key;..."  state a|i|d, roles by name */
#include <stdlib.h>
#include <string.h>

#include "fx_platform.h"
#include "rolesync/diff.h"
#include "rolesync/plan.h"

static char *fx_field(char **p, char sep)
{
    char *s = *p;
    if (!s)
        return NULL;
    char *e = strchr(s, sep);
    if (e) {
        *e = 0;
        *p = e + 1;
    } else {
        *p = NULL;
    }
    return s;
}

static const char *fx_nz(const char *s)
{
    return s && *s ? s : NULL;
}

static struct mdl_snapshot *fx_snap(enum cfg_api api, const char *roles, const char *users)
{
    struct mdl_snapshot *s = fx_snapshot_new(api);
    char *rbuf = strdup(roles ? roles : ""), *rp = rbuf;
    while (rp && *rp) {
        char *item = fx_field(&rp, ';'), *ip = item;
        const char *id = fx_field(&ip, '|'), *name = fx_field(&ip, '|');
        const char *key = fx_field(&ip, '|'), *desc = fx_field(&ip, '|');
        const char *def = fx_field(&ip, '|');
        struct mdl_role r = {
            .id = id, .name = name, .description = fx_nz(desc), .def_canon = fx_nz(def)};
        if (key && strcmp(key, "!") == 0)
            r.foreign = true;
        else
            r.builtin_key = fx_nz(key);
        fx_mark_role(api, &r);
        mdl_add_role(s, &r);
    }
    free(rbuf);
    char *ubuf = strdup(users ? users : ""), *up = ubuf;
    while (up && *up) {
        char *item = fx_field(&up, ';'), *ip = item;
        const char *id = fx_field(&ip, '|'), *email = fx_field(&ip, '|');
        const char *st = fx_field(&ip, '|');
        char *rl = fx_field(&ip, '|');
        const char *un = fx_field(&ip, '|'), *ext = fx_field(&ip, '|');
        struct mdl_user u = {
            .id = id, .email = fx_nz(email), .username = fx_nz(un), .external_key = fx_nz(ext)};
        u.state = st && *st == 'd'   ? MDL_USER_DELETED
                  : st && *st == 'i' ? MDL_USER_INACTIVE
                                     : MDL_USER_ACTIVE;
        uint32_t ui = mdl_add_user(s, &u);
        while (rl && *rl) {
            const char *rn = fx_field(&rl, ',');
            size_t k;
            for (k = 0; k < s->nroles; k++)
                if (strcmp(s->roles[k].name, rn) == 0)
                    break;
            assert_true(k < s->nroles);
            mdl_user_add_role(s, ui, (uint32_t)k);
        }
    }
    free(ubuf);
    char err[128];
    assert_int_equal(mdl_snapshot_finish(s, err, sizeof(err)), 0);
    return s;
}

struct jspec {
    const char *inc, *exc, *rename, *uinc, *uexc; /* comma-separated; NULL = default */
    bool defs, prune;
    enum cfg_assignments asg;
    enum cfg_match_by mb;
    int maxdel; /* 0 = default 50, -1 = zero */
};

static void fx_list(struct cfg_strlist *l, const char *spec, const char *dflt)
{
    const char *s = spec ? spec : dflt;
    l->v = NULL;
    l->n = 0;
    if (!s || !*s)
        return;
    char *buf = strdup(s), *p = buf;
    while (p) {
        char *f = fx_field(&p, ',');
        l->v = realloc(l->v, (l->n + 1) * sizeof(char *));
        l->v[l->n++] = strdup(f);
    }
    free(buf);
}

static void fx_job(struct cfg_job *j, const struct jspec *js)
{
    memset(j, 0, sizeof(*j));
    j->name = strdup("j");
    fx_list(&j->roles_include, js->inc, "*");
    fx_list(&j->roles_exclude, js->exc, "");
    fx_list(&j->users_include, js->uinc, "*");
    fx_list(&j->users_exclude, js->uexc, "");
    struct cfg_strlist rn;
    fx_list(&rn, js->rename, "");
    j->rename = calloc(rn.n + 1, sizeof(*j->rename));
    for (size_t i = 0; i < rn.n; i++) {
        char *eq = strchr(rn.v[i], '=');
        assert_non_null(eq);
        *eq = 0;
        j->rename[i].from = strdup(rn.v[i]);
        j->rename[i].to = strdup(eq + 1);
        free(rn.v[i]);
    }
    j->nrename = rn.n;
    free(rn.v);
    j->definitions = js->defs;
    j->prune = js->prune;
    j->assignments = js->asg;
    j->match_by = js->mb;
    j->max_deletes = js->maxdel == 0 ? 50 : js->maxdel < 0 ? 0 : (unsigned)js->maxdel;
}

static void fx_list_free(struct cfg_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

static void fx_job_free(struct cfg_job *j)
{
    free(j->name);
    fx_list_free(&j->roles_include);
    fx_list_free(&j->roles_exclude);
    fx_list_free(&j->users_include);
    fx_list_free(&j->users_exclude);
    for (size_t i = 0; i < j->nrename; i++) {
        free(j->rename[i].from);
        free(j->rename[i].to);
    }
    free(j->rename);
}

/* Genesys built-ins every org has. */
#define G_BUILTINS "ge|Employee|employee||pe;ga|Master Admin|admin||pa"
#define I_BUILTINS                                                                                 \
    "im|Tenant Member|7ad2b9ef-5386-4ead-ac9f-ad99c5c5b977||;"                                     \
    "ia|Tenant Administrator|2dc742ab-39ea-4fc0-a39e-2bcb71c26a5f||;"                              \
    "iv|Tenant Viewer|e6cbf91e-0be8-4858-92b5-f88ecafd5574||"

#define G CFG_API_GENESYS
#define I CFG_API_IDENTITY

struct world {
    struct mdl_snapshot *src, *tgt;
    struct cfg_job job;
    struct plan *plan;
};

static void world(struct world *w, enum cfg_api sapi, const char *sroles, const char *susers,
                  enum cfg_api tapi, const char *troles, const char *tusers, const struct jspec *js,
                  bool force)
{
    w->src = fx_snap(sapi, sroles, susers);
    w->tgt = fx_snap(tapi, troles, tusers);
    fx_job(&w->job, js);
    char err[64];
    struct diff *d = diff_compute(&w->job, w->src, w->tgt, NULL, err, sizeof(err));
    assert_non_null(d);
    w->plan = plan_build(d, force);
}

static void world_free(struct world *w)
{
    plan_free(w->plan);
    fx_job_free(&w->job);
    mdl_snapshot_free(w->src);
    mdl_snapshot_free(w->tgt);
}

/* "uN|uN@x.com|a|<roles>;" for N in [from, to) */
static char *users_range(int from, int to, const char *roles)
{
    size_t cap = (size_t)(to - from) * (strlen(roles) + 40) + 1;
    char *s = calloc(1, cap), *p = s;
    for (int i = from; i < to; i++)
        p += sprintf(p, "%su%d|u%d@x.com|a|%s", i > from ? ";" : "", i, i, roles);
    return s;
}

static void test_guard(void **state)
{
    (void)state;
    char *su = users_range(0, 30, "");
    char *tu = users_range(0, 30, "B");
    struct world w;
    /* 30 removals + 1 role deletion = 31 > 20: refused */
    world(&w, G, G_BUILTINS, su, G, G_BUILTINS ";tb|B||", tu,
          &(struct jspec){.prune = true, .maxdel = 20}, false);
    struct plan_counts c;
    plan_counts(w.plan, &c);
    assert_true(w.plan->refused);
    assert_int_equal(c.deletions, 31);
    assert_int_equal(c.assignments_removed, 30);
    assert_int_equal(c.roles_deleted, 1);
    assert_int_equal(c.requests, 0);
    size_t n;
    plan_phase_roles(w.plan, &n);
    assert_int_equal(n, 0);
    plan_phase_assign(w.plan, &n);
    assert_int_equal(n, 0);
    plan_phase_deletes(w.plan, &n);
    assert_int_equal(n, 0);
    char *text = plan_render_string(w.plan);
    assert_non_null(strstr(text,
                           "! refused: 31 deletions exceed max_deletes 20; nothing will be "
                           "written (run once with --force-deletes, or raise max_deletes)\n"));
    assert_non_null(strstr(text, "job j: 0 roles to create, 0 to update, 1 to delete, 0 "
                                 "assignments to add, 30 to remove (refused)\n"));
    free(text);
    /* refused plans never feed the memory */
    struct diff_memory *mem = diff_memory_new();
    plan_note_applied(w.plan, mem, NULL, NULL);
    assert_int_equal(diff_memory_count(mem), 0);
    diff_memory_free(mem);
    world_free(&w);

    /* forced: applied whole */
    world(&w, G, G_BUILTINS, su, G, G_BUILTINS ";tb|B||", tu,
          &(struct jspec){.prune = true, .maxdel = 20}, true);
    assert_false(w.plan->refused);
    plan_phase_assign(w.plan, &n);
    assert_int_equal(n, 1); /* one users/remove batch of 30 */
    plan_phase_deletes(w.plan, &n);
    assert_int_equal(n, 1);
    world_free(&w);

    /* exactly at the limit: allowed; max_deletes 0 refuses any deletion */
    world(&w, G, G_BUILTINS, su, G, G_BUILTINS ";tb|B||", tu,
          &(struct jspec){.prune = true, .maxdel = 31}, false);
    assert_false(w.plan->refused);
    world_free(&w);
    world(&w, G, G_BUILTINS ";b|B||", "u0|u0@x.com|a|B", G, G_BUILTINS ";tb|B||", "u0|u0@x.com|a|",
          &(struct jspec){.maxdel = -1}, false);
    assert_false(w.plan->refused); /* adds only */
    world_free(&w);
    free(su);
    free(tu);
}

static void test_phases_and_created_refs(void **state)
{
    (void)state;
    struct world w;
    world(&w, G, G_BUILTINS ";n|New||d|p;c|Changed||x|", "s1|a@x.com|a|New,Changed", G,
          G_BUILTINS ";tc|Changed||y|;to|Old||", "t1|a@x.com|a|Old",
          &(struct jspec){.defs = true, .prune = true}, false);
    size_t n;
    const struct diff_role_op *ops = plan_phase_roles(w.plan, &n);
    assert_int_equal(n, 2);
    assert_int_equal(ops[0].action, DIFF_ROLE_OP_CREATE);
    assert_string_equal(ops[0].name, "New");
    assert_int_equal(ops[1].action, DIFF_ROLE_OP_UPDATE);
    assert_int_equal(ops[1].fields, DIFF_F_DESCRIPTION);
    const struct plan_assign_op *a = plan_phase_assign(w.plan, &n);
    /* 3 changes on one user: batches would cost 3, one PUT costs 1 */
    assert_int_equal(w.plan->strategy, PLAN_STRATEGY_PER_USER);
    assert_int_equal(w.plan->cost_batch, 3);
    assert_int_equal(w.plan->cost_per_user, 1);
    assert_int_equal(n, 1);
    assert_int_equal(a[0].kind, PLAN_ASSIGN_USER_SET);
    /* full set: Employee is not held in the fixture; Changed (idx 2) + created New (ref 4) */
    uint32_t created = (uint32_t)w.tgt->nroles;
    assert_int_equal(a[0].nitems, 2);
    assert_int_equal(a[0].items[0], 2);
    assert_int_equal(a[0].items[1], created);
    assert_null(plan_ref_id(w.plan, created));
    plan_set_created_id(w.plan, 0, "id-new");
    assert_string_equal(plan_ref_id(w.plan, created), "id-new");
    assert_string_equal(plan_ref_id(w.plan, 2), "tc");
    ops = plan_phase_deletes(w.plan, &n);
    assert_int_equal(n, 1);
    assert_int_equal(ops[0].action, DIFF_ROLE_OP_DELETE);
    assert_string_equal(ops[0].name, "Old");
    char *text = plan_render_string(w.plan);
    assert_string_equal(text, "+ role \"New\"\n"
                              "~ role \"Changed\" (description)\n"
                              "- user a@x.com role \"Old\"\n"
                              "+ user a@x.com role \"Changed\"\n"
                              "+ user a@x.com role \"New\"\n"
                              "- role \"Old\"\n"
                              "job j: 1 role to create, 1 to update, 1 to delete, 2 assignments "
                              "to add, 1 to remove\n");
    free(text);
    struct plan_counts c;
    plan_counts(w.plan, &c);
    assert_int_equal(c.roles_created, 1);
    assert_int_equal(c.roles_updated, 1);
    assert_int_equal(c.roles_deleted, 1);
    assert_int_equal(c.assignments_added, 2);
    assert_int_equal(c.assignments_removed, 1);
    assert_int_equal(c.pending, 6);
    assert_int_equal(c.requests, 4);
    world_free(&w);
}

static void test_genesys_batches(void **state)
{
    (void)state;
    /* 250 users gain A, 120 of them lose B: batches 3 + 2 = 5 requests vs 250 per-user */
    char *su = users_range(0, 250, "A");
    char *tu1 = users_range(0, 120, "B,Employee"), *tu2 = users_range(120, 250, "Employee");
    char *tu = malloc(strlen(tu1) + strlen(tu2) + 2);
    sprintf(tu, "%s;%s", tu1, tu2);
    struct world w;
    world(&w, G, G_BUILTINS ";a|A||", su, G, G_BUILTINS ";tb|B||;ta|A||", tu,
          &(struct jspec){.maxdel = 1000}, false);
    assert_int_equal(w.plan->strategy, PLAN_STRATEGY_BATCH);
    assert_int_equal(w.plan->cost_batch, 5);
    assert_int_equal(w.plan->cost_per_user, 250);
    size_t n;
    const struct plan_assign_op *a = plan_phase_assign(w.plan, &n);
    assert_int_equal(n, 5);
    /* grants first (role A = index 3), then revocations (role B = index 2) */
    uint32_t sizes[] = {100, 100, 50, 100, 20};
    size_t seen = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(a[i].kind, i < 3 ? PLAN_ASSIGN_ROLE_ADD : PLAN_ASSIGN_ROLE_REMOVE);
        assert_int_equal(a[i].ref, i < 3 ? 3 : 2);
        assert_int_equal(a[i].nitems, sizes[i]);
        for (uint32_t k = 1; k < a[i].nitems; k++)
            assert_true(a[i].items[k - 1] < a[i].items[k]);
        seen += a[i].nitems;
    }
    assert_int_equal(seen, 370);
    assert_int_equal(a[0].items[0], 0);
    assert_int_equal(a[2].items[49], 249);

    /* batch 2 failed: its 50 users are not noted, everyone else is */
    struct diff_memory *mem = diff_memory_new();
    bool ok[5] = {true, true, false, true, true};
    plan_note_applied(w.plan, mem, NULL, ok);
    assert_int_equal(diff_memory_count(mem), 200);
    diff_memory_free(mem);
    world_free(&w);
    free(su);
    free(tu);
    free(tu1);
    free(tu2);
}

static void test_genesys_tie_and_per_user(void **state)
{
    (void)state;
    struct world w;
    /* 2 users each gain a different role: batches 2 = per-user 2 -> batches (tie) */
    world(&w, G, G_BUILTINS ";a|A||;b|B||", "u1|1@x.com|a|A;u2|2@x.com|a|B", G,
          G_BUILTINS ";ta|A||;tb|B||", "v1|1@x.com|a|;v2|2@x.com|a|", &(struct jspec){0}, false);
    assert_int_equal(w.plan->strategy, PLAN_STRATEGY_BATCH);
    world_free(&w);
    /* 2 users each gain A and B: batches 2 = per-user 2 -> batch; add C to one: 3 vs 2 */
    world(&w, G, G_BUILTINS ";a|A||;b|B||;c|C||", "u1|1@x.com|a|A,B,C;u2|2@x.com|a|A,B", G,
          G_BUILTINS ";ta|A||;tb|B||;tc|C||;tk|Kept||", "v1|1@x.com|a|Employee,Kept;v2|2@x.com|a|",
          &(struct jspec){.exc = "Kept"}, false);
    assert_int_equal(w.plan->strategy, PLAN_STRATEGY_PER_USER);
    size_t n;
    const struct plan_assign_op *a = plan_phase_assign(w.plan, &n);
    assert_int_equal(n, 2);
    /* user 1's full set keeps Employee (0) and the out-of-scope Kept (5) */
    assert_int_equal(a[0].tgt_user, 0);
    uint32_t want1[] = {0, 2, 3, 4, 5};
    assert_int_equal(a[0].nitems, 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(a[0].items[i], want1[i]);
    assert_int_equal(a[1].tgt_user, 1);
    assert_int_equal(a[1].nitems, 2);
    world_free(&w);
}

/* One user's private changes riding along with a role-wide change: pure batches cost one request
 * per group, pure per-user one per user; the mix writes that user with one PUT and batches the
 * rest (found by a black-box test: 5 requests where 2 suffice). */
static void test_genesys_mix(void **state)
{
    (void)state;
    const char *sroles = G_BUILTINS ";a|A||;b|B||;c|C||;d|D||;e|E||";
    const char *troles = G_BUILTINS ";ta|A||;tb|B||;tc|C||;td|D||;te|E||";
    for (int total = 60; total <= 101; total += 41) {
        /* total users gain A; u0 also gains B, and (60) loses C, D, E */
        char *rest_s = users_range(1, total, "A"), *rest_t = users_range(1, total, "Employee");
        char *su = malloc(strlen(rest_s) + 64), *tu = malloc(strlen(rest_t) + 64);
        sprintf(su, "u0|u0@x.com|a|A,B;%s", rest_s);
        sprintf(tu, "u0|u0@x.com|a|Employee%s;%s", total == 60 ? ",C,D,E" : "", rest_t);
        struct world w;
        world(&w, G, sroles, su, G, troles, tu, &(struct jspec){.maxdel = 1000}, false);
        assert_int_equal(w.plan->strategy, PLAN_STRATEGY_MIXED);
        assert_int_equal(w.plan->cost_batch, total == 60 ? 5 : 3);
        assert_int_equal(w.plan->cost_per_user, total);
        assert_int_equal(w.plan->cost_mixed, 2);
        size_t n;
        const struct plan_assign_op *a = plan_phase_assign(w.plan, &n);
        assert_int_equal(n, w.plan->cost_mixed);
        /* grant batches first (A = 2), users 1.. ascending; u0 is not in them */
        size_t batched = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            assert_int_equal(a[i].kind, PLAN_ASSIGN_ROLE_ADD);
            assert_int_equal(a[i].ref, 2);
            for (uint32_t k = 0; k < a[i].nitems; k++)
                assert_int_equal(a[i].items[k], 1 + batched + k);
            batched += a[i].nitems;
        }
        assert_int_equal(batched, (size_t)total - 1);
        /* then u0's full set: Employee kept, A and B granted, C D E gone */
        assert_int_equal(a[n - 1].kind, PLAN_ASSIGN_USER_SET);
        assert_int_equal(a[n - 1].tgt_user, 0);
        assert_int_equal(a[n - 1].nitems, 3);
        assert_int_equal(a[n - 1].items[0], 0);
        assert_int_equal(a[n - 1].items[1], 2);
        assert_int_equal(a[n - 1].items[2], 3);
        struct plan_counts c;
        plan_counts(w.plan, &c);
        assert_int_equal(c.requests, n);
        assert_int_equal(c.assignments_added, (size_t)total + 1);
        /* u0's PUT failed: every other user is noted as written, u0 is not */
        struct diff_memory *mem = diff_memory_new();
        bool ok[3] = {true, true, true};
        ok[n - 1] = false;
        plan_note_applied(w.plan, mem, NULL, ok);
        assert_int_equal(diff_memory_count(mem), (size_t)total - 1);
        diff_memory_free(mem);
        world_free(&w);
        free(su);
        free(tu);
        free(rest_s);
        free(rest_t);
    }
}

static void test_identity_per_user(void **state)
{
    (void)state;
    struct world w;
    /* even 300 users gaining one role: identity has no batch endpoint */
    char *su = users_range(0, 300, "A");
    char *tu = users_range(0, 300, "Tenant Member,Community,Tenant Administrator,Old");
    world(&w, I, I_BUILTINS ";a|A||", su, I, I_BUILTINS ";ta|A||;tc|Community|!||;to|Old||", tu,
          &(struct jspec){.maxdel = 1000}, false);
    assert_int_equal(w.plan->strategy, PLAN_STRATEGY_PER_USER);
    size_t n;
    const struct plan_assign_op *a = plan_phase_assign(w.plan, &n);
    assert_int_equal(n, 300);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(a[i].kind, PLAN_ASSIGN_USER_SET);
        /* member (0), admin (1, not named), A (3), community (4); Old (5) removed */
        uint32_t want[] = {0, 1, 3, 4};
        assert_int_equal(a[i].nitems, 4);
        for (size_t k = 0; k < 4; k++)
            assert_int_equal(a[i].items[k], want[k]);
    }
    struct plan_counts c;
    plan_counts(w.plan, &c);
    assert_int_equal(c.requests, 300);
    assert_int_equal(c.assignments_added, 300);
    assert_int_equal(c.assignments_removed, 300);
    world_free(&w);
    free(su);
    free(tu);
}

static void test_empty_plan_and_quoting(void **state)
{
    (void)state;
    struct world w;
    world(&w, G, G_BUILTINS ";q|Say \"hi\"\\now||", "", G, G_BUILTINS, "",
          &(struct jspec){.defs = true}, false);
    char *text = plan_render_string(w.plan);
    assert_string_equal(text, "+ role \"Say \\\"hi\\\"\\\\now\"\n"
                              "job j: 1 role to create, 0 to update, 0 to delete, 0 assignments "
                              "to add, 0 to remove\n");
    free(text);
    assert_false(plan_is_empty(w.plan));
    assert_int_equal(w.plan->strategy, PLAN_STRATEGY_NONE);
    world_free(&w);
    world(&w, G, G_BUILTINS, "", G, G_BUILTINS, "", &(struct jspec){0}, false);
    assert_true(plan_is_empty(w.plan));
    FILE *f = tmpfile();
    plan_render(w.plan, f);
    assert_true(ftell(f) > 0);
    fclose(f);
    world_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guard),
        cmocka_unit_test(test_phases_and_created_refs),
        cmocka_unit_test(test_genesys_batches),
        cmocka_unit_test(test_genesys_tie_and_per_user),
        cmocka_unit_test(test_genesys_mix),
        cmocka_unit_test(test_identity_per_user),
        cmocka_unit_test(test_empty_plan_and_quoting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
