"""Conformance of tenantsim's identity (AVEVA CONNECT / OCS) API surface (spec/simulator.md
section 3, api/identity.md): token and discovery, 401 shape, Operation-Id and ErrorResponse,
skip/count/Total-Count, roles, users and user role replacement."""

import json
import re
import unittest
import urllib.parse

from simlib import Sim

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TENANT = "7e000000-0000-4000-8000-000000000001"
ADMIN_T = "2dc742ab-39ea-4fc0-a39e-2bcb71c26a5f"
MEMBER_T = "7ad2b9ef-5386-4ead-ac9f-ad99c5c5b977"
BUILTIN_TYPES = {ADMIN_T, "f1439595-e5a2-487f-8a4f-0627fefe75df",
                 "45b66433-5f57-420b-bbdf-8bbd60c1cd9d", "e6cbf91e-0be8-4858-92b5-f88ecafd5574",
                 MEMBER_T, "b50b3349-fa9e-4a03-9220-cf99184b4645"}
ADMIN, MEMBER = "b0000000-0000-4000-8000-000000000001", "b0000000-0000-4000-8000-000000000002"
C1, C2 = "c0000000-0000-4000-8000-000000000001", "c0000000-0000-4000-8000-000000000002"


def uid(i):
    return f"a0000000-0000-4000-8000-{i:012d}"


def role(rid, name, rtype=None, desc=None):
    return {"Id": rid, "Name": name, "Description": desc, "RoleScope": 1, "TenantId": TENANT,
            "CommunityId": None, "RoleTypeId": rtype}


def make_state():
    users = []
    for i in range(1, 6):
        users.append({"Id": uid(i), "GivenName": f"G{i}", "Surname": f"S{i}", "Name": f"G{i} S{i}",
                      "Email": f"u{i}@example.com", "ContactEmail": f"u{i}@example.com",
                      "ContactGivenName": f"G{i}", "ContactSurname": f"S{i}",
                      "ExternalUserId": f"ext-{i}", "IdentityProviderId": None,
                      "RoleIds": [MEMBER] + ([C1] if i <= 2 else []) + ([ADMIN] if i == 1 else [])})
    return {"api": "identity", "tenant_id": TENANT,
            "roles": [role(ADMIN, "Tenant Administrator", ADMIN_T),
                      role(MEMBER, "Tenant Member", MEMBER_T),
                      role(C1, "Operators", desc="ops"), role(C2, "Engineers", desc="eng")],
            "users": users}


class IdentityBase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = Sim("identity", state=make_state(), tenant_id=TENANT).start()

    @classmethod
    def tearDownClass(cls):
        cls.sim.__exit__(None, None, None)

    def setUp(self):
        self.sim.put_state(make_state())

    B = f"/api/v1/Tenants/{TENANT}"

    def call(self, method, path, body=None, token=True):
        st, h, data = self.sim.request(method, path, body, None, token)
        return st, h, (json.loads(data) if data.strip() else None)

    def assertError(self, st, h, body, want):
        self.assertEqual(st, want, body)
        for k in ("OperationId", "Error", "Reason", "Resolution"):
            self.assertIsInstance(body[k], str)
            self.assertTrue(body[k])
        self.assertEqual(body["OperationId"], h["operation-id"])

    def user_role_ids(self, u):
        for x in self.sim.state()["users"]:
            if x["Id"] == u:
                return x["RoleIds"]
        return None


