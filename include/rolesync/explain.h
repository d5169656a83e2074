/* explain.h — `rolesyncd --explain --job NAME (--user KEY | --role NAME)` (product.md 4c).
 *
 * Says what a cycle of one job would do about one user or one role, and why, changing
 * nothing. The explanation comes from the cycle's own code, not from a second reading of the
 * rules: explain_run() runs the job's cycle (sync.c: the same reads, definition adaptation,
 * diff_compute, plan_build and guard) with an inspector that takes the plan before anything
 * is rendered, logged as a report or written (sync_opts.inspect), then asks the diff about the
 * one user or role through diff.h's query functions (the grant filters of the assignment pass,
 * the scope globs, the definition comparison) and renders the answer.
 *
 * Reads: the cycle's full read of both tenants (a departure from "reads only what it needs":
 * the diff needs every user and holder to decide matching, ambiguity and prune), and for a user
 * on a platform whose cycle reads see direct grants only (genesys), that user's own grants
 * with the groups they come from (prov_ops.subject_grants). No write request is sent;
 * status.json, the journal and created-roles.json are left as they are.
 *
 * Output (stdout): stable, greppable lines, one fact or decision each, documented in
 * man/rolesyncd.8 ("EXPLAINING A DECISION"). Exit code: 0 explained, 1 the user or role was
 * found on neither side, a usage error, or a read that failed.
 */
#ifndef ROLESYNC_EXPLAIN_H
#define ROLESYNC_EXPLAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rolesync/config.h"
#include "rolesync/plan.h"

/* A grant of one user the snapshot does not show, as the platform names it for that user
 * (genesys subjects/{id}), resolved against that side's snapshot: one it holds through a group,
 * or a direct one of a role whose grants the cycle does not read (mdl_role.grants_unread: the
 * forced role, roles out of the job's interest). */
struct explain_grant {
    uint32_t role, qual;    /* snapshot indexes */
    const char *group_id;   /* the group it comes from; NULL: held directly */
    const char *group_name; /* or NULL when its name could not be read */
};

/* What is known of one side's user beyond the snapshot. */
struct explain_side {
    bool read; /* the user's own grants were read: inherited grants are known (v, n) */
    const struct explain_grant *v;
    size_t n;
};

/* Explain user `key` (a match key as the job's users.match_by spells it, compared
 * case-insensitively) of the plan's job, writing to `out`. `src` / `tgt` may be NULL (nothing
 * read beyond the snapshots). Pure but for writing to `out`. Returns 0, or 1 when no user of
 * either side has that key. */
int explain_user(const struct plan *p, const char *key, const struct explain_side *src,
                 const struct explain_side *tgt, FILE *out);

/* Explain role `name`: a source role's name, or a target role's name (a rename's target name
 * included). Returns 0, or 1 when neither side has such a role. */
int explain_role(const struct plan *p, const char *name, FILE *out);

/* The command: exactly one of `user` / `role`; `job` names one job (NAME, or NAME/TARGET for
 * one target of a job with a target list). Usage errors and read failures go to stderr (exit
 * 1); the explanation to `out`. */
int explain_run(const struct cfg_config *cfg, const char *job, const char *user, const char *role,
                FILE *out);

#endif
