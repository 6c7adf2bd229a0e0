//! Full-mode settings of segments, uploads and the object store: [`Tiering`],
//! [`ObjectStoreConfig`] and [`RetryPolicy`].

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::knobs as k;
use super::{ConfigError, Env};
use crate::cli::ObjectStoreKind;

/// Where the object store is and how to reach it.
#[derive(Clone, PartialEq, Eq)]
pub enum ObjectStoreConfig {
    /// A directory on local disk.
    Local { dir: PathBuf },
    /// In memory (tests): lost on exit.
    Memory,
    /// An S3-compatible endpoint (Cloudflare R2 is one).
    S3 {
        endpoint: String,
        bucket: String,
        region: String,
        access_key_id: String,
        secret_access_key: String,
        allow_http: bool,
    },
}

impl std::fmt::Debug for ObjectStoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ObjectStoreConfig::Local { dir } => write!(f, "Local({})", dir.display()),
            ObjectStoreConfig::Memory => write!(f, "Memory"),
            ObjectStoreConfig::S3 {
                endpoint, bucket, ..
            } => write!(f, "S3({endpoint}, {bucket})"),
        }
    }
}

/// Segmenting, upload and object-store settings (full mode).
#[derive(Debug, Clone)]
pub struct Tiering {
    pub store: ObjectStoreConfig,
    /// `DS_SEGMENT_MAX_BYTES`: payload bytes that make a stream a candidate and cap a segment.
    pub segment_max_bytes: u64,
    /// `DS_SEGMENT_TARGET_ROWS`: unsealed entries that make a stream a candidate and cap a segment.
    pub segment_target_rows: u64,
    /// `DS_SEGMENT_MAX_INTERVAL_MS`: unsealed entries older than this are sealed anyway (0: never).
    pub segment_max_interval_ms: u64,
    /// `DS_BLOCK_MAX_BYTES`: uncompressed bytes per block.
    pub block_max_bytes: usize,
    /// `DS_SEGMENT_CHECK_MS`: segmenter tick.
    pub segment_check_ms: u64,
    /// `DS_UPLOAD_CHECK_MS`: uploader tick.
    pub upload_check_ms: u64,
    /// `DS_UPLOAD_CONCURRENCY`: segment uploads (and manifest publications) in flight.
    pub upload_concurrency: usize,
    /// `DS_SEGMENT_CACHE_MAX_BYTES`: uploaded segment files kept on local disk.
    pub segment_cache_max_bytes: u64,
    /// `DS_SEGMENT_FOOTER_CACHE_ENTRIES`: parsed footers kept in memory.
    pub footer_cache_entries: usize,
    /// `DS_KEY_INDEX_CHECK_MS`: routing-key indexer tick (0 disables the index).
    pub key_index_check_ms: u64,
    /// `DS_KEY_INDEX_CACHE_BYTES`: routing-key index runs kept in memory.
    pub key_index_cache_bytes: u64,
    pub retry: RetryPolicy,
}

/// Object-store call timeouts and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// `DS_OBJECTSTORE_TIMEOUT_MS`: per attempt, before the transfer allowance.
    pub timeout_ms: u64,
    /// `DS_OBJECTSTORE_MIN_BYTES_PER_SEC`: the slowest transfer tolerated; an attempt that
    /// moves `n` bytes gets `n / min_bytes_per_sec` seconds more (see [`Self::timeout_for`]).
    pub min_bytes_per_sec: u64,
    /// `DS_OBJECTSTORE_RETRIES`: attempts after the first.
    pub retries: u32,
    /// `DS_OBJECTSTORE_RETRY_BASE_MS` / `_MAX_MS`: exponential backoff bounds.
    pub base_ms: u64,
    pub max_ms: u64,
}

impl Default for RetryPolicy {
    /// The defaults of the knob table.
    fn default() -> Self {
        match RetryPolicy::from_env(&Env::default()) {
            Ok(r) => r,
            // The table's defaults are valid (a unit test parses them).
            Err(e) => unreachable!("invalid default in the knob table: {e}"),
        }
    }
}

impl RetryPolicy {
    /// Reads the `DS_OBJECTSTORE_*` knobs.
    pub fn from_env(env: &Env) -> Result<RetryPolicy, ConfigError> {
        Ok(RetryPolicy {
            timeout_ms: env.positive(&k::DS_OBJECTSTORE_TIMEOUT_MS)?,
            min_bytes_per_sec: env.positive(&k::DS_OBJECTSTORE_MIN_BYTES_PER_SEC)?,
            retries: env.num(&k::DS_OBJECTSTORE_RETRIES)?,
            base_ms: env.positive(&k::DS_OBJECTSTORE_RETRY_BASE_MS)?,
            max_ms: env.positive(&k::DS_OBJECTSTORE_RETRY_MAX_MS)?,
        })
    }

