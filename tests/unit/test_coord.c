/* test_coord.c — the job assignment of coord.h (pure). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "rolesync/coord.h"

static void counts(size_t m, size_t n, const int *out, size_t *c)
{
    for (size_t i = 0; i < m; i++)
        c[i] = 0;
    for (size_t j = 0; j < n; j++)
        if (out[j] >= 0)
            c[out[j]]++;
}

static void test_fresh_spread_2_2_1(void **state)
{
    (void)state;
    int holder[5] = {-1, -1, -1, -1, -1}, out[5];
    size_t c[3];
    coord_assign(3, 5, holder, out);
    counts(3, 5, out, c);
    assert_int_equal(c[0], 2);
    assert_int_equal(c[1], 2);
    assert_int_equal(c[2], 1);
}

static void test_first_member_gives_back_to_newcomers(void **state)
{
    (void)state;
    /* one instance took all five before the others joined */
    int holder[5] = {0, 0, 0, 0, 0}, out[5];
    size_t c[3];
    coord_assign(3, 5, holder, out);
    counts(3, 5, out, c);
    assert_int_equal(c[0], 2); /* keeps its share (the extra one: it holds the most) */
    assert_int_equal(c[1] + c[2], 3);
    assert_true(c[1] <= 2 && c[2] <= 2);
    assert_int_equal(out[0], 0); /* kept jobs stay where they are */
    assert_int_equal(out[1], 0);
}

static void test_stable_when_balanced(void **state)
{
    (void)state;
    int holder[5] = {2, 0, 1, 0, 1}, out[5];
    coord_assign(3, 5, holder, out);
    for (int j = 0; j < 5; j++)
        assert_int_equal(out[j], holder[j]);
}

static void test_dead_member_jobs_move(void **state)
{
    (void)state;
    /* member 2 of 3 died: its key is gone (-1); two members share five jobs 3/2 */
    int holder[5] = {0, 0, -1, 1, -1}, out[5];
    size_t c[2];
    coord_assign(2, 5, holder, out);
    counts(2, 5, out, c);
    assert_true((c[0] == 3 && c[1] == 2) || (c[0] == 2 && c[1] == 3));
    assert_int_equal(out[0], 0);
    assert_int_equal(out[3], 1);
}

static void test_foreign_lease_left_alone(void **state)
{
    (void)state;
    int holder[3] = {-2, -1, -1}, out[3];
    coord_assign(2, 3, holder, out);
    assert_int_equal(out[0], -2);
    assert_true(out[1] >= 0 && out[2] >= 0 && out[1] != out[2]);
}

static void test_never_above_ceil(void **state)
{
    (void)state;
    for (size_t m = 1; m <= 6; m++) {
        for (size_t n = 0; n <= 13; n++) {
            int holder[13], out[13];
            size_t c[6];
            for (size_t j = 0; j < n; j++)
                holder[j] = (int)((j * 7) % (m + 1)) - 1; /* a mix of free and held */
            coord_assign(m, n, holder, out);
            counts(m, n, out, c);
            size_t total = 0;
            for (size_t i = 0; i < m; i++) {
                assert_true(c[i] <= (n + m - 1) / m);
                assert_true(c[i] >= n / m);
                total += c[i];
            }
            assert_int_equal(total, n);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh_spread_2_2_1),
        cmocka_unit_test(test_first_member_gives_back_to_newcomers),
        cmocka_unit_test(test_stable_when_balanced),
        cmocka_unit_test(test_dead_member_jobs_move),
        cmocka_unit_test(test_foreign_lease_left_alone),
        cmocka_unit_test(test_never_above_ceil),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
