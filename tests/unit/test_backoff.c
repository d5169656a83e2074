/* test_backoff.c — retry classification, full-jitter schedule, Retry-After parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <string.h>

#include "rolesync/backoff.h"

static const struct backoff_policy pol = {
    .max_attempts = 8, .initial_delay_ms = 1000, .max_delay_ms = 60000};

/* An RNG that returns a fixed value, to pin the jitter at its ends. */
static uint64_t fixed_rng(void *ctx)
{
    return *(uint64_t *)ctx;
}

static void test_ceiling_doubles_to_cap(void **state)
{
    (void)state;
    assert_int_equal(backoff_ceiling_ms(&pol, 1), 1000);
    assert_int_equal(backoff_ceiling_ms(&pol, 2), 2000);
    assert_int_equal(backoff_ceiling_ms(&pol, 3), 4000);
    assert_int_equal(backoff_ceiling_ms(&pol, 6), 32000);
    assert_int_equal(backoff_ceiling_ms(&pol, 7), 60000); /* 64000 capped */
    assert_int_equal(backoff_ceiling_ms(&pol, 100), 60000);
    assert_int_equal(backoff_ceiling_ms(&pol, UINT_MAX), 60000); /* no overflow */
    /* attempts_made 0 is treated like 1 */
    assert_int_equal(backoff_ceiling_ms(&pol, 0), 1000);

    struct backoff_policy huge = {
        .max_attempts = 100, .initial_delay_ms = UINT64_MAX / 3, .max_delay_ms = UINT64_MAX};
    assert_true(backoff_ceiling_ms(&huge, 80) == UINT64_MAX);
}

static void test_delay_ends_pinned_by_rng(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_int_equal(backoff_delay_ms(&pol, 3, 0, fixed_rng, &v), 0);
    v = 4000; /* 4000 % 4001 */
    assert_int_equal(backoff_delay_ms(&pol, 3, 0, fixed_rng, &v), 4000);
    v = 4001; /* wraps to 0: never above the ceiling */
    assert_int_equal(backoff_delay_ms(&pol, 3, 0, fixed_rng, &v), 0);
    v = UINT64_MAX;
    assert_true(backoff_delay_ms(&pol, 20, 0, fixed_rng, &v) <= 60000);

    struct backoff_policy zero = {.max_attempts = 3, .initial_delay_ms = 0, .max_delay_ms = 0};
    v = 12345;
    assert_int_equal(backoff_delay_ms(&zero, 2, 0, fixed_rng, &v), 0);
}

static void test_schedule_bounded_and_jittered(void **state)
{
    (void)state;
    uint64_t seed = 42;
    for (unsigned attempt = 1; attempt <= 12; attempt++) {
        uint64_t ceiling = backoff_ceiling_ms(&pol, attempt);
        uint64_t min = UINT64_MAX, max = 0, sum = 0;
        unsigned distinct_hi = 0, n = 2000;
        for (unsigned i = 0; i < n; i++) {
            uint64_t d = backoff_delay_ms(&pol, attempt, 0, backoff_splitmix64, &seed);
            assert_true(d <= ceiling);
            assert_true(d <= pol.max_delay_ms);
            if (d < min)
                min = d;
            if (d > max)
                max = d;
            if (d > ceiling / 2)
                distinct_hi++;
            sum += d;
        }
        /* Full jitter: the whole range is used, not a constant. */
        assert_true(max > min);
        assert_true(min < ceiling / 10);
        assert_true(max > ceiling - ceiling / 10);
        /* roughly half above the midpoint, mean near ceiling/2 (fixed seed: deterministic) */
        assert_true(distinct_hi > n / 3 && distinct_hi < 2 * n / 3);
        uint64_t mean = sum / n;
        assert_true(mean > ceiling * 4 / 10 && mean < ceiling * 6 / 10);
    }
}

static void test_two_clients_decorrelate(void **state)
{
    (void)state;
    uint64_t a = 1, b = 2;
    unsigned same = 0;
    for (unsigned i = 0; i < 100; i++)
        if (backoff_delay_ms(&pol, 5, 0, backoff_splitmix64, &a) ==
            backoff_delay_ms(&pol, 5, 0, backoff_splitmix64, &b))
            same++;
    assert_true(same < 5);
}

static void test_retry_after_is_a_floor(void **state)
{
    (void)state;
    uint64_t v = 0;
    /* jitter 0, Retry-After 5 s -> 5 s, even above max_delay's first ceiling */
    assert_int_equal(backoff_delay_ms(&pol, 1, 5000, fixed_rng, &v), 5000);
    /* jitter above Retry-After -> jitter */
    v = 3000;
    assert_int_equal(backoff_delay_ms(&pol, 3, 1000, fixed_rng, &v), 3000);
    /* Retry-After beyond max_delay is still honoured */
    v = 0;
    assert_int_equal(backoff_delay_ms(&pol, 1, 120000, fixed_rng, &v), 120000);
    /* ... up to the hard cap */
    assert_int_equal(backoff_delay_ms(&pol, 1, UINT64_MAX, fixed_rng, &v),
                     BACKOFF_RETRY_AFTER_CAP_MS);
    uint64_t seed = 7;
    for (unsigned i = 0; i < 500; i++)
        assert_true(backoff_delay_ms(&pol, 2, 1500, backoff_splitmix64, &seed) >= 1500);
}

