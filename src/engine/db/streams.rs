//! The `streams` table: one row per stream incarnation.
//!
//! Rows are read by column *name*: [`COLUMNS`] lists what is selected, and [`col`] finds
//! a column's index at compile time, so reordering the list cannot misread a field.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::engine::meta::{
    ForkInfo, Lifecycle, Settings, StreamConfig, StreamMeta, Tail, TierState,
};
use crate::protocol::expiry::Expiry;

/// Declares the selected columns once: [`COLUMNS`] (for [`col`]) and [`SELECT`] (for SQL).
macro_rules! columns {
    ($first:literal $(, $rest:literal)* $(,)?) => {
        const COLUMNS: &[&str] = &[$first $(, $rest)*];
        const SELECT: &str = concat!($first $(, ", ", $rest)*);
    };
}

columns!(
    "id",
    "name",
    "content_type",
    "created_at_ms",
    "ttl_seconds",
    "expires_at_ms",
    "last_access_ms",
    "next_pos",
    "closed",
    "closed_producer_id",
    "closed_producer_epoch",
    "closed_producer_seq",
    "stream_seq",
    "fork_source_id",
    "fork_pos",
    "fork_sub_offset",
    "ref_count",
    "deleted",
    "incarnation",
    "sealed_pos",
    "uploaded_pos",
    "pending_bytes",
    "last_cut_ms",
    "manifest_generation",
    "manifest_etag",
    "manifest_dirty",
    "local_only",
    "trimmed_pos",
    "keys_complete",
    "total_bytes",
    "profile",
    "config_gen",
);

