#!/usr/bin/env bash
# Builds the libFuzzer targets (clang; tests/fuzz/CMakeLists.txt) and runs each for a bounded time.
#   tests/fuzz/run.sh [seconds] [target...]
# seconds (default 25) per target; 0 only replays. Every target first replays its committed seed
# corpus (corpus/<target>/) and regression inputs (regressions/<target>/): any crash fails the run.
# New inputs the fuzzer finds go to <build>/corpus/<target>/, never into the committed corpus. A
# crash leaves its input in <build>/artifacts/<target>/; once fixed, commit it to
# regressions/<target>/ so every later run replays it.
# Environment: EDGEPRUNE_FUZZ_BUILD_DIR (default <repo>/build-fuzz), EDGEPRUNE_JOBS.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BUILD="${EDGEPRUNE_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
SECONDS_EACH="${1:-25}"
shift || true

if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
  GEN=()
  if command -v ninja >/dev/null 2>&1; then GEN=(-G Ninja); fi
  if command -v ccache >/dev/null 2>&1; then
    GEN+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    export CCACHE_BASEDIR="$ROOT" CCACHE_NOHASHDIR=true
  fi
  cmake -S "$HERE" -B "$BUILD" "${GEN[@]}" -DCMAKE_CXX_COMPILER=clang++ >/dev/null
fi
cmake --build "$BUILD" -j "${EDGEPRUNE_JOBS:-$(nproc)}"

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then mapfile -t targets < "$BUILD/fuzzers.txt"; fi

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$HERE/lsan.supp:print_suppressions=0}"
summary=()
for t in "${targets[@]}"; do
  bin="$BUILD/fuzz_$t"
  [[ -x "$bin" ]] || { echo "run.sh: no fuzz target '$t'" >&2; exit 2; }
  seeds="$HERE/corpus/$t"
  work="$BUILD/corpus/$t"
  artifacts="$BUILD/artifacts/$t/"
  mkdir -p "$work" "$artifacts"
  # Regressions: each committed crash input, once.
  if compgen -G "$HERE/regressions/$t/*" >/dev/null; then
    "$bin" -runs=1 "$HERE/regressions/$t/"* >"$BUILD/$t.replay.log" 2>&1 ||
      { cat "$BUILD/$t.replay.log"; echo "run.sh: $t: a regression input fails again" >&2; exit 1; }
  fi
  log="$BUILD/$t.log"
  if [[ "$SECONDS_EACH" == 0 ]]; then
    args=(-runs=0)
  else
    args=(-max_total_time="$SECONDS_EACH")
  fi
  if ! "$bin" "${args[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$artifacts" "$work" "$seeds" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "run.sh: $t found a crash; its input is in $artifacts — fix it and commit the input to" \
         "tests/fuzz/regressions/$t/" >&2
    exit 1
  fi
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
  [[ -n "$done_line" ]] || done_line=$(grep -E '^#[0-9]+[[:space:]]' "$log" | tail -n 1 || true)
  execs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  cov=$(grep -oE 'cov: [0-9]+' <<<"$done_line" | grep -oE '[0-9]+' || echo ?)
  ft=$(grep -oE 'ft: [0-9]+' <<<"$done_line" | grep -oE '[0-9]+' || echo ?)
  corp=$(grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]+' <<<"$done_line" | cut -d' ' -f2 || echo ?)
  summary+=("$(printf '%-16s %12s %8s %8s %12s' "$t" "$execs" "$cov" "$ft" "$corp")")
done
printf '%-16s %12s %8s %8s %12s\n' target executions cov ft corpus
printf '%s\n' "${summary[@]}"
