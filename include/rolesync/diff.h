/* diff.h — what differs between a job's source and target (product.md section 4, points 2-6, 9).
 *
 * Pure: no I/O, no JSON, no clock. diff_compute() reads a job's configuration and two finished
 * snapshots and decides, point by point:
 *   - scope: a source role is in scope when its name matches roles.include and no roles.exclude
 *     (util_glob_match, case-insensitive). A target role takes the scope of the source role that
 *     maps to it; a target role nothing maps to is in scope when its name mapped back through
 *     `rename` (target name -> source name) matches. Users: their match key against
 *     users.include / users.exclude. Foreign roles (mdl_role.foreign) are never in scope.
 *   - role identity: built-ins by builtin_key only, and only when source and target use the same
 *     api (genesys defaultRoleIds and identity RoleTypeIds are different vocabularies, so a
 *     genesys->identity job maps custom roles only; source built-ins are reported unmapped).
 *     Custom roles by name, case-insensitively, after `rename`, against the target's non-foreign
 *     custom roles. Two target roles for one source role, two source roles for one target role,
 *     or a custom source role whose target name is taken by a target built-in are conflicts:
 *     reported, the roles involved are left alone (no create, update, delete, grant or revoke).
 *   - users: by match_by (email and username case-insensitively, external_id = external_key).
 *     Genesys users in state deleted are ignored; inactive ones match. Users without a key are
 *     out of scope. Two in-scope users with one key on one side are ambiguous: reported, and every
 *     user with that key (both sides) is skipped.
 *   - definitions (roles.definitions and same api): missing in-scope custom roles are created;
 *     custom roles whose description or def_canon differ byte-wise are updated (NULL equals "");
 *     genesys default roles only when def_canon differs (name and description are never written);
 *     identity built-ins are never written. Prune (job->prune): in-scope, non-foreign custom
 *     target roles that no source role maps to (in or out of scope) and that are not part of a
 *     conflict are deleted.
 *   - qualifiers (where a grant holds, model.h): the home qualifier of one snapshot maps to
 *     the home qualifier of the other; every other qualifier is out of scope on both sides.
 *   - assignments (mirror | additive | off), grant by grant, for every matched, in-scope user
 *     pair; only direct grants count (inherited ones are never added, removed, or taken as
 *     present). "Managed" target roles are in scope, non-foreign, not forced, not in a
 *     conflict. The user's desired managed grants = the in-scope source grants mapped (role and
 *     qualifier; incl. roles about to be created); adds = desired - current; removes (mirror
 *     only) = current managed grants in in-scope qualifiers - desired, except the admin role
 *     (mdl_role.admin), which is revoked only when some roles.include pattern without '*' or
 *     '?' equals, verbatim (case included), the admin role's scope name (its source counterpart's
 *     name, else its own name mapped back through rename). Forced roles (mdl_role.forced) are
 *     never added or removed. Everything else the user holds (out-of-scope roles or
 *     qualifiers, foreign, forced, conflicted, inherited) is kept.
 *   - not converging (point 9): see struct diff_memory below.
 *
 * Target role references (`ref` below, uint32_t): a value below tgt->nroles is a target role
 * index; tgt->nroles + k is the role created by the k-th create (diff.creates[k]), whose id the
 * executor learns from the POST (see plan_set_created_id in plan.h).
 *
 * Ownership: struct diff is allocated by diff_compute and freed by diff_free (or handed to
 * plan_build, which takes it over). It borrows the job and both snapshots: they must outlive it.
 */
#ifndef ROLESYNC_DIFF_H
#define ROLESYNC_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rolesync/config.h"
#include "rolesync/model.h"

/* ---- not-converging memory -------------------------------------------------------------------
 *
 * A change the target accepts but does not keep (an unlicensed permission dropped, an admin role
 * the platform re-adds) must not be re-sent every cycle. The caller owns one diff_memory per job;
 * it survives between cycles (a daemon restart forgets it, which costs one extra write per such
 * item, nothing more).
 *
 *   1. diff_compute() gives every planned item a memory key and `want`, a 64-bit hash of the
 *      value it will write (role: the written description/definition, or "deleted"; user: the
 *      final managed role set).
 *   2. After a write succeeded, the executor calls diff_memory_note_written(kind, key, want)
 *      (plan_note_applied() in plan.h does this for a whole plan).
 *   3. The next diff_compute() that finds the same item still different with the same `want`
 *      concludes that the target did not keep the write: it records the target's value (`have`
 *      hash), reports the item as not converging with a reason, and does not plan it. While
 *      desired and target values stay the same it is re-sent with a back-off — after 1
 *      suppressed cycle, then 2, 4, ... up to 64 — so a write that was merely lost heals, and
 *      one the target refuses to keep costs one request per 64 cycles at most; if either value
 *      changes, the item is planned again at once and the back-off restarts.
 *   4. Entries whose item is in sync (or gone) are dropped at the end of diff_compute(), so the
 *      memory holds only items that currently differ.
 */
