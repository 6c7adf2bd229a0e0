//! A bounded cache of stream metadata by name, so that the request path (every read,
//! long-poll, SSE session and HEAD) finds its stream without a SQLite read.
//!
//! The writer keeps it coherent. After each commit, before anyone hears of the commit
//! (replies, published state), it puts the fresh metadata of the streams an append just
//! wrote and evicts every other stream whose row the commit touched; SQLite's update hook
//! lists those rows, so no write operation can forget one. A reader that misses loads the
//! row from SQLite and inserts it only if the cache's version (bumped by every writer
//! update) is the one it saw before its read, so a slow reader never puts back an older
//! row than the writer's last commit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::meta::StreamMeta;

#[derive(Debug)]
pub struct MetaCache {
    inner: Mutex<Inner>,
    cap: usize,
}

#[derive(Debug, Default)]
struct Inner {
    by_name: HashMap<String, Arc<StreamMeta>>,
    /// Incarnation id → name, to evict by id.
    names: HashMap<i64, String>,
    version: u64,
}

impl Inner {
    fn evict(&mut self, id: i64) {
        if let Some(name) = self.names.remove(&id) {
            self.by_name.remove(&name);
        }
    }

    fn put(&mut self, meta: StreamMeta, cap: usize) {
        let Some(name) = meta.name.clone() else {
            self.evict(meta.id);
            return;
        };
        if cap == 0 {
            return;
        }
        if self.by_name.len() >= cap && !self.by_name.contains_key(&name) {
            // Full: drop an arbitrary eighth (hash order), cheaper than tracking recency.
            let victims: Vec<i64> = self
                .by_name
                .values()
                .take((cap / 8).max(1))
                .map(|m| m.id)
                .collect();
            for id in victims {
                self.evict(id);
            }
        }
        let id = meta.id;
        if let Some(old) = self.by_name.insert(name.clone(), Arc::new(meta)) {
            if old.id != id {
                self.names.remove(&old.id);
            }
        }
        self.names.insert(id, name);
    }
}

impl MetaCache {
    /// A cache of at most `cap` streams (0 disables it).
    pub fn new(cap: usize) -> MetaCache {
        MetaCache {
            inner: Mutex::default(),
            cap,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, name: &str) -> Option<StreamMeta> {
        self.lock().by_name.get(name).map(|m| StreamMeta::clone(m))
    }

    /// The configuration generation of a cached stream, without copying its metadata.
    pub fn config_gen(&self, name: &str) -> Option<u64> {
        self.lock().by_name.get(name).map(|m| m.settings.config_gen)
    }

    /// The version to pass to [`insert_if_unchanged`](Self::insert_if_unchanged), read
    /// before loading a row.
    pub fn version(&self) -> u64 {
        self.lock().version
    }

    /// Caches a row loaded from SQLite, unless the writer changed anything since
    /// `version` was read (the row may then be older than the writer's last commit).
    pub fn insert_if_unchanged(&self, version: u64, meta: StreamMeta) {
        let mut g = self.lock();
        if g.version == version {
            g.put(meta, self.cap);
        }
    }

    /// The writer's update after a commit: `evict` the rows it touched, then `put` the
    /// fresh rows it knows exactly.
    pub fn apply(&self, evict: impl IntoIterator<Item = i64>, put: Vec<StreamMeta>) {
        let mut g = self.lock();
        g.version += 1;
        for id in evict {
            g.evict(id);
        }
        for m in put {
            g.put(m, self.cap);
        }
    }

    /// Number of cached streams.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().by_name.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testing::stream_meta as meta;

    #[test]
    fn a_reader_cannot_put_back_a_row_older_than_the_last_commit() {
        let c = MetaCache::new(10);
        let v = c.version();
        // The writer commits an append to stream 1 while the reader loads its old row.
        c.apply([1], vec![meta(1, "a", 5)]);
        c.insert_if_unchanged(v, meta(1, "a", 4));
        assert_eq!(c.get("a").unwrap().tail.next_pos, 5);
        // Without a commit in between, a loaded row is cached.
        let v = c.version();
        c.insert_if_unchanged(v, meta(2, "b", 1));
        assert_eq!(c.get("b").unwrap().id, 2);
    }

    #[test]
    fn evictions_follow_ids_and_recreated_names() {
        let c = MetaCache::new(10);
        c.apply([], vec![meta(1, "a", 1), meta(2, "b", 1)]);
        c.apply([1], vec![]);
        assert!(c.get("a").is_none());
        // "b" deleted and created again as incarnation 3.
        c.apply([2], vec![meta(3, "b", 0)]);
        assert_eq!(c.get("b").unwrap().id, 3);
        c.apply([2], vec![]);
        assert_eq!(
            c.get("b").unwrap().id,
            3,
            "evicting the old id spares the new one"
        );
        let mut detached = meta(3, "b", 0);
        detached.name = None;
        c.apply([], vec![detached]);
        assert!(c.get("b").is_none());
    }

    #[test]
    fn the_cache_stays_within_its_capacity() {
        let c = MetaCache::new(16);
        for i in 0..100 {
            c.apply([], vec![meta(i, &format!("s{i}"), 0)]);
            assert!(c.len() <= 16);
        }
        assert!(c.get("s99").is_some());
        let off = MetaCache::new(0);
        off.apply([], vec![meta(1, "a", 0)]);
        assert!(off.get("a").is_none());
    }
}
