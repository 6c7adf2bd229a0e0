//! Tests of the writer thread's batch semantics, driving `Writer::commit_batch` directly.

use super::*;
use crate::engine::{AppendCmd, AppendError, AppendOutcome, CreateCmd, CreateError, CreateOutcome};

fn handle(max_reqs: usize) -> (WriterHandle, mpsc::Receiver<Msg>) {
    let (tx, rx) = mpsc::channel();
    let h = WriterHandle {
        tx,
        queued_reqs: Arc::new(AtomicUsize::new(0)),
        queued_bytes: Arc::new(AtomicUsize::new(0)),
        max_reqs,
        renewals: Arc::default(),
        thread: Mutex::new(None),
    };
    (h, rx)
}

type Rx<T, E> = oneshot::Receiver<Result<T, E>>;

/// A job that returns `v`, with its result receiver.
fn job<T: Send + 'static>(v: T) -> (Box<dyn Job>, Rx<T, EngineError>) {
    let (tx, rx) = oneshot::channel();
    let f = move |_: &mut Batch<'_>| Ok::<T, EngineError>(v);
    (Box::new(Call::new(f, true, tx)), rx)
}

#[test]
fn queue_refuses_requests_over_the_count_limit_but_never_internal_work() {
    let (h, _rx) = handle(2);
    h.enqueue(job(()).0, Submit::request(0)).unwrap();
    h.enqueue(job(()).0, Submit::request(0)).unwrap();
    assert!(matches!(
        h.enqueue(job(()).0, Submit::request(0)),
        Err(EngineError::Overloaded)
    ));
    assert_eq!(
        h.queued_reqs.load(Ordering::SeqCst),
        2,
        "a refused request is not counted"
    );
    h.enqueue(job(()).0, Submit::internal()).unwrap();
}

#[test]
fn the_servers_own_work_does_not_take_a_clients_place_in_the_queue() {
    let (h, _rx) = handle(2);
    for _ in 0..3 {
        h.enqueue(job(()).0, Submit::internal()).unwrap();
    }
    assert_eq!(h.queued_reqs.load(Ordering::SeqCst), 0);
    h.enqueue(job(()).0, Submit::request(0)).unwrap();
    h.enqueue(job(()).0, Submit::request(0)).unwrap();
    assert!(matches!(
        h.enqueue(job(()).0, Submit::request(0)),
        Err(EngineError::Overloaded)
    ));
}

#[test]
fn a_stopped_writer_reports_shutdown() {
    let (h, rx) = handle(10);
    drop(rx);
    assert!(matches!(
        h.enqueue(job(()).0, Submit::request(1)),
        Err(EngineError::ShuttingDown)
    ));
    assert_eq!(h.queued_reqs.load(Ordering::SeqCst), 0);
}

#[test]
fn renewals_are_coalesced_and_wake_the_writer_once() {
    let (h, rx) = handle(1);
    h.renew(1, 10);
    h.renew(1, 30);
    h.renew(1, 20);
    h.renew(2, 5);
    assert_eq!(h.pending_renewal(1), Some(30));
    assert_eq!(h.pending_renewal(3), None);
    let wakes = rx.try_iter().filter(|m| matches!(m, Msg::Wake)).count();
    assert_eq!(wakes, 1, "one wake-up while the map is non-empty");
    assert_eq!(
        h.queued_reqs.load(Ordering::SeqCst),
        0,
        "renewals never count as queued requests"
    );
}

fn writer(path: &Path) -> (Writer, Arc<Memtable>, Notifier) {
    let memtable = Arc::new(Memtable::default());
    let notifier = Notifier::default();
    let mut conn = db::open_writer(path).unwrap();
    let clock: crate::clock::SharedClock = crate::clock::ManualClock::new(1_000);
    let (log, logged) = recover(&mut conn, path, &clock, &memtable).unwrap();
    let touched = watch_stream_rows(&conn);
    let w = Writer {
        conn,
        checkpointer: None,
        log,
        logged,
        replies: Replies::Direct(notifier.clone()),
        tiered: true,
        clock,
        memtable: memtable.clone(),
        cache: Arc::new(MetaCache::new(100)),
        touched,
        compact_retry_at: None,
        renewals: Arc::default(),
        renewed_at: crate::clock::monotonic(),
        queued_reqs: Arc::new(AtomicUsize::new(0)),
        queued_bytes: Arc::new(AtomicUsize::new(0)),
        batch_reqs: 100,
        batch_bytes: 1 << 30,
    };
    (w, memtable, notifier)
}

