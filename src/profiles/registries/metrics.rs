//! The metrics profile's registry: the original's `src/profiles/metrics/schema.ts`
//! (`METRICS_CANONICAL_SCHEMA`, `METRICS_DEFAULT_SEARCH_CONFIG`,
//! `buildMetricsDefaultRegistry`, `buildInternalMetricsRegistry`), transcribed key for
//! key. The internal `__stream_metrics__` stream gets the same schema with neither a
//! routing key nor a search configuration.

use serde_json::{json, Value};

use crate::schema::REGISTRY_API_VERSION;

/// `METRICS_CANONICAL_SCHEMA`: the stored interval record (see [`crate::profiles::metrics`]).
pub(super) fn canonical_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "apiVersion": { "type": "string", "const": "durable.streams/metrics/v1" },
            "kind": { "type": "string", "const": "interval" },
            "metric": { "type": "string" },
            "unit": { "type": "string" },
            "metricKind": { "type": "string" },
            "temporality": { "type": "string" },
            "windowStart": { "type": "integer" },
            "windowEnd": { "type": "integer" },
            "intervalMs": { "type": "integer" },
            "instance": { "type": ["string", "null"] },
            "stream": { "type": ["string", "null"] },
            "tags": {
                "type": "object",
                "additionalProperties": { "type": "string" }
            },
            "attributes": {
                "type": "object",
                "additionalProperties": { "type": "string" }
            },
            "dimensionPairs": {
                "type": "array",
                "items": { "type": "string" }
            },
            "dimensionKey": { "type": ["string", "null"] },
            "seriesKey": { "type": "string" },
            "count": { "type": "number" },
            "sum": { "type": "number" },
            "min": { "type": ["number", "null"] },
            "max": { "type": ["number", "null"] },
            "avg": { "type": "number" },
            "p50": { "type": "number" },
            "p95": { "type": "number" },
            "p99": { "type": "number" },
            "buckets": {
                "type": "object",
                "additionalProperties": { "type": "number" }
            },
            "summary": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "count": { "type": "number" },
                    "sum": { "type": "number" },
                    "min": { "type": ["number", "null"] },
                    "max": { "type": ["number", "null"] },
                    "histogram": {
                        "type": "object",
                        "additionalProperties": { "type": "number" }
                    }
                },
                "required": ["count", "sum", "min", "max", "histogram"]
            }
        },
        "required": [
            "apiVersion",
            "kind",
            "metric",
            "unit",
            "metricKind",
            "temporality",
            "windowStart",
            "windowEnd",
            "intervalMs",
            "instance",
            "stream",
            "tags",
            "attributes",
            "dimensionPairs",
            "dimensionKey",
            "seriesKey",
            "count",
            "sum",
            "min",
            "max",
            "avg",
            "p50",
            "p95",
            "p99",
            "buckets",
            "summary"
        ]
    })
}

