/* undo.h — `rolesyncd --undo CYCLE [--dry-run] [--force-deletes]`: take back what one cycle
 * did (product.md 4c, "Undo").
 *
 * Three parts:
 *   1. undo_load(): the cycle's lines from the journal (journal.h), paired: a role deletion's
 *      "pending" line and its outcome line (same seq) become one item; a pending line with no
 *      outcome stays UNDO_MAYBE (the process died with the DELETE in flight; the fresh read
 *      decides whether it happened).
 *   2. undo_plan_build(): pure, no I/O. From the cycle's items and a fresh snapshot of the
 *      target, the inverse steps, newest first (reverse journal order), and the steps skipped
 *      with their reason. An inverse step whose item no longer looks the way the cycle left it
 *      is skipped, never forced:
 *        grant_add    -> remove the grant if the user still holds it directly there;
 *        grant_remove -> add it back if user, role and division exist and it is not held;
 *        role_create  -> delete the role if its definition is still what the cycle created;
 *        role_update  -> put `before` back if the role still has the cycle's `after`;
 *        role_delete  -> re-create it from `before` if no role of that name exists, then grant
 *                        it to every holder of `before.holders` that still exists.
 *      Definitions compare as the provider canonicalises them (prov_ops.def_canon), the way
 *      the diff compares def_canon. The plan keeps a small view of what its own earlier steps
 *      do (roles it re-creates or deletes, grants it adds or removes), so a later step sees
 *      the target as the earlier ones leave it (an undo of an undo re-creates a role and then
 *      re-grants it).
 *      deletions = grant removals + role deletions + the grants a deleted role still holds
 *      when it goes: the guard (max_deletes) counts these, as for a cycle.
 *   3. undo_run(): the command. Finds the cycle (unknown: exit 1), its job (must still be in
 *      the config, else exit 1) and target, reads the target fresh (two-step read: only the
 *      grants of the roles the undo touches), plans, guards (exit 4 and nothing written over
 *      max_deletes without --force-deletes), prints the plan (+/-/~ lines, the skipped steps
 *      with their reasons, a summary line) and, unless dry_run, applies the steps one after
 *      the other in plan order through prov_ops, journaling them as a cycle of its own
 *      (undo_of = CYCLE, a deletion's pending line fsync'd before the DELETE) so the undo can
 *      be undone. Exit codes as --once: 0 ok (dry run: nothing to undo), 2 dry run with steps
 *      pending, 3 some steps failed, 4 refused, 1 fatal (unknown cycle or job, read failed).
 *
 * Ownership: an undo_cycle owns copies of its journal strings; an undo_plan borrows the cycle
 * and the snapshot it was built from (both must outlive it) and owns its steps and skips.
 */
#ifndef ROLESYNC_UNDO_H
#define ROLESYNC_UNDO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rolesync/config.h"
#include "rolesync/journal.h"
#include "rolesync/model.h"

/* One change of the cycle, as the journal recorded it (copies; NULL where absent). */
enum undo_outcome { UNDO_DONE, UNDO_MAYBE }; /* ok / pending deletion without an outcome */

struct undo_item {
    uint64_t seq;
    enum journal_kind kind;
    enum undo_outcome outcome;
    char *role, *role_id, *user, *user_id, *division, *division_id;
    char *before, *after; /* JSON text of an object, or NULL */
};

struct undo_cycle {
    char *cycle, *job, *target;
    struct undo_item *items; /* ok (and pending-only deletion) changes, in seq order */
    size_t nitems;
    size_t failed; /* changes of the cycle that had failed: nothing to take back */
    size_t lines;  /* journal lines of the cycle */
    char *undo_of; /* the cycle was itself an undo: the cycle it took back; else NULL */
};

/* Read the journal in state_dir for `cycle`. 0 found (`out` filled, free with
 * undo_cycle_free), 1 no line of that cycle, -1 + err when the journal cannot be read.
 * *skipped (may be NULL): lines of the journal that did not parse. */
