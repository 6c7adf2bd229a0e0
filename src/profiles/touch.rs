//! Touch configuration of a state-protocol profile (`profile.touch`).
//!
//! Parsing follows the original's rules field by field, in the original's order (so the
//! first error reported is the same): unknown keys are rejected with
//! `<path>.<key> is not supported`; `enabled` is JavaScript truthiness; numeric fields go
//! through `Number(x)` (so `"100"` is accepted as 100 and `null` as 0) and then a range
//! check; an absent field takes its default. A disabled configuration keeps nothing but
//! `{"enabled":false}`: its other fields are neither validated nor stored.
//!
//! [`TouchConfig::to_json`] writes the fully defaulted form in the original's key order,
//! which is what the server stores in `stream_profiles` and returns from `/_profile`.
//!
//! The legacy form (0.1.0–0.1.2, `interpreter.touch` inside a schema registry) is parsed
//! by [`TouchConfig::parse_legacy`] with that release's rules: unknown keys are ignored,
//! four retired keys are rejected, and non-object `memory`/`templates` fall back to the
//! defaults.

use serde_json::{json, Map, Value};

use super::js;

/// What the touch processor does with an update that has no `old_value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnMissingBefore {
    /// Emit coarse table touches only (the default).
    #[default]
    Coarse,
    /// Compute fine touches from `value` only.
    SkipBefore,
    /// Stop processing the stream (strict debugging).
    Error,
}

impl OnMissingBefore {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            OnMissingBefore::Coarse => "coarse",
            OnMissingBefore::SkipBefore => "skipBefore",
            OnMissingBefore::Error => "error",
        }
    }
}

/// `touch.memory`: the in-memory touch journal.
#[derive(Debug, Clone, PartialEq)]
pub struct TouchMemoryConfig {
    /// Bucket duration; cursor generations advance on bucket flush. Default 100.
    pub bucket_ms: u64,
    /// Bloom filter size as a power of two, 10–30. Default 22.
    pub filter_pow2: u32,
    /// Hash positions per key, 1–8. Default 4.
    pub k: u32,
    /// Unique keys per bucket before the bucket becomes a broadcast. Default 100000.
    pub pending_max_keys: u64,
    /// Keys per wait indexed one by one, 1–1024. Default 32.
    pub key_index_max_keys: u32,
    /// Sliding TTL of hot fine keys. Default 10000.
    pub hot_key_ttl_ms: u64,
    /// Sliding TTL of hot templates. Default 10000.
    pub hot_template_ttl_ms: u64,
    /// Hot fine keys tracked per stream. Default 1000000.
    pub hot_max_keys: u64,
    /// Hot templates tracked per stream. Default 4096.
    pub hot_max_templates: u64,
}

impl Default for TouchMemoryConfig {
    fn default() -> Self {
        TouchMemoryConfig {
            bucket_ms: 100,
            filter_pow2: 22,
            k: 4,
            pending_max_keys: 100_000,
            key_index_max_keys: 32,
            hot_key_ttl_ms: 10_000,
            hot_template_ttl_ms: 10_000,
            hot_max_keys: 1_000_000,
            hot_max_templates: 4096,
        }
    }
}

/// `touch.templates`: template lifecycle. These fields accept any finite number in their
/// range (fractions included), as the original does.
#[derive(Debug, Clone, PartialEq)]
pub struct TouchTemplatesConfig {
    /// Sliding inactivity TTL, ≥ 0. Default 3600000.
    pub default_inactivity_ttl_ms: f64,
    /// Last-seen persistence interval, > 0. Default 300000.
    pub last_seen_persist_interval_ms: f64,
    /// Template GC interval, > 0. Default 60000.
    pub gc_interval_ms: f64,
    /// Active templates per entity, > 0. Default 256.
    pub max_active_templates_per_entity: f64,
    /// Active templates per stream, > 0. Default 2048.
    pub max_active_templates_per_stream: f64,
    /// Activations per minute, ≥ 0 (0 = unlimited). Default 100.
    pub activation_rate_limit_per_minute: f64,
}

