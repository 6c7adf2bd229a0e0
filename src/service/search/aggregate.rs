//! `_aggregate`: the rollup's buckets over the records whose timestamp falls in
//! `[from, to)`, up to the tail when the request arrived. A sealed segment whose summary
//! answers the request exactly (see `search::summary`) adds its buckets whole; every
//! other candidate record (other segments, SQLite and the memtable) is scanned, in
//! stream order.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Value};

use super::super::{bad, ServiceResult, StreamService};
use super::chunks::{ChunkKey, ChunkSummaries, CHUNK};
use super::scan::{Candidates, Flow, Scan};
use super::search_config;
use crate::protocol::headers::format_rfc3339_ms;
use crate::protocol::offset::Offset;
use crate::search::aggregate::{
    contribution, parse_request, AggregateRequest, Buckets, CompiledRollup, Contribution,
};
use crate::search::config::SearchConfig;
use crate::search::prefilter::Prefilter;
use crate::search::summary::{SegmentSummary, SummaryBuilder};
use crate::search::terms;
use crate::service::settings::StreamSettings;

impl StreamService {
    /// Serves `POST /v1/stream/{name}/_aggregate`.
    pub async fn aggregate(&self, name: &str, body: Bytes) -> ServiceResult<Value> {
        let meta = self.live(name).await?;
        let settings = self.settings(&meta).await?;
        let config = search_config(&settings);
        let raw: Value = serde_json::from_slice(&body)
            .map_err(|_| bad("aggregate request must be valid JSON"))?;
        let req = parse_request(config.as_ref(), &raw).map_err(bad)?;
        let Some(cfg) = config else {
            return Err(bad("search is not configured for this stream"));
        };
        let Some(rollup_cfg) = cfg.rollup(&req.rollup) else {
            return Err(bad(format!("unknown rollup {}", req.rollup)));
        };
        let rollup = CompiledRollup::new(&cfg, rollup_cfg).map_err(bad)?;
        let mut buckets = Buckets::new(&req);

        let hash = settings.registry.search().map_or(0, terms::config_hash);
        let summarized = self.engine().segment_summaries(&meta, hash).await?;
        let mut scan = Scan::new(self, meta, None).await?;
        // Records whose text cannot hold the query's keywords are skipped unparsed.
        if let Some(q) = &req.q {
            scan.set_prefilter(Prefilter::of(q, &cfg));
        }
        let end = scan.end();
        let candidates = Candidates::for_query(self, scan.meta(), req.q.as_ref(), &settings)
            .await?
            .ranges(0, end);
        // In stream order: the segments whose summaries answer the request whole, and the
        // candidate ranges between them (chunk by chunk where chunk summaries may serve).
        let meta = scan.meta().clone();
        let chunk_key = ChunkKey {
            incarnation: &meta.config.incarnation,
            search_hash: hash,
            rollup: &req.rollup,
        };
        let planner = Planner {
            candidates: &candidates,
            chunks: &self.chunk_summaries,
            key: &chunk_key,
            req: &req,
            cfg: &cfg,
            // Chunks below the retention point are not used (their entries are gone).
            lowest: meta.tier.trimmed_pos,
            end,
        };
        let mut steps: Vec<Step> = Vec::new();
        let mut at = 0;
        for seg in summarized.iter().filter(|s| s.end_pos <= end) {
            if let Some(summary) = seg.summary.as_ref().filter(|s| s.answers(&req, &cfg)) {
                planner.gap(&mut steps, at, seg.start_pos);
                steps.push(Step::Summary(summary.clone()));
                at = seg.end_pos;
            }
        }
        planner.gap(&mut steps, at, end);
        let (mut summarized_segments, mut summarized_chunks) = (0u64, 0u64);
        for step in steps {
            match step {
                Step::Summary(summary) => {
                    summary.add_to(&req, &cfg, &mut buckets);
                    summarized_segments += 1;
                }
                Step::Chunk(summary) => {
                    summary.add_to(&req, &cfg, &mut buckets);
                    summarized_chunks += 1;
                }
                Step::Scan(ranges) if ranges.is_empty() => {}
                Step::Scan(ranges) => {
                    let mut visit = |pos: u64, data: &[u8]| -> ServiceResult<Flow> {
                        if let Some((record, c, version)) =
                            contribution_at(&cfg, &rollup, &settings, pos, data)
                        {
                            if req.admits(&cfg, version, &record, &c) {
                                buckets.add(&c);
                            }
                        }
                        Ok(Flow::More)
                    };
                    scan.forward(ranges, &mut visit).await?;
                }
                Step::Build(chunk) => {
                    // Scanned whole (no query), summarised on the way.
                    let mut b = SummaryBuilder::for_rollup(&cfg, &req.rollup, chunk, hash);
                    let mut visit = |pos: u64, data: &[u8]| -> ServiceResult<Flow> {
                        let c = contribution_at(&cfg, &rollup, &settings, pos, data);
                        b.add_contribution(&req.rollup, c.as_ref().map(|c| &c.1));
                        if let Some((record, c, version)) = &c {
                            if req.admits(&cfg, *version, record, c) {
                                buckets.add(c);
                            }
                        }
                        Ok(Flow::More)
                    };
                    let start = chunk * CHUNK;
                    let whole: Vec<Range<u64>> = std::iter::once(start..start + CHUNK).collect();
                    scan.forward(whole, &mut visit).await?;
                    let summary = b.finish();
                    // Kept only if every position of the chunk was read.
                    if summary.records == CHUNK {
                        self.chunk_summaries.put(&chunk_key, chunk, summary);
                    }
                }
            }
        }
        crate::telemetry::metrics::metrics()
            .summary_segments_used
            .add(summarized_segments);
        let summarized_total = summarized_segments + summarized_chunks;
        let end_offset = Offset::at(end).encode();
        let st = &scan.stats;
        Ok(json!({
            "stream": name,
            "rollup": req.rollup,
            "from": format_rfc3339_ms(req.from_ms),
            "to": format_rfc3339_ms(req.to_ms),
            "interval": req.interval,
            "coverage": {
                "mode": "complete",
                "complete": true,
                "stream_head_offset": end_offset,
                "visible_through_offset": end_offset,
                "visible_through_primary_timestamp_max": null,
                "oldest_omitted_append_at": null,
                "possible_missing_events_upper_bound": 0,
                "possible_missing_uploaded_segments": 0,
                "possible_missing_sealed_rows": 0,
                "possible_missing_wal_rows": 0,
                "used_rollups": summarized_total > 0,
                "indexed_segments": summarized_segments,
                "scanned_segments": st.segments,
                "scanned_tail_docs": st.tail_records,
                "index_families_used": if summarized_total > 0 { json!(["agg"]) } else { json!([]) },
            },
            "buckets": buckets.to_json(),
        }))
    }
}

