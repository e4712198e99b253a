#!/usr/bin/env bash
# Smoke test of the runtime container image (Dockerfile.runtime), for CI:
#   1. reach a Docker daemon, or start one (dockerd --bridge=none --iptables=false),
#      installing Debian's docker.io if needed; skip (exit 0) if none can be started;
#   2. build the static release binary (+crt-static) and check that it is static;
#   3. build the image with the legacy builder (no registry, no BuildKit needed);
#   4. run it with --demo on a loopback port (host network), wait for both demo
#      sources to be up, check it runs as 65534, and that SIGTERM exits 0;
#   5. print "docker-smoke: OK (image <size>)".
# Everything it creates (container, images, the daemon it started) is removed on exit.
#
# Respects CARGO_TARGET_DIR. The image is built from a small temporary context laid out
# as Dockerfile.runtime expects (target/<triple>/release/handshake_exporter and
# target/ca-certificates.crt), so the repository's own target/ is never written to.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly TRIPLE=x86_64-unknown-linux-gnu
readonly IMAGE=handshake_exporter:smoke
readonly CONTAINER=hx-smoke
readonly CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
readonly READY_TIMEOUT=20   # seconds for dockerd and for the exporter's metrics

t_start=$SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/docker-smoke.XXXXXX")
dockerd_pid=""        # set only if this script started dockerd
dockerd_log="$work/dockerd.log"
container_created=0
image_id=""           # the image this script built
declare -a build_ids=()   # every image id the build printed that did not exist before

log() { printf 'docker-smoke: %s\n' "$*"; }
fail() {
  printf 'docker-smoke: FAILED: %s\n' "$*" >&2
  exit 1
}
elapsed() { echo "$((SECONDS - t_start))s"; }

sudo=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
fi

