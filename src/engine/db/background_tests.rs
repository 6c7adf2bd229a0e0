//! The background queries (segmenter, the uploader's two, expiry sweeper, producer
//! collection) on a database with many idle streams: they must return exactly the rows
//! that need work, and the work SQLite does for them must not depend on how many idle rows
//! there are.
//!
//! "Work" is counted by SQLite itself per statement (`sqlite3_stmt_status`): virtual
//! machine steps, full-scan steps, sorts and re-preparations. These counts are
//! deterministic, so the test compares them between 3,000 and 30,000 idle streams instead
//! of timing anything.

use rusqlite::{params, Connection, StatementStatus};

use super::{open_writer, producers, streams};
use crate::engine::meta::StreamMeta;

/// The batch's time in these tests.
const NOW: i64 = 1_800_000_000_000;
const DAY_MS: i64 = 86_400_000;

// Segmenter thresholds used by the queries below.
const ROWS: u64 = 100;
const BYTES: u64 = 1_000_000;
const INTERVAL_MS: u64 = 60_000;
/// A first manifest is due for an empty stream created at or before this, and for any
/// created at or before [`ANY_BEFORE`].
const EMPTY_BEFORE: i64 = NOW - INTERVAL_MS as i64;
const ANY_BEFORE: i64 = NOW - 2 * INTERVAL_MS as i64;

/// Rows `build` adds besides the idle streams (an upper bound).
const ACTIVE_ROWS: i32 = 30;

/// Producer state older than this (relative to `NOW`) is idle.
const PRODUCER_IDLE_BEFORE: i64 = NOW - 7 * DAY_MS;

/// What SQLite did for one execution of a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Work {
    vm_steps: i32,
    fullscan_steps: i32,
    sorts: i32,
    reprepares: i32,
}

/// Runs `run` (which executes `sql` through the statement cache) and returns its result
/// with the work the cached statement did.
fn measure<T>(c: &Connection, sql: &str, run: impl FnOnce(&Connection) -> T) -> (T, Work) {
    {
        let s = c.prepare_cached(sql).unwrap();
        for st in [
            StatementStatus::VmStep,
            StatementStatus::FullscanStep,
            StatementStatus::Sort,
            StatementStatus::RePrepare,
        ] {
            s.reset_status(st);
        }
    }
    let out = run(c);
    let s = c.prepare_cached(sql).unwrap();
    let work = Work {
        vm_steps: s.get_status(StatementStatus::VmStep),
        fullscan_steps: s.get_status(StatementStatus::FullscanStep),
        sorts: s.get_status(StatementStatus::Sort),
        reprepares: s.get_status(StatementStatus::RePrepare),
    };
    (out, work)
}

