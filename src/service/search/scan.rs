//! Scanning a stream's entries for `_search` and `_aggregate`: bounded pages through the
//! engine's ordinary read path (segments, SQLite and the memtable), so everything
//! committed before the request (the newest appends included) is seen, and memory holds
//! one page at a time.
//!
//! [`Candidates`] decides which positions a query must look at: in full mode the
//! routing-key index's keyword terms rule out the segments that cannot hold a match of
//! the query's keyword clauses; everything else (the unindexed segments and the SQLite
//! tail included) is read.

use std::ops::Range;

use bytes::Bytes;
use tokio::time::Instant;

use super::super::{ServiceResult, StreamService};
use crate::engine::{Entries, EntryFilter, ReadLimits, StreamMeta};
use crate::search::prefilter::Prefilter;
use crate::search::query::Query;
use crate::search::terms::{self, TermExpr};
use crate::service::settings::StreamSettings;

/// Entries read per page of a scan.
const PAGE_RECORDS: usize = 4096;
/// Payload bytes read per page of a scan (at least one entry is read).
const PAGE_BYTES: usize = 4 * 1024 * 1024;
/// Entries read at a time when scanning backwards (the window of positions starts here).
const BACKWARD_CHUNK: u64 = 1024;
/// The largest window of positions read at a time when scanning backwards.
const MAX_BACKWARD_WINDOW: u64 = 1 << 20;

/// The positions a query must read: every position but those of the segments the
/// stream's index rules out for it (full mode; see `engine::keyindex`). Ruling out is
/// exact for keyword clauses, conservative for comparisons on column fields (by each
/// segment's range of values) and never happens for anything else, so no hit is lost.
pub(crate) struct Candidates {
    /// Position ranges that hold no match, ascending and disjoint.
    excluded: Vec<(u64, u64)>,
}

impl Candidates {
    /// Every position (an aggregation without a query, or no index).
    pub fn all() -> Candidates {
        Candidates {
            excluded: Vec::new(),
        }
    }

    /// What the index says about `q` under the stream's current search configuration.
    pub async fn for_query(
        svc: &StreamService,
        meta: &StreamMeta,
        q: Option<&Query>,
        settings: &StreamSettings,
    ) -> ServiceResult<Candidates> {
        let (Some(q), Some(raw)) = (q, settings.registry.search()) else {
            return Ok(Candidates::all());
        };
        let hash = terms::config_hash(raw);
        let expr = TermExpr::of(q);
        let mut excluded = svc.engine().search_exclusions(meta, &expr, hash).await?;
        // Summaries exist only where the configuration has something to summarise.
        if crate::search::summary::narrows(q)
            && super::search_config(settings)
                .is_some_and(|c| crate::search::summary::summarizable(&c))
        {
            excluded.extend(svc.engine().summary_exclusions(meta, q, hash).await?);
        }
        excluded.sort_unstable();
        Ok(Candidates { excluded })
    }

    /// Ranges within `[from, to)`, ascending and disjoint, that may hold matches.
    pub fn ranges(&self, from: u64, to: u64) -> Vec<Range<u64>> {
        let mut out = Vec::new();
        let mut at = from;
        for &(lo, hi) in &self.excluded {
            if hi <= at {
                continue;
            }
            if lo >= to {
                break;
            }
            if lo > at {
                out.push(at..lo);
            }
            at = at.max(hi);
        }
        if at < to {
            out.push(at..to);
        }
        out
    }
}

/// What a scan did, for the responses' coverage counters.
#[derive(Debug, Default, Clone)]
pub(crate) struct ScanStats {
    /// Entries read.
    pub records: u64,
    /// Entries read from segment files.
    pub segment_records: u64,
    /// Entries read from SQLite or memory (not yet in uploaded segments).
    pub tail_records: u64,
    /// Segments entries were read from.
    pub segments: u64,
    /// Entry bytes read.
    pub bytes: u64,
}

/// Whether the visitor wants more entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    More,
    Stop,
}

/// One scan over a snapshot of a stream (its tail when the scan began).
pub(crate) struct Scan<'a> {
    svc: &'a StreamService,
    meta: StreamMeta,
    deadline: Option<Instant>,
    /// Entries it rejects are skipped inside the engine's read, never copied out.
    prefilter: Option<EntryFilter>,
    segments: Vec<(u64, u64)>,
    touched: Vec<bool>,
    pub stats: ScanStats,
    pub timed_out: bool,
}