    /// The timeout of one attempt that sends or receives `bytes` bytes (0 when unknown):
    /// the base timeout plus the time those bytes take at the slowest tolerated rate.
    pub fn timeout_for(&self, bytes: u64) -> Duration {
        let rate = self.min_bytes_per_sec.max(1);
        let rest = u128::from(bytes % rate) * 1_000_000_000 / u128::from(rate);
        // `rest` < 10^9 because `bytes % rate` < `rate`.
        let allowance = Duration::new(bytes / rate, u32::try_from(rest).unwrap_or(0));
        Duration::from_millis(self.timeout_ms).saturating_add(allowance)
    }
}

/// The store's variables.
fn store_from_env(
    kind: ObjectStoreKind,
    root: &Path,
    env: &Env,
) -> Result<ObjectStoreConfig, ConfigError> {
    Ok(match kind {
        ObjectStoreKind::Local => ObjectStoreConfig::Local {
            dir: root.join("objects"),
        },
        ObjectStoreKind::Memory => ObjectStoreConfig::Memory,
        ObjectStoreKind::R2 => {
            let v = env.require(&[
                k::DURABLE_STREAMS_R2_BUCKET.name,
                k::DURABLE_STREAMS_R2_ACCOUNT_ID.name,
                k::DURABLE_STREAMS_R2_ACCESS_KEY_ID.name,
                k::DURABLE_STREAMS_R2_SECRET_ACCESS_KEY.name,
            ])?;
            let (endpoint, allow_http) = match env.get(k::DURABLE_STREAMS_R2_ENDPOINT.name) {
                Some(e) => {
                    let e = e.trim_end_matches('/').to_string();
                    let http = plain_http_allowed(k::DURABLE_STREAMS_R2_ENDPOINT.name, &e)?;
                    (e, http)
                }
                None => (format!("https://{}.r2.cloudflarestorage.com", v[1]), false),
            };
            ObjectStoreConfig::S3 {
                bucket: v[0].clone(),
                endpoint,
                region: env.text(&k::DURABLE_STREAMS_R2_REGION).to_string(),
                access_key_id: v[2].clone(),
                secret_access_key: v[3].clone(),
                allow_http,
            }
        }
        ObjectStoreKind::S3 => {
            let v = env.require(&[
                k::DURABLE_STREAMS_S3_ENDPOINT.name,
                k::DURABLE_STREAMS_S3_BUCKET.name,
                k::DURABLE_STREAMS_S3_REGION.name,
                k::DURABLE_STREAMS_S3_ACCESS_KEY_ID.name,
                k::DURABLE_STREAMS_S3_SECRET_ACCESS_KEY.name,
            ])?;
            let endpoint = v[0].trim_end_matches('/').to_string();
            let allow_http = plain_http_allowed(k::DURABLE_STREAMS_S3_ENDPOINT.name, &endpoint)?;
            ObjectStoreConfig::S3 {
                endpoint,
                bucket: v[1].clone(),
                region: v[2].clone(),
                access_key_id: v[3].clone(),
                secret_access_key: v[4].clone(),
                allow_http,
            }
        }
    })
}

/// Whether an S3 endpoint (from the variable `var`) uses plain http, which is allowed only
/// for a loopback host.
fn plain_http_allowed(var: &str, endpoint: &str) -> Result<bool, ConfigError> {
    match endpoint.split_once("://") {
        Some(("https", _)) => Ok(false),
        Some(("http", rest)) => {
            let host = rest.split(['/', '?']).next().unwrap_or("");
            let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let loopback =
                host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if !loopback {
                return Err(ConfigError(format!(
                    "{var} may use plain http only for a loopback host, got {endpoint:?}"
                )));
            }
            Ok(true)
        }
        _ => Err(ConfigError(format!(
            "{var} must be an http(s) URL, got {endpoint:?}"
        ))),
    }
}