/// Index of `name` in [`COLUMNS`]; a name that is not there fails the build.
const fn col(name: &str) -> usize {
    let name = name.as_bytes();
    let mut i = 0;
    while i < COLUMNS.len() {
        let c = COLUMNS[i].as_bytes();
        if c.len() == name.len() {
            let mut j = 0;
            while j < c.len() && c[j] == name[j] {
                j += 1;
            }
            if j == c.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("not a selected column of streams")
}

/// A column of the current row by name (resolved at compile time).
macro_rules! get {
    ($row:expr, $name:literal) => {{
        const I: usize = col($name);
        $row.get(I)
    }};
}

fn u(v: i64) -> u64 {
    v.max(0) as u64
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<StreamMeta> {
    let expiry = match (get!(r, "ttl_seconds")?, get!(r, "expires_at_ms")?) {
        (Some(t), _) => Expiry::Ttl(u(t)),
        (None, Some(a)) => Expiry::At(a),
        (None, None) => Expiry::None,
    };
    let closed_by = match (
        get!(r, "closed_producer_id")?,
        get!(r, "closed_producer_epoch")?,
        get!(r, "closed_producer_seq")?,
    ) {
        (Some(id), Some(e), Some(s)) => Some((id, u(e), u(s))),
        _ => None,
    };
    let fork = match get!(r, "fork_source_id")? {
        Some(source_id) => Some(ForkInfo {
            source_id,
            pos: u(get!(r, "fork_pos")?),
            sub_offset: u(get!(r, "fork_sub_offset")?),
        }),
        None => None,
    };
    Ok(StreamMeta {
        id: get!(r, "id")?,
        name: get!(r, "name")?,
        config: StreamConfig {
            content_type: get!(r, "content_type")?,
            created_at_ms: get!(r, "created_at_ms")?,
            expiry,
            fork,
            incarnation: get!(r, "incarnation").map(|i: Option<String>| i.unwrap_or_default())?,
            local_only: get!(r, "local_only").map(|v: i64| v != 0)?,
        },
        tail: Tail {
            next_pos: u(get!(r, "next_pos")?),
            closed: get!(r, "closed").map(|v: i64| v != 0)?,
            closed_by,
            stream_seq: get!(r, "stream_seq")?,
            last_access_ms: get!(r, "last_access_ms")?,
            total_bytes: u(get!(r, "total_bytes")?),
        },
        tier: TierState {
            sealed_pos: u(get!(r, "sealed_pos")?),
            uploaded_pos: u(get!(r, "uploaded_pos")?),
            pending_bytes: u(get!(r, "pending_bytes")?),
            last_cut_ms: get!(r, "last_cut_ms")?,
            manifest_generation: u(get!(r, "manifest_generation")?),
            manifest_etag: get!(r, "manifest_etag")?,
            manifest_dirty: get!(r, "manifest_dirty").map(|v: i64| v != 0)?,
            trimmed_pos: u(get!(r, "trimmed_pos")?),
        },
        life: Lifecycle {
            ref_count: get!(r, "ref_count")?,
            deleted: get!(r, "deleted").map(|v: i64| v != 0)?,
        },
        keys_complete: get!(r, "keys_complete").map(|v: i64| v != 0)?,
        settings: Settings {
            profile: get!(r, "profile")?,
            config_gen: u(get!(r, "config_gen")?),
        },
    })
}

pub fn by_name(conn: &Connection, name: &str) -> rusqlite::Result<Option<StreamMeta>> {
    // Built once: every append looks its stream up here.
    static SQL: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| format!("SELECT {SELECT} FROM streams WHERE name = ?1"));
    conn.prepare_cached(&SQL)?
        .query_row([name], from_row)
        .optional()
}

pub fn by_id(conn: &Connection, id: i64) -> rusqlite::Result<Option<StreamMeta>> {
    conn.prepare_cached(&format!("SELECT {SELECT} FROM streams WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()
}

/// The rows a `SELECT {SELECT} FROM streams …` query returns, through the statement cache.
fn metas(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<Vec<StreamMeta>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params, from_row)?;
    rows.collect()
}

/// Live streams (named, not soft-deleted, not expired at `now_ms`) in name order.
pub fn list(
    conn: &Connection,
    now_ms: i64,
    offset: usize,
    limit: usize,
) -> rusqlite::Result<Vec<StreamMeta>> {
    let sql = format!(
        "SELECT {SELECT} FROM streams WHERE name IS NOT NULL AND deleted = 0 \
         AND (ttl_seconds IS NULL OR last_access_ms + ttl_seconds * 1000 > ?1) \
         AND (expires_at_ms IS NULL OR expires_at_ms > ?1) \
         ORDER BY name LIMIT ?2 OFFSET ?3"
    );
    metas(conn, &sql, params![now_ms, limit as i64, offset as i64])
}

/// The sweeper's candidates: named streams whose expiry deadline is at or before `now_ms`
/// (expired, see [`Expiry::is_expired`]), soonest first. Walks the `streams_deadline`
/// index from its start, so it reads only expired rows however many streams have an
/// expiry.
pub fn expired(conn: &Connection, now_ms: i64, limit: usize) -> rusqlite::Result<Vec<StreamMeta>> {
    metas(conn, &expired_sql(), params![now_ms, limit as i64])
}

/// The deadline expression of the `streams_deadline` index (migration 0005); a query
/// must repeat it exactly for SQLite to use the index.
const DEADLINE: &str = "coalesce(expires_at_ms, last_access_ms + ttl_seconds * 1000)";

pub(super) fn expired_sql() -> String {
    // The first three terms are the index's WHERE, word for word.
    format!(
        "SELECT {SELECT} FROM streams WHERE name IS NOT NULL AND deleted = 0 \
         AND (ttl_seconds IS NOT NULL OR expires_at_ms IS NOT NULL) \
         AND {DEADLINE} <= ?1 ORDER BY {DEADLINE} LIMIT ?2"
    )
}

/// Inserts a new incarnation and returns its id.
pub fn insert(conn: &Connection, m: &StreamMeta) -> rusqlite::Result<i64> {
    let (ttl, at) = match m.config.expiry {
        Expiry::None => (None, None),
        Expiry::Ttl(t) => (Some(t as i64), None),
        Expiry::At(a) => (None, Some(a)),
    };
    let fork = m.config.fork.as_ref();
    let closer = m.tail.closed_by.as_ref();
    conn.prepare_cached(
        "INSERT INTO streams (name, content_type, created_at_ms, ttl_seconds, expires_at_ms, \
         last_access_ms, next_pos, closed, fork_source_id, fork_pos, fork_sub_offset, \
         incarnation, sealed_pos, uploaded_pos, last_cut_ms, deleted, manifest_generation, \
         manifest_etag, ref_count, local_only, trimmed_pos, manifest_dirty, pending_bytes, \
         closed_producer_id, closed_producer_epoch, closed_producer_seq, stream_seq, \
         keys_complete, total_bytes, profile, config_gen) \
         VALUES (:name, :content_type, :created_at_ms, :ttl_seconds, :expires_at_ms, \
         :last_access_ms, :next_pos, :closed, :fork_source_id, :fork_pos, :fork_sub_offset, \
         :incarnation, :sealed_pos, :uploaded_pos, :last_cut_ms, :deleted, :manifest_generation, \
         :manifest_etag, :ref_count, :local_only, :trimmed_pos, :manifest_dirty, :pending_bytes, \
         :pid, :pep, :pseq, :stream_seq, :keys_complete, :total_bytes, :profile, :config_gen)",
    )?
    .execute(rusqlite::named_params! {
        ":name": m.name,
        ":content_type": m.config.content_type,
        ":created_at_ms": m.config.created_at_ms,
        ":ttl_seconds": ttl,
        ":expires_at_ms": at,
        ":last_access_ms": m.tail.last_access_ms,
        ":next_pos": m.tail.next_pos as i64,
        ":closed": m.tail.closed,
        ":fork_source_id": fork.map(|f| f.source_id),
        ":fork_pos": fork.map_or(0, |f| f.pos as i64),
        ":fork_sub_offset": fork.map_or(0, |f| f.sub_offset as i64),
        ":incarnation": m.config.incarnation,
        ":sealed_pos": m.tier.sealed_pos as i64,
        ":uploaded_pos": m.tier.uploaded_pos as i64,
        ":last_cut_ms": m.tier.last_cut_ms,
        ":deleted": m.life.deleted,
        ":manifest_generation": m.tier.manifest_generation as i64,
        ":manifest_etag": m.tier.manifest_etag,
        ":ref_count": m.life.ref_count,
        ":local_only": m.config.local_only,
        ":trimmed_pos": m.tier.trimmed_pos as i64,
        ":manifest_dirty": m.tier.manifest_dirty,
        ":pending_bytes": m.tier.pending_bytes as i64,
        ":pid": closer.map(|c| c.0.as_str()),
        ":pep": closer.map(|c| c.1 as i64),
        ":pseq": closer.map(|c| c.2 as i64),
        ":stream_seq": m.tail.stream_seq,
        ":keys_complete": m.keys_complete,
        ":total_bytes": m.tail.total_bytes as i64,
        ":profile": m.settings.profile,
        ":config_gen": m.settings.config_gen as i64,
    })?;
    Ok(conn.last_insert_rowid())
}

/// Records the last `Stream-Seq` accepted (a plain append writes nothing else of its
/// stream's row: compaction folds its entries into the tail, see `ingest::compact`).
pub fn set_stream_seq(conn: &Connection, id: i64, seq: &[u8]) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE streams SET stream_seq = ?2 WHERE id = ?1")?
        .execute(params![id, seq])?;
    Ok(())
}

/// Persists the tail after an append or close, with the unsealed byte count and the
/// manifest's dirty flag (which is only ever raised here), and the segmenter's flag.
pub fn update_tail(conn: &Connection, m: &StreamMeta) -> rusqlite::Result<()> {
    let t = &m.tail;
    let (pid, pep, pseq) = match &t.closed_by {
        Some((id, e, s)) => (Some(id.as_str()), Some(*e as i64), Some(*s as i64)),
        None => (None, None, None),
    };
    // Positional parameters: binding by name looks each one up, on every append.
    conn.prepare_cached(
        "UPDATE streams SET next_pos = ?2, closed = ?3, \
         closed_producer_id = ?4, closed_producer_epoch = ?5, closed_producer_seq = ?6, \
         stream_seq = ?7, last_access_ms = max(last_access_ms, ?8), \
         pending_bytes = ?9, manifest_dirty = max(manifest_dirty, ?10), \
         total_bytes = ?11, unsealed = (?2 > sealed_pos) WHERE id = ?1",
    )?
    .execute(params![
        m.id,
        t.next_pos as i64,
        t.closed,
        pid,
        pep,
        pseq,
        t.stream_seq,
        t.last_access_ms,
        m.tier.pending_bytes as i64,
        m.tier.manifest_dirty,
        m.tail.total_bytes as i64,
    ])?;
    Ok(())
}

/// Renews the sliding TTL.
pub fn touch(conn: &Connection, id: i64, at_ms: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE streams SET last_access_ms = max(last_access_ms, ?2) WHERE id = ?1",
    )?
    .execute(params![id, at_ms])?;
    Ok(())
}

pub fn set_soft_deleted(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE streams SET deleted = 1, manifest_dirty = 1 WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Takes an incarnation out of the namespace but keeps its data for its forks.
pub fn detach(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE streams SET name = NULL, deleted = 1, manifest_dirty = 1 WHERE id = ?1",
    )?
    .execute([id])?;
    Ok(())
}

/// Records a sealed segment: its entries are now in a file.
pub fn set_sealed(
    conn: &Connection,
    id: i64,
    sealed_pos: u64,
    payload: u64,
    now_ms: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE streams SET sealed_pos = ?2, pending_bytes = max(0, pending_bytes - ?3), \
         last_cut_ms = ?4 WHERE id = ?1",
    )?
    .execute(params![id, sealed_pos as i64, payload as i64, now_ms])?;
    Ok(())
}

