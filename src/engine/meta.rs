//! Stream metadata as the engine keeps it: one row of `streams` per incarnation, split by
//! concern so that each part changes for one reason.
//!
//! - [`StreamConfig`]: fixed when the incarnation is created (content type, expiry rule,
//!   fork origin, object-store token).
//! - [`Tail`]: what appends and reads change (tail position, closed state, idempotency
//!   state, last access for the sliding TTL).
//! - [`TierState`]: where the entries are (segments, upload, manifest, retention); only
//!   the segmenter and uploader move it.
//! - [`Lifecycle`]: deletion and fork references.

use crate::protocol::expiry::Expiry;

/// A stream incarnation's metadata as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamMeta {
    pub id: i64,
    /// `None` once the incarnation left the namespace but is kept for its forks.
    pub name: Option<String>,
    pub config: StreamConfig,
    pub tail: Tail,
    pub tier: TierState,
    pub life: Lifecycle,
    /// `stream_keys` holds every routing key of the stream's own entries (false on a node
    /// rebuilt from the object store until its segments' keys are read).
    pub keys_complete: bool,
    pub settings: Settings,
}

/// What a stream's profile and schema registry make of its appends and reads (their
/// contents are in their own tables).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    /// The profile kind; `None` for generic.
    pub profile: Option<String>,
    /// Changes of the profile or the registry so far (0: neither was ever set).
    pub config_gen: u64,
}

/// Set at creation, never changed afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfig {
    pub content_type: String,
    pub created_at_ms: i64,
    pub expiry: Expiry,
    pub fork: Option<ForkInfo>,
    /// Random token naming this incarnation's objects; stable across bootstrap.
    pub incarnation: String,
    /// Internal stream kept in SQLite only (never segmented or uploaded).
    pub local_only: bool,
}

/// The tail and its idempotency state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tail {
    /// Tail position: entries ever appended, inherited ones included.
    pub next_pos: u64,
    pub closed: bool,
    /// `(producer id, epoch, seq)` of the append that closed the stream.
    pub closed_by: Option<(String, u64, u64)>,
    /// Last `Stream-Seq` accepted.
    pub stream_seq: Option<Vec<u8>>,
    /// Last read or write that renews a sliding TTL.
    pub last_access_ms: i64,
    /// Payload bytes of all own entries ever appended.
    pub total_bytes: u64,
}

/// Where the own entries are stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TierState {
    /// Own entries below this position are in segment files.
    pub sealed_pos: u64,
    /// Own entries below this position are in uploaded segments covered by a published
    /// manifest, and no longer in SQLite.
    pub uploaded_pos: u64,
    /// Payload bytes of unsealed entries.
    pub pending_bytes: u64,
    pub last_cut_ms: i64,
    pub manifest_generation: u64,
    pub manifest_etag: Option<String>,
    pub manifest_dirty: bool,
    /// Own entries below this position were removed by retention.
    pub trimmed_pos: u64,
}

/// Deletion state and fork references.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lifecycle {
    /// Number of forks that read this incarnation.
    pub ref_count: i64,
    /// Soft-deleted (410 on the name) or detached (kept only for forks).
    pub deleted: bool,
}

/// Where a fork's inherited prefix comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForkInfo {
    pub source_id: i64,
    /// Positions below this are read from the source.
    pub pos: u64,
    /// The sub-offset the fork was created with (kept for idempotent re-creates).
    pub sub_offset: u64,
}

impl StreamMeta {
    /// First position of this incarnation's own entries.
    pub fn own_start(&self) -> u64 {
        self.config.fork.map_or(0, |f| f.pos)
    }

    /// Whether a manifest is still to be published for this stream (full mode: `tiered`):
    /// a change not published yet, or none published at all. A new stream's first manifest
    /// is not marked dirty (it waits for its first segment, ADR 0014) but is still to come.
    pub fn manifest_pending(&self, tiered: bool) -> bool {
        self.tier.manifest_dirty
            || (tiered && !self.config.local_only && self.tier.manifest_generation == 0)
    }

    /// Whether retention removed entries: everything below `trimmed_pos` is gone
    /// (inherited entries too, for a fork).
    pub fn is_trimmed(&self) -> bool {
        self.tier.trimmed_pos > self.own_start()
    }

    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.config
            .expiry
            .is_expired(self.tail.last_access_ms, now_ms)
    }

    pub fn next_pos(&self) -> u64 {
        self.tail.next_pos
    }

    pub fn content_type(&self) -> &str {
        &self.config.content_type
    }
}
