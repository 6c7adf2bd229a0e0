//! [`Limits`]: the limits and tuning knobs shared by the engine, service and HTTP layers
//! (both server modes).

use super::knobs as k;
use super::{ConfigError, Env};

/// Limits and tuning knobs shared by the engine, service and HTTP layers.
#[derive(Debug, Clone)]
pub struct Limits {
    /// `DS_LONG_POLL_TIMEOUT_MS`: how long a long-poll waits for data.
    pub long_poll_timeout_ms: u64,
    /// `DS_SSE_MAX_DURATION_MS`: an SSE connection is closed after this long so that
    /// clients reconnect (and CDNs can collapse requests).
    pub sse_max_duration_ms: u64,
    /// `DS_READ_MAX_BYTES`: payload bytes per read response (at least one entry is sent).
    pub read_max_bytes: usize,
    /// `DS_READ_MAX_RECORDS`: entries per read response.
    pub read_max_records: usize,
    /// `DS_READ_FILTER_SCAN_LIMIT_BYTES`: entry bytes a `filter=` read tests per response.
    pub read_filter_scan_limit_bytes: usize,
    /// `DS_APPEND_MAX_BODY_BYTES`: largest PUT/POST body (413 above).
    pub append_max_body_bytes: usize,
    /// `DS_INGEST_MAX_QUEUE_REQS`: queued write requests before 429.
    pub ingest_max_queue_reqs: usize,
    /// `DS_INGEST_MAX_QUEUE_BYTES`: queued payload bytes before 429.
    pub ingest_max_queue_bytes: usize,
    /// `DS_INGEST_MAX_BATCH_REQS`: requests committed in one transaction at most.
    pub ingest_max_batch_reqs: usize,
    /// `DS_INGEST_MAX_BATCH_BYTES`: payload bytes committed in one transaction at most.
    pub ingest_max_batch_bytes: usize,
    /// `DS_EXPIRY_SWEEP_MS`: how often expired streams are reclaimed (0 disables).
    pub expiry_sweep_ms: u64,
    /// `DS_EXPIRY_SWEEP_LIMIT`: streams reclaimed per sweep.
    pub expiry_sweep_limit: usize,
    /// `DS_PRODUCER_STATE_TTL_MS`: producer state not updated for this long is collected
    /// by the expiry sweeper (0 keeps it forever).
    pub producer_state_ttl_ms: u64,
    /// `DS_READ_CONNECTIONS`: threads (and connections) of the read pool.
    pub read_connections: usize,
    /// `DS_READ_QUEUE`: reads waiting for the read pool before 503.
    pub read_queue: usize,
    /// `DS_META_CACHE_ENTRIES`: streams in the metadata cache (0 disables it).
    pub meta_cache_entries: usize,
    /// `DS_METRICS_FLUSH_MS`: how often a metrics event is appended to
    /// `__stream_metrics__` (0 disables; local mode defaults to 0).
    pub metrics_flush_ms: u64,
    /// `DS_METRICS_RETENTION_ENTRIES`: events kept in `__stream_metrics__`.
    pub metrics_retention_entries: u64,
    /// `DS_HEADER_READ_TIMEOUT_MS`: a connection that does not finish sending request
    /// headers in this time (also an idle keep-alive connection) is closed.
    pub header_read_timeout_ms: u64,
    /// `DS_BODY_READ_TIMEOUT_MS`: a request body that sends nothing for this long is
    /// answered with 408 and its connection closed.
    pub body_read_timeout_ms: u64,
    /// `DS_MAX_HEADER_BYTES`: request line plus headers (431 above; at least 8192).
    pub max_header_bytes: usize,
    /// `DS_MAX_LIVE_READERS`: concurrent long-poll and SSE readers (503 above).
    pub max_live_readers: usize,
    /// Webhook delivery of subscriptions (`DS_WEBHOOK*`).
    pub subscriptions: super::SubscriptionSettings,
}

/// The smallest `DS_MAX_HEADER_BYTES`.
const MIN_HEADER_BYTES: usize = 8192;

impl Default for Limits {
    /// The defaults of the knob table.
    fn default() -> Self {
        match Limits::from_env(&Env::default()) {
            Ok(l) => l,
            // The table's defaults are valid (a unit test parses them).
            Err(e) => unreachable!("invalid default in the knob table: {e}"),
        }
    }
}

