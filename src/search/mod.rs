//! Search: schema-level configuration now; queries come later.

pub mod config;
