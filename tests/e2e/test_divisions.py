"""Division- and group-correct sync (product.md 4a) end to end, on tenantsim v2: a real rolesyncd
process against two simulated orgs with divisions, groups, org-specific conditions, the offset
cap and a lagging authorization service. Every check reads the target simulator's state (the
grants as (role, division) per user) or its request counts, never the daemon's own account.
"""

import copy
import json
import os
import re
import shutil
import tempfile
import unittest
import urllib.request

from rsconfig import tenant_for, user_grants, write_config
from simlib import Sim, gen, home_division, run_rolesyncd

ROLES = "/api/v2/authorization/roles"
# Division-blind writes (simulator.md 3b): a sync that sends them to a division-rich org loses
# grants; the version 2 sync must never send them where a division matters.
BLIND_ROUTES = ("PUT /api/v2/users/{id}/roles", "DELETE /api/v2/users/{id}/roles",
                "PUT /api/v2/authorization/roles/{id}/users/add")


def writes_by_route(sim):
    return {k: v for k, v in sim.stats()["by_route"].items()
            if not k.startswith(("GET ", "HEAD ")) and "oauth" not in k}


class DivisionsCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="div-")
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

    def config(self, src, dst, retry=None, **job):
        j = {"name": "j", "source": "src", "target": "dst"}
        j.update(job)
        return write_config(self.dir, {"src": tenant_for(src), "dst": tenant_for(dst)}, [j],
                            log_level="info",
                            http={"rate_limit": "0",
                                  "retry": retry or {"max_attempts": 3, "initial_delay": "100ms",
                                                     "max_delay": "500ms"}})

    def once(self, cfg, *extra, expect=0):
        p = run_rolesyncd(["-c", cfg, "--once", *extra])
        self.assertEqual(p.returncode, expect,
                         f"exit {p.returncode}\nstdout:\n{p.stdout[-4000:]}\n"
                         f"stderr:\n{p.stderr[-4000:]}")
        return p


class Mirror(DivisionsCase):
    def test_division_rich_mirror_is_exact_and_quiet_the_second_time(self):
        s = gen("genesys", 400, 10, seed=11, divisions=4, groups=4)
        src = self.sim(s)
        twin = gen("genesys", same_as=s, seed=12, no_custom_roles=True)
        dst = self.sim(twin)
        cfg = self.config(src, dst, roles={"definitions": True}, max_deletes=100000)
        before = user_grants(dst.state())
        p = self.once(cfg, "--dry-run", expect=2)
        self.assertRegex(p.stdout, r'\+ user \S+ role "[^"]+" division "(EMEA|APAC|Americas|'
                                   r'North America|\*)"')
        self.assertEqual(dst.stats()["writes"], 0, "a dry run wrote")
        self.once(cfg)
        want, have = user_grants(src.state()), user_grants(dst.state())
        self.assertNotEqual(before, have)
        for email, grants in want.items():
            self.assertEqual(have.get(email), grants, email)
        used = writes_by_route(dst)
        for route in BLIND_ROUTES:
            self.assertEqual(used.get(route, 0), 0, f"division-blind write {route}: {used}")
        # the target's groups kept their grants, and no member turned an inherited grant into
        # a direct one (the direct grants equal the source's, checked above)
        self.assertEqual([(g.get("roles"), g.get("grants")) for g in dst.state()["groups"]],
                         [(g.get("roles"), g.get("grants")) for g in twin["groups"]])
        dst.reset_stats()
        self.once(cfg)
        self.assertEqual(dst.stats()["writes"], 0, writes_by_route(dst))

    def test_the_division_blind_write_path_loses_grants_and_the_sync_does_not(self):
        """The damage case: what version 1 did -- PUT /users/{id}/roles with the user's roles --
        drops its grants of those roles in other divisions on a real org's semantics; the sync's
        own writes lose none."""
        s = gen("genesys", 200, 8, seed=21, divisions=3)
        emea = next(d["id"] for d in s["divisions"] if d["name"] == "EMEA")
        # a user holding one role both at home and in EMEA (the generator keeps some of those)
        victim, role = next((u, g["role"]) for u in s["users"] if u["state"] == "active"
                            for g in u.get("grants") or []
                            if g["division"] == emea and g["role"] in u["roles"])
        src = self.sim(s)
        # version 1's write: the user's role set (as expand=authorization lists it) minus one
        # role it holds at home, sent back through the division-blind endpoint
        status, _, body = src.request("GET", f"/api/v2/users/{victim['id']}/roles")
        self.assertEqual(status, 200)
        held = [r["id"] for r in json.loads(body)["roles"]]
        keep = [r for r in held if r != role]
        status, _, _ = src.request("PUT", f"/api/v2/users/{victim['id']}/roles",
                                   json.dumps(keep))
        self.assertEqual(status, 200)
        after = {u["id"]: u for u in src.state()["users"]}[victim["id"]]
        self.assertNotIn((role, emea), {(g["role"], g["division"])
                                         for g in after.get("grants") or []},
                         "the simulator must model the loss (simulator.md 3b)")
        # the sync, on the same kind of fixture, moving a home grant away: EMEA's stays
        s2 = copy.deepcopy(s)
        src.put_state(s2)
        dst_state = gen("genesys", same_as=s2, seed=22)
        dst = self.sim(dst_state)
        for u in s2["users"]:
            if u["id"] == victim["id"]:
                u["roles"] = [r for r in u["roles"] if r != role]
        src.put_state(s2)
        self.once(self.config(src, dst))
        have = user_grants(dst.state())[victim["email"].lower()]
        name = next(r["name"].lower() for r in s2["roles"] if r["id"] == role)
        self.assertIn((name, "emea"), have)
        self.assertEqual(have, user_grants(src.state())[victim["email"].lower()])


