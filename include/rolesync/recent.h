/* recent.h — the roles this daemon created lately, per target tenant (product.md 4a.8).
 *
 * The platform's authorization service is eventually consistent: a role created moments ago
 * may be missing from the role listing for a while. A cycle that trusted such a listing would
 * create the role again (and get a name conflict, or a duplicate). So every role the daemon
 * creates is remembered for RECENT_TTL_MS, in memory and in {state_dir}/created-roles.json
 * (written atomically: temp file, fsync, rename, so a restart -- even after kill -9 -- still
 * knows), and a read of that tenant adds a remembered role its listing lacks, as the daemon
 * wrote it (mdl_role.recent), instead of letting the diff create it twice. An entry goes when
 * it is older than RECENT_TTL_MS or once a listing shows the role.
 *
 * Ownership: the store and what it returns belong to it; recent_for() hands out borrowed
 * entries valid until the next call that changes the store. Not thread-safe (the loop's).
 */
#ifndef ROLESYNC_RECENT_H
#define ROLESYNC_RECENT_H

#include <stddef.h>
#include <stdint.h>

#include "rolesync/model.h"

#define RECENT_TTL_MS (10u * 60u * 1000u) /* product.md 4a.8: the last 10 minutes */
#define RECENT_FILE "created-roles.json"

struct recent_entry {
    char *tenant; /* the target tenant's name and base URL: "name base_url" */
    char *id, *name;
    char *description;  /* or NULL */
    char *definition;   /* the definition as written (def_canon / def_json), or NULL */
    int64_t created_ms; /* wall clock, epoch ms */
};

struct recent_roles;

/* Open the store of `state_dir` (NULL: memory only). A missing file is an empty store; an
 * unreadable or malformed one is reported in err (the store starts empty: the daemon then
 * only loses the protection for at most RECENT_TTL_MS). Never NULL. */
struct recent_roles *recent_open(const char *state_dir, char *err, size_t errlen);
void recent_free(struct recent_roles *r); /* NULL is fine */
/* Keep what was loaded but never write the file again (rolesyncd --explain reads what the
 * daemon remembers and must change nothing). */
void recent_detach(struct recent_roles *r);

/* The tenant key of a target (name and base URL): entries of a tenant renamed or moved to
 * another org do not apply. Caller frees. */
char *recent_tenant_key(const char *name, const char *base_url);

/* Remember a role created at `now_ms` and save the file. 0, or -1 + err (the entry stays in
 * memory). */
int recent_note(struct recent_roles *r, const char *tenant, const char *id, const char *name,
                const char *description, const char *definition, int64_t now_ms, char *err,
                size_t errlen);

/* The live entries of `tenant` at `now_ms` (expired ones are dropped first). */
const struct recent_entry *const *recent_for(struct recent_roles *r, const char *tenant,
                                             int64_t now_ms, size_t *n);

/* A read of `tenant` showed role `id`: its entry is no longer needed. Saves when it changed. */
void recent_seen(struct recent_roles *r, const char *tenant, const char *id);

/* Add to `s` (roles not finished; listing complete) every live entry of `tenant` whose id and
 * name (case-insensitively) the snapshot lacks, as mdl_role.recent with what was written, and
 * drop the entries the snapshot shows. Returns how many were added. */
size_t recent_inject(struct recent_roles *r, const char *tenant, struct mdl_snapshot *s,
                     int64_t now_ms);

#endif
