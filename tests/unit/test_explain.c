/* test_explain.c — the pure half of rolesyncd --explain: diff.h's query functions (scope
 * globs, grant reasons, matching) and the explanation text of explain_user / explain_role, on
 * snapshots built from compact strings (fx_core.h). The agreement test checks that the grant
 * reasons the explanation prints are the decisions the plan is made of. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "fx_core.h"
#include "rolesync/diff.h"
#include "rolesync/explain.h"
#include "rolesync/plan.h"

struct fx {
    struct cfg_job job;
    struct mdl_snapshot *src, *tgt;
    struct plan *plan;
};

static void fx_build(struct fx *f, const struct jspec *js, const char *sdivs, const char *sroles,
                     const char *susers, const char *tdivs, const char *troles, const char *tusers)
{
    char err[256];
    fx_job(&f->job, js);
    f->src = sdivs ? fx_snap_div(G, sdivs, sroles, susers) : fx_snap(G, sroles, susers);
    f->tgt = tdivs ? fx_snap_div(G, tdivs, troles, tusers) : fx_snap(G, troles, tusers);
    struct diff *d = diff_compute(&f->job, f->src, f->tgt, NULL, err, sizeof err);
    assert_non_null(d);
    f->plan = plan_build(d, false);
}

static void fx_done(struct fx *f)
{
    plan_free(f->plan);
    mdl_snapshot_free(f->src);
    mdl_snapshot_free(f->tgt);
    fx_job_free(&f->job);
}

/* The explanation as a string (caller frees) and its exit code. */
static char *user_text(const struct fx *f, const char *key, const struct explain_side *ss,
                       const struct explain_side *ts, int *rc)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    *rc = explain_user(f->plan, key, ss, ts, m);
    fclose(m);
    return buf;
}

static char *role_text(const struct fx *f, const char *name, int *rc)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    *rc = explain_role(f->plan, name, m);
    fclose(m);
    return buf;
}

static void has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
            return;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    print_error("line not found: %s\n--- in\n%s", line, text);
    fail();
}

#define DIVS_S "h|Home;e|EMEA;a|APAC"
#define DIVS_T "th|HQ;te|Europe"
#define ROLES_S G_BUILTINS ";sup|Supervisor||lead|p1;agt|Agent||calls|p2;rep|Reporter||r|p3"
#define ROLES_T G_BUILTINS ";tl|Team Lead||old text|p1;tagt|Agent||calls|p2;old|Old||x|p4"

static void test_scope_why_names_the_glob(void **state)
{
    (void)state;
    struct cfg_strlist inc, exc;
    fx_list(&inc, "*@example.com,*@corp.example", "");
    fx_list(&exc, "breakglass@*", "");
    const char *i, *e;
    assert_true(diff_scope_why(&inc, &exc, "Ada@Corp.Example", &i, &e));
    assert_string_equal(i, "*@corp.example");
    assert_null(e);
    assert_false(diff_scope_why(&inc, &exc, "breakglass@example.com", &i, &e));
    assert_string_equal(i, "*@example.com");
    assert_string_equal(e, "breakglass@*");
    assert_false(diff_scope_why(&inc, &exc, "x@elsewhere.org", &i, &e));
    assert_null(i);
    assert_false(diff_scope_why(&inc, &exc, NULL, &i, &e));
    fx_list_free(&inc);
    fx_list_free(&exc);
}

/* A matched user across divisions: rename, unmapped division, protected admin, forced role,
 * an inherited grant on each side, a removal. */
