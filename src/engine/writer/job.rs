//! The writer's seam: a write operation is a closure that runs inside the batch
//! transaction with a [`Batch`], and whose typed result is sent back once the batch has
//! committed.
//!
//! A feature adds a write operation by writing one function `fn(&mut Batch, ...) ->
//! Result<T, E>` in its own module and submitting it with
//! [`WriterHandle::call`](super::WriterHandle::call); nothing in the writer changes. The
//! effects an operation has besides its rows (entries for the memtable, the committed
//! state to publish to readers, metrics) are recorded on the `Batch` and applied by the
//! writer only if the operation succeeded and the batch committed.

use std::collections::BTreeMap;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::super::committed::StreamChange;
use super::super::db::ingest::{self, Run};
use super::super::db::streams;
use super::super::entry::Entry;
use super::super::memtable::{self, Memtable};
use super::super::meta::StreamMeta;
use super::super::meta_cache::MetaCache;
use super::super::EngineError;
use super::Touched;
use crate::clock::SharedClock;

/// An operation's error type: it can carry a storage error, and report one.
pub(crate) trait WriteError: From<EngineError> + Send + 'static {
    /// The storage error this is, if it is one (it then fails the batch when the
    /// operation ran without a savepoint).
    fn engine(&self) -> Option<&EngineError>;
}

impl WriteError for EngineError {
    fn engine(&self) -> Option<&EngineError> {
        Some(self)
    }
}

/// What an operation sees while it runs: the transaction, the batch's time, and where it
/// records its effects.
///
/// The transaction begins with the first [`conn`](Batch::conn): a batch of plain appends
/// never asks for it, and its entries go to the append log instead (see `engine::applog`).
pub(crate) struct Batch<'a> {
    conn: &'a Connection,
    /// `BEGIN IMMEDIATE` ran.
    begun: bool,
    /// Entries of this batch bound for the append log (none once the transaction began:
    /// they then go to `ingest`).
    to_log: Vec<Run>,
    /// The append log's records of earlier batches, for [`spill_log`](Batch::spill_log).
    logged: &'a [Run],
    /// The new salt, once `spill_log` ran.
    spilled: Option<u64>,
    /// A storage error that fails the whole batch whatever the operation returns.
    failed: Option<EngineError>,
    /// Why `BEGIN` failed, if it did.
    begin_error: Option<rusqlite::Error>,
    touched: &'a Touched,
    cache: &'a MetaCache,
    memtable: &'a Memtable,
    /// The batch's wall time (one value for every operation in it).
    pub now: i64,
    /// Full mode: streams have segments, manifests and objects.
    pub tiered: bool,
    clock: &'a SharedClock,
    /// The running operation's effects.
    fx: Effects,
    /// The effects of the batch's operations that ended before it.
    done: Effects,
}

