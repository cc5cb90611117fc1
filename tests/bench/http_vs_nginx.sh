#!/usr/bin/env bash
# HTTP: edgeprune vs nginx. Not run by CI.
#
# Starts edgeprune-server and nginx (Debian nginx-light: 2 worker processes, a static
# {"status":"ok"} at /healthz) on loopback with the same dev certificate, TLS 1.2/1.3 and
# keep-alive, then runs `wrk -t2 -c64 -d<secs>` against /healthz on both, alternating for N
# rounds, and prints every round with each server's CPU time per request, both medians and the
# ratios (target: edgeprune >= 80% of nginx's requests/s on an idle machine).
#
# Usage: tests/bench/http_vs_nginx.sh [--rounds N] [--duration SECS] [--threads N] [build-dir]
#   build-dir defaults to $EDGEPRUNE_BUILD_DIR or ./build. Needs wrk and nginx
#   (deploy/bootstrap.sh --bench installs them).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
rounds=3
duration=10
threads=2
build="${EDGEPRUNE_BUILD_DIR:-$ROOT/build}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="$2"; shift ;;
    --duration) duration="$2"; shift ;;
    --threads) threads="$2"; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) build="$1" ;;
  esac
  shift
done
server_bin="$build/server/edgeprune-server"
[[ -x "$server_bin" ]] || { echo "http_vs_nginx: no $server_bin; build first (deploy/build.sh)" >&2; exit 2; }
for tool in wrk nginx openssl python3; do
  command -v "$tool" >/dev/null || { echo "http_vs_nginx: '$tool' missing; run deploy/bootstrap.sh --bench" >&2; exit 2; }
done

work="$(mktemp -d -t edgeprune-bench-XXXXXX)"
server_pid=""
nginx_pid=""
cleanup() {
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  [[ -n "$nginx_pid" ]] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

"$ROOT/deploy/pki/make-dev-pki.sh" "$work/pki" >/dev/null

# edgeprune-server on a port it picks itself.
"$server_bin" serve \
  --set server.listen_host=127.0.0.1 --set server.listen_port=0 --set "server.threads=$threads" \
  --set "server.tls_cert=$work/pki/server.pem" --set "server.tls_key=$work/pki/server.key" \
  --set "server.data_dir=$work/data" --set log.level=warn \
  >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
ours_port=""
for _ in $(seq 1 600); do
  ours_port="$(sed -n 's|^listening on https://127.0.0.1:\([0-9]*\)$|\1|p' "$work/server.out")"
  [[ -n "$ours_port" ]] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.err" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$ours_port" ]] || { echo "http_vs_nginx: edgeprune-server did not start" >&2; cat "$work/server.err" >&2; exit 1; }

# nginx: same certificate, 2 workers, keep-alive, a static response.
nginx_port="$(free_port)"
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<CONF
worker_processes 2;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  keepalive_timeout 60s;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$nginx_port ssl;
    ssl_certificate $work/pki/server.pem;
    ssl_certificate_key $work/pki/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    location = /healthz {
      default_type application/json;
      return 200 '{"status":"ok"}';
    }
  }
}
CONF
nginx -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" &
nginx_pid=$!
for _ in $(seq 1 100); do
  if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$nginx_port),1)" 2>/dev/null; then break; fi
  sleep 0.1
done

# CPU time (user + system, in clock ticks) of a process and its children (nginx's workers).
cpu_ticks() {
  local total=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
hz="$(getconf CLK_TCK)"
run_wrk() {  # url pid → "requests/sec CPU-microseconds-per-request"
  local before after out
  before="$(cpu_ticks "$2")"
  out="$(wrk -t2 -c64 "-d${duration}s" "$1")"
  after="$(cpu_ticks "$2")"
  awk -v ticks="$((after - before))" -v hz="$hz" '
    /requests in/ {n = $1}
    /^Requests\/sec:/ {r = $2}
    END {printf "%s %.1f\n", r, (n > 0 ? ticks / hz * 1e6 / n : 0)}' <<<"$out"
}
check() {  # url → first line of a GET, to prove both answer the same thing
  python3 - "$1" <<'PY'
import ssl, sys, urllib.request
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
print(urllib.request.urlopen(sys.argv[1], context=ctx, timeout=5).read().decode())
PY
}
ours="https://127.0.0.1:$ours_port/healthz"
theirs="https://127.0.0.1:$nginx_port/healthz"
echo "edgeprune /healthz: $(check "$ours")   nginx /healthz: $(check "$theirs")"
echo "wrk -t2 -c64 -d${duration}s, $rounds rounds alternating; edgeprune server.threads=$threads, nginx 2 workers; $(nproc) CPUs"
# Warm-up (TLS session setup, page cache), not counted.
wrk -t2 -c64 -d2s "$ours" >/dev/null
wrk -t2 -c64 -d2s "$theirs" >/dev/null

ours_rates=(); nginx_rates=(); ours_cpu=(); nginx_cpu=()
for r in $(seq 1 "$rounds"); do
  if (( r % 2 == 1 )); then
    read -r o oc <<<"$(run_wrk "$ours" "$server_pid")"; read -r n nc <<<"$(run_wrk "$theirs" "$nginx_pid")"
  else
    read -r n nc <<<"$(run_wrk "$theirs" "$nginx_pid")"; read -r o oc <<<"$(run_wrk "$ours" "$server_pid")"
  fi
  ours_rates+=("$o"); nginx_rates+=("$n"); ours_cpu+=("$oc"); nginx_cpu+=("$nc")
  printf 'round %d: edgeprune %8.0f req/s %6.1f CPU-us/req   nginx %8.0f req/s %6.1f CPU-us/req\n' \
    "$r" "$o" "$oc" "$n" "$nc"
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
mo="$(median "${ours_rates[@]}")"; mn="$(median "${nginx_rates[@]}")"
mco="$(median "${ours_cpu[@]}")"; mcn="$(median "${nginx_cpu[@]}")"
ratio="$(awk -v a="$mo" -v b="$mn" 'BEGIN {printf "%.2f", a/b}')"
cpu_ratio="$(awk -v a="$mco" -v b="$mcn" 'BEGIN {printf "%.2f", b/a}')"
printf 'median:  edgeprune %8.0f req/s %6.1f CPU-us/req   nginx %8.0f req/s %6.1f CPU-us/req\n' \
  "$mo" "$mco" "$mn" "$mcn"
# The server CPU per request does not depend on what else runs on the machine (wrk shares the
# cores), so it is the figure to compare on a busy machine; req/s is the target's on an idle one.
printf 'ratio:   req/s %s (target >= 0.80 on an idle machine), CPU per request %s; load %s\n' \
  "$ratio" "$cpu_ratio" "$(cut -d' ' -f1-3 /proc/loadavg)"
