"""Several instances on etcd leases (product.md 7a): a real etcd (Debian's etcd-server) on
loopback, three rolesyncd instances, five jobs, each mirroring one source to its own target
simulator, every target keeping a request log (tenantsim --request-log).

- every job is held by exactly one instance, spread 2/2/1;
- kill -9 of a holder: its jobs run elsewhere within 2 x lease_ttl (measured, printed);
- SIGSTOP of a holder in the middle of its writes, past the TTL, then SIGCONT: it sends no
  write after it wakes; its cycle is abandoned and reported;
- etcd stopped for 30 s: no writes anywhere, every job standby with the reason; once etcd is
  back, every target converges;
- SIGTERM revokes the lease: the others take over at once;
- throughout: every write a target received carried a key etcd's history shows held by its
  sender under its lease at that moment, and no two instances' writes for one job overlap.
Skipped when /usr/bin/etcd is missing (scripts/setup.sh installs etcd-server).
"""
import os
import re
import shutil
import signal
import tempfile
import time
import unittest

from coordlib import ETCD, Etcd, KeyHistory, api_writes, check_writes, parse_fence, \
    read_request_log
from daemon_fixture import read_status, slurp, wait_until
from rsconfig import tenant_for, user_grants, write_config
from simlib import Daemon, Sim, gen, run_rolesyncd

TTL = 3  # seconds
JOBS = [f"job{i}" for i in range(1, 6)]
PREFIX = "/rs-test/"
def stall_writes(ms):
    """Fault rules making every API write of a simulator take `ms`."""
    return [{"method": m, "path": "/api/v2/*", "action": "stall", "stall_ms": ms,
             "times": 100000} for m in ("POST", "PUT", "DELETE", "PATCH")]


STALL_WRITES = stall_writes(400)


def holding(status_path):
    st = read_status(status_path)
    if not st:
        return None
    return st["daemon"].get("coordination", {}).get("holding")


def converged(src, dst):
    want, have = user_grants(src.state()), user_grants(dst.state())
    return all(have.get(email) == grants for email, grants in want.items())


class CoordCase(unittest.TestCase):
    """etcd, its key history, one source and one target per job, each target logging its
    requests."""
    USERS, ROLES, DRIFT = 60, 5, 30
    SIM_LATENCY = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rs-coord-")
        self.etcd = self.make_etcd().start()
        self.history = KeyHistory(self.etcd, PREFIX)
        self.sims = []
        self.daemons = []
        self.src_state = gen("genesys", self.USERS, self.ROLES, seed=1)
        self.src = self.sim(self.src_state)
        self.dst, self.logs = {}, {}
        for i, j in enumerate(JOBS):
            self.logs[j] = os.path.join(self.tmp, f"{j}.requests.jsonl")
            self.dst[j] = self.sim(self.drifted(10 + i), extra_args=["--request-log",
                                                                   self.logs[j]])

    def tearDown(self):
        for d in self.daemons:
            try:
                os.kill(d.pid, signal.SIGCONT)
            except OSError:
                pass
            d.stop()
        for s in self.sims:
            s.stop()
        self.history.close()
        self.etcd.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def make_etcd(self):
        return Etcd(self.tmp)

    def sim(self, state, **kw):
        s = Sim("genesys", state=state, latency=self.SIM_LATENCY, **kw).start()
        self.sims.append(s)
        return s

    def drifted(self, seed, drift=None):
        return gen("genesys", seed=seed, same_as=self.src_state,
                   drift=self.DRIFT if drift is None else drift)

    def configs(self, n, interval="2s", ttl=TTL, http=(), etcd=(), name="rs", metrics=False,
                **top):
        """n configs of the five jobs on this etcd, each with its own state_dir (and, with
        `metrics`, its metrics file there); returns [(config, status.json)]."""
        http, etcd = dict(http), dict(etcd)
        tenants = {"src": tenant_for(self.src)}
        for j in JOBS:
            tenants[f"dst-{j}"] = tenant_for(self.dst[j])
        jobs = [{"name": j, "source": "src", "target": f"dst-{j}", "interval": interval,
                 "max_deletes": 100000} for j in JOBS]
        out = []
        for i in range(n):
            sd = os.path.join(self.tmp, f"{name}-state{i}")
            if metrics:
                top["metrics_file"] = os.path.join(sd, "rolesyncd.prom")
            cfg = write_config(self.tmp, tenants, jobs, state_dir=sd, name=f"{name}{i}.yaml",
                               log_level="info", http=dict({"rate_limit": "0"}, **http),
                               coordination={"etcd": dict({"endpoints": [self.etcd.url],
                                                           "prefix": PREFIX,
                                                           "lease_ttl": f"{ttl}s"}, **etcd)},
                               **top)
            out.append((cfg, os.path.join(sd, "status.json")))
        return out

    def start(self, cfg):
        d = Daemon(cfg).start()
        self.daemons.append(d)
        return d

    def spread(self, statuses):
        hs = [holding(s) or [] for s in statuses]
        everything = sorted(j for h in hs for j in h)
        return hs if everything == JOBS else None

    def writes(self, job):
        return api_writes(read_request_log(self.logs[job]))

    def all_converged(self):
        return all(converged(self.src, self.dst[j]) for j in JOBS)

    def check_history(self):
        n, problems = check_writes(self.history, PREFIX,
                                   {j: read_request_log(self.logs[j]) for j in JOBS})
        self.assertEqual(problems[:10], [], f"{len(problems)} fencing violations")
        return n


