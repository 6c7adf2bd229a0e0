//! Reading a stream's profile configuration and schema registry (the texts the writer
//! stored; the service parses and caches them by `Settings::config_gen`).

use super::db::config;
use super::{Engine, EngineError, StreamMeta};

/// A stream's stored profile configuration and registry, as JSON text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredSettings {
    /// The kind, from the stream's row (`None`: generic).
    pub profile_kind: Option<String>,
    /// The `stream_profiles` row, for the kinds that keep one.
    pub profile_json: Option<String>,
    /// The `stream_schemas` row (`None`: the default, empty registry).
    pub registry_json: Option<String>,
    /// The configuration generation these texts belong to.
    pub config_gen: u64,
}

impl Engine {
    /// The stored profile and registry of `meta`'s incarnation. Reads the generation
    /// again with the texts, so the result is one consistent snapshot even if `meta` is
    /// older than the last change.
    pub async fn stream_settings(&self, meta: &StreamMeta) -> Result<StoredSettings, EngineError> {
        let id = meta.id;
        self.reader()
            .run(move |c| {
                let tx = c.unchecked_transaction()?;
                let row: Option<(Option<String>, i64)> = tx
                    .prepare_cached("SELECT profile, config_gen FROM streams WHERE id = ?1")?
                    .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map(Some)
                    .or_else(|e| match e {
                        rusqlite::Error::QueryReturnedNoRows => Ok(None),
                        e => Err(e),
                    })?;
                let Some((profile_kind, gen)) = row else {
                    return Ok(StoredSettings::default());
                };
                let out = StoredSettings {
                    profile_kind,
                    profile_json: config::profile(&tx, id)?,
                    registry_json: config::registry(&tx, id)?,
                    config_gen: gen.max(0) as u64,
                };
                tx.finish()?;
                Ok::<_, rusqlite::Error>(out)
            })
            .await
    }
}
