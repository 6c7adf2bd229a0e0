//! Logging and metrics. Logs are structured `tracing` events on stderr (stdout carries
//! only the readiness line) and, with `DS_LOG_DIR`, also in rolling files written by a
//! background thread. Metrics live in [`metrics`].

pub mod metrics;
pub mod process;
pub mod report;
pub mod request_id;

use std::path::PathBuf;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// Where and how to write log files.
#[derive(Debug, Clone)]
pub struct LogFiles {
    pub dir: PathBuf,
    pub rotation: Rotation,
    /// Files kept; older ones are deleted at rotation.
    pub max_files: usize,
}

/// Keeps the file writer's background thread alive; dropping it flushes the logs.
pub struct LogGuard(#[allow(dead_code)] Option<WorkerGuard>);

/// Installs the global subscriber. `filter` uses `EnvFilter` syntax (`info`,
/// `prisma_streams=debug`, ...); an invalid filter falls back to `info` with a warning.
pub fn init(filter: &str, files: Option<LogFiles>) -> LogGuard {
    let make_filter = || EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let bad = EnvFilter::try_new(filter).is_err();
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        // A supervisor that died leaves stderr broken: never report that by panicking.
        .log_internal_errors(false)
        .with_filter(make_filter());
    let mut guard = None;
    let mut file_error = None;
    let file_layer = files.and_then(|f| {
        if let Err(e) = std::fs::create_dir_all(&f.dir) {
            file_error = Some(format!("cannot create {}: {e}", f.dir.display()));
            return None;
        }
        let appender = RollingFileAppender::builder()
            .rotation(f.rotation)
            .filename_prefix("prisma-streams")
            .filename_suffix("log")
            .max_log_files(f.max_files.max(1))
            .build(&f.dir);
        match appender {
            Ok(a) => {
                let (writer, g) = tracing_appender::non_blocking(a);
                guard = Some(g);
                Some(
                    tracing_subscriber::fmt::layer()
                        .with_writer(writer)
                        .with_ansi(false)
                        .with_target(false)
                        .log_internal_errors(false)
                        .with_filter(make_filter()),
                )
            }
            Err(e) => {
                file_error = Some(format!("cannot write logs to {}: {e}", f.dir.display()));
                None
            }
        }
    });
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file_layer)
        .try_init();
    if bad {
        tracing::warn!(filter, "invalid log filter; using 'info'");
    }
    if let Some(e) = file_error {
        tracing::warn!("{e}");
    }
    LogGuard(guard)
}
