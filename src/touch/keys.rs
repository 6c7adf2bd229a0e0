//! Touch keys: the 64-bit names of what a change can invalidate, and the 32-bit ids
//! the journal files them under.
//!
//! A client and the server must derive the *same* key from the same query shape, in
//! any language, so the byte layouts below are a wire format (they match the original's
//! `live_keys.ts` and are pinned by golden vectors in the tests). Every key is XXH3-64
//! with seed 0 over the bytes shown; `BE8(id)` is a template id as 8 big-endian bytes
//! and `\0` a zero byte:
//!
//! | key | bytes hashed |
//! |---|---|
//! | [`table_key`] | `tbl\0` entity |
//! | [`template_id`] | `tpl\0` entity `\0` field names (sorted) joined by `\0` |
//! | [`template_key`] | `tpl\0` BE8(id) |
//! | [`watch_key`] | `key\0` BE8(id), then `\0` arg for each argument |
//! | [`membership_key`] | `mem\0` BE8(id), then `\0` arg for each argument |
//! | [`projected_field_key`] | `fld\0` BE8(id) `\0` field, then `\0` arg for each argument |
//!
//! Keys travel as [`hex16`] text (16 lowercase hex digits). The journal stores only
//! 32-bit ids: the low half of a server key ([`key_id`]), or for a key a client sends,
//! [`key_id_of_client_string`], which maps hex keys to that same low half and hashes
//! anything else with XXH32 (such strings never match a server touch, but are harmless).
//!
//! Template arguments are the row's values for the template's fields, in field-name
//! order, each rendered by its [`Encoding`] ([`encode_arg`]); a value the encoding does
//! not accept (including `null` and a missing field) yields no key at all.
//!
//! ## `datetime` arguments
//!
//! The original renders them with JavaScript's `new Date(s).toISOString()`, so
//! `2024-01-01T10:00:00+01:00` and `2024-01-01T09:00:00.000Z` are the same argument. We
//! accept the ECMAScript date-time string format with the field ranges the original's
//! runtimes apply:
//!
//! - dates `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, the year also as `+YYYYYY`/`-YYYYYY` (not
//!   `-000000`); a date alone is midnight UTC;
//! - followed optionally by `THH:mm`, `THH:mm:ss` or `THH:mm:ss.f…` (any number of
//!   fraction digits, cut to milliseconds) **and** `Z` or `±HH:mm` (offset hours 0–23);
//! - month 1–12, day 1–31 rolling over past the month's end as `Date` does
//!   (`2023-02-29` is 1 March), hour 0–24 (24 only at exactly `24:00:00`), minute and
//!   second 0–59; the instant within `Date`'s ±8.64e15 ms.
//!
//! The result is UTC with milliseconds and `Z` (years outside 0–9999 as `±YYYYYY`). On
//! strings of the RFC 3339 form this agrees with `js::parse_rfc3339_ms`.
//!
//! Not accepted, though some JavaScript engines parse them: date-times **without** an
//! offset (JavaScript reads them in the server's local time zone, which would make keys
//! depend on the host), a space instead of `T`, lowercase `t`/`z`, offsets written
//! `+HHMM` or `+HH`, unpadded fields (`2024-1-1`), leap second `:60`, surrounding
//! white space, and the engines' legacy formats (`Jan 1 2024`, `2024/01/01`, RFC 2822).
//! Such values give no fine key, as an unparseable date does in the original; the
//! table key still fires.

use serde_json::Value;
use xxhash_rust::{xxh3::xxh3_64, xxh32::xxh32};

use crate::profiles::js;

/// How a template field's value becomes a key argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    String,
    Int64,
    Bool,
    Datetime,
    Bytes,
}

impl Encoding {
    /// Every encoding, in the order the original lists them.
    pub const ALL: [Encoding; 5] = [
        Encoding::String,
        Encoding::Int64,
        Encoding::Bool,
        Encoding::Datetime,
        Encoding::Bytes,
    ];

    /// The encoding with this wire name (exact, case-sensitive).
    pub fn parse(s: &str) -> Option<Encoding> {
        Encoding::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::String => "string",
            Encoding::Int64 => "int64",
            Encoding::Bool => "bool",
            Encoding::Datetime => "datetime",
            Encoding::Bytes => "bytes",
        }
    }
}

