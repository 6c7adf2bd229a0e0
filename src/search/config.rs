//! The `search` section of a stream's schema registry: which record fields are
//! searchable, how, and which rollups are precomputed.
//!
//! The server stores `search` **exactly as posted** (clients such as `@prisma/dev`
//! compare it with what they posted, and any added or dropped key breaks their restart).
//! [`validate`] only accepts or rejects, with the original's rules and messages; the
//! typed [`SearchConfig`] is what the search and aggregation features read.
//!
//! Shape:
//! - `primaryTimestampField` names a declared `date` field;
//! - `fields` (non-empty): name → `{kind, bindings: [{version, jsonPointer}], normalizer?,
//!   analyzer?, exact?, prefix?, column?, exists?, sortable?, aggregatable?, contains?,
//!   positions?}`, with per-kind restrictions (text needs an analyzer and cannot be a
//!   column, sortable or aggregatable; typed kinds take no prefix, contains or
//!   normalizer; keywords take no analyzer; only text has positions). A binding says where
//!   the field lives from schema version `version` on;
//! - `defaultFields` (`[{field, boost?}]`), `containsDefaultFields` (`[name]`), `aliases`
//!   (`{alias: field}`), `profile` (a string, kept when it is one);
//! - `rollups`: name → `{timestampField? (default the primary), include?, dimensions?
//!   (exact fields), intervals (durations like `1m`), measures}` where a measure is
//!   `count {include?}`, `summary {field (aggregatable integer/float), histogram?:
//!   "log2_v1"}` or `summary_parts {count,sum,min,maxJsonPointer, histogramJsonPointer?}`.
//!
//! Names are trimmed, at most 64 UTF-16 units, and match `^[a-zA-Z0-9][a-zA-Z0-9._-]*$`.
//! Flags count only when `true` (`"exact": "yes"` is accepted and means false).
//! One deliberate difference: the original looks declared fields up in a plain
//! JavaScript object, so names such as `toString` or `constructor` count as declared
//! there; here only declared fields do.

use serde_json::{json, Map, Value};

use crate::profiles::js;

/// The kind of a search field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Keyword,
    Text,
    Integer,
    Float,
    Date,
    Bool,
}

impl FieldKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldKind::Keyword => "keyword",
            FieldKind::Text => "text",
            FieldKind::Integer => "integer",
            FieldKind::Float => "float",
            FieldKind::Date => "date",
            FieldKind::Bool => "bool",
        }
    }

    fn parse(v: Option<&Value>) -> Option<FieldKind> {
        Some(match v?.as_str()? {
            "keyword" => FieldKind::Keyword,
            "text" => FieldKind::Text,
            "integer" => FieldKind::Integer,
            "float" => FieldKind::Float,
            "date" => FieldKind::Date,
            "bool" => FieldKind::Bool,
            _ => return None,
        })
    }

    /// integer, float, date and bool.
    pub fn is_typed(self) -> bool {
        matches!(
            self,
            FieldKind::Integer | FieldKind::Float | FieldKind::Date | FieldKind::Bool
        )
    }
}

/// Keyword normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalizer {
    IdentityV1,
    LowercaseV1,
}

impl Normalizer {
    pub fn as_str(self) -> &'static str {
        match self {
            Normalizer::IdentityV1 => "identity_v1",
            Normalizer::LowercaseV1 => "lowercase_v1",
        }
    }
}

/// Text analysis (`unicode_word_v1`: lower-cased runs of letters and digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Analyzer {
    UnicodeWordV1,
}

impl Analyzer {
    pub fn as_str(self) -> &'static str {
        "unicode_word_v1"
    }
}

/// Where a field lives in records of schema version `version` and later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub version: u64,
    /// An RFC 6901 pointer (`""` or starting with `/`).
    pub json_pointer: String,
}

/// One search field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldConfig {
    pub kind: FieldKind,
    /// In the order given; versions are distinct.
    pub bindings: Vec<Binding>,
    pub normalizer: Option<Normalizer>,
    pub analyzer: Option<Analyzer>,
    pub exact: bool,
    pub prefix: bool,
    pub column: bool,
    pub exists: bool,
    pub sortable: bool,
    pub aggregatable: bool,
    pub contains: bool,
    pub positions: bool,
}

