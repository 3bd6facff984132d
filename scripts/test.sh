#!/usr/bin/env bash
# The test command (`npm test`, and what .ci/run runs): set-up, format and lint checks,
# native unit, property and architecture tests, docs/openapi.json regenerated-or-fail (feature
# `openapi`) and linted (spectral, redocly, examples), the tests' types (tsc), the API docs, the Worker built to Wasm by
# `wrangler deploy --dry-run` (which also proves the deploy bundle), the library example
# built to Wasm, then the integration tests against both builds in workerd and the script
# tests (tests/scripts/: npm run dev on ports 8833-8834, provision against a stub wrangler)
# and the console's browser tests (tests/browser/: npm run dev on port 8870, Debian's
# Chromium, which set-up installs with --browser).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --browser
. scripts/env.sh
say() { printf '\n==> %s\n' "$*"; }

say "cargo fmt --all --check"
cargo fmt --all --check
say "cargo clippy --workspace --all-targets --features edgestate/openapi -- -D warnings"
cargo clippy --locked --workspace --all-targets --features edgestate/openapi --quiet -- -D warnings
say "native unit, property, architecture and OpenAPI tests (docs/openapi.json: regenerate with npm run openapi)"
cargo test --locked --quiet --features openapi --lib --tests
say "the contract lints clean (spectral:oas, redocly recommended, every example valid)"
bash scripts/lint-openapi.sh
say "the tests' JSDoc types check (tsc, strict)"
tsc -p tests/jsconfig.json
say "cargo doc --no-deps (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --quiet --no-deps
say "wrangler deploy --dry-run (builds build/ through [build])"
wrangler deploy --dry-run --env= --outdir .edgestate/dry-run
say "examples/embed: a second Worker using edgestate as a library, built to Wasm"
(cd examples/embed && bash ../../scripts/build.sh)
say "a test build that panics on GET /__panic (tests/worker/panic.test.js)"
BUILD_DIR=target/panic-probe/build bash scripts/build.sh --out-dir target/panic-probe/build \
  -- --features panic-probe >.edgestate/panic-probe-build.log 2>&1 ||
  { tail -n 40 .edgestate/panic-probe-build.log; exit 1; }
say "integration tests in workerd (Miniflare + vitest)"
report=.edgestate/vitest.json
mkdir -p .edgestate
status=0
vitest run --reporter=default --reporter=json --outputFile.json="$report" || status=$?
# One plain closing line for CI: "integration: N passed, N failed".
node -e 'const r = require(process.argv[1]); console.log(`integration: ${r.numPassedTests} passed, ${r.numFailedTests} failed`)' "$PWD/$report" || true
exit "$status"
