//! The schema registry that installing a profile puts on a stream.
//!
//! In the original, `POST /_profile` with `metrics`, `evlog` or `otel-traces` replaces
//! the stream's registry with the profile's own (`persistProfileResult` →
//! `registry.replaceRegistryResult(stream, build…Registry(stream))`): schema version 1
//! (the profile's canonical record) in force from offset 0, no lenses, the profile's
//! search configuration, and for metrics the routing key `/seriesKey`. The internal
//! metrics stream ([`INTERNAL_METRICS_STREAM`]) gets the metrics schema alone.
//!
//! The per-profile submodules transcribe the original's object literals key for key
//! (`literal`). What the original stores and serves is not that literal but its
//! re-parse, `parseRegistryResult(stream, JSON.stringify(literal))`, which rebuilds the
//! `search` section in the parser's order: `defaultFields` before `aliases`, field flags
//! in declaration order (so `normalizer` right after `bindings`), and every rollup with
//! an explicit `timestampField`. `stored_form` applies that step (the search parser's
//! normalised form, [`crate::search::config::SearchConfig::to_normalized_json`]), and
//! `build` hands the result to our strict loader, [`Registry::parse`], for
//! [`Profile::default_registry`]. The JSON under `testdata/registries/` was produced by
//! the original (0.1.11) and is what the tests compare with, key order included.

mod evlog;
mod metrics;
mod otel_traces;

use serde_json::Value;

use super::Profile;
use crate::schema::Registry;
use crate::search::config::{self, SearchConfig};

/// The stream the server appends its own metrics to (the original's
/// `INTERNAL_METRICS_STREAM`); installing `metrics` on it gives the registry without
/// routing key and search.
pub const INTERNAL_METRICS_STREAM: &str = "__stream_metrics__";

/// The registry object the original's builder returns for `profile` on `stream`
/// (before it is re-parsed), or `None` for the kinds that install no registry.
pub(crate) fn literal(profile: &Profile, stream: &str) -> Option<Value> {
    match profile {
        Profile::Generic | Profile::StateProtocol { .. } => None,
        Profile::Metrics if stream == INTERNAL_METRICS_STREAM => {
            Some(metrics::internal_registry(stream))
        }
        Profile::Metrics => Some(metrics::default_registry(stream)),
        Profile::Evlog(_) => Some(evlog::default_registry(stream)),
        Profile::OtelTraces(_) => Some(otel_traces::default_registry(stream)),
    }
}

/// A builder's registry as the original stores it: `search` validated and re-serialised
/// in the parser's form. The other sections already have the parser's key order
/// (`schemas` and `lenses` are kept verbatim by both loaders).
pub(crate) fn stored_form(mut registry: Value) -> Result<Value, String> {
    if let Some(search) = registry.get_mut("search") {
        config::validate(search)?;
        *search = SearchConfig::parse(search)?.to_normalized_json();
    }
    Ok(registry)
}

/// The registry installing `profile` on `stream` puts in place, loaded by
/// [`Registry::parse`]; `None` for the kinds that install none.
pub(crate) fn build(profile: &Profile, stream: &str) -> Option<Result<Registry, String>> {
    let literal = literal(profile, stream)?;
    Some(stored_form(literal).and_then(|stored| {
        let bytes = serde_json::to_vec(&stored).map_err(|e| e.to_string())?;
        Registry::parse(&bytes)
    }))
}

#[cfg(test)]
mod tests;
