//! `_aggregate` over a schema rollup: request parsing (the original's rules and
//! messages), each record's contribution (time bucket, dimensions, measures), and the
//! buckets' merge and JSON form. Pure; no I/O.

use std::cmp::Ordering;

use serde_json::{json, Map, Value};

use super::config::{RollupConfig, RollupMeasure, SearchConfig};
use super::eval::{canonical_exact, evaluate, Canon, Document};
use super::query::{compile_search, field_config, Query};
use crate::lens::pointer;
use crate::profiles::js;

/// A parsed `_aggregate` request.
#[derive(Debug, Clone)]
pub struct AggregateRequest {
    pub rollup: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub interval: String,
    pub interval_ms: i64,
    pub q: Option<Query>,
    /// Dimensions to group by (sorted, distinct).
    pub group_by: Vec<String>,
    /// Measures to report (sorted, distinct; `None`: all).
    pub measures: Option<Vec<String>>,
}

fn time_value(raw: Option<&Value>, path: &str) -> Result<i64, String> {
    match raw {
        Some(Value::String(s)) => {
            let t = s.trim();
            let ms = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                // All digits: Unix nanoseconds, as in the original.
                t.parse::<i128>()
                    .ok()
                    .and_then(|n| i64::try_from(n / 1_000_000).ok())
            } else {
                crate::lens::js::parse_date_time_ms(t)
            };
            ms.ok_or_else(|| format!("{path} must be a valid timestamp"))
        }
        Some(Value::Number(n)) if n.as_f64().is_some_and(f64::is_finite) => Ok(n
            .as_i64()
            .unwrap_or_else(|| n.as_f64().unwrap_or_default().trunc() as i64)),
        _ => Err(format!(
            "{path} must be a timestamp string or unix milliseconds"
        )),
    }
}

fn interval_ms(text: &str) -> Option<i64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = t.split_at(split);
    let n: i64 = digits.parse().ok()?;
    let mult = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn sorted_names(
    raw: &Value,
    what: &str,
    non_empty: bool,
    check: impl Fn(&str) -> Result<(), String>,
) -> Result<Vec<String>, String> {
    let items = match raw {
        Value::Array(a) if !(non_empty && a.is_empty()) => a,
        _ if non_empty => return Err(format!("{what} must be a non-empty array of strings")),
        _ => return Err(format!("{what} must be an array of strings")),
    };
    let mut out: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let s = item
            .as_str()
            .ok_or_else(|| format!("{what}[{i}] must be a string"))?
            .trim()
            .to_string();
        check(&s)?;
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out.sort_by(|a, b| js::locale_compare(a, b));
    Ok(out)
}

impl AggregateRequest {
    /// Whether a record's contribution counts for the request: its timestamp is in
    /// `[from, to)` and the record (written at schema `version`) matches `q`.
    pub fn admits(&self, s: &SearchConfig, version: u64, record: &Value, c: &Contribution) -> bool {
        if c.timestamp_ms < self.from_ms || c.timestamp_ms >= self.to_ms {
            return false;
        }
        self.q
            .as_ref()
            .is_none_or(|q| evaluate(q, &Document::new(s, version, record, None)).matched)
    }
}

/// Parses an `_aggregate` body.
pub fn parse_request(
    search: Option<&SearchConfig>,
    raw: &Value,
) -> Result<AggregateRequest, String> {
    let obj = raw
        .as_object()
        .ok_or("aggregate request must be an object")?;
    let s = search.ok_or("search is not configured for this stream")?;
    let rollup = match obj.get("rollup") {
        Some(Value::String(r)) if !r.trim().is_empty() => r.trim().to_string(),
        _ => return Err("rollup must be a string".into()),
    };
    let cfg = s
        .rollup(&rollup)
        .ok_or_else(|| format!("unknown rollup {rollup}"))?;
    let from_ms = time_value(obj.get("from"), "from")?;
    let to_ms = time_value(obj.get("to"), "to")?;
    if to_ms <= from_ms {
        return Err("to must be greater than from".into());
    }
    let interval = match obj.get("interval") {
        Some(Value::String(i)) if !i.trim().is_empty() => i.trim().to_string(),
        _ => return Err("interval must be a string".into()),
    };
    if !cfg.intervals.iter().any(|i| i.text == interval) {
        return Err(format!(
            "interval {interval} is not configured for rollup {rollup}"
        ));
    }
    let interval_ms = interval_ms(&interval)
        .filter(|ms| *ms > 0)
        .ok_or_else(|| format!("interval {interval} is not a supported duration"))?;
    let q = match obj.get("q") {
        None | Some(Value::Null) => None,
        Some(Value::String(q)) => Some(compile_search(Some(s), q)?),
        Some(_) => return Err("q must be a string".into()),
    };
    let dims = cfg.dimensions.clone().unwrap_or_default();
    let group_by = match obj.get("group_by") {
        None => Vec::new(),
        Some(v) => sorted_names(v, "group_by", false, |f| {
            if dims.iter().any(|d| d == f) {
                Ok(())
            } else {
                Err(format!(
                    "group_by field {f} is not configured on rollup {rollup}"
                ))
            }
        })?,
    };
    let measures = match obj.get("measures") {
        None => None,
        Some(v) => Some(sorted_names(v, "measures", true, |m| {
            if cfg.measures.iter().any(|(n, _)| n == m) {
                Ok(())
            } else {
                Err(format!("unknown measure {m} on rollup {rollup}"))
            }
        })?),
    };
    Ok(AggregateRequest {
        rollup,
        from_ms,
        to_ms,
        interval,
        interval_ms,
        q,
        group_by,
        measures,
    })
}

