/* test_jscan.c — jscan.h, the strict JSON pull reader, from its contract: exactly RFC 8259
 * (every valid form accepted; NaN, "1.", "01", raw control characters, bad escapes, unpaired
 * surrogates, invalid UTF-8, trailing commas, missing separators, mismatched brackets refused),
 * truncation / depth / trailing-data classification, sticky errors, jscan_skip/_skip_rest,
 * jscan_unescape, jscan_int64 saturation, jscan_eq. Every input is handed over in a heap buffer
 * of exactly its length (no NUL after it), so a sanitizer build sees any over-read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "providers/jscan.h"

/* ---- helpers ------------------------------------------------------------------------------ */

/* A printable rendering of n bytes for failure messages. */
static const char *show(const char *s, size_t n)
{
    static char buf[4][600];
    static int k;
    char *o = buf[k++ & 3], *e = o + sizeof(buf[0]) - 8;
    char *p = o;
    for (size_t i = 0; i < n && p < e; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f)
            *p++ = (char)ch;
        else
            p += snprintf(p, 8, "\\x%02x", ch);
    }
    *p = '\0';
    return o;
}

static char *exact(const char *s, size_t n)
{
    char *b = malloc(n ? n : 1);
    assert_non_null(b);
    memcpy(b, s, n);
    return b;
}

/* Read one value fully with value/member/element (recursively), unescaping every string. */
static int walk(struct jscan *j)
{
    struct jscan_val v, k;
    if (jscan_value(j, &v) < 0)
        return -1;
    if (v.type == JSCAN_STRING) {
        char *out = malloc(v.len + 1);
        assert_non_null(out);
        size_t n = jscan_unescape(&v, out);
        assert_true(n <= v.len);
        assert_int_equal(out[n], '\0');
        free(out);
        return 0;
    }
    if (v.type == JSCAN_OBJECT) {
        int r;
        while ((r = jscan_member(j, &k)) == 1) {
            assert_int_equal(k.type, JSCAN_STRING);
            if (walk(j) < 0)
                return -1;
        }
        return r;
    }
    if (v.type == JSCAN_ARRAY) {
        int r;
        while ((r = jscan_element(j)) == 1)
            if (walk(j) < 0)
                return -1;
        return r;
    }
    return 0;
}

struct verdict {
    int rc;
    const char *msg;
    size_t at;
    bool truncated, deep, trailing;
};

static struct verdict run(const char *s, size_t n, int max_depth, bool by_skip)
{
    struct jscan j;
    struct verdict v;
    char *b = exact(s, n);
    jscan_init(&j, b, n, max_depth);
    v.rc = by_skip ? jscan_skip(&j) : walk(&j);
    if (v.rc == 0)
        v.rc = jscan_end(&j);
    v.msg = jscan_error(&j, &v.at);
    v.truncated = jscan_truncated(&j);
    v.deep = jscan_too_deep(&j);
    v.trailing = jscan_trailing(&j);
    free(b);
    return v;
}

/* Both ways of reading (walk and skip) must agree exactly, error and offset included. */
static struct verdict judge(const char *s, size_t n, int max_depth)
{
    struct verdict a = run(s, n, max_depth, false), b = run(s, n, max_depth, true);
    if (a.rc != b.rc || a.msg != b.msg || a.at != b.at) {
        print_error("walk and skip disagree on <%s>: %d/%s@%zu vs %d/%s@%zu\n", show(s, n), a.rc,
                    a.msg ? a.msg : "-", a.at, b.rc, b.msg ? b.msg : "-", b.at);
        fail();
    }
    if ((a.rc == 0) != (a.msg == NULL)) {
        print_error("rc %d but error %s on <%s>\n", a.rc, a.msg ? a.msg : "NULL", show(s, n));
        fail();
    }
    return a;
}

static void accept_n(const char *s, size_t n, int line)
{
    struct verdict v = judge(s, n, 64);
    if (v.rc != 0) {
        print_error("line %d: refused valid <%s>: %s at %zu\n", line, show(s, n), v.msg, v.at);
        fail();
    }
}

/* Refused; `complete` = the input does not end inside a value, so it must not read as
 * truncated (nor as too deep). */
static struct verdict refuse_n(const char *s, size_t n, bool complete, int line)
{
    struct verdict v = judge(s, n, 64);
    if (v.rc == 0) {
        print_error("line %d: accepted invalid <%s>\n", line, show(s, n));
        fail();
    }
    if (complete && (v.truncated || v.deep)) {
        print_error("line %d: <%s> refused as %s (\"%s\" at %zu), but it is complete\n", line,
                    show(s, n), v.truncated ? "truncated" : "too deep", v.msg, v.at);
        fail();
    }
    return v;
}

static void truncated_n(const char *s, size_t n, int line)
{
    struct verdict v = judge(s, n, 64);
    if (v.rc == 0 || !v.truncated || v.trailing || v.deep) {
        print_error("line %d: <%s>: expected truncated, got rc %d \"%s\" at %zu\n", line,
                    show(s, n), v.rc, v.msg ? v.msg : "-", v.at);
        fail();
    }
}

#define ACCEPT(s) accept_n((s), sizeof(s) - 1, __LINE__)
#define REFUSE(s) refuse_n((s), sizeof(s) - 1, true, __LINE__)
#define REFUSE_ANY(s) refuse_n((s), sizeof(s) - 1, false, __LINE__)
#define TRUNCATED(s) truncated_n((s), sizeof(s) - 1, __LINE__)

/* One scalar value from a document (init + value), for the value-level functions. */
static struct jscan j1;
static char *j1buf;
static struct jscan_val read1(const char *s)
{
    struct jscan_val v;
    free(j1buf);
    size_t n = strlen(s);
    j1buf = exact(s, n);
    jscan_init(&j1, j1buf, n, 8);
    if (jscan_value(&j1, &v) < 0 || jscan_end(&j1) < 0) {
        print_error("cannot read <%s>: %s\n", s, jscan_error(&j1, NULL));
        fail();
    }
    return v;
}

static int teardown(void **state)
{
    (void)state;
    free(j1buf);
    j1buf = NULL;
    return 0;
}

/* ---- acceptance of all valid forms -------------------------------------------------------- */

