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
use super::scan::{Candidates, Flow, Scan};
use super::search_config;
use crate::protocol::headers::format_rfc3339_ms;
use crate::protocol::offset::Offset;
use crate::search::aggregate::{contribution, parse_request, Buckets, CompiledRollup};
use crate::search::eval::{evaluate, Document};
use crate::search::prefilter::Prefilter;
use crate::search::summary::SegmentSummary;
use crate::search::terms;

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
        // candidate ranges between them, which are scanned.
        let mut steps: Vec<Step> = Vec::new();
        let mut at = 0;
        for seg in summarized.iter().filter(|s| s.end_pos <= end) {
            if let Some(summary) = seg.summary.as_ref().filter(|s| s.answers(&req, &cfg)) {
                steps.push(Step::Scan(clip(&candidates, at, seg.start_pos)));
                steps.push(Step::Summary(summary.clone()));
                at = seg.end_pos;
            }
        }
        steps.push(Step::Scan(clip(&candidates, at, end)));
        let mut summarized_segments = 0u64;
        for step in steps {
            match step {
                Step::Summary(summary) => {
                    summary.add_to(&req, &cfg, &mut buckets);
                    summarized_segments += 1;
                }
                Step::Scan(ranges) if ranges.is_empty() => {}
                Step::Scan(ranges) => {
                    let mut visit = |pos: u64, data: &Bytes| -> ServiceResult<Flow> {
                        let Ok(record) = serde_json::from_slice::<Value>(data) else {
                            return Ok(Flow::More);
                        };
                        let version = u64::from(settings.registry.version_at(pos));
                        let Some(c) = contribution(&cfg, &rollup, version, &record) else {
                            return Ok(Flow::More);
                        };
                        if c.timestamp_ms < req.from_ms || c.timestamp_ms >= req.to_ms {
                            return Ok(Flow::More);
                        }
                        if let Some(q) = &req.q {
                            if !evaluate(q, &Document::new(&cfg, version, &record, None)).matched {
                                return Ok(Flow::More);
                            }
                        }
                        buckets.add(&c);
                        Ok(Flow::More)
                    };
                    scan.forward(ranges, &mut visit).await?;
                }
            }
        }
        crate::telemetry::metrics::metrics()
            .summary_segments_used
            .add(summarized_segments);
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
                "used_rollups": summarized_segments > 0,
                "indexed_segments": summarized_segments,
                "scanned_segments": st.segments,
                "scanned_tail_docs": st.tail_records,
                "index_families_used": if summarized_segments > 0 { json!(["agg"]) } else { json!([]) },
            },
            "buckets": buckets.to_json(),
        }))
    }
}

/// One part of an aggregation, in stream order.
enum Step {
    /// A segment answered by its summary.
    Summary(Arc<SegmentSummary>),
    /// Candidate ranges read record by record.
    Scan(Vec<Range<u64>>),
}

/// The parts of `ranges` (ascending, disjoint) within `[from, to)`.
fn clip(ranges: &[Range<u64>], from: u64, to: u64) -> Vec<Range<u64>> {
    ranges
        .iter()
        .map(|r| r.start.max(from)..r.end.min(to))
        .filter(|r| r.start < r.end)
        .collect()
}
