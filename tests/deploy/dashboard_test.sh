#!/usr/bin/env bash
# The Grafana dashboard (deploy/grafana/edgeprune-fleet.json) and the alert rules
# (deploy/prometheus/alerts.yml) proven against real data (CTest: dashboard):
#   1. a real server and two real agents over loopback (dev PKI, mTLS): a small Fashion-MNIST
#      master is trained, uploaded and rolled out in two phases; the variants are built, signed,
#      installed; each agent answers inferences with feedback and reports telemetry; one request
#      is refused (401) so the error panels have data;
#   2. Debian's prometheus scrapes the server (HTTPS, a viewer token, as docs/operations.md says)
#      and both agents' local /metrics every second, with alerts.yml loaded;
#   3. tests/deploy/promql_check.py evaluates every dashboard expression and every alert rule
#      through Prometheus's query API while everything is still running: an expression that
#      errors, a panel that returns nothing, or a rule that reads a metric with no series fails.
# Skipped (exit 77) without the prometheus binary (deploy/bootstrap.sh installs it).
#
#   dashboard_test.sh <build dir>
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="$(cd "${1:?usage: dashboard_test.sh <build dir>}" && pwd)"
FMNIST="${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"
SERVER="$BUILD/server/edgeprune-server"
AGENT="$BUILD/agent/edgeprune-agent"
if ! command -v prometheus >/dev/null 2>&1; then
  echo "SKIP: prometheus not found; run deploy/bootstrap.sh (Debian package 'prometheus')"
  exit 77
fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/edgeprune-dashboard.XXXXXX")"
KEEP_VAR=EDGEPRUNE_DASHBOARD_KEEP
source "$ROOT/tests/deploy/lib.sh"

step "1. server"
"$ROOT/deploy/pki/make-dev-pki.sh" "$WORK/pki" >"$WORK/pki.log" 2>&1 || fail "make-dev-pki failed"
SET=(--set "server.listen_host=127.0.0.1" --set "server.listen_port=0" --set "server.data_dir=$WORK/data"
     --set "server.tls_cert=$WORK/pki/server.pem" --set "server.tls_key=$WORK/pki/server.key"
     --set "server.client_ca=$WORK/pki/device-ca.pem" --set "metrics.require_token=true"
     --set "fleet.device_ca_cert=$WORK/pki/device-ca.pem" --set "fleet.device_ca_key=$WORK/pki/device-ca.key"
     --set "fleet.heartbeat_interval_s=1" --set "fleet.flush_interval_ms=200"
     --set "rollouts.tick_seconds=1"
     --set "variants.dataset_dir=$FMNIST" --set "variants.train_limit=500" --set "variants.test_limit=200"
     --set "variants.finetune_steps=10" --set "variants.step_finetune_steps=10")
ADMIN="$("$SERVER" token "${SET[@]}" create --name dashboard --role admin 2>"$WORK/token.log")" ||
  fail "token create failed"
VIEWER="$("$SERVER" token "${SET[@]}" create --name prometheus --role viewer 2>>"$WORK/token.log")" ||
  fail "viewer token create failed"
"$SERVER" serve "${SET[@]}" >"$WORK/server.log" 2>&1 &
PIDS+=($!)
PORT="$(port_from "$WORK/server.log" '^listening on https://[^:]+:([0-9]+).*' "${PIDS[0]}")" ||
  fail "the server did not start listening"
URL="https://localhost:$PORT"
CURL=(curl -sS --fail-with-body --cacert "$WORK/pki/ca.pem" --max-time 60 -H "Authorization: Bearer $ADMIN")
# A refused request: the error panels and the HTTP error rate must have a series to show.
code="$(curl -s -o /dev/null -w '%{http_code}' --cacert "$WORK/pki/ca.pem" "$URL/api/v1/devices")"
[[ "$code" == 401 ]] || fail "an anonymous request answered $code, not 401"

step "2. master"
"$SERVER" train --arch lenet5 --dataset fashion-mnist --data-dir "$FMNIST" --threads 1 \
  --out "$WORK/master.pt" --epochs 1 --train-limit 5000 >"$WORK/train.log" 2>&1 || fail "train failed"
MODEL="$("${CURL[@]}" --data-binary "@$WORK/master.pt" -H 'Content-Type: application/octet-stream' \
  "$URL/api/v1/models?name=lenet5&dataset=fashion-mnist&input_shape=1,28,28" | json 'd["id"]')" ||
  fail "upload failed"