enum diff_mem_kind { DIFF_MEM_ROLE = 0, DIFF_MEM_USER = 1 };

struct diff_memory;

struct diff_memory *diff_memory_new(void);
void diff_memory_free(struct diff_memory *m); /* NULL is fine */
/* Record that the item (kind, key) was written successfully with value hash `want`. `key` is
 * copied. A later write of the same item replaces the entry (and forgets what was observed). */
void diff_memory_note_written(struct diff_memory *m, enum diff_mem_kind kind, const char *key,
                              uint64_t want);
size_t diff_memory_count(const struct diff_memory *m);

/* ---- result ----------------------------------------------------------------------------------*/

/* Why a source role has or has no target counterpart. */
enum diff_role_status {
    DIFF_ROLE_OUT_OF_SCOPE = 0, /* name excluded by the role globs (still mapped when possible) */
    DIFF_ROLE_MAPPED,           /* counterpart found: map = target index */
    DIFF_ROLE_CREATE,           /* counterpart to be created: map = tgt->nroles + k */
    DIFF_ROLE_UNMAPPED,         /* in scope, no counterpart; assignments skipped */
    DIFF_ROLE_CONFLICT,         /* ambiguous counterpart; left alone */
    DIFF_ROLE_FOREIGN,          /* not a tenant role (identity community/cluster) */
};

struct diff_src_role {
    enum diff_role_status status;
    bool in_scope;
    uint32_t map;       /* target ref, or MDL_NONE (unmapped/conflict; out of scope: may map) */
    const char *reason; /* static text for UNMAPPED/CONFLICT/FOREIGN, else NULL */
};

struct diff_tgt_role {
    bool in_scope;          /* scope per the rules above */
    bool managed;           /* assignments of it may be added/removed */
    bool forced;            /* the platform's forced role */
    bool admin;             /* the platform's admin role */
    bool admin_revocable;   /* admin named verbatim in roles.include */
    bool conflict;          /* part of a conflict */
    uint32_t src;           /* the one source role that maps to it, or MDL_NONE */
    const char *scope_name; /* name used for scope (source counterpart's, else mapped back) */
    uint64_t ident;         /* hash of its cross-cycle identity (lower name / builtin key) */
};

enum diff_role_action { DIFF_ROLE_OP_CREATE = 0, DIFF_ROLE_OP_UPDATE, DIFF_ROLE_OP_DELETE };
#define DIFF_F_DESCRIPTION 0x1u /* the role's description */
#define DIFF_F_DEFINITION 0x2u  /* def_canon: permissions and permission policies */

struct diff_role_op {
    enum diff_role_action action;
    uint32_t src_role;   /* create/update: the source role; delete: MDL_NONE */
    uint32_t tgt_role;   /* update/delete: the target role; create: MDL_NONE */
    unsigned fields;     /* DIFF_F_* that differ (update); everything to write (create) */
    const char *name;    /* create: target name (after rename); else the target role's name */
    const char *mem_key; /* memory key (owned by the diff) */
    uint64_t want;       /* memory value hash of what is written */
    uint32_t holders;    /* delete: in-scope grants that go with the role (those no change of
                            this plan removes first); the guard counts them as deletions */
};

/* Where a source qualifier's grants go on the target (model.h qualifiers). */
struct diff_src_qual {
    bool in_scope;      /* its grants take part in the job (it may still lack a counterpart) */
    uint32_t map;       /* target qualifier, or MDL_NONE (out of scope, unmapped, conflict) */
    const char *reason; /* static text when in scope without a (single) counterpart, else NULL */
    uint32_t tgt2;      /* conflict: the second target qualifier */
    size_t skipped;     /* grants of matched users not mirrored for want of a counterpart */
};

struct diff_tgt_qual {
    bool in_scope; /* its direct grants may be added and removed */
};

/* One grant change (user, role, qualifier). Sorted by tgt_user, then removes before adds, then
 * (ref, qual). */
struct diff_change {
    uint32_t tgt_user;
    uint32_t src_user;
    uint32_t ref;  /* target role reference */
    uint32_t qual; /* target qualifier */
    bool add;      /* false = remove */
};

/* A user whose role set changes: its changes are changes[first .. first+n). */
struct diff_user_change {
    uint32_t tgt_user;
    uint32_t first, n;
    uint64_t want; /* memory value hash of the final managed set */
};

struct diff_conflict {
    uint32_t src_role;  /* MDL_NONE when the conflict is described by target roles only */
    uint32_t src_role2; /* second source role (two sources for one target), else MDL_NONE */
    uint32_t tgt_role;  /* first target role involved, or MDL_NONE */
    uint32_t tgt_role2; /* second target role, or MDL_NONE */
    const char *reason; /* static text */
};

