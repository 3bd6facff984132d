-- edgestate schema, v2: session handles.
-- Every session gets an opaque handle when it is minted: 16 random bytes as 32 lowercase hex
-- characters, unrelated to the session id and its hash. GET /admin/sessions shows it, and
-- DELETE /admin/sessions/:handle revokes that one session with it, so an admin can name a
-- session without ever holding anything that authenticates as it.
ALTER TABLE sessions ADD COLUMN handle TEXT;
-- Sessions minted before this migration get one too.
UPDATE sessions SET handle = lower(hex(randomblob(16))) WHERE handle IS NULL;
CREATE UNIQUE INDEX sessions_by_handle ON sessions (handle);
