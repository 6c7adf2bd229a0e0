//! The uploader: puts sealed segments into the object store, publishes manifests, and
//! deletes the objects of removed incarnations.
//!
//! Each round (every `DS_UPLOAD_CHECK_MS`):
//! 1. upload segments not uploaded yet (`DS_UPLOAD_CONCURRENCY` at a time), then record
//!    them all in one writer operation;
//! 2. for every stream whose manifest is out of date, publish a manifest covering the
//!    contiguous uploaded prefix (conditional PUTs, `DS_UPLOAD_CONCURRENCY` at a time),
//!    then record them all in one writer operation (one commit per round, not per
//!    object), which moves each `uploaded_pos` and deletes the covered entries from SQLite.
//!    A new stream is not out of date: its first manifest goes out with its first uploaded
//!    segment, or, if it has none, once it is `DS_SEGMENT_MAX_INTERVAL_MS` old (twice that
//!    if it has entries none of which has been uploaded). Until then the object store has
//!    nothing of it, as it has nothing yet of any stream's entries younger than their
//!    segment; one manifest per new stream is saved, and a burst of creates does not
//!    become a burst of object writes competing with the appends that follow it;
//! 3. delete the object folders queued by stream removals (manifest first, so a node
//!    rebuilt meanwhile never resurrects a half-deleted stream), and the single objects
//!    queued by the routing-key indexer (runs replaced by their parent).
//!
//! Failures are retried by the store wrapper; what still fails waits for the next round,
//! with a per-stream backoff. Appends never wait for any of this.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use tokio::sync::watch;
use tokio::time::Instant;

use super::db::segments::SegmentRow;
use super::manifest::Manifest;
use super::tier::Tier;
use super::TierCmd;
use super::{db, Engine, EngineError, StreamMeta};
use crate::objstore::{keys, StoreError};
use crate::telemetry::metrics::metrics;

const BATCH: usize = 256;

/// Per-stream exponential backoff after failures.
#[derive(Default)]
struct Backoff {
    until: HashMap<i64, (Instant, u32)>,
}

impl Backoff {
    fn blocked(&self, id: i64) -> bool {
        self.until
            .get(&id)
            .is_some_and(|(t, _)| crate::clock::now() < *t)
    }
    fn fail(&mut self, id: i64) {
        let n = self.until.get(&id).map_or(0, |(_, n)| *n) + 1;
        let ms = (500u64 << (n - 1).min(7)).min(60_000);
        self.until
            .insert(id, (crate::clock::now() + Duration::from_millis(ms), n));
    }
    fn ok(&mut self, id: i64) {
        self.until.remove(&id);
    }
}

pub async fn run(engine: Engine, tier: Arc<Tier>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(tier.cfg.upload_check_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut backoff = Backoff::default();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if let Err(e) = round(&engine, &tier, &mut backoff).await {
            tracing::warn!(error = %e, "upload round failed");
        }
    }
}

/// One upload round; returns how many segments and manifests it wrote.
async fn round(
    engine: &Engine,
    tier: &Arc<Tier>,
    backoff: &mut Backoff,
) -> Result<usize, EngineError> {
    let uploaded = upload_segments(engine, tier, backoff).await?;
    let published = publish_manifests(engine, tier, backoff).await?;
    collect_garbage(engine, tier).await?;
    Ok(uploaded + published)
}

/// Uploads the segments not uploaded yet and records them in one commit; returns how
/// many it uploaded.
async fn upload_segments(
    engine: &Engine,
    tier: &Arc<Tier>,
    backoff: &mut Backoff,
) -> Result<usize, EngineError> {
    let pending = engine
        .reader()
        .run_background(|c| db::segments::not_uploaded(c, BATCH))
        .await?;
    let met = metrics();
    met.segments_waiting.set(pending.len() as i64);
    let mut work: Vec<(SegmentRow, String)> = Vec::new();
    for seg in pending {
        if backoff.blocked(seg.stream_id) {
            continue;
        }
        let id = seg.stream_id;
        let inc = engine
            .reader()
            .run_background(move |c| db::streams::by_id(c, id))
            .await?
            .map(|m| m.config.incarnation);
        if let Some(inc) = inc {
            work.push((seg, inc));
        }
    }
    let results: Vec<(SegmentRow, Result<Option<String>, StoreError>)> =
        futures_util::stream::iter(work.into_iter().map(|(seg, inc)| {
            let tier = tier.clone();
            async move {
                let key = Tier::key(&inc, seg.index);
                let r = tier.store.put_file(&key, &tier.local_path(&key)).await;
                (seg, r)
            }
        }))
        .buffer_unordered(tier.cfg.upload_concurrency)
        .collect()
        .await;
    let mut uploaded = Vec::new();
    for (seg, r) in results {
        match r {
            Ok(etag) => {
                met.uploads.inc();
                met.upload_bytes.add(seg.size_bytes);
                met.segments_waiting.add(-1);
                uploaded.push(TierCmd::Uploaded {
                    stream_id: seg.stream_id,
                    index: seg.index,
                    etag,
                });
            }
            Err(e) => {
                met.upload_failures.inc();
                tracing::warn!(error = %e, stream = seg.stream_id, segment = seg.index, "segment upload failed");
                backoff.fail(seg.stream_id);
            }
        }
    }
    // One commit records them all.
    Ok(engine.tier_cmds(uploaded).await?.len())
}

