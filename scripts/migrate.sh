#!/usr/bin/env bash
# Applies migrations/ to the local D1 database (the one `npm run dev` serves).
# For the edge: `npx wrangler d1 migrations apply DB --remote`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
CI=true wrangler d1 migrations apply DB --local --persist-to "$PERSIST_DIR"
