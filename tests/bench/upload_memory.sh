#!/usr/bin/env bash
# Peak memory of the server for one big authenticated model upload (issue 13: a 1 GiB upload may
# raise the server's VmHWM by at most 64 MiB). A real edgeprune-server process on loopback (dev
# PKI, temp data dir), an operator token, then curl POSTs a file of SIZE_MIB (default 1024) zero
# bytes to /api/v1/models. The file is received whole and only then refused by the model worker
# (invalid_model: not a TorchScript archive), so the server holds it for the whole request. VmHWM
# of the server process is read from /proc before and after. Never run in CI.
#
#   tests/bench/upload_memory.sh [build-dir] [other-edgeprune-server ...]
# Each further binary (e.g. one built from an older commit) is measured the same way, side by side.
# Environment: SIZE_MIB (default 1024).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${1:-$ROOT/build}"
shift || true
BINS=("$BUILD/server/edgeprune-server" "$@")
SIZE_MIB="${SIZE_MIB:-1024}"

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

"$ROOT/deploy/pki/make-dev-pki.sh" "$WORK/pki" >/dev/null
truncate -s "${SIZE_MIB}M" "$WORK/model.pt"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

printf '%-58s %12s %12s %12s %s\n' binary "VmHWM before" "VmHWM after" increase answer
for bin in "${BINS[@]}"; do
  data="$WORK/data-$RANDOM"
  port=$(free_port)
  mkdir -p "$data"
  cat > "$WORK/server.toml" <<TOML
[server]
listen_host = "127.0.0.1"
listen_port = $port
data_dir = "$data"
tls_cert = "$WORK/pki/server.pem"
tls_key = "$WORK/pki/server.key"
client_ca = "$WORK/pki/device-ca.pem"

[fleet]
device_ca_cert = "$WORK/pki/device-ca.pem"
device_ca_key = "$WORK/pki/device-ca.key"

[timeouts]
# The body deadline covers the whole body; 1 GiB over loopback TLS on a loaded 2-core machine
# takes longer than the default 30 s.
read_ms = 600000

[variants]
max_model_bytes = $(( (SIZE_MIB + 64) * 1024 * 1024 ))
TOML
  "$bin" serve --config "$WORK/server.toml" >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  CURL=(curl -sS --cacert "$WORK/pki/ca.pem" --max-time 600)
  for _ in $(seq 1 100); do
    "${CURL[@]}" --max-time 2 "https://localhost:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.2
  done
  token="$("$bin" token create --config "$WORK/server.toml" --name bench --role operator 2>/dev/null)"
  before=$(hwm_kb "$SERVER_PID")
  answer=$("${CURL[@]}" -o "$WORK/answer.json" -w '%{http_code} %{time_total}s' -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/octet-stream' -X POST -T "$WORK/model.pt" \
    "https://localhost:$port/api/v1/models?name=big&dataset=fashion-mnist&input_shape=1,28,28" || true)
  code=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["error"]["code"])' "$WORK/answer.json" 2>/dev/null || echo "?")
  after=$(hwm_kb "$SERVER_PID")
  printf '%-58s %9d kB %9d kB %8.1f MiB %s %s\n' "$bin" "$before" "$after" \
    "$(awk -v a="$after" -v b="$before" 'BEGIN {print (a - b) / 1024}')" "$answer" "$code"
  leftovers=$(find "$data" -name 'body-*' -o -name 'upload-*' | wc -l)
  [[ "$leftovers" == 0 ]] || echo "  $leftovers temp file(s) left in the data dir"
  [[ "$answer" == 4* ]] || tail -n 5 "$WORK/server.log"
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
done
echo "(${SIZE_MIB} MiB upload; load average $(cut -d' ' -f1-3 /proc/loadavg))"
