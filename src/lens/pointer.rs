//! RFC 6901 JSON pointers over [`serde_json::Value`].
//!
//! A pointer is `""` (the whole document) or a sequence of `/`-prefixed segments, where
//! `~1` stands for `/` and `~0` for `~`. Any other `~` sequence is rejected: the original's
//! lens JSON Schema rejects it too (pattern `^(?:/(?:[^~/]|~0|~1)*)*$`), although its
//! pointer parser alone did not.
//!
//! Resolution rules (the original's `src/util/json_pointer.ts` and the private copy in
//! `src/lens/lens.ts`, spec §3.9):
//! - An object segment names a key (own keys only).
//! - An array segment must be all ASCII digits (leading zeros allowed) and in range;
//!   anything else does not exist on an array (`get`) or is out of bounds (`set`/`delete`).
//!   The original's lens runtime converted segments with JS `Number()`, so `""` or `"1e0"`
//!   also addressed elements there; this module does not follow that quirk.
//! - Scalars have no children.
//! - `set` needs the parent to exist unless `create_parents` inserts `{}` for each missing
//!   intermediate; it overwrites an existing value. Setting the root replaces the document.
//! - `delete` of an array element removes it (later elements shift); deleting a missing
//!   object key is not an error; deleting the root is.
//!
//! Objects keep their key order (the crate enables serde_json's `preserve_order`): a
//! deleted key is removed without reordering the others, a new key goes last (as in JS).
//!
//! Error messages are the original's: `invalid json pointer`, `missing parent`,
//! `array index out of bounds`, `invalid parent`, `cannot delete document root`.

use serde_json::{Map, Value};

/// Why a pointer could not be parsed or applied. `Display` gives the original's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PointerError {
    #[error("invalid json pointer")]
    Invalid,
    #[error("missing parent")]
    MissingParent,
    #[error("array index out of bounds")]
    IndexOutOfBounds,
    #[error("invalid parent")]
    InvalidParent,
    #[error("cannot delete document root")]
    DeleteRoot,
}

/// Splits a pointer into its unescaped segments (`""` → no segment).
pub fn parse(pointer: &str) -> Result<Vec<String>, PointerError> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(PointerError::Invalid);
    };
    rest.split('/').map(unescape).collect()
}

/// Whether `pointer` is a valid RFC 6901 pointer (what [`parse`] accepts).
pub fn is_valid(pointer: &str) -> bool {
    parse(pointer).is_ok()
}

fn unescape(segment: &str) -> Result<String, PointerError> {
    if !segment.contains('~') {
        return Ok(segment.to_owned());
    }
    let mut out = String::with_capacity(segment.len());
    let mut chars = segment.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return Err(PointerError::Invalid),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Formats segments back into a pointer (the inverse of [`parse`]).
pub fn format<S: AsRef<str>>(segments: &[S]) -> String {
    let mut out = String::new();
    for segment in segments {
        out.push('/');
        for c in segment.as_ref().chars() {
            match c {
                '~' => out.push_str("~0"),
                '/' => out.push_str("~1"),
                c => out.push(c),
            }
        }
    }
    out
}

/// The array index a segment names: all ASCII digits, no sign, no exponent.
pub fn array_index(segment: &str) -> Option<usize> {
    if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // All digits: the only failure left is overflow, which is out of range anyway.
    segment.parse().ok()
}

fn child<'a>(container: &'a Value, segment: &str) -> Option<&'a Value> {
    match container {
        Value::Object(map) => map.get(segment),
        Value::Array(items) => array_index(segment).and_then(|i| items.get(i)),
        _ => None,
    }
}

fn child_mut<'a>(container: &'a mut Value, segment: &str) -> Option<&'a mut Value> {
    match container {
        Value::Object(map) => map.get_mut(segment),
        Value::Array(items) => array_index(segment).and_then(move |i| items.get_mut(i)),
        _ => None,
    }
}

/// The value at `segments`, if any (JSON `null` exists).
pub fn get<'a, S: AsRef<str>>(doc: &'a Value, segments: &[S]) -> Option<&'a Value> {
    segments
        .iter()
        .try_fold(doc, |cur, segment| child(cur, segment.as_ref()))
}

/// The value at `segments`, mutably.
pub fn get_mut<'a, S: AsRef<str>>(doc: &'a mut Value, segments: &[S]) -> Option<&'a mut Value> {
    segments
        .iter()
        .try_fold(doc, |cur, segment| child_mut(cur, segment.as_ref()))
}

/// Parses `pointer` and resolves it (`Ok(None)` when nothing is there).
pub fn resolve<'a>(doc: &'a Value, pointer: &str) -> Result<Option<&'a Value>, PointerError> {
    let segments = parse(pointer)?;
    Ok(get(doc, &segments))
}

