//! The `object_gc` table: objects to delete. A `prefix` ending with `/` is the folder of a
//! removed incarnation (everything under it goes); any other is one object's key (a
//! routing-key index run that was merged into its parent).

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

/// Withdraws pending deletions of exactly this key (it was written again).
pub fn cancel(conn: &Connection, key: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM object_gc WHERE prefix = ?1")?
        .execute([key])?;
    Ok(())
}

pub fn delete(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM object_gc WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}
