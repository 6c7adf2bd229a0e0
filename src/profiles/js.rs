//! The few JavaScript value semantics the original's validators rely on, so that the
//! same inputs are accepted, coerced and reported the same way.
//!
//! - Property order: `Object.keys` lists array-index keys (`"0"`, `"17"`) first in
//!   ascending order, then the other keys in insertion order. Validators walk keys in
//!   that order so that the *first* error reported is the original's.
//! - `Number(x)`: the coercion the touch configuration applies to every numeric field
//!   (`"100"` is 100, `null` is 0, `[5]` is 5, `{}` is NaN).
//! - `String.prototype.trim`: JavaScript's white space set, which differs from Rust's
//!   (`U+FEFF` is white space, `U+0085` is not).
//! - Truthiness (`!!x`), number-to-JSON formatting of integral values, and
//!   `Date.prototype.toISOString`.
//! - The RFC 3339 check shared by State Protocol timestamps and `format: date-time`:
//!   the regular expression of the original plus the field ranges the original's
//!   runtime (Bun) accepts in `Date.parse`.

use serde_json::{Map, Value};

/// Whether `k` is an array index in the sense of ECMAScript property ordering.
fn array_index(k: &str) -> Option<u32> {
    if k.is_empty() || k.len() > 10 || !k.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if k.len() > 1 && k.starts_with('0') {
        return None;
    }
    let n: u64 = k.parse().ok()?;
    if n < u64::from(u32::MAX) {
        u32::try_from(n).ok()
    } else {
        None
    }
}

/// The entries of `map` in `Object.entries` order.
pub fn entries(map: &Map<String, Value>) -> Vec<(&str, &Value)> {
    let mut indexed: Vec<(u32, &str, &Value)> = Vec::new();
    let mut named: Vec<(&str, &Value)> = Vec::new();
    for (k, v) in map {
        match array_index(k) {
            Some(i) => indexed.push((i, k.as_str(), v)),
            None => named.push((k.as_str(), v)),
        }
    }
    indexed.sort_by_key(|(i, _, _)| *i);
    indexed
        .into_iter()
        .map(|(_, k, v)| (k, v))
        .chain(named)
        .collect()
}

/// `rejectUnknownKeysResult`: the first key (in JS order) outside `allowed`, reported as
/// `<path>.<key> is not supported`.
pub fn reject_unknown_keys(
    map: &Map<String, Value>,
    allowed: &[&str],
    path: &str,
) -> Result<(), String> {
    for (k, _) in entries(map) {
        if !allowed.contains(&k) {
            return Err(format!("{path}.{k} is not supported"));
        }
    }
    Ok(())
}

fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\u{0009}'
            | '\u{000A}'
            | '\u{000B}'
            | '\u{000C}'
            | '\u{000D}'
            | '\u{0020}'
            | '\u{00A0}'
            | '\u{1680}'
            | '\u{2000}'
            ..='\u{200A}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202F}'
                | '\u{205F}'
                | '\u{3000}'
                | '\u{FEFF}'
    )
}

/// `String.prototype.trim`.
pub fn trim(s: &str) -> &str {
    s.trim_matches(is_js_space)
}

/// `normalizeString`: a string that is not blank, trimmed; anything else is `None`.
pub fn normalize_string(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) => {
            let t = trim(s);
            (!t.is_empty()).then(|| t.to_string())
        }
        _ => None,
    }
}

/// The number a JSON value holds, as JavaScript sees it.
pub fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// `!!x` for a JSON value.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// `Number(x)` for a JSON value (ToPrimitive of arrays joins their elements).
pub fn to_number(v: &Value) -> f64 {
    match v {
        Value::Null => 0.0,
        Value::Bool(b) => {
            if *b {
                1.0
            } else {
                0.0
            }
        }
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => string_to_number(s),
        Value::Object(_) => f64::NAN,
        Value::Array(items) => match items.as_slice() {
            [] => 0.0,
            [only] => match only {
                // String(null) inside an array is "", which is 0.
                Value::Null => 0.0,
                Value::Bool(_) | Value::Object(_) => f64::NAN,
                other => to_number(other),
            },
            // Two or more elements join with "," and never form a number.
            _ => f64::NAN,
        },
    }
}

