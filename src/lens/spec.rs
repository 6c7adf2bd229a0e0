//! The `durable.lens/v1` document: its types and the validation the original performs
//! with its embedded JSON Schema (`src/schema/lens_schema.ts`), written out by hand.

use serde_json::{Map, Value};

use super::js;
use super::pointer;

/// The only lens `apiVersion`.
pub const LENS_API_VERSION: &str = "durable.lens/v1";

/// A JSON type name as lenses and the proof use them (`integer` is an integral number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonType {
    Null,
    Boolean,
    Integer,
    Number,
    String,
    Array,
    Object,
}

impl JsonType {
    /// Parses a type name (`"string"`, `"number"`, `"integer"`, …).
    pub fn parse(name: &str) -> Option<JsonType> {
        Some(match name {
            "null" => JsonType::Null,
            "boolean" => JsonType::Boolean,
            "integer" => JsonType::Integer,
            "number" => JsonType::Number,
            "string" => JsonType::String,
            "array" => JsonType::Array,
            "object" => JsonType::Object,
            _ => return None,
        })
    }

    /// The type name.
    pub fn name(self) -> &'static str {
        match self {
            JsonType::Null => "null",
            JsonType::Boolean => "boolean",
            JsonType::Integer => "integer",
            JsonType::Number => "number",
            JsonType::String => "string",
            JsonType::Array => "array",
            JsonType::Object => "object",
        }
    }

    /// The type of a value; numbers with an integral value are `integer`.
    pub fn of(value: &Value) -> JsonType {
        match value {
            Value::Null => JsonType::Null,
            Value::Bool(_) => JsonType::Boolean,
            Value::Number(n) if js::is_integer(n) => JsonType::Integer,
            Value::Number(_) => JsonType::Number,
            Value::String(_) => JsonType::String,
            Value::Array(_) => JsonType::Array,
            Value::Object(_) => JsonType::Object,
        }
    }
}

/// A `convert` transform.
#[derive(Debug, Clone, PartialEq)]
pub enum Transform {
    /// A lookup table keyed by the JS `String()` of the input; `default` (which may be
    /// `null`) is used on a miss when present.
    Map {
        map: Map<String, Value>,
        default: Option<Value>,
    },
    /// A named built-in (unknown names fail when applied, not when installed).
    Builtin(String),
}

/// One lens operation. Paths are parsed pointer segments.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Rename {
        from: Vec<String>,
        to: Vec<String>,
    },
    Copy {
        from: Vec<String>,
        to: Vec<String>,
    },
    /// `default` is `None` until default filling (§3.8) supplies it.
    Add {
        path: Vec<String>,
        schema: Value,
        default: Option<Value>,
    },
    Remove {
        path: Vec<String>,
        schema: Value,
        default: Option<Value>,
    },
    Hoist {
        host: Vec<String>,
        name: String,
        to: Vec<String>,
        remove_from_host: bool,
    },
    Plunge {
        from: Vec<String>,
        host: Vec<String>,
        name: String,
        create_host: bool,
        remove_from_source: bool,
    },
    Wrap {
        path: Vec<String>,
    },
    Head {
        path: Vec<String>,
    },
    Convert {
        path: Vec<String>,
        from_type: JsonType,
        to_type: JsonType,
        forward: Transform,
        backward: Transform,
    },
    In {
        path: Vec<String>,
        ops: Vec<Op>,
    },
    Map {
        path: Vec<String>,
        ops: Vec<Op>,
    },
}

/// A validated `durable.lens/v1` lens from version `from` to version `to`.
#[derive(Debug, Clone, PartialEq)]
pub struct Lens {
    pub(crate) schema: String,
    pub(crate) from: u64,
    pub(crate) to: u64,
    pub(crate) description: Option<String>,
    pub(crate) ops: Vec<Op>,
}

const OP_NAMES: &str = "rename, copy, add, remove, hoist, plunge, wrap, head, convert, in, map";

impl Lens {
    /// Validates a lens document exactly as the original's lens JSON Schema does:
    /// `apiVersion` = `durable.lens/v1`, `schema` a non-empty string, `from`/`to` integers
    /// ≥ 0, optional string `description`, `ops` a non-empty array of operations, each with
    /// its required and optional fields and nothing else; pointers must be RFC 6901.
    /// Errors read `invalid lens: data/<path> <problem>` (`data` is the document, as in the
    /// original's Ajv messages).
    pub fn from_value(value: &Value) -> Result<Lens, String> {
        parse_lens(value).map_err(|e| format!("invalid lens: {e}"))
    }

    /// The logical schema name (the stream name).
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The source version.
    pub fn from(&self) -> u64 {
        self.from
    }

    /// The target version.
    pub fn to(&self) -> u64 {
        self.to
    }

    /// The optional description.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The operations, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }
}

/// A location inside the lens document, for messages (`data/ops/0/from`).
#[derive(Clone)]
struct Path(String);

impl Path {
    fn root() -> Path {
        Path("data".to_owned())
    }

