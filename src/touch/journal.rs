//! The in-memory touch journal of one touch-enabled stream: what clients of
//! `touch/wait` long-poll, and what `touch/meta` describes.
//!
//! # What it is
//!
//! The stream's processor turns committed changes into *touches* (32-bit key ids, some
//! with their full 64-bit key) and hands them to [`TouchJournal::touch`]. Touches collect
//! in a *pending bucket*; when the bucket is flushed, the journal's *generation* goes up
//! by one and everyone waiting on one of the bucket's keys is woken. A client remembers a
//! cursor `<epoch>:<generation>` and asks "was any of my keys touched after this
//! generation?" — the answer may be a false positive (the client re-runs its query for
//! nothing), never a false negative within one epoch.
//!
//! # Why it looks like this
//!
//! - **Epoch.** The journal lives only in memory, so a restart must invalidate every
//!   cursor: each journal draws a random 64-bit epoch (16 hex digits) when it is created
//!   and the route answers `stale` to a cursor of another epoch.
//! - **"Last set" filter.** Remembering every key of every generation is unbounded, so the
//!   journal keeps a Bloom-like array of generations: a key touched in generation `g`
//!   writes `g` into its `k` positions, and "maybe touched since `s`" is "the smallest of
//!   its `k` values is above `s`". Collisions only ever raise a value, which is why there
//!   are false positives and no false negatives.
//! - **Buckets.** Generations advance only when a bucket is flushed, so a cursor never
//!   points into the middle of a bucket. A bucket is due `coalesceMs` after its first
//!   touch (the processor lowers `coalesceMs` while clients wait and the stream keeps up;
//!   `bucketMs` is the cap). A bucket with more than `pendingMaxKeys` distinct keys
//!   *overflows*: it stops remembering keys and, when flushed, wakes every waiter and
//!   answers "maybe touched" for every cursor before it.
//! - **Exact lane.** A client that watches at most 16 full 64-bit keys can be told "not
//!   touched" even when the filter has a false positive: the journal keeps, for the last
//!   15 s and at least the last 16 generations, the exact keys each generation flushed.
//!   When that history cannot prove the answer (the cursor is older than the history, a
//!   generation overflowed, or the memory budget dropped it), the filter answers.
//! - **Waiters.** A waiter costs one registration (its keys, a oneshot sender) and one
//!   tokio timer (tokio's timer wheel takes the place of the original's deadline heap);
//!   it is indexed by each of its keys, so a flush wakes exactly the waiters of the keys
//!   it touched. A waiter with more than `keyIndexMaxKeys` keys is *broad*: it
//!   is not indexed and each flush checks its keys against the filter instead. Dropping a
//!   wait future (the client went away) removes its registration (a drop guard).
//!
//! # Memory
//!
//! The original allocates `4 · 2^filterPow2` bytes (16 MiB at the default 22) for every
//! touch-enabled stream as soon as its journal exists, used or not. Here the filter size
//! is still a constructor parameter (`memory.filterPow2`, reported as `filterSize`, so
//! the false-positive rate clients see is the configured one), but the array is allocated
//! on the first flush that has keys: a stream nobody touches costs a few hundred bytes.
//! Everything else is bounded by configuration too: the pending bucket by
//! `pendingMaxKeys`, the exact history by [`JournalConfig::exact_history_max_keys`], the
//! waiters by the number of open requests. [`TouchJournal::memory_bytes`] reports what a
//! journal holds, so the owner can enforce a server-wide budget (by refusing or shrinking
//! new journals); the journal itself never guesses about other streams.
//!
//! # Time and concurrency
//!
//! Wall-clock milliseconds (`lastFlushAtMs`, bucket start, flush intervals) come from the
//! injected [`Clock`](crate::clock::Clock); due times and deadlines are on tokio's clock
//! ([`crate::clock::now`]), which tests pause. All state sits behind one `std` mutex that
//! is never held across an `.await`; waiters are woken through `tokio::sync::oneshot`.
//! An owner either runs [`TouchJournal::spawn_flusher`] (a task that ends when the
//! journal is dropped) or drives [`TouchJournal::next_flush_due`] and
//! [`TouchJournal::flush_if_due`] itself.
//!
//! Generations are `u32` and wrap, as in the original; the filter's comparisons assume
//! they do not (at one flush per 10 ms a wrap takes 497 days).

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use crate::clock::{self, SharedClock};

/// How long the exact lane keeps the keys of a flushed generation.
pub const EXACT_RECENT_WINDOW_MS: i64 = 15_000;
/// The exact lane keeps at least this many generations, however old (memory permitting).
pub const EXACT_MIN_GENERATIONS: usize = 16;
/// Window of the flush-interval statistics in [`JournalMeta`].
const FLUSH_INTERVAL_WINDOW_MS: i64 = 10_000;
/// Stride used by the filter when the mixed key id is 0.
const ZERO_STRIDE: u32 = 0x9e37_79b9;

/// The journal's knobs, from the stream's `touch.memory` profile section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalConfig {
    /// `memory.bucketMs`: the longest a bucket stays open, and the initial `coalesceMs`.
    pub bucket_ms: u64,
    /// `memory.filterPow2`: the filter has `2^filter_pow2` slots (clamped to 10..=30).
    pub filter_pow2: u32,
    /// `memory.k`: filter positions per key (clamped to 1..=8).
    pub k: u32,
    /// `memory.pendingMaxKeys`: distinct keys a bucket holds before it overflows.
    pub pending_max_keys: usize,
    /// `memory.keyIndexMaxKeys`: waiters with more keys are broad (scanned per flush).
    pub key_index_max_keys: usize,
    /// Budget of the exact lane's history, in keys (each generation counts one more).
    /// Not in the original's configuration; the original's history is unbounded.
    pub exact_history_max_keys: usize,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            bucket_ms: 100,
            filter_pow2: 22,
            k: 4,
            pending_max_keys: 100_000,
            key_index_max_keys: 32,
            exact_history_max_keys: 65_536,
        }
    }
}

impl JournalConfig {
    /// The same configuration with every value brought into its allowed range.
    fn normalized(&self) -> JournalConfig {
        JournalConfig {
            bucket_ms: self.bucket_ms.max(1),
            filter_pow2: self.filter_pow2.clamp(10, 30),
            k: self.k.clamp(1, 8),
            pending_max_keys: self.pending_max_keys.max(1),
            key_index_max_keys: self.key_index_max_keys.max(1),
            exact_history_max_keys: self.exact_history_max_keys.max(1),
        }
    }
}

/// A journal epoch: 64 random bits, written as 16 lowercase hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Epoch(pub u64);

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A position in a journal: `<epoch>:<generation>`.
///
/// The `now` form of `touch/wait` is not a cursor; the route replaces it by the journal's
/// current generation before parsing anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub epoch: Epoch,
    /// Decimal digits beyond `u32::MAX` saturate; the route clamps a generation ahead of
    /// the journal to the journal's generation anyway.
    pub generation: u32,
}

