"""Crash safety (product.md sections 4.9 and 6): `kill -9` rolesyncd at random points of a large
mirror, 20 times, restarting it each time.

Two genesys tenantsims with 3,000 users and 25 ms latency per request, two connections per
tenant, so a cycle (about 70 batched writes: the daemon groups assignment changes per role) lasts
about a second and can be cut in the middle. Every round starts the daemon (or a --once run,
every fourth round), kills it with SIGKILL after a random delay drawn from a fixed seed, and
checks that status.json is valid JSON (or does not exist yet) and that no temporary file piles up
in the state directory. Every fifth round the target is put back to a drifted fixture so later
kills again land in the middle of real work; the other rounds restart on whatever the killed run
left. At the end one clean --once must exit 0, the target must equal the desired state exactly
(user by user), and a second run must write nothing.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from rsconfig import tenant_for, user_roles, write_config, custom_roles, policies_canon
from simlib import Sim, binary, gen, run_rolesyncd

SKIP = ("employee", "admin")
ROUNDS = 20
SEED = 20261122


class CrashSafety(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="crash-")
        self.state_dir = os.path.join(self.dir, "state")
        s = gen("genesys", 3000, 24, seed=41)
        self.targets = [gen("genesys", same_as=s, seed=42, drift=60, edit_roles=4),
                        gen("genesys", same_as=s, seed=43, drift=60,
                            no_custom_roles=True)]
        self.src_state = s
        self.src = Sim("genesys", state=s, latency=25).start()
        self.dst = Sim("genesys", state=self.targets[0], latency=25).start()
        self.cfg = write_config(
            self.dir, {"src": tenant_for(self.src), "dst": tenant_for(self.dst)},
            [{"name": "big", "source": "src", "target": "dst", "interval": "1h",
              "roles": {"definitions": True}, "max_deletes": 1000000}],
            state_dir=self.state_dir, log_level="warning",
            http={"rate_limit": "0", "max_connections": 2,
                  "retry": {"max_attempts": 4, "initial_delay": "100ms", "max_delay": "500ms"}})

    def tearDown(self):
        for s in (self.src, self.dst):
            s.__exit__(None, None, None)
        shutil.rmtree(self.dir, ignore_errors=True)

    def check_status_file(self, where):
        path = os.path.join(self.state_dir, "status.json")
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            return "missing"
        try:
            doc = json.loads(text)
        except ValueError as e:
            self.fail(f"{where}: status.json is not valid JSON ({e}): {text[:300]!r}")
        self.assertEqual(doc.get("schema_version"), 1, where)
        self.assertIn("jobs", doc, where)
        return "valid"

    def start(self, once):
        args = [binary("ROLESYNCD"), "-c", self.cfg] + (["--once"] if once else [])
        log = open(os.path.join(self.dir, "run.log"), "ab")
        try:
            return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=log)
        finally:
            log.close()

    def test_kill_9_at_random_points_then_converge(self):
        rng = random.Random(SEED)
        # How long does one full cycle take here? Measure one --once on the drifted target,
        # then put the drift back: kill delays are drawn within that span.
        t0 = time.monotonic()
        p = run_rolesyncd(["-c", self.cfg, "--once"], timeout=300)
        span = time.monotonic() - t0
        self.assertIn(p.returncode, (0, 3), p.stderr[-3000:])
        self.assertGreater(span, 0.3, "the cycle is too short to be interrupted")
        self.dst.put_state(self.targets[0])

        survived = killed_mid_write = valid = missing = 0
        for rnd in range(ROUNDS):
            if rnd % 5 == 0 and rnd:
                self.dst.put_state(self.targets[(rnd // 5) % 2])
            once = rnd % 4 == 3
            delay = rng.uniform(0.05, span * 1.1)
            writes_before = self.dst.stats()["writes"]
            proc = self.start(once)
            time.sleep(delay)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            rc = proc.wait(30)
            where = f"round {rnd} (delay {delay:.2f}s, {'--once' if once else 'daemon'})"
            self.assertTrue(rc == -signal.SIGKILL or (once and rc in (0, 3)),
                            f"{where}: exit {rc}")
            if self.dst.stats()["writes"] > writes_before and rc == -signal.SIGKILL:
                killed_mid_write += 1
            if self.check_status_file(where) == "valid":
                valid += 1
            else:
                missing += 1
            leftovers = [n for n in os.listdir(self.state_dir)
                         if n not in ("status.json",) and not n.endswith(".prom")]
            self.assertLessEqual(len(leftovers), 2, f"{where}: files pile up: {leftovers}")
            survived += 1

        # A final clean cycle converges exactly.
        p = run_rolesyncd(["-c", self.cfg, "--once"], timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        self.check_status_file("after the final run")
        want = user_roles(self.src.state(), SKIP)
        have = user_roles(self.dst.state(), SKIP)
        for email, roles in want.items():
            self.assertEqual(have.get(email), roles, email)
        src_roles, dst_roles = custom_roles(self.src.state()), custom_roles(self.dst.state())
        for name, role in src_roles.items():
            self.assertIn(name, dst_roles)
            self.assertEqual(policies_canon(role), policies_canon(dst_roles[name]), name)
        self.dst.reset_stats()
        p = run_rolesyncd(["-c", self.cfg, "--once"], timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        self.assertEqual(self.dst.stats()["writes"], 0, "not converged: the next run wrote")
        print(f"\ncrash safety: {survived}/{ROUNDS} kill -9 restarts survived, "
              f"{killed_mid_write} killed while writing, status.json valid after {valid} kills "
              f"(absent after {missing}), cycle span {span:.2f}s", flush=True)
        self.assertEqual(survived, ROUNDS)
        self.assertGreater(killed_mid_write, 0, "no kill landed during the writes")


if __name__ == "__main__":
    unittest.main(verbosity=2)
