/* test_model.c — snapshot arena, finish (sort/dedupe/validation) and lookups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "rolesync/model.h"

static uint32_t add_role(struct mdl_snapshot *s, const char *id, const char *name, const char *key)
{
    struct mdl_role r = {.id = id, .name = name, .builtin_key = key};
    return mdl_add_role(s, &r);
}

static uint32_t add_user(struct mdl_snapshot *s, const char *id, const char *email)
{
    struct mdl_user u = {.id = id, .email = email};
    return mdl_add_user(s, &u);
}

static void test_lookups(void **state)
{
    (void)state;
    struct mdl_snapshot *s = mdl_snapshot_new(CFG_API_GENESYS);
    char id[32];
    uint32_t r0 = add_role(s, "r0", "Team Lead", NULL);
    uint32_t r1 = add_role(s, "r1", "Employee", "employee");
    uint32_t r2 = add_role(s, "r2", "team lead", NULL); /* same name, other case */
    assert_int_equal(r0, 0);
    assert_int_equal(r2, 2);
    uint32_t u0 = add_user(s, "u0", "a@example.com");
    mdl_user_add_role(s, u0, r2);
    mdl_user_add_role(s, u0, r0);
    mdl_user_add_role(s, u0, r2);
    mdl_user_add_role(s, u0, r1);
    /* enough users and roles per user to exercise arena growth and big blocks */
    for (int i = 1; i < 5000; i++) {
        snprintf(id, sizeof(id), "u%d", i);
        uint32_t u = add_user(s, id, NULL);
        for (int k = 0; k < 3; k++)
            mdl_user_add_role(s, u, (uint32_t)((i + k) % 3));
    }
    char big[100000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    const char *copy = mdl_strdup(s, big);
    assert_string_equal(copy, big);
    assert_null(mdl_strdup(s, NULL));

    char err[128];
    assert_int_equal(mdl_snapshot_finish(s, err, sizeof(err)), 0);
    assert_true(s->finished);
    const struct mdl_user *u = &s->users[u0];
    assert_int_equal(u->ngrants, 3);
    assert_int_equal(u->grants[0].role, 0);
    assert_int_equal(u->grants[1].role, 1);
    assert_int_equal(u->grants[2].role, 2);
    assert_true(mdl_user_has_role(u, r1));
    assert_false(mdl_user_has_role(&s->users[1], 99));

    bool dup = false;
    assert_int_equal(mdl_find_role_by_name(s, "TEAM LEAD", &dup), r0);
    assert_true(dup);
    assert_int_equal(mdl_find_role_by_name(s, "employee", &dup), r1);
    assert_false(dup);
    assert_int_equal(mdl_find_role_by_name(s, "nope", &dup), MDL_NONE);
    assert_int_equal(mdl_find_role_by_key(s, "EMPLOYEE"), r1);
    assert_int_equal(mdl_find_role_by_key(s, "admin"), MDL_NONE);
    assert_int_equal(mdl_find_role_by_id(s, "r2"), r2);
    assert_int_equal(mdl_find_role_by_id(s, "R2"), MDL_NONE); /* ids are exact */
    assert_int_equal(mdl_find_user_by_id(s, "u4999"), 4999);
    assert_int_equal(mdl_find_user_by_id(s, "u5000"), MDL_NONE);
    mdl_snapshot_free(s);
}

static void test_user_with_initial_roles(void **state)
{
    (void)state;
    struct mdl_snapshot *s = mdl_snapshot_new(CFG_API_IDENTITY);
    add_role(s, "a", "A", NULL);
    add_role(s, "b", "B", NULL);
    struct mdl_grant init[] = {{1, 0, 0}, {0, 0, 0}, {1, 0, 0}};
    struct mdl_user u = {.id = "x", .grants = init, .ngrants = 3};
    uint32_t ux = mdl_add_user(s, &u);
    init[0].role = 0; /* the snapshot holds its own copy */
    char err[128];
    assert_int_equal(mdl_snapshot_finish(s, err, sizeof(err)), 0);
    assert_int_equal(s->users[ux].ngrants, 2);
    assert_int_equal(s->users[ux].grants[0].role, 0);
    assert_int_equal(s->users[ux].grants[1].role, 1);
    mdl_snapshot_free(s);
}