impl Cursor {
    /// Parses `<16 hex digits>:<decimal digits>` (hex in either case, surrounding
    /// whitespace ignored). Anything else is `None`.
    pub fn parse(raw: &str) -> Option<Cursor> {
        let (epoch, generation) = raw.trim().split_once(':')?;
        if epoch.len() != 16 || !epoch.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        if generation.is_empty() || !generation.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let epoch = u64::from_str_radix(epoch, 16).ok()?;
        let generation = generation.bytes().fold(0u32, |acc, b| {
            acc.saturating_mul(10).saturating_add(u32::from(b - b'0'))
        });
        Some(Cursor {
            epoch: Epoch(epoch),
            generation,
        })
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.epoch, self.generation)
    }
}

/// What woke a waiter (or, for an answer given without waiting, the last flushed bucket).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TouchHit {
    /// The generation of the flush.
    pub generation: u32,
    /// The touched key id; 0 for an overflow bucket, a broad waiter, an exact-lane match
    /// or an answer given without waiting.
    pub key_id: u32,
    /// Highest source position of the bucket (`None` when its touches carried none; for an
    /// answer given without waiting, the highest position ever flushed).
    pub bucket_max_source_pos: Option<u64>,
    /// Wall-clock time of the flush (0 before any flush).
    pub flush_at_ms: i64,
    /// Wall-clock time of the bucket's first touch (0 before any flush).
    pub bucket_start_ms: i64,
}

/// How [`TouchJournal::wait`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitOutcome {
    /// One of the keys was (maybe) touched after the given generation.
    Touched(TouchHit),
    /// The deadline passed first (or there was nothing to wait on).
    TimedOut,
}

/// Monotonic counters of a journal (the `journal*Total` fields of `touch/meta`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JournalCounters {
    /// Non-empty buckets flushed.
    pub flushes: u64,
    /// Waiters woken by a flush.
    pub notify_wakeups: u64,
    /// Flushes that woke at least one waiter.
    pub notify_flushes: u64,
    /// Wall-clock milliseconds spent waking waiters, summed over flushes.
    pub notify_wake_ms_total: u64,
    /// The longest such wake, in milliseconds.
    pub notify_wake_ms_max: u64,
    /// Registered waiters whose deadline passed.
    pub timeouts_fired: u64,
}

/// The journal's part of the `touch/meta` body (serializes to its field names), plus the
/// counters, which the route reports under its own names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalMeta {
    /// Always `"memory"`.
    pub mode: &'static str,
    pub cursor: String,
    pub epoch: String,
    pub generation: u32,
    pub bucket_ms: u64,
    pub coalesce_ms: u64,
    /// Slots of the filter (`2^filterPow2`), whether or not allocated yet.
    pub filter_size: u64,
    pub k: u32,
    pub pending_keys: usize,
    pub overflow_buckets: u64,
    pub active_waiters: usize,
    /// Highest source position ever flushed, in decimal; `"-1"` before any.
    pub bucket_max_source_offset_seq: String,
    pub last_flush_at_ms: i64,
    pub flush_interval_ms_max_last10s: i64,
    pub flush_interval_ms_p95_last10s: i64,
    #[serde(skip)]
    pub counters: JournalCounters,
}

/// The in-memory touch journal of one stream. Share it as `Arc<TouchJournal>`.
pub struct TouchJournal {
    clock: SharedClock,
    config: JournalConfig,
    state: Mutex<State>,
    /// Wakes the flusher task when a bucket opens or the journal is dropped.
    flush_wakeup: Arc<Notify>,
}

impl fmt::Debug for TouchJournal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TouchJournal")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Drop for TouchJournal {
    fn drop(&mut self) {
        // The flusher holds only a Weak; wake it so that it notices and ends.
        self.flush_wakeup.notify_one();
    }
}

