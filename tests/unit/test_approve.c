/* test_approve.c — approved plans (approve.h): the canonical encoding of a deletion set, its
 * fingerprint (order and duplicates do not matter, identities do), the subset rule, the
 * deletion set of a diff (holders of a pruned role included), and the state files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fx_core.h"
#include "rolesync/approve.h"
#include "rolesync/diff.h"
#include "rolesync/plan.h"
#include "rolesync/util.h"

/* The set of the encoding test, added in the order given by `perm` (a permutation of 0..4),
 * each item twice when `twice`. */
static struct approve_set *sample(const int *perm, bool twice)
{
    struct approve_set *s = approve_set_new();
    for (int rep = 0; rep < (twice ? 2 : 1); rep++)
        for (int k = 0; k < 5; k++) {
            switch (perm[k]) {
            case 0:
                approve_set_add_grant(s, "Ada@X.com", "Supervisor", APPROVE_DIV_NAMED, "EMEA");
                break;
            case 1:
                approve_set_add_grant(s, "ada@x.com", "SUPERVISOR", APPROVE_DIV_HOME, NULL);
                break;
            case 2:
                approve_set_add_grant(s, "bob@x.com", "Agent", APPROVE_DIV_NONE, NULL);
                break;
            case 3:
                approve_set_add_grant(s, "bob@x.com", "Agent", APPROVE_DIV_ALL, NULL);
                break;
            default:
                approve_set_add_role(s, "Old \t\\X");
                break;
            }
        }
    return s;
}

static void test_canonical_encoding(void **state)
{
    (void)state;
    static const int order[] = {0, 1, 2, 3, 4};
    struct approve_set *s = sample(order, false);
    char *text = approve_encode(s);
    /* sorted byte-wise, folded, TAB and backslash escaped inside fields, LF after each */
    assert_string_equal(text, "grant\tada@x.com\tsupervisor\t=emea\n"
                              "grant\tada@x.com\tsupervisor\thome\n"
                              "grant\tbob@x.com\tagent\t\n"
                              "grant\tbob@x.com\tagent\t*\n"
                              "role\told \\t\\\\x\n");
    free(text);
    char fp[APPROVE_FP_LEN];
    approve_fingerprint(s, fp);
    /* sha256 of the text above (python3 hashlib) */
    assert_string_equal(fp,
                        "sha256:8ab5629ab0a84f4e166f1016d02b5bee2b9ca27b2b70b1c15b75b67d869f881f");
    /* labels read like the plan's change lines */
    bool seen = false;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->items[i].label, "- user Ada@X.com role \"Supervisor\" division \"EMEA\"") ==
            0)
            seen = true;
    assert_true(seen);
    approve_set_free(s);

    struct approve_set *empty = approve_set_new();
    approve_fingerprint(empty, fp);
    assert_string_equal(fp,
                        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    approve_set_free(empty);
}

static void test_order_and_duplicates_do_not_matter(void **state)
{
    (void)state;
    static const int perms[][5] = {{0, 1, 2, 3, 4}, {4, 3, 2, 1, 0}, {2, 4, 0, 3, 1}};
    char want[APPROVE_FP_LEN], fp[APPROVE_FP_LEN];
    struct approve_set *s = sample(perms[0], false);
    approve_fingerprint(s, want);
    approve_set_free(s);
    for (size_t p = 0; p < 3; p++)
        for (int twice = 0; twice < 2; twice++) {
            s = sample(perms[p], twice);
            approve_fingerprint(s, fp);
            assert_string_equal(fp, want);
            assert_int_equal(s->n, 5);
            approve_set_free(s);
        }
    /* one deletion more or less is another fingerprint */
    s = sample(perms[0], false);
    approve_set_add_role(s, "Another");
    approve_fingerprint(s, fp);
    assert_string_not_equal(fp, want);
    approve_set_free(s);
}

