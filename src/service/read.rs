//! Reads: one session type for catch-up, long-poll and SSE. A session pages through
//! storage in bounded batches from a position and, in live modes, follows the engine's
//! committed state: a reader woken at the old tail answers from the entries the commit
//! published (no storage read), and every reader waiting at the same position shares
//! one encoded page ([`Committed::encoded`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::{bad, ServiceError, ServiceResult, StreamService};
use crate::engine::{
    Collect, Committed, Encoded, EncodingKey, Entries, EntryFilter, ReadBatch, ReadLimits,
    StreamMeta, TailReceiver,
};
use crate::protocol::headers;
use crate::protocol::offset::{Offset, OffsetParam};
use crate::protocol::sse::{self, Control};
use crate::protocol::{content_type, cursor, json};
use crate::telemetry::metrics::{metrics, Gauge, ReadMode};

/// A live reader's slot: holds one of the `DS_MAX_LIVE_READERS` permits and counts the
/// reader as active while it lives.
struct Active(&'static Gauge, #[allow(dead_code)] OwnedSemaphorePermit);

impl Active {
    fn new(svc: &StreamService, mode: ReadMode) -> ServiceResult<Active> {
        let permit = svc
            .live_slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| ServiceError::TooManyReaders)?;
        let g = metrics().readers(mode);
        g.add(1);
        Ok(Active(g, permit))
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.add(-1);
    }
}

/// How the response may be cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachePolicy {
    /// Immutable history: shared caches may keep it.
    Public,
    /// At the tail: caches must revalidate (the ETag makes that cheap).
    Revalidate,
    /// Never cache (`offset=now`, long-poll timeouts).
    NoStore,
}

/// Query parameters of a read, as received.
#[derive(Debug, Default, Clone)]
pub struct ReadParams {
    pub offset: Option<String>,
    pub live: Option<String>,
    pub cursor: Option<String>,
    /// Routing-key filter (`/pk/{key}` or `key=`; empty means none).
    pub key: Option<String>,
    /// Start at the first entry appended at or after this time (only without `offset`).
    pub since: Option<String>,
    /// `raw` or `json`.
    pub format: Option<String>,
    /// A search-language filter over the record's search fields (JSON streams).
    pub filter: Option<String>,
}

/// How entries are framed in a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A JSON array of the messages (JSON streams), promoted through the schema's lenses.
    Json,
    /// The bytes of the entries, concatenated.
    Raw,
}

/// Promotes a stored JSON message at a position to the stream's current schema version;
/// `None` when the message is already at it.
pub type Promote = Arc<dyn Fn(u64, &[u8]) -> ServiceResult<Option<Vec<u8>>> + Send + Sync>;

/// How a view promotes records: the function and the configuration generation it was
/// built from (part of the ETag).
#[derive(Clone)]
pub(crate) struct Promotion {
    pub f: Promote,
    pub config_gen: u64,
}

/// What a read session serves: the stream (its tail follows commits), and how.
#[derive(Clone)]
struct View {
    meta: StreamMeta,
    format: Format,
    key: Option<Bytes>,
    promote: Option<Promotion>,
    /// `filter=`: its text (part of the ETag) and the engine's test.
    filter: Option<(String, EntryFilter)>,
}

impl View {
    fn limits(&self, svc: &StreamService) -> ReadLimits {
        ReadLimits {
            max_bytes: svc.limits.read_max_bytes,
            max_records: svc.limits.read_max_records,
            key: self.key.clone(),
            filter: self.filter.as_ref().map(|(_, f)| f.clone()),
        }
    }

    /// Frames entries (at `positions`) as a response body.
    fn frame(&self, entries: &Entries, positions: &[u64]) -> ServiceResult<Bytes> {
        match (self.format, &self.promote) {
            (Format::Raw, _) => Ok(concat(entries)),
            (Format::Json, None) => Ok(json_array(entries.iter())),
            (Format::Json, Some(promote)) => {
                let promoted: Vec<Option<Vec<u8>>> = entries
                    .iter()
                    .zip(positions)
                    .map(|(e, &pos)| (promote.f)(pos, e))
                    .collect::<ServiceResult<_>>()?;
                let messages = entries
                    .iter()
                    .zip(&promoted)
                    .map(|(e, p)| p.as_deref().unwrap_or(e));
                Ok(json_array(messages))
            }
        }
    }

