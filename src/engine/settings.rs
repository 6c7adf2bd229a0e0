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
    /// The stored profile and registry of `meta`'s incarnation, read in one transaction
    /// with their generation (which may be newer than `meta`'s).
    pub async fn stream_settings(&self, meta: &StreamMeta) -> Result<StoredSettings, EngineError> {
        let id = meta.id;
        self.reader()
            .run(move |c| {
                let tx = c.unchecked_transaction()?;
                let (config_gen, snap) = config::snapshot(&tx, id)?;
                tx.finish()?;
                let snap = snap.unwrap_or(config::Snapshot {
                    profile_kind: None,
                    profile_json: None,
                    registry_json: None,
                });
                Ok::<_, rusqlite::Error>(StoredSettings {
                    profile_kind: snap.profile_kind,
                    profile_json: snap.profile_json,
                    registry_json: snap.registry_json,
                    config_gen,
                })
            })
            .await
    }
}
