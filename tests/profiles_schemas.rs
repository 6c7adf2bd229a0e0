//! Profiles (`/_profile`) and schema registries (`/_schema`) over HTTP, in full and local
//! mode: the routes and their errors, State Protocol and JSON Schema validation of
//! appends (a failing request stores nothing), lens promotion on `format=json` reads,
//! routing keys from the registry's pointer, and `@prisma/dev`'s startup sequence
//! replayed on the same data across a restart.

use crate::common;
use common::{client, header, post, put, Server};
use serde_json::{json, Value};

type Client = reqwest::Client;

async fn get_json(c: &Client, url: &str) -> (u16, Value) {
    let r = c.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn post_json(c: &Client, url: &str, body: &str) -> (u16, Value) {
    let r = c.post(url).body(body.to_string()).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, v)
}

/// `(status, error message)` of a request expected to fail.
async fn error_of(c: &Client, url: &str, body: &str) -> (u16, String) {
    let (status, v) = post_json(c, url, body).await;
    (
        status,
        v["error"]["message"].as_str().unwrap_or("").to_string(),
    )
}

async fn read_all(c: &Client, url: &str) -> Value {
    let r = c.get(format!("{url}?offset=-1")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

const PROFILE_BODY: &str = r#"{"apiVersion":"durable.streams/profile/v1","profile":{"kind":"state-protocol","touch":{"enabled":true,"onMissingBefore":"coarse"}}}"#;

/// The schema and search `@prisma/dev` 0.25.2 installs on `prisma-wal` (0.1.11 notes §7.1).
fn prisma_dev_schema_body() -> Value {
    json!({
        "apiVersion": "durable.streams/schema-registry/v1",
        "schema": {"additionalProperties": true, "properties": {"headers": {"properties": {"operation": {"type": "string"},
            "timestamp": {"format": "date-time", "type": "string"}}, "required": ["timestamp", "operation"], "type": "object"},
            "key": {"type": "string"}, "type": {"type": "string"}}, "required": ["type", "key", "headers"], "type": "object"},
        "search": {"aliases": {"rowKey": "key", "table": "type"},
            "fields": {"eventTime": {"bindings": [{"jsonPointer": "/headers/timestamp", "version": 1}], "column": true, "exact": true, "exists": true, "kind": "date", "sortable": true},
                "key": {"bindings": [{"jsonPointer": "/key", "version": 1}], "exact": true, "exists": true, "kind": "keyword"},
                "operation": {"bindings": [{"jsonPointer": "/headers/operation", "version": 1}], "exact": true, "exists": true, "kind": "keyword"},
                "type": {"bindings": [{"jsonPointer": "/type", "version": 1}], "exact": true, "exists": true, "kind": "keyword"}},
            "primaryTimestampField": "eventTime"}
    })
}

/// `@prisma/dev`'s configuration of `prisma-wal` on start: PUT, profile, GET the
/// registry and compare, install only when nothing is installed.
async fn prisma_dev_start(c: &Client, base: &str) {
    let url = format!("{base}/v1/stream/prisma-wal");
    let r = c
        .put(&url)
        .header("content-type", "application/json")
        .header("connection", "close")
        .send()
        .await
        .unwrap();
    assert!(r.status() == 201 || r.status() == 200, "PUT {}", r.status());
    let (status, profile) = post_json(c, &format!("{url}/_profile"), PROFILE_BODY).await;
    assert_eq!(status, 200, "{profile}");
    assert_eq!(profile["profile"]["touch"]["memory"]["filterPow2"], 22);
    let desired = prisma_dev_schema_body();
    let (status, reg) = get_json(c, &format!("{url}/_schema")).await;
    assert_eq!(status, 200);
    let installed = reg["currentVersion"].as_u64().unwrap() > 0
        && reg["schema"] == "prisma-wal"
        && reg["schemas"]["1"] == desired["schema"]
        && reg["search"] == desired["search"];
    if installed {
        // Exactly as posted, key order included (the original's smoke tests compare text).
        assert_eq!(
            reg["schemas"]["1"].to_string(),
            desired["schema"].to_string()
        );
        return;
    }
    assert_eq!(
        reg["currentVersion"], 0,
        "existing schema registry is incompatible and requires a lens migration: {reg}"
    );
    let (status, reg) = post_json(c, &format!("{url}/_schema"), &desired.to_string()).await;
    assert_eq!(status, 200, "{reg}");
    assert_eq!(reg["currentVersion"], 1);
    assert_eq!(reg["search"].to_string(), desired["search"].to_string());
}

/// A change record as `@prisma/dev` forwards it.
fn change(key: &str, ts: &str) -> Value {
    json!({"type": "public.todos", "key": key, "value": {"id": key, "title": "t"}, "old_value": null,
        "headers": {"operation": "insert", "timestamp": ts}})
}

async fn prisma_dev_appends(c: &Client, base: &str, first: usize) {
    let url = format!("{base}/v1/stream/prisma-wal");
    let batch = json!([change(&first.to_string(), "2026-11-29T10:00:00.123Z")]);
    let r = post(c, &url, "application/json", batch.to_string()).await;
    assert_eq!(r.status(), 204);
    // A timestamp that is not RFC 3339 fails (the profile and the schema's date-time).
    let bad = json!([
        change("x", "2026-11-29T10:00:00.123Z"),
        change("y", "yesterday")
    ]);
    let r = post(c, &url, "application/json", bad.to_string()).await;
    assert_eq!(r.status(), 400);
    let records = read_all(c, &url).await;
    assert_eq!(records.as_array().unwrap().len(), first + 1, "{records}");
}

#[tokio::test]
async fn prisma_dev_startup_twice_in_local_mode() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    let mut s = Server::start_local(dir.path(), &[]);
    prisma_dev_start(&c, &s.url).await;
    prisma_dev_appends(&c, &s.url, 0).await;
    prisma_dev_start(&c, &s.url).await;
    s.terminate();
    let mut s = Server::start_local(dir.path(), &[]);
    prisma_dev_start(&c, &s.url).await;
    prisma_dev_appends(&c, &s.url, 1).await;
    s.terminate();
}

#[tokio::test]
async fn prisma_dev_startup_twice_in_full_mode() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    let mut s = Server::start(dir.path(), &[]);
    prisma_dev_start(&c, &s.url).await;
    prisma_dev_appends(&c, &s.url, 0).await;
    s.terminate();
    let mut s = Server::start(dir.path(), &[]);
    prisma_dev_start(&c, &s.url).await;
    prisma_dev_appends(&c, &s.url, 1).await;
    s.terminate();
}