class Auth(IdentityBase):
    def token(self, **form):
        st, h, data = self.sim.raw_request(
            "POST", "/identity/connect/token", urllib.parse.urlencode(form),
            {"Content-Type": "application/x-www-form-urlencoded"})
        return st, json.loads(data)

    def test_token(self):
        cid, secret = self.sim.clients[0]
        st, b = self.token(grant_type="client_credentials", client_id=cid, client_secret=secret)
        self.assertEqual(st, 200)
        self.assertEqual((b["token_type"], b["expires_in"]), ("Bearer", 3600))
        self.assertTrue(b["access_token"])
        st, b = self.token(grant_type="client_credentials", client_id=cid, client_secret="x")
        self.assertEqual((st, b), (400, {"error": "invalid_client"}))
        st, b = self.token(grant_type="client_credentials")
        self.assertEqual((st, b), (400, {"error": "invalid_client"}))
        st, b = self.token(grant_type="password", client_id=cid, client_secret=secret)
        self.assertEqual(st, 400)

    def test_token_ttl_option(self):
        with Sim("identity", extra_args=["--token-ttl", "10m"]) as sim:
            cid, secret = sim.clients[0]
            st, _, data = sim.raw_request("POST", "/identity/connect/token", urllib.parse.urlencode(
                {"grant_type": "client_credentials", "client_id": cid, "client_secret": secret}))
            self.assertEqual(json.loads(data)["expires_in"], 600)

    def test_discovery(self):
        st, h, data = self.sim.raw_request("GET", "/identity/.well-known/openid-configuration")
        self.assertEqual(st, 200)
        d = json.loads(data)
        self.assertEqual(d["token_endpoint"],
                         f"http://127.0.0.1:{self.sim.port}/identity/connect/token")
        st, h, data = self.sim.raw_request("GET", "/identity/.well-known/openid-configuration",
                                           headers={"Host": "example.test:8443"})
        self.assertEqual(json.loads(data)["token_endpoint"],
                         "http://example.test:8443/identity/connect/token")

    def test_401_shape(self):
        for tok in (False, "bogus"):
            st, h, data = self.sim.request("GET", self.B + "/Roles", token=tok)
            self.assertEqual((st, data), (401, b""))
            self.assertEqual(h["www-authenticate"], "Bearer")
            self.assertRegex(h["operation-id"], GUID)

    def test_operation_id_everywhere(self):
        st, h, b = self.call("GET", self.B + "/Roles")
        self.assertRegex(h["operation-id"], GUID)
        self.assertEqual(h["content-type"], "application/json")
        st, h, b = self.call("GET", self.B + "/Roles/nope")
        self.assertError(st, h, b, 404)

    def test_wrong_tenant(self):
        st, h, b = self.call("GET", "/api/v1/Tenants/00000000-0000-4000-8000-000000000000/Roles")
        self.assertError(st, h, b, 404)
        st, h, b = self.call("GET", f"/api/v1/tenants/{TENANT.upper()}/roles")
        self.assertEqual(st, 200)


