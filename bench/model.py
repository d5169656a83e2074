"""model.py — the benchmark's own idea of a job's desired result, and the bounds of
spec/performance.md, computed from the two fixture states alone (never from rolesyncd's plan).

The model covers the jobs the benchmark runs: same-api mirror jobs, roles.include ["*"],
users.include ["*"], match_by email, assignments mirror, definitions on or off, prune off.
It follows product.md section 4:
  - built-in roles match by their platform key (genesys defaultRoleId, identity RoleTypeId),
    custom roles by name, case-insensitively; identity roles outside the tenant (RoleScope != 1
    or a CommunityId) are foreign: never mapped, never touched;
  - users match by lower-cased email (identity: Email, else ContactEmail); genesys users in state
    `deleted` are ignored; a key held by two users on one side is ambiguous (skipped);
  - the forced role (genesys employee, identity Tenant Member) is never added or removed; the
    admin role (genesys admin, identity Tenant Administrator) is never revoked by a wildcard;
  - definitions: a source custom role missing on the target is created, one whose description or
    permissions differ is updated; a genesys default role is updated when its permissions differ.
Anything the model does not handle (a rename, a conflict between roles) makes it raise rather
than guess, so a bound is never silently wrong.
"""

import math

GENESYS_FORCED = ("b", "employee")
GENESYS_ADMIN = ("b", "admin")
IDENTITY_MEMBER = ("b", "7ad2b9ef-5386-4ead-ac9f-ad99c5c5b977")
IDENTITY_ADMIN = ("b", "2dc742ab-39ea-4fc0-a39e-2bcb71c26a5f")

GENESYS_MAX_PAGE = 500    # tenantsim --max-page-size default (genesys pageSize ceiling)
IDENTITY_MAX_PAGE = 1000  # tenantsim --max-page-size default (identity count ceiling)
GENESYS_BATCH = 100       # ids per PUT /authorization/roles/{id}/users/add|remove


class ModelError(RuntimeError):
    """The fixture holds something the model does not decide (it never guesses)."""


# ------------------------------------------------------------------------------------------
# Reading one tenant state

def _policies_canon(role):
    pols = set()
    for p in role.get("permissionPolicies") or []:
        pols.add((p.get("domain"), p.get("entityName"), tuple(sorted(p.get("actionSet") or [])),
                  bool(p.get("allowConditions"))))
    return (frozenset(role.get("permissions") or []), frozenset(pols))


class Tenant:
    """One state (notes/simstate.md) indexed the way a sync reads it."""

    def __init__(self, state):
        self.api = state["api"]
        self.state = state
        g = self.api == "genesys"
        self.forced = GENESYS_FORCED if g else IDENTITY_MEMBER
        self.admin = GENESYS_ADMIN if g else IDENTITY_ADMIN
        self.nroles = len(state["roles"])
        self.nusers = len(state["users"])  # genesys users are listed with state=any: all count
        self.key_of_id = {}   # role id -> key (foreign roles: absent)
        self.role_by_key = {}
        self.foreign_ids = set()
        for r in state["roles"]:
            if g:
                rid, builtin, name = r["id"], r.get("defaultRoleId"), r["name"]
            else:
                rid, builtin, name = r["Id"], r.get("RoleTypeId"), r["Name"]
                if r.get("RoleScope", 1) != 1 or r.get("CommunityId"):
                    self.foreign_ids.add(rid)
                    continue
            key = ("b", builtin) if builtin else ("c", name.lower())
            if key in self.role_by_key:
                raise ModelError(f"{self.api}: two roles with key {key} (a conflict)")
            self.key_of_id[rid] = key
            self.role_by_key[key] = r
        customs = {k[1] for k in self.role_by_key if k[0] == "c"}
        builtin_names = {(r["name"] if g else r["Name"]).lower()
                         for k, r in self.role_by_key.items() if k[0] == "b"}
        if customs & builtin_names:
            raise ModelError(f"{self.api}: a custom role is named like a built-in (a conflict)")
        # users by match key; ambiguous keys are skipped by the daemon, so by the model too
        self.user_by_key = {}
        dup = set()
        for u in state["users"]:
            if g:
                if u.get("state") == "deleted":
                    continue
                email = u.get("email")
            else:
                email = u.get("Email") or u.get("ContactEmail")
            if not email:
                continue
            k = email.lower()
            if k in self.user_by_key:
                dup.add(k)
            self.user_by_key[k] = u
        for k in dup:
            del self.user_by_key[k]
        self.ambiguous = dup

    def user_id(self, u):
        return u["id"] if self.api == "genesys" else u["Id"]

    def user_role_ids(self, u):
        return u["roles"] if self.api == "genesys" else u["RoleIds"]

    def user_keys(self, u):
        """The user's roles as keys (foreign or unknown ids left out)."""
        return {self.key_of_id[x] for x in self.user_role_ids(u) if x in self.key_of_id}

    def definition(self, key):
        r = self.role_by_key[key]
        if self.api == "genesys":
            return (r.get("description") or "", _policies_canon(r))
        return (r.get("Description") or "",)

    def max_page(self):
        return GENESYS_MAX_PAGE if self.api == "genesys" else IDENTITY_MAX_PAGE


# ------------------------------------------------------------------------------------------
# The desired result of one mirror cycle

