#!/usr/bin/env bash
# Screenshot of the landing page, for the README: starts `handshake_exporter --demo`
# on a free loopback port, renders http://127.0.0.1:PORT/ in headless Chromium
# (Debian package `chromium`, installed with apt-get if missing), writes
# docs/landing.png (or $1; desktop width, light) and docs/landing-phone-dark.png
# (next to it; a phone's width, dark colour scheme), and stops the exporter.
#
# Where Chromium cannot be installed or run, it prints "SKIPPED: <why>" and exits 0:
# the screenshot is documentation, not a test. Any other failure (the exporter does
# not start, the page does not answer 200) exits 1.
#
# Respects CARGO_TARGET_DIR; needs no network but the apt registry (and loopback).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly OUT=${1:-docs/landing.png}
readonly PHONE_OUT=${OUT%.png}-phone-dark.png
readonly START_TIMEOUT=20   # seconds for the exporter to report its address

work=$(mktemp -d "${TMPDIR:-/tmp}/screenshot.XXXXXX")
exporter_pid=""

log() { printf 'screenshot: %s\n' "$*"; }
skip() {
  printf 'SKIPPED: %s\n' "$*"
  exit 0
}
fail() {
  printf 'screenshot: FAILED: %s\n' "$*" >&2
  if [ -s "$work/exporter.log" ]; then
    echo "---- exporter log ----" >&2
    tail -n 30 "$work/exporter.log" >&2
  fi
  exit 1
}

cleanup() {
  set +e
  if [ -n "$exporter_pid" ]; then
    kill -TERM "$exporter_pid" 2>/dev/null
    wait "$exporter_pid" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sudo=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
  sudo=(sudo -n)
fi

find_chromium() {
  local c
  for c in chromium chromium-browser google-chrome; do
    if command -v "$c" >/dev/null 2>&1; then
      command -v "$c"
      return 0
    fi
  done
  return 1
}

chromium=$(find_chromium) || {
  command -v apt-get >/dev/null 2>&1 || skip "chromium is not installed and there is no apt-get"
  if [ "$(id -u)" -ne 0 ] && [ ${#sudo[@]} -eq 0 ]; then
    skip "chromium is not installed and apt-get needs root (no sudo)"
  fi
  log "installing chromium (Debian package)"
  apt_log="$work/apt.log"
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 \
    install -y --no-install-recommends chromium fonts-dejavu-core >"$apt_log" 2>&1; then
    "${sudo[@]}" apt-get update >>"$apt_log" 2>&1 || true
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 \
      install -y --no-install-recommends chromium fonts-dejavu-core >>"$apt_log" 2>&1 ||
      skip "apt-get install chromium failed: $(tail -n 1 "$apt_log")"
  fi
  chromium=$(find_chromium) || skip "chromium installed but not on PATH"
}

log "building the exporter"
cargo build --quiet --bin handshake_exporter
bin="${CARGO_TARGET_DIR:-target}/debug/handshake_exporter"
[ -x "$bin" ] || fail "$bin not built"

# Port 0: the kernel picks a free one and the exporter logs it ("msg=listening
# address=127.0.0.1:PORT"); no port can be taken between choosing and binding.
"$bin" --demo --web.listen-address=127.0.0.1:0 --log.format=logfmt >"$work/exporter.log" 2>&1 &
exporter_pid=$!
addr=""
for _ in $(seq $((START_TIMEOUT * 10))); do
  addr=$(sed -n 's/.*msg=listening.* address=\([0-9.:]*\).*/\1/p' "$work/exporter.log" | head -n 1)
  [ -n "$addr" ] && break
  kill -0 "$exporter_pid" 2>/dev/null || fail "the exporter exited"
  sleep 0.1
done
[ -n "$addr" ] || fail "the exporter did not report its address within ${START_TIMEOUT}s"
url="http://$addr/"
log "exporter --demo listening on $addr"

# The first visit refreshes every demo source; waiting for it here means the
# browser gets the full page at once.
status=$(curl -s -o "$work/landing.html" -w '%{http_code}' --max-time 30 "$url") || true
[ "$status" = "200" ] || fail "GET $url answered ${status:-nothing}"

mkdir -p "$(dirname "$OUT")"
# shot FILE WIDTH HEIGHT [chromium flags...]
shot() {
  local out=$1 size="$2,$3"
  shift 3
  rm -f "$out"
  if ! timeout 60 "$chromium" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --hide-scrollbars --no-first-run --user-data-dir="$work/profile" \
    --window-size="$size" --screenshot="$out" "$@" "$url" >"$work/chromium.log" 2>&1; then
    skip "chromium did not run: $(grep -v '^\s*$' "$work/chromium.log" | tail -n 1)"
  fi
  [ -s "$out" ] || skip "chromium wrote no screenshot: $(tail -n 1 "$work/chromium.log")"
  log "wrote $out ($(wc -c <"$out") bytes, ${size/,/x}) from $url"
}
shot "$OUT" 1280 2200
# Blink's preferredColorScheme: 0 is dark (what prefers-color-scheme then matches).
shot "$PHONE_OUT" 390 1400 --blink-settings=preferredColorScheme=0