impl<'a> Scan<'a> {
    pub async fn new(
        svc: &'a StreamService,
        meta: StreamMeta,
        deadline: Option<Instant>,
    ) -> ServiceResult<Scan<'a>> {
        let segments = if meta.tier.uploaded_pos > 0 {
            svc.engine().segment_ranges(&meta).await?
        } else {
            Vec::new()
        };
        let touched = vec![false; segments.len()];
        Ok(Scan {
            svc,
            meta,
            deadline,
            prefilter: None,
            segments,
            touched,
            stats: ScanStats::default(),
            timed_out: false,
        })
    }

    /// Reads only the entries whose raw text passes `p` (see `search::prefilter`); the
    /// others are scanned past inside the engine.
    pub fn set_prefilter(&mut self, p: Prefilter) {
        if p == Prefilter::All {
            return;
        }
        self.prefilter = Some(EntryFilter {
            test: std::sync::Arc::new(move |_pos: u64, raw: &[u8]| p.may_match(raw)),
            scan_limit_bytes: usize::MAX,
        });
    }

    /// The position after the last entry of the snapshot.
    pub fn end(&self) -> u64 {
        self.meta.tail.next_pos
    }

    pub fn meta(&self) -> &StreamMeta {
        &self.meta
    }

    fn expired(&mut self) -> bool {
        if self.deadline.is_some_and(|d| crate::clock::now() >= d) {
            self.timed_out = true;
        }
        self.timed_out
    }

    fn count(&mut self, pos: u64, len: usize) {
        self.stats.records += 1;
        self.stats.bytes += len as u64;
        if pos < self.meta.tier.uploaded_pos {
            self.stats.segment_records += 1;
            let i = self.segments.partition_point(|&(_, end)| end <= pos);
            if let Some(t) = self.touched.get_mut(i) {
                if !*t {
                    *t = true;
                    self.stats.segments += 1;
                }
            }
        } else {
            self.stats.tail_records += 1;
        }
    }

    /// Reads `[from, to)` page by page, calling `visit` with each entry (its page and its
    /// index there) in order until it stops, the range ends or the deadline passes.
    async fn read_range(
        &mut self,
        from: u64,
        to: u64,
        counting: bool,
        visit: &mut (dyn FnMut(u64, &Entries, usize) -> ServiceResult<Flow> + Send),
    ) -> ServiceResult<Flow> {
        let mut bounded = self.meta.clone();
        bounded.tail.next_pos = to.min(self.meta.tail.next_pos);
        let mut pos = from;
        while pos < bounded.tail.next_pos {
            if self.expired() {
                return Ok(Flow::Stop);
            }
            let limits = ReadLimits {
                max_bytes: PAGE_BYTES,
                max_records: PAGE_RECORDS,
                key: None,
                filter: self.prefilter.clone(),
            };
            let batch = self.svc.engine().read(&bounded, pos, limits).await?;
            for (i, &p) in batch.positions.iter().enumerate() {
                if counting {
                    self.count(p, batch.entries.get(i).len());
                }
                if visit(p, &batch.entries, i)? == Flow::Stop || self.expired() {
                    return Ok(Flow::Stop);
                }
            }
            if batch.next_pos <= pos {
                break; // nothing readable there (removed meanwhile)
            }
            pos = batch.next_pos;
        }
        Ok(Flow::More)
    }

    /// Visits the candidate entries of `[from, to)` in ascending order.
    pub async fn forward(
        &mut self,
        ranges: Vec<Range<u64>>,
        visit: &mut (dyn FnMut(u64, &[u8]) -> ServiceResult<Flow> + Send),
    ) -> ServiceResult<()> {
        let mut each = |p: u64, page: &Entries, i: usize| visit(p, page.get(i));
        for r in ranges {
            if self.read_range(r.start, r.end, true, &mut each).await? == Flow::Stop {
                break;
            }
        }
        Ok(())
    }

    /// Visits the candidate entries in descending order (newest first), reading chunks
    /// from the end.
    pub async fn backward(
        &mut self,
        ranges: Vec<Range<u64>>,
        visit: &mut (dyn FnMut(u64, &[u8]) -> ServiceResult<Flow> + Send),
    ) -> ServiceResult<()> {
        // The window adapts to what passes the prefilter: it grows while chunks come back
        // small (few candidates: fewer, larger reads, each block decompressed once) and
        // shrinks when they are large, so a chunk holds about BACKWARD_CHUNK entries.
        let mut window = BACKWARD_CHUNK;
        for r in ranges.into_iter().rev() {
            let mut hi = r.end;
            while hi > r.start {
                let lo = hi.saturating_sub(window).max(r.start);
                let mut chunk: Vec<(u64, Bytes)> = Vec::new();
                // A reference to the page's buffer each, not a copy.
                let mut collect = |p: u64, page: &Entries, i: usize| {
                    chunk.push((p, page.bytes(i)));
                    Ok(Flow::More)
                };
                // Counted when visited, not when read.
                let flow = self.read_range(lo, hi, false, &mut collect).await?;
                if flow == Flow::Stop && self.timed_out {
                    return Ok(());
                }
                let held = chunk.len() as u64;
                for (p, e) in chunk.iter().rev() {
                    self.count(*p, e.len());
                    if visit(*p, e)? == Flow::Stop || self.expired() {
                        return Ok(());
                    }
                }
                hi = lo;
                if held < BACKWARD_CHUNK / 4 {
                    window = (window * 4).min(MAX_BACKWARD_WINDOW);
                } else if held > BACKWARD_CHUNK {
                    window = (window / 2).max(BACKWARD_CHUNK);
                }
            }
        }
        Ok(())
    }
}