class Plan:
    """What one cycle must change on the target, as the model decides it.
    creates/updates: role keys; users: {target user id: (adds, removes)} (sets of role keys);
    desired: {target user id: full desired set of role keys} for every matched user."""

    def __init__(self):
        self.creates = []
        self.updates = []
        self.deletes = []
        self.users = {}
        self.desired = {}
        self.matched = 0


def desired_plan(src_state, tgt_state, definitions):
    src, tgt = Tenant(src_state), Tenant(tgt_state)
    if src.api != tgt.api:
        raise ModelError("the model covers same-api jobs only")
    p = Plan()
    # role mapping: source key -> target key (created roles keep the source key)
    mapped = set()
    for key in src.role_by_key:
        if key in tgt.role_by_key:
            mapped.add(key)
            if not definitions:
                continue
            if key[0] == "c":
                if src.definition(key) != tgt.definition(key):
                    p.updates.append(key)
            elif src.api == "genesys":
                # default roles: permissions only; name and description are never written
                if src.definition(key)[1] != tgt.definition(key)[1]:
                    p.updates.append(key)
        elif key[0] == "c" and definitions:
            p.creates.append(key)
            mapped.add(key)
        # else: unmapped (built-in missing on the target, or custom without definitions)
    # managed target roles: every non-foreign target role but the forced one (include "*"),
    # plus the roles about to be created
    for email, su in src.user_by_key.items():
        tu = tgt.user_by_key.get(email)
        if tu is None:
            continue
        p.matched += 1
        cur = tgt.user_keys(tu)
        want_managed = {k for k in src.user_keys(su) if k in mapped} - {src.forced}
        cur_managed = cur - {tgt.forced}
        adds = want_managed - cur_managed
        removes = cur_managed - want_managed - {tgt.admin}
        tid = tgt.user_id(tu)
        p.desired[tid] = (cur - removes) | adds
        if adds or removes:
            p.users[tid] = (adds, removes)
    return p, src, tgt


# ------------------------------------------------------------------------------------------
# Bounds (spec/performance.md)

def read_pages(t):
    mp = t.max_page()
    return max(1, math.ceil(t.nroles / mp)) + max(1, math.ceil(t.nusers / mp))


def assignment_writes(plan, api):
    per_user = len(plan.users)
    if api != "genesys":
        return per_user, "per user"
    adds, rems = {}, {}
    for a, r in plan.users.values():
        for k in a:
            adds[k] = adds.get(k, 0) + 1
        for k in r:
            rems[k] = rems.get(k, 0) + 1
    batches = sum(math.ceil(n / GENESYS_BATCH) for n in adds.values()) + \
        sum(math.ceil(n / GENESYS_BATCH) for n in rems.values())
    return (batches, "per-role batches") if batches <= per_user else (per_user, "per user")


def bounds(plan, src, tgt, latency_ms, max_connections, rate_per_s):
    reads = read_pages(src) + read_pages(tgt)
    role_writes = len(plan.creates) + len(plan.updates) + len(plan.deletes)
    assign, strategy = assignment_writes(plan, tgt.api)
    rmin = reads + role_writes + assign
    out = {
        "read_pages": reads,
        "role_writes": role_writes,
        "assignment_writes": assign,
        "assignment_strategy": strategy,
        "writes_min": role_writes + assign,
        "requests_min": rmin,
        "changed_users": len(plan.users),
        "pairs_added": sum(len(a) for a, _ in plan.users.values()),
        "pairs_removed": sum(len(r) for _, r in plan.users.values()),
        "matched_users": plan.matched,
        "roles_created": len(plan.creates),
        "roles_updated": len(plan.updates),
        "t_latency_s": (latency_ms / 1000.0) * (3 + math.ceil(rmin / max_connections)),
    }
    out["t_rate_s"] = rmin / rate_per_s if rate_per_s else None
    return out


# ------------------------------------------------------------------------------------------
# Checking a target after a cycle

def check_target(plan, src, tgt_before, after_state, definitions, limit=5):
    """Compare the target's state after the cycle with the model. Returns a list of problems
    (at most `limit` examples per kind, plus counts); empty means the target is as desired."""
    after = Tenant(after_state)
    problems = []
    # roles
    if definitions:
        bad = []
        for key in src.role_by_key:
            if key[0] != "c" and src.api != "genesys":
                continue
            if key not in after.role_by_key:
                if key[0] == "c":
                    bad.append(f"role {key[1]!r} missing")
                continue
            s, a = src.definition(key), after.definition(key)
            if key[0] == "c" and s != a:
                bad.append(f"role {key[1]!r} differs")
            elif key[0] == "b" and s[1:] != a[1:]:
                bad.append(f"default role {key[1]!r} permissions differ")
        if bad:
            problems.append(f"{len(bad)} role definition problems, e.g. {bad[:limit]}")
    # users: matched ones hold exactly the desired set; everyone else is untouched
    before_sets = {tgt_before.user_id(u): tgt_before.user_keys(u)
                   for u in tgt_before.state["users"]}
    wrong, touched = [], []
    for u in after.state["users"]:
        uid = after.user_id(u)
        have = after.user_keys(u)
        want = plan.desired.get(uid)
        if want is not None:
            if have != want:
                wrong.append(uid)
        elif before_sets.get(uid) is not None and have != before_sets[uid]:
            touched.append(uid)
    if wrong:
        problems.append(f"{len(wrong)} matched users without the desired roles, e.g. "
                        f"{wrong[:limit]}")
    if touched:
        problems.append(f"{len(touched)} unmatched users changed, e.g. {touched[:limit]}")
    return problems
