//! Supervision and the costs readers may not impose on writers: a background task that
//! panics turns `/health` to 503 naming it (and the server keeps serving what it can),
//! and reads of TTL streams, however many, never make appends fail with 429.

use std::time::Duration;

use crate::common;
use common::faulty::{Faulty, Policy};
use common::inproc::{self, InProcess};
use common::{client, post, put, Server};
use reqwest::StatusCode;

async fn health(c: &reqwest::Client, base: &str) -> (StatusCode, serde_json::Value) {
    let r = c.get(format!("{base}/health")).send().await.unwrap();
    (r.status(), r.json().await.unwrap())
}

#[tokio::test]
async fn a_panicking_background_task_turns_health_to_503() {
    let dir = tempfile::tempdir().unwrap();
    let store = Faulty::new(inproc::objects(dir.path()), Policy::HEALTHY, 1);
    let env: Vec<(&str, String)> = common::tier::TINY
        .iter()
        .map(|(k, v)| (*k, v.to_string()))
        .collect();
    let srv = InProcess::start(dir.path(), store.clone(), false, &env).await;
    let c = client();
    let (status, body) = health(&c, &srv.url).await;
    assert_eq!((status, body["ok"].clone()), (StatusCode::OK, true.into()));

    // The object-store client panics on the first segment upload: the uploader dies.
    store.panic_on_put();
    let s = srv.stream("s");
    put(&c, &s, "text/plain", "").await;
    for i in 0..6 {
        assert_eq!(
            post(&c, &s, "text/plain", format!("{i};")).await.status(),
            204
        );
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let body = loop {
        let (status, body) = health(&c, &srv.url).await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            break body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "health stayed {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(body["ok"], false);
    let failed = body["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{body}");
    assert_eq!(failed[0]["component"], "uploader");
    assert_eq!(failed[0]["fatal"], false);
    assert!(failed[0]["since"].is_string());
    assert!(
        !body.to_string().contains("injected"),
        "no cause in the body"
    );
    // Appends and reads do not depend on the uploader.
    assert_eq!(post(&c, &s, "text/plain", "after;").await.status(), 204);
    let text = common::read_pages(&c, &s).await.unwrap().joined();
    assert_eq!(text, b"0;1;2;3;4;5;after;");
    srv.stop().await;
}

/// Every read of a TTL stream renews it. Renewals are coalesced outside the ingest
/// queue, so a flood of reads next to a queue of two requests never refuses an append.
#[tokio::test]
async fn reads_of_ttl_streams_never_make_appends_fail() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), &[("DS_INGEST_MAX_QUEUE_REQS", "2")]);
    let c = client();
    let s = srv.stream_url("ttl");
    let r = c
        .put(&s)
        .header("content-type", "text/plain")
        .header("stream-ttl", "3600")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..32 {
        let (c, s, stop) = (c.clone(), s.clone(), stop.clone());
        readers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = c.get(format!("{s}?offset=-1")).send().await.unwrap();
                assert_eq!(r.status(), 200);
                n += 1;
            }
            n
        }));
    }
    for i in 0..300 {
        let r = post(&c, &s, "text/plain", format!("{i},")).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "append {i}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut reads = 0;
    for r in readers {
        reads += r.await.unwrap();
    }
    assert!(reads > 300, "the reads ran beside the appends ({reads})");
}
