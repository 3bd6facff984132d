#!/usr/bin/env bash
# `npm run deploy [-- --env staging] [-- other wrangler deploy options]`: set-up, then
# `wrangler deploy` (which builds the Worker through [build]). Without --env it deploys the
# top level (production) and says so to wrangler (`--env=`), which otherwise warns that
# wrangler.toml defines more than one environment. Run `npm run provision` first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/env.sh
case " $* " in
  *" --env "* | *" --env="* | *" -e "*) ;;
  *) set -- --env= "$@" ;;
esac
exec wrangler deploy "$@"
