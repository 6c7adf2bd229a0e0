//! Durable Streams subscriptions (PROTOCOL.md §6–7), the pure part: the subscription
//! record and its wake state, stream links, glob patterns ([`glob`]), webhook signing and
//! callback tokens ([`crypto`]), webhook target rules ([`target`]) and the control routes
//! and bodies ([`request`]). The service keeps the records (`service::subscriptions`),
//! the engine stores them (`engine::db::subscriptions`).
//!
//! Offsets inside a record are stream positions: a link's acknowledged position is the
//! stream's next position when everything before it was processed, [`BEFORE_FIRST`] for
//! a stream linked on its first append (nothing processed). On the wire they are the
//! protocol's offsets (`"-1"` for [`BEFORE_FIRST`]), so `has_pending` is `tail > acked`.

pub mod crypto;
pub mod glob;
pub mod request;
pub mod target;

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::protocol::offset::Offset;

/// The acknowledged position of a stream linked on its first append.
pub const BEFORE_FIRST: i64 = -1;

/// A subscription's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The server POSTs each wake to a URL.
    Webhook,
    /// The server appends each wake to a stream; workers claim it.
    PullWake,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Webhook => "webhook",
            Kind::PullWake => "pull-wake",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "webhook" => Some(Kind::Webhook),
            "pull-wake" => Some(Kind::PullWake),
            _ => None,
        }
    }
}

/// How a stream is linked (both at once is possible).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub explicit: bool,
    pub glob: bool,
    /// Acknowledged position ([`BEFORE_FIRST`]: nothing).
    pub acked: i64,
}

/// The wake in flight and the delivery bookkeeping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WakeState {
    /// Incremented by every new wake; tokens carry it (fencing).
    pub generation: u64,
    pub wake_id: Option<String>,
    /// The tails when the wake was created (auto-acked by a webhook's `{done:true}`).
    pub snapshot: Vec<(String, u64)>,
    /// The pull-wake worker holding the wake.
    pub holder: Option<String>,
    /// When the lease of the wake runs out (Unix ms): set when a worker claims it or a
    /// webhook receiver accepts it, extended by every valid callback or ack.
    pub lease_expires_at_ms: Option<i64>,
    /// Webhook: the receiver answered 2xx for the current wake.
    pub delivered: bool,
    /// Webhook: failed deliveries since the last success.
    pub retry_count: u32,
    /// Webhook: when the next attempt is due (Unix ms), while undelivered.
    pub next_attempt_at_ms: Option<i64>,
    /// Webhook: the last delivery failed.
    pub failed: bool,
}

/// One subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub kind: Kind,
    pub pattern: Option<String>,
    pub webhook_url: Option<String>,
    pub wake_stream: Option<String>,
    pub lease_ttl_ms: u64,
    pub description: Option<String>,
    pub config_hash: String,
    /// `scheme://host` of the request that created it: the base of callback URLs.
    pub base_url: String,
    pub created_at_ms: i64,
    pub links: BTreeMap<String, Link>,
    pub wake: WakeState,
}

/// A linked stream as a wake describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    pub path: String,
    pub explicit: bool,
    pub acked: i64,
    pub tail: u64,
}

impl StreamInfo {
    pub fn has_pending(&self) -> bool {
        i64::try_from(self.tail).unwrap_or(i64::MAX) > self.acked
    }

    fn link_type(&self) -> &'static str {
        if self.explicit {
            "explicit"
        } else {
            "glob"
        }
    }

    /// `{path, link_type, acked_offset, tail_offset, has_pending}`.
    pub fn to_json(&self) -> Value {
        json!({
            "path": self.path,
            "link_type": self.link_type(),
            "acked_offset": offset_text(self.acked),
            "tail_offset": Offset::at(self.tail).encode(),
            "has_pending": self.has_pending(),
        })
    }
}

/// The wire form of an acknowledged position.
pub fn offset_text(acked: i64) -> String {
    match u64::try_from(acked) {
        Ok(p) => Offset::at(p).encode(),
        Err(_) => "-1".to_string(),
    }
}

