"""Fidelity of the genesys simulator against the official Genesys Cloud JavaScript SDK
(spec/simulator.md section 5).

tests/sim/sdk/fidelity.js logs in with client credentials through the SDK's gateway setting,
pages through roles and users (expand=authorization), creates, updates and deletes a role and
sets a user's roles; then (section 3b) reads divisions, the home division, groups and their
members, every user through the cursor listing, a subject and a role's subject grants, and makes
every division-aware grant write (bulk grant, bulkadd, bulkremove, grant one, revoke one,
bulkreplace). This test checks that every call succeeded and that the simulator's state changed
as the platform's would.

The SDK is installed once with `npm install` into a cache folder (ROLESYNC_SDK_CACHE, else
~/.cache/rolesyncd-sdk/<hash of package.json>) and reused by later runs. Needs node and npm
(scripts/setup.sh installs them) and the npm registry for the first run only.
"""

import hashlib
import json
import math
import os
import shutil
import subprocess
import tempfile
import unittest

from simlib import Sim, binary, direct_grants, gen, home_division

HERE = os.path.dirname(os.path.abspath(__file__))
SDK_SRC = os.path.join(HERE, "sdk")
PACKAGE = "purecloud-platform-client-v2"
CLIENT = ("sdk-client", "sdk-fidelity-secret")
PAGE_SIZE = 7
GROUP = "90000000-0000-4000-8000-0000000000f1"


def pinned_version():
    with open(os.path.join(SDK_SRC, "package.json"), encoding="utf-8") as f:
        return json.load(f)["dependencies"][PACKAGE]


def cache_root():
    if os.environ.get("ROLESYNC_SDK_CACHE"):
        return os.environ["ROLESYNC_SDK_CACHE"]
    home = os.path.expanduser("~")
    if home and home != "~" and os.access(home, os.W_OK):
        return os.path.join(home, ".cache", "rolesyncd-sdk")
    # no writable home: keep it next to the binaries in the build tree
    return os.path.join(os.path.dirname(binary("TENANTSIM")), "sdk-cache")


def install_sdk():
    """Folder holding node_modules with the pinned SDK, installing it when missing."""
    with open(os.path.join(SDK_SRC, "package.json"), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    target = os.path.join(cache_root(), digest)
    marker = os.path.join(target, "node_modules", PACKAGE, "package.json")
    if os.path.exists(marker):
        return target
    os.makedirs(os.path.dirname(target), exist_ok=True)
    work = tempfile.mkdtemp(prefix="install-", dir=os.path.dirname(target))
    try:
        shutil.copy(os.path.join(SDK_SRC, "package.json"), work)
        proc = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--no-package-lock"],
                              cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=600)
        if proc.returncode != 0:
            raise AssertionError("npm install failed:\n" + proc.stdout.decode("utf-8", "replace")[-4000:])
        try:
            os.rename(work, target)  # atomic: a concurrent run may have won, which is fine
            work = None
        except OSError:
            if not os.path.exists(marker):
                raise
    finally:
        if work:
            shutil.rmtree(work, ignore_errors=True)
    return target


