//! Who may use a full-mode data directory.
//!
//! One process per `DS_ROOT` (and per database outside it): a second server, or a
//! bootstrap next to a running server, exits with code 3 naming the holder, and the
//! running server's data stays intact.

mod common;

use std::process::Output;

use common::{client, run_full, Server};

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
