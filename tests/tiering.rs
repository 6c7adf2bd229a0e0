//! Full-mode tiering end to end: segments cut and uploaded while the server runs, reads
//! across segments, the object store and the SQLite tail, a node rebuilt from the object
//! store alone, and an object store that stops answering for a while.
//!
//! The S3 variants run against a real S3-compatible server (moto) when started through
//! `tests/s3/with-moto.sh` (as `tests/run-all.sh` does); they say so and return otherwise.

use crate::common;
use common::tier::{read_all, s3_available, store_for, wait_manifest, wait_uploaded, TINY};
use common::{client, header, Server};

/// The ETag and status of the first page of `url` (with `If-None-Match` if given).
async fn page_etag(c: &reqwest::Client, url: &str, inm: Option<&str>) -> (String, u16) {
    let mut req = c.get(format!("{url}?offset=-1"));
    if let Some(tag) = inm {
        req = req.header("if-none-match", tag);
    }
    let r = req.send().await.unwrap();
    (header(&r, "etag").expect("ETag"), r.status().as_u16())
}

/// The manifest of the stream `name` in the object store.
async fn manifest_of(
    store: &prisma_streams::objstore::Store,
    name: &str,
) -> prisma_streams::engine::manifest::Manifest {
    use prisma_streams::engine::manifest::Manifest;
    use prisma_streams::objstore::keys;
    for key in store.list(keys::STREAMS_PREFIX).await.unwrap() {
        if keys::is_manifest(&key) {
            let m = Manifest::decode(&store.get(&key).await.unwrap()).unwrap();
            if m.name.as_deref() == Some(name) {
                return m;
            }
        }
    }
    panic!("no manifest for {name}");
}

/// The incarnation token of the stream `name`, from its manifest.
async fn incarnation(store: &prisma_streams::objstore::Store, name: &str) -> String {
    manifest_of(store, name).await.incarnation
}

