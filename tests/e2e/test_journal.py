"""The change journal (product.md 4c) end to end: a real rolesyncd against two genesys
tenantsims with divisions.

(a) One --once cycle creates, updates and deletes (prune) roles and adds and removes grants in
    divisions: every change the target's state shows is in {state_dir}/changes.jsonl exactly
    once, with the right kind, role, user, division and result; role lines carry definitions;
    the deletion has its "pending" line (whole definition and holders) before its outcome line;
    the summary log line's cycle= equals status.json last_run.cycle equals the lines' cycle.
(b) A second cycle, in sync, writes no line; in_sync_since is set and kept.
(c) --history, --history 1, --history=1, an empty journal, an unreadable one.
(d) Rotation at a small journal.max_size (keep 2: .1 and .2, the oldest dropped).
(e) kill -9 at random points of a cycle that deletes many roles (latency makes it last): after
    each round every line but a torn last one parses, and every role the target lost has a
    role_delete "pending" line with its whole definition, written before the role went.

Everything checked comes from the simulators' state and the files, not the daemon's account.
"""

import copy
import glob
import json
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from rsconfig import tenant_for, user_grants, write_config
from simlib import Sim, binary, gen, run_rolesyncd

JOURNAL = "changes.jsonl"
SEED = 20261204
KINDS = {"role_create", "role_update", "role_delete", "grant_add", "grant_remove"}


def journal_files(state_dir):
    """The journal's files, oldest first (changes.jsonl.N ... .1, changes.jsonl)."""
    rotated = []
    for p in glob.glob(os.path.join(state_dir, JOURNAL + ".*")):
        suffix = p.rsplit(".", 1)[1]
        if suffix.isdigit():
            rotated.append((int(suffix), p))
    files = [p for _, p in sorted(rotated, reverse=True)]
    base = os.path.join(state_dir, JOURNAL)
    return files + ([base] if os.path.exists(base) else [])


def read_journal(state_dir, allow_torn_last=False, max_torn=0):
    """Every line of every file as parsed JSON, oldest first. A line that does not parse fails
    the test, except (allow_torn_last) the very last line of the current file, and up to
    max_torn others (lines torn by earlier kills, ended by the next run's first line)."""
    out = []
    torn = 0
    files = journal_files(state_dir)
    for fi, path in enumerate(files):
        with open(path, "rb") as f:
            data = f.read()
        lines = data.split(b"\n")
        for li, raw in enumerate(lines):
            if not raw:
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
                if not isinstance(obj, dict):
                    raise ValueError("not an object")
            except ValueError:
                last = fi == len(files) - 1 and li == len(lines) - 1
                if allow_torn_last and last:
                    continue
                if torn < max_torn:
                    torn += 1
                    continue
                raise AssertionError(f"{path}:{li + 1}: unparsable journal line {raw[:200]!r}")
            out.append(obj)
    return out


def div_label(division):
    """The journal's division as user_grants() names it."""
    if division is None:
        return "home"
    return "*" if division == "*" else division.lower()


class JournalCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="journal-")
        self.state_dir = os.path.join(self.dir, "state")
        self.sims = []

    def tearDown(self):
        for s in self.sims:
            s.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def sim(self, state, **kw):
        s = Sim("genesys", state=state, **kw)
        s.start()
        self.sims.append(s)
        return s

    def config(self, src, dst, journal=None, http=None, log_level="info", **job):
        j = {"name": "j", "source": "src", "target": "dst", "roles": {"definitions": True},
             "prune": True, "max_deletes": 100000}
        j.update(job)
        top = {"log_level": log_level,
               "http": http or {"rate_limit": "0",
                                "retry": {"max_attempts": 3, "initial_delay": "100ms",
                                          "max_delay": "500ms"}}}
        if journal is not None:
            top["journal"] = journal
        return write_config(self.dir, {"src": tenant_for(src), "dst": tenant_for(dst)}, [j],
                            state_dir=self.state_dir, **top)

    def once(self, cfg, *extra, expect=0):
        p = run_rolesyncd(["-c", cfg, "--once", *extra])
        self.assertEqual(p.returncode, expect,
                         f"exit {p.returncode}\nstdout:\n{p.stdout[-4000:]}\n"
                         f"stderr:\n{p.stderr[-4000:]}")
        return p

    def status(self):
        with open(os.path.join(self.state_dir, "status.json"), encoding="utf-8") as f:
            return json.load(f)


def custom(state):
    return [r for r in state["roles"] if not r.get("default")]


