//! The metrics profile: interval summaries, normalised on append.
//!
//! An appended record names a metric, a unit and a window (`windowStart` ≤ `windowEnd`,
//! integers or numeric strings, truncated) and carries a summary (`count`, `sum`, and
//! optionally `min`, `max`, `buckets` — directly or under `summary`). It is stored as
//! the canonical `durable.streams/metrics/v1` interval: attributes (`attributes`, else
//! `tags`) reduced to strings and sorted, `dimensionPairs`/`dimensionKey`, a `seriesKey`
//! (`metricKind|temporality|metric|unit|stream|instance|dimensionKey`, also the routing
//! key), and `avg`/`p50`/`p95`/`p99` taken from the record or derived from the histogram.
//!
//! Sorting uses the original runtime's `localeCompare`, reproduced for ASCII (see
//! [`js::locale_compare`]).

use serde_json::{json, Map, Value};

use super::js;

/// `normalizeFiniteNumber`: a finite number, or a non-blank numeric string.
fn finite(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()),
        Value::String(s) if !js::trim(s).is_empty() => {
            Some(js::string_to_number(s)).filter(|f| f.is_finite())
        }
        _ => None,
    }
}

/// `normalizeInteger`: [`finite`], truncated.
fn integer(v: Option<&Value>) -> Option<f64> {
    // `+ 0.0` turns a truncated -0 into 0, as JSON output of -0 is 0 anyway.
    finite(v).map(|f| f.trunc() + 0.0)
}

/// Positive bucket counts keyed by bucket bound, or `None` when there are none.
fn histogram(v: Option<&Value>) -> Option<Map<String, Value>> {
    let Some(Value::Object(obj)) = v else {
        return None;
    };
    let mut out = Map::new();
    for (bucket, raw) in js::entries(obj) {
        match finite(Some(raw)) {
            Some(count) if count > 0.0 => {
                out.insert(bucket.to_string(), js::number_value(count));
            }
            _ => {}
        }
    }
    (!out.is_empty()).then_some(out)
}

fn percentile(histogram: Option<&Map<String, Value>>, p: f64) -> Option<f64> {
    let h = histogram?;
    let mut entries: Vec<(f64, f64)> = js::entries(h)
        .into_iter()
        .filter_map(|(k, v)| {
            let bucket = js::string_to_number(k);
            let count = js::as_f64(v)?;
            (bucket.is_finite() && count.is_finite() && count > 0.0).then_some((bucket, count))
        })
        .collect();
    // Stable, as Array.prototype.sort is.
    entries.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    let total: f64 = entries.iter().map(|e| e.1).sum();
    if entries.is_empty() || total <= 0.0 {
        return None;
    }
    let threshold = total * p;
    let mut seen = 0.0;
    for (bucket, count) in &entries {
        seen += count;
        if seen >= threshold {
            return Some(*bucket);
        }
    }
    entries.last().map(|e| e.0)
}

