#!/usr/bin/env bash
# The one test command: installs what is missing (Debian 12 packages), builds, runs every test.
#   1. every GoogleTest suite through CTest (build dir: $EDGEPRUNE_BUILD_DIR, default build/);
#   2. the LibTorch-free suites (common, http, store) again under AddressSanitizer and
#      UndefinedBehaviorSanitizer (<build>-asan/);
#   3. the libFuzzer targets (clang, <build>-fuzz/): committed corpora and regression inputs
#      replayed, then EDGEPRUNE_FUZZ_SECONDS (default 20) of fuzzing each;
#   4. only when asked ("tsan"): the HTTP and store suites under ThreadSanitizer (<build>-tsan/).
#      Not in the default run: it would add a third sanitizer build to a fresh machine's test
#      command, which must stay under an hour; docs/benchmarks/server.md has its last result.
# EDGEPRUNE_TEST_STEPS picks steps ("suites,asan,fuzz" by default).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${EDGEPRUNE_BUILD_DIR:-$ROOT/build}"
STEPS=",${EDGEPRUNE_TEST_STEPS:-suites,asan,fuzz},"
JOBS="${EDGEPRUNE_TEST_JOBS:-2}"
start=$(date +%s)
took() { echo "test.sh: $1 took $(( $(date +%s) - $2 )) s"; }
"$ROOT/deploy/bootstrap.sh"
# The layer rules of docs/architecture.md, checked before anything is built (prints the graph).
python3 "$ROOT/tools/check_architecture.py"

if [[ "$STEPS" == *,suites,* ]]; then
  t=$(date +%s)
  "$ROOT/deploy/build.sh"
  (cd "$BUILD_DIR" && ctest --output-on-failure --timeout 600 -j "$JOBS")
  took "build and suites" "$t"
fi

# sanitized_suites <dir suffix> <sanitizers> <build type> <targets…>: a LibTorch-free build with
# the sanitizers, then those suites through CTest (the others are placeholders, …_NOT_BUILT).
sanitized_suites() {
  local dir="${BUILD_DIR%/}-$1" sanitizers="$2" build_type="$3"
  shift 3
  if [[ ! -f "$dir/CMakeCache.txt" ]]; then
    local gen=()
    if command -v ninja >/dev/null 2>&1; then gen=(-G Ninja); fi
    if command -v ccache >/dev/null 2>&1; then
      gen+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
      export CCACHE_BASEDIR="$ROOT" CCACHE_NOHASHDIR=true
    fi
    cmake -S "$ROOT" -B "$dir" "${gen[@]}" -DCMAKE_BUILD_TYPE="$build_type" \
      -DEDGEPRUNE_SANITIZER="$sanitizers" -DEDGEPRUNE_TORCH_FREE_TESTS=ON
  fi
  cmake --build "$dir" -j "${EDGEPRUNE_JOBS:-$(nproc)}" --target "$@"
  # The end-to-end tests (e2e, e2e.*) need the LibTorch build: not here.
  (cd "$dir" && ctest --output-on-failure --timeout 600 -j "$JOBS" -E '_NOT_BUILT$|^e2e(\.|$)')
}

if [[ "$STEPS" == *,asan,* ]]; then
  t=$(date +%s)
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
  # Debug (-O0): GCC with ASan at -O2 -g spends over 15 minutes on one Beast-heavy file.
  sanitized_suites asan address,undefined Debug common_tests common_http_tests server_store_tests
  took "sanitizer build and suites" "$t"
fi

if [[ "$STEPS" == *,tsan,* ]]; then
  t=$(date +%s)
  export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}"
  sanitized_suites tsan thread RelWithDebInfo common_http_tests server_store_tests
  took "ThreadSanitizer build and suites" "$t"
fi

if [[ "$STEPS" == *,fuzz,* ]]; then
  t=$(date +%s)
  EDGEPRUNE_FUZZ_BUILD_DIR="${BUILD_DIR%/}-fuzz" "$ROOT/tests/fuzz/run.sh" "${EDGEPRUNE_FUZZ_SECONDS:-20}"
  took "fuzzing" "$t"
fi
echo "test.sh: setup, build and tests took $(( $(date +%s) - start )) s"