    fn key(&self, key: &str) -> Path {
        Path(format!("{}{}", self.0, pointer::format(&[key])))
    }

    fn index(&self, i: usize) -> Path {
        Path(format!("{}/{i}", self.0))
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

type Check<T> = Result<T, String>;

/// An object with exactly the allowed keys and all required ones.
fn object<'a>(
    value: &'a Value,
    at: &Path,
    required: &[&str],
    optional: &[&str],
) -> Check<&'a Map<String, Value>> {
    let Value::Object(map) = value else {
        return Err(format!("{at} must be object"));
    };
    for key in map.keys() {
        if !required.contains(&key.as_str()) && !optional.contains(&key.as_str()) {
            return Err(format!("{at} must NOT have additional property '{key}'"));
        }
    }
    for key in required {
        if !map.contains_key(*key) {
            return Err(format!("{at} must have required property '{key}'"));
        }
    }
    Ok(map)
}

fn string<'a>(map: &'a Map<String, Value>, key: &str, at: &Path) -> Check<&'a str> {
    match map.get(key) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(format!("{} must be string", at.key(key))),
    }
}

fn non_empty_string<'a>(map: &'a Map<String, Value>, key: &str, at: &Path) -> Check<&'a str> {
    let s = string(map, key, at)?;
    if s.is_empty() {
        return Err(format!(
            "{} must NOT have fewer than 1 characters",
            at.key(key)
        ));
    }
    Ok(s)
}

fn optional_string(map: &Map<String, Value>, key: &str, at: &Path) -> Check<Option<String>> {
    match map.get(key) {
        None => Ok(None),
        Some(_) => string(map, key, at).map(|s| Some(s.to_owned())),
    }
}

fn version(map: &Map<String, Value>, key: &str, at: &Path) -> Check<u64> {
    let at = at.key(key);
    let Some(Value::Number(n)) = map.get(key) else {
        return Err(format!("{at} must be integer"));
    };
    if !js::is_integer(n) {
        return Err(format!("{at} must be integer"));
    }
    if let Some(u) = n.as_u64() {
        return Ok(u);
    }
    let f = js::number_to_f64(n);
    if f < 0.0 {
        return Err(format!("{at} must be >= 0"));
    }
    // An integral double (`4.0`, `-0`, `1e3`): exact when below 2^64.
    if f < 18_446_744_073_709_551_616.0 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        return Ok(f as u64);
    }
    Err(format!("{at} is too large"))
}

fn pointer_field(map: &Map<String, Value>, key: &str, at: &Path) -> Check<Vec<String>> {
    let at = at.key(key);
    let Some(Value::String(s)) = map.get(key) else {
        return Err(format!("{at} must be string"));
    };
    pointer::parse(s).map_err(|_| format!("{at} must be a JSON pointer (RFC 6901), got {s:?}"))
}

fn optional_bool(map: &Map<String, Value>, key: &str, at: &Path, default: bool) -> Check<bool> {
    match map.get(key) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("{} must be boolean", at.key(key))),
    }
}

fn enum_field(map: &Map<String, Value>, key: &str, at: &Path, allowed: &[&str]) -> Check<()> {
    match map.get(key) {
        None => Ok(()),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
        Some(_) => Err(format!(
            "{} must be equal to one of the allowed values: {}",
            at.key(key),
            allowed.join(", ")
        )),
    }
}

fn embedded_schema(map: &Map<String, Value>, key: &str, at: &Path) -> Check<Value> {
    match map.get(key) {
        Some(v @ (Value::Object(_) | Value::Bool(_))) => Ok(v.clone()),
        _ => Err(format!(
            "{} must be a JSON Schema (object or boolean)",
            at.key(key)
        )),
    }
}