/// `Number(s)` for a string (ECMAScript StringToNumber).
pub fn string_to_number(s: &str) -> f64 {
    let t = trim(s);
    if t.is_empty() {
        return 0.0;
    }
    match t {
        "Infinity" | "+Infinity" => return f64::INFINITY,
        "-Infinity" => return f64::NEG_INFINITY,
        _ => {}
    }
    let radix = if t.len() > 2 && t.as_bytes()[0] == b'0' {
        match t.as_bytes()[1] {
            b'x' | b'X' => Some(16),
            b'o' | b'O' => Some(8),
            b'b' | b'B' => Some(2),
            _ => None,
        }
    } else {
        None
    };
    if let Some(radix) = radix {
        let mut acc = 0.0f64;
        for c in t[2..].chars() {
            match c.to_digit(radix) {
                Some(d) => acc = acc * f64::from(radix) + f64::from(d),
                None => return f64::NAN,
            }
        }
        return acc;
    }
    if !is_decimal_literal(t) {
        return f64::NAN;
    }
    t.parse::<f64>().unwrap_or(f64::NAN)
}

/// `[+-]? (digits ("." digits?)? | "." digits) ([eE] [+-]? digits)?`
fn is_decimal_literal(t: &str) -> bool {
    let b = t.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac_digits = i - s;
    }
    if int_digits + frac_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == s {
            return false;
        }
    }
    i == b.len()
}

/// A JavaScript number as JSON, printed as `JSON.stringify` prints it where serde_json
/// can: integral values as integers with JavaScript's digits (so 2^60 is
/// `1152921504606846976` but 1767225599999998976 is `1767225599999999000`), others as
/// floats. (At 1e21 and above JavaScript writes `1e+21`, serde_json `1e21`.)
pub fn number_value(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e18 {
        if let Ok(i) = number_to_string(x).parse::<i64>() {
            return Value::from(i);
        }
    }
    serde_json::Number::from_f64(x)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// `Number.isInteger(x)`.
pub fn is_integer(x: f64) -> bool {
    x.is_finite() && x.fract() == 0.0
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1..=12; any day, which
/// rolls over as `Date.UTC` does).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The largest time value a JavaScript `Date` holds.
pub const MAX_DATE_MS: i64 = 8_640_000_000_000_000;

/// `new Date(ms).toISOString()`; `None` outside the `Date` range.
pub fn iso_from_ms(ms: i64) -> Option<String> {
    if !(-MAX_DATE_MS..=MAX_DATE_MS).contains(&ms) {
        return None;
    }
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, mo, d) = civil_from_days(days);
    let h = rem / 3_600_000;
    let mi = rem / 60_000 % 60;
    let s = rem / 1000 % 60;
    let milli = rem % 1000;
    let year = if (0..=9999).contains(&y) {
        format!("{y:04}")
    } else if y < 0 {
        format!("-{:06}", -y)
    } else {
        format!("+{y:06}")
    };
    Some(format!(
        "{year}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z"
    ))
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let part = b.get(at..at + n)?;
    if !part.iter().all(u8::is_ascii_digit) {
        return None;
    }
    part.iter()
        .try_fold(0u32, |acc, &c| Some(acc * 10 + u32::from(c - b'0')))
}

/// Parses `^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$` into
/// Unix milliseconds with the field ranges `Date.parse` enforces in the original's
/// runtime: month 1–12, day 1–31 (rolling over past the month's end), hour 0–24 (24 only
/// at exactly 24:00:00), minute and second 0–59, offset hours 0–23 and minutes 0–59.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0u32;
    let mut frac_nonzero = false;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let n = i - start;
        if n == 0 || n > 9 {
            return None;
        }
        for (k, c) in b[start..i].iter().enumerate() {
            let dgt = u32::from(c - b'0');
            if dgt != 0 {
                frac_nonzero = true;
            }
            if k < 3 {
                frac_ms += dgt * [100, 10, 1][k];
            }
        }
    }
    let offset_min: i64 = match b.get(i) {
        Some(b'Z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = digits(b, i + 1, 2)?;
            let om = digits(b, i + 4, 2)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let m = i64::from(oh * 60 + om);
            if sign == b'+' {
                m
            } else {
                -m
            }
        }
        _ => return None,
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || minute > 59 || second > 59 {
        return None;
    }
    if hour > 24 || (hour == 24 && (minute != 0 || second != 0 || frac_nonzero)) {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    let ms = days * 86_400_000
        + i64::from(hour) * 3_600_000
        + i64::from(minute) * 60_000
        + i64::from(second) * 1000
        + i64::from(frac_ms)
        - offset_min * 60_000;
    Some(ms)
}

/// `isDateTimeString` of the original: the RFC 3339 pattern and a parseable date.
pub fn is_date_time_string(s: &str) -> bool {
    parse_rfc3339_ms(s).is_some()
}

/// `Number.prototype.toString()` (and `String(x)`) for a finite number.
pub fn number_to_string(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if x == 0.0 {
        return "0".into();
    }
    // Shortest round-trip digits and exponent, e.g. "1.5e-7".
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let e: i64 = exp.parse().unwrap_or(0);
    let k = digits.len() as i64;
    let n = e + 1;
    let sign = if x < 0.0 { "-" } else { "" };
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let exp_sign = if n - 1 < 0 { "-" } else { "+" };
        let mag = (n - 1).abs();
        if k == 1 {
            format!("{digits}e{exp_sign}{mag}")
        } else {
            format!("{}.{}e{exp_sign}{mag}", &digits[..1], &digits[1..])
        }
    };
    format!("{sign}{body}")
}

