//! Taking over a database written by the original TypeScript local server
//! (`@prisma/streams-local` 0.1.0–0.1.11, schema versions 11–24, including 0.1.11's
//! half-migrated "24" that lacks the columns of versions 14–24).
//!
//! Runs before the engine opens the database, under the data directory's lock. The
//! original's file is recognised by its `schema_version` and `wal` tables. Its WAL is
//! checkpointed into the main file, then a database of ours is built beside it in a
//! temporary file, in one transaction, streaming the rows (bounded memory however many
//! there are): every stream with its settings, entries (same positions, so the same
//! offset strings), producer state, schema registry, profile and live templates. The
//! original file is then hard-linked to `<db>.ts-v<version>.bak` and the new file renamed
//! over `<db>`, so `<db>` always names one complete database: a crash at any point leaves
//! either the untouched original (and the takeover runs again on the next start) or the
//! finished new database. What is carried over, and what is not, is described in
//! docs/local-dev.md ("Moving from the TypeScript server") and ADR 0010.
//!
//! A file that cannot be read fails with a message containing one of the phrases
//! `@prisma/dev` resets a data directory for (`file is not a database`, `unexpected
//! schema version:`, `no such column:`, …), never a generic error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::db::{self, config, entries, producers, streams};
use super::meta::{Lifecycle, Settings, StreamConfig, StreamMeta, Tail, TierState};
use crate::clock::Clock;
use crate::profiles::{self, Profile};
use crate::protocol::expiry::Expiry;
use crate::schema::Registry;

/// Oldest and newest schema versions of the original this binary takes over.
pub const OLDEST_VERSION: i64 = 11;
pub const NEWEST_VERSION: i64 = 24;

/// The original's internal streams, not carried over: its own telemetry, in formats of
/// its own, which this server neither writes nor reads (it writes its own metrics stream
/// when configured to).
pub const SKIPPED_INTERNAL: [&str; 2] = ["__stream_metrics__", "live.metrics"];

/// `streams.stream_flags` bit of a deleted stream awaiting removal.
const FLAG_DELETED: i64 = 1;

/// What a takeover did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Takeover {
    /// The original's schema version (as stamped; 24 for the half-migrated files).
    pub version: i64,
    /// Where the original file is kept.
    pub backup: PathBuf,
    pub streams: usize,
    pub entries: u64,
    /// Things that could not be carried over (kept in the backup), described.
    pub warnings: Vec<String>,
}

/// Why a takeover failed. The original file is where it was, with its data (its `-wal`
/// may have been checkpointed into it).
#[derive(Debug, thiserror::Error)]
pub enum TakeoverError {
    /// The file cannot be read as a database of the original (or of ours). The message
    /// contains one of `@prisma/dev`'s reset phrases.
    #[error("cannot open {}: {why}", .path.display())]
    Unreadable { path: PathBuf, why: String },
    /// The file is the original's but holds something this binary cannot represent.
    #[error("cannot take over {}: {why} (the original is left in place)", .path.display())]
    Unsupported { path: PathBuf, why: String },
    /// An I/O or SQLite failure while building or swapping the new file.
    #[error("taking over {} failed, the original is left in place: {why}", .path.display())]
    Failed { path: PathBuf, why: String },
}

/// What the file at the database path is.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    /// No file, an empty file, or a database of ours.
    Ours,
    /// The original's, stamped with this version.
    Original(i64),
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The temporary file the new database is built in.
pub fn temp_path(db_path: &Path) -> PathBuf {
    with_suffix(db_path, ".takeover-new")
}

/// True when `a` and `b` name the same file (a hard link left by an interrupted swap).
#[cfg(unix)]
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_a: &Path, _b: &Path) -> bool {
    false
}

