/* provider_json.c — the JSON boundary shared by both providers (pjson_*: strict parsing, typed
 * field access with error paths, JSON output, user->role reference resolution). Contract in
 * provider_json.h; the platform parsers are genesys_json.c and identity_json.c.
 */
#include "providers/provider_json.h"

#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rolesync/util.h"

#define uthash_malloc(sz) xmalloc(sz)
#define uthash_free(ptr, sz) free(ptr)
#include <uthash.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* ========================================================================================== */
/* Errors and paths                                                                           */

void pjson_cur_init(struct pjson_cur *c, const char *what, char *err, size_t errlen)
{
    c->what = what;
    c->err = err;
    c->errlen = errlen;
    c->path[0] = '\0';
    c->plen = 0;
    if (err && errlen)
        err[0] = '\0';
}

static void path_append(struct pjson_cur *c, const char *s)
{
    size_t n = strlen(s);
    /* A path too long to show is cut; the mark still restores it exactly. */
    if (c->plen + n >= sizeof(c->path))
        n = sizeof(c->path) - 1 - c->plen;
    memcpy(c->path + c->plen, s, n);
    c->plen += n;
    c->path[c->plen] = '\0';
}

size_t pjson_push_key(struct pjson_cur *c, const char *key)
{
    size_t mark = c->plen;
    if (c->plen)
        path_append(c, ".");
    path_append(c, key);
    return mark;
}

size_t pjson_push_idx(struct pjson_cur *c, size_t i)
{
    size_t mark = c->plen;
    /* By hand: every element of every page passes here, and snprintf is most of the cost. */
    char b[32], *q = b + sizeof(b);
    *--q = '\0';
    *--q = ']';
    do
        *--q = (char)('0' + i % 10);
    while (i /= 10);
    *--q = '[';
    path_append(c, q);
    return mark;
}

void pjson_pop(struct pjson_cur *c, size_t mark)
{
    c->plen = mark;
    c->path[mark] = '\0';
}

int pjson_fail(struct pjson_cur *c, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->err && c->errlen) {
        if (c->plen)
            snprintf(c->err, c->errlen, "%s: %s: %s", c->what, c->path, msg);
        else
            snprintf(c->err, c->errlen, "%s: %s", c->what, msg);
    }
    return -1;
}

static int body_checks(struct pjson_cur *c, const char *body, size_t len);

static const char *type_name(struct json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null:
        return "null";
    case json_type_boolean:
        return "boolean";
    case json_type_double:
    case json_type_int:
        return "number";
    case json_type_object:
        return "object";
    case json_type_array:
        return "array";
    case json_type_string:
        return "string";
    }
    return "unknown";
}

/* ========================================================================================== */
/* Parsing                                                                                    */

/* Deepest container nesting of a JSON text, by a scan of its bytes (brackets outside strings).
 * Cheaper than walking the parsed tree, and exact where json-c's own limit is not (it counts the
 * innermost scalar as a level too, so it is set one higher and this decides). */
static int max_depth_text(const char *p, size_t n)
{
    int depth = 0, best = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (in_str) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_str = false;
        } else if (ch == '"') {
            in_str = true;
        } else if (ch == '[' || ch == '{') {
            if (++depth > best)
                best = depth;
        } else if (ch == ']' || ch == '}') {
            depth--;
        }
    }
    return best;
}

/* One json-c pass over body[0..len) with a nesting limit of `limit`: the value (NULL on error
 * and for a JSON null), json-c's verdict in *e and where it stopped in *end. A body that ends
 * inside a value, and a parser that cannot be allocated, are worded here: *e is then
 * json_tokener_continue. */
static struct json_object *tokener_parse(struct pjson_cur *c, const char *body, size_t len,
                                         int limit, enum json_tokener_error *e, size_t *end)
{
    struct json_tokener *tk = json_tokener_new_ex(limit);
    *end = 0;
    *e = json_tokener_continue;
    if (!tk) {
        pjson_fail(c, "cannot allocate a JSON parser");
        return NULL;
    }
    /* UTF-8 was validated by the caller, more strictly than JSON_TOKENER_VALIDATE_UTF8 would. */
    json_tokener_set_flags(tk, JSON_TOKENER_STRICT);
    struct json_object *v = json_tokener_parse_ex(tk, body, (int)len);
    *e = json_tokener_get_error(tk);
    *end = json_tokener_get_parse_end(tk);
    if (!v && *e == json_tokener_continue) {
        /* A bare number at the top level only ends at the end of input: say so explicitly,
         * so "5" is reported as "not an object" rather than as truncated. */
        v = json_tokener_parse_ex(tk, "", 1);
        *e = json_tokener_get_error(tk);
        *end = len;
        if (!v && (*e == json_tokener_continue || *e == json_tokener_error_parse_eof)) {
            *e = json_tokener_continue;
            pjson_fail(c, "truncated JSON (input ends inside a value)");
        }
    }
    json_tokener_free(tk);
    return v;
}

