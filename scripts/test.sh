#!/usr/bin/env bash
# Runs retort's whole test suite in four phases, each in its own build directory:
#   normal  build/       the whole suite (RelWithDebInfo, g++)
#   asan    build-asan/  the whole suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   tsan    build-tsan/  the concurrent parts (label `integration`) under ThreadSanitizer
#   fuzz    build-fuzz/  every libFuzzer target for RETORT_FUZZ_SECONDS (clang, label `fuzz`)
# Any sanitizer report fails the run. Prints the time of every phase at the end.
# Usage: scripts/test.sh            env: JOBS=N (parallelism, default 2),
#        PHASES="normal asan tsan fuzz"  (default: all four, in this order; any subset runs
#        on request, see docs/testing.md), RETORT_FUZZ_SECONDS=N (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
scripts/install-deps.sh
JOBS=${JOBS:-2}
PHASES=${PHASES:-normal asan tsan fuzz}
FUZZ_SECONDS=${RETORT_FUZZ_SECONDS:-30}

# Every sanitizer report is fatal; child processes (the retort binary spawned by the e2e
# tests, fuzz targets) inherit these settings.
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$ROOT/tests/tsan.supp"

declare -a TIMES=()
phase() {  # <name> <function>
  local name=$1 start end
  shift
  echo "== $name: start $(date -u +%H:%M:%S)"
  start=$(date +%s)
  "$@"
  end=$(date +%s)
  TIMES+=("$name $((end - start))s")
  echo "== $name: passed in $((end - start))s"
}

build() {  # <dir> <cmake args...>
  local dir=$1
  shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j "$JOBS"
}

normal() {
  build build
  (cd build && ctest --output-on-failure --no-tests=error -j "$JOBS")
}

asan() {
  build build-asan -DRETORT_SANITIZE=address,undefined
  (cd build-asan && ctest --output-on-failure --no-tests=error -j "$JOBS")
}

tsan() {
  cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRETORT_SANITIZE=thread >/dev/null
  cmake --build build-tsan -j "$JOBS" --target retort_integration_tests  # only what it runs
  # The concurrent parts: harvest engine, transport, simulator, service, end-to-end runs.
  (cd build-tsan && ctest --output-on-failure --no-tests=error -j "$JOBS" -L integration)
}

fuzz() {
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRETORT_BUILD_TESTS=OFF \
    -DRETORT_BUILD_FUZZ=ON -DRETORT_FUZZ_SECONDS="$FUZZ_SECONDS" >/dev/null
  cmake --build build-fuzz -j "$JOBS" --target fuzz_all
  # One target at a time: each libFuzzer run is single-threaded and time-bounded, JOBS of them in parallel.
  (cd build-fuzz && ctest --output-on-failure --no-tests=error -j "$JOBS" -L fuzz)
}

for p in $PHASES; do
  case $p in
    normal | asan | tsan | fuzz) phase "$p" "$p" ;;
    *) echo "unknown phase '$p' (normal, asan, tsan, fuzz)" >&2; exit 2 ;;
  esac
done
echo "== all phases passed: ${TIMES[*]}"
