/* plan.h — how a diff is written to the target: guard, write economy, order, plan text.
 *
 * Pure: no I/O except plan_render() writing to a caller's FILE*. plan_build() takes over a
 * struct diff (diff.h) and turns it into requests in three phases (product.md section 4 point
 * 10): (1) role creates and updates, (2) assignment changes, (3) role deletions.
 *
 * Guard (point 8): deletions = role deletions + (user, role) removals. When deletions exceed
 * job->max_deletes and `force` is false, the plan is refused: `refused` is set, the counts and
 * the changes stay readable (plan_render shows them), and every phase accessor returns zero
 * operations, so nothing can be applied by mistake.
 *
 * Write economy (point 7, performance.md "minimal writes"):
 *   - identity target: one PUT .../Users/{id}/Roles per changed user with the user's full new
 *     role set (PLAN_ASSIGN_USER_SET).
 *   - genesys target: each changed user's changes travel either in per-role batches
 *     (PUT /authorization/roles/{id}/users/add|remove, at most PLAN_BATCH_MAX user ids each) or
 *     in one PUT /users/{id}/roles with the user's full new set. Costs are exact: batches = sum
 *     over (role, add/remove) groups of ceil(members/100); per user = one per user. The plan
 *     takes the cheapest of: all batches, all per-user, and a mix (users whose PUT empties two
 *     or more batches are moved to a PUT; see choose_mix in plan.c). Ties go to batches, which
 *     are incremental and so cannot overwrite a concurrent change to other roles. The result
 *     is never above performance.md's bound (the smaller of the two pure strategies) and below
 *     it when one user's private changes ride along with a role-wide change.
 *   A USER_SET's role set = the user's current target roles (kept: out of scope, foreign,
 *   forced, conflicted, protected admin) minus removes plus adds.
 *
 * Created roles: assignment ops may refer to a role the plan creates (ref >= tgt->nroles, see
 * diff.h). The executor stores each created role's id with plan_set_created_id() after the POST;
 * plan_ref_id() then resolves any ref to an id (NULL when the create has not succeeded: the
 * dependent request must be skipped and counted as failed).
 *
 * Ownership: plan_build() owns the diff from then on; plan_free() frees both. The plan borrows
 * the job and the snapshots (they must outlive it).
 */
#ifndef ROLESYNC_PLAN_H
#define ROLESYNC_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rolesync/diff.h"

#define PLAN_BATCH_MAX 100 /* user ids per genesys users/add|remove request */

enum plan_assign_kind {
    PLAN_ASSIGN_ROLE_ADD = 0, /* genesys PUT /authorization/roles/{ref}/users/add, items = users */
    PLAN_ASSIGN_ROLE_REMOVE,  /* genesys PUT /authorization/roles/{ref}/users/remove */
    /* order in a plan: all ROLE_ADD, then USER_SET, then ROLE_REMOVE */
    PLAN_ASSIGN_USER_SET, /* PUT the user's full role set, items = role refs */
};

enum plan_strategy {
    PLAN_STRATEGY_NONE = 0,
    PLAN_STRATEGY_BATCH,    /* every assignment change in per-role batches */
    PLAN_STRATEGY_PER_USER, /* one full-set PUT per changed user */
    PLAN_STRATEGY_MIXED,    /* genesys: some users by full-set PUT, the rest in batches */
};

struct plan_assign_op {
    enum plan_assign_kind kind;
    uint32_t ref;          /* ROLE_ADD/REMOVE: target role reference; USER_SET: MDL_NONE */
    uint32_t qual;         /* ROLE_ADD/REMOVE: target qualifier; USER_SET: MDL_NONE */
    uint32_t tgt_user;     /* USER_SET: target user index; ROLE_*: MDL_NONE */
    const uint32_t *items; /* ROLE_*: target user indexes (1..PLAN_BATCH_MAX, ascending);
                              USER_SET: the user's full new role set as refs (ascending) */
    uint32_t nitems;
};

struct plan_counts {
    size_t roles_created, roles_updated, roles_deleted;
    size_t assignments_added, assignments_removed; /* (user, role) pairs */
    size_t pending;   /* changes planned: role ops + (user, role) pairs */
    size_t deletions; /* role deletions + assignment removals (the guard's figure) */
    size_t requests;  /* write requests the plan issues (0 when refused) */
    size_t not_converging, unmapped, conflicts, ambiguous;
    size_t unmatched_source_only, unmatched_target_only;
};

/* A "!" line of the plan: what the daemon reports but does not (or cannot) do. Built by
 * plan_build; the dry-run text and the daemon's log render from these. */
enum plan_note_kind {
    PLAN_NOTE_NOT_CONVERGING = 0,
    PLAN_NOTE_CONFLICT,
    PLAN_NOTE_UNMAPPED,
    PLAN_NOTE_AMBIGUOUS,
    PLAN_NOTE_UNMATCHED,
    PLAN_NOTE_REFUSED,
};

struct plan_note {
    enum plan_note_kind kind;
    char *text; /* the line without "! " and newline ("conflict: source role \"A\" ..."),
                   names quoted and escaped as in the change lines; owned by the plan */
};

