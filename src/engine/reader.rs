//! The range read that stitches a fork's inherited prefix, its segments, `entries` and
//! the memtable together (run on the read pool).

use rusqlite::Connection;

use super::collect::{Collect, Entries};
use super::db;
use super::db::segments::SegmentRow;
use super::memtable::Memtable;
use super::{EngineError, StreamMeta};

/// Entries read from one stream, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadBatch {
    pub entries: Entries,
    /// The position of each entry.
    pub positions: Vec<u64>,
    /// Position after the last entry scanned: after the last one returned, or further
    /// for a keyed read that skipped entries of other keys (the request position if none).
    pub next_pos: u64,
    /// Payload bytes in `entries`.
    pub bytes: usize,
    /// Entry bytes a read filter tested (0 without one).
    pub filter_scanned_bytes: usize,
    /// The read filter's scan limit ended the page.
    pub filter_limit_reached: bool,
}

impl From<Collect> for ReadBatch {
    fn from(mut c: Collect) -> ReadBatch {
        c.seal();
        ReadBatch {
            entries: c.entries,
            positions: c.positions,
            next_pos: c.next_pos,
            bytes: c.bytes,
            filter_scanned_bytes: c.filter_scanned_bytes,
            filter_limit_reached: c.filter_limit_reached,
        }
    }
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
    /// Entries were offered from SQLite or the memtable (possibly none if the range is
    /// empty).
    Collected,
    /// The position lives in this segment of this incarnation; read `[from, to)` from it.
    /// For a keyed read, `run` is the routing-key index run covering the segment, if any.
    Segment {
        incarnation: String,
        seg: SegmentRow,
        to: u64,
        run: Option<db::key_index::RunRow>,
    },
    /// Nothing at or after this position below the snapshot's tail.
    End,
}

/// Decides where position `c.next_pos` of `meta` lives and, if it is in SQLite or the
/// memtable, offers entries from there to the page. Runs in one read transaction, so the
/// stream rows and the entries it sees are one consistent snapshot (the writer may be
/// moving entries into segments, or from the memtable into `entries`).
///
/// The memtable is consulted after the snapshot is pinned and only for a moment, never
/// across SQL: its generation, read before the snapshot and checked after, proves that no
/// compaction emptied it in between (see `memtable.rs`); if one did, the plan starts over.
pub fn plan(
    conn: &Connection,
    mem: &Memtable,
    meta: &StreamMeta,
    c: &mut Collect,
) -> Result<Step, EngineError> {
    loop {
        let generation = mem.generation();
        if let Some(step) = plan_once(conn, mem, generation, meta, c)? {
            return Ok(step);
        }
    }
}

/// One attempt of [`plan`]; `None` if a compaction intervened (nothing was offered then).
fn plan_once(
    conn: &Connection,
    mem: &Memtable,
    generation: u64,
    meta: &StreamMeta,
    c: &mut Collect,
) -> Result<Option<Step>, EngineError> {
    // Ends (rolls back, harmlessly: it only reads) when dropped.
    let snapshot = conn.unchecked_transaction()?;
    let conn: &Connection = &snapshot;
    // Fresh rows for the whole chain: uploaded positions move while streams are live.
    let Some(mut fresh) = db::streams::by_id(conn, meta.id)? else {
        return Ok(Some(Step::End));
    };
    if !mem.overlay(generation, &mut fresh) {
        return Ok(None);
    }
    let mut bounded = fresh;
    bounded.tail.next_pos = meta.tail.next_pos.min(bounded.tail.next_pos);
    for (part, lo, hi) in chain(conn, &bounded)? {
        let from = c.next_pos;
        if from >= hi || hi <= lo {
            continue;
        }
        if from < lo {
            c.skip_to(lo);
        }
        let from = c.next_pos;
        if from < part.tier.uploaded_pos {
            let Some(seg) = db::segments::covering(conn, part.id, from)? else {
                return Err(EngineError::Corrupt(format!(
                    "catalog: no segment holds position {from} of incarnation {}",
                    part.config.incarnation
                )));
            };
            let run = match c.key() {
                Some(_) => db::key_index::covering(conn, part.id, seg.index)?,
                None => None,
            };
            return Ok(Some(Step::Segment {
                incarnation: part.config.incarnation,
                to: hi.min(seg.end_pos),
                seg,
                run,
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
                tails.collect(part.id, to, c);
                return Ok(Some(Step::Collected));
            }
            base
        };
        db::entries::collect(conn, part.id, to.min(base), c)?;
        return Ok(Some(Step::Collected));
    }
    Ok(Some(Step::End))
}

/// Where a time seek goes next (see [`seek_time`]).
#[derive(Debug)]
pub enum SeekStep {
    /// Found at this position.
    Found(u64),
    /// Not in SQLite or the memtable up to here: look in this segment next.
    Segment {
        incarnation: String,
        seg: SegmentRow,
        to: u64,
    },
    /// Nothing from `from` to `end`.
    NotFound,
}

/// The first position from `from` (below the tail of `meta`) whose entry was appended at
/// or after `since_ms` and has `key` if given, in SQLite or the memtable, or the segment
/// to search next. The same snapshot and memtable rules as [`plan`].
pub fn seek_time(
    conn: &Connection,
    mem: &Memtable,
    meta: &StreamMeta,
    from: u64,
    since_ms: i64,
    key: Option<&[u8]>,
) -> Result<SeekStep, EngineError> {
    'attempt: loop {
        let generation = mem.generation();
        let snapshot = conn.unchecked_transaction()?;
        let conn: &Connection = &snapshot;
        let Some(mut fresh) = db::streams::by_id(conn, meta.id)? else {
            return Ok(SeekStep::NotFound);
        };
        if !mem.overlay(generation, &mut fresh) {
            continue 'attempt;
        }
        let mut bounded = fresh;
        bounded.tail.next_pos = meta.tail.next_pos.min(bounded.tail.next_pos);
        let mut from = from;
        for (part, lo, hi) in chain(conn, &bounded)? {
            if from >= hi || hi <= lo {
                continue;
            }
            from = from.max(lo);
            if from < part.tier.uploaded_pos {
                let Some(seg) = db::segments::covering(conn, part.id, from)? else {
                    return Err(EngineError::Corrupt(format!(
                        "catalog: no segment holds position {from} of incarnation {}",
                        part.config.incarnation
                    )));
                };
                return Ok(SeekStep::Segment {
                    incarnation: part.config.incarnation,
                    to: hi.min(seg.end_pos),
                    seg,
                });
            }
            let to = hi.min(bounded.tail.next_pos);
            let (base, in_memory) = {
                let tails = mem.lock();
                if tails.generation() != generation {
                    continue 'attempt;
                }
                let base = tails.base(part.id).unwrap_or(u64::MAX);
                let found = tails
                    .seek_time(part.id, from.max(base), since_ms, key)
                    .filter(|p| *p < to);
                (base, found)
            };
            if from < base {
                if let Some(p) =
                    db::entries::seek_time(conn, part.id, from, to.min(base), since_ms, key)?
                {
                    return Ok(SeekStep::Found(p));
                }
            }
            if let Some(p) = in_memory {
                return Ok(SeekStep::Found(p));
            }
            from = to;
        }
        return Ok(SeekStep::NotFound);
    }
}
