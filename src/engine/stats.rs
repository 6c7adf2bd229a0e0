//! Per-stream storage figures for introspection (`_details`, `_index_status`).

use rusqlite::params;

use super::{Engine, EngineError, StreamMeta};

/// Where a stream's own entries are, in numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamStats {
    pub segment_count: u64,
    pub uploaded_segment_count: u64,
    /// Bytes of uploaded segment objects.
    pub uploaded_segment_bytes: u64,
    /// Bytes of sealed segment files not uploaded yet.
    pub pending_sealed_segment_bytes: u64,
    /// Entries and payload bytes still in SQLite (compacted or not).
    pub sqlite_rows: u64,
    pub sqlite_bytes: u64,
}

impl Engine {
    pub async fn stream_stats(&self, meta: &StreamMeta) -> Result<StreamStats, EngineError> {
        let id = meta.id;
        self.reader()
            .run(move |c| {
                let (segs, uploaded, up_bytes, pending_bytes): (i64, i64, i64, i64) = c
                    .prepare_cached(
                        "SELECT count(*), count(uploaded_at_ms), \
                         coalesce(sum(CASE WHEN uploaded_at_ms IS NOT NULL THEN size_bytes END), 0), \
                         coalesce(sum(CASE WHEN uploaded_at_ms IS NULL THEN size_bytes END), 0) \
                         FROM segments WHERE stream_id = ?1",
                    )?
                    .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
                let (rows, bytes): (i64, i64) = c
                    .prepare_cached(
                        "SELECT (SELECT count(*) FROM entries WHERE stream_id = ?1) \
                              + (SELECT count(*) FROM ingest WHERE stream_id = ?1), \
                                (SELECT coalesce(sum(length(data)), 0) FROM entries WHERE stream_id = ?1) \
                              + (SELECT coalesce(sum(length(data)), 0) FROM ingest WHERE stream_id = ?1)",
                    )?
                    .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))?;
                let u = |v: i64| v.max(0) as u64;
                Ok::<_, rusqlite::Error>(StreamStats {
                    segment_count: u(segs),
                    uploaded_segment_count: u(uploaded),
                    uploaded_segment_bytes: u(up_bytes),
                    pending_sealed_segment_bytes: u(pending_bytes),
                    sqlite_rows: u(rows),
                    sqlite_bytes: u(bytes),
                })
            })
            .await
    }
}