struct json_object *pjson_parse(struct pjson_cur *c, const char *body, size_t len)
{
    if (body_checks(c, body, len) < 0)
        return NULL;
    /* json-c's UTF-8 check looks at byte structure only: overlong forms and encoded surrogates
     * would reach names, logs and status.json. */
    size_t bad;
    if (!util_utf8_valid(body, len, &bad)) {
        pjson_fail(c, "not JSON: invalid utf-8 at byte %zu", bad);
        return NULL;
    }
    /* json-c's limit L admits L nested containers only when the innermost is empty (it counts
     * a scalar as a level too), so success at L = PJSON_MAX_DEPTH proves the nesting is within
     * the limit without a scan. Only a body refused for depth there is parsed again one level
     * deeper, and the byte scan decides. */
    enum json_tokener_error e;
    size_t end;
    struct json_object *v = tokener_parse(c, body, len, PJSON_MAX_DEPTH, &e, &end);
    if (!v && e == json_tokener_error_depth) {
        v = tokener_parse(c, body, len, PJSON_MAX_DEPTH + 1, &e, &end);
        if (v && max_depth_text(body, end) > PJSON_MAX_DEPTH) {
            json_object_put(v);
            v = NULL;
            e = json_tokener_error_depth;
        }
    }
    if (!v && e == json_tokener_continue)
        return NULL; /* tokener_parse has worded the error */
    if (!v && e == json_tokener_success) {
        /* json-c represents a JSON null as NULL */
        pjson_fail(c, "expected object or array, got null");
        return NULL;
    }
    if (!v) {
        if (e == json_tokener_error_depth)
            pjson_fail(c, "JSON nested deeper than %d levels", PJSON_MAX_DEPTH);
        else
            pjson_fail(c, "not JSON: %s at byte %zu", json_tokener_error_desc(e), end);
        return NULL;
    }
    if (end < len) {
        json_object_put(v);
        pjson_fail(c, "trailing data after the JSON value at byte %zu", end);
        return NULL;
    }
    return v;
}

/* Bytes of an id that need no further look: RFC 3986 unreserved (a table, because every id
 * of every page passes here, and platform ids are GUIDs). */
static const bool id_byte[256] = {
    ['-'] = true, ['.'] = true, ['_'] = true, ['~'] = true, ['0'] = true, ['1'] = true,
    ['2'] = true, ['3'] = true, ['4'] = true, ['5'] = true, ['6'] = true, ['7'] = true,
    ['8'] = true, ['9'] = true, ['A'] = true, ['B'] = true, ['C'] = true, ['D'] = true,
    ['E'] = true, ['F'] = true, ['G'] = true, ['H'] = true, ['I'] = true, ['J'] = true,
    ['K'] = true, ['L'] = true, ['M'] = true, ['N'] = true, ['O'] = true, ['P'] = true,
    ['Q'] = true, ['R'] = true, ['S'] = true, ['T'] = true, ['U'] = true, ['V'] = true,
    ['W'] = true, ['X'] = true, ['Y'] = true, ['Z'] = true, ['a'] = true, ['b'] = true,
    ['c'] = true, ['d'] = true, ['e'] = true, ['f'] = true, ['g'] = true, ['h'] = true,
    ['i'] = true, ['j'] = true, ['k'] = true, ['l'] = true, ['m'] = true, ['n'] = true,
    ['o'] = true, ['p'] = true, ['q'] = true, ['r'] = true, ['s'] = true, ['t'] = true,
    ['u'] = true, ['v'] = true, ['w'] = true, ['x'] = true, ['y'] = true, ['z'] = true,
};

/* Eight bits of an id for direct-mapped caches: its first and last eight bytes, mixed. Role
 * and user ids are GUIDs, whose single bytes are sixteen hex digits and whose middle byte is
 * always '-': a slot taken from a few bytes sent a tenant's couple of hundred roles into a few
 * dozen slots. */
unsigned pjson_id_slot8(const char *id, size_t len)
{
    uint64_t head = 0, tail = 0;
    memcpy(&head, id, len < 8 ? len : 8);
    if (len > 8)
        memcpy(&tail, id + len - 8, 8);
    uint64_t h = (head ^ (tail * 0x9E3779B97F4A7C15ull) ^ len) * 0xD6E8FEB86659FD93ull;
    return (unsigned)(h >> 56);
}

/* Returns NULL when s[0..len) is a usable id, else a description of the problem. Any
 * printable text is usable: pjson_path_segment() percent-encodes it for a URL, logs quote
 * it. Control characters are refused (they have no business in an id and would reach logs). */
_Static_assert(PJSON_MAX_ID == 128, "pjson_id_problem's message names the limit");

const char *pjson_id_problem(const char *s, size_t len)
{
    if (!s || len == 0)
        return "empty id";
    if (len > PJSON_MAX_ID)
        return "id longer than 128 bytes";
    bool clean = true;
    size_t i = 0;
#if defined(__SSE2__)
    /* Sixteen bytes at a time: every user id and role id of every page passes here. Bytes from
     * 0x80 up compare as negative and fall in no range. */
    for (; i + 16 <= len && clean; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
#define IN_RANGE(lo, hi)                                                                           \
    _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8((char)((lo)-1))),                                \
                  _mm_cmplt_epi8(x, _mm_set1_epi8((char)((hi) + 1))))
#define IS(ch) _mm_cmpeq_epi8(x, _mm_set1_epi8(ch))
        __m128i ok = _mm_or_si128(
            _mm_or_si128(IN_RANGE('0', '9'), IN_RANGE('A', 'Z')),
            _mm_or_si128(IN_RANGE('a', 'z'), _mm_or_si128(_mm_or_si128(IS('-'), IS('.')),
                                                          _mm_or_si128(IS('_'), IS('~')))));
#undef IN_RANGE
#undef IS
        clean = _mm_movemask_epi8(ok) == 0xffff;
    }
#endif
    for (; i < len && clean; i++)
        clean = id_byte[(unsigned char)s[i]];
    if (clean)
        return NULL;
    size_t bad;
    if (!util_utf8_valid(s, len, &bad)) /* JSON bodies are checked whole; a Location is not */
        return "id is not valid UTF-8";
    const char *p = pjson_text_problem(s, len, false);
    return p ? (memchr(s, '\0', len) ? "id contains a NUL character"
                                     : "id contains a control character")
             : NULL;
}

