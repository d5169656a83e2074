/* fx_platform.h — what a provider sets on the snapshots it reads, for tests that build
 * snapshots by hand (test_diff, test_plan, test_property): the platform's write capabilities
 * and the forced / administrator marks of built-in roles, from the providers' own constants so
 * the tests cannot drift from what the daemon reads. */
#ifndef ROLESYNC_TEST_FX_PLATFORM_H
#define ROLESYNC_TEST_FX_PLATFORM_H

#include <string.h>
#include <strings.h>

#include "providers/genesys_json.h"
#include "providers/identity_json.h"
#include "rolesync/model.h"
#include "rolesync/provider.h"

static inline const char *fx_forced_key(enum cfg_api api)
{
    return api == CFG_API_GENESYS ? GJS_FORCED_ROLE : IJS_TENANT_MEMBER;
}

static inline const char *fx_admin_key(enum cfg_api api)
{
    return api == CFG_API_GENESYS ? GJS_ADMIN_ROLE : IJS_TENANT_ADMIN;
}

/* Mark `r` (about to be added to a snapshot of `api`) as the roles parser would. */
static inline void fx_mark_role(enum cfg_api api, struct mdl_role *r)
{
    r->forced = r->builtin_key && strcasecmp(r->builtin_key, fx_forced_key(api)) == 0;
    r->admin = r->builtin_key && strcasecmp(r->builtin_key, fx_admin_key(api)) == 0;
}

/* A new snapshot of `api` with the provider's capabilities. */
static inline struct mdl_snapshot *fx_snapshot_new(enum cfg_api api)
{
    struct mdl_snapshot *s = mdl_snapshot_new(api);
    s->caps = prov_for_api(api)->caps;
    return s;
}

#endif
