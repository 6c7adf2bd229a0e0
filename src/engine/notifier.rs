//! Wakes live readers after a commit. One `watch` channel per stream incarnation that has
//! readers; the value is a change counter, readers re-read storage when it moves.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

#[derive(Clone, Default)]
pub struct Notifier {
    // A std mutex: held only for map operations, never across an await.
    channels: Arc<Mutex<HashMap<i64, watch::Sender<u64>>>>,
    /// Commits announced so far (of any stream).
    commits: Arc<AtomicU64>,
}

impl Notifier {
    pub fn subscribe(&self, id: i64) -> watch::Receiver<u64> {
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Commits announced so far. A reader that read a stream's metadata after loading this
    /// and subscribed before loading it again, with the same result, missed no commit: a
    /// commit its read did not see had not yet been announced when it subscribed.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::SeqCst)
    }

    /// Called by the writer after a commit that changed these streams.
    pub fn notify(&self, ids: impl IntoIterator<Item = i64>) {
        self.commits.fetch_add(1, Ordering::SeqCst);
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        for id in ids {
            if let Some(tx) = map.get(&id) {
                if tx.receiver_count() == 0 {
                    map.remove(&id);
                } else {
                    tx.send_modify(|v| *v = v.wrapping_add(1));
                }
            }
        }
        // Drop channels whose readers all left without a later notify.
        if map.len() > 1024 {
            map.retain(|_, tx| tx.receiver_count() > 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_see_notifications_after_subscribing() {
        let n = Notifier::default();
        let mut rx = n.subscribe(7);
        n.notify([8]);
        assert!(!rx.has_changed().unwrap());
        n.notify([7]);
        assert!(rx.has_changed().unwrap());
        rx.changed().await.unwrap();
        drop(rx);
        n.notify([7]);
        assert!(n.channels.lock().unwrap().is_empty());
    }
}
