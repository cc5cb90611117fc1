# The full loop of deploy/quickstart.sh, sourced by it once the server answers. Uses BIN, ROOT,
# DATA_DIR, PORT, FAST and SERVER_PID from there. Not meant to run on its own. Operator calls go
# through the operator CLI, `edgeprune` (docs/cli.md), logged in as a context in
# $DATA_DIR/cli/config.json.
# shellcheck shell=bash

BUILD="${EDGEPRUNE_BUILD_DIR:-$ROOT/build}"
AGENT_BIN="$BUILD/agent/edgeprune-agent"
export EDGEPRUNE_CONFIG="$DATA_DIR/cli/config.json"
EP=("$BUILD/cli/edgeprune")
FMNIST="${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"
URL="https://localhost:$PORT"
AGENT_PIDS=()
trap 'for p in "${AGENT_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done;
      kill -TERM $SERVER_PID 2>/dev/null || true; wait 2>/dev/null || true' EXIT INT TERM

# json EXPR [ARG...]: evaluates the Python expression EXPR over the JSON on stdin (as d). EXPR is
# always a constant of this script, single-quoted; anything that came from the server or a device
# goes in as an ARG (args[0], ...) and is only ever data, never code.
json() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {"d": d, "args": sys.argv[2:]}))' "$@"; }

step "5/9 master model (cached in $DATA_DIR/masters)"
mkdir -p "$DATA_DIR/masters"
if [[ $FAST -eq 1 ]]; then
  MASTER="$DATA_DIR/masters/lenet5-fast.pt"; TRAIN=(--epochs 3 --train-limit 20000)
else
  MASTER="$DATA_DIR/masters/lenet5.pt"; TRAIN=(--epochs 6)
fi
if [[ -f "$MASTER" ]]; then
  echo "reusing $MASTER"
else
  nice -n 10 "$BIN" train --arch lenet5 --dataset fashion-mnist --data-dir "$FMNIST" \
    --threads 2 --out "$MASTER" "${TRAIN[@]}"
fi

step "6/9 operator token, login and upload"
(umask 077 && "$BIN" token create --config "$DATA_DIR/server.toml" --name "quickstart-$(date +%s)" \
  --role admin 2>/dev/null >"$DATA_DIR/admin.token")
"${EP[@]}" --context quickstart login --server "$URL" --ca "$DATA_DIR/pki/ca.pem" \
  --token-file "$DATA_DIR/admin.token"
rm -f "$DATA_DIR/admin.token"
MODEL_ID="$("${EP[@]}" --timeout 120 -o json models upload "$MASTER" --name lenet5 \
  --dataset fashion-mnist --input-shape 1,28,28 | json 'd["id"]')"
echo "model $MODEL_ID"

step "7/9 three agents: large, medium, tiny"
mkdir -p "$DATA_DIR/trust"
cp "$DATA_DIR/signing.pub" "$DATA_DIR/trust/"
declare -A CAPS=(
  [large]=""
  [medium]="max_model_bytes = 120000"
  [tiny]="max_model_bytes = 30000"
)
declare -A LOCAL_PORT=([large]=$((PORT + 101)) [medium]=$((PORT + 102)) [tiny]=$((PORT + 103)))
for name in large medium tiny; do
  ENROLL="$("${EP[@]}" -o json enroll-tokens create --note "quickstart $name" | json 'd["token"]')"
  mkdir -p "$DATA_DIR/agents/$name"
  cat > "$DATA_DIR/agents/$name/agent.toml" <<TOML
[agent]
server_url = "$URL"
server_ca = "$DATA_DIR/pki/ca.pem"
state_dir = "$DATA_DIR/agents/$name/state"
enrollment_token = "$ENROLL"
hostname = "quickstart-$name"
heartbeat_interval_s = 2
[caps]
${CAPS[$name]}
[trust]
keys_dir = "$DATA_DIR/trust"
[local_api]
port = ${LOCAL_PORT[$name]}
[telemetry]
interval_s = 10
TOML
  "$AGENT_BIN" run --config "$DATA_DIR/agents/$name/agent.toml" >"$DATA_DIR/agents/$name/agent.log" 2>&1 &
  AGENT_PIDS+=($!)
done

