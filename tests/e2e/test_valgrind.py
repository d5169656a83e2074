"""One end-to-end mirror under valgrind: `rolesyncd --once`, genesys -> genesys, ~200 users,
role definitions and assignments, with --leak-check=full and definite/indirect leaks counted as
errors. Asserts exit 0 (valgrind's --error-exitcode=99 would replace it on any memory error or
leak) and that the target converged. Skipped, with a message, only when valgrind is missing.
"""

import os
import shutil
import subprocess
import tempfile
import unittest

from rsconfig import custom_roles, policies_canon, tenant_for, user_roles, write_config
from simlib import Sim, binary, gen

SKIP = ("employee", "admin")
VALGRIND = shutil.which("valgrind")


def _asan_build(path):
    """valgrind cannot run an AddressSanitizer binary: detect one by its dynamic libraries."""
    try:
        out = subprocess.run(["ldd", path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "libasan" in out


class Valgrind(unittest.TestCase):
    @unittest.skipIf(VALGRIND is None, "valgrind is not installed (apt-get install valgrind)")
    def test_once_mirror_is_clean_under_valgrind(self):
        rolesyncd = binary("ROLESYNCD")
        if _asan_build(rolesyncd):
            self.skipTest("ROLESYNCD is an AddressSanitizer build; valgrind cannot run it")
        d = tempfile.mkdtemp(prefix="valgrind-")
        s = gen("genesys", 200, 10, seed=81)
        t = gen("genesys", same_as=s, seed=82, drift=25, edit_roles=3)
        try:
            with Sim("genesys", state=s) as src, Sim("genesys", state=t) as dst:
                cfg = write_config(
                    d, {"src": tenant_for(src, page_size=50), "dst": tenant_for(dst, page_size=50)},
                    [{"name": "vg", "source": "src", "target": "dst",
                      "roles": {"definitions": True}, "max_deletes": 100000}],
                    log_level="info", http={"rate_limit": "0", "timeout": "60s"})
                log = os.path.join(d, "valgrind.log")
                p = subprocess.run(
                    [VALGRIND, "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
                     "--error-exitcode=99", "--track-fds=no", f"--log-file={log}",
                     rolesyncd, "-c", cfg, "--once"],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
                with open(log, encoding="utf-8", errors="replace") as f:
                    report = f.read()
                self.assertEqual(p.returncode, 0,
                                 f"exit {p.returncode}\nvalgrind:\n{report[-6000:]}\n"
                                 f"stderr:\n{p.stderr[-2000:]}")
                self.assertIn("ERROR SUMMARY: 0 errors", report, report[-3000:])
                want = user_roles(src.state(), SKIP)
                have = user_roles(dst.state(), SKIP)
                for email, roles in want.items():
                    self.assertEqual(have.get(email), roles, email)
                have_roles = custom_roles(dst.state())
                for name, role in custom_roles(src.state()).items():
                    self.assertEqual(policies_canon(role), policies_canon(have_roles[name]), name)
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
