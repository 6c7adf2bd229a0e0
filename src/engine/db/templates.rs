//! The `live_templates` table: the live-query templates of touch-enabled streams, their
//! state (active or retired) and the times the lifecycle rules need (see
//! `engine::ops::templates` for those rules).
//!
//! Template ids are stored as 16 lowercase hex digits, as the original stores them;
//! ordering by that text is ordering by the id's value. Field names and encodings are
//! JSON arrays of strings, names sorted.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::engine::EngineError;

/// A template's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateState {
    /// The touch processor derives touches for it.
    Active,
    /// Kept for reactivation; ignored by the processor.
    Retired,
}

impl TemplateState {
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateState::Active => "active",
            TemplateState::Retired => "retired",
        }
    }
}

/// Why a template was retired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetiredReason {
    /// Not seen for longer than its inactivity TTL.
    Inactivity,
    /// Evicted to keep an entity or the stream within its cap.
    CapExceeded,
}

impl RetiredReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RetiredReason::Inactivity => "inactivity",
            RetiredReason::CapExceeded => "cap_exceeded",
        }
    }
}

/// One row of `live_templates`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRow {
    pub id: u64,
    pub entity: String,
    /// Field names, sorted.
    pub fields: Vec<String>,
    /// The encoding of each field, in the order of `fields`.
    pub encodings: Vec<String>,
    pub state: TemplateState,
    pub created_at_ms: i64,
    pub last_seen_at_ms: i64,
    pub inactivity_ttl_ms: i64,
    /// The stream's next position when the template was last activated: entries before
    /// it are not touched through this template.
    pub active_from_pos: u64,
    pub retired_at_ms: Option<i64>,
    pub retired_reason: Option<RetiredReason>,
}

impl TemplateRow {
    /// Whether the template's inactivity TTL has run out at `now_ms` (last seen + TTL
    /// strictly before now; saturating).
    pub fn is_inactive(&self, now_ms: i64) -> bool {
        self.last_seen_at_ms.saturating_add(self.inactivity_ttl_ms) < now_ms
    }
}

/// The id as stored: 16 lowercase hex digits.
pub fn id_hex(id: u64) -> String {
    format!("{id:016x}")
}

fn corrupt(what: &str, stream_id: i64, detail: impl std::fmt::Display) -> EngineError {
    EngineError::Corrupt(format!(
        "live_templates of stream {stream_id}: {what}: {detail}"
    ))
}

const COLUMNS: &str = "template_id, entity, fields_json, encodings_json, state, created_at_ms, \
     last_seen_at_ms, inactivity_ttl_ms, active_from_pos, retired_at_ms, retired_reason";

/// A row's raw column values, decoded into a [`TemplateRow`] outside the SQLite callback
/// so that a malformed row is reported as corruption, not as a query error.
struct Raw {
    id: String,
    entity: String,
    fields: String,
    encodings: String,
    state: String,
    created: i64,
    last_seen: i64,
    ttl: i64,
    from_pos: i64,
    retired_at: Option<i64>,
    reason: Option<String>,
}

fn raw(r: &Row<'_>) -> rusqlite::Result<Raw> {
    Ok(Raw {
        id: r.get(0)?,
        entity: r.get(1)?,
        fields: r.get(2)?,
        encodings: r.get(3)?,
        state: r.get(4)?,
        created: r.get(5)?,
        last_seen: r.get(6)?,
        ttl: r.get(7)?,
        from_pos: r.get(8)?,
        retired_at: r.get(9)?,
        reason: r.get(10)?,
    })
}