impl Default for TouchTemplatesConfig {
    fn default() -> Self {
        TouchTemplatesConfig {
            default_inactivity_ttl_ms: 3_600_000.0,
            last_seen_persist_interval_ms: 300_000.0,
            gc_interval_ms: 60_000.0,
            max_active_templates_per_entity: 256.0,
            max_active_templates_per_stream: 2048.0,
            activation_rate_limit_per_minute: 100.0,
        }
    }
}

/// The touch configuration. When `enabled` is false every other field holds its default
/// and is neither stored nor returned.
///
/// `Default` is what the original makes of `{}`: disabled (see
/// [`TouchConfig::enabled_defaults`] for the enabled defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct TouchConfig {
    pub enabled: bool,
    /// At most one table touch per entity per interval, > 0. Default 100.
    pub coarse_interval_ms: f64,
    /// Fine-touch coalescing window, > 0. Default 100.
    pub touch_coalesce_window_ms: f64,
    pub on_missing_before: OnMissingBefore,
    /// Lag (source offsets) above which fine touches are suppressed. Default 5000.
    pub lag_degrade_fine_touches_at_source_offsets: u64,
    /// Lag at or below which fine touches come back. Default 1000.
    pub lag_recover_fine_touches_at_source_offsets: u64,
    /// Fine/template touches per processing batch. Default 2000.
    pub fine_touch_budget_per_batch: u64,
    /// Fine-touch token bucket refill rate. Default 200000.
    pub fine_tokens_per_second: u64,
    /// Fine-touch token bucket capacity. Default 400000.
    pub fine_burst_tokens: u64,
    /// Fine budget reserved for hot keys while lagging. Default 200.
    pub lag_reserved_fine_touch_budget_per_batch: u64,
    pub memory: TouchMemoryConfig,
    pub templates: TouchTemplatesConfig,
}

impl Default for TouchConfig {
    fn default() -> Self {
        let mut c = TouchConfig::enabled_defaults();
        c.enabled = false;
        c
    }
}

/// Which release's rules to parse with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rules {
    /// 0.1.3 and later (`/_profile`): strict keys.
    Profile,
    /// 0.1.0–0.1.2 (`interpreter.touch` in the schema registry).
    Legacy,
}

const TOP_KEYS: &[&str] = &[
    "enabled",
    "coarseIntervalMs",
    "touchCoalesceWindowMs",
    "onMissingBefore",
    "lagDegradeFineTouchesAtSourceOffsets",
    "lagRecoverFineTouchesAtSourceOffsets",
    "fineTouchBudgetPerBatch",
    "fineTokensPerSecond",
    "fineBurstTokens",
    "lagReservedFineTouchBudgetPerBatch",
    "memory",
    "templates",
];
const TEMPLATE_KEYS: &[&str] = &[
    "defaultInactivityTtlMs",
    "lastSeenPersistIntervalMs",
    "gcIntervalMs",
    "maxActiveTemplatesPerEntity",
    "maxActiveTemplatesPerStream",
    "activationRateLimitPerMinute",
];
const MEMORY_KEYS: &[&str] = &[
    "bucketMs",
    "filterPow2",
    "k",
    "pendingMaxKeys",
    "keyIndexMaxKeys",
    "hotKeyTtlMs",
    "hotTemplateTtlMs",
    "hotMaxKeys",
    "hotMaxTemplates",
];

/// `Number(x)` (or the default when absent), finite and satisfying `ok`.
fn number(
    obj: &Map<String, Value>,
    key: &str,
    default: f64,
    message: String,
    ok: impl Fn(f64) -> bool,
) -> Result<f64, String> {
    let n = obj.get(key).map_or(default, js::to_number);
    if n.is_finite() && ok(n) {
        Ok(n)
    } else {
        Err(message)
    }
}

/// As [`number`], and an integer. Values beyond `u64` saturate (the original keeps any
/// integral double).
fn integer(
    obj: &Map<String, Value>,
    key: &str,
    default: f64,
    message: String,
    ok: impl Fn(f64) -> bool,
) -> Result<u64, String> {
    let n = number(obj, key, default, message.clone(), ok)?;
    if js::is_integer(n) {
        Ok(n as u64)
    } else {
        Err(message)
    }
}

