/* tenants.h — the configured tenants as the providers use them: one HTTP engine tenant each.
 *
 * A tnt_set is built from one config and lives as long as something may still use it (the
 * daemon keeps the old set alive across a reload until no cycle of the old config runs).
 * Across a reload, a tenant whose connection settings did not change (name, api, URLs, client
 * id and secret, http block) keeps its engine tenant: its token, connections, rate limit and
 * pauses are shared by the cycles of both configs, as product.md 7 asks of jobs sharing a
 * tenant. Engine tenants are reference-counted by the sets using them.
 */
#ifndef ROLESYNC_TENANTS_H
#define ROLESYNC_TENANTS_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "rolesync/config.h"
#include "rolesync/http.h"
#include "rolesync/metrics.h"
#include "rolesync/provider.h"

struct tnt_conn;

struct tnt_set {
    struct prov_tenant *t;  /* one per cfg->tenants entry, same order */
    struct tnt_conn **conn; /* the engine tenant behind t[i].http, shared with other sets */
    size_t n;
};

/* Create an engine tenant per config tenant, or share the one of `prev` (may be NULL) whose
 * settings are the same. Borrows cfg (must outlive the set). Returns NULL with a message in
 * err when one cannot be set up. */
struct tnt_set *tnt_set_new(uv_loop_t *loop, struct http_engine *engine,
                            const struct cfg_config *cfg, const struct tnt_set *prev, char *err,
                            size_t errlen);
/* The tenant configured as `cfg_tenant` (pointer identity), or NULL. */
const struct prov_tenant *tnt_find(const struct tnt_set *s, const struct cfg_tenant *cfg_tenant);
/* True when no other set uses tenant i's engine tenant (freeing this set frees it). */
bool tnt_set_last_user(const struct tnt_set *s, size_t i);
/* Append the HTTP counters (API and token attempts) of every engine tenant of these sets to
 * `rows`, each once however many sets share it (names borrowed from the sets' configs). */
void tnt_sets_metrics_rows(const struct tnt_set *const *sets, size_t nsets,
                           struct metrics_rows *rows);
/* Release the set; engine tenants no other set uses are freed (their pending requests are
 * cancelled). NULL is fine. */
void tnt_set_free(struct tnt_set *s);

#endif
