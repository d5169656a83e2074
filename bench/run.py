#!/usr/bin/env python3
"""bench/run.py — the benchmarks of spec/performance.md, one command, one table.

    python3 bench/run.py [--only B1,B3] [--quick] [--build-dir DIR] [--no-build] [--keep]

Builds rolesyncd and tenantsim (RelWithDebInfo, in build-bench/ unless told otherwise) and
bench/jsonc_parse.c, then runs every scenario against two `tenantsim` processes on loopback with
fixtures from `tenantsim gen`. Bounds come from the fixtures (bench/model.py), never from the
daemon's own plan. Results: a markdown table on stdout, bench/results/latest.md and .json.
Benchmarks are not tests: a ratio over its bar is reported (MISS), the exit code stays 0
unless the benchmark itself could not run.
"""

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in bench/ or tests/lib
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, HERE)

import model  # noqa: E402  (bench/model.py)
import rsconfig  # noqa: E402  (tests/lib, reused as is)
import simlib  # noqa: E402

MAX_CONNECTIONS = 8          # rolesyncd's default, written explicitly into the bench config
BAR_REQUESTS = 1.05
BAR_RATE = 1.25
BAR_LATENCY = 2.0
BAR_CPU_JSONC = 2.0
BAR_RSS_MIB = 128.0
BAR_IDLE_MS = 50.0

# Scenario rows. `tgt` holds the `tenantsim gen --same-as` flags of the target fixture.
# B3's role count is not fixed by the spec: 150 custom roles, like B1.
FULL = [
    dict(id="B1", title="initial mirror genesys->genesys", api="genesys", users=10000, roles=150,
         tgt=dict(no_custom_roles=True), latency=20, rate=None, kind="initial"),
    dict(id="B1-rl", title="B1 at 3000/min", api="genesys", users=10000, roles=150,
         tgt=dict(no_custom_roles=True), latency=20, rate=3000, kind="initial"),
    dict(id="B2", title="steady state", api="genesys", users=50000, roles=200,
         tgt=dict(), latency=5, rate=None, kind="steady"),
    dict(id="B3", title="drift 1 %, 3 roles edited", api="genesys", users=20000, roles=150,
         tgt=dict(drift=1, edit_roles=3), latency=20, rate=None, kind="drift"),
    dict(id="B4", title="initial mirror identity->identity", api="identity", users=5000,
         roles=30, tgt=dict(no_custom_roles=True), latency=20, rate=None, kind="initial"),
    dict(id="B5", title="scale, steady state", api="genesys", users=100000, roles=300,
         tgt=dict(), latency=0, rate=None, kind="steady", jsonc=True),
    dict(id="B6", title="idle daemon, 3 jobs", users=1000, roles=20, idle=60, kind="idle"),
    # version 2 (performance.md B7-B9): divisions, groups, the offset paging cap
    dict(id="B7", title="division-aware initial mirror", api="genesys", users=20000, roles=150,
         src=dict(divisions=5, groups=20), tgt=dict(no_custom_roles=True), latency=20,
         rate=None, kind="initial"),
    dict(id="B8", title="fan-out, one source, 10 targets", users=10000, roles=100, targets=10,
         latency=20, kind="fanout"),
    dict(id="B9", title="scale past the paging cap", api="genesys", users=100000, roles=300,
         src=dict(divisions=5, inactive_share=15), tgt=dict(), latency=0, rate=None,
         kind="steady", jsonc=True, rss_bar=160.0),
]
QUICK_SIZES = {"B1": (1000, 20), "B1-rl": (1000, 20), "B2": (3000, 30), "B3": (2000, 20),
               "B4": (500, 10), "B5": (5000, 30), "B6": (200, 10), "B7": (2000, 20),
               "B8": (1000, 20), "B9": (12000, 30)}
QUICK_IDLE = 10
JSONC_PASSES = 5
CPU_ROUNDS = 4   # B5: extra steady cycles, each followed by one json-c pass


# ------------------------------------------------------------------------------------------
# Build

def sh(args, **kw):
    return subprocess.run(args, check=True, **kw)


def build(build_dir, skip):
    bins = {"rolesyncd": os.path.join(build_dir, "rolesyncd"),
            "tenantsim": os.path.join(build_dir, "tests", "sim", "tenantsim"),
            "jsonc_parse": os.path.join(build_dir, "bench-jsonc_parse")}
    if not skip:
        if not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
            sh(["cmake", "-S", ROOT, "-B", build_dir, "-DCMAKE_BUILD_TYPE=RelWithDebInfo"],
               stdout=subprocess.DEVNULL)
        sh(["cmake", "--build", build_dir, "-j2", "--target", "rolesyncd", "tenantsim"],
           stdout=subprocess.DEVNULL)
        src = os.path.join(HERE, "jsonc_parse.c")
        out = bins["jsonc_parse"]
        if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
            flags = subprocess.run(["pkg-config", "--cflags", "--libs", "json-c"], check=True,
                                   stdout=subprocess.PIPE, text=True).stdout.split()
            sh(["cc", "-O2", "-Wall", "-Wextra", "-o", out, src] + flags)
    for name, path in bins.items():
        if not os.access(path, os.X_OK):
            sys.exit(f"bench: {name} is missing at {path} (build first, or drop --no-build)")
    os.environ["ROLESYNCD"] = bins["rolesyncd"]
    os.environ["TENANTSIM"] = bins["tenantsim"]
    return bins


# ------------------------------------------------------------------------------------------
# Fixtures, processes, measurements

