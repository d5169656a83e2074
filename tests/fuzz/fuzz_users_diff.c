/* fuzz_users_diff.c — differential libFuzzer target: gjs_parse_users_page (jscan, no tree)
 * against the json-c implementation it replaced, kept here verbatim as the reference
 * (ref_parse_users_page, from genesys_json.c before the rewrite; id_problem() is reached
 * through pjson_check_id(), which is the same check).
 *
 * For every input both parsers run on fresh snapshots (with the same few roles already in) and
 * fresh reference lists. The new parser is stricter by design (RFC 8259: it refuses NaN, "1.",
 * "00", raw tabs in strings, lone surrogates that json-c reads as U+FFFD, ...), so:
 *   - NEW accepts  => OLD accepts, with the same page envelope, the same users (id, email,
 *                     username, state, in order) and the same role references (count, and
 *                     after resolving: the same role ids per user, in order, same stats);
 *   - OLD refuses  => NEW refuses (the same statement turned around);
 *   - NEW refuses, OLD accepts: allowed.
 * Either parser that refuses must leave its snapshot and references untouched and say why.
 * A violation prints the input and both verdicts and aborts (libFuzzer reports a crash).
 *
 * Environment switches (all off by default):
 *   USERS_DIFF_MESSAGES=1    also compare the error messages when both refuse and neither
 *                            message is a syntax-level one (the contract keeps
 *                            json-c's wording and check order for field errors);
 *   USERS_DIFF_SKIP_NUL_KEYS=1  do not compare inputs with a member name holding "\u0000":
 *                            json-c cuts such a name at the NUL ("id\u0000x" is "id" to it),
 *                            jscan does not — a known divergence; this lets a run look past it;
 *   USERS_DIFF_VERBOSE=1     print both verdicts for every input (for running single files). */
#include <json-c/json.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rolesync/model.h"
#include "providers/genesys_json.h"
#include "rolesync/util.h"

/* ========================================================================================== */
/* Reference: the json-c users-page parser as it was (HEAD:src/providers/genesys_json.c)      */

struct ref_user_tmp {
    const char *id, *email, *username;
    enum mdl_user_state state;
    size_t first_ref, nrefs; /* the user's role ids: refs.v[first_ref .. first_ref + nrefs) */
};

/* Role ids referenced by one page's users (pointers into the page's JSON tree). */
struct ref_refs {
    const char **v;
    size_t n, cap;
};

/* Ids already validated on this page. */
struct ref_id_seen {
    const char *v[256];
    size_t len[256];
};

static bool ref_id_ok_cached(struct ref_id_seen *c, const char *s, size_t len)
{
    if (len == 0)
        return false;
    unsigned h = (unsigned)(len * 31u + (unsigned char)s[0] * 7u + (unsigned char)s[len - 1] * 13u +
                            (unsigned char)s[len / 2]) &
                 255u;
    if (c->v[h] && c->len[h] == len && memcmp(c->v[h], s, len) == 0)
        return true;
    if (pjson_check_id(s, len, NULL, 0) < 0) /* was: id_problem(s, len) */
        return false;
    c->v[h] = s;
    c->len[h] = len;
    return true;
}

static int ref_check_role_refs(struct pjson_cur *c, struct json_object *arr, const char *idkey,
                               struct ref_id_seen *seen, struct ref_refs *out)
{
    size_t n = json_object_array_length(arr);
    util_grow((void **)&out->v, &out->cap, out->n + n, sizeof(*out->v));
    for (size_t i = 0; i < n; i++) {
        const char *id;
        struct json_object *el = json_object_array_get_idx(arr, i), *v;
        if (json_object_is_type(el, json_type_object) && json_object_object_get_ex(el, idkey, &v) &&
            json_object_is_type(v, json_type_string) &&
            ref_id_ok_cached(seen, json_object_get_string(v),
                             (size_t)json_object_get_string_len(v))) {
            out->v[out->n++] = json_object_get_string(v);
            continue;
        }
        size_t mark = pjson_push_idx(c, i);
        if (pjson_expect_object(c, el) < 0 ||
            pjson_get_string(c, el, idkey, PJSON_ID, true, &id) < 0)
            return -1;
        pjson_pop(c, mark);
        out->v[out->n++] = id;
    }
    return 0;
}

