-- A new stream's first manifest waits for its first uploaded segment, or for the segment
-- interval if it stays empty (src/engine/uploader.rs): the streams never published and
-- not marked dirty, by creation time, for the uploader's second query. The index's WHERE
-- is repeated word for word in that query (src/engine/db/streams.rs).
CREATE INDEX streams_unpublished ON streams(created_at_ms)
    WHERE manifest_generation = 0 AND manifest_dirty = 0 AND local_only = 0;
