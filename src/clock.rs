//! The only reader of time and randomness (`clippy.toml` forbids the std, tokio and rand
//! entry points everywhere else).
//!
//! - Wall time and the randomness that decisions depend on go through the injected
//!   [`Clock`]: production code gets a [`SystemClock`]; tests inject a [`ManualClock`] and
//!   move time by hand.
//! - Deadlines and waits inside the async runtime use tokio's clock ([`now`], [`sleep`]),
//!   which tests pause and advance (`#[tokio::test(start_paused = true)]`).
//! - Threads outside the runtime (the SQLite writer, command-line helpers) measure
//!   durations with [`monotonic`] and wait with [`sleep_blocking`].
#![allow(clippy::disallowed_methods)] // this module is where time is read

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Now, on tokio's clock (paused in tests that ask for it).
pub fn now() -> tokio::time::Instant {
    tokio::time::Instant::now()
}

/// Waits on tokio's clock.
pub async fn sleep(d: Duration) {
    tokio::time::sleep(d).await
}

/// Now, on the monotonic clock of the operating system (for threads outside the async
/// runtime, and for measuring how long something took).
pub fn monotonic() -> std::time::Instant {
    std::time::Instant::now()
}

/// Blocks the current (non-async) thread.
pub fn sleep_blocking(d: Duration) {
    std::thread::sleep(d)
}

/// A random factor in `[0.9, 1.1)` to spread retries (no decision depends on its value).
pub fn jitter() -> f64 {
    0.9 + rand::random::<f64>() * 0.2
}

/// Wall time and randomness, injected everywhere that needs them.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
    /// A uniformly distributed number in `lo..=hi`.
    fn random_in(&self, lo: u64, hi: u64) -> u64;
}

/// Shared handle to the clock in use.
pub type SharedClock = Arc<dyn Clock>;

/// The real clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        d.as_millis() as i64
    }

    fn random_in(&self, lo: u64, hi: u64) -> u64 {
        use rand::Rng as _;
        if hi <= lo {
            return lo;
        }
        rand::rng().random_range(lo..=hi)
    }
}

/// A clock that only moves when told to; randomness is a deterministic counter.
#[derive(Debug)]
pub struct ManualClock {
    now: AtomicI64,
    counter: AtomicU64,
}

impl ManualClock {
    pub fn new(start_ms: i64) -> Arc<Self> {
        Arc::new(ManualClock {
            now: AtomicI64::new(start_ms),
            counter: AtomicU64::new(0),
        })
    }

    pub fn advance_ms(&self, ms: i64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }

    fn random_in(&self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        match (hi - lo).checked_add(1) {
            Some(span) => lo + n % span,
            None => lo.wrapping_add(n),
        }
    }
}
