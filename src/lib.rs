//! Prisma Streams: a Durable Streams HTTP server in one binary.
//!
//! Layers (data flows one way): `http` → `service` → `engine`. `protocol`, `config`,
//! `clock` and `telemetry` are leaves any layer may use.

pub mod app;
pub mod clock;
pub mod cli;
pub mod config;
pub mod engine;
pub mod protocol;
pub mod http;
pub mod service;
pub mod telemetry;
