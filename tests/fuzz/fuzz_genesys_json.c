/* fuzz_genesys_json.c — libFuzzer target for the Genesys JSON boundary (gjs_*, pjson_*).
 *
 * Every input goes through every genesys parser (the body is not NUL-terminated, so ASan sees
 * any over-read), and what parses is checked against the contract: a failed page adds nothing
 * and says why, accepted ids percent-encode into path segments that decode back to them,
 * def_json == def_canon, and a definition written with the request builders reads back to
 * the same def_canon (canonical form is a fixed point). Violations abort, which libFuzzer reports as a crash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rolesync/model.h"
#include "providers/genesys_json.h"
#include "rolesync/util.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_id(const char *id)
{
    char err[128];
    CHECK(id && pjson_check_id(id, strlen(id), err, sizeof(err)) == 0);
    /* Accepted ids may hold any printable text: the path segment is unreserved bytes and %XX
     * only, never a dot segment, and decodes back to the id. */
    char *seg = pjson_path_segment(id, err, sizeof(err));
    CHECK(seg && strcmp(seg, ".") != 0 && strcmp(seg, "..") != 0);
    char *dec = xmalloc(strlen(seg) + 1);
    size_t n = 0;
    for (const char *p = seg; *p; p++) {
        if (*p == '%') {
            CHECK(util_hex_value(p[1]) >= 0 && util_hex_value(p[2]) >= 0);
            dec[n++] = (char)(util_hex_value(p[1]) * 16 + util_hex_value(p[2]));
            p += 2;
        } else {
            CHECK((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                  *p == '-' || *p == '.' || *p == '_' || *p == '~');
            dec[n++] = *p;
        }
    }
    dec[n] = '\0';
    CHECK(strcmp(dec, id) == 0);
    free(dec);
    free(seg);
}

/* The builders' output, read back as a role, must have the same canonical definition. */
static void check_round_trip(const char *name, const char *description, const char *def_json,
                             const char *def_canon)
{
    char err[512];
    char *body = gjs_build_role_update(name, description, def_json, err, sizeof(err));
    if (!body) {
        fprintf(stderr, "builder refused a parsed role: %s\n", err);
        abort();
    }
    char *withid = xasprintf("{\"id\":\"x\",%s", body + 1);
    struct pjson_role r;
    if (gjs_parse_role(withid, strlen(withid), &r, err, sizeof(err)) < 0) {
        fprintf(stderr, "built body does not parse: %s\n", err);
        abort();
    }
    CHECK(strcmp(r.def_canon, def_canon) == 0);
    CHECK(strcmp(r.name, name) == 0);
    pjson_role_free(&r);
    free(withid);
    free(body);
}

static void fuzz_pages(const char *body, size_t size)
{
    char err[512];
    struct gjs_page pg;
    struct mdl_snapshot *s = mdl_snapshot_new(CFG_API_GENESYS);
    struct pjson_role_refs *refs = pjson_role_refs_new();

    err[0] = '\0';
    if (gjs_parse_roles_page(s, body, size, &pg, err, sizeof(err)) == 0) {
        CHECK(pg.entities == s->nroles);
        CHECK(pg.page_size == 0 || (uint64_t)pg.page_count * pg.page_size >= (uint64_t)pg.total);
        for (size_t i = 0; i < s->nroles; i++) {
            const struct mdl_role *r = &s->roles[i];
            check_id(r->id);
            if (r->builtin_key)
                check_id(r->builtin_key);
            CHECK(r->name && r->name[0]);
            CHECK(r->def_canon && r->def_json && strcmp(r->def_canon, r->def_json) == 0);
            check_round_trip(r->name, r->description, r->def_json, r->def_canon);
        }
    } else {
        CHECK(s->nroles == 0 && err[0]);
    }

    size_t before = s->nusers;
    err[0] = '\0';
    if (gjs_parse_users_page(s, refs, body, size, &pg, err, sizeof(err)) == 0) {
        CHECK(s->nusers == before + pg.entities);
        for (size_t i = 0; i < s->nusers; i++)
            check_id(s->users[i].id);
    } else {
        CHECK(s->nusers == before && pjson_role_refs_count(refs) == 0 && err[0]);
    }

    err[0] = '\0';
    if (gjs_parse_permissions_page(s, body, size, &pg, err, sizeof(err)) == 0) {
        for (size_t i = 1; i < s->nlicensed_domains; i++)
            CHECK(strcmp(s->licensed_domains[i - 1], s->licensed_domains[i]) < 0);
    } else {
        CHECK(err[0]);
    }

    struct pjson_resolve_stats st;
    size_t nrefs = pjson_role_refs_count(refs);
    if (pjson_role_refs_resolve(refs, s, size & 1, &st, err, sizeof(err)) == 0) {
        CHECK(st.refs == nrefs && st.unknown_refs <= st.refs);
        (void)mdl_snapshot_finish(s, err, sizeof(err)); /* duplicate user ids may fail it */
    }
    pjson_role_refs_free(refs);
    mdl_snapshot_free(s);
}

static void fuzz_objects(const char *body, size_t size)
{
    char err[512];
    struct pjson_role r;
    if (gjs_parse_role(body, size, &r, err, sizeof(err)) == 0) {
        check_id(r.id);
        CHECK(strcmp(r.def_canon, r.def_json) == 0);
        check_round_trip(r.name, r.description, r.def_json, r.def_canon);
        struct mdl_role target = {.id = r.id, .name = r.name, .description = r.description};
        char *b = gjs_build_default_role_update(&target, r.def_json, err, sizeof(err));
        CHECK(b != NULL);
        free(b);
        pjson_role_free(&r);
    } else {
        CHECK(r.id == NULL && err[0]);
    }

    struct pjson_ids ids;
    if (gjs_parse_user_authorization(body, size, &ids, err, sizeof(err)) == 0) {
        for (size_t i = 0; i < ids.n; i++)
            check_id(ids.v[i]);
        pjson_ids_free(&ids);
    }
    if (gjs_parse_id_array(body, size, &ids, err, sizeof(err)) == 0) {
        for (size_t i = 0; i < ids.n; i++)
            check_id(ids.v[i]);
        /* an id list survives a trip through the body builder */
        char *b = pjson_build_string_array((const char *const *)ids.v, ids.n);
        struct pjson_ids back;
        CHECK(gjs_parse_id_array(b, strlen(b), &back, err, sizeof(err)) == 0);
        CHECK(back.n == ids.n);
        for (size_t i = 0; i < ids.n; i++)
            CHECK(strcmp(back.v[i], ids.v[i]) == 0);
        pjson_ids_free(&back);
        free(b);
        pjson_ids_free(&ids);
    }

    struct pjson_error_info e;
    (void)gjs_parse_error(body, size, &e);
    CHECK(strlen(e.message) < sizeof(e.message) && strlen(e.code) < sizeof(e.code));
    for (const char *p = e.message; *p; p++)
        CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    fuzz_pages(body, size);
    fuzz_objects(body, size);
    return 0;
}
