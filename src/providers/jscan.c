/* jscan.c — strict JSON pull reader (contract in jscan.h).
 *
 * Hot loop: the bytes of strings (most of a page is ids and names). Strings are scanned sixteen
 * (SSE2, every x86-64) or eight (elsewhere) bytes at a time until a byte needs a look (quote,
 * backslash, control character, non-ASCII); that byte is then handled alone. Containers are tracked
 * with one byte per level (object or array), so skipping needs no recursion.
 */
#include "providers/jscan.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "rolesync/util.h"

/* Messages (compared by address in jscan_truncated / jscan_too_deep). */
static const char M_TRUNC[] = "input ends inside a value";
static const char M_DEEP[] = "nested too deep";
static const char M_CHAR[] = "unexpected character";
static const char M_NUMBER[] = "invalid number";
static const char M_LITERAL[] = "invalid literal";
static const char M_ESCAPE[] = "invalid escape in string";
static const char M_SURROGATE[] = "unpaired UTF-16 surrogate in string";
static const char M_CONTROL[] = "control character in string";
static const char M_UTF8[] = "invalid utf-8";
static const char M_OBJSEP[] = "expected ',' or '}'";
static const char M_ARRSEP[] = "expected ',' or ']'";
static const char M_KEY[] = "expected a quoted member name";
static const char M_COLON[] = "expected ':'";
static const char M_TRAILING[] = "trailing data";
static const char M_MISUSE[] = "reader used out of order";
static const char M_NULNAME[] = "member name holds U+0000";

static int fail(struct jscan *j, const char *at, const char *msg)
{
    if (!j->err) {
        j->err = msg;
        j->err_at = (size_t)(at - j->base);
    }
    j->p = j->end;
    return -1;
}

void jscan_init(struct jscan *j, const char *buf, size_t len, int max_depth)
{
    memset(j, 0, sizeof(*j));
    j->base = j->p = buf;
    j->end = buf + len;
    if (max_depth < 1)
        max_depth = 1;
    if (max_depth > JSCAN_DEPTH_CAP)
        max_depth = JSCAN_DEPTH_CAP;
    j->max_depth = max_depth;
}

static inline const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* Byte classes inside a string: 0 plain, 1 quote, 2 backslash, 3 control, 4 non-ASCII. */
static const unsigned char str_class[256] = {
    [0x00 ... 0x1f] = 3,
    ['"'] = 1,
    ['\\'] = 2,
    [0x80 ... 0xff] = 4,
};

/* Any byte of w that is a quote, a backslash, below 0x20 or above 0x7f (exact as "any"). */
static inline uint64_t special8(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t q = w ^ (ones * (unsigned char)'"');
    uint64_t b = w ^ (ones * (unsigned char)'\\');
    uint64_t zq = (q - ones) & ~q;
    uint64_t zb = (b - ones) & ~b;
    uint64_t lt = (w - ones * 0x20u) & ~w;
    return (zq | zb | lt | w) & high;
}

static inline int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* Four hex digits at p: their value, or -1 when one is not a hex digit, or -2 when the input
 * ends before a non-digit or the fourth digit is seen. */
static inline int hex4(const char *p, const char *end)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        if (p + i >= end)
            return -2;
        int d = hexval((unsigned char)p[i]);
        if (d < 0)
            return -1;
        v = (v << 4) | d;
    }
    return v;
}

/* Length of the one UTF-8 sequence at p when util_utf8_valid() (the project's one definition
 * of valid UTF-8) accepts it; 0 when it is invalid; SIZE_MAX when the input ends inside a
 * sequence that is valid so far. */
