"""The coordination block's settings against a real etcd (product.md 7a):

- TLS: etcd on HTTPS asking for client certificates; an instance with ca_file and its client
  certificate holds the jobs; one without a client certificate holds none, stands by with the
  reason, and writes nothing; --check names a TLS file that is missing;
- username / password_file: etcd with authentication on; the right password holds the jobs,
  a wrong one stands by with the reason; the password never reaches a log or the status file;
  --check wants the password file;
- SIGHUP: coordination turned on, moved to another prefix (a new lease, the old keys gone at
  once) and turned off again, without a restart.
Skipped when /usr/bin/etcd is missing (scripts/setup.sh installs etcd-server).
"""
import os
import shutil
import signal
import subprocess
import time
import unittest

from coordlib import ETCD, Etcd, make_certs, parse_fence
from daemon_fixture import read_status, wait_until
from rsconfig import tenant_for, write_config
from simlib import binary, run_rolesyncd, write_secret
from test_coordination import JOBS, PREFIX, TTL, CoordCase, holding


class SettingsCase(CoordCase):
    USERS = 20

    def check_verdicts(self, good_cfg, bad_cfg, needle):
        """--check accepts good_cfg and refuses bad_cfg naming `needle`."""
        p = run_rolesyncd(["-c", good_cfg, "--check"])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = run_rolesyncd(["-c", bad_cfg, "--check"])
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn(needle, p.stdout + p.stderr)

    def refused_then_good(self, bad, good):
        """Start the refused instance, then the good one: the good one holds and mirrors every
        job, the refused one stands by holding nothing and writes nothing. Returns both
        daemons and the refused one's status."""
        d_bad = self.start(bad[0])
        self.assertTrue(wait_until(lambda: all_standby_with(bad[1], "etcd"), timeout=6 * TTL),
                        read_status(bad[1]))
        d_good = self.start(good[0])
        self.assertTrue(wait_until(lambda: sorted(holding(good[1]) or []) == JOBS,
                                   timeout=8 * TTL, interval=0.2), read_status(good[1]))
        self.assertTrue(wait_until(self.all_converged, timeout=60))
        member = read_status(good[1])["daemon"]["coordination"]["member"]
        writers = {(parse_fence(w["fence"]) or ("", "?"))[1] for j in JOBS for w in self.writes(j)}
        self.assertEqual(writers, {member})
        st = read_status(bad[1])
        self.assertEqual(st["daemon"]["coordination"]["holding"], [])
        return d_bad, d_good, st


def all_standby_with(status_path, needle):
    st = read_status(status_path)
    if not st:
        return None
    return all(st["jobs"][j]["state"] == "standby" and needle in (st["jobs"][j]["reason"] or "")
               for j in JOBS) or None


@unittest.skipUnless(os.access(ETCD, os.X_OK),
                     f"{ETCD} is missing: apt-get install etcd-server etcd-client")
@unittest.skipUnless(shutil.which("openssl"), "openssl is missing: apt-get install openssl")
class CoordinationTls(SettingsCase):

    def make_etcd(self):
        return Etcd(self.tmp, tls=make_certs(
            self.tmp, server_client_auth=self._testMethodName != "test_gateway_without_client_auth"))

    def test_gateway_without_client_auth(self):
        # etcd's own gateway cannot reach etcd: every job stands by, the reason says what to fix
        tls = self.etcd.tls
        cfg, status = self.configs(1, etcd={"ca_file": tls["ca"],
                                            "client_cert_file": tls["client_cert"],
                                            "client_key_file": tls["client_key"]})[0]
        self.start(cfg)
        self.assertTrue(wait_until(lambda: all_standby_with(status, "clientAuth"),
                                   timeout=6 * TTL), read_status(status))
        self.assertEqual(self.writes(JOBS[0]), [])

    def test_client_certificates(self):
        tls = self.etcd.tls
        good = self.configs(1, etcd={"ca_file": tls["ca"], "client_cert_file": tls["client_cert"],
                                     "client_key_file": tls["client_key"]}, name="good")[0]
        bare = self.configs(1, etcd={"ca_file": tls["ca"]}, name="bare")[0]
        missing = self.configs(1, etcd={"ca_file": tls["ca"], "client_cert_file": tls["client_cert"],
                                        "client_key_file": tls["client_key"] + ".gone"},
                               name="missing")[0]
        self.check_verdicts(good[0], missing[0], "client.key.gone")
        d_bare, d_good, st = self.refused_then_good(bare, good)
        print("without a client certificate:", st["jobs"][JOBS[0]]["reason"])
        self.assertIn("coordination unavailable", d_bare.log_text())
        self.check_history()
        d_good.stop()
        self.assertEqual(d_good.returncode, 0)


