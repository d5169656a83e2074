/* test_undo.c — the pure half of --undo (undo.h): a cycle's journal lines paired into items,
 * every inverse rule, newest-first order, each skip reason, the guard's count, deletions left
 * pending decided by the fresh read, an undo of an undo, and the plan text. Journal lines are
 * written by hand (struct journal_entry), the target is a snapshot built by fx_core.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "fx_core.h"
#include "rolesync/undo.h"

#define CY "20261204T061530Z-3fa9c21b"
/* canonical genesys definitions (gjs_def_canon's form) */
#define D1 "{\"permissions\":[\"a:b:view\"],\"permissionPolicies\":[]}"
#define D2 "{\"permissions\":[\"a:b:edit\"],\"permissionPolicies\":[]}"
/* the same as D1 with its keys in another order: equal once canonicalised */
#define D1_REORDERED "{\"permissionPolicies\":[],\"permissions\":[\"a:b:view\"]}"
#define DIVS "home|Home;d1|East;*|*"

static struct journal_entry grant(uint64_t seq, enum journal_kind k, const char *user,
                                  const char *uid, const char *role, const char *rid,
                                  const char *div, const char *did)
{
    return (struct journal_entry){.cycle = CY,
                                  .seq = seq,
                                  .job = "j",
                                  .target = "t",
                                  .kind = k,
                                  .role = role,
                                  .role_id = rid,
                                  .user = user,
                                  .user_id = uid,
                                  .division = div,
                                  .division_id = did,
                                  .result = JOURNAL_OK};
}

static struct journal_entry role(uint64_t seq, enum journal_kind k, const char *name,
                                 const char *rid, const char *before, const char *after,
                                 enum journal_result res)
{
    return (struct journal_entry){.cycle = CY,
                                  .seq = seq,
                                  .job = "j",
                                  .target = "t",
                                  .kind = k,
                                  .role = name,
                                  .role_id = rid,
                                  .before = before,
                                  .after = after,
                                  .result = res};
}

struct world {
    struct undo_cycle c;
    struct mdl_snapshot *t;
    struct undo_plan *p;
};

static void world(struct world *w, const struct journal_entry *e, size_t n, const char *divs,
                  const char *roles, const char *users)
{
    assert_true(undo_cycle_from_entries(e, n, CY, &w->c));
    w->t = fx_snap_div(G, divs, roles, users);
    struct cfg_job job;
    fx_job(&job, &(struct jspec){0}); /* the job's match key names users: email by default */
    w->p = undo_plan_build(&w->c, w->t, prov_genesys.def_canon, job.match_by);
    fx_job_free(&job);
}

static void world_free(struct world *w)
{
    undo_plan_free(w->p);
    mdl_snapshot_free(w->t);
    undo_cycle_free(&w->c);
}

static const char *role_of(const struct world *w, size_t step)
{
    return undo_step_role_name(w->p, &w->p->steps[step]);
}

static const char *reason_of(const struct world *w, const char *role)
{
    for (size_t i = 0; i < w->p->nskips; i++) {
        const struct undo_item *it = &w->c.items[w->p->skips[i].item];
        if (it->role && strcmp(it->role, role) == 0)
            return w->p->skips[i].reason;
    }
    return NULL;
}

