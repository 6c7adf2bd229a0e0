//! The process-wide metrics registry: lock-free counters, gauges and fixed-bucket
//! histograms, rendered as Prometheus text (`GET /metrics`) and as JSON snapshots.
//! A leaf module: any layer records into [`metrics()`]; nothing here does I/O.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::OnceLock;

/// A monotonically increasing count.
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn add(&self, d: i64) {
        self.0.fetch_add(d, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Bucket upper bounds for latencies, in seconds.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Bucket upper bounds for counts (batch sizes).
pub const COUNT_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// A histogram with fixed buckets; observations are kept as micro-units to stay atomic.
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    count: AtomicU64,
    /// Sum in millionths of the unit.
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, v: f64) {
        let i = self
            .bounds
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((v.max(0.0) * 1e6) as u64, Ordering::Relaxed);
    }

    pub fn observe_since(&self, start: std::time::Instant) {
        self.observe(start.elapsed().as_secs_f64());
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Non-cumulative bucket counts; the last one is "+Inf".
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        self.bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.counts.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect()
    }

    /// The upper bound of the bucket holding quantile `q` (0..1), or None if empty.
    pub fn quantile_bound(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let want = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bound, n) in self.buckets() {
            seen += n;
            if seen >= want {
                return Some(bound);
            }
        }
        Some(f64::INFINITY)
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cum = 0;
        for (bound, n) in self.buckets() {
            cum += n;
            let le = if bound.is_infinite() {
                "+Inf".to_string()
            } else {
                format!("{bound}")
            };
            let sep = if labels.is_empty() { "" } else { "," };
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cum}");
        }
        let l = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(
            out,
            "{name}_sum{l} {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{l} {}", self.count());
    }
}

/// Read modes, as metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    CatchUp,
    LongPoll,
    Sse,
}

impl ReadMode {
    pub const ALL: [ReadMode; 3] = [ReadMode::CatchUp, ReadMode::LongPoll, ReadMode::Sse];
    pub fn label(self) -> &'static str {
        match self {
            ReadMode::CatchUp => "catchup",
            ReadMode::LongPoll => "long_poll",
            ReadMode::Sse => "sse",
        }
    }
    fn index(self) -> usize {
        self as usize
    }
}

/// HTTP routes, as metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Create,
    Append,
    Read,
    Head,
    Delete,
    Other,
}

impl Route {
    pub const ALL: [Route; 6] = [
        Route::Create,
        Route::Append,
        Route::Read,
        Route::Head,
        Route::Delete,
        Route::Other,
    ];
    pub fn label(self) -> &'static str {
        match self {
            Route::Create => "create",
            Route::Append => "append",
            Route::Read => "read",
            Route::Head => "head",
            Route::Delete => "delete",
            Route::Other => "other",
        }
    }
    fn index(self) -> usize {
        self as usize
    }
}

/// Object-store operations, as metric labels.
pub const STORE_OPS: [&str; 6] = ["put", "get", "head", "delete", "list", "put_multipart"];

/// Every metric of the process. See docs/metrics.md.
pub struct Metrics {
    pub appends: Counter,
    pub append_bytes: Counter,
    pub append_entries: Counter,
    pub overloaded: Counter,
    pub read_busy: Counter,
    pub ingest_queue_requests: Gauge,
    pub ingest_queue_bytes: Gauge,
    pub ingest_batch_requests: Histogram,
    pub ingest_commit_seconds: Histogram,
    pub reads: [Counter; 3],
    pub read_bytes: [Counter; 3],
    pub active_readers: [Gauge; 3],
    pub segments_sealed: Counter,
    pub segment_bytes: Counter,
    pub segment_failures: Counter,
    pub uploads: Counter,
    pub upload_bytes: Counter,
    pub upload_failures: Counter,
    pub manifests_published: Counter,
    pub manifest_failures: Counter,
    pub segments_waiting: Gauge,
    pub key_index_runs: Counter,
    pub segment_summaries: Counter,
    pub summary_segments_used: Counter,
    pub key_index_compactions: Counter,
    pub key_index_failures: Counter,
    pub key_index_segments_skipped: Counter,
    pub store_requests: [Counter; 6],
    pub store_errors: [Counter; 6],
    pub store_retries: Counter,
    pub store_seconds: Histogram,
    pub http_requests: [Counter; 6],
    pub http_errors: [Counter; 6],
    pub http_seconds: [Histogram; 6],
}

