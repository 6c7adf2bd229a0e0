//! The table of every environment variable the program reads: its name, its default, what
//! it means and where it applies. Parsing takes its defaults from here, the unknown-variable
//! warning checks names against it, and a test keeps the README's table equal to it.

/// What an unset (or empty) variable means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    /// This value, parsed exactly like a value from the environment.
    Literal(&'static str),
    /// Computed from other settings or the platform; the text describes how.
    Described(&'static str),
    /// No default: the setting is off, or required where it applies.
    None,
}

/// Where a variable is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Full mode (`server`).
    Full,
    /// Local mode (`local ...`).
    Local,
    /// Both server modes.
    Servers,
    /// Every command.
    All,
    /// `self-update`.
    SelfUpdate,
}

impl Scope {
    /// The README's wording.
    pub fn label(self) -> &'static str {
        match self {
            Scope::Full => "full",
            Scope::Local => "local",
            Scope::Servers => "full, local",
            Scope::All => "all",
            Scope::SelfUpdate => "`self-update`",
        }
    }
}

/// One environment variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Knob {
    pub name: &'static str,
    pub default: DefaultValue,
    pub scope: Scope,
    /// What it does, in the README's words (Markdown, no `|`).
    pub meaning: &'static str,
}

/// Defines one constant per knob (named like the variable, so a typo does not compile) and
/// [`KNOBS`], the list of them all in README order.
macro_rules! knobs {
    ($($name:ident: $default:expr, $scope:ident, $meaning:literal;)*) => {
        $(
            #[doc = $meaning]
            pub const $name: Knob = Knob {
                name: stringify!($name),
                default: $default,
                scope: Scope::$scope,
                meaning: $meaning,
            };
        )*
        /// Every environment variable the program reads.
        pub const KNOBS: &[Knob] = &[$($name),*];
    };
}

use DefaultValue::{Described, Literal, None as Unset};

