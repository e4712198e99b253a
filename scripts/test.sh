#!/usr/bin/env bash
# The whole test suite, exactly what CI runs (.ci/run calls this).
# Installs what the tests need (promtool, Prometheus, Alertmanager, hadolint, wrk; helm
# and kubernetes-validate for the chart), then: formatting, lints, unit + integration +
# end-to-end tests, rule tests, the Helm chart and the manifests generated from it,
# Dockerfile lint, and a smoke test of the runtime image
# (skipped with a message where no Docker daemon can be started).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "installing test tools"
bash scripts/install-test-tools.sh

# Tests that need promtool/prometheus/alertmanager fail instead of skipping.
export HANDSHAKE_REQUIRE_TOOLS=1
# Bounded property-based fuzzing of the parsers (cases per property).
export PROPTEST_CASES="${PROPTEST_CASES:-2000}"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --all-targets -- -D warnings

step "cargo test (unit, integration, end-to-end)"
cargo test --all-targets 2>&1 | tee /tmp/handshake_exporter_test.log

step "alerting rules: promtool check + test"
bash scripts/check-rules.sh

step "Helm chart: lint, render, validate (Kubernetes + CRD schemas), generated manifests, tests"
bash scripts/check-chart.sh

step "Dockerfile lint (hadolint)"
bash scripts/lint-docker.sh

step "container image: static binary in the scratch runtime image, run against the simulator"
bash scripts/docker-smoke.sh

passed=$(grep -Eo 'test result: ok\. [0-9]+ passed' /tmp/handshake_exporter_test.log | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' /tmp/handshake_exporter_test.log | awk '{s+=$1} END {print s+0}')
echo
echo "all checks passed"
echo "${passed} passed, ${failed} failed"
