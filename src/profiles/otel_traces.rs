//! The otel-traces profile: OpenTelemetry spans, stored as canonical span documents.
//!
//! Configuration: `redactKeys`, `requestIdAttributes` (≤ 64 trimmed strings,
//! de-duplicated case-insensitively; redact keys are lower-cased), `attributeLimits`,
//! `otlpLimits` (positive integers overriding the defaults), `store` (booleans choosing
//! which raw attribute/event/link collections are kept), `dbStatementMode`
//! (`drop`|`raw`), `urlMode` (`drop_query`|`raw`) and
//! `observability.request.eventsStream` (the paired evlog stream).
//!
//! On a JSON append each record is read as a "canonical-like" span (the form this
//! profile itself stores) and normalised again: ids are validated and lower-cased,
//! attributes are limited, truncated and redacted, derived fields (service, http, db,
//! rpc, messaging, error, …) are recomputed, and when the record already is a canonical
//! span (`schemaVersion: 1`, `signal: "trace.span"`) its derived fields win over the
//! recomputed ones, so that spans whose raw attributes were dropped keep them. The
//! routing key is `traceId`.
//!
//! OTLP decoding (protobuf and OTLP/JSON export requests) is not part of this module.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::evlog::observability;
use super::js;

const REDACTED: &str = "[REDACTED]";

/// Keys always redacted, besides the profile's own.
pub const DEFAULT_REDACT_KEYS: &[&str] = &[
    "password",
    "token",
    "secret",
    "authorization",
    "cookie",
    "apikey",
    "api_key",
    "set-cookie",
    "x-api-key",
];

/// Span attributes searched for a request id when the profile names none.
pub const DEFAULT_REQUEST_ID_ATTRIBUTES: &[&str] = &[
    "request.id",
    "http.request_id",
    "http.request.header.x_request_id",
    "http.request.header.x-request-id",
    "http.request.header.x_correlation_id",
    "http.request.header.x-correlation-id",
    "correlation.id",
];

/// `attributeLimits` keys and defaults, in the original's order.
pub const ATTRIBUTE_LIMITS: &[(&str, u64)] = &[
    ("maxAttributeValueBytes", 8192),
    ("maxAttributesPerSpan", 256),
    ("maxEventsPerSpan", 128),
    ("maxLinksPerSpan", 128),
    ("maxStatementBytes", 4096),
];

/// `otlpLimits` keys and defaults, in the original's order.
pub const OTLP_LIMITS: &[(&str, u64)] = &[
    ("maxCompressedBytes", 4 * 1024 * 1024),
    ("maxDecodedBytes", 16 * 1024 * 1024),
    ("maxResourceSpansPerRequest", 1024),
    ("maxScopeSpansPerRequest", 4096),
    ("maxSpansPerRequest", 50_000),
    ("maxAnyValueDepth", 16),
    ("maxArrayValuesPerAnyValue", 256),
    ("maxKvListValuesPerAnyValue", 256),
];

/// `store` keys (all default to true), in the original's order.
pub const STORE_KEYS: &[&str] = &[
    "rawResourceAttributes",
    "rawSpanAttributes",
    "rawEvents",
    "rawLinks",
];

/// An otel-traces profile's configuration. Limit and store overrides keep only the
/// keys given (the defaults above fill the rest).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OtelTracesProfile {
    pub redact_keys: Option<Vec<String>>,
    pub request_id_attributes: Option<Vec<String>>,
    pub attribute_limits: Option<Vec<(String, u64)>>,
    pub store: Option<Vec<(String, bool)>>,
    /// `drop` or `raw`.
    pub db_statement_mode: Option<String>,
    /// `drop_query` or `raw`.
    pub url_mode: Option<String>,
    pub otlp_limits: Option<Vec<(String, u64)>>,
    /// `observability.request.eventsStream`.
    pub events_stream: Option<String>,
}

fn string_array(
    raw: Option<&Value>,
    path: &str,
    max: usize,
) -> Result<Option<Vec<String>>, String> {
    let Some(raw) = raw else { return Ok(None) };
    let Value::Array(items) = raw else {
        return Err(format!("{path} must be an array of strings"));
    };
    if items.len() > max {
        return Err(format!("{path} too large (max {max})"));
    }
    let lower_out = path.ends_with("redactKeys");
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for item in items {
        let Value::String(s) = item else {
            return Err(format!("{path} must be an array of strings"));
        };
        let v = js::trim(s);
        if v.is_empty() {
            return Err(format!("{path} must not contain empty strings"));
        }
        let key = v.to_lowercase();
        if seen.contains(&key) {
            continue;
        }
        seen.push(key.clone());
        out.push(if lower_out { key } else { v.to_string() });
    }
    Ok(Some(out))
}