fn decode(stream_id: i64, r: Raw) -> Result<TemplateRow, EngineError> {
    let id = parse_id(&r.id).ok_or_else(|| corrupt("template id", stream_id, &r.id))?;
    let list = |text: &str| -> Result<Vec<String>, EngineError> {
        serde_json::from_str(text).map_err(|e| corrupt("field list", stream_id, e))
    };
    let fields = list(&r.fields)?;
    let encodings = list(&r.encodings)?;
    if fields.len() != encodings.len() {
        return Err(corrupt(
            "field list",
            stream_id,
            "names and encodings differ in length",
        ));
    }
    let state = match r.state.as_str() {
        "active" => TemplateState::Active,
        "retired" => TemplateState::Retired,
        other => return Err(corrupt("state", stream_id, other)),
    };
    let retired_reason = match r.reason.as_deref() {
        None => None,
        Some("inactivity") => Some(RetiredReason::Inactivity),
        Some("cap_exceeded") => Some(RetiredReason::CapExceeded),
        Some(other) => return Err(corrupt("retired reason", stream_id, other)),
    };
    Ok(TemplateRow {
        id,
        entity: r.entity,
        fields,
        encodings,
        state,
        created_at_ms: r.created,
        last_seen_at_ms: r.last_seen,
        inactivity_ttl_ms: r.ttl,
        active_from_pos: r.from_pos.max(0) as u64,
        retired_at_ms: r.retired_at,
        retired_reason,
    })
}

/// Parses a stored (or client-sent) template id: exactly 16 lowercase hex digits.
pub fn parse_id(text: &str) -> Option<u64> {
    let ok = text.len() == 16
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then(|| u64::from_str_radix(text, 16).ok()).flatten()
}

fn json_list(items: &[String]) -> String {
    serde_json::Value::from(items.to_vec()).to_string()
}

/// The template `id` of the stream, in whatever state.
pub fn get(conn: &Connection, stream_id: i64, id: u64) -> Result<Option<TemplateRow>, EngineError> {
    let sql =
        format!("SELECT {COLUMNS} FROM live_templates WHERE stream_id = ?1 AND template_id = ?2");
    let r = conn
        .prepare_cached(&sql)?
        .query_row(params![stream_id, id_hex(id)], raw)
        .optional()?;
    r.map(|r| decode(stream_id, r)).transpose()
}

/// The stream's active templates, by entity then id.
pub fn active(conn: &Connection, stream_id: i64) -> Result<Vec<TemplateRow>, EngineError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM live_templates WHERE stream_id = ?1 AND state = 'active' \
         ORDER BY entity, template_id"
    );
    let rows = conn
        .prepare_cached(&sql)?
        .query_map([stream_id], raw)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(|r| decode(stream_id, r)).collect()
}

/// Up to `limit` active templates whose inactivity TTL ran out before `now_ms`, least
/// recently seen first.
pub fn expired(
    conn: &Connection,
    stream_id: i64,
    now_ms: i64,
    limit: usize,
) -> Result<Vec<TemplateRow>, EngineError> {
    // SQLite turns an overflowing sum into a float, which still compares correctly;
    // callers check again with `TemplateRow::is_inactive`.
    let sql = format!(
        "SELECT {COLUMNS} FROM live_templates WHERE stream_id = ?1 AND state = 'active' \
         AND last_seen_at_ms + inactivity_ttl_ms < ?2 \
         ORDER BY last_seen_at_ms, template_id LIMIT ?3"
    );
    let rows = conn
        .prepare_cached(&sql)?
        .query_map(params![stream_id, now_ms, limit as i64], raw)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(|r| decode(stream_id, r)).collect()
}

/// What a new row holds besides its times.
pub struct NewTemplate<'a> {
    pub id: u64,
    pub entity: &'a str,
    pub fields: &'a [String],
    pub encodings: &'a [String],
}

/// Inserts an active template, created and seen at `now_ms`.
pub fn insert(
    conn: &Connection,
    stream_id: i64,
    t: &NewTemplate<'_>,
    now_ms: i64,
    ttl_ms: i64,
    from_pos: u64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO live_templates (stream_id, template_id, entity, fields_json, \
         encodings_json, state, created_at_ms, last_seen_at_ms, inactivity_ttl_ms, \
         active_from_pos, retired_at_ms, retired_reason) \
         VALUES (?1, ?2, ?3, ?4, ?5, 'active', ?6, ?6, ?7, ?8, NULL, NULL)",
    )?
    .execute(params![
        stream_id,
        id_hex(t.id),
        t.entity,
        json_list(t.fields),
        json_list(t.encodings),
        now_ms,
        ttl_ms,
        from_pos as i64
    ])?;
    Ok(())
}

