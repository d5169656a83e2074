"""Hostile input (product.md section 5): bad API responses must be an error for that request —
named in the log with its path — never a crash, never a write, and never unbounded memory.

Two sources of hostility:

* Tenant STATE served by the real tenantsim (it echoes what its state holds): role names with
  quotes, '/', '..', '%', NUL (\\u0000), control characters and newlines, 100 KB names, non-ASCII,
  ids with '/' and '..', deep resourceConditionNode nesting, huge numbers. rolesyncd must not
  crash, must percent-encode ids in paths (no request may reach a route the plan does not use),
  must keep one log event per line, and must still apply the sane part of the plan.

* Whole response bodies, from FakePlatform below: a threaded http.server on loopback serving
  canned bodies for the token endpoint and each listing route of both providers — wrong types,
  missing fields, JSON null, deep nesting (10,000 levels), lying totals and page counts, raw NUL
  and invalid UTF-8, header injection in the token, and a 100 MB body (the 64 MiB cap). Each
  case runs `rolesyncd --once` with the fake as source (or as target) and a real tenantsim on
  the other side, and checks: exit code 1 (not a signal), the failing path in stderr, nothing
  written, and for the big bodies a bounded peak RSS (from wait4()).
"""

import base64
import copy
import json
import os
import re
import resource
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from rsconfig import IDENTITY_ADMIN, IDENTITY_MEMBER, tenant_for, user_roles, write_config
from simlib import Sim, binary, gen

def _asan_build():
    """AddressSanitizer keeps freed blocks in quarantine and adds redzones: a 64 MiB body
    buffer grown by doubling costs several times that under ASan."""
    try:
        out = subprocess.run(["ldd", binary("ROLESYNCD")], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, timeout=10).stdout
    except Exception:  # no binary configured, no ldd: assume a normal build
        return False
    return "libasan" in out


LOG_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z (ERROR|WARNING|INFO|DEBUG) ")
MiB = 1024 * 1024
RUN_TIMEOUT = 20
# Peak RSS allowed while a 100 MB body is refused: the 64 MiB cap (http.h) plus the process.
BIG_BODY_RSS_CAP = (448 if _asan_build() else 128) * MiB

# -- one small tenant, as the fake platform serves it ---------------------------------------------

G_EMP = "e0000000-0000-4000-8000-000000000001"
G_ROLE = "c0000000-0000-4000-8000-000000000001"
G_USER = "a0000000-0000-4000-8000-000000000001"
I_TENANT = "3f1c0c1e-5f61-4a8e-9c59-0a4b2b8c9d01"
I_MEMBER_TYPE = "7ad2b9ef-5386-4ead-ac9f-ad99c5c5b977"
I_MEMBER = "b0000000-0000-4000-8000-000000000001"
I_ROLE = "b0000000-0000-4000-8000-000000000002"
I_USER = "d0000000-0000-4000-8000-000000000001"
EMAIL = "u1@example.com"


def g_role_entities():
    return [{"id": G_EMP, "name": "Employee", "description": "", "default": True,
             "defaultRoleId": "employee", "permissions": [], "permissionPolicies": []},
            {"id": G_ROLE, "name": "Agents", "description": "", "default": False,
             "permissions": [], "permissionPolicies": []}]


def g_user_entities():
    return [{"id": G_USER, "name": "U1", "email": EMAIL, "username": EMAIL, "state": "active",
             "authorization": {"roles": [{"id": G_EMP, "name": "Employee"},
                                         {"id": G_ROLE, "name": "Agents"}]}}]


G_HOME = "d0000000-0000-4000-8000-00000000000h"


def g_division_entities():
    return [{"id": G_HOME, "name": "Home", "homeDivision": True}]


def g_subject_grants(role_id):
    """The direct holders of a role, as GET .../roles/{id}/subjectgrants lists them."""
    if role_id != G_ROLE:
        return []
    return [{"id": G_USER, "name": "U1", "type": "PC_USER",
             "divisions": [{"id": G_HOME, "name": "Home", "homeDivision": True}]}]