struct plan {
    struct diff *diff; /* owned */
    bool refused;      /* guard tripped: nothing to apply */
    bool forced;       /* built with force (guard overridden) */
    size_t deletions;  /* role deletions + assignment removals */
    unsigned max_deletes;
    enum plan_strategy strategy;       /* how assignments are written (NONE: no changes) */
    size_t cost_batch, cost_per_user;  /* request counts of the two pure strategies (info;
                                          cost_batch is 0 for identity) */
    size_t cost_mixed;                 /* genesys: requests of the chosen mix (<= cost_batch) */
    struct plan_assign_op *assign_ops; /* built even when refused, but not exposed as a phase */
    size_t nassign_ops;
    char **created_ids;      /* [diff->ncreates], filled by plan_set_created_id */
    struct plan_note *notes; /* in the order plan_render prints them */
    size_t nnotes;
    struct plan_priv *priv;
};

/* Build the plan from `d` (ownership moves to the plan). `force` overrides the guard. */
struct plan *plan_build(struct diff *d, bool force);
void plan_free(struct plan *p);

/* Phases in execution order; each returns 0 operations when the plan is refused. Phase 1's ops
 * are creates first (create k = diff->role_ops[k]) then updates; phase 3 is the deletions. */
const struct diff_role_op *plan_phase_roles(const struct plan *p, size_t *n);    /* phase 1 */
const struct plan_assign_op *plan_phase_assign(const struct plan *p, size_t *n); /* phase 2 */
const struct diff_role_op *plan_phase_deletes(const struct plan *p, size_t *n);  /* phase 3 */

/* Record the id the target gave the k-th created role (copied). */
void plan_set_created_id(struct plan *p, size_t k, const char *id);
/* Target role id for a ref; NULL for a created role whose id is not known yet. */
const char *plan_ref_id(const struct plan *p, uint32_t ref);

/* Tell the not-converging memory what was written. `role_ok` has one flag per
 * diff->role_ops entry, `assign_ok` one per plan->assign_ops entry; NULL means all succeeded.
 * A user counts as written only when every request carrying one of its changes succeeded. */
void plan_note_applied(const struct plan *p, struct diff_memory *mem, const bool *role_ok,
                       const bool *assign_ok);

/* ---- executing a plan (sync.c): what may be sent, given what happened so far. The rules are
 * product rules, so they live here, pure: a write that depends on a role this cycle could not
 * create is held (its changes stay pending; the failed create is the failure reported); after a
 * failed role change, removal batches are held (they may be one half of a move to that role);
 * deletions are held after any failure (assignments must have moved off them first). */

/* One changed user's changes (diff->users entry), or NULL. */
const struct diff_user_change *plan_user_change(const struct plan *p, uint32_t tgt_user);

struct plan_write {
    bool hold;           /* not sent this cycle; `reason` says why */
    bool partial;        /* USER_SET: sent without the adds of roles not created, keeping the
                            roles it would lose (its removals wait) */
    char reason[400];    /* hold: why */
    const char *role_id; /* ROLE_ADD/REMOVE: the role's id */
    const char **ids;    /* ROLE_*: user ids; USER_SET: role ids of the set to write (borrowed
                            strings; the array is freed by plan_write_release) */
    size_t nids;
};
/* Prepare assignment op i (of plan_phase_assign); `roles_failed`: a phase 1 write failed. */
void plan_write_prepare(const struct plan *p, size_t i, bool roles_failed, struct plan_write *w);
void plan_write_release(struct plan_write *w);
/* Whether change `ch` travelled in a successful write prepared with this `partial` flag. */
bool plan_change_carried(const struct plan *p, bool partial, const struct diff_change *ch);
/* Why phase 3 is held after `failed_before` failed writes, or NULL when it may go. */
const char *plan_deletes_hold_reason(size_t failed_before);

void plan_counts(const struct plan *p, struct plan_counts *out);
/* True when the plan writes nothing (not-converging items do not count). */
bool plan_is_empty(const struct plan *p);

/* terraform-plan-like text for one job: one line per change ("+ role \"X\"", "~ role \"X\"
 * (description, permission policies)", "- role \"X\"", "+ user a@b role \"X\"", "- user ..."),
 * "!" lines for not converging, conflicts, unmapped roles, ambiguous and unmatched users, a
 * refusal line when refused, and a final summary line "job NAME: 1 role to create, 2 to update,
 * 0 to delete, 12 assignments to add, 3 to remove". */
void plan_render(const struct plan *p, FILE *out);
/* Same into a malloc'd string (caller frees). */
char *plan_render_string(const struct plan *p);
/* Only the report lines of the text: "! conflict: ...", "! unmapped: ...", "! ambiguous: ..."
 * (what the daemon logs every cycle, whether or not it prints a plan). */
void plan_render_report(const struct plan *p, FILE *out);
/* The notes, and whether one is a report line (conflict, unmapped, ambiguous). */
const struct plan_note *plan_notes(const struct plan *p, size_t *n);
bool plan_note_is_report(const struct plan_note *n);

#endif