class DivisionMapping(DivisionsCase):
    def test_unmapped_division_reported_skipped_then_renamed(self):
        s = gen("genesys", 200, 8, seed=31, divisions=3)
        src = self.sim(s)
        twin = gen("genesys", same_as=s, seed=32, rename_division=["EMEA=Europe"])
        dst = self.sim(twin)
        before = user_grants(dst.state())
        cfg = self.config(src, dst)
        p = self.once(cfg, "--dry-run", expect=0)  # no drift: only the report
        m = re.search(r'! division "EMEA" has no counterpart on target "dst" \((\d+) grants? '
                      r'skipped\)', p.stdout)
        self.assertIsNotNone(m, p.stdout)
        self.assertGreater(int(m.group(1)), 0)
        self.once(cfg, expect=0)
        after = user_grants(dst.state())
        # never moved into another division, and the target's Europe grants left alone
        self.assertEqual(after, before)
        p = run_rolesyncd(["-c", cfg, "--once"])
        self.assertIn('division \\"EMEA\\" has no counterpart', p.stderr)  # logged each cycle
        cfg = self.config(src, dst, divisions={"rename": {"EMEA": "Europe"}})
        p = self.once(cfg, "--dry-run", expect=0)
        self.assertNotIn("! division", p.stdout)

    def test_divisions_exclude_leaves_grants_alone_on_both_sides(self):
        s = gen("genesys", 200, 8, seed=41, divisions=3)
        src = self.sim(s)
        dst = self.sim(gen("genesys", same_as=s, seed=42, drift=30))
        before = user_grants(dst.state())
        # the source's EMEA grants differ from the target's (drift), yet nothing moves there
        for u in s["users"]:
            u["grants"] = [g for g in u.get("grants") or [] if not g["division"].startswith("*")]
        emea = next(d["id"] for d in s["divisions"] if d["name"] == "EMEA")
        for u in s["users"][::3]:
            u["grants"] = [g for g in u["grants"] if g["division"] != emea]
        src.put_state(s)
        self.once(self.config(src, dst, divisions={"exclude": ["eme?"]}, max_deletes=100000))
        want, have = user_grants(src.state()), user_grants(dst.state())
        changed = 0
        for email in want:
            out = lambda g: {x for x in g if x[1] != "emea"}
            self.assertEqual(out(have[email]), out(want[email]), email)
            self.assertEqual({x for x in have[email] if x[1] == "emea"},
                             {x for x in before[email] if x[1] == "emea"}, email)
            changed += {x for x in want[email] if x[1] == "emea"} != \
                {x for x in before[email] if x[1] == "emea"}
        self.assertGreater(changed, 0, "the fixture should differ in EMEA")