/// The backup name for a file of `version`: `<db>.ts-v<version>.bak`, or, if that name
/// holds another file (an earlier takeover's), the first free `<db>.ts-v<version>.<n>.bak`.
/// A name that already is the original (the swap was interrupted after linking it) is
/// used again.
fn backup_path(db_path: &Path, version: i64) -> PathBuf {
    let names = std::iter::once(with_suffix(db_path, &format!(".ts-v{version}.bak")))
        .chain((1..).map(|n| with_suffix(db_path, &format!(".ts-v{version}.{n}.bak"))));
    for name in names {
        if same_file(&name, db_path) || !name.exists() {
            return name;
        }
    }
    with_suffix(db_path, ".ts.bak")
}

/// Takes over the original's database at `db_path` if that is what the file is;
/// `Ok(None)` for no file or a database of ours (nothing to do).
pub fn take_over(db_path: &Path, clock: &dyn Clock) -> Result<Option<Takeover>, TakeoverError> {
    let unreadable = |why: String| TakeoverError::Unreadable {
        path: db_path.to_path_buf(),
        why,
    };
    let failed = |why: String| TakeoverError::Failed {
        path: db_path.to_path_buf(),
        why,
    };
    // A leftover of an interrupted takeover: the original is still in place.
    remove_with_sidecars(&temp_path(db_path)).map_err(|e| failed(e.to_string()))?;
    let version = match classify(db_path).map_err(unreadable)? {
        Kind::Ours => return Ok(None),
        Kind::Original(v) => v,
    };
    checkpoint(db_path).map_err(unreadable)?;
    let temp = temp_path(db_path);
    let built = build(db_path, &temp, version, clock);
    let (streams, entries, warnings) = match built {
        Ok(b) => b,
        Err(e) => {
            let _ = remove_with_sidecars(&temp);
            return Err(e.into_error(db_path));
        }
    };
    let backup = backup_path(db_path, version);
    swap(db_path, &temp, &backup).map_err(failed)?;
    Ok(Some(Takeover {
        version,
        backup,
        streams,
        entries,
        warnings,
    }))
}

/// A failure while building, before anything was swapped.
enum BuildError {
    /// The original's content is not what a readable file of its versions holds.
    Unreadable(String),
    Unsupported(String),
    Failed(String),
}

impl BuildError {
    fn into_error(self, path: &Path) -> TakeoverError {
        let path = path.to_path_buf();
        match self {
            BuildError::Unreadable(why) => TakeoverError::Unreadable { path, why },
            BuildError::Unsupported(why) => TakeoverError::Unsupported { path, why },
            BuildError::Failed(why) => TakeoverError::Failed { path, why },
        }
    }
}

/// Reading the original: SQLite's own messages (`file is not a database`, `database disk
/// image is malformed`, `no such column: …`) are what `@prisma/dev` looks for.
fn read_err(e: rusqlite::Error) -> BuildError {
    BuildError::Unreadable(e.to_string())
}

fn write_err(e: rusqlite::Error) -> BuildError {
    BuildError::Failed(e.to_string())
}

fn open_original(db_path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        db_path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_millis(db::BUSY_TIMEOUT_MS))?;
    Ok(conn)
}

fn table_exists(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

fn columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
    let names = stmt.query_map([], |r| r.get::<_, String>(1))?;
    names.collect()
}

