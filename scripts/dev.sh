#!/usr/bin/env bash
# The dev command (`npm run dev`): set-up, local D1 migrations, KV seed, .dev.vars, then
# `wrangler dev` on http://127.0.0.1:8787 (wrangler builds the Worker through [build]).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/env.sh
bash scripts/migrate.sh
bash scripts/seed.sh
[ -f .dev.vars ] || { cp .dev.vars.example .dev.vars; echo "==> created .dev.vars from .dev.vars.example"; }
exec wrangler dev --ip 127.0.0.1 --port "${PORT:-8787}" --persist-to "$PERSIST_DIR" "$@"