def hand_state(home="Home", groups=(), users=(), roles=("Agent", "Lead", "Legacy"),
               divisions=("EMEA",), clients=()):
    """A small genesys state: roles by name (ids r-<name>), divisions (ids d-<name>), users
    (email, direct grants [(role, division or None for home)]), groups (name, members' emails,
    grants)."""
    st = {"api": "genesys",
          "divisions": [{"id": "d-home", "name": home, "home": True}] +
          [{"id": "d-" + d, "name": d, "home": False} for d in divisions],
          "roles": [{"id": "r-" + r, "name": r, "permissions": [], "permissionPolicies": []}
                    for r in roles],
          "users": [], "groups": [], "oauth_clients": []}

    def split(grants):
        home_ids = [f"r-{r}" for r, d in grants if d is None]
        other = [{"role": f"r-{r}", "division": "*" if d == "*" else "d-" + d}
                 for r, d in grants if d is not None]
        return home_ids, other

    for i, (email, grants) in enumerate(users):
        h, o = split(grants)
        st["users"].append({"id": f"u{i}-{email}", "name": email, "email": email,
                            "username": email, "state": "active", "roles": h, "grants": o})
    by_email = {u["email"]: u["id"] for u in st["users"]}
    for i, (name, members, grants) in enumerate(groups):
        h, o = split(grants)
        st["groups"].append({"id": f"g{i}", "name": name,
                             "members": [by_email[m] for m in members], "roles": h, "grants": o})
    for i, (name, grants) in enumerate(clients):
        h, o = split(grants)
        st["oauth_clients"].append({"id": f"c{i}", "name": name, "roles": h, "grants": o})
    return st


class Groups(DivisionsCase):
    def test_inherited_grants_neither_copied_nor_revoked_nor_present(self):
        src = self.sim(hand_state(
            users=[("a@x.com", [("Agent", None)]), ("b@x.com", []), ("c@x.com", [])],
            groups=[("Leads", ["b@x.com"], [("Lead", None)])]))
        dst = self.sim(hand_state(
            users=[("a@x.com", []), ("b@x.com", []), ("c@x.com", [])],
            groups=[("Agents", ["a@x.com"], [("Agent", None)]),
                    ("Leads", ["c@x.com"], [("Lead", "EMEA")])]))
        self.once(self.config(src, dst))
        have = user_grants(dst.state())
        # a holds Agent directly on the source, only through a group on the target: a direct
        # grant is made; b's inherited Lead is not copied; c's inherited Lead is not revoked
        self.assertEqual(have["a@x.com"], {("agent", "home")})
        self.assertEqual(have["b@x.com"], set())
        self.assertEqual(have["c@x.com"], set())
        self.assertEqual([g.get("grants", []) for g in dst.state()["groups"]],
                         [[], [{"role": "r-Lead", "division": "d-EMEA"}]])


class Conditions(DivisionsCase):
    def test_definitions_naming_org_objects_are_not_copied(self):
        s = gen("genesys", 120, 8, seed=51, conditions=2)
        src = self.sim(s)
        dst = self.sim(gen("genesys", same_as=s, seed=52, no_custom_roles=True))
        p = self.once(self.config(src, dst, roles={"definitions": True}), "--dry-run", expect=2)
        lines = re.findall(r'! role "([^"]+)": permission condition names org-specific objects '
                           r'\((user|queue|team|named resource) [^)]*\), not copied', p.stdout)
        self.assertEqual(len(lines), 2, p.stdout)
        self.once(self.config(src, dst, roles={"definitions": True}), expect=0)
        names = {r["name"] for r in dst.state()["roles"]}
        for name, _ in lines:
            self.assertNotIn(name, names)
        # the rest of the roles were created
        self.assertEqual(len([r for r in dst.state()["roles"] if not r.get("defaultRoleId")]),
                         len([r for r in s["roles"] if not r.get("defaultRoleId")]) - 2)