impl FieldConfig {
    /// The binding for records of schema `version`: the one with the highest version
    /// not above it.
    pub fn binding_for_version(&self, version: u64) -> Option<&Binding> {
        self.bindings
            .iter()
            .filter(|b| b.version <= version)
            .max_by_key(|b| b.version)
    }
}

/// An entry of `defaultFields`.
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultField {
    pub field: String,
    pub boost: Option<f64>,
}

/// A rollup measure.
#[derive(Debug, Clone, PartialEq)]
pub enum RollupMeasure {
    /// Records counted (those matching `include`, a search query, when given).
    Count { include: Option<String> },
    /// count/sum/min/max (and a log2 histogram when asked) of an aggregatable numeric
    /// field.
    Summary { field: String, log2_histogram: bool },
    /// Pre-aggregated parts read from each record.
    SummaryParts {
        count_json_pointer: String,
        sum_json_pointer: String,
        min_json_pointer: String,
        max_json_pointer: String,
        histogram_json_pointer: Option<String>,
    },
}

/// A rollup interval: as written, and in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupInterval {
    pub text: String,
    pub ms: u64,
}

/// One rollup.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupConfig {
    /// The date field buckets are cut on (the primary timestamp field by default).
    pub timestamp_field: String,
    /// A search query selecting the records rolled up.
    pub include: Option<String>,
    pub dimensions: Option<Vec<String>>,
    pub intervals: Vec<RollupInterval>,
    /// In the order given.
    pub measures: Vec<(String, RollupMeasure)>,
}

/// The typed search configuration. Maps keep the order of the posted object (names
/// trimmed; a name repeated after trimming keeps its first position and last value).
#[derive(Debug, Clone, PartialEq)]
pub struct SearchConfig {
    pub profile: Option<String>,
    pub primary_timestamp_field: String,
    pub default_fields: Option<Vec<DefaultField>>,
    pub contains_default_fields: Option<Vec<String>>,
    pub aliases: Option<Vec<(String, String)>>,
    pub fields: Vec<(String, FieldConfig)>,
    pub rollups: Option<Vec<(String, RollupConfig)>>,
}

/// Accepts or rejects a registry's `search` value (`null` means none and is accepted).
pub fn validate(search: &Value) -> Result<(), String> {
    SearchConfig::parse_optional(search).map(|_| ())
}

fn upsert<T>(list: &mut Vec<(String, T)>, key: String, value: T) {
    match list.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => list.push((key, value)),
    }
}

fn lookup<'a, T>(list: &'a [(String, T)], key: &str) -> Option<&'a T> {
    list.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// A search name: trimmed, non-empty, ≤ 64 UTF-16 units, `^[a-zA-Z0-9][a-zA-Z0-9._-]*$`.
fn name(raw: &str, path: &str) -> Result<String, String> {
    let t = js::trim(raw);
    if t.is_empty() {
        return Err(format!("{path} must not be empty"));
    }
    if t.encode_utf16().count() > 64 {
        return Err(format!("{path} too long (max 64)"));
    }
    let b = t.as_bytes();
    let ok = b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
    if !ok {
        return Err(format!("{path} must match ^[a-zA-Z0-9][a-zA-Z0-9._-]*$"));
    }
    Ok(t.to_string())
}

fn string_name(v: Option<&Value>, path: &str) -> Result<String, String> {
    match v {
        Some(Value::String(s)) => name(s, path),
        _ => Err(format!("{path} must be a string")),
    }
}

/// An RFC 6901 pointer as the original checks it (`invalid json pointer`).
fn pointer(v: Option<&Value>, path: &str) -> Result<String, String> {
    match v {
        Some(Value::String(s)) if s.is_empty() || s.starts_with('/') => Ok(s.clone()),
        Some(Value::String(_)) => Err("invalid json pointer".into()),
        _ => Err(format!("{path} must be a string")),
    }
}

