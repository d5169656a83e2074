"""conf/rolesyncd.schema.json against the example config and against the loader (src/config.c).

(a) conf/rolesyncd.yaml, read with libyaml (through ctypes: there is no PyYAML, and a
    hand-written YAML subset parser would be the thing under test), validates against the
    schema, and uses every key the schema knows.
(b) The schema and the loader agree: the key tables the loader checks with check_keys() are
    exactly the schema's properties at every level (both directions), the enum tables match the
    schema's enums, get_uint() ranges match minimum/maximum, get_duration() keys are exactly the
    schema's duration-typed keys, and the loader's defaults are the schema's defaults.
(c) The real `rolesyncd --check` and the schema give the same verdict on a set of configs:
    unknown keys, bad durations and rates, an inline client_secret, the identity/genesys
    tenant_id rule, the secret oneOf, out-of-range numbers, bad names, and some valid edge cases.

The JSON-Schema validator below covers exactly the draft-07 keywords the schema uses and fails
on any other validation keyword, so the schema cannot grow a keyword this test silently ignores.
(Debian's python3-jsonschema would do, but the suite stays stdlib-only.)

Environment: ROLESYNCD (built binary), ROLESYNC_SRC (source root).
"""
import ctypes
import ctypes.util
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from schemanav import SchemaNav

SRC = os.environ.get("ROLESYNC_SRC",
                     os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
ROLESYNCD = os.environ.get("ROLESYNCD", "rolesyncd")
SCHEMA_PATH = os.path.join(SRC, "conf", "rolesyncd.schema.json")
EXAMPLE = os.path.join(SRC, "conf", "rolesyncd.yaml")
CONFIG_C = os.path.join(SRC, "src", "config.c")


# ---------------------------------------------------------------------------------------------
# YAML through libyaml's event API (the library the daemon itself uses)

class _Mark(ctypes.Structure):
    _fields_ = [("index", ctypes.c_size_t), ("line", ctypes.c_size_t),
                ("column", ctypes.c_size_t)]


class _Scalar(ctypes.Structure):
    _fields_ = [("anchor", ctypes.c_char_p), ("tag", ctypes.c_char_p),
                ("value", ctypes.POINTER(ctypes.c_char)), ("length", ctypes.c_size_t),
                ("plain_implicit", ctypes.c_int), ("quoted_implicit", ctypes.c_int),
                ("style", ctypes.c_int)]


class _Collection(ctypes.Structure):
    _fields_ = [("anchor", ctypes.c_char_p), ("tag", ctypes.c_char_p),
                ("implicit", ctypes.c_int), ("style", ctypes.c_int)]


class _DocStart(ctypes.Structure):
    _fields_ = [("version_directive", ctypes.c_void_p), ("tags_start", ctypes.c_void_p),
                ("tags_end", ctypes.c_void_p), ("implicit", ctypes.c_int)]


class _Data(ctypes.Union):
    _fields_ = [("scalar", _Scalar), ("collection", _Collection), ("document_start", _DocStart)]


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("data", _Data), ("start_mark", _Mark),
                ("end_mark", _Mark)]


# yaml_event_type_e and yaml_scalar_style_e from yaml.h
(EV_STREAM_END, EV_DOC_START, EV_DOC_END, EV_ALIAS, EV_SCALAR, EV_SEQ_START, EV_SEQ_END,
 EV_MAP_START, EV_MAP_END) = range(2, 11)
STYLE_PLAIN = 1
PARSER_SIZE = 4096  # sizeof(yaml_parser_t) is 480 on amd64; opaque to us, so be generous


def _libyaml():
    name = ctypes.util.find_library("yaml-0") or "libyaml-0.so.2"
    lib = ctypes.CDLL(name)
    lib.yaml_parser_initialize.argtypes = [ctypes.c_void_p]
    lib.yaml_parser_set_input_string.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                                 ctypes.c_size_t]
    lib.yaml_parser_parse.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Event)]
    lib.yaml_event_delete.argtypes = [ctypes.POINTER(_Event)]
    lib.yaml_parser_delete.argtypes = [ctypes.c_void_p]
    return lib


_INT = re.compile(r"[-+]?[0-9]+\Z")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")


