"""Several instances on etcd leases (product.md 7a): a real etcd (Debian's etcd-server) on
loopback, three rolesyncd instances, five jobs.

- every job is held by exactly one instance, spread 2/2/1;
- kill -9 of a holder: its jobs run elsewhere within 2 x lease_ttl (measured, printed);
- SIGSTOP of a holder past the TTL, then SIGCONT: it sends no write with its old lease;
- etcd stopped: no writes, every job standby with the reason; recovery after etcd restarts;
- SIGTERM revokes the lease: the others take over at once.
Skipped when /usr/bin/etcd is missing (scripts/setup.sh installs etcd-server).
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from daemon_fixture import Pair, read_status, wait_until
from simlib import Daemon

ETCD = os.environ.get("ETCD", "/usr/bin/etcd")
TTL = 3  # seconds
JOBS = [f"job{i}" for i in range(1, 6)]
CHANGE_LINES = ("role created", "role updated", "role deleted", "assignment added",
                "assignment removed")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Etcd:
    def __init__(self, directory):
        self.dir = directory
        self.client = free_port()
        self.peer = free_port()
        self.proc = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.client}"

    def start(self):
        peer = f"http://127.0.0.1:{self.peer}"
        log = open(os.path.join(self.dir, "etcd.log"), "ab")
        self.proc = subprocess.Popen(
            [ETCD, "--name", "t", "--data-dir", os.path.join(self.dir, "etcd-data"),
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"t={peer}"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        ok = wait_until(self.healthy, timeout=20, interval=0.2)
        if not ok:
            raise RuntimeError("etcd did not start")
        return self

    def healthy(self):
        import urllib.request
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                return r.status == 200
        except Exception:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def holding(status_path):
    st = read_status(status_path)
    if not st:
        return None
    return st["daemon"].get("coordination", {}).get("holding")


@unittest.skipUnless(os.access(ETCD, os.X_OK),
                     f"{ETCD} is missing: apt-get install etcd-server etcd-client")
class CoordinationTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rs-coord-")
        self.etcd = Etcd(self.tmp).start()

    def tearDown(self):
        self.etcd.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def configs(self, p, n):
        paths = []
        for i in range(n):
            sd = os.path.join(p.dir, f"state{i}")
            paths.append((p.config([{"name": j, "interval": "2s"} for j in JOBS], state_dir=sd,
                                   coordination={"etcd": {"endpoints": [self.etcd.url],
                                                          "prefix": "/rs-test/",
                                                          "lease_ttl": f"{TTL}s"}},
                                   name=f"rs{i}.yaml"),
                          os.path.join(sd, "status.json")))
        return paths

    def spread(self, statuses):
        hs = [holding(s) or [] for s in statuses]
        everything = sorted(j for h in hs for j in h)
        return hs if everything == JOBS else None

    def test_exclusive_spread_takeover_fencing_and_etcd_outage(self):
        with Pair(users=20, roles=4, drift=5) as p:
            cfgs = self.configs(p, 3)
            daemons = [Daemon(c).start() for c, _ in cfgs]
            statuses = [s for _, s in cfgs]
            try:
                # -- exclusive ownership, spread 2/2/1
                def balanced():
                    hs = self.spread(statuses)
                    return hs if hs and sorted(len(h) for h in hs) == [1, 2, 2] else None
                hs = wait_until(balanced, timeout=8 * TTL, interval=0.2)
                self.assertIsNotNone(hs, [holding(s) for s in statuses])
                print("spread:", [len(h) for h in hs])
                st = read_status(statuses[0])
                for j in JOBS:
                    if j not in hs[0]:
                        self.assertEqual(st["jobs"][j]["state"], "standby", st["jobs"][j])
                    self.assertIn("holder", st["jobs"][j])
                # every job ran somewhere
                self.assertTrue(wait_until(
                    lambda: all(sum(d.log_text().count(f"job={j} cycle finished")
                                    for d in daemons) >= 1 for j in JOBS), timeout=30))

                # -- kill -9 a holder of two jobs; they run elsewhere within 2 x TTL
                victim = next(i for i, h in enumerate(hs) if len(h) == 2)
                moved = hs[victim]
                others = [i for i in range(3) if i != victim]
                marks = {i: len(daemons[i].log_text()) for i in others}
                t0 = time.monotonic()
                os.kill(daemons[victim].pid, signal.SIGKILL)
                daemons[victim].wait(5)

                def moved_and_started():
                    started = []
                    for j in moved:
                        for i in others:
                            if f"job={j} cycle started" in daemons[i].log_text()[marks[i]:]:
                                started.append(j)
                    return set(started) == set(moved)
                self.assertTrue(wait_until(moved_and_started, timeout=6 * TTL, interval=0.05),
                                [holding(statuses[i]) for i in others])
                took = time.monotonic() - t0
                print(f"takeover after kill -9: {took:.2f}s (lease_ttl {TTL}s, "
                      f"limit {2 * TTL}s)")
                self.assertLessEqual(took, 2 * TTL)
                hs2 = wait_until(lambda: self.spread([statuses[i] for i in others]),
                                 timeout=4 * TTL, interval=0.2)
                self.assertIsNotNone(hs2)
                self.assertFalse(set(hs2[0]) & set(hs2[1]))

                # -- SIGSTOP a holder past the TTL, SIGCONT: no write with the old lease
                sleeper = others[0]
                awake = others[1]
                wait_until(lambda: holding(statuses[sleeper]), timeout=4 * TTL)
                os.kill(daemons[sleeper].pid, signal.SIGSTOP)
                t1 = time.monotonic()
                # the other takes everything while it sleeps
                self.assertTrue(wait_until(lambda: sorted(holding(statuses[awake]) or []) == JOBS,
                                           timeout=4 * TTL, interval=0.1))
                print(f"takeover from a stopped process: {time.monotonic() - t1:.2f}s")
                time.sleep(1)
                mark = len(daemons[sleeper].log_text())
                os.kill(daemons[sleeper].pid, signal.SIGCONT)
                self.assertTrue(daemons[sleeper].wait_for_log("lease expired", timeout=4 * TTL))
                time.sleep(TTL)
                after = daemons[sleeper].log_text()[mark:]
                before_regrant = after.split("lease granted")[0]
                for needle in CHANGE_LINES:
                    self.assertNotIn(needle, before_regrant, after)
                hs3 = wait_until(lambda: self.spread([statuses[i] for i in others]),
                                 timeout=6 * TTL, interval=0.2)
                self.assertIsNotNone(hs3)
                self.assertFalse(set(hs3[0]) & set(hs3[1]))

                # -- etcd stopped: nothing written, standby with the reason; then recovery
                self.etcd.stop()

                def all_standby():
                    for i in others:
                        st = read_status(statuses[i])
                        if not st or any(st["jobs"][j]["state"] != "standby" or
                                         "etcd" not in (st["jobs"][j]["reason"] or "")
                                         for j in JOBS):
                            return None
                    return True
                self.assertTrue(wait_until(all_standby, timeout=6 * TTL, interval=0.1),
                                read_status(statuses[others[0]])["jobs"])
                w0 = p.dst.stats()["writes"]
                # a change on the source that a running job would write
                src = p.src.state()
                p.dst.put_state(p.dst.state())
                time.sleep(2 * TTL)
                self.assertEqual(p.dst.stats()["writes"], w0)
                print("etcd down: writes to the target", p.dst.stats()["writes"] - w0)
                self.assertIsNotNone(src)
                self.etcd.start()
                t2 = time.monotonic()
                hs4 = wait_until(lambda: self.spread([statuses[i] for i in others]),
                                 timeout=10 * TTL, interval=0.2)
                self.assertIsNotNone(hs4)
                print(f"recovered after etcd restart: {time.monotonic() - t2:.2f}s")

                # -- SIGTERM revokes: the other holds everything well before the TTL runs out
                leaving = others[0]
                t3 = time.monotonic()
                daemons[leaving].stop()
                self.assertEqual(daemons[leaving].returncode, 0)
                self.assertTrue(wait_until(lambda: sorted(holding(statuses[others[1]]) or [])
                                           == JOBS, timeout=4 * TTL, interval=0.05))
                print(f"takeover after SIGTERM: {time.monotonic() - t3:.2f}s")
            finally:
                for d in daemons:
                    try:
                        os.kill(d.pid, signal.SIGCONT)
                    except OSError:
                        pass
                    d.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
