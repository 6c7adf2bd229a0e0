//! Appending to a stream (POST): entries, a close, or both, with the idempotent-producer
//! and `Stream-Seq` rules. Runs without a savepoint (the hot path): every refusal is
//! decided before the first write. A plain append (entries only, no producer, no
//! `Stream-Seq`, no sliding TTL) writes nothing to SQLite itself: unless another
//! operation of the batch began the transaction, its entries go to the append log (see
//! `engine::applog`).

use bytes::Bytes;

use crate::engine::db::{producers, streams};
use crate::engine::memtable;
use crate::engine::meta::StreamMeta;
use crate::engine::writer::{Batch, Submit};
use crate::engine::{Engine, EngineError, Entry, Reservation};
use crate::protocol::content_type;
use crate::protocol::expiry::Expiry;

/// An append (POST) request, validated by the service. `entries` is already framed for
/// the stream's content type (JSON messages split), empty for a close-only request.
#[derive(Debug)]
pub struct AppendCmd {
    pub name: String,
    pub content_type: Option<String>,
    pub entries: Vec<Bytes>,
    /// The routing key of each entry (empty: none has one).
    pub keys: Vec<Option<Bytes>>,
    pub close: bool,
    pub producer: Option<crate::protocol::headers::Producer>,
    pub stream_seq: Option<Vec<u8>>,
    /// Set when the body could not be framed (invalid JSON); reported only after the
    /// closed and content-type checks, so conflicts are answered in the protocol's order.
    pub framing_error: Option<String>,
    /// The body's bytes in the ingest budget, given back once the writer ran the append.
    pub hold: Reservation,
    /// The stream's configuration generation the entries were shaped for (profile and
    /// schema); the append is refused with [`AppendError::ConfigChanged`] if the stream's
    /// is different by then. `None`: not checked (the server's own appends).
    pub config_gen: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Tail after the append.
    pub next_pos: u64,
    pub closed: bool,
    /// Entries written (0 for duplicates and close-only requests).
    pub written: usize,
    /// Producer state to echo: (epoch, seq).
    pub producer: Option<(u64, u64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("stream not found")]
    NotFound,
    #[error("stream was deleted")]
    Gone,
    #[error("stream is closed")]
    Closed { next_pos: u64 },
    #[error("content type does not match the stream")]
    ContentType,
    #[error("stale producer epoch")]
    StaleEpoch { current: u64 },
    #[error("a new producer or epoch must start at sequence 0")]
    EpochSeq,
    #[error("producer sequence gap")]
    Gap { expected: u64, received: u64 },
    #[error("Stream-Seq must increase")]
    StreamSeq { last: Vec<u8>, received: Vec<u8> },
    #[error("{0}")]
    BadBody(String),
    /// The stream's profile or schema changed after the entries were shaped: shape them
    /// again and retry.
    #[error("stream configuration changed")]
    ConfigChanged,
}

super::write_error!(AppendError);

impl Engine {
    pub async fn append(&self, cmd: AppendCmd) -> Result<AppendOutcome, AppendError> {
        // Compaction keeps failing (see the writer): refuse rather than grow without bound.
        if self.memtable_bytes() > memtable::HARD_MAX_BYTES {
            return Err(EngineError::Overloaded.into());
        }
        let bytes = cmd.entries.iter().map(Bytes::len).sum();
        self.writer()
            .call(Submit::request(bytes).without_savepoint(), move |b| {
                run(b, cmd)
            })
            .await
    }
}