int pjson_check_id(const char *s, size_t len, char *err, size_t errlen)
{
    const char *p = pjson_id_problem(s, len);
    if (p) {
        if (err && errlen)
            snprintf(err, errlen, "invalid id: %s", p);
        return -1;
    }
    return 0;
}

char *pjson_path_segment(const char *id, char *err, size_t errlen)
{
    if (!id) {
        if (err && errlen)
            snprintf(err, errlen, "invalid id: empty id");
        return NULL;
    }
    if (pjson_check_id(id, strlen(id), err, errlen) < 0)
        return NULL;
    /* "." and ".." are dot segments a client or server would resolve away: encode the dots
     * too (util_pct_encode leaves '.' alone, as RFC 3986 allows elsewhere). */
    if (strspn(id, ".") == strlen(id)) {
        char *out = xmalloc(3 * strlen(id) + 1);
        for (size_t i = 0; id[i]; i++)
            memcpy(out + 3 * i, "%2E", 4);
        return out;
    }
    return util_pct_encode(id);
}

/* Text checks after UTF-8 validation (pjson_parse, or jscan while scanning): NUL, C0, DEL, C1
 * (U+0080..U+009F). */
const char *pjson_text_problem(const char *s, size_t len, bool allow_newlines)
{
    size_t i = 0;
    /* Every email and name of every page passes here: skip eight bytes at a time while they are
     * all printable ASCII (0x20..0x7e), the byte checks below start at the first word that is
     * not (the bytes before it are ASCII, so no two-byte form straddles the start). */
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    for (; i + 8 <= len; i += 8) {
        uint64_t w, del;
        memcpy(&w, s + i, 8);
        del = w ^ (ones * 0x7fu);
        if ((((w - ones * 0x20u) & ~w) | ((del - ones) & ~del) | w) & high)
            break;
    }
    for (; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\0')
            return "contains a NUL character";
        if (ch < 0x20 || ch == 0x7f) {
            if (allow_newlines && (ch == '\t' || ch == '\n' || ch == '\r'))
                continue;
            return "contains a control character";
        }
        if (ch == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] >= 0x80 &&
            (unsigned char)s[i + 1] <= 0x9f)
            return "contains a control character";
    }
    return NULL;
}

/* The rules of a kind for text s[0..len) (json-c's string or a decoded jscan string). */
static int check_text(struct pjson_cur *c, const char *s, size_t len, enum pjson_kind kind)
{
    const char *p = NULL;
    switch (kind) {
    case PJSON_ID:
        p = len == 0 ? "must not be empty" : pjson_id_problem(s, len);
        break;
    case PJSON_NAME:
        if (len > PJSON_MAX_NAME)
            return pjson_fail(c, "longer than %d bytes (%zu)", PJSON_MAX_NAME, len);
        p = pjson_text_problem(s, len, false);
        break;
    case PJSON_TEXT:
        if (len > PJSON_MAX_TEXT)
            return pjson_fail(c, "longer than %d bytes (%zu)", PJSON_MAX_TEXT, len);
        p = pjson_text_problem(s, len, true);
        break;
    }
    if (p)
        return pjson_fail(c, "%s", p);
    return 0;
}

int pjson_check_string(struct pjson_cur *c, struct json_object *v, enum pjson_kind kind)
{
    if (!json_object_is_type(v, json_type_string))
        return pjson_fail(c, "expected string, got %s", type_name(v));
    return check_text(c, json_object_get_string(v), (size_t)json_object_get_string_len(v), kind);
}

int pjson_get_string(struct pjson_cur *c, struct json_object *obj, const char *key,
                     enum pjson_kind kind, bool required, const char **out)
{
    struct json_object *v = NULL;
    *out = NULL;
    size_t mark = pjson_push_key(c, key);
    if (!json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null)) {
        int rc = required ? pjson_fail(c, "required field missing") : 0;
        if (rc == 0)
            pjson_pop(c, mark);
        return rc;
    }
    if (pjson_check_string(c, v, kind) < 0)
        return -1;
    const char *s = json_object_get_string(v);
    if (s[0] == '\0' && kind != PJSON_TEXT) {
        if (required)
            return pjson_fail(c, "must not be empty");
        s = NULL; /* "" in an optional name reads as absent */
    }
    pjson_pop(c, mark);
    *out = s;
    return 0;
}

int pjson_get_int(struct pjson_cur *c, struct json_object *obj, const char *key, int64_t min,
                  int64_t max, bool required, int64_t *out, bool *present)
{
    struct json_object *v = NULL;
    *out = 0;
    if (present)
        *present = false;
    size_t mark = pjson_push_key(c, key);
    if (!json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null)) {
        if (required)
            return pjson_fail(c, "required field missing");
        pjson_pop(c, mark);
        return 0;
    }
    if (!json_object_is_type(v, json_type_int))
        return pjson_fail(c, "expected integer, got %s", type_name(v));
    /* json-c saturates out-of-range integers at INT64_MIN/INT64_MAX (and keeps values above
     * INT64_MAX as uint64, which get_int64 also saturates); the bounds below catch both. */
    int64_t x = json_object_get_int64(v);
    if (x < min || x > max)
        return pjson_fail(c, "integer out of range %lld..%lld", (long long)min, (long long)max);
    pjson_pop(c, mark);
    *out = x;
    if (present)
        *present = true;
    return 0;
}

