"""The Debian package built by CPack (cmake/packaging.cmake).

Builds the package the documented way in its own build tree — configure the source with
-DCMAKE_BUILD_TYPE=Release -DROLESYNC_TESTS=OFF -DCMAKE_INSTALL_PREFIX=/usr, build, `cpack -G
DEB` — then inspects it with dpkg-deb: the file name, the contents and their modes, the control
fields (Depends covers every shared library the binary needs, Section, Maintainer,
Description), the conffiles, the maintainer scripts, and runs the extracted binary's --version.

The package build tree is kept next to the test build (ROLESYNCD's folder)/package-build, so
reruns only rebuild what changed. Environment: ROLESYNCD, ROLESYNC_SRC.
Skips only when cmake, cpack or dpkg-deb is missing (Debian: cmake, dpkg).
"""
import os
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

SRC = os.environ.get("ROLESYNC_SRC",
                     os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
ROLESYNCD = os.environ.get("ROLESYNCD", "")
TOOLS = ("cmake", "cpack", "dpkg-deb", "dpkg")

# path in the package -> (permission bits, file in the source tree with the same content or None)
EXPECTED_FILES = {
    "/usr/sbin/rolesyncd": (0o755, None),
    "/usr/lib/systemd/system/rolesyncd.service": (0o644, "systemd/rolesyncd.service"),
    "/etc/rolesyncd/rolesyncd.yaml": (0o644, "conf/rolesyncd.yaml"),
    "/usr/share/man/man8/rolesyncd.8": (0o644, "man/rolesyncd.8"),
    "/usr/share/man/man5/rolesyncd.yaml.5": (0o644, "man/rolesyncd.yaml.5"),
    "/usr/share/rolesyncd/rolesyncd.schema.json": (0o644, "conf/rolesyncd.schema.json"),
    "/usr/share/rolesyncd/rolesyncd.yaml.example": (0o644, "conf/rolesyncd.yaml"),
    "/usr/share/doc/rolesyncd/README.md": (0o644, "README.md"),
}
RUNTIME_PACKAGES = ("libcurl4", "libuv1", "libjson-c5", "libyaml-0-2", "libsystemd0")


def run(args, cwd=None, timeout=300):
    proc = subprocess.run(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s" % (" ".join(args), proc.returncode,
                                                      proc.stdout[-4000:]))
    return proc.stdout


def package_dir():
    if ROLESYNCD and os.path.isfile(ROLESYNCD):
        return os.path.join(os.path.dirname(os.path.abspath(ROLESYNCD)), "package-build")
    return os.path.join(tempfile.gettempdir(), "rolesyncd-package-build")


def depends_names(field):
    """'libc6 (>= 2.34), libfoo | libbar' -> {'libc6', 'libfoo', 'libbar'}"""
    names = set()
    for alt in re.split(r"[,|]", field):
        alt = alt.strip()
        if alt:
            names.add(re.match(r"[a-z0-9][a-z0-9+.-]*", alt).group(0))
    return names


@unittest.skipUnless(all(shutil.which(t) for t in TOOLS),
                     "needs %s (apt-get install cmake dpkg)" % ", ".join(TOOLS))
