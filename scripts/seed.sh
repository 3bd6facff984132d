#!/usr/bin/env bash
# `npm run seed`: the explicit reset. Writes every key of seed-data.json into the local KV
# namespace that `npm run dev` serves, overwriting what is there (admin changes included).
# `npm run dev` itself only fills in keys that are absent. Options go to scripts/seed.mjs:
# `npm run seed -- --missing` fills in absent keys only; `--remote [--env staging]` seeds the
# edge instead (npm run provision does that, for absent keys).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
if [[ " $* " != *" --remote "* ]] && [[ " $* " != *" --local "* ]]; then
  set -- --local "$@"
fi
node scripts/seed.mjs "$@"