int pjson_get_bool(struct pjson_cur *c, struct json_object *obj, const char *key, bool dflt,
                   bool *out)
{
    struct json_object *v = NULL;
    *out = dflt;
    if (!json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null))
        return 0;
    size_t mark = pjson_push_key(c, key);
    if (!json_object_is_type(v, json_type_boolean))
        return pjson_fail(c, "expected boolean, got %s", type_name(v));
    pjson_pop(c, mark);
    *out = json_object_get_boolean(v);
    return 0;
}

int pjson_get_array(struct pjson_cur *c, struct json_object *obj, const char *key, bool required,
                    struct json_object **out)
{
    struct json_object *v = NULL;
    *out = NULL;
    size_t mark = pjson_push_key(c, key);
    if (!json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null)) {
        if (required)
            return pjson_fail(c, "required field missing");
        pjson_pop(c, mark);
        return 0;
    }
    if (pjson_expect_array(c, v) < 0)
        return -1;
    pjson_pop(c, mark);
    *out = v;
    return 0;
}

int pjson_get_object(struct pjson_cur *c, struct json_object *obj, const char *key, bool required,
                     struct json_object **out)
{
    struct json_object *v = NULL;
    *out = NULL;
    size_t mark = pjson_push_key(c, key);
    if (!json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null)) {
        if (required)
            return pjson_fail(c, "required field missing");
        pjson_pop(c, mark);
        return 0;
    }
    if (pjson_expect_object(c, v) < 0)
        return -1;
    pjson_pop(c, mark);
    *out = v;
    return 0;
}

int pjson_expect_array(struct pjson_cur *c, struct json_object *v)
{
    if (!json_object_is_type(v, json_type_array))
        return pjson_fail(c, "expected array, got %s", type_name(v));
    if (json_object_array_length(v) > PJSON_MAX_LIST)
        return pjson_fail(c, "array of %zu elements exceeds the limit of %d",
                          json_object_array_length(v), PJSON_MAX_LIST);
    return 0;
}

int pjson_expect_object(struct pjson_cur *c, struct json_object *v)
{
    if (!json_object_is_type(v, json_type_object))
        return pjson_fail(c, "expected object, got %s", type_name(v));
    return 0;
}

/* ========================================================================================== */
/* Scanned pages (jscan): the same rules and messages over recorded values                   */

static int body_checks(struct pjson_cur *c, const char *body, size_t len)
{
    if (!body || len == 0)
        return pjson_fail(c, "empty body where JSON was expected");
    if (len > PJSON_MAX_BODY)
        return pjson_fail(c, "body of %zu bytes exceeds the %u byte limit", len, PJSON_MAX_BODY);
    if (memchr(body, '\0', len))
        return pjson_fail(c, "body contains a NUL byte: not JSON");
    return 0;
}

int pjson_scan_init(struct pjson_cur *c, struct jscan *j, const char *body, size_t len)
{
    jscan_init(j, body ? body : "", body ? len : 0, PJSON_MAX_DEPTH);
    return body_checks(c, body, len);
}

int pjson_scan_fail(struct pjson_cur *c, const struct jscan *j)
{
    size_t at;
    const char *m = jscan_error(j, &at);
    pjson_pop(c, 0); /* a syntax error has no path, as with pjson_parse() */
    if (!m)
        return pjson_fail(c, "not JSON");
    if (jscan_truncated(j))
        return pjson_fail(c, "truncated JSON (input ends inside a value)");
    if (jscan_too_deep(j))
        return pjson_fail(c, "JSON nested deeper than %d levels", PJSON_MAX_DEPTH);
    if (jscan_trailing(j))
        return pjson_fail(c, "trailing data after the JSON value at byte %zu", at);
    return pjson_fail(c, "not JSON: %s at byte %zu", m, at);
}

void pjson_sv_free(struct pjson_sv *sv)
{
    free(sv->heap);
    memset(sv, 0, sizeof(*sv));
}

const char *pjson_sv_cstr(const struct pjson_sv *sv, char *buf, size_t bufsz)
{
    if (!sv->s)
        return NULL;
    if (sv->heap)
        return sv->heap;
    if (sv->len >= bufsz) { /* the kinds' limits make this unreachable; never cut silently */
        fputs("<2>FATAL pjson_sv_cstr: checked text longer than its buffer\n", stderr);
        abort();
    }
    memcpy(buf, sv->s, sv->len);
    buf[sv->len] = '\0';
    return buf;
}

int pjson_sv_check(struct pjson_cur *c, const struct jscan_val *v, enum pjson_kind kind,
                   struct pjson_sv *out)
{
    memset(out, 0, sizeof(*out));
    if (v->type != JSCAN_STRING)
        return pjson_fail(c, "expected string, got %s", jscan_type_name(v->type));
    const char *s = v->raw;
    size_t len = v->len;
    if (v->escaped) {
        out->heap = xmalloc(v->len + 1);
        len = jscan_unescape(v, out->heap);
        s = out->heap;
    }
    if (check_text(c, s, len, kind) < 0) {
        pjson_sv_free(out);
        return -1;
    }
    out->s = s;
    out->len = len;
    return 0;
}

