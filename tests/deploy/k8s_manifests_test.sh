#!/usr/bin/env bash
# CTest k8s.manifests: deploy/k8s/ checked against the built server by
# tools/k8s/check_manifests.py, then the checker itself shown to catch what it claims to: copies
# of the manifests with one mistake each must fail with that mistake named.
#   k8s_manifests_test.sh <edgeprune-server binary>
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SERVER="${1:?usage: k8s_manifests_test.sh <edgeprune-server binary>}"
CHECK=(/usr/bin/python3 "$ROOT/tools/k8s/check_manifests.py")
WORK="$(mktemp -d "${TMPDIR:-/tmp}/edgeprune-k8s.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

"${CHECK[@]}" "$ROOT/deploy/k8s" "$SERVER"

# broken <name> <file> <sed expression> <expected problem text>
broken() {
  rm -rf "$WORK/k8s" && cp -r "$ROOT/deploy/k8s" "$WORK/k8s"
  sed -i "$3" "$WORK/k8s/$2"
  cmp -s "$ROOT/deploy/k8s/$2" "$WORK/k8s/$2" && { echo "FAIL: $1: the edit changed nothing"; exit 1; }
  if out="$("${CHECK[@]}" "$WORK/k8s" "$SERVER" 2>&1)"; then
    echo "FAIL: $1: the checker accepted it"; exit 1
  fi
  grep -qF -- "$4" <<<"$out" || { echo "FAIL: $1: expected '$4' in:"; echo "$out"; exit 1; }
  echo "caught: $1"
}
broken "unknown command" worker.yaml 's/args: \["worker"/args: ["wrker"/' "'wrker' is not an edgeprune-server command"
broken "unknown flag" api.yaml 's/"--config", "\/etc/"--confg", "\/etc/' "has no flag --confg"
broken "unknown key in the environment" api.yaml 's/EDGEPRUNE_STORE_URL/EDGEPRUNE_STORE_URI/' "EDGEPRUNE_STORE_URI is not a configuration key"
broken "unknown key in server.toml" configmap.yaml 's/require_token = true/require_tokens = true/' "does not pass \`config --check\`"
broken "probe of a missing route" api.yaml 's/path: \/readyz/path: \/ready/' "asks for /ready"
broken "path outside every mount" configmap.yaml 's#data_dir = "/var/lib/edgeprune"#data_dir = "/srv/edgeprune"#' "neither under a volume mount nor packaged"
broken "service selecting nothing" service.yaml 's/component: api/component: apis/' "does not select the API pods"
broken "unlisted manifest" kustomization.yaml '/- service.yaml/d' "kustomization.yaml: lists"
echo "k8s manifests: checked, and 8 broken copies caught"