/// Attributes as strings (numbers in JavaScript notation, booleans as words; other
/// values dropped), sorted by key.
fn attributes(v: Option<&Value>) -> Vec<(String, String)> {
    let Some(Value::Object(obj)) = v else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = js::entries(obj)
        .into_iter()
        .filter_map(|(k, raw)| {
            let s = match raw {
                Value::String(s) => s.clone(),
                Value::Number(n) => js::number_to_string(n.as_f64()?),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((k.to_string(), s))
        })
        .collect();
    out.sort_by(|a, b| js::locale_compare(&a.0, &b.0));
    out
}

/// Normalises one appended metrics record.
pub fn normalize(record: Value) -> Result<Value, String> {
    let Value::Object(input) = record else {
        return Err("metrics record must be an object".into());
    };
    let s = |k: &str| js::normalize_string(input.get(k));
    if s("kind").as_deref().unwrap_or("interval") != "interval" {
        return Err("metrics record.kind must be interval".into());
    }
    let metric = s("metric").ok_or("metrics record.metric must be a non-empty string")?;
    let unit = s("unit").ok_or("metrics record.unit must be a non-empty string")?;
    let (Some(window_start), Some(window_end)) = (
        integer(input.get("windowStart")),
        integer(input.get("windowEnd")),
    ) else {
        return Err("metrics record.windowStart and windowEnd must be integers".into());
    };
    if window_end < window_start {
        return Err("metrics record.windowEnd must be >= windowStart".into());
    }
    let interval_ms = integer(input.get("intervalMs")).unwrap_or(window_end - window_start);
    if interval_ms < 0.0 {
        return Err("metrics record.intervalMs must be >= 0".into());
    }
    let metric_kind = s("metricKind").unwrap_or_else(|| "summary".into());
    let temporality = s("temporality").unwrap_or_else(|| "delta".into());
    let stream = s("stream");
    let instance = s("instance");
    let attrs_source = match input.get("attributes") {
        None | Some(Value::Null) => input.get("tags"),
        some => some,
    };
    let attrs = attributes(attrs_source);
    let mut pairs: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.sort_by(|a, b| js::locale_compare(a, b));
    let dimension_key = (!pairs.is_empty()).then(|| pairs.join("\u{0}"));
    let series_key = [
        metric_kind.as_str(),
        temporality.as_str(),
        metric.as_str(),
        unit.as_str(),
        stream.as_deref().unwrap_or(""),
        instance.as_deref().unwrap_or(""),
        dimension_key.as_deref().unwrap_or(""),
    ]
    .join("|");

    let summary = match input.get("summary") {
        Some(Value::Object(o)) => Some(o),
        _ => None,
    };
    let from_summary = |k: &str| summary.and_then(|o| o.get(k));
    let hist = histogram(input.get("buckets")).or_else(|| histogram(from_summary("histogram")));
    let pick = |k: &str| finite(input.get(k)).or_else(|| finite(from_summary(k)));
    let count = match pick("count") {
        Some(c) if c >= 0.0 => c,
        _ => return Err("metrics interval requires count".into()),
    };
    let sum = pick("sum").ok_or("metrics interval requires sum")?;
    let (min, max) = if count == 0.0 {
        (None, None)
    } else {
        (
            Some(pick("min").unwrap_or(0.0)),
            Some(pick("max").unwrap_or(0.0)),
        )
    };
    let avg = finite(input.get("avg")).unwrap_or(if count > 0.0 { sum / count } else { 0.0 });
    let pct = |k: &str, p: f64| {
        finite(input.get(k))
            .or_else(|| percentile(hist.as_ref(), p))
            .unwrap_or(0.0)
    };
    let (p50, p95, p99) = (pct("p50", 0.5), pct("p95", 0.95), pct("p99", 0.99));

    let n = js::number_value;
    let opt = |x: Option<f64>| x.map_or(Value::Null, js::number_value);
    let attr_obj = Value::Object(js::reorder(
        attrs
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect(),
    ));
    let hist_obj = Value::Object(hist.map(js::reorder).unwrap_or_default());
    Ok(json!({
        "apiVersion": "durable.streams/metrics/v1",
        "kind": "interval",
        "metric": metric,
        "unit": unit,
        "metricKind": metric_kind,
        "temporality": temporality,
        "windowStart": n(window_start),
        "windowEnd": n(window_end),
        "intervalMs": n(interval_ms),
        "instance": instance,
        "stream": stream,
        "tags": attr_obj.clone(),
        "attributes": attr_obj,
        "dimensionPairs": pairs,
        "dimensionKey": dimension_key,
        "seriesKey": series_key,
        "count": n(count),
        "sum": n(sum),
        "min": opt(min),
        "max": opt(max),
        "avg": n(avg),
        "p50": n(p50),
        "p95": n(p95),
        "p99": n(p99),
        "buckets": hist_obj.clone(),
        "summary": {
            "count": n(count),
            "sum": n(sum),
            "min": opt(min),
            "max": opt(max),
            "histogram": hist_obj,
        },
    }))
}

/// The routing key of a normalised metrics record: its `seriesKey`.
pub fn routing_key(record: &Value) -> Option<String> {
    record.get("seriesKey")?.as_str().map(str::to_string)
}
