//! One validated [`Config`] built from the command line and the environment. This is the
//! only module that reads environment variables; everything else receives settings.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

use crate::cli::{ObjectStoreKind, ServerArgs};

/// A configuration error: reported as one line, exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Settings of a server (full or local mode).
#[derive(Debug, Clone)]
pub struct Config {
    pub host: IpAddr,
    pub port: u16,
    pub root: PathBuf,
    pub db_path: PathBuf,
    /// Segments and object store; `None` in local mode, which keeps everything in SQLite.
    pub tiering: Option<Tiering>,
    /// Rebuild the node from the object store's manifests before starting.
    pub bootstrap: bool,
    /// Bootstrap even if the existing database holds data not in the object store.
    pub bootstrap_discard_local: bool,
    /// What `--auto-tune` chose, if it was given.
    pub auto_tune: Option<AutoTune>,
    pub reports: Reports,
    pub exit_on_stdin_eof: bool,
    pub limits: Limits,
    /// Bearer token every request but `/health` must carry (`DS_AUTH_TOKEN[_FILE]`).
    pub auth: Option<AuthToken>,
}

/// The shared secret of bearer authentication. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthToken(String);

impl AuthToken {
    pub fn new(token: &str) -> Result<AuthToken, ConfigError> {
        if token.len() < 16 {
            return Err(ConfigError(
                "the auth token must be at least 16 characters long".into(),
            ));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError(
                "the auth token must be printable ASCII without spaces".into(),
            ));
        }
        Ok(AuthToken(token.to_string()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthToken(<redacted>)")
    }
}

/// Reads `DS_AUTH_TOKEN` or `DS_AUTH_TOKEN_FILE` (not both) and checks that a server bound
/// to a non-loopback address has a token or was told `--allow-unauthenticated`.
fn auth_from_env(
    env: &Env,
    host: IpAddr,
    allow_unauthenticated: bool,
) -> Result<Option<AuthToken>, ConfigError> {
    let token = match (env.get("DS_AUTH_TOKEN"), env.get("DS_AUTH_TOKEN_FILE")) {
        (Some(_), Some(_)) => {
            return Err(ConfigError(
                "set DS_AUTH_TOKEN or DS_AUTH_TOKEN_FILE, not both".into(),
            ))
        }
        (Some(t), None) => Some(AuthToken::new(t)?),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("cannot read DS_AUTH_TOKEN_FILE {path}: {e}")))?;
            Some(
                AuthToken::new(text.trim())
                    .map_err(|e| ConfigError(format!("DS_AUTH_TOKEN_FILE {path}: {}", e.0)))?,
            )
        }
        (None, None) => None,
    };
    if token.is_none() && !host.is_loopback() && !allow_unauthenticated {
        return Err(ConfigError(format!(
            "refusing to listen on {host} without authentication: set DS_AUTH_TOKEN or \
             DS_AUTH_TOKEN_FILE, or pass --allow-unauthenticated if a proxy in front \
             authenticates clients"
        )));
    }
    Ok(token)
}

/// Periodic reports on stderr (`--stats`, `--hist`).
#[derive(Debug, Clone, Default)]
pub struct Reports {
    pub stats: bool,
    pub hist: bool,
    /// `DS_STATS_INTERVAL_MS` (default 60 000).
    pub interval_ms: u64,
}

/// Where the object store is and how to reach it.
#[derive(Clone, PartialEq, Eq)]
pub enum ObjectStoreConfig {
    /// A directory on local disk.
    Local { dir: PathBuf },
    /// In memory (tests): lost on exit.
    Memory,
    /// An S3-compatible endpoint (Cloudflare R2 is one).
    S3 {
        endpoint: String,
        bucket: String,
        region: String,
        access_key_id: String,
        secret_access_key: String,
        allow_http: bool,
    },
}

impl std::fmt::Debug for ObjectStoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ObjectStoreConfig::Local { dir } => write!(f, "Local({})", dir.display()),
            ObjectStoreConfig::Memory => write!(f, "Memory"),
            ObjectStoreConfig::S3 {
                endpoint, bucket, ..
            } => write!(f, "S3({endpoint}, {bucket})"),
        }
    }
}