impl TouchConfig {
    /// Every field at its default, enabled.
    pub fn enabled_defaults() -> Self {
        TouchConfig {
            enabled: true,
            coarse_interval_ms: 100.0,
            touch_coalesce_window_ms: 100.0,
            on_missing_before: OnMissingBefore::Coarse,
            lag_degrade_fine_touches_at_source_offsets: 5000,
            lag_recover_fine_touches_at_source_offsets: 1000,
            fine_touch_budget_per_batch: 2000,
            fine_tokens_per_second: 200_000,
            fine_burst_tokens: 400_000,
            lag_reserved_fine_touch_budget_per_batch: 200,
            memory: TouchMemoryConfig::default(),
            templates: TouchTemplatesConfig::default(),
        }
    }

    /// Parses `raw` found at `path` (`profile.touch` in a profile update) with the
    /// current rules.
    pub fn parse(raw: &Value, path: &str) -> Result<TouchConfig, String> {
        Self::parse_with(raw, path, Rules::Profile)
    }

    /// Parses a 0.1.0–0.1.2 `interpreter.touch` with that release's rules (messages use
    /// the path `interpreter.touch`).
    pub fn parse_legacy(raw: &Value) -> Result<TouchConfig, String> {
        Self::parse_with(raw, "interpreter.touch", Rules::Legacy)
    }

