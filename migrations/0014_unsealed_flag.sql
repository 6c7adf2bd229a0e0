-- The segmenter's index no longer changes with every append. `streams_unsealed` was keyed
-- on `pending_bytes` and filtered on `next_pos > sealed_pos`, so SQLite rewrote its entry
-- (a page of the index in every commit) on each append, because the append's UPDATE sets
-- both columns. Now the index is filtered on a flag, `unsealed = (next_pos > sealed_pos)`,
-- that changes only when a stream goes from "everything sealed" to "something to seal"
-- and back. The segmenter sorts its candidates by `pending_bytes` itself.
--
-- Who keeps the flag: the triggers below, for a new row and whenever `sealed_pos` is
-- written (sealing, bootstrap, import); the two statements that write `next_pos`
-- (src/engine/db/streams.rs, `advance_tail` and `update_tail`) set it themselves, because
-- a trigger on `next_pos` would run on every append and cost more than the index did.
ALTER TABLE streams ADD COLUMN unsealed INTEGER NOT NULL DEFAULT 0;
UPDATE streams SET unsealed = 1 WHERE next_pos > sealed_pos;

DROP INDEX streams_unsealed;
CREATE INDEX streams_unsealed ON streams(id)
    WHERE unsealed = 1 AND deleted = 0 AND local_only = 0;

CREATE TRIGGER streams_unsealed_on_insert AFTER INSERT ON streams
    WHEN NEW.next_pos > NEW.sealed_pos
BEGIN
    UPDATE streams SET unsealed = 1 WHERE id = NEW.id;
END;

CREATE TRIGGER streams_unsealed_on_seal AFTER UPDATE OF sealed_pos ON streams
    WHEN (NEW.next_pos > NEW.sealed_pos) != NEW.unsealed
BEGIN
    UPDATE streams SET unsealed = (NEW.next_pos > NEW.sealed_pos) WHERE id = NEW.id;
END;
