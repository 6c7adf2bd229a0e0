-- Full mode: the routing-key index (docs/adr/0009-routing-key-index.md). Each row is one
-- run object in the object store, `streams/<incarnation>/keyindex/l<level>-<start>-<end>.ski`,
-- which maps every key of segments [start_seg, end_seg) to the segments holding it. A
-- level-0 run covers one segment; 16 contiguous runs of a level merge into one of the next.
CREATE TABLE key_index_runs (
    stream_id  INTEGER NOT NULL,
    level      INTEGER NOT NULL,
    start_seg  INTEGER NOT NULL,
    end_seg    INTEGER NOT NULL,
    size_bytes INTEGER NOT NULL,
    key_count  INTEGER NOT NULL,
    PRIMARY KEY (stream_id, start_seg, level)
) WITHOUT ROWID;