def _plain_scalar(text):
    """YAML 1.2 core schema resolution (what yaml-language-server applies)."""
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if _INT.match(text):
        return int(text)
    if re.match(r"0o[0-7]+\Z", text):
        return int(text[2:], 8)
    if re.match(r"0x[0-9a-fA-F]+\Z", text):
        return int(text[2:], 16)
    if _FLOAT.match(text):
        return float(text)
    return text


def yaml_load(text):
    """One YAML document -> Python objects (dict, list, str, int, float, bool, None)."""
    lib = _libyaml()
    parser = ctypes.create_string_buffer(PARSER_SIZE)
    data = text.encode("utf-8")
    if not lib.yaml_parser_initialize(parser):
        raise MemoryError("yaml_parser_initialize")
    lib.yaml_parser_set_input_string(parser, data, len(data))
    stack, root, ev = [], None, _Event()
    try:
        while True:
            if not lib.yaml_parser_parse(parser, ctypes.byref(ev)):
                raise ValueError("YAML syntax error")
            try:
                t = ev.type
                if t == EV_STREAM_END:
                    break
                if t == EV_ALIAS:
                    raise ValueError("aliases are not supported (the loader refuses them too)")
                value, opens = None, False
                if t == EV_SCALAR:
                    sc = ev.data.scalar
                    raw = ctypes.string_at(sc.value, sc.length).decode("utf-8")
                    forced_str = sc.tag == b"tag:yaml.org,2002:str"
                    value = (_plain_scalar(raw) if sc.style == STYLE_PLAIN and not forced_str
                             else raw)
                elif t == EV_SEQ_START:
                    value, opens = [], True
                elif t == EV_MAP_START:
                    value, opens = {}, True
                elif t in (EV_SEQ_END, EV_MAP_END):
                    stack.pop()
                    continue
                else:
                    continue
                if not stack:
                    root = value
                else:
                    top = stack[-1]
                    if isinstance(top[0], list):
                        top[0].append(value)
                    elif top[1] is None:  # a mapping key
                        top[1] = (value,)
                    else:
                        key = top[1][0]
                        if key in top[0]:
                            raise ValueError("duplicate key %r" % (key,))
                        top[0][key] = value
                        top[1] = None
                if opens:
                    stack.append([value, None])
            finally:
                lib.yaml_event_delete(ctypes.byref(ev))
    finally:
        lib.yaml_parser_delete(parser)
    return root


# ---------------------------------------------------------------------------------------------
# A draft-07 validator for the keywords the schema uses

ANNOTATIONS = {"$schema", "$comment", "$id", "title", "description", "default", "examples",
               "errorMessage", "doNotSuggest", "markdownDescription", "definitions"}
KEYWORDS = {"$ref", "type", "properties", "required", "additionalProperties", "propertyNames",
            "enum", "const", "pattern", "minLength", "minimum", "maximum", "items", "allOf",
            "minItems", "uniqueItems",
            "anyOf", "oneOf", "not", "if", "then", "else"}


def _type_ok(value, t):
    if t == "object":
        return isinstance(value, dict)
    if t == "array":
        return isinstance(value, list)
    if t == "string":
        return isinstance(value, str)
    if t == "boolean":
        return isinstance(value, bool)
    if t == "null":
        return value is None
    if t == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or \
            (isinstance(value, float) and value.is_integer())
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    raise AssertionError("unknown type %r in schema" % t)


def _ecma_pattern(p):
    # JSON Schema patterns are ECMA 262; Python's `$` also matches before a final newline.
    return p[:-1] + r"\Z" if p.endswith("$") and not p.endswith(r"\$") else p


