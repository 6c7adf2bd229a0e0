//! A byte-bounded, least-recently-used map of shared values by object key: the verified
//! index objects (runs, segment summaries) kept in memory.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

pub struct ByteLru<V> {
    cap: u64,
    inner: Mutex<Inner<V>>,
}

struct Inner<V> {
    used: u64,
    map: HashMap<String, (Arc<V>, u64)>,
    order: VecDeque<String>,
}

impl<V> ByteLru<V> {
    pub fn new(cap_bytes: u64) -> ByteLru<V> {
        ByteLru {
            cap: cap_bytes,
            inner: Mutex::new(Inner {
                used: 0,
                map: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<V>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value under `key`, now the most recently used.
    pub fn get(&self, key: &str) -> Option<Arc<V>> {
        let mut c = self.lock();
        let v = c.map.get(key)?.0.clone();
        if let Some(i) = c.order.iter().position(|k| k == key) {
            if let Some(k) = c.order.remove(i) {
                c.order.push_back(k);
            }
        }
        Some(v)
    }

    /// Keeps `value` (of about `size` bytes) unless it alone exceeds the budget; the least
    /// recently used values make room.
    pub fn put(&self, key: String, value: Arc<V>, size: u64) {
        if size > self.cap {
            return;
        }
        let mut c = self.lock();
        if c.map.contains_key(&key) {
            return;
        }
        while c.used + size > self.cap {
            let Some(old) = c.order.pop_front() else {
                break;
            };
            if let Some((_, s)) = c.map.remove(&old) {
                c.used -= s;
            }
        }
        c.used += size;
        c.order.push_back(key.clone());
        c.map.insert(key, (value, size));
    }

    pub fn remove(&self, key: &str) {
        let mut c = self.lock();
        if let Some((_, s)) = c.map.remove(key) {
            c.used -= s;
            c.order.retain(|k| k != key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_make_room_within_the_budget() {
        let c: ByteLru<u32> = ByteLru::new(10);
        c.put("a".into(), Arc::new(1), 4);
        c.put("b".into(), Arc::new(2), 4);
        assert_eq!(c.get("a").as_deref(), Some(&1));
        c.put("c".into(), Arc::new(3), 4);
        assert!(c.get("b").is_none(), "b was the least recently used");
        assert!(c.get("a").is_some() && c.get("c").is_some());
        c.put("big".into(), Arc::new(4), 11);
        assert!(c.get("big").is_none(), "larger than the budget");
        c.remove("a");
        assert!(c.get("a").is_none());
    }
}