    fn parse_with(raw: &Value, path: &str, rules: Rules) -> Result<TouchConfig, String> {
        let empty = Map::new();
        let obj = match (raw, rules) {
            (Value::Object(m), _) => m,
            // The legacy check was `!raw || typeof raw !== "object"`: arrays passed.
            (Value::Array(_), Rules::Legacy) => &empty,
            _ => return Err(format!("{path} must be an object")),
        };
        if rules == Rules::Profile {
            js::reject_unknown_keys(obj, TOP_KEYS, path)?;
        }
        if !obj.get("enabled").is_some_and(js::truthy) {
            return Ok(TouchConfig::default());
        }
        if rules == Rules::Legacy {
            if obj.contains_key("storage") {
                return Err(format!(
                    "{path}.storage is no longer supported; touch always uses the in-memory journal"
                ));
            }
            for retired in ["derivedStream", "retention"] {
                if obj.contains_key(retired) {
                    return Err(format!("{path}.{retired} is no longer supported"));
                }
            }
        }
        let d = TouchConfig::enabled_defaults();

        let coarse_interval_ms = number(
            obj,
            "coarseIntervalMs",
            d.coarse_interval_ms,
            format!("{path}.coarseIntervalMs must be > 0"),
            |n| n > 0.0,
        )?;
        let touch_coalesce_window_ms = number(
            obj,
            "touchCoalesceWindowMs",
            d.touch_coalesce_window_ms,
            format!("{path}.touchCoalesceWindowMs must be > 0"),
            |n| n > 0.0,
        )?;
        let on_missing_before = match obj.get("onMissingBefore") {
            None => OnMissingBefore::Coarse,
            Some(Value::String(s)) if s == "coarse" => OnMissingBefore::Coarse,
            Some(Value::String(s)) if s == "skipBefore" => OnMissingBefore::SkipBefore,
            Some(Value::String(s)) if s == "error" => OnMissingBefore::Error,
            Some(_) => {
                return Err(format!(
                    "{path}.onMissingBefore must be coarse|skipBefore|error"
                ))
            }
        };

        let templates_path = format!("{path}.templates");
        let templates = match (obj.get("templates"), rules) {
            (None, _) => &empty,
            (Some(Value::Object(m)), _) => m,
            (Some(_), Rules::Legacy) => &empty,
            (Some(_), Rules::Profile) => return Err(format!("{templates_path} must be an object")),
        };
        if rules == Rules::Profile {
            js::reject_unknown_keys(templates, TEMPLATE_KEYS, &templates_path)?;
        }
        let td = &d.templates;
        let tp = &templates_path;
        let templates_cfg = TouchTemplatesConfig {
            default_inactivity_ttl_ms: number(
                templates,
                "defaultInactivityTtlMs",
                td.default_inactivity_ttl_ms,
                format!("{tp}.defaultInactivityTtlMs must be >= 0"),
                |n| n >= 0.0,
            )?,
            last_seen_persist_interval_ms: number(
                templates,
                "lastSeenPersistIntervalMs",
                td.last_seen_persist_interval_ms,
                format!("{tp}.lastSeenPersistIntervalMs must be > 0"),
                |n| n > 0.0,
            )?,
            gc_interval_ms: number(
                templates,
                "gcIntervalMs",
                td.gc_interval_ms,
                format!("{tp}.gcIntervalMs must be > 0"),
                |n| n > 0.0,
            )?,
            max_active_templates_per_entity: number(
                templates,
                "maxActiveTemplatesPerEntity",
                td.max_active_templates_per_entity,
                format!("{tp}.maxActiveTemplatesPerEntity must be > 0"),
                |n| n > 0.0,
            )?,
            max_active_templates_per_stream: number(
                templates,
                "maxActiveTemplatesPerStream",
                td.max_active_templates_per_stream,
                format!("{tp}.maxActiveTemplatesPerStream must be > 0"),
                |n| n > 0.0,
            )?,
            activation_rate_limit_per_minute: number(
                templates,
                "activationRateLimitPerMinute",
                td.activation_rate_limit_per_minute,
                format!("{tp}.activationRateLimitPerMinute must be >= 0"),
                |n| n >= 0.0,
            )?,
        };

        if rules == Rules::Legacy && obj.contains_key("metrics") {
            return Err(format!(
                "{path}.metrics is not supported; live metrics are a global server feature"
            ));
        }

        let memory_path = format!("{path}.memory");
        let memory = match (obj.get("memory"), rules) {
            (None, _) => &empty,
            (Some(Value::Object(m)), _) => m,
            (Some(_), Rules::Legacy) => &empty,
            (Some(_), Rules::Profile) => return Err(format!("{memory_path} must be an object")),
        };
        if rules == Rules::Profile {
            js::reject_unknown_keys(memory, MEMORY_KEYS, &memory_path)?;
        }
        let md = &d.memory;
        let mp = &memory_path;
        let positive = |n: f64| n > 0.0;
        let memory_cfg = TouchMemoryConfig {
            bucket_ms: integer(
                memory,
                "bucketMs",
                md.bucket_ms as f64,
                format!("{mp}.bucketMs must be an integer > 0"),
                positive,
            )?,
            filter_pow2: integer(
                memory,
                "filterPow2",
                f64::from(md.filter_pow2),
                format!("{mp}.filterPow2 must be an integer in [10,30]"),
                |n| (10.0..=30.0).contains(&n),
            )? as u32,
            k: integer(
                memory,
                "k",
                f64::from(md.k),
                format!("{mp}.k must be an integer in [1,8]"),
                |n| (1.0..=8.0).contains(&n),
            )? as u32,
            pending_max_keys: integer(
                memory,
                "pendingMaxKeys",
                md.pending_max_keys as f64,
                format!("{mp}.pendingMaxKeys must be an integer > 0"),
                positive,
            )?,
            key_index_max_keys: integer(
                memory,
                "keyIndexMaxKeys",
                f64::from(md.key_index_max_keys),
                format!("{mp}.keyIndexMaxKeys must be an integer in [1,1024]"),
                |n| (1.0..=1024.0).contains(&n),
            )? as u32,
            hot_key_ttl_ms: integer(
                memory,
                "hotKeyTtlMs",
                md.hot_key_ttl_ms as f64,
                format!("{mp}.hotKeyTtlMs must be an integer > 0"),
                positive,
            )?,
            hot_template_ttl_ms: integer(
                memory,
                "hotTemplateTtlMs",
                md.hot_template_ttl_ms as f64,
                format!("{mp}.hotTemplateTtlMs must be an integer > 0"),
                positive,
            )?,
            hot_max_keys: integer(
                memory,
                "hotMaxKeys",
                md.hot_max_keys as f64,
                format!("{mp}.hotMaxKeys must be an integer > 0"),
                positive,
            )?,
            hot_max_templates: integer(
                memory,
                "hotMaxTemplates",
                md.hot_max_templates as f64,
                format!("{mp}.hotMaxTemplates must be an integer > 0"),
                positive,
            )?,
        };

        let non_negative = |n: f64| n >= 0.0;
        let lag_degrade = integer(
            obj,
            "lagDegradeFineTouchesAtSourceOffsets",
            d.lag_degrade_fine_touches_at_source_offsets as f64,
            format!("{path}.lagDegradeFineTouchesAtSourceOffsets must be an integer >= 0"),
            non_negative,
        )?;
        let lag_recover = integer(
            obj,
            "lagRecoverFineTouchesAtSourceOffsets",
            d.lag_recover_fine_touches_at_source_offsets as f64,
            format!("{path}.lagRecoverFineTouchesAtSourceOffsets must be an integer >= 0"),
            non_negative,
        )?;
        let budget = integer(
            obj,
            "fineTouchBudgetPerBatch",
            d.fine_touch_budget_per_batch as f64,
            format!("{path}.fineTouchBudgetPerBatch must be an integer >= 0"),
            non_negative,
        )?;
        let tokens = integer(
            obj,
            "fineTokensPerSecond",
            d.fine_tokens_per_second as f64,
            format!("{path}.fineTokensPerSecond must be an integer >= 0"),
            non_negative,
        )?;
        let burst = integer(
            obj,
            "fineBurstTokens",
            d.fine_burst_tokens as f64,
            format!("{path}.fineBurstTokens must be an integer >= 0"),
            non_negative,
        )?;
        let reserved = integer(
            obj,
            "lagReservedFineTouchBudgetPerBatch",
            d.lag_reserved_fine_touch_budget_per_batch as f64,
            format!("{path}.lagReservedFineTouchBudgetPerBatch must be an integer >= 0"),
            non_negative,
        )?;

        Ok(TouchConfig {
            enabled: true,
            coarse_interval_ms,
            touch_coalesce_window_ms,
            on_missing_before,
            lag_degrade_fine_touches_at_source_offsets: lag_degrade,
            lag_recover_fine_touches_at_source_offsets: lag_recover,
            fine_touch_budget_per_batch: budget,
            fine_tokens_per_second: tokens,
            fine_burst_tokens: burst,
            lag_reserved_fine_touch_budget_per_batch: reserved,
            memory: memory_cfg,
            templates: templates_cfg,
        })
    }

