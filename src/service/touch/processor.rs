//! The touch processor: one task that follows the engine's commit feed and turns the
//! State Protocol changes committed to touch-enabled streams into journal touches.
//!
//! For each change it touches the entity's **table key** (always: the guaranteed wake)
//! and, when the batch plan allows fine touches (`touch::plan`), the fine keys of every
//! active template of that entity (`touch::derive`) or, degraded, one template key per
//! template and bucket. Fine keys nobody waits for are skipped while key filtering is on,
//! templates nobody uses while template filtering is on, and new fine keys beyond the
//! batch's budget are dropped (counted in `touch/meta`).
//!
//! A commit's entries arrive with it, so the processor reads nothing in the common case.
//! When it falls behind the feed (or finds a gap), it reads the missing range of each
//! touch stream from storage. Streams without touch cost a cached lookup per commit.
//!
//! Unlike the original, a change the stream's `onMissingBefore: "error"` policy refuses
//! does not stop the stream's processing forever: its table key is still touched, the
//! error is counted (`processorErrorsTotal`) and logged, and processing goes on.
//!
//! The same loop runs the templates' upkeep once a second: heartbeats (`templateIdsUsed`)
//! are persisted at most every `lastSeenPersistIntervalMs`, and templates idle for their
//! inactivity TTL are retired every `gcIntervalMs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{LiveTemplate, StreamTouch};
use crate::engine::{CommitFeed, FeedEvent, ReadLimits, StreamChange};
use crate::profiles::state_protocol::{validate_state_protocol, ChangeRecord};
use crate::service::StreamService;
use crate::touch::derive::fine_keys;
use crate::touch::keys;
use crate::touch::plan::Granularity;

/// Entries read per storage read while catching up.
const CATCH_UP_RECORDS: usize = 500;
const CATCH_UP_BYTES: usize = 4 << 20;
/// Streams remembered as not touch-enabled (by configuration generation) at most.
const MAX_OFF: usize = 100_000;

/// Runs until `stop` turns true or the engine stops. `feed` is subscribed by the caller
/// before the server accepts requests, so no commit is missed.
pub async fn run(service: StreamService, mut feed: CommitFeed, mut stop: watch::Receiver<bool>) {
    let mut p = Processor {
        service,
        off: HashMap::new(),
    };
    let mut upkeep = tokio::time::interval(Duration::from_secs(1));
    upkeep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            ev = feed.next() => match ev {
                FeedEvent::Commit(c) => {
                    for s in &c.streams {
                        p.change(&s.change).await;
                    }
                }
                FeedEvent::Missed(n) => {
                    tracing::debug!(missed = n, "touch processor fell behind; catching up from storage");
                    p.catch_up_all().await;
                }
                FeedEvent::Closed => return,
            },
            _ = upkeep.tick() => p.upkeep().await,
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
        }
    }
}

struct Processor {
    service: StreamService,
    /// Streams known not to have touch, with the configuration generation that said so.
    off: HashMap<i64, u64>,
}

impl Processor {
    fn manager(&self) -> &super::TouchManager {
        self.service.touch()
    }

    /// The touch state of a committed stream, or `None` when its profile has no touch.
    async fn state_for(&mut self, change: &StreamChange) -> Option<Arc<StreamTouch>> {
        let name = change.name.as_deref()?;
        let cached_gen = self.service.engine().cached_config_gen(name);
        if let Some(gen) = cached_gen {
            if self.off.get(&change.id) == Some(&gen) {
                return None;
            }
            if let Some(st) = self.manager().get(change.id) {
                if st.config_gen == gen {
                    return Some(st);
                }
            }
        }
        let meta = self.service.live(name).await.ok()?;
        if meta.id != change.id {
            return None; // a newer incarnation took the name
        }
        let settings = self.service.settings(&meta).await.ok()?;
        match settings.profile.touch_config() {
            Some(cfg) => {
                self.off.remove(&meta.id);
                Some(self.manager().stream(&meta, cfg, change.first_pos))
            }
            None => {
                self.manager().forget(meta.id);
                if self.off.len() >= MAX_OFF {
                    self.off.clear();
                }
                self.off.insert(meta.id, meta.settings.config_gen);
                None
            }
        }
    }

