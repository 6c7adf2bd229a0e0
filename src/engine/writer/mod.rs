//! The single writer thread and its group commit.
//!
//! Operations ([`job`]) queue on an unbounded channel whose size is bounded by accounting:
//! over `DS_INGEST_MAX_QUEUE_REQS` a client request is refused with `Overloaded`, which the
//! HTTP layer answers with 429; their payload bytes were reserved in the ingest budget
//! (`budget.rs`) before they were even read. The thread blocks for the first
//! operation, yields the core once (so that requests still being read can queue), takes
//! everything else already queued (up to the batch limits), runs it all as one batch, makes
//! it durable, and only then answers the operations and publishes the committed state to
//! readers. A batch is durable by one `BEGIN IMMEDIATE` transaction, begun by the first
//! operation that asks for it, or, if none did and it appended entries, by one record of
//! the append log (`applog`). There is no timer: an idle server commits a lone request at
//! once, a busy one batches whatever arrived during the last commit.
//!
//! A committed batch goes to the runtime in one hand-off ([`Replies`]): a task there sends
//! each operation its result and then publishes the batch's changes, so the runtime is
//! woken from this thread once per batch rather than once per request or twice per batch
//! (each such wake-up can write to the runtime's eventfd and preempt this thread on a
//! shared core).
//!
//! Besides operations the thread owns two chores: compacting the append log and the
//! ingest table (see `memtable.rs`) and applying TTL renewals. Renewals are not queued:
//! reads record them in a shared map (one entry per stream, the latest time wins) and the
//! writer applies the whole map in the next batch, or on its own at most every
//! [`RENEW_EVERY`], so a read-heavy load costs one small commit per second, never a slot
//! in the ingest queue.

mod job;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::applog::{self, AppLog};
use super::checkpointer::Checkpointer;
use super::committed::StreamChange;
use super::db::{self, ingest, streams};
use super::memtable::{self, Memtable};
use super::meta_cache::MetaCache;
use super::notifier::Notifier;
use super::EngineError;
use crate::clock::SharedClock;
use crate::config::Limits;
use crate::telemetry::metrics::metrics;
pub(crate) use job::{Batch, WriteError};
use job::{Call, Durable, Effects, Job};

/// The memtable is compacted into `entries` once it holds this many entries or bytes...
const COMPACT_MAX_ENTRIES: usize = 20_000;
const COMPACT_MAX_BYTES: usize = 4 << 20;
/// ... or its oldest entry is this old and it holds at least [`COMPACT_DENSE_MIN`] entries
/// or [`COMPACT_DENSE_MIN_BYTES`], [`COMPACT_DENSE`] or more entries per stream on
/// average...
const COMPACT_AFTER: Duration = Duration::from_millis(200);
const COMPACT_DENSE: usize = 8;
const COMPACT_DENSE_MIN: usize = 1_000;
/// Bytes count too: compacting needs about as much free disk as the memtable holds, and a
/// small disk must not fill up with a second of large entries that it then cannot compact.
const COMPACT_DENSE_MIN_BYTES: usize = 256 << 10;
/// ... or, however small or sparse, its oldest entry is this old.
///
/// A compaction rewrites the last `entries` page of every stream it touches. With a few
/// streams that is a few pages, and compacting often keeps each pause short. With
/// appends spread over many streams a compaction every 200 ms wrote about a page per
/// entry: appends to 10,000 streams ran 5–7 % slower and their maximum latency was
/// higher than with fewer, larger compactions, which for a few hot streams only made the
/// pauses longer (docs/performance.md, "Seventh pass"). A small memtable's compaction
/// is short anyway, and most of its cost is the transaction's own: at 200 appends/s
/// compacting every 200 ms cost about 16 µs of the writer's time per append
/// ("Eleventh pass").
const COMPACT_SPARSE_AFTER: Duration = Duration::from_secs(1);

