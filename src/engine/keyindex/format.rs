//! The routing-key index run object ("PSK1"): which segments of a range hold which keys.
//!
//! ```text
//! run     := header fst bitmaps crc
//! header  := "PSK1" u8 version(1) u8 level u16 0 u64 start_seg u64 end_seg u64 key_count
//!            u64 search_hash u64 fst_len u64 bitmaps_len
//! fst     := an fst::Map from each index key to a value v (keys: `search::terms`:
//!            `0x00 routing key`, `0x01 field 0x00 keyword value`)
//! bitmaps := serialized roaring bitmaps of absolute segment indexes, back to back
//! crc     := u32 crc32c(everything before it)
//! ```
//!
//! Integers are big-endian. `end_seg` is exclusive. A value `v` of 0 means "every segment
//! of the run" (a level-0 run covers one segment, so its keys need no bitmap); otherwise
//! the key's bitmap starts at byte `v - 1` of `bitmaps`. Segment numbers are **absolute**
//! (the original stored them relative to the run and read them as absolute: its keyed
//! reads skipped matching segments once compaction had run).
//!
//! A run is exact for its range: a key is in the map if and only if some record of a
//! segment in the range has it, and its bitmap lists exactly those segments. Readers
//! verify the CRC before trusting a run; one that does not verify is not used.
//! Routing keys do not depend on any configuration; keyword terms do: `search_hash` names
//! the search configuration they were derived with (0: none, [`MIXED`]: runs of different
//! ones were merged), and a search uses a run's terms only under that same configuration.

use roaring::RoaringBitmap;

use crate::search::terms::TermExpr;

pub const MAGIC: &[u8; 4] = b"PSK1";
const VERSION: u8 = 1;
const HEADER_LEN: usize = 4 + 1 + 1 + 2 + 8 * 6;
/// `search_hash` of a run merged from runs of different search configurations.
pub const MIXED: u64 = u64::MAX;

/// Why bytes are not a valid run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    #[error("run truncated")]
    Truncated,
    #[error("bad magic number")]
    Magic,
    #[error("unsupported run version {0}")]
    Version(u8),
    #[error("checksum mismatch")]
    Checksum,
    #[error("corrupt run: {0}")]
    Corrupt(String),
}

/// What a run covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RunRange {
    pub level: u8,
    pub start_seg: u64,
    /// Exclusive.
    pub end_seg: u64,
}

impl RunRange {
    pub fn contains(&self, seg: u64) -> bool {
        self.start_seg <= seg && seg < self.end_seg
    }
}

/// What the first [`HEADER_BYTES`] of a run say: `(range, key_count, search_hash)`
/// (unverified: the checksum covers the whole object; a bootstrap uses this only to
/// restore the catalog, and readers verify the run before they use it).
pub fn peek_header(bytes: &[u8]) -> Option<(RunRange, u64, u64)> {
    if bytes.len() < HEADER_LEN || &bytes[..4] != MAGIC || bytes[4] != VERSION {
        return None;
    }
    let range = RunRange {
        level: bytes[5],
        start_seg: be64(bytes, 8),
        end_seg: be64(bytes, 16),
    };
    Some((range, be64(bytes, 24), be64(bytes, 32)))
}

/// Bytes of a run's header.
pub const HEADER_BYTES: u64 = HEADER_LEN as u64;

/// A verified run, ready for lookups (the bytes are kept as they are; nothing is
/// decoded until a key is looked up).
pub struct Run {
    pub range: RunRange,
    /// The search configuration its keyword terms follow (see the module docs).
    pub search_hash: u64,
    key_count: u64,
    map: fst::Map<Vec<u8>>,
    bitmaps: Vec<u8>,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("range", &self.range)
            .field("key_count", &self.key_count)
            .finish()
    }
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

