//! The `stream_profiles` and `stream_schemas` tables: a stream's profile configuration and
//! schema registry, as JSON text.

use rusqlite::{params, Connection, OptionalExtension};

use crate::engine::manifest::ManifestSettings;

/// A stream's profile kind and stored texts, as one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub profile_kind: Option<String>,
    pub profile_json: Option<String>,
    pub registry_json: Option<String>,
}

impl Snapshot {
    /// The form manifests carry (the texts parsed, key order kept).
    pub fn into_manifest(self) -> Result<ManifestSettings, serde_json::Error> {
        let parse = |t: Option<String>| t.map(|t| serde_json::from_str(&t)).transpose();
        Ok(ManifestSettings {
            profile_kind: self.profile_kind,
            profile: parse(self.profile_json)?,
            registry: parse(self.registry_json)?,
        })
    }
}

/// The stream's configuration generation, and its settings if it ever had any (call in
/// a transaction for a consistent view).
pub fn snapshot(conn: &Connection, stream_id: i64) -> rusqlite::Result<(u64, Option<Snapshot>)> {
    let row: Option<(Option<String>, i64)> = conn
        .prepare_cached("SELECT profile, config_gen FROM streams WHERE id = ?1")?
        .query_row([stream_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((profile_kind, gen)) = row else {
        return Ok((0, None));
    };
    let profile_json = profile(conn, stream_id)?;
    let registry_json = registry(conn, stream_id)?;
    let any = profile_kind.is_some() || profile_json.is_some() || registry_json.is_some();
    let snap = any.then_some(Snapshot {
        profile_kind,
        profile_json,
        registry_json,
    });
    Ok((gen.max(0) as u64, snap))
}

/// Restores what a manifest recorded (bootstrap): the kind, the texts, and a
/// configuration generation of 1 so that the request path reads them.
pub fn restore(
    conn: &Connection,
    stream_id: i64,
    s: &ManifestSettings,
    now_ms: i64,
) -> rusqlite::Result<()> {
    let text = |v: &Option<serde_json::Value>| v.as_ref().map(serde_json::Value::to_string);
    set_profile(conn, stream_id, text(&s.profile).as_deref(), now_ms)?;
    if let Some(r) = text(&s.registry) {
        set_registry(conn, stream_id, &r, now_ms)?;
    }
    conn.prepare_cached("UPDATE streams SET profile = ?2, config_gen = 1 WHERE id = ?1")?
        .execute(params![stream_id, s.profile_kind])?;
    Ok(())
}

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