/* Every inverse rule at once, and their order: newest change first. */
static void test_inverse_rules_newest_first(void **state)
{
    (void)state;
    const char *r3_before = "{\"name\":\"R3\",\"description\":\"three\",\"definition\":" D2
                            ",\"holders\":[{\"user\":\"a@x.com\",\"user_id\":\"ua\","
                            "\"division\":null,\"division_id\":null},{\"user\":\"b@x.com\","
                            "\"user_id\":\"ub\",\"division\":\"East\",\"division_id\":\"d1\"}]}";
    struct journal_entry e[] = {
        role(1, JOURNAL_ROLE_CREATE, "R1", "r1", NULL,
             "{\"name\":\"R1\",\"description\":\"one\",\"definition\":" D1_REORDERED "}",
             JOURNAL_OK),
        role(2, JOURNAL_ROLE_UPDATE, "R2", "r2",
             "{\"name\":\"R2\",\"description\":\"old\",\"definition\":" D1 "}",
             "{\"name\":\"R2\",\"description\":\"new\",\"definition\":" D2 "}", JOURNAL_OK),
        grant(3, JOURNAL_GRANT_ADD, "a@x.com", "ua", "R1", "r1", "East", "d1"),
        grant(4, JOURNAL_GRANT_REMOVE, "b@x.com", "ub", "R2", "r2", NULL, "home"),
        role(5, JOURNAL_ROLE_DELETE, "R3", "r3", r3_before, NULL, JOURNAL_PENDING),
        role(5, JOURNAL_ROLE_DELETE, "R3", "r3", NULL, NULL, JOURNAL_OK),
    };
    struct world w;
    world(&w, e, 6, DIVS, "r1|R1||one|" D1 ";r2|R2||new|" D2, "ua|a@x.com|a|R1@East;ub|b@x.com|a|");
    assert_int_equal(w.c.nitems, 5);
    assert_int_equal(w.p->nskips, 0);
    assert_int_equal(w.p->nsteps, 5);
    /* seq 5 first: the deleted role re-created with its definition and its two holders */
    assert_int_equal(w.p->steps[0].kind, UNDO_STEP_ROLE_CREATE);
    assert_string_equal(w.p->steps[0].name, "R3");
    assert_string_equal(w.p->steps[0].description, "three");
    assert_string_equal(w.p->steps[0].def_json, D2);
    assert_int_equal(w.p->steps[0].nholders, 2);
    assert_int_equal(w.p->steps[0].holders[0].user, mdl_find_user_by_id(w.t, "ua"));
    assert_int_equal(w.p->steps[0].holders[0].qual, 0);
    assert_int_equal(w.p->steps[0].holders[1].qual, mdl_find_qual_by_id(w.t, "d1"));
    /* seq 4: the removed grant added back, in the home division */
    assert_int_equal(w.p->steps[1].kind, UNDO_STEP_GRANT_ADD);
    assert_string_equal(role_of(&w, 1), "R2");
    assert_int_equal(w.p->steps[1].qual, 0);
    assert_int_equal(w.p->steps[1].user, mdl_find_user_by_id(w.t, "ub"));
    /* seq 3: the added grant removed, in its division only */
    assert_int_equal(w.p->steps[2].kind, UNDO_STEP_GRANT_REMOVE);
    assert_string_equal(role_of(&w, 2), "R1");
    assert_int_equal(w.p->steps[2].qual, mdl_find_qual_by_id(w.t, "d1"));
    /* seq 2: the old definition put back */
    assert_int_equal(w.p->steps[3].kind, UNDO_STEP_ROLE_UPDATE);
    assert_string_equal(w.p->steps[3].description, "old");
    assert_string_equal(w.p->steps[3].def_json, D1);
    /* seq 1: the created role deleted (its definition compared canonically), after its grant
     * went: it takes nothing with it */
    assert_int_equal(w.p->steps[4].kind, UNDO_STEP_ROLE_DELETE);
    assert_string_equal(role_of(&w, 4), "R1");
    assert_int_equal(w.p->steps[4].ntakes, 0);
    assert_int_equal(w.p->role_creates, 1);
    assert_int_equal(w.p->role_updates, 1);
    assert_int_equal(w.p->role_deletes, 1);
    assert_int_equal(w.p->grant_adds, 3); /* two holders + one re-added grant */
    assert_int_equal(w.p->grant_removes, 1);
    assert_int_equal(w.p->deletions, 2); /* one removal, one role deletion */
    world_free(&w);
}

