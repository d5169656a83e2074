#!/usr/bin/env bash
# Build the libFuzzer targets (tests/fuzz/fuzz_*.c) with clang + ASan/UBSan in build-fuzz/ and
# run each for a bounded time.
#   scripts/fuzz.sh [--seconds N]     N seconds per target (default 30)
# Seeds come from tests/fuzz/corpus/<name>/ (read-only); new inputs go to
# build-fuzz/corpus/<name>/, crashes to build-fuzz/artifacts/<target>-*. Exits non-zero when any
# target finds a crash, leak, sanitizer report or timeout.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=30
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) seconds=${2:?--seconds needs a number}; shift ;;
    --seconds=*) seconds=${1#--seconds=} ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--seconds N]" >&2; exit 1 ;;
    esac
    shift
done
case "$seconds" in ''|*[!0-9]*) echo "fuzz: --seconds needs a whole number" >&2; exit 1 ;; esac

if ! command -v clang >/dev/null 2>&1; then
    echo "fuzz: clang is required (scripts/setup.sh installs it)" >&2
    exit 1
fi

builddir=build-fuzz
targets=()
for src in tests/fuzz/fuzz_*.c; do
    [ -e "$src" ] || continue
    targets+=("$(basename "$src" .c)")
done
if [ ${#targets[@]} -eq 0 ]; then
    echo "fuzz: no targets in tests/fuzz/" >&2
    exit 1
fi

# -Wno-unknown-warning-option: the project also passes gcc-only warning switches
CC=clang cmake -S . -B "$builddir" -DROLESYNC_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS="-Wno-unknown-warning-option" >/dev/null
cmake --build "$builddir" -j2 --target "${targets[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# The config fuzzer may name environment variables; keep systemd's out of its way.
unset CREDENTIALS_DIRECTORY STATE_DIRECTORY

failed=()
mkdir -p "$builddir/artifacts"
for t in "${targets[@]}"; do
    name=${t#fuzz_}
    seeds=tests/fuzz/corpus/$name
    work=$builddir/corpus/$name
    mkdir -p "$work"
    args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384
          -print_final_stats=1 -artifact_prefix="$builddir/artifacts/$t-")
    [ -f "tests/fuzz/$t.dict" ] && args+=(-dict="tests/fuzz/$t.dict")
    dirs=("$work")
    [ -d "$seeds" ] && dirs+=("$seeds")
    log=$builddir/$t.log
    echo "== $t: ${seconds}s"
    if "$builddir/tests/fuzz/$t" "${args[@]}" "${dirs[@]}" >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
        echo "   ok: ${runs:-?} executions, ${cov:-cov: ?}"
    else
        echo "   FAILED (log: $log)" >&2
        grep -E 'ERROR|SUMMARY|Test unit written|^\*\*\*|^input |^NEW |^OLD |^    #[0-9]' "$log" | head -40 >&2 || true
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -ne 0 ]; then
    echo "fuzz: findings in: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: all ${#targets[@]} target(s) clean"
