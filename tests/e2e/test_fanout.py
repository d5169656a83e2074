"""One source, many targets (product.md 4b.1) and identity's write host (4b.2), end to end: a real
rolesyncd process against tenantsim processes. Every check reads the simulators' states or their
request counts, the status file and the exit code, never the daemon's own account of what it did.
"""

import copy
import json
import os
import shutil
import signal
import tempfile
import time
import unittest

from rsconfig import tenant_for, user_grants, user_roles, write_config, IDENTITY_ADMIN, IDENTITY_MEMBER
from simlib import Daemon, Sim, gen, run_rolesyncd


def source_reads(sim):
    """API requests a simulator answered, token requests left out."""
    return sum(v for k, v in sim.stats()["by_route"].items()
               if "token" not in k and "oauth" not in k)


def without_custom_roles(state):
    """The state with every custom role and every grant of one removed: a target that needs
    only creates and grants, never a deletion."""
    t = copy.deepcopy(state)
    custom = {r["id"] for r in t["roles"] if not r.get("defaultRoleId")}
    t["roles"] = [r for r in t["roles"] if r["id"] not in custom]
    for u in t["users"]:
        u["roles"] = [r for r in u.get("roles") or [] if r not in custom]
        u["grants"] = [g for g in u.get("grants") or [] if g["role"] not in custom]
    for g in t.get("groups") or []:
        g["roles"] = [r for r in g.get("roles") or [] if r not in custom]
        g["grants"] = [x for x in g.get("grants") or [] if x["role"] not in custom]
    return t


def status_jobs(state_dir):
    with open(os.path.join(state_dir, "status.json"), encoding="utf-8") as f:
        return json.load(f)["jobs"]


class FanOutCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="fanout-")
        self.sims = []

    def tearDown(self):
        for s in self.sims:
            s.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def sim(self, state, api="genesys", **kw):
        s = Sim(api, state=state, **kw)
        s.start()
        self.sims.append(s)
        return s

    def config(self, src, targets, name="rolesyncd.yaml", **job):
        tenants = {"src": tenant_for(src)}
        tenants.update({k: tenant_for(v) for k, v in targets.items()})
        j = {"name": "j", "source": "src", "target": list(targets),
             "roles": {"definitions": True}, "max_deletes": 1000}
        j.update(job)
        return write_config(self.dir, tenants, [j], name=name, log_level="info",
                            http={"rate_limit": "0",
                                  "retry": {"max_attempts": 2, "initial_delay": "100ms",
                                            "max_delay": "200ms"}})

    def once(self, cfg, *extra, expect=0):
        p = run_rolesyncd(["-c", cfg, "--once", *extra])
        self.assertEqual(p.returncode, expect,
                         f"exit {p.returncode}\nstdout:\n{p.stdout[-3000:]}\n"
                         f"stderr:\n{p.stderr[-5000:]}")
        return p

    def assert_mirrored(self, src, dst):
        want, have = user_grants(src.state()), user_grants(dst.state())
        for email, grants in want.items():
            self.assertEqual(have.get(email), grants, email)


