//! Logging: structured `tracing` output on stderr (stdout carries only the readiness line).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `filter` uses `EnvFilter` syntax (`info`,
/// `prisma_streams=debug`, ...); an invalid filter falls back to `info` with a warning.
pub fn init(filter: &str) {
    let (f, bad) = match EnvFilter::try_new(filter) {
        Ok(f) => (f, false),
        Err(_) => (EnvFilter::new("info"), true),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(f)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        // A supervisor that died leaves stderr broken: never report that by panicking.
        .log_internal_errors(false)
        .try_init();
    if bad {
        tracing::warn!(filter, "invalid log filter; using 'info'");
    }
}
