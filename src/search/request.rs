//! `_search` requests: parsing (body or query string, with the original's rules and
//! messages), sort specifications, and the ordering of hits and `search_after` cursors.
//! Pure; no I/O.

use std::cmp::Ordering;

use serde_json::Value;

use super::config::{FieldKind, SearchConfig};
use super::eval::Canon;
use super::query::{compile_search, Query};
use crate::protocol::offset::Offset;

/// The largest page.
pub const MAX_SIZE: usize = 500;
/// The page when `size` is not given.
pub const DEFAULT_SIZE: usize = 50;

/// A sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

/// One sort key.
#[derive(Debug, Clone, PartialEq)]
pub enum SortSpec {
    Score(Direction),
    Offset(Direction),
    Field {
        field: String,
        kind: FieldKind,
        direction: Direction,
    },
}

impl SortSpec {
    pub fn direction(&self) -> Direction {
        match self {
            SortSpec::Score(d) | SortSpec::Offset(d) => *d,
            SortSpec::Field { direction, .. } => *direction,
        }
    }
}

/// A parsed `_search` request.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub q: Query,
    pub size: usize,
    /// As asked (`None`: the server's budget).
    pub timeout_ms: Option<u64>,
    /// Always ends with an offset key (the tie-breaker).
    pub sort: Vec<SortSpec>,
    pub search_after: Option<Vec<Value>>,
}

fn sort_item(s: &SearchConfig, raw: &str) -> Result<SortSpec, String> {
    let t = raw.trim();
    if t.is_empty() {
        return Err("sort entries must not be empty".into());
    }
    let (name, dir) = match t.find(':') {
        Some(i) => (&t[..i], &t[i + 1..]),
        None => (t, "desc"),
    };
    let direction = match dir {
        "asc" => Direction::Asc,
        "desc" => Direction::Desc,
        _ => return Err(format!("invalid sort direction for {name}")),
    };
    match name {
        "_score" => return Ok(SortSpec::Score(direction)),
        "offset" => return Ok(SortSpec::Offset(direction)),
        _ => {}
    }
    let (field, cfg) = s
        .field(name)
        .ok_or_else(|| format!("unknown sort field {name}"))?;
    if !cfg.sortable && field != s.primary_timestamp_field {
        return Err(format!("search field {name} is not sortable"));
    }
    Ok(SortSpec::Field {
        field: field.to_string(),
        kind: cfg.kind,
        direction,
    })
}

fn normalize_sort(s: &SearchConfig, q: &Query, explicit: Vec<SortSpec>) -> Vec<SortSpec> {
    let mut sorts = if !explicit.is_empty() {
        explicit
    } else if q.has_text() {
        vec![
            SortSpec::Score(Direction::Desc),
            SortSpec::Field {
                field: s.primary_timestamp_field.clone(),
                kind: FieldKind::Date,
                direction: Direction::Desc,
            },
            SortSpec::Offset(Direction::Desc),
        ]
    } else {
        vec![SortSpec::Offset(Direction::Desc)]
    };
    if !sorts.iter().any(|x| matches!(x, SortSpec::Offset(_))) {
        sorts.push(SortSpec::Offset(Direction::Desc));
    }
    sorts
}

/// Parses a `POST _search` body.
pub fn parse_body(search: Option<&SearchConfig>, raw: &Value) -> Result<SearchRequest, String> {
    let obj = raw.as_object().ok_or("search request must be an object")?;
    let q = obj
        .get("q")
        .and_then(Value::as_str)
        .ok_or("q must be a string")?;
    let q = compile_search(search, q)?;
    // `compile_search` fails without a configuration.
    let s = search.ok_or("search is not configured for this stream")?;
    let size = match obj.get("size") {
        None => DEFAULT_SIZE,
        Some(v) => {
            let n = match v {
                Value::Number(n) => n.as_f64(),
                Value::String(t) => Some(crate::profiles::js::string_to_number(t)),
                Value::Null => Some(0.0),
                Value::Bool(b) => Some(f64::from(u8::from(*b))),
                _ => None,
            };
            match n {
                Some(n) if n.is_finite() && n > 0.0 && n.fract() == 0.0 && n <= 500.0 => n as usize,
                _ => return Err("size must be an integer between 1 and 500".into()),
            }
        }
    };
    if obj.contains_key("track_total_hits") {
        return Err("track_total_hits is no longer supported".into());
    }
    let timeout_ms = match obj.get("timeout_ms") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_f64() {
            Some(t) if t.is_finite() && t >= 0.0 => Some(t.trunc() as u64),
            _ => return Err("timeout_ms must be a non-negative number".into()),
        },
        Some(_) => return Err("timeout_ms must be a non-negative number".into()),
    };
    let mut explicit = Vec::new();
    match obj.get("sort") {
        None => {}
        Some(Value::Array(items)) => {
            for item in items {
                let t = item.as_str().ok_or("sort entries must be strings")?;
                explicit.push(sort_item(s, t)?);
            }
        }
        Some(_) => return Err("sort must be an array of strings".into()),
    }
    let search_after = match obj.get("search_after") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(a.clone()),
        Some(_) => return Err("search_after must be an array".into()),
    };
    let sort = normalize_sort(s, &q, explicit);
    Ok(SearchRequest {
        q,
        size,
        timeout_ms,
        sort,
        search_after,
    })
}

