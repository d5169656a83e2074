/* fuzz_genesys_grants.c — libFuzzer target for the parsers of version 2 reads (product.md 4a):
 * the divisions page, a role's subject grants page, the users listing without the expansion
 * (offset envelope) and the cursor listing (/api/v2/users/query).
 *
 * Each input goes through every parser on a snapshot that already holds a role, a home
 * division and a user (so references can land), and what comes out is held to the contract:
 * a refused page adds nothing and says why; accepted ids percent-encode to path segments that
 * are never dot segments; a divisions page names at most one home, which is qualifier 0; a
 * cursor is bounded text; a subject's grants carry valid ids (--explain); resolving subject
 * grants adds grants only to existing users
 * in existing qualifiers (unknown users counted, never invented) and the snapshot still
 * finishes. Violations abort, which libFuzzer reports as a crash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/genesys_json.h"
#include "rolesync/model.h"
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
    char *seg = pjson_path_segment(id, err, sizeof(err));
    CHECK(seg && strcmp(seg, ".") != 0 && strcmp(seg, "..") != 0);
    free(seg);
}

static struct mdl_snapshot *seeded(void)
{
    struct mdl_snapshot *s = mdl_snapshot_new(CFG_API_GENESYS);
    struct mdl_role r = {.id = "r1", .name = "R1"};
    mdl_add_role(s, &r);
    struct mdl_user u = {.id = "u1", .email = "u1@example.com", .state = MDL_USER_ACTIVE};
    mdl_add_user(s, &u);
    return s;
}

static void fuzz_divisions(const char *body, size_t size)
{
    char err[512] = "";
    struct gjs_page pg;
    struct mdl_snapshot *s = mdl_snapshot_new(CFG_API_GENESYS);
    size_t before = s->nquals;
    if (gjs_parse_divisions_page(s, body, size, &pg, err, sizeof(err)) == 0) {
        size_t homes = 0;
        for (size_t i = 0; i < s->nquals; i++) {
            const struct mdl_qual *q = &s->quals[i];
            if (q->home) {
                homes++;
                CHECK(i == 0);
            }
            if (q->id && !q->all) {
                check_id(q->id);
                CHECK(strcmp(q->id, "*") != 0);
            }
        }
        CHECK(homes <= 1);
    } else {
        CHECK(err[0] && s->nquals == before);
    }
    mdl_snapshot_free(s);
}

static void fuzz_subjectgrants(const char *body, size_t size)
{
    char err[512] = "";
    struct gjs_page pg;
    struct mdl_snapshot *s = seeded();
    struct pjson_grant_refs *refs = pjson_grant_refs_new();
    uint32_t others = s->roles[0].other_holders;
    if (gjs_parse_subjectgrants_page(s, refs, 0, body, size, &pg, err, sizeof(err)) == 0) {
        size_t nrefs = pjson_grant_refs_count(refs);
        struct pjson_grant_stats st;
        size_t nquals = s->nquals;
        CHECK(pjson_grant_refs_resolve(refs, s, &st, err, sizeof(err)) == 0);
        CHECK(st.grants <= nrefs);
        CHECK(s->nquals <= nquals + st.unknown_divisions);
        CHECK(s->nusers == 1); /* never invents a user */
        for (uint32_t k = 0; k < s->users[0].ngrants; k++) {
            CHECK(s->users[0].grants[k].role == 0);
            CHECK(s->users[0].grants[k].qual < s->nquals);
        }
        CHECK(mdl_snapshot_finish(s, err, sizeof(err)) == 0);
    } else {
        CHECK(err[0] && pjson_grant_refs_count(refs) == 0 && s->roles[0].other_holders == others);
    }
    pjson_grant_refs_free(refs);
    mdl_snapshot_free(s);
}

static void fuzz_users(const char *body, size_t size, unsigned mode)
{
    char err[512] = "";
    struct gjs_page pg;
    struct mdl_snapshot *s = seeded();
    struct pjson_role_refs *refs = pjson_role_refs_new();
    size_t before = s->nusers;
    char *cursor = NULL;
    struct gjs_users_prep *p = gjs_users_prepare_mode(body, size, mode);
    CHECK(p != NULL);
    int rc = mode == GJS_USERS_CURSOR
                 ? gjs_users_commit_cursor(p, s, refs, &pg, &cursor, err, sizeof(err))
                 : gjs_users_commit(p, s, refs, &pg, err, sizeof(err));
    if (rc == 0) {
        CHECK(s->nusers == before + pg.entities);
        for (size_t i = before; i < s->nusers; i++) {
            check_id(s->users[i].id);
            CHECK(s->users[i].ngrants == 0); /* v2 listings carry no grants */
        }
        CHECK(pjson_role_refs_count(refs) == 0);
        if (cursor) {
            /* a description-like text: it is percent-encoded into the next query */
            CHECK(cursor[0] && strlen(cursor) <= PJSON_MAX_TEXT);
            for (const char *c = cursor; *c; c++)
                CHECK(((unsigned char)*c >= 0x20 && *c != 0x7f) || *c == '\t' || *c == '\r' ||
                      *c == '\n');
        }
    } else {
        CHECK(err[0] && s->nusers == before && cursor == NULL);
    }
    free(cursor);
    pjson_role_refs_free(refs);
    mdl_snapshot_free(s);
}

/* One user's subject (rolesyncd --explain): accepted grants carry valid ids; a refused body
 * says why and hands out nothing. The group name is optional, bounded text. */
static void fuzz_subject(const char *body, size_t size)
{
    char err[512] = "";
    struct prov_subject_grant *g = NULL;
    size_t n = 99;
    if (gjs_parse_subject(body, size, &g, &n, err, sizeof(err)) == 0) {
        CHECK(g != NULL);
        for (size_t i = 0; i < n; i++) {
            check_id(g[i].role_id);
            check_id(g[i].qual_id);
            check_id(g[i].subject_id);
            CHECK(g[i].subject_name == NULL);
        }
        gjs_subject_free(g, n);
    } else {
        CHECK(g == NULL && n == 0 && err[0]);
    }
    char *name = NULL;
    err[0] = '\0';
    if (gjs_parse_group_name(body, size, &name, err, sizeof(err)) == 0)
        CHECK(!name || (*name && strlen(name) <= PJSON_MAX_NAME));
    else
        CHECK(name == NULL && err[0]);
    free(name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data; /* not NUL-terminated: ASan sees any over-read */
    fuzz_divisions(body, size);
    fuzz_subjectgrants(body, size);
    fuzz_users(body, size, GJS_USERS_PLAIN);
    fuzz_users(body, size, GJS_USERS_CURSOR);
    fuzz_subject(body, size);
    return 0;
}