/// Segmenting, upload and object-store settings (full mode).
#[derive(Debug, Clone)]
pub struct Tiering {
    pub store: ObjectStoreConfig,
    /// `DS_SEGMENT_MAX_BYTES`: payload bytes that make a stream a candidate and cap a segment.
    pub segment_max_bytes: u64,
    /// `DS_SEGMENT_TARGET_ROWS`: unsealed entries that make a stream a candidate and cap a segment.
    pub segment_target_rows: u64,
    /// `DS_SEGMENT_MAX_INTERVAL_MS`: unsealed entries older than this are sealed anyway (0: never).
    pub segment_max_interval_ms: u64,
    /// `DS_BLOCK_MAX_BYTES`: uncompressed bytes per block.
    pub block_max_bytes: usize,
    /// `DS_SEGMENT_CHECK_MS`: segmenter tick.
    pub segment_check_ms: u64,
    /// `DS_UPLOAD_CHECK_MS`: uploader tick.
    pub upload_check_ms: u64,
    /// `DS_UPLOAD_CONCURRENCY`: segment uploads in flight.
    pub upload_concurrency: usize,
    /// `DS_SEGMENT_CACHE_MAX_BYTES`: uploaded segment files kept on local disk.
    pub segment_cache_max_bytes: u64,
    /// `DS_SEGMENT_FOOTER_CACHE_ENTRIES`: parsed footers kept in memory.
    pub footer_cache_entries: usize,
    pub retry: RetryPolicy,
}

/// Object-store call retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// `DS_OBJECTSTORE_TIMEOUT_MS`: per attempt.
    pub timeout_ms: u64,
    /// `DS_OBJECTSTORE_RETRIES`: attempts after the first.
    pub retries: u32,
    /// `DS_OBJECTSTORE_RETRY_BASE_MS` / `_MAX_MS`: exponential backoff bounds.
    pub base_ms: u64,
    pub max_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            timeout_ms: 5000,
            retries: 3,
            base_ms: 50,
            max_ms: 2000,
        }
    }
}

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
    /// `DS_READ_CONNECTIONS`: SQLite read connections.
    pub read_connections: usize,
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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            long_poll_timeout_ms: 3000,
            sse_max_duration_ms: 60_000,
            read_max_bytes: 1024 * 1024,
            read_max_records: 10_000,
            append_max_body_bytes: 10 * 1024 * 1024,
            ingest_max_queue_reqs: 50_000,
            ingest_max_queue_bytes: 64 * 1024 * 1024,
            ingest_max_batch_reqs: 1000,
            ingest_max_batch_bytes: 8 * 1024 * 1024,
            expiry_sweep_ms: 60_000,
            expiry_sweep_limit: 100,
            read_connections: 4,
            metrics_flush_ms: 10_000,
            metrics_retention_entries: 8640,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            max_header_bytes: 64 * 1024,
            max_live_readers: 10_000,
        }
    }
}

