//! How the processor treats one batch of a stream's changes: whether it emits fine
//! touches and at which granularity, its fine-touch budget, and the journal's coalescing
//! window, from the stream's lag and its waiters' interest.
//!
//! The rules are the original's (0.1.11 `TouchManager.processOne`):
//! - **Demand.** Without fine demand (no fine waiter, no hot key or template) a batch
//!   emits table touches only.
//! - **Lag guard** with hysteresis: a stream whose lag reaches
//!   `lagDegradeFineTouchesAtSourceOffsets` is degraded until its lag falls to
//!   `min(degrade, lagRecoverFineTouchesAtSourceOffsets)`; degraded batches emit template
//!   keys instead of watch keys, under `lagReservedFineTouchBudgetPerBatch`.
//! - **Budget**: `fineTouchBudgetPerBatch`, taken from a per-stream token bucket
//!   (`fineTokensPerSecond`, `fineBurstTokens`); what a batch does not use goes back.
//! - **Coalescing**: `memory.bucketMs` without waiters; with waiters 10 ms when caught up,
//!   50 ms up to 5,000 behind, else `bucketMs` (never above `bucketMs`).
//! - **Mode** reported by `touch/meta`: `idle` (no waiters), `fine`, `restricted`
//!   (degraded but emitting), `coarseOnly`.
//!
//! Table touches are never subject to any of this: they are the guaranteed wake.

use crate::profiles::touch::TouchConfig;

use super::hot::HotCounts;

/// `touchMode` of `touch/meta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TouchMode {
    Idle,
    /// Before the first batch the original reports `fine`.
    #[default]
    Fine,
    Restricted,
    CoarseOnly,
}

impl TouchMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TouchMode::Idle => "idle",
            TouchMode::Fine => "fine",
            TouchMode::Restricted => "restricted",
            TouchMode::CoarseOnly => "coarseOnly",
        }
    }
}

/// Which fine keys a batch emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    /// Watch, membership and projected-field keys of each changed row.
    Key,
    /// One template key per template (degraded).
    Template,
}

/// What the processor does with one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPlan {
    pub emit_fine: bool,
    pub granularity: Granularity,
    /// Distinct fine keys the batch may emit (tokens already taken: give back what is
    /// not used with [`FineTokens::refund`]).
    pub fine_budget: u64,
    /// The budget was cut by the token bucket.
    pub token_limited: bool,
    pub coalesce_ms: u64,
    pub mode: TouchMode,
}

/// A stream's fine-touch token bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FineTokens {
    tokens: f64,
    last_refill_ms: Option<i64>,
}

impl Default for FineTokens {
    fn default() -> Self {
        FineTokens {
            tokens: f64::NAN,
            last_refill_ms: None,
        }
    }
}

impl FineTokens {
    /// Takes up to `wanted` tokens; returns how many were granted.
    fn reserve(&mut self, wanted: u64, cfg: &TouchConfig, now_ms: i64) -> u64 {
        let (rate, burst) = (
            cfg.fine_tokens_per_second as f64,
            cfg.fine_burst_tokens as f64,
        );
        if wanted == 0 {
            return 0;
        }
        if rate <= 0.0 || burst <= 0.0 {
            return 0;
        }
        match self.last_refill_ms {
            None => {
                self.tokens = burst;
                self.last_refill_ms = Some(now_ms);
            }
            Some(last) if now_ms > last => {
                self.tokens = (self.tokens + (now_ms - last) as f64 * rate / 1000.0).min(burst);
                self.last_refill_ms = Some(now_ms);
            }
            Some(_) => {}
        }
        let granted = (wanted as f64).min(self.tokens.floor()).max(0.0);
        self.tokens = (self.tokens - granted).max(0.0);
        granted as u64
    }

    /// Gives back the tokens of a batch that used `used` of its `granted` budget.
    pub fn refund(&mut self, granted: u64, used: u64, cfg: &TouchConfig) {
        if used < granted && self.last_refill_ms.is_some() {
            self.tokens = (self.tokens + (granted - used) as f64).min(cfg.fine_burst_tokens as f64);
        }
    }
}

/// A stream's planning state across batches.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Planner {
    degraded: bool,
    pub tokens: FineTokens,
}

