"""Conformance of tenantsim's version 2 genesys model (spec/simulator.md section 3b,
api/genesys.md sections 4-7 and 10, tests/sim/README.md): divisions, groups and their inherited
grants, grant triples (subjects, subject grants), the division-aware writes and their
atomicity, the decided meaning of the division-blind endpoints (each shown losing a grant in a
non-home division), the offset cap and the cursor listing, --lag, org-specific references in
policies, the state format (version 1 -> 2 round trip), and identity's --read-only-region."""

import copy
import json
import threading
import time
import unittest
import urllib.parse

from simlib import Sim, direct_grants

HOME = "d0000000-0000-4000-8000-000000000001"
EMEA = "d0000000-0000-4000-8000-000000000002"
APAC = "d0000000-0000-4000-8000-000000000003"
EMP, ADM, R1, R2, R3 = ("e0000000-0000-4000-8000-000000000001",
                        "e0000000-0000-4000-8000-000000000002",
                        "c0000000-0000-4000-8000-000000000001",
                        "c0000000-0000-4000-8000-000000000002",
                        "c0000000-0000-4000-8000-000000000003")
G1, G2 = "90000000-0000-4000-8000-000000000001", "90000000-0000-4000-8000-000000000002"
CLIENT = "0c000000-0000-4000-8000-000000000001"
NOWHERE = "00000000-0000-4000-8000-00000000dead"


def uid(i):
    return f"a0000000-0000-4000-8000-{i:012d}"


def make_state():
    """Eight users; u1 holds R1 at home and in EMEA and R2 in APAC; u2 holds R3 in every
    division; G1 (u1, u3) holds R3 at home and R1 in EMEA; G2 (u3) holds R2 in APAC; a client
    holds R2 at home. u6 is inactive, u7 deleted, u8 lives in EMEA."""
    roles = [{"id": EMP, "name": "Employee", "description": "", "defaultRoleId": "employee",
              "default": True, "base": False, "permissions": [], "permissionPolicies": []},
             {"id": ADM, "name": "Master Admin", "description": "", "defaultRoleId": "admin",
              "default": True, "base": False, "permissions": ["admin"], "permissionPolicies": []}]
    for rid, name in ((R1, "Queue Agent"), (R2, "Supervisor"), (R3, "Reporting")):
        roles.append({"id": rid, "name": name, "description": name.lower(), "default": False,
                      "base": False, "permissions": [], "permissionPolicies": []})
    users = []
    for i in range(1, 9):
        state = {6: "inactive", 7: "deleted"}.get(i, "active")
        u = {"id": uid(i), "name": f"User {i}", "email": f"u{i}@example.com",
             "username": f"u{i}@example.com", "state": state,
             "division": EMEA if i == 8 else HOME, "roles": [EMP]}
        users.append(u)
    users[0]["roles"] = [EMP, R1]
    users[0]["grants"] = [{"role": R1, "division": EMEA}, {"role": R2, "division": APAC}]
    users[1]["grants"] = [{"role": R3, "division": "*"}]
    return {"api": "genesys", "org": {"id": "0a000000-0000-4000-8000-000000000001",
                                      "name": "Division Org"},
            "unlicensed_domains": [],
            "divisions": [{"id": HOME, "name": "Home", "home": True},
                          {"id": EMEA, "name": "EMEA", "home": False, "description": "Europe"},
                          {"id": APAC, "name": "APAC", "home": False}],
            "settings": {"backfillEnabled": False, "authorizationGrantDivisionAware": True},
            "roles": roles, "users": users,
            "groups": [{"id": G1, "name": "Tier 2", "description": "second line",
                        "members": [uid(1), uid(3)], "roles": [R3],
                        "grants": [{"role": R1, "division": EMEA}]},
                       {"id": G2, "name": "Night Shift", "members": [uid(3)], "roles": [],
                        "grants": [{"role": R2, "division": APAC}]}],
            "oauth_clients": [{"id": CLIENT, "name": "Exporter", "roles": [R2]}]}


class Base(unittest.TestCase):
    sim_args = {}

    @classmethod
    def setUpClass(cls):
        cls.sim = Sim("genesys", state=make_state(), **cls.sim_args).start()

    @classmethod
    def tearDownClass(cls):
        cls.sim.__exit__(None, None, None)

    def setUp(self):
        self.sim.put_state(make_state())
        self.sim.clear_faults()

    def call(self, method, path, body=None):
        status, _, data = self.sim.request(method, path, body)
        return status, (json.loads(data) if data.strip() else None)

    def assertStatus(self, want, method, path, body=None, code=None):
        st, b = self.call(method, path, body)
        self.assertEqual(st, want, f"{method} {path}: {b}")
        if code:
            self.assertEqual(b["code"], code)
        return b

    def grants(self, subject):
        return direct_grants(self.sim.state(), subject)

    def held(self, user):
        """Role ids of the user's authorization.roles (expand=authorization)."""
        st, u = self.call("GET", f"/api/v2/users/{user}?expand=authorization")
        self.assertEqual(st, 200)
        return [r["id"] for r in u["authorization"]["roles"]]


class Divisions(Base):
    def test_listing_filters_and_shape(self):
        p = self.assertStatus(200, "GET", "/api/v2/authorization/divisions")
        self.assertEqual([d["id"] for d in p["entities"]], [HOME, EMEA, APAC])
        self.assertEqual((p["total"], p["pageCount"], p["pageNumber"]), (3, 1, 1))
        emea = p["entities"][1]
        self.assertEqual(emea, {"id": EMEA, "name": "EMEA", "description": "Europe",
                                "homeDivision": False,
                                "selfUri": f"/api/v2/authorization/divisions/{EMEA}"})
        self.assertTrue(p["entities"][0]["homeDivision"])
        p = self.assertStatus(200, "GET", "/api/v2/authorization/divisions?pageSize=2&pageNumber=2")
        self.assertEqual([d["id"] for d in p["entities"]], [APAC])
        self.assertNotIn("nextUri", p)
        p = self.assertStatus(200, "GET", "/api/v2/authorization/divisions?name=emea")
        self.assertEqual([d["id"] for d in p["entities"]], [EMEA])
        p = self.assertStatus(200, "GET", f"/api/v2/authorization/divisions?id={APAC},{HOME}")
        self.assertEqual([d["id"] for d in p["entities"]], [HOME, APAC])
        p = self.assertStatus(200, "GET", f"/api/v2/authorization/divisions?id={APAC}&id={EMEA}")
        self.assertEqual(p["total"], 2)
        self.assertStatus(400, "GET", "/api/v2/authorization/divisions?pageSize=0",
                          code="bad.request")

    def test_home_and_one(self):
        d = self.assertStatus(200, "GET", "/api/v2/authorization/divisions/home")
        self.assertEqual((d["id"], d["name"], d["homeDivision"]), (HOME, "Home", True))
        d = self.assertStatus(200, "GET", f"/api/v2/authorization/divisions/{APAC}")
        self.assertEqual(d["name"], "APAC")
        self.assertStatus(404, "GET", f"/api/v2/authorization/divisions/{NOWHERE}",
                          code="not.found")
        self.assertStatus(404, "GET", "/api/v2/authorization/divisions/*", code="not.found")

    def test_user_division(self):
        st, u = self.call("GET", f"/api/v2/users/{uid(8)}")
        self.assertEqual(u["division"], {"id": EMEA, "name": "EMEA",
                                         "selfUri": f"/api/v2/authorization/divisions/{EMEA}"})
        st, u = self.call("GET", f"/api/v2/users/{uid(1)}")
        self.assertEqual(u["division"]["id"], HOME)


