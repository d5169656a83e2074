/* tenants.c — engine tenants for a config's tenants, shared across configs when unchanged. */
#include "rolesync/tenants.h"

#include <stdlib.h>
#include <string.h>

#include "rolesync/util.h"

/* One engine tenant and the number of sets using it. */
struct tnt_conn {
    struct http_tenant *http;
    unsigned refs;
};

static bool str_same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Everything the engine tenant was built from (http_tenant_new copies these). */
static bool same_connection(const struct cfg_tenant *a, const struct cfg_tenant *b)
{
    const struct cfg_http *x = &a->http, *y = &b->http;
    return a->api == b->api && str_same(a->name, b->name) && str_same(a->base_url, b->base_url) &&
           str_same(a->write_base_url, b->write_base_url) && str_same(a->token_url, b->token_url) &&
           str_same(a->client_id, b->client_id) && str_same(a->client_secret, b->client_secret) &&
           x->timeout_ms == y->timeout_ms && x->connect_timeout_ms == y->connect_timeout_ms &&
           x->max_connections == y->max_connections && x->rate_per_sec == y->rate_per_sec &&
           str_same(x->ca_file, y->ca_file) && x->retry_max_attempts == y->retry_max_attempts &&
           x->retry_initial_delay_ms == y->retry_initial_delay_ms &&
           x->retry_max_delay_ms == y->retry_max_delay_ms;
}

static struct tnt_conn *conn_new(struct http_engine *engine, const struct cfg_tenant *ct, char *err,
                                 size_t errlen)
{
    const struct prov_ops *ops = prov_for_api(ct->api);
    struct http_tenant_opts o = {
        .name = ct->name,
        .auth = ops->auth,
        .base_url = ct->base_url,
        .write_base_url = ct->write_base_url,
        .token_url = ct->token_url,
        .client_id = ct->client_id,
        .client_secret = ct->client_secret,
        .correlation_header = ops->correlation_header,
        .http = &ct->http,
        .error_message = ops->error_message,
        .rate_window = ops->rate_window,
    };
    struct http_tenant *h = http_tenant_new(engine, &o, err, errlen);
    if (!h)
        return NULL;
    struct tnt_conn *c = xcalloc(1, sizeof *c);
    c->http = h;
    c->refs = 1;
    return c;
}

struct tnt_set *tnt_set_new(uv_loop_t *loop, struct http_engine *engine,
                            const struct cfg_config *cfg, const struct tnt_set *prev, char *err,
                            size_t errlen)
{
    struct tnt_set *s = xcalloc(1, sizeof *s);
    size_t n = cfg->ntenants ? cfg->ntenants : 1;
    s->t = xcalloc(n, sizeof *s->t);
    s->conn = xcalloc(n, sizeof *s->conn);
    for (size_t i = 0; i < cfg->ntenants; i++) {
        const struct cfg_tenant *ct = &cfg->tenants[i];
        struct tnt_conn *c = NULL;
        for (size_t k = 0; prev && !c && k < prev->n; k++) {
            if (same_connection(prev->t[k].cfg, ct)) {
                c = prev->conn[k];
                c->refs++;
            }
        }
        if (!c && !(c = conn_new(engine, ct, err, errlen))) {
            tnt_set_free(s);
            return NULL;
        }
        s->t[i].cfg = ct;
        s->t[i].loop = loop;
        s->t[i].http = c->http;
        s->conn[i] = c;
        s->n = i + 1;
    }
    return s;
}

const struct prov_tenant *tnt_find(const struct tnt_set *s, const struct cfg_tenant *cfg_tenant)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->t[i].cfg == cfg_tenant)
            return &s->t[i];
    return NULL;
}

bool tnt_set_last_user(const struct tnt_set *s, size_t i)
{
    return i < s->n && s->conn[i]->refs == 1;
}

void tnt_sets_metrics_rows(const struct tnt_set *const *sets, size_t nsets,
                           struct metrics_rows *rows)
{
    for (size_t a = 0; a < nsets; a++) {
        for (size_t i = 0; sets[a] && i < sets[a]->n; i++) {
            const struct tnt_conn *c = sets[a]->conn[i];
            bool seen = false; /* a connection shared by two sets counts once */
            for (size_t b = 0; b <= a && !seen; b++)
                for (size_t k = 0; sets[b] && k < (b == a ? i : sets[b]->n) && !seen; k++)
                    seen = sets[b]->conn[k] == c;
            if (seen)
                continue;
            const struct http_counters *k = http_tenant_counters(c->http);
            metrics_rows_add(rows, sets[a]->t[i].cfg->name, k->by_status, k->token_by_status,
                             k->retries + k->token_retries);
        }
    }
}

void tnt_set_free(struct tnt_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        if (--s->conn[i]->refs == 0) {
            http_tenant_free(s->conn[i]->http);
            free(s->conn[i]);
        }
    }
    free(s->conn);
    free(s->t);
    free(s);
}
