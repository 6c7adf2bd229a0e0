//! JavaScript-compatible value conversions used by the lens runtime, the proof and the
//! JSON Schema `date-time` check. The original ran on a JS engine, so observable results
//! (map keys, converted numbers, dates) follow JS rules; each function names the JS
//! operation it reproduces.

use serde_json::{Map, Number, Value};

/// 2^53: integers up to this magnitude are exact in a JS number.
const MAX_EXACT: u64 = 1 << 53;

/// The largest absolute time value a JS `Date` holds (ECMA-262 TimeClip): 8.64e15 ms.
const MAX_TIME_MS: f64 = 8.64e15;

const MS_PER_DAY: i64 = 86_400_000;

/// The JS number a JSON number becomes (`JSON.parse`).
pub fn number_to_f64(n: &Number) -> f64 {
    // as_f64 never fails for serde_json numbers without arbitrary_precision.
    n.as_f64().unwrap_or(f64::NAN)
}

/// Whether a JSON number is integral (JS `Number.isInteger`).
pub fn is_integer(n: &Number) -> bool {
    if n.is_i64() || n.is_u64() {
        return true;
    }
    let f = number_to_f64(n);
    f.is_finite() && f.trunc() == f
}

/// JS `Number.prototype.toString()` (radix 10) of a double: shortest round-trip digits,
/// plain notation for exponents in [-7, 21), otherwise `1e+21` style; `-0` → `"0"`.
pub fn f64_to_string(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_owned();
    }
    if x == 0.0 {
        return "0".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    let sign = if x < 0.0 { "-" } else { "" };
    // Rust's `{:e}` prints the shortest digits that round-trip, like JS.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    let n = exp + 1;
    let body = if k <= n && n <= 21 {
        let zeros = usize::try_from(n - k).unwrap_or(0);
        format!("{digits}{}", "0".repeat(zeros))
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(usize::try_from(n).unwrap_or(0));
        format!("{int}.{frac}")
    } else if -6 < n && n <= 0 {
        let zeros = usize::try_from(-n).unwrap_or(0);
        format!("0.{}{digits}", "0".repeat(zeros))
    } else {
        let e = n - 1;
        let e_sign = if e < 0 { '-' } else { '+' };
        let (first, rest) = digits.split_at(1);
        if rest.is_empty() {
            format!("{first}e{e_sign}{}", e.abs())
        } else {
            format!("{first}.{rest}e{e_sign}{}", e.abs())
        }
    };
    format!("{sign}{body}")
}

/// JS `String(n)` of a JSON number (integers beyond 2^53 first become the nearest double,
/// as `JSON.parse` would make them).
pub fn number_to_string(n: &Number) -> String {
    if let Some(u) = n.as_u64() {
        if u <= MAX_EXACT {
            return u.to_string();
        }
    } else if let Some(i) = n.as_i64() {
        if i.unsigned_abs() <= MAX_EXACT {
            return i.to_string();
        }
    }
    f64_to_string(number_to_f64(n))
}

/// JS `String(v)` of a JSON value: `null`, `true`, numbers as JS prints them, strings as
/// is, arrays joined with `,` (null elements empty), objects `[object Object]`.
pub fn value_to_string(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number_to_string(n),
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Null => String::new(),
                other => value_to_string(other),
            })
            .collect::<Vec<_>>()
            .join(","),
        Value::Object(_) => "[object Object]".to_owned(),
    }
}

/// JS truthiness of a JSON value (`null`, `false`, `0`, `-0` and `""` are falsy).
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => number_to_f64(n) != 0.0,
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// JS `Number(v)` of a JSON value (for loose comparisons such as `minItems < 1`).
pub fn to_number(v: &Value) -> f64 {
    match v {
        Value::Null => 0.0,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Number(n) => number_to_f64(n),
        Value::String(s) => string_to_number(s),
        Value::Array(_) => string_to_number(&value_to_string(v)),
        Value::Object(_) => f64::NAN,
    }
}

fn string_to_number(s: &str) -> f64 {
    let t = s.trim_matches(is_js_whitespace);
    if t.is_empty() {
        return 0.0;
    }
    match t {
        "Infinity" | "+Infinity" => f64::INFINITY,
        "-Infinity" => f64::NEG_INFINITY,
        _ if t
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) =>
        {
            t.parse().unwrap_or(f64::NAN)
        }
        _ => f64::NAN,
    }
}

