#!/usr/bin/env bash
# Loads seed-data.json into the local KV namespace that `npm run dev` serves. Locally
# wrangler dev uses the binding's preview_id; wrangler insists on --preview or
# --preview false when both ids are set (they are equal placeholders in wrangler.toml).
# For the edge: `npx wrangler kv bulk put seed-data.json --binding CACHE --remote`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
wrangler kv bulk put seed-data.json --binding CACHE --local --preview --persist-to "$PERSIST_DIR"
