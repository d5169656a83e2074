"""Fault matrix end to end (product.md sections 4.9 and 5, simulator.md section 2).

Two real tenantsims and a real rolesyncd: for every fault the simulator can inject — 429 storms
with Retry-After and the simulator's own rate limit, 5xx bursts, connection resets, stalls beyond
the client timeout, garbage and truncated bodies on reads and on writes, token expiry mid-run,
refused credentials, writes the server drops silently, a source that is down for a whole cycle,
and a listing whose later pages fail — the test checks that

  * nothing outside the plan is ever removed: every (user, role) pair that disappeared from the
    target was in the desired diff (target before minus desired state), no role was deleted and
    target-only users were not touched;
  * a broken or short read is never taken as "everything was deleted": the target is unchanged
    and the run exits 1;
  * the target converges to the desired state once the fault clears (one clean --once).

Retry delays are small (initial 100 ms, max 500 ms) so the whole file stays well under a minute.
"""

import copy
import os
import shutil
import signal
import tempfile
import time
import unittest

from rsconfig import (IDENTITY_ADMIN, IDENTITY_MEMBER, tenant_for, user_roles, write_config)
from simlib import Daemon, Sim, gen, log_grammar_errors, run_rolesyncd

GEN_SKIP = ("employee", "admin")
IDN_SKIP = (IDENTITY_MEMBER, IDENTITY_ADMIN)
GEN_USERS = "/api/v2/users"
GEN_ROLES = "/api/v2/authorization/roles"
# Assignment writes (product.md 4a: grants that name their division): a role for many users in
# one division, a role revoked from many users, a user's grants added or removed (bulk or one).
GEN_ASSIGN = [("PUT", GEN_ROLES + "/*/users/*"), ("POST", GEN_ROLES + "/*"),
              ("POST", "/api/v2/authorization/subjects/*"),
              ("DELETE", "/api/v2/authorization/subjects/*")]
GEN_WRITES = GEN_ASSIGN + [("POST", GEN_ROLES), ("PUT", GEN_ROLES + "/*")]

FAST_RETRY = {"max_attempts": 4, "initial_delay": "100ms", "max_delay": "500ms"}


def http_cfg(**extra):
    h = {"rate_limit": "0", "timeout": "1s", "connect_timeout": "1s", "retry": dict(FAST_RETRY)}
    h.update(extra)
    return h


def faults_on(pairs, **rule):
    """One fault rule per (method, path glob)."""
    out = []
    for method, path in pairs:
        r = {"method": method, "path": path}
        r.update(rule)
        out.append(r)
    return out


