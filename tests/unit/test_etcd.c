/* test_etcd.c — etcd v3 JSON gateway messages (etcd.h): encoders and decoders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "rolesync/etcd.h"

static void test_base64_round_trip(void **state)
{
    (void)state;
    const char *in[] = {"", "f", "fo", "foo", "foob", "/rolesyncd/jobs/a/b"};
    const char *b64[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "L3JvbGVzeW5jZC9qb2JzL2EvYg=="};
    for (size_t i = 0; i < sizeof in / sizeof *in; i++) {
        char *e = etcd_b64(in[i], strlen(in[i])), *d = NULL;
        size_t n;
        assert_string_equal(e, b64[i]);
        assert_int_equal(etcd_unb64(e, &d, &n), 0);
        assert_int_equal(n, strlen(in[i]));
        assert_string_equal(d, in[i]);
        free(e);
        free(d);
    }
    char *d = NULL;
    assert_int_equal(etcd_unb64("Zm9", &d, NULL), -1);
    assert_int_equal(etcd_unb64("Z!9v", &d, NULL), -1);
}

static void test_prefix_end(void **state)
{
    (void)state;
    char *e = etcd_prefix_end("/rolesyncd/");
    assert_string_equal(e, "/rolesyncd0");
    free(e);
}

static void test_put_if_absent_shape(void **state)
{
    (void)state;
    char *s = etcd_enc_put_if_absent("/p/jobs/j1", "host:1", 7587883262113923600LL);
    json_object *o = json_tokener_parse(s), *v;
    assert_non_null(o);
    json_object *cmp = json_object_array_get_idx(json_object_object_get(o, "compare"), 0);
    assert_string_equal(json_object_get_string(json_object_object_get(cmp, "target")), "CREATE");
    assert_string_equal(json_object_get_string(json_object_object_get(cmp, "create_revision")),
                        "0");
    json_object *put = json_object_object_get(
        json_object_array_get_idx(json_object_object_get(o, "success"), 0), "request_put");
    assert_true(json_object_object_get_ex(put, "lease", &v));
    /* 64-bit ids travel as strings: a double would round this one */
    assert_string_equal(json_object_get_string(v), "7587883262113923600");
    assert_string_equal(json_object_get_string(json_object_object_get(put, "key")),
                        "L3Avam9icy9qMQ==");
    json_object_put(o);
    free(s);
}

static void test_fence_compares_revision_and_lease(void **state)
{
    (void)state;
    char *s = etcd_enc_held("/p/jobs/j1", 42, 99);
    json_object *o = json_tokener_parse(s);
    json_object *cmp = json_object_object_get(o, "compare");
    assert_int_equal(json_object_array_length(cmp), 2);
    json_object *c0 = json_object_array_get_idx(cmp, 0), *c1 = json_object_array_get_idx(cmp, 1);
    assert_string_equal(json_object_get_string(json_object_object_get(c0, "create_revision")),
                        "42");
    assert_string_equal(json_object_get_string(json_object_object_get(c1, "target")), "LEASE");
    assert_string_equal(json_object_get_string(json_object_object_get(c1, "lease")), "99");
    json_object_put(o);
    free(s);
}

static void test_decode_grant_and_keepalive(void **state)
{
    (void)state;
    struct etcd_reply r;
    const char *g = "{\"header\":{\"cluster_id\":\"1\",\"revision\":\"1\"},\"ID\":"
                    "\"4111120418865093637\",\"TTL\":\"5\"}";
    assert_int_equal(etcd_decode(ETCD_GRANT, g, strlen(g), &r), 0);
    assert_true(r.ok);
    assert_true(r.id == 4111120418865093637LL);
    assert_int_equal(r.ttl, 5);
    etcd_reply_clear(&r);
    /* an expired lease: the gateway leaves TTL out */
    const char *k = "{\"result\":{\"header\":{\"revision\":\"2\"},\"ID\":\"12345\"}}";
    assert_int_equal(etcd_decode(ETCD_KEEPALIVE, k, strlen(k), &r), 0);
    assert_int_equal(r.id, 12345);
    assert_int_equal(r.ttl, 0);
    etcd_reply_clear(&r);
}

