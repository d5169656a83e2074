/* model.h — provider-neutral snapshot of one tenant: roles, users, and each user's grants.
 *
 * Providers (genesys.c, identity.c) fill a snapshot from API responses; the pure core (diff,
 * plan) reads two snapshots and never sees JSON. All strings and arrays of a snapshot live in the
 * snapshot's own arena (mdl_strdup / mdl_alloc), so a 100,000-user tenant costs a few large
 * blocks instead of a million small ones, and mdl_snapshot_free() releases everything at once.
 *
 * A grant is (user, role, qualifier): where the role holds. The qualifier is the provider's
 * (genesys: a division, or the all-divisions grant; identity: the tenant as a whole) and opaque
 * to the core, which compares qualifiers of two snapshots only through their flags and names
 * (diff.h). A grant is direct, or inherited (through a group): the provider says which.
 * Every snapshot starts with qualifier 0, the home one (an undivided tenant has only it).
 *
 * Life cycle: mdl_snapshot_new() -> mdl_add_role()/mdl_add_qual()/mdl_add_user()/
 * mdl_user_add_grant() -> mdl_snapshot_finish() (builds the hash indexes, sorts and
 * de-duplicates grants) -> lookups.
 * Adding after finish is not allowed. Role indexes are uthash tables over the role array; users
 * are found by id through a hash-sorted array (user_ids).
 */
#ifndef ROLESYNC_MODEL_H
#define ROLESYNC_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rolesync/config.h"

#define MDL_NONE UINT32_MAX

enum mdl_user_state { MDL_USER_ACTIVE = 0, MDL_USER_INACTIVE = 1, MDL_USER_DELETED = 2 };

/* What a tenant's API can write, set by its provider (prov_ops.caps) on each snapshot it reads;
 * the pure core reads these instead of knowing platforms.
 * MDL_CAP_GRANT_WRITES: grants are written one by one, saying where they hold: one role for
 *   many users in one qualifier, one role revoked from many users in every qualifier, several
 *   (role, qualifier) grants added to or removed from one user; at most PLAN_BATCH_MAX users a
 *   request (plan.h). Without it, a user's whole role set is written at once.
 * MDL_CAP_BUILTIN_DEFINITIONS: a built-in role's definition (def_canon) may be written; never
 *   its name or description.
 * MDL_CAP_LAGGING_LISTINGS: the role listing is eventually consistent (a role created moments
 *   ago may be missing from it), so what the daemon created lately is trusted over it
 *   (recent.h; product.md 4a.8). Without it a listing is taken as it is: a role gone from it
 *   was deleted, and is created again. */
#define MDL_CAP_GRANT_WRITES 0x1u
#define MDL_CAP_BUILTIN_DEFINITIONS 0x2u
#define MDL_CAP_LAGGING_LISTINGS 0x4u

struct mdl_role {
    const char *id; /* platform id, opaque to the core */
    const char *name;
    const char
        *builtin_key; /* genesys defaultRoleId, identity RoleTypeId (lower case); NULL = custom */
    const char *description; /* NULL when absent */
    const char *def_canon;   /* provider's canonical form of the definition beyond the description
                                (genesys: sorted permissions + normalised, sorted policies); the core
                                compares it byte-wise; NULL = nothing beyond the description */
    const char *def_json;    /* provider's JSON of that definition, used only by a provider of the
                                same api to write it to another tenant; NULL when not applicable */
    const char *def_canon_read; /* set only when a provider adapted def_canon to what the target
                                org can keep (prov_ops.adapt_definitions): def_canon as read */
    bool foreign;               /* not a tenant role the daemon may manage (identity community or
                                   cluster roles): never created, changed, deleted, granted or revoked */
    /* Marks the provider sets (product.md section 4 point 6): */
    bool forced; /* the platform gives it to every user (genesys employee, identity Tenant
                    Member): never added or removed */
    bool admin;  /* the platform's administrator role (genesys admin, identity Tenant
                    Administrator): revoked only by a job that names it verbatim */
    /* Facts the provider adds about the role (product.md 4a.6, 4a.7): */
    const char *uncopyable; /* the definition names objects of this tenant (e.g. "queue
                               9f0c1e2a..."): it cannot mean the same elsewhere; NULL = none */
    uint32_t other_holders; /* subjects other than this snapshot's users that hold it directly
                               (groups, OAuth clients, users the listing lacks) */
    bool grants_unread;     /* its grants were not read (out of the job's interest): the users'
                               grants of it are unknown, not absent */
    bool recent;            /* created by the daemon lately and not listed yet (recent.h): known
                               from what was written; no grants read (none known) */
};

/* Where a role is granted (see above). */
struct mdl_qual {
    const char *id;   /* platform id (genesys division id, "*" for all divisions); NULL for the
                         home qualifier of an undivided tenant */
    const char *name; /* display name; NULL where there is none */
    bool home;        /* the home division / the undivided tenant (qualifier 0, only it) */
    bool all;         /* the all-divisions grant */
};

#define MDL_GRANT_INHERITED 0x1u /* held through a group, not by the user itself */

struct mdl_grant {
    uint32_t role;  /* index into the snapshot's roles */
    uint16_t qual;  /* index into the snapshot's quals */
    uint16_t flags; /* MDL_GRANT_* */
};

