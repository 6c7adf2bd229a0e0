//! Introspection over HTTP, in full and local mode: `GET /v1/streams` (the item shape
//! Prisma Studio checks, paging), `/_details` and `/_index_status` (shape, weak ETag,
//! `If-None-Match` 304, the conditional long-poll waking on an append or answering 304
//! when its wait ends, errors), sealed and uploaded progress with tiny segments, and
//! `GET /v1/server/_details`.
//!
//! Full-mode servers here never cut a segment on their own unless a test asks for it
//! (`DS_SEGMENT_MAX_INTERVAL_MS=0`); the manifest the uploader publishes after a write
//! is waited for with [`settled`], so that snapshots compared for equality cannot change
//! underneath. Nothing here measures time.

use std::time::Duration;

use crate::common;
use common::{client, header, post, put, Server};
use reqwest::{Method, StatusCode};
use serde_json::Value;

type Client = reqwest::Client;

/// How long a test waits for the server's background work before it fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// A full-mode server (memory object store) and a local-mode server, each on its own
/// directory.
fn both(dir: &tempfile::TempDir) -> Vec<(&'static str, Server)> {
    vec![
        (
            "full",
            Server::start(
                &dir.path().join("full"),
                &[("DS_SEGMENT_MAX_INTERVAL_MS", "0")],
            ),
        ),
        ("local", Server::start_local(&dir.path().join("local"), &[])),
    ]
}

async fn get(c: &Client, url: &str, inm: Option<&str>) -> reqwest::Response {
    let mut req = c.get(url);
    if let Some(tag) = inm {
        req = req.header("if-none-match", tag);
    }
    req.send().await.unwrap()
}

/// `(status, ETag, JSON body or Null)` of a GET.
async fn get_json(c: &Client, url: &str, inm: Option<&str>) -> (u16, Option<String>, Value) {
    let r = get(c, url, inm).await;
    let status = r.status().as_u16();
    let etag = header(&r, "etag");
    let text = r.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    };
    (status, etag, body)
}

fn details_url(s: &Server, name: &str) -> String {
    format!("{}/_details", s.stream_url(name))
}

fn index_url(s: &Server, name: &str) -> String {
    format!("{}/_index_status", s.stream_url(name))
}

/// Waits until the stream's latest change is published (no manifest pending; at once in
/// local mode), following `_index_status` with long-polls.
async fn settled(c: &Client, s: &Server, name: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let url = format!("{}?live=long-poll&timeout=1s", index_url(s, name));
    let (status, mut etag, mut body) = get_json(c, &index_url(s, name), None).await;
    assert_eq!(status, 200, "{body}");
    loop {
        let m = &body["manifest"];
        if m["generation"] == m["uploaded_generation"] {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name}: the manifest was never published: {m}"
        );
        let (status, tag, next) = get_json(c, &url, etag.as_deref()).await;
        match status {
            200 => (etag, body) = (tag, next),
            304 => {}
            other => panic!("{name}: long-poll answered {other}"),
        }
    }
}

/// The answer of a details long-poll made with `etag` (`first`), then, while `done` does
/// not hold for it, the answers of long-polls made with each new ETag. Something else may
/// change the snapshot, and wake the poll, before the change the test waits for: a full
/// run once saw a new snapshot without the append (the cause is not known; the snapshot
/// holds the server's background bookkeeping too). Every answer must be a new snapshot.
async fn answered_until(
    c: &Client,
    url: &str,
    what: &str,
    etag: &str,
    first: (u16, Option<String>, Value),
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let (mut status, mut tag, mut body) = first;
    let mut etag = etag.to_string();
    loop {
        assert_eq!(status, 200, "{what}: {body}");
        assert_ne!(tag.as_deref(), Some(etag.as_str()), "{what}");
        if done(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: never saw it: {body}"
        );
        etag = tag.expect("an ETag");
        let poll = format!("{url}?live=long-poll&timeout=30s");
        (status, tag, body) = get_json(c, &poll, Some(&etag)).await;
    }
}

