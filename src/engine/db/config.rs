//! The `stream_profiles` and `stream_schemas` tables: a stream's profile configuration and
//! schema registry, as JSON text.

use rusqlite::{params, Connection, OptionalExtension};

pub fn profile(conn: &Connection, stream_id: i64) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT profile_json FROM stream_profiles WHERE stream_id = ?1")?
        .query_row([stream_id], |r| r.get(0))
        .optional()
}

/// Stores (or, with `None`, removes) a stream's profile configuration.
pub fn set_profile(
    conn: &Connection,
    stream_id: i64,
    json: Option<&str>,
    now_ms: i64,
) -> rusqlite::Result<()> {
    match json {
        Some(j) => conn
            .prepare_cached(
                "INSERT INTO stream_profiles (stream_id, profile_json, updated_at_ms) \
                 VALUES (?1, ?2, ?3) ON CONFLICT (stream_id) DO UPDATE SET \
                 profile_json = excluded.profile_json, updated_at_ms = excluded.updated_at_ms",
            )?
            .execute(params![stream_id, j, now_ms])?,
        None => conn
            .prepare_cached("DELETE FROM stream_profiles WHERE stream_id = ?1")?
            .execute([stream_id])?,
    };
    Ok(())
}

pub fn registry(conn: &Connection, stream_id: i64) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT registry_json FROM stream_schemas WHERE stream_id = ?1")?
        .query_row([stream_id], |r| r.get(0))
        .optional()
}

pub fn set_registry(
    conn: &Connection,
    stream_id: i64,
    json: &str,
    now_ms: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO stream_schemas (stream_id, registry_json, updated_at_ms) \
         VALUES (?1, ?2, ?3) ON CONFLICT (stream_id) DO UPDATE SET \
         registry_json = excluded.registry_json, updated_at_ms = excluded.updated_at_ms",
    )?
    .execute(params![stream_id, json, now_ms])?;
    Ok(())
}

/// Removes a stream's profile and registry (the stream is removed).
pub fn delete_stream(conn: &Connection, stream_id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM stream_profiles WHERE stream_id = ?1")?
        .execute([stream_id])?;
    conn.prepare_cached("DELETE FROM stream_schemas WHERE stream_id = ?1")?
        .execute([stream_id])?;
    Ok(())
}
