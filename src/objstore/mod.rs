//! The object store: an `object_store` client chosen by configuration, wrapped so that every
//! call has a per-attempt timeout and retries with exponential backoff and jitter. Errors
//! that retrying cannot fix (not found, precondition failed, unsupported) are returned at
//! once. `keys` names every object.
//!
//! An attempt that moves a known number of bytes (a PUT, a ranged GET) gets time for them
//! at the slowest tolerated rate on top of the base timeout ([`RetryPolicy::timeout_for`]).
//! Large files are uploaded in parts that we drive ourselves: each part has its own
//! timeout, and an upload that fails part-way is aborted (so no orphaned parts stay
//! billed) before the whole upload is retried as a fresh one.

pub mod keys;
pub mod ledger;

use std::future::Future;
use std::ops::Range;
use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt as _;
use object_store::path::Path;
use object_store::{
    MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload,
    PutResult, UpdateVersion,
};
use tokio::io::AsyncReadExt as _;

use crate::config::{ObjectStoreConfig, RetryPolicy};
use crate::telemetry::metrics::metrics;
use ledger::{Op, RequestLedger, StreamRequests, Target};

/// Files above this size are uploaded in parts.
const MULTIPART_THRESHOLD: u64 = 8 << 20;
/// Every part but the last has this size (S3's minimum; R2 wants them all equal).
const PART_SIZE: u64 = 5 << 20;
/// Parts of one upload sent at the same time.
const PARTS_IN_FLIGHT: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object not found: {0}")]
    NotFound(String),
    #[error("object changed concurrently: {0}")]
    Precondition(String),
    #[error("object store timed out after {0} ms")]
    Timeout(u64),
    #[error("object store error: {0}")]
    Other(String),
    #[error("cannot read local file {0}: {1}")]
    Local(String, std::io::Error),
}

impl From<object_store::Error> for StoreError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { path, .. } => StoreError::NotFound(path),
            object_store::Error::Precondition { path, .. }
            | object_store::Error::AlreadyExists { path, .. } => StoreError::Precondition(path),
            other => StoreError::Other(other.to_string()),
        }
    }
}

impl StoreError {
    fn retryable(&self) -> bool {
        matches!(self, StoreError::Timeout(_) | StoreError::Other(_))
    }
}

/// A shared, retrying object-store client.
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    retry: RetryPolicy,
    label: String,
    /// Requests per stream incarnation (see [`ledger`]).
    ledger: Arc<RequestLedger>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.label)
    }
}

