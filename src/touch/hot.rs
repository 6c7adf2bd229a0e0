//! Hot interest: which fine keys and templates waiting clients care about right now, per
//! stream, so the processor can skip fine touches nobody waits for.
//!
//! Each `/touch/wait` registers for its duration:
//! - a fine or a coarse waiter;
//! - for a fine wait on at most [`MAX_INDEXED_KEYS`] key ids, each key id (counted);
//!   more keys make it a *broad* fine waiter, which turns key filtering off while it
//!   waits (the processor cannot tell which keys it covers);
//! - for a fine wait, each template id in `templateIdsUsed`.
//!
//! Coarse waits add no keys or templates. When a key's or template's count drops to zero
//! it stays hot for a grace period (`memory.hotKeyTtlMs` / `hotTemplateTtlMs`), so a
//! client that re-waits right after being woken misses nothing. Capacity is bounded
//! (`memory.hotMaxKeys` / `hotMaxTemplates`): a key that does not fit marks the set over
//! capacity, which turns filtering off (every fine touch is kept) until the set shrinks.
//!
//! Same rules as the original (0.1.11 `TouchManager`), kept in one plain struct per stream
//! that its owner locks; times are the caller's (injected clock).

use std::collections::HashMap;

use crate::profiles::touch::TouchMemoryConfig;

/// A fine wait with more key ids than this is broad.
pub const MAX_INDEXED_KEYS: usize = 64;

/// The limits of one stream's hot sets, from its touch configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HotLimits {
    pub key_grace_ms: u64,
    pub template_grace_ms: u64,
    pub max_keys: usize,
    pub max_templates: usize,
}

impl HotLimits {
    pub fn of(memory: &TouchMemoryConfig) -> HotLimits {
        HotLimits {
            key_grace_ms: memory.hot_key_ttl_ms.max(1),
            template_grace_ms: memory.hot_template_ttl_ms.max(1),
            max_keys: usize::try_from(memory.hot_max_keys.max(1)).unwrap_or(usize::MAX),
            max_templates: usize::try_from(memory.hot_max_templates.max(1)).unwrap_or(usize::MAX),
        }
    }

    fn sweep_every_ms(&self) -> u64 {
        self.key_grace_ms
            .min(self.template_grace_ms)
            .clamp(250, 2000)
    }
}

/// What one wait registered; hand it back to [`HotInterest::end`].
#[derive(Debug)]
#[must_use = "a registration must be ended when its wait ends"]
pub struct Registration {
    fine: bool,
    broad: bool,
    keys: Vec<u32>,
    templates: Vec<u64>,
}

/// One counted set with grace periods (keys or templates).
#[derive(Debug, Default)]
struct HotSet<K> {
    active: HashMap<K, u32>,
    /// Grace deadline (Unix ms) of ids no wait holds any more.
    grace: HashMap<K, i64>,
    over_capacity: bool,
}

impl<K: std::hash::Hash + Eq + Copy> HotSet<K> {
    fn len(&self) -> usize {
        self.active.len() + self.grace.len()
    }

    fn contains(&self, k: &K) -> bool {
        self.active.contains_key(k) || self.grace.contains_key(k)
    }

    /// Counts `k` in; false when it does not fit (the set is then over capacity).
    fn acquire(&mut self, k: K, max: usize) -> bool {
        if let Some(n) = self.active.get_mut(&k) {
            *n += 1;
            self.grace.remove(&k);
            return true;
        }
        // A key in grace comes back to the active set without growing the total.
        if self.grace.remove(&k).is_none() && self.len() >= max {
            self.over_capacity = true;
            return false;
        }
        self.active.insert(k, 1);
        true
    }

    fn release(&mut self, k: K, now_ms: i64, grace_ms: u64, max: usize) {
        let Some(n) = self.active.get_mut(&k) else {
            return;
        };
        if *n > 1 {
            *n -= 1;
            return;
        }
        self.active.remove(&k);
        if self.len() >= max {
            self.over_capacity = true;
            return;
        }
        self.grace.insert(
            k,
            now_ms.saturating_add(i64::try_from(grace_ms).unwrap_or(i64::MAX)),
        );
    }

    fn sweep(&mut self, now_ms: i64, max: usize) {
        self.grace.retain(|_, until| *until > now_ms);
        if self.len() < max {
            self.over_capacity = false;
        }
    }
}

/// The hot interest of one stream.
#[derive(Debug, Default)]
pub struct HotInterest {
    keys: HotSet<u32>,
    templates: HotSet<u64>,
    fine_waiters: u32,
    coarse_waiters: u32,
    broad_fine_waiters: u32,
    next_sweep_ms: i64,
}

