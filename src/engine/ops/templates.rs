//! Live-query templates of touch-enabled streams (`POST …/touch/templates/activate`, the
//! touch processor's template list, wait heartbeats and template GC).
//!
//! A template names an entity and one to three of its fields, each with an argument
//! encoding; the touch processor derives fine touches only for active templates, and
//! only for entries at or after the position at which the template was (re)activated
//! (no backfill). Templates are durable (`live_templates`) so that a restart keeps the
//! set clients declared; they retire after their inactivity TTL and are evicted, least
//! recently seen first, when an entity or the stream has more than its cap.
//!
//! Activation runs in the writer, against the stream's tail position in the same
//! transaction. Everything that is not durable lives with the caller, in the two small
//! structures here: the per-stream activation rate limit ([`ActivationLimiter`]) and the
//! in-memory last-seen times of wait heartbeats ([`Heartbeats`]), which are written to
//! SQLite at most once per persistence interval per template.
//!
//! The template id is computed by the caller (the touch key derivation, over the entity
//! and the sorted field names: see [`TemplateDef::new`]); the engine stores it and never
//! hashes. Request-body validation and its 400 messages belong to the HTTP layer; what
//! reaches the engine and is still malformed (unknown encoding, duplicate field names) is
//! denied per template, as the original does.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::engine::db::templates::{self as db, NewTemplate, RetiredReason, TemplateRow};
use crate::engine::writer::{Batch, Submit};
use crate::engine::{Engine, EngineError};
use crate::profiles::touch::TouchTemplatesConfig;

/// The argument encodings a template field may have.
pub const ENCODINGS: [&str; 5] = ["string", "int64", "bool", "datetime", "bytes"];
/// Fields a template has at most (and at least one).
pub const MAX_FIELDS: usize = 3;
/// Templates retired per GC call at most (the original's limit).
pub const GC_LIMIT: usize = 1000;

/// A template as declared: the entity, fields `(name, encoding)` sorted by name, and the
/// id the caller derived from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateDef {
    pub id: u64,
    pub entity: String,
    pub fields: Vec<(String, String)>,
}

impl TemplateDef {
    /// Builds a definition the way the original canonicalizes one: the entity and the
    /// field names trimmed, fields sorted by name (UTF-16 code-unit order, as JavaScript
    /// sorts), and the id computed by `id_of(entity, sorted names)`, which is the touch
    /// key derivation's `template_id`. Nothing is validated here: activation denies an
    /// invalid definition.
    pub fn new(
        entity: &str,
        fields: &[(String, String)],
        id_of: impl FnOnce(&str, &[&str]) -> u64,
    ) -> TemplateDef {
        let entity = js_trim(entity).to_string();
        let mut fields: Vec<(String, String)> = fields
            .iter()
            .map(|(n, e)| (js_trim(n).to_string(), e.clone()))
            .collect();
        fields.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        let id = id_of(&entity, &names);
        TemplateDef { id, entity, fields }
    }

    /// Whether activation accepts the definition: a non-blank entity, one to
    /// [`MAX_FIELDS`] fields with non-blank, distinct names and known encodings, names
    /// and entity trimmed and fields sorted (as [`TemplateDef::new`] builds them).
    pub fn is_valid(&self) -> bool {
        let names_ok = self
            .fields
            .iter()
            .all(|(n, e)| !n.is_empty() && js_trim(n) == n && ENCODINGS.contains(&e.as_str()));
        let distinct_sorted = self
            .fields
            .windows(2)
            .all(|w| w[0].0.encode_utf16().cmp(w[1].0.encode_utf16()).is_lt());
        !self.entity.is_empty()
            && js_trim(&self.entity) == self.entity
            && (1..=MAX_FIELDS).contains(&self.fields.len())
            && names_ok
            && distinct_sorted
    }

    fn names(&self) -> Vec<String> {
        self.fields.iter().map(|(n, _)| n.clone()).collect()
    }

    fn encodings(&self) -> Vec<String> {
        self.fields.iter().map(|(_, e)| e.clone()).collect()
    }

    /// Whether the stored row describes this same template.
    fn matches(&self, row: &TemplateRow) -> bool {
        row.entity == self.entity
            && row.fields.len() == self.fields.len()
            && row
                .fields
                .iter()
                .zip(&row.encodings)
                .zip(&self.fields)
                .all(|((n, e), (dn, de))| n == dn && e == de)
    }
}

