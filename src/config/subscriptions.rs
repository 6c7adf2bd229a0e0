//! [`SubscriptionSettings`]: webhook delivery of Durable Streams subscriptions.

use super::knobs as k;
use super::{ConfigError, Env};

/// How subscriptions deliver webhooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionSettings {
    /// `DS_WEBHOOKS`: webhook subscriptions may be created (pull-wake always works).
    pub webhooks: bool,
    /// Local mode: webhooks only to `http://localhost` / `http://127.x.x.x`.
    pub loopback_only: bool,
    /// `DS_WEBHOOK_TIMEOUT_MS`: one delivery attempt (connect, send, response).
    pub timeout_ms: u64,
    /// `DS_WEBHOOK_CONCURRENCY`: deliveries in flight at once.
    pub concurrency: usize,
    /// `DS_WEBHOOK_RETRY_BASE_MS`: delay before the first retry (doubles, ±20% jitter).
    pub retry_base_ms: u64,
    /// `DS_WEBHOOK_RETRY_MAX_MS`: longest delay between retries.
    pub retry_max_ms: u64,
}

impl SubscriptionSettings {
    pub fn from_env(env: &Env) -> Result<SubscriptionSettings, ConfigError> {
        let webhooks = match env.text(&k::DS_WEBHOOKS) {
            "1" | "true" => true,
            "0" | "false" => false,
            other => {
                return Err(ConfigError(format!(
                    "DS_WEBHOOKS must be 0 or 1, got {other:?}"
                )))
            }
        };
        Ok(SubscriptionSettings {
            webhooks,
            loopback_only: false,
            timeout_ms: env.positive(&k::DS_WEBHOOK_TIMEOUT_MS)?,
            concurrency: env.positive(&k::DS_WEBHOOK_CONCURRENCY)?,
            retry_base_ms: env.positive(&k::DS_WEBHOOK_RETRY_BASE_MS)?,
            retry_max_ms: env.positive(&k::DS_WEBHOOK_RETRY_MAX_MS)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_switch() {
        let d = SubscriptionSettings::from_env(&Env::default()).unwrap();
        assert!(d.webhooks && !d.loopback_only);
        assert_eq!((d.retry_base_ms, d.retry_max_ms), (1000, 60_000));
        let off = SubscriptionSettings::from_env(&Env::from_pairs([("DS_WEBHOOKS", "0")])).unwrap();
        assert!(!off.webhooks);
        assert!(SubscriptionSettings::from_env(&Env::from_pairs([("DS_WEBHOOKS", "x")])).is_err());
    }
}