/// Tells the original's file from ours; an unreadable file is an error with SQLite's
/// message or `unexpected schema version: …`.
fn classify(db_path: &Path) -> Result<Kind, String> {
    match std::fs::metadata(db_path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Kind::Ours),
        Err(e) => return Err(e.to_string()),
        Ok(m) if m.len() == 0 => return Ok(Kind::Ours),
        Ok(_) => {}
    }
    let conn = open_original(db_path).map_err(|e| e.to_string())?;
    // The first read of the schema is what reports a file that is not SQLite.
    let objects: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    let user_version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| e.to_string())?;
    let has = |t: &str| table_exists(&conn, t).map_err(|e| e.to_string());
    if !has("schema_version")? {
        if user_version > 0 || objects == 0 {
            return Ok(Kind::Ours);
        }
        return Err(format!(
            "unexpected schema version: none (expected {OLDEST_VERSION}..{NEWEST_VERSION}, or a database of prisma-streams); the file has tables but neither the TypeScript server's schema_version nor ours"
        ));
    }
    let version: Option<i64> = conn
        .query_row("SELECT version FROM schema_version LIMIT 1", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| e.to_string())?;
    let Some(version) = version else {
        return Err(format!(
            "unexpected schema version: missing (expected {OLDEST_VERSION}..{NEWEST_VERSION}): the schema_version table is empty"
        ));
    };
    if !(OLDEST_VERSION..=NEWEST_VERSION).contains(&version) {
        return Err(format!(
            "unexpected schema version: {version} (expected {OLDEST_VERSION}..{NEWEST_VERSION})"
        ));
    }
    for table in ["streams", "wal"] {
        if !has(table)? {
            return Err(format!("no such table: {table}"));
        }
    }
    Ok(Kind::Original(version))
}

/// Moves the content of the original's `-wal` into the main file and removes the
/// companions, so that the main file alone is the whole database (and no stale `-wal`
/// lies beside the file that replaces it).
fn checkpoint(db_path: &Path) -> Result<(), String> {
    {
        let conn = Connection::open(db_path).map_err(|e| e.to_string())?;
        conn.busy_timeout(std::time::Duration::from_millis(db::BUSY_TIMEOUT_MS))
            .map_err(|e| e.to_string())?;
        let (busy, _log, _done): (i64, i64, i64) = conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(|e| e.to_string())?;
        if busy != 0 {
            return Err("the database is busy: another process has it open".into());
        }
        // Leaving WAL mode makes the file self-contained (the original sets WAL again
        // when it opens the backup).
        conn.pragma_update(None, "journal_mode", "DELETE")
            .map_err(|e| e.to_string())?;
    }
    for side in ["-wal", "-shm"] {
        let p = with_suffix(db_path, side);
        match std::fs::metadata(&p) {
            Ok(m) if m.len() > 0 && side == "-wal" => {
                return Err(format!(
                    "{} still holds data after a checkpoint",
                    p.display()
                ));
            }
            Ok(_) => std::fs::remove_file(&p).map_err(|e| e.to_string())?,
            Err(_) => {}
        }
    }
    Ok(())
}

/// One stream row of the original, with its columns' defaults where the file lacks them.
struct OrigStream {
    name: String,
    created_at_ms: i64,
    updated_at_ms: i64,
    content_type: String,
    profile: Option<String>,
    stream_seq: Option<String>,
    closed: bool,
    closed_by: Option<(String, u64, u64)>,
    ttl_seconds: Option<i64>,
    expires_at_ms: Option<i64>,
    epoch: i64,
    next_offset: i64,
}

fn col_or(cols: &[String], name: &str, default: &str) -> String {
    if cols.iter().any(|c| c == name) {
        name.to_owned()
    } else {
        format!("{default} AS {name}")
    }
}

