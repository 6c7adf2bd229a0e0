//! What a `/v1/stream/...` path addresses: a stream, or one of its sub-resources.
//!
//! The raw (still percent-encoded) remainder after `/v1/stream/` is split on `/`, trailing
//! slashes dropped, and its last segments are matched, first match wins:
//!
//! | last segments | addresses |
//! |---|---|
//! | `_schema`, `_profile`, `_routing_keys`, `_details`, `_index_status`, `_search`, `_aggregate` | that sub-resource |
//! | `touch/templates/activate`, `touch/meta`, `touch/wait` | the live-query routes |
//! | `pk/<key>` | reads of one routing key (the key percent-decoded) |
//!
//! The segments before the match name the stream (decoded as in [`name::parse`]). So
//! these suffixes shadow stream names that end in them: a stream named `a/_schema` or
//! `a/pk/x` cannot be addressed, as with the original server. A name that is only a
//! suffix (`/v1/stream/_schema`) is a stream name.

use super::name::{self, percent_decode, NameError};

/// A sub-resource of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sub {
    Stream,
    Schema,
    Profile,
    RoutingKeys,
    Details,
    IndexStatus,
    Search,
    Aggregate,
    TouchMeta,
    TouchWait,
    TouchActivate,
    /// `/pk/<key>`: reads of the entries with this routing key.
    Key(String),
}

/// Why a path was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("malformed percent-encoding in the routing key")]
    Key,
}

/// Splits the raw path remainder into the stream name and what it addresses.
pub fn parse(raw: &str) -> Result<(String, Sub), RouteError> {
    let trimmed = raw.trim_end_matches('/');
    let segs: Vec<&str> = trimmed.split('/').collect();
    let n = segs.len();
    let (sub, used) = match segs.as_slice() {
        [.., "touch", "templates", "activate"] if n > 3 => (Sub::TouchActivate, 3),
        [.., "touch", "meta"] if n > 2 => (Sub::TouchMeta, 2),
        [.., "touch", "wait"] if n > 2 => (Sub::TouchWait, 2),
        [.., "pk", key] if n > 2 => {
            let k = percent_decode(key).map_err(|_| RouteError::Key)?;
            let k = String::from_utf8(k).map_err(|_| RouteError::Key)?;
            (Sub::Key(k), 2)
        }
        [.., last] if n > 1 => match *last {
            "_schema" => (Sub::Schema, 1),
            "_profile" => (Sub::Profile, 1),
            "_routing_keys" => (Sub::RoutingKeys, 1),
            "_details" => (Sub::Details, 1),
            "_index_status" => (Sub::IndexStatus, 1),
            "_search" => (Sub::Search, 1),
            "_aggregate" => (Sub::Aggregate, 1),
            _ => (Sub::Stream, 0),
        },
        _ => (Sub::Stream, 0),
    };
    let name = name::parse(&segs[..n - used].join("/"))?;
    Ok((name, sub))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(raw: &str) -> (String, Sub) {
        parse(raw).unwrap()
    }

    #[test]
    fn suffixes_are_recognised_after_the_name() {
        assert_eq!(p("a/b"), ("a/b".into(), Sub::Stream));
        assert_eq!(p("a/b/_schema"), ("a/b".into(), Sub::Schema));
        assert_eq!(p("a%2Fb/_profile/"), ("a/b".into(), Sub::Profile));
        assert_eq!(p("s/_routing_keys"), ("s".into(), Sub::RoutingKeys));
        assert_eq!(p("s/_details"), ("s".into(), Sub::Details));
        assert_eq!(p("s/_index_status"), ("s".into(), Sub::IndexStatus));
        assert_eq!(p("s/_search"), ("s".into(), Sub::Search));
        assert_eq!(p("s/_aggregate"), ("s".into(), Sub::Aggregate));
        assert_eq!(p("s/touch/meta"), ("s".into(), Sub::TouchMeta));
        assert_eq!(p("s/touch/wait"), ("s".into(), Sub::TouchWait));
        assert_eq!(
            p("s/touch/templates/activate"),
            ("s".into(), Sub::TouchActivate)
        );
        assert_eq!(p("s/pk/a%2Fb"), ("s".into(), Sub::Key("a/b".into())));
        assert_eq!(p("x/y/pk/k"), ("x/y".into(), Sub::Key("k".into())));
        // A suffix alone is a name.
        assert_eq!(p("_schema"), ("_schema".into(), Sub::Stream));
        assert_eq!(p("pk/k"), ("pk/k".into(), Sub::Stream));
        assert_eq!(p("touch/meta"), ("touch/meta".into(), Sub::Stream));
    }

    #[test]
    fn bad_keys_and_names_are_errors() {
        assert_eq!(parse("s/pk/%zz"), Err(RouteError::Key));
        assert_eq!(parse("s/pk/%ff"), Err(RouteError::Key));
        assert!(matches!(parse("/_schema"), Err(RouteError::Name(_))));
        assert!(matches!(parse("../_schema"), Err(RouteError::Name(_))));
    }
}
