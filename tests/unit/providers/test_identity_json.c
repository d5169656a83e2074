/* test_identity_json.c — the Identity JSON boundary (ijs_*): Role[] and User[] pages, single
 * Role replies, ErrorResponse, Total-Count, Location, request bodies, and hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rolesync/model.h"
#include "providers/identity_json.h"
#include "rolesync/util.h"

static char *ring[128];
static size_t ring_pos;

/* JSON with single quotes for readability; buffers freed by the group teardown. */
static const char *J(const char *s)
{
    char *d = xstrdup(s);
    for (char *p = d; *p; p++)
        if (*p == '\'')
            *p = '"';
    size_t i = ring_pos++ % (sizeof(ring) / sizeof(ring[0]));
    free(ring[i]);
    ring[i] = d;
    return d;
}

static int teardown_group(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ring) / sizeof(ring[0]); i++) {
        free(ring[i]);
        ring[i] = NULL;
    }
    return 0;
}

#define TENANT "'TenantId':'3f1c0c1e-5f61-4a8e-9c59-0a4b2b8c9d01'"

static const char *ROLES_PAGE =
    "["
    "{'Id':'a1000000-0000-4000-8000-000000000001','Name':'Tenant Administrator',"
    " 'Description':'Full control','RoleScope':1," TENANT ",'CommunityId':null,"
    " 'RoleTypeId':'2DC742AB-39EA-4FC0-A39E-2BCB71C26A5F'},"
    "{'Id':'a1000000-0000-4000-8000-000000000002','Name':'Tenant Member','Description':null,"
    " 'RoleScope':1," TENANT ",'RoleTypeId':'7ad2b9ef-5386-4ead-ac9f-ad99c5c5b977'},"
    "{'Id':'a1000000-0000-4000-8000-000000000003','Name':'Plant Operators',"
    " 'Description':'Operators of plant A','RoleScope':1," TENANT ",'CommunityId':null,"
    " 'RoleTypeId':null},"
    "{'Id':'a1000000-0000-4000-8000-000000000004','Name':'Acme Community Member',"
    " 'RoleScope':2,'TenantId':null,'CommunityId':'c0000000-0000-4000-8000-000000000001',"
    " 'RoleTypeId':'f79a55da-7c76-4600-a809-0f62ca9971d9'},"
    "{'Id':'a1000000-0000-4000-8000-000000000005','Name':'Odd','RoleScope':1,"
    " 'CommunityId':'c0000000-0000-4000-8000-000000000001'},"
    "{'Id':'a1000000-0000-4000-8000-000000000006','Name':'No scope'}"
    "]";

static struct mdl_snapshot *roles(const char *json, char *err, size_t errlen)
{
    struct mdl_snapshot *s = mdl_snapshot_new(CFG_API_IDENTITY);
    size_t n;
    if (ijs_parse_roles_page(s, json, strlen(json), &n, err, errlen) < 0) {
        assert_int_equal(s->nroles, 0);
        assert_int_equal(n, 0);
        mdl_snapshot_free(s);
        return NULL;
    }
    assert_int_equal(n, s->nroles);
    return s;
}

