//! Live-query touch in the service: one [`StreamTouch`] per touch-enabled stream (its
//! journal, hot interest, batch planner, templates and counters), fed by the processor
//! task ([`processor`]) and read by the routes ([`routes`]).
//!
//! A stream gets its state the first time a route or a commit needs it and keeps it while
//! its profile enables touch. The state is in memory only (ADR 0008): after a restart
//! every journal has a new epoch, and the processor starts at the tail.

pub mod processor;
pub mod routes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::engine::{ActivationLimiter, Heartbeats};
use crate::engine::{Engine, EngineError, StreamMeta};
use crate::profiles::touch::TouchConfig;
use crate::touch::derive::{ActiveTemplate, TemplateField};
use crate::touch::hot::{HotInterest, HotLimits};
use crate::touch::journal::{JournalConfig, TouchJournal};
use crate::touch::keys::Encoding;
use crate::touch::plan::{Planner, TouchMode};

/// Streams whose activation buckets and heartbeats are remembered at most.
const MAX_TRACKED_STREAMS: usize = 65_536;

/// An active template as the processor uses it.
#[derive(Debug, Clone)]
pub struct LiveTemplate {
    pub template: ActiveTemplate,
    /// Changes before this position are not touched through the template.
    pub active_from_pos: u64,
}

/// Monotonic totals of `touch/meta` (the processor's and the waits').
#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    pub scan_rows: u64,
    pub scan_batches: u64,
    pub scanned_but_emitted0_batches: u64,
    pub processed_delta: u64,
    pub touches_emitted: u64,
    pub touches_table: u64,
    pub touches_template: u64,
    pub fine_dropped_budget: u64,
    pub fine_skipped_cold_template: u64,
    pub fine_skipped_cold_key: u64,
    pub fine_skipped_template_bucket: u64,
    pub processor_errors: u64,
    pub wait_touched: u64,
    pub wait_timeout: u64,
    pub wait_stale: u64,
}

/// What the processor and the routes share about one stream, under one lock.
#[derive(Debug, Default)]
pub struct State {
    pub hot: HotInterest,
    pub planner: Planner,
    /// The next position to process (`None` only in a default-made state).
    pub next_pos: Option<u64>,
    /// `None`: to be loaded from storage before the next batch.
    pub templates: Option<Arc<Vec<LiveTemplate>>>,
    pub totals: Totals,
    pub mode: TouchMode,
    /// Restricted (template-granularity) touches already made in the current bucket.
    pub template_bucket: (i64, Vec<u32>),
    /// Last template GC (Unix ms).
    pub last_gc_ms: i64,
}

/// The touch state of one stream incarnation.
pub struct StreamTouch {
    pub id: i64,
    pub name: String,
    /// The stream's configuration generation this state was made for.
    pub config_gen: u64,
    pub cfg: TouchConfig,
    pub hot_limits: HotLimits,
    pub journal: Arc<TouchJournal>,
    flusher: tokio::task::JoinHandle<()>,
    state: Mutex<State>,
}

impl Drop for StreamTouch {
    fn drop(&mut self) {
        self.flusher.abort();
    }
}

