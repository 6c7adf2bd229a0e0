//! Who may use a full-mode data directory, and what `--bootstrap-from-r2` may do to it.
//!
//! One process per `DS_ROOT` (and per database outside it): a second server, or a
//! bootstrap next to a running server, exits with code 3 naming the holder, and the
//! running server's data stays intact. A bootstrap never loses what the old database
//! holds: it refuses while entries are not uploaded, a failed listing changes nothing, and
//! `--bootstrap-discard-local` keeps the old database as a backup.

use std::path::Path;
use std::process::Output;

use crate::common;
use common::tier::{store_for, wait_uploaded, TINY};
use common::{client, run_full, Server};
use prisma_streams::objstore::Store;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts a start that was refused because `holder` holds the data directory.
fn assert_locked_out(out: &Output, holder: u32) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(3), "exit code; stderr: {err}");
    assert!(out.stdout.is_empty(), "no readiness line: {:?}", out.stdout);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains(&format!("pid {holder}")),
        "names the holder: {err}"
    );
}

/// Appends `n` JSON messages to `name` (created first) and returns the stream's body.
async fn write_json(c: &reqwest::Client, s: &Server, name: &str, n: usize) -> Vec<u8> {
    let u = s.stream_url(name);
    assert!(common::put(c, &u, "application/json", "[]")
        .await
        .status()
        .is_success());
    for i in 0..n {
        let r = common::post(c, &u, "application/json", format!(r#"{{"{name}":{i}}}"#)).await;
        assert_eq!(r.status(), 204);
    }
    read(c, s, name).await
}

async fn read(c: &reqwest::Client, s: &Server, name: &str) -> Vec<u8> {
    match common::read_pages(c, &s.stream_url(name)).await {
        Ok(p) => p.joined(),
        Err(r) => panic!("{name}: {}", r.status()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_root_exits_3_and_the_first_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    let s = Server::start(dir.path(), &[]);
    let before = write_json(&c, &s, "one", 3).await;

    let out = run_full(dir.path(), "memory", &[], &[]);
    assert_locked_out(&out, s.pid());

    assert_eq!(read(&c, &s, "one").await, before);
    let r = common::post(&c, &s.stream_url("one"), "application/json", "{}").await;
    assert_eq!(r.status(), 204, "the first server still accepts appends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_sharing_a_database_outside_their_roots_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db/shared.sqlite");
    let db = db.to_str().unwrap();
    let s = Server::start(&dir.path().join("a"), &[("DS_DB_PATH", db)]);
    let out = run_full(&dir.path().join("b"), "memory", &[("DS_DB_PATH", db)], &[]);
    assert_locked_out(&out, s.pid());
    assert!(stderr(&out).contains("shared.sqlite"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_next_to_a_running_server_exits_3_and_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    let mut s = Server::start_full(dir.path(), "local", &[], &[]);
    let before = write_json(&c, &s, "live", 5).await;

    let out = run_full(dir.path(), "local", &[], &["--bootstrap-from-r2"]);
    assert_locked_out(&out, s.pid());

    assert_eq!(read(&c, &s, "live").await, before);
    assert!(s.terminate().success());
    let s = Server::start_full(dir.path(), "local", &[], &[]);
    assert_eq!(
        read(&c, &s, "live").await,
        before,
        "the database survived the attempt"
    );
}

/// Large thresholds: nothing is sealed or uploaded while these tests run.
const NO_UPLOAD: &[(&str, &str)] = &[
    ("DS_SEGMENT_TARGET_ROWS", "1000000"),
    ("DS_SEGMENT_MAX_INTERVAL_MS", "3600000"),
];

const STREAMS: [(&str, usize); 2] = [("kept/a", 20), ("kept/b", 3)];

/// Writes two streams with the `local` store and `env`, and stops the server cleanly once
/// `uploaded` (if given) says the object store has them.
async fn node(
    root: &Path,
    env: &[(&str, &str)],
    uploaded: Option<&Store>,
) -> Vec<(&'static str, Vec<u8>)> {
    let c = client();
    let mut s = Server::start_full(root, "local", env, &[]);
    let mut out = Vec::new();
    for (name, n) in STREAMS {
        out.push((name, write_json(&c, &s, name, n).await));
    }
    if let Some(store) = uploaded {
        for (name, n) in STREAMS {
            wait_uploaded(store, name, n as u64).await;
        }
    }
    assert!(s.terminate().success());
    out
}

/// Starts `root` normally and checks every stream is there in full.
async fn assert_intact(root: &Path, env: &[(&str, &str)], expected: &[(&str, Vec<u8>)]) {
    let c = client();
    let s = Server::start_full(root, "local", env, &[]);
    for (name, body) in expected {
        assert_eq!(&read(&c, &s, name).await, body, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_whose_listing_fails_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let endpoint = format!("http://127.0.0.1:{closed_port}");
    let unreachable = [
        ("DURABLE_STREAMS_S3_ENDPOINT", endpoint.as_str()),
        ("DURABLE_STREAMS_S3_BUCKET", "gone"),
        ("DURABLE_STREAMS_S3_REGION", "us-east-1"),
        ("DURABLE_STREAMS_S3_ACCESS_KEY_ID", "k"),
        ("DURABLE_STREAMS_S3_SECRET_ACCESS_KEY", "s"),
        ("DS_OBJECTSTORE_RETRIES", "0"),
        ("DS_OBJECTSTORE_TIMEOUT_MS", "1000"),
    ];
    let assert_failed_listing = |out: &Output| {
        let err = stderr(out);
        assert_ne!(out.status.code(), Some(0), "{err}");
        assert!(out.stdout.is_empty(), "no readiness line");
        assert!(
            err.contains("failed, nothing was changed: cannot list"),
            "{err}"
        );
    };

    // A node whose data is all uploaded may be rebuilt; the listing fails.
    let root = dir.path().join("uploaded");
    let expected = node(&root, TINY, Some(&store_for("local", &root))).await;
    let out = run_full(&root, "s3", &unreachable, &["--bootstrap-from-r2"]);
    assert_intact(&root, TINY, &expected).await;
    assert_failed_listing(&out);
    assert!(!root.join("wal.sqlite.pre-bootstrap").exists());

    // A node with data not uploaded, told to discard it: the listing fails.
    let root = dir.path().join("not-uploaded");
    let expected = node(&root, NO_UPLOAD, None).await;
    let out = run_full(
        &root,
        "s3",
        &unreachable,
        &["--bootstrap-from-r2", "--bootstrap-discard-local"],
    );
    assert_intact(&root, NO_UPLOAD, &expected).await;
    assert_failed_listing(&out);
    assert!(!root.join("wal.sqlite.pre-bootstrap").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_refuses_unuploaded_entries_unless_told_and_keeps_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("node");
    let expected = node(&root, NO_UPLOAD, None).await;

    let out = run_full(&root, "local", NO_UPLOAD, &["--bootstrap-from-r2"]);
    assert_intact(&root, NO_UPLOAD, &expected).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("not uploaded"), "{err}");
    assert!(err.contains("--bootstrap-discard-local"), "{err}");

    // Discarding: the node comes up with what the object store has (at most the streams'
    // first manifests, no entries), and the old database is kept beside the new one.
    let c = client();
    let mut s = Server::start_full(
        &root,
        "local",
        NO_UPLOAD,
        &["--bootstrap-from-r2", "--bootstrap-discard-local"],
    );
    for (name, _) in &expected {
        match common::read_pages(&c, &s.stream_url(name)).await {
            Ok(p) => assert!(p.joined().is_empty(), "{name}: entries were never uploaded"),
            Err(r) => assert_eq!(r.status(), 404, "{name}"),
        }
    }
    assert!(s.terminate().success());
    let backup = root.join("wal.sqlite.pre-bootstrap");
    assert!(backup.exists());

    // The backup is a complete database: served from a fresh root, it has everything.
    let copy = dir.path().join("restored");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(&backup, copy.join("wal.sqlite")).unwrap();
    assert_intact(&copy, NO_UPLOAD, &expected).await;
}
