//! The registry document: load, store, look up versions, promote records.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::lens::{self, pointer, Lens};

/// The registry's `apiVersion`.
pub const REGISTRY_API_VERSION: &str = "durable.streams/schema-registry/v1";

/// The top-level keys a registry may have (0.1.11's strict loader).
const REGISTRY_KEYS: &[&str] = &[
    "apiVersion",
    "schema",
    "currentVersion",
    "routingKey",
    "search",
    "boundaries",
    "schemas",
    "lenses",
];

/// Where a stream's routing key comes from: a JSON pointer into each record, and whether
/// a record without it is rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingKey {
    pub json_pointer: String,
    pub required: bool,
}

impl RoutingKey {
    /// The pointer's segments (it was validated when the key was set).
    pub fn segments(&self) -> Vec<String> {
        pointer::parse(&self.json_pointer).unwrap_or_default()
    }

    /// `{"jsonPointer": …, "required": …}`.
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        map.insert(
            "jsonPointer".to_owned(),
            Value::String(self.json_pointer.clone()),
        );
        map.insert("required".to_owned(), Value::Bool(self.required));
        Value::Object(map)
    }
}

/// The schema version in force from a stream position on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boundary {
    /// The raw record number (the stream's next offset when the version was installed).
    pub offset: u64,
    pub version: u32,
}

/// A stream's schema registry (0.1.11 document, spec §2.2 of the 0.1.11 notes).
///
/// `schemas`, `search` and `lenses` are kept exactly as posted (key order included; the
/// stored lenses carry filled defaults). Lenses are compiled once, when the registry is
/// built; a stored lens that does not compile is reported when a read needs it.
#[derive(Clone)]
pub struct Registry {
    pub(crate) schema: String,
    pub(crate) current_version: u32,
    pub(crate) routing_key: Option<RoutingKey>,
    pub(crate) search: Option<Value>,
    pub(crate) boundaries: Vec<Boundary>,
    pub(crate) schemas: Map<String, Value>,
    pub(crate) lenses: Map<String, Value>,
    compiled: Arc<BTreeMap<u32, Result<Lens, String>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("schema", &self.schema)
            .field("current_version", &self.current_version)
            .field("routing_key", &self.routing_key)
            .field("search", &self.search)
            .field("boundaries", &self.boundaries)
            .field("schemas", &self.schemas)
            .field("lenses", &self.lenses)
            .finish()
    }
}

impl PartialEq for Registry {
    fn eq(&self, other: &Registry) -> bool {
        self.schema == other.schema
            && self.current_version == other.current_version
            && self.routing_key == other.routing_key
            && self.search == other.search
            && self.boundaries == other.boundaries
            && self.schemas == other.schemas
            && self.lenses == other.lenses
    }
}

/// A canonical decimal version key (`"1"`, not `"01"`).
fn version_key(key: &str) -> Option<u32> {
    let v: u32 = key.parse().ok()?;
    (v.to_string() == key).then_some(v)
}

fn compile_lenses(lenses: &Map<String, Value>) -> BTreeMap<u32, Result<Lens, String>> {
    lenses
        .iter()
        .filter_map(|(k, v)| version_key(k).map(|from| (from, Lens::from_value(v))))
        .collect()
}

/// A JSON number that is a non-negative integer (JS-style: `3.0` counts).
fn as_index(v: &Value) -> Option<u64> {
    let Value::Number(n) = v else { return None };
    if let Some(u) = n.as_u64() {
        return Some(u);
    }
    let f = n.as_f64()?;
    // Exact below 2^53, where every stored offset lives.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let ok = (f >= 0.0 && f.trunc() == f && f <= 9_007_199_254_740_991.0).then_some(f as u64);
    ok
}

/// Parses `{jsonPointer, required}` (or `null`, meaning none) with the original's
/// messages; `path` names the field (`routingKey`). With `legacy` (registries written by
/// 0.1.0–0.1.2, which stored a posted routing key object as is), a missing `required`
/// means `true` and other keys are ignored.
pub(crate) fn parse_routing_key(
    raw: &Value,
    path: &str,
    legacy: bool,
) -> Result<Option<RoutingKey>, String> {
    let map = match raw {
        Value::Null => return Ok(None),
        Value::Object(map) => map,
        _ => return Err(format!("{path} must be an object or null")),
    };
    if let Some(key) = map.keys().find(|k| *k != "jsonPointer" && *k != "required") {
        if !legacy {
            return Err(format!("{path}.{key} is not supported"));
        }
    }
    let Some(Value::String(json_pointer)) = map.get("jsonPointer") else {
        return Err(format!("{path}.jsonPointer must be a string"));
    };
    pointer::parse(json_pointer).map_err(|e| e.to_string())?;
    let required = match map.get("required") {
        Some(Value::Bool(b)) => *b,
        None if legacy => true,
        _ => return Err(format!("{path}.required must be boolean")),
    };
    Ok(Some(RoutingKey {
        json_pointer: json_pointer.clone(),
        required,
    }))
}

