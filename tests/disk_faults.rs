//! Disk and database faults: a data directory that runs out of space (a small tmpfs,
//! mounted when the test runs as root; skipped with a message otherwise, a failure under
//! `PRISMA_STREAMS_TEST_STRICT`) and a database locked by another process. The server answers with a clear 5xx (plain appends to the append log go on while SQLite is locked), keeps serving reads,
//! resumes when the fault goes away, and loses nothing it acknowledged.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common;
use common::{client, header, post, put, Server};
use reqwest::StatusCode;

/// A size-limited tmpfs, unmounted on drop.
struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("mnt");
        std::fs::create_dir(&path).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs { path, _dir: dir })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Reads a binary stream from the start, page by page.
async fn read_bytes(c: &reqwest::Client, url: &str) -> Vec<u8> {
    match common::read_pages(c, url).await {
        Ok(p) => p.joined(),
        Err(r) => panic!("{url}: {}", r.status()),
    }
}

fn chunk(i: usize) -> Vec<u8> {
    (0..8192).map(|j| ((i * 131 + j * 7) % 251) as u8).collect()
}

fn integrity_ok(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(verdict, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_clearly_and_recovers_without_loss() {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !is_root {
        common::missing_dependency("mounting a small tmpfs needs root");
        return;
    }
    let fs = match Tmpfs::mount("24m") {
        Ok(fs) => fs,
        Err(e) => {
            common::missing_dependency(&e.to_string());
            return;
        }
    };
    // Space to give back later. Resuming takes room for one compaction of what the
    // memtable holds (up to 4 MiB of entries, about half as much again in the WAL with
    // 8 KiB entries on 4 KiB pages), since the WAL cannot be checkpointed into a database
    // file that cannot grow. With 3 MiB given back on an 8 MiB disk, whether writes
    // resumed depended on how much the memtable held when the disk filled.
    let ballast = fs.path.join("ballast");
    std::fs::write(&ballast, vec![0u8; 12 << 20]).unwrap();
    let data = fs.path.join("data");
    let mut s = Server::start(&data, &[]);
    let c = client();
    let url = s.stream_url("fill");
    assert_eq!(
        put(&c, &url, "application/octet-stream", Vec::new())
            .await
            .status(),
        StatusCode::CREATED
    );

    let mut acked = Vec::new();
    let mut refused = None;
    for i in 0..2000 {
        let r = post(&c, &url, "application/octet-stream", chunk(i)).await;
        if r.status() == StatusCode::NO_CONTENT {
            acked.extend_from_slice(&chunk(i));
        } else {
            refused = Some(r);
            break;
        }
    }
    let r = refused.expect("the disk never filled up");
    assert_eq!(r.status(), StatusCode::INSUFFICIENT_STORAGE);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "disk_full", "{e}");
    assert!(!acked.is_empty());

    // Still full: writes keep failing cleanly, reads and HEAD keep working.
    let r = post(&c, &url, "application/octet-stream", chunk(9999)).await;
    assert_eq!(r.status(), StatusCode::INSUFFICIENT_STORAGE);
    assert_eq!(read_bytes(&c, &url).await, acked);
    assert_eq!(c.head(&url).send().await.unwrap().status(), StatusCode::OK);

    // Space comes back: writes resume.
    std::fs::remove_file(&ballast).unwrap();
    let mut resumed = false;
    for _ in 0..100 {
        let r = post(&c, &url, "application/octet-stream", chunk(5000)).await;
        if r.status() == StatusCode::NO_CONTENT {
            acked.extend_from_slice(&chunk(5000));
            resumed = true;
            break;
        }
        assert_eq!(r.status(), StatusCode::INSUFFICIENT_STORAGE);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(resumed, "writes did not resume after space came back");
    assert_eq!(read_bytes(&c, &url).await, acked);

    // A restart finds exactly what was acknowledged, in a consistent database.
    assert!(s.terminate().success());
    integrity_ok(&data.join("wal.sqlite"));
    let s = Server::start(&data, &[]);
    assert_eq!(read_bytes(&c, &s.stream_url("fill")).await, acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_answers_503_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let c = client();
    let url = s.stream_url("locked");
    put(&c, &url, "text/plain", "before;").await;

    // Another process (this test) takes the write lock and holds it past the server's
    // busy timeout.
    let db = dir.path().join("wal.sqlite");
    let mut other = rusqlite::Connection::open(&db).unwrap();
    let tx = other
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    // A plain append needs no SQLite transaction: it is durable in the append log.
    let r = post(&c, &url, "text/plain", "during;").await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // Creating a stream does need one.
    let create = tokio::spawn({
        let c = c.clone();
        let url = s.stream_url("created");
        async move { put(&c, &url, "text/plain", "").await }
    });
    // Reads do not need the write lock.
    assert_eq!(common::read_text(&c, &url).await, "before;during;");
    let r = create.await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&r, "retry-after").as_deref(), Some("1"));
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "database_busy", "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("locked"),
        "{e}"
    );
    tx.rollback().unwrap();
    drop(other);

    let r = post(&c, &url, "text/plain", "after;").await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(common::read_text(&c, &url).await, "before;during;after;");
    let r = put(&c, &s.stream_url("created"), "text/plain", "").await;
    assert_eq!(r.status(), StatusCode::CREATED);
}