impl TouchJournal {
    /// A fresh journal with a new random epoch, at generation 0. The filter is allocated
    /// on the first flush.
    pub fn new(config: &JournalConfig, clock: SharedClock) -> TouchJournal {
        let config = config.normalized();
        let epoch = Epoch(clock.random_in(0, u64::MAX));
        let state = State {
            epoch,
            generation: 0,
            coalesce_ms: config.bucket_ms,
            filter: Filter::new(config.filter_pow2, config.k),
            last_overflow_generation: 0,
            overflow_buckets: 0,
            pending: Pending::default(),
            exact: ExactHistory::new(config.exact_history_max_keys),
            last_flushed_source_pos: None,
            last_flush_at_ms: 0,
            last_bucket_start_ms: 0,
            flush_intervals: VecDeque::new(),
            waiters: Waiters::default(),
            counters: JournalCounters::default(),
        };
        TouchJournal {
            clock,
            config,
            state: Mutex::new(state),
            flush_wakeup: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The configuration in use (normalized).
    pub fn config(&self) -> &JournalConfig {
        &self.config
    }

    pub fn epoch(&self) -> Epoch {
        self.lock().epoch
    }

    pub fn generation(&self) -> u32 {
        self.lock().generation
    }

    /// The journal's current cursor.
    pub fn cursor(&self) -> Cursor {
        let state = self.lock();
        Cursor {
            epoch: state.epoch,
            generation: state.generation,
        }
    }

    /// The last flushed bucket, as a hit (what a response without a waking bucket reports).
    pub fn last_flush(&self) -> TouchHit {
        self.lock().last_flush_hit()
    }

    /// Sets the coalescing delay of the buckets opened from now on (clamped to
    /// `1..=bucketMs`). The processor calls this once per batch.
    pub fn set_coalesce_ms(&self, ms: u64) {
        self.lock().coalesce_ms = ms.clamp(1, self.config.bucket_ms);
    }

    /// Adds one touch to the pending bucket. `key64` is the full 64-bit key when there is
    /// one (the exact lane only sees touches that carry it); `source_pos` is the source
    /// offset sequence of the change.
    pub fn touch(&self, key_id: u32, key64: Option<u64>, source_pos: u64) {
        self.touch_all([(key_id, key64, source_pos)]);
    }

    /// [`touch`](Self::touch) for many touches under one lock.
    pub fn touch_all(&self, touches: impl IntoIterator<Item = (u32, Option<u64>, u64)>) {
        let opened = {
            let mut state = self.lock();
            let mut opened = false;
            for (key_id, key64, source_pos) in touches {
                opened |= state.touch(&self.config, &*self.clock, key_id, key64, source_pos);
            }
            opened
        };
        if opened {
            self.flush_wakeup.notify_one();
        }
    }

    /// When the pending bucket is due to be flushed (`None` when it is empty).
    pub fn next_flush_due(&self) -> Option<Instant> {
        self.lock().pending.due
    }

    /// Flushes the pending bucket if it is due at `now`; returns the new generation.
    pub fn flush_if_due(&self, now: Instant) -> Option<u32> {
        let mut state = self.lock();
        match state.pending.due {
            Some(due) if due <= now => state.flush(&*self.clock),
            _ => None,
        }
    }

    /// Flushes the pending bucket now, due or not; returns the new generation (`None`
    /// when the bucket was empty).
    pub fn flush_now(&self) -> Option<u32> {
        self.lock().flush(&*self.clock)
    }

    /// Starts a task that flushes each bucket when it is due (start at most one per
    /// journal). The task holds only a weak reference and ends once the journal is
    /// dropped.
    pub fn spawn_flusher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak: Weak<TouchJournal> = Arc::downgrade(self);
        let wakeup = Arc::clone(&self.flush_wakeup);
        tokio::spawn(async move {
            loop {
                // The strong reference is dropped before awaiting.
                let due = match weak.upgrade() {
                    Some(journal) => journal.next_flush_due(),
                    None => return,
                };
                match due {
                    Some(at) => {
                        // Woken early only when the journal is dropped or flushed by
                        // someone else and reopened; the loop re-reads the due time.
                        let _ = tokio::time::timeout_at(at, wakeup.notified()).await;
                    }
                    None => wakeup.notified().await,
                }
                match weak.upgrade() {
                    Some(journal) => {
                        journal.flush_if_due(clock::now());
                    }
                    None => return,
                }
            }
        })
    }

    /// Whether any of `key_ids` was maybe touched after generation `since` (the filter:
    /// false positives possible, no false negatives).
    pub fn maybe_touched_since(&self, key_ids: &[u32], since: u32) -> bool {
        self.lock().maybe_touched_since(key_ids, since)
    }

    /// What the exact history proves about the 64-bit `keys` after generation `since`:
    /// `Some(true)` touched, `Some(false)` not touched, `None` unknown (ask the filter).
    pub fn exact_touched_since(&self, keys: &[u64], since: u32) -> Option<bool> {
        let state = self.lock();
        state.exact.touched_since(keys, since, state.generation)
    }

    /// Waits until one of the keys is touched after `after_generation`, or `deadline`.
    ///
    /// - `key_ids` are matched through the filter and the waiter index.
    /// - `exact` (the exact lane, 1 to 16 keys as the route enforces) are matched against
    ///   the exact history first; when it cannot prove the answer, their key ids (the low
    ///   32 bits) go through the filter. While waiting, they wake the waiter only when a
    ///   flushed bucket holds one of them exactly (or overflowed).
    ///
    /// A generation ahead of the journal counts as the current one. If the keys were
    /// (maybe) touched already, the answer is immediate and describes the last flushed
    /// bucket; otherwise the waiter is registered after the current generation — in the
    /// same critical section, so no flush falls between the check and the registration.
    /// With no keys at all, or a deadline already passed, the answer is `TimedOut` without
    /// registering. Dropping the future removes the waiter.
    pub async fn wait(
        &self,
        key_ids: &[u32],
        exact: Option<&[u64]>,
        after_generation: u32,
        deadline: Instant,
    ) -> WaitOutcome {
        let exact = exact.unwrap_or(&[]);
        let (id, mut rx) = {
            let mut state = self.lock();
            let since = after_generation.min(state.generation);
            if state.already_touched(key_ids, exact, since) {
                return WaitOutcome::Touched(state.last_flush_hit());
            }
            if (key_ids.is_empty() && exact.is_empty()) || deadline <= clock::now() {
                return WaitOutcome::TimedOut;
            }
            let (tx, rx) = oneshot::channel();
            let broad = key_ids.len() > self.config.key_index_max_keys;
            let after = state.generation;
            let id = state.waiters.insert(key_ids, exact, broad, after, tx);
            (id, rx)
        };
        let guard = WaiterGuard {
            journal: self,
            id: Some(id),
        };
        let outcome = match tokio::time::timeout_at(deadline, &mut rx).await {
            Ok(Ok(hit)) => WaitOutcome::Touched(hit),
            // Only the journal drops a sender, and only after removing the waiter, which
            // it does without sending only when the guard asks; treat it as the deadline.
            Ok(Err(_)) => WaitOutcome::TimedOut,
            Err(_elapsed) => {
                let mut state = self.lock();
                if state.waiters.remove(id).is_some() {
                    state.counters.timeouts_fired += 1;
                    WaitOutcome::TimedOut
                } else {
                    // A flush removed us between the timer and the lock: take its hit.
                    drop(state);
                    match rx.try_recv() {
                        Ok(hit) => WaitOutcome::Touched(hit),
                        Err(_) => WaitOutcome::TimedOut,
                    }
                }
            }
        };
        guard.disarm();
        outcome
    }

    /// Registered waiters.
    pub fn active_waiters(&self) -> usize {
        self.lock().waiters.all.len()
    }

    pub fn counters(&self) -> JournalCounters {
        self.lock().counters
    }

    /// An estimate of the heap bytes this journal holds (filter, pending bucket, exact
    /// history, waiters), for a server-wide budget.
    pub fn memory_bytes(&self) -> usize {
        self.lock().memory_bytes()
    }

    /// The journal's `touch/meta` fields and counters, from one consistent snapshot.
    pub fn meta(&self) -> JournalMeta {
        let now_ms = self.clock.now_ms();
        let mut state = self.lock();
        state.prune_flush_intervals(now_ms);
        let mut intervals: Vec<i64> = state.flush_intervals.iter().map(|&(_, d)| d).collect();
        intervals.sort_unstable();
        let max = intervals.last().copied().unwrap_or(0);
        let p95 = match intervals.len() {
            0 => 0,
            n => intervals[(n - 1) * 95 / 100],
        };
        JournalMeta {
            mode: "memory",
            cursor: Cursor {
                epoch: state.epoch,
                generation: state.generation,
            }
            .to_string(),
            epoch: state.epoch.to_string(),
            generation: state.generation,
            bucket_ms: self.config.bucket_ms,
            coalesce_ms: state.coalesce_ms,
            filter_size: state.filter.size() as u64,
            k: self.config.k,
            pending_keys: state.pending.key_ids.len(),
            overflow_buckets: state.overflow_buckets,
            active_waiters: state.waiters.all.len(),
            bucket_max_source_offset_seq: match state.last_flushed_source_pos {
                Some(pos) => pos.to_string(),
                None => "-1".to_string(),
            },
            last_flush_at_ms: state.last_flush_at_ms,
            flush_interval_ms_max_last10s: max,
            flush_interval_ms_p95_last10s: p95,
            counters: state.counters,
        }
    }
}

/// Removes a registered waiter when its future is dropped before it finished.
struct WaiterGuard<'a> {
    journal: &'a TouchJournal,
    id: Option<u64>,
}

impl WaiterGuard<'_> {
    fn disarm(mut self) {
        self.id = None;
    }
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.journal.lock().waiters.remove(id);
        }
    }
}

/// Everything behind the journal's mutex.
struct State {
    epoch: Epoch,
    generation: u32,
    coalesce_ms: u64,
    filter: Filter,
    /// Generation of the last overflow bucket (0: none); every cursor before it is
    /// "maybe touched".
    last_overflow_generation: u32,
    overflow_buckets: u64,
    pending: Pending,
    exact: ExactHistory,
    /// Highest source position ever flushed.
    last_flushed_source_pos: Option<u64>,
    last_flush_at_ms: i64,
    last_bucket_start_ms: i64,
    /// `(flush time, interval since the previous flush)` for the last 10 s.
    flush_intervals: VecDeque<(i64, i64)>,
    waiters: Waiters,
    counters: JournalCounters,
}