/// Publishes the out-of-date manifests, then the first manifests that are due, and
/// records them in one commit; returns how many it published.
async fn publish_manifests(
    engine: &Engine,
    tier: &Arc<Tier>,
    backoff: &mut Backoff,
) -> Result<usize, EngineError> {
    let met = metrics();
    let interval = i64::try_from(tier.cfg.segment_max_interval_ms).unwrap_or(i64::MAX);
    let now = engine.clock().now_ms();
    let empty_before = now.saturating_sub(interval);
    let any_before = empty_before.saturating_sub(interval);
    let due = engine
        .reader()
        .run_background(move |c| {
            let mut due = db::streams::manifest_dirty(c, BATCH)?;
            if due.len() < BATCH {
                let first = db::streams::first_manifest_due(
                    c,
                    empty_before,
                    any_before,
                    BATCH - due.len(),
                )?;
                due.extend(first);
            }
            Ok::<_, rusqlite::Error>(due)
        })
        .await?;
    let todo: Vec<StreamMeta> = due.into_iter().filter(|m| !backoff.blocked(m.id)).collect();
    let puts: Vec<(i64, Result<Publication, EngineError>)> =
        futures_util::stream::iter(todo.into_iter().map(|m| async move {
            let id = m.id;
            (id, publish(engine, tier, m).await)
        }))
        .buffer_unordered(tier.cfg.upload_concurrency)
        .collect()
        .await;
    // What to record, and for each: the stream and its segments' cache keys.
    let mut cmds = Vec::new();
    let mut put = Vec::new();
    for (id, r) in puts {
        match r {
            Ok(p) => {
                cmds.push(p.cmd);
                put.push((id, p.segment_keys));
            }
            Err(e) => {
                met.manifest_failures.inc();
                tracing::warn!(error = %e, stream = id, "manifest publish failed");
                backoff.fail(id);
            }
        }
    }
    // The round's publications are recorded in one commit. If it fails, each manifest is
    // published again later: its conditional PUT then finds our own newer object and
    // adopts it (see `publish`).
    match engine.tier_cmds(cmds).await {
        Ok(applied) => {
            let published = put.len();
            for ((id, keys), applied) in put.into_iter().zip(applied) {
                met.manifests_published.inc();
                backoff.ok(id);
                if applied {
                    for k in &keys {
                        tier.cache_insert(k);
                    }
                }
            }
            Ok(published)
        }
        Err(e) => {
            tracing::warn!(error = %e, streams = put.len(), "recording published manifests failed");
            for (id, _) in put {
                met.manifest_failures.inc();
                backoff.fail(id);
            }
            Ok(0)
        }
    }
}

/// Deletes the objects queued by stream removals and the key indexer.
async fn collect_garbage(engine: &Engine, tier: &Arc<Tier>) -> Result<(), EngineError> {
    let gc = engine
        .reader()
        .run_background(|c| db::object_gc::pending(c, BATCH))
        .await?;
    for (id, prefix) in gc {
        // A folder (a removed incarnation) ends with `/`; anything else is one object
        // (a routing-key index run replaced by its parent).
        let deleted = if prefix.ends_with('/') {
            delete_prefix(tier, &prefix).await
        } else {
            tier.store.delete(&prefix).await.map_err(store)
        };
        match deleted {
            Ok(()) => {
                engine.tier_cmd(TierCmd::GcDone { id }).await?;
            }
            Err(e) => {
                tracing::warn!(error = %e, prefix, "deleting a removed stream's objects failed")
            }
        }
    }
    Ok(())
}

