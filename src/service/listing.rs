//! `GET /v1/streams`: a page of live streams in name order, each described with the
//! fields Prisma Studio reads (the original's item shape) plus ours (`content_type`,
//! `ttl_seconds`, `closed`).
//!
//! Positions are internal entry positions written as decimal strings, not protocol
//! offsets, as in the original: `next_offset` is the number of entries (inherited ones
//! included), `sealed_through` / `uploaded_through` the last position in a segment file /
//! in an uploaded segment covered by a published manifest, `-1` for none (always so in
//! local mode, which keeps everything in SQLite).

use serde::Serialize;

use super::{ServiceResult, StreamService};
use crate::engine::StreamMeta;
use crate::protocol::headers::format_rfc3339_ms;
use crate::protocol::introspection::through;

/// The largest page.
pub const MAX_PAGE: usize = 1000;

/// One item of `GET /v1/streams`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StreamListing {
    pub name: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    /// Always 0 (the original's field; streams have no epochs).
    pub epoch: u64,
    pub next_offset: String,
    pub sealed_through: String,
    pub uploaded_through: String,
    pub profile: String,
    pub content_type: String,
    pub ttl_seconds: Option<u64>,
    pub closed: bool,
}

/// The profile kind of a stream (`generic` when none was installed).
pub(super) fn profile_kind(m: &StreamMeta) -> &str {
    m.settings.profile.as_deref().unwrap_or("generic")
}

/// When the stream expires: its fixed deadline, or the end of its sliding TTL window as
/// of its last access.
pub(super) fn expires_at(m: &StreamMeta) -> Option<String> {
    m.config
        .expiry
        .deadline_ms(m.tail.last_access_ms)
        .map(format_rfc3339_ms)
}

pub(super) fn ttl_seconds(m: &StreamMeta) -> Option<u64> {
    match m.config.expiry {
        crate::protocol::expiry::Expiry::Ttl(s) => Some(s),
        _ => None,
    }
}

impl StreamListing {
    pub(super) fn of(m: &StreamMeta) -> StreamListing {
        StreamListing {
            name: m.name.clone().unwrap_or_default(),
            created_at: format_rfc3339_ms(m.config.created_at_ms),
            expires_at: expires_at(m),
            epoch: 0,
            next_offset: m.tail.next_pos.to_string(),
            sealed_through: through(m.tier.sealed_pos),
            uploaded_through: through(m.tier.uploaded_pos),
            profile: profile_kind(m).to_string(),
            content_type: m.config.content_type.clone(),
            ttl_seconds: ttl_seconds(m),
            closed: m.tail.closed,
        }
    }
}

impl StreamService {
    /// Live streams in name order from row `offset`, at most `limit` (clamped to
    /// [`MAX_PAGE`]; 0 gives an empty page).
    pub async fn list_streams(
        &self,
        offset: usize,
        limit: usize,
    ) -> ServiceResult<Vec<StreamListing>> {
        let limit = limit.min(MAX_PAGE);
        if limit == 0 {
            return Ok(Vec::new());
        }
        // SQLite takes a signed offset; beyond it nothing is listed anyway.
        let offset = offset.min(i64::MAX as usize);
        let metas = self.engine.list(offset, limit).await?;
        Ok(metas.iter().map(StreamListing::of).collect())
    }
}
