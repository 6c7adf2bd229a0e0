//! The evlog profile: wide request events, normalised on append.
//!
//! Configuration (`profile` of kind `evlog`): `redactKeys` (≤ 64 strings, trimmed,
//! lower-cased, de-duplicated), `correlation` (`requestIdFields`,
//! `traceContextFields`: ≤ 64 trimmed de-duplicated dotted paths; `parseTraceparent`
//! boolean) and `observability.request.tracesStream` (the paired otel-traces stream).
//!
//! On append every record becomes the canonical evlog event: a fixed set of top-level
//! fields (`timestamp`, `level`, `service`, … `redaction`, `context`), with every other
//! input field moved under `context` and sensitive keys replaced by `[REDACTED]`
//! anywhere inside `context`. The routing key is `requestId`, else `traceId`.

use serde_json::{json, Map, Value};

use super::js;

/// Keys always redacted, besides the profile's own.
const DEFAULT_REDACT_KEYS: &[&str] = &[
    "password",
    "token",
    "secret",
    "authorization",
    "cookie",
    "apikey",
];
const REDACTED: &str = "[REDACTED]";
/// Top-level fields of the canonical event; every other input field goes to `context`.
const RESERVED_FIELDS: &[&str] = &[
    "timestamp",
    "level",
    "service",
    "environment",
    "version",
    "region",
    "requestId",
    "traceId",
    "spanId",
    "method",
    "path",
    "status",
    "duration",
    "message",
    "why",
    "fix",
    "link",
    "sampling",
    "redaction",
    "context",
];

/// `correlation` of an evlog profile.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EvlogCorrelation {
    pub request_id_fields: Option<Vec<String>>,
    pub trace_context_fields: Option<Vec<String>>,
    pub parse_traceparent: Option<bool>,
}

/// An evlog profile's configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EvlogProfile {
    pub redact_keys: Option<Vec<String>>,
    pub correlation: Option<EvlogCorrelation>,
    /// `observability.request.tracesStream`.
    pub traces_stream: Option<String>,
}

/// A list of strings: trimmed, non-empty, de-duplicated (by `dedupe_key`), at most
/// `max` items.
fn string_list(
    raw: Option<&Value>,
    path: &str,
    max: usize,
    lowercase: bool,
) -> Result<Option<Vec<String>>, String> {
    let Some(raw) = raw else { return Ok(None) };
    let Value::Array(items) = raw else {
        return Err(format!("{path} must be an array of strings"));
    };
    if items.len() > max {
        return Err(format!("{path} too large (max {max})"));
    }
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let Value::String(s) = item else {
            return Err(format!("{path} must be an array of strings"));
        };
        let mut v = js::trim(s).to_string();
        if lowercase {
            v = v.to_lowercase();
        }
        if v.is_empty() {
            return Err(format!("{path} must not contain empty strings"));
        }
        if !out.contains(&v) {
            out.push(v);
        }
    }
    Ok(Some(out))
}

/// A non-empty trimmed stream name (`…tracesStream`, `…eventsStream`).
pub(super) fn stream_name(raw: Option<&Value>, path: &str) -> Result<Option<String>, String> {
    match raw {
        None => Ok(None),
        Some(Value::String(s)) => {
            let v = js::trim(s);
            if v.is_empty() {
                Err(format!("{path} must not be empty"))
            } else {
                Ok(Some(v.to_string()))
            }
        }
        Some(_) => Err(format!("{path} must be a string")),
    }
}

/// `observability.request.<key>` shared by evlog and otel-traces.
pub(super) fn observability(
    raw: Option<&Value>,
    path: &str,
    key: &str,
) -> Result<Option<String>, String> {
    let Some(raw) = raw else { return Ok(None) };
    let obj = raw
        .as_object()
        .ok_or_else(|| format!("{path} must be an object"))?;
    js::reject_unknown_keys(obj, &["request"], path)?;
    let Some(request) = obj.get("request") else {
        return Ok(None);
    };
    let request_path = format!("{path}.request");
    let request = request
        .as_object()
        .ok_or_else(|| format!("{request_path} must be an object"))?;
    js::reject_unknown_keys(request, &[key], &request_path)?;
    stream_name(request.get(key), &format!("{request_path}.{key}"))
}