    /// Whether every reader at a position gets the same page (no per-reader filter).
    fn shareable(&self) -> bool {
        self.key.is_none() && self.promote.is_none() && self.filter.is_none()
    }

    /// The kind of a shared encoding (see [`Committed::encoded`]) for this view.
    fn encoding(&self, sse: bool) -> u8 {
        match (self.format, sse) {
            (Format::Json, false) => 1,
            (Format::Json, true) => 2,
            (Format::Raw, false) => 3,
            (Format::Raw, true) => 4,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    CatchUp,
    LongPoll,
    Sse,
}

/// A 200 response with data (possibly empty).
#[derive(Debug)]
pub struct Page {
    pub body: Bytes,
    pub content_type: String,
    pub next_offset: Offset,
    pub up_to_date: bool,
    pub closed: bool,
    pub etag: Option<String>,
    pub cursor: Option<String>,
    pub cache: CachePolicy,
    /// A `filter=` read stopped at its scan limit: (limit, bytes tested).
    pub filter_limit: Option<(usize, usize)>,
}

/// The outcome of a read request.
pub enum ReadOutcome {
    Page(Page),
    /// 204: long-poll timed out at the tail, or the stream is closed and fully read.
    NoContent {
        next_offset: Offset,
        closed: bool,
        cursor: Option<String>,
    },
    Sse(Box<SseSession>),
}

fn json_array<'a>(messages: impl Iterator<Item = &'a [u8]> + Clone) -> Bytes {
    let mut out = Vec::with_capacity(json::array_len(messages.clone()));
    json::write_array(&mut out, messages);
    Bytes::from(out)
}

fn concat(entries: &Entries) -> Bytes {
    if entries.len() == 1 {
        return entries.bytes(0);
    }
    let mut out = Vec::with_capacity(entries.iter().map(<[u8]>::len).sum());
    for e in entries.iter() {
        out.extend_from_slice(e);
    }
    Bytes::from(out)
}

/// The SSE `data` event of a page body (base64 for non-text streams).
fn sse_data_event(body: &[u8], text: bool) -> Bytes {
    let mut out = Vec::with_capacity(body.len() + 64);
    if text {
        sse::write_event(&mut out, "data", body);
    } else {
        sse::write_event(&mut out, "data", &sse::base64(body));
    }
    Bytes::from(out)
}

/// Waits for the stream's next committed state; `None` on timeout or shutdown.
async fn wait_commit(rx: &mut TailReceiver, deadline: Instant) -> Option<Arc<Committed>> {
    loop {
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {
                if let Some(c) = rx.borrow_and_update().clone() {
                    return Some(c);
                }
            }
            Ok(Err(_)) | Err(_) => return None,
        }
    }
}

impl StreamService {
    fn cursor(&self, client: Option<&str>) -> String {
        let clock = self.engine.clock();
        cursor::next_cursor(clock.now_ms(), client, clock.random_in(1, 3600)).to_string()
    }

    async fn read_batch(&self, view: &View, pos: u64) -> ServiceResult<ReadBatch> {
        Ok(self.engine.read(&view.meta, pos, view.limits(self)).await?)
    }

