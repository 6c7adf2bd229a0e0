//! Listing a stream's routing keys (`_routing_keys`).
//!
//! Compaction records every non-empty key of a stream in `stream_keys`, which outlives the
//! entries that move to segments; the keys of appends not compacted yet are in the
//! memtable. A node rebuilt from the object store starts with `keys_complete = 0` on its
//! streams: the first listing then records the keys of every segment once, from the
//! restored routing-key index runs where they cover it, else by reading the segment.
//! Keys are listed in byte order (UTF-8 code point order). A fork lists its sources' keys
//! too (possibly some that only appear after the fork point).

use bytes::Bytes;

use super::db::{self, entries};
use super::writer::Submit;
use super::{Engine, EngineError, StreamMeta};

/// One page of a stream's routing keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPage {
    pub keys: Vec<Bytes>,
    /// More keys follow the last one.
    pub more: bool,
    /// Segments read because their keys were not recorded yet.
    pub scanned_segments: usize,
}

impl Engine {
    /// Up to `limit` routing keys of `meta` greater than `after`, in byte order.
    pub async fn routing_keys(
        &self,
        meta: &StreamMeta,
        after: Option<Bytes>,
        limit: usize,
    ) -> Result<KeyPage, EngineError> {
        let m = meta.clone();
        let parts = self
            .reader()
            .run(move |c| {
                let parts = super::reader::chain(c, &m)?;
                Ok::<_, rusqlite::Error>(
                    parts
                        .into_iter()
                        .map(|(p, _, _)| (p.id, p.config.incarnation, p.keys_complete))
                        .collect::<Vec<_>>(),
                )
            })
            .await?;
        let mut scanned = 0;
        for (pid, inc, complete) in &parts {
            if !complete {
                scanned += self.record_segment_keys(*pid, inc).await?;
            }
        }
        let ids: Vec<i64> = parts.iter().map(|(p, _, _)| *p).collect();
        let want = limit.saturating_add(1);
        let after2 = after.clone();
        let mut keys: Vec<Bytes> = self
            .reader()
            .run(move |c| {
                let mut all = Vec::new();
                for pid in ids {
                    all.extend(entries::keys_after(c, pid, after2.as_deref(), want)?);
                }
                Ok::<_, rusqlite::Error>(all)
            })
            .await?
            .into_iter()
            .map(Bytes::from)
            .collect();
        {
            let tails = self.memtable().lock();
            for (pid, _, _) in &parts {
                keys.extend(
                    tails
                        .keys(*pid)
                        .into_iter()
                        .filter(|k| after.as_ref().is_none_or(|a| k > a)),
                );
            }
        }
        keys.sort();
        keys.dedup();
        let more = keys.len() > limit;
        keys.truncate(limit);
        Ok(KeyPage {
            keys,
            more,
            scanned_segments: scanned,
        })
    }

    /// Reads the keys of every segment of incarnation `id` and records them with the
    /// stream as complete; returns how many segments were read.
    async fn record_segment_keys(&self, id: i64, incarnation: &str) -> Result<usize, EngineError> {
        let Some(tier) = self.tier() else {
            return Ok(0);
        };
        let (segs, runs) = self
            .reader()
            .run(move |c| {
                Ok::<_, rusqlite::Error>((
                    db::segments::of_stream(c, id)?,
                    db::key_index::of_stream(c, id)?,
                ))
            })
            .await?;
        let mut keys = std::collections::BTreeSet::new();
        // Segments covered by a routing-key index run that verifies take their keys from
        // it; the others are read.
        let mut from_runs = std::collections::HashSet::new();
        let mut n = 0;
        for seg in &segs {
            let covering = runs
                .iter()
                .filter(|r| r.range.contains(seg.index))
                .max_by_key(|r| r.range.level);
            if let Some(r) = covering {
                if from_runs.contains(&r.range) {
                    continue;
                }
                if let Some(run) = tier
                    .key_index
                    .run(&tier.store, id, incarnation, r.range)
                    .await
                {
                    // Routing keys are the index keys tagged 0 (the others are search
                    // terms).
                    keys.extend(
                        run.keys()
                            .into_iter()
                            .filter_map(|k| k.strip_prefix(&[0u8][..]).map(<[u8]>::to_vec)),
                    );
                    from_runs.insert(r.range);
                    continue;
                }
            }
            keys.extend(tier.keys(self.reader(), incarnation, seg).await?);
            n += 1;
        }
        self.writer()
            .call(Submit::internal(), move |b| {
                for k in &keys {
                    entries::add_key(b.conn()?, id, k)?;
                }
                db::streams::set_keys_complete(b.conn()?, id)?;
                Ok::<_, EngineError>(())
            })
            .await?;
        Ok(n)
    }
}
