//! The in-memory tail of recent appends.
//!
//! An append is made durable by one record of the append log (a batch of plain appends,
//! see `applog`) or by inserting its entries into the `ingest` table (a batch with a
//! SQLite transaction), whose rowid order is commit order: either way a commit writes to
//! one place, however many streams it touches (an insert into `entries`, clustered by
//! stream, dirties one page per stream). The entries are also kept here, per stream, so
//! readers find them without reading either. The writer periodically *compacts*: in one
//! transaction it copies the log's records and `ingest` into `entries` (sorted by stream
//! and position), folds the entries into their streams' rows (tail position, byte counts,
//! last append time), empties `ingest` and voids the log's records, then clears this
//! table. At start-up the writer compacts whatever a stop or a crash left in both (or, if
//! it cannot write, loads it here).
//!
//! A plain append does not write its stream's row: the row's tail is the *folded* one,
//! and the entries held here past it are the rest ([`Tails::overlay`] adds them to a row
//! read from SQLite). What the row says always covers exactly the positions below its
//! `next_pos`: every statement that writes `next_pos` writes the byte counts that go
//! with it, and compaction folds only the entries at or above it.
//!
//! Consistency with SQLite snapshots: the writer adds a batch's entries just *before* its
//! commit (and takes them back if the commit fails), marks them committed just after it
//! (only then does [`Tails::overlay`] count them), and removes entries only after the
//! compaction that copied them committed, bumping the table's *generation*. A reader
//! notes the generation, pins its SQLite snapshot, and only then locks this table for a
//! moment: if the generation is unchanged, no compaction emptied the table since before
//! the snapshot, so a committed position at or above a stream's `base` is here, and one
//! below it is in `entries` of the snapshot (and in the snapshot's row). Otherwise the
//! reader starts over. The lock is never held across SQL, so a slow reader cannot delay
//! the writer's next commit.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use super::collect::Collect;
use super::entry::Entry;
use super::meta::StreamMeta;

/// The recent entries of one stream incarnation: positions `base..base + data.len()`.
#[derive(Debug)]
struct Tail {
    base: u64,
    data: Vec<Entry>,
    /// How many of `data` are committed (the rest belong to the commit under way).
    committed: usize,
}

#[derive(Debug, Default)]
pub struct Tails {
    tails: HashMap<i64, Tail>,
    bytes: usize,
    entries: usize,
    since: Option<Instant>,
    /// Compactions so far (see the module documentation).
    generation: u64,
}

impl Tails {
    /// Compactions that emptied the table so far.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The first position of a stream that is held here, if any.
    pub fn base(&self, id: i64) -> Option<u64> {
        self.tails.get(&id).map(|t| t.base)
    }

    /// Adds to `meta`, read from its stream's row, the committed entries held here past
    /// the row's tail: the tail moves to the last of them, their bytes join the row's
    /// counts, and their append time is its last access if later. A row that compaction
    /// already folded them into is left as it is.
    pub fn overlay(&self, meta: &mut StreamMeta) {
        if let Some(t) = self.tails.get(&meta.id) {
            extend_tail(meta, t.base, &t.data[..t.committed]);
        }
    }

    /// Payload bytes of the committed entries of stream `id` held here at positions
    /// `[from, to)`, and the append time of the newest held at or above `from`.
    pub fn span(&self, id: i64, from: u64, to: u64) -> (u64, Option<i64>) {
        let Some(t) = self.tails.get(&id) else {
            return (0, None);
        };
        let held = &t.data[..t.committed];
        let at = |p: u64| (p.saturating_sub(t.base) as usize).min(held.len());
        let bytes = held[at(from)..at(to).max(at(from))]
            .iter()
            .map(|e| e.data.len() as u64)
            .sum();
        let newest = held[at(from)..].last().map(|e| e.ts_ms);
        (bytes, newest)
    }