# apt-get install, with `apt-get update` only if the install fails without it.
apt_install() {
  local out="$work/apt.log"
  if "${sudo[@]}" apt-get install -y --no-install-recommends "$@" >"$out" 2>&1; then
    return 0
  fi
  log "apt-get install $* failed; running apt-get update and retrying"
  "${sudo[@]}" apt-get update >>"$out" 2>&1 || true
  if "${sudo[@]}" apt-get install -y --no-install-recommends "$@" >>"$out" 2>&1; then
    return 0
  fi
  tail -n 20 "$out" >&2
  return 1
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if [ "$rc" -ne 0 ] && [ "$container_created" -eq 1 ]; then
    echo "---- container logs ($CONTAINER) ----" >&2
    docker logs "$CONTAINER" 2>&1 | tail -n 40 >&2
  fi
  if [ "$container_created" -eq 1 ]; then
    docker rm -f "$CONTAINER" >/dev/null 2>&1
  fi
  if [ -n "$image_id" ]; then
    # Untags and removes the image and its (untagged) intermediate parents.
    docker rmi -f "$image_id" >/dev/null 2>&1
  fi
  # Intermediate images left by a build that failed half-way: children first.
  local i id
  for ((i = ${#build_ids[@]} - 1; i >= 0; i--)); do
    id=${build_ids[i]}
    if docker image inspect "$id" >/dev/null 2>&1; then
      docker rmi -f "$id" >/dev/null 2>&1
    fi
  done
  if [ -n "$dockerd_pid" ]; then
    if [ "$rc" -ne 0 ] && [ -s "$dockerd_log" ]; then
      echo "---- dockerd log (last lines) ----" >&2
      tail -n 20 "$dockerd_log" >&2
    fi
    local containerd_pid=""
    containerd_pid=$(cat /var/run/docker/containerd/containerd.pid 2>/dev/null || true)
    kill -TERM "$dockerd_pid" 2>/dev/null
    for _ in $(seq 1 50); do
      kill -0 "$dockerd_pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$dockerd_pid" 2>/dev/null; then
      echo "docker-smoke: dockerd did not stop on SIGTERM; killing it" >&2
      kill -KILL "$dockerd_pid" 2>/dev/null
      # Its managed containerd would outlive it.
      if [ -n "$containerd_pid" ]; then kill -TERM "$containerd_pid" 2>/dev/null; fi
    fi
    wait "$dockerd_pid" 2>/dev/null
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------
# 1. A Docker daemon.
# ---------------------------------------------------------------------------------
skip() {
  log "SKIPPED: no Docker daemon can be started here ($*)"
  exit 0
}

if ! docker info >/dev/null 2>&1; then
  if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    log "installing docker.io"
    apt_install docker.io || skip "cannot install docker.io"
    hash -r
  fi
  if [ "$(id -u)" -ne 0 ]; then
    skip "not root, and no daemon is reachable"
  fi
  log "starting dockerd (log: $dockerd_log)"
  dockerd --bridge=none --iptables=false >"$dockerd_log" 2>&1 &
  dockerd_pid=$!
  # Our own daemon, on its default socket, whatever DOCKER_HOST/DOCKER_CONTEXT said.
  export DOCKER_HOST=unix:///var/run/docker.sock
  unset DOCKER_CONTEXT
  deadline=$((SECONDS + READY_TIMEOUT))
  until docker info >/dev/null 2>&1; do
    if ! kill -0 "$dockerd_pid" 2>/dev/null; then
      wait "$dockerd_pid" 2>/dev/null || true
      dockerd_pid=""
      reason=$(grep -E 'level=(fatal|error)' "$dockerd_log" | tail -n 1 | sed -E 's/.*msg="([^"]*)".*/\1/')
      skip "dockerd exited: ${reason:-$(tail -n 1 "$dockerd_log")}"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      reason=$(grep -E 'level=(fatal|error)' "$dockerd_log" | tail -n 1 | sed -E 's/.*msg="([^"]*)".*/\1/')
      skip "dockerd not ready after ${READY_TIMEOUT}s${reason:+: $reason}"
    fi
    sleep 0.5
  done
fi
log "docker daemon $(docker version --format '{{.Server.Version}}') ready ($(elapsed))"

for tool in curl:curl file:file; do
  if ! command -v "${tool%%:*}" >/dev/null 2>&1; then
    apt_install "${tool#*:}" || fail "cannot install ${tool#*:}"
  fi
done
[ -r "$CA_BUNDLE" ] || apt_install ca-certificates || fail "no $CA_BUNDLE"

# A container left by an earlier run that was killed before its cleanup.
if docker container inspect "$CONTAINER" >/dev/null 2>&1; then
  log "removing container $CONTAINER left by an earlier run"
  docker rm -f "$CONTAINER" >/dev/null
fi

# ---------------------------------------------------------------------------------
# 2. Static release binary.
# ---------------------------------------------------------------------------------
log "cargo build --release --target $TRIPLE (+crt-static)"
t=$SECONDS
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --release --locked --target "$TRIPLE"
target_dir=$(cargo metadata --format-version 1 --no-deps --locked |
  grep -o '"target_directory":"[^"]*"' | sed -E 's/.*:"(.*)"/\1/')
bin="$target_dir/$TRIPLE/release/handshake_exporter"
[ -x "$bin" ] || fail "no binary at $bin"
log "built $bin in $((SECONDS - t))s"

file_out=$(file -b "$bin")
echo "  file: $file_out"
case "$file_out" in
  *"statically linked"* | *"static-pie linked"*) ;;
  *) fail "binary is not static (file: $file_out)" ;;
esac
ldd_out=$(ldd "$bin" 2>&1 || true)
echo "  ldd:  $ldd_out"
case "$ldd_out" in
  *"not a dynamic executable"* | *"statically linked"*) ;;
  *) fail "binary is not static (ldd: $ldd_out)" ;;
esac

# ---------------------------------------------------------------------------------
# 3. Image (legacy builder) from a minimal context laid out as the Dockerfile expects.
# ---------------------------------------------------------------------------------
ctx="$work/context"
mkdir -p "$ctx/target/$TRIPLE/release"
cp "$bin" "$ctx/target/$TRIPLE/release/handshake_exporter"
cp "$CA_BUNDLE" "$ctx/target/ca-certificates.crt"

version=$(sed -nE 's/^version = "([^"]+)"/\1/p' Cargo.toml | head -n 1)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
docker images -aq | sort -u >"$work/images.before"

log "docker build -f Dockerfile.runtime -t $IMAGE (legacy builder)"
t=$SECONDS
build_rc=0
DOCKER_BUILDKIT=0 docker build --force-rm \
  -f Dockerfile.runtime -t "$IMAGE" --iidfile "$work/iid" \
  --build-arg VERSION="${version:-unknown}" \
  --build-arg REVISION="$revision" \
  --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  "$ctx" 2>&1 | tee "$work/build.log" || build_rc=$?
# Each step's image (" ---> 0123456789ab"), if the build made it (not taken from cache).
while read -r id; do
  grep -qx "$id" "$work/images.before" || build_ids+=("$id")
