# Shared by the shell tests in tests/deploy/ that run real processes (source it after setting
# WORK, a fresh temp dir, and KEEP_VAR, the name of the variable that keeps WORK for a post-mortem):
#   PIDS+=($!)        processes to stop when the script exits, however it exits
#   fail "why"        prints why and the tail of every $WORK/*.log, exits 1
#   step "title"      a progress line
#   port_from LOG REGEX PID   waits until LOG has a line matching REGEX (group 1 is a port)
#   json EXPR         evaluates EXPR over the JSON on stdin as d (args: the further arguments)
#   free_port         a TCP port free on loopback right now
#   start_postgres    a PostgreSQL of our own (initdb + pg_ctl, Unix socket only); sets STORE_URL
# EDGEPRUNE_BEFORE_CLEANUP may name a function run at exit after the processes are stopped (for
# servers that are not our children, e.g. one started by pg_ctl).
PIDS=()
_edgeprune_cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -n "${EDGEPRUNE_BEFORE_CLEANUP:-}" ]]; then "$EDGEPRUNE_BEFORE_CLEANUP" || true; fi
  if [[ -n "${!KEEP_VAR:-}" ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap _edgeprune_cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for f in "$WORK"/*.log; do [[ -f "$f" ]] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }; done
  exit 1
}
step() { printf '== %s\n' "$*"; }
port_from() {
  local port=""
  for _ in $(seq 1 300); do
    port="$(sed -nE "s#$2#\1#p" "$1" | head -n1)"
    [[ -n "$port" ]] && { echo "$port"; return 0; }
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}
json() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {"d": d, "args": sys.argv[2:]}))' "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_agents NAME...: one real agent per name against $URL ($AGENT, "${CURL[@]}" with an
# operator token, $WORK/pki/ca.pem), each with a fresh enrollment token, state in
# $WORK/agent-NAME/state, log in $WORK/agent-NAME.log, heartbeats and telemetry every second, and
# the server's signing key ($WORK/data/signing.pub) as its trusted key. AGENT_PIDS gets the pids.
AGENT_PIDS=()
start_agents() {
  mkdir -p "$WORK/trust"
  cp "$WORK/data/signing.pub" "$WORK/trust/"
  local name enroll
  for name in "$@"; do
    enroll="$("${CURL[@]}" -X POST -d '{}' "$URL/api/v1/enrollment-tokens" | json 'd["token"]')" ||
      fail "no enrollment token for agent $name"
    mkdir -p "$WORK/agent-$name"
    "$AGENT" run --set "agent.server_url=$URL" --set "agent.server_ca=$WORK/pki/ca.pem" \
      --set "agent.state_dir=$WORK/agent-$name/state" --set "agent.enrollment_token=$enroll" \
      --set "agent.hostname=agent-$name" --set "agent.heartbeat_interval_s=1" \
      --set "agent.bench_ms=200" --set "trust.keys_dir=$WORK/trust" --set "local_api.port=0" \
      --set "telemetry.interval_s=1" >"$WORK/agent-$name.log" 2>&1 &
    PIDS+=($!)
    AGENT_PIDS+=($!)
  done
}
# wait_for_profiles N: DEVICES = the ids of devices that reported a profile, once there are N.
DEVICES=()
wait_for_profiles() {
  for _ in $(seq 1 300); do
    mapfile -t DEVICES < <("${CURL[@]}" "$URL/api/v1/devices" |
      json '"\n".join(x["id"] for x in d["items"] if x.get("budget"))')
    [[ ${#DEVICES[@]} -ge $1 ]] && return 0
    sleep 1
  done
  fail "only ${#DEVICES[@]} of $1 agents enrolled and reported a profile"
}

# start_postgres: initdb + pg_ctl in a private temp dir on a Unix socket ($PGBIN: its server
# binaries), as the user nobody when we are root (PostgreSQL refuses root); stopped and removed at
# exit. Sets PGDIR, AS (the command prefix to run as that user) and STORE_URL.
start_postgres() {
  PGDIR="$(mktemp -d "${TMPDIR:-/tmp}/edgeprune-pg.XXXXXX")"
  AS=()
  if [[ "$(id -u)" == 0 ]]; then chown nobody "$PGDIR"; AS=(runuser -u nobody --); fi
  EDGEPRUNE_BEFORE_CLEANUP=_edgeprune_stop_postgres
  "${AS[@]}" "$PGBIN/initdb" -D "$PGDIR/data" -A trust -U edgeprune -E UTF8 --locale=C --no-sync \
    >"$WORK/initdb.log" 2>&1 || fail "initdb failed"
  "${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 60 \
    -o "-c listen_addresses='' -k $PGDIR -c max_connections=200" start >"$WORK/pg_ctl.log" 2>&1 ||
    fail "pg_ctl start failed: $(cat "$PGDIR/server.log")"
  STORE_URL="postgresql://edgeprune@/postgres?host=$PGDIR"
}
_edgeprune_stop_postgres() {
  "${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$PGDIR"
}