/* Items that no longer look the way the cycle left them are skipped with their reason. */
static void test_skip_reasons(void **state)
{
    (void)state;
    struct journal_entry e[] = {
        /* created role whose definition changed since */
        role(1, JOURNAL_ROLE_CREATE, "C1", "c1", NULL,
             "{\"name\":\"C1\",\"description\":\"x\",\"definition\":" D1 "}", JOURNAL_OK),
        /* created role whose description changed since */
        role(2, JOURNAL_ROLE_CREATE, "C2", "c2", NULL,
             "{\"name\":\"C2\",\"description\":\"x\",\"definition\":" D1 "}", JOURNAL_OK),
        /* created role deleted since */
        role(3, JOURNAL_ROLE_CREATE, "C3", "c3", NULL,
             "{\"name\":\"C3\",\"description\":\"x\",\"definition\":" D1 "}", JOURNAL_OK),
        /* updated role changed again since */
        role(4, JOURNAL_ROLE_UPDATE, "U1", "u1",
             "{\"name\":\"U1\",\"description\":\"x\",\"definition\":" D1 "}",
             "{\"name\":\"U1\",\"description\":\"x\",\"definition\":" D2 "}", JOURNAL_OK),
        /* deleted role that exists again (someone re-created it) */
        role(5, JOURNAL_ROLE_DELETE, "X1", "x1",
             "{\"name\":\"X1\",\"description\":\"x\",\"definition\":" D1 ",\"holders\":[]}", NULL,
             JOURNAL_OK),
        /* added grant no longer held */
        grant(6, JOURNAL_GRANT_ADD, "a@x.com", "ua", "G1", "g1", NULL, NULL),
        /* removed grant held again */
        grant(7, JOURNAL_GRANT_REMOVE, "a@x.com", "ua", "G2", "g2", "East", "d1"),
        /* the user is gone */
        grant(8, JOURNAL_GRANT_ADD, "gone@x.com", "ugone", "G3", "g3", NULL, NULL),
        /* the role is gone */
        grant(9, JOURNAL_GRANT_REMOVE, "a@x.com", "ua", "G4", "g4", NULL, NULL),
        /* the division is gone */
        grant(10, JOURNAL_GRANT_REMOVE, "a@x.com", "ua", "G5", "g5", "West", "d9"),
        /* a failed change: nothing to take back, no skip either */
        role(11, JOURNAL_ROLE_CREATE, "F1", NULL, NULL, "{\"name\":\"F1\"}", JOURNAL_FAILED),
        /* an unreadable `before` (a hostile line): skipped, never guessed */
        role(12, JOURNAL_ROLE_DELETE, "H1", "h1", "{\"name\":", NULL, JOURNAL_OK),
    };
    struct world w;
    world(&w, e, 12, DIVS,
          "c1|C1||x|" D2 ";c2|C2||y|" D1 ";u1|U1||x|" D1 ";x1b|X1||x|" D1 ";g1|G1||;g2|G2||;"
          "g3|G3||;g5|G5||",
          "ua|a@x.com|a|G2@East");
    assert_int_equal(w.c.failed, 1);
    assert_int_equal(w.p->nsteps, 0);
    assert_int_equal(w.p->deletions, 0);
    assert_int_equal(w.p->nskips, 11);
    assert_string_equal(reason_of(&w, "C1"), "changed since");
    assert_string_equal(reason_of(&w, "C2"), "changed since");
    assert_string_equal(reason_of(&w, "C3"), "no longer exists");
    assert_string_equal(reason_of(&w, "U1"), "changed since");
    assert_string_equal(reason_of(&w, "X1"), "exists again");
    assert_string_equal(reason_of(&w, "G1"), "no longer held");
    assert_string_equal(reason_of(&w, "G2"), "held again");
    assert_string_equal(reason_of(&w, "G3"), "user no longer exists");
    assert_string_equal(reason_of(&w, "G4"), "role no longer exists");
    assert_string_equal(reason_of(&w, "G5"), "division no longer exists");
    assert_string_equal(reason_of(&w, "H1"), "the journal line has no readable definition");
    assert_null(reason_of(&w, "F1"));
    /* newest first in the skips too */
    assert_string_equal(w.c.items[w.p->skips[0].item].role, "H1");
    world_free(&w);
}

/* An inherited grant is not the user's own: removing "it" would remove nothing the cycle
 * added, and a removed grant now inherited is still re-added as a direct one. */
static void test_inherited_is_not_held(void **state)
{
    (void)state;
    struct journal_entry e[] = {
        grant(1, JOURNAL_GRANT_ADD, "a@x.com", "ua", "G1", "g1", NULL, NULL),
        grant(2, JOURNAL_GRANT_REMOVE, "a@x.com", "ua", "G2", "g2", NULL, NULL),
    };
    struct world w;
    world(&w, e, 2, DIVS, "g1|G1||;g2|G2||", "ua|a@x.com|a|G1^,G2^");
    assert_int_equal(w.p->nsteps, 1);
    assert_int_equal(w.p->steps[0].kind, UNDO_STEP_GRANT_ADD);
    assert_string_equal(reason_of(&w, "G1"), "no longer held");
    world_free(&w);
}