int pjson_sv_get(struct pjson_cur *c, const struct jscan_val *v, const char *key,
                 enum pjson_kind kind, bool required, struct pjson_sv *out)
{
    memset(out, 0, sizeof(*out));
    size_t mark = pjson_push_key(c, key);
    if (v->type == JSCAN_NONE || v->type == JSCAN_NULL) {
        int rc = required ? pjson_fail(c, "required field missing") : 0;
        if (rc == 0)
            pjson_pop(c, mark);
        return rc;
    }
    if (pjson_sv_check(c, v, kind, out) < 0)
        return -1;
    if (out->len == 0 && kind != PJSON_TEXT) {
        pjson_sv_free(out);
        if (required)
            return pjson_fail(c, "must not be empty");
        /* "" in an optional name reads as absent */
    }
    pjson_pop(c, mark);
    return 0;
}

int pjson_sv_int(struct pjson_cur *c, const struct jscan_val *v, const char *key, int64_t min,
                 int64_t max, bool required, int64_t *out)
{
    *out = 0;
    size_t mark = pjson_push_key(c, key);
    if (v->type == JSCAN_NONE || v->type == JSCAN_NULL) {
        if (required)
            return pjson_fail(c, "required field missing");
        pjson_pop(c, mark);
        return 0;
    }
    int64_t x;
    if (!jscan_int64(v, &x))
        return pjson_fail(c, "expected integer, got %s", jscan_type_name(v->type));
    if (x < min || x > max)
        return pjson_fail(c, "integer out of range %lld..%lld", (long long)min, (long long)max);
    pjson_pop(c, mark);
    *out = x;
    return 0;
}

int pjson_sv_expect_object(struct pjson_cur *c, enum jscan_type t)
{
    if (t != JSCAN_OBJECT)
        return pjson_fail(c, "expected object, got %s", jscan_type_name(t));
    return 0;
}

int pjson_sv_expect_array(struct pjson_cur *c, enum jscan_type t, size_t count)
{
    if (t != JSCAN_ARRAY)
        return pjson_fail(c, "expected array, got %s", jscan_type_name(t));
    if (count > PJSON_MAX_LIST)
        return pjson_fail(c, "array of %zu elements exceeds the limit of %d", count,
                          PJSON_MAX_LIST);
    return 0;
}

int pjson_sv_object(struct pjson_cur *c, enum jscan_type t, const char *key, bool required)
{
    size_t mark = pjson_push_key(c, key);
    if (t == JSCAN_NONE || t == JSCAN_NULL) {
        if (required)
            return pjson_fail(c, "required field missing");
        pjson_pop(c, mark);
        return 0;
    }
    if (pjson_sv_expect_object(c, t) < 0)
        return -1;
    pjson_pop(c, mark);
    return 1;
}

int pjson_sv_array(struct pjson_cur *c, enum jscan_type t, size_t count, const char *key,
                   bool required)
{
    size_t mark = pjson_push_key(c, key);
    if (t == JSCAN_NONE || t == JSCAN_NULL) {
        if (required)
            return pjson_fail(c, "required field missing");
        pjson_pop(c, mark);
        return 0;
    }
    if (pjson_sv_expect_array(c, t, count) < 0)
        return -1;
    pjson_pop(c, mark);
    return 1;
}

void pjson_role_refs_add_val(struct pjson_role_refs *r, uint32_t user, const struct jscan_val *id)
{
    if (!id->escaped) {
        pjson_role_refs_addn(r, user, id->raw, id->len);
        return;
    }
    /* A checked id has at most PJSON_MAX_ID bytes of text, at most 6 escaped bytes each. */
    char b[6 * PJSON_MAX_ID + 1];
    if (id->len >= sizeof(b)) {
        fputs("<2>FATAL pjson_role_refs_add_val: checked id longer than its buffer\n", stderr);
        abort();
    }
    size_t n = jscan_unescape(id, b);
    pjson_role_refs_addn(r, user, b, n);
}

int pjson_scan_flat(struct jscan *j, struct jscan_val *v)
{
    if (jscan_value(j, v) < 0)
        return -1;
    if (v->type == JSCAN_OBJECT || v->type == JSCAN_ARRAY)
        return jscan_skip_rest(j);
    return 0;
}

/* ========================================================================================== */
/* Output                                                                                     */

void pjson_buf_put(struct pjson_buf *b, const char *s, size_t n)
{
    util_grow((void **)&b->p, &b->cap, b->n + n + 1, 1);
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void pjson_buf_puts(struct pjson_buf *b, const char *s)
{
    pjson_buf_put(b, s, strlen(s));
}

void pjson_buf_put_string(struct pjson_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    pjson_buf_put(b, "\"", 1);
    const char *run = s;
    for (const char *p = s;; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch != '\0' && ch != '"' && ch != '\\' && ch >= 0x20)
            continue;
        pjson_buf_put(b, run, (size_t)(p - run));
        if (ch == '\0')
            break;
        char e[7];
        size_t en = 2;
        e[0] = '\\';
        switch (ch) {
        case '"':
            e[1] = '"';
            break;
        case '\\':
            e[1] = '\\';
            break;
        case '\n':
            e[1] = 'n';
            break;
        case '\r':
            e[1] = 'r';
            break;
        case '\t':
            e[1] = 't';
            break;
        default:
            e[1] = 'u';
            e[2] = '0';
            e[3] = '0';
            e[4] = hex[ch >> 4];
            e[5] = hex[ch & 15];
            en = 6;
        }
        pjson_buf_put(b, e, en);
        run = p + 1;
    }
    pjson_buf_put(b, "\"", 1);
}

char *pjson_buf_take(struct pjson_buf *b)
{
    if (!b->p)
        pjson_buf_put(b, "", 0);
    char *p = b->p;
    b->p = NULL;
    b->n = b->cap = 0;
    return p;
}

