#!/usr/bin/env bash
# Heartbeats at fleet scale (issue 18): N simulated mTLS agents (default 20,000) at a 10 s
# interval over two `edgeprune-server serve` replicas sharing one PostgreSQL, then the same agents'
# count on one server with SQLite, side by side. Not run by CI.
#
# Each replica takes half of the agents directly, from its own heartbeat_load process: HAProxy in
# TCP mode holds two descriptors per connection (40,000 for 20,000 agents), and one process can
# hold 20,000 sockets only where the per-process open-file limit is above that (here the hard
# limit is 20,000, so neither a balancer nor one tool process can carry the whole fleet). For the
# same reason the single SQLite server is given the agents only up to what its limit leaves
# room for; the script prints how many.
#
#   tests/bench/heartbeat_replicas.sh [build-dir]
# Environment: AGENTS (20000), INTERVAL_S (10), DURATION_S (60).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="$(cd "${1:-$ROOT/build}" && pwd)"
SERVER="$BUILD/server/edgeprune-server"
TOOL="$BUILD/tests/heartbeat_load"
AGENTS="${AGENTS:-20000}"
INTERVAL_S="${INTERVAL_S:-10}"
DURATION_S="${DURATION_S:-60}"
PGBIN="$(pg_config --bindir 2>/dev/null || true)"
[[ -x "$PGBIN/initdb" ]] || PGBIN=/usr/lib/postgresql/15/bin
for f in "$SERVER" "$TOOL" "$PGBIN/initdb"; do
  [[ -x "$f" ]] || { echo "heartbeat_replicas: $f missing (build heartbeat_load; deploy/bootstrap.sh)" >&2; exit 2; }
done
WORK="$(mktemp -d "${TMPDIR:-/tmp}/edgeprune-hbrep.XXXXXX")"
KEEP_VAR=EDGEPRUNE_BENCH_KEEP
source "$ROOT/tests/deploy/lib.sh"
ulimit -n "$(ulimit -Hn)"
LIMIT="$(ulimit -n)"
HALF=$((AGENTS / 2))

step "PostgreSQL"
start_postgres
"$ROOT/deploy/pki/make-dev-pki.sh" "$WORK/pki" >"$WORK/pki.log" 2>&1 || fail "make-dev-pki failed"

# common SET: what every server here runs with (a fleet on 127.0.0.1: no per-address caps).
COMMON=(--set "server.listen_host=127.0.0.1" --set "server.listen_port=0"
        --set "server.tls_cert=$WORK/pki/server.pem" --set "server.tls_key=$WORK/pki/server.key"
        --set "server.client_ca=$WORK/pki/device-ca.pem"
        --set "fleet.device_ca_cert=$WORK/pki/device-ca.pem" --set "fleet.device_ca_key=$WORK/pki/device-ca.key"
        --set "fleet.heartbeat_interval_s=$INTERVAL_S" --set "fleet.enroll_per_minute=0"
        --set "limits.max_connections=0" --set "limits.max_connections_per_client=0"
        --set "log.level=warn")

# serve NAME DATA [STORE_URL]: starts a server (SQLite in its data dir without a store URL), sets
# PORT_<NAME> and PID_<NAME>.
serve() {
  local store=()
  [[ -n "${3:-}" ]] && store=(--set "store.url=$3")
  "$SERVER" serve "${COMMON[@]}" "${store[@]}" --set "server.data_dir=$WORK/data-$2" \
    >"$WORK/serve-$1.log" 2>&1 &
  PIDS+=($!)
  local port
  port="$(port_from "$WORK/serve-$1.log" '^listening on https://[^:]+:([0-9]+).*' "$!")" ||
    fail "server $1 did not start"
  printf -v "PORT_$1" '%s' "$port"
  printf -v "PID_$1" '%s' "$!"
}
# enrollment_token PORT ADMIN USES: a token for USES enrollments.
enrollment_token() {
  curl -sS --fail-with-body --cacert "$WORK/pki/ca.pem" -H "Authorization: Bearer $2" \
    -d "{\"max_uses\": $3}" "https://localhost:$1/api/v1/enrollment-tokens" | json 'd["token"]'
}
# load NAME PORT PID AGENTS: one heartbeat_load process against a running server (background).
load() {
  "$TOOL" --agents "$4" --interval-s "$INTERVAL_S" --duration-s "$DURATION_S" \
    --port "$2" --token "$TOKEN" --ca "$WORK/pki/ca.pem" --server-pid "$3" \
    --connect-concurrency 64 --enroll-threads 2 >"$WORK/load-$1.log" 2>&1 &
  LOADS+=($!)
}
report() {  # NAME: the figures of one load process
  echo "--- $1"
  grep -E "^(connected|enrolled)|^p50|^p99|^max|^rate:|^server:|^load average" "$WORK/load-$1.log" || cat "$WORK/load-$1.log"
}

step "two replicas on PostgreSQL, $HALF agents each (open-file limit $LIMIT)"
PG_URL="$STORE_URL"
ADMIN="$("$SERVER" token "${COMMON[@]}" --set "store.url=$PG_URL" --set "server.data_dir=$WORK/data-pg" \
  create --name bench --role admin 2>"$WORK/token.log")" || fail "token create failed"
serve a pg "$PG_URL"
serve b pg "$PG_URL"
TOKEN="$(enrollment_token "$PORT_a" "$ADMIN" "$AGENTS")" || fail "no enrollment token"
LOADS=()
load a "$PORT_a" "$PID_a" "$HALF"
load b "$PORT_b" "$PID_b" "$HALF"
rc=0
for p in "${LOADS[@]}"; do wait "$p" || rc=1; done
report a; report b
echo "PostgreSQL rows: $("${AS[@]}" psql -h "$PGDIR" -U edgeprune -d postgres -Atc 'SELECT COUNT(*) FROM devices' 2>/dev/null || echo '?') devices"
kill "$PID_a" "$PID_b" 2>/dev/null || true

# One SQLite server: as many agents as its descriptor limit leaves room for (listening socket,
# database, logs and some slack: 100).
SINGLE=$(( AGENTS < LIMIT - 100 ? AGENTS : LIMIT - 100 ))
step "one server on SQLite, $SINGLE agents from two load processes"
ADMIN="$("$SERVER" token "${COMMON[@]}" --set "server.data_dir=$WORK/data-sqlite" \
  create --name bench --role admin 2>>"$WORK/token.log")" || fail "token create failed"
serve s sqlite
TOKEN="$(enrollment_token "$PORT_s" "$ADMIN" "$AGENTS")" || fail "no enrollment token"
LOADS=()
load s1 "$PORT_s" "$PID_s" $((SINGLE / 2))
load s2 "$PORT_s" "$PID_s" $((SINGLE - SINGLE / 2))
for p in "${LOADS[@]}"; do wait "$p" || rc=1; done
report s1; report s2
exit "$rc"