static void test_user_explained_grant_by_grant(void **state)
{
    (void)state;
    struct fx f;
    struct jspec js = {.rename = "Supervisor=Team Lead",
                       .drename = "EMEA=Europe",
                       .uinc = "*@example.com",
                       .prune = true};
    fx_build(&f, &js, DIVS_S, ROLES_S,
             "s1|ada@example.com|a|Employee,Supervisor,Supervisor@EMEA,Supervisor@APAC,Agent^",
             DIVS_T, ROLES_T, "t1|ada@example.com|a|Employee,Master Admin,Old,Agent^");
    int rc;
    char *t = user_text(&f, "ADA@example.com", NULL, NULL, &rc);
    assert_int_equal(rc, 0);
    has_line(t, "user ADA@example.com: in scope (users.include \"*@example.com\")");
    has_line(t, "  source: id s1 active");
    has_line(t, "  target: id t1 active");
    has_line(t, "  match: matched by email");
    has_line(t, "  role \"Supervisor\" -> \"Team Lead\" (roles.include \"*\", renamed)");
    has_line(t, "    division home -> home: source direct, target none: cycle adds it");
    has_line(t, "    division \"EMEA\" -> \"Europe\": source direct, target none: cycle adds it");
    has_line(t, "    division \"APAC\" -> none: source direct, target none: skipped (unmapped "
                "division: no counterpart on the target)");
    has_line(t, "  role \"Agent\" -> \"Agent\" (roles.include \"*\")");
    has_line(t, "    division home -> home: source inherited, target inherited: not copied "
                "(inherited grants are never copied)");
    has_line(t, "  role \"Master Admin\" -> \"Master Admin\" (roles.include \"*\", admin role: "
                "protected)");
    has_line(t, "    division home: source none, target direct: kept (protected admin role: "
                "revoked only when roles.include names it verbatim)");
    has_line(t, "    division home -> home: source direct, target direct: never added or removed "
                "(forced role: the platform gives it to every user)");
    has_line(t, "  role \"Old\" on the target only (roles.include \"*\")");
    has_line(t, "    division home: source none, target direct: cycle removes it (the source "
                "does not hold it directly)");
    has_line(t, "  cycle: adds 2, removes 1 grant(s) of this user");
    has_line(t, "  note: the source user's inherited grants were not read (direct grants only)");
    free(t);
    fx_done(&f);
}

static void test_inherited_from_the_subject_read_names_the_group(void **state)
{
    (void)state;
    struct fx f;
    struct jspec js = {0};
    fx_build(&f, &js, DIVS_S, ROLES_S, "s1|cy@example.com|a|Agent", DIVS_T, ROLES_T,
             "t1|cy@example.com|a|");
    /* the target user holds Agent at home through the group "Support" (the subject read) */
    struct explain_grant tg[] = {{3, 0, "g-1", "Support"}, {0, 0, NULL, NULL}};
    struct explain_side ss = {true, NULL, 0}, ts = {true, tg, 2};
    int rc;
    char *t = user_text(&f, "cy@example.com", &ss, &ts, &rc);
    assert_int_equal(rc, 0);
    has_line(t, "    division home -> home: source direct, target inherited (group \"Support\"): "
                "cycle adds it (a direct grant: an inherited one does not count)");
    /* a direct grant of the forced role that the cycle's reads do not show */
    has_line(t, "    division home: source none, target direct: kept (forced role: never added or "
                "removed)");
    assert_null(strstr(t, "note:"));
    free(t);
    fx_done(&f);
}

static void test_users_out_of_scope_unmatched_ambiguous_missing(void **state)
{
    (void)state;
    struct fx f;
    struct jspec js = {.uinc = "*@example.com", .uexc = "break*"};
    fx_build(&f, &js, NULL, G_BUILTINS ";a|A||",
             "s1|breakglass@example.com|a|A;s2|bob@example.com|a|A;s3|two@example.com|a|;"
             "s4|TWO@example.com|i|;s5|gone@example.com|d|A;s6|eve@other.org|a|A",
             NULL, G_BUILTINS ";ta|A||",
             "t1|breakglass@example.com|a|;t2|two@example.com|a|;t5|gone@example.com|a|;"
             "t6|eve@other.org|a|");
    int rc;
    char *t = user_text(&f, "breakglass@example.com", NULL, NULL, &rc);
    assert_int_equal(rc, 0);
    has_line(t, "user breakglass@example.com: out of scope (users.exclude \"break*\")");
    has_line(t, "  match: not matched: user out of scope (never touched)");
    has_line(t, "  cycle: no change for this user");
    free(t);
    t = user_text(&f, "eve@other.org", NULL, NULL, &rc);
    has_line(t, "user eve@other.org: out of scope (no users.include glob matched)");
    free(t);
    t = user_text(&f, "bob@example.com", NULL, NULL, &rc);
    assert_int_equal(rc, 0);
    has_line(t, "  target: no user with email bob@example.com in target");
    has_line(t, "  match: unmatched: no user with email bob@example.com in target (reported, "
                "never created)");
    free(t);
    t = user_text(&f, "two@example.com", NULL, NULL, &rc);
    has_line(t, "  source: 2 users with email two@example.com (ids s3 s4): ambiguous, every user "
                "with that key is skipped");
    has_line(t, "  match: not matched: ambiguous");
    free(t);
    t = user_text(&f, "gone@example.com", NULL, NULL, &rc);
    has_line(t, "  source: id s5 deleted (deleted users are ignored)");
    has_line(t, "  match: unmatched: no user with email gone@example.com in source (reported, "
                "never created)");
    free(t);
    t = user_text(&f, "nobody@example.com", NULL, NULL, &rc);
    assert_int_equal(rc, 1);
    has_line(t, "user nobody@example.com: not found (no user with email nobody@example.com in "
                "source or target)");
    free(t);
    fx_done(&f);
}

