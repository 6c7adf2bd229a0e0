//! Load generator for Durable Streams servers (this one and its peers).
//!
//! ```text
//! cargo bench --bench load -- <scenario> --url http://127.0.0.1:PORT [--server-pid PID] [flags]
//! cargo bench --bench load -- table --results results.jsonl [--baseline LABEL]
//! cargo bench --bench load -- free-port
//! cargo bench --bench load -- evict-cache --evict-dir DIR
//! ```
//!
//! Scenarios: append-own, append-shared, catchup, latency, fanout, many, ping, idle. See
//! docs/performance.md for what each measures; benches/compare.sh runs them all against
//! every server. `keyed-fill` and `keyed-read` (routing keys, this server only; see
//! `keyed.rs`) are run by benches/keyed.sh; `touch` (live-query touch wake latency, see
//! `touch.rs`) and `touch-plain` (its writer alone, the baseline) by benches/touch.sh;
//! `scale-streams`, `scale-catchup` and `scale-ingest` (see `scale.rs`) by benches/scale.sh.
//! Only loopback targets are accepted.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::print_stdout,
    unsafe_code
)] // benchmark tool: real time, reports on stdout, sysconf

mod http;
mod keyed;
mod measure;
mod report;
mod scale;
mod scenarios;
mod touch;

use std::path::PathBuf;
use std::sync::Arc;

use clap::{CommandFactory, Parser};

use crate::report::Report;

const SCENARIOS: &[&str] = &[
    "append-own",
    "append-shared",
    "catchup",
    "latency",
    "fanout",
    "many",
    "ping",
    "idle",
    "keyed-fill",
    "keyed-read",
    "touch",
    "touch-plain",
    "scale-streams",
    "scale-catchup",
    "scale-ingest",
];

