//! Publishes the committed state after each commit: to the readers of each changed stream
//! (one `watch` channel per stream incarnation that has readers, holding the latest
//! [`Committed`]) and to consumers of every commit (a bounded broadcast).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, watch};

use super::committed::{Commit, CommitFeed, Committed, StreamChange};

/// Commits a feed consumer may fall behind by before it is told it missed some.
const FEED_CAPACITY: usize = 4096;

/// The receiving end for one stream: the latest committed state, `None` until the first
/// commit after subscribing.
pub type TailReceiver = watch::Receiver<Option<Arc<Committed>>>;
type TailSender = watch::Sender<Option<Arc<Committed>>>;

#[derive(Clone)]
pub struct Notifier {
    // A std mutex: held only for map operations, never across an await.
    channels: Arc<Mutex<HashMap<i64, TailSender>>>,
    /// Commits announced so far (of any stream).
    commits: Arc<AtomicU64>,
    feed: broadcast::Sender<Arc<Commit>>,
}

impl Default for Notifier {
    fn default() -> Self {
        Notifier {
            channels: Arc::default(),
            commits: Arc::default(),
            feed: broadcast::channel(FEED_CAPACITY).0,
        }
    }
}

impl Notifier {
    pub fn subscribe(&self, id: i64) -> TailReceiver {
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id)
            .or_insert_with(|| watch::channel(None).0)
            .subscribe()
    }

    /// Every commit from now on.
    pub fn feed(&self) -> CommitFeed {
        CommitFeed {
            rx: self.feed.subscribe(),
        }
    }

    /// Commits announced so far. A reader that read a stream's metadata after loading this
    /// and subscribed before loading it again, with the same result, missed no commit: a
    /// commit its read did not see had not yet been announced when it subscribed.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::SeqCst)
    }

    /// Called by the writer after each commit with the streams it changed.
    pub fn publish(&self, changes: BTreeMap<i64, StreamChange>) {
        let seq = self.commits.fetch_add(1, Ordering::SeqCst) + 1;
        if changes.is_empty() {
            return;
        }
        let to_feed = self.feed.receiver_count() > 0;
        let mut all = Vec::new();
        {
            let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
            for (id, change) in changes {
                let tx = map.get(&id);
                let listened = tx.is_some_and(|t| t.receiver_count() > 0);
                if tx.is_some() && !listened {
                    map.remove(&id);
                }
                if !listened && !to_feed {
                    continue;
                }
                let c = Arc::new(Committed::new(change));
                if listened {
                    if let Some(tx) = map.get(&id) {
                        tx.send_replace(Some(c.clone()));
                    }
                }
                if to_feed {
                    all.push(c);
                }
            }
            // Drop channels whose readers all left without a later commit.
            if map.len() > 1024 {
                map.retain(|_, tx| tx.receiver_count() > 0);
            }
        }
        if to_feed {
            let _ = self.feed.send(Arc::new(Commit { seq, streams: all }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::committed::FeedEvent;

    fn change(id: i64, next: u64) -> BTreeMap<i64, StreamChange> {
        let c = StreamChange {
            id,
            name: None,
            next_pos: next,
            closed: false,
            gone: false,
            first_pos: next,
            entries: vec![],
        };
        BTreeMap::from([(id, c)])
    }

    #[tokio::test]
    async fn subscribers_see_the_state_of_commits_after_subscribing() {
        let n = Notifier::default();
        let mut rx = n.subscribe(7);
        assert!(rx.borrow().is_none());
        n.publish(change(8, 1));
        assert!(!rx.has_changed().unwrap());
        n.publish(change(7, 3));
        assert!(rx.has_changed().unwrap());
        rx.changed().await.unwrap();
        assert_eq!(rx.borrow_and_update().as_ref().unwrap().change.next_pos, 3);
        assert_eq!(n.commits(), 2);
        drop(rx);
        n.publish(change(7, 4));
        assert!(n.channels.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_feed_gets_every_commit_and_reports_what_it_missed() {
        let n = Notifier::default();
        n.publish(change(1, 1)); // before subscribing: not seen
        let mut feed = n.feed();
        n.publish(change(1, 2));
        n.publish(change(2, 5));
        match feed.next().await {
            FeedEvent::Commit(c) => {
                assert_eq!(c.seq, 2);
                assert_eq!(c.streams[0].change.next_pos, 2);
            }
            other => panic!("{other:?}"),
        }
        match feed.next().await {
            FeedEvent::Commit(c) => assert_eq!(c.streams[0].change.id, 2),
            other => panic!("{other:?}"),
        }
        for i in 0..FEED_CAPACITY as u64 + 10 {
            n.publish(change(3, i));
        }
        assert!(matches!(feed.next().await, FeedEvent::Missed(10)));
    }
}
