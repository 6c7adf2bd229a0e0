//! Parsing of the protocol's request header values. Functions take the raw header value
//! (already known to be visible ASCII or rejected by the HTTP layer) and return typed
//! values or a message for a 400.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Header names used by the protocol (lower case, as HTTP/1.1 header maps store them).
pub mod names {
    pub const STREAM_NEXT_OFFSET: &str = "stream-next-offset";
    pub const STREAM_UP_TO_DATE: &str = "stream-up-to-date";
    pub const STREAM_CLOSED: &str = "stream-closed";
    pub const STREAM_CURSOR: &str = "stream-cursor";
    pub const STREAM_TTL: &str = "stream-ttl";
    pub const STREAM_EXPIRES_AT: &str = "stream-expires-at";
    pub const STREAM_SEQ: &str = "stream-seq";
    pub const STREAM_FORKED_FROM: &str = "stream-forked-from";
    pub const STREAM_FORK_OFFSET: &str = "stream-fork-offset";
    pub const STREAM_FORK_SUB_OFFSET: &str = "stream-fork-sub-offset";
    pub const PRODUCER_ID: &str = "producer-id";
    pub const PRODUCER_EPOCH: &str = "producer-epoch";
    pub const PRODUCER_SEQ: &str = "producer-seq";
    pub const PRODUCER_EXPECTED_SEQ: &str = "producer-expected-seq";
    pub const PRODUCER_RECEIVED_SEQ: &str = "producer-received-seq";
    pub const SSE_DATA_ENCODING: &str = "stream-sse-data-encoding";
}

/// Largest producer epoch or sequence number (2^53 - 1, as in the protocol).
pub const MAX_PRODUCER_NUMBER: u64 = (1 << 53) - 1;

/// `Stream-Closed` counts only when its value is `true` (case-insensitive).
pub fn is_true(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// A plain non-negative decimal integer without sign or leading zeros (`0` itself is fine).
pub fn parse_canonical_uint(v: &str) -> Option<u64> {
    let ok =
        !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && (v == "0" || !v.starts_with('0'));
    if ok {
        v.parse().ok()
    } else {
        None
    }
}

/// `Stream-TTL`: seconds as a canonical decimal integer.
pub fn parse_ttl(v: &str) -> Result<u64, String> {
    parse_canonical_uint(v.trim()).ok_or_else(|| format!("invalid Stream-TTL: {v:?}"))
}

/// `Stream-Expires-At`: an RFC 3339 timestamp, returned as Unix milliseconds.
pub fn parse_expires_at(v: &str) -> Result<i64, String> {
    let t = OffsetDateTime::parse(v.trim(), &Rfc3339)
        .map_err(|_| format!("invalid Stream-Expires-At: {v:?}"))?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| format!("invalid Stream-Expires-At: {v:?}"))
}

/// Formats Unix milliseconds as RFC 3339 with millisecond precision, in UTC.
pub fn format_rfc3339_ms(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// The idempotent-producer header set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Producer {
    pub id: String,
    pub epoch: u64,
    pub seq: u64,
}

/// Parses `Producer-Id`/`-Epoch`/`-Seq`: all three or none.
pub fn parse_producer(
    id: Option<&str>,
    epoch: Option<&str>,
    seq: Option<&str>,
) -> Result<Option<Producer>, String> {
    match (id, epoch, seq) {
        (None, None, None) => Ok(None),
        (Some(id), Some(epoch), Some(seq)) => {
            if id.trim().is_empty() {
                return Err("invalid Producer-Id".into());
            }
            let num = |v: &str, what: &str| {
                v.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| {
                        *n <= MAX_PRODUCER_NUMBER && v.trim().bytes().all(|b| b.is_ascii_digit())
                    })
                    .ok_or_else(|| format!("invalid {what}: {v:?}"))
            };
            Ok(Some(Producer {
                id: id.to_string(),
                epoch: num(epoch, "Producer-Epoch")?,
                seq: num(seq, "Producer-Seq")?,
            }))
        }
        _ => Err("Producer-Id, Producer-Epoch and Producer-Seq must be sent together".into()),
    }
}

/// `Stream-Seq`: an opaque non-empty token compared byte-wise.
pub fn parse_stream_seq(v: &str) -> Result<Vec<u8>, String> {
    let t = v.trim();
    if t.is_empty() {
        Err("invalid Stream-Seq: empty".into())
    } else {
        Ok(t.as_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ttl_must_be_canonical() {
        assert_eq!(parse_ttl("3600"), Ok(3600));
        assert_eq!(parse_ttl("0"), Ok(0));
        for bad in ["+3600", "03600", "3600.0", "3.6e3", "-1", "", "abc"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expires_at_round_trips() {
        let ms = parse_expires_at("2030-01-02T03:04:05.678Z").unwrap();
        assert_eq!(format_rfc3339_ms(ms), "2030-01-02T03:04:05.678Z");
        assert!(parse_expires_at("tomorrow").is_err());
        assert_eq!(
            parse_expires_at("2030-01-02T04:04:05+01:00").unwrap(),
            parse_expires_at("2030-01-02T03:04:05Z").unwrap()
        );
    }

    #[test]
    fn producer_headers_come_as_a_set() {
        assert_eq!(parse_producer(None, None, None), Ok(None));
        assert!(parse_producer(Some("p"), Some("0"), None).is_err());
        assert!(parse_producer(Some(" "), Some("0"), Some("0")).is_err());
        assert!(parse_producer(Some("p"), Some("-1"), Some("0")).is_err());
        assert!(parse_producer(Some("p"), Some("9007199254740992"), Some("0")).is_err());
        assert_eq!(
            parse_producer(Some("p"), Some("9007199254740991"), Some("3")),
            Ok(Some(Producer {
                id: "p".into(),
                epoch: MAX_PRODUCER_NUMBER,
                seq: 3
            }))
        );
    }

    #[test]
    fn closed_header_is_true_only_for_true() {
        assert!(is_true(Some("TRUE")));
        assert!(!is_true(Some("1")));
        assert!(!is_true(None));
    }

    proptest! {
        #[test]
        fn header_parsers_never_panic(s in "\\PC{0,40}") {
            let _ = parse_ttl(&s);
            let _ = parse_expires_at(&s);
            let _ = parse_producer(Some(&s), Some(&s), Some(&s));
            let _ = parse_canonical_uint(&s);
        }
    }
}