    /// Offers the entries of stream `id` from `c.next_pos` (at least `base`) up to `to` to
    /// the page being collected, until it is full.
    pub fn collect(&self, id: i64, to: u64, c: &mut Collect) {
        let Some(t) = self.tails.get(&id) else {
            return;
        };
        let start = c.next_pos.saturating_sub(t.base) as usize;
        let end = (to.saturating_sub(t.base) as usize).min(t.data.len());
        for (i, e) in t
            .data
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let pos = t.base + (start + i) as u64;
            if !c.offer(pos, e.key.as_deref(), || e.data.clone()) {
                break;
            }
        }
    }

    /// Distinct non-empty routing keys of stream `id` held here.
    pub fn keys(&self, id: i64) -> Vec<bytes::Bytes> {
        let mut keys: Vec<bytes::Bytes> = self
            .tails
            .get(&id)
            .map(|t| t.data.iter().filter_map(|e| e.key.clone()).collect())
            .unwrap_or_default();
        keys.retain(|k| !k.is_empty());
        keys.sort();
        keys.dedup();
        keys
    }

    /// The position of the first entry of stream `id` from `from` on with an append time
    /// at or after `since_ms` (and the key, if given), if one is held here.
    pub fn seek_time(&self, id: i64, from: u64, since_ms: i64, key: Option<&[u8]>) -> Option<u64> {
        let t = self.tails.get(&id)?;
        let start = from.saturating_sub(t.base) as usize;
        t.data
            .iter()
            .enumerate()
            .skip(start)
            .find(|(_, e)| e.ts_ms >= since_ms && e.matches(key))
            .map(|(i, _)| t.base + i as u64)
    }
}

/// Moves `meta`'s tail over `entries` (at positions `first_pos..`) past it: the tail to
/// the last one, their bytes into the counts, their append time into the last access if
/// later. Entries below the tail are already counted and are skipped.
pub(super) fn extend_tail(meta: &mut StreamMeta, first_pos: u64, entries: &[Entry]) {
    let end = first_pos + entries.len() as u64;
    if entries.is_empty() || end <= meta.tail.next_pos {
        return;
    }
    debug_assert!(
        meta.tail.next_pos >= first_pos,
        "a row's tail is folded up to the entries not in it, or past them"
    );
    let skip = meta.tail.next_pos.saturating_sub(first_pos) as usize;
    let (mut bytes, mut last) = (0u64, meta.tail.last_access_ms);
    for e in entries.get(skip..).unwrap_or_default() {
        bytes += e.data.len() as u64;
        last = last.max(e.ts_ms);
    }
    meta.tail.next_pos = end;
    meta.tail.total_bytes += bytes;
    meta.tier.pending_bytes += bytes;
    meta.tail.last_access_ms = last;
}

/// Appends are refused (429) while the memtable holds more than this, which happens only
/// when compaction keeps failing.
pub const HARD_MAX_BYTES: usize = 64 << 20;

/// Shared between the writer (which fills and clears it) and readers.
#[derive(Debug, Default)]
pub struct Memtable {
    inner: Mutex<Tails>,
}

impl Memtable {
    pub fn lock(&self) -> MutexGuard<'_, Tails> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds entries of stream `id` starting at `first_pos`, whose commit is under way:
    /// readers that know of them find them, [`Tails::overlay`] does not count them until
    /// [`committed`](Self::committed).
    pub fn push(&self, id: i64, first_pos: u64, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let mut g = self.lock();
        g.entries += entries.len();
        g.bytes += entries.iter().map(|e| e.data.len()).sum::<usize>();
        g.since.get_or_insert_with(crate::clock::monotonic);
        let tail = g.tails.entry(id).or_insert_with(|| Tail {
            base: first_pos,
            data: Vec::new(),
            committed: 0,
        });
        debug_assert_eq!(tail.base + tail.data.len() as u64, first_pos);
        tail.data.extend(entries);
    }

    /// The commit of everything pushed for these streams is done.
    pub fn committed(&self, ids: impl IntoIterator<Item = i64>) {
        let mut g = self.lock();
        for id in ids {
            if let Some(t) = g.tails.get_mut(&id) {
                t.committed = t.data.len();
            }
        }
    }

    /// Adds to `meta`, read from its stream's row in a snapshot taken after this table's
    /// generation was `generation`, the committed entries held here past the row's tail
    /// (see [`Tails::overlay`]). False, with `meta` unchanged, if a compaction cleared the
    /// table since: the row and this table may then both lack the entries it moved, and
    /// the caller reads the row again.
    pub fn overlay(&self, generation: u64, meta: &mut StreamMeta) -> bool {
        let g = self.lock();
        if g.generation != generation {
            return false;
        }
        g.overlay(meta);
        true
    }