static void test_valid_forms(void **state)
{
    (void)state;
    /* any value may be the root (RFC 8259) */
    ACCEPT("{}");
    ACCEPT("[]");
    ACCEPT("0");
    ACCEPT("-0");
    ACCEPT("1");
    ACCEPT("123456789");
    ACCEPT("\"\"");
    ACCEPT("\"x\"");
    ACCEPT("true");
    ACCEPT("false");
    ACCEPT("null");
    /* numbers */
    ACCEPT("[0,-0,1,-1,10,1234567890,0.5,-0.5,10.25,1e5,1E5,1e+5,1e-5,1E+05,0e0,-0e-0,"
           "0.0,-0.0,1.5E+10,99999999999999999999,-99999999999999999999,1e400,"
           "0.000000000000000000000000000000000000001,123456789012345678901234567890.5]");
    /* strings */
    ACCEPT("[\"\",\"a\",\"\\\"\",\"\\\\\",\"\\/\",\"\\b\",\"\\f\",\"\\n\",\"\\r\",\"\\t\"]");
    ACCEPT("[\"\\u0000\",\"\\u0041\",\"\\u00e9\",\"\\u00E9\",\"\\uFFFF\",\"\\uffff\"]");
    ACCEPT("[\"\\ud83d\\ude00\",\"\\uD800\\uDC00\",\"\\uDBFF\\uDFFF\",\"x\\ud834\\udd1ey\"]");
    ACCEPT("[\"/\",\"'\",\"\x7f\",\"a b\"]"); /* DEL is not a control character in RFC 8259 */
    /* UTF-8 of every length, and the edges util_utf8_valid accepts */
    ACCEPT("\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    ACCEPT("[\"\xc2\x80\",\"\xdf\xbf\",\"\xe0\xa0\x80\",\"\xed\x9f\xbf\",\"\xee\x80\x80\","
           "\"\xef\xbf\xbf\",\"\xf0\x90\x80\x80\",\"\xf4\x8f\xbf\xbf\"]");
    /* a long string (crosses the 8-byte fast path at every alignment) */
    ACCEPT("\"0123456789abcdef0123456789abcdef0123456789abcdef\\n0123456789abcdef\xc3\xa9\"");
    ACCEPT("\"01234567\"");
    ACCEPT("\"0123456\\\"\"");
    /* structure, white space everywhere */
    ACCEPT(" \t\r\n{ \t\r\n\"a\" \t\r\n: \t\r\n[ \t\r\n1 \t\r\n, \t\r\n{ } \t\r\n] \t\r\n} \t\r\n");
    ACCEPT("{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":{}},\"\":\"\",\"a\":2}");
    ACCEPT("[[],{},[[]],[{}],{\"x\":[]},\"\",0]");
    ACCEPT("[1 ,2 , 3]");
    ACCEPT("{\"\\u0041\":1,\"a\\nb\":2}");
    ACCEPT("[-1,-0.0]");
    ACCEPT("{\"k\":\"v\"}\n");
    ACCEPT("[1]\r\n\t ");
}

/* ---- refusals ----------------------------------------------------------------------------- */

static void test_invalid_numbers(void **state)
{
    (void)state;
    REFUSE("[NaN]");
    REFUSE("NaN");
    REFUSE("[-NaN]");
    REFUSE("[Infinity]");
    REFUSE("[-Infinity]");
    REFUSE("[1.]");
    REFUSE("[1.e5]");
    REFUSE("[.5]");
    REFUSE("[01]");
    REFUSE("01");
    REFUSE("[00]");
    REFUSE("[-01]");
    REFUSE("[-00]");
    REFUSE("[-]");
    REFUSE("[+1]");
    REFUSE("+1");
    REFUSE("[--1]");
    REFUSE("[1e]");
    REFUSE("[1e+]");
    REFUSE("[1E-]");
    REFUSE("[1e5.5]");
    REFUSE("[1.5.5]");
    REFUSE("[0x10]");
    REFUSE("[1a]");
    REFUSE("[1-2]");
    REFUSE("[1+2]");
    REFUSE("[- 1]");
    REFUSE("[1 .5]");
    REFUSE("[1e 5]");
    REFUSE("{\"a\":01}");
    /* at the root "1." and "-" are proper prefixes of numbers: refused, either way */
    REFUSE_ANY("1.");
    REFUSE_ANY("-");
    REFUSE_ANY("1e");
}

static void test_invalid_literals(void **state)
{
    (void)state;
    REFUSE("[True]");
    REFUSE("[TRUE]");
    REFUSE("[nul]");
    REFUSE("[nulll]");
    REFUSE("[truex]");
    REFUSE("[true1]");
    REFUSE("[falsey]");
    REFUSE("[nil]");
    REFUSE("[undefined]");
    REFUSE("[t]");
    REFUSE("None");
    REFUSE("nulL");
}

static void test_invalid_strings(void **state)
{
    (void)state;
    /* raw control characters */
    REFUSE("[\"a\tb\"]");
    REFUSE("[\"a\nb\"]");
    REFUSE("[\"a\rb\"]");
    REFUSE("[\"\x01\"]");
    REFUSE("[\"\x1f\"]");
    REFUSE("[\"0123456789\x01"
           "abcdef\"]"); /* past the fast path */
    REFUSE("{\"a\tb\":1}");
    /* invalid escapes */
    REFUSE("[\"\\x41\"]");
    REFUSE("[\"\\'\"]");
    REFUSE("[\"\\a\"]");
    REFUSE("[\"\\0\"]");
    REFUSE("[\"\\U0041\"]");
    REFUSE("[\"\\u12G4\", 1]");
    REFUSE("[\"\\u123\", 1]");
    REFUSE("[\"\\u-123\", 1]");
    REFUSE("[\"\\ \"]");
    REFUSE("{\"\\q\":1}");
    /* unpaired surrogates (enough bytes follow to see the pair is missing) */
    REFUSE("[\"\\ud800\", 1, 2, 3]");
    REFUSE("[\"\\udc00\", 1, 2, 3]");
    REFUSE("[\"\\udfff\", 1, 2, 3]");
    REFUSE("[\"\\ud800x\", 1, 2, 3]");
    REFUSE("[\"\\ud800\\u0041\", 1]");
    REFUSE("[\"\\ud800\\ud800\", 1]");
    REFUSE("[\"\\udbff\\ue000\", 1]");
    REFUSE("[\"\\ud800\\n\", 1, 2, 3]");
    REFUSE("[\"\\ud800\\uZZZZ\", 1]");
    REFUSE("[\"\\ude00\\ud83d\", 1]");
    REFUSE("{\"\\ud800\":1, \"bb\": 2}");
    /* unterminated inside a complete-looking document */
    REFUSE_ANY("[\"abc]");
}

