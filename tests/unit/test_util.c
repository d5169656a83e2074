/* test_util.c — util.h: globs, percent-encoding, strict UTF-8, RFC 3339. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rolesync/util.h"

static void test_glob(void **state)
{
    (void)state;
    assert_true(util_glob_match("*", ""));
    assert_true(util_glob_match("*", "anything"));
    assert_true(util_glob_match("*@Example.com", "ada@example.COM"));
    assert_true(util_glob_match("Team ?ead", "team lead"));
    assert_true(util_glob_match("a*b*c", "aXXbYYc"));
    /* '?' is one character, also a non-ASCII one (it matched one byte of it) */
    assert_true(util_glob_match("Gr??e", "Gr\xc3\xbc\xc3\x9f"
                                         "e"));
    assert_false(util_glob_match("Gr???e", "Gr\xc3\xbc\xc3\x9f"
                                           "e"));
    assert_true(util_glob_match("?", "\xe2\x82\xac"));
    assert_true(util_glob_match("*?", "\xc3\xbc"));
    assert_true(util_glob_match("[EU] *", "[eu] Agents"));
    assert_false(util_glob_match("a*b*c", "aXXbYY"));
    assert_false(util_glob_match("Master Admin", "Master Admins"));
    assert_false(util_glob_match("", "x"));
}

/* "Case-insensitive" (product.md 4.3, 4.4) for any script, not ASCII only (a black-box test
 * had "Équipe" and "équipe" as two roles, "élodie@" and "Élodie@" as two people). */
static void test_fold(void **state)
{
    (void)state;
    assert_int_equal(util_fold_cmp("\xc3\x89quipe", "\xc3\xa9QUIPE"), 0); /* Équipe, éQUIPE */
    assert_true(util_fold_cmp("a", "b") < 0);
    assert_true(util_fold_cmp("ab", "a") > 0);
    assert_int_equal(util_fold_cmp("", ""), 0);
    char *f = util_strdup_fold("\xc3\x80\xc3\x89 \xce\x91\xce\xa3 \xd0\x96 Ab"); /* ÀÉ ΑΣ Ж Ab */
    assert_string_equal(f, "\xc3\xa0\xc3\xa9 \xce\xb1\xcf\x83 \xd0\xb6 ab");       /* àé ασ ж ab */
    free(f);
    /* the folded text may be longer (U+023A -> U+2C65) or shorter (U+212A KELVIN -> k) */
    /* ASCII: exactly A-Z change (the neighbours '@', '[', '`', '{' stay) */
    for (int c = 1; c < 0x80; c++) {
        char in[2] = {(char)c, 0}, out[8];
        assert_int_equal(util_fold_into(out, in), 1);
        assert_int_equal((unsigned char)out[0], c >= 'A' && c <= 'Z' ? c + 32 : c);
        assert_int_equal(util_fold_len(in), 1);
        assert_int_equal(util_fold_cmp(in, out), 0);
    }
    /* ... and in words of eight, at every alignment and around non-ASCII text */
    char all[128], low[128 * 2];
    for (int c = 1; c < 0x80; c++)
        all[c - 1] = (char)c;
    all[127] = '\0';
    for (size_t off = 0; off < 16; off++) {
        assert_int_equal(util_fold_len(all + off), 127 - off);
        assert_int_equal(util_fold_into(low, all + off), 127 - off);
        for (size_t i = 0; i + off < 127; i++) {
            int c = (unsigned char)all[off + i];
            assert_int_equal((unsigned char)low[i], c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
    }
    assert_int_equal(util_fold_into(low, "ABCDEFGH\xc3\x80XYZ@[`{"), 17);
    assert_string_equal(low, "abcdefgh\xc3\xa0xyz@[`{");
    assert_int_equal(util_fold_into(low, "ABC\xc3\x80" "DEFGHIJKLMNOP"), 18);
    assert_string_equal(low, "abc\xc3\xa0" "defghijklmnop");
    assert_int_equal(util_fold_len("ABCDEFGHIJ\xc8\xba"), 13);
    assert_int_equal(util_fold_len("\xc8\xba"), 3);
    assert_int_equal(util_fold_len("\xe2\x84\xaa"), 1);
    char buf[8];
    assert_int_equal(util_fold_into(buf, "\xe2\x84\xaa"), 1);
    assert_string_equal(buf, "k");
    /* bytes that are not UTF-8 are kept, and differ from every character */
    f = util_strdup_fold("A\xff" "B\xc3");
    assert_string_equal(f, "a\xff" "b\xc3");
    free(f);
    assert_true(util_fold_cmp("\xff", "\xc3\xbf") != 0);
    /* globs fold the same way */
    assert_true(util_glob_match("\xc3\xa9quipe*", "\xc3\x89QUIPE Nord"));
    assert_true(util_glob_match("?quipe", "\xc3\x89quipe"));
    assert_true(util_glob_match("*@\xc3\xa9" "cole.fr", "anne@\xc3\x89" "COLE.FR"));
    assert_false(util_glob_match("\xc3\xa9quipe", "equipe"));
}

static void test_pct_encode(void **state)
{
    (void)state;
    char *s = util_pct_encode("a/b..%\"c d~_-.");
    assert_string_equal(s, "a%2Fb..%25%22c%20d~_-.");
    free(s);
}

static void check_utf8(const char *bytes, size_t n, bool ok, size_t at)
{
    size_t bad = 12345;
    assert_int_equal(util_utf8_valid(bytes, n, &bad), ok);
    if (!ok)
        assert_int_equal(bad, at);
}

static void test_utf8(void **state)
{
    (void)state;
    check_utf8("plain ascii text, long enough for the fast path", 47, true, 0);
    check_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, true, 0);
    check_utf8("\xef\xbf\xbf\xf4\x8f\xbf\xbf", 7, true, 0); /* U+FFFF, U+10FFFF */
    check_utf8("ab\xc0\xaf", 4, false, 2);                  /* overlong '/' */
    check_utf8("ab\xe0\x80\xaf", 5, false, 2);              /* overlong 3-byte */
    check_utf8("Ag\xed\xa0\x80"
               "ents",
               9, false, 2);                     /* surrogate U+D800 */
    check_utf8("\xf4\x90\x80\x80", 4, false, 0); /* above U+10FFFF */
    check_utf8("x"
               "\xff",
               2, false, 1);
    check_utf8("x"
               "\x80",
               2, false, 1);                     /* stray continuation */
    check_utf8("0123456789\xc3", 11, false, 10); /* truncated at the end */
    check_utf8("\xe2\x82", 2, false, 0);
}

static void test_rfc3339(void **state)
{
    (void)state;
    char buf[32];
    assert_string_equal(util_rfc3339(buf, sizeof buf, 1795323600123LL), "2026-11-22T05:00:00Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glob),
        cmocka_unit_test(test_fold),
        cmocka_unit_test(test_pct_encode),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_rfc3339),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
