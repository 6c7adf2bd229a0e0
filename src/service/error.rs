//! The errors every service operation can return, one variant per cause. `http::error`
//! maps each variant to a status code, a stable machine code and a JSON body,
//! exhaustively. Storage failures are logged here, with their detail, inside the request's
//! span (which carries its request id); the variants they become carry no internal text.

use crate::engine::{
    AppendError, CreateError, DeleteError, EngineError, ProfileError, SchemaUpdateError,
};
use crate::protocol::offset::Offset;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("fork source stream not found")]
    ForkSourceNotFound,
    #[error("stream was deleted")]
    Gone,
    #[error("offset is below the retained range of this stream")]
    Trimmed,
    #[error("stream already exists with a different configuration")]
    StreamExists,
    #[error("stream was deleted and is still referenced by forks; its name cannot be reused yet")]
    StreamSoftDeleted,
    #[error("fork source stream was deleted")]
    ForkSourceDeleted,
    #[error("content type differs from the fork source")]
    ForkContentType,
    #[error("content-type mismatch")]
    ContentTypeMismatch,
    #[error("stream is closed")]
    Closed { next_offset: Offset },
    #[error("producer epoch is stale")]
    StaleEpoch { current: u64 },
    #[error("invalid producer sequence: a new producer or epoch must start at Producer-Seq 0")]
    ProducerSeqStart,
    #[error("producer sequence gap")]
    ProducerGap { expected: u64, received: u64 },
    #[error("Stream-Seq must be greater than the last one")]
    StreamSeq { last: String, received: String },
    #[error("ingest queue full")]
    Overloaded,
    #[error("too many live readers; retry later")]
    TooManyReaders,
    #[error("too many reads in progress; retry later")]
    ReadBusy,
    #[error("the disk is full; the write was not stored")]
    DiskFull,
    #[error("the database is locked by another process; retry later")]
    DatabaseBusy,
    #[error("the object store is unavailable; retry later")]
    ObjectStoreUnavailable,
    #[error("server shutting down")]
    ShuttingDown,
    /// A failure the client cannot act on; its detail is in the log.
    #[error("internal error")]
    Internal,
    #[error("{0}")]
    NotImplemented(&'static str),
    /// A configuration change that does not continue the current one (a schema lens
    /// whose versions do not follow the registry's).
    #[error("{0}")]
    Conflict(String),
}

pub type ServiceResult<T> = Result<T, ServiceError>;

impl From<EngineError> for ServiceError {
    fn from(e: EngineError) -> Self {
        let id = crate::telemetry::request_id::current();
        let id = id.as_deref().unwrap_or("-");
        match e {
            EngineError::DiskFull(_) => {
                tracing::error!(request_id = id, error = %e, "disk full");
                ServiceError::DiskFull
            }
            EngineError::Busy(_) => {
                tracing::warn!(request_id = id, error = %e, "database busy");
                ServiceError::DatabaseBusy
            }
            EngineError::ObjectStore(_) => {
                tracing::warn!(request_id = id, error = %e, "object store read failed");
                ServiceError::ObjectStoreUnavailable
            }
            EngineError::Database(_)
            | EngineError::Io { .. }
            | EngineError::Corrupt(_)
            | EngineError::Bootstrap(_)
            | EngineError::Internal(_) => {
                tracing::error!(request_id = id, error = %e, "request failed");
                ServiceError::Internal
            }
            EngineError::Overloaded => ServiceError::Overloaded,
            EngineError::ReadBusy => ServiceError::ReadBusy,
            EngineError::ShuttingDown => ServiceError::ShuttingDown,
        }
    }
}

impl From<CreateError> for ServiceError {
    fn from(e: CreateError) -> Self {
        match e {
            CreateError::Engine(e) => e.into(),
            CreateError::ConfigMismatch => ServiceError::StreamExists,
            CreateError::SoftDeleted => ServiceError::StreamSoftDeleted,
            CreateError::SourceNotFound => ServiceError::ForkSourceNotFound,
            CreateError::SourceDeleted => ServiceError::ForkSourceDeleted,
            CreateError::SourceContentType => ServiceError::ForkContentType,
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
            AppendError::ContentType => ServiceError::ContentTypeMismatch,
            AppendError::StaleEpoch { current } => ServiceError::StaleEpoch { current },
            AppendError::EpochSeq => ServiceError::ProducerSeqStart,
            AppendError::Gap { expected, received } => {
                ServiceError::ProducerGap { expected, received }
            }
            AppendError::StreamSeq { last, received } => ServiceError::StreamSeq {
                last: String::from_utf8_lossy(&last).into_owned(),
                received: String::from_utf8_lossy(&received).into_owned(),
            },
            AppendError::BadBody(m) => ServiceError::BadRequest(m),
            // The service retries a few times; a stream reconfigured that often is busy.
            AppendError::ConfigChanged => ServiceError::Overloaded,
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

impl From<ProfileError> for ServiceError {
    fn from(e: ProfileError) -> Self {
        match e {
            ProfileError::Engine(e) => e.into(),
            ProfileError::NotFound => ServiceError::NotFound("stream not found".into()),
            ProfileError::Refused(m) => ServiceError::BadRequest(m),
        }
    }
}

impl From<SchemaUpdateError> for ServiceError {
    fn from(e: SchemaUpdateError) -> Self {
        use crate::schema::SchemaError;
        match e {
            SchemaUpdateError::Engine(e) => e.into(),
            SchemaUpdateError::NotFound => ServiceError::NotFound("stream not found".into()),
            SchemaUpdateError::Refused(SchemaError::BadRequest(m)) => ServiceError::BadRequest(m),
            SchemaUpdateError::Refused(SchemaError::Conflict(m)) => ServiceError::Conflict(m),
        }
    }
}