/* Invalid UTF-8: inside strings (keys and values) and outside. */
static void test_invalid_utf8(void **state)
{
    (void)state;
    REFUSE("[\"\xc0\x80\", 1]");     /* overlong NUL */
    REFUSE("[\"\xc1\xbf\", 1]");     /* overlong */
    REFUSE("[\"\xe0\x80\x80\", 1]"); /* overlong 3 */
    REFUSE("[\"\xe0\x9f\xbf\", 1]"); /* overlong 3 */
    REFUSE("[\"\xf0\x80\x80\x80\", 1]");
    REFUSE("[\"\xf0\x8f\xbf\xbf\", 1]");
    REFUSE("[\"\xed\xa0\x80\", 1]");     /* encoded surrogate U+D800 */
    REFUSE("[\"\xed\xbf\xbf\", 1]");     /* U+DFFF */
    REFUSE("[\"\xf4\x90\x80\x80\", 1]"); /* above U+10FFFF */
    REFUSE("[\"\xf5\x80\x80\x80\", 1]");
    REFUSE("[\"\xf8\x88\x80\x80\x80\", 1]");
    REFUSE("[\"\xff\", 1]");
    REFUSE("[\"\xfe\", 1]");
    REFUSE("[\"\x80\", 1]"); /* stray continuation byte */
    REFUSE("[\"a\xbf\", 1]");
    REFUSE("[\"\xc3\", 1]"); /* sequence cut by the quote */
    REFUSE("[\"\xe2\x82\", 1]");
    REFUSE("[\"\xf0\x9f\x98\", 1]");
    REFUSE("[\"\xc3\x41\", 1]");
    REFUSE("[\"\xe2\x28\xa1\", 1]");
    REFUSE("[\"0123456789abcdef\x80zzzzzzzz\", 1]"); /* after the fast path */
    REFUSE("{\"\xc0\x80\":1}");
    /* outside strings */
    REFUSE("[\x80]");
    REFUSE("\xc3\xa9");
    REFUSE("\xef\xbb\xbf{}"); /* a byte order mark is not JSON white space */
    REFUSE("[1,\xc2\xa0 2]"); /* nor is NBSP */
}

static void test_nul_bytes(void **state)
{
    (void)state;
    refuse_n("[\"a\0b\"]", 7, true, __LINE__);
    refuse_n("[1,\0 2]", 7, true, __LINE__);
    refuse_n("\0", 1, true, __LINE__);
    refuse_n("{\"a\0\":1}", 8, true, __LINE__);
    struct verdict v = refuse_n("[1]\0", 4, true, __LINE__);
    assert_true(v.trailing);
}

/* A member name holding U+0000 is refused (beyond RFC 8259, see jscan.h): json-c cuts such a
 * name at the NUL, so {"id":"u1","id\u0000x":"u2"} read "u2" as the id there and "u1" here.
 * An escaped backslash followed by "u0000" is text, not a NUL; a NUL in a value stays legal. */
static void test_nul_in_member_name(void **state)
{
    (void)state;
    REFUSE("{\"id\\u0000x\":1}");
    REFUSE("{\"\\u0000\":1}");
    REFUSE("{\"a\":{\"b\\u0000\":1}}"); /* in a skipped object too */
    ACCEPT("{\"id\\\\u0000x\":1}");
    ACCEPT("{\"id\\u0001\":1}");
    ACCEPT("{\"id\":\"\\u0000\"}");
}

static void test_invalid_structure(void **state)
{
    (void)state;
    REFUSE("[1,]");
    REFUSE("[1,,2]");
    REFUSE("[,1]");
    REFUSE("[,]");
    REFUSE("{\"a\":1,}");
    REFUSE("{,\"a\":1}");
    REFUSE("{,}");
    REFUSE("{\"a\" 1}");
    REFUSE("{\"a\"}");
    REFUSE("{\"a\":}");
    REFUSE("{\"a\"::1}");
    REFUSE("{\"a\":1 \"b\":2}");
    REFUSE("{\"a\":1;\"b\":2}");
    REFUSE("[1 2]");
    REFUSE("[1;2]");
    REFUSE("[1}");
    REFUSE("{\"a\":1]");
    REFUSE("{]");
    REFUSE("[}");
    REFUSE("[{]}");
    REFUSE("{[]}");
    REFUSE("{1:2}");
    REFUSE("{null:2}");
    REFUSE("{'a':1}");
    REFUSE("{a:1}");
    REFUSE("['a']");
    REFUSE("[\"a\":1]");
    REFUSE("]");
    REFUSE("}");
    REFUSE(",");
    REFUSE(":");
    REFUSE("/*c*/[]");
    REFUSE("[1/*c*/]");
    REFUSE("\f[]");
    REFUSE("\v[]");
    REFUSE("[\f1]");
}

static void test_trailing(void **state)
{
    (void)state;
    const char *docs[] = {"{}x",       "{} {}", "[]]",     "{}}",        "1 2", "\"a\"\"b\"",
                          "null null", "{}\n,", "[1] [2]", "true false", "0 0", "{}\f"};
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        struct verdict v = refuse_n(docs[i], strlen(docs[i]), true, __LINE__);
        if (!v.trailing || v.truncated) {
            print_error("<%s>: expected trailing data, got %s at %zu\n", docs[i], v.msg, v.at);
            fail();
        }
    }
    struct verdict v = judge("{} x", 4, 64);
    assert_true(v.trailing);
    assert_int_equal(v.at, 3);
    /* other errors are not "trailing" */
    v = judge("[1,]", 4, 64);
    assert_false(v.trailing);
    v = judge("[1", 2, 64);
    assert_false(v.trailing);
}

