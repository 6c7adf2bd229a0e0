//! The `entries` table: the payload of every entry, keyed by (incarnation, position), with
//! its routing key and append time; and `stream_keys`, the keys a stream ever had.

use rusqlite::{params, Connection, OptionalExtension};

use crate::engine::collect::Collect;

pub fn insert(
    conn: &Connection,
    stream_id: i64,
    pos: u64,
    data: &[u8],
    key: Option<&[u8]>,
    ts_ms: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO entries (stream_id, pos, data, key, ts_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![stream_id, pos as i64, data, key, ts_ms])?;
    if let Some(k) = key.filter(|k| !k.is_empty()) {
        add_key(conn, stream_id, k)?;
    }
    Ok(())
}

/// Records that stream `stream_id` has an entry with routing key `key`.
pub fn add_key(conn: &Connection, stream_id: i64, key: &[u8]) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT OR IGNORE INTO stream_keys (stream_id, key) VALUES (?1, ?2)")?
        .execute(params![stream_id, key])?;
    Ok(())
}

pub fn get(conn: &Connection, stream_id: i64, pos: u64) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT data FROM entries WHERE stream_id = ?1 AND pos = ?2")?
        .query_row(params![stream_id, pos as i64], |r| r.get(0))
        .optional()
}

/// A key's entries in a position range. Without statistics, and with plans that never
/// depend on bound values, SQLite would walk the primary key over the whole range and
/// compare every row's key; `INDEXED BY` makes it seek the partial index instead (and
/// fails to prepare, loudly, if the index could not serve the query).
const KEYED_PAGE: &str = "SELECT pos, data FROM entries INDEXED BY entries_key \
     WHERE stream_id = ?1 AND key = ?2 AND key IS NOT NULL AND pos >= ?3 AND pos < ?4 \
     ORDER BY pos";

/// The first of a key's entries in a position range appended at or after a time.
const KEYED_SINCE: &str = "SELECT pos FROM entries INDEXED BY entries_key \
     WHERE stream_id = ?1 AND key = ?2 AND key IS NOT NULL AND pos >= ?3 AND pos < ?4 \
     AND coalesce(ts_ms, 0) >= ?5 ORDER BY pos LIMIT 1";

/// Offers the entries of positions `[c.next_pos, to)` to the page until it is full. A
/// keyed page seeks the key's entries through the `entries_key` index; the positions in
/// between are scanned without being read. Stops at a gap (a concurrent removal).
pub fn collect(
    conn: &Connection,
    stream_id: i64,
    to: u64,
    c: &mut Collect,
) -> rusqlite::Result<()> {
    let from = c.next_pos;
    if let Some(key) = c.key().map(<[u8]>::to_vec) {
        let mut stmt = conn.prepare_cached(KEYED_PAGE)?;
        let mut rows = stmt.query(params![stream_id, key, from as i64, to as i64])?;
        while let Some(row) = rows.next()? {
            let pos = row.get::<_, i64>(0)? as u64;
            c.skip_to(pos);
            let data = row.get_ref(1)?.as_blob()?;
            if !c.offer_copy(pos, Some(&key), data) {
                return Ok(());
            }
        }
        c.skip_to(to);
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(
        "SELECT pos, data, key FROM entries WHERE stream_id = ?1 AND pos >= ?2 AND pos < ?3 \
         ORDER BY pos",
    )?;
    let mut rows = stmt.query(params![stream_id, from as i64, to as i64])?;
    while let Some(row) = rows.next()? {
        let pos = row.get::<_, i64>(0)? as u64;
        if pos != c.next_pos {
            break;
        }
        let data = row.get_ref(1)?.as_blob()?;
        let key = row.get_ref(2)?.as_blob_or_null()?;
        if !c.offer_copy(pos, key, data) {
            break;
        }
    }
    Ok(())
}

/// Calls `f(pos, data, key, ts_ms)` for entries in `[from, to)` in order until it
/// returns false.
pub fn scan(
    conn: &Connection,
    stream_id: i64,
    from: u64,
    to: u64,
    mut f: impl FnMut(u64, &[u8], Option<&[u8]>, i64) -> bool,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "SELECT pos, data, key, ts_ms FROM entries WHERE stream_id = ?1 AND pos >= ?2 \
         AND pos < ?3 ORDER BY pos",
    )?;
    let mut rows = stmt.query(params![stream_id, from as i64, to as i64])?;
    while let Some(row) = rows.next()? {
        let pos: i64 = row.get(0)?;
        let data = row.get_ref(1)?.as_blob()?;
        let key = row.get_ref(2)?.as_blob_or_null()?;
        let ts: Option<i64> = row.get(3)?;
        if !f(pos as u64, data, key, ts.unwrap_or(0)) {
            break;
        }
    }
    Ok(())
}

