//! Durable Streams subscriptions: the rules of the reserved `/v1/stream/__ds/` routes,
//! over the records of `crate::subscriptions`.
//!
//! The [`SubscriptionManager`] keeps every subscription in memory behind one async mutex
//! and stores the effects of each transition through the writer
//! ([`Engine::write_subscriptions`]) before it answers, so that a restart finds the same
//! links, acknowledged offsets, generation, wake, lease and retry schedule. The
//! background task of [`delivery`] follows the commit feed (linking streams that match a
//! pattern when they are appended to, waking subscriptions, unlinking deleted streams),
//! expires leases and delivers webhooks.

pub mod delivery;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::{Mutex, MutexGuard, Notify};

use crate::config::SubscriptionSettings;
use crate::engine::{AppendCmd, Engine, EngineError, Reservation, StreamChange, SubWrite};
use crate::protocol::offset::Offset;
use crate::subscriptions::crypto::{self, TokenError, WebhookSigner};
use crate::subscriptions::request::{CreateInput, WakeReply};
use crate::subscriptions::{glob, target, Kind, StreamInfo, Subscription, WakeState};

/// Names of the stored keys.
const SIGNING_KEY: &str = "webhook-signing-ed25519";
const TOKEN_KEY: &str = "callback-token-hmac";
/// Streams listed per page when a pattern is backfilled.
const LIST_PAGE: usize = 1000;

/// A refusal of a subscription route, with the reference's codes.
#[derive(Debug, thiserror::Error)]
pub enum SubError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    UrlRejected(String),
    #[error("Subscription not found")]
    NotFound,
    #[error("Subscription already exists with different configuration")]
    AlreadyExists,
    #[error("Token invalid")]
    TokenInvalid,
    #[error("Token expired")]
    TokenExpired,
    #[error("Wake generation is stale")]
    Fenced,
    #[error("Subscription is already claimed")]
    AlreadyClaimed { holder: String, generation: u64 },
    #[error("Subscription has no pending work")]
    NoPendingWork,
    #[error("{0}")]
    InvalidOffset(&'static str),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

pub type SubResult<T> = Result<T, SubError>;

struct Keys {
    signer: WebhookSigner,
    token: [u8; 32],
}

/// The in-memory state (loaded from storage on first use).
#[derive(Default)]
struct State {
    loaded: bool,
    /// Created on first use (an idle server writes nothing).
    keys: Option<Keys>,
    subs: HashMap<String, Subscription>,
    /// Live stream ids seen for linked paths (deletions arrive by id).
    ids: HashMap<i64, String>,
    /// Subscriptions with a webhook delivery in flight.
    in_flight: HashSet<String>,
}

/// A webhook to send: built under the lock, sent without it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub wake_id: String,
    pub url: String,
    pub body: Bytes,
    pub signature: String,
}

/// Owner of all subscriptions.
pub struct SubscriptionManager {
    engine: Engine,
    settings: SubscriptionSettings,
    state: Mutex<State>,
    /// Woken when the timers may have changed (a new wake, a delivery result).
    kick: Notify,
    /// Whether any subscription exists (appends skip the lock when none does).
    any: AtomicBool,
}

impl SubscriptionManager {
    pub fn new(engine: Engine, settings: SubscriptionSettings) -> SubscriptionManager {
        SubscriptionManager {
            engine,
            settings,
            state: Mutex::new(State::default()),
            kick: Notify::new(),
            any: AtomicBool::new(false),
        }
    }

    pub fn settings(&self) -> &SubscriptionSettings {
        &self.settings
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.engine.clock().now_ms()
    }