@unittest.skipUnless(os.access(ETCD, os.X_OK),
                     f"{ETCD} is missing: apt-get install etcd-server etcd-client")
class CoordinationTest(CoordCase):
    def test_exclusive_spread_takeover_fencing_and_etcd_outage(self):
        cfgs = self.configs(3, metrics=True)
        daemons = [self.start(c) for c, _ in cfgs]
        statuses = [s for _, s in cfgs]

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
        members = [read_status(s)["daemon"]["coordination"]["member"] for s in statuses]
        # the metric and --status say the same as the status file
        for i, (cfg, sp) in enumerate(cfgs):
            prom = os.path.join(os.path.dirname(sp), "rolesyncd.prom")
            self.assertTrue(wait_until(
                lambda: f"rolesyncd_jobs_held {len(hs[i])}\n" in (slurp(prom) or ""),
                timeout=4 * TTL), prom)
            p = run_rolesyncd(["-c", cfg, "--status"])
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertRegex(p.stdout, rf"coordination\s+etcd as member {re.escape(members[i])}, "
                                       rf"holding {len(hs[i])} job\(s\)")
        self.assertTrue(wait_until(self.all_converged, timeout=60), "first cycles")

        # -- kill -9 a holder of two jobs; they run elsewhere within 2 x TTL
        victim = next(i for i, h in enumerate(hs) if len(h) == 2)
        moved = hs[victim]
        others = [i for i in range(3) if i != victim]
        marks = {i: len(daemons[i].log_text()) for i in others}
        t0 = time.monotonic()
        os.kill(daemons[victim].pid, signal.SIGKILL)
        daemons[victim].wait(5)

        def moved_and_started():
            started = {j for j in moved for i in others
                       if f"job={j} cycle started" in daemons[i].log_text()[marks[i]:]}
            return started == set(moved)
        self.assertTrue(wait_until(moved_and_started, timeout=6 * TTL, interval=0.05),
                        [holding(statuses[i]) for i in others])
        took = time.monotonic() - t0
        print(f"takeover after kill -9: {took:.2f}s (lease_ttl {TTL}s, limit {2 * TTL}s)")
        self.assertLessEqual(took, 2 * TTL)
        hs2 = wait_until(lambda: self.spread([statuses[i] for i in others]),
                         timeout=4 * TTL, interval=0.2)
        self.assertIsNotNone(hs2)
        self.assertFalse(set(hs2[0]) & set(hs2[1]))

        # -- SIGSTOP a holder in the middle of its writes, past the TTL; SIGCONT: it sends
        #    nothing more, its cycle is abandoned and reported
        sleeper = others[0] if hs2[0] else others[1]
        awake = others[1] if sleeper == others[0] else others[0]
        job = sorted(holding(statuses[sleeper]))[0]
        me = members[sleeper]
        self.dst[job].add_faults(STALL_WRITES)
        self.dst[job].put_state(self.drifted(77, drift=100))

        def writing():
            return any((parse_fence(w["fence"]) or ("", ""))[1] == me for w in self.writes(job)
                       if w["t0"] > t_mark)
        t_mark = time.time()
        self.assertTrue(wait_until(writing, timeout=6 * TTL, interval=0.02),
                        "the sleeper never started writing")
        mark = len(daemons[sleeper].log_text())
        os.kill(daemons[sleeper].pid, signal.SIGSTOP)
        t_stop = time.time()
        t1 = time.monotonic()
        self.assertTrue(wait_until(lambda: sorted(holding(statuses[awake]) or []) == JOBS,
                                   timeout=4 * TTL, interval=0.1))
        print(f"takeover from a stopped process: {time.monotonic() - t1:.2f}s")
        time.sleep(1)
        t_cont = time.time()
        os.kill(daemons[sleeper].pid, signal.SIGCONT)
        self.assertTrue(daemons[sleeper].wait_for_log("writes stopped, cycle abandoned",
                                                      timeout=4 * TTL),
                        daemons[sleeper].log_text()[mark:][-3000:])
        after = daemons[sleeper].log_text()[mark:]
        self.assertIn(f"job={job} writes stopped, cycle abandoned reason=", after)
        # what it had sent before the stop may be stamped a little later by a loaded
        # simulator; nothing may arrive from it after that (and none after it woke)
        late = [w for w in self.writes(job) if w["t0"] > t_stop + 1.0 and
                (parse_fence(w["fence"]) or ("", ""))[1] == me]
        self.assertEqual(late, [], "the paused holder wrote after it was stopped")
        sent_after = sum(1 for w in self.writes(job) if w["t0"] > t_cont and
                         (parse_fence(w["fence"]) or ("", ""))[1] == me)
        self.assertEqual(sent_after, 0)
        def abandoned():
            run = (read_status(statuses[sleeper])["jobs"][job].get("last_run") or {})
            return run if run.get("abandoned") else None
        run = wait_until(abandoned, timeout=4 * TTL)
        self.assertIsNotNone(run, read_status(statuses[sleeper])["jobs"][job])
        self.assertIn(run["result"], ("partial", "failed"))
        self.assertGreater(run["pending"], 0)
        self.assertIn("fence", run["abandoned"])
        print(f"paused holder: cycle {run['cycle']} abandoned ({run['abandoned']}), "
              f"{run['pending']} changes left to the new holder")
        self.dst[job].clear_faults()
        hs3 = wait_until(lambda: self.spread([statuses[i] for i in others]),
                         timeout=6 * TTL, interval=0.2)
        self.assertIsNotNone(hs3)
        self.assertFalse(set(hs3[0]) & set(hs3[1]))
        self.assertTrue(wait_until(self.all_converged, timeout=60), "after the pause")

        # -- etcd stopped for 30 s: nothing written, standby with the reason; then recovery
        self.etcd.stop()
        t_down = time.monotonic()

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
        t_quiet = time.time()
        print(f"etcd down: every job standby after {time.monotonic() - t_down:.2f}s")
        for k, j in enumerate(JOBS):  # what a running job would write
            self.dst[j].put_state(self.drifted(200 + k))
        time.sleep(max(0.0, 30 - (time.monotonic() - t_down)))
        t_up = time.time()
        during = sum(1 for j in JOBS for w in self.writes(j) if t_quiet <= w["t0"] <= t_up)
        print(f"etcd down 30 s: writes to the targets {during}")
        self.assertEqual(during, 0)
        self.etcd.start()
        t2 = time.monotonic()
        self.assertTrue(wait_until(self.all_converged, timeout=20 * TTL, interval=0.5),
                        "after etcd came back")
        print(f"every target converged {time.monotonic() - t2:.2f}s after etcd restarted")

        # -- SIGTERM in the middle of a slow write: the lease is revoked once that write is
        #    answered (not before: the other could write while it lands), then the other
        #    holds everything well before the TTL runs out
        hs5 = wait_until(lambda: self.spread([statuses[i] for i in others]),
                         timeout=10 * TTL, interval=0.2)
        self.assertIsNotNone(hs5)
        leaving = others[0] if hs5[0] else others[1]
        staying = others[1] if leaving == others[0] else others[0]
        job = sorted(holding(statuses[leaving]))[0]
        me = members[leaving]
        self.dst[job].add_faults(stall_writes(1500))
        t_mark = time.time()
        self.dst[job].put_state(self.drifted(900, drift=100))
        self.assertTrue(wait_until(writing, timeout=6 * TTL, interval=0.02),
                        "the leaving instance never started writing")
        t3 = time.monotonic()
        daemons[leaving].stop()
        self.assertEqual(daemons[leaving].returncode, 0)
        self.assertTrue(wait_until(lambda: sorted(holding(statuses[staying]) or []) == JOBS,
                                   timeout=4 * TTL, interval=0.05))
        print(f"takeover after SIGTERM mid-write (writes stalled 1.5 s): "
              f"{time.monotonic() - t3:.2f}s")
        self.dst[job].clear_faults()
        self.assertTrue(wait_until(self.all_converged, timeout=60))

        n = self.check_history()
        print(f"fencing: {n} writes checked against etcd's key history, none without the key, "
              f"no overlap between instances")

    def test_once_coordinate_runs_only_the_jobs_it_holds(self):
        cfgs = self.configs(2)
        # without a coordination: block, --coordinate is a usage error
        plain = write_config(self.tmp, {"src": tenant_for(self.src),
                                        "dst": tenant_for(self.dst[JOBS[0]])},
                             [{"name": "p", "source": "src", "target": "dst"}],
                             state_dir=os.path.join(self.tmp, "plain"), name="plain.yaml")
        p = run_rolesyncd(["-c", plain, "--once", "--coordinate"])
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("--coordinate needs a coordination: block", p.stderr)
        p = run_rolesyncd(["-c", cfgs[0][0], "--coordinate"])
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("--coordinate goes with --once", p.stderr)

        # a daemon holds every job: the one-time run runs none, writes nothing, exits 0
        d = self.start(cfgs[0][0])
        self.assertTrue(wait_until(lambda: sorted(holding(cfgs[0][1]) or []) == JOBS,
                                   timeout=8 * TTL, interval=0.2))
        self.assertTrue(wait_until(self.all_converged, timeout=60))
        daemon_member = read_status(cfgs[0][1])["daemon"]["coordination"]["member"]
        for k, j in enumerate(JOBS):
            self.dst[j].put_state(self.drifted(400 + k))
        t0 = time.time()
        p = run_rolesyncd(["-c", cfgs[1][0], "--once", "--coordinate"])
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        for j in JOBS:
            self.assertIn(f"job={j} job held by another instance, not run holder={daemon_member}",
                          p.stderr)
        st = read_status(cfgs[1][1])
        for j in JOBS:
            self.assertEqual(st["jobs"][j]["state"], "standby", st["jobs"][j])
            self.assertEqual(st["jobs"][j]["holder"], daemon_member)
        strangers = [w for j in JOBS for w in self.writes(j) if w["t0"] >= t0 and
                     (parse_fence(w["fence"]) or ("", ""))[1] != daemon_member]
        self.assertEqual(strangers, [], "the one-time run wrote")
        # the daemon left the one-time run's keys alone and kept mirroring
        self.assertTrue(wait_until(self.all_converged, timeout=60))
        # a dry run fences nothing, so it takes no key (and plans every job)
        p = run_rolesyncd(["-c", cfgs[1][0], "--once", "--coordinate", "--dry-run"])
        self.assertIn(p.returncode, (0, 2), p.stderr[-3000:])
        self.assertIn("dry run: --coordinate takes no keys", p.stderr)
        for j in JOBS:
            self.assertIn(f"job={j} cycle finished result=dry_run", p.stderr)

        # the daemon gone (SIGTERM revokes its lease): the one-time run takes every key,
        # mirrors with fenced writes, and gives the keys back when it ends
        d.stop()
        self.assertEqual(d.returncode, 0)
        for k, j in enumerate(JOBS):
            self.dst[j].put_state(self.drifted(500 + k))
        t1 = time.time()
        p = run_rolesyncd(["-c", cfgs[1][0], "--once", "--coordinate"])
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        self.assertTrue(self.all_converged())
        mine = [w for j in JOBS for w in self.writes(j) if w["t0"] >= t1]
        self.assertGreater(len(mine), 0)
        once_member = {(parse_fence(w["fence"]) or ("", "?"))[1] for w in mine}
        self.assertEqual(len(once_member), 1, once_member)
        self.assertNotIn(daemon_member, once_member)
        self.assertEqual({k: v for k, v in self.etcd.keys(PREFIX).items()}, {},
                         "keys left behind")
        st = read_status(cfgs[1][1])
        self.assertEqual(st["daemon"]["coordination"]["member"], once_member.pop())
        for j in JOBS:
            self.assertEqual(st["jobs"][j]["last_run"]["result"], "ok", st["jobs"][j])
        self.check_history()  # the daemon's and the one-time run's writes alike

        # etcd down: nothing runs, exit 1, the reason said
        self.etcd.stop()
        for k, j in enumerate(JOBS):
            self.dst[j].put_state(self.drifted(600 + k))
        t2 = time.time()
        p = run_rolesyncd(["-c", cfgs[1][0], "--once", "--coordinate"], timeout=60)
        self.assertEqual(p.returncode, 1, p.stderr[-3000:])
        self.assertIn("coordination unavailable, nothing run", p.stderr)
        self.assertEqual([w for j in JOBS for w in self.writes(j) if w["t0"] >= t2], [])
        st = read_status(cfgs[1][1])
        for j in JOBS:
            self.assertEqual(st["jobs"][j]["state"], "standby", st["jobs"][j])
            self.assertIn("coordination unavailable", st["jobs"][j]["reason"])
        # plain --once ignores coordination (product.md 7a): it runs without etcd
        p = run_rolesyncd(["-c", cfgs[1][0], "--once"], timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        self.assertTrue(self.all_converged())
        self.etcd.start()


if __name__ == "__main__":
    unittest.main(verbosity=2)
