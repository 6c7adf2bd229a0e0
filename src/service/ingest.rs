//! What a stream's profile and schema registry do to an append (0.1.11 notes §1.2 and
//! §2.3), in the original's order, per record: the profile prepares the record (checks
//! it, or rewrites it into its canonical form), the current schema validates it, then its
//! routing key is chosen. The first failing record fails the whole request with 400 and
//! nothing is stored.
//!
//! Routing key precedence: the registry's `routingKey` pointer when one is configured (a
//! `Stream-Key` header is then refused), else the `Stream-Key` header, else the key the
//! profile derives (metrics, evlog, otel-traces).

use bytes::Bytes;
use serde_json::Value;

use super::settings::StreamSettings;
use super::{ServiceError, ServiceResult};
use crate::lens::pointer;
use crate::profiles::Profile;
use crate::protocol::{content_type, json};
use crate::schema::RoutingKey;

/// The entries of an append, as they are to be stored, and the routing key of each.
#[derive(Debug, Default)]
pub(crate) struct Shaped {
    pub entries: Vec<Bytes>,
    pub keys: Vec<Option<Bytes>>,
}

fn bad(msg: impl Into<String>) -> ServiceError {
    ServiceError::BadRequest(msg.into())
}

/// Shapes an append body sent with `request_type` under `settings`. `Ok(None)`: the
/// settings change nothing for this request (store it as the protocol frames it).
pub(crate) fn shape(
    settings: &StreamSettings,
    body: &Bytes,
    request_type: &str,
    stream_key: Option<&str>,
    now_ms: i64,
) -> ServiceResult<Option<Shaped>> {
    let registry = &settings.registry;
    if !content_type::is_json(request_type) {
        if registry.current_version() > 0 {
            return Err(bad("stream requires JSON"));
        }
        return Ok(None);
    }
    let messages = json::split_messages(body, false).map_err(|e| bad(e.to_string()))?;
    let pointer = registry.routing_key();
    // An empty header counts as none here (the original tests it for truthiness).
    if pointer.is_some() && stream_key.is_some_and(|k| !k.is_empty()) {
        return Err(bad("Stream-Key not allowed when routingKey is configured"));
    }
    let segments = pointer.map(RoutingKey::segments);
    // Profiles that rewrite records store their canonical form; the others keep the
    // request's bytes (the same JSON value).
    let rewrites = matches!(
        settings.profile,
        Profile::Metrics | Profile::Evlog(_) | Profile::OtelTraces(_)
    );
    let header_key = stream_key.map(|k| Bytes::copy_from_slice(k.as_bytes()));
    let mut out = Shaped {
        entries: Vec::with_capacity(messages.len()),
        keys: Vec::with_capacity(messages.len()),
    };
    for raw in messages {
        let value: Value =
            serde_json::from_slice(&raw).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        let value = settings
            .profile
            .prepare_record(value, now_ms)
            .map_err(bad)?;
        if let Some(v) = &settings.validator {
            v.validate(&value).map_err(bad)?;
        }
        let key = match (&segments, pointer) {
            (Some(segments), Some(rk)) => extract_key(&value, segments, rk)?,
            _ => match &header_key {
                Some(k) => Some(k.clone()),
                None => settings
                    .profile
                    .derived_routing_key(&value)
                    .map(|k| Bytes::from(k.into_bytes())),
            },
        };
        let entry = if rewrites {
            Bytes::from(serde_json::to_vec(&value).map_err(|e| bad(e.to_string()))?)
        } else {
            raw
        };
        out.entries.push(entry);
        out.keys.push(key);
    }
    Ok(Some(out))
}

