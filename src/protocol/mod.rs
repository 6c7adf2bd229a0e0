//! Pure protocol vocabulary: no I/O, no async. Everything here is deterministic and
//! unit-tested; the service and HTTP layers build on it.

pub mod content_type;
pub mod cursor;
pub mod expiry;
pub mod headers;
pub mod introspection;
pub mod json;
pub mod name;
pub mod offset;
pub mod route;
pub mod sse;
pub mod touch;