fn create(name: &str) -> (Box<dyn Job>, Rx<CreateOutcome, CreateError>) {
    let (tx, rx) = oneshot::channel();
    let cmd = CreateCmd {
        name: name.into(),
        content_type: Some("text/plain".into()),
        expiry: None,
        closed: false,
        fork: None,
        body: bytes::Bytes::new(),
        key: None,
        hold: Default::default(),
        local_only: false,
    };
    let f = move |b: &mut Batch<'_>| crate::engine::ops::create::run(b, cmd);
    (Box::new(Call::new(f, true, tx)), rx)
}

fn append(
    name: &str,
    data: Vec<u8>,
    producer_seq: Option<u64>,
) -> (Box<dyn Job>, Rx<AppendOutcome, AppendError>) {
    let (tx, rx) = oneshot::channel();
    let cmd = AppendCmd {
        name: name.into(),
        content_type: Some("text/plain".into()),
        entries: vec![data.into()],
        keys: Vec::new(),
        close: false,
        producer: producer_seq.map(|seq| crate::protocol::headers::Producer {
            id: "p".into(),
            epoch: 0,
            seq,
        }),
        stream_seq: None,
        framing_error: None,
        hold: Default::default(),
        config_gen: None,
    };
    let f = move |b: &mut Batch<'_>| crate::engine::ops::append::run(b, cmd);
    (Box::new(Call::new(f, false, tx)), rx)
}

/// The stream's tail as readers see it: its row's, moved past what the memtable holds.
fn next_pos(w: &Writer, name: &str) -> i64 {
    let mut m = crate::engine::db::streams::by_name(&w.conn, name)
        .unwrap()
        .unwrap();
    w.memtable.lock().overlay(&mut m);
    m.tail.next_pos as i64
}

#[test]
fn streams_created_in_one_batch_get_their_own_incarnation() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _, _) = writer(&dir.path().join("db.sqlite"));
    let (a, mut ra) = create("a");
    let (b, mut rb) = create("b");
    w.commit_batch(vec![a, b], false);
    let inc = |r: &mut Rx<CreateOutcome, CreateError>| match r.try_recv().unwrap().unwrap() {
        CreateOutcome::Created(m) => m.config.incarnation,
        other => panic!("{other:?}"),
    };
    assert_ne!(inc(&mut ra), inc(&mut rb));
}

#[test]
fn a_commit_publishes_each_streams_tail_and_entries_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _, notifier) = writer(&dir.path().join("db.sqlite"));
    let (c, _r) = create("s");
    w.commit_batch(vec![c], false);
    let mut rx = notifier.subscribe(1);
    let mut feed = notifier.feed();
    let (a1, _r1) = append("s", b"one".to_vec(), None);
    let (a2, _r2) = append("s", b"two".to_vec(), None);
    let (bad, mut rbad) = append("missing", b"x".to_vec(), None);
    w.commit_batch(vec![a1, bad, a2], false);
    assert!(matches!(
        rbad.try_recv().unwrap(),
        Err(AppendError::NotFound)
    ));
    let state = rx.borrow_and_update().clone().unwrap();
    let c = &state.change;
    assert_eq!(
        (c.first_pos, c.next_pos, c.closed, c.gone),
        (0, 2, false, false)
    );
    let data: Vec<&[u8]> = c.entries.iter().map(|e| &e.data[..]).collect();
    assert_eq!(data, vec![&b"one"[..], &b"two"[..]]);
    assert_eq!(c.name.as_deref(), Some("s"));
    match feed.rx.try_recv() {
        Ok(commit) => assert_eq!(commit.streams.len(), 1),
        Err(e) => panic!("{e:?}"),
    }
}