impl Planner {
    /// The mode the next batch will run in for a fine wait arriving now: such a wait is
    /// fine demand itself, so only the lag guard (restricted) or a configuration without
    /// fine tokens (coarse only) keep it from fine keys. The original uses the mode of
    /// the last batch instead, which sends the first fine wait after a quiet period to
    /// table keys (woken by any change of the table).
    pub fn mode_for_fine_wait(&self, cfg: &TouchConfig) -> TouchMode {
        if self.degraded {
            TouchMode::Restricted
        } else if cfg.fine_tokens_per_second == 0
            || cfg.fine_burst_tokens == 0
            || cfg.fine_touch_budget_per_batch == 0
        {
            TouchMode::CoarseOnly
        } else {
            TouchMode::Fine
        }
    }

    /// Plans a batch that starts `lag` entries behind the tail.
    pub fn plan(&mut self, cfg: &TouchConfig, hot: &HotCounts, lag: u64, now_ms: i64) -> BatchPlan {
        let fine_demand = hot.fine_demand();
        let any_waiters = hot.any_waiters();
        self.degraded = fine_demand && {
            let degrade = cfg.lag_degrade_fine_touches_at_source_offsets;
            let recover = degrade.min(cfg.lag_recover_fine_touches_at_source_offsets);
            match (degrade, self.degraded) {
                (0, _) => false,
                (d, false) => lag >= d,
                (_, true) => lag > recover,
            }
        };
        let mut budget = match (fine_demand, self.degraded) {
            (false, _) => 0,
            (true, true) => cfg.lag_reserved_fine_touch_budget_per_batch,
            (true, false) => cfg.fine_touch_budget_per_batch,
        };
        let mut token_limited = false;
        if budget > 0 {
            let granted = self.tokens.reserve(budget, cfg, now_ms);
            token_limited = granted < budget;
            budget = granted;
        }
        let mut emit_fine = fine_demand && budget > 0;
        // Nobody could be woken by a fine key: coarse only is cheaper.
        if emit_fine
            && hot.keys() == 0
            && hot.templates() == 0
            && hot.broad_fine_waiters == 0
            && hot.key_filtering
            && !hot.template_filtering
        {
            emit_fine = false;
        }
        let granularity = if emit_fine && self.degraded {
            Granularity::Template
        } else {
            Granularity::Key
        };
        let mode = match (any_waiters, emit_fine, self.degraded) {
            (false, _, _) => TouchMode::Idle,
            (true, true, false) => TouchMode::Fine,
            (true, true, true) => TouchMode::Restricted,
            (true, false, _) => TouchMode::CoarseOnly,
        };
        BatchPlan {
            emit_fine,
            granularity,
            fine_budget: if emit_fine { budget } else { 0 },
            token_limited,
            coalesce_ms: coalesce_ms(cfg.memory.bucket_ms, lag, any_waiters),
            mode,
        }
    }
}

