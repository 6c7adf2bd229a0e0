//! Persistence: the single SQLite writer thread, the read pool, and the notifier that
//! wakes live readers after a commit.
//!
//! Concurrency model: every mutation is a [`writer::Command`] sent to one dedicated thread
//! that owns the read-write connection. It drains whatever is queued into one transaction,
//! commits, then answers each request and notifies readers, so nothing is visible or
//! acknowledged before it is durable. Reads use a small pool of read-only connections on
//! tokio's blocking threads; WAL mode lets them run beside the writer.

pub mod bootstrap;
pub mod committed;
pub mod db;
pub mod manifest;
pub(crate) mod memtable;
pub mod meta;
mod notifier;
mod ops;
mod reader;
pub mod segment;
mod segmenter;
pub mod tier;
mod uploader;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;

use crate::clock::SharedClock;
use crate::config::Limits;
use crate::protocol::expiry::Expiry;

pub use committed::{Commit, CommitFeed, Committed, EncodingKey, FeedEvent, StreamChange};
pub use meta::{ForkInfo, Lifecycle, StreamConfig, StreamMeta, Tail, TierState};
pub use notifier::TailReceiver;
pub use ops::append::{AppendCmd, AppendError, AppendOutcome};
pub use ops::create::{CreateCmd, CreateError, CreateOutcome, ForkSpec};
pub use ops::remove::DeleteError;
pub(crate) use ops::tiering::TierCmd;
pub use reader::ReadBatch;

/// Failures of the storage layer itself.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("storage error: {0}")]
    Storage(String),
    /// SQLite could not grow its files: the disk (or quota) is full.
    #[error("disk full: {0}")]
    DiskFull(String),
    /// Another process holds a lock on the database longer than the busy timeout.
    #[error("database busy: {0}")]
    Busy(String),
    /// The object store did not answer usefully after every retry.
    #[error("object store unavailable: {0}")]
    ObjectStore(String),
    #[error("ingest queue full")]
    Overloaded,
    #[error("server shutting down")]
    ShuttingDown,
}

impl From<rusqlite::Error> for EngineError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => EngineError::DiskFull(e.to_string()),
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
                EngineError::Busy(e.to_string())
            }
            _ => EngineError::Storage(e.to_string()),
        }
    }
}

/// Expiry requested on create: `None` = not given (forks inherit their source's).
pub type ExpirySpec = Option<Expiry>;

