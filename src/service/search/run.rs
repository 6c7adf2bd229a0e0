//! `_search`: parse the request, scan the candidate entries, keep the best page of hits.
//!
//! Coverage is always complete: the scan reads segments, SQLite and the memtable through
//! the engine's read path, up to the stream's tail when the request arrived. With an
//! offset-first sort (`offset:desc` is what Studio asks for) the scan walks in that order
//! and stops once the page is full; with any other sort it reads every candidate and
//! keeps the best `size` hits (bounded memory).

use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::super::{bad, ServiceError, ServiceResult, StreamService};
use super::scan::{Candidates, Flow, Scan};
use super::search_config;
use crate::protocol::offset::Offset;
use crate::search::eval::{evaluate, Canon, Document};
use crate::search::prefilter::Prefilter;
use crate::search::request::{
    after_cursor, compare_hits, parse_body, parse_query, sort_response, Direction, SearchRequest,
    SortSpec, SortValue,
};

/// The original's time budget for one search (a request may ask for less).
pub const TIMEOUT_MS: u64 = 3000;

/// A `_search` request as received.
pub enum SearchInput {
    /// `POST`: the JSON body.
    Body(Bytes),
    /// `GET`: the query parameters, in order.
    Query(Vec<(String, String)>),
}

/// A `_search` answer: 408 when the time budget ran out (with what was found), else 200.
#[derive(Debug)]
pub struct SearchOutcome {
    pub timed_out: bool,
    pub body: Value,
    /// The `search-*` response headers.
    pub headers: Vec<(&'static str, String)>,
}

struct Hit {
    pos: u64,
    score: f64,
    sort: Vec<SortValue>,
    fields: Map<String, Value>,
    source: Value,
}

/// The hits kept so far: the page, or (for sorts other than by offset) the best hits.
struct Hits {
    sort: Vec<SortSpec>,
    size: usize,
    hits: Vec<Hit>,
    peak: usize,
}

impl Hits {
    fn push(&mut self, h: Hit) {
        self.hits.push(h);
        self.peak = self.peak.max(self.hits.len());
        if self.hits.len() >= self.size.saturating_mul(2).max(64) {
            self.prune();
        }
    }

