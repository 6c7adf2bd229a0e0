//! Evaluating a compiled [`Query`] against one JSON record. Pure; no I/O.
//!
//! A record's search fields are read through the binding of the record's own schema
//! version (the pointer where the field lived when the record was written), from the
//! record as stored. Arrays are flattened: a field holding `["a", ["b"]]` has the values
//! `a` and `b`, and a clause matches when any value does.
//!
//! Values are compared in canonical form: keywords after their normaliser, integers and
//! dates as integers (dates in Unix milliseconds; ISO 8601 strings are parsed), floats as
//! doubles, booleans as booleans. A value that has no canonical form for its field's kind
//! (`"abc"` in an integer field) matches no comparison.

use std::cmp::Ordering;

use serde_json::Value;

use super::config::{FieldConfig, FieldKind, Normalizer, SearchConfig};
use super::query::{CompareOp, Query, TextTarget};
use crate::lens::pointer;

/// A canonical field value.
#[derive(Debug, Clone, PartialEq)]
pub enum Canon {
    Int(i128),
    Float(f64),
    Bool(bool),
    Str(String),
}

impl Canon {
    /// Orders two values of one field (the same variant); mixed variants are equal.
    pub fn cmp_same(&self, other: &Canon) -> Ordering {
        match (self, other) {
            (Canon::Int(a), Canon::Int(b)) => a.cmp(b),
            (Canon::Float(a), Canon::Float(b)) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
            (Canon::Bool(a), Canon::Bool(b)) => a.cmp(b),
            (Canon::Str(a), Canon::Str(b)) => a.cmp(b),
            _ => Ordering::Equal,
        }
    }

    /// The value as JSON (integers as numbers).
    pub fn to_json(&self) -> Value {
        match self {
            Canon::Int(i) => i64::try_from(*i)
                .map(Value::from)
                .unwrap_or_else(|_| Value::from(*i as f64)),
            Canon::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Canon::Bool(b) => Value::Bool(*b),
            Canon::Str(s) => Value::String(s.clone()),
        }
    }
}

fn parse_int(s: &str) -> Option<i128> {
    let t = s.trim();
    let digits = t.strip_prefix('-').unwrap_or(t);
    let ok = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !ok {
        return None;
    }
    t.parse::<i128>().ok()
}

/// The canonical form of a record value for a field, if it has one.
pub fn canonical_exact(cfg: &FieldConfig, v: &Value) -> Option<Canon> {
    match cfg.kind {
        FieldKind::Keyword => match v {
            Value::String(s) if cfg.normalizer == Some(Normalizer::LowercaseV1) => {
                Some(Canon::Str(s.to_lowercase()))
            }
            Value::String(s) => Some(Canon::Str(s.clone())),
            _ => None,
        },
        FieldKind::Integer => match v {
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Some(Canon::Int(i128::from(i)))
                } else if let Some(u) = n.as_u64() {
                    Some(Canon::Int(i128::from(u)))
                } else {
                    let f = n.as_f64()?;
                    (f.is_finite() && f.fract() == 0.0).then_some(Canon::Int(f as i128))
                }
            }
            Value::String(s) => parse_int(s).map(Canon::Int),
            _ => None,
        },
        FieldKind::Float => match v {
            Value::Number(n) => n.as_f64().filter(|f| f.is_finite()).map(Canon::Float),
            Value::String(s) if !s.trim().is_empty() => {
                let f = crate::profiles::js::string_to_number(s);
                f.is_finite().then_some(Canon::Float(f))
            }
            _ => None,
        },
        FieldKind::Date => match v {
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Some(Canon::Int(i128::from(i)))
                } else {
                    let f = n.as_f64()?;
                    f.is_finite().then_some(Canon::Int(f.trunc() as i128))
                }
            }
            Value::String(s) if !s.trim().is_empty() => {
                match crate::lens::js::parse_date_time_ms(s.trim()) {
                    Some(ms) => Some(Canon::Int(i128::from(ms))),
                    None => parse_int(s).map(Canon::Int),
                }
            }
            _ => None,
        },
        FieldKind::Bool => match v {
            Value::Bool(b) => Some(Canon::Bool(*b)),
            Value::String(s) => match s.trim().to_lowercase().as_str() {
                "true" => Some(Canon::Bool(true)),
                "false" => Some(Canon::Bool(false)),
                _ => None,
            },
            _ => None,
        },
        FieldKind::Text => None,
    }
}

/// The canonical form of a value written in a query.
pub fn canonical_exact_str(cfg: &FieldConfig, s: &str) -> Option<Canon> {
    canonical_exact(cfg, &Value::String(s.to_string()))
}

