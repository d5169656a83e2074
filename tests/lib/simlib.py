"""simlib — the helpers every process-level test uses (Python 3 standard library only).

Simulated tenants:
    with Sim("genesys", state=gen("genesys", 50, 5)) as sim:
        status, headers, body = sim.request("GET", "/api/v2/users?pageSize=500")
`Sim` starts $TENANTSIM on 127.0.0.1 with a free port (read from --port-file), fetches a token
through the simulator's real token endpoint for the configured client, and stops the process on
exit; its stderr goes to a file that is printed when anything fails. A simulator that exits
badly (crash, sanitizer report) fails the test that used it.

Fixtures: `gen(api, users, roles, seed=1, same_as=None, **flags)` runs `$TENANTSIM gen`.
Grants (tests/sim/README.md): `direct_grants(state, subject)` reads a user's, group's or
client's direct grants out of a state as a set of (role id, division id) pairs.

The daemon: `write_secret`, `run_rolesyncd` (one-shot commands) and `Daemon` (the long-running
process in the foreground, with signals and its log).

Binaries come from the environment ctest sets: TENANTSIM and ROLESYNCD.
"""

import base64
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

__all__ = ["Sim", "SimError", "gen", "gen_bytes", "direct_grants", "home_division",
           "write_secret", "run_rolesyncd", "Daemon", "binary"]

DEFAULT_CLIENT = ("sim-client", "sim-secret")


class SimError(RuntimeError):
    """The simulator could not be started or a control call failed."""


def binary(var):
    """Path of the executable named by environment variable `var` (TENANTSIM, ROLESYNCD)."""
    path = os.environ.get(var)
    if not path:
        raise SimError(f"${var} is not set (run the test through ctest, or export it)")
    if not os.access(path, os.X_OK):
        raise SimError(f"${var}={path} is not an executable")
    return path


def _tail(path, limit=8000):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    return text if len(text) <= limit else "...\n" + text[-limit:]


# ------------------------------------------------------------------------------------------
# Fixtures

