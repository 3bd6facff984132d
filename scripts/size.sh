#!/usr/bin/env bash
# Size attribution of the Worker's Wasm: builds it once more into target/size/build keeping the
# function names (the same cargo build as build/, whose symbols the release profile keeps;
# only the last wasm-opt keeps the name section instead of dropping it), then runs
# bench/size.mjs on it: the top contributors, written to bench/size.json, and a check that no
# function of `url`/`idna` (and what they bring) is linked (exit 1 if one is).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
echo "==> named build (target/size/build)"
mkdir -p .edgestate
NO_MINIFY=1 KEEP_NAMES=1 BUILD_DIR=target/size/build \
  bash scripts/build.sh --out-dir target/size/build \
  >.edgestate/size-build.log 2>&1 ||
  { tail -n 40 .edgestate/size-build.log; exit 1; }
node bench/size.mjs target/size/build/index_bg.wasm bench/size.json