/// Why a declared template was not activated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// Malformed, or the id is stored with another entity, field list or encodings.
    Invalid,
    /// The stream's activation rate limit has no token left.
    RateLimited,
}

impl DenyReason {
    /// The wire name (`reason` of a denial).
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::Invalid => "invalid",
            DenyReason::RateLimited => "rate_limited",
        }
    }
}

/// What activating one template did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivationKind {
    /// A new row.
    Created,
    /// An active template declared again: last seen now, with this request's TTL.
    Refreshed,
    /// A retired template made active again, from the current tail.
    Reactivated,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activated {
    /// The template's index in the request.
    pub index: usize,
    pub id: u64,
    /// Entries at or after this position are touched through the template.
    pub active_from_pos: u64,
    pub kind: ActivationKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// The template's index in the request.
    pub index: usize,
    /// 0 (`"0000000000000000"`) for a malformed definition.
    pub id: u64,
    pub reason: DenyReason,
}

/// A template retired because an entity or the stream had more active templates than
/// its cap (`live.template_evicted`).
#[derive(Debug, Clone, PartialEq)]
pub struct Evicted {
    pub id: u64,
    pub entity: String,
    /// The cap that was exceeded, as configured.
    pub cap: f64,
    /// The per-entity cap (else the per-stream one).
    pub per_entity: bool,
}

/// The caps reported with an activation (`limits`), as configured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TemplateLimits {
    pub max_active_templates_per_stream: f64,
    pub max_active_templates_per_entity: f64,
}

/// The outcome of one activation request.
#[derive(Debug, Clone, PartialEq)]
pub struct Activation {
    pub stream_id: i64,
    /// In request order. A template evicted by the caps at the end of the same request
    /// is still listed here (and in `evicted`), as the original reports it.
    pub activated: Vec<Activated>,
    /// In request order.
    pub denied: Vec<Denied>,
    pub evicted: Vec<Evicted>,
    pub limits: TemplateLimits,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplatesError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// No live stream of that name (absent, deleted or expired).
    #[error("stream not found")]
    NotFound,
}

super::write_error!(TemplatesError);

impl Engine {
    /// Activates `defs` on the live stream `name` (request order), then enforces the caps
    /// of `cfg` (per entity, then per stream), retiring the least recently seen templates,
    /// those of this request last. `inactivity_ttl_ms` is the request's TTL (the HTTP
    /// layer applies `defaultInactivityTtlMs` when absent). New and retired templates each
    /// take a token from the stream's bucket in `limiter`.
    pub async fn activate_templates(
        &self,
        name: &str,
        defs: Vec<TemplateDef>,
        inactivity_ttl_ms: u64,
        cfg: &TouchTemplatesConfig,
        limiter: Arc<ActivationLimiter>,
    ) -> Result<Activation, TemplatesError> {
        let (name, cfg) = (name.to_string(), cfg.clone());
        let ttl = i64::try_from(inactivity_ttl_ms).unwrap_or(i64::MAX);
        self.writer()
            .call(Submit::request(0), move |b| {
                activate(b, &name, &defs, ttl, &cfg, &limiter)
            })
            .await
    }

    /// The active templates of stream `stream_id`, by entity then id (for the touch
    /// processor and `touch/meta`).
    pub async fn active_templates(&self, stream_id: i64) -> Result<Vec<TemplateRow>, EngineError> {
        self.reader().run(move |c| db::active(c, stream_id)).await
    }

    /// Writes heartbeat last-seen times `(template id, at_ms)` of stream `stream_id`:
    /// moves each active template's last-seen forward (never back); returns how many
    /// rows changed. [`Heartbeats::due`] says which times are due.
    pub async fn touch_templates_seen(
        &self,
        stream_id: i64,
        seen: Vec<(u64, i64)>,
    ) -> Result<usize, EngineError> {
        if seen.is_empty() {
            return Ok(0);
        }
        self.writer()
            .call(Submit::internal(), move |b| {
                let mut n = 0;
                for (id, at) in seen {
                    n += usize::from(db::set_last_seen(b.conn()?, stream_id, id, at)?);
                }
                Ok::<_, EngineError>(n)
            })
            .await
    }