class FanOut(FanOutCase):
    def test_three_targets_read_the_source_once_and_all_converge(self):
        s = gen("genesys", 300, 12, seed=21, divisions=3, groups=3)
        src = self.sim(s)
        dsts = {f"t{i}": self.sim(without_custom_roles(s)) for i in (1, 2, 3)}
        # one source read, measured with a single-target job on the same data
        one = self.config(src, {"t1": dsts["t1"]}, name="one.yaml")
        self.once(one, "--dry-run", expect=2)
        single = source_reads(src)
        self.assertGreater(single, 0)

        src.reset_stats()
        cfg = self.config(src, dsts)
        p = self.once(cfg)
        self.assertEqual(source_reads(src), single,
                         "three targets read the source more than once")
        for name, d in dsts.items():
            self.assert_mirrored(src, d)
            self.assertIn(f"job=j/{name} ", p.stderr)
        jobs = status_jobs(os.path.join(self.dir, "state"))
        self.assertEqual(sorted(jobs), ["j/t1", "j/t2", "j/t3"])
        for j in jobs.values():
            self.assertEqual(j["last_run"]["result"], "ok", j)

        # the second cycle writes nothing anywhere and still reads the source once
        src.reset_stats()
        for d in dsts.values():
            d.reset_stats()
        self.once(cfg)
        self.assertEqual(source_reads(src), single)
        for name, d in dsts.items():
            self.assertEqual(d.stats()["writes"], 0, name)

    def test_one_target_down_and_one_refused_leave_the_third_converged(self):
        s = gen("genesys", 200, 8, seed=22, divisions=2)
        src = self.sim(s)
        good = self.sim(without_custom_roles(s))
        down = self.sim(without_custom_roles(s))
        # the refused one holds extra direct grants of a custom role: removals over the guard
        t3 = copy.deepcopy(s)
        custom = next(r["id"] for r in t3["roles"] if not r.get("defaultRoleId"))
        extra = 0
        for u in t3["users"]:
            if custom not in (u.get("roles") or []) and u.get("state") != "deleted" and extra < 30:
                u.setdefault("roles", []).append(custom)
                extra += 1
        refused = self.sim(t3)
        cfg = self.config(src, {"good": good, "down": down, "refused": refused}, max_deletes=5)
        down.stop()
        refused.reset_stats()
        # the worst of them: a target that cannot be read is fatal (1)
        self.once(cfg, expect=1)
        self.assert_mirrored(src, good)
        self.assertEqual(refused.stats()["writes"], 0, "a refused plan wrote")
        jobs = status_jobs(os.path.join(self.dir, "state"))
        self.assertEqual(jobs["j/good"]["last_run"]["result"], "ok")
        self.assertEqual(jobs["j/down"]["last_run"]["result"], "failed")
        self.assertEqual(jobs["j/refused"]["last_run"]["result"], "refused")
        # one target alone, by its NAME/TARGET; the refusal alone exits 4
        self.once(cfg, "--job", "j/refused", expect=4)
        self.once(cfg, "--job", "j/good")

    def test_source_down_fails_every_target_and_writes_nothing(self):
        s = gen("genesys", 50, 4, seed=26, divisions=2)
        src = self.sim(s)
        dsts = {f"t{i}": self.sim(without_custom_roles(s)) for i in (1, 2)}
        cfg = self.config(src, dsts)
        src.stop()
        self.once(cfg, expect=1)
        jobs = status_jobs(os.path.join(self.dir, "state"))
        for name, d in dsts.items():
            self.assertEqual(d.stats()["writes"], 0, name)
            self.assertEqual(jobs[f"j/{name}"]["last_run"]["result"], "failed")

    def test_daemon_cycle_reads_source_once_and_reload_adds_a_fourth_target(self):
        s = gen("genesys", 150, 6, seed=23, divisions=2)
        src = self.sim(s)
        dsts = {f"t{i}": self.sim(without_custom_roles(s)) for i in (1, 2, 3)}
        one = self.config(src, {"t1": dsts["t1"]}, name="one.yaml")
        self.once(one, "--dry-run", expect=2)
        single = source_reads(src)
        src.reset_stats()
        cfg = self.config(src, dsts, interval="1h")
        with Daemon(cfg) as d:
            for name in dsts:
                d.wait_for_log(f"job=j/{name} cycle finished", timeout=60)
            self.assertEqual(source_reads(src), single, "the daemon read the source per target")
            for dst in dsts.values():
                self.assert_mirrored(src, dst)
            t4 = self.sim(without_custom_roles(s))
            dsts["t4"] = t4
            self.config(src, dsts, interval="1h")
            d.signal(signal.SIGHUP)
            d.wait_for_log("job=j/t4 cycle finished", timeout=60)
            self.assert_mirrored(src, t4)
            deadline = time.time() + 10
            while time.time() < deadline and "j/t4" not in status_jobs(
                    os.path.join(self.dir, "state")):
                time.sleep(0.2)
            self.assertIn("j/t4", status_jobs(os.path.join(self.dir, "state")))

    def test_check_names_bad_target_lists(self):
        src = self.sim(gen("genesys", 5, 2, seed=24))
        dst = self.sim(gen("genesys", 5, 2, seed=25))
        cfg = write_config(self.dir, {"src": tenant_for(src), "dst": tenant_for(dst)},
                           [{"name": "j", "source": "src", "target": ["dst", "dst"]},
                            {"name": "k", "source": "src", "target": []},
                            {"name": "m", "source": "src", "target": ["dst", "nope"]}])
        p = run_rolesyncd(["-c", cfg, "--check"])
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        out = p.stdout + p.stderr
        self.assertRegex(out, r'rolesyncd\.yaml:\d+:\d+: target "dst" is listed twice')
        self.assertRegex(out, r'rolesyncd\.yaml:\d+:\d+: "target" is an empty list')
        self.assertRegex(out, r'rolesyncd\.yaml:\d+:\d+: unknown tenant "nope"')


