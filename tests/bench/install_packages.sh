#!/usr/bin/env bash
# Installs the two Debian packages for real (apt-get install ./…deb, as root) and starts them as
# their system users, server and agent on this machine over loopback, then removes them again.
# Proves what tests/deploy/packages_test.sh cannot: apt resolves the declared dependencies, the
# maintainer scripts make the users and the 0700 state directories, the conffiles land in
# /etc/edgeprune, and the binaries run as `edgeprune` / `edgeprune-agent` from /usr/bin with the
# installed migrations and runtime module. Without systemd (a container) it starts the units'
# ExecStart lines with runuser; with systemd it uses systemctl. Not run by CI: it changes the
# machine (packages, users, /etc/edgeprune, /var/lib/edgeprune*).
#
#   tests/bench/install_packages.sh <build dir> [--keep]    (--keep: leave the packages installed)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="$(cd "${1:?usage: install_packages.sh <build dir> [--keep]}" && pwd)"
KEEP=0; [[ "${2:-}" == "--keep" ]] && KEEP=1
[[ $(id -u) -eq 0 ]] || { echo "install_packages: run as root" >&2; exit 2; }
WORK="$(mktemp -d /tmp/edgeprune-install.XXXXXX)"
PIDS=()
SYSTEMD=0; [[ -d /run/systemd/system ]] && SYSTEMD=1
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ $KEEP -eq 0 ]]; then
    [[ $SYSTEMD -eq 1 ]] && systemctl stop edgeprune-agent edgeprune-server 2>/dev/null || true
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq edgeprune-server edgeprune-agent >/dev/null 2>&1 || true
    rm -rf /etc/edgeprune "$WORK"
  fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -n 20 "$WORK"/*.log >&2 || true; exit 1; }
t0=$(date +%s)

ls "$BUILD"/packages/edgeprune-{server,agent}_*.deb >/dev/null 2>&1 ||
  (cd "$BUILD" && cpack --config CPackConfig.cmake >/dev/null)
echo "== apt-get install"
t=$(date +%s)
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$BUILD"/packages/edgeprune-server_*.deb \
  "$BUILD"/packages/edgeprune-agent_*.deb >"$WORK/apt.log" 2>&1 || fail "apt-get install failed"
echo "installed in $(( $(date +%s) - t )) s"
dpkg-query -W -f='${Package} ${Version} Installed-Size ${Installed-Size} KiB\n' edgeprune-server edgeprune-agent
echo "agent's own files: $(du -cb /usr/lib/edgeprune /usr/bin/edgeprune-agent /etc/edgeprune/agent.toml \
  /lib/systemd/system/edgeprune-agent.service /usr/share/doc/edgeprune-agent | tail -n1 | cut -f1) bytes"

echo "== what the maintainer scripts made"
for u in edgeprune edgeprune-agent; do
  getent passwd "$u" | grep -q ":/usr/sbin/nologin$" || fail "system user $u missing or has a login shell"
done
for d in /var/lib/edgeprune:edgeprune /var/lib/edgeprune-agent:edgeprune-agent; do
  [[ "$(stat -c '%a %U' "${d%%:*}")" == "700 ${d##*:}" ]] || fail "${d%%:*} is $(stat -c '%a %U' "${d%%:*}")"
done
ls -ld /var/lib/edgeprune /var/lib/edgeprune-agent

echo "== the server as user edgeprune"
mkdir -p /etc/edgeprune/pki
"$ROOT/deploy/pki/make-dev-pki.sh" /etc/edgeprune/pki >/dev/null
chgrp edgeprune /etc/edgeprune/pki/*.key && chmod 0640 /etc/edgeprune/pki/*.key
TOKEN="$(runuser -u edgeprune -- edgeprune-server token --config /etc/edgeprune/server.toml \
  --set server.listen_host=127.0.0.1 create --name install-test --role admin)"
if [[ $SYSTEMD -eq 1 ]]; then
  systemctl start edgeprune-server
else
  runuser -u edgeprune -- env EDGEPRUNE_SERVER_LISTEN_HOST=127.0.0.1 \
    edgeprune-server serve --config /etc/edgeprune/server.toml >"$WORK/server.log" 2>&1 &
  PIDS+=($!)
fi
CURL=(curl -sS --fail-with-body --cacert /etc/edgeprune/pki/ca.pem --max-time 30 -H "Authorization: Bearer $TOKEN")
for _ in $(seq 1 100); do "${CURL[@]}" https://localhost:8443/healthz >/dev/null 2>&1 && break; sleep 0.2; done
"${CURL[@]}" https://localhost:8443/readyz || fail "the installed server does not answer"
echo
ps -o user=,args= -C edgeprune-server | head -n1

echo "== the agent as user edgeprune-agent"
cp /etc/edgeprune/pki/ca.pem /etc/edgeprune/ca.pem
install -d -o edgeprune-agent -g edgeprune-agent -m 0700 /var/lib/edgeprune-agent/trusted-keys
install -o edgeprune-agent -m 0600 /var/lib/edgeprune/signing.pub /var/lib/edgeprune-agent/trusted-keys/
ENROLL="$("${CURL[@]}" -X POST -d '{}' https://localhost:8443/api/v1/enrollment-tokens |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
runuser -u edgeprune-agent -- edgeprune-agent enroll --config /etc/edgeprune/agent.toml \
  --server https://localhost:8443 --token "$ENROLL" | tee "$WORK/enroll.log"
DEVICE="$(sed -nE 's/^enrolled as (.*)$/\1/p' "$WORK/enroll.log")"
[[ -n "$DEVICE" ]] || fail "enroll failed"
if [[ $SYSTEMD -eq 1 ]]; then
  systemctl start edgeprune-agent
else
  (cd /var/lib/edgeprune-agent && runuser -u edgeprune-agent -- env EDGEPRUNE_AGENT_SERVER_URL=https://localhost:8443 \
    edgeprune-agent run --config /etc/edgeprune/agent.toml >"$WORK/agent.log" 2>&1) &
  PIDS+=($!)
fi
for _ in $(seq 1 120); do
  budget="$("${CURL[@]}" "https://localhost:8443/api/v1/devices/$DEVICE" |
    python3 -c 'import json,sys; print(bool(json.load(sys.stdin).get("budget")))')"
  [[ "$budget" == True ]] && break
  sleep 1
done
[[ "$budget" == True ]] || fail "the installed agent reported no profile"
ps -o user=,args= -C edgeprune-agent | head -n1
echo "device $DEVICE enrolled and profiled by the installed agent"
ls -l /var/lib/edgeprune-agent /var/lib/edgeprune-agent/identity
echo "install_packages: ok in $(( $(date +%s) - t0 )) s"
