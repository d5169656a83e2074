"""daemon_fixture — shared set-up for the daemon's end-to-end tests (test_daemon*.py,
test_status_file.py): two genesys tenantsims with related fixtures, a config writer bound to
them, status.json helpers, an sd_notify socket and log parsing. Standard library only.
"""

import json
import os
import re
import shutil
import socket
import tempfile
import threading
import time

from rsconfig import tenant_for, write_config
from simlib import Sim, gen

__all__ = ["Pair", "NotifySocket", "wait_until", "read_status", "log_lines", "slurp", "LOG_RE",
           "JOURNAL_RE"]

# A log line outside systemd: RFC 3339 timestamp, level, then the event.
LOG_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z (ERROR|WARNING|INFO|DEBUG) \S")
# Under journald: the syslog priority prefix and no timestamp.
JOURNAL_RE = re.compile(r"^<([0-7])>(ERROR|WARNING|INFO|DEBUG) \S")
PRIO = {"ERROR": "3", "WARNING": "4", "INFO": "6", "DEBUG": "7"}


def wait_until(pred, timeout=20.0, interval=0.05):
    """Poll pred() until it returns a true value (returned) or `timeout` passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def read_status(path):
    """status.json as a dict, or None when it does not exist yet."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def slurp(path):
    """A text file's content ("" when it does not exist)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def log_lines(text, needle):
    return [line for line in text.splitlines() if needle in line]


class Pair:
    """A source and a target genesys tenantsim whose users are the same people, the target
    drifting from the source, plus a temp folder for the config and the state dir.

        with Pair(users=40, roles=6) as p:
            cfg = p.config([{"name": "j", "interval": "2s"}])
    Jobs default to source "src", target "dst"."""

    def __init__(self, users=40, roles=6, drift=10, latency=None, seed=1):
        self.users, self.roles, self.drift, self.seed = users, roles, drift, seed
        self.latency = latency
        self.src = self.dst = None
        self.dir = None

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="rs-daemon-")
        src_state = gen("genesys", self.users, self.roles, seed=self.seed)
        dst_state = gen("genesys", seed=self.seed + 1, same_as=src_state, drift=self.drift)
        self.src = Sim("genesys", state=src_state, latency=self.latency).start()
        try:
            self.dst = Sim("genesys", state=dst_state, latency=self.latency).start()
        except Exception:
            self.src.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            for sim in (self.dst, self.src):
                if sim:
                    sim.__exit__(exc_type, exc, tb)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
        return False

    @property
    def state_dir(self):
        return os.path.join(self.dir, "state")

    @property
    def status_path(self):
        return os.path.join(self.state_dir, "status.json")

    def status(self):
        return read_status(self.status_path)

    def tenants(self, **dst_extra):
        return {"src": tenant_for(self.src), "dst": tenant_for(self.dst, **dst_extra)}

    def config(self, jobs, tenants=None, state_dir=None, **top):
        """(Re)write the config; returns its path. Jobs get source/target defaults."""
        full = []
        for j in jobs:
            j = dict(j)
            j.setdefault("source", "src")
            j.setdefault("target", "dst")
            full.append(j)
        return write_config(self.dir, tenants or self.tenants(), full,
                            state_dir=state_dir or self.state_dir, **top)

    def job_status(self, name):
        st = self.status()
        return st and st["jobs"].get(name)

    def wait_job(self, name, pred, timeout=30):
        """Wait until pred(job entry of status.json) holds; returns the entry or None."""
        def check():
            job = self.job_status(name)
            return job if job is not None and pred(job) else None
        return wait_until(check, timeout)


class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd's $NOTIFY_SOCKET; a thread collects
    every datagram as a dict of its KEY=VALUE lines, in order of arrival."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="rs-notify-")
        self.path = os.path.join(self.dir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages = []
        self.lock = threading.Lock()
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            fields = {}
            for line in data.decode("utf-8", "replace").split("\n"):
                if "=" in line:
                    k, v = line.split("=", 1)
                    fields[k] = v
            with self.lock:
                self.messages.append((time.monotonic(), fields))

    def snapshot(self):
        with self.lock:
            return [m for _, m in self.messages]

    def timed(self):
        with self.lock:
            return list(self.messages)

    def wait_for(self, key, value=None, count=1, timeout=20):
        def check():
            n = sum(1 for m in self.snapshot() if key in m and (value is None or m[key] == value))
            return n >= count
        return wait_until(check, timeout)

    def close(self):
        self._stop = True
        self.thread.join(2)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