# Wait until the three devices have reported a profile (they then have a budget).
DEVICES=()
for _ in $(seq 1 300); do
  mapfile -t DEVICES < <("${EP[@]}" -o json devices ls --limit 500 |
    json '"\n".join(x["id"] for x in d["items"] if x.get("budget") and x.get("hostname","").startswith("quickstart-"))')
  [[ ${#DEVICES[@]} -ge 3 ]] && break
  sleep 1
done
[[ ${#DEVICES[@]} -ge 3 ]] || { echo "quickstart: agents did not report profiles; see $DATA_DIR/agents/*/agent.log" >&2; exit 1; }

step "8/9 roll out: one canary device first, then the rest, each phase gated"
DEVICE_FLAGS=()
for d in "${DEVICES[@]}"; do DEVICE_FLAGS+=(--device "$d"); done
# Phase 1 is one canary; phase 2 the rest, once the canary has run its variant for the bake time
# with its gates passing (install failures; probe accuracy on the device against the variant's
# test accuracy). A tripped gate pauses the rollout (docs/operations.md#rollouts).
# Progress lines: redrawn in place on a terminal; into a pipe or a log, printed as plain lines and
# only when they change (no cursor codes in a log file).
LAST_STATUS=""
status_line() {
  if [[ -t 1 ]]; then printf '\r\033[K%s' "$1"
  elif [[ "$1" != "$LAST_STATUS" ]]; then printf '%s\n' "$1"; fi
  LAST_STATUS="$1"
}
status_clear() { [[ -t 1 && -n "$LAST_STATUS" ]] && printf '\r\033[K'; LAST_STATUS=""; }
status_keep() { [[ -t 1 && -n "$LAST_STATUS" ]] && printf '\n'; LAST_STATUS=""; }
BAKE=$([[ $FAST -eq 1 ]] && echo 10 || echo 20)
ROLLOUT_ID="$("${EP[@]}" -o json rollouts create --model "$MODEL_ID" "${DEVICE_FLAGS[@]}" \
  --phases 1,100% --bake "$BAKE" --gate install_failure_rate:0.5:pause \
  --gate probe_accuracy_drop:0.2:pause | json 'd["id"]')"
echo "rollout $ROLLOUT_ID"
# Each phase's gate values as the phase leaves them; the server keeps only the current phase's.
gates_of() { json '"\n".join("  phase %d  %-24s value %.4f  threshold %.4f  samples %s/%s  %s" % (d["phase"] + 1, g["gate"], g["value"], g["threshold"], g["samples"], g["min_samples"], "TRIPPED" if g["tripped"] else ("passing" if g["judged"] else "not judged yet")) for g in d.get("gates", [])) or "  phase %d  no gate values yet" % (d["phase"] + 1)'; }
LAST_PHASE=0; LAST_GATES=""; STATE=running
for _ in $(seq 1 300); do
  ROLLOUT="$("${EP[@]}" -o json rollouts show "$ROLLOUT_ID")"
  read -r STATE PHASE COUNTS < <(json '"%s %d %s" % (d["state"], d["phase"], " ".join("phase%d:%s" % (p["index"] + 1, ",".join("%s=%d" % kv for kv in p["counts"].items() if kv[1])) for p in d["phase_counts"]))' <<<"$ROLLOUT")
  if [[ "$PHASE" != "$LAST_PHASE" ]]; then
    status_clear
    printf '%s\n' "$LAST_GATES"
    LAST_PHASE=$PHASE
  fi
  LAST_GATES="$(gates_of <<<"$ROLLOUT")"
  [[ "$STATE" != running && "$STATE" != awaiting_approval ]] && break
  status_line "$(printf '  %s, phase %d/2: %s' "$STATE" $((PHASE + 1)) "$COUNTS")"
  sleep 2
done
status_clear
printf '%s\n' "$LAST_GATES"
echo "  rollout $STATE"
if [[ "$STATE" != completed ]]; then
  "${EP[@]}" rollouts show "$ROLLOUT_ID" >&2 || true
  echo "quickstart: the rollout did not complete ($STATE); see above and $DATA_DIR/agents/*/agent.log" >&2
  exit 1
fi
"${EP[@]}" models variants "$MODEL_ID"
FAILED="$("${EP[@]}" -o json models variants "$MODEL_ID" |
  json 'sum(1 for v in d["items"] if v["status"] == "failed")')"
# ... and until every agent serves its assigned variant.
for _ in $(seq 1 300); do
  PENDING=0
  for d in "${DEVICES[@]}"; do
    got="$("${EP[@]}" -o json devices show "$d" | json 'd.get("installed_variant") or ""')"
    want="$("${EP[@]}" -o json telemetry "$d" --limit 1 | json 'd["assigned_variant"] or ""')"
    [[ -z "$want" && $FAILED -gt 0 ]] && continue  # nothing to install: its build was refused
    [[ -n "$want" && "$got" == "$want" ]] || PENDING=$((PENDING + 1))
  done
  status_line "  agents installing: $PENDING pending"
  [[ $PENDING -eq 0 ]] && { status_keep; break; }
  sleep 2
done

step "9/9 Fashion-MNIST test set through each agent's local API"
LIMIT=$([[ $FAST -eq 1 ]] && echo 2000 || echo 10000)
VARIANTS_JSON="$("${EP[@]}" -o json models variants "$MODEL_ID")"
printf '%-8s %-34s %-14s %10s %10s %9s %9s\n' device budget variant params MACs accuracy p95_ms
for name in large medium tiny; do
  dev="$(for d in "${DEVICES[@]}"; do
    h="$("${EP[@]}" -o json devices show "$d" | json 'd.get("hostname","")')"
    if [[ "$h" == "quickstart-$name" ]]; then echo "$d"; fi; done)"
  info="$("${EP[@]}" -o json devices show "$dev")"
  budget="$(json '"params<=%s macs<=%s" % ((d.get("budget") or {}).get("max_param_bytes","-"), (d.get("budget") or {}).get("max_macs","-"))' <<<"$info")"
  variant="$(json 'd.get("installed_variant") or "-"' <<<"$info")"
  # The installed variant id is what the device reported: an argument, not part of the code
  # (interpolated into the expression, a device could run Python on the operator's machine).
  read -r params macs < <(json '" ".join(str(v.get(k,"-")) for v in d["items"] if v["id"]==args[0] for k in ("parameters","macs")) or "- -"' "$variant" <<<"$VARIANTS_JSON")
  acc=-; p95=-  # a device whose build was refused has nothing to serve
  if [[ "$variant" != "-" ]]; then
    read -r acc p95 < <(python3 "$ROOT/deploy/quickstart_infer.py" "$FMNIST" "${LOCAL_PORT[$name]}" "$LIMIT")
  fi
  printf '%-8s %-34s %-14s %10s %10s %9s %9s\n' "$name" "$budget" "${variant:0:14}" "$params" "$macs" "$acc" "$p95"
done
echo
echo "The operator CLI is logged in: EDGEPRUNE_CONFIG=$EDGEPRUNE_CONFIG $BUILD/cli/edgeprune devices ls"
