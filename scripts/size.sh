#!/usr/bin/env bash
# Size attribution of the Worker's Wasm: builds it once more into target/size/ keeping the
# function names (the same code as build/; `strip` off, wasm-opt keeps the name section), then
# runs bench/size.mjs on it: the top contributors, written to bench/size.json, and a check
# that no function of `url`/`idna` (and what they bring) is linked (exit 1 if one is).
# The first run compiles the dependencies again into target/size (a few minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
echo "==> named build (target/size/build)"
mkdir -p .edgestate
CARGO_TARGET_DIR=target/size CARGO_PROFILE_RELEASE_STRIP=false NO_MINIFY=1 \
  bash scripts/build.sh --out-dir target/size/build >.edgestate/size-build.log 2>&1 ||
  { tail -n 40 .edgestate/size-build.log; exit 1; }
node bench/size.mjs target/size/build/index_bg.wasm bench/size.json
