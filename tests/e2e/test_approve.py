"""Approved plans (product.md 4c) end to end: a plan refused by max_deletes prints, logs and
records the fingerprint of its deletion set; `--once --approve FINGERPRINT` applies the fresh
plan only when its deletions are among the approved ones (else refuses again, naming the new
ones, writing nothing); `--approve` without --once has the running daemon do it, once. Every
check of what was applied reads the target simulator's state or its request counts.
"""

import json
import os
import re
import shutil
import signal
import tempfile
import time
import unittest

from daemon_fixture import wait_until
from rsconfig import tenant_for, user_grants, write_config
from simlib import Daemon, Sim, gen, log_grammar_errors, run_rolesyncd

FP_RE = re.compile(r"! fingerprint (sha256:[0-9a-f]{64}) of these (\d+) deletions")
MAX_DELETES = 2


class ApproveCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="approve-")
        self.sims = []
        s = gen("genesys", 20, 4, seed=41)
        t = gen("genesys", seed=42, same_as=s, drift=0)
        self.src = self.sim(s)
        self.dst = self.sim(t)
        self.assertEqual(user_grants(self.src.state()), user_grants(self.dst.state()),
                         "fixture: the target should start in sync")
        self.state_dir = os.path.join(self.dir, "state")

    def tearDown(self):
        for s in self.sims:
            s.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def sim(self, state):
        s = Sim("genesys", state=state)
        s.start()
        self.sims.append(s)
        return s

    def config(self, **job):
        j = {"name": "job1", "source": "src", "target": "dst", "max_deletes": MAX_DELETES}
        j.update(job)
        return write_config(self.dir, {"src": tenant_for(self.src), "dst": tenant_for(self.dst)},
                            [j], log_level="info",
                            http={"rate_limit": "0", "retry": {"max_attempts": 3,
                                                               "initial_delay": "100ms",
                                                               "max_delay": "500ms"}})

    def rs(self, cfg, *args, expect=None):
        p = run_rolesyncd(["-c", cfg, *args])
        if expect is not None:
            self.assertEqual(p.returncode, expect,
                             f"exit {p.returncode}\nstdout:\n{p.stdout[-3000:]}\n"
                             f"stderr:\n{p.stderr[-3000:]}")
        return p

    def status(self):
        with open(os.path.join(self.state_dir, "status.json"), encoding="utf-8") as f:
            return json.load(f)

    def extra_grants(self, users):
        """Give target users (by index) a custom role their source twin lacks, in the home
        division: each is one removal a mirror plans. Returns [(email, role name)]."""
        t = self.dst.state()
        src = user_grants(self.src.state())
        customs = [r for r in t["roles"] if not r.get("defaultRoleId")]
        added = []
        for i in users:
            u = t["users"][i]
            have = src[u["email"].lower()]
            role = next(r for r in customs if (r["name"].lower(), "home") not in have
                        and r["id"] not in u["roles"])
            u["roles"].append(role["id"])
            added.append((u["email"], role["name"]))
        self.dst.put_state(t)
        return added

    def refuse(self, cfg, *extra):
        """One refused --once run: (fingerprint, deletions, stdout, stderr)."""
        p = self.rs(cfg, "--once", *extra, expect=4)
        m = FP_RE.search(p.stdout)
        self.assertIsNotNone(m, p.stdout)
        return m.group(1), int(m.group(2)), p.stdout, p.stderr