/// `min(base·2^(n-1), max)` ms: the delay before retry `n` (n ≥ 1), before jitter.
pub fn backoff_ms(n: u32, base_ms: u64, max_ms: u64) -> u64 {
    let shift = n.saturating_sub(1).min(40);
    base_ms.saturating_mul(1u64 << shift).min(max_ms)
}

impl Subscription {
    /// The linked streams with their tails (`tail_of` gives a stream's next position; 0
    /// for a missing stream), by path.
    pub fn infos(&self, tail_of: impl Fn(&str) -> u64) -> Vec<StreamInfo> {
        self.links
            .iter()
            .map(|(path, l)| StreamInfo {
                path: path.clone(),
                explicit: l.explicit,
                acked: l.acked,
                tail: tail_of(path),
            })
            .collect()
    }

    /// Adds a link (or a link type to an existing link, keeping its position). Returns
    /// whether anything changed.
    pub fn link(&mut self, path: &str, explicit: bool, acked: i64) -> bool {
        match self.links.get_mut(path) {
            Some(l) => {
                let before = *l;
                if explicit {
                    l.explicit = true;
                } else {
                    l.glob = true;
                }
                before != *l
            }
            None => {
                self.links.insert(
                    path.to_string(),
                    Link {
                        explicit,
                        glob: !explicit,
                        acked,
                    },
                );
                true
            }
        }
    }

    /// Whether a wake is in flight or held (no new wake may start).
    pub fn busy(&self) -> bool {
        self.wake.wake_id.is_some() || self.wake.holder.is_some()
    }

    /// Starts a wake: next generation, `wake_id`, and the tails as its snapshot. A
    /// webhook wake is due for delivery at `now_ms`.
    pub fn begin_wake(&mut self, wake_id: String, infos: &[StreamInfo], now_ms: i64) {
        let w = &mut self.wake;
        w.generation += 1;
        w.wake_id = Some(wake_id);
        w.snapshot = infos.iter().map(|i| (i.path.clone(), i.tail)).collect();
        w.holder = None;
        w.lease_expires_at_ms = None;
        w.delivered = false;
        w.next_attempt_at_ms = (self.kind == Kind::Webhook).then_some(now_ms);
    }

    /// Ends the wake in flight (done, released, or its lease ran out).
    pub fn end_wake(&mut self) {
        let w = &mut self.wake;
        w.wake_id = None;
        w.snapshot.clear();
        w.holder = None;
        w.lease_expires_at_ms = None;
        w.delivered = false;
        w.next_attempt_at_ms = None;
    }

    /// Acknowledges the snapshot's tails (a webhook's `{done:true}`); returns the paths
    /// whose position moved.
    pub fn ack_snapshot(&mut self) -> Vec<String> {
        let mut moved = Vec::new();
        for (path, tail) in &self.wake.snapshot {
            if let Some(l) = self.links.get_mut(path) {
                let t = i64::try_from(*tail).unwrap_or(i64::MAX);
                if t > l.acked {
                    l.acked = t;
                    moved.push(path.clone());
                }
            }
        }
        moved
    }