class Matrix(unittest.TestCase):
    """Shared machinery: one source and one target tenantsim per class, reset before each test."""

    API = "genesys"
    SKIP = GEN_SKIP
    USERS, ROLES, DRIFT = 300, 8, 30
    PAGE = 100

    @classmethod
    def setUpClass(cls):
        cls.src_state = gen(cls.API, cls.USERS, cls.ROLES, seed=31)
        cls.dst_state = gen(cls.API, same_as=cls.src_state, seed=32, drift=cls.DRIFT,
                            **({"edit_roles": 2} if cls.API == "genesys" else {}))
        cls.src = Sim(cls.API, state=cls.src_state).start()
        cls.dst = Sim(cls.API, state=cls.dst_state).start()
        cls.dir = tempfile.mkdtemp(prefix="faults-")
        cls.faults_tried = 0

    @classmethod
    def tearDownClass(cls):
        for s in (cls.src, cls.dst):
            s.__exit__(None, None, None)
        shutil.rmtree(cls.dir, ignore_errors=True)

    def assert_source_read_faults_write_nothing(self, cases, path_hint):
        """Each case's fault rules on the source make the read fail: exit 1, an error naming the
        request, the target untouched; a clean run afterwards converges."""
        for i, rules in enumerate(cases):
            with self.subTest(case=i):
                self.setUp()
                type(self).faults_tried += 1
                self.src.add_faults(rules)
                p = self.once(self.config(), 1)
                self.assertIn("read failed", p.stderr)
                self.assertIn(path_hint, p.stderr)
                self.assert_unchanged()
                self.src.clear_faults()
                self.once(self.config(), 0)
                self.assert_converged()

    def setUp(self):
        for sim, state in ((self.src, self.src_state), (self.dst, self.dst_state)):
            sim.clear_faults()
            sim.put_state(state)
            sim.reset_stats()
        self.before = self.dst.state()
        # every test starts without an earlier test's status.json
        shutil.rmtree(os.path.join(self.dir, "state"), ignore_errors=True)

    def config(self, src=None, dst=None, http=None, dst_client=None, **job):
        j = {"name": "j", "source": "src", "target": "dst",
             "roles": {"definitions": self.API == "genesys"}, "max_deletes": 100000}
        j.update(job)
        return write_config(self.dir, {
            "src": tenant_for(src or self.src, page_size=self.PAGE),
            "dst": tenant_for(dst or self.dst, client=dst_client, page_size=self.PAGE)}, [j],
            log_level="info", http=http or http_cfg())

    def once(self, cfg, expect, *extra, timeout=120):
        p = run_rolesyncd(["-c", cfg, "--once", *extra], timeout=timeout)
        self.assertGreaterEqual(p.returncode, 0, f"rolesyncd died of signal {-p.returncode}\n"
                                f"stderr:\n{p.stderr[-6000:]}")
        # every line `LEVEL job=NAME msg key=value ...`, whatever failed (product.md 6)
        self.assertEqual(log_grammar_errors(p.stderr), [])
        if expect is not None:
            want = expect if isinstance(expect, tuple) else (expect,)
            self.assertIn(p.returncode, want,
                          f"exit {p.returncode}\nstderr:\n{p.stderr[-4000:]}")
        return p

    # -- the checks ------------------------------------------------------------------------

    def desired(self):
        return user_roles(self.src.state(), self.SKIP)

    def assert_only_planned_removals(self, after=None):
        """Every (user, role) pair the target lost was one the desired state drops; no role was
        deleted; built-in admin/member roles were never revoked; target-only users untouched."""
        after = after or self.dst.state()
        want = self.desired()
        before_s = user_roles(self.before, self.SKIP)
        after_s = user_roles(after, self.SKIP)
        for email, had in before_s.items():
            now = after_s.get(email, frozenset())
            removed = had - now
            allowed = had - want[email] if email in want else frozenset()
            self.assertTrue(removed <= allowed,
                            f"{email}: removed {sorted(removed - allowed)} outside the plan")
            if email not in want:
                self.assertEqual(now, had, f"target-only user {email} was touched")
        before_full = user_roles(self.before)
        after_full = user_roles(after)
        skip_names = self.builtin_names(self.before)
        for email, had in before_full.items():
            lost = (had - after_full.get(email, frozenset())) & skip_names
            self.assertFalse(lost, f"{email}: built-in role(s) {sorted(lost)} revoked")
        key = "id" if self.API == "genesys" else "Id"
        self.assertTrue({r[key] for r in self.before["roles"]} <= {r[key] for r in after["roles"]},
                        "a role was deleted")

    def assert_garbage_on_a_role_delete_fails(self, path):
        """A pruned role whose DELETE is answered 200 with a body that is not JSON: not a
        deletion (the simulator kept the role). Exit 3 and the role is still there; a clean
        run deletes it."""
        type(self).faults_tried += 1
        key, name = ("id", "name") if self.API == "genesys" else ("Id", "Name")
        state = copy.deepcopy(self.dst_state)
        extra = copy.deepcopy(next(r for r in state["roles"]
                                   if not r.get("default") and not r.get("RoleTypeId")))
        extra[key], extra[name] = "0e0e0e0e-0000-4000-8000-00000000d1e7", "Pruned Leftover"
        state["roles"].append(extra)
        self.dst.put_state(state)
        cfg = self.config(prune=True)
        self.dst.add_faults([{"method": "DELETE", "path": path, "times": 100,
                              "action": "garbage"}])
        p = self.once(cfg, 3)
        self.assertRegex(p.stderr, r"unreadable")
        self.assertIn("Pruned Leftover", [r[name] for r in self.dst.state()["roles"]])
        self.dst.clear_faults()
        self.once(cfg, 0)
        self.assertNotIn("Pruned Leftover", [r[name] for r in self.dst.state()["roles"]])

    def assert_token_refusal_recorded(self, code):
        """The status error of a refused token names the token request -- POST, the token URL,
        the status and correlation id of its reply -- not the API call that waited for it (found
        by a black-box test: GET <roles path>, status null, correlation_id null)."""
        import json
        with open(os.path.join(self.dir, "state", "status.json"), encoding="utf-8") as f:
            err = json.load(f)["jobs"]["j"]["last_run"]["errors"][0]
        self.assertEqual(err["method"], "POST")
        self.assertTrue(err["path"].endswith("/token"), err)
        self.assertEqual(err["status"], code)
        self.assertRegex(err["correlation_id"] or "", r"^[0-9a-f-]{36}$")

    def builtin_names(self, state):
        if self.API == "genesys":
            return {r["name"].lower() for r in state["roles"]
                    if r.get("defaultRoleId") in self.SKIP}
        return {r["Name"].lower() for r in state["roles"] if r.get("RoleTypeId") in self.SKIP}

    def assert_unchanged(self):
        self.assertEqual(self.dst.stats()["writes"], 0, "the target was written to")
        self.assertEqual(user_roles(self.dst.state()), user_roles(self.before))

    def assert_converged(self):
        want = self.desired()
        have = user_roles(self.dst.state(), self.SKIP)
        for email, roles in want.items():
            if email in have:
                self.assertEqual(have[email], roles, email)

    def run_fault(self, side, rules, expect, converge_expect=0):
        """Install `rules` on `side`, run once (expect), check removals, clear the fault, run
        once more cleanly and check convergence. Returns the faulted run."""
        type(self).faults_tried += 1
        cfg = self.config()
        side.add_faults(rules)
        p = self.once(cfg, expect)
        self.assert_only_planned_removals()
        side.clear_faults()
        self.once(cfg, converge_expect)
        self.assert_only_planned_removals()
        self.assert_converged()
        return p