fn limits(
    raw: Option<&Value>,
    path: &str,
    table: &[(&str, u64)],
) -> Result<Option<Vec<(String, u64)>>, String> {
    let Some(raw) = raw else { return Ok(None) };
    let obj = raw
        .as_object()
        .ok_or_else(|| format!("{path} must be an object"))?;
    let allowed: Vec<&str> = table.iter().map(|(k, _)| *k).collect();
    js::reject_unknown_keys(obj, &allowed, path)?;
    let mut out = Vec::new();
    for (key, _) in table {
        let Some(v) = obj.get(*key) else { continue };
        match js::as_f64(v) {
            Some(n) if js::is_integer(n) && n > 0.0 => out.push((key.to_string(), n as u64)),
            _ => return Err(format!("{path}.{key} must be a positive integer")),
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

fn enum_str(raw: Option<&Value>, path: &str, a: &str, b: &str) -> Result<Option<String>, String> {
    match raw {
        None => Ok(None),
        Some(Value::String(s)) if s == a || s == b => Ok(Some(s.clone())),
        Some(_) => Err(format!("{path} must be {a} or {b}")),
    }
}

impl OtelTracesProfile {
    /// Validates `raw` (the `profile` object, reported at `path`).
    pub fn parse(raw: &Value, path: &str) -> Result<OtelTracesProfile, String> {
        let obj = raw
            .as_object()
            .ok_or_else(|| format!("{path} must be an object"))?;
        if obj.get("kind") != Some(&Value::from("otel-traces")) {
            return Err(format!("{path}.kind must be otel-traces"));
        }
        js::reject_unknown_keys(
            obj,
            &[
                "kind",
                "redactKeys",
                "requestIdAttributes",
                "attributeLimits",
                "store",
                "dbStatementMode",
                "urlMode",
                "otlpLimits",
                "observability",
            ],
            path,
        )?;
        let redact_keys = string_array(obj.get("redactKeys"), &format!("{path}.redactKeys"), 64)?;
        let request_id_attributes = string_array(
            obj.get("requestIdAttributes"),
            &format!("{path}.requestIdAttributes"),
            64,
        )?;
        let attribute_limits = limits(
            obj.get("attributeLimits"),
            &format!("{path}.attributeLimits"),
            ATTRIBUTE_LIMITS,
        )?;
        let store = match obj.get("store") {
            None => None,
            Some(raw) => {
                let spath = format!("{path}.store");
                let s = raw
                    .as_object()
                    .ok_or_else(|| format!("{spath} must be an object"))?;
                js::reject_unknown_keys(s, STORE_KEYS, &spath)?;
                let mut out = Vec::new();
                for key in STORE_KEYS {
                    match s.get(*key) {
                        None => {}
                        Some(Value::Bool(b)) => out.push((key.to_string(), *b)),
                        Some(_) => return Err(format!("{spath}.{key} must be boolean")),
                    }
                }
                (!out.is_empty()).then_some(out)
            }
        };
        let db_statement_mode = enum_str(
            obj.get("dbStatementMode"),
            &format!("{path}.dbStatementMode"),
            "drop",
            "raw",
        )?;
        let url_mode = enum_str(
            obj.get("urlMode"),
            &format!("{path}.urlMode"),
            "drop_query",
            "raw",
        )?;
        let otlp_limits = limits(
            obj.get("otlpLimits"),
            &format!("{path}.otlpLimits"),
            OTLP_LIMITS,
        )?;
        let events_stream = observability(
            obj.get("observability"),
            &format!("{path}.observability"),
            "eventsStream",
        )?;
        Ok(OtelTracesProfile {
            redact_keys,
            request_id_attributes,
            attribute_limits,
            store,
            db_statement_mode,
            url_mode,
            otlp_limits,
            events_stream,
        })
    }

    /// The stored form (`kind` first, absent options omitted).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("kind".into(), "otel-traces".into());
        if let Some(v) = &self.redact_keys {
            m.insert("redactKeys".into(), json!(v));
        }
        if let Some(v) = &self.request_id_attributes {
            m.insert("requestIdAttributes".into(), json!(v));
        }
        let pairs = |v: &[(String, u64)]| -> Value {
            Value::Object(
                v.iter()
                    .map(|(k, n)| (k.clone(), Value::from(*n)))
                    .collect(),
            )
        };
        if let Some(v) = &self.attribute_limits {
            m.insert("attributeLimits".into(), pairs(v));
        }
        if let Some(v) = &self.store {
            m.insert(
                "store".into(),
                Value::Object(
                    v.iter()
                        .map(|(k, b)| (k.clone(), Value::from(*b)))
                        .collect(),
                ),
            );
        }
        if let Some(v) = &self.db_statement_mode {
            m.insert("dbStatementMode".into(), v.as_str().into());
        }
        if let Some(v) = &self.url_mode {
            m.insert("urlMode".into(), v.as_str().into());
        }
        if let Some(v) = &self.otlp_limits {
            m.insert("otlpLimits".into(), pairs(v));
        }
        if let Some(s) = &self.events_stream {
            m.insert(
                "observability".into(),
                json!({ "request": { "eventsStream": s } }),
            );
        }
        Value::Object(m)
    }

    /// An attribute limit (`maxAttributeValueBytes`, …) with the profile's override.
    pub fn attribute_limit(&self, key: &str) -> u64 {
        lookup(self.attribute_limits.as_deref(), ATTRIBUTE_LIMITS, key)
    }

    /// An OTLP decoding limit (`maxDecodedBytes`, …) with the profile's override.
    pub fn otlp_limit(&self, key: &str) -> u64 {
        lookup(self.otlp_limits.as_deref(), OTLP_LIMITS, key)
    }

    /// Whether a raw collection (`rawEvents`, …) is stored.
    pub fn stores(&self, key: &str) -> bool {
        self.store
            .iter()
            .flatten()
            .find(|(k, _)| k == key)
            .is_none_or(|(_, b)| *b)
    }

    fn redact_set(&self) -> Vec<String> {
        DEFAULT_REDACT_KEYS
            .iter()
            .map(|s| s.to_string())
            .chain(self.redact_keys.iter().flatten().cloned())
            .map(|s| s.to_lowercase())
            .collect()
    }

    /// Normalises one appended record; `now_ms` stamps spans with no time at all.
    pub fn normalize(&self, record: Value, now_ms: i64) -> Result<Value, String> {
        let span = decode_canonical_like(&record)?;
        let canonical = self.normalize_span(&span, now_ms)?;
        Ok(match &record {
            Value::Object(raw) => self.preserve_derived(canonical, raw),
            _ => canonical,
        })
    }

    fn normalize_span(&self, input: &DecodedSpan, now_ms: i64) -> Result<Value, String> {
        let trace_id = hex_id(input.trace_id.as_deref(), 32, "traceId")?;
        let span_id = hex_id(input.span_id.as_deref(), 16, "spanId")?;
        let parent_span_id = match input.parent_span_id.as_deref() {
            None => None,
            Some(p) => {
                let lowered = p.to_lowercase();
                if lowered.bytes().all(|b| b == b'0') {
                    None
                } else {
                    Some(hex_id(Some(&lowered), 16, "parentSpanId")?)
                }
            }
        };
        let max_bytes = self.attribute_limit("maxAttributeValueBytes") as usize;
        let max_attrs = self.attribute_limit("maxAttributesPerSpan");
        let redact = self.redact_set();
        let limit = |attrs: &Map<String, Value>, dropped: f64, path: &str| {
            limit_attributes(attrs, max_attrs, max_bytes, dropped, &redact, path)
        };
        let mut resource = limit(&input.resource_attributes, 0.0, "resource.attributes");
        let scope = limit(
            &input.scope_attributes,
            0.0,
            "instrumentationScope.attributes",
        );
        let attrs = limit(&input.attributes, input.dropped_attributes, "attributes");

        let start = input.start_unix_nano.clone();
        let end = input.end_unix_nano.clone();
        let duration = duration_ms(start.as_deref(), end.as_deref())?;
        let timestamp = iso_from_nanos(start.as_deref())
            .or_else(|| input.timestamp.clone())
            .unwrap_or_else(|| js::iso_from_ms(now_ms).unwrap_or_default());
        let end_timestamp = iso_from_nanos(end.as_deref());

        let max_events = self.attribute_limit("maxEventsPerSpan") as usize;
        let mut events: Vec<Value> = Vec::new();
        let mut derivation: Vec<(String, Map<String, Value>)> = Vec::new();
        let mut dropped_events = input.dropped_events.max(0.0);
        let mut event_names: Vec<String> = Vec::new();
        for ev in &input.events {
            if events.len() >= max_events {
                dropped_events += 1.0;
                continue;
            }
            let path = format!("events.{}.attributes", events.len());
            let a = limit(&ev.attributes, ev.dropped_attributes, &path);
            event_names.push(ev.name.clone());
            derivation.push((ev.name.clone(), a.attributes.clone()));
            events.push(json!({
                "timestamp": iso_from_nanos(ev.time_unix_nano.as_deref()),
                "timeUnixNano": ev.time_unix_nano,
                "name": ev.name,
                "attributes": if self.stores("rawEvents") { Value::Object(a.attributes) } else { json!({}) },
                "droppedAttributesCount": js::number_value(a.dropped),
            }));
            resource.redacted.extend(a.redacted);
        }

        let max_links = self.attribute_limit("maxLinksPerSpan") as usize;
        let mut links: Vec<Value> = Vec::new();
        let mut dropped_links = input.dropped_links.max(0.0);
        for link in &input.links {
            if links.len() >= max_links {
                dropped_links += 1.0;
                continue;
            }
            let (Ok(lt), Ok(ls)) = (
                hex_id(Some(&link.trace_id), 32, "links.traceId"),
                hex_id(Some(&link.span_id), 16, "links.spanId"),
            ) else {
                dropped_links += 1.0;
                continue;
            };
            let path = format!("links.{}.attributes", links.len());
            let a = limit(&link.attributes, link.dropped_attributes, &path);
            links.push(json!({
                "traceId": lt,
                "spanId": ls,
                "traceState": link.trace_state,
                "attributes": if self.stores("rawLinks") { Value::Object(a.attributes) } else { json!({}) },
                "droppedAttributesCount": js::number_value(a.dropped),
            }));
            resource.redacted.extend(a.redacted);
        }

        let ra = &resource.attributes;
        let sa = &attrs.attributes;
        let service = get_string(ra, &["service.name"]);
        let status_code = status_code(input.status_code.as_ref());
        let exception = exception_from_events(&derivation);
        let attr_error_type = get_string(sa, &["exception.type", "error.type"]);
        let attr_error_message = get_string(sa, &["exception.message", "error.message"]);
        let attr_error_stack = get_string(sa, &["exception.stacktrace", "error.stacktrace"]);
        let http_status = get_integer(sa, &["http.response.status_code", "http.status_code"]);
        let status_message = input
            .status_message
            .as_deref()
            .map(|m| truncate_utf8(m, max_bytes));
        let error_message = attr_error_message
            .clone()
            .or_else(|| exception.1.clone())
            .or_else(|| status_message.clone());
        let trace_flags = input.trace_flags;
        let db_statement = match (
            self.db_statement_mode.as_deref(),
            get_string(sa, &["db.statement", "db.query.text"]),
        ) {
            (Some("raw"), Some(s)) => Some(truncate_utf8(
                &s,
                self.attribute_limit("maxStatementBytes") as usize,
            )),
            _ => None,
        };
        let url_mode = self.url_mode.as_deref().unwrap_or("drop_query");
        let is_error = status_code == "error"
            || http_status.is_some_and(|s| s >= 500.0)
            || attr_error_type.is_some()
            || exception.0.is_some();
        let error_type = attr_error_type.or_else(|| exception.0.clone());
        let stacktrace = attr_error_stack
            .or_else(|| exception.2.clone())
            .map(|s| truncate_utf8(&s, max_bytes));
        let request_id = input.request_id.clone().or_else(|| {
            let defaults: Vec<String> = DEFAULT_REQUEST_ID_ATTRIBUTES
                .iter()
                .map(|s| s.to_string())
                .collect();
            let keys = self.request_id_attributes.as_ref().unwrap_or(&defaults);
            keys.iter().find_map(|k| js::normalize_string(sa.get(k)))
        });
        let mut redaction: Vec<String> = resource
            .redacted
            .iter()
            .chain(&scope.redacted)
            .chain(&attrs.redacted)
            .cloned()
            .collect();
        redaction.sort_by(|a, b| js::utf16_cmp(a, b));
        let name = input.name.clone();
        let dedupe_key = dedupe_key(
            &trace_id,
            &span_id,
            start.as_deref(),
            service.as_deref(),
            &name,
        );
        let g = |keys: &[&str]| get_string(sa, keys);
        let num = |x: Option<f64>| x.map_or(Value::Null, js::number_value);

        Ok(json!({
            "schemaVersion": 1,
            "signal": "trace.span",
            "timestamp": timestamp,
            "endTimestamp": end_timestamp,
            "startUnixNano": start,
            "endUnixNano": end,
            "duration": num(duration),
            "traceId": trace_id,
            "spanId": span_id,
            "parentSpanId": parent_span_id,
            "traceState": input.trace_state,
            "traceFlags": {
                "sampled": trace_flags.is_some_and(|f| f.rem_euclid(4_294_967_296.0) as u64 & 1 == 1),
                "raw": num(trace_flags),
            },
            "name": name,
            "kind": span_kind(input.kind.as_ref()),
            "status": { "code": status_code, "message": status_message },
            "service": service,
            "serviceNamespace": get_string(ra, &["service.namespace"]),
            "serviceInstanceId": get_string(ra, &["service.instance.id"]),
            "environment": get_string(ra, &["deployment.environment.name", "deployment.environment"]),
            "version": get_string(ra, &["service.version"]),
            "region": get_string(ra, &["cloud.region"]),
            "requestId": request_id,
            "http": {
                "method": g(&["http.request.method", "http.method"]),
                "route": g(&["http.route"]),
                "path": g(&["url.path", "http.target"]),
                "target": g(&["http.target"]),
                "url": sanitize_url(g(&["url.full", "http.url"]).as_deref(), url_mode, max_bytes),
                "statusCode": num(http_status),
                "userAgent": g(&["user_agent.original", "http.user_agent"]),
            },
            "db": {
                "system": g(&["db.system"]),
                "name": g(&["db.name", "db.namespace"]),
                "operation": g(&["db.operation", "db.operation.name"]),
                "statement": db_statement,
            },
            "rpc": {
                "system": g(&["rpc.system"]),
                "service": g(&["rpc.service"]),
                "method": g(&["rpc.method"]),
            },
            "messaging": {
                "system": g(&["messaging.system"]),
                "destination": g(&["messaging.destination", "messaging.destination.name"]),
                "operation": g(&["messaging.operation", "messaging.operation.name"]),
            },
            "error": {
                "isError": is_error,
                "type": error_type,
                "message": error_message,
                "stacktrace": stacktrace,
            },
            "instrumentationScope": {
                "name": input.scope_name,
                "version": input.scope_version,
                "schemaUrl": input.scope_schema_url,
                "attributes": Value::Object(scope.attributes),
            },
            "resource": {
                "schemaUrl": input.resource_schema_url,
                "attributes": if self.stores("rawResourceAttributes") { Value::Object(resource.attributes) } else { json!({}) },
            },
            "attributes": if self.stores("rawSpanAttributes") { Value::Object(attrs.attributes) } else { json!({}) },
            "events": if self.stores("rawEvents") { Value::Array(events) } else { json!([]) },
            "eventNames": event_names,
            "links": if self.stores("rawLinks") { Value::Array(links) } else { json!([]) },
            "dropped": {
                "attributes": js::number_value(attrs.dropped),
                "events": js::number_value(dropped_events),
                "links": js::number_value(dropped_links),
            },
            "redaction": { "keys": redaction },
            "identity": {
                "spanKey": format!("{trace_id}:{span_id}"),
                "dedupeKey": dedupe_key,
            },
        }))
    }

    /// A canonical span re-appended keeps its own derived fields (truncated and, for
    /// URLs and statements, sanitised under the current profile).
    fn preserve_derived(&self, mut out: Value, raw: &Map<String, Value>) -> Value {
        if raw.get("schemaVersion").and_then(js::as_f64) != Some(1.0)
            || raw.get("signal") != Some(&Value::from("trace.span"))
        {
            return out;
        }
        let max_bytes = self.attribute_limit("maxAttributeValueBytes") as usize;
        let url_mode = self.url_mode.as_deref().unwrap_or("drop_query");
        let sub = |k: &str| -> Map<String, Value> {
            match raw.get(k) {
                Some(Value::Object(o)) => o.clone(),
                _ => Map::new(),
            }
        };
        let limited = |v: Option<&Value>, fallback: &Value, max: usize| -> Value {
            match js::normalize_string(v).or_else(|| fallback.as_str().map(str::to_string)) {
                Some(s) => Value::from(truncate_utf8(&s, max)),
                None => Value::Null,
            }
        };
        let Value::Object(o) = &mut out else {
            return out;
        };
        if let Some(d) = o.get_mut("duration") {
            if let Some(n) = number(raw.get("duration")) {
                *d = js::number_value(n);
            }
        }
        for key in [
            "service",
            "serviceNamespace",
            "serviceInstanceId",
            "environment",
            "version",
            "region",
            "requestId",
        ] {
            if let Some(slot) = o.get_mut(key) {
                *slot = limited(raw.get(key), slot, max_bytes);
            }
        }
        let groups: [(&str, &[&str]); 6] = [
            ("status", &["message"]),
            ("http", &["method", "route", "path", "target", "userAgent"]),
            ("db", &["system", "name", "operation"]),
            ("rpc", &["system", "service", "method"]),
            ("messaging", &["system", "destination", "operation"]),
            ("error", &["type", "message", "stacktrace"]),
        ];
        for (group, keys) in groups {
            let rawg = sub(group);
            let Some(Value::Object(g)) = o.get_mut(group) else {
                continue;
            };
            for key in keys {
                if let Some(slot) = g.get_mut(*key) {
                    *slot = limited(rawg.get(*key), slot, max_bytes);
                }
            }
            match group {
                "http" => {
                    if let Some(slot) = g.get_mut("url") {
                        let url = js::normalize_string(rawg.get("url"))
                            .or_else(|| slot.as_str().map(str::to_string));
                        *slot = Value::from(sanitize_url(url.as_deref(), url_mode, max_bytes));
                    }
                    if let Some(slot) = g.get_mut("statusCode") {
                        if let Some(n) = integer(rawg.get("statusCode")) {
                            *slot = js::number_value(n);
                        }
                    }
                }
                "db" => {
                    if let Some(slot) = g.get_mut("statement") {
                        *slot = if self.db_statement_mode.as_deref() == Some("raw") {
                            limited(
                                rawg.get("statement"),
                                slot,
                                self.attribute_limit("maxStatementBytes") as usize,
                            )
                        } else {
                            Value::Null
                        };
                    }
                }
                "error" => {
                    if let (Some(slot), Some(Value::Bool(b))) =
                        (g.get_mut("isError"), rawg.get("isError"))
                    {
                        *slot = Value::Bool(*b);
                    }
                }
                _ => {}
            }
        }
        // Event names: the recomputed ones, then the record's, de-duplicated.
        if let Some(Value::Array(names)) = o.get_mut("eventNames") {
            let mut out_names: Vec<Value> = Vec::new();
            let extra = match raw.get("eventNames") {
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(|i| js::normalize_string(Some(i)))
                    .map(Value::from)
                    .collect(),
                _ => Vec::new(),
            };
            for n in names.iter().cloned().chain(extra) {
                if !out_names.contains(&n) {
                    out_names.push(n);
                }
            }
            *names = out_names;
        }
        if let Some(Value::Object(red)) = o.get_mut("redaction") {
            if let Some(Value::Array(keys)) = red.get_mut("keys") {
                let mut all: Vec<String> = keys
                    .iter()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect();
                if let Some(Value::Object(rr)) = raw.get("redaction") {
                    if let Some(Value::Array(items)) = rr.get("keys") {
                        all.extend(items.iter().filter_map(|i| js::normalize_string(Some(i))));
                    }
                }
                let mut uniq: Vec<String> = Vec::new();
                for k in all {
                    if !uniq.contains(&k) {
                        uniq.push(k);
                    }
                }
                uniq.sort_by(|a, b| js::utf16_cmp(a, b));
                *keys = uniq.into_iter().map(Value::from).collect();
            }
        }
        let rd = sub("dropped");
        if let Some(Value::Object(d)) = o.get_mut("dropped") {
            for key in ["attributes", "events", "links"] {
                if let Some(slot) = d.get_mut(key) {
                    if let Some(n) = integer(rd.get(key)) {
                        *slot = js::number_value(n);
                    }
                }
            }
        }
        let text =
            |k: &str, o: &Map<String, Value>| o.get(k).and_then(Value::as_str).map(str::to_string);
        let trace_id = text("traceId", o).unwrap_or_default();
        let span_id = text("spanId", o).unwrap_or_default();
        let start = text("startUnixNano", o);
        let service = text("service", o);
        let name = text("name", o).unwrap_or_default();
        if let Some(Value::Object(id)) = o.get_mut("identity") {
            id.insert(
                "spanKey".into(),
                Value::from(format!("{trace_id}:{span_id}")),
            );
            id.insert(
                "dedupeKey".into(),
                Value::from(dedupe_key(
                    &trace_id,
                    &span_id,
                    start.as_deref(),
                    service.as_deref(),
                    &name,
                )),
            );
        }
        out
    }
}

fn lookup(overrides: Option<&[(String, u64)]>, table: &[(&str, u64)], key: &str) -> u64 {
    overrides
        .and_then(|o| o.iter().find(|(k, _)| k == key).map(|(_, v)| *v))
        .or_else(|| table.iter().find(|(k, _)| *k == key).map(|(_, v)| *v))
        .unwrap_or(0)
}

fn dedupe_key(
    trace: &str,
    span: &str,
    start: Option<&str>,
    service: Option<&str>,
    name: &str,
) -> String {
    let input = format!(
        "{trace}\0{span}\0{}\0{}\0{name}",
        start.unwrap_or(""),
        service.unwrap_or("")
    );
    let digest = Sha256::digest(input.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// `normalizeNumber`: a finite number, or a non-blank numeric string.
fn number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()),
        Value::String(s) if !js::trim(s).is_empty() => {
            Some(js::string_to_number(s)).filter(|f| f.is_finite())
        }
        _ => None,
    }
}

/// `normalizeInteger`: [`number`], integral (not truncated).
fn integer(v: Option<&Value>) -> Option<f64> {
    number(v).filter(|f| js::is_integer(*f))
}

/// `normalizeNanoString`: a non-negative integer as a decimal string.
fn nano_string(v: Option<&Value>) -> Option<String> {
    match v? {
        // JSON numbers are doubles to the original: 1767225600223456789 is read as
        // 1767225600223456768.
        Value::Number(n) => {
            let f = n.as_f64()?;
            (js::is_integer(f) && f >= 0.0).then(|| format!("{f:.0}"))
        }
        Value::String(s) => {
            let t = js::trim(s);
            let canonical = t == "0"
                || (!t.is_empty() && !t.starts_with('0') && t.bytes().all(|b| b.is_ascii_digit()));
            canonical.then(|| t.to_string())
        }
        _ => None,
    }
}

/// `new Date(nanos / 1e6).toISOString()`, or `None` when out of range.
fn iso_from_nanos(nanos: Option<&str>) -> Option<String> {
    let n: u128 = nanos?.parse().ok()?;
    let ms = i64::try_from(n / 1_000_000).ok()?;
    js::iso_from_ms(ms)
}

fn duration_ms(start: Option<&str>, end: Option<&str>) -> Result<Option<f64>, String> {
    let (Some(s), Some(e)) = (start, end) else {
        return Ok(None);
    };
    // Canonical decimal strings compare by length, then lexically.
    let less = e.len() < s.len() || (e.len() == s.len() && e < s);
    if less {
        return Err("endTimeUnixNano must be greater than or equal to startTimeUnixNano".into());
    }
    let diff = match (s.parse::<u128>(), e.parse::<u128>()) {
        (Ok(a), Ok(b)) => (b - a) as f64,
        _ => js::string_to_number(e) - js::string_to_number(s),
    };
    Ok(Some(diff / 1_000_000.0))
}

fn hex_id(raw: Option<&str>, chars: usize, field: &str) -> Result<String, String> {
    let value = raw
        .map(js::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase)
        .unwrap_or_default();
    if value.len() != chars
        || !value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!("{field} must be {chars} lowercase hex characters"));
    }
    if value.bytes().all(|b| b == b'0') {
        return Err(format!("{field} must not be all zeroes"));
    }
    Ok(value)
}

