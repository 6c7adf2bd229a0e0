//! The `ingest` table: appended entries in commit order, before compaction moves them
//! into `entries`.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};

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

/// Inserts `entries` of stream `id` at positions `first_pos..`.
pub fn insert_run(
    conn: &Connection,
    id: i64,
    first_pos: u64,
    entries: &[Entry],
) -> rusqlite::Result<()> {
    for (pos, e) in (first_pos..).zip(entries) {
        insert(conn, id, pos, &e.data, e.key.as_deref(), e.ts_ms)?;
    }
    Ok(())
}

/// Inserts the entries of `runs`.
pub fn insert_runs(conn: &Connection, runs: &[Run]) -> rusqlite::Result<()> {
    for (id, first_pos, entries) in runs {
        insert_run(conn, *id, *first_pos, entries)?;
    }
    Ok(())
}

/// The append log's salt (see `engine::applog`); `None` before the writer first drew one.
pub fn log_salt(conn: &Connection) -> rusqlite::Result<Option<u64>> {
    conn.prepare_cached("SELECT salt FROM applog WHERE id = 1")?
        .query_row([], |r| r.get::<_, i64>(0))
        .optional()
        .map(|s| s.map(|s| s as u64))
}

/// Records a new salt for the append log, which voids every record of the old one.
pub fn set_log_salt(conn: &Connection, salt: u64) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO applog (id, salt) VALUES (1, ?1)")?
        .execute([salt as i64])?;
    Ok(())
}

/// The append log's records to take into a compaction: their runs and the salt that
/// replaces theirs.
pub struct Spill<'a> {
    pub runs: &'a [Run],
    pub new_salt: u64,
}

/// Moves every row into `entries`, in stream and position order, records their routing
/// keys in `stream_keys`, folds them into their streams' rows (see [`fold`]), and empties
/// the table, in one transaction of its own; with `spill`, does the same with the append
/// log's records, straight from memory, and voids them (a new salt). Entries of streams
/// that no longer exist, or below a stream's retention point, are dropped. Returns the
/// number of entries moved.
pub fn compact(conn: &mut Connection, spill: Option<Spill<'_>>) -> rusqlite::Result<usize> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // The log's streams as their rows were before this fold: both folds count from there.
    let before = match &spill {
        Some(s) => rows_of(&tx, s.runs)?,
        None => HashMap::new(),
    };
    fold(&tx)?;
    let mut moved = 0;
    if let Some(s) = &spill {
        moved += move_runs(&tx, s.runs, &before)?;
        set_log_salt(&tx, s.new_salt)?;
    }
    moved += tx
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

/// What compaction needs of a stream's row: `(next_pos, lowest position kept)`.
type RowBefore = (u64, u64);

/// The rows of the streams `runs` append to (streams that no longer exist are absent).
fn rows_of(conn: &Connection, runs: &[Run]) -> rusqlite::Result<HashMap<i64, RowBefore>> {
    let mut stmt = conn.prepare_cached(
        "SELECT next_pos, max(trimmed_pos, uploaded_pos) FROM streams WHERE id = ?1",
    )?;
    let mut rows = HashMap::new();
    for (id, _, _) in runs {
        if rows.contains_key(id) {
            continue;
        }
        let row = stmt
            .query_row([id], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
            })
            .optional()?;
        if let Some(row) = row {
            rows.insert(*id, row);
        }
    }
    Ok(rows)
}