/// `parseDurationMsResult`: digits and one of ms, s, m, h, d (after trimming).
fn duration_ms(s: &str) -> Option<u64> {
    let t = js::trim(s);
    let split = t.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() {
        return None;
    }
    let factor: u64 = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    // Beyond u64 the original still has a (huge, positive) number.
    let n: u64 = digits.parse().unwrap_or(u64::MAX);
    Some(n.saturating_mul(factor))
}

fn flag(obj: &Map<String, Value>, key: &str) -> bool {
    obj.get(key) == Some(&Value::Bool(true))
}

fn field_config(raw: &Value, path: &str) -> Result<FieldConfig, String> {
    let obj = raw
        .as_object()
        .ok_or_else(|| format!("{path} must be an object"))?;
    js::reject_unknown_keys(
        obj,
        &[
            "kind",
            "bindings",
            "normalizer",
            "analyzer",
            "exact",
            "prefix",
            "column",
            "exists",
            "sortable",
            "aggregatable",
            "contains",
            "positions",
        ],
        path,
    )?;
    let kind = FieldKind::parse(obj.get("kind")).ok_or_else(|| {
        format!("{path}.kind must be keyword, text, integer, float, date, or bool")
    })?;
    let raw_bindings = match obj.get("bindings") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        _ => return Err(format!("{path}.bindings must be a non-empty array")),
    };
    let mut bindings: Vec<Binding> = Vec::new();
    for (i, b) in raw_bindings.iter().enumerate() {
        let bpath = format!("{path}.bindings[{i}]");
        let bo = b
            .as_object()
            .ok_or_else(|| format!("{bpath} must be an object"))?;
        js::reject_unknown_keys(bo, &["version", "jsonPointer"], &bpath)?;
        let version = match bo.get("version").and_then(js::as_f64) {
            Some(v) if v > 0.0 && js::is_integer(v) => v,
            _ => return Err(format!("{bpath}.version must be a positive integer")),
        };
        let json_pointer = pointer(bo.get("jsonPointer"), &format!("{bpath}.jsonPointer"))?;
        let version_u = version as u64;
        if bindings.iter().any(|b| b.version == version_u) {
            return Err(format!(
                "{bpath}.version duplicates {}",
                js::number_to_string(version)
            ));
        }
        bindings.push(Binding {
            version: version_u,
            json_pointer,
        });
    }
    let normalizer = match obj.get("normalizer") {
        None => None,
        Some(v) if v == "identity_v1" => Some(Normalizer::IdentityV1),
        Some(v) if v == "lowercase_v1" => Some(Normalizer::LowercaseV1),
        Some(_) => {
            return Err(format!(
                "{path}.normalizer must be identity_v1 or lowercase_v1"
            ))
        }
    };
    let analyzer = match obj.get("analyzer") {
        None => None,
        Some(v) if v == "unicode_word_v1" => Some(Analyzer::UnicodeWordV1),
        Some(_) => return Err(format!("{path}.analyzer must be unicode_word_v1")),
    };
    let out = FieldConfig {
        kind,
        bindings,
        normalizer,
        analyzer,
        exact: flag(obj, "exact"),
        prefix: flag(obj, "prefix"),
        column: flag(obj, "column"),
        exists: flag(obj, "exists"),
        sortable: flag(obj, "sortable"),
        aggregatable: flag(obj, "aggregatable"),
        contains: flag(obj, "contains"),
        positions: flag(obj, "positions"),
    };
    if kind == FieldKind::Text {
        if out.analyzer.is_none() {
            return Err(format!("{path}.analyzer is required for text fields"));
        }
        for (set, key) in [
            (out.column, "column"),
            (out.sortable, "sortable"),
            (out.aggregatable, "aggregatable"),
        ] {
            if set {
                return Err(format!("{path}.{key} is not supported for text fields"));
            }
        }
    } else if out.positions {
        return Err(format!(
            "{path}.positions is only supported for text fields"
        ));
    }
    if kind == FieldKind::Keyword && out.analyzer.is_some() {
        return Err(format!(
            "{path}.analyzer is not supported for keyword fields"
        ));
    }
    if kind.is_typed() {
        for (set, key) in [
            (out.prefix, "prefix"),
            (out.contains, "contains"),
            (out.normalizer.is_some(), "normalizer"),
        ] {
            if set {
                return Err(format!("{path}.{key} is not supported for typed fields"));
            }
        }
    }
    Ok(out)
}

