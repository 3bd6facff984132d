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
say "native unit tests"
cargo test --quiet
say "wrangler deploy --dry-run (builds build/ through [build])"
wrangler deploy --dry-run --outdir .edgestate/dry-run
say "integration tests in workerd (Miniflare + vitest)"
vitest run