impl<'a> Batch<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        conn: &'a Connection,
        logged: &'a [Run],
        touched: &'a Touched,
        cache: &'a MetaCache,
        memtable: &'a Memtable,
        now: i64,
        tiered: bool,
        clock: &'a SharedClock,
    ) -> Self {
        Batch {
            conn,
            begun: false,
            to_log: Vec::new(),
            logged,
            spilled: None,
            failed: None,
            begin_error: None,
            touched,
            cache,
            memtable,
            now,
            tiered,
            clock,
            fx: Effects::default(),
            done: Effects::default(),
        }
    }

    /// The batch transaction, begun on the first call (with this batch's entries so far
    /// moved from the append log's share into `ingest`).
    pub fn conn(&mut self) -> rusqlite::Result<&'a Connection> {
        if !self.begun {
            // Locked or failing: a later operation of the batch would wait as long and fail
            // the same way, so it fails at once (operations that need no transaction, plain
            // appends, still go to the append log).
            if let Some(e) = &self.begin_error {
                return Err(copy_error(e));
            }
            if let Err(e) = self.conn.execute_batch("BEGIN IMMEDIATE") {
                self.begin_error = Some(copy_error(&e));
                return Err(e);
            }
            self.begun = true;
            let runs = std::mem::take(&mut self.to_log);
            if let Err(e) = ingest::insert_runs(self.conn, &runs) {
                // Entries of operations that succeeded are in neither place now.
                self.failed = Some(EngineError::from(copy_error(&e)));
                return Err(e);
            }
        }
        Ok(self.conn)
    }

    /// The connection for reads: inside the transaction if it began, else each statement
    /// sees the last commit (this thread makes every commit).
    pub fn read(&self) -> &'a Connection {
        self.conn
    }

    /// Whether the transaction began.
    pub fn in_transaction(&self) -> bool {
        self.begun
    }

    /// Makes entries of stream `id` at positions `first_pos..` durable with the batch —
    /// in `ingest` if the transaction began, else in the append log — and records them
    /// as [`appended`](Self::appended).
    pub fn persist(
        &mut self,
        id: i64,
        name: Option<&str>,
        first_pos: u64,
        entries: Vec<Entry>,
    ) -> rusqlite::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        if self.begun {
            ingest::insert_run(self.conn, id, first_pos, &entries)?;
        } else {
            self.to_log.push((id, first_pos, entries.clone()));
        }
        self.appended(id, name, first_pos, entries);
        Ok(())
    }

    /// Copies the append log's records into `ingest` in this transaction and voids them
    /// (a new salt, see `engine::applog`), so that SQLite holds every entry appended so
    /// far. The writer starts the log over once the batch commits.
    pub fn spill_log(&mut self) -> rusqlite::Result<()> {
        let c = self.conn()?;
        if self.spilled.is_none() {
            ingest::insert_runs(c, self.logged)?;
            let salt = self.clock.random_in(1, u64::MAX);
            ingest::set_log_salt(c, salt)?;
            self.spilled = Some(salt);
        }
        Ok(())
    }

    /// How many runs are bound for the log (to take back a failed operation's).
    fn log_mark(&self) -> usize {
        self.to_log.len()
    }

    /// The stream named `name` as this transaction sees it, its tail included. From the
    /// metadata cache when it holds the stream and no write of this batch touched its
    /// row: the writer updates the cache after every commit, before anyone hears of it,
    /// and readers cannot put back an older row (see `meta_cache`), so a cached stream is
    /// the committed one. Otherwise (and for a name the cache does not hold) from SQLite,
    /// with the appends not yet folded into the row (see `memtable`). Either way with the
    /// appends of this batch's earlier operations, which no row shows yet.
    pub fn stream_by_name(&self, name: &str) -> rusqlite::Result<Option<StreamMeta>> {
        let mut m = match self.cache.get(name) {
            Some(m) if !self.touched.contains(m.id) => m,
            _ => match streams::by_name(self.conn, name)? {
                Some(mut m) => {
                    self.memtable.lock().overlay(&mut m);
                    m
                }
                None => return Ok(None),
            },
        };
        self.overlay_batch(&mut m);
        Ok(Some(m))
    }

    /// Adds the entries this batch appended to `m` so far.
    fn overlay_batch(&self, m: &mut StreamMeta) {
        for fx in [&self.done, &self.fx] {
            if let Some(c) = fx.changes.get(&m.id) {
                memtable::extend_tail(m, c.first_pos, &c.entries);
            }
        }
    }

    /// A fresh random 128-bit token in hex (names a new incarnation's objects).
    pub fn token(&self) -> String {
        format!(
            "{:016x}{:016x}",
            self.clock.random_in(0, u64::MAX),
            self.clock.random_in(0, u64::MAX)
        )
    }

    /// Entries appended to stream `id` at positions `first_pos..`: they go into the
    /// memtable and to the stream's readers once the batch commits.
    pub fn appended(&mut self, id: i64, name: Option<&str>, first_pos: u64, entries: Vec<Entry>) {
        let n = entries.len();
        let bytes: usize = entries.iter().map(|e| e.data.len()).sum();
        let c = self.fx.change(id, name, first_pos);
        debug_assert_eq!(c.next_pos, first_pos, "appends to a stream are contiguous");
        c.next_pos = first_pos + n as u64;
        c.entries.extend(entries);
        if n > 0 {
            self.fx.appends.push((n, bytes));
        }
    }

    /// Counts entries written outside [`appended`](Self::appended) (a create's initial
    /// body) in the append metrics.
    pub fn count_append(&mut self, entries: usize, bytes: usize) {
        if entries > 0 {
            self.fx.appends.push((entries, bytes));
        }
    }

    /// The stream's committed state after this operation: its tail and closed flag.
    pub fn tail(&mut self, id: i64, name: Option<&str>, next_pos: u64, closed: bool) {
        let c = self.fx.change(id, name, next_pos);
        c.next_pos = next_pos;
        c.closed = closed;
    }

    /// The stream's row as this operation left it, exactly: the metadata cache takes it
    /// instead of dropping the stream, unless a later write in the batch touches the row.
    pub fn fresh(&mut self, meta: StreamMeta) {
        let seq = self.touched.seq();
        self.fx.fresh.insert(meta.id, (meta, seq));
    }

    /// The stream left the namespace (deleted, expired, removed): its readers stop.
    pub fn gone(&mut self, id: i64) {
        self.fx.change(id, None, 0).gone = true;
    }

    /// Ends the running operation: its effects join the batch's.
    pub(super) fn end_operation(&mut self) {
        let fx = std::mem::take(&mut self.fx);
        self.done.merge(fx);
    }

    /// The storage error that fails the batch whatever its operations returned.
    pub(super) fn failure(&self) -> Option<&EngineError> {
        self.failed.as_ref()
    }

    /// The effects of every operation of the batch (after the last one ended), and how it
    /// must be made durable.
    pub(super) fn finish(self) -> (Effects, Durable) {
        let d = if self.begun {
            Durable::Commit {
                spilled: self.spilled,
            }
        } else if self.to_log.is_empty() {
            Durable::Nothing
        } else {
            Durable::Log(self.to_log)
        };
        (self.done, d)
    }
}

