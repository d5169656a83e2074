"""man/rolesyncd.8 and man/rolesyncd.yaml.5: they render without warnings and stay in step with
the program and the config schema.

- Both pages render with `man --warnings -l` (man-db, groff -ww) and, where installed,
  `groff -man -ww -z` and `mandoc -Tlint`, with nothing on stderr.
- rolesyncd(8): every option of `rolesyncd --help` (short and long) is described under OPTIONS
  and every option described there exists; every environment variable the sources read
  (getenv) and the systemd ones are under ENVIRONMENT; every signal the daemon handles is under
  SIGNALS; the exit codes 0-4 are under EXIT STATUS.
- rolesyncd.yaml(5): every key of conf/rolesyncd.schema.json has a tagged item in the
  subsection of its block and every item there is a schema key; each item states its default
  (the schema's) or that the key is required; the forbidden inline client_secret and the editor
  hint for the schema are documented.

Environment: ROLESYNCD (built binary), ROLESYNC_SRC (source root).
Skips only when man-db's `man` is missing (Debian: apt-get install man-db groff-base).
"""
import glob
import json
import os
import re
import shutil
import subprocess
import unittest

from schemanav import SchemaNav

SRC = os.environ.get("ROLESYNC_SRC",
                     os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
ROLESYNCD = os.environ.get("ROLESYNCD", "rolesyncd")
PAGE8 = os.path.join(SRC, "man", "rolesyncd.8")
PAGE5 = os.path.join(SRC, "man", "rolesyncd.yaml.5")
SCHEMA = os.path.join(SRC, "conf", "rolesyncd.schema.json")
SCHEMA_INSTALLED = "/usr/share/rolesyncd/rolesyncd.schema.json"

# .SS title in rolesyncd.yaml(5) -> config path in the schema ("*": a tenant, "[]": a job)
KEY_SECTIONS = {
    "Top level": (),
    "http": ("http",),
    "http.retry": ("http", "retry"),
    "tenants.NAME": ("tenants", "*"),
    "jobs[]": ("jobs", "[]"),
    "jobs[].roles": ("jobs", "[]", "roles"),
    "jobs[].divisions": ("jobs", "[]", "divisions"),
    "jobs[].users": ("jobs", "[]", "users"),
    "coordination": ("coordination",),
    "coordination.etcd": ("coordination", "etcd"),
    "journal": ("journal",),
}
# read by libsystemd (sd_notify, sd_watchdog_enabled) rather than by a getenv() of ours
SYSTEMD_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "STATE_DIRECTORY", "CREDENTIALS_DIRECTORY",
               "JOURNAL_STREAM")


def render(path, width=80):
    env = dict(os.environ, MANWIDTH=str(width), LANG="C.UTF-8", LC_ALL="C.UTF-8")
    env.pop("MAN_KEEP_FORMATTING", None)
    proc = subprocess.run(["man", "--warnings", "-l", path], env=env, capture_output=True,
                          text=True, timeout=60)
    return proc.returncode, proc.stdout, proc.stderr


def sections(text):
    """Rendered page -> {SECTION NAME: body text}."""
    out, current = {}, None
    for line in text.splitlines():
        if re.match(r"^[A-Z][A-Z0-9 ]+$", line):
            current = line.strip()
            out[current] = ""
        elif current:
            out[current] += line + "\n"
    return out


def _macro_args(rest):
    args, cur, quoted, i = [], "", False, 0
    while i < len(rest):
        c = rest[i]
        if c == '"':
            quoted = not quoted
        elif c == " " and not quoted:
            if cur:
                args.append(cur)
            cur = ""
        elif c == "\\" and i + 1 < len(rest):
            cur += rest[i:i + 2]
            i += 1
        else:
            cur += c
        i += 1
    if cur:
        args.append(cur)
    return args


ESCAPES = [(r"\(dq", '"'), (r"\(aq", "'"), (r"\(lq", '"'), (r"\(rq", '"'), (r"\(+-", "+-"),
           (r"\(bu", "*"), (r"\(ti", "~"), (r"\-", "-"), (r"\&", ""), (r"\|", ""), (r"\ ", " "),
           (r"\e", "\\"), (r"\c", "")]


