//! Summaries of fixed chunks of a stream's positions, kept in memory: what makes a
//! repeated `_aggregate` fast over records that no segment summary covers (the SQLite
//! tail of full mode, and the whole stream in local mode).
//!
//! A chunk is [`CHUNK`] consecutive positions starting at a multiple of it. The first
//! `_aggregate` without a query that reads a whole chunk (every position below the tail
//! when the request arrived, none removed by retention) builds the chunk's buckets of the
//! requested rollup while it scans, and keeps them here under the stream incarnation, the
//! search configuration and the rollup. Committed entries never change, so a kept chunk
//! stays true; retention only removes whole prefixes, and chunks below the retention point
//! are not used. Later requests use a chunk where its summary answers exactly (see
//! `search::summary`), and scan it otherwise. Least recently used chunks are dropped
//! above [`CACHE_BYTES`].

use std::sync::Arc;

use crate::engine::keyindex::cache::ByteLru;
use crate::search::summary::SegmentSummary;

/// Positions per chunk.
pub(crate) const CHUNK: u64 = 1024;
/// Memory for chunk summaries.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

pub(crate) struct ChunkSummaries {
    cache: ByteLru<SegmentSummary>,
}

impl Default for ChunkSummaries {
    fn default() -> Self {
        ChunkSummaries {
            cache: ByteLru::new(CACHE_BYTES),
        }
    }
}

/// What a chunk summary is kept under.
pub(crate) struct ChunkKey<'a> {
    pub incarnation: &'a str,
    pub search_hash: u64,
    pub rollup: &'a str,
}

impl ChunkKey<'_> {
    fn at(&self, chunk: u64) -> String {
        format!(
            "{}/{:016x}/{}/{chunk}",
            self.incarnation, self.search_hash, self.rollup
        )
    }
}

impl ChunkSummaries {
    pub fn get(&self, key: &ChunkKey<'_>, chunk: u64) -> Option<Arc<SegmentSummary>> {
        self.cache.get(&key.at(chunk))
    }

    pub fn put(&self, key: &ChunkKey<'_>, chunk: u64, summary: SegmentSummary) {
        let size = summary.memory_bytes() as u64;
        self.cache.put(key.at(chunk), Arc::new(summary), size);
    }
}