class Roles(IdentityBase):
    def test_builtins_added_and_listed(self):
        st, h, roles = self.call("GET", self.B + "/Roles")
        self.assertEqual(st, 200)
        self.assertEqual(int(h["total-count"]), len(roles))
        types = {r["RoleTypeId"] for r in roles if r["RoleTypeId"]}
        self.assertEqual(types, BUILTIN_TYPES)  # the four missing built-ins were added
        customs = [r for r in roles if r["RoleTypeId"] is None]
        self.assertEqual([r["Name"] for r in customs], ["Operators", "Engineers"])
        for r in roles:
            self.assertEqual(set(r), {"Id", "Name", "Description", "RoleScope", "TenantId",
                                      "CommunityId", "RoleTypeId"})
            self.assertEqual(r["TenantId"], TENANT)

    def test_skip_count_and_head(self):
        st, h, all_roles = self.call("GET", self.B + "/Roles?count=1000")
        total = len(all_roles)
        st, h, page = self.call("GET", self.B + "/Roles?skip=2&count=3")
        self.assertEqual(page, all_roles[2:5])
        self.assertEqual(int(h["total-count"]), total)
        st, h, page = self.call("GET", self.B + f"/Roles?skip={total}")
        self.assertEqual(page, [])
        for bad in ("count=1001", "count=-1", "skip=-1", "count=abc"):
            st, h, b = self.call("GET", self.B + "/Roles?" + bad)
            self.assertError(st, h, b, 400)
        st, h, data = self.sim.request("HEAD", self.B + "/Roles")
        self.assertEqual((st, data), (200, b""))
        self.assertEqual(int(h["total-count"]), total)
        st, h, roles = self.call("GET", self.B + f"/Roles?roleTypeId={MEMBER_T}")
        self.assertEqual([r["Id"] for r in roles], [MEMBER])
        self.assertEqual(h["total-count"], "1")

    def test_get_and_head_one(self):
        st, h, r = self.call("GET", self.B + f"/Roles/{C1}")
        self.assertEqual((st, r["Name"]), (200, "Operators"))
        self.assertEqual(self.sim.request("HEAD", self.B + f"/Roles/{C1}")[0], 200)
        self.assertEqual(self.sim.request("HEAD", self.B + "/Roles/nope")[0], 404)

    def test_create(self):
        st, h, r = self.call("POST", self.B + "/Roles",
                             {"Id": None, "Name": "Analysts", "Description": "a", "RoleScope": 1})
        self.assertEqual(st, 201, r)
        self.assertRegex(r["Id"], GUID)
        self.assertEqual((r["RoleTypeId"], r["RoleScope"], r["TenantId"], r["CommunityId"]),
                         (None, 1, TENANT, None))
        self.assertTrue(h["location"].endswith(f"/Roles/{r['Id']}"))
        # Same name and values: 302 to the existing role; different values: 409.
        st, h, data = self.sim.request("POST", self.B + "/Roles",
                                       {"Name": "Analysts", "Description": "a"})
        self.assertEqual(st, 302)
        self.assertTrue(h["location"].endswith(f"/Roles/{r['Id']}"))
        st, h, b = self.call("POST", self.B + "/Roles", {"Name": "analysts", "Description": "b"})
        self.assertError(st, h, b, 409)
        st, h, b = self.call("POST", self.B + "/Roles", {"Name": "Tenant Member"})
        self.assertError(st, h, b, 409)
        for bad in ({"Name": ""}, {"Name": "x" * 129}, {"Description": "d"},
                    {"Name": "ok", "Description": "d" * 129}, {"Name": "ok", "RoleScope": 2},
                    {"Name": "ok", "RoleTypeId": MEMBER_T}, [], "{", b'{"Name": "\xff\xfe x"}',
                    b'{"Name": "a\\u0000b"}'):
            st, h, b = self.call("POST", self.B + "/Roles", bad)
            self.assertError(st, h, b, 400)
        st, h, r = self.call("POST", self.B + "/Roles", {"Name": "x" * 128})
        self.assertEqual(st, 201)

    def test_update(self):
        st, h, r = self.call("PUT", self.B + f"/Roles/{C1}",
                             {"Id": C1, "Name": "Operators 2", "Description": "new"})
        self.assertEqual(st, 200, r)
        self.assertEqual((r["Name"], r["Description"]), ("Operators 2", "new"))
        st, h, b = self.call("PUT", self.B + f"/Roles/{C1}", {"Id": C2, "Name": "z"})
        self.assertError(st, h, b, 400)
        st, h, b = self.call("PUT", self.B + "/Roles/ghost", {"Name": "z"})
        self.assertError(st, h, b, 404)
        st, h, b = self.call("PUT", self.B + f"/Roles/{ADMIN}", {"Name": "Boss"})
        self.assertError(st, h, b, 405)
        st, h, b = self.call("PUT", self.B + f"/Roles/{C1}", {"Name": "engineers"})
        self.assertError(st, h, b, 409)

    def test_delete(self):
        st, h, b = self.call("DELETE", self.B + f"/Roles/{MEMBER}")
        self.assertError(st, h, b, 405)
        st, h, b = self.call("DELETE", self.B + f"/Roles/{C1}")
        self.assertEqual(st, 204)
        self.assertEqual(self.user_role_ids(uid(1)), [MEMBER, ADMIN])
        st, h, b = self.call("DELETE", self.B + f"/Roles/{C1}")
        self.assertError(st, h, b, 404)

    def test_role_users(self):
        st, h, users = self.call("GET", self.B + f"/Roles/{C1}/users")
        self.assertEqual([u["Id"] for u in users], [uid(1), uid(2)])
        self.assertEqual(h["total-count"], "2")
        st, h, data = self.sim.request("HEAD", self.B + f"/Roles/{C1}/Users")
        self.assertEqual((st, h["total-count"]), (200, "2"))
        self.assertEqual(self.sim.request("GET", self.B + "/Roles/ghost/users")[0], 404)


