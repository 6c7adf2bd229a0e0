//! Per-stream storage figures for introspection (`_details`, `_index_status`).
//!
//! Everything is read in one read transaction from the stream's row (returned with the
//! figures: it may be newer than the caller's cached copy), its `segments` rows and a
//! bounded part of its entries, so the figures agree with each other and with the row,
//! and the cost does not grow with the length of the stream:
//! - the positions SQLite keeps are `[lower, next_pos)` with `lower` the highest of the
//!   stream's own start, its uploaded position (entries below are deleted when a
//!   manifest covers them) and its retention point; each has exactly one row in
//!   `entries` or `ingest`, so their number needs no count;
//! - their payload bytes are the row's unsealed bytes plus a sum over the sealed but not
//!   yet published range (what the uploader has not caught up with). Retention trims
//!   unsealed entries of internal streams without updating the unsealed bytes, so such a
//!   stream (its retained range is bounded) is summed whole.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension as _};

use super::memtable::Memtable;
use super::{db, Engine, EngineError, StreamMeta};
use crate::objstore::ledger::StreamRequests;

/// Where a stream's own entries are, in numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamStats {
    pub segment_count: u64,
    pub uploaded_segment_count: u64,
    /// Bytes of uploaded segment objects.
    pub uploaded_segment_bytes: u64,
    /// Bytes of sealed segment files not uploaded yet.
    pub pending_sealed_segment_bytes: u64,
    /// Entries and payload bytes kept in SQLite (compacted or not).
    pub sqlite_rows: u64,
    pub sqlite_bytes: u64,
    /// Payload bytes of own entries not in a segment yet.
    pub unsealed_bytes: u64,
    /// When the newest entry kept in SQLite was appended (`None`: none is kept there, or
    /// its time was not recorded).
    pub last_entry_ms: Option<i64>,
    /// When a segment of the stream was last uploaded.
    pub last_upload_ms: Option<i64>,
    /// Bytes of the stream's uploaded segment files in the local segment cache.
    pub segment_cache_bytes: u64,
    /// Bytes of the SQLite database file and its WAL (shared by every stream).
    pub sqlite_file_bytes: u64,
    /// Uploaded segments the routing-key index covers (all of them when the stream has
    /// no routing keys: there is nothing to index), its runs and their bytes.
    pub key_indexed_segments: u64,
    pub key_index_runs: u64,
    pub key_index_bytes: u64,
}

fn u(v: i64) -> u64 {
    v.max(0) as u64
}

/// Payload bytes of the stream's compacted rows at positions `[from, to)` (the memtable
/// holds the rest, see [`read_stats`]).
fn payload_between(c: &Connection, id: i64, from: u64, to: u64) -> rusqlite::Result<u64> {
    if from >= to {
        return Ok(0);
    }
    let bytes: i64 = c
        .prepare_cached(
            "SELECT coalesce(sum(length(data)), 0) FROM entries \
             WHERE stream_id = ?1 AND pos >= ?2 AND pos < ?3",
        )?
        .query_row(params![id, from as i64, to as i64], |r| r.get(0))?;
    Ok(u(bytes))
}

/// The append time of the stream's newest compacted row at or above `from`.
fn newest_entry_ms(c: &Connection, id: i64, from: u64) -> rusqlite::Result<Option<i64>> {
    c.prepare_cached(
        "SELECT ts_ms FROM entries WHERE stream_id = ?1 AND pos >= ?2 ORDER BY pos DESC LIMIT 1",
    )?
    .query_row(params![id, from as i64], |r| r.get::<_, Option<i64>>(0))
    .optional()
    .map(Option::flatten)
}

/// Bytes of the database file and its WAL, as the file system reports them.
fn sqlite_file_bytes(c: &Connection) -> u64 {
    let Some(path) = c.path().filter(|p| !p.is_empty()) else {
        return 0;
    };
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    size(Path::new(path)) + size(Path::new(&format!("{path}-wal")))
}