class Prune(DivisionsCase):
    def test_a_role_held_outside_the_scope_is_not_pruned(self):
        src = self.sim(hand_state(users=[("a@x.com", [("Agent", None)]), ("z@y.org", [])],
                                  roles=("Agent",)))
        dst = self.sim(hand_state(
            users=[("a@x.com", [("Legacy", None), ("Old", None)]),
                   ("z@y.org", [("Legacy", None)])],
            roles=("Agent", "Legacy", "Old", "Grouped", "Client"),
            groups=[("G", [], [("Grouped", None)])],
            clients=[("Exporter", [("Client", "EMEA")])]))
        cfg = self.config(src, dst, prune=True, users={"include": ["*@x.com"]})
        p = self.once(cfg, "--dry-run", expect=2)
        for name in ("Legacy", "Grouped", "Client"):
            self.assertRegex(p.stdout, rf'! role "{name}" not pruned: held by 1 subject outside '
                                       r"this job's scope")
        self.assertIn('- role "Old"', p.stdout)
        self.once(cfg, expect=0)
        names = {r["name"] for r in dst.state()["roles"]}
        self.assertEqual({"Legacy", "Grouped", "Client"} - names, set())
        self.assertNotIn("Old", names)


class EventualConsistency(DivisionsCase):
    # full-jitter backoff: nine waits of up to 0.5, 1, 2, 2, ... s span the 1 s lag all but
    # surely
    RETRY = {"max_attempts": 10, "initial_delay": "500ms", "max_delay": "2s"}

    def test_grants_to_a_new_role_are_retried_until_the_platform_knows_it(self):
        s = gen("genesys", 80, 5, seed=61)
        src = self.sim(s)
        dst = self.sim(gen("genesys", same_as=s, seed=62, no_custom_roles=True), lag="1s")
        p = self.once(self.config(src, dst, retry=self.RETRY, roles={"definitions": True}))
        self.assertIn("roles_created=", p.stderr)
        self.assertGreater(dst.stats()["by_status"].get("404", 0), 0, "the lag did not show")
        want, have = user_grants(src.state()), user_grants(dst.state())
        for email, grants in want.items():
            self.assertEqual(have[email], grants, email)

    def test_a_role_created_lately_is_not_created_again_while_the_listing_lags(self):
        s = gen("genesys", 40, 5, seed=71)
        src = self.sim(s)
        dst = self.sim(gen("genesys", same_as=s, seed=72, no_custom_roles=True), lag="60s")
        cfg = self.config(src, dst, roles={"definitions": True}, assignments="off")
        self.once(cfg)
        created = dst.stats()["by_route"].get(f"POST {ROLES}", 0)
        self.assertGreater(created, 0)
        with open(os.path.join(self.dir, "state", "created-roles.json"), encoding="utf-8") as f:
            self.assertEqual(len(json.load(f)["roles"]), created)
        # the listing still omits them: without the memory this run would create them again
        # (and meet 409 general.conflict, the name being taken)
        dst.reset_stats()
        p = self.once(cfg, expect=0)
        self.assertEqual(dst.stats()["by_route"].get(f"POST {ROLES}", 0), 0, p.stderr)
        self.assertNotIn("409", dst.stats()["by_status"])
        self.assertIn("roles created lately are not listed yet", p.stderr)


class OffsetCap(DivisionsCase):
    def test_every_user_is_read_past_the_offset_cap(self):
        # with the cap at 100 results, offset paging of non-active users stops at page 1 of
        # 100; the sync reads them through the cursor listing and never a refused page
        s = gen("genesys", 900, 6, seed=81, inactive_share=60)
        src = self.sim(s, offset_cap=100)
        dst = self.sim(gen("genesys", same_as=s, seed=82, drift=20), offset_cap=100)
        self.once(self.config(src, dst, max_deletes=100000))
        for sim in (src, dst):
            self.assertNotIn("400", sim.stats()["by_status"], sim.stats())
        want, have = user_grants(src.state()), user_grants(dst.state())
        for email, grants in want.items():
            self.assertEqual(have[email], grants, email)


if __name__ == "__main__":
    unittest.main(verbosity=2)