class Groups(Base):
    def test_listing_one_and_members(self):
        p = self.assertStatus(200, "GET", "/api/v2/groups")
        self.assertEqual([g["id"] for g in p["entities"]], [G1, G2])
        g = p["entities"][0]
        for k, v in {"name": "Tier 2", "description": "second line", "memberCount": 2,
                     "type": "official", "state": "active", "version": 1,
                     "selfUri": f"/api/v2/groups/{G1}"}.items():
            self.assertEqual(g[k], v, k)
        self.assertEqual((p["total"], p["pageSize"]), (2, 25))
        p = self.assertStatus(200, "GET", "/api/v2/groups?pageSize=1&pageNumber=2")
        self.assertEqual([g["id"] for g in p["entities"]], [G2])
        self.assertIn("previousUri", p)
        p = self.assertStatus(200, "GET", f"/api/v2/groups?id={G2}")
        self.assertEqual([g["name"] for g in p["entities"]], ["Night Shift"])
        self.assertEqual(self.assertStatus(200, "GET", f"/api/v2/groups/{G2}")["memberCount"], 1)
        self.assertStatus(404, "GET", f"/api/v2/groups/{NOWHERE}", code="not.found")
        m = self.assertStatus(200, "GET", f"/api/v2/groups/{G1}/members?pageSize=1&expand=authorization")
        self.assertEqual((m["total"], m["pageCount"]), (2, 2))
        self.assertEqual(m["entities"][0]["id"], uid(1))
        self.assertIn("authorization", m["entities"][0])
        m = self.assertStatus(200, "GET", f"/api/v2/groups/{G1}/members?pageSize=1&pageNumber=2")
        self.assertEqual([u["id"] for u in m["entities"]], [uid(3)])
        self.assertStatus(404, "GET", f"/api/v2/groups/{NOWHERE}/members")

    def test_members_inherit(self):
        # u3 holds nothing directly but employee, and inherits R3 (G1), R1 (G1) and R2 (G2).
        self.assertEqual(self.held(uid(3)), [EMP, R3, R1, R2])
        # u1 holds R1 and R2 directly and inherits R3 and R1 again: each role once.
        self.assertEqual(self.held(uid(1)), [EMP, R1, R2, R3])
        st, p = self.call("GET", "/api/v2/users?pageSize=3&expand=authorization")
        self.assertEqual([r["id"] for r in p["entities"][2]["authorization"]["roles"]],
                         [EMP, R3, R1, R2])
        a = self.assertStatus(200, "GET", f"/api/v2/users/{uid(3)}/roles")
        self.assertEqual([r["id"] for r in a["roles"]], [EMP, R3, R1, R2])


