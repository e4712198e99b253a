#!/usr/bin/env bash
# Check the Helm chart and the manifests generated from it (scripts/test.sh runs this):
#
#   1. install helm 4, helm 3 and kubernetes-validate if missing (scripts/install-chart-tools.sh)
#   2. with helm 4 and helm 3: `helm lint --strict` and `helm template` over each
#      charts/handshake-exporter/ci/*.yaml, offline (in a network namespace with no
#      network when unshare allows it, so any download attempt fails the check)
#   3. `helm package`, and the packaged chart renders its PrometheusRule (the rules copy
#      travels with the chart)
#   4. every rendered manifest, deploy/kubernetes/*.yaml and the hand-written RRSA variant
#      (deploy/kubernetes/rrsa/), validated strictly against
#      the Kubernetes 1.29, 1.31, 1.33 and 1.35 schemas (kubernetes-validate, offline),
#      ServiceMonitor and PrometheusRule against the prometheus-operator v0.93.0 CRDs
#      (vendored in tests/chart/crds/: no PyPI or npm package ships them in a form that
#      rejects unknown fields; @kubernetes-models/prometheus-operator accepts them)
#   5. deploy/kubernetes/ and the chart's rules copy are current (scripts/gen-kubernetes.sh
#      --check); the chart README's values table is current (scripts/gen-chart-readme.py --check)
#   6. tests/chart/test_chart.py: probes on the open paths, ServiceMonitor scheme, TLS and
#      basic-auth references, identity presets, mounts, PDB, checksum, schema typo check,
#      and every scenario's rendered config passes the real binary's --config.check
#      (target/debug/handshake_exporter, built by the cargo test step before this one)
#
# Exits non-zero, naming the file and the problem, at the first failing step.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

chart=charts/handshake-exporter
k8s_versions=(1.29 1.31 1.33 1.35)

step() { printf '== %s\n' "$*"; }
fail() { echo "check-chart: $*" >&2; exit 1; }

step "install chart tools"
bash scripts/install-chart-tools.sh
if [ "$(id -u)" -eq 0 ]; then bin=${CHART_TOOLS_BIN:-/usr/local/bin}; else bin=${CHART_TOOLS_BIN:-$HOME/.local/bin}; fi
helm4=$bin/helm
helm3=$bin/helm3
echo "helm: $("$helm4" version --template '{{.Version}}') ($helm4), $("$helm3" version --template '{{.Version}}') ($helm3)"

start=$(date +%s%N)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Hermetic Helm: no repositories, plugins or caches from the user's home.
export HELM_CACHE_HOME="$tmp/helm/cache" HELM_CONFIG_HOME="$tmp/helm/config" HELM_DATA_HOME="$tmp/helm/data"

# Helm needs no network for lint/template/package of a chart without dependencies, and
# kubernetes-validate reads the schemas inside its wheel: prove it by running everything
# after the install step where there is no network.
offline=()
if unshare -n true 2>/dev/null; then
  offline=(unshare -n)
  echo "helm runs in a network namespace without network (unshare -n)"
else
  echo "note: unshare -n is not permitted here; helm runs with the normal network"
fi

shopt -s nullglob
values_files=("$chart"/ci/*.yaml)
[ ${#values_files[@]} -gt 0 ] || fail "no values files in $chart/ci/"

for h in "$helm4" "$helm3"; do
  hv=$("$h" version --template '{{.Version}}')
  step "helm $hv lint --strict / template: ${#values_files[@]} scenarios"
  mkdir -p "$tmp/render/$hv"
  for f in "${values_files[@]}"; do
    name=$(basename "$f" .yaml)
    if ! out=$("${offline[@]}" "$h" lint --strict "$chart" -f "$f" 2>&1); then
      echo "$out" >&2
      fail "helm $hv lint --strict failed for $f"
    fi
    if ! "${offline[@]}" "$h" template handshake-exporter "$chart" --namespace monitoring -f "$f" \
        >"$tmp/render/$hv/$name.yaml" 2>"$tmp/err"; then
      cat "$tmp/err" >&2
      fail "helm $hv template failed for $f"
    fi
    printf '  %-28s lint ok, %2d manifests\n' "$name" "$(grep -c '^kind:' "$tmp/render/$hv/$name.yaml")"
  done
done

step "helm package; the package renders its PrometheusRule"
"${offline[@]}" "$helm4" package "$chart" --destination "$tmp/pkg" >/dev/null
pkg=("$tmp"/pkg/*.tgz)
if ! "${offline[@]}" "$helm4" template t "${pkg[0]}" --set prometheusRule.enabled=true | grep -q '^kind: PrometheusRule'; then
  fail "the packaged chart $(basename "${pkg[0]}") renders no PrometheusRule"
fi
echo "  $(basename "${pkg[0]}") ok"

step "validate manifests: Kubernetes ${k8s_versions[*]} (strict) + prometheus-operator CRDs"
kargs=()
for v in "${k8s_versions[@]}"; do kargs+=(-k "$v"); done
"${offline[@]}" python3 scripts/validate-manifests.py "${kargs[@]}" --crds tests/chart/crds \
  "$tmp"/render/*/*.yaml deploy/kubernetes/*.yaml deploy/kubernetes/rrsa/*.yaml

step "deploy/kubernetes and the chart's rules copy are current"
HELM=$helm4 "${offline[@]}" bash scripts/gen-kubernetes.sh --check

step "chart README lists every value with its default"
python3 scripts/gen-chart-readme.py --check

step "chart behaviour tests (tests/chart/test_chart.py)"
HELM=$helm4 "${offline[@]}" python3 tests/chart/test_chart.py

ms=$((($(date +%s%N) - start) / 1000000))
printf 'check-chart: OK in %d.%01d s after install (helm %s and %s)\n' $((ms / 1000)) $((ms % 1000 / 100)) \
  "$("$helm4" version --template '{{.Version}}')" "$("$helm3" version --template '{{.Version}}')"