/// One part of an aggregation, in stream order.
enum Step {
    /// A segment answered by its summary.
    Summary(Arc<SegmentSummary>),
    /// A chunk answered by its summary (see `chunks`).
    Chunk(Arc<SegmentSummary>),
    /// Candidate ranges read record by record.
    Scan(Vec<Range<u64>>),
    /// A whole chunk read record by record and summarised.
    Build(u64),
}

/// Plans the parts of the stream no segment summary answers.
struct Planner<'a> {
    candidates: &'a [Range<u64>],
    chunks: &'a ChunkSummaries,
    key: &'a ChunkKey<'a>,
    req: &'a AggregateRequest,
    cfg: &'a SearchConfig,
    lowest: u64,
    end: u64,
}

impl Planner<'_> {
    /// The steps for `[from, to)`: whole chunks from their summaries where those answer
    /// (built while scanning when the request has no query), the rest scanned.
    fn gap(&self, steps: &mut Vec<Step>, from: u64, to: u64) {
        let to = to.min(self.end);
        let mut at = from;
        let mut chunk = from.max(self.lowest).div_ceil(CHUNK);
        while (chunk + 1) * CHUNK <= to {
            let start = chunk * CHUNK;
            let step = match self.chunks.get(self.key, chunk) {
                Some(s) if s.answers(self.req, self.cfg) => Some(Step::Chunk(s)),
                None if self.req.q.is_none() => Some(Step::Build(chunk)),
                _ => None,
            };
            if let Some(step) = step {
                steps.push(Step::Scan(clip(self.candidates, at, start)));
                steps.push(step);
                at = start + CHUNK;
            }
            chunk += 1;
        }
        steps.push(Step::Scan(clip(self.candidates, at, to)));
    }
}

/// The record at `pos` parsed, its schema version and its contribution to the rollup.
fn contribution_at(
    cfg: &SearchConfig,
    rollup: &CompiledRollup,
    settings: &StreamSettings,
    pos: u64,
    data: &[u8],
) -> Option<(Value, Contribution, u64)> {
    let record = serde_json::from_slice::<Value>(data).ok()?;
    let version = u64::from(settings.registry.version_at(pos));
    let c = contribution(cfg, rollup, version, &record)?;
    Some((record, c, version))
}

/// The parts of `ranges` (ascending, disjoint) within `[from, to)`.
fn clip(ranges: &[Range<u64>], from: u64, to: u64) -> Vec<Range<u64>> {
    ranges
        .iter()
        .map(|r| r.start.max(from)..r.end.min(to))
        .filter(|r| r.start < r.end)
        .collect()
}