    /// Retires up to `limit` active templates of stream `stream_id` whose inactivity TTL
    /// ran out (last seen + TTL before the batch's time); returns them as they were. Write
    /// fresher in-memory last-seen times first ([`Heartbeats::for_stream`]), so that a
    /// template heartbeated since its last persistence is not retired.
    pub async fn retire_inactive_templates(
        &self,
        stream_id: i64,
        limit: usize,
    ) -> Result<Vec<TemplateRow>, EngineError> {
        self.writer()
            .call(Submit::internal(), move |b| {
                let c = b.conn()?;
                let mut out = Vec::new();
                for row in db::expired(c, stream_id, b.now, limit)? {
                    if row.is_inactive(b.now)
                        && db::retire(c, stream_id, row.id, b.now, RetiredReason::Inactivity)?
                    {
                        out.push(row);
                    }
                }
                Ok::<_, EngineError>(out)
            })
            .await
    }
}

/// JavaScript's `String.prototype.trim`: Unicode space separators, the ASCII and
/// Unicode line terminators, tab, vertical tab, form feed and U+FEFF (not U+0085, which
/// Rust's `trim` also removes).
fn js_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c == '\u{FEFF}' || (c.is_whitespace() && c != '\u{85}'))
}

fn activate(
    b: &mut Batch<'_>,
    name: &str,
    defs: &[TemplateDef],
    ttl_ms: i64,
    cfg: &TouchTemplatesConfig,
    limiter: &ActivationLimiter,
) -> Result<Activation, TemplatesError> {
    let (c, now) = (b.conn()?, b.now);
    let m = match b.stream_by_name(name)? {
        Some(m) if !m.life.deleted && !m.is_expired(now) => m,
        _ => return Err(TemplatesError::NotFound),
    };
    let from_pos = m.tail.next_pos;
    let mut out = Activation {
        stream_id: m.id,
        activated: Vec::new(),
        denied: Vec::new(),
        evicted: Vec::new(),
        limits: TemplateLimits {
            max_active_templates_per_stream: cfg.max_active_templates_per_stream,
            max_active_templates_per_entity: cfg.max_active_templates_per_entity,
        },
    };
    let mut this_request = HashSet::new();
    for (index, def) in defs.iter().enumerate() {
        let deny = |reason, id| Denied { index, id, reason };
        if !def.is_valid() {
            out.denied.push(deny(DenyReason::Invalid, 0));
            continue;
        }
        let existing = db::get(c, m.id, def.id)?;
        let active = existing
            .as_ref()
            .is_some_and(|r| r.state == db::TemplateState::Active);
        // As in the original, the token is taken before the stored row is compared.
        if !active && !limiter.take(m.id, now, cfg.activation_rate_limit_per_minute) {
            out.denied.push(deny(DenyReason::RateLimited, def.id));
            continue;
        }
        let kind = match &existing {
            Some(row) if !def.matches(row) => {
                out.denied.push(deny(DenyReason::Invalid, def.id));
                continue;
            }
            Some(_) if active => {
                db::refresh(c, m.id, def.id, now, ttl_ms)?;
                ActivationKind::Refreshed
            }
            Some(_) => {
                db::reactivate(c, m.id, def.id, now, ttl_ms, from_pos)?;
                ActivationKind::Reactivated
            }
            None => {
                let (names, encodings) = (def.names(), def.encodings());
                let new = NewTemplate {
                    id: def.id,
                    entity: &def.entity,
                    fields: &names,
                    encodings: &encodings,
                };
                db::insert(c, m.id, &new, now, ttl_ms, from_pos)?;
                ActivationKind::Created
            }
        };
        let active_from_pos = match (&existing, kind) {
            (Some(row), ActivationKind::Refreshed) => row.active_from_pos,
            _ => from_pos,
        };
        this_request.insert(def.id);
        out.activated.push(Activated {
            index,
            id: def.id,
            active_from_pos,
            kind,
        });
    }
    out.evicted = enforce_caps(c, m.id, now, cfg, &this_request)?;
    Ok(out)
}

/// The number of active templates a cap allows (`count > cap` is over it, so a
/// fractional cap allows its integer part).
fn allowed(cap: f64) -> u64 {
    if cap.is_finite() && cap > 0.0 {
        cap.floor() as u64
    } else if cap.is_infinite() && cap > 0.0 {
        u64::MAX
    } else {
        0
    }
}

