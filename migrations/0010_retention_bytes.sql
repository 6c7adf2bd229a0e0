-- Retention of ordinary streams (local mode's DS_RETENTION_MAX_AGE_MS / _MAX_BYTES).
--
-- `trimmed_bytes`: payload bytes of the own entries that retention removed (those below
-- `trimmed_pos`), so that `total_bytes - trimmed_bytes` is what the stream still holds
-- without summing its rows.
ALTER TABLE streams ADD COLUMN trimmed_bytes INTEGER NOT NULL DEFAULT 0;
