//! The single writer thread and its group commit.
//!
//! Requests queue on an unbounded channel whose size is bounded by accounting (request
//! count and payload bytes; over either limit a request is refused with `Overloaded`,
//! which the HTTP layer answers with 429). The thread blocks for the first request, takes
//! everything else already queued (up to the batch limits), runs it all in one
//! `BEGIN IMMEDIATE` transaction with a savepoint per request, commits, and only then
//! answers the requests and wakes readers. There is no timer: an idle server commits a
//! lone request at once, a busy one batches whatever arrived during the last commit.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

mod ops;

use super::db::segments::SegmentRow;
use super::db::{self, ingest, streams};
use super::memtable::Memtable;
use super::notifier::Notifier;
use super::{
    AppendCmd, AppendError, AppendOutcome, CreateCmd, CreateError, CreateOutcome, DeleteError,
    EngineError,
};
use crate::clock::SharedClock;
use crate::config::Limits;
use crate::telemetry::metrics::metrics;
use ops::{append, create, delete, retain, sweep, tier, Ctx};

/// The memtable is compacted into `entries` once it holds this many entries or bytes, or
/// its oldest entry is this old.
const COMPACT_MAX_ENTRIES: usize = 20_000;
const COMPACT_MAX_BYTES: usize = 4 << 20;
const COMPACT_AFTER: std::time::Duration = std::time::Duration::from_millis(200);

/// A request for the writer thread.
pub enum Command {
    Create(
        CreateCmd,
        oneshot::Sender<Result<CreateOutcome, CreateError>>,
    ),
    Append(
        AppendCmd,
        oneshot::Sender<Result<AppendOutcome, AppendError>>,
    ),
    Delete(String, oneshot::Sender<Result<(), DeleteError>>),
    Sweep(usize, oneshot::Sender<Result<usize, EngineError>>),
    /// Keep only the newest entries of an internal stream: `(name, keep)`.
    Retain(String, u64, oneshot::Sender<Result<usize, EngineError>>),
    Touch(i64, i64),
    /// Background tiering work; the reply says whether it still applied.
    Tier(TierCmd, oneshot::Sender<Result<bool, EngineError>>),
    Shutdown,
}

/// Bookkeeping of the segmenter and uploader.
#[derive(Debug)]
pub enum TierCmd {
    /// A segment file was written; applies only if the stream is still the same
    /// incarnation and its sealed position is the segment's start.
    Sealed { seg: SegmentRow, payload_bytes: u64 },
    /// A segment object was uploaded.
    Uploaded {
        stream_id: i64,
        index: u64,
        etag: Option<String>,
    },
    /// A manifest of `generation` covering `[.., uploaded_pos)` was published; entries
    /// below `uploaded_pos` are deleted from SQLite.
    Published {
        stream_id: i64,
        generation: u64,
        etag: Option<String>,
        uploaded_pos: u64,
        /// The generation the publisher started from: the dirty flag is cleared only if
        /// nobody published in between.
        base_generation: u64,
    },
    /// A removed incarnation's objects are gone.
    GcDone { id: i64 },
}

struct Queued {
    cmd: Command,
    bytes: usize,
}

/// Returned when the ingest queue is over its limits.
#[derive(Debug, Clone, Copy)]
pub struct QueueFull;

