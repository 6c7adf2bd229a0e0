//! Assembling one read page across storage tiers (memtable, SQLite, segments).
//!
//! Every tier offers its entries in position order to one [`Collect`], which applies the
//! page limits (`DS_READ_MAX_BYTES`, `DS_READ_MAX_RECORDS`; the first entry is always
//! taken whatever its size) and the optional routing-key filter, and tracks the position
//! *scanned through*: a keyed read moves past entries of other keys, so its next offset
//! is where scanning stopped, not after the last entry it returned. A keyed read scans at
//! most [`SCAN_BUDGET`] entries per page, so that a key with few entries in a long stream
//! costs bounded work per request (the client continues from the next offset).
//!
//! A read may also carry an [`EntryFilter`] (the service's `filter=`): entries that pass
//! the key filter are read and tested; those it rejects are scanned past like entries of
//! other keys. The bytes it tests are counted, and a page stops once they reach the
//! filter's scan limit (the client continues from the next offset).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

/// Entries a keyed page may scan before it is returned as it is.
pub const SCAN_BUDGET: usize = 1_000_000;

/// Whether the entry at a position (with these bytes) is wanted.
pub type EntryTest = Arc<dyn Fn(u64, &[u8]) -> bool + Send + Sync>;

/// A per-entry test applied after the key filter.
#[derive(Clone)]
pub struct EntryFilter {
    pub test: EntryTest,
    /// Tested bytes after which a page is returned as it is.
    pub scan_limit_bytes: usize,
}

impl std::fmt::Debug for EntryFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryFilter")
            .field("scan_limit_bytes", &self.scan_limit_bytes)
            .finish_non_exhaustive()
    }
}

/// What a read asks for.
#[derive(Debug, Clone, Default)]
pub struct ReadLimits {
    pub max_bytes: usize,
    pub max_records: usize,
    /// Only entries with this routing key.
    pub key: Option<Bytes>,
    /// Only entries that pass this test.
    pub filter: Option<EntryFilter>,
}

/// A page being filled.
#[derive(Debug)]
pub struct Collect {
    limits: ReadLimits,
    scan_left: usize,
    /// Entries taken, and their positions.
    pub entries: Entries,
    pub positions: Vec<u64>,
    /// Payload bytes taken.
    pub bytes: usize,
    /// Position after the last entry scanned (taken or skipped).
    pub next_pos: u64,
    /// Entry bytes the filter tested.
    pub filter_scanned_bytes: usize,
    /// The page stopped because the filter's scan limit was reached.
    pub filter_limit_reached: bool,
    full: bool,
}

/// Bytes of arena allocated at a time (an entry larger than this gets its own).
const ARENA_CHUNK: usize = 64 * 1024;

/// Where an offered entry's bytes come from.
enum Source<'a, F> {
    /// Already in a shared buffer (the memtable, a commit): taken as is.
    Shared(F),
    /// Borrowed for the call: copied if taken.
    Borrowed(&'a [u8]),
}

/// A page's entries, in order. An entry offered as a shared buffer is kept as it is; one
/// offered as borrowed bytes (a SQLite row, a decompressed block) is copied into the
/// page's arena, chunks of [`ARENA_CHUNK`] bytes, and kept as a span of it. So a page of
/// small entries costs a few allocations and no reference count per entry (a catch-up
/// read splitting each entry off the arena as a `Bytes` spent a sixth of its time on
/// that: docs/performance.md, "Tenth pass").
#[derive(Clone, Default)]
pub struct Entries {
    /// Shared entries and full arena chunks, in the order they were started.
    chunks: Vec<Bytes>,
    /// The arena chunk being filled; its place in `chunks` (holding an empty buffer until
    /// [`seal`](Self::seal)) is `open_at`.
    open: BytesMut,
    open_at: Option<usize>,
    spans: Vec<Span>,
}

/// Where an entry's bytes are: `chunks[chunk][start..start + len]`.
#[derive(Clone, Copy)]
struct Span {
    chunk: usize,
    start: usize,
    len: usize,
}

impl Entries {
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    fn chunk(&self, i: usize) -> &[u8] {
        if self.open_at == Some(i) {
            &self.open
        } else {
            &self.chunks[i]
        }
    }