class OnceApprove(ApproveCase):
    def test_approved_fingerprint_applies_exactly_those_deletions(self):
        added = self.extra_grants([0, 1, 2, 3])
        cfg = self.config()
        self.dst.reset_stats()
        fp, n, out, err = self.refuse(cfg)
        self.assertEqual(n, 4)
        self.assertEqual(self.dst.stats()["writes"], 0, "a refused plan wrote")
        # printed with the plan, logged on the refusal line, recorded in status.json
        self.assertIn(f"--once --approve {fp} --job job1", out)
        line = next(ln for ln in err.splitlines() if "plan refused" in ln)
        self.assertIn(f" fingerprint={fp} ", line)
        self.assertIn(f"--once --force-deletes --job job1", line)  # still offered
        self.assertEqual(log_grammar_errors(err), [])
        run = self.status()["jobs"]["job1"]["last_run"]
        self.assertEqual(run["refusal"], {"deletions": 4, "max_deletes": MAX_DELETES,
                                          "fingerprint": fp, "not_approved": 0})
        self.assertIsNone(run["approved"])
        refused = os.path.join(self.state_dir, "refused", "job1.json")
        self.assertEqual(oct(os.stat(refused).st_mode & 0o777), "0o640")

        # stable: a second refusing run of the same state has the same fingerprint
        fp2, _, _, _ = self.refuse(cfg)
        self.assertEqual(fp2, fp)
        # --status shows it
        p = self.rs(cfg, "--status", expect=0)
        self.assertIn(fp, p.stdout)

        # approved (the job found by its refusal; the fingerprint in upper case is the same)
        p = self.rs(cfg, "--once", "--approve", fp.upper().replace("SHA256:", "sha256:"),
                     expect=0)
        self.assertEqual(user_grants(self.dst.state()), user_grants(self.src.state()))
        for email, role in added:
            self.assertNotIn((role.lower(), "home"), user_grants(self.dst.state())[email.lower()])
        self.assertIn("plan approved", p.stderr)
        run = self.status()["jobs"]["job1"]["last_run"]
        self.assertEqual((run["result"], run["approved"], run["refusal"]), ("ok", fp, None))
        self.assertEqual(run["changes"]["assignments_removed"], 4)
        # in sync now: the next plain run has nothing to do
        self.dst.reset_stats()
        self.rs(cfg, "--once", expect=0)
        self.assertEqual(self.dst.stats()["writes"], 0)

    def test_a_deletion_added_after_review_is_refused_and_named(self):
        self.extra_grants([0, 1, 2])
        cfg = self.config()
        fp, n, _, _ = self.refuse(cfg)
        self.assertEqual(n, 3)
        before = user_grants(self.dst.state())
        # between review and approval, one more removal appears
        (email, role), = self.extra_grants([7])
        self.dst.reset_stats()
        fp_new, n_new, out, err = self.refuse(cfg, "--approve", fp, "--job", "job1")
        self.assertEqual(self.dst.stats()["writes"], 0, "a plan beyond its approval wrote")
        self.assertEqual(n_new, 4)
        self.assertNotEqual(fp_new, fp)
        not_approved = [ln for ln in out.splitlines() if ln.startswith("! not approved: ")]
        self.assertEqual(not_approved, [f'! not approved: - user {email} role "{role}"'], out)
        self.assertIn("deletion not in the approval", err)
        self.assertEqual(log_grammar_errors(err), [])
        run = self.status()["jobs"]["job1"]["last_run"]
        self.assertEqual(run["refusal"]["not_approved"], 1)
        self.assertEqual(run["refusal"]["fingerprint"], fp_new)
        after = user_grants(self.dst.state())
        before[email.lower()] = after[email.lower()]  # the grant added above
        self.assertEqual(after, before)

        # a deletion that went away meanwhile is fine: the rest is still a subset
        t = self.dst.state()
        u = next(x for x in t["users"] if x["email"] == email)
        u["roles"] = [r for r in u["roles"]
                      if r != next(x["id"] for x in t["roles"] if x["name"] == role)]
        self.dst.put_state(t)
        self.rs(cfg, "--once", "--approve", fp, "--job", "job1", expect=0)
        self.assertEqual(user_grants(self.dst.state()), user_grants(self.src.state()))

    def test_a_pruned_role_and_its_holders_are_approved_together(self):
        t = self.dst.state()
        base = next(r for r in t["roles"] if not r.get("defaultRoleId"))
        legacy = dict(base, id="0c0c0c0c-0000-4000-8000-000000000001", name="Legacy Role")
        t["roles"].append(legacy)
        for u in t["users"][:2]:
            u["roles"].append(legacy["id"])
        self.dst.put_state(t)
        cfg = self.config(prune=True)
        fp, n, out, _ = self.refuse(cfg)
        self.assertEqual(n, 3, out)  # the role and the two grants that go with it
        self.assertIn('- role "Legacy Role"', out)
        # one more holder since the review: a deletion the approval did not name
        t = self.dst.state()
        t["users"][5]["roles"].append(legacy["id"])
        self.dst.put_state(t)
        self.dst.reset_stats()
        fp2, n2, out, _ = self.refuse(cfg, "--approve", fp)
        self.assertEqual((n2, self.dst.stats()["writes"]), (4, 0))
        self.assertIn(f'! not approved: - user {t["users"][5]["email"]} role "Legacy Role"',
                      out)
        self.rs(cfg, "--once", "--approve", fp2, expect=0)
        self.assertNotIn("legacy role", {r["name"].lower() for r in self.dst.state()["roles"]})
        self.assertEqual(user_grants(self.dst.state()), user_grants(self.src.state()))

    def test_unknown_or_malformed_fingerprint(self):
        self.extra_grants([0, 1, 2])
        cfg = self.config()
        fp, _, _, _ = self.refuse(cfg)
        other = "sha256:" + "0" * 64
        p = self.rs(cfg, "--once", "--approve", other, expect=1)
        self.assertIn("no refused plan", p.stderr)
        self.dst.reset_stats()
        p = self.rs(cfg, "--once", "--approve", other, "--job", "job1", expect=1)
        self.assertIn(f"approval {other} is unknown", p.stdout + p.stderr)
        self.assertIn(fp, p.stdout)  # the fresh plan's own fingerprint, to review and approve
        self.assertEqual(self.dst.stats()["writes"], 0)
        for bad in ("sha256:abc", "deadbeef" * 8):
            p = self.rs(cfg, "--once", "--approve", bad, expect=1)
            self.assertIn("--approve wants a fingerprint", p.stderr)
        p = self.rs(cfg, "--once", "--approve", fp, "--force-deletes", expect=1)
        self.assertIn("exclude each other", p.stderr)
        # without a refusal file, a fresh plan hashing to the fingerprint still applies
        shutil.rmtree(os.path.join(self.state_dir, "refused"))
        self.rs(cfg, "--once", "--approve", fp, "--job", "job1", expect=0)
        self.assertEqual(user_grants(self.dst.state()), user_grants(self.src.state()))


