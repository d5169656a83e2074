/* fuzz_identity_json.c — libFuzzer target for the Identity JSON boundary (ijs_*).
 *
 * Every input goes through every identity parser (bodies are not NUL-terminated, so ASan sees
 * any over-read; the header parsers get a terminated copy), and accepted results are checked
 * against the contract: a failed page adds nothing and says why, ids are valid path segments,
 * built-in keys are lower case, and request bodies built from parsed roles read back the same.
 * Violations abort, which libFuzzer reports as a crash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rolesync/model.h"
#include "providers/identity_json.h"
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
}

static void check_lower(const char *s)
{
    for (; s && *s; s++)
        CHECK(!(*s >= 'A' && *s <= 'Z'));
}

static void check_round_trip(const char *id, const char *name, const char *description)
{
    char err[512];
    char *body = ijs_build_role_update(id, name, description, err, sizeof(err));
    if (!body) {
        fprintf(stderr, "builder refused a parsed role: %s\n", err);
        abort();
    }
    struct pjson_role r;
    if (ijs_parse_role(body, strlen(body), &r, err, sizeof(err)) < 0) {
        fprintf(stderr, "built body does not parse: %s\n", err);
        abort();
    }
    CHECK(strcmp(r.id, id) == 0 && strcmp(r.name, name) == 0);
    CHECK((description == NULL) == (r.description == NULL));
    CHECK(!description || strcmp(description, r.description) == 0);
    CHECK(!r.foreign);
    pjson_role_free(&r);
    free(body);
}

static void fuzz_pages(const char *body, size_t size)
{
    char err[512];
    size_t n;
    struct mdl_snapshot *s = mdl_snapshot_new(CFG_API_IDENTITY);
    struct pjson_role_refs *refs = pjson_role_refs_new();

    err[0] = '\0';
    if (ijs_parse_roles_page(s, body, size, &n, err, sizeof(err)) == 0) {
        CHECK(n == s->nroles);
        for (size_t i = 0; i < s->nroles; i++) {
            const struct mdl_role *r = &s->roles[i];
            check_id(r->id);
            check_lower(r->builtin_key);
            CHECK(r->def_canon == NULL && r->def_json == NULL);
            check_round_trip(r->id, r->name, r->description);
        }
    } else {
        CHECK(s->nroles == 0 && n == 0 && err[0]);
    }

    err[0] = '\0';
    if (ijs_parse_users_page(s, refs, body, size, &n, err, sizeof(err)) == 0) {
        CHECK(n == s->nusers);
        for (size_t i = 0; i < s->nusers; i++) {
            check_id(s->users[i].id);
            check_lower(s->users[i].external_key);
            CHECK(!s->users[i].external_key || strchr(s->users[i].external_key, '/'));
        }
    } else {
        CHECK(s->nusers == 0 && pjson_role_refs_count(refs) == 0 && err[0]);
    }

    struct pjson_resolve_stats st;
    if (pjson_role_refs_resolve(refs, s, size & 1, &st, err, sizeof(err)) == 0)
        (void)mdl_snapshot_finish(s, err, sizeof(err));
    pjson_role_refs_free(refs);
    mdl_snapshot_free(s);
}

static void fuzz_objects(const char *body, size_t size)
{
    char err[512];
    struct pjson_role r;
    if (ijs_parse_role(body, size, &r, err, sizeof(err)) == 0) {
        check_id(r.id);
        check_lower(r.builtin_key);
        check_round_trip(r.id, r.name, r.description);
        pjson_role_free(&r);
    } else {
        CHECK(r.id == NULL && err[0]);
    }

    struct pjson_ids ids;
    if (ijs_parse_role_ids(body, size, &ids, err, sizeof(err)) == 0) {
        for (size_t i = 0; i < ids.n; i++)
            check_id(ids.v[i]);
        char *b = ijs_build_user_roles((const char *const *)ids.v, ids.n);
        struct pjson_ids back;
        CHECK(ijs_parse_role_ids(b, strlen(b), &back, err, sizeof(err)) == 0 && back.n == ids.n);
        for (size_t i = 0; i < ids.n; i++)
            CHECK(strcmp(back.v[i], ids.v[i]) == 0);
        pjson_ids_free(&back);
        free(b);
        pjson_ids_free(&ids);
    }

    struct pjson_error_info e;
    (void)ijs_parse_error(body, size, &e);
    for (const char *p = e.message; *p; p++)
        CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);

    /* header parsers take C strings */
    if (size <= 4096) {
        char *h = xstrndup(body, size);
        uint64_t x;
        if (ijs_parse_total_count(h, &x, err, sizeof(err)) == 0)
            CHECK(x <= 1000000000u);
        char *id = ijs_role_id_from_location(h, err, sizeof(err));
        if (id) {
            check_id(id);
            free(id);
        }
        free(h);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    fuzz_pages(body, size);
    fuzz_objects(body, size);
    return 0;
}
