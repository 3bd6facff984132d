# Sourced by the scripts: tool paths and quiet, offline-friendly wrangler settings.
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"
export WRANGLER_SEND_METRICS=false
# Where `wrangler dev`, `migrate` and `seed` keep local KV and D1 (git-ignored).
export PERSIST_DIR="${PERSIST_DIR:-.wrangler/state}"
