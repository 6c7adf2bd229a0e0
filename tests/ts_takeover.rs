//! Local data directories written by the original TypeScript server are taken over in
//! place: 0.1.11 (schema 24), 0.1.2 (schema 11) and 0.1.2's directory after 0.1.11 tried
//! to open it (stamped 24 without the columns of 14-24). The directories are written by
//! the published packages under Bun (tests/ts-db/make-fixtures.mjs, cached under
//! target/tmp); each carries what the original answered to a list of read-only requests
//! (tests/ts-db/scenario.mjs), which this server must answer the same after the takeover.
//! Also: unreadable databases fail with `@prisma/dev`'s reset phrases, and the original's
//! `proper-lockfile` lock is honoured and held.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use crate::common;
use base64::Engine as _;
use common::{client, missing_dependency, Server, BIN};
use serde_json::Value;

/// The fixture root, generated once per test run (and reused while complete); `None`
/// when it cannot be made here (no Node.js or no registry access).
fn fixtures() -> Option<PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ts-db-fixtures");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ts-db/make-fixtures.mjs");
        let status = Command::new("node")
            .arg(&script)
            .arg(&out)
            .stdin(Stdio::null())
            .status();
        match status {
            Ok(s) if s.success() => Some(out),
            Ok(s) if s.code() == Some(3) => None,
            Ok(s) => panic!("{} failed: {s}", script.display()),
            Err(_) => None,
        }
    })
    .clone()
}

/// A copy of fixture `which` as the data root of a local server named `test`.
fn copy_fixture(which: &str) -> Option<(tempfile::TempDir, Value)> {
    let Some(root) = fixtures() else {
        missing_dependency("fixtures of the TypeScript server (Node.js, npm registry)");
        return None;
    };
    let src = root.join(which);
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("test");
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(src.join("fx")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    let answers: Value =
        serde_json::from_slice(&std::fs::read(src.join("answers.json")).unwrap()).unwrap();
    Some((tmp, answers))
}

fn db(root: &Path) -> PathBuf {
    root.join("test/durable-streams.sqlite")
}

fn backups(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root.join("test"))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter(|n| n.ends_with(".bak"))
        .collect();
    v.sort();
    v
}

/// Sends each recorded request and compares the answer with the original's.
async fn same_answers(url: &str, answers: &Value) {
    let c = client();
    let legacy = answers["flavor"] == "legacy";
    for check in answers["checks"].as_array().unwrap() {
        let method = check["method"].as_str().unwrap();
        let path = check["path"].as_str().unwrap();
        let what = format!("{method} {path}");
        let mut req = c.request(method.parse().unwrap(), format!("{url}{path}"));
        for (k, v) in check["headers"].as_object().unwrap() {
            req = req.header(k.as_str(), v.as_str().unwrap());
        }
        if let Some(b) = check["body"].as_str() {
            req = req.body(b.to_owned());
        }
        let res = req.send().await.unwrap();
        assert_eq!(
            res.status().as_u16() as u64,
            check["status"].as_u64().unwrap(),
            "{what}"
        );
        let want = check["answer_headers"].as_object().unwrap();
        for h in [
            "stream-next-offset",
            "stream-closed",
            "stream-up-to-date",
            "producer-epoch",
            "producer-seq",
        ] {
            assert_eq!(
                common::header(&res, h).as_deref(),
                want.get(h).and_then(Value::as_str),
                "{what}: {h}"
            );
        }
        // The original reports the TTL left, we the TTL: both must have one, or neither.
        assert_eq!(
            common::header(&res, "stream-ttl").is_some(),
            want.contains_key("stream-ttl"),
            "{what}: stream-ttl"
        );
        let ok = res.status().is_success();
        if ok && !path.contains("/_") {
            assert_eq!(
                common::header(&res, "content-type").as_deref(),
                want.get("content-type").and_then(Value::as_str),
                "{what}: content-type"
            );
        }
        let got = res.bytes().await.unwrap();
        let expected = base64::engine::general_purpose::STANDARD
            .decode(check["answer_b64"].as_str().unwrap())
            .unwrap();
        if path.ends_with("/_schema") || path.ends_with("/_profile") {
            let got: Value = serde_json::from_slice(&got).unwrap();
            let mut expected: Value = serde_json::from_slice(&expected).unwrap();
            if legacy {
                // 0.1.2 kept the touch configuration in the registry; it is the profile now.
                expected.as_object_mut().unwrap().remove("interpreter");
            }
            assert_eq!(got, expected, "{what}");
        } else if ok {
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&expected),
                "{what}"
            );
        }
    }
    if legacy {
        // The legacy touch configuration became the state-protocol profile.
        let p: Value = common::get_json(&c, &format!("{url}/v1/stream/prisma-wal/_profile")).await;
        assert_eq!(p["profile"]["kind"], "state-protocol", "{p}");
        assert_eq!(p["profile"]["touch"]["enabled"], true, "{p}");
        assert_eq!(p["profile"]["touch"]["onMissingBefore"], "coarse", "{p}");
    }
    // The original's internal streams are not carried over; deleted ones stay deleted.
    for internal in ["__stream_metrics__", "live.metrics", "gone"] {
        let r = c
            .head(format!("{url}/v1/stream/{internal}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{internal}");
    }
}

