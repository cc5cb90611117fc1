#!/usr/bin/env bash
# The arm64 agent, cross-built and run under qemu-user against the x86 server (issue 17, item 4).
# Not in CI: the first run downloads ~240 MB of arm64 packages and cross-compiles for tens of
# minutes, and the agent runs EMULATED, so its latencies say nothing about a real arm64 gateway.
#
#   1. installs what is missing with apt: Debian's cross compiler (g++-aarch64-linux-gnu),
#      qemu-user-static, file;
#   2. makes an arm64 sysroot of Debian's packages (deploy/cross/make-arm64-sysroot.sh, which
#      says why not multiarch) in <arm64 build dir>/sysroot;
#   3. cross-builds only edgeprune-agent and edgeprune_agent_torch.so into <arm64 build dir>
#      (deploy/build.sh with deploy/cross/aarch64-linux-gnu.cmake; EDGEPRUNE_JOBS, default 1);
#   4. checks with `file` that both are aarch64 ELF;
#   5. runs the arm64 agent under qemu-aarch64-static: registered for aarch64 ELF files through
#      binfmt_misc in a user namespace of its own (Linux >= 6.7, commit 21ca59b365c0), so the agent's microbenchmark
#      child, which it starts as /proc/self/exe, is emulated too, and nothing of the machine's
#      binfmt_misc changes; QEMU_LD_PREFIX points the emulated loader at the sysroot;
#   6. starts the x86 server of <x86 build dir> on loopback (port 0, dev PKI, temp dir), trains a
#      small LeNet-5 master and uploads it with the operator CLI;
#   7. starts an x86 agent and the arm64 agent (tests/deploy/lib.sh start_agents: enroll with a
#      token, profile, poll), deploys the master to both, waits for the build and the installs;
#   8. sends the same Fashion-MNIST test images to both agents' /v1/infer (infer_compare.py),
#      reporting whether their classes agree, the largest score difference and the latencies.
# Times printed: sysroot, build, agent start -> profile, deploy -> installed, start -> installed,
# and p50/p95 of /v1/infer for each agent. Everything it starts is stopped, its temp dir removed.
#
#   tests/bench/arm64_agent.sh <x86 build dir> [<arm64 build dir, default build-arm64>]
#   ARM64_REQUESTS (default 200) images; EDGEPRUNE_ARM64_KEEP=1 keeps the temp dir.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
X86="$(cd "${1:?usage: arm64_agent.sh <x86 build dir> [<arm64 build dir>]}" && pwd)"
ARM="${2:-$ROOT/build-arm64}"
mkdir -p "$ARM"
ARM="$(cd "$ARM" && pwd)"
SYSROOT="$ARM/sysroot"
REQUESTS="${ARM64_REQUESTS:-200}"
FMNIST="${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"
[[ $(id -u) -eq 0 ]] || { echo "arm64_agent: run as root (apt-get, user namespaces)" >&2; exit 2; }
WORK="$(mktemp -d /tmp/edgeprune-arm64.XXXXXX)"
KEEP_VAR=EDGEPRUNE_ARM64_KEEP
source "$ROOT/tests/deploy/lib.sh"
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

step "0. machine"
echo "$(date -u '+%F %H:%M UTC'), $(nproc) cores, $(sed -nE 's/^model name\s*: //p' /proc/cpuinfo | head -n1)"
echo "uptime: $(uptime)"

step "1. host packages"
missing=()
for p in g++-aarch64-linux-gnu qemu-user-static file; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >"$WORK/apt.log" 2>&1 || fail "apt-get install ${missing[*]} failed"
fi
echo "$(aarch64-linux-gnu-g++ --version | head -n1); $(qemu-aarch64-static --version | head -n1)"

step "2. arm64 sysroot in $SYSROOT"
t=$(now)
nice -n 10 "$ROOT/deploy/cross/make-arm64-sysroot.sh" "$SYSROOT" || fail "the sysroot failed"
echo "sysroot step: $(since "$t") s"