static void test_additive_off_and_out_of_scope_roles(void **state)
{
    (void)state;
    struct fx f;
    struct jspec js = {.exc = "B", .asg = CFG_ASSIGN_ADDITIVE};
    fx_build(&f, &js, NULL, G_BUILTINS ";a|A||;b|B||", "s1|u@x.com|a|B", NULL,
             G_BUILTINS ";ta|A||;tb|B||", "t1|u@x.com|a|A");
    int rc;
    char *t = user_text(&f, "u@x.com", NULL, NULL, &rc);
    has_line(t, "  role \"B\" -> \"B\" (roles.exclude \"B\")");
    has_line(t, "    source direct, target none: not copied (role out of scope)");
    has_line(t, "    source none, target direct: kept (assignments: additive never removes)");
    has_line(t, "  cycle: no change for this user");
    free(t);
    fx_done(&f);
    js = (struct jspec){.asg = CFG_ASSIGN_OFF};
    fx_build(&f, &js, NULL, G_BUILTINS ";a|A||", "s1|u@x.com|a|A", NULL, G_BUILTINS ";ta|A||",
             "t1|u@x.com|a|");
    t = user_text(&f, "u@x.com", NULL, NULL, &rc);
    has_line(t, "  cycle: no change for this user (assignments: off)");
    free(t);
    fx_done(&f);
}

/* genesys -> identity: the two apis' definitions are never compared (the first version said
 * "differs (permission policies)" for every role, identity roles having none). */
static void test_cross_api_definitions_not_compared(void **state)
{
    (void)state;
    char err[256];
    struct fx f;
    struct jspec js = {.defs = true};
    fx_job(&f.job, &js);
    f.src = fx_snap(G, G_BUILTINS ";a|Agent||calls|p2", "s1|u@x.com|a|Agent");
    f.tgt = fx_snap(I, "ia|Agent||", "t1|u@x.com|a|Agent");
    struct diff *d = diff_compute(&f.job, f.src, f.tgt, NULL, err, sizeof err);
    assert_non_null(d);
    f.plan = plan_build(d, false);
    int rc;
    char *t = role_text(&f, "Agent", &rc);
    assert_int_equal(rc, 0);
    has_line(t, "  definition: not compared (definitions are not mirrored across apis)");
    assert_null(strstr(t, "differs"));
    free(t);
    fx_done(&f);
}

/* A grant the assignment phase keeps (additive, off) goes with its role when the prune
 * deletes it: never "kept" (the first version said kept). */
static void test_grant_of_a_pruned_role_goes_with_it(void **state)
{
    (void)state;
    static const enum cfg_assignments modes[] = {CFG_ASSIGN_ADDITIVE, CFG_ASSIGN_OFF};
    for (size_t i = 0; i < 2; i++) {
        struct fx f;
        struct jspec js = {.prune = true, .asg = modes[i]};
        fx_build(&f, &js, NULL, G_BUILTINS ";a|A||", "s1|u@x.com|a|A", NULL,
                 G_BUILTINS ";ta|A||;old|Old||x|p4", "t1|u@x.com|a|A,Old");
        int rc;
        char *t = user_text(&f, "u@x.com", NULL, NULL, &rc);
        has_line(t, "  role \"Old\" on the target only (roles.include \"*\")");
        has_line(t, "    source none, target direct: removed with its role: prune deletes the role "
                    "at the end of the cycle");
        has_line(t, "  cycle: 1 grant(s) of this user go with the roles prune deletes");
        free(t);
        fx_done(&f);
    }
}

