//! The otel-traces profile's registry: the original's
//! `src/profiles/otelTraces/schema.ts` (`OTEL_TRACES_CANONICAL_SCHEMA`,
//! `OTEL_TRACES_DEFAULT_SEARCH_CONFIG` with its `exactKeyword` / `lowercaseKeyword` /
//! `textField` helpers, `buildOtelTracesDefaultRegistry`), transcribed key for key. No
//! routing key: otel-traces derives one per record
//! ([`crate::profiles::Profile::derived_routing_key`]).

use serde_json::{json, Map, Value};

use crate::schema::REGISTRY_API_VERSION;

fn nullable_string() -> Value {
    json!({ "type": ["string", "null"] })
}

fn nullable_number() -> Value {
    json!({ "type": ["number", "null"] })
}

fn attributes_schema() -> Value {
    json!({ "type": "object", "additionalProperties": true })
}

/// `OTEL_TRACES_CANONICAL_SCHEMA`: the stored span (see [`crate::profiles::otel_traces`]).
/// Built in parts only because one `json!` of this size exceeds the macro recursion
/// limit; the parts are joined in the literal's order.
pub(super) fn canonical_schema() -> Value {
    let mut properties = Map::new();
    for part in [
        span_properties(),
        protocol_properties(),
        detail_properties(),
    ] {
        if let Value::Object(part) = part {
            properties.extend(part);
        }
    }
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": properties,
        "required": required()
    })
}

/// The span's identity, timing, kind, status and service properties.
fn span_properties() -> Value {
    let ns = nullable_string;
    json!({
        "schemaVersion": { "type": "integer", "enum": [1] },
        "signal": { "type": "string", "enum": ["trace.span"] },
        "timestamp": { "type": "string" },
        "endTimestamp": ns(),
        "startUnixNano": ns(),
        "endUnixNano": ns(),
        "duration": nullable_number(),
        "traceId": { "type": "string" },
        "spanId": { "type": "string" },
        "parentSpanId": ns(),
        "traceState": ns(),
        "traceFlags": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "sampled": { "type": "boolean" },
                "raw": { "type": ["integer", "null"] }
            },
            "required": ["sampled", "raw"]
        },
        "name": { "type": "string" },
        "kind": {
            "type": "string",
            "enum": ["unspecified", "internal", "server", "client", "producer", "consumer"]
        },
        "status": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "code": { "type": "string", "enum": ["unset", "ok", "error"] },
                "message": ns()
            },
            "required": ["code", "message"]
        },
        "service": ns(),
        "serviceNamespace": ns(),
        "serviceInstanceId": ns(),
        "environment": ns(),
        "version": ns(),
        "region": ns(),
        "requestId": ns()
    })
}

/// The `http`, `db`, `rpc`, `messaging` and `error` properties.
fn protocol_properties() -> Value {
    let ns = nullable_string;
    json!({
        "http": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "method": ns(),
                "route": ns(),
                "path": ns(),
                "target": ns(),
                "url": ns(),
                "statusCode": { "type": ["integer", "null"] },
                "userAgent": ns()
            },
            "required": ["method", "route", "path", "target", "url", "statusCode", "userAgent"]
        },
        "db": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "system": ns(),
                "name": ns(),
                "operation": ns(),
                "statement": ns()
            },
            "required": ["system", "name", "operation", "statement"]
        },
        "rpc": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "system": ns(),
                "service": ns(),
                "method": ns()
            },
            "required": ["system", "service", "method"]
        },
        "messaging": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "system": ns(),
                "destination": ns(),
                "operation": ns()
            },
            "required": ["system", "destination", "operation"]
        },
        "error": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "isError": { "type": "boolean" },
                "type": ns(),
                "message": ns(),
                "stacktrace": ns()
            },
            "required": ["isError", "type", "message", "stacktrace"]
        }
    })
}

