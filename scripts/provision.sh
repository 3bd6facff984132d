#!/usr/bin/env bash
# `npm run provision [-- --env staging] [-- --rotate-admin-token]`: creates what a deploy needs
# (KV namespace, D1 database, their ids in wrangler.toml, remote migrations, the KV seed for
# absent keys, the ADMIN_TOKEN secret), each only if missing. See scripts/provision.mjs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/env.sh
exec node scripts/provision.mjs "$@"
