//! The committed state published after every commit (by the task that answers the batch).
//!
//! For each stream a commit changed, a [`StreamChange`]: the new tail, the closed flag,
//! whether the stream is gone, and the bytes of the entries the commit appended. It is
//! shared (`Arc<Committed>`) by everyone who reacts to commits:
//! - long-poll and SSE readers waiting on the stream (per-stream `watch` channels in
//!   `notifier.rs`): a reader waiting at the old tail answers from these bytes, with no
//!   SQLite read, and all readers at the same position share one encoded page
//!   ([`Committed::encoded`]);
//! - consumers of every commit (live-query touch, subscriptions, indexers) through
//!   [`CommitFeed`], a bounded broadcast: a consumer that falls behind is told how many
//!   commits it missed and catches up from storage.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::entry::Entry;

/// One stream's state after a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamChange {
    pub id: i64,
    /// The stream's name, when the commit knew it (appends and closes do).
    pub name: Option<String>,
    /// Tail after the commit.
    pub next_pos: u64,
    pub closed: bool,
    /// Deleted, expired or removed: readers of this incarnation stop.
    pub gone: bool,
    /// Position of the first entry in `entries`.
    pub first_pos: u64,
    /// Entries the commit appended: positions `first_pos..next_pos`.
    pub entries: Vec<Entry>,
}

impl StreamChange {
    /// Whether the entries from `pos` to the tail are all here.
    pub fn covers(&self, pos: u64) -> bool {
        !self.gone && self.first_pos <= pos && pos < self.next_pos
    }

    /// The entries from `pos` on (empty unless [`covers`](Self::covers)).
    pub fn entries_from(&self, pos: u64) -> &[Entry] {
        if !self.covers(pos) {
            return &[];
        }
        &self.entries[(pos - self.first_pos) as usize..]
    }
}

/// A published change, with a cache of encodings shared by its readers.
#[derive(Debug)]
pub struct Committed {
    pub change: StreamChange,
    /// Encodings made by the first reader that needed each.
    encoded: Mutex<Vec<(EncodingKey, Encoded)>>,
}

/// What an encoding is of: the reader's kind of response and the position it starts at.
/// The kind is the caller's business (a page body, an SSE event, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodingKey {
    pub kind: u8,
    pub from: u64,
}

/// A reader's page of a change: its body (`None`: no entry passed the reader's filters),
/// the position it scanned through, and the payload bytes it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub body: Option<Bytes>,
    pub next: u64,
    pub bytes: usize,
}

impl Committed {
    pub fn new(change: StreamChange) -> Committed {
        Committed {
            change,
            encoded: Mutex::new(Vec::new()),
        }
    }

    /// The encoding `key` of this change, made once by `make` and then shared by every
    /// reader that asks for the same key (a failed `make` is not kept).
    pub fn encoded<E>(
        &self,
        key: EncodingKey,
        make: impl FnOnce() -> Result<Encoded, E>,
    ) -> Result<Encoded, E> {
        let mut cache = self.encoded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, e)) = cache.iter().find(|(k, _)| *k == key) {
            return Ok(e.clone());
        }
        let e = make()?;
        // Bounded: a handful of kinds, and readers wait at a few positions at most.
        if cache.len() < 8 {
            cache.push((key, e.clone()));
        }
        Ok(e)
    }
}

/// One commit as seen by consumers of every commit.
#[derive(Debug)]
pub struct Commit {
    /// Commits announced before this one, plus one.
    pub seq: u64,
    pub streams: Vec<Arc<Committed>>,
}

/// A subscription to every commit (see [`crate::engine::Engine::commit_feed`]).
pub struct CommitFeed {
    pub(super) rx: tokio::sync::broadcast::Receiver<Arc<Commit>>,
}

/// What [`CommitFeed::next`] returns.
#[derive(Debug)]
pub enum FeedEvent {
    Commit(Arc<Commit>),
    /// The consumer fell behind and this many commits were dropped for it: it must catch
    /// up from storage.
    Missed(u64),
    /// The engine stopped.
    Closed,
}

impl CommitFeed {
    pub async fn next(&mut self) -> FeedEvent {
        use tokio::sync::broadcast::error::RecvError;
        match self.rx.recv().await {
            Ok(c) => FeedEvent::Commit(c),
            Err(RecvError::Lagged(n)) => FeedEvent::Missed(n),
            Err(RecvError::Closed) => FeedEvent::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(first: u64, n: u64) -> StreamChange {
        StreamChange {
            id: 1,
            name: Some("s".into()),
            next_pos: first + n,
            closed: false,
            gone: false,
            first_pos: first,
            entries: (first..first + n)
                .map(|i| Entry {
                    data: Bytes::from(i.to_string()),
                    key: None,
                    ts_ms: 0,
                })
                .collect(),
        }
    }

    #[test]
    fn a_change_serves_positions_it_holds() {
        let c = change(5, 3);
        assert!(!c.covers(4));
        assert!(c.covers(5) && c.covers(7));
        assert!(!c.covers(8));
        let data: Vec<&Bytes> = c.entries_from(6).iter().map(|e| &e.data).collect();
        assert_eq!(data, [&Bytes::from("6"), &Bytes::from("7")]);
        assert!(c.entries_from(8).is_empty());
        let gone = StreamChange {
            gone: true,
            ..change(5, 3)
        };
        assert!(!gone.covers(5));
    }

    #[test]
    fn encodings_are_made_once_per_key() {
        let c = Committed::new(change(0, 2));
        let page = |b: &'static [u8]| Encoded {
            body: Some(Bytes::from_static(b)),
            next: 2,
            bytes: b.len(),
        };
        let mut made = 0;
        let key = EncodingKey { kind: 1, from: 0 };
        for _ in 0..3 {
            let e = c.encoded(key, || {
                made += 1;
                Ok::<_, ()>(page(b"page"))
            });
            assert_eq!(e, Ok(page(b"page")));
        }
        assert_eq!(made, 1);
        let other = c.encoded(EncodingKey { kind: 2, from: 0 }, || Ok::<_, ()>(page(b"x")));
        assert_eq!(other, Ok(page(b"x")));
        // A failure is the caller's, and the next reader makes the encoding again.
        let key = EncodingKey { kind: 3, from: 0 };
        assert_eq!(c.encoded(key, || Err("no")), Err("no"));
        assert_eq!(c.encoded(key, || Ok::<_, &str>(page(b"y"))), Ok(page(b"y")));
    }
}
