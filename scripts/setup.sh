#!/usr/bin/env bash
# One idempotent set-up step shared by `npm run dev`, `npm test` and `npm run bench`.
# Installs exactly what is missing, from the package registries only:
#   node dependencies (pinned wrangler, Node 22 via the `node` package, binaryen, vitest,
#   miniflare), the wasm32 target, worker-build, and wasm-bindgen-cli at exactly the
#   version in Cargo.lock. A second run finds everything in place and takes seconds.
# With --browser (the test command): also Debian's chromium for the console's browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"

WORKER_BUILD_VERSION=0.8.7
say() { printf '==> %s\n' "$*"; }

# 1. Node dependencies, exactly as package-lock.json pins them. `npm ci` never writes the
#    lockfile, so set-up leaves a clone byte-identical. The lockfile holds every platform's
#    optional packages (workerd, esbuild, ... for Linux, macOS and Windows), resolved once and
#    committed, so `npm ci` accepts it on any of them. The stamp (a hash of package.json and
#    the lockfile) skips this step until either changes.
stamp="node_modules/.edgestate-stamp"
sha256() { if command -v sha256sum >/dev/null; then sha256sum; else shasum -a 256; fi; }
want="$(cat package.json package-lock.json | sha256 | cut -c1-16)"
if [ ! -x node_modules/.bin/wrangler ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing node dependencies (npm ci: exactly package-lock.json)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
node_major="$(node_modules/.bin/node --version | sed -E 's/^v([0-9]+).*/\1/')"
if [ "$node_major" != "22" ]; then
  echo "expected Node 22 from node_modules/.bin/node, found $(node_modules/.bin/node --version)" >&2
  exit 1
fi

# 2. The Wasm target.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# 3. worker-build (compiles once, a few minutes on two cores).
if [ "$(worker-build --version 2>/dev/null)" != "$WORKER_BUILD_VERSION" ]; then
  say "installing worker-build $WORKER_BUILD_VERSION"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked
fi

# 4. wasm-bindgen-cli at exactly the wasm-bindgen version in Cargo.lock (a mismatch fails the
#    build). Its own lockfile pins a crate the registry no longer serves, so fall back to a
#    fresh resolution when --locked cannot be satisfied.
bindgen_version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $bindgen_version" ]; then
  say "installing wasm-bindgen-cli $bindgen_version"
  cargo install wasm-bindgen-cli --version "$bindgen_version" --locked \
    || cargo install wasm-bindgen-cli --version "$bindgen_version"
fi

# 5. wasm-opt comes from the npm package `binaryen`; esbuild from wrangler's dependencies.
for tool in node_modules/binaryen/bin/wasm-opt node_modules/.bin/esbuild node_modules/.bin/wrangler; do
  [ -x "$tool" ] || { echo "missing $tool after npm install" >&2; exit 1; }
done
# 6. --browser: Chromium from Debian's packages (/usr/bin/chromium), which the console's
#    browser tests drive through playwright-core. Never a browser download from elsewhere.
if [ "${1:-}" = "--browser" ] && [ ! -x /usr/bin/chromium ] && [ -z "${CHROMIUM:-}" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    say "installing chromium (apt-get) for the browser tests"
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
  else
    echo "no apt-get here: install Chromium yourself and set CHROMIUM=/path/to/chromium for the browser tests" >&2
  fi
fi

say "tools ready: $(node_modules/.bin/wrangler --version 2>/dev/null | tail -n 1 | tr -d ' '), node $(node_modules/.bin/node --version), worker-build $(worker-build --version), $(wasm-bindgen --version)"
