//! Composition root: builds the engine and service, binds the listener, runs background
//! tasks, and shuts everything down in order. Full and local mode share it; they differ
//! in the [`Config`] and in what they do once the listener is bound.

use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::clock::SharedClock;
use crate::config::Config;
use std::sync::Arc;

use crate::engine::tier::Tier;
use crate::engine::{bootstrap, Engine};
use crate::health::{task, Health};
use crate::http::{app, AppState};
use crate::lock::{DataDirLock, DataDirLockError};
use crate::objstore::Store;
use crate::service::StreamService;

/// How long in-flight requests (long-polls, SSE) get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Startup and serving failures.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Another process serves this data directory (exit code 3).
    #[error(transparent)]
    Locked(#[from] DataDirLockError),
    #[error("cannot open storage: {0}")]
    Storage(#[from] crate::engine::EngineError),
    #[error(transparent)]
    Bootstrap(#[from] bootstrap::BootstrapError),
    #[error("cannot set up the object store: {0}")]
    ObjectStore(#[from] crate::objstore::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Serve(std::io::Error),
    #[error("{component} failed: {cause}")]
    Fatal {
        component: &'static str,
        cause: String,
    },
}

impl AppError {
    /// True when the listen address is taken by another process.
    pub fn is_addr_in_use(&self) -> bool {
        matches!(self, AppError::Bind { source, .. } if source.kind() == std::io::ErrorKind::AddrInUse)
    }

    /// The full-mode exit code: 3 when another process holds the data directory, else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Locked(DataDirLockError::InUse { .. }) => 3,
            _ => 1,
        }
    }
}

/// The URL clients use for a bound address (IPv6 literals bracketed).
pub fn http_url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// The readiness message printed once on stdout.
pub fn ready_line(addr: SocketAddr, sqlite: &Path, name: Option<&str>) -> String {
    let mut exports = serde_json::Map::new();
    if let Some(n) = name {
        exports.insert("name".into(), n.into());
    }
    exports.insert("pid".into(), std::process::id().into());
    exports.insert(
        "http".into(),
        serde_json::json!({ "url": http_url(addr), "port": addr.port() }),
    );
    exports.insert(
        "sqlite".into(),
        serde_json::json!({ "path": sqlite.display().to_string() }),
    );
    serde_json::json!({ "type": "ready", "exports": exports }).to_string()
}

/// Prints the readiness line; nothing else is ever written to stdout.
pub fn announce(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// A server whose storage is open and whose listener is bound, not yet serving.
pub struct BoundServer {
    config: Config,
    engine: Engine,
    service: StreamService,
    listener: TcpListener,
    addr: SocketAddr,
    db_path: PathBuf,
    /// Held until `serve` returns: no other process opens this data directory meanwhile.
    lock: DataDirLock,
}

/// Creates the data directory and takes its lock ([`DataDirLock`]).
pub fn lock_data_dir(config: &Config) -> Result<DataDirLock, AppError> {
    std::fs::create_dir_all(&config.root).map_err(|source| AppError::DataDir {
        path: config.root.clone(),
        source,
    })?;
    Ok(DataDirLock::acquire(&config.root, &config.db_path)?)
}

impl BoundServer {
    /// Locks the data directory, opens storage and binds the listener.
    pub async fn bind(config: Config, clock: SharedClock) -> Result<BoundServer, AppError> {
        Self::bind_with_store(config, clock, None).await
    }

    /// Like [`BoundServer::bind`], with an object-store client built by the caller instead
    /// of from the configuration (tests wrap a real store to inject faults).
    pub async fn bind_with_store(
        config: Config,
        clock: SharedClock,
        store: Option<Store>,
    ) -> Result<BoundServer, AppError> {
        let lock = lock_data_dir(&config)?;
        raise_open_files_limit();
        Self::open(config, clock, store, lock).await
    }

    /// Like [`BoundServer::bind`], under a lock the caller took with [`lock_data_dir`]
    /// (local mode, which reports a running server its own way).
    pub async fn bind_locked(
        config: Config,
        clock: SharedClock,
        lock: DataDirLock,
    ) -> Result<BoundServer, AppError> {
        Self::open(config, clock, None, lock).await
    }

    async fn open(
        config: Config,
        clock: SharedClock,
        store: Option<Store>,
        lock: DataDirLock,
    ) -> Result<BoundServer, AppError> {
        let tier = match &config.tiering {
            None => None,
            Some(t) => {
                let store = match store {
                    Some(s) => s,
                    None => Store::build(&t.store, t.retry)?,
                };
                if config.bootstrap {
                    let s = bootstrap::run(
                        &config.db_path,
                        &config.root,
                        &store,
                        clock.now_ms(),
                        config.bootstrap_discard_local,
                    )
                    .await?;
                    tracing::info!(
                        streams = s.streams,
                        segments = s.segments,
                        skipped = s.skipped,
                        "bootstrapped from the object store"
                    );
                    if let Some(b) = &s.backup {
                        let segments = s.segments_backup.as_deref().map(Path::display);
                        tracing::warn!(
                            database = %b.display(),
                            segments = segments.map(tracing::field::display),
                            "the replaced database is kept; delete it when no longer needed"
                        );
                    }
                }
                Some(Arc::new(Tier::new(store, t.clone(), &config.root)))
            }
        };
        let health = Health::new(clock.clone());
        let engine = Engine::open(config.db_path.clone(), &config.limits, tier, clock, health)?;
        let service = StreamService::new(engine.clone(), config.limits.clone());
        let want = SocketAddr::new(config.host, config.port);
        let listener = match TcpListener::bind(want).await {
            Ok(l) => l,
            Err(source) => {
                let engine = engine.clone();
                let _ = tokio::task::spawn_blocking(move || engine.shutdown()).await;
                return Err(AppError::Bind { addr: want, source });
            }
        };
        let addr = listener.local_addr().map_err(AppError::Serve)?;
        let db_path =
            std::fs::canonicalize(&config.db_path).unwrap_or_else(|_| config.db_path.clone());
        Ok(BoundServer {
            config,
            engine,
            service,
            listener,
            addr,
            db_path,
            lock,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Absolute path of the SQLite database.
    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// Serves until `shutdown` resolves, then stops in order and releases the lock.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let (served, lock) = self.serve_holding_lock(shutdown).await;
        drop(lock);
        served
    }

    /// Like [`BoundServer::serve`], but hands the data-directory lock back: the caller can
    /// tidy up before another process may start on the directory.
    pub async fn serve_holding_lock(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> (Result<(), AppError>, DataDirLock) {
        let BoundServer {
            config,
            engine,
            service,
            listener,
            addr,
            lock,
            ..
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let health = engine.health().clone();
        if let Err(e) = engine.start_background(stop_rx.clone()).await {
            return (Err(e.into()), lock);
        }
        let reporter = health.spawn(
            "stats-reporter",
            task(crate::telemetry::report::run(
                Duration::from_millis(config.reports.interval_ms.max(1)),
                config.reports.stats,
                config.reports.hist,
                stop_rx.clone(),
            )),
        );
        let emitter = health.spawn(
            "metrics-emitter",
            task(emit_metrics(
                service.clone(),
                config.limits.metrics_flush_ms,
                config.limits.metrics_retention_entries,
                stop_rx.clone(),
            )),
        );
        // Subscribed here, before the server takes requests, so no commit is missed.
        let toucher = health.spawn(
            "touch-processor",
            task(crate::service::touch::processor::run(
                service.clone(),
                engine.commit_feed(),
                stop_rx.clone(),
            )),
        );
        let subscriber = health.spawn(
            "subscriptions",
            task(crate::service::subscriptions::delivery::run(
                service.subscriptions().clone(),
                engine.commit_feed(),
                stop_rx.clone(),
            )),
        );
        let sweeper = health.spawn(
            "expiry-sweeper",
            Box::pin(sweep_expired(
                service.clone(),
                config.limits.expiry_sweep_ms,
                stop_rx.clone(),
            )),
        );
        let retention = health.spawn(
            "retention",
            Box::pin(apply_retention(
                service.clone(),
                config.retention,
                stop_rx.clone(),
            )),
        );
        let request_ids = crate::telemetry::request_id::RequestIds::new(
            engine.clock().random_in(0, u64::from(u32::MAX)),
        );
        let app = app(AppState {
            service,
            db_path: config.db_path.clone(),
            started: crate::clock::monotonic(),
            auth: config.auth.clone(),
            request_ids,
            health: health.clone(),
            server: crate::service::server_details::ServerSummary::of(&config),
        });
        let server = health.spawn_critical(
            "http-server",
            task(serve_connections(
                listener,
                app,
                config.limits.clone(),
                stop_rx,
            )),
        );
        tracing::info!(%addr, db = %config.db_path.display(), "prisma-streams listening");

        let fatal = tokio::select! {
            _ = shutdown => None,
            f = health.fatal() => Some(f),
        };
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
        if tokio::time::timeout(SHUTDOWN_GRACE, server).await.is_err() {
            tracing::info!("in-flight requests did not finish in time; closing them");
        }
        sweeper.abort();
        retention.abort();
        toucher.abort();
        subscriber.abort();
        reporter.abort();
        emitter.abort();
        // The segmenter and uploader finish the step they are in (their results still
        // need the writer), then the writer commits what is queued and stops.
        engine.join_background().await;
        let stopped = tokio::task::spawn_blocking(move || engine.shutdown())
            .await
            .map_err(|e| AppError::Serve(std::io::Error::other(e)));
        let served = match (stopped, fatal) {
            (Err(e), _) => Err(e),
            (Ok(()), None) => Ok(()),
            (Ok(()), Some(f)) => Err(AppError::Fatal {
                component: f.component,
                cause: f.cause,
            }),
        };
        (served, lock)
    }
}

/// Accepts HTTP/1.1 connections until `stop` turns true, then waits for the open ones to
/// finish their current request. Slow or oversized request headers are cut off by hyper
/// (`DS_HEADER_READ_TIMEOUT_MS`, `DS_MAX_HEADER_BYTES`: 408 / 431).
async fn serve_connections(
    listener: TcpListener,
    app: crate::http::Observe,
    limits: crate::config::Limits,
    mut stop: watch::Receiver<bool>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms))
        .max_buf_size(limits.max_header_bytes)
        .keep_alive(true);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                crate::clock::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // Clients that go away, time out or send garbage end here: not worth a log line.
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Raises the soft limit of open files to the hard limit: every waiting long-poll, SSE
/// reader and `touch/wait` holds a connection, and the usual soft limit (1024) is far
/// below what the server is meant to hold. Failure only leaves the limit as it was.
#[allow(unsafe_code)] // two libc calls on a local struct
pub fn raise_open_files_limit() {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
                lim.rlim_cur = lim.rlim_max;
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    tracing::debug!("cannot raise the open files limit");
                }
            }
        }
    }
}

/// Runs a full-mode server until `shutdown` resolves.
pub async fn run_server(
    config: Config,
    clock: SharedClock,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AppError> {
    let bound = BoundServer::bind(config, clock).await?;
    announce(&ready_line(bound.addr(), bound.db_path(), None));
    bound.serve(shutdown).await
}

/// The internal stream that receives a metrics event every `DS_METRICS_FLUSH_MS`.
pub const METRICS_STREAM: &str = "__stream_metrics__";

/// Appends one JSON event per interval to [`METRICS_STREAM`]: counter increases over the
/// interval, current gauges and process figures. The stream keeps the newest
/// `keep` events.
async fn emit_metrics(
    service: StreamService,
    every_ms: u64,
    keep: u64,
    mut stop: watch::Receiver<bool>,
) {
    use crate::telemetry::metrics::{counter_series, gauge_series};
    use crate::telemetry::process;
    if every_ms == 0 {
        return;
    }
    if let Err(e) = service.ensure_internal_stream(METRICS_STREAM).await {
        tracing::warn!(error = %e, "cannot create {METRICS_STREAM}");
        return;
    }
    let clock = service.engine().clock().clone();
    let instance = std::process::id();
    let mut prev: std::collections::HashMap<String, f64> = counter_series().into_iter().collect();
    let mut window_start = clock.now_ms();
    let period = Duration::from_millis(every_ms);
    let mut tick = tokio::time::interval_at(crate::clock::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let now = clock.now_ms();
        let mut counters = serde_json::Map::new();
        for (name, v) in counter_series() {
            let d = v - prev.get(&name).copied().unwrap_or(0.0);
            if d != 0.0 {
                counters.insert(name.clone(), d.into());
            }
            prev.insert(name, v);
        }
        let gauges: serde_json::Map<String, serde_json::Value> = gauge_series()
            .into_iter()
            .map(|(k, v)| (k, v.into()))
            .collect();
        let event = serde_json::json!({
            "apiVersion": "prisma-streams/metrics/v1",
            "kind": "interval",
            "windowStart": window_start,
            "windowEnd": now,
            "intervalMs": every_ms,
            "instance": instance,
            "counters": counters,
            "gauges": gauges,
            "process": {
                "rssBytes": process::rss_bytes(),
                "cpuSeconds": process::cpu_seconds(),
            },
        });
        window_start = now;
        if let Err(e) = service
            .append_internal(METRICS_STREAM, event.to_string().into_bytes(), keep)
            .await
        {
            tracing::warn!(error = %e, "cannot append to {METRICS_STREAM}");
        }
    }
}

/// Reclaims expired streams and collects idle producer state every `every_ms` (0: never)
/// until `stop`.
/// Local mode's retention (`DS_RETENTION_*`): trims every stream each check interval.
/// Off (returns at once) unless a limit is set; an idle server with nothing to trim
/// writes nothing.
async fn apply_retention(
    service: StreamService,
    retention: crate::config::Retention,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    if retention.policy.is_off() {
        return Ok(());
    }
    let mut tick = tokio::time::interval(Duration::from_millis(retention.check_ms.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return Ok(()),
        }
        match service.apply_retention(retention.policy).await {
            Ok((0, _)) => {}
            Ok((entries, bytes)) => tracing::info!(entries, bytes, "retention trimmed streams"),
            Err(e) => tracing::warn!(error = %e, "retention failed"),
        }
    }
}

async fn sweep_expired(
    service: StreamService,
    every_ms: u64,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    if every_ms == 0 {
        return Ok(());
    }
    let mut tick = tokio::time::interval(Duration::from_millis(every_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return Ok(()),
        }
        match service.sweep_expired().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(streams = n, "reclaimed expired streams"),
            Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
        }
        // Idle producer state, one bounded writer call at a time until none is left.
        let batch = service.limits().expiry_sweep_limit;
        let mut collected = 0;
        loop {
            match service.collect_producers().await {
                Ok(n) => {
                    collected += n;
                    if n < batch || *stop.borrow() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "collecting idle producer state failed");
                    break;
                }
            }
        }
        if collected > 0 {
            tracing::info!(producers = collected, "collected idle producer state");
        }
    }
}