impl Registry {
    pub(crate) fn build(
        schema: String,
        current_version: u32,
        routing_key: Option<RoutingKey>,
        search: Option<Value>,
        boundaries: Vec<Boundary>,
        schemas: Map<String, Value>,
        lenses: Map<String, Value>,
    ) -> Registry {
        let compiled = Arc::new(compile_lenses(&lenses));
        Registry {
            schema,
            current_version,
            routing_key,
            search,
            boundaries,
            schemas,
            lenses,
            compiled,
        }
    }

    /// The implicit registry of a stream that has none: version 0, nothing installed.
    pub fn default_for(stream: &str) -> Registry {
        Registry::build(
            stream.to_owned(),
            0,
            None,
            None,
            Vec::new(),
            Map::new(),
            Map::new(),
        )
    }

    /// Loads a stored registry with 0.1.11's strict loader: a JSON object with only the
    /// keys `apiVersion`, `schema`, `currentVersion`, `routingKey`, `search`,
    /// `boundaries`, `schemas`, `lenses` (another key → `registry.<key> is not supported`);
    /// `apiVersion` must be this registry's; `schema` a non-empty string; `routingKey` as
    /// in an update; `search` an object or `null` (its content is kept as is, not
    /// re-validated); `boundaries` entries `{offset, version}` of non-negative integers.
    /// Like the original, a missing `currentVersion`, `boundaries`, `schemas` or `lenses`
    /// reads as 0 / empty.
    pub fn parse(bytes: &[u8]) -> Result<Registry, String> {
        let (registry, interpreter) = parse_any(bytes, false)?;
        debug_assert!(interpreter.is_none());
        Ok(registry)
    }

    /// Like [`Registry::parse`], but also accepts a registry written by 0.1.0–0.1.2, whose
    /// `interpreter` key (the old touch configuration, moved to `/_profile` in 0.1.3) is
    /// returned separately (`None` when absent or `null`) so that the caller can migrate it.
    /// 0.1.11 cannot read such registries at all; we must, to open old databases.
    pub fn parse_legacy(bytes: &[u8]) -> Result<(Registry, Option<Value>), String> {
        parse_any(bytes, true)
    }