/// Parses `GET _search?q=&size=&sort=&search_after=&timeout_ms=` (repeated and
/// comma-separated `sort`; `search_after` a JSON array).
pub fn parse_query(
    search: Option<&SearchConfig>,
    params: &[(String, String)],
) -> Result<SearchRequest, String> {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let q = get("q").filter(|q| !q.is_empty()).ok_or("missing q")?;
    if get("track_total_hits").is_some() {
        return Err("track_total_hits is no longer supported".into());
    }
    let sorts: Vec<Value> = params
        .iter()
        .filter(|(n, _)| n == "sort")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| Value::String(v.to_string()))
        .collect();
    let search_after = match get("search_after").filter(|v| !v.is_empty()) {
        None => Value::Null,
        Some(raw) => match serde_json::from_str::<Value>(raw) {
            Ok(v @ Value::Array(_)) => v,
            _ => return Err("search_after must be a JSON array".into()),
        },
    };
    let mut body = serde_json::Map::new();
    body.insert("q".into(), Value::String(q.to_string()));
    let number = |v: &str| {
        let n = crate::profiles::js::string_to_number(v);
        crate::profiles::js::number_value(n)
    };
    if let Some(size) = get("size").filter(|v| !v.is_empty()) {
        body.insert("size".into(), number(size));
    }
    if let Some(t) = get("timeout_ms").filter(|v| !v.is_empty()) {
        body.insert("timeout_ms".into(), number(t));
    }
    if !sorts.is_empty() {
        body.insert("sort".into(), Value::Array(sorts));
    }
    body.insert("search_after".into(), search_after);
    parse_body(search, &Value::Object(body))
}

/// A hit's value for one sort key (`None`: the record has none).
pub type SortValue = Option<Canon>;

/// Orders two sort values as the original does: a missing value after any present one
/// (before the direction applies).
pub fn compare_values(a: &SortValue, b: &SortValue) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => x.cmp_same(y),
    }
}

