#!/usr/bin/env bash
# The dev command: `npm run dev [-- --port N] [-- other wrangler dev options]`, or PORT=N.
#
# In this order, so that a second `npm run dev` never touches a running server's state:
#   1. the port (default 8787) must be free on 127.0.0.1, and no other `npm run dev` may be
#      serving the same local state (PERSIST_DIR, default .wrangler/state); else it stops
#      within a second, having changed nothing;
#   2. set-up, local D1 migrations, and the KV seed for keys that are absent (admin changes
#      such as a PATCHed flag survive restarts; `npm run seed` is the explicit reset);
#   3. .dev.vars from .dev.vars.example if absent, then `wrangler dev` on
#      http://127.0.0.1:PORT (wrangler builds the Worker through [build]).
set -euo pipefail
cd "$(dirname "$0")/.."

port="${PORT:-8787}"
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port="${2:-}"; shift $(( $# > 1 ? 2 : 1 )) ;;
    --port=*) port="${1#--port=}"; shift ;;
    --ip|--ip=*) echo "npm run dev serves on 127.0.0.1 only; drop $1" >&2; exit 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
if ! [[ "$port" =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
  echo "npm run dev: --port (or PORT) must be a number from 1 to 65535, got '$port'" >&2
  exit 2
fi

# 1. Nothing below runs unless this server can start.
if ! node -e '
  const s = require("net").createServer();
  s.once("error", () => process.exit(1));
  s.listen(Number(process.argv[1]), "127.0.0.1", () => s.close());
' "$port"; then
  echo "npm run dev: port $port on 127.0.0.1 is in use (another npm run dev?)." >&2
  echo "  Stop that server, or pick another port: PORT=8788 npm run dev, or npm run dev -- --port 8788" >&2
  exit 1
fi
# One dev server per local state: the lock file names the server's pid (this script's, which
# `exec` hands to wrangler) and is claimed atomically, so two concurrent starts cannot both
# pass. A lock whose process is gone is stale and taken over.
persist="${PERSIST_DIR:-.wrangler/state}"
lock="$persist/dev-server.pid"
mkdir -p "$persist"
claim() { ( set -o noclobber; echo "$$ $port" > "$lock" ) 2>/dev/null; }
if ! claim; then
  read -r other_pid other_port < "$lock" || true
  if [ -n "${other_pid:-}" ] && ps -p "$other_pid" -o command= 2>/dev/null | grep -Eq 'wrangler|dev\.sh'; then
    echo "npm run dev: another dev server (pid $other_pid, port ${other_port:-?}) serves the local state in $persist." >&2
    echo "  Stop it, or give this one its own state: PERSIST_DIR=.wrangler/state-2 npm run dev -- --port $port" >&2
    exit 1
  fi
  rm -f "$lock"
  claim || { echo "npm run dev: another dev server is starting on $persist" >&2; exit 1; }
fi

# 2. Set-up, schema and seed.
bash scripts/setup.sh
. scripts/env.sh
bash scripts/migrate.sh
node scripts/seed.mjs --local --missing

# 3. Secrets, then the server (exec: the pid in the lock file becomes wrangler's).
[ -f .dev.vars ] || { cp .dev.vars.example .dev.vars; echo "==> created .dev.vars from .dev.vars.example"; }
exec wrangler dev --ip 127.0.0.1 --port "$port" --persist-to "$PERSIST_DIR" ${args[@]+"${args[@]}"}
