/* test_recent.c — the created-roles store (recent.h): notes survive a reopen (the file), expire
 * after RECENT_TTL_MS, are per tenant, and fill a snapshot whose listing lags without doubling
 * a role the listing shows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "rolesync/recent.h"
#include "rolesync/util.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/rs-recent-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, RECENT_FILE);
    unlink(path);
    rmdir(dir);
    return 0;
}

static void test_survives_reopen_and_expires(void **state)
{
    (void)state;
    char err[256];
    const int64_t t0 = 1700000000000;
    struct recent_roles *r = recent_open(dir, err, sizeof err);
    assert_string_equal(err, "");
    assert_int_equal(
        recent_note(r, "dev x", "id-1", "Agents", "desc", "{\"p\":1}", t0, err, sizeof err), 0);
    assert_int_equal(recent_note(r, "other y", "id-2", "Agents", NULL, NULL, t0, err, sizeof err),
                     0);
    recent_free(r);
    /* a new process (restart, kill -9) finds them in the file */
    r = recent_open(dir, err, sizeof err);
    size_t n;
    const struct recent_entry *const *v = recent_for(r, "dev x", t0 + 1000, &n);
    assert_int_equal(n, 1);
    assert_string_equal(v[0]->id, "id-1");
    assert_string_equal(v[0]->description, "desc");
    assert_string_equal(v[0]->definition, "{\"p\":1}");
    /* ten minutes later: gone, from memory and from the file */
    v = recent_for(r, "dev x", t0 + RECENT_TTL_MS + 1, &n);
    assert_int_equal(n, 0);
    recent_free(r);
    r = recent_open(dir, err, sizeof err);
    v = recent_for(r, "other y", t0, &n);
    assert_int_equal(n, 0);
    recent_free(r);
}

static void test_inject(void **state)
{
    (void)state;
    char err[256];
    const int64_t t0 = 1700000000000;
    struct recent_roles *r = recent_open(NULL, err, sizeof err);
    recent_note(r, "t", "id-new", "New Role", "d", "{\"def\":1}", t0, err, sizeof err);
    recent_note(r, "t", "id-listed", "Listed", NULL, NULL, t0, err, sizeof err);
    recent_note(r, "t", "id-clash", "Taken", NULL, NULL, t0, err, sizeof err);
    struct mdl_snapshot *s = mdl_snapshot_new(CFG_API_GENESYS);
    mdl_add_role(s, &(struct mdl_role){.id = "id-listed", .name = "Listed"});
    mdl_add_role(s, &(struct mdl_role){.id = "other", .name = "TAKEN"});
    assert_int_equal(recent_inject(r, "t", s, t0 + 5000), 1);
    assert_int_equal(s->nroles, 3);
    assert_string_equal(s->roles[2].id, "id-new");
    assert_true(s->roles[2].recent);
    assert_string_equal(s->roles[2].def_canon, "{\"def\":1}");
    assert_string_equal(s->roles[2].description, "d");
    /* the listed one is forgotten; the one whose name another role holds stays remembered */
    size_t n;
    const struct recent_entry *const *v = recent_for(r, "t", t0 + 5000, &n);
    assert_int_equal(n, 2);
    assert_string_equal(v[0]->id, "id-new");
    assert_string_equal(v[1]->id, "id-clash");
    mdl_snapshot_free(s);
    recent_free(r);
}

static void test_damaged_file(void **state)
{
    (void)state;
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/%s", dir, RECENT_FILE);
    FILE *f = fopen(path, "w");
    fputs("{\"roles\": [{\"tenant\": 5}, ", f);
    fclose(f);
    struct recent_roles *r = recent_open(dir, err, sizeof err);
    assert_non_null(strstr(err, "ignored"));
    size_t n;
    recent_for(r, "t", 0, &n);
    assert_int_equal(n, 0);
    recent_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_survives_reopen_and_expires, setup, teardown),
        cmocka_unit_test(test_inject),
        cmocka_unit_test_setup_teardown(test_damaged_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
