//! The crash harness: concurrent writers of every kind (plain text, binary, JSON, an
//! idempotent producer, two writers sharing a stream, and one creating a stream per
//! message) run against a full-mode server with tiny segment thresholds, so segments are
//! cut, uploaded and their manifests published all the time. The server is `kill -9`ed
//! after a random delay, restarted, and an oracle checks:
//!
//! - every acknowledged append is stored exactly once, byte for byte, in order;
//! - an append whose response never arrived is either stored whole (as the writer's last
//!   message) or not at all;
//! - a stream's tail offset never goes backwards across restarts;
//! - a producer's sequence state survives: resending its in-doubt message is deduplicated
//!   if it was stored and appended once if it was not.
//!
//! `CRASH_CYCLES` (default 50) sets the number of kills and `CRASH_SEED` the random seed
//! (printed, so a failure can be replayed); a soak is `CRASH_CYCLES=1000 cargo test
//! --release --test integration crash::`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common;
use common::{header, Server};
use rand::{Rng as _, SeedableRng as _};
use reqwest::StatusCode;

/// Small segments and uploads every few milliseconds; reads in large pages so checking is
/// quick.
const ENV: &[(&str, &str)] = &[
    ("DS_SEGMENT_TARGET_ROWS", "16"),
    ("DS_BLOCK_MAX_BYTES", "256"),
    ("DS_SEGMENT_CHECK_MS", "5"),
    ("DS_UPLOAD_CHECK_MS", "5"),
    ("DS_SEGMENT_MAX_INTERVAL_MS", "20"),
    ("DS_READ_MAX_RECORDS", "5000"),
];

/// How long one request of the harness may take (see where the client is built).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Binary,
    Json,
    Producer,
    Shared,
    Creates,
}

struct Writer {
    id: usize,
    kind: Kind,
    /// Messages acknowledged so far (raw bytes as sent).
    acked: Vec<Vec<u8>>,
    /// The message whose response never arrived, if any.
    in_doubt: Option<Vec<u8>>,
    /// Highest `Stream-Next-Offset` acknowledged (own streams).
    last_offset: Option<String>,
}

const WRITERS: &[Kind] = &[
    Kind::Text,
    Kind::Text,
    Kind::Binary,
    Kind::Binary,
    Kind::Json,
    Kind::Json,
    Kind::Producer,
    Kind::Shared,
    Kind::Shared,
    Kind::Creates,
];

fn stream_of(w: usize, kind: Kind) -> String {
    match kind {
        Kind::Shared => "crash/shared".into(),
        Kind::Creates => format!("crash/many-{w}"), // a prefix; see `create_name`
        _ => format!("crash/w{w}"),
    }
}

fn create_name(w: usize, n: usize) -> String {
    format!("crash/many-{w}-{n}")
}

fn content_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Text | Kind::Creates => "text/plain",
        Kind::Binary => "application/octet-stream",
        Kind::Json | Kind::Producer | Kind::Shared => "application/json",
    }
}