def g_page(entities, number=1, size=100, total=None, count=None):
    total = len(entities) if total is None else total
    return {"entities": entities, "pageSize": size, "pageNumber": number, "total": total,
            "pageCount": (max(1, -(-total // size)) if count is None else count)}


def i_roles():
    return [{"Id": I_MEMBER, "Name": "Tenant Member", "Description": None, "RoleScope": 1,
             "TenantId": I_TENANT, "CommunityId": None, "RoleTypeId": I_MEMBER_TYPE},
            {"Id": I_ROLE, "Name": "Agents", "Description": None, "RoleScope": 1,
             "TenantId": I_TENANT, "CommunityId": None, "RoleTypeId": None}]


def i_users():
    return [{"Id": I_USER, "GivenName": "U", "Surname": "One", "Email": EMAIL,
             "ContactEmail": EMAIL, "ContactGivenName": "U", "ContactSurname": "One",
             "ExternalUserId": "u1", "IdentityProviderId": None,
             "RoleIds": [I_MEMBER, I_ROLE]}]


class Reply:
    """A canned reply: status, headers, and a body (bytes, a JSON value, or a callable
    (query dict) -> bytes / JSON value). `stream` > 0 sends that many bytes of filler instead."""

    def __init__(self, body=b"", status=200, headers=None, stream=0, chunked=False):
        self.body, self.status, self.headers = body, status, dict(headers or {})
        self.stream, self.chunked = stream, chunked


class FakePlatform:
    """A threaded loopback HTTP server standing in for one tenant of `api`. `routes` maps a
    route key ("token", "roles", "users", "perms") to a Reply; anything not overridden gets a
    valid answer. Every request is recorded as (method, path)."""

    def __init__(self, api, **routes):
        self.api = api
        self.routes = routes
        self.requests = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _serve(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                with fake.lock:
                    fake.requests.append((self.command, self.path))
                url = urlsplit(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                key = fake.route(self.command, url.path)
                reply = fake.routes.get(key) or fake.default(key, q, url.path)
                try:
                    fake.send(self, reply, q)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _serve

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # the client hung up on a hostile body: expected

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # routes --------------------------------------------------------------------------------

    def route(self, method, path):
        if method == "POST" and path in ("/oauth/token", "/identity/connect/token"):
            return "token"
        if self.api == "genesys":
            table = {"/api/v2/authorization/roles": "roles", "/api/v2/users": "users",
                     "/api/v2/authorization/permissions": "perms",
                     "/api/v2/authorization/divisions": "divisions",
                     "/api/v2/users/query": "cursor"}
            if method == "GET" and re.fullmatch(r"/api/v2/authorization/roles/[^/]+/subjectgrants",
                                                path):
                return "grants"
        else:
            base = f"/api/v1/Tenants/{I_TENANT}"
            table = {base + "/Roles": "roles", base + "/Users": "users"}
        return table.get(path, "write" if method != "GET" else "other") \
            if method == "GET" or path not in table else "write"

    def default(self, key, q, path=""):
        if key == "token":
            return Reply({"access_token": "fake-token", "token_type": "bearer",
                          "expires_in": 3600})
        if self.api == "genesys":
            if key == "roles":
                return Reply(g_page(g_role_entities()))
            if key == "users":
                return Reply(g_page(g_user_entities(), size=int(q.get("pageSize", 500))))
            if key == "perms":
                return Reply(g_page([], size=25))
            if key == "divisions":
                return Reply(g_page(g_division_entities()))
            if key == "cursor":  # no inactive or deleted users
                return Reply({"entities": [], "results": 0})
            if key == "grants":
                return Reply(g_page(g_subject_grants(path.split("/")[-2])))
        else:
            if key == "roles":
                return Reply(i_roles(), headers={"Total-Count": "2"})
            if key == "users":
                return Reply(i_users(), headers={"Total-Count": "1"})
        return Reply({"message": "not here"}, status=404)

    def send(self, h, reply, q):
        body = reply.body(q) if callable(reply.body) else reply.body
        if not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
        h.send_response(reply.status)
        h.send_header("Content-Type", "application/json")
        h.send_header("ININ-Correlation-Id" if self.api == "genesys" else "Operation-Id",
                      "11111111-2222-4333-8444-555555555555")
        for k, v in reply.headers.items():
            h.send_header(k, v)
        if reply.stream:
            # A huge body: `{"entities":[{"id":"`, then filler, never finished.
            head = b'{"entities":[{"id":"' if self.api == "genesys" else b'[{"Id":"'
            if reply.chunked:
                h.send_header("Transfer-Encoding", "chunked")
            else:
                h.send_header("Content-Length", str(reply.stream))
            h.end_headers()
            chunk = b"A" * MiB
            sent = 0
            first = head + chunk[len(head):]
            while sent < reply.stream:
                part = first if sent == 0 else chunk
                part = part[:reply.stream - sent]
                if reply.chunked:
                    h.wfile.write(b"%x\r\n" % len(part) + part + b"\r\n")
                else:
                    h.wfile.write(part)
                sent += len(part)
            if reply.chunked:
                h.wfile.write(b"0\r\n\r\n")
            return
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    def writes(self):
        with self.lock:
            return [(m, p) for m, p in self.requests
                    if m not in ("GET", "HEAD") and not p.endswith("/token")]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        return False


def rss_now(pid):
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def run_limited(args, timeout=RUN_TIMEOUT, rss_kill=2048 * MiB):
    """Run rolesyncd; returns (exit code or -signal, stdout, stderr, peak RSS in bytes). A run
    that outlives `timeout`, or whose RSS passes `rss_kill` (so a runaway allocation cannot take
    the machine down), is killed and reported as exit None."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([binary("ROLESYNCD")] + args, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err)
        deadline = time.monotonic() + timeout
        rc = usage = None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                rc = os.waitstatus_to_exitcode(status)
                proc.returncode = rc
                break
            if time.monotonic() > deadline or rss_now(proc.pid) > rss_kill:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = -9
                rc = None
                break
            time.sleep(0.02)
        out.seek(0)
        err.seek(0)
        return (rc, out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"),
                usage.ru_maxrss * 1024)


class FakeSourceCase(unittest.TestCase):
    """The fake platform as one side, a real tenantsim holding the same user as the other."""

    api = "genesys"

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="hostile-")
        if self.api == "genesys":
            st = {"api": "genesys",
                  "roles": [dict(r, id=r["id"].replace("c000", "c111")) for r in g_role_entities()
                            if not r.get("defaultRoleId")] +
                  [r for r in g_role_entities() if r.get("defaultRoleId")],
                  "users": [{"id": "a1110000-0000-4000-8000-000000000001", "name": "U1",
                             "email": EMAIL, "username": EMAIL, "state": "active",
                             "roles": [G_EMP]}]}
        else:
            st = gen("identity", 1, 0, seed=5)
            st["users"][0]["Email"] = st["users"][0]["ContactEmail"] = EMAIL
            st["roles"].append({"Id": "b1110000-0000-4000-8000-000000000002", "Name": "Agents",
                                "Description": None, "RoleScope": 1,
                                "TenantId": st["tenant_id"], "CommunityId": None,
                                "RoleTypeId": None})
        self.sim = Sim(self.api, state=st).start()
        self.sim_state = st

    def tearDown(self):
        self.sim.__exit__(None, None, None)
        shutil.rmtree(self.dir, ignore_errors=True)

    def fake_tenant(self, fake):
        t = {"api": self.api, "base_url": fake.base_url, "client_id": "fake-client",
             "_secret": "fake-secret"}
        if self.api == "identity":
            t["tenant_id"] = I_TENANT
        return t

    def run_case(self, routes, fake_side="src", expect=1, path_hint=None, rss_cap=None,
                 timeout=RUN_TIMEOUT, rss_kill=2048 * MiB, tenant_extra=None):
        with FakePlatform(self.api, **routes) as fake:
            ft = dict(self.fake_tenant(fake), **(tenant_extra or {}))
            tenants = {"src": ft, "dst": tenant_for(self.sim)}
            if fake_side == "dst":
                tenants = {"src": tenant_for(self.sim), "dst": ft}
            cfg = write_config(self.dir, tenants,
                               [{"name": "j", "source": "src", "target": "dst"}],
                               log_level="info",
                               http={"rate_limit": "0", "timeout": "10s",
                                     "retry": {"max_attempts": 2, "initial_delay": "100ms",
                                               "max_delay": "200ms"}})
            self.sim.reset_stats()
            rc, out, err, rss = run_limited(["-c", cfg, "--once"], timeout, rss_kill)
            ctx = f"exit {rc}, rss {rss // MiB} MiB\nstderr:\n{err[-3000:]}"
            self.assertIsNotNone(rc, f"rolesyncd did not finish within {timeout}s: {ctx}")
            self.assertGreaterEqual(rc, 0, f"rolesyncd died of a signal: {ctx}")
            self.assertEqual(rc, expect, ctx)
            if expect == 1:
                self.assertEqual(self.sim.stats()["writes"], 0, "the tenantsim was written")
                self.assertEqual(fake.writes(), [], "the fake platform was written")
                if path_hint:
                    hints = path_hint if isinstance(path_hint, tuple) else (path_hint,)
                    self.assertTrue(any(h in err for h in hints), f"none of {hints}: {ctx}")
            for line in err.splitlines():
                self.assertRegex(line, LOG_RE, "a log line was split or injected")
            if rss_cap:
                self.assertLess(rss, rss_cap, f"peak RSS {rss // MiB} MiB: {ctx}")
            self.last_rss = rss
            return err


    def assert_echoed_credentials_are_masked(self):
        """Regression (src/http.c redact_reply, found by a black-box test): a server that echoes
        what it was sent -- the secret in a token error, the bearer token in an API error --
        put them into the log and status.json. They are masked; the rest of the message stays."""
        basic = base64.b64encode(b"fake-client:fake-secret").decode()
        said = {"error": "invalid_client", "error_description": "client fake-client with secret "
                f"fake-secret (Basic {basic}) is unknown", "message": "secret fake-secret",
                "Error": "secret fake-secret", "Reason": "secret fake-secret"}
        echo = "bad request, Authorization: Bearer fake-token"
        said_api = {"message": echo, "code": "bad.request", "status": 400, "Error": echo,
                    "Reason": echo, "OperationId": "11111111-2222-4333-8444-555555555555"}
        for routes in ({"token": Reply(said, status=401)}, {"roles": Reply(said_api, status=400)}):
            with self.subTest(route=list(routes)[0]):
                err = self.run_case(routes, expect=1)
                with open(os.path.join(self.dir, "state", "status.json"), encoding="utf-8") as f:
                    status = f.read()
                for leak in ("fake-secret", basic, "fake-token"):
                    self.assertNotIn(leak, err)
                    self.assertNotIn(leak, status)
                self.assertIn("*****", err)
                self.assertIn("*****", status)


def big_nest(levels):
    return b"[" * levels + b"]" * levels


class GenesysBodies(FakeSourceCase):
    api = "genesys"
    ROLES = "/api/v2/authorization/roles"
    USERS = "/api/v2/users"

    def test_baseline_fake_is_valid_and_writes(self):
        # The control case: the untouched fake is a valid tenant and the run assigns "Agents".
        self.run_case({}, expect=0)
        self.assertEqual(user_roles(self.sim.state())[EMAIL], frozenset({"employee", "agents"}))

    def test_listing_bodies(self):
        ents = g_role_entities()
        users = g_user_entities()
        cases = {
            "roles: not JSON": ("roles", Reply(b"<html>hello</html>")),
            "roles: JSON null": ("roles", Reply(b"null")),
            "roles: array, not an envelope": ("roles", Reply(b"[]")),
            "roles: empty body": ("roles", Reply(b"")),
            "roles: entities is an object": ("roles", Reply(dict(g_page(ents), entities={}))),
            "roles: entities missing": ("roles", Reply({"pageSize": 100, "pageNumber": 1,
                                                        "total": 2, "pageCount": 1})),
            "roles: id is a number": ("roles", Reply(g_page([dict(ents[1], id=5), ents[0]]))),
            "roles: name missing": ("roles", Reply(g_page(
                [{k: v for k, v in ents[1].items() if k != "name"}, ents[0]]))),
            "roles: name is a list": ("roles", Reply(g_page([dict(ents[1], name=["x"]),
                                                             ents[0]]))),
            "roles: total is a string": ("roles", Reply(dict(g_page(ents), total="2"))),
            "roles: total 1e400": ("roles", Reply(
                json.dumps(g_page(ents)).replace('"total": 2', '"total": 1e400').encode())),
            "roles: total 2^70": ("roles", Reply(
                json.dumps(g_page(ents)).replace('"total": 2', '"total": 1180591620717411303424')
                .encode())),
            "roles: total larger than the entities": ("roles", Reply(g_page(ents, total=2,
                                                                            count=1) |
                                                                     {"entities": ents[:1]})),
            "roles: deep nesting 10000": ("roles", Reply(b'{"entities":' + big_nest(10000) +
                                                         b',"total":0}')),
            "roles: deep nesting in a policy": ("roles", Reply(
                b'{"entities":[{"id":"' + G_ROLE.encode() + b'","name":"Deep",'
                b'"permissionPolicies":[{"domain":"d","entityName":"e","actionSet":["v"],'
                b'"resourceConditionNode":' + b'{"terms":[' * 3000 + b']}' * 3000 +
                b'}]}],"pageSize":100,"pageNumber":1,"total":1,"pageCount":1}')),
            "roles: raw NUL in a string": ("roles", Reply(
                json.dumps(g_page(ents)).replace("Agents", "Ag\x00ents").encode())),
            "roles: escaped NUL in an id": ("roles", Reply(g_page(
                [dict(ents[1], id="c0000000\u0000../x"), ents[0]]))),
            "roles: invalid UTF-8 (\\xff)": ("roles", Reply(
                json.dumps(g_page(ents)).encode().replace(b"Agents", b"Ag\xff\xfeents"))),
            "roles: duplicate ids": ("roles", Reply(g_page([ents[1], dict(ents[1], name="B"),
                                                            ents[0]]))),
            "roles: trailing garbage": ("roles", Reply(json.dumps(g_page(ents)).encode() +
                                                       b"}{")),
            "users: not JSON": ("users", Reply(b"\x00\x01\x02")),
            "users: entities is a string": ("users", Reply(dict(g_page(users), entities="x"))),
            "users: state unknown": ("users", Reply(g_page([dict(users[0], state="zombie")]))),
            # version 2 reads no authorization expansion (product.md 4a): the grants come
            # from subject grants, which get the same treatment
            "grants: not JSON": ("grants", Reply(b"<html>")),
            "grants: type missing": ("grants", Reply(g_page(
                [{k: v for k, v in g_subject_grants(G_ROLE)[0].items() if k != "type"}]))),
            "grants: divisions is a string": ("grants", Reply(g_page(
                [dict(g_subject_grants(G_ROLE)[0], divisions="home")]))),
            "grants: a division without id": ("grants", Reply(g_page(
                [dict(g_subject_grants(G_ROLE)[0], divisions=[{"name": "Home"}])]))),
            "grants: short page (total says 3)": ("grants", Reply(g_page(
                g_subject_grants(G_ROLE), total=3, count=1))),
            "divisions: two home divisions": ("divisions", Reply(g_page(
                g_division_entities() + [{"id": "d2", "name": "Other", "homeDivision": True}]))),
            "divisions: name missing": ("divisions", Reply(g_page([{"id": G_HOME}]))),
            "cursor: entities missing": ("cursor", Reply({"results": 0})),
            "cursor: results disagree": ("cursor", Reply({"entities": [], "results": 4})),
            "cursor: the same cursor again": ("cursor", Reply(
                lambda q: {"entities": [dict(g_user_entities()[0], id=q.get("cursor", "x"),
                                             state="inactive", email="x@example.com")],
                           "results": 1, "cursor": "loop"})),
            "users: email is an object": ("users", Reply(g_page([dict(users[0],
                                                                      email={"a": 1})]))),
            "users: id missing": ("users", Reply(g_page(
                [{k: v for k, v in users[0].items() if k != "id"}]))),
            "users: short page (total says 3)": ("users", Reply(g_page(users, total=3,
                                                                       count=1))),
            "users: 404": ("users", Reply({"message": "gone", "code": "not.found"},
                                          status=404)),
        }
        for name, (key, reply) in cases.items():
            with self.subTest(case=name):
                # whole-listing checks (totals, duplicates across pages) name the listing
                hint = {"roles": (self.ROLES, "roles listing", "role listing"),
                        "grants": ("/subjectgrants", "subject grants"),
                        "divisions": ("/api/v2/authorization/divisions", "divisions"),
                        "cursor": ("/api/v2/users/query", "users listing")}.get(
                            key, (self.USERS, "users listing", "user listing"))
                self.run_case({key: reply}, path_hint=hint)
                type(self).tried = getattr(type(self), "tried", 0) + 1
        for name in ("roles: not JSON", "users: 404"):
            with self.subTest(case="as target: " + name):
                key, reply = cases[name]
                self.run_case({key: reply}, fake_side="dst",
                              path_hint=self.ROLES if key == "roles" else self.USERS)

    # Regression (fixed in src/providers/genesys.c account_page and the page window): a first
    # page claiming pageCount 10,000,000 with total 0 was obeyed, queueing millions of page
    # requests for a listing the server itself says is empty.
    def test_page_count_bomb(self):
        def page(q):
            return g_page([], number=int(q.get("pageNumber", 1)), size=500, total=0,
                          count=10000000)
        self.run_case({"users": Reply(page)}, path_hint=self.USERS, timeout=10,
                      rss_cap=256 * MiB, rss_kill=512 * MiB)

    # Regression (src/providers/provider.c prov_page_count_ok): a self-consistent envelope
    # claiming 3,000,000 users one per page, whose pages after the first came back empty, was
    # paged through at full speed (a black-box tester counted 220 empty pages before killing
    # it). The first short page ends the read, and the error names it.
    def test_lying_total_stops_at_the_first_short_page(self):
        def page(q):
            n = int(q.get("pageNumber", 1))
            return g_page(g_user_entities() if n == 1 else [], number=n, size=1, total=3000000)
        err = self.run_case({"users": Reply(page)}, timeout=10, path_hint="GET " + self.USERS)
        # pages go out a window at a time: whichever empty one answers first ends the read
        self.assertRegex(err, r'path="/api/v2/users\?[^"]*pageNumber=(\d+)[^"]*" status=200 .*'
                              r'users page \1 holds 0 entries')
        self.assertRegex(err, r"requests=\d{1,2} ")

    # Regression (src/providers/genesys_json.c, bounded recording): a 32 MB users page of
    # scalar entities took 2.7 GB while the scanned parser recorded every element before the
    # list-length check; it is refused with the real count, in bounded memory.
    def test_page_of_scalars_is_refused_in_bounded_memory(self):
        body = b'{"pageSize":1,"pageNumber":1,"total":1,"pageCount":1,"entities":[' + \
            b"0," * (16 << 20) + b"0]}"
        err = self.run_case({"users": Reply(body)}, path_hint="GET " + self.USERS, timeout=30,
                            rss_cap=BIG_BODY_RSS_CAP, rss_kill=1024 * MiB)
        self.assertIn("array of 16777217 elements exceeds the limit", err)

    # Regression (fixed in src/providers/genesys.c account_page): a wrong pageNumber error must
    # name the request like every other read failure (product.md section 5).
    def test_wrong_page_number_names_the_request(self):
        self.run_case({"roles": Reply(g_page(g_role_entities(), number=7))},
                      path_hint="GET " + self.ROLES)

    def test_token_endpoint(self):
        cases = {
            "not JSON": Reply(b"<html>login</html>"),
            "no access_token": Reply({"token_type": "bearer", "expires_in": 3600}),
            "access_token is a number": Reply({"access_token": 42, "expires_in": 3600}),
            "expires_in is a string": Reply({"access_token": "t", "expires_in": "soon"}),
            "expires_in negative": Reply({"access_token": "t", "expires_in": -5}),
            "header injection in the token": Reply({"access_token": "t\r\nX-Evil: 1",
                                                    "expires_in": 3600}),
            "401 invalid_client": Reply({"error": "invalid_client"}, status=401),
            "500 forever": Reply({"message": "down"}, status=500),
            "deep nesting": Reply(big_nest(10000)),
        }
        for name, reply in cases.items():
            with self.subTest(case=name):
                self.run_case({"token": reply}, path_hint="/oauth/token")
                type(self).tried = getattr(type(self), "tried", 0) + 1

    def test_echoed_credentials_are_masked(self):
        self.assert_echoed_credentials_are_masked()

    def test_100_mb_bodies_are_capped(self):
        for name, routes in {
                "roles 100 MB with Content-Length": {"roles": Reply(stream=100 * MiB)},
                "users 100 MB chunked": {"users": Reply(stream=100 * MiB, chunked=True)},
                "token 100 MB": {"token": Reply(stream=100 * MiB)}}.items():
            with self.subTest(case=name):
                key = next(iter(routes))
                hint = {"roles": self.ROLES, "users": self.USERS, "token": "/oauth/token"}[key]
                self.run_case(routes, path_hint=hint, rss_cap=BIG_BODY_RSS_CAP)
                print(f"\n  {name}: peak RSS {self.last_rss / MiB:.0f} MiB", flush=True)


class InvalidUtf8(FakeSourceCase):
    """RFC 8259 JSON text is UTF-8: overlong forms (\\xc0\\xaf is an overlong '/') and UTF-16
    surrogates (\\xed\\xa0\\x80) are not UTF-8 and must be refused like \\xff is."""

    # Regression (fixed by util_utf8_valid in the JSON boundary): json-c's UTF-8 check only
    # validates byte structure, so overlong encodings and encoded surrogates in names used to
    # reach logs, plans and request bodies.
    def test_overlong_and_surrogate_utf8_are_refused(self):
        for api, bad in (("genesys", b"\xc0\xafAgents"), ("genesys", b"Ag\xed\xa0\x80ents"),
                         ("identity", b"\xc0\xafAgents")):
            self.api = api
            self.tearDown()
            self.setUp()
            if api == "genesys":
                body = json.dumps(g_page(g_role_entities())).encode().replace(b"Agents", bad)
                routes = {"roles": Reply(body)}
                hint = GenesysBodies.ROLES
            else:
                body = json.dumps(i_roles()).encode().replace(b"Agents", bad)
                routes = {"roles": Reply(body, headers={"Total-Count": "2"})}
                hint = f"/api/v1/Tenants/{I_TENANT}/Roles"
            self.run_case(routes, path_hint=hint)


class IdentityBodies(FakeSourceCase):
    api = "identity"
    BASE = f"/api/v1/Tenants/{I_TENANT}"

    def test_baseline_fake_is_valid_and_writes(self):
        self.run_case({}, expect=0)
        self.assertIn("agents", user_roles(self.sim.state())[EMAIL])

    def test_listing_bodies(self):
        roles, users = i_roles(), i_users()
        tc = {"Total-Count": "2"}
        cases = {
            "Roles: not JSON": ("roles", Reply(b"{{{", headers=tc)),
            "Roles: an object": ("roles", Reply({"Roles": roles}, headers=tc)),
            "Roles: JSON null": ("roles", Reply(b"null", headers=tc)),
            "Roles: Id is a number": ("roles", Reply([dict(roles[1], Id=1), roles[0]],
                                                     headers=tc)),
            "Roles: Name missing": ("roles", Reply([{k: v for k, v in roles[1].items()
                                                     if k != "Name"}, roles[0]], headers=tc)),
            "Roles: RoleScope huge": ("roles", Reply(
                json.dumps(roles).replace('"RoleScope": 1', '"RoleScope": 1e308', 1).encode(),
                headers=tc)),
            "Roles: Total-Count not a number": ("roles", Reply(roles,
                                                               headers={"Total-Count": "two"})),
            "Roles: Total-Count 10^20": ("roles", Reply(roles, headers={
                "Total-Count": "100000000000000000000"})),
            "Roles: Total-Count larger than served": ("roles", Reply(roles, headers={
                "Total-Count": "5"})),
            "Roles: deep nesting 10000": ("roles", Reply(big_nest(10000), headers=tc)),
            "Roles: invalid UTF-8 (\\xff)": ("roles", Reply(json.dumps(roles).encode().replace(
                b"Agents", b"Ag\xff\xfeents"), headers=tc)),
            "Roles: escaped NUL in a Name": ("roles", Reply([dict(roles[1], Name="Ag\u0000ents"),
                                                             roles[0]], headers=tc)),
            "Users: RoleIds is a string": ("users", Reply([dict(users[0], RoleIds="x")],
                                                          headers={"Total-Count": "1"})),
            "Users: Id missing": ("users", Reply([{k: v for k, v in users[0].items()
                                                   if k != "Id"}],
                                                 headers={"Total-Count": "1"})),
            "Users: empty array but Total-Count 1": ("users", Reply(
                [], headers={"Total-Count": "1"})),
            "Users: 500 forever": ("users", Reply({"Error": "boom", "Reason": "x"},
                                                  status=500)),
        }
        for name, (key, reply) in cases.items():
            with self.subTest(case=name):
                hint = ((self.BASE + "/Roles", "roles listing") if key == "roles" else
                        (self.BASE + "/Users", "users listing"))
                self.run_case({key: reply}, path_hint=hint)
                type(self).tried = getattr(type(self), "tried", 0) + 1

    # Regression (fixed in src/providers/identity.c account_page and the page window): a
    # Total-Count of 999,999,999 on an empty first page used to queue a million page requests
    # before the first one answered.
    def test_total_count_bomb(self):
        self.run_case({"users": Reply([], headers={"Total-Count": "999999999"})},
                      path_hint=self.BASE + "/Users", timeout=10, rss_cap=256 * MiB,
                      rss_kill=512 * MiB)

    # Regression (src/providers/identity.c account_page): with Total-Count 1 and a full first
    # page (page size 1) the read ended there, so the listing's second user was never seen and
    # the job said "in sync" (identity.md: do not depend on Total-Count; page until a short
    # page). A count that is a multiple of the page size is now confirmed by one more page.
    def test_total_count_lower_than_the_listing_is_caught(self):
        u2 = dict(i_users()[0], Id="d0000000-0000-4000-8000-000000000002",
                  Email="u2@example.com", ContactEmail="u2@example.com", ExternalUserId="u2")
        listing = {"users": i_users() + [u2], "roles": i_roles()}

        def slice_of(key):
            return lambda q: listing[key][int(q.get("skip", 0)):int(q.get("skip", 0)) + 1]
        err = self.run_case({"users": Reply(slice_of("users"), headers={"Total-Count": "1"}),
                             "roles": Reply(slice_of("roles"), headers={"Total-Count": "2"})},
                            tenant_extra={"page_size": 1}, path_hint=self.BASE + "/Users")
        self.assertIn("Users?skip=1&count=1", err)
        self.assertIn("users page 2 holds 1 entries", err)

    # The same listing told truthfully (Total-Count 2) reads every page, the empty one after
    # the last full page included, and syncs.
    def test_full_last_page_is_confirmed_by_an_empty_one(self):
        u2 = dict(i_users()[0], Id="d0000000-0000-4000-8000-000000000002",
                  Email="u2@example.com", ContactEmail="u2@example.com", ExternalUserId="u2")
        listing = {"users": i_users() + [u2], "roles": i_roles()}

        def slice_of(key):
            return lambda q: listing[key][int(q.get("skip", 0)):int(q.get("skip", 0)) + 1]
        self.run_case({"users": Reply(slice_of("users"), headers={"Total-Count": "2"}),
                       "roles": Reply(slice_of("roles"), headers={"Total-Count": "2"})},
                      tenant_extra={"page_size": 1}, expect=0)

    # Regression (src/providers/identity_json.c, bounded recording): as for genesys, a 32 MB
    # users page of scalars (3.2 GB before) is refused in bounded memory.
    def test_page_of_scalars_is_refused_in_bounded_memory(self):
        body = b"[" + b"0," * (16 << 20) + b"0]"
        err = self.run_case({"users": Reply(body, headers={"Total-Count": "1"})},
                            path_hint=self.BASE + "/Users", timeout=30,
                            rss_cap=BIG_BODY_RSS_CAP, rss_kill=1024 * MiB)
        self.assertIn("array of 16777217 elements exceeds the limit", err)

    def test_echoed_credentials_are_masked(self):
        self.assert_echoed_credentials_are_masked()

    def test_token_and_big_bodies(self):
        for name, routes, hint in (
                ("token not JSON", {"token": Reply(b"nope")}, "/identity/connect/token"),
                ("token 400 invalid_client", {"token": Reply({"error": "invalid_client"},
                                                             status=400)},
                 "/identity/connect/token"),
                ("Users 100 MB", {"users": Reply(stream=100 * MiB, headers={
                    "Total-Count": "1"})}, self.BASE + "/Users")):
            with self.subTest(case=name):
                self.run_case(routes, path_hint=hint,
                              rss_cap=BIG_BODY_RSS_CAP if "MB" in name else None)
                type(self).tried = getattr(type(self), "tried", 0) + 1


# -- hostile tenant state, served by the real simulator -------------------------------------------

# Printable but hostile names the daemon must carry through: JSON escaping, percent-encoding
# of paths, log quoting, format strings.
HOSTILE_NAMES = [
    'Quote "role" \'single\'', "Slash/Role", "../..", "..", "100% %s %n %x", "Back\\slash",
    "Unicode Ünïcødé 角色 🚀", "?query=1&x=2#frag", " leading and trailing ", "A" * 200,
    '{"json": [1, 2]}', "<script>alert(1)</script>", "%2e%2e%2f", "${HOME} $(id) `id`",
]
# What the providers refuse (fail closed: the whole read fails with the path named, nothing is
# written, because a listing with an entity left out would look like deletions): control
# characters (C0, DEL, NUL as \u0000, CR/LF log injection), names above 256 bytes (a 100 KB
# name), ids outside [A-Za-z0-9._~-] or holding '..'.
REFUSED_NAMES = ["Ctl \x01\x07\x1b[31mred", "Line\nBreak\r\nINFO job=x fake=1", "Tab\there",
                 "Nul\u0000byte", "Del\x7f", "B" * 100000, "C" * 257]
REFUSED_IDS = ["ctl\x01id", "tab\tid", "a" * 129]
# Printable ids are percent-encoded into paths (product.md section 5); tenantsim keeps an encoded
# '/' inside its path segment (sim.h), so ids holding '/' are served too.
ENCODED_IDS = ["a/b", "../../users", "..", "%2e%2e", "%2F", "x?y=1#f", "id with space",
               "quote\"id", "user@odd", "\u00fc-id", "a..b", "semi;colon&amp"]


class HostileState(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="hostile-state-")
        self.sims = []

    def tearDown(self):
        for s in self.sims:
            s.__exit__(None, None, None)
        shutil.rmtree(self.dir, ignore_errors=True)

    def sim(self, api, state):
        s = Sim(api, state=state).start()
        self.sims.append(s)
        return s

    def once(self, src, dst, **job):
        j = {"name": "j", "source": "src", "target": "dst", "max_deletes": 100000,
             "roles": {"definitions": True}}
        j.update(job)
        cfg = write_config(self.dir, {"src": tenant_for(src), "dst": tenant_for(dst)}, [j],
                           log_level="info",
                           http={"rate_limit": "0", "timeout": "10s",
                                 "retry": {"max_attempts": 2, "initial_delay": "100ms",
                                           "max_delay": "200ms"}})
        rc, out, err, rss = run_limited(["-c", cfg, "--once"])
        ctx = f"exit {rc}\nstderr:\n{err[-4000:]}"
        self.assertIsNotNone(rc, "rolesyncd hung: " + ctx)
        self.assertGreaterEqual(rc, 0, "rolesyncd died of a signal: " + ctx)
        for line in err.splitlines():
            self.assertRegex(line, LOG_RE, "a log line was split or injected: " + ctx[-1500:])
        for ch in ("\x1b", "\x00", "\x07", "\x01", "\x7f"):
            self.assertNotIn(ch, err, "a raw control character reached the log")
        return rc, err

    @staticmethod
    def role(api, state, rid, name):
        if api == "genesys":
            base = {"description": "hostile", "default": False, "permissions": [],
                    "permissionPolicies": [{"domain": "routing", "entityName": "queue",
                                            "actionSet": ["view"], "allowConditions": False}]}
            return dict(copy.deepcopy(base), id=rid, name=name)
        return {"Id": rid, "Name": name, "Description": "d " + name[:40], "RoleScope": 1,
                "TenantId": state["tenant_id"], "CommunityId": None, "RoleTypeId": None}

    @staticmethod
    def grant(api, user, rid):
        (user["roles"] if api == "genesys" else user["RoleIds"]).append(rid)

    def fixture(self, api, seed):
        s = gen(api, 30, 3, seed=seed)
        t = gen(api, same_as=s, seed=seed + 1, no_custom_roles=True)
        return s, t

    def carried_through(self, api):
        """Stage 1: printable hostile names (and a deep, huge-number condition tree) are
        mirrored exactly: created on the target and granted to the right users."""
        s, t = self.fixture(api, 61 if api == "genesys" else 63)
        limit = 200 if api == "genesys" else 128  # the platforms' longest role name
        names = [n[:limit] for n in HOSTILE_NAMES]
        for i, name in enumerate(names):
            rid = f"f{i:07d}-0000-4000-8000-000000000000"
            s["roles"].append(self.role(api, s, rid, name))
            self.grant(api, s["users"][i], rid)
        if api == "genesys":
            node = {"variableName": "x", "operator": "EQ",
                    "operands": [{"type": "SCALAR", "value": 1e308}]}
            for _ in range(12):  # the simulator's own json-c parser stops at depth 32
                node = {"conjunction": "AND", "terms": [node]}
            deep = self.role(api, s, "f9999999-0000-4000-8000-000000000000", "Deep Policy")
            deep["permissionPolicies"] = [{"domain": "routing", "entityName": "queue",
                                           "actionSet": ["view"], "allowConditions": True,
                                           "resourceConditionNode": node,
                                           "namedResources": [str(10 ** 30)]}]
            s["roles"].append(deep)
        src, dst = self.sim(api, s), self.sim(api, t)
        rc, err = self.once(src, dst)
        self.assertEqual(rc, 0, "\n".join(x for x in err.splitlines()
                                          if " INFO " not in x)[-3000:])
        key = "name" if api == "genesys" else "Name"
        have_names = {r[key] for r in dst.state()["roles"]}
        for name in names:
            self.assertIn(name, have_names, err[-2000:])
        skip = ("employee", "admin") if api == "genesys" else (IDENTITY_MEMBER, IDENTITY_ADMIN)
        want, have = user_roles(src.state(), skip), user_roles(dst.state(), skip)
        for email, roles in want.items():
            self.assertEqual(have.get(email), roles, email)
        self.assertEqual(src.stats()["writes"], 0, "the source was written to")
        dst.reset_stats()
        rc, err = self.once(src, dst)
        self.assertEqual(rc, 0, err[-3000:])
        self.assertEqual(dst.stats()["writes"], 0, "hostile names do not converge")
        return len(HOSTILE_NAMES) + (1 if api == "genesys" else 0)

    def refused(self, api):
        """Stage 2: each refused name or id, alone in an otherwise sane tenant, on the source
        and then on the target: exit 1, the path named, nothing written."""
        n = 0
        cases = [("name", x) for x in REFUSED_NAMES] + [("id", x) for x in REFUSED_IDS]
        s0, t0 = self.fixture(api, 71 if api == "genesys" else 73)
        src, dst = self.sim(api, s0), self.sim(api, t0)
        hint = (("/api/v2/authorization/roles", "/api/v2/users?") if api == "genesys" else
                ("/Roles?skip=", "/Users?skip="))
        for what, value in cases:
            if api == "identity" and "\u0000" in value:
                continue  # tenantsim (C strings) cuts identity names at NUL: see IdentityBodies
            for side in ("source", "target"):
                with self.subTest(api=api, what=what, value=value[:40], side=side):
                    s, t = copy.deepcopy(s0), copy.deepcopy(t0)
                    st = s if side == "source" else t
                    rid = value if what == "id" else "f0000000-0000-4000-8000-00000000c0c0"
                    name = value if what == "name" else "Odd Id Role"
                    st["roles"].append(self.role(api, st, rid, name))
                    self.grant(api, st["users"][0], rid)
                    try:
                        src.put_state(s)
                        dst.put_state(t)
                    except Exception:  # the simulator itself refuses it: nothing to test
                        continue
                    dst.reset_stats()
                    src.reset_stats()
                    rc, err = self.once(src, dst)
                    self.assertEqual(rc, 1, err[-2000:])
                    self.assertIn(f"side={side}", err)
                    self.assertTrue(any(h in err for h in hint), err[-2000:])
                    self.assertEqual(dst.stats()["writes"] + src.stats()["writes"], 0)
                    n += 1
        return n

    def test_genesys_hostile_names_carried_through(self):
        n = self.carried_through("genesys")
        print(f"\n  genesys: {n} hostile roles mirrored", flush=True)

    def test_identity_hostile_names_carried_through(self):
        n = self.carried_through("identity")
        print(f"\n  identity: {n} hostile roles mirrored", flush=True)

    def test_genesys_refused_names_and_ids(self):
        n = self.refused("genesys")
        print(f"\n  genesys: {n} refused-input runs failed cleanly", flush=True)

    def test_identity_refused_names_and_ids(self):
        n = self.refused("identity")
        print(f"\n  identity: {n} refused-input runs failed cleanly", flush=True)

    def odd_ids(self, api):
        """Role and user ids with characters that must be percent-encoded, on the target (the
        side whose ids go into write paths): each odd role is granted to one user, each odd
        user gets a role. The run converges, the writes land on those ids, a second run is
        idle (found by a black-box test: ids outside [A-Za-z0-9._~-] failed the whole job)."""
        s, t = self.fixture(api, 77 if api == "genesys" else 79)
        key, name_key = ("id", "name") if api == "genesys" else ("Id", "Name")
        ukey = "id" if api == "genesys" else "Id"
        for i, odd in enumerate(ENCODED_IDS):
            name = f"Odd Id Role {i}"
            s["roles"].append(self.role(api, s, f"f{i:07d}-0000-4000-8000-0000000000aa", name))
            t["roles"].append(self.role(api, t, odd, name))
            self.grant(api, s["users"][i], s["roles"][-1][key])
            t["users"][10 + i][ukey] = odd  # a target user with an odd id ...
            self.grant(api, s["users"][10 + i], s["roles"][-1][key])  # ... gets a role
        src, dst = self.sim(api, s), self.sim(api, t)
        rc, err = self.once(src, dst, roles={"definitions": False})
        self.assertEqual(rc, 0, "\n".join(x for x in err.splitlines() if " INFO " not in x))
        dst_roles = {r[key]: r[name_key] for r in dst.state()["roles"]}
        skip = ("employee", "admin") if api == "genesys" else (IDENTITY_MEMBER, IDENTITY_ADMIN)
        want, have = user_roles(src.state(), skip), user_roles(dst.state(), skip)
        granted = 0
        for email, roles in want.items():
            odd_roles = {r for r in roles if r.startswith("odd id role")}
            granted += len(odd_roles)
            self.assertEqual({r for r in have.get(email, ()) if r.startswith("odd id role")},
                             odd_roles, email)
        self.assertEqual(granted, 2 * len(ENCODED_IDS))
        for odd in ENCODED_IDS:
            self.assertIn(odd, dst_roles)  # still there, under the same id
        dst.reset_stats()
        rc, err = self.once(src, dst, roles={"definitions": False})
        self.assertEqual(rc, 0, err[-3000:])
        self.assertEqual(dst.stats()["writes"], 0)

    def test_genesys_odd_ids_are_percent_encoded(self):
        self.odd_ids("genesys")

    def test_identity_odd_ids_are_percent_encoded(self):
        self.odd_ids("identity")

    def test_identity_user_ids_with_slash(self):
        # A user id with '/' or '..' on either side reaches a URL path only percent-encoded:
        # the write lands on that user (the run converges), never on another route.
        s, t = self.fixture("identity", 75)
        src, dst = self.sim("identity", s), self.sim("identity", t)
        skip = (IDENTITY_MEMBER, IDENTITY_ADMIN)
        for side, uid in (("source", "../../Roles"), ("target", "a/../b")):
            with self.subTest(side=side):
                s2, t2 = copy.deepcopy(s), copy.deepcopy(t)
                (s2 if side == "source" else t2)["users"][0]["Id"] = uid
                src.put_state(s2)
                dst.put_state(t2)
                dst.reset_stats()
                rc, err = self.once(src, dst)
                self.assertEqual(rc, 0, err[-2000:])
                want, have = user_roles(src.state(), skip), user_roles(dst.state(), skip)
                for email, roles in want.items():
                    self.assertEqual(have.get(email), roles, email)
                self.assertEqual(set(dst.stats()["by_route"]) - {
                    "POST /identity/connect/token", "GET /api/v1/Tenants/{tenantId}/Roles",
                    "GET /api/v1/Tenants/{tenantId}/Users", "POST /api/v1/Tenants/{tenantId}/Roles",
                    "PUT /api/v1/Tenants/{tenantId}/Users/{id}/Roles"}, set())

if __name__ == "__main__":
    unittest.main(verbosity=2)
