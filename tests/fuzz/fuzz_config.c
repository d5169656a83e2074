/* fuzz_config.c — libFuzzer target for the YAML config loader (src/config.c).
 *
 * Feeds arbitrary bytes to cfg_load_buffer() and checks the loader's contract on every input:
 * it returns a config exactly when it reports no error, every diagnostic is prefixed with the
 * file name, and an accepted config is internally complete (every job points at two tenants,
 * every tenant has its URLs, client id and secret). Sanitizers catch memory errors and leaks.
 * The config's folder does not exist, so relative secret files are never found; absolute ones
 * are only ever read, and at most 64 KiB.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rolesync/config.h"

#define NAME "/nonexistent-rolesync-fuzz/fuzz.yaml"

static void check(int ok)
{
    if (!ok)
        abort();
}

static void check_diag_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        check(strncmp(v[i], NAME ":", strlen(NAME) + 1) == 0 && strchr(v[i], '\n') == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfg_diags d = {0};
    struct cfg_config *cfg = NULL;
    int rc = cfg_load_buffer(NAME, (const char *)data, size, &cfg, &d);

    check_diag_list(d.errors, d.nerrors);
    check_diag_list(d.warnings, d.nwarnings);
    if (rc == 0) {
        check(cfg != NULL && d.nerrors == 0);
        for (size_t i = 0; i < cfg->ntenants; i++) {
            const struct cfg_tenant *t = &cfg->tenants[i];
            check(t->name && t->base_url && t->token_url && t->client_id && t->client_secret &&
                  t->client_secret[0] && t->secret_origin);
            check(cfg_find_tenant(cfg, t->name) != NULL);
            check((t->api == CFG_API_IDENTITY) == (t->tenant_id != NULL));
            check(t->http.max_connections >= 1 && t->http.retry_max_attempts >= 1);
            check(t->http.retry_initial_delay_ms <= t->http.retry_max_delay_ms);
        }
        for (size_t i = 0; i < cfg->njobs; i++) {
            const struct cfg_job *j = &cfg->jobs[i];
            check(j->name && j->source && j->target && j->source != j->target);
            check(cfg_find_job(cfg, j->name) == j);
            check(j->interval_ms >= 1000);
            check(!j->definitions || j->source->api == j->target->api);
        }
        cfg_free(cfg);
    } else {
        check(rc == -1 && cfg == NULL && d.nerrors > 0);
    }
    cfg_diags_free(&d);
    return 0;
}