impl StreamTouch {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn journal_config(cfg: &TouchConfig) -> JournalConfig {
    let m = &cfg.memory;
    JournalConfig {
        bucket_ms: m.bucket_ms,
        filter_pow2: m.filter_pow2,
        k: m.k,
        pending_max_keys: usize::try_from(m.pending_max_keys).unwrap_or(usize::MAX),
        key_index_max_keys: m.key_index_max_keys as usize,
        ..JournalConfig::default()
    }
}

/// Every stream's touch state.
pub struct TouchManager {
    engine: Engine,
    streams: Mutex<HashMap<i64, Arc<StreamTouch>>>,
    pub limiter: Arc<ActivationLimiter>,
    pub heartbeats: Heartbeats,
}

impl TouchManager {
    pub fn new(engine: Engine) -> TouchManager {
        TouchManager {
            engine,
            streams: Mutex::new(HashMap::new()),
            limiter: Arc::new(ActivationLimiter::new(MAX_TRACKED_STREAMS)),
            heartbeats: Heartbeats::new(MAX_TRACKED_STREAMS),
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<i64, Arc<StreamTouch>>> {
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The state of `meta`'s stream for configuration `cfg` (touch enabled), made if
    /// needed; a new state processes entries from position `start` on (the tail when a
    /// route makes it: entries committed before the state existed touch nothing, and a
    /// `settle=flush` after an append waits for the processor). A state of another
    /// configuration generation is replaced, keeping its journal (and so its epoch) when
    /// the journal's settings did not change, and its position.
    pub fn stream(&self, meta: &StreamMeta, cfg: &TouchConfig, start: u64) -> Arc<StreamTouch> {
        let gen = meta.settings.config_gen;
        let mut map = self.map();
        if let Some(st) = map.get(&meta.id) {
            if st.config_gen == gen {
                return st.clone();
            }
        }
        let old = map.remove(&meta.id);
        let journal = match &old {
            Some(o) if *o.journal.config() == journal_config(cfg) => o.journal.clone(),
            _ => Arc::new(TouchJournal::new(
                &journal_config(cfg),
                self.engine.clock().clone(),
            )),
        };
        let carried = old.map(|o| {
            let mut s = o.lock();
            State {
                hot: std::mem::take(&mut s.hot),
                next_pos: s.next_pos,
                totals: s.totals,
                ..State::default()
            }
        });
        let st = Arc::new(StreamTouch {
            id: meta.id,
            name: meta.name.clone().unwrap_or_default(),
            config_gen: gen,
            cfg: cfg.clone(),
            hot_limits: HotLimits::of(&cfg.memory),
            flusher: journal.spawn_flusher(),
            journal,
            state: Mutex::new(carried.unwrap_or_else(|| State {
                next_pos: Some(start),
                ..State::default()
            })),
        });
        map.insert(meta.id, st.clone());
        st
    }

    /// The state of stream `id`, if it has one.
    pub fn get(&self, id: i64) -> Option<Arc<StreamTouch>> {
        self.map().get(&id).cloned()
    }

    /// Forgets stream `id` (deleted, or touch turned off).
    pub fn forget(&self, id: i64) {
        let removed = self.map().remove(&id);
        if removed.is_some() {
            self.limiter.forget(id);
            self.heartbeats.forget_stream(id);
        }
    }

    /// Every stream with touch state.
    pub fn all(&self) -> Vec<Arc<StreamTouch>> {
        self.map().values().cloned().collect()
    }

    /// The active templates of `st`, loading them if needed.
    pub async fn templates(&self, st: &StreamTouch) -> Result<Arc<Vec<LiveTemplate>>, EngineError> {
        if let Some(t) = st.lock().templates.clone() {
            return Ok(t);
        }
        let rows = self.engine.active_templates(st.id).await?;
        let live: Vec<LiveTemplate> = rows
            .into_iter()
            .filter_map(|r| {
                let fields = r
                    .fields
                    .iter()
                    .zip(&r.encodings)
                    .map(|(name, enc)| {
                        Encoding::parse(enc).map(|encoding| TemplateField {
                            name: name.clone(),
                            encoding,
                        })
                    })
                    .collect::<Option<Vec<_>>>()?;
                // Rows that do not describe their own id (written by hand, or by another
                // derivation) are ignored, as the original ignores malformed rows.
                let template = ActiveTemplate::new(r.entity, fields);
                (template.id == r.id).then_some(LiveTemplate {
                    template,
                    active_from_pos: r.active_from_pos,
                })
            })
            .collect();
        let live = Arc::new(live);
        st.lock().templates = Some(live.clone());
        Ok(live)
    }
}