    /// The stored and returned form: `{"enabled":false}` when disabled, otherwise every
    /// field in the original's order.
    pub fn to_json(&self) -> Value {
        if !self.enabled {
            return json!({ "enabled": false });
        }
        let m = &self.memory;
        let t = &self.templates;
        let n = js::number_value;
        json!({
            "enabled": true,
            "coarseIntervalMs": n(self.coarse_interval_ms),
            "touchCoalesceWindowMs": n(self.touch_coalesce_window_ms),
            "onMissingBefore": self.on_missing_before.as_str(),
            "lagDegradeFineTouchesAtSourceOffsets": self.lag_degrade_fine_touches_at_source_offsets,
            "lagRecoverFineTouchesAtSourceOffsets": self.lag_recover_fine_touches_at_source_offsets,
            "fineTouchBudgetPerBatch": self.fine_touch_budget_per_batch,
            "fineTokensPerSecond": self.fine_tokens_per_second,
            "fineBurstTokens": self.fine_burst_tokens,
            "lagReservedFineTouchBudgetPerBatch": self.lag_reserved_fine_touch_budget_per_batch,
            "memory": {
                "bucketMs": m.bucket_ms,
                "filterPow2": m.filter_pow2,
                "k": m.k,
                "pendingMaxKeys": m.pending_max_keys,
                "keyIndexMaxKeys": m.key_index_max_keys,
                "hotKeyTtlMs": m.hot_key_ttl_ms,
                "hotTemplateTtlMs": m.hot_template_ttl_ms,
                "hotMaxKeys": m.hot_max_keys,
                "hotMaxTemplates": m.hot_max_templates,
            },
            "templates": {
                "defaultInactivityTtlMs": n(t.default_inactivity_ttl_ms),
                "lastSeenPersistIntervalMs": n(t.last_seen_persist_interval_ms),
                "gcIntervalMs": n(t.gc_interval_ms),
                "maxActiveTemplatesPerEntity": n(t.max_active_templates_per_entity),
                "maxActiveTemplatesPerStream": n(t.max_active_templates_per_stream),
                "activationRateLimitPerMinute": n(t.activation_rate_limit_per_minute),
            },
        })
    }
}
