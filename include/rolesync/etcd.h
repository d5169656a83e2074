/* etcd.h — a small etcd v3 client over its JSON gateway (grpc-gateway, HTTP/1.1 or 2 with
 * JSON bodies), riding on the HTTP engine (http.h): no second HTTP stack, no gRPC library.
 *
 * Two layers:
 *   - pure encoders and decoders of the gateway's messages (keys and values base64, 64-bit
 *     integers as decimal strings, fields left out when they hold their default: a missing
 *     "succeeded" is false, a missing "TTL" is 0). Unit-tested without a network.
 *   - etcd_client: one engine tenant per endpoint, no engine retries (a failed call moves to
 *     the next endpoint at once, so a lease keep-alive is never held up behind a backoff),
 *     optional username/password login (/v3/auth/authenticate; the token is sent as
 *     "Authorization: <token>" and renewed once when etcd says it is invalid).
 *
 * Calls used by coord.c: lease grant, keep-alive (one request, one reply), revoke, range,
 * txn (put-if-absent by create_revision == 0, compare-and-delete, the fence's compare on
 * create_revision and lease).
 *
 * Ownership: encoders return malloc'd JSON text (the caller frees); etcd_decode fills a reply
 * that etcd_reply_clear releases. The password given to etcd_client_new is copied and wiped on
 * free; tokens and passwords are never logged.
 */
#ifndef ROLESYNC_ETCD_H
#define ROLESYNC_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rolesync/config.h"
#include "rolesync/http.h"

enum etcd_call {
    ETCD_GRANT = 0, /* /v3/lease/grant */
    ETCD_KEEPALIVE, /* /v3/lease/keepalive */
    ETCD_REVOKE,    /* /v3/lease/revoke */
    ETCD_RANGE,     /* /v3/kv/range */
    ETCD_TXN,       /* /v3/kv/txn */
    ETCD_AUTH,      /* /v3/auth/authenticate */
    ETCD_NCALLS
};

struct etcd_kv {
    char *key, *value; /* decoded from base64, NUL-terminated */
    int64_t lease;     /* 0 = none */
    int64_t create_revision, mod_revision;
};

struct etcd_reply {
    bool ok;             /* the call was answered and understood */
    long status;         /* HTTP status, 0 when no reply */
    int code;            /* gRPC code of an error reply (16 = unauthenticated), else 0 */
    char error[300];     /* why not ok: transport error, etcd's message, unreadable reply */
    int64_t revision;    /* header.revision */
    int64_t id, ttl;     /* lease grant / keep-alive: the lease and its TTL in seconds (0: gone) */
    bool succeeded;      /* txn: the compare held */
    struct etcd_kv *kvs; /* range: the keys; txn: those of its first range response */
    size_t nkvs;
    char *token; /* authenticate: the token (a secret) */
};

/* base64 (standard alphabet, padded). etcd_unb64 returns 0, or -1 on bad input. */
char *etcd_b64(const char *s, size_t n);
int etcd_unb64(const char *s, char **out, size_t *outlen);

char *etcd_enc_grant(int64_t ttl_s);
char *etcd_enc_lease(int64_t id); /* keep-alive and revoke: {"ID": id} */
char *etcd_enc_range_prefix(const char *prefix);
/* Put key=value under `lease` if the key does not exist (create_revision == 0); else read it
 * (the failure branch returns the key: its holder). */
char *etcd_enc_put_if_absent(const char *key, const char *value, int64_t lease);
/* Put key=value under `lease` unconditionally (the member key). */
char *etcd_enc_put(const char *key, const char *value, int64_t lease);
/* The fence: succeeds only while `key` is the one this holder created (create_revision) and
 * is still attached to `lease` (a key whose lease expired is gone: create_revision 0). */
char *etcd_enc_held(const char *key, int64_t create_revision, int64_t lease);
/* Delete `key` only if it is still ours (as etcd_enc_held). */
char *etcd_enc_delete_if_held(const char *key, int64_t create_revision, int64_t lease);
/* {"name", "password"}: a secret; free with util_free_secret. */
char *etcd_enc_auth(const char *user, const char *password);

/* Decode a 2xx reply body of call `kind` into *out (zeroed first). Returns 0, or -1 with
 * out->error set. An error body ({"error"|"message", "code"}) is decoded by etcd_decode_error. */
int etcd_decode(enum etcd_call kind, const char *body, size_t len, struct etcd_reply *out);
void etcd_decode_error(const char *body, size_t len, struct etcd_reply *out);
/* Add what an operator needs to an error etcd's gateway gives without saying why: over https,
 * "connection closed" (gRPC code 14) is the gateway failing to reach etcd's own gRPC service,
 * which it dials with the server certificate as its client certificate -- with
 * --client-cert-auth that certificate must also allow clientAuth (etcd-io/etcd#9785,
 * #16590). Pure. */
void etcd_explain_error(const char *endpoint, struct etcd_reply *r);
void etcd_reply_clear(struct etcd_reply *r);
/* The end of a prefix range: the prefix with its last byte incremented. Caller frees. */
char *etcd_prefix_end(const char *prefix);

/* ---- the client ---- */

struct etcd_client;
typedef void (*etcd_cb)(const struct etcd_reply *r, void *arg);

/* One tenant per endpoint on `e`, TLS from `c` (ca_file, client certificate), requests cut
 * after `timeout_ms`. Returns NULL with a message in err. */
struct etcd_client *etcd_client_new(struct http_engine *e, const struct cfg_coord *c,
                                    uint64_t timeout_ms, char *err, size_t errlen);
/* Send one call with a body from the encoders (copied). `cb` runs once, from the loop, unless
 * the client is freed first. */
void etcd_call(struct etcd_client *c, enum etcd_call kind, const char *body, etcd_cb cb, void *arg);
/* The endpoint the next call goes to (for logs). */
const char *etcd_client_endpoint(const struct etcd_client *c);
/* Cancel every call; no callback runs after this. Memory goes once the engine has delivered
 * the cancellations. */
void etcd_client_free(struct etcd_client *c);

#endif
