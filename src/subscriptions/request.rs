//! The reserved control routes under `/v1/stream/__ds/` and their request bodies.

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::Kind;
use crate::protocol::name::percent_decode;

/// Lease bounds and default (ms).
pub const MIN_LEASE_TTL_MS: u64 = 1_000;
pub const MAX_LEASE_TTL_MS: u64 = 600_000;
pub const DEFAULT_LEASE_TTL_MS: u64 = 30_000;

/// The first path segment reserved for control routes.
pub const RESERVED: &str = "__ds";

/// A control route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Jwks,
    Subscription {
        id: String,
        action: Action,
    },
    /// Under `__ds` but not a route (404 `SUBSCRIPTION_NOT_FOUND`).
    Unknown,
}

/// What of a subscription a route addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Base,
    Streams,
    /// One explicitly linked stream (decoded, normalized).
    Stream(String),
    Callback,
    Claim,
    Ack,
    Release,
}

/// Whether the raw (percent-encoded) remainder after `/v1/stream/` is a control route.
pub fn is_reserved(raw: &str) -> bool {
    raw == RESERVED || raw.starts_with("__ds/")
}

/// Parses a reserved remainder (see [`is_reserved`]).
pub fn parse_route(raw: &str) -> Route {
    let Some(rest) = raw.strip_prefix("__ds/") else {
        return Route::Unknown;
    };
    if rest == "jwks.json" {
        return Route::Jwks;
    }
    let Some(rest) = rest.strip_prefix("subscriptions/") else {
        return Route::Unknown;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let Some(id) = parts
        .first()
        .and_then(|p| decode(p))
        .filter(|s| !s.is_empty())
    else {
        return Route::Unknown;
    };
    let action = match &parts[1..] {
        [] => Action::Base,
        ["streams"] => Action::Streams,
        ["streams", path @ ..] => match decode(&path.join("/")) {
            Some(p) => Action::Stream(normalize(&p).to_string()),
            None => return Route::Unknown,
        },
        ["callback"] => Action::Callback,
        ["claim"] => Action::Claim,
        ["ack"] => Action::Ack,
        ["release"] => Action::Release,
        _ => return Route::Unknown,
    };
    Route::Subscription { id, action }
}

fn decode(s: &str) -> Option<String> {
    percent_decode(s)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

/// A stream path relative to the stream root: leading and trailing `/` removed.
pub fn normalize(path: &str) -> &str {
    path.trim_start_matches('/').trim_end_matches('/')
}

/// A create (`PUT …/subscriptions/:id`) body, validated and normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateInput {
    pub kind: Kind,
    pub pattern: Option<String>,
    /// Explicit streams, normalized, in request order (duplicates kept).
    pub streams: Vec<String>,
    pub webhook_url: Option<String>,
    pub wake_stream: Option<String>,
    pub lease_ttl_ms: u64,
    pub description: Option<String>,
}

impl CreateInput {
    /// sha256 (hex) of the canonical configuration: two creates with the same hash are
    /// the same subscription (idempotent re-confirm).
    pub fn config_hash(&self) -> String {
        let mut streams = self.streams.clone();
        streams.sort();
        streams.dedup();
        // serde_json keeps insertion order (preserve_order): the reference's key order.
        let mut canonical = serde_json::Map::new();
        canonical.insert("type".into(), self.kind.as_str().into());
        if let Some(p) = &self.pattern {
            canonical.insert("pattern".into(), p.clone().into());
        }
        canonical.insert("streams".into(), streams.into());
        if let Some(u) = &self.webhook_url {
            canonical.insert("webhook".into(), serde_json::json!({ "url": u }));
        }
        if let Some(w) = &self.wake_stream {
            canonical.insert("wake_stream".into(), w.clone().into());
        }
        canonical.insert("lease_ttl_ms".into(), self.lease_ttl_ms.into());
        if let Some(d) = &self.description {
            canonical.insert("description".into(), d.clone().into());
        }
        let text = Value::Object(canonical).to_string();
        Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

fn non_empty_str(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| !s.is_empty())
}

/// Parses a create body (already JSON); the error is the 400 `INVALID_REQUEST` message.
pub fn parse_create(v: &Value) -> Result<CreateInput, String> {
    let o = v.as_object().ok_or("Request body must be a JSON object")?;
    let kind = match o.get("type").and_then(Value::as_str) {
        Some("webhook") => Kind::Webhook,
        Some("pull-wake") => Kind::PullWake,
        _ => return Err(r#"type must be "webhook" or "pull-wake""#.into()),
    };
    let pattern = o
        .get("pattern")
        .and_then(non_empty_str)
        .map(|p| normalize(p).to_string());
    let streams = match o.get("streams") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|s| s.as_str().map(|s| normalize(s).to_string()))
            .collect::<Option<Vec<_>>>()
            .ok_or("streams must contain only strings")?,
        _ => Vec::new(),
    };
    if pattern.is_none() && streams.is_empty() {
        return Err("At least one of pattern or streams is required".into());
    }
    let lease_ttl_ms = match o.get("lease_ttl_ms") {
        None => DEFAULT_LEASE_TTL_MS,
        Some(n) => n
            .as_u64()
            .filter(|n| (MIN_LEASE_TTL_MS..=MAX_LEASE_TTL_MS).contains(n))
            .ok_or("lease_ttl_ms must be an integer from 1000 to 600000")?,
    };
    let webhook_url = match kind {
        Kind::Webhook => Some(
            o.get("webhook")
                .and_then(|w| w.get("url"))
                .and_then(non_empty_str)
                .ok_or("webhook subscriptions require webhook.url")?
                .to_string(),
        ),
        Kind::PullWake => None,
    };
    let wake_stream = o
        .get("wake_stream")
        .and_then(non_empty_str)
        .map(|w| normalize(w).to_string());
    if kind == Kind::PullWake && wake_stream.is_none() {
        return Err("pull-wake subscriptions require wake_stream".into());
    }
    Ok(CreateInput {
        kind,
        pattern,
        streams,
        webhook_url,
        wake_stream,
        lease_ttl_ms,
        description: o
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// Parses `{streams:[non-empty strings]}` (add explicit links).
pub fn parse_streams(v: &Value) -> Result<Vec<String>, String> {
    let msg = "streams must be a non-empty string array";
    let a = v.get("streams").and_then(Value::as_array).ok_or(msg)?;
    a.iter()
        .map(|s| non_empty_str(s).map(|s| normalize(s).to_string()))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| msg.to_string())
}

/// One acknowledgement: a linked stream and the offset processed up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub stream: String,
    pub offset: String,
}

/// A callback, ack or release body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WakeReply {
    pub wake_id: Option<String>,
    pub generation: Option<u64>,
    pub acks: Vec<Ack>,
    pub done: bool,
}

/// Parses a callback, ack or release body. Fields of the wrong type count as absent
/// (they then fence or fail the offset checks), as in the reference.
pub fn parse_reply(v: &Value) -> WakeReply {
    let acks = v
        .get("acks")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| Ack {
                    stream: normalize(
                        x.get("stream")
                            .or_else(|| x.get("path"))
                            .and_then(Value::as_str)
                            .unwrap_or_default(),
                    )
                    .to_string(),
                    offset: x
                        .get("offset")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    WakeReply {
        wake_id: v.get("wake_id").and_then(Value::as_str).map(str::to_string),
        generation: v.get("generation").and_then(Value::as_u64),
        acks,
        done: v.get("done").and_then(Value::as_bool) == Some(true),
    }
}

/// Parses a JSON body; an empty body is `{}`.
pub fn parse_json(body: &[u8]) -> Result<Value, String> {
    if body.is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(body).map_err(|_| "Invalid JSON body".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn routes() {
        assert!(is_reserved("__ds") && is_reserved("__ds/x") && !is_reserved("__dsx"));
        assert_eq!(parse_route("__ds/jwks.json"), Route::Jwks);
        assert_eq!(parse_route("__ds/nope"), Route::Unknown);
        assert_eq!(parse_route("__ds"), Route::Unknown);
        let sub = |id: &str, action| Route::Subscription {
            id: id.into(),
            action,
        };
        assert_eq!(
            parse_route("__ds/subscriptions/a%20b"),
            sub("a b", Action::Base)
        );
        assert_eq!(
            parse_route("__ds/subscriptions/a/streams"),
            sub("a", Action::Streams)
        );
        assert_eq!(
            parse_route("__ds/subscriptions/a/streams/manual%2Fb"),
            sub("a", Action::Stream("manual/b".into()))
        );
        assert_eq!(
            parse_route("__ds/subscriptions/a/streams/x/y/"),
            sub("a", Action::Stream("x/y".into()))
        );
        for (s, a) in [
            ("callback", Action::Callback),
            ("claim", Action::Claim),
            ("ack", Action::Ack),
            ("release", Action::Release),
        ] {
            assert_eq!(
                parse_route(&format!("__ds/subscriptions/a/{s}")),
                sub("a", a)
            );
        }
        assert_eq!(parse_route("__ds/subscriptions/a/other"), Route::Unknown);
        assert_eq!(parse_route("__ds/subscriptions/"), Route::Unknown);
    }

    #[test]
    fn create_bodies() {
        let ok = parse_create(&json!({
            "type": "webhook", "pattern": "/events/*/", "webhook": {"url": "http://localhost/h"},
            "streams": ["b", "/a/"], "description": "d"
        }))
        .unwrap();
        assert_eq!(ok.pattern.as_deref(), Some("events/*"));
        assert_eq!(ok.streams, ["b", "a"]);
        assert_eq!(ok.lease_ttl_ms, DEFAULT_LEASE_TTL_MS);
        for bad in [
            json!([]),
            json!({"type": "x", "pattern": "a"}),
            json!({"type": "webhook", "webhook": {"url": "http://localhost/"}}),
            json!({"type": "webhook", "pattern": "a"}),
            json!({"type": "pull-wake", "pattern": "a"}),
            json!({"type": "pull-wake", "pattern": "a", "wake_stream": "w", "lease_ttl_ms": 999}),
            json!({"type": "pull-wake", "pattern": "a", "wake_stream": "w", "lease_ttl_ms": 1.5}),
            json!({"type": "pull-wake", "streams": ["a", 1], "wake_stream": "w"}),
        ] {
            assert!(parse_create(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_config_hash_ignores_stream_order_and_duplicates() {
        let a = parse_create(
            &json!({"type": "pull-wake", "streams": ["x", "y", "x"], "wake_stream": "w"}),
        )
        .unwrap();
        let b =
            parse_create(&json!({"type": "pull-wake", "streams": ["y", "x"], "wake_stream": "w"}))
                .unwrap();
        let c = parse_create(&json!({"type": "pull-wake", "streams": ["y"], "wake_stream": "w"}))
            .unwrap();
        assert_eq!(a.config_hash(), b.config_hash());
        assert_ne!(a.config_hash(), c.config_hash());
    }

    #[test]
    fn replies() {
        let r = parse_reply(&json!({"wake_id": "w", "generation": 3, "done": true,
            "acks": [{"stream": "/a/", "offset": "o"}, {"path": "b", "offset": "p"}]}));
        assert_eq!(r.generation, Some(3));
        assert!(r.done);
        assert_eq!(r.acks[0].stream, "a");
        assert_eq!(r.acks[1].stream, "b");
        assert_eq!(parse_reply(&json!({})), WakeReply::default());
        assert!(parse_json(b"{").is_err());
        assert_eq!(parse_json(b"").unwrap(), json!({}));
    }
}