def _gen_args(api, users, roles, seed, same_as, flags, tmpdir):
    args = [binary("TENANTSIM"), "gen"]
    if api:
        args += ["--api", api]
    if users is not None:
        args += ["--users", str(users)]
    if roles is not None:
        args += ["--roles", str(roles)]
    if seed is not None:
        args += ["--seed", str(seed)]
    if same_as is not None:
        if isinstance(same_as, (dict, list)):
            path = os.path.join(tmpdir, "same-as.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump(same_as, f)
            same_as = path
        args += ["--same-as", str(same_as)]
    for key, value in flags.items():
        opt = "--" + key.replace("_", "-")
        if value is True:
            args.append(opt)
        elif value is False or value is None:
            continue
        elif isinstance(value, (list, tuple)):  # a repeatable option
            for v in value:
                args += [opt, str(v)]
        else:
            args += [opt, str(value)]
    return args


def gen_bytes(api, users=None, roles=None, seed=1, same_as=None, **flags):
    """Raw output of `$TENANTSIM gen`. `same_as` is a state dict or a path; other flags map to
    options: drift=1 -> --drift 1, edit_roles=3 -> --edit-roles 3, no_custom_roles=True,
    tenant_id="...", divisions=6, groups=20, conditions=3, inactive_share=15, and lists repeat an
    option: drop_division=["EMEA", "APAC"]. Raises SimError with the generator's stderr on
    failure."""
    tmpdir = tempfile.mkdtemp(prefix="simgen-")
    try:
        args = _gen_args(api, users, roles, seed, same_as, flags, tmpdir)
        proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        if proc.returncode != 0:
            raise SimError(f"{' '.join(args[1:])} exited {proc.returncode}: "
                           f"{proc.stderr.decode('utf-8', 'replace')}")
        return proc.stdout
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def gen(api, users=None, roles=None, seed=1, same_as=None, **flags):
    """A generated tenant state as a dict (see gen_bytes for the arguments)."""
    return json.loads(gen_bytes(api, users, roles, seed, same_as, **flags))


def home_division(state):
    """The id of a genesys state's home division."""
    divs = state.get("divisions") or []
    return next((d["id"] for d in divs if d.get("home")), divs[0]["id"] if divs else None)


def direct_grants(state, subject):
    """The direct grants of a user, group or OAuth client of a genesys state (the subject's dict,
    or its id) as a set of (role id, division id): `roles` are home-division grants, `grants`
    the others ("*" for all divisions)."""
    if isinstance(subject, str):
        for key in ("users", "groups", "oauth_clients"):
            found = [s for s in state.get(key) or [] if s["id"] == subject]
            if found:
                subject = found[0]
                break
        else:
            raise KeyError(subject)
    home = home_division(state)
    pairs = {(r, home) for r in subject.get("roles") or []}
    return pairs | {(g["role"], g["division"]) for g in subject.get("grants") or []}


# ------------------------------------------------------------------------------------------
# The simulator

class Sim:
    """One tenantsim process serving one tenant.

    api         "genesys" or "identity"
    state       None (the simulator's empty tenant), a state dict, or a path to a state file
    clients     [(client_id, secret), ...]; the first one is used by request()
    tenant_id   identity tenant id (else taken from the state)
    latency     per-request latency: ms as a number or a string like "20ms"
    rate_limit  requests per minute as a number, or a string like "300/min"
    offset_cap  genesys --offset-cap (None: the simulator's default, 10000; 0 = off)
    lag         genesys --lag: ms as a number or a string like "2s"
    read_only_region  identity --read-only-region
    token_realm  --token-realm: tokens of same-realm simulators are valid here (one service
                behind two hosts)
    extra_args  more command-line arguments
    """

    def __init__(self, api, state=None, clients=(DEFAULT_CLIENT,), tenant_id=None, latency=None,
                 rate_limit=None, extra_args=(), offset_cap=None, lag=None,
                 read_only_region=False, token_realm=None):
        self.api = api
        self.clients = list(clients)
        self._state = state
        self._tenant_id = tenant_id
        self._latency = latency
        self._rate_limit = rate_limit
        self._extra = list(extra_args)
        if offset_cap is not None:
            self._extra += ["--offset-cap", str(offset_cap)]
        if lag is not None:
            self._extra += ["--lag", f"{lag}ms" if isinstance(lag, (int, float)) else str(lag)]
        if read_only_region:
            self._extra.append("--read-only-region")
        if token_realm:
            self._extra += ["--token-realm", token_realm]
        self.proc = None
        self.port = None
        self.dir = None
        self.stderr_path = None
        self._token = None
        self._stopped_rc = None

    # -- life cycle ------------------------------------------------------------------------

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="tenantsim-")
        port_file = os.path.join(self.dir, "port")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        args = [binary("TENANTSIM"), "--api", self.api, "--listen", "127.0.0.1:0",
                "--port-file", port_file]
        if isinstance(self._state, (dict, list)):
            path = os.path.join(self.dir, "state.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump(self._state, f)
            args += ["--state", path]
            if self._tenant_id is None and isinstance(self._state, dict):
                self._tenant_id = self._state.get("tenant_id")
        elif self._state is not None:
            args += ["--state", str(self._state)]
        for cid, secret in self.clients:
            args += ["--client", f"{cid}:{secret}"]
        if self._tenant_id:
            args += ["--tenant-id", self._tenant_id]
        if self._latency is not None:
            lat = self._latency
            args += ["--latency", f"{lat}ms" if isinstance(lat, (int, float)) else str(lat)]
        if self._rate_limit is not None:
            rl = self._rate_limit
            args += ["--rate-limit", f"{rl}/min" if isinstance(rl, int) else str(rl)]
        args += self._extra
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=err)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SimError(f"tenantsim exited {self.proc.returncode} at start-up:\n"
                               f"{_tail(self.stderr_path)}")
            try:
                with open(port_file, encoding="ascii") as f:
                    text = f.read().strip()
                if text.isdigit() and int(text) > 0:
                    self.port = int(text)
                    return self
            except OSError:
                pass
            time.sleep(0.02)
        self._kill()
        raise SimError(f"tenantsim wrote no port within 10 s:\n{_tail(self.stderr_path)}")

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        """SIGTERM, wait up to 5 s, then SIGKILL. Returns the exit code (negative = signal)."""
        if self.proc is None:
            return None
        if self._stopped_rc is not None:
            return self._stopped_rc
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._kill()
        self._stopped_rc = self.proc.returncode
        return self._stopped_rc

    def log_text(self):
        """What the simulator wrote on stderr so far."""
        return _tail(self.stderr_path, 1 << 20) if self.stderr_path else ""

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        rc = self.stop()
        clean = rc in (0, -signal.SIGTERM)
        if exc_type is not None or not clean:
            sys.stderr.write(f"--- tenantsim ({self.api}) exit {rc}, stderr:\n{self.log_text()}\n")
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        if exc_type is None and not clean:
            raise SimError(f"tenantsim exited {rc} (crash or sanitizer report, see above)")
        return False

    # -- addresses ---------------------------------------------------------------------------

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def tenant_id(self):
        """The identity tenant id (from the constructor, the state, or the running simulator)."""
        if self._tenant_id is None and self.api == "identity":
            self._tenant_id = self.state().get("tenant_id")
        return self._tenant_id

    @property
    def api_base(self):
        """"/api/v2" for genesys, "/api/v1/Tenants/<tenant>" for identity."""
        return "/api/v2" if self.api == "genesys" else f"/api/v1/Tenants/{self.tenant_id}"

    # -- HTTP ---------------------------------------------------------------------------------

    def raw_request(self, method, path, body=None, headers=None, timeout=30):
        """One request without authentication. body: dict/list (sent as JSON), str or bytes.
        Returns (status, headers with lower-case names, body bytes)."""
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode("utf-8")
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode("utf-8")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def fetch_token(self, client=None):
        """A fresh access token from the real token endpoint (first configured client by
        default). Raises SimError when the endpoint refuses."""
        cid, secret = client or self.clients[0]
        if self.api == "genesys":
            basic = base64.b64encode(f"{cid}:{secret}".encode()).decode()
            status, _, data = self.raw_request(
                "POST", "/oauth/token", body="grant_type=client_credentials",
                headers={"Authorization": f"Basic {basic}",
                         "Content-Type": "application/x-www-form-urlencoded"})
        else:
            form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": cid,
                                           "client_secret": secret})
            status, _, data = self.raw_request(
                "POST", "/identity/connect/token", body=form,
                headers={"Content-Type": "application/x-www-form-urlencoded"})
        if status != 200:
            raise SimError(f"token endpoint answered {status}: {data[:300]!r}")
        return json.loads(data)["access_token"]

    def request(self, method, path, body=None, headers=None, token=True):
        """An API request. token=True uses (and caches) a token of the first client, a string
        uses that bearer token, False sends no Authorization header.
        Returns (status, headers with lower-case names, body bytes)."""
        hdrs = dict(headers or {})
        if token is True:
            if self._token is None:
                self._token = self.fetch_token()
            hdrs["Authorization"] = f"Bearer {self._token}"
        elif token:
            hdrs["Authorization"] = f"Bearer {token}"
        return self.raw_request(method, path, body, hdrs)

    def request_json(self, method, path, body=None, headers=None, token=True):
        """request() with the body parsed as JSON (None when empty)."""
        status, hdrs, data = self.request(method, path, body, headers, token)
        return status, (json.loads(data) if data.strip() else None)

    # -- control endpoints ----------------------------------------------------------------------

    def _control(self, method, path, body=None):
        status, _, data = self.raw_request(method, path, body)
        if status // 100 != 2:
            raise SimError(f"{method} {path} answered {status}: {data[:500]!r}")
        return json.loads(data) if data.strip() else None

    def state(self):
        """The whole tenant (GET /_sim/state)."""
        return self._control("GET", "/_sim/state")

    def put_state(self, state):
        """Replace the whole tenant (PUT /_sim/state)."""
        self._control("PUT", "/_sim/state", state)
        if self.api == "identity" and isinstance(state, dict) and state.get("tenant_id"):
            self._tenant_id = state["tenant_id"]

    def stats(self):
        return self._control("GET", "/_sim/stats")

    def reset_stats(self):
        self._control("DELETE", "/_sim/stats")

    def add_faults(self, rules):
        """Add fault rules (a list of dicts, spec/simulator.md section 2)."""
        self._control("POST", "/_sim/faults", list(rules))

    def clear_faults(self):
        self._control("DELETE", "/_sim/faults")