char *pjson_build_string_array(const char *const *v, size_t n)
{
    struct pjson_buf b = {0};
    pjson_buf_puts(&b, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            pjson_buf_puts(&b, ",");
        pjson_buf_put_string(&b, v[i] ? v[i] : "");
    }
    pjson_buf_puts(&b, "]");
    return pjson_buf_take(&b);
}

void pjson_copy_clean(char *dst, size_t n, const char *src)
{
    if (!n)
        return;
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)(src ? src : ""); *p;) {
        /* Length of this UTF-8 sequence (input was validated; be defensive anyway). */
        size_t sl = *p < 0x80         ? 1
                    : (*p >> 5) == 6  ? 2
                    : (*p >> 4) == 14 ? 3
                    : (*p >> 3) == 30 ? 4
                                      : 1;
        for (size_t k = 1; k < sl; k++)
            if (p[k] == '\0' || (p[k] & 0xc0) != 0x80)
                sl = 1;
        if (o + sl >= n)
            break;
        if (sl == 1) {
            unsigned char ch = *p;
            dst[o++] = (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
        } else if (sl == 2 && p[0] == 0xc2 && p[1] <= 0x9f) {
            dst[o++] = '?';
        } else {
            memcpy(dst + o, p, sl);
            o += sl;
        }
        p += sl;
    }
    dst[o] = '\0';
}

const char *pjson_arena_lower(struct mdl_snapshot *s, const char *str)
{
    if (!str)
        return NULL;
    size_t n = strlen(str);
    char *d = mdl_alloc(s, n + 1);
    for (size_t i = 0; i < n; i++)
        d[i] = (str[i] >= 'A' && str[i] <= 'Z') ? (char)(str[i] - 'A' + 'a') : str[i];
    d[n] = '\0';
    return d;
}

/* ========================================================================================== */
/* Ids, roles                                                                                 */

