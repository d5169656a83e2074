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
 * (exit 1, message on stderr). */
int once_run(const struct cfg_config *cfg, const char *const *jobs, size_t njobs, bool dry_run,
             bool force_deletes, FILE *plan_out);

#endif