static int ref_g_envelope(struct pjson_cur *c, struct json_object *root, struct gjs_page *pg,
                          struct json_object **ents)
{
    int64_t total, pc, pn, ps;
    memset(pg, 0, sizeof(*pg));
    if (pjson_expect_object(c, root) < 0 || pjson_get_array(c, root, "entities", true, ents) < 0 ||
        pjson_get_int(c, root, "pageSize", 0, 100000, true, &ps, NULL) < 0 ||
        pjson_get_int(c, root, "pageNumber", 1, 10000000, true, &pn, NULL) < 0 ||
        pjson_get_int(c, root, "total", 0, 1000000000, true, &total, NULL) < 0 ||
        pjson_get_int(c, root, "pageCount", 0, 10000000, true, &pc, NULL) < 0)
        return -1;
    size_t n = json_object_array_length(*ents);
    if (n > (size_t)ps)
        return pjson_fail(c, "entities: %zu elements exceed pageSize %lld", n, (long long)ps);
    if ((uint64_t)pc * (uint64_t)ps < (uint64_t)total)
        return pjson_fail(c, "pageCount %lld x pageSize %lld does not cover total %lld",
                          (long long)pc, (long long)ps, (long long)total);
    pg->total = total;
    pg->page_count = (uint32_t)pc;
    pg->page_number = (uint32_t)pn;
    pg->page_size = (uint32_t)ps;
    pg->entities = n;
    return 0;
}

static int ref_g_user(struct pjson_cur *c, struct json_object *e, struct ref_user_tmp *t,
                      struct ref_id_seen *seen, struct ref_refs *refs)
{
    const char *state;
    struct json_object *auth, *roles;
    memset(t, 0, sizeof(*t));
    if (pjson_expect_object(c, e) < 0 || pjson_get_string(c, e, "id", PJSON_ID, true, &t->id) < 0 ||
        pjson_get_string(c, e, "email", PJSON_NAME, false, &t->email) < 0 ||
        pjson_get_string(c, e, "username", PJSON_NAME, false, &t->username) < 0 ||
        pjson_get_string(c, e, "state", PJSON_NAME, true, &state) < 0)
        return -1;
    if (strcmp(state, "active") == 0) {
        t->state = MDL_USER_ACTIVE;
    } else if (strcmp(state, "inactive") == 0) {
        t->state = MDL_USER_INACTIVE;
    } else if (strcmp(state, "deleted") == 0) {
        t->state = MDL_USER_DELETED;
    } else {
        size_t mark = pjson_push_key(c, "state");
        (void)mark;
        return pjson_fail(c, "expected active, inactive or deleted");
    }
    if (pjson_get_object(c, e, "authorization", true, &auth) < 0)
        return -1;
    size_t mark = pjson_push_key(c, "authorization");
    if (pjson_get_array(c, auth, "roles", true, &roles) < 0)
        return -1;
    pjson_push_key(c, "roles");
    t->first_ref = refs->n;
    if (ref_check_role_refs(c, roles, "id", seen, refs) < 0)
        return -1;
    t->nrefs = refs->n - t->first_ref;
    pjson_pop(c, mark);
    return 0;
}

static int ref_parse_users_page(struct mdl_snapshot *s, struct pjson_role_refs *refs,
                                const char *body, size_t len, struct gjs_page *page, char *err,
                                size_t errlen)
{
    struct pjson_cur c;
    struct json_object *ents = NULL;
    pjson_cur_init(&c, "genesys users page", err, errlen);
    memset(page, 0, sizeof(*page));
    struct json_object *root = pjson_parse(&c, body, len); /* was: parse_root() */
    if (!root)
        return -1;
    if (ref_g_envelope(&c, root, page, &ents) < 0) {
        json_object_put(root);
        return -1;
    }
    size_t n = page->entities;
    struct ref_user_tmp *t = xcalloc(n ? n : 1, sizeof(*t));
    struct ref_id_seen seen_buf = {0}, *seen = &seen_buf;
    struct ref_refs ids = {0};
    int rc = 0;
    size_t mark = pjson_push_key(&c, "entities");
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t m2 = pjson_push_idx(&c, i);
        rc = ref_g_user(&c, json_object_array_get_idx(ents, i), &t[i], seen, &ids);
        pjson_pop(&c, m2);
    }
    pjson_pop(&c, mark);
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct mdl_user u = {
            .id = t[i].id, .email = t[i].email, .username = t[i].username, .state = t[i].state};
        uint32_t ui = mdl_add_user(s, &u);
        for (size_t k = 0; k < t[i].nrefs; k++)
            pjson_role_refs_add(refs, ui, ids.v[t[i].first_ref + k]);
    }
    free(ids.v);
    free(t);
    json_object_put(root);
    if (rc < 0)
        memset(page, 0, sizeof(*page));
    return rc;
}

