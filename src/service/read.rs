//! Reads: one session type for catch-up, long-poll and SSE. A session pages through
//! storage in bounded batches from a position and, in live modes, follows the notifier.

use std::time::Duration;

use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio::time::Instant;

use super::{bad, ServiceError, ServiceResult, StreamService};
use crate::engine::{ReadBatch, StreamMeta};
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
    pub body: Vec<u8>,
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

/// Frames a batch as a response body.
fn frame(meta: &StreamMeta, batch: &ReadBatch) -> Vec<u8> {
    if content_type::is_json(&meta.content_type) {
        let mut out =
            Vec::with_capacity(json::array_len(batch.entries.iter().map(|e| e.as_slice())));
        json::write_array(&mut out, batch.entries.iter().map(|e| e.as_slice()));
        out
    } else {
        let mut out = Vec::with_capacity(batch.bytes);
        for e in &batch.entries {
            out.extend_from_slice(e);
        }
        out
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
        let up_to_date = batch.next_pos >= meta.next_pos;
        let closed = meta.closed && up_to_date;
        let etag = format!(
            "\"{}:{}:{}{}\"",
            meta.id,
            from,
            batch.next_pos,
            if closed { ":c" } else { "" }
        );
        Page {
            body: frame(meta, &batch),
            content_type: meta.content_type.clone(),
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
            OffsetParam::Start if meta.local_only => meta.trimmed_pos,
            OffsetParam::Start => 0,
            OffsetParam::Now => meta.next_pos,
            OffsetParam::At(o) if meta.local_only && o.pos < meta.trimmed_pos => {
                return Err(ServiceError::Trimmed)
            }
            OffsetParam::At(o) => o.pos,
        };
        match mode {
            Mode::CatchUp => {
                if offset == OffsetParam::Now {
                    return Ok(ReadOutcome::Page(Page {
                        body: if content_type::is_json(&meta.content_type) {
                            b"[]".to_vec()
                        } else {
                            Vec::new()
                        },
                        content_type: meta.content_type.clone(),
                        next_offset: Offset::at(meta.next_pos),
                        up_to_date: true,
                        closed: meta.closed,
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
                    sse_text: content_type::is_sse_text(&meta.content_type),
                    name: name.to_string(),
                    meta,
                    pos,
                    client_cursor: p.cursor,
                    started: Instant::now(),
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

    async fn long_poll(
        &self,
        meta: StreamMeta,
        commits: u64,
        pos: u64,
        client_cursor: Option<String>,
    ) -> ServiceResult<ReadOutcome> {
        let _active = Active::new(self, ReadMode::LongPoll)?;
        let name = meta.name.clone().unwrap_or_default();
        let mut rx = self.engine.subscribe(meta.id);
        let mut meta = self.refresh_if_committed(meta, commits).await?;
        let deadline = Instant::now() + Duration::from_millis(self.limits.long_poll_timeout_ms);
        loop {
            if pos < meta.next_pos {
                let batch = self.read_batch(&meta, pos).await?;
                if !batch.entries.is_empty() {
                    metrics().read(ReadMode::LongPoll, batch.bytes);
                    let c = self.cursor(client_cursor.as_deref());
                    let mut page = self.page(&meta, pos, batch, Some(c));
                    page.etag = None;
                    return Ok(ReadOutcome::Page(page));
                }
            }
            if meta.closed && pos >= meta.next_pos {
                return Ok(ReadOutcome::NoContent {
                    next_offset: Offset::at(meta.next_pos),
                    closed: true,
                    cursor: None,
                });
            }
            if !wait_change(&mut rx, deadline).await {
                return Ok(ReadOutcome::NoContent {
                    next_offset: Offset::at(meta.next_pos.max(pos)),
                    closed: false,
                    cursor: Some(self.cursor(client_cursor.as_deref())),
                });
            }
            let fresh = self.live(&name).await?;
            meta = self.same_incarnation(&meta, fresh)?;
        }
    }
}

/// Waits for the next change notification; false on timeout (or if the channel closed).
async fn wait_change(rx: &mut watch::Receiver<u64>, deadline: Instant) -> bool {
    matches!(
        tokio::time::timeout_at(deadline, rx.changed()).await,
        Ok(Ok(()))
    )
}

/// A live SSE read: yields framed event bytes until the stream closes, the connection's
/// time is up, or the stream goes away.
pub struct SseSession {
    service: StreamService,
    name: String,
    meta: StreamMeta,
    pos: u64,
    rx: watch::Receiver<u64>,
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

    fn control(&self, up_to_date: bool) -> Vec<u8> {
        let closed = self.meta.closed && up_to_date;
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
        out
    }

    /// The next chunk of the event stream, or `None` when the response should end.
    pub async fn next_chunk(&mut self) -> Option<Vec<u8>> {
        if self.done {
            return None;
        }
        let max = Duration::from_millis(self.service.limits.sse_max_duration_ms);
        let wait = Duration::from_millis(self.service.limits.long_poll_timeout_ms.max(1));
        loop {
            if self.pos < self.meta.next_pos {
                let batch = match self.service.read_batch(&self.meta, self.pos).await {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(error = %e, stream = %self.name, "SSE read failed");
                        self.done = true;
                        return None;
                    }
                };
                if !batch.entries.is_empty() {
                    metrics().read(ReadMode::Sse, batch.bytes);
                    self.first = false;
                    let mut out = Vec::new();
                    let body = frame(&self.meta, &batch);
                    let data = if self.sse_text {
                        body
                    } else {
                        sse::base64(&body)
                    };
                    sse::write_event(&mut out, "data", &data);
                    self.pos = batch.next_pos;
                    let up_to_date = self.pos >= self.meta.next_pos;
                    out.extend(self.control(up_to_date));
                    if self.meta.closed && up_to_date {
                        self.done = true;
                    }
                    return Some(out);
                }
            }
            let at_tail = self.pos >= self.meta.next_pos;
            if self.meta.closed && at_tail {
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
            let deadline = (Instant::now() + wait).min(self.started + max);
            if !wait_change(&mut self.rx, deadline).await {
                // Idle: a heartbeat control event keeps intermediaries from timing out.
                if self.started.elapsed() >= max {
                    self.done = true;
                    return None;
                }
                return Some(self.control(at_tail));
            }
            match self.service.live(&self.name).await {
                Ok(m) if m.id == self.meta.id => self.meta = m,
                Ok(_) | Err(ServiceError::NotFound(_)) | Err(ServiceError::Gone) => {
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    tracing::warn!(error = %e, stream = %self.name, "SSE metadata refresh failed");
                    self.done = true;
                    return None;
                }
            }
        }
    }
}