    /// Stream rows read by `read` from SQLite, each with the committed entries held here
    /// past its tail (see [`Tails::overlay`]); read again if a compaction cleared the table
    /// meanwhile (see [`overlay`](Self::overlay)).
    pub fn with_tails(
        &self,
        mut read: impl FnMut() -> rusqlite::Result<Vec<StreamMeta>>,
    ) -> rusqlite::Result<Vec<StreamMeta>> {
        loop {
            let generation = self.generation();
            let mut rows = read()?;
            let g = self.lock();
            if g.generation == generation {
                for m in &mut rows {
                    g.overlay(m);
                }
                return Ok(rows);
            }
        }
    }

    /// Takes back the entries of stream `id` from `first_pos` on (their commit failed).
    pub fn retract(&self, id: i64, first_pos: u64) {
        let mut g = self.lock();
        let Some(t) = g.tails.get_mut(&id) else {
            return;
        };
        let keep = first_pos.saturating_sub(t.base) as usize;
        if keep >= t.data.len() {
            return;
        }
        let removed: Vec<Entry> = t.data.drain(keep..).collect();
        t.committed = t.committed.min(t.data.len());
        if t.data.is_empty() {
            g.tails.remove(&id);
        }
        g.entries -= removed.len();
        g.bytes -= removed.iter().map(|e| e.data.len()).sum::<usize>();
        if g.entries == 0 {
            g.since = None;
        }
    }

    /// Forgets everything (after a compaction committed) and starts a new generation.
    pub fn clear(&self) {
        let mut g = self.lock();
        let generation = g.generation + 1;
        *g = Tails {
            generation,
            ..Tails::default()
        };
    }

    /// The current generation (see the module documentation).
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// What is held now.
    pub fn size(&self) -> Size {
        let g = self.lock();
        Size {
            entries: g.entries,
            bytes: g.bytes,
            streams: g.tails.len(),
            age: g.since.map(|s| s.elapsed()),
        }
    }
}

