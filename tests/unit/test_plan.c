/* test_plan.c — guard, phases/order, write economy (genesys batches vs per-user, identity
 * per-user full sets), created-role references, counts and the plan text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "fx_core.h"
#include "rolesync/diff.h"
#include "rolesync/plan.h"

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

/* product.md 4a.7: a pruned role counts as one deletion plus every in-scope grant it takes
 * with it; grants the assignment phase removes first are not counted twice. */
static void test_guard_counts_pruned_holders(void **state)
{
    (void)state;
    for (int additive = 0; additive < 2; additive++) {
        struct world w;
        world(&w, G, G_BUILTINS, "s1|a@x.com|a|", G, G_BUILTINS ";to|Old||",
              "t1|a@x.com|a|Old;t2|b@x.com|a|Old",
              &(struct jspec){.prune = true,
                              .maxdel = 2,
                              .asg = additive ? CFG_ASSIGN_ADDITIVE : CFG_ASSIGN_MIRROR},
              false);
        size_t n;
        const struct diff_role_op *del = plan_phase_deletes(w.plan, &n);
        assert_int_equal(w.plan->diff->ndeletes, 1);
        /* mirror: t1's grant is removed first (1 removal), t2's goes with the role (1 holder);
         * additive: both go with the role */
        assert_int_equal(w.plan->diff->nremoves, additive ? 0 : 1);
        assert_int_equal(
            w.plan->diff->role_ops[w.plan->diff->ncreates + w.plan->diff->nupdates].holders,
            additive ? 2 : 1);
        assert_int_equal(w.plan->deletions, 3);
        assert_true(w.plan->refused); /* 3 > max_deletes 2 */
        assert_int_equal(n, 0);
        (void)del;
        world_free(&w);
    }
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
    /* 3 changes on one user: batches would cost 3 (two grants, one revocation); its adds in a
     * request of its own save one: 2, as many as all-per-user (a tie keeps the mix) */
    assert_int_equal(w.plan->strategy, PLAN_STRATEGY_MIXED);
    assert_int_equal(w.plan->cost_batch, 3);
    assert_int_equal(w.plan->cost_per_user, 2);
    assert_int_equal(w.plan->cost_mixed, 2);
    assert_int_equal(n, 2);
    assert_int_equal(a[0].kind, PLAN_ASSIGN_USER_ADD);
    assert_int_equal(a[1].kind, PLAN_ASSIGN_ROLE_REMOVE);
    assert_int_equal(a[0].tgt_user, 0);
    /* the adds: Changed (idx 2) and the created New (ref = nroles) */
    uint32_t created = (uint32_t)w.tgt->nroles;
    assert_int_equal(a[0].nitems, 2);
    assert_int_equal(w.plan->diff->changes[a[0].items[0]].ref, 2);
    assert_int_equal(w.plan->diff->changes[a[0].items[1]].ref, created);
    assert_int_equal(a[1].nitems, 1);
    assert_int_equal(a[1].items[0], 0); /* the user */
    assert_null(plan_ref_id(w.plan, created));
    /* before the create: only Changed can be granted, and the write names the new role not */
    struct plan_write pw;
    plan_write_prepare(w.plan, 0, false, &pw);
    assert_false(pw.hold);
    assert_true(pw.partial);
    assert_false(pw.new_role);
    assert_int_equal(pw.ngrants, 1);
    assert_string_equal(pw.grants[0].role_id, "tc");
    plan_write_release(&pw);
    plan_set_created_id(w.plan, 0, "id-new");
    assert_string_equal(plan_ref_id(w.plan, created), "id-new");
    assert_string_equal(plan_ref_id(w.plan, 2), "tc");
    plan_write_prepare(w.plan, 0, false, &pw);
    assert_false(pw.partial);
    assert_true(pw.new_role); /* a 404 for it is worth retrying (product.md 4a.8) */
    assert_int_equal(pw.ngrants, 2);
    assert_string_equal(pw.grants[1].role_id, "id-new");
    plan_write_release(&pw);
    /* a failed role change holds the removal back */
    plan_write_prepare(w.plan, 1, true, &pw);
    assert_true(pw.hold);
    plan_write_release(&pw);
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
    assert_int_equal(c.requests, 5);
    world_free(&w);
}

static void test_genesys_batches(void **state)
{
    (void)state;
    /* 250 users gain A, 120 of them lose B: batches 3 + 2 = 5 requests vs 250 + 120 per-user */
    char *su = users_range(0, 250, "A");
    char *tu1 = users_range(0, 120, "B,Employee"), *tu2 = users_range(120, 250, "Employee");
    char *tu = malloc(strlen(tu1) + strlen(tu2) + 2);
    sprintf(tu, "%s;%s", tu1, tu2);
    struct world w;
    world(&w, G, G_BUILTINS ";a|A||", su, G, G_BUILTINS ";tb|B||;ta|A||", tu,
          &(struct jspec){.maxdel = 1000}, false);
    assert_int_equal(w.plan->strategy, PLAN_STRATEGY_BATCH);
    assert_int_equal(w.plan->cost_batch, 5);
    assert_int_equal(w.plan->cost_per_user, 370);
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
    /* each user's adds, nothing else of the user (Kept and Employee are not written at all) */
    assert_int_equal(a[0].kind, PLAN_ASSIGN_USER_ADD);
    assert_int_equal(a[0].tgt_user, 0);
    assert_int_equal(a[0].nitems, 3);
    assert_int_equal(a[1].tgt_user, 1);
    assert_int_equal(a[1].nitems, 2);
    world_free(&w);
}