fn enforce_caps(
    c: &rusqlite::Connection,
    stream_id: i64,
    now: i64,
    cfg: &TouchTemplatesConfig,
    protected: &HashSet<u64>,
) -> Result<Vec<Evicted>, EngineError> {
    let mut out = Vec::new();
    let per_entity = allowed(cfg.max_active_templates_per_entity);
    for (entity, count) in db::active_per_entity(c, stream_id)? {
        if count <= per_entity {
            continue;
        }
        let ids = pick_lru(c, stream_id, Some(&entity), count - per_entity, protected)?;
        for id in ids {
            if db::retire(c, stream_id, id, now, RetiredReason::CapExceeded)? {
                out.push(Evicted {
                    id,
                    entity: entity.clone(),
                    cap: cfg.max_active_templates_per_entity,
                    per_entity: true,
                });
            }
        }
    }
    let per_stream = allowed(cfg.max_active_templates_per_stream);
    let count = db::active_count(c, stream_id)?;
    if count > per_stream {
        for id in pick_lru(c, stream_id, None, count - per_stream, protected)? {
            let entity = db::get(c, stream_id, id)?
                .map(|r| r.entity)
                .unwrap_or_default();
            if db::retire(c, stream_id, id, now, RetiredReason::CapExceeded)? {
                out.push(Evicted {
                    id,
                    entity,
                    cap: cfg.max_active_templates_per_stream,
                    per_entity: false,
                });
            }
        }
    }
    Ok(out)
}

/// `n` active templates to evict, least recently seen first: those not activated by
/// this request, then, only if there are not enough, those that were.
fn pick_lru(
    c: &rusqlite::Connection,
    stream_id: i64,
    entity: Option<&str>,
    n: u64,
    protected: &HashSet<u64>,
) -> Result<Vec<u64>, EngineError> {
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    let lru = db::least_recently_seen(c, stream_id, entity, n.saturating_add(protected.len()))?;
    let (others, mine): (Vec<u64>, Vec<u64>) =
        lru.into_iter().partition(|id| !protected.contains(id));
    Ok(others.into_iter().chain(mine).take(n).collect())
}

/// Per-stream token buckets of the activation rate limit: capacity = the rate per
/// minute, refilled continuously, starting full; a rate of 0 is unlimited. Held in
/// memory by the caller (a restart refills every bucket) and bounded: past `max_streams`
/// buckets, full ones are dropped first, then the least recently used (which only ever
/// gives a stream more tokens, never fewer). Tokens taken by a request whose batch then
/// failed are not given back.
#[derive(Debug)]
pub struct ActivationLimiter {
    buckets: Mutex<HashMap<i64, Bucket>>,
    max_streams: usize,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    capacity: f64,
    at_ms: i64,
}

impl Bucket {
    fn refill(&mut self, now_ms: i64, per_minute: f64) {
        let elapsed = now_ms.saturating_sub(self.at_ms).max(0) as f64;
        self.tokens = (self.tokens + elapsed * per_minute / 60_000.0).min(per_minute);
        self.capacity = per_minute;
        self.at_ms = self.at_ms.max(now_ms);
    }
}

impl Default for ActivationLimiter {
    fn default() -> Self {
        ActivationLimiter::new(4096)
    }
}

