"""tenantsim control routes and process behaviour (spec/simulator.md sections 1 and 2,
tests/sim/README.md): state round trip, stats, concurrency without serialised latency, the
command line (port file / stdout, default client, errors), clean shutdown with
--save-on-exit, loopback-only control routes, and TLS."""

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import unittest

from simlib import Sim, binary

EMP = "e0000000-0000-4000-8000-000000000001"
R1 = "c0000000-0000-4000-8000-000000000001"
STATE = {
    "api": "genesys",
    "org": {"id": "0a000000-0000-4000-8000-000000000001", "name": "Org"},
    "unlicensed_domains": ["quality"],
    "divisions": [{"id": "d0000000-0000-4000-8000-000000000001", "name": "Home", "home": True}],
    "settings": {"backfillEnabled": True, "authorizationGrantDivisionAware": False},
    "roles": [{"id": EMP, "name": "Employee", "description": "", "defaultRoleId": "employee",
               "default": True, "base": False, "permissions": [], "permissionPolicies": []},
              {"id": R1, "name": "Agents", "description": "a", "default": False, "base": False,
               "permissions": ["p"], "permissionPolicies": [
                   {"domain": "routing", "entityName": "queue", "actionSet": ["join"],
                    "allowConditions": False, "policyName": "x", "namedResources": []}],
               "extraField": {"kept": True}}],
    "users": [{"id": f"a0000000-0000-4000-8000-{i:012d}", "name": f"U{i}",
               "email": f"u{i}@example.com", "username": f"u{i}@example.com",
               "state": "active" if i < 4 else "inactive",
               "division": "d0000000-0000-4000-8000-000000000001",
               "roles": [EMP, R1] if i % 2 else [EMP]} for i in range(1, 6)],
}


