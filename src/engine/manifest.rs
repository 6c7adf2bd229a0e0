//! The per-incarnation manifest: the object-store commit point. A manifest lists the
//! contiguous prefix of uploaded segments and the stream's configuration; a node rebuilt
//! from manifests alone (`--bootstrap-from-r2`) serves exactly what they cover.
//! Written as a conditional PUT with a generation number inside.

use serde::{Deserialize, Serialize};

use super::db::segments::SegmentRow;
use super::StreamMeta;
use crate::protocol::expiry::Expiry;

/// Format version written in every manifest.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub generation: u64,
    /// `None` once the incarnation left the namespace (expired, still read by forks).
    pub name: Option<String>,
    pub incarnation: String,
    pub content_type: String,
    pub created_at_ms: i64,
    pub ttl_seconds: Option<u64>,
    pub expires_at_ms: Option<i64>,
    pub closed: bool,
    pub closed_by: Option<(String, u64, u64)>,
    /// Soft-deleted (the name answers 410) or detached.
    pub deleted: bool,
    pub fork: Option<ManifestFork>,
    /// First position of the incarnation's own entries.
    pub start_pos: u64,
    /// End of the uploaded data: the node restored from this manifest has its tail here.
    pub end_pos: u64,
    pub segments: Vec<ManifestSegment>,
    /// The stream's profile and schema registry, when either was ever set (older
    /// manifests have none: a generic stream without a registry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<ManifestSettings>,
}

