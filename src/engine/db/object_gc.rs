//! The `object_gc` table: object-store folders of removed incarnations, to be deleted.

use rusqlite::{params, Connection};

pub fn insert(conn: &Connection, prefix: &str, now_ms: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO object_gc (prefix, created_at_ms) VALUES (?1, ?2)")?
        .execute(params![prefix, now_ms])?;
    Ok(())
}

/// `(id, prefix)` of pending deletions, oldest first.
pub fn pending(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<(i64, String)>> {
    let mut stmt = conn.prepare_cached("SELECT id, prefix FROM object_gc ORDER BY id LIMIT ?1")?;
    let rows = stmt.query_map([limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

pub fn delete(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM object_gc WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}
