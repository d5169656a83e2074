/* metrics.h — the status model as a Prometheus text-format file (product.md section 6).
 *
 * When `metrics_file` is set, the daemon rewrites it wherever it rewrites status.json, the same
 * atomic way (status_write_file_atomic: temp file ".NAME.XXXXXX" in the same directory, fsync,
 * rename), which is what node_exporter's textfile collector expects (it reads `*.prom` only, so
 * it never sees the temp file). The file gets mode 0644 (METRICS_FILE_MODE): node_exporter runs
 * as its own user and must be able to read it; it holds no secrets, only counts and job/tenant
 * names, which are also visible in the world-readable unit's journal. No sample carries a
 * timestamp (the textfile collector rejects them).
 *
 * Series (per job in config order, label `job`):
 *   rolesyncd_job_last_run_timestamp_seconds      gauge, end of the last finished run (0 never)
 *   rolesyncd_job_last_success_timestamp_seconds  gauge, end of the last ok/dry_run run (0 never)
 *   rolesyncd_job_next_run_timestamp_seconds      gauge, 0 = not scheduled
 *   rolesyncd_job_in_sync                         gauge 0/1
 *   rolesyncd_job_state{state}                    gauge, 1 for the current state, 0 for others
 *   rolesyncd_job_consecutive_failures            gauge
 *   rolesyncd_job_changes_total{kind}             counter, applied changes since start; kind is
 *       roles_created|roles_updated|roles_deleted|assignments_added|assignments_removed
 *   rolesyncd_job_runs_total{result}              counter, finished runs since start by result
 *   rolesyncd_job_pending_changes                 gauge, last run
 *   rolesyncd_job_failed_operations               gauge, last run
 *   rolesyncd_job_not_converging                  gauge, last run
 *   rolesyncd_job_unmatched_users{side}           gauge, last run; side source_only|target_only
 * Per tenant (from the HTTP engine, passed in as plain arrays so this module does not depend on
 * its API):
 *   rolesyncd_http_requests_total{tenant,code}    counter; code is the HTTP status, "0" for a
 *                                                 request that got no response (transport error)
 *   rolesyncd_http_retries_total{tenant}          counter
 * Daemon:
 *   rolesyncd_build_info{version} 1, rolesyncd_start_time_seconds,
 *   rolesyncd_config_last_reload_successful (1 also when never reloaded)
 * Rows of the HTTP arrays are sorted (tenant, then code) and duplicates summed, so the output
 * is stable whatever order the engine's tables iterate in.
 */
#ifndef ROLESYNC_METRICS_H
#define ROLESYNC_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "rolesync/status.h"

#define METRICS_FILE_MODE 0644

struct metrics_http_requests {
    const char *tenant;
    int code;       /* HTTP status, 0 = no response */
    uint64_t count; /* requests since start */
};

struct metrics_http_retries {
    const char *tenant;
    uint64_t count; /* retries since start */
};

/* Borrowed arrays; either may be empty. Tenant names must not be NULL. */
struct metrics_http {
    const struct metrics_http_requests *requests;
    size_t nrequests;
    const struct metrics_http_retries *retries;
    size_t nretries;
};

/* A growing set of rows for struct metrics_http, built tenant by tenant (tenant names are
 * borrowed: they must outlive the rows). metrics_rows_view() lends them as a metrics_http;
 * metrics_rows_free() releases the arrays (not the names). */
struct metrics_rows {
    struct metrics_http_requests *req;
    size_t nreq, capreq;
    struct metrics_http_retries *ret;
    size_t nret, capret;
};
/* One tenant's counters: by_status[HTTP_STATUS_SLOTS] (http.h; zero slots are skipped), plus
 * token_by_status the same way when not NULL (token requests are HTTP requests too). */
void metrics_rows_add(struct metrics_rows *r, const char *tenant, const uint64_t *by_status,
                      const uint64_t *token_by_status, uint64_t retries);
struct metrics_http metrics_rows_view(const struct metrics_rows *r);
void metrics_rows_free(struct metrics_rows *r);

/* The exposition text. `http` may be NULL. Caller frees. */
char *metrics_render(const struct status *st, const struct metrics_http *http);

/* Render and replace `path` atomically with mode METRICS_FILE_MODE. Returns 0, or -1 with a
 * message in err (and a warning logged); the daemon keeps running. */
int metrics_write(const struct status *st, const struct metrics_http *http, const char *path,
                  char *err, size_t errlen);

/* Escape a label value per the text format (\\, \", \n). Caller frees. */
char *metrics_label_escape(const char *s);

#endif