impl State {
    /// Adds a touch; returns whether it opened the bucket.
    fn touch(
        &mut self,
        config: &JournalConfig,
        wall: &dyn crate::clock::Clock,
        key_id: u32,
        key64: Option<u64>,
        source_pos: u64,
    ) -> bool {
        let opened = self.pending.due.is_none();
        if opened {
            self.pending.start_ms = wall.now_ms();
            self.pending.due = Some(clock::now() + Duration::from_millis(self.coalesce_ms));
        }
        let max = config.pending_max_keys;
        let pending = &mut self.pending;
        if pending.key_ids.len() < max || pending.key_ids.contains(&key_id) {
            pending.key_ids.insert(key_id);
        } else {
            pending.overflow = true;
        }
        if let Some(key) = key64 {
            if pending.exact.len() < max || pending.exact.contains(&key) {
                pending.exact.insert(key);
            } else {
                pending.overflow = true;
            }
        }
        pending.max_source_pos = Some(
            pending
                .max_source_pos
                .map_or(source_pos, |m| m.max(source_pos)),
        );
        opened
    }

    fn maybe_touched_since(&self, key_ids: &[u32], since: u32) -> bool {
        since < self.last_overflow_generation
            || key_ids
                .iter()
                .any(|&k| self.filter.last_generation(k) > since)
    }

    /// The immediate answer of a wait (see [`TouchJournal::wait`]).
    fn already_touched(&self, key_ids: &[u32], exact: &[u64], since: u32) -> bool {
        if self.maybe_touched_since(key_ids, since) {
            return true;
        }
        if exact.is_empty() {
            return false;
        }
        match self.exact.touched_since(exact, since, self.generation) {
            Some(touched) => touched,
            None => exact
                .iter()
                .any(|&key| self.filter.last_generation(key as u32) > since),
        }
    }

    fn last_flush_hit(&self) -> TouchHit {
        TouchHit {
            generation: self.generation,
            key_id: 0,
            bucket_max_source_pos: self.last_flushed_source_pos,
            flush_at_ms: self.last_flush_at_ms,
            bucket_start_ms: self.last_bucket_start_ms,
        }
    }

    fn prune_flush_intervals(&mut self, now_ms: i64) {
        let cutoff = now_ms - FLUSH_INTERVAL_WINDOW_MS;
        while self
            .flush_intervals
            .front()
            .is_some_and(|&(at, _)| at < cutoff)
        {
            self.flush_intervals.pop_front();
        }
    }

    /// Flushes the pending bucket (if it has anything) and wakes its waiters.
    fn flush(&mut self, wall: &dyn crate::clock::Clock) -> Option<u32> {
        let pending = std::mem::take(&mut self.pending);
        if pending.key_ids.is_empty() && pending.exact.is_empty() && !pending.overflow {
            return None;
        }
        let generation = self.generation.wrapping_add(1);
        self.generation = generation;
        let flush_at_ms = wall.now_ms();
        if let Some(pos) = pending.max_source_pos {
            self.last_flushed_source_pos =
                Some(self.last_flushed_source_pos.map_or(pos, |m| m.max(pos)));
        }
        if self.last_flush_at_ms > 0 && flush_at_ms >= self.last_flush_at_ms {
            self.flush_intervals
                .push_back((flush_at_ms, flush_at_ms - self.last_flush_at_ms));
            self.prune_flush_intervals(flush_at_ms);
        }
        self.last_flush_at_ms = flush_at_ms;
        self.last_bucket_start_ms = pending.start_ms;
        self.counters.flushes += 1;
        if pending.overflow {
            self.overflow_buckets += 1;
            self.last_overflow_generation = generation;
        }
        // The keys an overflow bucket did keep still go into the filter; the overflow
        // generation covers the ones it dropped.
        for &key_id in &pending.key_ids {
            self.filter.set(key_id, generation);
        }
        let exact_keys = if pending.overflow {
            None
        } else {
            let mut keys: Vec<u64> = pending.exact.iter().copied().collect();
            keys.sort_unstable();
            Some(keys)
        };
        self.exact.push(generation, flush_at_ms, exact_keys);

        let hit = |key_id: u32| TouchHit {
            generation,
            key_id,
            bucket_max_source_pos: pending.max_source_pos,
            flush_at_ms,
            bucket_start_ms: pending.start_ms,
        };
        let wake_start_ms = wall.now_ms();
        let mut woken: Vec<(u64, u32)> = Vec::new();
        if pending.overflow {
            woken.extend(self.waiters.all.keys().map(|&id| (id, 0)));
        } else {
            for key in &pending.exact {
                if let Some(ids) = self.waiters.by_exact.get(key) {
                    woken.extend(ids.iter().map(|&id| (id, 0)));
                }
            }
            for &key_id in &pending.key_ids {
                if let Some(ids) = self.waiters.by_key.get(&key_id) {
                    woken.extend(ids.iter().map(|&id| (id, key_id)));
                }
            }
            for &id in &self.waiters.broad {
                if let Some(w) = self.waiters.all.get(&id) {
                    if self.maybe_touched_since(&w.key_ids, w.after) {
                        woken.push((id, 0));
                    }
                }
            }
        }
        let mut wakeups = 0u64;
        for (id, key_id) in woken {
            if self
                .waiters
                .all
                .get(&id)
                .is_some_and(|w| generation > w.after)
            {
                if let Some(waiter) = self.waiters.remove(id) {
                    // A closed receiver means the future is being dropped; its guard finds
                    // nothing left to remove.
                    if waiter.tx.send(hit(key_id)).is_ok() {
                        wakeups += 1;
                    }
                }
            }
        }
        if wakeups > 0 {
            let wake_ms = u64::try_from(wall.now_ms() - wake_start_ms).unwrap_or(0);
            self.counters.notify_wakeups += wakeups;
            self.counters.notify_flushes += 1;
            self.counters.notify_wake_ms_total += wake_ms;
            self.counters.notify_wake_ms_max = self.counters.notify_wake_ms_max.max(wake_ms);
        }
        Some(generation)
    }

    fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        // A hash set entry costs about its value plus a control byte, at the table's
        // capacity.
        let set_u32 = |n: usize| n * (size_of::<u32>() + 1);
        let set_u64 = |n: usize| n * (size_of::<u64>() + 1);
        let waiters: usize = self
            .waiters
            .all
            .values()
            .map(|w| {
                size_of::<Waiter>()
                    + w.key_ids.len() * size_of::<u32>()
                    + w.exact.len() * size_of::<u64>()
                    // index entries: (key, set of ids) for each key, at worst
                    + (w.key_ids.len() + w.exact.len()) * 2 * (size_of::<u64>() + 1)
            })
            .sum();
        size_of::<State>()
            + self.filter.allocated_bytes()
            + set_u32(self.pending.key_ids.capacity())
            + set_u64(self.pending.exact.capacity())
            + self.exact.bytes()
            + self.flush_intervals.capacity() * size_of::<(i64, i64)>()
            + waiters
    }
}

/// The open bucket.
#[derive(Default)]
struct Pending {
    key_ids: HashSet<u32>,
    exact: HashSet<u64>,
    overflow: bool,
    max_source_pos: Option<u64>,
    /// Wall-clock time of the first touch.
    start_ms: i64,
    /// When the bucket is due (tokio clock); `None` while the bucket is empty.
    due: Option<Instant>,
}