class Subjects(Base):
    def test_user_with_and_without_duplicates(self):
        s = self.assertStatus(200, "GET", f"/api/v2/authorization/subjects/{uid(1)}")
        self.assertEqual((s["id"], s["name"], s["version"]), (uid(1), "User 1", 1))
        self.assertEqual(s["selfUri"], f"/api/v2/authorization/subjects/{uid(1)}")
        got = [(g["subjectId"], g["role"]["id"], g["division"]["id"]) for g in s["grants"]]
        # direct ones first, then G1's R3 at home; G1's R1 in EMEA duplicates a direct grant.
        self.assertEqual(got, [(uid(1), EMP, HOME), (uid(1), R1, HOME), (uid(1), R1, EMEA),
                               (uid(1), R2, APAC), (G1, R3, HOME)])
        div = s["grants"][2]["division"]
        self.assertEqual(div, {"id": EMEA, "name": "EMEA", "description": "Europe",
                               "homeDivision": False,
                               "selfUri": f"/api/v2/authorization/divisions/{EMEA}"})
        role = s["grants"][1]["role"]
        self.assertEqual((role["id"], role["name"], role["default"]), (R1, "Queue Agent", False))
        self.assertEqual(role["selfUri"], f"/api/v2/authorization/roles/{R1}")
        self.assertTrue(s["grants"][0]["role"]["default"])
        self.assertRegex(s["grants"][0]["grantMadeAt"], r"Z$")
        s = self.assertStatus(200, "GET",
                              f"/api/v2/authorization/subjects/{uid(1)}?includeDuplicates=true")
        got = [(g["subjectId"], g["role"]["id"], g["division"]["id"]) for g in s["grants"]]
        self.assertEqual(got[-2:], [(G1, R3, HOME), (G1, R1, EMEA)])
        self.assertEqual(len(got), 6)
        s = self.assertStatus(200, "GET",
                              f"/api/v2/authorization/subjects/{uid(1)}?includeDuplicates=false")
        self.assertEqual(len(s["grants"]), 5)

    def test_all_divisions_group_and_client(self):
        s = self.assertStatus(200, "GET", f"/api/v2/authorization/subjects/{uid(2)}")
        star = [g["division"] for g in s["grants"] if g["role"]["id"] == R3]
        self.assertEqual([(d["id"], d["name"], d["homeDivision"]) for d in star],
                         [("*", "All divisions", False)])
        s = self.assertStatus(200, "GET", f"/api/v2/authorization/subjects/{G1}")
        self.assertEqual([(g["subjectId"], g["role"]["id"], g["division"]["id"])
                          for g in s["grants"]], [(G1, R3, HOME), (G1, R1, EMEA)])
        s = self.assertStatus(200, "GET", f"/api/v2/authorization/subjects/{CLIENT}")
        self.assertEqual([g["role"]["id"] for g in s["grants"]], [R2])
        self.assertStatus(404, "GET", f"/api/v2/authorization/subjects/{NOWHERE}",
                          code="not.found")

    def test_subjectgrants(self):
        p = self.assertStatus(200, "GET", f"/api/v2/authorization/roles/{R2}/subjectgrants")
        self.assertEqual([(e["id"], e["type"]) for e in p["entities"]],
                         [(uid(1), "PC_USER"), (G2, "PC_GROUP"), (CLIENT, "PC_OAUTH_CLIENT")])
        u1 = p["entities"][0]
        self.assertEqual(u1["name"], "User 1")
        self.assertEqual(u1["selfUri"], f"/api/v2/users/{uid(1)}")
        self.assertEqual(u1["divisions"], [{"id": APAC, "name": "APAC", "description": "",
                                            "homeDivision": False,
                                            "selfUri": f"/api/v2/authorization/divisions/{APAC}"}])
        self.assertEqual(p["entities"][1]["selfUri"], f"/api/v2/groups/{G2}")
        self.assertEqual(p["entities"][1]["name"], "Night Shift")
        p = self.assertStatus(200, "GET", f"/api/v2/authorization/roles/{R1}/subjectgrants")
        self.assertEqual([(e["id"], [d["id"] for d in e["divisions"]]) for e in p["entities"]],
                         [(uid(1), [HOME, EMEA]), (G1, [EMEA])])
        p = self.assertStatus(200, "GET", f"/api/v2/authorization/roles/{R3}/subjectgrants")
        self.assertEqual([(e["id"], [d["id"] for d in e["divisions"]]) for e in p["entities"]],
                         [(uid(2), ["*"]), (G1, [HOME])])
        # employee: every user directly, in pages of at most 100
        p = self.assertStatus(200, "GET",
                              f"/api/v2/authorization/roles/{EMP}/subjectgrants?pageSize=3&pageNumber=3")
        self.assertEqual((p["total"], p["pageCount"]), (8, 3))
        self.assertEqual([e["id"] for e in p["entities"]], [uid(7), uid(8)])
        self.assertNotIn("nextUri", p)
        self.assertStatus(200, "GET", f"/api/v2/authorization/roles/{EMP}/subjectgrants?pageSize=100")
        self.assertStatus(400, "GET", f"/api/v2/authorization/roles/{EMP}/subjectgrants?pageSize=101",
                          code="bad.request")
        self.assertStatus(404, "GET", f"/api/v2/authorization/roles/{NOWHERE}/subjectgrants",
                          code="not.found")

    def test_subjectgrants_follow_writes(self):
        self.assertStatus(204, "POST",
                          f"/api/v2/authorization/subjects/{uid(5)}/divisions/{EMEA}/roles/{R2}")
        p = self.assertStatus(200, "GET", f"/api/v2/authorization/roles/{R2}/subjectgrants")
        self.assertEqual([e["id"] for e in p["entities"]], [uid(1), uid(5), G2, CLIENT])
        self.assertStatus(204, "DELETE",
                          f"/api/v2/authorization/subjects/{uid(1)}/divisions/{APAC}/roles/{R2}")
        p = self.assertStatus(200, "GET", f"/api/v2/authorization/roles/{R2}/subjectgrants")
        self.assertEqual([e["id"] for e in p["entities"]], [uid(5), G2, CLIENT])

    def test_user_count_and_role_users(self):
        st, r = self.call("GET", f"/api/v2/authorization/roles/{R1}")
        self.assertEqual(r["userCount"], 1)  # u1 directly; u3 only inherits it
        st, r = self.call("GET", f"/api/v2/authorization/roles/{R2}")
        self.assertEqual(r["userCount"], 1)  # u1 (APAC); the group and the client are no users
        st, p = self.call("GET", f"/api/v2/authorization/roles/{R3}/users")
        self.assertEqual([u["id"] for u in p["entities"]], [uid(2)])
        self.assertEqual(p["total"], 1)


