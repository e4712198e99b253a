#!/usr/bin/env bash
# Whole-process benchmark: builds the release binary and the bench example, then runs
# it (simulator in-process on 127.0.0.1, the real binary spawned against it) and
# prints Markdown tables. Takes about two minutes on 2 cores after the build.
#
#   scripts/bench.sh                 # refresh, many sources, the binary (~2 min)
#   BENCH_SECONDS=1 scripts/bench.sh # shorter load cells
#   BENCH_PARTS=scale scripts/bench.sh   # 10k / 100k / 200x500 invitations: refresh,
#                                        # memory, scrape waves (~5 min; BENCH_SETTLE=60)
#
# Micro-benchmarks (render, gzip, signing, parsing): cargo bench --bench hot
set -euo pipefail
cd "$(dirname "$0")/.."

# Two builds, not one: built together with the example, the binary would also get
# the features that dev-dependencies turn on in shared crates (a bigger binary than
# the one that ships).
cargo build --release --bin handshake_exporter
cargo build --release --example bench
target_dir="${CARGO_TARGET_DIR:-target}"
HANDSHAKE_EXPORTER_BIN="${HANDSHAKE_EXPORTER_BIN:-$target_dir/release/handshake_exporter}" \
  exec "$target_dir/release/examples/bench" "$@"
