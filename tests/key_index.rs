//! Full mode's routing-key index over hundreds of tiny segments: keyed reads return every
//! entry of their key once runs are built and merged (levels 1 and 2), after a restart,
//! with a damaged run (never trusted, then rebuilt), and after `--bootstrap-from-r2`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common;
use common::{client, Server};

/// 300 segments of 5 entries; the indexer runs every 20 ms.
const ENV: &[(&str, &str)] = &[
    ("DS_SEGMENT_TARGET_ROWS", "5"),
    ("DS_BLOCK_MAX_BYTES", "64"),
    ("DS_SEGMENT_CHECK_MS", "10"),
    ("DS_UPLOAD_CHECK_MS", "10"),
    ("DS_SEGMENT_MAX_INTERVAL_MS", "50"),
    ("DS_SEGMENT_CACHE_MAX_BYTES", "1"),
    ("DS_KEY_INDEX_CHECK_MS", "20"),
    ("DS_READ_MAX_RECORDS", "50"),
];
const ENTRIES: usize = 1500;

/// The key of entry `i`: mostly seven busy keys, one rare key every 97 entries, and one
/// key that only exists in the last segments (not merged into a level-2 run).
fn key_of(i: usize) -> String {
    if i.is_multiple_of(97) {
        "rare".into()
    } else if i >= ENTRIES - 10 {
        "late".into()
    } else {
        format!("k{}", i % 7)
    }
}

/// A whole keyed read from the start, page by page.
async fn read_key(c: &reqwest::Client, url: &str) -> String {
    match common::read_pages(c, url).await {
        Ok(pages) => String::from_utf8(pages.joined()).unwrap(),
        Err(r) => panic!("{url}: {}", r.status()),
    }
}

/// Every key's entries, as the server must return them.
fn expected() -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    for i in 0..ENTRIES {
        m.entry(key_of(i)).or_default().push_str(&format!("{i};"));
    }
    m
}

async fn check_all_keys(c: &reqwest::Client, s: &Server) {
    for (key, want) in expected() {
        let got = read_key(c, &s.stream_url(&format!("k/pk/{key}"))).await;
        assert_eq!(got, want, "key {key}");
    }
    assert_eq!(read_key(c, &s.stream_url("k/pk/absent")).await, "");
}

/// The run objects of the stream in the local object store, by file name.
fn run_files(root: &Path) -> Vec<PathBuf> {
    common::tier::object_files(root, "keyindex")
}

fn level_of(p: &Path) -> u32 {
    let name = p.file_name().unwrap().to_str().unwrap();
    name[1..name.find('-').unwrap()].parse().unwrap()
}

