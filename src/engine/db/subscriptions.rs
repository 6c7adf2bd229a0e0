//! The `subscriptions`, `subscription_links` and `subscription_keys` tables: the
//! durable state of Durable Streams subscriptions (see `crate::subscriptions` for the
//! record and `service::subscriptions` for the rules).

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::engine::EngineError;
use crate::subscriptions::{Kind, Link, Subscription, WakeState};

const COLUMNS: &str = "id, kind, pattern, webhook_url, wake_stream, lease_ttl_ms, description, \
     config_hash, base_url, created_at_ms, generation, wake_id, wake_snapshot_json, holder, \
     lease_expires_at_ms, delivered, retry_count, next_attempt_at_ms, failed";

fn row(r: &Row<'_>) -> rusqlite::Result<Subscription> {
    let kind: String = r.get(1)?;
    let snapshot: String = r.get(12)?;
    let snapshot: Vec<(String, u64)> = serde_json::from_str(&snapshot).unwrap_or_default();
    Ok(Subscription {
        id: r.get(0)?,
        kind: Kind::parse(&kind).unwrap_or(Kind::PullWake),
        pattern: r.get(2)?,
        webhook_url: r.get(3)?,
        wake_stream: r.get(4)?,
        lease_ttl_ms: r.get::<_, i64>(5)?.max(0) as u64,
        description: r.get(6)?,
        config_hash: r.get(7)?,
        base_url: r.get(8)?,
        created_at_ms: r.get(9)?,
        links: BTreeMap::new(),
        wake: WakeState {
            generation: r.get::<_, i64>(10)?.max(0) as u64,
            wake_id: r.get(11)?,
            snapshot,
            holder: r.get(13)?,
            lease_expires_at_ms: r.get(14)?,
            delivered: r.get(15)?,
            retry_count: r.get::<_, i64>(16)?.clamp(0, i64::from(u32::MAX)) as u32,
            next_attempt_at_ms: r.get(17)?,
            failed: r.get(18)?,
        },
    })
}

/// Every subscription with its links.
pub fn load_all(c: &Connection) -> Result<Vec<Subscription>, EngineError> {
    let mut subs: BTreeMap<String, Subscription> = BTreeMap::new();
    let mut q = c.prepare_cached(&format!("SELECT {COLUMNS} FROM subscriptions"))?;
    for s in q.query_map([], row)? {
        let s = s?;
        subs.insert(s.id.clone(), s);
    }
    let mut q = c.prepare_cached(
        "SELECT subscription_id, stream, explicit, glob, acked_pos FROM subscription_links",
    )?;
    let links = q.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            Link {
                explicit: r.get(2)?,
                glob: r.get(3)?,
                acked: r.get(4)?,
            },
        ))
    })?;
    for l in links {
        let (id, path, link) = l?;
        if let Some(s) = subs.get_mut(&id) {
            s.links.insert(path, link);
        }
    }
    Ok(subs.into_values().collect())
}

/// Inserts or replaces the subscription's row (not its links).
pub fn put(c: &Connection, s: &Subscription) -> Result<(), EngineError> {
    let w = &s.wake;
    let snapshot = serde_json::to_string(&w.snapshot).unwrap_or_else(|_| "[]".into());
    c.prepare_cached(&format!(
        "INSERT OR REPLACE INTO subscriptions ({COLUMNS}) VALUES \
         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
    ))?
    .execute(params![
        s.id,
        s.kind.as_str(),
        s.pattern,
        s.webhook_url,
        s.wake_stream,
        i64::try_from(s.lease_ttl_ms).unwrap_or(i64::MAX),
        s.description,
        s.config_hash,
        s.base_url,
        s.created_at_ms,
        i64::try_from(w.generation).unwrap_or(i64::MAX),
        w.wake_id,
        snapshot,
        w.holder,
        w.lease_expires_at_ms,
        w.delivered,
        i64::from(w.retry_count),
        w.next_attempt_at_ms,
        w.failed,
    ])?;
    Ok(())
}

/// Inserts or replaces one link.
pub fn put_link(c: &Connection, id: &str, path: &str, l: &Link) -> Result<(), EngineError> {
    c.prepare_cached(
        "INSERT OR REPLACE INTO subscription_links \
         (subscription_id, stream, explicit, glob, acked_pos) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![id, path, l.explicit, l.glob, l.acked])?;
    Ok(())
}

/// Removes one link (absent is fine).
pub fn delete_link(c: &Connection, id: &str, path: &str) -> Result<(), EngineError> {
    c.prepare_cached("DELETE FROM subscription_links WHERE subscription_id = ?1 AND stream = ?2")?
        .execute(params![id, path])?;
    Ok(())
}

/// Removes a subscription and its links (absent is fine).
pub fn delete(c: &Connection, id: &str) -> Result<(), EngineError> {
    c.prepare_cached("DELETE FROM subscription_links WHERE subscription_id = ?1")?
        .execute([id])?;
    c.prepare_cached("DELETE FROM subscriptions WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// The stored key `name`.
pub fn key(c: &Connection, name: &str) -> Result<Option<Vec<u8>>, EngineError> {
    Ok(
        c.prepare_cached("SELECT secret FROM subscription_keys WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?,
    )
}

/// Stores key `name`.
pub fn put_key(c: &Connection, name: &str, secret: &[u8], now_ms: i64) -> Result<(), EngineError> {
    c.prepare_cached(
        "INSERT INTO subscription_keys (name, secret, created_at_ms) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![name, secret, now_ms])?;
    Ok(())
}