/* Identities that look alike are different deletions: the home marker is no division named
 * "home", `*` is no division named "*", no division is neither, and a field cannot forge a
 * separator. */
static void test_identities_are_distinct(void **state)
{
    (void)state;
    struct approve_set *s = approve_set_new();
    approve_set_add_grant(s, "u", "R", APPROVE_DIV_HOME, NULL);
    approve_set_add_grant(s, "u", "R", APPROVE_DIV_NAMED, "home");
    approve_set_add_grant(s, "u", "R", APPROVE_DIV_ALL, NULL);
    approve_set_add_grant(s, "u", "R", APPROVE_DIV_NAMED, "*");
    approve_set_add_grant(s, "u", "R", APPROVE_DIV_NONE, NULL);
    approve_set_add_grant(s, "u\tR", "", APPROVE_DIV_NONE, NULL);
    approve_set_add_role(s, "R");
    approve_set_add_role(s, "r\ngrant");
    approve_set_finish(s);
    assert_int_equal(s->n, 8);
    /* case folding as the core matches names, beyond ASCII too */
    approve_set_add_role(s, "\xc3\x89quipe"); /* Équipe */
    approve_set_add_role(s, "\xc3\xa9quipe"); /* équipe */
    approve_set_finish(s);
    assert_int_equal(s->n, 9);
    approve_set_free(s);
}

static void test_subset_rule(void **state)
{
    (void)state;
    static const int order[] = {0, 1, 2, 3, 4};
    struct approve_set *approved = sample(order, false);
    /* a fresh set of some of the approved deletions (spelled in another case): none new */
    struct approve_set *fresh = approve_set_new();
    approve_set_add_role(fresh, "OLD \t\\x");
    approve_set_add_grant(fresh, "BOB@x.com", "agent", APPROVE_DIV_ALL, NULL);
    size_t *idx;
    assert_int_equal(approve_new_items(fresh, approved, &idx), 0);
    assert_null(idx);
    /* and two more: exactly those are named, in key order */
    approve_set_add_grant(fresh, "carol@x.com", "Agent", APPROVE_DIV_NAMED, "APAC");
    approve_set_add_grant(fresh, "ada@x.com", "Supervisor", APPROVE_DIV_NAMED, "APAC");
    assert_int_equal(approve_new_items(fresh, approved, &idx), 2);
    assert_string_equal(fresh->items[idx[0]].label,
                        "- user ada@x.com role \"Supervisor\" division \"APAC\"");
    assert_string_equal(fresh->items[idx[1]].label,
                        "- user carol@x.com role \"Agent\" division \"APAC\"");
    free(idx);
    /* nothing is a subset of an empty approval but nothing */
    struct approve_set *none = approve_set_new();
    assert_int_equal(approve_new_items(fresh, none, &idx), fresh->n);
    free(idx);
    assert_int_equal(approve_new_items(none, fresh, &idx), 0);
    approve_set_free(none);
    approve_set_free(fresh);
    approve_set_free(approved);
}

static void test_fingerprint_parse(void **state)
{
    (void)state;
    char norm[APPROVE_FP_LEN];
    const char *up = "SHA256:8AB5629AB0A84F4E166F1016D02B5BEE2B9CA27B2B70B1C15B75B67D869F881F";
    assert_true(approve_fingerprint_parse(up, norm));
    assert_string_equal(norm,
                        "sha256:8ab5629ab0a84f4e166f1016d02b5bee2b9ca27b2b70b1c15b75b67d869f881f");
    assert_false(approve_fingerprint_parse(NULL, norm));
    assert_false(approve_fingerprint_parse("sha256:abc", norm));
    assert_false(approve_fingerprint_parse(
        "md5:8ab5629ab0a84f4e166f1016d02b5bee2b9ca27b2b70b1c15b75b67d869f881f000", norm));
    assert_false(approve_fingerprint_parse(
        "sha256:8ab5629ab0a84f4e166f1016d02b5bee2b9ca27b2b70b1c15b75b67d869f881g", norm));
}

