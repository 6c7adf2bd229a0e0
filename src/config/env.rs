//! [`Env`]: a snapshot of the environment and the parsers that turn a knob's value (or its
//! default from the knob table) into a setting.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;

use super::knobs::{self, DefaultValue, Knob};
use super::ConfigError;

/// A snapshot of the environment, so parsing is testable without touching the process.
#[derive(Debug, Clone, Default)]
pub struct Env(HashMap<String, String>);

impl Env {
    pub fn from_process() -> Env {
        Env(std::env::vars().collect())
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Env {
        Env(pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    /// A set, non-empty (after trimming) value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    /// Sets a variable (`--auto-tune` fills in its preset this way).
    pub(super) fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }

    /// The tracing filter: `DS_LOG`, else `RUST_LOG`, else the default of `DS_LOG`.
    pub fn log_filter(&self) -> String {
        match self.get(knobs::DS_LOG.name) {
            Some(v) => v.to_string(),
            None => self
                .get(knobs::RUST_LOG.name)
                .map_or_else(|| self.text(&knobs::DS_LOG).to_string(), str::to_string),
        }
    }

    /// `DS_LOG_DIR` (+ `DS_LOG_ROTATION` daily|hourly|minutely|never, `DS_LOG_MAX_FILES`):
    /// rolling log files, if asked for.
    pub fn log_files(&self) -> Result<Option<crate::telemetry::LogFiles>, ConfigError> {
        use tracing_appender::rolling::Rotation;
        let Some(dir) = self.get(knobs::DS_LOG_DIR.name) else {
            return Ok(None);
        };
        let rotation = match self.text(&knobs::DS_LOG_ROTATION) {
            "daily" => Rotation::DAILY,
            "hourly" => Rotation::HOURLY,
            "minutely" => Rotation::MINUTELY,
            "never" => Rotation::NEVER,
            other => {
                return Err(ConfigError(format!(
                    "DS_LOG_ROTATION must be daily, hourly, minutely or never, got {other:?}"
                )))
            }
        };
        Ok(Some(crate::telemetry::LogFiles {
            dir: PathBuf::from(dir),
            rotation,
            max_files: self.positive(&knobs::DS_LOG_MAX_FILES)?,
        }))
    }

    /// `PRISMA_STREAMS_UPDATE_API`: the GitHub API base for `self-update` (tests and
    /// mirrors point it elsewhere).
    pub fn update_api(&self) -> String {
        self.text(&knobs::PRISMA_STREAMS_UPDATE_API)
            .trim_end_matches('/')
            .to_string()
    }

    /// `PRISMA_STREAMS_MANAGED_BY`: set to `npm` by the npm wrappers.
    pub fn managed_by(&self) -> Option<&str> {
        self.get(knobs::PRISMA_STREAMS_MANAGED_BY.name)
    }

    /// `DS_*` variables that are not in the knob table.
    pub fn unknown_ds_vars(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .0
            .keys()
            .filter(|k| k.starts_with("DS_") && knobs::find(k).is_none())
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// The values of variables that must all be set; the error names every missing one.
    pub fn require(&self, keys: &[&str]) -> Result<Vec<String>, ConfigError> {
        let missing: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| self.get(k).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(ConfigError(format!(
                "missing environment variables: {}",
                missing.join(", ")
            )));
        }
        Ok(keys
            .iter()
            .filter_map(|k| self.get(k))
            .map(str::to_string)
            .collect())
    }

    /// The knob's value, else its literal default (`""` when it has none).
    pub(super) fn text(&self, knob: &Knob) -> &str {
        match (self.get(knob.name), knob.default) {
            (Some(v), _) => v,
            (None, DefaultValue::Literal(d)) => d,
            (None, _) => "",
        }
    }

    /// A non-negative integer knob.
    pub(super) fn num<T: FromStr>(&self, knob: &Knob) -> Result<T, ConfigError> {
        let v = self.text(knob);
        v.parse::<T>().map_err(|_| {
            ConfigError(format!(
                "{} must be a non-negative integer, got {v:?}",
                knob.name
            ))
        })
    }

    /// A positive integer knob.
    pub(super) fn positive<T: FromStr + Default + PartialEq>(
        &self,
        knob: &Knob,
    ) -> Result<T, ConfigError> {
        let v: T = self.num(knob)?;
        if v == T::default() {
            return Err(ConfigError(format!("{} must be greater than 0", knob.name)));
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_ds_vars_are_listed() {
        let env = Env::from_pairs([("DS_NOPE", "1"), ("DS_ROOT", "/x"), ("HOME", "/")]);
        assert_eq!(env.unknown_ds_vars(), vec!["DS_NOPE".to_string()]);
    }

    #[test]
    fn unset_and_empty_take_the_table_default_and_bad_values_name_the_variable() {
        let env = Env::from_pairs([("DS_READ_MAX_BYTES", " "), ("DS_EXPIRY_SWEEP_LIMIT", "x")]);
        assert_eq!(
            env.num::<usize>(&knobs::DS_READ_MAX_BYTES).unwrap(),
            1 << 20
        );
        let e = env.num::<usize>(&knobs::DS_EXPIRY_SWEEP_LIMIT).unwrap_err();
        assert!(e.0.starts_with("DS_EXPIRY_SWEEP_LIMIT must be"), "{e}");
        let zero = Env::from_pairs([("DS_READ_CONNECTIONS", "0")]);
        assert!(zero.positive::<usize>(&knobs::DS_READ_CONNECTIONS).is_err());
        assert_eq!(Env::default().log_filter(), "info");
        assert_eq!(
            Env::from_pairs([("RUST_LOG", "debug")]).log_filter(),
            "debug"
        );
        assert_eq!(
            Env::default().update_api(),
            "https://api.github.com".to_string()
        );
    }
}