/// Follows `/_details` with long-polls until `done` holds for a body; returns it.
async fn details_until(
    c: &Client,
    s: &Server,
    name: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let url = format!("{}?live=long-poll&timeout=2s", details_url(s, name));
    let (_, mut etag, mut body) = get_json(c, &details_url(s, name), None).await;
    while !done(&body) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name}: never saw {what}: {body}"
        );
        let (status, tag, next) = get_json(c, &url, etag.as_deref()).await;
        match status {
            200 => (etag, body) = (tag, next),
            304 => assert_eq!(tag, etag),
            other => panic!("{name}: long-poll answered {other}: {next}"),
        }
    }
    body
}

fn is_decimal(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.parse::<i64>().is_ok_and(|n| n >= -1))
}

/// The checks Prisma Studio's `use-streams.ts` applies to each item.
fn studio_accepts(item: &Value) {
    assert!(item["created_at"].is_string(), "{item}");
    assert_eq!(item["epoch"], 0, "{item}");
    assert!(
        item["expires_at"].is_null() || item["expires_at"].is_string(),
        "{item}"
    );
    assert!(item["name"].is_string(), "{item}");
    for k in ["next_offset", "sealed_through", "uploaded_through"] {
        assert!(is_decimal(&item[k]), "{k}: {item}");
    }
}

async fn list(c: &Client, s: &Server, query: &str) -> (u16, Value) {
    let (status, _, body) = get_json(c, &format!("{}/v1/streams{query}", s.url), None).await;
    (status, body)
}

fn names(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn listing_pages_and_describes_streams_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    for (mode, s) in both(&dir) {
        let r = put(
            &c,
            &s.stream_url("a/json"),
            "application/json",
            r#"[{"x":1},{"x":2}]"#,
        )
        .await;
        assert_eq!(r.status(), 201, "{mode}");
        let r = c
            .put(s.stream_url("b"))
            .header("content-type", "text/plain")
            .header("stream-ttl", "3600")
            .body("xyz")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{mode}");
        put(&c, &s.stream_url("c"), "application/octet-stream", "").await;

        let r = get(&c, &format!("{}/v1/streams", s.url), None).await;
        assert_eq!(
            r.headers()["content-type"],
            "application/json; charset=utf-8",
            "{mode}: as the original"
        );
        let (status, all) = list(&c, &s, "").await;
        assert_eq!(status, 200, "{mode}");
        assert_eq!(names(&all), ["a/json", "b", "c"], "{mode}");
        for item in all.as_array().unwrap() {
            studio_accepts(item);
        }
        let a = &all[0];
        assert_eq!(a["next_offset"], "2", "{mode}: entries, in decimal");
        assert_eq!(a["sealed_through"], "-1", "{mode}");
        assert_eq!(a["uploaded_through"], "-1", "{mode}");
        assert_eq!(a["profile"], "generic", "{mode}");
        assert_eq!(a["content_type"], "application/json", "{mode}");
        assert_eq!(a["closed"], false, "{mode}");
        assert!(
            a["expires_at"].is_null() && a["ttl_seconds"].is_null(),
            "{mode}"
        );
        let b = &all[1];
        assert_eq!(b["next_offset"], "1", "{mode}");
        assert_eq!(b["ttl_seconds"], 3600, "{mode}");
        assert!(b["expires_at"].as_str().unwrap().ends_with('Z'), "{mode}");
        assert_eq!(all[2]["next_offset"], "0", "{mode}");

        // Paging: `limit` and `offset` count rows in name order.
        assert_eq!(
            names(&list(&c, &s, "?limit=2&offset=0").await.1),
            ["a/json", "b"]
        );
        assert_eq!(names(&list(&c, &s, "?limit=2&offset=2").await.1), ["c"]);
        assert_eq!(names(&list(&c, &s, "?offset=1").await.1), ["b", "c"]);
        assert!(names(&list(&c, &s, "?offset=9").await.1).is_empty());
        assert!(names(&list(&c, &s, "?limit=0").await.1).is_empty());
        assert_eq!(
            list(&c, &s, "?limit=5000")
                .await
                .1
                .as_array()
                .unwrap()
                .len(),
            3
        );
        for bad in ["?limit=abc", "?offset=-1", "?limit=1&limit=2"] {
            let (status, body) = list(&c, &s, bad).await;
            assert_eq!(status, 400, "{mode} {bad}");
            assert_eq!(body["error"]["code"], "bad_request", "{mode} {bad}");
        }
        let status = common::status(&c, Method::POST, &format!("{}/v1/streams", s.url)).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{mode}");

        // The profile kind follows `/_profile`.
        let r = post(
            &c,
            &format!("{}/_profile", s.stream_url("a/json")),
            "application/json",
            r#"{"profile":{"kind":"state-protocol"}}"#,
        )
        .await;
        assert_eq!(r.status(), 200, "{mode}");
        let (_, all) = list(&c, &s, "").await;
        assert_eq!(all[0]["profile"], "state-protocol", "{mode}");
        assert_eq!(all[1]["profile"], "generic", "{mode}");

        // Deleted streams are not listed.
        let status = common::status(&c, Method::DELETE, &s.stream_url("c")).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{mode}");
        assert_eq!(names(&list(&c, &s, "").await.1), ["a/json", "b"], "{mode}");
    }
}