/// Printable ASCII in the order of the original runtime's `localeCompare` (ICU root
/// collation); letters of both cases share a primary weight.
const COLLATION_ORDER: &str =
    " _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789aAbBcCdDeEfFgGhHiIjJkKlLmMnNoOpPqQrRsStTuUvVwWxXyYzZ";

fn primary_weight(c: char) -> Option<u32> {
    if c.is_ascii_control() {
        return None; // ignorable
    }
    let folded = c.to_ascii_lowercase();
    match COLLATION_ORDER.find(folded) {
        Some(i) => Some(i as u32),
        None => Some(1000 + c as u32),
    }
}

/// `a.localeCompare(b)` as the original runtime orders ASCII strings: primary weights
/// (punctuation, then symbols, digits, letters without case), then case (lower first).
/// Other characters sort after ASCII letters by code point, an approximation.
pub fn locale_compare(a: &str, b: &str) -> std::cmp::Ordering {
    let primary = |s: &str| s.chars().filter_map(primary_weight).collect::<Vec<u32>>();
    let tertiary = |s: &str| {
        s.chars()
            .filter(|c| !c.is_ascii_control())
            .map(|c| u8::from(c.is_ascii_uppercase()))
            .collect::<Vec<u8>>()
    };
    primary(a)
        .cmp(&primary(b))
        .then_with(|| tertiary(a).cmp(&tertiary(b)))
}

