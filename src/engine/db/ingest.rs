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
/// keys in `stream_keys`, folds them into their streams' rows (see [`fold`]), and empties
/// the table, in one transaction of its own. Rows of streams that no longer exist, or
/// below a stream's retention point, are dropped. Returns the number of rows moved.
pub fn compact(conn: &mut Connection) -> rusqlite::Result<usize> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    fold(&tx)?;
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

/// Moves each stream row's tail past its rows in the table at or above it: `next_pos` to
/// the last one's position + 1, their payload bytes into `total_bytes` and
/// `pending_bytes`, their append time into `last_access_ms` when later, and the
/// segmenter's `unsealed` flag with the tail. A plain append leaves its stream's row as it
/// was (see `engine::memtable`); rows below `next_pos` were counted by whoever wrote it (a
/// close, a create with a body, or a server before this fold existed). Folding again
/// changes nothing, so any writer transaction may fold early: the rows then cover the
/// entries, which compaction, the memtable and the writer's own view all skip.
pub fn fold(conn: &Connection) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "UPDATE streams SET next_pos = f.next_pos, \
         pending_bytes = pending_bytes + f.bytes, total_bytes = total_bytes + f.bytes, \
         last_access_ms = max(last_access_ms, f.ts_ms), unsealed = (f.next_pos > sealed_pos) \
         FROM (SELECT i.stream_id AS id, max(i.pos) + 1 AS next_pos, \
                      sum(length(i.data)) AS bytes, max(coalesce(i.ts_ms, 0)) AS ts_ms \
               FROM ingest i JOIN streams s ON s.id = i.stream_id \
               WHERE i.pos >= s.next_pos GROUP BY i.stream_id) AS f \
         WHERE streams.id = f.id",
    )?
    .execute([])
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

    /// The fold moves each row's tail past its rows at or above it, once; rows below the
    /// tail were counted by whoever wrote it.
    #[test]
    fn folding_counts_each_row_once() {
        let dir = tempfile::tempdir().unwrap();
        let c = super::super::open_writer(&dir.path().join("t.sqlite")).unwrap();
        // Stream 1 has its tail at 2 (a close wrote it); stream 2 at 0.
        for (id, next, bytes) in [(1, 2, 7), (2, 0, 0)] {
            c.execute(
                "INSERT INTO streams (id, name, content_type, created_at_ms, last_access_ms, \
                 incarnation, next_pos, total_bytes, pending_bytes) \
                 VALUES (?1, ?2, 'text/plain', 0, 50, ?2, ?3, ?4, ?4)",
                params![id, format!("s{id}"), next, bytes],
            )
            .unwrap();
        }
        for (s, p, data, ts) in [
            (1, 1, "bbb", 40),
            (1, 2, "cc", 60),
            (2, 0, "d", 30),
            (1, 3, "e", 45),
        ] {
            insert(&c, s, p, data.as_bytes(), None, ts).unwrap();
        }
        let tail = |id: i64| -> (i64, i64, i64, i64, bool) {
            c.query_row(
                "SELECT next_pos, total_bytes, pending_bytes, last_access_ms, unsealed = 1 \
                 FROM streams WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap()
        };
        assert_eq!(fold(&c).unwrap(), 2);
        assert_eq!(tail(1), (4, 10, 10, 60, true));
        assert_eq!(tail(2), (1, 1, 1, 50, true));
        assert_eq!(fold(&c).unwrap(), 0);
        assert_eq!(tail(1), (4, 10, 10, 60, true));
    }
}