/// The fields Studio's `use-stream-details.ts` requires of `stream`, and the sections
/// it reads.
fn details_shape(mode: &str, d: &Value) {
    let st = &d["stream"];
    studio_accepts(st);
    assert!(is_decimal(&st["total_size_bytes"]), "{mode}: {st}");
    for k in ["pending_rows", "pending_bytes", "wal_rows", "wal_bytes"] {
        assert!(is_decimal(&st[k]), "{mode} {k}: {st}");
    }
    for k in ["segment_count", "uploaded_segment_count"] {
        assert!(st[k].is_u64(), "{mode} {k}: {st}");
    }
    assert_eq!(
        d["profile"]["apiVersion"], "durable.streams/profile/v1",
        "{mode}"
    );
    assert_eq!(
        d["schema"]["apiVersion"], "durable.streams/schema-registry/v1",
        "{mode}"
    );
    let ix = &d["index_status"];
    for k in [
        "routing_key_index",
        "routing_key_lexicon",
        "manifest",
        "segments",
        "bundled_companions",
    ] {
        assert!(ix[k].is_object(), "{mode} {k}: {ix}");
    }
    assert!(ix["exact_indexes"].as_array().unwrap().is_empty(), "{mode}");
    assert!(
        ix["search_families"].as_array().unwrap().is_empty(),
        "{mode}"
    );
    let storage = &d["storage"];
    for k in [
        "total_bytes",
        "segments_bytes",
        "indexes_bytes",
        "schema_registry_bytes",
    ] {
        assert!(
            is_decimal(&storage["object_storage"][k]),
            "{mode} {k}: {storage}"
        );
    }
    for k in [
        "total_bytes",
        "wal_retained_bytes",
        "pending_tail_bytes",
        "pending_sealed_segment_bytes",
        "segment_cache_bytes",
        "sqlite_shared_total_bytes",
    ] {
        assert!(
            is_decimal(&storage["local_storage"][k]),
            "{mode} {k}: {storage}"
        );
    }
    let req = &d["object_store_requests"];
    for k in ["puts", "reads", "gets", "heads", "lists", "deletes"] {
        assert!(is_decimal(&req[k]), "{mode} {k}: {req}");
    }
    assert!(req["by_artifact"].is_array(), "{mode}");
}

