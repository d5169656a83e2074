"""tenantsim fault injection (POST/DELETE /_sim/faults, spec/simulator.md section 2) and the
per-token rate limiter (section 3): every action, skip/times/probability, method and path
matching, and that control routes are never faulted."""

import http.client
import json
import socket
import time
import unittest

from simlib import Sim, SimError

EMP = "e0000000-0000-4000-8000-000000000001"
R1 = "c0000000-0000-4000-8000-000000000001"
U1 = "a0000000-0000-4000-8000-000000000001"
STATE = {
    "api": "genesys",
    "roles": [{"id": EMP, "name": "Employee", "defaultRoleId": "employee", "default": True},
              {"id": R1, "name": "Agents"}],
    "users": [{"id": U1, "name": "U1", "email": "u1@example.com", "username": "u1@example.com",
               "state": "active", "roles": [EMP]}],
}
ROLES = "/api/v2/authorization/roles"


class Faults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = Sim("genesys", state=STATE).start()

    @classmethod
    def tearDownClass(cls):
        cls.sim.__exit__(None, None, None)

    def setUp(self):
        self.sim.clear_faults()
        self.sim.put_state(STATE)

    def get(self, path=ROLES):
        return self.sim.request("GET", path)

    def test_status_with_retry_after_times_and_skip(self):
        self.sim.add_faults([{"method": "GET", "path": ROLES, "skip": 1, "times": 2,
                              "action": "status", "status": 503, "retry_after": 1}])
        self.assertEqual(self.get()[0], 200)  # skipped
        for _ in range(2):
            st, h, data = self.get()
            self.assertEqual(st, 503)
            self.assertEqual(h["retry-after"], "1")
            body = json.loads(data)
            self.assertEqual((body["code"], body["status"]), ("service.unavailable", 503))
            self.assertEqual(body["contextId"], h["inin-correlation-id"])
        self.assertEqual(self.get()[0], 200)  # times exhausted
        st, _, data = self.sim.raw_request("GET", "/_sim/faults")
        rule = json.loads(data)[0]
        self.assertEqual((rule["seen"], rule["fired"]), (3, 2))

    def test_status_429_without_retry_after(self):
        self.sim.add_faults([{"path": ROLES + "*", "action": "status", "status": 429, "times": 1}])
        st, h, data = self.get()
        self.assertEqual(st, 429)
        self.assertNotIn("retry-after", h)
        self.assertEqual(json.loads(data)["code"], "too.many.requests.retry.after")

    def test_method_and_glob(self):
        self.sim.add_faults([{"method": "PUT", "path": "/api/v2/users/*/roles",
                              "action": "status", "status": 500}])
        self.assertEqual(self.sim.request("GET", f"/api/v2/users/{U1}/roles")[0], 200)
        st, _, data = self.sim.request("PUT", f"/api/v2/users/{U1}/roles", [R1])
        self.assertEqual(st, 500)
        self.assertEqual(json.loads(data)["code"], "internal.server.error")
        self.assertEqual(self.sim.state()["users"][0]["roles"], [EMP])  # not applied

    def test_first_matching_rule_fires(self):
        self.sim.add_faults([{"path": ROLES, "action": "status", "status": 502, "times": 1},
                             {"path": "*", "action": "status", "status": 504, "times": 1}])
        self.assertEqual(self.get()[0], 502)
        self.assertEqual(self.get()[0], 504)  # first rule spent, the second one matches
        self.assertEqual(self.get()[0], 200)

    def test_probability_zero_and_one(self):
        self.sim.add_faults([{"path": ROLES, "action": "status", "status": 503,
                              "probability": 0.0}])
        for _ in range(20):
            self.assertEqual(self.get()[0], 200)
        self.sim.clear_faults()
        self.sim.add_faults([{"path": ROLES, "action": "status", "status": 503,
                              "probability": 1}])
        for _ in range(5):
            self.assertEqual(self.get()[0], 503)

    def test_reset(self):
        self.sim.add_faults([{"path": ROLES, "action": "reset", "times": 1}])
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionResetError,
                                http.client.BadStatusLine)):
            self.get()
        self.assertEqual(self.get()[0], 200)

    def test_stall(self):
        self.sim.add_faults([{"path": ROLES, "action": "stall", "stall_ms": 400, "times": 2}])
        conn = http.client.HTTPConnection("127.0.0.1", self.sim.port, timeout=0.1)
        tok = self.sim.fetch_token()
        conn.request("GET", ROLES, headers={"Authorization": f"Bearer {tok}"})
        with self.assertRaises((socket.timeout, TimeoutError)):
            conn.getresponse()
        conn.close()
        t0 = time.monotonic()
        st, _, data = self.get()  # answered normally, after the stall
        self.assertGreaterEqual(time.monotonic() - t0, 0.35)
        self.assertEqual(st, 200)
        self.assertIn("entities", json.loads(data))

    def test_garbage(self):
        self.sim.add_faults([{"path": ROLES, "action": "garbage", "times": 1}])
        st, _, data = self.get()
        self.assertEqual(st, 200)
        with self.assertRaises(ValueError):
            json.loads(data)

    def test_truncate(self):
        self.sim.add_faults([{"path": ROLES, "action": "truncate", "times": 1}])
        tok = self.sim.fetch_token()
        conn = http.client.HTTPConnection("127.0.0.1", self.sim.port, timeout=5)
        conn.request("GET", ROLES, headers={"Authorization": f"Bearer {tok}"})
        resp = conn.getresponse()
        declared = int(resp.getheader("Content-Length"))
        with self.assertRaises(http.client.IncompleteRead) as cm:
            resp.read()
        self.assertLess(len(cm.exception.partial), declared)
        conn.close()
        self.assertEqual(self.get()[0], 200)

    def test_drop_write(self):
        self.sim.add_faults([{"method": "PUT", "path": "/api/v2/users/*/roles",
                              "action": "drop_write", "times": 1}])
        st, _, data = self.sim.request("PUT", f"/api/v2/users/{U1}/roles", [R1])
        self.assertEqual(st, 200)
        self.assertEqual([r["id"] for r in json.loads(data)["roles"]], [EMP, R1])
        self.assertEqual(self.sim.state()["users"][0]["roles"], [EMP])  # not kept
        st, _, _ = self.sim.request("PUT", f"/api/v2/users/{U1}/roles", [R1])
        self.assertEqual(self.sim.state()["users"][0]["roles"], [EMP, R1])
        # Dropped creates leave no role behind either.
        self.sim.add_faults([{"method": "POST", "path": ROLES, "action": "drop_write"}])
        st, _, data = self.sim.request("POST", ROLES, {"name": "Ghost"})
        self.assertEqual(st, 200)
        self.assertNotIn("Ghost", [r["name"] for r in self.sim.state()["roles"]])
        # "answer 200 as if the write succeeded", also where the route says 204
        self.sim.clear_faults()
        st, _, data = self.sim.request("POST", ROLES, {"name": "Kept"})
        rid = json.loads(data)["id"]
        self.sim.add_faults([{"method": "DELETE", "path": ROLES + "/*", "action": "drop_write"}])
        st, _, _ = self.sim.request("DELETE", f"{ROLES}/{rid}")
        self.assertEqual(st, 200)
        self.assertIn("Kept", [r["name"] for r in self.sim.state()["roles"]])

    def test_token_endpoint_can_fail(self):
        self.sim.add_faults([{"path": "/oauth/token", "action": "status", "status": 503,
                              "times": 1}])
        with self.assertRaises(SimError):
            self.sim.fetch_token()
        self.assertTrue(self.sim.fetch_token())

    def test_control_routes_never_faulted(self):
        self.sim.add_faults([{"path": "*", "action": "reset"}])
        self.assertIsInstance(self.sim.stats(), dict)
        self.assertIsInstance(self.sim.state(), dict)
        self.sim.clear_faults()
        self.assertEqual(self.get()[0], 200)

    def test_bad_rules(self):
        for bad in ([{"action": "explode"}], [{"path": "*"}], [{"action": "status", "status": 99}],
                    [{"action": "status", "probability": 2}], [{"action": "reset", "times": -1}],
                    ["x"], "nonsense{"):
            body = bad if not isinstance(bad, str) else bad.encode()
            st, _, _ = self.sim.raw_request("POST", "/_sim/faults", body)
            self.assertEqual(st, 400, bad)
        st, _, data = self.sim.raw_request("GET", "/_sim/faults")
        self.assertEqual(json.loads(data), [])