/// Environment variables this version understands (others starting with `DS_` are warned about).
pub const KNOWN_VARS: &[&str] = &[
    "DS_HOST",
    "DS_ROOT",
    "DS_DB_PATH",
    "DS_LONG_POLL_TIMEOUT_MS",
    "DS_SSE_MAX_DURATION_MS",
    "DS_READ_MAX_BYTES",
    "DS_READ_MAX_RECORDS",
    "DS_APPEND_MAX_BODY_BYTES",
    "DS_INGEST_MAX_QUEUE_REQS",
    "DS_INGEST_MAX_QUEUE_BYTES",
    "DS_INGEST_MAX_BATCH_REQS",
    "DS_INGEST_MAX_BATCH_BYTES",
    "DS_EXPIRY_SWEEP_MS",
    "DS_EXPIRY_SWEEP_LIMIT",
    "DS_READ_CONNECTIONS",
    "DS_LOG",
    "DS_LOCAL_DATA_ROOT",
    "DS_SEGMENT_MAX_BYTES",
    "DS_SEGMENT_TARGET_ROWS",
    "DS_SEGMENT_MAX_INTERVAL_MS",
    "DS_BLOCK_MAX_BYTES",
    "DS_SEGMENT_CHECK_MS",
    "DS_UPLOAD_CHECK_MS",
    "DS_UPLOAD_CONCURRENCY",
    "DS_SEGMENT_CACHE_MAX_BYTES",
    "DS_SEGMENT_FOOTER_CACHE_ENTRIES",
    "DS_OBJECTSTORE_TIMEOUT_MS",
    "DS_OBJECTSTORE_RETRIES",
    "DS_OBJECTSTORE_RETRY_BASE_MS",
    "DS_OBJECTSTORE_RETRY_MAX_MS",
    "DS_LOG_DIR",
    "DS_LOG_ROTATION",
    "DS_LOG_MAX_FILES",
    "DS_STATS_INTERVAL_MS",
    "DS_METRICS_FLUSH_MS",
    "DS_METRICS_RETENTION_ENTRIES",
    "DS_HEADER_READ_TIMEOUT_MS",
    "DS_BODY_READ_TIMEOUT_MS",
    "DS_MAX_HEADER_BYTES",
    "DS_MAX_LIVE_READERS",
    "DS_AUTH_TOKEN",
    "DS_AUTH_TOKEN_FILE",
];

/// The memory presets of `--auto-tune`, in MiB.
pub const AUTO_TUNE_PRESETS: &[u64] = &[64, 128, 256, 512, 1024, 2048, 4096, 8192];

/// What `--auto-tune` chose: the preset and, per variable, the value and whether it came
/// from the preset (false: set explicitly in the environment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoTune {
    pub budget_mb: u64,
    pub preset_mb: u64,
    pub values: Vec<(&'static str, String, bool)>,
}

impl AutoTune {
    /// The variables a preset sets, for a preset of `p` MiB.
    pub fn preset_values(p: u64) -> Vec<(&'static str, u64)> {
        let mb = 1u64 << 20;
        vec![
            ("DS_SEGMENT_CACHE_MAX_BYTES", p / 4 * mb),
            ("DS_INGEST_MAX_QUEUE_BYTES", (p / 16).max(4) * mb),
            ("DS_INGEST_MAX_BATCH_BYTES", (p / 64).max(1) * mb),
            ("DS_INGEST_MAX_QUEUE_REQS", p * 100),
            ("DS_SEGMENT_FOOTER_CACHE_ENTRIES", p * 4),
            ("DS_READ_CONNECTIONS", (p / 256).clamp(2, 16)),
            ("DS_UPLOAD_CONCURRENCY", (p / 512).clamp(1, 16)),
        ]
    }

    /// Chooses the largest preset not above the budget (`0` = a quarter of the machine's
    /// memory) and returns the environment with the preset's values filled in where the
    /// variable is not set.
    pub fn apply(budget_mb: u64, env: &Env) -> Result<(Env, AutoTune), ConfigError> {
        let budget_mb = if budget_mb == 0 {
            crate::telemetry::process::total_memory_mb().map_or(1024, |m| m / 4)
        } else {
            budget_mb
        };
        let preset_mb = AUTO_TUNE_PRESETS
            .iter()
            .copied()
            .filter(|p| *p <= budget_mb)
            .max()
            .ok_or_else(|| {
                ConfigError(format!(
                    "--auto-tune needs at least {} MB, got {budget_mb}",
                    AUTO_TUNE_PRESETS[0]
                ))
            })?;
        let mut out = env.clone();
        let mut values = Vec::new();
        for (key, v) in AutoTune::preset_values(preset_mb) {
            match env.get(key) {
                Some(explicit) => values.push((key, explicit.to_string(), false)),
                None => {
                    out.0.insert(key.to_string(), v.to_string());
                    values.push((key, v.to_string(), true));
                }
            }
        }
        Ok((
            out,
            AutoTune {
                budget_mb,
                preset_mb,
                values,
            },
        ))
    }