impl Limits {
    /// Reads the limits from the environment.
    pub fn from_env(env: &Env) -> Result<Limits, ConfigError> {
        let limits = Limits {
            long_poll_timeout_ms: env.num(&k::DS_LONG_POLL_TIMEOUT_MS)?,
            sse_max_duration_ms: env.num(&k::DS_SSE_MAX_DURATION_MS)?,
            read_max_bytes: env.positive(&k::DS_READ_MAX_BYTES)?,
            read_max_records: env.positive(&k::DS_READ_MAX_RECORDS)?,
            read_filter_scan_limit_bytes: env.positive(&k::DS_READ_FILTER_SCAN_LIMIT_BYTES)?,
            append_max_body_bytes: env.positive(&k::DS_APPEND_MAX_BODY_BYTES)?,
            ingest_max_queue_reqs: env.positive(&k::DS_INGEST_MAX_QUEUE_REQS)?,
            ingest_max_queue_bytes: env.positive(&k::DS_INGEST_MAX_QUEUE_BYTES)?,
            ingest_max_batch_reqs: env.positive(&k::DS_INGEST_MAX_BATCH_REQS)?,
            ingest_max_batch_bytes: env.positive(&k::DS_INGEST_MAX_BATCH_BYTES)?,
            expiry_sweep_ms: env.num(&k::DS_EXPIRY_SWEEP_MS)?,
            expiry_sweep_limit: env.positive(&k::DS_EXPIRY_SWEEP_LIMIT)?,
            producer_state_ttl_ms: env.num(&k::DS_PRODUCER_STATE_TTL_MS)?,
            read_connections: env.positive(&k::DS_READ_CONNECTIONS)?,
            read_queue: env.positive(&k::DS_READ_QUEUE)?,
            meta_cache_entries: env.num(&k::DS_META_CACHE_ENTRIES)?,
            metrics_flush_ms: env.num(&k::DS_METRICS_FLUSH_MS)?,
            metrics_retention_entries: env.positive(&k::DS_METRICS_RETENTION_ENTRIES)?,
            header_read_timeout_ms: env.positive(&k::DS_HEADER_READ_TIMEOUT_MS)?,
            body_read_timeout_ms: env.positive(&k::DS_BODY_READ_TIMEOUT_MS)?,
            max_header_bytes: match env.num(&k::DS_MAX_HEADER_BYTES)? {
                n if n < MIN_HEADER_BYTES => {
                    return Err(ConfigError(format!(
                        "DS_MAX_HEADER_BYTES must be at least {MIN_HEADER_BYTES}, got {n}"
                    )))
                }
                n => n,
            },
            max_live_readers: env.positive(&k::DS_MAX_LIVE_READERS)?,
            subscriptions: super::SubscriptionSettings::from_env(env)?,
        };
        // A body is reserved in the ingest budget as it arrives: the largest one must fit.
        if limits.ingest_max_queue_bytes < limits.append_max_body_bytes {
            return Err(ConfigError(format!(
                "DS_INGEST_MAX_QUEUE_BYTES ({}) must be at least DS_APPEND_MAX_BODY_BYTES ({})",
                limits.ingest_max_queue_bytes, limits.append_max_body_bytes
            )));
        }
        Ok(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_come_from_the_knob_table() {
        let d = Limits::default();
        assert_eq!(d.long_poll_timeout_ms, 3000);
        assert_eq!(d.read_max_bytes, 1024 * 1024);
        assert_eq!(d.append_max_body_bytes, 10 * 1024 * 1024);
        assert_eq!(d.ingest_max_queue_bytes, 64 * 1024 * 1024);
        assert_eq!(d.max_header_bytes, 64 * 1024);
        assert_eq!(d.metrics_retention_entries, 8640);
        assert_eq!(d.producer_state_ttl_ms, 7 * 24 * 3600 * 1000);
    }

    #[test]
    fn the_ingest_budget_holds_the_largest_body() {
        let env = Env::from_pairs([
            ("DS_INGEST_MAX_QUEUE_BYTES", "1000"),
            ("DS_APPEND_MAX_BODY_BYTES", "1001"),
        ]);
        let e = Limits::from_env(&env).unwrap_err();
        assert!(e.0.contains("DS_APPEND_MAX_BODY_BYTES"), "{e}");
    }

    #[test]
    fn header_bytes_have_a_floor() {
        let small = Env::from_pairs([("DS_MAX_HEADER_BYTES", "8191")]);
        let e = Limits::from_env(&small).unwrap_err();
        assert!(e.0.contains("at least 8192"), "{e}");
        let ok = Env::from_pairs([("DS_MAX_HEADER_BYTES", "8192")]);
        assert_eq!(Limits::from_env(&ok).unwrap().max_header_bytes, 8192);
    }
}