fn coalesce_ms(bucket_ms: u64, lag: u64, any_waiters: bool) -> u64 {
    let max = bucket_ms.max(1);
    match (any_waiters, lag) {
        (false, _) => max,
        (true, 0) => max.min(10),
        (true, 1..=5000) => max.min(50),
        (true, _) => max,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cfg() -> TouchConfig {
        TouchConfig::enabled_defaults()
    }

    fn hot(fine_waiters: u32, keys: usize) -> HotCounts {
        HotCounts {
            keys_active: keys,
            fine_waiters,
            key_filtering: true,
            ..HotCounts::default()
        }
    }

    #[test]
    fn no_waiters_is_idle_and_coarse() {
        let mut p = Planner::default();
        let b = p.plan(
            &cfg(),
            &HotCounts {
                key_filtering: true,
                ..HotCounts::default()
            },
            0,
            0,
        );
        assert_eq!(b.mode, TouchMode::Idle);
        assert!(!b.emit_fine);
        assert_eq!(b.fine_budget, 0);
        assert_eq!(b.coalesce_ms, 100);
    }

    #[test]
    fn fine_waiters_with_hot_keys_get_fine_touches() {
        let mut p = Planner::default();
        let b = p.plan(&cfg(), &hot(1, 3), 0, 0);
        assert_eq!(b.mode, TouchMode::Fine);
        assert!(b.emit_fine);
        assert_eq!(b.granularity, Granularity::Key);
        assert_eq!(b.fine_budget, 2000);
        assert_eq!(b.coalesce_ms, 10);
        assert_eq!(p.plan(&cfg(), &hot(1, 3), 10, 0).coalesce_ms, 50);
        assert_eq!(p.plan(&cfg(), &hot(1, 3), 5001, 0).coalesce_ms, 100);
    }

    #[test]
    fn a_fine_waiter_without_hot_keys_is_served_coarse() {
        // Its keys did not fit (over capacity) would turn filtering off; here filtering
        // is on and nothing is hot: no fine key could wake anyone.
        let mut p = Planner::default();
        let b = p.plan(&cfg(), &hot(1, 0), 0, 0);
        assert!(!b.emit_fine);
        assert_eq!(b.mode, TouchMode::CoarseOnly);
    }

    #[test]
    fn lag_degrades_with_hysteresis() {
        let mut p = Planner::default();
        let c = cfg();
        assert_eq!(p.plan(&c, &hot(1, 1), 4999, 0).mode, TouchMode::Fine);
        let b = p.plan(&c, &hot(1, 1), 5000, 0);
        assert_eq!(
            (b.mode, b.granularity, b.fine_budget),
            (TouchMode::Restricted, Granularity::Template, 200)
        );
        assert_eq!(p.plan(&c, &hot(1, 1), 1001, 0).mode, TouchMode::Restricted);
        assert_eq!(p.plan(&c, &hot(1, 1), 1000, 0).mode, TouchMode::Fine);
        // Without fine demand the guard resets.
        p.plan(&c, &hot(1, 1), 9000, 0);
        p.plan(
            &c,
            &HotCounts {
                coarse_waiters: 1,
                key_filtering: true,
                ..HotCounts::default()
            },
            9000,
            0,
        );
        assert_eq!(p.plan(&c, &hot(1, 1), 2000, 0).mode, TouchMode::Fine);
        // degrade = 0 disables the guard.
        let mut off = c.clone();
        off.lag_degrade_fine_touches_at_source_offsets = 0;
        assert_eq!(
            Planner::default().plan(&off, &hot(1, 1), 1_000_000, 0).mode,
            TouchMode::Fine
        );
    }

    #[test]
    fn a_fine_wait_expects_fine_keys_unless_degraded() {
        let mut p = Planner::default();
        let c = cfg();
        // The last batch ran for a coarse waiter only: coarse only, yet a fine wait now
        // makes the next batch fine.
        let coarse = HotCounts {
            coarse_waiters: 1,
            key_filtering: true,
            ..HotCounts::default()
        };
        assert_eq!(p.plan(&c, &coarse, 0, 0).mode, TouchMode::CoarseOnly);
        assert_eq!(p.mode_for_fine_wait(&c), TouchMode::Fine);
        p.plan(&c, &hot(1, 1), 6000, 0);
        assert_eq!(p.mode_for_fine_wait(&c), TouchMode::Restricted);
        let mut none = c.clone();
        none.fine_touch_budget_per_batch = 0;
        assert_eq!(
            Planner::default().mode_for_fine_wait(&none),
            TouchMode::CoarseOnly
        );
    }

    #[test]
    fn tokens_limit_the_budget_and_refill_over_time() {
        let mut c = cfg();
        c.fine_tokens_per_second = 1000;
        c.fine_burst_tokens = 3000;
        let mut p = Planner::default();
        assert_eq!(p.plan(&c, &hot(1, 1), 0, 0).fine_budget, 2000);
        let b = p.plan(&c, &hot(1, 1), 0, 0);
        assert_eq!((b.fine_budget, b.token_limited), (1000, true));
        let b = p.plan(&c, &hot(1, 1), 0, 0);
        assert_eq!(b.fine_budget, 0);
        assert!(!b.emit_fine && b.mode == TouchMode::CoarseOnly);
        // 500 ms refill 500 tokens.
        assert_eq!(p.plan(&c, &hot(1, 1), 0, 500).fine_budget, 500);
        // A batch that used 100 of 2000 gives 1900 back.
        let mut p = Planner::default();
        let b = p.plan(&c, &hot(1, 1), 0, 0);
        p.tokens.refund(b.fine_budget, 100, &c);
        assert_eq!(p.plan(&c, &hot(1, 1), 0, 0).fine_budget, 2000);
        let b = p.plan(&c, &hot(1, 1), 0, 0);
        assert_eq!(b.fine_budget, 900);
    }
}
