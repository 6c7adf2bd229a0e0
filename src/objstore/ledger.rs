//! Object-store requests per stream incarnation, for `/_details`: every request sent
//! (retries and failed attempts included) for a key under `streams/<incarnation>/`,
//! counted by artifact (manifest, segment, other) and operation, and the size of the
//! last manifest written. Counts live in memory since the server started; they are not
//! persisted.
//!
//! State: one map behind a std mutex (held for a lookup and an increment, never across
//! an await), bounded to [`MAX_INCARNATIONS`] entries; beyond that an arbitrary eighth is
//! dropped (the streams of a server are usually far fewer).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::keys::STREAMS_PREFIX;

/// Incarnations whose requests are kept.
pub const MAX_INCARNATIONS: usize = 65_536;

/// What an object is, as `/_details` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Artifact {
    Manifest,
    Segment,
    /// Anything else under the incarnation's folder.
    Meta,
}

impl Artifact {
    const ALL: [Artifact; 3] = [Artifact::Manifest, Artifact::Meta, Artifact::Segment];

    pub fn label(self) -> &'static str {
        match self {
            Artifact::Manifest => "manifest",
            Artifact::Segment => "segment",
            Artifact::Meta => "meta",
        }
    }

    fn index(self) -> usize {
        match self {
            Artifact::Manifest => 0,
            Artifact::Meta => 1,
            Artifact::Segment => 2,
        }
    }
}

/// An object-store operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Put,
    Get,
    Head,
    List,
    Delete,
}

impl Op {
    fn index(self) -> usize {
        self as usize
    }
}

/// Requests of one artifact kind, by operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpCounts {
    pub puts: u64,
    pub gets: u64,
    pub heads: u64,
    pub lists: u64,
    pub deletes: u64,
}

impl OpCounts {
    fn from_array(a: [u64; 5]) -> OpCounts {
        OpCounts {
            puts: a[Op::Put.index()],
            gets: a[Op::Get.index()],
            heads: a[Op::Head.index()],
            lists: a[Op::List.index()],
            deletes: a[Op::Delete.index()],
        }
    }

    /// Reading requests: GET, HEAD and LIST.
    pub fn reads(&self) -> u64 {
        self.gets + self.heads + self.lists
    }
}

/// What the ledger knows of one incarnation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamRequests {
    /// Artifacts with at least one request, by label order (`manifest`, `meta`,
    /// `segment`).
    pub by_artifact: Vec<(Artifact, OpCounts)>,
    /// Bytes of the last manifest this process wrote, if it wrote one.
    pub manifest_bytes: Option<u64>,
}

#[derive(Debug, Default)]
struct Entry {
    counts: [[u64; 5]; 3],
    manifest_bytes: Option<u64>,
}

/// The incarnation and artifact an object key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub incarnation: String,
    pub artifact: Artifact,
}

impl Target {
    /// The target of an object key; `None` for keys outside a stream's folder.
    pub fn of_key(key: &str) -> Option<Target> {
        let rest = key.strip_prefix(STREAMS_PREFIX)?;
        let (incarnation, path) = rest.split_once('/')?;
        if incarnation.is_empty() {
            return None;
        }
        let artifact = if path == "manifest.json" {
            Artifact::Manifest
        } else if path.starts_with("segments/") {
            Artifact::Segment
        } else {
            Artifact::Meta
        };
        Some(Target {
            incarnation: incarnation.to_string(),
            artifact,
        })
    }

    /// The target of a listing prefix: a stream's folder (or its `segments/`) counts as
    /// segment requests, as in the original.
    pub fn of_prefix(prefix: &str) -> Option<Target> {
        let rest = prefix.strip_prefix(STREAMS_PREFIX)?.trim_end_matches('/');
        let (incarnation, path) = rest.split_once('/').unwrap_or((rest, ""));
        if incarnation.is_empty() {
            return None;
        }
        let artifact = match path {
            "" | "segments" => Artifact::Segment,
            "manifest.json" => Artifact::Manifest,
            _ => Artifact::Meta,
        };
        Some(Target {
            incarnation: incarnation.to_string(),
            artifact,
        })
    }
}

