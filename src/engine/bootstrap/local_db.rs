//! The node's existing database during a bootstrap: whether it holds anything the object
//! store lacks, and replacing it with the rebuilt one so that no step can lose it.
//!
//! The rebuilt database is written to a temporary file beside the real one. The swap
//! checkpoints the old database into a single file, hard-links it to the backup name,
//! renames the new file over it (so the path always names a complete database), then moves
//! the old local segment folder aside.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::super::db;

/// The companion files of a database, besides the database itself: SQLite's and the
/// append log (`engine::applog`).
const SIDECARS: [&str; 4] = ["-wal", "-shm", "-journal", "-applog"];

/// What the database at the node's path holds.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum OldDb {
    /// No database file.
    Absent,
    /// Everything in it is in the object store (producer state aside).
    Uploaded,
    /// Data the object store lacks, described.
    Pending(String),
    /// It could not be read; why.
    Unreadable(String),
}

/// `path` with `suffix` appended to its file name.
pub(super) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Where the old database is kept after a bootstrap replaced it.
pub(super) fn backup_path(db_path: &Path) -> PathBuf {
    with_suffix(db_path, ".pre-bootstrap")
}

/// Where the rebuilt database is written before the swap.
pub(super) fn temp_path(db_path: &Path) -> PathBuf {
    with_suffix(db_path, ".bootstrap-new")
}

/// Reads the existing database without changing it.
pub(super) fn inspect(db_path: &Path) -> OldDb {
    if !db_path.exists() {
        return OldDb::Absent;
    }
    match pending(db_path) {
        Ok(None) => OldDb::Uploaded,
        Ok(Some(what)) => OldDb::Pending(what),
        Err(e) => OldDb::Unreadable(e),
    }
}

fn count(conn: &Connection, sql: &str) -> rusqlite::Result<i64> {
    conn.query_row(sql, [], |r| r.get(0))
}

