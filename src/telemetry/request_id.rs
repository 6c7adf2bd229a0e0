//! Request ids. Every request gets one: its tracing span records it, every response
//! carries it in `x-request-id`, and error bodies name it (`error.request_id`), so an error
//! a client reports can be found in the log, where the internal detail is.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

tokio::task_local! {
    static CURRENT: String;
}

/// Mints request ids: a random per-process prefix and a counter.
#[derive(Debug)]
pub struct RequestIds {
    prefix: String,
    next: AtomicU64,
}

impl RequestIds {
    pub fn new(random: u64) -> RequestIds {
        RequestIds {
            prefix: format!("{:08x}", random as u32),
            next: AtomicU64::new(1),
        }
    }

    pub fn mint(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n:x}", self.prefix)
    }
}

/// `f` (a request's handling), run with `id` as the current request id.
pub fn scope<F: Future>(id: String, f: F) -> tokio::task::futures::TaskLocalFuture<String, F> {
    CURRENT.scope(id, f)
}

/// The id of the request being handled, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ids_are_unique_and_visible_inside_their_scope() {
        let ids = RequestIds::new(0xdead_beef);
        let (a, b) = (ids.mint(), ids.mint());
        assert_ne!(a, b);
        assert!(a.starts_with("deadbeef-"));
        assert_eq!(current(), None);
        let seen = scope(a.clone(), async { current() }).await;
        assert_eq!(seen, Some(a));
    }
}
