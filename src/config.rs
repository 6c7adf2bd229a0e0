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

/// Settings of a full-mode server.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: IpAddr,
    pub port: u16,
    pub root: PathBuf,
    pub db_path: PathBuf,
    /// `None` in local mode, which never uses an object store.
    pub object_store: Option<ObjectStoreKind>,
    pub exit_on_stdin_eof: bool,
    pub limits: Limits,
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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            long_poll_timeout_ms: 3000,
            sse_max_duration_ms: 60_000,
            read_max_bytes: 1024 * 1024,
            read_max_records: 1000,
            append_max_body_bytes: 10 * 1024 * 1024,
            ingest_max_queue_reqs: 50_000,
            ingest_max_queue_bytes: 64 * 1024 * 1024,
            ingest_max_batch_reqs: 1000,
            ingest_max_batch_bytes: 8 * 1024 * 1024,
            expiry_sweep_ms: 60_000,
            expiry_sweep_limit: 100,
            read_connections: 4,
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
];

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
        env: &Env,
    ) -> Result<Config, ConfigError> {
        Ok(Config {
            host: parse_host("--hostname", host)?,
            port,
            db_path: data_dir.join("durable-streams.sqlite"),
            root: data_dir,
            object_store: None,
            exit_on_stdin_eof,
            limits: Limits::from_env(env)?,
        })
    }

    /// Builds the full-mode configuration.
    pub fn for_server(args: &ServerArgs, env: &Env) -> Result<Config, ConfigError> {
        let host_s = env.get("DS_HOST").unwrap_or("127.0.0.1");
        let host: IpAddr = match host_s {
            "localhost" => IpAddr::from([127, 0, 0, 1]),
            other => other
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| {
                    ConfigError(format!("DS_HOST must be an IP address, got {other:?}"))
                })?,
        };
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
        Ok(Config {
            host,
            port,
            root,
            db_path,
            object_store: Some(args.object_store),
            exit_on_stdin_eof: args.exit_on_stdin_eof,
            limits: Limits::from_env(env)?,
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
    fn unknown_ds_vars_are_listed() {
        let env = Env::from_pairs([("DS_NOPE", "1"), ("DS_ROOT", "/x"), ("HOME", "/")]);
        assert_eq!(env.unknown_ds_vars(), vec!["DS_NOPE".to_string()]);
    }
}
