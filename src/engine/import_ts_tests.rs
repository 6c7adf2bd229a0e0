//! Takeover of hand-built databases in the original's layout (the real ones, written by
//! the published packages, are in tests/ts_takeover.rs).

use super::*;
use crate::clock::ManualClock;

/// The original's tables as 0.1.11's migration leaves a 0.1.2 file (the "24" that lacks
/// `profile`, `logical_size_bytes` and the rest): only the columns the takeover needs.
const HALF_24: &str = "
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE streams (stream TEXT PRIMARY KEY, created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL, content_type TEXT NOT NULL, stream_seq TEXT NULL,
  closed INTEGER NOT NULL DEFAULT 0, closed_producer_id TEXT NULL,
  closed_producer_epoch INTEGER NULL, closed_producer_seq INTEGER NULL,
  ttl_seconds INTEGER NULL, epoch INTEGER NOT NULL, next_offset INTEGER NOT NULL,
  expires_at_ms INTEGER NULL, stream_flags INTEGER NOT NULL DEFAULT 0);
CREATE TABLE wal (id INTEGER PRIMARY KEY, stream TEXT NOT NULL, offset INTEGER NOT NULL,
  ts_ms INTEGER NOT NULL, payload BLOB NOT NULL, payload_len INTEGER NOT NULL,
  routing_key BLOB NULL, content_type TEXT NULL, flags INTEGER NOT NULL DEFAULT 0);
CREATE UNIQUE INDEX wal_stream_offset_uniq ON wal(stream, offset);
CREATE TABLE producer_state (stream TEXT NOT NULL, producer_id TEXT NOT NULL,
  epoch INTEGER NOT NULL, last_seq INTEGER NOT NULL, updated_at_ms INTEGER NOT NULL,
  PRIMARY KEY (stream, producer_id));
CREATE TABLE schemas (stream TEXT PRIMARY KEY, schema_json TEXT NOT NULL,
  updated_at_ms INTEGER NOT NULL);
INSERT INTO schema_version (version) VALUES (24);
";

fn original(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("durable-streams.sqlite");
    let c = Connection::open(&path).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.execute_batch(HALF_24).unwrap();
    c.execute_batch(extra).unwrap();
    path
}

fn clock() -> std::sync::Arc<ManualClock> {
    ManualClock::new(1_800_000_000_000)
}

fn unreadable(path: &Path) -> String {
    match take_over(path, &*clock()) {
        Err(e @ TakeoverError::Unreadable { .. }) => e.to_string(),
        other => panic!("expected Unreadable, got {other:?}"),
    }
}

const STREAMS: &str = "
INSERT INTO streams (stream, created_at_ms, updated_at_ms, content_type, stream_seq, closed,
  closed_producer_id, closed_producer_epoch, closed_producer_seq, ttl_seconds, epoch,
  next_offset, expires_at_ms, stream_flags) VALUES
  ('a', 100, 200, 'application/json', '0007', 1, 'p', 3, 9, NULL, 0, 3, NULL, 0),
  ('t', 100, 200, 'text/plain', NULL, 0, NULL, NULL, NULL, 60, 0, 0, 60100, 0),
  ('__stream_metrics__', 1, 1, 'application/json', NULL, 0, NULL, NULL, NULL, NULL, 0, 1, NULL, 0),
  ('gone', 1, 1, 'application/json', NULL, 0, NULL, NULL, NULL, NULL, 0, 0, NULL, 1);
INSERT INTO wal (stream, offset, ts_ms, payload, payload_len, routing_key) VALUES
  ('a', 0, 150, X'7B7D', 2, NULL), ('a', 1, 151, X'5B315D', 3, X'6B31'), ('a', 2, 152, X'31', 1, NULL),
  ('__stream_metrics__', 0, 1, X'7B7D', 2, NULL);
INSERT INTO producer_state VALUES ('a', 'p', 3, 9, 190), ('gone', 'q', 0, 0, 1);
INSERT INTO schemas VALUES ('a', '{\"apiVersion\":\"durable.streams/schema-registry/v1\",\"schema\":\"a\",\"currentVersion\":1,\"interpreter\":{\"apiVersion\":\"durable.streams/stream-interpreter/v1\",\"format\":\"durable.streams/state-protocol/v1\",\"touch\":{\"enabled\":true}},\"boundaries\":[{\"offset\":0,\"version\":1}],\"schemas\":{\"1\":true},\"lenses\":{}}', 1);
";

