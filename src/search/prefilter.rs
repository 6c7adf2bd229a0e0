//! A cheap test on a record's raw JSON bytes that rules out records a query cannot match,
//! before they are parsed. A keyword clause `field:value` can only match a record whose
//! text contains the value as a JSON string, `"value"` (and `field:prefix*` one that
//! contains `"prefix`): records keep the exact bytes their producer sent (ADR 0003), and a
//! string with no escape sequence is its own bytes between quotes. So the test is exact
//! as a "may match": a record with a backslash anywhere (an escape could spell the value
//! differently) always passes, and so does every clause the test cannot decide (values
//! that would need escaping, non-ASCII values under a case-folding normaliser, text,
//! comparisons, `has:`, negation). A record that passes is evaluated as usual.

use super::config::{Normalizer, SearchConfig};
use super::query::Query;

/// What must be in a record's text for the query to match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prefilter {
    /// Nothing can be ruled out.
    All,
    /// These bytes (ASCII case-insensitively when `fold`).
    Contains {
        needle: Vec<u8>,
        fold: bool,
    },
    And(Box<Prefilter>, Box<Prefilter>),
    Or(Box<Prefilter>, Box<Prefilter>),
}

impl Prefilter {
    /// The prefilter of a compiled query over `cfg`.
    pub fn of(q: &Query, cfg: &SearchConfig) -> Prefilter {
        match q {
            Query::Keyword {
                field,
                value,
                prefix,
            } => {
                let fold = super::query::field_config(cfg, field)
                    .is_some_and(|f| f.normalizer == Some(Normalizer::LowercaseV1));
                let plain = value
                    .bytes()
                    .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && (!fold || b.is_ascii()));
                if !plain {
                    return Prefilter::All;
                }
                let mut needle = Vec::with_capacity(value.len() + 2);
                needle.push(b'"');
                needle.extend_from_slice(value.as_bytes());
                if !prefix {
                    needle.push(b'"');
                }
                Prefilter::Contains { needle, fold }
            }
            Query::And(a, b) => match (Prefilter::of(a, cfg), Prefilter::of(b, cfg)) {
                (Prefilter::All, x) | (x, Prefilter::All) => x,
                (x, y) => Prefilter::And(Box::new(x), Box::new(y)),
            },
            Query::Or(a, b) => match (Prefilter::of(a, cfg), Prefilter::of(b, cfg)) {
                (Prefilter::All, _) | (_, Prefilter::All) => Prefilter::All,
                (x, y) => Prefilter::Or(Box::new(x), Box::new(y)),
            },
            Query::Not(_) | Query::Has { .. } | Query::Compare { .. } | Query::Text { .. } => {
                Prefilter::All
            }
        }
    }

    /// False only when no record with this text can match.
    pub fn may_match(&self, raw: &[u8]) -> bool {
        if matches!(self, Prefilter::All) || raw.contains(&b'\\') {
            return true;
        }
        self.test(raw)
    }

    fn test(&self, raw: &[u8]) -> bool {
        match self {
            Prefilter::All => true,
            Prefilter::Contains {
                needle,
                fold: false,
            } => memchr::memmem::find(raw, needle).is_some(),
            Prefilter::Contains { needle, fold: true } => raw
                .windows(needle.len())
                .any(|w| w.eq_ignore_ascii_case(needle)),
            Prefilter::And(a, b) => a.test(raw) && b.test(raw),
            Prefilter::Or(a, b) => a.test(raw) || b.test(raw),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::*;
    use crate::search::eval::{evaluate, Document};
    use crate::search::query::compile_search;

    fn cfg() -> SearchConfig {
        SearchConfig::parse(&json!({
            "primaryTimestampField": "t",
            "fields": {
                "t": {"kind": "date", "bindings": [{"version": 1, "jsonPointer": "/t"}], "column": true},
                "op": {"kind": "keyword", "bindings": [{"version": 1, "jsonPointer": "/op"}], "exact": true, "prefix": true},
                "who": {"kind": "keyword", "bindings": [{"version": 1, "jsonPointer": "/who"}], "exact": true, "prefix": true, "normalizer": "lowercase_v1"},
                "n": {"kind": "integer", "bindings": [{"version": 1, "jsonPointer": "/n"}], "exact": true}
            }
        }))
        .unwrap()
    }

    fn matches(q: &str, raw: &str) -> (bool, bool) {
        let c = cfg();
        let query = compile_search(Some(&c), q).unwrap();
        let record: Value = serde_json::from_str(raw).unwrap();
        let eval = evaluate(&query, &Document::new(&c, 1, &record, None)).matched;
        (Prefilter::of(&query, &c).may_match(raw.as_bytes()), eval)
    }

    #[test]
    fn rules_out_only_records_that_cannot_match() {
        assert_eq!(matches("op:insert", r#"{"op":"update"}"#), (false, false));
        assert_eq!(matches("op:insert", r#"{"op": "insert"}"#), (true, true));
        assert_eq!(matches("op:ins*", r#"{"op":"insert"}"#), (true, true));
        assert_eq!(
            matches("op:insert", r#"{"op":"ins\u0065rt"}"#),
            (true, true),
            "an escape"
        );
        assert_eq!(
            matches("who:ann", r#"{"who":"ANN"}"#),
            (true, true),
            "case folded"
        );
        assert_eq!(matches("who:ann", r#"{"who":"bob"}"#), (false, false));
        assert_eq!(
            matches("op:insert OR n:3", r#"{"op":"x","n":3}"#),
            (true, true)
        );
        assert_eq!(matches("-op:insert", r#"{"op":"x"}"#), (true, true));
        assert_eq!(
            matches("op:a AND who:b", r#"{"op":"a","who":"c"}"#),
            (false, false)
        );
    }

    proptest! {
        /// Whatever the record, the prefilter never rules out a record that matches.
        #[test]
        fn never_rules_out_a_match(
            op in "[a-cA-C\\\\\"é]{0,4}",
            who in "[a-cA-C]{0,3}",
            q_op in "[a-c]{1,3}",
            q_who in "[a-cA-C]{1,3}",
            star in any::<bool>(),
            escape in any::<bool>(),
        ) {
            let mut record = json!({"op": op, "who": who}).to_string();
            if escape {
                record = record.replacen('a', "\\u0061", 1);
            }
            let q = format!("op:{q_op}{} OR (who:{q_who} AND op:{q_op})", if star { "*" } else { "" });
            let (may, eval) = matches(&q, &record);
            prop_assert!(may || !eval, "{q} on {record}");
        }
    }
}
