#!/bin/sh
# idle_cpu.sh — CPU time an idle rolesyncd uses: 3 jobs (interval 1h) between two genesys
# tenantsims; after the first cycles, utime+stime from /proc/PID/stat over a window (default
# 60 s). Prints one line: "idle_cpu_seconds=... window_s=... percent=...".
#
# usage: bench/idle_cpu.sh [BUILD_DIR] [WINDOW_SECONDS]     (default build dir: ./build)
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build}
WINDOW=${2:-60}
export ROLESYNCD="$BUILD/rolesyncd" TENANTSIM="$BUILD/tests/sim/tenantsim"
export PYTHONPATH="$SRC/tests/lib${PYTHONPATH:+:$PYTHONPATH}"
exec python3 -B - "$WINDOW" <<'EOF'
import os, sys, tempfile, time
from simlib import Daemon, Sim, gen
from rsconfig import tenant_for, write_config

window = float(sys.argv[1])
tick = os.sysconf("SC_CLK_TCK")

def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick  # utime + stime (fields 14, 15)

src_state = gen("genesys", 200, 20, seed=1)
dst_state = gen("genesys", seed=2, same_as=src_state, drift=10)
with Sim("genesys", state=src_state) as s, Sim("genesys", state=dst_state) as t:
    d = tempfile.mkdtemp(prefix="rs-idle-")
    jobs = [{"name": f"job{i}", "source": "src", "target": "dst", "interval": "1h"}
            for i in range(3)]
    cfg = write_config(d, {"src": tenant_for(s), "dst": tenant_for(t)}, jobs)
    with Daemon(cfg) as dm:
        for i in range(3):
            if not dm.wait_for_log(f"job=job{i} cycle finished", 60):
                sys.exit("first cycles did not finish:\n" + dm.log_text())
        time.sleep(1)
        c0, t0 = cpu_seconds(dm.pid), time.monotonic()
        time.sleep(window)
        c1, t1 = cpu_seconds(dm.pid), time.monotonic()
    used = c1 - c0
    print(f"idle_cpu_seconds={used:.3f} window_s={t1 - t0:.1f} "
          f"percent={100 * used / (t1 - t0):.4f} (clock tick {1 / tick:.3f} s)")
EOF