fn read_streams(orig: &Connection) -> Result<Vec<OrigStream>, BuildError> {
    let cols = columns(orig, "streams").map_err(read_err)?;
    for need in [
        "stream",
        "created_at_ms",
        "content_type",
        "epoch",
        "next_offset",
    ] {
        if !cols.iter().any(|c| c == need) {
            return Err(BuildError::Unreadable(format!(
                "no such column: streams.{need}"
            )));
        }
    }
    let sql = format!(
        "SELECT stream, created_at_ms, {}, content_type, {}, {}, {}, {}, {}, {}, {}, {}, epoch, \
         next_offset, {} FROM streams ORDER BY rowid",
        col_or(&cols, "updated_at_ms", "created_at_ms"),
        col_or(&cols, "profile", "NULL"),
        col_or(&cols, "stream_seq", "NULL"),
        col_or(&cols, "closed", "0"),
        col_or(&cols, "closed_producer_id", "NULL"),
        col_or(&cols, "closed_producer_epoch", "NULL"),
        col_or(&cols, "closed_producer_seq", "NULL"),
        col_or(&cols, "ttl_seconds", "NULL"),
        col_or(&cols, "expires_at_ms", "NULL"),
        col_or(&cols, "stream_flags", "0"),
    );
    let mut stmt = orig.prepare(&sql).map_err(read_err)?;
    let rows = stmt
        .query_map([], |r| {
            let flags: i64 = r.get(14)?;
            let pid: Option<String> = r.get(7)?;
            let pep: Option<i64> = r.get(8)?;
            let pseq: Option<i64> = r.get(9)?;
            Ok((
                flags,
                OrigStream {
                    name: r.get(0)?,
                    created_at_ms: r.get(1)?,
                    updated_at_ms: r.get(2)?,
                    content_type: r.get(3)?,
                    profile: r.get(4)?,
                    stream_seq: r.get(5)?,
                    closed: r.get::<_, i64>(6)? != 0,
                    closed_by: match (pid, pep, pseq) {
                        (Some(p), Some(e), Some(s)) => Some((p, e.max(0) as u64, s.max(0) as u64)),
                        _ => None,
                    },
                    ttl_seconds: r.get(10)?,
                    expires_at_ms: r.get(11)?,
                    epoch: r.get(12)?,
                    next_offset: r.get(13)?,
                },
            ))
        })
        .map_err(read_err)?;
    let mut out = Vec::new();
    for row in rows {
        let (flags, s) = row.map_err(read_err)?;
        if flags & FLAG_DELETED != 0 || SKIPPED_INTERNAL.contains(&s.name.as_str()) {
            continue;
        }
        out.push(s);
    }
    Ok(out)
}

/// Text of a per-stream table (`schemas`, `stream_profiles`), if the file has it.
fn texts(
    orig: &Connection,
    table: &str,
    column: &str,
) -> Result<HashMap<String, String>, BuildError> {
    if !table_exists(orig, table).map_err(read_err)? {
        return Ok(HashMap::new());
    }
    let mut stmt = orig
        .prepare(&format!("SELECT stream, {column} FROM {table}"))
        .map_err(read_err)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(read_err)?;
    rows.collect::<rusqlite::Result<_>>().map_err(read_err)
}

/// The stream's profile and registry as this server stores them, from the original's
/// `stream_profiles` row, `streams.profile` and registry (whose legacy `interpreter`
/// becomes a state-protocol profile). Problems become warnings; the stream is kept.
fn settings_of(
    s: &OrigStream,
    stored_profile: Option<&String>,
    registry: Option<&String>,
    warnings: &mut Vec<String>,
) -> (Profile, Option<String>) {
    let kind = s.profile.as_deref().filter(|k| !k.is_empty());
    let mut profile = match Profile::load(kind, stored_profile.map(String::as_str)) {
        Ok(p) => p,
        Err(e) => {
            warnings.push(format!(
                "stream {:?}: profile not carried over ({e})",
                s.name
            ));
            Profile::Generic
        }
    };
    let Some(text) = registry else {
        return (profile, None);
    };
    match Registry::parse_legacy(text.as_bytes()) {
        Ok((reg, interpreter)) => {
            if let Some(i) = interpreter.filter(|_| matches!(profile, Profile::Generic)) {
                match profiles::from_legacy_interpreter(&i) {
                    Ok(Some(p)) => profile = p,
                    Ok(None) => {}
                    Err(e) => warnings.push(format!(
                        "stream {:?}: legacy touch configuration not carried over ({e})",
                        s.name
                    )),
                }
            }
            // Carried over only if this server can use it as it will read it back: the
            // strict parse and the current schema's compilation of the request path (the
            // original accepted some registries that cannot be evaluated, e.g. a schema
            // that is `[]`; those would make every request on the stream fail).
            let json = String::from_utf8(reg.to_json()).ok();
            let usable = json.as_deref().map_or(Err("not UTF-8".to_string()), |j| {
                let strict = Registry::parse(j.as_bytes())?;
                match strict.current_schema() {
                    Some(schema) => crate::schema::CompiledSchema::compile(schema).map(|_| ()),
                    None => Ok(()),
                }
            });
            match usable {
                Ok(()) => (profile, json),
                Err(e) => {
                    warnings.push(format!(
                        "stream {:?}: schema registry not carried over ({e}); it stays in the backup",
                        s.name
                    ));
                    (profile, None)
                }
            }
        }
        Err(e) => {
            warnings.push(format!(
                "stream {:?}: schema registry not carried over ({e})",
                s.name
            ));
            (profile, None)
        }
    }
}