/// `include`: a non-blank string, kept trimmed.
fn include(v: Option<&Value>, path: &str) -> Result<Option<String>, String> {
    match v {
        None => Ok(None),
        Some(Value::String(s)) if !js::trim(s).is_empty() => Ok(Some(js::trim(s).to_string())),
        Some(_) => Err(format!("{path}.include must be a non-empty string")),
    }
}

fn measure(
    raw: &Value,
    path: &str,
    fields: &[(String, FieldConfig)],
) -> Result<RollupMeasure, String> {
    let obj = raw
        .as_object()
        .ok_or_else(|| format!("{path} must be an object"))?;
    match obj.get("kind").and_then(Value::as_str) {
        Some("count") => {
            js::reject_unknown_keys(obj, &["kind", "include"], path)?;
            Ok(RollupMeasure::Count {
                include: include(obj.get("include"), path)?,
            })
        }
        Some("summary") => {
            js::reject_unknown_keys(obj, &["kind", "field", "histogram"], path)?;
            let fpath = format!("{path}.field");
            let field = string_name(obj.get("field"), &fpath)?;
            let cfg = lookup(fields, &field)
                .ok_or_else(|| format!("{fpath} must reference a declared search field"))?;
            if !cfg.aggregatable {
                return Err(format!(
                    "{fpath} must reference an aggregatable search field"
                ));
            }
            if !matches!(cfg.kind, FieldKind::Integer | FieldKind::Float) {
                return Err(format!("{fpath} must reference an integer or float field"));
            }
            let log2_histogram = match obj.get("histogram") {
                None => false,
                Some(v) if v == "log2_v1" => true,
                Some(_) => return Err(format!("{path}.histogram must be log2_v1")),
            };
            Ok(RollupMeasure::Summary {
                field,
                log2_histogram,
            })
        }
        Some("summary_parts") => {
            js::reject_unknown_keys(
                obj,
                &[
                    "kind",
                    "countJsonPointer",
                    "sumJsonPointer",
                    "minJsonPointer",
                    "maxJsonPointer",
                    "histogramJsonPointer",
                ],
                path,
            )?;
            let p = |k: &str| pointer(obj.get(k), &format!("{path}.{k}"));
            let count_json_pointer = p("countJsonPointer")?;
            let sum_json_pointer = p("sumJsonPointer")?;
            let min_json_pointer = p("minJsonPointer")?;
            let max_json_pointer = p("maxJsonPointer")?;
            let histogram_json_pointer = match obj.get("histogramJsonPointer") {
                None => None,
                Some(_) => Some(p("histogramJsonPointer")?),
            };
            Ok(RollupMeasure::SummaryParts {
                count_json_pointer,
                sum_json_pointer,
                min_json_pointer,
                max_json_pointer,
                histogram_json_pointer,
            })
        }
        _ => Err(format!(
            "{path}.kind must be count, summary, or summary_parts"
        )),
    }
}