class DivisionAwareWrites(Base):
    def test_bulk_grant_every_subject_every_division(self):
        body = {"subjectIds": [uid(4), uid(5)], "divisionIds": [EMEA, "*"]}
        st, b = self.call("POST", f"/api/v2/authorization/roles/{R3}?subjectType=PC_USER", body)
        self.assertEqual((st, b), (204, None))
        for u in (uid(4), uid(5)):
            self.assertEqual(self.grants(u), {(EMP, HOME), (R3, EMEA), (R3, "*")})
        st, _ = self.call("POST", f"/api/v2/authorization/roles/{R2}?subjectType=PC_GROUP",
                          {"subjectIds": [G1], "divisionIds": [HOME]})
        self.assertEqual(st, 204)
        self.assertIn((R2, HOME), self.grants(G1))
        self.assertIn(R2, self.held(uid(1)))
        st, _ = self.call("POST", f"/api/v2/authorization/roles/{R1}?subjectType=PC_OAUTH_CLIENT",
                          {"subjectIds": [CLIENT], "divisionIds": [APAC]})
        self.assertEqual(st, 204)
        self.assertEqual(self.grants(CLIENT), {(R2, HOME), (R1, APAC)})
        # granting what is held changes nothing and still answers 204
        self.assertEqual(self.call("POST", f"/api/v2/authorization/roles/{R3}", body)[0], 204)

    def test_bulk_grant_refusals_change_nothing(self):
        before = self.sim.state()
        path = f"/api/v2/authorization/roles/{R3}"
        self.assertStatus(404, "POST", path, {"subjectIds": [uid(4)], "divisionIds": [EMEA, NOWHERE]},
                          code="not.found")
        self.assertStatus(404, "POST", path, {"subjectIds": [uid(4), NOWHERE], "divisionIds": [EMEA]},
                          code="not.found")
        # a group id is not a user (subjectType defaults to PC_USER)
        self.assertStatus(404, "POST", path, {"subjectIds": [G1], "divisionIds": [EMEA]})
        self.assertStatus(404, "POST", f"/api/v2/authorization/roles/{NOWHERE}",
                          {"subjectIds": [uid(4)], "divisionIds": [EMEA]}, code="not.found")
        self.assertStatus(400, "POST", path, {"subjectIds": [uid(4)] * 101, "divisionIds": [EMEA]},
                          code="bad.request")
        self.assertStatus(400, "POST", path, {"subjectIds": [], "divisionIds": [EMEA]})
        self.assertStatus(400, "POST", path, {"subjectIds": [uid(4)]})
        self.assertStatus(400, "POST", path + "?subjectType=PC_ROBOT",
                          {"subjectIds": [uid(4)], "divisionIds": [EMEA]}, code="bad.request")
        self.assertEqual(self.sim.state(), before)
        self.assertStatus(204, "POST", path, {"subjectIds": [uid(4)] * 100, "divisionIds": [EMEA]})

    def test_bulkadd_bulkremove(self):
        base = f"/api/v2/authorization/subjects/{uid(4)}"
        body = {"grants": [{"roleId": R1, "divisionId": EMEA}, {"roleId": R2, "divisionId": "*"},
                           {"roleId": R1, "divisionId": EMEA}]}
        self.assertEqual(self.call("POST", base + "/bulkadd?subjectType=PC_USER", body), (204, None))
        self.assertEqual(self.grants(uid(4)), {(EMP, HOME), (R1, EMEA), (R2, "*")})
        # bulkremove ignores pairs not held, and never takes employee from the home division
        body = {"grants": [{"roleId": R1, "divisionId": EMEA}, {"roleId": R3, "divisionId": APAC},
                           {"roleId": EMP, "divisionId": HOME}]}
        self.assertEqual(self.call("POST", base + "/bulkremove", body)[0], 204)
        self.assertEqual(self.grants(uid(4)), {(EMP, HOME), (R2, "*")})
        # a group, by type
        self.assertEqual(self.call("POST", f"/api/v2/authorization/subjects/{G2}/bulkadd"
                                           "?subjectType=PC_GROUP",
                                   {"grants": [{"roleId": R3, "divisionId": EMEA}]})[0], 204)
        self.assertIn(R3, self.held(uid(3)))
        self.assertEqual(self.call("POST", f"/api/v2/authorization/subjects/{G2}/bulkremove",
                                   {"grants": [{"roleId": R2, "divisionId": APAC}]})[0], 204)
        self.assertEqual(self.grants(G2), {(R3, EMEA)})

    def test_bulk_atomicity(self):
        before = self.sim.state()
        base = f"/api/v2/authorization/subjects/{uid(1)}"
        one_bad_division = {"grants": [{"roleId": R3, "divisionId": EMEA},
                                       {"roleId": R3, "divisionId": NOWHERE}]}
        one_bad_role = {"grants": [{"roleId": R3, "divisionId": EMEA},
                                   {"roleId": NOWHERE, "divisionId": EMEA}]}
        for op in ("bulkadd", "bulkremove", "bulkreplace"):
            self.assertStatus(404, "POST", f"{base}/{op}", one_bad_division, code="not.found")
            self.assertStatus(404, "POST", f"{base}/{op}", one_bad_role, code="not.found")
            self.assertStatus(404, "POST", f"/api/v2/authorization/subjects/{NOWHERE}/{op}",
                              {"grants": []}, code="not.found")
            self.assertStatus(400, "POST", f"{base}/{op}", {"grants": [{"roleId": R3}]},
                              code="bad.request")
            self.assertStatus(400, "POST", f"{base}/{op}", [R3], code="bad.request")
        self.assertStatus(404, "POST", f"/api/v2/authorization/subjects/{G1}/bulkadd",
                          {"grants": []})  # a group needs subjectType=PC_GROUP
        self.assertEqual(self.sim.state(), before)

    def test_bulkreplace_keeps_employee_and_inherited(self):
        base = f"/api/v2/authorization/subjects/{uid(1)}/bulkreplace?subjectType=PC_USER"
        self.assertEqual(self.call("POST", base, {"grants": [{"roleId": R2, "divisionId": EMEA}]})[0],
                         204)
        self.assertEqual(self.grants(uid(1)), {(EMP, HOME), (R2, EMEA)})
        # what G1 gives is still there
        self.assertEqual(self.held(uid(1)), [EMP, R2, R3, R1])
        self.assertEqual(self.grants(G1), {(R3, HOME), (R1, EMEA)})
        self.assertEqual(self.call("POST", base, {"grants": []})[0], 204)
        self.assertEqual(self.grants(uid(1)), {(EMP, HOME)})
        st, r = self.call("GET", f"/api/v2/authorization/roles/{R1}")
        self.assertEqual(r["userCount"], 0)
        # a group's replace has no employee to keep
        self.assertEqual(self.call("POST", f"/api/v2/authorization/subjects/{G1}/bulkreplace"
                                           "?subjectType=PC_GROUP", {"grants": []})[0], 204)
        self.assertEqual(self.grants(G1), set())
        self.assertEqual(self.held(uid(3)), [EMP, R2])

    def test_grant_and_revoke_one(self):
        path = f"/api/v2/authorization/subjects/{uid(5)}/divisions/{APAC}/roles/{R1}"
        self.assertEqual(self.call("POST", path), (204, None))
        self.assertEqual(self.call("POST", path + "?subjectType=PC_USER"), (204, None))  # held
        self.assertEqual(self.grants(uid(5)), {(EMP, HOME), (R1, APAC)})
        self.assertEqual(self.call("DELETE", path), (204, None))
        self.assertEqual(self.grants(uid(5)), {(EMP, HOME)})
        self.assertStatus(404, "DELETE", path, code="not.found")  # not held (decision)
        star = f"/api/v2/authorization/subjects/{uid(5)}/divisions/*/roles/{R3}"
        self.assertEqual(self.call("POST", star)[0], 204)
        self.assertIn((R3, "*"), self.grants(uid(5)))
        self.assertEqual(self.call("POST", f"/api/v2/authorization/subjects/{G2}/divisions/{HOME}"
                                           f"/roles/{R1}?subjectType=PC_GROUP")[0], 204)
        self.assertEqual(self.call("DELETE", f"/api/v2/authorization/subjects/{G2}/divisions/"
                                             f"{HOME}/roles/{R1}")[0], 204)
        # employee in the home division: answered as done, kept
        emp = f"/api/v2/authorization/subjects/{uid(5)}/divisions/{HOME}/roles/{EMP}"
        self.assertEqual(self.call("DELETE", emp)[0], 204)
        self.assertIn((EMP, HOME), self.grants(uid(5)))
        before = self.sim.state()
        for bad in (f"/api/v2/authorization/subjects/{NOWHERE}/divisions/{HOME}/roles/{R1}",
                    f"/api/v2/authorization/subjects/{uid(5)}/divisions/{NOWHERE}/roles/{R1}",
                    f"/api/v2/authorization/subjects/{uid(5)}/divisions/{HOME}/roles/{NOWHERE}",
                    f"/api/v2/authorization/subjects/{G1}/divisions/{HOME}/roles/{R1}"):
            self.assertStatus(404, "POST", bad, code="not.found")
        self.assertStatus(400, "POST", path + "?subjectType=nobody", code="bad.request")
        self.assertEqual(self.sim.state(), before)

    def test_role_delete_removes_every_grant(self):
        self.assertEqual(self.call("DELETE", f"/api/v2/authorization/roles/{R2}")[0], 204)
        st = self.sim.state()
        for subject in (uid(1), G2, CLIENT):
            self.assertFalse([g for g in direct_grants(st, subject) if g[0] == R2], subject)
        self.assertEqual(self.held(uid(3)), [EMP, R3, R1])
        self.assertNotIn(R2, self.held(uid(1)))


