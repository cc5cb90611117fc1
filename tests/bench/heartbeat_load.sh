#!/usr/bin/env bash
# Builds the heartbeat load tool and the agent in a CMake build dir, then runs the tool (passing the
# agent binary for the idle-memory measurement). Not part of CI; run it with nothing else heavy on
# the machine, in a RelWithDebInfo build (deploy/build.sh's default). It prints its own figures.
#   tests/bench/heartbeat_load.sh <build-dir> [--agents 5000] [--interval-s 10] [--duration-s 60]
#                                  [--threads 1] [--server-threads 2] [--fresh-per-s 10] ...
# Flags are documented at the top of tests/bench/heartbeat_load.cpp.
set -euo pipefail
build=${1:?usage: heartbeat_load.sh <build-dir> [flags...]}
shift
type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")
[[ "$type" == Release || "$type" == RelWithDebInfo ]] ||
  echo "warning: $build is a '$type' build; figures from it are not release figures" >&2
nice -n 5 cmake --build "$build" -j 2 --target heartbeat_load edgeprune-agent
exec "$build/tests/heartbeat_load" "$@" --agent-bin "$build/agent/edgeprune-agent"