/// A future that resolves on SIGTERM, SIGINT, or (if asked) end of standard input. The
/// signal handlers are installed when this is called, so call it before announcing
/// readiness: a supervisor may signal right after reading the readiness line.
pub fn shutdown_signal(exit_on_stdin_eof: bool) -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        let stdin_eof = async move {
            if !exit_on_stdin_eof {
                return std::future::pending::<()>().await;
            }
            use tokio::io::AsyncReadExt as _;
            let mut stdin = tokio::io::stdin();
            let mut buf = [0u8; 256];
            loop {
                match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        };
        #[cfg(unix)]
        let signalled = async move {
            let (mut term, mut int) = signals;
            let term = async {
                match term.as_mut() {
                    Some(s) => drop(s.recv().await),
                    None => std::future::pending::<()>().await,
                }
            };
            let int = async {
                match int.as_mut() {
                    Some(s) => drop(s.recv().await),
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = term => {}
                _ = int => {}
            }
        };
        #[cfg(not(unix))]
        let signalled = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        tokio::select! {
            _ = signalled => {}
            _ = stdin_eof => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::ServerArgs;
    use crate::config::Env;

    /// A fatal failure (here: the writer thread panics) stops the server, which returns
    /// the failure so that the process exits non-zero.
    #[tokio::test]
    async fn a_fatal_failure_stops_the_server_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let args = ServerArgs::memory();
        let root = dir.path().display().to_string();
        let env = Env::from_pairs([("DS_ROOT", root.as_str()), ("PORT", "0")]);
        let config = Config::for_server(&args, &env).unwrap();
        let bound = BoundServer::bind(config, Arc::new(crate::clock::SystemClock))
            .await
            .unwrap();
        let engine = bound.engine.clone();
        let served = tokio::spawn(bound.serve(std::future::pending()));
        let r = engine
            .writer()
            .call(
                crate::engine::writer::Submit::internal(),
                |_| -> Result<(), crate::engine::EngineError> { panic!("injected") },
            )
            .await;
        assert!(r.is_err());
        match served.await.unwrap() {
            Err(AppError::Fatal { component, cause }) => {
                assert_eq!(component, "writer");
                assert!(cause.contains("injected"), "{cause}");
            }
            other => panic!("expected a fatal error, got {other:?}"),
        }
    }
}