/// How long from now until a memtable of this size is due for compaction (zero: due now;
/// `None`: empty).
fn compaction_due_in(s: &memtable::Size) -> Option<Duration> {
    let age = s.age?;
    if s.entries >= COMPACT_MAX_ENTRIES || s.bytes >= COMPACT_MAX_BYTES {
        return Some(Duration::ZERO);
    }
    let big = s.entries >= COMPACT_DENSE_MIN || s.bytes >= COMPACT_DENSE_MIN_BYTES;
    let after = if big && s.entries >= COMPACT_DENSE * s.streams {
        COMPACT_AFTER
    } else {
        COMPACT_SPARSE_AFTER
    };
    Some(after.saturating_sub(age))
}

/// Pending TTL renewals are applied at least this often (and with any batch).
pub const RENEW_EVERY: Duration = Duration::from_secs(1);

enum Msg {
    Job {
        job: Box<dyn Job>,
        bytes: usize,
        /// A client request, counted against `DS_INGEST_MAX_QUEUE_REQS` (the server's own
        /// work is not: each background task waits for its one operation, so it is
        /// bounded anyway, and it must not make a client's request fail).
        counted: bool,
    },
    /// Renewals are pending (sent when the map stops being empty).
    Wake,
    Shutdown,
}

/// How an operation is queued and run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Submit {
    bytes: usize,
    savepoint: bool,
    internal: bool,
}

impl Submit {
    /// A client request carrying `bytes` of payload: refused (`Overloaded`) when the queue
    /// is full; runs in its own savepoint, so a refusal undoes only its own writes.
    pub const fn request(bytes: usize) -> Submit {
        Submit {
            bytes,
            savepoint: true,
            internal: false,
        }
    }

    /// The server's own bookkeeping: never refused for load, and not counted against the
    /// clients' queue limit.
    pub const fn internal() -> Submit {
        Submit {
            bytes: 0,
            savepoint: true,
            internal: true,
        }
    }

    /// Runs without a savepoint (its page journal is a measurable cost on the hot path):
    /// the operation must return its refusals before its first write, and a storage
    /// error fails the whole batch.
    pub const fn without_savepoint(self) -> Submit {
        Submit {
            savepoint: false,
            ..self
        }
    }
}

/// Rows of `streams` written since the last commit, as SQLite's update hook reports them:
/// id → sequence number of the row's last change. The writer evicts these from the
/// metadata cache after the commit (or puts the exact row an operation recorded with
/// [`Batch::fresh`] if no later change touched it).
#[derive(Debug, Default)]
pub(crate) struct Touched {
    inner: Mutex<(u64, HashMap<i64, u64>)>,
}

impl Touched {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, HashMap<i64, u64>)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, id: i64) {
        let mut g = self.lock();
        g.0 += 1;
        let seq = g.0;
        g.1.insert(id, seq);
    }

    /// Whether a write of the current batch touched the row of `id`.
    pub fn contains(&self, id: i64) -> bool {
        self.lock().1.contains_key(&id)
    }

    /// The sequence number of the last change recorded.
    pub fn seq(&self) -> u64 {
        self.lock().0
    }

    fn take(&self) -> HashMap<i64, u64> {
        std::mem::take(&mut self.lock().1)
    }
}

/// TTL renewals waiting for the writer: stream id → latest access (Unix ms).
#[derive(Debug, Default)]
pub(crate) struct Renewals {
    pending: Mutex<HashMap<i64, i64>>,
}

impl Renewals {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, i64>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records an access; true if the map was empty (the writer must be woken).
    fn record(&self, id: i64, at_ms: i64) -> bool {
        let mut m = self.lock();
        let was_empty = m.is_empty();
        let e = m.entry(id).or_insert(at_ms);
        *e = (*e).max(at_ms);
        was_empty
    }

    /// The latest access of `id` not yet written, if any.
    pub fn pending(&self, id: i64) -> Option<i64> {
        self.lock().get(&id).copied()
    }

    fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn take(&self) -> HashMap<i64, i64> {
        std::mem::take(&mut *self.lock())
    }

