//! Profile registries against the original. `testdata/registries/*.json` were written by
//! prisma/streams 0.1.11 (Node 20, tsx) installing each profile through its real
//! `persistProfileResult` (`testdata/registries/dump.ts`): `<name>.json` is the registry
//! the original stores and serves, `<name>.literal.json` its builder's object before
//! re-parsing. Streams: `metrics`, `__stream_metrics__`, `app-logs` (evlog), `traces`
//! (otel-traces).

use serde_json::Value;

use super::*;
use crate::profiles::{EvlogProfile, OtelTracesProfile};
use crate::schema::{Boundary, CompiledSchema, RoutingKey};

const FIXED_NOW_MS: i64 = 1_767_225_600_123;

struct Case {
    profile: Profile,
    stream: &'static str,
    stored: &'static str,
    literal: &'static str,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            profile: Profile::Metrics,
            stream: "metrics",
            stored: include_str!("../testdata/registries/metrics.json"),
            literal: include_str!("../testdata/registries/metrics.literal.json"),
        },
        Case {
            profile: Profile::Metrics,
            stream: INTERNAL_METRICS_STREAM,
            stored: include_str!("../testdata/registries/internal_metrics.json"),
            // The original's literal and stored form are the same text here.
            literal: include_str!("../testdata/registries/internal_metrics.json"),
        },
        Case {
            profile: Profile::Evlog(EvlogProfile::default()),
            stream: "app-logs",
            stored: include_str!("../testdata/registries/evlog.json"),
            literal: include_str!("../testdata/registries/evlog.literal.json"),
        },
        Case {
            profile: Profile::OtelTraces(OtelTracesProfile::default()),
            stream: "traces",
            stored: include_str!("../testdata/registries/otel_traces.json"),
            literal: include_str!("../testdata/registries/otel_traces.literal.json"),
        },
    ]
}

#[test]
fn registries_match_the_original_key_order_included() {
    for case in cases() {
        let reg = case.profile.default_registry(case.stream).unwrap();
        let want: Value = serde_json::from_str(case.stored).unwrap();
        assert_eq!(reg.to_value(), want, "{}", case.stream);
        assert_eq!(
            String::from_utf8(reg.to_json()).unwrap(),
            case.stored.trim_end(),
            "{}",
            case.stream
        );
        // What is stored loads back to the same registry.
        assert_eq!(Registry::parse(&reg.to_json()).unwrap(), reg);
    }
}

#[test]
fn literals_match_the_original_builders() {
    for case in cases() {
        let got = literal(&case.profile, case.stream).unwrap();
        assert_eq!(
            serde_json::to_string(&got).unwrap(),
            case.literal.trim_end(),
            "{}",
            case.stream
        );
        // The stored form is the literal re-parsed, as the original's
        // `parseRegistryResult(stream, JSON.stringify(literal))` does.
        assert_eq!(
            serde_json::to_string(&stored_form(got).unwrap()).unwrap(),
            case.stored.trim_end(),
            "{}",
            case.stream
        );
    }
}

#[test]
fn registry_shapes() {
    for case in cases() {
        let reg = case.profile.default_registry(case.stream).unwrap();
        let name = case.stream;
        assert_eq!(reg.schema_name(), name);
        assert_eq!(reg.current_version(), 1, "{name}");
        assert_eq!(
            reg.boundaries(),
            &[Boundary {
                offset: 0,
                version: 1
            }],
            "{name}"
        );
        assert_eq!(reg.schemas().keys().collect::<Vec<_>>(), ["1"], "{name}");
        assert!(reg.lenses().is_empty(), "{name}");
        assert_eq!(reg.version_at(0), 1);
        assert!(reg.current_schema().is_some());
        CompiledSchema::compile(reg.current_schema().unwrap()).unwrap();
        let metrics_series = Some(RoutingKey {
            json_pointer: "/seriesKey".into(),
            required: true,
        });
        let (routing_key, search_profile) = match (&case.profile, name) {
            (Profile::Metrics, INTERNAL_METRICS_STREAM) => (None, None),
            (Profile::Metrics, _) => (metrics_series, Some("metrics")),
            (Profile::Evlog(_), _) => (None, Some("evlog")),
            _ => (None, Some("otel-traces")),
        };
        assert_eq!(reg.routing_key().cloned(), routing_key, "{name}");
        match search_profile {
            None => assert!(reg.search().is_none(), "{name}"),
            Some(kind) => {
                let search = reg.search().unwrap();
                config::validate(search).unwrap();
                assert_eq!(search["profile"], kind);
                // Already in the parser's form: normalising again changes nothing.
                let again = SearchConfig::parse(search).unwrap().to_normalized_json();
                assert_eq!(
                    serde_json::to_string(&again).unwrap(),
                    serde_json::to_string(search).unwrap()
                );
            }
        }
    }
    // The same profile on other streams differs only in the schema name.
    let reg = Profile::Metrics.default_registry("other/stream").unwrap();
    assert_eq!(reg.schema_name(), "other/stream");
    let metrics = Profile::Metrics.default_registry("metrics").unwrap();
    assert_eq!(reg.search(), metrics.search());
    assert_eq!(reg.schemas(), metrics.schemas());
}

