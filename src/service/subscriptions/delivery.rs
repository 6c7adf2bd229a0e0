//! The subscriptions' background task: follows the commit feed (appends link and wake,
//! deletions unlink), runs the lease and retry timers, and sends webhooks with one
//! shared HTTP client (per-attempt timeout, no redirects, at most
//! `DS_WEBHOOK_CONCURRENCY` in flight). A target is checked against the SSRF rules again
//! right before each attempt, so a refused URL is never connected to.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Semaphore};

use super::{Delivery, SubscriptionManager};
use crate::engine::{CommitFeed, FeedEvent};
use crate::subscriptions::target;

/// Longest sleep between timer checks when nothing is due.
const IDLE_CHECK: Duration = Duration::from_secs(30);
/// Largest webhook response body read (only `{"done":true}` matters).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Runs until `stop` turns true or the engine stops. `feed` is subscribed by the caller
/// before the server accepts requests, so no commit is missed.
pub async fn run(
    manager: Arc<SubscriptionManager>,
    mut feed: CommitFeed,
    mut stop: watch::Receiver<bool>,
) {
    let settings = manager.settings().clone();
    let client = match hook_client::Client::builder()
        .timeout(Duration::from_millis(settings.timeout_ms))
        .connect_timeout(Duration::from_millis(settings.timeout_ms))
        .redirect(hook_client::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook client; webhooks are not delivered");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(settings.concurrency));
    loop {
        let wait = match manager.due(manager_now(&manager)).await {
            Ok((deliveries, next)) => {
                for d in deliveries {
                    let (m, c, s) = (manager.clone(), client.clone(), slots.clone());
                    let loopback_only = settings.loopback_only;
                    tokio::spawn(async move {
                        let Ok(_permit) = s.acquire_owned().await else {
                            return;
                        };
                        let outcome = send(&c, &d, loopback_only).await;
                        if let Err(e) = m.delivered(&d, outcome).await {
                            tracing::warn!(error = %e, "cannot record a webhook delivery");
                        }
                    });
                }
                next.map_or(IDLE_CHECK, |t| {
                    let ms = (t - manager_now(&manager)).clamp(0, IDLE_CHECK.as_millis() as i64);
                    Duration::from_millis(ms as u64)
                })
            }
            Err(e) => {
                tracing::warn!(error = %e, "subscription timers failed; retrying");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            ev = feed.next() => match ev {
                FeedEvent::Commit(c) => {
                    for s in &c.streams {
                        if let Err(e) = manager.on_change(&s.change).await {
                            tracing::warn!(error = %e, "subscriptions could not follow a commit");
                        }
                    }
                }
                FeedEvent::Missed(n) => {
                    tracing::debug!(missed = n, "subscriptions fell behind the commit feed; catching up");
                    if let Err(e) = manager.catch_up().await {
                        tracing::warn!(error = %e, "subscriptions could not catch up");
                    }
                }
                FeedEvent::Closed => return,
            },
            _ = manager.changed() => {}
            _ = crate::clock::sleep(wait) => {}
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
        }
    }
}

fn manager_now(m: &SubscriptionManager) -> i64 {
    m.now_ms()
}

/// One attempt: `Ok(done)` for a 2xx answer, `Err` for anything else.
async fn send(
    client: &hook_client::Client,
    d: &Delivery,
    loopback_only: bool,
) -> Result<bool, String> {
    target::check(&d.url, loopback_only).map_err(|e| format!("target refused: {e}"))?;
    let res = client
        .post(&d.url)
        .header("content-type", "application/json")
        .header("webhook-signature", &d.signature)
        .body(d.body.clone())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status();
    if !status.is_success() {
        return Err(format!("receiver answered {status}"));
    }
    // Read at most MAX_RESPONSE_BYTES: a longer answer is accepted, but not as "done".
    let mut res = res;
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = res.chunk().await {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Ok(false);
        }
        body.extend_from_slice(&chunk);
    }
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    Ok(v.get("done").and_then(serde_json::Value::as_bool) == Some(true))
}
