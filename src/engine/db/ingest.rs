//! The `ingest` table: appended entries in commit order, before compaction moves them
//! into `entries`.

use rusqlite::{params, Connection};

use crate::engine::entry::Entry;

pub fn insert(
    conn: &Connection,
    stream_id: i64,
    pos: u64,
    data: &[u8],
    key: Option<&[u8]>,
    ts_ms: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO ingest (stream_id, pos, data, key, ts_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![stream_id, pos as i64, data, key, ts_ms])?;
    Ok(())
}

/// Moves every row into `entries`, in stream and position order, records their routing
/// keys in `stream_keys`, and empties the table, in one transaction of its own. Rows of
/// streams that no longer exist, or below a stream's retention point, are dropped.
/// Returns the number of rows moved.
pub fn compact(conn: &mut Connection) -> rusqlite::Result<usize> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let moved = tx
        .prepare_cached(
            "INSERT INTO entries (stream_id, pos, data, key, ts_ms) \
             SELECT i.stream_id, i.pos, i.data, i.key, i.ts_ms \
             FROM ingest i JOIN streams s ON s.id = i.stream_id \
             WHERE i.pos >= s.trimmed_pos AND i.pos >= s.uploaded_pos \
             ORDER BY i.stream_id, i.pos",
        )?
        .execute([])?;
    tx.prepare_cached(
        "INSERT OR IGNORE INTO stream_keys (stream_id, key) \
         SELECT DISTINCT i.stream_id, i.key FROM ingest i JOIN streams s ON s.id = i.stream_id \
         WHERE i.key IS NOT NULL AND length(i.key) > 0",
    )?
    .execute([])?;
    tx.prepare_cached("DELETE FROM ingest")?.execute([])?;
    tx.commit()?;
    Ok(moved)
}

/// A run of consecutive positions of one stream: `(stream_id, first_pos, entries)`.
pub type Run = (i64, u64, Vec<Entry>);

/// Every row, as runs of consecutive positions of one stream in commit order.
pub fn load_runs(conn: &Connection) -> rusqlite::Result<Vec<Run>> {
    let mut stmt =
        conn.prepare_cached("SELECT stream_id, pos, data, key, ts_ms FROM ingest ORDER BY id")?;
    let mut rows = stmt.query([])?;
    let mut runs: Vec<Run> = Vec::new();
    while let Some(r) = rows.next()? {
        let (id, pos): (i64, i64) = (r.get(0)?, r.get(1)?);
        let entry = Entry {
            data: r.get::<_, Vec<u8>>(2)?.into(),
            key: r.get::<_, Option<Vec<u8>>>(3)?.map(Into::into),
            ts_ms: r.get::<_, Option<i64>>(4)?.unwrap_or(0),
        };
        let pos = pos as u64;
        match runs.last_mut() {
            Some((rid, first, e)) if *rid == id && *first + e.len() as u64 == pos => e.push(entry),
            _ => runs.push((id, pos, vec![entry])),
        }
    }
    Ok(runs)
}

/// Whether the table holds any row.
pub fn is_empty(conn: &Connection) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT NOT EXISTS (SELECT 1 FROM ingest)")?
        .query_row([], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compaction_moves_rows_in_order_and_drops_what_no_one_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = super::super::open_writer(&dir.path().join("t.sqlite")).unwrap();
        for (id, trimmed) in [(1, 0), (2, 2)] {
            c.execute(
                "INSERT INTO streams (id, name, content_type, created_at_ms, last_access_ms, \
                 incarnation, trimmed_pos) VALUES (?1, ?2, 'text/plain', 0, 0, ?2, ?3)",
                params![id, format!("s{id}"), trimmed],
            )
            .unwrap();
        }
        // Interleaved as commits would write them; stream 3 no longer exists.
        for (s, p) in [(2, 1), (1, 0), (3, 0), (2, 2), (1, 1), (2, 3)] {
            let key = format!("k{}", p % 2);
            insert(
                &c,
                s,
                p,
                format!("{s}:{p}").as_bytes(),
                Some(key.as_bytes()),
                9,
            )
            .unwrap();
        }
        assert!(!is_empty(&c).unwrap());
        assert_eq!(compact(&mut c).unwrap(), 4);
        assert!(is_empty(&c).unwrap());
        let rows: Vec<(i64, i64, Vec<u8>)> = c
            .prepare("SELECT stream_id, pos, data FROM entries ORDER BY stream_id, pos")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let want: Vec<(i64, i64, Vec<u8>)> = [(1, 0), (1, 1), (2, 2), (2, 3)]
            .iter()
            .map(|&(s, p)| (s, p, format!("{s}:{p}").into_bytes()))
            .collect();
        assert_eq!(rows, want);
        let keys: Vec<(i64, Vec<u8>)> = c
            .prepare("SELECT stream_id, key FROM stream_keys ORDER BY stream_id, key")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let want: Vec<(i64, Vec<u8>)> = [(1, "k0"), (1, "k1"), (2, "k0"), (2, "k1")]
            .iter()
            .map(|&(s, k)| (s, k.as_bytes().to_vec()))
            .collect();
        assert_eq!(keys, want, "keys of removed streams are not recorded");
    }
}
