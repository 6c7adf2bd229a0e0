//! Segment summaries in full mode (see `search::summary`): the indexer builds one with each
//! segment's level-0 run when the stream has a search configuration, and stores it as
//! `streams/<incarnation>/summaries/<segment>.pss`. `_aggregate` adds whole rollup buckets
//! from them and searches skip segments whose column ranges rule a comparison out.
//!
//! Summaries have no catalog: a reader fetches the object of each segment it wants (kept
//! in a bounded cache, absences included, until the indexer writes one). One that is
//! missing although the segment was indexed under the current configuration, or that
//! fails its checksum or was built under another configuration, is not used (the segment
//! is scanned) and is reported to the indexer, which builds it again from the segment.
//! Summaries go with their stream's folder when it is deleted, and a bootstrap finds them
//! where the uploader left them.

use std::sync::{Arc, Mutex};

use super::cache::ByteLru;
use crate::objstore::{keys, Store, StoreError};
use crate::search::summary::SegmentSummary;
use crate::telemetry::metrics::metrics;

/// The object key of a segment's summary.
pub fn object_key(incarnation: &str, seg: u64) -> String {
    keys::segment_summary(&keys::stream_prefix(incarnation), seg)
}

/// A summary the indexer should (re)build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub stream_id: i64,
    pub incarnation: String,
    pub seg: u64,
}

/// The summary of segment `seg` of a stream incarnation, as a reader asks for it.
#[derive(Debug, Clone, Copy)]
pub struct Lookup<'a> {
    pub stream_id: i64,
    pub incarnation: &'a str,
    pub seg: u64,
    /// The search configuration the summary must have been built under.
    pub search_hash: u64,
    /// The segment was indexed under that configuration, so an absent or stale summary
    /// is reported for rebuilding.
    pub expected: bool,
}

/// Verified summaries in memory (and known absences), and the ones readers found wanting.
pub struct Summaries {
    cache: ByteLru<Option<Arc<SegmentSummary>>>,
    wanted: Mutex<Vec<Wanted>>,
}

impl Summaries {
    pub fn new(cap_bytes: u64) -> Summaries {
        Summaries {
            cache: ByteLru::new(cap_bytes),
            wanted: Mutex::new(Vec::new()),
        }
    }

    fn want(&self, l: &Lookup<'_>) {
        let w = Wanted {
            stream_id: l.stream_id,
            incarnation: l.incarnation.to_string(),
            seg: l.seg,
        };
        let mut all = self.wanted.lock().unwrap_or_else(|p| p.into_inner());
        if !all.contains(&w) {
            all.push(w);
        }
    }

    /// The summary `l` asks for, if there is a usable one.
    pub async fn get(&self, store: &Store, l: &Lookup<'_>) -> Option<Arc<SegmentSummary>> {
        if let Some(found) = self.cached(l) {
            return found;
        }
        let key = object_key(l.incarnation, l.seg);
        let loaded = match store.get(&key).await {
            Ok(bytes) => {
                let decoded = SegmentSummary::decode(&bytes).map_err(|e| e.to_string());
                match decoded {
                    Ok(s) if s.segment == l.seg => Some(Arc::new(s)),
                    other => {
                        let error = other
                            .err()
                            .unwrap_or_else(|| "it names another segment".into());
                        self.damaged(&key, &error);
                        self.want(l);
                        return None;
                    }
                }
            }
            Err(StoreError::NotFound(_)) => None,
            Err(e) => {
                // Not remembered: the store may answer next time.
                tracing::warn!(key, error = %e, "segment summary not readable; the segment is scanned");
                return None;
            }
        };
        let size = loaded.as_ref().map_or(64, |s| s.memory_bytes() as u64);
        let found = Arc::new(loaded);
        self.cache.put(key, found.clone(), size);
        self.usable(&found, l)
    }

    /// What the cache knows of the summary `l` asks for, without fetching: `None` if it
    /// knows nothing.
    pub fn cached(&self, l: &Lookup<'_>) -> Option<Option<Arc<SegmentSummary>>> {
        let found = self.cache.get(&object_key(l.incarnation, l.seg))?;
        Some(self.usable(&found, l))
    }

    fn usable(
        &self,
        found: &Option<Arc<SegmentSummary>>,
        l: &Lookup<'_>,
    ) -> Option<Arc<SegmentSummary>> {
        match found {
            Some(s) if s.search_hash == l.search_hash => Some(s.clone()),
            _ => {
                if l.expected {
                    self.want(l);
                }
                None
            }
        }
    }