class Validator(SchemaNav):
    """The subset of JSON Schema the project's schema uses; unknown keywords fail."""

    def errors(self, value, schema=None, path="$"):
        """Every violation as 'path: message'; [] when valid."""
        schema = self.root if schema is None else schema
        if schema is True:
            return []
        if schema is False:
            return ["%s: not allowed" % path]
        unknown = set(schema) - KEYWORDS - ANNOTATIONS
        assert not unknown, "the test validator does not know keyword(s) %s" % sorted(unknown)
        errs = []
        if "$ref" in schema:
            errs += self.errors(value, self.resolve(schema["$ref"]), path)
        if "type" in schema:
            types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            if not any(_type_ok(value, t) for t in types):
                return errs + ["%s: %r is not of type %s" % (path, value, "/".join(types))]
        if "enum" in schema and value not in schema["enum"]:
            errs.append("%s: %r is not one of %s" % (path, value, schema["enum"]))
        if "const" in schema and (value != schema["const"] or
                                  type(value) is not type(schema["const"])):
            errs.append("%s: %r is not %r" % (path, value, schema["const"]))
        if isinstance(value, str):
            if "pattern" in schema and not re.search(_ecma_pattern(schema["pattern"]), value):
                errs.append("%s: %r does not match %s" % (path, value, schema["pattern"]))
            if "minLength" in schema and len(value) < schema["minLength"]:
                errs.append("%s: %r is too short" % (path, value))
        if _type_ok(value, "number"):
            if "minimum" in schema and value < schema["minimum"]:
                errs.append("%s: %r is below %r" % (path, value, schema["minimum"]))
            if "maximum" in schema and value > schema["maximum"]:
                errs.append("%s: %r is above %r" % (path, value, schema["maximum"]))
        if isinstance(value, dict):
            props = schema.get("properties", {})
            for key in schema.get("required", []):
                if key not in value:
                    errs.append("%s: missing required %r" % (path, key))
            for key, v in value.items():
                sub = "%s.%s" % (path, key)
                if "propertyNames" in schema:
                    errs += self.errors(key, schema["propertyNames"], sub + "(name)")
                if key in props:
                    errs += self.errors(v, props[key], sub)
                elif "additionalProperties" in schema:
                    ap = schema["additionalProperties"]
                    errs += (["%s: unknown key" % sub] if ap is False
                             else self.errors(v, ap, sub))
        if isinstance(value, list) and len(value) < schema.get("minItems", 0):
            errs.append("%s: fewer than %d items" % (path, schema["minItems"]))
        if isinstance(value, list) and schema.get("uniqueItems") and \
                len({json.dumps(v, sort_keys=True) for v in value}) != len(value):
            errs.append("%s: items are not unique" % path)
        if isinstance(value, list) and "items" in schema:
            for i, item in enumerate(value):
                errs += self.errors(item, schema["items"], "%s[%d]" % (path, i))
        for sub in schema.get("allOf", []):
            errs += self.errors(value, sub, path)
        if "anyOf" in schema and all(self.errors(value, s, path) for s in schema["anyOf"]):
            errs.append("%s: matches none of anyOf" % path)
        if "oneOf" in schema:
            n = sum(1 for s in schema["oneOf"] if not self.errors(value, s, path))
            if n != 1:
                errs.append("%s: matches %d of oneOf (exactly one needed)" % (path, n))
        if "not" in schema and not self.errors(value, schema["not"], path):
            errs.append("%s: %s" % (path, schema.get("errorMessage", "matches a forbidden schema")))
        if "if" in schema:
            branch = "then" if not self.errors(value, schema["if"], path) else "else"
            if branch in schema:
                errs += self.errors(value, schema[branch], path)
        return errs

    # -- navigation by config structure: SchemaNav.at (() root, "*" a tenant, "[]" a job)
    def object_paths(self, path=(), node=None):
        """Every config path whose schema is an object with named properties."""
        node = self.at(path) if node is None else node
        found = []
        if "properties" in node:
            found.append(path)
            for key in node["properties"]:
                found += self.object_paths(path + (key,))
        for part, kw in (("*", "additionalProperties"), ("[]", "items")):
            if isinstance(node.get(kw), dict):
                found += self.object_paths(path + (part,))
        return found


def load_schema():
    with open(SCHEMA_PATH, encoding="utf-8") as f:
        return json.load(f)


def forbidden(prop_schema):
    """A property present only to be refused with an explanation (`not: {}`)."""
    return prop_schema.get("not") == {}


def duration_ms(s):
    m = re.fullmatch(r"([0-9]+)(ms|s|m|h)", s)
    assert m, s
    return int(m.group(1)) * {"ms": 1, "s": 1000, "m": 60000, "h": 3600000}[m.group(2)]


def rate_per_sec(s):
    if s in (0, "0"):
        return 0.0
    n, unit = s.split("/")
    return int(n) / {"s": 1, "min": 60, "h": 3600}[unit]


# ---------------------------------------------------------------------------------------------

