//! Taking data away: deleting a stream (DELETE), reclaiming expired streams (the sweeper),
//! and keeping an internal stream to its retention as it is appended to.
//!
//! A stream that forks still read is only marked deleted (410 on its name) or detached
//! (out of the namespace); its rows go when the last fork does, up the chain. In full mode
//! a removed incarnation's objects are queued for deletion in the same transaction.

use crate::engine::db::{entries, key_index, object_gc, producers, segments, streams, templates};
use crate::engine::meta::StreamMeta;
use crate::engine::writer::{Batch, Submit};
use crate::engine::{AppendCmd, AppendError, AppendOutcome, Engine, EngineError};

#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("stream not found")]
    NotFound,
    #[error("stream was deleted")]
    Gone,
}

super::write_error!(DeleteError);

impl Engine {
    pub async fn delete(&self, name: &str) -> Result<(), DeleteError> {
        let name = name.to_string();
        self.writer()
            .call(Submit::request(0), move |b| delete(b, &name))
            .await
    }

    /// Reclaims up to `limit` expired streams; returns how many.
    pub async fn sweep_expired(&self, limit: usize) -> Result<usize, EngineError> {
        self.writer()
            .call(Submit::internal(), move |b| sweep(b, limit))
            .await
    }

    /// Appends to an internal stream and trims it to its newest `keep` entries in the same
    /// transaction, so that no reader ever sees more than `keep`.
    pub async fn append_retained(
        &self,
        cmd: AppendCmd,
        keep: u64,
    ) -> Result<AppendOutcome, AppendError> {
        self.writer()
            .call(Submit::internal().without_savepoint(), move |b| {
                let name = cmd.name.clone();
                let out = super::append::run(b, cmd)?;
                retain(b, &name, keep)?;
                Ok(out)
            })
            .await
    }
}

fn delete(b: &mut Batch<'_>, name: &str) -> Result<(), DeleteError> {
    let c = b.conn()?;
    let m = match streams::by_name(c, name)? {
        None => return Err(DeleteError::NotFound),
        Some(m) if m.life.deleted => return Err(DeleteError::Gone),
        Some(m) => m,
    };
    if m.is_expired(b.now) {
        retire(b, &m)?;
        return Err(DeleteError::NotFound);
    }
    b.gone(m.id);
    // Its live-query templates can never be used again (a new stream of the name is
    // another incarnation).
    templates::delete_stream(c, m.id)?;
    if m.life.ref_count > 0 {
        streams::set_soft_deleted(c, m.id)?;
    } else {
        remove(b, m.id)?;
    }
    Ok(())
}

fn sweep(b: &mut Batch<'_>, limit: usize) -> Result<usize, EngineError> {
    let mut n = 0;
    for m in streams::expired(b.conn()?, b.now, limit)? {
        // The query selects exactly these; checked again in Rust, which saturates
        // where SQLite's arithmetic would turn into floating point.
        if !m.is_expired(b.now) {
            continue;
        }
        retire(b, &m)?;
        n += 1;
    }
    Ok(n)
}

/// Trims an internal (SQLite-only) stream to its newest `keep` entries. Other streams are
/// never trimmed.
fn retain(b: &mut Batch<'_>, name: &str, keep: u64) -> Result<u64, EngineError> {
    let c = b.conn()?;
    let Some(m) = b.stream_by_name(name)? else {
        return Ok(0);
    };
    let target = m.tail.next_pos.saturating_sub(keep);
    if !m.config.local_only || target <= m.tier.trimmed_pos {
        return Ok(0);
    }
    entries::delete_below(c, m.id, target)?;
    streams::set_trimmed(c, m.id, target)?;
    Ok(target - m.tier.trimmed_pos)
}

/// Takes an expired stream out of the namespace: removed, or detached if forks need it.
pub(super) fn retire(b: &mut Batch<'_>, m: &StreamMeta) -> rusqlite::Result<()> {
    b.gone(m.id);
    templates::delete_stream(b.conn()?, m.id)?;
    if m.life.ref_count > 0 {
        streams::detach(b.conn()?, m.id)
    } else {
        remove(b, m.id)
    }
}

/// Hard-deletes an incarnation, then any deleted ancestor that no fork needs any more.
fn remove(b: &mut Batch<'_>, id: i64) -> rusqlite::Result<()> {
    let c = b.conn()?;
    let mut next = Some(id);
    while let Some(id) = next.take() {
        let Some(m) = streams::by_id(c, id)? else {
            break;
        };
        if b.tiered && !m.config.local_only {
            let prefix = crate::objstore::keys::stream_prefix(&m.config.incarnation);
            object_gc::insert(c, &prefix, b.now)?;
        }
        entries::delete_stream(c, id)?;
        crate::engine::db::config::delete_stream(c, id)?;
        templates::delete_stream(c, id)?;
        producers::delete_stream(c, id)?;
        segments::delete_stream(c, id)?;
        key_index::delete_stream(c, id)?;
        streams::delete_row(c, id)?;
        if let Some(f) = m.config.fork {
            let left = streams::add_ref(c, f.source_id, -1)?;
            if left <= 0 {
                if let Some(src) = streams::by_id(c, f.source_id)? {
                    if src.life.deleted {
                        next = Some(src.id);
                    }
                }
            }
        }
    }
    Ok(())
}
