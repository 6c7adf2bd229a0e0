//! The routing-key indexer: a supervised background task of full mode. Each round (every
//! `DS_KEY_INDEX_CHECK_MS`) it
//! 1. takes the runs that reads found unusable out of the catalog (their segments are
//!    indexed again);
//! 2. looks at uploaded segments it has not seen (a partial index holds exactly those,
//!    so idle streams cost nothing): for a stream with routing keys or a search
//!    configuration it builds and uploads a level-0 run of the segment's routing keys and
//!    keyword terms (reading the segment once, usually from the local cache); otherwise it
//!    only marks the segment seen;
//! 3. merges every complete group of [`FANOUT`] aligned runs of a level into one run of
//!    the next level, in the streams that got a run since (all of them at start).
//!
//! Nothing waits for it: a segment that is not indexed yet is read as before (block
//! filters). Failures are counted, logged and retried in a later round.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::format::{self, Run, RunRange};
use super::summaries::{self, Wanted};
use super::{object_key, FANOUT, MAX_LEVEL};
use crate::engine::db::key_index::{self, RunRow};
use crate::engine::ops::key_index::KeyIndexCmd;
use crate::engine::tier::Tier;
use crate::engine::{Engine, EngineError};
use crate::objstore::StoreError;
use crate::schema::Registry;
use crate::search::config::SearchConfig;
use crate::search::eval::Document;
use crate::search::summary::{SegmentSummary, SummaryBuilder};
use crate::search::terms;
use crate::telemetry::metrics::metrics;

/// Segments looked at per round at most.
const SEGMENTS_PER_ROUND: usize = 64;

pub async fn run(engine: Engine, tier: Arc<Tier>, mut stop: watch::Receiver<bool>) {
    let every = tier.cfg.key_index_check_ms;
    if every == 0 {
        return;
    }
    let mut indexer = Indexer {
        engine,
        tier,
        dirty: BTreeSet::new(),
        started: false,
    };
    let mut tick = tokio::time::interval(Duration::from_millis(every));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        // Keep going while there is a backlog, one bounded step at a time.
        loop {
            match indexer.round().await {
                Ok(0) => break,
                Ok(_) if *stop.borrow() => return,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "routing-key index round failed");
                    break;
                }
            }
        }
    }
}

struct Indexer {
    engine: Engine,
    tier: Arc<Tier>,
    /// Streams whose runs may form a complete group.
    dirty: BTreeSet<i64>,
    started: bool,
}

