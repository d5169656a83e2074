"""Conformance of tenantsim's Genesys Cloud API v2 surface (spec/simulator.md section 3,
api/genesys.md): token endpoint, bearer checks, common headers, ErrorBody, listing envelopes,
query parameter forms, every AuthorizationApi operation, users and user role grants."""

import base64
import copy
import json
import re
import time
import unittest
import urllib.parse

from simlib import Sim

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
HOME = "11111111-0000-4000-8000-000000000001"
EMP, ADM, R1, R2, R3 = ("e0000000-0000-4000-8000-000000000001",
                        "e0000000-0000-4000-8000-000000000002",
                        "c0000000-0000-4000-8000-000000000001",
                        "c0000000-0000-4000-8000-000000000002",
                        "c0000000-0000-4000-8000-000000000003")
POL_DIR = {"domain": "directory", "entityName": "user", "actionSet": ["view"],
           "allowConditions": False, "policyName": "p", "namedResources": []}
POL_Q = {"domain": "quality", "entityName": "evaluation", "actionSet": ["view"],
         "allowConditions": False, "policyName": "q", "namedResources": []}


def user_id(i):
    return f"a0000000-0000-4000-8000-{i:012d}"


def make_state():
    roles = [
        {"id": EMP, "name": "Employee", "description": "every user", "defaultRoleId": "employee",
         "default": True, "base": False, "permissions": [], "permissionPolicies": [POL_DIR]},
        {"id": ADM, "name": "Master Admin", "description": "all", "defaultRoleId": "admin",
         "default": True, "base": False, "permissions": ["admin"], "permissionPolicies": []},
        {"id": R1, "name": "Queue Agent", "description": "agents", "default": False,
         "base": False, "permissions": ["group_creation"],
         "permissionPolicies": [{"domain": "routing", "entityName": "queue",
                                 "actionSet": ["join"], "allowConditions": False,
                                 "policyName": "r", "namedResources": []}]},
        {"id": R2, "name": "Supervisor Plus", "description": "", "default": False, "base": False,
         "permissions": [], "permissionPolicies": []},
        {"id": R3, "name": "Reporting", "description": "reports", "default": False,
         "base": False, "permissions": [], "permissionPolicies": []},
    ]
    users = []
    for i in range(1, 8):
        state = "active" if i <= 5 else ("inactive" if i == 6 else "deleted")
        rl = [EMP] + ([R1] if i % 2 else []) + ([R2] if i == 1 else [])
        users.append({"id": user_id(i), "name": f"User {i}", "email": f"u{i}@example.com",
                      "username": f"u{i}@example.com", "state": state, "division": HOME,
                      "roles": rl})
    return {"api": "genesys", "org": {"id": "0a000000-0000-4000-8000-000000000001",
                                      "name": "Test Org"},
            "unlicensed_domains": ["quality"],
            "divisions": [{"id": HOME, "name": "Home", "home": True}],
            "settings": {"backfillEnabled": False, "authorizationGrantDivisionAware": False},
            "roles": roles, "users": users}


class GenesysBase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = Sim("genesys", state=make_state()).start()

    @classmethod
    def tearDownClass(cls):
        cls.sim.__exit__(None, None, None)

    def setUp(self):
        self.sim.put_state(make_state())

    def call(self, method, path, body=None, token=True, headers=None):
        status, hdrs, data = self.sim.request(method, path, body, headers, token)
        parsed = json.loads(data) if data.strip() else None
        return status, hdrs, parsed

    def assertError(self, status, hdrs, body, want_status, code):
        self.assertEqual(status, want_status, body)
        self.assertEqual(body["code"], code)
        self.assertEqual(body["status"], want_status)
        self.assertEqual(body["contextId"], hdrs["inin-correlation-id"])
        self.assertEqual(body["details"], [])
        self.assertEqual(body["errors"], [])
        self.assertIsInstance(body["message"], str)

    def user_roles(self, uid):
        for u in self.sim.state()["users"]:
            if u["id"] == uid:
                return u["roles"]
        return None