pub fn set_manifest_dirty(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE streams SET manifest_dirty = 1 WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Records a published manifest. The dirty flag is cleared only if nothing changed since
/// the publisher read the stream (`generation` is still the one it started from + 1).
pub fn set_published(
    conn: &Connection,
    id: i64,
    generation: u64,
    etag: Option<&str>,
    uploaded_pos: u64,
    dirty_seen: bool,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE streams SET manifest_generation = ?2, manifest_etag = ?3, \
         uploaded_pos = max(uploaded_pos, ?4), \
         manifest_dirty = CASE WHEN ?5 THEN 0 ELSE manifest_dirty END WHERE id = ?1",
    )?
    .execute(params![
        id,
        generation as i64,
        etag,
        uploaded_pos as i64,
        dirty_seen
    ])?;
    Ok(())
}

/// Sets the profile kind (`None`: generic) and counts a configuration change.
pub fn set_profile(
    conn: &Connection,
    id: i64,
    kind: Option<&str>,
    dirty: bool,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE streams SET profile = ?2, config_gen = config_gen + 1, \
         manifest_dirty = max(manifest_dirty, ?3) WHERE id = ?1",
    )?
    .execute(params![id, kind, dirty])?;
    Ok(())
}

/// Counts a configuration change (the schema registry changed).
/// `dirty`: the manifest, which carries the registry, must be published again.
pub fn bump_config(conn: &Connection, id: i64, dirty: bool) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE streams SET config_gen = config_gen + 1, \
         manifest_dirty = max(manifest_dirty, ?2) WHERE id = ?1",
    )?
    .execute(params![id, dirty])?;
    Ok(())
}

