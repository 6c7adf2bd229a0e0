//! Catalog changes of the routing-key index (see `engine::keyindex`): a new run, and runs
//! merged into their parent. Both apply only while the stream is the incarnation the run
//! was built for; what no longer applies leaves objects that the object GC removes.

use crate::engine::db::key_index::{self, RunRow};
use crate::engine::db::{object_gc, segments, streams};
use crate::engine::keyindex::format::RunRange;
use crate::engine::keyindex::object_key;
use crate::engine::writer::{Batch, Submit};
use crate::engine::{Engine, EngineError};

/// A catalog change.
#[derive(Debug, Clone)]
pub enum KeyIndexCmd {
    /// A run was uploaded for segments that exist and are not covered yet.
    Add { incarnation: String, row: RunRow },
    /// Segments of a stream without routing keys: looked at, nothing to index.
    Skip { stream_id: i64, segments: Vec<u64> },
    /// `parent` (uploaded) replaces `children`; their objects are queued for deletion.
    Merge {
        incarnation: String,
        children: Vec<RunRange>,
        parent: RunRow,
    },
    /// A run that cannot be used is taken out of the catalog, so that its segments are
    /// indexed again.
    Drop {
        incarnation: String,
        stream_id: i64,
        range: RunRange,
    },
}

impl Engine {
    /// Applies a catalog change; `Ok(false)` if it no longer applied.
    pub(crate) async fn key_index_cmd(&self, cmd: KeyIndexCmd) -> Result<bool, EngineError> {
        self.writer()
            .call(Submit::internal(), move |b| apply(b, cmd))
            .await
    }
}

fn same_incarnation(b: &Batch<'_>, stream_id: i64, incarnation: &str) -> rusqlite::Result<bool> {
    Ok(streams::by_id(b.read(), stream_id)?
        .is_some_and(|m| m.config.incarnation == incarnation && !m.config.local_only))
}

fn apply(b: &mut Batch<'_>, cmd: KeyIndexCmd) -> Result<bool, EngineError> {
    let c = b.conn()?;
    match cmd {
        KeyIndexCmd::Add { incarnation, row } => {
            if !same_incarnation(b, row.stream_id, &incarnation)? {
                return Ok(false);
            }
            for s in row.range.start_seg..row.range.end_seg {
                if segments::by_index(c, row.stream_id, s)?.is_none() {
                    object_gc::insert(c, &object_key(&incarnation, row.range), b.now)?;
                    return Ok(false);
                }
            }
            // The object was just written: a deletion queued for an earlier object of the
            // same key (a merged or dropped run) must not remove it.
            object_gc::cancel(c, &object_key(&incarnation, row.range))?;
            key_index::insert(c, &row)?;
            key_index::mark_segments(
                c,
                row.stream_id,
                row.range.start_seg,
                row.range.end_seg,
                true,
            )?;
            Ok(true)
        }
        KeyIndexCmd::Skip {
            stream_id,
            segments,
        } => {
            for s in segments {
                key_index::mark_segments(c, stream_id, s, s + 1, true)?;
            }
            Ok(true)
        }
        KeyIndexCmd::Merge {
            incarnation,
            children,
            parent,
        } => {
            if !same_incarnation(b, parent.stream_id, &incarnation)? {
                return Ok(false);
            }
            for r in &children {
                if !key_index::exists(c, parent.stream_id, *r)? {
                    // Someone else changed the catalog: the parent is not needed.
                    object_gc::insert(c, &object_key(&incarnation, parent.range), b.now)?;
                    return Ok(false);
                }
            }
            for r in &children {
                key_index::delete(c, parent.stream_id, *r)?;
                object_gc::insert(c, &object_key(&incarnation, *r), b.now)?;
            }
            key_index::insert(c, &parent)?;
            Ok(true)
        }
        KeyIndexCmd::Drop {
            incarnation,
            stream_id,
            range,
        } => {
            if !same_incarnation(b, stream_id, &incarnation)? {
                return Ok(false);
            }
            // The object is not queued for deletion: a rebuilt level-0 run is written under
            // the same key (a damaged run of a higher level stays until the stream goes).
            let dropped = key_index::delete(c, stream_id, range)?;
            if dropped {
                key_index::mark_segments(c, stream_id, range.start_seg, range.end_seg, false)?;
            }
            Ok(dropped)
        }
    }
}