/// How much the memtable holds (what the writer's compaction policy looks at).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Size {
    pub entries: usize,
    /// Payload bytes.
    pub bytes: usize,
    /// Streams with entries.
    pub streams: usize,
    /// Age of the oldest entry; `None` when empty.
    pub age: Option<std::time::Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::collect::ReadLimits;
    use bytes::Bytes;

    fn e(s: &str, key: Option<&str>, ts: i64) -> Entry {
        Entry {
            data: Bytes::copy_from_slice(s.as_bytes()),
            key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
            ts_ms: ts,
        }
    }

    fn page(
        g: &Tails,
        id: i64,
        from: u64,
        to: u64,
        max_bytes: usize,
        key: Option<&str>,
    ) -> Vec<String> {
        let mut c = Collect::new(
            from,
            ReadLimits {
                max_bytes,
                max_records: 100,
                key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
                filter: None,
            },
        );
        g.collect(id, to, &mut c);
        c.entries
            .iter()
            .map(|d| String::from_utf8(d.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn ranges_respect_positions_limits_and_keys() {
        let m = Memtable::default();
        m.push(1, 10, vec![e("a", Some("k1"), 5), e("bb", None, 6)]);
        m.push(1, 12, vec![e("ccc", Some("k2"), 7)]);
        m.push(2, 0, vec![e("x", None, 1)]);
        let g = m.lock();
        assert_eq!(g.base(1), Some(10));
        assert_eq!(g.base(3), None);
        assert_eq!(page(&g, 1, 10, 13, 100, None), ["a", "bb", "ccc"]);
        assert_eq!(page(&g, 1, 11, 13, 100, None), ["bb", "ccc"]);
        assert_eq!(page(&g, 1, 10, 12, 100, None), ["a", "bb"]);
        assert_eq!(page(&g, 1, 10, 13, 3, None), ["a", "bb"]);
        assert_eq!(page(&g, 1, 12, 13, 1, None), ["ccc"]);
        assert_eq!(page(&g, 1, 13, 20, 100, None), Vec::<String>::new());
        assert_eq!(page(&g, 1, 10, 13, 100, Some("k2")), ["ccc"]);
        assert_eq!(g.keys(1), vec![Bytes::from("k1"), Bytes::from("k2")]);
        assert_eq!(g.seek_time(1, 10, 6, None), Some(11));
        assert_eq!(g.seek_time(1, 10, 6, Some(b"k2")), Some(12));
        assert_eq!(g.seek_time(1, 10, 8, None), None);
        drop(g);
        assert_eq!(m.size().entries, 4);
        m.retract(1, 11);
        assert_eq!(page(&m.lock(), 1, 10, 13, 100, None), ["a"]);
        m.retract(2, 0);
        assert_eq!(m.lock().base(2), None);
        assert_eq!(m.size().entries, 1);
        m.clear();
        assert_eq!(m.size(), Size::default());
    }

    /// A stream's row with its tail at `next_pos`, `bytes` counted and last accessed then.
    fn row(id: i64, next_pos: u64, bytes: u64, last_access_ms: i64) -> StreamMeta {
        let mut m = crate::engine::testing::stream_meta(id, &format!("s{id}"), next_pos);
        m.tail.total_bytes = bytes;
        m.tail.last_access_ms = last_access_ms;
        m.tier.pending_bytes = bytes;
        m
    }

    #[test]
    fn a_span_counts_committed_entries_in_its_range() {
        let m = Memtable::default();
        m.push(
            1,
            10,
            vec![e("a", None, 5), e("bb", None, 9), e("ccc", None, 7)],
        );
        assert_eq!(m.lock().span(1, 0, 100), (0, None), "nothing committed yet");
        m.committed([1]);
        m.push(1, 13, vec![e("dddd", None, 20)]);
        let g = m.lock();
        assert_eq!(
            g.span(1, 0, 100),
            (6, Some(7)),
            "the commit under way is left out"
        );
        assert_eq!(g.span(1, 11, 12), (2, Some(7)));
        assert_eq!(g.span(1, 12, 11), (0, Some(7)), "an empty range");
        assert_eq!(g.span(1, 13, 20), (0, None));
        assert_eq!(g.span(2, 0, 100), (0, None), "another stream");
    }

    #[test]
    fn a_row_gets_the_committed_entries_past_its_folded_tail() {
        let m = Memtable::default();
        m.push(1, 10, vec![e("a", None, 5), e("bb", None, 9)]);
        let g0 = m.generation();
        // Not committed yet: a row read now is what SQLite says.
        let mut r = row(1, 10, 100, 7);
        assert!(m.overlay(g0, &mut r));
        assert_eq!((r.tail.next_pos, r.tail.total_bytes), (10, 100));
        m.committed([1]);
        m.push(1, 12, vec![e("ccc", None, 11)]);
        // The first two are committed, the third is the commit under way.
        let mut r = row(1, 10, 100, 7);
        assert!(m.overlay(g0, &mut r));
        assert_eq!(
            (
                r.tail.next_pos,
                r.tail.total_bytes,
                r.tier.pending_bytes,
                r.tail.last_access_ms
            ),
            (12, 103, 103, 9)
        );
        m.committed([1]);
        // A row that already covers some of them (a close wrote the tail) adds the rest.
        let mut r = row(1, 11, 101, 20);
        assert!(m.overlay(g0, &mut r));
        assert_eq!(
            (r.tail.next_pos, r.tail.total_bytes, r.tail.last_access_ms),
            (13, 106, 20)
        );
        // A row folded past all of them, and another stream, are left alone.
        let mut r = row(1, 13, 106, 0);
        assert!(m.overlay(g0, &mut r));
        assert_eq!((r.tail.next_pos, r.tail.total_bytes), (13, 106));
        let mut r = row(2, 4, 8, 0);
        assert!(m.overlay(g0, &mut r));
        assert_eq!((r.tail.next_pos, r.tail.total_bytes), (4, 8));
        // A failed commit takes its entries back; a compaction makes the reader start over.
        m.push(1, 13, vec![e("dddd", None, 12)]);
        m.retract(1, 13);
        let mut r = row(1, 10, 100, 0);
        assert!(m.overlay(g0, &mut r));
        assert_eq!(r.tail.next_pos, 13);
        m.clear();
        let mut r = row(1, 10, 100, 0);
        assert!(!m.overlay(g0, &mut r));
        assert_eq!(r.tail.next_pos, 10);
    }
}
