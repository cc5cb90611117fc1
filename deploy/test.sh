#!/usr/bin/env bash
# The one test command: installs what is missing (Debian 12 packages), builds, runs every test.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${EDGEPRUNE_BUILD_DIR:-$ROOT/build}"
start=$(date +%s)
"$ROOT/deploy/bootstrap.sh"
# The layer rules of docs/architecture.md, checked before anything is built (prints the graph).
python3 "$ROOT/tools/check_architecture.py"
"$ROOT/deploy/build.sh"
cd "$BUILD_DIR"
ctest --output-on-failure --timeout 600 -j "${EDGEPRUNE_TEST_JOBS:-2}"
echo "test.sh: setup, build and tests took $(( $(date +%s) - start )) s"
