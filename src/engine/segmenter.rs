//! The segmenter: cuts streams' committed entries into immutable segment files.
//!
//! Every `DS_SEGMENT_CHECK_MS` it asks SQLite for streams with enough unsealed entries
//! (`DS_SEGMENT_TARGET_ROWS`), bytes (`DS_SEGMENT_MAX_BYTES`) or age
//! (`DS_SEGMENT_MAX_INTERVAL_MS`). For each it streams the entries from a read connection
//! into `<key>.tmp`, fsyncs, renames, and then asks the writer to record the segment. If
//! the writer says the segment no longer fits (the stream was deleted or re-created), the
//! file is removed. A crash leaves at most a `.tmp` file (removed at start) or an unrecorded
//! final file (overwritten by the next cut of the same index).

use std::io::BufWriter;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::db::segments::SegmentRow;
use super::segment::builder::SegmentBuilder;
use super::tier::Tier;
use super::TierCmd;
use super::{db, Engine, EngineError, StreamMeta};
use crate::telemetry::metrics::metrics;

const CANDIDATES_PER_TICK: usize = 8;
const ZSTD_LEVEL: i32 = 3;

pub async fn run(engine: Engine, tier: Arc<Tier>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(tier.cfg.segment_check_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        // Keep cutting while there is work, so a backlog drains faster than one cut a tick.
        loop {
            match seal_round(&engine, &tier).await {
                Ok(0) => break,
                Ok(_) if *stop.borrow() => return,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "segmenter round failed");
                    break;
                }
            }
        }
    }
}

/// Seals one segment for each candidate stream; returns how many were sealed.
pub async fn seal_round(engine: &Engine, tier: &Arc<Tier>) -> Result<usize, EngineError> {
    let cfg = tier.cfg.clone();
    let now = engine.clock().now_ms();
    let candidates = engine
        .reader()
        .run_background(move |c| {
            db::streams::seal_candidates(
                c,
                cfg.segment_target_rows,
                cfg.segment_max_bytes,
                cfg.segment_max_interval_ms,
                now,
                CANDIDATES_PER_TICK,
            )
        })
        .await?;
    let mut sealed = 0;
    for m in candidates {
        match seal_one(engine, tier, m).await {
            Ok(true) => sealed += 1,
            Ok(false) => {}
            Err(e) => {
                metrics().segment_failures.inc();
                tracing::warn!(error = %e, "sealing a segment failed")
            }
        }
    }
    Ok(sealed)
}

async fn seal_one(engine: &Engine, tier: &Arc<Tier>, m: StreamMeta) -> Result<bool, EngineError> {
    let t = tier.clone();
    let now = engine.clock().now_ms();
    let built = engine
        .reader()
        .run_background(move |c| build(c, &t, &m, now))
        .await?;
    let Some(Built {
        seg,
        payload_bytes,
        key,
    }) = built
    else {
        return Ok(false);
    };
    let size = seg.size_bytes;
    let applied = engine
        .tier_cmd(TierCmd::Sealed { seg, payload_bytes })
        .await?;
    if applied {
        metrics().segments_sealed.inc();
        metrics().segment_bytes.add(size);
    } else {
        let _ = std::fs::remove_file(tier.local_path(&key));
    }
    Ok(applied)
}

/// A segment file written and ready to be recorded.
struct Built {
    seg: SegmentRow,
    payload_bytes: u64,
    key: String,
}

fn io_err(e: std::io::Error) -> EngineError {
    EngineError::io("segment write", e)
}

/// Writes the next segment of `m` from SQLite; `None` if there is nothing to seal.
fn build(
    c: &rusqlite::Connection,
    tier: &Tier,
    m: &StreamMeta,
    now: i64,
) -> Result<Option<Built>, EngineError> {
    let index = db::segments::next_index(c, m.id)?;
    let key = Tier::key(&m.config.incarnation, index);
    let path = tier.local_path(&key);
    let tmp = path.with_extension("seg.tmp");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_err)?;
    }
    let file = std::fs::File::create(&tmp).map_err(io_err)?;
    let mut b = SegmentBuilder::to_writer(
        BufWriter::new(file),
        m.tier.sealed_pos,
        tier.cfg.block_max_bytes,
        ZSTD_LEVEL,
    );
    let max_rows = tier.cfg.segment_target_rows;
    let max_bytes = tier.cfg.segment_max_bytes;
    let mut io_failure = None;
    let mut expect = m.tier.sealed_pos;
    db::entries::scan(
        c,
        m.id,
        m.tier.sealed_pos,
        m.tail.next_pos,
        |pos, data, key, ts| {
            if pos != expect {
                return false;
            }
            if let Err(e) = b.push(key, data, ts) {
                io_failure = Some(e);
                return false;
            }
            expect += 1;
            b.records() < max_rows && b.payload_bytes() < max_bytes
        },
    )?;
    if let Some(e) = io_failure {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(e));
    }
    if b.records() == 0 {
        let _ = std::fs::remove_file(&tmp);
        return Ok(None);
    }
    let payload = b.payload_bytes();
    let end = m.tier.sealed_pos + b.records();
    let (w, size, blocks) = b.finish_into().map_err(io_err)?;
    let file = w.into_inner().map_err(|e| io_err(e.into_error()))?;
    file.sync_all().map_err(io_err)?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(io_err)?;
    if let Some(dir) = path.parent() {
        // Make the rename itself durable.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    let seg = SegmentRow {
        stream_id: m.id,
        index,
        start_pos: m.tier.sealed_pos,
        end_pos: end,
        size_bytes: size,
        block_count: blocks,
        created_at_ms: now,
        uploaded_at_ms: None,
        etag: None,
    };
    Ok(Some(Built {
        seg,
        payload_bytes: payload,
        key,
    }))
}