#[tokio::test]
async fn details_and_index_status_answer_with_etags_and_304_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    for (mode, s) in both(&dir) {
        let url = s.stream_url("orders");
        put(&c, &url, "application/json", r#"[{"id":"a"},{"id":"bb"}]"#).await;
        post(&c, &url, "application/json", r#"{"id":"ccc"}"#).await;
        settled(&c, &s, "orders").await;

        let r = get(&c, &details_url(&s, "orders"), None).await;
        assert_eq!(r.status(), 200, "{mode}");
        assert_eq!(
            header(&r, "content-type").as_deref(),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(header(&r, "cache-control").as_deref(), Some("no-store"));
        let etag = header(&r, "etag").unwrap();
        assert!(etag.starts_with("W/\"details:"), "{mode}: {etag}");
        let d: Value = r.json().await.unwrap();
        details_shape(mode, &d);
        let st = &d["stream"];
        assert_eq!(st["name"], "orders");
        assert_eq!(st["next_offset"], "3", "{mode}");
        assert_eq!(st["content_type"], "application/json");
        assert_eq!(st["profile"], "generic");
        assert_eq!(
            st["total_size_bytes"], "33",
            "{mode}: payload bytes of the three messages"
        );
        assert_eq!(st["wal_rows"], "3", "{mode}: nothing is sealed");
        assert_eq!(st["wal_bytes"], "33", "{mode}");
        assert_eq!(st["pending_rows"], "3", "{mode}");
        assert_eq!(st["segment_count"], 0, "{mode}");
        assert!(st["last_append_at"].is_string(), "{mode}");
        assert_eq!(d["schema"]["currentVersion"], 0, "{mode}");
        assert_eq!(d["index_status"]["stream"], "orders");
        assert_eq!(
            d["storage"]["local_storage"]["wal_retained_bytes"], "33",
            "{mode}"
        );
        assert_eq!(
            d["storage"]["object_storage"]["segments_bytes"], "0",
            "{mode}"
        );

        // Unchanged: the same ETag, and If-None-Match answers 304 without a body.
        let (status, again, _) = get_json(&c, &details_url(&s, "orders"), None).await;
        assert_eq!(
            (status, again.as_deref()),
            (200, Some(etag.as_str())),
            "{mode}"
        );
        let (status, tag, body) = get_json(&c, &details_url(&s, "orders"), Some(&etag)).await;
        assert_eq!(
            (status, tag.as_deref()),
            (304, Some(etag.as_str())),
            "{mode}"
        );
        assert!(body.is_null(), "{mode}");
        let (status, ..) = get_json(&c, &details_url(&s, "orders"), Some("W/\"details:0\"")).await;
        assert_eq!(status, 200, "{mode}");

        // `/_index_status`: the same section alone, with its own ETag namespace.
        let (status, ietag, ix) = get_json(&c, &index_url(&s, "orders"), None).await;
        assert_eq!(status, 200, "{mode}");
        let ietag = ietag.unwrap();
        assert!(ietag.starts_with("W/\"index_status:"), "{mode}: {ietag}");
        assert_eq!(ix, d["index_status"], "{mode}");
        let (status, ..) = get_json(&c, &index_url(&s, "orders"), Some(&ietag)).await;
        assert_eq!(status, 304, "{mode}");

        // A schema (installed on an empty stream, as the first one must be) shows in
        // the snapshot and changes its ETag.
        let typed = s.stream_url("typed");
        put(&c, &typed, "application/json", "").await;
        settled(&c, &s, "typed").await;
        let (_, before, d) = get_json(&c, &details_url(&s, "typed"), None).await;
        assert_eq!(d["schema"]["currentVersion"], 0, "{mode}");
        let r = post(
            &c,
            &format!("{typed}/_schema"),
            "application/json",
            r#"{"schema":{"type":"object"},"routingKey":{"jsonPointer":"/id","required":true}}"#,
        )
        .await;
        assert_eq!(r.status(), 200, "{mode}: {}", r.text().await.unwrap());
        let (status, tag, d) = get_json(&c, &details_url(&s, "typed"), before.as_deref()).await;
        assert_eq!(status, 200, "{mode}");
        assert_ne!(tag, before, "{mode}");
        assert_eq!(d["schema"]["currentVersion"], 1, "{mode}");
        assert_eq!(
            d["schema"]["schemas"]["1"],
            serde_json::json!({"type":"object"})
        );
        assert_eq!(d["schema"]["routingKey"]["jsonPointer"], "/id", "{mode}");
        assert_eq!(
            d["index_status"]["routing_key_index"]["configured"], true,
            "{mode}"
        );

        // And so does a profile.
        let r = post(
            &c,
            &format!("{url}/_profile"),
            "application/json",
            r#"{"profile":{"kind":"state-protocol"}}"#,
        )
        .await;
        assert_eq!(r.status(), 200, "{mode}");
        let (_, _, d) = get_json(&c, &details_url(&s, "orders"), None).await;
        assert_eq!(d["stream"]["profile"], "state-protocol", "{mode}");
        assert_eq!(d["profile"]["profile"]["kind"], "state-protocol", "{mode}");
        assert_eq!(d["index_status"]["profile"], "state-protocol", "{mode}");
    }
}

#[tokio::test]
async fn details_errors_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    for (mode, s) in both(&dir) {
        put(&c, &s.stream_url("e"), "text/plain", "x").await;
        for url in [details_url(&s, "e"), index_url(&s, "e")] {
            for q in [
                "live=sse",
                "live=LONG",
                "timeout=abc",
                "live=long-poll&timeout=-1",
                "live=1&timeout=1.5",
            ] {
                let (status, _, body) = get_json(&c, &format!("{url}?{q}"), None).await;
                assert_eq!(status, 400, "{mode} {url}?{q}");
                assert_eq!(body["error"]["code"], "bad_request", "{mode} {q}");
            }
            for m in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
                let r = c.request(m.clone(), &url).send().await.unwrap();
                assert_eq!(r.status(), 400, "{mode} {m} {url}");
                let body: Value = r.json().await.unwrap();
                assert_eq!(body["error"]["message"], "unsupported method", "{mode} {m}");
            }
        }
        // A missing stream: 404 (the method is checked first, as in the original).
        for url in [details_url(&s, "nope"), index_url(&s, "nope")] {
            let (status, _, body) = get_json(&c, &url, None).await;
            assert_eq!(status, 404, "{mode} {url}");
            assert_eq!(body["error"]["code"], "not_found", "{mode}");
            let status = common::status(&c, Method::POST, &url).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{mode} {url}");
            let (status, ..) = get_json(
                &c,
                &format!("{url}?live=long-poll&timeout=1s"),
                Some("W/\"x\""),
            )
            .await;
            assert_eq!(status, 404, "{mode}");
        }
        // A deleted one too.
        let status = common::status(&c, Method::DELETE, &s.stream_url("e")).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{mode}");
        let (status, ..) = get_json(&c, &details_url(&s, "e"), None).await;
        assert_eq!(status, 404, "{mode}");
    }
}

