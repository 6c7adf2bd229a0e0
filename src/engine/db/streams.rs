//! The `streams` table: one row per stream incarnation.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::engine::{ForkInfo, StreamMeta};
use crate::protocol::expiry::Expiry;

const COLUMNS: &str = "id, name, content_type, created_at_ms, ttl_seconds, expires_at_ms, \
     last_access_ms, next_pos, closed, closed_producer_id, closed_producer_epoch, \
     closed_producer_seq, stream_seq, fork_source_id, fork_pos, fork_sub_offset, ref_count, deleted";

fn from_row(r: &Row<'_>) -> rusqlite::Result<StreamMeta> {
    let ttl: Option<i64> = r.get(4)?;
    let at: Option<i64> = r.get(5)?;
    let expiry = match (ttl, at) {
        (Some(t), _) => Expiry::Ttl(t.max(0) as u64),
        (None, Some(a)) => Expiry::At(a),
        (None, None) => Expiry::None,
    };
    let closed_by = match (
        r.get::<_, Option<String>>(9)?,
        r.get::<_, Option<i64>>(10)?,
        r.get::<_, Option<i64>>(11)?,
    ) {
        (Some(id), Some(e), Some(s)) => Some((id, e as u64, s as u64)),
        _ => None,
    };
    let fork_source: Option<i64> = r.get(13)?;
    Ok(StreamMeta {
        id: r.get(0)?,
        name: r.get(1)?,
        content_type: r.get(2)?,
        created_at_ms: r.get(3)?,
        expiry,
        last_access_ms: r.get(6)?,
        next_pos: r.get::<_, i64>(7)? as u64,
        closed: r.get::<_, i64>(8)? != 0,
        closed_by,
        stream_seq: r.get(12)?,
        fork: fork_source
            .map(|source_id| -> rusqlite::Result<ForkInfo> {
                Ok(ForkInfo {
                    source_id,
                    pos: r.get::<_, i64>(14)? as u64,
                    sub_offset: r.get::<_, i64>(15)? as u64,
                })
            })
            .transpose()?,
        ref_count: r.get(16)?,
        deleted: r.get::<_, i64>(17)? != 0,
    })
}

pub fn by_name(conn: &Connection, name: &str) -> rusqlite::Result<Option<StreamMeta>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM streams WHERE name = ?1"))?
        .query_row([name], from_row)
        .optional()
}

pub fn by_id(conn: &Connection, id: i64) -> rusqlite::Result<Option<StreamMeta>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM streams WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()
}

/// Live streams (named, not soft-deleted, not expired at `now_ms`) in name order.
pub fn list(
    conn: &Connection,
    now_ms: i64,
    offset: usize,
    limit: usize,
) -> rusqlite::Result<Vec<StreamMeta>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM streams WHERE name IS NOT NULL AND deleted = 0 \
         AND (ttl_seconds IS NULL OR last_access_ms + ttl_seconds * 1000 > ?1) \
         AND (expires_at_ms IS NULL OR expires_at_ms > ?1) \
         ORDER BY name LIMIT ?2 OFFSET ?3"
    ))?;
    let rows = stmt.query_map(params![now_ms, limit as i64, offset as i64], from_row)?;
    rows.collect()
}

/// Named streams that have an expiry, for the sweeper.
pub fn with_expiry(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<StreamMeta>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM streams WHERE name IS NOT NULL AND deleted = 0 \
         AND (ttl_seconds IS NOT NULL OR expires_at_ms IS NOT NULL) \
         ORDER BY coalesce(expires_at_ms, last_access_ms + ttl_seconds * 1000) LIMIT ?1"
    ))?;
    let rows = stmt.query_map([limit as i64], from_row)?;
    rows.collect()
}

/// Inserts a new incarnation and returns its id.
pub fn insert(conn: &Connection, m: &StreamMeta) -> rusqlite::Result<i64> {
    let (ttl, at) = match m.expiry {
        Expiry::None => (None, None),
        Expiry::Ttl(t) => (Some(t as i64), None),
        Expiry::At(a) => (None, Some(a)),
    };
    conn.prepare_cached(
        "INSERT INTO streams (name, content_type, created_at_ms, ttl_seconds, expires_at_ms, \
         last_access_ms, next_pos, closed, fork_source_id, fork_pos, fork_sub_offset) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        m.name,
        m.content_type,
        m.created_at_ms,
        ttl,
        at,
        m.last_access_ms,
        m.next_pos as i64,
        m.closed as i64,
        m.fork.as_ref().map(|f| f.source_id),
        m.fork.as_ref().map_or(0, |f| f.pos as i64),
        m.fork.as_ref().map_or(0, |f| f.sub_offset as i64),
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Persists the mutable state of a row after an append or close.
pub fn update_after_write(conn: &Connection, m: &StreamMeta) -> rusqlite::Result<()> {
    let (pid, pep, pseq) = match &m.closed_by {
        Some((id, e, s)) => (Some(id.as_str()), Some(*e as i64), Some(*s as i64)),
        None => (None, None, None),
    };
    conn.prepare_cached(
        "UPDATE streams SET next_pos = ?2, closed = ?3, closed_producer_id = ?4, \
         closed_producer_epoch = ?5, closed_producer_seq = ?6, stream_seq = ?7, \
         last_access_ms = max(last_access_ms, ?8) WHERE id = ?1",
    )?
    .execute(params![
        m.id,
        m.next_pos as i64,
        m.closed as i64,
        pid,
        pep,
        pseq,
        m.stream_seq,
        m.last_access_ms
    ])?;
    Ok(())
}

/// Renews the sliding TTL.
pub fn touch(conn: &Connection, id: i64, at_ms: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE streams SET last_access_ms = max(last_access_ms, ?2) WHERE id = ?1",
    )?
    .execute(params![id, at_ms])?;
    Ok(())
}

pub fn set_soft_deleted(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE streams SET deleted = 1 WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Takes an incarnation out of the namespace but keeps its data for its forks.
pub fn detach(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE streams SET name = NULL, deleted = 1 WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

pub fn add_ref(conn: &Connection, id: i64, delta: i64) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "UPDATE streams SET ref_count = ref_count + ?2 WHERE id = ?1 RETURNING ref_count",
    )?
    .query_row(params![id, delta], |r| r.get(0))
}

pub fn delete_row(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM streams WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}
