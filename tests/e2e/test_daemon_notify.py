"""systemd notifications (product.md section 7, anchors.md section 4) on a stand-in
$NOTIFY_SOCKET: READY=1 first with a STATUS= summary, STATUS= updates, RELOADING=1 (with
MONOTONIC_USEC) then READY=1 around a SIGHUP, STOPPING=1 at the end, WATCHDOG=1 every half of
$WATCHDOG_USEC.
"""
import os
import re
import signal
import unittest

from daemon_fixture import NotifySocket, Pair
from simlib import Daemon

SUMMARY = re.compile(r"^\d+ jobs?, \d+ in sync(, [^,]+)*$")


class DaemonNotifyTest(unittest.TestCase):
    def run_daemon(self, p, cfg, ns, extra_env):
        env = {"NOTIFY_SOCKET": ns.path}
        env.update(extra_env)
        for k in ("WATCHDOG_USEC", "WATCHDOG_PID"):
            if k not in env:
                os.environ.pop(k, None)
        return Daemon(cfg, env=env)

    def test_ready_status_reload_stopping(self):
        with Pair(users=20, roles=4, drift=5) as p, NotifySocket() as ns:
            cfg = p.config([{"name": "a", "interval": "1h"}, {"name": "b", "interval": "1h"}])
            with self.run_daemon(p, cfg, ns, {}) as d:
                self.assertTrue(ns.wait_for("READY", "1"), d.log_text())
                self.assertTrue(d.wait_for_log("job=b cycle finished", 20), d.log_text())
                self.assertTrue(ns.wait_for("STATUS", None, count=4))
                p.config([{"name": "a", "interval": "1h"}])
                d.signal(signal.SIGHUP)
                self.assertTrue(d.wait_for_log("reload ok", 10), d.log_text())
                self.assertTrue(ns.wait_for("READY", "1", count=2))
            self.assertEqual(d.proc.returncode, 0)
            self.assertTrue(ns.wait_for("STOPPING", "1", timeout=5))
            msgs = ns.snapshot()

        self.assertEqual(msgs[0].get("READY"), "1", msgs[:3])
        self.assertRegex(msgs[0].get("STATUS", ""), SUMMARY)
        self.assertTrue(msgs[0]["STATUS"].startswith("2 jobs, "), msgs[0])
        statuses = [m["STATUS"] for m in msgs if "STATUS" in m]
        for s in statuses:
            self.assertRegex(s, SUMMARY)
        self.assertTrue(any("running" in s for s in statuses), statuses)
        self.assertTrue(any(s.startswith("2 jobs, 2 in sync, next run ") for s in statuses),
                        statuses)

        keys = [k for m in msgs for k in m if k in ("READY", "RELOADING", "STOPPING")]
        self.assertEqual(keys, ["READY", "RELOADING", "READY", "STOPPING"], msgs)
        reloading = next(m for m in msgs if "RELOADING" in m)
        self.assertRegex(reloading.get("MONOTONIC_USEC", ""), r"^\d+$")
        after_reload = [m for m in msgs if "READY" in m][1]
        self.assertTrue(after_reload.get("STATUS", "").startswith("1 job, "), after_reload)
        self.assertEqual(list(msgs[-1]), ["STOPPING"], msgs[-1])
        self.assertFalse(any("WATCHDOG" in m for m in msgs), "watchdog without WATCHDOG_USEC")

    def test_watchdog_pings(self):
        with Pair(users=10, roles=3, drift=0) as p, NotifySocket() as ns:
            cfg = p.config([{"name": "a", "interval": "1h"}])
            with self.run_daemon(p, cfg, ns, {"WATCHDOG_USEC": "400000"}) as d:
                self.assertTrue(ns.wait_for("READY", "1"), d.log_text())
                self.assertTrue(ns.wait_for("WATCHDOG", "1", count=6, timeout=15))
                self.assertIn("watchdog=on", d.log_text())
            timed = [(t, m) for t, m in ns.timed() if "WATCHDOG" in m]
        gaps = [b[0] - a[0] for a, b in zip(timed[1:], timed[2:])]
        # half of 400 ms; only a lower bound is checked (the machine may be slow, not fast)
        self.assertTrue(gaps and min(gaps) > 0.1, gaps)

    def test_watchdog_for_another_pid_is_ignored(self):
        with Pair(users=10, roles=3, drift=0) as p, NotifySocket() as ns:
            cfg = p.config([{"name": "a", "interval": "1h"}])
            env = {"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "1"}
            with self.run_daemon(p, cfg, ns, env) as d:
                self.assertTrue(d.wait_for_log("job=a cycle finished", 20), d.log_text())
                self.assertTrue(ns.wait_for("READY", "1"))
            self.assertFalse(any("WATCHDOG" in m for m in ns.snapshot()))


if __name__ == "__main__":
    unittest.main()