def drifted_target(src_state, seed):
    """A twin of the source with: one custom role missing (created), one changed (updated), one
    extra role held by two users, one at home and one in a division (pruned), and grant drift in
    divisions (grants added and removed)."""
    t = gen("genesys", same_as=src_state, seed=seed)
    roles = custom(t)
    gone, changed = roles[0], roles[1]
    t["roles"] = [r for r in t["roles"] if r["id"] != gone["id"]]
    for u in t["users"]:
        u["roles"] = [r for r in u.get("roles") or [] if r != gone["id"]]
        u["grants"] = [g for g in u.get("grants") or [] if g["role"] != gone["id"]]
    changed["description"] = "changed on the target"
    changed["permissionPolicies"] = changed["permissionPolicies"][:1]
    extra = {"id": "0e0e0e0e-0000-4000-8000-00000000e0e0", "name": "Obsolete Local Role",
             "description": "only on the target", "default": False, "base": False,
             "permissions": [],
             "permissionPolicies": [{"domain": "routing", "entityName": "queue",
                                     "actionSet": ["view"], "allowConditions": False,
                                     "policyName": "default", "namedResources": []}]}
    t["roles"].append(extra)
    divs = [d for d in t["divisions"] if not d.get("home")]
    users = [u for u in t["users"] if u.get("state") != "deleted" and u.get("email")]
    users[0].setdefault("roles", []).append(extra["id"])
    users[1].setdefault("grants", []).append({"role": extra["id"], "division": divs[0]["id"]})
    # drift: a division grant dropped (to be added back), a foreign one added (to be removed)
    for u in users[2:]:
        if u.get("grants"):
            u["grants"] = u["grants"][1:]
            break
    users[3].setdefault("grants", []).append({"role": roles[2]["id"], "division": divs[-1]["id"]})
    return t, gone["name"], changed["name"], extra["name"]


