//! JSON mode framing: a POST body is split into messages (a top-level array is flattened
//! one level), each kept as its exact source text; a read joins messages into one array.
//! Messages are slices of the body (no copy).

use bytes::Bytes;
use serde_json::value::RawValue;

/// Why a JSON body was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    #[error("invalid JSON: {0}")]
    Invalid(String),
    #[error("empty JSON array")]
    EmptyArray,
}

/// Splits a body into messages, each a slice of `body`. `allow_empty` permits `[]` (a
/// create's initial body).
pub fn split_messages(body: &Bytes, allow_empty: bool) -> Result<Vec<Bytes>, JsonError> {
    let text = std::str::from_utf8(body).map_err(|e| JsonError::Invalid(e.to_string()))?;
    let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace());
    // Where a value parsed from `text` sits in it (values borrow from their input).
    let range = |r: &RawValue| {
        let start = r.get().as_ptr() as usize - text.as_ptr() as usize;
        start..start + r.get().len()
    };
    if trimmed.starts_with('[') {
        let items: Vec<&RawValue> =
            serde_json::from_str(trimmed).map_err(|e| JsonError::Invalid(e.to_string()))?;
        if items.is_empty() && !allow_empty {
            return Err(JsonError::EmptyArray);
        }
        Ok(items.into_iter().map(|r| body.slice(range(r))).collect())
    } else {
        let one: &RawValue =
            serde_json::from_str(trimmed).map_err(|e| JsonError::Invalid(e.to_string()))?;
        Ok(vec![body.slice(range(one))])
    }
}

/// Length of the array text that [`write_array`] produces for these messages.
pub fn array_len<'a>(messages: impl IntoIterator<Item = &'a [u8]>) -> usize {
    let mut n = 2;
    let mut first = true;
    for m in messages {
        if !first {
            n += 1;
        }
        first = false;
        n += m.len();
    }
    n
}

/// Appends `[m1,m2,...]` to `out`.
pub fn write_array<'a>(out: &mut Vec<u8>, messages: impl IntoIterator<Item = &'a [u8]>) {
    out.push(b'[');
    let mut first = true;
    for m in messages {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(m);
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn split(s: &str) -> Result<Vec<String>, JsonError> {
        split_messages(&Bytes::copy_from_slice(s.as_bytes()), false).map(|v| {
            v.into_iter()
                .map(|m| String::from_utf8(m.to_vec()).unwrap())
                .collect()
        })
    }

    #[test]
    fn arrays_flatten_one_level() {
        assert_eq!(split("[[1,2],[3,4]]").unwrap(), vec!["[1,2]", "[3,4]"]);
        assert_eq!(split("[[[1]]]").unwrap(), vec!["[[1]]"]);
        assert_eq!(split(" {\"a\": 1} ").unwrap(), vec!["{\"a\": 1}"]);
        assert_eq!(split("[]"), Err(JsonError::EmptyArray));
        assert!(split_messages(&Bytes::from_static(b"[]"), true)
            .unwrap()
            .is_empty());
        // Messages are the exact source text, whitespace inside included.
        assert_eq!(
            split("[ {\"a\" : 1} ,2]").unwrap(),
            vec!["{\"a\" : 1}", "2"]
        );
        assert!(matches!(split("[1,"), Err(JsonError::Invalid(_))));
        assert!(matches!(split(""), Err(JsonError::Invalid(_))));
    }

    #[test]
    fn array_writer_matches_length() {
        let msgs: Vec<&[u8]> = vec![b"1", b"{\"x\":2}"];
        let mut out = Vec::new();
        write_array(&mut out, msgs.iter().copied());
        assert_eq!(out, b"[1,{\"x\":2}]");
        assert_eq!(array_len(msgs.iter().copied()), out.len());
    }

    proptest! {
        #[test]
        fn messages_rejoin_to_equivalent_json(v in proptest::collection::vec(any::<i64>(), 1..20)) {
            let body = Bytes::from(serde_json::to_vec(&v).unwrap());
            let msgs = split_messages(&body, false).unwrap();
            let mut out = Vec::new();
            write_array(&mut out, msgs.iter().map(|m| &m[..]));
            let back: Vec<i64> = serde_json::from_slice(&out).unwrap();
            prop_assert_eq!(back, v);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = split_messages(&Bytes::from(b), true);
        }
    }
}
