-- edgestate schema, v6: D1 keeps what sessions can still need, not every session ever minted.
--
-- Isolates delete, in the background and in small batches, sessions a day past the deadline
-- that ended them (the idle one, never later than the absolute one: a session past it can
-- no longer be renewed) and revocation feed rows past the feed's horizon that no longer
-- linger (src/domain/sessions/housekeeping.rs). This index keeps each batch a short range
-- read of `sessions` rather than a scan of the table (`revocations` has `revocations_by_at`).
CREATE INDEX sessions_by_expiry ON sessions (COALESCE(idle_expires_at, expires_at));

-- Marking a revoked session's KV copy as lingering finds its feed rows by session.
CREATE INDEX revocations_by_session ON revocations (id_hash);
