//! The `producers` table: idempotent-producer state per (incarnation, producer id).

use rusqlite::{params, Connection, OptionalExtension};

/// Stored `(epoch, last_seq)` of a producer.
pub fn get(
    conn: &Connection,
    stream_id: i64,
    producer: &str,
) -> rusqlite::Result<Option<(u64, u64)>> {
    conn.prepare_cached(
        "SELECT epoch, last_seq FROM producers WHERE stream_id = ?1 AND producer_id = ?2",
    )?
    .query_row(params![stream_id, producer], |r| {
        Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
    })
    .optional()
}

pub fn put(
    conn: &Connection,
    stream_id: i64,
    producer: &str,
    epoch: u64,
    seq: u64,
    now_ms: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO producers (stream_id, producer_id, epoch, last_seq, updated_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (stream_id, producer_id) \
         DO UPDATE SET epoch = excluded.epoch, last_seq = excluded.last_seq, updated_at_ms = excluded.updated_at_ms",
    )?
    .execute(params![stream_id, producer, epoch as i64, seq as i64, now_ms])?;
    Ok(())
}

pub fn delete_stream(conn: &Connection, stream_id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM producers WHERE stream_id = ?1")?
        .execute([stream_id])?;
    Ok(())
}

/// Producers whose state was last updated at or before `before_ms`, oldest first, as
/// `(stream_id, producer_id)`. Reads only those rows (the `producers_updated` index).
pub fn idle(
    conn: &Connection,
    before_ms: i64,
    limit: usize,
) -> rusqlite::Result<Vec<(i64, String)>> {
    let mut stmt = conn.prepare_cached(IDLE_SQL)?;
    let rows = stmt.query_map(params![before_ms, limit as i64], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    rows.collect()
}

pub(super) const IDLE_SQL: &str = "SELECT stream_id, producer_id FROM producers \
     WHERE updated_at_ms <= ?1 ORDER BY updated_at_ms LIMIT ?2";

/// Forgets one producer's state.
pub fn delete(conn: &Connection, stream_id: i64, producer: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM producers WHERE stream_id = ?1 AND producer_id = ?2")?
        .execute(params![stream_id, producer])?;
    Ok(())
}