fn rollup(
    raw: &Value,
    path: &str,
    fields: &[(String, FieldConfig)],
    primary: &str,
) -> Result<RollupConfig, String> {
    let obj = raw
        .as_object()
        .ok_or_else(|| format!("{path} must be an object"))?;
    js::reject_unknown_keys(
        obj,
        &[
            "timestampField",
            "include",
            "dimensions",
            "intervals",
            "measures",
        ],
        path,
    )?;
    let tpath = format!("{path}.timestampField");
    let timestamp_field = match obj.get("timestampField") {
        None => name(primary, &tpath)?,
        some => string_name(some, &tpath)?,
    };
    match lookup(fields, &timestamp_field) {
        None => return Err(format!("{tpath} must reference a declared field")),
        Some(f) if f.kind != FieldKind::Date => {
            return Err(format!("{tpath} must reference a date field"))
        }
        Some(_) => {}
    }
    let include = include(obj.get("include"), path)?;
    let dimensions = match obj.get("dimensions") {
        None => None,
        Some(Value::Array(items)) => {
            let mut dims: Vec<String> = Vec::new();
            for (i, d) in items.iter().enumerate() {
                let dpath = format!("{path}.dimensions[{i}]");
                let dim = string_name(Some(d), &dpath)?;
                if dims.contains(&dim) {
                    return Err(format!("{dpath} duplicates {dim}"));
                }
                match lookup(fields, &dim) {
                    None => return Err(format!("{dpath} must reference a declared field")),
                    Some(f) if !f.exact => {
                        return Err(format!("{dpath} must reference an exact-capable field"))
                    }
                    Some(_) => {}
                }
                dims.push(dim);
            }
            Some(dims)
        }
        Some(_) => return Err(format!("{path}.dimensions must be an array")),
    };
    let raw_intervals = match obj.get("intervals") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        _ => return Err(format!("{path}.intervals must be a non-empty array")),
    };
    let mut intervals: Vec<RollupInterval> = Vec::new();
    for (i, it) in raw_intervals.iter().enumerate() {
        let ipath = format!("{path}.intervals[{i}]");
        let Value::String(text) = it else {
            return Err(format!("{ipath} must be a string"));
        };
        let ms = match duration_ms(text) {
            Some(ms) if ms > 0 => ms,
            _ => return Err(format!("{ipath} must be a positive duration string")),
        };
        if intervals.iter().any(|x| &x.text == text) {
            return Err(format!("{ipath} duplicates {text}"));
        }
        intervals.push(RollupInterval {
            text: text.clone(),
            ms,
        });
    }
    let raw_measures = match obj.get("measures") {
        Some(Value::Object(m)) if !m.is_empty() => m,
        _ => return Err(format!("{path}.measures must be a non-empty object")),
    };
    let mut measures: Vec<(String, RollupMeasure)> = Vec::new();
    for (mname, mraw) in js::entries(raw_measures) {
        let n = name(mname, &format!("{path}.measures"))?;
        let m = measure(mraw, &format!("{path}.measures.{mname}"), fields)?;
        upsert(&mut measures, n, m);
    }
    Ok(RollupConfig {
        timestamp_field,
        include,
        dimensions,
        intervals,
        measures,
    })
}

impl SearchConfig {
    /// Parses a `search` object.
    pub fn parse(raw: &Value) -> Result<SearchConfig, String> {
        Self::parse_at(raw, "search")
    }

    /// Parses a registry's `search` value: `null` is no configuration.
    pub fn parse_optional(raw: &Value) -> Result<Option<SearchConfig>, String> {
        if raw.is_null() {
            return Ok(None);
        }
        Self::parse(raw).map(Some)
    }