    /// The `i`th entry's bytes.
    pub fn get(&self, i: usize) -> &[u8] {
        let s = self.spans[i];
        &self.chunk(s.chunk)[s.start..s.start + s.len]
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + Clone + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// The `i`th entry as a shared buffer: a reference to its chunk once sealed (every
    /// page a read returns is), a copy before.
    pub fn bytes(&self, i: usize) -> Bytes {
        let s = self.spans[i];
        if self.open_at == Some(s.chunk) {
            Bytes::copy_from_slice(&self.open[s.start..s.start + s.len])
        } else {
            self.chunks[s.chunk].slice(s.start..s.start + s.len)
        }
    }

    fn push_shared(&mut self, b: Bytes) {
        self.spans.push(Span {
            chunk: self.chunks.len(),
            start: 0,
            len: b.len(),
        });
        self.chunks.push(b);
    }

    fn push_copy(&mut self, data: &[u8]) {
        let chunk = match self.open_at {
            Some(i) if self.open.capacity() - self.open.len() >= data.len() => i,
            _ => {
                self.seal();
                self.open = BytesMut::with_capacity(ARENA_CHUNK.max(data.len()));
                let i = self.chunks.len();
                self.chunks.push(Bytes::new());
                self.open_at = Some(i);
                i
            }
        };
        self.spans.push(Span {
            chunk,
            start: self.open.len(),
            len: data.len(),
        });
        self.open.extend_from_slice(data);
    }

    /// Moves the arena chunk being filled into `chunks`, where it can be shared.
    fn seal(&mut self) {
        if let Some(i) = self.open_at.take() {
            self.chunks[i] = std::mem::take(&mut self.open).freeze();
        }
    }
}

#[cfg(test)]
impl From<Vec<Bytes>> for Entries {
    fn from(v: Vec<Bytes>) -> Entries {
        let mut e = Entries::default();
        for b in v {
            e.push_shared(b);
        }
        e
    }
}

impl PartialEq for Entries {
    fn eq(&self, other: &Entries) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Entries {}

impl std::fmt::Debug for Entries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(Bytes::copy_from_slice))
            .finish()
    }
}

impl Collect {
    pub fn new(from: u64, limits: ReadLimits) -> Collect {
        Collect {
            limits,
            scan_left: SCAN_BUDGET,
            entries: Entries::default(),
            positions: Vec::new(),
            bytes: 0,
            next_pos: from,
            filter_scanned_bytes: 0,
            filter_limit_reached: false,
            full: false,
        }
    }

    /// The page's entries, ready to be shared.
    pub(super) fn seal(&mut self) {
        self.entries.seal();
    }

    /// No more entries fit (or the scan budget is spent).
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// The key filter, if any.
    pub fn key(&self) -> Option<&[u8]> {
        self.limits.key.as_deref()
    }

    /// Offers the entry at `pos` (the next position to scan). `data` is called only if the
    /// entry is taken. Returns false when the page is full: stop offering.
    pub fn offer(&mut self, pos: u64, key: Option<&[u8]>, data: impl FnOnce() -> Bytes) -> bool {
        self.offer_from(pos, key, Source::Shared(data))
    }

    /// Offers an entry whose bytes are borrowed (a SQLite row, a decompressed block): if
    /// it is taken, they are copied into the page's arena, so that a page's entries share
    /// a few allocations instead of one each.
    pub fn offer_copy(&mut self, pos: u64, key: Option<&[u8]>, data: &[u8]) -> bool {
        self.offer_from(pos, key, Source::<fn() -> Bytes>::Borrowed(data))
    }

    fn offer_from<F: FnOnce() -> Bytes>(
        &mut self,
        pos: u64,
        key: Option<&[u8]>,
        data: Source<'_, F>,
    ) -> bool {
        if self.full {
            return false;
        }
        debug_assert_eq!(pos, self.next_pos, "entries are offered in order");
        if let Some(want) = self.limits.key.as_deref() {
            if key != Some(want) {
                self.next_pos = pos + 1;
                self.scan_left = self.scan_left.saturating_sub(1);
                if self.scan_left == 0 {
                    self.full = true;
                }
                return !self.full;
            }
        }
        let (shared, borrowed) = match data {
            Source::Shared(f) => (Some(f()), &[][..]),
            Source::Borrowed(b) => (None, b),
        };
        let len = shared.as_ref().map_or(borrowed.len(), Bytes::len);
        if let Some(f) = &self.limits.filter {
            self.filter_scanned_bytes += len;
            let over = self.filter_scanned_bytes >= f.scan_limit_bytes;
            if !(f.test)(pos, shared.as_deref().unwrap_or(borrowed)) {
                self.next_pos = pos + 1;
                self.scan_left = self.scan_left.saturating_sub(1);
                if over || self.scan_left == 0 {
                    self.filter_limit_reached |= over;
                    self.full = true;
                }
                return !self.full;
            }
            if over {
                // Taken below whatever the page limits say (the original returns it too).
                self.filter_limit_reached = true;
                self.take(pos, shared, borrowed);
                self.full = true;
                return false;
            }
        }
        let first = self.entries.is_empty();
        if !first
            && (self.entries.len() >= self.limits.max_records
                || self.bytes + len > self.limits.max_bytes)
        {
            self.full = true;
            return false;
        }
        self.take(pos, shared, borrowed);
        if self.entries.len() >= self.limits.max_records || self.bytes >= self.limits.max_bytes {
            self.full = true;
        }
        !self.full
    }

    fn take(&mut self, pos: u64, shared: Option<Bytes>, borrowed: &[u8]) {
        match shared {
            Some(b) => {
                self.bytes += b.len();
                self.entries.push_shared(b);
            }
            None => {
                self.bytes += borrowed.len();
                self.entries.push_copy(borrowed);
            }
        }
        self.positions.push(pos);
        self.next_pos = pos + 1;
    }

