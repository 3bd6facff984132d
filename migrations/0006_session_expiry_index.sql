-- edgestate schema, v6: D1 keeps what sessions can still need, not every session ever minted.
--
-- Isolates delete, in the background and in small batches, sessions a day past their
-- absolute deadline and revocation feed rows past the feed's horizon that no longer linger
-- (src/domain/sessions/housekeeping.rs). This index keeps each batch a short range read of
-- `sessions` rather than a scan of the table (`revocations` has `revocations_by_at`).
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
