-- edgestate schema, v9: the config history stores changes rather than a whole document per
-- version (src/domain/versions.rs).
--
-- From now on a patch's row keeps `document` NULL (its `change`, the merge patch, is what it
-- did), except every 32 patches or so, when it stores the whole document as a snapshot. A
-- put's `change` is its whole document; a rollback's row stores the document it restores.
-- A version is rebuilt from the newest row at or before it that holds a whole document and
-- the patches after it. Rows written before this migration all hold their document.
--
-- This index finds that row without reading the rows between.
CREATE INDEX config_history_whole ON config_history (version)
  WHERE document IS NOT NULL OR action = 'put';
