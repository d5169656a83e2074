/* sim_util.c — tenantsim helpers: string builder, random ids, durations, globs, parsing. */
#include "sim.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

static void sb_reserve(sim_sb *sb, size_t extra)
{
    size_t need = sb->len + extra + 1;
    if (need <= sb->cap)
        return;
    size_t c = sb->cap < 256 ? 256 : sb->cap;
    while (c < need)
        c *= 2;
    sb->buf = xrealloc(sb->buf, c);
    sb->cap = c;
}

void sb_putn(sim_sb *sb, const char *s, size_t n)
{
    sb_reserve(sb, n);
    memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
}

void sb_puts(sim_sb *sb, const char *s)
{
    sb_putn(sb, s, strlen(s));
}

void sb_putc(sim_sb *sb, char c)
{
    sb_putn(sb, &c, 1);
}

void sb_printf(sim_sb *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    sb_reserve(sb, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

void sb_json_str(sim_sb *sb, const char *s)
{
    if (!s) {
        sb_puts(sb, "null");
        return;
    }
    sb_putc(sb, '"');
    const char *run = s;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= 0x20 && *p != '"' && *p != '\\')
            continue;
        sb_putn(sb, run, (size_t)((const char *)p - run));
        switch (*p) {
        case '"':
            sb_puts(sb, "\\\"");
            break;
        case '\\':
            sb_puts(sb, "\\\\");
            break;
        case '\n':
            sb_puts(sb, "\\n");
            break;
        case '\r':
            sb_puts(sb, "\\r");
            break;
        case '\t':
            sb_puts(sb, "\\t");
            break;
        default:
            sb_printf(sb, "\\u%04x", *p);
            break;
        }
        run = (const char *)p + 1;
    }
    sb_puts(sb, run);
    sb_putc(sb, '"');
}

void sb_free(sim_sb *sb)
{
    free(sb->buf);
    sb->buf = NULL;
    sb->len = sb->cap = 0;
}

char *sb_steal(sim_sb *sb)
{
    char *b = sb->buf ? sb->buf : xstrdup("");
    sb->buf = NULL;
    sb->len = sb->cap = 0;
    return b;
}

static void fill_random(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t k = getrandom(p, n, 0);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            /* getrandom cannot fail on Linux >= 3.17 short of a bad pointer; be safe anyway. */
            for (size_t i = 0; i < n; i++)
                p[i] = (unsigned char)rand();
            return;
        }
        p += k;
        n -= (size_t)k;
    }
}

void sim_guid(char out[37])
{
    unsigned char b[16];
    fill_random(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

void sim_random_hex(char *out, size_t nhex)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[64];
    size_t done = 0;
    while (done < nhex) {
        fill_random(b, sizeof b);
        for (size_t i = 0; i < sizeof b && done < nhex; i++)
            out[done++] = hex[b[i] & 15];
    }
    out[nhex] = '\0';
}

double sim_random01(void)
{
    uint64_t v;
    fill_random(&v, sizeof v);
    return (double)(v >> 11) / (double)(1ULL << 53);
}

uint64_t sim_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int64_t sim_parse_duration_ms(const char *s)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0)
        return -1;
    double mult;
    if (*end == '\0' || strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else
        return -1;
    double ms = v * mult;
    if (ms > 9e15)
        return -1;
    return (int64_t)(ms + 0.5);
}

bool sim_glob(const char *pat, const char *s)
{
    /* Iterative glob with single-star backtracking: linear enough for request paths. */
    const char *star = NULL, *mark = NULL;
    while (*s) {
        if (*pat == '*') {
            star = pat++;
            mark = s;
        } else if (*pat == '?' || *pat == *s) {
            pat++;
            s++;
        } else if (star) {
            pat = star + 1;
            s = ++mark;
        } else {
            return false;
        }
    }
    while (*pat == '*')
        pat++;
    return *pat == '\0';
}