impl EvlogProfile {
    /// Validates `raw` (the `profile` object, reported at `path`).
    pub fn parse(raw: &Value, path: &str) -> Result<EvlogProfile, String> {
        let obj = raw
            .as_object()
            .ok_or_else(|| format!("{path} must be an object"))?;
        if obj.get("kind") != Some(&Value::from("evlog")) {
            return Err(format!("{path}.kind must be evlog"));
        }
        js::reject_unknown_keys(
            obj,
            &["kind", "redactKeys", "correlation", "observability"],
            path,
        )?;
        let redact_keys = string_list(
            obj.get("redactKeys"),
            &format!("{path}.redactKeys"),
            64,
            true,
        )?;
        let correlation = match obj.get("correlation") {
            None => None,
            Some(raw) => {
                let cpath = format!("{path}.correlation");
                let c = raw
                    .as_object()
                    .ok_or_else(|| format!("{cpath} must be an object"))?;
                js::reject_unknown_keys(
                    c,
                    &["requestIdFields", "traceContextFields", "parseTraceparent"],
                    &cpath,
                )?;
                let request_id_fields = string_list(
                    c.get("requestIdFields"),
                    &format!("{cpath}.requestIdFields"),
                    64,
                    false,
                )?;
                let trace_context_fields = string_list(
                    c.get("traceContextFields"),
                    &format!("{cpath}.traceContextFields"),
                    64,
                    false,
                )?;
                let parse_traceparent = match c.get("parseTraceparent") {
                    None => None,
                    Some(Value::Bool(b)) => Some(*b),
                    Some(_) => return Err(format!("{cpath}.parseTraceparent must be boolean")),
                };
                let corr = EvlogCorrelation {
                    request_id_fields,
                    trace_context_fields,
                    parse_traceparent,
                };
                (corr != EvlogCorrelation::default()).then_some(corr)
            }
        };
        let traces_stream = observability(
            obj.get("observability"),
            &format!("{path}.observability"),
            "tracesStream",
        )?;
        Ok(EvlogProfile {
            redact_keys,
            correlation,
            traces_stream,
        })
    }

    /// The stored form (`kind` first, absent options omitted).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("kind".into(), "evlog".into());
        if let Some(keys) = &self.redact_keys {
            m.insert("redactKeys".into(), json!(keys));
        }
        if let Some(c) = &self.correlation {
            let mut cm = Map::new();
            if let Some(f) = &c.request_id_fields {
                cm.insert("requestIdFields".into(), json!(f));
            }
            if let Some(f) = &c.trace_context_fields {
                cm.insert("traceContextFields".into(), json!(f));
            }
            if let Some(b) = c.parse_traceparent {
                cm.insert("parseTraceparent".into(), b.into());
            }
            m.insert("correlation".into(), Value::Object(cm));
        }
        if let Some(s) = &self.traces_stream {
            m.insert(
                "observability".into(),
                json!({ "request": { "tracesStream": s } }),
            );
        }
        Value::Object(m)
    }

    /// Normalises one appended record; `now_ms` stamps records without a timestamp.
    pub fn normalize(&self, record: Value, now_ms: i64) -> Result<Value, String> {
        let Value::Object(input) = record else {
            return Err("evlog record must be an object".into());
        };
        let status = optional_integer(input.get("status"));
        let duration = optional_number(input.get("duration"));
        let timestamp = match js::normalize_string(input.get("timestamp")) {
            Some(t) => t,
            None => js::iso_from_ms(now_ms).unwrap_or_default(),
        };
        let request_id = self.request_id(&input);
        let traceparent = match &self.correlation {
            Some(EvlogCorrelation {
                parse_traceparent: Some(false),
                ..
            }) => None,
            _ => parse_traceparent(&input),
        };
        let trace_id = self
            .trace_field(&input, "traceId")
            .or_else(|| traceparent.as_ref().map(|t| t.0.clone()));
        let span_id = self
            .trace_field(&input, "spanId")
            .or_else(|| traceparent.as_ref().map(|t| t.1.clone()));
        let mut redact: Vec<String> = DEFAULT_REDACT_KEYS.iter().map(|s| s.to_string()).collect();
        redact.extend(self.redact_keys.iter().flatten().cloned());
        let mut paths = Vec::new();
        let context = redact_value(&build_context(&input), &redact, "", &mut paths);
        let s = |k: &str| -> Value {
            js::normalize_string(input.get(k)).map_or(Value::Null, Value::from)
        };
        let level = derive_level(&input, status);
        let num = |x: Option<f64>| x.map_or(Value::Null, js::number_value);
        Ok(json!({
            "timestamp": timestamp,
            "level": level,
            "service": s("service"),
            "environment": s("environment"),
            "version": s("version"),
            "region": s("region"),
            "requestId": request_id,
            "traceId": trace_id,
            "spanId": span_id,
            "method": s("method"),
            "path": s("path"),
            "status": num(status),
            "duration": num(duration),
            "message": s("message"),
            "why": s("why"),
            "fix": s("fix"),
            "link": s("link"),
            "sampling": input.get("sampling").cloned().unwrap_or(Value::Null),
            "redaction": { "keys": paths },
            "context": context,
        }))
    }

    fn request_id(&self, input: &Map<String, Value>) -> Option<String> {
        let default = ["requestId".to_string(), "context.requestId".to_string()];
        let fields = self
            .correlation
            .as_ref()
            .and_then(|c| c.request_id_fields.as_deref())
            .unwrap_or(&default);
        fields.iter().find_map(|f| read_dotted(input, f))
    }

    fn trace_field(&self, input: &Map<String, Value>, field: &str) -> Option<String> {
        let direct = || {
            js::normalize_string(input.get(field)).or_else(|| match input.get("traceContext") {
                Some(Value::Object(tc)) => js::normalize_string(tc.get(field)),
                _ => None,
            })
        };
        let Some(fields) = self
            .correlation
            .as_ref()
            .and_then(|c| c.trace_context_fields.as_ref())
        else {
            return direct();
        };
        let suffix = format!(".{field}");
        fields
            .iter()
            .filter(|p| *p == field || p.ends_with(&suffix))
            .find_map(|p| read_dotted(input, p))
            .or_else(direct)
    }
}