struct mdl_user {
    const char *id;
    const char *email;        /* genesys email; identity Email, else ContactEmail; may be NULL */
    const char *username;     /* genesys username; NULL for identity */
    const char *external_key; /* identity "IdentityProviderId/ExternalUserId" (both lower-cased),
                                 NULL if either is missing; NULL for genesys */
    enum mdl_user_state state;
    struct mdl_grant *grants; /* sorted by (role, qual, flags), unique after finish */
    uint32_t ngrants;
    uint32_t grants_cap;
};

struct mdl_index; /* opaque uthash index */
struct mdl_id_slot;

struct mdl_snapshot {
    enum cfg_api api; /* an identity only: built-in keys map between snapshots of one api */
    unsigned caps;    /* MDL_CAP_* */
    struct mdl_role *roles;
    size_t nroles, roles_cap;
    struct mdl_user *users;
    size_t nusers, users_cap;
    struct mdl_qual *quals; /* [0] is the home qualifier */
    size_t nquals, quals_cap;
    bool divided; /* the tenant's grants carry divisions (genesys); else only qualifier 0 */
    char *
        *licensed_domains; /* genesys: permission domains the org licenses (arena); may be empty */
    size_t nlicensed_domains;
    struct mdl_index *role_by_id, *role_by_name, *role_by_key, *qual_by_id;
    /* Users by id: (hash of the id, user index) sorted by hash (built by finish, in the arena).
     * A sorted array rather than a hash table: a listing has up to 10^5 users and the only
     * uses are the duplicate check and lookups in tests; walking a chained table's buckets was
     * a tenth of a steady cycle's CPU. */
    struct mdl_id_slot *user_ids;
    struct mdl_arena *arena;
    bool finished;
    const struct mdl_snapshot *base; /* a view (mdl_snapshot_view): what it shares; else NULL */
};

/* New empty snapshot; free with mdl_snapshot_free(). */
struct mdl_snapshot *mdl_snapshot_new(enum cfg_api api);
void mdl_snapshot_free(struct mdl_snapshot *s);

/* A view of a finished snapshot for one reader among several (one source read shared by the
 * targets of a fan-out job, product.md 4b.1): it shares the users, qualifiers, indexes and
 * strings of `base`, but holds its own copy of the roles array and its own arena, so a
 * provider may rewrite a role's definition for one target (prov_ops.adapt_definitions)
 * without another target seeing it. Everything but `roles` and new arena strings must be
 * treated as read-only. `base` must outlive the view; mdl_snapshot_free() frees only what the
 * view owns. */
struct mdl_snapshot *mdl_snapshot_view(const struct mdl_snapshot *base);

/* Copy a string / allocate zeroed memory in the snapshot's arena (freed with the snapshot). */
const char *mdl_strdup(struct mdl_snapshot *s, const char *str); /* NULL in, NULL out */
void *mdl_alloc(struct mdl_snapshot *s, size_t n);

/* Append a role/user; strings in `r`/`u` are copied into the arena. Returns its index. */
uint32_t mdl_add_role(struct mdl_snapshot *s, const struct mdl_role *r);
uint32_t mdl_add_user(struct mdl_snapshot *s, const struct mdl_user *u);
/* Append a qualifier (strings copied); returns its index. At most MDL_MAX_QUALS. Use
 * mdl_set_home() for qualifier 0. */
#define MDL_MAX_QUALS 65535u
uint32_t mdl_add_qual(struct mdl_snapshot *s, const struct mdl_qual *q);
void mdl_set_home(struct mdl_snapshot *s, const char *id, const char *name);
/* Add a grant to user `user` (duplicates removed at finish). mdl_user_add_role is a direct
 * grant in qualifier 0. */
void mdl_user_add_grant(struct mdl_snapshot *s, uint32_t user, uint32_t role, uint32_t qual,
                        unsigned flags);
void mdl_user_add_role(struct mdl_snapshot *s, uint32_t user, uint32_t role);

/* Index the users by id before finish, once every user is added (no mdl_add_user after it):
 * mdl_find_user_by_id works from then on, so grants read by user id (genesys subject grants)
 * can be added before finish. -1 + err on a duplicate user id. Finish does it when not done. */
int mdl_index_users(struct mdl_snapshot *s, char *err, size_t errlen);
/* Sort and de-duplicate grants, build indexes. Returns 0, or -1 with a message in err when
 * the snapshot is inconsistent (duplicate role, user or qualifier ids, a grant naming a role or
 * qualifier that does not exist). */
int mdl_snapshot_finish(struct mdl_snapshot *s, char *err, size_t errlen);

/* Lookups (after finish). Names compare case-insensitively. MDL_NONE when absent. For a name
 * shared by two roles, mdl_find_role_by_name returns the first and sets *dup (if non-NULL). */
uint32_t mdl_find_role_by_id(const struct mdl_snapshot *s, const char *id);
uint32_t mdl_find_role_by_name(const struct mdl_snapshot *s, const char *name, bool *dup);
uint32_t mdl_find_role_by_key(const struct mdl_snapshot *s, const char *builtin_key);
uint32_t mdl_find_user_by_id(const struct mdl_snapshot *s, const char *id);
uint32_t mdl_find_qual_by_id(const struct mdl_snapshot *s, const char *id);
/* Whether the user holds `role` directly, in any qualifier / in qualifier `qual`. */
bool mdl_user_has_role(const struct mdl_user *u, uint32_t role);
bool mdl_user_has_grant(const struct mdl_user *u, uint32_t role, uint32_t qual);

#endif