knobs! {
    DS_HOST: Literal("127.0.0.1"), Full,
        "Address to bind (an IP address or `localhost`).";
    PORT: Literal("8080"), Full,
        "Port to bind; `0` picks a free one (see the readiness line).";
    DS_ROOT: Literal("./ds-data"), Full,
        "Data directory.";
    DS_DB_PATH: Described("`$DS_ROOT/wal.sqlite`"), Full,
        "SQLite database file.";
    DS_LOCAL_DATA_ROOT: Described("platform data dir"), Local,
        "Where named local servers keep their files.";
    DS_RETENTION_MAX_AGE_MS: Unset, Local,
        "Entries older than this are removed from every stream (reads from the start begin at \
         the oldest kept entry; an offset below it answers 410 `retention`); unset keeps \
         everything.";
    DS_RETENTION_MAX_BYTES: Unset, Local,
        "Each stream keeps at most this many payload bytes; its oldest entries go first. \
         Streams that forks read from are never trimmed. Unset: no limit.";
    DS_RETENTION_CHECK_MS: Literal("60000"), Local,
        "How often retention runs when `DS_RETENTION_MAX_AGE_MS` or \
         `DS_RETENTION_MAX_BYTES` is set.";
    DS_LONG_POLL_TIMEOUT_MS: Literal("3000"), Servers,
        "How long a long-poll waits before answering 204; also the SSE heartbeat interval.";
    DS_SSE_MAX_DURATION_MS: Literal("60000"), Servers,
        "An SSE response ends after this long; clients reconnect from the last offset \
         (lets CDNs collapse requests).";
    DS_READ_MAX_BYTES: Literal("1048576"), Servers,
        "Payload bytes per read response (at least one entry is always sent).";
    DS_READ_MAX_RECORDS: Literal("10000"), Servers,
        "Entries per read response. The TypeScript server uses 1000; a higher cap lets pages \
         of small messages fill up to `DS_READ_MAX_BYTES`, which makes catch-up reads faster.";
    DS_READ_FILTER_SCAN_LIMIT_BYTES: Literal("104857600"), Servers,
        "Entry bytes one `filter=` read tests before it answers with what it found so far \
         (and the `stream-filter-scan-limit-*` headers); the client continues from the next offset.";
    DS_APPEND_MAX_BODY_BYTES: Literal("10485760"), Servers,
        "Largest PUT/POST body; larger bodies get 413 without being read.";
    DS_INGEST_MAX_QUEUE_REQS: Literal("50000"), Servers,
        "Clients' write requests waiting for the writer before new ones get 429 (the \
         server's own operations do not count).";
    DS_INGEST_MAX_QUEUE_BYTES: Literal("67108864"), Servers,
        "Payload bytes of write requests in the server at once (bodies being received, \
         queued for the writer, or being committed); a request that would go over gets 429. \
         At least `DS_APPEND_MAX_BODY_BYTES`.";
    DS_INGEST_MAX_BATCH_REQS: Literal("1000"), Servers,
        "Requests committed in one transaction at most.";
    DS_INGEST_MAX_BATCH_BYTES: Literal("8388608"), Servers,
        "Payload bytes committed in one transaction at most.";
    DS_EXPIRY_SWEEP_MS: Literal("60000"), Servers,
        "How often expired streams are physically removed (`0` disables; expired streams \
         answer 404 either way).";
    DS_EXPIRY_SWEEP_LIMIT: Literal("100"), Servers,
        "Streams removed per sweep.";
    DS_PRODUCER_STATE_TTL_MS: Literal("604800000"), Servers,
        "Idempotent-producer state (`Producer-Id`, epoch, last sequence) that no append has \
         updated for this long is deleted by the expiry sweeper (`0` keeps it forever). A \
         producer seen again after that is new: it must start at sequence 0, and a retry \
         of a write older than this is not recognised as a duplicate.";
    DS_READ_CONNECTIONS: Literal("4"), Servers,
        "Threads that run blocking reads (SQLite queries, local segment files), each with \
         its own read-only connection.";
    DS_READ_QUEUE: Literal("1024"), Servers,
        "Reads waiting for a read thread before new ones get 503 with `Retry-After`.";
    DS_META_CACHE_ENTRIES: Literal("16384"), Servers,
        "Streams whose metadata is kept in memory so that requests find them without a \
         SQLite read (`0` disables the cache).";
    DS_SEGMENT_MAX_BYTES: Literal("16777216"), Full,
        "Unsealed payload bytes that trigger a segment, and a segment's payload cap.";
    DS_SEGMENT_TARGET_ROWS: Literal("50000"), Full,
        "Unsealed entries that trigger a segment, and a segment's entry cap.";
    DS_SEGMENT_MAX_INTERVAL_MS: Literal("60000"), Full,
        "Entries older than this are sealed anyway (`0` disables), so quiet streams reach \
         the object store.";
    DS_BLOCK_MAX_BYTES: Literal("262144"), Full,
        "Uncompressed bytes per segment block (the unit of a ranged read).";
    DS_SEGMENT_CHECK_MS: Literal("250"), Full,
        "Segmenter tick.";
    DS_UPLOAD_CHECK_MS: Literal("250"), Full,
        "Uploader tick.";
    DS_UPLOAD_CONCURRENCY: Literal("4"), Full,
        "Segment uploads in flight, and manifest publications.";
    DS_SEGMENT_CACHE_MAX_BYTES: Literal("268435456"), Full,
        "Uploaded segment files kept on local disk (least recently used evicted).";
    DS_SEGMENT_FOOTER_CACHE_ENTRIES: Literal("2048"), Full,
        "Parsed segment footers kept in memory.";
    DS_KEY_INDEX_CHECK_MS: Literal("1000"), Full,
        "How often the routing-key indexer indexes uploaded segments and merges runs \
         (`0` turns the index off: keyed reads then check every segment's block filters).";
    DS_KEY_INDEX_CACHE_BYTES: Literal("67108864"), Full,
        "Bytes of routing-key index runs kept in memory, and again of segment summaries \
         (least recently used evicted).";
    DS_OBJECTSTORE_TIMEOUT_MS: Literal("5000"), Full,
        "Timeout of each attempt of an object-store call, plus the transfer allowance of \
         `DS_OBJECTSTORE_MIN_BYTES_PER_SEC`.";
    DS_OBJECTSTORE_MIN_BYTES_PER_SEC: Literal("65536"), Full,
        "The slowest transfer tolerated: an attempt that moves n bytes (a PUT, one part of \
         a multipart upload, a ranged GET) may take n / this rate seconds longer than \
         `DS_OBJECTSTORE_TIMEOUT_MS`.";
    DS_OBJECTSTORE_RETRIES: Literal("3"), Full,
        "Attempts after the first of an object-store call that failed or timed out.";
    DS_OBJECTSTORE_RETRY_BASE_MS: Literal("50"), Full,
        "Backoff before the first retry; it doubles (with jitter) for each further one.";
    DS_OBJECTSTORE_RETRY_MAX_MS: Literal("2000"), Full,
        "Longest backoff between retries.";
    DURABLE_STREAMS_R2_BUCKET: Unset, Full,
        "Bucket; required with `--object-store r2`.";
    DURABLE_STREAMS_R2_ACCOUNT_ID: Unset, Full,
        "Cloudflare account id (the endpoint is `https://<id>.r2.cloudflarestorage.com`); \
         required with `--object-store r2`.";
    DURABLE_STREAMS_R2_ACCESS_KEY_ID: Unset, Full,
        "Access key id; required with `--object-store r2`.";
    DURABLE_STREAMS_R2_SECRET_ACCESS_KEY: Unset, Full,
        "Secret access key; required with `--object-store r2`.";
    DURABLE_STREAMS_R2_ENDPOINT: Unset, Full,
        "Endpoint URL replacing `https://<account id>.r2.cloudflarestorage.com`, e.g. a \
         jurisdiction endpoint (`https://<id>.eu.r2.cloudflarestorage.com`); plain `http://` \
         only for a loopback host.";
    DURABLE_STREAMS_R2_REGION: Literal("auto"), Full,
        "Signing region of the R2 endpoint.";
    DURABLE_STREAMS_S3_ENDPOINT: Unset, Full,
        "Endpoint URL; required with `--object-store s3` (plain `http://` only for a \
         loopback endpoint).";
    DURABLE_STREAMS_S3_BUCKET: Unset, Full,
        "Bucket; required with `--object-store s3`.";
    DURABLE_STREAMS_S3_REGION: Unset, Full,
        "Region; required with `--object-store s3`.";
    DURABLE_STREAMS_S3_ACCESS_KEY_ID: Unset, Full,
        "Access key id; required with `--object-store s3`.";
    DURABLE_STREAMS_S3_SECRET_ACCESS_KEY: Unset, Full,
        "Secret access key; required with `--object-store s3`.";
    DS_LOG: Literal("info"), All,
        "Log filter in `tracing` syntax, e.g. `prisma_streams=debug`.";
    RUST_LOG: Unset, All,
        "Log filter used when `DS_LOG` is unset.";
    DS_LOG_DIR: Unset, All,
        "Directory for rolling log files (besides stderr); unset: stderr only.";
    DS_LOG_ROTATION: Literal("daily"), All,
        "When a new log file is started: `daily`, `hourly`, `minutely` or `never`.";
    DS_LOG_MAX_FILES: Literal("7"), All,
        "Log files kept in `DS_LOG_DIR`.";
    DS_STATS_INTERVAL_MS: Literal("60000"), Full,
        "Interval of `--stats` and `--hist`.";
    DS_METRICS_FLUSH_MS: Literal("10000"), Servers,
        "Interval of the metrics events appended to `__stream_metrics__` (`0` disables; \
         local mode defaults to `0`).";
    DS_METRICS_RETENTION_ENTRIES: Literal("8640"), Servers,
        "Events kept in `__stream_metrics__`.";
    DS_WEBHOOKS: Literal("1"), Servers,
        "`0` refuses webhook subscriptions (400); pull-wake subscriptions always work. \
         Local mode delivers webhooks only to `http://localhost` and `http://127.x.x.x`.";
    DS_WEBHOOK_TIMEOUT_MS: Literal("10000"), Servers,
        "Timeout of one webhook delivery attempt (connect, send, response).";
    DS_WEBHOOK_CONCURRENCY: Literal("16"), Servers,
        "Webhook deliveries in flight at once.";
    DS_WEBHOOK_RETRY_BASE_MS: Literal("1000"), Servers,
        "Delay before the first retry of a failed webhook delivery; it doubles (±20% \
         jitter) for each further one.";
    DS_WEBHOOK_RETRY_MAX_MS: Literal("60000"), Servers,
        "Longest delay between webhook delivery retries.";
    DS_AUTH_TOKEN: Unset, Servers,
        "Require `Authorization: Bearer <token>` on every request but `/health`, CORS \
         preflights and the subscription routes that carry their own token (`callback`, \
         `ack`, `release`) or are public (`__ds/jwks.json`) (401 otherwise). At least 16 printable characters. Set this or \
         `DS_AUTH_TOKEN_FILE`, not both.";
    DS_AUTH_TOKEN_FILE: Unset, Servers,
        "A file holding the token of `DS_AUTH_TOKEN` (surrounding whitespace is ignored).";
    API_KEY: Unset, Full,
        "With `--auth-strategy api-key` (the original's flag): the bearer token, at least 10 \
         printable characters. Ignored without the flag.";
    DS_HEADER_READ_TIMEOUT_MS: Literal("10000"), Servers,
        "A connection that does not finish its request headers in this time, or sits idle \
         between requests, is closed.";
    DS_BODY_READ_TIMEOUT_MS: Literal("30000"), Servers,
        "A request body that sends nothing for this long gets 408 and the connection is \
         closed.";
    DS_MAX_HEADER_BYTES: Literal("65536"), Servers,
        "Request line plus headers (431 above; at least 8192).";
    DS_MAX_LIVE_READERS: Literal("10000"), Servers,
        "Long-polls, SSE connections and `touch/wait` requests open at once; more get 503 with `Retry-After`.";
    PRISMA_STREAMS_UPDATE_API: Literal("https://api.github.com"), SelfUpdate,
        "GitHub API base asked for releases (mirrors and tests point it elsewhere).";
    PRISMA_STREAMS_MANAGED_BY: Unset, SelfUpdate,
        "Set to `npm` by the npm wrappers; `self-update` then refuses and points to npm.";
}