/// A stream's profile and schema registry as stored (`stream_profiles`,
/// `stream_schemas`), so that a rebuilt node validates, keys and promotes as before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestSettings {
    /// The profile kind; `None` for generic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_kind: Option<String>,
    /// The profile's stored configuration, for the kinds that keep one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<serde_json::Value>,
    /// The registry document, key order as stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFork {
    pub source_incarnation: String,
    pub pos: u64,
    pub sub_offset: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestSegment {
    pub index: u64,
    pub start_pos: u64,
    pub end_pos: u64,
    pub size_bytes: u64,
    pub block_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid JSON of the expected shape: {0}")]
    Parse(String),
    #[error("unsupported manifest format {0}")]
    Format(u32),
    #[error("manifest is inconsistent: {0}")]
    Inconsistent(&'static str),
}

impl Manifest {
    /// Builds the manifest of `m` covering the uploaded prefix `uploaded` (segments in index
    /// order, contiguous from the stream's own start).
    pub fn build(
        m: &StreamMeta,
        generation: u64,
        uploaded: &[SegmentRow],
        fork_source_incarnation: Option<String>,
        settings: Option<ManifestSettings>,
    ) -> Manifest {
        let (ttl_seconds, expires_at_ms) = match m.config.expiry {
            Expiry::None => (None, None),
            Expiry::Ttl(s) => (Some(s), None),
            Expiry::At(a) => (None, Some(a)),
        };
        let start_pos = m.own_start();
        Manifest {
            format: FORMAT,
            generation,
            name: m.name.clone(),
            incarnation: m.config.incarnation.clone(),
            content_type: m.config.content_type.clone(),
            created_at_ms: m.config.created_at_ms,
            ttl_seconds,
            expires_at_ms,
            closed: m.tail.closed,
            closed_by: m.tail.closed_by.clone(),
            deleted: m.life.deleted,
            fork: m
                .config
                .fork
                .zip(fork_source_incarnation)
                .map(|(f, inc)| ManifestFork {
                    source_incarnation: inc,
                    pos: f.pos,
                    sub_offset: f.sub_offset,
                }),
            start_pos,
            end_pos: uploaded.last().map_or(start_pos, |s| s.end_pos),
            segments: uploaded
                .iter()
                .map(|s| ManifestSegment {
                    index: s.index,
                    start_pos: s.start_pos,
                    end_pos: s.end_pos,
                    size_bytes: s.size_bytes,
                    block_count: s.block_count,
                })
                .collect(),
            settings,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain data cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses and checks a manifest: segments contiguous from `start_pos` to `end_pos`.
    pub fn decode(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Parse(e.to_string()))?;
        if m.format != FORMAT {
            return Err(ManifestError::Format(m.format));
        }
        let mut pos = m.start_pos;
        for (i, s) in m.segments.iter().enumerate() {
            if s.index != i as u64 || s.start_pos != pos || s.end_pos <= s.start_pos {
                return Err(ManifestError::Inconsistent("segments are not contiguous"));
            }
            pos = s.end_pos;
        }
        if pos != m.end_pos {
            return Err(ManifestError::Inconsistent(
                "end_pos does not match the segments",
            ));
        }
        if m.ttl_seconds.is_some() && m.expires_at_ms.is_some() {
            return Err(ManifestError::Inconsistent("both a TTL and a deadline"));
        }
        if m.incarnation.is_empty() || m.incarnation.contains('/') {
            return Err(ManifestError::Inconsistent("bad incarnation"));
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(sizes: &[u64], start: u64) -> Manifest {
        let mut pos = start;
        let segments = sizes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let s = ManifestSegment {
                    index: i as u64,
                    start_pos: pos,
                    end_pos: pos + n,
                    size_bytes: n * 10,
                    block_count: 1,
                };
                pos += n;
                s
            })
            .collect();
        Manifest {
            format: FORMAT,
            generation: 3,
            name: Some("a/b".into()),
            incarnation: "00ff".into(),
            content_type: "application/json".into(),
            created_at_ms: 1,
            ttl_seconds: Some(60),
            expires_at_ms: None,
            closed: true,
            closed_by: Some(("p".into(), 1, 2)),
            deleted: false,
            fork: Some(ManifestFork {
                source_incarnation: "11".into(),
                pos: start,
                sub_offset: 0,
            }),
            start_pos: start,
            end_pos: pos,
            segments,
            settings: Some(ManifestSettings {
                profile_kind: Some("state-protocol".into()),
                profile: Some(serde_json::json!({"kind": "state-protocol"})),
                registry: Some(serde_json::json!({"b": 1, "a": [2.5, "x"]})),
            }),
        }
    }

    #[test]
    fn manifests_without_settings_still_decode() {
        let mut m = sample(&[2], 0);
        m.settings = None;
        let text = String::from_utf8(m.encode()).unwrap();
        assert!(!text.contains("settings"), "{text}");
        assert_eq!(Manifest::decode(text.as_bytes()).unwrap(), m);
        // Key order of the registry survives the round trip (clients compare text).
        let m = sample(&[2], 0);
        let back = Manifest::decode(&m.encode()).unwrap();
        let reg = back.settings.unwrap().registry.unwrap();
        assert_eq!(reg.to_string(), r#"{"b":1,"a":[2.5,"x"]}"#);
    }

    #[test]
    fn inconsistent_manifests_are_rejected() {
        let mut m = sample(&[3, 4], 2);
        m.segments[1].start_pos = 6;
        assert!(Manifest::decode(&m.encode()).is_err());
        let mut m = sample(&[3], 0);
        m.end_pos = 9;
        assert!(Manifest::decode(&m.encode()).is_err());
        let mut m = sample(&[3], 0);
        m.format = 2;
        assert_eq!(Manifest::decode(&m.encode()), Err(ManifestError::Format(2)));
        let mut m = sample(&[], 0);
        m.incarnation = "../x".into();
        assert!(Manifest::decode(&m.encode()).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(sizes in proptest::collection::vec(1u64..1000, 0..20), start in 0u64..1000) {
            let m = sample(&sizes, start);
            prop_assert_eq!(Manifest::decode(&m.encode()).unwrap(), m);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Manifest::decode(&b);
        }

        /// A damaged manifest (a byte changed or the tail cut off) never panics, and what
        /// still decodes is self-consistent: it re-encodes to an equal manifest.
        #[test]
        fn damaged_manifests_are_errors_or_consistent(
            sizes in proptest::collection::vec(1u64..1000, 0..8),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            cut in any::<bool>(),
        ) {
            let mut b = sample(&sizes, 3).encode();
            let i = at.index(b.len());
            if cut { b.truncate(i) } else { b[i] = byte }
            if let Ok(m) = Manifest::decode(&b) {
                prop_assert_eq!(Manifest::decode(&m.encode()).unwrap(), m);
            }
        }
    }
}
