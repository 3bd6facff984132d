-- edgestate schema, v7: scoped admin tokens (src/domain/tokens.rs).
--
-- Credentials for automation beside ADMIN_TOKEN, each with a unique name (the config
-- history's writer) and a scope: read, flags or sessions. Only the SHA-256 of a token is
-- stored, as for session ids. Isolates read the whole table (at most 100 rows) at most every
-- 10 s, and for an unknown token at most every 2 s; a deleted row is a revoked token.
CREATE TABLE admin_tokens (
  hash       TEXT PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE,
  scope      TEXT NOT NULL CHECK (scope IN ('read', 'flags', 'sessions')),
  created_at INTEGER NOT NULL,
  created_by TEXT NOT NULL
);
