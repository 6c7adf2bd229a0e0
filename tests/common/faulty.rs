//! A real `ObjectStore` that wraps another and injects faults by policy: errors before the
//! call, errors after a write that did happen ("lost acknowledgements"), calls that never
//! answer (cut off by the server's per-attempt timeout) and slow answers. It can also
//! throttle the bytes written (one bandwidth limit shared by all calls), fail a chosen part
//! of a multipart upload, and counts multipart uploads, parts, completions and aborts.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt as _};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result, UploadPart,
};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::time::Instant;

/// Probabilities (0..=1) of each fault per call, and the longest added delay.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// Fail before doing anything.
    pub error: f64,
    /// Writes and deletes: do it, then report a failure.
    pub lost_ack: f64,
    /// Never answer.
    pub hang: f64,
    /// Sleep up to this long before every call.
    pub slow_ms: u64,
}

impl Policy {
    pub const HEALTHY: Policy = Policy {
        error: 0.0,
        lost_ack: 0.0,
        hang: 0.0,
        slow_ms: 0,
    };
    pub const DOWN: Policy = Policy {
        error: 1.0,
        lost_ack: 0.0,
        hang: 0.0,
        slow_ms: 0,
    };
}

/// How many faults of each kind were injected.
#[derive(Debug, Default)]
pub struct Injected {
    pub errors: AtomicU64,
    pub lost_acks: AtomicU64,
    pub hangs: AtomicU64,
    pub calls: AtomicU64,
}

pub struct Faulty {
    inner: Arc<dyn ObjectStore>,
    policy: Mutex<Policy>,
    rng: Mutex<StdRng>,
    pub injected: Injected,
    throttle: Arc<Throttle>,
    pub multipart: Arc<Multipart>,
    /// A bug in the client library: every PUT panics.
    panic_on_put: std::sync::atomic::AtomicBool,
}

/// A bandwidth limit shared by every call, token-bucket style: the bytes of each write
/// pass in small chunks, and each chunk waits for its share of the limit, so concurrent
/// writes split the bandwidth between them. Idle time does not build up credit.
#[derive(Debug)]
struct Throttle {
    /// 0: no limit.
    bytes_per_sec: AtomicU64,
    /// When the bytes passed so far will have gone through at the limit.
    busy_until: Mutex<Instant>,
}

/// The unit in which concurrent writes share the bandwidth.
const THROTTLE_CHUNK: u64 = 16 << 10;

impl Throttle {
    async fn pass(&self, bytes: u64) {
        let rate = self.bytes_per_sec.load(Ordering::Relaxed);
        if rate == 0 {
            return;
        }
        let mut left = bytes;
        while left > 0 {
            let n = left.min(THROTTLE_CHUNK);
            left -= n;
            let until = {
                let mut busy = self.busy_until.lock().unwrap();
                *busy =
                    (*busy).max(Instant::now()) + Duration::from_secs_f64(n as f64 / rate as f64);
                *busy
            };
            tokio::time::sleep_until(until).await;
        }
    }
}

/// What happened to multipart uploads, and a part to fail.
#[derive(Debug, Default)]
pub struct Multipart {
    pub uploads: AtomicU64,
    pub parts: AtomicU64,
    pub completes: AtomicU64,
    pub aborts: AtomicU64,
    /// Fail the part with this index (0-based, counted per upload) once.
    fail_part: Mutex<Option<usize>>,
}

/// An upload of the inner store with the throttle applied to its parts.
#[derive(Debug)]
struct FaultyUpload {
    inner: Box<dyn MultipartUpload>,
    throttle: Arc<Throttle>,
    state: Arc<Multipart>,
    next_part: usize,
}