/// Counts for `touch/meta` and the processor's decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HotCounts {
    pub keys_active: usize,
    pub keys_grace: usize,
    pub templates_active: usize,
    pub templates_grace: usize,
    pub fine_waiters: u32,
    pub coarse_waiters: u32,
    pub broad_fine_waiters: u32,
    /// Fine touches of keys outside the hot set may be skipped.
    pub key_filtering: bool,
    /// Only hot templates need fine processing.
    pub template_filtering: bool,
}

impl HotCounts {
    pub fn keys(&self) -> usize {
        self.keys_active + self.keys_grace
    }

    pub fn templates(&self) -> usize {
        self.templates_active + self.templates_grace
    }

    pub fn any_waiters(&self) -> bool {
        self.fine_waiters + self.coarse_waiters > 0
    }

    /// Someone may want fine touches: a fine waiter, or a key or template still hot.
    pub fn fine_demand(&self) -> bool {
        self.fine_waiters > 0
            || self.broad_fine_waiters > 0
            || self.keys() > 0
            || self.templates() > 0
    }
}

impl HotInterest {
    /// Registers a wait: `key_ids` are the caller's fine key ids (ignored for a coarse
    /// wait), `templates` the template ids of `templateIdsUsed` that are valid hex16.
    pub fn begin(
        &mut self,
        fine: bool,
        key_ids: &[u32],
        templates: &[u64],
        now_ms: i64,
        limits: &HotLimits,
    ) -> Registration {
        let broad = fine && key_ids.len() > MAX_INDEXED_KEYS;
        let mut reg = Registration {
            fine,
            broad,
            keys: Vec::new(),
            templates: Vec::new(),
        };
        if fine {
            self.fine_waiters += 1;
            if broad {
                self.broad_fine_waiters += 1;
            } else {
                for &k in key_ids {
                    if !reg.keys.contains(&k) && self.keys.acquire(k, limits.max_keys) {
                        reg.keys.push(k);
                    }
                }
            }
            for &t in templates {
                if !reg.templates.contains(&t) && self.templates.acquire(t, limits.max_templates) {
                    reg.templates.push(t);
                }
            }
        } else {
            self.coarse_waiters += 1;
        }
        self.sweep(now_ms, limits, true);
        reg
    }

    /// Ends a wait's registration: its keys and templates enter their grace period.
    pub fn end(&mut self, reg: Registration, now_ms: i64, limits: &HotLimits) {
        if reg.fine {
            self.fine_waiters = self.fine_waiters.saturating_sub(1);
        } else {
            self.coarse_waiters = self.coarse_waiters.saturating_sub(1);
        }
        if reg.broad {
            self.broad_fine_waiters = self.broad_fine_waiters.saturating_sub(1);
        }
        for k in reg.keys {
            self.keys
                .release(k, now_ms, limits.key_grace_ms, limits.max_keys);
        }
        for t in reg.templates {
            self.templates
                .release(t, now_ms, limits.template_grace_ms, limits.max_templates);
        }
        self.sweep(now_ms, limits, true);
    }

    /// Drops expired grace entries (at most every 250 ms–2 s unless `force`). Returns
    /// whether nothing is left, so the owner may discard this state.
    pub fn sweep(&mut self, now_ms: i64, limits: &HotLimits, force: bool) -> bool {
        if force || now_ms >= self.next_sweep_ms {
            self.keys.sweep(now_ms, limits.max_keys);
            self.templates.sweep(now_ms, limits.max_templates);
            let every = i64::try_from(limits.sweep_every_ms()).unwrap_or(i64::MAX);
            self.next_sweep_ms = now_ms.saturating_add(every);
        }
        self.is_idle()
    }

    /// No waiter and nothing hot.
    pub fn is_idle(&self) -> bool {
        self.keys.len() == 0
            && self.templates.len() == 0
            && self.fine_waiters == 0
            && self.coarse_waiters == 0
            && self.broad_fine_waiters == 0
    }

    pub fn counts(&self) -> HotCounts {
        HotCounts {
            keys_active: self.keys.active.len(),
            keys_grace: self.keys.grace.len(),
            templates_active: self.templates.active.len(),
            templates_grace: self.templates.grace.len(),
            fine_waiters: self.fine_waiters,
            coarse_waiters: self.coarse_waiters,
            broad_fine_waiters: self.broad_fine_waiters,
            key_filtering: !self.keys.over_capacity && self.broad_fine_waiters == 0,
            template_filtering: !self.templates.over_capacity && self.templates.len() > 0,
        }
    }

    /// Whether a fine touch of `key_id` has someone to wake (meaningful while key
    /// filtering is on).
    pub fn is_hot_key(&self, key_id: u32) -> bool {
        self.keys.contains(&key_id)
    }