class OneCycle(JournalCase):
    def test_every_change_once_then_nothing(self):
        s = gen("genesys", 30, 8, seed=SEED, divisions=3)
        src = self.sim(s)
        t, created, updated, deleted = drifted_target(s, SEED + 1)
        dst = self.sim(t)
        before = dst.state()
        cfg = self.config(src, dst)

        # a dry run journals nothing (and opens no journal)
        self.once(cfg, "--dry-run", expect=2)
        self.assertEqual(journal_files(self.state_dir), [])

        p = self.once(cfg)
        after = dst.state()
        lines = read_journal(self.state_dir)
        self.assertTrue(lines)

        # --- one cycle id: the lines', the summary's, status.json's ---
        cycles = {ln["cycle"] for ln in lines}
        self.assertEqual(len(cycles), 1, cycles)
        cycle = cycles.pop()
        self.assertRegex(cycle, r"^\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{8}$")
        m = re.findall(r"cycle finished result=ok .* cycle=(\S+)", p.stderr)
        self.assertEqual(m, [cycle], p.stderr[-3000:])
        self.assertIn(f"cycle=%s" % cycle, re.search(r".*cycle started.*", p.stderr).group(0))
        st = self.status()["jobs"]["j"]
        self.assertEqual(st["last_run"]["cycle"], cycle)
        for ln in lines:
            self.assertEqual((ln["job"], ln["target"]), ("j", "dst"))
            self.assertIn(ln["kind"], KINDS)
            self.assertRegex(ln["at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            for key in ("cycle", "seq", "job", "target", "at", "kind", "role", "role_id", "user",
                        "user_id", "division", "division_id", "before", "after", "result",
                        "correlation_id", "message", "undo_of"):
                self.assertIn(key, ln)
        seqs = [ln["seq"] for ln in lines]
        # seqs count from 1 in writing order; a deletion's two lines share one
        self.assertEqual(sorted(set(seqs)), list(range(1, len(set(seqs)) + 1)))

        # --- roles: one create, one update, one delete (two lines), with definitions ---
        roles = [ln for ln in lines if ln["kind"].startswith("role_")]
        self.assertEqual(sorted((ln["kind"], ln["role"], ln["result"]) for ln in roles),
                         [("role_create", created, "ok"), ("role_delete", deleted, "ok"),
                          ("role_delete", deleted, "pending"), ("role_update", updated, "ok")])
        new_ids = {r["name"]: r["id"] for r in after["roles"]}
        old = {r["name"]: r for r in before["roles"]}
        cr = next(ln for ln in roles if ln["kind"] == "role_create")
        self.assertEqual(cr["role_id"], new_ids[created])
        self.assertIsNone(cr["before"])
        src_role = next(r for r in s["roles"] if r["name"] == created)
        self.assertEqual(cr["after"]["name"], created)
        self.assertEqual(cr["after"]["description"], src_role["description"])
        self.assertEqual(len(cr["after"]["definition"]["permissionPolicies"]),
                         len(src_role["permissionPolicies"]))
        up = next(ln for ln in roles if ln["kind"] == "role_update")
        self.assertEqual(up["role_id"], old[updated]["id"])
        self.assertEqual(up["before"]["description"], "changed on the target")
        self.assertEqual(len(up["before"]["definition"]["permissionPolicies"]), 1)
        src_up = next(r for r in s["roles"] if r["name"] == updated)
        self.assertEqual(up["after"]["description"], src_up["description"])
        self.assertEqual(len(up["after"]["definition"]["permissionPolicies"]),
                         len(src_up["permissionPolicies"]))
        dels = [i for i, ln in enumerate(lines) if ln["kind"] == "role_delete"]
        pend, done = lines[dels[0]], lines[dels[1]]
        self.assertEqual((pend["result"], done["result"]), ("pending", "ok"))  # pending first
        self.assertEqual(pend["seq"], done["seq"])
        self.assertEqual(pend["role_id"], old[deleted]["id"])
        self.assertEqual(pend["before"]["name"], deleted)
        self.assertEqual(pend["before"]["description"], "only on the target")
        self.assertEqual(pend["before"]["definition"]["permissionPolicies"][0]["entityName"],
                         "queue")
        self.assertNotIn(deleted, new_ids)

        # --- grants: exactly the changes the states show, each once ---
        want, had, have = user_grants(s), user_grants(before), user_grants(after)
        self.assertEqual(have, want)  # the cycle converged
        exp_add = {(u, r, d) for u in want for (r, d) in want[u] - had.get(u, frozenset())}
        exp_rm = {(u, r, d) for u in had for (r, d) in had[u] - want.get(u, frozenset())}
        self.assertTrue(any(d not in ("home",) for (_, _, d) in exp_add), exp_add)
        self.assertTrue(any(d not in ("home",) for (_, _, d) in exp_rm), exp_rm)
        got_add, got_rm = [], []
        for ln in lines:
            if ln["kind"] not in ("grant_add", "grant_remove"):
                continue
            self.assertEqual(ln["result"], "ok")
            self.assertIsNone(ln["before"])
            self.assertIsNone(ln["after"])
            self.assertTrue(ln["user_id"] and ln["role_id"])
            key = (ln["user"].lower(), ln["role"].lower(), div_label(ln["division"]))
            (got_add if ln["kind"] == "grant_add" else got_rm).append(key)
            if ln["division"] is not None and ln["division"] != "*":
                div = next(d for d in after["divisions"] if d["name"] == ln["division"])
                self.assertEqual(ln["division_id"], div["id"])
        # the pruned role's holders go with it: in its `before` or as grant_remove lines, never
        # both, and nowhere twice
        holders = [(h["user"].lower(), deleted.lower(), div_label(h["division"]))
                   for h in pend["before"]["holders"]]
        self.assertEqual(len(got_add), len(set(got_add)))
        self.assertEqual(len(got_rm + holders), len(set(got_rm + holders)))
        self.assertEqual(set(got_add), exp_add)
        self.assertEqual(set(got_rm) | set(holders), exp_rm)
        # (under mirror the plan removes them first, so they are grant_remove lines here; the
        # kill -9 test below, additive, has them as holders)
        went = sorted(k[2] for k in got_rm + holders if k[1] == deleted.lower())
        self.assertIn("home", went)  # one at home, one in a division
        self.assertEqual(len(went), 2)

        # --- (b) the second cycle is in sync: no line; in_sync_since set and kept ---
        since = st["in_sync_since"]
        self.assertTrue(st["in_sync"])
        self.assertEqual(since, st["last_run"]["started_at"])
        size = os.path.getsize(os.path.join(self.state_dir, JOURNAL))
        p2 = self.once(cfg)
        self.assertEqual(os.path.getsize(os.path.join(self.state_dir, JOURNAL)), size)
        st2 = self.status()["jobs"]["j"]
        self.assertNotEqual(st2["last_run"]["cycle"], cycle)
        self.assertIn("cycle=" + st2["last_run"]["cycle"], p2.stderr)
        self.assertEqual(st2["in_sync_since"], since)
        out = run_rolesyncd(["-c", cfg, "--status"])
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("in sync since", out.stdout)
        self.assertIn(st2["last_run"]["cycle"], out.stdout)

        # --- (c) --history ---
        n_add, n_rm = len(got_add), len(got_rm)
        line = (f"{cycle}  j  dst  {lines[0]['at'][:19]}Z  roles +1 ~1 -1, "
                f"grants +{n_add} -{n_rm}")
        for args in (["--history"], ["--history", "1"], ["--history=1"], ["--history", "5"]):
            h = run_rolesyncd(["-c", cfg, *args])
            self.assertEqual(h.returncode, 0, h.stderr)
            self.assertEqual(h.stdout, line + "\n", args)
        # a second cycle with lines: --history 1 shows only it, --history both, oldest first
        dst.put_state(before)
        self.once(cfg)
        h = run_rolesyncd(["-c", cfg, "--history"])
        self.assertEqual(h.returncode, 0, h.stderr)
        rows = h.stdout.splitlines()
        self.assertEqual(len(rows), 2, h.stdout)
        self.assertEqual(rows[0], line)
        third = self.status()["jobs"]["j"]["last_run"]["cycle"]
        self.assertTrue(rows[1].startswith(third + "  j  dst  "), rows)
        self.assertLess(cycle, third)  # ids sort by start time
        h1 = run_rolesyncd(["-c", cfg, "--history", "1"])
        self.assertEqual(h1.stdout.splitlines(), rows[1:])
        # the secret never reaches the journal
        with open(os.path.join(self.state_dir, JOURNAL), encoding="utf-8") as f:
            self.assertNotIn(src.clients[0][1], f.read())
        # a torn last line is skipped and said; the rest still lists
        with open(os.path.join(self.state_dir, JOURNAL), "a", encoding="utf-8") as f:
            f.write('{"cycle": "x", "seq": 1, "jo')
        h = run_rolesyncd(["-c", cfg, "--history"])
        self.assertEqual(h.returncode, 0, h.stderr)
        self.assertEqual(h.stdout.splitlines()[:2], rows)
        self.assertIn("1 journal line skipped", h.stdout)
        # bad N
        self.assertEqual(run_rolesyncd(["-c", cfg, "--history", "0"]).returncode, 1)
        self.assertEqual(run_rolesyncd(["-c", cfg, "--history=x"]).returncode, 1)

    def test_history_empty_and_unreadable(self):
        s = gen("genesys", 5, 3, seed=SEED)
        src = self.sim(s)
        dst = self.sim(gen("genesys", same_as=s, seed=SEED + 1))
        cfg = self.config(src, dst)
        h = run_rolesyncd(["-c", cfg, "--history"])
        self.assertEqual(h.returncode, 0, h.stderr)
        self.assertIn("no changes journaled", h.stdout)
        # a journal that cannot be read: exit 1 with the reason
        os.makedirs(os.path.join(self.state_dir, JOURNAL))
        h = run_rolesyncd(["-c", cfg, "--history"])
        self.assertEqual(h.returncode, 1, h.stdout)
        self.assertIn(JOURNAL, h.stderr)
        # ... and a cycle that cannot journal still runs (warned once, not once a line)
        dst.put_state(gen("genesys", same_as=s, seed=SEED + 2, no_custom_roles=True))
        p = self.once(cfg)
        self.assertEqual(p.stderr.count("changes are not journaled"), 1, p.stderr[-3000:])
        self.assertEqual(user_grants(dst.state()), user_grants(s))


class Rotation(JournalCase):
    def test_rotates_at_max_size_keeping_two(self):
        s = gen("genesys", 300, 10, seed=SEED + 5, divisions=3)
        src = self.sim(s)
        dst = self.sim(gen("genesys", same_as=s, seed=SEED + 6, no_custom_roles=True))
        cfg = self.config(src, dst, journal={"max_size": "64KiB", "keep": 2})
        self.once(cfg)
        files = journal_files(self.state_dir)
        names = [os.path.basename(p) for p in files]
        self.assertEqual(names, [JOURNAL + ".2", JOURNAL + ".1", JOURNAL])
        for p in files:
            self.assertLessEqual(os.path.getsize(p), 64 * 1024, p)
        self.assertGreater(os.path.getsize(files[0]), 32 * 1024)
        lines = read_journal(self.state_dir)
        seqs = [ln["seq"] for ln in lines]
        # oldest first across the files, the oldest file dropped: seqs ascend from above 1
        self.assertEqual(seqs, sorted(seqs))
        self.assertGreater(seqs[0], 1)
        self.assertEqual(len({ln["cycle"] for ln in lines}), 1)
        self.assertEqual(oct(os.stat(files[-1]).st_mode & 0o777), "0o640")


class KillNine(JournalCase):
    ROUNDS = 20

    def test_deletions_are_journaled_before_they_happen(self):
        s = gen("genesys", 20, 3, seed=SEED + 9)
        src = self.sim(s)
        t = gen("genesys", same_as=s, seed=SEED + 10)
        users = [u for u in t["users"] if u.get("email")]
        for i in range(60):
            rid = "0d0d0d0d-0000-4000-8000-%012d" % i
            t["roles"].append({"id": rid, "name": "Local Role %02d" % i,
                               "description": "local %d" % i, "default": False, "base": False,
                               "permissions": [],
                               "permissionPolicies": [{"domain": "routing",
                                                       "entityName": "queue",
                                                       "actionSet": ["view"],
                                                       "allowConditions": False,
                                                       "policyName": "default",
                                                       "namedResources": []}]})
            users[i % len(users)].setdefault("roles", []).append(rid)
        dst = self.sim(t, latency=40)
        cfg = self.config(src, dst, log_level="warning", assignments="additive",
                          http={"rate_limit": "0", "max_connections": 2,
                                "retry": {"max_attempts": 2, "initial_delay": "100ms",
                                          "max_delay": "200ms"}})
        rng = random.Random(SEED)
        local = {r["name"]: r for r in t["roles"] if r["name"].startswith("Local Role")}
        env = dict(os.environ)
        killed_mid = 0
        undone = None
        for rnd in range(self.ROUNDS):
            dst.put_state(t)
            proc = subprocess.Popen([binary("ROLESYNCD"), "-c", cfg, "--once"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    env=env)
            time.sleep(rng.uniform(0.2, 2.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            # a request the killed daemon sent is still in tenantsim's 40 ms latency and lands
            # after the kill: let it, before this round's look and the next put_state (a
            # deletion landing after the restore made the last run find 58 roles, not 60)
            time.sleep(0.3)
            lines = read_journal(self.state_dir, allow_torn_last=True, max_torn=rnd)
            pending = {}
            for ln in lines:
                if ln["kind"] == "role_delete" and ln["result"] == "pending":
                    pending.setdefault(ln["role"], ln)
            names_now = {r["name"] for r in dst.state()["roles"]}
            gone = set(local) - names_now
            if gone and gone != set(local):
                killed_mid += 1
            if gone and not undone:
                # --undo of the killed cycle puts back what it deleted, in-doubt lines
                # included: the role by name, its description and policies, its holder
                killed = lines[-1]["cycle"]
                u = run_rolesyncd(["-c", cfg, "--undo", killed])
                self.assertEqual(u.returncode, 0, u.stdout + u.stderr)
                now = dst.state()
                by_name = {r["name"]: r for r in now["roles"]}
                for name in gone:
                    self.assertIn(name, by_name, f"round {rnd}: undo of {killed} did not put "
                                                 f"{name} back\n{u.stdout}")
                    r = by_name[name]
                    self.assertEqual(r["description"], local[name]["description"])
                    self.assertEqual(r["permissionPolicies"][0]["entityName"], "queue")
                    holders = [x["email"] for x in now["users"] if r["id"] in (x.get("roles") or [])
                               or any(g.get("role") == r["id"] for g in x.get("grants") or [])]
                    self.assertEqual(len(holders), 1, (name, holders))
                undone = killed
            for name in gone:
                self.assertIn(name, pending, f"round {rnd}: {name} deleted without a journal "
                                             f"line")
                b = pending[name]["before"]
                self.assertEqual(b["name"], name)
                self.assertEqual(b["description"], local[name]["description"])
                self.assertEqual(b["definition"]["permissionPolicies"][0]["entityName"], "queue")
                self.assertEqual(len(b["holders"]), 1, b)
                self.assertEqual(pending[name]["role_id"], local[name]["id"])
        # the kills did land in the middle of the deletions at least once, and one killed
        # cycle was undone
        self.assertGreater(killed_mid, 0)
        self.assertIsNotNone(undone)
        # and a clean run afterwards reads the journal it left and finishes the job
        dst.put_state(t)
        self.once(cfg)
        read_journal(self.state_dir, max_torn=self.ROUNDS)
        self.assertFalse(set(local) & {r["name"] for r in dst.state()["roles"]})
        h = run_rolesyncd(["-c", cfg, "--history", "100"])
        self.assertEqual(h.returncode, 0, h.stderr)
        rows = [r for r in h.stdout.splitlines() if not r.startswith("note:")]
        self.assertIn("roles +0 ~0 -60, grants +0 -0", rows[-1])


if __name__ == "__main__":
    unittest.main(verbosity=2)
