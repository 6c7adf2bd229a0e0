//! Failures of the storage layer, typed by cause. The service maps each cause to a status
//! code; the text (paths, SQL, object keys) is for the log, never for a response body.

use std::sync::Arc;

use crate::objstore::StoreError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// SQLite failed for a reason other than space or a lock.
    #[error("database error: {0}")]
    Database(Arc<rusqlite::Error>),
    /// SQLite or the append log could not grow its files: the disk (or quota) is full.
    #[error("disk full: {0}")]
    DiskFull(Arc<dyn std::error::Error + Send + Sync>),
    /// Another process holds a lock on the database longer than the busy timeout.
    #[error("database busy: {0}")]
    Busy(Arc<rusqlite::Error>),
    /// A local file operation failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: Arc<std::io::Error>,
    },
    /// Stored data failed a check (a segment's checksum, a catalog without a segment).
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// The object store did not answer usefully after every retry.
    #[error("object store unavailable: {0}")]
    ObjectStore(Arc<StoreError>),
    /// Rebuilding from the object store failed (startup only).
    #[error("bootstrap: {0}")]
    Bootstrap(String),
    /// An internal invariant broke: a bug.
    #[error("internal error: {0}")]
    Internal(String),
    /// The ingest queue is full.
    #[error("ingest queue full")]
    Overloaded,
    /// The read pool's queue is full.
    #[error("read pool busy")]
    ReadBusy,
    #[error("server shutting down")]
    ShuttingDown,
}

impl EngineError {
    /// A local file operation's error: [`DiskFull`](Self::DiskFull) when the disk or
    /// the quota is full, else [`Io`](Self::Io).
    pub fn io(what: impl Into<String>, e: std::io::Error) -> EngineError {
        use std::io::ErrorKind;
        if matches!(e.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded) {
            let what = what.into();
            return EngineError::DiskFull(Arc::new(std::io::Error::new(
                e.kind(),
                format!("{what}: {e}"),
            )));
        }
        EngineError::Io {
            what: what.into(),
            source: Arc::new(e),
        }
    }
}

impl From<rusqlite::Error> for EngineError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => EngineError::DiskFull(Arc::new(e)),
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
                EngineError::Busy(Arc::new(e))
            }
            _ => EngineError::Database(Arc::new(e)),
        }
    }
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        EngineError::ObjectStore(Arc::new(e))
    }
}