/// The first position in `[from, to)` whose entry was appended at or after `since_ms` (and
/// has the key, if given).
pub fn seek_time(
    conn: &Connection,
    stream_id: i64,
    from: u64,
    to: u64,
    since_ms: i64,
    key: Option<&[u8]>,
) -> rusqlite::Result<Option<u64>> {
    let pos: Option<i64> = match key {
        Some(k) => conn
            .prepare_cached(KEYED_SINCE)?
            .query_row(
                params![stream_id, k, from as i64, to as i64, since_ms],
                |r| r.get(0),
            )
            .optional()?,
        None => conn
            .prepare_cached(
                "SELECT pos FROM entries WHERE stream_id = ?1 AND pos >= ?2 AND pos < ?3 \
                 AND coalesce(ts_ms, 0) >= ?4 ORDER BY pos LIMIT 1",
            )?
            .query_row(params![stream_id, from as i64, to as i64, since_ms], |r| {
                r.get(0)
            })
            .optional()?,
    };
    Ok(pos.map(|p| p as u64))
}

/// Up to `limit` of the stream's recorded routing keys greater than `after`, in byte order.
/// Whether the stream has any recorded routing key.
pub fn has_keys(conn: &Connection, stream_id: i64) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM stream_keys WHERE stream_id = ?1)")?
        .query_row(params![stream_id], |r| r.get(0))
}

pub fn keys_after(
    conn: &Connection,
    stream_id: i64,
    after: Option<&[u8]>,
    limit: usize,
) -> rusqlite::Result<Vec<Vec<u8>>> {
    let mut stmt = conn.prepare_cached(
        "SELECT key FROM stream_keys WHERE stream_id = ?1 AND key > ?2 ORDER BY key LIMIT ?3",
    )?;
    let after: &[u8] = after.unwrap_or_default();
    let rows = stmt.query_map(params![stream_id, after, limit as i64], |r| r.get(0))?;
    rows.collect()
}

pub fn delete_stream(conn: &Connection, stream_id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM entries WHERE stream_id = ?1")?
        .execute([stream_id])?;
    conn.prepare_cached("DELETE FROM stream_keys WHERE stream_id = ?1")?
        .execute([stream_id])?;
    Ok(())
}

/// Deletes a stream's entries below `pos` (they are in uploaded segments).
pub fn delete_below(conn: &Connection, stream_id: i64, pos: u64) -> rusqlite::Result<usize> {
    conn.prepare_cached("DELETE FROM entries WHERE stream_id = ?1 AND pos < ?2")?
        .execute(params![stream_id, pos as i64])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The query plans of `sql` on a migrated database, one line per step.
    fn plan(conn: &Connection, sql: &str, n: usize) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let params: Vec<i64> = (0..n as i64).collect();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |r| {
                r.get::<_, String>(3)
            })
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn keyed_queries_seek_the_key_index() {
        let dir = tempfile::tempdir().unwrap();
        let conn = super::super::open_writer(&dir.path().join("t.sqlite")).unwrap();
        for (sql, n) in [(KEYED_PAGE, 4), (KEYED_SINCE, 5)] {
            let p = plan(&conn, sql, n);
            assert!(p.contains("USING INDEX entries_key"), "{sql}: {p}");
        }
    }
}
