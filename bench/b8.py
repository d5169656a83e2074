#!/usr/bin/env python3
"""bench/b8.py — B8 of spec/performance.md alone, at any size: fan-out, one source, N targets.

    python3 bench/b8.py [--users 10000] [--roles 100] [--targets 10] [--latency 20] [--no-build]

The scenario is bench/run.py's (run_fanout_scenario, `run.py --only B8` at the spec's size);
this script only lets the fixture be sized. Prints the same table row.
"""

import argparse
import os
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run as bench  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=10000)
    ap.add_argument("--roles", type=int, default=100)
    ap.add_argument("--targets", type=int, default=10)
    ap.add_argument("--latency", type=int, default=20)
    ap.add_argument("--build-dir", default=os.path.join(bench.ROOT, "build-bench"))
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    bins = bench.build(os.path.abspath(a.build_dir), a.no_build)
    sc = dict(next(s for s in bench.FULL if s["id"] == "B8"), targets=a.targets,
              latency=a.latency)
    work = tempfile.mkdtemp(prefix="rolesync-b8-")
    try:
        row = bench.run_fanout_scenario(sc, bins, work, False,
                                        lambda m: print(m, file=sys.stderr, flush=True),
                                        sizes=(a.users, a.roles))
        print(f"load average {bench.loadavg()}")
        print(bench.fmt_fanout_row(row))
        for p in row["problems"] + row["notes"]:
            print(f"- {p}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