/// SQLite rolls the whole transaction back on some errors (here: the database may not
/// grow, as on a full disk). Nothing after that point may run on its own, every
/// request of the batch fails, and the memtable stays in step with the database.
#[test]
fn a_transaction_rolled_back_by_sqlite_fails_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, memtable, _) = writer(&dir.path().join("db.sqlite"));
    let (s, _) = create("s");
    let (t, _) = create("t");
    w.commit_batch(vec![s, t], false);
    let (q, mut r) = append("t", b"t0".to_vec(), None);
    w.commit_batch(vec![q], false);
    assert!(r.try_recv().unwrap().is_ok());

    let pages: i64 = w
        .conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    w.conn
        .execute_batch(&format!("PRAGMA max_page_count = {}", pages + 2))
        .unwrap();
    let (big, mut r_big) = append("s", vec![7u8; 200_000], None);
    let (small, mut r_small) = append("t", b"t1".to_vec(), None);
    let (prod, mut r_prod) = append("t", vec![9u8; 10], Some(0));
    w.commit_batch(vec![big, small, prod], false);
    for r in [&mut r_big, &mut r_small, &mut r_prod] {
        assert!(matches!(
            r.try_recv().unwrap(),
            Err(AppendError::Engine(EngineError::DiskFull(_)))
        ));
    }
    assert_eq!(
        next_pos(&w, "t"),
        1,
        "nothing of the failed batch was stored"
    );
    assert_eq!(held(&memtable, 2), 1);

    // Space again: the producer's retry is a first write, not a duplicate, and the
    // memtable continues where the database does.
    w.conn
        .execute_batch("PRAGMA max_page_count = 1073741823")
        .unwrap();
    let (prod, mut r_prod) = append("t", vec![9u8; 10], Some(0));
    let (small, mut r_small) = append("t", b"t1".to_vec(), None);
    w.commit_batch(vec![prod, small], false);
    let out = r_prod.try_recv().unwrap().unwrap();
    assert_eq!((out.next_pos, out.written), (2, 1));
    assert_eq!(r_small.try_recv().unwrap().unwrap().next_pos, 3);
    assert_eq!(held(&memtable, 2), 3);
}

#[test]
fn renewals_are_applied_with_the_next_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _, _) = writer(&dir.path().join("db.sqlite"));
    let (c, _) = create("s");
    w.commit_batch(vec![c], false);
    w.renewals.record(1, 5_000);
    w.commit_batch(vec![job(()).0], true);
    let at: i64 = w
        .conn
        .query_row("SELECT last_access_ms FROM streams WHERE id = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(at, 5_000);
    assert!(w.renewals.is_empty());
}

#[test]
fn the_metadata_cache_gets_appended_rows_and_loses_every_other_written_row() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _, _) = writer(&dir.path().join("db.sqlite"));
    let (a, _) = create("a");
    let (b, _) = create("b");
    w.commit_batch(vec![a, b], false);
    // Created streams are cached as created.
    assert_eq!(w.cache.get("a").unwrap().tail.next_pos, 0);
    let (x, _) = append("a", b"x".to_vec(), None);
    w.commit_batch(vec![x], false);
    let a = w.cache.get("a").unwrap();
    assert_eq!(a.tail.next_pos, 1);
    let mut row = crate::engine::db::streams::by_name(&w.conn, "a")
        .unwrap()
        .unwrap();
    w.memtable.lock().overlay(&mut row);
    assert_eq!(a, row);
    // A write no operation recorded (here: a renewal) evicts the row.
    w.renewals.record(2, 9_999);
    w.commit_batch(vec![job(()).0], true);
    assert!(w.cache.get("b").is_none());
    assert!(w.cache.get("a").is_some());
    // An append followed in the same batch by another write to the row: evicted, since
    // the recorded row is no longer exact.
    let (y, _) = append("a", b"y".to_vec(), None);
    let (_, other_rx) = oneshot::channel::<Result<(), EngineError>>();
    drop(other_rx);
    let touch = Box::new(Call::new(
        |b: &mut Batch<'_>| {
            crate::engine::db::streams::touch(b.conn()?, 1, 12_345)?;
            Ok::<(), EngineError>(())
        },
        true,
        oneshot::channel().0,
    ));
    w.commit_batch(vec![y, touch], false);
    assert!(w.cache.get("a").is_none());
}

