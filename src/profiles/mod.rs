//! Stream profiles (`/_profile`): what a stream's records mean, and what the server does
//! with them. Pure: no I/O, no clock (callers pass the time where a profile needs it).
//!
//! | kind | configuration | on JSON append | routing key |
//! |---|---|---|---|
//! | `generic` (default) | none | nothing | none |
//! | `state-protocol` | optional `touch` ([`TouchConfig`]) | validated ([`validate_state_protocol`]), stored unchanged | none |
//! | `metrics` | none | normalised to a canonical interval | `seriesKey` |
//! | `evlog` | redaction, correlation, paired traces stream | normalised to a canonical event | `requestId`, else `traceId` |
//! | `otel-traces` | redaction, limits, storage choices, modes, paired events stream | normalised to a canonical span | `traceId` |
//!
//! Every kind but `generic` requires an `application/json` stream. Installing `evlog`
//! or `otel-traces` on a stream that already holds data of another profile is refused
//! ([`Profile::check_install`]). Installing `evlog`, `metrics` or `otel-traces` also
//! replaces the stream's schema registry with the profile's own
//! ([`Profile::default_registry`], built in [`registries`]).
//!
//! Forms:
//! - update body: `{"apiVersion"?: "durable.streams/profile/v1", "profile": {...}}`,
//!   parsed by [`parse_update`] with the original's strict validation and messages;
//! - stored and returned: [`Profile::to_json`] (state-protocol with the fully defaulted
//!   touch configuration), read back by [`Profile::from_stored`];
//! - resource: [`response`], `{"apiVersion": …, "profile": …}`;
//! - legacy (0.1.0–0.1.2): the registry's `interpreter`, converted by
//!   [`from_legacy_interpreter`].

pub mod evlog;
pub(crate) mod js;
pub mod metrics;
pub mod otel_traces;
pub mod registries;
pub mod state_protocol;
pub mod touch;

use serde_json::{json, Value};

pub use evlog::{EvlogCorrelation, EvlogProfile};
pub use otel_traces::OtelTracesProfile;
pub use state_protocol::{
    validate_state_protocol, ChangeRecord, ControlKind, ControlRecord, Operation, StateRecord,
};
pub use touch::{OnMissingBefore, TouchConfig, TouchMemoryConfig, TouchTemplatesConfig};

pub use js::{is_date_time_string, parse_rfc3339_ms};
pub use registries::INTERNAL_METRICS_STREAM;

/// `apiVersion` of profile resources.
pub const API_VERSION: &str = "durable.streams/profile/v1";

/// The supported kinds, in the order the original lists them in messages.
pub const KINDS: &[&str] = &[
    "evlog",
    "generic",
    "metrics",
    "otel-traces",
    "state-protocol",
];

/// `apiVersion` of a 0.1.0–0.1.2 registry's `interpreter`.
pub const LEGACY_INTERPRETER_API_VERSION: &str = "durable.streams/stream-interpreter/v1";
/// The only `interpreter.format` there was.
pub const LEGACY_STATE_PROTOCOL_FORMAT: &str = "durable.streams/state-protocol/v1";

/// A stream's profile.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Profile {
    #[default]
    Generic,
    /// `touch` is `None` when the profile was installed without a `touch` object (which
    /// the original stores and returns as just `{"kind":"state-protocol"}`).
    StateProtocol {
        touch: Option<TouchConfig>,
    },
    Metrics,
    Evlog(EvlogProfile),
    OtelTraces(OtelTracesProfile),
}

/// Parses a `POST /_profile` body for a stream of `stream_content_type`.
pub fn parse_update(body: &[u8], stream_content_type: &str) -> Result<Profile, String> {
    // Decoded as the original's runtime decodes request text: lossy UTF-8, BOM dropped.
    let text = String::from_utf8_lossy(body);
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
    let body: Value =
        serde_json::from_str(text).map_err(|_| "profile update must be valid JSON".to_string())?;
    let Value::Object(envelope) = &body else {
        return Err("profile update must be a JSON object".into());
    };
    js::reject_unknown_keys(envelope, &["apiVersion", "profile"], "profileUpdate")?;
    if envelope
        .get("apiVersion")
        .is_some_and(|v| v != &Value::from(API_VERSION))
    {
        return Err("invalid profile apiVersion".into());
    }
    let raw = envelope.get("profile").ok_or("missing profile")?;
    let profile = Profile::parse(raw, "profile")?;
    if profile.kind() != "generic" && !crate::protocol::content_type::is_json(stream_content_type) {
        return Err(format!(
            "{} profile requires application/json stream content-type",
            profile.kind()
        ));
    }
    Ok(profile)
}