#[tokio::test]
async fn details_long_poll_wakes_on_append_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    for (mode, s) in both(&dir) {
        let url = s.stream_url("live");
        put(&c, &url, "application/json", r#"[{"n":1}]"#).await;
        settled(&c, &s, "live").await;
        let (_, etag, d) = get_json(&c, &details_url(&s, "live"), None).await;
        assert_eq!(d["stream"]["next_offset"], "1", "{mode}");
        let etag = etag.unwrap();

        // A long-poll with the current ETag, then an append: the poll answers with the
        // new snapshot (whether it was already waiting or not).
        let poll = {
            let (c, url, etag) = (c.clone(), details_url(&s, "live"), etag.clone());
            tokio::spawn(async move {
                get_json(
                    &c,
                    &format!("{url}?live=long-poll&timeout=30s"),
                    Some(&etag),
                )
                .await
            })
        };
        let r = post(&c, &url, "application/json", r#"{"n":2}"#).await;
        assert_eq!(r.status(), 204, "{mode}");
        let first = poll.await.unwrap();
        let d = answered_until(
            &c,
            &details_url(&s, "live"),
            &format!("{mode}: the append"),
            &etag,
            first,
            |d| d["stream"]["next_offset"] == "2",
        )
        .await;
        details_shape(mode, &d);

        // `live=true` and `timeout_ms` are the original's other spellings; a close
        // wakes the poll too.
        settled(&c, &s, "live").await;
        let (_, tag, _) = get_json(&c, &details_url(&s, "live"), None).await;
        let tag = tag.unwrap();
        let poll = {
            let (c, url, tag) = (c.clone(), details_url(&s, "live"), tag.clone());
            tokio::spawn(async move {
                get_json(&c, &format!("{url}?live=true&timeout_ms=30000"), Some(&tag)).await
            })
        };
        let r = c
            .post(&url)
            .header("stream-closed", "true")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "{mode}");
        let first = poll.await.unwrap();
        answered_until(
            &c,
            &details_url(&s, "live"),
            &format!("{mode}: the close"),
            &tag,
            first,
            |d| d["stream"]["closed"] == true,
        )
        .await;
    }
}