struct world {
    struct mdl_snapshot *src, *tgt;
    struct cfg_job job;
    struct diff *d;
};

static void world_free(struct world *w)
{
    diff_free(w->d);
    fx_job_free(&w->job);
    mdl_snapshot_free(w->src);
    mdl_snapshot_free(w->tgt);
}

/* Every deletion the guard counts is named: removed grants, the pruned role, and the grants
 * it takes with it (not those the assignment phase removes first). */
static void test_set_from_diff_names_every_deletion(void **state)
{
    (void)state;
    for (int additive = 0; additive < 2; additive++) {
        struct world w;
        w.src = fx_snap(G, G_BUILTINS ";sk|Keep||", "s1|a@x.com|a|;s3|c@x.com|a|");
        w.tgt = fx_snap(G, G_BUILTINS ";to|Old||;tk|Keep||",
                        "t1|a@x.com|a|Old;t2|b@x.com|a|Old;t3|c@x.com|a|Keep");
        fx_job(&w.job, &(struct jspec){.prune = true,
                                       .maxdel = 1,
                                       .asg = additive ? CFG_ASSIGN_ADDITIVE : CFG_ASSIGN_MIRROR});
        char err[64];
        w.d = diff_compute(&w.job, w.src, w.tgt, NULL, err, sizeof err);
        assert_non_null(w.d);
        struct approve_set *s = approve_set_from_diff(w.d);
        char *text = approve_encode(s);
        /* mirror: a's Old and c's Keep are removed; b's Old goes with the role (t2 is not
         * matched, so out of the job's users -- held outside: b is in scope by its key) */
        if (additive)
            assert_string_equal(text, "grant\ta@x.com\told\t\n"
                                      "grant\tb@x.com\told\t\n"
                                      "role\told\n");
        else
            assert_string_equal(text, "grant\ta@x.com\told\t\n"
                                      "grant\tb@x.com\told\t\n"
                                      "grant\tc@x.com\tkeep\t\n"
                                      "role\told\n");
        assert_int_equal(s->n, plan_guard_deletions(w.d));
        free(text);
        approve_set_free(s);
        world_free(&w);
    }
}

/* Divisions: home by the marker, others by name, `*` for all; the guard's count matches. */
static void test_set_from_diff_divisions(void **state)
{
    (void)state;
    struct world w;
    const char *divs = "h1|Home;d1|EMEA;*|*";
    w.src = fx_snap_div(G, "h2|Main;d2|EMEA;*|*", G_BUILTINS ";sr|Sup||", "s1|a@x.com|a|");
    w.tgt = fx_snap_div(G, divs, G_BUILTINS ";tr|Sup||", "t1|a@x.com|a|Sup,Sup@EMEA,Sup@*");
    fx_job(&w.job, &(struct jspec){.maxdel = 1});
    char err[64];
    w.d = diff_compute(&w.job, w.src, w.tgt, NULL, err, sizeof err);
    assert_non_null(w.d);
    struct approve_set *s = approve_set_from_diff(w.d);
    char *text = approve_encode(s);
    assert_string_equal(text, "grant\ta@x.com\tsup\t*\n"
                              "grant\ta@x.com\tsup\t=emea\n"
                              "grant\ta@x.com\tsup\thome\n");
    assert_int_equal(s->n, plan_guard_deletions(w.d));
    free(text);
    approve_set_free(s);
    world_free(&w);
}

/* ---- state files ---- */

static char *tmpdir(void)
{
    char *t = strdup("/tmp/test_approve.XXXXXX");
    assert_non_null(mkdtemp(t));
    return t;
}

