#!/usr/bin/env bash
# Check the Prometheus alerting rules with the real promtool:
#   1. promtool check rules  alerts/handshake_exporter.rules.yml   (syntax, templates)
#   2. promtool test rules   alerts/tests/*.yml                     (unit tests)
# Exits non-zero if any step fails. Install promtool with scripts/install-test-tools.sh.
# The copies in the Helm chart and deploy/kubernetes/prometheusrule.yaml are checked by
# scripts/check-chart.sh (scripts/gen-kubernetes.sh --check needs helm).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v promtool >/dev/null 2>&1; then
  echo "check-rules: promtool not found (run scripts/install-test-tools.sh)" >&2
  exit 1
fi

rules=alerts/handshake_exporter.rules.yml
shopt -s nullglob
tests=(alerts/tests/*.yml)
if [ ${#tests[@]} -eq 0 ]; then
  echo "check-rules: no rule tests in alerts/tests/" >&2
  exit 1
fi

echo "== promtool check rules $rules"
promtool check rules "$rules"

echo "== promtool test rules ${tests[*]}"
promtool test rules "${tests[@]}"

echo "check-rules: OK"
