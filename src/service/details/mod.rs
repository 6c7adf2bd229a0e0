//! `GET /v1/stream/{name}/_details` and `/_index_status`: a snapshot of one stream
//! (summary, profile, schema registry, index status, storage, object-store requests; or
//! the index status alone) with a weak ETag, answered at once or as a conditional
//! long-poll.
//!
//! The ETag hashes the body except `storage.local_storage.sqlite_shared_total_bytes`:
//! that figure is the size of the database file every stream shares, so it moves with
//! any write to any stream; hashing it would wake a long-poll on unrelated activity.
//!
//! Long-poll: when `If-None-Match` names the current ETag, the request waits until the
//! snapshot's ETag differs (then 200 with the new snapshot) or the wait ends (304). It
//! wakes on the stream's committed state (appends, closes, deletion, through
//! [`crate::engine::Engine::subscribe`]) and every [`POLL_EVERY`] for what commits do
//! not announce (segment cuts and uploads, profile and schema changes, TTL renewals).
//! A waiting request holds one of the `DS_MAX_LIVE_READERS` slots.

mod body;

use std::time::Duration;

use serde_json::Value;

use super::{ServiceError, ServiceResult, StreamService};
use crate::engine::{StreamMeta, TailReceiver};
use crate::protocol::introspection::{none_match_hits, weak_etag, DetailsWait};

pub use body::Facts;

/// How often a waiting details long-poll looks for changes commits do not announce.
pub const POLL_EVERY: Duration = Duration::from_millis(500);

/// Which snapshot a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetailsKind {
    /// `/_details`: everything.
    Details,
    /// `/_index_status`: the index status alone.
    IndexStatus,
}

impl DetailsKind {
    /// The ETag's namespace.
    fn namespace(self) -> &'static str {
        match self {
            DetailsKind::Details => "details",
            DetailsKind::IndexStatus => "index_status",
        }
    }
}

/// A body and its weak ETag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetailsSnapshot {
    pub etag: String,
    pub body: String,
}

/// How a details request is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetailsOutcome {
    /// 200 with this snapshot.
    Fresh(DetailsSnapshot),
    /// 304: the client's copy (this ETag) is current.
    NotModified { etag: String },
}

impl StreamService {
    /// A stream introspection may describe: live; a deleted one is 404 here, as in the
    /// original.
    async fn described(&self, name: &str) -> ServiceResult<StreamMeta> {
        match self.live(name).await {
            Err(ServiceError::Gone) => Err(ServiceError::NotFound("stream not found".into())),
            other => other,
        }
    }

    /// The current snapshot of `name`, and the incarnation it describes.
    async fn snapshot(
        &self,
        name: &str,
        kind: DetailsKind,
    ) -> ServiceResult<(DetailsSnapshot, i64)> {
        let cached = self.described(name).await?;
        // The row read with the figures, so that they describe the same state.
        let (meta, stats) = self.engine.stream_snapshot(&cached).await?;
        let settings = self.settings(&meta).await?;
        let requests = self.engine.object_store_requests(&meta);
        let facts = Facts {
            meta: &meta,
            settings: &settings,
            stats: &stats,
            requests: &requests,
            tiered: self.engine.tier().is_some(),
        };
        let index_status = facts.index_status();
        let (etag, body) = match kind {
            DetailsKind::IndexStatus => {
                let body = index_status.to_string();
                (weak_etag(kind.namespace(), body.as_bytes()), body)
            }
            DetailsKind::Details => {
                let whole = |sqlite_shared: Value| {
                    serde_json::json!({
                        "stream": facts.summary(),
                        "profile": crate::profiles::response(&settings.profile),
                        "schema": settings.registry.to_value(),
                        "index_status": index_status.clone(),
                        "storage": facts.storage(sqlite_shared),
                        "object_store_requests": facts.requests(),
                    })
                    .to_string()
                };
                let hashed = whole(Value::Null);
                let etag = weak_etag(kind.namespace(), hashed.as_bytes());
                (etag, whole(stats.sqlite_file_bytes.to_string().into()))
            }
        };
        Ok((DetailsSnapshot { etag, body }, meta.id))
    }

    /// Answers a details request: at once, or (long-poll with a current
    /// `If-None-Match`) when the snapshot changes or the wait ends.
    pub async fn details(
        &self,
        name: &str,
        kind: DetailsKind,
        wait: DetailsWait,
        if_none_match: Option<&str>,
    ) -> ServiceResult<DetailsOutcome> {
        let (snap, id) = self.snapshot(name, kind).await?;
        let current =
            |s: &DetailsSnapshot| if_none_match.is_some_and(|i| none_match_hits(i, &s.etag));
        let limit = match wait {
            _ if !current(&snap) => return Ok(DetailsOutcome::Fresh(snap)),
            DetailsWait::Now => return Ok(DetailsOutcome::NotModified { etag: snap.etag }),
            DetailsWait::LongPoll(limit) => limit,
        };
        let _slot = self
            .live_slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| ServiceError::TooManyReaders)?;
        let deadline = crate::clock::now() + limit;
        // Subscribed before the next snapshot, so no commit after it goes unnoticed.
        let mut rx = Some(self.engine.subscribe(id));
        loop {
            let (snap, _) = self.snapshot(name, kind).await?;
            if !current(&snap) {
                return Ok(DetailsOutcome::Fresh(snap));
            }
            let now = crate::clock::now();
            if now >= deadline {
                return Ok(DetailsOutcome::NotModified { etag: snap.etag });
            }
            let step = (deadline - now).min(POLL_EVERY);
            let _ = tokio::time::timeout(step, next_commit(&mut rx)).await;
        }
    }
}

/// Waits for the stream's next commit; forever once the engine stopped announcing them
/// (the caller's timeout then paces the loop).
async fn next_commit(rx: &mut Option<TailReceiver>) {
    if let Some(r) = rx {
        if r.changed().await.is_ok() {
            return;
        }
        *rx = None;
    }
    std::future::pending::<()>().await
}