class DebianPackage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        build = package_dir()
        os.makedirs(build, exist_ok=True)
        for old in os.listdir(build):
            if old.endswith(".deb") or old.endswith(".deb.sha256"):
                os.unlink(os.path.join(build, old))
        run(["cmake", "-S", SRC, "-B", build, "-DCMAKE_BUILD_TYPE=Release",
             "-DROLESYNC_TESTS=OFF", "-DROLESYNC_SANITIZE=OFF", "-DCMAKE_INSTALL_PREFIX=/usr"])
        run(["cmake", "--build", build, "-j2", "--target", "rolesyncd"], timeout=600)
        run(["cpack", "-G", "DEB"], cwd=build)
        debs = [f for f in os.listdir(build) if f.endswith(".deb")]
        assert len(debs) == 1, "expected one .deb, got %s" % debs
        cls.deb_name = debs[0]
        cls.deb = os.path.join(build, debs[0])
        cls.root = tempfile.mkdtemp(prefix="rs-deb-root-")
        cls.control = tempfile.mkdtemp(prefix="rs-deb-control-")
        run(["dpkg-deb", "-x", cls.deb, cls.root])
        run(["dpkg-deb", "-e", cls.deb, cls.control])
        cls.listing = run(["dpkg-deb", "-c", cls.deb])
        cls.fields = {}
        with open(os.path.join(cls.control, "control"), encoding="utf-8") as f:
            key = None
            for line in f:
                if line[:1] in (" ", "\t") and key:
                    cls.fields[key] += "\n" + line.strip()
                elif ":" in line:
                    key, _, value = line.partition(":")
                    cls.fields[key] = value.strip()
        cls.version = run([os.path.join(cls.root, "usr/sbin/rolesyncd"), "--version"]).strip()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)
        shutil.rmtree(cls.control, ignore_errors=True)

    def entries(self):
        """dpkg-deb -c -> {path: (mode string, owner, size)}"""
        out = {}
        for line in self.listing.splitlines():
            parts = line.split(None, 5)
            path = parts[5].split(" -> ")[0]
            out[path[1:].rstrip("/") or "/"] = (parts[0], parts[1])
        return out

    def test_file_name_and_version(self):
        m = re.fullmatch(r"rolesyncd ([0-9][0-9A-Za-z.+~-]*)", self.version)
        self.assertTrue(m, "--version printed %r" % self.version)
        arch = run(["dpkg", "--print-architecture"]).strip()
        self.assertEqual(self.deb_name, "rolesyncd_%s_%s.deb" % (m.group(1), arch))
        self.assertEqual(self.fields["Package"], "rolesyncd")
        self.assertEqual(self.fields["Version"], m.group(1))
        self.assertEqual(self.fields["Architecture"], arch)

    def test_contents(self):
        entries = self.entries()
        for path, (mode, source) in EXPECTED_FILES.items():
            with self.subTest(path=path):
                self.assertIn(path, entries)
                perms, owner = entries[path]
                self.assertEqual(owner, "root/root")
                self.assertTrue(perms.startswith("-"), perms)
                st = os.stat(os.path.join(self.root, path.lstrip("/")))
                self.assertEqual(stat.S_IMODE(st.st_mode), mode)
                if source:
                    with open(os.path.join(SRC, source), "rb") as a, \
                            open(os.path.join(self.root, path.lstrip("/")), "rb") as b:
                        self.assertEqual(a.read(), b.read(), "%s differs from %s" % (path, source))
        files = {p for p, (perms, _) in entries.items() if not perms.startswith("d")}
        self.assertEqual(files, set(EXPECTED_FILES), "unexpected files in the package")
        for p, (perms, owner) in entries.items():
            self.assertEqual(owner, "root/root", p)
            self.assertFalse(p.startswith("/usr/local"), p)

    def test_unit_runs_the_packaged_binary(self):
        with open(os.path.join(self.root, "usr/lib/systemd/system/rolesyncd.service"),
                  encoding="utf-8") as f:
            execs = re.findall(r"^ExecStart=(\S+)", f.read(), re.M)
        self.assertEqual(execs, ["/usr/sbin/rolesyncd"])

    def test_binary_is_stripped(self):
        if not shutil.which("readelf"):
            self.skipTest("needs readelf (binutils)")
        sections = run(["readelf", "-S", "-W", os.path.join(self.root, "usr/sbin/rolesyncd")])
        self.assertIn(".text", sections)
        self.assertNotIn(".symtab", sections)
        self.assertNotIn(".debug_info", sections)

    def test_control_fields(self):
        f = self.fields
        self.assertEqual(f.get("Section"), "admin")
        self.assertRegex(f.get("Maintainer", ""), r"^[^<>]+ <[^<>@\s]+@[^<>@\s]+>$")
        summary, _, long = f.get("Description", "").partition("\n")
        self.assertTrue(summary and len(summary) <= 80, summary)
        self.assertGreater(len(long), 100)
        with open(os.path.join(self.control, "control"), encoding="utf-8") as c:
            for line in c:
                self.assertLessEqual(len(line.rstrip("\n")), 200, line)

    def test_depends_cover_runtime_libraries(self):
        depends = depends_names(self.fields.get("Depends", ""))
        for pkg in RUNTIME_PACKAGES + ("libc6",):
            self.assertIn(pkg, depends)
        # and every library the binary links is in a package the control file names
        if not shutil.which("readelf"):
            self.skipTest("needs readelf (binutils)")
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]",
                            run(["readelf", "-d", os.path.join(self.root, "usr/sbin/rolesyncd")]))
        self.assertIn("libc.so.6", needed)
        for lib in needed:
            with self.subTest(lib=lib):
                owner = subprocess.run(["dpkg", "-S", "*/" + lib], capture_output=True,
                                       text=True).stdout
                pkgs = {line.split(":")[0] for line in owner.splitlines() if ":" in line}
                self.assertTrue(pkgs, "no installed package ships %s" % lib)
                self.assertTrue(pkgs & depends, "%s (from %s) is not in Depends: %s"
                                % (lib, sorted(pkgs), sorted(depends)))

    def test_conffiles(self):
        with open(os.path.join(self.control, "conffiles"), encoding="utf-8") as f:
            self.assertEqual(f.read().split(), ["/etc/rolesyncd/rolesyncd.yaml"])

    def test_maintainer_scripts(self):
        for name in ("postinst", "prerm", "postrm"):
            with self.subTest(script=name):
                path = os.path.join(self.control, name)
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                self.assertTrue(text.startswith("#!/bin/sh\n"))
                self.assertTrue(os.stat(path).st_mode & stat.S_IXUSR)
                run(["sh", "-n", path])
                self.assertIn("rolesyncd.service" if name != "postrm" else "daemon-reload", text)
        with open(os.path.join(self.control, "postinst"), encoding="utf-8") as f:
            # a fresh install must not start the daemon on the unedited example config
            self.assertNotIn("systemctl start", f.read())

    def test_extracted_binary_checks_the_packaged_config(self):
        """The packaged example config is accepted by the packaged binary (secrets supplied)."""
        work = tempfile.mkdtemp(prefix="rs-deb-check-")
        try:
            with open(os.path.join(self.root, "etc/rolesyncd/rolesyncd.yaml"),
                      encoding="utf-8") as f:
                text = f.read()
            ca = "/etc/ssl/certs/ca-certificates.crt"
            if not os.access(ca, os.R_OK):
                open(os.path.join(work, "ca.pem"), "w").close()
                text = text.replace(ca, os.path.join(work, "ca.pem"))
            cfg = os.path.join(work, "rolesyncd.yaml")
            with open(cfg, "w", encoding="utf-8") as f:
                f.write(text)
            # secrets, and the coordination block's TLS client files and etcd password
            files = r"(?:client_secret_file|client_cert_file|client_key_file|password_file)"
            for name in re.findall(files + r":\s*(\S+)", text):
                path = os.path.join(work, name)
                with open(path, "w", encoding="utf-8") as f:
                    f.write("package-test-value\n")
                os.chmod(path, 0o600)
            env = {k: v for k, v in os.environ.items()
                   if k not in ("CREDENTIALS_DIRECTORY", "STATE_DIRECTORY")}
            for name in re.findall(r"client_secret_env:\s*(\S+)", text):
                env[name] = "package-test-value"
            proc = subprocess.run([os.path.join(self.root, "usr/sbin/rolesyncd"), "--check",
                                   "-c", cfg], env=env, capture_output=True, text=True,
                                  timeout=30)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertIn("configuration OK", proc.stdout)
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