/// `unicode_word_v1`: the lower-cased runs of letters and digits.
pub fn analyze(s: &str) -> Vec<String> {
    s.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

fn flatten<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
        other => out.push(other),
    }
}

/// A record's search fields: the raw values of each field that is present.
#[derive(Debug, Default)]
pub struct Document<'a> {
    fields: Vec<(&'a str, &'a FieldConfig, Vec<&'a Value>)>,
}

impl<'a> Document<'a> {
    /// Reads the fields named in `only` (all when `None`) from a record written at schema
    /// `version`. A record that is not a JSON object has no fields.
    pub fn new(
        s: &'a SearchConfig,
        version: u64,
        record: &'a Value,
        only: Option<&[String]>,
    ) -> Document<'a> {
        let mut fields = Vec::new();
        if !record.is_object() {
            return Document { fields };
        }
        for (name, cfg) in &s.fields {
            if only.is_some_and(|o| !o.iter().any(|f| f == name)) {
                continue;
            }
            let Some(binding) = cfg.binding_for_version(version) else {
                continue;
            };
            let Ok(Some(v)) = pointer::resolve(record, &binding.json_pointer) else {
                continue;
            };
            let mut values = Vec::new();
            flatten(v, &mut values);
            if !values.is_empty() {
                fields.push((name.as_str(), cfg, values));
            }
        }
        Document { fields }
    }

    fn get(&self, field: &str) -> Option<(&'a FieldConfig, &[&'a Value])> {
        self.fields
            .iter()
            .find(|(n, _, _)| *n == field)
            .map(|(_, c, v)| (*c, v.as_slice()))
    }

    /// The values of a field (empty when absent).
    pub fn values(&self, field: &str) -> &[&'a Value] {
        self.get(field).map_or(&[], |(_, v)| v)
    }

    /// Every keyword value of the record, canonical: `(field, value)`. These are what a
    /// keyword clause (`field:value`, `field:prefix*`) compares, so an index of them
    /// answers those clauses exactly.
    pub fn keyword_terms(&self) -> Vec<(&'a str, String)> {
        let mut out = Vec::new();
        for (name, cfg, values) in &self.fields {
            if cfg.kind != FieldKind::Keyword {
                continue;
            }
            for v in values {
                if let Some(Canon::Str(s)) = canonical_exact(cfg, v) {
                    out.push((*name, s));
                }
            }
        }
        out
    }

    /// The canonical values of a field (those that have one).
    pub(crate) fn exact(&self, field: &str) -> Vec<Canon> {
        match self.get(field) {
            Some((cfg, values)) => values
                .iter()
                .filter_map(|v| canonical_exact(cfg, v))
                .collect(),
            None => Vec::new(),
        }
    }

    /// The first canonical value of a field (what a sort uses).
    pub fn sort_value(&self, field: &str) -> Option<Canon> {
        let (cfg, values) = self.get(field)?;
        let first = values.first()?;
        if first.is_null() {
            return None;
        }
        canonical_exact(cfg, first)
    }

    /// The hit's `fields`: each present field, one value as itself, several as an array.
    pub fn hit_fields(&self) -> serde_json::Map<String, Value> {
        let mut out = serde_json::Map::new();
        for (name, _, values) in &self.fields {
            let v = if values.len() == 1 {
                values[0].clone()
            } else {
                Value::Array(values.iter().map(|v| (*v).clone()).collect())
            };
            out.insert((*name).to_string(), v);
        }
        out
    }

    /// Values a text clause looks at: keyword values normalised, text values as written.
    fn text_values(&self, t: &TextTarget) -> Vec<String> {
        let Some((cfg, values)) = self.get(&t.field) else {
            return Vec::new();
        };
        values
            .iter()
            .filter_map(|v| match (cfg.kind, v) {
                (FieldKind::Keyword, Value::String(s)) => {
                    Some(if cfg.normalizer == Some(Normalizer::LowercaseV1) {
                        s.to_lowercase()
                    } else {
                        s.clone()
                    })
                }
                (FieldKind::Text, Value::String(s)) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }
}

fn compare_ok(values: &[Canon], op: CompareOp, want: &Canon) -> bool {
    values.iter().any(|v| {
        let o = v.cmp_same(want);
        match op {
            CompareOp::Eq => v == want,
            CompareOp::Gt => o == Ordering::Greater,
            CompareOp::Gte => o != Ordering::Less,
            CompareOp::Lt => o == Ordering::Less,
            CompareOp::Lte => o != Ordering::Greater,
        }
    })
}

/// Whether a record passes a `filter=` expression.
pub fn matches_filter(q: &Query, doc: &Document<'_>) -> bool {
    match q {
        Query::And(a, b) => matches_filter(a, doc) && matches_filter(b, doc),
        Query::Or(a, b) => matches_filter(a, doc) || matches_filter(b, doc),
        Query::Not(e) => !matches_filter(e, doc),
        Query::Has { field } => !doc.exact(field).is_empty(),
        Query::Compare {
            field, op, value, ..
        } => compare_ok(&doc.exact(field), *op, value),
        // Not produced by the filter dialect; evaluated as search would.
        Query::Keyword { .. } | Query::Text { .. } => evaluate(q, doc).matched,
    }
}

/// The outcome of a search query on one record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    pub matched: bool,
    pub score: f64,
}

