//! `POST /v1/stream/{name}/_schema`: how an update body changes a registry (0.1.11 notes
//! §2.1; the original's `parseSchemaUpdateResult`, `updateRegistryResult`,
//! `updateRoutingKeyResult`, `updateSearchResult` and the dispatch in `app_core.ts`).

use serde_json::{Map, Value};

use super::registry::{parse_routing_key, Boundary, Registry, RoutingKey, REGISTRY_API_VERSION};
use super::validate::CompiledSchema;
use crate::lens::{fill_defaults, js, prove, Lens};

/// JS `Number.MAX_SAFE_INTEGER`: boundary offsets are stored as JSON numbers.
pub const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_991;

/// Keys an update body may have.
const UPDATE_KEYS: &[&str] = &["apiVersion", "schema", "lens", "routingKey", "search"];

/// Why an update was refused: the HTTP status class and the exact message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// 400 `bad_request`.
    #[error("{0}")]
    BadRequest(String),
    /// 409 `conflict`: the lens's `from`/`to` do not continue the current version.
    #[error("{0}")]
    Conflict(String),
}

impl SchemaError {
    /// The HTTP status: 400 or 409.
    pub fn status(&self) -> u16 {
        match self {
            SchemaError::BadRequest(_) => 400,
            SchemaError::Conflict(_) => 409,
        }
    }

    /// The error envelope's `code`: `bad_request` or `conflict`.
    pub fn code(&self) -> &'static str {
        match self {
            SchemaError::BadRequest(_) => "bad_request",
            SchemaError::Conflict(_) => "conflict",
        }
    }

    /// The message, exactly as the original words it.
    pub fn message(&self) -> &str {
        match self {
            SchemaError::BadRequest(m) | SchemaError::Conflict(m) => m,
        }
    }
}

fn bad(message: impl Into<String>) -> SchemaError {
    SchemaError::BadRequest(message.into())
}

/// A parsed update body. For `routing_key` and `search`, the outer `Option` is whether the
/// key was present, the inner one whether it was `null` (clear).
struct Update {
    schema: Option<Value>,
    lens: Option<Value>,
    routing_key: Option<Option<RoutingKey>>,
    search: Option<Option<Value>>,
}

fn parse_update(
    body: &[u8],
    validate_search: &dyn Fn(&Value) -> Result<(), String>,
) -> Result<Update, SchemaError> {
    let raw: Value =
        serde_json::from_slice(body).map_err(|_| bad("schema update must be valid JSON"))?;
    let Value::Object(map) = raw else {
        return Err(bad("schema update must be a JSON object"));
    };
    if let Some(key) = map.keys().find(|k| !UPDATE_KEYS.contains(&k.as_str())) {
        return Err(bad(format!("schemaUpdate.{key} is not supported")));
    }
    if let Some(v) = map.get("apiVersion") {
        if v.as_str() != Some(REGISTRY_API_VERSION) {
            return Err(bad("invalid schema apiVersion"));
        }
    }
    let has = |k: &str| map.contains_key(k);
    if !has("schema") && !has("routingKey") && !has("search") {
        return Err(bad(
            "schema update must include schema, routingKey, or search",
        ));
    }
    if !has("schema") && has("lens") {
        return Err(bad("schema update lens requires schema"));
    }
    let routing_key = match map.get("routingKey") {
        None => None,
        Some(raw) => Some(parse_routing_key(raw, "routingKey", false).map_err(bad)?),
    };
    if has("schema") && matches!(routing_key, Some(None)) {
        return Err(bad(
            "schema update routingKey must be an object when schema is provided",
        ));
    }
    let search = match map.get("search") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(config) => {
            validate_search(config).map_err(bad)?;
            Some(Some(config.clone()))
        }
    };
    Ok(Update {
        schema: map.get("schema").cloned(),
        lens: map.get("lens").cloned(),
        routing_key,
        search,
    })
}