/// A new stream's first manifest goes out with its first uploaded segment: the object
/// store never gets a manifest of the stream still empty. (The segment interval is ten
/// minutes here, so only the segment, cut at 5 entries, can bring the manifest.) An empty
/// stream's first manifest comes once the stream is a segment interval old.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_streams_first_manifest_comes_with_its_first_segment() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    let long: Vec<(&str, &str)> = TINY
        .iter()
        .map(|&(k, v)| match k {
            "DS_SEGMENT_MAX_INTERVAL_MS" => (k, "600000"),
            _ => (k, v),
        })
        .collect();
    let root = dir.path().join("long");
    let s = Server::start_full(&root, "local", &long, &[]);
    let u = s.stream_url("first");
    common::put(&c, &u, "application/json", "[]").await;
    for i in 0..5 {
        let r = common::post(&c, &u, "application/json", format!(r#"{{"i":{i}}}"#)).await;
        assert_eq!(r.status(), 204);
    }
    let store = store_for("local", &root);
    wait_manifest(&store, "first", 5, false).await;
    let m = manifest_of(&store, "first").await;
    assert_eq!(
        m.generation, 1,
        "no manifest was published before the segment"
    );
    assert_eq!(m.segments.len(), 1);
    drop(s);

    // With the tests' short interval (50 ms), an empty stream's manifest comes on its own.
    let root = dir.path().join("short");
    let s = Server::start_full(&root, "local", TINY, &[]);
    common::put(&c, &s.stream_url("empty"), "text/plain", "").await;
    let store = store_for("local", &root);
    wait_manifest(&store, "empty", 0, false).await;
    let m = manifest_of(&store, "empty").await;
    assert_eq!((m.generation, m.segments.len()), (1, 0));
}

async fn bootstrap_round_trip(kind: &str) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("node");
    let c = client();
    let s = Server::start_full(&root, kind, TINY, &[]);
    let a = s.stream_url("events/a");
    let b = s.stream_url("blobs");
    let f = s.stream_url("events/fork");
    common::put(&c, &a, "application/json", "[]").await;
    common::put(&c, &b, "application/octet-stream", vec![0u8, 255, 1]).await;
    for i in 0..120 {
        let r = common::post(
            &c,
            &a,
            "application/json",
            format!(r#"{{"i":{i},"pad":"{}"}}"#, "é".repeat(i % 13)),
        )
        .await;
        assert_eq!(r.status(), 204);
        if i % 3 == 0 {
            common::post(
                &c,
                &b,
                "application/octet-stream",
                vec![i as u8; i % 40 + 1],
            )
            .await;
        }
    }
    let head = c.head(&a).send().await.unwrap();
    let anchor = header(&head, "stream-next-offset").unwrap();
    let r = c
        .put(&f)
        .header("stream-forked-from", "/v1/stream/events/a")
        .header("stream-fork-offset", &anchor)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    for i in 0..12 {
        common::post(&c, &f, "application/json", format!(r#"{{"fork":{i}}}"#)).await;
    }
    let r = c
        .post(&b)
        .header("stream-closed", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    let before: Vec<_> = [&a, &b, &f].iter().map(|u| u.to_string()).collect();
    let mut expected = Vec::new();
    for u in &before {
        expected.push(read_all(&c, u).await);
    }
    let store = store_for(kind, &root);
    wait_uploaded(&store, "events/a", 120).await;
    wait_manifest(&store, "blobs", 41, true).await;
    wait_uploaded(&store, "events/fork", 132).await;

    // The local cache holds nothing (cap 1 byte): these reads come from the object store.
    for (u, e) in before.iter().zip(&expected) {
        assert_eq!(&read_all(&c, u).await, e, "{u} after upload");
    }
    // A page's ETag names the incarnation's token, which the rebuilt node keeps.
    let etag = page_etag(&c, &a, None).await.0;
    let inc = incarnation(&store, "events/a").await;
    assert_eq!(etag, format!("\"{inc}:0:7\""));
    drop(s);

    // Lose the node: everything local goes (the local store's objects stay, as a bucket would).
    common::tier::wipe_node(&root);
    let s = Server::start_full(&root, kind, TINY, &["--bootstrap-from-r2"]);
    for (i, e) in expected.iter().enumerate() {
        let u = before[i].replace(&before[i][..before[i].find("/v1/").unwrap()], &s.url);
        assert_eq!(&read_all(&c, &u).await, e, "{u} after bootstrap");
    }
    let b = s.stream_url("blobs");
    assert_eq!(
        header(&c.head(&b).send().await.unwrap(), "stream-closed").as_deref(),
        Some("true")
    );
    // The same page has the same ETag on the rebuilt node, so a cached copy revalidates.
    let a = s.stream_url("events/a");
    assert_eq!(page_etag(&c, &a, None).await, (etag.clone(), 200));
    assert_eq!(page_etag(&c, &a, Some(&etag)).await, (etag, 304));
    let r = common::post(&c, &a, "application/json", r#"{"after":"bootstrap"}"#).await;
    assert_eq!(r.status(), 204);
    let next = header(&r, "stream-next-offset").unwrap();
    let o = prisma_streams::protocol::offset::Offset::decode(&next).unwrap();
    assert_eq!(o.pos, 121, "appends continue right after the restored data");
    let (body, _, _) = read_all(&c, &a).await;
    assert!(body.ends_with(br#"{"after":"bootstrap"}"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_store_bootstrap_rebuilds_the_node() {
    bootstrap_round_trip("local").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_bootstrap_rebuilds_the_node() {
    if !s3_available() {
        common::missing_dependency("no S3 server (run through tests/s3/with-moto.sh)");
        return;
    }
    bootstrap_round_trip("s3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_store_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    let mut s = Server::start_full(dir.path(), "local", TINY, &[]);
    let u = s.stream_url("keep");
    common::put(&c, &u, "text/plain", "").await;
    for i in 0..30 {
        common::post(&c, &u, "text/plain", format!("<{i}>")).await;
    }
    let expected = read_all(&c, &u).await;
    wait_uploaded(&store_for("local", dir.path()), "keep", 30).await;
    assert!(s.terminate().success());
    let s = Server::start_full(dir.path(), "local", TINY, &[]);
    assert_eq!(read_all(&c, &s.stream_url("keep")).await, expected);
}

/// The folder of a stream's live incarnation in the object store.
async fn incarnation_prefix(store: &prisma_streams::objstore::Store, name: &str) -> String {
    use prisma_streams::engine::manifest::Manifest;
    use prisma_streams::objstore::keys;
    for key in store.list(keys::STREAMS_PREFIX).await.unwrap() {
        if keys::is_manifest(&key) {
            let m = Manifest::decode(&store.get(&key).await.unwrap()).unwrap();
            if m.name.as_deref() == Some(name) {
                return keys::stream_prefix(&m.incarnation);
            }
        }
    }
    panic!("no manifest for {name}");
}

/// Waits until nothing is left under `prefix`, in the store and on local disk.
async fn wait_gone(store: &prisma_streams::objstore::Store, root: &std::path::Path, prefix: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let objects = store.list(prefix).await.unwrap();
        let local = root.join("segments").join(prefix).exists();
        if objects.is_empty() && !local {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{prefix} was not reclaimed: {objects:?}, local files: {local}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_and_expired_streams_are_reclaimed_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    let mut env = TINY.to_vec();
    env.push(("DS_SEGMENT_CACHE_MAX_BYTES", "10000000")); // keep local files until reclaimed
    env.push(("DS_EXPIRY_SWEEP_MS", "50"));
    let s = Server::start_full(dir.path(), "local", &env, &[]);
    let store = store_for("local", dir.path());
    let gone = s.stream_url("to-delete");
    let brief = s.stream_url("brief");
    common::put(&c, &gone, "text/plain", "").await;
    // Long enough for its segments and manifest to reach the store first on a loaded
    // machine: with 1 s, running beside other tests on two busy cores, it expired before
    // the upload every time.
    let r = c
        .put(&brief)
        .header("content-type", "text/plain")
        .header("stream-ttl", "5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    for i in 0..20 {
        common::post(&c, &gone, "text/plain", format!("{i};")).await;
        common::post(&c, &brief, "text/plain", format!("{i};")).await;
    }
    wait_uploaded(&store, "brief", 20).await;
    wait_uploaded(&store, "to-delete", 20).await;
    let p1 = incarnation_prefix(&store, "to-delete").await;
    let p2 = incarnation_prefix(&store, "brief").await;
    assert!(dir.path().join("segments").join(&p1).exists());

    assert_eq!(c.delete(&gone).send().await.unwrap().status(), 204);
    wait_gone(&store, dir.path(), &p1).await;
    // The TTL stream expires five seconds after its last use; the sweeper reclaims it.
    wait_gone(&store, dir.path(), &p2).await;
    assert_eq!(c.head(&brief).send().await.unwrap().status(), 404);
    let db = rusqlite::Connection::open(dir.path().join("wal.sqlite")).unwrap();
    let rows: i64 = db
        .query_row("SELECT (SELECT count(*) FROM streams) + (SELECT count(*) FROM entries) + (SELECT count(*) FROM segments)", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0, "no rows are left behind");
}
