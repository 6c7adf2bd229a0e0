//! Persistence: the single SQLite writer thread, the read pool, and the notifier that
//! wakes live readers after a commit.
//!
//! Concurrency model: every mutation is a [`writer::Command`] sent to one dedicated thread
//! that owns the read-write connection. It drains whatever is queued into one transaction,
//! commits, then answers each request and notifies readers, so nothing is visible or
//! acknowledged before it is durable. Reads use a small pool of read-only connections on
//! tokio's blocking threads; WAL mode lets them run beside the writer.

pub mod bootstrap;
pub mod db;
pub mod manifest;
pub(crate) mod memtable;
mod notifier;
mod reader;
pub mod segment;
mod segmenter;
pub mod tier;
mod uploader;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{oneshot, watch};

use crate::clock::SharedClock;
use crate::config::Limits;
use crate::protocol::expiry::Expiry;

pub use reader::ReadBatch;
pub use writer::QueueFull;

/// A stream incarnation's metadata as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamMeta {
    pub id: i64,
    /// `None` once the incarnation left the namespace but is kept for its forks.
    pub name: Option<String>,
    pub content_type: String,
    pub created_at_ms: i64,
    pub expiry: Expiry,
    pub last_access_ms: i64,
    /// Tail position: entries ever appended, inherited ones included.
    pub next_pos: u64,
    pub closed: bool,
    /// `(producer id, epoch, seq)` of the append that closed the stream.
    pub closed_by: Option<(String, u64, u64)>,
    pub stream_seq: Option<Vec<u8>>,
    pub fork: Option<ForkInfo>,
    pub ref_count: i64,
    pub deleted: bool,
    /// Random token naming this incarnation's objects.
    pub incarnation: String,
    /// Own entries below this position are in segment files.
    pub sealed_pos: u64,
    /// Own entries below this position are in uploaded segments covered by a published
    /// manifest, and no longer in SQLite.
    pub uploaded_pos: u64,
    /// Payload bytes of unsealed entries.
    pub pending_bytes: u64,
    pub last_cut_ms: i64,
    pub manifest_generation: u64,
    pub manifest_etag: Option<String>,
    pub manifest_dirty: bool,
    /// Internal stream kept in SQLite only (never segmented or uploaded).
    pub local_only: bool,
    /// Own entries below this position were removed by retention.
    pub trimmed_pos: u64,
}

impl StreamMeta {
    /// First position of this incarnation's own entries.
    pub fn own_start(&self) -> u64 {
        self.fork.map_or(0, |f| f.pos)
    }

    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expiry.is_expired(self.last_access_ms, now_ms)
    }
}

/// Where a fork's inherited prefix comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForkInfo {
    pub source_id: i64,
    /// Positions below this are read from the source.
    pub pos: u64,
    /// The sub-offset the fork was created with (kept for idempotent re-creates).
    pub sub_offset: u64,
}

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

/// A create (PUT) request, validated by the service.
#[derive(Debug, Clone)]
pub struct CreateCmd {
    pub name: String,
    /// `None` = not given: `application/octet-stream`, or the fork source's type.
    pub content_type: Option<String>,
    pub expiry: ExpirySpec,
    pub closed: bool,
    pub fork: Option<ForkSpec>,
    /// The initial body, not yet split (its framing depends on the final content type).
    pub body: Vec<u8>,
    /// The server's own streams: kept in SQLite only, with retention (never set from HTTP).
    pub local_only: bool,
}

/// Fork parameters of a create.
#[derive(Debug, Clone)]
pub struct ForkSpec {
    pub source: String,
    /// `None` = the source's tail.
    pub pos: Option<u64>,
    pub sub_offset: u64,
    /// For a byte sub-offset into a raw stream: the source incarnation and its entry at
    /// `pos`, read beforehand (it may live in the object store, which the writer never
    /// calls). The writer checks that the source is still that incarnation.
    pub entry: Option<(i64, Vec<u8>)>,
}

#[derive(Debug)]
pub enum CreateOutcome {
    Created(StreamMeta),
    Exists(StreamMeta),
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("stream already exists with a different configuration")]
    ConfigMismatch,
    #[error("stream was deleted and is still referenced by forks")]
    SoftDeleted,
    #[error("fork source not found")]
    SourceNotFound,
    #[error("fork source was deleted")]
    SourceDeleted,
    #[error("content type differs from the fork source")]
    SourceContentType,
    #[error("{0}")]
    BadFork(String),
    #[error("{0}")]
    BadBody(String),
}