    /// Positions up to `to` hold no entry of the key (an index or a filter said so):
    /// scanned without being read.
    pub fn skip_to(&mut self, to: u64) {
        if !self.full && to > self.next_pos {
            self.next_pos = to;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn limits(max_bytes: usize, max_records: usize, key: Option<&str>) -> ReadLimits {
        ReadLimits {
            max_bytes,
            max_records,
            key: key.map(b),
            filter: None,
        }
    }

    #[test]
    fn pages_stop_at_their_limits_but_take_one_entry_whatever_its_size() {
        let mut c = Collect::new(0, limits(3, 10, None));
        assert!(c.offer(0, None, || b("ab")));
        assert!(!c.offer(1, None, || b("cd")), "2 + 2 bytes > 3");
        assert_eq!((c.entries.len(), c.next_pos), (1, 1));
        let mut c = Collect::new(5, limits(1, 10, None));
        assert!(
            !c.offer(5, None, || b("large")),
            "full after the first entry"
        );
        assert_eq!(c.entries, Entries::from(vec![b("large")]));
        let mut c = Collect::new(0, limits(100, 2, None));
        assert!(c.offer(0, None, || b("a")));
        assert!(!c.offer(1, None, || b("b")));
        assert!(c.is_full());
    }

    #[test]
    fn borrowed_entries_are_copied_into_shared_chunks_under_the_same_rules() {
        let mut c = Collect::new(0, limits(10, 10, Some("k")));
        assert!(c.offer_copy(0, Some(b"x"), b"skipped"));
        assert!(c.offer_copy(1, Some(b"k"), b"abcd"));
        assert!(c.offer_copy(2, Some(b"k"), b"efgh"));
        assert!(
            !c.offer_copy(3, Some(b"k"), b"ijkl"),
            "4 + 4 + 4 bytes > 10"
        );
        assert_eq!(c.entries, Entries::from(vec![b("abcd"), b("efgh")]));
        assert_eq!(
            (c.positions.clone(), c.next_pos, c.bytes),
            (vec![1, 2], 3, 8)
        );
        // One allocation: the second entry follows the first in memory.
        assert_eq!(c.entries.get(1).as_ptr(), c.entries.get(0)[4..].as_ptr());
        let big = vec![7u8; ARENA_CHUNK + 1];
        let mut c = Collect::new(0, limits(usize::MAX, 10, None));
        c.offer_copy(0, None, b"small");
        c.offer_copy(1, None, &big);
        c.offer(2, None, || b("shared"));
        assert_eq!(
            c.entries.get(1),
            big,
            "larger than a chunk: its own allocation"
        );
        assert_eq!(c.entries.get(2), b"shared");
        c.seal();
        assert_eq!(c.entries.bytes(0), b("small"));
        assert_eq!(
            c.entries.bytes(1).as_ptr(),
            c.entries.get(1).as_ptr(),
            "sealed: shared, not copied"
        );
    }

    #[test]
    fn a_key_filter_skips_other_keys_and_moves_the_next_position_past_them() {
        let mut c = Collect::new(0, limits(100, 10, Some("k")));
        let mut taken_calls = 0;
        for (pos, key) in [(0, Some("x")), (1, Some("k")), (2, None), (3, Some("x"))] {
            c.offer(pos, key.map(str::as_bytes), || {
                taken_calls += 1;
                b("v")
            });
        }
        assert_eq!(taken_calls, 1, "data of skipped entries is never read");
        assert_eq!(c.positions, vec![1]);
        assert_eq!(c.next_pos, 4);
        c.skip_to(10);
        assert_eq!(c.next_pos, 10);
        // The empty key is a key like any other.
        let mut c = Collect::new(0, limits(100, 10, Some("")));
        c.offer(0, None, || b("none"));
        c.offer(1, Some(b""), || b("empty"));
        assert_eq!(c.entries, Entries::from(vec![b("empty")]));
    }

    #[test]
    fn a_filter_skips_rejected_entries_counts_tested_bytes_and_stops_at_its_scan_limit() {
        let filter = EntryFilter {
            test: Arc::new(|_, d: &[u8]| d.starts_with(b"y")),
            scan_limit_bytes: 8,
        };
        let mut l = limits(100, 10, None);
        l.filter = Some(filter);
        let mut c = Collect::new(0, l);
        assert!(c.offer(0, None, || b("n1")));
        assert!(c.offer(1, None, || b("y1")));
        assert!(c.offer(2, None, || b("n2")));
        assert!(!c.offer(3, None, || b("n3")), "8 bytes tested: the limit");
        assert_eq!(c.positions, vec![1]);
        assert_eq!((c.next_pos, c.filter_scanned_bytes), (4, 8));
        assert!(c.filter_limit_reached);
        // With a key, only entries of the key are tested.
        let mut l = limits(100, 10, Some("k"));
        l.filter = Some(EntryFilter {
            test: Arc::new(|_, _: &[u8]| true),
            scan_limit_bytes: 100,
        });
        let mut c = Collect::new(0, l);
        c.offer(0, Some(b"x"), || b("aaaa"));
        c.offer(1, Some(b"k"), || b("bb"));
        assert_eq!((c.positions.clone(), c.filter_scanned_bytes), (vec![1], 2));
        assert!(!c.filter_limit_reached);
    }
}