/// An append finds its stream in the metadata cache only while no write of its batch
/// touched the row; after such a write it reads the row the transaction has.
#[test]
fn an_append_sees_its_stream_as_the_batch_left_it_not_as_cached() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _, _) = writer(&dir.path().join("db.sqlite"));
    let (c, _) = create("s");
    w.commit_batch(vec![c], false);
    let (x, mut rx) = append("s", b"x".to_vec(), None);
    w.commit_batch(vec![x], false);
    assert_eq!(rx.try_recv().unwrap().unwrap().next_pos, 1);
    assert!(!w.cache.get("s").unwrap().tail.closed, "cached as open");

    // Closed by an earlier operation of the same batch, behind the cache's back.
    let close = Box::new(Call::new(
        |b: &mut Batch<'_>| {
            b.conn()?
                .execute("UPDATE streams SET closed = 1 WHERE id = 1", [])?;
            Ok::<(), EngineError>(())
        },
        true,
        oneshot::channel().0,
    ));
    let (y, mut ry) = append("s", b"y".to_vec(), None);
    w.commit_batch(vec![close, y], false);
    assert!(matches!(
        ry.try_recv().unwrap(),
        Err(AppendError::Closed { next_pos: 1 })
    ));
    assert!(w.cache.get("s").is_none(), "the written row left the cache");
    assert_eq!(next_pos(&w, "s"), 1);
}

/// The row's tail, byte counts and last access, as SQLite has them.
fn row_tail(w: &Writer, name: &str) -> (i64, i64, i64, i64) {
    w.conn
        .query_row(
            "SELECT next_pos, total_bytes, pending_bytes, last_access_ms FROM streams \
             WHERE name = ?1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap()
}

/// A plain append writes its entries and not its stream's row; the memtable adds them to
/// the row for whoever reads it, and compaction folds them into it.
#[test]
fn a_plain_append_reaches_its_streams_row_when_compaction_folds_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, memtable, _) = writer(&dir.path().join("db.sqlite"));
    let (c, _) = create("s");
    w.commit_batch(vec![c], false);
    // Two appends in one batch see each other; a third in the next batch.
    let (x, mut rx) = append("s", b"xx".to_vec(), None);
    let (y, mut ry) = append("s", b"yyy".to_vec(), None);
    w.commit_batch(vec![x, y], false);
    let (z, mut rz) = append("s", b"z".to_vec(), None);
    w.commit_batch(vec![z], false);
    let got: Vec<u64> = [rx.try_recv(), ry.try_recv(), rz.try_recv()]
        .into_iter()
        .map(|r| r.unwrap().unwrap().next_pos)
        .collect();
    assert_eq!(got, [1, 2, 3]);
    assert_eq!(row_tail(&w, "s"), (0, 0, 0, 1_000), "the row is as created");
    let cached = w.cache.get("s").unwrap();
    let mut loaded = crate::engine::db::streams::by_name(&w.conn, "s")
        .unwrap()
        .unwrap();
    memtable.lock().overlay(&mut loaded);
    assert_eq!(
        Some(&loaded),
        Some(&cached),
        "row + memtable = the cached stream"
    );
    assert_eq!(
        (
            loaded.tail.next_pos,
            loaded.tail.total_bytes,
            loaded.tier.pending_bytes,
            loaded.tail.last_access_ms
        ),
        (3, 6, 6, 1_000)
    );
    // Compaction folds the entries into the row, once.
    w.compact();
    assert_eq!(memtable.size().entries, 0);
    assert_eq!(row_tail(&w, "s"), (3, 6, 6, 1_000));
    assert_eq!(
        db::ingest::fold(&w.conn).unwrap(),
        0,
        "nothing left to fold"
    );
    // A close writes the whole tail; compaction does not count its entries again.
    let (x, _) = append("s", b"x".to_vec(), None);
    w.commit_batch(vec![x], false);
    let close = {
        let (tx, _rx) = oneshot::channel();
        let mut cmd = crate::engine::testing::append_cmd("s", "text/plain", vec![]);
        cmd.entries = vec![bytes::Bytes::from_static(b"last")];
        cmd.close = true;
        let f = move |b: &mut Batch<'_>| crate::engine::ops::append::run(b, cmd);
        Box::new(Call::new(f, false, tx))
    };
    w.commit_batch(vec![close], false);
    assert_eq!(row_tail(&w, "s").0, 5);
    w.compact();
    assert_eq!(row_tail(&w, "s"), (5, 11, 11, 1_000));
}

