#!/usr/bin/env bash
# deploy/quickstart_loop.sh evaluates Python expressions over the server's JSON with its json()
# helper. Issue 13 item 10: a device-reported installed_variant reached that eval. This test runs the
# script's own helper and its variant lookup with a hostile variant id, and checks that no json()
# expression in deploy/ is built from shell expansions (double-quoted), so server or device data is
# only ever an argument. Run by CTest (quickstart_json).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SCRIPT="$ROOT/deploy/quickstart_loop.sh"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# 1. No json() call takes a double-quoted (expanded) expression.
if grep -nE '(^|[^a-z_])json "' "$ROOT"/deploy/*.sh; then
  fail "a json() expression above is built with shell expansion; pass data as an argument"
fi

# 2. The helper and the variant lookup, as the script defines and calls them.
eval "$(grep -E '^json\(\) ' "$SCRIPT")"
lookup="$(grep -E 'read -r params macs < <\(json ' "$SCRIPT" | sed -E 's/.*< <\((json .*"\$variant")( <<<.*)$/\1/')"
[[ "$lookup" == json* ]] || fail "cannot find the variant lookup in $SCRIPT"
VARIANTS_JSON='{"items": [{"id": "v-good", "parameters": 61706, "macs": 429128}]}'
marker="$WORK/pwned"
for variant in "v-good" \
    "x'=='x' or __import__('os').system('touch $marker') or '" \
    "x\"==\"x\" or __import__(\"os\").system(\"touch $marker\") or \"" \
    '$(touch '"$marker"')' ; do
  out="$(eval "$lookup" <<<"$VARIANTS_JSON")"
  [[ ! -e "$marker" ]] || fail "the variant id '$variant' ran code"
  if [[ "$variant" == "v-good" ]]; then
    [[ "$out" == "61706 429128" ]] || fail "lookup of a real variant gave '$out'"
  else
    [[ "$out" == "- -" ]] || fail "lookup of '$variant' gave '$out'"
  fi
done
echo "quickstart_json: ok"