impl ActivationLimiter {
    /// A limiter keeping at most `max_streams` buckets (at least one).
    pub fn new(max_streams: usize) -> ActivationLimiter {
        ActivationLimiter {
            buckets: Mutex::new(HashMap::new()),
            max_streams: max_streams.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<i64, Bucket>> {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one token from stream `stream_id`'s bucket at `now_ms`; false if none is
    /// left. `per_minute` ≤ 0 (or not a number) is unlimited.
    pub fn take(&self, stream_id: i64, now_ms: i64, per_minute: f64) -> bool {
        if per_minute.is_nan() || per_minute <= 0.0 {
            return true;
        }
        let mut map = self.lock();
        if !map.contains_key(&stream_id) && map.len() >= self.max_streams {
            make_room(&mut map, now_ms);
        }
        let b = map.entry(stream_id).or_insert(Bucket {
            tokens: per_minute,
            capacity: per_minute,
            at_ms: now_ms,
        });
        b.refill(now_ms, per_minute);
        if b.tokens < 1.0 {
            return false;
        }
        b.tokens -= 1.0;
        true
    }

    /// Number of buckets held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Drops the bucket of a stream that is gone.
    pub fn forget(&self, stream_id: i64) {
        self.lock().remove(&stream_id);
    }
}

fn make_room(map: &mut HashMap<i64, Bucket>, now_ms: i64) {
    map.retain(|_, b| {
        let mut b = *b;
        b.refill(now_ms, b.capacity);
        b.tokens < b.capacity
    });
    if !map.is_empty() {
        let oldest = map
            .iter()
            .min_by_key(|(id, b)| (b.at_ms, **id))
            .map(|(id, _)| *id);
        if let Some(id) = oldest {
            map.remove(&id);
        }
    }
}

/// In-memory last-seen times from wait heartbeats (`templateIdsUsed` of fine waits),
/// so that a wait costs no SQLite write: [`Heartbeats::due`] hands out the times to
/// persist, each template at most once per persistence interval. Bounded: past
/// `max_entries` the oldest-seen entries are dropped (their template then falls back to
/// its persisted last-seen time).
#[derive(Debug)]
pub struct Heartbeats {
    seen: Mutex<HashMap<(i64, u64), Seen>>,
    max_entries: usize,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    at_ms: i64,
    /// When it was last handed out for persistence (`None`: never).
    persisted_ms: Option<i64>,
    dirty: bool,
}

impl Seen {
    /// Whether this time is due for persistence (seen since the last one, and not
    /// persisted within `interval_ms`); if so it counts as persisted from now on.
    fn take_due(&mut self, now_ms: i64, interval_ms: f64) -> bool {
        let waited = self
            .persisted_ms
            .is_none_or(|p| (now_ms.saturating_sub(p) as f64) >= interval_ms);
        if self.dirty && waited {
            self.dirty = false;
            self.persisted_ms = Some(now_ms);
            return true;
        }
        false
    }
}

impl Default for Heartbeats {
    fn default() -> Self {
        Heartbeats::new(1 << 20)
    }
}

impl Heartbeats {
    pub fn new(max_entries: usize) -> Heartbeats {
        Heartbeats {
            seen: Mutex::new(HashMap::new()),
            max_entries: max_entries.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(i64, u64), Seen>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that templates `ids` of stream `stream_id` were used at `now_ms`.
    pub fn mark(&self, stream_id: i64, ids: &[u64], now_ms: i64) {
        let mut map = self.lock();
        for &id in ids {
            if !map.contains_key(&(stream_id, id)) && map.len() >= self.max_entries {
                let oldest = map
                    .iter()
                    .min_by_key(|(k, s)| (s.at_ms, **k))
                    .map(|(k, _)| *k);
                if let Some(k) = oldest {
                    map.remove(&k);
                }
            }
            let s = map.entry((stream_id, id)).or_insert(Seen {
                at_ms: now_ms,
                persisted_ms: None,
                dirty: true,
            });
            if now_ms > s.at_ms {
                s.at_ms = now_ms;
            }
            s.dirty = true;
        }
    }

    /// The last-seen times to persist now, per stream: templates seen since their last
    /// persistence, and not persisted within `interval_ms` (`lastSeenPersistIntervalMs`).
    /// They count as persisted from here on; pass them to
    /// [`Engine::touch_templates_seen`].
    pub fn due(&self, now_ms: i64, interval_ms: f64) -> HashMap<i64, Vec<(u64, i64)>> {
        let mut out: HashMap<i64, Vec<(u64, i64)>> = HashMap::new();
        for (&(stream, id), s) in self.lock().iter_mut() {
            if s.take_due(now_ms, interval_ms) {
                out.entry(stream).or_default().push((id, s.at_ms));
            }
        }
        out
    }

    /// [`due`](Self::due) for one stream (each stream has its own interval).
    pub fn due_for(&self, stream_id: i64, now_ms: i64, interval_ms: f64) -> Vec<(u64, i64)> {
        let mut out = Vec::new();
        for (&(stream, id), s) in self.lock().iter_mut() {
            if stream == stream_id && s.take_due(now_ms, interval_ms) {
                out.push((id, s.at_ms));
            }
        }
        out
    }

    /// Every in-memory last-seen time of stream `stream_id` (before template GC).
    pub fn for_stream(&self, stream_id: i64) -> Vec<(u64, i64)> {
        self.lock()
            .iter()
            .filter(|((s, _), _)| *s == stream_id)
            .map(|((_, id), s)| (*id, s.at_ms))
            .collect()
    }

    /// The in-memory last-seen time of a template, if any.
    pub fn last_seen(&self, stream_id: i64, id: u64) -> Option<i64> {
        self.lock().get(&(stream_id, id)).map(|s| s.at_ms)
    }

    /// Forgets templates (retired) of a stream.
    pub fn forget(&self, stream_id: i64, ids: &[u64]) {
        let mut map = self.lock();
        for id in ids {
            map.remove(&(stream_id, *id));
        }
    }

    /// Forgets everything of a stream (gone).
    pub fn forget_stream(&self, stream_id: i64) {
        self.lock().retain(|(s, _), _| *s != stream_id);
    }

    /// Number of templates tracked.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

#[cfg(test)]
mod tests;