class FanOutApprove(ApproveCase):
    def test_a_fan_out_job_name_approves_the_target_that_was_refused(self):
        dst2 = self.sim(self.dst.state())  # a second target, in sync
        self.extra_grants([0, 1, 2])
        cfg = write_config(self.dir, {"src": tenant_for(self.src), "dst": tenant_for(self.dst),
                                      "dst2": tenant_for(dst2)},
                           [{"name": "j", "source": "src", "target": ["dst", "dst2"],
                             "max_deletes": MAX_DELETES}], log_level="info",
                           http={"rate_limit": "0"})
        fp, n, out, _ = self.refuse(cfg)
        self.assertIn("--approve %s --job j/dst" % fp, out)
        self.assertTrue(os.path.exists(os.path.join(self.state_dir, "refused", "j%2Fdst.json")))
        # NAME selects the targets; the approval goes to the one whose refusal it is
        p = self.rs(cfg, "--once", "--approve", fp, "--job", "j", expect=0)
        self.assertIn("job=j/dst plan approved", p.stderr)
        self.assertNotIn("job=j/dst2 cycle started", p.stderr)
        self.assertEqual(user_grants(self.dst.state()), user_grants(self.src.state()))


class DaemonApprove(ApproveCase):
    def test_daemon_runs_an_approval_now_and_once(self):
        self.extra_grants([0, 1, 2, 3])
        cfg = self.config(interval="1h")  # only the first cycle and the signals run it
        with Daemon(cfg) as d:
            self.assertTrue(d.wait_for_log("plan refused", 30), d.log_text())
            job = wait_until(lambda: (self.status()["jobs"]["job1"]
                                      if self.status()["jobs"]["job1"]["state"] == "refused"
                                      else None), 10)
            self.assertIsNotNone(job, d.log_text())
            fp = job["last_run"]["refusal"]["fingerprint"]
            self.assertRegex(fp, r"^sha256:[0-9a-f]{64}$")
            self.assertIn(f"fingerprint={fp}", d.log_text())

            started = d.log_text().count("job=job1 cycle started")
            p = self.rs(cfg, "--approve", fp, expect=0)
            t0 = time.monotonic()
            self.assertIn(f"approval {fp} recorded for job job1; daemon pid {d.pid} signalled",
                          p.stdout)
            self.assertTrue(d.wait_for_log("job=job1 cycle started", 1.0, count=started + 1),
                            "the approved job did not start within a second\n" + d.log_text())
            self.assertLess(time.monotonic() - t0, 1.0)
            self.assertTrue(d.wait_for_log("plan approved", 15), d.log_text())
            job = wait_until(lambda: (self.status()["jobs"]["job1"]
                                      if self.status()["jobs"]["job1"]["last_run"]["approved"]
                                      else None), 10)
            self.assertIsNotNone(job, d.log_text())
            self.assertEqual((job["last_run"]["result"], job["last_run"]["approved"]),
                             ("ok", fp))
            self.assertEqual(user_grants(self.dst.state()), user_grants(self.src.state()))
            # used once: the approval file is gone ...
            approvals = os.path.join(self.state_dir, "approvals")
            self.assertTrue(wait_until(lambda: not os.listdir(approvals), 5), os.listdir(approvals))

            # ... so when deletions beyond the guard appear again, the next cycle refuses
            self.extra_grants([4, 5, 6])
            self.dst.reset_stats()
            refusals = d.log_text().count("plan refused")
            d.signal(signal.SIGUSR1)
            self.assertTrue(d.wait_for_log("plan refused", 15, count=refusals + 1), d.log_text())
            self.assertEqual(self.dst.stats()["writes"], 0)
            self.assertEqual(d.log_text().count("cycle runs under an approval"), 1)
            self.assertEqual(log_grammar_errors(d.log_text()), [])

            # an approval for a fingerprint no refusal carries: a clear error, nothing recorded
            p = self.rs(cfg, "--approve", "sha256:" + "1" * 64, "--job", "job1", expect=1)
            self.assertIn("is unknown for job job1", p.stderr)
            self.assertFalse(os.listdir(approvals))
        self.assertEqual(d.returncode, 0, "the daemon did not stop cleanly")
        # no daemon: nothing recorded, exit 1
        fp = self.status()["jobs"]["job1"]["last_run"]["refusal"]["fingerprint"]
        p = self.rs(cfg, "--approve", fp, expect=1)
        self.assertIn("no running daemon", p.stderr)
        self.assertFalse(os.listdir(os.path.join(self.state_dir, "approvals")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
