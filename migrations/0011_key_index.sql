-- Full mode: the routing-key index (docs/adr/0011-routing-key-index.md). Each row is one
-- run object in the object store, `streams/<incarnation>/keyindex/l<level>-<start>-<end>.ski`,
-- which maps every routing key and keyword term of segments [start_seg, end_seg) to the
-- segments holding it. A
-- level-0 run covers one segment; 16 contiguous runs of a level merge into one of the next.
CREATE TABLE key_index_runs (
    stream_id  INTEGER NOT NULL,
    level      INTEGER NOT NULL,
    start_seg  INTEGER NOT NULL,
    end_seg    INTEGER NOT NULL,
    size_bytes INTEGER NOT NULL,
    key_count  INTEGER NOT NULL,
    -- The search configuration its keyword terms follow (0: none; all ones: mixed).
    search_hash INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (stream_id, start_seg, level)
) WITHOUT ROWID;

-- Uploaded segments the indexer has not looked at yet: 0 until a run covers the segment
-- (or the stream had no routing keys when the segment was looked at: nothing to index).
-- The partial index holds only those, so finding work costs nothing for idle streams.
ALTER TABLE segments ADD COLUMN key_indexed INTEGER NOT NULL DEFAULT 0;
CREATE INDEX segments_key_unindexed ON segments(stream_id, seg_index)
    WHERE uploaded_at_ms IS NOT NULL AND key_indexed = 0;