    async fn change(&mut self, change: &StreamChange) {
        if change.gone {
            self.off.remove(&change.id);
            self.manager().forget(change.id);
            return;
        }
        if change.entries.is_empty() {
            return;
        }
        let Some(st) = self.state_for(change).await else {
            return;
        };
        // Entries before this commit that the state has not seen (the feed skipped
        // commits): read them first.
        let behind = st.lock().next_pos.is_some_and(|n| n < change.first_pos);
        if behind {
            self.catch_up(&st, change.first_pos).await;
        }
        let items = change
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (change.first_pos + i as u64, &e.data[..]));
        self.batch(&st, items, change.next_pos, change.next_pos)
            .await;
    }

    async fn catch_up_all(&mut self) {
        for st in self.manager().all() {
            let tail = match self.service.live(&st.name).await {
                Ok(m) if m.id == st.id => m.tail.next_pos,
                _ => {
                    self.manager().forget(st.id);
                    continue;
                }
            };
            self.catch_up(&st, tail).await;
        }
    }

    /// Processes `st`'s entries from its position up to `to`, read from storage.
    async fn catch_up(&mut self, st: &Arc<StreamTouch>, to: u64) {
        let Ok(meta) = self.service.live(&st.name).await else {
            return;
        };
        loop {
            let Some(from) = st.lock().next_pos.filter(|&n| n < to) else {
                return;
            };
            let limits = ReadLimits {
                max_bytes: CATCH_UP_BYTES,
                max_records: CATCH_UP_RECORDS,
                key: None,
                filter: None,
            };
            let page = match self.service.engine().read(&meta, from, limits).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(stream = %st.name, error = %e, "touch processor cannot read the stream");
                    return;
                }
            };
            if page.entries.is_empty() {
                // Below the tail, nothing readable any more (removed by retention): skip
                // the range. At the tail, the entries are still to come through the feed.
                if from < meta.tail.next_pos {
                    st.lock().next_pos = Some(to.min(meta.tail.next_pos));
                }
                return;
            }
            let items = page.positions.iter().copied().zip(page.entries.iter());
            self.batch(st, items, page.next_pos, meta.tail.next_pos.max(to))
                .await;
        }
    }

    /// Processes one batch of `(position, record)` of `st` ending before `end`, `tail`
    /// being the stream's tail: what lies beyond the batch is its lag (0 when the batch
    /// catches up, which lets the journal flush fastest).
    async fn batch<'a>(
        &mut self,
        st: &Arc<StreamTouch>,
        items: impl Iterator<Item = (u64, &'a [u8])>,
        end: u64,
        tail: u64,
    ) {
        let templates = match self.manager().templates(st).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(stream = %st.name, error = %e, "touch processor cannot load templates");
                Arc::new(Vec::new())
            }
        };
        let now_ms = self.service.engine().clock().now_ms();
        {
            let mut s = st.lock();
            let Some(start) = s.next_pos else {
                return;
            };
            let hot = s.hot.counts();
            let plan = s
                .planner
                .plan(&st.cfg, &hot, tail.saturating_sub(end.max(start)), now_ms);
            st.journal.set_coalesce_ms(plan.coalesce_ms);
            let mut b = Batch::new(&st.cfg, plan.fine_budget);
            let mut last = None;
            let mut rows = 0u64;
            for (pos, data) in items {
                if pos < start {
                    continue;
                }
                rows += 1;
                last = Some(pos);
                let Some(change) = parse(data) else {
                    continue;
                };
                b.table(keys::table_key(&change.entity), pos);
                if !plan.emit_fine {
                    continue;
                }
                for t in templates.iter() {
                    if t.template.entity != change.entity || pos < t.active_from_pos {
                        continue;
                    }
                    if hot.template_filtering && !s.hot.is_hot_template(t.template.id) {
                        s.totals.fine_skipped_cold_template += 1;
                        continue;
                    }
                    match plan.granularity {
                        Granularity::Template => b.template(t, pos, now_ms, &mut s),
                        Granularity::Key => {
                            match fine_keys(&change, &t.template, st.cfg.on_missing_before) {
                                Ok(fine) => {
                                    for k in fine {
                                        let id = k.id();
                                        if hot.key_filtering && !s.hot.is_hot_key(id) {
                                            s.totals.fine_skipped_cold_key += 1;
                                            continue;
                                        }
                                        b.fine(id, k.key, pos);
                                    }
                                }
                                Err(e) => {
                                    s.totals.processor_errors += 1;
                                    tracing::warn!(stream = %st.name, position = pos, error = %e, "touch: change refused by onMissingBefore=error");
                                }
                            }
                        }
                    }
                }
            }
            let Some(last) = last else {
                return;
            };
            // Touched under the state lock, with the position: `touch/meta` reads both under
            // it, so it never sees the position advanced before the touches are pending.
            st.journal.touch_all(b.touches.iter().copied());
            s.planner
                .tokens
                .refund(plan.fine_budget, b.fine_used, &st.cfg);
            s.next_pos = Some(last + 1);
            s.mode = plan.mode;
            let t = &mut s.totals;
            t.scan_rows += rows;
            t.scan_batches += 1;
            t.processed_delta += last + 1 - start;
            t.touches_emitted += b.touches.len() as u64;
            t.touches_table += b.table_count;
            t.touches_template += b.touches.len() as u64 - b.table_count;
            t.fine_dropped_budget += b.dropped;
            if b.touches.is_empty() {
                t.scanned_but_emitted0_batches += 1;
            }
        }
    }

    /// Heartbeats due for persistence, and template GC.
    async fn upkeep(&mut self) {
        let engine = self.service.engine().clone();
        let now_ms = engine.clock().now_ms();
        for st in self.manager().all() {
            let t = &st.cfg.templates;
            let seen =
                self.manager()
                    .heartbeats
                    .due_for(st.id, now_ms, t.last_seen_persist_interval_ms);
            if !seen.is_empty() {
                if let Err(e) = engine.touch_templates_seen(st.id, seen).await {
                    tracing::warn!(stream = %st.name, error = %e, "cannot persist template heartbeats");
                }
            }
            let gc_due = {
                let mut s = st.lock();
                let due = (now_ms - s.last_gc_ms) as f64 >= t.gc_interval_ms;
                if due {
                    s.last_gc_ms = now_ms;
                }
                due
            };
            if !gc_due {
                continue;
            }
            // Fresher in-memory last-seen times first, so a template heartbeated since its
            // last persistence is not retired.
            let fresh = self.manager().heartbeats.for_stream(st.id);
            if !fresh.is_empty() {
                let _ = engine.touch_templates_seen(st.id, fresh).await;
            }
            match engine
                .retire_inactive_templates(st.id, crate::engine::TEMPLATE_GC_LIMIT)
                .await
            {
                Ok(retired) if !retired.is_empty() => {
                    let ids: Vec<u64> = retired.iter().map(|r| r.id).collect();
                    self.manager().heartbeats.forget(st.id, &ids);
                    st.lock().templates = None;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(stream = %st.name, error = %e, "template GC failed");
                }
            }
        }
    }
}

