//! The `key_index_runs` table: the catalog of a stream's routing-key index runs.

use rusqlite::{params, Connection, OptionalExtension};

use crate::engine::keyindex::format::RunRange;

/// One run of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    pub stream_id: i64,
    pub range: RunRange,
    pub size_bytes: u64,
    pub key_count: u64,
    /// The search configuration its keyword terms follow (see `keyindex::format`).
    pub search_hash: u64,
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        stream_id: r.get(0)?,
        range: RunRange {
            level: r.get::<_, i64>(1)? as u8,
            start_seg: r.get::<_, i64>(2)? as u64,
            end_seg: r.get::<_, i64>(3)? as u64,
        },
        size_bytes: r.get::<_, i64>(4)? as u64,
        key_count: r.get::<_, i64>(5)? as u64,
        search_hash: r.get::<_, i64>(6)? as u64,
    })
}

const COLUMNS: &str = "stream_id, level, start_seg, end_seg, size_bytes, key_count, search_hash";

pub fn insert(conn: &Connection, row: &RunRow) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO key_index_runs (stream_id, level, start_seg, end_seg, size_bytes, \
         key_count, search_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        row.stream_id,
        row.range.level as i64,
        row.range.start_seg as i64,
        row.range.end_seg as i64,
        row.size_bytes as i64,
        row.key_count as i64,
        row.search_hash as i64
    ])?;
    Ok(())
}

pub fn delete(conn: &Connection, stream_id: i64, range: RunRange) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM key_index_runs WHERE stream_id = ?1 AND start_seg = ?2 AND level = ?3",
        )?
        .execute(params![
            stream_id,
            range.start_seg as i64,
            range.level as i64
        ])?
        > 0)
}

pub fn delete_stream(conn: &Connection, stream_id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM key_index_runs WHERE stream_id = ?1")?
        .execute(params![stream_id])?;
    Ok(())
}

/// The run of the highest level covering segment `seg`, if any.
pub fn covering(conn: &Connection, stream_id: i64, seg: u64) -> rusqlite::Result<Option<RunRow>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM key_index_runs WHERE stream_id = ?1 AND start_seg <= ?2 \
         AND end_seg > ?2 ORDER BY level DESC LIMIT 1"
    ))?
    .query_row(params![stream_id, seg as i64], from_row)
    .optional()
}

/// Every run of a stream, by start then level.
pub fn of_stream(conn: &Connection, stream_id: i64) -> rusqlite::Result<Vec<RunRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM key_index_runs WHERE stream_id = ?1 ORDER BY start_seg, level"
    ))?;
    let rows = stmt.query_map(params![stream_id], from_row)?;
    rows.collect()
}

/// An uploaded segment the indexer has not looked at.
#[derive(Debug, Clone)]
pub struct Unseen {
    pub stream_id: i64,
    pub incarnation: String,
    pub segment: super::segments::SegmentRow,
    /// The stream has routing keys.
    pub has_keys: bool,
    /// The stream's schema registry (JSON), if it has one (its `search` section decides
    /// the keyword terms).
    pub registry: Option<String>,
}