/// An active template declared again: seen now, with the TTL of this declaration.
pub fn refresh(
    conn: &Connection,
    stream_id: i64,
    id: u64,
    now_ms: i64,
    ttl_ms: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE live_templates SET last_seen_at_ms = ?3, inactivity_ttl_ms = ?4 \
         WHERE stream_id = ?1 AND template_id = ?2",
    )?
    .execute(params![stream_id, id_hex(id), now_ms, ttl_ms])?;
    Ok(())
}

/// A retired template declared again: active from `from_pos`, seen now.
pub fn reactivate(
    conn: &Connection,
    stream_id: i64,
    id: u64,
    now_ms: i64,
    ttl_ms: i64,
    from_pos: u64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE live_templates SET state = 'active', last_seen_at_ms = ?3, \
         inactivity_ttl_ms = ?4, active_from_pos = ?5, retired_at_ms = NULL, \
         retired_reason = NULL WHERE stream_id = ?1 AND template_id = ?2",
    )?
    .execute(params![
        stream_id,
        id_hex(id),
        now_ms,
        ttl_ms,
        from_pos as i64
    ])?;
    Ok(())
}

/// Retires an active template; false if it was not active.
pub fn retire(
    conn: &Connection,
    stream_id: i64,
    id: u64,
    now_ms: i64,
    reason: RetiredReason,
) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE live_templates SET state = 'retired', retired_at_ms = ?3, \
             retired_reason = ?4 WHERE stream_id = ?1 AND template_id = ?2 \
             AND state = 'active'",
        )?
        .execute(params![stream_id, id_hex(id), now_ms, reason.as_str()])?;
    Ok(n > 0)
}

/// Moves an active template's last-seen time forward to `at_ms` (never back); false if
/// nothing changed.
pub fn set_last_seen(
    conn: &Connection,
    stream_id: i64,
    id: u64,
    at_ms: i64,
) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE live_templates SET last_seen_at_ms = ?3 WHERE stream_id = ?1 \
             AND template_id = ?2 AND state = 'active' AND last_seen_at_ms < ?3",
        )?
        .execute(params![stream_id, id_hex(id), at_ms])?;
    Ok(n > 0)
}

/// Number of active templates per entity of the stream, by entity.
pub fn active_per_entity(
    conn: &Connection,
    stream_id: i64,
) -> rusqlite::Result<Vec<(String, u64)>> {
    conn.prepare_cached(
        "SELECT entity, count(*) FROM live_templates WHERE stream_id = ?1 AND state = 'active' \
         GROUP BY entity ORDER BY entity",
    )?
    .query_map([stream_id], |r| {
        Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64))
    })?
    .collect()
}

/// Number of active templates of the stream.
pub fn active_count(conn: &Connection, stream_id: i64) -> rusqlite::Result<u64> {
    conn.prepare_cached(
        "SELECT count(*) FROM live_templates WHERE stream_id = ?1 AND state = 'active'",
    )?
    .query_row([stream_id], |r| r.get::<_, i64>(0))
    .map(|n| n.max(0) as u64)
}

/// Up to `limit` ids of active templates (of `entity` if given), least recently seen
/// first, ties by id.
pub fn least_recently_seen(
    conn: &Connection,
    stream_id: i64,
    entity: Option<&str>,
    limit: usize,
) -> Result<Vec<u64>, EngineError> {
    let ids: Vec<String> = conn
        .prepare_cached(
            "SELECT template_id FROM live_templates WHERE stream_id = ?1 AND state = 'active' \
             AND (?2 IS NULL OR entity = ?2) ORDER BY last_seen_at_ms, template_id LIMIT ?3",
        )?
        .query_map(params![stream_id, entity, limit as i64], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    ids.iter()
        .map(|t| parse_id(t).ok_or_else(|| corrupt("template id", stream_id, t)))
        .collect()
}

/// Removes a stream's templates (the stream is removed or left the namespace).
pub fn delete_stream(conn: &Connection, stream_id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM live_templates WHERE stream_id = ?1")?
        .execute([stream_id])?;
    Ok(())
}