    /// Puts back renewals whose batch failed.
    fn restore(&self, back: HashMap<i64, i64>) {
        let mut m = self.lock();
        for (id, at) in back {
            let e = m.entry(id).or_insert(at);
            *e = (*e).max(at);
        }
    }
}

pub struct WriterHandle {
    tx: mpsc::Sender<Msg>,
    queued_reqs: Arc<AtomicUsize>,
    /// Payload bytes queued (for the gauge; the bytes are bounded by the ingest budget,
    /// which request bodies reserve as they arrive: see `budget.rs`).
    queued_bytes: Arc<AtomicUsize>,
    max_reqs: usize,
    renewals: Arc<Renewals>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl WriterHandle {
    /// Queues `f` to run in the writer's next batch and waits for its result, which is
    /// sent only after the batch committed (or failed, with the batch's error).
    pub async fn call<T, E, F>(&self, how: Submit, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: WriteError,
        F: FnOnce(&mut Batch<'_>) -> Result<T, E> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job = Box::new(Call::new(f, how.savepoint, tx));
        self.enqueue(job, how)?;
        rx.await.map_err(|_| EngineError::ShuttingDown)?
    }

    fn enqueue(&self, job: Box<dyn Job>, how: Submit) -> Result<(), EngineError> {
        let bytes = how.bytes;
        let counted = usize::from(!how.internal);
        let reqs = self.queued_reqs.fetch_add(counted, Ordering::AcqRel);
        self.queued_bytes.fetch_add(bytes, Ordering::AcqRel);
        if reqs >= self.max_reqs && !how.internal {
            self.queued_reqs.fetch_sub(counted, Ordering::AcqRel);
            self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
            metrics().overloaded.inc();
            return Err(EngineError::Overloaded);
        }
        let msg = Msg::Job {
            job,
            bytes,
            counted: !how.internal,
        };
        self.tx.send(msg).map_err(|_| {
            self.queued_reqs.fetch_sub(counted, Ordering::AcqRel);
            self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
            EngineError::ShuttingDown
        })
    }

    /// Records a read of stream `id` for its sliding TTL; applied by the writer within
    /// [`RENEW_EVERY`]. Not queued as a request, so it never counts against the limits.
    pub fn renew(&self, id: i64, at_ms: i64) {
        if self.renewals.record(id, at_ms) {
            let _ = self.tx.send(Msg::Wake);
        }
    }

    /// The latest renewal of `id` not yet written.
    pub fn pending_renewal(&self, id: i64) -> Option<i64> {
        self.renewals.pending(id)
    }

    /// Asks the thread to stop after the operations queued before this call, and waits.
    pub fn shutdown(&self) {
        let _ = self.tx.send(Msg::Shutdown);
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

/// What the writer thread shares with the rest of the engine.
pub struct Shared {
    pub clock: SharedClock,
    /// Publishes the committed state.
    pub notifier: Notifier,
    pub memtable: Arc<Memtable>,
    pub cache: Arc<MetaCache>,
    /// Where the thread's death is reported (fatal).
    pub health: Arc<crate::health::Health>,
}

/// Opens the write connection (migrating the schema) and starts the thread.
pub fn spawn(
    path: &Path,
    limits: &Limits,
    tiered: bool,
    shared: Shared,
) -> Result<WriterHandle, EngineError> {
    let Shared {
        clock,
        notifier,
        memtable,
        cache,
        health,
    } = shared;
    let mut conn = db::open_writer(path)?;
    let (log, logged) = recover(&mut conn, path, &clock, &memtable)?;
    // Checkpoints run on their own thread (see `checkpointer`), not inside a commit: the
    // hook replaces SQLite's automatic checkpoints and reports the WAL's size instead.
    conn.wal_hook(Some(record_wal_pages));
    let checkpointer = Some(Checkpointer::start(path)?);
    let touched = watch_stream_rows(&conn);
    let (tx, rx) = mpsc::channel();
    let queued_reqs = Arc::new(AtomicUsize::new(0));
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let renewals = Arc::new(Renewals::default());
    let mut w = Writer {
        conn,
        checkpointer,
        log,
        logged,
        replies: Replies::start(notifier),
        tiered,
        clock,
        memtable,
        cache,
        touched,
        compact_retry_at: None,
        renewals: renewals.clone(),
        renewed_at: crate::clock::monotonic(),
        queued_reqs: queued_reqs.clone(),
        queued_bytes: queued_bytes.clone(),
        batch_reqs: limits.ingest_max_batch_reqs,
        batch_bytes: limits.ingest_max_batch_bytes,
    };
    let thread = std::thread::Builder::new()
        .name("sqlite-writer".into())
        .spawn(move || {
            // Nothing can be stored without this thread: its death is fatal.
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.run(rx)));
            if let Err(panic) = run {
                health.record("writer", crate::health::panic_message(&*panic), true);
            }
        })
        .map_err(|e| EngineError::io("spawn writer thread", e))?;
    Ok(WriterHandle {
        tx,
        queued_reqs,
        queued_bytes,
        max_reqs: limits.ingest_max_queue_reqs,
        renewals,
        thread: Mutex::new(Some(thread)),
    })
}

/// The WAL size at which the writer asks for a checkpoint (SQLite's default for its
/// automatic ones).
const CHECKPOINT_PAGES: i32 = 1000;

thread_local! {
    /// Pages in the WAL after this thread's last commit (see [`record_wal_pages`]).
    static WAL_PAGES: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

/// SQLite's WAL hook on the write connection: called on the committing thread, the writer,
/// after each commit with the number of pages the WAL holds.
fn record_wal_pages(_: &rusqlite::hooks::Wal, pages: std::os::raw::c_int) -> rusqlite::Result<()> {
    WAL_PAGES.set(pages);
    Ok(())
}

/// Installs SQLite's update hook on the write connection: every row of `streams` written
/// is recorded in the returned [`Touched`].
fn watch_stream_rows(conn: &Connection) -> Arc<Touched> {
    let touched = Arc::new(Touched::default());
    let hook = touched.clone();
    conn.update_hook(Some(
        move |_: rusqlite::hooks::Action, _: &str, table: &str, rowid: i64| {
            if table == "streams" {
                hook.record(rowid);
            }
        },
    ));
    touched
}

/// Whatever a stop or a crash left in the append log and the ingest table goes where
/// readers look for it: into `entries`, in one compaction that also voids the log's
/// records (a new salt); or, if that cannot be written now (a full disk), into the
/// memtable, so the server still starts and serves it, with the log kept as it is and
/// written on after its records; the writer compacts later. Returns the log and the runs
/// it still holds.
fn recover(
    conn: &mut Connection,
    path: &Path,
    clock: &SharedClock,
    memtable: &Memtable,
) -> Result<(AppLog, Vec<ingest::Run>), EngineError> {
    let old_salt = ingest::log_salt(conn)?;
    let log = match old_salt {
        Some(salt) => {
            applog::read(path, salt).map_err(|e| EngineError::io("read the append log", e))?
        }
        None => applog::Records::default(),
    };
    let open = |salt, offset| {
        AppLog::open(path, salt, offset).map_err(|e| EngineError::io("open the append log", e))
    };
    let in_ingest = !ingest::is_empty(conn)?;
    let salt = match old_salt {
        // Nothing to recover: write from the log's beginning, under the same salt (no
        // record of it follows a record that does not check out).
        Some(salt) if log.runs.is_empty() && !in_ingest => return Ok((open(salt, 0)?, Vec::new())),
        Some(salt) => salt,
        None => {
            let salt = clock.random_in(1, u64::MAX);
            ingest::set_log_salt(conn, salt)?;
            if !in_ingest {
                return Ok((open(salt, 0)?, Vec::new()));
            }
            salt
        }
    };
    let entries: usize = log.runs.iter().map(|r| r.2.len()).sum();
    let new_salt = clock.random_in(1, u64::MAX);
    let spill = ingest::Spill {
        runs: &log.runs,
        new_salt,
    };
    match ingest::compact(conn, Some(spill)) {
        Ok(n) => {
            tracing::info!(entries = n, from_log = entries, "recovered appends");
            Ok((open(new_salt, 0)?, Vec::new()))
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot compact the recovered appends now; serving them from memory");
            let mut runs = ingest::load_runs(conn)?;
            runs.extend(log.runs.iter().cloned());
            // Each position is in one of the two places: in order per stream, the runs
            // are contiguous.
            runs.sort_by_key(|r| (r.0, r.1));
            for (id, first_pos, entries) in runs {
                memtable.push(id, first_pos, entries);
                memtable.committed([id]);
            }
            Ok((open(salt, log.end)?, log.runs))
        }
    }
}

/// Where a committed batch goes: its results to the requests, then its changes to the
/// readers and feed consumers (the [`Notifier`]), in commit order.
///
/// On a runtime both happen in one task: the writer wakes the runtime once per batch, and
/// the readers' and consumers' tasks are woken from inside it. Published from the writer
/// thread instead, each batch woke the runtime twice; with both on one core, each wake-up
/// was a switch between the threads (docs/performance.md, "Tenth pass").
enum Replies {
    /// Sent from the writer thread (no runtime was running when the writer started).
    Direct(Notifier),
    /// Handed to one task on the runtime, which sends them in order.
    Task(tokio::sync::mpsc::UnboundedSender<Done>),
}

/// A committed batch's jobs to answer and the changes to publish after them.
type Done = (Vec<Box<dyn Job>>, BTreeMap<i64, StreamChange>);

impl Replies {
    /// On the runtime the writer starts from, if any.
    fn start(notifier: Notifier) -> Replies {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return Replies::Direct(notifier);
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Done>();
        rt.spawn(async move {
            while let Some((jobs, changes)) = rx.recv().await {
                answer(jobs, changes, &notifier);
            }
        });
        Replies::Task(tx)
    }

    fn send(&self, jobs: Vec<Box<dyn Job>>, changes: BTreeMap<i64, StreamChange>) {
        match self {
            Replies::Task(tx) => {
                // The task ends only with the runtime; then nobody waits for an answer.
                let _ = tx.send((jobs, changes));
            }
            Replies::Direct(notifier) => answer(jobs, changes, notifier),
        }
    }
}

/// Answers a committed batch and announces it, so that the runtime runs the woken tasks
/// in this order: the writers', the readers', then the feed consumers'.
///
/// Writers come first because with many readers the acknowledgements would otherwise wait
/// behind their deliveries (ADR 0006). Tokio polls the task woken last before the others
/// (its LIFO slot) and the rest in the order they were woken. So the last writer is
/// answered after the announcement, which makes it the first to run, and not a feed
/// consumer: one woken last ran before a lone append's acknowledgement and its reader's
/// delivery, and delayed both by about 10 µs (docs/performance.md, "Twelfth pass").
/// Without the LIFO slot, only that last writer would follow the others.
fn answer(mut jobs: Vec<Box<dyn Job>>, changes: BTreeMap<i64, StreamChange>, notifier: &Notifier) {
    let last = jobs.pop();
    for j in jobs {
        j.reply();
    }
    notifier.publish(changes);
    if let Some(j) = last {
        j.reply();
    }
}

struct Writer {
    conn: Connection,
    /// Runs the WAL's checkpoints (`None`: SQLite's automatic ones, in tests).
    checkpointer: Option<Checkpointer>,
    /// The append log (see `applog`) and the runs it holds since its salt was drawn.
    log: AppLog,
    logged: Vec<ingest::Run>,
    /// Answers and announces each committed batch.
    replies: Replies,
    /// Full mode: removed incarnations leave objects to delete.
    tiered: bool,
    clock: SharedClock,
    /// Appends committed to `ingest` but not yet compacted into `entries`.
    memtable: Arc<Memtable>,
    /// Stream metadata for the request path, updated after every commit.
    cache: Arc<MetaCache>,
    /// Rows of `streams` the current batch wrote (filled by SQLite's update hook).
    touched: Arc<Touched>,
    /// After a failed compaction: not before this instant.
    compact_retry_at: Option<Instant>,
    renewals: Arc<Renewals>,
    /// When renewals were last applied.
    renewed_at: Instant,
    queued_reqs: Arc<AtomicUsize>,
    queued_bytes: Arc<AtomicUsize>,
    batch_reqs: usize,
    batch_bytes: usize,
}

impl Writer {
    fn run(&mut self, rx: mpsc::Receiver<Msg>) {
        let mut stop = false;
        while !stop {
            // Wait for work, or until a chore is due.
            let first = match self.next_chore() {
                None => match rx.recv() {
                    Ok(m) => Some(m),
                    Err(_) => break,
                },
                Some(due) => match rx
                    .recv_timeout(due.saturating_duration_since(crate::clock::monotonic()))
                {
                    Ok(m) => Some(m),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                },
            };
            // Woken by the first request, this thread would otherwise commit it almost
            // alone while the requests behind it are still being read on a core it shares
            // with the runtime: let them queue first. A no-op when nothing else is ready
            // to run (an idle server, or a core of its own), so it adds no latency there.
            if matches!(first, Some(Msg::Job { .. })) {
                std::thread::yield_now();
            }
            let mut jobs = Vec::new();
            let mut bytes = 0;
            let mut counted = 0;
            let mut next = first;
            loop {
                match next {
                    Some(Msg::Job {
                        job,
                        bytes: b,
                        counted: c,
                    }) => {
                        jobs.push(job);
                        bytes += b;
                        counted += usize::from(c);
                    }
                    Some(Msg::Wake) | None => {}
                    Some(Msg::Shutdown) => {
                        stop = true;
                        break;
                    }
                }
                if jobs.len() >= self.batch_reqs || bytes >= self.batch_bytes {
                    break;
                }
                match rx.try_recv() {
                    Ok(m) => next = Some(m),
                    Err(_) => break,
                }
            }
            // Renewals ride along with any batch, are due on their own after a second, and
            // are written before a clean stop.
            let renew = !self.renewals.is_empty()
                && (!jobs.is_empty() || stop || self.renewed_at.elapsed() >= RENEW_EVERY);
            if jobs.is_empty() && !renew {
                self.maybe_compact();
                continue;
            }
            let n = jobs.len();
            let started = crate::clock::monotonic();
            self.commit_batch(jobs, renew);
            let m = metrics();
            if n > 0 {
                m.ingest_commit_seconds.observe_since(started);
                m.ingest_batch_requests.observe(n as f64);
            }
            let reqs = self
                .queued_reqs
                .fetch_sub(counted, Ordering::AcqRel)
                .saturating_sub(counted);
            let queued = self
                .queued_bytes
                .fetch_sub(bytes, Ordering::AcqRel)
                .saturating_sub(bytes);
            m.ingest_queue_requests.set(reqs as i64);
            m.ingest_queue_bytes.set(queued as i64);
            self.maybe_compact();
        }
        // A clean stop leaves the database complete on its own: the append log's records
        // and the `ingest` table compacted into `entries` and the rows.
        if self.memtable.size().entries > 0 || self.log.dirty() {
            self.compact();
        }
        tracing::debug!("writer thread stopped");
    }

    /// When the writer must wake up on its own: to compact, or to apply renewals.
    fn next_chore(&self) -> Option<Instant> {
        let now = crate::clock::monotonic();
        let compact = compaction_due_in(&self.memtable.size())
            .map(|wait| now + wait)
            .map(|t| self.compact_retry_at.map_or(t, |r| t.max(r)));
        let renew = (!self.renewals.is_empty()).then(|| self.renewed_at + RENEW_EVERY);
        match (compact, renew) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Compacts when the memtable is big or old enough (see [`compact`](Self::compact)).
    fn maybe_compact(&mut self) {
        let due = compaction_due_in(&self.memtable.size()) == Some(Duration::ZERO);
        if !due
            || self
                .compact_retry_at
                .is_some_and(|t| crate::clock::monotonic() < t)
        {
            return;
        }
        self.compact();
    }

    /// Compacts now: the append log's records and the `ingest` table into `entries`, and
    /// voids the log's records (see `applog`).
    fn compact(&mut self) {
        let started = crate::clock::monotonic();
        let spill = self.log.dirty().then(|| ingest::Spill {
            runs: &self.logged,
            new_salt: self.clock.random_in(1, u64::MAX),
        });
        let new_salt = spill.as_ref().map(|s| s.new_salt);
        match ingest::compact(&mut self.conn, spill) {
            Ok(n) => {
                self.nudge_checkpoint();
                // Only now: until this commit, readers must find the entries here.
                self.memtable.clear();
                if let Some(salt) = new_salt {
                    self.log.restart(salt);
                    self.logged.clear();
                }
                self.compact_retry_at = None;
                tracing::trace!(entries = n, elapsed = ?started.elapsed(), "compacted");
            }
            // The entries stay in `ingest`, the log and in memory; retry a second later.
            // (Appends are refused once the memtable is far over its size, see
            // `Engine::append`.)
            Err(e) => {
                tracing::error!(error = %e, "ingest compaction failed");
                self.compact_retry_at = Some(crate::clock::monotonic() + Duration::from_secs(1));
            }
        }
    }

    /// Evicts the streams whose rows the committed batch wrote from the metadata cache,
    /// or puts the exact state operations recorded; puts that state too for streams whose
    /// rows it did not write (a plain append writes none, see `memtable`).
    fn update_cache(&self, fx: &mut Effects) {
        let mut put = Vec::new();
        let mut evict = Vec::new();
        for (id, last_change) in self.touched.take() {
            match fx.fresh.remove(&id) {
                Some((m, seq)) if seq >= last_change => put.push(m),
                _ => evict.push(id),
            }
        }
        put.extend(fx.fresh.drain().map(|(_, (m, _))| m));
        self.cache.apply(evict, put);
    }

    /// Runs one batch (and the pending renewals if `renew`): in one transaction, or, if
    /// its operations wrote nothing to SQLite but entries, as one record of the append log.
    fn commit_batch(&mut self, jobs: Vec<Box<dyn Job>>, renew: bool) {
        // A failed record of the log may still reach the disk: nothing commits until a
        // compaction voided it (see `applog`).
        if self.log.failure().is_some() {
            self.compact();
            if let Some(e) = self.log.failure() {
                let e = EngineError::io("write the append log", e);
                for j in jobs {
                    j.fail(e.clone());
                }
                return;
            }
        }
        let now = self.clock.now_ms();
        let mut renewals = if renew {
            self.renewals.take()
        } else {
            HashMap::new()
        };
        self.touched.take();
        let mut ran: Vec<Box<dyn Job>> = Vec::with_capacity(jobs.len());
        let mut poisoned: Option<EngineError> = None;
        let (mut fx, durable) = {
            let mut b = Batch::new(
                &self.conn,
                &self.logged,
                &self.touched,
                &self.cache,
                &self.memtable,
                now,
                self.tiered,
                &self.clock,
            );
            // Renewals first, so that the expiry checks of the batch see them.
            if !renewals.is_empty() {
                match b.conn() {
                    Ok(c) => {
                        for (&id, &at) in &renewals {
                            if let Err(e) = streams::touch(c, id, at) {
                                tracing::warn!(error = %e, "TTL renewal failed");
                                poisoned = Some(e.into());
                                break;
                            }
                        }
                    }
                    // Locked or failing: the renewals wait for a later batch, and the
                    // plain appends of this one still go to the append log.
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot begin write transaction; TTL renewals wait");
                        self.renewals.restore(std::mem::take(&mut renewals));
                    }
                }
            }
            for mut job in jobs {
                if let Some(err) = &poisoned {
                    // The batch fails as a whole: run nothing more in it.
                    job.fail(err.clone());
                    continue;
                }
                poisoned = job.run(&mut b);
                b.end_operation();
                if poisoned.is_none() {
                    poisoned = b.failure().cloned();
                }
                // After some errors (a full disk, an I/O error) SQLite has already rolled
                // the whole transaction back; statements run now would each commit alone.
                if poisoned.is_none() && b.in_transaction() && self.conn.is_autocommit() {
                    poisoned = Some(job.engine_error().unwrap_or_else(|| {
                        EngineError::Internal("SQLite rolled the transaction back".into())
                    }));
                }
                ran.push(job);
            }
            b.finish()
        };
        if let Some(err) = poisoned {
            tracing::error!(error = %err, "a write failed inside the batch; rolling it back");
            self.rollback();
            self.renewals.restore(renewals);
            for j in ran {
                j.fail(err.clone());
            }
            return;
        }
        // Into the memtable before the commit: a reader whose snapshot includes the commit
        // (a close or a create writes the tail into the row) must find the entries. They
        // count towards a row's tail only once the commit is done (`committed` below), so
        // no reader sees entries of a commit that fails; those are taken back.
        let pushed: Vec<(i64, u64)> = fx
            .changes
            .values()
            .filter(|c| !c.entries.is_empty())
            .map(|c| {
                self.memtable.push(c.id, c.first_pos, c.entries.clone());
                (c.id, c.first_pos)
            })
            .collect();
        let done = match durable {
            Durable::Nothing => Ok(()),
            Durable::Log(runs) => match self.log.append(&runs) {
                Ok(()) => {
                    self.logged.extend(runs);
                    Ok(())
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot write the append log");
                    Err(EngineError::io("write the append log", e))
                }
            },
            Durable::Commit { spilled } => match self.conn.execute_batch("COMMIT") {
                Ok(()) => {
                    self.nudge_checkpoint();
                    if let Some(salt) = spilled {
                        self.log.restart(salt);
                        self.logged.clear();
                    }
                    Ok(())
                }
                Err(e) => {
                    tracing::error!(error = %e, "commit failed; failing the whole batch");
                    self.rollback();
                    Err(e.into())
                }
            },
        };
        match done {
            Ok(()) => {
                self.memtable.committed(pushed.iter().map(|&(id, _)| id));
                if renew {
                    self.renewed_at = crate::clock::monotonic();
                }
                // Before anyone hears of the commit, so that a lookup after a reply or a
                // published change sees it.
                self.update_cache(&mut fx);
                let m = metrics();
                for (entries, bytes) in fx.appends {
                    m.appends.inc();
                    m.append_entries.add(entries as u64);
                    m.append_bytes.add(bytes as u64);
                }
                self.replies.send(ran, fx.changes);
            }
            Err(err) => {
                for (id, first_pos) in pushed.into_iter().rev() {
                    self.memtable.retract(id, first_pos);
                }
                // Rows the batch wrote are rolled back: the cache must not keep them.
                self.touched.take();
                self.renewals.restore(renewals);
                for j in ran {
                    j.fail(err.clone());
                }
            }
        }
    }

    /// After a commit: a checkpoint is due once the WAL holds [`CHECKPOINT_PAGES`], as
    /// SQLite's automatic one would be.
    fn nudge_checkpoint(&self) {
        if let Some(c) = &self.checkpointer {
            if WAL_PAGES.get() >= CHECKPOINT_PAGES {
                c.nudge();
            }
        }
    }

    /// Ends the batch transaction without writing, if one is open.
    fn rollback(&self) {
        if !self.conn.is_autocommit() {
            if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %e, "cannot roll back the batch");
            }
        }
    }
}

#[cfg(test)]
mod tests;