step "3. two agents"
start_agents a b
LOCAL_PORTS=()
for name in a b; do
  p="$(port_from "$WORK/agent-$name.log" '^local api on [^:]+:([0-9]+).*' "${AGENT_PIDS[${#LOCAL_PORTS[@]}]}")" ||
    fail "agent $name printed no local api port"
  LOCAL_PORTS+=("$p")
done
wait_for_profiles 2

step "4. a two-phase rollout"
# The second phase bakes for an hour, so the rollout is still running (with its gates judged)
# when the dashboard is evaluated.
ROLLOUT="$("${CURL[@]}" -X POST -d "{\"model\": \"$MODEL\",
  \"target\": {\"devices\": [\"${DEVICES[0]}\", \"${DEVICES[1]}\"]},
  \"phases\": [{\"count\": 1, \"bake_seconds\": 0}, {\"percent\": 100, \"bake_seconds\": 3600}],
  \"gates\": [{\"gate\": \"probe_accuracy_drop\", \"threshold\": 0.5, \"action\": \"pause\"},
              {\"gate\": \"p95_over_slo\", \"threshold\": 1.0, \"action\": \"step_down\"}]}" \
  "$URL/api/v1/rollouts" | json 'd["id"]')" || fail "rollout create failed"
for _ in $(seq 1 600); do
  n="$("${CURL[@]}" "$URL/api/v1/devices" | json 'sum(1 for x in d["items"] if x.get("installed_variant"))')"
  [[ "$n" -ge 2 ]] && break
  sleep 1
done
[[ "$n" -ge 2 ]] || fail "rollout $ROLLOUT did not install a variant on both devices within 600 s"

step "5. prometheus"
cat > "$WORK/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $ROOT/deploy/prometheus/alerts.yml
scrape_configs:
  - job_name: edgeprune
    scheme: https
    tls_config:
      ca_file: $WORK/pki/ca.pem
      server_name: localhost
    authorization:
      type: Bearer
      credentials_file: $WORK/prometheus.token
    static_configs:
      - targets: ['127.0.0.1:$PORT']
  - job_name: edgeprune-agent
    static_configs:
      - targets: ['127.0.0.1:${LOCAL_PORTS[0]}', '127.0.0.1:${LOCAL_PORTS[1]}']
YAML
(umask 077 && printf '%s' "$VIEWER" >"$WORK/prometheus.token")
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
  --web.listen-address=127.0.0.1:0 >"$WORK/prometheus.log" 2>&1 &
PIDS+=($!)
PROM_PID=$!
PROM_PORT="$(port_from "$WORK/prometheus.log" '.*msg="Listening on" address=[^ ]*:([0-9]+).*' "$PROM_PID")" ||
  fail "prometheus did not start"
PROM="http://127.0.0.1:$PROM_PORT"

step "6. traffic while prometheus scrapes"
# Inferences with feedback through both agents, for about 20 s (and one refused request each): live latency, feedback accuracy,
# inference counts and their rates all have samples in the last minute.
for port in "${LOCAL_PORTS[@]}"; do
  python3 - "$FMNIST" "$port" <<'PY' || fail "inference traffic through port $port failed"
import gzip, http.client, json, os, struct, sys, time
d, port = sys.argv[1], int(sys.argv[2])
def idx(stem):
    p = os.path.join(d, stem)
    f = gzip.open(p + ".gz") if os.path.exists(p + ".gz") else open(p, "rb")
    b = f.read(); n = b[3]; dims = struct.unpack(">" + "I" * n, b[4:4 + 4 * n]); return dims, b[4 + 4 * n:]
(count, h, w), x = idx("t10k-images-idx3-ubyte"); _, y = idx("t10k-labels-idx1-ubyte")
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
# One refused request, so the refusals panel has a series.
c.request("POST", "/v1/infer", json.dumps({"shape": [1], "data": [0.0]}), {"Content-Type": "application/json"})
r = c.getresponse(); r.read()
if r.status != 400: sys.exit("a bad shape answered %d, not 400" % r.status)
end = time.time() + 10
i = 0
while time.time() < end:
    k = i % count  # a fast machine goes round the test set more than once in 10 s
    pixels = x[k * h * w:(k + 1) * h * w]
    body = json.dumps({"shape": [1, 1, h, w], "data": [p / 255.0 for p in pixels]})
    c.request("POST", "/v1/infer", body, {"Content-Type": "application/json"})
    r = c.getresponse(); a = json.loads(r.read())
    if r.status != 200: sys.exit("infer answered %d: %s" % (r.status, a))
    c.request("POST", "/v1/feedback", json.dumps({"request_id": a["request_id"], "label": y[k]}),
              {"Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    if r.status != 200: sys.exit("feedback answered %d" % r.status)
    i += 1
PY
done
# Both targets up and the newest telemetry scraped (telemetry.interval_s=1; reports flush each tick).
for _ in $(seq 1 60); do
  up="$(curl -s "$PROM/api/v1/query?query=sum(up)" | json 'd["data"]["result"][0]["value"][1] if d["data"]["result"] else "0"')"
  [[ "$up" == 3 ]] && break
  sleep 1
done
[[ "$up" == 3 ]] || fail "prometheus scrapes $up of 3 targets"
sleep 5

step "7. every expression of the dashboard and the alert rules"
python3 "$ROOT/tests/deploy/promql_check.py" "$PROM" "$ROOT/deploy/grafana/edgeprune-fleet.json" ||
  fail "the dashboard or the alert rules do not hold against real data"
# The check itself must catch what it is for: a panel reading a metric that does not exist.
python3 - "$ROOT/deploy/grafana/edgeprune-fleet.json" "$WORK/broken.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["panels"][-1]["targets"].append({"refId": "Z", "expr": "edgeprune_devicez{job=~\"$job\"}"})
json.dump(d, open(sys.argv[2], "w"))
PY
if python3 "$ROOT/tests/deploy/promql_check.py" "$PROM" "$WORK/broken.json" >"$WORK/broken.out" 2>&1; then
  fail "promql_check.py passed a dashboard with a misspelt metric"
fi
grep -q "returns nothing: edgeprune_devicez" "$WORK/broken.out" || fail "promql_check.py did not name the empty panel"
echo "dashboard: ok"
