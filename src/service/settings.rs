//! A stream's profile and schema registry as the request path uses them: parsed, with
//! the current schema compiled, once per configuration generation, and cached by stream
//! incarnation. Appends (`ingest`), `format=json` reads (promotion), `_profile`,
//! `_schema` and `_details` all read them through [`StreamService::settings`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::{ServiceError, ServiceResult, StreamService};
use crate::engine::StreamMeta;
use crate::profiles::Profile;
use crate::schema::{CompiledSchema, Registry, SchemaCache};

/// Streams whose settings are kept parsed; beyond that an arbitrary eighth is dropped.
const CACHED_STREAMS: usize = 4096;
/// Compiled schemas kept (the original kept 256).
const CACHED_SCHEMAS: usize = 256;

/// A stream's profile and registry for one configuration generation.
#[derive(Debug)]
pub struct StreamSettings {
    pub profile: Profile,
    /// The registry (the default, empty one when none was ever stored).
    pub registry: Registry,
    /// The current version's schema, compiled (`None` before the first install).
    pub validator: Option<Arc<CompiledSchema>>,
    pub config_gen: u64,
}

impl StreamSettings {
    /// What a stream that never had a profile or registry uses.
    fn default_for(name: &str) -> StreamSettings {
        StreamSettings {
            profile: Profile::Generic,
            registry: Registry::default_for(name),
            validator: None,
            config_gen: 0,
        }
    }

    /// Appends need more than framing: a profile that checks or rewrites records, a
    /// schema to validate against, or a routing key to extract.
    pub fn shapes_appends(&self) -> bool {
        !matches!(self.profile, Profile::Generic)
            || self.registry.current_version() > 0
            || self.registry.routing_key().is_some()
    }
}

/// Parsed settings by incarnation id.
#[derive(Debug)]
pub(crate) struct SettingsCache {
    streams: Mutex<HashMap<i64, Arc<StreamSettings>>>,
    schemas: SchemaCache,
}

impl Default for SettingsCache {
    fn default() -> Self {
        SettingsCache {
            streams: Mutex::new(HashMap::new()),
            schemas: SchemaCache::new(CACHED_SCHEMAS),
        }
    }
}

impl SettingsCache {
    fn get(&self, id: i64, at_least: u64) -> Option<Arc<StreamSettings>> {
        let map = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&id)
            .filter(|s| s.config_gen >= at_least)
            .map(Arc::clone)
    }

    fn put(&self, id: i64, s: Arc<StreamSettings>) {
        let mut map = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        if map
            .get(&id)
            .is_some_and(|old| old.config_gen > s.config_gen)
        {
            return;
        }
        if map.len() >= CACHED_STREAMS && !map.contains_key(&id) {
            let victims: Vec<i64> = map.keys().take(CACHED_STREAMS / 8).copied().collect();
            for v in victims {
                map.remove(&v);
            }
        }
        map.insert(id, s);
    }
}

/// Stored settings that do not parse: the data is damaged (500, detail in the log).
fn corrupt(meta: &StreamMeta, what: &str, e: String) -> ServiceError {
    let id = crate::telemetry::request_id::current();
    tracing::error!(
        request_id = id.as_deref().unwrap_or("-"),
        stream = meta.id,
        error = %e,
        "stored {what} is unreadable"
    );
    ServiceError::Internal
}

impl StreamService {
    /// The profile and registry of `meta`'s incarnation, at least as new as `meta` says.
    pub(crate) async fn settings(&self, meta: &StreamMeta) -> ServiceResult<Arc<StreamSettings>> {
        let name = meta.name.as_deref().unwrap_or_default();
        if meta.settings.config_gen == 0 {
            return Ok(Arc::new(StreamSettings::default_for(name)));
        }
        if let Some(s) = self.settings_cache.get(meta.id, meta.settings.config_gen) {
            return Ok(s);
        }
        let stored = self.engine.stream_settings(meta).await?;
        let profile = Profile::load(
            stored.profile_kind.as_deref(),
            stored.profile_json.as_deref(),
        )
        .map_err(|e| corrupt(meta, "profile", e))?;
        let registry = match &stored.registry_json {
            Some(text) => {
                Registry::parse(text.as_bytes()).map_err(|e| corrupt(meta, "registry", e))?
            }
            None => Registry::default_for(name),
        };
        let validator = match registry.current_schema() {
            Some(schema) => Some(
                self.settings_cache
                    .schemas
                    .get_or_compile(schema)
                    .map_err(|e| corrupt(meta, "schema", e))?,
            ),
            None => None,
        };
        let s = Arc::new(StreamSettings {
            profile,
            registry,
            validator,
            config_gen: stored.config_gen,
        });
        self.settings_cache.put(meta.id, Arc::clone(&s));
        Ok(s)
    }
}
