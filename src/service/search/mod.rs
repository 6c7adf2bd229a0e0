//! Search over a stream's records: `filter=` on reads, `_search` and `_aggregate`,
//! answered by scanning the stream (segments, SQLite and the memtable alike, so the
//! newest appends are always included). [`scan::Candidates`] is where an index would
//! narrow the scan.

mod aggregate;
mod chunks;
mod filter;
mod run;
mod scan;

pub(crate) use chunks::ChunkSummaries;
pub(crate) use filter::{entry_filter, search_config};
pub use run::{SearchInput, SearchOutcome, TIMEOUT_MS};
