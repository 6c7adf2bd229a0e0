//! Local mode lifecycle: start, status, single instance per name, stop, reset, kill -9.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use crate::common;
use common::{client, BIN};

/// Runs a local subcommand to completion.
fn local(root: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("local")
        .args(args)
        .env_clear()
        .env("DS_LOCAL_DATA_ROOT", root)
        .env("DS_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

struct Running {
    child: Child,
    ready: serde_json::Value,
}

impl Running {
    fn url(&self) -> String {
        self.ready["exports"]["http"]["url"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `local <args>` and waits for its readiness line.
fn spawn_ready(root: &Path, args: &[&str], env: &[(&str, &str)], stdin: Stdio) -> Running {
    let mut child = Command::new(BIN)
        .arg("local")
        .args(args)
        .env_clear()
        .env("DS_LOCAL_DATA_ROOT", root)
        .env("DS_LOG", "warn")
        .envs(env.iter().copied())
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(ready["type"], "ready");
    Running { child, ready }
}

/// Starts `local start --name N` on a free port.
fn start(root: &Path, name: &str) -> Running {
    spawn_ready(
        root,
        &["start", "--name", name, "--port", "0"],
        &[],
        Stdio::null(),
    )
}

/// `status --json` of one name; the exit code says whether it runs (0) or not (3), as
/// `pg_ctl status`.
fn status_json(root: &Path, name: &str) -> serde_json::Value {
    let out = local(root, &["status", "--name", name, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let want = if v["running"] == true { 0 } else { 3 };
    assert_eq!(out.status.code(), Some(want), "{v}");
    v
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn start_status_second_start_stop_reset() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let s = start(root, "app");
    let ex = &s.ready["exports"];
    assert_eq!(ex["name"], "app");
    let db = root.join("app").join("durable-streams.sqlite");
    assert_eq!(
        ex["sqlite"]["path"].as_str().unwrap(),
        db.canonicalize().unwrap().to_str().unwrap()
    );

    // server.json has the original's shape and points at the same server.
    let sj: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("app/server.json")).unwrap())
            .unwrap();
    assert_eq!(sj["version"], 1);
    assert_eq!(sj["http"]["url"], ex["http"]["url"]);
    assert_eq!(sj["pid"], ex["pid"]);
    assert!(sj["startedAt"].as_str().unwrap().ends_with('Z'));

    let st = status_json(root, "app");
    assert_eq!(st["running"], true);
    assert_eq!(st["healthy"], true);
    assert_eq!(st["pid"], ex["pid"]);

    // The HTTP surface is the full protocol.
    let c = client();
    let url = format!("{}/v1/stream/x", s.url());
    common::put(&c, &url, "text/plain", "hi").await;
    assert_eq!(common::read_text(&c, &url).await, "hi");

    let second = local(root, &["start", "--name", "app", "--port", "0"]);
    assert_eq!(second.status.code(), Some(3));
    assert!(
        stderr(&second).contains("is running"),
        "{}",
        stderr(&second)
    );
    assert_eq!(stderr(&second).trim().lines().count(), 1);

    let refused = local(root, &["reset", "--name", "app"]);
    assert_eq!(refused.status.code(), Some(3));
    assert!(db.exists(), "reset must not touch a running server's data");

    let stopped = local(root, &["stop", "--name", "app"]);
    assert!(stopped.status.success(), "{}", stderr(&stopped));
    let st = status_json(root, "app");
    assert_eq!(st["running"], false);
    assert_eq!(st["exists"], true);
    assert!(!root.join("app/server.json").exists());

    let reset = local(root, &["reset", "--name", "app"]);
    assert!(reset.status.success(), "{}", stderr(&reset));
    assert!(!root.join("app").exists());
    assert_eq!(status_json(root, "app")["exists"], false);
}

#[tokio::test]
async fn kill_9_then_immediate_restart_keeps_acknowledged_data() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let c = client();
    let mut s = start(root, "crashy");
    let url = format!("{}/v1/stream/log", s.url());
    common::put(&c, &url, "application/json", "[]").await;
    for i in 0..50 {
        let r = common::post(&c, &url, "application/json", format!("{{\"i\":{i}}}")).await;
        assert!(r.status().is_success());
    }
    s.child.kill().unwrap(); // SIGKILL: no cleanup runs, the lock dies with the process
    s.child.wait().unwrap();

    let s2 = start(root, "crashy");
    let url = format!("{}/v1/stream/log", s2.url());
    let body = common::read_text(&c, &url).await;
    let items: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(items.len(), 50);
    assert_eq!(items[49]["i"], 49);
}

#[tokio::test]
async fn two_names_run_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let a = start(dir.path(), "a");
    let b = start(dir.path(), "b");
    assert_ne!(a.url(), b.url());
    let c = client();
    common::put(
        &c,
        &format!("{}/v1/stream/only-a", a.url()),
        "text/plain",
        "x",
    )
    .await;
    let r = c
        .head(format!("{}/v1/stream/only-a", b.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "names have separate databases");
    let out = local(dir.path(), &["status", "--json"]);
    assert!(out.status.success(), "some server runs");
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert!(all.as_array().unwrap().iter().all(|s| s["running"] == true));
}

#[test]
fn bad_names_and_ports_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["..", ".", "a/b", "with space"] {
        let out = local(dir.path(), &["start", "--name", name]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        assert!(
            stderr(&out).contains("invalid server name"),
            "{}",
            stderr(&out)
        );
    }
    for port in ["99999", "-1", "http"] {
        let out = local(dir.path(), &["start", "--port", port]);
        assert_eq!(out.status.code(), Some(2), "{port}");
    }
    let out = local(dir.path(), &["start", "--hostname", "not-an-ip"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !dir.path().join("default").exists(),
        "nothing is created on bad input"
    );
}

#[test]
fn a_taken_port_exits_with_code_4() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = local(dir.path(), &["start", "--name", "p", "--port", &port]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    // The lock was released: a retry on a free port works at once.
    let s = start(dir.path(), "p");
    assert_eq!(s.ready["exports"]["name"], "p");
}

#[test]
fn daemon_exits_when_stdin_closes() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = spawn_ready(dir.path(), &["daemon", "--name", "d"], &[], Stdio::piped());
    let child = &mut d.child;
    drop(child.stdin.take());
    let status = child.wait().unwrap();
    assert!(status.success());
    let st = status_json(dir.path(), "d");
    assert_eq!(st["running"], false);
}

/// Sizes of the database files of a local server.
fn db_sizes(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("durable-streams.sqlite")
        })
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn an_idle_server_writes_nothing_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    // Background work (the expiry sweep) runs many times while we watch.
    let server = spawn_ready(
        dir.path(),
        &["start", "--name", "idle"],
        &[("DS_EXPIRY_SWEEP_MS", "20")],
        Stdio::null(),
    );
    let before = db_sizes(&dir.path().join("idle"));
    std::thread::sleep(std::time::Duration::from_millis(500));
    let after = db_sizes(&dir.path().join("idle"));
    drop(server);
    assert!(!before.is_empty());
    assert_eq!(before, after);
}

/// `DS_RETENTION_MAX_BYTES`: a local server trims each stream's oldest entries; reads from
/// the start begin at the oldest kept entry, an offset below it answers 410, and what was
/// kept survives a restart. A stream that a fork reads from keeps everything.
#[tokio::test]
async fn retention_trims_the_oldest_entries() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("DS_RETENTION_MAX_BYTES", "100"),
        ("DS_RETENTION_CHECK_MS", "50"),
    ];
    let mut s = common::Server::start_local(dir.path(), &env);
    let c = client();
    let url = s.stream_url("r");
    let shared = s.stream_url("shared");
    assert_eq!(common::put(&c, &url, "text/plain", "").await.status(), 201);
    assert_eq!(
        common::put(&c, &shared, "text/plain", "").await.status(),
        201
    );
    let fork = s.stream_url("fork");
    let r = c
        .put(&fork)
        .header("content-type", "text/plain")
        .header("stream-forked-from", "/v1/stream/shared")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let mut first_offset = None;
    for i in 0..30 {
        let body = format!("entry-{i:04}");
        let r = common::post(&c, &url, "text/plain", body.clone()).await;
        assert_eq!(r.status(), 204);
        first_offset.get_or_insert_with(|| {
            r.headers()["stream-next-offset"]
                .to_str()
                .unwrap()
                .to_string()
        });
        common::post(&c, &shared, "text/plain", body).await;
    }

    let kept: String = (20..30).map(|i| format!("entry-{i:04}")).collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let body = common::read_text(&c, &url).await;
        if body == kept {
            break;
        }
        assert!(body.ends_with(&kept), "only the oldest entries go: {body}");
        assert!(std::time::Instant::now() < deadline, "not trimmed: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let below = format!("{url}?offset={}", first_offset.unwrap());
    let r = c.get(&below).send().await.unwrap();
    assert_eq!(r.status(), 410);
    let err: serde_json::Value = r.json().await.unwrap();
    assert_eq!(err["error"]["code"], "retention");
    assert_eq!(
        common::read_text(&c, &shared).await.len(),
        300,
        "a fork reads it: kept whole"
    );

    s.terminate();
    let s = common::Server::start_local(dir.path(), &env);
    assert_eq!(common::read_text(&c, &s.stream_url("r")).await, kept);
}