/* ========================================================================================== */
/* The comparison                                                                             */

typedef int (*users_parser)(struct mdl_snapshot *, struct pjson_role_refs *, const char *, size_t,
                            struct gjs_page *, char *, size_t);

/* Roles both snapshots hold before the page (references to others are unknown ids). */
static const struct mdl_role SEED_ROLES[] = {
    {.id = "r1", .name = "R1"},
    {.id = "r2", .name = "R2"},
    {.id = "0d5c3c5e-1f5a-4b6e-9a0e-000000000001", .name = "Employee", .builtin_key = "employee"},
};
#define NSEED (sizeof(SEED_ROLES) / sizeof(SEED_ROLES[0]))

struct side {
    const char *name;
    struct mdl_snapshot *s;
    struct pjson_role_refs *refs;
    struct gjs_page pg;
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

static void mismatch(const struct side *n, const struct side *o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
static void mismatch(const struct side *n, const struct side *o, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "\n*** users page differential mismatch: ");
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
    sd->s = mdl_snapshot_new(CFG_API_GENESYS);
    for (size_t i = 0; i < NSEED; i++)
        mdl_add_role(sd->s, &SEED_ROLES[i]);
    sd->refs = pjson_role_refs_new();
    sd->err[0] = '\0';
    memset(&sd->pg, 0xA5, sizeof(sd->pg));
    sd->rc = parse(sd->s, sd->refs, body, size, &sd->pg, sd->err, sizeof(sd->err));
}

static void free_side(struct side *sd)
{
    pjson_role_refs_free(sd->refs);
    mdl_snapshot_free(sd->s);
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

/* A refusing parser leaves everything as it was and says why. */
static void check_refusal(const struct side *sd, const struct side *n, const struct side *o)
{
    static const struct gjs_page zero;
    if (sd->s->nusers != 0 || pjson_role_refs_count(sd->refs) != 0 || sd->s->nroles != NSEED)
        mismatch(n, o, "%s refused but added %zu users / %zu refs", sd->name, sd->s->nusers,
                 pjson_role_refs_count(sd->refs));
    if (!sd->err[0])
        mismatch(n, o, "%s refused without a message", sd->name);
    if (memcmp(&sd->pg, &zero, sizeof(zero)) != 0)
        mismatch(n, o, "%s refused but left a page envelope", sd->name);
}

static bool is_syntax_message(const char *m)
{
    static const char *const pre[] = {
        "genesys users page: not JSON",
        "genesys users page: truncated JSON",
        "genesys users page: trailing data",
        "genesys users page: JSON nested deeper",
        "genesys users page: empty body",
        "genesys users page: body ",
        "genesys users page: expected object or array, got null",
    };
    for (size_t i = 0; i < sizeof(pre) / sizeof(pre[0]); i++)
        if (strncmp(m, pre[i], strlen(pre[i])) == 0)
            return true;
    return false;
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

    /* Both accepted: the same page. */
    if (n->pg.total != o->pg.total || n->pg.page_count != o->pg.page_count ||
        n->pg.page_number != o->pg.page_number || n->pg.page_size != o->pg.page_size ||
        n->pg.entities != o->pg.entities)
        mismatch(n, o,
                 "envelope: NEW total %lld count %u number %u size %u entities %zu, "
                 "OLD total %lld count %u number %u size %u entities %zu",
                 (long long)n->pg.total, n->pg.page_count, n->pg.page_number, n->pg.page_size,
                 n->pg.entities, (long long)o->pg.total, o->pg.page_count, o->pg.page_number,
                 o->pg.page_size, o->pg.entities);
    if (n->s->nusers != o->s->nusers || n->s->nusers != n->pg.entities)
        mismatch(n, o, "users: NEW %zu, OLD %zu, entities %zu", n->s->nusers, o->s->nusers,
                 n->pg.entities);
    for (size_t i = 0; i < n->s->nusers; i++) {
        const struct mdl_user *a = &n->s->users[i], *b = &o->s->users[i];
        if (!str_eq(a->id, b->id) || !str_eq(a->email, b->email) ||
            !str_eq(a->username, b->username) || a->state != b->state)
            mismatch(n, o,
                     "user %zu: NEW id \"%s\" email \"%s\" username \"%s\" state %d, "
                     "OLD id \"%s\" email \"%s\" username \"%s\" state %d",
                     i, q(a->id), q(a->email), q(a->username), (int)a->state, q(b->id), q(b->email),
                     q(b->username), (int)b->state);
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
    run_side(&n, "NEW", gjs_parse_users_page, body, size);
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
