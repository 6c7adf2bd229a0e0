//! Every object key, in one place.
//!
//! ```text
//! streams/<incarnation>/manifest.json
//! streams/<incarnation>/segments/<index, 16 digits>.seg
//! ```
//!
//! `incarnation` is a random 128-bit token (hex) minted when a stream is created, so keys
//! are safe whatever the stream's name, and a deleted and re-created stream never reuses
//! the old one's objects. The manifest carries the name.

/// Prefix under which all streams live (bootstrap lists it).
pub const STREAMS_PREFIX: &str = "streams/";
const MANIFEST_FILE: &str = "manifest.json";

/// The folder of one stream incarnation.
pub fn stream_prefix(incarnation: &str) -> String {
    format!("{STREAMS_PREFIX}{incarnation}/")
}

pub fn manifest(prefix: &str) -> String {
    format!("{prefix}{MANIFEST_FILE}")
}

pub fn segment(prefix: &str, index: u64) -> String {
    format!("{prefix}segments/{index:016}.seg")
}

/// Whether a listed key is a manifest.
pub fn is_manifest(key: &str) -> bool {
    key.starts_with(STREAMS_PREFIX) && key.ends_with(MANIFEST_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_safe() {
        let p = stream_prefix("00ff");
        assert_eq!(segment(&p, 7), "streams/00ff/segments/0000000000000007.seg");
        assert_eq!(manifest(&p), "streams/00ff/manifest.json");
        assert!(is_manifest(&manifest(&p)));
        assert!(!is_manifest(&segment(&p, 1)));
    }
}