/// A copy of a SQLite error (the type is not `Clone`) with the same code, so that it maps
/// to the same [`EngineError`].
fn copy_error(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(f, m) => rusqlite::Error::SqliteFailure(*f, m.clone()),
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
            Some(other.to_string()),
        ),
    }
}

/// How a batch is made durable.
pub(super) enum Durable {
    /// It wrote nothing.
    Nothing,
    /// Its entries, as one record of the append log.
    Log(Vec<Run>),
    /// `COMMIT`; with the new salt of the append log if the batch spilled it.
    Commit { spilled: Option<u64> },
}

/// Effects of the operations of a batch, applied after it commits.
#[derive(Default)]
pub(crate) struct Effects {
    /// Per stream: the committed state to publish, with the entries appended.
    pub changes: BTreeMap<i64, StreamChange>,
    /// `(entries, bytes)` of each append, for the metrics.
    pub appends: Vec<(usize, usize)>,
    /// Rows known exactly (see [`Batch::fresh`]), with the row-change sequence number
    /// at the time they were recorded.
    pub fresh: std::collections::HashMap<i64, (StreamMeta, u64)>,
}

impl Effects {
    fn change(&mut self, id: i64, name: Option<&str>, pos: u64) -> &mut StreamChange {
        let c = self.changes.entry(id).or_insert_with(|| StreamChange {
            id,
            name: None,
            next_pos: pos,
            closed: false,
            gone: false,
            first_pos: pos,
            entries: Vec::new(),
        });
        if c.name.is_none() {
            c.name = name.map(str::to_string);
        }
        c
    }