class TokenAndHeaders(GenesysBase):
    def basic(self, cid, secret):
        return "Basic " + base64.b64encode(f"{cid}:{secret}".encode()).decode()

    def test_token_ok(self):
        cid, secret = self.sim.clients[0]
        status, hdrs, data = self.sim.raw_request(
            "POST", "/oauth/token", "grant_type=client_credentials",
            {"Authorization": self.basic(cid, secret),
             "Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 200)
        body = json.loads(data)
        self.assertEqual(body["token_type"], "bearer")
        self.assertEqual(body["expires_in"], 86399)
        self.assertGreater(len(body["access_token"]), 20)
        self.assertEqual(hdrs["content-type"], "application/json")

    def test_token_bad_credentials(self):
        status, _, data = self.sim.raw_request(
            "POST", "/oauth/token", "grant_type=client_credentials",
            {"Authorization": self.basic("sim-client", "wrong")})
        self.assertEqual(status, 401)
        body = json.loads(data)
        self.assertEqual(body["error"], "invalid_client")
        self.assertIn("description", body)
        self.assertIn("error_description", body)
        status, _, data = self.sim.raw_request("POST", "/oauth/token",
                                               "grant_type=client_credentials")
        self.assertEqual(status, 401)

    def test_token_bad_grant(self):
        cid, secret = self.sim.clients[0]
        status, _, data = self.sim.raw_request("POST", "/oauth/token", "grant_type=password",
                                               {"Authorization": self.basic(cid, secret)})
        self.assertEqual(status, 400)
        self.assertEqual(json.loads(data)["error"], "unsupported_grant_type")

    def test_missing_and_bad_bearer(self):
        st, h, b = self.call("GET", "/api/v2/authorization/roles", token=False)
        self.assertError(st, h, b, 401, "authentication.required")
        st, h, b = self.call("GET", "/api/v2/authorization/roles", token="nope")
        self.assertError(st, h, b, 401, "bad.credentials")

    def test_expired_token(self):
        with Sim("genesys", extra_args=["--token-ttl", "1s"]) as sim:
            tok = sim.fetch_token()
            self.assertEqual(sim.request("GET", "/api/v2/authorization/roles", token=tok)[0], 200)
            time.sleep(1.3)
            st, h, data = sim.request("GET", "/api/v2/authorization/roles", token=tok)
            self.assertEqual(st, 401)
            self.assertEqual(json.loads(data)["code"], "bad.credentials")

    def test_common_headers(self):
        for path in ("/api/v2/authorization/roles", "/api/v2/nothing-here"):
            st, h, b = self.call("GET", path)
            self.assertEqual(h["content-type"], "application/json")
            self.assertRegex(h["inin-correlation-id"], GUID)
            for k in ("inin-ratelimit-allowed", "inin-ratelimit-count", "inin-ratelimit-reset"):
                self.assertTrue(h[k].isdigit(), k)
            self.assertGreaterEqual(int(h["inin-ratelimit-allowed"]), 10000)
        self.assertError(st, h, b, 404, "not.found")
        # Two requests get different correlation ids.
        a = self.call("GET", "/api/v2/authorization/roles")[1]["inin-correlation-id"]
        b2 = self.call("GET", "/api/v2/authorization/roles")[1]["inin-correlation-id"]
        self.assertNotEqual(a, b2)


class Listings(GenesysBase):
    def test_envelope_pages(self):
        st, _, p1 = self.call("GET", "/api/v2/authorization/roles?pageSize=2")
        self.assertEqual(st, 200)
        self.assertEqual((p1["pageSize"], p1["pageNumber"], p1["total"], p1["pageCount"]),
                         (2, 1, 5, 3))
        self.assertEqual([r["id"] for r in p1["entities"]], [EMP, ADM])
        self.assertNotIn("previousUri", p1)
        self.assertTrue(p1["nextUri"].startswith("/api/v2/authorization/roles?"))
        q = urllib.parse.parse_qs(urllib.parse.urlparse(p1["nextUri"]).query)
        self.assertEqual((q["pageSize"], q["pageNumber"]), (["2"], ["2"]))
        for k in ("firstUri", "selfUri", "lastUri"):
            self.assertIn(k, p1)
        self.assertIn("pageNumber=3", p1["lastUri"])
        # Following nextUri visits every role exactly once.
        seen, uri = [], "/api/v2/authorization/roles?pageSize=2"
        while uri:
            st, _, page = self.call("GET", uri)
            seen += [r["id"] for r in page["entities"]]
            uri = page.get("nextUri")
        self.assertEqual(seen, [EMP, ADM, R1, R2, R3])
        st, _, p3 = self.call("GET", "/api/v2/authorization/roles?pageSize=2&pageNumber=3")
        self.assertEqual(len(p3["entities"]), 1)
        self.assertNotIn("nextUri", p3)
        self.assertIn("previousUri", p3)
        st, _, p9 = self.call("GET", "/api/v2/authorization/roles?pageSize=2&pageNumber=9")
        self.assertEqual(st, 200)
        self.assertEqual(p9["entities"], [])
        self.assertNotIn("nextUri", p9)

    def test_defaults_and_bad_paging(self):
        st, _, p = self.call("GET", "/api/v2/authorization/roles")
        self.assertEqual((p["pageSize"], p["pageNumber"]), (25, 1))
        st, h, b = self.call("GET", "/api/v2/authorization/roles?pageSize=501")
        self.assertError(st, h, b, 400, "bad.request")
        st, _, p = self.call("GET", "/api/v2/authorization/roles?pageSize=500")
        self.assertEqual(st, 200)
        for bad in ("pageSize=0", "pageSize=x", "pageNumber=0", "pageNumber=-1"):
            st, h, b = self.call("GET", "/api/v2/users?" + bad)
            self.assertError(st, h, b, 400, "bad.request")

    def test_max_page_size_option(self):
        with Sim("genesys", extra_args=["--max-page-size", "3"]) as sim:
            self.assertEqual(sim.request("GET", "/api/v2/users?pageSize=3")[0], 200)
            self.assertEqual(sim.request("GET", "/api/v2/users?pageSize=4")[0], 400)

    def test_array_params_both_forms(self):
        for q in (f"id={R1},{R3}", f"id={R1}&id={R3}", f"id%5B%5D={R1}&id={R3}",
                  f"id={urllib.parse.quote(R1 + ',' + R3)}"):
            st, _, p = self.call("GET", "/api/v2/authorization/roles?" + q)
            self.assertEqual([r["id"] for r in p["entities"]], [R1, R3], q)
            self.assertEqual(p["total"], 2)
        st, _, p = self.call("GET", "/api/v2/authorization/roles?defaultRoleId=employee,admin")
        self.assertEqual([r["id"] for r in p["entities"]], [EMP, ADM])
        st, _, p = self.call("GET", "/api/v2/authorization/roles?defaultRoleId=admin&pageSize=1")
        self.assertEqual(p["entities"][0]["defaultRoleId"], "admin")

    def test_name_filter_plus_is_space(self):
        st, _, p = self.call("GET", "/api/v2/authorization/roles?name=Supervisor+Plus")
        self.assertEqual([r["id"] for r in p["entities"]], [R2])
        st, _, p = self.call("GET", "/api/v2/authorization/roles?name=supervisor%20plus")
        self.assertEqual([r["id"] for r in p["entities"]], [R2])
        st, _, p = self.call("GET", "/api/v2/authorization/roles?name=no+such+role")
        self.assertEqual(p["entities"], [])
        self.assertEqual(p["total"], 0)

    def test_permission_filter(self):
        st, _, p = self.call("GET", "/api/v2/authorization/roles?permission=routing:queue:join")
        self.assertEqual([r["id"] for r in p["entities"]], [R1])
        st, _, p = self.call("GET", "/api/v2/authorization/roles?permission=admin")
        self.assertEqual([r["id"] for r in p["entities"]], [ADM])

    def test_role_shape_and_user_count(self):
        st, _, p = self.call("GET", f"/api/v2/authorization/roles?id={EMP},{R1}")
        emp, r1 = p["entities"]
        self.assertEqual(emp["userCount"], 7)
        self.assertEqual(r1["userCount"], 4)
        self.assertTrue(emp["default"])
        self.assertEqual(emp["defaultRoleId"], "employee")
        self.assertFalse(r1["default"])
        self.assertNotIn("defaultRoleId", r1)
        self.assertEqual(r1["selfUri"], f"/api/v2/authorization/roles/{R1}")
        for k in ("id", "name", "description", "permissions", "permissionPolicies", "base"):
            self.assertIn(k, r1)
        st, _, p = self.call("GET", "/api/v2/authorization/roles?userCount=false")
        self.assertTrue(all("userCount" not in r for r in p["entities"]))
        st, _, r = self.call("GET", f"/api/v2/authorization/roles/{R1}?userCount=false")
        self.assertNotIn("userCount", r)


class Roles(GenesysBase):
    def test_create(self):
        body = {"name": "New Role", "description": "d", "permissions": ["x"],
                "permissionPolicies": [POL_DIR, POL_Q]}
        st, _, r = self.call("POST", "/api/v2/authorization/roles", body)
        self.assertEqual(st, 200, r)
        self.assertRegex(r["id"], GUID)
        self.assertEqual(r["name"], "New Role")
        self.assertEqual(r["userCount"], 0)
        self.assertFalse(r["default"])
        # The unlicensed "quality" policy is dropped silently.
        self.assertEqual(r["permissionPolicies"], [POL_DIR])
        st, _, g = self.call("GET", f"/api/v2/authorization/roles/{r['id']}")
        self.assertEqual(g, r)

    def test_create_conflict_and_names(self):
        st, h, b = self.call("POST", "/api/v2/authorization/roles", {"name": "queue AGENT"})
        self.assertError(st, h, b, 409, "general.conflict")
        for bad in ({"name": ""}, {"name": "x" * 201}, {}, {"name": 5}, [], "str"):
            st, h, b = self.call("POST", "/api/v2/authorization/roles", bad)
            self.assertError(st, h, b, 400, "bad.request")
        st, _, r = self.call("POST", "/api/v2/authorization/roles", {"name": "é" * 200})
        self.assertEqual(st, 200)
        self.assertEqual(len(self.sim.state()["roles"]), 6)

    def test_malformed_json(self):
        for raw in ("{", "{\"name\": \"a\",}", "nul", "{\"name\":\"a\"} trailing", "", "\x00"):
            st, h, data = self.sim.request("POST", "/api/v2/authorization/roles", raw,
                                           {"Content-Type": "application/json"})
            b = json.loads(data)
            self.assertError(st, h, b, 400, "bad.request")
            st, h, data = self.sim.request("PUT", f"/api/v2/users/{user_id(1)}/roles", raw)
            self.assertEqual(st, 400)
        # Bytes that are not UTF-8, and an escaped NUL (which a C string would cut), are
        # malformed too: nothing is stored, and the listings stay valid JSON.
        for raw in (b'{"name": "\xff\xfe"}', b'{"name": "a\\u0000bcd"}'):
            st, h, data = self.sim.request("POST", "/api/v2/authorization/roles", raw,
                                           {"Content-Type": "application/json"})
            self.assertError(st, h, json.loads(data), 400, "bad.request")
        self.assertEqual(len(self.sim.state()["roles"]), 5)
        st, _, data = self.sim.request("GET", "/api/v2/authorization/roles")
        json.loads(data.decode("utf-8"))

    def test_get_unknown(self):
        st, h, b = self.call("GET", "/api/v2/authorization/roles/nope")
        self.assertError(st, h, b, 404, "not.found")

    def test_put_update_and_rename(self):
        body = {"name": "Queue Agent 2", "description": "new",
                "permissionPolicies": [POL_DIR, POL_Q], "permissions": []}
        st, _, r = self.call("PUT", f"/api/v2/authorization/roles/{R1}", body)
        self.assertEqual(st, 200, r)
        self.assertEqual((r["name"], r["description"]), ("Queue Agent 2", "new"))
        self.assertEqual(r["permissionPolicies"], [POL_DIR])
        self.assertEqual(r["userCount"], 4)
        # Old name is free again, new name is taken (case-insensitively).
        st, _, _ = self.call("POST", "/api/v2/authorization/roles", {"name": "Queue Agent"})
        self.assertEqual(st, 200)
        st, h, b = self.call("PUT", f"/api/v2/authorization/roles/{R3}",
                             {"name": "QUEUE AGENT 2"})
        self.assertError(st, h, b, 409, "general.conflict")
        st, h, b = self.call("PUT", f"/api/v2/authorization/roles/{R3}", {"description": "x"})
        self.assertError(st, h, b, 400, "bad.request")  # name is required on PUT
        st, h, b = self.call("PUT", "/api/v2/authorization/roles/nope", {"name": "z"})
        self.assertError(st, h, b, 404, "not.found")

    def test_default_roles_rules(self):
        st, h, b = self.call("PUT", f"/api/v2/authorization/roles/{EMP}", {"name": "Staff"})
        self.assertError(st, h, b, 400, "bad.request")
        st, _, r = self.call("PUT", f"/api/v2/authorization/roles/{EMP}",
                             {"name": "Employee", "permissionPolicies": []})
        self.assertEqual(st, 200)
        self.assertEqual(r["permissionPolicies"], [])
        st, h, b = self.call("DELETE", f"/api/v2/authorization/roles/{EMP}")
        self.assertError(st, h, b, 400, "bad.request")
        st, h, b = self.call("DELETE", f"/api/v2/authorization/roles/{ADM}")
        self.assertError(st, h, b, 400, "bad.request")
        names = [r["name"] for r in self.sim.state()["roles"]]
        self.assertIn("Employee", names)
        self.assertIn("Master Admin", names)

    def test_patch(self):
        st, _, r = self.call("PATCH", f"/api/v2/authorization/roles/{R3}",
                             {"roleNeedsUpdate": True})
        self.assertEqual(st, 200, r)
        self.assertTrue(r["roleNeedsUpdate"])
        self.assertEqual(r["name"], "Reporting")
        st, _, r = self.call("PATCH", f"/api/v2/authorization/roles/{R3}", {"description": "p"})
        self.assertEqual(r["description"], "p")

    def test_delete(self):
        st, h, b = self.call("DELETE", f"/api/v2/authorization/roles/{R1}")
        self.assertEqual(st, 204)
        self.assertEqual(h["content-type"], "application/json")
        st, h, b = self.call("GET", f"/api/v2/authorization/roles/{R1}")
        self.assertEqual(st, 404)
        self.assertEqual(self.user_roles(user_id(1)), [EMP, R2])
        st, h, b = self.call("DELETE", f"/api/v2/authorization/roles/{R1}")
        self.assertError(st, h, b, 404, "not.found")

    def test_ids_needing_percent_encoding(self):
        # An id is one path segment however it is spelled: %2F stays inside it (the server
        # decodes route parameters once), and selfUri carries the id encoded.
        st = make_state()
        odd_user, odd_role = "a/b c%", "r/1?#"
        st["users"][0]["id"] = odd_user
        st["roles"][2]["id"] = odd_role
        for u in st["users"]:
            u["roles"] = [odd_role if r == R1 else r for r in u["roles"]]
        self.sim.put_state(st)
        q = urllib.parse.quote
        code, _, u = self.call("GET", "/api/v2/users/" + q(odd_user, safe=""))
        self.assertEqual((code, u["id"]), (200, odd_user))
        self.assertEqual(u["selfUri"], "/api/v2/users/a%2Fb%20c%25")
        code, _, r = self.call("GET", "/api/v2/authorization/roles/" + q(odd_role, safe=""))
        self.assertEqual((code, r["id"]), (200, odd_role))
        code, _, r = self.call("PUT", "/api/v2/authorization/roles/" + q(odd_role, safe="") +
                               "/users/remove", [odd_user])
        self.assertEqual((code, r), (200, [odd_user]))
        self.assertEqual(self.user_roles(odd_user), [EMP, R2])
        code, _, _ = self.call("GET", "/api/v2/users/a/b%20c%25")
        self.assertEqual(code, 404)

    def test_users_add_remove(self):
        ids = [user_id(2), user_id(4)]
        st, _, r = self.call("PUT", f"/api/v2/authorization/roles/{R3}/users/add", ids)
        self.assertEqual((st, r), (200, ids))
        self.assertEqual(self.user_roles(user_id(2)), [EMP, R3])
        st, _, r = self.call("PUT", f"/api/v2/authorization/roles/{R3}/users/remove",
                             [user_id(2)])
        self.assertEqual((st, r), (200, [user_id(2)]))
        self.assertEqual(self.user_roles(user_id(2)), [EMP])
        # Unknown user: 404 and nothing changes.
        st, h, b = self.call("PUT", f"/api/v2/authorization/roles/{R3}/users/add",
                             [user_id(3), "nobody"])
        self.assertError(st, h, b, 404, "not.found")
        self.assertEqual(self.user_roles(user_id(3)), [EMP, R1])
        # More than 100 ids: 400.
        st, h, b = self.call("PUT", f"/api/v2/authorization/roles/{R3}/users/add",
                             [user_id(1)] * 101)
        self.assertError(st, h, b, 400, "bad.request")
        st, _, _ = self.call("PUT", f"/api/v2/authorization/roles/{R3}/users/add",
                             [user_id(1)] * 100)
        self.assertEqual(st, 200)
        st, h, b = self.call("PUT", "/api/v2/authorization/roles/nope/users/add", [user_id(1)])
        self.assertError(st, h, b, 404, "not.found")
        st, h, b = self.call("PUT", f"/api/v2/authorization/roles/{R3}/users/add", {"a": 1})
        self.assertError(st, h, b, 400, "bad.request")
        # employee is never removed.
        st, _, _ = self.call("PUT", f"/api/v2/authorization/roles/{EMP}/users/remove",
                             [user_id(5)])
        self.assertEqual(st, 200)
        self.assertEqual(self.user_roles(user_id(5)), [EMP, R1])

    def test_role_users_listing(self):
        st, _, p = self.call("GET", f"/api/v2/authorization/roles/{R1}/users?pageSize=3")
        self.assertEqual(st, 200)
        self.assertEqual((p["total"], p["pageCount"], p["pageSize"]), (4, 2, 3))
        self.assertEqual(p["entities"][0], {"id": user_id(1),
                                            "selfUri": f"/api/v2/users/{user_id(1)}"})
        st, _, p = self.call("GET", f"/api/v2/authorization/roles/{R1}/users?pageNumber=2&pageSize=3")
        self.assertEqual([u["id"] for u in p["entities"]], [user_id(7)])
        self.assertEqual(self.call("GET", "/api/v2/authorization/roles/x/users")[0], 404)

    def test_subjectgrants(self):
        st, _, p = self.call("GET", f"/api/v2/authorization/roles/{R2}/subjectgrants")
        self.assertEqual(st, 200)
        self.assertEqual(p["total"], 1)
        g = p["entities"][0]
        self.assertEqual((g["id"], g["type"]), (user_id(1), "PC_USER"))
        self.assertEqual(g["divisions"][0]["id"], HOME)

    def test_bulk_grant(self):
        st, _, _ = self.call("POST", f"/api/v2/authorization/roles/{R3}",
                             {"subjectIds": [user_id(2)], "divisionIds": [HOME]})
        self.assertEqual(st, 204)
        self.assertIn(R3, self.user_roles(user_id(2)))
        st, _, _ = self.call("POST", f"/api/v2/authorization/roles/{R3}",
                             {"subjectIds": ["ghost"], "divisionIds": [HOME]})
        self.assertEqual(st, 404)
        st, _, _ = self.call("POST", f"/api/v2/authorization/roles/{R3}", {"subjectIds": []})
        self.assertEqual(st, 400)

    def test_compare_default(self):
        st, _, d = self.call("GET", f"/api/v2/authorization/roles/{EMP}/comparedefault/{EMP}")
        self.assertEqual(st, 200, d)
        self.assertEqual(d["samePermissionPolicies"], [POL_DIR])
        self.assertEqual(d["addedPermissionPolicies"], [])
        self.assertEqual(d["removedPermissionPolicies"], [])
        self.assertEqual(d["userOrgRole"]["id"], EMP)
        self.assertEqual(d["roleFromDefault"]["defaultRoleId"], "employee")
        extra = dict(POL_DIR, entityName="group")
        st, _, d = self.call("POST", f"/api/v2/authorization/roles/{EMP}/comparedefault/employee",
                             {"name": "Employee", "permissionPolicies": [extra]})
        self.assertEqual(st, 200, d)
        self.assertEqual(d["addedPermissionPolicies"], [extra])
        self.assertEqual(d["removedPermissionPolicies"], [POL_DIR])
        st, _, _ = self.call("GET", f"/api/v2/authorization/roles/{EMP}/comparedefault/{R1}")
        self.assertEqual(st, 404)

    def test_restore_defaults(self):
        self.call("PUT", f"/api/v2/authorization/roles/{EMP}",
                  {"name": "Employee", "permissionPolicies": []})
        st, _, p = self.call("PUT", "/api/v2/authorization/roles/default", [{"id": EMP}])
        self.assertEqual(st, 200, p)
        self.assertEqual(p["entities"][0]["permissionPolicies"], [POL_DIR])
        st, _, _ = self.call("PUT", "/api/v2/authorization/roles/default", [{"id": R1}])
        self.assertEqual(st, 400)
        st, _, _ = self.call("PUT", "/api/v2/authorization/roles/default", [{"id": "zz"}])
        self.assertEqual(st, 404)
        self.call("PUT", f"/api/v2/authorization/roles/{ADM}",
                  {"name": "Master Admin", "permissions": []})
        st, _, p = self.call("POST", "/api/v2/authorization/roles/default")
        self.assertEqual(st, 200)
        self.assertEqual(sorted(r["defaultRoleId"] for r in p["entities"]), ["admin", "employee"])
        self.assertEqual(self.call("GET", f"/api/v2/authorization/roles/{ADM}")[2]["permissions"],
                         [])
        st, _, p = self.call("POST", "/api/v2/authorization/roles/default?force=true")
        self.assertEqual(self.call("GET", f"/api/v2/authorization/roles/{ADM}")[2]["permissions"],
                         ["admin"])

    def test_settings(self):
        st, _, s = self.call("GET", "/api/v2/authorization/roles/settings")
        self.assertEqual((st, s["backfillEnabled"]), (200, False))
        st, _, s = self.call("PUT", "/api/v2/authorization/roles/settings",
                             {"backfillEnabled": True})
        self.assertTrue(s["backfillEnabled"])
        self.assertTrue(self.sim.state()["settings"]["backfillEnabled"])
        self.assertEqual(self.call("PUT", "/api/v2/authorization/roles/settings",
                                   {"backfillEnabled": "yes"})[0], 400)

    def test_products_permissions_divisions(self):
        st, _, p = self.call("GET", "/api/v2/authorization/products")
        self.assertEqual(st, 200)
        self.assertTrue(p["entities"])
        st, _, p = self.call("GET", "/api/v2/authorization/permissions?pageSize=100")
        doms = [e["id"] for e in p["entities"]]
        self.assertIn("directory", doms)
        self.assertNotIn("quality", doms)  # unlicensed
        self.assertEqual(p["total"], len(doms))
        st, _, p = self.call("GET", "/api/v2/authorization/permissions"
                                    "?queryType=domain&query=routing&pageSize=100")
        self.assertEqual([e["id"] for e in p["entities"]], ["routing"])
        perm = p["entities"][0]["permissionMap"]["queue"][0]
        self.assertEqual((perm["domain"], perm["entityType"]), ("routing", "queue"))
        st, _, p = self.call("GET", "/api/v2/authorization/permissions?queryType=domain&query=quality")
        self.assertEqual(p["entities"], [])
        st, _, d = self.call("GET", "/api/v2/authorization/divisions/home")
        self.assertEqual((d["id"], d["homeDivision"]), (HOME, True))
        st, _, s = self.call("GET", f"/api/v2/authorization/subjects/{user_id(1)}")
        self.assertEqual(sorted(g["role"]["id"] for g in s["grants"]), sorted([EMP, R1, R2]))
        self.assertTrue(s["grants"][0]["grantMadeAt"].endswith("Z"))


class Users(GenesysBase):
    def test_list_states(self):
        st, _, p = self.call("GET", "/api/v2/users")
        self.assertEqual(p["total"], 5)
        self.assertTrue(all(u["state"] == "active" for u in p["entities"]))
        st, _, p = self.call("GET", "/api/v2/users?state=any&pageSize=100")
        self.assertEqual(p["total"], 7)
        st, _, p = self.call("GET", "/api/v2/users?state=inactive")
        self.assertEqual([u["id"] for u in p["entities"]], [user_id(6)])
        st, h, b = self.call("GET", "/api/v2/users?state=bogus")
        self.assertError(st, h, b, 400, "bad.request")

    def test_user_shape_and_expand(self):
        st, _, p = self.call("GET", "/api/v2/users?pageSize=1")
        u = p["entities"][0]
        self.assertEqual(u["id"], user_id(1))
        self.assertEqual(u["email"], "u1@example.com")
        self.assertEqual(u["division"]["id"], HOME)
        self.assertEqual(u["selfUri"], f"/api/v2/users/{user_id(1)}")
        self.assertNotIn("authorization", u)
        for q in ("expand=authorization", "expand=groups,authorization",
                  "expand=groups&expand=authorization"):
            st, _, p = self.call("GET", "/api/v2/users?pageSize=1&" + q)
            roles = p["entities"][0]["authorization"]["roles"]
            self.assertEqual(roles, [{"id": EMP, "name": "Employee"},
                                     {"id": R1, "name": "Queue Agent"},
                                     {"id": R2, "name": "Supervisor Plus"}], q)
        st, _, p = self.call("GET", "/api/v2/users?pageSize=2&pageNumber=3")
        self.assertEqual([x["id"] for x in p["entities"]], [user_id(5)])
        self.assertNotIn("nextUri", p)

    def test_users_listing_follows_every_change(self):
        # The simulator reuses a rendered users page until the tenant changes: every kind of
        # change must show on the next read, and a page is never served for other arguments.
        q = "/api/v2/users?pageSize=25&expand=authorization&state=any"

        def roles_of(page, uid):
            return [(r["id"], r["name"]) for u in page["entities"] if u["id"] == uid
                    for r in u["authorization"]["roles"]]

        first = self.sim.request("GET", q)
        self.assertEqual(first[0], 200)
        self.assertEqual(self.sim.request("GET", q)[2], first[2])  # same state, same bytes
        self.call("PUT", f"/api/v2/users/{user_id(2)}/roles", [R3])
        _, _, p = self.call("GET", q)
        self.assertEqual(roles_of(p, user_id(2)), [(EMP, "Employee"), (R3, "Reporting")])
        st, _, r = self.call("GET", f"/api/v2/authorization/roles/{R3}")
        r["name"] = "Reporting Two"
        self.assertEqual(self.call("PUT", f"/api/v2/authorization/roles/{R3}", r)[0], 200)
        _, _, p = self.call("GET", q)
        self.assertEqual(roles_of(p, user_id(2)), [(EMP, "Employee"), (R3, "Reporting Two")])
        self.assertEqual(self.call("DELETE", f"/api/v2/authorization/roles/{R3}")[0], 204)
        _, _, p = self.call("GET", q)
        self.assertEqual(roles_of(p, user_id(2)), [(EMP, "Employee")])
        # a write the server drops changes nothing, on the next read as well
        self.sim.add_faults([{"method": "PUT", "path": "/api/v2/users/*/roles",
                              "action": "drop_write", "times": 1}])
        self.call("PUT", f"/api/v2/users/{user_id(2)}/roles", [R1])
        _, _, p = self.call("GET", q)
        self.assertEqual(roles_of(p, user_id(2)), [(EMP, "Employee")])
        # a loaded state replaces everything
        state = make_state()
        state["users"][1]["email"] = "changed@example.com"
        self.sim.put_state(state)
        _, _, p = self.call("GET", q)
        self.assertEqual([u["email"] for u in p["entities"] if u["id"] == user_id(2)],
                         ["changed@example.com"])
        # the same arguments in another order: their own page (the URIs follow the order)
        _, _, p2 = self.call("GET", "/api/v2/users?state=any&expand=authorization&pageSize=25")
        self.assertEqual(p2["entities"], p["entities"])
        self.assertTrue(p2["selfUri"].endswith("&state=any&expand=authorization"), p2["selfUri"])
        self.assertTrue(p["selfUri"].endswith("&expand=authorization&state=any"), p["selfUri"])

    def test_id_filter(self):
        st, _, p = self.call("GET", f"/api/v2/users?id={user_id(3)},{user_id(6)}")
        self.assertEqual([u["id"] for u in p["entities"]], [user_id(3), user_id(6)])
        st, _, p = self.call("GET", f"/api/v2/users?id={user_id(3)}&id=ghost")
        self.assertEqual([u["id"] for u in p["entities"]], [user_id(3)])
        st, _, u = self.call("GET", f"/api/v2/users/{user_id(2)}")
        self.assertEqual(u["name"], "User 2")

    def test_user_roles_get(self):
        st, _, a = self.call("GET", f"/api/v2/users/{user_id(1)}/roles")
        self.assertEqual(st, 200)
        self.assertEqual([r["id"] for r in a["roles"]], [EMP, R1, R2])
        self.assertIn("group_creation", a["permissions"])
        self.assertIn(POL_DIR, a["permissionPolicies"])
        st, h, b = self.call("GET", "/api/v2/users/ghost/roles")
        self.assertError(st, h, b, 404, "not.found")

    def test_user_roles_put(self):
        st, _, a = self.call("PUT", f"/api/v2/users/{user_id(2)}/roles", [R3, R2, R3])
        self.assertEqual(st, 200, a)
        self.assertEqual([r["id"] for r in a["roles"]], [EMP, R3, R2])
        self.assertEqual(self.user_roles(user_id(2)), [EMP, R3, R2])
        st, _, a = self.call("PUT", f"/api/v2/users/{user_id(2)}/roles", [])
        self.assertEqual([r["id"] for r in a["roles"]], [EMP])
        # Unknown role: 404 not.found and nothing changes.
        st, h, b = self.call("PUT", f"/api/v2/users/{user_id(1)}/roles", [R3, "ghost-role"])
        self.assertError(st, h, b, 404, "not.found")
        self.assertEqual(self.user_roles(user_id(1)), [EMP, R1, R2])
        st, h, b = self.call("PUT", "/api/v2/users/ghost/roles", [R3])
        self.assertError(st, h, b, 404, "not.found")
        st, h, b = self.call("PUT", f"/api/v2/users/{user_id(1)}/roles", {"roles": [R3]})
        self.assertError(st, h, b, 400, "bad.request")
        st, h, b = self.call("PUT", f"/api/v2/users/{user_id(1)}/roles", [1, 2])
        self.assertError(st, h, b, 400, "bad.request")
        # userCount follows grants.
        st, _, r = self.call("GET", f"/api/v2/authorization/roles/{R3}")
        self.assertEqual(r["userCount"], 0)

    def test_user_roles_delete(self):
        st, h, data = self.sim.request("DELETE", f"/api/v2/users/{user_id(1)}/roles")
        self.assertEqual((st, data), (204, b""))
        self.assertEqual(self.user_roles(user_id(1)), [EMP])
        self.assertEqual(self.sim.request("DELETE", "/api/v2/users/ghost/roles")[0], 404)

    def test_unknown_route_and_method(self):
        st, h, b = self.call("GET", "/api/v2/bogus")
        self.assertError(st, h, b, 404, "not.found")
        st, h, b = self.call("PATCH", "/api/v2/users")
        self.assertEqual(st, 405)


class Atomicity(GenesysBase):
    def test_failed_requests_change_nothing(self):
        before = self.sim.state()
        self.call("PUT", f"/api/v2/users/{user_id(1)}/roles", [R3, "nope"])
        self.call("PUT", f"/api/v2/authorization/roles/{R3}/users/add", [user_id(1), "nope"])
        self.call("PUT", f"/api/v2/authorization/roles/{R3}", {"name": "Employee"})
        self.call("PUT", f"/api/v2/authorization/roles/{EMP}", {"name": "X", "description": "y"})
        self.call("POST", "/api/v2/authorization/roles", {"name": "ok", "permissions": "bad"})
        self.call("PUT", "/api/v2/authorization/roles/default", [{"id": EMP}, {"id": "nope"}])
        self.assertEqual(self.sim.state(), before)


if __name__ == "__main__":
    unittest.main(verbosity=2)
