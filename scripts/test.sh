#!/usr/bin/env bash
# The test command (`npm test`, and what .ci/run runs): set-up, format and lint checks,
# native unit tests, the Worker built to Wasm by `wrangler deploy --dry-run` (which also
# proves the deploy bundle), then the integration tests against that build in workerd.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/env.sh
say() { printf '\n==> %s\n' "$*"; }

say "cargo fmt --check"
cargo fmt --check
say "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
say "native unit and property tests"
cargo test --quiet --lib --tests
say "wrangler deploy --dry-run (builds build/ through [build])"
wrangler deploy --dry-run --outdir .edgestate/dry-run
say "integration tests in workerd (Miniflare + vitest)"
report=.edgestate/vitest.json
mkdir -p .edgestate
status=0
vitest run --reporter=default --reporter=json --outputFile.json="$report" || status=$?
# One plain closing line for CI: "integration: N passed, N failed".
node -e 'const r = require(process.argv[1]); console.log(`integration: ${r.numPassedTests} passed, ${r.numFailedTests} failed`)' "$PWD/$report" || true
exit "$status"
