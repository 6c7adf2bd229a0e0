//! Command-line definition (clap derive). Values that also come from the environment are
//! resolved in `config.rs`, never here.

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "prisma-streams",
    version,
    about = "Durable Streams server: append-only HTTP streams backed by SQLite and an object store",
    long_about = "Durable Streams server: append-only HTTP streams backed by SQLite and an object store.\n\n\
                  Environment: DS_HOST (default 127.0.0.1), PORT (default 8080, 0 = any free port),\n\
                  DS_ROOT (default ./ds-data), DS_LONG_POLL_TIMEOUT_MS (default 3000) and the DS_*\n\
                  tuning variables listed in the README."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the full-mode server (SQLite + object store).
    Server(ServerArgs),
}

/// Where segments and manifests go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ObjectStoreKind {
    /// A directory under DS_ROOT (persistent).
    Local,
    /// Cloudflare R2 (DURABLE_STREAMS_R2_* variables).
    R2,
    /// Any S3-compatible endpoint (DURABLE_STREAMS_S3_* variables).
    S3,
    /// In memory, lost on exit (tests).
    Memory,
}

#[derive(Debug, Clone, Args)]
#[command(after_long_help = "Environment:\n  \
    DS_HOST                   address to bind (default 127.0.0.1)\n  \
    PORT                      port to bind (default 8080; 0 picks a free port)\n  \
    DS_ROOT                   data directory (default ./ds-data)\n  \
    DS_DB_PATH                SQLite file (default $DS_ROOT/wal.sqlite)\n  \
    DS_LONG_POLL_TIMEOUT_MS   long-poll wait (default 3000)\n  \
    DS_APPEND_MAX_BODY_BYTES  largest PUT/POST body (default 10 MiB; 413 above)\n  \
    DS_LOG                    log filter, e.g. info or prisma_streams=debug (default info)\n\n\
    The README lists every DS_* variable. Once ready the server prints one JSON line on\n\
    stdout: {\"type\":\"ready\",\"exports\":{...}}. SIGTERM or SIGINT stop it cleanly.")]
pub struct ServerArgs {
    /// Object store for segments and manifests (required; this release keeps all data in
    /// SQLite and does not write to the object store yet).
    #[arg(long, value_enum)]
    pub object_store: ObjectStoreKind,
    /// Exit when standard input reaches end-of-file (used by supervisors).
    #[arg(long)]
    pub exit_on_stdin_eof: bool,
}