/// The storage engine handle; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    writer: writer::WriterHandle,
    reader: reader::ReadPool,
    memtable: Arc<memtable::Memtable>,
    notifier: notifier::Notifier,
    clock: SharedClock,
    tier: Option<Arc<tier::Tier>>,
    background: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Engine {
    /// Opens (creating and migrating if needed) the database and starts the writer thread.
    pub fn open(
        db_path: PathBuf,
        limits: &Limits,
        tier: Option<Arc<tier::Tier>>,
        clock: SharedClock,
    ) -> Result<Engine, EngineError> {
        if let Some(dir) = db_path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| EngineError::Storage(format!("create {}: {e}", dir.display())))?;
            }
        }
        let notifier = notifier::Notifier::default();
        let memtable = Arc::new(memtable::Memtable::default());
        let writer = writer::spawn(
            &db_path,
            limits,
            tier.is_some(),
            clock.clone(),
            notifier.clone(),
            memtable.clone(),
        )?;
        let reader = reader::ReadPool::new(db_path, limits.read_connections);
        if let Some(t) = &tier {
            t.remove_temp_files();
        }
        Ok(Engine {
            inner: Arc::new(Inner {
                writer,
                reader,
                memtable,
                notifier,
                clock,
                tier,
                background: std::sync::Mutex::new(Vec::new()),
            }),
        })
    }

    /// Starts the segmenter and uploader (full mode); they stop when `stop` turns true.
    pub async fn start_background(&self, stop: watch::Receiver<bool>) -> Result<(), EngineError> {
        let Some(t) = self.inner.tier.clone() else {
            return Ok(());
        };
        uploader::warm_cache(self, &t).await?;
        let handles = vec![
            tokio::spawn(segmenter::run(self.clone(), t.clone(), stop.clone())),
            tokio::spawn(uploader::run(self.clone(), t, stop)),
        ];
        self.inner
            .background
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(handles);
        Ok(())
    }

    /// Waits for the background tasks after their stop signal.
    pub async fn join_background(&self) {
        let handles: Vec<_> = std::mem::take(
            &mut *self
                .inner
                .background
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        for h in handles {
            let _ = h.await;
        }
    }

    pub(crate) fn reader(&self) -> &reader::ReadPool {
        &self.inner.reader
    }

    pub(crate) fn writer(&self) -> &writer::WriterHandle {
        &self.inner.writer
    }

    /// Bytes held in the memtable (appends not yet compacted).
    pub(crate) fn memtable_bytes(&self) -> usize {
        self.inner.memtable.size().1
    }

    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// The current incarnation named `name`, in whatever state it is. Its last access
    /// includes renewals the writer has not applied yet.
    pub async fn lookup(&self, name: &str) -> Result<Option<StreamMeta>, EngineError> {
        let mut meta = self
            .inner
            .reader
            .run_inline(|c| db::streams::by_name(c, name))?;
        if let Some(m) = &mut meta {
            if let Some(at) = self.inner.writer.pending_renewal(m.id) {
                m.tail.last_access_ms = m.tail.last_access_ms.max(at);
            }
        }
        Ok(meta)
    }

    /// Number of live (named, not deleted) streams.
    pub async fn count_streams(&self) -> Result<u64, EngineError> {
        self.inner
            .reader
            .run(|c| {
                c.prepare_cached(
                    "SELECT count(*) FROM streams WHERE name IS NOT NULL AND deleted = 0",
                )?
                .query_row([], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
            })
            .await
    }

    /// Live streams in name order.
    pub async fn list(&self, offset: usize, limit: usize) -> Result<Vec<StreamMeta>, EngineError> {
        let now = self.inner.clock.now_ms();
        self.inner
            .reader
            .run(move |c| db::streams::list(c, now, offset, limit))
            .await
    }

    /// Renews a stream's sliding TTL: recorded now, written by the writer within a second
    /// (see `writer::RENEW_EVERY`); never refused, never queued as a request.
    pub fn renew(&self, id: i64) {
        let now = self.inner.clock.now_ms();
        self.inner.writer.renew(id, now);
    }

    /// Reads entries of `meta` from position `from`, bounded by the limits (at least one
    /// entry if any is available), never past `meta.tail.next_pos`, from SQLite and segments.
    pub async fn read(
        &self,
        meta: &StreamMeta,
        from: u64,
        max_bytes: usize,
        max_records: usize,
    ) -> Result<ReadBatch, EngineError> {
        let mut batch = ReadBatch {
            entries: Vec::new(),
            next_pos: from,
            bytes: 0,
        };
        let end = meta.tail.next_pos;
        while batch.next_pos < end
            && batch.entries.len() < max_records
            && (batch.entries.is_empty() || batch.bytes < max_bytes)
        {
            let pos = batch.next_pos;
            let first = batch.entries.is_empty();
            let (left_bytes, left_records) = (
                max_bytes - batch.bytes.min(max_bytes),
                max_records - batch.entries.len(),
            );
            let step = match self.tail_from_memory(meta, pos, left_bytes, left_records, first) {
                Some(rows) => reader::Step::Rows(rows),
                None => self.inner.reader.run_inline(|c| {
                    let mem = &self.inner.memtable;
                    reader::plan(c, mem, meta, pos, left_bytes, left_records, first)
                })?,
            };
            let got: Vec<bytes::Bytes> = match step {
                reader::Step::End => break,
                reader::Step::Rows(rows) => rows,
                reader::Step::Segment {
                    incarnation,
                    seg,
                    to,
                } => {
                    let tier = self.inner.tier.as_ref().ok_or_else(|| {
                        EngineError::Storage("segment read without an object store".into())
                    })?;
                    let limits = tier::PageLimits {
                        max_bytes: left_bytes,
                        max_records: left_records,
                        first,
                    };
                    tier.read(&incarnation, &seg, pos..to, limits)
                        .await?
                        .into_iter()
                        .map(bytes::Bytes::from)
                        .collect()
                }
            };
            if got.is_empty() {
                break;
            }
            for e in got {
                batch.bytes += e.len();
                batch.entries.push(e);
                batch.next_pos += 1;
            }
        }
        Ok(batch)
    }

    /// Entries of the stream's own tail from `pos`, straight from the memtable, when `pos`
    /// is at or above the memtable's base for it (`None` otherwise: ask SQLite). `meta`
    /// comes from a committed snapshot, so everything below its tail that the memtable
    /// holds is committed, and nothing below the base is needed.
    fn tail_from_memory(
        &self,
        meta: &StreamMeta,
        pos: u64,
        max_bytes: usize,
        max_records: usize,
        first: bool,
    ) -> Option<Vec<bytes::Bytes>> {
        if pos < meta.own_start() {
            return None;
        }
        let tails = self.inner.memtable.lock();
        let base = tails.base(meta.id)?;
        (pos >= base).then(|| {
            tails.range(
                meta.id,
                pos,
                meta.tail.next_pos,
                max_bytes,
                max_records,
                first,
            )
        })
    }

    /// Commits announced to readers so far (see [`notifier::Notifier::commits`]).
    pub fn commits(&self) -> u64 {
        self.inner.notifier.commits()
    }

    /// The stream's committed state, updated after every commit that changes it.
    /// Subscribe *before* reading so that no commit is missed.
    pub fn subscribe(&self, id: i64) -> TailReceiver {
        self.inner.notifier.subscribe(id)
    }

    /// Every commit from now on, for consumers that react to all streams.
    pub fn commit_feed(&self) -> CommitFeed {
        self.inner.notifier.feed()
    }

    /// Stops the writer after it finished what is queued.
    pub fn shutdown(&self) {
        self.inner.writer.shutdown();
    }
}