pub struct WriterHandle {
    tx: mpsc::Sender<Queued>,
    queued_reqs: Arc<AtomicUsize>,
    queued_bytes: Arc<AtomicUsize>,
    max_reqs: usize,
    max_bytes: usize,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl WriterHandle {
    /// Queues a request, refusing it when the queue is full.
    pub fn submit(&self, cmd: Command, bytes: usize) -> Result<(), EngineError> {
        let reqs = self.queued_reqs.fetch_add(1, Ordering::AcqRel);
        let queued = self.queued_bytes.fetch_add(bytes, Ordering::AcqRel);
        if reqs >= self.max_reqs || (queued > 0 && queued + bytes > self.max_bytes) {
            self.queued_reqs.fetch_sub(1, Ordering::AcqRel);
            self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
            metrics().overloaded.inc();
            return Err(EngineError::Overloaded);
        }
        self.tx.send(Queued { cmd, bytes }).map_err(|_| {
            self.queued_reqs.fetch_sub(1, Ordering::AcqRel);
            self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
            EngineError::ShuttingDown
        })
    }

    /// Queues the server's own bookkeeping, which is never refused for load.
    pub fn submit_internal(&self, cmd: Command) -> Result<(), EngineError> {
        self.queued_reqs.fetch_add(1, Ordering::AcqRel);
        self.tx.send(Queued { cmd, bytes: 0 }).map_err(|_| {
            self.queued_reqs.fetch_sub(1, Ordering::AcqRel);
            EngineError::ShuttingDown
        })
    }

    /// Fire-and-forget TTL renewal; not subject to queue limits (it carries no payload).
    pub fn touch(&self, id: i64, at_ms: i64) {
        self.queued_reqs.fetch_add(1, Ordering::AcqRel);
        if self
            .tx
            .send(Queued {
                cmd: Command::Touch(id, at_ms),
                bytes: 0,
            })
            .is_err()
        {
            self.queued_reqs.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Asks the thread to stop after the requests queued before this call, and waits.
    pub fn shutdown(&self) {
        let _ = self.submit_internal(Command::Shutdown);
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

/// Opens the write connection (migrating the schema) and starts the thread.
pub fn spawn(
    path: &Path,
    limits: &Limits,
    tiered: bool,
    clock: SharedClock,
    notifier: Notifier,
    memtable: Arc<Memtable>,
) -> Result<WriterHandle, EngineError> {
    let mut conn = db::open_writer(path)?;
    recover_ingest(&mut conn, &memtable)?;
    let (tx, rx) = mpsc::channel();
    let queued_reqs = Arc::new(AtomicUsize::new(0));
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let mut w = Writer {
        conn,
        tiered,
        clock,
        notifier,
        memtable,
        compact_retry_at: None,
        queued_reqs: queued_reqs.clone(),
        queued_bytes: queued_bytes.clone(),
        batch_reqs: limits.ingest_max_batch_reqs,
        batch_bytes: limits.ingest_max_batch_bytes,
    };
    let thread = std::thread::Builder::new()
        .name("sqlite-writer".into())
        .spawn(move || w.run(rx))
        .map_err(|e| EngineError::Storage(format!("spawn writer thread: {e}")))?;
    Ok(WriterHandle {
        tx,
        queued_reqs,
        queued_bytes,
        max_reqs: limits.ingest_max_queue_reqs,
        max_bytes: limits.ingest_max_queue_bytes,
        thread: Mutex::new(Some(thread)),
    })
}

/// Whatever a crash left in the ingest log goes where readers look for it: into `entries`
/// or, if that cannot be written now (a full disk), into the memtable, so the server still
/// starts and serves it; the writer compacts later.
fn recover_ingest(conn: &mut Connection, memtable: &Memtable) -> Result<(), EngineError> {
    if ingest::is_empty(conn)? {
        return Ok(());
    }
    match ingest::compact(conn) {
        Ok(n) => tracing::info!(entries = n, "recovered appends from the ingest log"),
        Err(e) => {
            tracing::warn!(error = %e, "cannot compact the ingest log now; serving it from memory");
            for (id, first_pos, entries) in ingest::load_runs(conn)? {
                memtable.push(id, first_pos, entries);
            }
        }
    }
    Ok(())
}

struct Writer {
    conn: Connection,
    /// Full mode: removed incarnations leave objects to delete.
    tiered: bool,
    clock: SharedClock,
    notifier: Notifier,
    /// Appends committed to `ingest` but not yet compacted into `entries`.
    memtable: Arc<Memtable>,
    /// After a failed compaction: not before this instant.
    compact_retry_at: Option<std::time::Instant>,
    queued_reqs: Arc<AtomicUsize>,
    queued_bytes: Arc<AtomicUsize>,
    batch_reqs: usize,
    batch_bytes: usize,
}

/// An answer held back until the transaction commits. (Short-lived, one per request in a
/// batch, so the size difference between variants does not matter.)
#[allow(clippy::large_enum_variant)]
enum Reply {
    Create(
        oneshot::Sender<Result<CreateOutcome, CreateError>>,
        Result<CreateOutcome, CreateError>,
    ),
    Append(
        oneshot::Sender<Result<AppendOutcome, AppendError>>,
        Result<AppendOutcome, AppendError>,
    ),
    Delete(
        oneshot::Sender<Result<(), DeleteError>>,
        Result<(), DeleteError>,
    ),
    /// A count: streams swept, or entries trimmed.
    Count(
        oneshot::Sender<Result<usize, EngineError>>,
        Result<usize, EngineError>,
    ),
    Tier(
        oneshot::Sender<Result<bool, EngineError>>,
        Result<bool, EngineError>,
    ),
}

impl Reply {
    fn send(self) {
        // A dropped receiver means the client went away; nothing to do.
        match self {
            Reply::Create(tx, r) => drop(tx.send(r)),
            Reply::Append(tx, r) => drop(tx.send(r)),
            Reply::Delete(tx, r) => drop(tx.send(r)),
            Reply::Count(tx, r) => drop(tx.send(r)),
            Reply::Tier(tx, r) => drop(tx.send(r)),
        }
    }

    /// The storage error this request failed with, if that is how it failed.
    fn engine_error(&self) -> Option<EngineError> {
        match self {
            Reply::Create(_, Err(CreateError::Engine(e)))
            | Reply::Append(_, Err(AppendError::Engine(e)))
            | Reply::Delete(_, Err(DeleteError::Engine(e)))
            | Reply::Count(_, Err(e))
            | Reply::Tier(_, Err(e)) => Some(e.clone()),
            _ => None,
        }
    }

    fn fail(self, e: EngineError) {
        match self {
            Reply::Create(tx, _) => drop(tx.send(Err(e.into()))),
            Reply::Append(tx, _) => drop(tx.send(Err(e.into()))),
            Reply::Delete(tx, _) => drop(tx.send(Err(e.into()))),
            Reply::Count(tx, _) => drop(tx.send(Err(e))),
            Reply::Tier(tx, _) => drop(tx.send(Err(e))),
        }
    }
}

/// Failure of one request: a domain refusal, or a storage error.
trait FromSql: Sized {
    fn sql(e: rusqlite::Error) -> Self;
}
impl FromSql for CreateError {
    fn sql(e: rusqlite::Error) -> Self {
        CreateError::Engine(e.into())
    }
}
impl FromSql for AppendError {
    fn sql(e: rusqlite::Error) -> Self {
        AppendError::Engine(e.into())
    }
}
impl FromSql for DeleteError {
    fn sql(e: rusqlite::Error) -> Self {
        DeleteError::Engine(e.into())
    }
}
impl FromSql for EngineError {
    fn sql(e: rusqlite::Error) -> Self {
        e.into()
    }
}

impl Writer {
    fn run(&mut self, rx: mpsc::Receiver<Queued>) {
        let mut stop = false;
        while !stop {
            // Wait for work; with entries in the memtable, wake up in time to compact.
            let first = if self.memtable.size().0 > 0 {
                match rx.recv_timeout(COMPACT_AFTER) {
                    Ok(q) => q,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        self.maybe_compact();
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(q) => q,
                    Err(_) => break,
                }
            };
            let mut batch = vec![first];
            let mut bytes = batch[0].bytes;
            while batch.len() < self.batch_reqs && bytes < self.batch_bytes {
                match rx.try_recv() {
                    Ok(q) => {
                        bytes += q.bytes;
                        batch.push(q);
                    }
                    Err(_) => break,
                }
            }
            let n = batch.len();
            let started = std::time::Instant::now();
            stop = self.commit_batch(batch);
            let m = metrics();
            m.ingest_commit_seconds.observe_since(started);
            m.ingest_batch_requests.observe(n as f64);
            let reqs = self
                .queued_reqs
                .fetch_sub(n, Ordering::AcqRel)
                .saturating_sub(n);
            let queued = self
                .queued_bytes
                .fetch_sub(bytes, Ordering::AcqRel)
                .saturating_sub(bytes);
            m.ingest_queue_requests.set(reqs as i64);
            m.ingest_queue_bytes.set(queued as i64);
            self.maybe_compact();
        }
        tracing::debug!("writer thread stopped");
    }

    /// Compacts the ingest log into `entries` when the memtable is big or old enough.
    fn maybe_compact(&mut self) {
        let (entries, bytes, age) = self.memtable.size();
        let due = entries >= COMPACT_MAX_ENTRIES
            || bytes >= COMPACT_MAX_BYTES
            || age.is_some_and(|a| a >= COMPACT_AFTER);
        if !due
            || self
                .compact_retry_at
                .is_some_and(|t| std::time::Instant::now() < t)
        {
            return;
        }
        let started = std::time::Instant::now();
        match ingest::compact(&mut self.conn) {
            Ok(n) => {
                // Only now: until this commit, readers must find the entries here.
                self.memtable.clear();
                self.compact_retry_at = None;
                tracing::trace!(entries = n, elapsed = ?started.elapsed(), "compacted the ingest log");
            }
            // The entries stay in `ingest` and in memory; retry a second later. (Appends
            // are refused once the memtable is far over its size, see `Engine::append`.)
            Err(e) => {
                tracing::error!(error = %e, "ingest compaction failed");
                self.compact_retry_at =
                    Some(std::time::Instant::now() + std::time::Duration::from_secs(1));
            }
        }
    }

    /// Runs one batch; returns true when a shutdown request was in it.
    fn commit_batch(&mut self, batch: Vec<Queued>) -> bool {
        let now = self.clock.now_ms();
        let mut replies = Vec::with_capacity(batch.len());
        let mut changed = BTreeSet::new();
        let mut touches: HashMap<i64, i64> = HashMap::new();
        let mut stop = false;
        // A SQL error inside an append (which has no savepoint) fails the whole batch.
        let mut poisoned: Option<EngineError> = None;
        // Entries appended, for the memtable once committed.
        let mut adds = Vec::new();
        // (entries, bytes) of appends, counted once the commit succeeded.
        let mut written: Vec<(usize, usize)> = Vec::new();
        let tx = match self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(e) => {
                tracing::error!(error = %e, "cannot begin write transaction");
                fail_all(batch, EngineError::from(e));
                return false;
            }
        };
        let ctx = Ctx {
            now,
            tiered: self.tiered,
            random: [
                self.clock.random_in(0, u64::MAX),
                self.clock.random_in(0, u64::MAX),
            ],
        };
        for q in batch {
            if let Some(err) = &poisoned {
                // The batch fails as a whole: run nothing more in it.
                stop |= fail_one(q, err.clone());
                continue;
            }
            match q.cmd {
                Command::Create(cmd, reply) => {
                    let r = in_savepoint(&tx, |c| create(c, cmd, &ctx));
                    if let Ok(CreateOutcome::Created(m)) = &r {
                        changed.insert(m.id);
                        let entries = (m.next_pos - m.own_start()) as usize;
                        if entries > 0 {
                            written.push((entries, m.pending_bytes as usize));
                        }
                    }
                    replies.push(Reply::Create(reply, r));
                }
                Command::Append(cmd, reply) => {
                    // No savepoint (its page journal is a measurable cost on the hot
                    // path): `append` returns protocol errors before writing anything, and
                    // a SQL error fails the whole batch below.
                    let bytes: usize = cmd.entries.iter().map(Vec::len).sum();
                    let r = append(&tx, cmd, &ctx);
                    let r = match r {
                        Ok((out, added)) => {
                            changed.insert(added.stream_id);
                            if out.written > 0 {
                                written.push((out.written, bytes));
                            }
                            adds.push(added);
                            Ok(out)
                        }
                        Err(e) => Err(e),
                    };
                    match &r {
                        Ok(_) => {}
                        Err(AppendError::Engine(e)) if poisoned.is_none() => {
                            poisoned = Some(e.clone());
                        }
                        Err(_) => {}
                    }
                    replies.push(Reply::Append(reply, r));
                }
                Command::Delete(name, reply) => {
                    let r = in_savepoint(&tx, |c| delete(c, &name, &ctx, &mut changed));
                    replies.push(Reply::Delete(reply, r));
                }
                Command::Sweep(limit, reply) => {
                    let r = in_savepoint(&tx, |c| sweep(c, limit, &ctx, &mut changed));
                    replies.push(Reply::Count(reply, r));
                }
                Command::Tier(cmd, reply) => {
                    let r = in_savepoint(&tx, |c| tier(c, cmd, &ctx));
                    replies.push(Reply::Tier(reply, r));
                }
                Command::Retain(name, keep, reply) => {
                    let r = in_savepoint(&tx, |c| retain(c, &name, keep));
                    replies.push(Reply::Count(reply, r.map(|n| n as usize)));
                }
                Command::Touch(id, at) => {
                    let e = touches.entry(id).or_insert(at);
                    *e = (*e).max(at);
                }
                Command::Shutdown => stop = true,
            }
            // After some errors (a full disk, an I/O error) SQLite has already rolled the
            // whole transaction back; statements run now would each commit on their own.
            if poisoned.is_none() && tx.is_autocommit() {
                poisoned = Some(replies.last().and_then(Reply::engine_error).unwrap_or_else(
                    || EngineError::Storage("SQLite rolled the transaction back".into()),
                ));
            }
        }
        if poisoned.is_some() {
            touches.clear();
        }
        for (id, at) in touches {
            if let Err(e) = streams::touch(&tx, id, at) {
                tracing::warn!(error = %e, "TTL renewal failed");
            }
        }
        if let Some(err) = poisoned {
            tracing::error!(error = %err, "an append failed inside the batch; rolling it back");
            drop(tx);
            for r in replies {
                r.fail(err.clone());
            }
            return stop;
        }
        // Into the memtable before the commit: a reader whose snapshot includes the commit
        // must find the entries (readers never look past their snapshot's tail, so
        // entries of a commit that fails are never seen, and are taken back below).
        let pushed: Vec<(i64, u64)> = adds.iter().map(|a| (a.stream_id, a.first_pos)).collect();
        for a in adds {
            self.memtable.push(a.stream_id, a.first_pos, a.entries);
        }
        match tx.commit() {
            Ok(()) => {
                let m = metrics();
                for (entries, bytes) in written {
                    m.appends.inc();
                    m.append_entries.add(entries as u64);
                    m.append_bytes.add(bytes as u64);
                }
                for r in replies {
                    r.send();
                }
                self.notifier.notify(changed);
            }
            Err(e) => {
                tracing::error!(error = %e, "commit failed; failing the whole batch");
                for (id, first_pos) in pushed.into_iter().rev() {
                    self.memtable.retract(id, first_pos);
                }
                let err = EngineError::from(e);
                for r in replies {
                    r.fail(err.clone());
                }
            }
        }
        stop
    }
}

fn fail_all(batch: Vec<Queued>, e: EngineError) {
    for q in batch {
        fail_one(q, e.clone());
    }
}

/// Answers a request that will not run with `e`; true if it was the shutdown request.
fn fail_one(q: Queued, e: EngineError) -> bool {
    match q.cmd {
        Command::Create(_, r) => drop(r.send(Err(e.into()))),
        Command::Append(_, r) => drop(r.send(Err(e.into()))),
        Command::Delete(_, r) => drop(r.send(Err(e.into()))),
        Command::Sweep(_, r) => drop(r.send(Err(e))),
        Command::Retain(_, _, r) => drop(r.send(Err(e))),
        Command::Tier(_, r) => drop(r.send(Err(e))),
        Command::Touch(..) => {}
        Command::Shutdown => return true,
    }
    false
}

/// Runs one request inside a savepoint, undoing its partial writes if it fails.
fn in_savepoint<T, E: FromSql>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, E>,
) -> Result<T, E> {
    conn.execute_batch("SAVEPOINT req").map_err(E::sql)?;
    let r = f(conn);
    let end = if r.is_ok() {
        "RELEASE req"
    } else {
        "ROLLBACK TO req; RELEASE req"
    };
    conn.execute_batch(end).map_err(E::sql)?;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(max_reqs: usize, max_bytes: usize) -> (WriterHandle, mpsc::Receiver<Queued>) {
        let (tx, rx) = mpsc::channel();
        let h = WriterHandle {
            tx,
            queued_reqs: Arc::new(AtomicUsize::new(0)),
            queued_bytes: Arc::new(AtomicUsize::new(0)),
            max_reqs,
            max_bytes,
            thread: Mutex::new(None),
        };
        (h, rx)
    }

    fn sweep() -> Command {
        Command::Sweep(1, oneshot::channel().0)
    }

    #[test]
    fn queue_refuses_requests_over_the_count_limit() {
        let (h, _rx) = handle(2, 1 << 20);
        h.submit(sweep(), 0).unwrap();
        h.submit(sweep(), 0).unwrap();
        assert!(matches!(h.submit(sweep(), 0), Err(EngineError::Overloaded)));
        assert_eq!(
            h.queued_reqs.load(Ordering::SeqCst),
            2,
            "a refused request is not counted"
        );
    }

    #[test]
    fn queue_refuses_requests_over_the_byte_limit_but_never_starves_a_big_one() {
        let (h, _rx) = handle(100, 10);
        h.submit(sweep(), 64).unwrap(); // alone in the queue: accepted even though large
        assert!(matches!(h.submit(sweep(), 1), Err(EngineError::Overloaded)));
        assert_eq!(h.queued_bytes.load(Ordering::SeqCst), 64);
    }

    #[test]
    fn a_stopped_writer_reports_shutdown() {
        let (h, rx) = handle(10, 10);
        drop(rx);
        assert!(matches!(
            h.submit(sweep(), 1),
            Err(EngineError::ShuttingDown)
        ));
        assert_eq!(h.queued_reqs.load(Ordering::SeqCst), 0);
    }

    fn writer(path: &Path) -> (Writer, Arc<Memtable>) {
        let memtable = Arc::new(Memtable::default());
        let w = Writer {
            conn: db::open_writer(path).unwrap(),
            tiered: false,
            clock: crate::clock::ManualClock::new(1_000),
            notifier: Notifier::default(),
            memtable: memtable.clone(),
            compact_retry_at: None,
            queued_reqs: Arc::new(AtomicUsize::new(0)),
            queued_bytes: Arc::new(AtomicUsize::new(0)),
            batch_reqs: 100,
            batch_bytes: 1 << 30,
        };
        (w, memtable)
    }

    type AppendRx = oneshot::Receiver<Result<AppendOutcome, AppendError>>;

    fn create(name: &str) -> Queued {
        let (tx, _rx) = oneshot::channel();
        let cmd = CreateCmd {
            name: name.into(),
            content_type: Some("text/plain".into()),
            expiry: None,
            closed: false,
            fork: None,
            body: vec![],
            local_only: false,
        };
        Queued {
            cmd: Command::Create(cmd, tx),
            bytes: 0,
        }
    }

    fn append(name: &str, data: Vec<u8>, producer_seq: Option<u64>) -> (Queued, AppendRx) {
        let (tx, rx) = oneshot::channel();
        let cmd = AppendCmd {
            name: name.into(),
            content_type: Some("text/plain".into()),
            entries: vec![data],
            close: false,
            producer: producer_seq.map(|seq| crate::protocol::headers::Producer {
                id: "p".into(),
                epoch: 0,
                seq,
            }),
            stream_seq: None,
            framing_error: None,
        };
        (
            Queued {
                cmd: Command::Append(cmd, tx),
                bytes: 0,
            },
            rx,
        )
    }

    fn next_pos(w: &Writer, name: &str) -> i64 {
        w.conn
            .query_row(
                "SELECT next_pos FROM streams WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .unwrap()
    }

    /// SQLite rolls the whole transaction back on some errors (here: the database may not
    /// grow, as on a full disk). Nothing after that point may run on its own, every
    /// request of the batch fails, and the memtable stays in step with the database.
    #[test]
    fn a_transaction_rolled_back_by_sqlite_fails_the_whole_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, memtable) = writer(&dir.path().join("db.sqlite"));
        w.commit_batch(vec![create("s"), create("t")]);
        let (q, mut r) = append("t", b"t0".to_vec(), None);
        w.commit_batch(vec![q]);
        assert!(r.try_recv().unwrap().is_ok());

        let pages: i64 = w
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        w.conn
            .execute_batch(&format!("PRAGMA max_page_count = {}", pages + 2))
            .unwrap();
        let (big, mut r_big) = append("s", vec![7u8; 200_000], None);
        let (small, mut r_small) = append("t", b"t1".to_vec(), None);
        let (prod, mut r_prod) = append("t", vec![9u8; 10], Some(0));
        w.commit_batch(vec![big, small, prod]);
        for r in [&mut r_big, &mut r_small, &mut r_prod] {
            assert!(matches!(
                r.try_recv().unwrap(),
                Err(AppendError::Engine(EngineError::DiskFull(_)))
            ));
        }
        assert_eq!(
            next_pos(&w, "t"),
            1,
            "nothing of the failed batch was stored"
        );
        assert_eq!(memtable.lock().range(2, 0, 10, 1 << 20, 100, true).len(), 1);

        // Space again: the producer's retry is a first write, not a duplicate, and the
        // memtable continues where the database does.
        w.conn
            .execute_batch("PRAGMA max_page_count = 1073741823")
            .unwrap();
        let (prod, mut r_prod) = append("t", vec![9u8; 10], Some(0));
        let (small, mut r_small) = append("t", b"t1".to_vec(), None);
        w.commit_batch(vec![prod, small]);
        let out = r_prod.try_recv().unwrap().unwrap();
        assert_eq!((out.next_pos, out.written), (2, 1));
        assert_eq!(r_small.try_recv().unwrap().unwrap().next_pos, 3);
        assert_eq!(memtable.lock().range(2, 0, 10, 1 << 20, 100, true).len(), 3);
    }
}