/* The guard's figure: grant removals + role deletions + the grants a deleted role takes. */
static void test_guard_count(void **state)
{
    (void)state;
    struct journal_entry e[] = {
        role(1, JOURNAL_ROLE_CREATE, "R1", "r1", NULL,
             "{\"name\":\"R1\",\"description\":null,\"definition\":" D1 "}", JOURNAL_OK),
        grant(2, JOURNAL_GRANT_ADD, "a@x.com", "ua", "R1", "r1", NULL, NULL),
        grant(3, JOURNAL_GRANT_ADD, "b@x.com", "ub", "G1", "g1", "East", "d1"),
    };
    struct world w;
    /* c holds R1 (granted since, in two divisions) and b G1 in East */
    world(&w, e, 3, DIVS, "r1|R1|||" D1 ";g1|G1||",
          "ua|a@x.com|a|R1;ub|b@x.com|a|G1@East;uc|c@x.com|a|R1,R1@East");
    assert_int_equal(w.p->nsteps, 3);
    assert_int_equal(w.p->steps[2].kind, UNDO_STEP_ROLE_DELETE);
    assert_int_equal(w.p->steps[2].ntakes, 2); /* c's two grants; a's goes first */
    assert_int_equal(w.p->grant_removes, 2);
    assert_int_equal(w.p->deletions, 2 + 1 + 2);
    world_free(&w);
}

/* A deletion journaled "pending" with no outcome line (the process died with the DELETE in
 * flight): the fresh read says whether it happened. */
static void test_pending_deletion(void **state)
{
    (void)state;
    const char *before = "{\"name\":\"P1\",\"description\":\"p\",\"definition\":" D1
                         ",\"holders\":[{\"user\":\"a@x.com\",\"user_id\":\"ua\"}]}";
    struct journal_entry e[] = {
        role(1, JOURNAL_ROLE_DELETE, "P1", "p1", before, NULL, JOURNAL_PENDING),
    };
    struct world w;
    /* the role is still there: the DELETE did not happen, nothing to take back */
    world(&w, e, 1, NULL, "p1|P1||p|" D1, "ua|a@x.com|a|P1");
    assert_int_equal(w.c.items[0].outcome, UNDO_MAYBE);
    assert_int_equal(w.p->nsteps, 0);
    assert_string_equal(reason_of(&w, "P1"), "not deleted (the cycle stopped before the reply)");
    world_free(&w);
    /* the role is gone: it happened, re-create it and its holder */
    world(&w, e, 1, NULL, "", "ua|a@x.com|a|");
    assert_int_equal(w.p->nsteps, 1);
    assert_int_equal(w.p->steps[0].kind, UNDO_STEP_ROLE_CREATE);
    assert_int_equal(w.p->steps[0].nholders, 1);
    world_free(&w);
    /* pending, then a failed outcome: nothing was deleted, nothing to undo */
    struct journal_entry f[] = {
        role(1, JOURNAL_ROLE_DELETE, "P1", "p1", before, NULL, JOURNAL_PENDING),
        role(1, JOURNAL_ROLE_DELETE, "P1", "p1", NULL, NULL, JOURNAL_FAILED),
    };
    world(&w, f, 2, NULL, "", "ua|a@x.com|a|");
    assert_int_equal(w.c.nitems, 0);
    assert_int_equal(w.c.failed, 1);
    assert_int_equal(w.p->nsteps, 0);
    world_free(&w);
}

/* An undo of an undo: the first undo removed a grant and then deleted the role the cycle had
 * created; taking it back re-creates the role first and re-grants through the new role. */
static void test_undo_of_undo(void **state)
{
    (void)state;
    struct journal_entry e[] = {
        grant(1, JOURNAL_GRANT_REMOVE, "a@x.com", "ua", "R1", "r1", "East", "d1"),
        role(2, JOURNAL_ROLE_DELETE, "R1", "r1",
             "{\"name\":\"R1\",\"description\":\"one\",\"definition\":" D1 ",\"holders\":[]}", NULL,
             JOURNAL_PENDING),
        role(2, JOURNAL_ROLE_DELETE, "R1", "r1", NULL, NULL, JOURNAL_OK),
    };
    for (size_t i = 0; i < 3; i++)
        e[i].undo_of = "20261204T060000Z-00000001";
    struct world w;
    world(&w, e, 3, DIVS, "", "ua|a@x.com|a|");
    assert_string_equal(w.c.undo_of, "20261204T060000Z-00000001");
    assert_int_equal(w.p->nsteps, 2);
    assert_int_equal(w.p->steps[0].kind, UNDO_STEP_ROLE_CREATE);
    assert_int_equal(w.p->steps[1].kind, UNDO_STEP_GRANT_ADD);
    assert_int_equal(w.p->steps[1].role, MDL_NONE);
    assert_int_equal(w.p->steps[1].created_by, 0);
    assert_string_equal(role_of(&w, 1), "R1");
    world_free(&w);
}

