-- edgestate schema, v8: when each flag was last evaluated (src/domain/usage.rs).
--
-- A row per flag evaluated one by one (OFREP single evaluation, GET /flags/:name), and row
-- '*' for bulk evaluation, which evaluates every flag. Each isolate writes at most one batch a
-- minute, keeping the later of the stored and the new time; the console marks a flag stale
-- when neither its row nor '*' is recent.
CREATE TABLE flag_usage (
  name              TEXT PRIMARY KEY,
  last_evaluated_at INTEGER NOT NULL
);
