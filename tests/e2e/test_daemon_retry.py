"""Failed cycles (product.md section 7): a source answering 503 puts the job in waiting_retry
with consecutive_failures counting, and it recovers by itself once the source is healthy;
refused credentials make the job `failed` with the reason until a reload brings a good secret.
"""
import shutil
import signal
import tempfile
import time
import unittest

from daemon_fixture import Pair, log_lines, slurp
from rsconfig import tenant_for, write_config
from simlib import Daemon, Sim, gen

# Fail fast: one retry 100 ms later, so a failed cycle takes well under a second.
FAST_HTTP = {"retry": {"max_attempts": 2, "initial_delay": "100ms", "max_delay": "200ms"},
             "timeout": "5s"}


class TokenLifetimeTest(unittest.TestCase):
    def test_token_renewed_before_the_server_expires_it(self):
        # Regression (src/http.c tok_sent_at, found by a black-box test): the token's lifetime
        # was counted from the reply's arrival, a round trip after the server started it, so
        # with latency above 10 % of the lifetime requests went out on an expired token (401,
        # renew, resend). Counted from the request, no API call meets a 401.
        d = tempfile.mkdtemp(prefix="rs-token-")
        s = gen("genesys", 60, 4, seed=3)
        t = gen("genesys", same_as=s, seed=4)
        ttl = ["--token-ttl", "2s"]
        try:
            with Sim("genesys", state=s, latency="400ms", extra_args=ttl) as src, \
                    Sim("genesys", state=t, extra_args=ttl) as dst:
                cfg = write_config(d, {"src": tenant_for(src, page_size=10),
                                       "dst": tenant_for(dst, page_size=10)},
                                   [{"name": "j", "source": "src", "target": "dst",
                                     "interval": "1s"}],
                                   http={"max_connections": 1, "rate_limit": "0"})
                with Daemon(cfg) as dm:
                    # at least 9 s (a few token lifetimes), and until a cycle ended: over one
                    # connection at 400 ms a request, a cycle of version 2 reads (divisions,
                    # the cursor listing, each role's subject grants) takes some 8 s
                    t0 = time.monotonic()
                    while time.monotonic() - t0 < 40 and (
                            time.monotonic() - t0 < 9 or "cycle finished" not in dm.log_text()):
                        time.sleep(0.2)
                    log = dm.log_text()
                self.assertGreaterEqual(log.count("cycle finished"), 1, log)
                self.assertGreaterEqual(src.stats()["by_route"].get("POST /oauth/token", 0), 3)
                for sim in (src, dst):
                    self.assertNotIn("401", sim.stats()["by_status"], log[-3000:])
                self.assertNotIn("token rejected", log)
        finally:
            shutil.rmtree(d, ignore_errors=True)


class DaemonRetryTest(unittest.TestCase):
    def test_failed_cycle_waits_to_retry_then_recovers(self):
        with Pair(users=20, roles=4, drift=10) as p:
            cfg = p.config([{"name": "j", "interval": "2s"}], http=FAST_HTTP)
            p.src.add_faults([{"method": "*", "path": "/api/*", "action": "status",
                               "status": 503}])
            with Daemon(cfg) as d:
                job = p.wait_job("j", lambda j: j["consecutive_failures"] >= 2, 30)
                self.assertIsNotNone(job, d.log_text())
                self.assertEqual(job["state"] in ("waiting_retry", "running"), True, job)
                job = p.wait_job("j", lambda j: j["state"] == "waiting_retry", 10)
                self.assertIsNotNone(job)
                run = job["last_run"]
                self.assertEqual(run["result"], "failed")
                self.assertFalse(job["in_sync"])
                self.assertGreaterEqual(len(run["errors"]), 1)
                self.assertTrue(any("503" in (e["message"] or "") for e in run["errors"]),
                                run["errors"])
                self.assertIsNotNone(job["next_run_at"])
                self.assertIn("503", job["reason"] or "", job)
                # retried sooner than 30 s, but never later than the 2 s interval
                self.assertTrue(log_lines(d.log_text(), "cycle failed, retrying in=2000ms"),
                                d.log_text())
                self.assertNotIn("result=ok", d.log_text())
                # writes were never attempted after a failed read
                self.assertEqual(p.dst.stats()["writes"], 0)

                p.src.clear_faults()
                job = p.wait_job("j", lambda j: j["last_run"]["result"] == "ok", 20)
                self.assertIsNotNone(job, d.log_text())
                self.assertEqual(job["consecutive_failures"], 0)
                self.assertEqual(job["state"] in ("idle", "running"), True)
                self.assertIsNotNone(job["last_success_at"])
            self.assertEqual(d.proc.returncode, 0)

    def test_refused_credentials_make_the_job_failed(self):
        with Pair(users=20, roles=4, drift=5) as p:
            bad = p.tenants()
            bad["dst"]["_secret"] = "not-the-secret"
            cfg = p.config([{"name": "j", "interval": "2s"}], tenants=bad, http=FAST_HTTP)
            with Daemon(cfg) as d:
                job = p.wait_job("j", lambda j: j["state"] == "failed", 30)
                self.assertIsNotNone(job, d.log_text())
                self.assertIn("authentication failed", job["reason"])
                self.assertEqual(job["last_run"]["result"], "failed")
                self.assertGreaterEqual(job["consecutive_failures"], 1)
                self.assertIn("authentication failed, trying again at the interval",
                              d.log_text())
                self.assertNotIn("not-the-secret", d.log_text())
                self.assertNotIn("not-the-secret", slurp(p.status_path))

                # the operator fixes the secret file and reloads: the job recovers
                p.config([{"name": "j", "interval": "2s"}], http=FAST_HTTP)
                d.signal(signal.SIGHUP)
                job = p.wait_job("j", lambda j: j["last_run"]["result"] == "ok", 30)
                self.assertIsNotNone(job, d.log_text())
                self.assertEqual(job["consecutive_failures"], 0)
                self.assertIsNone(job["reason"])
            self.assertEqual(d.proc.returncode, 0)


if __name__ == "__main__":
    unittest.main()
