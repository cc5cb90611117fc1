#!/usr/bin/env bash
# The Debian packages, built from this build and run from where they install (CTest: packages).
#   1. cpack writes edgeprune-server and edgeprune-agent .debs into <build>/packages/;
#   2. lintian finds no error in either; the control data says what it must (dependencies found by
#      dpkg-shlibdeps, conffiles, maintainer scripts);
#   3. both are unpacked with dpkg-deb -x into one temporary root, and the packaged binaries run
#      from their packaged paths against each other over loopback: the server (with the packaged
#      server.toml and migrations) and the agent (through /usr/bin/edgeprune-agent, a symlink, so it
#      must find edgeprune_agent_torch.so next to its resolved binary in /usr/lib/edgeprune/):
#      train a master (the packaged CLI), upload it with the packaged operator CLI `edgeprune`
#      (the packaged model worker validates it), enroll, deploy, build and sign the variant, install it, answer /v1/infer on Fashion-MNIST
#      test images with the accuracy the server measured for that variant on the same images.
# What this does not prove: the maintainer scripts and systemd units on a real system
# (tests/bench/install_packages.sh installs them with apt-get and starts them as their users).
#
#   packages_test.sh <build dir>
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="$(cd "${1:?usage: packages_test.sh <build dir>}" && pwd)"
FMNIST="${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"
WORK="$(mktemp -d /tmp/edgeprune-packages.XXXXXX)"
KEEP_VAR=EDGEPRUNE_PACKAGES_KEEP
source "$ROOT/tests/deploy/lib.sh"

step "1. cpack"
rm -rf "$BUILD/packages"
(cd "$BUILD" && cpack --config CPackConfig.cmake >"$WORK/cpack.log" 2>&1) || fail "cpack failed"
SERVER_DEB="$(ls "$BUILD"/packages/edgeprune-server_*.deb)"
AGENT_DEB="$(ls "$BUILD"/packages/edgeprune-agent_*.deb)"
ls -l "$SERVER_DEB" "$AGENT_DEB"

step "2. lintian and control data"
for deb in "$SERVER_DEB" "$AGENT_DEB"; do
  lintian --fail-on error "$deb" >"$WORK/lintian.log" 2>&1 ||
    { cat "$WORK/lintian.log"; fail "lintian reports errors in $(basename "$deb")"; }
  printf '%s: %s lintian warning(s)/info, no error\n' "$(basename "$deb")" "$(grep -c '' "$WORK/lintian.log")"
  depends="$(dpkg-deb -f "$deb" Depends)"
  for lib in libc6 libstdc++6 libssl3 libsqlite3-0 adduser; do
    [[ "$depends" == *"$lib"* ]] || fail "$(basename "$deb") Depends lacks $lib: $depends"
  done
done
[[ "$(dpkg-deb -f "$AGENT_DEB" Depends)" == *libtorch1.13* ]] ||
  fail "the agent package does not depend on libtorch1.13 (its runtime module links it)"
[[ "$(dpkg-deb -f "$SERVER_DEB" Depends)" == *libtorch1.13* ]] ||
  fail "the server package does not depend on libtorch1.13 (its model worker links it)"
mkdir -p "$WORK/ctl-server" "$WORK/ctl-agent"
dpkg-deb -e "$SERVER_DEB" "$WORK/ctl-server"
dpkg-deb -e "$AGENT_DEB" "$WORK/ctl-agent"
grep -qx /etc/edgeprune/server.toml "$WORK/ctl-server/conffiles" || fail "server.toml is not a conffile"
grep -qx /etc/edgeprune/agent.toml "$WORK/ctl-agent/conffiles" || fail "agent.toml is not a conffile"
grep -q 'adduser --system' "$WORK/ctl-server/postinst" || fail "the server postinst makes no system user"
grep -q 'chmod 0700 /var/lib/edgeprune$' "$WORK/ctl-server/postinst" || fail "/var/lib/edgeprune is not 0700"