/// The scope, resource, attributes, events, links, dropped counts, redaction and
/// identity properties.
fn detail_properties() -> Value {
    let ns = nullable_string;
    json!({
        "instrumentationScope": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "name": ns(),
                "version": ns(),
                "schemaUrl": ns(),
                "attributes": attributes_schema()
            },
            "required": ["name", "version", "schemaUrl", "attributes"]
        },
        "resource": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "schemaUrl": ns(),
                "attributes": attributes_schema()
            },
            "required": ["schemaUrl", "attributes"]
        },
        "attributes": attributes_schema(),
        "events": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "timestamp": ns(),
                    "timeUnixNano": ns(),
                    "name": { "type": "string" },
                    "attributes": attributes_schema(),
                    "droppedAttributesCount": { "type": "integer" }
                },
                "required": ["timestamp", "timeUnixNano", "name", "attributes"]
            }
        },
        "eventNames": {
            "type": "array",
            "items": { "type": "string" }
        },
        "links": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "traceId": { "type": "string" },
                    "spanId": { "type": "string" },
                    "traceState": ns(),
                    "attributes": attributes_schema(),
                    "droppedAttributesCount": { "type": "integer" }
                },
                "required": ["traceId", "spanId", "traceState", "attributes"]
            }
        },
        "dropped": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "attributes": { "type": "integer" },
                "events": { "type": "integer" },
                "links": { "type": "integer" }
            },
            "required": ["attributes", "events", "links"]
        },
        "redaction": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "keys": {
                    "type": "array",
                    "items": { "type": "string" }
                }
            },
            "required": ["keys"]
        },
        "identity": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "spanKey": { "type": "string" },
                "dedupeKey": { "type": "string" }
            },
            "required": ["spanKey", "dedupeKey"]
        }
    })
}

/// The canonical schema's `required` list.
fn required() -> Value {
    json!([
        "schemaVersion",
        "signal",
        "timestamp",
        "endTimestamp",
        "startUnixNano",
        "endUnixNano",
        "duration",
        "traceId",
        "spanId",
        "parentSpanId",
        "traceState",
        "traceFlags",
        "name",
        "kind",
        "status",
        "service",
        "serviceNamespace",
        "serviceInstanceId",
        "environment",
        "version",
        "region",
        "requestId",
        "http",
        "db",
        "rpc",
        "messaging",
        "error",
        "instrumentationScope",
        "resource",
        "attributes",
        "events",
        "eventNames",
        "links",
        "dropped",
        "redaction",
        "identity"
    ])
}

/// `exactKeyword(jsonPointer, aggregatable)`: `aggregatable` is only present when set.
fn exact_keyword(json_pointer: &str, aggregatable: bool) -> Map<String, Value> {
    let mut field = Map::new();
    field.insert("kind".into(), "keyword".into());
    field.insert(
        "bindings".into(),
        json!([{ "version": 1, "jsonPointer": json_pointer }]),
    );
    for flag in ["exact", "prefix", "exists", "sortable"] {
        field.insert(flag.into(), true.into());
    }
    if aggregatable {
        field.insert("aggregatable".into(), true.into());
    }
    field
}

fn exact(json_pointer: &str) -> Value {
    Value::Object(exact_keyword(json_pointer, false))
}

fn exact_agg(json_pointer: &str) -> Value {
    Value::Object(exact_keyword(json_pointer, true))
}

/// `lowercaseKeyword(jsonPointer, true)`: `{...exactKeyword(…), normalizer}`, so the
/// normalizer comes last (every use in the original passes `aggregatable = true`).
fn lowercase_agg(json_pointer: &str) -> Value {
    let mut field = exact_keyword(json_pointer, true);
    field.insert("normalizer".into(), "lowercase_v1".into());
    Value::Object(field)
}

/// `textField(jsonPointer)`.
fn text(json_pointer: &str) -> Value {
    json!({
        "kind": "text",
        "bindings": [{ "version": 1, "jsonPointer": json_pointer }],
        "analyzer": "unicode_word_v1",
        "exists": true,
        "positions": true
    })
}

