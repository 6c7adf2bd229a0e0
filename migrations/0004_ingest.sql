-- The ingest log: appends land here first, in commit order (rowid), so a commit writes to
-- the last pages of one B-tree however many streams it touches. The writer periodically
-- copies these rows into `entries` (sorted by stream and position) and empties the table;
-- readers find not-yet-copied entries in memory (see src/engine/memtable.rs). No index:
-- the table only ever holds the last moments of appends.
CREATE TABLE ingest (
    id        INTEGER PRIMARY KEY,
    stream_id INTEGER NOT NULL,
    pos       INTEGER NOT NULL,
    data      BLOB    NOT NULL
);
