//! Persistence: the single SQLite writer thread, the read pool, and the notifier that
//! wakes live readers after a commit.
//!
//! Concurrency model: every mutation is a [`writer::Command`] sent to one dedicated thread
//! that owns the read-write connection. It drains whatever is queued into one transaction,
//! commits, then answers each request and notifies readers, so nothing is visible or
//! acknowledged before it is durable. Reads use a small pool of read-only connections on
//! tokio's blocking threads; WAL mode lets them run beside the writer.

pub mod db;
mod notifier;
mod reader;
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
}

impl StreamMeta {
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
    #[error("ingest queue full")]
    Overloaded,
    #[error("server shutting down")]
    ShuttingDown,
}

impl From<rusqlite::Error> for EngineError {
    fn from(e: rusqlite::Error) -> Self {
        EngineError::Storage(e.to_string())
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
}

/// Fork parameters of a create.
#[derive(Debug, Clone)]
pub struct ForkSpec {
    pub source: String,
    /// `None` = the source's tail.
    pub pos: Option<u64>,
    pub sub_offset: u64,
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
    notifier: notifier::Notifier,
    clock: SharedClock,
}

impl Engine {
    /// Opens (creating and migrating if needed) the database and starts the writer thread.
    pub fn open(
        db_path: PathBuf,
        limits: &Limits,
        clock: SharedClock,
    ) -> Result<Engine, EngineError> {
        if let Some(dir) = db_path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| EngineError::Storage(format!("create {}: {e}", dir.display())))?;
            }
        }
        let notifier = notifier::Notifier::default();
        let writer = writer::spawn(&db_path, limits, clock.clone(), notifier.clone())?;
        let reader = reader::ReadPool::new(db_path, limits.read_connections);
        Ok(Engine {
            inner: Arc::new(Inner {
                writer,
                reader,
                notifier,
                clock,
            }),
        })
    }

    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// The current incarnation named `name`, in whatever state it is.
    pub async fn lookup(&self, name: &str) -> Result<Option<StreamMeta>, EngineError> {
        let name = name.to_string();
        self.inner
            .reader
            .run(move |c| db::streams::by_name(c, &name))
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

    /// Reads entries of `meta` from position `from`, bounded by the limits, never past
    /// `meta.next_pos`.
    pub async fn read(
        &self,
        meta: &StreamMeta,
        from: u64,
        max_bytes: usize,
        max_records: usize,
    ) -> Result<ReadBatch, EngineError> {
        let meta = meta.clone();
        self.inner
            .reader
            .run(move |c| reader::read(c, &meta, from, max_bytes, max_records))
            .await
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
