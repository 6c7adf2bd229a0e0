//! Bookkeeping of the segmenter and uploader: recording a sealed segment, an uploaded
//! segment object, a published manifest, and a removed incarnation's deleted objects.
//! Each applies only if the stream is still in the state the background task saw.

use crate::engine::db::segments::SegmentRow;
use crate::engine::db::{entries, object_gc, segments, streams};
use crate::engine::writer::{Batch, Submit};
use crate::engine::{Engine, EngineError};

/// Bookkeeping of the segmenter and uploader.
#[derive(Debug)]
pub enum TierCmd {
    /// A segment file was written; applies only if the stream is still the same
    /// incarnation and its sealed position is the segment's start.
    Sealed { seg: SegmentRow, payload_bytes: u64 },
    /// A segment object was uploaded.
    Uploaded {
        stream_id: i64,
        index: u64,
        etag: Option<String>,
    },
    /// A manifest of `generation` covering `[.., uploaded_pos)` was published; entries
    /// below `uploaded_pos` are deleted from SQLite.
    Published {
        stream_id: i64,
        generation: u64,
        etag: Option<String>,
        uploaded_pos: u64,
        /// The generation the publisher started from: the dirty flag is cleared only if
        /// nobody published in between.
        base_generation: u64,
        /// What the manifest recorded of the stream's state (closed, deleted, settings
        /// generation): the dirty flag is cleared only if the stream still has that state.
        published: (bool, bool, u64),
    },
    /// A removed incarnation's objects are gone.
    GcDone { id: i64 },
}

impl Engine {
    /// Sends tiering bookkeeping to the writer; `Ok(false)` if it no longer applied.
    pub(crate) async fn tier_cmd(&self, cmd: TierCmd) -> Result<bool, EngineError> {
        self.writer()
            .call(Submit::internal(), move |b| apply(b, cmd))
            .await
    }

    /// Sends several at once: one writer operation, so one commit for all of them (the
    /// uploader records a round's uploads and publications this way). Each result says
    /// whether that command still applied; a storage error fails them all.
    pub(crate) async fn tier_cmds(&self, cmds: Vec<TierCmd>) -> Result<Vec<bool>, EngineError> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        self.writer()
            .call(Submit::internal(), move |b| {
                cmds.into_iter().map(|cmd| apply(b, cmd)).collect()
            })
            .await
    }
}

fn apply(b: &mut Batch<'_>, cmd: TierCmd) -> Result<bool, EngineError> {
    let c = b.conn()?;
    match cmd {
        TierCmd::Sealed { seg, payload_bytes } => {
            let Some(m) = streams::by_id(c, seg.stream_id)? else {
                return Ok(false);
            };
            let fits = m.tier.sealed_pos == seg.start_pos
                && seg.start_pos < seg.end_pos
                && seg.end_pos <= m.tail.next_pos;
            if !fits {
                return Ok(false);
            }
            segments::insert(c, &seg)?;
            streams::set_sealed(c, m.id, seg.end_pos, payload_bytes, b.now)?;
            Ok(true)
        }
        TierCmd::Uploaded {
            stream_id,
            index,
            etag,
        } => {
            let found = segments::mark_uploaded(c, stream_id, index, etag.as_deref(), b.now)?;
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
            published,
        } => {
            let Some(m) = streams::by_id(c, stream_id)? else {
                return Ok(false);
            };
            if generation <= m.tier.manifest_generation {
                return Ok(false);
            }
            let unchanged = m.tier.manifest_generation == base_generation
                && published == (m.tail.closed, m.life.deleted, m.settings.config_gen);
            let uploaded = uploaded_pos.min(m.tier.sealed_pos);
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