/// `normalizeOptionalNumber`: a finite number, or a non-blank numeric string.
fn optional_number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()),
        Value::String(s) if !js::trim(s).is_empty() => {
            Some(js::string_to_number(s)).filter(|f| f.is_finite())
        }
        _ => None,
    }
}

/// `normalizeOptionalInteger`: as [`optional_number`], and integral.
fn optional_integer(v: Option<&Value>) -> Option<f64> {
    optional_number(v).filter(|f| js::is_integer(*f))
}

/// Follows a dotted path through nested objects to a non-blank string.
fn read_dotted(input: &Map<String, Value>, path: &str) -> Option<String> {
    let mut cur: Option<&Value> = None;
    let mut obj = Some(input);
    for part in path.split('.') {
        let o = obj?;
        cur = o.get(part);
        obj = cur.and_then(Value::as_object);
    }
    js::normalize_string(cur)
}

fn is_hex(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `(traceId, spanId)` from the first valid W3C `traceparent` found.
fn parse_traceparent(input: &Map<String, Value>) -> Option<(String, String)> {
    for path in [
        "traceparent",
        "traceContext.traceparent",
        "context.traceparent",
        "headers.traceparent",
    ] {
        let Some(value) = read_dotted(input, path) else {
            continue;
        };
        // version-traceid-spanid-flags, then optionally "-" and anything on one line.
        let parts: Vec<&str> = value.splitn(5, '-').collect();
        if parts.len() < 4
            || !is_hex(parts[0], 2)
            || !is_hex(parts[1], 32)
            || !is_hex(parts[2], 16)
            || !is_hex(parts[3], 2)
        {
            continue;
        }
        if let Some(rest) = parts.get(4) {
            if rest.is_empty() || rest.contains(['\n', '\r', '\u{2028}', '\u{2029}']) {
                continue;
            }
        }
        let trace = parts[1].to_ascii_lowercase();
        let span = parts[2].to_ascii_lowercase();
        if trace.bytes().all(|b| b == b'0') || span.bytes().all(|b| b == b'0') {
            continue;
        }
        return Some((trace, span));
    }
    None
}

fn derive_level(input: &Map<String, Value>, status: Option<f64>) -> &'static str {
    if let Some(level) = js::normalize_string(input.get("level")) {
        match level.to_lowercase().as_str() {
            "debug" => return "debug",
            "info" => return "info",
            "warn" => return "warn",
            "error" => return "error",
            _ => {}
        }
    }
    if ["why", "fix", "link"]
        .iter()
        .any(|k| js::normalize_string(input.get(*k)).is_some())
    {
        return "error";
    }
    match status {
        Some(s) if s >= 500.0 => "error",
        Some(s) if s >= 400.0 => "warn",
        _ => "info",
    }
}

/// `context` of the canonical event: the input's `context` object (if it is one), then
/// every non-reserved input field; a non-object `context` is kept as `context.context`.
fn build_context(input: &Map<String, Value>) -> Value {
    let mut context = match input.get("context") {
        Some(Value::Object(c)) => c.clone(),
        _ => Map::new(),
    };
    for (k, v) in js::entries(input) {
        if RESERVED_FIELDS.contains(&k) {
            continue;
        }
        context.insert(k.to_string(), v.clone());
    }
    if let Some(c) = input.get("context") {
        if !c.is_object() {
            context.insert("context".into(), c.clone());
        }
    }
    Value::Object(js::reorder(context))
}

/// Replaces the values of keys in `redact` (compared lower-cased) and records their
/// dotted paths.
fn redact_value(value: &Value, redact: &[String], path: &str, paths: &mut Vec<String>) -> Value {
    match value {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let p = if path.is_empty() {
                        i.to_string()
                    } else {
                        format!("{path}.{i}")
                    };
                    redact_value(item, redact, &p, paths)
                })
                .collect(),
        ),
        Value::Object(obj) => {
            let mut out = Map::new();
            for (k, v) in js::entries(obj) {
                let p = if path.is_empty() {
                    k.to_string()
                } else {
                    format!("{path}.{k}")
                };
                if redact.contains(&k.to_lowercase()) {
                    out.insert(k.to_string(), REDACTED.into());
                    paths.push(p);
                } else {
                    out.insert(k.to_string(), redact_value(v, redact, &p, paths));
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// The routing key the original derives for an evlog record: `requestId`, else `traceId`.
pub fn routing_key(record: &Value) -> Option<String> {
    ["requestId", "traceId"]
        .iter()
        .find_map(|k| match record.get(k) {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        })
}