class StateAndStats(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = Sim("genesys", state=STATE).start()

    @classmethod
    def tearDownClass(cls):
        cls.sim.__exit__(None, None, None)

    def setUp(self):
        self.sim.put_state(STATE)
        self.sim.clear_faults()
        self.sim.reset_stats()

    def test_state_round_trip(self):
        got = self.sim.state()
        # The loaded state comes back as given, plus the default admin role the simulator adds.
        self.assertEqual(got["org"], STATE["org"])
        self.assertEqual(got["settings"], STATE["settings"])
        self.assertEqual(got["unlicensed_domains"], ["quality"])
        self.assertEqual(got["users"], STATE["users"])
        self.assertEqual(got["roles"][:2], STATE["roles"])
        self.assertEqual([r.get("defaultRoleId") for r in got["roles"][2:]], ["admin"])
        self.sim.put_state(got)
        self.assertEqual(self.sim.state(), got)

    def test_put_state_rejects_bad_input_and_keeps_tenant(self):
        before = self.sim.state()
        bad_states = [b"{not json", b"[]", json.dumps({"api": "identity"}).encode(),
                      json.dumps({"roles": [{"id": "x"}]}).encode(),
                      json.dumps({"users": [{"id": "u", "roles": ["ghost"]}]}).encode(),
                      json.dumps({"users": [{"id": "u", "state": "sleeping"}]}).encode()]
        for bad in bad_states:
            st, _, data = self.sim.raw_request("PUT", "/_sim/state", bad)
            self.assertEqual(st, 400, bad)
            self.assertIn("error", json.loads(data))
        self.assertEqual(self.sim.state(), before)

    def test_empty_state_gets_defaults(self):
        self.sim.put_state({})
        st = self.sim.state()
        self.assertEqual(sorted(r["defaultRoleId"] for r in st["roles"]), ["admin", "employee"])
        self.assertEqual(st["users"], [])
        self.assertEqual(len(st["divisions"]), 1)

    def test_stats(self):
        s = self.sim.stats()
        self.assertEqual((s["total"], s["writes"], s["by_route"], s["by_status"]), (0, 0, {}, {}))
        tok = self.sim.fetch_token()
        uid = STATE["users"][0]["id"]
        self.sim.request("GET", "/api/v2/authorization/roles", token=tok)
        self.sim.request("GET", "/api/v2/authorization/roles?pageNumber=2", token=tok)
        self.sim.request("PUT", f"/api/v2/users/{uid}/roles", [EMP], token=tok)
        self.sim.request("PUT", "/api/v2/users/ghost/roles", [EMP], token=tok)
        self.sim.request("GET", "/api/v2/nowhere", token=tok)
        self.sim.state()  # control routes are not counted
        s = self.sim.stats()
        self.assertEqual(s["total"], 6)
        self.assertEqual(s["writes"], 2)
        self.assertEqual(s["by_route"], {"POST /oauth/token": 1,
                                         "GET /api/v2/authorization/roles": 2,
                                         "PUT /api/v2/users/{id}/roles": 2,
                                         "GET (unmatched)": 1})
        self.assertEqual(s["by_status"], {"200": 4, "404": 2})
        self.assertGreaterEqual(s["max_in_flight"], 1)
        self.sim.reset_stats()
        self.assertEqual(self.sim.stats()["total"], 0)

    def test_stats_count_connections(self):
        tok = self.sim.fetch_token()
        self.sim.reset_stats()
        conn = http.client.HTTPConnection("127.0.0.1", self.sim.port, timeout=10)
        try:
            for _ in range(3):  # one keep-alive connection
                conn.request("GET", "/api/v2/authorization/roles",
                             headers={"Authorization": f"Bearer {tok}"})
                self.assertEqual(conn.getresponse().read()[:1], b"{")
        finally:
            conn.close()
        self.sim.request("GET", "/api/v2/authorization/roles", token=tok)  # a second one
        s = self.sim.stats()  # and the stats request's own
        self.assertEqual(s["total"], 4)
        self.assertEqual(s["connections"], 3)
        self.sim.reset_stats()
        self.assertEqual(self.sim.stats()["connections"], 1)

    def test_concurrent_requests_overlap(self):
        with Sim("genesys", latency="50ms") as sim:
            tok = sim.fetch_token()
            sim.reset_stats()
            errors = []

            def worker():
                try:
                    st, _, _ = sim.request("GET", "/api/v2/authorization/roles", token=tok)
                    if st != 200:
                        errors.append(st)
                except Exception as e:  # noqa: BLE001 - collected and asserted below
                    errors.append(repr(e))

            threads = [threading.Thread(target=worker) for _ in range(16)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(errors, [])
            s = sim.stats()
            self.assertEqual(s["total"], 16)
            # Latency is a per-request sleep on its own thread: requests overlap.
            self.assertGreater(s["max_in_flight"], 1)

    def test_state_from_generator(self):
        try:
            from simlib import gen
            state = gen("genesys", 40, 6, seed=3)
        except Exception as e:  # noqa: BLE001 - the generator is another helper's module
            self.skipTest(f"generator unavailable: {e}")
        with Sim("genesys", state=state) as sim:
            st, _, data = sim.request("GET", "/api/v2/users?state=any&pageSize=100")
            self.assertEqual(json.loads(data)["total"], len(state["users"]))
            got = sim.state()
            self.assertEqual(len(got["roles"]), len(state["roles"]))
            self.assertEqual([u["id"] for u in got["users"]], [u["id"] for u in state["users"]])


class CommandLine(unittest.TestCase):
    def run_sim(self, args, timeout=10):
        return subprocess.run([binary("TENANTSIM")] + args, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout)

    def test_errors(self):
        self.assertEqual(self.run_sim([]).returncode, 2)
        self.assertEqual(self.run_sim(["--api", "nope"]).returncode, 2)
        self.assertEqual(self.run_sim(["--api", "genesys", "--bogus", "1"]).returncode, 2)
        self.assertEqual(self.run_sim(["--api", "genesys", "--latency", "fast"]).returncode, 2)
        self.assertEqual(self.run_sim(["--api", "genesys", "--rate-limit", "x/y"]).returncode, 2)
        self.assertEqual(self.run_sim(["--api", "genesys", "--client", "nocolon"]).returncode, 2)
        self.assertEqual(self.run_sim(["--api", "genesys", "--state", "/nonexistent.json"])
                         .returncode, 1)
        self.assertEqual(self.run_sim(["--api", "genesys", "--listen", "nohost"]).returncode, 1)
        help_ = self.run_sim(["--help"])
        self.assertEqual(help_.returncode, 0)
        self.assertIn(b"test-client:test-secret", help_.stdout)

    def test_port_on_stdout_default_client_and_clean_stop(self):
        tmp = tempfile.mkdtemp()
        try:
            save = os.path.join(tmp, "saved.json")
            proc = subprocess.Popen([binary("TENANTSIM"), "--api", "identity", "--listen",
                                     "127.0.0.1:0", "--save-on-exit", save,
                                     "--tenant-id", "7e000000-0000-4000-8000-000000000009"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                port = int(proc.stdout.readline())
                self.assertGreater(port, 0)
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("POST", "/identity/connect/token",
                             "grant_type=client_credentials&client_id=test-client"
                             "&client_secret=test-secret",
                             {"Content-Type": "application/x-www-form-urlencoded"})
                resp = conn.getresponse()
                tok = json.loads(resp.read())["access_token"]
                base = "/api/v1/Tenants/7e000000-0000-4000-8000-000000000009"
                conn.request("POST", base + "/Roles", json.dumps({"Name": "Saved"}),
                             {"Authorization": f"Bearer {tok}"})
                resp = conn.getresponse()
                resp.read()
                self.assertEqual(resp.status, 201)
                conn.close()
            finally:
                proc.send_signal(signal.SIGTERM)
                rc = proc.wait(timeout=10)
                proc.stdout.close()
                proc.stderr.close()
            self.assertEqual(rc, 0)
            with open(save, encoding="utf-8") as f:
                saved = json.load(f)
            self.assertEqual(saved["tenant_id"], "7e000000-0000-4000-8000-000000000009")
            self.assertIn("Saved", [r["Name"] for r in saved["roles"]])
            # The saved file is a valid --state.
            with Sim("identity", state=save) as sim:
                self.assertIn("Saved", [r["Name"] for r in sim.state()["roles"]])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_sigint_during_stall_stops_quickly(self):
        with Sim("genesys") as sim:
            sim.add_faults([{"path": "*", "action": "stall", "stall_ms": 60000}])
            conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=30)
            conn.request("GET", "/api/v2/authorization/roles")
            sim.proc.send_signal(signal.SIGINT)
            self.assertEqual(sim.proc.wait(timeout=10), 0)
            conn.close()


def non_loopback_ipv4():
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(("192.0.2.123", 9))  # no packet is sent for a UDP connect
        addr = s.getsockname()[0]
        s.close()
        return None if addr.startswith("127.") else addr
    except OSError:
        return None


class Network(unittest.TestCase):
    def test_control_routes_loopback_only(self):
        addr = non_loopback_ipv4()
        if not addr:
            self.skipTest("no non-loopback IPv4 address")
        with Sim("genesys", extra_args=["--listen", "0.0.0.0:0"]) as sim:
            conn = http.client.HTTPConnection(addr, sim.port, timeout=5)
            conn.request("GET", "/_sim/state")
            resp = conn.getresponse()
            resp.read()
            self.assertEqual(resp.status, 403)
            conn.request("GET", "/api/v2/authorization/roles")
            resp = conn.getresponse()
            resp.read()
            self.assertEqual(resp.status, 401)  # the API itself is reachable
            conn.close()
            self.assertIsInstance(sim.state(), dict)  # loopback still allowed

    def test_tls(self):
        openssl = shutil.which("openssl")
        if not openssl:
            self.skipTest("openssl not installed")
        tmp = tempfile.mkdtemp()
        try:
            cert, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
            r = subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                                "-keyout", key, "-out", cert, "-days", "1", "-subj",
                                "/CN=127.0.0.1"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=60)
            if r.returncode != 0:
                self.skipTest("openssl could not make a certificate")
            with Sim("genesys", extra_args=["--tls-cert", cert, "--tls-key", key]) as sim:
                ctx = ssl.create_default_context(cafile=cert)
                ctx.check_hostname = False
                conn = http.client.HTTPSConnection("127.0.0.1", sim.port, timeout=10,
                                                   context=ctx)
                conn.request("GET", "/api/v2/authorization/roles")
                resp = conn.getresponse()
                body = json.loads(resp.read())
                self.assertEqual((resp.status, body["code"]), (401, "authentication.required"))
                conn.close()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