    /// The JSON a create or `GET` answers (`jwks_url` from the request's base URL).
    pub fn to_json(&self, infos: &[StreamInfo], kid: &str, base_url: &str) -> Value {
        let mut o = serde_json::Map::new();
        o.insert("id".into(), self.id.clone().into());
        o.insert("subscription_id".into(), self.id.clone().into());
        o.insert("type".into(), self.kind.as_str().into());
        if let Some(p) = &self.pattern {
            o.insert("pattern".into(), p.clone().into());
        }
        let streams: Vec<Value> = infos
            .iter()
            .map(|i| {
                json!({
                    "path": i.path,
                    "link_type": i.link_type(),
                    "acked_offset": offset_text(i.acked),
                })
            })
            .collect();
        o.insert("streams".into(), streams.into());
        if let Some(u) = &self.webhook_url {
            o.insert(
                "webhook".into(),
                json!({
                    "url": u,
                    "signing": {
                        "alg": "ed25519",
                        "kid": kid,
                        "jwks_url": format!("{base_url}/v1/stream/__ds/jwks.json"),
                    }
                }),
            );
        }
        if let Some(w) = &self.wake_stream {
            o.insert("wake_stream".into(), w.clone().into());
        }
        o.insert("lease_ttl_ms".into(), self.lease_ttl_ms.into());
        o.insert(
            "created_at".into(),
            crate::protocol::headers::format_rfc3339_ms(self.created_at_ms).into(),
        );
        o.insert(
            "status".into(),
            if self.wake.failed { "failed" } else { "active" }.into(),
        );
        if let Some(d) = &self.description {
            o.insert("description".into(), d.clone().into());
        }
        Value::Object(o)
    }

    /// The URL of one of the subscription's actions (`callback`, ...).
    pub fn action_url(&self, action: &str) -> String {
        format!(
            "{}/v1/stream/__ds/subscriptions/{}/{action}",
            self.base_url,
            encode_segment(&self.id)
        )
    }
}

/// Percent-encodes a path segment as JavaScript's `encodeURIComponent` does.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub() -> Subscription {
        Subscription {
            id: "s 1".into(),
            kind: Kind::Webhook,
            pattern: Some("events/*".into()),
            webhook_url: Some("http://localhost/h".into()),
            wake_stream: None,
            lease_ttl_ms: 1000,
            description: None,
            config_hash: "h".into(),
            base_url: "http://127.0.0.1:1".into(),
            created_at_ms: 0,
            links: BTreeMap::new(),
            wake: WakeState::default(),
        }
    }

    #[test]
    fn pending_is_tail_beyond_acked() {
        let mut s = sub();
        assert!(s.link("events/a", false, BEFORE_FIRST));
        assert!(s.link("events/b", true, 3));
        assert!(!s.link("events/b", true, 0));
        assert!(s.link("events/b", false, 0));
        let infos = s.infos(|p| if p == "events/a" { 0 } else { 3 });
        assert!(
            infos[0].has_pending(),
            "a stream linked before its first entry"
        );
        assert!(!infos[1].has_pending());
        assert_eq!(infos[0].to_json()["acked_offset"], "-1");
        assert_eq!(infos[1].to_json()["link_type"], "explicit");
    }

    #[test]
    fn wakes_bump_the_generation_and_done_acks_the_snapshot() {
        let mut s = sub();
        s.link("events/a", false, BEFORE_FIRST);
        let infos = s.infos(|_| 5);
        s.begin_wake("w_1".into(), &infos, 10);
        assert_eq!(s.wake.generation, 1);
        assert!(s.busy());
        assert_eq!(s.wake.next_attempt_at_ms, Some(10));
        assert_eq!(s.ack_snapshot(), ["events/a"]);
        assert_eq!(s.links["events/a"].acked, 5);
        s.end_wake();
        assert!(!s.busy());
        assert_eq!(s.wake.generation, 1);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff_ms(1, 1000, 60_000), 1000);
        assert_eq!(backoff_ms(2, 1000, 60_000), 2000);
        assert_eq!(backoff_ms(7, 1000, 60_000), 60_000);
        assert_eq!(backoff_ms(99, 1000, 60_000), 60_000);
    }

    #[test]
    fn serialization_hides_secrets_and_builds_urls() {
        let s = sub();
        let v = s.to_json(&[], "ds_k", "http://h:1");
        assert_eq!(
            v["webhook"]["signing"]["jwks_url"],
            "http://h:1/v1/stream/__ds/jwks.json"
        );
        assert!(v.get("webhook_secret").is_none());
        assert_eq!(v["status"], "active");
        assert_eq!(
            s.action_url("callback"),
            "http://127.0.0.1:1/v1/stream/__ds/subscriptions/s%201/callback"
        );
    }
}