const char *pjson_loose_string(struct json_object *obj, const char *key)
{
    struct json_object *v = NULL;
    if (json_object_object_get_ex(obj, key, &v) && json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return NULL;
}

void pjson_ids_free(struct pjson_ids *ids)
{
    if (!ids)
        return;
    for (size_t i = 0; i < ids->n; i++)
        free(ids->v[i]);
    free(ids->v);
    ids->v = NULL;
    ids->n = 0;
}

void pjson_role_free(struct pjson_role *r)
{
    if (!r)
        return;
    free(r->id);
    free(r->name);
    free(r->description);
    free(r->builtin_key);
    free(r->def_canon);
    free(r->def_json);
    memset(r, 0, sizeof(*r));
}

/* ========================================================================================== */
/* User -> role references                                                                    */

struct ref_id {
    UT_hash_handle hh;
    uint32_t idx; /* position in refs->ids */
};

struct ref_pair {
    uint32_t user;
    uint32_t ref; /* index into refs->ids */
};

#define REFS_RECENT 256 /* slots of the recent-id cache; a power of two */

struct pjson_role_refs {
    struct ref_id *by_id; /* intern table; key = ids[idx] */
    char **ids;
    size_t *lens; /* strlen of each id */
    size_t nids, ids_cap, lens_cap;
    struct ref_pair *pairs;
    size_t npairs, pairs_cap;
    /* A tenant's millions of grants name the same few hundred roles: a direct-mapped cache of
     * recently seen ids (index + 1, 0 = empty) answers most of them with one compare instead of
     * hashing the whole id for the intern table. */
    uint32_t recent[REFS_RECENT];
};

struct pjson_role_refs *pjson_role_refs_new(void)
{
    return xcalloc(1, sizeof(struct pjson_role_refs));
}

static void refs_clear(struct pjson_role_refs *r)
{
    struct ref_id *e, *tmp;
    HASH_ITER(hh, r->by_id, e, tmp)
    {
        HASH_DEL(r->by_id, e);
        free(e);
    }
    for (size_t i = 0; i < r->nids; i++)
        free(r->ids[i]);
    free(r->ids);
    free(r->lens);
    free(r->pairs);
    memset(r, 0, sizeof(*r));
}

void pjson_role_refs_free(struct pjson_role_refs *r)
{
    if (!r)
        return;
    refs_clear(r);
    free(r);
}

size_t pjson_role_refs_count(const struct pjson_role_refs *r)
{
    return r ? r->npairs : 0;
}

/* Slot of an id in the recent-id cache. */
static unsigned recent_slot(const char *id, size_t len)
{
    return pjson_id_slot8(id, len) & (REFS_RECENT - 1);
}

void pjson_role_refs_add(struct pjson_role_refs *r, uint32_t user, const char *role_id)
{
    pjson_role_refs_addn(r, user, role_id, strlen(role_id));
}

/* The index of an id, interned on first sight (the slow path of pjson_role_refs_addn). */
static uint32_t refs_intern(struct pjson_role_refs *r, const char *role_id, size_t len)
{
    struct ref_id *e = NULL;
    HASH_FIND(hh, r->by_id, role_id, len, e);
    if (!e) {
        util_grow((void **)&r->ids, &r->ids_cap, r->nids + 1, sizeof(char *));
        util_grow((void **)&r->lens, &r->lens_cap, r->nids + 1, sizeof(size_t));
        r->ids[r->nids] = xstrndup(role_id, len);
        r->lens[r->nids] = len;
        e = xcalloc(1, sizeof(*e));
        e->idx = (uint32_t)r->nids;
        const char *key = r->ids[r->nids];
        r->nids++;
        HASH_ADD_KEYPTR(hh, r->by_id, key, len, e);
    }
    return e->idx;
}

void pjson_role_refs_addn(struct pjson_role_refs *r, uint32_t user, const char *role_id, size_t len)
{
    /* Hot: once per grant of every user read (10^6 a cycle at scale). A cache hit costs a
     * length compare and a memcmp of the id. */
    unsigned slot = len ? recent_slot(role_id, len) : 0;
    uint32_t idx = r->recent[slot];
    if (idx && r->lens[idx - 1] == len && memcmp(r->ids[idx - 1], role_id, len) == 0) {
        idx--;
    } else {
        idx = refs_intern(r, role_id, len);
        r->recent[slot] = idx + 1;
    }
    if (r->npairs == r->pairs_cap)
        util_grow((void **)&r->pairs, &r->pairs_cap, r->npairs + 1, sizeof(struct ref_pair));
    r->pairs[r->npairs].user = user;
    r->pairs[r->npairs].ref = idx;
    r->npairs++;
}

struct role_ent {
    UT_hash_handle hh;
    uint32_t idx;
};

int pjson_role_refs_resolve(struct pjson_role_refs *r, struct mdl_snapshot *s, bool keep_unknown,
                            struct pjson_resolve_stats *st, char *err, size_t errlen)
{
    memset(st, 0, sizeof(*st));
    if (s->finished) {
        snprintf(err, errlen, "role references: snapshot already finished");
        return -1;
    }
    for (size_t i = 0; i < r->npairs; i++) {
        if (r->pairs[i].user >= s->nusers) {
            snprintf(err, errlen, "role references: user index %u not in this snapshot",
                     r->pairs[i].user);
            return -1;
        }
    }
    /* Temporary id -> index table over the complete role list; the snapshot's own index is
     * built only by mdl_snapshot_finish(). */
    size_t nroles = s->nroles;
    struct role_ent *ents = xcalloc(nroles ? nroles : 1, sizeof(*ents));
    struct role_ent *head = NULL;
    int rc = 0;
    for (size_t i = 0; i < nroles; i++) {
        const char *id = s->roles[i].id;
        struct role_ent *f = NULL;
        HASH_FIND(hh, head, id, strlen(id), f);
        if (f) {
            char q[PJSON_MAX_ID + 1];
            pjson_copy_clean(q, sizeof(q), id);
            snprintf(err, errlen, "role listing: two roles share the id %s", q);
            rc = -1;
            goto out;
        }
        ents[i].idx = (uint32_t)i;
        HASH_ADD_KEYPTR(hh, head, id, strlen(id), &ents[i]);
    }
    uint32_t *map = xcalloc(r->nids ? r->nids : 1, sizeof(uint32_t));
    bool *unknown = xcalloc(r->nids ? r->nids : 1, sizeof(bool));
    for (size_t k = 0; k < r->nids; k++) {
        struct role_ent *f = NULL;
        HASH_FIND(hh, head, r->ids[k], strlen(r->ids[k]), f);
        if (f) {
            map[k] = f->idx;
            continue;
        }
        unknown[k] = true;
        st->unknown_ids++;
        if (!st->first_unknown[0])
            snprintf(st->first_unknown, sizeof(st->first_unknown), "%s", r->ids[k]);
        map[k] = MDL_NONE;
        if (keep_unknown) {
            struct mdl_role ph = {.id = r->ids[k], .name = r->ids[k], .foreign = true};
            map[k] = mdl_add_role(s, &ph);
        }
    }
    for (size_t i = 0; i < r->npairs; i++) {
        const struct ref_pair *p = &r->pairs[i];
        st->refs++;
        if (unknown[p->ref])
            st->unknown_refs++;
        if (map[p->ref] != MDL_NONE)
            mdl_user_add_role(s, p->user, map[p->ref]);
    }
    free(map);
    free(unknown);
    refs_clear(r);
out:
    HASH_CLEAR(hh, head);
    free(ents);
    return rc;
}

/* ========================================================================================== */
/* Grants by subject id                                                                       */

/* A grant waiting for its user: 12 bytes. The user ids are interned (a user holds several
 * roles, so its id comes once per role's page): at 100,000 users and 500,000 grants a side
 * this holds ~4 MB of ids and 6 MB of references, where a copy of the id per grant held
 * 20 MB and the arrays' doubling twice that (B5's peak RSS). */
struct grant_ref {
    uint32_t user; /* index into the interned ids */
    uint32_t role;
    uint32_t div; /* index into divs */
};

struct pjson_grant_refs {
    char *ids; /* interned user ids, NUL-terminated, one after the other */
    size_t ids_bytes, ids_cap;
    size_t *id_off; /* per interned id: its offset in ids */
    uint32_t *id_hash;
    size_t nid, id_cap;
    uint32_t *slots; /* open addressing over the ids: id index + 1, 0 = empty */
    size_t nslots;   /* a power of two, at least twice nid; 0 before the first add */
    char **divs;     /* interned division ids (an org has a handful) */
    size_t ndivs, divs_cap;
    struct grant_ref *v;
    size_t n, cap;
};

struct pjson_grant_refs *pjson_grant_refs_new(void)
{
    return xcalloc(1, sizeof(struct pjson_grant_refs));
}

void pjson_grant_refs_free(struct pjson_grant_refs *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->ndivs; i++)
        free(r->divs[i]);
    free(r->divs);
    free(r->ids);
    free(r->id_off);
    free(r->id_hash);
    free(r->slots);
    free(r->v);
    free(r);
}

size_t pjson_grant_refs_count(const struct pjson_grant_refs *r)
{
    return r ? r->n : 0;
}

