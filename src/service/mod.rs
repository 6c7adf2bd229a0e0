//! Domain rules of the Durable Streams protocol, between HTTP and storage. The HTTP layer
//! hands over raw header values and bodies; this layer validates them with the
//! `protocol` parsers, calls the engine, and returns typed outcomes or [`ServiceError`].

pub mod details;
pub mod error;
mod ingest;
pub mod listing;
pub mod read;
pub mod search;
pub mod server_details;
mod settings;
mod stream_config;
pub mod subscriptions;
pub mod touch;

pub use settings::StreamSettings;

use crate::config::Limits;
use bytes::Bytes;

use crate::engine::{
    AppendCmd, CreateCmd, CreateOutcome, Engine, ForkSpec, IngestBudget, ReadLimits, Reservation,
    StreamMeta,
};
use crate::protocol::expiry::Expiry;
use crate::protocol::headers::{self, Producer};
use crate::protocol::offset::{Offset, OffsetParam};
use crate::protocol::{content_type, json, name, route};

pub use error::{ServiceError, ServiceResult};

/// Request values of a create (PUT), as received.
#[derive(Debug, Default, Clone)]
pub struct CreateParams {
    pub content_type: Option<String>,
    pub ttl: Option<String>,
    pub expires_at: Option<String>,
    pub closed: Option<String>,
    pub forked_from: Option<String>,
    pub fork_offset: Option<String>,
    pub fork_sub_offset: Option<String>,
    /// `Stream-Key`: the routing key of the initial entries.
    pub stream_key: Option<String>,
}

/// Request values of an append (POST), as received.
#[derive(Debug, Default, Clone)]
pub struct AppendParams {
    pub content_type: Option<String>,
    pub closed: Option<String>,
    pub stream_seq: Option<String>,
    pub producer_id: Option<String>,
    pub producer_epoch: Option<String>,
    pub producer_seq: Option<String>,
    /// `Stream-Key`: the routing key of every entry of the append.
    pub stream_key: Option<String>,
}

/// What a stream looks like to clients.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    pub id: i64,
    pub name: String,
    pub content_type: String,
    pub next_offset: Offset,
    pub closed: bool,
    /// The TTL window in seconds, for streams created with a TTL.
    pub ttl_seconds: Option<u64>,
    /// The deadline, for streams created with `Stream-Expires-At`.
    pub expires_at: Option<String>,
    pub created_at: String,
}

impl StreamInfo {
    fn from_meta(m: &StreamMeta) -> StreamInfo {
        let (ttl_seconds, expires_at) = match m.config.expiry {
            Expiry::None => (None, None),
            Expiry::Ttl(s) => (Some(s), None),
            Expiry::At(at) => (None, Some(headers::format_rfc3339_ms(at))),
        };
        StreamInfo {
            id: m.id,
            name: m.name.clone().unwrap_or_default(),
            content_type: m.config.content_type.clone(),
            next_offset: Offset::at(m.tail.next_pos),
            closed: m.tail.closed,
            ttl_seconds,
            expires_at,
            created_at: headers::format_rfc3339_ms(m.config.created_at_ms),
        }
    }
}

/// A request body, with its bytes reserved in the ingest budget (see
/// [`StreamService::ingest_budget`]) until the writer has run the request.
#[derive(Debug, Default)]
pub struct Body {
    pub bytes: Bytes,
    pub hold: Reservation,
}

/// Bytes outside the budget (internal writes and in-process callers).
impl<T: Into<Bytes>> From<T> for Body {
    fn from(b: T) -> Body {
        Body {
            bytes: b.into(),
            hold: Reservation::default(),
        }
    }
}

/// Result of a create.
#[derive(Debug)]
pub struct Created {
    /// True for a new stream (201), false for an idempotent repeat (200).
    pub new: bool,
    pub info: StreamInfo,
}

/// Result of an append.
#[derive(Debug)]
pub struct Appended {
    pub next_offset: Offset,
    pub closed: bool,
    /// `(epoch, seq)` to echo when producer headers were sent.
    pub producer: Option<(u64, u64)>,
    /// Entries were written under a producer: the protocol answers 200 instead of 204.
    pub producer_wrote: bool,
}

