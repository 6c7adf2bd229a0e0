//! `GET /v1/server/_details`: the server's configuration summary and a few live figures,
//! in the original's shape (`auto_tune`, `configured_limits`, `runtime`).
//!
//! Sections of the original that describe machinery we do not have (index run and
//! companion caches, search, async indexing, the local backlog gate, the memory
//! guard) report zero, `false` or `null` (for timeouts we do not apply); the runtime
//! part reports what this process measures (no JavaScript heap figures, no per-stream
//! top lists). Local mode applies and reports the fixed 1024 MB auto-tune preset, as the
//! original does. See docs/introspection.md.

use serde_json::{json, Value};

use super::StreamService;
use crate::config::{AutoTune, Config, ObjectStoreConfig};
use crate::telemetry::metrics::metrics;

/// What the configuration says about the server, kept for `/v1/server/_details` (plain
/// figures only: no credentials are kept).
#[derive(Debug, Clone)]
pub struct ServerSummary {
    auto_tune: Option<AutoTune>,
    tier: Option<TierSummary>,
}

/// Full mode's segment and object-store settings.
#[derive(Debug, Clone)]
struct TierSummary {
    object_store: &'static str,
    segment_cache_max_bytes: u64,
    upload_concurrency: usize,
    segment_max_bytes: u64,
    segment_target_rows: u64,
    object_store_timeout_ms: u64,
}

impl ServerSummary {
    pub fn of(config: &Config) -> ServerSummary {
        ServerSummary {
            auto_tune: config.auto_tune.clone(),
            tier: config.tiering.as_ref().map(|t| TierSummary {
                object_store: match t.store {
                    ObjectStoreConfig::Memory => "memory",
                    ObjectStoreConfig::Local { .. } => "local",
                    ObjectStoreConfig::S3 { .. } => "s3",
                },
                segment_cache_max_bytes: t.segment_cache_max_bytes,
                upload_concurrency: t.upload_concurrency,
                segment_max_bytes: t.segment_max_bytes,
                segment_target_rows: t.segment_target_rows,
                object_store_timeout_ms: t.retry.timeout_ms,
            }),
        }
    }

    fn mode(&self) -> &'static str {
        if self.tier.is_some() {
            "full"
        } else {
            "local"
        }
    }

    fn auto_tune(&self) -> Value {
        match &self.auto_tune {
            None => json!({
                "enabled": false,
                "requested_memory_mb": null,
                "preset_mb": null,
                "effective_memory_limit_mb": null,
            }),
            Some(t) => json!({
                "enabled": true,
                "requested_memory_mb": t.budget_mb,
                "preset_mb": t.preset_mb,
                // The memory the preset's budgets are sized for; no process memory
                // guard enforces it (as in the original's local mode).
                "effective_memory_limit_mb": t.preset_mb,
            }),
        }
    }
}

impl StreamService {
    /// The body of `GET /v1/server/_details`.
    pub fn server_details(&self, summary: &ServerSummary) -> Value {
        let l = &self.limits;
        let t = summary.tier.as_ref();
        let m = metrics();
        let queued_requests = m.ingest_queue_requests.get().max(0) as u64;
        let queued_bytes = self.ingest_budget().in_use();
        let live_active = l
            .max_live_readers
            .saturating_sub(self.live_slots.available_permits());
        json!({
            "mode": summary.mode(),
            "object_store": t.map(|t| t.object_store),
            "auto_tune": summary.auto_tune(),
            "configured_limits": {
                "caches": {
                    "sqlite_cache_bytes": 0,
                    "worker_sqlite_cache_bytes": 0,
                    "index_run_memory_cache_bytes": 0,
                    "index_run_disk_cache_bytes": 0,
                    "lexicon_index_cache_bytes": 0,
                    "segment_cache_bytes": t.map_or(0, |t| t.segment_cache_max_bytes),
                    "companion_toc_cache_bytes": 0,
                    "companion_section_cache_bytes": 0,
                    "companion_file_cache_bytes": 0,
                },
                "concurrency": {
                    // One writer thread commits every write.
                    "ingest": 1,
                    "read": l.read_connections,
                    "search": 0,
                    "async_index": 0,
                    "upload": t.map_or(0, |t| t.upload_concurrency),
                    "index_build": 0,
                    "index_compact": 0,
                },
                "ingest": {
                    "max_batch_requests": l.ingest_max_batch_reqs,
                    "max_batch_bytes": l.ingest_max_batch_bytes,
                    "max_queue_requests": l.ingest_max_queue_reqs,
                    "max_queue_bytes": l.ingest_max_queue_bytes,
                    "busy_timeout_ms": crate::engine::db::BUSY_TIMEOUT_MS,
                    "local_backlog_max_bytes": 0,
                },
                "search": {
                    "companion_batch_segments": 0,
                    "companion_yield_blocks": 0,
                    "wal_overlay_quiet_period_ms": 0,
                    "wal_overlay_max_bytes": 0,
                },
                "segmenting": {
                    "segment_max_bytes": t.map_or(0, |t| t.segment_max_bytes),
                    "segment_target_rows": t.map_or(0, |t| t.segment_target_rows),
                    "segmenter_workers": usize::from(t.is_some()),
                },
                "timeouts": {
                    "append_request_timeout_ms": null,
                    "search_request_timeout_ms": null,
                    "resolver_timeout_ms": null,
                    "object_store_timeout_ms": t.map(|t| t.object_store_timeout_ms),
                },
                "memory": { "pressure_limit_bytes": 0 },
            },
            "runtime": {
                "memory": {
                    "pressure_active": false,
                    "pressure_limit_bytes": 0,
                    "process": { "rss_bytes": crate::telemetry::process::rss_bytes() },
                },
                "ingest_queue": {
                    "requests": queued_requests,
                    "bytes": queued_bytes,
                    "full": queued_requests >= l.ingest_max_queue_reqs as u64
                        || queued_bytes >= l.ingest_max_queue_bytes,
                },
                "local_backpressure": {
                    "enabled": false,
                    "current_bytes": 0,
                    "max_bytes": 0,
                    "over_limit": false,
                },
                "uploads": {
                    "pending_segments": m.segments_waiting.get().max(0),
                },
                "concurrency": {
                    "live_readers": {
                        "configured_limit": l.max_live_readers,
                        "active": live_active,
                    },
                },
            },
        })
    }
}
