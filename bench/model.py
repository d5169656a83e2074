"""model.py — the benchmark's own idea of a job's desired result, and the bounds of
spec/performance.md, computed from the two fixture states alone (never from rolesyncd's plan).

The model covers the jobs the benchmark runs: same-api mirror jobs, roles.include ["*"],
users.include ["*"], divisions.include ["*"], match_by email, assignments mirror, definitions
on or off, prune off. It follows product.md section 4 and, for genesys, 4a (contract v2):
  - genesys: the unit is the direct grant (role, division) of a user; grants inherited through
    a group are never copied and never count as present; the home division matches the home
    division, `*` matches `*`, other divisions match by name case-insensitively;
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
        self.nusers = len(state["users"])
        self.by_state = {}
        for u in state["users"]:
            st = u.get("state", "active") if g else "active"
            self.by_state[st] = self.by_state.get(st, 0) + 1
        # genesys divisions: id -> key ("home" / "*" / ("n", lower-cased name))
        self.div_key = {"*": ("*",)}
        self.ndivisions = len(state.get("divisions") or [])
        self.home_div = None
        if g:
            names = set()
            for d in state.get("divisions") or []:
                if d.get("home"):
                    self.home_div = d["id"]
                    self.div_key[d["id"]] = ("home",)
                    continue
                k = ("n", d["name"].lower())
                if k in names:
                    raise ModelError(f"genesys: two divisions named {d['name']!r} (a conflict)")
                names.add(k)
                self.div_key[d["id"]] = k
            if self.home_div is None:  # a version 1 state: one (home) division
                self.home_div = "home"
                self.div_key["home"] = ("home",)
                self.ndivisions = 1
        # direct holders per role id (users of every state, groups, OAuth clients), as the
        # subject grants listing pages them
        self.holders = {}
        if g:
            for kind in ("users", "groups", "oauth_clients"):
                for subj in state.get(kind) or []:
                    for rid in {r for r, _ in self.direct_grant_ids(subj)}:
                        self.holders[rid] = self.holders.get(rid, 0) + 1
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

    def direct_grant_ids(self, subj):
        """A genesys subject's direct grants as (role id, division id) (simlib.direct_grants:
        `roles` are home-division grants, `grants` the others, "*" for all divisions)."""
        pairs = {(r, self.home_div) for r in subj.get("roles") or []}
        return pairs | {(x["role"], x["division"]) for x in subj.get("grants") or []}

    def user_keys(self, u):
        """The user's direct grants as (role key, division key) -- identity: (role key, None)
        -- foreign or unknown role ids left out."""
        if self.api != "genesys":
            return {(self.key_of_id[x], None) for x in u["RoleIds"] if x in self.key_of_id}
        out = set()
        for rid, did in self.direct_grant_ids(u):
            if rid not in self.key_of_id:
                continue
            if did not in self.div_key:
                raise ModelError(f"genesys: a grant in unknown division {did!r}")
            out.add((self.key_of_id[rid], self.div_key[did]))
        return out

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
        self.current = {}
        self.mapped = set()
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
    p.mapped = mapped
    # divisions (genesys, 4a.2): home <-> home, * <-> *, others by name; a division on either
    # side without a counterpart would be skipped (source) or still be in scope (target): the
    # model does not decide those fixtures
    if src.api == "genesys":
        for side, other in ((src, tgt), (tgt, src)):
            for k in set(side.div_key.values()) - set(other.div_key.values()):
                raise ModelError(f"genesys: division {k} has no counterpart")
    # managed target roles: every non-foreign target role but the forced one (include "*"),
    # plus the roles about to be created; grants are (role key, division key) pairs
    for email, su in src.user_by_key.items():
        tu = tgt.user_by_key.get(email)
        if tu is None:
            continue
        p.matched += 1
        cur = tgt.user_keys(tu)
        want_managed = {k for k in src.user_keys(su) if k[0] in mapped and k[0] != src.forced}
        cur_managed = {k for k in cur if k[0] != tgt.forced}
        adds = want_managed - cur_managed
        removes = {k for k in cur_managed - want_managed if k[0] != tgt.admin}
        tid = tgt.user_id(tu)
        p.current[tid] = cur
        p.desired[tid] = (cur - removes) | adds
        if adds or removes:
            p.users[tid] = (adds, removes)
    return p, src, tgt


# ------------------------------------------------------------------------------------------
# Bounds (spec/performance.md)

GENESYS_GRANTS_PAGE = 100    # subject grants' largest page
GENESYS_CURSOR_PAGE = 500    # /users/query's largest page
GENESYS_DIVISIONS_PAGE = 100
GENESYS_OFFSET_CAP = 10000   # offset paging of non-active users stops here (api/genesys.md)


def pages(n, size):
    """Pages a listing of n entries takes; an empty listing still answers one page."""
    return max(1, math.ceil(n / size))


def read_roles(t, plan, side):
    """The roles whose grants a cycle must read (performance.md version 2: in scope, not the
    forced role): source roles that map to a target role or are created, target roles that
    exist (include "*"). Role ids."""
    out = []
    for key, r in t.role_by_key.items():
        if key == t.forced:
            continue
        if side == "src" and key not in plan.mapped:
            continue
        out.append(r["id"])
    return out


def read_pages(t, plan=None, side=None):
    """Read pages of one side. Identity and version 1: ceil(roles / max page) + ceil(users /
    max page). Genesys (version 2, 4a): the same plus one subject-grants page per 100 direct
    holders of every role whose grants are read (at least one: an empty listing must be asked
    too), users past the offset cap as cursor pages of 500, and the divisions listing (pages
    of 100), which any division-aware read needs and performance.md's formula leaves out."""
    mp = t.max_page()
    n = pages(t.nroles, mp)
    if t.api != "genesys":
        return n + pages(t.nusers, mp)
    capped = min(t.nusers, GENESYS_OFFSET_CAP)
    n += pages(capped, mp)
    if t.nusers > capped:
        n += pages(t.nusers - capped, GENESYS_CURSOR_PAGE)
    n += pages(t.ndivisions, GENESYS_DIVISIONS_PAGE)
    if plan is not None:
        n += sum(pages(t.holders.get(rid, 0), GENESYS_GRANTS_PAGE)
                 for rid in read_roles(t, plan, side))
    return n


