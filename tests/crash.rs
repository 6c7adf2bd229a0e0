//! Crash safety: `kill -9` the server while writers append concurrently, restart it on the
//! same data directory, and check that every acknowledged append is there, once, byte for
//! byte, in order. An append whose response never arrived may be present or absent, but
//! only as the last message of its writer.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{client, Server};

const WRITERS: usize = 8;
/// Acknowledged appends (all writers together) after which the server is killed.
const KILL_AFTER: usize = 300;
const CYCLES: usize = 5;

fn message(writer: usize, n: usize) -> String {
    // Varying sizes, escaped characters and non-ASCII text exercise byte-exactness.
    let pad = "é\\\"x".repeat((writer * 7 + n) % 23);
    format!(r#"{{"w":{writer},"n":{n},"pad":"{pad}"}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_appends_survive_kill_9() {
    crash_cycles(&[]).await;
}

/// The same while segments are cut, uploaded and their entries removed from SQLite all
/// the time, so crashes land in the middle of those steps too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_appends_survive_kill_9_while_segmenting_and_uploading() {
    crash_cycles(common::tier::TINY).await;
}

async fn crash_cycles(env: &[(&str, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    // acked[w] = messages of writer w acknowledged so far, across all cycles.
    let mut acked: Vec<Vec<String>> = vec![Vec::new(); WRITERS];
    let mut in_doubt: Vec<Option<String>> = vec![None; WRITERS];

    for cycle in 0..CYCLES {
        let mut server = Server::start_full(dir.path(), "local", env, &[]);
        let base = server.url.clone();
        if cycle == 0 {
            for w in 0..WRITERS {
                let r = c
                    .put(format!("{base}/v1/stream/crash-{w}"))
                    .header("content-type", "application/json")
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success());
            }
        }
        // Settle what the previous crash left in doubt: it is either the last stored
        // message or not stored at all.
        for w in 0..WRITERS {
            let stored = read_all(&c, &base, w).await;
            let mut expected = acked[w].clone();
            if let Some(d) = in_doubt[w].take() {
                if stored.len() == expected.len() + 1 {
                    expected.push(d);
                }
            }
            assert_eq!(stored, expected, "cycle {cycle}, writer {w}");
            acked[w] = stored;
        }

        let total = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for (w, done) in acked.iter().enumerate() {
            let c = c.clone();
            let base = base.clone();
            let total = total.clone();
            let start = done.len();
            tasks.push(tokio::spawn(async move {
                let mut ok = Vec::new();
                let mut pending = None;
                for n in start.. {
                    let m = message(w, n);
                    pending = Some(m.clone());
                    let r = c
                        .post(format!("{base}/v1/stream/crash-{w}"))
                        .header("content-type", "application/json")
                        .body(m.clone())
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().is_success() => {
                            ok.push(m);
                            pending = None;
                            total.fetch_add(1, Ordering::SeqCst);
                        }
                        _ => break, // the server is gone
                    }
                }
                (ok, pending)
            }));
        }
        while total.load(Ordering::SeqCst) < KILL_AFTER {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        server.kill9();
        for (w, t) in tasks.into_iter().enumerate() {
            let (ok, pending) = t.await.unwrap();
            acked[w].extend(ok);
            in_doubt[w] = pending;
        }
    }

    // Final check after the last crash.
    let server = Server::start_full(dir.path(), "local", env, &[]);
    for w in 0..WRITERS {
        let stored = read_all(&c, &server.url, w).await;
        let n = acked[w].len();
        assert!(
            stored.len() == n || stored.len() == n + 1,
            "writer {w}: {} stored, {n} acked",
            stored.len()
        );
        assert_eq!(stored[..n], acked[w][..], "writer {w}");
        if stored.len() == n + 1 {
            assert_eq!(Some(&stored[n]), in_doubt[w].as_ref());
        }
    }
}

/// Reads a writer's whole stream page by page and returns its messages' exact text.
async fn read_all(c: &reqwest::Client, base: &str, w: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut offset = "-1".to_string();
    loop {
        let r = c
            .get(format!("{base}/v1/stream/crash-{w}?offset={offset}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let done = common::header(&r, "stream-up-to-date").is_some();
        offset = common::header(&r, "stream-next-offset").unwrap();
        let body = r.bytes().await.unwrap();
        let items: Vec<Box<serde_json::value::RawValue>> = serde_json::from_slice(&body).unwrap();
        out.extend(items.into_iter().map(|m| m.get().to_string()));
        if done {
            return out;
        }
    }
}