#[async_trait]
impl MultipartUpload for FaultyUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let index = self.next_part;
        self.next_part += 1;
        self.state.parts.fetch_add(1, Ordering::Relaxed);
        let len = data.content_length() as u64;
        // The inner store numbers parts as they are asked for: a failed part still uses up
        // its number, as a real store's would.
        let part = self.inner.put_part(data);
        let fail = {
            let mut f = self.state.fail_part.lock().unwrap();
            let hit = *f == Some(index);
            if hit {
                *f = None;
            }
            hit
        };
        if fail {
            drop(part);
            return Box::pin(async { Err(injected("part error")) });
        }
        let throttle = self.throttle.clone();
        Box::pin(async move {
            throttle.pass(len).await;
            part.await
        })
    }

    async fn complete(&mut self) -> Result<PutResult> {
        let r = self.inner.complete().await;
        if r.is_ok() {
            self.state.completes.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    async fn abort(&mut self) -> Result<()> {
        self.state.aborts.fetch_add(1, Ordering::Relaxed);
        self.inner.abort().await
    }
}

enum Fault {
    None,
    Error,
    LostAck,
    Hang,
}

impl Faulty {
    pub fn new(inner: Arc<dyn ObjectStore>, policy: Policy, seed: u64) -> Arc<Faulty> {
        Arc::new(Faulty {
            inner,
            policy: Mutex::new(policy),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            injected: Injected::default(),
            throttle: Arc::new(Throttle {
                bytes_per_sec: AtomicU64::new(0),
                busy_until: Mutex::new(Instant::now()),
            }),
            multipart: Arc::new(Multipart::default()),
            panic_on_put: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Makes every later PUT panic (as a buggy client library would).
    pub fn panic_on_put(&self) {
        self.panic_on_put.store(true, Ordering::Relaxed);
    }

    pub fn set(&self, policy: Policy) {
        *self.policy.lock().unwrap() = policy;
    }

    /// Limits the bytes of PUT bodies and multipart parts, all calls together, to
    /// `bytes_per_sec` (0: no limit).
    pub fn throttle(&self, bytes_per_sec: u64) {
        self.throttle
            .bytes_per_sec
            .store(bytes_per_sec, Ordering::Relaxed);
    }

    /// Fails the part with this 0-based index of the next multipart upload that gets that
    /// far, once.
    pub fn fail_part_once(&self, index: usize) {
        *self.multipart.fail_part.lock().unwrap() = Some(index);
    }

    fn roll(&self, write: bool) -> (Fault, Duration) {
        let p = *self.policy.lock().unwrap();
        let mut rng = self.rng.lock().unwrap();
        let delay = if p.slow_ms > 0 {
            Duration::from_millis(rng.random_range(0..=p.slow_ms))
        } else {
            Duration::ZERO
        };
        let r: f64 = rng.random();
        self.injected.calls.fetch_add(1, Ordering::Relaxed);
        let fault = if r < p.error {
            self.injected.errors.fetch_add(1, Ordering::Relaxed);
            Fault::Error
        } else if r < p.error + p.hang {
            self.injected.hangs.fetch_add(1, Ordering::Relaxed);
            Fault::Hang
        } else if write && r < p.error + p.hang + p.lost_ack {
            self.injected.lost_acks.fetch_add(1, Ordering::Relaxed);
            Fault::LostAck
        } else {
            Fault::None
        };
        (fault, delay)
    }

    /// Applies the policy around one call.
    async fn around<T, F>(&self, write: bool, call: F) -> Result<T>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        let (fault, delay) = self.roll(write);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        match fault {
            Fault::None => call.await,
            Fault::Error => Err(injected("error")),
            Fault::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Err(injected("hang"))
            }
            Fault::LostAck => {
                call.await?;
                Err(injected("lost acknowledgement"))
            }
        }
    }
}

fn injected(what: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "faulty",
        source: format!("injected {what}").into(),
    }
}

impl fmt::Display for Faulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "faulty({})", self.inner)
    }
}

impl fmt::Debug for Faulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Faulty({:?})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for Faulty {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let len = payload.content_length() as u64;
        if self.panic_on_put.load(Ordering::Relaxed) {
            panic!("injected panic in the object-store client");
        }
        self.around(true, async {
            self.throttle.pass(len).await;
            self.inner.put_opts(location, payload, opts).await
        })
        .await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let inner = self
            .around(false, self.inner.put_multipart_opts(location, opts))
            .await?;
        self.multipart.uploads.fetch_add(1, Ordering::Relaxed);
        Ok(Box::new(FaultyUpload {
            inner,
            throttle: self.throttle.clone(),
            state: self.multipart.clone(),
            next_part: 0,
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.around(false, self.inner.get_opts(location, options))
            .await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.around(false, self.inner.get_ranges(location, ranges))
            .await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        match self.roll(true).0 {
            Fault::None => self.inner.delete_stream(locations),
            // A delete that did not happen (hangs are reported as errors here).
            Fault::Error | Fault::Hang => locations.map(|_| Err(injected("delete error"))).boxed(),
            Fault::LostAck => {
                let inner = self.inner.delete_stream(locations);
                inner
                    .map(|r| r.and_then(|_| Err(injected("lost delete acknowledgement"))))
                    .boxed()
            }
        }
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        match self.roll(false).0 {
            Fault::None | Fault::LostAck => self.inner.list(prefix),
            Fault::Error | Fault::Hang => {
                stream::once(async { Err(injected("list error")) }).boxed()
            }
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.around(false, self.inner.list_with_delimiter(prefix))
            .await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.around(true, self.inner.copy_opts(from, to, options))
            .await
    }
}