static inline size_t utf8_seq(const char *p, const char *end)
{
    unsigned char c = (unsigned char)p[0];
    size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2, bad, have = (size_t)(end - p);
    if (len <= have)
        return util_utf8_valid(p, len, &bad) ? len : 0;
    /* Cut short: complete it with the smallest continuation bytes that keep it valid where
     * possible (0x80, or 0x90/0xA0 after F0/E0) and ask the same question. */
    char tmp[4];
    memcpy(tmp, p, have);
    for (size_t i = have; i < len; i++)
        tmp[i] = (char)(i == 1 && c == 0xE0 ? 0xA0 : i == 1 && c == 0xF0 ? 0x90 : 0x80);
    return util_utf8_valid(tmp, len, &bad) ? SIZE_MAX : 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* One escape at p (backslash included), already validated by a read: its text into o (at most
 * 4 bytes); returns the bytes written and moves *pp past the escape. */
static size_t decode_escape(const char **pp, const char *end, char *o)
{
    const char *p = *pp;
    char e = p[1];
    *pp = p + 2;
    switch (e) {
    case 'b':
        *o = '\b';
        return 1;
    case 'f':
        *o = '\f';
        return 1;
    case 'n':
        *o = '\n';
        return 1;
    case 'r':
        *o = '\r';
        return 1;
    case 't':
        *o = '\t';
        return 1;
    case 'u': {
        unsigned cp = (unsigned)hex4(p + 2, end);
        *pp = p + 6;
        if (cp >= 0xD800 && cp <= 0xDBFF) { /* the low half was checked by the read */
            unsigned lo = (unsigned)hex4(p + 8, end);
            *pp = p + 12;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        return put_utf8(o, cp);
    }
    default: /* '"', '\\', '/' */
        *o = e;
        return 1;
    }
}

#if defined(__SSE2__)
/* The common string: plain ASCII up to its closing quote, with at least sixteen bytes of input
 * after each block looked at. With p at the opening quote, returns the length of the text, or
 * SIZE_MAX when anything else comes first (an escape, a control or non-ASCII byte) or the end
 * of the input is near: scan_string then reads the string from the start, with every check. */
static inline size_t plain_string(const char *p, const char *end)
{
    const char *q = p + 1;
    while (end - q >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)q);
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')),
                                              _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))),
                                 _mm_cmplt_epi8(x, _mm_set1_epi8(0x20)));
        unsigned mask = (unsigned)_mm_movemask_epi8(m);
        if (mask) {
            q += __builtin_ctz(mask);
            return *q == '"' ? (size_t)(q - (p + 1)) : SIZE_MAX;
        }
        q += 16;
    }
    return SIZE_MAX;
}
#endif

/* A string starting at j->p (the opening quote). */
static int scan_string(struct jscan *j, struct jscan_val *v)
{
    const char *p = j->p + 1, *end = j->end, *start = p;
    bool esc = false;
    for (;;) {
#if defined(__SSE2__)
        /* Sixteen bytes per step: quote, backslash, and (as signed bytes) everything below 0x20
         * or above 0x7f, which is one signed compare. */
        while (end - p >= 16) {
            __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
            __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')),
                                                  _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))),
                                     _mm_cmplt_epi8(x, _mm_set1_epi8(0x20)));
            unsigned mask = (unsigned)_mm_movemask_epi8(m);
            if (mask) {
                p += __builtin_ctz(mask);
                goto special;
            }
            p += 16;
        }
#endif
        while (end - p >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            if (special8(w))
                break;
            p += 8;
        }
        while (p < end && str_class[(unsigned char)*p] == 0)
            p++;
        if (p >= end)
            return fail(j, p, M_TRUNC);
#if defined(__SSE2__)
    special:
#endif
        switch (str_class[(unsigned char)*p]) { /* never 0: both ways here stop on a special byte */
        case 1:
            v->type = JSCAN_STRING;
            v->raw = start;
            v->len = (size_t)(p - start);
            v->escaped = esc;
            v->integer = false;
            j->p = p + 1;
            j->first = false;
            return 0;
        case 2: {
            esc = true;
            if (end - p < 2)
                return fail(j, end, M_TRUNC);
            char e = p[1];
            if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' ||
                e == 't') {
                p += 2;
                break;
            }
            if (e != 'u')
                return fail(j, p, M_ESCAPE);
            int cp = hex4(p + 2, end);
            if (cp == -2)
                return fail(j, end, M_TRUNC);
            if (cp < 0)
                return fail(j, p, M_ESCAPE);
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return fail(j, p, M_SURROGATE);
            p += 6;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                /* must be followed by \u and a low surrogate; decided as soon as the bytes
                 * that are there allow it */
                if (p >= end || (p[0] == '\\' && p + 1 >= end))
                    return fail(j, end, M_TRUNC);
                if (p[0] != '\\' || p[1] != 'u')
                    return fail(j, p - 6, M_SURROGATE);
                int lo = hex4(p + 2, end);
                if (lo == -2)
                    return fail(j, end, M_TRUNC);
                if (lo < 0)
                    return fail(j, p, M_ESCAPE);
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return fail(j, p - 6, M_SURROGATE);
                p += 6;
            }
            break;
        }
        case 3:
            return fail(j, p, M_CONTROL);
        default: {
            size_t n = utf8_seq(p, end);
            if (n == SIZE_MAX)
                return fail(j, end, M_TRUNC);
            if (n == 0)
                return fail(j, p, M_UTF8);
            p += n;
            break;
        }
        }
    }
}

static int scan_number(struct jscan *j, const char *p, struct jscan_val *v)
{
    const char *s = p, *end = j->end;
    bool integer = true;
    if (*p == '-')
        p++;
    if (p >= end)
        return fail(j, p, M_TRUNC);
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    } else {
        return fail(j, p, M_NUMBER);
    }
    if (p < end && *p == '.') {
        integer = false;
        p++;
        if (p >= end)
            return fail(j, p, M_TRUNC);
        if (*p < '0' || *p > '9')
            return fail(j, p, M_NUMBER);
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        integer = false;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end)
            return fail(j, p, M_TRUNC);
        if (*p < '0' || *p > '9')
            return fail(j, p, M_NUMBER);
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    /* "01", "1x": a number runs into something that cannot follow a value. */
    if (p < end && ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
                    (*p >= 'A' && *p <= 'Z') || *p == '.' || *p == '+' || *p == '-'))
        return fail(j, p, M_NUMBER);
    v->type = JSCAN_NUMBER;
    v->raw = s;
    v->len = (size_t)(p - s);
    v->escaped = false;
    v->integer = integer;
    j->p = p;
    j->first = false;
    return 0;
}

