//! JSON Schema validation of appended records.
//!
//! The original compiles each installed schema with Ajv (draft-07 engine, `allErrors`,
//! `strict: false`, `allowUnionTypes`, `validateSchema: false`) and rejects a record with
//! every error message joined by `"; "`. Here the `jsonschema` crate does the work, with
//! draft-07 as the default dialect and all errors collected. Formats: only `date-time` is
//! enforced, with the original's check (its regex plus a real date; see
//! [`crate::lens::is_date_time`]); every other format is an annotation, as in the original,
//! which loaded no format plugin.
//!
//! Differences worth knowing: the crate checks a schema against its meta-schema when
//! compiling (Ajv was told not to), so a few malformed schemas Ajv would have taken are
//! refused at install; error texts are Ajv's `message` (`must be integer`, without the
//! instance location, as the original answers them) for the common keywords, but the
//! order of several errors may differ.
//!
//! Every compile first refuses any `$ref` key anywhere in the schema (400
//! `external $ref is not supported`, as the original), so no reference is ever resolved.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{Draft, ValidationError, Validator};
use serde_json::Value;

/// Formats the `jsonschema` crate knows and would check when format validation is on; all
/// but `date-time` are turned into annotations (always valid).
const IGNORED_FORMATS: &[&str] = &[
    "date",
    "duration",
    "email",
    "hostname",
    "idn-email",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "iri",
    "iri-reference",
    "json-pointer",
    "regex",
    "relative-json-pointer",
    "time",
    "uri",
    "uri-reference",
    "uri-template",
    "uuid",
];

/// The message for a schema containing `$ref`.
pub const REF_NOT_SUPPORTED: &str = "external $ref is not supported";

