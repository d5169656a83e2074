/* tenants.h — the configured tenants as the providers use them: one HTTP engine tenant each.
 *
 * A tnt_set is built from one config and lives as long as something may still use it (the
 * daemon keeps the old set alive across a reload until no cycle of the old config runs).
 * Tenants with identical settings in two configs are not shared: a reload starts fresh tokens
 * and limits, which is simple and costs one token request per tenant.
 */
#ifndef ROLESYNC_TENANTS_H
#define ROLESYNC_TENANTS_H

#include <stddef.h>

#include <uv.h>

#include "rolesync/config.h"
#include "rolesync/http.h"
#include "rolesync/metrics.h"
#include "rolesync/provider.h"

struct tnt_set {
    struct prov_tenant *t; /* one per cfg->tenants entry, same order */
    size_t n;
};

/* Create an engine tenant per config tenant. Borrows cfg (must outlive the set). Returns NULL
 * with a message in err when one cannot be set up. */
struct tnt_set *tnt_set_new(uv_loop_t *loop, struct http_engine *engine,
                            const struct cfg_config *cfg, char *err, size_t errlen);
/* The tenant configured as `cfg_tenant` (pointer identity), or NULL. */
const struct prov_tenant *tnt_find(const struct tnt_set *s, const struct cfg_tenant *cfg_tenant);
/* Append every tenant's HTTP counters (API and token attempts) to `rows` (names borrowed from
 * the set's config). */
void tnt_set_metrics_rows(const struct tnt_set *s, struct metrics_rows *rows);
/* Free the engine tenants (their pending requests are cancelled) and the set. NULL is fine. */
void tnt_set_free(struct tnt_set *s);

#endif
