"""`rolesyncd --undo CYCLE` (product.md 4c) end to end, on two tenantsim Genesys orgs with
divisions: a cycle that creates, updates and (prune) deletes roles and adds and removes grants
in divisions is taken back exactly; an item changed by hand since is skipped and reported; an
undo of the undo gives the cycle's after-state again; the job's max_deletes refuses an undo
(exit 4, nothing written) until --force-deletes; --dry-run changes nothing. Every check reads
the target simulator's state (/_sim/state), never the daemon's own account.
"""

import json
import os
import re
import shutil
import tempfile
import unittest

from rsconfig import tenant_for, write_config
from simlib import Sim, gen, home_division, log_grammar_errors, run_rolesyncd

UNDO_CYCLE_RE = re.compile(r"^undo cycle (\S+)$", re.M)


def norm_policy(p):
    """A permission policy as the platform keeps it, without what it derives (the policy name
    and description, provider.h: never compared) and with its sets sorted."""
    q = {k: v for k, v in p.items() if k not in ("policyName", "policyDescription")}
    q["actionSet"] = sorted(q.get("actionSet") or [])
    if not q.get("namedResources"):
        q.pop("namedResources", None)
    return json.dumps(q, sort_keys=True)


def snapshot(state):
    """What an undo must restore, ids of roles aside: {role name: (description, permissions,
    policies)} and {user id: {(role name, division id)}} of direct grants."""
    roles = {r["id"]: r for r in state["roles"]}
    home = home_division(state)
    defs = {r["name"].lower(): (r.get("description") or "",
                                tuple(sorted(r.get("permissions") or [])),
                                tuple(sorted(norm_policy(p) for p in
                                             r.get("permissionPolicies") or [])))
            for r in state["roles"]}
    users = {}
    for u in state["users"]:
        pairs = {(roles[r]["name"].lower(), home) for r in u.get("roles") or []}
        pairs |= {(roles[g["role"]]["name"].lower(), g["division"]) for g in u.get("grants") or []}
        users[u["id"]] = pairs
    return defs, users


class UndoCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="undo-")
        self.sims = []
        s = gen("genesys", 12, 5, seed=51, divisions=2)
        t = gen("genesys", seed=52, same_as=s, drift=0)
        self.fixture(s, t)
        self.src = self.sim(s)
        self.dst = self.sim(t)
        self.state_dir = os.path.join(self.dir, "state")

    def tearDown(self):
        for s in self.sims:
            s.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def sim(self, state):
        s = Sim("genesys", state=state)
        s.start()
        self.sims.append(s)
        return s

    def fixture(self, s, t):
        """Make the target differ from the source in every way a cycle writes:
        a custom role missing (created), one whose definition differs (updated), one the
        source lacks, with holders (pruned), a grant in a division the source lacks (removed)
        and one it has (added)."""
        def customs(state):
            return [r for r in state["roles"] if not r.get("defaultRoleId")]
        sc, tc = customs(s), customs(t)
        self.assertGreaterEqual(len(tc), 4, "fixture: too few custom roles")
        by_name = {r["name"]: r for r in t["roles"]}
        # created: drop the target's twin of the first custom role, and its grants
        gone = by_name[sc[0]["name"]]
        t["roles"].remove(gone)
        for u in t["users"]:
            u["roles"] = [r for r in u["roles"] if r != gone["id"]]
            u["grants"] = [g for g in u.get("grants") or [] if g["role"] != gone["id"]]
        # source holders of the created role, so the cycle grants it too
        s_ids = {u["email"]: u for u in s["users"]}
        holder = next(u for u in s["users"] if u.get("state", "active") == "active")
        if sc[0]["id"] not in holder["roles"]:
            holder["roles"].append(sc[0]["id"])
        # updated: another description and one more permission on the target
        upd = by_name[sc[1]["name"]]
        upd["description"] = "changed on the target"
        upd["permissions"] = sorted(set(upd.get("permissions") or []) | {"routing:skill:view"})
        # pruned: a role only the target has, held by two users (one in a division)
        other = next(d for d in t["divisions"] if not d.get("home"))
        extra = dict(tc[-1], id="0badc0de-0000-4000-8000-000000000001", name="Only On Target",
                     description="pruned by the cycle")
        t["roles"].append(extra)
        actives = [u for u in t["users"] if u.get("state", "active") == "active"]
        actives[0]["roles"].append(extra["id"])
        actives[1].setdefault("grants", []).append({"role": extra["id"], "division": other["id"]})
        # grants in a division: the target has one the source lacks, and lacks one it has
        cc = by_name[sc[2]["name"]]
        u3 = actives[2]
        u3.setdefault("grants", []).append({"role": cc["id"], "division": other["id"]})
        s3 = s_ids[u3["email"]]
        s3["grants"] = [g for g in s3.get("grants") or [] if g["role"] != sc[2]["id"]]
        s_other = next(d for d in s["divisions"] if d["name"] == other["name"])
        s4 = s_ids[actives[3]["email"]]
        s4.setdefault("grants", []).append({"role": sc[2]["id"], "division": s_other["id"]})
        u4 = actives[3]
        u4["grants"] = [g for g in u4.get("grants") or [] if g["role"] != cc["id"]]
        self.updated_role = sc[1]["name"]

    def config(self, max_deletes=1000):
        j = {"name": "j", "source": "src", "target": "dst", "roles": {"definitions": True},
             "prune": True, "max_deletes": max_deletes}
        return write_config(self.dir, {"src": tenant_for(self.src), "dst": tenant_for(self.dst)},
                            [j], log_level="info",
                            http={"rate_limit": "0", "retry": {"max_attempts": 3,
                                                               "initial_delay": "100ms",
                                                               "max_delay": "500ms"}})

    def rs(self, cfg, *args, expect=0):
        p = run_rolesyncd(["-c", cfg, *args])
        self.assertEqual(p.returncode, expect,
                         f"exit {p.returncode}\nstdout:\n{p.stdout[-4000:]}\n"
                         f"stderr:\n{p.stderr[-4000:]}")
        if expect != 1:  # a usage or fatal error is a "rolesyncd: ..." line, not a log line
            self.assertEqual(log_grammar_errors(p.stderr), [])
        return p

    def journal(self):
        with open(os.path.join(self.state_dir, "changes.jsonl"), encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def sync(self, cfg):
        """One --once cycle that changes the target: (cycle id, state before, state after)."""
        before = self.dst.state()
        self.rs(cfg, "--once")
        after = self.dst.state()
        cycles = [e["cycle"] for e in self.journal() if e["job"] == "j" and not e.get("undo_of")]
        self.assertTrue(cycles, "the cycle wrote no journal line")
        lines = [e for e in self.journal() if e["cycle"] == cycles[-1]]
        kinds = {e["kind"] for e in lines if e["result"] == "ok"}
        self.assertEqual(kinds, {"role_create", "role_update", "role_delete", "grant_add",
                                 "grant_remove"}, lines)
        self.assertTrue(any(e["kind"].startswith("grant") and e["division"] not in (None, "*")
                            for e in lines), "fixture: no grant change in a division")
        self.assertNotEqual(snapshot(before), snapshot(after))
        return cycles[-1], before, after

    def assertSameState(self, want, have, skip_role=None):
        wd, wu = snapshot(want)
        hd, hu = snapshot(have)
        if skip_role:
            wd.pop(skip_role.lower(), None)
            hd.pop(skip_role.lower(), None)
        self.assertEqual(sorted(wd), sorted(hd), "role names")
        for name in wd:
            self.assertEqual(wd[name], hd[name], f"role {name}")
        self.assertEqual(sorted(wu), sorted(hu), "users")
        for uid in wu:
            self.assertEqual(wu[uid], hu[uid], f"user {uid}")


class Undo(UndoCase):
    def test_undo_restores_exactly_and_undo_of_undo_redoes(self):
        cfg = self.config()
        cycle, before, after = self.sync(cfg)

        # a dry run shows the inverse plan and changes nothing
        self.dst.reset_stats()
        p = self.rs(cfg, "--undo", cycle, "--dry-run", expect=2)
        self.assertRegex(p.stdout, r'(?m)^\+ role "Only On Target"$')
        self.assertRegex(p.stdout, r'(?m)^~ role "[^"]+" \(put back\)$')
        self.assertRegex(p.stdout, r'(?m)^- role "[^"]+"')
        self.assertRegex(p.stdout, r'(?m)^- user \S+ role "[^"]+" division "[^"]+"$')
        self.assertRegex(p.stdout, r'(?m)^\+ user \S+ role "[^"]+" division "[^"]+"$')
        self.assertRegex(p.stdout, r"(?m)^undo " + re.escape(cycle) + r" of job j: .* 0 skipped$")
        self.assertEqual(self.dst.stats()["writes"], 0, "a dry run wrote")
        self.assertSameState(after, self.dst.state())

        p = self.rs(cfg, "--undo", cycle)
        self.assertIn(f"undo_of={cycle}", p.stderr)
        self.assertRegex(p.stderr, r"INFO job=j role created role=\"Only On Target\"")
        self.assertSameState(before, self.dst.state())
        undo = UNDO_CYCLE_RE.search(p.stdout).group(1)
        lines = [e for e in self.journal() if e["cycle"] == undo]
        self.assertTrue(lines and all(e["undo_of"] == cycle for e in lines), lines)

        # the undo of the undo gives the cycle's after-state again
        p = self.rs(cfg, "--undo", undo)
        self.assertSameState(after, self.dst.state())
        # and nothing is left to take back twice: the first undo's items moved on
        p = self.rs(cfg, "--undo", undo, "--dry-run", expect=0)
        self.assertRegex(p.stdout, r"(?m)^undo .* 0 roles to create, 0 to update, 0 to delete, "
                                   r"0 assignments to add, 0 to remove, \d+ skipped$")

    def test_an_item_changed_since_is_skipped_and_reported(self):
        cfg = self.config()
        cycle, before, after = self.sync(cfg)
        # someone edits the updated role again, through the platform's API
        t = self.dst.state()
        role = next(r for r in t["roles"] if r["name"] == self.updated_role)
        body = {k: role[k] for k in ("name", "permissions", "permissionPolicies")}
        body["description"] = "edited by hand after the cycle"
        self.dst.request_json("PUT", f"/api/v2/authorization/roles/{role['id']}", body)
        p = self.rs(cfg, "--undo", cycle)
        skipped = [l for l in p.stdout.splitlines() if l.startswith("! skipped:")]
        self.assertEqual(skipped, [f'! skipped: role_update role "{self.updated_role}": '
                                   "changed since"], p.stdout)
        self.assertRegex(p.stderr, r"WARNING job=j undo step skipped kind=role_update")
        have = self.dst.state()
        self.assertSameState(before, have, skip_role=self.updated_role)
        kept = next(r for r in have["roles"] if r["name"] == self.updated_role)
        self.assertEqual(kept["description"], "edited by hand after the cycle")

    def test_max_deletes_refuses_until_forced_and_unknown_cycles(self):
        cycle, before, after = self.sync(self.config())
        cfg = self.config(max_deletes=1)
        self.dst.reset_stats()
        p = self.rs(cfg, "--undo", cycle, expect=4)
        self.assertRegex(p.stdout, r"(?m)^! refused: the undo deletes \d+ .*max_deletes 1; "
                                   r"nothing was written")
        self.assertEqual(self.dst.stats()["writes"], 0, "a refused undo wrote")
        self.assertSameState(after, self.dst.state())
        self.rs(cfg, "--undo", cycle, "--force-deletes")
        self.assertSameState(before, self.dst.state())

        p = self.rs(cfg, "--undo", "20200101T000000Z-00000000", expect=1)
        self.assertIn("no cycle", p.stderr)
        p = self.rs(cfg, "--undo", cycle, "--job", "j", expect=1)
        self.assertIn("the cycle names its job", p.stderr)
        self.assertSameState(before, self.dst.state())


if __name__ == "__main__":
    unittest.main()