/// The knob named `name`, if there is one.
pub fn find(name: &str) -> Option<&'static Knob> {
    KNOBS.iter().find(|k| k.name == name)
}

/// The README's environment table, generated from [`KNOBS`].
pub fn markdown_table() -> String {
    let mut out = String::from("| Variable | Default | Mode | Meaning |\n|---|---|---|---|\n");
    for k in KNOBS {
        let default = match k.default {
            Literal(v) => format!("`{v}`"),
            Described(d) => d.to_string(),
            Unset => "—".to_string(),
        };
        out.push_str(&format!(
            "| `{}` | {default} | {} | {} |\n",
            k.name,
            k.scope.label(),
            k.meaning
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const README: &str = include_str!("../../README.md");

    /// The rows of the README's table under "### Environment": (first cell, second cell).
    fn readme_rows() -> Vec<(String, String)> {
        let section = README
            .split("### Environment")
            .nth(1)
            .expect("README has a \"### Environment\" section");
        section
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2) // header and separator
            .map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                (cells[1].to_string(), cells[2].to_string())
            })
            .collect()
    }

    fn readme_table() -> String {
        let section = README.split("### Environment").nth(1).unwrap();
        section
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    #[test]
    fn names_are_unique_and_meanings_fit_a_table_cell() {
        for (i, k) in KNOBS.iter().enumerate() {
            assert!(
                KNOBS[..i].iter().all(|o| o.name != k.name),
                "{} twice",
                k.name
            );
            assert!(!k.meaning.contains('|') && !k.meaning.contains('\n'));
            assert!(
                k.meaning.ends_with('.'),
                "{}: one or more sentences",
                k.name
            );
        }
        assert_eq!(find("DS_ROOT"), Some(&DS_ROOT));
        assert_eq!(find("DS_NOPE"), None);
    }

    #[test]
    fn the_readme_lists_every_knob_and_nothing_else() {
        let rows = readme_rows();
        let expected = markdown_table();
        let hint = format!("the README's environment table should be:\n\n{expected}");
        for k in KNOBS {
            let cell = format!("`{}`", k.name);
            let row = rows.iter().find(|(names, _)| names.contains(&cell));
            let Some((_, default)) = row else {
                panic!("{} has no row in the README; {hint}", k.name);
            };
            if let Literal(v) = k.default {
                if v.parse::<u64>().is_ok() {
                    assert_eq!(default, &format!("`{v}`"), "default of {}; {hint}", k.name);
                }
            }
        }
        for (names, _) in &rows {
            let name = names.trim_matches('`');
            assert!(
                find(name).is_some(),
                "the README documents {names}, which is not a knob; {hint}"
            );
        }
        assert!(readme_table() == expected, "{hint}");
    }
}
