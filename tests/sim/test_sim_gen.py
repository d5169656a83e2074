"""`tenantsim gen`: deterministic, realistic fixtures (spec/simulator.md section 1, the state
format of tests/sim/README.md) and their round trip through a running simulator; version 2's
divisions, groups, org-specific conditions and inactive share, and twins that keep, rename or
drop divisions (section 3b)."""

import collections
import hashlib
import json
import os
import re
import subprocess
import tempfile
import unittest

from simlib import Sim, SimError, binary, direct_grants, gen, gen_bytes, home_division

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
IDENTITY_BUILTINS = {
    "2dc742ab-39ea-4fc0-a39e-2bcb71c26a5f": "Tenant Administrator",
    "f1439595-e5a2-487f-8a4f-0627fefe75df": "Tenant Contributor",
    "45b66433-5f57-420b-bbdf-8bbd60c1cd9d": "Tenant Data Steward",
    "e6cbf91e-0be8-4858-92b5-f88ecafd5574": "Tenant Viewer",
    "7ad2b9ef-5386-4ead-ac9f-ad99c5c5b977": "Tenant Member",
    "b50b3349-fa9e-4a03-9220-cf99184b4645": "Community Administrator",
}
MEMBER_TYPE = "7ad2b9ef-5386-4ead-ac9f-ad99c5c5b977"
ADMIN_TYPE = "2dc742ab-39ea-4fc0-a39e-2bcb71c26a5f"


def genesys_role_names(state):
    """user email -> frozenset of role names."""
    names = {r["id"]: r["name"] for r in state["roles"]}
    return {u["email"]: frozenset(names[x] for x in u["roles"]) for u in state["users"]}


def identity_role_names(state):
    names = {r["Id"]: r["Name"] for r in state["roles"]}
    return {u["ContactEmail"]: frozenset(names[x] for x in u["RoleIds"]) for u in state["users"]}


def all_ids(state):
    if state["api"] == "genesys":
        return ({state["org"]["id"]} | {d["id"] for d in state["divisions"]} |
                {r["id"] for r in state["roles"]} | {u["id"] for u in state["users"]})
    return ({state["tenant_id"]} | {r["Id"] for r in state["roles"]} |
            {u["Id"] for u in state["users"]})


