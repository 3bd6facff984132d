-- The config's audited history. D1 is the authority for it and for the base of every admin
-- write; KV `config:app` (with metadata {"version": N}) stays the read path.
--
-- An applied write is a row with the next `version` and the full resulting document,
-- inserted by one conditional INSERT ... SELECT (the head it was based on must still be the
-- head), so two writes can never take the same version or overwrite each other. An attempt
-- refused because its If-Match named an old version is a row with a NULL version and no
-- document. Rows are never updated or deleted.
CREATE TABLE config_history (
  seq          INTEGER PRIMARY KEY,     -- order of the trail (the listing's cursor)
  version      INTEGER UNIQUE,          -- 1, 2, 3, ...; NULL for a refused attempt
  at           INTEGER NOT NULL,        -- ms since the epoch
  actor        TEXT NOT NULL,           -- 8 hex digits of a keyed hash of the admin token, never the token
  action       TEXT NOT NULL CHECK (action IN ('put', 'patch', 'rollback')),
  base_version INTEGER NOT NULL,        -- the version it merged into (applied) or that was current (refused)
  change       TEXT NOT NULL,           -- the request body: the document, the merge patch, or {"version": N}
  document     TEXT                     -- the whole config after the write; NULL for a refused attempt
);