/// What a crash leaves in the append log is folded into the rows at start-up, as it
/// would have been by the compaction the crash prevented; so is what a batch that began a
/// transaction put into the ingest table.
#[test]
fn appends_a_crash_left_in_the_logs_reach_their_rows_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    {
        let (mut w, _, _) = writer(&path);
        let (c, _) = create("s");
        w.commit_batch(vec![c], false);
        for data in [&b"ab"[..], b"c", b"def"] {
            let (x, _) = append("s", data.to_vec(), None);
            w.commit_batch(vec![x], false);
        }
        assert!(ingest::is_empty(&w.conn).unwrap(), "plain appends: the log");
        // With a producer the append writes a row: the transaction takes its entries.
        let (x, _) = append("s", b"gh".to_vec(), Some(0));
        w.commit_batch(vec![x], false);
        assert!(!ingest::is_empty(&w.conn).unwrap());
        assert_eq!(row_tail(&w, "s").0, 0);
    }
    let mut conn = db::open_writer(&path).unwrap();
    let memtable = Memtable::default();
    let clock: crate::clock::SharedClock = crate::clock::ManualClock::new(1_000);
    recover(&mut conn, &path, &clock, &memtable).unwrap();
    assert_eq!(memtable.size().entries, 0);
    drop(conn);
    let (w, _, _) = writer(&path);
    assert_eq!(row_tail(&w, "s"), (4, 8, 8, 1_000));
    assert_eq!(
        compacted(&w),
        positioned(&[b"ab", b"c", b"def", b"gh"]),
        "each entry once, the log's replayed once"
    );
}

/// Entries of stream `id` the memtable holds.
fn held(memtable: &Memtable, id: i64) -> usize {
    let mut c = crate::engine::Collect::new(
        0,
        crate::engine::ReadLimits {
            max_bytes: 1 << 20,
            max_records: 100,
            key: None,
            filter: None,
        },
    );
    memtable.lock().collect(id, 10, &mut c);
    c.entries.len()
}

#[test]
fn without_a_runtime_answers_go_straight_from_the_writer() {
    assert!(matches!(
        Replies::start(Notifier::default()),
        Replies::Direct(_)
    ));
}

#[tokio::test]
async fn on_a_runtime_a_committed_batch_is_answered_and_announced_by_the_reply_task() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _, notifier) = writer(&dir.path().join("db.sqlite"));
    w.replies = Replies::start(notifier.clone());
    assert!(matches!(w.replies, Replies::Task(_)));
    let mut feed = notifier.feed();
    let (c, rc) = create("s");
    let (a1, r1) = append("s", b"one".to_vec(), None);
    let (a2, r2) = append("s", b"two".to_vec(), None);
    w.commit_batch(vec![c, a1, a2], false);
    assert!(matches!(rc.await.unwrap(), Ok(CreateOutcome::Created(_))));
    assert_eq!(r1.await.unwrap().unwrap().next_pos, 1);
    assert_eq!(r2.await.unwrap().unwrap().next_pos, 2);
    // The same task announces the commit.
    match feed.next().await {
        crate::engine::committed::FeedEvent::Commit(c) => {
            assert_eq!(c.streams[0].change.next_pos, 2);
        }
        other => panic!("{other:?}"),
    }
    // A refusal is answered the same way.
    let (bad, rbad) = append("missing", b"x".to_vec(), None);
    w.commit_batch(vec![bad], false);
    assert!(matches!(rbad.await.unwrap(), Err(AppendError::NotFound)));
}

