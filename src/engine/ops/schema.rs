//! Changing a stream's schema registry (`POST /_schema`). The update is applied inside
//! the writer, against the registry and tail position the transaction sees, so that a
//! version boundary is exactly the position of the first entry validated by it.

use bytes::Bytes;

use crate::engine::db::{config, streams};
use crate::engine::writer::{Batch, Submit};
use crate::engine::{Engine, EngineError};
use crate::schema::{apply_update, Registry, SchemaError};

#[derive(Debug, thiserror::Error)]
pub enum SchemaUpdateError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("stream not found")]
    NotFound,
    /// The update breaks the registry's rules (400 or 409, see [`SchemaError`]).
    #[error(transparent)]
    Refused(SchemaError),
}

super::write_error!(SchemaUpdateError);

impl Engine {
    /// Applies a `POST /_schema` body to the live stream `name`'s registry; returns the
    /// new registry.
    pub async fn update_schema(
        &self,
        name: &str,
        body: Bytes,
    ) -> Result<Registry, SchemaUpdateError> {
        let name = name.to_string();
        self.writer()
            .call(Submit::request(body.len()), move |b| run(b, &name, &body))
            .await
    }
}

fn run(b: &mut Batch<'_>, name: &str, body: &[u8]) -> Result<Registry, SchemaUpdateError> {
    let c = b.conn()?;
    let m = match b.stream_by_name(name)? {
        Some(m) if !m.life.deleted && !m.is_expired(b.now) => m,
        _ => return Err(SchemaUpdateError::NotFound),
    };
    let current = match config::registry(c, m.id)? {
        Some(text) => Registry::parse(text.as_bytes()).map_err(|e| {
            EngineError::Corrupt(format!("schema registry of stream {}: {e}", m.id))
        })?,
        None => Registry::default_for(name),
    };
    let next = apply_update(
        &current,
        body,
        m.tail.next_pos,
        &crate::search::config::validate,
    )
    .map_err(SchemaUpdateError::Refused)?;
    let json = String::from_utf8(next.to_json())
        .map_err(|e| EngineError::Internal(format!("registry is not UTF-8: {e}")))?;
    // Keyword terms in the routing-key index follow the search configuration: a new one
    // means indexing the stream's segments again (until then searches scan them).
    if b.tiered && !m.config.local_only && current.search() != next.search() {
        crate::engine::db::key_index::reset_stream(c, m.id, &m.config.incarnation, b.now)?;
    }
    config::set_registry(c, m.id, &json, b.now)?;
    streams::bump_config(c, m.id, b.tiered && !m.config.local_only)?;
    Ok(next)
}
