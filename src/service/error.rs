//! The errors every service operation can return. `http::error` maps each variant to a
//! status code and JSON body, exhaustively.

use crate::engine::{AppendError, CreateError, DeleteError, EngineError};
use crate::protocol::offset::Offset;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("stream was deleted")]
    Gone,
    #[error("offset is below the retained range of this stream")]
    Trimmed,
    #[error("{0}")]
    Conflict(String),
    #[error("stream is closed")]
    Closed { next_offset: Offset },
    #[error("producer epoch is stale")]
    StaleEpoch { current: u64 },
    #[error("producer sequence gap")]
    ProducerGap { expected: u64, received: u64 },
    #[error("Stream-Seq must be greater than the last one")]
    StreamSeq { last: String, received: String },
    #[error("ingest queue full")]
    Overloaded,
    #[error("too many live readers; retry later")]
    TooManyReaders,
    #[error("the disk is full; the write was not stored")]
    DiskFull,
    #[error("{0}")]
    Unavailable(String),

    #[error("server shutting down")]
    ShuttingDown,
    #[error("{0}")]
    Internal(String),
}

pub type ServiceResult<T> = Result<T, ServiceError>;

impl From<EngineError> for ServiceError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Storage(m) => {
                tracing::error!(error = %m, "storage error");
                ServiceError::Internal(format!("storage error: {m}"))
            }
            EngineError::DiskFull(m) => {
                tracing::error!(error = %m, "disk full");
                ServiceError::DiskFull
            }
            EngineError::Busy(m) => {
                tracing::warn!(error = %m, "database busy");
                ServiceError::Unavailable("the database is locked by another process".into())
            }
            EngineError::ObjectStore(m) => {
                tracing::warn!(error = %m, "object store read failed");
                ServiceError::Unavailable(format!("object store unavailable: {m}"))
            }
            EngineError::Overloaded => ServiceError::Overloaded,
            EngineError::ShuttingDown => ServiceError::ShuttingDown,
        }
    }
}

impl From<CreateError> for ServiceError {
    fn from(e: CreateError) -> Self {
        match e {
            CreateError::Engine(e) => e.into(),
            CreateError::ConfigMismatch => ServiceError::Conflict("stream config mismatch".into()),
            CreateError::SoftDeleted => ServiceError::Conflict(
                "stream was deleted and is still referenced by forks; its name cannot be reused yet"
                    .into(),
            ),
            CreateError::SourceNotFound => ServiceError::NotFound("fork source stream not found".into()),
            CreateError::SourceDeleted => ServiceError::Conflict("fork source stream was deleted".into()),
            CreateError::SourceContentType => {
                ServiceError::Conflict("content type differs from the fork source".into())
            }
            CreateError::BadFork(m) | CreateError::BadBody(m) => ServiceError::BadRequest(m),
        }
    }
}

impl From<AppendError> for ServiceError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Engine(e) => e.into(),
            AppendError::NotFound => ServiceError::NotFound("stream not found".into()),
            AppendError::Gone => ServiceError::Gone,
            AppendError::Closed { next_pos } => ServiceError::Closed {
                next_offset: Offset::at(next_pos),
            },
            AppendError::ContentType => ServiceError::Conflict("content-type mismatch".into()),
            AppendError::StaleEpoch { current } => ServiceError::StaleEpoch { current },
            AppendError::EpochSeq => ServiceError::BadRequest(
                "invalid producer sequence: a new producer or epoch must start at Producer-Seq 0"
                    .into(),
            ),
            AppendError::Gap { expected, received } => {
                ServiceError::ProducerGap { expected, received }
            }
            AppendError::StreamSeq { last, received } => ServiceError::StreamSeq {
                last: String::from_utf8_lossy(&last).into_owned(),
                received: String::from_utf8_lossy(&received).into_owned(),
            },
            AppendError::BadBody(m) => ServiceError::BadRequest(m),
        }
    }
}

impl From<DeleteError> for ServiceError {
    fn from(e: DeleteError) -> Self {
        match e {
            DeleteError::Engine(e) => e.into(),
            DeleteError::NotFound => ServiceError::NotFound("stream not found".into()),
            DeleteError::Gone => ServiceError::Gone,
        }
    }
}