static void test_attempt_counting(void **state)
{
    (void)state;
    struct backoff_policy p = {.max_attempts = 3, .initial_delay_ms = 10, .max_delay_ms = 100};
    assert_true(backoff_may_retry(&p, 1));
    assert_true(backoff_may_retry(&p, 2));
    assert_false(backoff_may_retry(&p, 3));
    assert_false(backoff_may_retry(&p, 4));
    struct backoff_policy once = {.max_attempts = 1, .initial_delay_ms = 10, .max_delay_ms = 100};
    assert_false(backoff_may_retry(&once, 1));

    /* A request that always fails is sent exactly max_attempts times. */
    unsigned sent = 0, attempts = 0;
    do {
        attempts++;
        sent++;
    } while (backoff_may_retry(&pol, attempts));
    assert_int_equal(sent, pol.max_attempts);
}

static void test_status_classes(void **state)
{
    (void)state;
    const long yes[] = {408, 429, 500, 502, 503, 504};
    const long no[] = {0, 200, 201, 204, 302, 400, 401, 403, 404, 405, 409, 412, 501, 505};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        assert_true(backoff_status_retryable(yes[i]));
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        assert_false(backoff_status_retryable(no[i]));
}

static void test_parse_retry_after_seconds(void **state)
{
    (void)state;
    uint64_t ms = 77;
    assert_int_equal(backoff_parse_retry_after("120", 0, &ms), 0);
    assert_int_equal(ms, 120000);
    assert_int_equal(backoff_parse_retry_after(" 5 \r\n", 0, &ms), 0);
    assert_int_equal(ms, 5000);
    assert_int_equal(backoff_parse_retry_after("0", 0, &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(backoff_parse_retry_after("999999999999999999999999", 0, &ms), 0);
    assert_int_equal(ms, BACKOFF_RETRY_AFTER_CAP_MS);

    ms = 77;
    assert_int_equal(backoff_parse_retry_after("", 0, &ms), -1);
    assert_int_equal(backoff_parse_retry_after("   ", 0, &ms), -1);
    assert_int_equal(backoff_parse_retry_after("-5", 0, &ms), -1);
    assert_int_equal(backoff_parse_retry_after("soon", 0, &ms), -1);
    assert_int_equal(backoff_parse_retry_after("12abc", 0, &ms), -1);
    assert_int_equal(backoff_parse_retry_after(NULL, 0, &ms), -1);
    assert_int_equal(ms, 77); /* untouched on error */
}

static void test_parse_retry_after_dates(void **state)
{
    (void)state;
    /* Sun, 06 Nov 1994 08:49:37 GMT = 784111777 */
    const int64_t when = 784111777LL * 1000;
    uint64_t ms = 0;

    assert_int_equal(backoff_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", when - 30000, &ms),
                     0);
    assert_int_equal(ms, 30000);
    assert_int_equal(backoff_parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", when - 1500, &ms),
                     0);
    assert_int_equal(ms, 1500);
    assert_int_equal(backoff_parse_retry_after("Sun Nov  6 08:49:37 1994", when - 2000, &ms), 0);
    assert_int_equal(ms, 2000);
    /* in the past -> no wait */
    assert_int_equal(backoff_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", when + 5000, &ms),
                     0);
    assert_int_equal(ms, 0);
    /* far future -> capped */
    assert_int_equal(backoff_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 0, &ms), 0);
    assert_int_equal(ms, BACKOFF_RETRY_AFTER_CAP_MS);
}

static void test_splitmix_deterministic(void **state)
{
    (void)state;
    uint64_t a = 99, b = 99;
    for (int i = 0; i < 10; i++)
        assert_true(backoff_splitmix64(&a) == backoff_splitmix64(&b));
    uint64_t c = 100;
    assert_true(backoff_splitmix64(&a) != backoff_splitmix64(&c));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ceiling_doubles_to_cap),
        cmocka_unit_test(test_delay_ends_pinned_by_rng),
        cmocka_unit_test(test_schedule_bounded_and_jittered),
        cmocka_unit_test(test_two_clients_decorrelate),
        cmocka_unit_test(test_retry_after_is_a_floor),
        cmocka_unit_test(test_attempt_counting),
        cmocka_unit_test(test_status_classes),
        cmocka_unit_test(test_parse_retry_after_seconds),
        cmocka_unit_test(test_parse_retry_after_dates),
        cmocka_unit_test(test_splitmix_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