struct diff_ambiguous {
    bool target;     /* which side holds the duplicates */
    const char *key; /* lower-cased match key (owned by the diff) */
    uint32_t count;  /* users sharing it on that side */
};

struct diff_not_converging {
    enum diff_mem_kind kind;
    const char *name; /* role name (target) or user label (match key); owned by the diff */
    char *reason;     /* owned by the diff */
};

struct diff_not_pruned {
    uint32_t tgt_role;
    uint32_t holders; /* subjects outside the job's scope holding it */
};

struct diff_report {
    /* users */
    size_t src_users_in_scope, tgt_users_in_scope; /* non-deleted, keyed, in scope */
    size_t matched_users;
    size_t unmatched_source_only, unmatched_target_only;
    size_t users_without_key; /* non-deleted users with no match key (either side) */
    struct diff_ambiguous *ambiguous;
    size_t nambiguous;
    /* roles */
    uint32_t *unmapped; /* source role indexes with status UNMAPPED */
    size_t nunmapped;
    struct diff_conflict *conflicts;
    size_t nconflicts;
    struct diff_not_converging *not_converging;
    size_t nnot_converging;
    size_t skipped_changes; /* (user, role) changes suppressed as not converging */
    /* qualifiers (divisions): in-scope source qualifiers without a single counterpart, whose
     * grants are skipped (src_quals[] has the reason and the count) */
    uint32_t *unmapped_quals;
    size_t nunmapped_quals;
    /* definitions that name objects of the source tenant (mdl_role.uncopyable): neither created
     * nor updated; source role indexes */
    uint32_t *not_copied;
    size_t nnot_copied;
    /* prune candidates kept because subjects outside the job's scope hold them */
    struct diff_not_pruned *not_pruned;
    size_t nnot_pruned;
};

struct diff {
    const struct cfg_job *job;
    const struct mdl_snapshot *src, *tgt;
    struct diff_src_role *src_roles; /* [src->nroles] */
    struct diff_tgt_role *tgt_roles; /* [tgt->nroles] */
    struct diff_src_qual *src_quals; /* [src->nquals] */
    struct diff_tgt_qual *tgt_quals; /* [tgt->nquals] */
    /* role ops in order: creates (k-th create = ref tgt->nroles + k), updates, deletes */
    struct diff_role_op *role_ops;
    size_t nrole_ops, ncreates, nupdates, ndeletes;
    struct diff_change *changes;
    size_t nchanges, nadds, nremoves;
    struct diff_user_change *users; /* one per changed target user, ascending tgt_user */
    size_t nusers;
    struct diff_report report;
    struct diff_priv *priv; /* internal storage */
};

/* Compute the diff. `mem` may be NULL (no not-converging detection); when given, it is consulted
 * and updated (observations recorded, stale entries dropped). Returns NULL with a message in err
 * only when the snapshots are unusable (not finished). */
struct diff *diff_compute(const struct cfg_job *job, const struct mdl_snapshot *src,
                          const struct mdl_snapshot *tgt, struct diff_memory *mem, char *err,
                          size_t errlen);

/* True when diff_compute(job, src, tgt, NULL, ...) would create or update a role: the role half
 * of the diff only, for a caller that must decide before the whole diff (sync.c reads the
 * target's licensing only then). False for unfinished snapshots. */
bool diff_writes_roles(const struct cfg_job *job, const struct mdl_snapshot *src,
                       const struct mdl_snapshot *tgt);
/* Whose grants a diff of these snapshots will look at (for reads that fetch grants role by
 * role, provider.h prov_fetch_grants): source roles that map to a managed target role or are
 * to be created, and target roles that are managed or prune candidates; never forced roles,
 * nothing when assignments are off but prune candidates. Reads only the snapshots' roles, so
 * it works before the users are read (snapshots need not be finished). The masks have one
 * entry per role of each snapshot. */
void diff_grant_masks(const struct cfg_job *job, const struct mdl_snapshot *src,
                      const struct mdl_snapshot *tgt, bool *src_mask, bool *tgt_mask);
void diff_free(struct diff *d);

/* Name of a target role reference (existing role's name or the name of the role to create). */
const char *diff_ref_name(const struct diff *d, uint32_t ref);
/* Display label of a target user: its match key as the target spells it (email, username, or
 * external key), else its id. */
const char *diff_user_label(const struct diff *d, uint32_t tgt_user);
/* Display name of a target qualifier for plan and log lines: NULL for the home one (and for
 * an undivided target), "*" for the all-divisions grant, else the division's name. */