fn arr<T, const N: usize>(f: impl Fn() -> T) -> [T; N] {
    std::array::from_fn(|_| f())
}

impl Metrics {
    fn new() -> Metrics {
        Metrics {
            appends: Counter::default(),
            append_bytes: Counter::default(),
            append_entries: Counter::default(),
            overloaded: Counter::default(),
            read_busy: Counter::default(),
            ingest_queue_requests: Gauge::default(),
            ingest_queue_bytes: Gauge::default(),
            ingest_batch_requests: Histogram::new(COUNT_BUCKETS),
            ingest_commit_seconds: Histogram::new(LATENCY_BUCKETS),
            reads: arr(Counter::default),
            read_bytes: arr(Counter::default),
            active_readers: arr(Gauge::default),
            segments_sealed: Counter::default(),
            segment_bytes: Counter::default(),
            segment_failures: Counter::default(),
            uploads: Counter::default(),
            upload_bytes: Counter::default(),
            upload_failures: Counter::default(),
            manifests_published: Counter::default(),
            manifest_failures: Counter::default(),
            segments_waiting: Gauge::default(),
            key_index_runs: Counter::default(),
            segment_summaries: Counter::default(),
            summary_segments_used: Counter::default(),
            key_index_compactions: Counter::default(),
            key_index_failures: Counter::default(),
            key_index_segments_skipped: Counter::default(),
            store_requests: arr(Counter::default),
            store_errors: arr(Counter::default),
            store_retries: Counter::default(),
            store_seconds: Histogram::new(LATENCY_BUCKETS),
            http_requests: arr(Counter::default),
            http_errors: arr(Counter::default),
            http_seconds: arr(|| Histogram::new(LATENCY_BUCKETS)),
        }
    }

    pub fn read(&self, mode: ReadMode, bytes: usize) {
        self.reads[mode.index()].inc();
        self.read_bytes[mode.index()].add(bytes as u64);
    }

    pub fn readers(&self, mode: ReadMode) -> &Gauge {
        &self.active_readers[mode.index()]
    }

    pub fn store_op(&self, op: &str) -> Option<usize> {
        STORE_OPS.iter().position(|o| *o == op)
    }

    pub fn http(&self, route: Route, status: u16, start: std::time::Instant) {
        let i = route.index();
        self.http_requests[i].inc();
        if status >= 500 {
            self.http_errors[i].inc();
        }
        self.http_seconds[i].observe_since(start);
    }

    pub fn http_histogram(&self, route: Route) -> &Histogram {
        &self.http_seconds[route.index()]
    }
}

/// The process-wide registry.
pub fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(Metrics::new)
}

/// Values sampled at scrape time by the caller (they need I/O this module does not do).
#[derive(Debug, Default, Clone)]
pub struct Sampled {
    pub rss_bytes: Option<u64>,
    pub cpu_seconds: Option<f64>,
    pub wal_bytes: Option<u64>,
    pub streams: Option<u64>,
    /// Bytes of request bodies reserved in the ingest budget.
    pub ingest_budget_bytes: u64,
    pub uptime_seconds: f64,
}