class IdentityFaults(unittest.TestCase):
    def test_status_body_and_header(self):
        with Sim("identity") as sim:
            sim.add_faults([{"path": "/api/v1/*", "action": "status", "status": 503,
                             "retry_after": 2, "times": 1}])
            st, h, data = sim.request("GET", sim.api_base + "/Roles")
            self.assertEqual((st, h["retry-after"]), (503, "2"))
            body = json.loads(data)
            self.assertEqual(body["OperationId"], h["operation-id"])
            for k in ("Error", "Reason", "Resolution"):
                self.assertTrue(body[k])
            self.assertEqual(sim.request("GET", sim.api_base + "/Roles")[0], 200)


class RateLimit(unittest.TestCase):
    def test_genesys_limit_per_token(self):
        with Sim("genesys", rate_limit="5/min") as sim:
            tok = sim.fetch_token()
            for i in range(5):
                st, h, _ = sim.request("GET", ROLES, token=tok)
                self.assertEqual(st, 200)
                self.assertEqual(h["inin-ratelimit-allowed"], "5")
                self.assertEqual(h["inin-ratelimit-count"], str(i + 1))
                self.assertTrue(1 <= int(h["inin-ratelimit-reset"]) <= 60)
            st, h, data = sim.request("GET", ROLES, token=tok)
            self.assertEqual(st, 429)
            body = json.loads(data)
            self.assertEqual(body["code"], "too.many.requests.retry.after")
            self.assertEqual(body["status"], 429)
            self.assertEqual(body["contextId"], h["inin-correlation-id"])
            self.assertTrue(1 <= int(h["retry-after"]) <= 60)
            self.assertEqual(h["inin-ratelimit-count"], "6")
            # Another token has its own window.
            self.assertEqual(sim.request("GET", ROLES, token=sim.fetch_token())[0], 200)
            stats = sim.stats()
            self.assertEqual(stats["by_status"]["429"], 1)

    def test_window_resets(self):
        with Sim("genesys", rate_limit="2/s") as sim:
            tok = sim.fetch_token()
            self.assertEqual([sim.request("GET", ROLES, token=tok)[0] for _ in range(3)],
                             [200, 200, 429])
            time.sleep(1.1)
            self.assertEqual(sim.request("GET", ROLES, token=tok)[0], 200)

    def test_identity_limit(self):
        with Sim("identity", rate_limit=2) as sim:
            codes = [sim.request("GET", sim.api_base + "/Roles")[0] for _ in range(3)]
            self.assertEqual(codes, [200, 200, 429])
            st, h, data = sim.request("GET", sim.api_base + "/Roles")
            self.assertTrue(int(h["retry-after"]) >= 1)
            self.assertEqual(json.loads(data)["OperationId"], h["operation-id"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
