-- edgestate schema, v1. D1 is the authority wherever KV alone would lose or leak data.
-- Times are milliseconds since the Unix epoch (INTEGER), as in the API.

-- User profiles: the source of truth behind the `user:<id>` SWR cache in KV.
CREATE TABLE users (
  id         TEXT PRIMARY KEY,          -- 1-64 of [A-Za-z0-9_-], validated by the Worker
  name       TEXT NOT NULL,             -- 1-100 characters
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Sessions. Only the SHA-256 (hex) of the session id is stored, never the id itself, so a
-- dump of this table yields no usable session. Revocation sets revoked_at rather than
-- deleting, so a revoked id stays refused even if a stale KV copy names it.
CREATE TABLE sessions (
  id_hash    TEXT PRIMARY KEY,
  user_id    TEXT NOT NULL,
  email      TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  revoked_at INTEGER                    -- NULL while active
) WITHOUT ROWID;
-- Revoke-all by user, and the admin listing filtered by user (newest first).
CREATE INDEX sessions_by_user ON sessions (user_id, created_at DESC);
-- The admin listing's keyset pagination (created_at DESC, id_hash DESC).
CREATE INDEX sessions_by_created ON sessions (created_at DESC, id_hash DESC);

-- Preferences. A NULL column means "the default", so a default changed in code reaches
-- every user who never set that field. PATCH is one upsert that sets only the given
-- columns (COALESCE), so concurrent PATCHes of different fields never overwrite each other;
-- `version` increases with every write and orders the KV copies.
CREATE TABLE preferences (
  user_id       TEXT PRIMARY KEY,
  theme         TEXT CHECK (theme IN ('light', 'dark')),
  language      TEXT,
  notifications INTEGER CHECK (notifications IN (0, 1)),
  version       INTEGER NOT NULL DEFAULT 1,
  updated_at    INTEGER NOT NULL
) WITHOUT ROWID;

-- Strict rate limits: one row per (group:client, fixed window). The Worker increments it
-- with one atomic upsert ... RETURNING count, so concurrent requests cannot over-admit.
-- Rows of ended windows are pruned in the background.
CREATE TABLE rate_limits (
  bucket       TEXT NOT NULL,           -- "<group>:<client>"
  window_start INTEGER NOT NULL,        -- ms, a multiple of the window length
  count        INTEGER NOT NULL,
  PRIMARY KEY (bucket, window_start)
) WITHOUT ROWID;
CREATE INDEX rate_limits_by_window ON rate_limits (window_start);