step "3. cross-build edgeprune-agent and edgeprune_agent_torch into $ARM (-j ${EDGEPRUNE_JOBS:-1})"
t=$(now)
EDGEPRUNE_BUILD_DIR="$ARM" EDGEPRUNE_BUILD_TARGETS="edgeprune-agent edgeprune_agent_torch" \
  EDGEPRUNE_JOBS="${EDGEPRUNE_JOBS:-1}" nice -n 10 "$ROOT/deploy/build.sh" \
  --toolchain "$ROOT/deploy/cross/aarch64-linux-gnu.cmake" -DCMAKE_SYSROOT="$SYSROOT" \
  -DEDGEPRUNE_BUILD_TESTS=OFF >"$WORK/build.log" 2>&1 || fail "the cross-build failed"
echo "build step: $(since "$t") s ($(grep -cE '^\[[1-9][0-9]*/' "$WORK/build.log" || true) ninja steps run)"

step "4. what was built"
ARM_AGENT="$ARM/agent/edgeprune-agent"
for f in "$ARM_AGENT" "$ARM/agent/edgeprune_agent_torch.so"; do
  desc="$(file -b "$f")"
  echo "$(basename "$f"): $desc"
  [[ "$desc" == ELF\ 64-bit\ LSB*ARM\ aarch64* ]] || fail "$f is not an aarch64 ELF file"
done
for f in "$X86/server/edgeprune-server" "$X86/agent/edgeprune-agent" "$X86/agent/edgeprune_agent_torch.so" \
         "$X86/cli/edgeprune"; do
  [[ -x "$f" || -f "$f" ]] || fail "$f is missing: build the x86 tree first (deploy/build.sh)"
done

step "5. the arm64 agent under qemu-aarch64-static (binfmt_misc in its own user namespace)"
# The binfmt_misc rule of Debian's qemu-user-static (/usr/lib/binfmt.d/qemu-aarch64.conf) with
# the F flag (the interpreter is opened now, so it works inside the namespace) and without P.
MAGIC='\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
MASK='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
RULE=":edgeprune-aarch64:M::$MAGIC:$MASK:$(command -v qemu-aarch64-static):F"
ARM_WRAPPER="$WORK/edgeprune-agent-arm64"
# One process all along (each step execs the next), so a pid taken from `$!` is the agent's.
cat >"$ARM_WRAPPER" <<EOF
#!/bin/sh
exec unshare --user --map-root-user --mount -- sh -c 'mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc && printf "%s" "\$0" >/proc/sys/fs/binfmt_misc/register && exec "\$@"' '$RULE' env QEMU_LD_PREFIX='$SYSROOT' '$ARM_AGENT' "\$@"
EOF
chmod +x "$ARM_WRAPPER"
t=$(now)
"$ARM_WRAPPER" microbench --json --ms 200 >"$WORK/microbench-arm64.json" 2>"$WORK/microbench-arm64.log" ||
  fail "the arm64 agent does not run under emulation (binfmt_misc in a user namespace needs Linux >= 6.7)"
echo "arm64 microbench (LibTorch $(json 'd["torch_version"]' <"$WORK/microbench-arm64.json")): $(since "$t") s," \
  "conv $(json '"%.3f" % d["bench"]["conv_gmacs_per_s"]' <"$WORK/microbench-arm64.json") GMAC/s emulated"
t=$(now)
"$X86/agent/edgeprune-agent" microbench --json --ms 200 >"$WORK/microbench-x86.json" 2>"$WORK/microbench-x86.log" ||
  fail "the x86 agent's microbench failed"
echo "x86 microbench: $(since "$t") s, conv $(json '"%.3f" % d["bench"]["conv_gmacs_per_s"]' <"$WORK/microbench-x86.json") GMAC/s"

step "6. the x86 server on loopback, a LeNet-5 master"
"$ROOT/deploy/pki/make-dev-pki.sh" "$WORK/pki" >"$WORK/pki.log" 2>&1 || fail "make-dev-pki failed"
SERVER="$X86/server/edgeprune-server"
SET=(--set "server.listen_host=127.0.0.1" --set "server.listen_port=0" --set "server.data_dir=$WORK/data"
     --set "server.tls_cert=$WORK/pki/server.pem" --set "server.tls_key=$WORK/pki/server.key"
     --set "server.client_ca=$WORK/pki/device-ca.pem"
     --set "fleet.device_ca_cert=$WORK/pki/device-ca.pem" --set "fleet.device_ca_key=$WORK/pki/device-ca.key"
     --set "fleet.heartbeat_interval_s=1" --set "fleet.flush_interval_ms=200"
     --set "variants.dataset_dir=$FMNIST" --set "variants.train_limit=500" --set "variants.test_limit=200"
     --set "variants.finetune_steps=10" --set "variants.step_finetune_steps=10")
