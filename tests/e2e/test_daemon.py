"""The daemon's schedule against two tenantsims (product.md section 7): cycles repeat at the
interval, a change in the source reaches the target at the next cycle, SIGUSR1 runs a cycle at
once, and `rolesyncd --status` reads the live status file.
"""
import datetime
import signal
import unittest

from daemon_fixture import Pair, log_lines, wait_until
from simlib import Daemon, run_rolesyncd

FINISHED = "job=j cycle finished"
STARTED = "job=j cycle started"


def log_time(line):
    stamp = line.split(" ", 1)[0]
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")


def custom_role_change(sim):
    """Give one source user a custom role it lacks. Returns (email, role name)."""
    state = sim.state()
    roles = {r["id"]: r for r in state["roles"]}
    custom = [r for r in state["roles"] if not r.get("defaultRoleId")]
    for user in state["users"]:
        if user.get("state") != "active" or not user.get("email"):
            continue
        missing = [r for r in custom if r["id"] not in user["roles"]]
        if missing:
            role = missing[0]
            ids = [rid for rid in user["roles"] if rid in roles] + [role["id"]]
            status, _, body = sim.request("PUT", f"/api/v2/users/{user['id']}/roles", ids)
            if status != 200:
                raise AssertionError(f"source PUT roles answered {status}: {body[:200]!r}")
            return user["email"], role["name"]
    raise AssertionError("fixture has no user missing a custom role")


def target_has(sim, email, role_name):
    state = sim.state()
    names = {r["id"]: r["name"].lower() for r in state["roles"]}
    for user in state["users"]:
        if (user.get("email") or "").lower() == email.lower():
            return role_name.lower() in {names.get(rid) for rid in user["roles"]}
    return False


class DaemonScheduleTest(unittest.TestCase):
    def test_cycles_repeat_and_changes_propagate(self):
        with Pair(users=40, roles=6, drift=10) as p:
            cfg = p.config([{"name": "j", "interval": "2s"}])
            with Daemon(cfg) as d:
                self.assertTrue(d.wait_for_log("INFO started ", 10), d.log_text())
                seen_starts = set()

                def three_cycles():
                    job = p.job_status("j")
                    if job and job.get("last_run"):
                        seen_starts.add(job["last_run"]["started_at"])
                    return d.log_text().count(FINISHED) >= 3
                self.assertTrue(wait_until(three_cycles, 30), d.log_text())
                self.assertGreaterEqual(len(seen_starts), 2, "last_run.started_at never moved")

                # Between the end of a cycle and the next start lies the interval minus at most
                # 10 % jitter: the daemon must never start sooner.
                events = [(log_time(l), "end" if FINISHED in l else "start")
                          for l in d.log_text().splitlines() if FINISHED in l or STARTED in l]
                gaps = [(b[0] - a[0]).total_seconds() for a, b in zip(events, events[1:])
                        if a[1] == "end" and b[1] == "start"]
                self.assertGreaterEqual(len(gaps), 2, events)
                for gap in gaps:
                    self.assertGreaterEqual(gap, 1.8 - 0.01, gaps)

                job = p.job_status("j")
                self.assertEqual(job["state"] in ("idle", "running"), True, job)
                self.assertTrue(job["in_sync"], job)
                self.assertEqual(job["consecutive_failures"], 0)
                self.assertIsNotNone(job["last_success_at"])
                first = log_lines(d.log_text(), FINISHED)[0]
                self.assertIn("result=ok", first)
                # the second cycle of an in-sync job writes nothing
                self.assertIn("assignments_added=0 assignments_removed=0",
                              log_lines(d.log_text(), FINISHED)[1])

                # A change in the source reaches the target at the next full cycle.
                email, role = custom_role_change(p.src)
                n = d.log_text().count(FINISHED)
                self.assertTrue(d.wait_for_log(FINISHED, 30, count=n + 2), d.log_text())
                self.assertTrue(target_has(p.dst, email, role),
                                f"{email} did not get {role!r} on the target")
                after = log_lines(d.log_text(), FINISHED)[n:n + 2]
                self.assertTrue(any("assignments_added=1 " in l for l in after), after)
                self.assertIn(f"assignment added user={email}", d.log_text())
            self.assertEqual(d.proc.returncode, 0)

    def test_sigusr1_runs_every_job_now(self):
        with Pair(users=20, roles=4, drift=0) as p:
            cfg = p.config([{"name": "j", "interval": "1h"}, {"name": "k", "interval": "1h"}])
            with Daemon(cfg) as d:
                self.assertTrue(d.wait_for_log("job=k cycle finished", 20), d.log_text())
                job = p.job_status("j")
                self.assertIsNotNone(job["next_run_at"])
                before = job["last_run"]["started_at"]
                d.signal(signal.SIGUSR1)
                # a second cycle of both jobs, long before the hour is up
                self.assertTrue(d.wait_for_log(FINISHED, 15, count=2), d.log_text())
                self.assertTrue(d.wait_for_log("job=k cycle finished", 15, count=2),
                                d.log_text())
                self.assertIn("sync now requested", d.log_text())
                self.assertTrue(p.wait_job("j", lambda j: j["state"] == "idle" and
                                           j["next_run_at"] is not None, 10))
                self.assertGreaterEqual(p.job_status("j")["last_run"]["started_at"], before)
            self.assertEqual(d.proc.returncode, 0)

    def test_status_command_while_running(self):
        with Pair(users=20, roles=4, drift=5) as p:
            cfg = p.config([{"name": "j", "interval": "1h"}])
            with Daemon(cfg) as d:
                self.assertTrue(d.wait_for_log(FINISHED, 20), d.log_text())
                # the summary line is logged before status.json is rewritten: under load
                # (ASan, a busy machine) --status could read the file of the running cycle
                self.assertTrue(p.wait_job("j", lambda j: j["state"] == "idle", 10))
                proc = run_rolesyncd(["--status", "-c", cfg])
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertIn("job j: idle, in sync", proc.stdout)
                self.assertIn(str(d.pid), proc.stdout)
                self.assertNotIn("sim-secret", proc.stdout)

            # a state_dir without a status file: exit 1 and say so
            other = p.config([{"name": "j"}], state_dir=p.dir + "/empty-state")
            proc = run_rolesyncd(["--status", "-c", other])
            self.assertEqual(proc.returncode, 1)
            self.assertIn("no status file", proc.stderr)
            self.assertEqual(proc.stdout, "")


if __name__ == "__main__":
    unittest.main()