impl Run {
    /// Checks and opens an encoded run.
    pub fn decode(bytes: &[u8]) -> Result<Run, RunError> {
        if bytes.len() < HEADER_LEN + 4 {
            return Err(RunError::Truncated);
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        let want = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
        if crc32c::crc32c(body) != want {
            return Err(RunError::Checksum);
        }
        if &body[..4] != MAGIC {
            return Err(RunError::Magic);
        }
        if body[4] != VERSION {
            return Err(RunError::Version(body[4]));
        }
        let range = RunRange {
            level: body[5],
            start_seg: be64(body, 8),
            end_seg: be64(body, 16),
        };
        let key_count = be64(body, 24);
        let search_hash = be64(body, 32);
        let fst_len = be64(body, 40);
        let bitmaps_len = be64(body, 48);
        let total = (HEADER_LEN as u64)
            .checked_add(fst_len)
            .and_then(|n| n.checked_add(bitmaps_len));
        if total != Some(body.len() as u64) || range.start_seg >= range.end_seg {
            return Err(RunError::Corrupt("lengths or range do not add up".into()));
        }
        let fst_end = HEADER_LEN + fst_len as usize;
        let map = fst::Map::new(body[HEADER_LEN..fst_end].to_vec())
            .map_err(|e| RunError::Corrupt(e.to_string()))?;
        if map.len() as u64 != key_count {
            return Err(RunError::Corrupt("key count differs from the map".into()));
        }
        Ok(Run {
            range,
            search_hash,
            key_count,
            map,
            bitmaps: body[fst_end..].to_vec(),
        })
    }

    pub fn key_count(&self) -> u64 {
        self.key_count
    }

    /// The segments of the run that hold `key` (empty if none does).
    pub fn segments(&self, key: &[u8]) -> Result<RoaringBitmap, RunError> {
        match self.map.get(key) {
            None => Ok(RoaringBitmap::new()),
            Some(v) => self.bitmap(v),
        }
    }

    /// The segments of the run that may hold a record matching `e` (exactly those that
    /// hold its terms; every segment of the run where `e` says nothing).
    pub fn matching(&self, e: &TermExpr) -> Result<RoaringBitmap, RunError> {
        use fst::{IntoStreamer as _, Streamer as _};
        Ok(match e {
            TermExpr::All => self.bitmap(0)?,
            TermExpr::Term(k) => self.segments(k)?,
            TermExpr::Prefix(p) => {
                let mut out = RoaringBitmap::new();
                let mut s = self.map.range().ge(p).into_stream();
                while let Some((k, v)) = s.next() {
                    if !k.starts_with(p) {
                        break;
                    }
                    out |= self.bitmap(v)?;
                }
                out
            }
            TermExpr::And(a, b) => self.matching(a)? & self.matching(b)?,
            TermExpr::Or(a, b) => self.matching(a)? | self.matching(b)?,
        })
    }

    fn bitmap(&self, v: u64) -> Result<RoaringBitmap, RunError> {
        if v == 0 {
            let (lo, hi) = (seg32(self.range.start_seg)?, seg32(self.range.end_seg)?);
            let mut all = RoaringBitmap::new();
            all.insert_range(lo..hi);
            return Ok(all);
        }
        let at = usize::try_from(v - 1).map_err(|_| RunError::Truncated)?;
        let slice = self.bitmaps.get(at..).ok_or(RunError::Truncated)?;
        let b = RoaringBitmap::deserialize_from(slice)
            .map_err(|e| RunError::Corrupt(format!("bitmap: {e}")))?;
        let (lo, hi) = (self.range.start_seg, self.range.end_seg);
        if b.min().is_some_and(|m| u64::from(m) < lo) || b.max().is_some_and(|m| u64::from(m) >= hi)
        {
            return Err(RunError::Corrupt("bitmap outside the run's range".into()));
        }
        Ok(b)
    }

    /// Every key of the run with its segments, in key order.
    pub fn entries(&self) -> Result<Vec<(Vec<u8>, RoaringBitmap)>, RunError> {
        use fst::Streamer as _;
        let mut out = Vec::with_capacity(self.key_count as usize);
        let mut s = self.map.stream();
        while let Some((k, v)) = s.next() {
            out.push((k.to_vec(), self.bitmap(v)?));
        }
        Ok(out)
    }

    /// The keys of the run, in byte order.
    pub fn keys(&self) -> Vec<Vec<u8>> {
        use fst::Streamer as _;
        let mut out = Vec::with_capacity(self.key_count as usize);
        let mut s = self.map.stream();
        while let Some((k, _)) = s.next() {
            out.push(k.to_vec());
        }
        out
    }

    /// Bytes held in memory (for the run cache's budget).
    pub fn memory_bytes(&self) -> usize {
        self.map.as_fst().as_bytes().len() + self.bitmaps.len() + 64
    }
}

fn seg32(seg: u64) -> Result<u32, RunError> {
    u32::try_from(seg).map_err(|_| RunError::Corrupt(format!("segment {seg} beyond u32")))
}

/// Encodes a level-0 run: the distinct index keys of segment `seg`, in byte order, its
/// keyword terms derived under the search configuration `search_hash`.
pub fn encode_segment(
    seg: u64,
    keys: &std::collections::BTreeSet<Vec<u8>>,
    search_hash: u64,
) -> Vec<u8> {
    let mut b = fst::MapBuilder::memory();
    for k in keys {
        // Sorted and distinct by construction (a BTreeSet), so insertion cannot fail.
        let _ = b.insert(k, 0);
    }
    let range = RunRange {
        level: 0,
        start_seg: seg,
        end_seg: seg + 1,
    };
    finish(
        range,
        keys.len() as u64,
        search_hash,
        b.into_inner().unwrap_or_default(),
        Vec::new(),
    )
}

/// Merges runs into one run of `range` (their ranges must lie inside it). Every key of
/// every input is kept, with the union of its segments.
pub fn merge(range: RunRange, runs: &[Run]) -> Result<Vec<u8>, RunError> {
    use fst::Streamer as _;
    for r in runs {
        if r.range.start_seg < range.start_seg || r.range.end_seg > range.end_seg {
            return Err(RunError::Corrupt(
                "a merged run lies outside the range".into(),
            ));
        }
    }
    let mut op = fst::map::OpBuilder::new();
    for r in runs {
        op.push(r.map.stream());
    }
    let mut union = op.union();
    let mut map = fst::MapBuilder::memory();
    let mut bitmaps = Vec::new();
    let mut count = 0u64;
    while let Some((key, values)) = union.next() {
        let mut segs = RoaringBitmap::new();
        for iv in values {
            segs |= runs[iv.index].bitmap(iv.value)?;
        }
        let v = bitmaps.len() as u64 + 1;
        segs.serialize_into(&mut bitmaps)
            .map_err(|e| RunError::Corrupt(e.to_string()))?;
        map.insert(key, v)
            .map_err(|e| RunError::Corrupt(e.to_string()))?;
        count += 1;
    }
    let fst = map
        .into_inner()
        .map_err(|e| RunError::Corrupt(e.to_string()))?;
    let mut hashes = runs.iter().map(|r| r.search_hash);
    let first = hashes.next().unwrap_or(0);
    let search_hash = if hashes.all(|h| h == first) {
        first
    } else {
        MIXED
    };
    Ok(finish(range, count, search_hash, fst, bitmaps))
}

fn finish(
    range: RunRange,
    key_count: u64,
    search_hash: u64,
    fst: Vec<u8>,
    bitmaps: Vec<u8>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + fst.len() + bitmaps.len() + 4);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(range.level);
    out.extend_from_slice(&[0, 0]);
    for v in [
        range.start_seg,
        range.end_seg,
        key_count,
        search_hash,
        fst.len() as u64,
        bitmaps.len() as u64,
    ] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&fst);
    out.extend_from_slice(&bitmaps);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::*;

    fn set(keys: &[&str]) -> BTreeSet<Vec<u8>> {
        keys.iter().map(|k| k.as_bytes().to_vec()).collect()
    }

    fn segs(b: &RoaringBitmap) -> Vec<u32> {
        b.iter().collect()
    }

    #[test]
    fn a_segment_run_answers_for_its_segment() {
        let run = Run::decode(&encode_segment(7, &set(&["a", "b"]), 0)).unwrap();
        assert_eq!(run.range.start_seg, 7);
        assert_eq!(segs(&run.segments(b"a").unwrap()), vec![7]);
        assert!(run.segments(b"c").unwrap().is_empty());
        assert_eq!(run.keys(), vec![b"a".to_vec(), b"b".to_vec()]);
        let empty = Run::decode(&encode_segment(0, &BTreeSet::new(), 0)).unwrap();
        assert_eq!(empty.key_count(), 0);
    }

    #[test]
    fn merged_runs_keep_absolute_segment_numbers() {
        // Segments 256..272 (a run that does not start at 0, where the original's
        // relative postings went wrong).
        let kids: Vec<Run> = (256..272)
            .map(|s| {
                let keys = if s % 5 == 0 {
                    set(&["rare", "x"])
                } else {
                    set(&["x"])
                };
                Run::decode(&encode_segment(s, &keys, 0)).unwrap()
            })
            .collect();
        let range = RunRange {
            level: 1,
            start_seg: 256,
            end_seg: 272,
        };
        let l1 = Run::decode(&merge(range, &kids).unwrap()).unwrap();
        assert_eq!(segs(&l1.segments(b"rare").unwrap()), vec![260, 265, 270]);
        assert_eq!(l1.segments(b"x").unwrap().len(), 16);
        // Merging again (level 2) keeps them.
        let range2 = RunRange {
            level: 2,
            start_seg: 0,
            end_seg: 4096,
        };
        let l2 = Run::decode(&merge(range2, &[l1]).unwrap()).unwrap();
        assert_eq!(segs(&l2.segments(b"rare").unwrap()), vec![260, 265, 270]);
    }

    #[test]
    fn expressions_are_answered_and_hashes_kept_or_marked_mixed() {
        let l0 =
            |s: u64, keys: &[&str], h: u64| Run::decode(&encode_segment(s, &set(keys), h)).unwrap();
        let kids = vec![
            l0(0, &["ab", "x"], 5),
            l0(1, &["ac"], 5),
            l0(2, &["b", "x"], 5),
        ];
        let range = RunRange {
            level: 1,
            start_seg: 0,
            end_seg: 3,
        };
        let run = Run::decode(&merge(range, &kids).unwrap()).unwrap();
        assert_eq!(run.search_hash, 5);
        let t = |k: &str| Box::new(TermExpr::Term(k.as_bytes().to_vec()));
        let p = |k: &str| Box::new(TermExpr::Prefix(k.as_bytes().to_vec()));
        assert_eq!(segs(&run.matching(&p("a")).unwrap()), vec![0, 1]);
        assert_eq!(
            segs(&run.matching(&TermExpr::And(p("a"), t("x"))).unwrap()),
            vec![0]
        );
        assert_eq!(
            segs(&run.matching(&TermExpr::Or(t("b"), t("ac"))).unwrap()),
            vec![1, 2]
        );
        assert_eq!(segs(&run.matching(&TermExpr::All).unwrap()), vec![0, 1, 2]);
        assert!(run.matching(&p("z")).unwrap().is_empty());
        let mixed = vec![l0(0, &["a"], 5), l0(1, &["a"], 6)];
        let m = Run::decode(
            &merge(
                RunRange {
                    level: 1,
                    start_seg: 0,
                    end_seg: 2,
                },
                &mixed,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(m.search_hash, MIXED);
    }

    #[test]
    fn damage_is_detected() {
        let good = encode_segment(1, &set(&["k"]), 0);
        for cut in [0, 10, good.len() - 1] {
            assert!(Run::decode(&good[..cut]).is_err(), "{cut}");
        }
        for at in [0, 5, 20, good.len() / 2, good.len() - 2] {
            let mut bad = good.clone();
            bad[at] ^= 0x40;
            assert!(Run::decode(&bad).is_err(), "flip at {at}");
        }
        let outside = RunRange {
            level: 1,
            start_seg: 2,
            end_seg: 3,
        };
        assert!(merge(outside, &[Run::decode(&good).unwrap()]).is_err());
    }

    proptest! {
        /// Built and merged (at two levels), the index answers exactly what the segments
        /// hold: every segment with the key, and no other.
        #[test]
        fn the_index_equals_the_scan(
            data in proptest::collection::vec(
                proptest::collection::btree_set(proptest::collection::vec(0u8..6, 0..3), 0..5),
                1..40,
            ),
            start in 0u64..100_000,
        ) {
            let truth: BTreeMap<Vec<u8>, Vec<u32>> = data.iter().enumerate().fold(
                BTreeMap::new(),
                |mut m, (i, keys)| {
                    for k in keys {
                        m.entry(k.clone()).or_default().push((start + i as u64) as u32);
                    }
                    m
                },
            );
            let l0: Vec<Run> = data
                .iter()
                .enumerate()
                .map(|(i, keys)| Run::decode(&encode_segment(start + i as u64, keys, 7)).unwrap())
                .collect();
            let end = start + data.len() as u64;
            let mid = start + data.len() as u64 / 2;
            let a = Run::decode(&merge(RunRange { level: 1, start_seg: start, end_seg: mid.max(start + 1) }, &l0[..(mid - start).max(1) as usize]).unwrap()).unwrap();
            let rest = &l0[(mid - start).max(1) as usize..];
            let mut parts = vec![a];
            if !rest.is_empty() {
                parts.push(Run::decode(&merge(RunRange { level: 1, start_seg: mid.max(start + 1), end_seg: end }, rest).unwrap()).unwrap());
            }
            let top = Run::decode(&merge(RunRange { level: 2, start_seg: start, end_seg: end }, &parts).unwrap()).unwrap();
            let mut probe: Vec<Vec<u8>> = truth.keys().cloned().collect();
            probe.push(vec![9, 9]);
            for k in probe {
                let want = truth.get(&k).cloned().unwrap_or_default();
                prop_assert_eq!(segs(&top.segments(&k).unwrap()), want.clone());
                let from_l0: Vec<u32> = l0.iter().flat_map(|r| segs(&r.segments(&k).unwrap())).collect();
                prop_assert_eq!(from_l0, want);
            }
            prop_assert_eq!(top.keys(), truth.keys().cloned().collect::<Vec<_>>());
        }
    }
}