/// Orders two hits' sort values under the sort specification (best first).
pub fn compare_hits(sorts: &[SortSpec], a: &[SortValue], b: &[SortValue]) -> Ordering {
    for (i, s) in sorts.iter().enumerate() {
        let o = compare_values(a.get(i).unwrap_or(&None), b.get(i).unwrap_or(&None));
        let o = match s.direction() {
            Direction::Asc => o,
            Direction::Desc => o.reverse(),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// A `search_after` value as a sort value of the key it continues.
pub fn cursor_value(sort: &SortSpec, raw: Option<&Value>) -> SortValue {
    let raw = raw?;
    match sort {
        SortSpec::Offset(_) => {
            let s = raw.as_str()?;
            if s == "-1" {
                return Some(Canon::Int(-1));
            }
            Offset::decode(s)
                .ok()
                .map(|o| Canon::Int(i128::from(o.pos) - 1))
        }
        SortSpec::Score(_) => raw.as_f64().filter(|f| f.is_finite()).map(Canon::Float),
        SortSpec::Field { kind, .. } => match kind {
            FieldKind::Integer | FieldKind::Date => match raw {
                Value::Number(n) => match n.as_i64() {
                    Some(i) => Some(Canon::Int(i128::from(i))),
                    None => n
                        .as_f64()
                        .filter(|f| f.is_finite())
                        .map(|f| Canon::Int(f.trunc() as i128)),
                },
                Value::String(s) => s.trim().parse::<i128>().ok().map(Canon::Int),
                _ => None,
            },
            FieldKind::Float => raw.as_f64().filter(|f| f.is_finite()).map(Canon::Float),
            FieldKind::Bool => raw.as_bool().map(Canon::Bool),
            FieldKind::Keyword | FieldKind::Text => raw.as_str().map(|s| Canon::Str(s.into())),
        },
    }
}

/// Whether a hit comes after the `search_after` cursor (it belongs on this page).
pub fn after_cursor(sorts: &[SortSpec], values: &[SortValue], cursor: &[Value]) -> bool {
    let after: Vec<SortValue> = sorts
        .iter()
        .enumerate()
        .map(|(i, s)| cursor_value(s, cursor.get(i)))
        .collect();
    compare_hits(sorts, values, &after) == Ordering::Greater
}

/// The JSON of a hit's sort values: offsets as offset strings, numbers as numbers.
pub fn sort_response(sorts: &[SortSpec], values: &[SortValue]) -> Vec<Value> {
    sorts
        .iter()
        .zip(values)
        .map(|(s, v)| match (s, v) {
            (SortSpec::Offset(_), Some(Canon::Int(pos))) => {
                Value::String(Offset::at(u64::try_from(*pos + 1).unwrap_or(0)).encode())
            }
            (_, Some(c)) => c.to_json(),
            (_, None) => Value::Null,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg() -> SearchConfig {
        SearchConfig::parse(&json!({
            "primaryTimestampField": "ts",
            "fields": {
                "ts": {"kind": "date", "bindings": [{"version": 1, "jsonPointer": "/ts"}], "column": true},
                "n": {"kind": "integer", "bindings": [{"version": 1, "jsonPointer": "/n"}], "exact": true, "sortable": true},
                "k": {"kind": "keyword", "bindings": [{"version": 1, "jsonPointer": "/k"}], "exact": true},
                "t": {"kind": "text", "bindings": [{"version": 1, "jsonPointer": "/t"}], "analyzer": "unicode_word_v1"}
            }
        }))
        .unwrap()
    }

    fn err(body: Value) -> String {
        parse_body(Some(&cfg()), &body).unwrap_err()
    }

    #[test]
    fn bodies_are_checked_with_the_originals_messages() {
        assert_eq!(err(json!([])), "search request must be an object");
        assert_eq!(err(json!({})), "q must be a string");
        assert_eq!(
            err(json!({"q": "k:a", "size": 0})),
            "size must be an integer between 1 and 500"
        );
        assert_eq!(
            err(json!({"q": "k:a", "size": 501})),
            "size must be an integer between 1 and 500"
        );
        assert_eq!(
            err(json!({"q": "k:a", "size": 1.5})),
            "size must be an integer between 1 and 500"
        );
        assert_eq!(
            err(json!({"q": "k:a", "track_total_hits": true})),
            "track_total_hits is no longer supported"
        );
        assert_eq!(
            err(json!({"q": "k:a", "timeout_ms": -1})),
            "timeout_ms must be a non-negative number"
        );
        assert_eq!(
            err(json!({"q": "k:a", "sort": "offset"})),
            "sort must be an array of strings"
        );
        assert_eq!(
            err(json!({"q": "k:a", "sort": [1]})),
            "sort entries must be strings"
        );
        assert_eq!(
            err(json!({"q": "k:a", "sort": ["offset:up"]})),
            "invalid sort direction for offset"
        );
        assert_eq!(
            err(json!({"q": "k:a", "sort": ["zz"]})),
            "unknown sort field zz"
        );
        assert_eq!(
            err(json!({"q": "k:a", "sort": ["k"]})),
            "search field k is not sortable"
        );
        assert_eq!(
            err(json!({"q": "k:a", "search_after": 1})),
            "search_after must be an array"
        );
        assert_eq!(parse_query(Some(&cfg()), &[]).unwrap_err(), "missing q");
    }

    #[test]
    fn sorts_default_and_always_end_with_the_offset() {
        let r = parse_body(Some(&cfg()), &json!({"q": "k:a"})).unwrap();
        assert_eq!(r.sort, vec![SortSpec::Offset(Direction::Desc)]);
        assert_eq!(r.size, 50);
        let r = parse_body(Some(&cfg()), &json!({"q": "hello"})).unwrap();
        assert_eq!(r.sort.len(), 3, "score, primary timestamp, offset");
        let r = parse_body(Some(&cfg()), &json!({"q": "k:a", "sort": ["n:asc", "ts"]})).unwrap();
        assert_eq!(r.sort.len(), 3);
        assert_eq!(r.sort[2], SortSpec::Offset(Direction::Desc));
        let params = vec![
            ("q".to_string(), "k:a".to_string()),
            ("sort".to_string(), "n:asc, offset:asc".to_string()),
            ("size".to_string(), "7".to_string()),
        ];
        let r = parse_query(Some(&cfg()), &params).unwrap();
        assert_eq!((r.size, r.sort.len()), (7, 2));
    }

    #[test]
    fn cursors_continue_after_the_last_hit() {
        let sorts = vec![SortSpec::Offset(Direction::Desc)];
        let at = |p: i128| vec![Some(Canon::Int(p))];
        let cursor = sort_response(&sorts, &at(10));
        assert_eq!(cursor[0], Value::String(Offset::at(11).encode()));
        assert!(after_cursor(&sorts, &at(9), &cursor));
        assert!(!after_cursor(&sorts, &at(10), &cursor));
        assert!(!after_cursor(&sorts, &at(11), &cursor));
        // Missing values sort last ascending, first descending.
        let asc = vec![SortSpec::Field {
            field: "n".into(),
            kind: FieldKind::Integer,
            direction: Direction::Asc,
        }];
        assert_eq!(
            compare_hits(&asc, &[None], &[Some(Canon::Int(1))]),
            Ordering::Greater
        );
    }
}