/// JS WhiteSpace and LineTerminator (what `trim` and `parseInt` skip).
fn is_js_whitespace(c: char) -> bool {
    (c.is_whitespace() && c != '\u{85}') || c == '\u{FEFF}'
}

/// JS `parseInt(s, 10)`: skips leading whitespace, takes an optional sign and the longest
/// run of ASCII digits; `None` when there is no digit (NaN). The result is the nearest
/// double (`-0` for `"-0"`).
pub fn parse_int(s: &str) -> Option<f64> {
    let t = s.trim_start_matches(is_js_whitespace);
    let (negative, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let len = rest.bytes().take_while(u8::is_ascii_digit).count();
    if len == 0 {
        return None;
    }
    // A run of ASCII digits always parses as a double (possibly infinite).
    let magnitude: f64 = rest[..len].parse().ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

/// A JSON number for a JS number result: integral values within 2^53 become integers,
/// `-0` becomes `0`; `None` for NaN and infinities (JSON has no such numbers).
pub fn f64_to_json(x: f64) -> Option<Value> {
    if !x.is_finite() {
        return None;
    }
    if x.trunc() == x && x.abs() <= MAX_EXACT as f64 {
        // Exact: |x| ≤ 2^53 fits an i64.
        #[allow(clippy::cast_possible_truncation)]
        return Some(Value::from(x as i64));
    }
    Number::from_f64(x).map(Value::Number)
}

/// Equality as the original's proof computes it: `JSON.stringify(a) === JSON.stringify(b)`.
/// Object key order matters, except that JS lists integer-like keys first in ascending
/// order; numbers compare as doubles (`1` equals `1.0`).
pub fn json_text_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_to_f64(x) == number_to_f64(y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_text_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            let (kx, ky) = (js_key_order(x), js_key_order(y));
            kx.len() == ky.len()
                && kx
                    .iter()
                    .zip(&ky)
                    .all(|((k1, v1), (k2, v2))| k1 == k2 && json_text_equal(v1, v2))
        }
        _ => a == b,
    }
}

/// The order in which JS enumerates an object's keys: array-index keys (canonical decimal
/// below 2^32 − 1) ascending, then the others in insertion order.
fn js_key_order(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let index = |k: &str| -> Option<u32> {
        let n: u32 = k.parse().ok()?;
        (n != u32::MAX && n.to_string() == k).then_some(n)
    };
    let mut indexed: Vec<(u32, (&String, &Value))> = map
        .iter()
        .filter_map(|(k, v)| index(k).map(|n| (n, (k, v))))
        .collect();
    indexed.sort_by_key(|(n, _)| *n);
    let mut out: Vec<(&String, &Value)> = indexed.into_iter().map(|(_, kv)| kv).collect();
    out.extend(map.iter().filter(|(k, _)| index(k).is_none()));
    out
}

