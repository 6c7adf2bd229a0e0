-- The append log (src/engine/applog.rs): batches of plain appends are made durable in a
-- file beside the database, `<db>-applog`, until compaction copies their entries into
-- `ingest` and `entries`. A record counts only if it carries the salt stored here; the
-- compaction that copies the records draws a new one in the same transaction, which
-- voids them all. One row, written by the writer at start-up and by every compaction of
-- a log that was written to. An older server would ignore the file and reuse the
-- positions of its entries: this version makes it refuse the database instead.
CREATE TABLE applog (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    salt INTEGER NOT NULL
);