impl Store {
    /// Builds the client for `cfg` (creating a local directory if needed).
    pub fn build(cfg: &ObjectStoreConfig, retry: RetryPolicy) -> Result<Store, StoreError> {
        let (inner, label): (Arc<dyn ObjectStore>, String) = match cfg {
            ObjectStoreConfig::Memory => (
                Arc::new(object_store::memory::InMemory::new()),
                "memory".into(),
            ),
            ObjectStoreConfig::Local { dir } => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::Local(dir.display().to_string(), e))?;
                // Every object is fsynced with its directory before the put returns: the
                // writer deletes a segment's entries from SQLite once its upload is
                // recorded, so the object must survive a power loss, not only a crash of
                // this process.
                let fs =
                    object_store::local::LocalFileSystem::new_with_prefix(dir)?.with_fsync(true);
                (Arc::new(fs), format!("local:{}", dir.display()))
            }
            ObjectStoreConfig::S3 {
                endpoint,
                bucket,
                region,
                access_key_id,
                secret_access_key,
                allow_http,
            } => {
                let s3 = object_store::aws::AmazonS3Builder::new()
                    .with_endpoint(endpoint)
                    .with_bucket_name(bucket)
                    .with_region(region)
                    .with_access_key_id(access_key_id)
                    .with_secret_access_key(secret_access_key)
                    .with_allow_http(*allow_http)
                    .with_virtual_hosted_style_request(false)
                    .with_retry(object_store::RetryConfig {
                        max_retries: 0, // our own policy below retries every call
                        ..Default::default()
                    })
                    .build()?;
                (Arc::new(s3), format!("s3:{endpoint}/{bucket}"))
            }
        };
        Ok(Store {
            inner,
            retry,
            label,
            ledger: Arc::default(),
        })
    }

    /// Wraps an existing client (tests use this to inject faults).
    pub fn from_object_store(inner: Arc<dyn ObjectStore>, retry: RetryPolicy) -> Store {
        Store {
            label: inner.to_string(),
            inner,
            retry,
            ledger: Arc::default(),
        }
    }

    /// The requests sent so far for a stream incarnation's objects, and the size of
    /// its last manifest written by this process.
    pub fn requests_of(&self, incarnation: &str) -> StreamRequests {
        self.ledger.of(incarnation)
    }

    /// Runs `f` until it succeeds, fails for good or the retries are used up. Each attempt
    /// is cut off after `limit`; `None` is for attempts that bound each of their own steps.
    async fn with_retry<T, F, Fut>(
        &self,
        what: &str,
        target: Option<Target>,
        limit: Option<Duration>,
        mut f: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let mut delay = self.retry.base_ms;
        let mut attempt = 0;
        let m = metrics();
        let op = m.store_op(
            what.trim_end_matches("_conditional")
                .trim_end_matches("_range"),
        );
        let ledger_op = match what {
            "get" | "get_range" => Op::Get,
            "head" => Op::Head,
            "list" => Op::List,
            "delete" => Op::Delete,
            _ => Op::Put,
        };
        loop {
            let started = crate::clock::monotonic();
            let r = match limit {
                Some(limit) => bounded(limit, f()).await,
                None => f().await,
            };
            m.store_seconds.observe_since(started);
            if let Some(t) = &target {
                self.ledger.record(t, ledger_op);
            }
            if let Some(i) = op {
                m.store_requests[i].inc();
                if matches!(&r, Err(e) if e.retryable()) {
                    m.store_errors[i].inc();
                }
            }
            match r {
                Err(e) if e.retryable() && attempt < self.retry.retries => {
                    attempt += 1;
                    m.store_retries.inc();
                    let jitter = crate::clock::jitter();
                    let sleep = ((delay as f64) * jitter) as u64;
                    tracing::debug!(what, attempt, error = %e, sleep_ms = sleep, "retrying object store call");
                    crate::clock::sleep(Duration::from_millis(sleep.min(self.retry.max_ms))).await;
                    delay = (delay * 2).min(self.retry.max_ms);
                }
                other => return other,
            }
        }
    }

    /// Writes an object (overwriting).
    pub async fn put(&self, key: &str, data: Bytes) -> Result<Option<String>, StoreError> {
        let path = Path::from(key);
        let limit = self.retry.timeout_for(data.len() as u64);
        let target = Target::of_key(key);
        let tag = self
            .with_retry("put", target.clone(), Some(limit), || async {
                let r = self
                    .inner
                    .put(&path, PutPayload::from(data.clone()))
                    .await?;
                Ok(r.e_tag)
            })
            .await?;
        self.wrote(target.as_ref(), data.len());
        Ok(tag)
    }

    /// Remembers the size of a manifest once it is written.
    fn wrote(&self, target: Option<&Target>, len: usize) {
        if let Some(t) = target.filter(|t| t.artifact == ledger::Artifact::Manifest) {
            self.ledger.manifest_written(&t.incarnation, len as u64);
        }
    }

    /// Uploads a local file, in parts when it is large, without reading it all into memory.
    pub async fn put_file(&self, key: &str, file: &FsPath) -> Result<Option<String>, StoreError> {
        let local = |e| StoreError::Local(file.display().to_string(), e);
        let len = tokio::fs::metadata(file).await.map_err(local)?.len();
        if len <= MULTIPART_THRESHOLD {
            let data = tokio::fs::read(file).await.map_err(local)?;
            return self.put(key, Bytes::from(data)).await;
        }
        let path = Path::from(key);
        self.with_retry("put_multipart", Target::of_key(key), None, || {
            self.multipart_attempt(&path, file, len)
        })
        .await
    }

    /// One attempt at a multipart upload: a fresh upload, the file's parts, `complete`.
    /// When anything fails the upload is aborted, so that its parts do not stay behind.
    async fn multipart_attempt(
        &self,
        path: &Path,
        file: &FsPath,
        len: u64,
    ) -> Result<Option<String>, StoreError> {
        let base = self.retry.timeout_for(0);
        let mut upload = bounded(base, async { Ok(self.inner.put_multipart(path).await?) }).await?;
        match self.send_parts(upload.as_mut(), file, len).await {
            Ok(done) => Ok(done.e_tag),
            Err(e) => {
                if let Err(abort) = bounded(base, async { Ok(upload.abort().await?) }).await {
                    tracing::warn!(
                        key = %path, error = %abort,
                        "cannot abort a failed multipart upload; its parts stay in the store \
                         until a lifecycle rule removes them"
                    );
                }
                Err(e)
            }
        }
    }

    /// Sends `len` bytes of `file` as parts of `upload`, each with its own timeout, and
    /// completes it. Parts still in flight when this fails are cancelled.
    async fn send_parts(
        &self,
        upload: &mut dyn MultipartUpload,
        file: &FsPath,
        len: u64,
    ) -> Result<PutResult, StoreError> {
        let local = |e| StoreError::Local(file.display().to_string(), e);
        let mut f = tokio::fs::File::open(file).await.map_err(local)?;
        // A part's number is fixed when `put_part` is called, so a failed part cannot be
        // sent again in the same upload (it would leave a gap): any failure ends it.
        let mut parts = tokio::task::JoinSet::new();
        let mut left = len;
        while left > 0 {
            while parts.len() >= PARTS_IN_FLIGHT {
                if let Some(sent) = parts.join_next().await {
                    part_result(sent)?;
                }
            }
            let n = left.min(PART_SIZE);
            let mut buf = vec![0u8; n as usize];
            f.read_exact(&mut buf).await.map_err(local)?;
            left -= n;
            let part = upload.put_part(PutPayload::from(buf));
            parts.spawn(bounded(self.retry.timeout_for(n), async move {
                Ok(part.await?)
            }));
        }
        while let Some(sent) = parts.join_next().await {
            part_result(sent)?;
        }
        bounded(self.retry.timeout_for(0), async {
            Ok(upload.complete().await?)
        })
        .await
    }

    /// Writes a manifest as a conditional update: create-only when `expected` is `None`,
    /// else only if the current object still has that ETag. Stores that cannot do
    /// conditional writes get a plain overwrite. Returns the new ETag.
    pub async fn put_conditional(
        &self,
        key: &str,
        data: Bytes,
        expected: Option<String>,
    ) -> Result<Option<String>, StoreError> {
        let path = Path::from(key);
        let mode = match &expected {
            None => PutMode::Create,
            Some(e) => PutMode::Update(UpdateVersion {
                e_tag: Some(e.clone()),
                version: None,
            }),
        };
        let limit = self.retry.timeout_for(data.len() as u64);
        let target = Target::of_key(key);
        let r = self
            .with_retry("put_conditional", target.clone(), Some(limit), || async {
                let opts = PutOptions::from(mode.clone());
                match self
                    .inner
                    .put_opts(&path, PutPayload::from(data.clone()), opts)
                    .await
                {
                    Ok(r) => Ok(Ok(r.e_tag)),
                    Err(object_store::Error::NotImplemented { .. }) => Ok(Err(())),
                    Err(e) => Err(StoreError::from(e)),
                }
            })
            .await?;
        match r {
            Ok(tag) => {
                self.wrote(target.as_ref(), data.len());
                Ok(tag)
            }
            Err(()) => self.put(key, data).await,
        }
    }

    /// Reads a whole object (a manifest: small, of unknown size, so only the base timeout).
    pub async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let path = Path::from(key);
        let target = Target::of_key(key);
        self.with_retry("get", target, Some(self.retry.timeout_for(0)), || async {
            Ok(self.inner.get(&path).await?.bytes().await?)
        })
        .await
    }

    /// Reads a byte range of an object.
    pub async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StoreError> {
        let path = Path::from(key);
        let limit = self
            .retry
            .timeout_for(range.end.saturating_sub(range.start));
        self.with_retry("get_range", Target::of_key(key), Some(limit), || async {
            Ok(self.inner.get_range(&path, range.clone()).await?)
        })
        .await
    }

    pub async fn head(&self, key: &str) -> Result<ObjectMeta, StoreError> {
        let path = Path::from(key);
        let target = Target::of_key(key);
        self.with_retry("head", target, Some(self.retry.timeout_for(0)), || async {
            Ok(self.inner.head(&path).await?)
        })
        .await
    }

    /// Deletes an object; a missing object is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = Path::from(key);
        let target = Target::of_key(key);
        self.with_retry(
            "delete",
            target,
            Some(self.retry.timeout_for(0)),
            || async {
                match self.inner.delete(&path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            },
        )
        .await
    }

    /// Every key under `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let path = Path::from(prefix);
        let target = Target::of_prefix(prefix);
        self.with_retry("list", target, Some(self.retry.timeout_for(0)), || async {
            let metas: Vec<ObjectMeta> = self.inner.list(Some(&path)).try_collect().await?;
            Ok(metas.into_iter().map(|m| m.location.to_string()).collect())
        })
        .await
    }
}