fn token(clock: &dyn Clock) -> String {
    format!(
        "{:016x}{:016x}",
        clock.random_in(0, u64::MAX),
        clock.random_in(0, u64::MAX)
    )
}

/// Builds our database at `temp` from the original at `db_path`.
fn build(
    db_path: &Path,
    temp: &Path,
    version: i64,
    clock: &dyn Clock,
) -> Result<(usize, u64, Vec<String>), BuildError> {
    let orig = open_original(db_path).map_err(read_err)?;
    let list = read_streams(&orig)?;
    if let Some(s) = list.iter().find(|s| s.epoch != 0) {
        return Err(BuildError::Unsupported(format!(
            "stream {:?} has epoch {}; offsets of epochs other than 0 cannot be kept",
            s.name, s.epoch
        )));
    }
    let profiles_text = texts(&orig, "stream_profiles", "profile_json")?;
    let registries = texts(&orig, "schemas", "schema_json")?;
    let now = clock.now_ms();
    let mut warnings = Vec::new();
    if version < NEWEST_VERSION {
        tracing::info!(
            version,
            "taking over a database of an older TypeScript server"
        );
    }

    let new = db::open_writer(temp).map_err(write_err)?;
    // A rollback journal: the new file's pages are not journaled, so a large copy does not
    // pass through a -wal file first.
    new.pragma_update(None, "journal_mode", "DELETE")
        .map_err(write_err)?;
    let tx = new.unchecked_transaction().map_err(write_err)?;
    let mut ids: HashMap<String, i64> = HashMap::new();
    let mut total_entries = 0u64;
    for s in &list {
        let (profile, registry) = settings_of(
            s,
            profiles_text.get(&s.name),
            registries.get(&s.name),
            &mut warnings,
        );
        // The original's TTL is a deadline fixed at creation (`expires_at_ms`, with
        // `ttl_seconds` kept for the header); ours slides from the last access, which is
        // set so that the first deadline is the original's.
        let (expiry, last_access_ms) = match (s.ttl_seconds, s.expires_at_ms) {
            (Some(t), Some(at)) if t > 0 => (Expiry::Ttl(t as u64), at - t * 1000),
            (Some(t), None) if t > 0 => (Expiry::Ttl(t as u64), s.updated_at_ms),
            (_, Some(at)) => (Expiry::At(at), s.updated_at_ms),
            _ => (Expiry::None, s.updated_at_ms),
        };
        let next_pos = s.next_offset.max(0) as u64;
        let meta = StreamMeta {
            id: 0,
            name: Some(s.name.clone()),
            config: StreamConfig {
                content_type: s.content_type.clone(),
                created_at_ms: s.created_at_ms,
                expiry,
                fork: None,
                incarnation: token(clock),
                local_only: false,
            },
            tail: Tail {
                next_pos,
                closed: s.closed,
                closed_by: s.closed_by.clone(),
                stream_seq: s.stream_seq.as_ref().map(|q| q.as_bytes().to_vec()),
                last_access_ms,
                total_bytes: 0,
            },
            tier: TierState {
                sealed_pos: 0,
                uploaded_pos: 0,
                pending_bytes: 0,
                last_cut_ms: now,
                manifest_generation: 0,
                manifest_etag: None,
                manifest_dirty: false,
                trimmed_pos: 0,
            },
            life: Lifecycle::default(),
            keys_complete: true,
            settings: Settings::default(),
        };
        let id = streams::insert(&tx, &meta).map_err(write_err)?;
        ids.insert(s.name.clone(), id);

        let copied = copy_entries(&orig, &tx, &s.name, id, next_pos)?;
        total_entries += copied.count;
        tx.execute(
            "UPDATE streams SET pending_bytes = ?2, total_bytes = ?2, sealed_pos = ?3, \
             uploaded_pos = ?3, trimmed_pos = ?3 WHERE id = ?1",
            params![id, copied.bytes as i64, copied.first as i64],
        )
        .map_err(write_err)?;

        let kind = match &profile {
            Profile::Generic => None,
            p => Some(p.kind()),
        };
        let stored = profile
            .uses_stored_row()
            .then(|| profile.to_json().to_string());
        if kind.is_some() || registry.is_some() {
            config::set_profile(&tx, id, stored.as_deref(), now).map_err(write_err)?;
            if let Some(r) = &registry {
                config::set_registry(&tx, id, r, now).map_err(write_err)?;
            }
            tx.execute(
                "UPDATE streams SET profile = ?2, config_gen = 1 WHERE id = ?1",
                params![id, kind],
            )
            .map_err(write_err)?;
        }
    }
    copy_producers(&orig, &tx, &ids)?;
    copy_templates(&orig, &tx, &ids)?;
    tx.commit().map_err(write_err)?;
    seal(new, temp).map_err(BuildError::Failed)?;
    Ok((list.len(), total_entries, warnings))
}

