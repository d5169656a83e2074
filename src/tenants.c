/* tenants.c — engine tenants for a config's tenants. */
#include "rolesync/tenants.h"

#include <stdlib.h>

#include "rolesync/util.h"

struct tnt_set *tnt_set_new(uv_loop_t *loop, struct http_engine *engine,
                            const struct cfg_config *cfg, char *err, size_t errlen)
{
    struct tnt_set *s = xcalloc(1, sizeof *s);
    s->t = xcalloc(cfg->ntenants ? cfg->ntenants : 1, sizeof *s->t);
    for (size_t i = 0; i < cfg->ntenants; i++) {
        const struct cfg_tenant *ct = &cfg->tenants[i];
        struct http_tenant_opts o = {
            .name = ct->name,
            .auth = prov_auth_style(ct->api),
            .base_url = ct->base_url,
            .token_url = ct->token_url,
            .client_id = ct->client_id,
            .client_secret = ct->client_secret,
            .correlation_header = prov_correlation_header(ct->api),
            .http = &ct->http,
        };
        s->t[i].cfg = ct;
        s->t[i].loop = loop;
        s->t[i].http = http_tenant_new(engine, &o, err, errlen);
        if (!s->t[i].http) {
            s->n = i;
            tnt_set_free(s);
            return NULL;
        }
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

void tnt_set_free(struct tnt_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        http_tenant_free(s->t[i].http);
    free(s->t);
    free(s);
}

void tnt_set_metrics_rows(const struct tnt_set *s, struct metrics_rows *rows)
{
    for (size_t i = 0; s && i < s->n; i++) {
        const struct http_counters *c = http_tenant_counters(s->t[i].http);
        metrics_rows_add(rows, s->t[i].cfg->name, c->by_status, c->token_by_status,
                         c->retries + c->token_retries);
    }
}