    /// The state, loaded from storage the first time (keys created once).
    async fn lock(&self) -> SubResult<MutexGuard<'_, State>> {
        let mut st = self.state.lock().await;
        if !st.loaded {
            let subs = self.engine.load_subscriptions().await?;
            // Deletions arrive by stream id: learn the ids of the linked streams.
            let now = self.now_ms();
            for s in &subs {
                for path in s.links.keys() {
                    if let Some(m) = self.engine.lookup(path).await? {
                        if !m.life.deleted && !m.is_expired(now) {
                            st.ids.insert(m.id, path.clone());
                        }
                    }
                }
            }
            st.subs = subs.into_iter().map(|s| (s.id.clone(), s)).collect();
            self.any.store(!st.subs.is_empty(), Ordering::SeqCst);
            st.loaded = true;
            self.kick.notify_one();
        }
        Ok(st)
    }

    /// The state with the keys loaded, or created the first time they are needed.
    async fn lock_keyed(&self) -> SubResult<MutexGuard<'_, State>> {
        let mut st = self.lock().await?;
        self.ensure_keys(&mut st).await?;
        Ok(st)
    }

    async fn ensure_keys(&self, st: &mut State) -> SubResult<()> {
        if st.keys.is_none() {
            let signing = self.engine.subscription_key(SIGNING_KEY).await?;
            let token = self.engine.subscription_key(TOKEN_KEY).await?;
            st.keys = Some(Keys {
                signer: WebhookSigner::new(&signing),
                token,
            });
        }
        Ok(())
    }

    /// The next position of live stream `path` (0 when missing), remembering its id
    /// (callers ask only for linked streams, or streams about to be linked).
    async fn tail(&self, st: &mut State, path: &str) -> SubResult<u64> {
        let now = self.now_ms();
        Ok(match self.engine.lookup(path).await? {
            Some(m) if !m.life.deleted && !m.is_expired(now) => {
                st.ids.insert(m.id, path.to_string());
                m.tail.next_pos
            }
            _ => 0,
        })
    }

    async fn infos(&self, st: &mut State, s: &Subscription) -> SubResult<Vec<StreamInfo>> {
        let mut tails = HashMap::new();
        for path in s.links.keys() {
            tails.insert(path.clone(), self.tail(st, path).await?);
        }
        Ok(s.infos(|p| tails.get(p).copied().unwrap_or(0)))
    }

    fn random(&self) -> u64 {
        self.engine.clock().random_in(0, u64::MAX)
    }

    fn token(&self, st: &State, s: &Subscription) -> String {
        let key = st.keys.as_ref().map(|k| k.token).unwrap_or_default();
        crypto::make_token(
            &key,
            &s.id,
            s.wake.generation,
            self.now_ms().div_euclid(1000),
            self.random(),
        )
    }

    /// `GET /v1/stream/__ds/jwks.json`.
    pub async fn jwks(&self) -> SubResult<Value> {
        let st = self.lock_keyed().await?;
        Ok(st
            .keys
            .as_ref()
            .map(|k| k.signer.jwks())
            .unwrap_or_default())
    }

    async fn to_json(&self, st: &mut State, s: &Subscription, base_url: &str) -> SubResult<Value> {
        let infos = self.infos(st, s).await?;
        let kid = st
            .keys
            .as_ref()
            .map(|k| k.signer.kid().to_string())
            .unwrap_or_default();
        Ok(s.to_json(&infos, &kid, base_url))
    }

    /// `PUT …/subscriptions/:id`: `(subscription, created)`.
    pub async fn create(
        &self,
        id: &str,
        input: CreateInput,
        base_url: &str,
    ) -> SubResult<(Value, bool)> {
        let mut st = self.lock_keyed().await?;
        let hash = input.config_hash();
        if let Some(existing) = st.subs.get(id).cloned() {
            if existing.config_hash != hash {
                return Err(SubError::AlreadyExists);
            }
            let v = self.to_json(&mut st, &existing, base_url).await?;
            return Ok((v, false));
        }
        if let Some(url) = &input.webhook_url {
            if !self.settings.webhooks {
                return Err(SubError::InvalidRequest(
                    "webhook subscriptions are not enabled on this server".into(),
                ));
            }
            target::check(url, self.settings.loopback_only).map_err(SubError::UrlRejected)?;
        }
        let mut s = Subscription {
            id: id.to_string(),
            kind: input.kind,
            pattern: input.pattern.clone(),
            webhook_url: input.webhook_url.clone(),
            wake_stream: input.wake_stream.clone(),
            lease_ttl_ms: input.lease_ttl_ms,
            description: input.description.clone(),
            config_hash: hash,
            base_url: base_url.to_string(),
            created_at_ms: self.now_ms(),
            links: Default::default(),
            wake: WakeState::default(),
        };
        for path in &input.streams {
            let tail = self.tail(&mut st, path).await?;
            s.link(path, true, tail as i64);
        }
        if let Some(pattern) = &input.pattern {
            let mut offset = 0;
            loop {
                let page = self.engine.list(offset, LIST_PAGE).await?;
                for m in &page {
                    let Some(name) = &m.name else { continue };
                    if glob::matches(pattern, name) && s.wake_stream.as_ref() != Some(name) {
                        st.ids.insert(m.id, name.clone());
                        s.link(name, false, m.tail.next_pos as i64);
                    }
                }
                if page.len() < LIST_PAGE {
                    break;
                }
                offset += page.len();
            }
        }
        let mut writes = vec![SubWrite::Put(Box::new(s.clone()))];
        writes.extend(s.links.iter().map(|(path, link)| SubWrite::Link {
            id: s.id.clone(),
            path: path.clone(),
            link: *link,
        }));
        self.engine.write_subscriptions(writes).await?;
        let v = self.to_json(&mut st, &s, base_url).await?;
        st.subs.insert(s.id.clone(), s);
        self.any.store(true, Ordering::SeqCst);
        Ok((v, true))
    }

    /// `GET …/subscriptions/:id`.
    pub async fn get(&self, id: &str, base_url: &str) -> SubResult<Value> {
        let mut st = self.lock_keyed().await?;
        let s = st.subs.get(id).cloned().ok_or(SubError::NotFound)?;
        self.to_json(&mut st, &s, base_url).await
    }

    /// `DELETE …/subscriptions/:id` (absent is fine).
    pub async fn delete(&self, id: &str) -> SubResult<()> {
        let mut st = self.lock().await?;
        if st.subs.contains_key(id) {
            self.engine
                .write_subscriptions(vec![SubWrite::Delete(id.to_string())])
                .await?;
            st.subs.remove(id);
            st.in_flight.remove(id);
            self.any.store(!st.subs.is_empty(), Ordering::SeqCst);
        }
        Ok(())
    }

    /// `POST …/subscriptions/:id/streams`: explicit links at the streams' tails.
    pub async fn add_streams(&self, id: &str, streams: &[String]) -> SubResult<()> {
        let mut st = self.lock().await?;
        let mut s = st.subs.get(id).cloned().ok_or(SubError::NotFound)?;
        let mut writes = Vec::new();
        for path in streams {
            let tail = self.tail(&mut st, path).await?;
            if s.link(path, true, tail as i64) {
                writes.push(SubWrite::Link {
                    id: s.id.clone(),
                    path: path.clone(),
                    link: s.links[path.as_str()],
                });
            }
        }
        self.engine.write_subscriptions(writes).await?;
        st.subs.insert(s.id.clone(), s);
        Ok(())
    }

    /// `DELETE …/subscriptions/:id/streams/:path`: drops only the explicit link.
    pub async fn remove_stream(&self, id: &str, path: &str) -> SubResult<()> {
        let mut st = self.lock().await?;
        let mut s = st.subs.get(id).cloned().ok_or(SubError::NotFound)?;
        let Some(link) = s.links.get_mut(path) else {
            return Ok(());
        };
        link.explicit = false;
        let write = if link.glob {
            SubWrite::Link {
                id: s.id.clone(),
                path: path.to_string(),
                link: *link,
            }
        } else {
            s.links.remove(path);
            SubWrite::Unlink {
                id: s.id.clone(),
                path: path.to_string(),
            }
        };
        self.engine.write_subscriptions(vec![write]).await?;
        st.subs.insert(s.id.clone(), s);
        Ok(())
    }

    /// Checks the token and that the reply is for the wake in flight.
    fn fence(&self, st: &State, s: &Subscription, token: &str, r: &WakeReply) -> SubResult<()> {
        let key = st.keys.as_ref().map(|k| k.token).unwrap_or_default();
        let epoch = crypto::check_token(&key, &s.id, token, self.now_ms().div_euclid(1000))
            .map_err(|e| match e {
                TokenError::Invalid => SubError::TokenInvalid,
                TokenError::Expired => SubError::TokenExpired,
            })?;
        let g = s.wake.generation;
        if epoch != g
            || r.generation != Some(g)
            || r.wake_id.is_none()
            || r.wake_id != s.wake.wake_id
        {
            return Err(SubError::Fenced);
        }
        Ok(())
    }

    /// Validates then applies the acknowledgements; returns the paths that moved.
    async fn apply_acks(
        &self,
        st: &mut State,
        s: &mut Subscription,
        r: &WakeReply,
    ) -> SubResult<Vec<String>> {
        let mut moves = Vec::new();
        for a in &r.acks {
            let Some(link) = s.links.get(&a.stream).filter(|_| !a.stream.is_empty()) else {
                return Err(SubError::InvalidOffset(
                    "Ack references an unknown subscription stream",
                ));
            };
            if a.offset == "-1" {
                return Err(SubError::InvalidOffset("Ack offset must not be -1"));
            }
            let pos = Offset::decode(&a.offset)
                .map_err(|_| SubError::InvalidOffset("Ack offset is not an offset"))?
                .pos;
            let pos = i64::try_from(pos)
                .map_err(|_| SubError::InvalidOffset("Ack offset is beyond stream tail"))?;
            if pos < link.acked {
                return Err(SubError::InvalidOffset(
                    "Ack offset regresses the committed cursor",
                ));
            }
            let acked = link.acked;
            if pos > self.tail(st, &a.stream).await? as i64 {
                return Err(SubError::InvalidOffset("Ack offset is beyond stream tail"));
            }
            if pos != acked {
                moves.push((a.stream.clone(), pos));
            }
        }
        let mut moved = Vec::new();
        for (path, pos) in moves {
            if let Some(l) = s.links.get_mut(&path) {
                l.acked = pos;
                moved.push(path);
            }
        }
        Ok(moved)
    }

    fn link_writes(s: &Subscription, paths: &[String]) -> Vec<SubWrite> {
        paths
            .iter()
            .filter_map(|p| {
                s.links.get(p).map(|l| SubWrite::Link {
                    id: s.id.clone(),
                    path: p.clone(),
                    link: *l,
                })
            })
            .collect()
    }

    /// Starts the next wake if a linked stream has pending work; returns whether it did.
    /// The caller stores `s`; a pull-wake event is appended after that (`wake_event`).
    async fn next_wake(&self, st: &mut State, s: &mut Subscription) -> SubResult<bool> {
        let infos = self.infos(st, s).await?;
        if !infos.iter().any(StreamInfo::has_pending) {
            return Ok(false);
        }
        let wake_id = crypto::wake_id(self.random(), self.random());
        s.begin_wake(wake_id, &infos, self.now_ms());
        self.kick.notify_one();
        Ok(true)
    }

    /// Appends the wake event of a pull-wake subscription's new wake to its wake stream
    /// (a missing wake stream is only logged, as in the reference).
    async fn wake_event(&self, s: &Subscription, trigger: &str) {
        let (Kind::PullWake, Some(ws)) = (s.kind, &s.wake_stream) else {
            return;
        };
        let now = self.now_ms();
        let content_type = match self.engine.lookup(ws).await {
            Ok(Some(m)) if !m.life.deleted && !m.is_expired(now) => m.config.content_type,
            _ => {
                tracing::warn!(subscription = %s.id, wake_stream = %ws, "wake stream does not exist");
                return;
            }
        };
        let event = json!({
            "type": "wake",
            "subscription_id": s.id,
            "stream": trigger,
            "generation": s.wake.generation,
            "ts": now,
        });
        let cmd = AppendCmd {
            name: ws.clone(),
            content_type: Some(content_type),
            entries: vec![Bytes::from(event.to_string())],
            keys: Vec::new(),
            close: false,
            producer: None,
            stream_seq: None,
            framing_error: None,
            hold: Reservation::default(),
            config_gen: None,
        };
        if let Err(e) = self.engine.append(cmd).await {
            tracing::warn!(subscription = %s.id, wake_stream = %ws, error = %e, "cannot append the wake event");
        }
    }

    fn first_pending(infos: &[StreamInfo]) -> String {
        infos
            .iter()
            .find(|i| i.has_pending())
            .map(|i| i.path.clone())
            .unwrap_or_default()
    }

    /// Stores `s` (and `links` of it), keeps it, and appends its wake event if `woke`.
    async fn commit(
        &self,
        st: &mut State,
        s: Subscription,
        links: &[String],
        woke: bool,
    ) -> SubResult<()> {
        let mut writes = vec![SubWrite::Put(Box::new(s.clone()))];
        writes.extend(Self::link_writes(&s, links));
        self.engine.write_subscriptions(writes).await?;
        if woke {
            let infos = self.infos(st, &s).await?;
            self.wake_event(&s, &Self::first_pending(&infos)).await;
        }
        st.subs.insert(s.id.clone(), s);
        Ok(())
    }

    /// `POST …/callback` (webhook) and `POST …/ack` (pull-wake): `{ok, next_wake}`.
    pub async fn reply(
        &self,
        id: &str,
        token: &str,
        r: &WakeReply,
        pull: bool,
    ) -> SubResult<Value> {
        let mut st = self.lock_keyed().await?;
        let mut s = st.subs.get(id).cloned().ok_or(SubError::NotFound)?;
        if pull && s.kind != Kind::PullWake {
            return Err(SubError::InvalidRequest(
                "Subscription is not pull-wake".into(),
            ));
        }
        self.fence(&st, &s, token, r)?;
        let moved = self.apply_acks(&mut st, &mut s, r).await?;
        s.wake.lease_expires_at_ms = Some(self.now_ms() + s.lease_ttl_ms as i64);
        let mut next = false;
        if r.done {
            s.end_wake();
            next = self.next_wake(&mut st, &mut s).await?;
        }
        self.commit(&mut st, s, &moved, next).await?;
        self.kick.notify_one();
        Ok(json!({"ok": true, "next_wake": next}))
    }

    /// `POST …/claim`.
    pub async fn claim(&self, id: &str, worker: &str) -> SubResult<Value> {
        let mut st = self.lock_keyed().await?;
        let mut s = st.subs.get(id).cloned().ok_or(SubError::NotFound)?;
        if s.kind != Kind::PullWake {
            return Err(SubError::InvalidRequest(
                "Subscription is not pull-wake".into(),
            ));
        }
        if let Some(holder) = &s.wake.holder {
            return Err(SubError::AlreadyClaimed {
                holder: holder.clone(),
                generation: s.wake.generation,
            });
        }
        let infos = self.infos(&mut st, &s).await?;
        if !infos.iter().any(StreamInfo::has_pending) {
            return Err(SubError::NoPendingWork);
        }
        let mut woke = false;
        if s.wake.wake_id.is_none() {
            woke = self.next_wake(&mut st, &mut s).await?;
        }
        s.wake.holder = Some(worker.to_string());
        s.wake.lease_expires_at_ms = Some(self.now_ms() + s.lease_ttl_ms as i64);
        let token = self.token(&st, &s);
        let out = json!({
            "wake_id": s.wake.wake_id,
            "generation": s.wake.generation,
            "token": token,
            "streams": infos.iter().map(StreamInfo::to_json).collect::<Vec<_>>(),
            "lease_ttl_ms": s.lease_ttl_ms,
        });
        self.commit(&mut st, s, &[], woke).await?;
        self.kick.notify_one();
        Ok(out)
    }

    /// `POST …/release`.
    pub async fn release(&self, id: &str, token: &str, r: &WakeReply) -> SubResult<()> {
        let mut st = self.lock_keyed().await?;
        let mut s = st.subs.get(id).cloned().ok_or(SubError::NotFound)?;
        if s.kind != Kind::PullWake {
            return Err(SubError::InvalidRequest(
                "Subscription is not pull-wake".into(),
            ));
        }
        self.fence(&st, &s, token, r)?;
        s.end_wake();
        let woke = self.next_wake(&mut st, &mut s).await?;
        self.commit(&mut st, s, &[], woke).await?;
        self.kick.notify_one();
        Ok(())
    }

    /// A committed change of one stream (from the commit feed): an append links the
    /// stream to matching patterns and wakes its subscriptions; a deletion unlinks it.
    pub async fn on_change(&self, c: &StreamChange) -> SubResult<()> {
        let mut st = self.lock().await?;
        if st.subs.is_empty() {
            return Ok(());
        }
        if c.gone {
            let Some(path) = st.ids.remove(&c.id) else {
                return Ok(());
            };
            let ids: Vec<String> = st
                .subs
                .values()
                .filter(|s| s.links.contains_key(&path))
                .map(|s| s.id.clone())
                .collect();
            for id in ids {
                let Some(mut s) = st.subs.get(&id).cloned() else {
                    continue;
                };
                s.links.remove(&path);
                self.engine
                    .write_subscriptions(vec![SubWrite::Unlink {
                        id: id.clone(),
                        path: path.clone(),
                    }])
                    .await?;
                st.subs.insert(id, s);
            }
            return Ok(());
        }
        let Some(path) = c.name.as_deref() else {
            return Ok(());
        };
        // Appends carry their entries; a create with a body publishes only its tail.
        if c.entries.is_empty() && !(c.first_pos == c.next_pos && c.next_pos > 0) {
            return Ok(());
        }
        self.appended(&mut st, path).await?;
        if st.subs.values().any(|s| s.links.contains_key(path)) {
            st.ids.insert(c.id, path.to_string());
        }
        Ok(())
    }

    /// An append (or a create with a body) the service just committed: links and wakes
    /// before the request is answered, as the reference does, so that a claim right
    /// after an append finds the work. The commit feed sees the same append later; by
    /// then there is nothing left to do.
    pub async fn after_append(&self, path: &str) {
        if !self.any.load(Ordering::SeqCst) {
            return;
        }
        let r = async {
            let mut st = self.lock().await?;
            self.appended(&mut st, path).await
        }
        .await;
        if let Err(e) = r {
            tracing::warn!(stream = %path, error = %e, "subscriptions could not follow an append");
        }
    }

    async fn appended(&self, st: &mut State, path: &str) -> SubResult<()> {
        // A subscription's own wake stream is never linked to it (each wake event would
        // be new work, and so another wake, forever).
        let relevant = |s: &Subscription| {
            s.wake_stream.as_deref() != Some(path)
                && (s.links.contains_key(path)
                    || s.pattern.as_deref().is_some_and(|p| glob::matches(p, path)))
        };
        let ids: Vec<String> = st
            .subs
            .values()
            .filter(|s| relevant(s))
            .map(|s| s.id.clone())
            .collect();
        for id in ids {
            let Some(mut s) = st.subs.get(&id).cloned() else {
                continue;
            };
            let mut links = Vec::new();
            let matches = s.pattern.as_deref().is_some_and(|p| glob::matches(p, path));
            if matches && s.link(path, false, crate::subscriptions::BEFORE_FIRST) {
                links.push(path.to_string());
                self.tail(st, path).await?; // learns the stream's id (deletions)
            }
            if !s.links.contains_key(path) {
                continue;
            }
            let woke = !s.busy() && self.next_wake(st, &mut s).await?;
            if links.is_empty() && !woke {
                continue;
            }
            self.commit(st, s, &links, woke).await?;
        }
        Ok(())
    }

    /// After commits were missed: treats every live stream matching a pattern as
    /// appended to, and unlinks streams known to be gone.
    pub async fn catch_up(&self) -> SubResult<()> {
        let mut st = self.lock().await?;
        let known: Vec<(i64, String)> = st.ids.iter().map(|(i, p)| (*i, p.clone())).collect();
        let now = self.now_ms();
        for (id, path) in known {
            let live = matches!(self.engine.lookup(&path).await?,
                Some(m) if m.id == id && !m.life.deleted && !m.is_expired(now));
            if !live {
                drop(st);
                self.on_change(&StreamChange {
                    id,
                    name: None,
                    next_pos: 0,
                    closed: false,
                    gone: true,
                    first_pos: 0,
                    entries: Vec::new(),
                })
                .await?;
                st = self.lock().await?;
            }
        }
        let mut offset = 0;
        loop {
            let page = self.engine.list(offset, LIST_PAGE).await?;
            for m in &page {
                let Some(name) = &m.name else { continue };
                let wanted = st.subs.values().any(|s| {
                    s.links.contains_key(name)
                        || s.pattern.as_deref().is_some_and(|p| glob::matches(p, name))
                });
                if wanted && m.tail.next_pos > 0 {
                    st.ids.insert(m.id, name.clone());
                    self.appended(&mut st, name).await?;
                }
            }
            if page.len() < LIST_PAGE {
                break;
            }
            offset += page.len();
        }
        Ok(())
    }

    /// Lease expiries and due webhook deliveries at `now_ms`: ends expired wakes
    /// (starting the next one if work is pending), marks due deliveries in flight and
    /// returns them, with the time of the next deadline.
    pub async fn due(&self, now_ms: i64) -> SubResult<(Vec<Delivery>, Option<i64>)> {
        let mut st = self.lock().await?;
        let mut out = Vec::new();
        let mut next: Option<i64> = None;
        let ids: Vec<String> = st.subs.keys().cloned().collect();
        for id in ids {
            let Some(mut s) = st.subs.get(&id).cloned() else {
                continue;
            };
            if s.wake.lease_expires_at_ms.is_some_and(|t| t <= now_ms) {
                s.end_wake();
                let woke = self.next_wake(&mut st, &mut s).await?;
                self.commit(&mut st, s.clone(), &[], woke).await?;
            }
            if let Some(t) = s.wake.lease_expires_at_ms {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
            let due = s.kind == Kind::Webhook && s.wake.wake_id.is_some() && !s.wake.delivered;
            if !due || st.in_flight.contains(&id) {
                continue;
            }
            let at = s.wake.next_attempt_at_ms.unwrap_or(now_ms);
            if at > now_ms {
                next = Some(next.map_or(at, |n| n.min(at)));
                continue;
            }
            self.ensure_keys(&mut st).await?;
            let d = self.delivery(&mut st, &s).await?;
            st.in_flight.insert(id);
            out.push(d);
        }
        Ok((out, next))
    }

    async fn delivery(&self, st: &mut State, s: &Subscription) -> SubResult<Delivery> {
        let infos = self.infos(st, s).await?;
        let body = json!({
            "subscription_id": s.id,
            "wake_id": s.wake.wake_id,
            "generation": s.wake.generation,
            "streams": infos.iter().map(StreamInfo::to_json).collect::<Vec<_>>(),
            "callback_url": s.action_url("callback"),
            "callback_token": self.token(st, s),
        })
        .to_string();
        let t = self.now_ms().div_euclid(1000);
        let signature = st
            .keys
            .as_ref()
            .map(|k| k.signer.signature_header(t, body.as_bytes()))
            .unwrap_or_default();
        Ok(Delivery {
            id: s.id.clone(),
            wake_id: s.wake.wake_id.clone().unwrap_or_default(),
            url: s.webhook_url.clone().unwrap_or_default(),
            body: Bytes::from(body),
            signature,
        })
    }

    /// The outcome of a delivery: `Ok(done)` for a 2xx answer (`done`: it said
    /// `{"done":true}`), `Err` otherwise. Ignored if the wake is no longer current.
    pub async fn delivered(&self, d: &Delivery, outcome: Result<bool, String>) -> SubResult<()> {
        let mut st = self.lock().await?;
        st.in_flight.remove(&d.id);
        let Some(mut s) = st.subs.get(&d.id).cloned() else {
            return Ok(());
        };
        if s.wake.wake_id.as_deref() != Some(d.wake_id.as_str()) {
            return Ok(());
        }
        let now = self.now_ms();
        let mut moved = Vec::new();
        let mut woke = false;
        match outcome {
            Ok(done) => {
                let w = &mut s.wake;
                w.failed = false;
                w.retry_count = 0;
                w.next_attempt_at_ms = None;
                w.delivered = true;
                w.lease_expires_at_ms = Some(now + s.lease_ttl_ms as i64);
                if done {
                    moved = s.ack_snapshot();
                    s.end_wake();
                    woke = self.next_wake(&mut st, &mut s).await?;
                }
            }
            Err(e) => {
                let w = &mut s.wake;
                w.failed = true;
                w.retry_count = w.retry_count.saturating_add(1);
                let base = crate::subscriptions::backoff_ms(
                    w.retry_count,
                    self.settings.retry_base_ms,
                    self.settings.retry_max_ms,
                );
                // ±20% jitter.
                let factor = 800 + self.engine.clock().random_in(0, 400);
                let delay = base.saturating_mul(factor) / 1000;
                w.next_attempt_at_ms = Some(now + delay as i64);
                tracing::info!(subscription = %s.id, attempt = w.retry_count, delay_ms = delay, error = %e, "webhook delivery failed; retrying");
            }
        }
        self.commit(&mut st, s, &moved, woke).await?;
        self.kick.notify_one();
        Ok(())
    }

    /// Resolves when the timers may have changed.
    pub async fn changed(&self) {
        self.kick.notified().await
    }
}