def gen_file(path, api=None, users=None, roles=None, seed=1, same_as=None, **flags):
    """`tenantsim gen ...` straight into a file (large fixtures never pass through a pipe)."""
    args = [os.environ["TENANTSIM"], "gen"]
    if same_as:
        args += ["--same-as", same_as]
    else:
        args += ["--api", api, "--users", str(users), "--roles", str(roles)]
    args += ["--seed", str(seed)]
    for k, v in flags.items():
        opt = "--" + k.replace("_", "-")
        if v is True:
            args.append(opt)
        elif v not in (False, None):
            args += [opt, str(v)]
    with open(path, "wb") as out:
        proc = subprocess.run(args, stdout=out, stderr=subprocess.PIPE, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[1:])}: {proc.stderr.decode(errors='replace')}")
    return path


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def tail(path, n=3000):
    try:
        with open(path, "rb") as f:
            data = f.read()
        return data[-n:].decode("utf-8", "replace")
    except OSError:
        return ""


TIME_BIN = "/usr/bin/time"


def read_hwm(pid):
    """VmHWM (peak RSS of the current program image) in KiB, or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for ln in f:
                if ln.startswith("VmHWM:"):
                    return int(ln.split()[1])
    except (OSError, ValueError):
        pass
    return None


def run_rolesyncd(cfg, workdir, label, extra=(), timeout=900, wrap=()):
    """rolesyncd -c cfg --once [extra]: exit code, wall time, CPU (wait4) and peak RSS.

    Peak RSS cannot come from this process's wait4(): Linux carries the RSS high-water mark of
    the forked child (a copy of this Python process, hundreds of MB after loading a 100,000-user
    fixture) across exec into ru_maxrss. So rolesyncd is started through /usr/bin/time, whose own
    fork is small, and its %M is the figure; VmHWM polled from /proc is kept as a cross-check.
    `wrap` is a profiler command line put in front (perf record ...)."""
    out_path = os.path.join(workdir, f"{label}.stdout")
    log_path = os.path.join(workdir, f"{label}.log")
    rss_path = os.path.join(workdir, f"{label}.maxrss")
    cmd = [os.environ["ROLESYNCD"], "-c", cfg, "--once"] + list(extra)
    use_time = os.access(TIME_BIN, os.X_OK) and not wrap
    args = list(wrap) + ([TIME_BIN, "-f", "%M", "-o", rss_path] if use_time else []) + cmd
    hwm = None
    with open(out_path, "wb") as out, open(log_path, "wb") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        deadline = t0 + timeout
        child = None
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, ru = os.wait4(proc.pid, 0)
                break
            if child is None and use_time:
                try:
                    with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
                        kids = f.read().split()
                    child = int(kids[0]) if kids else None
                except (OSError, ValueError):
                    child = None
            h = read_hwm(child if use_time else proc.pid) if (child or not use_time) else None
            if h is not None and (hwm is None or h > hwm):
                hwm = h
            time.sleep(0.005)
        wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    maxrss = None
    if use_time:
        try:
            with open(rss_path) as f:
                maxrss = int(f.read().split()[-1]) / 1024.0
        except (OSError, ValueError, IndexError):
            maxrss = None
    return {"rc": proc.returncode, "wall_s": wall, "cpu_user_s": ru.ru_utime,
            "cpu_sys_s": ru.ru_stime, "cpu_s": ru.ru_utime + ru.ru_stime,
            "maxrss_mib": maxrss, "vmhwm_polled_mib": hwm / 1024.0 if hwm else None,
            "stdout": out_path, "log": log_path}


def auth_requests(stats):
    return sum(v for k, v in stats.get("by_route", {}).items()
               if "token" in k or "well-known" in k)


def sim_counts(sims):
    """Requests seen by the simulators since their last reset, with token requests apart."""
    total = tokens = writes = too_many = 0
    max_in_flight = 0
    routes = {}
    for s in sims:
        st = s.stats()
        total += st.get("total", 0)
        tokens += auth_requests(st)
        writes += st.get("writes", 0)
        too_many += st.get("by_status", {}).get("429", 0)
        max_in_flight = max(max_in_flight, st.get("max_in_flight", 0))
        for k, v in st.get("by_route", {}).items():
            routes[f"{s.api}:{k}"] = routes.get(f"{s.api}:{k}", 0) + v
    return {"total": total, "tokens": tokens, "api": total - tokens, "writes": writes,
            "http_429": too_many, "max_in_flight": max_in_flight, "by_route": routes}


def tenant_entry(sim):
    # rolesyncd lists genesys roles 100 a page by default: the bench raises page_size to the
    # simulator's ceiling (500) so the read bound (ceil(n / max page)) is reachable at all.
    extra = {"page_size": model.GENESYS_MAX_PAGE} if sim.api == "genesys" else {}
    return rsconfig.tenant_for(sim, **extra)


def job_entry(name, source, target):
    return {"name": name, "source": source, "target": target, "interval": "1h",
            "roles": {"include": ["*"], "definitions": True},
            "assignments": "mirror", "max_deletes": 1000000000}


def http_block(rate_per_min):
    return {"max_connections": MAX_CONNECTIONS,
            "rate_limit": f"{rate_per_min // 60}/s" if rate_per_min else "0"}


# ------------------------------------------------------------------------------------------
# B5: json-c alone on the same bodies

def page_paths(sim, t, plan=None, side=None):
    """The pages rolesyncd reads from this tenant (same paths and query strings as
    src/providers/genesys.c / identity.c). Genesys cursor pages are followed here once (their
    cursors are fixed while the tenant does not change), so every page is known up front."""
    paths = []
    mp = t.max_page()
    if sim.api == "genesys":
        for n in range(1, model.pages(t.nroles, mp) + 1):
            paths.append(f"/api/v2/authorization/roles?pageSize={mp}&pageNumber={n}"
                         "&userCount=false")
        dp = model.GENESYS_DIVISIONS_PAGE
        for n in range(1, model.pages(t.ndivisions, dp) + 1):
            paths.append(f"/api/v2/authorization/divisions?pageSize={dp}&pageNumber={n}")
        for n in range(1, model.pages(t.by_state.get("active", 0), mp) + 1):
            paths.append(f"/api/v2/users?pageSize={mp}&pageNumber={n}&state=active")
        cp = min(mp, model.GENESYS_CURSOR_PAGE)
        for state in ("inactive", "deleted"):
            p = f"/api/v2/users/query?pageSize={cp}&state={state}"
            while p:
                paths.append(p)
                status, _, body = sim.request("GET", p)
                if status != 200:
                    raise RuntimeError(f"GET {p} answered {status}")
                cur = json.loads(body).get("cursor")
                p = (f"/api/v2/users/query?pageSize={cp}&state={state}&cursor="
                     f"{urllib.parse.quote(cur, safe='')}" if cur else None)
        if plan is not None:
            gp = model.GENESYS_GRANTS_PAGE
            for rid in model.read_roles(t, plan, side):
                for n in range(1, model.pages(t.holders.get(rid, 0), gp) + 1):
                    paths.append(f"/api/v2/authorization/roles/{rid}/subjectgrants"
                                 f"?pageSize={gp}&pageNumber={n}")
    else:
        base = sim.api_base
        for what, count in (("Roles", t.nroles), ("Users", t.nusers)):
            for i in range(max(1, math.ceil(count / mp))):
                paths.append(f"{base}/{what}?skip={i * mp}&count={mp}")
    return paths


def fetch_pages(sim, t, outdir, side, plan=None):
    """Save exactly the pages rolesyncd reads from this tenant."""
    files = []
    for i, p in enumerate(page_paths(sim, t, plan, side)):
        status, _, body = sim.request("GET", p)
        if status != 200:
            raise RuntimeError(f"GET {p} answered {status}")
        fn = os.path.join(outdir, f"{side}-{i:05d}.json")
        with open(fn, "wb") as f:
            f.write(body)
        files.append(fn)
    return files


def fetch_only_wall(sims, tenants, work, plan=None):
    """Wall time of a client that only downloads: the same pages, `max_connections` at a time
    per tenant, both tenants at once, bodies discarded, every page known up front (no
    first-page round trip). `curl --parallel`, one process per tenant; tokens are fetched
    before the clock starts. What the simulators, loopback and latency cost before any client
    parses a byte. None when curl is missing."""
    if not shutil.which("curl"):
        return None
    cmds = []
    for k, (sim, t) in enumerate(zip(sims, tenants)):
        cfg = os.path.join(work, f"fetch-only-{k}.curl")
        with open(cfg, "w") as f:
            for p in page_paths(sim, t, plan, ("src", "tgt")[k]):
                f.write(f'url = "{sim.base_url}{p}"\noutput = "/dev/null"\n')
        cmds.append(["curl", "-s", "--fail", "--parallel", "--parallel-max",
                     str(MAX_CONNECTIONS), "-H", f"Authorization: Bearer {sim.fetch_token()}",
                     "-K", cfg])
    t0 = time.monotonic()
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for c in cmds]
    rcs = [p.wait() for p in procs]
    wall = time.monotonic() - t0
    return wall if all(rc == 0 for rc in rcs) else None


def jsonc_baseline(bins, files, passes, like_rolesyncd=False):
    args = [bins["jsonc_parse"]] + (["--like-rolesyncd"] if like_rolesyncd else [])
    proc = subprocess.run(args + [str(passes)] + files, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, check=True)
    return json.loads(proc.stdout)


# ------------------------------------------------------------------------------------------
# Scenarios B1-B5

def fixture_pair(sc, work, quick):
    users, roles = QUICK_SIZES[sc["id"]] if quick else (sc["users"], sc["roles"])
    src = gen_file(os.path.join(work, "source.json"), api=sc["api"], users=users, roles=roles,
                   seed=11, **sc.get("src", {}))
    tgt = gen_file(os.path.join(work, "target.json"), same_as=src, seed=12, **sc["tgt"])
    return src, tgt, users, roles


def run_cycle_scenario(sc, bins, work, quick, log, profile=None):
    row = {"id": sc["id"], "title": sc["title"], "latency_ms": sc["latency"],
           "rate_per_min": sc["rate"], "notes": []}
    t_gen = time.monotonic()
    src_path, tgt_path, users, roles = fixture_pair(sc, work, quick)
    row.update(users=users, custom_roles=roles)
    src_state, tgt_state = load(src_path), load(tgt_path)
    log(f"  fixtures: {users} users, {roles} custom roles ({time.monotonic() - t_gen:.1f} s)")
    # the simulators keep their default --offset-cap 10000, as the platform (B9 says so)
    sim_kw = {"latency": sc["latency"]}
    if sc["rate"]:
        sim_kw["rate_limit"] = f"{sc['rate']}/min"
    with contextlib.ExitStack() as stack:
        src = stack.enter_context(simlib.Sim(sc["api"], state=src_path, **sim_kw))
        dst = stack.enter_context(simlib.Sim(sc["api"], state=tgt_path, **sim_kw))
        sims = [src, dst]
        cfg = rsconfig.write_config(
            os.path.join(work, "conf"),
            tenants={"src": tenant_entry(src), "dst": tenant_entry(dst)},
            jobs=[job_entry("bench", "src", "dst")],
            log_level="info", http=http_block(sc["rate"]))

        if sc["kind"] == "steady":
            # Already in sync? The daemon's dry-run must say so; else converge first and take
            # the bound from the converged target.
            dr = run_rolesyncd(cfg, work, "dry-run", ["--dry-run"])
            summary = [ln for ln in open(dr["stdout"], encoding="utf-8", errors="replace")
                       if ln.startswith("job ")]
            row["dry_run"] = {"rc": dr["rc"], "summary": summary[-1].strip() if summary else ""}
            log(f"  dry-run: rc {dr['rc']} {row['dry_run']['summary']}")
            if dr["rc"] == 2:
                row["notes"].append("fixture was not in sync per the daemon: converged first")
                conv = run_rolesyncd(cfg, work, "converge")
                if conv["rc"] != 0:
                    row["notes"].append(f"converging run exited {conv['rc']}")
                tgt_state = dst.state()
            elif dr["rc"] != 0:
                row["notes"].append(f"dry-run exited {dr['rc']}: {tail(dr['log'], 400)}")

        plan, S, T = model.desired_plan(src_state, tgt_state, definitions=True)
        b = model.bounds(plan, S, T, sc["latency"], MAX_CONNECTIONS,
                         sc["rate"] / 60.0 if sc["rate"] else None)
        row["bound"] = b
        if sc["kind"] == "steady" and b["writes_min"]:
            row["notes"].append(f"model: {b['writes_min']} writes needed in a 'steady' state")

        # The bodies this cycle reads, saved before it changes anything, for json-c alone.
        pages = os.path.join(work, "pages")
        os.makedirs(pages, exist_ok=True)
        files = fetch_pages(src, S, pages, "src", plan) + fetch_pages(dst, T, pages, "dst", plan)
        passes = JSONC_PASSES if sc.get("jsonc") else 3
        base = jsonc_baseline(bins, files, passes)
        row["jsonc"] = base
        msg = (f"  json-c alone: {base['cpu_s_min_pass']:.3f} s CPU (cheapest of {passes} "
               f"passes) over {base['files']} bodies ({base['bytes'] / 1e6:.1f} MB)")
        if sc.get("jsonc"):
            # not the bar: json-c with rolesyncd's own tokener settings, to split the overhead
            row["jsonc_like_rolesyncd"] = jsonc_baseline(bins, files, passes, True)
            msg += (f"; with rolesyncd's tokener settings "
                    f"{row['jsonc_like_rolesyncd']['cpu_s_min_pass']:.3f} s")
        log(msg)
        if not sc.get("jsonc"):
            shutil.rmtree(pages, ignore_errors=True)
        if not sc["rate"]:
            fo = [w for w in (fetch_only_wall(sims, (S, T), work, plan) for _ in range(3)) if w]
            row["fetch_only_s"] = min(fo) if fo else None
            if fo:
                log(f"  fetch-only client: {min(fo):.2f} s wall (cheapest of {len(fo)})")

        for s in sims:
            s.reset_stats()
        sim_cpu0 = sum(proc_cpu(s.proc.pid)[0] for s in sims)
        wrap = ()
        if profile == "perf":
            wrap = ("perf", "record", "--call-graph", "dwarf,16384", "-F", "999", "-q", "-o",
                    os.path.join(work, "perf.data"), "--")
        elif profile == "callgrind":
            wrap = ("valgrind", "--tool=callgrind", "-q",
                    "--callgrind-out-file=" + os.path.join(work, "callgrind.out"))
        r1 = run_rolesyncd(cfg, work, "cycle1", wrap=wrap)
        c1 = sim_counts(sims)
        row["sims_cpu_s"] = sum(proc_cpu(s.proc.pid)[0] for s in sims) - sim_cpu0
        if profile:
            row["notes"].append(f"cycle 1 ran under {profile}: its time and CPU are not "
                                f"comparable; data in {work}")
        row["cycle1"] = r1
        row["requests"] = c1
        log(f"  cycle 1: rc {r1['rc']}, {r1['wall_s']:.2f} s wall, {r1['cpu_s']:.2f} s CPU "
            f"(simulators {row['sims_cpu_s']:.2f} s), peak RSS {r1['maxrss_mib']} MiB, "
            f"{c1['api']} requests (+{c1['tokens']} token), min {b['requests_min']}")
        if r1["rc"] != 0:
            row["notes"].append(f"cycle 1 exited {r1['rc']}: {tail(r1['log'], 600)}")
        # reads beyond the formula's role and user listings (e.g. licensed permission domains)
        c1["reads"] = sum(v for k, v in c1["by_route"].items() if ":GET " in k)
        formula = ("/roles", "/users", "/Roles", "/Users", "/divisions", "/users/query",
                   "/subjectgrants")
        for k, v in sorted(c1["by_route"].items()):
            if ":GET " in k and not k.endswith(formula):
                row["notes"].append(f"{v} x {k.split(':', 1)[1]} beyond the read formula")
        if src.stats().get("writes", 0):
            row["notes"].append("the SOURCE received writes")

        problems = model.check_target(plan, S, T, dst.state(), definitions=True)
        row["correct"] = not problems
        row["problems"] = problems
        if problems:
            log("  target NOT as desired: " + "; ".join(problems))

        for s in sims:
            s.reset_stats()
        r2 = run_rolesyncd(cfg, work, "cycle2")
        c2 = sim_counts(sims)
        row["cycle2"] = {"rc": r2["rc"], "wall_s": r2["wall_s"], "cpu_s": r2["cpu_s"],
                         "writes": c2["writes"], "requests": c2["api"]}
        log(f"  cycle 2: rc {r2['rc']}, {c2['writes']} writes, {c2['api']} requests")

        if sc.get("jsonc"):
            # The bar. The machine is shared and CPU time inflates under contention, so the
            # two sides are measured interleaved and each takes its least disturbed figure:
            # the cheapest of 2 + CPU_ROUNDS identical steady-state cycles over the cheapest
            # json-c pass.
            cycles, jpasses = [r1["cpu_s"], r2["cpu_s"]], [base["cpu_s_min_pass"]]
            for k in range(CPU_ROUNDS):
                rk = run_rolesyncd(cfg, work, f"cpu-round{k}")
                if rk["rc"] == 0:
                    cycles.append(rk["cpu_s"])
                jpasses.append(jsonc_baseline(bins, files, 1)["cpu_s_min_pass"])
            if not profile:  # a profile keeps the bodies, e.g. for callgrind on jsonc_parse
                shutil.rmtree(pages, ignore_errors=True)
            cyc, jc = min(cycles), min(jpasses)
            row["cpu_cycles_s"] = cycles
            row["jsonc_passes_s"] = jpasses
            row["cpu_cycle_min_s"] = cyc
            row["jsonc"]["cpu_s_min_pass"] = jc
            row["cpu_vs_jsonc"] = cyc / jc if jc > 0 else None
            log(f"  CPU: rolesyncd {cyc:.3f} s (cheapest of {len(cycles)} cycles: "
                f"{', '.join(f'{x:.2f}' for x in cycles)}) / json-c {jc:.3f} s (cheapest of "
                f"{len(jpasses)} runs) = {row['cpu_vs_jsonc']:.2f}")
    return row


# ------------------------------------------------------------------------------------------
# B8: fan-out

def run_fanout_scenario(sc, bins, work, quick, log, sizes=None):
    """One job, `targets` targets (each the source's twin drifted 2 %), one cycle.

    Bounds from the fixtures (model.py): requests_min = the source's read pages (the union of
    the targets' needs: the targets are twins, so one target's) + per target its read pages and
    minimal writes. t_latency has the fan-out's shape: the source read and the targets' reads
    run at once, each tenant with its own max_connections, so
        t_latency = latency x (3 + ceil(source pages / C) + max over targets
                               ceil((target pages + writes) / C)).
    The bar of its own: the source's requests in the cycle over those of one source read (a
    dry run of a single-target job on the same source) = exactly 1.0."""
    users, roles = sizes or (QUICK_SIZES["B8"] if quick else (sc["users"], sc["roles"]))
    ntg = sc["targets"] if not quick or sizes else 3
    C = MAX_CONNECTIONS
    row = {"id": sc["id"], "title": sc["title"], "latency_ms": sc["latency"], "rate_per_min": None,
           "users": users, "custom_roles": roles, "targets": ntg, "notes": []}
    src_path = gen_file(os.path.join(work, "src.json"), api="genesys", users=users, roles=roles,
                        seed=81, divisions=5, groups=20)
    tgt_paths = [gen_file(os.path.join(work, f"t{i}.json"), same_as=src_path, seed=100 + i,
                          drift=2) for i in range(ntg)]
    src_state = load(src_path)
    plans = []
    for p in tgt_paths:
        plan, S, T = model.desired_plan(src_state, load(p), definitions=True)
        plans.append((plan, S, T, model.bounds(plan, S, T, 0, C, None)))
    src_pages = model.read_pages(plans[0][1], plans[0][0], "src")
    per_tgt = [model.read_pages(T, plan, "tgt") + b["writes_min"] for plan, S, T, b in plans]
    rmin = src_pages + sum(per_tgt)
    bound = sc["latency"] / 1000.0 * (3 + math.ceil(src_pages / C) +
                                      max(math.ceil(n / C) for n in per_tgt))
    row["bound"] = {"requests_min": rmin, "source_pages": src_pages, "target_min": per_tgt,
                    "writes_min": sum(b["writes_min"] for *_, b in plans), "t_latency_s": bound}
    log(f"  fixtures: {users} users, {roles} custom roles, {ntg} targets; min {rmin} requests")
    with contextlib.ExitStack() as stack:
        kw = {"latency": sc["latency"]}
        src = stack.enter_context(simlib.Sim("genesys", state=src_path, **kw))
        dsts = [stack.enter_context(simlib.Sim("genesys", state=p, **kw)) for p in tgt_paths]
        tenants = {"src": tenant_entry(src)}
        tenants.update({f"t{i}": tenant_entry(d) for i, d in enumerate(dsts)})
        job = job_entry("b8", "src", [f"t{i}" for i in range(ntg)])
        cfg = rsconfig.write_config(os.path.join(work, "conf"), tenants, [job],
                                    log_level="info", http=http_block(None))
        one = dict(job, target="t0", name="one")
        cfg1 = rsconfig.write_config(os.path.join(work, "conf1"),
                                     {"src": tenants["src"], "t0": tenants["t0"]}, [one],
                                     log_level="info", http=http_block(None))
        src.reset_stats()
        run_rolesyncd(cfg1, work, "one-read", ["--dry-run"])
        one_read = sim_counts([src])["api"]
        for s in [src] + dsts:
            s.reset_stats()
        r1 = run_rolesyncd(cfg, work, "cycle1")
        c1 = sim_counts([src] + dsts)
        src_reads = sim_counts([src])["api"]
        row.update(cycle1=r1, requests=c1, one_read=one_read, source_requests=src_reads,
                   target_requests=[sim_counts([d])["api"] for d in dsts])
        if r1["rc"] != 0:
            row["notes"].append(f"cycle 1 exited {r1['rc']}: {tail(r1['log'], 600)}")
        bad = []
        for i, (d, (plan, S, T, b)) in enumerate(zip(dsts, plans)):
            problems = model.check_target(plan, S, T, d.state(), definitions=True)
            if problems:
                bad.append(f"t{i}: " + "; ".join(problems))
        row["correct"] = not bad
        row["problems"] = bad
        for s in [src] + dsts:
            s.reset_stats()
        r2 = run_rolesyncd(cfg, work, "cycle2")
        c2 = sim_counts([src] + dsts)
        row["cycle2"] = {"rc": r2["rc"], "wall_s": r2["wall_s"], "cpu_s": r2["cpu_s"],
                         "writes": c2["writes"], "requests": c2["api"]}
    log(f"  cycle 1: rc {r1['rc']}, {r1['wall_s']:.2f} s wall, {c1['api']} requests (min "
        f"{rmin}); source {src_reads} / one read {one_read}; cycle 2: {c2['writes']} writes")
    return row


def fmt_fanout_row(r):
    b, c, r1 = r["bound"], r["requests"], r["cycle1"]
    rq = c["api"] / b["requests_min"]
    wr = r1["wall_s"] / b["t_latency_s"]
    sr = r["source_requests"] / r["one_read"] if r["one_read"] else float("nan")
    w2 = r["cycle2"]["writes"]
    rss = r1["maxrss_mib"] if r1["maxrss_mib"] is not None else r1["vmhwm_polled_mib"]
    return (f"| {r['id']} {r['title']} | {c['api']} / {b['requests_min']} = {rq:.3f} "
            f"{mark(rq <= BAR_REQUESTS)} | {r1['wall_s']:.2f} | {b['t_latency_s']:.2f} "
            f"(t_latency, fan-out) | {wr:.2f} {mark(wr <= BAR_LATENCY)} | {w2} {mark(w2 == 0)} "
            f"| {r1['cpu_s']:.2f} | — | {rss if rss is not None else float('nan'):.1f} "
            f"| source requests / one source read = {r['source_requests']} / {r['one_read']} = "
            f"{sr:.2f} {mark(r['source_requests'] == r['one_read'])} (= 1.0); "
            f"{'every target correct' if r['correct'] else '**a target WRONG**'} |")


# ------------------------------------------------------------------------------------------
# B6: the idle daemon

def proc_cpu(pid):
    """(utime+stime seconds from /proc/PID/stat, on-CPU seconds from /proc/PID/schedstat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    stat_s = (int(fields[11]) + int(fields[12])) / tck  # fields 14, 15 of proc(5)
    sched = None
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            sched = int(f.read().split()[0]) / 1e9
    except OSError:
        pass
    return stat_s, sched


def run_idle_scenario(sc, bins, work, quick, log):
    users, roles = QUICK_SIZES["B6"] if quick else (sc["users"], sc["roles"])
    idle = QUICK_IDLE if quick else sc["idle"]
    row = {"id": "B6", "title": sc["title"], "users": users, "custom_roles": roles,
           "idle_s": idle, "notes": []}
    g = gen_file(os.path.join(work, "g.json"), api="genesys", users=users, roles=roles, seed=21)
    g1 = gen_file(os.path.join(work, "g1.json"), same_as=g, seed=22, drift=1)
    g2 = gen_file(os.path.join(work, "g2.json"), same_as=g, seed=23, no_custom_roles=True)
    i = gen_file(os.path.join(work, "i.json"), api="identity", users=users, roles=roles, seed=24)
    i1 = gen_file(os.path.join(work, "i1.json"), same_as=i, seed=25, drift=1)
    with contextlib.ExitStack() as stack:
        sims = {n: stack.enter_context(simlib.Sim(api, state=p))
                for n, api, p in (("gsrc", "genesys", g), ("gdst1", "genesys", g1),
                                  ("gdst2", "genesys", g2), ("isrc", "identity", i),
                                  ("idst", "identity", i1))}
        cfg = rsconfig.write_config(
            os.path.join(work, "conf"),
            tenants={n: tenant_entry(s) for n, s in sims.items()},
            jobs=[job_entry("g-to-g1", "gsrc", "gdst1"), job_entry("g-to-g2", "gsrc", "gdst2"),
                  job_entry("i-to-i1", "isrc", "idst")],
            log_level="info", http=http_block(None))
        state_dir = os.path.join(work, "conf", "state")
        d = simlib.Daemon(cfg)
        d.start()
        try:
            deadline = time.monotonic() + 180
            done = False
            while time.monotonic() < deadline and d.running():
                try:
                    st = load(os.path.join(state_dir, "status.json"))
                    jobs = st.get("jobs", {})
                    done = len(jobs) == 3 and all(
                        j.get("state") == "idle" and (j.get("last_run") or {}).get("finished_at")
                        for j in jobs.values())
                except (OSError, ValueError):
                    pass
                if done:
                    break
                time.sleep(0.2)
            if not done:
                why = "exited " + str(d.proc.poll()) if not d.running() else \
                    "no status with 3 finished jobs within 180 s"
                row["unavailable"] = f"daemon mode: {why}; log: {d.log_text()[-800:]}"
                log(f"  B6 unavailable: {why}")
                return row
            row["first_cycles"] = {n: (j.get("last_run") or {}).get("result")
                                   for n, j in st["jobs"].items()}
            time.sleep(2)  # let the last status write and log line settle
            for s in sims.values():
                s.reset_stats()
            a_stat, a_sched = proc_cpu(d.pid)
            time.sleep(idle)
            b_stat, b_sched = proc_cpu(d.pid)
            row["idle_cpu_ms_stat"] = (b_stat - a_stat) * 1000
            row["idle_cpu_ms_schedstat"] = (b_sched - a_sched) * 1000 \
                if a_sched is not None else None
            row["idle_requests"] = sum(s.stats().get("total", 0) for s in sims.values())
            with open(f"/proc/{d.pid}/status") as f:
                for ln in f:
                    if ln.startswith(("VmRSS", "VmHWM")):
                        row[ln.split(":")[0]] = ln.split(":")[1].strip()
            log(f"  idle {idle} s: {row['idle_cpu_ms_stat']:.0f} ms (stat), "
                f"{row['idle_cpu_ms_schedstat'] or 0:.1f} ms (schedstat), "
                f"{row['idle_requests']} requests")
        finally:
            rc = d.stop()
            row["stop_rc"] = rc
            if rc != 0:
                row["notes"].append(f"daemon exited {rc} on SIGTERM")
            shutil.rmtree(d.dir, ignore_errors=True)
    return row


# ------------------------------------------------------------------------------------------
# Report

def mark(ok):
    return "ok" if ok else "**MISS**"


def fmt_row(r):
    if r["id"] == "B8":
        return fmt_fanout_row(r)
    if r["id"] == "B6":
        if "unavailable" in r:
            return (f"| B6 {r['title']} | — | — | — | — | — | — | — | — "
                    f"| idle CPU: unavailable |")
        ms = r["idle_cpu_ms_stat"]
        per60 = ms * 60.0 / r["idle_s"]
        sched = r.get("idle_cpu_ms_schedstat")
        sched_txt = f"{sched:.1f} ms" if sched is not None else "n/a"
        return (f"| B6 {r['title']} | {r['idle_requests']} requests while idle | — | — | — | — "
                f"| — | — | {r.get('VmRSS', '—')} | idle CPU {ms:.0f} ms over {r['idle_s']} s "
                f"(schedstat {sched_txt}) {mark(per60 <= BAR_IDLE_MS)} (≤ 50 ms / 60 s) |")
    b, c, r1 = r["bound"], r["requests"], r["cycle1"]
    rq = c["api"] / b["requests_min"]
    if r["rate_per_min"]:
        bound, bname, bar = b["t_rate_s"], "t_rate", BAR_RATE
    else:
        bound, bname, bar = b["t_latency_s"], "t_latency", BAR_LATENCY
    wr = r1["wall_s"] / bound if bound else None
    wr_txt = f"{wr:.2f} {mark(wr <= bar)}" if wr is not None else "— (latency 0)"
    extra = []
    if r.get("cpu_vs_jsonc") is not None:
        extra.append(f"CPU / json-c = {r['cpu_cycle_min_s']:.2f} / "
                     f"{r['jsonc']['cpu_s_min_pass']:.2f} = {r['cpu_vs_jsonc']:.2f} "
                     f"{mark(r['cpu_vs_jsonc'] <= BAR_CPU_JSONC)} (≤ 2.0)")
    jc = r.get("jsonc", {}).get("cpu_s_min_pass")
    fo = r.get("fetch_only_s")
    if wr is not None and fo and wr > bar:
        # The bound counts round trips only, not bytes: beside a MISS, what a client that
        # parses nothing needs here (fetch_only_wall).
        extra.append(f"fetch-only client {fo:.2f} s = {fo / bound:.1f} x {bname}")
    rss = r1["maxrss_mib"] if r1["maxrss_mib"] is not None else r1["vmhwm_polled_mib"]
    if r["id"] in ("B5", "B9") and rss is not None:
        rbar = 160.0 if r["id"] == "B9" else BAR_RSS_MIB
        extra.append(f"RSS {mark(rss <= rbar)} (≤ {rbar:.0f})")
    extra.append("target correct" if r["correct"] else "**target WRONG**")
    w2 = r["cycle2"]["writes"]
    return (f"| {r['id']} {r['title']} | {c['api']} / {b['requests_min']} = {rq:.3f} "
            f"{mark(rq <= BAR_REQUESTS)} | {r1['wall_s']:.2f} "
            f"| {bound:.2f} ({bname}) | {wr_txt} | {w2} {mark(w2 == 0)} | {r1['cpu_s']:.2f} "
            f"| {jc if jc is not None else float('nan'):.2f} "
            f"| {rss if rss is not None else float('nan'):.1f} | {'; '.join(extra)} |")


def fmt_detail(r):
    if r["id"] in ("B6", "B8") or "bound" not in r:
        return None
    b, c, r1 = r["bound"], r["requests"], r["cycle1"]
    bound = b["t_rate_s"] if r["rate_per_min"] else b["t_latency_s"]
    jc = r.get("jsonc", {}).get("cpu_s_min_pass") or 0.0
    return (f"| {r['id']} | {r['users']} / {r['custom_roles']} | {r['latency_ms']} ms"
            f"{', ' + str(r['rate_per_min']) + '/min' if r['rate_per_min'] else ''} "
            f"| {c.get('reads', '?')} / {b['read_pages']} "
            f"| {b['writes_min']} ({b['role_writes']} role + "
            f"{b['assignment_writes']} {b['assignment_strategy']}) | {c['writes']} "
            f"| {c['tokens']} | {b['changed_users']} (+{b['pairs_added']} / -{b['pairs_removed']}) "
            f"| {c['max_in_flight']} | {c['http_429']} | {r.get('sims_cpu_s', 0):.2f} "
            f"| {r1['wall_s'] / (bound + jc):.2f} |")


def machine():
    cpu = "?"
    mem = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    cpu = ln.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            for ln in f:
                if ln.startswith("MemTotal"):
                    mem = f"{int(ln.split()[1]) / 1024 / 1024:.1f} GiB"
                    break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory": mem,
            "kernel": platform.release(), "python": platform.python_version()}


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def git_rev():
    try:
        rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
        return rev.strip() + ("+dirty" if dirty.strip() else "")
    except OSError:
        return "?"


