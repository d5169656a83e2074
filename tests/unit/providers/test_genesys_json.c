/* test_genesys_json.c — the Genesys JSON boundary (gjs_*) and the shared strict parsing
 * (pjson_*): realistic listing pages, canonical role definitions, request bodies, and hostile
 * input (wrong types, missing fields, huge numbers, deep nesting, huge strings, bad ids). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rolesync/model.h"
#include "providers/genesys_json.h"
#include "rolesync/util.h"

/* JSON written with single quotes for readability: J("{'a':1}") -> {"a":1}. The returned
 * buffers live in a ring freed by the group teardown. */
static char *ring[256];
static size_t ring_pos;

static char *keep(char *s)
{
    size_t i = ring_pos++ % (sizeof(ring) / sizeof(ring[0]));
    free(ring[i]);
    ring[i] = s;
    return s;
}

static const char *J(const char *s)
{
    char *d = xstrdup(s);
    for (char *p = d; *p; p++)
        if (*p == '\'')
            *p = '"';
    return keep(d);
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

#define ENVELOPE(ents, n)                                                                          \
    "{'entities':[" ents "],'pageSize':25,'pageNumber':1,'total':" #n ",'pageCount':1}"

static const char *ROLES_PAGE =
    "{'entities':["
    "{'id':'0d5c3c5e-1f5a-4b6e-9a0e-000000000001','name':'Employee',"
    " 'description':'Default employee role','defaultRoleId':'employee','default':true,"
    " 'base':false,'permissions':['group_creation'],"
    " 'permissionPolicies':[{'domain':'directory','entityName':'user','actionSet':['view'],"
    "   'allowConditions':false,'policyName':'Directory User View','namedResources':[]}],"
    " 'userCount':3,'selfUri':'/api/v2/authorization/roles/0d5c3c5e-1f5a-4b6e-9a0e-000000000001'},"
    "{'id':'0d5c3c5e-1f5a-4b6e-9a0e-000000000002','name':'Master Admin','defaultRoleId':'admin',"
    " 'default':true,'permissions':['admin'],"
    " 'permissionPolicies':[{'domain':'*','entityName':'*','actionSet':['*']}]},"
    "{'id':'0d5c3c5e-1f5a-4b6e-9a0e-000000000003','name':'Queue Supervisor',"
    " 'description':'Supervises queues','default':false,'permissions':[],"
    " 'permissionPolicies':["
    "  {'domain':'routing','entityName':'queue','actionSet':['view','edit'],'allowConditions':true,"
    "   "
    "'resourceConditionNode':{'conjunction':'AND','terms':[{'variableName':'Conversation.queues',"
    "    'operator':'EQ','operands':[{'type':'QUEUE','queue':{'id':'q1'}}]}]}},"
    "  {'domain':'analytics','entityName':'conversationDetail','actionSet':['view'],"
    "   'policyName':'Analytics > Conversation Detail'}]}"
    "],'pageSize':25,'pageNumber':1,'total':3,'pageCount':1,"
    "'firstUri':'/api/v2/authorization/roles?pageSize=25&pageNumber=1',"
    "'selfUri':'/api/v2/authorization/roles?pageSize=25&pageNumber=1',"
    "'lastUri':'/api/v2/authorization/roles?pageSize=25&pageNumber=1'}";

static const char *SUPERVISOR_CANON =
    "{\"permissions\":[],\"permissionPolicies\":["
    "{\"domain\":\"analytics\",\"entityName\":\"conversationDetail\",\"actionSet\":[\"view\"],"
    "\"allowConditions\":false},"
    "{\"domain\":\"routing\",\"entityName\":\"queue\",\"actionSet\":[\"edit\",\"view\"],"
    "\"allowConditions\":true,\"resourceConditionNode\":{\"conjunction\":\"AND\",\"terms\":[{"
    "\"operands\":[{\"queue\":{\"id\":\"q1\"},\"type\":\"QUEUE\"}],\"operator\":\"EQ\","
    "\"variableName\":\"Conversation.queues\"}]}}]}";

/* Parse one roles page into a fresh snapshot; returns it (caller frees) or NULL + err. */
static struct mdl_snapshot *roles(const char *json, char *err, size_t errlen)
{
    struct mdl_snapshot *s = mdl_snapshot_new(CFG_API_GENESYS);
    struct gjs_page pg;
    if (gjs_parse_roles_page(s, json, strlen(json), &pg, err, errlen) < 0) {
        assert_int_equal(s->nroles, 0); /* atomic: nothing of a failed page */
        mdl_snapshot_free(s);
        return NULL;
    }
    return s;
}

/* def_canon of the single role in a page of one entity built around `role`. */
static char *canon_of(const char *role)
{
    char err[256];
    char *page = xasprintf("{\"entities\":[%s],\"pageSize\":1,\"pageNumber\":1,\"total\":1,"
                           "\"pageCount\":1}",
                           J(role));
    struct mdl_snapshot *s = roles(page, err, sizeof(err));
    free(page);
    if (!s)
        fail_msg("%s", err);
    char *c = xstrdup(s->roles[0].def_canon);
    mdl_snapshot_free(s);
    return keep(c);
}

/* The parser must fail and its message must contain `want`. */
static void expect_roles_error(const char *json, const char *want)
{
    char err[512];
    struct mdl_snapshot *s = roles(json, err, sizeof(err));
    if (s) {
        mdl_snapshot_free(s);
        fail_msg("accepted: %.200s", json);
    }
    if (!strstr(err, want))
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

static void role_error(const char *role, const char *want)
{
    char *page = xasprintf("{\"entities\":[%s],\"pageSize\":1,\"pageNumber\":1,\"total\":1,"
                           "\"pageCount\":1}",
                           J(role));
    expect_roles_error(page, want);
    free(page);
}

/* ------------------------------------------------------------------------------------------ */

static void test_roles_page(void **state)
{
    (void)state;
    char err[256];
    struct mdl_snapshot *s = mdl_snapshot_new(CFG_API_GENESYS);
    struct gjs_page pg;
    const char *body = J(ROLES_PAGE);
    assert_int_equal(gjs_parse_roles_page(s, body, strlen(body), &pg, err, sizeof(err)), 0);
    assert_int_equal(pg.total, 3);
    assert_int_equal(pg.page_count, 1);
    assert_int_equal(pg.page_number, 1);
    assert_int_equal(pg.page_size, 25);
    assert_int_equal(pg.entities, 3);
    assert_int_equal(s->nroles, 3);

    const struct mdl_role *e = &s->roles[0];
    assert_string_equal(e->id, "0d5c3c5e-1f5a-4b6e-9a0e-000000000001");
    assert_string_equal(e->name, "Employee");
    assert_string_equal(e->builtin_key, "employee");
    assert_string_equal(e->description, "Default employee role");
    assert_false(e->foreign);
    assert_string_equal(e->def_canon,
                        "{\"permissions\":[\"group_creation\"],\"permissionPolicies\":[{\"domain\":"
                        "\"directory\",\"entityName\":\"user\",\"actionSet\":[\"view\"],"
                        "\"allowConditions\":false}]}");
    assert_string_equal(e->def_json, e->def_canon);

    assert_string_equal(s->roles[1].builtin_key, "admin");
    assert_null(s->roles[1].description);
    assert_string_equal(s->roles[1].def_canon,
                        "{\"permissions\":[\"admin\"],\"permissionPolicies\":[{\"domain\":\"*\","
                        "\"entityName\":\"*\",\"actionSet\":[\"*\"],\"allowConditions\":false}]}");

    assert_null(s->roles[2].builtin_key);
    assert_string_equal(s->roles[2].def_canon, SUPERVISOR_CANON);
    assert_int_equal(mdl_snapshot_finish(s, err, sizeof(err)), 0);
    assert_int_equal(mdl_find_role_by_key(s, "employee"), 0);
    mdl_snapshot_free(s);
}

static void test_canon_order_insensitive(void **state)
{
    (void)state;
    const char *a = canon_of(
        "{'id':'r1','name':'R','permissions':['b','a','a'],'permissionPolicies':["
        "{'domain':'routing','entityName':'queue','actionSet':['view','edit','view'],"
        " 'namedResources':['n2','n1'],'resourceConditionNode':{'terms':[],'conjunction':'OR'}},"
        "{'domain':'analytics','entityName':'conversationDetail','actionSet':['view']}]}");
    const char *b = canon_of(
        "{'name':'R','id':'r1','permissionPolicies':["
        "{'actionSet':['view'],'entityName':'conversationDetail','domain':'analytics',"
        " 'allowConditions':false,'policyName':'x','policyDescription':'y'},"
        "{'domain':'routing','entityName':'queue','actionSet':['edit','view'],"
        " 'namedResources':['n1','n2'],'resourceConditionNode':{'conjunction':'OR','terms':[],"
        " 'variableName':null}},"
        "{'domain':'analytics','entityName':'conversationDetail','actionSet':['view']}],"
        "'permissions':['a','b']}");
    assert_string_equal(a, b);
    /* namedResources [] equals absent; description does not enter def_canon */
    assert_string_equal(
        canon_of("{'id':'r','name':'R','description':'one','permissionPolicies':[{'domain':'d',"
                 "'entityName':'e','actionSet':['a'],'namedResources':[]}]}"),
        canon_of("{'id':'r','name':'R','description':'two','permissionPolicies':[{'domain':'d',"
                 "'entityName':'e','actionSet':['a']}]}"));
    /* absent arrays read as empty */
    assert_string_equal(canon_of("{'id':'r','name':'R'}"),
                        "{\"permissions\":[],\"permissionPolicies\":[]}");
    assert_string_equal(
        canon_of("{'id':'r','name':'R','permissions':null,'permissionPolicies':[]}"),
        "{\"permissions\":[],\"permissionPolicies\":[]}");
}

static void test_canon_detects_changes(void **state)
{
    (void)state;
    const char *base = canon_of("{'id':'r','name':'R','permissionPolicies':[{'domain':'routing',"
                                "'entityName':'queue','actionSet':['view','edit']}]}");
    /* a changed action */
    assert_string_not_equal(base, canon_of("{'id':'r','name':'R','permissionPolicies':[{'domain':"
                                           "'routing','entityName':'queue','actionSet':['view',"
                                           "'delete']}]}"));
    /* wildcard kept as written: ["*"] is not its expansion */
    assert_string_not_equal(base, canon_of("{'id':'r','name':'R','permissionPolicies':[{'domain':"
                                           "'routing','entityName':'queue','actionSet':['*']}]}"));
    /* allowConditions, condition values, flat permissions all count */
    assert_string_not_equal(base, canon_of("{'id':'r','name':'R','permissionPolicies':[{'domain':"
                                           "'routing','entityName':'queue','actionSet':['view',"
                                           "'edit'],'allowConditions':true}]}"));
    assert_string_not_equal(
        canon_of("{'id':'r','name':'R','permissionPolicies':[{'domain':'d','entityName':'e',"
                 "'actionSet':['a'],'resourceConditionNode':{'operator':'EQ'}}]}"),
        canon_of("{'id':'r','name':'R','permissionPolicies':[{'domain':'d','entityName':'e',"
                 "'actionSet':['a'],'resourceConditionNode':{'operator':'IN'}}]}"));
    assert_string_not_equal(canon_of("{'id':'r','name':'R','permissions':['a']}"),
                            canon_of("{'id':'r','name':'R','permissions':['b']}"));
    /* a duplicated policy is the same definition */
    assert_string_equal(base,
                        canon_of("{'id':'r','name':'R','permissionPolicies':[{'domain':"
                                 "'routing','entityName':'queue','actionSet':['edit','view']},"
                                 "{'domain':'routing','entityName':'queue','actionSet':["
                                 "'view','edit']}]}"));
}

static void test_builtin_keys(void **state)
{
    (void)state;
    char err[256];
    struct mdl_snapshot *s =
        roles(J(ENVELOPE("{'id':'a','name':'Custom','defaultRoleId':''},"
                         "{'id':'b','name':'Trusted External User','defaultRoleId':'trustedUser'},"
                         "{'id':'c','name':'Plain','default':false,'defaultRoleId':null}",
                         3)),
              err, sizeof(err));
    assert_non_null(s);
    assert_null(s->roles[0].builtin_key);
    assert_string_equal(s->roles[1].builtin_key, "trustedUser");
    assert_null(s->roles[2].builtin_key);
    mdl_snapshot_free(s);
    role_error("{'id':'a','name':'X','default':true}", "default role without a defaultRoleId");
    role_error("{'id':'a','name':'X','default':'yes'}", "default: expected boolean, got string");
    role_error("{'id':'a','name':'X','defaultRoleId':'a\\u0007b'}",
               "defaultRoleId: id contains a control character");
}

static void test_envelope_errors(void **state)
{
    (void)state;
    expect_roles_error(J("{'pageSize':25,'pageNumber':1,'total':0,'pageCount':0}"),
                       "genesys roles page: entities: required field missing");
    expect_roles_error(J("{'entities':{},'pageSize':25,'pageNumber':1,'total':0,'pageCount':0}"),
                       "entities: expected array, got object");
    expect_roles_error(J("{'entities':[],'pageSize':'25','pageNumber':1,'total':0,'pageCount':0}"),
                       "pageSize: expected integer, got string");
    expect_roles_error(J("{'entities':[],'pageSize':25,'pageNumber':1,'total':0}"),
                       "pageCount: required field missing");
    expect_roles_error(J("{'entities':[],'pageSize':25,'pageNumber':1,"
                         "'total':99999999999999999999,'pageCount':1}"),
                       "total: integer out of range");
    expect_roles_error(J("{'entities':[],'pageSize':25,'pageNumber':1,'total':1e400,"
                         "'pageCount':1}"),
                       "total: expected integer, got number");
    expect_roles_error(J("{'entities':[],'pageSize':25,'pageNumber':1,'total':-1,'pageCount':1}"),
                       "total: integer out of range");
    expect_roles_error(J("{'entities':[],'pageSize':25,'pageNumber':0,'total':0,'pageCount':0}"),
                       "pageNumber: integer out of range");
    expect_roles_error(J("{'entities':[],'pageSize':25,'pageNumber':1,'total':51,'pageCount':2}"),
                       "pageCount 2 x pageSize 25 does not cover total 51");
    expect_roles_error(J("{'entities':[{'id':'a','name':'A'},{'id':'b','name':'B'}],"
                         "'pageSize':1,'pageNumber':1,'total':2,'pageCount':2}"),
                       "entities: 2 elements exceed pageSize 1");
    expect_roles_error(J("{'entities':[],'pageSize':25,'pageNumber':1.5,'total':0,'pageCount':0}"),
                       "pageNumber: expected integer");
    expect_roles_error(J("{'entities':[],'pageSize':25,'pageNumber':1,'total':0,"
                         "'pageCount':-99999999999999999999}"),
                       "pageCount: integer out of range");
    /* past the end: an empty page is fine */
    char err[256];
    struct mdl_snapshot *s =
        roles(J("{'entities':[],'pageSize':25,'pageNumber':9,'total':3,'pageCount':1}"), err,
              sizeof(err));
    assert_non_null(s);
    mdl_snapshot_free(s);
}

static void test_not_json(void **state)
{
    (void)state;
    expect_roles_error("", "empty body");
    expect_roles_error("<html>502 Bad Gateway</html>", "not JSON");
    expect_roles_error("{\"entities\":[", "truncated JSON");
    expect_roles_error("[]", "expected object, got array");
    expect_roles_error("42", "expected object, got number");
    expect_roles_error("null", "expected object or array, got null");
    expect_roles_error("  null  ", "got null");
    expect_roles_error(J(ENVELOPE("", 0) " {}"), "not JSON");
    expect_roles_error(J("{'entities':[],'pageSize':25,'pageNumber':1,'total':0,'pageCount':0,}"),
                       "not JSON");
    expect_roles_error(J("{'entities':[{'id':'a','name':'\xff\xfe'}],'pageSize':1,'pageNumber':1,"
                         "'total':1,'pageCount':1}"),
                       "not JSON: invalid utf-8");
    /* a NUL byte inside the body */
    char body[] = "{\"entities\":[],\"pageSize\":1,\"pageNumber\":1,\"total\":0,\"pageCount\":0}";
    body[20] = '\0';
    char err[256];
    struct mdl_snapshot *s = mdl_snapshot_new(CFG_API_GENESYS);
    struct gjs_page pg;
    assert_int_equal(gjs_parse_roles_page(s, body, sizeof(body) - 1, &pg, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "NUL byte"));
    assert_int_equal(gjs_parse_roles_page(s, NULL, 0, &pg, err, sizeof(err)), -1);
    mdl_snapshot_free(s);
}

static char *nested(size_t levels)
{
    struct pjson_buf b = {0};
    pjson_buf_puts(&b, "{\"entities\":[{\"id\":\"r\",\"name\":\"R\",\"permissionPolicies\":[{"
                       "\"domain\":\"d\",\"entityName\":\"e\",\"actionSet\":[\"a\"],"
                       "\"resourceConditionNode\":");
    /* 5 levels so far: root, entities, role, policies, policy */
    for (size_t i = 0; i < levels - 5; i++)
        pjson_buf_puts(&b, "{\"terms\":");
    pjson_buf_puts(&b, "null");
    for (size_t i = 0; i < levels - 5; i++)
        pjson_buf_puts(&b, "}");
    pjson_buf_puts(&b, "}]}],\"pageSize\":1,\"pageNumber\":1,\"total\":1,\"pageCount\":1}");
    return keep(pjson_buf_take(&b));
}

static void test_deep_nesting(void **state)
{
    (void)state;
    char err[256];
    expect_roles_error(nested(100), "JSON nested deeper than 64 levels");
    expect_roles_error(nested(65), "JSON nested deeper than 64 levels");
    struct mdl_snapshot *s = roles(nested(64), err, sizeof(err));
    if (!s)
        fail_msg("64 levels refused: %s", err);
    mdl_snapshot_free(s);
    /* 64 levels with a scalar inside are parsed twice (json-c counts the scalar as a level):
     * the second pass must word its own errors, here a body cut off at the deepest value */
    char *cut = nested(64);
    *(strstr(cut, "null") + 4) = '\0'; /* json-c at 64 stops for depth at the scalar first */
    expect_roles_error(cut, "truncated JSON");
    /* empty containers: 64 levels parse (and then fail the type check), 65 do not */
    struct pjson_ids ids;
    for (size_t lv = 63; lv <= 66; lv++) {
        char b[200];
        memset(b, '[', lv);
        memset(b + lv, ']', lv);
        assert_int_equal(gjs_parse_id_array(b, 2 * lv, &ids, err, sizeof(err)), -1);
        if (lv <= 64)
            assert_string_equal(err, "genesys id list: [0]: expected string, got array");
        else
            assert_string_equal(err, "genesys id list: JSON nested deeper than 64 levels");
    }
    /* 100,000 levels must not blow the stack either */
    size_t n = 100000;
    char *deep = xmalloc(2 * n + 1);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = '\0';
    expect_roles_error(keep(deep), "nested deeper than 64");
}

static void test_hostile_ids(void **state)
{
    (void)state;
    /* Printable ids are kept verbatim (product.md section 5: they are percent-encoded on the
     * way into a URL, see test_builders); control characters are refused. */
    const char *odd[] = {"a/b", "..", "a..b", "%2e%2e", "a'b", "a b", "a?b#c", "\u00fc@x"};
    const char *kept[] = {"a/b", "..", "a..b", "%2e%2e", "a'b", "a b", "a?b#c", "\xc3\xbc@x"};
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        char err[256];
        char *page = xasprintf("{\"entities\":[{\"id\":\"%s\",\"name\":\"X\"}],"
                               "\"pageSize\":1,\"pageNumber\":1,\"total\":1,\"pageCount\":1}",
                               odd[i]);
        struct mdl_snapshot *s = mdl_snapshot_new(CFG_API_GENESYS);
        struct gjs_page pg;
        assert_int_equal(gjs_parse_roles_page(s, page, strlen(page), &pg, err, sizeof(err)), 0);
        assert_string_equal(s->roles[0].id, kept[i]);
        mdl_snapshot_free(s);
        free(page);
    }
    role_error("{'id':'a\\u0000b','name':'X'}", "id contains a NUL character");
    role_error("{'id':'a\\u0001b','name':'X'}", "id contains a control character");
    role_error("{'id':'a\\nb','name':'X'}", "id contains a control character");
    role_error("{'id':'a\\u0085b','name':'X'}", "id contains a control character");
    role_error("{'id':'','name':'X'}", "id: must not be empty");
    role_error("{'name':'X'}", "entities[0].id: required field missing");
    role_error("{'id':null,'name':'X'}", "id: required field missing");
    role_error("{'id':7,'name':'X'}", "id: expected string, got number");
    role_error("{'id':['a'],'name':'X'}", "id: expected string, got array");
    char id[200];
    memset(id, 'a', 129);
    id[129] = '\0';
    char *r = xasprintf("{'id':'%s','name':'X'}", id);
    role_error(r, "id longer than 128 bytes");
    free(r);
    id[128] = '\0';
    r = xasprintf("{'entities':[{'id':'%s','name':'X'}],'pageSize':1,'pageNumber':1,'total':1,"
                  "'pageCount':1}",
                  id);
    char err[256];
    struct mdl_snapshot *s = roles(J(r), err, sizeof(err));
    free(r);
    assert_non_null(s);
    mdl_snapshot_free(s);
}

static void test_strings(void **state)
{
    (void)state;
    role_error("{'id':'a','name':''}", "name: must not be empty");
    role_error("{'id':'a','name':'Bad\\u0007Bell'}", "name: contains a control character");
    role_error("{'id':'a','name':'C1\\u0085'}", "name: contains a control character");
    role_error("{'id':'a','name':'N\\u0000UL'}", "name: contains a NUL character");
    role_error("{'id':'a','name':'X','description':'bad\\u001b[31m'}",
               "description: contains a control character");
    role_error("{'id':'a','name':'X','description':5}", "description: expected string");
    role_error("{'id':'a','name':'X','permissions':'admin'}", "permissions: expected array");
    role_error("{'id':'a','name':'X','permissions':['ok',3]}", "permissions[1]: expected string");
    role_error("{'id':'a','name':'X','permissions':['']}", "permissions[0]: must not be empty");
    role_error("{'id':'a','name':'X','permissionPolicies':[{'entityName':'e','actionSet':['a']}]}",
               "permissionPolicies[0].domain: required field missing");
    role_error("{'id':'a','name':'X','permissionPolicies':[{'domain':'d','entityName':'e'}]}",
               "permissionPolicies[0].actionSet: required field missing");
    role_error("{'id':'a','name':'X','permissionPolicies':[{'domain':'d','entityName':'e',"
               "'actionSet':['a',{}]}]}",
               "permissionPolicies[0].actionSet[1]: expected string, got object");
    role_error("{'id':'a','name':'X','permissionPolicies':[{'domain':'d','entityName':'e',"
               "'actionSet':['a'],'allowConditions':1}]}",
               "allowConditions: expected boolean, got number");
    role_error("{'id':'a','name':'X','permissionPolicies':[{'domain':'d','entityName':'e',"
               "'actionSet':['a'],'resourceConditionNode':'x'}]}",
               "resourceConditionNode: expected object, got string");
    role_error("{'id':'a','name':'X','permissionPolicies':[{'domain':'d','entityName':'e',"
               "'actionSet':['a'],'resourceConditionNode':{'v':1e400}}]}",
               "resourceConditionNode.v: number out of range");
    role_error("{'id':'a','name':'X','permissionPolicies':['p']}",
               "permissionPolicies[0]: expected object, got string");

    /* description: newlines allowed; limits at 256 / 4096 bytes */
    char err[256];
    struct mdl_snapshot *s = roles(
        J(ENVELOPE("{'id':'a','name':'X','description':'l1\\nl2\\tx'}", 1)), err, sizeof(err));
    assert_non_null(s);
    assert_string_equal(s->roles[0].description, "l1\nl2\tx");
    mdl_snapshot_free(s);

    char *big = xmalloc(5000);
    memset(big, 'n', 4097);
    big[257] = '\0';
    char *r = xasprintf("{'id':'a','name':'%s'}", big);
    role_error(r, "name: longer than 256 bytes");
    free(r);
    big[256] = '\0';
    r = xasprintf("{'entities':[{'id':'a','name':'%s'}],'pageSize':1,'pageNumber':1,'total':1,"
                  "'pageCount':1}",
                  big);
    s = roles(J(r), err, sizeof(err));
    assert_non_null(s);
    mdl_snapshot_free(s);
    free(r);
    memset(big, 'd', 4097);
    big[4097] = '\0';
    r = xasprintf("{'id':'a','name':'X','description':'%s'}", big);
    role_error(r, "description: longer than 4096 bytes");
    free(r);
    free(big);

    /* a 10 MB name */
    size_t n = 10u * 1024 * 1024;
    struct pjson_buf b = {0};
    pjson_buf_puts(&b, "{\"entities\":[{\"id\":\"a\",\"name\":\"");
    char *huge = xmalloc(n + 1);
    memset(huge, 'x', n);
    huge[n] = '\0';
    pjson_buf_puts(&b, huge);
    free(huge);
    pjson_buf_puts(&b, "\"}],\"pageSize\":1,\"pageNumber\":1,\"total\":1,\"pageCount\":1}");
    expect_roles_error(keep(pjson_buf_take(&b)), "entities[0].name: longer than 256 bytes");
}

static void test_page_is_atomic(void **state)
{
    (void)state;
    char err[256];
    struct mdl_snapshot *s = mdl_snapshot_new(CFG_API_GENESYS);
    struct gjs_page pg;
    const char *ok = J(ENVELOPE("{'id':'a','name':'A'}", 1));
    assert_int_equal(gjs_parse_roles_page(s, ok, strlen(ok), &pg, err, sizeof(err)), 0);
    const char *bad =
        J(ENVELOPE("{'id':'b','name':'B'},{'id':'c','name':'C'},{'id':'d\\u0001','name':'D'}", 3));
    assert_int_equal(gjs_parse_roles_page(s, bad, strlen(bad), &pg, err, sizeof(err)), -1);
    assert_string_equal(err, "genesys roles page: entities[2].id: id contains a control character");
    assert_int_equal(s->nroles, 1);
    assert_int_equal(pg.entities, 0);
    mdl_snapshot_free(s);
}

/* ------------------------------------------------------------------------------------------ */
/* Users                                                                                      */

static const char *USERS_PAGE =
    "{'entities':["
    "{'id':'u-ada','name':'Ada Lovelace','division':{'id':'d1','name':'Home'},"
    " 'email':'Ada@Example.com','username':'ada@example.com','state':'active','version':3,"
    " 'authorization':{'roles':[{'id':'r-emp','name':'Employee'},{'id':'r-sup','name':'Sup'},"
    "  {'id':'r-emp','name':'Employee'}]},'selfUri':'/api/v2/users/u-ada'},"
    "{'id':'u-bob','email':'bob@example.com','state':'inactive',"
    " 'authorization':{'roles':[{'id':'r-emp'},{'id':'r-gone'}]}},"
    "{'id':'u-cy','state':'deleted','email':'','authorization':{'roles':[]}}"
    "],'pageSize':500,'pageNumber':1,'total':3,'pageCount':1}";

static struct mdl_snapshot *two_roles(void)
{
    char err[256];
    struct mdl_snapshot *s =
        roles(J(ENVELOPE("{'id':'r-emp','name':'Employee','default':true,'defaultRoleId':"
                         "'employee'},{'id':'r-sup','name':'Sup'}",
                         2)),
              err, sizeof(err));
    assert_non_null(s);
    return s;
}

static void test_users_page(void **state)
{
    (void)state;
    char err[256];
    struct mdl_snapshot *s = two_roles();
    struct pjson_role_refs *refs = pjson_role_refs_new();
    struct gjs_page pg;
    const char *body = J(USERS_PAGE);
    assert_int_equal(gjs_parse_users_page(s, refs, body, strlen(body), &pg, err, sizeof(err)), 0);
    assert_int_equal(pg.entities, 3);
    assert_int_equal(pg.page_size, 500);
    assert_int_equal(s->nusers, 3);
    assert_int_equal(pjson_role_refs_count(refs), 5);
    assert_string_equal(s->users[0].email, "Ada@Example.com");
    assert_string_equal(s->users[0].username, "ada@example.com");
    assert_int_equal(s->users[0].state, MDL_USER_ACTIVE);
    assert_int_equal(s->users[1].state, MDL_USER_INACTIVE);
    assert_null(s->users[1].username);
    assert_int_equal(s->users[2].state, MDL_USER_DELETED);
    assert_null(s->users[2].email);
    assert_null(s->users[0].external_key);

    struct pjson_resolve_stats st;
    assert_int_equal(pjson_role_refs_resolve(refs, s, false, &st, err, sizeof(err)), 0);
    assert_int_equal(st.refs, 5);
    assert_int_equal(st.unknown_refs, 1);
    assert_int_equal(st.unknown_ids, 1);
    assert_string_equal(st.first_unknown, "r-gone");
    assert_int_equal(pjson_role_refs_count(refs), 0);
    assert_int_equal(s->nroles, 2);
    assert_int_equal(mdl_snapshot_finish(s, err, sizeof(err)), 0);
    assert_int_equal(s->users[0].ngrants, 2); /* duplicate grant collapsed */
    assert_true(mdl_user_has_role(&s->users[0], 0));
    assert_true(mdl_user_has_role(&s->users[0], 1));
    assert_int_equal(s->users[1].ngrants, 1);
    assert_int_equal(s->users[2].ngrants, 0);
    pjson_role_refs_free(refs);
    mdl_snapshot_free(s);
}

/* Pages are prepared apart (on worker threads) and committed in turn: users of a later page
 * must get its roles at their own snapshot indexes, and ids shared with an earlier page must
 * map to one entry. */
static void test_users_pages_committed_in_turn(void **state)
{
    (void)state;
    char err[256];
    struct mdl_snapshot *s = two_roles();
    struct pjson_role_refs *refs = pjson_role_refs_new();
    struct gjs_page pg;
    const char *a = J(USERS_PAGE);
    const char *b = J("{'entities':["
                      "{'id':'u-dd','state':'active','email':'dd@x','authorization':{'roles':"
                      "[{'id':'r-new2'},{'id':'r-sup'}]}},"
                      "{'id':'u-ee','state':'active','email':'ee@x','authorization':{'roles':"
                      "[{'id':'r-gone'},{'id':'r-emp'}]}}"
                      "],'pageSize':2,'pageNumber':2,'total':5,'pageCount':3}");
    assert_int_equal(gjs_parse_users_page(s, refs, a, strlen(a), &pg, err, sizeof(err)), 0);
    assert_int_equal(gjs_parse_users_page(s, refs, b, strlen(b), &pg, err, sizeof(err)), 0);
    assert_int_equal(s->nusers, 5);
    assert_int_equal(pjson_role_refs_count(refs), 9);
    struct pjson_resolve_stats st;
    assert_int_equal(pjson_role_refs_resolve(refs, s, false, &st, err, sizeof(err)), 0);
    assert_int_equal(st.refs, 9);
    assert_int_equal(st.unknown_refs, 3); /* r-gone twice, r-new2 once */
    assert_int_equal(st.unknown_ids, 2);
    assert_string_equal(st.first_unknown, "r-gone"); /* first seen, as when read in one go */
    assert_int_equal(mdl_snapshot_finish(s, err, sizeof(err)), 0);
    uint32_t dd = mdl_find_user_by_id(s, "u-dd"), ee = mdl_find_user_by_id(s, "u-ee");
    assert_int_equal(s->users[dd].ngrants, 1);
    assert_true(mdl_user_has_role(&s->users[dd], 1)); /* r-sup */
    assert_int_equal(s->users[ee].ngrants, 1);
    assert_true(mdl_user_has_role(&s->users[ee], 0)); /* r-emp */
    assert_int_equal(s->users[0].ngrants, 2);         /* page 1's users unchanged */
    pjson_role_refs_free(refs);
    mdl_snapshot_free(s);
}

/* Ids that share a slot of the recent-id cache stay apart, and a shorter cached id is never
 * read past its end (the fuzzer found a memcmp over the longer id's length; ASan in CI). */
static void test_role_refs_recent_cache_collision(void **state)
{
    (void)state;
    char err[256];
    struct mdl_snapshot *s = two_roles();
    struct mdl_user u = {.id = "u1", .email = "u1@x", .state = MDL_USER_ACTIVE};
    uint32_t ui = mdl_add_user(s, &u);
    struct pjson_role_refs *refs = pjson_role_refs_new();
    /* "r1" and "aes" fall into the same of the 256 slots (checked against recent_slot) */
    const char *ids[] = {"r1", "aes", "r1", "r-sup", "aes", "r-sup"};
    for (size_t i = 0; i < 6; i++) {
        char *copy = strdup(ids[i]); /* exact-size heap copies, as json-c's strings are */
        pjson_role_refs_add(refs, ui, copy);
        free(copy);
    }
    assert_int_equal(pjson_role_refs_count(refs), 6);
    struct pjson_resolve_stats st;
    assert_int_equal(pjson_role_refs_resolve(refs, s, false, &st, err, sizeof(err)), 0);
    assert_int_equal(st.unknown_ids, 2); /* r1 and aes, each interned once */
    assert_int_equal(st.unknown_refs, 4);
    assert_int_equal(mdl_snapshot_finish(s, err, sizeof(err)), 0);
    assert_int_equal(s->users[0].ngrants, 1); /* r-sup */
    pjson_role_refs_free(refs);
    mdl_snapshot_free(s);
}

/* Ids that differ only between their first and last eight bytes share a cache slot (the slot
 * mixes those), so the compare itself must tell them apart, wherever they differ. */
static void test_role_refs_same_slot_guids(void **state)
{
    (void)state;
    char err[256];
    struct mdl_snapshot *s = two_roles();
    struct mdl_user u = {.id = "u1", .email = "u1@x", .state = MDL_USER_ACTIVE};
    uint32_t ui = mdl_add_user(s, &u);
    struct pjson_role_refs *refs = pjson_role_refs_new();
    /* a GUID, and a longer id, changed at places the slot does not see */
    const char *base[] = {"2a06b24d-db98-4cf5-a0af-f109ae4ef029",
                          "2a06b24d-db98-4cf5-a0af-f109ae4ef029-0123456789"};
    const size_t at[] = {8, 15, 16, 19, 20, 27, 33, 38};
    size_t added = 0;
    for (size_t b = 0; b < 2; b++) {
        size_t n = strlen(base[b]);
        pjson_role_refs_add(refs, ui, base[b]);
        added++;
        for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
            if (at[i] + 8 >= n)
                continue;
            char id[64];
            memcpy(id, base[b], n + 1);
            id[at[i]] = id[at[i]] == 'x' ? 'y' : 'x';
            pjson_role_refs_add(refs, ui, id);
            pjson_role_refs_add(refs, ui, base[b]);
            added++;
        }
    }
    struct pjson_resolve_stats st;
    assert_int_equal(pjson_role_refs_resolve(refs, s, false, &st, err, sizeof(err)), 0);
    assert_int_equal(st.unknown_ids, added); /* every neighbour apart from its base */
    assert_int_equal(added, 2 + 6 + 8);
    pjson_role_refs_free(refs);
    mdl_snapshot_free(s);
}

