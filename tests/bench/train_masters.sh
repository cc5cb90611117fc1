#!/usr/bin/env bash
# Trains the five master models on Fashion-MNIST with the toolkit's `edgeprune-server train`,
# then rewrites the "Model toolkit" section of docs/benchmarks/pruning.md with a table of what was
# measured in this run: test accuracy next to its target, parameters, MACs, batch-1 latency
# (p50 at one intra-op thread) and training time. Not part of CI: it takes tens of minutes.
#
#   tests/bench/train_masters.sh [out-dir]        (default: data/masters, git-ignored)
#   EDGEPRUNE_BUILD_DIR=build-x  EPOCHS_SCALE=0.5  ARCHS="mlp vgg"  tests/bench/train_masters.sh
#   TABLE_ONLY=1 tests/bench/train_masters.sh     (rewrite the table from the cards already there)
#   QUICK=1 tests/bench/train_masters.sh          (half-width conv masters, 5 epochs: for a
#                                                   machine too loaded for the full run)
#
# Runs under `nice -n 10` with TRAIN_THREADS intra-op threads (default 2).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD_DIR="${EDGEPRUNE_BUILD_DIR:-$ROOT/build}"
[[ "$BUILD_DIR" = /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
SERVER="${EDGEPRUNE_SERVER:-$BUILD_DIR/server/edgeprune-server}"
OUT="${1:-$ROOT/data/masters}"
THREADS="${TRAIN_THREADS:-2}"
SCALE="${EPOCHS_SCALE:-1}"
ARCHS="${ARCHS:-mlp lenet5 vgg resnet mobilenet}"
DATA_DIR="${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"
mkdir -p "$OUT"

# arch → "epochs lr extra-flags" and the accuracy target of the issue (percent).
declare -A SETTINGS=(
  [mlp]="10 0.001"
  [lenet5]="8 0.002"
  [vgg]="12 0.002"
  [resnet]="10 0.002"
  [mobilenet]="8 0.003"
)

if [[ -n "${QUICK:-}" ]]; then
  SETTINGS[lenet5]="5 0.002"
  SETTINGS[vgg]="5 0.002 --width 0.5"
  SETTINGS[resnet]="5 0.002 --width 0.5"
  SETTINGS[mobilenet]="5 0.003 --width 0.5"
fi

for arch in $ARCHS; do
  [[ -n "${TABLE_ONLY:-}" ]] && break
  [[ -x "$SERVER" ]] || { echo "train_masters: build first, $SERVER is missing" >&2; exit 1; }
  read -r epochs lr extra <<<"${SETTINGS[$arch]}"
  epochs=$(python3 -c "print(max(1, round($epochs * $SCALE)))" 2>/dev/null || echo "$epochs")
  echo "== $arch: $epochs epochs, lr $lr ${extra:-}"
  # shellcheck disable=SC2086
  nice -n 10 "$SERVER" train --arch "$arch" --dataset fashion-mnist --data-dir "$DATA_DIR" \
    --epochs "$epochs" --lr "$lr" --batch-size 128 --seed 1 --threads "$THREADS" \
    --latency-runs 200 --latency-threads 1 $extra --out "$OUT/$arch.pt"
done

# Table from the model cards written above.
# Width of each arch as configured (the card records the architecture name only).
WIDTHS=""
for arch in mlp lenet5 vgg resnet mobilenet; do
  w=$(sed -n 's/.*--width \([0-9.]*\).*/\1/p' <<<"${SETTINGS[$arch]}")
  WIDTHS+="$arch=${w:-1} "
done
TABLE="$(python3 - "$OUT" "$WIDTHS" <<'PY'
import json, os, sys
out = sys.argv[1]
width = dict(kv.split("=") for kv in sys.argv[2].split())
archs = ["mlp", "lenet5", "vgg", "resnet", "mobilenet"]
target = {"mlp": 88.0, "vgg": 92.0, "resnet": 91.5, "mobilenet": 90.0}
rows = ["| master | width | test accuracy | target | params | MACs | p50 latency, batch 1, 1 thread | p95 | training time | epochs |",
        "|---|---|---|---|---|---|---|---|---|---|"]
for a in archs:
    p = os.path.join(out, a + ".json")
    if not os.path.exists(p):
        continue
    c = json.load(open(p))
    t = target.get(a)
    ok = "" if t is None else (" ✓" if 100 * c["test_accuracy"] >= t else " ✗")
    rows.append("| %s | %s | %.2f%%%s | %s | %d | %.2f M | %.3f ms | %.3f ms | %.0f s | %d |" % (
        a, width[a], 100 * c["test_accuracy"], ok, "-" if t is None else "≥ %.1f%%" % t, c["params"],
        c["macs"] / 1e6, c["latency"]["p50_ms"], c["latency"]["p95_ms"],
        c["training"]["seconds"], c["training"]["epochs"]))
print("\n".join(rows))
PY
)"
echo "$TABLE"

DOC="$ROOT/docs/benchmarks/pruning.md"
python3 - "$DOC" "$TABLE" "$THREADS" "${QUICK:-}" <<'PY'
import os, sys, datetime
doc, table, threads, quick = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
section = """## Model toolkit

Masters trained by `tests/bench/train_masters.sh` (Adam, cosine schedule, batch 128, seed 1,
%s intra-op threads for training; split: 55,000 train / 5,000 validation, Fashion-MNIST's own
10,000 test images). Latency: `MeasureLatency`, 10 warm-up then 200 timed batch-1 runs at one
intra-op thread, on the shared development machine while other jobs ran, so compare rows only
with each other. Run %s UTC.%s

%s
""" % (threads, datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"),
       "" if not quick else "\n\nReduced run (`QUICK=1`: half-width VGG/ResNet/MobileNet and LeNet-5 for 5 epochs)"
       " on a saturated shared machine; the script's defaults are the full settings.", table)
text = open(doc).read() if os.path.exists(doc) else "# Benchmarks\n"
start = text.find("## Model toolkit")
if start >= 0:
    end = text.find("\n## ", start + 1)
    text = text[:start] + section + ("" if end < 0 else text[end + 1:])
else:
    text = text.rstrip("\n") + "\n\n" + section
open(doc, "w").write(text)
PY
echo "train_masters: wrote $DOC"