#[test]
fn a_half_migrated_file_is_taken_over_and_kept_as_the_backup() {
    let dir = tempfile::tempdir().unwrap();
    let path = original(dir.path(), STREAMS);
    // A leftover of an interrupted attempt is replaced.
    std::fs::write(temp_path(&path), b"half-written").unwrap();
    let t = take_over(&path, &*clock()).unwrap().unwrap();
    assert_eq!(
        (t.version, t.streams, t.entries),
        (24, 2, 3),
        "{:?}",
        t.warnings
    );
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    assert_eq!(
        t.backup,
        dir.path().join("durable-streams.sqlite.ts-v24.bak")
    );
    assert!(!temp_path(&path).exists());
    assert!(!with_suffix(&path, "-wal").exists());
    // The backup is the original, complete without its -wal.
    let b = Connection::open(&t.backup).unwrap();
    let n: i64 = b
        .query_row("SELECT count(*) FROM wal", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 4);
    drop(b);

    let c = db::open_writer(&path).unwrap();
    let a = streams::by_name(&c, "a").unwrap().unwrap();
    assert_eq!(a.tail.next_pos, 3);
    assert!(a.tail.closed);
    assert_eq!(a.tail.closed_by, Some(("p".to_owned(), 3, 9)));
    assert_eq!(a.tail.stream_seq.as_deref(), Some(&b"0007"[..]));
    assert_eq!(a.tail.total_bytes, 6);
    assert_eq!(a.config.created_at_ms, 100);
    assert_eq!(a.settings.profile.as_deref(), Some("state-protocol"));
    type Row = (i64, Vec<u8>, Option<Vec<u8>>, i64);
    let rows: Vec<Row> = c
        .prepare("SELECT pos, data, key, ts_ms FROM entries WHERE stream_id = ?1 ORDER BY pos")
        .unwrap()
        .query_map([a.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(
        rows,
        vec![
            (0, b"{}".to_vec(), None, 150),
            (1, b"[1]".to_vec(), Some(b"k1".to_vec()), 151),
            (2, b"1".to_vec(), None, 152)
        ]
    );
    assert_eq!(producers::get(&c, a.id, "p").unwrap(), Some((3, 9)));
    // The legacy interpreter became the profile, and left the registry.
    let reg = config::registry(&c, a.id).unwrap().unwrap();
    assert!(!reg.contains("interpreter"), "{reg}");
    let prof = config::profile(&c, a.id).unwrap().unwrap();
    assert!(prof.contains("\"enabled\":true"), "{prof}");
    // The TTL keeps its first deadline (created + 60 s).
    let t = streams::by_name(&c, "t").unwrap().unwrap();
    assert_eq!(t.config.expiry, Expiry::Ttl(60));
    assert_eq!(t.tail.last_access_ms, 100);
    // The original's internal and deleted streams are not carried over.
    assert!(streams::by_name(&c, "__stream_metrics__")
        .unwrap()
        .is_none());
    assert!(streams::by_name(&c, "gone").unwrap().is_none());
    drop(c);
    // Our database is left alone on the next start.
    assert!(take_over(&path, &*clock()).unwrap().is_none());
}

#[test]
fn unreadable_files_fail_with_a_reset_phrase_and_stay_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("durable-streams.sqlite");
    std::fs::write(&path, vec![b'x'; 8192]).unwrap();
    assert!(unreadable(&path).contains("file is not a database"));
    assert_eq!(std::fs::read(&path).unwrap(), vec![b'x'; 8192]);

    for (sql, phrase) in [
        (
            "UPDATE schema_version SET version = 25",
            "unexpected schema version: 25 (expected 11..24)",
        ),
        (
            "UPDATE schema_version SET version = 10",
            "unexpected schema version: 10 (expected 11..24)",
        ),
        ("DELETE FROM schema_version", "unexpected schema version:"),
        ("DROP TABLE wal", "no such table: wal"),
        (
            "ALTER TABLE streams DROP COLUMN next_offset",
            "no such column: streams.next_offset",
        ),
    ] {
        let d = tempfile::tempdir().unwrap();
        let p = original(d.path(), sql);
        let msg = unreadable(&p);
        assert!(msg.contains(phrase), "{sql}: {msg}");
        assert!(!temp_path(&p).exists());
        assert!(!with_suffix(&p, ".ts-v24.bak").exists(), "{sql}");
    }
    // Tables that are neither the original's nor ours.
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("x.sqlite");
    Connection::open(&p)
        .unwrap()
        .execute_batch("CREATE TABLE streams (x)")
        .unwrap();
    assert!(unreadable(&p).contains("unexpected schema version: none"));
}

#[test]
fn entries_missing_in_the_middle_refuse_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = original(
        dir.path(),
        "INSERT INTO streams (stream, created_at_ms, updated_at_ms, content_type, epoch, next_offset) \
           VALUES ('a', 1, 1, 'text/plain', 0, 3);
         INSERT INTO wal (stream, offset, ts_ms, payload, payload_len) VALUES
           ('a', 0, 1, X'61', 1), ('a', 2, 1, X'63', 1);",
    );
    match take_over(&path, &*clock()) {
        Err(e @ TakeoverError::Unsupported { .. }) => {
            assert!(
                e.to_string().contains("lacks the entries at offsets 1..2"),
                "{e}"
            )
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    assert!(!temp_path(&path).exists());
    assert!(!with_suffix(&path, ".ts-v24.bak").exists());
    // Still the original's.
    assert_eq!(classify(&path), Ok(Kind::Original(24)));
}

#[test]
fn a_trimmed_prefix_starts_the_stream_where_the_original_kept_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = original(
        dir.path(),
        "INSERT INTO streams (stream, created_at_ms, updated_at_ms, content_type, epoch, next_offset) \
           VALUES ('a', 1, 1, 'text/plain', 0, 5);
         INSERT INTO wal (stream, offset, ts_ms, payload, payload_len) VALUES
           ('a', 3, 1, X'61', 1), ('a', 4, 1, X'62', 1);",
    );
    take_over(&path, &*clock()).unwrap().unwrap();
    let c = db::open_writer(&path).unwrap();
    let a = streams::by_name(&c, "a").unwrap().unwrap();
    assert_eq!((a.tier.trimmed_pos, a.tail.next_pos), (3, 5));
}

/// A million entries go through a cursor and one transaction.
#[test]
fn a_million_entries_are_copied() {
    let dir = tempfile::tempdir().unwrap();
    let path = original(
        dir.path(),
        "INSERT INTO streams (stream, created_at_ms, updated_at_ms, content_type, epoch, next_offset) \
           VALUES ('big', 1, 1, 'application/octet-stream', 0, 1000000);
         WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999999)
         INSERT INTO wal (stream, offset, ts_ms, payload, payload_len)
           SELECT 'big', i, 1, randomblob(16), 16 FROM n;",
    );
    let t = take_over(&path, &*clock()).unwrap().unwrap();
    assert_eq!(t.entries, 1_000_000);
    let c = db::open_writer(&path).unwrap();
    let (n, max): (i64, i64) = c
        .query_row("SELECT count(*), max(pos) FROM entries", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((n, max), (1_000_000, 999_999));
}

/// A swap interrupted after the original was linked to the backup name: the next start
/// takes over again and reuses that name; an older backup of another file is kept.
#[test]
fn an_interrupted_swap_is_finished_by_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = original(dir.path(), STREAMS);
    let older = with_suffix(&path, ".ts-v24.bak");
    std::fs::write(&older, b"an earlier takeover's backup").unwrap();
    let linked = with_suffix(&path, ".ts-v24.1.bak");
    std::fs::hard_link(&path, &linked).unwrap();
    std::fs::write(temp_path(&path), b"unfinished").unwrap();
    let t = take_over(&path, &*clock()).unwrap().unwrap();
    assert_eq!(t.backup, linked);
    assert_eq!(
        std::fs::read(&older).unwrap(),
        b"an earlier takeover's backup"
    );
    assert!(!with_suffix(&path, ".ts-v24.2.bak").exists());
    assert_eq!(classify(&linked), Ok(Kind::Original(24)));
    let c = db::open_writer(&path).unwrap();
    assert!(streams::by_name(&c, "a").unwrap().is_some());
}

