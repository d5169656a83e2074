"""Plans in the daemon (product.md sections 4.9 and 3): a dry-run job plans and reports every
cycle without writing; a change the target accepts but does not keep is reported as not
converging in status.json and not re-sent.
"""
import unittest

from daemon_fixture import Pair, log_lines
from simlib import Daemon, log_grammar_errors

FINISHED = "job=j cycle finished"


class DaemonPlanTest(unittest.TestCase):
    def test_dry_run_job_plans_every_cycle_and_writes_nothing(self):
        with Pair(users=30, roles=5, drift=20) as p:
            cfg = p.config([{"name": "j", "interval": "2s", "dry_run": True}])
            p.dst.reset_stats()
            with Daemon(cfg) as d:
                self.assertTrue(d.wait_for_log(FINISHED, 30, count=2), d.log_text())
                job = p.job_status("j")
                run = job["last_run"]
                self.assertEqual(run["result"], "dry_run")
                self.assertTrue(run["dry_run"])
                self.assertGreater(run["pending"], 0, run)
                # a dry run's changes are what the plan would do (drift: adds and removes)
                ch = run["changes"]
                self.assertEqual(ch["assignments_added"] + ch["assignments_removed"],
                                 run["pending"], run)
                self.assertFalse(job["in_sync"])
                self.assertIn("planned change=", d.log_text())
                self.assertEqual(log_grammar_errors(d.log_text()), [])
                # the summary line says the same as status.json (it said added=0: a
                # black-box test found the two disagreeing)
                line = [ln for ln in d.log_text().splitlines() if FINISHED in ln][-1]
                self.assertIn(f" assignments_added={ch['assignments_added']} ", line)
                self.assertIn(f" assignments_removed={ch['assignments_removed']} ", line)
            self.assertEqual(p.dst.stats()["writes"], 0)

    def test_not_converging_is_reported_not_resent(self):
        with Pair(users=20, roles=5, drift=0) as p:
            # the target org licenses none of the source's permission domains: role definitions
            # are accepted but their policies dropped, every time
            src = p.src.state()
            dst = p.dst.state()
            domains = sorted({pol["domain"] for r in src["roles"]
                              for pol in r.get("permissionPolicies") or []})
            self.assertTrue(domains, "fixture roles carry no permission policies")
            dst["unlicensed_domains"] = domains
            # ... so it holds none of them (a real org could never have kept them)
            for r in dst["roles"]:
                r["permissionPolicies"] = []
            p.dst.put_state(dst)
            cfg = p.config([{"name": "j", "interval": "2s", "roles": {"definitions": True}}])
            with Daemon(cfg) as d:
                self.assertTrue(d.wait_for_log(FINISHED, 30, count=3), d.log_text())
                job = p.wait_job("j", lambda j: j["last_run"]["not_converging"], 10)
                self.assertIsNotNone(job, d.log_text())
                names = {r["name"] for r in src["roles"]}
                for nc in job["last_run"]["not_converging"]:
                    self.assertEqual(nc["kind"], "role_definition", nc)
                    self.assertIn(nc["name"], names)
                    self.assertTrue(nc["reason"])
                self.assertEqual(job["last_run"]["result"], "ok")
                # reported, not re-sent: the third cycle updates no role
                third = log_lines(d.log_text(), FINISHED)[2]
                self.assertIn("roles_created=0 roles_updated=0", third)
            self.assertEqual(d.proc.returncode, 0)


    def test_conflicts_unmapped_and_ambiguous_are_logged_every_cycle(self):
        # Regression (src/sync.c log_report, found by a black-box test): these were printed
        # in --once's plan only; the daemon prints no plan, so they reached no log at all.
        with Pair(users=12, roles=3, drift=0) as p:
            src, dst = p.src.state(), p.dst.state()
            base = next(r for r in src["roles"] if not r.get("default"))
            for name in ("Ops", "Unmapped Role"):
                src["roles"].append(dict(base, id=f"c1000000-0000-4000-8000-00000000{len(name):04d}",
                                         name=name))
            tbase = next(r for r in dst["roles"] if not r.get("default"))
            for i, name in enumerate(("ops", "OPS")):
                dst["roles"].append(dict(tbase, id=f"d1000000-0000-4000-8000-00000000000{i}",
                                         name=name))
            src["users"][1]["email"] = src["users"][0]["email"].upper()  # two share a key
            p.src.put_state(src)
            p.dst.put_state(dst)
            cfg = p.config([{"name": "j", "interval": "1s"}])
            with Daemon(cfg) as d:
                self.assertTrue(d.wait_for_log(FINISHED, 30, count=2), d.log_text())
                log = d.log_text()
            for what in ('item="conflict: source role \\"Ops\\"',
                         'item="unmapped: role \\"Unmapped Role\\"',
                         'item="ambiguous: 2 source users share the key'):
                self.assertGreaterEqual(log.count("WARNING job=j not applied " + what), 2, log)
            self.assertEqual(log_grammar_errors(log), [])
            self.assertEqual(d.proc.returncode, 0)

if __name__ == "__main__":
    unittest.main()
