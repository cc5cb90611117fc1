#!/usr/bin/env bash
# Configures and builds edgeprune into ./build (or $EDGEPRUNE_BUILD_DIR). Extra args go to cmake's
# configure step. EDGEPRUNE_BUILD_TARGETS (space-separated) builds only those targets, e.g. the
# quickstart's "edgeprune-server edgeprune-agent edgeprune_agent_torch"; default: everything.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${EDGEPRUNE_BUILD_DIR:-$ROOT/build}"
GEN=()
if command -v ninja >/dev/null 2>&1; then GEN=(-G Ninja); fi
# ccache makes rebuilds and fresh clones on the same machine cheap; paths are hashed relative to
# the checkout so two clones share one cache.
if command -v ccache >/dev/null 2>&1; then
  GEN+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR="$ROOT" CCACHE_NOHASHDIR=true
fi
if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" "${GEN[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
fi
TARGETS=()
for t in ${EDGEPRUNE_BUILD_TARGETS:-}; do TARGETS+=(--target "$t"); done
cmake --build "$BUILD_DIR" -j "${EDGEPRUNE_JOBS:-$(nproc)}" "${TARGETS[@]}"