class DivisionBlindEndpoints(Base):
    """Each endpoint's decided meaning, with the grant outside the home division it costs."""

    def test_users_add_grants_in_home(self):
        st, b = self.call("PUT", f"/api/v2/authorization/roles/{R2}/users/add", [uid(1), uid(8)])
        self.assertEqual((st, b), (200, [uid(1), uid(8)]))
        # u1 held R2 in APAC only: the division-blind add copies it into the home division
        self.assertEqual(self.grants(uid(1)), {(EMP, HOME), (R1, HOME), (R1, EMEA), (R2, APAC),
                                               (R2, HOME)})
        self.assertIn((R2, HOME), self.grants(uid(8)))  # home, not the user's own division

    def test_users_remove_removes_every_division(self):
        st, b = self.call("PUT", f"/api/v2/authorization/roles/{R1}/users/remove", [uid(1), uid(3)])
        self.assertEqual((st, b), (200, [uid(1), uid(3)]))
        # the EMEA grant is lost together with the home one; the inherited R1 stays
        self.assertEqual(self.grants(uid(1)), {(EMP, HOME), (R2, APAC)})
        self.assertIn(R1, self.held(uid(1)))
        self.assertEqual(self.grants(G1), {(R3, HOME), (R1, EMEA)})
        self.call("PUT", f"/api/v2/authorization/roles/{R3}/users/remove", [uid(2)])
        self.assertEqual(self.grants(uid(2)), {(EMP, HOME)})  # the "*" grant went too
        self.call("PUT", f"/api/v2/authorization/roles/{EMP}/users/remove", [uid(2)])
        self.assertEqual(self.grants(uid(2)), {(EMP, HOME)})  # never employee

    def test_put_user_roles(self):
        # R1 leaves the home set: its EMEA grant goes too. R2 (held in APAC only) was not in
        # the set and keeps its grant; R3 comes in at home.
        st, a = self.call("PUT", f"/api/v2/users/{uid(1)}/roles", [R3])
        self.assertEqual(st, 200)
        self.assertEqual(self.grants(uid(1)), {(EMP, HOME), (R3, HOME), (R2, APAC)})
        # the reply lists what the user holds anywhere, inherited R1 (from G1) included
        self.assertEqual([r["id"] for r in a["roles"]], [EMP, R3, R2, R1])

    def test_put_user_roles_staying_role_keeps_other_divisions(self):
        st, _ = self.call("PUT", f"/api/v2/users/{uid(1)}/roles", [R1, R2])
        self.assertEqual(st, 200)
        self.assertEqual(self.grants(uid(1)), {(EMP, HOME), (R1, HOME), (R1, EMEA), (R2, HOME),
                                               (R2, APAC)})
        # and a role named again after it left comes back at home only
        self.call("PUT", f"/api/v2/users/{uid(1)}/roles", [R2])
        self.call("PUT", f"/api/v2/users/{uid(1)}/roles", [R1, R2])
        self.assertEqual(self.grants(uid(1)), {(EMP, HOME), (R1, HOME), (R2, HOME), (R2, APAC)})
        before = self.sim.state()
        self.assertStatus(404, "PUT", f"/api/v2/users/{uid(1)}/roles", [R3, NOWHERE],
                          code="not.found")
        self.assertEqual(self.sim.state(), before)

    def test_delete_user_roles(self):
        self.assertEqual(self.call("DELETE", f"/api/v2/users/{uid(1)}/roles")[0], 204)
        self.assertEqual(self.grants(uid(1)), {(EMP, HOME)})  # EMEA and APAC grants lost
        self.assertEqual(self.held(uid(1)), [EMP, R3, R1])  # what G1 gives stays

    def test_expand_lists_every_division_without_divisions(self):
        st, p = self.call("GET", "/api/v2/users?pageSize=2&expand=authorization")
        u1, u2 = p["entities"]
        self.assertEqual(u1["authorization"]["roles"],
                         [{"id": EMP, "name": "Employee"}, {"id": R1, "name": "Queue Agent"},
                          {"id": R2, "name": "Supervisor"}, {"id": R3, "name": "Reporting"}])
        self.assertEqual([r["id"] for r in u2["authorization"]["roles"]], [EMP, R3])