int undo_load(const char *state_dir, const char *cycle, struct undo_cycle *out, size_t *skipped,
              char *err, size_t errlen);
/* Build an undo_cycle from journal entries already in memory (tests; undo_load uses it):
 * entries of other cycles are ignored. Returns false when none is of `cycle`. */
bool undo_cycle_from_entries(const struct journal_entry *e, size_t n, const char *cycle,
                             struct undo_cycle *out);
void undo_cycle_free(struct undo_cycle *c);

enum undo_step_kind {
    UNDO_STEP_GRANT_REMOVE, /* take back a grant_add */
    UNDO_STEP_GRANT_ADD,    /* take back a grant_remove, or re-grant a re-created role */
    UNDO_STEP_ROLE_DELETE,  /* take back a role_create */
    UNDO_STEP_ROLE_UPDATE,  /* take back a role_update: write `before` */
    UNDO_STEP_ROLE_CREATE,  /* take back a role_delete: re-create from `before` */
};

struct undo_holder {
    uint32_t user, qual; /* snapshot indexes */
};

struct undo_step {
    enum undo_step_kind kind;
    size_t item; /* index into the cycle's items */
    /* Snapshot indexes (MDL_NONE when not applicable). For a grant of a role this plan
     * re-creates, role is MDL_NONE and `created_by` names the ROLE_CREATE step. */
    uint32_t role, user, qual;
    size_t created_by; /* SIZE_MAX: none */
    /* ROLE_CREATE / ROLE_UPDATE: what is written (owned, malloc'd) */
    char *name, *description, *def_json;
    /* ROLE_CREATE: the holders re-granted after it (ROLE_CREATE steps carry them, applied
     * right after the create, with the new id) */
    struct undo_holder *holders;
    size_t nholders;
    /* ROLE_DELETE: the direct holders the role still has when it goes (they go with it) */
    struct undo_holder *takes;
    size_t ntakes;
};

struct undo_skip {
    size_t item;
    char *reason; /* static text, copied */
    char *holder; /* role_delete: the holder this skip is about (user label), else NULL */
};

/* Canonicalise a definition as a provider reads it (prov_ops.def_canon); malloc'd, NULL +
 * err when it is not one. NULL function: definitions compare byte for byte. */
typedef char *(*undo_canon_fn)(const char *def_json, char *err, size_t errlen);

struct undo_plan {
    const struct undo_cycle *cycle;
    const struct mdl_snapshot *tgt;
    enum cfg_match_by match_by;
    struct undo_step *steps; /* in the order they are applied: newest change first */
    size_t nsteps;
    struct undo_skip *skips;
    size_t nskips;
    size_t deletions; /* the guard's figure */
    size_t grant_adds, grant_removes, role_creates, role_updates, role_deletes;
};

/* Pure planning (see above). `tgt` is finished; the roles the cycle touched must have their
 * grants read. `match_by` (the job's) names users in the plan text, as the diff does. Never
 * fails: an item that cannot be read (a hostile `before`) is a skip. */
struct undo_plan *undo_plan_build(const struct undo_cycle *c, const struct mdl_snapshot *tgt,
                                  undo_canon_fn canon, enum cfg_match_by match_by);
void undo_plan_free(struct undo_plan *p);

/* The plan as text: "+ role", "~ role", "- role", "+ user U role R [division D]",
 * "- user ..." lines, then "! skipped: ..." lines, then "undo CYCLE of job NAME: ..." */
void undo_plan_render(const struct undo_plan *p, FILE *f);

/* Display helpers for one step (static or plan-owned strings). */
const char *undo_step_role_name(const struct undo_plan *p, const struct undo_step *s);
const char *undo_user_label(const struct undo_plan *p, uint32_t user);
const char *undo_qual_name(const struct undo_plan *p, uint32_t qual); /* NULL: home */

/* The command (see above). `out` receives the plan and the skipped steps. */
int undo_run(const struct cfg_config *cfg, const char *cycle, bool dry_run, bool force_deletes,
             FILE *out);

#endif