class SchemaWellFormed(unittest.TestCase):
    def test_draft07_and_descriptions(self):
        schema = load_schema()
        self.assertEqual(schema["$schema"], "http://json-schema.org/draft-07/schema#")
        v = Validator(schema)
        for path in v.object_paths():
            node = v.at(path)
            self.assertIs(node.get("additionalProperties"), False,
                          "%s must refuse unknown keys like the loader" % (path,))
            for key, sub in node["properties"].items():
                self.assertTrue(v.flatten(sub).get("description"),
                                "%s.%s has no description" % (path, key))

    def test_validator_catches_basics(self):
        # guard against a validator that accepts everything
        v = Validator(load_schema())
        self.assertTrue(v.errors([]))
        self.assertTrue(v.errors({"nope": 1}))
        self.assertTrue(v.errors({"log_level": "loud"}))
        self.assertEqual(v.errors({"log_level": "debug"}), [])


class ExampleValidates(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(EXAMPLE, encoding="utf-8") as f:
            cls.doc = yaml_load(f.read())
        cls.v = Validator(load_schema())

    def test_example_is_valid(self):
        self.assertIsInstance(self.doc, dict)
        self.assertEqual(self.v.errors(self.doc), [])

    def test_example_uses_every_key(self):
        """conf/rolesyncd.yaml is 'the commented example using every key'."""
        def used(value, path=()):
            out = set()
            if isinstance(value, dict):
                for k, sub in value.items():
                    out.add(path + (k,))
                    out |= used(sub, path + (k,))
            elif isinstance(value, list):
                for item in value:
                    out |= used(item, path + ("[]",))
            return out
        # tenant names are free: fold them into "*"; a tenant's http: block is the top-level
        # one again, so a key shown in either counts
        doc_keys = set()
        for p in used(self.doc):
            if len(p) >= 2 and p[0] == "tenants":
                p = ("tenants", "*") + p[2:]
            if p[:3] == ("tenants", "*", "http") and len(p) > 3:
                p = ("http",) + p[3:]
            doc_keys.add(p)
        missing = []
        for path in self.v.object_paths():
            if path[:3] == ("tenants", "*", "http"):
                continue
            for key, sub in self.v.at(path)["properties"].items():
                if not forbidden(sub) and path + (key,) not in doc_keys:
                    missing.append(".".join(path + (key,)))
        self.assertEqual(missing, [], "keys the example does not show")


class SchemaMatchesLoader(unittest.TestCase):
    """The schema's keys, enums, ranges, durations and defaults come from src/config.c."""

    # which key table of the loader governs which config path (tenant http: blocks use the
    # same tables as the top-level one)
    KEY_TABLES = {
        "TOP_KEYS": [()],
        "HTTP_KEYS": [("http",), ("tenants", "*", "http")],
        "RETRY_KEYS": [("http", "retry"), ("tenants", "*", "http", "retry")],
        "TENANT_KEYS": [("tenants", "*")],
        "JOB_KEYS": [("jobs", "[]")],
        "ROLES_KEYS": [("jobs", "[]", "roles")],
        "USERS_KEYS": [("jobs", "[]", "users")],
        "DIVISIONS_KEYS": [("jobs", "[]", "divisions")],
        "COORD_KEYS": [("coordination",)],
        "ETCD_KEYS": [("coordination", "etcd")],
        "JOURNAL_KEYS": [("journal",)],
    }
    # key given to get_enum() -> where it lives
    ENUM_KEYS = {"log_level": (), "api": ("tenants", "*"), "match_by": ("jobs", "[]", "users"),
                 "assignments": ("jobs", "[]")}

    @classmethod
    def setUpClass(cls):
        with open(CONFIG_C, encoding="utf-8") as f:
            cls.code = f.read()
        cls.tables = {name: re.findall(r'"([^"]*)"', body) for name, body in re.findall(
            r"static const char \*const (\w+)\[\] = \{(.*?)\};", cls.code, re.S)}
        cls.v = Validator(load_schema())

    def test_every_key_table_is_mapped(self):
        used = set(re.findall(r"check_keys\(ld, \w+, \"[^\"]*\", (\w+),", self.code))
        self.assertTrue(used, "no check_keys() calls found: the loader changed shape")
        self.assertEqual(used, set(self.KEY_TABLES),
                         "a check_keys() table is not mapped to the schema (update the test)")

    def test_keys_match_both_ways(self):
        for table, paths in self.KEY_TABLES.items():
            loader = set(self.tables[table])
            for path in paths:
                props = self.v.at(path)["properties"]
                schema = {k for k, s in props.items() if not forbidden(s)}
                self.assertEqual(schema, loader, "keys at %s (loader table %s)" % (path, table))

    def test_object_paths_are_all_loader_tables(self):
        mapped = {p for paths in self.KEY_TABLES.values() for p in paths}
        schema_objects = {p for p in self.v.object_paths()}
        self.assertEqual(schema_objects, mapped)

    def test_inline_client_secret_forbidden(self):
        special = re.findall(r'tenant && strcmp\(k->val, "(\w+)"\) == 0', self.code)
        self.assertEqual(special, ["client_secret"])
        props = self.v.at(("tenants", "*"))["properties"]
        self.assertTrue(forbidden(props["client_secret"]))
        self.assertIn("client_secret_file", props["client_secret"]["description"])
        self.assertIn("client_secret_env", props["client_secret"]["description"])
        forbidden_elsewhere = [(p, k) for p in self.v.object_paths()
                               for k, s in self.v.at(p)["properties"].items()
                               if forbidden(s) and p != ("tenants", "*")]
        self.assertEqual(forbidden_elsewhere, [])

    def test_enums(self):
        calls = dict(re.findall(r'get_enum\(ld, \w+, "(\w+)", (\w+_NAMES)', self.code))
        self.assertEqual(set(calls), set(self.ENUM_KEYS))
        for key, table in calls.items():
            node = self.v.at(self.ENUM_KEYS[key] + (key,))
            self.assertEqual(node["enum"], self.tables[table], key)

    def test_enum_defaults_are_the_zero_values(self):
        # the job struct is calloc'ed, so an unset enum is its first name; log_level is set
        self.assertIn("cfg->log_level = LOG_LVL_INFO;", self.code)
        self.assertEqual(self.v.at(("log_level",))["default"], "info")
        for key in ("match_by", "assignments"):
            node = self.v.at(self.ENUM_KEYS[key] + (key,))
            self.assertEqual(node["default"], node["enum"][0], key)

    def test_uint_ranges(self):
        where = {"max_connections": ("http",), "max_attempts": ("http", "retry"),
                 "page_size": ("tenants", "*"), "max_deletes": ("jobs", "[]"),
                 "keep": ("journal",)}
        calls = re.findall(r'get_uint\(ld, \w+, "(\w+)", (\d+), (\w+),', self.code)
        self.assertEqual({c[0] for c in calls}, set(where))
        # page_size's ceiling is the provider's page_size_max: the largest of them without an
        # api (the schema's base maximum), the genesys one in the schema's if/then
        maxima = {}
        for api in ("genesys", "identity"):
            with open(os.path.join(SRC, "src", "providers", api + ".c"), encoding="utf-8") as f:
                maxima[api] = int(re.search(r"\.page_size_max = (\d+)", f.read()).group(1))
        self.assertIn("ps_max = ops->page_size_max;", self.code)
        ceilings = {"ps_max": max(maxima.values())}
        for key, lo, hi in calls:
            node = self.v.at(where[key] + (key,))
            self.assertEqual(node["type"], "integer", key)
            self.assertEqual((node["minimum"], node["maximum"]),
                             (int(lo), ceilings[hi] if hi in ceilings else int(hi)), key)
        tenant = load_schema()["definitions"]["tenant"]
        genesys = [b["then"] for b in tenant["allOf"]
                   if b["if"]["properties"]["api"]["const"] == "genesys"]
        self.assertEqual(genesys[0]["properties"]["page_size"]["maximum"], maxima["genesys"])

    def test_duration_keys(self):
        loader = set(re.findall(r'get_duration\(ld, \w+, "(\w+)"', self.code))
        schema = set()
        for path in self.v.object_paths():
            for key, sub in self.v.at(path)["properties"].items():
                if (not self.v.errors("1h", sub) and self.v.errors("1", sub)
                        and self.v.errors("1hour", sub) and self.v.errors("0s", sub)):
                    schema.add(key)
        self.assertEqual(schema, loader)

    def test_http_defaults(self):
        body = re.search(r"static void http_defaults\(.*?\n\}", self.code, re.S).group(0)
        values = dict(re.findall(r"h->(\w+) = ([^;]+);", body))
        fields = {"timeout_ms": ("timeout",), "connect_timeout_ms": ("connect_timeout",),
                  "max_connections": ("max_connections",), "rate_per_sec": ("rate_limit",),
                  "retry_max_attempts": ("retry", "max_attempts"),
                  "retry_initial_delay_ms": ("retry", "initial_delay"),
                  "retry_max_delay_ms": ("retry", "max_delay")}
        self.assertEqual(set(values), set(fields))
        for field, path in fields.items():
            default = self.v.at(("http",) + path)["default"]
            self.assertEqual(self.v.errors(default, self.v.at(("http",) + path)), [], field)
            code = values[field]
            self.assertRegex(code, r"^[0-9. /]+$")
            expected = eval(code)  # digits, dots and '/' only (checked above)
            if field.endswith("_ms"):
                self.assertEqual(duration_ms(default), expected, field)
            elif field == "rate_per_sec":
                self.assertAlmostEqual(rate_per_sec(default), expected, msg=field)
            else:
                self.assertEqual(default, expected, field)

    def test_job_defaults(self):
        job = self.v.at(("jobs", "[]"))
        interval = re.search(r"j->interval_ms = (\d+);", self.code).group(1)
        self.assertEqual(duration_ms(job["properties"]["interval"]["default"]), int(interval))
        deletes = re.search(r"j->max_deletes = (\d+);", self.code).group(1)
        self.assertEqual(job["properties"]["max_deletes"]["default"], int(deletes))
        self.assertIn("strlist_set_star(&j->roles_include);", self.code)
        self.assertIn("strlist_set_star(&j->users_include);", self.code)
        for sect in ("roles", "users"):
            props = self.v.at(("jobs", "[]", sect))["properties"]
            self.assertEqual(props["include"]["default"], ["*"])
            self.assertEqual(props["exclude"]["default"], [])
        for path, key in ((("jobs", "[]", "roles"), "definitions"), (("jobs", "[]"), "prune"),
                          (("jobs", "[]"), "dry_run")):
            self.assertIs(self.v.at(path + (key,))["default"], False, key)


# A complete, valid config for (c): both apis, file and env secrets, tenant http overrides.
BASE = """\
state_dir: /var/lib/rolesyncd
log_level: info
http:
  timeout: 30s
  max_connections: 8
  rate_limit: 300/min
  retry:
    max_attempts: 8
    initial_delay: 1s
    max_delay: 60s
tenants:
  prod:
    api: genesys
    base_url: https://api.mypurecloud.com
    client_id: prod-client
    client_secret_file: prod.secret
  dev:
    api: genesys
    base_url: https://api.usw2.pure.cloud
    client_id: dev-client
    client_secret_file: dev.secret
    page_size: 200
    http:
      max_connections: 4
  plant-a:
    api: identity
    base_url: https://uswe.datahub.connect.aveva.com
    tenant_id: 3f1c0c1e-5f61-4a8e-9c59-0a4b2b8c9d01
    client_id: plant-a-client
    client_secret_env: RS_SCHEMA_TEST_SECRET
jobs:
  - name: prod-to-dev
    source: prod
    target: dev
    interval: 10m
    roles:
      include: ["*"]
      exclude: ["Master Admin"]
      definitions: true
      rename:
        Supervisor: Team Lead
    users:
      match_by: email
      include: ["*@example.com"]
      exclude: []
    assignments: mirror
    prune: false
    max_deletes: 50
    dry_run: false
"""

# (name, old text, new text, valid?) — `old` must occur in BASE exactly once.
CASES = [
    ("base", "", "", True),
    ("unknown job key", "    interval: 10m\n", "    intervall: 10m\n", False),
    ("target list (fan-out)", "    target: dev\n", "    target: [dev]\n", True),
    ("empty target list", "    target: dev\n", "    target: []\n", False),
    ("target listed twice", "    target: dev\n", "    target: [dev, dev]\n", False),
    ("target list of a non-name", "    target: dev\n", "    target: [dev, {a: b}]\n", False),
    ("identity write_base_url", "    tenant_id: 3f1c0c1e", "    write_base_url: "
     "https://uswe.datahub.connect.aveva.com\n    tenant_id: 3f1c0c1e", True),
    ("write_base_url on genesys", "    page_size: 200\n",
     "    page_size: 200\n    write_base_url: https://api.usw2.pure.cloud\n", False),
    ("unknown top-level key", "log_level: info\n", "log_level: info\nlog_levl: info\n", False),
    ("unknown http key", "  timeout: 30s\n", "  timeout: 30s\n  timout: 30s\n", False),
    ("unknown retry key", "    max_attempts: 8\n", "    max_atempts: 8\n", False),
    ("unknown tenant http key", "      max_connections: 4\n", "      max_conections: 4\n", False),
    ("unknown roles key", "      definitions: true\n", "      definition: true\n", False),
    ("unknown users key", "      match_by: email\n", "      matchby: email\n", False),
    ("duration without unit", "interval: 10m", "interval: 10", False),
    ("duration with long unit", "interval: 10m", "interval: 10min", False),
    ("zero duration", "timeout: 30s", "timeout: 0s", False),
    ("interval below 1s", "interval: 10m", "interval: 999ms", False),
    ("interval of exactly 1s in ms", "interval: 10m", "interval: 1000ms", True),
    ("inline client_secret",
     "    client_secret_file: prod.secret\n",
     "    client_secret_file: prod.secret\n    client_secret: not-a-real-secret\n", False),
    ("inline client_secret instead of a file",
     "    client_secret_file: prod.secret\n", "    client_secret: not-a-real-secret\n", False),
    ("both secret sources",
     "    client_secret_file: prod.secret\n",
     "    client_secret_file: prod.secret\n    client_secret_env: RS_SCHEMA_TEST_SECRET\n",
     False),
    ("no secret source", "    client_secret_file: dev.secret\n", "", False),
    ("secret env name", "client_secret_env: RS_SCHEMA_TEST_SECRET",
     "client_secret_env: 1RS_SECRET", False),
    ("identity without tenant_id", "    tenant_id: 3f1c0c1e-5f61-4a8e-9c59-0a4b2b8c9d01\n", "",
     False),
    ("tenant_id not a GUID", "tenant_id: 3f1c0c1e-5f61-4a8e-9c59-0a4b2b8c9d01",
     "tenant_id: plant-a", False),
    ("genesys with tenant_id", "    client_id: prod-client\n",
     "    client_id: prod-client\n    tenant_id: 3f1c0c1e-5f61-4a8e-9c59-0a4b2b8c9d01\n", False),
    ("missing api", "    api: genesys\n    base_url: https://api.mypurecloud.com\n",
     "    base_url: https://api.mypurecloud.com\n", False),
    ("missing client_id", "    client_id: dev-client\n", "", False),
    ("missing job name", "  - name: prod-to-dev\n    source: prod\n", "  - source: prod\n", False),
    ("bad api", "api: identity", "api: azure", False),
    ("bad assignments", "assignments: mirror", "assignments: mirrored", False),
    ("bad match_by", "match_by: email", "match_by: mail", False),
    ("bad log_level", "log_level: info", "log_level: verbose", False),
    ("log_level debug", "log_level: info", "log_level: debug", True),
    ("yes is not a boolean", "prune: false", "prune: yes", False),
    ("max_connections 0", "  max_connections: 8", "  max_connections: 0", False),
    ("max_connections 1025", "  max_connections: 8", "  max_connections: 1025", False),
    ("max_connections 1024", "  max_connections: 8", "  max_connections: 1024", True),
    ("max_attempts 101", "max_attempts: 8", "max_attempts: 101", False),
    ("genesys page_size 501", "page_size: 200", "page_size: 501", False),
    ("genesys page_size 500", "page_size: 200", "page_size: 500", True),
    ("identity page_size 1001", "    client_secret_env: RS_SCHEMA_TEST_SECRET\n",
     "    client_secret_env: RS_SCHEMA_TEST_SECRET\n    page_size: 1001\n", False),
    ("identity page_size 1000", "    client_secret_env: RS_SCHEMA_TEST_SECRET\n",
     "    client_secret_env: RS_SCHEMA_TEST_SECRET\n    page_size: 1000\n", True),
    ("negative max_deletes", "max_deletes: 50", "max_deletes: -1", False),
    ("max_deletes 0", "max_deletes: 50", "max_deletes: 0", True),
    ("journal block", "log_level: info\n", "log_level: info\njournal: {max_size: 64MiB, keep: 4}\n",
     True),
    ("journal max_size in bytes", "log_level: info\n",
     "log_level: info\njournal: {max_size: 1048576}\n", True),
    ("journal max_size 0 (never rotate)", "log_level: info\n",
     "log_level: info\njournal: {max_size: 0, keep: 0}\n", True),
    ("journal max_size in MB", "log_level: info\n", "log_level: info\njournal: {max_size: 64MB}\n",
     False),
    ("journal max_size below 64KiB", "log_level: info\n",
     "log_level: info\njournal: {max_size: 1024}\n", False),
    ("journal max_size above 16GiB", "log_level: info\n",
     "log_level: info\njournal: {max_size: 17179869185}\n", False),
    ("journal keep 101", "log_level: info\n", "log_level: info\njournal: {keep: 101}\n", False),
    ("unknown journal key", "log_level: info\n", "log_level: info\njournal: {kept: 1}\n", False),
    ("rate per day", "rate_limit: 300/min", "rate_limit: 300/day", False),
    ("rate too high", "rate_limit: 300/min", "rate_limit: 1000001/s", False),
    ("rate maximum", "rate_limit: 300/min", "rate_limit: 1000000/h", True),
    ("rate 0", "rate_limit: 300/min", "rate_limit: 0", True),
    ("job name with a space", "name: prod-to-dev", "name: prod to dev", False),
    ("tenant name with a slash", "  dev:\n", "  dev/x:\n", False),
    ("plain http to a public host", "base_url: https://api.usw2.pure.cloud",
     "base_url: http://api.usw2.pure.cloud", False),
    ("plain http to loopback", "base_url: https://api.usw2.pure.cloud",
     "base_url: http://127.0.0.1:8080", True),
    ("relative state_dir", "state_dir: /var/lib/rolesyncd", "state_dir: var/lib/rolesyncd",
     False),
    ("include is not a list", 'include: ["*@example.com"]', 'include: "*@example.com"', False),
    ("empty rename target", "Supervisor: Team Lead", "Supervisor: ''", False),
]


class LoaderAndSchemaAgree(unittest.TestCase):
    """`rolesyncd --check` and the schema give the same verdict."""

    SECRETS = {"prod.secret": "schema-test-prod-value", "dev.secret": "schema-test-dev-value"}

    @classmethod
    def setUpClass(cls):
        cls.v = Validator(load_schema())
        cls.dir = tempfile.mkdtemp(prefix="rs-schema-")
        for name, value in cls.SECRETS.items():
            path = os.path.join(cls.dir, name)
            with open(path, "w", encoding="utf-8") as f:
                f.write(value + "\n")
            os.chmod(path, 0o600)
        cls.env = {k: v for k, v in os.environ.items()
                   if k not in ("CREDENTIALS_DIRECTORY", "STATE_DIRECTORY")}
        cls.env["RS_SCHEMA_TEST_SECRET"] = "schema-test-env-value"

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def check(self, text):
        path = os.path.join(self.dir, "rolesyncd.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        proc = subprocess.run([ROLESYNCD, "--check", "-c", path], env=self.env,
                              capture_output=True, text=True, timeout=30)
        self.assertIn(proc.returncode, (0, 1), proc.stderr)
        return proc.returncode == 0, proc.stderr

    def test_cases(self):
        for name, old, new, valid in CASES:
            with self.subTest(case=name):
                if old:
                    self.assertEqual(BASE.count(old), 1, "case %r: anchor text" % name)
                text = BASE.replace(old, new) if old else BASE
                loader_ok, stderr = self.check(text)
                schema_errs = self.v.errors(yaml_load(text))
                self.assertEqual(loader_ok, valid, "loader on %r: %s" % (name, stderr))
                self.assertEqual(not schema_errs, valid,
                                 "schema on %r: %s" % (name, schema_errs))
                for secret in list(self.SECRETS.values()) + [self.env["RS_SCHEMA_TEST_SECRET"]]:
                    self.assertNotIn(secret, stderr)

    def test_inline_secret_explained_by_both(self):
        text = BASE.replace("    client_secret_file: prod.secret\n",
                            "    client_secret: not-a-real-secret\n")
        ok, stderr = self.check(text)
        self.assertFalse(ok)
        self.assertIn("client_secret_file", stderr)
        self.assertIn("client_secret_env", stderr)
        errs = "\n".join(self.v.errors(yaml_load(text)))
        self.assertIn("client_secret_file or client_secret_env", errs)


if __name__ == "__main__":
    unittest.main(verbosity=2)