step "3. unpack both into $WORK/root"
R="$WORK/root"
dpkg-deb -x "$SERVER_DEB" "$R"
dpkg-deb -x "$AGENT_DEB" "$R"
for f in usr/bin/edgeprune-server usr/lib/edgeprune/edgeprune-agent usr/lib/edgeprune/edgeprune_agent_torch.so \
         usr/bin/edgeprune usr/share/bash-completion/completions/edgeprune \
         usr/share/edgeprune/migrations/sqlite/0001_init.sql usr/share/edgeprune/migrations/postgresql/0001_init.sql lib/systemd/system/edgeprune-server.service \
         lib/systemd/system/edgeprune-worker.service \
         lib/systemd/system/edgeprune-agent.service etc/edgeprune/server.toml etc/edgeprune/agent.toml; do
  [[ -e "$R/$f" ]] || fail "/$f is not in the packages"
done
[[ -L "$R/usr/bin/edgeprune-agent" ]] || fail "/usr/bin/edgeprune-agent is not a symlink"
unit="$R/lib/systemd/system/edgeprune-agent.service"
for opt in NoNewPrivileges=true ProtectSystem=strict PrivateTmp=true User=edgeprune-agent; do
  grep -qx "$opt" "$unit" || fail "the agent's unit lacks $opt"
done
unit="$R/lib/systemd/system/edgeprune-worker.service"
grep -qx 'ExecStart=/usr/bin/edgeprune-server worker --config /etc/edgeprune/server.toml' "$unit" ||
  fail "the worker's unit does not start edgeprune-server worker"
for opt in NoNewPrivileges=true ProtectSystem=strict PrivateTmp=true User=edgeprune; do
  grep -qx "$opt" "$unit" || fail "the worker's unit lacks $opt"
done
SERVER="$R/usr/bin/edgeprune-server"
AGENT="$R/usr/bin/edgeprune-agent"

step "4. the packaged server on loopback"
"$ROOT/deploy/pki/make-dev-pki.sh" "$WORK/pki" >"$WORK/pki.log" 2>&1 || fail "make-dev-pki failed"
# The packaged server.toml, with this test's paths and a port the kernel picks.
SET=(--set "server.listen_host=127.0.0.1" --set "server.listen_port=0" --set "server.data_dir=$WORK/data"
     --set "server.tls_cert=$WORK/pki/server.pem" --set "server.tls_key=$WORK/pki/server.key"
     --set "server.client_ca=$WORK/pki/device-ca.pem"
     --set "fleet.device_ca_cert=$WORK/pki/device-ca.pem" --set "fleet.device_ca_key=$WORK/pki/device-ca.key"
     --set "fleet.heartbeat_interval_s=1" --set "fleet.flush_interval_ms=200"
     --set "variants.dataset_dir=$FMNIST" --set "variants.train_limit=500" --set "variants.test_limit=200"
     --set "variants.finetune_steps=10" --set "variants.step_finetune_steps=10")
CONF=(--config "$R/etc/edgeprune/server.toml")
TOKEN="$("$SERVER" token "${CONF[@]}" "${SET[@]}" create --name packages --role admin 2>"$WORK/token.log")" ||
  fail "token create failed"
"$SERVER" serve "${CONF[@]}" "${SET[@]}" >"$WORK/server.log" 2>&1 &
PIDS+=($!)
PORT="$(port_from "$WORK/server.log" '^listening on https://[^:]+:([0-9]+).*' "${PIDS[0]}")" ||
  fail "the packaged server did not start listening"
grep -q "migrations from $R/usr/share/edgeprune/migrations" "$WORK/server.log" ||
  fail "the server did not read the packaged migrations"
URL="https://localhost:$PORT"
CURL=(curl -sS --fail-with-body --cacert "$WORK/pki/ca.pem" --max-time 60 -H "Authorization: Bearer $TOKEN")
"$SERVER" train --arch lenet5 --dataset fashion-mnist --data-dir "$FMNIST" --threads 1 \
  --out "$WORK/master.pt" --epochs 2 --train-limit 10000 >"$WORK/train.log" 2>&1 || fail "train failed"
# The packaged operator CLI, with the token from the environment and no context file of the user's.
EP=(env EDGEPRUNE_CONFIG="$WORK/cli/config.json" EDGEPRUNE_TOKEN="$TOKEN" "$R/usr/bin/edgeprune"
    --server "$URL" --ca "$WORK/pki/ca.pem")