# ------------------------------------------------------------------------------------------
# The daemon

def write_secret(directory, name, value):
    """Write a secret file readable by the owner only (0600); returns its path."""
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, value.encode("utf-8") if isinstance(value, str) else value)
    finally:
        os.close(fd)
    return path


_LOG_HEAD = re.compile(r"^(?:<[0-7]>|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z )"
                       r"(?:ERROR|WARNING|INFO|DEBUG) (?:job=\S+ )?")
_LOG_KV = r'[a-z_][a-z0-9_]*=(?:"(?:[^"\\]|\\.)*"|[^\s"]*)'
_LOG_TAIL = re.compile(r"(?: " + _LOG_KV + r")*")


def log_grammar_errors(text):
    """Lines of a rolesyncd log that break product.md section 6's `LEVEL job=NAME msg
    key=value ...`: after the message, nothing but key=value pairs (free text there would be
    misread by a key=value parser). Returns the offending lines."""
    bad = []
    for line in text.splitlines():
        head = _LOG_HEAD.match(line)
        if not head:
            bad.append(line)
            continue
        rest = line[head.end():]
        first = re.search(r" [a-z_][a-z0-9_]*=", rest)
        if first and not _LOG_TAIL.fullmatch(rest[first.start():]):
            bad.append(line)
    return bad


