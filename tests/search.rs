//! `filter=` on reads, `_search` and `_aggregate` over HTTP, in local mode and in full
//! mode with tiny segments (matches in uploaded segments, in the SQLite tail, and after a
//! restart).

use std::collections::BTreeMap;

use crate::common;
use common::{client, header, put, Server};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

/// 2024-01-01T00:00:00Z.
const BASE_MS: i64 = 1_704_067_200_000;
const LEVELS: [&str; 3] = ["info", "warn", "error"];

fn record(i: usize) -> Value {
    let user = ["ann", "bob"][i % 2];
    json!({
        "user": user,
        "level": LEVELS[i % 3],
        "status": 200 + i * 10,
        "ts": BASE_MS + i as i64 * 20_000,
        "msg": format!("request {i} disk {}", if i.is_multiple_of(4) { "full" } else { "ok" }),
    })
}

fn schema() -> Value {
    json!({
        "schema": {"type": "object"},
        "routingKey": {"jsonPointer": "/user", "required": true},
        "search": {
            "primaryTimestampField": "ts",
            "aliases": {"lvl": "level"},
            "fields": {
                "ts": {"kind": "date", "bindings": [{"version": 1, "jsonPointer": "/ts"}],
                       "column": true, "exists": true, "sortable": true},
                "level": {"kind": "keyword", "bindings": [{"version": 1, "jsonPointer": "/level"}],
                          "exact": true, "exists": true},
                "user": {"kind": "keyword", "bindings": [{"version": 1, "jsonPointer": "/user"}],
                         "exact": true},
                "status": {"kind": "integer", "bindings": [{"version": 1, "jsonPointer": "/status"}],
                           "exact": true, "column": true, "sortable": true, "aggregatable": true},
                "msg": {"kind": "text", "bindings": [{"version": 1, "jsonPointer": "/msg"}],
                        "analyzer": "unicode_word_v1"}
            },
            "rollups": {
                "requests": {
                    "dimensions": ["level"],
                    "intervals": ["1m"],
                    "measures": {"n": {"kind": "count"}, "st": {"kind": "summary", "field": "status"}}
                }
            }
        }
    })
}

