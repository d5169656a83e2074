"""What the coordination tests share (product.md 7a): a real etcd on loopback, a recorder of
etcd's key history with the time each change was seen, the simulators' request logs
(tenantsim --request-log) and the two checks made from them:

- every write a target received carries rolesyncd's X-Rolesyncd-Fence header, and at the
  moment it arrived etcd's history shows the job's key held by that member under that lease;
- no two members' writes for one job overlap in time.

The history is recorded live, through etcd's JSON gateway watch, stamped with this machine's
clock (the simulators stamp their logs with the same clock). A watch broken by an etcd restart
resumes at the next revision; changes replayed then are stamped leniently in both directions
(a put at the last moment the watcher knew it had not seen it yet, a delete at receipt), which
widens an interval by at most one reconnect attempt (50 ms).
"""
import base64
import json
import os
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
import urllib.request

from daemon_fixture import wait_until

ETCD = os.environ.get("ETCD", "/usr/bin/etcd")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def b64(s):
    return base64.b64encode(s.encode()).decode()


def unb64(s):
    return base64.b64decode(s or "").decode("utf-8", "replace")


def prefix_end(prefix):
    b = bytearray(prefix.encode())
    b[-1] += 1
    return bytes(b).decode()


def make_certs(directory, server_client_auth=True):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, with openssl.
    Returns {ca, server_cert, server_key, client_cert, client_key} paths. etcd's JSON gateway
    dials etcd with the server certificate as its client certificate, so with
    --client-cert-auth that one needs clientAuth too (server_client_auth=False leaves it out,
    as a real deployment might)."""
    def run(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=rolesyncd test CA")
    server_eku = "serverAuth,clientAuth" if server_client_auth else "serverAuth"
    for name, ext in (("server", f"subjectAltName=IP:127.0.0.1\nextendedKeyUsage={server_eku}"),
                      ("client", "extendedKeyUsage=clientAuth")):
        with open(os.path.join(directory, f"{name}.ext"), "w", encoding="ascii") as f:
            f.write(ext + "\n")
        run("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    p = lambda n: os.path.join(directory, n)  # noqa: E731
    return {"ca": p("ca.pem"), "server_cert": p("server.pem"), "server_key": p("server.key"),
            "client_cert": p("client.pem"), "client_key": p("client.key")}


class Etcd:
    """etcd from Debian's etcd-server, one member, on loopback, data in `directory`. With
    `tls` (make_certs' paths) it serves HTTPS and asks for a client certificate."""

    def __init__(self, directory, tls=None):
        self.dir = directory
        self.tls = tls
        self.client = free_port()
        self.peer = free_port()
        self.proc = None
        self.token = None  # sent as Authorization once auth is on (tests set it)

    @property
    def url(self):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.client}"

    def _ctx(self):
        if not self.tls:
            return None
        ctx = ssl.create_default_context(cafile=self.tls["ca"])
        ctx.load_cert_chain(self.tls["client_cert"], self.tls["client_key"])
        return ctx

    def start(self):
        peer = f"http://127.0.0.1:{self.peer}"
        log = open(os.path.join(self.dir, "etcd.log"), "ab")
        tls = []
        if self.tls:
            tls = ["--cert-file", self.tls["server_cert"], "--key-file", self.tls["server_key"],
                   "--trusted-ca-file", self.tls["ca"], "--client-cert-auth"]
        self.proc = subprocess.Popen(
            [ETCD, "--name", "t", "--data-dir", os.path.join(self.dir, "etcd-data"),
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"t={peer}", *tls],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        if not wait_until(self.healthy, timeout=20, interval=0.1):
            raise RuntimeError("etcd did not start")
        return self

    def healthy(self):
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=1, context=self._ctx()) as r:
                return r.status == 200
        except Exception:
            return False

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def call(self, path, body, timeout=5):
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = self.token
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers=headers)
        with urllib.request.urlopen(req, timeout=timeout, context=self._ctx()) as r:
            return json.loads(r.read())

    def etcdctl(self, *args):
        """Run Debian's etcdctl against this etcd; returns its stdout."""
        tls = []
        if self.tls:
            tls = ["--cacert", self.tls["ca"], "--cert", self.tls["client_cert"],
                   "--key", self.tls["client_key"]]
        p = subprocess.run(["etcdctl", "--endpoints", self.url, *tls, *args],
                           capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, ETCDCTL_API="3"))
        if p.returncode != 0:
            raise RuntimeError(f"etcdctl {' '.join(args)}: {p.stderr}")
        return p.stdout

    def keys(self, prefix):
        """{key: (value, lease)} under prefix now."""
        doc = self.call("/v3/kv/range", {"key": b64(prefix), "range_end": b64(prefix_end(prefix))})
        return {unb64(kv["key"]): (unb64(kv.get("value")), int(kv.get("lease", 0)))
                for kv in doc.get("kvs", [])}


