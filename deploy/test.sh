#!/usr/bin/env bash
# The one test command: installs what is missing (Debian 12 packages), builds, runs every test.
#   1. every GoogleTest suite through CTest (build dir: $EDGEPRUNE_BUILD_DIR, default build/);
#   2. the LibTorch-free suites (common, http, store) again under AddressSanitizer and
#      UndefinedBehaviorSanitizer (<build>-asan/);
#   3. the libFuzzer targets (clang, <build>-fuzz/): committed corpora and regression inputs
#      replayed, then EDGEPRUNE_FUZZ_SECONDS (default 20) of fuzzing each.
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

if [[ "$STEPS" == *,asan,* ]]; then
  t=$(date +%s)
  ASAN_DIR="${BUILD_DIR%/}-asan"
  if [[ ! -f "$ASAN_DIR/CMakeCache.txt" ]]; then
    GEN=()
    if command -v ninja >/dev/null 2>&1; then GEN=(-G Ninja); fi
    if command -v ccache >/dev/null 2>&1; then
      GEN+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
      export CCACHE_BASEDIR="$ROOT" CCACHE_NOHASHDIR=true
    fi
    # Debug (-O0): GCC with ASan at -O2 -g spends over 15 minutes on one Beast-heavy file.
    cmake -S "$ROOT" -B "$ASAN_DIR" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Debug \
      -DEDGEPRUNE_SANITIZER=address,undefined -DEDGEPRUNE_TORCH_FREE_TESTS=ON
  fi
  cmake --build "$ASAN_DIR" -j "${EDGEPRUNE_JOBS:-$(nproc)}" --target common_tests common_http_tests server_store_tests
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
  # Only the three suites were built; the others' test lists are placeholders (…_NOT_BUILT).
  (cd "$ASAN_DIR" && ctest --output-on-failure --timeout 600 -j "$JOBS" -E '_NOT_BUILT$|^e2e$')
  took "sanitizer build and suites" "$t"
fi

if [[ "$STEPS" == *,fuzz,* ]]; then
  t=$(date +%s)
  EDGEPRUNE_FUZZ_BUILD_DIR="${BUILD_DIR%/}-fuzz" "$ROOT/tests/fuzz/run.sh" "${EDGEPRUNE_FUZZ_SECONDS:-20}"
  took "fuzzing" "$t"
fi
echo "test.sh: setup, build and tests took $(( $(date +%s) - start )) s"
