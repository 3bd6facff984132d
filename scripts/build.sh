#!/usr/bin/env bash
# Builds a Worker crate to its build/ folder with worker-build, pointing it at local tools so
# nothing is downloaded from outside the package registries (scripts/setup.sh installs them).
# Builds the crate in the current directory (wrangler runs this as the [build] command of
# wrangler.toml, from that file's folder): the project root, or examples/embed.
#
# wasm-opt runs here, on worker-build's output, rather than inside worker-build (its step
# always keeps the Wasm name section, ~150 KB). Stripping the name section in Cargo instead
# (`strip = true`) also drops the target_features section, and wasm-bindgen then prints a
# warning on every build; this way the build is quiet and the upload as small.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
[ -f Cargo.toml ] || cd "$root"
export PATH="$HOME/.cargo/bin:$root/node_modules/.bin:$PATH"
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen)}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$root/node_modules/binaryen/bin/wasm-opt}"
export ESBUILD_BIN="${ESBUILD_BIN:-$root/node_modules/.bin/esbuild}"
# Cargo builds exactly what Cargo.lock pins (--locked), whatever cargo arguments follow `--`.
# (worker-build's own `cargo metadata` runs first and may still bring an outdated lockfile up
# to date; the test command's --locked clippy and tests, which run before any build, fail then.)
args=("$@")
if [[ " $* " == *" -- "* ]]; then args+=(--locked); else args+=(-- --locked); fi
worker-build --release "${args[@]}"

# The feature set worker-build itself enables: what rustc's wasm32 target emits plus the
# exception handling of wasm-bindgen's catch wrappers, and nothing newer than workerd runs.
# BUILD_DIR: where worker-build wrote (its --out-dir); KEEP_NAMES=1 keeps the name section
# (scripts/size.sh attributes the bytes by function name).
features=(mutable-globals sign-ext nontrapping-float-to-int bulk-memory multivalue
  reference-types exception-handling)
wasm="${BUILD_DIR:-build}/index_bg.wasm"
# `worker` 0.8.7 exports wasm-bindgen classes of its own and of wasm-streams (which it depends
# on unconditionally) from every Worker, used or not: IntoUnderlyingSource/Sink/ByteSource,
# ContainerStartupOptions, MinifyConfig and R2Range. edgestate creates none of them, so their
# exports are removed by name here (wasm-opt's own pass), and the -O below drops the code
# only they reached: some 3.8 KB gzip. The glue keeps the classes; nothing calls them.
# docs/upstream.md describes the `worker` feature that would make this step unnecessary.
# KEEP_EXPORTS=1 keeps them (for a Worker built with this script that does use them).
if [ "${KEEP_EXPORTS:-}" != 1 ]; then
  for class in intounderlyingsource intounderlyingsink intounderlyingbytesource \
    containerstartupoptions minifyconfig r2range; do
    "$WASM_OPT_BIN" "$wasm" -o "$wasm.opt" "${features[@]/#/--enable-}" --debuginfo \
      --remove-exports --pass-arg="remove-exports@*$class*"
    mv "$wasm.opt" "$wasm"
  done
fi
names="--strip-debug"
[ "${KEEP_NAMES:-}" = 1 ] && names="--debuginfo"
# wasm-bindgen has read the target_features section by now; neither it nor the producers
# section means anything to the runtime.
"$WASM_OPT_BIN" "$wasm" -o "$wasm.opt" -O "$names" --strip-producers --strip-target-features \
  "${features[@]/#/--enable-}"
mv "$wasm.opt" "$wasm"
# The entry module: scripts/entry.js calls worker-build's handlers without its per-request
# `Proxy`s (see there). worker-build's own index.js becomes glue.mjs, which it imports.
# KEEP_ENTRYPOINT=1 keeps worker-build's entry as it is.
out="$(dirname "$wasm")"
if [ "${KEEP_ENTRYPOINT:-}" != 1 ]; then
  mv "$out/index.js" "$out/glue.mjs"
  cp "$root/scripts/entry.js" "$out/index.js"
fi
printf '[INFO]: wasm-opt -O %s: %s (%s bytes)\n' "$names" "$wasm" "$(wc -c < "$wasm" | tr -d ' ')"