#[derive(Parser, Clone, Debug)]
#[command(
    name = "load",
    about = "Durable Streams load generator (loopback only)",
    after_help = "Scenarios: append-own, append-shared, catchup, latency, fanout, many, ping, idle,\n\
                  keyed-fill, keyed-read (benches/keyed.sh), touch, touch-plain (benches/touch.sh),\n\
                  scale-streams, scale-catchup, scale-ingest (benches/scale.sh).\n\
                  Utilities: `table --results FILE [--baseline LABEL]` prints a markdown table of\n\
                  --json lines; `free-port` prints a free loopback TCP port; `evict-cache\n\
                  --evict-dir DIR` drops the page cache of the files under DIR."
)]
pub struct Opts {
    /// Scenario to run, or `table` / `free-port`.
    pub scenario: Option<String>,
    /// Server base URL, e.g. http://127.0.0.1:8080 (loopback only).
    #[arg(long)]
    pub url: Option<String>,
    /// Path prefix of streams.
    #[arg(long, default_value = "/v1/stream")]
    pub prefix: String,
    /// Server process id: CPU time and memory are read from /proc/<pid>.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Name of the server in reports.
    #[arg(long, default_value = "server")]
    pub label: String,
    /// Also print one JSON line per scenario on stdout (the human block goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Time bound of each measured phase, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Count bound: total appends (append-*, latency, fanout) or requests (ping).
    #[arg(long, default_value_t = 10_000_000)]
    pub count: u64,
    /// Concurrent connections: writers (append-*), workers (many, ping).
    #[arg(long, alias = "writers", default_value_t = 16)]
    pub concurrency: usize,
    /// Size of each JSON message in bytes.
    #[arg(long, default_value_t = 150)]
    pub msg_bytes: usize,
    /// Messages to fill and read back (catchup, keyed-*).
    #[arg(long, default_value_t = 100_000)]
    pub messages: u64,
    /// Messages per append while filling (catchup, keyed-*); sent as one JSON array.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Full read passes over the stream (catchup); 0 = repeat until 2 s of reading
    /// (at most 50 passes, and within --duration). Warm passes (keyed-read); 0 = 3.
    #[arg(long, default_value_t = 0)]
    pub read_passes: u64,
    /// Stream to fill or read (keyed-*; keyed-fill defaults to a per-run name).
    #[arg(long)]
    pub stream: Option<String>,
    /// Distinct routing keys (keyed-*).
    #[arg(long, default_value_t = 1000)]
    pub keys: u64,
    /// Keys read by keyed-read, spread evenly over the key space.
    #[arg(long, default_value_t = 20)]
    pub sample_keys: u64,
    /// The server's SQLite file, opened read-only (keyed-fill: where the entries are;
    /// keyed-read: with --objects-dir, the block analysis).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Wait until every entry is in uploaded segments (keyed-fill; needs --db; bounded
    /// by --settle-max), or until the stream's full segments are (scale-catchup).
    #[arg(long)]
    pub wait_uploaded: bool,
    /// The local object store's directory, `$DS_ROOT/objects` (keyed-read: block analysis).
    #[arg(long)]
    pub objects_dir: Option<PathBuf>,
    /// Drop the page cache of the files under this directory before each cold read
    /// (keyed-read), or once (evict-cache).
    #[arg(long)]
    pub evict_dir: Option<PathBuf>,
    /// Appends per second of the paced writer (latency, fanout, touch).
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Long-poll readers (fanout).
    #[arg(long, default_value_t = 100)]
    pub readers: usize,
    /// Touch waiters, each on the watch key of its own row (touch).
    #[arg(long, default_value_t = 1000)]
    pub waiters: usize,
    /// `timeoutMs` of each touch wait (touch); the original answers 408 after 5 s.
    #[arg(long, default_value_t = 4000)]
    pub wait_timeout_ms: u64,
    /// Streams to create (many, idle).
    #[arg(long, default_value_t = 10_000)]
    pub streams: u64,
    /// Longest wait for the server to become idle after the streams are written (idle),
    /// or for the entries to be uploaded (keyed-fill), seconds.
    #[arg(long, default_value_t = 1200.0)]
    pub settle_max: f64,
    /// Path GET by the ping scenario.
    #[arg(long, default_value = "/health")]
    pub ping_path: String,
    /// JSON-lines file read by `table`.
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Label whose figures the ratios in `table` are relative to (default: the first).
    #[arg(long)]
    pub baseline: Option<String>,
    /// Target MB/s of all writers together (scale-ingest).
    #[arg(long, default_value_t = 100.0)]
    pub rate_mb: f64,
    /// Request body size in bytes, filled with whole messages (scale-ingest).
    #[arg(long, default_value_t = 524_288)]
    pub body_bytes: usize,
    /// Seconds between samples (scale-ingest: rate, lag, RSS; scale-catchup: RSS).
    #[arg(long, default_value_t = 5.0)]
    pub sample_secs: f64,
    /// The server's data directory: free-space guard and disk figures (scale-*).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Stop when the data directory's file system has less than this free, GB (scale-*).
    #[arg(long, default_value_t = 5.0)]
    pub min_free_gb: f64,
    /// CSV file for every sample (scale-catchup, scale-ingest).
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Message padding (scale-*): `x` repeated, or pseudo-random letters (`random`).
    #[arg(long, default_value = "x")]
    pub pad: String,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    pub bench: bool,
}