@unittest.skipUnless(os.access(ETCD, os.X_OK),
                     f"{ETCD} is missing: apt-get install etcd-server etcd-client")
@unittest.skipUnless(shutil.which("etcdctl"), "etcdctl is missing: apt-get install etcd-client")
class CoordinationAuth(SettingsCase):
    PASSWORD = "s3cret-etcd-pw-77"

    def test_username_and_password_file(self):
        e = self.etcd
        e.etcdctl("user", "add", "root", "--new-user-password=root-pw-1")
        e.etcdctl("user", "grant-role", "root", "root")
        e.etcdctl("role", "add", "rs")
        e.etcdctl("role", "grant-permission", "rs", "--prefix=true", "readwrite", PREFIX)
        e.etcdctl("user", "add", "rolesyncd", f"--new-user-password={self.PASSWORD}")
        e.etcdctl("user", "grant-role", "rolesyncd", "rs")
        e.etcdctl("auth", "enable")
        self.history.close()  # the recorder has no credentials; the test reads keys below

        write_secret(self.tmp, "etcd.password", self.PASSWORD + "\n")
        write_secret(self.tmp, "wrong.password", "not-the-password\n")
        good = self.configs(1, etcd={"username": "rolesyncd", "password_file": "etcd.password"},
                            name="good")[0]
        wrong = self.configs(1, etcd={"username": "rolesyncd", "password_file": "wrong.password"},
                             name="wrong")[0]
        nofile = self.configs(1, etcd={"username": "rolesyncd", "password_file": "gone.password"},
                              name="nofile")[0]
        self.check_verdicts(good[0], nofile[0], "gone.password")
        d_wrong, d_good, st = self.refused_then_good(wrong, good)
        print("with a wrong password:", st["jobs"][JOBS[0]]["reason"])
        self.assertIn("etcd refused", st["jobs"][JOBS[0]]["reason"])
        d_good.stop()
        d_wrong.stop()
        for d, (_, sp) in ((d_good, good), (d_wrong, wrong)):
            with open(sp, encoding="utf-8") as f:
                status_text = f.read()
            for text in (d.log_text(), status_text):
                self.assertNotIn(self.PASSWORD, text)
                self.assertNotIn("not-the-password", text)


class OneConfig(CoordCase):
    """One config file, rewritten with or without a coordination block."""
    USERS = 20

    def write(self, coordination):
        tenants = {"src": tenant_for(self.src)}
        tenants.update({f"dst-{j}": tenant_for(self.dst[j]) for j in JOBS})
        jobs = [{"name": j, "source": "src", "target": f"dst-{j}", "interval": "2s",
                 "max_deletes": 100000} for j in JOBS]
        top = {"coordination": coordination} if coordination else {}
        return write_config(self.tmp, tenants, jobs, state_dir=os.path.join(self.tmp, "state"),
                            name="rs.yaml", log_level="info", http={"rate_limit": "0"}, **top)


@unittest.skipUnless(os.access(ETCD, os.X_OK),
                     f"{ETCD} is missing: apt-get install etcd-server etcd-client")
class CoordinationReload(OneConfig):

    def test_sighup_turns_coordination_on_moves_it_and_turns_it_off(self):
        status = os.path.join(self.tmp, "state", "status.json")
        cfg = self.write(None)
        d = self.start(cfg)
        self.assertTrue(wait_until(self.all_converged, timeout=60))
        self.assertNotIn("coordination", read_status(status)["daemon"])

        def coord(prefix):
            return {"etcd": {"endpoints": [self.etcd.url], "prefix": prefix,
                             "lease_ttl": f"{TTL}s"}}
        self.write(coord(PREFIX))
        d.signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: sorted(holding(status) or []) == JOBS,
                                   timeout=8 * TTL, interval=0.2), read_status(status))
        member = read_status(status)["daemon"]["coordination"]["member"]
        keys = self.etcd.keys(PREFIX)
        self.assertEqual({k for k in keys if "/jobs/" in k}, {f"{PREFIX}jobs/{j}" for j in JOBS})
        self.assertTrue(all(v == member for k, (v, _) in keys.items() if "/jobs/" in k))

        other = "/rs-moved/"
        self.write(coord(other))
        d.signal(signal.SIGHUP)
        self.assertTrue(wait_until(
            lambda: {k for k in self.etcd.keys(other) if "/jobs/" in k} ==
            {f"{other}jobs/{j}" for j in JOBS}, timeout=8 * TTL, interval=0.2))
        self.assertTrue(wait_until(lambda: not self.etcd.keys(PREFIX), timeout=2),
                        f"the old lease's keys stay: {self.etcd.keys(PREFIX)}")
        self.assertTrue(wait_until(lambda: sorted(holding(status) or []) == JOBS,
                                   timeout=4 * TTL, interval=0.2))

        self.write(None)
        d.signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: "coordination" not in read_status(status)["daemon"],
                                   timeout=4 * TTL))
        self.assertTrue(wait_until(lambda: not self.etcd.keys(other), timeout=4))
        self.etcd.stop()  # no coordination: etcd is not needed any more
        for k, j in enumerate(JOBS):
            self.dst[j].put_state(self.drifted(700 + k))
        self.assertTrue(wait_until(self.all_converged, timeout=60))
        st = read_status(status)
        self.assertTrue(all(st["jobs"][j]["state"] != "standby" for j in JOBS), st["jobs"])
        self.assertTrue(st["daemon"]["last_reload"]["ok"])
        d.stop()
        self.assertEqual(d.returncode, 0)


