#!/usr/bin/env python3
"""bench/b8.py — B8 of spec/performance.md: fan-out, one source, ten targets in one job.

    python3 bench/b8.py [--users 10000] [--roles 100] [--targets 10] [--latency 20] [--no-build]

Fixture: a genesys source of N users and R custom roles with divisions; each target is the
source's twin with 2 % of its users' roles drifted (`tenantsim gen --same-as --drift 2`). Every
simulator serves with the given latency. Measured: the source's API requests during the fan-out
cycle over the requests of one source read (a dry run of a single-target job on the same
source), which the bar holds at exactly 1.0; the cycle's wall time over a latency bound; the
writes of a second cycle (bar: 0); and that every target ends equal to the source (direct
grants by (role, division), rsconfig.user_grants).

The latency bound is the spec's t_latency with the fan-out's shape: the source read and the
targets' reads run at once, each tenant with its own max_connections, so
    t_latency = latency x (3 + ceil(source_reads / C) + max over targets ceil((reads + writes) / C))
where reads and writes are the requests the simulators answered (an upper estimate of the
minimum: the wall ratio is then a lower estimate). B7's and B9's v2 read formula (subject
grants pages, cursor pages) is not in bench/run.py yet; see bench/README.md.
"""

import argparse
import contextlib
import math
import os
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run as bench  # noqa: E402  (bench/run.py: build, gen_file, run_rolesyncd, sim_counts)
import rsconfig  # noqa: E402
import simlib  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=10000)
    ap.add_argument("--roles", type=int, default=100)
    ap.add_argument("--targets", type=int, default=10)
    ap.add_argument("--latency", type=int, default=20)
    ap.add_argument("--build-dir", default=os.path.join(bench.ROOT, "build-bench"))
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    bench.build(os.path.abspath(a.build_dir), a.no_build)
    work = tempfile.mkdtemp(prefix="rolesync-b8-")
    C = bench.MAX_CONNECTIONS
    try:
        src_path = bench.gen_file(os.path.join(work, "src.json"), api="genesys", users=a.users,
                                  roles=a.roles, seed=81, divisions=6, groups=20)
        tgt_paths = [bench.gen_file(os.path.join(work, f"t{i}.json"), same_as=src_path,
                                    seed=100 + i, drift=2) for i in range(a.targets)]
        with contextlib.ExitStack() as stack:
            kw = {"latency": a.latency}
            src = stack.enter_context(simlib.Sim("genesys", state=src_path, **kw))
            dsts = [stack.enter_context(simlib.Sim("genesys", state=p, **kw)) for p in tgt_paths]
            tenants = {"src": bench.tenant_entry(src)}
            tenants.update({f"t{i}": bench.tenant_entry(d) for i, d in enumerate(dsts)})
            job = bench.job_entry("b8", "src", [f"t{i}" for i in range(a.targets)])
            cfg = rsconfig.write_config(os.path.join(work, "conf"), tenants, [job],
                                        log_level="info", http=bench.http_block(None))
            one = dict(job, target="t0", name="one")
            cfg1 = rsconfig.write_config(os.path.join(work, "conf1"),
                                         {"src": tenants["src"], "t0": tenants["t0"]}, [one],
                                         log_level="info", http=bench.http_block(None))
            src.reset_stats()
            bench.run_rolesyncd(cfg1, work, "one-read", ["--dry-run"])
            one_read = bench.sim_counts([src])["api"]
            for s in [src] + dsts:
                s.reset_stats()
            r1 = bench.run_rolesyncd(cfg, work, "cycle1")
            src_reads = bench.sim_counts([src])["api"]
            per_target = [bench.sim_counts([d])["api"] for d in dsts]
            writes1 = sum(bench.sim_counts([d])["writes"] for d in dsts)
            bound = a.latency / 1000.0 * (3 + math.ceil(src_reads / C) +
                                          max(math.ceil(n / C) for n in per_target))
            want = rsconfig.user_grants(src.state())
            wrong = sum(1 for d in dsts if any(rsconfig.user_grants(d.state()).get(e) != g
                                               for e, g in want.items()))
            for s in [src] + dsts:
                s.reset_stats()
            r2 = bench.run_rolesyncd(cfg, work, "cycle2")
            writes2 = sum(bench.sim_counts([d])["writes"] for d in dsts)
        print(f"B8 fan-out: {a.users} users, {a.roles} roles, {a.targets} targets, "
              f"latency {a.latency} ms, max_connections {C}, load {bench.loadavg()}")
        print(f"  cycle 1: rc {r1['rc']}, wall {r1['wall_s']:.2f} s, CPU {r1['cpu_s']:.2f} s, "
              f"peak RSS {r1['maxrss_mib']} MiB, writes {writes1}")
        print(f"  source requests in the cycle {src_reads} / one source read {one_read} = "
              f"{src_reads / one_read:.2f} (bar 1.0)")
        print(f"  wall / t_latency {bound:.2f} s = {r1['wall_s'] / bound:.2f} (bar 2.0)")
        print(f"  targets not equal to the source afterwards: {wrong}")
        print(f"  cycle 2: rc {r2['rc']}, writes {writes2} (bar 0), wall {r2['wall_s']:.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
