//! The range read that stitches a fork's inherited prefix, its segments, `entries` and
//! the memtable together (run on the read pool).

use bytes::Bytes;
use rusqlite::Connection;

use super::db;
use super::db::segments::SegmentRow;
use super::memtable::Memtable;
use super::{EngineError, StreamMeta};

/// Entries read from one stream, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadBatch {
    pub entries: Vec<Bytes>,
    /// Position after the last entry returned (the request position if none).
    pub next_pos: u64,
    /// Payload bytes in `entries`.
    pub bytes: usize,
}

/// The incarnations a stream's positions come from: `(incarnation, first pos, end pos)`,
/// oldest ancestor first, covering `[0, meta.next_pos)` without gaps.
pub(crate) fn chain(
    conn: &Connection,
    meta: &StreamMeta,
) -> rusqlite::Result<Vec<(StreamMeta, u64, u64)>> {
    let mut parts = Vec::new();
    let mut end = meta.tail.next_pos;
    let mut cur = meta.clone();
    loop {
        match cur.config.fork {
            Some(f) => {
                let lo = f.pos.min(end);
                let source = db::streams::by_id(conn, f.source_id)?;
                parts.push((cur, lo, end));
                end = lo;
                match source {
                    Some(src) => cur = src,
                    None => break, // source rows are kept while referenced; defensive
                }
            }
            None => {
                parts.push((cur, 0, end));
                break;
            }
        }
    }
    parts.reverse();
    Ok(parts)
}

/// What to read next for a position.
#[derive(Debug)]
pub enum Step {
    /// Entries read from SQLite or the memtable (possibly none if the range is empty).
    Rows(Vec<Bytes>),
    /// The position lives in this segment of this incarnation; read `[from, to)` from it.
    Segment {
        incarnation: String,
        seg: SegmentRow,
        to: u64,
    },
    /// Nothing at or after this position below the snapshot's tail.
    End,
}

/// Decides where position `from` of `meta` lives and, if it is in SQLite or the memtable,
/// reads entries up to the limits. Runs in one read transaction, so the stream rows and
/// the entries it sees are one consistent snapshot (the writer may be moving entries into
/// segments, or from the memtable into `entries`).
///
/// The memtable is consulted after the snapshot is pinned and only for a moment, never
/// across SQL: its generation, read before the snapshot and checked after, proves that no
/// compaction emptied it in between (see `memtable.rs`); if one did, the plan starts over.
pub fn plan(
    conn: &Connection,
    mem: &Memtable,
    meta: &StreamMeta,
    from: u64,
    max_bytes: usize,
    max_records: usize,
    first: bool,
) -> Result<Step, EngineError> {
    loop {
        let generation = mem.generation();
        if let Some(step) = plan_once(
            conn,
            mem,
            generation,
            meta,
            from,
            (max_bytes, max_records, first),
        )? {
            return Ok(step);
        }
    }
}

/// One attempt of [`plan`]; `None` if a compaction intervened.
fn plan_once(
    conn: &Connection,
    mem: &Memtable,
    generation: u64,
    meta: &StreamMeta,
    from: u64,
    (max_bytes, max_records, first): (usize, usize, bool),
) -> Result<Option<Step>, EngineError> {
    // Ends (rolls back, harmlessly: it only reads) when dropped.
    let snapshot = conn.unchecked_transaction()?;
    let conn: &Connection = &snapshot;
    // Fresh rows for the whole chain: uploaded positions move while streams are live.
    let Some(fresh) = db::streams::by_id(conn, meta.id)? else {
        return Ok(Some(Step::End));
    };
    let mut bounded = fresh;
    bounded.tail.next_pos = meta.tail.next_pos.min(bounded.tail.next_pos);
    for (part, lo, hi) in chain(conn, &bounded)? {
        if from >= hi || hi <= lo {
            continue;
        }
        let from = from.max(lo);
        if from < part.tier.uploaded_pos {
            let Some(seg) = db::segments::covering(conn, part.id, from)? else {
                return Err(EngineError::Corrupt(format!(
                    "catalog: no segment holds position {from} of incarnation {}",
                    part.config.incarnation
                )));
            };
            return Ok(Some(Step::Segment {
                incarnation: part.config.incarnation,
                to: hi.min(seg.end_pos),
                seg,
            }));
        }
        let to = hi.min(bounded.tail.next_pos);
        let base = {
            let tails = mem.lock();
            if tails.generation() != generation {
                return Ok(None);
            }
            let base = tails.base(part.id).unwrap_or(u64::MAX);
            if from >= base {
                let rows = tails.range(part.id, from, to, max_bytes, max_records, first);
                return Ok(Some(Step::Rows(rows)));
            }
            base
        };
        let mut rows = Vec::new();
        let mut bytes = 0usize;
        let mut expect = from;
        db::entries::scan(conn, part.id, from, to.min(base), |pos, data| {
            if pos != expect {
                return false; // a gap can only mean a concurrent removal: stop here
            }
            let allow_first = first && rows.is_empty();
            if !allow_first && (rows.len() >= max_records || bytes + data.len() > max_bytes) {
                return false;
            }
            rows.push(Bytes::copy_from_slice(data));
            bytes += data.len();
            expect += 1;
            true
        })?;
        return Ok(Some(Step::Rows(rows)));
    }
    Ok(Some(Step::End))
}