    /// One line describing the choice, for stderr.
    pub fn describe(&self) -> String {
        let vals: Vec<String> = self
            .values
            .iter()
            .map(|(k, v, preset)| format!("{k}={v}{}", if *preset { "" } else { " (env)" }))
            .collect();
        format!(
            "auto-tune: budget {} MB, preset {} MB: {}",
            self.budget_mb,
            self.preset_mb,
            vals.join(" ")
        )
    }
}

/// A snapshot of the environment, so parsing is testable without touching the process.
#[derive(Debug, Clone, Default)]
pub struct Env(HashMap<String, String>);

impl Env {
    pub fn from_process() -> Env {
        Env(std::env::vars().collect())
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Env {
        Env(pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    /// A set, non-empty (after trimming) value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    /// The tracing filter: `DS_LOG`, else `RUST_LOG`, else `info`.
    pub fn log_filter(&self) -> String {
        self.get("DS_LOG")
            .or_else(|| self.get("RUST_LOG"))
            .unwrap_or("info")
            .to_string()
    }

    /// `DS_LOG_DIR` (+ `DS_LOG_ROTATION` daily|hourly|minutely|never, `DS_LOG_MAX_FILES`):
    /// rolling log files, if asked for.
    pub fn log_files(&self) -> Result<Option<crate::telemetry::LogFiles>, ConfigError> {
        use tracing_appender::rolling::Rotation;
        let Some(dir) = self.get("DS_LOG_DIR") else {
            return Ok(None);
        };
        let rotation = match self.get("DS_LOG_ROTATION").unwrap_or("daily") {
            "daily" => Rotation::DAILY,
            "hourly" => Rotation::HOURLY,
            "minutely" => Rotation::MINUTELY,
            "never" => Rotation::NEVER,
            other => {
                return Err(ConfigError(format!(
                    "DS_LOG_ROTATION must be daily, hourly, minutely or never, got {other:?}"
                )))
            }
        };
        Ok(Some(crate::telemetry::LogFiles {
            dir: PathBuf::from(dir),
            rotation,
            max_files: self.positive("DS_LOG_MAX_FILES", 7)?,
        }))
    }

    /// `PRISMA_STREAMS_UPDATE_API`: the GitHub API base for `self-update` (tests and
    /// mirrors point it elsewhere).
    pub fn update_api(&self) -> String {
        self.get("PRISMA_STREAMS_UPDATE_API")
            .unwrap_or("https://api.github.com")
            .trim_end_matches('/')
            .to_string()
    }

    /// `PRISMA_STREAMS_MANAGED_BY`: set to `npm` by the npm wrappers.
    pub fn managed_by(&self) -> Option<&str> {
        self.get("PRISMA_STREAMS_MANAGED_BY")
    }

    /// `DS_*` variables that this version does not know.
    pub fn unknown_ds_vars(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .0
            .keys()
            .filter(|k| k.starts_with("DS_") && !KNOWN_VARS.contains(&k.as_str()))
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// The values of variables that must all be set; the error names every missing one.
    pub fn require(&self, keys: &[&str]) -> Result<Vec<String>, ConfigError> {
        let missing: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| self.get(k).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(ConfigError(format!(
                "missing environment variables: {}",
                missing.join(", ")
            )));
        }
        Ok(keys
            .iter()
            .filter_map(|k| self.get(k))
            .map(str::to_string)
            .collect())
    }

    fn num<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.parse::<T>().map_err(|_| {
                ConfigError(format!("{key} must be a non-negative integer, got {v:?}"))
            }),
        }
    }

    fn positive(&self, key: &str, default: usize) -> Result<usize, ConfigError> {
        let v = self.num(key, default)?;
        if v == 0 {
            return Err(ConfigError(format!("{key} must be greater than 0")));
        }
        Ok(v)
    }
}

impl Limits {
    /// Reads the limits from the environment.
    pub fn from_env(env: &Env) -> Result<Limits, ConfigError> {
        let d = Limits::default();
        Ok(Limits {
            long_poll_timeout_ms: env.num("DS_LONG_POLL_TIMEOUT_MS", d.long_poll_timeout_ms)?,
            sse_max_duration_ms: env.num("DS_SSE_MAX_DURATION_MS", d.sse_max_duration_ms)?,
            read_max_bytes: env.positive("DS_READ_MAX_BYTES", d.read_max_bytes)?,
            read_max_records: env.positive("DS_READ_MAX_RECORDS", d.read_max_records)?,
            append_max_body_bytes: env
                .positive("DS_APPEND_MAX_BODY_BYTES", d.append_max_body_bytes)?,
            ingest_max_queue_reqs: env
                .positive("DS_INGEST_MAX_QUEUE_REQS", d.ingest_max_queue_reqs)?,
            ingest_max_queue_bytes: env
                .positive("DS_INGEST_MAX_QUEUE_BYTES", d.ingest_max_queue_bytes)?,
            ingest_max_batch_reqs: env
                .positive("DS_INGEST_MAX_BATCH_REQS", d.ingest_max_batch_reqs)?,
            ingest_max_batch_bytes: env
                .positive("DS_INGEST_MAX_BATCH_BYTES", d.ingest_max_batch_bytes)?,
            expiry_sweep_ms: env.num("DS_EXPIRY_SWEEP_MS", d.expiry_sweep_ms)?,
            expiry_sweep_limit: env.positive("DS_EXPIRY_SWEEP_LIMIT", d.expiry_sweep_limit)?,
            read_connections: env.positive("DS_READ_CONNECTIONS", d.read_connections)?,
            metrics_flush_ms: env.num("DS_METRICS_FLUSH_MS", d.metrics_flush_ms)?,
            metrics_retention_entries: env.positive(
                "DS_METRICS_RETENTION_ENTRIES",
                d.metrics_retention_entries as usize,
            )? as u64,
            header_read_timeout_ms: env.positive(
                "DS_HEADER_READ_TIMEOUT_MS",
                d.header_read_timeout_ms as usize,
            )? as u64,
            body_read_timeout_ms: env
                .positive("DS_BODY_READ_TIMEOUT_MS", d.body_read_timeout_ms as usize)?
                as u64,
            max_header_bytes: match env.num("DS_MAX_HEADER_BYTES", d.max_header_bytes)? {
                n if n < 8192 => {
                    return Err(ConfigError(format!(
                        "DS_MAX_HEADER_BYTES must be at least 8192, got {n}"
                    )))
                }
                n => n,
            },
            max_live_readers: env.positive("DS_MAX_LIVE_READERS", d.max_live_readers)?,
        })
    }
}

impl Tiering {
    /// Reads the tiering settings and the chosen store's variables.
    pub fn from_env(
        kind: ObjectStoreKind,
        root: &std::path::Path,
        env: &Env,
    ) -> Result<Tiering, ConfigError> {
        let store = match kind {
            ObjectStoreKind::Local => ObjectStoreConfig::Local {
                dir: root.join("objects"),
            },
            ObjectStoreKind::Memory => ObjectStoreConfig::Memory,
            ObjectStoreKind::R2 => {
                let v = env.require(&[
                    "DURABLE_STREAMS_R2_BUCKET",
                    "DURABLE_STREAMS_R2_ACCOUNT_ID",
                    "DURABLE_STREAMS_R2_ACCESS_KEY_ID",
                    "DURABLE_STREAMS_R2_SECRET_ACCESS_KEY",
                ])?;
                ObjectStoreConfig::S3 {
                    bucket: v[0].clone(),
                    endpoint: format!("https://{}.r2.cloudflarestorage.com", v[1]),
                    region: "auto".into(),
                    access_key_id: v[2].clone(),
                    secret_access_key: v[3].clone(),
                    allow_http: false,
                }
            }
            ObjectStoreKind::S3 => {
                let v = env.require(&[
                    "DURABLE_STREAMS_S3_ENDPOINT",
                    "DURABLE_STREAMS_S3_BUCKET",
                    "DURABLE_STREAMS_S3_REGION",
                    "DURABLE_STREAMS_S3_ACCESS_KEY_ID",
                    "DURABLE_STREAMS_S3_SECRET_ACCESS_KEY",
                ])?;
                let endpoint = v[0].trim_end_matches('/').to_string();
                let allow_http = match endpoint.split_once("://") {
                    Some(("https", _)) => false,
                    Some(("http", rest)) => {
                        let host = rest.split(['/', '?']).next().unwrap_or("");
                        let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
                        let host = host.trim_start_matches('[').trim_end_matches(']');
                        let loopback = host == "localhost"
                            || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
                        if !loopback {
                            return Err(ConfigError(format!(
                                "DURABLE_STREAMS_S3_ENDPOINT may use plain http only for a loopback host, got {endpoint:?}"
                            )));
                        }
                        true
                    }
                    _ => {
                        return Err(ConfigError(format!(
                            "DURABLE_STREAMS_S3_ENDPOINT must be an http(s) URL, got {endpoint:?}"
                        )))
                    }
                };
                ObjectStoreConfig::S3 {
                    endpoint,
                    bucket: v[1].clone(),
                    region: v[2].clone(),
                    access_key_id: v[3].clone(),
                    secret_access_key: v[4].clone(),
                    allow_http,
                }
            }
        };
        let d = RetryPolicy::default();
        Ok(Tiering {
            store,
            segment_max_bytes: env.positive("DS_SEGMENT_MAX_BYTES", 16 << 20)? as u64,
            segment_target_rows: env.positive("DS_SEGMENT_TARGET_ROWS", 50_000)? as u64,
            segment_max_interval_ms: env.num("DS_SEGMENT_MAX_INTERVAL_MS", 60_000)?,
            block_max_bytes: env.positive("DS_BLOCK_MAX_BYTES", 256 << 10)?,
            segment_check_ms: env.positive("DS_SEGMENT_CHECK_MS", 250)? as u64,
            upload_check_ms: env.positive("DS_UPLOAD_CHECK_MS", 250)? as u64,
            upload_concurrency: env.positive("DS_UPLOAD_CONCURRENCY", 4)?,
            segment_cache_max_bytes: env.num("DS_SEGMENT_CACHE_MAX_BYTES", 256 << 20)?,
            footer_cache_entries: env.num("DS_SEGMENT_FOOTER_CACHE_ENTRIES", 2048)?,
            retry: RetryPolicy {
                timeout_ms: env.positive("DS_OBJECTSTORE_TIMEOUT_MS", d.timeout_ms as usize)?
                    as u64,
                retries: env.num("DS_OBJECTSTORE_RETRIES", d.retries)?,
                base_ms: env.positive("DS_OBJECTSTORE_RETRY_BASE_MS", d.base_ms as usize)? as u64,
                max_ms: env.positive("DS_OBJECTSTORE_RETRY_MAX_MS", d.max_ms as usize)? as u64,
            },
        })
    }
}

/// Parses a listen address: an IP literal (IPv6 may be bracketed) or `localhost`.
pub fn parse_host(what: &str, v: &str) -> Result<IpAddr, ConfigError> {
    match v {
        "localhost" => Ok(IpAddr::from([127, 0, 0, 1])),
        other => other
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| ConfigError(format!("{what} must be an IP address, got {other:?}"))),
    }
}

