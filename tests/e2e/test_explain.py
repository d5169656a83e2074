"""rolesyncd --explain (product.md 4c) end to end: a real rolesyncd against two tenantsim orgs
with divisions, groups and renames, built by hand so every explained decision is known. Checks
the explanation lines operators grep, the exit codes, and that explaining writes nothing: the
simulators count no write request and status.json stays as it was.
"""

import copy
import os
import shutil
import tempfile
import unittest

from rsconfig import tenant_for, write_config
from simlib import Sim, gen, run_rolesyncd

POLICY = {"domain": "routing", "entityName": "queue", "actionSet": ["view"],
          "allowConditions": False, "policyName": "default", "namedResources": []}


def role(rid, name, desc="", default=None, policies=None):
    r = {"id": rid, "name": name, "description": desc, "permissions": [],
         "permissionPolicies": policies if policies is not None else [POLICY]}
    if default:
        r.update({"defaultRoleId": default, "default": True})
    return r


def user(uid, email, home, roles=(), grants=(), state="active"):
    u = {"id": uid, "name": email.split("@")[0], "email": email, "username": email,
         "state": state, "division": home, "roles": list(roles)}
    if grants:
        u["grants"] = [{"role": r, "division": d} for r, d in grants]
    return u


def org(base, divisions, roles, users, groups):
    s = copy.deepcopy(base)
    s.update({"divisions": divisions, "roles": roles, "users": users, "groups": groups})
    return s


def source_state(base):
    divs = [{"id": "s-home", "name": "Home", "home": True},
            {"id": "s-emea", "name": "EMEA", "home": False},
            {"id": "s-apac", "name": "APAC", "home": False}]
    roles = [role("s-emp", "Employee", default="employee"),
             role("s-adm", "Master Admin", default="admin"),
             role("s-sup", "Supervisor", "leads a team"),
             role("s-agt", "Agent", "takes calls"),
             role("s-new", "Reporter", "reads reports")]
    users = [
        user("s-ada", "ada@example.com", "s-home", ["s-emp", "s-sup"],
             [("s-sup", "s-emea"), ("s-sup", "s-apac")]),
        user("s-bob", "bob@example.com", "s-home", ["s-emp", "s-agt"]),
        user("s-brk", "breakglass@example.com", "s-home", ["s-emp", "s-agt"]),
        user("s-cy", "cy@example.com", "s-home", ["s-emp", "s-agt"]),
    ]
    groups = [{"id": "s-grp", "name": "Agents", "members": ["s-ada"], "roles": ["s-agt"]}]
    return org(base, divs, roles, users, groups)


def target_state(base):
    divs = [{"id": "t-home", "name": "Headquarters", "home": True},
            {"id": "t-emea", "name": "emea", "home": False}]
    roles = [role("t-emp", "Employee", default="employee"),
             role("t-adm", "Master Admin", default="admin"),
             role("t-lead", "Team Lead", "leads a team (old text)"),
             role("t-agt", "Agent", "takes calls"),
             role("t-old", "Old Role", "nobody needs it"),
             role("t-held", "Held Role", "a group holds it")]
    users = [
        user("t-ada", "ADA@example.com", "t-home", ["t-emp", "t-adm", "t-old"]),
        user("t-brk", "breakglass@example.com", "t-home", ["t-emp"]),
        user("t-cy", "cy@example.com", "t-home", ["t-emp"]),
        user("t-dee", "dee@example.com", "t-home", ["t-emp"]),
    ]
    groups = [{"id": "t-grp", "name": "Support", "members": ["t-cy"],
               "roles": ["t-agt", "t-held"]}]
    return org(base, divs, roles, users, groups)


