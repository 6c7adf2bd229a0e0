//! The engine's write operations on streams, one module each. Every module defines its
//! request and error types, the function the writer runs inside the batch transaction
//! (see `writer::Batch`), and the `Engine` method that submits it. A new feature adds its
//! own module like these; the writer does not change.

pub mod append;
pub mod create;
pub mod gc;
pub mod key_index;
pub mod profile;
pub mod remove;
pub mod retention;
pub mod schema;
pub mod subscriptions;
pub mod templates;
pub mod tiering;

/// Implements the writer's error plumbing for an operation's error enum whose
/// `Engine(EngineError)` variant carries storage failures.
macro_rules! write_error {
    ($t:ty) => {
        impl From<rusqlite::Error> for $t {
            fn from(e: rusqlite::Error) -> Self {
                Self::Engine(e.into())
            }
        }
        impl $crate::engine::writer::WriteError for $t {
            fn engine(&self) -> Option<&$crate::engine::EngineError> {
                match self {
                    Self::Engine(e) => Some(e),
                    _ => None,
                }
            }
        }
    };
}
pub(crate) use write_error;