fn type_field(map: &Map<String, Value>, key: &str, at: &Path) -> Check<JsonType> {
    match map.get(key) {
        Some(Value::String(s)) => JsonType::parse(s),
        _ => None,
    }
    .ok_or_else(|| {
        format!(
            "{} must be one of string, number, integer, boolean, null, object, array",
            at.key(key)
        )
    })
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

fn transform(map: &Map<String, Value>, key: &str, at: &Path) -> Check<Transform> {
    let at = at.key(key);
    let value = map.get(key).unwrap_or(&Value::Null);
    let shape_error =
        || format!("{at} must be either {{\"map\": {{…}}, \"default\"?}} or {{\"builtin\": name}}");
    let Value::Object(t) = value else {
        return Err(shape_error());
    };
    match (t.contains_key("map"), t.contains_key("builtin")) {
        (true, false) => {
            let t = object(value, &at, &["map"], &["default"])?;
            let Some(Value::Object(table)) = t.get("map") else {
                return Err(format!("{} must be object", at.key("map")));
            };
            if let Some((k, _)) = table.iter().find(|(_, v)| !is_scalar(v)) {
                return Err(format!("{} must be a JSON scalar", at.key("map").key(k)));
            }
            let default = t.get("default").cloned();
            if default.as_ref().is_some_and(|d| !is_scalar(d)) {
                return Err(format!("{} must be a JSON scalar", at.key("default")));
            }
            Ok(Transform::Map {
                map: table.clone(),
                default,
            })
        }
        (false, true) => {
            let t = object(value, &at, &["builtin"], &[])?;
            Ok(Transform::Builtin(
                non_empty_string(t, "builtin", &at)?.to_owned(),
            ))
        }
        _ => Err(shape_error()),
    }
}

fn parse_lens(value: &Value) -> Check<Lens> {
    let at = Path::root();
    let map = object(
        value,
        &at,
        &["apiVersion", "schema", "from", "to", "ops"],
        &["description"],
    )?;
    if string(map, "apiVersion", &at)? != LENS_API_VERSION {
        return Err(format!(
            "{} must be equal to constant \"{LENS_API_VERSION}\"",
            at.key("apiVersion")
        ));
    }
    let schema = non_empty_string(map, "schema", &at)?.to_owned();
    let from = version(map, "from", &at)?;
    let to = version(map, "to", &at)?;
    let description = optional_string(map, "description", &at)?;
    let ops = parse_ops(map, &at)?;
    Ok(Lens {
        schema,
        from,
        to,
        description,
        ops,
    })
}

fn parse_ops(map: &Map<String, Value>, at: &Path) -> Check<Vec<Op>> {
    let at = at.key("ops");
    let Some(Value::Array(items)) = map.get("ops") else {
        return Err(format!("{at} must be array"));
    };
    if items.is_empty() {
        return Err(format!("{at} must NOT have fewer than 1 items"));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_op(item, &at.index(i)))
        .collect()
}

fn parse_op(value: &Value, at: &Path) -> Check<Op> {
    let kind = match value {
        Value::Object(map) => match map.get("op") {
            Some(Value::String(s)) => s.as_str(),
            _ => "",
        },
        _ => return Err(format!("{at} must be object")),
    };
    let op = |required: &[&str], optional: &[&str]| object(value, at, required, optional);
    Ok(match kind {
        "rename" | "copy" => {
            let m = op(&["op", "from", "to"], &[])?;
            let (from, to) = (pointer_field(m, "from", at)?, pointer_field(m, "to", at)?);
            if kind == "rename" {
                Op::Rename { from, to }
            } else {
                Op::Copy { from, to }
            }
        }
        "add" | "remove" => {
            let m = op(&["op", "path", "schema"], &["default"])?;
            let path = pointer_field(m, "path", at)?;
            let schema = embedded_schema(m, "schema", at)?;
            let default = m.get("default").cloned();
            if kind == "add" {
                Op::Add {
                    path,
                    schema,
                    default,
                }
            } else {
                Op::Remove {
                    path,
                    schema,
                    default,
                }
            }
        }
        "hoist" => {
            let m = op(&["op", "host", "name", "to"], &["removeFromHost"])?;
            Op::Hoist {
                host: pointer_field(m, "host", at)?,
                name: non_empty_string(m, "name", at)?.to_owned(),
                to: pointer_field(m, "to", at)?,
                remove_from_host: optional_bool(m, "removeFromHost", at, true)?,
            }
        }
        "plunge" => {
            let m = op(
                &["op", "from", "host", "name"],
                &["createHost", "removeFromSource"],
            )?;
            Op::Plunge {
                from: pointer_field(m, "from", at)?,
                host: pointer_field(m, "host", at)?,
                name: non_empty_string(m, "name", at)?.to_owned(),
                create_host: optional_bool(m, "createHost", at, true)?,
                remove_from_source: optional_bool(m, "removeFromSource", at, true)?,
            }
        }
        "wrap" => {
            let m = op(&["op", "path", "mode"], &["reverseMode"])?;
            let path = pointer_field(m, "path", at)?;
            if !matches!(m.get("mode"), Some(Value::String(s)) if s == "singleton") {
                return Err(format!(
                    "{} must be equal to one of the allowed values: singleton",
                    at.key("mode")
                ));
            }
            enum_field(m, "reverseMode", at, &["first"])?;
            Op::Wrap { path }
        }
        "head" => {
            let m = op(&["op", "path"], &["reverseMode"])?;
            let path = pointer_field(m, "path", at)?;
            enum_field(m, "reverseMode", at, &["singleton"])?;
            Op::Head { path }
        }
        "convert" => {
            let m = op(
                &["op", "path", "fromType", "toType", "forward", "backward"],
                &[],
            )?;
            Op::Convert {
                path: pointer_field(m, "path", at)?,
                from_type: type_field(m, "fromType", at)?,
                to_type: type_field(m, "toType", at)?,
                forward: transform(m, "forward", at)?,
                backward: transform(m, "backward", at)?,
            }
        }
        "in" | "map" => {
            let m = op(&["op", "path", "ops"], &[])?;
            let path = pointer_field(m, "path", at)?;
            let ops = parse_ops(m, at)?;
            if kind == "in" {
                Op::In { path, ops }
            } else {
                Op::Map { path, ops }
            }
        }
        _ => return Err(format!("{} must be one of {OP_NAMES}", at.key("op"))),
    })
}
