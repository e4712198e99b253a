#!/usr/bin/env bash
# deploy/kubernetes/prometheusrule.yaml is now rendered from the Helm chart, together
# with the other manifests of deploy/kubernetes/, by scripts/gen-kubernetes.sh (which
# also keeps the chart's copy of alerts/handshake_exporter.rules.yml in sync). This name
# stays for the commands and docs that use it:
#
#   scripts/gen-prometheusrule.sh           = scripts/gen-kubernetes.sh
#   scripts/gen-prometheusrule.sh --check   = scripts/gen-kubernetes.sh --check
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/gen-kubernetes.sh" "$@"