/// The "last set" filter: for each slot, the last generation that set it.
struct Filter {
    pow2: u32,
    k: u32,
    /// Empty until the first key is set (see the module documentation on memory).
    slots: Vec<u32>,
}

/// The murmur3 32-bit finalizer.
fn fmix32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x85eb_ca6b);
    x ^= x >> 13;
    x = x.wrapping_mul(0xc2b2_ae35);
    x ^= x >> 16;
    x
}

/// The `k` slots of a key in a filter of `2^pow2` slots: `h1 = key id`,
/// `h2 = fmix32(key id)` (or [`ZERO_STRIDE`] when that is 0), `pos_i = (h1 + i·h2) mod 2^32`
/// masked to the filter.
fn slot_positions(pow2: u32, k: u32, key_id: u32) -> impl Iterator<Item = usize> {
    let mask = (1u32 << pow2).wrapping_sub(1);
    let h1 = key_id;
    let h2 = match fmix32(key_id) {
        0 => ZERO_STRIDE,
        h => h,
    };
    (0..k).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) & mask) as usize)
}

impl Filter {
    fn new(pow2: u32, k: u32) -> Filter {
        Filter {
            pow2,
            k,
            slots: Vec::new(),
        }
    }

    fn size(&self) -> usize {
        1usize << self.pow2
    }

    fn allocated_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<u32>()
    }

    /// The `k` slots of a key: `(h1 + i·h2) mod 2^32`, masked.
    fn positions(&self, key_id: u32) -> impl Iterator<Item = usize> {
        slot_positions(self.pow2, self.k, key_id)
    }

    fn set(&mut self, key_id: u32, generation: u32) {
        if self.slots.is_empty() {
            self.slots = vec![0; self.size()];
        }
        for pos in slot_positions(self.pow2, self.k, key_id) {
            if let Some(slot) = self.slots.get_mut(pos) {
                *slot = generation;
            }
        }
    }

    /// The smallest generation in the key's slots: the key was maybe touched in every
    /// generation up to this one, and certainly not after it.
    fn last_generation(&self, key_id: u32) -> u32 {
        if self.slots.is_empty() {
            return 0;
        }
        self.positions(key_id)
            .map(|pos| self.slots.get(pos).copied().unwrap_or(0))
            .min()
            .unwrap_or(0)
    }
}

/// One flushed generation of the exact lane.
struct ExactGeneration {
    generation: u32,
    flushed_at_ms: i64,
    /// Sorted keys; `None` when the generation overflowed or did not fit the budget.
    keys: Option<Box<[u64]>>,
}

/// The exact keys of recent generations, oldest first, one entry per flush.
struct ExactHistory {
    entries: VecDeque<ExactGeneration>,
    /// Keys held plus one per entry.
    used: usize,
    budget: usize,
}

impl ExactHistory {
    fn new(budget: usize) -> ExactHistory {
        ExactHistory {
            entries: VecDeque::new(),
            used: 0,
            budget,
        }
    }

    fn cost(entry: &ExactGeneration) -> usize {
        1 + entry.keys.as_ref().map_or(0, |k| k.len())
    }

    fn push(&mut self, generation: u32, flushed_at_ms: i64, keys: Option<Vec<u64>>) {
        // A generation larger than the whole budget is recorded as unknown.
        let keys = keys.filter(|k| k.len() < self.budget);
        let entry = ExactGeneration {
            generation,
            flushed_at_ms,
            keys: keys.map(Vec::into_boxed_slice),
        };
        self.used += Self::cost(&entry);
        self.entries.push_back(entry);
        let cutoff = flushed_at_ms - EXACT_RECENT_WINDOW_MS;
        while self.entries.len() > EXACT_MIN_GENERATIONS
            && self
                .entries
                .front()
                .is_some_and(|e| e.flushed_at_ms < cutoff)
        {
            self.pop_oldest();
        }
        // Memory wins over the 16-generation minimum; the lane then falls back sooner.
        while self.used > self.budget && self.entries.len() > 1 {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some(entry) = self.entries.pop_front() {
            self.used -= Self::cost(&entry);
        }
    }

    /// See [`TouchJournal::exact_touched_since`]. Entries are consecutive generations
    /// ending at `current`.
    fn touched_since(&self, keys: &[u64], since: u32, current: u32) -> Option<bool> {
        if keys.is_empty() || since >= current {
            return Some(false);
        }
        let first_needed = since + 1;
        let mut complete = self
            .entries
            .front()
            .is_some_and(|e| e.generation <= first_needed);
        for entry in self.entries.iter().filter(|e| e.generation >= first_needed) {
            match &entry.keys {
                Some(flushed) => {
                    if keys.iter().any(|k| flushed.binary_search(k).is_ok()) {
                        return Some(true);
                    }
                }
                None => complete = false,
            }
        }
        complete.then_some(false)
    }

    fn bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<ExactGeneration>()
            + self
                .entries
                .iter()
                .map(|e| e.keys.as_ref().map_or(0, |k| k.len()) * std::mem::size_of::<u64>())
                .sum::<usize>()
    }
}

/// A registered wait.
struct Waiter {
    /// Woken only by a flush of a later generation.
    after: u32,
    key_ids: Box<[u32]>,
    exact: Box<[u64]>,
    broad: bool,
    tx: oneshot::Sender<TouchHit>,
}

/// The registered waits and their indexes.
#[derive(Default)]
struct Waiters {
    next_id: u64,
    all: HashMap<u64, Waiter>,
    by_key: HashMap<u32, HashSet<u64>>,
    by_exact: HashMap<u64, HashSet<u64>>,
    /// Waiters with more than `keyIndexMaxKeys` key ids: not in `by_key`.
    broad: HashSet<u64>,
}

impl Waiters {
    fn insert(
        &mut self,
        key_ids: &[u32],
        exact: &[u64],
        broad: bool,
        after: u32,
        tx: oneshot::Sender<TouchHit>,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let mut key_ids = key_ids.to_vec();
        key_ids.sort_unstable();
        key_ids.dedup();
        let mut exact = exact.to_vec();
        exact.sort_unstable();
        exact.dedup();
        if broad {
            self.broad.insert(id);
        } else {
            for &key_id in &key_ids {
                self.by_key.entry(key_id).or_default().insert(id);
            }
        }
        for &key in &exact {
            self.by_exact.entry(key).or_default().insert(id);
        }
        self.all.insert(
            id,
            Waiter {
                after,
                key_ids: key_ids.into_boxed_slice(),
                exact: exact.into_boxed_slice(),
                broad,
                tx,
            },
        );
        id
    }

