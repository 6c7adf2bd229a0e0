//! Profile tests. The tables under `testdata/` were produced by running the original
//! (prisma/streams 0.1.11 under Bun 1.3.11) on each input: `profile_updates.json` holds
//! `POST /_profile` bodies with the resource or the error the original answers,
//! `state_protocol_records.json` appended records with their verdict, and
//! `normalize.json` records appended to metrics, evlog and otel-traces streams with the
//! stored record and routing key (the clock fixed at 2026-01-01T00:00:00.123Z).

use serde_json::{json, Value};

use super::*;

const FIXED_NOW_MS: i64 = 1_767_225_600_123;

fn table(text: &str) -> Vec<Value> {
    serde_json::from_str::<Vec<Value>>(text).unwrap()
}

#[test]
fn profile_updates_match_the_original() {
    let cases = table(include_str!("testdata/profile_updates.json"));
    assert!(cases.len() > 100);
    for case in cases {
        let body = case["body"].as_str().unwrap();
        let ct = case["contentType"].as_str().unwrap();
        let got = parse_update(body.as_bytes(), ct);
        match (&got, case.get("ok"), case.get("err")) {
            (Ok(p), Some(Value::String(want)), _) => {
                let text = serde_json::to_string(&response(p)).unwrap();
                assert_eq!(&text, want, "body {body}");
                // The stored form parses back to the same profile and the same text.
                let again = Profile::from_stored(&p.to_json()).unwrap();
                assert_eq!(&again, p, "body {body}");
                assert_eq!(serde_json::to_string(&response(&again)).unwrap(), *want);
            }
            (Err(e), _, Some(Value::String(want))) => assert_eq!(e, want, "body {body}"),
            _ => panic!("body {body}: got {got:?}, want {case}"),
        }
    }
}

