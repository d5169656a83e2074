/* plan.h — how a diff is written to the target: guard, write economy, order, plan text.
 *
 * Pure: no I/O except plan_render() writing to a caller's FILE*. plan_build() takes over a
 * struct diff (diff.h) and turns it into requests in three phases (product.md section 4 point
 * 10): (1) role creates and updates, (2) assignment changes, (3) role deletions.
 *
 * Guard (points 8, 4a.5, 4a.7): deletions = role deletions + removed grants + the in-scope grants
 * a deleted role takes with it (diff_role_op.holders). When deletions exceed job->max_deletes
 * and `force` is false, the plan is refused: `refused` is set, the counts and the changes stay
 * readable (plan_render shows them), and every phase accessor returns zero operations, so
 * nothing can be applied by mistake.
 *
 * Write economy (point 7, performance.md "minimal writes"), by the target's capabilities:
 *   - a target that writes whole role sets (identity): one PLAN_ASSIGN_USER_SET per changed
 *     user with the user's full new role set = the roles it holds directly (kept: out of scope,
 *     foreign, forced, conflicted, protected admin) minus those whose every grant goes, plus the
 *     added ones.
 *   - a target that writes grants (MDL_CAP_GRANT_WRITES, genesys): every write says where it
 *     holds. A user's adds travel in role-wide grants (ROLE_ADD: one role, one qualifier, up to
 *     PLAN_BATCH_MAX users) or in one USER_ADD of its own; its removals in role-wide
 *     revocations (ROLE_REMOVE: one role from up to PLAN_BATCH_MAX users in every qualifier --
 *     used for a user only when the removals are all its direct grants of that role and the
 *     plan adds it none of that role) or in one
 *     USER_REMOVE of its own (forced when a revocation cannot carry them). Costs are exact:
 *     batches = sum over groups of ceil(members/100); per user = one request per user with
 *     adds plus one per user with removals. The plan takes the cheaper of all-per-user and a
 *     mix (batches, with users moved to requests of their own where that empties two or more
 *     batches; see choose_grant_mix in plan.c); ties go to batches, which leave the rest of
 *     each user alone. Never a write that names no qualifier where one matters.
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

#define PLAN_BATCH_MAX 100 /* users per role-wide grant or revocation request */

enum plan_assign_kind {
    /* order in a plan: ROLE_ADD, USER_ADD, USER_SET, ROLE_REMOVE, USER_REMOVE */
    PLAN_ASSIGN_ROLE_ADD = 0, /* grant role `ref` in qualifier `qual` to users `items` */
    PLAN_ASSIGN_USER_ADD,     /* grants for user `tgt_user`: items = indexes of its add changes
                                 in diff->changes */
    PLAN_ASSIGN_USER_SET,     /* write user `tgt_user`'s whole role set: items = role refs */
    PLAN_ASSIGN_ROLE_REMOVE,  /* revoke role `ref` from users `items` in every qualifier */
    PLAN_ASSIGN_USER_REMOVE,  /* removals for user `tgt_user`: items = indexes of its remove
                                 changes in diff->changes */
};

enum plan_strategy {
    PLAN_STRATEGY_NONE = 0,
    PLAN_STRATEGY_BATCH,    /* role-wide batches (and the per-user removals they cannot carry) */
    PLAN_STRATEGY_PER_USER, /* requests of each user's own */
    PLAN_STRATEGY_MIXED,    /* some users on their own, the rest in batches */
};

struct plan_assign_op {
    enum plan_assign_kind kind;
    uint32_t ref;          /* ROLE_*: target role reference; else MDL_NONE */
    uint32_t qual;         /* ROLE_ADD: target qualifier; else MDL_NONE */
    uint32_t tgt_user;     /* USER_*: target user index; ROLE_*: MDL_NONE */
    const uint32_t *items; /* ROLE_*: target user indexes (1..PLAN_BATCH_MAX, ascending);
                              USER_ADD/REMOVE: change indexes; USER_SET: the user's full new
                              role set as refs (ascending) */
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
    PLAN_NOTE_DIVISION,   /* a source division without a (single) counterpart */
    PLAN_NOTE_NOT_COPIED, /* a definition naming the source org's objects */
    PLAN_NOTE_NOT_PRUNED, /* a prune candidate held outside the job's scope */
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
    size_t cost_batch, cost_per_user;  /* request counts of batches (with the removals they
                                          cannot carry) and of all-per-user (info; cost_batch is
                                          0 for whole-set targets) */
    size_t cost_mixed;                 /* grant targets: requests of the mix (<= cost_batch) */
    struct plan_assign_op *assign_ops; /* built even when refused, but not exposed as a phase */
    size_t nassign_ops;
    char **created_ids;      /* [diff->ncreates], filled by plan_set_created_id */
    struct plan_note *notes; /* in the order plan_render prints them */
    size_t nnotes;
    struct plan_priv *priv;
};

/* The guard's figure for a diff (what plan_build puts in plan.deletions): every removed grant,
 * every deleted role, and every grant a deleted role takes with it. */
size_t plan_guard_deletions(const struct diff *d);

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

/* A grant as a write names it: the role's id and the qualifier's (NULL: a target without
 * qualifiers). */
struct plan_grant_ids {
    const char *role_id;
    const char *qual_id;
};

struct plan_write {
    bool hold;           /* not sent this cycle; `reason` says why */
    bool partial;        /* USER_SET / USER_ADD: sent without the adds of roles not created
                            (a user set keeps the roles it would lose: its removals wait) */
    bool new_role;       /* it names a role this plan created: the platform may not know it
                            yet (product.md 4a.8), so a 404 is worth retrying */
    char reason[400];    /* hold: why */
    const char *role_id; /* ROLE_*: the role's id */
    const char *qual_id; /* ROLE_ADD: the qualifier's id */
    const char **ids;    /* ROLE_*: user ids; USER_SET: role ids of the set to write (borrowed
                            strings; the array is freed by plan_write_release) */
    size_t nids;
    struct plan_grant_ids *grants; /* USER_ADD / USER_REMOVE (freed by plan_write_release) */
    size_t ngrants;
};
/* Prepare assignment op i (of plan_phase_assign); `roles_failed`: a phase 1 write failed. */
void plan_write_prepare(const struct plan *p, size_t i, bool roles_failed, struct plan_write *w);
void plan_write_release(struct plan_write *w);
/* Whether change `ch` travelled in a successful write prepared with this `partial` flag. */
bool plan_change_carried(const struct plan *p, bool partial, const struct diff_change *ch);
/* Call fn for every change assignment op i carries (in diff order), as planned. */
void plan_op_changes(const struct plan *p, size_t i,
                     void (*fn)(const struct diff_change *ch, void *arg), void *arg);
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
/* The quoting of the change lines, for other plan-like text (approve.h): a name double-quoted
 * with quotes, backslashes and control characters escaped; a user label with control
 * characters as '?'. */
void plan_put_quoted(FILE *f, const char *s);
void plan_put_plain(FILE *f, const char *s);
/* Only the report lines of the text: "! conflict: ...", "! unmapped: ...", "! ambiguous: ..."
 * (what the daemon logs every cycle, whether or not it prints a plan). */
void plan_render_report(const struct plan *p, FILE *out);
/* The notes, and whether one is a report line (conflict, unmapped, ambiguous, division, not
 * copied, not pruned: what is not done, logged every cycle). */
const struct plan_note *plan_notes(const struct plan *p, size_t *n);
bool plan_note_is_report(const struct plan_note *n);

#endif