#[test]
fn compaction_waits_longer_when_the_memtable_is_small_or_spread_over_many_streams() {
    let ms = |n| Some(Duration::from_millis(n));
    let due = |entries: usize, streams: usize, age_ms: u64| {
        compaction_due_in(&memtable::Size {
            entries,
            bytes: entries * 150,
            streams,
            age: ms(age_ms),
        })
    };
    assert_eq!(compaction_due_in(&memtable::Size::default()), None, "empty");
    // A few hot streams: due 200 ms after the oldest entry.
    assert_eq!(due(6_000, 16, 50), ms(150));
    assert_eq!(due(6_000, 16, 200), ms(0));
    assert_eq!(due(1_000, 1, 250), ms(0));
    // Fewer than 1,000 entries, or fewer than 8 per stream: up to a second.
    assert_eq!(due(40, 1, 250), ms(750));
    assert_eq!(due(999, 1, 1_000), ms(0));
    // Large entries count by their bytes: 32 entries of 8 KiB are due after 200 ms.
    let large = |age_ms| {
        compaction_due_in(&memtable::Size {
            entries: 32,
            bytes: 32 << 13,
            streams: 1,
            age: ms(age_ms),
        })
    };
    assert_eq!(large(50), ms(150));
    assert_eq!(due(5_000, 10_000, 200), ms(800));
    assert_eq!(due(7, 1, 300), ms(700));
    assert_eq!(due(5_000, 10_000, 1_000), ms(0));
    // The size limits, whatever the age.
    assert_eq!(due(20_000, 10_000, 10), ms(0));
    let big = memtable::Size {
        entries: 100,
        bytes: 4 << 20,
        streams: 100,
        age: ms(0),
    };
    assert_eq!(compaction_due_in(&big), ms(0));
}

/// The salt the database records for the append log, and the entries its records hold.
fn log_state(w: &Writer, path: &Path) -> (u64, Vec<Vec<u8>>) {
    let salt = ingest::log_salt(&w.conn).unwrap().unwrap();
    let runs = applog::read(path, salt).unwrap().runs;
    let data = runs
        .iter()
        .flat_map(|r| r.2.iter().map(|e| e.data.to_vec()))
        .collect();
    (salt, data)
}

/// A batch of plain appends is one record of the append log and writes nothing to
/// SQLite; a batch that begins a transaction takes its appends into `ingest`; compaction
/// moves both into `entries` and voids the log's records.
#[test]
fn plain_appends_go_to_the_append_log_until_compaction_voids_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let (mut w, memtable, _) = writer(&path);
    let (c, _) = create("s");
    w.commit_batch(vec![c], false);
    let (salt, records) = log_state(&w, &path);
    assert!(records.is_empty());

    let (a1, mut r1) = append("s", b"one".to_vec(), None);
    let (a2, mut r2) = append("s", b"two".to_vec(), None);
    w.commit_batch(vec![a1, a2], false);
    assert_eq!(r1.try_recv().unwrap().unwrap().next_pos, 1);
    assert_eq!(r2.try_recv().unwrap().unwrap().next_pos, 2);
    assert!(ingest::is_empty(&w.conn).unwrap());
    assert_eq!(
        log_state(&w, &path),
        (salt, vec![b"one".to_vec(), b"two".to_vec()])
    );

    // A plain append, then a create: the transaction takes the append's entries.
    let (a3, mut r3) = append("s", b"three".to_vec(), None);
    let (t, _) = create("t");
    w.commit_batch(vec![a3, t], false);
    assert_eq!(r3.try_recv().unwrap().unwrap().next_pos, 3);
    assert!(!ingest::is_empty(&w.conn).unwrap());
    assert_eq!(log_state(&w, &path).1.len(), 2, "the log is unchanged");
    assert_eq!(held(&memtable, 1), 3);

    w.compact();
    let (new_salt, records) = log_state(&w, &path);
    assert_ne!(new_salt, salt);
    assert!(records.is_empty(), "no record of the new salt yet");
    assert!(ingest::is_empty(&w.conn).unwrap());
    assert_eq!(compacted(&w), positioned(&[b"one", b"two", b"three"]));
    assert_eq!(row_tail(&w, "s"), (3, 11, 11, 1_000));

    // The log is written from its beginning again.
    let (a4, _) = append("s", b"four".to_vec(), None);
    w.commit_batch(vec![a4], false);
    assert_eq!(log_state(&w, &path), (new_salt, vec![b"four".to_vec()]));
}