char *sim_strlower(const char *s)
{
    char *d = xstrdup(s ? s : "");
    for (char *p = d; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return d;
}

void sim_form_decode(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '+') {
            *w++ = ' ';
        } else if (*r == '%' && util_hex_value(r[1]) >= 0 && util_hex_value(r[2]) >= 0) {
            *w++ = (char)(util_hex_value(r[1]) * 16 + util_hex_value(r[2]));
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

/* A string holding a NUL (sent escaped, "\u0000"): json-c keeps it, but every C string the
 * tenant stores would silently end there, so the body counts as malformed. */
static bool has_nul_string(json_object *o)
{
    switch (json_object_get_type(o)) {
    case json_type_string:
        return strlen(json_object_get_string(o)) != (size_t)json_object_get_string_len(o);
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(o); i++)
            if (has_nul_string(json_object_array_get_idx(o, i)))
                return true;
        return false;
    case json_type_object: {
        json_object_object_foreach(o, k, v)
        {
            (void)k;
            if (has_nul_string(v))
                return true;
        }
        return false;
    }
    default:
        return false;
    }
}

json_object *sim_json_parse(const char *buf, size_t len)
{
    if (!buf || len == 0 || len > INT32_MAX)
        return NULL;
    json_tokener *tok = json_tokener_new_ex(64);
    if (!tok)
        return NULL;
    /* Strict: the platforms' parsers reject trailing commas, single quotes, bytes that are not
     * UTF-8 and the like; what they reject must never reach the tenant (its listings would stop
     * being JSON). */
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, buf, (int)len);
    if (json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(o);
        o = NULL;
    } else {
        /* Anything but whitespace after the value makes the body malformed. */
        for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
            if (!isspace((unsigned char)buf[i])) {
                json_object_put(o);
                o = NULL;
                break;
            }
        }
    }
    json_tokener_free(tok);
    if (o && has_nul_string(o)) {
        json_object_put(o);
        o = NULL;
    }
    return o;
}

char *sim_json_dup_string(json_object *o)
{
    return xstrdup(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

const char *sim_json_str(json_object *obj, const char *key)
{
    json_object *v;
    if (!obj || !json_object_is_type(obj, json_type_object) ||
        !json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

bool sim_parse_int(const char *s, long long *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end != '\0' || isspace((unsigned char)*s))
        return false;
    *out = v;
    return true;
}

void sim_free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static size_t decode(char *out, const char *s, size_t n, bool keep_slash)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = util_hex_value(s[i + 1])) >= 0 &&
            (lo = util_hex_value(s[i + 2])) >= 0) {
            int ch = hi << 4 | lo;
            if (!(keep_slash && (ch == '/' || ch == '%'))) {
                out[o++] = (char)ch;
                i += 2;
                continue;
            }
        }
        out[o++] = s[i];
    }
    out[o] = '\0';
    return o;
}

size_t sim_unescape_keep_slash(char *s)
{
    return decode(s, s, strlen(s), true);
}

char *sim_pct_decode(const char *s, size_t n)
{
    char *out = xmalloc(n + 1);
    decode(out, s, n, false);
    return out;
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

char *sim_b64_decode(const char *s)
{
    size_t n = strlen(s);
    char *out = xmalloc(n + 1);
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=')
            break;
        int v = b64val((unsigned char)s[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    return out;
}

char *sim_b64url_encode(const void *data, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *p = data;
    char *out = xmalloc(n / 3 * 4 + 5), *o = out;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        *o++ = abc[v >> 18];
        *o++ = abc[(v >> 12) & 63];
        *o++ = abc[(v >> 6) & 63];
        *o++ = abc[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0);
        *o++ = abc[v >> 18];
        *o++ = abc[(v >> 12) & 63];
        if (i + 1 < n)
            *o++ = abc[(v >> 6) & 63];
    }
    *o = '\0';
    return out;
}

void sb_json_uri(sim_sb *sb, const char *prefix, const char *id)
{
    char *enc = util_pct_encode(id ? id : "");
    char *uri = xasprintf("%s%s", prefix, enc);
    sb_json_str(sb, uri);
    free(uri);
    free(enc);
}

bool sim_path_match(const char *pattern, const char *path, bool icase, char **params, int maxp)
{
    int np = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p != '/' || *s != '/')
            goto nomatch;
        p++;
        s++;
        const char *pe = strchr(p, '/'), *se = strchr(s, '/');
        size_t pl = pe ? (size_t)(pe - p) : strlen(p);
        size_t sl = se ? (size_t)(se - s) : strlen(s);
        if (pl > 0 && p[0] == '{') {
            if (sl == 0 || np >= maxp)
                goto nomatch;
            params[np++] = sim_pct_decode(s, sl);
        } else if (pl != sl || (icase ? strncasecmp(p, s, pl) : strncmp(p, s, pl)) != 0) {
            goto nomatch;
        }
        p += pl;
        s += sl;
    }
    if (*p == '\0' && *s == '\0')
        return true;
nomatch:
    for (int i = 0; i < np; i++) {
        free(params[i]);
        params[i] = NULL;
    }
    return false;
}
