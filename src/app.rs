//! Composition root: builds the engine and service, binds the listener, prints the
//! readiness line, runs background tasks, and shuts everything down in order.

use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::engine::Engine;
use crate::http::{router, AppState};
use crate::service::StreamService;

/// How long in-flight requests (long-polls, SSE) get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Startup failures.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open storage: {0}")]
    Storage(#[from] crate::engine::EngineError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

/// The readiness message printed once on stdout.
pub fn ready_line(addr: SocketAddr, sqlite: &std::path::Path, name: Option<&str>) -> String {
    let url = format!("http://{addr}");
    let mut exports = serde_json::Map::new();
    if let Some(n) = name {
        exports.insert("name".into(), n.into());
    }
    exports.insert("pid".into(), std::process::id().into());
    exports.insert(
        "http".into(),
        serde_json::json!({ "url": url, "port": addr.port() }),
    );
    exports.insert(
        "sqlite".into(),
        serde_json::json!({ "path": sqlite.display().to_string() }),
    );
    serde_json::json!({ "type": "ready", "exports": exports }).to_string()
}

/// Runs a full-mode server until `shutdown` resolves.
pub async fn run_server(
    config: Config,
    clock: SharedClock,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AppError> {
    std::fs::create_dir_all(&config.root).map_err(|source| AppError::DataDir {
        path: config.root.clone(),
        source,
    })?;
    let engine = Engine::open(config.db_path.clone(), &config.limits, clock)?;
    let service = StreamService::new(engine.clone(), config.limits.clone());

    let addr = SocketAddr::new(config.host, config.port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Bind { addr, source })?;
    let local = listener.local_addr().map_err(AppError::Serve)?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let sweeper = spawn_sweeper(
        service.clone(),
        config.limits.expiry_sweep_ms,
        stop_rx.clone(),
    );

    let app = router(AppState {
        service: service.clone(),
    });
    let mut graceful_rx = stop_rx.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = graceful_rx.wait_for(|s| *s).await;
            })
            .await
    });

    let db_path = std::fs::canonicalize(&config.db_path).unwrap_or_else(|_| config.db_path.clone());
    let line = ready_line(local, &db_path, None);
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
    tracing::info!(%local, db = %config.db_path.display(), "prisma-streams server listening");

    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "server stopped with an error"),
        Ok(_) => {}
        Err(_) => tracing::info!("in-flight requests did not finish in time; closing them"),
    }
    sweeper.abort();
    // Commits everything already queued, then stops the writer thread.
    tokio::task::spawn_blocking(move || engine.shutdown())
        .await
        .map_err(|e| AppError::Serve(std::io::Error::other(e)))?;
    Ok(())
}

fn spawn_sweeper(
    service: StreamService,
    every_ms: u64,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if every_ms == 0 {
            return;
        }
        let mut tick = tokio::time::interval(Duration::from_millis(every_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            match service.sweep_expired().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(streams = n, "reclaimed expired streams"),
                Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
            }
        }
    })
}

/// Resolves on SIGTERM, SIGINT, or (if asked) end of standard input.
pub async fn shutdown_signal(exit_on_stdin_eof: bool) {
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
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
        _ = stdin_eof => {}
    }
}