async fn profile_routes(s: &Server) {
    let c = client();
    let url = s.stream_url("prof");
    let p = format!("{url}/_profile");
    assert_eq!(put(&c, &url, "application/json", "").await.status(), 201);
    let (status, v) = get_json(&c, &p).await;
    assert_eq!(status, 200);
    assert_eq!(
        v,
        json!({"apiVersion": "durable.streams/profile/v1", "profile": {"kind": "generic"}})
    );
    let cases: &[(&str, &str)] = &[
        ("{", "profile update must be valid JSON"),
        ("[]", "profile update must be a JSON object"),
        (
            r#"{"profile":{"kind":"generic"},"x":1}"#,
            "profileUpdate.x is not supported",
        ),
        (
            r#"{"apiVersion":"v0","profile":{"kind":"generic"}}"#,
            "invalid profile apiVersion",
        ),
        (r#"{}"#, "missing profile"),
        (
            r#"{"profile":{"kind":"nope"}}"#,
            "profile.kind must be evlog|generic|metrics|otel-traces|state-protocol",
        ),
        (
            r#"{"profile":{"kind":"state-protocol","touch":{"enabled":true,"bogus":1}}}"#,
            "profile.touch.bogus is not supported",
        ),
    ];
    for (body, message) in cases {
        assert_eq!(
            error_of(&c, &p, body).await,
            (400, message.to_string()),
            "{body}"
        );
    }
    let (status, v) = post_json(&c, &p, PROFILE_BODY).await;
    assert_eq!(status, 200);
    let stored = v.clone();
    assert_eq!(v["profile"]["touch"]["templates"]["gcIntervalMs"], 60000);
    // Idempotent, and GET answers what POST did.
    assert_eq!(post_json(&c, &p, PROFILE_BODY).await, (200, stored.clone()));
    assert_eq!(get_json(&c, &p).await, (200, stored));
    // State Protocol records are checked on append; a failing request stores nothing.
    let ok = json!({"type": "t", "key": "1", "value": {}, "headers": {"operation": "insert"}});
    let r = post(
        &c,
        &url,
        "application/json",
        json!([ok, {"type": "t", "key": "2", "oldValue": {}, "headers": {"operation": "delete"}}])
            .to_string(),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["message"],
        "state-protocol record.oldValue is not supported"
    );
    let control = json!({"headers": {"control": "snapshot-start"}});
    let r = post(
        &c,
        &url,
        "application/json",
        json!([ok, control]).to_string(),
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(read_all(&c, &url).await, json!([ok, control]));
    // Back to generic: no more checks.
    let (status, v) = post_json(&c, &p, r#"{"profile":{"kind":"generic"}}"#).await;
    assert_eq!(
        (status, v["profile"].clone()),
        (200, json!({"kind": "generic"}))
    );
    let r = post(&c, &url, "application/json", r#"{"anything":1}"#).await;
    assert_eq!(r.status(), 204);

    // Kinds other than generic need a JSON stream.
    let text = s.stream_url("prof-text");
    assert_eq!(put(&c, &text, "text/plain", "").await.status(), 201);
    assert_eq!(
        error_of(&c, &format!("{text}/_profile"), PROFILE_BODY).await,
        (
            400,
            "state-protocol profile requires application/json stream content-type".into()
        )
    );
    // evlog and otel-traces only on a stream without other data.
    assert_eq!(
        error_of(&c, &p, r#"{"profile":{"kind":"evlog"}}"#).await,
        (
            400,
            "evlog profile must be installed before appending data".into()
        )
    );
    // Missing stream, wrong method.
    let missing = format!("{}/_profile", s.stream_url("nope"));
    assert_eq!(get_json(&c, &missing).await.0, 404);
    assert_eq!(post_json(&c, &missing, PROFILE_BODY).await.0, 404);
    let r = c.delete(&p).send().await.unwrap();
    assert_eq!(r.status(), 400);
    // A deleted stream's profile is 404 too.
    assert_eq!(c.delete(&url).send().await.unwrap().status(), 204);
    assert_eq!(get_json(&c, &p).await.0, 404);
}

async fn profile_kinds(s: &Server) {
    let c = client();
    for (name, body) in [
        ("k-metrics", r#"{"profile":{"kind":"metrics"}}"#),
        ("k-evlog", r#"{"profile":{"kind":"evlog"}}"#),
        ("k-otel", r#"{"profile":{"kind":"otel-traces"}}"#),
    ] {
        let url = s.stream_url(name);
        assert_eq!(put(&c, &url, "application/json", "").await.status(), 201);
        let (status, v) = post_json(&c, &format!("{url}/_profile"), body).await;
        assert_eq!(status, 200, "{name}: {v}");
        let (_, got) = get_json(&c, &format!("{url}/_profile")).await;
        assert_eq!(got, v, "{name}");
        // The profile's own registry is installed with it.
        let (_, reg) = get_json(&c, &format!("{url}/_schema")).await;
        assert_eq!(reg["currentVersion"], 1, "{name}: {reg}");
        assert_eq!(reg["schema"], name);
        assert!(reg["search"].is_object(), "{name}: {reg}");
    }
    // A metrics record is normalised into its canonical interval and keyed by series.
    let url = s.stream_url("k-metrics");
    let record = json!({"metric": "http.latency", "unit": "ms", "windowStart": 1000, "windowEnd": 2000,
        "count": 3, "sum": 30, "min": 5, "max": 15, "attributes": {"route": "/a"}});
    let r = post(&c, &url, "application/json", record.to_string()).await;
    let status = r.status();
    assert_eq!(status, 204, "{}", r.text().await.unwrap());
    let stored = read_all(&c, &url).await;
    let series = stored[0]["seriesKey"].as_str().unwrap().to_string();
    let (_, keys) = get_json(&c, &format!("{url}/_routing_keys")).await;
    assert_eq!(keys["keys"], json!([series]));
}

fn lens(from: u64, to: u64, ops: Value) -> Value {
    json!({"apiVersion": "durable.lens/v1", "schema": "sch", "from": from, "to": to, "ops": ops})
}

async fn schema_routes(s: &Server) {
    let c = client();
    let url = s.stream_url("sch");
    let sc = format!("{url}/_schema");
    assert_eq!(put(&c, &url, "application/json", "").await.status(), 201);
    assert_eq!(
        get_json(&c, &sc).await,
        (
            200,
            json!({"apiVersion": "durable.streams/schema-registry/v1", "schema": "sch", "currentVersion": 0,
                "boundaries": [], "schemas": {}, "lenses": {}})
        )
    );
    let v1 = json!({"type": "object", "properties": {"title": {"type": "string"}, "assignee": {"type": "string"}},
        "required": ["title", "assignee"], "additionalProperties": false});
    let cases: Vec<(String, u16, &str)> = vec![
        ("{".into(), 400, "schema update must be valid JSON"),
        ("null".into(), 400, "schema update must be a JSON object"),
        (json!({"schemas": {}}).to_string(), 400, "schemaUpdate.schemas is not supported"),
        (json!({"apiVersion": "x", "schema": v1}).to_string(), 400, "invalid schema apiVersion"),
        ("{}".into(), 400, "schema update must include schema, routingKey, or search"),
        (json!({"lens": lens(0, 1, json!([]))}).to_string(), 400, "schema update must include schema, routingKey, or search"),
        (json!({"lens": lens(0, 1, json!([])), "routingKey": null}).to_string(), 400, "schema update lens requires schema"),
        (json!({"routingKey": 3}).to_string(), 400, "routingKey must be an object or null"),
        (json!({"routingKey": {"jsonPointer": "/a"}}).to_string(), 400, "routingKey.required must be boolean"),
        (
            json!({"search": {"primaryTimestampField": "t", "fields": {"t": {"kind": "date", "bindings": [{"version": 1, "jsonPointer": "/t"}]}}}}).to_string(),
            400,
            "search config requires an installed schema version",
        ),
        (
            json!({"schema": {"$ref": "http://x/y"}}).to_string(),
            400,
            "external $ref is not supported",
        ),
        (
            json!({"schema": v1, "lens": lens(1, 2, json!([{"op": "add", "path": "/x", "schema": {"type": "string"}, "default": "d"}]))}).to_string(),
            409,
            "lens version mismatch",
        ),
    ];
    for (body, status, message) in &cases {
        assert_eq!(
            error_of(&c, &sc, body).await,
            (*status, message.to_string()),
            "{body}"
        );
    }
    // The first schema; appends are validated against it (nothing of a failing request
    // is stored).
    let (status, reg) = post_json(&c, &sc, &json!({"schema": v1}).to_string()).await;
    assert_eq!(status, 200, "{reg}");
    assert_eq!(reg["boundaries"], json!([{"offset": 0, "version": 1}]));
    let r = post(
        &c,
        &url,
        "application/json",
        r#"[{"title":"a","assignee":"ann"},{"title":"b","assignee":"bob"}]"#,
    )
    .await;
    assert_eq!(r.status(), 204);
    let r = post(
        &c,
        &url,
        "application/json",
        r#"[{"title":"c","assignee":"x"},{"title":3,"assignee":"y"}]"#,
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["message"],
        "must be string"
    );
    let r = post(&c, &url, "text/plain", "x").await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["message"],
        "stream requires JSON"
    );
    // The same first schema again needs a lens, and not on a non-empty stream either way.
    assert_eq!(
        error_of(&c, &sc, &json!({"schema": v1}).to_string()).await,
        (400, "lens required".into())
    );
    // Version 2: assignee becomes a list, through a lens.
    let v2 = json!({"type": "object", "properties": {"title": {"type": "string"},
        "assignees": {"type": "array", "items": {"type": "string"}}}, "required": ["title", "assignees"], "additionalProperties": false});
    let l = lens(
        1,
        2,
        json!([{"op": "rename", "from": "/assignee", "to": "/assignees"},
        {"op": "wrap", "path": "/assignees", "mode": "singleton"}]),
    );
    assert_eq!(
        error_of(&c, &sc, &json!({"schema": v2, "lens": lens(1, 2, json!([{"op": "rename", "from": "/assignee", "to": "/owner"}]))}).to_string())
            .await
            .0,
        400,
        "a lens that does not prove v1 → v2 is refused"
    );
    let (status, reg) = post_json(&c, &sc, &json!({"schema": v2, "lens": l}).to_string()).await;
    assert_eq!(status, 200, "{reg}");
    assert_eq!(reg["currentVersion"], 2);
    assert_eq!(
        reg["boundaries"],
        json!([{"offset": 0, "version": 1}, {"offset": 2, "version": 2}])
    );
    let r = post(
        &c,
        &url,
        "application/json",
        r#"{"title":"c","assignees":["bo"]}"#,
    )
    .await;
    assert_eq!(r.status(), 204);
    let r = post(
        &c,
        &url,
        "application/json",
        r#"{"title":"d","assignee":"old"}"#,
    )
    .await;
    assert_eq!(r.status(), 400, "v1 records are refused after the upgrade");
    // format=json promotes old records; raw does not.
    assert_eq!(
        read_all(&c, &url).await,
        json!([{"title": "a", "assignees": ["ann"]}, {"title": "b", "assignees": ["bob"]}, {"title": "c", "assignees": ["bo"]}])
    );
    let raw = c
        .get(format!("{url}?offset=-1&format=raw"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        raw.text().await.unwrap(),
        r#"{"title":"a","assignee":"ann"}{"title":"b","assignee":"bob"}{"title":"c","assignees":["bo"]}"#
    );
    let (_, got) = get_json(&c, &sc).await;
    assert_eq!(got, reg);
    // Missing stream, wrong method.
    let missing = format!("{}/_schema", s.stream_url("nope"));
    assert_eq!(get_json(&c, &missing).await.0, 404);
    assert_eq!(c.put(&sc).send().await.unwrap().status(), 400);
}

async fn routing_key_pointer(s: &Server) {
    let c = client();
    let url = s.stream_url("rkp");
    let sc = format!("{url}/_schema");
    assert_eq!(put(&c, &url, "application/json", "").await.status(), 201);
    // routingKey alone: no version, no emptiness requirement.
    let (status, reg) = post_json(
        &c,
        &sc,
        r#"{"routingKey":{"jsonPointer":"/user/id","required":true}}"#,
    )
    .await;
    assert_eq!(status, 200, "{reg}");
    assert_eq!(reg["currentVersion"], 0);
    assert_eq!(
        reg["routingKey"],
        json!({"jsonPointer": "/user/id", "required": true})
    );
    let r = post(
        &c,
        &url,
        "application/json",
        r#"[{"user":{"id":"u1"},"n":1},{"user":{"id":"u2"},"n":2},{"user":{"id":"u1"},"n":3}]"#,
    )
    .await;
    assert_eq!(r.status(), 204);
    for (body, message) in [
        (r#"{"n":4}"#, "routing key missing"),
        (r#"{"user":{"id":7}}"#, "routing key must be string"),
    ] {
        let r = post(&c, &url, "application/json", body).await;
        assert_eq!(r.status(), 400);
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"]["message"],
            message
        );
    }
    let r = c
        .post(&url)
        .header("content-type", "application/json")
        .header("stream-key", "u1")
        .body(r#"{"user":{"id":"u1"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["message"],
        "Stream-Key not allowed when routingKey is configured"
    );
    let keyed = c
        .get(format!("{url}/pk/u1?offset=-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&keyed, "stream-up-to-date").as_deref(), Some("true"));
    assert_eq!(
        keyed.json::<Value>().await.unwrap(),
        json!([{"user": {"id": "u1"}, "n": 1}, {"user": {"id": "u1"}, "n": 3}])
    );
    let (status, keys) = get_json(&c, &format!("{url}/_routing_keys")).await;
    assert_eq!(status, 200);
    assert_eq!(keys["keys"], json!(["u1", "u2"]));
    // Clearing the pointer.
    let (status, reg) = post_json(&c, &sc, r#"{"routingKey":null}"#).await;
    assert_eq!(status, 200);
    assert!(reg.get("routingKey").is_none(), "{reg}");
    let r = post(&c, &url, "application/json", r#"{"n":5}"#).await;
    assert_eq!(r.status(), 204);
}

async fn all(s: &Server) {
    profile_routes(s).await;
    profile_kinds(s).await;
    schema_routes(s).await;
    routing_key_pointer(s).await;
}

#[tokio::test]
async fn full_mode() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path(), common::tier::TINY);
    all(&s).await;
    s.terminate();
}

#[tokio::test]
async fn local_mode() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start_local(dir.path(), &[]);
    all(&s).await;
    s.terminate();
}

/// A node rebuilt from the object store has the profile and registry the manifests
/// carry: the same `_profile` and `_schema` answers (text included), the same
/// validation, keys and promotion.
#[tokio::test]
async fn settings_survive_a_bootstrap() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("node");
    let c = client();
    let mut s = Server::start_full(&root, "local", common::tier::TINY, &[]);
    let url = s.stream_url("boot");
    assert_eq!(put(&c, &url, "application/json", "").await.status(), 201);
    assert_eq!(
        post_json(&c, &format!("{url}/_profile"), PROFILE_BODY)
            .await
            .0,
        200
    );
    let headers = |required: Value| {
        json!({"type": "object", "properties": {"operation": {"type": "string"}, "txid": {"type": "string"}},
            "required": required})
    };
    let v1 = json!({"type": "object", "properties": {"type": {"type": "string"}, "key": {"type": "string"},
        "headers": headers(json!(["operation"]))}, "required": ["type", "key", "headers"]});
    let body = json!({"schema": v1, "routingKey": {"jsonPointer": "/key", "required": true}});
    assert_eq!(
        post_json(&c, &format!("{url}/_schema"), &body.to_string())
            .await
            .0,
        200
    );
    let record = |i: usize| json!({"type": "t", "key": format!("k{}", i % 3), "value": {"i": i}, "headers": {"operation": "insert"}});
    let batch: Vec<Value> = (0..6).map(record).collect();
    assert_eq!(
        post(&c, &url, "application/json", json!(batch).to_string())
            .await
            .status(),
        204
    );
    // Version 2 requires a transaction id; older records get "legacy" through the lens.
    let v2 = json!({"type": "object", "properties": {"type": {"type": "string"}, "key": {"type": "string"},
        "headers": headers(json!(["operation", "txid"]))}, "required": ["type", "key", "headers"]});
    let l = json!({"apiVersion": "durable.lens/v1", "schema": "boot", "from": 1, "to": 2,
        "ops": [{"op": "add", "path": "/headers/txid", "schema": {"type": "string"}, "default": "legacy"}]});
    let (status, reg) = post_json(
        &c,
        &format!("{url}/_schema"),
        &json!({"schema": v2, "lens": l}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{reg}");
    let batch: Vec<Value> = (6..10)
        .map(|i| {
            let mut r = record(i);
            r["headers"]["txid"] = json!("t1");
            r
        })
        .collect();
    let r = post(&c, &url, "application/json", json!(batch).to_string()).await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    let profile = get_json(&c, &format!("{url}/_profile")).await;
    let schema_text = c
        .get(format!("{url}/_schema"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let keyed = |base: String| {
        let c = c.clone();
        async move {
            let r = c
                .get(format!("{base}/pk/k1?offset=-1"))
                .send()
                .await
                .unwrap();
            r.json::<Value>().await.unwrap()
        }
    };
    let before = keyed(url.clone()).await;
    assert_eq!(before.as_array().unwrap().len(), 3, "{before}");
    assert_eq!(before[0]["headers"]["txid"], "legacy");
    assert_eq!(before[2]["headers"]["txid"], "t1");
    let store = common::tier::store_for("local", &root);
    common::tier::wait_uploaded(&store, "boot", 10).await;
    s.terminate();
    common::tier::wipe_node(&root);

    let mut s = Server::start_full(&root, "local", common::tier::TINY, &["--bootstrap-from-r2"]);
    let url = s.stream_url("boot");
    assert_eq!(get_json(&c, &format!("{url}/_profile")).await, profile);
    let text = c
        .get(format!("{url}/_schema"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, schema_text);
    assert_eq!(keyed(url.clone()).await, before);
    // The rebuilt node has not read its segments' keys yet: `_index_status` says so until
    // the first listing reads them.
    let lexicon = |ix: &Value| ix["routing_key_lexicon"].clone();
    let (_, ix) = get_json(&c, &format!("{url}/_index_status")).await;
    let uploaded = ix["segments"]["uploaded_count"].as_u64().unwrap();
    assert!(uploaded > 0, "{ix}");
    assert_eq!(
        lexicon(&ix)["fully_indexed_uploaded_segments"],
        false,
        "{ix}"
    );
    assert_eq!(lexicon(&ix)["lag_segments"], uploaded, "{ix}");
    // The routing-key index restored the runs it found; it covers at most the uploaded
    // segments and catches up on the rest in the background.
    let indexed = ix["routing_key_index"]["indexed_segment_count"]
        .as_u64()
        .unwrap();
    assert!(indexed <= uploaded, "{ix}");
    let (status, keys) = get_json(&c, &format!("{url}/_routing_keys")).await;
    assert_eq!(status, 200, "{keys}");
    assert_eq!(keys["keys"], json!(["k0", "k1", "k2"]));
    let (_, ix) = get_json(&c, &format!("{url}/_index_status")).await;
    assert_eq!(
        lexicon(&ix)["fully_indexed_uploaded_segments"],
        true,
        "{ix}"
    );
    assert_eq!(lexicon(&ix)["lag_segments"], 0, "{ix}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, ix) = get_json(&c, &format!("{url}/_index_status")).await;
        if ix["routing_key_index"]["fully_indexed_uploaded_segments"] == true {
            assert_eq!(ix["routing_key_index"]["lag_segments"], 0, "{ix}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the routing-key index never caught up after the bootstrap: {ix}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Validation and the profile still apply.
    let r = post(
        &c,
        &url,
        "application/json",
        json!([record(10)]).to_string(),
    )
    .await;
    assert_eq!(r.status(), 400, "v2 requires a txid");
    let r = post(
        &c,
        &url,
        "application/json",
        r#"{"type":"t","key":"k1","extra":1,"headers":{"operation":"insert","txid":"t"}}"#,
    )
    .await;
    assert_eq!(
        r.status(),
        400,
        "the state-protocol profile refuses other keys"
    );
    s.terminate();
}