class Users(IdentityBase):
    def test_list(self):
        st, h, users = self.call("GET", self.B + "/Users")
        self.assertEqual(len(users), 5)
        self.assertEqual(h["total-count"], "5")
        u = users[0]
        self.assertEqual(u["RoleIds"], [MEMBER, C1, ADMIN])
        for k in ("Id", "GivenName", "Surname", "Name", "Email", "ContactEmail",
                  "ContactGivenName", "ContactSurname", "ExternalUserId", "IdentityProviderId"):
            self.assertIn(k, u)
        st, h, users = self.call("GET", self.B + "/Users?skip=3&count=1")
        self.assertEqual([u["Id"] for u in users], [uid(4)])
        st, h, data = self.sim.request("HEAD", self.B + "/Users")
        self.assertEqual((st, data, h["total-count"]), (200, b"", "5"))
        st, h, b = self.call("GET", self.B + "/Users?count=5000")
        self.assertError(st, h, b, 400)

    def test_id_filter(self):
        st, h, users = self.call("GET", self.B + f"/Users?id={uid(2)}&id={uid(4)}")
        self.assertEqual(st, 200)
        self.assertEqual([u["Id"] for u in users], [uid(2), uid(4)])
        st, h, b = self.call("GET", self.B + f"/Users?id={uid(2)}&id=ghost")
        self.assertEqual(st, 207)
        self.assertEqual([u["Id"] for u in b["Data"]], [uid(2)])
        self.assertEqual(b["ChildErrors"][0]["ModelId"], "ghost")
        self.assertEqual(b["ChildErrors"][0]["StatusCode"], 404)

    def test_one_user(self):
        st, h, u = self.call("GET", self.B + f"/Users/{uid(3)}")
        self.assertEqual((st, u["Email"]), (200, "u3@example.com"))
        self.assertEqual(self.sim.request("HEAD", self.B + f"/Users/{uid(3)}")[0], 200)
        st, h, b = self.call("GET", self.B + "/Users/ghost")
        self.assertError(st, h, b, 404)

    def test_user_roles_get(self):
        st, h, roles = self.call("GET", self.B + f"/Users/{uid(1)}/Roles")
        self.assertEqual([r["Id"] for r in roles], [MEMBER, C1, ADMIN])
        self.assertEqual(h["total-count"], "3")
        st, h, data = self.sim.request("HEAD", self.B + f"/Users/{uid(1)}/Roles")
        self.assertEqual((st, h["total-count"]), (200, "3"))
        self.assertEqual(self.sim.request("GET", self.B + "/Users/ghost/Roles")[0], 404)

    def test_user_roles_put(self):
        st, h, roles = self.call("PUT", self.B + f"/Users/{uid(3)}/Roles",
                                 [{"Id": C2, "Name": "ignored"}, {"Id": C1}, {"Id": C2}])
        self.assertEqual(st, 200, roles)
        self.assertEqual([r["Id"] for r in roles], [MEMBER, C2, C1])
        self.assertEqual(roles[1]["Name"], "Engineers")
        self.assertEqual(self.user_role_ids(uid(3)), [MEMBER, C2, C1])
        st, h, roles = self.call("PUT", self.B + f"/Users/{uid(3)}/Roles", [])
        self.assertEqual([r["Id"] for r in roles], [MEMBER])
        # Unknown id: 400, nothing changes.
        st, h, b = self.call("PUT", self.B + f"/Users/{uid(1)}/Roles", [{"Id": C2}, {"Id": "x"}])
        self.assertError(st, h, b, 400)
        self.assertEqual(self.user_role_ids(uid(1)), [MEMBER, C1, ADMIN])
        for bad in ({"Id": C2}, [{"Name": "x"}], [C2], None, "]"):
            st, h, b = self.call("PUT", self.B + f"/Users/{uid(1)}/Roles", bad)
            self.assertError(st, h, b, 400)
        st, h, b = self.call("PUT", self.B + "/Users/ghost/Roles", [{"Id": C2}])
        self.assertError(st, h, b, 404)
        self.assertEqual(self.user_role_ids(uid(1)), [MEMBER, C1, ADMIN])

    def test_unknown_route(self):
        st, h, b = self.call("GET", self.B + "/Widgets")
        self.assertError(st, h, b, 404)
        st, h, b = self.call("DELETE", self.B + f"/Users/{uid(1)}")
        self.assertError(st, h, b, 405)


if __name__ == "__main__":
    unittest.main(verbosity=2)
