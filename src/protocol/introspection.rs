//! Vocabulary of the introspection routes (`/_details`, `/_index_status`): the
//! conditional long-poll parameters, the weak ETag of a details body, and the decimal
//! position strings of listings.
//!
//! - `live`: absent, empty, `false` or `0` answer at once; `long-poll`, `true` or `1`
//!   wait for a change when `If-None-Match` names the current ETag. Anything else is a
//!   400 (`invalid live mode`), as in the original.
//! - `timeout` (or `timeout_ms` when `timeout` is absent): milliseconds as digits, or a
//!   duration `<digits>(ms|s|m|h|d)` such as `30s` (what Prisma Studio sends). The
//!   default is 3 s; longer waits are capped at [`MAX_WAIT`] (the client then simply
//!   polls again after a 304).

use std::time::Duration;

use sha2::{Digest as _, Sha256};

/// How long a details long-poll waits when `timeout` is not given.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(3);
/// The longest a details long-poll waits, whatever `timeout` asks for.
pub const MAX_WAIT: Duration = Duration::from_secs(120);

/// How a details request wants to be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetailsWait {
    /// Answer with the current state (or 304 when `If-None-Match` matches it).
    Now,
    /// Wait up to this long for the state to differ from `If-None-Match`.
    LongPoll(Duration),
}

/// Why the parameters were rejected (the messages are the original's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DetailsParamError {
    #[error("invalid live mode")]
    Live,
    #[error("invalid timeout")]
    Timeout,
}

impl DetailsWait {
    /// Parses `live` and `timeout` / `timeout_ms`. The timeout is checked even without
    /// `live`, as the original does.
    pub fn parse(
        live: Option<&str>,
        timeout: Option<&str>,
        timeout_ms: Option<&str>,
    ) -> Result<DetailsWait, DetailsParamError> {
        let long_poll = match live.unwrap_or("") {
            "" | "false" | "0" => false,
            "long-poll" | "true" | "1" => true,
            _ => return Err(DetailsParamError::Live),
        };
        let wait = match timeout.or(timeout_ms).filter(|t| !t.is_empty()) {
            None => DEFAULT_WAIT,
            Some(t) => parse_wait(t).ok_or(DetailsParamError::Timeout)?,
        };
        Ok(if long_poll {
            DetailsWait::LongPoll(wait.min(MAX_WAIT))
        } else {
            DetailsWait::Now
        })
    }
}

/// `123` (milliseconds) or `<digits>(ms|s|m|h|d)`; `None` for anything else.
fn parse_wait(v: &str) -> Option<Duration> {
    let v = v.trim();
    let digits = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    if digits == 0 {
        return None;
    }
    // Saturate: a huge number only means "wait as long as allowed".
    let n: u64 = v[..digits].parse().unwrap_or(u64::MAX);
    let unit_ms: u64 = match &v[digits..] {
        "" | "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    Some(Duration::from_millis(n.saturating_mul(unit_ms)))
}

/// The weak ETag of a details body: `W/"<namespace>:<40 hex digits>"` (a SHA-256 prefix
/// of the body; clients treat it as opaque).
pub fn weak_etag(namespace: &str, body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest[..20].iter().map(|b| format!("{b:02x}")).collect();
    format!("W/\"{namespace}:{hex}\"")
}

/// Whether an `If-None-Match` value names `etag` (one tag or a comma-separated list).
/// `*` is not special: a long-poll on it could never see a change.
pub fn none_match_hits(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|t| t == etag)
}

/// A position as the listings write it: a decimal string, `-1` for "none" (positions
/// are below `2^63`, so the conversion is exact).
pub fn through(end_exclusive: u64) -> String {
    (end_exclusive as i128 - 1).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(live: Option<&str>, t: Option<&str>) -> Result<DetailsWait, DetailsParamError> {
        DetailsWait::parse(live, t, None)
    }

    #[test]
    fn live_modes_and_timeouts_parse_as_the_original_does() {
        assert_eq!(p(None, None), Ok(DetailsWait::Now));
        for v in ["", "false", "0"] {
            assert_eq!(p(Some(v), None), Ok(DetailsWait::Now), "{v}");
        }
        for v in ["long-poll", "true", "1"] {
            assert_eq!(
                p(Some(v), None),
                Ok(DetailsWait::LongPoll(DEFAULT_WAIT)),
                "{v}"
            );
        }
        for v in ["sse", "LONG-POLL", "yes"] {
            assert_eq!(p(Some(v), None), Err(DetailsParamError::Live), "{v}");
        }
        let lp = |t: &str| p(Some("long-poll"), Some(t));
        assert_eq!(
            lp("250"),
            Ok(DetailsWait::LongPoll(Duration::from_millis(250)))
        );
        assert_eq!(lp("0"), Ok(DetailsWait::LongPoll(Duration::ZERO)));
        assert_eq!(
            lp("30s"),
            Ok(DetailsWait::LongPoll(Duration::from_secs(30)))
        );
        assert_eq!(
            lp("15ms"),
            Ok(DetailsWait::LongPoll(Duration::from_millis(15)))
        );
        assert_eq!(lp("2m"), Ok(DetailsWait::LongPoll(MAX_WAIT)));
        assert_eq!(lp("1d"), Ok(DetailsWait::LongPoll(MAX_WAIT)));
        assert_eq!(
            lp("99999999999999999999999"),
            Ok(DetailsWait::LongPoll(MAX_WAIT))
        );
        assert_eq!(lp(""), Ok(DetailsWait::LongPoll(DEFAULT_WAIT)));
        for bad in ["abc", "-1", "1.5", "s", "10x", "1 s", "+5"] {
            assert_eq!(lp(bad), Err(DetailsParamError::Timeout), "{bad}");
        }
        // Checked without `live` too; `timeout_ms` is the fallback name.
        assert_eq!(p(None, Some("abc")), Err(DetailsParamError::Timeout));
        assert_eq!(
            DetailsWait::parse(Some("1"), None, Some("5")),
            Ok(DetailsWait::LongPoll(Duration::from_millis(5)))
        );
        assert_eq!(
            DetailsWait::parse(Some("1"), Some("7"), Some("bad")),
            Ok(DetailsWait::LongPoll(Duration::from_millis(7)))
        );
    }

    #[test]
    fn etags_are_weak_stable_and_matched_in_lists() {
        let a = weak_etag("details", b"{}");
        assert_eq!(a, weak_etag("details", b"{}"));
        assert_ne!(a, weak_etag("details", b"{ }"));
        assert_ne!(a, weak_etag("index_status", b"{}"));
        assert!(a.starts_with("W/\"details:") && a.ends_with('"'));
        assert_eq!(a.len(), "W/\"details:\"".len() + 40);
        assert!(none_match_hits(&a, &a));
        assert!(none_match_hits(&format!("\"x\", {a}"), &a));
        assert!(!none_match_hits("*", &a));
        assert!(!none_match_hits("W/\"details:00\"", &a));
    }

    #[test]
    fn positions_are_decimal_with_minus_one_for_none() {
        assert_eq!(through(0), "-1");
        assert_eq!(through(1), "0");
        assert_eq!(through(8), "7");
    }
}