/// A stored record as a change, if it is one (control records and anything that does
/// not validate, e.g. written before the profile was set, touch nothing).
fn parse(data: &[u8]) -> Option<ChangeRecord> {
    let v: serde_json::Value = serde_json::from_slice(data).ok()?;
    match validate_state_protocol(&v).ok()? {
        crate::profiles::state_protocol::StateRecord::Change(c) => Some(*c),
        crate::profiles::state_protocol::StateRecord::Control(_) => None,
    }
}

/// The touches of one batch, de-duplicated, with the fine budget.
struct Batch {
    touches: Vec<(u32, Option<u64>, u64)>,
    /// Index in `touches` of each key id touched, so a key is touched once per batch
    /// (with the newest position).
    seen: HashMap<u32, usize>,
    table_count: u64,
    budget: u64,
    fine_used: u64,
    dropped: u64,
    bucket_ms: i64,
}

impl Batch {
    fn new(cfg: &crate::profiles::touch::TouchConfig, budget: u64) -> Batch {
        Batch {
            touches: Vec::new(),
            seen: HashMap::new(),
            table_count: 0,
            budget,
            fine_used: 0,
            dropped: 0,
            bucket_ms: i64::try_from(cfg.memory.bucket_ms.max(1)).unwrap_or(i64::MAX),
        }
    }

    fn put(&mut self, id: u32, key: u64, pos: u64) -> bool {
        if let Some(&i) = self.seen.get(&id) {
            self.touches[i].2 = pos;
            return false;
        }
        self.seen.insert(id, self.touches.len());
        self.touches.push((id, Some(key), pos));
        true
    }

    fn table(&mut self, key: u64, pos: u64) {
        if self.put(keys::key_id(key), key, pos) {
            self.table_count += 1;
        }
    }

    /// A fine key: new keys take from the budget; beyond it they are dropped.
    fn fine(&mut self, id: u32, key: u64, pos: u64) {
        if self.seen.contains_key(&id) {
            self.put(id, key, pos);
            return;
        }
        if self.fine_used >= self.budget {
            self.dropped += 1;
            return;
        }
        self.fine_used += 1;
        self.put(id, key, pos);
    }

    /// A template key at template granularity: once per bucket window per stream.
    fn template(&mut self, t: &LiveTemplate, pos: u64, now_ms: i64, s: &mut super::State) {
        let key = t.template.template_key();
        let id = keys::key_id(key);
        let window = now_ms / self.bucket_ms;
        if s.template_bucket.0 != window {
            s.template_bucket = (window, Vec::new());
        }
        if s.template_bucket.1.contains(&id) && !self.seen.contains_key(&id) {
            s.totals.fine_skipped_template_bucket += 1;
            return;
        }
        if !s.template_bucket.1.contains(&id) {
            s.template_bucket.1.push(id);
        }
        self.fine(id, key, pos);
    }
}
