//! TTL and expiry with an injected manual clock: no sleeps.

use std::sync::Arc;

use prisma_streams::clock::ManualClock;
use prisma_streams::config::Limits;
use prisma_streams::engine::Engine;
use prisma_streams::service::read::ReadParams;
use prisma_streams::service::{AppendParams, CreateParams, ServiceError, StreamService};

fn service(dir: &std::path::Path, clock: Arc<ManualClock>) -> StreamService {
    let limits = Limits::default();
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

fn ttl(seconds: &str) -> CreateParams {
    CreateParams {
        content_type: Some("text/plain".into()),
        ttl: Some(seconds.into()),
        ..Default::default()
    }
}

/// Appends to another stream; the writer handles requests in order, so when this returns
/// every TTL renewal queued before it has been committed.
async fn barrier(svc: &StreamService) {
    let _ = svc
        .create("barrier", CreateParams::default(), Vec::new())
        .await
        .unwrap();
}

#[tokio::test]
async fn ttl_slides_with_reads_and_writes_but_not_head() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_800_000_000_000);
    let svc = service(dir.path(), clock.clone());
    svc.create("s", ttl("10"), b"x".to_vec()).await.unwrap();

    clock.advance_ms(8_000);
    svc.head("s").await.unwrap(); // HEAD does not renew
    svc.read("s", ReadParams::default()).await.unwrap(); // a read does
    barrier(&svc).await;
    clock.advance_ms(8_000); // 16 s after create, 8 s after the read
    assert!(svc.head("s").await.is_ok());

    let append = AppendParams {
        content_type: Some("text/plain".into()),
        ..Default::default()
    };
    svc.append("s", append, b"y".to_vec()).await.unwrap(); // a write renews
    clock.advance_ms(9_999);
    assert!(svc.head("s").await.is_ok());
    clock.advance_ms(1);
    assert!(matches!(
        svc.head("s").await,
        Err(ServiceError::NotFound(_))
    ));
    let r = svc
        .append(
            "s",
            AppendParams {
                content_type: Some("text/plain".into()),
                ..Default::default()
            },
            b"z".to_vec(),
        )
        .await;
    assert!(matches!(r, Err(ServiceError::NotFound(_))));

    // An expired name can be created again, cleanly.
    let created = svc.create("s", ttl("10"), Vec::new()).await.unwrap();
    assert!(created.new);
    assert_eq!(created.info.next_offset.pos, 0);
}

#[tokio::test]
async fn absolute_expiry_and_the_sweeper_reclaim_streams() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_800_000_000_000);
    let svc = service(dir.path(), clock.clone());
    let at = CreateParams {
        expires_at: Some("2027-01-15T08:00:05Z".into()), // 1_800_000_005_000 ms
        ..Default::default()
    };
    svc.create("a", at, b"x".to_vec()).await.unwrap();
    svc.create("b", ttl("1"), Vec::new()).await.unwrap();
    svc.create("keep", CreateParams::default(), Vec::new())
        .await
        .unwrap();
    assert_eq!(svc.list(0, 100).await.unwrap().len(), 3);

    clock.advance_ms(1_000);
    assert!(matches!(
        svc.head("b").await,
        Err(ServiceError::NotFound(_))
    ));
    assert!(svc.head("a").await.is_ok());
    assert_eq!(svc.sweep_expired().await.unwrap(), 1);
    clock.advance_ms(4_000);
    assert_eq!(svc.sweep_expired().await.unwrap(), 1);
    assert_eq!(svc.sweep_expired().await.unwrap(), 0);
    let names: Vec<String> = svc
        .list(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, vec!["keep"]);
    // The rows are gone, not just hidden.
    assert!(svc.engine().lookup("a").await.unwrap().is_none());
}

#[tokio::test]
async fn both_ttl_and_expires_at_is_a_bad_request() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path(), ManualClock::new(0));
    let p = CreateParams {
        ttl: Some("5".into()),
        expires_at: Some("2030-01-01T00:00:00Z".into()),
        ..Default::default()
    };
    assert!(matches!(
        svc.create("x", p, Vec::new()).await,
        Err(ServiceError::BadRequest(_))
    ));
}