/// `None` if a compaction emptied the memtable after `generation` (read again).
fn read_stats(
    c: &Connection,
    mem: &Memtable,
    generation: u64,
    meta: &StreamMeta,
) -> rusqlite::Result<Option<(StreamMeta, StreamStats)>> {
    let tx = c.unchecked_transaction()?;
    let mut m = match db::streams::by_id(&tx, meta.id)? {
        Some(mut row) => {
            if !mem.overlay(generation, &mut row) {
                return Ok(None);
            }
            row
        }
        None => meta.clone(),
    };
    // Renewals the writer has not applied yet (see `Engine::lookup`).
    m.tail.last_access_ms = m.tail.last_access_ms.max(meta.tail.last_access_ms);
    let (segs, uploaded, up_bytes, pending_bytes, last_upload): (i64, i64, i64, i64, Option<i64>) =
        tx.prepare_cached(
            "SELECT count(*), count(uploaded_at_ms), \
             coalesce(sum(CASE WHEN uploaded_at_ms IS NOT NULL THEN size_bytes END), 0), \
             coalesce(sum(CASE WHEN uploaded_at_ms IS NULL THEN size_bytes END), 0), \
             max(uploaded_at_ms) \
             FROM segments WHERE stream_id = ?1",
        )?
        .query_row([m.id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
    let (next, sealed, trimmed) = (m.tail.next_pos, m.tier.sealed_pos, m.tier.trimmed_pos);
    let lower = m
        .own_start()
        .max(m.tier.uploaded_pos)
        .max(trimmed)
        .min(next);
    // The entries not compacted yet are in the memtable (of the same generation, or read
    // again), whether in `ingest` or in the append log.
    let sealed_to = sealed.max(lower).min(next);
    let (held_unsealed, held_sealed, held_newest) = {
        let g = mem.lock();
        if g.generation() != generation {
            return Ok(None);
        }
        let (unsealed, newest) = g.span(m.id, lower, next);
        (unsealed, g.span(m.id, lower, sealed_to).0, newest)
    };
    let unsealed_bytes = if trimmed > sealed {
        payload_between(&tx, m.id, lower, next)? + held_unsealed
    } else {
        m.tier.pending_bytes
    };
    let sealed_in_sqlite = payload_between(&tx, m.id, lower, sealed_to)? + held_sealed;
    let last_entry_ms = match held_newest {
        Some(ms) => Some(ms),
        None => newest_entry_ms(&tx, m.id, lower)?,
    };
    let (covered, runs, run_bytes) = db::key_index::coverage(&tx, m.id)?;
    let has_keys = !m.keys_complete || db::entries::has_keys(&tx, m.id)?;
    drop(tx);
    let stats = StreamStats {
        segment_count: u(segs),
        uploaded_segment_count: u(uploaded),
        uploaded_segment_bytes: u(up_bytes),
        pending_sealed_segment_bytes: u(pending_bytes),
        sqlite_rows: next - lower,
        sqlite_bytes: unsealed_bytes + sealed_in_sqlite,
        unsealed_bytes,
        last_entry_ms,
        last_upload_ms: last_upload,
        segment_cache_bytes: 0,
        sqlite_file_bytes: sqlite_file_bytes(c),
        key_indexed_segments: if has_keys {
            covered.min(u(uploaded))
        } else {
            u(uploaded)
        },
        key_index_runs: runs,
        key_index_bytes: run_bytes,
    };
    Ok(Some((m, stats)))
}

impl Engine {
    pub async fn stream_stats(&self, meta: &StreamMeta) -> Result<StreamStats, EngineError> {
        Ok(self.stream_snapshot(meta).await?.1)
    }

    /// The stream's row and its figures, read together: the row may be newer than
    /// `meta` (the metadata cache is updated just after a commit), never older.
    pub async fn stream_snapshot(
        &self,
        meta: &StreamMeta,
    ) -> Result<(StreamMeta, StreamStats), EngineError> {
        let m = meta.clone();
        let mem = self.inner.memtable.clone();
        let (fresh, mut stats) = self
            .reader()
            .run(move |c| loop {
                if let Some(read) = read_stats(c, &mem, mem.generation(), &m)? {
                    return Ok::<_, rusqlite::Error>(read);
                }
            })
            .await?;
        if let Some(t) = self.tier() {
            let prefix = crate::objstore::keys::stream_prefix(&meta.config.incarnation);
            stats.segment_cache_bytes = t.cached_bytes(&prefix);
        }
        Ok((fresh, stats))
    }

    /// The object-store requests sent for the stream's objects since the server started
    /// (empty without an object store).
    pub fn object_store_requests(&self, meta: &StreamMeta) -> StreamRequests {
        self.tier()
            .map(|t| t.store.requests_of(&meta.config.incarnation))
            .unwrap_or_default()
    }
}