/// A rollup with its `include` queries compiled.
#[derive(Debug, Clone)]
pub struct CompiledRollup {
    pub config: RollupConfig,
    include: Option<Query>,
    /// Per measure (same order as the configuration), a count's `include`.
    count_includes: Vec<Option<Query>>,
}

impl CompiledRollup {
    pub fn new(s: &SearchConfig, config: &RollupConfig) -> Result<CompiledRollup, String> {
        let compile = |q: &Option<String>| -> Result<Option<Query>, String> {
            q.as_deref().map(|q| compile_search(Some(s), q)).transpose()
        };
        let include = compile(&config.include)?;
        let count_includes = config
            .measures
            .iter()
            .map(|(_, m)| match m {
                RollupMeasure::Count { include } => compile(include),
                _ => Ok(None),
            })
            .collect::<Result<_, _>>()?;
        Ok(CompiledRollup {
            config: config.clone(),
            include,
            count_includes,
        })
    }
}

/// A measure's running state.
#[derive(Debug, Clone, PartialEq)]
pub enum MeasureState {
    Count(f64),
    Summary {
        count: f64,
        sum: f64,
        min: Option<f64>,
        max: Option<f64>,
        /// Bucket → count, in first-seen order.
        histogram: Option<Vec<(String, f64)>>,
    },
}

impl MeasureState {
    /// Adds another state of the same measure.
    pub(crate) fn merge(&mut self, next: &MeasureState) {
        match (self, next) {
            (MeasureState::Count(a), MeasureState::Count(b)) => *a += b,
            (
                MeasureState::Summary {
                    count,
                    sum,
                    min,
                    max,
                    histogram,
                },
                MeasureState::Summary {
                    count: c2,
                    sum: s2,
                    min: mi2,
                    max: ma2,
                    histogram: h2,
                },
            ) => {
                *count += c2;
                *sum += s2;
                *min = match (*min, *mi2) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                *max = match (*max, *ma2) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                if let Some(next) = h2 {
                    let h = histogram.get_or_insert_with(Vec::new);
                    for (k, v) in next {
                        match h.iter_mut().find(|(hk, _)| hk == k) {
                            Some((_, hv)) => *hv += v,
                            None => h.push((k.clone(), *v)),
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn to_json(&self) -> Value {
        match self {
            MeasureState::Count(n) => json!({"count": js::number_value(*n)}),
            MeasureState::Summary {
                count,
                sum,
                min,
                max,
                histogram,
            } => {
                let num = |v: Option<f64>| v.map_or(Value::Null, js::number_value);
                let mut m = Map::new();
                m.insert("count".into(), js::number_value(*count));
                m.insert("sum".into(), js::number_value(*sum));
                m.insert("min".into(), num(*min));
                m.insert("max".into(), num(*max));
                m.insert("avg".into(), num((*count > 0.0).then(|| sum / count)));
                for (name, p) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)] {
                    m.insert(name.into(), num(percentile(histogram.as_deref(), p)));
                }
                if let Some(h) = histogram {
                    m.insert("histogram".into(), Value::Object(js_object_order(h)));
                }
                Value::Object(m)
            }
        }
    }
}

/// A JavaScript object's key order: array-index keys ascending, then the others in
/// insertion order.
fn js_object_order(h: &[(String, f64)]) -> Map<String, Value> {
    let index = |k: &str| -> Option<u32> {
        let n: u32 = k.parse().ok()?;
        (n.to_string() == k && n != u32::MAX).then_some(n)
    };
    let mut ints: Vec<(u32, &String, f64)> = h
        .iter()
        .filter_map(|(k, v)| index(k).map(|i| (i, k, *v)))
        .collect();
    ints.sort_by_key(|(i, _, _)| *i);
    let mut m = Map::new();
    for (_, k, v) in ints {
        m.insert(k.clone(), js::number_value(v));
    }
    for (k, v) in h.iter().filter(|(k, _)| index(k).is_none()) {
        m.insert(k.clone(), js::number_value(*v));
    }
    m
}

fn percentile(h: Option<&[(String, f64)]>, p: f64) -> Option<f64> {
    let mut entries: Vec<(f64, f64)> = h?
        .iter()
        .map(|(k, c)| (js::string_to_number(k), *c))
        .filter(|(b, c)| b.is_finite() && c.is_finite() && *c > 0.0)
        .collect();
    if entries.is_empty() {
        return None;
    }
    entries.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal));
    let total: f64 = entries.iter().map(|e| e.1).sum();
    if total <= 0.0 {
        return None;
    }
    let threshold = total * p;
    let mut seen = 0.0;
    for (b, c) in &entries {
        seen += c;
        if seen >= threshold {
            return Some(*b);
        }
    }
    entries.last().map(|e| e.0)
}

/// What one record adds to the rollup.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    pub timestamp_ms: i64,
    /// Each configured dimension's canonical value (`None`: absent).
    pub dimensions: Vec<(String, Option<String>)>,
    pub measures: Vec<(String, MeasureState)>,
}

fn canonical_string(c: &Canon) -> String {
    match c {
        Canon::Int(i) => i.to_string(),
        Canon::Float(f) => js::number_to_string(*f),
        Canon::Bool(b) => b.to_string(),
        Canon::Str(s) => s.clone(),
    }
}

fn finite_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()),
        Value::String(s) if !s.trim().is_empty() => {
            Some(js::string_to_number(s)).filter(|f| f.is_finite())
        }
        _ => None,
    }
}

