//! One validated [`Config`] built from the command line and the environment. This is the
//! only module that reads environment variables; everything else receives settings.
//!
//! Every variable is a row of the knob table ([`knobs::KNOBS`]), which gives its default.
//! The settings are split by concern: [`Limits`] (both server modes), [`Tiering`] and
//! [`RetryPolicy`] (full mode's object store), [`AuthToken`], [`AutoTune`].

mod auth;
mod autotune;
mod env;
pub mod knobs;
mod limits;
mod store;
mod subscriptions;

use std::net::IpAddr;
use std::path::PathBuf;

use crate::cli::ServerArgs;

pub use auth::AuthToken;
use auth::{auth_from_env, AuthFlag};
pub use autotune::{AutoTune, AUTO_TUNE_PRESETS, LOCAL_AUTO_TUNE_PRESET_MB};
pub use env::Env;
pub use knobs::{Knob, KNOBS};
pub use limits::Limits;

pub use store::{ObjectStoreConfig, RetryPolicy, Tiering};
pub use subscriptions::SubscriptionSettings;

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
    /// Retention of ordinary streams (local mode only; off by default).
    pub retention: Retention,
}

/// `DS_RETENTION_*`: how much of each stream a local server keeps, and how often it trims.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub policy: RetentionPolicy,
    pub check_ms: u64,
}

/// How much a stream keeps; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub max_age_ms: Option<u64>,
    pub max_bytes: Option<u64>,
}

impl RetentionPolicy {
    pub fn is_off(&self) -> bool {
        self.max_age_ms.is_none() && self.max_bytes.is_none()
    }
}

impl Retention {
    fn from_env(env: &Env) -> Result<Retention, ConfigError> {
        let opt = |knob: &Knob| -> Result<Option<u64>, ConfigError> {
            env.get(knob.name).map(|_| env.num(knob)).transpose()
        };
        Ok(Retention {
            policy: RetentionPolicy {
                max_age_ms: opt(&knobs::DS_RETENTION_MAX_AGE_MS)?,
                max_bytes: opt(&knobs::DS_RETENTION_MAX_BYTES)?,
            },
            check_ms: env.positive(&knobs::DS_RETENTION_CHECK_MS)?,
        })
    }
}

/// Periodic reports on stderr (`--stats`, `--hist`).
#[derive(Debug, Clone, Default)]
pub struct Reports {
    pub stats: bool,
    pub hist: bool,
    /// `DS_STATS_INTERVAL_MS`.
    pub interval_ms: u64,
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
    if let Some(v) = env.get(knobs::DS_LOCAL_DATA_ROOT.name) {
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
        // The fixed local preset, as in the original; variables set explicitly win.
        let (tuned, auto_tune) = AutoTune::apply(LOCAL_AUTO_TUNE_PRESET_MB, env)?;
        let mut limits = Limits::from_env(&tuned)?;
        let host = parse_host("--hostname", host)?;
        // A local server writes nothing on its own unless asked to.
        if env.get(knobs::DS_METRICS_FLUSH_MS.name).is_none() {
            limits.metrics_flush_ms = 0;
        }
        // A local server is a development tool: it POSTs webhooks to loopback only.
        limits.subscriptions.loopback_only = true;
        Ok(Config {
            host,
            port,
            db_path: data_dir.join("durable-streams.sqlite"),
            root: data_dir,
            tiering: None,
            bootstrap: false,
            bootstrap_discard_local: false,
            auto_tune: Some(auto_tune),
            reports: Reports::default(),
            exit_on_stdin_eof,
            limits,
            auth: auth_from_env(env, host, allow_unauthenticated, AuthFlag::Default)?,
            retention: Retention::from_env(env)?,
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
        let host = parse_host("DS_HOST", env.text(&knobs::DS_HOST))?;
        let port = env.text(&knobs::PORT);
        let port: u16 = port
            .parse()
            .map_err(|_| ConfigError(format!("PORT must be 0..65535, got {port:?}")))?;
        let root = PathBuf::from(env.text(&knobs::DS_ROOT));
        let db_path = env
            .get(knobs::DS_DB_PATH.name)
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
                interval_ms: env.positive(&knobs::DS_STATS_INTERVAL_MS)?,
            },
            exit_on_stdin_eof: args.exit_on_stdin_eof,
            limits: Limits::from_env(env)?,
            auth: auth_from_env(
                env,
                host,
                args.allow_unauthenticated,
                match (args.no_auth, args.auth_strategy) {
                    (true, _) => AuthFlag::NoAuth,
                    (false, Some(crate::cli::AuthStrategy::ApiKey)) => AuthFlag::ApiKey,
                    (false, None) => AuthFlag::Default,
                },
            )?,
            retention: Retention::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::ObjectStoreKind;

    fn args() -> ServerArgs {
        ServerArgs::memory()
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
    fn local_mode_flushes_no_metrics_unless_asked() {
        let dir = PathBuf::from("/tmp/x");
        let local = |env: &Env| Config::for_local(dir.clone(), "localhost", 0, false, false, env);
        let c = local(&Env::default()).unwrap();
        assert_eq!(c.limits.metrics_flush_ms, 0);
        assert!(c.tiering.is_none());
        assert_eq!(c.db_path, dir.join("durable-streams.sqlite"));
        let c = local(&Env::from_pairs([("DS_METRICS_FLUSH_MS", "5")])).unwrap();
        assert_eq!(c.limits.metrics_flush_ms, 5);
        assert_eq!(Limits::default().metrics_flush_ms, 10_000);
    }

    #[test]
    fn retention_is_off_unless_asked_and_only_in_local_mode() {
        let dir = PathBuf::from("/tmp/x");
        let local = |env: &Env| Config::for_local(dir.clone(), "localhost", 0, false, false, env);
        let c = local(&Env::default()).unwrap();
        assert!(c.retention.policy.is_off());
        assert_eq!(c.retention.check_ms, 60_000);
        let env = Env::from_pairs([
            ("DS_RETENTION_MAX_BYTES", "1000"),
            ("DS_RETENTION_MAX_AGE_MS", "0"),
            ("DS_RETENTION_CHECK_MS", "50"),
        ]);
        let c = local(&env).unwrap();
        assert_eq!(c.retention.policy.max_bytes, Some(1000));
        assert_eq!(c.retention.policy.max_age_ms, Some(0));
        assert_eq!(c.retention.check_ms, 50);
        let e = local(&Env::from_pairs([("DS_RETENTION_MAX_BYTES", "1GB")])).unwrap_err();
        assert!(e.0.contains("DS_RETENTION_MAX_BYTES"), "{e}");
        let c = Config::for_server(&args(), &env).unwrap();
        assert!(c.retention.policy.is_off(), "full mode keeps everything");
    }

    #[test]
    fn local_mode_applies_the_fixed_preset_and_explicit_values_win() {
        let dir = PathBuf::from("/tmp/x");
        let local = |env: &Env| Config::for_local(dir.clone(), "localhost", 0, false, false, env);
        let c = local(&Env::default()).unwrap();
        let t = c.auto_tune.unwrap();
        assert_eq!((t.budget_mb, t.preset_mb), (1024, 1024));
        assert_eq!(c.limits.ingest_max_batch_bytes, 16 << 20);
        let c = local(&Env::from_pairs([("DS_INGEST_MAX_BATCH_BYTES", "1000")])).unwrap();
        assert_eq!(c.limits.ingest_max_batch_bytes, 1000);
    }
}
