//! Test support: an engine on a temporary database with a manual clock, and the create
//! and append commands and stream metadata tests build again and again.

use std::sync::Arc;

use bytes::Bytes;

use super::meta::{Lifecycle, StreamConfig, Tail, TierState};
use super::{AppendCmd, CreateCmd, Engine, ForkSpec, Reservation, StreamMeta};
use crate::clock::ManualClock;
use crate::config::Limits;
use crate::health::Health;

/// An engine (local mode: no object store) and what it runs on.
pub(crate) struct TestEngine {
    pub dir: tempfile::TempDir,
    pub engine: Engine,
    pub clock: Arc<ManualClock>,
}

/// A fresh engine whose clock starts at `now_ms`.
pub(crate) fn engine_at(now_ms: i64) -> TestEngine {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(now_ms);
    let engine = Engine::open(
        dir.path().join("t.sqlite"),
        &Limits::default(),
        None,
        clock.clone(),
        Health::new(clock.clone()),
    )
    .unwrap();
    TestEngine { dir, engine, clock }
}

/// Creates stream `name` with this content type (and fork), empty.
pub(crate) fn create_cmd(name: &str, content_type: &str, fork: Option<ForkSpec>) -> CreateCmd {
    CreateCmd {
        name: name.into(),
        content_type: Some(content_type.into()),
        expiry: None,
        closed: false,
        fork,
        body: Bytes::new(),
        key: None,
        hold: Reservation::default(),
        local_only: false,
    }
}

/// Appends `entries` to stream `name` (no producer, no key, any configuration).
pub(crate) fn append_cmd(name: &str, content_type: &str, entries: Vec<Bytes>) -> AppendCmd {
    AppendCmd {
        name: name.into(),
        content_type: Some(content_type.into()),
        entries,
        keys: Vec::new(),
        close: false,
        producer: None,
        stream_seq: None,
        framing_error: None,
        hold: Reservation::default(),
        config_gen: None,
    }
}

/// Metadata of an empty, open, text stream `name` (incarnation id `id`) with its tail at
/// `next_pos`, as a row read from SQLite would give it.
pub(crate) fn stream_meta(id: i64, name: &str, next_pos: u64) -> StreamMeta {
    StreamMeta {
        id,
        name: Some(name.into()),
        config: StreamConfig {
            content_type: "text/plain".into(),
            created_at_ms: 0,
            expiry: crate::protocol::expiry::Expiry::None,
            fork: None,
            incarnation: format!("inc{id}"),
            local_only: false,
        },
        tail: Tail {
            next_pos,
            closed: false,
            closed_by: None,
            stream_seq: None,
            last_access_ms: 0,
            total_bytes: 0,
        },
        tier: TierState::default(),
        life: Lifecycle::default(),
        keys_complete: true,
        settings: Default::default(),
    }
}