def report(rows, meta):
    m = meta["machine"]
    lines = [f"rolesyncd benchmarks ({'quick' if meta['quick'] else 'full'}), "
             f"{meta['date']}, rev {meta['rev']}, {meta['total_s']:.0f} s",
             f"machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']} RAM, Linux {m['kernel']}; "
             f"load average at start / end: {meta['load_start']} / {meta['load_end']}",
             "",
             "| scenario | requests issued / min (≤ 1.05) | wall s | bound s | wall / bound "
             "(≤ 1.25 rate, ≤ 2.0 latency) | 2nd-cycle writes | CPU s | json-c s "
             "| peak RSS MiB | other |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [fmt_row(r) for r in rows]
    details = [d for d in (fmt_detail(r) for r in rows) if d]
    if details:
        lines += ["", "| scenario | users / custom roles | sim | reads issued / min "
                  "| writes min | writes issued | token requests | changed users (pairs) "
                  "| max in flight | 429s | simulators' CPU s | wall / (bound + json-c s) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"] + details
    notes = [f"- {r['id']}: {n}" for r in rows for n in r.get("notes", [])]
    notes += [f"- {r['id']}: {p}" for r in rows for p in r.get("problems", [])]
    notes += [f"- B6: {r['unavailable']}" for r in rows if "unavailable" in r]
    if notes:
        lines += ["", "Notes:"] + notes
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="comma-separated scenario ids (B1 covers B1 and B1-rl)")
    ap.add_argument("--quick", action="store_true", help="small fixtures, short idle window")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--no-build", action="store_true", help="use the binaries as they are")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (fixtures, "
                    "logs, saved pages) and print its path")
    ap.add_argument("--results", default=os.path.join(HERE, "results"))
    ap.add_argument("--profile", choices=("perf", "callgrind"),
                    help="run each measured cycle under perf record -g or callgrind (implies "
                    "--keep; results go to results/profile.md, not latest)")
    args = ap.parse_args()

    if args.profile:
        args.keep = True
    want = None
    if args.only:
        want = {x.strip().upper() for x in args.only.split(",") if x.strip()}
        known = {sc["id"].upper() for sc in FULL}
        bad = want - known - {"B1"}
        if bad:
            sys.exit(f"bench: unknown scenario(s) {', '.join(sorted(bad))}")
    scen = [sc for sc in FULL if want is None or sc["id"].upper() in want
            or sc["id"].split("-")[0].upper() in want]

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    try:
        bins = build(os.path.abspath(args.build_dir), args.no_build)
    except (subprocess.CalledProcessError, OSError) as e:
        sys.exit(f"bench: the build failed ({e}); fix it, or run with --no-build to use the "
                 f"binaries already in {args.build_dir}")
    work = tempfile.mkdtemp(prefix="rolesync-bench-")
    t0 = time.monotonic()
    load_start = loadavg()
    rows = []
    try:
        for sc in scen:
            log(f"{sc['id']}: {sc['title']}")
            d = os.path.join(work, sc["id"])
            os.makedirs(d)
            try:
                if sc["kind"] == "idle":
                    rows.append(run_idle_scenario(sc, bins, d, args.quick, log))
                elif sc["kind"] == "fanout":
                    rows.append(run_fanout_scenario(sc, bins, d, args.quick, log))
                else:
                    rows.append(run_cycle_scenario(sc, bins, d, args.quick, log, args.profile))
            except (RuntimeError, simlib.SimError, model.ModelError, OSError,
                    subprocess.SubprocessError) as e:
                log(f"  {sc['id']} could not run: {e}")
                rows.append({"id": sc["id"], "title": sc["title"], "error": str(e)})
            if not args.keep:
                shutil.rmtree(d, ignore_errors=True)
    finally:
        if args.keep:
            log(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    ok_rows = [r for r in rows if "error" not in r]
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "rev": git_rev(), "quick": args.quick, "machine": machine(),
            "total_s": time.monotonic() - t0, "max_connections": MAX_CONNECTIONS,
            "load_start": load_start, "load_end": loadavg()}
    text = report(ok_rows, meta)
    for r in rows:
        if "error" in r:
            text += f"- {r['id']}: could not run: {r['error']}\n"
    print(text)
    os.makedirs(args.results, exist_ok=True)
    name = "profile" if args.profile else "latest-quick" if args.quick else "latest"
    with open(os.path.join(args.results, name + ".md"), "w", encoding="utf-8") as f:
        f.write(text)
    with open(os.path.join(args.results, name + ".json"), "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
