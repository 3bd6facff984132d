#!/usr/bin/env bash
# `npm run bench` (`npm run bench -- --profile` adds perf stages and callgrind counts): set up,
# build the release Worker through `wrangler deploy --dry-run` (its upload size is reported),
# the size attribution (scripts/size.sh: a named build, bench/size.json, and the check that no
# url/idna code is linked), install the load generator if missing, then bench/run.mjs (CPU
# against ceilings, storage per request, D1 at scale through a counting wrapper of the D1
# binding, wrangler dev, start-up, size). Writes bench/results.json and the generated section
# of docs/performance.md, then, when bench/capacity.mjs exists, docs/capacity.md's.
# Loopback only; bounded in time (about 22 minutes after the first build: the last whole run
# took 19 before the flags-at-scale part, which adds about 2.5 and runs alone with
# `BENCH_ONLY=flags npm run bench`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/env.sh
mkdir -p .edgestate

echo "==> wrangler deploy --dry-run (builds build/ through [build])"
wrangler deploy --dry-run --outdir .edgestate/dry-run >.edgestate/dry-run.log 2>&1 ||
  { tail -n 40 .edgestate/dry-run.log; exit 1; }
grep "Total Upload" .edgestate/dry-run.log
echo "==> size attribution (scripts/size.sh)"
bash scripts/size.sh | sed -n '1,20p'

# wrk from Debian's packages.
if ! command -v wrk >/dev/null 2>&1; then
  echo "==> installing wrk (apt-get)"
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq wrk
fi

echo "==> benchmark ($(node --version), $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2))"
# A stuck run ends: 30 minutes, 50 with --profile (callgrind runs workerd some 50 times slower).
limit=1800
case " $* " in *" --profile "*) limit=3000 ;; esac
BENCH_DRY_RUN=.edgestate/dry-run.log exec timeout --kill-after=10 "$limit" node bench/run.mjs "$@"