    /// Adds a later operation's effects to these.
    pub fn merge(&mut self, later: Effects) {
        for (id, c) in later.changes {
            match self.changes.get_mut(&id) {
                None => {
                    self.changes.insert(id, c);
                }
                Some(prev) => {
                    if prev.entries.is_empty() {
                        prev.first_pos = c.first_pos;
                    }
                    prev.entries.extend(c.entries);
                    prev.next_pos = c.next_pos;
                    prev.closed = c.closed;
                    prev.gone |= c.gone;
                    if prev.name.is_none() {
                        prev.name = c.name;
                    }
                }
            }
        }
        self.appends.extend(later.appends);
        self.fresh.extend(later.fresh);
    }
}

/// A queued operation, type-erased for the writer.
pub(crate) trait Job: Send {
    /// Runs the operation in the transaction. Returns the storage error that fails the
    /// whole batch, if any (only operations without a savepoint can do that).
    fn run(&mut self, b: &mut Batch<'_>) -> Option<EngineError>;
    /// The operation's own storage error, if it failed with one.
    fn engine_error(&self) -> Option<EngineError>;
    /// Sends the result (after the commit).
    fn reply(self: Box<Self>);
    /// Sends `e` instead of the result (the batch failed).
    fn fail(self: Box<Self>, e: EngineError);
}

/// A closure and where its result goes.
pub(crate) struct Call<T, E, F> {
    f: Option<F>,
    savepoint: bool,
    result: Option<Result<T, E>>,
    tx: oneshot::Sender<Result<T, E>>,
}

impl<T, E, F> Call<T, E, F> {
    pub fn new(f: F, savepoint: bool, tx: oneshot::Sender<Result<T, E>>) -> Self {
        Call {
            f: Some(f),
            savepoint,
            result: None,
            tx,
        }
    }
}

impl<T, E, F> Job for Call<T, E, F>
where
    T: Send + 'static,
    E: WriteError,
    F: FnOnce(&mut Batch<'_>) -> Result<T, E> + Send + 'static,
{
    fn run(&mut self, b: &mut Batch<'_>) -> Option<EngineError> {
        let f = self.f.take()?;
        let mark = b.log_mark();
        let r = if self.savepoint {
            in_savepoint(b, f)
        } else {
            f(b)
        };
        if r.is_err() {
            // A failed operation has no effects (its rows were rolled back, or it
            // returned before writing).
            b.fx = Effects::default();
            b.to_log.truncate(mark);
        }
        let poison = match &r {
            Err(e) if !self.savepoint => e.engine().cloned(),
            _ => None,
        };
        self.result = Some(r);
        poison
    }

    fn engine_error(&self) -> Option<EngineError> {
        match &self.result {
            Some(Err(e)) => e.engine().cloned(),
            _ => None,
        }
    }

    fn reply(self: Box<Self>) {
        let r = self
            .result
            .unwrap_or_else(|| Err(EngineError::ShuttingDown.into()));
        // A dropped receiver means the client went away; nothing to do.
        let _ = self.tx.send(r);
    }

    fn fail(self: Box<Self>, e: EngineError) {
        let _ = self.tx.send(Err(e.into()));
    }
}

/// Runs `f` inside a savepoint, undoing its writes if it fails.
fn in_savepoint<T, E: WriteError>(
    b: &mut Batch<'_>,
    f: impl FnOnce(&mut Batch<'_>) -> Result<T, E>,
) -> Result<T, E> {
    let conn = b.conn().map_err(|e| E::from(e.into()))?;
    conn.execute_batch("SAVEPOINT op")
        .map_err(|e| E::from(e.into()))?;
    let r = f(b);
    let end = if r.is_ok() {
        "RELEASE op"
    } else {
        "ROLLBACK TO op; RELEASE op"
    };
    conn.execute_batch(end).map_err(|e| E::from(e.into()))?;
    r
}