/// A JSON number that is a small integer (1.0 counts, as `value === 1` does).
fn small_integer(n: &serde_json::Number) -> Option<i64> {
    n.as_f64()
        .filter(|x| x.fract() == 0.0 && x.abs() < 1e15)
        .map(|x| x as i64)
}

fn span_kind(v: Option<&Value>) -> &'static str {
    if let Some(Value::Number(n)) = v {
        return match small_integer(n) {
            Some(1) => "internal",
            Some(2) => "server",
            Some(3) => "client",
            Some(4) => "producer",
            Some(5) => "consumer",
            _ => "unspecified",
        };
    }
    let raw = js::normalize_string(v).map(|s| s.to_lowercase());
    match raw
        .as_deref()
        .map(|s| s.strip_prefix("span_kind_").unwrap_or(s))
    {
        Some("internal") => "internal",
        Some("server") => "server",
        Some("client") => "client",
        Some("producer") => "producer",
        Some("consumer") => "consumer",
        _ => "unspecified",
    }
}

fn status_code(v: Option<&Value>) -> &'static str {
    if let Some(Value::Number(n)) = v {
        return match small_integer(n) {
            Some(1) => "ok",
            Some(2) => "error",
            _ => "unset",
        };
    }
    let raw = js::normalize_string(v).map(|s| s.to_lowercase());
    match raw
        .as_deref()
        .map(|s| s.strip_prefix("status_code_").unwrap_or(s))
    {
        Some("ok") => "ok",
        Some("error") => "error",
        _ => "unset",
    }
}