static int scan_literal(struct jscan *j, const char *p, const char *word, enum jscan_type t,
                        struct jscan_val *v)
{
    size_t n = strlen(word), have = (size_t)(j->end - p);
    if (have < n)
        return fail(j, p, memcmp(p, word, have) == 0 ? M_TRUNC : M_LITERAL);
    if (memcmp(p, word, n) != 0)
        return fail(j, p, M_LITERAL);
    const char *q = p + n;
    if (q < j->end &&
        ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9')))
        return fail(j, q, M_LITERAL);
    v->type = t;
    v->raw = p;
    v->len = n;
    v->escaped = v->integer = false;
    j->p = q;
    j->first = false;
    return 0;
}

int jscan_value(struct jscan *j, struct jscan_val *v)
{
    v->type = JSCAN_NONE;
    if (j->err)
        return -1;
    const char *p = skip_ws(j->p, j->end);
    if (p >= j->end)
        return fail(j, p, M_TRUNC);
    switch (*p) {
    case '{':
    case '[':
        if (j->depth >= j->max_depth)
            return fail(j, p, M_DEEP);
        j->is_obj[j->depth++] = (*p == '{');
        v->type = *p == '{' ? JSCAN_OBJECT : JSCAN_ARRAY;
        v->raw = p;
        v->len = 1;
        v->escaped = v->integer = false;
        j->p = p + 1;
        j->first = true;
        return 0;
    case '"': {
#if defined(__SSE2__)
        size_t n = plain_string(p, j->end);
        if (n != SIZE_MAX) {
            v->type = JSCAN_STRING;
            v->raw = p + 1;
            v->len = n;
            v->escaped = v->integer = false;
            j->p = p + n + 2;
            j->first = false;
            return 0;
        }
#endif
        j->p = p;
        return scan_string(j, v);
    }
    case 't':
        return scan_literal(j, p, "true", JSCAN_TRUE, v);
    case 'f':
        return scan_literal(j, p, "false", JSCAN_FALSE, v);
    case 'n':
        return scan_literal(j, p, "null", JSCAN_NULL, v);
    default:
        if (*p == '-' || (*p >= '0' && *p <= '9'))
            return scan_number(j, p, v);
        return fail(j, p, M_CHAR);
    }
}

/* Closing bracket at p of the innermost container. */
static int close_container(struct jscan *j, const char *p)
{
    j->depth--;
    j->p = p + 1;
    j->first = false;
    return 0;
}

/* An escaped string whose text holds a NUL (only "\u0000" can put one there). */
static bool has_nul(const struct jscan_val *v)
{
    const char *p = v->raw, *end = v->raw + v->len;
    while ((p = memchr(p, '\\', (size_t)(end - p))) != NULL) {
        char t[4];
        if (decode_escape(&p, end, t) == 1 && t[0] == '\0')
            return true;
    }
    return false;
}

int jscan_member(struct jscan *j, struct jscan_val *key)
{
    key->type = JSCAN_NONE;
    if (j->err)
        return -1;
    if (j->depth == 0 || !j->is_obj[j->depth - 1])
        return fail(j, j->p, M_MISUSE);
    const char *p = skip_ws(j->p, j->end);
    if (p >= j->end)
        return fail(j, p, M_TRUNC);
    if (*p == '}')
        return close_container(j, p);
    if (!j->first) {
        if (*p != ',')
            return fail(j, p, M_OBJSEP);
        p = skip_ws(p + 1, j->end);
        if (p >= j->end)
            return fail(j, p, M_TRUNC);
    }
    if (*p != '"')
        return fail(j, p, M_KEY);
#if defined(__SSE2__)
    /* Names are half of all the strings of a users page: the plain ones are read here. */
    size_t n = plain_string(p, j->end);
    if (n != SIZE_MAX) {
        key->type = JSCAN_STRING;
        key->raw = p + 1;
        key->len = n;
        key->escaped = false;
        key->integer = false;
        p = skip_ws(p + n + 2, j->end);
        goto colon;
    }
#endif
    j->p = p;
    if (scan_string(j, key) < 0)
        return -1;
    if (key->escaped && has_nul(key))
        return fail(j, p, M_NULNAME);
    p = skip_ws(j->p, j->end);
#if defined(__SSE2__)
colon:
#endif
    if (p >= j->end)
        return fail(j, p, M_TRUNC);
    if (*p != ':')
        return fail(j, p, M_COLON);
    j->p = p + 1;
    j->first = false;
    return 1;
}

int jscan_element(struct jscan *j)
{
    if (j->err)
        return -1;
    if (j->depth == 0 || j->is_obj[j->depth - 1])
        return fail(j, j->p, M_MISUSE);
    const char *p = skip_ws(j->p, j->end);
    if (p >= j->end)
        return fail(j, p, M_TRUNC);
    if (*p == ']')
        return close_container(j, p);
    if (!j->first) {
        if (*p != ',')
            return fail(j, p, M_ARRSEP);
        p++;
    }
    /* A ']' right after a ',' is found by the value read that follows. */
    j->p = p;
    j->first = false;
    return 1;
}

int jscan_skip_rest(struct jscan *j)
{
    if (j->err)
        return -1;
    int outer = j->depth - 1;
    if (outer < 0)
        return fail(j, j->p, M_MISUSE);
    while (j->depth > outer) {
        int r;
        if (j->is_obj[j->depth - 1]) {
            struct jscan_val k;
            r = jscan_member(j, &k);
        } else {
            r = jscan_element(j);
        }
        if (r < 0)
            return -1;
        if (r == 0)
            continue; /* one level closed */
        struct jscan_val v;
        if (jscan_value(j, &v) < 0) /* a container value opens a level: the loop walks it */
            return -1;
    }
    return 0;
}

int jscan_skip(struct jscan *j)
{
    struct jscan_val v;
    if (jscan_value(j, &v) < 0)
        return -1;
    if (v.type == JSCAN_OBJECT || v.type == JSCAN_ARRAY)
        return jscan_skip_rest(j);
    return 0;
}

int jscan_end(struct jscan *j)
{
    if (j->err)
        return -1;
    if (j->depth != 0)
        return fail(j, j->p, M_MISUSE);
    const char *p = skip_ws(j->p, j->end);
    if (p < j->end)
        return fail(j, p, M_TRAILING);
    j->p = p;
    return 0;
}

const char *jscan_error(const struct jscan *j, size_t *at)
{
    if (at)
        *at = j->err ? j->err_at : 0;
    return j->err;
}

bool jscan_truncated(const struct jscan *j)
{
    return j->err == M_TRUNC;
}

bool jscan_too_deep(const struct jscan *j)
{
    return j->err == M_DEEP;
}

bool jscan_trailing(const struct jscan *j)
{
    return j->err == M_TRAILING;
}

size_t jscan_unescape(const struct jscan_val *v, char *out)
{
    const char *p = v->raw, *end = v->raw + v->len;
    char *o = out;
    if (!v->escaped) {
        memcpy(out, v->raw, v->len);
        out[v->len] = '\0';
        return v->len;
    }
    while (p < end) {
        const char *bs = memchr(p, '\\', (size_t)(end - p));
        size_t plain = bs ? (size_t)(bs - p) : (size_t)(end - p);
        memcpy(o, p, plain);
        o += plain;
        p += plain;
        if (bs)
            o += decode_escape(&p, end, o);
    }
    *o = '\0';
    return (size_t)(o - out);
}

bool jscan_int64(const struct jscan_val *v, int64_t *out)
{
    *out = 0;
    if (v->type != JSCAN_NUMBER || !v->integer)
        return false;
    const char *p = v->raw, *end = v->raw + v->len;
    bool neg = *p == '-';
    if (neg)
        p++;
    uint64_t acc = 0;
    bool over = false;
    for (; p < end; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (acc > (UINT64_MAX - d) / 10)
            over = true;
        else
            acc = acc * 10 + d;
    }
    if (neg)
        *out = (over || acc >= (uint64_t)INT64_MAX + 1) ? INT64_MIN : -(int64_t)acc;
    else
        *out = (over || acc > (uint64_t)INT64_MAX) ? INT64_MAX : (int64_t)acc;
    return true;
}

bool jscan_eq(const struct jscan_val *v, const char *s)
{
    size_t n = strlen(s);
    if (v->type != JSCAN_STRING)
        return false;
    if (!v->escaped)
        return v->len == n && memcmp(v->raw, s, n) == 0;
    /* Decoded as compared, one escape at a time: no buffer, no length limit. */
    const char *p = v->raw, *end = v->raw + v->len;
    size_t k = 0;
    while (p < end) {
        char t[4];
        size_t tl = 1;
        if (*p == '\\')
            tl = decode_escape(&p, end, t);
        else
            t[0] = *p++;
        if (tl > n - k || memcmp(s + k, t, tl) != 0)
            return false;
        k += tl;
    }
    return k == n;
}

const char *jscan_type_name(enum jscan_type t)
{
    switch (t) {
    case JSCAN_NULL:
        return "null";
    case JSCAN_FALSE:
    case JSCAN_TRUE:
        return "boolean";
    case JSCAN_NUMBER:
        return "number";
    case JSCAN_STRING:
        return "string";
    case JSCAN_OBJECT:
        return "object";
    case JSCAN_ARRAY:
        return "array";
    case JSCAN_NONE:
        break;
    }
    return "nothing";
}