class Explain(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base = gen("genesys", 1, 0, seed=5)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="explain-")
        self.sims = []
        self.src = self.sim(source_state(self.base))
        self.dst = self.sim(target_state(self.base))
        self.state_dir = os.path.join(self.dir, "state")
        os.makedirs(self.state_dir)
        job = {"name": "j", "source": "src", "target": "dst",
               "roles": {"include": ["*"], "exclude": ["Legacy*"], "definitions": True,
                         "rename": {"Supervisor": "Team Lead"}},
               "users": {"include": ["*@example.com"], "exclude": ["breakglass@example.com"]},
               "divisions": {"rename": {"EMEA": "emea"}},
               "prune": True, "max_deletes": 50}
        self.job = job
        self.write_cfg()
        self.status = os.path.join(self.state_dir, "status.json")
        with open(self.status, "w") as f:
            f.write('{"schema_version": 1, "jobs": {}}\n')
        self.src.reset_stats()
        self.dst.reset_stats()

    def write_cfg(self, **job):
        self.cfg = write_config(self.dir, {"src": tenant_for(self.src),
                                           "dst": tenant_for(self.dst)}, [dict(self.job, **job)],
                                state_dir=self.state_dir, log_level="warning",
                                http={"rate_limit": "0",
                                      "retry": {"max_attempts": 2, "initial_delay": "100ms",
                                                "max_delay": "200ms"}})

    def tearDown(self):
        for s in self.sims:
            s.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def sim(self, state):
        s = Sim("genesys", state=state)
        s.start()
        self.sims.append(s)
        return s

    def explain(self, *args, expect=0):
        p = run_rolesyncd(["-c", self.cfg, "--explain", *args])
        self.assertEqual(p.returncode, expect,
                         f"exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p.stdout

    def assertNoWrites(self):
        for s in (self.src, self.dst):
            self.assertEqual(s.stats()["writes"], 0, s.stats()["by_route"])
        with open(self.status) as f:
            self.assertEqual(f.read(), '{"schema_version": 1, "jobs": {}}\n')
        self.assertEqual(sorted(os.listdir(self.state_dir)), ["status.json"])

    def test_matched_user_roles_divisions_inheritance_admin(self):
        out = self.explain("--job", "j", "--user", "ada@example.com")
        lines = out.splitlines()
        self.assertEqual(lines[0], 'user ada@example.com: in scope (users.include "*@example.com")')
        self.assertIn("  source: id s-ada active", lines)
        self.assertIn("  target: id t-ada active", lines)
        self.assertIn("  match: matched by email", lines)
        self.assertIn('  role "Supervisor" -> "Team Lead" (roles.include "*", renamed)', lines)
        self.assertIn('    division home -> home: source direct, target none: cycle adds it',
                      lines)
        self.assertIn('    division "EMEA" -> "emea": source direct, target none: cycle adds it',
                      lines)
        # APAC has no counterpart on the target: reported and skipped, never moved
        self.assertIn('    division "APAC" -> none: source direct, target none: skipped '
                      '(unmapped division: no counterpart on the target)', lines)
        # Agent through the group Agents: named, never copied
        self.assertIn('  role "Agent" -> "Agent" (roles.include "*")', lines)
        self.assertIn('    division home -> home: source inherited (group "Agents"), target none:'
                      ' not copied (inherited grants are never copied)', lines)
        # the target's admin grant: kept, protected
        self.assertIn('    division home: source none, target direct: kept (protected admin role:'
                      ' revoked only when roles.include names it verbatim)', lines)
        # the employee role: forced, never added or removed
        self.assertRegex(out, r'role "Employee" -> "Employee" \(roles.include "\*", forced\)\n'
                              r'    division home -> home: source direct, target direct: never added or removed '
                              r'\(forced role: the platform gives it to every user\)\n')
        # Old Role: the source lacks it, the cycle removes it (before pruning the role)
        self.assertIn('  role "Old Role" on the target only (roles.include "*")', lines)
        self.assertIn('    division home: source none, target direct: cycle removes it (the '
                      'source does not hold it directly)', lines)
        self.assertIn("  cycle: adds 2, removes 1 grant(s) of this user", lines)
        self.assertNoWrites()

    def test_a_grant_the_prune_takes_is_not_kept(self):
        # additive and off keep a target-only grant in the assignment phase, but the prune
        # deletes its role at the end of the cycle, the grant with it: saying "kept" (as the
        # first version did) tells the operator the opposite of what happens
        for mode, first in (("additive", "  cycle: adds 2, removes 0 grant(s) of this user; "
                                         "1 more go with the roles prune deletes"),
                            ("off", "  cycle: 1 grant(s) of this user go with the roles prune "
                                    "deletes")):
            self.write_cfg(assignments=mode)
            out = self.explain("--job", "j", "--user", "ada@example.com")
            lines = out.splitlines()
            self.assertIn('  role "Old Role" on the target only (roles.include "*")', lines, out)
            self.assertIn('    division home: source none, target direct: removed with its role: '
                          'prune deletes the role at the end of the cycle', lines, out)
            self.assertIn(first, lines, out)
        self.assertNoWrites()

    def test_target_inherits_what_the_source_holds_directly(self):
        # the group's name comes from the user's subject read; the second time a deleted user
        # shares the key on the target, which must not cost the live one that read (the first
        # version skipped it, and the group went unnamed)
        for twin in (False, True):
            if twin:
                t = target_state(self.base)
                t["users"].append(user("t-cy-old", "cy@example.com", "t-home", ["t-emp"],
                                       state="deleted"))
                self.dst.put_state(t)
                self.dst.reset_stats()
            out = self.explain("--job", "j", "--user", "CY@example.com")
            if twin:
                self.assertIn("  target: id t-cy active", out)
            self.assertIn('    division home -> home: source direct, target inherited (group '
                          '"Support"): cycle adds it (a direct grant: an inherited one does not '
                          'count)', out.splitlines(), out)
        self.assertNoWrites()

    def test_excluded_user_names_the_glob(self):
        out = self.explain("--job", "j", "--user", "breakglass@example.com")
        self.assertTrue(out.startswith('user breakglass@example.com: out of scope '
                                       '(users.exclude "breakglass@example.com")\n'), out)
        self.assertIn("  match: not matched: user out of scope (never touched)", out)
        self.assertIn("  cycle: no change for this user", out)
        self.assertNoWrites()

    def test_unmatched_and_not_found_users(self):
        out = self.explain("--job", "j", "--user", "bob@example.com")
        self.assertIn("  target: no user with email bob@example.com in target", out)
        self.assertIn("  match: unmatched: no user with email bob@example.com in target "
                      "(reported, never created)", out)
        out = self.explain("--job", "j", "--user", "nobody@example.com", expect=1)
        self.assertIn("user nobody@example.com: not found", out)
        self.assertNoWrites()

    def test_roles_update_create_prune_held(self):
        out = self.explain("--job", "j", "--role", "Supervisor")
        self.assertIn('role "Supervisor": in scope (roles.include "*")', out)
        self.assertIn('  target: "Team Lead" id t-lead, custom', out)
        self.assertIn("  mapping: mapped (renamed)", out)
        self.assertIn("  definition: differs (description)", out)
        self.assertIn("  cycle: updates it (description)", out)
        self.assertIn("  holders in source: home 1 direct; \"EMEA\" 1 direct; \"APAC\" 1 direct",
                      out)
        # the target name finds the same role
        self.assertIn("  cycle: updates it (description)",
                      self.explain("--job", "j", "--role", "team lead"))
        out = self.explain("--job", "j", "--role", "Reporter")
        self.assertIn('  mapping: no counterpart: created by this cycle as "Reporter"', out)
        self.assertIn('  cycle: creates it as "Reporter"', out)
        out = self.explain("--job", "j", "--role", "Old Role")
        self.assertIn("  prune: candidate: no source role maps to it; the cycle deletes it "
                      "last, taking 0 in-scope grant(s) the assignment phase has not removed",
                      out)
        self.assertIn("  assignments: cycle adds 0, removes 1 grant(s) of it", out)
        self.assertIn("  cycle: deletes it (prune)", out)
        out = self.explain("--job", "j", "--role", "Held Role")
        self.assertIn("  prune: not pruned: held by 1 subject(s) outside this job's scope", out)
        self.assertIn("  cycle: no change to the role (not pruned, see the prune line)", out)
        out = self.explain("--job", "j", "--role", "Employee")
        self.assertIn("  cycle: no change to the role (definition in sync)", out)
        self.assertIn("  forced: the platform gives it to every user; never added or removed", out)
        out = self.explain("--job", "j", "--role", "Master Admin")
        self.assertIn('  admin: protected (revoked only when roles.include names "Master Admin" '
                      'verbatim)', out)
        out = self.explain("--job", "j", "--role", "No Such Role", expect=1)
        self.assertIn('role "No Such Role": not found', out)
        self.assertNoWrites()

    def test_usage_errors(self):
        for args in (["--user", "a@example.com"], ["--job", "j"],
                     ["--job", "j", "--user", "a", "--role", "b"],
                     ["--job", "j", "--job", "j", "--user", "a"],
                     ["--job", "nope", "--user", "a"], ["--job", "j", "--user", ""],
                     ["--job", "j", "--role", ""]):
            p = run_rolesyncd(["-c", self.cfg, "--explain", *args])
            self.assertEqual(p.returncode, 1, (args, p.stdout, p.stderr))
            self.assertIn("rolesyncd: ", p.stderr)
        p = run_rolesyncd(["-c", self.cfg, "--user", "a"])
        self.assertEqual(p.returncode, 1)
        self.assertNoWrites()

    def test_a_failed_read_explains_nothing(self):
        self.dst.add_faults([{"method": "GET", "path": "/api/v2/authorization/roles",
                              "action": "status", "status": 500}])
        p = run_rolesyncd(["-c", self.cfg, "--explain", "--job", "j", "--user",
                           "ada@example.com"])
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(p.stdout, "")
        self.assertIn("rolesyncd: job j: cannot explain, the cycle's reads failed", p.stderr)
        self.assertNoWrites()


class ExplainFanOut(unittest.TestCase):
    def test_a_job_with_a_target_list_needs_name_slash_target(self):
        d = tempfile.mkdtemp(prefix="explain-fan-")
        sims = [Sim("genesys", state=gen("genesys", 5, 2, seed=s)) for s in (1, 2, 3)]
        try:
            for s in sims:
                s.start()
            cfg = write_config(d, {"src": tenant_for(sims[0]), "a": tenant_for(sims[1]),
                                   "b": tenant_for(sims[2])},
                               [{"name": "f", "source": "src", "target": ["a", "b"]}],
                               state_dir=d)
            p = run_rolesyncd(["-c", cfg, "--explain", "--job", "f", "--role", "Employee"])
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("--job f/a --job f/b", p.stderr)
            p = run_rolesyncd(["-c", cfg, "--explain", "--job", "f/b", "--role", "Employee"])
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn('role "Employee": in scope', p.stdout)
            for s in sims:
                self.assertEqual(s.stats()["writes"], 0)
        finally:
            for s in sims:
                s.stop()
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
