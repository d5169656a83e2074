/* fuzz_identity_users_diff.c — differential libFuzzer target: ijs_parse_users_page (jscan, no
 * tree) against the json-c implementation it replaced, kept here verbatim as the reference
 * (ref_parse_users_page, from identity_json.c at a519048, with its static opt_id helper).
 *
 * For every input both parsers run on fresh snapshots (with the same few roles already in) and
 * fresh reference lists. The new parser is stricter by design (RFC 8259: it refuses NaN, "1.",
 * "00", raw tabs in strings, lone surrogates that json-c reads as U+FFFD, member names holding
 * "\u0000", ...), so:
 *   - NEW accepts  => OLD accepts, with the same count, the same users (id, email,
 *                     external_key, state, in order) and the same role references (count, and
 *                     after resolving: the same role ids per user, in order, same stats);
 *   - OLD refuses  => NEW refuses (the same statement turned around);
 *   - NEW refuses, OLD accepts: allowed.
 * Either parser that refuses must leave its snapshot, references and count untouched and say
 * why. A violation prints the input and both verdicts and aborts (libFuzzer reports a crash).
 *
 * Environment switches (all off by default):
 *   USERS_DIFF_MESSAGES=1    also compare the error messages when both refuse and neither
 *                            message is a syntax-level one;
 *   USERS_DIFF_SKIP_NUL_KEYS=1  do not compare inputs with a member name holding "\u0000"
 *                            (json-c cuts such a name at the NUL; jscan refuses it);
 *   USERS_DIFF_VERBOSE=1     print both verdicts for every input (for running single files). */
#include <json-c/json.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/jscan.h"
#include "rolesync/model.h"
#include "providers/identity_json.h"
#include "rolesync/util.h"

/* ========================================================================================== */
/* Reference: the json-c users-page parser as it was (a519048:src/providers/identity_json.c)  */

/* Optional id member; "" and null read as absent. */
static int ref_opt_id(struct pjson_cur *c, struct json_object *obj, const char *key,
                      const char **out)
{
    struct json_object *v = NULL;
    *out = NULL;
    if (json_object_object_get_ex(obj, key, &v) && json_object_is_type(v, json_type_string) &&
        json_object_get_string_len(v) == 0)
        return 0;
    return pjson_get_string(c, obj, key, PJSON_ID, false, out);
}

struct ref_user_tmp {
    const char *id, *email;
    char *external_key;        /* malloc'd, lower case; NULL unless both parts are present */
    struct json_object *roles; /* validated array of ids */
};

static int ref_i_user(struct pjson_cur *c, struct json_object *e, struct ref_user_tmp *t)
{
    const char *email, *contact, *idp, *ext;
    memset(t, 0, sizeof(*t));
    if (pjson_expect_object(c, e) < 0 || pjson_get_string(c, e, "Id", PJSON_ID, true, &t->id) < 0 ||
        pjson_get_string(c, e, "Email", PJSON_NAME, false, &email) < 0 ||
        pjson_get_string(c, e, "ContactEmail", PJSON_NAME, false, &contact) < 0 ||
        ref_opt_id(c, e, "IdentityProviderId", &idp) < 0 ||
        pjson_get_string(c, e, "ExternalUserId", PJSON_NAME, false, &ext) < 0)
        return -1;
    /* A user who has not accepted the invitation has no Email yet (product.md 4.4). */
    t->email = email ? email : contact;
    /* RoleIds is nullable in the schema, but every user holds Tenant Member: a user without
     * the list has unknown roles, which must fail the page rather than read as "none". */
    if (pjson_get_array(c, e, "RoleIds", true, &t->roles) < 0)
        return -1;
    size_t mark = pjson_push_key(c, "RoleIds");
    size_t n = json_object_array_length(t->roles);
    for (size_t i = 0; i < n; i++) {
        size_t m2 = pjson_push_idx(c, i);
        if (pjson_check_string(c, json_object_array_get_idx(t->roles, i), PJSON_ID) < 0)
            return -1;
        pjson_pop(c, m2);
    }
    pjson_pop(c, mark);
    if (idp && ext) {
        char *k = xasprintf("%s/%s", idp, ext);
        t->external_key = util_strdup_fold(k);
        free(k);
    }
    return 0;
}