/// `fut`, cut off after `limit`.
async fn bounded<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(StoreError::Timeout(
            u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
        )),
    }
}

/// The outcome of one part's task.
fn part_result(
    sent: Result<Result<(), StoreError>, tokio::task::JoinError>,
) -> Result<(), StoreError> {
    sent.map_err(|e| StoreError::Other(format!("multipart upload part: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &FsPath) -> Store {
        Store::build(
            &ObjectStoreConfig::Local {
                dir: dir.to_path_buf(),
            },
            RetryPolicy::default(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn local_store_round_trips_and_survives_a_new_client() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        s.put(
            "streams/a/b/segments/1.seg",
            Bytes::from_static(b"0123456789"),
        )
        .await
        .unwrap();
        assert_eq!(
            s.get_range("streams/a/b/segments/1.seg", 2..5)
                .await
                .unwrap(),
            Bytes::from_static(b"234")
        );
        let again = store(dir.path());
        assert_eq!(
            again.head("streams/a/b/segments/1.seg").await.unwrap().size,
            10
        );
        assert_eq!(
            again.list("streams/").await.unwrap(),
            vec!["streams/a/b/segments/1.seg"]
        );
        again.delete("streams/a/b/segments/1.seg").await.unwrap();
        again.delete("streams/a/b/segments/1.seg").await.unwrap();
        assert!(matches!(
            again.get("streams/a/b/segments/1.seg").await,
            Err(StoreError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn conditional_puts_detect_concurrent_writers() {
        let s = Store::build(&ObjectStoreConfig::Memory, RetryPolicy::default()).unwrap();
        let t1 = s
            .put_conditional("m", Bytes::from_static(b"1"), None)
            .await
            .unwrap();
        assert!(matches!(
            s.put_conditional("m", Bytes::from_static(b"x"), None).await,
            Err(StoreError::Precondition(_))
        ));
        let t2 = s
            .put_conditional("m", Bytes::from_static(b"2"), t1.clone())
            .await
            .unwrap();
        assert!(matches!(
            s.put_conditional("m", Bytes::from_static(b"3"), t1).await,
            Err(StoreError::Precondition(_))
        ));
        s.put_conditional("m", Bytes::from_static(b"3"), t2)
            .await
            .unwrap();
        assert_eq!(s.get("m").await.unwrap(), Bytes::from_static(b"3"));
    }

    #[tokio::test]
    async fn requests_are_counted_per_stream_incarnation() {
        use ledger::Artifact;
        let s = Store::build(&ObjectStoreConfig::Memory, RetryPolicy::default()).unwrap();
        let p = keys::stream_prefix("feed");
        s.put(&keys::segment(&p, 0), Bytes::from_static(b"seg"))
            .await
            .unwrap();
        s.get_range(&keys::segment(&p, 0), 0..2).await.unwrap();
        s.put_conditional(&keys::manifest(&p), Bytes::from_static(b"12345"), None)
            .await
            .unwrap();
        s.list(&p).await.unwrap();
        s.list(keys::STREAMS_PREFIX).await.unwrap();
        s.put("elsewhere", Bytes::from_static(b"x")).await.unwrap();
        let r = s.requests_of("feed");
        assert_eq!(r.manifest_bytes, Some(5));
        let count = |a: Artifact| r.by_artifact.iter().find(|(x, _)| *x == a).unwrap().1;
        assert_eq!(count(Artifact::Manifest).puts, 1);
        let seg = count(Artifact::Segment);
        assert_eq!((seg.puts, seg.gets, seg.lists), (1, 1, 1));
        assert_eq!(s.requests_of("other"), ledger::StreamRequests::default());
    }

    #[tokio::test]
    async fn large_files_upload_in_parts() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir.path().join("store"));
        let file = dir.path().join("big");
        // An odd last part, and parts that fill the file exactly.
        for len in [MULTIPART_THRESHOLD + 3_000_000, 3 * PART_SIZE] {
            let data: Vec<u8> = (0..len as usize).map(|i| (i % 251) as u8).collect();
            std::fs::write(&file, &data).unwrap();
            s.put_file("big.seg", &file).await.unwrap();
            assert_eq!(s.get("big.seg").await.unwrap().as_ref(), &data[..]);
        }
    }
}