/// `OTEL_TRACES_DEFAULT_SEARCH_CONFIG`, in the object literal's key order.
pub(super) fn search_config() -> Value {
    json!({
        "profile": "otel-traces",
        "primaryTimestampField": "timestamp",
        "aliases": {
            "db": "db.system",
            "duration_ms": "duration",
            "error": "error.isError",
            "method": "http.method",
            "op": "name",
            "parent": "parentSpanId",
            "req": "requestId",
            "route": "http.route",
            "span": "spanId",
            "status": "http.statusCode",
            "svc": "service",
            "time": "timestamp",
            "trace": "traceId",
            "ts": "timestamp"
        },
        "defaultFields": [
            { "field": "name", "boost": 2 },
            { "field": "error.message", "boost": 2 },
            { "field": "status.message", "boost": 1.5 },
            { "field": "events.name", "boost": 1.2 },
            { "field": "db.statement", "boost": 0.5 }
        ],
        "fields": {
            "timestamp": {
                "kind": "date",
                "bindings": [{ "version": 1, "jsonPointer": "/timestamp" }],
                "exact": true,
                "column": true,
                "exists": true,
                "sortable": true,
                "aggregatable": true
            },
            "endTimestamp": {
                "kind": "date",
                "bindings": [{ "version": 1, "jsonPointer": "/endTimestamp" }],
                "exact": true,
                "column": true,
                "exists": true,
                "sortable": true,
                "aggregatable": true
            },
            "duration": {
                "kind": "float",
                "bindings": [{ "version": 1, "jsonPointer": "/duration" }],
                "exact": true,
                "column": true,
                "exists": true,
                "sortable": true,
                "aggregatable": true
            },
            "traceId": exact("/traceId"),
            "spanId": exact("/spanId"),
            "parentSpanId": exact("/parentSpanId"),
            "requestId": exact("/requestId"),
            "service": lowercase_agg("/service"),
            "serviceNamespace": lowercase_agg("/serviceNamespace"),
            "serviceInstanceId": exact("/serviceInstanceId"),
            "environment": lowercase_agg("/environment"),
            "version": exact("/version"),
            "region": lowercase_agg("/region"),
            "name": {
                "kind": "keyword",
                "bindings": [{ "version": 1, "jsonPointer": "/name" }],
                "exact": true,
                "prefix": true,
                "exists": true,
                "sortable": true,
                "aggregatable": true
            },
            "kind": lowercase_agg("/kind"),
            "status.code": lowercase_agg("/status/code"),
            "status.message": text("/status/message"),
            "error.isError": {
                "kind": "bool",
                "bindings": [{ "version": 1, "jsonPointer": "/error/isError" }],
                "exact": true,
                "column": true,
                "exists": true,
                "sortable": true,
                "aggregatable": true
            },
            "error.type": exact_agg("/error/type"),
            "error.message": text("/error/message"),
            "error.stacktrace": text("/error/stacktrace"),
            "http.method": lowercase_agg("/http/method"),
            "http.route": exact_agg("/http/route"),
            "http.path": exact("/http/path"),
            "http.statusCode": {
                "kind": "integer",
                "bindings": [{ "version": 1, "jsonPointer": "/http/statusCode" }],
                "exact": true,
                "column": true,
                "exists": true,
                "sortable": true,
                "aggregatable": true
            },
            "db.system": lowercase_agg("/db/system"),
            "db.operation": lowercase_agg("/db/operation"),
            "db.statement": text("/db/statement"),
            "rpc.system": lowercase_agg("/rpc/system"),
            "rpc.service": exact_agg("/rpc/service"),
            "rpc.method": exact_agg("/rpc/method"),
            "messaging.system": lowercase_agg("/messaging/system"),
            "messaging.destination": exact_agg("/messaging/destination"),
            "messaging.operation": lowercase_agg("/messaging/operation"),
            "events.name": text("/eventNames")
        },
        "rollups": {
            "spans": {
                "dimensions": ["service", "kind", "status.code"],
                "intervals": ["1m", "5m", "1h"],
                "measures": {
                    "spans": { "kind": "count" },
                    "errors": { "kind": "count", "include": "error:true" },
                    "latency": { "kind": "summary", "field": "duration", "histogram": "log2_v1" }
                }
            },
            "http_server": {
                "include": "kind:server",
                "dimensions": ["service", "http.method", "http.route", "http.statusCode"],
                "intervals": ["1m", "5m", "1h"],
                "measures": {
                    "requests": { "kind": "count" },
                    "errors": { "kind": "count", "include": "error:true" },
                    "latency": { "kind": "summary", "field": "duration", "histogram": "log2_v1" }
                }
            }
        }
    })
}

/// `buildOtelTracesDefaultRegistry(stream)`.
pub(super) fn default_registry(stream: &str) -> Value {
    json!({
        "apiVersion": REGISTRY_API_VERSION,
        "schema": stream,
        "currentVersion": 1,
        "search": search_config(),
        "boundaries": [{ "offset": 0, "version": 1 }],
        "schemas": { "1": canonical_schema() },
        "lenses": {}
    })
}
