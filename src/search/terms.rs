//! What a search index can answer about a query: its keyword clauses as index terms, and
//! the boolean structure around them ([`TermExpr`]). A segment an index rules out for the
//! expression holds no record matching the query; everything the expression cannot
//! express (negation, comparisons, `has:`, text) counts as "may match", so narrowing by
//! it never loses a hit.
//!
//! Index keys share one key space with routing keys (see `engine::keyindex::format`):
//! a routing key is `0x00 key`, a keyword term is `0x01 field 0x00 value` with the value
//! in its canonical form (after the field's normaliser), as the evaluator compares it.

use super::query::Query;

/// The index key of a routing key.
pub fn routing_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(0);
    k.extend_from_slice(key);
    k
}

/// The index key of a keyword term (`value` canonical).
pub fn keyword(field: &str, value: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(field.len() + value.len() + 2);
    k.push(1);
    k.extend_from_slice(field.as_bytes());
    k.push(0);
    k.extend_from_slice(value.as_bytes());
    k
}

/// The hash naming a search configuration (the registry's `search` section, as stored):
/// index runs record it, and a search uses a run's terms only under the same one. Never 0
/// (no configuration) or `u64::MAX` (mixed).
pub fn config_hash(search: &serde_json::Value) -> u64 {
    let h = xxhash_rust::xxh3::xxh3_64(search.to_string().as_bytes());
    h.clamp(1, u64::MAX - 1)
}

/// A query reduced to what an index of keyword terms can decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TermExpr {
    /// Any record may match.
    All,
    /// Records with this key.
    Term(Vec<u8>),
    /// Records with a key starting with this.
    Prefix(Vec<u8>),
    And(Box<TermExpr>, Box<TermExpr>),
    Or(Box<TermExpr>, Box<TermExpr>),
}

impl TermExpr {
    /// The expression of a compiled query.
    pub fn of(q: &Query) -> TermExpr {
        match q {
            Query::Keyword {
                field,
                value,
                prefix: false,
            } => TermExpr::Term(keyword(field, value)),
            Query::Keyword {
                field,
                value,
                prefix: true,
            } => TermExpr::Prefix(keyword(field, value)),
            Query::And(a, b) => match (TermExpr::of(a), TermExpr::of(b)) {
                (TermExpr::All, x) | (x, TermExpr::All) => x,
                (x, y) => TermExpr::And(Box::new(x), Box::new(y)),
            },
            Query::Or(a, b) => match (TermExpr::of(a), TermExpr::of(b)) {
                (TermExpr::All, _) | (_, TermExpr::All) => TermExpr::All,
                (x, y) => TermExpr::Or(Box::new(x), Box::new(y)),
            },
            Query::Not(_) | Query::Has { .. } | Query::Compare { .. } | Query::Text { .. } => {
                TermExpr::All
            }
        }
    }

    /// Whether the expression narrows anything.
    pub fn is_all(&self) -> bool {
        matches!(self, TermExpr::All)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::search::config::SearchConfig;
    use crate::search::query::compile_search;

    fn cfg() -> SearchConfig {
        SearchConfig::parse(&json!({
            "primaryTimestampField": "t",
            "fields": {
                "t": {"kind": "date", "bindings": [{"version": 1, "jsonPointer": "/t"}], "exact": true, "column": true},
                "op": {"kind": "keyword", "bindings": [{"version": 1, "jsonPointer": "/op"}], "exact": true, "prefix": true, "normalizer": "lowercase_v1"},
                "n": {"kind": "integer", "bindings": [{"version": 1, "jsonPointer": "/n"}], "exact": true}
            }
        }))
        .unwrap()
    }

    fn expr(q: &str) -> TermExpr {
        TermExpr::of(&compile_search(Some(&cfg()), q).unwrap())
    }

    #[test]
    fn keyword_clauses_become_terms_and_the_rest_may_match() {
        let t = |v: &str| TermExpr::Term(keyword("op", v));
        assert_eq!(
            expr("op:Insert"),
            t("insert"),
            "canonical, as the evaluator compares"
        );
        assert_eq!(expr("op:ins*"), TermExpr::Prefix(keyword("op", "ins")));
        assert_eq!(
            expr("op:insert AND n:3"),
            t("insert"),
            "a comparison narrows nothing"
        );
        assert_eq!(expr("op:insert OR n:3"), TermExpr::All);
        assert_eq!(expr("-op:insert"), TermExpr::All);
        assert_eq!(
            expr("(op:insert OR op:update) AND op:u*"),
            TermExpr::And(
                Box::new(TermExpr::Or(Box::new(t("insert")), Box::new(t("update")))),
                Box::new(TermExpr::Prefix(keyword("op", "u")))
            )
        );
        assert_ne!(routing_key(b"op"), keyword("op", ""));
    }
}