/// A description of what is not in the object store yet, if anything. Databases of
/// every schema version this binary knows are read as they are (no migration).
fn pending(db_path: &Path) -> Result<Option<String>, String> {
    let conn = Connection::open_with_flags(db_path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| e.to_string())?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    let version: usize = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if version > db::SCHEMA_VERSION {
        return Err(format!(
            "schema version {version} is newer than this binary knows ({})",
            db::SCHEMA_VERSION
        ));
    }
    if version == 0 {
        let objects =
            count(&conn, "SELECT count(*) FROM sqlite_master").map_err(|e| e.to_string())?;
        return match objects {
            0 => Ok(None),
            _ => Err("it has tables but no schema version".into()),
        };
    }
    // Before tiering (version 2) nothing was uploaded; before retention (3) no stream
    // was local-only; before the ingest log (4) there was none.
    let uploaded = if version >= 2 {
        "uploaded_pos"
    } else {
        "fork_pos"
    };
    let shared = if version >= 3 { "local_only = 0" } else { "1" };
    let run = |sql: String| count(&conn, &sql).map_err(|e| e.to_string());
    // A stream's row counts its entries up to the last compaction; the rest are in the
    // ingest log (see `engine::memtable`).
    let logged = if version >= 4 {
        "OR id IN (SELECT stream_id FROM ingest)"
    } else {
        ""
    };
    let behind = run(format!(
        "SELECT count(*) FROM streams WHERE {shared} AND (next_pos > {uploaded} {logged})"
    ))?;
    let (unpublished, removals) = if version >= 2 {
        (
            run(format!(
                "SELECT count(*) FROM streams WHERE {shared} AND manifest_dirty = 1 \
                 AND next_pos <= uploaded_pos"
            ))?,
            run("SELECT count(*) FROM object_gc".into())?,
        )
    } else {
        (0, 0)
    };
    let ingest = if version >= 4 {
        run("SELECT count(*) FROM ingest".into())?
    } else {
        0
    };
    // Since the append log (version 15, migration 0016: there is no 0009), the batches of
    // plain appends since the last compaction are in the log file, under the salt the
    // database records.
    let in_log = if version >= 15 {
        let salt: Option<i64> = conn
            .query_row("SELECT salt FROM applog WHERE id = 1", [], |r| r.get(0))
            .optional()
            .map_err(|e| e.to_string())?;
        match salt {
            Some(salt) => super::super::applog::read(db_path, salt as u64)
                .map_err(|e| format!("cannot read the append log: {e}"))?
                .runs
                .iter()
                .map(|r| r.2.len() as i64)
                .sum(),
            None => 0,
        }
    } else {
        0
    };
    let parts: Vec<String> = [
        (behind, "streams with entries not uploaded"),
        (ingest, "entries in the ingest log"),
        (in_log, "entries in the append log"),
        (
            unpublished,
            "streams whose last change (create, close, delete) is not published",
        ),
        (
            removals,
            "stream removals not yet applied to the object store",
        ),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    Ok((!parts.is_empty()).then(|| parts.join(", ")))
}

/// Gets a freshly built database ready to be renamed into place: a single file (rollback
/// journal mode, so no `-wal` travels with it), flushed to disk.
pub(super) fn seal_new(conn: Connection, path: &Path) -> Result<(), String> {
    conn.pragma_update(None, "journal_mode", "DELETE")
        .map_err(|e| e.to_string())?;
    drop(conn);
    sync_file(path).map_err(|e| format!("cannot flush {}: {e}", path.display()))
}

/// Removes a file and its SQLite companions; missing ones are fine.
pub(super) fn remove_with_sidecars(path: &Path) -> std::io::Result<()> {
    remove_if_present(path)?;
    remove_sidecars(path)
}

/// Removes a database's companion files; missing ones are fine.
fn remove_sidecars(path: &Path) -> std::io::Result<()> {
    for s in SIDECARS {
        remove_if_present(&with_suffix(path, s))?;
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn sync_file(path: &Path) -> std::io::Result<()> {
    File::open(path)?.sync_all()
}

/// Flushes a directory's entries (renames) to disk; not possible everywhere, so best effort.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Folds the old database's WAL into its main file and switches it to a rollback
/// journal, so the file alone is the whole database.
fn checkpoint(db_path: &Path) -> rusqlite::Result<()> {
    let conn = Connection::open(db_path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    conn.pragma_update(None, "journal_mode", "DELETE")?;
    Ok(())
}

/// What the swap did with the old state.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Swapped {
    /// The old database, now under this name.
    pub backup: Option<PathBuf>,
    /// The old local segment folder, now under this name.
    pub segments_backup: Option<PathBuf>,
}

/// Puts the database built at `new_db` in place of `db_path`, keeping the old one (if
/// any) as [`backup_path`] and its segment folder `root/segments` as
/// `root/segments.pre-bootstrap` (each replacing an older backup).
pub(super) fn swap(db_path: &Path, new_db: &Path, root: &Path) -> Result<Swapped, String> {
    let ctx = |what: &str, p: &Path| {
        let p = p.display().to_string();
        let what = what.to_string();
        move |e: std::io::Error| format!("{what} {p}: {e}")
    };
    let mut out = Swapped::default();
    let had_old = db_path.exists();
    if had_old {
        if let Err(e) = checkpoint(db_path) {
            // Its -wal (if any) moves along with it below, so nothing is lost either way.
            tracing::warn!(db = %db_path.display(), error = %e, "cannot checkpoint the old database");
        }
        let backup = backup_path(db_path);
        remove_with_sidecars(&backup).map_err(ctx("cannot remove the older backup", &backup))?;
        if std::fs::hard_link(db_path, &backup).is_err() {
            std::fs::copy(db_path, &backup)
                .map_err(ctx("cannot copy the old database to", &backup))?;
            sync_file(&backup).map_err(ctx("cannot flush", &backup))?;
        }
        for s in ["-wal", "-journal", "-applog"] {
            let from = with_suffix(db_path, s);
            if from.exists() {
                let to = with_suffix(&backup, s);
                std::fs::rename(&from, &to).map_err(ctx("cannot move aside", &from))?;
            }
        }
        out.backup = Some(backup);
    }
    // A companion file left without its database would be applied to the new one.
    remove_sidecars(db_path).map_err(ctx("cannot remove the companion files of", db_path))?;
    std::fs::rename(new_db, db_path).map_err(ctx("cannot rename the new database to", db_path))?;
    if let Some(dir) = db_path.parent() {
        sync_dir(dir);
    }

    let segments = root.join("segments");
    if segments.exists() {
        if had_old {
            let aside = root.join("segments.pre-bootstrap");
            match std::fs::remove_dir_all(&aside) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(ctx("cannot remove the older backup", &aside)(e))
                }
                _ => {}
            }
            std::fs::rename(&segments, &aside).map_err(ctx("cannot move aside", &segments))?;
            out.segments_backup = Some(aside);
        } else {
            // Without a database nothing refers to these files.
            std::fs::remove_dir_all(&segments).map_err(ctx("cannot remove", &segments))?;
        }
        sync_dir(root);
    }
    Ok(out)
}