fn hash(bytes: &[u8]) -> u64 {
    xxh3_64(bytes)
}

/// `prefix` BE8(id), then `\0` part for each part.
fn keyed<S: AsRef<str>>(prefix: &[u8], template_id: u64, parts: &[S]) -> u64 {
    let mut buf = Vec::with_capacity(
        prefix.len() + 8 + parts.iter().map(|p| p.as_ref().len() + 1).sum::<usize>(),
    );
    buf.extend_from_slice(prefix);
    buf.extend_from_slice(&template_id.to_be_bytes());
    for part in parts {
        buf.push(0);
        buf.extend_from_slice(part.as_ref().as_bytes());
    }
    hash(&buf)
}

/// The coarse key of an entity: every change to it touches this key.
pub fn table_key(entity: &str) -> u64 {
    let mut buf = Vec::with_capacity(4 + entity.len());
    buf.extend_from_slice(b"tbl\0");
    buf.extend_from_slice(entity.as_bytes());
    hash(&buf)
}

/// The id of a template: an entity and its field names, already sorted by UTF-16 code
/// units (see [`crate::touch::derive::ActiveTemplate::new`]). Encodings are not part of
/// the id.
pub fn template_id<S: AsRef<str>>(entity: &str, fields_sorted: &[S]) -> u64 {
    let mut buf = Vec::with_capacity(64);
    buf.extend_from_slice(b"tpl\0");
    buf.extend_from_slice(entity.as_bytes());
    buf.push(0);
    for (i, field) in fields_sorted.iter().enumerate() {
        if i > 0 {
            buf.push(0);
        }
        buf.extend_from_slice(field.as_ref().as_bytes());
    }
    hash(&buf)
}

/// The key a template's changes touch when fine touches degrade to template granularity.
pub fn template_key(template_id: u64) -> u64 {
    keyed::<&str>(b"tpl\0", template_id, &[])
}

/// The key of one argument tuple of a template: touched when a row with these values
/// is inserted, deleted or updated.
pub fn watch_key<S: AsRef<str>>(template_id: u64, args: &[S]) -> u64 {
    keyed(b"key\0", template_id, args)
}

/// The key touched when a row enters or leaves one argument tuple of a template.
pub fn membership_key<S: AsRef<str>>(template_id: u64, args: &[S]) -> u64 {
    keyed(b"mem\0", template_id, args)
}

/// The key touched when `field` changes on a row that stays in one argument tuple.
pub fn projected_field_key<S: AsRef<str>>(template_id: u64, field: &str, args: &[S]) -> u64 {
    let mut buf = Vec::with_capacity(
        13 + field.len() + args.iter().map(|a| a.as_ref().len() + 1).sum::<usize>(),
    );
    buf.extend_from_slice(b"fld\0");
    buf.extend_from_slice(&template_id.to_be_bytes());
    buf.push(0);
    buf.extend_from_slice(field.as_bytes());
    for arg in args {
        buf.push(0);
        buf.extend_from_slice(arg.as_ref().as_bytes());
    }
    hash(&buf)
}

/// A key as 16 lowercase hex digits.
pub fn hex16(key: u64) -> String {
    format!("{key:016x}")
}