static void test_truncated(void **state)
{
    (void)state;
    TRUNCATED("[");
    TRUNCATED("{");
    TRUNCATED("[1");
    TRUNCATED("[1,");
    TRUNCATED("[1 ,");
    TRUNCATED("[1, ");
    TRUNCATED("[[]");
    TRUNCATED("{\"a\"");
    TRUNCATED("{\"a\" ");
    TRUNCATED("{\"a\":");
    TRUNCATED("{\"a\":1");
    TRUNCATED("{\"a\":1,");
    TRUNCATED("{\"a\":1, ");
    TRUNCATED("\"abc");
    TRUNCATED("\"a\\");
    TRUNCATED("\"\\u");
    TRUNCATED("\"\\u00");
    TRUNCATED("\"\\u0041");
    TRUNCATED("\"\\ud83d");
    TRUNCATED("\"\\ud83d\\");
    TRUNCATED("\"\\ud83d\\u");
    TRUNCATED("\"\\ud83d\\ude0");
    TRUNCATED("\"\\ud83d\\ude00");
    TRUNCATED("t");
    TRUNCATED("tr");
    TRUNCATED("fals");
    TRUNCATED("nul");
    TRUNCATED("[tru");
    TRUNCATED("-");
    TRUNCATED("[-");
    TRUNCATED("1.");
    TRUNCATED("[1.");
    TRUNCATED("1e");
    TRUNCATED("1e+");
    TRUNCATED("[1E-");
    TRUNCATED("[-0.5e");
    TRUNCATED("{\"a\":[{\"b\":\"c");
}

/* The empty input and white space alone: refused (whether they count as "truncated" is not
 * pinned down by the contract: nothing was inside a value yet). */
static void test_empty(void **state)
{
    (void)state;
    REFUSE_ANY("");
    REFUSE_ANY(" ");
    REFUSE_ANY(" \t\r\n");
}

/* A complete document whose string holds an unpaired high surrogate near its end is not
 * truncated: it is an unpaired surrogate (contract: truncated = the input ended inside a
 * value). Same for a short \u escape right before the end. */