fn canon_number(c: &Canon) -> Option<f64> {
    match c {
        Canon::Int(i) => Some(*i as f64),
        Canon::Float(f) => Some(*f),
        _ => None,
    }
}

/// The contribution of a record written at schema `version`, if it has one (it is an
/// object, passes the rollup's `include`, has exactly one timestamp, at most one value per
/// dimension and the values every measure needs).
pub fn contribution(
    s: &SearchConfig,
    r: &CompiledRollup,
    version: u64,
    record: &Value,
) -> Option<Contribution> {
    if !record.is_object() {
        return None;
    }
    let doc = Document::new(s, version, record, None);
    if let Some(inc) = &r.include {
        if !evaluate(inc, &doc).matched {
            return None;
        }
    }
    let ts_field = &r.config.timestamp_field;
    let ts_cfg = field_config(s, ts_field)?;
    let ts_values = doc.values(ts_field);
    if ts_values.len() != 1 {
        return None;
    }
    let timestamp_ms = match canonical_exact(ts_cfg, ts_values[0])? {
        Canon::Int(i) => i64::try_from(i).ok()?,
        Canon::Float(f) if f.is_finite() => f.trunc() as i64,
        _ => return None,
    };
    let mut dimensions = Vec::new();
    for d in r.config.dimensions.iter().flatten() {
        let cfg = field_config(s, d)?;
        let values = doc.values(d);
        if values.len() > 1 {
            return None;
        }
        let v = values
            .first()
            .and_then(|v| canonical_exact(cfg, v))
            .map(|c| canonical_string(&c));
        dimensions.push((d.clone(), v));
    }
    let mut measures = Vec::new();
    for ((name, m), count_include) in r.config.measures.iter().zip(&r.count_includes) {
        let state = match m {
            RollupMeasure::Count { .. } => {
                let n = match count_include {
                    Some(q) if !evaluate(q, &doc).matched => 0.0,
                    _ => 1.0,
                };
                MeasureState::Count(n)
            }
            RollupMeasure::Summary {
                field,
                log2_histogram,
            } => {
                let cfg = field_config(s, field)?;
                let values = doc.values(field);
                if values.len() != 1 {
                    return None;
                }
                let n = canon_number(&canonical_exact(cfg, values[0])?)?;
                let histogram = log2_histogram.then(|| {
                    let a = n.abs();
                    let base = if a == 0.0 || a.is_nan() {
                        1.0
                    } else {
                        a.max(1.0)
                    };
                    let bucket = 2f64.powf(base.log2().floor());
                    vec![(js::number_to_string(bucket), 1.0)]
                });
                MeasureState::Summary {
                    count: 1.0,
                    sum: n,
                    min: Some(n),
                    max: Some(n),
                    histogram,
                }
            }
            RollupMeasure::SummaryParts {
                count_json_pointer,
                sum_json_pointer,
                min_json_pointer,
                max_json_pointer,
                histogram_json_pointer,
            } => {
                let at = |p: &str| pointer::resolve(record, p).ok().flatten();
                let count = finite_number(at(count_json_pointer)?)?;
                let sum = finite_number(at(sum_json_pointer)?)?;
                let min = finite_number(at(min_json_pointer)?)?;
                let max = finite_number(at(max_json_pointer)?)?;
                let histogram = histogram_json_pointer
                    .as_deref()
                    .and_then(at)
                    .and_then(Value::as_object)
                    .map(|o| {
                        o.iter()
                            .filter_map(|(k, v)| finite_number(v).map(|n| (k.clone(), n)))
                            .collect::<Vec<_>>()
                    })
                    .filter(|h| !h.is_empty());
                MeasureState::Summary {
                    count,
                    sum,
                    min: Some(min),
                    max: Some(max),
                    histogram,
                }
            }
        };
        measures.push((name.clone(), state));
    }
    Some(Contribution {
        timestamp_ms,
        dimensions,
        measures,
    })
}

