//! Creating a stream (PUT): a new incarnation, a fork of another stream, or an idempotent
//! repeat of an existing create.

use bytes::Bytes;
use rusqlite::Connection;

use super::remove::retire;
use crate::engine::db::{entries, streams};
use crate::engine::meta::{
    ForkInfo, Lifecycle, Settings, StreamConfig, StreamMeta, Tail, TierState,
};
use crate::engine::writer::{Batch, Submit};
use crate::engine::{Engine, EngineError, ExpirySpec, Reservation};
use crate::protocol::{content_type, expiry::Expiry, json};

/// A create (PUT) request, validated by the service.
#[derive(Debug)]
pub struct CreateCmd {
    pub name: String,
    /// `None` = not given: `application/octet-stream`, or the fork source's type.
    pub content_type: Option<String>,
    pub expiry: ExpirySpec,
    pub closed: bool,
    pub fork: Option<ForkSpec>,
    /// The initial body, not yet split (its framing depends on the final content type).
    pub body: Bytes,
    /// The routing key of the initial entries (`Stream-Key`).
    pub key: Option<Bytes>,
    /// The body's bytes in the ingest budget, given back once the writer ran the create.
    pub hold: Reservation,
    /// The server's own streams: kept in SQLite only, with retention (never set from HTTP).
    pub local_only: bool,
}

/// Fork parameters of a create.
#[derive(Debug, Clone)]
pub struct ForkSpec {
    pub source: String,
    /// `None` = the source's tail.
    pub pos: Option<u64>,
    pub sub_offset: u64,
    /// For a byte sub-offset into a raw stream: the source incarnation and its entry at
    /// `pos`, read beforehand (it may live in the object store, which the writer never
    /// calls). The writer checks that the source is still that incarnation.
    pub entry: Option<(i64, Vec<u8>)>,
}

#[derive(Debug)]
pub enum CreateOutcome {
    Created(StreamMeta),
    Exists(StreamMeta),
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("stream already exists with a different configuration")]
    ConfigMismatch,
    #[error("stream was deleted and is still referenced by forks")]
    SoftDeleted,
    #[error("fork source not found")]
    SourceNotFound,
    #[error("fork source was deleted")]
    SourceDeleted,
    #[error("content type differs from the fork source")]
    SourceContentType,
    #[error("{0}")]
    BadFork(String),
    #[error("{0}")]
    BadBody(String),
}

super::write_error!(CreateError);

impl Engine {
    pub async fn create(&self, cmd: CreateCmd) -> Result<CreateOutcome, CreateError> {
        let bytes = cmd.body.len();
        self.writer()
            .call(Submit::request(bytes), move |b| run(b, cmd))
            .await
    }
}

