//! Query language tests: parsing (valid and invalid, with the original's messages),
//! compilation against a configuration, and evaluation against records.

use serde_json::{json, Value};

use super::config::SearchConfig;
use super::eval::{evaluate, matches_filter, Document};
use super::query::{compile_filter, compile_search, parse, Dialect, Expr};

fn config() -> SearchConfig {
    SearchConfig::parse(&json!({
        "primaryTimestampField": "ts",
        "aliases": {"svc": "service"},
        "defaultFields": [{"field": "message"}],
        "fields": {
            "ts": {"kind": "date", "bindings": [{"version": 1, "jsonPointer": "/ts"}],
                   "column": true, "exists": true, "sortable": true},
            "service": {"kind": "keyword", "bindings": [{"version": 1, "jsonPointer": "/service"}],
                        "normalizer": "lowercase_v1", "exact": true, "prefix": true, "exists": true},
            "level": {"kind": "keyword", "bindings": [{"version": 1, "jsonPointer": "/level"},
                                                      {"version": 2, "jsonPointer": "/meta/level"}],
                      "exact": true},
            "status": {"kind": "integer", "bindings": [{"version": 1, "jsonPointer": "/status"}],
                       "exact": true, "column": true, "exists": true, "sortable": true},
            "ratio": {"kind": "float", "bindings": [{"version": 1, "jsonPointer": "/ratio"}],
                      "column": true},
            "ok": {"kind": "bool", "bindings": [{"version": 1, "jsonPointer": "/ok"}], "exact": true},
            "tag": {"kind": "keyword", "bindings": [{"version": 1, "jsonPointer": "/tags"}], "exact": true},
            "message": {"kind": "text", "bindings": [{"version": 1, "jsonPointer": "/msg"}],
                        "analyzer": "unicode_word_v1"}
        }
    }))
    .unwrap()
}

fn filter(q: &str, record: Value) -> bool {
    filter_at(q, 1, record)
}

fn filter_at(q: &str, version: u64, record: Value) -> bool {
    let c = config();
    let query = compile_filter(Some(&c), q).unwrap_or_else(|e| panic!("{q}: {e}"));
    matches_filter(&query, &Document::new(&c, version, &record, None))
}

fn filter_err(q: &str) -> String {
    compile_filter(Some(&config()), q).unwrap_err()
}

fn search(q: &str, record: Value) -> (bool, f64) {
    let c = config();
    let query = compile_search(Some(&c), q).unwrap_or_else(|e| panic!("{q}: {e}"));
    let e = evaluate(&query, &Document::new(&c, 1, &record, None));
    (e.matched, e.score)
}

fn search_err(q: &str) -> String {
    compile_search(Some(&config()), q).unwrap_err()
}

#[test]
fn precedence_and_implicit_and() {
    let e = parse("a:1 b:2 OR NOT c:3", Dialect::Filter).unwrap();
    let f = |n: &str, v: &str| Expr::Field {
        field: n.into(),
        op: super::query::CompareOp::Eq,
        value: v.into(),
        quoted: false,
    };
    assert_eq!(
        e,
        Expr::Or(
            Box::new(Expr::And(Box::new(f("a", "1")), Box::new(f("b", "2")))),
            Box::new(Expr::Not(Box::new(f("c", "3"))))
        )
    );
    // Keywords are case-insensitive; `-` negates; parentheses group.
    let e2 = parse("-(a:1 or b:2) and c:3", Dialect::Filter).unwrap();
    assert!(matches!(e2, Expr::And(ref l, _) if matches!(**l, Expr::Not(_))));
}

#[test]
fn filter_syntax_errors_carry_the_originals_messages() {
    for (q, want) in [
        ("", "filter must not be empty"),
        ("   ", "filter must not be empty"),
        ("status", "expected ':' in filter clause"),
        ("\"x\"", "expected field name in filter"),
        ("(status:1", "missing ')' in filter"),
        ("status:1)", "unexpected token in filter"),
        ("status:", "expected value in filter clause"),
        ("has:", "has: requires a field name"),
        ("has:\"status\"", "has: requires a field name"),
        ("status:\"1", "unterminated quoted string in filter"),
        ("status:\"1\\", "unterminated escape in filter string"),
        ("AND", "expected ':' in filter clause"),
        ("()", "expected clause in filter"),
        ("nope:1", "filter field nope is not indexed"),
        ("status:abc", "invalid value for filter field"),
        (
            "service:>a",
            "comparison operator not supported for filter field",
        ),
        (
            "ok:>true",
            "comparison operator not supported for filter field",
        ),
        (
            "level:>1",
            "comparison operator not supported for filter field",
        ),
        ("has:message", "filter field message does not support has:"),
        ("message:hello", "invalid value for filter field"),
    ] {
        assert_eq!(filter_err(q), want, "{q}");
    }
    // No search configuration: every field is unknown.
    assert_eq!(
        compile_filter(None, "a:1").unwrap_err(),
        "filter field a is not indexed"
    );
}