/// The n-th message of writer w: varying sizes, escapes, non-ASCII text, every byte value.
fn message(w: usize, kind: Kind, n: usize) -> Vec<u8> {
    match kind {
        Kind::Text | Kind::Creates => {
            format!("<{w}:{n}:{}>\n", "é~".repeat((w * 7 + n) % 19)).into_bytes()
        }
        Kind::Binary => {
            let len = (w * 13 + n * 7) % 300 + 1;
            let mut m = Vec::with_capacity(len + 2);
            m.extend_from_slice(&(len as u16).to_be_bytes());
            m.extend((0..len).map(|i| ((i * 31 + n * 17 + w) % 256) as u8));
            m
        }
        Kind::Json | Kind::Producer | Kind::Shared => {
            let pad = "é\\\"x".repeat((w * 5 + n) % 17);
            format!(r#"{{"w":{w},"n":{n},"pad":"{pad}"}}"#).into_bytes()
        }
    }
}

/// Splits a stream's bytes back into messages.
fn split(kind: Kind, body: &[u8]) -> Vec<Vec<u8>> {
    match kind {
        Kind::Text | Kind::Creates => body
            .split_inclusive(|b| *b == b'\n')
            .map(<[u8]>::to_vec)
            .collect(),
        Kind::Binary => {
            let mut out = Vec::new();
            let mut rest = body;
            while !rest.is_empty() {
                assert!(rest.len() >= 2, "torn binary message");
                let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
                assert!(rest.len() >= 2 + len, "torn binary message");
                out.push(rest[..2 + len].to_vec());
                rest = &rest[2 + len..];
            }
            out
        }
        Kind::Json | Kind::Producer | Kind::Shared => {
            let items: Vec<Box<serde_json::value::RawValue>> =
                serde_json::from_slice(body).expect("a JSON stream reads as an array");
            items
                .into_iter()
                .map(|m| m.get().as_bytes().to_vec())
                .collect()
        }
    }
}

/// Reads a whole stream: (messages, tail offset).
async fn read_stream(c: &reqwest::Client, url: &str, kind: Kind) -> (Vec<Vec<u8>>, String) {
    let pages = match common::read_pages(c, url).await {
        Ok(p) => p,
        Err(r) => panic!("{url}: {}", r.status()),
    };
    let messages = pages.bodies.iter().flat_map(|b| split(kind, b)).collect();
    (messages, pages.next)
}

/// Checks a writer's stored messages against the oracle and settles its in-doubt message.
fn settle(w: &mut Writer, stored: Vec<Vec<u8>>, cycle: usize) {
    let n = w.acked.len();
    let ctx = format!("cycle {cycle}, writer {} ({:?})", w.id, w.kind);
    match stored.len() {
        s if s == n => {}
        s if s == n + 1 && w.in_doubt.is_some() => {
            assert_eq!(
                Some(&stored[n]),
                w.in_doubt.as_ref(),
                "{ctx}: torn in-doubt message"
            );
        }
        s => panic!("{ctx}: {s} messages stored, {n} acknowledged"),
    }
    for (i, (a, b)) in w.acked.iter().zip(&stored).enumerate() {
        assert!(a == b, "{ctx}: message {i} differs");
    }
    w.acked = stored;
    w.in_doubt = None;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_kill_9_at_random_points() {
    let cycles: usize = std::env::var("CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!("crash harness: {cycles} cycles, CRASH_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let dir = tempfile::tempdir().unwrap();
    // A request that never ends would hang the whole run (one run did, once, with no
    // server left alive): past this it fails instead, as a writer's lost connection (its
    // message is then in doubt) or as an error of the check that sent it.
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("client");
    let mut writers: Vec<Writer> = WRITERS
        .iter()
        .enumerate()
        .map(|(id, &kind)| Writer {
            id,
            kind,
            acked: Vec::new(),
            in_doubt: None,
            last_offset: None,
        })
        .collect();
    // Streams created by the `Creates` writer: name -> body (acknowledged or in doubt).
    let mut created: HashMap<String, Vec<u8>> = HashMap::new();
    let mut created_in_doubt: Option<(String, Vec<u8>)> = None;
    let mut total_acked = 0usize;

    for cycle in 0..=cycles {
        let mut server = Server::start_full(dir.path(), "local", ENV, &[]);
        let base = server.url.clone();
        if cycle == 0 {
            let mut made = std::collections::HashSet::new();
            for w in &writers {
                let name = stream_of(w.id, w.kind);
                if w.kind != Kind::Creates && made.insert(name.clone()) {
                    let r = common::put(
                        &c,
                        &format!("{base}/v1/stream/{name}"),
                        content_type(w.kind),
                        Vec::new(),
                    )
                    .await;
                    assert_eq!(r.status(), StatusCode::CREATED);
                }
            }
        }

        // Settle the previous crash.
        let mut shared_checked = false;
        for i in 0..writers.len() {
            let kind = writers[i].kind;
            match kind {
                Kind::Creates => {
                    if let Some((name, body)) = created_in_doubt.take() {
                        let r = c
                            .get(format!("{base}/v1/stream/{name}?offset=-1"))
                            .send()
                            .await
                            .unwrap();
                        match r.status() {
                            StatusCode::NOT_FOUND => {}
                            StatusCode::OK => {
                                assert_eq!(
                                    r.bytes().await.unwrap(),
                                    body,
                                    "cycle {cycle}: torn create {name}"
                                );
                                created.insert(name, body);
                            }
                            s => panic!("cycle {cycle}: in-doubt create {name}: {s}"),
                        }
                    }
                }
                Kind::Shared => {
                    if shared_checked {
                        continue;
                    }
                    shared_checked = true;
                    let url = format!("{base}/v1/stream/{}", stream_of(i, kind));
                    let (all, _) = read_stream(&c, &url, kind).await;
                    // Each sharing writer's messages, in its own order.
                    let sharers: Vec<usize> = (0..writers.len())
                        .filter(|&j| writers[j].kind == Kind::Shared)
                        .collect();
                    for j in sharers {
                        let tag = format!(r#"{{"w":{j},"#);
                        let mine: Vec<Vec<u8>> = all
                            .iter()
                            .filter(|m| m.starts_with(tag.as_bytes()))
                            .cloned()
                            .collect();
                        settle(&mut writers[j], mine, cycle);
                    }
                }
                _ => {
                    let url = format!("{base}/v1/stream/{}", stream_of(i, kind));
                    let (stored, tail) = read_stream(&c, &url, kind).await;
                    if let Some(last) = &writers[i].last_offset {
                        assert!(
                            &tail >= last,
                            "cycle {cycle}, writer {i}: tail {tail} went back before {last}"
                        );
                    }
                    let producer_pending = if kind == Kind::Producer {
                        writers[i].in_doubt.clone()
                    } else {
                        None
                    };
                    settle(&mut writers[i], stored, cycle);
                    // Resend the producer's in-doubt message with its sequence number: a
                    // duplicate if it was stored, appended now if it was not.
                    if let Some(m) = producer_pending {
                        let was_stored = writers[i].acked.last() == Some(&m);
                        let seq = if was_stored {
                            writers[i].acked.len() - 1
                        } else {
                            writers[i].acked.len()
                        };
                        let r = c
                            .post(&url)
                            .header("content-type", "application/json")
                            .header("producer-id", "crash-producer")
                            .header("producer-epoch", "0")
                            .header("producer-seq", seq.to_string())
                            .body(m.clone())
                            .send()
                            .await
                            .unwrap();
                        if was_stored {
                            assert_eq!(
                                r.status(),
                                StatusCode::NO_CONTENT,
                                "cycle {cycle}: duplicate not recognised"
                            );
                        } else {
                            assert_eq!(
                                r.status(),
                                StatusCode::OK,
                                "cycle {cycle}: producer state lost"
                            );
                            writers[i].acked.push(m);
                        }
                        let (stored, _) = read_stream(&c, &url, kind).await;
                        assert_eq!(stored, writers[i].acked, "cycle {cycle}: producer retry");
                    }
                }
            }
        }
        if cycle == cycles {
            // Final pass: every acknowledged create is there, whole.
            for (name, body) in &created {
                let r = c
                    .get(format!("{base}/v1/stream/{name}?offset=-1"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::OK, "{name}");
                assert_eq!(&r.bytes().await.unwrap(), body, "{name}");
            }
            break;
        }

        // Write until killed.
        let alive = Arc::new(AtomicBool::new(true));
        let mut tasks = Vec::new();
        for w in &writers {
            let (c, base, alive) = (c.clone(), base.clone(), alive.clone());
            let (id, kind, start) = (w.id, w.kind, w.acked.len());
            // Stream names of the `Creates` writer are unique per cycle.
            let start = if kind == Kind::Creates {
                cycle * 100_000
            } else {
                start
            };
            tasks.push(tokio::spawn(async move {
                let mut ok: Vec<(Vec<u8>, Option<String>)> = Vec::new();
                let mut pending = None;
                for n in start.. {
                    if !alive.load(Ordering::Relaxed) {
                        break;
                    }
                    let m = message(id, kind, n);
                    pending = Some(m.clone());
                    let req = match kind {
                        Kind::Creates => c
                            .put(format!("{base}/v1/stream/{}", create_name(id, n)))
                            .header("content-type", "text/plain"),
                        _ => c
                            .post(format!("{base}/v1/stream/{}", stream_of(id, kind)))
                            .header("content-type", content_type(kind)),
                    };
                    let req = if kind == Kind::Producer {
                        req.header("producer-id", "crash-producer")
                            .header("producer-epoch", "0")
                            .header("producer-seq", n.to_string())
                    } else {
                        req
                    };
                    match req.body(m.clone()).send().await {
                        Ok(r) if r.status().is_success() => {
                            let off = header(&r, "stream-next-offset");
                            ok.push((m, off));
                            pending = None;
                        }
                        Ok(r) => panic!("writer {id}: unexpected {}", r.status()),
                        Err(_) => break, // the server is gone
                    }
                }
                (ok, pending)
            }));
        }
        let delay = rng.random_range(20..250);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        server.kill9();
        alive.store(false, Ordering::Relaxed);
        for (i, t) in tasks.into_iter().enumerate() {
            let (ok, pending) = t.await.unwrap();
            total_acked += ok.len();
            let w = &mut writers[i];
            if w.kind == Kind::Creates {
                let start = cycle * 100_000;
                let n_ok = ok.len();
                for (k, (m, _)) in ok.into_iter().enumerate() {
                    created.insert(create_name(w.id, start + k), m);
                }
                created_in_doubt = pending.map(|m| (create_name(w.id, start + n_ok), m));
                continue;
            }
            for (m, off) in ok {
                if let (Some(off), Kind::Text | Kind::Binary | Kind::Json | Kind::Producer) =
                    (&off, w.kind)
                {
                    if let Some(prev) = &w.last_offset {
                        assert!(
                            off > prev,
                            "writer {i}: acknowledged offsets went backwards"
                        );
                    }
                    w.last_offset = Some(off.clone());
                }
                w.acked.push(m);
            }
            w.in_doubt = pending;
        }
    }
    eprintln!(
        "crash harness: {cycles} kills survived, {total_acked} acknowledged writes checked, {} streams created",
        created.len()
    );
}