TOKEN="$("$SERVER" token "${SET[@]}" create --name arm64 --role admin 2>"$WORK/token.log")" ||
  fail "token create failed"
"$SERVER" serve "${SET[@]}" >"$WORK/server.log" 2>&1 &
PIDS+=($!)
PORT="$(port_from "$WORK/server.log" '^listening on https://[^:]+:([0-9]+).*' "${PIDS[0]}")" ||
  fail "the server did not start listening"
URL="https://localhost:$PORT"
CURL=(curl -sS --fail-with-body --cacert "$WORK/pki/ca.pem" --max-time 60 -H "Authorization: Bearer $TOKEN")
nice -n 10 "$SERVER" train --arch lenet5 --dataset fashion-mnist --data-dir "$FMNIST" --threads 1 \
  --out "$WORK/master.pt" --epochs 2 --train-limit 10000 >"$WORK/train.log" 2>&1 || fail "train failed"
EP=(env EDGEPRUNE_CONFIG="$WORK/cli/config.json" EDGEPRUNE_TOKEN="$TOKEN" "$X86/cli/edgeprune"
    --server "$URL" --ca "$WORK/pki/ca.pem")
MODEL="$("${EP[@]}" -o json models upload "$WORK/master.pt" --name lenet5 --dataset fashion-mnist \
  --input-shape 1,28,28 2>"$WORK/upload.log" | json 'd["id"]')" || fail "upload failed"
echo "server on $URL, model $MODEL"

step "7. an x86 agent and the arm64 agent: enroll, profile"
declare -A STARTED PROFILED INSTALLED START_TO_INSTALLED DEVICE
STARTED[x86]=$(now)
AGENT="$X86/agent/edgeprune-agent" start_agents x86
STARTED[arm64]=$(now)
AGENT="$ARM_WRAPPER" start_agents arm64
device_of() {  # hostname -> device id, once its profile (and so its budget) is in
  "${CURL[@]}" "$URL/api/v1/devices" |
    json '"".join(x["id"] for x in d["items"] if x.get("hostname") == args[0] and x.get("budget"))' "$1"
}
for _ in $(seq 1 1200); do
  for name in x86 arm64; do
    [[ -n "${DEVICE[$name]:-}" ]] && continue
    id="$(device_of "agent-$name")"
    if [[ -n "$id" ]]; then DEVICE[$name]=$id; PROFILED[$name]=$(since "${STARTED[$name]}"); fi
  done
  [[ -n "${DEVICE[x86]:-}" && -n "${DEVICE[arm64]:-}" ]] && break
  for p in "${AGENT_PIDS[@]}"; do kill -0 "$p" 2>/dev/null || fail "an agent exited"; done
  sleep 0.5
done
[[ -n "${DEVICE[x86]:-}" && -n "${DEVICE[arm64]:-}" ]] || fail "the agents did not report profiles within 600 s"
for name in x86 arm64; do
  echo "$name: device ${DEVICE[$name]} profiled ${PROFILED[$name]} s after its start: $("${CURL[@]}" \
    "$URL/api/v1/devices/${DEVICE[$name]}" | json '"arch %s, conv %.3f GMAC/s, budget max_macs %s" % (d["profile"]["arch"], d["profile"]["microbench"]["conv_gmacs_per_s"], (d.get("budget") or {}).get("max_macs"))')"
done