/// Request counts per incarnation (see the module documentation).
#[derive(Debug, Default)]
pub struct RequestLedger {
    map: Mutex<HashMap<String, Entry>>,
}

impl RequestLedger {
    fn with_entry(&self, incarnation: &str, f: impl FnOnce(&mut Entry)) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if !map.contains_key(incarnation) && map.len() >= MAX_INCARNATIONS {
            let victims: Vec<String> = map.keys().take(MAX_INCARNATIONS / 8).cloned().collect();
            for v in victims {
                map.remove(&v);
            }
        }
        f(map.entry(incarnation.to_string()).or_default());
    }

    /// Counts one request sent.
    pub fn record(&self, target: &Target, op: Op) {
        self.with_entry(&target.incarnation, |e| {
            e.counts[target.artifact.index()][op.index()] += 1;
        });
    }

    /// Remembers the size of a manifest that was written.
    pub fn manifest_written(&self, incarnation: &str, bytes: u64) {
        self.with_entry(incarnation, |e| e.manifest_bytes = Some(bytes));
    }

    /// What is known of `incarnation` (empty when nothing was sent for it).
    pub fn of(&self, incarnation: &str) -> StreamRequests {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(e) = map.get(incarnation) else {
            return StreamRequests::default();
        };
        let by_artifact = Artifact::ALL
            .iter()
            .map(|a| (*a, e.counts[a.index()]))
            .filter(|(_, c)| c.iter().any(|n| *n > 0))
            .map(|(a, c)| (a, OpCounts::from_array(c)))
            .collect();
        StreamRequests {
            by_artifact,
            manifest_bytes: e.manifest_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_prefixes_name_their_incarnation_and_artifact() {
        let t = |a| {
            Some(Target {
                incarnation: "ab12".into(),
                artifact: a,
            })
        };
        assert_eq!(
            Target::of_key("streams/ab12/manifest.json"),
            t(Artifact::Manifest)
        );
        assert_eq!(
            Target::of_key("streams/ab12/segments/0000000000000001.seg"),
            t(Artifact::Segment)
        );
        assert_eq!(Target::of_key("streams/ab12/other"), t(Artifact::Meta));
        assert_eq!(Target::of_key("streams/"), None);
        assert_eq!(Target::of_key("streams//x"), None);
        assert_eq!(Target::of_key("elsewhere/ab12/manifest.json"), None);
        assert_eq!(Target::of_prefix("streams/ab12/"), t(Artifact::Segment));
        assert_eq!(
            Target::of_prefix("streams/ab12/segments/"),
            t(Artifact::Segment)
        );
        assert_eq!(Target::of_prefix("streams/"), None);
    }

    #[test]
    fn requests_are_counted_per_incarnation_and_artifact() {
        let l = RequestLedger::default();
        let seg = Target::of_key("streams/a/segments/1.seg").unwrap();
        let man = Target::of_key("streams/a/manifest.json").unwrap();
        l.record(&seg, Op::Put);
        l.record(&seg, Op::Get);
        l.record(&seg, Op::Get);
        l.record(&man, Op::Put);
        l.record(&man, Op::Head);
        l.manifest_written("a", 321);
        let r = l.of("a");
        assert_eq!(r.manifest_bytes, Some(321));
        assert_eq!(
            r.by_artifact,
            vec![
                (
                    Artifact::Manifest,
                    OpCounts {
                        puts: 1,
                        heads: 1,
                        ..OpCounts::default()
                    }
                ),
                (
                    Artifact::Segment,
                    OpCounts {
                        puts: 1,
                        gets: 2,
                        ..OpCounts::default()
                    }
                ),
            ]
        );
        assert_eq!(r.by_artifact[1].1.reads(), 2);
        assert_eq!(l.of("b"), StreamRequests::default());
    }

    #[test]
    fn the_ledger_is_bounded() {
        let l = RequestLedger::default();
        for i in 0..MAX_INCARNATIONS + 10 {
            l.manifest_written(&i.to_string(), 1);
        }
        let n = l.map.lock().unwrap().len();
        assert!(n <= MAX_INCARNATIONS, "{n}");
    }
}
