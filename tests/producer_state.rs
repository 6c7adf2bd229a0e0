//! Idempotent-producer state is collected after `DS_PRODUCER_STATE_TTL_MS` without an
//! accepted append: the producer is then unknown, so it must start again at sequence 0,
//! and an old retry is no longer recognised as a duplicate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common;
use common::{client, header, Server};
use prisma_streams::clock::ManualClock;
use prisma_streams::config::Limits;
use prisma_streams::engine::Engine;
use prisma_streams::service::{AppendParams, CreateParams, ServiceError, StreamService};
use reqwest::StatusCode;

fn service(dir: &std::path::Path, clock: Arc<ManualClock>, ttl_ms: u64) -> StreamService {
    let limits = Limits {
        producer_state_ttl_ms: ttl_ms,
        ..Limits::default()
    };
    let engine = Engine::open(
        dir.join("t.sqlite"),
        &limits,
        None,
        clock.clone(),
        prisma_streams::health::Health::new(clock),
    )
    .unwrap();
    StreamService::new(engine, limits)
}

fn as_producer(epoch: u64, seq: u64) -> AppendParams {
    AppendParams {
        content_type: Some("text/plain".into()),
        producer_id: Some("w".into()),
        producer_epoch: Some(epoch.to_string()),
        producer_seq: Some(seq.to_string()),
        ..Default::default()
    }
}

/// With a manual clock: exactly when the state goes, and what the producer sees then.
#[tokio::test]
async fn producer_state_is_forgotten_after_the_ttl_without_an_accepted_append() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_800_000_000_000);
    let svc = service(dir.path(), clock.clone(), 10_000);
    let create = CreateParams {
        content_type: Some("text/plain".into()),
        ..Default::default()
    };
    svc.create("s", create, Vec::new()).await.unwrap();
    assert!(
        svc.append("s", as_producer(0, 0), b"a".to_vec())
            .await
            .unwrap()
            .producer_wrote
    );
    clock.advance_ms(5_000);
    assert!(
        svc.append("s", as_producer(0, 1), b"b".to_vec())
            .await
            .unwrap()
            .producer_wrote
    );

    // 1 ms short of the TTL since the last accepted append: kept. A duplicate does not
    // renew the state (it writes nothing).
    clock.advance_ms(9_999);
    assert_eq!(svc.collect_producers().await.unwrap(), 0);
    let dup = svc
        .append("s", as_producer(0, 1), b"b".to_vec())
        .await
        .unwrap();
    assert!(!dup.producer_wrote, "a retry within the TTL is a duplicate");

    clock.advance_ms(1);
    assert_eq!(svc.collect_producers().await.unwrap(), 1);
    assert_eq!(svc.collect_producers().await.unwrap(), 0);

    // Unknown now: the next sequence is refused, a restart at 0 is accepted (and an old
    // retry of sequence 0 would be appended again).
    for seq in [1, 2] {
        let r = svc.append("s", as_producer(0, seq), b"b".to_vec()).await;
        assert!(
            matches!(r, Err(ServiceError::ProducerSeqStart)),
            "seq {seq}: {r:?}"
        );
    }
    assert!(
        svc.append("s", as_producer(0, 0), b"a".to_vec())
            .await
            .unwrap()
            .producer_wrote
    );
}

#[tokio::test]
async fn a_ttl_of_zero_keeps_producer_state_forever() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_800_000_000_000);
    let svc = service(dir.path(), clock.clone(), 0);
    let create = CreateParams {
        content_type: Some("text/plain".into()),
        ..Default::default()
    };
    svc.create("s", create, Vec::new()).await.unwrap();
    svc.append("s", as_producer(0, 0), b"a".to_vec())
        .await
        .unwrap();
    clock.advance_ms(10 * 365 * 86_400_000);
    assert_eq!(svc.collect_producers().await.unwrap(), 0);
    let dup = svc
        .append("s", as_producer(0, 0), b"a".to_vec())
        .await
        .unwrap();
    assert!(!dup.producer_wrote);
}

/// The real server: the expiry sweeper collects the state on its own.
#[tokio::test]
async fn the_sweeper_collects_idle_producer_state() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &[
            ("DS_PRODUCER_STATE_TTL_MS", "3000"),
            ("DS_EXPIRY_SWEEP_MS", "50"),
        ],
    );
    let c = client();
    let url = s.stream_url("p");
    let r = c
        .put(&url)
        .header("content-type", "text/plain")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let send = |seq: u64, body: &'static str| {
        c.post(&url)
            .header("content-type", "text/plain")
            .header("producer-id", "w1")
            .header("producer-epoch", "0")
            .header("producer-seq", seq.to_string())
            .body(body)
            .send()
    };
    assert_eq!(send(0, "a").await.unwrap().status(), StatusCode::OK);
    assert_eq!(send(1, "b").await.unwrap().status(), StatusCode::OK);
    assert_eq!(send(1, "b").await.unwrap().status(), StatusCode::NO_CONTENT);

    // Retries are duplicates (204, which does not renew the state) until the sweeper
    // forgets the producer; then the same retry is refused.
    let give_up = Instant::now() + Duration::from_secs(60);
    let refused = loop {
        let r = send(1, "b").await.unwrap();
        if r.status() != StatusCode::NO_CONTENT {
            break r;
        }
        assert!(Instant::now() < give_up, "producer state never collected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "producer_seq_invalid", "{body}");
    assert_eq!(
        send(2, "c").await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );

    // Starting again at 0 works; the old first write is now appended a second time.
    let r = send(0, "a").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "producer-seq").as_deref(), Some("0"));
    assert_eq!(send(1, "b").await.unwrap().status(), StatusCode::OK);
    let r = c.get(format!("{url}?offset=-1")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "abab");
}