/// UTF-8 truncation to `max` bytes; a cut character becomes U+FFFD, as `TextDecoder`
/// makes it.
fn truncate_utf8(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    String::from_utf8_lossy(&s.as_bytes()[..max]).into_owned()
}

fn sanitize_url(v: Option<&str>, mode: &str, max: usize) -> Option<String> {
    let v = v.filter(|s| !s.is_empty())?;
    let cut = if mode == "raw" {
        v
    } else {
        let no_fragment = v.split('#').next().unwrap_or("");
        no_fragment.split('?').next().unwrap_or("")
    };
    let t = js::trim(cut);
    (!t.is_empty()).then(|| truncate_utf8(t, max))
}

/// The forms of an attribute key that are matched against the redaction set.
fn redaction_candidates(key: &str) -> Vec<String> {
    let lowered = js::trim(key).to_lowercase();
    let mut out: Vec<String> = Vec::new();
    if lowered.is_empty() {
        return out;
    }
    out.push(lowered.clone());
    let dotted: Vec<&str> = lowered.split('.').filter(|p| !p.is_empty()).collect();
    for i in 0..dotted.len() {
        out.push(dotted[i..].join("."));
    }
    let terminal = dotted.last().copied().unwrap_or(&lowered).to_string();
    out.push(terminal.replace(['-', '_'], ""));
    out.push(terminal);
    let tokens: Vec<&str> = lowered
        .split(['.', '_', '-'])
        .filter(|p| !p.is_empty())
        .collect();
    for len in 1..=tokens.len().min(4) {
        let suffix = &tokens[tokens.len() - len..];
        for sep in [".", "-", "_", ""] {
            out.push(suffix.join(sep));
        }
    }
    out
}

