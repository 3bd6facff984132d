-- edgestate schema, v5: D1 work that does not grow with traffic.
--
-- The revocation feed. Every revocation (logout, revoke-all, revoke by handle, account
-- deletion) appends one row here in the same transaction that marks the session revoked.
-- Each isolate follows the feed (one query per isolate every few seconds, whatever the
-- number of sessions) and refuses the sessions it names, so a KV copy that another location
-- still holds is refused within the revocation bound without a D1 query per session. A new
-- isolate reads the rows of the last few minutes (KV has dropped older copies by then) and
-- those still `lingering`: revocations whose KV copy could not be deleted, kept until that
-- copy expires. AUTOINCREMENT: `seq` never goes back, so a cursor never misses a row.
CREATE TABLE revocations (
  seq           INTEGER PRIMARY KEY AUTOINCREMENT,
  id_hash       TEXT NOT NULL,           -- the session's hash, as in sessions.id_hash
  at            INTEGER NOT NULL,        -- when it was revoked (ms)
  lingers_until INTEGER                  -- a KV copy may exist until then; NULL once deleted
);
CREATE INDEX revocations_by_at ON revocations (at);
CREATE INDEX revocations_lingering ON revocations (lingers_until) WHERE lingers_until IS NOT NULL;

-- Strict rate limits by lease: an isolate takes a block of the window's tokens in one
-- conditional upsert (never past the limit), so a client's burst costs one D1 write per
-- isolate and block rather than one per request. `count` is what has been handed out in
-- the window; `granted` what the last lease got (0 once the window is used up).
ALTER TABLE rate_limits ADD COLUMN granted INTEGER NOT NULL DEFAULT 0;
