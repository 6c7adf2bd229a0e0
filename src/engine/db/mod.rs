//! SQLite access: opening connections, PRAGMAs, migrations, and one module per table.
//! Only the writer thread (`engine::writer`) opens the read-write connection.

pub mod config;
pub mod entries;
pub mod ingest;
pub mod key_index;
pub mod object_gc;
pub mod producers;
pub mod retention;
pub mod segments;
pub mod streams;
pub mod subscriptions;
pub mod templates;

#[cfg(test)]
mod background_tests;

use std::path::Path;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

/// Migrations, embedded at build time, applied in order; `user_version` records progress.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_init",
        include_str!("../../../migrations/0001_init.sql"),
    ),
    (
        "0002_tiering",
        include_str!("../../../migrations/0002_tiering.sql"),
    ),
    (
        "0003_retention",
        include_str!("../../../migrations/0003_retention.sql"),
    ),
    (
        "0004_ingest",
        include_str!("../../../migrations/0004_ingest.sql"),
    ),
    (
        "0005_background_indexes",
        include_str!("../../../migrations/0005_background_indexes.sql"),
    ),
    (
        "0006_keys_and_times",
        include_str!("../../../migrations/0006_keys_and_times.sql"),
    ),
    (
        "0007_profiles_and_schemas",
        include_str!("../../../migrations/0007_profiles_and_schemas.sql"),
    ),
    (
        "0008_live_templates",
        include_str!("../../../migrations/0008_live_templates.sql"),
    ),
    (
        "0010_retention_bytes",
        include_str!("../../../migrations/0010_retention_bytes.sql"),
    ),
    (
        "0011_key_index",
        include_str!("../../../migrations/0011_key_index.sql"),
    ),
    // There is no 0009: the number was reserved for subscriptions, which landed last.
    (
        "0012_subscriptions",
        include_str!("../../../migrations/0012_subscriptions.sql"),
    ),
    (
        "0013_first_manifest",
        include_str!("../../../migrations/0013_first_manifest.sql"),
    ),
    (
        "0014_unsealed_flag",
        include_str!("../../../migrations/0014_unsealed_flag.sql"),
    ),
    (
        "0015_folded_tail",
        include_str!("../../../migrations/0015_folded_tail.sql"),
    ),
    (
        "0016_append_log",
        include_str!("../../../migrations/0016_append_log.sql"),
    ),
];

/// The schema version a fully migrated database has.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// How long a statement waits for a lock another connection holds (`/v1/server/_details`
/// reports it).
pub const BUSY_TIMEOUT_MS: u64 = 5000;

fn apply_pragmas(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))?;
    // Plans never depend on bound values (the query planner stability guarantee). Without
    // it SQLite marks a statement whose `LIMIT ?` it planned around as expired each time
    // the parameter is bound, so every run of a cached query (the background tasks' polls)
    // would be parsed and planned again.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

/// Opens the read-write connection: WAL mode, `synchronous=FULL`, migrated.
pub fn open_writer(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Truncate the WAL file back to this size after checkpoints, so an idle database
    // does not keep the space of its busiest moment.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    apply_pragmas(&conn)?;
    migrate(&conn)?;
    Ok(conn)
}

/// Opens a read-only connection to a database the writer has already migrated.
pub fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    apply_pragmas(&conn)?;
    Ok(conn)
}

fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let current: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > MIGRATIONS.len() {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISMATCH),
            Some(format!(
                "database schema version {current} is newer than this binary supports ({})",
                MIGRATIONS.len()
            )),
        ));
    }
    for (i, (_name, sql)) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_are_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        let c = open_writer(&path).unwrap();
        let v: usize = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let mode: String = c
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(c);
        // Re-opening does not re-run migrations (they would fail on existing tables).
        open_writer(&path).unwrap();
        open_reader(&path).unwrap();
    }

    /// A database of schema 7 (before live templates) with a template-less stream gets
    /// the table on open, and the stream's rows are untouched.
    #[test]
    fn live_templates_migration_applies_to_an_existing_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        {
            let c = Connection::open(&path).unwrap();
            for (i, (_, sql)) in MIGRATIONS.iter().take(7).enumerate() {
                c.execute_batch(sql).unwrap();
                c.pragma_update(None, "user_version", i + 1).unwrap();
            }
            c.execute(
                "INSERT INTO stream_profiles (stream_id, profile_json, updated_at_ms) \
                 VALUES (5, '{}', 1)",
                [],
            )
            .unwrap();
        }
        let c = open_writer(&path).unwrap();
        let v: usize = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION, "every later migration applied too");
        let kept: i64 = c
            .query_row("SELECT count(*) FROM stream_profiles", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, 1);
        let t = templates::NewTemplate {
            id: 0xddd2330fdab379da,
            entity: "public.todos",
            fields: &["status".into()],
            encodings: &["string".into()],
        };
        templates::insert(&c, 5, &t, 10, 20, 3).unwrap();
        let row = templates::get(&c, 5, t.id).unwrap().unwrap();
        assert_eq!(row.fields, ["status"]);
        assert_eq!(
            (
                row.last_seen_at_ms,
                row.inactivity_ttl_ms,
                row.active_from_pos
            ),
            (10, 20, 3)
        );
        let stored: String = c
            .query_row("SELECT template_id FROM live_templates", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, "ddd2330fdab379da");
    }

    /// The segmenter's flag (migration 0014) is `next_pos > sealed_pos` after the
    /// migration's backfill, a new row, and every statement that writes either position.
    #[test]
    fn the_unsealed_flag_follows_the_tail_and_the_sealed_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        let row = |c: &Connection, name: &str, next: i64, sealed: i64| {
            c.execute(
                "INSERT INTO streams (name, content_type, created_at_ms, last_access_ms, \
                 incarnation, next_pos, sealed_pos) VALUES (?1, 'text/plain', 0, 0, ?1, ?2, ?3)",
                rusqlite::params![name, next, sealed],
            )
            .unwrap();
            c.last_insert_rowid()
        };
        let (behind, level) = {
            let c = Connection::open(&path).unwrap();
            for (i, (_, sql)) in MIGRATIONS.iter().take(13).enumerate() {
                c.execute_batch(sql).unwrap();
                c.pragma_update(None, "user_version", i + 1).unwrap();
            }
            (row(&c, "behind", 7, 3), row(&c, "level", 4, 4))
        };
        let c = open_writer(&path).unwrap();
        let flag = |id: i64| -> (bool, bool) {
            c.query_row(
                "SELECT unsealed = 1, next_pos > sealed_pos FROM streams WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
        };
        assert_eq!(flag(behind), (true, true), "backfilled");
        assert_eq!(flag(level), (false, false), "backfilled");

        let fresh = row(&c, "fresh", 0, 0);
        assert_eq!(flag(fresh), (false, false), "inserted empty");
        let forked = row(&c, "forked", 9, 2);
        assert_eq!(flag(forked), (true, true), "inserted with entries to seal");

        // Appends (folded into the row by compaction), a partial seal, a seal up to the
        // tail, more appends.
        let append = |positions: std::ops::Range<u64>| {
            let mut w = open_writer(&path).unwrap();
            for pos in positions {
                ingest::insert(&w, fresh, pos, b"x", None, 0).unwrap();
            }
            ingest::compact(&mut w, None).unwrap();
        };
        append(0..3);
        assert_eq!(flag(fresh), (true, true), "appended");
        streams::set_sealed(&c, fresh, 2, 10, 0).unwrap();
        assert_eq!(flag(fresh), (true, true), "partly sealed");
        streams::set_sealed(&c, fresh, 3, 10, 0).unwrap();
        assert_eq!(flag(fresh), (false, false), "sealed up to the tail");
        append(3..4);
        assert_eq!(flag(fresh), (true, true), "appended after a seal");
        append(4..5);
        assert_eq!(flag(fresh), (true, true), "appended again");
        streams::set_sealed(&c, fresh, 5, 10, 0).unwrap();
        let mut m = streams::by_id(&c, fresh).unwrap().unwrap();
        m.tail.closed = true;
        streams::update_tail(&c, &m).unwrap();
        assert_eq!(flag(fresh), (false, false), "closed with nothing to seal");
        m.tail.next_pos = 6;
        streams::update_tail(&c, &m).unwrap();
        assert_eq!(flag(fresh), (true, true), "appended and closed");
        let next: i64 = c
            .query_row("SELECT next_pos FROM streams WHERE id = ?1", [fresh], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(next, 6, "every append above was written");
        // Any other statement that moves the sealed position (bootstrap, import).
        c.execute("UPDATE streams SET sealed_pos = next_pos", [])
            .unwrap();
        for id in [behind, level, fresh, forked] {
            assert_eq!(flag(id), (false, false));
        }
        c.execute("UPDATE streams SET sealed_pos = 1 WHERE id = ?1", [forked])
            .unwrap();
        assert_eq!(flag(forked), (true, true), "sealed position moved back");
    }
}