fn should_redact(key: &str, redact: &[String]) -> bool {
    redaction_candidates(key).iter().any(|c| redact.contains(c))
}

fn sanitize_value(
    v: &Value,
    redact: &[String],
    path: &str,
    max: usize,
    redacted: &mut Vec<String>,
) -> Value {
    match v {
        Value::String(s) => Value::from(truncate_utf8(s, max)),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    sanitize_value(item, redact, &format!("{path}.{i}"), max, redacted)
                })
                .collect(),
        ),
        Value::Object(obj) => {
            let mut out = Map::new();
            for (k, child) in js::entries(obj) {
                let p = if path.is_empty() {
                    k.to_string()
                } else {
                    format!("{path}.{k}")
                };
                if should_redact(k, redact) {
                    out.insert(k.to_string(), REDACTED.into());
                    redacted.push(p);
                } else {
                    out.insert(
                        k.to_string(),
                        sanitize_value(child, redact, &p, max, redacted),
                    );
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

struct Limited {
    attributes: Map<String, Value>,
    dropped: f64,
    redacted: Vec<String>,
}

fn limit_attributes(
    attrs: &Map<String, Value>,
    max_attrs: u64,
    max_bytes: usize,
    dropped: f64,
    redact: &[String],
    path: &str,
) -> Limited {
    let mut out = Limited {
        attributes: Map::new(),
        dropped: dropped.trunc().max(0.0),
        redacted: Vec::new(),
    };
    let mut count = 0u64;
    for (k, v) in js::entries(attrs) {
        if count >= max_attrs {
            out.dropped += 1.0;
            continue;
        }
        count += 1;
        let p = if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        };
        if should_redact(k, redact) {
            out.attributes.insert(k.to_string(), REDACTED.into());
            out.redacted.push(p);
        } else {
            let clean = sanitize_value(v, redact, &p, max_bytes, &mut out.redacted);
            out.attributes.insert(k.to_string(), clean);
        }
    }
    out
}

fn get_string(attrs: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| js::normalize_string(attrs.get(*k)))
}

fn get_integer(attrs: &Map<String, Value>, keys: &[&str]) -> Option<f64> {
    keys.iter().find_map(|k| integer(attrs.get(*k)))
}

/// (type, message, stacktrace) of the first exception-like event.
fn exception_from_events(
    events: &[(String, Map<String, Value>)],
) -> (Option<String>, Option<String>, Option<String>) {
    for (name, attrs) in events {
        let ty = get_string(attrs, &["exception.type"]);
        let msg = get_string(attrs, &["exception.message"]);
        let stack = get_string(attrs, &["exception.stacktrace"]);
        let is_exception = js::trim(name).to_lowercase() == "exception";
        if !is_exception && ty.is_none() && msg.is_none() {
            continue;
        }
        return (ty, msg, stack);
    }
    (None, None, None)
}

struct DecodedEvent {
    time_unix_nano: Option<String>,
    name: String,
    attributes: Map<String, Value>,
    dropped_attributes: f64,
}

struct DecodedLink {
    trace_id: String,
    span_id: String,
    trace_state: Option<String>,
    attributes: Map<String, Value>,
    dropped_attributes: f64,
}

struct DecodedSpan {
    trace_id: Option<String>,
    span_id: Option<String>,
    parent_span_id: Option<String>,
    trace_state: Option<String>,
    trace_flags: Option<f64>,
    name: String,
    kind: Option<Value>,
    start_unix_nano: Option<String>,
    end_unix_nano: Option<String>,
    timestamp: Option<String>,
    status_code: Option<Value>,
    status_message: Option<String>,
    resource_schema_url: Option<String>,
    resource_attributes: Map<String, Value>,
    scope_name: Option<String>,
    scope_version: Option<String>,
    scope_schema_url: Option<String>,
    scope_attributes: Map<String, Value>,
    attributes: Map<String, Value>,
    events: Vec<DecodedEvent>,
    links: Vec<DecodedLink>,
    dropped_attributes: f64,
    dropped_events: f64,
    dropped_links: f64,
    request_id: Option<String>,
}

fn object_or_empty(v: Option<&Value>) -> Map<String, Value> {
    match v {
        Some(Value::Object(o)) => o.clone(),
        _ => Map::new(),
    }
}

/// Reads a record in the canonical span shape (the only JSON shape this profile takes
/// on append).
fn decode_canonical_like(record: &Value) -> Result<DecodedSpan, String> {
    let obj = record
        .as_object()
        .ok_or("otel-traces record must be an object")?;
    let s = |o: &Map<String, Value>, k: &str| js::normalize_string(o.get(k));
    let trace_id = s(obj, "traceId").ok_or("traceId is required")?;
    let span_id = s(obj, "spanId").ok_or("spanId is required")?;
    let resource = object_or_empty(obj.get("resource"));
    let scope = object_or_empty(obj.get("instrumentationScope"));
    let status = object_or_empty(obj.get("status"));
    let flags = object_or_empty(obj.get("traceFlags"));
    let dropped = obj.get("dropped").and_then(Value::as_object);
    let dropped_n = |k: &str| dropped.and_then(|d| integer(d.get(k))).unwrap_or(0.0);
    let events = match obj.get("events") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_object)
            .map(|e| DecodedEvent {
                time_unix_nano: nano_string(e.get("timeUnixNano")),
                name: s(e, "name").unwrap_or_default(),
                attributes: object_or_empty(e.get("attributes")),
                dropped_attributes: integer(e.get("droppedAttributesCount")).unwrap_or(0.0),
            })
            .collect(),
        _ => Vec::new(),
    };
    let links = match obj.get("links") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_object)
            .filter_map(|l| {
                Some(DecodedLink {
                    trace_id: s(l, "traceId")?,
                    span_id: s(l, "spanId")?,
                    trace_state: s(l, "traceState"),
                    attributes: object_or_empty(l.get("attributes")),
                    dropped_attributes: integer(l.get("droppedAttributesCount")).unwrap_or(0.0),
                })
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(DecodedSpan {
        trace_id: Some(trace_id),
        span_id: Some(span_id),
        parent_span_id: s(obj, "parentSpanId"),
        trace_state: s(obj, "traceState"),
        trace_flags: integer(flags.get("raw")),
        name: s(obj, "name").unwrap_or_default(),
        kind: obj.get("kind").cloned(),
        start_unix_nano: nano_string(obj.get("startUnixNano")),
        end_unix_nano: nano_string(obj.get("endUnixNano")),
        timestamp: s(obj, "timestamp"),
        status_code: status.get("code").cloned(),
        status_message: s(&status, "message"),
        resource_schema_url: s(&resource, "schemaUrl"),
        resource_attributes: object_or_empty(resource.get("attributes")),
        scope_name: s(&scope, "name"),
        scope_version: s(&scope, "version"),
        scope_schema_url: s(&scope, "schemaUrl"),
        scope_attributes: object_or_empty(scope.get("attributes")),
        attributes: object_or_empty(obj.get("attributes")),
        events,
        links,
        dropped_attributes: dropped_n("attributes"),
        dropped_events: dropped_n("events"),
        dropped_links: dropped_n("links"),
        request_id: s(obj, "requestId"),
    })
}

/// The routing key of a normalised span: its `traceId`.
pub fn routing_key(record: &Value) -> Option<String> {
    record.get("traceId")?.as_str().map(str::to_string)
}
