//! Every object key, in one place.
//!
//! ```text
//! streams/<incarnation>/manifest.json
//! streams/<incarnation>/segments/<index, 16 digits>.seg
//! streams/<incarnation>/keyindex/l<level>-<start, 16 digits>-<end, 16 digits>.ski
//! streams/<incarnation>/summaries/<index, 16 digits>.pss
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

/// The folder of an incarnation's routing-key index runs.
pub fn key_index_dir(prefix: &str) -> String {
    format!("{prefix}keyindex/")
}

/// A routing-key index run covering segments `[start, end)`.
pub fn key_index_run(prefix: &str, level: u8, start: u64, end: u64) -> String {
    format!(
        "{}l{level}-{start:016}-{end:016}.ski",
        key_index_dir(prefix)
    )
}

/// `(level, start, end)` of a run's object key (any other key: `None`).
pub fn parse_key_index_run(key: &str) -> Option<(u8, u64, u64)> {
    let name = key.rsplit('/').next()?.strip_suffix(".ski")?;
    let (level, rest) = name.strip_prefix('l')?.split_once('-')?;
    let (start, end) = rest.split_once('-')?;
    if start.len() != 16 || end.len() != 16 {
        return None;
    }
    Some((level.parse().ok()?, start.parse().ok()?, end.parse().ok()?))
}

/// The search summary of segment `index` (see `search::summary`).
pub fn segment_summary(prefix: &str, index: u64) -> String {
    format!("{prefix}summaries/{index:016}.pss")
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
        let run = key_index_run(&p, 1, 256, 512);
        assert_eq!(
            run,
            "streams/00ff/keyindex/l1-0000000000000256-0000000000000512.ski"
        );
        assert_eq!(parse_key_index_run(&run), Some((1, 256, 512)));
        assert_eq!(parse_key_index_run(&segment(&p, 1)), None);
        assert_eq!(parse_key_index_run("streams/x/keyindex/l1-1-2.ski"), None);
    }
}