class SdkFidelity(unittest.TestCase):
    def setUp(self):
        missing = [t for t in ("node", "npm") if shutil.which(t) is None]
        if missing:
            self.fail(f"{' and '.join(missing)} not found: the SDK fidelity test needs Node.js and "
                      "npm (scripts/setup.sh installs them)")

    def run_fidelity(self, sim, sdk_dir):
        script = os.path.join(sdk_dir, "fidelity.js")
        shutil.copy(os.path.join(SDK_SRC, "fidelity.js"), script)  # resolves node_modules beside it
        with tempfile.TemporaryDirectory(prefix="sdk-home-") as home:
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home,
                   "TENANTSIM_PORT": str(sim.port), "SDK_CLIENT_ID": CLIENT[0],
                   "SDK_CLIENT_SECRET": CLIENT[1], "SDK_PAGE_SIZE": str(PAGE_SIZE)}
            proc = subprocess.run(["node", script], cwd=sdk_dir, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, timeout=60)
        out = proc.stdout.decode("utf-8", "replace").strip()
        self.assertTrue(out, "fidelity.js printed nothing; stderr:\n" +
                        proc.stderr.decode("utf-8", "replace")[-3000:])
        summary = json.loads(out.splitlines()[-1])
        failed = [c for c in summary["calls"] if not c.get("ok")]
        self.assertEqual(failed, [], "SDK calls that did not behave as the platform's")
        self.assertTrue(summary["ok"])
        self.assertEqual(proc.returncode, 0)
        return summary

    @staticmethod
    def fixture():
        """A generated org with a group (two members, a grant at home and one in another
        division) and a user holding a role outside the home division."""
        fixture = gen("genesys", 60, 12, seed=17)
        other = next(d["id"] for d in fixture["divisions"] if not d["home"])
        custom = [r["id"] for r in fixture["roles"] if not r.get("default")]
        active = [u for u in fixture["users"] if u["state"] == "active"]
        fixture["groups"] = [{"id": GROUP, "name": "SDK Fidelity Group",
                              "members": [active[-1]["id"], active[-2]["id"]],
                              "roles": [custom[-1]],
                              "grants": [{"role": custom[-2], "division": other}]}]
        active[-3]["grants"] = [{"role": custom[-3], "division": other}]
        return fixture

    @staticmethod
    def held(fixture, user):
        """Every role the user holds, in any division, directly or through a group."""
        held = {r for r, _ in direct_grants(fixture, user)}
        for g in fixture.get("groups", []):
            if user["id"] in g["members"]:
                held |= {r for r, _ in direct_grants(fixture, g)}
        return sorted(held)

    def test_sdk_against_simulator(self):
        sdk_dir = install_sdk()
        fixture = self.fixture()
        roles = {r["id"]: r for r in fixture["roles"]}
        employee = next(r["id"] for r in fixture["roles"] if r.get("defaultRoleId") == "employee")
        active = [u for u in fixture["users"] if u["state"] == "active"]

        with Sim("genesys", state=fixture, clients=[CLIENT]) as sim:
            summary = self.run_fidelity(sim, sdk_dir)
            after = sim.state()
            stats = sim.stats()

        self.assertEqual(summary["sdk_version"], pinned_version())

        # reads: everything, page by page, with the roles each user holds
        self.assertEqual({r["id"] for r in summary["roles"]}, set(roles))
        self.assertEqual(summary["role_pages"], math.ceil(len(roles) / PAGE_SIZE))
        self.assertGreater(summary["role_pages"], 1)
        self.assertEqual({u["id"] for u in summary["users"]}, {u["id"] for u in active})
        self.assertEqual(summary["user_pages"], math.ceil(len(active) / PAGE_SIZE))
        listed = {u["id"]: u["roles"] for u in summary["users"]}
        for u in active:  # every division, inherited roles included
            self.assertEqual(listed[u["id"]], self.held(fixture, u), u["email"])
        self.assertEqual(stats["by_route"].get("GET /api/v2/authorization/roles"), summary["role_pages"])
        self.assertEqual(stats["by_route"].get("GET /api/v2/users"), summary["user_pages"])
        self.assertGreaterEqual(stats["by_route"].get("POST /oauth/token", 0), 1)

        # the role: created, renamed with new policies, deleted — and gone from the tenant
        self.assertEqual(summary["updated_role"], {
            "name": "SDK Fidelity Role Renamed",
            "description": "updated by the SDK fidelity test",
            "policies": ["directory:user:view,edit", "routing:queue:view"],
        })
        deleted = summary["deleted_role_id"]
        self.assertNotIn(deleted, {r["id"] for r in after["roles"]})
        self.assertFalse([r for r in after["roles"] if r["name"].startswith("SDK Fidelity")])
        self.assertEqual({r["id"] for r in after["roles"]}, set(roles), "other roles untouched")

        # the user's roles: what was set plus employee, then without the deleted role
        want = sorted(set(summary["set_roles"]) | {employee})
        self.assertEqual(summary["put_reply_roles"], want)
        self.assertEqual(summary["read_back"], want)
        final = {u["id"]: sorted(u["roles"]) for u in after["users"]}
        self.assertEqual(final[summary["user_id"]], sorted(set(want) - {deleted}))
        w = summary["grant_writes"]
        for u in fixture["users"]:
            if u["id"] not in (summary["user_id"], w["user"], w["other_user"]):
                self.assertEqual(direct_grants(after, u["id"]), direct_grants(fixture, u),
                                 "other users untouched")

        # version 2: divisions, groups, the cursor listing
        home = home_division(fixture)
        self.assertEqual(summary["divisions"], [d["id"] for d in fixture["divisions"]])
        self.assertEqual(summary["home_division"], home)
        self.assertEqual(summary["groups"], [{"id": GROUP, "name": "SDK Fidelity Group",
                                              "memberCount": 2, "type": "official"}])
        self.assertEqual(sorted(summary["query_users"]), sorted(u["id"] for u in fixture["users"]))
        self.assertEqual(len(summary["query_users"]), len(set(summary["query_users"])))
        by_route = stats["by_route"]
        self.assertEqual(by_route.get("GET /api/v2/users/query"),
                         math.ceil(len(fixture["users"]) / PAGE_SIZE))

        # the grant writes: bulk grant (r, D), bulkadd (r2, home) and (r2, *), bulkremove
        # (r2, *), grant one (r3, D), revoke one (r, D); bulkreplace of the other user
        d, r, r2, r3 = w["division"], w["r"], w["r2"], w["r3"]
        self.assertEqual(w["home"], home)
        u1 = next(u for u in fixture["users"] if u["id"] == w["user"])
        self.assertEqual(direct_grants(after, w["user"]),
                         direct_grants(fixture, u1) | {(r2, home), (r3, d)})
        self.assertEqual(direct_grants(after, w["other_user"]), {(employee, home), (r, d)})
        for op in ("postAuthorizationRole", "postAuthorizationSubjectBulkadd",
                   "postAuthorizationSubjectBulkremove", "postAuthorizationSubjectBulkreplace",
                   "postAuthorizationSubjectDivisionRole", "deleteAuthorizationSubjectDivisionRole"):
            self.assertTrue([c for c in summary["calls"] if c["name"].startswith(op) and c["ok"]], op)
        self.assertGreaterEqual(by_route.get("POST /api/v2/authorization/subjects/{id}/bulkadd"), 2)

        # the member's grants: its own, and the group's with the group's id as subjectId
        group = fixture["groups"][0]
        member = next(u for u in fixture["users"] if u["id"] == summary["member"])
        self.assertIn(member["id"], group["members"])
        got = {tuple(g) for g in summary["member_grants"]}
        want_grants = ({(member["id"], r_, d_) for r_, d_ in direct_grants(fixture, member)} |
                       {(GROUP, r_, d_) for r_, d_ in direct_grants(fixture, group)})
        self.assertEqual(got, want_grants)


if __name__ == "__main__":
    unittest.main(verbosity=2)