async fn index_status(c: &reqwest::Client, s: &Server) -> serde_json::Value {
    let r = c.get(s.stream_url("k/_index_status")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Waits until every uploaded segment is indexed and a level-2 run exists.
async fn wait_indexed(c: &reqwest::Client, s: &Server, root: &Path) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let st = index_status(c, s).await;
        let idx = &st["routing_key_index"];
        let uploaded = st["segments"]["uploaded_count"].as_u64().unwrap();
        let full = uploaded >= (ENTRIES / 5) as u64
            && idx["indexed_segment_count"].as_u64() == Some(uploaded);
        if full && run_files(root).iter().any(|p| level_of(p) == 2) {
            return;
        }
        assert!(Instant::now() < deadline, "index never caught up: {st}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn metric(c: &reqwest::Client, s: &Server, name: &str) -> f64 {
    let text = c
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no metric {name}"))
}

#[tokio::test]
async fn keyed_reads_stay_exact_through_merges_restarts_damage_and_bootstrap() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("node");
    let c = client();
    let mut s = Server::start_full(&root, "local", ENV, &[]);
    let url = s.stream_url("k");
    assert_eq!(common::put(&c, &url, "text/plain", "").await.status(), 201);
    for i in 0..ENTRIES {
        let r = c
            .post(&url)
            .header("content-type", "text/plain")
            .header("stream-key", key_of(i))
            .body(format!("{i};"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    wait_indexed(&c, &s, &root).await;
    let levels: Vec<u32> = run_files(&root).iter().map(|p| level_of(p)).collect();
    assert!(levels.contains(&2) && levels.contains(&1), "{levels:?}");
    check_all_keys(&c, &s).await;
    assert!(
        metric(&c, &s, "ds_key_index_segments_skipped_total").await > 0.0,
        "keyed reads skip the segments the index rules out"
    );
    let keys: serde_json::Value =
        common::get_json(&c, &s.stream_url("k/_routing_keys?limit=100")).await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), expected().len());

    // A restart: the catalog is in SQLite, the runs in the object store.
    s.terminate();
    let mut s = Server::start_full(&root, "local", ENV, &[]);
    check_all_keys(&c, &s).await;

    // A damaged run is never trusted: reads scan its segments, and the indexer rebuilds it.
    s.terminate();
    let l2 = run_files(&root)
        .into_iter()
        .find(|p| level_of(p) == 2)
        .unwrap();
    let good = std::fs::read(&l2).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    std::fs::write(&l2, &bad).unwrap();
    let mut s = Server::start_full(&root, "local", ENV, &[]);
    check_all_keys(&c, &s).await;
    assert!(metric(&c, &s, "ds_key_index_failures_total").await > 0.0);
    let deadline = Instant::now() + Duration::from_secs(90);
    while std::fs::read(&l2).map(|b| b == bad).unwrap_or(true) {
        assert!(
            Instant::now() < deadline,
            "the damaged run was never rebuilt"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_indexed(&c, &s, &root).await;
    check_all_keys(&c, &s).await;

    // A node rebuilt from the object store restores the index from the run objects.
    s.terminate();
    common::tier::wipe_node(&root);
    let s = Server::start_full(&root, "local", ENV, &["--bootstrap-from-r2"]);
    let st = index_status(&c, &s).await;
    assert_eq!(
        st["routing_key_index"]["indexed_segment_count"], st["segments"]["uploaded_count"],
        "the runs are restored: {st}"
    );
    check_all_keys(&c, &s).await;
    let keys: serde_json::Value =
        common::get_json(&c, &s.stream_url("k/_routing_keys?limit=100")).await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), expected().len());
}

/// Records of the search test: `tag` is rare on a few of them, `op` cycles.
fn search_record(i: usize) -> serde_json::Value {
    let tag = if i.is_multiple_of(53) {
        format!("rare-{}", i % 2)
    } else {
        "common".into()
    };
    serde_json::json!({"op": format!("op{}", i % 5), "tag": tag, "n": i})
}

/// Every hit's `n` for a query (offset order, one page of at most 500).
async fn search_ns(c: &reqwest::Client, s: &Server, q: &str) -> Vec<u64> {
    let r = c
        .post(s.stream_url("j/_search"))
        .header("content-type", "application/json")
        .body(serde_json::json!({"q": q, "size": 500, "sort": ["offset:asc"]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{q}");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["coverage"]["complete"], true, "{q}: {v}");
    v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["source"]["n"].as_u64().unwrap())
        .collect()
}

/// `_search` in full mode over ~120 indexed segments: keyword clauses skip the segments
/// whose runs lack their terms, and every query answers exactly what a scan would.
#[tokio::test]
async fn searches_skip_segments_without_their_terms_and_stay_exact() {
    const N: usize = 600;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("node");
    let c = client();
    let s = Server::start_full(&root, "local", ENV, &[]);
    let url = s.stream_url("j");
    assert_eq!(
        common::put(&c, &url, "application/json", "").await.status(),
        201
    );
    let schema = serde_json::json!({
        "schema": {"type": "object"},
        "search": {
            "primaryTimestampField": "t",
            "fields": {
                "t": {"kind": "date", "bindings": [{"version": 1, "jsonPointer": "/t"}], "column": true},
                "tag": {"kind": "keyword", "bindings": [{"version": 1, "jsonPointer": "/tag"}], "exact": true, "prefix": true},
                "op": {"kind": "keyword", "bindings": [{"version": 1, "jsonPointer": "/op"}], "exact": true},
                "n": {"kind": "integer", "bindings": [{"version": 1, "jsonPointer": "/n"}], "exact": true}
            }
        }
    });
    let r = c
        .post(format!("{url}/_schema"))
        .header("content-type", "application/json")
        .body(schema.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    for i in 0..N {
        let r = common::post(&c, &url, "application/json", search_record(i).to_string()).await;
        assert_eq!(r.status(), 204);
    }
    // Every uploaded segment indexed, and merged runs among them.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let st: serde_json::Value = common::get_json(&c, &s.stream_url("j/_index_status")).await;
        let uploaded = st["segments"]["uploaded_count"].as_u64().unwrap();
        let indexed = st["routing_key_index"]["indexed_segment_count"]
            .as_u64()
            .unwrap();
        if uploaded >= (N / 5) as u64 - 2
            && indexed == uploaded
            && run_files(&root).iter().any(|p| level_of(p) >= 1)
        {
            break;
        }
        assert!(Instant::now() < deadline, "index never caught up: {st}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let skipped_before = metric(&c, &s, "ds_key_index_segments_skipped_total").await;
    let rec = |i: usize| search_record(i);
    let want = |f: &dyn Fn(&serde_json::Value) -> bool| -> Vec<u64> {
        (0..N).filter(|i| f(&rec(*i))).map(|i| i as u64).collect()
    };
    let tag = |v: &serde_json::Value| v["tag"].as_str().unwrap().to_string();
    let op = |v: &serde_json::Value| v["op"].as_str().unwrap().to_string();
    let cases: Vec<(&str, Vec<u64>)> = vec![
        ("tag:rare-0", want(&|v| tag(v) == "rare-0")),
        ("tag:rare*", want(&|v| tag(v).starts_with("rare"))),
        (
            "op:op3 AND tag:rare-1",
            want(&|v| op(v) == "op3" && tag(v) == "rare-1"),
        ),
        (
            "tag:rare-0 OR tag:rare-1",
            want(&|v| tag(v).starts_with("rare-")),
        ),
        (
            "op:op1 OR tag:rare-0",
            want(&|v| op(v) == "op1" || tag(v) == "rare-0"),
        ),
        (
            "-tag:common AND op:op2",
            want(&|v| tag(v) != "common" && op(v) == "op2"),
        ),
        ("tag:absent", Vec::new()),
    ];
    for (q, expected) in &cases {
        assert_eq!(&search_ns(&c, &s, q).await, expected, "{q}");
    }
    assert!(
        metric(&c, &s, "ds_key_index_segments_skipped_total").await > skipped_before,
        "keyword clauses skip segments"
    );
}