/// A record that cannot be written fails its batch and leaves nothing behind; since it
/// may still reach the disk, no batch commits until a compaction voided it, and the
/// positions it would have taken go to the next append.
#[test]
fn a_failed_log_record_fails_its_batch_and_is_voided_before_the_next_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let (mut w, memtable, _) = writer(&path);
    let (c, _) = create("s");
    w.commit_batch(vec![c], false);
    let (a, _) = append("s", b"kept".to_vec(), None);
    w.commit_batch(vec![a], false);
    let (salt, _) = log_state(&w, &path);

    // A handle that cannot write.
    let read_only = std::fs::File::open(applog::path_for(&path)).unwrap();
    let good = w.log.swap_file(read_only);
    let (bad, mut r_bad) = append("s", b"lost".to_vec(), None);
    w.commit_batch(vec![bad], false);
    assert!(matches!(
        r_bad.try_recv().unwrap(),
        Err(AppendError::Engine(EngineError::Io { .. }))
    ));
    assert_eq!(held(&memtable, 1), 1, "the failed entry is not held");
    assert_eq!(next_pos(&w, "s"), 1);
    assert_eq!(
        ingest::log_salt(&w.conn).unwrap(),
        Some(salt),
        "not voided yet"
    );

    w.log.swap_file(good);
    let (next, mut r_next) = append("s", b"next".to_vec(), None);
    w.commit_batch(vec![next], false);
    assert_eq!(r_next.try_recv().unwrap().unwrap().next_pos, 2);
    let (new_salt, records) = log_state(&w, &path);
    assert_ne!(
        new_salt, salt,
        "a compaction voided the failed record first"
    );
    assert_eq!(records, vec![b"next".to_vec()]);
    assert_eq!(compacted(&w), positioned(&[b"kept"]));
}

/// A clean stop compacts: the database holds every entry without the append log.
#[test]
fn a_clean_stop_leaves_the_append_logs_entries_in_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let (mut w, _, _) = writer(&path);
    let (c, _) = create("s");
    w.commit_batch(vec![c], false);
    let (a, _) = append("s", b"last words".to_vec(), None);
    w.commit_batch(vec![a], false);
    let (salt, records) = log_state(&w, &path);
    assert_eq!(records.len(), 1);
    let (tx, rx) = mpsc::channel();
    tx.send(Msg::Shutdown).unwrap();
    w.run(rx);
    let (new_salt, records) = log_state(&w, &path);
    assert_ne!(new_salt, salt);
    assert!(records.is_empty());
    assert_eq!(row_tail(&w, "s").0, 1);
    assert_eq!(compacted(&w), positioned(&[b"last words"]));
}

/// `(pos, data)` of stream 1's rows in `entries`, in order.
fn compacted(w: &Writer) -> Vec<(i64, Vec<u8>)> {
    w.conn
        .prepare("SELECT pos, data FROM entries WHERE stream_id = 1 ORDER BY pos")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// `data` at positions 0, 1, … .
fn positioned(data: &[&[u8]]) -> Vec<(i64, Vec<u8>)> {
    (0..).zip(data.iter().map(|d| d.to_vec())).collect()
}