struct Group {
    key: Map<String, Value>,
    measures: Vec<(String, MeasureState)>,
}

/// Buckets being filled.
pub struct Buckets {
    interval_ms: i64,
    group_by: Vec<String>,
    measures: Option<Vec<String>>,
    /// Bucket start → groups (by the key's JSON).
    buckets: std::collections::BTreeMap<i64, Vec<(String, Group)>>,
}

impl Buckets {
    pub fn new(req: &AggregateRequest) -> Buckets {
        Buckets {
            interval_ms: req.interval_ms,
            group_by: req.group_by.clone(),
            measures: req.measures.clone(),
            buckets: Default::default(),
        }
    }

    /// Adds a contribution (already known to be in the request's time range).
    pub fn add(&mut self, c: &Contribution) {
        let start = c.timestamp_ms.div_euclid(self.interval_ms) * self.interval_ms;
        self.add_group(
            start,
            |name| {
                c.dimensions
                    .iter()
                    .find(|(d, _)| d == name)
                    .and_then(|(_, v)| v.clone())
            },
            &c.measures,
        );
    }

    /// Adds measures already merged for the bucket starting at `start` (an interval
    /// boundary), for the group whose dimension values `dimension` gives.
    pub fn add_group(
        &mut self,
        start: i64,
        dimension: impl Fn(&str) -> Option<String>,
        measures: &[(String, MeasureState)],
    ) {
        let mut key = Map::new();
        for g in &self.group_by {
            key.insert(g.clone(), dimension(g).map_or(Value::Null, Value::String));
        }
        let key_json = Value::Object(key.clone()).to_string();
        let groups = self.buckets.entry(start).or_default();
        let idx = match groups.iter().position(|(k, _)| *k == key_json) {
            Some(i) => i,
            None => {
                groups.push((
                    key_json,
                    Group {
                        key,
                        measures: Vec::new(),
                    },
                ));
                groups.len() - 1
            }
        };
        let group = &mut groups[idx].1;
        for (name, state) in measures {
            if self
                .measures
                .as_ref()
                .is_some_and(|sel| !sel.contains(name))
            {
                continue;
            }
            match group.measures.iter_mut().find(|(n, _)| n == name) {
                Some((_, s)) => s.merge(state),
                None => group.measures.push((name.clone(), state.clone())),
            }
        }
    }

