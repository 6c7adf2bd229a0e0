//! What one durable group commit costs on this machine, by storage layout: the question
//! of issue 17 whether a dedicated append log for the ingest path would beat the SQLite
//! WAL commit the writer makes today (ADR 0005, ADR 0013).
//!
//! ```sh
//! cargo bench --bench commit_cost                 # 3 s per case, in a temporary directory
//! cargo bench --bench commit_cost -- 10 /some/dir # 10 s per case, files under /some/dir
//! ```
//!
//! Each case makes commits of `k` appends (150-byte messages) back to back from one
//! thread, for k = 1, 16 and 64, and reports commits/s, appends/s, wall time per commit
//! and the thread's CPU time per commit (user + kernel, from
//! `/proc/thread-self/schedstat`):
//!
//! - `sqlite-own`: the writer's layout (ADR 0005): `k` rows into a rowid `ingest` table
//!   and `k` stream rows updated (k streams), WAL, `synchronous=FULL`, one transaction.
//! - `sqlite-shared`: the same with all `k` appends to one stream (one row updated).
//! - `log-grow`: the `k` records (length, CRC32C, bytes) written with one `write` at the
//!   end of a file, then `fdatasync` (the file grows, so the inode's size is synced too).
//! - `log-prealloc`: the same into a file zero-filled beforehand (overwrites: only data
//!   blocks are synced), wrapping around at its end.
//! - `fdatasync-only`: one 4 KiB overwrite and `fdatasync`, the floor of any durable
//!   commit here.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::print_stdout)] // a benchmark: real time, unwrap on failure, report on stdout

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};

const MESSAGE: usize = 150;
const PREALLOC: u64 = 256 * 1024 * 1024;

/// CPU time of this thread so far.
fn thread_cpu() -> Duration {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    let ns: u64 = s.split_whitespace().next().unwrap().parse().unwrap();
    Duration::from_nanos(ns)
}

struct Outcome {
    commits: u64,
    wall: Duration,
    cpu: Duration,
}

/// Runs `commit` back to back for `secs` seconds.
fn measure(secs: f64, mut commit: impl FnMut(u64)) -> Outcome {
    // Warm up (page cache, SQLite statement cache, file extents).
    for i in 0..50 {
        commit(i);
    }
    let (t0, c0) = (Instant::now(), thread_cpu());
    let mut n = 0u64;
    while t0.elapsed().as_secs_f64() < secs {
        commit(50 + n);
        n += 1;
    }
    Outcome {
        commits: n,
        wall: t0.elapsed(),
        cpu: thread_cpu() - c0,
    }
}

fn message(i: u64) -> Vec<u8> {
    let mut m = format!("{{\"n\":{i},\"pad\":\"").into_bytes();
    m.resize(MESSAGE - 2, b'x');
    m.extend_from_slice(b"\"}");
    m
}

fn sqlite(dir: &Path, k: u64, shared: bool, secs: f64) -> Outcome {
    let path = dir.join(format!("commit-{k}-{shared}.db"));
    let _ = std::fs::remove_file(&path);
    let mut c = Connection::open(&path).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "synchronous", "FULL").unwrap();
    c.execute_batch(
        "CREATE TABLE ingest (id INTEGER PRIMARY KEY, stream_id INTEGER NOT NULL, \
         pos INTEGER NOT NULL, data BLOB NOT NULL);
         CREATE TABLE streams (id INTEGER PRIMARY KEY, next_pos INTEGER NOT NULL, \
         bytes INTEGER NOT NULL);",
    )
    .unwrap();
    for s in 0..64 {
        c.execute("INSERT INTO streams VALUES (?1, 0, 0)", params![s])
            .unwrap();
    }
    let msg = message(0);
    let mut pos = 0i64;
    let out = measure(secs, |_| {
        let tx = c.transaction().unwrap();
        {
            let mut ins = tx
                .prepare_cached("INSERT INTO ingest (stream_id, pos, data) VALUES (?1, ?2, ?3)")
                .unwrap();
            let mut upd = tx
                .prepare_cached(
                    "UPDATE streams SET next_pos = ?2, bytes = bytes + ?3 WHERE id = ?1",
                )
                .unwrap();
            for j in 0..k {
                let stream = if shared { 0 } else { j as i64 };
                pos += 1;
                ins.execute(params![stream, pos, msg]).unwrap();
                if !shared {
                    upd.execute(params![stream, pos, MESSAGE as i64]).unwrap();
                }
            }
            if shared {
                upd.execute(params![0, pos, (MESSAGE as u64 * k) as i64])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    });
    drop(c);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    out
}

fn frame(batch: &mut Vec<u8>, msg: &[u8]) {
    batch.extend_from_slice(&(msg.len() as u32).to_le_bytes());
    batch.extend_from_slice(&crc32c::crc32c(msg).to_le_bytes());
    batch.extend_from_slice(msg);
}

fn log(dir: &Path, k: u64, prealloc: bool, secs: f64) -> Outcome {
    let path = dir.join(format!("commit-{k}-{prealloc}.log"));
    let mut f: File = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    if prealloc {
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..(PREALLOC >> 20) {
            f.write_all(&zeros).unwrap();
        }
        f.sync_all().unwrap();
        f.seek(SeekFrom::Start(0)).unwrap();
    }
    let msg = message(0);
    let mut batch = Vec::new();
    let mut at = 0u64;
    let out = measure(secs, |_| {
        batch.clear();
        for _ in 0..k {
            frame(&mut batch, &msg);
        }
        if prealloc && at + batch.len() as u64 > PREALLOC {
            f.seek(SeekFrom::Start(0)).unwrap();
            at = 0;
        }
        f.write_all(&batch).unwrap();
        at += batch.len() as u64;
        f.sync_data().unwrap();
    });
    drop(f);
    let _ = std::fs::remove_file(&path);
    out
}

fn fdatasync_only(dir: &Path, secs: f64) -> Outcome {
    let path = dir.join("commit-floor.bin");
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .unwrap();
    let block = vec![7u8; 4096];
    f.write_all(&block).unwrap();
    f.sync_all().unwrap();
    let out = measure(secs, |_| {
        f.seek(SeekFrom::Start(0)).unwrap();
        f.write_all(&block).unwrap();
        f.sync_data().unwrap();
    });
    drop(f);
    let _ = std::fs::remove_file(&path);
    out
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let secs: f64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let tmp = tempfile::tempdir_in(args.get(1).map_or("target", |d| d.as_str())).unwrap();
    let dir = tmp.path();
    println!(
        "| case | appends per commit | commits/s | appends/s | wall µs per commit | CPU µs per commit | CPU µs per append |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let row = |name: &str, k: u64, o: Outcome| {
        let per = |d: Duration| d.as_secs_f64() * 1e6 / o.commits as f64;
        let rate = o.commits as f64 / o.wall.as_secs_f64();
        println!(
            "| {name} | {k} | {:.0} | {:.0} | {:.0} | {:.1} | {:.2} |",
            rate,
            rate * k as f64,
            per(o.wall),
            per(o.cpu),
            per(o.cpu) / k as f64
        );
    };
    row("fdatasync-only", 1, fdatasync_only(dir, secs));
    for k in [1, 16, 64] {
        row("sqlite-own", k, sqlite(dir, k, false, secs));
        row("sqlite-shared", k, sqlite(dir, k, true, secs));
        row("log-grow", k, log(dir, k, false, secs));
        row("log-prealloc", k, log(dir, k, true, secs));
    }
}