def roff_text(lines):
    """Roff source lines -> plain text, enough to read what an item says."""
    words = []
    for line in lines:
        if line.startswith(('.\\"', "'\\\"")):
            continue
        if line.startswith("."):
            name, _, rest = line[1:].partition(" ")
            args = _macro_args(rest)
            if name in ("B", "I", "SM"):
                words.append(" ".join(args))
            elif name in ("BR", "RB", "IR", "RI", "BI", "IB"):
                words.append("".join(args))
            continue
        words.append(line)
    text = " ".join(words)
    text = re.sub(r"\\f(\[[A-Z]*\]|[BIRP])", "", text)
    for esc, rep in ESCAPES:
        text = text.replace(esc, rep)
    return re.sub(r"\s+", " ", text).strip()


def tagged_items(source):
    """Roff source -> {(section, subsection): {tag: item lines}} for `.TP` + `.B tag` items."""
    out, sh, ss = {}, None, None
    lines = source.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(".SH "):
            sh, ss = line[4:].strip().strip('"'), None
        elif line.startswith(".SS "):
            ss = line[4:].strip().strip('"')
        elif line == ".TP" and i + 1 < len(lines) and lines[i + 1].startswith(".B "):
            tag = _macro_args(lines[i + 1][3:])[0]
            body = []
            j = i + 2
            while j < len(lines) and not re.match(r"\.(TP|SS|SH|PP|IP)\b", lines[j]):
                body.append(lines[j])
                j += 1
            out.setdefault((sh, ss), {})[tag] = body
            i = j
            continue
        i += 1
    return out


class Schema(SchemaNav):
    def __init__(self):
        with open(SCHEMA, encoding="utf-8") as f:
            super().__init__(json.load(f))


def default_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(", ", ": "))
    return str(value)


@unittest.skipUnless(shutil.which("man"), "needs man-db (apt-get install man-db groff-base)")
class Rendering(unittest.TestCase):
    def test_pages_render_without_warnings(self):
        for page in (PAGE8, PAGE5):
            with self.subTest(page=os.path.basename(page)):
                for width in (80, 120):
                    rc, out, err = render(page, width)
                    self.assertEqual(rc, 0, err)
                    self.assertEqual(err, "", "man --warnings: %s" % err)
                    for name in ("NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"):
                        self.assertIn(name, sections(out))
                if shutil.which("groff"):
                    proc = subprocess.run(["groff", "-man", "-ww", "-z", "-Tutf8", page],
                                          capture_output=True, text=True, timeout=60)
                    self.assertEqual((proc.returncode, proc.stderr), (0, ""))
                if shutil.which("mandoc"):
                    proc = subprocess.run(["mandoc", "-Tlint", "-Wwarning", page],
                                          capture_output=True, text=True, timeout=60)
                    self.assertEqual(proc.stdout + proc.stderr, "")

    def test_sources_are_ascii(self):
        # man-db guesses the encoding of pages outside its tree; plain ASCII always works
        for page in (PAGE8, PAGE5):
            with open(page, "rb") as f:
                data = f.read()
            self.assertTrue(all(b < 0x80 for b in data), page)

    def test_names_match_files(self):
        for page, name, sect in ((PAGE8, "ROLESYNCD", "8"), (PAGE5, "ROLESYNCD.YAML", "5")):
            with open(page, encoding="utf-8") as f:
                th = [l for l in f if l.startswith(".TH ")]
            self.assertEqual(len(th), 1)
            self.assertEqual(th[0].split()[1:3], [name, sect])


