-- Segments and object-store upload.
--
-- Positions of a stream's own entries move through three states:
--   [fork_pos, uploaded_pos)   in segments covered by a published manifest; their
--                              `entries` rows have been deleted
--   [uploaded_pos, sealed_pos) in segment files (uploaded or not) and still in `entries`
--   [sealed_pos, next_pos)     only in `entries`
ALTER TABLE streams ADD COLUMN incarnation TEXT;
UPDATE streams SET incarnation = lower(hex(randomblob(16))) WHERE incarnation IS NULL;
ALTER TABLE streams ADD COLUMN sealed_pos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE streams ADD COLUMN uploaded_pos INTEGER NOT NULL DEFAULT 0;
-- Payload bytes of entries not yet sealed.
ALTER TABLE streams ADD COLUMN pending_bytes INTEGER NOT NULL DEFAULT 0;
-- When the last segment was cut (or the stream created): drives time-based sealing.
ALTER TABLE streams ADD COLUMN last_cut_ms INTEGER NOT NULL DEFAULT 0;
-- The manifest: last published generation and its ETag; `manifest_dirty` = 1 when the
-- stream changed in a way the manifest must reflect.
ALTER TABLE streams ADD COLUMN manifest_generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE streams ADD COLUMN manifest_etag TEXT;
ALTER TABLE streams ADD COLUMN manifest_dirty INTEGER NOT NULL DEFAULT 0;
UPDATE streams SET sealed_pos = fork_pos, uploaded_pos = fork_pos, last_cut_ms = created_at_ms,
    pending_bytes = (SELECT coalesce(sum(length(data)), 0) FROM entries e WHERE e.stream_id = streams.id);

CREATE TABLE segments (
    stream_id     INTEGER NOT NULL,
    seg_index     INTEGER NOT NULL,
    start_pos     INTEGER NOT NULL,
    end_pos       INTEGER NOT NULL,  -- exclusive
    size_bytes    INTEGER NOT NULL,
    block_count   INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    uploaded_at_ms INTEGER,
    etag          TEXT,
    PRIMARY KEY (stream_id, seg_index)
) WITHOUT ROWID;
CREATE INDEX segments_not_uploaded ON segments(created_at_ms) WHERE uploaded_at_ms IS NULL;

-- Object-store folders (and local segment files) of removed stream incarnations, to be
-- deleted by the uploader.
CREATE TABLE object_gc (
    id            INTEGER PRIMARY KEY,
    prefix        TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);