const char *diff_qual_name(const struct diff *d, uint32_t qual);
/* True when nothing is to be written (not-converging items do not count). */
bool diff_is_empty(const struct diff *d);
/* The in-scope grants a role deletion takes with it (`op`: a DIFF_ROLE_OP_DELETE of `d`):
 * exactly the op->holders grants the guard counts -- direct grants of in-scope target users in
 * in-scope qualifiers that no change of `d` removes first. `fn` is called once per grant, in
 * (user, qualifier) order. Lets a caller name every deletion the guard counts (approve.h). */
void diff_delete_holders(const struct diff *d, const struct diff_role_op *op,
                         void (*fn)(uint32_t tgt_user, uint32_t qual, void *arg), void *arg);

/* ---- queries for one user or one role (rolesyncd --explain, explain.h) -------------------------
 *
 * These expose the reasons the decisions above are made from, through the same code that makes
 * them (the grant filters of the assignment pass, the scope globs, the definition comparison),
 * so an explanation cannot drift from the cycle. They cost nothing in diff_compute: each works
 * on demand, for one user or role. */

/* What becomes of one grant. For a source user's grant (diff_src_grant_why): MIRRORED means it
 * is part of the user's desired target grants; anything else says why it is not. For a target
 * user's grant the source does not call for (diff_tgt_grant_why): MIRRORED means a cycle
 * removes it; ADDITIVE / PROTECTED_ADMIN: it is managed but kept; anything else: left alone. */
enum diff_grant_why {
    DIFF_GRANT_MIRRORED = 0,
    DIFF_GRANT_INHERITED,         /* held through a group: never copied, revoked or counted */
    DIFF_GRANT_ROLE_OUT_OF_SCOPE, /* roles.include / roles.exclude (or a foreign role) */
    DIFF_GRANT_QUAL_OUT_OF_SCOPE, /* divisions.include / divisions.exclude */
    DIFF_GRANT_ROLE_UNMAPPED,     /* source role unmapped, in a conflict, foreign, not copied */
    DIFF_GRANT_QUAL_UNMAPPED,     /* source division without a (single) counterpart */
    DIFF_GRANT_FORCED,            /* the platform's forced role: never added or removed */
    DIFF_GRANT_NOT_MANAGED,       /* target role in a conflict, or its grants were not read */
    DIFF_GRANT_ADDITIVE,          /* assignments: additive never removes */
    DIFF_GRANT_PROTECTED_ADMIN,   /* the admin role, not named verbatim in roles.include */
    DIFF_GRANT_ASSIGNMENTS_OFF,   /* assignments: off */
};
/* `g` is a grant of a source user (`ref`, `qual`: where it goes on the target, MDL_NONE when
 * nowhere) / of a target user. */
enum diff_grant_why diff_src_grant_why(const struct diff *d, const struct mdl_grant *g,
                                       uint32_t *ref, uint32_t *qual);
enum diff_grant_why diff_tgt_grant_why(const struct diff *d, const struct mdl_grant *g);
const char *diff_grant_why_text(enum diff_grant_why w); /* static text */

/* Scope with its reason: whether `s` is in scope of (inc, exc), and the first glob of each
 * list that matches it (NULL: none). The same matching as every scope decision above. */
bool diff_scope_why(const struct cfg_strlist *inc, const struct cfg_strlist *exc, const char *s,
                    const char **included_by, const char **excluded_by);
/* A source division's scope (divisions.include / exclude, the home division answering to
 * "home", all divisions to "*"); between an undivided and a divided tenant no globs apply and
 * both reasons are NULL. */
bool diff_qual_scope_why(const struct diff *d, uint32_t src_qual, const char **included_by,
                         const char **excluded_by);
/* Users: the job's match key of `u` (NULL when it has none); whether it is in scope (keyed,
 * not deleted, and its key selected, with the globs as diff_scope_why gives them); the users
 * of one side whose key equals `key` case-insensitively, deleted ones included (the count is
 * returned, at most `max` indexes stored); the source user matched with a target user
 * (MDL_NONE: unmatched, ambiguous or out of scope); a target user's planned changes (NULL:
 * none). */
const char *diff_user_key(const struct diff *d, const struct mdl_user *u);
bool diff_user_in_scope(const struct diff *d, const struct mdl_user *u, const char **included_by,
                        const char **excluded_by);
size_t diff_find_users(const struct diff *d, bool target, const char *key, uint32_t *out,
                       size_t max);
uint32_t diff_matched_source(const struct diff *d, uint32_t tgt_user);
const struct diff_user_change *diff_user_changes(const struct diff *d, uint32_t tgt_user);
/* DIFF_F_* in which target role `tgt_role` differs from source role `src_role`, compared as a
 * definition update compares them (whether or not roles.definitions is on). */
unsigned diff_def_fields(const struct diff *d, uint32_t src_role, uint32_t tgt_role);

#endif