    fn page(
        &self,
        view: &View,
        from: u64,
        batch: ReadBatch,
        live_cursor: Option<String>,
    ) -> ServiceResult<Page> {
        let meta = &view.meta;
        let up_to_date = batch.next_pos >= meta.tail.next_pos;
        let closed = meta.tail.closed && up_to_date;
        // The incarnation's token, not its row id: it survives a rebuild from the object
        // store, and another incarnation of the name never shares it. The format and key
        // are part of what the page holds.
        let mut etag = format!("\"{}:{}:{}", meta.config.incarnation, from, batch.next_pos);
        if view.format == Format::Raw && content_type::is_json(&meta.config.content_type) {
            etag.push_str(":raw");
        }
        if let Some(k) = &view.key {
            etag.push_str(":k");
            for b in k.iter() {
                etag.push_str(&format!("{b:02x}"));
            }
        }
        if let Some(p) = &view.promote {
            etag.push_str(&format!(":g{}", p.config_gen));
        }
        if let Some((text, _)) = &view.filter {
            etag.push_str(&format!(
                ":f{:016x}",
                xxhash_rust::xxh3::xxh3_64(text.as_bytes())
            ));
        }
        if closed {
            etag.push_str(":c");
        }
        etag.push('"');
        let filter_limit = self.filter_limit(view, &batch);
        Ok(Page {
            filter_limit,
            body: view.frame(&batch.entries, &batch.positions)?,
            content_type: meta.config.content_type.clone(),
            next_offset: Offset::at(batch.next_pos.max(from)),
            up_to_date,
            closed,
            etag: Some(etag),
            cache: if up_to_date {
                CachePolicy::Revalidate
            } else {
                CachePolicy::Public
            },
            cursor: live_cursor,
        })
    }

    /// What the scan-limit headers say about a page, if the filter's limit ended it.
    fn filter_limit(&self, view: &View, batch: &ReadBatch) -> Option<(usize, usize)> {
        let (_, f) = view.filter.as_ref()?;
        batch
            .filter_limit_reached
            .then_some((f.scan_limit_bytes, batch.filter_scanned_bytes))
    }

    /// The view a read asks for: the format (default by content type) and key filter.
    async fn view(&self, meta: StreamMeta, p: &ReadParams) -> ServiceResult<View> {
        let json = content_type::is_json(&meta.config.content_type);
        let format = match p.format.as_deref() {
            None | Some("") => {
                if json {
                    Format::Json
                } else {
                    Format::Raw
                }
            }
            Some("raw") => Format::Raw,
            Some("json") if json => Format::Json,
            Some(_) => return Err(bad("invalid format")),
        };
        let key = p
            .key
            .as_deref()
            .filter(|k| !k.is_empty())
            .map(|k| Bytes::copy_from_slice(k.as_bytes()));
        let filter = match p.filter.as_deref() {
            None => None,
            Some(_) if !json => {
                return Err(bad("filter requires application/json stream content-type"))
            }
            Some(text) => {
                let text = text.trim().to_string();
                let settings = self.settings(&meta).await?;
                let mut f = super::search::entry_filter(settings, &text)?;
                f.scan_limit_bytes = self.limits.read_filter_scan_limit_bytes;
                Some((text, f))
            }
        };
        let promote = if format == Format::Json {
            self.promoter(&meta).await?
        } else {
            None
        };
        Ok(View {
            meta,
            format,
            key,
            promote,
            filter,
        })
    }