/// Fails if any object anywhere in `schema` has a `$ref` key (even an internal `#/…` one,
/// or a property literally named `$ref`: the original's walk is that blunt).
pub fn ensure_no_ref(schema: &Value) -> Result<(), String> {
    let mut stack = vec![schema];
    while let Some(cur) = stack.pop() {
        match cur {
            Value::Object(map) => {
                if map.contains_key("$ref") {
                    return Err(REF_NOT_SUPPORTED.to_owned());
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    Ok(())
}

/// A compiled JSON Schema for record validation.
pub struct CompiledSchema {
    validator: Validator,
}

impl std::fmt::Debug for CompiledSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CompiledSchema")
    }
}

impl CompiledSchema {
    /// Compiles `schema` (an object or a boolean): no `$ref` anywhere, and it must compile
    /// (draft-07 unless the schema's `$schema` names another draft).
    pub fn compile(schema: &Value) -> Result<CompiledSchema, String> {
        if !matches!(schema, Value::Object(_) | Value::Bool(_)) {
            return Err("schema must be object or boolean".to_owned());
        }
        ensure_no_ref(schema)?;
        let mut options = jsonschema::options()
            .with_draft(Draft::Draft7)
            .should_validate_formats(true)
            .should_ignore_unknown_formats(true)
            .with_format("date-time", crate::lens::is_date_time);
        for name in IGNORED_FORMATS {
            options = options.with_format(*name, |_: &str| true);
        }
        let validator = options
            .build(schema)
            .map_err(|e| format!("invalid JSON Schema: {}", message(&e)))?;
        Ok(CompiledSchema { validator })
    }

    /// Checks a record; on failure, every error (Ajv-like text prefixed with the instance
    /// location) joined with `"; "`.
    pub fn validate(&self, instance: &Value) -> Result<(), String> {
        if self.validator.is_valid(instance) {
            return Ok(());
        }
        let messages: Vec<String> = self
            .validator
            .iter_errors(instance)
            .map(|e| message(&e))
            .collect();
        if messages.is_empty() {
            return Err("schema validation failed".to_owned());
        }
        Err(messages.join("; "))
    }
}

/// Ajv's wording for the common keywords, the crate's own for the rest.
fn message(e: &ValidationError<'_>) -> String {
    use ValidationErrorKind as K;
    let text = match e.kind() {
        K::Type { kind } => {
            let mut names: Vec<String> = match kind {
                TypeKind::Single(t) => vec![t.to_string()],
                TypeKind::Multiple(set) => set.iter().map(|t| t.to_string()).collect(),
            };
            names.sort_unstable();
            format!("must be {}", names.join(","))
        }
        K::Required { property } => {
            let name = property
                .as_str()
                .map_or_else(|| property.to_string(), str::to_owned);
            format!("must have required property '{name}'")
        }
        K::AdditionalProperties { .. } => "must NOT have additional properties".to_owned(),
        K::Enum { .. } => "must be equal to one of the allowed values".to_owned(),
        K::Constant { .. } => "must be equal to constant".to_owned(),
        K::Format { format } => format!("must match format \"{format}\""),
        K::Minimum { limit } => format!("must be >= {limit}"),
        K::Maximum { limit } => format!("must be <= {limit}"),
        K::ExclusiveMinimum { limit } => format!("must be > {limit}"),
        K::ExclusiveMaximum { limit } => format!("must be < {limit}"),
        K::MinLength { limit } => format!("must NOT have fewer than {limit} characters"),
        K::MaxLength { limit } => format!("must NOT have more than {limit} characters"),
        K::MinItems { limit } => format!("must NOT have fewer than {limit} items"),
        K::MaxItems { limit } => format!("must NOT have more than {limit} items"),
        K::MinProperties { limit } => format!("must NOT have fewer than {limit} properties"),
        K::MaxProperties { limit } => format!("must NOT have more than {limit} properties"),
        K::Pattern { pattern } => format!("must match pattern \"{pattern}\""),
        K::UniqueItems => "must NOT have duplicate items".to_owned(),
        K::AnyOf { .. } => "must match a schema in anyOf".to_owned(),
        K::OneOfNotValid { .. } | K::OneOfMultipleValid { .. } => {
            "must match exactly one schema in oneOf".to_owned()
        }
        K::Not { .. } => "must NOT be valid".to_owned(),
        K::FalseSchema => "boolean schema is false".to_owned(),
        K::Contains => "must contain at least 1 valid item(s)".to_owned(),
        _ => e.to_string(),
    };
    text
}

/// A bounded cache of compiled schemas keyed by the schema's serialized bytes (the
/// original keyed by the SHA-256 of its JSON text, 256 entries, LRU). When full, the least
/// recently used entry is dropped.
#[derive(Debug)]
pub struct SchemaCache {
    capacity: usize,
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    tick: u64,
    entries: HashMap<Vec<u8>, (Arc<CompiledSchema>, u64)>,
}

impl SchemaCache {
    /// A cache holding at most `capacity` schemas (at least one).
    pub fn new(capacity: usize) -> SchemaCache {
        SchemaCache {
            capacity: capacity.max(1),
            inner: Mutex::new(CacheInner::default()),
        }
    }

    /// The compiled form of `schema`, compiling it on a miss. Compile errors are not cached.
    pub fn get_or_compile(&self, schema: &Value) -> Result<Arc<CompiledSchema>, String> {
        let key = serde_json::to_vec(schema).map_err(|e| e.to_string())?;
        if let Some(found) = self.lookup(&key) {
            return Ok(found);
        }
        // Compile outside the lock: schemas can be large.
        let compiled = Arc::new(CompiledSchema::compile(schema)?);
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.tick += 1;
        let tick = inner.tick;
        if inner.entries.len() >= self.capacity && !inner.entries.contains_key(&key) {
            let oldest = inner
                .entries
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                inner.entries.remove(&oldest);
            }
        }
        inner.entries.insert(key, (Arc::clone(&compiled), tick));
        Ok(compiled)
    }

    fn lookup(&self, key: &[u8]) -> Option<Arc<CompiledSchema>> {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.tick += 1;
        let tick = inner.tick;
        let (compiled, last_used) = inner.entries.get_mut(key)?;
        *last_used = tick;
        Some(Arc::clone(compiled))
    }

    /// How many schemas are cached.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entries
            .len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