struct Copied {
    count: u64,
    bytes: u64,
    /// Offset of the first entry the original still holds (0 unless it trimmed some).
    first: u64,
}

/// Copies one stream's `wal` rows in offset order (a cursor: bounded memory). Offsets
/// must run without gaps up to the stream's `next_offset`.
fn copy_entries(
    orig: &Connection,
    tx: &Connection,
    stream: &str,
    id: i64,
    next_pos: u64,
) -> Result<Copied, BuildError> {
    let mut stmt = orig
        .prepare_cached(
            "SELECT offset, payload, routing_key, ts_ms FROM wal WHERE stream = ?1 ORDER BY offset",
        )
        .map_err(read_err)?;
    let mut rows = stmt.query([stream]).map_err(read_err)?;
    let mut out = Copied {
        count: 0,
        bytes: 0,
        first: next_pos,
    };
    let mut expect: Option<u64> = None;
    while let Some(r) = rows.next().map_err(read_err)? {
        let offset: i64 = r.get(0).map_err(read_err)?;
        let data: Vec<u8> = r.get(1).map_err(read_err)?;
        let key: Option<Vec<u8>> = r.get(2).map_err(read_err)?;
        let ts_ms: i64 = r.get(3).map_err(read_err)?;
        let pos = u64::try_from(offset).map_err(|_| {
            BuildError::Unsupported(format!("stream {stream:?} has an entry at offset {offset}"))
        })?;
        match expect {
            None => out.first = pos,
            Some(e) if e != pos => {
                return Err(BuildError::Unsupported(format!(
                    "stream {stream:?} lacks the entries at offsets {e}..{pos}"
                )))
            }
            Some(_) => {}
        }
        if pos >= next_pos {
            return Err(BuildError::Unsupported(format!(
                "stream {stream:?} has an entry at offset {pos}, past its tail {next_pos}"
            )));
        }
        entries::insert(tx, id, pos, &data, key.as_deref(), ts_ms).map_err(write_err)?;
        out.count += 1;
        out.bytes += data.len() as u64;
        expect = Some(pos + 1);
    }
    if let Some(e) = expect.filter(|e| *e != next_pos) {
        return Err(BuildError::Unsupported(format!(
            "stream {stream:?} lacks the entries at offsets {e}..{next_pos}"
        )));
    }
    if expect.is_none() && next_pos > 0 {
        // Every entry was trimmed: the stream continues at its tail.
        out.first = next_pos;
    }
    Ok(out)
}