class KeyHistory:
    """Every change under `prefix` since revision 1, as (seen_at, kind, key, value, lease,
    revision); kind is "put" or "delete". Runs a watcher thread until close()."""

    def __init__(self, etcd, prefix):
        self.etcd, self.prefix = etcd, prefix
        self.events = []
        self.next_rev = 1
        self.reconnects = 0
        self._lock = threading.Lock()
        self._stop = False
        self._resp = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        last_miss = time.time()  # the last moment no change after next_rev - 1 was known
        while not self._stop:
            body = {"create_request": {"key": b64(self.prefix),
                                       "range_end": b64(prefix_end(self.prefix)),
                                       "start_revision": self.next_rev}}
            try:
                req = urllib.request.Request(self.etcd.url + "/v3/watch",
                                             data=json.dumps(body).encode(),
                                             headers={"Content-Type": "application/json"})
                self._resp = urllib.request.urlopen(req, timeout=3600, context=self.etcd._ctx())
                replay = True
                while not self._stop:
                    line = self._resp.readline()
                    if not line:
                        break
                    doc = json.loads(line)
                    res = doc.get("result", {})
                    now = time.time()
                    for ev in res.get("events", []):
                        kv = ev.get("kv", {})
                        kind = "delete" if ev.get("type") == "DELETE" else "put"
                        rev = int(kv.get("mod_revision", 0))
                        seen = last_miss if (replay and kind == "put") else now
                        with self._lock:
                            self.events.append((seen, kind, unb64(kv.get("key")),
                                                unb64(kv.get("value")), int(kv.get("lease", 0)),
                                                rev))
                            self.next_rev = max(self.next_rev, rev + 1)
                    if res.get("created"):
                        continue
                    replay = False
                    last_miss = now
            except Exception:
                pass
            finally:
                if self._resp is not None:
                    try:
                        self._resp.close()
                    except Exception:
                        pass
                    self._resp = None
            if self._stop:
                break
            self.reconnects += 1
            last_miss = time.time()
            time.sleep(0.05)

    def close(self):
        self._stop = True
        r = self._resp
        if r is not None:
            try:
                r.fp.raw._sock.shutdown(socket.SHUT_RDWR)
            except Exception:
                pass
        self._thread.join(5)

    def holds(self, job_key):
        """[(start, end, value, lease)] of job_key: who held it when (end inf while held)."""
        with self._lock:
            evs = [e for e in self.events if e[2] == job_key]
        out, cur = [], None
        for seen, kind, _key, value, lease, _rev in sorted(evs, key=lambda e: e[5]):
            if cur and (kind == "delete" or (value, lease) != (cur[2], cur[3])):
                out.append((cur[0], seen, cur[2], cur[3]))
                cur = None
            if kind == "put" and cur is None:
                cur = (seen, None, value, lease)
        if cur:
            out.append((cur[0], float("inf"), cur[2], cur[3]))
        return out


def read_request_log(path):
    """The lines of one tenantsim --request-log."""
    out = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    out.append(json.loads(line))
    except FileNotFoundError:
        pass
    return out


def parse_fence(value):
    """X-Rolesyncd-Fence: job=J; member=M; lease=HEX -> (job, member, lease) or None."""
    if not value:
        return None
    parts = {}
    for item in value.split(";"):
        k, _, v = item.strip().partition("=")
        parts[k] = urllib.parse.unquote(v)
    try:
        return parts["job"], parts["member"], int(parts["lease"], 16)
    except (KeyError, ValueError):
        return None


def api_writes(lines):
    """The writes among a request log's lines (tenantsim logs no control route)."""
    return [r for r in lines if r.get("write")]


def check_writes(history, prefix, logs):
    """logs: {job: request log lines of its target}. Returns (writes checked, problems[])."""
    problems, n = [], 0
    for job, lines in logs.items():
        holds = history.holds(f"{prefix}jobs/{job}")
        spans = {}
        for w in api_writes(lines):
            n += 1
            f = parse_fence(w.get("fence"))
            what = f"{w['method']} {w['path']} at {w['t0']:.3f}"
            if not f:
                problems.append(f"{job}: write without a fencing header: {what}")
                continue
            fjob, member, lease = f
            if fjob != job:
                problems.append(f"{job}: write names job {fjob}: {what}")
            # the start is stamped when this process saw the put; its watcher thread may be
            # held up (the GIL, a loaded machine), hence the slack -- the end needs none: a
            # delete seen late only widens the interval
            ok = any(start <= w["t0"] + 0.5 and w["t0"] <= end and value == member and
                     hl == lease for start, end, value, hl in holds)
            if not ok:
                problems.append(f"{job}: {what} by {member} lease {lease:x}: the key was not "
                                f"held by it then; holds {holds}")
            spans.setdefault(member, []).append((w["t0"], w["t1"]))
        # a sweep in start order: a span overlaps another member's when that one's latest
        # end is past its start
        last_end = {}
        for s0, e0, m in sorted((s, e, m) for m, ss in spans.items() for s, e in ss):
            for other, e1 in last_end.items():
                if other != m and e1 > s0:
                    problems.append(f"{job}: a write of {m} at {s0:.3f} overlaps one of {other} "
                                    f"ending {e1:.3f}")
            last_end[m] = max(last_end.get(m, 0.0), e0)
    return n, problems
