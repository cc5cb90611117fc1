#!/usr/bin/env bash
# Pruning benchmark: edgeprune against the classic baselines on the same master, same data and the
# same fine-tuning budget, measured side by side in one run, then the "Pruning" section of
# docs/benchmarks.md is rewritten with the table. Not part of CI (tens of minutes on 2 cores).
#
#   tests/bench/pruning.sh [work-dir]            (default: data/bench-pruning, git-ignored)
#   EDGEPRUNE_BUILD_DIR=build-x  FT_STEPS=600  VGG_EPOCHS=4  tests/bench/pruning.sh
#
# Masters come from data/masters (tests/bench/train_masters.sh); a missing VGG master is trained
# here with VGG_EPOCHS epochs. Runs under `nice -n 10`; latency at batch 1, one intra-op thread.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD_DIR="${EDGEPRUNE_BUILD_DIR:-$ROOT/build}"
[[ "$BUILD_DIR" = /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
SERVER="${EDGEPRUNE_SERVER:-$BUILD_DIR/server/edgeprune-server}"
WORK="${1:-$ROOT/data/bench-pruning}"
MASTERS="${MASTERS_DIR:-$ROOT/data/masters}"
DATA_DIR="${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"
FT_STEPS="${FT_STEPS:-600}"          # final fine-tuning steps, the same for every row
STEP_FT="${STEP_FT:-100}"            # fine-tuning between pruning steps
FT_SECONDS="${FT_SECONDS:-150}"
FIXTURE_FT="${FIXTURE_FT:-50}"
[[ -x "$SERVER" ]] || { echo "pruning.sh: build first, $SERVER is missing" >&2; exit 1; }
mkdir -p "$WORK" "$MASTERS"

if [[ ! -f "$MASTERS/vgg.pt" ]]; then
  echo "== training the VGG master (${VGG_EPOCHS:-4} epochs)"
  nice -n 10 "$SERVER" train --arch vgg --dataset fashion-mnist --data-dir "$DATA_DIR" \
    --epochs "${VGG_EPOCHS:-4}" --lr 0.002 --batch-size 128 --seed 1 --threads 2 \
    --out "$MASTERS/vgg.pt"
fi

# row name | master | flags
run() {
  local name="$1" master="$2"; shift 2
  echo "== $name"
  local start end
  start=$(date +%s.%N)
  nice -n 10 "$SERVER" prune --master "$master" --dataset fashion-mnist --data-dir "$DATA_DIR" \
    --threads 1 --finetune-seconds "$FT_SECONDS" --out "$WORK/$name.pt" \
    --json "$WORK/$name.json" "$@" | tail -n 30 || echo "== $name failed (no row)"
  end=$(date +%s.%N)
  python3 -c "print($end - $start)" > "$WORK/$name.seconds"
}

VGG="$MASTERS/vgg.pt"
COMMON=(--finetune-steps "$FT_STEPS" --step-finetune-steps "$STEP_FT")
ROWS=()
run vgg-edgeprune-4x-macs "$VGG" --max-macs 0.25x "${COMMON[@]}";               ROWS+=(vgg-edgeprune-4x-macs)
run vgg-edgeprune-10x-params "$VGG" --max-param-bytes 0.1x "${COMMON[@]}";      ROWS+=(vgg-edgeprune-10x-params)
run vgg-l1-no-finetune-4x-macs "$VGG" --max-macs 0.25x --importance l1 \
  --finetune-steps 0 --step-finetune-steps 0;                                    ROWS+=(vgg-l1-no-finetune-4x-macs)
run vgg-random-50pct-mask-retrain "$VGG" --sparsity 0.5 --sparsity-random \
  --kd-alpha 0 --lr 0.002 "${COMMON[@]}";                                                   ROWS+=(vgg-random-50pct-mask-retrain)
run vgg-magnitude-90pct-finetune "$VGG" --sparsity 0.9 "${COMMON[@]}";          ROWS+=(vgg-magnitude-90pct-finetune)
for arch in resnet mobilenet; do
  if [[ -f "$MASTERS/$arch.pt" ]]; then
    run "$arch-edgeprune-2x-macs" "$MASTERS/$arch.pt" --max-macs 0.5x "${COMMON[@]}"
    ROWS+=("$arch-edgeprune-2x-macs")
  fi
done
for fixture in convbn cat resnet depthwise mlp; do
  for form in scripted traced; do
    name="fixture-$fixture-$form-2x-params"
    run "$name" "$ROOT/tests/fixtures/pruning/${fixture}_$form.pt" --max-param-bytes 0.5x \
      --finetune-steps "$FIXTURE_FT" --step-finetune-steps 10 --importance l1
    ROWS+=("$name")
  done
done

TABLE="$(python3 - "$WORK" "${ROWS[@]}" <<'PY'
import json, sys
work, rows = sys.argv[1], sys.argv[2:]
out = ["| run | accuracy master → variant (drop, pt) | params ÷ | MACs ÷ | p50 ms master → variant | speed-up | speed-up ÷ MACs ratio | weight zeros | zlib bytes | wall s |",
       "|---|---|---|---|---|---|---|---|---|---|"]
import os
for r in rows:
    if not os.path.exists(f"{work}/{r}.json"):
        continue
    j = json.load(open(f"{work}/{r}.json"))
    m, v, q = j["master"], j["variant"], j["ratios"]
    secs = float(open(f"{work}/{r}.seconds").read())
    sp = q.get("latency_speedup", 0.0)
    out.append(f"| {r} | {100*m['accuracy']:.2f} → {100*v['accuracy']:.2f} ({q['accuracy_drop_points']:+.2f}) "
               f"| {q['params']:.2f} | {q['macs']:.2f} | {m['latency_p50_ms']:.3f} → {v['latency_p50_ms']:.3f} "
               f"| {sp:.2f} | {sp / q['macs']:.2f} | {100*v['weight_sparsity']:.0f}% | {v['compressed_bytes']} | {secs:.0f} |")
print("\n".join(out))
PY
)"
echo "$TABLE"

DOC="$ROOT/docs/benchmarks.md"
touch "$DOC"
python3 - "$DOC" "$TABLE" "$FT_STEPS" "$STEP_FT" <<'PY'
import re, sys, datetime
doc, table, ft, step = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
text = open(doc).read()
section = f"""## Pruning

Reproduce: `tests/bench/pruning.sh` (after `tests/bench/train_masters.sh`; FT_STEPS={ft}, STEP_FT={step}).
Measured {datetime.date.today()} on the shared 2-core build machine **under load** from other builds:
latencies are batch 1, one intra-op thread, p50 of 200 runs; master and variant measured in the same
process one after the other. Same master, same data (Fashion-MNIST test split), same fine-tuning
budget ({ft} steps of batch 64, distillation from the master) for every fine-tuned row. Fixture rows
are untrained Python-made nets (scripted and traced): they show the pipeline runs on them, their
accuracy is chance level.

{table}
"""
pattern = re.compile(r"^## Pruning\n.*?(?=^## |\Z)", re.S | re.M)
text = pattern.sub(section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section
open(doc, "w").write(text)
PY
echo "updated $DOC"
