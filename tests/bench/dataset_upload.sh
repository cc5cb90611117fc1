#!/usr/bin/env bash
# Upload and validation of a big .npz data set (issue 14: a 1 GiB .npz streams at >= 100 MB/s on
# loopback, and the server's VmHWM grows by at most 64 MiB during the upload). A real
# edgeprune-server process on loopback (dev PKI, temp data dir), an operator token, then curl POSTs
# an np.savez file of SIZE_MIB (default 1024) MiB of uint8 64x64 images to /api/v1/datasets. The
# answer comes after the server has spooled, validated and stored the file; MB/s is the file size
# over curl's total time. Never run in CI. Needs Debian's /usr/bin/python3 with numpy.
#
#   tests/bench/dataset_upload.sh [build-dir]
# Environment: SIZE_MIB (default 1024).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${1:-$ROOT/build}"
BIN="$BUILD/server/edgeprune-server"
SIZE_MIB="${SIZE_MIB:-1024}"

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

"$ROOT/deploy/pki/make-dev-pki.sh" "$WORK/pki" >/dev/null
/usr/bin/python3 - "$WORK/big.npz" "$SIZE_MIB" <<'PY'
import sys
import numpy as np
path, mib = sys.argv[1], int(sys.argv[2])
n = mib * 1024 * 1024 // 4096 - 1024
rng = np.random.default_rng(1)
x = rng.integers(0, 256, size=(n, 1, 64, 64), dtype=np.uint8)
y = (np.arange(n) % 10).astype(np.int64)
xt = rng.integers(0, 256, size=(1000, 1, 64, 64), dtype=np.uint8)
yt = (np.arange(1000) % 10).astype(np.int64)
np.savez(path, x_train=x, y_train=y, x_test=xt, y_test=yt)
PY
bytes=$(stat -c %s "$WORK/big.npz")
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
data="$WORK/data"
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
read_ms = 600000
TOML
"$BIN" serve --config "$WORK/server.toml" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
CURL=(curl -sS --cacert "$WORK/pki/ca.pem" --max-time 900)
for _ in $(seq 1 100); do
  "${CURL[@]}" --max-time 2 "https://localhost:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
token="$("$BIN" token create --config "$WORK/server.toml" --name bench --role operator 2>/dev/null)"
# CPU seconds (user + system) a process has used: on a shared machine the wall time depends on
# what else runs, the CPU each side spends per GiB does not.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
before=$(hwm_kb "$SERVER_PID")
server_cpu_before=$(cpu_s "$SERVER_PID")
"${CURL[@]}" -o "$WORK/answer.json" -w '%{http_code} %{time_total}\n' -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/octet-stream' -X POST -T "$WORK/big.npz" \
  "https://localhost:$port/api/v1/datasets?name=big" >"$WORK/curl.out" &
curl_pid=$!
curl_cpu=0
while kill -0 "$curl_pid" 2>/dev/null; do curl_cpu=$(cpu_s "$curl_pid" 2>/dev/null || echo "$curl_cpu"); sleep 0.2; done
wait "$curl_pid" || true
answer=$(cat "$WORK/curl.out")
server_cpu=$(awk -v a="$(cpu_s "$SERVER_PID")" -v b="$server_cpu_before" 'BEGIN {print a - b}')
after=$(hwm_kb "$SERVER_PID")
code=${answer%% *}
secs=${answer##* }
printf 'file %d bytes (%.0f MiB), answer %s in %.2f s: %.1f MB/s; VmHWM %d kB -> %d kB (+%.1f MiB)\n' \
  "$bytes" "$(awk -v b="$bytes" 'BEGIN {print b / 1048576}')" "$code" "$secs" \
  "$(awk -v b="$bytes" -v s="$secs" 'BEGIN {print b / s / 1e6}')" "$before" "$after" \
  "$(awk -v a="$after" -v b="$before" 'BEGIN {print (a - b) / 1024}')"
printf 'CPU: server %.2f s (spool, validate, hash, store), curl %.2f s (read, encrypt, send); the\n' \
  "$server_cpu" "$curl_cpu"
printf '  server alone could take %.0f MB/s on one idle core\n' \
  "$(awk -v b="$bytes" -v s="$server_cpu" 'BEGIN {print b / s / 1e6}')"
[[ "$code" == 201 ]] || { head -c 400 "$WORK/answer.json"; echo; tail -n 5 "$WORK/server.log"; }
echo "(load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ))"