static int ref_parse_users_page(struct mdl_snapshot *s, struct pjson_role_refs *refs,
                                const char *body, size_t len, size_t *count, char *err,
                                size_t errlen)
{
    struct pjson_cur c;
    *count = 0;
    pjson_cur_init(&c, "identity users page", err, errlen);
    struct json_object *root = pjson_parse(&c, body, len);
    if (!root)
        return -1;
    if (pjson_expect_array(&c, root) < 0) {
        json_object_put(root);
        return -1;
    }
    size_t n = json_object_array_length(root);
    struct ref_user_tmp *t = xcalloc(n ? n : 1, sizeof(*t));
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t mark = pjson_push_idx(&c, i);
        rc = ref_i_user(&c, json_object_array_get_idx(root, i), &t[i]);
        pjson_pop(&c, mark);
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct mdl_user u = {.id = t[i].id,
                             .email = t[i].email,
                             .external_key = t[i].external_key,
                             .state = MDL_USER_ACTIVE};
        uint32_t ui = mdl_add_user(s, &u);
        size_t nr = json_object_array_length(t[i].roles);
        for (size_t k = 0; k < nr; k++)
            pjson_role_refs_add(refs, ui,
                                json_object_get_string(json_object_array_get_idx(t[i].roles, k)));
    }
    if (rc == 0)
        *count = n;
    for (size_t i = 0; i < n; i++)
        free(t[i].external_key);
    free(t);
    json_object_put(root);
    return rc;
}

/* ========================================================================================== */
/* The comparison                                                                             */

typedef int (*users_parser)(struct mdl_snapshot *, struct pjson_role_refs *, const char *, size_t,
                            size_t *, char *, size_t);

/* Roles both snapshots hold before the page (references to others are unknown ids). */
static const struct mdl_role SEED_ROLES[] = {
    {.id = "r1", .name = "R1"},
    {.id = "r2", .name = "R2"},
    {.id = "0d5c3c5e-1f5a-4b6e-9a0e-000000000001",
     .name = "Tenant Member",
     .builtin_key = "tenant-member"},
};
#define NSEED (sizeof(SEED_ROLES) / sizeof(SEED_ROLES[0]))

struct side {
    const char *name;
    struct mdl_snapshot *s;
    struct pjson_role_refs *refs;
    size_t count;
    int rc;
    char err[512];
};

static const uint8_t *cur_data;
static size_t cur_size;

static void dump_input(void)
{
    fprintf(stderr, "input (%zu bytes): \"", cur_size);
    for (size_t i = 0; i < cur_size && i < 4000; i++) {
        unsigned char ch = cur_data[i];
        if (ch == '"' || ch == '\\')
            fprintf(stderr, "\\%c", ch);
        else if (ch >= 0x20 && ch < 0x7f)
            fputc(ch, stderr);
        else
            fprintf(stderr, "\\x%02x", ch);
    }
    fprintf(stderr, "%s\"\n", cur_size > 4000 ? "..." : "");
}

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* json-c 0.16 (Debian 12) decodes a valid surrogate pair as U+FFFD when its high half has
 * (hi & 0x3E) == 0x36 (\\ud836, \\ud837, \\ud876, ... \\udbf7, whatever the low half);
 * jscan decodes them right (found by this fuzzer, then checked against every high surrogate
 * by hand: "\\ud836\\udc00" is EF BF BD from json-c, F0 9D A8 80 from jscan). Accepted pages
 * holding such an escape are not compared: the reference is wrong there. */
static bool has_jsonc_surrogate_defect(const uint8_t *d, size_t n)
{
    for (size_t i = 0; i + 6 <= n; i++) {
        if (d[i] != '\\' || d[i + 1] != 'u')
            continue;
        unsigned v = 0;
        int k = 2;
        for (; k < 6 && util_hex_value((char)d[i + k]) >= 0; k++)
            v = v * 16 + (unsigned)util_hex_value((char)d[i + k]);
        if (k == 6 && v >= 0xD800 && v <= 0xDBFF && (v & 0x3E) == 0x36)
            return true;
    }
    return false;
}

static const char *q(const char *s)
{
    return s ? s : "(null)";
}

static bool env_on(const char *name)
{
    const char *e = getenv(name);
    return e && *e == '1';
}

