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
    })
}

const COLUMNS: &str = "stream_id, level, start_seg, end_seg, size_bytes, key_count";

pub fn insert(conn: &Connection, row: &RunRow) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO key_index_runs (stream_id, level, start_seg, end_seg, size_bytes, \
         key_count) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        row.stream_id,
        row.range.level as i64,
        row.range.start_seg as i64,
        row.range.end_seg as i64,
        row.size_bytes as i64,
        row.key_count as i64
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

/// Uploaded segments of streams that have routing keys and no run covering them, oldest
/// first: `(stream_id, incarnation, segment)`.
pub fn unindexed(
    conn: &Connection,
    limit: usize,
) -> rusqlite::Result<Vec<(i64, String, super::segments::SegmentRow)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT g.stream_id, s.incarnation, g.seg_index FROM segments g \
         JOIN streams s ON s.id = g.stream_id \
         WHERE g.uploaded_at_ms IS NOT NULL AND s.local_only = 0 \
         AND (s.keys_complete = 0 OR EXISTS (SELECT 1 FROM stream_keys k WHERE k.stream_id = g.stream_id)) \
         AND NOT EXISTS (SELECT 1 FROM key_index_runs r WHERE r.stream_id = g.stream_id \
             AND r.start_seg <= g.seg_index AND r.end_seg > g.seg_index) \
         ORDER BY g.stream_id, g.seg_index LIMIT ?1",
    )?;
    let found: Vec<(i64, String, i64)> = stmt
        .query_map(params![limit as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::with_capacity(found.len());
    for (id, inc, index) in found {
        if let Some(seg) = super::segments::by_index(conn, id, index as u64)? {
            out.push((id, inc, seg));
        }
    }
    Ok(out)
}

/// Groups of `fanout` runs of one level that together fill the aligned range of a run of
/// the next level: `(stream_id, incarnation, children)`, at most `limit` groups.
pub fn compactable(
    conn: &Connection,
    fanout: u64,
    max_level: u8,
    limit: usize,
) -> rusqlite::Result<Vec<(i64, String, Vec<RunRow>)>> {
    // One query per level: a level's span is fanout^level.
    let mut out = Vec::new();
    for level in 0..max_level {
        let span = fanout.pow(u32::from(level));
        let group = span * fanout;
        let mut stmt = conn.prepare_cached(
            "SELECT r.stream_id, s.incarnation, r.start_seg / ?1 AS grp FROM key_index_runs r \
             JOIN streams s ON s.id = r.stream_id \
             WHERE r.level = ?2 AND r.end_seg - r.start_seg = ?3 \
             GROUP BY r.stream_id, grp HAVING count(*) = ?4 LIMIT ?5",
        )?;
        let groups: Vec<(i64, String, i64)> = stmt
            .query_map(
                params![
                    group as i64,
                    level as i64,
                    span as i64,
                    fanout as i64,
                    limit as i64
                ],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?
            .collect::<rusqlite::Result<_>>()?;
        for (id, inc, grp) in groups {
            let lo = grp as u64 * group;
            let mut kids = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM key_index_runs WHERE stream_id = ?1 AND level = ?2 \
                 AND start_seg >= ?3 AND end_seg <= ?4 ORDER BY start_seg"
            ))?;
            let children: Vec<RunRow> = kids
                .query_map(
                    params![id, level as i64, lo as i64, (lo + group) as i64],
                    from_row,
                )?
                .collect::<rusqlite::Result<_>>()?;
            if children.len() as u64 == fanout {
                out.push((id, inc, children));
            }
            if out.len() >= limit {
                return Ok(out);
            }
        }
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
