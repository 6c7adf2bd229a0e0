//! Content types: normalisation, JSON mode and SSE text detection.

/// The default content type of a stream created without one.
pub const DEFAULT: &str = "application/octet-stream";

/// The media type without parameters, trimmed and lower-cased: the form used to compare
/// a request's content type with a stream's.
pub fn essence(ct: &str) -> String {
    ct.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether two content types name the same media type (case and parameters ignored).
pub fn same(a: &str, b: &str) -> bool {
    essence(a) == essence(b)
}

/// JSON mode applies to `application/json` streams: message boundaries are kept and reads
/// return one JSON array.
pub fn is_json(ct: &str) -> bool {
    essence(ct) == "application/json"
}

/// Whether SSE can carry this type as UTF-8 text; anything else is base64-encoded.
pub fn is_sse_text(ct: &str) -> bool {
    let e = essence(ct);
    e == "application/json" || e.starts_with("text/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn essence_ignores_case_and_parameters() {
        assert_eq!(
            essence(" Application/JSON; charset=utf-8"),
            "application/json"
        );
        assert!(same("TEXT/plain", "text/plain;charset=utf-8"));
        assert!(!same("text/plain", "text/html"));
        assert!(is_json("application/json;charset=utf-8"));
        assert!(!is_json("application/jsonl"));
        assert!(is_sse_text("text/csv"));
        assert!(!is_sse_text("application/octet-stream"));
    }

    proptest::proptest! {
        /// Any header text: no panic, and the essence is stable under re-parsing.
        #[test]
        fn essence_is_idempotent(s in "\\PC{0,40}") {
            let e = essence(&s);
            proptest::prop_assert_eq!(essence(&e), e);
        }
    }
}
