"""status.json, the metrics file and the log format while the daemon runs (product.md
section 6): the status file is complete JSON at every moment (a reader polls it every ~10 ms
while cycles run), mode 0640, created with its state_dir; the metrics file carries job and
per-tenant HTTP series; log lines carry a timestamp, or the journald priority prefix when
$JOURNAL_STREAM names stderr.
"""
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import threading
import time
import unittest

from daemon_fixture import JOURNAL_RE, LOG_RE, PRIO, Pair, slurp, wait_until
from simlib import Daemon, binary


class StatusFileTest(unittest.TestCase):
    def test_always_valid_json_mode_and_metrics(self):
        with Pair(users=40, roles=6, drift=10) as p:
            state_dir = os.path.join(p.dir, "made", "by", "daemon")
            metrics = os.path.join(p.dir, "rolesyncd.prom")
            cfg = p.config([{"name": "a", "interval": "1s"}, {"name": "b", "interval": "1s"},
                            {"name": "c", "interval": "1s", "dry_run": True}],
                           state_dir=state_dir, metrics_file=metrics,
                           # three jobs on one pair of tenants, each cycle reading every role's
                           # subject grants: no client-side limit, or the default 300/min
                           # spaces the cycles out beyond this test's patience
                           http={"rate_limit": "0"})
            shutil.rmtree(os.path.join(p.dir, "made"))  # the daemon creates it (mkdir -p)
            path = os.path.join(state_dir, "status.json")
            reads, problems, states = [0], [], set()
            stop = threading.Event()

            def reader():
                while not stop.is_set():
                    try:
                        with open(path, encoding="utf-8") as f:
                            text = f.read()
                    except FileNotFoundError:
                        if reads[0]:
                            problems.append("status.json vanished")
                        time.sleep(0.01)
                        continue
                    try:
                        doc = json.loads(text)
                        if doc["schema_version"] != 1 or "jobs" not in doc:
                            problems.append("not a status document")
                        for job in doc["jobs"].values():
                            states.add(job["state"])
                    except (ValueError, KeyError) as e:
                        problems.append(f"{e}: {text[:200]!r}")
                    reads[0] += 1
                    time.sleep(0.01)

            with Daemon(cfg) as d:
                thread = threading.Thread(target=reader, daemon=True)
                thread.start()
                try:
                    self.assertTrue(d.wait_for_log("job=a cycle finished", 30, count=4),
                                    d.log_text())
                    self.assertTrue(d.wait_for_log("job=c cycle finished", 30, count=2))
                finally:
                    stop.set()
                    thread.join(5)
                self.assertEqual(problems, [])
                self.assertGreater(reads[0], 50)
                self.assertIn("running", states)
                self.assertIn("idle", states)

                mode = stat.S_IMODE(os.stat(path).st_mode)
                self.assertEqual(mode, 0o640, oct(mode))
                self.assertEqual(stat.S_IMODE(os.stat(state_dir).st_mode) & 0o027, 0)

                st = json.loads(slurp(path))
                self.assertEqual(st["daemon"]["pid"], d.pid)
                self.assertEqual(st["daemon"]["config_file"], cfg)
                self.assertRegex(st["daemon"]["started_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
                self.assertEqual(list(st["jobs"]), ["a", "b", "c"])
                for name in ("a", "b"):
                    job = st["jobs"][name]
                    self.assertIn(job["state"], ("idle", "running"))
                    self.assertTrue(job["in_sync"], job)
                    for key in ("started_at", "finished_at", "result", "dry_run", "changes",
                                "pending", "failed_ops", "requests", "retries",
                                "unmatched_users", "not_converging", "errors"):
                        self.assertIn(key, job["last_run"])
                self.assertTrue(st["jobs"]["c"]["last_run"]["dry_run"])

                text = wait_until(lambda: slurp(metrics), 5)
                self.assertTrue(text)
                for series in ("rolesyncd_job_last_run_timestamp_seconds{job=\"a\"}",
                               "rolesyncd_job_last_success_timestamp_seconds{job=\"b\"}",
                               "rolesyncd_job_in_sync{job=\"a\"} 1",
                               "rolesyncd_job_changes_total{job=\"a\",kind=\"assignments_added\"}",
                               "rolesyncd_job_consecutive_failures{job=\"c\"} 0"):
                    self.assertIn(series, text)
                codes = re.findall(r'^rolesyncd_http_requests_total\{tenant="(src|dst)",'
                                   r'code="200"\} (\d+)$', text, re.M)
                self.assertEqual(sorted(t for t, _ in codes), ["dst", "src"], text)
                self.assertTrue(all(int(n) > 0 for _, n in codes))
                self.assertIn('rolesyncd_http_retries_total{tenant="src"} 0', text)
                self.assertNotIn("sim-secret", text)
                self.assertEqual(stat.S_IMODE(os.stat(metrics).st_mode), 0o644)
            self.assertEqual(d.proc.returncode, 0)
            # no temp file left behind (the change journal, product.md 4c, lives there too)
            self.assertEqual(sorted(os.listdir(state_dir)), ["changes.jsonl", "status.json"])
            self.assertEqual(sorted(f for f in os.listdir(p.dir) if "prom" in f),
                             ["rolesyncd.prom"])
            final = json.loads(slurp(path))
            for job in final["jobs"].values():
                self.assertIsNone(job["next_run_at"], job)


class LogFormatTest(unittest.TestCase):
    def run_and_stop(self, cfg, env_extra, journal):
        tmp = tempfile.mkdtemp(prefix="rs-log-")
        try:
            log_path = os.path.join(tmp, "stderr.log")
            with open(log_path, "wb") as err:
                env = dict(os.environ)
                env.pop("JOURNAL_STREAM", None)
                if journal:
                    st = os.fstat(err.fileno())
                    env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
                env.update(env_extra)
                proc = subprocess.Popen([binary("ROLESYNCD"), "-c", cfg], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=err, env=env)
                try:
                    ok = wait_until(lambda: "cycle finished" in slurp(log_path), 20)
                    self.assertTrue(ok, slurp(log_path))
                finally:
                    proc.terminate()
                    rc = proc.wait(20)
            self.assertEqual(rc, 0)
            return slurp(log_path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_log_lines_with_and_without_journal(self):
        with Pair(users=20, roles=4, drift=5) as p:
            cfg = p.config([{"name": "j", "interval": "1h"}])
            plain = self.run_and_stop(cfg, {}, journal=False)
            journal = self.run_and_stop(cfg, {}, journal=True)
            # a JOURNAL_STREAM that names another file is not the journal
            other = self.run_and_stop(cfg, {"JOURNAL_STREAM": "1:2"}, journal=False)

        for text in (plain, other):
            lines = text.splitlines()
            self.assertTrue(lines)
            for line in lines:
                self.assertRegex(line, LOG_RE)
        lines = journal.splitlines()
        self.assertTrue(lines)
        for line in lines:
            m = JOURNAL_RE.match(line)
            self.assertTrue(m, line)
            self.assertEqual(m.group(1), PRIO[m.group(2)], line)
        for text in (plain, journal):
            self.assertIn("INFO started version=", text)
            self.assertIn("INFO job=j cycle finished result=ok", text)
            self.assertIn("INFO stopping running_jobs=", text)
            self.assertTrue(text.rstrip().endswith("INFO stopped"), text[-300:])
            self.assertNotIn("sim-secret", text)


if __name__ == "__main__":
    unittest.main()
