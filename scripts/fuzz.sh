#!/usr/bin/env bash
# Fuzzes the request parsers with cargo-fuzz (libFuzzer, nightly) for a bounded time per
# target (default 300 s). Not part of `npm test`. Crashes land in fuzz/artifacts/; turn
# each into a regression test in tests/properties.rs or the module's unit tests.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-300}"
export PATH="$HOME/.cargo/bin:$PATH"
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked || cargo install cargo-fuzz
cd fuzz
for target in request_parsers json_bodies; do
  echo "==> fuzzing $target for ${seconds}s"
  cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -max_len=4096
done
