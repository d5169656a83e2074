"""rolesyncd --check against real files (product.md sections 2 and 3).

The shipped example conf/rolesyncd.yaml must pass once its secrets exist; a broken config must
fail with exit 1 and every error as FILE:LINE:COLUMN on stderr; no secret value may ever
appear in the output.
"""
import os
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

ROLESYNCD = os.environ.get("ROLESYNCD", "rolesyncd")
SRC = os.environ.get("ROLESYNC_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLE = os.path.join(SRC, "conf", "rolesyncd.yaml")
CA_FILE = "/etc/ssl/certs/ca-certificates.crt"

SECRETS = {
    "prod.secret": "prod-s3cret-value-1",
    "dev.secret": "dev-s3cret-value-2",
    "plant-a.secret": "plant-a-s3cret-value-3",
    "etcd.secret": "etcd-s3cret-value-5",
    "etcd-client.pem": "-----BEGIN CERTIFICATE-----",
    "etcd-client.key": "-----BEGIN PRIVATE KEY-----",
}
ENV_SECRET = "plant-b-s3cret-value-4"


class CheckTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="rs-check-")
        for name, value in SECRETS.items():
            self.write(name, value + "\n", 0o600)
        self.env = dict(os.environ)
        self.env["PLANT_B_SECRET"] = ENV_SECRET
        self.env.pop("CREDENTIALS_DIRECTORY", None)
        self.env.pop("STATE_DIRECTORY", None)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, name, text, mode=0o644):
        path = os.path.join(self.dir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def example_text(self):
        with open(EXAMPLE, encoding="utf-8") as f:
            text = f.read()
        if not os.access(CA_FILE, os.R_OK):
            # the example names Debian's CA bundle; elsewhere point ca_file at a stand-in
            stand_in = self.write("ca.pem", "", 0o644)
            text = text.replace(CA_FILE, stand_in)
        return text

    def check(self, path, *extra):
        proc = subprocess.run([ROLESYNCD, "--check", "-c", path, *extra], env=self.env,
                              capture_output=True, text=True, timeout=30)
        for secret in list(SECRETS.values()) + [ENV_SECRET]:
            self.assertNotIn(secret, proc.stdout)
            self.assertNotIn(secret, proc.stderr)
        return proc

    def test_example_config_passes(self):
        path = self.write("rolesyncd.yaml", self.example_text())
        proc = self.check(path)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout, "configuration OK\n")
        self.assertEqual(proc.stderr, "")
        # the short option works the same
        proc = self.check(path.replace(self.dir, self.dir + "/."), "-t")
        self.assertEqual(proc.returncode, 0, proc.stderr)

    def test_example_with_credentials_directory(self):
        # systemd LoadCredential=: relative secret files come from $CREDENTIALS_DIRECTORY
        creds = os.path.join(self.dir, "creds")
        os.mkdir(creds, 0o700)
        for name in SECRETS:
            os.rename(os.path.join(self.dir, name), os.path.join(creds, name))
        path = self.write("rolesyncd.yaml", self.example_text())
        proc = self.check(path)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("cannot read secret file", proc.stderr)
        self.env["CREDENTIALS_DIRECTORY"] = creds
        proc = self.check(path)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout, "configuration OK\n")

    def test_group_readable_secret_is_a_warning(self):
        os.chmod(os.path.join(self.dir, "dev.secret"), 0o644)
        path = self.write("rolesyncd.yaml", self.example_text())
        proc = self.check(path)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout, "configuration OK\n")
        self.assertRegex(proc.stderr,
                         r"^%s:\d+:\d+: warning: secret file \".*/dev\.secret\" is readable by group or "
                         r"others \(mode 0644\)" % re.escape(path))

    def test_invalid_config_reports_every_error(self):
        text = self.example_text()
        text = text.replace("interval: 10m ", "intervall: 10m")
        text = text.replace("max_connections: 4", "max_connections: lots")
        text = text.replace("target: plant-b", "target: plant-c")
        text = text.replace("    client_secret_file: prod.secret",
                            "    client_secret: %s" % SECRETS["prod.secret"])
        path = self.write("broken.yaml", text)
        proc = self.check(path)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stdout, "")
        lines = proc.stderr.splitlines()
        self.assertEqual(len(lines), 4, proc.stderr)
        pat = re.compile(r"^%s:(\d+):(\d+): (.*)$" % re.escape(path))
        found = []
        for line in lines:
            m = pat.match(line)
            self.assertIsNotNone(m, line)
            found.append((int(m.group(1)), int(m.group(2)), m.group(3)))
        src = text.splitlines()

        def where(fragment):
            for i, l in enumerate(src):
                if fragment in l:
                    return i + 1, l.index(fragment) + 1
            self.fail(fragment)

        ln, col = where("client_secret: ")
        self.assertEqual(found[0][:2], (ln, col))
        self.assertIn('inline "client_secret" is not allowed', found[0][2])
        self.assertIn("client_secret_file", found[0][2])
        self.assertIn("client_secret_env", found[0][2])
        ln, col = where("lots")
        self.assertEqual(found[1], (ln, col, 'invalid value "lots" for "max_connections" '
                                    '(expected a whole number from 1 to 1024)'))
        ln, col = where("intervall")
        self.assertEqual(found[2][:2], (ln, col))
        self.assertTrue(found[2][2].startswith('unknown key "intervall" in job'))
        ln, col = where("plant-c")
        self.assertEqual(found[3], (ln, col, 'unknown tenant "plant-c" (defined tenants: prod, '
                                    'dev, plant-a, plant-b)'))

    def test_missing_file(self):
        path = os.path.join(self.dir, "nope.yaml")
        proc = self.check(path)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stdout, "")
        self.assertEqual(proc.stderr, "%s: cannot read: No such file or directory\n" % path)

    def test_yaml_syntax_error(self):
        path = self.write("bad.yaml", "tenants:\n  prod: [unclosed\n")
        proc = self.check(path)
        self.assertEqual(proc.returncode, 1)
        self.assertRegex(proc.stderr, r"^%s:3:1: YAML syntax error: " % re.escape(path))

    def test_missing_secret_file_and_env(self):
        os.unlink(os.path.join(self.dir, "plant-a.secret"))
        del self.env["PLANT_B_SECRET"]
        path = self.write("rolesyncd.yaml", self.example_text())
        proc = self.check(path)
        self.assertEqual(proc.returncode, 1)
        lines = proc.stderr.splitlines()
        self.assertEqual(len(lines), 2, proc.stderr)
        self.assertRegex(lines[0], r':\d+:\d+: cannot read secret file ".*/plant-a\.secret": '
                                   r'No such file or directory$')
        self.assertRegex(lines[1], r':\d+:\d+: environment variable "PLANT_B_SECRET" '
                                   r'\(client_secret_env\) is not set$')


if __name__ == "__main__":
    unittest.main()
