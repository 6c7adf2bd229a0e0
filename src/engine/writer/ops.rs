//! The body of each write request, run by the writer thread inside the batch
//! transaction (one savepoint each). Nothing here commits; `super` does.

use std::collections::BTreeSet;

use bytes::Bytes;
use rusqlite::Connection;

use super::super::db::{entries, ingest, object_gc, producers, segments, streams};
use super::super::{
    AppendCmd, AppendError, AppendOutcome, CreateCmd, CreateError, CreateOutcome, DeleteError,
    EngineError, ForkInfo, StreamMeta,
};
use super::{FromSql, TierCmd};
use crate::protocol::{content_type, expiry::Expiry, json};

/// Per-batch context of the writer.
pub(super) struct Ctx {
    pub(super) now: i64,
    pub(super) tiered: bool,
    /// Fresh randomness for incarnation tokens minted in this batch.
    pub(super) random: [u64; 2],
}

pub(super) fn create(
    c: &Connection,
    cmd: CreateCmd,
    ctx: &Ctx,
) -> Result<CreateOutcome, CreateError> {
    let now = ctx.now;
    let sql = CreateError::sql;
    if let Some(existing) = streams::by_name(c, &cmd.name).map_err(sql)? {
        if existing.deleted {
            return Err(CreateError::SoftDeleted);
        }
        if existing.is_expired(now) {
            retire(c, &existing, ctx).map_err(sql)?;
        } else {
            return if same_config(c, &existing, &cmd).map_err(sql)? {
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
            let src = match streams::by_name(c, &f.source).map_err(sql)? {
                None => return Err(CreateError::SourceNotFound),
                Some(s) if s.deleted => return Err(CreateError::SourceDeleted),
                Some(s) if s.is_expired(now) => return Err(CreateError::SourceNotFound),
                Some(s) => s,
            };
            let ct = cmd
                .content_type
                .clone()
                .unwrap_or_else(|| src.content_type.clone());
            if !content_type::same(&ct, &src.content_type) {
                return Err(CreateError::SourceContentType);
            }
            let pos = f.pos.unwrap_or(src.next_pos);
            if src.local_only && pos < src.trimmed_pos {
                return Err(CreateError::BadFork(
                    "Stream-Fork-Offset is below the source's retained range".into(),
                ));
            }
            if pos > src.next_pos {
                return Err(CreateError::BadFork(
                    "Stream-Fork-Offset is beyond the source's tail".into(),
                ));
            }
            let mut fork_pos = pos;
            if f.sub_offset > 0 {
                if content_type::is_json(&src.content_type) {
                    if pos + f.sub_offset > src.next_pos {
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
                    materialized = Some(entry[..cut].to_vec());
                }
            }
            streams::add_ref(c, src.id, 1).map_err(sql)?;
            let fork = ForkInfo {
                source_id: src.id,
                pos: fork_pos,
                sub_offset: f.sub_offset,
            };
            (ct, cmd.expiry.unwrap_or(src.expiry), Some(fork))
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
        content_type: ct,
        created_at_ms: now,
        expiry,
        last_access_ms: now,
        next_pos: start,
        closed: cmd.closed,
        closed_by: None,
        stream_seq: None,
        fork,
        ref_count: 0,
        deleted: false,
        incarnation: format!("{:016x}{:016x}", ctx.random[0], ctx.random[1]),
        sealed_pos: start,
        uploaded_pos: start,
        pending_bytes: 0,
        last_cut_ms: now,
        manifest_generation: 0,
        manifest_etag: None,
        manifest_dirty: ctx.tiered && !cmd.local_only,
        local_only: cmd.local_only,
        trimmed_pos: start,
    };
    meta.id = streams::insert(c, &meta).map_err(sql)?;
    for data in materialized.iter().chain(body_entries.iter()) {
        entries::insert(c, meta.id, meta.next_pos, data).map_err(sql)?;
        meta.next_pos += 1;
        meta.pending_bytes += data.len() as u64;
    }
    streams::update_after_write(c, &meta).map_err(sql)?;
    Ok(CreateOutcome::Created(meta))
}

/// Whether an idempotent re-create matches the stored configuration.
fn same_config(c: &Connection, m: &StreamMeta, cmd: &CreateCmd) -> rusqlite::Result<bool> {
    let requested_ct = match (&cmd.content_type, &cmd.fork) {
        (Some(ct), _) => ct.clone(),
        (None, Some(_)) => m.content_type.clone(),
        (None, None) => content_type::DEFAULT.to_string(),
    };
    if !content_type::same(&requested_ct, &m.content_type) || m.closed != cmd.closed {
        return Ok(false);
    }
    match cmd.expiry {
        Some(e) if e != m.expiry => return Ok(false),
        None if cmd.fork.is_none() && m.expiry != Expiry::None => return Ok(false),
        _ => {}
    }
    if let Some(f) = &cmd.fork {
        let Some(info) = m.fork else { return Ok(false) };
        let source_id = streams::by_name(c, &f.source)?.map(|s| s.id);
        if source_id != Some(info.source_id) || f.sub_offset != info.sub_offset {
            return Ok(false);
        }
        let requested_anchor = if content_type::is_json(&m.content_type) {
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

/// Appends to a stream. Every protocol error is returned before the first write, so an
/// error other than [`AppendError::Engine`] leaves the transaction untouched.
pub(super) fn append(
    c: &Connection,
    cmd: AppendCmd,
    ctx: &Ctx,
) -> Result<(AppendOutcome, Added), AppendError> {
    let now = ctx.now;
    let sql = AppendError::sql;
    let mut m = match streams::by_name(c, &cmd.name).map_err(sql)? {
        None => return Err(AppendError::NotFound),
        Some(m) if m.deleted => return Err(AppendError::Gone),
        Some(m) if m.is_expired(now) => return Err(AppendError::NotFound),
        Some(m) => m,
    };
    let duplicate = |m: &StreamMeta, producer: Option<(u64, u64)>| AppendOutcome {
        next_pos: m.next_pos,
        closed: m.closed,
        written: 0,
        producer,
    };
    if m.closed {
        let same_closer = match (&cmd.producer, &m.closed_by) {
            (Some(p), Some((id, e, s))) => &p.id == id && p.epoch == *e && p.seq == *s,
            _ => false,
        };
        if cmd.close && (cmd.entries.is_empty() || same_closer) {
            let echo = cmd.producer.as_ref().map(|p| (p.epoch, p.seq));
            return Ok((duplicate(&m, echo), Added::none(m.id)));
        }
        return Err(AppendError::Closed {
            next_pos: m.next_pos,
        });
    }
    if !cmd.entries.is_empty() {
        let ok = cmd
            .content_type
            .as_deref()
            .is_some_and(|ct| content_type::same(ct, &m.content_type));
        if !ok {
            return Err(AppendError::ContentType);
        }
    }
    if let Some(msg) = cmd.framing_error {
        return Err(AppendError::BadBody(msg));
    }
    if let Some(p) = &cmd.producer {
        match producers::get(c, m.id, &p.id).map_err(sql)? {
            None if p.seq != 0 => return Err(AppendError::EpochSeq),
            None => {}
            Some((epoch, _)) if p.epoch < epoch => {
                return Err(AppendError::StaleEpoch { current: epoch })
            }
            Some((epoch, _)) if p.epoch > epoch && p.seq != 0 => return Err(AppendError::EpochSeq),
            Some((epoch, _)) if p.epoch > epoch => {}
            Some((epoch, last)) if p.seq <= last => {
                return Ok((duplicate(&m, Some((epoch, last))), Added::none(m.id)));
            }
            Some((_, last)) if p.seq > last + 1 => {
                return Err(AppendError::Gap {
                    expected: last + 1,
                    received: p.seq,
                })
            }
            Some(_) => {}
        }
    }
    if let Some(seq) = cmd.stream_seq {
        if let Some(last) = &m.stream_seq {
            if seq.as_slice() <= last.as_slice() {
                return Err(AppendError::StreamSeq {
                    last: last.clone(),
                    received: seq,
                });
            }
        }
        m.stream_seq = Some(seq);
    }
    // Every check is done: from here on only SQL errors can fail the append, and the
    // writer then rolls back the whole batch (appends run without a savepoint).
    if let Some(p) = &cmd.producer {
        producers::put(c, m.id, &p.id, p.epoch, p.seq, now).map_err(sql)?;
    }
    let written = cmd.entries.len();
    let first_pos = m.next_pos;
    let mut added = Vec::with_capacity(written);
    for data in cmd.entries {
        ingest::insert(c, m.id, m.next_pos, &data).map_err(sql)?;
        m.next_pos += 1;
        m.pending_bytes += data.len() as u64;
        added.push(Bytes::from(data));
    }
    if cmd.close {
        m.manifest_dirty = ctx.tiered && !m.local_only;
        m.closed = true;
        m.closed_by = cmd
            .producer
            .as_ref()
            .map(|p| (p.id.clone(), p.epoch, p.seq));
    }
    m.last_access_ms = now;
    streams::update_after_write(c, &m).map_err(sql)?;
    Ok((
        AppendOutcome {
            next_pos: m.next_pos,
            closed: m.closed,
            written,
            producer: cmd.producer.as_ref().map(|p| (p.epoch, p.seq)),
        },
        Added {
            stream_id: m.id,
            first_pos,
            entries: added,
        },
    ))
}

/// Entries an append wrote to `ingest`, for the memtable once the batch has committed.
pub(super) struct Added {
    pub stream_id: i64,
    pub first_pos: u64,
    pub entries: Vec<Bytes>,
}

impl Added {
    fn none(stream_id: i64) -> Added {
        Added {
            stream_id,
            first_pos: 0,
            entries: Vec::new(),
        }
    }
}

pub(super) fn delete(
    c: &Connection,
    name: &str,
    ctx: &Ctx,
    changed: &mut BTreeSet<i64>,
) -> Result<(), DeleteError> {
    let sql = DeleteError::sql;
    let m = match streams::by_name(c, name).map_err(sql)? {
        None => return Err(DeleteError::NotFound),
        Some(m) if m.deleted => return Err(DeleteError::Gone),
        Some(m) => m,
    };
    changed.insert(m.id);
    if m.is_expired(ctx.now) {
        retire(c, &m, ctx).map_err(sql)?;
        return Err(DeleteError::NotFound);
    }
    if m.ref_count > 0 {
        streams::set_soft_deleted(c, m.id).map_err(sql)?;
    } else {
        remove(c, m.id, ctx).map_err(sql)?;
    }
    Ok(())
}

pub(super) fn sweep(
    c: &Connection,
    limit: usize,
    ctx: &Ctx,
    changed: &mut BTreeSet<i64>,
) -> Result<usize, EngineError> {
    let mut n = 0;
    for m in streams::with_expiry(c, limit)? {
        if !m.is_expired(ctx.now) {
            break;
        }
        changed.insert(m.id);
        retire(c, &m, ctx)?;
        n += 1;
    }
    Ok(n)
}

/// Applies background tiering bookkeeping; `Ok(false)` when it no longer applies.
pub(super) fn tier(c: &Connection, cmd: TierCmd, ctx: &Ctx) -> Result<bool, EngineError> {
    match cmd {
        TierCmd::Sealed { seg, payload_bytes } => {
            let Some(m) = streams::by_id(c, seg.stream_id)? else {
                return Ok(false);
            };
            let fits = m.sealed_pos == seg.start_pos
                && seg.start_pos < seg.end_pos
                && seg.end_pos <= m.next_pos;
            if !fits {
                return Ok(false);
            }
            segments::insert(c, &seg)?;
            streams::set_sealed(c, m.id, seg.end_pos, payload_bytes, ctx.now)?;
            Ok(true)
        }
        TierCmd::Uploaded {
            stream_id,
            index,
            etag,
        } => {
            let found = segments::mark_uploaded(c, stream_id, index, etag.as_deref(), ctx.now)?;
            if found {
                streams::set_manifest_dirty(c, stream_id)?;
            }
            Ok(found)
        }
        TierCmd::Published {
            stream_id,
            generation,
            etag,
            uploaded_pos,
            base_generation,
        } => {
            let Some(m) = streams::by_id(c, stream_id)? else {
                return Ok(false);
            };
            if generation <= m.manifest_generation {
                return Ok(false);
            }
            let unchanged = m.manifest_generation == base_generation;
            let uploaded = uploaded_pos.min(m.sealed_pos);
            streams::set_published(
                c,
                stream_id,
                generation,
                etag.as_deref(),
                uploaded,
                unchanged,
            )?;
            entries::delete_below(c, stream_id, uploaded)?;
            Ok(true)
        }
        TierCmd::GcDone { id } => {
            object_gc::delete(c, id)?;
            Ok(true)
        }
    }
}

/// Trims an internal (SQLite-only) stream to its newest `keep` entries; returns how many
/// entries were removed. Other streams are never trimmed.
pub(super) fn retain(c: &Connection, name: &str, keep: u64) -> Result<u64, EngineError> {
    let Some(m) = streams::by_name(c, name)? else {
        return Ok(0);
    };
    let target = m.next_pos.saturating_sub(keep);
    if !m.local_only || target <= m.trimmed_pos {
        return Ok(0);
    }
    entries::delete_below(c, m.id, target)?;
    c.prepare_cached("UPDATE streams SET trimmed_pos = ?2 WHERE id = ?1")?
        .execute(rusqlite::params![m.id, target as i64])?;
    Ok(target - m.trimmed_pos)
}

/// Takes an expired stream out of the namespace: removed, or detached if forks need it.
fn retire(c: &Connection, m: &StreamMeta, ctx: &Ctx) -> rusqlite::Result<()> {
    if m.ref_count > 0 {
        streams::detach(c, m.id)
    } else {
        remove(c, m.id, ctx)
    }
}

/// Hard-deletes an incarnation, then any deleted ancestor that no fork needs any more.
/// In full mode its objects are queued for deletion in the same transaction.
fn remove(c: &Connection, id: i64, ctx: &Ctx) -> rusqlite::Result<()> {
    let mut next = Some(id);
    while let Some(id) = next.take() {
        let Some(m) = streams::by_id(c, id)? else {
            break;
        };
        if ctx.tiered && !m.local_only {
            let prefix = crate::objstore::keys::stream_prefix(&m.incarnation);
            object_gc::insert(c, &prefix, ctx.now)?;
        }
        entries::delete_stream(c, id)?;
        producers::delete_stream(c, id)?;
        segments::delete_stream(c, id)?;
        streams::delete_row(c, id)?;
        if let Some(f) = m.fork {
            let left = streams::add_ref(c, f.source_id, -1)?;
            if left <= 0 {
                if let Some(src) = streams::by_id(c, f.source_id)? {
                    if src.deleted {
                        next = Some(src.id);
                    }
                }
            }
        }
    }
    Ok(())
}
