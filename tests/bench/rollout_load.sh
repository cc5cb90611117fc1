#!/usr/bin/env bash
# Builds the rollout load tool and the server in a CMake build dir, then runs the tool against the
# real server with the suite's LeNet-5 master. Not part of CI; the machine's load changes the
# figures, so note it (the tool prints the load average before and after). It prints its own
# figures.
#   tests/bench/rollout_load.sh <build-dir> [--devices 5000] [--threads 8] [--canary 50]
#                               [--second-percent 20] [--bake-s 10] [--tick-s 5] ...
# Flags are documented at the top of tests/bench/rollout_load.cpp.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build=${1:?usage: rollout_load.sh <build-dir> [flags...]}
shift
type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")
[[ "$type" == Release || "$type" == RelWithDebInfo ]] ||
  echo "warning: $build is a '$type' build; figures from it are not release figures" >&2
nice -n 5 cmake --build "$build" -j "${EDGEPRUNE_JOBS:-1}" --target rollout_load edgeprune-server
exec "$build/tests/rollout_load" --server-bin "$build/server/edgeprune-server" \
  --master "$root/tests/fixtures/models/lenet5_scripted.pt" "$@"