    fn remove(&mut self, id: u64) -> Option<Waiter> {
        let waiter = self.all.remove(&id)?;
        if waiter.broad {
            self.broad.remove(&id);
        } else {
            for key_id in waiter.key_ids.iter() {
                if let Some(ids) = self.by_key.get_mut(key_id) {
                    ids.remove(&id);
                    if ids.is_empty() {
                        self.by_key.remove(key_id);
                    }
                }
            }
        }
        for key in waiter.exact.iter() {
            if let Some(ids) = self.by_exact.get_mut(key) {
                ids.remove(&id);
                if ids.is_empty() {
                    self.by_exact.remove(key);
                }
            }
        }
        Some(waiter)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::clock::ManualClock;
    use tokio::task::JoinSet;

    const T0: i64 = 1_000_000;

    fn journal(config: JournalConfig) -> (Arc<TouchJournal>, Arc<ManualClock>) {
        let wall = ManualClock::new(T0);
        let journal = Arc::new(TouchJournal::new(&config, wall.clone()));
        (journal, wall)
    }

    /// A filter large enough that the few key ids of a test do not collide.
    fn roomy() -> JournalConfig {
        JournalConfig {
            filter_pow2: 16,
            ..JournalConfig::default()
        }
    }

    fn far() -> Instant {
        clock::now() + Duration::from_secs(3600)
    }

    async fn until_waiters(journal: &TouchJournal, n: usize) {
        while journal.active_waiters() < n {
            tokio::task::yield_now().await;
        }
    }

    #[test]
    fn cursor_parses_and_formats() {
        let c = Cursor::parse("0A1B2C3D4E5F6071:42").unwrap();
        assert_eq!(c.epoch, Epoch(0x0a1b_2c3d_4e5f_6071));
        assert_eq!(c.generation, 42);
        assert_eq!(c.to_string(), "0a1b2c3d4e5f6071:42");
        assert_eq!(Cursor::parse(" 0a1b2c3d4e5f6071:0 ").unwrap().generation, 0);
        assert_eq!(
            Cursor::parse("0a1b2c3d4e5f6071:99999999999")
                .unwrap()
                .generation,
            u32::MAX
        );
        assert_eq!(Epoch(0xab).to_string(), "00000000000000ab");
        for bad in [
            "",
            "now",
            ":1",
            "0a1b2c3d4e5f607:1",
            "0a1b2c3d4e5f60711:1",
            "0a1b2c3d4e5f6071",
            "0a1b2c3d4e5f6071:",
            "0a1b2c3d4e5f6071:-1",
            "0a1b2c3d4e5f6071:+1",
            "0a1b2c3d4e5f6071:1.5",
            "0a1b2c3d4e5f607g:1",
            "0x1b2c3d4e5f6071:1",
            "0a1b2c3d4e5f6071:1:2",
        ] {
            assert_eq!(Cursor::parse(bad), None, "{bad:?}");
        }
        let (j, _) = journal(roomy());
        let cursor = j.cursor();
        assert_eq!(cursor.generation, 0);
        assert_eq!(Cursor::parse(&cursor.to_string()), Some(cursor));
        assert_eq!(cursor.to_string().len(), 18);
        // Each journal draws its own epoch from the clock's randomness.
        let wall = ManualClock::new(T0);
        let a = TouchJournal::new(&roomy(), wall.clone());
        let b = TouchJournal::new(&roomy(), wall);
        assert_ne!(a.epoch(), b.epoch());
    }

    #[test]
    fn filter_has_no_false_negatives() {
        let (j, _) = journal(JournalConfig {
            filter_pow2: 10,
            k: 4,
            ..JournalConfig::default()
        });
        let mut touched = Vec::new();
        for round in 0..100u32 {
            for i in 0..50u32 {
                let key_id = fmix32(round * 50 + i + 1);
                j.touch(key_id, None, u64::from(round));
                touched.push((key_id, round + 1));
            }
            assert_eq!(j.flush_now(), Some(round + 1));
        }
        for (key_id, generation) in touched {
            assert!(j.maybe_touched_since(&[key_id], generation - 1));
        }
        // Nothing is after the current generation.
        assert!(!j.maybe_touched_since(&[fmix32(1)], 100));
    }

    #[test]
    fn filter_positions_follow_the_original() {
        // pos_i = (h1 + i*h2) & mask with h1 = key id, h2 = fmix32(key id) (or the
        // golden ratio when that is 0).
        let filter = Filter::new(10, 3);
        let h2 = fmix32(77);
        let expected: Vec<usize> = (0..3u32)
            .map(|i| (77u32.wrapping_add(i.wrapping_mul(h2)) & 1023) as usize)
            .collect();
        assert_eq!(filter.positions(77).collect::<Vec<_>>(), expected);
        assert_eq!(fmix32(0), 0);
        let zero: Vec<usize> = Filter::new(10, 2).positions(0).collect();
        assert_eq!(zero, vec![0, (ZERO_STRIDE & 1023) as usize]);
    }

    #[test]
    fn the_filter_is_allocated_on_the_first_flush_and_meta_reports_its_size() {
        let (j, _) = journal(JournalConfig::default());
        let meta = j.meta();
        assert_eq!(meta.filter_size, 1 << 22);
        assert!(j.memory_bytes() < 4096, "{}", j.memory_bytes());
        let (small, _) = journal(JournalConfig {
            filter_pow2: 12,
            ..JournalConfig::default()
        });
        small.touch(1, None, 0);
        small.flush_now();
        assert!(small.memory_bytes() >= 4 << 12);
        // Out-of-range configuration is clamped.
        let (clamped, _) = journal(JournalConfig {
            filter_pow2: 40,
            k: 0,
            bucket_ms: 0,
            ..JournalConfig::default()
        });
        let meta = clamped.meta();
        assert_eq!((meta.filter_size, meta.k, meta.bucket_ms), (1 << 30, 1, 1));
    }

    #[test]
    fn meta_fields_and_flush_intervals() {
        let (j, wall) = journal(roomy());
        let json = serde_json::to_value(j.meta()).unwrap();
        let names: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            names,
            [
                "mode",
                "cursor",
                "epoch",
                "generation",
                "bucketMs",
                "coalesceMs",
                "filterSize",
                "k",
                "pendingKeys",
                "overflowBuckets",
                "activeWaiters",
                "bucketMaxSourceOffsetSeq",
                "lastFlushAtMs",
                "flushIntervalMsMaxLast10s",
                "flushIntervalMsP95Last10s",
            ]
        );
        assert_eq!(json["mode"], "memory");
        assert_eq!(json["bucketMaxSourceOffsetSeq"], "-1");
        assert_eq!(json["lastFlushAtMs"], 0);

        j.touch(1, None, 40);
        j.touch(2, None, 41);
        assert_eq!(j.meta().pending_keys, 2);
        j.flush_now();
        wall.advance_ms(100);
        j.touch(1, None, 7);
        j.flush_now();
        wall.advance_ms(200);
        j.touch(1, None, 42);
        j.flush_now();
        let meta = j.meta();
        assert_eq!(meta.generation, 3);
        assert_eq!(meta.cursor, format!("{}:3", meta.epoch));
        assert_eq!(meta.pending_keys, 0);
        assert_eq!(meta.bucket_max_source_offset_seq, "42");
        assert_eq!(meta.last_flush_at_ms, T0 + 300);
        assert_eq!(meta.flush_interval_ms_max_last10s, 200);
        assert_eq!(meta.flush_interval_ms_p95_last10s, 100);
        assert_eq!(meta.counters.flushes, 3);
        // An empty bucket is not a generation.
        assert_eq!(j.flush_now(), None);
        wall.advance_ms(20_000);
        let meta = j.meta();
        assert_eq!(meta.flush_interval_ms_max_last10s, 0);
        assert_eq!(meta.generation, 3);
    }