fn copy_producers(
    orig: &Connection,
    tx: &Connection,
    ids: &HashMap<String, i64>,
) -> Result<(), BuildError> {
    if !table_exists(orig, "producer_state").map_err(read_err)? {
        return Ok(());
    }
    let mut stmt = orig
        .prepare("SELECT stream, producer_id, epoch, last_seq, updated_at_ms FROM producer_state")
        .map_err(read_err)?;
    let mut rows = stmt.query([]).map_err(read_err)?;
    while let Some(r) = rows.next().map_err(read_err)? {
        let stream: String = r.get(0).map_err(read_err)?;
        let Some(&id) = ids.get(&stream) else {
            continue;
        };
        let producer: String = r.get(1).map_err(read_err)?;
        let epoch: i64 = r.get(2).map_err(read_err)?;
        let seq: i64 = r.get(3).map_err(read_err)?;
        let at: i64 = r.get(4).map_err(read_err)?;
        producers::put(
            tx,
            id,
            &producer,
            epoch.max(0) as u64,
            seq.max(0) as u64,
            at,
        )
        .map_err(write_err)?;
    }
    Ok(())
}

fn copy_templates(
    orig: &Connection,
    tx: &Connection,
    ids: &HashMap<String, i64>,
) -> Result<(), BuildError> {
    if !table_exists(orig, "live_templates").map_err(read_err)? {
        return Ok(());
    }
    let mut stmt = orig
        .prepare(
            "SELECT stream, template_id, entity, fields_json, encodings_json, state, \
             created_at_ms, last_seen_at_ms, inactivity_ttl_ms, active_from_source_offset, \
             retired_at_ms, retired_reason FROM live_templates",
        )
        .map_err(read_err)?;
    let mut rows = stmt.query([]).map_err(read_err)?;
    while let Some(r) = rows.next().map_err(read_err)? {
        let stream: String = r.get(0).map_err(read_err)?;
        let Some(&id) = ids.get(&stream) else {
            continue;
        };
        let vals: Vec<rusqlite::types::Value> = (1..12)
            .map(|i| r.get(i))
            .collect::<rusqlite::Result<_>>()
            .map_err(read_err)?;
        tx.execute(
            "INSERT INTO live_templates (stream_id, template_id, entity, fields_json, \
             encodings_json, state, created_at_ms, last_seen_at_ms, inactivity_ttl_ms, \
             active_from_pos, retired_at_ms, retired_reason) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            rusqlite::params_from_iter(
                std::iter::once(rusqlite::types::Value::Integer(id)).chain(vals),
            ),
        )
        .map_err(write_err)?;
    }
    Ok(())
}

/// Makes the new file self-contained and durable before it is renamed into place.
fn seal(conn: Connection, path: &Path) -> Result<(), String> {
    conn.pragma_update(None, "journal_mode", "DELETE")
        .map_err(|e| e.to_string())?;
    drop(conn);
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("cannot flush {}: {e}", path.display()))
}

/// Keeps the original under `backup` (a hard link, so it never stops existing) and
/// renames the new file over the database path.
fn swap(db_path: &Path, temp: &Path, backup: &Path) -> Result<(), String> {
    if !same_file(db_path, backup) {
        std::fs::hard_link(db_path, backup)
            .or_else(|_| std::fs::copy(db_path, backup).map(|_| ()))
            .map_err(|e| format!("cannot keep the original as {}: {e}", backup.display()))?;
    }
    sync_dir(db_path);
    std::fs::rename(temp, db_path).map_err(|e| {
        format!(
            "cannot move {} to {}: {e}",
            temp.display(),
            db_path.display()
        )
    })?;
    sync_dir(db_path);
    Ok(())
}

fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

fn remove_with_sidecars(path: &Path) -> std::io::Result<()> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        match std::fs::remove_file(with_suffix(path, suffix)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "import_ts_tests.rs"]
mod tests;
