/* auth.c — OAuth 2 client-credentials request building and token reply parsing (pure). */
#include "rolesync/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "rolesync/util.h"

size_t auth_base64(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0, i = 0;

    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
        out[o++] = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

/* application/x-www-form-urlencoded value: unreserved characters stay, the rest is %XX. */
static char *form_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = xmalloc(n * 3 + 1), *o = out;

    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

int auth_build_request(enum http_auth style, const char *client_id, const char *client_secret,
                       struct auth_request *out)
{
    out->body = NULL;
    out->authorization = NULL;

    if (style == HTTP_AUTH_BASIC_FORM) {
        /* RFC 6749 §2.3.1 wants id and secret form-encoded before the Basic encoding; the
         * platform's SDKs send them raw. Genesys ids and secrets are plain ASCII either way,
         * so raw keeps us byte-identical with the SDKs. */
        size_t nid = strlen(client_id), nsec = strlen(client_secret);
        size_t nraw = nid + 1 + nsec;
        char *raw = xmalloc(nraw + 1);
        memcpy(raw, client_id, nid);
        raw[nid] = ':';
        memcpy(raw + nid + 1, client_secret, nsec + 1);

        static const char prefix[] = "Authorization: Basic ";
        size_t nb64 = 4 * ((nraw + 2) / 3);
        char *hdr = xmalloc(sizeof(prefix) + nb64);
        memcpy(hdr, prefix, sizeof(prefix) - 1);
        auth_base64((const unsigned char *)raw, nraw, hdr + sizeof(prefix) - 1);
        util_free_secret(raw);

        out->authorization = hdr;
        out->body = xstrdup("grant_type=client_credentials");
        return 0;
    }
    if (style == HTTP_AUTH_POST_FORM) {
        char *id = form_encode(client_id), *sec = form_encode(client_secret);
        out->body =
            xasprintf("grant_type=client_credentials&client_id=%s&client_secret=%s", id, sec);
        free(id);
        util_free_secret(sec);
        return 0;
    }
    return -1;
}

void auth_request_clear(struct auth_request *r)
{
    util_free_secret(r->body);
    util_free_secret(r->authorization);
    r->body = NULL;
    r->authorization = NULL;
}

static int token_chars_ok(const char *s, size_t n)
{
    /* Visible ASCII only: the token goes verbatim into a header line. */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

int auth_parse_token(const char *body, size_t len, struct auth_token *tok, char *err, size_t errlen)
{
    struct json_object *root, *v;
    char perr[160];
    int rc = -1;

    tok->access_token = NULL;
    tok->lifetime_ms = 0;

    root = http_parse_json(body, len, perr, sizeof(perr));
    if (!root) {
        snprintf(err, errlen, "token reply is not JSON: %s", perr);
        return -1;
    }
    if (!json_object_is_type(root, json_type_object)) {
        snprintf(err, errlen, "token reply is not a JSON object");
        goto out;
    }
    if (!json_object_object_get_ex(root, "access_token", &v) ||
        !json_object_is_type(v, json_type_string)) {
        snprintf(err, errlen, "token reply lacks access_token");
        goto out;
    }
    const char *at = json_object_get_string(v);
    size_t atlen = (size_t)json_object_get_string_len(v);
    if (atlen == 0 || atlen > AUTH_TOKEN_MAX_LEN || !token_chars_ok(at, atlen)) {
        snprintf(err, errlen, "token reply has an unusable access_token");
        goto out;
    }
    if (json_object_object_get_ex(root, "token_type", &v) &&
        (!json_object_is_type(v, json_type_string) ||
         strcasecmp(json_object_get_string(v), "bearer") != 0)) {
        snprintf(err, errlen, "token reply has an unsupported token_type");
        goto out;
    }
    if (!json_object_object_get_ex(root, "expires_in", &v) ||
        !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))) {
        snprintf(err, errlen, "token reply lacks expires_in");
        goto out;
    }
    double secs = json_object_get_double(v);
    if (!(secs >= 1) || secs > 366.0 * 24 * 3600) {
        snprintf(err, errlen, "token reply has an unusable expires_in");
        goto out;
    }
    tok->access_token = xstrndup(at, atlen);
    tok->lifetime_ms = (uint64_t)(secs * 1000.0);
    rc = 0;
out:
    /* json-c keeps its own copy of the token; overwrite it before the object is freed. */
    if (json_object_object_get_ex(root, "access_token", &v) &&
        json_object_is_type(v, json_type_string)) {
        char *p = (char *)json_object_get_string(v);
        size_t n = (size_t)json_object_get_string_len(v);
        volatile char *vp = p;
        for (size_t i = 0; i < n; i++)
            vp[i] = 0;
    }
    json_object_put(root);
    return rc;
}

void auth_token_clear(struct auth_token *tok)
{
    util_free_secret(tok->access_token);
    tok->access_token = NULL;
    tok->lifetime_ms = 0;
}

uint64_t auth_renew_margin_ms(uint64_t lifetime_ms)
{
    uint64_t tenth = lifetime_ms / 10;
    return tenth < AUTH_RENEW_MARGIN_MAX_MS ? tenth : AUTH_RENEW_MARGIN_MAX_MS;
}
