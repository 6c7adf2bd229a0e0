-- Streams, their entries and idempotent-producer state.
--
-- A row in `streams` is one incarnation of a stream: deleting and re-creating a name
-- makes a new row with a new id, so caches and ETags keyed by id never mix incarnations.
-- `name` is NULL for an incarnation that left the namespace (expired or deleted) but is
-- still kept because forks read its entries.
CREATE TABLE streams (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    name               TEXT UNIQUE,
    content_type       TEXT    NOT NULL,
    created_at_ms      INTEGER NOT NULL,
    -- Sliding idle TTL in seconds, or an absolute deadline; never both.
    ttl_seconds        INTEGER,
    expires_at_ms      INTEGER,
    -- Last read or write that renews the TTL.
    last_access_ms     INTEGER NOT NULL,
    -- Entry count, inherited entries included: the tail position.
    next_pos           INTEGER NOT NULL DEFAULT 0,
    closed             INTEGER NOT NULL DEFAULT 0,
    -- The producer tuple whose append closed the stream (for idempotent close retries).
    closed_producer_id    TEXT,
    closed_producer_epoch INTEGER,
    closed_producer_seq   INTEGER,
    -- Last Stream-Seq accepted (compared byte-wise).
    stream_seq         BLOB,
    -- Fork: entries with position < fork_pos are read from the source incarnation.
    fork_source_id     INTEGER REFERENCES streams(id),
    fork_pos           INTEGER NOT NULL DEFAULT 0,
    fork_sub_offset    INTEGER NOT NULL DEFAULT 0,
    -- Number of forks whose fork_source_id is this row.
    ref_count          INTEGER NOT NULL DEFAULT 0,
    -- 1 = soft-deleted: the name answers 410 while forks still reference the data.
    deleted            INTEGER NOT NULL DEFAULT 0,
    CHECK (ttl_seconds IS NULL OR expires_at_ms IS NULL)
);

CREATE INDEX streams_fork_source ON streams(fork_source_id) WHERE fork_source_id IS NOT NULL;

-- One row per entry (a JSON message, or the body of one raw append).
CREATE TABLE entries (
    stream_id INTEGER NOT NULL,
    pos       INTEGER NOT NULL,
    data      BLOB    NOT NULL,
    PRIMARY KEY (stream_id, pos)
) WITHOUT ROWID;

CREATE TABLE producers (
    stream_id     INTEGER NOT NULL,
    producer_id   TEXT    NOT NULL,
    epoch         INTEGER NOT NULL,
    last_seq      INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (stream_id, producer_id)
) WITHOUT ROWID;