/// `@prisma/dev` 0.25.2 installs this profile on `prisma-wal`; the original answers (and
/// stores) exactly the defaulted form, key order included.
#[test]
fn prisma_dev_body_yields_the_defaulted_profile() {
    let body = br#"{"apiVersion":"durable.streams/profile/v1","profile":{"kind":"state-protocol","touch":{"enabled":true,"onMissingBefore":"coarse"}}}"#;
    let p = parse_update(body, "application/json").unwrap();
    let stored = concat!(
        r#"{"kind":"state-protocol","touch":{"enabled":true,"coarseIntervalMs":100,"touchCoalesceWindowMs":100,"onMissingBefore":"coarse","#,
        r#""lagDegradeFineTouchesAtSourceOffsets":5000,"lagRecoverFineTouchesAtSourceOffsets":1000,"fineTouchBudgetPerBatch":2000,"#,
        r#""fineTokensPerSecond":200000,"fineBurstTokens":400000,"lagReservedFineTouchBudgetPerBatch":200,"#,
        r#""memory":{"bucketMs":100,"filterPow2":22,"k":4,"pendingMaxKeys":100000,"keyIndexMaxKeys":32,"hotKeyTtlMs":10000,"#,
        r#""hotTemplateTtlMs":10000,"hotMaxKeys":1000000,"hotMaxTemplates":4096},"#,
        r#""templates":{"defaultInactivityTtlMs":3600000,"lastSeenPersistIntervalMs":300000,"gcIntervalMs":60000,"#,
        r#""maxActiveTemplatesPerEntity":256,"maxActiveTemplatesPerStream":2048,"activationRateLimitPerMinute":100}}}"#
    );
    assert_eq!(serde_json::to_string(&p.to_json()).unwrap(), stored);
    assert_eq!(
        serde_json::to_string(&response(&p)).unwrap(),
        format!(r#"{{"apiVersion":"durable.streams/profile/v1","profile":{stored}}}"#)
    );
    // Re-posting the stored form (or loading it) changes nothing.
    let reposted = parse_update(
        format!(r#"{{"profile":{stored}}}"#).as_bytes(),
        "application/json; charset=utf-8",
    )
    .unwrap();
    assert_eq!(reposted, p);
    let loaded = Profile::load(Some("state-protocol"), Some(stored)).unwrap();
    assert_eq!(loaded, p);
    let touch = p.touch_config().unwrap();
    assert_eq!(touch, &TouchConfig::enabled_defaults());
    assert_eq!(touch.on_missing_before, OnMissingBefore::Coarse);
}

#[test]
fn disabled_touch_collapses_and_has_no_routes() {
    let p = parse_update(
        br#"{"profile":{"kind":"state-protocol","touch":{"enabled":false,"coarseIntervalMs":-1}}}"#,
        "application/json",
    )
    .unwrap();
    assert_eq!(
        response(&p),
        json!({"apiVersion": API_VERSION, "profile": {"kind": "state-protocol", "touch": {"enabled": false}}})
    );
    assert!(p.touch_config().is_none());
    let bare = parse_update(
        br#"{"profile":{"kind":"state-protocol"}}"#,
        "application/json",
    )
    .unwrap();
    assert_eq!(bare.to_json(), json!({"kind": "state-protocol"}));
    assert!(bare.touch_config().is_none());
    assert_eq!(TouchConfig::default().to_json(), json!({"enabled": false}));
}

#[test]
fn generic_is_the_default_resource() {
    assert_eq!(
        serde_json::to_string(&response(&Profile::default())).unwrap(),
        r#"{"apiVersion":"durable.streams/profile/v1","profile":{"kind":"generic"}}"#
    );
    assert_eq!(Profile::load(None, None).unwrap(), Profile::Generic);
    assert_eq!(Profile::load(Some(""), None).unwrap(), Profile::Generic);
    assert_eq!(
        Profile::load(Some("metrics"), Some("garbage")).unwrap(),
        Profile::Metrics
    );
    assert_eq!(
        Profile::load(Some("state-protocol"), None).unwrap(),
        Profile::StateProtocol { touch: None }
    );
    assert_eq!(
        Profile::load(Some("bogus"), None).unwrap_err(),
        "unknown stream profile: bogus"
    );
    assert!(Profile::load(Some("evlog"), Some("{")).is_err());
    assert_eq!(
        Profile::load(Some("evlog"), Some(r#"{"kind":"otel-traces"}"#)).unwrap_err(),
        "profile.kind must be evlog"
    );
}

#[test]
fn kinds_and_stored_rows() {
    let all = [
        Profile::Generic,
        Profile::StateProtocol { touch: None },
        Profile::Metrics,
        Profile::Evlog(EvlogProfile::default()),
        Profile::OtelTraces(OtelTracesProfile::default()),
    ];
    let kinds: Vec<&str> = all.iter().map(Profile::kind).collect();
    assert_eq!(
        kinds,
        [
            "generic",
            "state-protocol",
            "metrics",
            "evlog",
            "otel-traces"
        ]
    );
    let stored: Vec<bool> = all.iter().map(Profile::uses_stored_row).collect();
    assert_eq!(stored, [false, true, false, true, true]);
    for p in &all {
        assert_eq!(
            &Profile::default_for_kind(Some(p.kind())).unwrap(),
            p,
            "{}",
            p.kind()
        );
        assert_eq!(p.to_json(), json!({"kind": p.kind()}));
    }
}

#[test]
fn late_install_is_refused_for_normalising_kinds() {
    let evlog = Profile::Evlog(EvlogProfile::default());
    let otel = Profile::OtelTraces(OtelTracesProfile::default());
    assert_eq!(
        evlog.check_install(Some("generic"), 1).unwrap_err(),
        "evlog profile must be installed before appending data"
    );
    assert_eq!(
        otel.check_install(None, 3).unwrap_err(),
        "otel-traces profile must be installed before appending data"
    );
    assert!(evlog.check_install(Some("evlog"), 10).is_ok());
    assert!(evlog.check_install(Some("generic"), 0).is_ok());
    assert!(Profile::Metrics.check_install(Some("generic"), 10).is_ok());
    let sp = Profile::StateProtocol { touch: None };
    assert!(sp.check_install(Some("generic"), 10).is_ok());
}

#[test]
fn state_protocol_records_match_the_original() {
    let cases = table(include_str!("testdata/state_protocol_records.json"));
    for case in cases {
        let record = &case["record"];
        let got = validate_state_protocol(record);
        match (&got, case.get("err")) {
            (Ok(_), None) => {}
            (Err(e), Some(Value::String(want))) => assert_eq!(e, want, "record {record}"),
            _ => panic!("record {record}: got {got:?}, want {case}"),
        }
        // prepare_record keeps valid records unchanged.
        let sp = Profile::StateProtocol { touch: None };
        match sp.prepare_record(record.clone(), FIXED_NOW_MS) {
            Ok(v) => assert_eq!(&v, record),
            Err(e) => assert_eq!(Some(&Value::from(e)), case.get("err")),
        }
    }
}

#[test]
fn state_records_expose_what_touch_needs() {
    let change = validate_state_protocol(&json!({
        "type": "public.todos", "key": "7", "value": {"id": 7}, "old_value": null,
        "headers": {"operation": "update", "txid": "t9", "timestamp": "2026-01-01T00:00:00Z"}
    }))
    .unwrap();
    let c = change.as_change().unwrap();
    assert_eq!(c.entity, "public.todos");
    assert_eq!(c.key, "7");
    assert_eq!(c.operation, Operation::Update);
    assert_eq!(c.value, Some(json!({"id": 7})));
    assert_eq!(c.old_value, Some(Value::Null));
    assert_eq!(c.txid.as_deref(), Some("t9"));
    assert_eq!(c.timestamp.as_deref(), Some("2026-01-01T00:00:00Z"));

    let delete = validate_state_protocol(&json!({
        "type": "t", "key": "k", "headers": {"operation": "delete"}
    }))
    .unwrap();
    let d = delete.as_change().unwrap();
    assert_eq!((d.value.clone(), d.old_value.clone()), (None, None));

    let control =
        validate_state_protocol(&json!({"headers": {"control": "snapshot-end", "offset": "-1"}}))
            .unwrap();
    assert!(control.as_change().is_none());
    assert_eq!(
        control,
        StateRecord::Control(ControlRecord {
            control: ControlKind::SnapshotEnd,
            offset: Some("-1".into())
        })
    );
}

#[test]
fn normalisation_matches_the_original() {
    let cases = table(include_str!("testdata/normalize.json"));
    for case in cases {
        let profile = Profile::parse(&case["profile"], "profile")
            .unwrap_or_else(|e| panic!("{}: {e}", case["profile"]));
        let record = case["record"].clone();
        let got = profile.prepare_record(record.clone(), FIXED_NOW_MS);
        match (&got, case.get("ok"), case.get("err")) {
            (Ok(v), Some(Value::String(want)), _) => {
                assert_eq!(&serde_json::to_string(v).unwrap(), want, "record {record}");
                let key = profile.derived_routing_key(v);
                assert_eq!(
                    key.map(Value::from).unwrap_or(Value::Null),
                    case["routingKey"],
                    "record {record}"
                );
            }
            (Err(e), _, Some(Value::String(want))) => assert_eq!(e, want, "record {record}"),
            _ => panic!("record {record}: got {got:?}, want {case}"),
        }
    }
}

#[test]
fn derived_routing_keys_per_kind() {
    let rec = json!({"requestId": "r", "traceId": "t", "seriesKey": "s"});
    assert_eq!(Profile::Generic.derived_routing_key(&rec), None);
    assert_eq!(
        Profile::StateProtocol { touch: None }.derived_routing_key(&rec),
        None
    );
    assert_eq!(
        Profile::Metrics.derived_routing_key(&rec).as_deref(),
        Some("s")
    );
    let evlog = Profile::Evlog(EvlogProfile::default());
    assert_eq!(evlog.derived_routing_key(&rec).as_deref(), Some("r"));
    assert_eq!(
        evlog
            .derived_routing_key(&json!({"requestId": null, "traceId": "t"}))
            .as_deref(),
        Some("t")
    );
    assert_eq!(
        evlog.derived_routing_key(&json!({"requestId": null, "traceId": null})),
        None
    );
    let otel = Profile::OtelTraces(OtelTracesProfile::default());
    assert_eq!(otel.derived_routing_key(&rec).as_deref(), Some("t"));
    // Generic records pass through untouched.
    assert_eq!(
        Profile::Generic
            .prepare_record(json!([1, {"a": 2}]), 0)
            .unwrap(),
        json!([1, {"a": 2}])
    );
}

#[test]
fn legacy_interpreter_becomes_a_state_protocol_profile() {
    let stored = json!({
        "apiVersion": "durable.streams/stream-interpreter/v1",
        "format": "durable.streams/state-protocol/v1",
        "touch": {"enabled": true, "onMissingBefore": "coarse", "coarseIntervalMs": "50", "legacyKey": 1,
                  "memory": {"k": 2, "unknown": true}, "templates": "ignored"}
    });
    let p = from_legacy_interpreter(&stored).unwrap().unwrap();
    let touch = p.touch_config().unwrap();
    assert_eq!(touch.coarse_interval_ms, 50.0);
    assert_eq!(touch.memory.k, 2);
    assert_eq!(touch.templates, TouchTemplatesConfig::default());
    // What 0.1.2 stored (every default expanded) converts to the same defaulted profile
    // that `/_profile` produces.
    let expanded = json!({
        "apiVersion": "durable.streams/stream-interpreter/v1",
        "format": "durable.streams/state-protocol/v1",
        "touch": TouchConfig::enabled_defaults().to_json()
    });
    assert_eq!(
        from_legacy_interpreter(&expanded).unwrap(),
        Some(Profile::StateProtocol {
            touch: Some(TouchConfig::enabled_defaults())
        })
    );

    let none_cases = [
        json!({"apiVersion": "durable.streams/stream-interpreter/v1"}),
        json!({"apiVersion": "durable.streams/stream-interpreter/v1", "touch": {"enabled": false}}),
        json!({"apiVersion": "durable.streams/stream-interpreter/v1", "touch": {"enabled": 0, "storage": "sqlite"}}),
        json!([]),
    ];
    for c in none_cases {
        assert_eq!(from_legacy_interpreter(&c).unwrap(), None, "{c}");
    }

    let v1 = "durable.streams/stream-interpreter/v1";
    let err_cases = [
        (json!(null), "interpreter must be an object"),
        (json!({"apiVersion": "x"}), "invalid interpreter apiVersion"),
        (
            json!({"apiVersion": v1, "format": "other"}),
            "interpreter.format must be durable.streams/state-protocol/v1",
        ),
        (
            json!({"apiVersion": v1, "variants": []}),
            "interpreter.variants is not supported (State Protocol is the only supported format)",
        ),
        (
            json!({"apiVersion": v1, "touch": "on"}),
            "interpreter.touch must be an object",
        ),
        (
            json!({"apiVersion": v1, "touch": {"enabled": true, "storage": "memory"}}),
            "interpreter.touch.storage is no longer supported; touch always uses the in-memory journal",
        ),
        (
            json!({"apiVersion": v1, "touch": {"enabled": true, "derivedStream": "x"}}),
            "interpreter.touch.derivedStream is no longer supported",
        ),
        (
            json!({"apiVersion": v1, "touch": {"enabled": true, "retention": {}}}),
            "interpreter.touch.retention is no longer supported",
        ),
        (
            json!({"apiVersion": v1, "touch": {"enabled": true, "metrics": {}}}),
            "interpreter.touch.metrics is not supported; live metrics are a global server feature",
        ),
        (
            json!({"apiVersion": v1, "touch": {"enabled": true, "memory": {"filterPow2": 40}}}),
            "interpreter.touch.memory.filterPow2 must be an integer in [10,30]",
        ),
        (
            json!({"apiVersion": v1, "touch": {"enabled": true, "templates": {"gcIntervalMs": 0}, "metrics": 1}}),
            "interpreter.touch.templates.gcIntervalMs must be > 0",
        ),
    ];
    for (c, want) in err_cases {
        assert_eq!(from_legacy_interpreter(&c).unwrap_err(), want, "{c}");
    }
}

#[test]
fn profile_configuration_accessors() {
    let p = parse_update(
        br#"{"profile":{"kind":"otel-traces","attributeLimits":{"maxEventsPerSpan":3},"store":{"rawLinks":false},"otlpLimits":{"maxSpansPerRequest":9}}}"#,
        "application/json",
    )
    .unwrap();
    let Profile::OtelTraces(o) = p else { panic!() };
    assert_eq!(o.attribute_limit("maxEventsPerSpan"), 3);
    assert_eq!(o.attribute_limit("maxAttributeValueBytes"), 8192);
    assert_eq!(o.otlp_limit("maxSpansPerRequest"), 9);
    assert_eq!(o.otlp_limit("maxDecodedBytes"), 16 * 1024 * 1024);
    assert!(!o.stores("rawLinks"));
    assert!(o.stores("rawEvents"));
}

#[test]
fn date_time_check_is_exported() {
    assert!(is_date_time_string("2026-01-01T00:00:00Z"));
    assert!(!is_date_time_string("2026-01-01"));
    assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:01.5Z"), Some(1500));
}