static void roles_error(const char *json, const char *want)
{
    char err[512];
    struct mdl_snapshot *s = roles(J(json), err, sizeof(err));
    if (s) {
        mdl_snapshot_free(s);
        fail_msg("accepted: %.200s", json);
    }
    if (!strstr(err, want))
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

static void test_roles_page(void **state)
{
    (void)state;
    char err[256];
    struct mdl_snapshot *s = roles(J(ROLES_PAGE), err, sizeof(err));
    if (!s)
        fail_msg("%s", err);
    assert_int_equal(s->nroles, 6);
    const struct mdl_role *r = s->roles;
    assert_string_equal(r[0].id, "a1000000-0000-4000-8000-000000000001");
    assert_string_equal(r[0].name, "Tenant Administrator");
    assert_string_equal(r[0].builtin_key, IJS_TENANT_ADMIN); /* lower-cased */
    assert_string_equal(r[0].description, "Full control");
    assert_null(r[0].def_canon);
    assert_null(r[0].def_json);
    assert_false(r[0].foreign);
    assert_string_equal(r[1].builtin_key, IJS_TENANT_MEMBER);
    assert_null(r[1].description);
    assert_null(r[2].builtin_key);
    assert_false(r[2].foreign);
    assert_true(r[3].foreign); /* community role */
    assert_true(r[4].foreign); /* RoleScope 1 but a CommunityId */
    assert_true(r[5].foreign); /* scope unknown: leave it alone */
    assert_int_equal(mdl_snapshot_finish(s, err, sizeof(err)), 0);
    assert_int_equal(mdl_find_role_by_key(s, IJS_TENANT_MEMBER), 1);
    mdl_snapshot_free(s);

    s = roles("[]", err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(s->nroles, 0);
    mdl_snapshot_free(s);
}

static void test_roles_errors(void **state)
{
    (void)state;
    roles_error("{'Id':'x','Name':'y'}", "identity roles page: expected array, got object");
    roles_error("", "empty body");
    roles_error("[{'Id':'x','Name':'y'}", "truncated JSON");
    roles_error("[{'Name':'y','RoleScope':1}]",
                "identity roles page: [0].Id: required field missing");
    roles_error("[{'Id':'x','RoleScope':1}]", "[0].Name: required field missing");
    roles_error("[{'Id':'x','Name':''}]", "[0].Name: must not be empty");
    roles_error("[{'Id':'a\\u0001b','Name':'y'}]", "[0].Id: id contains a control character");
    roles_error("[{'Id':'a\\u0000','Name':'y'}]", "[0].Id: id contains a NUL character");
    roles_error("[{'Id':'x','Name':'y','RoleScope':'1'}]",
                "[0].RoleScope: expected integer, got string");
    roles_error("[{'Id':'x','Name':'y','RoleScope':99999999999999999999}]",
                "[0].RoleScope: integer out of range 0..1000");
    roles_error("[{'Id':'x','Name':'y','RoleScope':1e400}]", "[0].RoleScope: expected integer");
    roles_error("[{'Id':'x','Name':'y','RoleScope':-1}]", "RoleScope: integer out of range");
    roles_error("[{'Id':'x','Name':'y','RoleTypeId':'\\u007f'}]",
                "[0].RoleTypeId: id contains a control character");
    roles_error("[{'Id':'x','Name':'y','CommunityId':7}]", "[0].CommunityId: expected string");
    roles_error("[{'Id':'x','Name':'y','Description':{}}]", "[0].Description: expected string");
    roles_error("[{'Id':'ok','Name':'y'},{'Id':'\\u001f','Name':'z'}]",
                "[1].Id: id contains a control character");
    roles_error("[1]", "[0]: expected object, got number");
    roles_error("[null]", "[0]: expected object, got null");
}

static const char *USERS_PAGE =
    "["
    "{'Id':'b1000000-0000-4000-8000-000000000001','GivenName':'Ada','Surname':'Lovelace',"
    " 'Name':'Ada Lovelace','Email':'Ada@Example.com','ContactEmail':'ada@example.com',"
    " 'ContactGivenName':'Ada','ContactSurname':'Lovelace','ExternalUserId':'AdaL@Corp',"
    " 'IdentityProviderId':'E2398938-BF8F-40FA-B380-D538ECE2BFC2',"
    " 'RoleIds':['a1000000-0000-4000-8000-000000000002','a1000000-0000-4000-8000-000000000003']},"
    "{'Id':'b1000000-0000-4000-8000-000000000002','Email':null,'ContactEmail':'bob@example.com',"
    " 'ExternalUserId':null,'IdentityProviderId':null,"
    " 'RoleIds':['a1000000-0000-4000-8000-000000000002','a1000000-0000-4000-8000-00000000dead']},"
    "{'Id':'b1000000-0000-4000-8000-000000000003','Email':'','ContactEmail':'',"
    " 'ExternalUserId':'x','RoleIds':[]}"
    "]";

static void test_users_page(void **state)
{
    (void)state;
    char err[256];
    struct mdl_snapshot *s = roles(J(ROLES_PAGE), err, sizeof(err));
    assert_non_null(s);
    struct pjson_role_refs *refs = pjson_role_refs_new();
    size_t n;
    const char *body = J(USERS_PAGE);
    assert_int_equal(ijs_parse_users_page(s, refs, body, strlen(body), &n, err, sizeof(err)), 0);
    assert_int_equal(n, 3);
    assert_int_equal(s->nusers, 3);
    const struct mdl_user *u = s->users;
    assert_string_equal(u[0].email, "Ada@Example.com");
    assert_string_equal(u[0].external_key, "e2398938-bf8f-40fa-b380-d538ece2bfc2/adal@corp");
    assert_null(u[0].username);
    assert_int_equal(u[0].state, MDL_USER_ACTIVE);
    assert_string_equal(u[1].email, "bob@example.com"); /* ContactEmail fallback */
    assert_null(u[1].external_key);
    assert_null(u[2].email);
    assert_null(u[2].external_key); /* no IdentityProviderId */

    struct pjson_resolve_stats st;
    assert_int_equal(pjson_role_refs_resolve(refs, s, true, &st, err, sizeof(err)), 0);
    assert_int_equal(st.refs, 4);
    assert_int_equal(st.unknown_refs, 1);
    assert_string_equal(st.first_unknown, "a1000000-0000-4000-8000-00000000dead");
    assert_int_equal(s->nroles, 7);
    assert_true(s->roles[6].foreign);
    assert_int_equal(mdl_snapshot_finish(s, err, sizeof(err)), 0);
    assert_int_equal(u[0].ngrants, 2);
    assert_true(mdl_user_has_role(&s->users[0], 1));
    assert_true(mdl_user_has_role(&s->users[0], 2));
    assert_true(mdl_user_has_role(&s->users[1], 6));
    assert_int_equal(s->users[2].ngrants, 0);
    pjson_role_refs_free(refs);
    mdl_snapshot_free(s);
}

static void users_error(const char *json, const char *want)
{
    char err[512];
    struct mdl_snapshot *s = mdl_snapshot_new(CFG_API_IDENTITY);
    struct pjson_role_refs *refs = pjson_role_refs_new();
    size_t n = 99;
    const char *body = J(json);
    int rc = ijs_parse_users_page(s, refs, body, strlen(body), &n, err, sizeof(err));
    assert_int_equal(s->nusers, 0);
    assert_int_equal(n, 0);
    assert_int_equal(pjson_role_refs_count(refs), 0);
    pjson_role_refs_free(refs);
    mdl_snapshot_free(s);
    if (rc == 0)
        fail_msg("accepted: %s", json);
    if (!strstr(err, want))
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

/* Read by jscan, with json-c's semantics: the last of repeated members wins, escapes are decoded,
 * a syntax error anywhere wins over a field error before it, a U+0000 member name is refused. */
static void test_users_page_scanned_semantics(void **state)
{
    (void)state;
    char err[256];
    struct mdl_snapshot *s = mdl_snapshot_new(CFG_API_IDENTITY);
    struct pjson_role_refs *refs = pjson_role_refs_new();
    size_t n;
    const char *body = J("[{'Id':'u1','Id':'u\\u0032','RoleIds':['zz','yy'],"
                         "'RoleIds':['r\\u0031'],'Email':'','ContactEmail':'c@x'}]");
    assert_int_equal(ijs_parse_users_page(s, refs, body, strlen(body), &n, err, sizeof(err)), 0);
    assert_int_equal(n, 1);
    assert_string_equal(s->users[0].id, "u2");
    assert_string_equal(s->users[0].email, "c@x"); /* "" reads as absent: ContactEmail */
    assert_int_equal(pjson_role_refs_count(refs), 1);
    struct pjson_resolve_stats st;
    assert_int_equal(pjson_role_refs_resolve(refs, s, false, &st, err, sizeof(err)), 0);
    assert_string_equal(st.first_unknown, "r1");
    pjson_role_refs_free(refs);
    mdl_snapshot_free(s);
    users_error("[{'Id':'u','Id\\u0000':'v','RoleIds':[]}]", "member name holds U+0000");
    users_error("[{'Id':'u','RoleIds':[5]},{'Id'", "truncated JSON");
}

static void test_users_errors(void **state)
{
    (void)state;
    users_error("[{'Id':'u'}]", "identity users page: [0].RoleIds: required field missing");
    users_error("[{'Id':'u','RoleIds':null}]", "[0].RoleIds: required field missing");
    users_error("[{'Id':'u','RoleIds':'r'}]", "[0].RoleIds: expected array, got string");
    users_error("[{'Id':'u','RoleIds':['r',5]}]", "[0].RoleIds[1]: expected string, got number");
    users_error("[{'Id':'u','RoleIds':['r\\n']}]",
                "[0].RoleIds[0]: id contains a control character");
    users_error("[{'Id':'u','RoleIds':['']}]", "[0].RoleIds[0]: must not be empty");
    users_error("[{'RoleIds':[]}]", "[0].Id: required field missing");
    users_error("[{'Id':'u\\u009f','RoleIds':[]}]", "[0].Id: id contains a control character");
    users_error("[{'Id':'u','Email':42,'RoleIds':[]}]", "[0].Email: expected string, got number");
    users_error("[{'Id':'u','Email':'a\\u0000b@x','RoleIds':[]}]", "[0].Email: contains a NUL");
    users_error("[{'Id':'u','ExternalUserId':'x\\ty','RoleIds':[]}]",
                "[0].ExternalUserId: contains a control character");
    users_error("[{'Id':'u','IdentityProviderId':'not\\u0001a guid','RoleIds':[]}]",
                "[0].IdentityProviderId: id contains a control character");
    users_error("[{'Id':'ok','RoleIds':[]},{'Id':'bad','RoleIds':{}}]",
                "[1].RoleIds: expected array, got object");
    users_error("{'value':[]}", "expected array, got object");
}

static void test_total_count(void **state)
{
    (void)state;
    char err[128];
    uint64_t x;
    assert_int_equal(ijs_parse_total_count("42", &x, err, sizeof(err)), 0);
    assert_int_equal(x, 42);
    assert_int_equal(ijs_parse_total_count(" 0 ", &x, err, sizeof(err)), 0);
    assert_int_equal(x, 0);
    assert_int_equal(ijs_parse_total_count("1000000000", &x, err, sizeof(err)), 0);
    const char *bad[] = {
        "", "-1", "+1", "1e3", "12a", "0x10", "1 2", "1000000001", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        x = 7;
        assert_int_equal(ijs_parse_total_count(bad[i], &x, err, sizeof(err)), -1);
        assert_int_equal(x, 0);
        assert_non_null(strstr(err, "identity Total-Count header: "));
    }
    assert_int_equal(ijs_parse_total_count(NULL, &x, err, sizeof(err)), -1);
    assert_string_equal(err, "identity Total-Count header: missing");
}

static void test_single_role_and_role_ids(void **state)
{
    (void)state;
    char err[256];
    struct pjson_role r;
    const char *body = J("{'Id':'a1000000-0000-4000-8000-000000000003','Name':'Plant Operators',"
                         "'Description':'Operators of plant A','RoleScope':1," TENANT
                         ",'CommunityId':null,'RoleTypeId':null}");
    assert_int_equal(ijs_parse_role(body, strlen(body), &r, err, sizeof(err)), 0);
    assert_string_equal(r.id, "a1000000-0000-4000-8000-000000000003");
    assert_string_equal(r.name, "Plant Operators");
    assert_string_equal(r.description, "Operators of plant A");
    assert_null(r.builtin_key);
    assert_null(r.def_canon);
    assert_false(r.foreign);
    pjson_role_free(&r);
    /* 302 has no body: parsing an empty body is an error, not an empty role */
    assert_int_equal(ijs_parse_role("", 0, &r, err, sizeof(err)), -1);
    assert_string_equal(err, "identity role: empty body where JSON was expected");
    assert_null(r.id);
    assert_int_equal(ijs_parse_role("[]", 2, &r, err, sizeof(err)), -1);
    assert_string_equal(err, "identity role: expected object, got array");

    struct pjson_ids ids;
    const char *set = J("[{'Id':'a1000000-0000-4000-8000-000000000002','Name':'Tenant Member',"
                        "'RoleScope':1,'RoleTypeId':'7ad2b9ef-5386-4ead-ac9f-ad99c5c5b977'},"
                        "{'Id':'a1000000-0000-4000-8000-000000000003','Name':'Plant Operators'}]");
    assert_int_equal(ijs_parse_role_ids(set, strlen(set), &ids, err, sizeof(err)), 0);
    assert_int_equal(ids.n, 2);
    assert_string_equal(ids.v[0], "a1000000-0000-4000-8000-000000000002");
    assert_string_equal(ids.v[1], "a1000000-0000-4000-8000-000000000003");
    pjson_ids_free(&ids);
    const char *bad = J("[{'Id':'ok'},{'Name':'no id'}]");
    assert_int_equal(ijs_parse_role_ids(bad, strlen(bad), &ids, err, sizeof(err)), -1);
    assert_string_equal(err, "identity user roles: [1].Id: required field missing");
    assert_null(ids.v);
}

static void test_error_response(void **state)
{
    (void)state;
    struct pjson_error_info e;
    const char *b = J("{'OperationId':'0f8e1d2c-0000-4000-8000-000000000001',"
                      "'Error':'The role could not be found.','Reason':'No role with that Id.',"
                      "'Resolution':'Check the Id and try again.','DynamicProperties':{}}");
    assert_int_equal(ijs_parse_error(b, strlen(b), &e), 0);
    assert_string_equal(e.message, "No role with that Id. Check the Id and try again.");
    assert_string_equal(e.code, "The role could not be found.");
    assert_string_equal(e.correlation_id, "0f8e1d2c-0000-4000-8000-000000000001");
    assert_int_equal(e.status, 0);
    const char *only = J("{'Error':'Bad request'}");
    assert_int_equal(ijs_parse_error(only, strlen(only), &e), 0);
    assert_string_equal(e.message, "Bad request");
    assert_int_equal(ijs_parse_error("", 0, &e), -1); /* 401: empty body */
    assert_int_equal(ijs_parse_error("{}", 2, &e), -1);
    assert_int_equal(ijs_parse_error("not json", 8, &e), -1);
    assert_string_equal(e.message, "");
    /* the engine's one line (prov_identity.error_message): "Error (Reason)", else Error */
    char line[128];
    ijs_error_line(b, strlen(b), line, sizeof line);
    assert_string_equal(line, "The role could not be found. (No role with that Id.)");
    ijs_error_line(only, strlen(only), line, sizeof line);
    assert_string_equal(line, "Bad request");
    ijs_error_line("", 0, line, sizeof line);
    assert_string_equal(line, "");
}

static void test_location(void **state)
{
    (void)state;
    char err[256];
    char *id =
        ijs_role_id_from_location("/api/v1/Tenants/3f1c0c1e-5f61-4a8e-9c59-0a4b2b8c9d01/Roles/"
                                  "a1000000-0000-4000-8000-000000000003",
                                  err, sizeof(err));
    assert_string_equal(id, "a1000000-0000-4000-8000-000000000003");
    free(id);
    id = ijs_role_id_from_location("https://uswe.datahub.connect.aveva.com/api/v1/Tenants/t/roles/"
                                   "abc-1?x=1#f",
                                   err, sizeof(err));
    assert_string_equal(id, "abc-1");
    free(id);
    /* the segment is percent-decoded: an id with odd characters comes back as itself */
    id = ijs_role_id_from_location("/api/v1/Tenants/t/Roles/a%2Fb%20%C3%BC", err, sizeof(err));
    assert_string_equal(id, "a/b \xc3\xbc");
    free(id);
    const char *bad[] = {"",
                         "/api/v1/Tenants/t/Users/abc",
                         "abc",
                         "/Roles/",
                         "/Roles/a%2",
                         "/Roles/a%zz",
                         "/Roles/a%01",
                         "/Roles/a%FF",
                         "/Role/x",
                         "/api/v1/Roles"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_null(ijs_role_id_from_location(bad[i], err, sizeof(err)));
        assert_non_null(strstr(err, "identity Location header: "));
    }
    assert_null(ijs_role_id_from_location(NULL, err, sizeof(err)));
}

static void test_builders(void **state)
{
    (void)state;
    char err[256];
    char *b =
        ijs_build_role_create("Plant Operators", "Operators of \"plant\" A", err, sizeof(err));
    assert_string_equal(b, "{\"Name\":\"Plant Operators\",\"Description\":\"Operators of "
                           "\\\"plant\\\" A\",\"RoleScope\":1}");
    /* what we send reads back as the same role */
    char *withid = xasprintf("{\"Id\":\"new\",%s", b + 1);
    struct pjson_role r;
    assert_int_equal(ijs_parse_role(withid, strlen(withid), &r, err, sizeof(err)), 0);
    assert_string_equal(r.name, "Plant Operators");
    assert_string_equal(r.description, "Operators of \"plant\" A");
    assert_false(r.foreign);
    pjson_role_free(&r);
    free(withid);
    free(b);
    b = ijs_build_role_create("R", NULL, err, sizeof(err));
    assert_string_equal(b, "{\"Name\":\"R\",\"Description\":null,\"RoleScope\":1}");
    free(b);
    b = ijs_build_role_update("a1", "R", "d", err, sizeof(err));
    assert_string_equal(b, "{\"Id\":\"a1\",\"Name\":\"R\",\"Description\":\"d\",\"RoleScope\":1}");
    free(b);
    assert_null(ijs_build_role_create("", "d", err, sizeof(err)));
    assert_string_equal(err, "identity role body: Name is required");
    assert_null(ijs_build_role_create(NULL, "d", err, sizeof(err)));
    assert_null(ijs_build_role_update(NULL, "R", "d", err, sizeof(err)));
    assert_string_equal(err, "identity role body: Id is required");
    assert_null(ijs_build_role_update("a\x01b", "R", "d", err, sizeof(err)));
    assert_string_equal(err, "invalid id: id contains a control character");
    assert_null(ijs_build_role_create("R\x1b", NULL, err, sizeof(err)));
    assert_string_equal(err, "identity role body: Name contains a control character");

    const char *ids[] = {"a1", "a2"};
    b = ijs_build_user_roles(ids, 2);
    assert_string_equal(b, "[{\"Id\":\"a1\"},{\"Id\":\"a2\"}]");
    struct pjson_ids back;
    assert_int_equal(ijs_parse_role_ids(b, strlen(b), &back, err, sizeof(err)), 0);
    assert_int_equal(back.n, 2);
    pjson_ids_free(&back);
    free(b);
    b = ijs_build_user_roles(NULL, 0);
    assert_string_equal(b, "[]");
    free(b);
}

static void test_huge_inputs(void **state)
{
    (void)state;
    char err[256];
    /* a 10 MB Name, and a 100-level nest inside an ignored field */
    size_t n = 10u * 1024 * 1024;
    struct pjson_buf b = {0};
    pjson_buf_puts(&b, "[{\"Id\":\"x\",\"Name\":\"");
    char *big = xmalloc(n + 1);
    memset(big, 'y', n);
    big[n] = '\0';
    pjson_buf_puts(&b, big);
    free(big);
    pjson_buf_puts(&b, "\"}]");
    char *body = pjson_buf_take(&b);
    struct mdl_snapshot *s = mdl_snapshot_new(CFG_API_IDENTITY);
    size_t cnt;
    assert_int_equal(ijs_parse_roles_page(s, body, strlen(body), &cnt, err, sizeof(err)), -1);
    assert_string_equal(err, "identity roles page: [0].Name: longer than 256 bytes (10485760)");
    free(body);

    pjson_buf_puts(&b, "[{\"Id\":\"x\",\"Name\":\"y\",\"Extra\":");
    for (int i = 0; i < 100; i++)
        pjson_buf_puts(&b, "[");
    for (int i = 0; i < 100; i++)
        pjson_buf_puts(&b, "]");
    pjson_buf_puts(&b, "}]");
    body = pjson_buf_take(&b);
    assert_int_equal(ijs_parse_roles_page(s, body, strlen(body), &cnt, err, sizeof(err)), -1);
    assert_string_equal(err, "identity roles page: JSON nested deeper than 64 levels");
    free(body);
    assert_int_equal(s->nroles, 0);
    mdl_snapshot_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roles_page),
        cmocka_unit_test(test_roles_errors),
        cmocka_unit_test(test_users_page),
        cmocka_unit_test(test_users_errors),
        cmocka_unit_test(test_users_page_scanned_semantics),
        cmocka_unit_test(test_total_count),
        cmocka_unit_test(test_single_role_and_role_ids),
        cmocka_unit_test(test_error_response),
        cmocka_unit_test(test_location),
        cmocka_unit_test(test_builders),
        cmocka_unit_test(test_huge_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, teardown_group);
}