/* A revocation takes the role in every qualifier, so a user whose direct grants of the role do
 * not all go must have its removals sent on its own (qualifiers are tested in test_diff). */
static void test_revocation_only_whole_role(void **state)
{
    (void)state;
    /* v1 and v2 lose B (held at home); v1 also holds it in EMEA, which the source lacks */
    struct mdl_snapshot *src = fx_snap(G, G_BUILTINS ";b|B||", "u1|1@x.com|a|;u2|2@x.com|a|");
    struct mdl_snapshot *tgt = fx_snapshot_new(G);
    tgt->divided = true;
    mdl_set_home(tgt, "dh", "Home");
    uint32_t emea = mdl_add_qual(tgt, &(struct mdl_qual){.id = "de", .name = "EMEA"});
    mdl_add_role(tgt, &(struct mdl_role){.id = "tb", .name = "B"});
    uint32_t v1 = mdl_add_user(tgt, &(struct mdl_user){.id = "v1", .email = "1@x.com"});
    uint32_t v2 = mdl_add_user(tgt, &(struct mdl_user){.id = "v2", .email = "2@x.com"});
    mdl_user_add_grant(tgt, v1, 0, 0, 0);
    mdl_user_add_grant(tgt, v1, 0, emea, 0); /* EMEA has no source counterpart: out of scope */
    mdl_user_add_grant(tgt, v2, 0, 0, 0);
    char err[128];
    assert_int_equal(mdl_snapshot_finish(tgt, err, sizeof err), 0);
    src->divided = true;
    struct cfg_job job;
    fx_job(&job, &(struct jspec){.maxdel = 10});
    struct diff *d = diff_compute(&job, src, tgt, NULL, err, sizeof err);
    struct plan *p = plan_build(d, false);
    size_t n;
    const struct plan_assign_op *a = plan_phase_assign(p, &n);
    /* v2 (all its B grants go) in a revocation; v1 on its own, keeping EMEA */
    assert_int_equal(n, 2);
    assert_int_equal(a[0].kind, PLAN_ASSIGN_ROLE_REMOVE);
    assert_int_equal(a[0].nitems, 1);
    assert_int_equal(a[0].items[0], v2);
    assert_int_equal(a[1].kind, PLAN_ASSIGN_USER_REMOVE);
    assert_int_equal(a[1].tgt_user, v1);
    assert_int_equal(a[1].nitems, 1);
    struct plan_write pw;
    plan_write_prepare(p, 1, false, &pw);
    assert_int_equal(pw.ngrants, 1);
    assert_string_equal(pw.grants[0].role_id, "tb");
    assert_string_equal(pw.grants[0].qual_id, "dh");
    plan_write_release(&pw);
    plan_free(p);
    fx_job_free(&job);
    mdl_snapshot_free(src);
    mdl_snapshot_free(tgt);
}

/* One user's private changes riding along with a role-wide change: the mix writes that user's
 * adds (or removals) on their own and batches the rest (a black-box test once found 5 requests
 * where 2 suffice). */
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
        /* 60: A 1 + B 1 + C, D, E 3; 101: A 2 + B 1 */
        assert_int_equal(w.plan->cost_batch, total == 60 ? 5 : 3);
        assert_int_equal(w.plan->cost_per_user, total == 60 ? 61 : 101);
        /* 60: u0's three revocations become one request of its own (its adds stay in A's
         * batch and B's); 101: u0's adds leave A's second batch empty and B's: one request */
        assert_int_equal(w.plan->cost_mixed, total == 60 ? 3 : 2);
        size_t n;
        const struct plan_assign_op *a = plan_phase_assign(w.plan, &n);
        assert_int_equal(n, w.plan->cost_mixed);
        assert_int_equal(a[0].kind, PLAN_ASSIGN_ROLE_ADD);
        assert_int_equal(a[0].ref, 2);
        if (total == 60) {
            assert_int_equal(a[0].nitems, 60); /* u0 included */
            assert_int_equal(a[1].kind, PLAN_ASSIGN_ROLE_ADD);
            assert_int_equal(a[1].ref, 3);
            assert_int_equal(a[2].kind, PLAN_ASSIGN_USER_REMOVE);
            assert_int_equal(a[2].tgt_user, 0);
            assert_int_equal(a[2].nitems, 3);
        } else {
            assert_int_equal(a[0].nitems, 100); /* users 1..100 */
            assert_int_equal(a[0].items[0], 1);
            assert_int_equal(a[1].kind, PLAN_ASSIGN_USER_ADD);
            assert_int_equal(a[1].tgt_user, 0);
            assert_int_equal(a[1].nitems, 2);
        }
        struct plan_counts c;
        plan_counts(w.plan, &c);
        assert_int_equal(c.requests, n);
        assert_int_equal(c.assignments_added, (size_t)total + 1);
        /* u0's own request failed: every other user is noted as written, u0 is not */
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
        cmocka_unit_test(test_guard_counts_pruned_holders),
        cmocka_unit_test(test_phases_and_created_refs),
        cmocka_unit_test(test_genesys_batches),
        cmocka_unit_test(test_genesys_tie_and_per_user),
        cmocka_unit_test(test_genesys_mix),
        cmocka_unit_test(test_revocation_only_whole_role),
        cmocka_unit_test(test_identity_per_user),
        cmocka_unit_test(test_empty_plan_and_quoting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