/// The local-mode data root: `DS_LOCAL_DATA_ROOT`, else the `prisma-dev-nodejs` data
/// directory of the platform (as the original's `env-paths`) + `durable-streams`.
pub fn local_data_root(env: &Env) -> Result<PathBuf, ConfigError> {
    if let Some(v) = env.get("DS_LOCAL_DATA_ROOT") {
        let p = PathBuf::from(v);
        return Ok(if p.is_absolute() {
            p
        } else {
            std::env::current_dir()
                .map_err(|e| ConfigError(format!("cannot resolve DS_LOCAL_DATA_ROOT: {e}")))?
                .join(p)
        });
    }
    let base = directories::BaseDirs::new().ok_or_else(|| {
        ConfigError("cannot find the home directory; set DS_LOCAL_DATA_ROOT".into())
    })?;
    let app = base.data_local_dir().join("prisma-dev-nodejs");
    let app = if cfg!(windows) { app.join("Data") } else { app };
    Ok(app.join("durable-streams"))
}

impl Config {
    /// Builds the configuration of a local-mode server whose files live in `data_dir`.
    pub fn for_local(
        data_dir: PathBuf,
        host: &str,
        port: u16,
        exit_on_stdin_eof: bool,
        allow_unauthenticated: bool,
        env: &Env,
    ) -> Result<Config, ConfigError> {
        let mut limits = Limits::from_env(env)?;
        let host = parse_host("--hostname", host)?;
        // A local server writes nothing on its own unless asked to.
        if env.get("DS_METRICS_FLUSH_MS").is_none() {
            limits.metrics_flush_ms = 0;
        }
        Ok(Config {
            host,
            port,
            db_path: data_dir.join("durable-streams.sqlite"),
            root: data_dir,
            tiering: None,
            bootstrap: false,
            bootstrap_discard_local: false,
            auto_tune: None,
            reports: Reports::default(),
            exit_on_stdin_eof,
            limits,
            auth: auth_from_env(env, host, allow_unauthenticated)?,
        })
    }

