#!/usr/bin/env bash
# Accuracy of 4x-MACs variants on non-image data (issue 14: a 4x MACs variant loses <= 1.0 point
# against its master, with the same pruning defaults as Fashion-MNIST). Three generated data sets
# (tests/bench/make_nonimage_datasets.py: 3x128 signals, 20-feature vectors and grey 8x8 images,
# 6 classes each), a master per data set and seed (cnn1d on the signals, mlp-bn on the features,
# vgg on the images), each pruned to
# 0.25x MACs by the `prune` command with its defaults; master and variant are evaluated on the same
# test split in the same run and printed side by side, one row per seed, then mean and spread.
# Not part of CI; needs Debian's /usr/bin/python3 with numpy for the data sets. Runs at normal
# priority: under nice on a machine busy with builds, one training epoch took minutes.
#
#   tests/bench/pruning_nonimage.sh [work-dir]      (default: data/bench-nonimage, git-ignored)
# Environment: EDGEPRUNE_BUILD_DIR (default build), SEEDS ("1 2 3"), EPOCHS (6), LR (0.005), THREADS (2),
# PRUNE_FLAGS (extra flags for every `prune`, e.g. "--finetune-steps 2000"), PAIRS (data:arch
# pairs, default "signals:cnn1d features:mlp-bn images8:vgg"; "images32:vgg" adds the colour
# 32x32 images, about half an hour per seed on two cores).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD_DIR="${EDGEPRUNE_BUILD_DIR:-$ROOT/build}"
[[ "$BUILD_DIR" = /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
SERVER="$BUILD_DIR/server/edgeprune-server"
WORK="${1:-$ROOT/data/bench-nonimage}"
SEEDS="${SEEDS:-1 2 3}"
EPOCHS="${EPOCHS:-6}"
THREADS="${THREADS:-2}"
LR="${LR:-0.005}"
read -r -a EXTRA <<< "${PRUNE_FLAGS:-}"
[[ -x "$SERVER" ]] || { echo "pruning_nonimage.sh: build first, $SERVER is missing" >&2; exit 1; }
mkdir -p "$WORK"
[[ -f "$WORK/signals.npz" && -f "$WORK/features.npz" && -f "$WORK/images8.npz" &&
   -f "$WORK/images32.npz" ]] ||
  /usr/bin/python3 "$ROOT/tests/bench/make_nonimage_datasets.py" "$WORK"

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); load at start: $(uptime | sed 's/.*load average: //')"
rows=()
for seed in $SEEDS; do
  for pair in ${PAIRS:-signals:cnn1d features:mlp-bn images8:vgg}; do
    data="${pair%%:*}" arch="${pair#*:}"
    master="$WORK/$data-$arch-seed$seed.pt" variant="$WORK/$data-$arch-seed$seed-4x.pt"
    if [[ ! -f "$master" ]]; then
      "$SERVER" train --arch "$arch" --dataset "$WORK/$data.npz" --epochs "$EPOCHS" \
        --lr "$LR" --batch-size 128 --seed "$seed" --threads "$THREADS" --out "$master" \
        > "$WORK/$data-$arch-seed$seed-train.log"
    fi
    start=$(date +%s)
    "$SERVER" prune --master "$master" --dataset "$WORK/$data.npz" --max-macs 0.25x \
      --threads "$THREADS" --no-latency --json "$variant.json" --out "$variant" "${EXTRA[@]}" \
      > "$WORK/$data-$arch-seed$seed-prune.log"
    seconds=$(( $(date +%s) - start ))
    rows+=("$(/usr/bin/python3 - "$variant.json" "$data" "$arch" "$seed" "$seconds" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
m, v = r["master"], r["variant"]
print(f'{sys.argv[2]} {sys.argv[3]} {sys.argv[4]} {100 * m["accuracy"]:.2f} '
      f'{100 * v["accuracy"]:.2f} {r["ratios"]["macs"]:.2f} {r["ratios"]["params"]:.2f} '
      f'{m["macs"]} {v["macs"]} {sys.argv[5]}')
PY
)")
    echo "${rows[-1]}"
  done
done
echo "load at end: $(uptime | sed 's/.*load average: //')"
printf '%s\n' "${rows[@]}" | /usr/bin/python3 -c '
import statistics, sys
rows = [l.split() for l in sys.stdin if l.strip()]
print("| data set | master | seed | master acc. | 4x variant acc. | drop (pt) | MACs master -> variant | MACs / params reduction | prune time |")
print("|---|---|---|---|---|---|---|---|---|")
for data, arch, seed, ma, va, rm, rp, mm, vm, s in rows:
    print(f"| {data} | {arch} | {seed} | {ma} % | {va} % | {float(ma) - float(va):+.2f} | {int(mm):,} -> {int(vm):,} | {rm}x / {rp}x | {s} s |")
for data in sorted({r[0] for r in rows}, reverse=True):
    drops = [float(r[3]) - float(r[4]) for r in rows if r[0] == data]
    spread = max(drops) - min(drops)
    print(f"| {data} | mean of {len(drops)} | | | | {statistics.mean(drops):+.2f} (spread {spread:.2f}) | | | |")
'