async fn takes_over(which: &str, version: u32) {
    let Some((tmp, answers)) = copy_fixture(which) else {
        return;
    };
    let root = tmp.path();
    let mut s = Server::start_local(root, &[]);
    same_answers(&s.url, &answers).await;
    let backup = format!("durable-streams.sqlite.ts-v{version}.bak");
    assert_eq!(backups(root), std::slice::from_ref(&backup));
    // The backup is the original's file, readable on its own.
    let b = rusqlite::Connection::open(root.join("test").join(&backup)).unwrap();
    let v: u32 = b
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, version);
    drop(b);
    // Appends continue after the carried-over entries.
    let r = client()
        .post(s.stream_url("orders"))
        .header("content-type", "application/json")
        .body(r#"{"id":5}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        common::header(&r, "stream-next-offset").as_deref(),
        Some("0000000000000000002G000000")
    );
    assert!(s.terminate().success());

    // The second start opens our database as it is.
    let mut s = Server::start_local(root, &[]);
    assert_eq!(backups(root), [backup]);
    let r = client()
        .get(format!("{}?offset=-1", s.stream_url("orders")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        common::header(&r, "stream-next-offset").as_deref(),
        Some("0000000000000000002G000000")
    );
    assert!(r.text().await.unwrap().ends_with(r#"{"id":5}]"#));
    assert!(s.terminate().success());
}

#[tokio::test]
async fn a_0_1_11_directory_is_taken_over() {
    takes_over("v24", 24).await;
}

#[tokio::test]
async fn a_0_1_2_directory_is_taken_over() {
    takes_over("v11", 11).await;
}

#[tokio::test]
async fn a_half_migrated_directory_is_taken_over() {
    let Some(root) = fixtures() else {
        missing_dependency("fixtures of the TypeScript server (Node.js, npm registry)");
        return;
    };
    // What the original did with it (the reason @prisma/dev used to reset such data).
    let open: Value =
        serde_json::from_slice(&std::fs::read(root.join("half24/open.json")).unwrap()).unwrap();
    assert!(open["error"]
        .as_str()
        .unwrap()
        .contains("no such column: logical_size_bytes"));
    takes_over("half24", 24).await;
}

/// Starts a local server that is expected to refuse; its exit code and stderr.
fn refused_start(root: &Path) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["local", "start", "--name", "test", "--port", "0"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DS_LOCAL_DATA_ROOT", root)
        .env("DS_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unreadable_databases_fail_with_a_reset_phrase() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("test")).unwrap();
    std::fs::write(db(tmp.path()), vec![7u8; 4096]).unwrap();
    let (code, err) = refused_start(tmp.path());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("file is not a database"), "{err}");
    assert_eq!(std::fs::read(db(tmp.path())).unwrap(), vec![7u8; 4096]);

    let Some((tmp, _)) = copy_fixture("v24") else {
        return;
    };
    let c = rusqlite::Connection::open(db(tmp.path())).unwrap();
    c.execute("UPDATE schema_version SET version = 25", [])
        .unwrap();
    drop(c);
    let (code, err) = refused_start(tmp.path());
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("unexpected schema version: 25 (expected 11..24)"),
        "{err}"
    );
    assert!(backups(tmp.path()).is_empty());
}

fn set_mtime(dir: &Path, ago: Duration) {
    let f = std::fs::File::open(dir).unwrap();
    f.set_modified(SystemTime::now() - ago).unwrap();
}

#[tokio::test]
async fn the_original_lock_directory_is_honoured_and_held() {
    let tmp = tempfile::tempdir().unwrap();
    let lock_dir = tmp.path().join("test/server.lock.lock");
    std::fs::create_dir_all(&lock_dir).unwrap();
    // Fresh: another server (the original) runs on this name.
    let (code, err) = refused_start(tmp.path());
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("is running"), "{err}");
    assert!(!db(tmp.path()).exists());
    // Stale (its holder died 60 s ago): taken over, kept fresh, removed on exit.
    set_mtime(&lock_dir, Duration::from_secs(60));
    let mut s = Server::start_local(tmp.path(), &[]);
    let age = SystemTime::now()
        .duration_since(std::fs::metadata(&lock_dir).unwrap().modified().unwrap())
        .unwrap_or_default();
    assert!(age < Duration::from_secs(30), "{age:?}");
    // `status` and `reset` see the name in use.
    let status = Command::new(BIN)
        .args(["local", "status", "--name", "test", "--json"])
        .env("DS_LOCAL_DATA_ROOT", tmp.path())
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["running"], true, "{v}");
    assert!(s.terminate().success());
    assert!(!lock_dir.exists());

    // While the original holds it, `reset` refuses and deletes nothing.
    std::fs::create_dir_all(&lock_dir).unwrap();
    let reset = Command::new(BIN)
        .args(["local", "reset", "--name", "test"])
        .env("DS_LOCAL_DATA_ROOT", tmp.path())
        .output()
        .unwrap();
    assert_eq!(reset.status.code(), Some(3));
    assert!(db(tmp.path()).exists());
    // ... and `stop` does not signal a process it does not own.
    let stop = Command::new(BIN)
        .args(["local", "stop", "--name", "test"])
        .env("DS_LOCAL_DATA_ROOT", tmp.path())
        .output()
        .unwrap();
    assert_eq!(stop.status.code(), Some(1));
    let err = String::from_utf8_lossy(&stop.stderr);
    assert!(err.contains("served by another server"), "{err}");
    let status = Command::new(BIN)
        .args(["local", "status", "--name", "test", "--json"])
        .env("DS_LOCAL_DATA_ROOT", tmp.path())
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["running"], true, "{v}");
}

/// With the fixtures' packages at hand: the original refuses a directory our server
/// holds.
#[tokio::test]
async fn the_original_refuses_a_directory_we_hold() {
    let Some(root) = fixtures() else {
        missing_dependency("fixtures of the TypeScript server (Node.js, npm registry)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Server::start_local(tmp.path(), &[]);
    let pkg = root.join("pkg-0.1.11");
    let result = tmp.path().join("open.json");
    let status = Command::new(pkg.join("node_modules/.bin/bun"))
        .args(["scenario.mjs", "open", "test"])
        .arg(&result)
        .current_dir(&pkg)
        .env("DS_LOCAL_DATA_ROOT", tmp.path())
        .status()
        .unwrap();
    assert!(status.success());
    let v: Value = serde_json::from_slice(&std::fs::read(&result).unwrap()).unwrap();
    assert_eq!(v["ok"], false, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("already being held"),
        "{v}"
    );
    assert!(s.terminate().success());
}