/* Lines of other cycles are not this cycle's; an unknown cycle is said so. */
static void test_other_cycles(void **state)
{
    (void)state;
    struct journal_entry e[] = {
        grant(1, JOURNAL_GRANT_ADD, "a@x.com", "ua", "G1", "g1", NULL, NULL),
    };
    e[0].cycle = "20261204T000000Z-00000000";
    struct undo_cycle c;
    assert_false(undo_cycle_from_entries(e, 1, CY, &c));
}

/* The plan text: change lines in plan style, then the skips with reasons, then a summary. */
static void test_render(void **state)
{
    (void)state;
    struct journal_entry e[] = {
        role(1, JOURNAL_ROLE_CREATE, "R1", "r1", NULL,
             "{\"name\":\"R1\",\"description\":null,\"definition\":" D1 "}", JOURNAL_OK),
        grant(2, JOURNAL_GRANT_ADD, "a@x.com", "ua", "R1", "r1", "East", "d1"),
        grant(3, JOURNAL_GRANT_ADD, "b@x.com", "ub", "R1", "r1", NULL, NULL),
    };
    struct world w;
    world(&w, e, 3, DIVS, "r1|R1|||" D1, "ua|a@x.com|a|R1@East;ub|b@x.com|a|");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    undo_plan_render(w.p, f);
    fclose(f);
    assert_string_equal(buf, "- user a@x.com role \"R1\" division \"East\"\n"
                             "- role \"R1\"\n"
                             "! skipped: grant_add role \"R1\" user b@x.com: no longer held\n"
                             "undo " CY " of job j: 0 roles to create, 0 to update, 1 to delete, "
                             "0 assignments to add, 1 to remove, 1 skipped\n");
    free(buf);
    world_free(&w);
}

/* An undivided target (identity): grants have no division; definitions are the description. */
static void test_identity(void **state)
{
    (void)state;
    struct journal_entry e[] = {
        role(1, JOURNAL_ROLE_UPDATE, "R1", "r1",
             "{\"name\":\"R1\",\"description\":\"old\",\"definition\":null}",
             "{\"name\":\"R1\",\"description\":\"new\",\"definition\":null}", JOURNAL_OK),
        grant(2, JOURNAL_GRANT_ADD, "a@x.com", "ua", "R1", "r1", NULL, NULL),
    };
    struct undo_cycle c;
    assert_true(undo_cycle_from_entries(e, 2, CY, &c));
    struct mdl_snapshot *t = fx_snap(I, "r1|R1||new", "ua|a@x.com|a|R1");
    struct undo_plan *p = undo_plan_build(&c, t, prov_identity.def_canon, CFG_MATCH_EMAIL);
    assert_int_equal(p->nsteps, 2);
    assert_int_equal(p->steps[0].kind, UNDO_STEP_GRANT_REMOVE);
    assert_int_equal(p->steps[0].qual, 0);
    assert_null(undo_qual_name(p, p->steps[0].qual));
    assert_int_equal(p->steps[1].kind, UNDO_STEP_ROLE_UPDATE);
    assert_string_equal(p->steps[1].description, "old");
    assert_null(p->steps[1].def_json);
    undo_plan_free(p);
    mdl_snapshot_free(t);
    undo_cycle_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inverse_rules_newest_first),
        cmocka_unit_test(test_skip_reasons),
        cmocka_unit_test(test_inherited_is_not_held),
        cmocka_unit_test(test_guard_count),
        cmocka_unit_test(test_pending_deletion),
        cmocka_unit_test(test_undo_of_undo),
        cmocka_unit_test(test_other_cycles),
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_identity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
