#!/usr/bin/env bash
# Runs retort's whole test suite: a normal build, then an ASan+UBSan build and a TSan build
# of the concurrent parts. Usage: scripts/test.sh   (env JOBS=N to change parallelism)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
JOBS=${JOBS:-2}

run_suite() {  # <build dir> <ctest args...> ; cmake args come from $CMAKE_ARGS
  local dir=$1; shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo $CMAKE_ARGS >/dev/null
  cmake --build "$dir" -j "$JOBS"
  (cd "$dir" && ctest --output-on-failure -j "$JOBS" "$@")
}

echo "== normal build"
CMAKE_ARGS="" run_suite build