step "8. deploy to both, build, install"
t_deploy=$(now)
"${EP[@]}" deploy "$MODEL" --device "${DEVICE[x86]}" --device "${DEVICE[arm64]}" >/dev/null || fail "deploy failed"
"${EP[@]}" jobs watch >"$WORK/jobs.log" || fail "the variant build failed: $(tail -n 3 "$WORK/jobs.log")"
BUILT=$(since "$t_deploy")
declare -A VARIANT
for _ in $(seq 1 1200); do
  for name in x86 arm64; do
    [[ -n "${VARIANT[$name]:-}" ]] && continue
    v="$("${CURL[@]}" "$URL/api/v1/devices/${DEVICE[$name]}" | json 'd.get("installed_variant") or ""')"
    if [[ -n "$v" ]]; then
      VARIANT[$name]=$v; INSTALLED[$name]=$(since "$t_deploy"); START_TO_INSTALLED[$name]=$(since "${STARTED[$name]}")
    fi
  done
  [[ -n "${VARIANT[x86]:-}" && -n "${VARIANT[arm64]:-}" ]] && break
  for p in "${AGENT_PIDS[@]}"; do kill -0 "$p" 2>/dev/null || fail "an agent exited"; done
  sleep 0.5
done
[[ -n "${VARIANT[x86]:-}" && -n "${VARIANT[arm64]:-}" ]] || fail "no variant installed on both within 600 s"
[[ "${VARIANT[x86]}" == "${VARIANT[arm64]}" ]] ||
  fail "the two devices got different variants (${VARIANT[x86]} on x86, ${VARIANT[arm64]} on arm64): their budgets differ"
echo "variant ${VARIANT[x86]} built ${BUILT} s after the deploy"
for name in x86 arm64; do
  echo "$name: installed ${INSTALLED[$name]} s after the deploy, ${START_TO_INSTALLED[$name]} s after its start"
done

step "9. the same $REQUESTS test images through both agents' /v1/infer"
declare -A LPORT
for name in x86 arm64; do
  LPORT[$name]="$(sed -nE 's/^local api on [^:]+:([0-9]+).*/\1/p' "$WORK/agent-$name.log" | head -n1)"
  [[ -n "${LPORT[$name]}" ]] || fail "agent $name printed no local api port"
done
python3 "$ROOT/tests/bench/infer_compare.py" "$FMNIST" "$REQUESTS" "x86=${LPORT[x86]}" \
  "arm64=${LPORT[arm64]}" >"$WORK/compare.json" || fail "infer_compare failed"
C="$WORK/compare.json"
echo "classes agree on $(json 'd["classes_agree"]' <"$C") of $(json 'd["images"]' <"$C") images;" \
  "largest |score difference| $(json '"%.3g" % d["max_abs_score_diff"]' <"$C")"

step "summary (arm64 EMULATED under qemu-user on this x86 machine; not arm64 hardware)"
printf '%-28s %14s %14s\n' "" "x86 (native)" "arm64 (EMULATED)"
printf '%-28s %14s %14s\n' "start -> profile (s)" "${PROFILED[x86]}" "${PROFILED[arm64]}"
printf '%-28s %14s %14s\n' "deploy -> installed (s)" "${INSTALLED[x86]}" "${INSTALLED[arm64]}"
printf '%-28s %14s %14s\n' "start -> installed (s)" "${START_TO_INSTALLED[x86]}" "${START_TO_INSTALLED[arm64]}"
row() { printf '%-28s %14s %14s\n' "$1" "$(json "$2" x86 <"$C")" "$(json "$2" arm64 <"$C")"; }
row "/v1/infer p50, client (ms)" '"%.2f" % d["agents"][args[0]]["client_ms"]["p50"]'
row "/v1/infer p95, client (ms)" '"%.2f" % d["agents"][args[0]]["client_ms"]["p95"]'
row "forward p50, agent (ms)" '"%.2f" % d["agents"][args[0]]["forward_ms"]["p50"]'
row "forward p95, agent (ms)" '"%.2f" % d["agents"][args[0]]["forward_ms"]["p95"]'
row "accuracy" '"%.4f" % d["agents"][args[0]]["accuracy"]'
echo "(build of the variant: ${BUILT} s after the deploy; deploy -> installed includes it)"
echo "uptime: $(uptime)"
agree="$(json 'd["classes_agree"] == d["images"]' <"$C")"
[[ "$agree" == True ]] || fail "the arm64 agent's classes differ from the x86 agent's"
echo "arm64_agent: ok"