async fn setup(c: &Client, url: &str) {
    let r = put(c, url, "application/json", "").await;
    assert!(r.status().is_success());
    let r = c
        .post(format!("{url}/_schema"))
        .header("content-type", "application/json")
        .body(schema().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

async fn append(c: &Client, url: &str, from: usize, to: usize) {
    for i in from..to {
        let r = c
            .post(url)
            .header("content-type", "application/json")
            .body(record(i).to_string())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "append {i}: {}", r.status());
    }
}

/// Every record a filtered read returns, following pages to the tail: the records'
/// statuses (which identify them).
async fn filtered(c: &Client, url: &str, filter: &str) -> Vec<u64> {
    let mut next = "-1".to_string();
    let mut out = Vec::new();
    for _ in 0..1000 {
        let r = c
            .get(url)
            .query(&[("offset", next.as_str()), ("filter", filter)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{filter}");
        let done = header(&r, "stream-up-to-date").is_some();
        next = header(&r, "stream-next-offset").unwrap();
        let page: Vec<Value> = r.json().await.unwrap();
        out.extend(page.iter().map(|v| v["status"].as_u64().unwrap()));
        if done {
            return out;
        }
    }
    panic!("no end");
}

fn statuses(n: usize, keep: impl Fn(usize) -> bool) -> Vec<u64> {
    (0..n)
        .filter(|&i| keep(i))
        .map(|i| 200 + i as u64 * 10)
        .collect()
}

async fn check_filters(c: &Client, url: &str, n: usize) {
    assert_eq!(
        filtered(c, url, "level:warn").await,
        statuses(n, |i| i % 3 == 1)
    );
    assert_eq!(
        filtered(c, url, "lvl:error OR status:<=210").await,
        statuses(n, |i| i % 3 == 2 || i <= 1)
    );
    assert_eq!(
        filtered(c, url, "status:>=300 -(level:info) has:ts").await,
        statuses(n, |i| i >= 10 && i % 3 != 0)
    );
    // With a key: the routing key and the filter both apply.
    assert_eq!(
        filtered(c, &format!("{url}/pk/bob"), "level:warn").await,
        statuses(n, |i| i % 2 == 1 && i % 3 == 1)
    );
    let r = c
        .get(url)
        .query(&[("offset", "-1"), ("filter", "nope:1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["message"], "filter field nope is not indexed");
    for (q, msg) in [
        ("(level:warn", "missing ')' in filter"),
        ("status:>abc", "invalid value for filter field"),
        ("", "filter must not be empty"),
    ] {
        let r = c
            .get(url)
            .query(&[("offset", "-1"), ("filter", q)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{q}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["message"], msg, "{q}");
    }
    let r = c
        .get(url)
        .query(&[("offset", "-1"), ("filter", "level:warn"), ("live", "sse")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["message"], "filter does not support live=sse");
}

async fn search(c: &Client, url: &str, body: Value) -> (StatusCode, Value) {
    let r = c
        .post(format!("{url}/_search"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status();
    if status == 200 {
        assert_eq!(
            header(&r, "search-coverage-complete").as_deref(),
            Some("true")
        );
    }
    (status, r.json().await.unwrap())
}

fn hit_statuses(v: &Value) -> Vec<u64> {
    v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["source"]["status"].as_u64().unwrap())
        .collect()
}

async fn check_search(c: &Client, url: &str, n: usize) {
    // Studio's paging: newest first, continued with `search_after`.
    let mut seen = Vec::new();
    let mut after = Value::Null;
    for _ in 0..100 {
        let (st, v) = search(
            c,
            url,
            json!({"q": "level:warn", "size": 3, "sort": ["offset:desc"], "search_after": after}),
        )
        .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["coverage"]["complete"], true);
        assert_eq!(v["coverage"]["mode"], "complete");
        assert_eq!(v["timed_out"], false);
        seen.extend(hit_statuses(&v));
        after = v["next_search_after"].clone();
        if after.is_null() {
            assert_eq!(v["total"]["relation"], "eq");
            break;
        }
        assert_eq!(v["total"], json!({"value": 3, "relation": "gte"}));
    }
    let mut want = statuses(n, |i| i % 3 == 1);
    want.reverse();
    assert_eq!(seen, want);

    // One hit in full: offset, sort, fields and source.
    let (_, v) = search(c, url, json!({"q": "status:200"})).await;
    let hit = &v["hits"][0];
    assert_eq!(hit["source"], record(0));
    assert_eq!(hit["fields"]["level"], "info");
    assert_eq!(hit["fields"]["ts"], BASE_MS);
    assert_eq!(hit["sort"], json!([hit["offset"].clone()]));
    assert_eq!(v["stream"], url.rsplit('/').next().unwrap());
    for k in [
        "snapshot_end_offset",
        "took_ms",
        "timeout_ms",
        "coverage",
        "total",
        "hits",
    ] {
        assert!(v.get(k).is_some(), "{k}: {v}");
    }

    // Text, ranked by score then timestamp (newest first).
    let r = c
        .get(format!("{url}/_search"))
        .query(&[("q", "disk full"), ("size", "50")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "search-timed-out").as_deref(), Some("false"));
    let v: Value = r.json().await.unwrap();
    let mut want = statuses(n, |i| i.is_multiple_of(4));
    want.reverse();
    assert_eq!(hit_statuses(&v), want);
    assert_eq!(v["hits"][0]["score"], 2);

    // A sortable field, ascending, paged.
    let (_, v) = search(
        c,
        url,
        json!({"q": "has:status", "size": 4, "sort": ["status:asc"]}),
    )
    .await;
    assert_eq!(hit_statuses(&v), vec![200, 210, 220, 230]);
    let (_, v2) = search(
        c,
        url,
        json!({"q": "has:status", "size": 4, "sort": ["status:asc"], "search_after": v["next_search_after"]}),
    )
    .await;
    assert_eq!(hit_statuses(&v2), vec![240, 250, 260, 270]);

    // Oldest first.
    let (_, v) = search(
        c,
        url,
        json!({"q": "user:bob", "size": 2, "sort": ["offset:asc"]}),
    )
    .await;
    assert_eq!(hit_statuses(&v), vec![210, 230]);

    // A spent time budget: 408 with what was found (nothing here), marked incomplete.
    let (st, v) = search(c, url, json!({"q": "has:status", "timeout_ms": 0})).await;
    assert_eq!(st, 408, "{v}");
    assert_eq!(v["timed_out"], true);
    assert_eq!(v["timeout_ms"], 0);
    assert_eq!(v["coverage"]["complete"], false);
    assert_eq!(v["total"]["relation"], "gte");

    let (st, v) = search(c, url, json!({"q": "nope:x"})).await;
    assert_eq!(st, 400);
    assert_eq!(v["error"]["message"], "unknown search field nope");
    let (st, v) = search(c, url, json!({"q": "level:warn", "size": 0})).await;
    assert_eq!(st, 400);
    assert_eq!(
        v["error"]["message"],
        "size must be an integer between 1 and 500"
    );
}

/// The buckets, computed by hand from the records.
fn expected_buckets(n: usize, from: i64, to: i64) -> Value {
    // start → level → (count, sum, min, max)
    type Groups = BTreeMap<&'static str, (u64, u64, u64, u64)>;
    let mut b: BTreeMap<i64, Groups> = BTreeMap::new();
    for i in 0..n {
        let ts = BASE_MS + i as i64 * 20_000;
        if ts < from || ts >= to {
            continue;
        }
        let start = ts - ts.rem_euclid(60_000);
        let st = 200 + i as u64 * 10;
        let e = b
            .entry(start)
            .or_default()
            .entry(LEVELS[i % 3])
            .or_insert((0, 0, u64::MAX, 0));
        e.0 += 1;
        e.1 += st;
        e.2 = e.2.min(st);
        e.3 = e.3.max(st);
    }
    let iso = |ms: i64| {
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).unwrap();
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    };
    Value::Array(
        b.into_iter()
            .map(|(start, groups)| {
                json!({
                    "start": iso(start),
                    "end": iso(start + 60_000),
                    // `{"level":"error"}` < `{"level":"info"}` < `{"level":"warn"}`.
                    "groups": groups.into_iter().map(|(level, (count, sum, min, max))| json!({
                        "key": {"level": level},
                        "measures": {
                            "n": {"count": count},
                            "st": {"count": count, "sum": sum, "min": min, "max": max,
                                   "avg": sum as f64 / count as f64, "p50": null, "p95": null, "p99": null}
                        }
                    })).collect::<Vec<_>>()
                })
            })
            .collect(),
    )
}

async fn aggregate(c: &Client, url: &str, body: Value) -> (StatusCode, Value) {
    let r = c
        .post(format!("{url}/_aggregate"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

async fn check_aggregate(c: &Client, url: &str, n: usize) {
    let from = BASE_MS + 30_000; // mid-bucket: records 2.. (at 40 s) on
    let to = BASE_MS + 200_000;
    let (st, v) = aggregate(
        c,
        url,
        json!({"rollup": "requests", "from": from, "to": "2024-01-01T00:03:20Z",
               "interval": "1m", "group_by": ["level"]}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["rollup"], "requests");
    assert_eq!(v["from"], "2024-01-01T00:00:30.000Z");
    assert_eq!(v["to"], "2024-01-01T00:03:20.000Z");
    assert_eq!(v["interval"], "1m");
    assert_eq!(v["coverage"]["complete"], true);
    // `avg` is compared as a double (written as an integer when whole).
    let mut got = v["buckets"].clone();
    for b in got.as_array_mut().unwrap() {
        for g in b["groups"].as_array_mut().unwrap() {
            let avg = g["measures"]["st"]["avg"].as_f64().unwrap();
            g["measures"]["st"]["avg"] = json!(avg);
        }
    }
    let mut want = expected_buckets(n, from, to);
    for b in want.as_array_mut().unwrap() {
        for g in b["groups"].as_array_mut().unwrap() {
            let avg = g["measures"]["st"]["avg"].as_f64().unwrap();
            g["measures"]["st"]["avg"] = json!(avg);
        }
    }
    assert_eq!(got, want);
    // The first bucket by hand: records 2 (error, 220) only; the second: 3 (info, 230),
    // 4 (warn, 240), 5 (error, 250).
    assert_eq!(v["buckets"][0]["groups"].as_array().unwrap().len(), 1);
    assert_eq!(v["buckets"][0]["groups"][0]["measures"]["n"]["count"], 1);
    assert_eq!(v["buckets"][1]["groups"].as_array().unwrap().len(), 3);

    // A query and a measure selection; no grouping.
    let (st, v) = aggregate(
        c,
        url,
        json!({"rollup": "requests", "from": BASE_MS, "to": BASE_MS + 60_000, "interval": "1m",
               "q": "level:warn OR level:info", "measures": ["n"]}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["buckets"],
        json!([{"start": "2024-01-01T00:00:00.000Z", "end": "2024-01-01T00:01:00.000Z",
                "groups": [{"key": {}, "measures": {"n": {"count": 2}}}]}])
    );
    let (st, v) = aggregate(
        c,
        url,
        json!({"rollup": "nope", "from": 0, "to": 1, "interval": "1m"}),
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(v["error"]["message"], "unknown rollup nope");
    let (st, v) = aggregate(
        c,
        url,
        json!({"rollup": "requests", "from": 0, "to": 1, "interval": "5m"}),
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(
        v["error"]["message"],
        "interval 5m is not configured for rollup requests"
    );
}

/// A long-poll with a filter skips non-matching appends and returns the matching one.
async fn check_long_poll(c: &Client, url: &str, n: usize) {
    let r = c.head(url).send().await.unwrap();
    let tail = header(&r, "stream-next-offset").unwrap();
    let (c2, u2, t2) = (c.clone(), url.to_string(), tail.clone());
    let waiter = tokio::spawn(async move {
        c2.get(&u2)
            .query(&[
                ("offset", t2.as_str()),
                ("live", "long-poll"),
                ("filter", "status:>=100000"),
            ])
            .send()
            .await
            .unwrap()
    });
    // Non-matching, then matching.
    append(c, url, n, n + 1).await;
    let big =
        json!({"user": "ann", "level": "info", "status": 100_000, "ts": BASE_MS, "msg": "late"});
    let r = c
        .post(url)
        .header("content-type", "application/json")
        .body(big.to_string())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let r = waiter.await.unwrap();
    // The waiter may have been answered by an earlier empty page only if it timed out
    // (204); retry from where it left off until the matching record arrives.
    let mut r = r;
    let mut found = Vec::new();
    for _ in 0..20 {
        let status = r.status();
        let next = header(&r, "stream-next-offset").unwrap();
        if status == 200 {
            let page: Vec<Value> = r.json().await.unwrap();
            found.extend(page);
            if !found.is_empty() {
                break;
            }
        }
        r = c
            .get(url)
            .query(&[
                ("offset", next.as_str()),
                ("live", "long-poll"),
                ("filter", "status:>=100000"),
            ])
            .send()
            .await
            .unwrap();
    }
    assert_eq!(found, vec![big]);
}

#[tokio::test]
async fn local_mode() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_local(dir.path(), &[]);
    let c = client();
    let url = s.stream_url("events");
    setup(&c, &url).await;
    append(&c, &url, 0, 20).await;
    check_filters(&c, &url, 20).await;
    check_search(&c, &url, 20).await;
    check_aggregate(&c, &url, 20).await;
    check_long_poll(&c, &url, 20).await;
}

#[tokio::test]
async fn full_mode_sees_segments_the_sqlite_tail_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("node");
    let c = client();
    let s = Server::start_full(&root, "local", common::tier::TINY, &[]);
    let url = s.stream_url("events");
    setup(&c, &url).await;
    append(&c, &url, 0, 15).await;
    let store = common::tier::store_for("local", &root);
    common::tier::wait_uploaded(&store, "events", 15).await;
    // These stay in SQLite for now (the segmenter may take some of them meanwhile).
    append(&c, &url, 15, 20).await;
    check_filters(&c, &url, 20).await;
    check_search(&c, &url, 20).await;
    check_aggregate(&c, &url, 20).await;
    let (_, v) = search(&c, &url, json!({"q": "has:status", "size": 500})).await;
    assert_eq!(v["hits"].as_array().unwrap().len(), 20);
    assert!(
        v["coverage"]["scanned_segments"].as_u64().unwrap() >= 3,
        "{v}"
    );
    drop(s);
    let s = Server::start_full(&root, "local", common::tier::TINY, &[]);
    let url = s.stream_url("events");
    check_filters(&c, &url, 20).await;
    check_search(&c, &url, 20).await;
    check_aggregate(&c, &url, 20).await;
    check_long_poll(&c, &url, 20).await;
}

#[tokio::test]
async fn filter_scan_limit_headers() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_local(dir.path(), &[("DS_READ_FILTER_SCAN_LIMIT_BYTES", "300")]);
    let c = client();
    let url = s.stream_url("events");
    setup(&c, &url).await;
    append(&c, &url, 0, 20).await;
    let r = c
        .get(&url)
        .query(&[("offset", "-1"), ("filter", "status:390")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "stream-filter-scan-limit-reached").as_deref(),
        Some("true")
    );
    assert_eq!(
        header(&r, "stream-filter-scan-limit-bytes").as_deref(),
        Some("300")
    );
    let scanned: usize = header(&r, "stream-filter-scanned-bytes")
        .unwrap()
        .parse()
        .unwrap();
    assert!(scanned >= 300);
    assert!(header(&r, "stream-up-to-date").is_none());
    let page: Vec<Value> = r.json().await.unwrap();
    assert!(page.is_empty(), "record 19 is beyond the first 300 bytes");
    // Following the pages still finds it.
    assert_eq!(filtered(&c, &url, "status:390").await, vec![390]);
    // A stream that is not JSON cannot be filtered.
    let raw = s.stream_url("raw");
    put(&c, &raw, "text/plain", "x").await;
    let r = c
        .get(&raw)
        .query(&[("offset", "-1"), ("filter", "a:1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(
        e["error"]["message"],
        "filter requires application/json stream content-type"
    );
}

/// The summary objects of the stream in the local object store.
fn summary_files(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    common::tier::object_files(root, "summaries")
}

/// Waits until all `n` entries of `events` are in uploaded segments (tiny segments are
/// also cut on age, so the last few are too) and every uploaded segment is indexed
/// (summaries are written before their segment's run); returns the number of uploaded
/// segments, which then no longer changes.
async fn wait_summarized(c: &Client, s: &Server, n: u64) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let url = s.stream_url("events");
    loop {
        let st: Value = common::get_json(c, &format!("{url}/_index_status")).await;
        let details: Value = common::get_json(c, &format!("{url}/_details")).await;
        let uploaded = st["segments"]["uploaded_count"].as_u64().unwrap_or(0);
        let indexed = st["routing_key_index"]["indexed_segment_count"].as_u64();
        let covered = details["stream"]["uploaded_through"] == json!((n - 1).to_string());
        if covered && indexed == Some(uploaded) {
            return uploaded;
        }
        assert!(std::time::Instant::now() < deadline, "never indexed: {st}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Full mode with tiny segments: `_aggregate` answers aligned windows from segment
/// summaries (and says so) with the same buckets a local-mode scan gives; comparisons on
/// column fields skip segments; a damaged summary is not used and is rebuilt; a node
/// bootstrapped from the object store uses the summaries it finds there.
#[tokio::test]
async fn full_mode_summaries_answer_as_the_scan_does() {
    const N: usize = 90; // 30 minutes of records, 20 s apart
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    let local = Server::start_local(&dir.path().join("local"), &[]);
    let local_url = local.stream_url("events");
    setup(&c, &local_url).await;
    append(&c, &local_url, 0, N).await;

    let root = dir.path().join("node");
    let env: Vec<(&str, &str)> = common::tier::TINY
        .iter()
        .copied()
        .chain([("DS_KEY_INDEX_CHECK_MS", "20")])
        .collect();
    let mut full = Server::start_full(&root, "local", &env, &[]);
    let url = full.stream_url("events");
    setup(&c, &url).await;
    append(&c, &url, 0, N).await;
    let segments = wait_summarized(&c, &full, N as u64).await;
    assert!(segments >= 15, "{segments} segments");
    assert_eq!(summary_files(&root).len() as u64, segments);

    let minute = 60_000;
    let requests = [
        json!({"rollup": "requests", "from": BASE_MS, "to": BASE_MS + 30 * minute,
               "interval": "1m", "group_by": ["level"]}),
        json!({"rollup": "requests", "from": BASE_MS + 30_000, "to": BASE_MS + 20 * minute + 10_000,
               "interval": "1m", "group_by": ["level"]}),
        json!({"rollup": "requests", "from": BASE_MS, "to": BASE_MS + 30 * minute,
               "interval": "1m", "q": "level:warn", "group_by": ["level"]}),
        json!({"rollup": "requests", "from": BASE_MS, "to": BASE_MS + 30 * minute,
               "interval": "1m", "q": "level:warn OR level:info", "measures": ["n"]}),
        json!({"rollup": "requests", "from": BASE_MS - 60 * minute, "to": BASE_MS + 60 * minute,
               "interval": "1m", "measures": ["st"]}),
    ];
    // Summaries answer every request but the fourth (an OR): the second straddles a
    // bucket at each end, so the segments holding those two buckets are scanned.
    let check = |full_url: String| {
        let c = c.clone();
        let local_url = local_url.clone();
        let requests = requests.clone();
        async move {
            let mut used = Vec::new();
            for body in &requests {
                let (st, want) = aggregate(&c, &local_url, body.clone()).await;
                assert_eq!(st, 200, "{want}");
                assert_eq!(want["coverage"]["used_rollups"], false);
                let (st, got) = aggregate(&c, &full_url, body.clone()).await;
                assert_eq!(st, 200, "{got}");
                assert_eq!(got["buckets"], want["buckets"], "{body}");
                assert!(!got["buckets"].as_array().unwrap().is_empty(), "{body}");
                used.push(got["coverage"]["indexed_segments"].as_u64().unwrap());
            }
            used
        }
    };
    let used = check(url.clone()).await;
    assert_eq!(
        [used[0], used[2], used[3], used[4]],
        [segments, segments, 0, segments],
        "segments answered from summaries"
    );
    assert!((segments - 4..=segments - 2).contains(&used[1]), "{used:?}");
    let (_, v) = aggregate(&c, &url, requests[0].clone()).await;
    assert_eq!(v["coverage"]["used_rollups"], true);
    assert_eq!(v["coverage"]["index_families_used"], json!(["agg"]));

    // Statuses 200 + 10 i: `status:>=1000` holds for i >= 80, in the last segments only.
    for q in [
        "status:>=1000",
        "status:>=1000 AND level:warn",
        "status:<250 OR status:>1080",
    ] {
        let body = json!({"q": q, "size": 500});
        let (_, want) = search(&c, &local_url, body.clone()).await;
        let (st, got) = search(&c, &url, body).await;
        assert_eq!(st, 200, "{got}");
        assert_eq!(hit_statuses(&got), hit_statuses(&want), "{q}");
        assert!(!hit_statuses(&got).is_empty());
        assert!(
            got["coverage"]["scanned_segments"].as_u64().unwrap() < segments / 2,
            "{q}: {got}"
        );
    }
    let (_, all) = search(&c, &url, json!({"q": "status:>0", "size": 500})).await;
    assert_eq!(hit_statuses(&all).len(), N);
    assert_eq!(all["coverage"]["scanned_segments"].as_u64(), Some(segments));

    // A damaged summary is never used (its segment is scanned), and is built again.
    let victim = summary_files(&root)[2].clone();
    let mut bytes = std::fs::read(&victim).unwrap();
    let last = bytes.len() - 6;
    bytes[last] ^= 0xff;
    std::fs::write(&victim, &bytes).unwrap();
    full.terminate();
    let full = Server::start_full(&root, "local", &env, &[]);
    let url = full.stream_url("events");
    let used = check(url.clone()).await;
    assert_eq!(used[0], segments - 1, "the damaged summary is not used");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::read(&victim).unwrap() == bytes {
        assert!(std::time::Instant::now() < deadline, "never rebuilt");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let after = check(url.clone()).await;
    assert_eq!(after[0], segments, "the rebuilt summary is used");
    drop(full);

    // A node rebuilt from the object store finds the summaries there.
    common::tier::wipe_node(&root);
    let full = Server::start_full(&root, "local", &env, &["--bootstrap-from-r2"]);
    let used = check(full.stream_url("events")).await;
    assert_eq!(used[0], segments);
}

/// Local mode keeps summaries of whole chunks of 1,024 records after a first `_aggregate`
/// without a query has read them: later requests use them (and say so) and answer what a
/// scan answers (`has:ts` holds for every record but is never answered from summaries).
#[tokio::test]
async fn local_mode_chunk_summaries_answer_as_the_scan_does() {
    const N: usize = 9_000;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_local(dir.path(), &[]);
    let c = client();
    let url = s.stream_url("events");
    setup(&c, &url).await;
    for from in (0..N).step_by(1000) {
        let batch: Vec<Value> = (from..from + 1000).map(record).collect();
        let r = c
            .post(&url)
            .header("content-type", "application/json")
            .body(Value::Array(batch).to_string())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    let hour = 3_600_000;
    let whole = json!({"rollup": "requests", "from": BASE_MS, "to": BASE_MS + 60 * hour,
                       "interval": "1m", "group_by": ["level"]});
    let (_, first) = aggregate(&c, &url, whole.clone()).await;
    assert_eq!(first["coverage"]["used_rollups"], false, "nothing kept yet");
    let (_, second) = aggregate(&c, &url, whole.clone()).await;
    assert_eq!(second["coverage"]["used_rollups"], true);
    assert_eq!(second["buckets"], first["buckets"]);
    assert_eq!(
        second["buckets"].as_array().unwrap().len(),
        N / 3,
        "3 records a minute"
    );
    for body in [
        // Mid-minute edges: the chunks holding them are scanned, the one between is not.
        json!({"rollup": "requests", "from": BASE_MS + 7 * hour + 30_000, "to": BASE_MS + 49 * hour + 10_000,
               "interval": "1m"}),
        json!({"rollup": "requests", "from": BASE_MS + 10 * hour, "to": BASE_MS + 30 * hour,
               "interval": "1m", "group_by": ["level"], "measures": ["st"]}),
        json!({"rollup": "requests", "from": BASE_MS, "to": BASE_MS + 60 * hour,
               "interval": "1m", "q": "level:warn"}),
    ] {
        let (st, got) = aggregate(&c, &url, body.clone()).await;
        assert_eq!(st, 200, "{got}");
        assert_eq!(got["coverage"]["used_rollups"], true, "{body}");
        let mut scanned = body.clone();
        scanned["q"] = match body.get("q") {
            Some(q) => json!(format!("{} AND has:ts", q.as_str().unwrap())),
            None => json!("has:ts"),
        };
        let (_, want) = aggregate(&c, &url, scanned).await;
        assert_eq!(want["coverage"]["used_rollups"], false);
        assert_eq!(got["buckets"], want["buckets"], "{body}");
    }
}