def run_rolesyncd(args, env=None, timeout=120, input=None):
    """Run `$ROLESYNCD args...` to completion (e.g. --check, --once). Returns the
    CompletedProcess with text stdout/stderr. `env` entries are added to the environment."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([binary("ROLESYNCD")] + [str(a) for a in args], env=full_env,
                          input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout)


class Daemon:
    """$ROLESYNCD running as a daemon in the foreground (`-c config_path` + args), stderr
    (its log) captured to a file. Stopped with SIGTERM (then SIGKILL after `stop_timeout`) on
    exit; the log is printed when the block fails or the daemon did not exit 0."""

    def __init__(self, config_path, args=(), env=None, stop_timeout=15):
        self.config_path = str(config_path)
        self.args = [str(a) for a in args]
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.stop_timeout = stop_timeout
        self.proc = None
        self.dir = None
        self.log_path = None
        self.stdout_path = None
        self.returncode = None  # set by stop()

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="rolesyncd-")
        self.log_path = os.path.join(self.dir, "stderr.log")
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        with open(self.log_path, "wb") as err, open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen([binary("ROLESYNCD"), "-c", self.config_path] + self.args,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         env=self.env)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def signal(self, sig):
        """Send a signal (signal.SIGHUP, SIGUSR1, SIGTERM, ...) if the daemon still runs."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout=None):
        """Wait for the exit; returns the exit code, or None when still running after timeout."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stdout_text(self):
        """Everything the daemon wrote on stdout so far."""
        return _tail(self.stdout_path, 1 << 22) if self.stdout_path else ""

    def log_text(self):
        """Everything the daemon logged on stderr so far."""
        return _tail(self.log_path, 1 << 22) if self.log_path else ""

    def wait_for_log(self, needle, timeout=30, count=1):
        """Wait until `needle` occurs `count` times in the log; returns True, or False on
        timeout or when the daemon exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log_text().count(needle) >= count:
                return True
            if self.proc.poll() is not None:
                return self.log_text().count(needle) >= count
            time.sleep(0.05)
        return False

    def stop(self):
        """SIGTERM, wait, SIGKILL after stop_timeout. Returns the exit code."""
        if self.proc is None:
            return None
        self.signal(signal.SIGTERM)
        rc = self.wait(self.stop_timeout)
        if rc is None:
            self.proc.kill()
            rc = self.proc.wait()
        self.returncode = rc
        return rc

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        rc = self.stop()
        if exc_type is not None or rc != 0:
            sys.stderr.write(f"--- rolesyncd exit {rc}, log:\n{self.log_text()}\n")
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        return False