/* Does any member name of the body (a valid JSON text for jscan) hold a NUL once unescaped? */
static bool has_nul_key(const char *body, size_t size)
{
    struct jscan j;
    struct jscan_val v;
    jscan_init(&j, body, size, JSCAN_DEPTH_CAP);
    if (jscan_value(&j, &v) < 0)
        return false;
    if (v.type != JSCAN_OBJECT && v.type != JSCAN_ARRAY)
        return false;
    int depth = 1;
    bool found = false;
    char *buf = NULL;
    while (depth > 0 && !found) {
        int r;
        if (j.is_obj[j.depth - 1]) {
            struct jscan_val k;
            r = jscan_member(&j, &k);
            if (r == 1 && k.escaped) {
                buf = realloc(buf, k.len + 1);
                size_t n = jscan_unescape(&k, buf);
                found = memchr(buf, '\0', n) != NULL;
            }
        } else {
            r = jscan_element(&j);
        }
        if (r < 0)
            break;
        if (r == 0) {
            depth--;
            continue;
        }
        if (jscan_value(&j, &v) < 0)
            break;
        if (v.type == JSCAN_OBJECT || v.type == JSCAN_ARRAY)
            depth++;
    }
    free(buf);
    return found;
}

static void mismatch(const struct side *n, const struct side *o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
static void mismatch(const struct side *n, const struct side *o, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "\n*** identity users page differential mismatch: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    dump_input();
    fprintf(stderr, "NEW (jscan):  rc %d%s%s\n", n->rc, n->rc ? ", " : "", n->rc ? n->err : "");
    fprintf(stderr, "OLD (json-c): rc %d%s%s\n", o->rc, o->rc ? ", " : "", o->rc ? o->err : "");
    abort();
}

static void run_side(struct side *sd, const char *name, users_parser parse, const char *body,
                     size_t size)
{
    sd->name = name;
    sd->s = mdl_snapshot_new(CFG_API_IDENTITY);
    for (size_t i = 0; i < NSEED; i++)
        mdl_add_role(sd->s, &SEED_ROLES[i]);
    sd->refs = pjson_role_refs_new();
    sd->err[0] = '\0';
    sd->count = (size_t)0xA5A5A5A5u;
    sd->rc = parse(sd->s, sd->refs, body, size, &sd->count, sd->err, sizeof(sd->err));
}

static void free_side(struct side *sd)
{
    pjson_role_refs_free(sd->refs);
    mdl_snapshot_free(sd->s);
}

/* A refusing parser leaves everything as it was and says why. */
static void check_refusal(const struct side *sd, const struct side *n, const struct side *o)
{
    if (sd->s->nusers != 0 || pjson_role_refs_count(sd->refs) != 0 || sd->s->nroles != NSEED)
        mismatch(n, o, "%s refused but added %zu users / %zu refs", sd->name, sd->s->nusers,
                 pjson_role_refs_count(sd->refs));
    if (!sd->err[0])
        mismatch(n, o, "%s refused without a message", sd->name);
    if (sd->count != 0)
        mismatch(n, o, "%s refused but left count %zu", sd->name, sd->count);
}

static bool is_syntax_message(const char *m)
{
    static const char *const pre[] = {
        "identity users page: not JSON",
        "identity users page: truncated JSON",
        "identity users page: trailing data",
        "identity users page: JSON nested deeper",
        "identity users page: empty body",
        "identity users page: body ",
        "identity users page: expected object or array, got null",
    };
    for (size_t i = 0; i < sizeof(pre) / sizeof(pre[0]); i++)
        if (strncmp(m, pre[i], strlen(pre[i])) == 0)
            return true;
    return false;
}

static void compare(struct side *n, struct side *o)
{
    if (n->rc != 0 && n->rc != -1)
        mismatch(n, o, "NEW returned %d", n->rc);
    if (o->rc != 0 && o->rc != -1)
        mismatch(n, o, "OLD returned %d", o->rc);
    if (n->rc < 0)
        check_refusal(n, n, o);
    if (o->rc < 0)
        check_refusal(o, n, o);

    static int messages = -1, skip_nul_keys = -1;
    if (messages < 0) {
        messages = env_on("USERS_DIFF_MESSAGES");
        skip_nul_keys = env_on("USERS_DIFF_SKIP_NUL_KEYS");
    }
    if (skip_nul_keys && has_nul_key((const char *)cur_data, cur_size))
        return;
    if (n->rc < 0) {
        /* NEW may refuse more than json-c only at the syntax level (RFC 8259 strictness);
         * a field error on a page json-c accepted is a real difference. */
        if (o->rc == 0 && !is_syntax_message(n->err))
            mismatch(n, o, "NEW refused with a field error a page OLD accepted");
        /* Optionally hold field errors to json-c's words too. */
        if (messages && o->rc < 0 && !is_syntax_message(n->err) && !is_syntax_message(o->err) &&
            strcmp(n->err, o->err) != 0)
            mismatch(n, o, "both refused, with different messages");
        return;
    }
    if (o->rc < 0)
        mismatch(n, o, "NEW accepted a page the json-c parser refused");
    if (has_jsonc_surrogate_defect(cur_data, cur_size))
        return;

    /* Both accepted: the same users. */
    if (n->count != o->count || n->s->nusers != o->s->nusers || n->s->nusers != n->count)
        mismatch(n, o, "count: NEW %zu (%zu users), OLD %zu (%zu users)", n->count, n->s->nusers,
                 o->count, o->s->nusers);
    for (size_t i = 0; i < n->s->nusers; i++) {
        const struct mdl_user *a = &n->s->users[i], *b = &o->s->users[i];
        if (!str_eq(a->id, b->id) || !str_eq(a->email, b->email) ||
            !str_eq(a->external_key, b->external_key) || !str_eq(a->username, b->username) ||
            a->state != b->state)
            mismatch(n, o,
                     "user %zu: NEW id \"%s\" email \"%s\" key \"%s\" username \"%s\" state %d, "
                     "OLD id \"%s\" email \"%s\" key \"%s\" username \"%s\" state %d",
                     i, q(a->id), q(a->email), q(a->external_key), q(a->username), (int)a->state,
                     q(b->id), q(b->email), q(b->external_key), q(b->username), (int)b->state);
    }
    size_t rn = pjson_role_refs_count(n->refs), ro = pjson_role_refs_count(o->refs);
    if (rn != ro)
        mismatch(n, o, "role references: NEW %zu, OLD %zu", rn, ro);

    /* Resolve both (unknown ids kept as placeholder roles) and compare per user. */
    struct pjson_resolve_stats sn, so;
    char en[256], eo[256];
    int an = pjson_role_refs_resolve(n->refs, n->s, true, &sn, en, sizeof(en));
    int ao = pjson_role_refs_resolve(o->refs, o->s, true, &so, eo, sizeof(eo));
    if (an != ao)
        mismatch(n, o, "resolve: NEW %d (%s), OLD %d (%s)", an, an ? en : "", ao, ao ? eo : "");
    if (an != 0)
        return;
    if (sn.refs != so.refs || sn.unknown_refs != so.unknown_refs ||
        sn.unknown_ids != so.unknown_ids || strcmp(sn.first_unknown, so.first_unknown) != 0)
        mismatch(n, o, "resolve stats: NEW %zu/%zu/%zu \"%s\", OLD %zu/%zu/%zu \"%s\"", sn.refs,
                 sn.unknown_refs, sn.unknown_ids, sn.first_unknown, so.refs, so.unknown_refs,
                 so.unknown_ids, so.first_unknown);
    if (n->s->nroles != o->s->nroles)
        mismatch(n, o, "roles after resolve: NEW %zu, OLD %zu", n->s->nroles, o->s->nroles);
    for (size_t i = 0; i < n->s->nroles; i++)
        if (strcmp(n->s->roles[i].id, o->s->roles[i].id) != 0)
            mismatch(n, o, "role %zu after resolve: NEW \"%s\", OLD \"%s\"", i, n->s->roles[i].id,
                     o->s->roles[i].id);
    for (size_t i = 0; i < n->s->nusers; i++) {
        const struct mdl_user *a = &n->s->users[i], *b = &o->s->users[i];
        if (a->ngrants != b->ngrants)
            mismatch(n, o, "user %zu (%s): NEW %u roles, OLD %u", i, q(a->id), a->ngrants,
                     b->ngrants);
        for (uint32_t k = 0; k < a->ngrants; k++)
            if (strcmp(n->s->roles[a->grants[k].role].id, o->s->roles[b->grants[k].role].id) != 0)
                mismatch(n, o, "user %zu (%s) role %u: NEW \"%s\", OLD \"%s\"", i, q(a->id), k,
                         n->s->roles[a->grants[k].role].id, o->s->roles[b->grants[k].role].id);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The body is not NUL-terminated: ASan sees any read past it. */
    const char *body = (const char *)data;
    struct side n, o;
    cur_data = data;
    cur_size = size;
    run_side(&n, "NEW", ijs_parse_users_page, body, size);
    run_side(&o, "OLD", ref_parse_users_page, body, size);
    static int verbose = -1;
    if (verbose < 0)
        verbose = env_on("USERS_DIFF_VERBOSE");
    if (verbose)
        fprintf(stderr, "NEW rc %d %s | OLD rc %d %s | users %zu/%zu refs %zu/%zu\n", n.rc, n.err,
                o.rc, o.err, n.s->nusers, o.s->nusers, pjson_role_refs_count(n.refs),
                pjson_role_refs_count(o.refs));
    compare(&n, &o);
    free_side(&n);
    free_side(&o);
    return 0;
}