static void test_users_keep_unknown(void **state)
{
    (void)state;
    char err[256];
    struct mdl_snapshot *s = two_roles();
    struct pjson_role_refs *refs = pjson_role_refs_new();
    struct gjs_page pg;
    const char *body = J(USERS_PAGE);
    assert_int_equal(gjs_parse_users_page(s, refs, body, strlen(body), &pg, err, sizeof(err)), 0);
    struct pjson_resolve_stats st;
    assert_int_equal(pjson_role_refs_resolve(refs, s, true, &st, err, sizeof(err)), 0);
    assert_int_equal(st.unknown_refs, 1);
    assert_int_equal(s->nroles, 3);
    assert_string_equal(s->roles[2].id, "r-gone");
    assert_true(s->roles[2].foreign);
    assert_int_equal(mdl_snapshot_finish(s, err, sizeof(err)), 0);
    assert_true(mdl_user_has_role(&s->users[1], 2));
    pjson_role_refs_free(refs);
    mdl_snapshot_free(s);
}

static void users_error(const char *user, const char *want)
{
    char err[512];
    struct mdl_snapshot *s = mdl_snapshot_new(CFG_API_GENESYS);
    struct pjson_role_refs *refs = pjson_role_refs_new();
    struct gjs_page pg;
    char *page = xasprintf("{\"entities\":[%s],\"pageSize\":1,\"pageNumber\":1,\"total\":1,"
                           "\"pageCount\":1}",
                           J(user));
    int rc = gjs_parse_users_page(s, refs, page, strlen(page), &pg, err, sizeof(err));
    free(page);
    assert_int_equal(s->nusers, 0);
    assert_int_equal(pjson_role_refs_count(refs), 0);
    pjson_role_refs_free(refs);
    mdl_snapshot_free(s);
    if (rc == 0)
        fail_msg("accepted: %s", user);
    if (!strstr(err, want))
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

static void test_users_errors(void **state)
{
    (void)state;
    users_error("{'id':'u','state':'active'}",
                "genesys users page: entities[0].authorization: required field missing");
    users_error("{'id':'u','state':'active','authorization':{}}",
                "entities[0].authorization.roles: required field missing");
    users_error("{'id':'u','state':'active','authorization':{'roles':[{'name':'x'}]}}",
                "entities[0].authorization.roles[0].id: required field missing");
    users_error("{'id':'u','state':'active','authorization':{'roles':['r1']}}",
                "authorization.roles[0]: expected object, got string");
    users_error("{'id':'u','state':'active','authorization':{'roles':[{'id':'\\u001badmin'}]}}",
                "authorization.roles[0].id: id contains a control character");
    users_error("{'id':'u','state':'suspended','authorization':{'roles':[]}}",
                "entities[0].state: expected active, inactive or deleted");
    users_error("{'id':'u','authorization':{'roles':[]}}", "state: required field missing");
    users_error("{'id':'u','state':'active','email':['a'],'authorization':{'roles':[]}}",
                "email: expected string, got array");
    users_error("{'id':'u\\u00011','state':'active','authorization':{'roles':[]}}",
                "id contains a control character");
    /* text checks past the eight-byte fast path: DEL, C1 and a tab deep in a long name */
    users_error("{'id':'u','state':'active','email':'abcdefghij\x7fklmnopqrstuvwx@x',"
                "'authorization':{'roles':[]}}",
                "email: contains a control character");
    users_error("{'id':'u','state':'active','email':'abcdefghij\\u0085klmnopqrstuvwx@x',"
                "'authorization':{'roles':[]}}",
                "email: contains a control character");
    users_error("{'id':'u','state':'active','username':'abcdefgh\\tijklmnop',"
                "'authorization':{'roles':[]}}",
                "username: contains a control character");
}

/* The users page is read by jscan (no tree) but keeps the json-c parsers' semantics: a repeated
 * member replaces the earlier one (roles included), escapes are decoded in names and ids, a
 * syntax error anywhere wins over a field error before it, and a member name holding U+0000 is
 * refused (json-c cut it at the NUL and read a second "id"; the two readers disagreed). */
static void test_users_page_scanned_semantics(void **state)
{
    (void)state;
    char err[512];
    struct mdl_snapshot *s = two_roles();
    struct pjson_role_refs *refs = pjson_role_refs_new();
    struct gjs_page pg;
    const char *body =
        J(ENVELOPE("{'id':'u1','id':'u\\u0032','email':'x@y','email':'\\u00c9lodie@example.com',"
                   "'state':'active','authorization':{'roles':[{'id':'r-sup'}]},"
                   "'authorization':{'roles':[{'id':'r1'}],'roles':[{'id':'r\\u002d\\u0065mp'},{'"
                   "id':'r-sup'}]}}",
                   1));
    assert_int_equal(gjs_parse_users_page(s, refs, body, strlen(body), &pg, err, sizeof(err)), 0);
    assert_int_equal(s->nusers, 1);
    assert_string_equal(s->users[0].id, "u2");
    assert_string_equal(s->users[0].email, "\xc3\x89lodie@example.com");
    assert_int_equal(pjson_role_refs_count(refs), 2);
    struct pjson_resolve_stats st;
    assert_int_equal(pjson_role_refs_resolve(refs, s, false, &st, err, sizeof(err)), 0);
    assert_int_equal(st.unknown_refs, 0);
    assert_int_equal(mdl_snapshot_finish(s, err, sizeof(err)), 0);
    assert_int_equal(s->users[0].ngrants, 2);
    pjson_role_refs_free(refs);
    mdl_snapshot_free(s);

    /* field error (state) first in the body, truncation later: the syntax error is reported */
    s = two_roles();
    refs = pjson_role_refs_new();
    const char *cut = J("{'entities':[{'id':'u','state':'bogus','authorization':{'roles':[]}},"
                        "{'id':'v'");
    assert_int_equal(gjs_parse_users_page(s, refs, cut, strlen(cut), &pg, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "truncated JSON"));
    assert_int_equal(s->nusers, 0);

    const char *nul = J(ENVELOPE("{'id':'u1','id\\u0000x':'u2','state':'active',"
                                 "'authorization':{'roles':[]}}",
                                 1));
    assert_int_equal(gjs_parse_users_page(s, refs, nul, strlen(nul), &pg, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not JSON: member name holds U+0000"));
    assert_int_equal(s->nusers, 0);
    assert_int_equal(pjson_role_refs_count(refs), 0);
    pjson_role_refs_free(refs);
    mdl_snapshot_free(s);
}

/* A page body of many small elements: the counts in the messages are the real ones, while what
 * is recorded stops at the first element sure to fail (memory stays bounded, as the review of
 * the pull reader found it was not: 2.7 GB for a 32 MB page of zeros). */
static char *repeated(const char *head, const char *item, size_t n, const char *tail)
{
    size_t hl = strlen(head), il = strlen(item), tl = strlen(tail);
    char *b = xmalloc(hl + n * (il + 1) + tl + 1), *p = b;
    memcpy(p, head, hl);
    p += hl;
    for (size_t i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        memcpy(p, item, il);
        p += il;
    }
    memcpy(p, tail, tl + 1);
    return b;
}

static void expect_users_body_error(char *body, const char *want)
{
    char err[512];
    struct mdl_snapshot *s = mdl_snapshot_new(CFG_API_GENESYS);
    struct pjson_role_refs *refs = pjson_role_refs_new();
    struct gjs_page pg;
    int rc = gjs_parse_users_page(s, refs, body, strlen(body), &pg, err, sizeof(err));
    free(body);
    assert_int_equal(rc, -1);
    assert_int_equal(s->nusers, 0);
    if (!strstr(err, want))
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
    pjson_role_refs_free(refs);
    mdl_snapshot_free(s);
}

static void test_users_page_counts_past_recording(void **state)
{
    (void)state;
    expect_users_body_error(repeated("{\"entities\":[", "0", 150000,
                                     "],\"pageSize\":500,\"pageNumber\":1,\"total\":1,"
                                     "\"pageCount\":1}"),
                            "entities: array of 150000 elements exceeds the limit of 100000");
    expect_users_body_error(repeated("{\"entities\":[", "0", 300,
                                     "],\"pageSize\":500,\"pageNumber\":1,\"total\":300,"
                                     "\"pageCount\":1}"),
                            "entities[0]: expected object, got number");
    expect_users_body_error(repeated("{\"entities\":[{\"id\":\"u\",\"state\":\"active\","
                                     "\"authorization\":{\"roles\":[",
                                     "{\"id\":\"r\"}", 150000,
                                     "]}}],\"pageSize\":500,\"pageNumber\":1,\"total\":1,"
                                     "\"pageCount\":1}"),
                            "authorization.roles: array of 150000 elements exceeds the limit");
    /* the first failing reference is the one reported, however many follow it */
    expect_users_body_error(repeated("{\"entities\":[{\"id\":\"u\",\"state\":\"active\","
                                     "\"authorization\":{\"roles\":[{\"id\":\"r\"},",
                                     "7", 1000,
                                     "]}},{\"id\":\"v\"}],\"pageSize\":500,\"pageNumber\":1,"
                                     "\"total\":2,\"pageCount\":1}"),
                            "entities[0].authorization.roles[1]: expected object, got number");
    /* a JSON null body is worded as pjson_parse words it */
    expect_users_body_error(xstrdup("null"), "expected object or array, got null");
}

static void test_duplicate_ids(void **state)
{
    (void)state;
    char err[256];
    /* duplicate role ids (e.g. an entry that moved between pages during the read) */
    struct mdl_snapshot *s =
        roles(J(ENVELOPE("{'id':'r1','name':'A'},{'id':'r1','name':'B'}", 2)), err, sizeof(err));
    assert_non_null(s);
    struct pjson_role_refs *refs = pjson_role_refs_new();
    struct pjson_resolve_stats st;
    assert_int_equal(pjson_role_refs_resolve(refs, s, false, &st, err, sizeof(err)), -1);
    assert_string_equal(err, "role listing: two roles share the id r1");
    assert_int_equal(mdl_snapshot_finish(s, err, sizeof(err)), -1);
    pjson_role_refs_free(refs);
    mdl_snapshot_free(s);

    /* duplicate user ids: the model refuses the snapshot at finish */
    s = two_roles();
    refs = pjson_role_refs_new();
    struct gjs_page pg;
    const char *u = J("{'entities':[{'id':'u1','state':'active','authorization':{'roles':[]}},"
                      "{'id':'u1','state':'active','authorization':{'roles':[]}}],"
                      "'pageSize':2,'pageNumber':1,'total':2,'pageCount':1}");
    assert_int_equal(gjs_parse_users_page(s, refs, u, strlen(u), &pg, err, sizeof(err)), 0);
    assert_int_equal(pjson_role_refs_resolve(refs, s, false, &st, err, sizeof(err)), 0);
    assert_int_equal(mdl_snapshot_finish(s, err, sizeof(err)), -1);
    pjson_role_refs_free(refs);
    mdl_snapshot_free(s);
}

/* ------------------------------------------------------------------------------------------ */
/* Permissions, single objects                                                                */

static void test_permissions_pages(void **state)
{
    (void)state;
    char err[256];
    struct mdl_snapshot *s = mdl_snapshot_new(CFG_API_GENESYS);
    struct gjs_page pg;
    const char *p1 = J("{'entities':[{'id':'routing','name':'routing','domain':'routing',"
                       "'permissionMap':{'queue':[{'domain':'routing','entityType':'queue',"
                       "'action':'view','label':'View'}]}},{'domain':'directory'}],"
                       "'pageSize':2,'pageNumber':1,'total':3,'pageCount':2}");
    const char *p2 = J("{'entities':[{'id':'analytics'}],'pageSize':2,'pageNumber':2,'total':3,"
                       "'pageCount':2}");
    const char *p3 = J("{'entities':[{'domain':'routing'}],'pageSize':2,'pageNumber':2,"
                       "'total':3,'pageCount':2}");
    assert_int_equal(gjs_parse_permissions_page(s, p2, strlen(p2), &pg, err, sizeof(err)), 0);
    assert_int_equal(gjs_parse_permissions_page(s, p1, strlen(p1), &pg, err, sizeof(err)), 0);
    assert_int_equal(gjs_parse_permissions_page(s, p3, strlen(p3), &pg, err, sizeof(err)), 0);
    assert_int_equal(s->nlicensed_domains, 3);
    assert_string_equal(s->licensed_domains[0], "analytics");
    assert_string_equal(s->licensed_domains[1], "directory");
    assert_string_equal(s->licensed_domains[2], "routing");
    const char *bad = J("{'entities':[{'name':'x'}],'pageSize':2,'pageNumber':1,'total':1,"
                        "'pageCount':1}");
    assert_int_equal(gjs_parse_permissions_page(s, bad, strlen(bad), &pg, err, sizeof(err)), -1);
    assert_string_equal(
        err, "genesys permissions page: entities[0]: permission collection without a domain");
    assert_int_equal(s->nlicensed_domains, 3);
    mdl_snapshot_free(s);
}

static void test_single_role(void **state)
{
    (void)state;
    char err[256];
    struct pjson_role r;
    const char *body = J("{'id':'0d5c3c5e-1f5a-4b6e-9a0e-000000000003','name':'Queue Supervisor',"
                         "'description':'Supervises queues','permissions':[],"
                         "'permissionPolicies':[{'domain':'routing','entityName':'queue',"
                         "'actionSet':['edit','view'],'allowConditions':true,"
                         "'resourceConditionNode':{'terms':[{'variableName':'Conversation.queues',"
                         "'operator':'EQ','operands':[{'type':'QUEUE','queue':{'id':'q1'}}]}],"
                         "'conjunction':'AND'}},{'domain':'analytics','entityName':"
                         "'conversationDetail','actionSet':['view'],'policyName':'p'}],"
                         "'userCount':0,'default':false,'base':false,"
                         "'selfUri':'/api/v2/authorization/roles/0d5c3c5e'}");
    assert_int_equal(gjs_parse_role(body, strlen(body), &r, err, sizeof(err)), 0);
    assert_string_equal(r.id, "0d5c3c5e-1f5a-4b6e-9a0e-000000000003");
    assert_string_equal(r.name, "Queue Supervisor");
    assert_string_equal(r.description, "Supervises queues");
    assert_null(r.builtin_key);
    assert_string_equal(r.def_canon, SUPERVISOR_CANON);
    assert_string_equal(r.def_json, SUPERVISOR_CANON);
    pjson_role_free(&r);
    assert_null(r.id);
    pjson_role_free(NULL);

    assert_int_equal(gjs_parse_role("[]", 2, &r, err, sizeof(err)), -1);
    assert_string_equal(err, "genesys role: expected object, got array");
    assert_null(r.id);
    const char *bad = J("{'id':'x','name':'N','permissionPolicies':[{'domain':'d'}]}");
    assert_int_equal(gjs_parse_role(bad, strlen(bad), &r, err, sizeof(err)), -1);
    assert_string_equal(err,
                        "genesys role: permissionPolicies[0].entityName: required field missing");
}

static void test_user_authorization_and_id_arrays(void **state)
{
    (void)state;
    char err[256];
    struct pjson_ids ids;
    const char *ua = J("{'roles':[{'id':'r-emp','name':'Employee'},{'id':'r-sup','name':'Sup'}],"
                       "'permissions':['admin'],'permissionPolicies':[{'id':'p','domain':'d',"
                       "'actionSetKey':'x','resourceCondition':'c'}]}");
    assert_int_equal(gjs_parse_user_authorization(ua, strlen(ua), &ids, err, sizeof(err)), 0);
    assert_int_equal(ids.n, 2);
    assert_string_equal(ids.v[0], "r-emp");
    assert_string_equal(ids.v[1], "r-sup");
    pjson_ids_free(&ids);
    assert_int_equal(ids.n, 0);
    const char *ua2 = J("{'roles':[{'id':'r\\u0002'}]}");
    assert_int_equal(gjs_parse_user_authorization(ua2, strlen(ua2), &ids, err, sizeof(err)), -1);
    assert_string_equal(err,
                        "genesys user authorization: roles[0].id: id contains a control character");
    assert_int_equal(gjs_parse_user_authorization("{}", 2, &ids, err, sizeof(err)), -1);
    assert_string_equal(err, "genesys user authorization: roles: required field missing");

    const char *arr = J("['u1','u2','u3']");
    assert_int_equal(gjs_parse_id_array(arr, strlen(arr), &ids, err, sizeof(err)), 0);
    assert_int_equal(ids.n, 3);
    assert_string_equal(ids.v[2], "u3");
    pjson_ids_free(&ids);
    assert_int_equal(gjs_parse_id_array("[]", 2, &ids, err, sizeof(err)), 0);
    assert_int_equal(ids.n, 0);
    pjson_ids_free(&ids);
    const char *arr2 = J("['u1',null]");
    assert_int_equal(gjs_parse_id_array(arr2, strlen(arr2), &ids, err, sizeof(err)), -1);
    assert_string_equal(err, "genesys id list: [1]: expected string, got null");
    assert_int_equal(gjs_parse_id_array("{\"a\":1}", 7, &ids, err, sizeof(err)), -1);
    assert_string_equal(err, "genesys id list: expected array, got object");
}

static void test_error_body(void **state)
{
    (void)state;
    struct pjson_error_info e;
    const char *b429 =
        J("{'message':'Rate limit exceeded the maximum. Retry the request in [42] seconds',"
          "'code':'too.many.requests.retry.after','status':429,'contextId':"
          "'7d5b6f3c-0000-4000-8000-000000000042','details':[],'errors':[]}");
    assert_int_equal(gjs_parse_error(b429, strlen(b429), &e), 0);
    assert_string_equal(e.code, "too.many.requests.retry.after");
    assert_int_equal(e.status, 429);
    assert_string_equal(e.correlation_id, "7d5b6f3c-0000-4000-8000-000000000042");
    assert_string_equal(e.message,
                        "Rate limit exceeded the maximum. Retry the request in [42] seconds");
    const char *ctl = J("{'message':'line1\\nline2\\u0007','code':7}");
    assert_int_equal(gjs_parse_error(ctl, strlen(ctl), &e), 0);
    assert_string_equal(e.message, "line1?line2?");
    assert_string_equal(e.code, "");
    assert_int_equal(gjs_parse_error("<html>", 6, &e), -1);
    assert_string_equal(e.message, "");
    /* the engine's one line (prov_genesys.error_message): the message, control characters
     * collapsed; nothing for other shapes (the engine then reads it generically) */
    char line[128];
    gjs_error_line(b429, strlen(b429), line, sizeof line);
    assert_string_equal(line, "Rate limit exceeded the maximum. Retry the request in [42] seconds");
    gjs_error_line(ctl, strlen(ctl), line, sizeof line);
    assert_string_equal(line, "line1 line2");
    const char *oauth = J("{'error':'invalid_client','description':'x'}");
    gjs_error_line(oauth, strlen(oauth), line, sizeof line);
    assert_string_equal(line, "");
    gjs_error_line("<html>", 6, line, sizeof line);
    assert_string_equal(line, "");
    assert_int_equal(gjs_parse_error("[]", 2, &e), -1);
    assert_int_equal(gjs_parse_error("{}", 2, &e), -1);
    assert_int_equal(gjs_parse_error(NULL, 0, &e), -1);
    /* long messages are cut on a UTF-8 boundary */
    struct pjson_buf b = {0};
    pjson_buf_puts(&b, "{\"message\":\"");
    for (int i = 0; i < 400; i++)
        pjson_buf_puts(&b, "\xc3\xa9"); /* é */
    pjson_buf_puts(&b, "\"}");
    char *body = pjson_buf_take(&b);
    assert_int_equal(gjs_parse_error(body, strlen(body), &e), 0);
    assert_int_equal(strlen(e.message), 510);
    free(body);
}

/* ------------------------------------------------------------------------------------------ */
/* Builders                                                                                   */

static void test_build_role_bodies(void **state)
{
    (void)state;
    char err[256];
    char *b = gjs_build_role_create("Queue Supervisor", "Supervises \"queues\"", SUPERVISOR_CANON,
                                    err, sizeof(err));
    assert_non_null(b);
    char *want = xasprintf("{\"name\":\"Queue Supervisor\",\"description\":\"Supervises "
                           "\\\"queues\\\"\",%s",
                           SUPERVISOR_CANON + 1);
    assert_string_equal(b, want);
    free(want);
    /* round trip: the body read back as a role has the same canonical definition */
    char *withid = xasprintf("{\"id\":\"new-role\",%s", b + 1);
    struct pjson_role r;
    assert_int_equal(gjs_parse_role(withid, strlen(withid), &r, err, sizeof(err)), 0);
    assert_string_equal(r.def_canon, SUPERVISOR_CANON);
    assert_string_equal(r.description, "Supervises \"queues\"");
    pjson_role_free(&r);
    free(withid);
    free(b);

    b = gjs_build_role_create("R", NULL, NULL, err, sizeof(err));
    assert_string_equal(b, "{\"name\":\"R\",\"permissions\":[],\"permissionPolicies\":[]}");
    free(b);
    b = gjs_build_role_update(
        "R", NULL, "{\"permissionPolicies\":[],\"permissions\":[\"b\",\"a\"]}", err, sizeof(err));
    assert_string_equal(b, "{\"name\":\"R\",\"description\":\"\",\"permissions\":[\"a\",\"b\"],"
                           "\"permissionPolicies\":[]}");
    free(b);
    assert_null(gjs_build_role_update(NULL, "d", NULL, err, sizeof(err)));
    assert_string_equal(err, "genesys role body: the role name is required");
    assert_null(gjs_build_role_update("", "d", NULL, err, sizeof(err)));
    assert_null(gjs_build_role_update("R\x01", "d", NULL, err, sizeof(err)));
    assert_string_equal(err, "genesys role body: name: contains a control character");
    assert_null(gjs_build_role_create("R", NULL, "{\"permissions\":[1]}", err, sizeof(err)));
    assert_string_equal(err,
                        "genesys role definition: permissions[0]: expected string, got number");
    assert_null(gjs_build_role_create("R", NULL, "not json", err, sizeof(err)));

    struct mdl_role target = {
        .id = "t-emp", .name = "Employee", .description = "Default", .builtin_key = "employee"};
    b = gjs_build_default_role_update(
        &target, "{\"permissions\":[\"x\"],\"permissionPolicies\":[]}", err, sizeof(err));
    assert_string_equal(b, "{\"name\":\"Employee\",\"description\":\"Default\",\"permissions\":"
                           "[\"x\"],\"permissionPolicies\":[]}");
    free(b);
    assert_null(gjs_build_default_role_update(NULL, NULL, err, sizeof(err)));
}

static void test_build_arrays_and_paths(void **state)
{
    (void)state;
    char err[256];
    const char *ids[] = {"u1", "u\"2", "u\\3\n"};
    char *b = pjson_build_string_array(ids, 3);
    assert_string_equal(b, "[\"u1\",\"u\\\"2\",\"u\\\\3\\n\"]");
    free(b);
    b = pjson_build_string_array(NULL, 0);
    assert_string_equal(b, "[]");
    free(b);

    char *seg = pjson_path_segment("0d5c3c5e-1f5a-4b6e-9a0e-000000000003", err, sizeof(err));
    assert_string_equal(seg, "0d5c3c5e-1f5a-4b6e-9a0e-000000000003");
    free(seg);
    const char *odd[][2] = {{"a/b", "a%2Fb"},       {"..", "%2E%2E"},
                            {".", "%2E"},           {"a..b", "a..b"},
                            {"a%20", "a%2520"},     {"a b", "a%20b"},
                            {"a\"b", "a%22b"},      {"x?y=1#z", "x%3Fy%3D1%23z"},
                            {"\xc3\xbc", "%C3%BC"}, {"../../users", "..%2F..%2Fusers"}};
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        seg = pjson_path_segment(odd[i][0], err, sizeof(err));
        assert_non_null(seg);
        assert_string_equal(seg, odd[i][1]);
        free(seg);
    }
    const char *bad[] = {"", "x\x01", "x\x7f", "x\xc2\x85"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_null(pjson_path_segment(bad[i], err, sizeof(err)));
        assert_non_null(strstr(err, "invalid id: "));
    }
    assert_null(pjson_path_segment(NULL, err, sizeof(err)));
    char id[200];
    memset(id, '7', 129);
    id[129] = '\0';
    assert_null(pjson_path_segment(id, err, sizeof(err)));
    assert_string_equal(err, "invalid id: id longer than 128 bytes");
    assert_int_equal(pjson_check_id("a\0b", 3, err, sizeof(err)), -1);
    assert_string_equal(err, "invalid id: id contains a NUL character");
    assert_int_equal(pjson_check_id("employee", 8, err, sizeof(err)), 0);
    /* Every byte at every position of a 40-byte id (the first 32 are checked sixteen at a time,
     * the rest one by one): only printable ASCII passes, alone in otherwise clean text. */
    char g[41];
    for (int c = 1; c < 256; c++) {
        for (size_t at = 0; at < 40; at++) {
            memcpy(g, "2a06b24d-db98-4cf5-a0af-f109ae4ef029.x_~", 40);
            g[at] = (char)c;
            bool want = c >= 0x20 && c < 0x7f;
            assert_int_equal(pjson_check_id(g, 40, err, sizeof(err)), want ? 0 : -1);
        }
    }
    for (size_t n = 1; n <= 40; n++) /* clean ids of every length */
        assert_int_equal(
            pjson_check_id("2a06b24d-db98-4cf5-a0af-f109ae4ef029.x_~", n, err, sizeof(err)), 0);
}

/* ---- version 2 reads (product.md 4a) ---- */

/* 4a.6: a definition naming the org's objects is marked, with the first object named. */
static void test_org_references(void **state)
{
    (void)state;
    char err[256];
    struct mdl_snapshot *s =
        roles(J(ENVELOPE("{'id':'q','name':'Queue Lead','permissionPolicies':[{'domain':'routing',"
                         "'entityName':'queue','actionSet':['view'],'resourceConditionNode':{"
                         "'conjunction':'AND','terms':[{'variableName':'Conversation.queues',"
                         "'operator':'EQ','operands':[{'type':'QUEUE','queue':{'id':"
                         "'9f0c1e2a-0000-4000-8000-000000000001'}}]}]}}]},"
                         "{'id':'u','name':'User Cond','permissionPolicies':[{'domain':'d',"
                         "'entityName':'e','actionSet':['v'],'resourceConditionNode':{"
                         "'variableName':'x','operator':'EQ','operands':[{'type':'SCALAR','value':"
                         "'1'},{'type':'USER','user':{'id':'1b2c'}}]}}]},"
                         "{'id':'n','name':'Named','permissionPolicies':[{'domain':'d',"
                         "'entityName':'e','actionSet':['v'],'namedResources':['abc123456789']}]},"
                         "{'id':'p','name':'Plain','permissionPolicies':[{'domain':'d',"
                         "'entityName':'e','actionSet':['v'],'resourceConditionNode':{"
                         "'variableName':'x','operator':'EQ','operands':[{'type':'SCALAR',"
                         "'value':'1'}]}}]}",
                         4)),
              err, sizeof(err));
    assert_non_null(s);
    assert_string_equal(s->roles[0].uncopyable, "queue 9f0c1e2a...");
    assert_string_equal(s->roles[1].uncopyable, "user 1b2c");
    assert_string_equal(s->roles[2].uncopyable, "named resource abc12345...");
    assert_null(s->roles[3].uncopyable); /* a scalar condition names nothing of the org */
    mdl_snapshot_free(s);
}

static void test_divisions_page(void **state)
{
    (void)state;
    char err[256];
    struct gjs_page pg;
    struct mdl_snapshot *s = mdl_snapshot_new(CFG_API_GENESYS);
    const char *body = J(ENVELOPE("{'id':'d-emea','name':'EMEA','homeDivision':false},"
                                  "{'id':'d-home','name':'Home','homeDivision':true}",
                                  2));
    assert_int_equal(gjs_parse_divisions_page(s, body, strlen(body), &pg, err, sizeof err), 0);
    assert_int_equal(pg.entities, 2);
    assert_int_equal(s->nquals, 2);
    assert_string_equal(s->quals[0].id, "d-home");
    assert_string_equal(s->quals[0].name, "Home");
    assert_string_equal(s->quals[1].name, "EMEA");
    /* a second home, on this page or a later one, and the id "*", are refused whole */
    const char *again = J(ENVELOPE("{'id':'d-2','name':'Two','homeDivision':true}", 1));
    assert_int_equal(gjs_parse_divisions_page(s, again, strlen(again), &pg, err, sizeof err), -1);
    assert_non_null(strstr(err, "second home division"));
    const char *star = J(ENVELOPE("{'id':'*','name':'All'}", 1));
    assert_int_equal(gjs_parse_divisions_page(s, star, strlen(star), &pg, err, sizeof err), -1);
    const char *noname = J(ENVELOPE("{'id':'d-3'}", 1));
    assert_int_equal(gjs_parse_divisions_page(s, noname, strlen(noname), &pg, err, sizeof err), -1);
    assert_int_equal(s->nquals, 2); /* nothing of a failed page */
    mdl_snapshot_free(s);
}

/* Grant references intern their user ids: many users over many roles (the id table grows
 * several times), ids that are prefixes of each other, a user the listing lacks counted once
 * per role it holds (however many divisions), and every grant landing on its own user. */
static void test_grant_refs_interned(void **state)
{
    (void)state;
    char err[256], id[32];
    struct mdl_snapshot *s = two_roles();
    mdl_set_home(s, "d-home", "Home");
    uint32_t emea = mdl_add_qual(s, &(struct mdl_qual){.id = "d-emea", .name = "EMEA"});
    struct pjson_grant_refs *g = pjson_grant_refs_new();
    enum { N = 5000 };
    for (uint32_t role = 0; role < 2; role++)
        for (int u = 0; u < N; u++) {
            int n = snprintf(id, sizeof id, "u%d", u); /* "u1" is a prefix of "u10" */
            pjson_grant_refs_add(g, id, (size_t)n, role, "d-home", 6);
            if (u % 3 == 0)
                pjson_grant_refs_add(g, id, (size_t)n, role, "d-emea", 6);
        }
    pjson_grant_refs_add(g, "ghost", 5, 0, "d-home", 6);
    pjson_grant_refs_add(g, "ghost", 5, 0, "d-emea", 6);
    pjson_grant_refs_add(g, "ghost", 5, 1, "d-home", 6);
    for (int u = N - 1; u >= 0; u--) { /* users listed in another order than the grants */
        snprintf(id, sizeof id, "u%d", u);
        char email[40];
        snprintf(email, sizeof email, "%s@x", id);
        mdl_add_user(s, &(struct mdl_user){.id = id, .email = email});
    }
    struct pjson_grant_stats st;
    assert_int_equal(pjson_grant_refs_resolve(g, s, &st, err, sizeof err), 0);
    size_t per_role = N + (N + 2) / 3;
    assert_int_equal(st.grants, 2 * per_role);
    assert_int_equal(st.unknown_users, 2); /* ghost: once for role 0, once for role 1 */
    assert_int_equal(s->roles[0].other_holders, 1);
    assert_int_equal(s->roles[1].other_holders, 1);
    assert_int_equal(mdl_snapshot_finish(s, err, sizeof err), 0);
    for (int u = 0; u < N; u++) {
        snprintf(id, sizeof id, "u%d", u);
        const struct mdl_user *usr = &s->users[mdl_find_user_by_id(s, id)];
        assert_int_equal(usr->ngrants, u % 3 == 0 ? 4 : 2);
        assert_true(mdl_user_has_grant(usr, 0, 0));
        assert_true(mdl_user_has_grant(usr, 1, 0));
        assert_int_equal(mdl_user_has_grant(usr, 1, emea), u % 3 == 0);
    }
    pjson_grant_refs_free(g);
    mdl_snapshot_free(s);
}

/* Subject grants: users' (role, division) pairs wait for the users; other subjects count as
 * holders outside; a user the listing lacks too; unknown divisions get a nameless qualifier. */
static void test_subject_grants_pages(void **state)
{
    (void)state;
    char err[256];
    struct gjs_page pg;
    struct mdl_snapshot *s = two_roles();
    mdl_set_home(s, "d-home", "Home");
    uint32_t emea = mdl_add_qual(s, &(struct mdl_qual){.id = "d-emea", .name = "EMEA"});
    mdl_add_qual(s, &(struct mdl_qual){.id = "*", .name = "*", .all = true});
    struct pjson_grant_refs *g = pjson_grant_refs_new();
    const char *body =
        J(ENVELOPE("{'id':'u1','type':'PC_USER','divisions':[{'id':'d-home'},{'id':'d-emea'}]},"
                   "{'id':'g1','type':'PC_GROUP','divisions':[{'id':'d-home'}]},"
                   "{'id':'c1','type':'PC_OAUTH_CLIENT','divisions':[{'id':'*'}]},"
                   "{'id':'u9','type':'PC_USER','divisions':[{'id':'d-home'}]},"
                   "{'id':'u2','type':'PC_USER','divisions':[{'id':'d-new'}]}",
                   5));
    assert_int_equal(
        gjs_parse_subjectgrants_page(s, g, 1, body, strlen(body), &pg, err, sizeof err), 0);
    assert_int_equal(pg.entities, 5);
    assert_int_equal(s->roles[1].other_holders, 2);
    const char *bad = J(ENVELOPE("{'id':'u1','type':'PC_USER','divisions':'d-home'}", 1));
    assert_int_equal(gjs_parse_subjectgrants_page(s, g, 1, bad, strlen(bad), &pg, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "entities[0].divisions"));
    assert_int_equal(s->roles[1].other_holders, 2); /* nothing of a failed page */
    mdl_add_user(s, &(struct mdl_user){.id = "u1", .email = "a@x"});
    mdl_add_user(s, &(struct mdl_user){.id = "u2", .email = "b@x"});
    struct pjson_grant_stats st;
    assert_int_equal(pjson_grant_refs_resolve(g, s, &st, err, sizeof err), 0);
    assert_int_equal(st.grants, 3);
    assert_int_equal(st.unknown_users, 1);
    assert_int_equal(st.unknown_divisions, 1);
    assert_int_equal(s->roles[1].other_holders, 3); /* u9 */
    assert_int_equal(mdl_snapshot_finish(s, err, sizeof err), 0);
    assert_true(mdl_user_has_grant(&s->users[0], 1, 0));
    assert_true(mdl_user_has_grant(&s->users[0], 1, emea));
    assert_int_equal(s->nquals, 4);
    assert_null(s->quals[3].name); /* d-new: no name, matches nothing elsewhere */
    assert_true(mdl_user_has_grant(&s->users[1], 1, 3));
    pjson_grant_refs_free(g);
    mdl_snapshot_free(s);
}

/* One user's grants (rolesyncd --explain): direct and inherited (the group as subjectId), each
 * field checked; a group's name, optional. */
static void test_subject_and_group(void **state)
{
    (void)state;
    char err[256];
    struct prov_subject_grant *g;
    size_t n;
    const char *body =
        J("{'id':'u1','name':'Ada','grants':["
          "{'subjectId':'u1','division':{'id':'d-home','homeDivision':true},"
          "'role':{'id':'r1','name':'A'},'grantMadeAt':'2026-01-01T00:00:00Z'},"
          "{'subjectId':'g1','division':{'id':'*'},'role':{'id':'r2'}}],'version':1}");
    assert_int_equal(gjs_parse_subject(body, strlen(body), &g, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(g[0].subject_id, "u1");
    assert_string_equal(g[0].qual_id, "d-home");
    assert_string_equal(g[1].role_id, "r2");
    assert_string_equal(g[1].subject_id, "g1");
    assert_string_equal(g[1].qual_id, "*");
    assert_null(g[1].subject_name);
    gjs_subject_free(g, n);
    const char *bad = J("{'grants':[{'subjectId':'u1','division':{},'role':{'id':'r1'}}]}");
    assert_int_equal(gjs_parse_subject(bad, strlen(bad), &g, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "grants[0].division.id"));
    assert_null(g);
    const char *none = J("{'id':'u1'}");
    assert_int_equal(gjs_parse_subject(none, strlen(none), &g, &n, err, sizeof err), -1);
    assert_int_equal(gjs_parse_subject("[]", 2, &g, &n, err, sizeof err), -1);

    char *name;
    const char *grp = J("{'id':'g1','name':'Agents','memberCount':3}");
    assert_int_equal(gjs_parse_group_name(grp, strlen(grp), &name, err, sizeof err), 0);
    assert_string_equal(name, "Agents");
    free(name);
    const char *anon = J("{'id':'g1'}");
    assert_int_equal(gjs_parse_group_name(anon, strlen(anon), &name, err, sizeof err), 0);
    assert_null(name);
    assert_int_equal(gjs_parse_group_name("nope", 4, &name, err, sizeof err), -1);
}

/* Users without the expansion (the offset listing) and through the cursor listing. */
static void test_users_plain_and_cursor(void **state)
{
    (void)state;
    char err[256], *cursor = NULL;
    struct gjs_page pg;
    struct mdl_snapshot *s = two_roles();
    const char *plain = J("{'entities':[{'id':'u1','email':'a@x','state':'active'}],"
                          "'pageSize':500,'pageNumber':1,'total':1,'pageCount':1}");
    assert_int_equal(gjs_users_commit(gjs_users_prepare_mode(plain, strlen(plain), GJS_USERS_PLAIN),
                                      s, NULL, &pg, err, sizeof err),
                     0);
    /* the version 1 page needs the expansion */
    assert_int_equal(gjs_users_commit(gjs_users_prepare_mode(plain, strlen(plain), GJS_USERS_ROLES),
                                      s, NULL, &pg, err, sizeof err),
                     -1);
    const char *c1 = J("{'entities':[{'id':'u2','email':'b@x','state':'inactive'}],'results':1,"
                       "'cursor':'abc','nextUri':'/api/v2/users/query?cursor=abc'}");
    assert_int_equal(
        gjs_users_commit_cursor(gjs_users_prepare_mode(c1, strlen(c1), GJS_USERS_CURSOR), s, NULL,
                                &pg, &cursor, err, sizeof err),
        0);
    assert_string_equal(cursor, "abc");
    assert_int_equal(pg.entities, 1);
    free(cursor);
    const char *last = J("{'entities':[],'results':0}");
    assert_int_equal(
        gjs_users_commit_cursor(gjs_users_prepare_mode(last, strlen(last), GJS_USERS_CURSOR), s,
                                NULL, &pg, &cursor, err, sizeof err),
        0);
    assert_null(cursor);
    const char *liar = J("{'entities':[],'results':3,'cursor':'x'}");
    assert_int_equal(
        gjs_users_commit_cursor(gjs_users_prepare_mode(liar, strlen(liar), GJS_USERS_CURSOR), s,
                                NULL, &pg, &cursor, err, sizeof err),
        -1);
    assert_null(cursor);
    assert_int_equal(s->nusers, 2);
    mdl_snapshot_free(s);
}

static void test_grant_bodies(void **state)
{
    (void)state;
    const char *ids[] = {"u1", "u\"2"};
    char *b = gjs_build_subject_divisions(ids, 2, "d-home");
    assert_string_equal(b, "{\"subjectIds\":[\"u1\",\"u\\\"2\"],\"divisionIds\":[\"d-home\"]}");
    free(b);
    const char *roles[] = {"r1", "r2"}, *divs[] = {"*", "d-emea"};
    b = gjs_build_role_division_grants(roles, divs, 2);
    assert_string_equal(b, "{\"grants\":[{\"roleId\":\"r1\",\"divisionId\":\"*\"},{\"roleId\":"
                           "\"r2\",\"divisionId\":\"d-emea\"}]}");
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roles_page),
        cmocka_unit_test(test_subject_and_group),
        cmocka_unit_test(test_canon_order_insensitive),
        cmocka_unit_test(test_canon_detects_changes),
        cmocka_unit_test(test_builtin_keys),
        cmocka_unit_test(test_envelope_errors),
        cmocka_unit_test(test_not_json),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_hostile_ids),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_page_is_atomic),
        cmocka_unit_test(test_users_page),
        cmocka_unit_test(test_users_page_scanned_semantics),
        cmocka_unit_test(test_users_page_counts_past_recording),
        cmocka_unit_test(test_users_pages_committed_in_turn),
        cmocka_unit_test(test_role_refs_recent_cache_collision),
        cmocka_unit_test(test_role_refs_same_slot_guids),
        cmocka_unit_test(test_users_keep_unknown),
        cmocka_unit_test(test_users_errors),
        cmocka_unit_test(test_duplicate_ids),
        cmocka_unit_test(test_permissions_pages),
        cmocka_unit_test(test_single_role),
        cmocka_unit_test(test_user_authorization_and_id_arrays),
        cmocka_unit_test(test_error_body),
        cmocka_unit_test(test_build_role_bodies),
        cmocka_unit_test(test_build_arrays_and_paths),
        cmocka_unit_test(test_org_references),
        cmocka_unit_test(test_divisions_page),
        cmocka_unit_test(test_subject_grants_pages),
        cmocka_unit_test(test_grant_refs_interned),
        cmocka_unit_test(test_users_plain_and_cursor),
        cmocka_unit_test(test_grant_bodies),
    };
    return cmocka_run_group_tests(tests, NULL, teardown_group);
}