    /// Serves `GET /v1/stream/{name}` in any mode.
    pub async fn read(&self, name: &str, p: ReadParams) -> ServiceResult<ReadOutcome> {
        let mode = match p.live.as_deref() {
            None | Some("") | Some("false") | Some("0") => Mode::CatchUp,
            Some("long-poll") | Some("true") | Some("1") => Mode::LongPoll,
            Some("sse") => Mode::Sse,
            Some(other) => return Err(bad(format!("invalid live mode: {other:?}"))),
        };
        let since = match (&p.offset, p.since.as_deref()) {
            (None, Some(s)) => Some(
                headers::parse_expires_at(s).map_err(|_| bad(format!("invalid since: {s:?}")))?,
            ),
            _ => None,
        };
        let offset = match p.offset.as_deref() {
            None if mode == Mode::CatchUp || since.is_some() => OffsetParam::Start,
            None => return Err(bad("live reads require an offset")),
            Some("") => return Err(bad("missing offset")),
            Some(o) => OffsetParam::parse(o, true).map_err(|e| bad(e.to_string()))?,
        };
        let commits = self.engine.commits();
        let meta = self.live(name).await?;
        self.renew(&meta);
        let view = self.view(meta, &p).await?;
        if view.filter.is_some() && mode == Mode::Sse {
            return Err(bad("filter does not support live=sse"));
        }
        let meta = &view.meta;
        let mut pos = match offset {
            // A stream trimmed by retention starts at its oldest retained entry.
            OffsetParam::Start if meta.is_trimmed() => meta.tier.trimmed_pos,
            OffsetParam::Start => 0,
            OffsetParam::Now => meta.tail.next_pos,
            OffsetParam::At(o) if meta.is_trimmed() && o.pos < meta.tier.trimmed_pos => {
                return Err(ServiceError::Trimmed)
            }
            OffsetParam::At(o) => o.pos,
        };
        if let Some(since) = since {
            pos = self
                .engine
                .seek_time(meta, pos, since, view.key.clone())
                .await?;
        }
        match mode {
            Mode::CatchUp => {
                if offset == OffsetParam::Now {
                    return Ok(ReadOutcome::Page(Page {
                        body: view.frame(&Entries::default(), &[])?,
                        content_type: meta.config.content_type.clone(),
                        next_offset: Offset::at(meta.tail.next_pos),
                        up_to_date: true,
                        closed: meta.tail.closed,
                        etag: None,
                        cursor: None,
                        cache: CachePolicy::NoStore,
                        filter_limit: None,
                    }));
                }
                let batch = self.read_batch(&view, pos).await?;
                metrics().read(ReadMode::CatchUp, batch.bytes);
                Ok(ReadOutcome::Page(self.page(&view, pos, batch, None)?))
            }
            Mode::LongPoll => self.long_poll(view, commits, pos, p.cursor).await,
            Mode::Sse => {
                let active = Active::new(self, ReadMode::Sse)?;
                let rx = self.engine.subscribe(view.meta.id);
                let mut view = view;
                view.meta = self.refresh_if_committed(view.meta, commits).await?;
                Ok(ReadOutcome::Sse(Box::new(SseSession {
                    _active: active,
                    service: self.clone(),
                    rx,
                    woken_by: None,
                    sse_text: content_type::is_sse_text(&view.meta.config.content_type),
                    name: name.to_string(),
                    view,
                    pos,
                    client_cursor: p.cursor,
                    started: crate::clock::now(),
                    first: true,
                    done: false,
                })))
            }
        }
    }

    /// After subscribing: reads the metadata again if a commit was announced since
    /// `meta` was read (the subscription may have missed it; see `Engine::commits`).
    async fn refresh_if_committed(
        &self,
        meta: StreamMeta,
        commits: u64,
    ) -> ServiceResult<StreamMeta> {
        if self.engine.commits() == commits {
            return Ok(meta);
        }
        let name = meta.name.clone().unwrap_or_default();
        self.same_incarnation(&meta, self.live(&name).await?)
    }

    /// A stream deleted and created again under the same name while a reader waited is
    /// another stream: the reader's offsets mean nothing there.
    fn same_incarnation(&self, old: &StreamMeta, new: StreamMeta) -> ServiceResult<StreamMeta> {
        if new.id == old.id {
            Ok(new)
        } else {
            Err(ServiceError::NotFound(
                "stream was deleted and created again".into(),
            ))
        }
    }

    /// The page a reader at `pos` gets from a commit's published entries, if they hold
    /// `pos` (a reader woken at the old tail): bounded and filtered like any page; without
    /// a key filter it is encoded once and shared by every reader at the same position.
    /// `None` when the commit does not hold `pos`.
    fn page_from_commit(
        &self,
        view: &View,
        pos: u64,
        c: &Committed,
        sse: Option<bool>,
    ) -> ServiceResult<Option<Encoded>> {
        let entries = c.change.entries_from(pos);
        if entries.is_empty() {
            return Ok(None);
        }
        let make = || -> ServiceResult<Encoded> {
            let mut col = Collect::new(pos, view.limits(self));
            for (i, e) in entries.iter().enumerate() {
                if !col.offer(pos + i as u64, e.key.as_deref(), || e.data.clone()) {
                    break;
                }
            }
            let body = if col.entries.is_empty() {
                None
            } else {
                let body = view.frame(&col.entries, &col.positions)?;
                Some(match sse {
                    Some(text) => sse_data_event(&body, text),
                    None => body,
                })
            };
            Ok(Encoded {
                body,
                next: col.next_pos,
                bytes: col.bytes,
            })
        };
        if !view.shareable() {
            return make().map(Some);
        }
        // The whole page, not only its body, is the same for every reader at `pos`: the
        // first one collects it, the others take it as it is.
        let key = EncodingKey {
            kind: view.encoding(sse.is_some()),
            from: pos,
        };
        c.encoded(key, make).map(Some)
    }