// ---------------------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------------------

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A small cursor over ASCII text.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Exactly `n` ASCII digits.
    fn digits(&mut self, n: usize) -> Option<i64> {
        let end = self.pos.checked_add(n)?;
        let slice = self.bytes.get(self.pos..end)?;
        if !slice.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.pos = end;
        Some(
            slice
                .iter()
                .fold(0, |acc, d| acc * 10 + i64::from(d - b'0')),
        )
    }

    fn done(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

/// Unix milliseconds of a date-time string, as JS `Date.parse` reads the ECMAScript
/// date-time string format (a profile of ISO 8601 / RFC 3339):
/// `YYYY[-MM[-DD]]` or `±YYYYYY[-MM[-DD]]`, optionally followed by `THH:mm[:ss[.f+]]` and
/// an offset `Z` or `±HH:mm`. RFC 3339's lowercase `t`/`z` and a space separator are
/// accepted too. Fractions beyond milliseconds are truncated. `None` for anything else,
/// for impossible dates (`2021-02-30`), and beyond ±8.64e15 ms.
///
/// Differences from a JS engine, by choice: a date-time without an offset is read as UTC
/// (JS uses the host's local zone), and the engines' non-ISO fallback formats
/// (`"March 7, 2020"`) are not accepted.
pub fn parse_date_time_ms(s: &str) -> Option<i64> {
    let mut c = Cursor {
        bytes: s.as_bytes(),
        pos: 0,
    };
    let year = match c.peek()? {
        sign @ (b'+' | b'-') => {
            c.pos += 1;
            let y = c.digits(6)?;
            if sign == b'-' {
                if y == 0 {
                    return None; // -000000 is not a year (ECMA-262)
                }
                -y
            } else {
                y
            }
        }
        _ => c.digits(4)?,
    };
    let (mut month, mut day) = (1, 1);
    if c.eat(b'-') {
        month = c.digits(2)?;
        if c.eat(b'-') {
            day = c.digits(2)?;
        }
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut time_ms = 0;
    let mut offset_min = 0;
    if !c.done() {
        if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
            return None;
        }
        let hour = c.digits(2)?;
        if !c.eat(b':') {
            return None;
        }
        let minute = c.digits(2)?;
        let (mut second, mut millis) = (0, 0);
        if c.eat(b':') {
            second = c.digits(2)?;
            if c.eat(b'.') {
                let start = c.pos;
                while c.peek().is_some_and(|b| b.is_ascii_digit()) {
                    c.pos += 1;
                }
                let frac = &c.bytes[start..c.pos];
                if frac.is_empty() {
                    return None;
                }
                millis = frac
                    .iter()
                    .chain(std::iter::repeat(&b'0'))
                    .take(3)
                    .fold(0, |acc, d| acc * 10 + i64::from(d - b'0'));
            }
        }
        let midnight_24 = hour == 24 && minute == 0 && second == 0 && millis == 0;
        if !(hour < 24 || midnight_24) || minute > 59 || second > 59 {
            return None;
        }
        time_ms = ((hour * 60 + minute) * 60 + second) * 1000 + millis;
        match c.peek() {
            None => {}
            Some(b'Z' | b'z') => c.pos += 1,
            Some(sign @ (b'+' | b'-')) => {
                c.pos += 1;
                let oh = c.digits(2)?;
                if !c.eat(b':') {
                    return None;
                }
                let om = c.digits(2)?;
                if oh > 23 || om > 59 {
                    return None;
                }
                offset_min = if sign == b'-' {
                    -(oh * 60 + om)
                } else {
                    oh * 60 + om
                };
            }
            Some(_) => return None,
        }
        if !c.done() {
            return None;
        }
    }
    let ms = days_from_civil(year, month, day) * MS_PER_DAY + time_ms - offset_min * 60_000;
    // |ms| ≤ 8.64e15 is exact as a double.
    #[allow(clippy::cast_precision_loss)]
    let in_range = (ms as f64).abs() <= MAX_TIME_MS;
    in_range.then_some(ms)
}

/// JS `new Date(ms).toISOString()`: `YYYY-MM-DDTHH:mm:ss.sssZ` (years outside 0..=9999
/// as `±YYYYYY`). The time value is truncated toward zero; `None` beyond ±8.64e15 ms,
/// where JS throws a RangeError.
pub fn unix_ms_to_iso(ms: f64) -> Option<String> {
    if !ms.is_finite() || ms.abs() > MAX_TIME_MS {
        return None;
    }
    // In range and truncated: exact as an i64.
    #[allow(clippy::cast_possible_truncation)]
    let t = ms.trunc() as i64;
    let days = t.div_euclid(MS_PER_DAY);
    let in_day = t.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute) = (in_day / 3_600_000, in_day / 60_000 % 60);
    let (second, millis) = (in_day / 1000 % 60, in_day % 1000);
    let year = if (0..=9999).contains(&year) {
        format!("{year:04}")
    } else if year < 0 {
        format!("-{:06}", -year)
    } else {
        format!("+{year:06}")
    };
    Some(format!(
        "{year}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z"
    ))
}