impl Indexer {
    /// One round; returns how many runs it built, merged or dropped.
    async fn round(&mut self) -> Result<usize, EngineError> {
        let (engine, tier) = (&self.engine, &self.tier);
        if !self.started {
            self.dirty.extend(
                engine
                    .reader()
                    .run_background(key_index::streams_with_runs)
                    .await?,
            );
            self.started = true;
        }
        let mut done = 0;
        for u in tier.key_index.take_unusable() {
            let dropped = engine
                .key_index_cmd(KeyIndexCmd::Drop {
                    incarnation: u.incarnation.clone(),
                    stream_id: u.stream_id,
                    range: u.range,
                })
                .await?;
            if dropped {
                tier.key_index.forget(&u.incarnation, u.range);
                done += 1;
            }
        }

        for w in tier.summaries.take_wanted() {
            match rebuild_summary(engine, tier, &w).await {
                Ok(true) => done += 1,
                Ok(false) => {}
                Err(e) => {
                    metrics().key_index_failures.inc();
                    tracing::warn!(stream = w.stream_id, segment = w.seg, error = %e, "rebuilding a segment summary failed");
                }
            }
        }

        let todo = engine
            .reader()
            .run_background(|c| key_index::unindexed(c, SEGMENTS_PER_ROUND))
            .await?;
        let mut skipped: Vec<(i64, u64)> = Vec::new();
        for u in todo {
            let search = u.registry.as_deref().and_then(SearchIndexing::of);
            if !u.has_keys && search.is_none() {
                skipped.push((u.stream_id, u.segment.index));
                continue;
            }
            let (stream_id, seg) = (u.stream_id, &u.segment);
            let range = RunRange {
                level: 0,
                start_seg: seg.index,
                end_seg: seg.index + 1,
            };
            let search_hash = search.as_ref().map_or(0, |s| s.hash);
            let built = async {
                let mut keys = BTreeSet::new();
                let mut summary = search.as_ref().and_then(|s| s.summary_builder(seg.index));
                tier.visit_records(engine.reader(), &u.incarnation, seg, |pos, key, data| {
                    if let Some(k) = key.filter(|k| !k.is_empty()) {
                        keys.insert(terms::routing_key(k));
                    }
                    if let Some(s) = &search {
                        s.add(pos, data, &mut keys, summary.as_mut());
                    }
                })
                .await?;
                if let Some(b) = summary {
                    put_summary(tier, &u.incarnation, b.finish()).await?;
                }
                let bytes = format::encode_segment(seg.index, &keys, search_hash);
                let size = bytes.len() as u64;
                tier.store
                    .put(&object_key(&u.incarnation, range), bytes.into())
                    .await?;
                Ok::<_, EngineError>((keys.len() as u64, size))
            }
            .await;
            match built {
                Ok((key_count, size_bytes)) => {
                    let row = RunRow {
                        stream_id,
                        range,
                        size_bytes,
                        key_count,
                        search_hash,
                    };
                    let incarnation = u.incarnation.clone();
                    if engine
                        .key_index_cmd(KeyIndexCmd::Add { incarnation, row })
                        .await?
                    {
                        metrics().key_index_runs.inc();
                        self.dirty.insert(stream_id);
                        done += 1;
                    }
                }
                Err(e) => {
                    metrics().key_index_failures.inc();
                    tracing::warn!(stream = stream_id, segment = seg.index, error = %e, "indexing a segment's routing keys failed");
                    // The rest waits for the next round.
                    break;
                }
            }
        }
        let mut by_stream: std::collections::BTreeMap<i64, Vec<u64>> = Default::default();
        for (id, s) in skipped {
            by_stream.entry(id).or_default().push(s);
        }
        for (stream_id, segments) in by_stream {
            done += segments.len();
            engine
                .key_index_cmd(KeyIndexCmd::Skip {
                    stream_id,
                    segments,
                })
                .await?;
        }

        for stream_id in std::mem::take(&mut self.dirty) {
            let (incarnation, groups) = match engine
                .reader()
                .run_background(move |c| {
                    let inc = crate::engine::db::streams::by_id(c, stream_id)?
                        .map(|m| m.config.incarnation);
                    Ok::<_, rusqlite::Error>((
                        inc,
                        key_index::compactable(c, stream_id, FANOUT, MAX_LEVEL)?,
                    ))
                })
                .await?
            {
                (Some(inc), groups) => (inc, groups),
                (None, _) => continue,
            };
            for children in groups {
                match merge(engine, tier, stream_id, &incarnation, &children).await {
                    Ok(true) => {
                        metrics().key_index_compactions.inc();
                        for c in &children {
                            tier.key_index.forget(&incarnation, c.range);
                        }
                        // The parent may complete a group of the next level.
                        self.dirty.insert(stream_id);
                        done += 1;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        metrics().key_index_failures.inc();
                        tracing::warn!(stream = stream_id, error = %e, "merging routing-key index runs failed");
                        self.dirty.insert(stream_id);
                        return Ok(done);
                    }
                }
            }
        }
        Ok(done)
    }
}

/// What a stream's schema registry says about keyword terms: its search configuration,
/// the hash naming it, and the registry (a record's schema version picks the bindings).
struct SearchIndexing {
    registry: Registry,
    config: SearchConfig,
    hash: u64,
}

impl SearchIndexing {
    fn of(registry_json: &str) -> Option<SearchIndexing> {
        let registry = Registry::parse(registry_json.as_bytes()).ok()?;
        let raw = registry.search()?.clone();
        let config = SearchConfig::parse_optional(&raw).ok().flatten()?;
        Some(SearchIndexing {
            hash: terms::config_hash(&raw),
            registry,
            config,
        })
    }

    /// A builder of a segment's summary, if the configuration has anything to summarise
    /// (column fields or rollups).
    fn summary_builder(&self, seg: u64) -> Option<SummaryBuilder<'_>> {
        crate::search::summary::summarizable(&self.config)
            .then(|| SummaryBuilder::new(&self.config, seg, self.hash))
    }

    /// Adds the record at `pos`: its keyword terms to `out`, and the record to `summary`
    /// (a record that is not JSON has no terms).
    fn add(
        &self,
        pos: u64,
        data: &[u8],
        out: &mut BTreeSet<Vec<u8>>,
        summary: Option<&mut SummaryBuilder<'_>>,
    ) {
        let record = serde_json::from_slice::<serde_json::Value>(data).ok();
        let version = u64::from(self.registry.version_at(pos));
        if let Some(r) = &record {
            let doc = Document::new(&self.config, version, r, None);
            for (field, value) in doc.keyword_terms() {
                out.insert(terms::keyword(field, &value));
            }
        }
        if let Some(b) = summary {
            b.add(version, record.as_ref());
        }
    }
}