/// The profile resource returned by `GET`/`POST /_profile`.
pub fn response(profile: &Profile) -> Value {
    json!({ "apiVersion": API_VERSION, "profile": profile.to_json() })
}

/// Converts a 0.1.0–0.1.2 schema registry's `interpreter` into the profile it stands
/// for: a state-protocol profile when touch is enabled, `None` otherwise (an interpreter
/// without enabled touch had no effect). Validation follows that release's rules and
/// messages.
pub fn from_legacy_interpreter(interpreter: &Value) -> Result<Option<Profile>, String> {
    let obj = match interpreter {
        Value::Object(o) => o,
        // The old check was `!raw || typeof raw !== "object"`: arrays passed it.
        Value::Array(_) => return Ok(None),
        _ => return Err("interpreter must be an object".into()),
    };
    if obj.get("apiVersion") != Some(&Value::from(LEGACY_INTERPRETER_API_VERSION)) {
        return Err("invalid interpreter apiVersion".into());
    }
    if obj
        .get("format")
        .is_some_and(|f| f != &Value::from(LEGACY_STATE_PROTOCOL_FORMAT))
    {
        return Err(format!(
            "interpreter.format must be {LEGACY_STATE_PROTOCOL_FORMAT}"
        ));
    }
    if obj.contains_key("variants") {
        return Err(
            "interpreter.variants is not supported (State Protocol is the only supported format)"
                .into(),
        );
    }
    let Some(raw) = obj.get("touch") else {
        return Ok(None);
    };
    let touch = TouchConfig::parse_legacy(raw)?;
    Ok(touch
        .enabled
        .then_some(Profile::StateProtocol { touch: Some(touch) }))
}