/// An append (POST) request, validated by the service. `entries` is already framed for
/// the stream's content type (JSON messages split), empty for a close-only request.
#[derive(Debug, Clone)]
pub struct AppendCmd {
    pub name: String,
    pub content_type: Option<String>,
    pub entries: Vec<Vec<u8>>,
    pub close: bool,
    pub producer: Option<crate::protocol::headers::Producer>,
    pub stream_seq: Option<Vec<u8>>,
    /// Set when the body could not be framed (invalid JSON); reported only after the
    /// closed and content-type checks, so conflicts are answered in the protocol's order.
    pub framing_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Tail after the append.
    pub next_pos: u64,
    pub closed: bool,
    /// Entries written (0 for duplicates and close-only requests).
    pub written: usize,
    /// Producer state to echo: (epoch, seq).
    pub producer: Option<(u64, u64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("stream not found")]
    NotFound,
    #[error("stream was deleted")]
    Gone,
    #[error("stream is closed")]
    Closed { next_pos: u64 },
    #[error("content type does not match the stream")]
    ContentType,
    #[error("stale producer epoch")]
    StaleEpoch { current: u64 },
    #[error("a new producer or epoch must start at sequence 0")]
    EpochSeq,
    #[error("producer sequence gap")]
    Gap { expected: u64, received: u64 },
    #[error("Stream-Seq must increase")]
    StreamSeq { last: Vec<u8>, received: Vec<u8> },
    #[error("{0}")]
    BadBody(String),
}

#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("stream not found")]
    NotFound,
    #[error("stream was deleted")]
    Gone,
}

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

    /// Sends tiering bookkeeping to the writer; `Ok(false)` if it no longer applied.
    pub(crate) async fn tier_cmd(&self, cmd: writer::TierCmd) -> Result<bool, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .writer
            .submit_internal(writer::Command::Tier(cmd, tx))?;
        rx.await.map_err(|_| EngineError::ShuttingDown)?
    }

    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// The current incarnation named `name`, in whatever state it is.
    pub async fn lookup(&self, name: &str) -> Result<Option<StreamMeta>, EngineError> {
        self.inner
            .reader
            .run_inline(|c| db::streams::by_name(c, name))
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

    pub async fn create(&self, cmd: CreateCmd) -> Result<CreateOutcome, CreateError> {
        let bytes = cmd.body.len();
        let (tx, rx) = oneshot::channel();
        self.inner
            .writer
            .submit(writer::Command::Create(cmd, tx), bytes)?;
        rx.await.map_err(|_| EngineError::ShuttingDown)?
    }

    pub async fn append(&self, cmd: AppendCmd) -> Result<AppendOutcome, AppendError> {
        // Compaction keeps failing (see the writer): refuse rather than grow without bound.
        if self.inner.memtable.size().1 > memtable::HARD_MAX_BYTES {
            return Err(EngineError::Overloaded.into());
        }
        let bytes = cmd.entries.iter().map(Vec::len).sum();
        let (tx, rx) = oneshot::channel();
        self.inner
            .writer
            .submit(writer::Command::Append(cmd, tx), bytes)?;
        rx.await.map_err(|_| EngineError::ShuttingDown)?
    }

    pub async fn delete(&self, name: &str) -> Result<(), DeleteError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .writer
            .submit(writer::Command::Delete(name.to_string(), tx), 0)?;
        rx.await.map_err(|_| EngineError::ShuttingDown)?
    }

    /// Keeps only the newest `keep` entries of an internal stream.
    pub async fn retain(&self, name: &str, keep: u64) -> Result<u64, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .writer
            .submit_internal(writer::Command::Retain(name.to_string(), keep, tx))?;
        rx.await
            .map_err(|_| EngineError::ShuttingDown)?
            .map(|n| n as u64)
    }

    /// Renews a stream's sliding TTL (fire and forget; coalesced into the next commit).
    pub fn touch(&self, id: i64) {
        let now = self.inner.clock.now_ms();
        self.inner.writer.touch(id, now);
    }

    /// Reclaims up to `limit` expired streams; returns how many.
    pub async fn sweep_expired(&self, limit: usize) -> Result<usize, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .writer
            .submit(writer::Command::Sweep(limit, tx), 0)?;
        rx.await.map_err(|_| EngineError::ShuttingDown)?
    }

    /// Reads entries of `meta` from position `from`, bounded by the limits (at least one
    /// entry if any is available), never past `meta.next_pos`, from SQLite and segments.
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
        while batch.next_pos < meta.next_pos
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
                Some(rows) => reader::Step::Rows(rows.iter().map(|b| b.to_vec()).collect()),
                None => self.inner.reader.run_inline(|c| {
                    let mem = &self.inner.memtable;
                    reader::plan(c, mem, meta, pos, left_bytes, left_records, first)
                })?,
            };
            let got = match step {
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
                    tier.read(&incarnation, &seg, pos..to, limits).await?
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
    /// comes from a committed snapshot, so everything below its `next_pos` that the
    /// memtable holds is committed, and nothing below the base is needed.
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
        (pos >= base)
            .then(|| tails.range(meta.id, pos, meta.next_pos, max_bytes, max_records, first))
    }

    /// Commits announced to readers so far (see [`notifier::Notifier::commits`]).
    pub fn commits(&self) -> u64 {
        self.inner.notifier.commits()
    }

    /// A receiver that changes whenever the stream's tail or state changes after a commit.
    /// Subscribe *before* reading so that no commit is missed.
    pub fn subscribe(&self, id: i64) -> watch::Receiver<u64> {
        self.inner.notifier.subscribe(id)
    }

    /// Stops the writer after it finished what is queued.
    pub fn shutdown(&self) {
        self.inner.writer.shutdown();
    }
}
