"""`rolesyncd --status` reads only what it needs: it works for an operator who cannot read the
service's secrets (which live in $CREDENTIALS_DIRECTORY for the service only)."""

import json
import os
import shutil
import tempfile
import unittest

from simlib import run_rolesyncd

CONFIG = """state_dir: {state}
tenants:
  a: {{api: genesys, base_url: "http://127.0.0.1:1", client_id: x, client_secret_file: gone.secret}}
  b: {{api: genesys, base_url: "http://127.0.0.1:2", client_id: y, client_secret_env: RS_TEST_UNSET_SECRET}}
jobs:
  - {{name: j1, source: a, target: b}}
"""

STATUS = {
    "schema_version": 1,
    "daemon": {"pid": 999999, "version": "0.1.0", "started_at": "2026-11-22T05:00:00Z",
               "config_file": "/etc/rolesyncd/rolesyncd.yaml",
               "config_loaded_at": "2026-11-22T05:00:00Z",
               "last_reload": {"at": None, "ok": True, "error": None}},
    "jobs": {"j1": {"state": "refused", "in_sync": False,
                    "reason": "60 deletions exceed max_deletes 50", "last_run": None,
                    "last_success_at": None, "consecutive_failures": 0, "next_run_at": None}},
}


class StatusCli(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="status-cli-")
        self.state = os.path.join(self.dir, "state")
        os.makedirs(self.state)
        self.cfg = os.path.join(self.dir, "rolesyncd.yaml")
        with open(self.cfg, "w", encoding="utf-8") as f:
            f.write(CONFIG.format(state=self.state))

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_status_without_readable_secrets(self):
        with open(os.path.join(self.state, "status.json"), "w", encoding="utf-8") as f:
            json.dump(STATUS, f)
        p = run_rolesyncd(["-c", self.cfg, "--status"], env={"RS_TEST_UNSET_SECRET": ""})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("j1", p.stdout)
        self.assertIn("refused", p.stdout)
        self.assertIn("max_deletes", p.stdout)
        # The same config is still invalid for anything that needs the secrets.
        self.assertEqual(run_rolesyncd(["-c", self.cfg, "--check"]).returncode, 1)

    def test_status_without_status_file(self):
        p = run_rolesyncd(["-c", self.cfg, "--status"])
        self.assertEqual(p.returncode, 1)
        self.assertIn(self.state, p.stderr)


    def test_status_with_a_broken_config(self):
        # Regression (src/main.c, found by a black-box test): a config with errors -- when
        # the status file holds the refused reload -- made --status print nothing, exit 1.
        # It now prints the errors, then the status of the state_dir the file names.
        with open(os.path.join(self.state, "status.json"), "w", encoding="utf-8") as f:
            json.dump(STATUS, f)
        with open(self.cfg, "a", encoding="utf-8") as f:
            f.write("  - {name: j2, source: a, target: nowhere}\nbogus_key: 1\n")
        p = run_rolesyncd(["-c", self.cfg, "--status"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('unknown tenant "nowhere"', p.stderr)
        self.assertIn("bogus_key", p.stderr)
        self.assertIn("j1", p.stdout)
        self.assertIn("refused", p.stdout)
        # a file that is not even YAML has no state_dir to show
        with open(self.cfg, "w", encoding="utf-8") as f:
            f.write("state_dir: [unclosed\n")
        self.assertEqual(run_rolesyncd(["-c", self.cfg, "--status"]).returncode, 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
