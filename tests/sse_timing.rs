//! SSE timing with tokio's paused clock (no sleeps): an idle session sends a heartbeat
//! control event every `DS_LONG_POLL_TIMEOUT_MS`, ends after `DS_SSE_MAX_DURATION_MS`,
//! and a commit wakes it at once with the new data.

use prisma_streams::clock::ManualClock;
use prisma_streams::config::Limits;
use prisma_streams::engine::Engine;
use prisma_streams::health::Health;
use prisma_streams::service::read::{ReadOutcome, ReadParams, SseSession};
use prisma_streams::service::{AppendParams, CreateParams, StreamService};
use tokio::time::{Duration, Instant};

fn service(dir: &std::path::Path) -> StreamService {
    let limits = Limits {
        long_poll_timeout_ms: 1000,
        sse_max_duration_ms: 3500,
        ..Limits::default()
    };
    let clock = ManualClock::new(1_000_000);
    let engine = Engine::open(
        dir.join("t.sqlite"),
        &limits,
        None,
        clock.clone(),
        Health::new(clock),
    )
    .unwrap();
    StreamService::new(engine, limits)
}

async fn session(svc: &StreamService) -> Box<SseSession> {
    let params = ReadParams {
        offset: Some("-1".into()),
        live: Some("sse".into()),
        ..Default::default()
    };
    match svc.read("s", params).await.unwrap() {
        ReadOutcome::Sse(s) => s,
        _ => panic!("expected an SSE session"),
    }
}

/// The events of a chunk: `(event name, data)`.
fn events(chunk: &[u8]) -> Vec<(String, String)> {
    let text = std::str::from_utf8(chunk).unwrap();
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let mut name = String::new();
            let mut data = Vec::new();
            for line in e.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_string();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push(d);
                }
            }
            (name, data.join("\n"))
        })
        .collect()
}

async fn create(svc: &StreamService) {
    let p = CreateParams {
        content_type: Some("text/plain".into()),
        ..Default::default()
    };
    svc.create("s", p, Vec::new()).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn idle_sessions_get_heartbeats_and_end_after_their_max_duration() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path());
    create(&svc).await;
    let mut s = session(&svc).await;
    let t0 = Instant::now();

    let first = events(&s.next_chunk().await.unwrap());
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].0, "control");
    assert!(first[0].1.contains("\"upToDate\":true"), "{first:?}");
    assert_eq!(Instant::now(), t0, "the first control event is immediate");

    for n in 1..=3u64 {
        let beat = events(&s.next_chunk().await.unwrap());
        assert_eq!(beat.len(), 1);
        assert_eq!(beat[0].0, "control", "a heartbeat is a control event");
        assert!(beat[0].1.contains("streamCursor"), "{beat:?}");
        assert_eq!(Instant::now() - t0, Duration::from_millis(1000 * n));
    }
    // The fourth wait is cut short by the session's maximum duration.
    assert!(s.next_chunk().await.is_none());
    assert_eq!(Instant::now() - t0, Duration::from_millis(3500));
    assert!(
        s.next_chunk().await.is_none(),
        "an ended session stays ended"
    );
}

#[tokio::test(start_paused = true)]
async fn a_commit_wakes_a_session_with_its_data_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path());
    create(&svc).await;
    let mut s = session(&svc).await;
    let t0 = Instant::now();
    s.next_chunk().await.unwrap();
    let p = AppendParams {
        content_type: Some("text/plain".into()),
        ..Default::default()
    };
    // The writer thread publishes right after acknowledging; wait for it here, since the
    // paused clock would otherwise jump to the session's heartbeat while it does.
    let id = svc.engine().lookup("s").await.unwrap().unwrap().id;
    let mut published = svc.engine().subscribe(id);
    svc.append("s", p, b"hello\nworld".to_vec()).await.unwrap();
    published.changed().await.unwrap();
    let got = events(&s.next_chunk().await.unwrap());
    assert_eq!(got[0], ("data".to_string(), "hello\nworld".to_string()));
    assert_eq!(got[1].0, "control");
    assert!(got[1].1.contains("\"upToDate\":true"), "{got:?}");
    assert_eq!(
        Instant::now(),
        t0,
        "no wait for a commit that already happened"
    );
}
