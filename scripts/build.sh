#!/usr/bin/env bash
# Builds a Worker crate to its build/ folder with worker-build, pointing it at local tools so
# nothing is downloaded from outside the package registries (scripts/setup.sh installs them).
# Builds the crate in the current directory (wrangler runs this as the [build] command of
# wrangler.toml, from that file's folder): the project root, or examples/embed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
[ -f Cargo.toml ] || cd "$root"
export PATH="$HOME/.cargo/bin:$root/node_modules/.bin:$PATH"
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen)}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$root/node_modules/binaryen/bin/wasm-opt}"
export ESBUILD_BIN="${ESBUILD_BIN:-$root/node_modules/.bin/esbuild}"
exec worker-build --release "$@"