/// Counter values by series name (`name` or `name{label="v"}`): the input of the periodic
/// metrics events.
pub fn counter_series() -> Vec<(String, f64)> {
    let m = metrics();
    let mut v: Vec<(String, f64)> = plain_series(m)
        .into_iter()
        .filter(|s| s.1 == "counter")
        .map(|(n, _, _, x)| (n.to_string(), x))
        .collect();
    v.push((
        "ds_ingest_commit_seconds_count".into(),
        m.ingest_commit_seconds.count() as f64,
    ));
    for mode in ReadMode::ALL {
        let i = mode.index();
        v.push((
            format!("ds_reads_total{{mode=\"{}\"}}", mode.label()),
            m.reads[i].get() as f64,
        ));
        v.push((
            format!("ds_read_bytes_total{{mode=\"{}\"}}", mode.label()),
            m.read_bytes[i].get() as f64,
        ));
    }
    for r in Route::ALL {
        let i = r.index();
        v.push((
            format!("ds_http_requests_total{{route=\"{}\"}}", r.label()),
            m.http_requests[i].get() as f64,
        ));
    }
    v
}

/// Gauge values by series name.
pub fn gauge_series() -> Vec<(String, f64)> {
    let m = metrics();
    let mut v: Vec<(String, f64)> = plain_series(m)
        .into_iter()
        .filter(|s| s.1 == "gauge")
        .map(|(n, _, _, x)| (n.to_string(), x))
        .collect();
    for mode in [ReadMode::LongPoll, ReadMode::Sse] {
        v.push((
            format!("ds_active_readers{{mode=\"{}\"}}", mode.label()),
            m.readers(mode).get() as f64,
        ));
    }
    v
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn one(out: &mut String, name: &str, kind: &str, help: &str, v: impl std::fmt::Display) {
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {v}");
}

/// Unlabelled counters and gauges: `(name, kind, help, value)`. The single list both the
/// Prometheus text and the periodic metrics events are made from.
fn plain_series(m: &Metrics) -> Vec<(&'static str, &'static str, &'static str, f64)> {
    vec![
        (
            "ds_appends_total",
            "counter",
            "Append and create requests committed.",
            m.appends.get() as f64,
        ),
        (
            "ds_append_bytes_total",
            "counter",
            "Payload bytes committed.",
            m.append_bytes.get() as f64,
        ),
        (
            "ds_append_entries_total",
            "counter",
            "Entries (messages) committed.",
            m.append_entries.get() as f64,
        ),
        (
            "ds_overloaded_total",
            "counter",
            "Write requests refused with 429 because the ingest queue was full.",
            m.overloaded.get() as f64,
        ),
        (
            "ds_read_busy_total",
            "counter",
            "Reads refused with 503 because the read pool's queue was full.",
            m.read_busy.get() as f64,
        ),
        (
            "ds_ingest_queue_requests",
            "gauge",
            "Clients' write requests waiting for the writer.",
            m.ingest_queue_requests.get() as f64,
        ),
        (
            "ds_ingest_queue_bytes",
            "gauge",
            "Payload bytes waiting for the writer.",
            m.ingest_queue_bytes.get() as f64,
        ),
        (
            "ds_segments_sealed_total",
            "counter",
            "Segment files written.",
            m.segments_sealed.get() as f64,
        ),
        (
            "ds_segment_bytes_total",
            "counter",
            "Bytes of segment files written.",
            m.segment_bytes.get() as f64,
        ),
        (
            "ds_segment_failures_total",
            "counter",
            "Failed segment writes.",
            m.segment_failures.get() as f64,
        ),
        (
            "ds_uploads_total",
            "counter",
            "Segments uploaded.",
            m.uploads.get() as f64,
        ),
        (
            "ds_upload_bytes_total",
            "counter",
            "Bytes of segments uploaded.",
            m.upload_bytes.get() as f64,
        ),
        (
            "ds_upload_failures_total",
            "counter",
            "Failed segment uploads (after retries).",
            m.upload_failures.get() as f64,
        ),
        (
            "ds_key_index_runs_total",
            "counter",
            "Routing-key index runs built for one segment and uploaded.",
            m.key_index_runs.get() as f64,
        ),
        (
            "ds_segment_summaries_total",
            "counter",
            "Segment summaries (column ranges, rollup buckets) built and uploaded.",
            m.segment_summaries.get() as f64,
        ),
        (
            "ds_summary_segments_used_total",
            "counter",
            "Segments an _aggregate answered from their summary, or a search skipped because of one.",
            m.summary_segments_used.get() as f64,
        ),
        (
            "ds_key_index_compactions_total",
            "counter",
            "Routing-key index runs merged into one of the next level.",
            m.key_index_compactions.get() as f64,
        ),
        (
            "ds_key_index_failures_total",
            "counter",
            "Routing-key index runs that could not be built, merged or read (reads then scan).",
            m.key_index_failures.get() as f64,
        ),
        (
            "ds_key_index_segments_skipped_total",
            "counter",
            "Segments a keyed read or a search skipped unread because the routing-key index rules them out.",
            m.key_index_segments_skipped.get() as f64,
        ),
        (
            "ds_manifests_published_total",
            "counter",
            "Manifests published.",
            m.manifests_published.get() as f64,
        ),
        (
            "ds_manifest_failures_total",
            "counter",
            "Failed manifest publishes.",
            m.manifest_failures.get() as f64,
        ),
        (
            "ds_segments_waiting",
            "gauge",
            "Sealed segments not uploaded yet (upload lag).",
            m.segments_waiting.get() as f64,
        ),
        (
            "ds_objectstore_retries_total",
            "counter",
            "Object-store attempts that were retried.",
            m.store_retries.get() as f64,
        ),
    ]
}

/// Renders everything in the Prometheus text exposition format (version 0.0.4).
pub fn render_prometheus(s: &Sampled) -> String {
    let m = metrics();
    let mut o = String::with_capacity(8192);
    for (name, kind, help, v) in plain_series(m) {
        one(&mut o, name, kind, help, v);
    }
    header(
        &mut o,
        "ds_ingest_batch_requests",
        "histogram",
        "Requests committed per transaction.",
    );
    m.ingest_batch_requests
        .render(&mut o, "ds_ingest_batch_requests", "");
    header(
        &mut o,
        "ds_ingest_commit_seconds",
        "histogram",
        "Duration of each group commit (transaction and fsync).",
    );
    m.ingest_commit_seconds
        .render(&mut o, "ds_ingest_commit_seconds", "");
    header(
        &mut o,
        "ds_reads_total",
        "counter",
        "Read responses (pages, long-poll answers, SSE data events) by mode.",
    );
    for mode in ReadMode::ALL {
        let _ = writeln!(
            o,
            "ds_reads_total{{mode=\"{}\"}} {}",
            mode.label(),
            m.reads[mode.index()].get()
        );
    }
    header(
        &mut o,
        "ds_read_bytes_total",
        "counter",
        "Payload bytes read by mode.",
    );
    for mode in ReadMode::ALL {
        let _ = writeln!(
            o,
            "ds_read_bytes_total{{mode=\"{}\"}} {}",
            mode.label(),
            m.read_bytes[mode.index()].get()
        );
    }
    header(
        &mut o,
        "ds_active_readers",
        "gauge",
        "Readers waiting for data (long-poll) or connected (SSE).",
    );
    for mode in [ReadMode::LongPoll, ReadMode::Sse] {
        let _ = writeln!(
            o,
            "ds_active_readers{{mode=\"{}\"}} {}",
            mode.label(),
            m.active_readers[mode.index()].get()
        );
    }
    header(
        &mut o,
        "ds_objectstore_requests_total",
        "counter",
        "Object-store calls by operation (each attempt).",
    );
    for (i, op) in STORE_OPS.iter().enumerate() {
        let _ = writeln!(
            o,
            "ds_objectstore_requests_total{{op=\"{op}\"}} {}",
            m.store_requests[i].get()
        );
    }
    header(
        &mut o,
        "ds_objectstore_errors_total",
        "counter",
        "Failed object-store attempts by operation.",
    );
    for (i, op) in STORE_OPS.iter().enumerate() {
        let _ = writeln!(
            o,
            "ds_objectstore_errors_total{{op=\"{op}\"}} {}",
            m.store_errors[i].get()
        );
    }
    header(
        &mut o,
        "ds_objectstore_seconds",
        "histogram",
        "Duration of object-store attempts.",
    );
    m.store_seconds.render(&mut o, "ds_objectstore_seconds", "");
    header(
        &mut o,
        "ds_http_requests_total",
        "counter",
        "HTTP requests by route.",
    );
    for r in Route::ALL {
        let _ = writeln!(
            o,
            "ds_http_requests_total{{route=\"{}\"}} {}",
            r.label(),
            m.http_requests[r.index()].get()
        );
    }
    header(
        &mut o,
        "ds_http_server_errors_total",
        "counter",
        "HTTP 5xx responses by route.",
    );
    for r in Route::ALL {
        let _ = writeln!(
            o,
            "ds_http_server_errors_total{{route=\"{}\"}} {}",
            r.label(),
            m.http_errors[r.index()].get()
        );
    }
    header(
        &mut o,
        "ds_http_request_seconds",
        "histogram",
        "Time to the response head by route (long-polls include their wait).",
    );
    for r in Route::ALL {
        m.http_seconds[r.index()].render(
            &mut o,
            "ds_http_request_seconds",
            &format!("route=\"{}\"", r.label()),
        );
    }
    if let Some(v) = s.wal_bytes {
        one(
            &mut o,
            "ds_sqlite_wal_bytes",
            "gauge",
            "Size of the SQLite WAL file.",
            v,
        );
    }
    if let Some(v) = s.streams {
        one(&mut o, "ds_streams", "gauge", "Live streams.", v);
    }
    one(
        &mut o,
        "ds_ingest_budget_bytes",
        "gauge",
        "Bytes of write-request bodies held now (received, queued or being committed), \
         within DS_INGEST_MAX_QUEUE_BYTES.",
        s.ingest_budget_bytes,
    );
    if let Some(v) = s.rss_bytes {
        one(
            &mut o,
            "process_resident_memory_bytes",
            "gauge",
            "Resident set size.",
            v,
        );
    }
    if let Some(v) = s.cpu_seconds {
        one(
            &mut o,
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time.",
            v,
        );
    }
    one(
        &mut o,
        "ds_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        s.uptime_seconds,
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_in_text() {
        let h = Histogram::new(&[1.0, 2.0]);
        h.observe(0.5);
        h.observe(1.5);
        h.observe(9.0);
        let mut s = String::new();
        h.render(&mut s, "x", "a=\"b\"");
        assert!(s.contains("x_bucket{a=\"b\",le=\"1\"} 1\n"), "{s}");
        assert!(s.contains("x_bucket{a=\"b\",le=\"2\"} 2\n"));
        assert!(s.contains("x_bucket{a=\"b\",le=\"+Inf\"} 3\n"));
        assert!(s.contains("x_count{a=\"b\"} 3\n"));
        assert_eq!(h.quantile_bound(0.5), Some(2.0));
        assert_eq!(h.quantile_bound(1.0), Some(f64::INFINITY));
    }

    #[test]
    fn every_sample_line_belongs_to_a_declared_metric() {
        metrics().appends.inc();
        let text = render_prometheus(&Sampled {
            rss_bytes: Some(1),
            cpu_seconds: Some(0.5),
            wal_bytes: Some(2),
            streams: Some(3),
            ingest_budget_bytes: 4,
            uptime_seconds: 1.0,
        });
        let mut declared = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.insert(rest.split(' ').next().unwrap().to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let base = name
                    .trim_end_matches("_bucket")
                    .trim_end_matches("_sum")
                    .trim_end_matches("_count");
                assert!(
                    declared.contains(name) || declared.contains(base),
                    "undeclared: {line}"
                );
                let value = line.rsplit(' ').next().unwrap();
                assert!(value.parse::<f64>().is_ok(), "bad value: {line}");
            }
        }
    }
}