/// Stores a segment's summary (replacing any earlier one) and drops what the cache knew.
async fn put_summary(
    tier: &Tier,
    incarnation: &str,
    summary: SegmentSummary,
) -> Result<(), EngineError> {
    let seg = summary.segment;
    tier.store
        .put(
            &summaries::object_key(incarnation, seg),
            summary.encode().into(),
        )
        .await?;
    tier.summaries.forget(incarnation, seg);
    metrics().segment_summaries.inc();
    Ok(())
}

/// Builds again a summary a reader found missing or unusable (if its stream is still that
/// incarnation and still has a search configuration).
async fn rebuild_summary(engine: &Engine, tier: &Tier, w: &Wanted) -> Result<bool, EngineError> {
    let (id, seg) = (w.stream_id, w.seg);
    let found = engine
        .reader()
        .run_background(move |c| {
            let Some(m) = crate::engine::db::streams::by_id(c, id)? else {
                return Ok::<_, rusqlite::Error>(None);
            };
            let registry = crate::engine::db::config::registry(c, id)?;
            let row = crate::engine::db::segments::by_index(c, id, seg)?;
            Ok(Some((m.config.incarnation, registry, row)))
        })
        .await?;
    let Some((incarnation, Some(registry), Some(row))) = found else {
        return Ok(false);
    };
    if incarnation != w.incarnation || row.uploaded_at_ms.is_none() {
        return Ok(false);
    }
    let Some(search) = SearchIndexing::of(&registry) else {
        return Ok(false);
    };
    let Some(mut b) = search.summary_builder(seg) else {
        return Ok(false);
    };
    let mut ignored = BTreeSet::new();
    tier.visit_records(engine.reader(), &incarnation, &row, |pos, _, data| {
        search.add(pos, data, &mut ignored, Some(&mut b));
    })
    .await?;
    put_summary(tier, &incarnation, b.finish()).await?;
    Ok(true)
}

/// Merges `children` (a complete aligned group of one level) into their parent.
async fn merge(
    engine: &Engine,
    tier: &Arc<Tier>,
    stream_id: i64,
    incarnation: &str,
    children: &[RunRow],
) -> Result<bool, EngineError> {
    let (Some(first), Some(last)) = (children.first(), children.last()) else {
        return Ok(false);
    };
    let parent = RunRange {
        level: first.range.level + 1,
        start_seg: first.range.start_seg,
        end_seg: last.range.end_seg,
    };
    let mut runs: Vec<Run> = Vec::with_capacity(children.len());
    for c in children {
        let key = object_key(incarnation, c.range);
        let decoded = match tier.store.get(&key).await {
            Ok(bytes) => Run::decode(&bytes).map_err(|e| e.to_string()),
            Err(StoreError::NotFound(_)) => Err("missing".to_string()),
            Err(e) => return Err(e.into()),
        };
        match decoded {
            Ok(run) if run.range == c.range => runs.push(run),
            Ok(_) | Err(_) => {
                // A run that is gone or damaged is dropped from the catalog: its segments
                // are indexed again from the segments themselves.
                metrics().key_index_failures.inc();
                tracing::warn!(
                    key,
                    "routing-key index run unusable; rebuilding its segments' runs"
                );
                engine
                    .key_index_cmd(KeyIndexCmd::Drop {
                        incarnation: incarnation.to_string(),
                        stream_id,
                        range: c.range,
                    })
                    .await?;
                return Ok(false);
            }
        }
    }
    let bytes = format::merge(parent, &runs)
        .map_err(|e| EngineError::Corrupt(format!("merging routing-key index runs: {e}")))?;
    let merged = Run::decode(&bytes)
        .map_err(|e| EngineError::Corrupt(format!("a merged run does not verify: {e}")))?;
    let (key_count, search_hash) = (merged.key_count(), merged.search_hash);
    let size_bytes = bytes.len() as u64;
    tier.store
        .put(&object_key(incarnation, parent), bytes.into())
        .await?;
    engine
        .key_index_cmd(KeyIndexCmd::Merge {
            incarnation: incarnation.to_string(),
            children: children.iter().map(|c| c.range).collect(),
            parent: RunRow {
                stream_id,
                range: parent,
                size_bytes,
                key_count,
                search_hash,
            },
        })
        .await
}