#[tokio::test]
async fn details_long_poll_answers_304_when_its_wait_ends_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    for (mode, s) in both(&dir) {
        put(&c, &s.stream_url("quiet"), "text/plain", "hello").await;
        settled(&c, &s, "quiet").await;
        for url in [details_url(&s, "quiet"), index_url(&s, "quiet")] {
            let (_, etag, _) = get_json(&c, &url, None).await;
            let etag = etag.unwrap();
            for q in [
                "live=long-poll&timeout=200ms",
                "live=long-poll&timeout=0",
                "live=1&timeout=150",
            ] {
                let (status, tag, body) = get_json(&c, &format!("{url}?{q}"), Some(&etag)).await;
                assert_eq!(status, 304, "{mode} {url}?{q}: {body}");
                assert_eq!(tag.as_deref(), Some(etag.as_str()), "{mode} {q}");
                assert!(body.is_null(), "{mode}");
            }
            // Without a current ETag a long-poll answers at once.
            let (status, tag, _) =
                get_json(&c, &format!("{url}?live=long-poll&timeout=30s"), None).await;
            assert_eq!(
                (status, tag.as_deref()),
                (200, Some(etag.as_str())),
                "{mode}"
            );
            let (status, ..) = get_json(
                &c,
                &format!("{url}?live=long-poll&timeout=30s"),
                Some("W/\"details:stale\""),
            )
            .await;
            assert_eq!(status, 200, "{mode}");
        }
    }
}

