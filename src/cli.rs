//! Command-line definition (clap derive). Values that also come from the environment are
//! resolved in `config.rs`, never here.

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "prisma-streams",
    version,
    propagate_version = true,
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
    /// Local mode: one SQLite file per named server, for `prisma dev` and local tools.
    #[command(subcommand)]
    Local(LocalCommand),
    /// Replace this binary with the newest release (not for npm installs).
    SelfUpdate(SelfUpdateArgs),
}

#[derive(Debug, Clone, Args)]
pub struct SelfUpdateArgs {
    /// Only report whether a newer release exists.
    #[arg(long)]
    pub check: bool,
}

/// `prisma-streams local ...`
#[derive(Debug, Subcommand)]
pub enum LocalCommand {
    /// Run a local server in the foreground until SIGINT/SIGTERM.
    Start(LocalServerArgs),
    /// Run a local server for a supervisor: exits when stdin closes or on SIGTERM.
    Daemon(LocalServerArgs),
    /// Show whether a local server runs (all names if --name is not given).
    Status(LocalStatusArgs),
    /// Stop a running local server and wait until it is gone.
    Stop(LocalNameArgs),
    /// Delete a stopped local server's data.
    Reset(LocalNameArgs),
}

#[derive(Debug, Clone, Args)]
pub struct LocalServerArgs {
    /// Server name: letters, digits, '.', '_' and '-' (default "default").
    #[arg(long)]
    pub name: Option<String>,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub hostname: String,
    /// Allow listening on a non-loopback address without DS_AUTH_TOKEN.
    #[arg(long)]
    pub allow_unauthenticated: bool,
}

#[derive(Debug, Clone, Args)]
pub struct LocalStatusArgs {
    /// Server name (default: every server under the data root).
    #[arg(long)]
    pub name: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct LocalNameArgs {
    /// Server name (default "default").
    #[arg(long)]
    pub name: Option<String>,
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
    DS_AUTH_TOKEN[_FILE]      require `Authorization: Bearer <token>` (not on /health)\n  \
    DS_LOG                    log filter, e.g. info or prisma_streams=debug (default info)\n\n\
    The README lists every DS_* variable. Once ready the server prints one JSON line on\n\
    stdout: {\"type\":\"ready\",\"exports\":{...}}. SIGTERM or SIGINT stop it cleanly.")]
pub struct ServerArgs {
    /// Object store for segments and manifests (required).
    #[arg(long, value_enum)]
    pub object_store: ObjectStoreKind,
    /// Exit when standard input reaches end-of-file (used by supervisors).
    #[arg(long)]
    pub exit_on_stdin_eof: bool,
    /// Rebuild local state from the object store's manifests, then serve. Refuses if the
    /// existing database holds data not uploaded yet; the replaced database is kept as
    /// <db>.pre-bootstrap.
    #[arg(long)]
    pub bootstrap_from_r2: bool,
    /// With --bootstrap-from-r2: replace the existing database even if it holds data not
    /// uploaded yet (that data is then only in the kept <db>.pre-bootstrap).
    #[arg(long, requires = "bootstrap_from_r2")]
    pub bootstrap_discard_local: bool,
    /// Size caches, queues and concurrency for a memory budget in MB (default: a quarter
    /// of the machine's memory). Variables set explicitly win over the preset.
    /// `--auto-tune=MB` and `--auto-tune MB` both work.
    #[arg(long, value_name = "MB", num_args = 0..=1, default_missing_value = "0")]
    pub auto_tune: Option<u64>,
    /// Print one line of throughput and backlog figures to stderr every DS_STATS_INTERVAL_MS.
    #[arg(long)]
    pub stats: bool,
    /// Print per-route latency histograms to stderr every DS_STATS_INTERVAL_MS.
    #[arg(long)]
    pub hist: bool,
    /// Allow listening on a non-loopback DS_HOST without DS_AUTH_TOKEN (e.g. behind an
    /// authenticating proxy).
    #[arg(long)]
    pub allow_unauthenticated: bool,
    /// Serve without authentication on any address (the original's flag); refused when an
    /// auth token is configured.
    #[arg(long, conflicts_with = "auth_strategy")]
    pub no_auth: bool,
    /// `api-key`: require `Authorization: Bearer <API_KEY>` (the original's flag; API_KEY
    /// needs at least 10 characters).
    #[arg(long, value_enum, value_name = "STRATEGY")]
    pub auth_strategy: Option<AuthStrategy>,
}

/// The original's `--auth-strategy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthStrategy {
    /// A bearer token taken from the API_KEY variable.
    ApiKey,
}

#[cfg(test)]
impl ServerArgs {
    /// `server --object-store memory` without any other flag (unit tests).
    pub fn memory() -> ServerArgs {
        ServerArgs {
            object_store: ObjectStoreKind::Memory,
            exit_on_stdin_eof: false,
            bootstrap_from_r2: false,
            bootstrap_discard_local: false,
            auto_tune: None,
            stats: false,
            hist: false,
            allow_unauthenticated: false,
            no_auth: false,
            auth_strategy: None,
        }
    }
}