    fn parse_at(raw: &Value, path: &str) -> Result<SearchConfig, String> {
        let obj = raw
            .as_object()
            .ok_or_else(|| format!("{path} must be an object"))?;
        js::reject_unknown_keys(
            obj,
            &[
                "profile",
                "primaryTimestampField",
                "defaultFields",
                "containsDefaultFields",
                "aliases",
                "fields",
                "rollups",
            ],
            path,
        )?;
        let ppath = format!("{path}.primaryTimestampField");
        let primary = string_name(obj.get("primaryTimestampField"), &ppath)?;
        let raw_fields = match obj.get("fields") {
            Some(Value::Object(m)) if !m.is_empty() => m,
            _ => return Err(format!("{path}.fields must be a non-empty object")),
        };
        let mut fields: Vec<(String, FieldConfig)> = Vec::new();
        for (fname, fraw) in js::entries(raw_fields) {
            let n = name(fname, &format!("{path}.fields"))?;
            let f = field_config(fraw, &format!("{path}.fields.{fname}"))?;
            upsert(&mut fields, n, f);
        }
        match lookup(&fields, &primary) {
            None => return Err(format!("{ppath} must reference a declared field")),
            Some(f) if f.kind != FieldKind::Date => {
                return Err(format!("{ppath} must reference a date field"))
            }
            Some(_) => {}
        }

        let default_fields = match obj.get("defaultFields") {
            None => None,
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let dpath = format!("{path}.defaultFields[{i}]");
                    let o = item
                        .as_object()
                        .ok_or_else(|| format!("{dpath} must be an object"))?;
                    js::reject_unknown_keys(o, &["field", "boost"], &dpath)?;
                    let field = string_name(o.get("field"), &format!("{dpath}.field"))?;
                    let boost = match o.get("boost") {
                        None => None,
                        Some(v) => match js::as_f64(v) {
                            Some(b) if b.is_finite() && b > 0.0 => Some(b),
                            _ => return Err(format!("{dpath}.boost must be a positive number")),
                        },
                    };
                    if lookup(&fields, &field).is_none() {
                        return Err(format!("{dpath}.field must reference a declared field"));
                    }
                    out.push(DefaultField { field, boost });
                }
                Some(out)
            }
            Some(_) => return Err(format!("{path}.defaultFields must be an array")),
        };

        let contains_default_fields = match obj.get("containsDefaultFields") {
            None => None,
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let cpath = format!("{path}.containsDefaultFields[{i}]");
                    let n = string_name(Some(item), &cpath)?;
                    if lookup(&fields, &n).is_none() {
                        return Err(format!("{cpath} must reference a declared field"));
                    }
                    out.push(n);
                }
                Some(out)
            }
            Some(_) => return Err(format!("{path}.containsDefaultFields must be an array")),
        };

        let aliases = match obj.get("aliases") {
            None => None,
            Some(Value::Object(m)) => {
                let mut out: Vec<(String, String)> = Vec::new();
                for (alias_raw, target_raw) in js::entries(m) {
                    let alias = name(alias_raw, &format!("{path}.aliases"))?;
                    let apath = format!("{path}.aliases.{alias_raw}");
                    let target = string_name(Some(target_raw), &apath)?;
                    if lookup(&fields, &target).is_none() {
                        return Err(format!("{apath} must reference a declared field"));
                    }
                    upsert(&mut out, alias, target);
                }
                Some(out)
            }
            Some(_) => return Err(format!("{path}.aliases must be an object")),
        };

        let rollups = match obj.get("rollups") {
            None => None,
            Some(Value::Object(m)) => {
                let mut out: Vec<(String, RollupConfig)> = Vec::new();
                for (rname, rraw) in js::entries(m) {
                    let n = name(rname, &format!("{path}.rollups"))?;
                    let r = rollup(rraw, &format!("{path}.rollups.{rname}"), &fields, &primary)?;
                    upsert(&mut out, n, r);
                }
                Some(out)
            }
            Some(_) => return Err(format!("{path}.rollups must be an object")),
        };

        Ok(SearchConfig {
            profile: obj
                .get("profile")
                .and_then(Value::as_str)
                .map(str::to_string),
            primary_timestamp_field: primary,
            default_fields,
            contains_default_fields,
            aliases,
            fields,
            rollups,
        })
    }

    /// The field name an alias stands for (the name itself when it is no alias).
    pub fn resolve_alias<'a>(&'a self, name: &'a str) -> &'a str {
        self.aliases
            .as_deref()
            .and_then(|a| lookup(a, name))
            .map_or(name, String::as_str)
    }

    /// A field by name or alias, with its resolved name.
    pub fn field(&self, name: &str) -> Option<(&str, &FieldConfig)> {
        let resolved = self.resolve_alias(name);
        self.fields
            .iter()
            .find(|(k, _)| k == resolved)
            .map(|(k, v)| (k.as_str(), v))
    }

    /// A rollup by name.
    pub fn rollup(&self, name: &str) -> Option<&RollupConfig> {
        lookup(self.rollups.as_deref()?, name)
    }

    /// The original's normalised form (what it re-serialises: trimmed names, flags only
    /// when true, fixed key order). The server does not store this; it is for
    /// comparisons and diagnostics.
    pub fn to_normalized_json(&self) -> Value {
        let mut m = Map::new();
        if let Some(p) = &self.profile {
            m.insert("profile".into(), p.as_str().into());
        }
        m.insert(
            "primaryTimestampField".into(),
            self.primary_timestamp_field.as_str().into(),
        );
        if let Some(d) = &self.default_fields {
            let items: Vec<Value> = d
                .iter()
                .map(|f| match f.boost {
                    Some(b) => json!({"field": f.field, "boost": js::number_value(b)}),
                    None => json!({"field": f.field}),
                })
                .collect();
            m.insert("defaultFields".into(), Value::Array(items));
        }
        if let Some(c) = &self.contains_default_fields {
            m.insert("containsDefaultFields".into(), json!(c));
        }
        if let Some(a) = &self.aliases {
            let obj: Map<String, Value> = a
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect();
            m.insert("aliases".into(), Value::Object(js::reorder(obj)));
        }
        let fields: Map<String, Value> = self
            .fields
            .iter()
            .map(|(k, f)| (k.clone(), field_json(f)))
            .collect();
        m.insert("fields".into(), Value::Object(js::reorder(fields)));
        if let Some(r) = &self.rollups {
            let obj: Map<String, Value> =
                r.iter().map(|(k, v)| (k.clone(), rollup_json(v))).collect();
            m.insert("rollups".into(), Value::Object(js::reorder(obj)));
        }
        Value::Object(m)
    }
}

