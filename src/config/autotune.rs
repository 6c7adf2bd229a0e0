//! `--auto-tune`: memory presets that fill in knobs the environment leaves unset.

use super::knobs::{self as k, Knob};
use super::{ConfigError, Env};

/// The memory presets of `--auto-tune`, in MiB.
pub const AUTO_TUNE_PRESETS: &[u64] = &[64, 128, 256, 512, 1024, 2048, 4096, 8192];

/// The preset local mode always applies (the original's fixed local budget).
pub const LOCAL_AUTO_TUNE_PRESET_MB: u64 = 1024;

/// What `--auto-tune` chose: the preset and, per variable, the value and whether it came
/// from the preset (false: set explicitly in the environment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoTune {
    pub budget_mb: u64,
    pub preset_mb: u64,
    pub values: Vec<(&'static str, String, bool)>,
}

impl AutoTune {
    /// The variables a preset sets, for a preset of `p` MiB.
    pub fn preset_values(p: u64) -> Vec<(&'static str, u64)> {
        let mb = 1u64 << 20;
        let values: [(Knob, u64); 7] = [
            (k::DS_SEGMENT_CACHE_MAX_BYTES, p / 4 * mb),
            // At least the largest body (`DS_APPEND_MAX_BODY_BYTES`, 10 MiB by default).
            (k::DS_INGEST_MAX_QUEUE_BYTES, (p / 16).max(16) * mb),
            (k::DS_INGEST_MAX_BATCH_BYTES, (p / 64).max(1) * mb),
            (k::DS_INGEST_MAX_QUEUE_REQS, p * 100),
            (k::DS_SEGMENT_FOOTER_CACHE_ENTRIES, p * 4),
            (k::DS_READ_CONNECTIONS, (p / 256).clamp(2, 16)),
            (k::DS_UPLOAD_CONCURRENCY, (p / 512).clamp(1, 16)),
        ];
        values.iter().map(|(knob, v)| (knob.name, *v)).collect()
    }

    /// Chooses the largest preset not above the budget (`0` = a quarter of the machine's
    /// memory) and returns the environment with the preset's values filled in where the
    /// variable is not set.
    pub fn apply(budget_mb: u64, env: &Env) -> Result<(Env, AutoTune), ConfigError> {
        let budget_mb = if budget_mb == 0 {
            crate::telemetry::process::total_memory_mb().map_or(1024, |m| m / 4)
        } else {
            budget_mb
        };
        let preset_mb = AUTO_TUNE_PRESETS
            .iter()
            .copied()
            .filter(|p| *p <= budget_mb)
            .max()
            .ok_or_else(|| {
                ConfigError(format!(
                    "--auto-tune needs at least {} MB, got {budget_mb}",
                    AUTO_TUNE_PRESETS[0]
                ))
            })?;
        let mut out = env.clone();
        let mut values = Vec::new();
        for (key, v) in AutoTune::preset_values(preset_mb) {
            match env.get(key) {
                Some(explicit) => values.push((key, explicit.to_string(), false)),
                None => {
                    out.set(key, v.to_string());
                    values.push((key, v.to_string(), true));
                }
            }
        }
        Ok((
            out,
            AutoTune {
                budget_mb,
                preset_mb,
                values,
            },
        ))
    }

    /// One line describing the choice, for stderr.
    pub fn describe(&self) -> String {
        let vals: Vec<String> = self
            .values
            .iter()
            .map(|(k, v, preset)| format!("{k}={v}{}", if *preset { "" } else { " (env)" }))
            .collect();
        format!(
            "auto-tune: budget {} MB, preset {} MB: {}",
            self.budget_mb,
            self.preset_mb,
            vals.join(" ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Limits;

    #[test]
    fn auto_tune_scales_with_the_budget_and_explicit_values_win() {
        let env = Env::from_pairs([("DS_READ_CONNECTIONS", "3")]);
        let (small_env, small) = AutoTune::apply(300, &env).unwrap();
        let (big_env, big) = AutoTune::apply(5000, &env).unwrap();
        assert_eq!((small.preset_mb, big.preset_mb), (256, 4096));
        let small_l = Limits::from_env(&small_env).unwrap();
        let big_l = Limits::from_env(&big_env).unwrap();
        assert!(small_l.ingest_max_queue_bytes < big_l.ingest_max_queue_bytes);
        assert!(small_l.ingest_max_batch_bytes < big_l.ingest_max_batch_bytes);
        assert_eq!(
            (small_l.read_connections, big_l.read_connections),
            (3, 3),
            "env wins"
        );
        assert!(small.describe().contains("DS_READ_CONNECTIONS=3 (env)"));
        assert!(AutoTune::apply(10, &env).is_err());
    }
}
