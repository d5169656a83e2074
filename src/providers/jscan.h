/* jscan.h — a strict, non-allocating JSON pull reader over a complete buffer (RFC 8259).
 *
 * Why it exists: a steady-state cycle reads every user of both tenants (B2 of
 * spec/performance.md: 93 MB of JSON for 50,000 users a side), and building json-c's tree of
 * that — one allocation per value, then one free per value — was more than half of the cycle's
 * CPU, for a page of which the parser keeps five fields per user. jscan walks the bytes once and
 * hands out spans of the buffer; nothing is allocated, nothing is copied unless a string holds
 * an escape. The user-page parsers (gjs_parse_users_page, ijs_parse_users_page) use it; every
 * other body still goes through json-c (pjson_parse), where a tree is the simpler tool.
 *
 * What is accepted: exactly RFC 8259 JSON, and stricter than json-c's strict mode, which takes
 * NaN, Infinity, "1.", "00", raw control characters in strings, and unpaired UTF-16 surrogates
 * (as U+FFFD). Here all of those are errors, and so is anything util_utf8_valid() refuses
 * (overlong forms, encoded surrogates, code points above U+10FFFF) and a NUL byte anywhere.
 * One rule goes beyond RFC 8259: a member name holding U+0000 ("\u0000") is refused — names
 * are C strings to every consumer (json-c cuts such a name at the NUL, so "id\u0000x" would be
 * a second "id" to it), and no platform sends one.
 * Strings are checked when they are read or skipped, so a value the caller skips is validated
 * like one it reads: a reader that returns success has seen a well-formed text up to there.
 *
 * Use: jscan_init(), then one jscan_value() for the root; for an object or array value, call
 * jscan_member() / jscan_element() until they return 0, reading each member's value with
 * jscan_value() (or jscan_skip() to pass over it), and finally jscan_end(). Every call after the
 * first error returns -1 again (the error is sticky) and leaves the first message in place.
 * Nesting deeper than the limit given to jscan_init() (clamped to 1..JSCAN_DEPTH_CAP) is an
 * error ("nested too deep", jscan_too_deep()).
 *
 * Ownership: the reader keeps pointers into the caller's buffer, which must outlive it and every
 * span taken from it. No function allocates.
 */
#ifndef ROLESYNC_JSCAN_H
#define ROLESYNC_JSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum jscan_type {
    JSCAN_NONE = 0, /* no value (an absent member, in callers' records) */
    JSCAN_NULL,
    JSCAN_FALSE,
    JSCAN_TRUE,
    JSCAN_NUMBER,
    JSCAN_STRING,
    JSCAN_OBJECT, /* only the opening '{' has been read */
    JSCAN_ARRAY,  /* only the opening '[' has been read */
};

/* One value as read. For a string, `raw` is its bytes between the quotes, still escaped when
 * `escaped` is true (then jscan_unescape() gives the text); for a number, its literal. */
struct jscan_val {
    enum jscan_type type;
    const char *raw;
    size_t len;
    bool escaped; /* string: holds at least one backslash escape */
    bool integer; /* number: no fraction, no exponent */
};

#define JSCAN_DEPTH_CAP 256 /* the deepest limit jscan_init() accepts */

struct jscan {
    const char *base, *p, *end;
    int depth, max_depth;
    bool is_obj[JSCAN_DEPTH_CAP]; /* per open level: object (true) or array */
    bool first;      /* just inside '{' or '[': no comma before the next member or element */
    const char *err; /* first error (a static string), NULL while there is none */
    size_t err_at;   /* byte offset of the first error */
};

void jscan_init(struct jscan *j, const char *buf, size_t len, int max_depth);

/* Read the next value: a scalar whole, an object or array up to its opening bracket. 0 or -1. */
int jscan_value(struct jscan *j, struct jscan_val *v);

/* Inside an object: 1 when a member follows (its key in *key, the ':' consumed; read its value
 * next), 0 at the closing '}' (consumed), -1 on error. */
int jscan_member(struct jscan *j, struct jscan_val *key);

/* Inside an array: 1 when an element follows (read it next), 0 at the closing ']' (consumed),
 * -1 on error. */
int jscan_element(struct jscan *j);

/* Pass over the next value, validating it like a read. 0 or -1. */
int jscan_skip(struct jscan *j);

/* Pass over the rest of the innermost open object or array (members or elements not yet read
 * included), up to and including its closing bracket. 0 or -1. */
int jscan_skip_rest(struct jscan *j);

/* Only white space left: 0; else -1 ("trailing data"). */
int jscan_end(struct jscan *j);

/* The first error: its message ("unexpected character", "input ends inside a value", ...) and
 * its byte offset; NULL while there is none. */
const char *jscan_error(const struct jscan *j, size_t *at);

/* True when j's error is that the input ended inside a value. */
bool jscan_truncated(const struct jscan *j);

/* True when j's error is the nesting limit. */
bool jscan_too_deep(const struct jscan *j);

/* True when j's error is data after the root value (from jscan_end). */
bool jscan_trailing(const struct jscan *j);

/* The text of a string value into out (at least v->len + 1 bytes: text is never longer than its
 * escaped form), NUL-terminated; returns its length in bytes (it may contain "\u0000" as a NUL
 * byte). The value must come from a successful read: escapes were validated then. */
size_t jscan_unescape(const struct jscan_val *v, char *out);

/* A number that is a JSON integer, saturated at INT64_MIN / INT64_MAX like json-c. false when
 * v is not an integer number. */
bool jscan_int64(const struct jscan_val *v, int64_t *out);

/* True when a string value's text equals the NUL-terminated `s`: raw bytes for an unescaped
 * value, decoded one escape at a time for an escaped one (no length limit, no allocation). */
bool jscan_eq(const struct jscan_val *v, const char *s);

/* "null", "boolean", "number", "string", "object", "array" — for messages. */
const char *jscan_type_name(enum jscan_type t);

#endif