class OffsetCap(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        st = make_state()
        st["users"] += [{"id": f"b0000000-0000-4000-8000-{i:012d}", "name": f"Idle {i}",
                         "email": f"idle{i}@example.com", "state": "inactive"}
                        for i in range(1, 41)]
        cls.state = st
        cls.default = Sim("genesys", state=st).start()
        cls.small = Sim("genesys", state=st, offset_cap=20).start()
        cls.off = Sim("genesys", state=st, offset_cap=0).start()

    @classmethod
    def tearDownClass(cls):
        for s in (cls.default, cls.small, cls.off):
            s.__exit__(None, None, None)

    def status(self, sim, query):
        st, _, data = sim.request("GET", "/api/v2/users?" + query)
        return st, json.loads(data)

    def test_default_cap_is_ten_thousand(self):
        for state in ("inactive", "any", "deleted"):
            st, _ = self.status(self.default, f"state={state}&pageSize=500&pageNumber=20")
            self.assertEqual(st, 200, state)
            st, b = self.status(self.default, f"state={state}&pageSize=500&pageNumber=21")
            self.assertEqual((st, b["code"]), (400, "bad.request"), state)
            self.assertIn("/api/v2/users/query", b["message"])
        for q in ("pageSize=500&pageNumber=21", "state=active&pageSize=500&pageNumber=400"):
            self.assertEqual(self.status(self.default, q)[0], 200, q)

    def test_small_cap_and_off(self):
        st, p = self.status(self.small, "state=inactive&pageSize=10&pageNumber=2")
        self.assertEqual((st, len(p["entities"])), (200, 10))
        self.assertEqual(p["total"], 41)  # the listing still says how many there are
        self.assertEqual(self.status(self.small, "state=inactive&pageSize=10&pageNumber=3")[0], 400)
        self.assertEqual(self.status(self.small, "state=any&pageSize=21")[0], 400)
        self.assertEqual(self.status(self.small, "state=active&pageSize=10&pageNumber=3")[0], 200)
        st, p = self.status(self.off, "state=inactive&pageSize=10&pageNumber=5")
        self.assertEqual((st, len(p["entities"])), (200, 1))


class CursorListing(Base):
    def page(self, uri):
        st, p = self.call("GET", uri)
        self.assertEqual(st, 200, p)
        return p

    def walk(self, first):
        ids, uri, pages = [], first, 0
        while uri:
            p = self.page(uri)
            pages += 1
            self.assertEqual(p["results"], len(p["entities"]))
            ids += [u["id"] for u in p["entities"]]
            self.assertEqual("cursor" in p, "nextUri" in p)
            uri = p.get("nextUri")
        return ids, pages

    def test_complete_in_id_order(self):
        ids, pages = self.walk("/api/v2/users/query?pageSize=2")
        active = sorted(u["id"] for u in make_state()["users"] if u["state"] == "active")
        self.assertEqual(ids, active)
        self.assertEqual(pages, 3)
        ids, _ = self.walk("/api/v2/users/query?pageSize=3&state=any")
        self.assertEqual(ids, sorted(u["id"] for u in make_state()["users"]))
        ids, _ = self.walk("/api/v2/users/query?pageSize=3&state=any&sortOrder=DESC")
        self.assertEqual(ids, sorted((u["id"] for u in make_state()["users"]), reverse=True))
        ids, _ = self.walk("/api/v2/users/query?state=inactive")
        self.assertEqual(ids, [uid(6)])

    def test_shape(self):
        p = self.page("/api/v2/users/query?pageSize=3&expand=authorization&state=any")
        self.assertEqual(sorted(p), ["cursor", "entities", "nextUri", "results", "selfUri"])
        self.assertEqual(p["results"], 3)
        self.assertEqual([r["id"] for r in p["entities"][0]["authorization"]["roles"]],
                         [EMP, R1, R2, R3])
        q = urllib.parse.parse_qs(urllib.parse.urlparse(p["nextUri"]).query)
        self.assertEqual(q["cursor"], [p["cursor"]])
        self.assertEqual((q["pageSize"], q["state"], q["expand"]),
                         (["3"], ["any"], ["authorization"]))
        self.assertTrue(p["selfUri"].startswith("/api/v2/users/query?pageSize=3"))
        self.assertNotIn("cursor=", p["selfUri"])
        p = self.page(p["nextUri"])
        last = self.page(p["nextUri"])  # 8 users: 3, 3, then the last 2
        self.assertEqual(last["results"], 2)
        self.assertNotIn("cursor", last)
        self.assertNotIn("nextUri", last)
        self.assertIn("cursor=", last["selfUri"])
        # an exactly full last page has no cursor either
        p = self.page("/api/v2/users/query?pageSize=8&state=any")
        self.assertEqual(p["results"], 8)
        self.assertNotIn("cursor", p)

    def test_bad_requests(self):
        for q in ("pageSize=501", "pageSize=0", "pageSize=x", "cursor=nonsense", "cursor=",
                  "state=sleeping", "sortOrder=sideways"):
            st, b = self.call("GET", "/api/v2/users/query?" + q)
            self.assertEqual((st, b["code"]), (400, "bad.request"), q)
        p = self.page("/api/v2/users/query?pageSize=2")
        # a cursor made for one order is refused by the other
        st, _ = self.call("GET", "/api/v2/users/query?sortOrder=DESC&cursor=" + p["cursor"])
        self.assertEqual(st, 400)
        self.assertEqual(self.call("GET", "/api/v2/users/query?pageSize=500")[0], 200)

    def test_stable_under_concurrent_writes(self):
        p = self.page("/api/v2/users/query?pageSize=3&state=any")
        seen = [u["id"] for u in p["entities"]]
        # between pages: a grant changes; users already listed go (the cursor's own user
        # among them) and one not yet listed goes; two come, one sorting before the cursor and
        # one after it
        self.call("PUT", f"/api/v2/users/{uid(5)}/roles", [R3])
        gone = {seen[0], seen[-1], uid(7)}
        st = self.sim.state()
        st["users"] = [u for u in st["users"] if u["id"] not in gone]
        for g in st["groups"]:
            g["members"] = [m for m in g["members"] if m not in gone]
        st["users"].append({"id": "00000000-0000-4000-8000-000000000001", "name": "Early",
                            "email": "early@example.com"})
        st["users"].append({"id": "ff000000-0000-4000-8000-000000000001", "name": "Late",
                            "email": "late@example.com"})
        self.sim.put_state(st)
        uri = p["nextUri"]
        while uri:
            p = self.page(uri)
            seen += [u["id"] for u in p["entities"]]
            if any(u["id"] == uid(5) for u in p["entities"]):
                u5 = next(u for u in p["entities"] if u["id"] == uid(5))
            uri = p.get("nextUri")
        self.assertEqual(len(seen), len(set(seen)), "no user twice")
        self.assertEqual(seen, sorted(seen))
        self.assertNotIn(uid(7), seen)
        self.assertIn("ff000000-0000-4000-8000-000000000001", seen)
        self.assertNotIn("00000000-0000-4000-8000-000000000001", seen)
        every = {u["id"] for u in make_state()["users"]} - {uid(7)}
        self.assertTrue(every <= set(seen), "everybody listed before or still there is listed")
        self.assertEqual(u5["id"], uid(5))

    def test_pages_reused_until_a_change(self):
        q = "/api/v2/users/query?pageSize=4&expand=authorization"
        a = self.sim.request("GET", q)[2]
        self.assertEqual(self.sim.request("GET", q)[2], a)
        self.call("PUT", f"/api/v2/users/{uid(1)}/roles", [])
        b = self.sim.request("GET", q)[2]
        self.assertNotEqual(a, b)


class Lag(unittest.TestCase):
    LAG = 1.5

    def test_new_role_invisible_then_visible(self):
        with Sim("genesys", state=make_state(), lag=f"{int(self.LAG * 1000)}ms") as sim:
            def call(method, path, body=None):
                st, _, data = sim.request(method, path, body)
                return st, (json.loads(data) if data.strip() else None)

            t0 = time.monotonic()
            st, r = call("POST", "/api/v2/authorization/roles", {"name": "Brand New"})
            self.assertEqual(st, 200)
            rid = r["id"]
            lagging = [
                ("GET", f"/api/v2/authorization/roles/{rid}", None),
                ("PUT", f"/api/v2/authorization/roles/{rid}/users/add", [uid(4)]),
                ("PUT", f"/api/v2/authorization/roles/{rid}/users/remove", [uid(4)]),
                ("PUT", f"/api/v2/users/{uid(4)}/roles", [rid]),
                ("POST", f"/api/v2/authorization/roles/{rid}",
                 {"subjectIds": [uid(4)], "divisionIds": [HOME]}),
                ("POST", f"/api/v2/authorization/subjects/{uid(4)}/bulkadd",
                 {"grants": [{"roleId": rid, "divisionId": HOME}]}),
                ("POST", f"/api/v2/authorization/subjects/{uid(4)}/divisions/{HOME}/roles/{rid}",
                 None),
                ("GET", f"/api/v2/authorization/roles/{rid}/subjectgrants", None),
            ]
            for method, path, body in lagging:
                st, b = call(method, path, body)
                self.assertEqual((st, b["code"]), (404, "not.found"), f"{method} {path}")
            st, p = call("GET", "/api/v2/authorization/roles?pageSize=100")
            self.assertNotIn(rid, [x["id"] for x in p["entities"]])
            self.assertEqual(p["total"], 5)
            st, p = call("GET", "/api/v2/authorization/roles?name=brand")
            self.assertEqual(p["entities"], [])
            # the name is taken all the same: the trap of trusting a stale listing
            st, b = call("POST", "/api/v2/authorization/roles", {"name": "brand new"})
            self.assertEqual((st, b["code"]), (409, "general.conflict"))
            self.assertLess(time.monotonic() - t0, self.LAG, "the checks outran the lag")
            time.sleep(max(0.0, self.LAG - (time.monotonic() - t0)) + 0.2)
            st, p = call("GET", "/api/v2/authorization/roles?pageSize=100")
            self.assertIn(rid, [x["id"] for x in p["entities"]])
            self.assertEqual(call("GET", f"/api/v2/authorization/roles/{rid}")[0], 200)
            self.assertEqual(call("POST", f"/api/v2/authorization/subjects/{uid(4)}/bulkadd",
                                  {"grants": [{"roleId": rid, "divisionId": EMEA}]})[0], 204)
            self.assertEqual(call("PUT", f"/api/v2/authorization/roles/{rid}/users/add",
                                  [uid(5)])[0], 200)
            st, p = call("GET", f"/api/v2/authorization/roles/{rid}/subjectgrants")
            self.assertEqual([e["id"] for e in p["entities"]], [uid(4), uid(5)])

    def test_no_lag_by_default(self):
        with Sim("genesys") as sim:
            st, _, data = sim.request("POST", "/api/v2/authorization/roles", {"name": "At once"})
            rid = json.loads(data)["id"]
            self.assertEqual(sim.request("GET", f"/api/v2/authorization/roles/{rid}")[0], 200)


class OrgSpecificReferences(Base):
    POLICY = {"domain": "routing", "entityName": "queue", "actionSet": ["view", "join"],
              "allowConditions": True, "policyName": "queue scoped",
              "namedResources": ["5e000000-0000-4000-8000-000000000001"],
              "resourceConditionNode": {
                  "conjunction": "AND",
                  "terms": [{"variableName": "Conversation.queues", "operator": "EQ",
                             "operands": [{"type": "QUEUE",
                                           "queue": {"id": "5e000000-0000-4000-8000-000000000002"}}]},
                            {"variableName": "Conversation.user", "operator": "IN",
                             "operands": [{"type": "USER", "user": {"id": uid(1)}},
                                          {"type": "SCALAR", "value": "Zoë/ü \"q\""}]}]}}

    def raw_policies(self, data):
        text = data.decode("utf-8")
        start = text.index('"permissionPolicies":') + len('"permissionPolicies":')
        depth = 0
        for i in range(start, len(text)):
            depth += {"[": 1, "]": -1}.get(text[i], 0)
            if depth == 0:
                return text[start:i + 1]
        self.fail("no permissionPolicies array")

    def test_round_trip_byte_for_byte(self):
        want = json.dumps([self.POLICY], separators=(",", ":"), ensure_ascii=False)
        st, _, data = self.sim.request("POST", "/api/v2/authorization/roles",
                                       {"name": "Scoped", "permissionPolicies": [self.POLICY]})
        self.assertEqual(st, 200)
        self.assertEqual(self.raw_policies(data), want)
        rid = json.loads(data)["id"]
        st, _, data = self.sim.request("GET", f"/api/v2/authorization/roles/{rid}")
        self.assertEqual(self.raw_policies(data), want)
        other = copy.deepcopy(self.POLICY)
        other["resourceConditionNode"]["terms"][0]["operands"].append(
            {"type": "QUEUE", "queue": {"id": "5e000000-0000-4000-8000-000000000003"}})
        want2 = json.dumps([other, self.POLICY], separators=(",", ":"), ensure_ascii=False)
        st, _, data = self.sim.request("PUT", f"/api/v2/authorization/roles/{rid}",
                                       {"name": "Scoped", "permissionPolicies": [other, self.POLICY]})
        self.assertEqual(self.raw_policies(data), want2)
        st, _, data = self.sim.request("GET", f"/api/v2/authorization/roles?id={rid}")
        self.assertEqual(self.raw_policies(data), want2)
        saved = next(r for r in self.sim.state()["roles"] if r["id"] == rid)
        self.assertEqual(saved["permissionPolicies"], [other, self.POLICY])


class StateFormat(Base):
    def test_v2_dump(self):
        st = self.sim.state()
        self.assertEqual([(d["id"], d["home"]) for d in st["divisions"]],
                         [(HOME, True), (EMEA, False), (APAC, False)])
        u1 = st["users"][0]
        self.assertEqual(u1["roles"], [EMP, R1])
        self.assertEqual(u1["grants"], [{"role": R1, "division": EMEA},
                                        {"role": R2, "division": APAC}])
        self.assertNotIn("grants", st["users"][3], "no grants key without grants elsewhere")
        self.assertEqual(st["groups"], make_state()["groups"])
        self.assertEqual(st["oauth_clients"], make_state()["oauth_clients"])
        self.sim.put_state(st)
        self.assertEqual(self.sim.state(), st)

    def test_v1_to_v2_round_trip(self):
        v1 = make_state()
        for u in v1["users"]:
            u.pop("grants", None)
        del v1["groups"], v1["oauth_clients"]
        v1["divisions"] = [{"id": HOME, "name": "Home"}, {"id": EMEA, "name": "EMEA"}]
        self.sim.put_state(v1)
        v2 = self.sim.state()
        self.assertNotIn("groups", v2)
        self.assertNotIn("oauth_clients", v2)
        self.assertEqual(v2["users"], v1["users"], "every grant in the home division")
        self.assertEqual(v2["divisions"], [{"id": HOME, "name": "Home", "home": True},
                                           {"id": EMEA, "name": "EMEA", "home": False}])
        st, s = self.call("GET", f"/api/v2/authorization/subjects/{uid(1)}")
        self.assertEqual({g["division"]["id"] for g in s["grants"]}, {HOME})
        self.sim.put_state(v2)
        self.assertEqual(self.sim.state(), v2)

    def test_grants_merge_and_employee(self):
        st = make_state()
        st["users"][3]["roles"] = [R1]  # no employee: it is added, first
        st["users"][3]["grants"] = [{"role": R1, "division": HOME}, {"role": R2, "division": EMEA},
                                    {"role": R2, "division": EMEA}]
        self.sim.put_state(st)
        u4 = self.sim.state()["users"][3]
        self.assertEqual(u4["roles"], [EMP, R1])
        self.assertEqual(u4["grants"], [{"role": R2, "division": EMEA}])

    def test_bad_states_refused(self):
        before = self.sim.state()

        def bad(mutate):
            st = make_state()
            mutate(st)
            status, _, data = self.sim.raw_request("PUT", "/_sim/state", st)
            self.assertEqual(status, 400, data)

        bad(lambda s: s["users"][0]["grants"].append({"role": R1, "division": NOWHERE}))
        bad(lambda s: s["users"][0]["grants"].append({"role": NOWHERE, "division": EMEA}))
        bad(lambda s: s["users"][0]["grants"].append({"role": R1}))
        bad(lambda s: s["users"][0].update(division=NOWHERE))
        bad(lambda s: s["users"][0].update(division="*"))
        bad(lambda s: s["groups"][0]["members"].append(NOWHERE))
        bad(lambda s: s["groups"][0].update(id=uid(2)))  # a user's id
        bad(lambda s: s["oauth_clients"][0].update(id=G1))  # a group's id
        bad(lambda s: s["groups"][1].update(name=""))
        bad(lambda s: s["groups"].append(s["groups"][0]))
        bad(lambda s: s["divisions"].append({"id": "*", "name": "Star"}))
        bad(lambda s: s["divisions"].append({"id": EMEA, "name": "Again"}))
        bad(lambda s: s.update(groups={"id": G1}))
        self.assertEqual(self.sim.state(), before)

    def test_home_chosen_when_unmarked(self):
        st = make_state()
        st["divisions"] = [{"id": EMEA, "name": "EMEA"}, {"id": HOME, "name": "Home"},
                           {"id": APAC, "name": "APAC"}]
        self.sim.put_state(st)
        d = self.call("GET", "/api/v2/authorization/divisions/home")[1]
        self.assertEqual(d["id"], EMEA, "the first division when none is marked home")
        self.assertEqual([x["home"] for x in self.sim.state()["divisions"]], [True, False, False])


class ControlRoutes(Base):
    def test_stats_and_faults_on_new_routes(self):
        self.sim.reset_stats()
        self.call("GET", f"/api/v2/authorization/roles/{R1}/subjectgrants")
        self.call("GET", f"/api/v2/authorization/subjects/{uid(1)}")
        self.call("POST", f"/api/v2/authorization/subjects/{uid(4)}/divisions/{EMEA}/roles/{R1}")
        self.call("GET", "/api/v2/users/query")
        self.call("GET", "/api/v2/groups")
        self.call("GET", "/api/v2/authorization/divisions")
        by_route = self.sim.stats()["by_route"]
        for key in ("GET /api/v2/authorization/roles/{id}/subjectgrants",
                    "GET /api/v2/authorization/subjects/{id}",
                    "POST /api/v2/authorization/subjects/{id}/divisions/{divisionId}/roles/{roleId}",
                    "GET /api/v2/users/query", "GET /api/v2/groups",
                    "GET /api/v2/authorization/divisions"):
            self.assertEqual(by_route.get(key), 1, key)
        self.sim.add_faults([{"method": "POST", "path": "/api/v2/authorization/subjects/*/bulkadd",
                              "action": "status", "status": 503, "times": 1}])
        body = {"grants": [{"roleId": R3, "divisionId": APAC}]}
        path = f"/api/v2/authorization/subjects/{uid(4)}/bulkadd"
        self.assertEqual(self.call("POST", path, body)[0], 503)
        self.assertNotIn((R3, APAC), self.grants(uid(4)))
        self.assertEqual(self.call("POST", path, body)[0], 204)
        self.assertIn((R3, APAC), self.grants(uid(4)))
        # a dropped division-aware write keeps nothing
        self.sim.add_faults([{"path": "/api/v2/authorization/subjects/*/bulkreplace",
                              "action": "drop_write"}])
        self.assertEqual(self.call("POST", f"/api/v2/authorization/subjects/{uid(1)}/bulkreplace",
                                   {"grants": []})[0], 200)
        self.assertEqual(self.grants(uid(1)), direct_grants(make_state(), uid(1)))

    def test_concurrent_readers_and_writers(self):
        errors = []

        def reader():
            for _ in range(30):
                st, _, data = self.sim.request("GET", f"/api/v2/authorization/roles/{R1}/subjectgrants")
                if st != 200:
                    errors.append(st)
                json.loads(data)

        def writer():
            for i in range(30):
                path = f"/api/v2/authorization/subjects/{uid(4)}/divisions/{EMEA}/roles/{R1}"
                st, _, _ = self.sim.request("POST" if i % 2 == 0 else "DELETE", path)
                if st != 204:
                    errors.append(st)

        threads = [threading.Thread(target=f) for f in (reader, reader, writer)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])


