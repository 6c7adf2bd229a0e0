//! The read side: a pool of read-only SQLite connections used from tokio's blocking
//! threads, and the range read that stitches a fork's inherited prefix with its own
//! entries.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use super::db;
use super::{EngineError, StreamMeta};

/// Entries read from one stream, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadBatch {
    pub entries: Vec<Vec<u8>>,
    /// Position after the last entry returned (the request position if none).
    pub next_pos: u64,
    /// Payload bytes in `entries`.
    pub bytes: usize,
}

#[derive(Clone)]
pub struct ReadPool {
    path: Arc<PathBuf>,
    idle: Arc<Mutex<Vec<Connection>>>,
    max_idle: usize,
}

impl ReadPool {
    pub fn new(path: PathBuf, max_idle: usize) -> ReadPool {
        ReadPool {
            path: Arc::new(path),
            idle: Arc::new(Mutex::new(Vec::new())),
            max_idle,
        }
    }

    /// Runs `f` with a read connection on a blocking thread.
    pub async fn run<T, F>(&self, f: F) -> Result<T, EngineError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = {
                let mut idle = pool.idle.lock().unwrap_or_else(|p| p.into_inner());
                idle.pop()
            };
            let conn = match conn {
                Some(c) => c,
                None => db::open_reader(&pool.path)?,
            };
            let out = f(&conn);
            let mut idle = pool.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < pool.max_idle {
                idle.push(conn);
            }
            Ok::<_, EngineError>(out?)
        })
        .await
        .map_err(|e| EngineError::Storage(format!("read task failed: {e}")))?
    }
}

/// The incarnations a stream's positions come from: `(stream id, first pos, end pos)`,
/// oldest ancestor first, covering `[0, meta.next_pos)` without gaps.
pub(crate) fn chain(
    conn: &Connection,
    meta: &StreamMeta,
) -> rusqlite::Result<Vec<(i64, u64, u64)>> {
    let mut parts = Vec::new();
    let mut end = meta.next_pos;
    let mut cur = meta.clone();
    loop {
        match cur.fork {
            Some(f) => {
                parts.push((cur.id, f.pos.min(end), end));
                end = f.pos.min(end);
                match db::streams::by_id(conn, f.source_id)? {
                    Some(src) => cur = src,
                    None => break, // source rows are kept while referenced; defensive
                }
            }
            None => {
                parts.push((cur.id, 0, end));
                break;
            }
        }
    }
    parts.reverse();
    Ok(parts)
}

/// Reads from `from` up to the limits (always at least one entry if any is available).
pub fn read(
    conn: &Connection,
    meta: &StreamMeta,
    from: u64,
    max_bytes: usize,
    max_records: usize,
) -> rusqlite::Result<ReadBatch> {
    let mut batch = ReadBatch {
        entries: Vec::new(),
        next_pos: from,
        bytes: 0,
    };
    if from >= meta.next_pos {
        return Ok(batch);
    }
    let parts = chain(conn, meta)?;
    for (id, lo, hi) in parts {
        if hi <= batch.next_pos {
            continue;
        }
        let start = batch.next_pos.max(lo);
        let mut full = false;
        db::entries::scan(conn, id, start, hi, |pos, data| {
            if !batch.entries.is_empty()
                && (batch.entries.len() >= max_records || batch.bytes + data.len() > max_bytes)
            {
                full = true;
                return false;
            }
            batch.entries.push(data.to_vec());
            batch.bytes += data.len();
            batch.next_pos = pos + 1;
            true
        })?;
        if full {
            break;
        }
    }
    Ok(batch)
}

/// The entry at `pos` of a stream, following its fork chain.
pub(crate) fn entry_at(
    conn: &Connection,
    meta: &StreamMeta,
    pos: u64,
) -> rusqlite::Result<Option<Vec<u8>>> {
    for (id, lo, hi) in chain(conn, meta)? {
        if pos >= lo && pos < hi {
            return db::entries::get(conn, id, pos);
        }
    }
    Ok(None)
}