/// The protocol operations over one engine.
#[derive(Clone)]
pub struct StreamService {
    engine: Engine,
    limits: Limits,
    /// One permit per concurrent long-poll or SSE reader (`DS_MAX_LIVE_READERS`).
    live_slots: std::sync::Arc<tokio::sync::Semaphore>,
    /// Parsed profiles and registries (see [`StreamService::settings`]).
    settings_cache: std::sync::Arc<settings::SettingsCache>,
    /// Live-query touch state of the touch-enabled streams.
    touch: std::sync::Arc<touch::TouchManager>,
    /// Durable Streams subscriptions (the reserved `__ds` routes).
    subscriptions: std::sync::Arc<subscriptions::SubscriptionManager>,
    /// `_aggregate`'s summaries of chunks no segment summary covers.
    chunk_summaries: std::sync::Arc<search::ChunkSummaries>,
}

fn bad(msg: impl Into<String>) -> ServiceError {
    ServiceError::BadRequest(msg.into())
}

impl StreamService {
    pub fn new(engine: Engine, limits: Limits) -> StreamService {
        let live_slots = std::sync::Arc::new(tokio::sync::Semaphore::new(limits.max_live_readers));
        StreamService {
            touch: std::sync::Arc::new(touch::TouchManager::new(engine.clone())),
            subscriptions: std::sync::Arc::new(subscriptions::SubscriptionManager::new(
                engine.clone(),
                limits.subscriptions.clone(),
            )),
            engine,
            limits,
            live_slots,
            settings_cache: Default::default(),
            chunk_summaries: Default::default(),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The live-query touch state.
    pub fn touch(&self) -> &touch::TouchManager {
        &self.touch
    }

    /// Durable Streams subscriptions.
    pub fn subscriptions(&self) -> &std::sync::Arc<subscriptions::SubscriptionManager> {
        &self.subscriptions
    }

    /// The budget request bodies reserve their bytes in as they arrive.
    pub fn ingest_budget(&self) -> &IngestBudget {
        self.engine.ingest_budget()
    }

    /// Parses the raw path remainder after `/v1/stream/`: the stream and what of it is
    /// addressed.
    pub fn parse_path(raw: &str) -> ServiceResult<(String, route::Sub)> {
        route::parse(raw).map_err(|e| bad(e.to_string()))
    }

    /// A live stream (not deleted, not expired) or the matching error.
    pub(crate) async fn live(&self, name: &str) -> ServiceResult<StreamMeta> {
        match self.engine.lookup(name).await? {
            None => Err(ServiceError::NotFound("stream not found".into())),
            Some(m) if m.life.deleted => Err(ServiceError::Gone),
            Some(m) if m.is_expired(self.engine.clock().now_ms()) => {
                Err(ServiceError::NotFound("stream expired".into()))
            }
            Some(m) => Ok(m),
        }
    }

    /// How `format=json` reads of this stream promote older messages to the current
    /// schema version (`None`: every message is at it). A stored lens that cannot be
    /// used is a server fault (500); a record the lens cannot transform is the client's
    /// 400, as in the original.
    pub(crate) async fn promoter(
        &self,
        meta: &StreamMeta,
    ) -> ServiceResult<Option<read::Promotion>> {
        if meta.settings.config_gen == 0 {
            return Ok(None);
        }
        let settings = self.settings(meta).await?;
        let current = settings.registry.current_version();
        if current <= 1 {
            return Ok(None);
        }
        let config_gen = settings.config_gen;
        let f: read::Promote = std::sync::Arc::new(move |pos: u64, message: &[u8]| {
            let registry = &settings.registry;
            let version = registry.version_at(pos);
            if version >= current {
                return Ok(None);
            }
            let chain = registry.lens_chain(version).map_err(|e| {
                tracing::error!(error = %e, "stored lens chain is unusable");
                ServiceError::Internal
            })?;
            let record: serde_json::Value = serde_json::from_slice(message).map_err(|e| {
                tracing::error!(error = %e, "stored JSON message does not parse");
                ServiceError::Internal
            })?;
            let promoted =
                crate::lens::promote(&chain, record).map_err(ServiceError::BadRequest)?;
            serde_json::to_vec(&promoted)
                .map(Some)
                .map_err(|_| ServiceError::Internal)
        });
        Ok(Some(read::Promotion { f, config_gen }))
    }

    /// Renews the sliding TTL of a stream that has one.
    pub(crate) fn renew(&self, m: &StreamMeta) {
        if matches!(m.config.expiry, Expiry::Ttl(_)) {
            self.engine.renew(m.id);
        }
    }

    pub async fn create(
        &self,
        name: &str,
        p: CreateParams,
        body: impl Into<Body>,
    ) -> ServiceResult<Created> {
        let body: Body = body.into();
        let expiry = match (&p.ttl, &p.expires_at) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "only one of Stream-TTL or Stream-Expires-At is allowed",
                ))
            }
            (Some(t), None) => Some(Expiry::Ttl(headers::parse_ttl(t).map_err(bad)?)),
            (None, Some(a)) => Some(Expiry::At(headers::parse_expires_at(a).map_err(bad)?)),
            (None, None) => None,
        };
        let sub_offset = match &p.fork_sub_offset {
            None => 0,
            Some(v) => headers::parse_canonical_uint(v.trim())
                .ok_or_else(|| bad(format!("invalid Stream-Fork-Sub-Offset: {v:?}")))?,
        };
        let fork = match &p.forked_from {
            None => {
                if p.fork_offset.is_some() || p.fork_sub_offset.is_some() {
                    return Err(bad(
                        "Stream-Fork-Offset and Stream-Fork-Sub-Offset require Stream-Forked-From",
                    ));
                }
                None
            }
            Some(src) => {
                let pos = match &p.fork_offset {
                    None if sub_offset > 0 => {
                        return Err(bad("Stream-Fork-Sub-Offset requires Stream-Fork-Offset"))
                    }
                    None => None,
                    Some(o) => Some(match OffsetParam::parse(o.trim(), false) {
                        Ok(OffsetParam::At(o)) => o.pos,
                        Ok(OffsetParam::Start) => 0,
                        Ok(OffsetParam::Now) | Err(_) => {
                            return Err(bad(format!("invalid Stream-Fork-Offset: {o:?}")))
                        }
                    }),
                };
                let source = parse_source(src)?;
                let entry = match pos {
                    Some(p) if sub_offset > 0 => self.fork_entry(&source, p).await?,
                    _ => None,
                };
                Some(ForkSpec {
                    source,
                    pos,
                    sub_offset,
                    entry,
                })
            }
        };
        if fork.as_ref().is_some_and(|f| f.source == name) {
            return Err(bad("a stream cannot be forked from itself"));
        }
        let content_type = p
            .content_type
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty());
        let cmd = CreateCmd {
            name: name.to_string(),
            content_type,
            expiry,
            closed: headers::is_true(p.closed.as_deref()),
            fork,
            body: body.bytes,
            key: p.stream_key.map(|k| Bytes::from(k.into_bytes())),
            hold: body.hold,
            local_only: false,
        };
        match self.engine.create(cmd).await? {
            CreateOutcome::Created(m) => {
                if m.tail.next_pos > 0 {
                    self.subscriptions.after_append(name).await;
                }
                Ok(Created {
                    new: true,
                    info: StreamInfo::from_meta(&m),
                })
            }
            CreateOutcome::Exists(m) => Ok(Created {
                new: false,
                info: StreamInfo::from_meta(&m),
            }),
        }
    }

    /// For a byte sub-offset fork of a raw stream: the source entry at `pos`, wherever it is
    /// stored. The writer checks the source incarnation again and reports missing sources.
    async fn fork_entry(&self, source: &str, pos: u64) -> ServiceResult<Option<(i64, Vec<u8>)>> {
        let Some(src) = self.engine.lookup(source).await? else {
            return Ok(None);
        };
        if content_type::is_json(&src.config.content_type)
            || src.life.deleted
            || pos >= src.tail.next_pos
        {
            return Ok(None);
        }
        let one = ReadLimits {
            max_bytes: usize::MAX,
            max_records: 1,
            key: None,
            filter: None,
        };
        let batch = self.engine.read(&src, pos, one).await?;
        let first = batch.entries.iter().next().map(|e| (src.id, e.to_vec()));
        Ok(first)
    }

    pub async fn append(
        &self,
        name: &str,
        p: AppendParams,
        body: impl Into<Body>,
    ) -> ServiceResult<Appended> {
        let Body { bytes: body, hold } = body.into();
        let close = headers::is_true(p.closed.as_deref());
        if body.is_empty() && !close {
            return Err(bad("empty body"));
        }
        let producer: Option<Producer> = headers::parse_producer(
            p.producer_id.as_deref(),
            p.producer_epoch.as_deref(),
            p.producer_seq.as_deref(),
        )
        .map_err(bad)?;
        let stream_seq = p
            .stream_seq
            .as_deref()
            .map(headers::parse_stream_seq)
            .transpose()
            .map_err(bad)?;
        let content_type = p.content_type.filter(|c| !c.trim().is_empty());
        if !body.is_empty() && content_type.is_none() {
            return Err(bad("missing content-type"));
        }
        let mut hold = Some(hold);
        // The entries are shaped for the stream's profile and schema as the service sees
        // them: first as the metadata cache says, a stream it does not hold taken as
        // unconfigured (most streams are: they need no lookup); then, if the writer says
        // the configuration is another, as read again. A reconfiguration is rare: a few
        // attempts suffice.
        let mut guess = Some(self.engine.cached_config_gen(name).unwrap_or(0));
        for _ in 0..4 {
            let (config_gen, shaped) = match guess.take() {
                Some(0) => (0, None),
                _ => {
                    let key = p.stream_key.as_deref();
                    self.shape_append(name, &body, content_type.as_deref(), key)
                        .await?
                }
            };
            let (entries, keys, framing_error) = match shaped {
                Some(s) => (s.entries, s.keys, None),
                None => self.frame_append(&body, content_type.as_deref(), &p.stream_key),
            };
            let cmd = AppendCmd {
                name: name.to_string(),
                content_type: content_type.clone(),
                entries,
                keys,
                close,
                producer: producer.clone(),
                stream_seq: stream_seq.clone(),
                framing_error,
                hold: hold.take().unwrap_or_default(),
                config_gen: Some(config_gen),
            };
            match self.engine.append(cmd).await {
                Ok(out) => {
                    if out.written > 0 {
                        self.subscriptions.after_append(name).await;
                    }
                    return Ok(Appended {
                        next_offset: Offset::at(out.next_pos),
                        closed: out.closed,
                        producer: out.producer,
                        producer_wrote: out.producer.is_some() && out.written > 0,
                    });
                }
                Err(crate::engine::AppendError::ConfigChanged) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(crate::engine::AppendError::ConfigChanged.into())
    }

    /// The stream's configuration generation and, when its profile or schema needs it,
    /// the append body shaped for them (`None`: frame it as the protocol does).
    async fn shape_append(
        &self,
        name: &str,
        body: &Bytes,
        content_type: Option<&str>,
        stream_key: Option<&str>,
    ) -> ServiceResult<(u64, Option<ingest::Shaped>)> {
        let Some(meta) = self.engine.lookup(name).await? else {
            // The writer reports the missing stream, in the protocol's order.
            return Ok((0, None));
        };
        let config_gen = meta.settings.config_gen;
        let (Some(ct), false) = (content_type, body.is_empty() || config_gen == 0) else {
            return Ok((config_gen, None));
        };
        let settings = self.settings(&meta).await?;
        if !settings.shapes_appends() {
            return Ok((config_gen, None));
        }
        let now = self.engine.clock().now_ms();
        let shaped = ingest::shape(&settings, body, ct, stream_key, now)?;
        Ok((config_gen, shaped))
    }

    /// The protocol's framing of an append body: JSON bodies split into messages (an
    /// invalid one is reported by the writer after the stream checks), others one entry;
    /// `Stream-Key` keys every entry.
    fn frame_append(
        &self,
        body: &Bytes,
        content_type: Option<&str>,
        stream_key: &Option<String>,
    ) -> (Vec<Bytes>, Vec<Option<Bytes>>, Option<String>) {
        let mut framing_error = None;
        let entries = match content_type {
            _ if body.is_empty() => Vec::new(),
            Some(ct) if content_type::is_json(ct) => match json::split_messages(body, false) {
                Ok(msgs) => msgs,
                Err(e) => {
                    framing_error = Some(e.to_string());
                    vec![body.clone()]
                }
            },
            _ => vec![body.clone()],
        };
        let keys = match stream_key {
            Some(k) => vec![Some(Bytes::copy_from_slice(k.as_bytes())); entries.len()],
            None => Vec::new(),
        };
        (entries, keys, framing_error)
    }

    pub async fn head(&self, name: &str) -> ServiceResult<StreamInfo> {
        Ok(StreamInfo::from_meta(&self.live(name).await?))
    }

    pub async fn delete(&self, name: &str) -> ServiceResult<()> {
        Ok(self.engine.delete(name).await?)
    }

    /// Live streams in name order; `limit` is clamped to 1..=1000.
    pub async fn list(&self, offset: usize, limit: usize) -> ServiceResult<Vec<StreamInfo>> {
        let metas = self.engine.list(offset, limit.clamp(1, 1000)).await?;
        Ok(metas.iter().map(StreamInfo::from_meta).collect())
    }

    /// Creates the server's own JSON stream `name` (kept in SQLite only) if it is missing.
    pub async fn ensure_internal_stream(&self, name: &str) -> ServiceResult<()> {
        let cmd = CreateCmd {
            name: name.to_string(),
            content_type: Some("application/json".into()),
            expiry: None,
            closed: false,
            fork: None,
            body: Bytes::new(),
            key: None,
            hold: Reservation::default(),
            local_only: true,
        };
        match self.engine.create(cmd).await {
            Ok(_) => Ok(()),
            // A user stream of that name already exists: keep it, and append to it.
            Err(crate::engine::CreateError::ConfigMismatch) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Appends one JSON event to an internal stream and trims it to `keep` entries.
    pub async fn append_internal(
        &self,
        name: &str,
        event: Vec<u8>,
        keep: u64,
    ) -> ServiceResult<()> {
        let cmd = AppendCmd {
            name: name.to_string(),
            content_type: Some("application/json".into()),
            entries: vec![Bytes::from(event)],
            keys: Vec::new(),
            close: false,
            producer: None,
            stream_seq: None,
            framing_error: None,
            hold: Reservation::default(),
            config_gen: None,
        };
        self.engine.append_retained(cmd, keep).await?;
        Ok(())
    }

    /// A page of the stream's routing keys, as `_routing_keys` answers it.
    pub async fn routing_keys(
        &self,
        name: &str,
        limit: usize,
        after: Option<String>,
    ) -> ServiceResult<serde_json::Value> {
        let meta = self.live(name).await?;
        let started = crate::clock::monotonic();
        let after = after
            .filter(|a| !a.is_empty())
            .map(|a| Bytes::from(a.into_bytes()));
        let page = self.engine.routing_keys(&meta, after, limit).await?;
        let keys: Vec<String> = page
            .keys
            .iter()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        let next_after = if page.more {
            keys.last().cloned()
        } else {
            None
        };
        Ok(serde_json::json!({
            "stream": name,
            "source": { "kind": "routing_key", "name": "" },
            "took_ms": started.elapsed().as_millis() as u64,
            "coverage": {
                "complete": true,
                "indexed_segments": 0,
                "scanned_uploaded_segments": page.scanned_segments,
                "scanned_local_segments": 0,
                "scanned_wal_rows": 0,
                "possible_missing_uploaded_segments": 0,
                "possible_missing_local_segments": 0,
            },
            "keys": keys,
            "next_after": next_after,
        }))
    }

    /// Number of live streams.
    pub async fn count_streams(&self) -> ServiceResult<u64> {
        Ok(self.engine.count_streams().await?)
    }

    /// Reclaims expired streams (the background sweeper calls this).
    pub async fn sweep_expired(&self) -> ServiceResult<usize> {
        Ok(self
            .engine
            .sweep_expired(self.limits.expiry_sweep_limit)
            .await?)
    }

    /// Trims every stream to the retention policy (local mode's background task calls
    /// this); returns the entries and payload bytes removed.
    pub async fn apply_retention(
        &self,
        policy: crate::config::RetentionPolicy,
    ) -> ServiceResult<(u64, u64)> {
        Ok(self.engine.apply_retention(policy).await?)
    }

    /// Deletes up to `DS_EXPIRY_SWEEP_LIMIT` producer states idle for longer than
    /// `DS_PRODUCER_STATE_TTL_MS` (the background sweeper calls this; 0 disables it).
    pub async fn collect_producers(&self) -> ServiceResult<usize> {
        let ttl = self.limits.producer_state_ttl_ms;
        if ttl == 0 {
            return Ok(0);
        }
        Ok(self
            .engine
            .collect_producers(ttl, self.limits.expiry_sweep_limit)
            .await?)
    }
}

/// `Stream-Forked-From`: a path `/v1/stream/<name>` (or an absolute URL with that path).
fn parse_source(v: &str) -> ServiceResult<String> {
    let v = v.trim();
    let path = match v.find("://") {
        Some(i) => {
            let rest = &v[i + 3..];
            rest.find('/').map_or("", |j| &rest[j..])
        }
        None => v,
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    let raw = path.strip_prefix("/v1/stream/").ok_or_else(|| {
        bad(format!(
            "Stream-Forked-From must be a /v1/stream/ path, got {v:?}"
        ))
    })?;
    name::parse(raw).map_err(|e| bad(format!("invalid Stream-Forked-From: {e}")))
}

#[cfg(test)]
mod tests {
    use super::parse_source;

    #[test]
    fn fork_sources_are_paths_or_urls() {
        assert_eq!(parse_source("/v1/stream/a/b").unwrap(), "a/b");
        assert_eq!(
            parse_source("http://h:1/v1/stream/a%2Fb?x=1").unwrap(),
            "a/b"
        );
        assert!(parse_source("/other/a").is_err());
        assert!(parse_source("/v1/stream/").is_err());
    }
}
