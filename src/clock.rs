//! The only reader of wall-clock time and randomness. Production code gets a
//! [`SystemClock`]; tests inject a [`ManualClock`] and move time by hand.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

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
