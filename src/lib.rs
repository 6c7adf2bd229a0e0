//! Prisma Streams: a Durable Streams HTTP server in one binary.
//!
//! Layers (data flows one way): `http` → `service` → `engine`. `protocol`, `config`,
//! `lock`, `clock`, `health`, `telemetry` and the pure `lens`, `schema`, `profiles`, `touch`,
//! `subscriptions` and `search` modules are leaves any layer may use. `alloc` is the
//! binary's global allocator, installed by `main.rs` alone.

pub mod alloc;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod engine;
pub mod health;
pub mod http;
pub mod lens;
pub mod local;
pub mod lock;
pub mod objstore;
pub mod profiles;
pub mod protocol;
pub mod schema;
pub mod search;
pub mod service;
pub mod subscriptions;
pub mod telemetry;
pub mod touch;
pub mod update;
