/* auth.h — OAuth 2 client-credentials pieces used by the HTTP engine's token manager.
 *
 * Pure helpers, no I/O: build the token request for a tenant's style, read the token reply,
 * and compute when a token must be renewed. The token state machine (caching, single flight,
 * retries, renewal on 401) lives in http.c; it is documented in http.h.
 *
 * Everything returned here that carries a secret (the request body, the Authorization header,
 * the access token) is released with the matching *_clear() function, which overwrites it first.
 */
#ifndef ROLESYNC_AUTH_H
#define ROLESYNC_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "rolesync/http.h"

/* Renewal margin ceiling: a token is renewed no later than this before it expires. */
#define AUTH_RENEW_MARGIN_MAX_MS (5u * 60u * 1000u)
/* Longest access token accepted (real ones are JWTs of 1–4 KiB). */
#define AUTH_TOKEN_MAX_LEN 16384

/* A token request ready to send: POST it to the token URL as
 * application/x-www-form-urlencoded. */
struct auth_request {
    char *body;          /* form body; holds the secret for HTTP_AUTH_POST_FORM */
    char *authorization; /* "Authorization: Basic ..." header line, or NULL */
};

/* Fill `out` for `style` (HTTP_AUTH_BASIC_FORM: genesys, Basic base64(id:secret) and body
 * grant_type=client_credentials; HTTP_AUTH_POST_FORM: identity, form grant_type, client_id,
 * client_secret, percent-encoded). Returns 0, or -1 for HTTP_AUTH_NONE. */
int auth_build_request(enum http_auth style, const char *client_id, const char *client_secret,
                       struct auth_request *out);
void auth_request_clear(struct auth_request *r);

/* Standard base64 (RFC 4648, with padding) of n bytes into out, which must hold
 * 4*((n+2)/3)+1 bytes. Returns the length written (without the NUL). */
size_t auth_base64(const unsigned char *in, size_t n, char *out);

struct auth_token {
    char *access_token;   /* visible ASCII only (safe in a header line), never logged */
    uint64_t lifetime_ms; /* expires_in */
};

/* Read a 200 token reply: JSON with access_token (1..AUTH_TOKEN_MAX_LEN visible ASCII
 * characters), expires_in (> 0 seconds), token_type absent or "bearer" in any case.
 * Returns 0 and fills *tok (caller clears it), or -1 with the reason in err. */
int auth_parse_token(const char *body, size_t len, struct auth_token *tok, char *err,
                     size_t errlen);
void auth_token_clear(struct auth_token *tok);

/* How long before expiry a token is renewed: min(5 min, 10 % of its lifetime). */
uint64_t auth_renew_margin_ms(uint64_t lifetime_ms);

#endif