static void test_unpaired_surrogate_at_end_not_truncated(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "\"\\ud800\"",  "[\"\\ud800\"]",  "{\"a\":\"\\ud800\"}",
        "\"\\ud800x\"", "\"\\udbff\\n\"", "[\"\\ud800\", 1]",
        "\"\\u12\"",    "\"\\u\"",        "[\"\\uZZ\"]",
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        struct verdict v = judge(docs[i], strlen(docs[i]), 64);
        if (v.rc == 0 || v.truncated) {
            print_error("<%s>: rc %d, truncated %d (\"%s\" at %zu); want refused, not truncated\n",
                        show(docs[i], strlen(docs[i])), v.rc, v.truncated, v.msg ? v.msg : "-",
                        v.at);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

/* ---- depth -------------------------------------------------------------------------------- */

static char *nest(int n, const char *open, const char *close, const char *inner)
{
    size_t lo = strlen(open), lc = strlen(close), li = strlen(inner);
    char *s = malloc((size_t)n * (lo + lc) + li + 1), *p = s;
    assert_non_null(s);
    for (int i = 0; i < n; i++, p += lo)
        memcpy(p, open, lo);
    memcpy(p, inner, li);
    p += li;
    for (int i = 0; i < n; i++, p += lc)
        memcpy(p, close, lc);
    *p = '\0';
    return s;
}

static void check_depth(int limit, int n, const char *open, const char *close, const char *inner,
                        bool ok)
{
    char *s = nest(n, open, close, inner);
    struct verdict v = judge(s, strlen(s), limit);
    if (ok ? v.rc != 0 : (v.rc == 0 || !v.deep || v.truncated || v.trailing)) {
        print_error("limit %d, %d levels of %s%s: rc %d %s\n", limit, n, open, inner, v.rc,
                    v.msg ? v.msg : "-");
        fail();
    }
    free(s);
}

static void test_depth(void **state)
{
    (void)state;
    for (int limit = 1; limit <= 6; limit++) {
        check_depth(limit, limit, "[", "]", "", true);
        check_depth(limit, limit, "[", "]", "1", true);
        check_depth(limit, limit + 1, "[", "]", "", false);
        check_depth(limit, limit + 1, "[", "]", "1", false);
        check_depth(limit, limit, "{\"a\":", "}", "0", true);
        check_depth(limit, limit + 1, "{\"a\":", "}", "0", false);
        check_depth(2 * limit + 1, limit, "[{\"k\":", "}]", "[]", true);
        check_depth(2 * limit, limit, "[{\"k\":", "}]", "[]", false);
    }
    check_depth(64, 64, "[", "]", "", true);
    check_depth(64, 65, "[", "]", "", false);
    check_depth(5, 2, "[{\"k\":", "}]", "[]", true); /* [{"k":[{"k":[]}]}]: 5 levels */
    check_depth(4, 2, "[{\"k\":", "}]", "[]", false);
    check_depth(JSCAN_DEPTH_CAP, JSCAN_DEPTH_CAP, "[", "]", "", true);
    check_depth(JSCAN_DEPTH_CAP, JSCAN_DEPTH_CAP + 1, "[", "]", "", false);
    /* a limit above the cap is not honoured beyond the cap (the stack has CAP levels) */
    check_depth(100000, JSCAN_DEPTH_CAP + 1, "[", "]", "", false);
    check_depth(100000, 5000, "[", "]", "", false);

    /* depth is of nesting, not of the count of containers: siblings at the limit are fine */
    const char *sib = "[[[[]]],[[[]]],{\"a\":[[]]}]";
    assert_int_equal(judge(sib, strlen(sib), 4).rc, 0);
    assert_int_equal(judge(sib, strlen(sib), 3).rc, -1);
    assert_true(judge(sib, strlen(sib), 3).deep);
}

/* ---- errors are sticky -------------------------------------------------------------------- */

static void test_sticky(void **state)
{
    (void)state;
    struct jscan j;
    struct jscan_val v, k;
    char *b = exact("[1,x,2]", 7);
    jscan_init(&j, b, 7, 8);
    assert_null(jscan_error(&j, NULL));
    assert_int_equal(jscan_value(&j, &v), 0);
    assert_int_equal(v.type, JSCAN_ARRAY);
    assert_int_equal(jscan_element(&j), 1);
    assert_int_equal(jscan_value(&j, &v), 0);
    assert_int_equal(jscan_element(&j), 1);
    assert_int_equal(jscan_value(&j, &v), -1);
    size_t at, at2;
    const char *m = jscan_error(&j, &at);
    assert_non_null(m);
    assert_int_equal(at, 3);
    assert_false(jscan_truncated(&j));
    assert_false(jscan_too_deep(&j));
    assert_false(jscan_trailing(&j));
    /* every call fails again and the first error stays */
    assert_int_equal(jscan_element(&j), -1);
    assert_int_equal(jscan_value(&j, &v), -1);
    assert_int_equal(jscan_member(&j, &k), -1);
    assert_int_equal(jscan_skip(&j), -1);
    assert_int_equal(jscan_skip_rest(&j), -1);
    assert_int_equal(jscan_end(&j), -1);
    assert_ptr_equal(jscan_error(&j, &at2), m);
    assert_int_equal(at2, 3);
    assert_false(jscan_truncated(&j) || jscan_too_deep(&j) || jscan_trailing(&j));
    free(b);

    /* a trailing-data error is sticky too, and a later truncation does not replace it */
    b = exact("{} [", 4);
    jscan_init(&j, b, 4, 8);
    assert_int_equal(jscan_skip(&j), 0);
    assert_int_equal(jscan_end(&j), -1);
    assert_true(jscan_trailing(&j));
    m = jscan_error(&j, &at);
    assert_int_equal(at, 3);
    assert_int_equal(jscan_value(&j, &v), -1);
    assert_int_equal(jscan_end(&j), -1);
    assert_true(jscan_trailing(&j));
    assert_ptr_equal(jscan_error(&j, &at2), m);
    assert_int_equal(at2, 3);
    free(b);

    /* truncation is sticky */
    b = exact("[\"ab", 4);
    jscan_init(&j, b, 4, 8);
    assert_int_equal(jscan_value(&j, &v), 0);
    assert_int_equal(jscan_element(&j), 1);
    assert_int_equal(jscan_value(&j, &v), -1);
    assert_true(jscan_truncated(&j));
    assert_int_equal(jscan_end(&j), -1);
    assert_int_equal(jscan_element(&j), -1);
    assert_true(jscan_truncated(&j));
    free(b);
}

/* ---- values ------------------------------------------------------------------------------- */

static void expect_member(struct jscan *j, const char *key)
{
    struct jscan_val k;
    assert_int_equal(jscan_member(j, &k), 1);
    assert_int_equal(k.type, JSCAN_STRING);
    assert_int_equal(k.len, strlen(key));
    assert_memory_equal(k.raw, key, k.len);
}

static void test_values(void **state)
{
    (void)state;
    const char *doc = "{\"s\":\"a\\nb\",\"p\":\"plain\",\"n\":-12.5e3,\"i\":42,\"t\":true,"
                      "\"f\":false,\"z\":null,\"o\":{},\"a\":[],\"e\":\"\"}";
    size_t n = strlen(doc);
    char *b = exact(doc, n);
    struct jscan j;
    struct jscan_val v;
    jscan_init(&j, b, n, 8);
    assert_int_equal(jscan_value(&j, &v), 0);
    assert_int_equal(v.type, JSCAN_OBJECT);

    expect_member(&j, "s");
    assert_int_equal(jscan_value(&j, &v), 0);
    assert_int_equal(v.type, JSCAN_STRING);
    assert_true(v.escaped);
    assert_int_equal(v.len, 4);
    assert_memory_equal(v.raw, "a\\nb", 4);
    assert_ptr_equal(v.raw, b + 6); /* a span of the caller's buffer */

    expect_member(&j, "p");
    assert_int_equal(jscan_value(&j, &v), 0);
    assert_int_equal(v.type, JSCAN_STRING);
    assert_false(v.escaped);
    assert_int_equal(v.len, 5);
    assert_memory_equal(v.raw, "plain", 5);

    expect_member(&j, "n");
    assert_int_equal(jscan_value(&j, &v), 0);
    assert_int_equal(v.type, JSCAN_NUMBER);
    assert_false(v.integer);
    assert_int_equal(v.len, 7);
    assert_memory_equal(v.raw, "-12.5e3", 7);

    expect_member(&j, "i");
    assert_int_equal(jscan_value(&j, &v), 0);
    assert_int_equal(v.type, JSCAN_NUMBER);
    assert_true(v.integer);
    assert_int_equal(v.len, 2);
    assert_memory_equal(v.raw, "42", 2);

    expect_member(&j, "t");
    assert_int_equal(jscan_value(&j, &v), 0);
    assert_int_equal(v.type, JSCAN_TRUE);
    expect_member(&j, "f");
    assert_int_equal(jscan_value(&j, &v), 0);
    assert_int_equal(v.type, JSCAN_FALSE);
    expect_member(&j, "z");
    assert_int_equal(jscan_value(&j, &v), 0);
    assert_int_equal(v.type, JSCAN_NULL);

    struct jscan_val k;
    expect_member(&j, "o");
    assert_int_equal(jscan_value(&j, &v), 0);
    assert_int_equal(v.type, JSCAN_OBJECT);
    assert_int_equal(jscan_member(&j, &k), 0);
    expect_member(&j, "a");
    assert_int_equal(jscan_value(&j, &v), 0);
    assert_int_equal(v.type, JSCAN_ARRAY);
    assert_int_equal(jscan_element(&j), 0);
    expect_member(&j, "e");
    assert_int_equal(jscan_value(&j, &v), 0);
    assert_int_equal(v.type, JSCAN_STRING);
    assert_int_equal(v.len, 0);
    assert_false(v.escaped);

    assert_int_equal(jscan_member(&j, &k), 0);
    assert_int_equal(jscan_end(&j), 0);
    assert_null(jscan_error(&j, NULL));
    free(b);

    /* integer flag */
    assert_true(read1("0").integer);
    assert_true(read1("-0").integer);
    assert_true(read1("99999999999999999999").integer);
    assert_false(read1("1e2").integer);
    assert_false(read1("1E2").integer);
    assert_false(read1("1.0").integer);
    assert_false(read1("-0.0").integer);
    assert_false(read1("0e0").integer);
}

static void test_type_names(void **state)
{
    (void)state;
    assert_string_equal(jscan_type_name(JSCAN_NULL), "null");
    assert_string_equal(jscan_type_name(JSCAN_FALSE), "boolean");
    assert_string_equal(jscan_type_name(JSCAN_TRUE), "boolean");
    assert_string_equal(jscan_type_name(JSCAN_NUMBER), "number");
    assert_string_equal(jscan_type_name(JSCAN_STRING), "string");
    assert_string_equal(jscan_type_name(JSCAN_OBJECT), "object");
    assert_string_equal(jscan_type_name(JSCAN_ARRAY), "array");
    assert_non_null(jscan_type_name(JSCAN_NONE));
}

/* ---- jscan_unescape ----------------------------------------------------------------------- */

static void check_unescape(const char *json, const char *want, size_t want_len)
{
    struct jscan_val v = read1(json);
    assert_int_equal(v.type, JSCAN_STRING);
    char *out = malloc(v.len + 1); /* exactly what the contract asks for */
    assert_non_null(out);
    memset(out, 'Z', v.len + 1);
    size_t n = jscan_unescape(&v, out);
    if (n != want_len || memcmp(out, want, n) != 0 || out[n] != '\0') {
        print_error("unescape <%s>: got <%s> (%zu), want <%s> (%zu)\n", json, show(out, n), n,
                    show(want, want_len), want_len);
        fail();
    }
    free(out);
}
#define UNESCAPE(json, lit) check_unescape((json), (lit), sizeof(lit) - 1)

static void test_unescape(void **state)
{
    (void)state;
    UNESCAPE("\"plain\"", "plain");
    UNESCAPE("\"\"", "");
    UNESCAPE("\"\\\"\"", "\"");
    UNESCAPE("\"\\\\\"", "\\");
    UNESCAPE("\"\\/\"", "/");
    UNESCAPE("\"\\b\\f\\n\\r\\t\"", "\b\f\n\r\t");
    UNESCAPE("\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\"", "a\"b\\c/d\be\ff\ng\rh\ti");
    UNESCAPE("\"\\u0041\"", "A");
    UNESCAPE("\"\\u0041\\u0042C\"", "ABC");
    UNESCAPE("\"\\u007f\"", "\x7f");
    UNESCAPE("\"\\u0080\"", "\xc2\x80");
    UNESCAPE("\"\\u00e9\"", "\xc3\xa9");
    UNESCAPE("\"\\u00E9\"", "\xc3\xa9");
    UNESCAPE("\"\\u07FF\"", "\xdf\xbf");
    UNESCAPE("\"\\u0800\"", "\xe0\xa0\x80");
    UNESCAPE("\"\\u20ac\"", "\xe2\x82\xac");
    UNESCAPE("\"\\uD7FF\"", "\xed\x9f\xbf");
    UNESCAPE("\"\\uE000\"", "\xee\x80\x80");
    UNESCAPE("\"\\uFFFF\"", "\xef\xbf\xbf");
    /* surrogate pairs -> one 4-byte sequence */
    UNESCAPE("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80");
    UNESCAPE("\"\\uD83D\\uDE00\"", "\xf0\x9f\x98\x80");
    UNESCAPE("\"\\ud800\\udc00\"", "\xf0\x90\x80\x80");
    UNESCAPE("\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf");
    UNESCAPE("\"x\\ud834\\udd1ey\"", "x\xf0\x9d\x84\x9ey");
    /* \u0000 is a NUL byte in the text, counted in the length */
    UNESCAPE("\"\\u0000\"", "\0");
    UNESCAPE("\"a\\u0000b\"", "a\0b");
    /* an escaped backslash before 'u' is not an escape of the 'u' */
    UNESCAPE("\"\\\\u0041\"", "\\u0041");
    /* raw UTF-8 next to escapes */
    UNESCAPE("\"\xc3\xa9\\n\xf0\x9f\x98\x80\"", "\xc3\xa9\n\xf0\x9f\x98\x80");
    /* the longest expansion ratio and a long string */
    UNESCAPE("\"\\u0041\\u0041\\u0041\\u0041\\u0041\\u0041\\u0041\\u0041\\u0041\\u0041\"",
             "AAAAAAAAAA");
}

/* ---- jscan_int64 -------------------------------------------------------------------------- */

static void check_int(const char *json, bool ok, int64_t want)
{
    struct jscan_val v = read1(json);
    int64_t x = 12345;
    bool r = jscan_int64(&v, &x);
    if (r != ok || (ok && x != want)) {
        print_error("jscan_int64(%s): %d %lld, want %d %lld\n", json, r, (long long)x, ok,
                    (long long)want);
        fail();
    }
}

static void test_int64(void **state)
{
    (void)state;
    check_int("0", true, 0);
    check_int("-0", true, 0);
    check_int("1", true, 1);
    check_int("-1", true, -1);
    check_int("25", true, 25);
    check_int("1000000000", true, 1000000000);
    check_int("9223372036854775807", true, INT64_MAX);
    check_int("9223372036854775808", true, INT64_MAX);
    check_int("-9223372036854775807", true, -INT64_MAX);
    check_int("-9223372036854775808", true, INT64_MIN);
    check_int("-9223372036854775809", true, INT64_MIN);
    check_int("18446744073709551615", true, INT64_MAX);
    check_int("18446744073709551616", true, INT64_MAX);
    check_int("99999999999999999999", true, INT64_MAX);
    check_int("-99999999999999999999", true, INT64_MIN);
    check_int("999999999999999999999999999999999999999999", true, INT64_MAX);
    check_int("-999999999999999999999999999999999999999999", true, INT64_MIN);
    /* not integers */
    check_int("1e2", false, 0);
    check_int("1E0", false, 0);
    check_int("1.0", false, 0);
    check_int("1.5", false, 0);
    check_int("-0.0", false, 0);
    check_int("1e400", false, 0);
    check_int("\"1\"", false, 0);
    check_int("true", false, 0);
    check_int("null", false, 0);
}

/* ---- jscan_eq ----------------------------------------------------------------------------- */

static void test_eq(void **state)
{
    (void)state;
    assert_true(jscan_eq(&(struct jscan_val){0}, "") == false); /* JSCAN_NONE */
    struct jscan_val v = read1("\"id\"");
    assert_true(jscan_eq(&v, "id"));
    assert_false(jscan_eq(&v, "i"));
    assert_false(jscan_eq(&v, "idx"));
    assert_false(jscan_eq(&v, "ID"));
    assert_false(jscan_eq(&v, ""));
    v = read1("\"\"");
    assert_true(jscan_eq(&v, ""));
    assert_false(jscan_eq(&v, "a"));
    /* escaped names compare after unescaping */
    v = read1("\"\\u0069\\u0064\"");
    assert_true(jscan_eq(&v, "id"));
    assert_false(jscan_eq(&v, "i"));
    assert_false(jscan_eq(&v, "idd"));
    v = read1("\"i\\u0064\"");
    assert_true(jscan_eq(&v, "id"));
    v = read1("\"\\u0049d\"");
    assert_false(jscan_eq(&v, "id")); /* "Id" */
    assert_true(jscan_eq(&v, "Id"));
    v = read1("\"\\\"q\"");
    assert_true(jscan_eq(&v, "\"q"));
    v = read1("\"a\\/b\"");
    assert_true(jscan_eq(&v, "a/b"));
    assert_false(jscan_eq(&v, "a\\/b"));
    v = read1("\"\\u00e9\"");
    assert_true(jscan_eq(&v, "\xc3\xa9"));
    v = read1("\"\\ud83d\\ude00\"");
    assert_true(jscan_eq(&v, "\xf0\x9f\x98\x80"));
    v = read1("\"id\\u0000\"");
    assert_false(jscan_eq(&v, "id")); /* a NUL in the name is part of it */
    v = read1("\"\\u0000\"");
    assert_false(jscan_eq(&v, ""));
    v = read1("\"a\\nb\"");
    assert_true(jscan_eq(&v, "a\nb"));
    assert_false(jscan_eq(&v, "a\\nb"));
    /* only strings */
    v = read1("1");
    assert_false(jscan_eq(&v, "1"));
    v = read1("null");
    assert_false(jscan_eq(&v, "null"));
    v = read1("true");
    assert_false(jscan_eq(&v, "true"));
}

/* The contract compares an escaped name after unescaping, with no length limit. */
static void test_eq_long_escaped(void **state)
{
    (void)state;
    char json[2 + 6 * 100 + 1], want[101];
    char *p = json;
    *p++ = '"';
    for (int i = 0; i < 100; i++, p += 6)
        memcpy(p, "\\u0041", 6);
    *p++ = '"';
    *p = '\0';
    memset(want, 'A', 100);
    want[100] = '\0';
    struct jscan_val v = read1(json);
    assert_true(v.escaped);
    assert_true(jscan_eq(&v, want));
    want[99] = 'B';
    assert_false(jscan_eq(&v, want));
}

/* ---- skipping ----------------------------------------------------------------------------- */

static void test_skip(void **state)
{
    (void)state;
    const char *doc = "{\"a\":[1,{\"b\":[[],{},\"x\\\"]}\"]},\"s\\u0041\"],\"c\":2,"
                      "\"d\":{\"e\":{\"f\":[true,null,-1.5e3]}},\"g\":\"h\"}";
    size_t n = strlen(doc);
    char *b = exact(doc, n);
    struct jscan j;
    struct jscan_val v;
    jscan_init(&j, b, n, 8);
    assert_int_equal(jscan_value(&j, &v), 0);
    expect_member(&j, "a");
    assert_int_equal(jscan_skip(&j), 0);
    expect_member(&j, "c");
    assert_int_equal(jscan_value(&j, &v), 0);
    assert_int_equal(v.type, JSCAN_NUMBER);
    assert_memory_equal(v.raw, "2", 1);
    expect_member(&j, "d");
    assert_int_equal(jscan_skip(&j), 0);
    expect_member(&j, "g");
    assert_int_equal(jscan_skip(&j), 0); /* a scalar */
    struct jscan_val k;
    assert_int_equal(jscan_member(&j, &k), 0);
    assert_int_equal(jscan_end(&j), 0);
    free(b);

    /* skip_rest in the middle of containers: the elements not yet read, up to the bracket */
    doc = "{\"a\":{\"b\":[1,2,[3]],\"x\":{\"y\":1}},\"c\":3}";
    n = strlen(doc);
    b = exact(doc, n);
    jscan_init(&j, b, n, 8);
    assert_int_equal(jscan_value(&j, &v), 0);
    expect_member(&j, "a");
    assert_int_equal(jscan_value(&j, &v), 0);
    assert_int_equal(v.type, JSCAN_OBJECT);
    expect_member(&j, "b");
    assert_int_equal(jscan_value(&j, &v), 0);
    assert_int_equal(v.type, JSCAN_ARRAY);
    assert_int_equal(jscan_element(&j), 1);
    assert_int_equal(jscan_value(&j, &v), 0);
    assert_int_equal(jscan_skip_rest(&j), 0); /* ",2,[3]]" */
    expect_member(&j, "x");
    assert_int_equal(jscan_value(&j, &v), 0);
    assert_int_equal(jscan_skip_rest(&j), 0);  /* "\"y\":1}" */
    assert_int_equal(jscan_member(&j, &k), 0); /* closes a */
    expect_member(&j, "c");
    assert_int_equal(jscan_value(&j, &v), 0);
    assert_int_equal(jscan_member(&j, &k), 0);
    assert_int_equal(jscan_end(&j), 0);
    free(b);

    /* right after the opening bracket */
    doc = "[[1,[2,[3]]],4]";
    n = strlen(doc);
    b = exact(doc, n);
    jscan_init(&j, b, n, 8);
    assert_int_equal(jscan_value(&j, &v), 0);
    assert_int_equal(jscan_element(&j), 1);
    assert_int_equal(jscan_value(&j, &v), 0);
    assert_int_equal(v.type, JSCAN_ARRAY);
    assert_int_equal(jscan_skip_rest(&j), 0);
    assert_int_equal(jscan_element(&j), 1);
    assert_int_equal(jscan_value(&j, &v), 0);
    assert_memory_equal(v.raw, "4", 1);
    assert_int_equal(jscan_element(&j), 0);
    assert_int_equal(jscan_end(&j), 0);
    free(b);
}

/* A skipped value is validated like a read one (strings, numbers, structure, depth). */
static void skip_refuses(const char *inner)
{
    char *doc = malloc(strlen(inner) + 32);
    assert_non_null(doc);
    sprintf(doc, "{\"a\":%s,\"b\":1}", inner);
    size_t n = strlen(doc);
    char *b = exact(doc, n);
    struct jscan j;
    struct jscan_val v;
    jscan_init(&j, b, n, 4);
    assert_int_equal(jscan_value(&j, &v), 0);
    expect_member(&j, "a");
    if (jscan_skip(&j) != -1 || !jscan_error(&j, NULL)) {
        print_error("skip accepted <%s>\n", show(doc, n));
        fail();
    }
    free(b);
    free(doc);
}

static void test_skip_validates(void **state)
{
    (void)state;
    skip_refuses("[\"ok\",\"\x01\"]");
    skip_refuses("[\"\\x\"]");
    skip_refuses("{\"k\":\"\\ud800\",\"l\":2}");
    skip_refuses("[\"\xc0\x80\"]");
    skip_refuses("[1,2,]");
    skip_refuses("{\"x\" 1}");
    skip_refuses("{\"x\":1,}");
    skip_refuses("[01]");
    skip_refuses("[NaN]");
    skip_refuses("[1.]");
    skip_refuses("[tru]");
    skip_refuses("[1}");
    skip_refuses("{\"x\":1]");
    skip_refuses("[[[[]]]]"); /* depth 5 with the root, limit 4 */
    skip_refuses("NaN");
    skip_refuses("\"\\u00\"");
}

/* ---- property: every proper prefix of a valid document is refused -------------------------- */

static const char *const PROP_DOCS[] = {
    "{\"entities\":[{\"id\":\"u1\",\"name\":\"A\",\"email\":\"a@x\",\"state\":\"active\","
    "\"username\":\"a@x\",\"authorization\":{\"roles\":[{\"id\":\"r1\",\"name\":\"R\"}]}}],"
    "\"pageSize\":25,\"pageNumber\":1,\"total\":1,\"pageCount\":1}",
    "[1,-2.5e+3,0,-0,1E2,0.5,true,false,null,\"\",{},[],{\"a\":[{}]},-0.0e-0]",
    "\"esc \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0041 \\u00e9 \\ud83d\\ude00\"",
    "{ \"a\" :\t[ 1 ,\r\n2 ] , \"b\" : { } , \"c\":\"\" }",
    "{\"k\\u0041\":[[[[[[[[[[[]]]]]]]]]]],\"z\":null}",
    "true",
    "false",
    "null",
    "\"\"",
    "[[],[[]],{\"\":{}}]",
    "{\"n\":[12345678901234567890,-98765,3.14159,1e-300]}",
};

/* Documents holding multi-byte UTF-8 (a prefix may end inside a character). */
static const char *const PROP_DOCS_UTF8[] = {
    "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
    "{\"n\\u00e9\":\"\xc3\xa9t\xc3\xa9\",\"x\":[\"\xf4\x8f\xbf\xbf\",\"\xef\xbf\xbf\"]}",
};

static void prefixes_refused(const char *doc, bool require_truncated)
{
    size_t n = strlen(doc);
    accept_n(doc, n, __LINE__);
    for (size_t k = 0; k < n; k++) {
        struct verdict v = judge(doc, k, 64);
        if (v.rc == 0) {
            print_error("prefix of %zu bytes of <%s> accepted\n", k, show(doc, n));
            fail();
        }
        if (require_truncated && k > 0 && (!v.truncated || v.trailing || v.deep)) {
            print_error("prefix <%s> of a valid document: \"%s\" at %zu, not truncated\n",
                        show(doc, k), v.msg, v.at);
            fail();
        }
    }
}

static void test_prefix_property(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(PROP_DOCS) / sizeof(PROP_DOCS[0]); i++)
        prefixes_refused(PROP_DOCS[i], true);
    for (size_t i = 0; i < sizeof(PROP_DOCS_UTF8) / sizeof(PROP_DOCS_UTF8[0]); i++)
        prefixes_refused(PROP_DOCS_UTF8[i], false);
}

/* The same for documents with multi-byte UTF-8: a prefix that ends inside a character also
 * ends inside a value (the string), so it reads as truncated. */
static void test_prefix_property_utf8_truncated(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(PROP_DOCS_UTF8) / sizeof(PROP_DOCS_UTF8[0]); i++)
        prefixes_refused(PROP_DOCS_UTF8[i], true);
}

