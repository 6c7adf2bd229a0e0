//! Queries of retention (local mode): which streams may be trimmed, and the oldest rows of
//! one stream with their sizes and times, wherever they are (`entries`, or `ingest` before
//! compaction).

use rusqlite::{params, Connection};

/// A stream retention may trim: named, not deleted, not internal (those keep their own
/// entry count), with no fork reading its entries, and with entries left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: i64,
    pub trimmed_pos: u64,
    pub next_pos: u64,
    /// Payload bytes of the own entries still held.
    pub held_bytes: u64,
}

/// Candidates with an id above `after`, in id order, at most `limit`. With only a byte
/// limit (`over_bytes`), only the streams that hold more than it: the others have nothing
/// to trim, and are not looked at.
pub fn candidates(
    conn: &Connection,
    after: i64,
    limit: usize,
    over_bytes: Option<u64>,
) -> rusqlite::Result<Vec<Candidate>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, trimmed_pos, next_pos, total_bytes - trimmed_bytes FROM streams \
         WHERE id > ?1 AND name IS NOT NULL AND deleted = 0 AND local_only = 0 \
         AND ref_count = 0 AND next_pos > trimmed_pos \
         AND (?3 IS NULL OR total_bytes - trimmed_bytes > ?3) ORDER BY id LIMIT ?2",
    )?;
    let over = over_bytes.map(|b| i64::try_from(b).unwrap_or(i64::MAX));
    let rows = stmt.query_map(params![after, limit as i64, over], |r| {
        Ok(Candidate {
            id: r.get(0)?,
            trimmed_pos: r.get::<_, i64>(1)? as u64,
            next_pos: r.get::<_, i64>(2)? as u64,
            held_bytes: r.get::<_, i64>(3)?.max(0) as u64,
        })
    })?;
    rows.collect()
}

/// One entry as retention sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub pos: u64,
    pub bytes: u64,
    /// Commit time; rows from before times were recorded count as time 0.
    pub ts_ms: i64,
}

/// Walks the stream's entries from `from` up, compacted ones first, then those still in
/// `ingest` (which are newer), calling `keep_going` on each until it returns false.
/// Returns how many rows it was given.
pub fn walk(
    conn: &Connection,
    stream_id: i64,
    from: u64,
    mut keep_going: impl FnMut(Row) -> bool,
) -> rusqlite::Result<usize> {
    let mut seen = 0;
    let mut last = None;
    {
        let mut stmt = conn.prepare_cached(
            "SELECT pos, length(data), coalesce(ts_ms, 0) FROM entries \
             WHERE stream_id = ?1 AND pos >= ?2 ORDER BY pos",
        )?;
        let mut rows = stmt.query(params![stream_id, from as i64])?;
        while let Some(r) = rows.next()? {
            let row = row(r)?;
            seen += 1;
            last = Some(row.pos);
            if !keep_going(row) {
                return Ok(seen);
            }
        }
    }
    let from = last.map_or(from, |p| p + 1);
    // `ingest` has no index by stream: read only when the compacted rows ran out.
    let mut stmt = conn.prepare_cached(
        "SELECT pos, length(data), coalesce(ts_ms, 0) FROM ingest \
         WHERE stream_id = ?1 AND pos >= ?2 ORDER BY pos",
    )?;
    let mut rows = stmt.query(params![stream_id, from as i64])?;
    while let Some(r) = rows.next()? {
        seen += 1;
        if !keep_going(row(r)?) {
            break;
        }
    }
    Ok(seen)
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        pos: r.get::<_, i64>(0)? as u64,
        bytes: r.get::<_, i64>(1)?.max(0) as u64,
        ts_ms: r.get(2)?,
    })
}

/// Removes the stream's entries below `pos` (compacted or not) and records the new
/// retention point and the bytes it removed.
pub fn trim(conn: &Connection, stream_id: i64, pos: u64, bytes: u64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM entries WHERE stream_id = ?1 AND pos < ?2")?
        .execute(params![stream_id, pos as i64])?;
    conn.prepare_cached("DELETE FROM ingest WHERE stream_id = ?1 AND pos < ?2")?
        .execute(params![stream_id, pos as i64])?;
    conn.prepare_cached(
        "UPDATE streams SET trimmed_pos = ?2, trimmed_bytes = trimmed_bytes + ?3 WHERE id = ?1",
    )?
    .execute(params![stream_id, pos as i64, bytes as i64])?;
    Ok(())
}
