#!/usr/bin/env bash
# Torchvision models through the pruning engine, full size, scripted and traced: the engine's MACs
# and parameters against PyTorch's forward-hook counts, the share of prunable channels, the
# operators that still freeze channels, and whether 2× fewer MACs is reached with a valid output.
# Makes the models with Debian's Python (python3-torch, python3-torchvision), builds and runs
# torchvision_bench, then rewrites the marked "Torchvision models" section of
# docs/benchmarks/pruning.md with the table, the date, the command and the load. Not part of CI.
#
#   tests/bench/torchvision.sh [work-dir]        (default: data/bench-torchvision, git-ignored)
#   MODELS="resnet18 densenet121" tests/bench/torchvision.sh    a subset (the doc is left alone)
#   REUSE=1 tests/bench/torchvision.sh           keeps the models of an earlier run in the work dir
#   PYTHON=/path/to/python3  EDGEPRUNE_BUILD_DIR=build-x  NO_DOC=1
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD_DIR="${EDGEPRUNE_BUILD_DIR:-$ROOT/build}"
[[ "$BUILD_DIR" = /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
WORK="${1:-$ROOT/data/bench-torchvision}"
# Debian's interpreter with python3-torch and python3-torchvision: the first python3 on PATH may
# be another one without them, so take the first that imports both.
find_python() {
  local p
  for p in $(type -ap python3); do
    "$p" -c "import torch, torchvision" > /dev/null 2>&1 && { echo "$p"; return 0; }
  done
  return 1
}
PYTHON="${PYTHON:-$(find_python || true)}"
[[ -n "$PYTHON" ]] || {
  echo "torchvision.sh: no python3 on PATH imports torch and torchvision (python3-torchvision)" >&2
  exit 1
}
mkdir -p "$WORK"

if [[ -n "${REUSE:-}" && -s "$WORK/reference.txt" ]]; then
  echo "== keeping the models in $WORK (REUSE=1)"
else
  echo "== making the models in $WORK"
  # shellcheck disable=SC2086
  nice -n 10 "$PYTHON" "$ROOT/tests/bench/torchvision_models.py" "$WORK" ${MODELS:-} 2>&1 \
    | grep -v -i warning || true
fi
[[ -s "$WORK/reference.txt" ]] || { echo "torchvision.sh: no models were made" >&2; exit 1; }

echo "== building torchvision_bench"
cmake --build "$BUILD_DIR" --target torchvision_bench -j "${EDGEPRUNE_JOBS:-1}" > /dev/null

echo "== running"
start=$(date +%s)
nice -n 10 "$BUILD_DIR/tests/torchvision_bench" "$WORK" | tee "$WORK/table.md"
seconds=$(( $(date +%s) - start ))
LOAD="$(uptime | sed 's/.*load average: //')"
echo "load average at the end: $LOAD (${seconds} s)"

[[ -n "${NO_DOC:-}${MODELS:-}" ]] && exit 0
"$PYTHON" - "$ROOT/docs/benchmarks/pruning.md" "$WORK/table.md" "$LOAD" "$seconds" <<'PY'
import datetime, re, sys
doc, table_path, load, seconds = sys.argv[1:5]
table = open(table_path).read().rstrip("\n")
body = f"""<!-- torchvision.sh -->
`tests/bench/torchvision.sh`, measured {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC in {seconds} s;
load average (`uptime`) at the end of the run {load} (1 / 5 / 15 min) on the shared 2-core
machine. Models:
torchvision 0.14, 10 classes, input 3×32×32, random weights; reference = forward hooks on the eager
model (convolutions and linear layers, batch 1). Prunable channels: output channels of
convolutions and linear layers (depthwise ones follow their input) that lie in a prunable group;
the logits are never pruned. Pruning: `Prune()` with L1 scores and no data (so no fine-tuning),
budget 0.5× the reference MACs; "valid" = the emitted file loads and gives 10 finite logits.

{table}
<!-- /torchvision.sh -->
"""
text = open(doc).read()
marked = re.compile(r"<!-- torchvision.sh -->\n.*?<!-- /torchvision.sh -->\n", re.S)
if marked.search(text):
    text = marked.sub(lambda _: body, text)
else:
    text = text.rstrip("\n") + "\n\n## Torchvision models, scripted and traced\n\n" + body
open(doc, "w").write(text)
PY
echo "updated docs/benchmarks/pruning.md (Torchvision models)"