/* finish sorts users by the hash of their id (a radix sort) and each user's roles (insertion
 * sort up to 16, qsort beyond): every id is found at its own index, a duplicate among many is
 * named, and role sets come out sorted and unique on both paths. (Lookups are a binary search:
 * an unsorted array would lose ids.) */
static void test_finish_sorts(void **state)
{
    (void)state;
    char err[128], id[32];
    struct mdl_snapshot *s = mdl_snapshot_new(CFG_API_GENESYS);
    for (int r = 0; r < 40; r++) {
        snprintf(id, sizeof id, "r%d", r);
        add_role(s, id, id, NULL);
    }
    for (int i = 0; i < 20000; i++) {
        snprintf(id, sizeof id, "%08x-user-%d", (unsigned)(i * 2654435761u), i);
        add_user(s, id, NULL);
    }
    for (uint32_t r = 40; r-- > 0;) { /* 40 roles, descending, each twice: the qsort path */
        mdl_user_add_role(s, 7, r);
        mdl_user_add_role(s, 7, r);
    }
    for (uint32_t r = 12; r-- > 0;) /* 12 descending + a repeat: the insertion path */
        mdl_user_add_role(s, 8, r);
    mdl_user_add_role(s, 8, 5);
    assert_int_equal(mdl_snapshot_finish(s, err, sizeof(err)), 0);
    for (int i = 0; i < 20000; i++) {
        snprintf(id, sizeof id, "%08x-user-%d", (unsigned)(i * 2654435761u), i);
        assert_int_equal(mdl_find_user_by_id(s, id), (uint32_t)i);
    }
    assert_int_equal(s->users[7].ngrants, 40);
    assert_int_equal(s->users[8].ngrants, 12);
    for (uint32_t r = 0; r < 40; r++)
        assert_int_equal(s->users[7].grants[r].role, r);
    for (uint32_t r = 0; r < 12; r++)
        assert_int_equal(s->users[8].grants[r].role, r);
    mdl_snapshot_free(s);

    s = mdl_snapshot_new(CFG_API_GENESYS);
    for (int i = 0; i < 3000; i++) {
        snprintf(id, sizeof id, "u%d", i);
        add_user(s, id, NULL);
    }
    add_user(s, "u1234", NULL);
    assert_int_equal(mdl_snapshot_finish(s, err, sizeof(err)), -1);
    assert_string_equal(err, "duplicate user id u1234");
    mdl_snapshot_free(s);
}

static void test_finish_errors(void **state)
{
    (void)state;
    char err[128];
    struct mdl_snapshot *s = mdl_snapshot_new(CFG_API_GENESYS);
    add_role(s, "r", "A", NULL);
    add_role(s, "r", "B", NULL);
    assert_int_equal(mdl_snapshot_finish(s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "duplicate role id r"));
    mdl_snapshot_free(s);

    s = mdl_snapshot_new(CFG_API_GENESYS);
    add_user(s, "u", NULL);
    add_user(s, "u", NULL);
    assert_int_equal(mdl_snapshot_finish(s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "duplicate user id u"));
    mdl_snapshot_free(s);

    s = mdl_snapshot_new(CFG_API_GENESYS);
    uint32_t u = add_user(s, "u", NULL);
    mdl_user_add_role(s, u, 7);
    assert_int_equal(mdl_snapshot_finish(s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "role index 7"));
    mdl_snapshot_free(s);

    mdl_snapshot_free(NULL);
}

static void test_empty(void **state)
{
    (void)state;
    char err[64];
    struct mdl_snapshot *s = mdl_snapshot_new(CFG_API_GENESYS);
    assert_int_equal(mdl_snapshot_finish(s, err, sizeof(err)), 0);
    assert_int_equal(mdl_find_role_by_name(s, "x", NULL), MDL_NONE);
    assert_int_equal(mdl_find_user_by_id(s, "x"), MDL_NONE);
    void *z = mdl_alloc(s, 40);
    assert_int_equal(((char *)z)[39], 0);
    mdl_snapshot_free(s);
}