static void test_roles_explained(void **state)
{
    (void)state;
    struct fx f;
    struct jspec js = {.rename = "Supervisor=Team Lead",
                       .drename = "EMEA=Europe",
                       .defs = true,
                       .prune = true,
                       .exc = "Reporter"};
    fx_build(&f, &js, DIVS_S, ROLES_S ";new|Fresh||f|p5;q|Queued||q|p6|queue 9f0c",
             "s1|ada@example.com|a|Supervisor,Supervisor@EMEA", DIVS_T, ROLES_T ";th|Held||h|p7||2",
             "t1|ada@example.com|a|Old");
    int rc;
    char *t = role_text(&f, "Supervisor", &rc);
    assert_int_equal(rc, 0);
    has_line(t, "role \"Supervisor\": in scope (roles.include \"*\")");
    has_line(t, "  source: \"Supervisor\" id sup, custom");
    has_line(t, "  target: \"Team Lead\" id tl, custom");
    has_line(t, "  mapping: mapped (renamed)");
    has_line(t, "  definition: differs (description)");
    has_line(t, "  cycle: updates it (description)");
    has_line(t, "  assignments: cycle adds 2, removes 0 grant(s) of it");
    has_line(t, "  holders in source: home 1 direct; \"EMEA\" 1 direct");
    has_line(t, "  holders in target: none");
    free(t);
    t = role_text(&f, "team lead", &rc); /* the target name finds the same role */
    has_line(t, "  mapping: mapped (renamed)");
    free(t);
    t = role_text(&f, "Reporter", &rc);
    has_line(t, "role \"Reporter\": out of scope (roles.exclude \"Reporter\")");
    has_line(t, "  cycle: no change to the role (out of scope)");
    free(t);
    t = role_text(&f, "Fresh", &rc);
    has_line(t, "  mapping: no counterpart: created by this cycle as \"Fresh\"");
    has_line(t, "  cycle: creates it as \"Fresh\"");
    free(t);
    t = role_text(&f, "Queued", &rc);
    has_line(t, "  uncopyable: its definition names org-specific objects (queue 9f0c): never "
                "created or updated; its grants are mirrored only where the role exists on the "
                "target");
    has_line(t, "  cycle: no change to the role (not copied: its definition names org-specific "
                "objects)");
    free(t);
    t = role_text(&f, "Old", &rc);
    has_line(t, "  prune: candidate: no source role maps to it; the cycle deletes it last, taking "
                "0 in-scope grant(s) the assignment phase has not removed");
    has_line(t, "  cycle: deletes it (prune)");
    has_line(t, "  assignments: cycle adds 0, removes 1 grant(s) of it");
    free(t);
    t = role_text(&f, "Held", &rc);
    has_line(t, "  prune: not pruned: held by 2 subject(s) outside this job's scope");
    has_line(t, "  cycle: no change to the role (not pruned, see the prune line)");
    free(t);
    t = role_text(&f, "Master Admin", &rc);
    has_line(t, "  admin: protected (revoked only when roles.include names \"Master Admin\" "
                "verbatim)");
    free(t);
    t = role_text(&f, "Nope", &rc);
    assert_int_equal(rc, 1);
    has_line(t, "role \"Nope\": not found (no role with that name in source or target)");
    free(t);
    fx_done(&f);
}

/* A division excluded by divisions.exclude, and grants between a divided and an undivided
 * tenant. */
static void test_division_scope_and_undivided_side(void **state)
{
    (void)state;
    struct fx f;
    struct jspec js = {.dexc = "AP*", .drename = "EMEA=Europe"};
    fx_build(&f, &js, DIVS_S, ROLES_S, "s1|u@x.com|a|Agent@APAC,Agent@EMEA", DIVS_T, ROLES_T,
             "t1|u@x.com|a|");
    int rc;
    char *t = user_text(&f, "u@x.com", NULL, NULL, &rc);
    has_line(t, "    division \"APAC\" -> none (divisions.exclude \"AP*\"): source direct, target "
                "none: not copied (division out of scope)");
    has_line(t, "    division \"EMEA\" -> \"Europe\": source direct, target none: cycle adds it");
    free(t);
    fx_done(&f);
    js = (struct jspec){0};
    fx_build(&f, &js, DIVS_S, ROLES_S, "s1|u@x.com|a|Agent,Agent@EMEA", NULL, ROLES_T,
             "t1|u@x.com|a|");
    t = user_text(&f, "u@x.com", NULL, NULL, &rc);
    has_line(t, "    division home -> tenant: source direct, target none: cycle adds it");
    has_line(t, "    division \"EMEA\" -> none: source direct, target none: not copied (division "
                "out of scope)");
    free(t);
    t = role_text(&f, "Agent", &rc);
    has_line(t, "  holders in source: home 1 direct; \"EMEA\" 1 direct");
    has_line(t, "  holders in target: none");
    free(t);
    fx_done(&f);
}

