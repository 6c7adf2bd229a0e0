//! Object-store faults: the server runs in-process on a store that fails, loses
//! acknowledgements, hangs and answers slowly by policy (`common/faulty.rs`, a real
//! `ObjectStore` around the local file system). Appends are never affected, uploads get
//! through by retrying, no manifest ever names a missing segment, reads either return the
//! right bytes or a clear 503, and a node rebuilt from the objects has everything.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common;
use common::faulty::{Faulty, Policy};
use common::inproc::{direct, objects, InProcess};
use prisma_streams::engine::manifest::Manifest;
use prisma_streams::objstore::{keys, Store};
use reqwest::StatusCode;

/// The server of these tests: tiny segments, fast ticks and short object-store timeouts.
async fn start(root: &Path, store: Arc<Faulty>, bootstrap: bool) -> InProcess {
    let mut pairs: Vec<(&str, String)> = common::tier::TINY
        .iter()
        .map(|(k, v)| (*k, v.to_string()))
        .collect();
    pairs.extend([
        ("DS_OBJECTSTORE_TIMEOUT_MS", "200".into()),
        ("DS_OBJECTSTORE_RETRIES", "2".into()),
        ("DS_OBJECTSTORE_RETRY_BASE_MS", "5".into()),
        ("DS_OBJECTSTORE_RETRY_MAX_MS", "40".into()),
    ]);
    InProcess::start(root, store, bootstrap, &pairs).await
}

/// Checks that every manifest names only segments that exist; returns the manifests.
async fn check_manifests(store: &Store) -> Vec<Manifest> {
    let mut out = Vec::new();
    for key in store.list(keys::STREAMS_PREFIX).await.unwrap() {
        if !keys::is_manifest(&key) {
            continue;
        }
        // A manifest deleted between list and get is fine (stream deletion).
        let Ok(bytes) = store.get(&key).await else {
            continue;
        };
        let m = Manifest::decode(&bytes).expect("a published manifest always decodes");
        let prefix = keys::stream_prefix(&m.incarnation);
        for key in m
            .segments
            .iter()
            .map(|seg| keys::segment(&prefix, seg.index))
        {
            assert!(
                store.get(&key).await.is_ok(),
                "manifest {} names missing segment {key}",
                m.name.as_deref().unwrap_or("?")
            );
        }
        out.push(m);
    }
    out
}

async fn write_streams(c: &reqwest::Client, s: &InProcess) -> Vec<(String, Vec<u8>)> {
    let mut expected = Vec::new();
    for (name, ct) in [
        ("faults/json", "application/json"),
        ("faults/bin", "application/octet-stream"),
        ("faults/text", "text/plain"),
    ] {
        let url = s.stream(name);
        assert!(common::put(c, &url, ct, Vec::new())
            .await
            .status()
            .is_success());
        let mut all = Vec::new();
        for i in 0..60u32 {
            let body: Vec<u8> = match ct {
                "application/json" => {
                    format!(r#"{{"i":{i},"s":"{}"}}"#, "é".repeat(i as usize % 5)).into_bytes()
                }
                "application/octet-stream" => {
                    (0..(i % 17 + 1)).map(|b| (b * 31 + i) as u8).collect()
                }
                _ => format!("<{i}>").into_bytes(),
            };
            let r = common::post(c, &url, ct, body.clone()).await;
            // The object store is never on the append path.
            assert_eq!(r.status(), StatusCode::NO_CONTENT, "{name} #{i}");
            if ct == "application/json" {
                if !all.is_empty() {
                    all.push(b',');
                }
                all.extend_from_slice(&body);
            } else {
                all.extend_from_slice(&body);
            }
        }
        expected.push((url, all));
    }
    expected
}

/// Reads a whole stream (JSON messages joined, see `common::Pages::joined`);
/// `Err(status)` when a page failed, which must be a JSON 503 `object_store_unavailable`
/// that names the object store but none of its keys.
async fn try_read_all(c: &reqwest::Client, url: &str) -> Result<Vec<u8>, StatusCode> {
    let r = match common::read_pages(c, url).await {
        Ok(pages) => return Ok(pages.joined()),
        Err(r) => r,
    };
    let st = r.status();
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(common::header(&r, "retry-after").as_deref(), Some("1"));
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "object_store_unavailable", "{e}");
    let message = e["error"]["message"].as_str().unwrap();
    assert!(message.contains("object store"), "{e}");
    assert!(
        !message.contains("streams/"),
        "no object key in a response: {e}"
    );
    assert!(e["error"]["request_id"].is_string(), "{e}");
    Err(st)
}

