"""systemd/rolesyncd.service: contract keys, `systemd-analyze verify`, and a hardening score of
2.0 or lower from `systemd-analyze security --offline=true` (product.md section 7).

Environment: ROLESYNC_SRC (source root), ROLESYNCD (built binary; `verify` insists that the
ExecStart binary exists, so when /usr/sbin/rolesyncd is not installed the unit is checked as a
copy whose ExecStart points at the built binary, everything else unchanged).
Skips only when systemd-analyze is absent (Debian: `apt-get install systemd`).
"""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

SRC = os.environ.get("ROLESYNC_SRC",
                     os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
UNIT = os.path.join(SRC, "systemd", "rolesyncd.service")
INSTALLED_BINARY = "/usr/sbin/rolesyncd"
MAX_EXPOSURE = 2.0
ANALYZE = shutil.which("systemd-analyze")


def unit_settings(text):
    """[section] -> list of (key, value), in order; comments and blank lines dropped."""
    sections, current = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            sections.setdefault(current, [])
            continue
        key, sep, value = line.partition("=")
        assert sep, "not a key=value line: %r" % line
        sections[current].append((key.strip(), value.strip()))
    return sections


def run(args):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=120, env=dict(os.environ, SYSTEMD_PAGER="", SYSTEMD_COLORS="0"))


class UnitContract(unittest.TestCase):
    """What product.md section 7 asks of the unit file itself."""

    @classmethod
    def setUpClass(cls):
        with open(UNIT, encoding="utf-8") as f:
            cls.text = f.read()
        cls.sections = unit_settings(cls.text)
        cls.service = cls.sections.get("Service", [])

    def values(self, key):
        return [v for k, v in self.service if k == key]

    def one(self, key):
        vals = self.values(key)
        self.assertEqual(len(vals), 1, "%s= should be set exactly once, got %r" % (key, vals))
        return vals[0]

    def test_required_settings(self):
        self.assertEqual(self.one("Type"), "notify")
        self.assertEqual(self.one("ExecReload"), "/bin/kill -HUP $MAINPID")
        self.assertEqual(self.one("DynamicUser"), "yes")
        self.assertEqual(self.one("StateDirectory"), "rolesyncd")
        self.assertEqual(self.one("ConfigurationDirectory"), "rolesyncd")
        self.assertEqual(self.one("Restart"), "on-failure")
        self.assertRegex(self.one("WatchdogSec"), r"^[0-9]+(s|min)?$")
        self.assertEqual(self.one("ExecStart"),
                         INSTALLED_BINARY + " -c /etc/rolesyncd/rolesyncd.yaml")
        creds = self.values("LoadCredential")
        self.assertTrue(creds, "LoadCredential= examples for the secrets are missing")
        for c in creds:
            self.assertRegex(c, r"^[A-Za-z0-9_.-]+:/\S+$")
        self.assertIn("Install", self.sections)

    def test_network_families(self):
        fams = " ".join(self.values("RestrictAddressFamilies")).split()
        self.assertEqual(sorted(fams), ["AF_INET", "AF_INET6", "AF_UNIX"])
        self.assertNotIn("PrivateNetwork", dict(self.service),
                         "the daemon must reach the tenants' APIs")

    def test_no_secret_in_unit(self):
        # Unit files are world-readable: secrets only through credentials, never inline.
        for k, v in self.service:
            self.assertNotIn(k, ("SetCredential", "Environment", "EnvironmentFile"),
                             "%s= would expose secrets or config in a world-readable unit" % k)


@unittest.skipIf(ANALYZE is None,
                 "systemd-analyze not found: install the 'systemd' package to check the unit")
class UnitAnalyze(unittest.TestCase):

    def unit_for_verify(self, tmp):
        """The unit as `verify` can load it on this machine."""
        if os.access(INSTALLED_BINARY, os.X_OK):
            return UNIT
        binary = os.environ.get("ROLESYNCD") or shutil.which("true")
        self.assertTrue(binary and os.access(binary, os.X_OK),
                        "ROLESYNCD=%r is not an executable: build rolesyncd first" % binary)
        with open(UNIT, encoding="utf-8") as f:
            text = f.read()
        text, n = re.subn(r"^ExecStart=%s " % re.escape(INSTALLED_BINARY),
                          "ExecStart=%s " % binary, text, flags=re.M)
        self.assertEqual(n, 1)
        path = os.path.join(tmp, "rolesyncd.service")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def test_verify(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = self.unit_for_verify(tmp)
            r = run([ANALYZE, "verify", "--man=no", path])
            ours = [l for l in (r.stdout + r.stderr).splitlines() if "rolesyncd" in l]
            self.assertEqual(r.returncode, 0, "systemd-analyze verify failed:\n%s%s"
                             % (r.stdout, r.stderr))
            self.assertEqual(ours, [], "verify complained about the unit")

    def test_security_exposure(self):
        r = run([ANALYZE, "security", "--offline=true", "--no-pager", UNIT])
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 0, out)
        m = re.search(r"Overall exposure level for \S+: ([0-9]+\.[0-9]+) (\w+)", out)
        self.assertIsNotNone(m, "no 'Overall exposure level' line in:\n" + out)
        score = float(m.group(1))
        print("systemd-analyze security: exposure %.1f %s" % (score, m.group(2)))
        if score > MAX_EXPOSURE:
            weak = [l for l in out.splitlines() if l.lstrip().startswith("\u2717")]
            self.fail("exposure %.1f > %.1f; settings still exposed:\n%s"
                      % (score, MAX_EXPOSURE, "\n".join(weak)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
