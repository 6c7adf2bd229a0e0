//! The `entries` table: the payload of every entry, keyed by (incarnation, position).

use rusqlite::{params, Connection, OptionalExtension};

pub fn insert(conn: &Connection, stream_id: i64, pos: u64, data: &[u8]) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO entries (stream_id, pos, data) VALUES (?1, ?2, ?3)")?
        .execute(params![stream_id, pos as i64, data])?;
    Ok(())
}

pub fn get(conn: &Connection, stream_id: i64, pos: u64) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT data FROM entries WHERE stream_id = ?1 AND pos = ?2")?
        .query_row(params![stream_id, pos as i64], |r| r.get(0))
        .optional()
}

/// Calls `f(pos, data)` for entries in `[from, to)` in order until it returns false.
pub fn scan(
    conn: &Connection,
    stream_id: i64,
    from: u64,
    to: u64,
    mut f: impl FnMut(u64, &[u8]) -> bool,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "SELECT pos, data FROM entries WHERE stream_id = ?1 AND pos >= ?2 AND pos < ?3 ORDER BY pos",
    )?;
    let mut rows = stmt.query(params![stream_id, from as i64, to as i64])?;
    while let Some(row) = rows.next()? {
        let pos: i64 = row.get(0)?;
        let data = row.get_ref(1)?.as_blob()?;
        if !f(pos as u64, data) {
            break;
        }
    }
    Ok(())
}

pub fn delete_stream(conn: &Connection, stream_id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM entries WHERE stream_id = ?1")?
        .execute([stream_id])?;
    Ok(())
}

/// Deletes a stream's entries below `pos` (they are in uploaded segments).
pub fn delete_below(conn: &Connection, stream_id: i64, pos: u64) -> rusqlite::Result<usize> {
    conn.prepare_cached("DELETE FROM entries WHERE stream_id = ?1 AND pos < ?2")?
        .execute(params![stream_id, pos as i64])
}