    fn prune(&mut self) {
        let sort = &self.sort;
        self.hits
            .sort_by(|a, b| compare_hits(sort, &a.sort, &b.sort));
        self.hits.truncate(self.size);
    }
}

fn sort_values(sort: &[SortSpec], pos: u64, score: f64, doc: &Document<'_>) -> Vec<SortValue> {
    sort.iter()
        .map(|s| match s {
            SortSpec::Score(_) => Some(Canon::Float(score)),
            SortSpec::Offset(_) => Some(Canon::Int(i128::from(pos))),
            SortSpec::Field { field, .. } => doc.sort_value(field),
        })
        .collect()
}

impl StreamService {
    /// Serves `GET|POST /v1/stream/{name}/_search`.
    pub async fn search(&self, name: &str, input: SearchInput) -> ServiceResult<SearchOutcome> {
        let started = crate::clock::now();
        let meta = self.live(name).await?;
        let settings = self.settings(&meta).await?;
        let config = search_config(&settings);
        let req: SearchRequest = match input {
            SearchInput::Query(params) => parse_query(config.as_ref(), &params),
            SearchInput::Body(bytes) => {
                let body: Value = serde_json::from_slice(&bytes)
                    .map_err(|_| bad("search request must be valid JSON"))?;
                parse_body(config.as_ref(), &body)
            }
        }
        .map_err(bad)?;
        let Some(cfg) = config else {
            return Err(bad("search is not configured for this stream"));
        };
        let timeout_ms = req.timeout_ms.map_or(TIMEOUT_MS, |t| t.min(TIMEOUT_MS));
        let deadline = started + Duration::from_millis(timeout_ms);
        let mut scan = Scan::new(self, meta, Some(deadline)).await?;
        let end = scan.end();

        // An offset-first sort walks in its order and stops at a full page.
        let offset_first = match req.sort.first() {
            Some(SortSpec::Offset(d)) => Some(*d),
            _ => None,
        };
        let (from, to) = match (offset_first, req.search_after.as_ref()) {
            (Some(d), Some(after)) => {
                let cursor = crate::search::request::cursor_value(&req.sort[0], after.first());
                match (d, cursor) {
                    (Direction::Asc, Some(Canon::Int(p))) => {
                        (u64::try_from(p + 1).unwrap_or(0).min(end), end)
                    }
                    (Direction::Desc, Some(Canon::Int(p))) => {
                        (0, u64::try_from(p).unwrap_or(0).min(end))
                    }
                    _ => (0, end),
                }
            }
            _ => (0, end),
        };
        let ranges = Candidates::for_query(self, scan.meta(), Some(&req.q), &settings)
            .await?
            .ranges(from, to);
        let mut kept = Hits {
            sort: req.sort.clone(),
            size: req.size,
            hits: Vec::new(),
            peak: 0,
        };
        let mut query_fields = Vec::new();
        req.q.fields(&mut query_fields);
        // Records whose text cannot hold the query's keywords are skipped unparsed.
        scan.set_prefilter(Prefilter::of(&req.q, &cfg));
        let mut failure: Option<ServiceError> = None;
        {
            let mut visit = |pos: u64, data: &[u8]| -> ServiceResult<Flow> {
                let Ok(record) = serde_json::from_slice::<Value>(data) else {
                    return Ok(Flow::More);
                };
                let version = u64::from(settings.registry.version_at(pos));
                // Only the fields the query reads, until the record matches.
                let ev = evaluate(
                    &req.q,
                    &Document::new(&cfg, version, &record, Some(&query_fields)),
                );
                if !ev.matched {
                    return Ok(Flow::More);
                }
                let doc = Document::new(&cfg, version, &record, None);
                let sort = sort_values(&req.sort, pos, ev.score, &doc);
                if let Some(after) = &req.search_after {
                    if !after_cursor(&req.sort, &sort, after) {
                        return Ok(Flow::More);
                    }
                }
                let fields = doc.hit_fields();
                drop(doc);
                let source = match settings.registry.promote(pos, record) {
                    Ok(v) => v,
                    Err(e) => {
                        failure = Some(ServiceError::BadRequest(e));
                        return Ok(Flow::Stop);
                    }
                };
                kept.push(Hit {
                    pos,
                    score: ev.score,
                    sort,
                    fields,
                    source,
                });
                if offset_first.is_some() && kept.hits.len() >= kept.size {
                    return Ok(Flow::Stop);
                }
                Ok(Flow::More)
            };
            match offset_first {
                Some(Direction::Desc) => scan.backward(ranges, &mut visit).await?,
                _ => scan.forward(ranges, &mut visit).await?,
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        let sort_started = crate::clock::now();
        kept.prune();
        let sort_ms = sort_started.elapsed().as_millis() as u64;
        let timed_out = scan.timed_out;
        let page = kept.hits;
        let next = (page.len() == req.size)
            .then(|| page.last().map(|h| sort_response(&req.sort, &h.sort)))
            .flatten();
        let exact = !timed_out && next.is_none();
        let took_ms = started.elapsed().as_millis() as u64;
        let end_offset = Offset::at(end).encode();
        let st = &scan.stats;
        let hits: Vec<Value> = page
            .into_iter()
            .map(|h| {
                json!({
                    "offset": Offset::at(h.pos + 1).encode(),
                    "score": crate::profiles::js::number_value(h.score),
                    "sort": sort_response(&req.sort, &h.sort),
                    "fields": h.fields,
                    "source": h.source,
                })
            })
            .collect();
        let total = hits.len();
        let relation = if exact { "eq" } else { "gte" };
        let coverage = json!({
            "mode": "complete",
            "complete": !timed_out,
            "stream_head_offset": end_offset,
            "visible_through_offset": end_offset,
            "visible_through_primary_timestamp_max": null,
            "oldest_omitted_append_at": null,
            "possible_missing_events_upper_bound": 0,
            "possible_missing_uploaded_segments": 0,
            "possible_missing_sealed_rows": 0,
            "possible_missing_wal_rows": 0,
            "indexed_segments": 0,
            "indexed_segment_time_ms": 0,
            "fts_section_get_ms": 0,
            "fts_decode_ms": 0,
            "fts_clause_estimate_ms": 0,
            "scanned_segments": st.segments,
            "scanned_segment_time_ms": 0,
            "scanned_tail_docs": st.tail_records,
            "scanned_tail_time_ms": 0,
            "exact_candidate_time_ms": 0,
            "candidate_doc_ids": 0,
            "decoded_records": st.records,
            "json_parse_time_ms": 0,
            "segment_payload_bytes_fetched": 0,
            "sort_time_ms": sort_ms,
            "peak_hits_held": kept.peak,
            "index_families_used": [],
        });
        let headers = vec![
            ("search-timed-out", timed_out.to_string()),
            ("search-timeout-ms", timeout_ms.to_string()),
            ("search-took-ms", took_ms.to_string()),
            ("search-total-relation", relation.to_string()),
            ("search-coverage-complete", (!timed_out).to_string()),
            ("search-indexed-segments", "0".to_string()),
            ("search-scanned-segments", st.segments.to_string()),
            ("search-scanned-tail-docs", st.tail_records.to_string()),
            ("search-decoded-records", st.records.to_string()),
            ("search-sort-time-ms", sort_ms.to_string()),
            ("search-peak-hits-held", kept.peak.to_string()),
            ("search-index-families-used", String::new()),
        ];
        let body = json!({
            "stream": name,
            "snapshot_end_offset": end_offset,
            "took_ms": took_ms,
            "timed_out": timed_out,
            "timeout_ms": timeout_ms,
            "coverage": coverage,
            "total": {"value": total, "relation": relation},
            "hits": hits,
            "next_search_after": next,
        });
        Ok(SearchOutcome {
            timed_out,
            body,
            headers,
        })
    }
}
