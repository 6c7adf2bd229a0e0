//! `filter=` on reads: the compiled expression as the engine's per-entry test.

use std::sync::Arc;

use crate::search::prefilter::Prefilter;

use serde_json::Value;

use super::super::{bad, ServiceResult, StreamSettings};
use crate::engine::EntryFilter;
use crate::search::config::SearchConfig;
use crate::search::eval::{matches_filter, Document};
use crate::search::query::compile_filter;

/// The original's cap on the entry bytes one filtered read tests (100 MiB).
pub const SCAN_LIMIT_BYTES: usize = 100 * 1024 * 1024;

/// The search configuration of a stream (`None` when it has none). A stored
/// configuration that no longer parses is treated as none (it was validated on write).
pub(crate) fn search_config(settings: &StreamSettings) -> Option<SearchConfig> {
    let raw = settings.registry.search()?;
    match SearchConfig::parse_optional(raw) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "stored search configuration does not parse");
            None
        }
    }
}

/// Compiles `filter=` for a stream into the test the engine applies to each entry: the
/// entry parsed as JSON and its search fields read through the binding of its schema
/// version. An entry that is not JSON matches nothing.
pub(crate) fn entry_filter(
    settings: Arc<StreamSettings>,
    input: &str,
) -> ServiceResult<EntryFilter> {
    let config = search_config(&settings);
    let query = compile_filter(config.as_ref(), input).map_err(bad)?;
    let mut fields = Vec::new();
    query.fields(&mut fields);
    // Entries whose text cannot hold the filter's keywords are rejected unparsed.
    let prefilter = config
        .as_ref()
        .map_or(Prefilter::All, |c| Prefilter::of(&query, c));
    let config = Arc::new(config);
    let test = move |pos: u64, data: &[u8]| -> bool {
        let Some(cfg) = config.as_ref() else {
            return false;
        };
        if !prefilter.may_match(data) {
            return false;
        }
        let Ok(record) = serde_json::from_slice::<Value>(data) else {
            return false;
        };
        let version = u64::from(settings.registry.version_at(pos));
        matches_filter(&query, &Document::new(cfg, version, &record, Some(&fields)))
    };
    Ok(EntryFilter {
        test: Arc::new(test),
        scan_limit_bytes: SCAN_LIMIT_BYTES,
    })
}