impl Tiering {
    /// Reads the tiering settings and the chosen store's variables.
    pub fn from_env(kind: ObjectStoreKind, root: &Path, env: &Env) -> Result<Tiering, ConfigError> {
        Ok(Tiering {
            store: store_from_env(kind, root, env)?,
            segment_max_bytes: env.positive(&k::DS_SEGMENT_MAX_BYTES)?,
            segment_target_rows: env.positive(&k::DS_SEGMENT_TARGET_ROWS)?,
            segment_max_interval_ms: env.num(&k::DS_SEGMENT_MAX_INTERVAL_MS)?,
            block_max_bytes: env.positive(&k::DS_BLOCK_MAX_BYTES)?,
            segment_check_ms: env.positive(&k::DS_SEGMENT_CHECK_MS)?,
            upload_check_ms: env.positive(&k::DS_UPLOAD_CHECK_MS)?,
            upload_concurrency: env.positive(&k::DS_UPLOAD_CONCURRENCY)?,
            segment_cache_max_bytes: env.num(&k::DS_SEGMENT_CACHE_MAX_BYTES)?,
            footer_cache_entries: env.num(&k::DS_SEGMENT_FOOTER_CACHE_ENTRIES)?,
            key_index_check_ms: env.num(&k::DS_KEY_INDEX_CHECK_MS)?,
            key_index_cache_bytes: env.num(&k::DS_KEY_INDEX_CACHE_BYTES)?,
            retry: RetryPolicy::from_env(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_come_from_the_knob_table() {
        let t =
            Tiering::from_env(ObjectStoreKind::Memory, Path::new("/r"), &Env::default()).unwrap();
        assert_eq!(t.segment_max_bytes, 16 << 20);
        assert_eq!(t.block_max_bytes, 256 << 10);
        assert_eq!(t.segment_cache_max_bytes, 256 << 20);
        assert_eq!(t.upload_concurrency, 4);
        assert_eq!(t.retry, RetryPolicy::default());
        assert_eq!(
            (
                t.retry.timeout_ms,
                t.retry.retries,
                t.retry.base_ms,
                t.retry.max_ms
            ),
            (5000, 3, 50, 2000)
        );
    }

    #[test]
    fn an_attempt_gets_time_for_its_bytes_at_the_slowest_rate() {
        let p = RetryPolicy::default();
        assert_eq!(p.min_bytes_per_sec, 65536);
        assert_eq!(p.timeout_for(0), Duration::from_millis(5000));
        // A 5 MiB part at 64 KiB/s: 80 s on top of the base.
        assert_eq!(p.timeout_for(5 << 20), Duration::from_secs(85));
        assert_eq!(
            p.timeout_for(1),
            Duration::from_nanos(5_000_000_000 + 15_258)
        );
        let fast = RetryPolicy {
            timeout_ms: 200,
            min_bytes_per_sec: 1 << 20,
            ..p
        };
        assert_eq!(fast.timeout_for(16 << 20), Duration::from_millis(16_200));
        assert!(
            p.timeout_for(u64::MAX) > Duration::from_secs(1 << 40),
            "no overflow"
        );
        let e = RetryPolicy::from_env(&Env::from_pairs([(
            "DS_OBJECTSTORE_MIN_BYTES_PER_SEC",
            "0",
        )]));
        assert!(e
            .unwrap_err()
            .0
            .contains("DS_OBJECTSTORE_MIN_BYTES_PER_SEC"));
    }

    #[test]
    fn plain_http_only_for_loopback() {
        let ok = |e| plain_http_allowed("V", e);
        assert!(!ok("https://s3.example.com").unwrap());
        assert!(ok("http://[::1]:9000").unwrap());
        assert!(ok("http://127.0.0.1:9000/x").unwrap());
        assert!(ok("http://s3.example.com").unwrap_err().0.starts_with("V "));
        assert!(ok("s3.example.com").is_err());
    }

    #[test]
    fn r2_takes_the_originals_endpoint_and_region() {
        let base = [
            ("DURABLE_STREAMS_R2_BUCKET", "b"),
            ("DURABLE_STREAMS_R2_ACCOUNT_ID", "acct"),
            ("DURABLE_STREAMS_R2_ACCESS_KEY_ID", "id"),
            ("DURABLE_STREAMS_R2_SECRET_ACCESS_KEY", "secret"),
        ];
        let store = |extra: &[(&'static str, &'static str)]| {
            let env = Env::from_pairs(base.iter().chain(extra).copied());
            store_from_env(ObjectStoreKind::R2, Path::new("/x"), &env)
        };
        let endpoint_region = |c: ObjectStoreConfig| match c {
            ObjectStoreConfig::S3 {
                endpoint, region, ..
            } => (endpoint, region),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            endpoint_region(store(&[]).unwrap()),
            (
                "https://acct.r2.cloudflarestorage.com".into(),
                "auto".into()
            )
        );
        assert_eq!(
            endpoint_region(
                store(&[
                    (
                        "DURABLE_STREAMS_R2_ENDPOINT",
                        "https://acct.eu.r2.cloudflarestorage.com/"
                    ),
                    ("DURABLE_STREAMS_R2_REGION", "weur"),
                ])
                .unwrap()
            ),
            (
                "https://acct.eu.r2.cloudflarestorage.com".into(),
                "weur".into()
            )
        );
        let e = store(&[("DURABLE_STREAMS_R2_ENDPOINT", "http://r2.example.com")]).unwrap_err();
        assert!(e.0.contains("DURABLE_STREAMS_R2_ENDPOINT"), "{e}");
    }
}
