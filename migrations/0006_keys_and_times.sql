-- Routing keys and append times, per entry.
--
-- `key`: the entry's routing key (UTF-8 bytes of the schema's routingKey value, the
-- `Stream-Key` header, or the profile's derived key); NULL when it has none. An empty
-- `Stream-Key` is stored as a zero-length key, which matches reads by the empty key but is
-- never listed.
-- `ts_ms`: when the entry was committed (the batch's time), for `since=` reads; NULL on
-- rows written before this migration (read as time 0).
ALTER TABLE ingest ADD COLUMN key BLOB;
ALTER TABLE ingest ADD COLUMN ts_ms INTEGER;
ALTER TABLE entries ADD COLUMN key BLOB;
ALTER TABLE entries ADD COLUMN ts_ms INTEGER;

-- Keyed reads of the SQLite tail seek straight to the key's entries.
CREATE INDEX entries_key ON entries(stream_id, key, pos) WHERE key IS NOT NULL;

-- Every non-empty routing key a stream has ever had (filled by compaction, so it outlives
-- the entries that move to segments), for `_routing_keys`. `keys_complete` on a stream
-- is 0 when the table may lack keys of data that is only in segments (a node rebuilt by
-- bootstrap); listings then also scan the segments.
CREATE TABLE stream_keys (
    stream_id INTEGER NOT NULL,
    key       BLOB    NOT NULL,
    PRIMARY KEY (stream_id, key)
) WITHOUT ROWID;
ALTER TABLE streams ADD COLUMN keys_complete INTEGER NOT NULL DEFAULT 1;

-- Payload bytes of all own entries ever appended (wherever they are now), for `_details`.
-- Rows from before this migration count what SQLite still holds.
ALTER TABLE streams ADD COLUMN total_bytes INTEGER NOT NULL DEFAULT 0;
UPDATE streams SET total_bytes =
    (SELECT coalesce(sum(length(data)), 0) FROM entries e WHERE e.stream_id = streams.id)
  + (SELECT coalesce(sum(length(data)), 0) FROM ingest i WHERE i.stream_id = streams.id);