/// The routing key a record carries at the registry's pointer.
fn extract_key(
    value: &Value,
    segments: &[String],
    rk: &RoutingKey,
) -> ServiceResult<Option<Bytes>> {
    match pointer::get(value, segments) {
        None if rk.required => Err(bad("routing key missing")),
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(Bytes::copy_from_slice(s.as_bytes()))),
        Some(_) => Err(bad("routing key must be string")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::schema::{apply_update, Registry};
    use std::sync::Arc;

    fn settings(profile: Profile, update: Option<&str>) -> StreamSettings {
        let mut registry = Registry::default_for("s");
        if let Some(u) = update {
            registry = apply_update(&registry, u.as_bytes(), 0, &|_| Ok(())).unwrap();
        }
        let validator = registry
            .current_schema()
            .map(|s| Arc::new(crate::schema::CompiledSchema::compile(s).unwrap()));
        StreamSettings {
            profile,
            registry,
            validator,
            config_gen: 1,
        }
    }

    fn run(s: &StreamSettings, body: &str, key: Option<&str>) -> ServiceResult<Option<Shaped>> {
        shape(
            s,
            &Bytes::copy_from_slice(body.as_bytes()),
            "application/json",
            key,
            0,
        )
    }

    const KEYED: &str = r#"{"schema":{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]},"routingKey":{"jsonPointer":"/id","required":true}}"#;

    #[test]
    fn routing_key_comes_from_the_pointer() {
        let s = settings(Profile::Generic, Some(KEYED));
        let out = run(&s, r#"[{"id":"a"},{"id":"b"}]"#, None)
            .unwrap()
            .unwrap();
        assert_eq!(
            out.keys,
            vec![
                Some(Bytes::from_static(b"a")),
                Some(Bytes::from_static(b"b"))
            ]
        );
        assert_eq!(&out.entries[0][..], br#"{"id":"a"}"#);
    }

    #[test]
    fn header_is_refused_when_the_pointer_is_configured() {
        let s = settings(Profile::Generic, Some(KEYED));
        let e = run(&s, r#"{"id":"a"}"#, Some("k")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Stream-Key not allowed when routingKey is configured"
        );
    }

    #[test]
    fn an_empty_header_is_no_header_when_the_pointer_is_configured() {
        let s = settings(Profile::Generic, Some(KEYED));
        let out = run(&s, r#"{"id":"a"}"#, Some("")).unwrap().unwrap();
        assert_eq!(out.keys, vec![Some(Bytes::from_static(b"a"))]);
    }

    #[test]
    fn validation_fails_the_whole_request() {
        let s = settings(Profile::Generic, Some(KEYED));
        let e = run(&s, r#"[{"id":"a"},{"id":1}]"#, None).unwrap_err();
        assert_eq!(e.to_string(), "must be string");
    }

    #[test]
    fn missing_and_non_string_keys() {
        let optional = r#"{"routingKey":{"jsonPointer":"/k","required":false}}"#;
        let s = settings(Profile::Generic, Some(optional));
        let out = run(&s, r#"[{"x":1},{"k":"v"}]"#, None).unwrap().unwrap();
        assert_eq!(out.keys, vec![None, Some(Bytes::from_static(b"v"))]);
        let e = run(&s, r#"{"k":null}"#, None).unwrap_err();
        assert_eq!(e.to_string(), "routing key must be string");
        let required = r#"{"routingKey":{"jsonPointer":"/k","required":true}}"#;
        let s = settings(Profile::Generic, Some(required));
        let e = run(&s, r#"{"x":1}"#, None).unwrap_err();
        assert_eq!(e.to_string(), "routing key missing");
    }

    #[test]
    fn header_key_applies_without_a_pointer() {
        let s = settings(Profile::StateProtocol { touch: None }, None);
        let body = r#"{"type":"t","key":"1","value":{},"headers":{"operation":"insert"}}"#;
        let out = run(&s, body, Some("h")).unwrap().unwrap();
        assert_eq!(out.keys, vec![Some(Bytes::from_static(b"h"))]);
        let e = run(&s, r#"{"type":"t","key":1}"#, None).unwrap_err();
        assert!(matches!(e, ServiceError::BadRequest(_)));
    }

    #[test]
    fn non_json_requests() {
        let s = settings(Profile::Generic, Some(KEYED));
        let e = shape(&s, &Bytes::from_static(b"x"), "text/plain", None, 0).unwrap_err();
        assert_eq!(e.to_string(), "stream requires JSON");
        let s = settings(Profile::Generic, None);
        assert!(shape(&s, &Bytes::from_static(b"x"), "text/plain", None, 0)
            .unwrap()
            .is_none());
    }
}