#[test]
fn kinds_without_a_registry() {
    assert!(Profile::Generic.default_registry("s").is_none());
    let sp = Profile::StateProtocol { touch: None };
    assert!(sp.default_registry("s").is_none());
    assert!(sp.default_registry(INTERNAL_METRICS_STREAM).is_none());
    // Our loader requires a non-blank schema name (the original would store `" "`).
    assert!(Profile::Metrics.default_registry(" ").is_none());
    assert_eq!(INTERNAL_METRICS_STREAM, crate::app::METRICS_STREAM);
}

/// Every record the original normalised in `testdata/normalize.json` is valid against
/// the registry its profile installs, and a registry routing key points at the key the
/// profile derives.
#[test]
fn normalised_records_satisfy_the_installed_schema() {
    let cases: Vec<Value> =
        serde_json::from_str(include_str!("../testdata/normalize.json")).unwrap();
    let mut checked = std::collections::BTreeMap::<&str, usize>::new();
    for case in &cases {
        let profile = Profile::parse(&case["profile"], "profile").unwrap();
        let Ok(record) = profile.prepare_record(case["record"].clone(), FIXED_NOW_MS) else {
            continue;
        };
        let streams: &[&str] = match profile {
            Profile::Metrics => &["metrics", INTERNAL_METRICS_STREAM],
            _ => &["s"],
        };
        for stream in streams {
            let reg = profile.default_registry(stream).unwrap();
            let schema = CompiledSchema::compile(reg.current_schema().unwrap()).unwrap();
            schema
                .validate(&record)
                .unwrap_or_else(|e| panic!("{} {record}: {e}", profile.kind()));
            if let Some(rk) = reg.routing_key() {
                let at = record.pointer(&rk.json_pointer).and_then(Value::as_str);
                assert_eq!(at.map(str::to_owned), profile.derived_routing_key(&record));
                assert!(at.is_some() || !rk.required);
            }
        }
        *checked.entry(profile.kind()).or_default() += 1;
    }
    for kind in ["metrics", "evlog", "otel-traces"] {
        assert!(
            checked.get(kind).copied().unwrap_or(0) >= 3,
            "{kind}: {checked:?}"
        );
    }
}

#[test]
fn schemas_reject_records_of_another_shape() {
    let metrics = Profile::Metrics.default_registry("m").unwrap();
    let schema = CompiledSchema::compile(metrics.current_schema().unwrap()).unwrap();
    assert!(schema
        .validate(&serde_json::json!({"metric": "x"}))
        .is_err());
    let evlog = Profile::Evlog(EvlogProfile::default())
        .default_registry("e")
        .unwrap();
    let schema = CompiledSchema::compile(evlog.current_schema().unwrap()).unwrap();
    let record = Profile::Evlog(EvlogProfile::default())
        .prepare_record(serde_json::json!({"message": "hi"}), FIXED_NOW_MS)
        .unwrap();
    schema.validate(&record).unwrap();
    let mut bad = record.clone();
    bad["level"] = "fatal".into();
    assert!(schema.validate(&bad).is_err());
    let mut extra = record;
    extra["unexpected"] = true.into();
    assert!(schema.validate(&extra).is_err());
}