/// `EXPLAIN QUERY PLAN` of `sql`, one line per step.
fn plan(c: &Connection, sql: &str, args: &[&dyn rusqlite::ToSql]) -> String {
    let mut s = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let rows = s
        .query_map(args, |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    rows.join("\n")
}

/// A stream row; `f` adjusts the defaults (an idle stream: sealed, uploaded, published).
fn stream(c: &Connection, name: Option<&str>, f: &str) -> i64 {
    c.execute(
        "INSERT INTO streams (name, content_type, created_at_ms, last_access_ms, next_pos, \
         incarnation, sealed_pos, uploaded_pos, last_cut_ms, pending_bytes, manifest_dirty, \
         manifest_generation) \
         VALUES (?1, 'application/json', ?2, ?2, 5, lower(hex(randomblob(16))), 5, 5, ?2, 0, 0, 3)",
        params![name, NOW - DAY_MS],
    )
    .unwrap();
    let id = c.last_insert_rowid();
    if !f.is_empty() {
        c.execute(&format!("UPDATE streams SET {f} WHERE id = ?1"), [id])
            .unwrap();
        // As the statements that write `next_pos` do (migration 0014).
        c.execute(
            "UPDATE streams SET unsealed = (next_pos > sealed_pos) WHERE id = ?1",
            [id],
        )
        .unwrap();
    }
    id
}

fn producer(c: &Connection, stream_id: i64, producer: &str, updated_at_ms: i64) {
    producers::put(c, stream_id, producer, 0, 3, updated_at_ms).unwrap();
}

/// The rows that need work, by role.
struct Active {
    seal: Vec<i64>,
    dirty: Vec<i64>,
    first_due: Vec<i64>,
    expired: Vec<i64>,
    idle_producers: Vec<(i64, String)>,
}

/// A database with `idle` idle streams (every third with a TTL or deadline far in the
/// future, each with a recently updated producer) and a handful that need work, or
/// almost do.
fn build(dir: &std::path::Path, idle: usize) -> (Connection, Active) {
    let c = open_writer(&dir.join(format!("idle-{idle}.sqlite"))).unwrap();
    c.execute_batch("BEGIN").unwrap();
    for i in 0..idle {
        let f = match i % 3 {
            0 => "ttl_seconds = 31536000".to_string(),
            1 => format!("expires_at_ms = {}", NOW + 30 * DAY_MS),
            _ => String::new(),
        };
        let id = stream(&c, Some(&format!("idle-{i}")), &f);
        producer(&c, id, "p", NOW - DAY_MS);
    }
    // Enough bytes; enough entries; entries older than the interval (the query's order:
    // most pending bytes first).
    let seal = vec![
        stream(&c, Some("bytes"), "next_pos = 6, pending_bytes = 1000000"),
        stream(&c, Some("rows"), "next_pos = 205, pending_bytes = 2000"),
        stream(
            &c,
            Some("old"),
            &format!(
                "next_pos = 6, pending_bytes = 10, last_cut_ms = {}",
                NOW - 60_000
            ),
        ),
    ];
    // unsealed but below every threshold; soft-deleted; internal
    let young = format!(
        "next_pos = 6, pending_bytes = 10, last_cut_ms = {}",
        NOW - 1000
    );
    stream(&c, Some("young"), &young);
    stream(&c, Some("gone"), "next_pos = 300, deleted = 1");
    stream(&c, Some("__internal"), "next_pos = 300, local_only = 1");

    let mut dirty = vec![
        stream(&c, Some("new"), "manifest_dirty = 1"),
        stream(&c, None, "manifest_dirty = 1, deleted = 1"),
    ];
    stream(
        &c,
        Some("__internal2"),
        "manifest_dirty = 1, local_only = 1",
    );

    // Never published, in creation order: empty and old enough; with entries and twice
    // as old; empty and exactly old enough.
    let unpublished = |created: i64, next_pos: u64| {
        format!(
            "manifest_generation = 0, created_at_ms = {created}, next_pos = {next_pos}, \
             sealed_pos = 0, uploaded_pos = 0, last_cut_ms = {NOW}"
        )
    };
    let first_due = vec![
        stream(&c, Some("first-with-entries"), &unpublished(ANY_BEFORE, 4)),
        stream(&c, Some("first-old"), &unpublished(EMPTY_BEFORE - 1, 0)),
        stream(&c, Some("first-exactly"), &unpublished(EMPTY_BEFORE, 0)),
    ];
    // Not yet: empty but 1 ms too young; with entries, waiting for its segment; dirty
    // (the other query's); internal.
    stream(&c, Some("first-young"), &unpublished(EMPTY_BEFORE + 1, 0));
    stream(&c, Some("first-waiting"), &unpublished(ANY_BEFORE + 1, 4));
    dirty.push(stream(
        &c,
        Some("first-dirty"),
        &format!("{}, manifest_dirty = 1", unpublished(ANY_BEFORE, 0)),
    ));
    stream(
        &c,
        Some("__first-internal"),
        &format!("{}, local_only = 1", unpublished(ANY_BEFORE, 0)),
    );

    // Soonest deadline first: 60 s ago, 1 ms ago, now.
    let expired = vec![
        stream(
            &c,
            Some("ttl-expired"),
            &format!("ttl_seconds = 60, last_access_ms = {}", NOW - 120_000),
        ),
        stream(
            &c,
            Some("at-expired"),
            &format!("expires_at_ms = {}", NOW - 1),
        ),
        stream(
            &c,
            Some("ttl-exactly"),
            &format!("ttl_seconds = 60, last_access_ms = {}", NOW - 60_000),
        ),
    ];
    // not yet expired by 1 ms; expired but soft-deleted; expired but detached
    stream(
        &c,
        Some("ttl-alive"),
        &format!("ttl_seconds = 60, last_access_ms = {}", NOW - 59_999),
    );
    stream(&c, Some("gone-expired"), "expires_at_ms = 5, deleted = 1");
    stream(&c, None, "expires_at_ms = 5, deleted = 1");

    let a = stream(&c, Some("producers"), "");
    producer(&c, a, "old", PRODUCER_IDLE_BEFORE - 5);
    producer(&c, a, "exactly", PRODUCER_IDLE_BEFORE);
    producer(&c, a, "recent", PRODUCER_IDLE_BEFORE + 1);
    let idle_producers = vec![(a, "old".to_string()), (a, "exactly".to_string())];
    c.execute_batch("COMMIT").unwrap();
    (
        c,
        Active {
            seal,
            dirty,
            first_due,
            expired,
            idle_producers,
        },
    )
}

fn ids(v: &[StreamMeta]) -> Vec<i64> {
    v.iter().map(|m| m.id).collect()
}

/// The five background queries on `c`: (result ids, work) each.
struct Observed {
    seal: (Vec<i64>, Work),
    dirty: (Vec<i64>, Work),
    first_due: (Vec<i64>, Work),
    expired: (Vec<i64>, Work),
    producers: (Vec<(i64, String)>, Work),
}

fn observe(c: &Connection) -> Observed {
    let seal = measure(c, &streams::seal_candidates_sql(), |c| {
        ids(&streams::seal_candidates(c, ROWS, BYTES, INTERVAL_MS, NOW, 8).unwrap())
    });
    let dirty = measure(c, &streams::manifest_dirty_sql(), |c| {
        ids(&streams::manifest_dirty(c, 256).unwrap())
    });
    let first_due = measure(c, &streams::first_manifest_due_sql(), |c| {
        ids(&streams::first_manifest_due(c, EMPTY_BEFORE, ANY_BEFORE, 256).unwrap())
    });
    let expired = measure(c, &streams::expired_sql(), |c| {
        ids(&streams::expired(c, NOW, 100).unwrap())
    });
    let producers = measure(c, producers::IDLE_SQL, |c| {
        producers::idle(c, PRODUCER_IDLE_BEFORE, 100).unwrap()
    });
    Observed {
        seal,
        dirty,
        first_due,
        expired,
        producers,
    }
}

#[test]
fn background_queries_find_exactly_the_rows_that_need_work() {
    let dir = tempfile::tempdir().unwrap();
    let (c, active) = build(dir.path(), 300);
    let o = observe(&c);
    assert_eq!(o.seal.0, active.seal);
    assert_eq!(o.dirty.0, active.dirty);
    assert_eq!(o.first_due.0, active.first_due);
    assert_eq!(o.producers.0, active.idle_producers);
    assert_eq!(o.expired.0, active.expired);
    for m in streams::expired(&c, NOW, 100).unwrap() {
        assert!(m.is_expired(NOW), "{:?}", m.name);
    }

    // The same rows as the scans the indexes replace (`NOT INDEXED` forces a table scan).
    let scan = |sql: &str| -> Vec<i64> {
        let mut s = c.prepare(sql).unwrap();
        let rows = s.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    };
    let mut want_seal = scan(&format!(
        "SELECT id FROM streams NOT INDEXED WHERE deleted = 0 AND local_only = 0 \
         AND next_pos > sealed_pos AND (next_pos - sealed_pos >= {ROWS} \
         OR pending_bytes >= {BYTES} OR ({INTERVAL_MS} > 0 AND {NOW} - last_cut_ms >= {INTERVAL_MS})) \
         ORDER BY pending_bytes DESC"
    ));
    want_seal.truncate(8);
    assert_eq!(o.seal.0, want_seal);
    assert_eq!(
        o.dirty.0,
        scan(
            "SELECT id FROM streams NOT INDEXED WHERE manifest_dirty = 1 AND local_only = 0 \
             ORDER BY id"
        )
    );
    assert_eq!(
        o.first_due.0,
        scan(&format!(
            "SELECT id FROM streams NOT INDEXED WHERE manifest_generation = 0 \
             AND manifest_dirty = 0 AND local_only = 0 AND (created_at_ms <= {ANY_BEFORE} \
             OR (created_at_ms <= {EMPTY_BEFORE} AND next_pos = uploaded_pos)) \
             ORDER BY created_at_ms, id"
        ))
    );
    let with_expiry = scan(
        "SELECT id FROM streams NOT INDEXED WHERE name IS NOT NULL AND deleted = 0 \
         AND (ttl_seconds IS NOT NULL OR expires_at_ms IS NOT NULL) \
         ORDER BY coalesce(expires_at_ms, last_access_ms + ttl_seconds * 1000)",
    );
    let expired: Vec<i64> = with_expiry
        .into_iter()
        .filter(|id| streams::by_id(&c, *id).unwrap().unwrap().is_expired(NOW))
        .collect();
    assert_eq!(o.expired.0, expired);
}

#[test]
fn background_queries_do_the_same_work_for_3000_and_30000_idle_streams() {
    let dir = tempfile::tempdir().unwrap();
    let (small, active_small) = build(dir.path(), 3_000);
    let (large, active_large) = build(dir.path(), 30_000);
    let a = observe(&small);
    let b = observe(&large);

    // The right rows in both (ids differ: the active rows come after the idle ones).
    assert_eq!(a.seal.0, active_small.seal);
    assert_eq!(b.seal.0, active_large.seal);
    assert_eq!(a.dirty.0, active_small.dirty);
    assert_eq!(b.dirty.0, active_large.dirty);
    assert_eq!(a.first_due.0, active_small.first_due);
    assert_eq!(b.first_due.0, active_large.first_due);
    assert_eq!(a.expired.0, active_small.expired);
    assert_eq!(b.expired.0, active_large.expired);
    assert_eq!(a.producers.0, active_small.idle_producers);
    assert_eq!(b.producers.0, active_large.idle_producers);

    // The seal candidates are sorted by pending bytes after the index found them (an index
    // in that order would change with every append, see migration 0014): the sort is of
    // the active rows only, as the equal work in both databases shows.
    for (what, x, y) in [
        ("seal candidates", a.seal.1, b.seal.1),
        ("manifest dirty", a.dirty.1, b.dirty.1),
        ("first manifest due", a.first_due.1, b.first_due.1),
        ("expired", a.expired.1, b.expired.1),
        ("idle producers", a.producers.1, b.producers.1),
    ] {
        let sorted = what == "seal candidates";
        assert_eq!(x, y, "{what}: work depends on the number of idle streams");
        // A scan, if any, is of a partial index holding only the rows that changed.
        assert!(
            y.fullscan_steps <= ACTIVE_ROWS,
            "{what} scans more than the active rows: {y:?}"
        );
        assert_eq!(
            y.sorts,
            i32::from(sorted),
            "{what} sorts instead of reading an index in order"
        );
    }

    // Run again (the cached statement, its parameters bound anew): not parsed and planned
    // again every time.
    let again = observe(&large);
    for (what, w) in [
        ("seal candidates", again.seal.1),
        ("manifest dirty", again.dirty.1),
        ("first manifest due", again.first_due.1),
        ("expired", again.expired.1),
        ("idle producers", again.producers.1),
    ] {
        assert_eq!(w.reprepares, 0, "{what} is re-prepared on every run");
    }

    // The plans name the indexes of migrations 0005, 0013 and 0014, and only the seal
    // candidates are sorted.
    let args: [&dyn rusqlite::ToSql; 5] = [&1, &1, &1, &1, &1];
    for (sql, n, index) in [
        (streams::seal_candidates_sql(), 5, "streams_unsealed"),
        (streams::manifest_dirty_sql(), 1, "streams_manifest_dirty"),
        (streams::first_manifest_due_sql(), 3, "streams_unpublished"),
        (streams::expired_sql(), 2, "streams_deadline"),
        (producers::IDLE_SQL.to_string(), 2, "producers_updated"),
    ] {
        let sorted = index == "streams_unsealed";
        let p = plan(&large, &sql, &args[..n]);
        assert!(p.contains(index), "{sql}\nplan: {p}");
        assert_eq!(p.contains("TEMP B-TREE"), sorted, "{sql}\nplan: {p}");
        assert!(
            p.lines()
                .all(|l| !l.starts_with("SCAN") || l.contains("INDEX")),
            "{sql}\nplan: {p}"
        );
    }
}