VALGRIND = shutil.which("valgrind")


def asan_build(path):
    out = subprocess.run(["ldd", path], capture_output=True, text=True, timeout=10).stdout
    return "libasan" in out


@unittest.skipUnless(os.access(ETCD, os.X_OK),
                     f"{ETCD} is missing: apt-get install etcd-server etcd-client")
@unittest.skipIf(VALGRIND is None, "valgrind is not installed (apt-get install valgrind)")
class CoordinationValgrind(OneConfig):
    """The coordinated daemon (leases, keys, fenced writes, a reload that drops coordination,
    SIGTERM's revoke) and --once --coordinate, under valgrind: no memory error, no leak."""
    VG_TTL = 10  # valgrind slows everything tenfold: a lease (and a gate margin) that survive it

    def valgrind(self, log, *args):
        return [VALGRIND, "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
                "--error-exitcode=99", "--track-fds=no", f"--log-file={log}",
                binary("ROLESYNCD"), *args]

    def report(self, log):
        with open(log, encoding="utf-8", errors="replace") as f:
            return f.read()

    def test_daemon_and_once_coordinate_under_valgrind(self):
        if asan_build(binary("ROLESYNCD")):
            self.skipTest("ROLESYNCD is an AddressSanitizer build; valgrind cannot run it")
        status = os.path.join(self.tmp, "state", "status.json")
        coord = {"etcd": {"endpoints": [self.etcd.url], "prefix": PREFIX,
                          "lease_ttl": f"{self.VG_TTL}s"}}
        cfg = self.write(coord)
        log = os.path.join(self.tmp, "valgrind-daemon.log")
        err = open(os.path.join(self.tmp, "daemon.stderr"), "wb")
        proc = subprocess.Popen(self.valgrind(log, "-c", cfg), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)
        err.close()
        try:
            self.assertTrue(wait_until(lambda: sorted(holding(status) or []) == JOBS,
                                       timeout=120, interval=0.5), read_status(status))
            self.assertTrue(wait_until(self.all_converged, timeout=180, interval=1.0))
            self.write(None)
            proc.send_signal(signal.SIGHUP)
            self.assertTrue(wait_until(lambda: "coordination" not in
                                       (read_status(status) or {}).get("daemon", {}),
                                       timeout=60, interval=0.5))
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        report = self.report(log)
        self.assertEqual(rc, 0, report[-6000:])
        self.assertIn("ERROR SUMMARY: 0 errors", report, report[-3000:])

        cfg = self.write(coord)
        for k, j in enumerate(JOBS):
            self.dst[j].put_state(self.drifted(800 + k))
        log = os.path.join(self.tmp, "valgrind-once.log")
        t0 = time.monotonic()
        p = subprocess.run(self.valgrind(log, "-c", cfg, "--once", "--coordinate"),
                           capture_output=True, text=True, timeout=300)
        report = self.report(log)
        self.assertEqual(p.returncode, 0, report[-6000:] + p.stderr[-2000:])
        self.assertIn("ERROR SUMMARY: 0 errors", report, report[-3000:])
        self.assertTrue(self.all_converged())
        self.assertEqual(self.etcd.keys(PREFIX), {})
        print(f"valgrind: daemon and --once --coordinate clean "
              f"(the one-time run took {time.monotonic() - t0:.1f}s)")


if __name__ == "__main__":
    unittest.main(verbosity=2)