    /// Applies a commit's published state to `meta` (same incarnation by construction);
    /// an error if the stream is gone.
    async fn follow(&self, meta: &mut StreamMeta, c: &Committed) -> ServiceResult<()> {
        if c.change.gone {
            let name = meta.name.clone().unwrap_or_default();
            // The precise answer (404 or 410) for what happened to the name.
            let now = self.live(&name).await?;
            self.same_incarnation(meta, now)?;
            return Err(ServiceError::NotFound("stream was deleted".into()));
        }
        meta.tail.next_pos = meta.tail.next_pos.max(c.change.next_pos);
        meta.tail.closed |= c.change.closed;
        Ok(())
    }

    async fn long_poll(
        &self,
        mut view: View,
        commits: u64,
        mut pos: u64,
        client_cursor: Option<String>,
    ) -> ServiceResult<ReadOutcome> {
        let _active = Active::new(self, ReadMode::LongPoll)?;
        let mut rx = self.engine.subscribe(view.meta.id);
        view.meta = self.refresh_if_committed(view.meta, commits).await?;
        let deadline =
            crate::clock::now() + Duration::from_millis(self.limits.long_poll_timeout_ms);
        let mut woken_by: Option<Arc<Committed>> = None;
        loop {
            // Read (and, with a key, scan past other keys) up to the tail.
            while pos < view.meta.tail.next_pos {
                let shared = match woken_by.take() {
                    Some(c) => self.page_from_commit(&view, pos, &c, None)?,
                    None => None,
                };
                let (body, next, bytes, filter_limit) = match shared {
                    Some(p) => (p.body, p.next, p.bytes, None),
                    None => {
                        let batch = self.read_batch(&view, pos).await?;
                        let next = batch.next_pos;
                        let bytes = batch.bytes;
                        let filter_limit = self.filter_limit(&view, &batch);
                        // A filtered read that reached its scan limit answers with what
                        // it found (maybe nothing), as the original does.
                        let body = (!batch.entries.is_empty() || filter_limit.is_some())
                            .then(|| view.frame(&batch.entries, &batch.positions))
                            .transpose()?;
                        (body, next, bytes, filter_limit)
                    }
                };
                if let Some(body) = body {
                    metrics().read(ReadMode::LongPoll, bytes);
                    let up_to_date = next >= view.meta.tail.next_pos;
                    return Ok(ReadOutcome::Page(Page {
                        body,
                        content_type: view.meta.config.content_type.clone(),
                        next_offset: Offset::at(next),
                        up_to_date,
                        closed: view.meta.tail.closed && up_to_date,
                        etag: None,
                        cursor: Some(self.cursor(client_cursor.as_deref())),
                        cache: if up_to_date {
                            CachePolicy::Revalidate
                        } else {
                            CachePolicy::Public
                        },
                        filter_limit,
                    }));
                }
                if next <= pos {
                    break; // nothing readable there (removed meanwhile): wait
                }
                pos = next;
            }
            let tail = view.meta.tail.next_pos;
            if view.meta.tail.closed && pos >= tail {
                return Ok(ReadOutcome::NoContent {
                    next_offset: Offset::at(tail),
                    closed: true,
                    cursor: None,
                });
            }
            let Some(c) = wait_commit(&mut rx, deadline).await else {
                return Ok(ReadOutcome::NoContent {
                    next_offset: Offset::at(view.meta.tail.next_pos.max(pos)),
                    closed: false,
                    cursor: Some(self.cursor(client_cursor.as_deref())),
                });
            };
            self.follow(&mut view.meta, &c).await?;
            woken_by = Some(c);
        }
    }
}

/// A live SSE read: yields framed event bytes until the stream closes, the connection's
/// time is up, or the stream goes away.
pub struct SseSession {
    service: StreamService,
    name: String,
    view: View,
    pos: u64,
    rx: TailReceiver,
    /// The commit that woke the session, whose entries it serves if they hold `pos`.
    woken_by: Option<Arc<Committed>>,
    client_cursor: Option<String>,
    sse_text: bool,
    started: Instant,
    first: bool,
    done: bool,
    _active: Active,
}

