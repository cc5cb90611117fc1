#!/usr/bin/env bash
# The alert rules in deploy/prometheus/alerts.yml: syntax (promtool check rules) and behaviour
# (promtool test rules on deploy/prometheus/alerts_test.yml). deploy/bootstrap.sh installs Debian's
# `prometheus` package, which ships promtool; without it the test is skipped (exit 77), saying so.
set -euo pipefail
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../deploy/prometheus" && pwd)"
if ! command -v promtool >/dev/null 2>&1; then
  echo "SKIP: promtool not found; run deploy/bootstrap.sh (Debian package 'prometheus')"
  exit 77
fi
cd "$DIR"
promtool check rules alerts.yml
promtool test rules alerts_test.yml