class IdentityReadOnlyRegion(unittest.TestCase):
    TENANT = "7e000000-0000-4000-8000-000000000001"

    def test_writes_refused_reads_served(self):
        state = {"api": "identity", "tenant_id": self.TENANT, "roles": [], "users": [
            {"Id": "a1000000-0000-4000-8000-000000000001", "Name": "Ada", "Email": "ada@example.com",
             "ContactEmail": "ada@example.com", "RoleIds": []}]}
        with Sim("identity", state=state, read_only_region=True) as sim:
            base = sim.api_base
            before = sim.state()
            user = state["users"][0]["Id"]
            writes = [("POST", base + "/Roles", {"Name": "New"}),
                      ("PUT", f"{base}/Roles/{user}", {"Name": "x"}),
                      ("DELETE", f"{base}/Roles/{user}", None),
                      ("PUT", f"{base}/Users/{user}/Roles", [{"Id": user}]),
                      ("PATCH", f"{base}/users/{user}", {}),
                      ("POST", f"{base}/Users", {}),
                      ("DELETE", f"{base}/Users/{user}", None)]
            for method, path, body in writes:
                st, hdrs, data = sim.request(method, path, body)
                b = json.loads(data)
                self.assertEqual(st, 405, f"{method} {path}")
                self.assertEqual(b["OperationId"], hdrs["operation-id"])
                self.assertIn("Method not allowed at this base URL", b["Error"])
                self.assertIn("global base URL", b["Resolution"])
                self.assertIn("Reason", b)
            for path in (base + "/Roles", base + "/Users", f"{base}/Users/{user}/Roles"):
                self.assertEqual(sim.request("GET", path)[0], 200, path)
            self.assertEqual(sim.state(), before)
        with Sim("identity", state=state) as sim:
            st, _, _ = sim.request("POST", sim.api_base + "/Roles", {"Name": "New"})
            self.assertEqual(st, 201, "the global host takes writes")


if __name__ == "__main__":
    unittest.main(verbosity=2)