done < <(sed -nE 's/^ ---> ([0-9a-f]{12})$/\1/p' "$work/build.log")
if [ -s "$work/iid" ]; then
  image_id=$(cat "$work/iid")
fi
if [ "$build_rc" -ne 0 ] || [ -z "$image_id" ]; then
  fail "docker build failed (exit $build_rc)"
fi

size_bytes=$(docker image inspect -f '{{.Size}}' "$image_id")
size=$(docker image ls --format '{{.Size}}' "$IMAGE")
log "image $IMAGE ${image_id#sha256:} built in $((SECONDS - t))s: $size ($size_bytes bytes)"

# ---------------------------------------------------------------------------------
# 4. Run it on loopback and scrape it.
# ---------------------------------------------------------------------------------
# A port below the ephemeral range (so the kernel does not hand it to another socket
# meanwhile) that nothing on this host is using now.
free_port() {
  local p _
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 12000))
    # /proc/net/tcp*: local address "0100007F:4E20" (port in hex), any state.
    if ! awk -v port="$(printf ':%04X' "$p")" 'substr($2, length($2) - 4) == port { f = 1 } END { exit !f }' \
      /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

# Waits until /metrics has both demo sources up. Returns 2 if the container exited
# because the port was taken meanwhile (worth another port), 1 on any other failure.
wait_metrics() {
  local url=$1 deadline=$((SECONDS + READY_TIMEOUT)) body="$work/metrics.txt" running logs
  while :; do
    if curl -fsS --noproxy '*' --max-time 2 "$url" -o "$body" 2>/dev/null &&
      grep -Eq '^handshake_source_up\{[^}]*source="alibaba-rd"[^}]*\} 1$' "$body" &&
      grep -Eq '^handshake_source_up\{[^}]*source="huawei-sent"[^}]*\} 1$' "$body"; then
      return 0
    fi
    running=$(docker inspect -f '{{.State.Running}}' "$CONTAINER" 2>/dev/null || echo false)
    if [ "$running" != true ]; then
      logs=$(docker logs "$CONTAINER" 2>&1 || true)
      if [[ $logs == *"cannot listen"* ]]; then
        return 2
      fi
      echo "docker-smoke: container $CONTAINER exited (code $(docker inspect -f '{{.State.ExitCode}}' "$CONTAINER" 2>/dev/null))" >&2
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "docker-smoke: $url: both demo sources not up after ${READY_TIMEOUT}s" >&2
      if [ -s "$body" ]; then grep '^handshake_source_up' "$body" >&2 || true; fi
      return 1
    fi
    sleep 0.5
  done
}

t=$SECONDS
for attempt in 1 2 3; do
  port=$(free_port) || fail "no free loopback port found"
  log "docker run $IMAGE --demo --web.listen-address=127.0.0.1:$port (host network)"
  container_created=1
  docker run -d --network host --name "$CONTAINER" "$IMAGE" \
    --demo --web.listen-address="127.0.0.1:$port" >/dev/null
  wait_rc=0
  wait_metrics "http://127.0.0.1:$port/metrics" || wait_rc=$?
  [ "$wait_rc" -eq 2 ] || break
  log "port $port was taken meanwhile; trying another (attempt $attempt)"
  docker rm -f "$CONTAINER" >/dev/null
  container_created=0
done
[ "$wait_rc" -eq 0 ] || fail "metrics not served as expected"
grep -E '^handshake_source_up\{' "$work/metrics.txt" | sed 's/^/  /'
log "both demo sources up after $((SECONDS - t))s"

user=$(docker inspect -f '{{.Config.User}}' "$CONTAINER")
case "$user" in
  65534 | 65534:*) ;;
  *) fail "container user is '${user}', want 65534" ;;
esac
# The running process itself, when the daemon shares this host's PID namespace.
pid=$(docker inspect -f '{{.State.Pid}}' "$CONTAINER")
if [ -r "/proc/$pid/status" ]; then
  uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")
  [ "$uids" = "65534 65534 65534 65534" ] || fail "process $pid runs with uids '$uids', want 65534"
  log "runs as user $user (process $pid: uid 65534)"
else
  log "runs as user $user"
fi

t=$SECONDS
docker stop -t 10 "$CONTAINER" >/dev/null
exit_code=$(docker inspect -f '{{.State.ExitCode}}' "$CONTAINER")
[ "$exit_code" = 0 ] || fail "exporter exited with $exit_code on SIGTERM, want 0"
log "stopped on SIGTERM in $((SECONDS - t))s with exit code 0"

log "total $(elapsed)"
log "OK (image $size)"