static void test_refused_plan_is_said(void **state)
{
    (void)state;
    struct fx f;
    struct jspec js = {.maxdel = -1};
    fx_build(&f, &js, NULL, G_BUILTINS ";a|A||", "s1|u@x.com|a|", NULL, G_BUILTINS ";ta|A||",
             "t1|u@x.com|a|A");
    int rc;
    char *t = user_text(&f, "u@x.com", NULL, NULL, &rc);
    has_line(t, "    source none, target direct: cycle removes it (the source does not hold it "
                "directly)");
    has_line(t, "  guard: the job's plan has 1 deletions, over max_deletes 0: a cycle is refused "
                "and writes nothing (--once --force-deletes, or --approve)");
    free(t);
    fx_done(&f);
}

/* The reasons agree with the plan: for every matched pair, a source grant is MIRRORED exactly
 * when the pair's desired set holds it (added, or already held directly), and a target grant
 * the source does not call for is MIRRORED exactly when the plan removes it. */
static void test_reasons_agree_with_the_plan(void **state)
{
    (void)state;
    struct fx f;
    struct jspec js = {.exc = "C", .dexc = "APAC", .uexc = "z*"};
    fx_build(&f, &js, DIVS_S, G_BUILTINS ";a|A||;b|B||;c|C||",
             "s1|a@x|a|A,B@EMEA,C,Master Admin;s2|b@x|a|A^,B@APAC;s3|c@x|i|Employee,A@EMEA;"
             "s4|z@x|a|A",
             "th|HQ;te|EMEA", G_BUILTINS ";ta|A||;tb|B||;tc|C||",
             "t1|a@x|a|A@EMEA,B,C,Master Admin;t2|b@x|a|B,A^;t3|c@x|a|A@EMEA,B@EMEA;t4|z@x|a|");
    const struct diff *d = f.plan->diff;
    size_t checked = 0;
    for (uint32_t tu = 0; tu < f.tgt->nusers; tu++) {
        uint32_t su = diff_matched_source(d, tu);
        if (su == MDL_NONE)
            continue;
        const struct diff_user_change *uc = diff_user_changes(d, tu);
        const struct mdl_user *s = &f.src->users[su], *t = &f.tgt->users[tu];
        bool desired[16][4] = {{0}};
        for (uint32_t i = 0; i < s->ngrants; i++) {
            uint32_t ref, q;
            if (diff_src_grant_why(d, &s->grants[i], &ref, &q) == DIFF_GRANT_MIRRORED)
                desired[ref][q] = true;
        }
        for (uint32_t i = 0; uc && i < uc->n; i++) {
            const struct diff_change *ch = &d->changes[uc->first + i];
            if (ch->add)
                assert_true(desired[ch->ref][ch->qual]);
            else
                assert_false(desired[ch->ref][ch->qual]);
        }
        for (uint32_t i = 0; i < t->ngrants; i++) {
            const struct mdl_grant *g = &t->grants[i];
            bool removed = false;
            for (uint32_t k = 0; uc && k < uc->n; k++) {
                const struct diff_change *ch = &d->changes[uc->first + k];
                removed = removed || (!ch->add && ch->ref == g->role && ch->qual == g->qual);
            }
            bool want_removed =
                !desired[g->role][g->qual] && diff_tgt_grant_why(d, g) == DIFF_GRANT_MIRRORED;
            assert_int_equal(removed, want_removed);
            checked++;
        }
    }
    assert_true(checked >= 8);
    assert_int_equal(diff_matched_source(d, 3), MDL_NONE); /* z@x: excluded */
    fx_done(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scope_why_names_the_glob),
        cmocka_unit_test(test_user_explained_grant_by_grant),
        cmocka_unit_test(test_inherited_from_the_subject_read_names_the_group),
        cmocka_unit_test(test_users_out_of_scope_unmatched_ambiguous_missing),
        cmocka_unit_test(test_additive_off_and_out_of_scope_roles),
        cmocka_unit_test(test_roles_explained),
        cmocka_unit_test(test_cross_api_definitions_not_compared),
        cmocka_unit_test(test_grant_of_a_pruned_role_goes_with_it),
        cmocka_unit_test(test_division_scope_and_undivided_side),
        cmocka_unit_test(test_refused_plan_is_said),
        cmocka_unit_test(test_reasons_agree_with_the_plan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