impl Profile {
    /// The kind's wire name.
    pub fn kind(&self) -> &'static str {
        match self {
            Profile::Generic => "generic",
            Profile::StateProtocol { .. } => "state-protocol",
            Profile::Metrics => "metrics",
            Profile::Evlog(_) => "evlog",
            Profile::OtelTraces(_) => "otel-traces",
        }
    }

    /// The profile a stream has when its row names `kind` but no configuration is
    /// stored (`None` or `""` is generic).
    pub fn default_for_kind(kind: Option<&str>) -> Result<Profile, String> {
        match kind.unwrap_or("") {
            "" | "generic" => Ok(Profile::Generic),
            "state-protocol" => Ok(Profile::StateProtocol { touch: None }),
            "metrics" => Ok(Profile::Metrics),
            "evlog" => Ok(Profile::Evlog(EvlogProfile::default())),
            "otel-traces" => Ok(Profile::OtelTraces(OtelTracesProfile::default())),
            other => Err(format!("unknown stream profile: {other}")),
        }
    }

    /// Whether the kind keeps its configuration in `stream_profiles` (the others are
    /// fully described by `streams.profile`).
    pub fn uses_stored_row(&self) -> bool {
        matches!(
            self,
            Profile::StateProtocol { .. } | Profile::Evlog(_) | Profile::OtelTraces(_)
        )
    }

    /// Validates a `profile` object found at `path`.
    pub fn parse(raw: &Value, path: &str) -> Result<Profile, String> {
        let Value::Object(obj) = raw else {
            return Err(format!("{path} must be an object"));
        };
        let kind = match obj.get("kind") {
            Some(Value::String(s)) => js::trim(s),
            _ => "",
        };
        if kind.is_empty() {
            return Err(format!("{path}.kind must be a non-empty string"));
        }
        // The kind is looked up trimmed but each kind's validator compares it exactly.
        let exact = |want: &str| -> Result<(), String> {
            if obj.get("kind") == Some(&Value::from(want)) {
                Ok(())
            } else {
                Err(format!("{path}.kind must be {want}"))
            }
        };
        match kind {
            "generic" => {
                exact("generic")?;
                js::reject_unknown_keys(obj, &["kind"], path)?;
                Ok(Profile::Generic)
            }
            "metrics" => {
                exact("metrics")?;
                js::reject_unknown_keys(obj, &["kind"], path)?;
                Ok(Profile::Metrics)
            }
            "state-protocol" => {
                exact("state-protocol")?;
                js::reject_unknown_keys(obj, &["kind", "touch"], path)?;
                let touch = match obj.get("touch") {
                    None => None,
                    Some(t) => Some(TouchConfig::parse(t, &format!("{path}.touch"))?),
                };
                Ok(Profile::StateProtocol { touch })
            }
            "evlog" => Ok(Profile::Evlog(EvlogProfile::parse(raw, path)?)),
            "otel-traces" => Ok(Profile::OtelTraces(OtelTracesProfile::parse(raw, path)?)),
            _ => Err(format!("{path}.kind must be {}", KINDS.join("|"))),
        }
    }

    /// The stored and returned form.
    pub fn to_json(&self) -> Value {
        match self {
            Profile::Generic => json!({ "kind": "generic" }),
            Profile::Metrics => json!({ "kind": "metrics" }),
            Profile::StateProtocol { touch: None } => json!({ "kind": "state-protocol" }),
            Profile::StateProtocol { touch: Some(t) } => {
                json!({ "kind": "state-protocol", "touch": t.to_json() })
            }
            Profile::Evlog(p) => p.to_json(),
            Profile::OtelTraces(p) => p.to_json(),
        }
    }

    /// Reads a stored profile (`stream_profiles.profile_json`, parsed) back; the stored
    /// form is re-validated, as the original does on every read.
    pub fn from_stored(stored: &Value) -> Result<Profile, String> {
        Profile::parse(stored, "profile")
    }

    /// The profile of a stream from its row: `kind` is `streams.profile` and `stored`
    /// the text of its `stream_profiles` row, if any (only read for kinds that keep one).
    pub fn load(kind: Option<&str>, stored: Option<&str>) -> Result<Profile, String> {
        let default = Profile::default_for_kind(kind)?;
        match stored {
            Some(text) if default.uses_stored_row() => {
                let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
                let p = Profile::from_stored(&v)?;
                if p.kind() == default.kind() {
                    Ok(p)
                } else {
                    Err(format!("profile.kind must be {}", default.kind()))
                }
            }
            _ => Ok(default),
        }
    }

    /// The enabled touch configuration, if this is a state-protocol profile with touch
    /// on (touch routes answer 404 `touch not enabled` otherwise).
    pub fn touch_config(&self) -> Option<&TouchConfig> {
        match self {
            Profile::StateProtocol { touch: Some(t) } if t.enabled => Some(t),
            _ => None,
        }
    }

    /// Refuses installing this profile over a stream holding data of another profile
    /// (`current_kind` is `streams.profile`), for the kinds whose records must all be
    /// normalised: evlog and otel-traces. Call after [`parse_update`].
    pub fn check_install(
        &self,
        current_kind: Option<&str>,
        next_offset: u64,
    ) -> Result<(), String> {
        match self {
            Profile::Evlog(_) | Profile::OtelTraces(_)
                if current_kind != Some(self.kind()) && next_offset > 0 =>
            {
                Err(format!(
                    "{} profile must be installed before appending data",
                    self.kind()
                ))
            }
            _ => Ok(()),
        }
    }

    /// What the profile makes of one record appended to a JSON stream, before schema
    /// validation: state-protocol validates and keeps it; metrics, evlog and
    /// otel-traces normalise it; generic keeps it. `now_ms` (Unix milliseconds) stamps
    /// evlog events and spans that carry no time.
    pub fn prepare_record(&self, record: Value, now_ms: i64) -> Result<Value, String> {
        match self {
            Profile::Generic => Ok(record),
            Profile::StateProtocol { .. } => {
                validate_state_protocol(&record)?;
                Ok(record)
            }
            Profile::Metrics => metrics::normalize(record),
            Profile::Evlog(p) => p.normalize(record, now_ms),
            Profile::OtelTraces(p) => p.normalize(record, now_ms),
        }
    }

    /// The routing key the profile derives for a record already passed through
    /// [`Profile::prepare_record`] (used when neither a schema routing key nor a
    /// `Stream-Key` header applies).
    pub fn derived_routing_key(&self, record: &Value) -> Option<String> {
        match self {
            Profile::Generic | Profile::StateProtocol { .. } => None,
            Profile::Metrics => metrics::routing_key(record),
            Profile::Evlog(_) => evlog::routing_key(record),
            Profile::OtelTraces(_) => otel_traces::routing_key(record),
        }
    }

    /// The schema registry that installing this profile on `stream` puts in place of the
    /// stream's current one: `None` for `generic` and `state-protocol` (which leave the
    /// registry alone); for `metrics`, `evlog` and `otel-traces` the profile's registry
    /// as the original stores it (version 1 from offset 0, the canonical record schema,
    /// the profile's search configuration, and for metrics the routing key `/seriesKey`;
    /// on [`INTERNAL_METRICS_STREAM`] metrics installs the schema alone).
    ///
    /// The registry is loaded through [`crate::schema::Registry::parse`]; `None` is also
    /// returned when that loader refuses it, which only happens for a stream name that is
    /// blank after trimming (the loader requires a non-blank `schema`).
    pub fn default_registry(&self, stream: &str) -> Option<crate::schema::Registry> {
        registries::build(self, stream)?.ok()
    }
}

#[cfg(test)]
mod tests;
