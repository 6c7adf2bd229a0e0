//! The routing-key index of full mode: which segments of a stream hold a routing key, so
//! that a keyed read skips the other segments without fetching a byte of them.
//!
//! - **Runs.** A background indexer ([`indexer`]) reads each uploaded segment of a stream
//!   with routing keys once, and uploads a level-0 run object beside it: the segment's
//!   distinct keys ([`format`]). [`FANOUT`] contiguous, aligned runs of a level are merged
//!   into one run of the next level (up to [`MAX_LEVEL`]), so a stream of n segments has
//!   O(FANOUT · log n) runs. Segment numbers in runs are absolute.
//! - **Catalog.** `key_index_runs` in SQLite lists the runs (`db::key_index`); the writer
//!   adds a run only if its stream is still the same incarnation, and swaps merged runs
//!   for their parent in one transaction. Replaced objects are deleted by the uploader's
//!   object GC. `--bootstrap-from-r2` restores the catalog by listing the run objects.
//! - **Reads.** The read planner looks up the run covering the segment it is about to
//!   read; the engine fetches it (bounded in-memory cache, [`KeyIndex`]) and skips the
//!   segment if the run says the key is not in it. A run that is missing, unreadable or
//!   fails its checksum is not used: the segment is read (its block filters still apply),
//!   so a damaged index costs speed, never entries.
//!
//! See docs/adr/0011-routing-key-index.md.

pub(crate) mod cache;
pub mod format;
pub mod indexer;
pub mod summaries;

use std::sync::{Arc, Mutex};

use cache::ByteLru;

use format::{Run, RunRange};

use crate::objstore::{keys, Store};
use crate::telemetry::metrics::metrics;

/// Runs of one level merged into one of the next.
pub const FANOUT: u64 = 16;
/// The highest level (a level-4 run covers 65,536 segments).
pub const MAX_LEVEL: u8 = 4;

/// The object key of a run of an incarnation.
pub fn object_key(incarnation: &str, range: RunRange) -> String {
    keys::key_index_run(
        &keys::stream_prefix(incarnation),
        range.level,
        range.start_seg,
        range.end_seg,
    )
}

/// Verified runs kept in memory, least recently used evicted above a byte budget; and the
/// runs found unusable, which the indexer takes out of the catalog and rebuilds.
pub struct KeyIndex {
    cache: ByteLru<Run>,
    unusable: Mutex<Vec<Unusable>>,
}

/// A run a read could not use (missing, damaged, or not what the catalog says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable {
    pub stream_id: i64,
    pub incarnation: String,
    pub range: RunRange,
}

impl KeyIndex {
    pub fn new(cap_bytes: u64) -> KeyIndex {
        KeyIndex {
            cache: ByteLru::new(cap_bytes),
            unusable: Mutex::new(Vec::new()),
        }
    }

