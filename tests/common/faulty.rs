//! A real `ObjectStore` that wraps another and injects faults by policy: errors before the
//! call, errors after a write that did happen ("lost acknowledgements"), calls that never
//! answer (cut off by the server's per-attempt timeout) and slow answers.

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
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

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
        })
    }

    pub fn set(&self, policy: Policy) {
        *self.policy.lock().unwrap() = policy;
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
        self.around(true, self.inner.put_opts(location, payload, opts))
            .await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.around(false, self.inner.put_multipart_opts(location, opts))
            .await
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
