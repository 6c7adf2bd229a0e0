//! `_aggregate`: the rollup's buckets over the records whose timestamp falls in
//! `[from, to)`, computed by scanning every candidate record (segments, SQLite and the
//! memtable, up to the tail when the request arrived).

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

        let mut scan = Scan::new(self, meta, None).await?;
        // Records whose text cannot hold the query's keywords are skipped unparsed.
        if let Some(q) = &req.q {
            scan.set_prefilter(Prefilter::of(q, &cfg));
        }
        let end = scan.end();
        let ranges = Candidates::for_query(self, scan.meta(), req.q.as_ref(), &settings)
            .await?
            .ranges(0, end);
        {
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
                "used_rollups": false,
                "indexed_segments": 0,
                "scanned_segments": st.segments,
                "scanned_tail_docs": st.tail_records,
                "index_families_used": [],
            },
            "buckets": buckets.to_json(),
        }))
    }
}
