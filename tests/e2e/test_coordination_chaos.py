"""Twenty rounds of chaos under coordination (product.md 7a): three rolesyncd instances on a
real etcd share five jobs mirroring a large source into five targets, while the test, round
after round, re-drifts targets (so there is always something to write) and then kills an
instance with kill -9 (and starts it again), pauses one with SIGSTOP past its lease, or
restarts etcd. At the end every instance runs and etcd is up:

- every target converges (its users' grants are the source's);
- no write was sent without a held key: each write a target logged carried the fencing
  header, and etcd's key history (recorded live) shows that member holding the job's key under
  that lease when the write arrived; no two instances' writes for one job overlap.

The seed is printed; ROLESYNC_CHAOS_SEED replays a run.
Skipped when /usr/bin/etcd is missing (scripts/setup.sh installs etcd-server).
"""
import os
import random
import signal
import time
import unittest

from coordlib import ETCD, parse_fence
from daemon_fixture import read_status, wait_until
from simlib import Daemon
from test_coordination import JOBS, STALL_WRITES, CoordCase

ROUNDS = 20
TTL = 2  # seconds: short, so the 20 rounds see many expiries and takeovers


@unittest.skipUnless(os.access(ETCD, os.X_OK),
                     f"{ETCD} is missing: apt-get install etcd-server etcd-client")
class CoordinationChaos(CoordCase):
    USERS, ROLES, DRIFT = 1000, 10, 40
    SIM_LATENCY = 5

    def test_twenty_rounds_of_kill_stop_and_etcd_restarts(self):
        seed = int(os.environ.get("ROLESYNC_CHAOS_SEED", str(int(time.time()))))
        rng = random.Random(seed)
        print(f"\nchaos seed {seed}")
        drifts = [self.drifted(300 + k) for k in range(4)]
        for j in JOBS:  # every write takes a while, so the chaos lands in the middle of them
            self.dst[j].add_faults(STALL_WRITES)
        cfgs = self.configs(3, interval="2s", ttl=TTL)
        daemons = [self.start(c) for c, _ in cfgs]
        statuses = [s for _, s in cfgs]
        self.assertTrue(wait_until(lambda: self.spread(statuses), timeout=8 * TTL, interval=0.2))

        done = {"kill": 0, "stop": 0, "etcd": 0}
        actions = []  # (wall time, member hit or None for etcd)

        def member(i):
            st = read_status(statuses[i]) or {}
            return st.get("daemon", {}).get("coordination", {}).get("member")
        t_start = time.monotonic()
        for rnd in range(ROUNDS):
            for k, j in enumerate(rng.sample(JOBS, 2)):
                self.dst[j].put_state(drifts[(rnd + k) % len(drifts)])
            time.sleep(rng.uniform(0.2, 1.5))  # let the cycles reach their writes
            action = rng.choice(sorted(done))
            done[action] += 1
            if action == "kill":
                i = rng.randrange(3)
                actions.append((time.time(), member(i)))
                os.kill(daemons[i].pid, signal.SIGKILL)
                daemons[i].wait(10)
                time.sleep(rng.uniform(0, TTL))
                daemons[i] = self.start(cfgs[i][0])
            elif action == "stop":
                i = rng.randrange(3)
                actions.append((time.time(), member(i)))
                os.kill(daemons[i].pid, signal.SIGSTOP)
                time.sleep(rng.uniform(1.1 * TTL, 2.5 * TTL))  # past the lease
                os.kill(daemons[i].pid, signal.SIGCONT)
            else:
                actions.append((time.time(), None))
                self.etcd.stop()
                time.sleep(rng.uniform(0.5, 3.0))
                self.etcd.start()
            for i, d in enumerate(daemons):
                self.assertTrue(d.running, f"round {rnd}: instance {i} died: "
                                           f"{d.log_text()[-2000:]}")
        chaos = time.monotonic() - t_start

        t0 = time.monotonic()
        self.assertTrue(wait_until(self.all_converged, timeout=180, interval=1.0),
                        "the targets did not converge after the chaos")
        settle = time.monotonic() - t0
        # how many blows landed while their victim (anyone, for etcd) was writing: a write
        # of it had arrived within the last 0.5 s
        writes = [(w["t0"], (parse_fence(w["fence"]) or ("", "", 0))[1])
                  for j in JOBS for w in self.writes(j)]
        mid_write = sum(1 for t, m in actions
                        if any(t - 0.5 <= t0 <= t and (m is None or wm == m) for t0, wm in writes))
        abandoned = sum(d.log_text().count("writes stopped, cycle abandoned") for d in self.daemons)
        n = self.check_history()
        print(f"chaos: {ROUNDS} rounds in {chaos:.0f}s ({done['kill']} kill -9, {done['stop']} "
              f"SIGSTOP past the lease, {done['etcd']} etcd restarts); {abandoned} cycles "
              f"abandoned by the fence; every target converged {settle:.1f}s after the last "
              f"round; {mid_write} of the {ROUNDS} blows landed mid-write; {n} writes checked against etcd's key history, none without the key, no "
              f"overlap between instances")
        self.assertGreater(mid_write, 0, "no blow landed during the writes")


if __name__ == "__main__":
    unittest.main(verbosity=2)
