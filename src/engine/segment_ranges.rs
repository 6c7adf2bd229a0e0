//! The position ranges of a stream's segment files, for callers that plan reads by
//! segment (search scans count them; a search index would narrow them).

use super::{db, Engine, EngineError, StreamMeta};

impl Engine {
    /// `(start, end)` of each of the incarnation's own segments, in order (end exclusive).
    pub async fn segment_ranges(&self, meta: &StreamMeta) -> Result<Vec<(u64, u64)>, EngineError> {
        let id = meta.id;
        let segs = self
            .reader()
            .run(move |c| db::segments::of_stream(c, id))
            .await?;
        Ok(segs.iter().map(|s| (s.start_pos, s.end_pos)).collect())
    }
}
