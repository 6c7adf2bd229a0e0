//! Stream names: the part of `/v1/stream/<name>` after the prefix, percent-decoded per
//! segment, so `a/b` and `a%2Fb` name the same stream.

/// Longest accepted name, in bytes.
pub const MAX_NAME_BYTES: usize = 1024;

/// Why a name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("missing stream name")]
    Empty,
    #[error("stream name is not valid UTF-8 after percent-decoding")]
    Utf8,
    #[error("stream name contains a control character")]
    Control,
    #[error("stream name may not contain '.' or '..' segments")]
    DotSegment,
    #[error("stream name longer than {MAX_NAME_BYTES} bytes")]
    TooLong,
    #[error("malformed percent-encoding in stream name")]
    Percent,
}

/// Decodes the raw (still percent-encoded) path remainder into a stream name.
pub fn parse(raw: &str) -> Result<String, NameError> {
    let trimmed = raw.trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(NameError::Empty);
    }
    let bytes = percent_decode(trimmed)?;
    let name = String::from_utf8(bytes).map_err(|_| NameError::Utf8)?;
    if name.len() > MAX_NAME_BYTES {
        return Err(NameError::TooLong);
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(NameError::Control);
    }
    if name.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(NameError::DotSegment);
    }
    Ok(name)
}

/// Decodes `%XX` escapes; other bytes pass through.
pub fn percent_decode(s: &str) -> Result<Vec<u8>, NameError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).ok_or(NameError::Percent)?;
            let hi = (hex[0] as char).to_digit(16).ok_or(NameError::Percent)?;
            let lo = (hex[1] as char).to_digit(16).ok_or(NameError::Percent)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn slashes_and_encoded_slashes_are_equivalent() {
        assert_eq!(parse("a/b").unwrap(), "a/b");
        assert_eq!(parse("a%2Fb").unwrap(), "a/b");
        assert_eq!(parse("a%20b/").unwrap(), "a b");
    }

    #[test]
    fn bad_names_are_rejected() {
        assert_eq!(parse(""), Err(NameError::Empty));
        assert_eq!(parse("///"), Err(NameError::Empty));
        assert_eq!(parse("a/../b"), Err(NameError::DotSegment));
        assert_eq!(parse("%2E%2E"), Err(NameError::DotSegment));
        assert_eq!(parse("a%00b"), Err(NameError::Control));
        assert_eq!(parse("%ff"), Err(NameError::Utf8));
        assert_eq!(parse("%4"), Err(NameError::Percent));
        assert_eq!(parse(&"x".repeat(2000)), Err(NameError::TooLong));
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,64}") {
            let _ = parse(&s);
        }
    }
}