    #[test]
    fn coalesce_is_clamped_to_the_bucket() {
        let (j, _) = journal(roomy());
        assert_eq!(j.meta().coalesce_ms, 100);
        j.set_coalesce_ms(1000);
        assert_eq!(j.meta().coalesce_ms, 100);
        j.set_coalesce_ms(0);
        assert_eq!(j.meta().coalesce_ms, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_bucket_is_due_coalesce_ms_after_its_first_touch() {
        let (j, _) = journal(roomy());
        j.set_coalesce_ms(10);
        assert_eq!(j.next_flush_due(), None);
        let start = clock::now();
        j.touch(1, None, 1);
        let due = j.next_flush_due().unwrap();
        assert_eq!(due, start + Duration::from_millis(10));
        j.touch(2, None, 2);
        assert_eq!(j.next_flush_due(), Some(due));
        assert_eq!(j.flush_if_due(due - Duration::from_millis(1)), None);
        assert_eq!(j.flush_if_due(due), Some(1));
        assert_eq!(j.next_flush_due(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_flusher_coalesces_touches_into_one_generation_and_ends_with_the_journal() {
        let (j, _) = journal(roomy());
        j.set_coalesce_ms(10);
        let flusher = j.spawn_flusher();
        j.touch(1, None, 5);
        clock::sleep(Duration::from_millis(4)).await;
        j.touch(2, None, 7);
        clock::sleep(Duration::from_millis(4)).await;
        j.touch(3, None, 6);
        assert_eq!(j.generation(), 0);
        clock::sleep(Duration::from_millis(3)).await;
        assert_eq!(j.generation(), 1);
        let meta = j.meta();
        assert_eq!(meta.pending_keys, 0);
        assert_eq!(meta.bucket_max_source_offset_seq, "7");
        assert!(j.maybe_touched_since(&[1, 2, 3], 0));

        j.touch(4, None, 8);
        clock::sleep(Duration::from_millis(11)).await;
        assert_eq!(j.generation(), 2);

        drop(j);
        flusher.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn an_indexed_waiter_wakes_on_its_key_and_not_on_another() {
        let (j, wall) = journal(roomy());
        let waiting = {
            let j = Arc::clone(&j);
            tokio::spawn(async move { j.wait(&[1], None, 0, far()).await })
        };
        until_waiters(&j, 1).await;

        j.touch(2, None, 10);
        j.flush_now();
        assert!(!j.maybe_touched_since(&[1], 0), "keys 1 and 2 collide");
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        assert_eq!(j.active_waiters(), 1);

        wall.advance_ms(5);
        j.touch(1, None, 11);
        j.flush_now();
        let hit = TouchHit {
            generation: 2,
            key_id: 1,
            bucket_max_source_pos: Some(11),
            flush_at_ms: T0 + 5,
            bucket_start_ms: T0 + 5,
        };
        assert_eq!(waiting.await.unwrap(), WaitOutcome::Touched(hit));
        assert_eq!(j.active_waiters(), 0);
        assert_eq!(j.counters().notify_wakeups, 1);

        // Already touched since the cursor: answered at once with the last flush.
        let now = clock::now();
        assert_eq!(
            j.wait(&[1], None, 1, now).await,
            WaitOutcome::Touched(j.last_flush())
        );
        // Nothing since the current generation, and a cursor ahead counts as current.
        assert_eq!(j.wait(&[1], None, 2, now).await, WaitOutcome::TimedOut);
        assert_eq!(j.wait(&[1], None, 99, now).await, WaitOutcome::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn a_broad_waiter_is_checked_against_the_filter() {
        let (j, _) = journal(JournalConfig {
            key_index_max_keys: 2,
            ..roomy()
        });
        let waiting = {
            let j = Arc::clone(&j);
            tokio::spawn(async move { j.wait(&[10, 11, 12], None, 0, far()).await })
        };
        until_waiters(&j, 1).await;
        assert_eq!(j.lock().waiters.broad.len(), 1);
        assert!(j.lock().waiters.by_key.is_empty());

        j.touch(13, None, 1);
        j.flush_now();
        assert!(!j.maybe_touched_since(&[10, 11, 12], 0), "collision");
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());

        j.touch(12, None, 2);
        j.flush_now();
        match waiting.await.unwrap() {
            WaitOutcome::Touched(hit) => assert_eq!((hit.generation, hit.key_id), (2, 0)),
            other => panic!("{other:?}"),
        }
        assert!(j.lock().waiters.broad.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn an_overflow_bucket_wakes_every_waiter() {
        let (j, _) = journal(JournalConfig {
            pending_max_keys: 2,
            ..roomy()
        });
        let mut waiting = JoinSet::new();
        for (keys, exact) in [
            (vec![100u32], None),
            (vec![200], None),
            (vec![], Some(0xdead_0000_0000_0300u64)),
        ] {
            let j = Arc::clone(&j);
            waiting.spawn(async move {
                let exact = exact.map(|k| [k]);
                j.wait(&keys, exact.as_ref().map(|k| &k[..]), 0, far())
                    .await
            });
        }
        until_waiters(&j, 3).await;
        j.touch(1, None, 1);
        j.touch(2, None, 2);
        j.touch(3, None, 3);
        j.flush_now();
        while let Some(outcome) = waiting.join_next().await {
            match outcome.unwrap() {
                WaitOutcome::Touched(hit) => {
                    assert_eq!((hit.generation, hit.key_id), (1, 0));
                    assert_eq!(hit.bucket_max_source_pos, Some(3));
                }
                other => panic!("{other:?}"),
            }
        }
        let meta = j.meta();
        assert_eq!(meta.overflow_buckets, 1);
        assert_eq!(meta.active_waiters, 0);
        assert!(j.maybe_touched_since(&[999], 0));
        assert!(!j.maybe_touched_since(&[999], 1));
        assert_eq!(j.exact_touched_since(&[0xdead_0000_0000_0300], 0), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_wait_removes_its_waiter() {
        let (j, _) = journal(roomy());
        let mut wait = Box::pin(j.wait(&[7, 8], Some(&[0x1234]), 0, far()));
        tokio::select! {
            biased;
            _ = &mut wait => panic!("nothing was touched"),
            _ = std::future::ready(()) => {}
        }
        assert_eq!(j.active_waiters(), 1);
        drop(wait);
        assert_eq!(j.active_waiters(), 0);
        {
            let state = j.lock();
            assert!(state.waiters.by_key.is_empty());
            assert!(state.waiters.by_exact.is_empty());
        }
        j.touch(7, Some(0x1234), 1);
        j.flush_now();
        assert_eq!(j.counters().notify_wakeups, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_aborted_request_task_removes_its_waiter() {
        let (j, _) = journal(roomy());
        let request = {
            let j = Arc::clone(&j);
            tokio::spawn(async move { j.wait(&[3], None, 0, far()).await })
        };
        until_waiters(&j, 1).await;
        request.abort();
        assert!(request.await.unwrap_err().is_cancelled());
        assert_eq!(j.active_waiters(), 0);
        assert_eq!(j.meta().active_waiters, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_times_out_at_its_deadline() {
        let (j, _) = journal(roomy());
        let deadline = clock::now() + Duration::from_millis(1000);
        assert_eq!(j.wait(&[5], None, 0, deadline).await, WaitOutcome::TimedOut);
        assert!(clock::now() >= deadline);
        assert_eq!(j.active_waiters(), 0);
        assert_eq!(j.counters().timeouts_fired, 1);
        // A deadline already passed, or nothing to wait on: answered without registering.
        assert_eq!(
            j.wait(&[5], None, 0, clock::now()).await,
            WaitOutcome::TimedOut
        );
        assert_eq!(j.wait(&[], None, 0, far()).await, WaitOutcome::TimedOut);
        assert_eq!(j.counters().timeouts_fired, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_exact_lane_proves_not_touched_and_falls_back_to_the_filter() {
        // k = 1 and 2^10 slots: a key id's only slot is its low 10 bits.
        let (j, wall) = journal(JournalConfig {
            filter_pow2: 10,
            k: 1,
            ..JournalConfig::default()
        });
        let a = 0x1111_1111_0000_0005u64; // key id 5
        let b = 0x2222_2222_0000_0405u64; // key id 1029, same slot as 5
        let c = 0x3333_3333_0000_0805u64; // key id 2053, same slot, never touched
        j.touch(b as u32, Some(b), 1);
        j.flush_now();
        assert!(
            j.maybe_touched_since(&[a as u32], 0),
            "constructed false positive"
        );
        assert_eq!(j.exact_touched_since(&[a], 0), Some(false));
        assert_eq!(j.exact_touched_since(&[b], 0), Some(true));
        assert_eq!(j.exact_touched_since(&[a, b], 0), Some(true));
        let now = clock::now();
        assert_eq!(j.wait(&[], Some(&[a]), 0, now).await, WaitOutcome::TimedOut);
        assert!(matches!(
            j.wait(&[a as u32], None, 0, now).await,
            WaitOutcome::Touched(_)
        ));
        assert!(matches!(
            j.wait(&[], Some(&[b]), 0, now).await,
            WaitOutcome::Touched(_)
        ));

        // A waiting exact key is woken by itself only, not by its filter slot.
        let waiting = {
            let j = Arc::clone(&j);
            tokio::spawn(async move { j.wait(&[], Some(&[a]), 1, far()).await })
        };
        until_waiters(&j, 1).await;
        j.touch(b as u32, Some(b), 2);
        j.flush_now();
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        j.touch(a as u32, Some(a), 3);
        j.flush_now();
        match waiting.await.unwrap() {
            WaitOutcome::Touched(hit) => assert_eq!((hit.generation, hit.key_id), (3, 0)),
            other => panic!("{other:?}"),
        }

        // History keeps 16 generations once they are older than 15 s.
        for pos in 4..24u64 {
            wall.advance_ms(16_000);
            j.touch(b as u32, Some(b), pos);
            j.flush_now();
        }
        assert_eq!(j.generation(), 23);
        assert_eq!(j.lock().exact.entries.len(), EXACT_MIN_GENERATIONS);
        // A cursor older than the history: the exact lane cannot tell, the filter answers
        // (here with its false positive).
        assert_eq!(j.exact_touched_since(&[c], 0), None);
        assert!(matches!(
            j.wait(&[], Some(&[c]), 0, clock::now()).await,
            WaitOutcome::Touched(_)
        ));
        // Within the history it still proves the negative.
        assert_eq!(j.exact_touched_since(&[c], 10), Some(false));
        assert_eq!(
            j.wait(&[], Some(&[c]), 10, clock::now()).await,
            WaitOutcome::TimedOut
        );
    }

    #[tokio::test(start_paused = true)]
    async fn exact_waits_also_watch_their_fallback_key_ids() {
        let (j, _) = journal(roomy());
        let a = 0x1111_1111_0000_0005u64;
        j.touch(900, None, 1);
        j.flush_now();
        let now = clock::now();
        // The exact key proves nothing touched, the fallback id (a template key) was.
        assert_eq!(j.wait(&[], Some(&[a]), 0, now).await, WaitOutcome::TimedOut);
        assert!(matches!(
            j.wait(&[900], Some(&[a]), 0, now).await,
            WaitOutcome::Touched(_)
        ));
        // While waiting, a fallback id wakes the waiter like an indexed key.
        let waiting = {
            let j = Arc::clone(&j);
            tokio::spawn(async move { j.wait(&[901], Some(&[a]), 1, far()).await })
        };
        until_waiters(&j, 1).await;
        j.touch(901, None, 2);
        j.flush_now();
        match waiting.await.unwrap() {
            WaitOutcome::Touched(hit) => assert_eq!((hit.generation, hit.key_id), (2, 901)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_exact_history_stays_within_its_budget() {
        let (j, _) = journal(JournalConfig {
            exact_history_max_keys: 8,
            ..roomy()
        });
        for round in 0..10u64 {
            for i in 0..3u64 {
                let key = (round << 32) | (i + 1);
                j.touch(key as u32, Some(key), round);
            }
            j.flush_now();
        }
        {
            let state = j.lock();
            assert!(state.exact.used <= 8, "{}", state.exact.used);
            assert_eq!(state.exact.entries.len(), 2);
        }
        assert_eq!(j.exact_touched_since(&[0xffff], 8), Some(false));
        assert_eq!(j.exact_touched_since(&[0xffff], 7), None);
        // A generation larger than the budget is unknown.
        for i in 0..20u64 {
            j.touch(i as u32, Some(i + 1000), 99);
        }
        j.flush_now();
        assert_eq!(j.exact_touched_since(&[0xffff], 10), None);
    }

    #[tokio::test(start_paused = true)]
    async fn two_thousand_waiters_are_each_answered_once_by_one_flush() {
        let (j, _) = journal(roomy());
        let mut waiting = JoinSet::new();
        for key in 1..=2000u32 {
            let j = Arc::clone(&j);
            waiting.spawn(async move { (key, j.wait(&[key], None, 0, far()).await) });
        }
        until_waiters(&j, 2000).await;
        j.touch_all((1..=2000u32).map(|k| (k, None, u64::from(k))));
        assert_eq!(j.flush_now(), Some(1));
        let mut answered = 0;
        while let Some(joined) = waiting.join_next().await {
            let (key, outcome) = joined.unwrap();
            match outcome {
                WaitOutcome::Touched(hit) => {
                    assert_eq!(hit.key_id, key);
                    assert_eq!(hit.generation, 1);
                    assert_eq!(hit.bucket_max_source_pos, Some(2000));
                }
                other => panic!("{other:?}"),
            }
            answered += 1;
        }
        assert_eq!(answered, 2000);
        let counters = j.counters();
        assert_eq!(counters.notify_wakeups, 2000);
        assert_eq!(counters.notify_flushes, 1);
        assert_eq!(j.active_waiters(), 0);
        assert!(j.lock().waiters.by_key.is_empty());
    }
}
