#!/usr/bin/env bash
# Recovery recipe across masters and seeds (issue 19, item 5): each master pruned to 4x fewer MACs
# by `edgeprune-server prune` with fine-tuning in evaluation mode (batch-norm statistics fixed
# between re-estimations, --frozen-bn) and in training mode (--train-bn), on several fine-tuning
# seeds. Step counts, not the clock, bound the fine-tuning (the time limit is lifted), so the
# accuracy does not depend on the machine's load; wall times do.
#
#   tests/bench/recovery.sh                          # zoo masters in data/masters, seeds 1 2 3
#   MASTERS="vgg resnet" SEEDS="1" MODES="train" tests/bench/recovery.sh
#   PRUNE_FLAGS="--finetune-steps 6000" tests/bench/recovery.sh
#
# Masters: data/masters/<name>.pt from tests/bench/train_masters.sh (Fashion-MNIST). A master
# without batch norms (mlp, lenet5) runs the same either way, so it runs once per seed ("both").
# Prints one row per run and a summary per master and mode: mean drop and spread (max - min) over
# the seeds. Output files go to $WORK (default data/bench-recovery, git-ignored); runs whose report
# is already there are reused (delete $WORK to start over).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD_DIR="${EDGEPRUNE_BUILD_DIR:-$ROOT/build}"
[[ "$BUILD_DIR" = /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
SERVER="$BUILD_DIR/server/edgeprune-server"
MASTER_DIR="${MASTER_DIR:-$ROOT/data/masters}"
WORK="${WORK:-$ROOT/data/bench-recovery}"
MASTERS="${MASTERS:-vgg resnet mobilenet lenet5 mlp}"
SEEDS="${SEEDS:-1 2 3}"
MODES="${MODES:-frozen train}"
THREADS="${THREADS:-2}"
DATA_DIR="${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"
# The server's build recipe: 3,500 final steps at batch 128, 100 between pruning steps.
read -r -a EXTRA <<<"--finetune-steps 3500 --finetune-seconds 36000 ${PRUNE_FLAGS:-}"
[[ -x "$SERVER" ]] || { echo "recovery: build first, $SERVER is missing" >&2; exit 1; }
mkdir -p "$WORK"

has_batch_norm() {  # the master's code calls batch_norm: the two modes differ
  /usr/bin/python3 - "$1" <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
code = [n for n in z.namelist() if "/code/" in n and n.endswith(".py")]
sys.exit(0 if any(b"batch_norm" in z.read(n) for n in code) else 1)
PY
}

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); load at start: $(uptime | sed 's/.*load average: //')"
echo "flags: --max-macs 0.25x --threads $THREADS ${EXTRA[*]}"
rows="$WORK/rows.txt"
: >"$rows"
for seed in $SEEDS; do
  for name in $MASTERS; do
    master="$MASTER_DIR/$name.pt"
    [[ -f "$master" ]] || { echo "recovery: $master is missing (tests/bench/train_masters.sh)" >&2; exit 1; }
    modes="$MODES"
    has_batch_norm "$master" || modes="both"
    for mode in $modes; do
      flag=()
      case "$mode" in
        frozen) flag=(--frozen-bn) ;;
        train) flag=(--train-bn) ;;
      esac
      out="$WORK/$name-$mode-seed$seed"
      # A run whose report is there already (an interrupted bench) is not run again.
      if [[ ! -f "$out.json" || ! -f "$out.seconds" ]]; then
        start=$(date +%s)
        "$SERVER" prune --master "$master" --dataset fashion-mnist --data-dir "$DATA_DIR" \
          --max-macs 0.25x --threads "$THREADS" --seed "$seed" --no-latency "${flag[@]}" \
          --json "$out.json" --out "$out.pt" "${EXTRA[@]}" >"$out.log" 2>&1
        echo $(( $(date +%s) - start )) >"$out.seconds"
      fi
      seconds=$(cat "$out.seconds")
      /usr/bin/python3 - "$out.json" "$name" "$mode" "$seed" "$seconds" >>"$rows" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
m, v = r["master"], r["variant"]
print(sys.argv[2], sys.argv[3], sys.argv[4], f'{100 * m["accuracy"]:.2f}',
      f'{100 * v["accuracy"]:.2f}', f'{r["ratios"]["macs"]:.2f}', f'{r["ratios"]["params"]:.2f}',
      r["finetune_steps"], sys.argv[5])
PY
      tail -1 "$rows"
    done
  done
done
echo "load at end: $(uptime | sed 's/.*load average: //')"

/usr/bin/python3 - "$rows" <<'PY'
import sys
from collections import defaultdict
runs = [l.split() for l in open(sys.argv[1]) if l.strip()]
print()
print("| master | fine-tuning | seed | master % | variant % | drop (pt) | MACs ÷ | params ÷ | fine-tuning steps | wall s |")
print("|---|---|---|---|---|---|---|---|---|---|")
groups = defaultdict(list)
for name, mode, seed, ma, va, macs, params, steps, wall in runs:
    drop = float(ma) - float(va)
    groups[(name, mode)].append(drop)
    print(f"| {name} | {mode} | {seed} | {ma} | {va} | {drop:+.2f} | {macs} | {params} | {steps} | {wall} |")
print()
print("| master | fine-tuning | seeds | mean drop (pt) | spread (max − min) | worst |")
print("|---|---|---|---|---|---|")
for (name, mode), drops in groups.items():
    mean = sum(drops) / len(drops)
    print(f"| {name} | {mode} | {len(drops)} | {mean:+.2f} | {max(drops) - min(drops):.2f} | {max(drops):+.2f} |")
PY