    /// The response's `buckets`, by start time; groups by key, measures by name.
    pub fn to_json(&self) -> Value {
        let out: Vec<Value> = self
            .buckets
            .iter()
            .map(|(start, groups)| {
                let mut groups: Vec<&(String, Group)> = groups.iter().collect();
                groups.sort_by(|a, b| js::locale_compare(&a.0, &b.0));
                let groups: Vec<Value> = groups
                    .into_iter()
                    .map(|(_, g)| {
                        let mut ms: Vec<&(String, MeasureState)> = g.measures.iter().collect();
                        ms.sort_by(|a, b| js::locale_compare(&a.0, &b.0));
                        let measures: Map<String, Value> = ms
                            .into_iter()
                            .map(|(n, s)| (n.clone(), s.to_json()))
                            .collect();
                        json!({"key": g.key, "measures": measures})
                    })
                    .collect();
                json!({
                    "start": crate::protocol::headers::format_rfc3339_ms(*start),
                    "end": crate::protocol::headers::format_rfc3339_ms(start + self.interval_ms),
                    "groups": groups,
                })
            })
            .collect();
        Value::Array(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SearchConfig {
        SearchConfig::parse(&json!({
            "primaryTimestampField": "ts",
            "fields": {
                "ts": {"kind": "date", "bindings": [{"version": 1, "jsonPointer": "/ts"}], "column": true},
                "svc": {"kind": "keyword", "bindings": [{"version": 1, "jsonPointer": "/svc"}], "exact": true},
                "ms": {"kind": "integer", "bindings": [{"version": 1, "jsonPointer": "/ms"}],
                       "column": true, "aggregatable": true}
            },
            "rollups": {"r": {"dimensions": ["svc"], "intervals": ["1m", "1h"],
                              "measures": {"n": {"kind": "count", "include": "svc:api"},
                                           "lat": {"kind": "summary", "field": "ms", "histogram": "log2_v1"}}}}
        }))
        .unwrap()
    }

    #[test]
    fn requests_are_checked_with_the_originals_messages() {
        let c = cfg();
        let err = |v: Value| parse_request(Some(&c), &v).unwrap_err();
        assert_eq!(err(json!(1)), "aggregate request must be an object");
        assert_eq!(err(json!({"rollup": " "})), "rollup must be a string");
        assert_eq!(err(json!({"rollup": "x"})), "unknown rollup x");
        assert_eq!(
            err(json!({"rollup": "r", "from": true})),
            "from must be a timestamp string or unix milliseconds"
        );
        assert_eq!(
            err(json!({"rollup": "r", "from": "soon"})),
            "from must be a valid timestamp"
        );
        assert_eq!(
            err(json!({"rollup": "r", "from": 5, "to": 5})),
            "to must be greater than from"
        );
        assert_eq!(
            err(json!({"rollup": "r", "from": 0, "to": 1, "interval": "2m"})),
            "interval 2m is not configured for rollup r"
        );
        assert_eq!(
            err(json!({"rollup": "r", "from": 0, "to": 1, "interval": "1m", "group_by": ["ms"]})),
            "group_by field ms is not configured on rollup r"
        );
        assert_eq!(
            err(json!({"rollup": "r", "from": 0, "to": 1, "interval": "1m", "measures": []})),
            "measures must be a non-empty array of strings"
        );
        assert_eq!(
            err(json!({"rollup": "r", "from": 0, "to": 1, "interval": "1m", "measures": ["x"]})),
            "unknown measure x on rollup r"
        );
        let r = parse_request(
            Some(&c),
            &json!({"rollup": "r", "from": "2000000000", "to": "2024-01-01T00:00:00Z",
                                                "interval": "1h", "measures": ["n", "lat", "n"]}),
        )
        .unwrap();
        assert_eq!(r.from_ms, 2000, "all-digit strings are nanoseconds");
        assert_eq!(r.interval_ms, 3_600_000);
        assert_eq!(r.measures, Some(vec!["lat".to_string(), "n".to_string()]));
    }

    #[test]
    fn contributions_merge_into_buckets_with_log2_histograms() {
        let c = cfg();
        let rollup = CompiledRollup::new(&c, c.rollup("r").unwrap()).unwrap();
        let req = parse_request(
            Some(&c),
            &json!({"rollup": "r", "from": 0, "to": 600_000, "interval": "1m"}),
        )
        .unwrap();
        let mut b = Buckets::new(&req);
        for (ts, svc, ms) in [(1_000, "api", 7), (2_000, "web", 20), (61_000, "api", 0)] {
            let rec = json!({"ts": ts, "svc": svc, "ms": ms});
            b.add(&contribution(&c, &rollup, 1, &rec).unwrap());
        }
        // Two timestamps: no contribution.
        assert!(contribution(&c, &rollup, 1, &json!({"ts": [1, 2], "ms": 1})).is_none());
        assert!(
            contribution(&c, &rollup, 1, &json!({"ts": 1})).is_none(),
            "summary needs its field"
        );
        let out = b.to_json();
        assert_eq!(
            out[0],
            json!({"start": "1970-01-01T00:00:00.000Z", "end": "1970-01-01T00:01:00.000Z",
                   "groups": [{"key": {}, "measures": {
                       "lat": {"count": 2, "sum": 27, "min": 7, "max": 20, "avg": 13.5,
                               "p50": 4, "p95": 16, "p99": 16, "histogram": {"4": 1, "16": 1}},
                       "n": {"count": 1}}}]})
        );
        assert_eq!(
            out[1]["groups"][0]["measures"]["lat"]["histogram"],
            json!({"1": 1})
        );
    }
}