/// `Array.prototype.sort()` without a comparator on strings: UTF-16 code unit order.
pub fn utf16_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// The object `map` would be after a JavaScript round trip: array-index keys first.
pub fn reorder(map: Map<String, Value>) -> Map<String, Value> {
    let order: Vec<String> = entries(&map)
        .into_iter()
        .map(|(k, _)| k.to_string())
        .collect();
    let mut map = map;
    let mut out = Map::new();
    for k in order {
        if let Some(v) = map.remove(&k) {
            out.insert(k, v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn number_coercion_matches_javascript() {
        let cases: &[(Value, f64)] = &[
            (json!(" 12 "), 12.0),
            (json!("0x1F"), 31.0),
            (json!("1e3"), 1000.0),
            (json!("1."), 1.0),
            (json!(".5"), 0.5),
            (json!("+.5e1"), 5.0),
            (json!("Infinity"), f64::INFINITY),
            (json!("\u{FEFF}5"), 5.0),
            (json!([["7"]]), 7.0),
            (json!([null]), 0.0),
            (json!([]), 0.0),
            (json!(true), 1.0),
            (json!(null), 0.0),
            (json!("0b101"), 5.0),
            (json!("0o17"), 15.0),
            (json!("00012"), 12.0),
            (json!(""), 0.0),
        ];
        for (v, want) in cases {
            assert_eq!(to_number(v), *want, "{v}");
        }
        for v in [
            json!("-0x10"),
            json!("inf"),
            json!("\u{0085}5"),
            json!("1_000"),
            json!("1e"),
            json!("."),
            json!("+"),
            json!({}),
            json!([1, 2]),
            json!([true]),
            json!("nan"),
            json!("infinity"),
        ] {
            assert!(to_number(&v).is_nan(), "{v}");
        }
    }

    #[test]
    fn key_order_puts_array_indices_first() {
        let v = json!({"b": 1, "10": 2, "a": 3, "2": 4, "01": 5, "4294967295": 6});
        let keys: Vec<&str> = entries(v.as_object().unwrap())
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, ["2", "10", "b", "a", "01", "4294967295"]);
    }

    #[test]
    fn date_parse_ranges_match_the_original_runtime() {
        // Values observed with Bun 1.3.11's Date.parse.
        let ok: &[(&str, i64)] = &[
            ("2026-02-30T00:00:00Z", 1_772_409_600_000),
            ("2026-01-01T24:00:00Z", 1_767_312_000_000),
            ("0000-01-01T00:00:00Z", -62_167_219_200_000),
            ("2026-01-01T00:00:00.123456789Z", 1_767_225_600_123),
            ("2026-04-31T00:00:00Z", 1_777_593_600_000),
            ("2026-01-01T00:00:00+23:59", 1_767_139_260_000),
            ("2026-01-01T00:00:00-00:00", 1_767_225_600_000),
            ("2026-01-01T24:00:00.000Z", 1_767_312_000_000),
            ("2026-01-01T00:00:00+00:59", 1_767_222_060_000),
            ("2026-02-31T00:00:00Z", 1_772_496_000_000),
            ("9999-12-31T23:59:59Z", 253_402_300_799_000),
            ("2026-01-01T00:00:00.55Z", 1_767_225_600_550),
            ("2026-01-01T00:00:00.0005Z", 1_767_225_600_000),
        ];
        for (s, ms) in ok {
            assert_eq!(parse_rfc3339_ms(s), Some(*ms), "{s}");
        }
        for s in [
            "2026-13-01T00:00:00Z",
            "2026-01-01T23:60:00Z",
            "2026-01-01T23:59:60Z",
            "2026-01-01T00:00:00+25:00",
            "2026-01-01T24:30:00Z",
            "2026-01-01T24:00:01Z",
            "2026-01-01T24:00:00.001Z",
            "2026-01-01T00:00:00+24:00",
            "2026-01-01T00:00:00+23:60",
            "2026-01-32T00:00:00Z",
            "2026-01-00T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-01-01T00:00:00.9999999999Z",
            "2026-01-01T00:00:00",
            "2026-01-01 00:00:00Z",
            "2026-01-01T00:00:00z",
            "2026-01-01T00:00:00.Z",
            "not-a-timestamp",
        ] {
            assert_eq!(parse_rfc3339_ms(s), None, "{s}");
        }
    }

    #[test]
    fn iso_strings_match_to_iso_string() {
        assert_eq!(
            iso_from_ms(8_640_000_000_000_000).as_deref(),
            Some("+275760-09-13T00:00:00.000Z")
        );
        assert_eq!(
            iso_from_ms(-62_167_219_200_001).as_deref(),
            Some("-000001-12-31T23:59:59.999Z")
        );
        assert_eq!(
            iso_from_ms(253_402_300_800_000).as_deref(),
            Some("+010000-01-01T00:00:00.000Z")
        );
        assert_eq!(
            iso_from_ms(1_767_225_600_123).as_deref(),
            Some("2026-01-01T00:00:00.123Z")
        );
        assert_eq!(iso_from_ms(8_640_000_000_000_001), None);
    }

    #[test]
    fn numbers_print_like_json_stringify() {
        assert_eq!(number_value(100.0).to_string(), "100");
        assert_eq!(number_value(-0.0).to_string(), "0");
        assert_eq!(number_value(0.5).to_string(), "0.5");
        assert_eq!(number_value(1e15).to_string(), "1000000000000000");
        assert_eq!(
            number_value(1_767_225_599_999_998_976.0).to_string(),
            "1767225599999999000"
        );
    }

    #[test]
    fn trim_uses_javascript_white_space() {
        assert_eq!(trim("\u{FEFF} a \u{3000}"), "a");
        assert_eq!(trim("\u{0085}a"), "\u{0085}a");
    }

    #[test]
    fn numbers_stringify_like_javascript() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1"),
            (-1.5, "-1.5"),
            (0.1, "0.1"),
            (1e21, "1e+21"),
            (1.5e21, "1.5e+21"),
            (1e20, "100000000000000000000"),
            (1.5e-7, "1.5e-7"),
            (0.000001, "0.000001"),
            (123.456, "123.456"),
            (-0.0, "0"),
        ];
        for (x, want) in cases {
            assert_eq!(number_to_string(*x), *want);
        }
    }

    #[test]
    fn locale_compare_matches_the_original_runtime_on_ascii() {
        // Order observed with Bun 1.3.11's localeCompare.
        let want = [
            "10=x", "9=x", "a b=1", "a_b=1", "a-b=1", "a.b=1", "a=1", "A=1", "a=10", "a=2", "a=9",
            "ab=1", "aB=1", "Ab=1", "B=0", "b=1", "e=1", "f=1", "z=1",
        ];
        let mut got = want.to_vec();
        got.reverse();
        got.sort_by(|a, b| locale_compare(a, b));
        assert_eq!(got, want);
    }
}
