//! Persistence: the single SQLite writer thread, the read pool, the metadata cache, and
//! the notifier that publishes the committed state to live readers.
//!
//! Concurrency model: every mutation is an operation (`ops/`, a closure run by
//! `writer::Batch`) sent to one dedicated thread that owns the read-write connection. It
//! drains whatever is queued into one batch, makes it durable (a SQLite commit, or for a
//! batch of plain appends one record of the append log, `applog.rs`), updates the metadata
//! cache, answers each operation and publishes the committed state, so nothing is visible
//! or acknowledged before it is durable. Blocking reads (SQLite, local files) run on the
//! bounded read pool (`read_pool.rs`), never on an async worker; the request path's hot
//! cases (a cached stream, the tail in the memtable, a woken reader) need no blocking
//! read at all.

mod applog;
pub mod bootstrap;
mod budget;
mod checkpointer;
pub mod collect;
pub mod committed;
pub mod db;
pub mod entry;
mod error;
pub mod import_ts;
pub mod keyindex;
mod keys;
pub mod manifest;
pub(crate) mod memtable;
pub mod meta;
mod meta_cache;
mod notifier;
mod ops;
mod read_pool;
mod reader;
pub mod segment;
mod segment_ranges;
mod segmenter;
mod settings;
mod stats;
#[cfg(test)]
pub(crate) mod testing;
pub mod tier;
mod uploader;
pub(crate) mod writer;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;

use crate::clock::SharedClock;
use crate::config::Limits;
use crate::health::Health;
use crate::protocol::expiry::Expiry;

pub use budget::{IngestBudget, Reservation};
pub use collect::{Collect, Entries, EntryFilter, ReadLimits};
pub use committed::{Commit, CommitFeed, Committed, Encoded, EncodingKey, FeedEvent, StreamChange};
pub use entry::Entry;
pub use error::EngineError;
pub use keys::KeyPage;
pub use meta::{ForkInfo, Lifecycle, Settings, StreamConfig, StreamMeta, Tail, TierState};
pub use notifier::TailReceiver;
pub use ops::append::{AppendCmd, AppendError, AppendOutcome};
pub use ops::create::{CreateCmd, CreateError, CreateOutcome, ForkSpec};
pub use ops::profile::ProfileError;
pub use ops::remove::DeleteError;
pub use ops::schema::SchemaUpdateError;
pub use ops::subscriptions::SubWrite;
pub use ops::templates::{
    Activated, Activation, ActivationKind, ActivationLimiter, Denied, DenyReason, Evicted,
    Heartbeats, TemplateDef, TemplateLimits, TemplatesError, ENCODINGS as TEMPLATE_ENCODINGS,
    GC_LIMIT as TEMPLATE_GC_LIMIT, MAX_FIELDS as TEMPLATE_MAX_FIELDS,
};
pub(crate) use ops::tiering::TierCmd;
pub use reader::ReadBatch;
pub use settings::StoredSettings;
pub use stats::StreamStats;

/// Expiry requested on create: `None` = not given (forks inherit their source's).
pub type ExpirySpec = Option<Expiry>;