    /// Builds the full-mode configuration.
    pub fn for_server(args: &ServerArgs, env: &Env) -> Result<Config, ConfigError> {
        let (tuned_env, auto_tune) = match args.auto_tune {
            Some(budget) => {
                let (e, t) = AutoTune::apply(budget, env)?;
                (e, Some(t))
            }
            None => (env.clone(), None),
        };
        let env = &tuned_env;
        let host = parse_host("DS_HOST", env.get("DS_HOST").unwrap_or("127.0.0.1"))?;
        let port: u16 = match env.get("PORT") {
            None => 8080,
            Some(p) => p
                .parse()
                .map_err(|_| ConfigError(format!("PORT must be 0..65535, got {p:?}")))?,
        };
        let root = PathBuf::from(env.get("DS_ROOT").unwrap_or("./ds-data"));
        let db_path = env
            .get("DS_DB_PATH")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("wal.sqlite"));
        let tiering = Tiering::from_env(args.object_store, &root, env)?;
        Ok(Config {
            host,
            port,
            root,
            db_path,
            tiering: Some(tiering),
            bootstrap: args.bootstrap_from_r2,
            bootstrap_discard_local: args.bootstrap_discard_local,
            auto_tune,
            reports: Reports {
                stats: args.stats,
                hist: args.hist,
                interval_ms: env.positive("DS_STATS_INTERVAL_MS", 60_000)? as u64,
            },
            exit_on_stdin_eof: args.exit_on_stdin_eof,
            limits: Limits::from_env(env)?,
            auth: auth_from_env(env, host, args.allow_unauthenticated)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ServerArgs {
        ServerArgs {
            object_store: ObjectStoreKind::Memory,
            exit_on_stdin_eof: false,
            bootstrap_from_r2: false,
            bootstrap_discard_local: false,
            auto_tune: None,
            stats: false,
            hist: false,
            allow_unauthenticated: false,
        }
    }

    #[test]
    fn defaults() {
        let c = Config::for_server(&args(), &Env::default()).unwrap();
        assert_eq!(c.host.to_string(), "127.0.0.1");
        assert_eq!(c.port, 8080);
        assert_eq!(c.db_path, PathBuf::from("./ds-data/wal.sqlite"));
        assert_eq!(c.limits.long_poll_timeout_ms, 3000);
        assert_eq!(c.limits.append_max_body_bytes, 10 * 1024 * 1024);
    }

    #[test]
    fn bad_values_are_errors_and_empty_means_default() {
        let bad =
            |k: &str, v: &str| Config::for_server(&args(), &Env::from_pairs([(k, v)])).is_err();
        assert!(bad("PORT", "70000"));
        assert!(bad("PORT", "x"));
        assert!(bad("DS_HOST", "not a host"));
        assert!(bad("DS_READ_MAX_BYTES", "0"));
        assert!(bad("DS_LONG_POLL_TIMEOUT_MS", "-5"));
        let c = Config::for_server(
            &args(),
            &Env::from_pairs([("PORT", " "), ("DS_HOST", "::1")]),
        )
        .unwrap();
        assert_eq!(c.port, 8080);
        assert_eq!(c.host.to_string(), "::1");
    }

    #[test]
    fn non_loopback_needs_auth_or_an_acknowledgement() {
        let env = Env::from_pairs([("DS_HOST", "0.0.0.0")]);
        assert!(Config::for_server(&args(), &env).is_err());
        let allow = ServerArgs {
            allow_unauthenticated: true,
            ..args()
        };
        assert!(Config::for_server(&allow, &env).unwrap().auth.is_none());
        let env = Env::from_pairs([
            ("DS_HOST", "0.0.0.0"),
            ("DS_AUTH_TOKEN", "0123456789abcdef"),
        ]);
        let c = Config::for_server(&args(), &env).unwrap();
        assert_eq!(c.auth.unwrap().as_bytes(), b"0123456789abcdef");
        assert!(!format!("{:?}", AuthToken::new("0123456789abcdef")).contains("0123"));
        assert!(AuthToken::new("with space 0123456789").is_err());
    }

    #[test]
    fn object_store_variables_are_checked() {
        let with = |kind, pairs: &[(&str, &str)]| {
            let a = ServerArgs {
                object_store: kind,
                ..args()
            };
            Config::for_server(&a, &Env::from_pairs(pairs.iter().copied()))
        };
        let e = with(ObjectStoreKind::R2, &[("DURABLE_STREAMS_R2_BUCKET", "b")]).unwrap_err();
        assert!(
            e.0.contains("DURABLE_STREAMS_R2_ACCOUNT_ID") && e.0.contains("SECRET_ACCESS_KEY"),
            "{e}"
        );
        assert!(!e.0.contains("R2_BUCKET"), "{e}");
        let s3 = |endpoint: &'static str| {
            with(
                ObjectStoreKind::S3,
                &[
                    ("DURABLE_STREAMS_S3_ENDPOINT", endpoint),
                    ("DURABLE_STREAMS_S3_BUCKET", "b"),
                    ("DURABLE_STREAMS_S3_REGION", "us-east-1"),
                    ("DURABLE_STREAMS_S3_ACCESS_KEY_ID", "k"),
                    ("DURABLE_STREAMS_S3_SECRET_ACCESS_KEY", "s"),
                ],
            )
        };
        assert!(s3("http://127.0.0.1:9000").is_ok());
        assert!(s3("http://localhost:9000/").is_ok());
        assert!(s3("https://s3.example.com").is_ok());
        assert!(
            s3("http://s3.example.com").is_err(),
            "plain http only on loopback"
        );
        assert!(s3("ftp://x").is_err());
        let c = with(ObjectStoreKind::Local, &[("DS_ROOT", "/data")]).unwrap();
        assert_eq!(
            c.tiering.unwrap().store,
            ObjectStoreConfig::Local {
                dir: PathBuf::from("/data/objects")
            }
        );
    }

    #[test]
    fn auto_tune_scales_with_the_budget_and_explicit_values_win() {
        let env = Env::from_pairs([("DS_READ_CONNECTIONS", "3")]);
        let (small_env, small) = AutoTune::apply(300, &env).unwrap();
        let (big_env, big) = AutoTune::apply(5000, &env).unwrap();
        assert_eq!((small.preset_mb, big.preset_mb), (256, 4096));
        let small_l = Limits::from_env(&small_env).unwrap();
        let big_l = Limits::from_env(&big_env).unwrap();
        assert!(small_l.ingest_max_queue_bytes < big_l.ingest_max_queue_bytes);
        assert!(small_l.ingest_max_batch_bytes < big_l.ingest_max_batch_bytes);
        assert_eq!(
            (small_l.read_connections, big_l.read_connections),
            (3, 3),
            "env wins"
        );
        assert!(small.describe().contains("DS_READ_CONNECTIONS=3 (env)"));
        assert!(AutoTune::apply(10, &env).is_err());
    }

    #[test]
    fn unknown_ds_vars_are_listed() {
        let env = Env::from_pairs([("DS_NOPE", "1"), ("DS_ROOT", "/x"), ("HOME", "/")]);
        assert_eq!(env.unknown_ds_vars(), vec!["DS_NOPE".to_string()]);
    }
}