    /// The registry document as stored and returned by `GET /_schema`. Top-level key
    /// order: `apiVersion`, `schema`, `currentVersion`, `routingKey`?, `search`?,
    /// `boundaries`, `schemas`, `lenses`; `schemas`, `search` and `lenses` verbatim.
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        map.insert(
            "apiVersion".to_owned(),
            Value::String(REGISTRY_API_VERSION.to_owned()),
        );
        map.insert("schema".to_owned(), Value::String(self.schema.clone()));
        map.insert(
            "currentVersion".to_owned(),
            Value::from(self.current_version),
        );
        if let Some(rk) = &self.routing_key {
            map.insert("routingKey".to_owned(), rk.to_value());
        }
        if let Some(search) = &self.search {
            map.insert("search".to_owned(), search.clone());
        }
        let boundaries = self
            .boundaries
            .iter()
            .map(|b| {
                let mut entry = Map::new();
                entry.insert("offset".to_owned(), Value::from(b.offset));
                entry.insert("version".to_owned(), Value::from(b.version));
                Value::Object(entry)
            })
            .collect();
        map.insert("boundaries".to_owned(), Value::Array(boundaries));
        map.insert("schemas".to_owned(), Value::Object(self.schemas.clone()));
        map.insert("lenses".to_owned(), Value::Object(self.lenses.clone()));
        Value::Object(map)
    }

    /// [`Registry::to_value`] serialized (compact JSON).
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a Value cannot fail (all keys are strings).
        serde_json::to_vec(&self.to_value()).unwrap_or_default()
    }

    /// The logical schema name (the stream name).
    pub fn schema_name(&self) -> &str {
        &self.schema
    }

    /// The installed version (0 = none).
    pub fn current_version(&self) -> u32 {
        self.current_version
    }

    /// The routing key, if any.
    pub fn routing_key(&self) -> Option<&RoutingKey> {
        self.routing_key.as_ref()
    }

    /// The search configuration, exactly as posted.
    pub fn search(&self) -> Option<&Value> {
        self.search.as_ref()
    }

    /// The version boundaries, in install order.
    pub fn boundaries(&self) -> &[Boundary] {
        &self.boundaries
    }

    /// Every installed schema, keyed by version (`"1"`, `"2"`, …).
    pub fn schemas(&self) -> &Map<String, Value> {
        &self.schemas
    }

    /// The stored lenses (defaults filled), keyed by their source version.
    pub fn lenses(&self) -> &Map<String, Value> {
        &self.lenses
    }

    /// The schema of `version`, if installed.
    pub fn schema_for(&self, version: u32) -> Option<&Value> {
        self.schemas.get(&version.to_string())
    }

    /// The schema appends are validated against (`None` before the first install).
    pub fn current_schema(&self) -> Option<&Value> {
        if self.current_version == 0 {
            return None;
        }
        self.schema_for(self.current_version)
    }

    /// The schema version of the record at `position`: the last boundary whose offset is
    /// ≤ `position` (boundaries are in offset order); 0 when there is none.
    pub fn version_at(&self, position: u64) -> u32 {
        self.boundaries
            .iter()
            .take_while(|b| b.offset <= position)
            .last()
            .map_or(0, |b| b.version)
    }

    /// The compiled lenses `from → … → currentVersion`. Errors (a server fault, 500 in
    /// the original): `missing lens v<N>->v<N+1>`, or the stored lens's validation error.
    pub fn lens_chain(&self, from: u32) -> Result<Vec<&Lens>, String> {
        (from..self.current_version)
            .map(|v| match self.compiled.get(&v) {
                Some(Ok(lens)) => Ok(lens),
                Some(Err(e)) => Err(e.clone()),
                None => Err(format!("missing lens v{v}->v{}", u64::from(v) + 1)),
            })
            .collect()
    }

    /// Promotes a record read at `position` to the current version (format=json reads):
    /// records of older versions go through the lens chain; others are returned as is.
    /// Callers that map errors to statuses as the original did use [`Registry::lens_chain`]
    /// (500) and [`crate::lens::promote`] (400, the lens's message) instead.
    pub fn promote(&self, position: u64, record: Value) -> Result<Value, String> {
        if self.current_version == 0 {
            return Ok(record);
        }
        let version = self.version_at(position);
        if version >= self.current_version {
            return Ok(record);
        }
        let chain = self.lens_chain(version)?;
        lens::promote(&chain, record)
    }
}

fn parse_any(bytes: &[u8], legacy: bool) -> Result<(Registry, Option<Value>), String> {
    let raw: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("invalid schema registry: {e}"))?;
    let Value::Object(map) = raw else {
        return Err("invalid schema registry".to_owned());
    };
    let allowed = |k: &str| REGISTRY_KEYS.contains(&k) || (legacy && k == "interpreter");
    if let Some(key) = map.keys().find(|k| !allowed(k)) {
        return Err(format!("registry.{key} is not supported"));
    }
    if map.get("apiVersion").and_then(Value::as_str) != Some(REGISTRY_API_VERSION) {
        return Err("invalid registry apiVersion".to_owned());
    }
    let schema = match map.get("schema") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => return Err("invalid schema registry: schema must be a non-empty string".to_owned()),
    };
    let current_version = match map.get("currentVersion") {
        None | Some(Value::Null) => 0,
        Some(v) => as_index(v)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or("invalid registry currentVersion")?,
    };
    let routing_key = match map.get("routingKey") {
        None => None,
        Some(raw) => parse_routing_key(raw, "routingKey", legacy)?,
    };
    let search = match map.get("search") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => return Err("search must be an object".to_owned()),
    };
    let mut boundaries = Vec::new();
    if let Some(Value::Array(items)) = map.get("boundaries") {
        for item in items {
            let entry = item
                .as_object()
                .and_then(|b| {
                    let offset = as_index(b.get("offset")?)?;
                    let version = u32::try_from(as_index(b.get("version")?)?).ok()?;
                    Some(Boundary { offset, version })
                })
                .ok_or("invalid boundary entry")?;
            boundaries.push(entry);
        }
    }
    let object = |key: &str| match map.get(key) {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    let interpreter = match map.get("interpreter") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.clone()),
    };
    let registry = Registry::build(
        schema,
        current_version,
        routing_key,
        search,
        boundaries,
        object("schemas"),
        object("lenses"),
    );
    Ok((registry, interpreter))
}