class IdentityWriteHost(FanOutCase):
    def fixture(self):
        s = gen("identity", 40, 6, seed=31)
        t = gen("identity", same_as=s, seed=32, no_custom_roles=True)
        return s, t

    def test_regional_host_refuses_writes_with_a_message_naming_write_base_url(self):
        s, t = self.fixture()
        src = self.sim(s, api="identity")
        regional = self.sim(t, api="identity", read_only_region=True)
        cfg = write_config(self.dir, {"src": tenant_for(src), "dst": tenant_for(regional)},
                           [{"name": "j", "source": "src", "target": "dst",
                             "roles": {"definitions": True}}],
                           http={"rate_limit": "0", "retry": {"max_attempts": 2,
                                                              "initial_delay": "100ms",
                                                              "max_delay": "200ms"}})
        p = self.once(cfg, expect=3)
        self.assertIn("status=405", p.stderr)
        self.assertIn("write_base_url", p.stderr)

    def test_writes_go_to_the_write_host_and_the_read_host_sees_none(self):
        s, t = self.fixture()
        src = self.sim(s, api="identity")
        regional = self.sim(t, api="identity", read_only_region=True, token_realm="aveva")
        glob = self.sim(t, api="identity", token_realm="aveva")
        dst = tenant_for(regional, write_base_url=glob.base_url)
        cfg = write_config(self.dir, {"src": tenant_for(src), "dst": dst},
                           [{"name": "j", "source": "src", "target": "dst",
                             "roles": {"definitions": True}}],
                           http={"rate_limit": "0"})
        regional.reset_stats()
        self.once(cfg)
        self.assertEqual(regional.stats()["writes"], 0, "a write went to the read-only host")
        self.assertGreater(glob.stats()["writes"], 0)
        skip = (IDENTITY_MEMBER, IDENTITY_ADMIN)
        want, have = user_roles(src.state(), skip), user_roles(glob.state(), skip)
        for email, roles in want.items():
            self.assertEqual(have.get(email), roles, email)
        reads = [k for k in glob.stats()["by_route"] if k.startswith("GET ")]
        self.assertEqual(reads, [], "reads went to the write host")

    def test_check_warns_about_a_regional_base_url(self):
        s, _ = self.fixture()
        src = self.sim(s, api="identity")
        euno = dict(tenant_for(src), base_url="https://euno.datahub.connect.aveva.com")
        uswe = dict(tenant_for(src), base_url="https://uswe.datahub.connect.aveva.com")
        fixed = dict(euno, write_base_url="https://uswe.datahub.connect.aveva.com")
        for tenant, warned in ((euno, True), (uswe, False), (fixed, False)):
            cfg = write_config(self.dir, {"src": tenant_for(src), "dst": tenant},
                               [{"name": "j", "source": "src", "target": "dst"}])
            p = run_rolesyncd(["-c", cfg, "--check"])
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertEqual("write_base_url" in p.stdout + p.stderr, warned, p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
