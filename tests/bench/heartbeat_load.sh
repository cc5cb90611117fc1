#!/usr/bin/env bash
# Builds and runs the heartbeat load tool against libraries already built in a CMake build dir.
#   tests/bench/heartbeat_load.sh <build-dir> [--agents 5000] [--interval-s 10] [--duration-s 60]
#                                  [--threads 16] [--server-threads 2]
# Needs in <build-dir>: edgeprune_server_core, _http, _store, _common, test support and the agent
# binary (`cmake --build <build-dir> --target edgeprune-agent edgeprune_test_support`).
# Not part of CI. Run it with nothing else heavy on the machine; it prints its own figures.
set -euo pipefail
build=${1:?usage: heartbeat_load.sh <build-dir> [flags...]}
shift
src=$(cd "$(dirname "$0")/../.." && pwd)
out="$build/bench"
mkdir -p "$out"
nice -n 10 c++ -std=c++20 -O2 -g -DNDEBUG -DBOOST_ASIO_NO_DEPRECATED -DBOOST_BEAST_USE_STD_STRING_VIEW \
  -DSPDLOG_COMPILED_LIB -DSPDLOG_FMT_EXTERNAL -DSPDLOG_SHARED_LIB -DFMT_SHARED \
  -I"$src" -I"$src/common/include" -I"$src/tests" \
  "$src/tests/bench/heartbeat_load.cpp" -o "$out/heartbeat_load" \
  "$build/server/libedgeprune_server_core.a" "$build/server/libedgeprune_http.a" \
  "$build/server/libedgeprune_store.a" "$build/tests/libedgeprune_test_support.a" \
  "$build/common/libedgeprune_common.a" \
  -lprometheus-cpp-core -lboost_json -lboost_container -lsqlite3 -lspdlog -lfmt -ltomlplusplus \
  -lssl -lcrypto -lz -lpthread
agent_bin="$build/agent/edgeprune-agent"
extra=()
[[ -x "$agent_bin" ]] && extra=(--agent-bin "$agent_bin")
exec nice -n 10 "$out/heartbeat_load" "$@" "${extra[@]}"