static void test_decode_txn(void **state)
{
    (void)state;
    struct etcd_reply r;
    const char *ok = "{\"header\":{\"revision\":\"2\"},\"succeeded\":true,\"responses\":[{"
                     "\"response_put\":{\"header\":{\"revision\":\"2\"}}}]}";
    assert_int_equal(etcd_decode(ETCD_TXN, ok, strlen(ok), &r), 0);
    assert_true(r.succeeded);
    assert_int_equal(r.revision, 2);
    etcd_reply_clear(&r);
    /* failed compare: "succeeded" left out; the failure branch's range names the holder */
    const char *ko = "{\"header\":{\"revision\":\"2\"},\"responses\":[{\"response_range\":{"
                     "\"header\":{\"revision\":\"2\"},\"kvs\":[{\"key\":\"Zm9v\","
                     "\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\","
                     "\"value\":\"YmFy\",\"lease\":\"77\"}],\"count\":\"1\"}}]}";
    assert_int_equal(etcd_decode(ETCD_TXN, ko, strlen(ko), &r), 0);
    assert_false(r.succeeded);
    assert_int_equal(r.nkvs, 1);
    assert_string_equal(r.kvs[0].key, "foo");
    assert_string_equal(r.kvs[0].value, "bar");
    assert_int_equal(r.kvs[0].lease, 77);
    assert_int_equal(r.kvs[0].create_revision, 2);
    etcd_reply_clear(&r);
}

static void test_explain_gateway_error(void **state)
{
    (void)state;
    const char *body = "{\"error\":\"connection closed\",\"message\":\"connection closed\","
                       "\"code\":14}";
    struct etcd_reply r;
    memset(&r, 0, sizeof r);
    etcd_decode_error(body, strlen(body), &r);
    assert_int_equal(r.code, 14);
    assert_string_equal(r.error, "connection closed");
    etcd_explain_error("http://127.0.0.1:2379", &r); /* plain http: said as it is */
    assert_string_equal(r.error, "connection closed");
    etcd_explain_error("https://etcd-1:2379", &r);
    assert_non_null(strstr(r.error, "must also allow clientAuth"));
    char before[sizeof r.error];
    snprintf(before, sizeof before, "%s", r.error);
    etcd_explain_error("https://etcd-1:2379", &r); /* said once */
    assert_string_equal(r.error, before);
    memset(&r, 0, sizeof r);
    r.code = 14;
    snprintf(r.error, sizeof r.error, "etcdserver: no leader");
    etcd_explain_error("https://etcd-1:2379", &r);
    assert_string_equal(r.error, "etcdserver: no leader");
}

static void test_decode_errors(void **state)
{
    (void)state;
    struct etcd_reply r;
    memset(&r, 0, sizeof r);
    const char *e = "{\"error\":\"etcdserver: invalid auth token\",\"code\":16,"
                    "\"message\":\"etcdserver: invalid auth token\"}";
    etcd_decode_error(e, strlen(e), &r);
    assert_int_equal(r.code, 16);
    assert_string_equal(r.error, "etcdserver: invalid auth token");
    assert_int_equal(etcd_decode(ETCD_RANGE, "not json", 8, &r), -1);
    assert_false(r.ok);
    const char *bad = "{\"kvs\":[{\"key\":\"!!\"}]}";
    assert_int_equal(etcd_decode(ETCD_RANGE, bad, strlen(bad), &r), -1);
    etcd_reply_clear(&r);
    const char *tok = "{\"header\":{},\"token\":\"abc.def\"}";
    assert_int_equal(etcd_decode(ETCD_AUTH, tok, strlen(tok), &r), 0);
    assert_string_equal(r.token, "abc.def");
    etcd_reply_clear(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_round_trip),
        cmocka_unit_test(test_prefix_end),
        cmocka_unit_test(test_put_if_absent_shape),
        cmocka_unit_test(test_fence_compares_revision_and_lease),
        cmocka_unit_test(test_decode_grant_and_keepalive),
        cmocka_unit_test(test_decode_txn),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_explain_gateway_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