#[test]
fn filters_match_typed_values_comparisons_has_and_aliases() {
    let r = json!({"service": "API", "status": 503, "ratio": 0.5, "ok": false, "tags": ["a", ["b"]],
                   "ts": "2024-01-01T00:00:00Z", "level": "warn"});
    assert!(filter("service:api", r.clone()), "lowercase normaliser");
    assert!(filter("svc:API", r.clone()), "alias");
    assert!(filter("status:503", r.clone()));
    assert!(filter("status:=503", r.clone()));
    assert!(filter("status:>=500 status:<600", r.clone()));
    assert!(!filter("status:>503", r.clone()));
    assert!(filter("status:<=503", r.clone()));
    assert!(filter("ratio:<1 ratio:>0.25", r.clone()));
    assert!(filter("ratio:0.5", r.clone()), "column equality");
    assert!(filter("ok:false", r.clone()));
    assert!(filter("ok:FALSE", r.clone()));
    assert!(filter("tag:b", r.clone()), "nested arrays are flattened");
    assert!(filter("ts:>=1704067200000", r.clone()));
    assert!(filter("ts:\"2024-01-01T00:00:00.000Z\"", r.clone()));
    assert!(filter("ts:<2024-01-02", r.clone()));
    assert!(filter("has:status", r.clone()));
    assert!(!filter("has:status", json!({"service": "x"})));
    assert!(
        !filter("has:status", json!({"status": "not a number"})),
        "no canonical value"
    );
    assert!(filter("status:500 OR service:api", r.clone()));
    assert!(!filter("status:500 AND service:api", r.clone()));
    assert!(filter("NOT status:500", r.clone()));
    assert!(filter("-(status:500 OR service:web)", r.clone()));
    assert!(!filter("status:503", json!("not an object")));
    assert!(
        filter("status:\"503\"", json!({"status": "503"})),
        "integers from strings"
    );
    assert!(!filter("status:503", json!({"status": 503.5})));
}

#[test]
fn the_binding_of_the_records_schema_version_applies() {
    assert!(filter_at("level:warn", 1, json!({"level": "warn"})));
    assert!(!filter_at("level:warn", 2, json!({"level": "warn"})));
    assert!(filter_at(
        "level:warn",
        3,
        json!({"meta": {"level": "warn"}})
    ));
    // Before the first binding the field does not exist.
    assert!(!filter_at("status:1", 0, json!({"status": 1})));
}

#[test]
fn search_syntax_and_compile_errors_carry_the_originals_messages() {
    for (q, want) in [
        ("", "q must not be empty"),
        ("(a", "missing ')' in search query"),
        ("a)", "unexpected token in search query"),
        ("\"abc", "unterminated quoted string in search query"),
        ("\"abc\\", "unterminated escape in query string"),
        ("status:", "expected value in fielded search clause"),
        ("contains:x", "contains: is not supported on _search yet"),
        ("nope:1", "unknown search field nope"),
        ("has:nope", "unknown search field nope"),
        (
            "level:>a",
            "search field level does not support comparisons",
        ),
        (
            "level:wa*",
            "search field level does not support prefix queries",
        ),
        (
            "message:>a",
            "search field message does not support comparisons",
        ),
        ("ok:>true", "search field ok does not support comparisons"),
        ("status:x", "invalid value for search field"),
        (
            "!!!",
            "search text clause did not produce any searchable tokens",
        ),
        ("()", "expected clause in search query"),
    ] {
        assert_eq!(search_err(q), want, "{q}");
    }
    assert_eq!(
        compile_search(None, "a").unwrap_err(),
        "search is not configured for this stream"
    );
}

#[test]
fn search_matches_text_phrases_prefixes_and_scores() {
    let r = json!({"msg": "Disk full on node-7; disk alarm", "service": "Billing", "status": 500});
    assert_eq!(search("disk", r.clone()), (true, 2.0), "two occurrences");
    assert!(search("DISK full", r.clone()).0);
    assert!(!search("disk missing", r.clone()).0);
    assert_eq!(search("\"disk full\"", r.clone()), (true, 3.0 + 4.0));
    assert!(!search("\"full disk\"", r.clone()).0);
    assert!(search("ala*", r.clone()).0);
    assert!(search("message:node", r.clone()).0);
    assert!(search("service:bill*", r.clone()).0, "prefix on keyword");
    assert_eq!(
        search("service:billing status:>=500", r.clone()),
        (true, 0.0)
    );
    assert_eq!(search("disk OR nothing", r.clone()), (true, 2.0));
    assert!(!search("-disk", r.clone()).0);
    assert!(
        search("has:status", json!({"status": null})).0,
        "search has: sees raw values"
    );
}
