//! The integration tests, one module per area, built as one test binary: one link instead
//! of one per file, and one executable on disk instead of two dozen (each carries the whole
//! server). Most modules run the real `prisma-streams` binary through `common::Server`;
//! a few run the engine in process with an injected clock or object store.
//!
//! Run one area with `cargo test --test integration crash::`.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)] // test code: real time, unwrap on failure

mod common;

mod auth;
mod cli;
mod crash;
mod data_dir;
mod disk_faults;
mod errors;
mod expiry;
mod health;
mod hostile;
mod http_api;
mod introspection;
mod key_index;
mod local_mode;
mod objstore_faults;
mod objstore_slow;
mod observability;
mod producer_state;
mod profiles_schemas;
mod routing_keys;
mod s3_outage;
mod search;
mod sse_timing;
mod subscriptions;
mod tiering;
mod touch;
mod ts_takeover;