/// The key written as exactly 16 lowercase hex digits (the form the original's
/// `^[0-9a-f]{16}$` checks accept), else `None`.
pub fn parse_hex16(s: &str) -> Option<u64> {
    if s.len() != 16 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// The journal id of a server key: its low 32 bits.
pub fn key_id(key: u64) -> u32 {
    (key & 0xffff_ffff) as u32
}

/// The journal id of a key string a client waits on: JavaScript-trimmed and lowercased;
/// 16 hex digits give the low 32 bits of that key (so they meet server touches), any
/// other string its XXH32 (seed 0).
pub fn key_id_of_client_string(key: &str) -> u32 {
    let s = js::trim(key).to_lowercase();
    match parse_hex16(&s) {
        Some(k) => key_id(k),
        None => xxh32(s.as_bytes(), 0),
    }
}

/// Renders one field value as a key argument (`encodeTemplateArg`); `None` when the
/// encoding does not accept it, which suppresses the key.
///
/// - `string`: a string as is, a number as JavaScript's `String(n)` (`1e+21`, `0.1`,
///   `0` for `-0`), a boolean as `true`/`false`;
/// - `int64`: an integral number as `String(n)`, or a string that after JavaScript
///   trimming reads `-?(0|[1-9][0-9]*)`, trimmed (`"-0"` stays `-0`);
/// - `bool`: a boolean only, as `1`/`0`;
/// - `datetime`: a date string (module docs), as UTC milliseconds with `Z`;
/// - `bytes`: a string as is.
pub fn encode_arg(encoding: Encoding, value: &Value) -> Option<String> {
    match (encoding, value) {
        (_, Value::Null) => None,
        (Encoding::String | Encoding::Bytes, Value::String(s)) => Some(s.clone()),
        (Encoding::String, Value::Number(_)) => js::as_f64(value).map(js::number_to_string),
        (Encoding::String, Value::Bool(b)) => Some(if *b { "true" } else { "false" }.into()),
        (Encoding::Int64, Value::Number(_)) => js::as_f64(value)
            .filter(|x| js::is_integer(*x))
            .map(js::number_to_string),
        (Encoding::Int64, Value::String(s)) => {
            let t = js::trim(s);
            is_decimal_integer(t).then(|| t.to_string())
        }
        (Encoding::Bool, Value::Bool(b)) => Some(if *b { "1" } else { "0" }.into()),
        (Encoding::Datetime, Value::String(s)) => parse_date_ms(s).and_then(js::iso_from_ms),
        _ => None,
    }
}

/// `^-?(0|[1-9][0-9]*)$`
fn is_decimal_integer(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
}

/// A cursor over ASCII bytes for the date grammar.
struct Scan<'a> {
    b: &'a [u8],
    at: usize,
}

impl Scan<'_> {
    fn eat(&mut self, c: u8) -> bool {
        if self.b.get(self.at) == Some(&c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.at).copied()
    }

    /// Exactly `n` digits.
    fn digits(&mut self, n: usize) -> Option<i64> {
        let part = self.b.get(self.at..self.at + n)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.at += n;
        Some(
            part.iter()
                .fold(0i64, |acc, &c| acc * 10 + i64::from(c - b'0')),
        )
    }
}

