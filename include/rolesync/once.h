/* once.h — `rolesyncd --once`: run each selected job one time, then exit (product.md §2).
 *
 * Jobs run one after the other on a private loop; each job's plan is printed to `plan_out`
 * (grouped per job, a summary line each). The exit code follows the contract, the most serious
 * condition winning: 1 a job could not run (read failed, authentication), 4 a plan was refused by
 * max_deletes, 3 some operations failed after retries, 2 dry run with changes pending, 0 ok.
 */
#ifndef ROLESYNC_ONCE_H
#define ROLESYNC_ONCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "rolesync/config.h"

enum once_exit {
    ONCE_EXIT_OK = 0,
    ONCE_EXIT_FATAL = 1,
    ONCE_EXIT_PENDING = 2,
    ONCE_EXIT_FAILED_OPS = 3,
    ONCE_EXIT_REFUSED = 4,
};

/* `jobs`: names selected with --job (njobs 0 = every job); an unknown name is a usage error
 * (exit 1, message on stderr).
 *
 * `approve_fp` (--approve, normalised by approve_fingerprint_parse; NULL = none), product.md 4c:
 * each selected job runs with the deletion set recorded under it in state_dir (approve.h), so
 * a plan over max_deletes applies only when its deletions are a subset of that set; else it is
 * refused again (exit 4) with the new deletions listed. A selected job with no set recorded
 * under the fingerprint applies only a plan whose fresh deletions have exactly that
 * fingerprint, else fails (exit 1, "unknown"). Of the jobs selected (all without --job; a
 * fan-out job's NAME selects its targets) only those whose recorded refusals carry the
 * fingerprint run; when none does, the jobs named with --job run (the exact-fingerprint rule
 * above), and without --job it is exit 1 with a message on stderr. Every
 * refused plan's deletion set is recorded for a later --approve.
 *
 * `coordinate` (--coordinate, product.md 7a; needs cfg->coord, else exit 1): before anything
 * runs, the selected jobs' keys are taken on etcd under a lease of this run (which is no
 * member: running daemons neither spread jobs to it nor take its keys). Only jobs whose key it
 * holds run, their writes fenced as a daemon's; a job held elsewhere is not run (standby in
 * status.json with its holder, no error: its holder mirrors it); etcd not answering within two
 * lease TTLs runs nothing, exit 1. The lease is revoked at the end. */
int once_run(const struct cfg_config *cfg, const char *const *jobs, size_t njobs, bool dry_run,
             bool force_deletes, const char *approve_fp, bool coordinate, FILE *plan_out);

#endif