/// `METRICS_DEFAULT_SEARCH_CONFIG`, in the object literal's key order.
pub(super) fn search_config() -> Value {
    json!({
        "profile": "metrics",
        "primaryTimestampField": "windowStart",
        "aliases": {
            "ts": "windowStart",
            "time": "windowStart",
            "name": "metric",
            "dims": "dimensionKey",
            "series": "seriesKey"
        },
        "defaultFields": [
            { "field": "metric", "boost": 2 },
            { "field": "stream", "boost": 1.25 },
            { "field": "dimensionPairs", "boost": 1 }
        ],
        "fields": {
            "windowStart": {
                "kind": "date",
                "bindings": [{ "version": 1, "jsonPointer": "/windowStart" }],
                "exact": true,
                "column": true,
                "exists": true,
                "sortable": true,
                "aggregatable": true
            },
            "windowEnd": {
                "kind": "date",
                "bindings": [{ "version": 1, "jsonPointer": "/windowEnd" }],
                "exact": true,
                "column": true,
                "exists": true,
                "sortable": true
            },
            "intervalMs": {
                "kind": "integer",
                "bindings": [{ "version": 1, "jsonPointer": "/intervalMs" }],
                "exact": true,
                "column": true,
                "exists": true,
                "sortable": true,
                "aggregatable": true
            },
            "metric": {
                "kind": "keyword",
                "bindings": [{ "version": 1, "jsonPointer": "/metric" }],
                "normalizer": "lowercase_v1",
                "exact": true,
                "prefix": true,
                "exists": true,
                "sortable": true,
                "aggregatable": true
            },
            "unit": {
                "kind": "keyword",
                "bindings": [{ "version": 1, "jsonPointer": "/unit" }],
                "normalizer": "lowercase_v1",
                "exact": true,
                "prefix": true,
                "exists": true,
                "aggregatable": true
            },
            "metricKind": {
                "kind": "keyword",
                "bindings": [{ "version": 1, "jsonPointer": "/metricKind" }],
                "normalizer": "lowercase_v1",
                "exact": true,
                "prefix": true,
                "exists": true,
                "aggregatable": true
            },
            "temporality": {
                "kind": "keyword",
                "bindings": [{ "version": 1, "jsonPointer": "/temporality" }],
                "normalizer": "lowercase_v1",
                "exact": true,
                "prefix": true,
                "exists": true,
                "aggregatable": true
            },
            "stream": {
                "kind": "keyword",
                "bindings": [{ "version": 1, "jsonPointer": "/stream" }],
                "normalizer": "lowercase_v1",
                "exact": true,
                "prefix": true,
                "exists": true,
                "sortable": true,
                "aggregatable": true
            },
            "instance": {
                "kind": "keyword",
                "bindings": [{ "version": 1, "jsonPointer": "/instance" }],
                "exact": true,
                "prefix": true,
                "exists": true,
                "sortable": true,
                "aggregatable": true
            },
            "seriesKey": {
                "kind": "keyword",
                "bindings": [{ "version": 1, "jsonPointer": "/seriesKey" }],
                "exact": true,
                "exists": true,
                "sortable": true
            },
            "dimensionKey": {
                "kind": "keyword",
                "bindings": [{ "version": 1, "jsonPointer": "/dimensionKey" }],
                "exact": true,
                "prefix": true,
                "exists": true,
                "sortable": true,
                "aggregatable": true
            },
            "dimensionPairs": {
                "kind": "keyword",
                "bindings": [{ "version": 1, "jsonPointer": "/dimensionPairs" }],
                "exact": true,
                "prefix": true,
                "exists": true
            },
            "count": {
                "kind": "integer",
                "bindings": [{ "version": 1, "jsonPointer": "/count" }],
                "exact": true,
                "column": true,
                "exists": true,
                "sortable": true,
                "aggregatable": true
            },
            "sum": {
                "kind": "float",
                "bindings": [{ "version": 1, "jsonPointer": "/sum" }],
                "exact": true,
                "column": true,
                "exists": true,
                "sortable": true,
                "aggregatable": true
            },
            "min": {
                "kind": "float",
                "bindings": [{ "version": 1, "jsonPointer": "/min" }],
                "exact": true,
                "column": true,
                "exists": true,
                "sortable": true
            },
            "max": {
                "kind": "float",
                "bindings": [{ "version": 1, "jsonPointer": "/max" }],
                "exact": true,
                "column": true,
                "exists": true,
                "sortable": true
            },
            "avg": {
                "kind": "float",
                "bindings": [{ "version": 1, "jsonPointer": "/avg" }],
                "exact": true,
                "column": true,
                "exists": true,
                "sortable": true
            },
            "p95": {
                "kind": "float",
                "bindings": [{ "version": 1, "jsonPointer": "/p95" }],
                "exact": true,
                "column": true,
                "exists": true,
                "sortable": true
            },
            "p99": {
                "kind": "float",
                "bindings": [{ "version": 1, "jsonPointer": "/p99" }],
                "exact": true,
                "column": true,
                "exists": true,
                "sortable": true
            }
        },
        "rollups": {
            "metrics": {
                "timestampField": "windowStart",
                "dimensions": ["metric", "unit", "stream", "instance", "dimensionKey", "metricKind", "temporality"],
                "intervals": ["10s", "1m", "5m", "1h"],
                "measures": {
                    "value": {
                        "kind": "summary_parts",
                        "countJsonPointer": "/count",
                        "sumJsonPointer": "/sum",
                        "minJsonPointer": "/min",
                        "maxJsonPointer": "/max",
                        "histogramJsonPointer": "/buckets"
                    }
                }
            }
        }
    })
}

/// `buildMetricsDefaultRegistry(stream)`: routing key `/seriesKey` (required) and the
/// metrics search configuration.
pub(super) fn default_registry(stream: &str) -> Value {
    json!({
        "apiVersion": REGISTRY_API_VERSION,
        "schema": stream,
        "currentVersion": 1,
        "routingKey": { "jsonPointer": "/seriesKey", "required": true },
        "search": search_config(),
        "boundaries": [{ "offset": 0, "version": 1 }],
        "schemas": { "1": canonical_schema() },
        "lenses": {}
    })
}

/// `buildInternalMetricsRegistry(stream)`: the schema only.
pub(super) fn internal_registry(stream: &str) -> Value {
    json!({
        "apiVersion": REGISTRY_API_VERSION,
        "schema": stream,
        "currentVersion": 1,
        "boundaries": [{ "offset": 0, "version": 1 }],
        "schemas": { "1": canonical_schema() },
        "lenses": {}
    })
}