    /// Whether a template's fine touches are wanted (meaningful while template filtering
    /// is on).
    pub fn is_hot_template(&self, template_id: u64) -> bool {
        self.templates.contains(&template_id)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn limits(max_keys: usize) -> HotLimits {
        HotLimits {
            key_grace_ms: 10_000,
            template_grace_ms: 10_000,
            max_keys,
            max_templates: 4,
        }
    }

    #[test]
    fn keys_stay_hot_for_their_grace_period() {
        let l = limits(100);
        let mut h = HotInterest::default();
        let a = h.begin(true, &[1, 2, 2], &[9], 0, &l);
        let b = h.begin(true, &[2], &[], 0, &l);
        let c = h.counts();
        assert_eq!(
            (c.keys_active, c.templates_active, c.fine_waiters),
            (2, 1, 2)
        );
        assert!(c.key_filtering && c.template_filtering && c.fine_demand());
        h.end(a, 1_000, &l);
        // Key 2 is still held by the second wait; key 1 and template 9 are in grace.
        let c = h.counts();
        assert_eq!((c.keys_active, c.keys_grace, c.templates_grace), (1, 1, 1));
        assert!(h.is_hot_key(1) && h.is_hot_key(2) && !h.is_hot_key(3));
        assert!(h.is_hot_template(9));
        h.end(b, 2_000, &l);
        assert!(
            !h.sweep(10_999, &l, true),
            "key 1's grace runs until 11,000"
        );
        assert!(h.is_hot_key(1));
        assert!(
            !h.sweep(11_000, &l, true),
            "key 2's grace runs until 12,000"
        );
        assert!(!h.is_hot_key(1) && h.is_hot_key(2));
        assert!(h.sweep(12_000, &l, true), "nothing left");
        assert_eq!(
            h.counts(),
            HotCounts {
                key_filtering: true,
                ..HotCounts::default()
            }
        );
    }

    #[test]
    fn a_key_back_from_grace_is_active_again() {
        let l = limits(100);
        let mut h = HotInterest::default();
        let a = h.begin(true, &[5], &[], 0, &l);
        h.end(a, 0, &l);
        let b = h.begin(true, &[5], &[], 5, &l);
        let c = h.counts();
        assert_eq!((c.keys_active, c.keys_grace), (1, 0));
        h.end(b, 6, &l);
    }

    #[test]
    fn coarse_waits_add_no_keys_and_broad_waits_turn_key_filtering_off() {
        let l = limits(100);
        let mut h = HotInterest::default();
        let coarse = h.begin(false, &[1, 2], &[7], 0, &l);
        let c = h.counts();
        assert_eq!((c.coarse_waiters, c.keys(), c.templates()), (1, 0, 0));
        assert!(c.any_waiters() && !c.fine_demand());
        let many: Vec<u32> = (0..=MAX_INDEXED_KEYS as u32).collect();
        let broad = h.begin(true, &many, &[], 0, &l);
        let c = h.counts();
        assert_eq!((c.broad_fine_waiters, c.keys()), (1, 0));
        assert!(!c.key_filtering && c.fine_demand());
        h.end(broad, 1, &l);
        assert!(h.counts().key_filtering);
        h.end(coarse, 1, &l);
        assert!(h.is_idle());
    }

    #[test]
    fn over_capacity_turns_filtering_off_until_the_set_shrinks() {
        let l = limits(2);
        let mut h = HotInterest::default();
        let a = h.begin(true, &[1, 2, 3], &[], 0, &l);
        let c = h.counts();
        assert_eq!(c.keys(), 2);
        assert!(!c.key_filtering, "key 3 did not fit");
        h.end(a, 0, &l);
        // The released keys wait out their grace and keep the set full; the sweep after
        // their grace frees room and filtering comes back.
        assert!(h.sweep(20_000, &l, true));
        assert!(h.counts().key_filtering);
        let t: Vec<u64> = (0..5).collect();
        let b = h.begin(true, &[], &t, 0, &l);
        let c = h.counts();
        assert_eq!(c.templates(), 4);
        assert!(!c.template_filtering);
        h.end(b, 0, &l);
    }

    #[test]
    fn sweeps_are_rate_limited_unless_forced() {
        let l = limits(100);
        let mut h = HotInterest::default();
        let a = h.begin(true, &[1], &[], 0, &l);
        h.end(a, 0, &l); // grace until 10,000; next sweep at 2,000
        assert!(
            h.sweep(10_500, &l, false),
            "due: the sweep ran and left nothing"
        );
        assert!(!h.is_hot_key(1));
        let b = h.begin(true, &[2], &[], 20_000, &l);
        h.end(b, 20_000, &l); // grace until 30,000; next sweep at 22,000
        assert!(h.sweep(30_001, &l, false));
        assert!(!h.is_hot_key(2));
        let c = h.begin(true, &[3], &[], 30_001, &l);
        h.end(c, 30_001, &l);
        // Next sweep at 32,001: a sweep before then leaves expired entries alone.
        assert!(!h.sweep(31_000, &l, false));
        assert!(h.is_hot_key(3));
    }
}