/// Uploaded segments the indexer has not looked at, oldest first. Reads only the partial
/// index `segments_key_unindexed`.
pub fn unindexed(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<Unseen>> {
    let mut stmt = conn.prepare_cached(
        "SELECT g.stream_id, g.seg_index FROM segments g INDEXED BY segments_key_unindexed \
         WHERE g.uploaded_at_ms IS NOT NULL AND g.key_indexed = 0 \
         ORDER BY g.stream_id, g.seg_index LIMIT ?1",
    )?;
    let found: Vec<(i64, i64)> = stmt
        .query_map(params![limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::with_capacity(found.len());
    for (id, index) in found {
        let Some(m) = super::streams::by_id(conn, id)? else {
            continue;
        };
        if m.config.local_only {
            continue;
        }
        let has_keys = !m.keys_complete || super::entries::has_keys(conn, id)?;
        let registry = super::config::registry(conn, id)?;
        if let Some(segment) = super::segments::by_index(conn, id, index as u64)? {
            out.push(Unseen {
                stream_id: id,
                incarnation: m.config.incarnation,
                segment,
                has_keys,
                registry,
            });
        }
    }
    Ok(out)
}

/// Marks segments `[from, to)` of a stream as looked at (`done`) or not.
pub fn mark_segments(
    conn: &Connection,
    stream_id: i64,
    from: u64,
    to: u64,
    done: bool,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE segments SET key_indexed = ?4 WHERE stream_id = ?1 AND seg_index >= ?2 \
         AND seg_index < ?3",
    )?
    .execute(params![stream_id, from as i64, to as i64, i64::from(done)])?;
    Ok(())
}

/// Takes every run of a stream out of the catalog (their objects are queued for deletion)
/// and marks its segments unseen, so that they are indexed again (the search
/// configuration changed).
pub fn reset_stream(
    conn: &Connection,
    stream_id: i64,
    incarnation: &str,
    now_ms: i64,
) -> rusqlite::Result<()> {
    for r in of_stream(conn, stream_id)? {
        super::object_gc::insert(
            conn,
            &crate::engine::keyindex::object_key(incarnation, r.range),
            now_ms,
        )?;
    }
    delete_stream(conn, stream_id)?;
    conn.prepare_cached("UPDATE segments SET key_indexed = 0 WHERE stream_id = ?1")?
        .execute(params![stream_id])?;
    Ok(())
}

/// The streams that have runs (the indexer looks for merges in each once at start).
pub fn streams_with_runs(conn: &Connection) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached("SELECT DISTINCT stream_id FROM key_index_runs")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

/// The complete groups of `fanout` aligned runs of one level of a stream, each of which
/// fills the range of one run of the next level (up to `max_level`), lowest level first.
pub fn compactable(
    conn: &Connection,
    stream_id: i64,
    fanout: u64,
    max_level: u8,
) -> rusqlite::Result<Vec<Vec<RunRow>>> {
    let runs = of_stream(conn, stream_id)?;
    let mut out = Vec::new();
    for level in 0..max_level {
        let span = fanout.pow(u32::from(level));
        let group = span * fanout;
        let mut groups: std::collections::BTreeMap<u64, Vec<RunRow>> = Default::default();
        for r in runs
            .iter()
            .filter(|r| r.range.level == level && r.range.end_seg - r.range.start_seg == span)
        {
            groups
                .entry(r.range.start_seg / group)
                .or_default()
                .push(r.clone());
        }
        out.extend(groups.into_values().filter(|g| g.len() as u64 == fanout));
    }
    Ok(out)
}

/// `(covered segments, runs, bytes of runs)` of a stream, for `_index_status`.
pub fn coverage(conn: &Connection, stream_id: i64) -> rusqlite::Result<(u64, u64, u64)> {
    conn.prepare_cached(
        "SELECT coalesce(sum(end_seg - start_seg), 0), count(*), coalesce(sum(size_bytes), 0) \
         FROM key_index_runs WHERE stream_id = ?1",
    )?
    .query_row(params![stream_id], |r| {
        Ok((
            r.get::<_, i64>(0)?.max(0) as u64,
            r.get::<_, i64>(1)?.max(0) as u64,
            r.get::<_, i64>(2)?.max(0) as u64,
        ))
    })
}

/// Whether a run of exactly this range is in the catalog.
pub fn exists(conn: &Connection, stream_id: i64, range: RunRange) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT 1 FROM key_index_runs WHERE stream_id = ?1 AND start_seg = ?2 AND level = ?3 \
         AND end_seg = ?4",
    )?
    .query_row(
        params![
            stream_id,
            range.start_seg as i64,
            range.level as i64,
            range.end_seg as i64
        ],
        |_| Ok(()),
    )
    .optional()
    .map(|o| o.is_some())
}