static void grant_ids_rehash(struct pjson_grant_refs *r, size_t nslots)
{
    free(r->slots);
    r->slots = xcalloc(nslots, sizeof(uint32_t));
    r->nslots = nslots;
    for (size_t i = 0; i < r->nid; i++) {
        size_t at = r->id_hash[i] & (nslots - 1);
        while (r->slots[at])
            at = (at + 1) & (nslots - 1);
        r->slots[at] = (uint32_t)i + 1;
    }
}

static bool grant_id_is(const struct pjson_grant_refs *r, uint32_t i, const char *id, size_t len)
{
    size_t end = i + 1 < r->nid ? r->id_off[i + 1] : r->ids_bytes; /* past its NUL */
    return end - r->id_off[i] == len + 1 && memcmp(r->ids + r->id_off[i], id, len) == 0;
}

/* The index of `id` among the interned ids, added when new. */
static uint32_t grant_id_intern(struct pjson_grant_refs *r, const char *id, size_t len)
{
    unsigned hv;
    HASH_FUNCTION(id, len, hv);
    if (2 * (r->nid + 1) > r->nslots)
        grant_ids_rehash(r, r->nslots ? 2 * r->nslots : 1024);
    size_t at = hv & (r->nslots - 1);
    for (; r->slots[at]; at = (at + 1) & (r->nslots - 1)) {
        uint32_t i = r->slots[at] - 1;
        if (r->id_hash[i] == (uint32_t)hv && grant_id_is(r, i, id, len))
            return i;
    }
    util_grow((void **)&r->ids, &r->ids_cap, r->ids_bytes + len + 1, 1);
    memcpy(r->ids + r->ids_bytes, id, len);
    r->ids[r->ids_bytes + len] = '\0';
    size_t cap = r->id_cap;
    util_grow((void **)&r->id_off, &r->id_cap, r->nid + 1, sizeof(size_t));
    if (r->id_cap != cap) /* id_hash has id_off's capacity */
        r->id_hash = xrealloc(r->id_hash, r->id_cap * sizeof(uint32_t));
    r->id_off[r->nid] = r->ids_bytes;
    r->id_hash[r->nid] = (uint32_t)hv;
    r->ids_bytes += len + 1;
    r->slots[at] = (uint32_t)r->nid + 1;
    return (uint32_t)r->nid++;
}

void pjson_grant_refs_add(struct pjson_grant_refs *r, const char *user_id, size_t ulen,
                          uint32_t role, const char *division_id, size_t dlen)
{
    uint32_t d = 0;
    for (; d < r->ndivs; d++)
        if (strlen(r->divs[d]) == dlen && memcmp(r->divs[d], division_id, dlen) == 0)
            break;
    if (d == r->ndivs) {
        util_grow((void **)&r->divs, &r->divs_cap, r->ndivs + 1, sizeof(char *));
        r->divs[r->ndivs++] = xstrndup(division_id, dlen);
    }
    /* A user holding the role in several divisions comes once per division, one after the
     * other: the previous reference's id is reused without a look-up. */
    uint32_t u;
    if (r->n > 0 && r->v[r->n - 1].role == role &&
        grant_id_is(r, r->v[r->n - 1].user, user_id, ulen))
        u = r->v[r->n - 1].user;
    else
        u = grant_id_intern(r, user_id, ulen);
    util_grow((void **)&r->v, &r->cap, r->n + 1, sizeof(*r->v));
    r->v[r->n++] = (struct grant_ref){u, role, d};
}

int pjson_grant_refs_resolve(struct pjson_grant_refs *r, struct mdl_snapshot *s,
                             struct pjson_grant_stats *st, char *err, size_t errlen)
{
    memset(st, 0, sizeof(*st));
    if (mdl_index_users(s, err, errlen) != 0)
        return -1;
    uint32_t *qual = xmalloc((r->ndivs + 1) * sizeof(uint32_t));
    for (size_t d = 0; d < r->ndivs; d++) {
        qual[d] = MDL_NONE;
        for (size_t q = 0; q < s->nquals && qual[d] == MDL_NONE; q++)
            if (s->quals[q].id && strcmp(s->quals[q].id, r->divs[d]) == 0)
                qual[d] = (uint32_t)q;
        if (qual[d] == MDL_NONE && s->nquals < MDL_MAX_QUALS) {
            qual[d] = mdl_add_qual(s, &(struct mdl_qual){.id = r->divs[d]});
            st->unknown_divisions++;
        }
    }
    /* each interned id looked up once */
    uint32_t *user = xmalloc((r->nid + 1) * sizeof(uint32_t));
    for (size_t i = 0; i < r->nid; i++)
        user[i] = mdl_find_user_by_id(s, r->ids + r->id_off[i]);
    uint32_t last_user = MDL_NONE, last_role = MDL_NONE;
    for (size_t i = 0; i < r->n; i++) {
        const struct grant_ref *g = &r->v[i];
        uint32_t u = user[g->user];
        if (u == MDL_NONE) {
            /* one holder per (user, role) entry: a page names a subject once with all its
             * divisions, which come here one after the other */
            if (last_user != g->user || last_role != g->role) {
                s->roles[g->role].other_holders++;
                st->unknown_users++;
                last_user = g->user;
                last_role = g->role;
            }
            continue;
        }
        if (qual[g->div] == MDL_NONE)
            continue; /* more divisions than a snapshot can name: not a real org */
        mdl_user_add_grant(s, u, g->role, qual[g->div], 0);
        st->grants++;
    }
    free(user);
    free(qual);
    return 0;
}