static void rmtree(const char *dir)
{
    char *cmd = xasprintf("rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

static void test_refused_store_keeps_the_last_few(void **state)
{
    (void)state;
    char *dir = tmpdir(), err[512], fps[APPROVE_KEEP + 2][APPROVE_FP_LEN];
    const char *job = "prod/dev"; /* a fan-out job's name: its '/' stays in the file name */
    for (int i = 0; i < APPROVE_KEEP + 2; i++) {
        struct approve_set *s = approve_set_new();
        char name[32];
        snprintf(name, sizeof name, "Role %d", i);
        approve_set_add_role(s, name);
        approve_fingerprint(s, fps[i]);
        assert_int_equal(approve_store_refused(dir, job, s, fps[i], 1000 * i, err, sizeof err), 0);
        approve_set_free(s);
    }
    char *path = xasprintf("%s/refused/prod%%2Fdev.json", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    for (int i = 0; i < APPROVE_KEEP + 2; i++) {
        struct approve_set *s = approve_load_refused(dir, job, fps[i], err, sizeof err);
        assert_string_equal(err, "");
        if (i < 2) {
            assert_null(s); /* the oldest went */
            continue;
        }
        assert_non_null(s);
        assert_int_equal(s->n, 1);
        char name[40];
        snprintf(name, sizeof name, "- role \"Role %d\"", i);
        assert_string_equal(s->items[0].label, name);
        approve_set_free(s);
    }
    /* another job has its own file */
    struct approve_set *none = approve_load_refused(dir, "other", fps[3], err, sizeof err);
    assert_null(none);
    assert_string_equal(err, "");

    /* an entry edited after the refusal no longer matches its fingerprint: never trusted */
    FILE *f = fopen(path, "r+");
    assert_non_null(f);
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    char *hit = strstr(buf, "role\\trole 6"); /* the key is folded; JSON escapes its TAB */
    assert_non_null(hit);
    hit[strlen("role\\t")] = 'X';
    rewind(f);
    fwrite(buf, 1, n, f);
    fclose(f);
    struct approve_set *bad = approve_load_refused(dir, job, fps[6], err, sizeof err);
    assert_null(bad);
    assert_non_null(strstr(err, "do not match"));
    free(path);
    rmtree(dir);
    free(dir);
}

static void test_approvals_are_used_once(void **state)
{
    (void)state;
    char *dir = tmpdir(), err[512], fp[APPROVE_FP_LEN];
    const char *a = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const char *b = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    assert_int_equal(approve_pending(dir, "j", fp, err, sizeof err), 0);
    assert_int_equal(approve_record(dir, "j", a, 0, err, sizeof err), 0);
    assert_int_equal(approve_pending(dir, "j", fp, err, sizeof err), 1);
    assert_string_equal(fp, a);
    /* a newer approval recorded while a cycle used `a` survives that cycle's end */
    assert_int_equal(approve_record(dir, "j", b, 0, err, sizeof err), 0);
    assert_int_equal(approve_consume(dir, "j", a, err, sizeof err), 0);
    assert_int_equal(approve_pending(dir, "j", fp, err, sizeof err), 1);
    assert_string_equal(fp, b);
    assert_int_equal(approve_consume(dir, "j", b, err, sizeof err), 0);
    assert_int_equal(approve_pending(dir, "j", fp, err, sizeof err), 0);
    /* a job name cannot reach outside the approvals directory */
    assert_int_equal(approve_record(dir, "../x", a, 0, err, sizeof err), 0);
    char *path = xasprintf("%s/approvals/%%2E.%%2Fx.json", dir);
    assert_int_equal(access(path, F_OK), 0);
    free(path);
    rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_encoding),
        cmocka_unit_test(test_order_and_duplicates_do_not_matter),
        cmocka_unit_test(test_identities_are_distinct),
        cmocka_unit_test(test_subset_rule),
        cmocka_unit_test(test_fingerprint_parse),
        cmocka_unit_test(test_set_from_diff_names_every_deletion),
        cmocka_unit_test(test_set_from_diff_divisions),
        cmocka_unit_test(test_refused_store_keeps_the_last_few),
        cmocka_unit_test(test_approvals_are_used_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