@unittest.skipUnless(shutil.which("man"), "needs man-db (apt-get install man-db groff-base)")
class DaemonPage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rc, out, err = render(PAGE8, 200)  # wide: no wrapping inside the items
        assert rc == 0, err
        cls.sect = sections(out)
        cls.help = subprocess.run([ROLESYNCD, "--help"], capture_output=True, text=True,
                                  timeout=30).stdout

    def help_options(self):
        opts = set()
        for m in re.finditer(r"^\s+(?:(-[A-Za-z0-9]), )?(--[a-z][a-z-]*)", self.help, re.M):
            opts.update(o for o in m.groups() if o)
        return opts

    def test_every_help_option_is_described(self):
        opts = self.help_options()
        self.assertGreaterEqual(len(opts), 10, self.help)
        tags = re.findall(r"^ {7}(-\S.*)$", self.sect["OPTIONS"], re.M)
        described = set()
        for tag in tags:
            described.update(re.findall(r"(?<![\w-])(--?[A-Za-z0-9][\w-]*)", tag))
        self.assertEqual(described, opts, "man page OPTIONS vs --help")
        with open(PAGE8, encoding="utf-8") as f:
            source = f.read()
        for opt in opts:  # written as \- so they render (and copy) as ASCII hyphen-minus
            self.assertIn(opt.replace("-", "\\-"), source, opt)

    def test_exit_codes(self):
        codes = re.findall(r"^ {7}([0-9])\s", self.sect["EXIT STATUS"], re.M)
        self.assertEqual(codes, ["0", "1", "2", "3", "4"])
        help_codes = re.findall(r"(?:^|[ ,:])([0-9]) (?:ok|usage|dry-run|some|refused)",
                                self.help, re.M)
        self.assertEqual(sorted(set(help_codes)), codes)

    def test_environment(self):
        names = set(SYSTEMD_ENV)
        for path in glob.glob(os.path.join(SRC, "src", "**", "*.c"), recursive=True):
            with open(path, encoding="utf-8") as f:
                names.update(re.findall(r'getenv\("([A-Z_][A-Z0-9_]*)"\)', f.read()))
        tags = set(re.findall(r"^ {7}([A-Z_][A-Z0-9_]*)(?: {2,}|$)", self.sect["ENVIRONMENT"],
                              re.M))
        self.assertEqual(tags, names)

    def test_signals(self):
        with open(os.path.join(SRC, "src", "daemon.c"), encoding="utf-8") as f:
            handled = set(re.findall(r"start_signal\([^;]*\b(SIG[A-Z0-9]+)\)", f.read()))
        self.assertTrue({"SIGHUP", "SIGTERM"} <= handled, handled)
        described = set(re.findall(r"\b(SIG[A-Z0-9]+)\b",
                                   "\n".join(re.findall(r"^ {7}(SIG.*)$", self.sect["SIGNALS"],
                                                        re.M))))
        self.assertEqual(described, handled)

    def test_files_and_see_also(self):
        files = self.sect["FILES"]
        for path in ("/etc/rolesyncd/rolesyncd.yaml", "status.json",
                     "/usr/lib/systemd/system/rolesyncd.service", SCHEMA_INSTALLED):
            self.assertIn(path, files)
        self.assertIn("rolesyncd.yaml(5)", self.sect["SEE ALSO"])
        self.assertIn("STATUS FILE", self.sect)


class ConfigPage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(PAGE5, encoding="utf-8") as f:
            cls.source = f.read()
        cls.items = tagged_items(cls.source)
        cls.schema = Schema()

    def test_every_schema_key_has_an_item(self):
        self.assertEqual({ss for (sh, ss) in self.items if sh == "KEYS"}, set(KEY_SECTIONS))
        for title, path in KEY_SECTIONS.items():
            with self.subTest(section=title):
                props = self.schema.at(path)["properties"]
                keys = {k for k, s in props.items() if s.get("not") != {}}
                self.assertEqual(set(self.items[("KEYS", title)]), keys)

    def test_items_state_default_or_required(self):
        for title, path in KEY_SECTIONS.items():
            node = self.schema.at(path)
            required = set(node.get("required", []))
            for key, body in self.items[("KEYS", title)].items():
                with self.subTest(key="%s %s" % (title, key)):
                    text = roff_text(body)
                    first = text.split(".  ")[0]
                    sub = self.schema.flatten(node["properties"][key])
                    if ("properties" in sub or "$ref" in str(sub.get("items"))
                            or "$ref" in str(sub.get("additionalProperties"))):
                        # a block (http, retry, roles, users, tenants, jobs): its own subsection
                        self.assertRegex(text, r"see below|block above")
                    elif key in required:
                        self.assertIn("required", text)
                    elif "default" in sub:
                        self.assertIn("default", text)
                        self.assertRegex(text, r"(?<![\w/.-])%s(?![\w/-])"
                                         % re.escape(default_text(sub["default"])))
                    else:
                        self.assertTrue("default" in text or "required" in text, text)
                    for value in sub.get("enum", []):
                        self.assertIn(value, first)

    def test_secrets_and_editor_hint(self):
        text = roff_text(self.source.splitlines())
        self.assertIn("An inline client_secret key is an error", text)
        self.assertIn("# yaml-language-server: $schema=%s" % SCHEMA_INSTALLED, text)
        with open(os.path.join(SRC, "cmake", "packaging.cmake"), encoding="utf-8") as f:
            self.assertIn("DESTINATION ${CMAKE_INSTALL_DATADIR}/rolesyncd", f.read())


if __name__ == "__main__":
    unittest.main(verbosity=2)
