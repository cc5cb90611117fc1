#!/usr/bin/env bash
# The main job on one machine, on the embedded defaults (SQLite, dev PKI, Fashion-MNIST):
# installs what is missing, builds, makes the development PKI, starts the server over HTTPS,
# trains a master (or reuses the cached one), starts three agents with different declared caps
# (large, medium, tiny), rolls the model out in two gated phases (one canary first, each phase's
# gate values printed), waits for the variants with a progress line, sends the
# Fashion-MNIST test set through each agent's local API and prints one table: device, budget,
# variant parameters and MACs, accuracy, p95 latency. Ctrl-C stops everything.
#
#   deploy/quickstart.sh [--port N] [--data-dir DIR] [--fast | --server-only] [--no-wait]
#     (default)      the whole loop above (see docs/operations.md)
#     --fast         a smaller run: short master training, fewer fine-tuning steps, 2,000 images
#     --server-only  stop after the server answers over HTTPS (healthz, readyz, metrics)
#     --no-wait      exit (stopping server and agents) instead of serving until Ctrl-C
#   FASHION_MNIST_DIR overrides the data set directory (default /usr/share/datasets/fashion-mnist).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT=8443
DATA_DIR="$ROOT/data"
WAIT=1
FAST=0
FULL=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --port) PORT="$2"; shift 2 ;;
    --data-dir) DATA_DIR="$2"; shift 2 ;;
    --no-wait) WAIT=0; shift ;;
    --fast) FAST=1; shift ;;
    --server-only) FULL=0; shift ;;
    --full) FULL=1; shift ;;  # the default; kept for older instructions
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "quickstart: unknown flag '$1' (see --help)" >&2; exit 2 ;;
  esac
done

step() { printf '\n== %s\n' "$*"; }

step "1/9 packages"
"$ROOT/deploy/bootstrap.sh"

step "2/9 build (server, agent and its LibTorch module, the operator CLI; deploy/test.sh builds the rest)"
EDGEPRUNE_BUILD_TARGETS="edgeprune-server edgeprune-agent edgeprune_agent_torch edgeprune" "$ROOT/deploy/build.sh"
BIN="${EDGEPRUNE_BUILD_DIR:-$ROOT/build}/server/edgeprune-server"

step "3/9 development PKI in $DATA_DIR/pki"
mkdir -p "$DATA_DIR"
"$ROOT/deploy/pki/make-dev-pki.sh" "$DATA_DIR/pki"

cat > "$DATA_DIR/server.toml" <<TOML
# Written by deploy/quickstart.sh; edit freely, it is rewritten on the next quickstart.
[server]
listen_host = "127.0.0.1"
listen_port = $PORT
data_dir = "$DATA_DIR"
tls_cert = "$DATA_DIR/pki/server.pem"
tls_key = "$DATA_DIR/pki/server.key"
client_ca = "$DATA_DIR/pki/device-ca.pem"

[fleet]
device_ca_cert = "$DATA_DIR/pki/device-ca.pem"
device_ca_key = "$DATA_DIR/pki/device-ca.key"

[variants]
dataset_dir = "${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"
train_limit = $([[ $FAST -eq 1 ]] && echo 6000 || echo 0)
test_limit = $([[ $FAST -eq 1 ]] && echo 2000 || echo 0)
$([[ $FAST -eq 1 ]] && printf 'finetune_steps = 300\nstep_finetune_steps = 30\n' || echo '# fine-tuning: the server defaults (docs/operations.md, "Variant builds")')
# The tiny device affords 1/11 of the master; its variant loses 3.2 points (docs/benchmarks.md),
# more than the default floor of 3, and the demo is meant to show it.
max_accuracy_drop = $([[ $FAST -eq 1 ]] && echo 100 || echo 4.0)
TOML

step "4/9 server on https://127.0.0.1:$PORT"
LOG="$DATA_DIR/server.log"
"$BIN" serve --config "$DATA_DIR/server.toml" >"$LOG" 2>&1 &
SERVER_PID=$!
trap 'kill -TERM $SERVER_PID 2>/dev/null || true; wait $SERVER_PID 2>/dev/null || true' EXIT INT TERM

CURL=(curl -sS --cacert "$DATA_DIR/pki/ca.pem" --max-time 5)
for _ in $(seq 1 100); do
  if "${CURL[@]}" "https://localhost:$PORT/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 $SERVER_PID 2>/dev/null; then
    echo "quickstart: the server exited; its log ($LOG):" >&2
    tail -n 30 "$LOG" >&2
    exit 1
  fi
  sleep 0.2
done
echo "GET /healthz -> $("${CURL[@]}" "https://localhost:$PORT/healthz")"
echo "GET /readyz  -> $("${CURL[@]}" "https://localhost:$PORT/readyz")"
echo "GET /metrics -> $("${CURL[@]}" "https://localhost:$PORT/metrics" | grep -c '^edgeprune_') edgeprune_* samples"
echo
echo "The server is running (log: $LOG). Try:"
echo "  curl --cacert $DATA_DIR/pki/ca.pem https://localhost:$PORT/metrics"
if [[ $FULL -eq 1 ]]; then
  # shellcheck source=deploy/quickstart_loop.sh
  source "$ROOT/deploy/quickstart_loop.sh"
fi
if [[ $WAIT -eq 1 ]]; then
  echo "Ctrl-C stops it."
  wait $SERVER_PID
fi
