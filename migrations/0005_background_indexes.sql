-- Indexes for the background work: each periodic query visits only the rows that need
-- work, so an idle server with many streams does not scan them all. Each index's WHERE is
-- repeated word for word in its query (src/engine/db/streams.rs, producers.rs), which is
-- how SQLite knows a partial index covers the query.

-- The segmenter's candidates: streams with entries not yet sealed, largest backlog first.
CREATE INDEX streams_unsealed ON streams(pending_bytes)
    WHERE next_pos > sealed_pos AND deleted = 0 AND local_only = 0;

-- The uploader's manifests to publish (in id order: the index's rows with one key are
-- ordered by rowid).
CREATE INDEX streams_manifest_dirty ON streams(manifest_dirty)
    WHERE manifest_dirty = 1 AND local_only = 0;

-- The expiry sweeper's candidates: named streams with an expiry, by deadline (the absolute
-- one, or the last access plus the sliding TTL).
CREATE INDEX streams_deadline
    ON streams(coalesce(expires_at_ms, last_access_ms + ttl_seconds * 1000))
    WHERE name IS NOT NULL AND deleted = 0
      AND (ttl_seconds IS NOT NULL OR expires_at_ms IS NOT NULL);

-- Idle idempotent-producer state, oldest first (collected after DS_PRODUCER_STATE_TTL_MS).
CREATE INDEX producers_updated ON producers(updated_at_ms);
