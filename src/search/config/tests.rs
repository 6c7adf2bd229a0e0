//! Search configuration tests. `testdata/search_configs.json` was produced by running
//! the original's `parseSchemaUpdateResult({search})` (prisma/streams 0.1.11 under Bun
//! 1.3.11) on each configuration, including the metrics, evlog and otel-traces default
//! configurations: each row has the error message, or the original's normalised form.

use serde_json::{json, Value};

use super::*;

#[test]
fn configurations_match_the_original() {
    let cases: Vec<Value> =
        serde_json::from_str(include_str!("../testdata/search_configs.json")).unwrap();
    assert!(cases.len() > 140);
    let mut accepted = 0;
    for case in cases {
        let search = &case["search"];
        // Known difference: the original finds `toString` among the declared fields
        // (a plain object's prototype); only declared fields count here.
        if search["defaultFields"] == json!([{"field": "toString"}]) {
            assert_eq!(
                validate(search).unwrap_err(),
                "search.defaultFields[0].field must reference a declared field"
            );
            continue;
        }
        let got = SearchConfig::parse_optional(search);
        match (&got, case.get("ok"), case.get("err")) {
            (Ok(cfg), Some(Value::String(want)), _) => {
                let normalized = cfg
                    .as_ref()
                    .map_or(Value::Null, SearchConfig::to_normalized_json);
                assert_eq!(
                    &serde_json::to_string(&normalized).unwrap(),
                    want,
                    "{search}"
                );
                accepted += 1;
            }
            (Err(e), _, Some(Value::String(want))) => assert_eq!(e, want, "{search}"),
            _ => panic!("{search}: got {got:?}, want {case}"),
        }
        assert_eq!(validate(search).is_ok(), case.get("ok").is_some());
    }
    assert!(accepted > 30);
}

/// The two configurations `@prisma/dev` 0.25.2 posts (prisma-wal and prisma-queries).
#[test]
fn prisma_dev_configurations_are_accepted() {
    let wal = json!({"aliases":{"rowKey":"key","table":"type"},
        "fields":{"eventTime":{"bindings":[{"jsonPointer":"/headers/timestamp","version":1}],"column":true,"exact":true,"exists":true,"kind":"date","sortable":true},
                  "key":{"bindings":[{"jsonPointer":"/key","version":1}],"exact":true,"exists":true,"kind":"keyword"},
                  "operation":{"bindings":[{"jsonPointer":"/headers/operation","version":1}],"exact":true,"exists":true,"kind":"keyword"},
                  "type":{"bindings":[{"jsonPointer":"/type","version":1}],"exact":true,"exists":true,"kind":"keyword"}},
        "primaryTimestampField":"eventTime"});
    let queries = json!({"aliases":{"applicationName":"applicationName","groupKey":"groupKey","queryId":"queryId"},
        "fields":{"applicationName":{"bindings":[{"jsonPointer":"/applicationName","version":1}],"exact":true,"exists":true,"kind":"keyword"},
                  "eventTime":{"bindings":[{"jsonPointer":"/timestamp","version":1}],"column":true,"exact":true,"exists":true,"kind":"date","sortable":true},
                  "groupKey":{"bindings":[{"jsonPointer":"/groupKey","version":1}],"exact":true,"exists":true,"kind":"keyword"},
                  "queryId":{"bindings":[{"jsonPointer":"/queryId","version":1}],"exact":true,"exists":true,"kind":"keyword"}},
        "primaryTimestampField":"eventTime"});
    validate(&wal).unwrap();
    validate(&queries).unwrap();

    let cfg = SearchConfig::parse(&wal).unwrap();
    assert_eq!(cfg.primary_timestamp_field, "eventTime");
    let (name, table) = cfg.field("table").unwrap();
    assert_eq!(name, "type");
    assert_eq!(table.kind, FieldKind::Keyword);
    assert_eq!(table.binding_for_version(1).unwrap().json_pointer, "/type");
    let (_, time) = cfg.field("eventTime").unwrap();
    assert!(time.column && time.exact && time.exists && time.sortable && !time.prefix);
    assert_eq!(cfg.resolve_alias("rowKey"), "key");
    assert_eq!(cfg.resolve_alias("other"), "other");
    assert!(cfg.field("missing").is_none());

    let q = SearchConfig::parse(&queries).unwrap();
    let names: Vec<&str> = q.fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["applicationName", "eventTime", "groupKey", "queryId"]
    );
    assert_eq!(
        q.field("queryId").unwrap().1.bindings[0].json_pointer,
        "/queryId"
    );
}