fn field_json(f: &FieldConfig) -> Value {
    let mut m = Map::new();
    m.insert("kind".into(), f.kind.as_str().into());
    let bindings: Vec<Value> = f
        .bindings
        .iter()
        .map(|b| json!({"version": b.version, "jsonPointer": b.json_pointer}))
        .collect();
    m.insert("bindings".into(), Value::Array(bindings));
    if let Some(n) = f.normalizer {
        m.insert("normalizer".into(), n.as_str().into());
    }
    if let Some(a) = f.analyzer {
        m.insert("analyzer".into(), a.as_str().into());
    }
    for (set, key) in [
        (f.exact, "exact"),
        (f.prefix, "prefix"),
        (f.column, "column"),
        (f.exists, "exists"),
        (f.sortable, "sortable"),
        (f.aggregatable, "aggregatable"),
        (f.contains, "contains"),
        (f.positions, "positions"),
    ] {
        if set {
            m.insert(key.into(), true.into());
        }
    }
    Value::Object(m)
}

fn rollup_json(r: &RollupConfig) -> Value {
    let mut m = Map::new();
    m.insert("timestampField".into(), r.timestamp_field.as_str().into());
    if let Some(i) = &r.include {
        m.insert("include".into(), i.as_str().into());
    }
    if let Some(d) = &r.dimensions {
        m.insert("dimensions".into(), json!(d));
    }
    let intervals: Vec<&str> = r.intervals.iter().map(|i| i.text.as_str()).collect();
    m.insert("intervals".into(), json!(intervals));
    let measures: Map<String, Value> = r
        .measures
        .iter()
        .map(|(k, v)| {
            let mv = match v {
                RollupMeasure::Count { include: None } => json!({"kind": "count"}),
                RollupMeasure::Count { include: Some(i) } => json!({"kind": "count", "include": i}),
                RollupMeasure::Summary {
                    field,
                    log2_histogram,
                } => {
                    if *log2_histogram {
                        json!({"kind": "summary", "field": field, "histogram": "log2_v1"})
                    } else {
                        json!({"kind": "summary", "field": field})
                    }
                }
                RollupMeasure::SummaryParts {
                    count_json_pointer,
                    sum_json_pointer,
                    min_json_pointer,
                    max_json_pointer,
                    histogram_json_pointer,
                } => {
                    let mut o = json!({
                        "kind": "summary_parts",
                        "countJsonPointer": count_json_pointer,
                        "sumJsonPointer": sum_json_pointer,
                        "minJsonPointer": min_json_pointer,
                        "maxJsonPointer": max_json_pointer,
                    });
                    if let (Some(h), Value::Object(om)) = (histogram_json_pointer, &mut o) {
                        om.insert("histogramJsonPointer".into(), h.as_str().into());
                    }
                    o
                }
            };
            (k.clone(), mv)
        })
        .collect();
    m.insert("measures".into(), Value::Object(js::reorder(measures)));
    Value::Object(m)
}

#[cfg(test)]
mod tests;
