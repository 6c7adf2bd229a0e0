//! Collecting state that nobody has used for a long time: idempotent-producer rows not
//! updated for `DS_PRODUCER_STATE_TTL_MS`.
//!
//! A producer whose state was collected is unknown again, exactly like one that never
//! wrote: its next append must start at sequence 0 (any other sequence is refused with
//! `producer_seq_invalid`), and a retry of a write older than the TTL is not recognised as
//! a duplicate. The stream's data, and a close's producer triple (kept on the stream row
//! for idempotent close retries), are not touched.

use crate::engine::db::producers;
use crate::engine::writer::{Batch, Submit};
use crate::engine::{Engine, EngineError};

impl Engine {
    /// Deletes the state of up to `limit` producers that no append has updated for
    /// `idle_ms` (oldest first); returns how many.
    pub async fn collect_producers(
        &self,
        idle_ms: u64,
        limit: usize,
    ) -> Result<usize, EngineError> {
        self.writer()
            .call(Submit::internal(), move |b| collect(b, idle_ms, limit))
            .await
    }
}

fn collect(b: &mut Batch<'_>, idle_ms: u64, limit: usize) -> Result<usize, EngineError> {
    let idle_ms = i64::try_from(idle_ms).unwrap_or(i64::MAX);
    let before = b.now.saturating_sub(idle_ms);
    let c = b.conn()?;
    let idle = producers::idle(c, before, limit)?;
    for (stream_id, producer) in &idle {
        producers::delete(c, *stream_id, producer)?;
    }
    Ok(idle.len())
}