impl SseSession {
    /// Whether data events carry base64 (non-text content types).
    pub fn base64(&self) -> bool {
        !self.sse_text
    }

    fn control(&self, up_to_date: bool) -> Bytes {
        let closed = self.view.meta.tail.closed && up_to_date;
        let c = Control {
            stream_next_offset: Offset::at(self.pos).encode(),
            stream_cursor: (!closed).then(|| self.service.cursor(self.client_cursor.as_deref())),
            up_to_date,
            stream_closed: closed,
        };
        let mut out = Vec::new();
        // Serialising a struct of strings and bools cannot fail.
        let body = serde_json::to_vec(&c).unwrap_or_default();
        sse::write_event(&mut out, "control", &body);
        Bytes::from(out)
    }

    /// The next data event from the session's position (from the commit that woke it if it
    /// holds the position, else from storage), and the position scanned through. `None`
    /// as the event when only entries of other keys were there.
    async fn data_event(&mut self) -> Result<(Option<Bytes>, u64), ServiceError> {
        let pos = self.pos;
        if let Some(c) = self.woken_by.take() {
            let page = self
                .service
                .page_from_commit(&self.view, pos, &c, Some(self.sse_text))?;
            if let Some(p) = page {
                if p.body.is_some() {
                    metrics().read(ReadMode::Sse, p.bytes);
                }
                return Ok((p.body, p.next));
            }
        }
        let batch = self.service.read_batch(&self.view, pos).await?;
        if batch.entries.is_empty() {
            return Ok((None, batch.next_pos));
        }
        metrics().read(ReadMode::Sse, batch.bytes);
        let body = self.view.frame(&batch.entries, &batch.positions)?;
        Ok((Some(sse_data_event(&body, self.sse_text)), batch.next_pos))
    }

    /// The next chunk of the event stream, or `None` when the response should end.
    pub async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let max = Duration::from_millis(self.service.limits.sse_max_duration_ms);
        let wait = Duration::from_millis(self.service.limits.long_poll_timeout_ms.max(1));
        loop {
            while self.pos < self.view.meta.tail.next_pos {
                match self.data_event().await {
                    Err(e) => {
                        tracing::warn!(error = %e, stream = %self.name, "SSE read failed");
                        self.done = true;
                        return None;
                    }
                    Ok((None, next)) => {
                        if next <= self.pos {
                            break;
                        }
                        self.pos = next;
                    }
                    Ok((Some(event), next)) => {
                        self.first = false;
                        self.pos = next;
                        let up_to_date = self.pos >= self.view.meta.tail.next_pos;
                        let control = self.control(up_to_date);
                        if self.view.meta.tail.closed && up_to_date {
                            self.done = true;
                        }
                        let mut out = Vec::with_capacity(event.len() + control.len());
                        out.extend_from_slice(&event);
                        out.extend_from_slice(&control);
                        return Some(Bytes::from(out));
                    }
                }
            }
            let at_tail = self.pos >= self.view.meta.tail.next_pos;
            if self.view.meta.tail.closed && at_tail {
                self.done = true;
                return Some(self.control(true));
            }
            if self.first {
                self.first = false;
                return Some(self.control(at_tail));
            }
            if self.started.elapsed() >= max {
                self.done = true;
                return None;
            }
            let deadline = (crate::clock::now() + wait).min(self.started + max);
            let Some(c) = wait_commit(&mut self.rx, deadline).await else {
                // Idle: a heartbeat control event keeps intermediaries from timing out.
                if self.started.elapsed() >= max {
                    self.done = true;
                    return None;
                }
                return Some(self.control(at_tail));
            };
            if let Err(e) = self.service.follow(&mut self.view.meta, &c).await {
                if !matches!(e, ServiceError::NotFound(_) | ServiceError::Gone) {
                    tracing::warn!(error = %e, stream = %self.name, "SSE metadata refresh failed");
                }
                self.done = true;
                return None;
            }
            self.woken_by = Some(c);
        }
    }
}
