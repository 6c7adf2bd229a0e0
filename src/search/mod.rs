//! Search: the schema's `search` configuration, and the query language (`filter=`,
//! `_search`, `_aggregate`) evaluated against records.

pub mod aggregate;
pub mod config;
pub mod eval;
pub mod prefilter;
pub mod query;
#[cfg(test)]
mod query_tests;
pub mod request;
pub mod summary;
pub mod terms;
