//! Helpers for tests of segments and the object store.

use std::path::Path;
use std::time::Duration;

use prisma_streams::config::{Env, ObjectStoreConfig, RetryPolicy, Tiering};
use prisma_streams::engine::manifest::Manifest;
use prisma_streams::objstore::{keys, Store};

/// Tiny thresholds: a segment every 5 entries, small blocks, fast ticks, no local cache.
pub const TINY: &[(&str, &str)] = &[
    ("DS_SEGMENT_TARGET_ROWS", "5"),
    ("DS_BLOCK_MAX_BYTES", "64"),
    ("DS_SEGMENT_CHECK_MS", "10"),
    ("DS_UPLOAD_CHECK_MS", "10"),
    ("DS_SEGMENT_MAX_INTERVAL_MS", "50"),
    ("DS_SEGMENT_CACHE_MAX_BYTES", "1"),
    ("DS_OBJECTSTORE_TIMEOUT_MS", "500"),
    ("DS_OBJECTSTORE_RETRIES", "1"),
    ("DS_READ_MAX_RECORDS", "7"),
];

pub fn s3_available() -> bool {
    std::env::var("DURABLE_STREAMS_S3_ENDPOINT").is_ok()
}

/// A client for the same object store the server uses.
pub fn store_for(kind: &str, root: &Path) -> Store {
    let env = Env::from_process();
    let kind = match kind {
        "local" => prisma_streams::cli::ObjectStoreKind::Local,
        "s3" => prisma_streams::cli::ObjectStoreKind::S3,
        other => panic!("no test store {other}"),
    };
    let t = Tiering::from_env(kind, root, &env).expect("store config");
    let cfg: ObjectStoreConfig = t.store;
    Store::build(&cfg, RetryPolicy::default()).expect("store")
}

/// Waits until the manifest of `name` covers `end` entries (the server uploads on its own).
pub async fn wait_uploaded(store: &Store, name: &str, end: u64) {
    wait_manifest(store, name, end, false).await
}

/// Waits until the manifest of `name` covers `end` entries and, when `closed`, also records
/// the close (which the server publishes in a later manifest than the data before it).
pub async fn wait_manifest(store: &Store, name: &str, end: u64, closed: bool) {
    wait_manifest_within(store, name, end, closed, Duration::from_secs(30)).await
}

/// [`wait_manifest`] with a given patience.
pub async fn wait_manifest_within(
    store: &Store,
    name: &str,
    end: u64,
    closed: bool,
    patience: Duration,
) {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let mut seen = None;
        for key in store.list(keys::STREAMS_PREFIX).await.unwrap_or_default() {
            if !keys::is_manifest(&key) {
                continue;
            }
            let Ok(bytes) = store.get(&key).await else {
                continue;
            };
            let Ok(m) = Manifest::decode(&bytes) else {
                continue;
            };
            if m.name.as_deref() == Some(name) && !m.deleted {
                seen = Some((m.end_pos, m.closed));
            }
        }
        if seen.is_some_and(|(e, c)| e == end && (c || !closed)) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stream {name} never reached the object store in full: manifest (end, closed) is {seen:?}, want end {end}, closed {closed}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads a stream from the start, page by page: (body bytes, next offset, closed).
pub async fn read_all(c: &reqwest::Client, url: &str) -> (Vec<u8>, String, bool) {
    let pages = match super::read_pages(c, url).await {
        Ok(p) => p,
        Err(r) => panic!("{url}: {}", r.status()),
    };
    let body = pages.joined();
    assert!(
        pages.bodies.len() > 1 || body.len() < 100,
        "pages are bounded"
    );
    (body, pages.next, pages.closed)
}

/// Loses a full-mode node: deletes everything under `root` but the local object store's
/// `objects/` (which stays, as a bucket would), before a `--bootstrap-from-r2`.
pub fn wipe_node(root: &Path) {
    for entry in std::fs::read_dir(root).unwrap().flatten() {
        if entry.file_name() != "objects" {
            let p = entry.path();
            if p.is_dir() {
                std::fs::remove_dir_all(p).unwrap();
            } else {
                std::fs::remove_file(p).unwrap();
            }
        }
    }
}

/// The files in folder `folder` of every stream incarnation in the local object store under
/// `root` (`keyindex`, `summaries`, …), sorted.
pub fn object_files(root: &Path, folder: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for inc in std::fs::read_dir(root.join("objects/streams"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for f in std::fs::read_dir(inc.path().join(folder))
            .into_iter()
            .flatten()
            .flatten()
        {
            out.push(f.path());
        }
    }
    out.sort();
    out
}