/// The original's `format: "date-time"` check: the string must match
/// `^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$` (ASCII digits)
/// and be a real date-time (`Date.parse` succeeds; here a calendar check).
pub fn is_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let head_ok = (0..4).all(digit)
        && at(4, b'-')
        && digit(5)
        && digit(6)
        && at(7, b'-')
        && digit(8)
        && digit(9)
        && at(10, b'T')
        && digit(11)
        && digit(12)
        && at(13, b':')
        && digit(14)
        && digit(15)
        && at(16, b':')
        && digit(17)
        && digit(18);
    if !head_ok {
        return false;
    }
    let mut i = 19;
    if at(i, b'.') {
        let start = i + 1;
        let mut end = start;
        while digit(end) {
            end += 1;
        }
        if end == start || end - start > 9 {
            return false;
        }
        i = end;
    }
    let tail_ok = match b.get(i) {
        Some(b'Z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            digit(i + 1)
                && digit(i + 2)
                && at(i + 3, b':')
                && digit(i + 4)
                && digit(i + 5)
                && i + 6 == b.len()
        }
        _ => false,
    };
    tail_ok && parse_date_time_ms(s).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn js_number_formatting() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-1.0, "-1"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (0.1 + 0.2, "0.30000000000000004"),
            (123_456_789.0, "123456789"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1.5e21, "1.5e+21"),
            (1e-6, "0.000001"),
            (1e-7, "1e-7"),
            (1.25e-7, "1.25e-7"),
            (-2.5e-10, "-2.5e-10"),
            (123.456, "123.456"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (9_007_199_254_740_993.0, "9007199254740992"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
        ];
        for (x, want) in cases {
            assert_eq!(f64_to_string(*x), *want, "{x}");
        }
    }

    #[test]
    fn js_string_of_values() {
        let cases = [
            (json!(null), "null"),
            (json!(true), "true"),
            (json!(1), "1"),
            (json!(1.0), "1"),
            (json!(-0.0), "0"),
            (json!(1e21), "1e+21"),
            (
                json!(18_446_744_073_709_551_615_u64),
                "18446744073709552000",
            ),
            (json!("x"), "x"),
            (json!([1, null, [2, "a"]]), "1,,2,a"),
            (json!({"a": 1}), "[object Object]"),
        ];
        for (v, want) in cases {
            assert_eq!(value_to_string(&v), want, "{v}");
        }
    }

    #[test]
    fn parse_int_is_lenient_like_js() {
        let cases: &[(&str, Option<f64>)] = &[
            ("42", Some(42.0)),
            ("  42", Some(42.0)),
            ("\u{FEFF}\u{A0}7", Some(7.0)),
            ("42abc", Some(42.0)),
            ("-17", Some(-17.0)),
            ("+5", Some(5.0)),
            ("3.9", Some(3.0)),
            ("1e3", Some(1.0)),
            ("0x1A", Some(0.0)),
            ("007", Some(7.0)),
            ("", None),
            ("abc", None),
            ("-", None),
            ("- 1", None),
            ("\u{85}1", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_int(s), *want, "{s:?}");
        }
        assert!(parse_int("-0").unwrap().is_sign_negative());
        assert_eq!(f64_to_json(-0.0), Some(json!(0)));
        assert_eq!(f64_to_json(1e300), Some(json!(1e300)));
        assert_eq!(parse_int(&"9".repeat(400)), Some(f64::INFINITY));
    }

    #[test]
    fn date_parsing_table() {
        let cases: &[(&str, Option<i64>)] = &[
            ("1970-01-01T00:00:00Z", Some(0)),
            ("1970-01-01T00:00:00.001Z", Some(1)),
            ("2024-02-29T12:34:56.789Z", Some(1_709_210_096_789)),
            ("2024-02-29T12:34:56.789123456Z", Some(1_709_210_096_789)),
            ("2024-02-29T14:34:56.789+02:00", Some(1_709_210_096_789)),
            ("2024-02-29t12:34:56.789z", Some(1_709_210_096_789)),
            ("2024-02-29 12:34:56.789Z", Some(1_709_210_096_789)),
            ("2024-02-29T12:34:56.789", Some(1_709_210_096_789)),
            ("2024-02-29T12:34Z", Some(1_709_210_040_000)),
            ("2024-02-29", Some(1_709_164_800_000)),
            ("2024-02", Some(1_706_745_600_000)),
            ("2024", Some(1_704_067_200_000)),
            ("1969-12-31T23:59:59.999Z", Some(-1)),
            ("+275760-09-13T00:00:00Z", Some(8_640_000_000_000_000)),
            ("+275760-09-13T00:00:00.001Z", None),
            ("-271821-04-20T00:00:00Z", Some(-8_640_000_000_000_000)),
            ("-000000-01-01T00:00:00Z", None),
            ("2024-01-01T24:00:00Z", Some(1_704_153_600_000)),
            ("2024-01-01T24:00:01Z", None),
            ("2023-02-29T00:00:00Z", None),
            ("2024-13-01T00:00:00Z", None),
            ("2024-00-01T00:00:00Z", None),
            ("2024-01-32T00:00:00Z", None),
            ("2024-01-01T00:60:00Z", None),
            ("2024-01-01T00:00:60Z", None),
            ("2024-01-01T00:00:00+24:00", None),
            ("2024-01-01T00:00:00.Z", None),
            ("2024-01-01T00:00:00ZZ", None),
            ("2024-01-01Z", None),
            ("24-01-01", None),
            ("not a date", None),
            ("", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_date_time_ms(s), *want, "{s}");
        }
    }

    #[test]
    fn iso_formatting_table() {
        let cases: &[(f64, Option<&str>)] = &[
            (0.0, Some("1970-01-01T00:00:00.000Z")),
            (-0.0, Some("1970-01-01T00:00:00.000Z")),
            (1_709_210_096_789.0, Some("2024-02-29T12:34:56.789Z")),
            (1.9, Some("1970-01-01T00:00:00.001Z")),
            (-1.9, Some("1969-12-31T23:59:59.999Z")),
            (-1.0, Some("1969-12-31T23:59:59.999Z")),
            (253_402_300_800_000.0, Some("+010000-01-01T00:00:00.000Z")),
            (-62_198_755_200_000.0, Some("-000001-01-01T00:00:00.000Z")),
            (8.64e15, Some("+275760-09-13T00:00:00.000Z")),
            (8.64e15 + 1.0, None),
            (f64::NAN, None),
        ];
        for (ms, want) in cases {
            assert_eq!(unix_ms_to_iso(*ms).as_deref(), *want, "{ms}");
        }
    }

    #[test]
    fn date_time_format_check() {
        for ok in [
            "2024-01-01T00:00:00Z",
            "2024-01-01T00:00:00.1Z",
            "2024-01-01T00:00:00.123456789Z",
            "2024-01-01T00:00:00+05:30",
            "2024-01-01T00:00:00-00:00",
        ] {
            assert!(is_date_time(ok), "{ok}");
        }
        for bad in [
            "2024-01-01",
            "2024-01-01T00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00.1234567890Z",
            "2024-01-01t00:00:00Z",
            "2024-01-01 00:00:00Z",
            "2024-01-01T00:00:00z",
            "2024-02-30T00:00:00Z",
            "2024-01-01T25:00:00Z",
            "2024-01-01T00:00:00+5:30",
            "2024-01-01T00:00:00Z ",
            "２０２４-01-01T00:00:00Z",
            "+002024-01-01T00:00:00Z",
        ] {
            assert!(!is_date_time(bad), "{bad}");
        }
    }

    #[test]
    fn json_text_equality() {
        assert!(json_text_equal(
            &json!({"a": 1, "b": [1.0]}),
            &json!({"a": 1.0, "b": [1]})
        ));
        assert!(!json_text_equal(
            &json!({"a": 1, "b": 2}),
            &json!({"b": 2, "a": 1})
        ));
        // JS puts integer-like keys first, so these stringify identically.
        assert!(json_text_equal(
            &json!({"b": 1, "1": 2}),
            &json!({"1": 2, "b": 1})
        ));
        assert!(!json_text_equal(&json!("1"), &json!(1)));
        assert!(json_text_equal(&json!(null), &json!(null)));
    }

    proptest! {
        #[test]
        fn f64_formatting_round_trips(x in any::<f64>().prop_filter("finite", |x| x.is_finite())) {
            let s = f64_to_string(x);
            let back: f64 = s.parse().unwrap();
            prop_assert_eq!(back, if x == 0.0 { 0.0 } else { x });
        }

        #[test]
        fn iso_round_trips(ms in -8_640_000_000_000_000_i64..=8_640_000_000_000_000_i64) {
            #[allow(clippy::cast_precision_loss)]
            let text = unix_ms_to_iso(ms as f64).unwrap();
            prop_assert_eq!(parse_date_time_ms(&text), Some(ms));
        }

        #[test]
        fn date_parsing_never_panics(s in "\\PC{0,40}") {
            let _ = parse_date_time_ms(&s);
            let _ = is_date_time(&s);
            let _ = parse_int(&s);
        }
    }
}