/// Writes the entries of `runs` into `entries` and their keys into `stream_keys`, and
/// folds them into their rows as [`fold`] folds the table's (counting from the tail each
/// row had before either fold, so entries of one stream in both places add up). Returns
/// the number of entries written.
fn move_runs(
    conn: &Connection,
    runs: &[Run],
    before: &HashMap<i64, RowBefore>,
) -> rusqlite::Result<usize> {
    let mut ordered: Vec<&Run> = runs.iter().collect();
    ordered.sort_by_key(|r| (r.0, r.1));
    let mut insert = conn.prepare_cached(
        "INSERT INTO entries (stream_id, pos, data, key, ts_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut keys = std::collections::HashSet::new();
    // Per stream: the new tail, the bytes at or above the old one, the latest time.
    let mut folds: HashMap<i64, (u64, u64, i64)> = HashMap::new();
    let mut moved = 0;
    for (id, first_pos, entries) in ordered {
        let Some(&(next_pos, kept_from)) = before.get(id) else {
            continue;
        };
        for (pos, e) in (*first_pos..).zip(entries) {
            if pos >= next_pos {
                let f = folds.entry(*id).or_insert((next_pos, 0, 0));
                f.0 = f.0.max(pos + 1);
                f.1 += e.data.len() as u64;
                f.2 = f.2.max(e.ts_ms);
            }
            if pos >= kept_from {
                insert.execute(params![
                    id,
                    pos as i64,
                    &e.data[..],
                    e.key.as_deref(),
                    e.ts_ms
                ])?;
                moved += 1;
            }
            if let Some(k) = e.key.as_ref().filter(|k| !k.is_empty()) {
                keys.insert((*id, k.clone()));
            }
        }
    }
    let mut key_stmt =
        conn.prepare_cached("INSERT OR IGNORE INTO stream_keys (stream_id, key) VALUES (?1, ?2)")?;
    for (id, k) in keys {
        key_stmt.execute(params![id, &k[..]])?;
    }
    let mut update = conn.prepare_cached(
        "UPDATE streams SET next_pos = max(next_pos, ?2), \
         pending_bytes = pending_bytes + ?3, total_bytes = total_bytes + ?3, \
         last_access_ms = max(last_access_ms, ?4), unsealed = (max(next_pos, ?2) > sealed_pos) \
         WHERE id = ?1",
    )?;
    for (id, (end, bytes, ts)) in folds {
        update.execute(params![id, end as i64, bytes as i64, ts])?;
    }
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

    /// Stream rows `(id, trimmed_pos)`, named `s<id>`, otherwise empty.
    fn streams(c: &Connection, rows: &[(i64, i64)]) {
        for &(id, trimmed) in rows {
            c.execute(
                "INSERT INTO streams (id, name, content_type, created_at_ms, last_access_ms, \
                 incarnation, trimmed_pos) VALUES (?1, ?2, 'text/plain', 0, 0, ?2, ?3)",
                params![id, format!("s{id}"), trimmed],
            )
            .unwrap();
        }
    }

    #[test]
    fn compaction_moves_rows_in_order_and_drops_what_no_one_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = super::super::open_writer(&dir.path().join("t.sqlite")).unwrap();
        streams(&c, &[(1, 0), (2, 2)]);
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
        assert_eq!(compact(&mut c, None).unwrap(), 4);
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

    /// The append log's entries and the table's rows of one stream interleave (a batch
    /// that began a transaction between batches of plain appends): compaction moves both
    /// and folds them as one tail.
    #[test]
    fn compaction_takes_the_append_logs_entries_with_the_tables_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = super::super::open_writer(&dir.path().join("t.sqlite")).unwrap();
        streams(&c, &[(1, 0), (2, 1)]);
        let e = |d: &str, key: Option<&str>, ts: i64| Entry {
            data: d.as_bytes().to_vec().into(),
            key: key.map(|k| k.as_bytes().to_vec().into()),
            ts_ms: ts,
        };
        insert(&c, 1, 3, b"dd", Some(b"k"), 30).unwrap();
        let runs: Vec<Run> = vec![
            (
                1,
                0,
                vec![
                    e("a", None, 10),
                    e("bb", Some("k"), 11),
                    e("c", Some("j"), 12),
                ],
            ),
            (2, 0, vec![e("gone", None, 5), e("kept", None, 6)]),
            (3, 0, vec![e("no stream", None, 7)]),
            (1, 4, vec![e("eee", None, 40)]),
        ];
        let moved = compact(
            &mut c,
            Some(Spill {
                runs: &runs,
                new_salt: 99,
            }),
        )
        .unwrap();
        assert_eq!(
            moved, 6,
            "below the retention point or without a stream: dropped"
        );
        assert!(is_empty(&c).unwrap());
        assert_eq!(log_salt(&c).unwrap(), Some(99));
        let rows: Vec<(i64, i64, Vec<u8>)> = c
            .prepare("SELECT stream_id, pos, data FROM entries ORDER BY stream_id, pos")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let want: Vec<(i64, i64, Vec<u8>)> = [
            (1, 0, "a"),
            (1, 1, "bb"),
            (1, 2, "c"),
            (1, 3, "dd"),
            (1, 4, "eee"),
            (2, 1, "kept"),
        ]
        .iter()
        .map(|&(s, p, d)| (s, p, d.as_bytes().to_vec()))
        .collect();
        assert_eq!(rows, want);
        let tail = |id: i64| -> (i64, i64, i64, bool) {
            c.query_row(
                "SELECT next_pos, total_bytes, last_access_ms, unsealed = 1 FROM streams \
                 WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap()
        };
        assert_eq!(tail(1), (5, 9, 40, true));
        assert_eq!(
            tail(2),
            (2, 8, 6, true),
            "a trim does not change what was appended"
        );
        let keys: Vec<Vec<u8>> = c
            .prepare("SELECT key FROM stream_keys WHERE stream_id = 1 ORDER BY key")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(keys, vec![b"j".to_vec(), b"k".to_vec()]);
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