pub(crate) fn run(b: &mut Batch<'_>, cmd: CreateCmd) -> Result<CreateOutcome, CreateError> {
    let c = b.conn()?;
    let now = b.now;
    if let Some(existing) = b.stream_by_name(&cmd.name)? {
        if existing.life.deleted {
            return Err(CreateError::SoftDeleted);
        }
        if existing.is_expired(now) {
            retire(b, &existing)?;
        } else {
            return if same_config(c, &existing, &cmd)? {
                Ok(CreateOutcome::Exists(existing))
            } else {
                Err(CreateError::ConfigMismatch)
            };
        }
    }

    let mut materialized = None;
    let (ct, expiry, fork) = match &cmd.fork {
        None => (
            cmd.content_type
                .clone()
                .unwrap_or_else(|| content_type::DEFAULT.into()),
            cmd.expiry.unwrap_or(Expiry::None),
            None,
        ),
        Some(f) => {
            let src = match b.stream_by_name(&f.source)? {
                None => return Err(CreateError::SourceNotFound),
                Some(s) if s.life.deleted => return Err(CreateError::SourceDeleted),
                Some(s) if s.is_expired(now) => return Err(CreateError::SourceNotFound),
                Some(s) => s,
            };
            let ct = cmd
                .content_type
                .clone()
                .unwrap_or_else(|| src.config.content_type.clone());
            if !content_type::same(&ct, &src.config.content_type) {
                return Err(CreateError::SourceContentType);
            }
            let src_tail = src.tail.next_pos;
            let pos = f.pos.unwrap_or(src_tail);
            if src.is_trimmed() && pos < src.tier.trimmed_pos {
                return Err(CreateError::BadFork(
                    "Stream-Fork-Offset is below the source's retained range".into(),
                ));
            }
            if pos > src_tail {
                return Err(CreateError::BadFork(
                    "Stream-Fork-Offset is beyond the source's tail".into(),
                ));
            }
            let mut fork_pos = pos;
            if f.sub_offset > 0 {
                if content_type::is_json(&src.config.content_type) {
                    if pos + f.sub_offset > src_tail {
                        return Err(CreateError::BadFork(
                            "Stream-Fork-Sub-Offset is past the source's last message".into(),
                        ));
                    }
                    fork_pos = pos + f.sub_offset;
                } else {
                    let entry = match &f.entry {
                        Some((id, e)) if *id == src.id => e,
                        Some(_) => return Err(CreateError::SourceNotFound),
                        None => {
                            return Err(CreateError::BadFork(
                                "no data after Stream-Fork-Offset".into(),
                            ))
                        }
                    };
                    let cut = usize::try_from(f.sub_offset).unwrap_or(usize::MAX);
                    if cut > entry.len() {
                        return Err(CreateError::BadFork(
                            "Stream-Fork-Sub-Offset is past the end of the append at the fork offset".into(),
                        ));
                    }
                    materialized = Some(Bytes::copy_from_slice(&entry[..cut]));
                }
            }
            streams::add_ref(c, src.id, 1)?;
            let fork = ForkInfo {
                source_id: src.id,
                pos: fork_pos,
                sub_offset: f.sub_offset,
            };
            (ct, cmd.expiry.unwrap_or(src.config.expiry), Some(fork))
        }
    };

    let body_entries = if cmd.body.is_empty() {
        Vec::new()
    } else if content_type::is_json(&ct) {
        json::split_messages(&cmd.body, true).map_err(|e| CreateError::BadBody(e.to_string()))?
    } else {
        vec![cmd.body]
    };

    let start = fork.map_or(0, |f| f.pos);
    let mut meta = StreamMeta {
        id: 0,
        name: Some(cmd.name),
        config: StreamConfig {
            content_type: ct,
            created_at_ms: now,
            expiry,
            fork,
            incarnation: b.token(),
            local_only: cmd.local_only,
        },
        tail: Tail {
            next_pos: start,
            closed: cmd.closed,
            closed_by: None,
            stream_seq: None,
            last_access_ms: now,
            total_bytes: 0,
        },
        tier: TierState {
            sealed_pos: start,
            uploaded_pos: start,
            pending_bytes: 0,
            last_cut_ms: now,
            manifest_generation: 0,
            manifest_etag: None,
            // Not dirty: the first manifest goes out with the first uploaded segment, or
            // after the segment interval if none comes (see `uploader`).
            manifest_dirty: false,
            trimmed_pos: start,
        },
        life: Lifecycle::default(),
        keys_complete: true,
        settings: Settings::default(),
    };
    for data in materialized.iter().chain(body_entries.iter()) {
        meta.tail.next_pos += 1;
        meta.tier.pending_bytes += data.len() as u64;
        meta.tail.total_bytes += data.len() as u64;
    }
    meta.id = streams::insert(c, &meta)?;
    for (pos, data) in (start..).zip(materialized.iter().chain(body_entries.iter())) {
        entries::insert(c, meta.id, pos, data, cmd.key.as_deref(), now)?;
    }
    b.count_append(
        (meta.tail.next_pos - start) as usize,
        meta.tier.pending_bytes as usize,
    );
    if !body_entries.is_empty() {
        // Consumers of the commit feed (subscriptions) see an initial body as an append:
        // a tail change without entries (they are in `entries` already, not the memtable).
        b.tail(
            meta.id,
            meta.name.as_deref(),
            meta.tail.next_pos,
            meta.tail.closed,
        );
    }
    b.fresh(meta.clone());
    Ok(CreateOutcome::Created(meta))
}

/// Whether an idempotent re-create matches the stored configuration.
fn same_config(c: &Connection, m: &StreamMeta, cmd: &CreateCmd) -> rusqlite::Result<bool> {
    let requested_ct = match (&cmd.content_type, &cmd.fork) {
        (Some(ct), _) => ct.clone(),
        (None, Some(_)) => m.config.content_type.clone(),
        (None, None) => content_type::DEFAULT.to_string(),
    };
    if !content_type::same(&requested_ct, &m.config.content_type) || m.tail.closed != cmd.closed {
        return Ok(false);
    }
    match cmd.expiry {
        Some(e) if e != m.config.expiry => return Ok(false),
        None if cmd.fork.is_none() && m.config.expiry != Expiry::None => return Ok(false),
        _ => {}
    }
    if let Some(f) = &cmd.fork {
        let Some(info) = m.config.fork else {
            return Ok(false);
        };
        let source_id = streams::by_name(c, &f.source)?.map(|s| s.id);
        if source_id != Some(info.source_id) || f.sub_offset != info.sub_offset {
            return Ok(false);
        }
        let requested_anchor = if content_type::is_json(&m.config.content_type) {
            info.pos - info.sub_offset
        } else {
            info.pos
        };
        if f.pos.is_some_and(|p| p != requested_anchor) {
            return Ok(false);
        }
    }
    Ok(true)
}