def assignment_writes(plan, api):
    """Minimal assignment writes: identity one per changed user; genesys the smaller of
    batches -- per (role, division) grants of up to 100 users, per-role revocations of up to
    100 users for users who lose every direct grant of that role and gain none of it, one
    removal request for every other user with removals -- and one request per user with adds
    plus one per user with removals."""
    if api != "genesys":
        return len(plan.users), "per user"
    adds, rems, own_removals = {}, {}, 0
    per_user = 0
    for tid, (a, r) in plan.users.items():
        per_user += (1 if a else 0) + (1 if r else 0)
        for k in a:
            adds[k] = adds.get(k, 0) + 1
        if not r:
            continue
        have = plan.current.get(tid, set())
        clean = set()
        for role in {k[0] for k in r}:
            held = {k for k in have if k[0] == role}
            gains = any(k[0] == role for k in a)
            if held <= r and not gains:
                clean.add(role)
        for role in clean:
            rems[role] = rems.get(role, 0) + 1
        if any(k[0] not in clean for k in r):
            own_removals += 1
    batches = sum(math.ceil(n / GENESYS_BATCH) for n in adds.values()) + \
        sum(math.ceil(n / GENESYS_BATCH) for n in rems.values()) + own_removals
    return (batches, "per-role batches") if batches <= per_user else (per_user, "per user")


def bounds(plan, src, tgt, latency_ms, max_connections, rate_per_s):
    reads = read_pages(src, plan, "src") + read_pages(tgt, plan, "tgt")
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
