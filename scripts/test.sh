#!/usr/bin/env bash
# The README's test command: install what is missing, build, run the whole test suite.
#   scripts/test.sh              normal build in build/
#   scripts/test.sh --sanitize   ASan+UBSan build in build-asan/
# Extra arguments after `--` go to ctest (e.g. -- -R config).
set -euo pipefail
cd "$(dirname "$0")/.."

builddir=build
cmake_args=()
while [ $# -gt 0 ]; do
    case "$1" in
    --sanitize) builddir=build-asan; cmake_args+=(-DROLESYNC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug) ;;
    --) shift; break ;;
    *) echo "usage: $0 [--sanitize] [-- ctest-args]" >&2; exit 1 ;;
    esac
    shift
done

scripts/setup.sh
cmake -S . -B "$builddir" "${cmake_args[@]}" >/dev/null
cmake --build "$builddir" -j"$(nproc)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$builddir"
ctest --output-on-failure -j"$(nproc)" "$@"