class GenesysFixture(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.state = gen("genesys", 2000, 40, seed=11)

    def test_sizes_and_default_roles(self):
        s = self.state
        self.assertEqual(s["api"], "genesys")
        self.assertEqual(len(s["users"]), 2000)
        defaults = [r for r in s["roles"] if r.get("default")]
        custom = [r for r in s["roles"] if not r.get("default")]
        self.assertEqual(len(custom), 40)
        by_default_id = {r["defaultRoleId"]: r["name"] for r in defaults}
        self.assertEqual(by_default_id["employee"], "Employee")
        self.assertEqual(by_default_id["admin"], "Master Admin")
        self.assertEqual(by_default_id["trustedUser"], "Trusted External User")
        self.assertGreaterEqual(len(defaults), 4)
        for r in custom:
            self.assertNotIn("defaultRoleId", r)
        self.assertEqual(sum(1 for d in s["divisions"] if d["home"]), 1)
        self.assertEqual(s["unlicensed_domains"], [])

    def test_ids_are_unique_guids(self):
        s = self.state
        ids = ([s["org"]["id"]] + [d["id"] for d in s["divisions"]] +
               [r["id"] for r in s["roles"]] + [u["id"] for u in s["users"]])
        self.assertEqual(len(ids), len(set(ids)))
        for i in ids:
            self.assertRegex(i, GUID)

    def test_names_and_emails(self):
        s = self.state
        names = [r["name"].lower() for r in s["roles"]]
        self.assertEqual(len(names), len(set(names)), "role names must be unique case-insensitively")
        emails = [u["email"] for u in s["users"]]
        self.assertEqual(len(emails), len(set(emails)))
        for u in s["users"]:
            self.assertEqual(u["email"], u["email"].lower())
            self.assertRegex(u["email"], r"^[a-z0-9.-]+@example\.com$")
            self.assertEqual(u["username"], u["email"])
            self.assertTrue(u["name"].strip())
        self.assertTrue(any(not u["name"].isascii() for u in s["users"]),
                        "some names should carry non-ASCII letters")

    def test_roles_policies_and_assignments(self):
        s = self.state
        role_ids = {r["id"] for r in s["roles"]}
        division_ids = {d["id"] for d in s["divisions"]}
        employee = next(r["id"] for r in s["roles"] if r.get("defaultRoleId") == "employee")
        admin = next(r["id"] for r in s["roles"] if r.get("defaultRoleId") == "admin")
        for r in s["roles"]:
            self.assertIsInstance(r["permissions"], list)
            if not r.get("default"):
                self.assertTrue(1 <= len(r["permissionPolicies"]) <= 6, r["name"])
            for p in r["permissionPolicies"]:
                self.assertTrue(p["domain"] and p["entityName"] and p["actionSet"], p)
        for u in s["users"]:
            self.assertIn(employee, u["roles"])
            self.assertEqual(len(u["roles"]), len(set(u["roles"])))
            self.assertTrue(set(u["roles"]) <= role_ids)
            self.assertIn(u["division"], division_ids)
        states = collections.Counter(u["state"] for u in s["users"])
        self.assertEqual(set(states), {"active", "inactive", "deleted"})
        self.assertGreater(states["active"], 0.9 * len(s["users"]))
        self.assertTrue(any(admin in u["roles"] for u in s["users"]))
        self.assertTrue(any(r["permissions"] for r in s["roles"] if not r.get("default")),
                        "some custom roles carry flat permissions")

    def test_assignment_skew(self):
        s = self.state
        n = len(s["users"])
        custom = {r["id"] for r in s["roles"] if not r.get("default")}
        held = collections.Counter(x for u in s["users"] for x in u["roles"] if x in custom)
        shares = sorted((held[c] / n for c in custom), reverse=True)
        self.assertGreater(shares[0], 0.5, "the most common custom role is on most users")
        self.assertLess(shares[len(shares) // 2], 0.1, "the median custom role is on few users")
        self.assertGreater(shares[-1], 0.0)


class IdentityFixture(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.state = gen("identity", 2000, 25, seed=5, tenant_id="0a1b2c3d-0000-4000-8000-00000000abcd")

    def test_builtins_and_custom_roles(self):
        s = self.state
        self.assertEqual(s["tenant_id"], "0a1b2c3d-0000-4000-8000-00000000abcd")
        builtins = {r["RoleTypeId"]: r["Name"] for r in s["roles"] if r["RoleTypeId"]}
        self.assertEqual(builtins, IDENTITY_BUILTINS)
        custom = [r for r in s["roles"] if r["RoleTypeId"] is None]
        self.assertEqual(len(custom), 25)
        for r in s["roles"]:
            self.assertEqual(r["RoleScope"], 1)
            self.assertEqual(r["TenantId"], s["tenant_id"])
            self.assertRegex(r["Id"], GUID)
            self.assertTrue(0 < len(r["Name"]) <= 128 and len(r["Description"] or "") <= 128)
        names = [r["Name"].lower() for r in s["roles"]]
        self.assertEqual(len(names), len(set(names)))

    def test_users(self):
        s = self.state
        role_ids = {r["Id"] for r in s["roles"]}
        member = next(r["Id"] for r in s["roles"] if r["RoleTypeId"] == MEMBER_TYPE)
        admin = next(r["Id"] for r in s["roles"] if r["RoleTypeId"] == ADMIN_TYPE)
        ids = [u["Id"] for u in s["users"]]
        self.assertEqual(len(ids), len(set(ids)))
        contacts = [u["ContactEmail"] for u in s["users"]]
        self.assertEqual(len(contacts), len(set(contacts)))
        pending = [u for u in s["users"] if u["Email"] is None]
        accepted = [u for u in s["users"] if u["Email"] is not None]
        self.assertTrue(0 < len(pending) < 0.2 * len(s["users"]))
        for u in pending:
            self.assertIsNone(u["ExternalUserId"])
            self.assertIsNone(u["IdentityProviderId"])
            self.assertTrue(u["ContactEmail"] and u["ContactGivenName"] and u["ContactSurname"])
        idps = {u["IdentityProviderId"] for u in accepted}
        self.assertEqual(len(idps), 1)
        self.assertRegex(idps.pop(), GUID)
        externals = [u["ExternalUserId"] for u in accepted]
        self.assertTrue(all(externals) and len(externals) == len(set(externals)))
        for u in accepted:
            self.assertEqual(u["Email"], u["ContactEmail"])
            self.assertEqual(u["Email"], u["Email"].lower())
        for u in s["users"]:
            self.assertIn(member, u["RoleIds"])
            self.assertTrue(set(u["RoleIds"]) <= role_ids)
        admins = sum(1 for u in s["users"] if admin in u["RoleIds"])
        self.assertTrue(1 <= admins < 0.05 * len(s["users"]))


# Digests of version 1's output (tenantsim before version 2): without the version 2 options the
# generator writes exactly these bytes, so the fixtures existing tests and benchmarks were tuned
# on stay what they were.
V1_DIGESTS = {
    ("genesys", 500, 20, 42): "d0c195d5d57ccebc7d7ab773aa3fa46fbf4f80fbe5b287436a07e472a094e0c3",
    ("genesys", 500, 20, 7): "a6c8cd0c655cb59587477ce4faa2aaa6e09bd76fdb2e7027a96a79b3d43a7f73",
    ("identity", 300, 10, 42): "a9654fb8bbad010e3b036d39d7d772f9d33b549178421dbf56897122f4b1fb2e",
}
V1_TWIN_DIGESTS = {  # of gen genesys 500 20 seed 42, --same-as with these flags
    (("seed", 43), ("drift", 20), ("edit_roles", 3)):
        "36f7d08c1f532453d767052434200a6bdbd16998a498da5c9f63bc28716b3db4",
    (("seed", 44), ("no_custom_roles", True)):
        "a5abaea74ccef31ac65c3200d99db52a9151a071ab13c1c0ee23f26ec696f881",
}


class Determinism(unittest.TestCase):
    def test_version_1_output_unchanged(self):
        for (api, users, roles, seed), digest in V1_DIGESTS.items():
            out = gen_bytes(api, users, roles, seed=seed)
            self.assertEqual(hashlib.sha256(out).hexdigest(), digest, (api, users, roles, seed))
        src = gen("genesys", 500, 20, seed=42)
        for flags, digest in V1_TWIN_DIGESTS.items():
            out = gen_bytes(None, same_as=src, **dict(flags))
            self.assertEqual(hashlib.sha256(out).hexdigest(), digest, flags)

    def test_same_seed_same_bytes(self):
        for api in ("genesys", "identity"):
            a = gen_bytes(api, 500, 20, seed=42)
            b = gen_bytes(api, 500, 20, seed=42)
            c = gen_bytes(api, 500, 20, seed=43)
            self.assertEqual(a, b, api)
            self.assertNotEqual(a, c, api)

    def test_same_as_is_deterministic(self):
        src = gen("genesys", 300, 10, seed=3)
        a = gen_bytes(None, same_as=src, seed=9, drift=10, edit_roles=2)
        b = gen_bytes(None, same_as=src, seed=9, drift=10, edit_roles=2)
        self.assertEqual(a, b)

    def test_sizes_of_a_larger_tenant(self):
        # 20,000 users (also what the sanitizer build runs); counts only, no timing.
        src = gen("genesys", 20000, 150, seed=2)
        self.assertEqual(len(src["users"]), 20000)
        dst = gen(None, same_as=src, no_custom_roles=True)
        self.assertEqual(len(dst["users"]), 20000)
        self.assertFalse([r for r in dst["roles"] if not r.get("default")])


class SameAs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.src = gen("genesys", 1000, 30, seed=21)
        cls.isrc = gen("identity", 1000, 12, seed=22)

    def test_same_people_new_ids(self):
        dst = gen(None, same_as=self.src, seed=21)  # same seed on purpose: ids must still differ
        self.assertFalse(all_ids(self.src) & all_ids(dst))
        self.assertEqual([(u["email"], u["username"], u["name"], u["state"]) for u in self.src["users"]],
                         [(u["email"], u["username"], u["name"], u["state"]) for u in dst["users"]])
        self.assertEqual(genesys_role_names(self.src), genesys_role_names(dst), "no drift asked")
        key = lambda r: (r["name"], r.get("defaultRoleId"), r["description"], json.dumps(r["permissionPolicies"]))
        self.assertEqual(sorted(map(key, self.src["roles"])), sorted(map(key, dst["roles"])))
        div_name = lambda s: {d["id"]: d["name"] for d in s["divisions"]}
        sd, dd = div_name(self.src), div_name(dst)
        self.assertEqual([sd[u["division"]] for u in self.src["users"]],
                         [dd[u["division"]] for u in dst["users"]])

    def test_drift_amount(self):
        dst = gen(None, same_as=self.src, drift=5)
        a, b = genesys_role_names(self.src), genesys_role_names(dst)
        changed = [e for e in a if a[e] != b[e]]
        self.assertEqual(len(changed), 50)
        active = {u["email"] for u in self.src["users"] if u["state"] == "active"}
        self.assertTrue(set(changed) <= active, "drift lands on users a sync acts on")
        for e in changed:
            self.assertIn("Employee", b[e])
            self.assertEqual(len(a[e] ^ b[e]), 1, "one role added or removed")

    def test_edit_roles(self):
        dst = gen(None, same_as=self.src, edit_roles=3)
        before = {r["name"]: r for r in self.src["roles"]}
        edited = [r["name"] for r in dst["roles"]
                  if (r["description"], r["permissionPolicies"]) !=
                  (before[r["name"]]["description"], before[r["name"]]["permissionPolicies"])]
        self.assertEqual(len(edited), 3)
        self.assertFalse([n for n in edited if before[n].get("default")])
        for n in edited:
            r = next(x for x in dst["roles"] if x["name"] == n)
            self.assertNotEqual(r["permissionPolicies"], before[n]["permissionPolicies"])
        self.assertEqual(genesys_role_names(self.src), genesys_role_names(dst))

    def test_no_custom_roles(self):
        dst = gen(None, same_as=self.src, no_custom_roles=True)
        self.assertTrue(all(r.get("default") for r in dst["roles"]))
        self.assertEqual(sorted(r["defaultRoleId"] for r in dst["roles"]),
                         sorted(r["defaultRoleId"] for r in self.src["roles"] if r.get("default")))
        defaults = {r["name"] for r in dst["roles"]}
        a, b = genesys_role_names(self.src), genesys_role_names(dst)
        for e in a:
            self.assertEqual(b[e], a[e] & defaults)

    def test_identity_same_as(self):
        dst = gen(None, same_as=self.isrc, drift=2, edit_roles=1)
        self.assertEqual(dst["api"], "identity")
        self.assertFalse(all_ids(self.isrc) & all_ids(dst))
        keep = lambda u: (u["Email"], u["ContactEmail"], u["ExternalUserId"], u["IdentityProviderId"], u["Name"])
        self.assertEqual(list(map(keep, self.isrc["users"])), list(map(keep, dst["users"])))
        self.assertEqual({r["RoleTypeId"]: r["Name"] for r in dst["roles"] if r["RoleTypeId"]}, IDENTITY_BUILTINS)
        a, b = identity_role_names(self.isrc), identity_role_names(dst)
        self.assertEqual(sum(1 for e in a if a[e] != b[e]), 20)
        self.assertTrue(all("Tenant Member" in v for v in b.values()))
        before = {r["Name"]: r["Description"] for r in self.isrc["roles"]}
        self.assertEqual(sum(1 for r in dst["roles"] if r["Description"] != before[r["Name"]]), 1)
        none = gen(None, same_as=self.isrc, no_custom_roles=True)
        self.assertEqual(len(none["roles"]), 6)

    def test_tenant_id_and_api_mismatch(self):
        dst = gen(None, same_as=self.isrc, tenant_id="11111111-2222-4333-8444-555555555555")
        self.assertEqual(dst["tenant_id"], "11111111-2222-4333-8444-555555555555")
        with self.assertRaises(SimError):
            gen("genesys", same_as=self.isrc)


def divisions_by_id(state):
    return {d["id"]: d["name"] for d in state["divisions"]}


def named_grants(state, subject):
    """A subject's direct grants as (role name, division name or "*"), comparable across orgs
    (the home division compared as "(home)")."""
    roles = {r["id"]: r["name"] for r in state["roles"]}
    divs = divisions_by_id(state)
    home = home_division(state)
    return {(roles[r], "(home)" if d == home else divs.get(d, d))
            for r, d in direct_grants(state, subject)}


def org_references(state):
    """(role name, [ids]) for every policy naming org objects (conditions, namedResources)."""
    out = []
    for r in state["roles"]:
        for p in r["permissionPolicies"]:
            ids = list(p.get("namedResources") or [])

            def walk(node):
                for t in node.get("terms") or []:
                    walk(t)
                for op in node.get("operands") or []:
                    for kind in ("queue", "user"):
                        if kind in op:
                            ids.append((op["type"], op[kind]["id"]))
            if p.get("resourceConditionNode"):
                walk(p["resourceConditionNode"])
            if ids:
                out.append((r["name"], ids))
    return out


class Version2Fixture(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.state = gen("genesys", 3000, 30, seed=5, divisions=6, groups=8, conditions=4)

    def test_divisions_and_users(self):
        s = self.state
        self.assertEqual(len(s["divisions"]), 7)
        self.assertEqual([d["home"] for d in s["divisions"]], [True] + [False] * 6)
        self.assertEqual([d["name"] for d in s["divisions"]][1:],
                         ["EMEA", "APAC", "Americas", "North America", "LATAM", "UK & Ireland"])
        self.assertEqual(len({d["id"] for d in s["divisions"]}), 7)
        home = home_division(s)
        outside = sum(1 for u in s["users"] if u["division"] != home) / len(s["users"])
        self.assertTrue(0.5 < outside < 0.7, outside)

    def test_grants_spread_over_divisions(self):
        s = self.state
        home, divs = home_division(s), divisions_by_id(s)
        roles = {r["id"]: r for r in s["roles"]}
        employee = next(r["id"] for r in s["roles"] if r.get("defaultRoleId") == "employee")
        total = out = star = both = 0
        for u in s["users"]:
            pairs = direct_grants(s, u)
            self.assertIn((employee, home), pairs)
            self.assertFalse([g for g in u.get("grants", []) if g["role"] == employee])
            for r, d in pairs:
                self.assertIn(r, roles)
                self.assertTrue(d == "*" or d in divs, d)
            total += len(pairs)
            out += sum(1 for _, d in pairs if d != home)
            star += sum(1 for _, d in pairs if d == "*")
            both += len({r for r, d in pairs if d != home} & set(u["roles"]))
        self.assertTrue(0.28 < out / total < 0.40, out / total)  # about a third
        self.assertTrue(0 < star < 0.02 * total, star)  # a few "*" grants
        self.assertGreater(both, 0, "some roles held at home and in another division")

    def test_groups(self):
        s = self.state
        self.assertEqual(len(s["groups"]), 8)
        names = [g["name"] for g in s["groups"]]
        self.assertEqual(len(set(names)), 8)
        users = {u["id"] for u in s["users"]}
        home = home_division(s)
        custom = {r["id"] for r in s["roles"] if not r.get("default")}
        sizes = []
        outside = 0
        for g in s["groups"]:
            self.assertTrue(g["members"] and set(g["members"]) <= users, g["name"])
            self.assertEqual(len(g["members"]), len(set(g["members"])))
            pairs = direct_grants(s, g)
            self.assertTrue(1 <= len(pairs) <= 3, g["name"])
            self.assertTrue({r for r, _ in pairs} <= custom)
            outside += sum(1 for _, d in pairs if d != home)
            sizes.append(len(g["members"]))
        self.assertGreater(outside, 0, "some group grants outside the home division")
        self.assertGreater(sizes[0], 0.03 * len(s["users"]))
        self.assertLess(sizes[-1], 0.02 * len(s["users"]))

    def test_conditions_name_the_orgs_objects(self):
        s = self.state
        refs = org_references(s)
        self.assertEqual(len({name for name, _ in refs}), 4)
        queues = {q["id"] for q in s["queues"]}
        users = {u["id"] for u in s["users"]}
        kinds = collections.Counter()
        for _, ids in refs:
            for ref in ids:
                kind, rid = ref if isinstance(ref, tuple) else ("named", ref)
                kinds[kind] += 1
                self.assertIn(rid, users if kind == "USER" else queues)
        self.assertEqual(set(kinds), {"QUEUE", "USER", "named"})
        custom = {r["name"] for r in s["roles"] if not r.get("default")}
        self.assertTrue({name for name, _ in refs} <= custom)

    def test_inactive_share(self):
        s = gen("genesys", 5000, 5, seed=3, inactive_share=15)
        states = collections.Counter(u["state"] for u in s["users"])
        self.assertTrue(0.13 < states["inactive"] / 5000 < 0.17, states)
        self.assertTrue(0.005 < states["deleted"] / 5000 < 0.015, states)
        self.assertNotIn("groups", s)
        self.assertFalse([u for u in s["users"] if "grants" in u])

    def test_no_version_2_data_without_the_options(self):
        s = gen("genesys", 300, 5, seed=3)
        self.assertEqual([d["name"] for d in s["divisions"]],
                         ["Home", "Sales Division", "Support Division"])
        for key in ("groups", "queues", "oauth_clients"):
            self.assertNotIn(key, s)
        self.assertFalse([u for u in s["users"] if "grants" in u])
        self.assertEqual(gen_bytes("genesys", 300, 5, seed=3, divisions=2, groups=2),
                         gen_bytes("genesys", 300, 5, seed=3, divisions=2, groups=2))

    def test_loads_and_serves(self):
        s = self.state
        home = home_division(s)
        with Sim("genesys", state=s) as sim:
            self.assertEqual(sim.state()["groups"], s["groups"])
            st, p = sim.request_json("GET", "/api/v2/groups?pageSize=100")
            self.assertEqual(p["total"], 8)
            st, p = sim.request_json("GET", "/api/v2/authorization/divisions")
            self.assertEqual(p["total"], 7)
            g = s["groups"][0]
            st, sub = sim.request_json("GET", f"/api/v2/authorization/subjects/{g['members'][0]}")
            self.assertTrue([x for x in sub["grants"] if x["subjectId"] == g["id"]])
            role = next(r for r, d in direct_grants(s, s["users"][1]) if d != home) \
                if s["users"][1].get("grants") else None
            if role:
                st, p = sim.request_json("GET", f"/api/v2/authorization/roles/{role}/subjectgrants"
                                                "?pageSize=100")
                self.assertEqual(st, 200)
                self.assertTrue(any(d["id"] != home for e in p["entities"] for d in e["divisions"]))


class Version2Twin(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.src = gen("genesys", 1500, 20, seed=31, divisions=4, groups=5, conditions=3)

    def test_same_divisions_groups_grants_new_ids(self):
        dst = gen(None, same_as=self.src, seed=32)
        self.assertFalse(all_ids(self.src) & all_ids(dst))
        self.assertEqual([d["name"] for d in dst["divisions"]], [d["name"] for d in self.src["divisions"]])
        self.assertEqual([q["name"] for q in dst["queues"]], [q["name"] for q in self.src["queues"]])
        self.assertFalse({q["id"] for q in dst["queues"]} & {q["id"] for q in self.src["queues"]})
        self.assertFalse({g["id"] for g in dst["groups"]} & {g["id"] for g in self.src["groups"]})
        semail = {u["id"]: u["email"] for u in self.src["users"]}
        demail = {u["id"]: u["email"] for u in dst["users"]}
        for a, b in zip(self.src["groups"], dst["groups"]):
            self.assertEqual(a["name"], b["name"])
            self.assertEqual([semail[m] for m in a["members"]], [demail[m] for m in b["members"]])
            self.assertEqual(named_grants(self.src, a), named_grants(dst, b))
        for a, b in zip(self.src["users"], dst["users"]):
            self.assertEqual(named_grants(self.src, a), named_grants(dst, b), a["email"])
        sd, dd = divisions_by_id(self.src), divisions_by_id(dst)
        self.assertEqual([sd[u["division"]] for u in self.src["users"]],
                         [dd[u["division"]] for u in dst["users"]])

    def test_conditions_name_the_twins_objects(self):
        dst = gen(None, same_as=self.src, seed=32)
        a, b = org_references(self.src), org_references(dst)
        self.assertEqual([n for n, _ in a], [n for n, _ in b])
        squeue = {q["id"]: q["name"] for q in self.src["queues"]}
        dqueue = {q["id"]: q["name"] for q in dst["queues"]}
        semail = {u["id"]: u["email"] for u in self.src["users"]}
        demail = {u["id"]: u["email"] for u in dst["users"]}

        def named(ids, queue, email):
            return [(k, queue.get(i) or email.get(i)) if isinstance(k, str) else None
                    for k, i in (x if isinstance(x, tuple) else ("named", x) for x in ids)]
        for (_, x), (_, y) in zip(a, b):
            self.assertEqual(named(x, squeue, semail), named(y, dqueue, demail))
            self.assertTrue(all(v[1] for v in named(y, dqueue, demail)), "twin's own ids")

    def test_drift_stays_at_home(self):
        dst = gen(None, same_as=self.src, seed=32, drift=10)
        changed = 0
        for a, b in zip(self.src["users"], dst["users"]):
            ga, gb = named_grants(self.src, a), named_grants(dst, b)
            if ga != gb:
                changed += 1
                self.assertEqual({d for _, d in ga ^ gb}, {"(home)"})
        self.assertEqual(changed, 150)

    def test_rename_and_drop_divisions(self):
        dst = gen(None, same_as=self.src, seed=32, rename_division=["emea=Europe"],
                  drop_division=["APAC"])
        self.assertEqual([d["name"] for d in dst["divisions"]],
                         ["Home", "Europe", "Americas", "North America"])
        sd, dd = divisions_by_id(self.src), divisions_by_id(dst)
        for a, b in zip(self.src["users"], dst["users"]):
            want = {(r, {"EMEA": "Europe"}.get(d, d)) for r, d in named_grants(self.src, a)
                    if d != "APAC"}
            self.assertEqual(named_grants(dst, b), want)
            self.assertEqual(dd[b["division"]],
                             {"EMEA": "Europe", "APAC": "Home"}.get(sd[a["division"]], sd[a["division"]]))
        for a, b in zip(self.src["groups"], dst["groups"]):
            self.assertEqual(named_grants(dst, b),
                             {(r, {"EMEA": "Europe"}.get(d, d)) for r, d in named_grants(self.src, a)
                              if d != "APAC"})
        self.assertTrue(any(d == "APAC" for u in self.src["users"] for _, d in named_grants(self.src, u)))
        with Sim("genesys", state=dst) as sim:
            self.assertEqual(len(sim.state()["divisions"]), 4)

    def test_no_custom_roles_drops_their_grants(self):
        dst = gen(None, same_as=self.src, no_custom_roles=True)
        custom = {r["name"] for r in self.src["roles"] if not r.get("default")}
        for u in dst["users"] + dst["groups"]:
            self.assertFalse({r for r, _ in named_grants(dst, u)} & custom)
        with Sim("genesys", state=dst) as sim:
            self.assertEqual(len(sim.state()["users"]), 1500)

    def test_option_errors(self):
        def run(*args):
            return subprocess.run([binary("TENANTSIM"), "gen", *args], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, timeout=60)
        for args in (["--api", "identity", "--users", "1", "--roles", "1", "--divisions", "2"],
                     ["--api", "genesys", "--users", "1", "--roles", "2", "--conditions", "3"],
                     ["--api", "genesys", "--users", "1", "--roles", "1", "--drop-division", "x"],
                     ["--api", "genesys", "--users", "1", "--roles", "1", "--groups", "-1"],
                     ["--api", "genesys", "--users", "1", "--roles", "1", "--inactive-share", "100"],
                     ["--api", "genesys", "--users", "1", "--roles", "1", "--rename-division", "x"]):
            p = run(*args)
            self.assertEqual(p.returncode, 2, args)
            self.assertTrue(p.stderr.strip(), args)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "src.json")
            with open(path, "w") as f:
                json.dump(self.src, f)
            self.assertEqual(run("--same-as", path, "--divisions", "3").returncode, 2)
            for args in (["--drop-division", "Atlantis"], ["--drop-division", "Home"],
                         ["--rename-division", "Atlantis=Lost"]):
                p = run("--same-as", path, *args)
                self.assertEqual(p.returncode, 1, args)
                self.assertIn(b"division", p.stderr)


class CommandLine(unittest.TestCase):
    def run_gen(self, *args):
        return subprocess.run([binary("TENANTSIM"), "gen", *args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=60)

    def test_usage_errors(self):
        for args in (["--api", "genesys"], ["--api", "nope", "--users", "1", "--roles", "1"],
                     ["--api", "genesys", "--users", "-1", "--roles", "1"],
                     ["--api", "genesys", "--users", "1", "--roles", "1", "--drift", "5"],
                     ["--api", "genesys", "--users", "1", "--roles", "1", "--bogus"],
                     ["--api", "identity", "--users", "1", "--roles", "1", "--tenant-id", "x"]):
            p = self.run_gen(*args)
            self.assertEqual(p.returncode, 2, args)
            self.assertTrue(p.stderr.strip(), args)
            self.assertEqual(p.stdout, b"", args)

    def test_bad_same_as_files(self):
        with tempfile.TemporaryDirectory() as d:
            missing = os.path.join(d, "missing.json")
            bad = os.path.join(d, "bad.json")
            with open(bad, "w") as f:
                f.write("[1, 2")
            small = os.path.join(d, "small.json")
            with open(small, "w") as f:
                json.dump(gen("genesys", 5, 1), f)
            for args in (["--same-as", missing], ["--same-as", bad],
                         ["--same-as", small, "--edit-roles", "2"]):
                p = self.run_gen(*args)
                self.assertEqual(p.returncode, 1, args)
                self.assertTrue(p.stderr.strip(), args)

    def test_hand_written_source_gets_defaults(self):
        src = {"api": "genesys", "roles": [{"id": "r1", "name": "Quote \" and \\ back"}],
               "users": [{"id": "u1", "email": "a@example.com", "username": "a@example.com",
                          "roles": ["r1", "dangling"]}]}
        dst = gen(None, same_as=src)
        names = {r["id"]: r["name"] for r in dst["roles"]}
        self.assertIn("Quote \" and \\ back", names.values())
        self.assertEqual({names[x] for x in dst["users"][0]["roles"]}, {"Employee", "Quote \" and \\ back"})
        self.assertIn("Master Admin", names.values())


class ServerRoundTrip(unittest.TestCase):
    def test_genesys_put_state_then_list(self):
        state = gen("genesys", 700, 12, seed=8)
        active = {u["id"] for u in state["users"] if u["state"] == "active"}
        with Sim("genesys") as sim:
            sim.put_state(state)
            seen, page = [], 1
            while True:
                status, body = sim.request_json("GET", f"/api/v2/users?pageSize=500&pageNumber={page}")
                self.assertEqual(status, 200, body)
                seen += body["entities"]
                if "nextUri" not in body:
                    break
                page += 1
            self.assertEqual(page, 2)
            self.assertEqual({u["id"] for u in seen}, active)
            self.assertEqual(body["total"], len(active))
            back = sim.state()
            self.assertEqual({u["id"] for u in back["users"]}, {u["id"] for u in state["users"]})
            self.assertEqual({r["name"] for r in back["roles"]}, {r["name"] for r in state["roles"]})

    def test_identity_state_file_then_list(self):
        state = gen("identity", 300, 8, seed=4)
        with Sim("identity", state=state) as sim:
            base = sim.api_base
            self.assertEqual(sim.tenant_id, state["tenant_id"])
            status, headers, data = sim.request("GET", f"{base}/Users?skip=0&count=1000")
            self.assertEqual(status, 200, data[:300])
            users = json.loads(data)
            self.assertEqual(int(headers["total-count"]), 300)
            self.assertEqual({u["Id"] for u in users}, {u["Id"] for u in state["users"]})
            status, roles = sim.request_json("GET", f"{base}/Roles?count=1000")
            self.assertEqual(status, 200)
            self.assertEqual({r["Name"] for r in roles}, {r["Name"] for r in state["roles"]})


if __name__ == "__main__":
    unittest.main(verbosity=2)