fn main() {
    let opts = Opts::parse();
    let Some(scenario) = opts.scenario.clone() else {
        // `cargo bench` with no arguments (or `cargo test --benches`): nothing to run.
        let _ = Opts::command().print_help();
        return;
    };
    match scenario.as_str() {
        "table" => std::process::exit(table(&opts)),
        "free-port" => {
            match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
                Ok(a) => println!("{}", a.port()),
                Err(e) => {
                    eprintln!("load: {e}");
                    std::process::exit(1);
                }
            }
        }
        "evict-cache" => {
            let Some(dir) = &opts.evict_dir else {
                eprintln!("load: evict-cache needs --evict-dir DIR");
                std::process::exit(2);
            };
            match keyed::evict_dir(dir) {
                Ok((files, bytes)) => eprintln!(
                    "load: dropped the page cache of {files} files ({:.1} MB) under {}",
                    bytes as f64 / 1e6,
                    dir.display()
                ),
                Err(e) => {
                    eprintln!("load: {e:#}");
                    std::process::exit(1);
                }
            }
        }
        s if SCENARIOS.contains(&s) => std::process::exit(run(opts, s)),
        other => {
            eprintln!(
                "load: unknown scenario {other:?}; one of {}",
                SCENARIOS.join(", ")
            );
            std::process::exit(2);
        }
    }
}

fn table(opts: &Opts) -> i32 {
    let Some(path) = &opts.results else {
        eprintln!("load: table needs --results FILE");
        return 2;
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("load: {}: {e}", path.display());
            return 1;
        }
    };
    let mut lines = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let l = l.trim();
        if !l.starts_with('{') {
            continue;
        }
        match serde_json::from_str::<Report>(l) {
            Ok(r) => lines.push(r),
            Err(e) => eprintln!("load: {}:{}: skipped: {e}", path.display(), i + 1),
        }
    }
    print!("{}", report::table(&lines, opts.baseline.as_deref()));
    0
}

fn run(opts: Opts, scenario: &str) -> i32 {
    let mut rep = Report::new(&opts.label, scenario);
    let url = opts.url.clone().unwrap_or_default();
    let result = (|| -> anyhow::Result<()> {
        let url = opts
            .url
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("--url is required"))?;
        let target = http::Target::parse(url, &opts.prefix).map_err(anyhow::Error::msg)?;
        if let Some(pid) = opts.server_pid {
            if measure::proc_cpu_secs(pid).is_none() {
                anyhow::bail!("--server-pid {pid}: no such process in /proc");
            }
        }
        // One thread: the client is meant to be pinned to one core (compare.sh uses
        // taskset), and a single-threaded runtime is the cheapest way to use it.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let ctx = Arc::new(scenarios::Ctx::new(target, opts.clone()));
        rt.block_on(async {
            match scenario {
                "append-own" => scenarios::append(ctx, false, &mut rep).await,
                "append-shared" => scenarios::append(ctx, true, &mut rep).await,
                "catchup" => scenarios::catchup(ctx, &mut rep).await,
                "latency" => scenarios::live(ctx, 1, &mut rep).await,
                "fanout" => {
                    let n = ctx.opts.readers.max(1);
                    scenarios::live(ctx, n, &mut rep).await
                }
                "many" => scenarios::many(ctx, &mut rep).await,
                "ping" => scenarios::ping(ctx, &mut rep).await,
                "idle" => scenarios::idle(ctx, &mut rep).await,
                "keyed-fill" => keyed::fill(ctx, &mut rep).await,
                "keyed-read" => keyed::read(ctx, &mut rep).await,
                "touch" => touch::touch(ctx, false, &mut rep).await,
                "touch-plain" => touch::touch(ctx, true, &mut rep).await,
                "scale-streams" => scale::streams(ctx, &mut rep).await,
                "scale-catchup" => scale::catchup(ctx, &mut rep).await,
                "scale-ingest" => scale::ingest(ctx, &mut rep).await,
                _ => unreachable!("checked by main"),
            }
        })
    })();
    if let Err(e) = result {
        rep.ok = false;
        rep.error = Some(format!("{e:#}"));
    }
    rep.memory(opts.server_pid);
    let human = rep.human(&format!("{url}{}", opts.prefix));
    if opts.json {
        eprint!("{human}");
        match serde_json::to_string(&rep) {
            Ok(j) => println!("{j}"),
            Err(e) => eprintln!("load: cannot encode the report: {e}"),
        }
    } else {
        print!("{human}");
    }
    if rep.ok {
        0
    } else {
        1
    }
}