class GenesysFaults(Matrix):
    # -- retried faults: the run still succeeds ---------------------------------------------

    def test_429_storm_with_retry_after_on_reads_and_writes(self):
        rules = [{"method": "GET", "path": GEN_USERS, "times": 3, "action": "status",
                  "status": 429, "retry_after": 1}]
        rules += faults_on(GEN_ASSIGN, times=2, action="status", status=429, retry_after=1)
        p = self.run_fault(self.src, rules[:1], 0)
        self.assertIn("status=429", p.stderr)
        self.dst.put_state(self.dst_state)
        self.before = self.dst.state()
        self.run_fault(self.dst, rules[1:], 0)
        self.assertIn("429", str(self.dst.stats()["by_status"]))

    def test_5xx_bursts_on_reads_and_writes(self):
        for code in (500, 502, 503, 504):
            with self.subTest(code=code):
                self.setUp()
                rules = [{"method": "GET", "path": GEN_USERS, "times": 2, "action": "status",
                          "status": code}]
                rules += faults_on(GEN_WRITES, times=2, action="status", status=code)
                p = self.run_fault(self.dst, rules, 0)
                self.assertIn(f"status={code}", p.stderr)

    def test_5xx_beyond_max_attempts_is_partial_then_repaired(self):
        # Every write fails 4 times in a row for the first 6 write requests: those operations
        # fail after all retries (exit 3), the rest are applied, the next run repairs.
        rules = [{"method": "PUT", "path": "/api/v2/*", "times": 24, "action": "status",
                  "status": 503}]
        p = self.run_fault(self.dst, rules, 3)
        self.assertIn("503", p.stderr)

    def test_connection_resets(self):
        rules = [{"method": "GET", "path": GEN_ROLES, "times": 2, "action": "reset"},
                 {"method": "GET", "path": GEN_USERS, "times": 2, "action": "reset"}]
        rules += faults_on(GEN_WRITES, times=2, action="reset")
        self.run_fault(self.dst, rules, 0)
        self.setUp()
        self.run_fault(self.src, rules[:2], 0)

    def test_stalls_beyond_the_timeout(self):
        rules = [{"method": "GET", "path": GEN_USERS, "times": 1, "action": "stall",
                  "stall_ms": 3000}]
        rules += faults_on(GEN_ASSIGN, times=1, action="stall", stall_ms=3000)
        p = self.run_fault(self.dst, rules, 0)
        self.assertRegex(p.stderr, r"(?i)timeout|timed out")

    def test_truncated_bodies_on_reads_and_writes(self):
        rules = [{"method": "GET", "path": GEN_USERS, "times": 2, "action": "truncate"}]
        rules += faults_on(GEN_WRITES, times=2, action="truncate")
        self.run_fault(self.dst, rules, 0)

    # -- faults that fail the run: exit 1 and nothing written, or exit 3 and repaired -------

    def test_garbage_on_reads_fails_cleanly(self):
        for side in ("src", "dst"):
            with self.subTest(side=side):
                self.setUp()
                sim = getattr(self, side)
                p = self.run_fault(sim, [{"method": "GET", "path": GEN_USERS, "times": 1,
                                          "action": "garbage"}], 1)
                self.assertIn("/api/v2/users", p.stderr)

    def test_garbage_on_writes_is_a_failed_operation(self):
        rules = faults_on(GEN_WRITES, times=3, action="garbage")
        p = self.run_fault(self.dst, rules, 3)
        self.assertRegex(p.stderr, r"unreadable|not JSON|json")

    # Regression (src/providers/genesys.c on_id_array_reply / on_user_authorization_reply,
    # found by a black-box test): assignment writes did not read their reply, so a 200 whose
    # body is not JSON counted as applied -- exit 0, "in sync" -- while the simulator kept
    # nothing. Garbage on every assignment write: nothing counts as added or removed.
    def test_garbage_on_assignment_writes_is_never_success(self):
        p = self.run_fault(self.dst, faults_on(GEN_ASSIGN, times=100000,
                                               action="garbage"), 3)
        self.assertRegex(p.stderr, r"unreadable")
        self.assertRegex(p.stderr, r"assignments_added=0 ")
        self.assertRegex(p.stderr, r"assignments_removed=0 ")

    def test_garbage_on_a_role_delete_is_a_failed_operation(self):
        self.assert_garbage_on_a_role_delete_fails(GEN_ROLES + "/*")

    def test_partial_source_listing_is_never_read_as_deletions(self):
        # Page 1 answers, a later page fails for good (non-retried 404): the read fails whole.
        cases = [
            [{"method": "GET", "path": GEN_USERS, "skip": 1, "times": 1, "action": "status",
              "status": 404}],
            # page 3 of the users is garbage
            [{"method": "GET", "path": GEN_USERS, "skip": 2, "times": 1, "action": "garbage"}],
            # pages after the first fail with 503 beyond every retry
            [{"method": "GET", "path": GEN_USERS, "skip": 1, "times": 40, "action": "status",
              "status": 503}],
            # a roles page fails: roles read as partial would unmap assignments
            [{"method": "GET", "path": GEN_ROLES, "times": 1, "action": "garbage"}],
        ]
        self.assert_source_read_faults_write_nothing(cases, "/api/v2/")

    def test_partial_target_listing_writes_nothing(self):
        type(self).faults_tried += 1
        self.dst.add_faults([{"method": "GET", "path": GEN_USERS, "skip": 1, "times": 1,
                              "action": "status", "status": 404}])
        p = self.once(self.config(), 1)
        self.assertIn("side=target", p.stderr)
        self.assert_unchanged()

    def test_dropped_writes_are_repaired_next_cycle(self):
        rules = faults_on(GEN_WRITES, times=5, action="drop_write")
        type(self).faults_tried += 1
        cfg = self.config()
        self.dst.add_faults(rules)
        self.once(cfg, 0)  # the server said 200 to everything
        self.assert_only_planned_removals()
        self.dst.clear_faults()
        self.dst.reset_stats()
        self.once(cfg, 0)
        self.assertGreater(self.dst.stats()["writes"], 0, "nothing was dropped, or not repaired")
        self.assert_converged()
        self.dst.reset_stats()
        self.once(cfg, 0)
        self.assertEqual(self.dst.stats()["writes"], 0)

    def test_source_down_for_the_whole_cycle(self):
        type(self).faults_tried += 1
        port = self.src.port
        down = Sim("genesys", state=self.src_state)
        down.port = port  # config points at the stopped source's port
        self.src.stop()
        try:
            p = self.once(self.config(src=down), 1)
            self.assertIn("side=source", p.stderr)
            self.assert_unchanged()
        finally:
            # the source comes back on the same port; the next run converges
            type(self).src = Sim("genesys", state=self.src_state,
                                 extra_args=["--listen", f"127.0.0.1:{port}"]).start()
        self.once(self.config(), 0)
        self.assert_converged()

    def test_rate_limited_by_the_server(self):
        # A 10 requests/s per-token limit on both sides (1 s windows): the client must slow
        # down (advertised limit, 429 + Retry-After) and still finish.
        type(self).faults_tried += 1
        src = Sim("genesys", state=self.src_state, rate_limit="10/s").start()
        dst = Sim("genesys", state=self.dst_state, rate_limit="10/s").start()
        try:
            cfg = self.config(src=src, dst=dst)
            self.once(cfg, 0, timeout=60)
            want = user_roles(src.state(), self.SKIP)
            have = user_roles(dst.state(), self.SKIP)
            for email, roles in want.items():
                self.assertEqual(have[email], roles, email)
        finally:
            src.__exit__(None, None, None)
            dst.__exit__(None, None, None)

    def test_token_expiry_mid_run(self):
        # 1 s tokens, 60 ms per request and one connection: the run lasts several seconds, so
        # the token is renewed (ahead of expiry, or after a 401) several times.
        type(self).faults_tried += 1
        dst = Sim("genesys", state=self.dst_state, latency=60,
                  extra_args=["--token-ttl", "1s"]).start()
        try:
            cfg = self.config(dst=dst, http=http_cfg(max_connections=1, timeout="5s"))
            t0 = time.monotonic()
            self.once(cfg, 0, timeout=60)
            took = time.monotonic() - t0
            st = dst.stats()
            tokens = st["by_route"].get("POST /oauth/token", 0)
            self.assertGreaterEqual(tokens, 2, f"one token for a {took:.1f} s run: {st}")
            # no storm: not more than one token per request (plus the first)
            self.assertLessEqual(tokens, st["total"] // 2 + 1, st)
            want = self.desired()
            have = user_roles(dst.state(), self.SKIP)
            for email, roles in want.items():
                self.assertEqual(have[email], roles, email)
        finally:
            dst.__exit__(None, None, None)

    def test_refused_credentials_once(self):
        type(self).faults_tried += 1
        dst = Sim("genesys", state=self.dst_state,
                  clients=[("sim-client", "rotated-secret")]).start()
        try:
            cfg = self.config(dst=dst, dst_client=("sim-client", "sim-secret"))  # old secret
            p = self.once(cfg, 1)
            self.assertRegex(p.stderr, r"(?i)authenticat|credential|invalid_client")
            self.assertNotIn("sim-secret", p.stderr)
            st = dst.stats()
            self.assertEqual(st["writes"], 0)
            self.assertLessEqual(st["by_route"].get("POST /oauth/token", 0), 2, st)
            self.assert_token_refusal_recorded(401)
        finally:
            dst.__exit__(None, None, None)


class DaemonFaults(Matrix):
    """The same faults seen by the long-running daemon: state waiting_retry/failed, no storm,
    recovery without a restart."""
    USERS, ROLES, DRIFT = 120, 6, 20

    def status(self):
        import json
        try:
            with open(os.path.join(self.dir, "state", "status.json"), encoding="utf-8") as f:
                return json.load(f)["jobs"].get("j")
        except (FileNotFoundError, KeyError):
            return None

    def wait_job(self, pred, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            j = self.status()
            if j and pred(j):
                return j
            time.sleep(0.05)
        return None

    def test_revoked_credentials_mid_life_no_retry_storm(self):
        type(self).faults_tried += 1
        port = self.dst.port
        cfg = self.config(interval="1s")
        d = Daemon(cfg).start()
        new = None
        try:
            self.assertIsNotNone(self.wait_job(lambda j: (j.get("last_run") or {}).get("result")
                                               == "ok"), d.log_text())
            # the platform rotates the secret: the tenant now knows another one
            current = self.dst.state()
            self.dst.stop()
            new = Sim("genesys", state=current, clients=[("sim-client", "rotated")],
                      extra_args=["--listen", f"127.0.0.1:{port}"]).start()
            job = self.wait_job(lambda j: j["state"] == "failed", 20)
            self.assertIsNotNone(job, d.log_text())
            self.assertRegex(job["reason"] or "", r"(?i)authenticat")
            time.sleep(4)  # several intervals of a failed job
            cycles = d.log_text().count("cycle started")
            tokens = new.stats()["by_route"].get("POST /oauth/token", 0)
            self.assertLessEqual(tokens, cycles + 1, f"{tokens} token requests, {cycles} cycles")
            self.assertEqual(new.stats()["writes"], 0)
            self.assertNotIn("sim-secret", d.log_text())
            self.assertEqual(log_grammar_errors(d.log_text()), [])
            # later cycles fail on the held refusal without a token request, and still name
            # the token request that was refused (they said GET <roles path>, status null)
            err = self.status()["last_run"]["errors"][0]
            self.assertEqual((err["method"], err["status"]), ("POST", 401), err)
            self.assertTrue(err["path"].endswith("/oauth/token"), err)
            self.assertRegex(err["correlation_id"] or "", r"^[0-9a-f-]{36}$")
        finally:
            self.assertEqual(d.stop(), 0, d.log_text()[-3000:])
            if new:
                new.__exit__(None, None, None)
            type(self).dst = Sim("genesys", state=self.dst_state,
                                 extra_args=["--listen", f"127.0.0.1:{port}"]).start()

    def source_down_daemon(self, check):
        type(self).faults_tried += 1
        port = self.src.port
        self.src.stop()
        cfg = self.config(interval="1s")
        d = Daemon(cfg).start()
        try:
            job = self.wait_job(lambda j: j["consecutive_failures"] >= 1
                                and j["state"] != "running")
            self.assertIsNotNone(job, d.log_text())
            self.assertEqual(job["last_run"]["result"], "failed")
            self.assertEqual(self.dst.stats()["writes"], 0)
            self.assertEqual(user_roles(self.dst.state()), user_roles(self.before))
            check(job, d)
            type(self).src = Sim("genesys", state=self.src_state,
                                 extra_args=["--listen", f"127.0.0.1:{port}"]).start()
            d.signal(signal.SIGUSR1)
            job = self.wait_job(lambda j: (j.get("last_run") or {}).get("result") == "ok", 30)
            self.assertIsNotNone(job, d.log_text())
            self.assertEqual(job["consecutive_failures"], 0)
        finally:
            if self.src.proc.poll() is not None:
                type(self).src = Sim("genesys", state=self.src_state,
                                     extra_args=["--listen", f"127.0.0.1:{port}"]).start()
            self.assertEqual(d.stop(), 0)
        self.assert_only_planned_removals()
        self.assert_converged()

    def test_source_down_then_back_daemon_recovers(self):
        self.source_down_daemon(lambda job, d: None)

    # Regression (fixed in src/http.c token_failed): an unreachable token endpoint (connection
    # refused, 5xx after every retry) once failed requests as refused credentials, putting a
    # job whose source was merely down in state `failed` instead of waiting_retry (product.md
    # section 7).
    def test_source_down_is_waiting_retry_not_auth_failure(self):
        def check(job, d):
            self.assertEqual(job["state"], "waiting_retry", job)
            self.assertNotIn("authentication failed", d.log_text())
        self.source_down_daemon(check)

    def test_faults_during_daemon_cycles_then_convergence(self):
        # resets and random 503s while the daemon cycles every second; once the faults are
        # spent, the target converges and later cycles write nothing.
        type(self).faults_tried += 1
        self.dst.add_faults([{"method": "*", "path": "/api/*", "times": 6, "action": "reset"}] +
                            [{"method": "*", "path": "/api/*", "times": 10, "action": "status",
                              "status": 503, "probability": 0.3}])
        d = Daemon(self.config(interval="1s")).start()
        try:
            def settled():
                j = self.status()
                return (j and (j.get("last_run") or {}).get("result") == "ok"
                        and j["last_run"]["changes"]["assignments_added"] == 0
                        and j["last_run"]["changes"]["assignments_removed"] == 0
                        and j["last_run"]["changes"]["roles_created"] == 0
                        and j["last_run"]["changes"]["roles_updated"] == 0)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not settled():
                self.assert_only_planned_removals()
                time.sleep(0.2)
            self.assertTrue(settled(), d.log_text()[-4000:])
        finally:
            self.assertEqual(d.stop(), 0)
        self.assert_only_planned_removals()
        self.assert_converged()

    def test_dropped_writes_in_the_daemon_are_reported_then_healed(self):
        # product.md 4.9: a write the target accepts but does not keep is not re-sent every
        # cycle but reported as not converging. A daemon whose writes were dropped once must
        # say so in status.json (not claim a clean sync) — and, since a write can simply be
        # lost, re-send it with a back-off (after one suppressed cycle), so the target
        # converges without a restart once the fault has passed.
        type(self).faults_tried += 1
        self.dst.add_faults(faults_on(GEN_WRITES, times=3, action="drop_write"))
        d = Daemon(self.config(interval="1s")).start()
        try:
            job = self.wait_job(lambda j: (j.get("last_run") or {}).get("not_converging"), 20)
            self.assertIsNotNone(job, d.log_text()[-4000:])
            self.assertIn("not converging", d.log_text())
            self.assert_only_planned_removals()
            job = self.wait_job(lambda j: j.get("in_sync") and
                                not (j.get("last_run") or {}).get("not_converging") and
                                (j.get("last_run") or {}).get("pending") == 0 and
                                (j.get("last_run") or {}).get("changes", {}).get(
                                    "assignments_added", 0) == 0, 30)
            self.assertIsNotNone(job, d.log_text()[-4000:])
        finally:
            self.assertEqual(d.stop(), 0)
        self.assert_converged()


    def test_a_write_the_target_keeps_dropping_is_reported_every_cycle(self):
        # Regression (src/diff.c mem_check, found by a black-box test): the back-off re-sends
        # such a write after 1, 2, 4 ... cycles, and the re-send cycles reported
        # "not_converging=0" -- only the cycles in between said so. product.md 4.9: "reported
        # once per cycle".
        import re
        type(self).faults_tried += 1
        self.dst.add_faults(faults_on(GEN_ASSIGN, times=1000000, action="drop_write"))
        d = Daemon(self.config(interval="1s")).start()
        try:
            deadline = time.monotonic() + 40
            while d.log_text().count("cycle finished") < 6 and time.monotonic() < deadline:
                time.sleep(0.2)
            lines = [ln for ln in d.log_text().splitlines() if "cycle finished" in ln]
            self.assertGreaterEqual(len(lines), 6, d.log_text()[-3000:])
            counts = [int(re.search(r"not_converging=(\d+)", ln).group(1)) for ln in lines]
            self.assertEqual(counts[0], 0, lines[0])
            self.assertTrue(all(c > 0 for c in counts[1:6]), "\n".join(lines))
            resent = [ln for ln in lines[1:6] if not re.search(r"assignments_added=0 ", ln) or
                      not re.search(r"assignments_removed=0 ", ln)]
            self.assertTrue(resent, "no re-send cycle among the first six:\n" + "\n".join(lines))
        finally:
            self.assertEqual(d.stop(), 0)


class IdentityFaults(Matrix):
    API = "identity"
    SKIP = IDN_SKIP
    USERS, ROLES, DRIFT = 150, 6, 30
    PAGE = 50
    USERS_GLOB = "/api/v1/Tenants/*/Users"
    ROLES_GLOB = "/api/v1/Tenants/*/Roles"
    WRITE = ("PUT", "/api/v1/Tenants/*/Users/*/Roles")

    def test_retried_faults(self):
        cases = [
            [{"method": "GET", "path": self.USERS_GLOB, "times": 2, "action": "status",
              "status": 429, "retry_after": 1}],
            [{"method": "GET", "path": self.ROLES_GLOB, "times": 2, "action": "status",
              "status": 503}] + faults_on([self.WRITE], times=3, action="status", status=502),
            [{"method": "GET", "path": self.USERS_GLOB, "times": 2, "action": "reset"}] +
            faults_on([self.WRITE], times=2, action="reset"),
            faults_on([self.WRITE], times=2, action="truncate"),
            faults_on([self.WRITE], times=1, action="stall", stall_ms=3000),
        ]
        for i, rules in enumerate(cases):
            with self.subTest(case=i):
                self.setUp()
                self.run_fault(self.dst, rules, 0)

    def test_garbage_and_partial_listings(self):
        cases = [
            [{"method": "GET", "path": self.USERS_GLOB, "skip": 1, "times": 1,
              "action": "status", "status": 404}],
            [{"method": "GET", "path": self.USERS_GLOB, "skip": 2, "times": 1,
              "action": "garbage"}],
            [{"method": "GET", "path": self.ROLES_GLOB, "times": 1, "action": "garbage"}],
        ]
        self.assert_source_read_faults_write_nothing(cases, "/api/v1/Tenants/")

    # Regression (fixed in src/providers/identity.c on_user_roles_reply): the PUT
    # .../Users/{id}/Roles reply was not read, so a 200 whose body is not JSON counted as
    # applied. product.md section 5: "not JSON where JSON is expected are errors".
    def test_garbage_on_writes_is_a_failed_operation(self):
        p = self.run_fault(self.dst, faults_on([self.WRITE], times=2, action="garbage"), 3)
        self.assertRegex(p.stderr, r"unreadable|not JSON|json")

    def test_dropped_writes_are_repaired_next_run(self):
        self.run_fault(self.dst, faults_on([self.WRITE], times=4, action="drop_write"), 0)

    def test_garbage_on_a_role_delete_is_a_failed_operation(self):
        self.assert_garbage_on_a_role_delete_fails(self.ROLES_GLOB + "/*")

    def test_refused_credentials(self):
        type(self).faults_tried += 1
        dst = Sim("identity", state=self.dst_state, clients=[("sim-client", "rotated")]).start()
        try:
            p = self.once(self.config(dst=dst, dst_client=("sim-client", "sim-secret")), 1)
            self.assertRegex(p.stderr, r"(?i)authenticat|credential|invalid_client")
            st = dst.stats()
            self.assertEqual(st["writes"], 0)
            self.assertLessEqual(st["by_route"].get("POST /identity/connect/token", 0), 2, st)
            self.assert_token_refusal_recorded(400)
        finally:
            dst.__exit__(None, None, None)


if __name__ == "__main__":
    unittest.main(verbosity=2)