async fn wait_all_uploaded(store: &Store, names: &[&str], end: u64) {
    for name in names {
        common::tier::wait_uploaded(store, name, end).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flaky_store_loses_nothing_and_never_publishes_a_dangling_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let root: PathBuf = dir.path().join("node");
    let flaky = Policy {
        error: 0.2,
        lost_ack: 0.15,
        hang: 0.05,
        slow_ms: 20,
    };
    let store = Faulty::new(objects(&root), flaky, 7);
    let s = start(&root, store.clone(), false).await;
    let c = common::client();

    // A watcher checks the manifest invariant the whole time.
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = {
        let watching = watching.clone();
        let check = direct(&root);
        tokio::spawn(async move {
            let mut rounds = 0;
            while watching.load(Ordering::SeqCst) {
                check_manifests(&check).await;
                rounds += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            rounds
        })
    };

    let expected = write_streams(&c, &s).await;
    let names = ["faults/json", "faults/bin", "faults/text"];
    wait_all_uploaded(&direct(&root), &names, 60).await;

    // Reads of uploaded data go to the flaky store (no local cache): right bytes or a
    // clear 503, never wrong bytes.
    let mut unavailable = 0;
    for (url, want) in &expected {
        let mut got = None;
        for _ in 0..50 {
            match try_read_all(&c, url).await {
                Ok(b) => {
                    got = Some(b);
                    break;
                }
                Err(_) => unavailable += 1,
            }
        }
        assert_eq!(got.as_ref(), Some(want), "{url}");
    }
    watching.store(false, Ordering::SeqCst);
    assert!(watcher.await.unwrap() > 0);
    let inj = &store.injected;
    eprintln!(
        "injected: {} calls, {} errors, {} lost acks, {} hangs; {unavailable} reads answered 503",
        inj.calls.load(Ordering::Relaxed),
        inj.errors.load(Ordering::Relaxed),
        inj.lost_acks.load(Ordering::Relaxed),
        inj.hangs.load(Ordering::Relaxed),
    );
    assert!(inj.errors.load(Ordering::Relaxed) > 0);
    assert!(inj.lost_acks.load(Ordering::Relaxed) > 0);
    s.stop().await;

    // Rebuild a node from the objects alone (the store still flaky) and compare.
    let fresh = dir.path().join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    let objects_dir = root.join("objects");
    std::os::unix::fs::symlink(&objects_dir, fresh.join("objects")).unwrap();
    let rebuilt_store = Faulty::new(objects(&fresh), Policy { hang: 0.0, ..flaky }, 11);
    let s = start(&fresh, rebuilt_store.clone(), true).await;
    rebuilt_store.set(Policy::HEALTHY);
    for (url, want) in &expected {
        let url = url.replace(&url[..url.find("/v1/").unwrap()], &s.url);
        assert_eq!(try_read_all(&c, &url).await.as_ref(), Ok(want), "{url}");
    }
    check_manifests(&direct(&root)).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_that_is_down_fails_reads_clearly_and_catches_up_later() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let store = Faulty::new(objects(&root), Policy::HEALTHY, 3);
    let s = start(&root, store.clone(), false).await;
    let c = common::client();
    let expected = write_streams(&c, &s).await;
    let names = ["faults/json", "faults/bin", "faults/text"];
    wait_all_uploaded(&direct(&root), &names, 60).await;

    store.set(Policy::DOWN);
    let url = s.stream("faults/text");
    // History lives only in the object store now: a clear 503.
    assert_eq!(
        try_read_all(&c, &url).await,
        Err(StatusCode::SERVICE_UNAVAILABLE)
    );
    // Appends are still acknowledged, and the new tail is readable from SQLite.
    let head = c.head(&url).send().await.unwrap();
    let tail = common::header(&head, "stream-next-offset").unwrap();
    for i in 60..70 {
        let r = common::post(&c, &url, "text/plain", format!("<{i}>")).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    let r = c.get(format!("{url}?offset={tail}")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.text().await.unwrap(),
        (60..67).map(|i| format!("<{i}>")).collect::<String>(),
        "first page (DS_READ_MAX_RECORDS=7) of the SQLite tail"
    );

    // The store comes back: the backlog is uploaded and everything reads again.
    store.set(Policy::HEALTHY);
    common::tier::wait_uploaded(&direct(&root), "faults/text", 70).await;
    let mut want = expected[2].1.clone();
    want.extend((60..70).flat_map(|i| format!("<{i}>").into_bytes()));
    assert_eq!(try_read_all(&c, &url).await, Ok(want));
    for (url, want) in &expected[..2] {
        assert_eq!(try_read_all(&c, url).await.as_ref(), Ok(want));
    }
    check_manifests(&direct(&root)).await;
    s.stop().await;
}