fn set_child(container: &mut Value, segment: &str, value: Value) -> Result<(), PointerError> {
    match container {
        Value::Object(map) => {
            map.insert(segment.to_owned(), value);
            Ok(())
        }
        Value::Array(items) => {
            let slot = array_index(segment)
                .and_then(|i| items.get_mut(i))
                .ok_or(PointerError::IndexOutOfBounds)?;
            *slot = value;
            Ok(())
        }
        _ => Err(PointerError::InvalidParent),
    }
}

/// Writes `value` at `segments` (overwriting). The parent must exist unless
/// `create_parents`, which inserts `{}` for each missing intermediate.
pub fn set<S: AsRef<str>>(
    doc: &mut Value,
    segments: &[S],
    value: Value,
    create_parents: bool,
) -> Result<(), PointerError> {
    let Some((leaf, parents)) = segments.split_last() else {
        *doc = value;
        return Ok(());
    };
    let mut cur = doc;
    for segment in parents {
        let segment = segment.as_ref();
        if child(cur, segment).is_none() {
            if !create_parents {
                return Err(PointerError::MissingParent);
            }
            set_child(cur, segment, Value::Object(Map::new()))?;
        }
        cur = child_mut(cur, segment).ok_or(PointerError::MissingParent)?;
    }
    set_child(cur, leaf.as_ref(), value)
}