/// Appends to a stream. Every protocol error is returned before the first write, so an
/// error other than [`AppendError::Engine`] leaves the transaction untouched.
pub(crate) fn run(b: &mut Batch<'_>, cmd: AppendCmd) -> Result<AppendOutcome, AppendError> {
    let now = b.now;
    let mut m = match b.stream_by_name(&cmd.name)? {
        None => return Err(AppendError::NotFound),
        Some(m) if m.life.deleted => return Err(AppendError::Gone),
        Some(m) if m.is_expired(now) => return Err(AppendError::NotFound),
        Some(m) => m,
    };
    if cmd.config_gen.is_some_and(|g| g != m.settings.config_gen) {
        return Err(AppendError::ConfigChanged);
    }
    let duplicate = |m: &StreamMeta, producer: Option<(u64, u64)>| AppendOutcome {
        next_pos: m.tail.next_pos,
        closed: m.tail.closed,
        written: 0,
        producer,
    };
    if m.tail.closed {
        let same_closer = match (&cmd.producer, &m.tail.closed_by) {
            (Some(p), Some((id, e, s))) => &p.id == id && p.epoch == *e && p.seq == *s,
            _ => false,
        };
        if cmd.close && (cmd.entries.is_empty() || same_closer) {
            let echo = cmd.producer.as_ref().map(|p| (p.epoch, p.seq));
            return Ok(duplicate(&m, echo));
        }
        return Err(AppendError::Closed {
            next_pos: m.tail.next_pos,
        });
    }
    if !cmd.entries.is_empty() {
        let ok = cmd
            .content_type
            .as_deref()
            .is_some_and(|ct| content_type::same(ct, &m.config.content_type));
        if !ok {
            return Err(AppendError::ContentType);
        }
    }
    if let Some(msg) = cmd.framing_error {
        return Err(AppendError::BadBody(msg));
    }
    if let Some(p) = &cmd.producer {
        match producers::get(b.read(), m.id, &p.id)? {
            None if p.seq != 0 => return Err(AppendError::EpochSeq),
            None => {}
            Some((epoch, _)) if p.epoch < epoch => {
                return Err(AppendError::StaleEpoch { current: epoch })
            }
            Some((epoch, _)) if p.epoch > epoch && p.seq != 0 => return Err(AppendError::EpochSeq),
            Some((epoch, _)) if p.epoch > epoch => {}
            Some((epoch, last)) if p.seq <= last => {
                return Ok(duplicate(&m, Some((epoch, last))));
            }
            Some((_, last)) if p.seq > last + 1 => {
                return Err(AppendError::Gap {
                    expected: last + 1,
                    received: p.seq,
                })
            }
            Some(_) => {}
        }
    }
    let seq_changed = cmd.stream_seq.is_some();
    if let Some(seq) = cmd.stream_seq {
        if let Some(last) = &m.tail.stream_seq {
            if seq.as_slice() <= last.as_slice() {
                return Err(AppendError::StreamSeq {
                    last: last.clone(),
                    received: seq,
                });
            }
        }
        m.tail.stream_seq = Some(seq);
    }
    // Every check is done: from here on only SQL errors can fail the append, and the
    // writer then rolls back the whole batch (appends run without a savepoint).
    if let Some(p) = &cmd.producer {
        producers::put(b.conn()?, m.id, &p.id, p.epoch, p.seq, now)?;
    }
    let written = cmd.entries.len();
    let first_pos = m.tail.next_pos;
    let mut keys = cmd.keys.into_iter();
    let mut added = Vec::with_capacity(written);
    for data in cmd.entries {
        let key = keys.next().flatten();
        m.tail.next_pos += 1;
        m.tier.pending_bytes += data.len() as u64;
        m.tail.total_bytes += data.len() as u64;
        added.push(Entry {
            data,
            key,
            ts_ms: now,
        });
    }
    if cmd.close {
        m.tier.manifest_dirty |= b.tiered && !m.config.local_only;
        m.tail.closed = true;
        m.tail.closed_by = cmd
            .producer
            .as_ref()
            .map(|p| (p.id.clone(), p.epoch, p.seq));
    }
    m.tail.last_access_ms = m.tail.last_access_ms.max(now);
    b.persist(m.id, m.name.as_deref(), first_pos, added)?;
    if cmd.close {
        streams::update_tail(b.conn()?, &m)?;
    } else {
        // The tail, the byte counts and the last append time reach the row when
        // compaction folds the entries into it (see `memtable`); until then the memtable
        // adds them to the row. What no entry records is written now: the `Stream-Seq`,
        // and for a sliding TTL the renewal (the expiry sweeper reads it from the row).
        if let Some(seq) = m.tail.stream_seq.as_deref().filter(|_| seq_changed) {
            streams::set_stream_seq(b.conn()?, m.id, seq)?;
        }
        if matches!(m.config.expiry, Expiry::Ttl(_)) {
            streams::touch(b.conn()?, m.id, now)?;
        }
    }
    b.tail(m.id, m.name.as_deref(), m.tail.next_pos, m.tail.closed);
    let (next_pos, closed) = (m.tail.next_pos, m.tail.closed);
    b.fresh(m);
    Ok(AppendOutcome {
        next_pos,
        closed,
        written,
        producer: cmd.producer.as_ref().map(|p| (p.epoch, p.seq)),
    })
}