/* Qualifiers and grants (role, qualifier, inherited): sorted by (role, qual, flags), duplicates
 * dropped, inherited grants kept apart from direct ones and not counted as held. */
static void test_grants_and_quals(void **state)
{
    (void)state;
    struct mdl_snapshot *s = mdl_snapshot_new(CFG_API_GENESYS);
    assert_int_equal(s->nquals, 1);
    assert_true(s->quals[0].home);
    mdl_set_home(s, "d-home", "Home");
    uint32_t emea = mdl_add_qual(
        s, &(struct mdl_qual){.id = "d-emea", .name = "EMEA", .home = true /* ignored */});
    uint32_t all = mdl_add_qual(s, &(struct mdl_qual){.id = "*", .name = "*", .all = true});
    assert_int_equal(emea, 1);
    assert_false(s->quals[emea].home);
    assert_true(s->quals[all].all);
    add_role(s, "a", "A", NULL);
    add_role(s, "b", "B", NULL);
    uint32_t u = mdl_add_user(s, &(struct mdl_user){.id = "u"});
    mdl_user_add_grant(s, u, 1, emea, 0);
    mdl_user_add_grant(s, u, 1, 0, MDL_GRANT_INHERITED);
    mdl_user_add_grant(s, u, 0, all, MDL_GRANT_INHERITED);
    mdl_user_add_grant(s, u, 1, emea, 0); /* duplicate */
    mdl_user_add_role(s, u, 1);           /* home, direct */
    char err[128];
    assert_int_equal(mdl_snapshot_finish(s, err, sizeof(err)), 0);
    const struct mdl_user *x = &s->users[u];
    assert_int_equal(x->ngrants, 4);
    assert_int_equal(x->grants[0].role, 0);
    assert_int_equal(x->grants[1].role, 1);
    assert_int_equal(x->grants[1].qual, 0);
    assert_int_equal(x->grants[1].flags, 0);
    assert_int_equal(x->grants[2].flags, MDL_GRANT_INHERITED);
    assert_int_equal(x->grants[3].qual, emea);
    assert_false(mdl_user_has_role(x, 0)); /* only inherited */
    assert_true(mdl_user_has_role(x, 1));
    assert_true(mdl_user_has_grant(x, 1, emea));
    assert_false(mdl_user_has_grant(x, 0, all));
    assert_int_equal(mdl_find_qual_by_id(s, "d-emea"), emea);
    assert_int_equal(mdl_find_qual_by_id(s, "d-home"), 0);
    assert_int_equal(mdl_find_qual_by_id(s, "nope"), MDL_NONE);
    mdl_snapshot_free(s);

    /* a grant naming a missing qualifier, and two divisions with one id, are errors */
    s = mdl_snapshot_new(CFG_API_GENESYS);
    add_role(s, "a", "A", NULL);
    u = mdl_add_user(s, &(struct mdl_user){.id = "u"});
    mdl_user_add_grant(s, u, 0, 3, 0);
    assert_int_equal(mdl_snapshot_finish(s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "qualifier 3 of 1"));
    mdl_snapshot_free(s);
    s = mdl_snapshot_new(CFG_API_GENESYS);
    mdl_set_home(s, "d1", "Home");
    mdl_add_qual(s, &(struct mdl_qual){.id = "d1", .name = "Again"});
    assert_int_equal(mdl_snapshot_finish(s, err, sizeof(err)), -1);
    assert_string_equal(err, "duplicate division id d1");
    mdl_snapshot_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookups),      cmocka_unit_test(test_user_with_initial_roles),
        cmocka_unit_test(test_finish_sorts), cmocka_unit_test(test_finish_errors),
        cmocka_unit_test(test_empty),        cmocka_unit_test(test_grants_and_quals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