/// Removes the value at `segments` and returns it (`None` for a missing object key, which
/// is not an error).
pub fn delete<S: AsRef<str>>(
    doc: &mut Value,
    segments: &[S],
) -> Result<Option<Value>, PointerError> {
    let Some((leaf, parents)) = segments.split_last() else {
        return Err(PointerError::DeleteRoot);
    };
    let parent = get_mut(doc, parents).ok_or(PointerError::MissingParent)?;
    let leaf = leaf.as_ref();
    match parent {
        Value::Object(map) => Ok(map.shift_remove(leaf)),
        Value::Array(items) => match array_index(leaf) {
            Some(i) if i < items.len() => Ok(Some(items.remove(i))),
            _ => Err(PointerError::IndexOutOfBounds),
        },
        _ => Err(PointerError::InvalidParent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn parse_table() {
        let ok: &[(&str, &[&str])] = &[
            ("", &[]),
            ("/", &[""]),
            ("/a", &["a"]),
            ("/a/b", &["a", "b"]),
            ("/a~1b", &["a/b"]),
            ("/m~0n", &["m~n"]),
            ("/~01", &["~1"]),
            ("/~10", &["/0"]),
            ("//", &["", ""]),
            ("/ ", &[" "]),
            ("/0", &["0"]),
            ("/é/ü", &["é", "ü"]),
        ];
        for (input, want) in ok {
            assert_eq!(parse(input).unwrap(), *want, "{input:?}");
        }
        for bad in ["a", "a/b", "#/a", "/~", "/~2", "/a~", "/~a", " /a"] {
            assert_eq!(parse(bad), Err(PointerError::Invalid), "{bad:?}");
            assert!(!is_valid(bad));
        }
    }

    #[test]
    fn messages_are_the_originals() {
        assert_eq!(PointerError::Invalid.to_string(), "invalid json pointer");
        assert_eq!(PointerError::MissingParent.to_string(), "missing parent");
        assert_eq!(
            PointerError::IndexOutOfBounds.to_string(),
            "array index out of bounds"
        );
        assert_eq!(PointerError::InvalidParent.to_string(), "invalid parent");
        assert_eq!(
            PointerError::DeleteRoot.to_string(),
            "cannot delete document root"
        );
    }

    #[test]
    fn get_table() {
        let doc = json!({"a": {"b": [10, {"c": null}]}, "": 1, "a/b": 2, "m~n": 3});
        let cases: &[(&str, Option<Value>)] = &[
            ("", Some(doc.clone())),
            ("/a/b/0", Some(json!(10))),
            ("/a/b/1/c", Some(Value::Null)),
            ("/a/b/01", Some(json!({"c": null}))),
            ("/a/b/2", None),
            ("/a/b/-", None),
            ("/a/b/length", None),
            ("/a/b/1e0", None),
            ("/a/x", None),
            ("/a/b/0/x", None),
            ("/", Some(json!(1))),
            ("/a~1b", Some(json!(2))),
            ("/m~0n", Some(json!(3))),
        ];
        for (ptr, want) in cases {
            assert_eq!(resolve(&doc, ptr).unwrap().cloned(), *want, "{ptr}");
        }
        assert_eq!(resolve(&doc, "x"), Err(PointerError::Invalid));
    }

    #[test]
    fn set_table() {
        type Case = (&'static str, Value, bool, Result<Value, PointerError>);
        let base = json!({"a": {"b": 1}, "arr": [1, 2], "s": "x"});
        let cases: Vec<Case> = vec![
            (
                "/a/b",
                json!(5),
                false,
                Ok(json!({"a": {"b": 5}, "arr": [1, 2], "s": "x"})),
            ),
            (
                "/a/c",
                json!(5),
                false,
                Ok(json!({"a": {"b": 1, "c": 5}, "arr": [1, 2], "s": "x"})),
            ),
            (
                "/z",
                json!(5),
                false,
                Ok(json!({"a": {"b": 1}, "arr": [1, 2], "s": "x", "z": 5})),
            ),
            ("", json!(5), false, Ok(json!(5))),
            (
                "/arr/1",
                json!(9),
                false,
                Ok(json!({"a": {"b": 1}, "arr": [1, 9], "s": "x"})),
            ),
            (
                "/arr/2",
                json!(9),
                false,
                Err(PointerError::IndexOutOfBounds),
            ),
            (
                "/arr/x",
                json!(9),
                false,
                Err(PointerError::IndexOutOfBounds),
            ),
            ("/s/x", json!(9), false, Err(PointerError::InvalidParent)),
            ("/q/r", json!(9), false, Err(PointerError::MissingParent)),
            (
                "/q/r/s",
                json!(9),
                true,
                Ok(json!({"a": {"b": 1}, "arr": [1, 2], "s": "x", "q": {"r": {"s": 9}}})),
            ),
            (
                "/arr/5/x",
                json!(9),
                true,
                Err(PointerError::IndexOutOfBounds),
            ),
            ("/s/x/y", json!(9), true, Err(PointerError::InvalidParent)),
        ];
        for (ptr, value, create, want) in cases {
            let mut doc = base.clone();
            let got = set(&mut doc, &parse(ptr).unwrap(), value, create).map(|()| doc);
            assert_eq!(got, want, "{ptr}");
        }
    }

    #[test]
    fn set_keeps_key_order() {
        let mut doc = json!({"z": 1, "a": 2, "m": 3});
        set(&mut doc, &["a"], json!(9), false).unwrap();
        assert_eq!(
            serde_json::to_string(&doc).unwrap(),
            r#"{"z":1,"a":9,"m":3}"#
        );
    }

    #[test]
    fn delete_table() {
        let base = json!({"a": {"b": 1, "c": 2, "d": 3}, "arr": [1, 2, 3], "s": "x"});
        let mut doc = base.clone();
        assert_eq!(delete(&mut doc, &["a", "c"]), Ok(Some(json!(2))));
        assert_eq!(
            serde_json::to_string(&doc["a"]).unwrap(),
            r#"{"b":1,"d":3}"#
        );
        assert_eq!(delete(&mut doc, &["a", "zz"]), Ok(None));
        assert_eq!(delete(&mut doc, &["arr", "0"]), Ok(Some(json!(1))));
        assert_eq!(doc["arr"], json!([2, 3]));
        assert_eq!(
            delete(&mut doc, &["arr", "2"]),
            Err(PointerError::IndexOutOfBounds)
        );
        assert_eq!(
            delete(&mut doc, &["arr", "x"]),
            Err(PointerError::IndexOutOfBounds)
        );
        assert_eq!(
            delete(&mut doc, &["s", "x"]),
            Err(PointerError::InvalidParent)
        );
        assert_eq!(
            delete(&mut doc, &["q", "x"]),
            Err(PointerError::MissingParent)
        );
        assert_eq!(delete::<&str>(&mut doc, &[]), Err(PointerError::DeleteRoot));
    }

    fn arb_segment() -> impl Strategy<Value = String> {
        prop::string::string_regex("[a-z~/0-9é]{0,6}").unwrap()
    }

    proptest! {
        #[test]
        fn format_parse_round_trip(segments in prop::collection::vec(arb_segment(), 0..6)) {
            let text = format(&segments);
            prop_assert_eq!(parse(&text).unwrap(), segments);
        }

        #[test]
        fn parse_format_round_trip(text in "(/([a-z/]|~0|~1){0,4}){0,4}") {
            let segments = parse(&text).unwrap();
            prop_assert_eq!(format(&segments), text);
        }

        #[test]
        fn set_then_get(segments in prop::collection::vec(arb_segment(), 1..5), v in any::<i64>()) {
            let mut doc = json!({});
            // Segments that are array indexes never meet an array here: parents are objects.
            set(&mut doc, &segments, json!(v), true).unwrap();
            prop_assert_eq!(get(&doc, &segments), Some(&json!(v)));
        }
    }
}