const NO: Evaluation = Evaluation {
    matched: false,
    score: 0.0,
};

fn yes(score: f64) -> Evaluation {
    Evaluation {
        matched: true,
        score,
    }
}

/// Evaluates a search query: whether the record matches and its relevance score (the
/// original's: per text field, the count of query-token occurrences, plus twice the
/// token count for a phrase, times the field's boost; the best field counts; AND and OR
/// add their sides' scores; NOT and non-text clauses score 0).
pub fn evaluate(q: &Query, doc: &Document<'_>) -> Evaluation {
    match q {
        Query::And(a, b) => {
            let l = evaluate(a, doc);
            if !l.matched {
                return NO;
            }
            let r = evaluate(b, doc);
            if !r.matched {
                return NO;
            }
            yes(l.score + r.score)
        }
        Query::Or(a, b) => {
            let (l, r) = (evaluate(a, doc), evaluate(b, doc));
            if !l.matched && !r.matched {
                return NO;
            }
            yes(l.score + r.score)
        }
        Query::Not(e) => Evaluation {
            matched: !evaluate(e, doc).matched,
            score: 0.0,
        },
        Query::Has { field } => Evaluation {
            matched: doc.get(field).is_some(),
            score: 0.0,
        },
        Query::Compare {
            field, op, value, ..
        } => Evaluation {
            matched: compare_ok(&doc.exact(field), *op, value),
            score: 0.0,
        },
        Query::Keyword {
            field,
            value,
            prefix,
        } => {
            let matched = doc.exact(field).iter().any(|v| match v {
                Canon::Str(s) if *prefix => s.starts_with(value.as_str()),
                Canon::Str(s) => s == value,
                _ => false,
            });
            Evaluation {
                matched,
                score: 0.0,
            }
        }
        Query::Text {
            fields,
            tokens,
            phrase,
            prefix,
        } => text(fields, tokens, *phrase, *prefix, doc),
    }
}

fn token_matches(doc_token: &str, q: &str, prefix_here: bool) -> bool {
    if prefix_here {
        doc_token.starts_with(q)
    } else {
        doc_token == q
    }
}

fn phrase_matches(doc: &[String], q: &[String], prefix: bool) -> bool {
    if q.is_empty() || doc.len() < q.len() {
        return false;
    }
    (0..=doc.len() - q.len()).any(|start| {
        q.iter().enumerate().all(|(i, t)| {
            let last = i == q.len() - 1;
            token_matches(&doc[start + i], t, prefix && last)
        })
    })
}

fn text(
    fields: &[TextTarget],
    tokens: &[String],
    phrase: bool,
    prefix: bool,
    doc: &Document<'_>,
) -> Evaluation {
    let mut matched = false;
    let mut score = 0.0f64;
    for t in fields {
        for value in doc.text_values(t) {
            if t.kind == FieldKind::Keyword {
                let first = tokens.first().map(String::as_str).unwrap_or_default();
                if token_matches(&value, first, prefix) {
                    matched = true;
                    score = score.max(t.boost);
                }
                continue;
            }
            let doc_tokens = analyze(&value);
            let ok = if phrase {
                phrase_matches(&doc_tokens, tokens, prefix)
            } else if prefix && tokens.len() == 1 {
                doc_tokens.iter().any(|d| d.starts_with(tokens[0].as_str()))
            } else {
                tokens.iter().all(|q| doc_tokens.contains(q))
            };
            if !ok {
                continue;
            }
            matched = true;
            let mut count = 0usize;
            for (i, q) in tokens.iter().enumerate() {
                let last = i == tokens.len() - 1;
                count += doc_tokens
                    .iter()
                    .filter(|d| token_matches(d, q, prefix && last))
                    .count();
            }
            if count > 0 {
                let bonus = if phrase { tokens.len() * 2 } else { 0 };
                score = score.max((count + bonus) as f64 * t.boost);
            }
        }
    }
    Evaluation { matched, score }
}