/// The instant (Unix ms) of a date string in the accepted forms (module docs).
fn parse_date_ms(s: &str) -> Option<i64> {
    let mut p = Scan {
        b: s.as_bytes(),
        at: 0,
    };
    let year = match p.peek()? {
        sign @ (b'+' | b'-') => {
            p.at += 1;
            let y = p.digits(6)?;
            if sign == b'-' {
                if y == 0 {
                    return None;
                }
                -y
            } else {
                y
            }
        }
        _ => p.digits(4)?,
    };
    let mut month = 1;
    let mut day = 1;
    if p.eat(b'-') {
        month = p.digits(2)?;
        if p.eat(b'-') {
            day = p.digits(2)?;
        }
    }
    let (mut hour, mut minute, mut second, mut milli) = (0, 0, 0, 0);
    let mut fraction_nonzero = false;
    let mut offset_min = 0;
    if p.eat(b'T') {
        hour = p.digits(2)?;
        if !p.eat(b':') {
            return None;
        }
        minute = p.digits(2)?;
        if p.eat(b':') {
            second = p.digits(2)?;
            if p.eat(b'.') {
                let start = p.at;
                while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                    let d = i64::from(p.b[p.at] - b'0');
                    let k = p.at - start;
                    if k < 3 {
                        milli += d * [100, 10, 1][k];
                    }
                    fraction_nonzero |= d != 0;
                    p.at += 1;
                }
                if p.at == start {
                    return None;
                }
            }
        }
        offset_min = match p.peek()? {
            b'Z' => {
                p.at += 1;
                0
            }
            sign @ (b'+' | b'-') => {
                p.at += 1;
                let oh = p.digits(2)?;
                if !p.eat(b':') {
                    return None;
                }
                let om = p.digits(2)?;
                if oh > 23 || om > 59 {
                    return None;
                }
                if sign == b'+' {
                    oh * 60 + om
                } else {
                    -(oh * 60 + om)
                }
            }
            // No offset: JavaScript would read the server's local time.
            _ => return None,
        };
    }
    if p.at != p.b.len() {
        return None;
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || minute > 59 || second > 59 {
        return None;
    }
    if hour > 24 || (hour == 24 && (minute != 0 || second != 0 || fraction_nonzero)) {
        return None;
    }
    let days = js::days_from_civil(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?);
    Some(
        days * 86_400_000 + hour * 3_600_000 + minute * 60_000 + second * 1000 + milli
            - offset_min * 60_000,
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ENTITY: &str = "public.todos";
    const FIELDS: [&str; 3] = ["status", "tenantId", "userId"];
    const ARGS: [&str; 3] = ["open", "t1", "u1"];

    #[test]
    fn golden_vectors_match_the_original() {
        assert_eq!(hex16(table_key(ENTITY)), "feadeb84d447fd63");
        assert_eq!(key_id(table_key(ENTITY)), 3_561_487_715);
        assert_eq!(hex16(table_key("posts")), "8c646d3dd6bc68f4");
        assert_eq!(key_id(table_key("posts")), 3_602_671_860);
        let id = template_id(ENTITY, &FIELDS);
        assert_eq!(hex16(id), "ddd2330fdab379da");
        assert_eq!(hex16(template_key(id)), "5086e055faafe816");
        assert_eq!(hex16(watch_key(id, &ARGS)), "39accd125778dc36");
        assert_eq!(hex16(membership_key(id, &ARGS)), "eae633979a7ee466");
        assert_eq!(
            hex16(projected_field_key(id, "title", &ARGS)),
            "1ecc53e76a89f0d5"
        );
        assert_eq!(xxh32(b"k1", 0), 113_350_462);
        assert_eq!(key_id_of_client_string("k1"), 113_350_462);
    }

    #[test]
    fn fine_keys_hash_the_template_id_big_endian() {
        let id = template_id(ENTITY, &FIELDS);
        let little_endian = |prefix: &[u8], field: Option<&str>| {
            let mut buf = prefix.to_vec();
            buf.extend_from_slice(&id.to_le_bytes());
            if let Some(f) = field {
                buf.push(0);
                buf.extend_from_slice(f.as_bytes());
            }
            for a in ARGS {
                buf.push(0);
                buf.extend_from_slice(a.as_bytes());
            }
            xxh3_64(&buf)
        };
        assert_ne!(little_endian(b"key\0", None), watch_key(id, &ARGS));
        assert_ne!(little_endian(b"mem\0", None), membership_key(id, &ARGS));
        assert_ne!(
            little_endian(b"fld\0", Some("title")),
            projected_field_key(id, "title", &ARGS)
        );
        // The same layout with BE bytes reproduces the key, so only byte order differs.
        let mut buf = b"key\0".to_vec();
        buf.extend_from_slice(&id.to_be_bytes());
        for a in ARGS {
            buf.push(0);
            buf.extend_from_slice(a.as_bytes());
        }
        assert_eq!(xxh3_64(&buf), watch_key(id, &ARGS));
    }

    #[test]
    fn key_kinds_and_argument_boundaries_do_not_collide() {
        let id = template_id(ENTITY, &FIELDS);
        let keys = [
            template_key(id),
            watch_key(id, &ARGS),
            membership_key(id, &ARGS),
            projected_field_key(id, "title", &ARGS),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // The separator keeps ["ab", "c"] apart from ["a", "bc"].
        assert_ne!(watch_key(id, &["ab", "c"]), watch_key(id, &["a", "bc"]));
        // No arguments: the template key's layout under another prefix.
        assert_ne!(watch_key::<&str>(id, &[]), template_key(id));
    }

    #[test]
    fn hex16_round_trips_and_is_strict() {
        assert_eq!(hex16(0), "0000000000000000");
        assert_eq!(hex16(u64::MAX), "ffffffffffffffff");
        assert_eq!(parse_hex16("00000000000000ff"), Some(255));
        assert_eq!(parse_hex16("feadeb84d447fd63"), Some(table_key(ENTITY)));
        for bad in [
            "FEADEB84D447FD63",
            "feadeb84d447fd6",
            "feadeb84d447fd633",
            "+eadeb84d447fd63",
            " feadeb84d447fd6",
            "feadeb84d447fdg3",
            "",
        ] {
            assert_eq!(parse_hex16(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn client_key_strings_map_to_server_ids() {
        let table = table_key(ENTITY);
        assert_eq!(key_id_of_client_string("feadeb84d447fd63"), key_id(table));
        // Trimmed (JavaScript white space includes U+FEFF) and lowercased first.
        assert_eq!(
            key_id_of_client_string("\u{feff} FEADEB84D447FD63\n"),
            key_id(table)
        );
        assert_eq!(key_id_of_client_string("00000000ffffffff"), u32::MAX);
        // Anything else is XXH32 of the normalised string.
        assert_eq!(key_id_of_client_string("  K1 "), 113_350_462);
        assert_eq!(
            key_id_of_client_string("feadeb84d447fd6"),
            xxh32(b"feadeb84d447fd6", 0)
        );
        assert_eq!(key_id_of_client_string(""), xxh32(b"", 0));
    }

    #[test]
    fn encodings_parse_by_exact_name() {
        for e in Encoding::ALL {
            assert_eq!(Encoding::parse(e.as_str()), Some(e));
        }
        assert_eq!(Encoding::parse("String"), None);
        assert_eq!(Encoding::parse(" int64"), None);
        assert_eq!(Encoding::parse("boolean"), None);
    }

    fn enc(e: Encoding, v: Value) -> Option<String> {
        encode_arg(e, &v)
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    #[test]
    fn string_encoding_matches_javascript_string() {
        use Encoding::String as S;
        assert_eq!(enc(S, json!("open")), some("open"));
        assert_eq!(enc(S, json!("")), some(""));
        assert_eq!(enc(S, json!(" x ")), some(" x "));
        assert_eq!(enc(S, json!(1e21)), some("1e+21"));
        assert_eq!(enc(S, json!(1e20)), some("100000000000000000000"));
        assert_eq!(enc(S, json!(0.1)), some("0.1"));
        assert_eq!(enc(S, json!(-0.0)), some("0"));
        assert_eq!(enc(S, json!(1.0)), some("1"));
        assert_eq!(enc(S, json!(1.5e-7)), some("1.5e-7"));
        assert_eq!(enc(S, json!(123)), some("123"));
        assert_eq!(enc(S, json!(u64::MAX)), some("18446744073709552000"));
        assert_eq!(enc(S, json!(true)), some("true"));
        assert_eq!(enc(S, json!(false)), some("false"));
        assert_eq!(enc(S, json!(null)), None);
        assert_eq!(enc(S, json!([1])), None);
        assert_eq!(enc(S, json!({"a": 1})), None);
    }

    #[test]
    fn int64_encoding_accepts_integral_numbers_and_decimal_strings() {
        use Encoding::Int64 as I;
        assert_eq!(enc(I, json!(42)), some("42"));
        assert_eq!(enc(I, json!(-7)), some("-7"));
        assert_eq!(enc(I, json!(3.0)), some("3"));
        assert_eq!(enc(I, json!(-0.0)), some("0"));
        assert_eq!(enc(I, json!(1e21)), some("1e+21"));
        assert_eq!(
            enc(I, json!(9_007_199_254_740_993_i64)),
            some("9007199254740992")
        );
        assert_eq!(enc(I, json!(0.5)), None);
        assert_eq!(enc(I, json!("123")), some("123"));
        assert_eq!(enc(I, json!("  -45\t")), some("-45"));
        assert_eq!(enc(I, json!("\u{feff}7")), some("7"));
        assert_eq!(enc(I, json!("0")), some("0"));
        assert_eq!(enc(I, json!("-0")), some("-0"));
        assert_eq!(
            enc(I, json!("123456789012345678901234567890")),
            some("123456789012345678901234567890")
        );
        for bad in [
            "007", "00", "-", "", " ", "+1", "1.0", "1e3", "0x10", "1 2", "--1",
        ] {
            assert_eq!(enc(I, json!(bad)), None, "{bad:?}");
        }
        assert_eq!(enc(I, json!(true)), None);
        assert_eq!(enc(I, json!(null)), None);
        assert_eq!(enc(I, json!([1])), None);
    }

    #[test]
    fn bool_and_bytes_encodings_take_one_type_only() {
        assert_eq!(enc(Encoding::Bool, json!(true)), some("1"));
        assert_eq!(enc(Encoding::Bool, json!(false)), some("0"));
        for bad in [json!(1), json!(0), json!("true"), json!("1"), json!(null)] {
            assert_eq!(enc(Encoding::Bool, bad.clone()), None, "{bad}");
        }
        assert_eq!(enc(Encoding::Bytes, json!("AAEC")), some("AAEC"));
        assert_eq!(enc(Encoding::Bytes, json!("")), some(""));
        for bad in [json!(1), json!(true), json!([0, 1]), json!(null)] {
            assert_eq!(enc(Encoding::Bytes, bad.clone()), None, "{bad}");
        }
    }

    #[test]
    fn datetime_encoding_normalises_to_utc_milliseconds() {
        use Encoding::Datetime as D;
        // Expected values are what `new Date(s).toISOString()` gives under Node.
        let cases = [
            ("2024-01-01T10:00:00Z", "2024-01-01T10:00:00.000Z"),
            ("2024-01-01T10:00:00.5+05:30", "2024-01-01T04:30:00.500Z"),
            ("2024-01-01T10:00:00+01:00", "2024-01-01T09:00:00.000Z"),
            ("2024-01-01T10:00:00.000-00:00", "2024-01-01T10:00:00.000Z"),
            ("2024-01-01T10:00:00+23:59", "2023-12-31T10:01:00.000Z"),
            ("2024-01-01T23:59:59.9999Z", "2024-01-01T23:59:59.999Z"),
            (
                "2024-01-01T10:00:00.123456789123Z",
                "2024-01-01T10:00:00.123Z",
            ),
            ("2024-01-01T10:00Z", "2024-01-01T10:00:00.000Z"),
            ("2024-01-01T24:00:00Z", "2024-01-02T00:00:00.000Z"),
            ("2024-02-31T00:00:00Z", "2024-03-02T00:00:00.000Z"),
            ("2024-04-31T00:00:00Z", "2024-05-01T00:00:00.000Z"),
            ("2023-02-29", "2023-03-01T00:00:00.000Z"),
            ("2024-01-01", "2024-01-01T00:00:00.000Z"),
            ("2024-01", "2024-01-01T00:00:00.000Z"),
            ("2024", "2024-01-01T00:00:00.000Z"),
            ("0000-01-01", "0000-01-01T00:00:00.000Z"),
            ("-000001-01-01", "-000001-01-01T00:00:00.000Z"),
            ("+002024-01-01T00:00:00Z", "2024-01-01T00:00:00.000Z"),
            ("+275760-09-13T00:00:00.000Z", "+275760-09-13T00:00:00.000Z"),
            ("-271821-04-20T00:00:00Z", "-271821-04-20T00:00:00.000Z"),
        ];
        for (input, want) in cases {
            assert_eq!(enc(D, json!(input)), some(want), "{input}");
        }
        let rejected = [
            // Also invalid in JavaScript.
            "2024-01-32",
            "2024-13-01",
            "2024-00-10",
            "2024-01-01T10:00:60Z",
            "2024-01-01T10:00:00.Z",
            "2024-01-01T24:00:01Z",
            "2024-01-01T10:00:00+24:00",
            "-000000-01-01T00:00:00Z",
            " 2024-01-01T00:00:00Z",
            "2024-01-01T10Z",
            "+275760-09-13T00:00:00.001Z",
            "-271821-04-19T23:59:59.999Z",
            "1e3",
            "",
            // Parsed by JavaScript, not accepted here (module docs).
            "2024-01-01T10:00:00",
            "2024-01-01T10:00",
            "2024-01-01 10:00:00Z",
            "2024-01-01t10:00:00z",
            "2024-01-01T10:00:00+0100",
            "2024-01-01 10:00:00+00",
            "2024-1-1",
            "Jan 1 2024",
        ];
        for input in rejected {
            assert_eq!(enc(D, json!(input)), None, "{input}");
        }
        assert_eq!(enc(D, json!(1_704_067_200_000_i64)), None);
        assert_eq!(enc(D, json!(null)), None);
    }

    #[test]
    fn datetime_agrees_with_the_rfc3339_helper_on_its_forms() {
        for s in [
            "2024-01-01T10:00:00Z",
            "2024-02-30T23:59:59.999999999+05:45",
            "1970-01-01T00:00:00.1-12:30",
            "2024-06-30T24:00:00Z",
            "9999-12-31T23:59:59.999Z",
        ] {
            assert_eq!(parse_date_ms(s), js::parse_rfc3339_ms(s), "{s}");
        }
    }
}