#[test]
fn null_means_no_configuration() {
    validate(&Value::Null).unwrap();
    assert_eq!(SearchConfig::parse_optional(&Value::Null).unwrap(), None);
    assert_eq!(
        SearchConfig::parse(&Value::Null).unwrap_err(),
        "search must be an object"
    );
}

#[test]
fn bindings_select_by_schema_version() {
    let cfg = SearchConfig::parse(&json!({
        "primaryTimestampField": "t",
        "fields": {"t": {"kind": "date", "bindings": [
            {"version": 3, "jsonPointer": "/c"}, {"version": 1, "jsonPointer": "/a"}
        ]}}
    }))
    .unwrap();
    let t = cfg.field("t").unwrap().1;
    assert_eq!(t.binding_for_version(0), None);
    assert_eq!(t.binding_for_version(1).unwrap().json_pointer, "/a");
    assert_eq!(t.binding_for_version(2).unwrap().json_pointer, "/a");
    assert_eq!(t.binding_for_version(9).unwrap().json_pointer, "/c");
}

/// The rollup example of the original's docs/schemas.md and test/search_schema.test.ts.
#[test]
fn rollups_are_typed() {
    let cfg = SearchConfig::parse(&json!({
        "primaryTimestampField": "eventTime",
        "fields": {
            "eventTime": {"kind": "date", "bindings": [{"version": 1, "jsonPointer": "/eventTime"}], "exact": true, "column": true, "exists": true, "sortable": true},
            "service": {"kind": "keyword", "bindings": [{"version": 1, "jsonPointer": "/service"}], "exact": true, "prefix": true, "exists": true},
            "kind": {"kind": "keyword", "bindings": [{"version": 1, "jsonPointer": "/kind"}], "exact": true, "exists": true},
            "error": {"kind": "bool", "bindings": [{"version": 1, "jsonPointer": "/error"}], "exact": true, "column": true, "exists": true},
            "duration": {"kind": "float", "bindings": [{"version": 1, "jsonPointer": "/duration"}], "exact": true, "column": true, "exists": true, "sortable": true, "aggregatable": true}
        },
        "rollups": {
            "requests": {"include": "kind:server", "dimensions": ["service"], "intervals": ["1m"],
                "measures": {"requests": {"kind": "count"}, "errors": {"kind": "count", "include": "error:true"},
                             "latency": {"kind": "summary", "field": "duration", "histogram": "log2_v1"}}},
            "metrics": {"dimensions": ["service"], "intervals": ["1m", "90s"],
                "measures": {"duration": {"kind": "summary_parts", "countJsonPointer": "/metric/count", "sumJsonPointer": "/metric/sum",
                    "minJsonPointer": "/metric/min", "maxJsonPointer": "/metric/max", "histogramJsonPointer": "/metric/histogram"}}}
        }
    }))
    .unwrap();
    let r = cfg.rollup("requests").unwrap();
    assert_eq!(r.timestamp_field, "eventTime");
    assert_eq!(r.include.as_deref(), Some("kind:server"));
    assert_eq!(r.dimensions.as_deref(), Some(&["service".to_string()][..]));
    assert_eq!(
        r.intervals,
        [RollupInterval {
            text: "1m".into(),
            ms: 60_000
        }]
    );
    assert_eq!(
        r.measures,
        [
            (
                "requests".to_string(),
                RollupMeasure::Count { include: None }
            ),
            (
                "errors".to_string(),
                RollupMeasure::Count {
                    include: Some("error:true".into())
                }
            ),
            (
                "latency".to_string(),
                RollupMeasure::Summary {
                    field: "duration".into(),
                    log2_histogram: true
                }
            ),
        ]
    );
    let m = cfg.rollup("metrics").unwrap();
    assert_eq!(m.intervals[1].ms, 90_000);
    assert_eq!(
        m.measures[0].1,
        RollupMeasure::SummaryParts {
            count_json_pointer: "/metric/count".into(),
            sum_json_pointer: "/metric/sum".into(),
            min_json_pointer: "/metric/min".into(),
            max_json_pointer: "/metric/max".into(),
            histogram_json_pointer: Some("/metric/histogram".into()),
        }
    );
    assert!(cfg.rollup("nope").is_none());
}

#[test]
fn durations() {
    for (s, ms) in [
        ("1ms", 1),
        ("15s", 15_000),
        (" 30m ", 1_800_000),
        ("24h", 86_400_000),
        ("2d", 172_800_000),
    ] {
        assert_eq!(duration_ms(s), Some(ms), "{s}");
    }
    for s in ["", "m", "1", "1w", "1.5m", "-1m", "1 m", "1M"] {
        assert_eq!(duration_ms(s), None, "{s}");
    }
}
