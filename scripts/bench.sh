#!/usr/bin/env bash
# `npm run bench`: set up, build the release Worker, install the load generator if missing, then
# measure every hot route in local workerd (bench/run.mjs). Writes bench/results.json and the
# README's "## Performance" section. Loopback only; bounded in time (about 2 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"

bash scripts/setup.sh
bash scripts/build.sh

# wrk from Debian's packages.
if ! command -v wrk >/dev/null 2>&1; then
  echo "==> installing wrk (apt-get)"
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq wrk
fi

export PATH="$PWD/node_modules/.bin:$PATH" # Node 22 first
echo "==> benchmark ($(node --version), $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2))"
exec timeout --kill-after=10 270 node bench/run.mjs