/// Records that `stream_keys` holds every routing key of the stream.
pub fn set_keys_complete(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE streams SET keys_complete = 1 WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Keeps only own entries from `pos` on (an internal stream's retention).
pub fn set_trimmed(conn: &Connection, id: i64, pos: u64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE streams SET trimmed_pos = ?2 WHERE id = ?1")?
        .execute(params![id, pos as i64])?;
    Ok(())
}

/// Streams that have something to seal: enough pending entries or bytes, or entries older
/// than the interval. Reads only streams with unsealed entries (the `streams_unsealed`
/// index), never the sealed ones.
pub fn seal_candidates(
    conn: &Connection,
    rows: u64,
    bytes: u64,
    interval_ms: u64,
    now_ms: i64,
    limit: usize,
) -> rusqlite::Result<Vec<StreamMeta>> {
    metas(
        conn,
        &seal_candidates_sql(),
        params![
            rows as i64,
            bytes as i64,
            interval_ms as i64,
            now_ms,
            limit as i64
        ],
    )
}

pub(super) fn seal_candidates_sql() -> String {
    // The first three terms are the `streams_unsealed` index's WHERE, word for word
    // (`unsealed` is `next_pos > sealed_pos`; migration 0014 says who keeps it so). Only
    // streams with entries to seal are read, and sorted here: an index in this order
    // would change with every append.
    format!(
        "SELECT {SELECT} FROM streams WHERE unsealed = 1 AND deleted = 0 \
         AND local_only = 0 \
         AND (next_pos - sealed_pos >= ?1 OR pending_bytes >= ?2 \
              OR (?3 > 0 AND ?4 - last_cut_ms >= ?3)) \
         ORDER BY pending_bytes DESC LIMIT ?5"
    )
}

/// Streams whose manifest needs publishing, in id order. Reads only those (the
/// `streams_manifest_dirty` index).
pub fn manifest_dirty(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<StreamMeta>> {
    metas(conn, &manifest_dirty_sql(), [limit as i64])
}

pub(super) fn manifest_dirty_sql() -> String {
    format!(
        "SELECT {SELECT} FROM streams WHERE manifest_dirty = 1 AND local_only = 0 \
         ORDER BY id LIMIT ?1"
    )
}

/// Streams never published and not dirty whose first manifest is due: empty (no entries
/// of its own: for a stream never published, `uploaded_pos` is where they would start) and
/// created at or before `empty_before_ms`, or created at or before `any_before_ms` (a
/// stream with entries waits for its first uploaded segment, which marks it dirty; this is
/// the fallback if none comes). Oldest first; reads only those rows (the
/// `streams_unpublished` index).
pub fn first_manifest_due(
    conn: &Connection,
    empty_before_ms: i64,
    any_before_ms: i64,
    limit: usize,
) -> rusqlite::Result<Vec<StreamMeta>> {
    metas(
        conn,
        &first_manifest_due_sql(),
        params![empty_before_ms, any_before_ms, limit as i64],
    )
}

pub(super) fn first_manifest_due_sql() -> String {
    format!(
        "SELECT {SELECT} FROM streams \
         WHERE manifest_generation = 0 AND manifest_dirty = 0 AND local_only = 0 \
         AND created_at_ms <= ?1 AND (next_pos = uploaded_pos OR created_at_ms <= ?2) \
         ORDER BY created_at_ms LIMIT ?3"
    )
}

pub fn add_ref(conn: &Connection, id: i64, delta: i64) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "UPDATE streams SET ref_count = ref_count + ?2 WHERE id = ?1 RETURNING ref_count",
    )?
    .query_row(params![id, delta], |r| r.get(0))
}

pub fn delete_row(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM streams WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_found_by_name_and_every_column_exists() {
        assert_eq!(col("id"), 0);
        assert_eq!(col("config_gen"), COLUMNS.len() - 1);
        assert_eq!(SELECT.split(", ").collect::<Vec<_>>(), COLUMNS);
        let dir = tempfile::tempdir().unwrap();
        let c = super::super::open_writer(&dir.path().join("t.sqlite")).unwrap();
        c.prepare(&format!("SELECT {SELECT} FROM streams")).unwrap();
    }

    #[test]
    fn a_row_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let c = super::super::open_writer(&dir.path().join("t.sqlite")).unwrap();
        let mut m = StreamMeta {
            id: 0,
            name: Some("a".into()),
            config: StreamConfig {
                content_type: "application/json".into(),
                created_at_ms: 5,
                expiry: Expiry::Ttl(60),
                fork: None,
                incarnation: "inc".into(),
                local_only: false,
            },
            tail: Tail {
                next_pos: 3,
                closed: true,
                closed_by: Some(("p".into(), 1, 2)),
                stream_seq: Some(b"s".to_vec()),
                last_access_ms: 7,
                total_bytes: 11,
            },
            tier: TierState {
                sealed_pos: 1,
                uploaded_pos: 1,
                pending_bytes: 9,
                last_cut_ms: 4,
                manifest_generation: 2,
                manifest_etag: Some("e".into()),
                manifest_dirty: true,
                trimmed_pos: 0,
            },
            life: Lifecycle {
                ref_count: 0,
                deleted: false,
            },
            keys_complete: true,
            settings: Settings {
                profile: Some("metrics".into()),
                config_gen: 3,
            },
        };
        m.id = insert(&c, &m).unwrap();
        assert_eq!(by_name(&c, "a").unwrap().unwrap(), m);
        assert_eq!(by_id(&c, m.id).unwrap().unwrap(), m);
    }
}