    fn damaged(&self, key: &str, error: &str) {
        metrics().key_index_failures.inc();
        tracing::warn!(
            key,
            error,
            "segment summary unusable; the segment is scanned until it is rebuilt"
        );
    }

    /// Takes the summaries reported since the last call.
    pub fn take_wanted(&self) -> Vec<Wanted> {
        std::mem::take(&mut *self.wanted.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Forgets what is known of a segment's summary (it was just written).
    pub fn forget(&self, incarnation: &str, seg: u64) {
        self.cache.remove(&object_key(incarnation, seg));
    }
}

/// One segment of a stream, with its summary if one can be used.
#[derive(Debug, Clone)]
pub struct SummarizedSegment {
    pub start_pos: u64,
    /// Exclusive.
    pub end_pos: u64,
    pub summary: Option<Arc<SegmentSummary>>,
}

/// Summaries fetched at once.
const FETCH_CONCURRENCY: usize = 8;

impl crate::engine::Engine {
    /// The stream's segments in order, each with its summary under the search
    /// configuration `search_hash` where a usable one exists (uploaded segments only; none
    /// at all in local mode or without a configuration).
    pub async fn segment_summaries(
        &self,
        meta: &crate::engine::StreamMeta,
        search_hash: u64,
    ) -> Result<Vec<SummarizedSegment>, crate::engine::EngineError> {
        let id = meta.id;
        let (runs, segs) = self.runs_and_segments(id).await?;
        let tier = match self.tier() {
            Some(t) if search_hash != 0 => t,
            _ => {
                return Ok(segs
                    .iter()
                    .map(|s| SummarizedSegment {
                        start_pos: s.start_pos,
                        end_pos: s.end_pos,
                        summary: None,
                    })
                    .collect())
            }
        };
        // Fetched a few at a time, each by a task that owns what it needs.
        let incarnation = meta.config.incarnation.as_str();
        let mut out = Vec::with_capacity(segs.len());
        for chunk in segs.chunks(FETCH_CONCURRENCY) {
            let mut fetched = tokio::task::JoinSet::new();
            let mut got: Vec<Option<Arc<SegmentSummary>>> = vec![None; chunk.len()];
            for (i, s) in chunk.iter().enumerate() {
                if s.uploaded_at_ms.is_none() {
                    continue;
                }
                // Indexed under this configuration: its summary was written with its run.
                let expected = runs
                    .iter()
                    .any(|r| r.search_hash == search_hash && r.range.contains(s.index));
                let lookup = Lookup {
                    stream_id: id,
                    incarnation,
                    seg: s.index,
                    search_hash,
                    expected,
                };
                if let Some(known) = tier.summaries.cached(&lookup) {
                    got[i] = known;
                    continue;
                }
                // The task owns its copies of the store and of the incarnation's name.
                let (tier, incarnation) = (tier.clone(), incarnation.to_string());
                fetched.spawn(async move {
                    let lookup = Lookup {
                        incarnation: &incarnation,
                        ..lookup
                    };
                    let summary = tier.summaries.get(&tier.store, &lookup).await;
                    (i, summary)
                });
            }
            while let Some(done) = fetched.join_next().await {
                if let Ok((i, summary)) = done {
                    got[i] = summary;
                }
            }
            out.extend(chunk.iter().zip(got).map(|(s, summary)| SummarizedSegment {
                start_pos: s.start_pos,
                end_pos: s.end_pos,
                summary,
            }));
        }
        Ok(out)
    }

    /// The position ranges of the stream's segments whose summaries rule out `q` (a
    /// comparison on a column field no value of the segment satisfies). Ascending.
    pub async fn summary_exclusions(
        &self,
        meta: &crate::engine::StreamMeta,
        q: &crate::search::query::Query,
        search_hash: u64,
    ) -> Result<Vec<(u64, u64)>, crate::engine::EngineError> {
        if self.tier().is_none() || !crate::search::summary::narrows(q) {
            return Ok(Vec::new());
        }
        let out: Vec<(u64, u64)> = self
            .segment_summaries(meta, search_hash)
            .await?
            .into_iter()
            .filter(|s| s.summary.as_ref().is_some_and(|x| !x.may_match(q)))
            .map(|s| (s.start_pos, s.end_pos))
            .collect();
        metrics().summary_segments_used.add(out.len() as u64);
        Ok(out)
    }
}