    /// The run `range` of stream `stream_id` (incarnation `incarnation`), fetched and
    /// verified; `None` (logged, counted, and reported to the indexer) if it cannot be
    /// had, in which case the caller must not rely on the index.
    pub async fn run(
        &self,
        store: &Store,
        stream_id: i64,
        incarnation: &str,
        range: RunRange,
    ) -> Option<Arc<Run>> {
        let key = object_key(incarnation, range);
        if let Some(r) = self.cache.get(&key) {
            return Some(r);
        }
        let loaded = match store.get(&key).await {
            Ok(bytes) => Run::decode(&bytes).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let error = match loaded {
            Ok(run) if run.range == range => {
                let run = Arc::new(run);
                self.cache.put(key, run.clone(), run.memory_bytes() as u64);
                return Some(run);
            }
            Ok(_) => "it covers another range".to_string(),
            Err(e) => e,
        };
        metrics().key_index_failures.inc();
        tracing::warn!(
            key,
            error,
            "routing-key index run unusable; its segments are scanned until it is rebuilt"
        );
        let mut bad = self.unusable.lock().unwrap_or_else(|p| p.into_inner());
        let u = Unusable {
            stream_id,
            incarnation: incarnation.to_string(),
            range,
        };
        if !bad.contains(&u) {
            bad.push(u);
        }
        None
    }

    /// Whether segment `seg` may hold `key` according to the run `range`: `false` only
    /// when the verified run rules it out.
    pub async fn may_hold(
        &self,
        store: &Store,
        stream_id: i64,
        incarnation: &str,
        range: RunRange,
        seg: u64,
        key: &[u8],
    ) -> bool {
        if !range.contains(seg) {
            return true;
        }
        let Some(run) = self.run(store, stream_id, incarnation, range).await else {
            return true;
        };
        match run.segments(&crate::search::terms::routing_key(key)) {
            Ok(segs) => u32::try_from(seg).map_or(true, |s| segs.contains(s)),
            Err(e) => {
                metrics().key_index_failures.inc();
                tracing::warn!(incarnation, error = %e, "routing-key index run corrupt; segments are scanned");
                true
            }
        }
    }

    /// Takes the runs found unusable since the last call.
    pub fn take_unusable(&self) -> Vec<Unusable> {
        std::mem::take(&mut *self.unusable.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Forgets a run (it was replaced by its parent).
    pub fn forget(&self, incarnation: &str, range: RunRange) {
        self.cache.remove(&object_key(incarnation, range));
    }
}

impl crate::engine::Engine {
    /// A stream's index runs and its segments (in order), from one read.
    pub(crate) async fn runs_and_segments(
        &self,
        stream_id: i64,
    ) -> Result<
        (
            Vec<crate::engine::db::key_index::RunRow>,
            Vec<crate::engine::db::segments::SegmentRow>,
        ),
        crate::engine::EngineError,
    > {
        self.reader()
            .run(move |c| {
                Ok::<_, rusqlite::Error>((
                    crate::engine::db::key_index::of_stream(c, stream_id)?,
                    crate::engine::db::segments::of_stream(c, stream_id)?,
                ))
            })
            .await
    }

    /// The position ranges of the stream's own segments that its routing-key index rules
    /// out for `expr` under the search configuration `search_hash`: no record in them can
    /// match. Segments not indexed yet, indexed under another configuration, or whose run
    /// cannot be used are never ruled out. Ascending, disjoint.
    pub async fn search_exclusions(
        &self,
        meta: &crate::engine::StreamMeta,
        expr: &crate::search::terms::TermExpr,
        search_hash: u64,
    ) -> Result<Vec<(u64, u64)>, crate::engine::EngineError> {
        let Some(tier) = self.tier() else {
            return Ok(Vec::new());
        };
        if expr.is_all() || search_hash == 0 || search_hash == format::MIXED {
            return Ok(Vec::new());
        }
        let id = meta.id;
        let (runs, segs) = self.runs_and_segments(id).await?;
        let mut out = Vec::new();
        let mut covered_to = 0u64;
        // Highest level first where runs overlap (a bootstrap may restore both).
        let mut runs = runs;
        runs.sort_by_key(|r| (r.range.start_seg, std::cmp::Reverse(r.range.level)));
        for r in runs {
            if r.search_hash != search_hash || r.range.end_seg <= covered_to {
                continue;
            }
            let Some(run) = tier
                .key_index
                .run(&tier.store, id, &meta.config.incarnation, r.range)
                .await
            else {
                continue;
            };
            if run.search_hash != search_hash {
                continue;
            }
            let Ok(may) = run.matching(expr) else {
                continue;
            };
            for s in segs.iter().filter(|s| r.range.contains(s.index)) {
                if s.index >= covered_to && !u32::try_from(s.index).is_ok_and(|i| may.contains(i)) {
                    out.push((s.start_pos, s.end_pos));
                }
            }
            covered_to = r.range.end_seg;
        }
        out.sort_unstable();
        metrics().key_index_segments_skipped.add(out.len() as u64);
        Ok(out)
    }
}