#[tokio::test]
async fn tiny_segments_show_sealed_and_uploaded_progress() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    let s = Server::start_full(dir.path(), "local", common::tier::TINY, &[]);
    let url = s.stream_url("tiered");
    put(&c, &url, "application/json", "[]").await;
    for i in 0..12 {
        let r = post(&c, &url, "application/json", format!(r#"{{"i":{i}}}"#)).await;
        assert_eq!(r.status(), 204);
    }
    // Segments of 5 entries, and the rest after DS_SEGMENT_MAX_INTERVAL_MS: everything
    // ends up sealed and uploaded. The long-poll follows the progress.
    let d = details_until(&c, &s, "tiered", "every entry uploaded", |d| {
        let m = &d["index_status"]["manifest"];
        d["stream"]["uploaded_through"] == "11" && m["generation"] == m["uploaded_generation"]
    })
    .await;
    details_shape("tiered", &d);
    let st = &d["stream"];
    assert_eq!(st["next_offset"], "12");
    assert_eq!(st["sealed_through"], "11");
    let segments = st["segment_count"].as_u64().unwrap();
    assert!(segments >= 3, "{st}");
    assert_eq!(st["uploaded_segment_count"], segments);
    assert_eq!(st["pending_rows"], "0");
    assert_eq!(st["pending_bytes"], "0");
    assert_eq!(st["wal_rows"], "0", "uploaded entries leave SQLite");
    assert_eq!(st["wal_bytes"], "0");
    let ix = &d["index_status"];
    assert_eq!(ix["segments"]["total_count"], segments);
    assert_eq!(ix["segments"]["uploaded_count"], segments);
    assert!(ix["manifest"]["uploaded_generation"].as_u64().unwrap() >= 1);
    assert!(ix["manifest"]["last_uploaded_etag"].is_string());
    assert!(is_decimal(&ix["manifest"]["last_uploaded_size_bytes"]));
    // The stream has no routing keys, so the routing-key index has nothing to index, and
    // the key list is filled at compaction: neither lags behind uploads.
    for structure in ["routing_key_index", "routing_key_lexicon"] {
        let k = &ix[structure];
        assert_eq!(k["indexed_segment_count"], segments, "{structure}: {k}");
        assert_eq!(k["lag_segments"], 0, "{structure}: {k}");
        assert_eq!(
            k["fully_indexed_uploaded_segments"], true,
            "{structure}: {k}"
        );
    }
    let os = &d["storage"]["object_storage"];
    assert_eq!(os["segment_object_count"], segments);
    assert_ne!(os["segments_bytes"], "0");
    assert!(is_decimal(&os["manifest_bytes"]));
    let req = &d["object_store_requests"];
    let artifacts: Vec<&str> = req["by_artifact"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["artifact"].as_str().unwrap())
        .collect();
    assert_eq!(artifacts, ["manifest", "segment"], "{req}");
    let puts: u64 = req["puts"].as_str().unwrap().parse().unwrap();
    assert!(
        puts > segments,
        "a put per segment and at least one manifest: {req}"
    );

    // The listing agrees.
    let (_, all) = list(&c, &s, "").await;
    assert_eq!(all[0]["sealed_through"], "11");
    assert_eq!(all[0]["uploaded_through"], "11");

    // Reading from the start fetches segments from the object store (the local cache
    // keeps nothing with these settings): the request counts show it.
    let (body, ..) = common::tier::read_all(&c, &url).await;
    assert!(!body.is_empty());
    let d = details_until(&c, &s, "tiered", "segment reads counted", |d| {
        d["object_store_requests"]["gets"] != "0"
    })
    .await;
    let reads: u64 = d["object_store_requests"]["reads"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(reads > 0, "{}", d["object_store_requests"]);
}

#[tokio::test]
async fn server_details_describe_the_configuration_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    for (mode, s) in both(&dir) {
        let (status, _, d) = get_json(&c, &format!("{}/v1/server/_details", s.url), None).await;
        assert_eq!(status, 200, "{mode}");
        assert_eq!(d["mode"], mode);
        let limits = &d["configured_limits"];
        for k in [
            "caches",
            "concurrency",
            "ingest",
            "search",
            "segmenting",
            "timeouts",
            "memory",
        ] {
            assert!(limits[k].is_object(), "{mode} {k}: {d}");
        }
        assert!(limits["caches"]["segment_cache_bytes"].is_u64(), "{mode}");
        assert!(
            limits["ingest"]["max_queue_bytes"].as_u64().unwrap() > 0,
            "{mode}"
        );
        assert!(d["runtime"]["ingest_queue"].is_object(), "{mode}");
        let tune = &d["auto_tune"];
        match mode {
            // Local mode applies the original's fixed 1024 MB preset.
            "local" => {
                assert_eq!(
                    *tune,
                    serde_json::json!({
                        "enabled": true,
                        "requested_memory_mb": 1024,
                        "preset_mb": 1024,
                        "effective_memory_limit_mb": 1024,
                    })
                );
                assert!(d["object_store"].is_null());
                assert_eq!(limits["segmenting"]["segment_target_rows"], 0);
            }
            _ => {
                assert_eq!(tune["enabled"], false, "{d}");
                assert!(tune["preset_mb"].is_null());
                assert_eq!(d["object_store"], "memory");
                assert_eq!(limits["segmenting"]["segment_target_rows"], 50000);
            }
        }
        let status =
            common::status(&c, Method::POST, &format!("{}/v1/server/_details", s.url)).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{mode}");
    }

    // `--auto-tune=MB` in full mode reports the preset it chose.
    let s = Server::start_with_args(&dir.path().join("tuned"), &[], &["--auto-tune=3000"]);
    let (_, _, d) = get_json(&c, &format!("{}/v1/server/_details", s.url), None).await;
    assert_eq!(d["auto_tune"]["enabled"], true);
    assert_eq!(d["auto_tune"]["requested_memory_mb"], 3000);
    assert_eq!(d["auto_tune"]["preset_mb"], 2048);
}