/// Applies a `_schema` update body to `reg` and returns the new registry (nothing is
/// stored here). `next_offset` is the stream's next raw record number; `validate_search`
/// checks a non-null `search` configuration (the search module's validator).
///
/// Body rules, in order (400 unless noted):
/// - JSON (`schema update must be valid JSON`), an object (`schema update must be a JSON
///   object`), only `apiVersion`, `schema`, `lens`, `routingKey`, `search`
///   (`schemaUpdate.<key> is not supported`: registry-shaped bodies and the old routing-key
///   aliases are refused), `apiVersion` if present = `durable.streams/schema-registry/v1`
///   (`invalid schema apiVersion`), at least one of schema/routingKey/search (`schema update
///   must include schema, routingKey, or search`), no `lens` without `schema` (`schema
///   update lens requires schema`).
/// - `routingKey`: `null` or exactly `{jsonPointer: <RFC 6901 string>, required: <bool>}`
///   (`routingKey must be an object or null`, `routingKey.<key> is not supported`,
///   `routingKey.jsonPointer must be a string`, `invalid json pointer`,
///   `routingKey.required must be boolean`); `null` with a schema is refused (`schema
///   update routingKey must be an object when schema is provided`).
/// - `search`: `null` (clear) or what `validate_search` accepts; kept exactly as posted.
///
/// Dispatch:
/// - `routingKey` alone: set or clear it; no version change, any stream state.
/// - `search` alone: set it (needs an installed version: `search config requires an
///   installed schema version`) or clear it (`null`, always allowed).
/// - `routingKey` and `search` without `schema`: `missing schema`.
/// - with `schema`: a version step. The schema must contain no `$ref` (`external $ref is
///   not supported`) and compile. `search` is replaced when given (`null` clears it).
///   - First install (current version 0): the stream must be empty (`first schema requires
///     empty stream`); an optional lens must be valid and 0→1 (409 `lens version
///     mismatch`) and is not stored. Result: version 1, boundary `{offset: 0, version: 1}`.
///     **Decision**: a routing key set earlier by a routing-key-only update is **kept**
///     when the body omits `routingKey` (the original silently dropped it; every later
///     version step keeps it too, so this makes the two consistent).
///   - Version N ≥ 1: a lens is required (`lens required`), must be valid (`invalid lens:
///     …`), go N→N+1 (409 `lens version mismatch`), name this stream (`lens schema
///     mismatch`), pass the proof against schema N (its message), and get its defaults
///     filled; `next_offset` must be ≤ 2^53−1 (`offset exceeds MAX_SAFE_INTEGER`). Result:
///     version N+1, boundary `{offset: next_offset, version: N+1}`, `lenses["N"]` = the
///     filled lens. The routing key is replaced when given, else kept.
///
/// Re-posting the first schema once version 1 exists therefore fails with `lens required`:
/// clients compare with `GET /_schema` first (as `@prisma/dev` does).
pub fn apply_update(
    reg: &Registry,
    body: &[u8],
    next_offset: u64,
    validate_search: &dyn Fn(&Value) -> Result<(), String>,
) -> Result<Registry, SchemaError> {
    let update = parse_update(body, validate_search)?;
    let Some(schema) = update.schema else {
        return match (update.routing_key, update.search) {
            (Some(routing_key), None) => {
                let mut next = reg.clone();
                next.routing_key = routing_key;
                Ok(next)
            }
            (None, Some(search)) => {
                if search.is_some() && (reg.current_version == 0 || reg.boundaries.is_empty()) {
                    return Err(bad("search config requires an installed schema version"));
                }
                let mut next = reg.clone();
                next.search = search;
                Ok(next)
            }
            _ => Err(bad("missing schema")),
        };
    };
    CompiledSchema::compile(&schema).map_err(bad)?;
    let search = match update.search {
        Some(search) => search,
        None => reg.search.clone(),
    };
    let routing_key = match update.routing_key {
        Some(Some(rk)) => Some(rk),
        _ => reg.routing_key.clone(),
    };
    // JS truthiness: `lens: null` (or false, 0, "") counts as no lens.
    let lens_value = update.lens.filter(js::truthy);
    let current = reg.current_version;

    if current == 0 {
        if next_offset != 0 {
            return Err(bad("first schema requires empty stream"));
        }
        if let Some(raw) = &lens_value {
            let lens = Lens::from_value(raw).map_err(bad)?;
            if lens.from() != 0 || lens.to() != 1 {
                return Err(SchemaError::Conflict("lens version mismatch".to_owned()));
            }
        }
        let mut schemas = reg.schemas.clone();
        schemas.insert("1".to_owned(), schema);
        return Ok(Registry::build(
            reg.schema.clone(),
            1,
            routing_key,
            search,
            vec![Boundary {
                offset: 0,
                version: 1,
            }],
            schemas,
            reg.lenses.clone(),
        ));
    }

    let raw_lens = lens_value.ok_or_else(|| bad("lens required"))?;
    let lens = Lens::from_value(&raw_lens).map_err(bad)?;
    if lens.from() != u64::from(current) || lens.to() != u64::from(current) + 1 {
        return Err(SchemaError::Conflict("lens version mismatch".to_owned()));
    }
    if lens.schema() != reg.schema {
        return Err(bad("lens schema mismatch"));
    }
    let old_schema = reg
        .schema_for(current)
        .filter(|s| js::truthy(s))
        .ok_or_else(|| bad("missing current schema"))?;
    prove(&lens, old_schema, &schema).map_err(bad)?;
    let filled = fill_defaults(&raw_lens, &schema).map_err(bad)?;
    if next_offset > MAX_SAFE_INTEGER {
        return Err(bad("offset exceeds MAX_SAFE_INTEGER"));
    }
    let next_version = current
        .checked_add(1)
        .ok_or_else(|| bad("schema version overflow"))?;
    let mut boundaries = reg.boundaries.clone();
    boundaries.push(Boundary {
        offset: next_offset,
        version: next_version,
    });
    let mut schemas: Map<String, Value> = reg.schemas.clone();
    schemas.insert(next_version.to_string(), schema);
    let mut lenses = reg.lenses.clone();
    lenses.insert(current.to_string(), filled);
    Ok(Registry::build(
        reg.schema.clone(),
        next_version,
        routing_key,
        search,
        boundaries,
        schemas,
        lenses,
    ))
}