/// The storage engine handle; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    writer: writer::WriterHandle,
    reader: read_pool::ReadPool,
    memtable: Arc<memtable::Memtable>,
    cache: Arc<meta_cache::MetaCache>,
    budget: IngestBudget,
    notifier: notifier::Notifier,
    clock: SharedClock,
    tier: Option<Arc<tier::Tier>>,
    health: Arc<Health>,
    background: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Engine {
    /// Opens (creating and migrating if needed) the database and starts the writer thread.
    pub fn open(
        db_path: PathBuf,
        limits: &Limits,
        tier: Option<Arc<tier::Tier>>,
        clock: SharedClock,
        health: Arc<Health>,
    ) -> Result<Engine, EngineError> {
        if let Some(dir) = db_path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| EngineError::io(format!("create {}", dir.display()), e))?;
            }
        }
        let notifier = notifier::Notifier::default();
        let memtable = Arc::new(memtable::Memtable::default());
        let cache = Arc::new(meta_cache::MetaCache::new(limits.meta_cache_entries));
        let writer = writer::spawn(
            &db_path,
            limits,
            tier.is_some(),
            writer::Shared {
                clock: clock.clone(),
                notifier: notifier.clone(),
                memtable: memtable.clone(),
                cache: cache.clone(),
                health: health.clone(),
            },
        )?;
        let reader = read_pool::ReadPool::new(db_path, limits.read_connections, limits.read_queue)?;
        if let Some(t) = &tier {
            t.remove_temp_files();
        }
        Ok(Engine {
            inner: Arc::new(Inner {
                writer,
                reader,
                memtable,
                cache,
                budget: IngestBudget::new(limits.ingest_max_queue_bytes),
                notifier,
                clock,
                tier,
                health,
                background: std::sync::Mutex::new(Vec::new()),
            }),
        })
    }

    /// Starts the segmenter and uploader (full mode), supervised; they stop when `stop`
    /// turns true.
    pub async fn start_background(&self, stop: watch::Receiver<bool>) -> Result<(), EngineError> {
        let Some(t) = self.inner.tier.clone() else {
            return Ok(());
        };
        uploader::warm_cache(self, &t).await?;
        let health = &self.inner.health;
        let handles = vec![
            health.spawn(
                "segmenter",
                crate::health::task(segmenter::run(self.clone(), t.clone(), stop.clone())),
            ),
            health.spawn(
                "key-indexer",
                crate::health::task(keyindex::indexer::run(
                    self.clone(),
                    t.clone(),
                    stop.clone(),
                )),
            ),
            health.spawn(
                "uploader",
                crate::health::task(uploader::run(self.clone(), t, stop)),
            ),
        ];
        self.inner
            .background
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(handles);
        Ok(())
    }

    /// Waits for the background tasks after their stop signal.
    pub async fn join_background(&self) {
        let handles: Vec<_> = std::mem::take(
            &mut *self
                .inner
                .background
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        for h in handles {
            let _ = h.await;
        }
    }

    pub(crate) fn reader(&self) -> &read_pool::ReadPool {
        &self.inner.reader
    }

    pub(crate) fn writer(&self) -> &writer::WriterHandle {
        &self.inner.writer
    }

    /// The budget write requests reserve their bodies in as they arrive
    /// (`DS_INGEST_MAX_QUEUE_BYTES`).
    pub fn ingest_budget(&self) -> &IngestBudget {
        &self.inner.budget
    }

    pub(crate) fn memtable(&self) -> &memtable::Memtable {
        &self.inner.memtable
    }

    pub(crate) fn tier(&self) -> Option<&Arc<tier::Tier>> {
        self.inner.tier.as_ref()
    }

    /// Bytes held in the memtable (appends not yet compacted).
    pub(crate) fn memtable_bytes(&self) -> usize {
        self.inner.memtable.size().bytes
    }

    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// Failures of the engine's threads and tasks.
    pub fn health(&self) -> &Arc<Health> {
        &self.inner.health
    }

    /// The configuration generation (profile and schema changes) of the stream named
    /// `name` if its metadata is cached: a guess for shaping an append, which the writer
    /// checks (no I/O, no copy).
    pub fn cached_config_gen(&self, name: &str) -> Option<u64> {
        self.inner.cache.config_gen(name)
    }

    /// The current incarnation named `name`, in whatever state it is. Its last access
    /// includes renewals the writer has not applied yet.
    pub async fn lookup(&self, name: &str) -> Result<Option<StreamMeta>, EngineError> {
        let cache = &self.inner.cache;
        let mut meta = match cache.get(name) {
            Some(m) => Some(m),
            None => {
                let version = cache.version();
                let owned = name.to_string();
                let mem = self.inner.memtable.clone();
                let loaded = self
                    .inner
                    .reader
                    .run(move |c| {
                        let rows = mem.with_tails(|| {
                            Ok(db::streams::by_name(c, &owned)?.into_iter().collect())
                        })?;
                        Ok::<_, rusqlite::Error>(rows.into_iter().next())
                    })
                    .await?;
                if let Some(m) = &loaded {
                    cache.insert_if_unchanged(version, m.clone());
                }
                loaded
            }
        };
        if let Some(m) = &mut meta {
            if let Some(at) = self.inner.writer.pending_renewal(m.id) {
                m.tail.last_access_ms = m.tail.last_access_ms.max(at);
            }
        }
        Ok(meta)
    }

    /// Number of live (named, not deleted) streams.
    pub async fn count_streams(&self) -> Result<u64, EngineError> {
        self.inner
            .reader
            .run(|c| {
                c.prepare_cached(
                    "SELECT count(*) FROM streams WHERE name IS NOT NULL AND deleted = 0",
                )?
                .query_row([], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
            })
            .await
    }

    /// Live streams in name order.
    pub async fn list(&self, offset: usize, limit: usize) -> Result<Vec<StreamMeta>, EngineError> {
        let now = self.inner.clock.now_ms();
        let mem = self.inner.memtable.clone();
        self.inner
            .reader
            .run(move |c| mem.with_tails(|| db::streams::list(c, now, offset, limit)))
            .await
    }

    /// Renews a stream's sliding TTL: recorded now, written by the writer within a second
    /// (see `writer::RENEW_EVERY`); never refused, never queued as a request.
    pub fn renew(&self, id: i64) {
        let now = self.inner.clock.now_ms();
        self.inner.writer.renew(id, now);
    }

    /// Reads entries of `meta` from position `from`, bounded by the limits (at least one
    /// entry if any is available; only entries with `limits.key` if set), never past
    /// `meta.tail.next_pos`, from the memtable, SQLite and segments.
    pub async fn read(
        &self,
        meta: &StreamMeta,
        from: u64,
        limits: ReadLimits,
    ) -> Result<ReadBatch, EngineError> {
        let mut c = Collect::new(from, limits);
        let end = meta.tail.next_pos;
        while c.next_pos < end && !c.is_full() {
            let before = c.next_pos;
            if self.tail_from_memory(meta, end, &mut c) {
                break;
            }
            let (mem, m) = (self.inner.memtable.clone(), meta.clone());
            let (back, step) = self
                .inner
                .reader
                .run(move |conn| {
                    let mut c = c;
                    let step = reader::plan(conn, &mem, &m, &mut c)?;
                    Ok::<_, EngineError>((c, step))
                })
                .await?;
            c = back;
            match step {
                reader::Step::End => break,
                reader::Step::Collected => {}
                reader::Step::Segment {
                    incarnation,
                    seg,
                    to,
                    run,
                } => {
                    let tier = self.inner.tier.as_ref().ok_or_else(|| {
                        EngineError::Internal("segment read without an object store".into())
                    })?;
                    // The key is copied only when a run covers the segment.
                    let ruled_out = match (run, c.key()) {
                        (Some(run), Some(key)) => {
                            let key = key.to_vec();
                            !tier
                                .key_index
                                .may_hold(
                                    &tier.store,
                                    run.stream_id,
                                    &incarnation,
                                    run.range,
                                    seg.index,
                                    &key,
                                )
                                .await
                        }
                        _ => false,
                    };
                    if ruled_out {
                        crate::telemetry::metrics::metrics()
                            .key_index_segments_skipped
                            .inc();
                        c.skip_to(to);
                    } else {
                        tier.read(&self.inner.reader, &incarnation, &seg, to, &mut c)
                            .await?;
                    }
                }
            }
            if c.next_pos == before {
                break; // nothing more below the tail (a concurrent removal)
            }
        }
        Ok(c.into())
    }

    /// The position of the first entry from `from` on that was appended at or after
    /// `since_ms` (and has `key`, if given); the tail when there is none.
    pub async fn seek_time(
        &self,
        meta: &StreamMeta,
        from: u64,
        since_ms: i64,
        key: Option<bytes::Bytes>,
    ) -> Result<u64, EngineError> {
        let end = meta.tail.next_pos;
        let mut from = from;
        while from < end {
            let (mem, m, k) = (self.inner.memtable.clone(), meta.clone(), key.clone());
            let step = self
                .inner
                .reader
                .run(move |conn| reader::seek_time(conn, &mem, &m, from, since_ms, k.as_deref()))
                .await?;
            match step {
                reader::SeekStep::Found(p) => return Ok(p),
                reader::SeekStep::NotFound => return Ok(end),
                reader::SeekStep::Segment {
                    incarnation,
                    seg,
                    to,
                } => {
                    let tier = self.inner.tier.as_ref().ok_or_else(|| {
                        EngineError::Internal("segment read without an object store".into())
                    })?;
                    let found = tier
                        .seek_time(
                            &self.inner.reader,
                            &incarnation,
                            &seg,
                            from..to,
                            since_ms,
                            key.as_deref(),
                        )
                        .await?;
                    if let Some(p) = found {
                        return Ok(p);
                    }
                    if to <= from {
                        return Ok(end);
                    }
                    from = to;
                }
            }
        }
        Ok(end)
    }

    /// Offers the stream's own tail from `c.next_pos` straight from the memtable, when the
    /// position is at or above the memtable's base for it; false otherwise (ask SQLite).
    /// `meta` comes from a committed snapshot, so everything below its tail that the
    /// memtable holds is committed, and nothing below the base is needed.
    fn tail_from_memory(&self, meta: &StreamMeta, end: u64, c: &mut Collect) -> bool {
        if c.next_pos < meta.own_start() {
            return false;
        }
        let tails = self.inner.memtable.lock();
        match tails.base(meta.id) {
            Some(base) if c.next_pos >= base => {
                tails.collect(meta.id, end, c);
                true
            }
            _ => false,
        }
    }

    /// Commits announced to readers so far (see [`notifier::Notifier::commits`]).
    pub fn commits(&self) -> u64 {
        self.inner.notifier.commits()
    }

    /// The stream's committed state, updated after every commit that changes it.
    /// Subscribe *before* reading so that no commit is missed.
    pub fn subscribe(&self, id: i64) -> TailReceiver {
        self.inner.notifier.subscribe(id)
    }

    /// Every commit from now on, for consumers that react to all streams.
    pub fn commit_feed(&self) -> CommitFeed {
        self.inner.notifier.feed()
    }

    /// Stops the writer after it finished what is queued.
    pub fn shutdown(&self) {
        self.inner.writer.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writer thread's death is fatal: recorded with its cause, and every later write
    /// fails instead of hanging.
    #[tokio::test]
    async fn a_panicking_writer_is_a_fatal_failure() {
        let dir = tempfile::tempdir().unwrap();
        let clock = crate::clock::ManualClock::new(0);
        let health = Health::new(clock.clone());
        let engine = Engine::open(
            dir.path().join("t.sqlite"),
            &Limits::default(),
            None,
            clock,
            health.clone(),
        )
        .unwrap();
        let r = engine
            .writer()
            .call(writer::Submit::internal(), |_| -> Result<(), EngineError> {
                panic!("injected writer fault")
            })
            .await;
        assert!(matches!(r, Err(EngineError::ShuttingDown)), "{r:?}");
        let f = health.fatal().await;
        assert_eq!(f.component, "writer");
        assert!(f.cause.contains("injected writer fault"), "{}", f.cause);
        let r = engine.sweep_expired(1).await;
        assert!(matches!(r, Err(EngineError::ShuttingDown)), "{r:?}");
    }

    /// An append shaped for one configuration generation is refused once the stream's
    /// profile or schema changed, and accepted for the current one.
    #[tokio::test]
    async fn appends_shaped_for_another_configuration_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let clock = crate::clock::ManualClock::new(0);
        let engine = Engine::open(
            dir.path().join("t.sqlite"),
            &Limits::default(),
            None,
            clock.clone(),
            Health::new(clock),
        )
        .unwrap();
        let create = CreateCmd {
            name: "s".into(),
            content_type: Some("application/json".into()),
            expiry: None,
            closed: false,
            fork: None,
            body: bytes::Bytes::new(),
            key: None,
            hold: Reservation::default(),
            local_only: false,
        };
        engine.create(create).await.unwrap();
        let append = |config_gen| AppendCmd {
            name: "s".into(),
            content_type: Some("application/json".into()),
            entries: vec![bytes::Bytes::from_static(b"{}")],
            keys: Vec::new(),
            close: false,
            producer: None,
            stream_seq: None,
            framing_error: None,
            hold: Reservation::default(),
            config_gen,
        };
        engine.append(append(Some(0))).await.unwrap();
        let profile = crate::profiles::Profile::StateProtocol { touch: None };
        engine.set_profile("s", profile).await.unwrap();
        let body =
            bytes::Bytes::from_static(br#"{"routingKey":{"jsonPointer":"/k","required":false}}"#);
        engine.update_schema("s", body).await.unwrap();
        let r = engine.append(append(Some(1))).await;
        assert!(matches!(r, Err(AppendError::ConfigChanged)), "{r:?}");
        let out = engine.append(append(Some(2))).await.unwrap();
        assert_eq!(out.next_pos, 2);
        // The server's own appends are not checked.
        engine.append(append(None)).await.unwrap();
        let meta = engine.lookup("s").await.unwrap().unwrap();
        assert_eq!(meta.settings.config_gen, 2);
        assert_eq!(meta.settings.profile.as_deref(), Some("state-protocol"));
        let stored = engine.stream_settings(&meta).await.unwrap();
        assert!(stored.registry_json.unwrap().contains("/k"));
    }
}
