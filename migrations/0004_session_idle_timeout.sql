-- Idle timeouts: a session unused for `sessionIdleSeconds` is refused, and use moves this
-- deadline (never past expires_at, the absolute one) at most once per `renewAfterSeconds`,
-- with one conditional UPDATE, so concurrent renewals change the row once.
ALTER TABLE sessions ADD COLUMN idle_expires_at INTEGER;

-- Sessions minted before this migration get the default idle timeout (24 h) from now, never
-- past their absolute deadline. A NULL idle deadline reads as the absolute one.
UPDATE sessions
   SET idle_expires_at = MIN(expires_at, CAST(strftime('%s', 'now') AS INTEGER) * 1000 + 86400000)
 WHERE idle_expires_at IS NULL;
