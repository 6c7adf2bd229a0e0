//! The `streams` table: one row per stream incarnation.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::engine::{ForkInfo, StreamMeta};
use crate::protocol::expiry::Expiry;

const COLUMNS: &str = "id, name, content_type, created_at_ms, ttl_seconds, expires_at_ms, \
     last_access_ms, next_pos, closed, closed_producer_id, closed_producer_epoch, \
     closed_producer_seq, stream_seq, fork_source_id, fork_pos, fork_sub_offset, ref_count, deleted, \
     incarnation, sealed_pos, uploaded_pos, pending_bytes, last_cut_ms, manifest_generation, \
     manifest_etag, manifest_dirty, local_only, trimmed_pos";

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
        incarnation: r.get::<_, Option<String>>(18)?.unwrap_or_default(),
        sealed_pos: r.get::<_, i64>(19)? as u64,
        uploaded_pos: r.get::<_, i64>(20)? as u64,
        pending_bytes: r.get::<_, i64>(21)? as u64,
        last_cut_ms: r.get(22)?,
        manifest_generation: r.get::<_, i64>(23)? as u64,
        manifest_etag: r.get(24)?,
        manifest_dirty: r.get::<_, i64>(25)? != 0,
        local_only: r.get::<_, i64>(26)? != 0,
        trimmed_pos: r.get::<_, i64>(27)? as u64,
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
         last_access_ms, next_pos, closed, fork_source_id, fork_pos, fork_sub_offset, \
         incarnation, sealed_pos, uploaded_pos, last_cut_ms, deleted, manifest_generation, \
         manifest_etag, ref_count, local_only, trimmed_pos, manifest_dirty) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, \
         ?20, ?21, ?22)",
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
        m.incarnation,
        m.sealed_pos as i64,
        m.uploaded_pos as i64,
        m.last_cut_ms,
        m.deleted as i64,
        m.manifest_generation as i64,
        m.manifest_etag,
        m.ref_count,
        m.local_only as i64,
        m.trimmed_pos as i64,
        m.manifest_dirty as i64,
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
         last_access_ms = max(last_access_ms, ?8), pending_bytes = ?9, \
         manifest_dirty = max(manifest_dirty, ?10) WHERE id = ?1",
    )?
    .execute(params![
        m.id,
        m.next_pos as i64,
        m.closed as i64,
        pid,
        pep,
        pseq,
        m.stream_seq,
        m.last_access_ms,
        m.pending_bytes as i64,
        m.manifest_dirty as i64,
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
    conn.prepare_cached("UPDATE streams SET deleted = 1, manifest_dirty = 1 WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Takes an incarnation out of the namespace but keeps its data for its forks.
pub fn detach(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE streams SET name = NULL, deleted = 1, manifest_dirty = 1 WHERE id = ?1",
    )?
    .execute([id])?;
    Ok(())
}

/// Records a sealed segment: its entries are now in a file.
pub fn set_sealed(
    conn: &Connection,
    id: i64,
    sealed_pos: u64,
    payload: u64,
    now_ms: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE streams SET sealed_pos = ?2, pending_bytes = max(0, pending_bytes - ?3), \
         last_cut_ms = ?4 WHERE id = ?1",
    )?
    .execute(params![id, sealed_pos as i64, payload as i64, now_ms])?;
    Ok(())
}

pub fn set_manifest_dirty(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE streams SET manifest_dirty = 1 WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Records a published manifest. The dirty flag is cleared only if nothing changed since
/// the publisher read the stream (`generation` is still the one it started from + 1).
pub fn set_published(
    conn: &Connection,
    id: i64,
    generation: u64,
    etag: Option<&str>,
    uploaded_pos: u64,
    dirty_seen: bool,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE streams SET manifest_generation = ?2, manifest_etag = ?3, \
         uploaded_pos = max(uploaded_pos, ?4), \
         manifest_dirty = CASE WHEN ?5 THEN 0 ELSE manifest_dirty END WHERE id = ?1",
    )?
    .execute(params![
        id,
        generation as i64,
        etag,
        uploaded_pos as i64,
        dirty_seen
    ])?;
    Ok(())
}

/// Streams that have something to seal: enough pending entries or bytes, or entries older
/// than the interval.
pub fn seal_candidates(
    conn: &Connection,
    rows: u64,
    bytes: u64,
    interval_ms: u64,
    now_ms: i64,
    limit: usize,
) -> rusqlite::Result<Vec<StreamMeta>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM streams WHERE deleted = 0 AND local_only = 0 AND next_pos > sealed_pos \
         AND (next_pos - sealed_pos >= ?1 OR pending_bytes >= ?2 \
              OR (?3 > 0 AND ?4 - last_cut_ms >= ?3)) \
         ORDER BY pending_bytes DESC LIMIT ?5"
    ))?;
    let rows = stmt.query_map(
        params![
            rows as i64,
            bytes as i64,
            interval_ms as i64,
            now_ms,
            limit as i64
        ],
        from_row,
    )?;
    rows.collect()
}

/// Streams whose manifest needs publishing.
pub fn manifest_dirty(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<StreamMeta>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM streams WHERE manifest_dirty = 1 AND local_only = 0 ORDER BY id LIMIT ?1"
    ))?;
    let rows = stmt.query_map([limit as i64], from_row)?;
    rows.collect()
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