/// A manifest put in the object store, to be recorded by the writer.
struct Publication {
    cmd: TierCmd,
    /// The cache keys of the segments it covers: cached once the record applied.
    segment_keys: Vec<String>,
}

/// Puts the manifest of `m` for its contiguous uploaded prefix; the caller records it.
async fn publish(
    engine: &Engine,
    tier: &Arc<Tier>,
    m: StreamMeta,
) -> Result<Publication, EngineError> {
    let id = m.id;
    let source = m.config.fork.map(|f| f.source_id);
    let (segs, source_inc, settings) = engine
        .reader()
        .run_background(move |c| {
            let tx = c.unchecked_transaction()?;
            let segs = db::segments::of_stream(&tx, id)?;
            let inc = match source {
                Some(s) => db::streams::by_id(&tx, s)?.map(|s| s.config.incarnation),
                None => None,
            };
            let settings = db::config::snapshot(&tx, id)?;
            tx.finish()?;
            Ok::<_, rusqlite::Error>((segs, inc, settings))
        })
        .await?;
    let (config_gen, settings) = settings;
    let settings = settings
        .map(|s| s.into_manifest())
        .transpose()
        .map_err(|e| EngineError::Corrupt(format!("stored settings of stream {id}: {e}")))?;
    let prefix: Vec<SegmentRow> = segs
        .into_iter()
        .enumerate()
        .take_while(|(i, s)| s.index == *i as u64 && s.uploaded_at_ms.is_some())
        .map(|(_, s)| s)
        .collect();
    let generation = m.tier.manifest_generation + 1;
    let manifest = Manifest::build(&m, generation, &prefix, source_inc, settings);
    let key = keys::manifest(&keys::stream_prefix(&m.config.incarnation));
    let body = Bytes::from(manifest.encode());
    let etag = match tier
        .store
        .put_conditional(&key, body.clone(), m.tier.manifest_etag.clone())
        .await
    {
        Ok(t) => t,
        Err(StoreError::Precondition(_)) => {
            // The object is not the one we last recorded: after a crash between a PUT and
            // its record, it is our own newer write. Adopt it only if it is.
            let current = Manifest::decode(&tier.store.get(&key).await.map_err(store)?)
                .map_err(|e| EngineError::Corrupt(format!("manifest {key}: {e}")))?;
            if current.incarnation != m.config.incarnation
                || current.generation < m.tier.manifest_generation
            {
                return Err(EngineError::Corrupt(format!(
                    "manifest {key} was changed by another writer (generation {})",
                    current.generation
                )));
            }
            let head = tier.store.head(&key).await.map_err(store)?;
            tier.store
                .put_conditional(&key, body, head.e_tag)
                .await
                .map_err(store)?
        }
        Err(e) => return Err(store(e)),
    };
    Ok(Publication {
        cmd: TierCmd::Published {
            stream_id: id,
            generation,
            etag,
            uploaded_pos: manifest.end_pos,
            base_generation: m.tier.manifest_generation,
            published: (manifest.closed, manifest.deleted, config_gen),
        },
        segment_keys: prefix
            .iter()
            .map(|s| Tier::key(&m.config.incarnation, s.index))
            .collect(),
    })
}

fn store(e: StoreError) -> EngineError {
    e.into()
}

async fn delete_prefix(tier: &Arc<Tier>, prefix: &str) -> Result<(), EngineError> {
    tier.store
        .delete(&keys::manifest(prefix))
        .await
        .map_err(store)?;
    for key in tier.store.list(prefix).await.map_err(store)? {
        tier.store.delete(&key).await.map_err(store)?;
    }
    let dir = tier.local_dir(prefix);
    tier.cache_forget_dir(&dir);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(EngineError::io(format!("remove {}", dir.display()), e)),
    }
}

/// At start: uploaded segments whose files are on disk join the cache (and the cache is
/// trimmed to its cap).
pub async fn warm_cache(engine: &Engine, tier: &Arc<Tier>) -> Result<(), EngineError> {
    let keys: Vec<String> = engine
        .reader()
        .run_background(|c| {
            let mut stmt = c.prepare(
                "SELECT s.incarnation, g.seg_index FROM segments g JOIN streams s ON s.id = g.stream_id \
                 WHERE g.uploaded_at_ms IS NOT NULL AND g.start_pos < s.uploaded_pos",
            )?;
            let rows = stmt.query_map([], |r| Ok(Tier::key(&r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?;
            rows.collect()
        })
        .await?;
    for k in keys {
        tier.cache_insert(&k);
    }
    Ok(())
}
