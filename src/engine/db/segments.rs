//! The `segments` table: sealed segment files of a stream incarnation, in order.

use rusqlite::{params, Connection, OptionalExtension, Row};

/// One sealed segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRow {
    pub stream_id: i64,
    pub index: u64,
    pub start_pos: u64,
    /// Exclusive.
    pub end_pos: u64,
    pub size_bytes: u64,
    pub block_count: u32,
    pub created_at_ms: i64,
    pub uploaded_at_ms: Option<i64>,
    pub etag: Option<String>,
}

const COLUMNS: &str = "stream_id, seg_index, start_pos, end_pos, size_bytes, block_count, \
     created_at_ms, uploaded_at_ms, etag";

fn from_row(r: &Row<'_>) -> rusqlite::Result<SegmentRow> {
    Ok(SegmentRow {
        stream_id: r.get(0)?,
        index: r.get::<_, i64>(1)? as u64,
        start_pos: r.get::<_, i64>(2)? as u64,
        end_pos: r.get::<_, i64>(3)? as u64,
        size_bytes: r.get::<_, i64>(4)? as u64,
        block_count: r.get::<_, i64>(5)? as u32,
        created_at_ms: r.get(6)?,
        uploaded_at_ms: r.get(7)?,
        etag: r.get(8)?,
    })
}

pub fn insert(conn: &Connection, s: &SegmentRow) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO segments (stream_id, seg_index, start_pos, end_pos, size_bytes, block_count, \
         created_at_ms, uploaded_at_ms, etag) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        s.stream_id,
        s.index as i64,
        s.start_pos as i64,
        s.end_pos as i64,
        s.size_bytes as i64,
        s.block_count as i64,
        s.created_at_ms,
        s.uploaded_at_ms,
        s.etag
    ])?;
    Ok(())
}

/// Marks a segment uploaded; false if it no longer exists.
pub fn mark_uploaded(
    conn: &Connection,
    stream_id: i64,
    index: u64,
    etag: Option<&str>,
    now_ms: i64,
) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE segments SET uploaded_at_ms = ?3, etag = ?4 WHERE stream_id = ?1 AND seg_index = ?2",
        )?
        .execute(params![stream_id, index as i64, now_ms, etag])?;
    Ok(n > 0)
}

/// Segments not uploaded yet, oldest first.
pub fn not_uploaded(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<SegmentRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM segments WHERE uploaded_at_ms IS NULL ORDER BY created_at_ms, stream_id, seg_index LIMIT ?1"
    ))?;
    let rows = stmt.query_map([limit as i64], from_row)?;
    rows.collect()
}

/// All segments of a stream, in order.
/// Segment `index` of a stream.
pub fn by_index(
    conn: &Connection,
    stream_id: i64,
    index: u64,
) -> rusqlite::Result<Option<SegmentRow>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM segments WHERE stream_id = ?1 AND seg_index = ?2"
    ))?
    .query_row(params![stream_id, index as i64], from_row)
    .optional()
}

pub fn of_stream(conn: &Connection, stream_id: i64) -> rusqlite::Result<Vec<SegmentRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM segments WHERE stream_id = ?1 ORDER BY seg_index"
    ))?;
    let rows = stmt.query_map([stream_id], from_row)?;
    rows.collect()
}

/// The segment holding position `pos`.
pub fn covering(
    conn: &Connection,
    stream_id: i64,
    pos: u64,
) -> rusqlite::Result<Option<SegmentRow>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM segments WHERE stream_id = ?1 AND start_pos <= ?2 AND end_pos > ?2 \
         ORDER BY seg_index DESC LIMIT 1"
    ))?
    .query_row(params![stream_id, pos as i64], from_row)
    .optional()
}

/// Index of the next segment of a stream.
pub fn next_index(conn: &Connection, stream_id: i64) -> rusqlite::Result<u64> {
    conn.prepare_cached(
        "SELECT coalesce(max(seg_index) + 1, 0) FROM segments WHERE stream_id = ?1",
    )?
    .query_row([stream_id], |r| r.get::<_, i64>(0))
    .map(|v| v as u64)
}

pub fn delete_stream(conn: &Connection, stream_id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM segments WHERE stream_id = ?1")?
        .execute([stream_id])?;
    Ok(())
}