/// The original accepted registries that cannot be evaluated (a schema that is `[]`);
/// carried over, every request on the stream would fail, so such a registry stays in the
/// backup only (with a warning), and the stream and its entries are taken over.
#[test]
fn a_registry_this_server_cannot_use_stays_in_the_backup() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "
INSERT INTO streams (stream, created_at_ms, updated_at_ms, content_type, stream_seq, closed,
  closed_producer_id, closed_producer_epoch, closed_producer_seq, ttl_seconds, epoch,
  next_offset, expires_at_ms, stream_flags) VALUES
  ('bad', 100, 200, 'application/json', NULL, 0, NULL, NULL, NULL, NULL, 0, 1, NULL, 0),
  ('good', 100, 200, 'application/json', NULL, 0, NULL, NULL, NULL, NULL, 0, 0, NULL, 0);
INSERT INTO wal (stream, offset, ts_ms, payload, payload_len, routing_key) VALUES
  ('bad', 0, 150, X'7B7D', 2, NULL);
INSERT INTO schemas VALUES
  ('bad', '{\"apiVersion\":\"durable.streams/schema-registry/v1\",\"schema\":\"bad\",\"currentVersion\":1,\"boundaries\":[{\"offset\":0,\"version\":1}],\"schemas\":{\"1\":[]},\"lenses\":{}}', 1),
  ('good', '{\"apiVersion\":\"durable.streams/schema-registry/v1\",\"schema\":\"good\",\"currentVersion\":1,\"boundaries\":[{\"offset\":0,\"version\":1}],\"schemas\":{\"1\":{\"type\":\"object\"}},\"lenses\":{}}', 1);
";
    let path = original(dir.path(), extra);
    let t = take_over(&path, &*clock()).unwrap().unwrap();
    assert_eq!((t.streams, t.entries), (2, 1));
    assert_eq!(t.warnings.len(), 1, "{:?}", t.warnings);
    assert!(t.warnings[0].contains("\"bad\""), "{:?}", t.warnings);
    let c = db::open_writer(&path).unwrap();
    let bad = streams::by_name(&c, "bad").unwrap().unwrap();
    assert!(config::registry(&c, bad.id).unwrap().is_none());
    let good = streams::by_name(&c, "good").unwrap().unwrap();
    assert!(config::registry(&c, good.id).unwrap().is_some());
}