/* Robustness: every single-byte change of the documents (all 256 values at every position)
 * and every prefix of those: no crash, walk and skip agree (judge checks it), and a changed
 * document accepted has only what a valid document may hold. */
static void test_mutations_never_crash(void **state)
{
    (void)state;
    static const unsigned char probe[] = {0x00, 0x01, 0x09, 0x0a, 0x20, '"',  '\\', '/',  ',',
                                          ':',  '[',  ']',  '{',  '}',  '0',  '1',  '-',  '+',
                                          '.',  'e',  'E',  'u',  'n',  't',  'x',  0x7f, 0x80,
                                          0xbf, 0xc0, 0xc3, 0xe0, 0xed, 0xf0, 0xf4, 0xf5, 0xff};
    size_t accepted = 0, total = 0;
    for (size_t d = 0; d < sizeof(PROP_DOCS) / sizeof(PROP_DOCS[0]); d++) {
        size_t n = strlen(PROP_DOCS[d]);
        char *m = malloc(n);
        assert_non_null(m);
        for (size_t i = 0; i < n; i++) {
            for (int c = 0; c < 256; c++) {
                memcpy(m, PROP_DOCS[d], n);
                m[i] = (char)c;
                struct verdict v = judge(m, n, 64);
                total++;
                if (v.rc == 0) {
                    accepted++;
                    /* nothing accepted holds a NUL or a raw control byte */
                    for (size_t q = 0; q < n; q++)
                        if ((unsigned char)m[q] < 0x20 && m[q] != '\t' && m[q] != '\n' &&
                            m[q] != '\r') {
                            print_error("accepted a control byte in <%s>\n", show(m, n));
                            fail();
                        }
                }
            }
            for (size_t p = 0; p < sizeof(probe); p++) {
                memcpy(m, PROP_DOCS[d], n);
                m[i] = (char)probe[p];
                for (size_t k = i + 1; k < n; k += 7)
                    (void)judge(m, k, 64);
            }
        }
        free(m);
    }
    assert_true(accepted > 0 && accepted < total);
    print_message("mutations: %zu of %zu accepted\n", accepted, total);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_forms),
        cmocka_unit_test(test_invalid_numbers),
        cmocka_unit_test(test_invalid_literals),
        cmocka_unit_test(test_invalid_strings),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_nul_bytes),
        cmocka_unit_test(test_nul_in_member_name),
        cmocka_unit_test(test_invalid_structure),
        cmocka_unit_test(test_trailing),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_unpaired_surrogate_at_end_not_truncated),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_sticky),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_unescape),
        cmocka_unit_test(test_int64),
        cmocka_unit_test(test_eq),
        cmocka_unit_test(test_eq_long_escaped),
        cmocka_unit_test(test_skip),
        cmocka_unit_test(test_skip_validates),
        cmocka_unit_test(test_prefix_property),
        cmocka_unit_test(test_prefix_property_utf8_truncated),
        cmocka_unit_test(test_mutations_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
