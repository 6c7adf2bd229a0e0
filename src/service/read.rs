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
use crate::engine::{Committed, EncodingKey, ReadBatch, StreamMeta, TailReceiver};
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

/// Frames entries as a response body: a JSON array, or the bytes concatenated.
fn frame(meta: &StreamMeta, entries: &[Bytes]) -> Bytes {
    if content_type::is_json(&meta.config.content_type) {
        let mut out = Vec::with_capacity(json::array_len(entries.iter().map(|e| &e[..])));
        json::write_array(&mut out, entries.iter().map(|e| &e[..]));
        Bytes::from(out)
    } else if entries.len() == 1 {
        entries[0].clone()
    } else {
        let mut out = Vec::with_capacity(entries.iter().map(Bytes::len).sum());
        for e in entries {
            out.extend_from_slice(e);
        }
        Bytes::from(out)
    }
}

/// The kinds of shared encodings of a commit's entries (see [`Committed::encoded`]).
const ENCODED_BODY: u8 = 1;
const ENCODED_SSE: u8 = 2;

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

    async fn read_batch(&self, meta: &StreamMeta, pos: u64) -> ServiceResult<ReadBatch> {
        Ok(self
            .engine
            .read(
                meta,
                pos,
                self.limits.read_max_bytes,
                self.limits.read_max_records,
            )
            .await?)
    }

    fn page(
        &self,
        meta: &StreamMeta,
        from: u64,
        batch: ReadBatch,
        live_cursor: Option<String>,
    ) -> Page {
        let up_to_date = batch.next_pos >= meta.tail.next_pos;
        let closed = meta.tail.closed && up_to_date;
        // The incarnation's token, not its row id: it survives a rebuild from the object
        // store, and another incarnation of the name never shares it.
        let etag = format!(
            "\"{}:{}:{}{}\"",
            meta.config.incarnation,
            from,
            batch.next_pos,
            if closed { ":c" } else { "" }
        );
        Page {
            body: frame(meta, &batch.entries),
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
        }
    }

    /// Serves `GET /v1/stream/{name}` in any mode.
    pub async fn read(&self, name: &str, p: ReadParams) -> ServiceResult<ReadOutcome> {
        let mode = match p.live.as_deref() {
            None | Some("") | Some("false") | Some("0") => Mode::CatchUp,
            Some("long-poll") | Some("true") | Some("1") => Mode::LongPoll,
            Some("sse") => Mode::Sse,
            Some(other) => return Err(bad(format!("invalid live mode: {other:?}"))),
        };
        let offset = match p.offset.as_deref() {
            None if mode == Mode::CatchUp => OffsetParam::Start,
            None => return Err(bad("live reads require an offset")),
            Some("") => return Err(bad("missing offset")),
            Some(o) => OffsetParam::parse(o, true).map_err(|e| bad(e.to_string()))?,
        };
        let commits = self.engine.commits();
        let meta = self.live(name).await?;
        self.renew(&meta);
        let pos = match offset {
            // Internal streams with retention start at their oldest retained entry.
            OffsetParam::Start if meta.config.local_only => meta.tier.trimmed_pos,
            OffsetParam::Start => 0,
            OffsetParam::Now => meta.tail.next_pos,
            OffsetParam::At(o) if meta.config.local_only && o.pos < meta.tier.trimmed_pos => {
                return Err(ServiceError::Trimmed)
            }
            OffsetParam::At(o) => o.pos,
        };
        match mode {
            Mode::CatchUp => {
                if offset == OffsetParam::Now {
                    return Ok(ReadOutcome::Page(Page {
                        body: if content_type::is_json(&meta.config.content_type) {
                            Bytes::from_static(b"[]")
                        } else {
                            Bytes::new()
                        },
                        content_type: meta.config.content_type.clone(),
                        next_offset: Offset::at(meta.tail.next_pos),
                        up_to_date: true,
                        closed: meta.tail.closed,
                        etag: None,
                        cursor: None,
                        cache: CachePolicy::NoStore,
                    }));
                }
                let batch = self.read_batch(&meta, pos).await?;
                metrics().read(ReadMode::CatchUp, batch.bytes);
                Ok(ReadOutcome::Page(self.page(&meta, pos, batch, None)))
            }
            Mode::LongPoll => self.long_poll(meta, commits, pos, p.cursor).await,
            Mode::Sse => {
                let active = Active::new(self, ReadMode::Sse)?;
                let rx = self.engine.subscribe(meta.id);
                let meta = self.refresh_if_committed(meta, commits).await?;
                Ok(ReadOutcome::Sse(Box::new(SseSession {
                    _active: active,
                    service: self.clone(),
                    rx,
                    woken_by: None,
                    sse_text: content_type::is_sse_text(&meta.config.content_type),
                    name: name.to_string(),
                    meta,
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
    /// `pos` (a reader woken at the old tail): bounded like any page, encoded once and
    /// shared by every reader at the same position.
    fn page_from_commit(
        &self,
        meta: &StreamMeta,
        pos: u64,
        c: &Committed,
    ) -> Option<(Bytes, u64, usize)> {
        let (n, bytes) = self.page_span(c.change.entries_from(pos));
        if n == 0 {
            return None;
        }
        let key = EncodingKey {
            kind: ENCODED_BODY,
            from: pos,
        };
        let body = c.encoded(key, || frame(meta, &c.change.entries_from(pos)[..n]));
        Some((body, pos + n as u64, bytes))
    }

    /// How many of `entries` fit in one page (at least one), and their payload bytes.
    fn page_span(&self, entries: &[Bytes]) -> (usize, usize) {
        let (max_bytes, max_records) = (self.limits.read_max_bytes, self.limits.read_max_records);
        let mut bytes = 0;
        let mut n = 0;
        for e in entries {
            if n > 0 && (n >= max_records || bytes + e.len() > max_bytes) {
                break;
            }
            bytes += e.len();
            n += 1;
        }
        (n, bytes)
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
        meta: StreamMeta,
        commits: u64,
        pos: u64,
        client_cursor: Option<String>,
    ) -> ServiceResult<ReadOutcome> {
        let _active = Active::new(self, ReadMode::LongPoll)?;
        let mut rx = self.engine.subscribe(meta.id);
        let mut meta = self.refresh_if_committed(meta, commits).await?;
        let deadline =
            crate::clock::now() + Duration::from_millis(self.limits.long_poll_timeout_ms);
        let mut woken_by: Option<Arc<Committed>> = None;
        loop {
            if pos < meta.tail.next_pos {
                let shared = woken_by
                    .take()
                    .and_then(|c| self.page_from_commit(&meta, pos, &c));
                let page = match shared {
                    Some(p) => Some(p),
                    None => {
                        let batch = self.read_batch(&meta, pos).await?;
                        (!batch.entries.is_empty())
                            .then(|| (frame(&meta, &batch.entries), batch.next_pos, batch.bytes))
                    }
                };
                if let Some((body, next, bytes)) = page {
                    metrics().read(ReadMode::LongPoll, bytes);
                    let up_to_date = next >= meta.tail.next_pos;
                    return Ok(ReadOutcome::Page(Page {
                        body,
                        content_type: meta.config.content_type.clone(),
                        next_offset: Offset::at(next),
                        up_to_date,
                        closed: meta.tail.closed && up_to_date,
                        etag: None,
                        cursor: Some(self.cursor(client_cursor.as_deref())),
                        cache: if up_to_date {
                            CachePolicy::Revalidate
                        } else {
                            CachePolicy::Public
                        },
                    }));
                }
            }
            if meta.tail.closed && pos >= meta.tail.next_pos {
                return Ok(ReadOutcome::NoContent {
                    next_offset: Offset::at(meta.tail.next_pos),
                    closed: true,
                    cursor: None,
                });
            }
            let Some(c) = wait_commit(&mut rx, deadline).await else {
                return Ok(ReadOutcome::NoContent {
                    next_offset: Offset::at(meta.tail.next_pos.max(pos)),
                    closed: false,
                    cursor: Some(self.cursor(client_cursor.as_deref())),
                });
            };
            self.follow(&mut meta, &c).await?;
            woken_by = Some(c);
        }
    }
}

/// A live SSE read: yields framed event bytes until the stream closes, the connection's
/// time is up, or the stream goes away.
pub struct SseSession {
    service: StreamService,
    name: String,
    meta: StreamMeta,
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
        let closed = self.meta.tail.closed && up_to_date;
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

    /// The next data event from the session's position: from the commit that woke it
    /// (shared with every session at the same position), else from storage.
    async fn data_event(&mut self) -> Result<Option<(Bytes, u64)>, ServiceError> {
        let pos = self.pos;
        if let Some(c) = self.woken_by.take() {
            let (n, bytes) = self.service.page_span(c.change.entries_from(pos));
            if n > 0 {
                let (meta, text) = (&self.meta, self.sse_text);
                let key = EncodingKey {
                    kind: ENCODED_SSE,
                    from: pos,
                };
                let event = c.encoded(key, || {
                    sse_data_event(&frame(meta, &c.change.entries_from(pos)[..n]), text)
                });
                metrics().read(ReadMode::Sse, bytes);
                return Ok(Some((event, pos + n as u64)));
            }
        }
        let batch = self.service.read_batch(&self.meta, pos).await?;
        if batch.entries.is_empty() {
            return Ok(None);
        }
        metrics().read(ReadMode::Sse, batch.bytes);
        let body = frame(&self.meta, &batch.entries);
        Ok(Some((sse_data_event(&body, self.sse_text), batch.next_pos)))
    }

    /// The next chunk of the event stream, or `None` when the response should end.
    pub async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let max = Duration::from_millis(self.service.limits.sse_max_duration_ms);
        let wait = Duration::from_millis(self.service.limits.long_poll_timeout_ms.max(1));
        loop {
            if self.pos < self.meta.tail.next_pos {
                match self.data_event().await {
                    Err(e) => {
                        tracing::warn!(error = %e, stream = %self.name, "SSE read failed");
                        self.done = true;
                        return None;
                    }
                    Ok(None) => {}
                    Ok(Some((event, next))) => {
                        self.first = false;
                        self.pos = next;
                        let up_to_date = self.pos >= self.meta.tail.next_pos;
                        let control = self.control(up_to_date);
                        if self.meta.tail.closed && up_to_date {
                            self.done = true;
                        }
                        let mut out = Vec::with_capacity(event.len() + control.len());
                        out.extend_from_slice(&event);
                        out.extend_from_slice(&control);
                        return Some(Bytes::from(out));
                    }
                }
            }
            let at_tail = self.pos >= self.meta.tail.next_pos;
            if self.meta.tail.closed && at_tail {
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
            if let Err(e) = self.service.follow(&mut self.meta, &c).await {
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