bash -n "$R/usr/share/bash-completion/completions/edgeprune" || fail "the bash completion does not parse"
MODEL="$("${EP[@]}" -o json models upload "$WORK/master.pt" --name lenet5 --dataset fashion-mnist \
  --input-shape 1,28,28 2>"$WORK/upload.log" | json 'd["id"]')" ||
  fail "upload failed (the packaged model worker validates it)"
grep -q '(100%)' "$WORK/upload.log" || fail "the packaged CLI showed no upload progress"
echo "model $MODEL uploaded by the packaged CLI, validated by the packaged model worker"

step "5. the packaged agent: enroll, profile"
mkdir -p "$WORK/agent/trusted-keys"
cp "$WORK/data/signing.pub" "$WORK/agent/trusted-keys/"
ENROLL="$("${EP[@]}" -o json enroll-tokens create | json 'd["token"]')"
ASET=(--config "$R/etc/edgeprune/agent.toml" --set "agent.server_url=$URL"
      --set "agent.server_ca=$WORK/pki/ca.pem" --set "agent.state_dir=$WORK/agent"
      --set "agent.bench_ms=200" --set "agent.heartbeat_interval_s=1" --set "local_api.port=0")
"$AGENT" enroll "${ASET[@]}" --token "$ENROLL" >"$WORK/enroll.log" 2>&1 || fail "enroll failed"
DEVICE="$(sed -nE 's/^enrolled as (.*)$/\1/p' "$WORK/enroll.log")"
[[ -n "$DEVICE" ]] || fail "enroll printed no device id"
"$AGENT" run "${ASET[@]}" >"$WORK/agent.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 300); do
  budget="$("${CURL[@]}" "$URL/api/v1/devices/$DEVICE" | json 'bool(d.get("budget"))')"
  [[ "$budget" == True ]] && break
  kill -0 "${PIDS[1]}" 2>/dev/null || fail "the packaged agent exited"
  sleep 1
done
[[ "$budget" == True ]] || fail "device $DEVICE reported no profile (the agent's microbenchmarks need its module)"

step "6. deploy, build, install"
"${EP[@]}" deploy "$MODEL" --device "$DEVICE" >/dev/null || fail "deploy failed"
"${EP[@]}" jobs watch >"$WORK/jobs.log" || fail "the variant build failed: $(tail -n 3 "$WORK/jobs.log")"
installed=""
for _ in $(seq 1 600); do
  installed="$("${CURL[@]}" "$URL/api/v1/devices/$DEVICE" | json 'd.get("installed_variant") or ""')"
  [[ -n "$installed" ]] && break
  kill -0 "${PIDS[1]}" 2>/dev/null || fail "the packaged agent exited"
  sleep 1
done
[[ -n "$installed" ]] || fail "no variant installed on $DEVICE within 600 s"
LOCAL_PORT="$(sed -nE 's/^local api on [^:]+:([0-9]+).*/\1/p' "$WORK/agent.log" | head -n1)"
[[ -n "$LOCAL_PORT" ]] || fail "the agent printed no local api port"
echo "device $DEVICE serves variant $installed on 127.0.0.1:$LOCAL_PORT"

step "7. infer through the packaged agent"
read -r acc p95 < <(python3 "$ROOT/deploy/quickstart_infer.py" "$FMNIST" "$LOCAL_PORT" 200) ||
  fail "inference through the agent failed"
measured="$("${CURL[@]}" "$URL/api/v1/models/$MODEL/variants" |
  python3 -c 'import json,sys; print([v for v in json.load(sys.stdin)["items"] if v["id"] == sys.argv[1]][0]["accuracy"])' "$installed")"
echo "accuracy on the first 200 test images: $acc through the agent (p95 $p95 ms), $measured measured by the server's build"
# The same variant on the same 200 images: the agent answers what the server measured (a 2-epoch
# master scores ~0.7; chance is 0.1).
python3 -c 'import sys; a, m = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if a >= 0.5 and abs(a - m) <= 0.01 else 1)' \
  "$acc" "$measured" || fail "accuracy through the packaged agent $acc, the server measured $measured"
echo "packages: ok"
