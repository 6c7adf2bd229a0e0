//! A segment's search summary: what `_aggregate` and range clauses need to know about a
//! sealed segment without reading its records. Pure; the engine builds one per indexed
//! segment and stores it beside the segment (see `engine::keyindex::summaries`).
//!
//! - **Column ranges.** For each `column` field, how many canonical values the segment's
//!   records have and their least and greatest. A comparison clause (`field:>v`,
//!   `field:<=v`, `field:v` on a typed field) cannot match in a segment whose range rules
//!   it out, so a search skips that segment unread. A field whose values do not compare
//!   with one another (mixed kinds, NaN) gets no range and rules nothing out.
//! - **Rollup buckets.** For each rollup and each of its intervals, the segment's
//!   contributions ([`aggregate::contribution`]) merged per time bucket and per complete
//!   set of dimension values, in the order first seen. A query adds whole buckets from
//!   here where the bucket lies inside its `[from, to)`; a segment with a bucket that
//!   straddles `from` or `to` is scanned instead, so answers are the same as a scan's.
//!   Floating-point sums are added per segment first, so the last bits of a float `sum`
//!   may differ from a record-by-record scan; integer values are exact.
//!
//! ```text
//! summary := "PSS1" u8 version(1) u8 compressed [u8; 2] 0 u64 segment u64 search_hash u64 body_len
//!            body (zstd when compressed = 1) u32 crc32c(everything before it)
//! body    := u64 records  u32 n (column)*n  u32 n (rollup)*n
//! column  := str field  u64 count  u8 comparable  [canon min  canon max]   (if count > 0
//!            and comparable)
//! rollup  := str name  u32 n str*n (dimension names)  u32 n (interval)*n
//! interval:= str text  i64 ms  u32 n (bucket)*n  (buckets ascending by start)
//! bucket  := i64 start  u32 n (group)*n
//! group   := (opt_str)*dims  u32 n (str name  measure)*n
//! measure := u8 0 f64 count | u8 1 f64 count f64 sum opt_f64 min opt_f64 max
//!            u8 has_histogram [u32 n (str f64)*n]
//! canon   := u8 0 i128 | u8 1 f64 | u8 2 u8 | u8 3 str
//! str     := u32 len bytes   opt_x := u8 0 | u8 1 x
//! ```
//!
//! Integers are big-endian; floats are their IEEE bits, so values survive exactly.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde_json::Value;

use super::aggregate::{
    contribution, AggregateRequest, Buckets, CompiledRollup, Contribution, MeasureState,
};
use super::config::{FieldKind, SearchConfig};
use super::eval::{Canon, Document};
use super::query::{CompareOp, Query};

pub const MAGIC: &[u8; 4] = b"PSS1";
const VERSION: u8 = 1;
const HEADER_LEN: usize = 4 + 1 + 3 + 8 * 3;

/// Why bytes are not a valid summary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SummaryError {
    #[error("summary truncated")]
    Truncated,
    #[error("bad magic number")]
    Magic,
    #[error("unsupported summary version {0}")]
    Version(u8),
    #[error("checksum mismatch")]
    Checksum,
    #[error("corrupt summary: {0}")]
    Corrupt(String),
}

/// The range of a column field's canonical values in a segment.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnRange {
    pub field: String,
    /// Canonical values seen (a record may have several).
    pub count: u64,
    /// `Some((least, greatest))` when every value compares with every other.
    pub bounds: Option<(Canon, Canon)>,
}

impl ColumnRange {
    /// Whether some value in the range may satisfy `value op want`, with the
    /// evaluator's comparison rules (`search::eval`).
    pub fn may_satisfy(&self, op: CompareOp, want: &Canon) -> bool {
        if self.count == 0 {
            return false;
        }
        let Some((lo, hi)) = &self.bounds else {
            return true;
        };
        if std::mem::discriminant(lo) != std::mem::discriminant(want) || is_nan(want) {
            // Mixed kinds compare "equal" in the evaluator: nothing can be ruled out.
            return true;
        }
        match op {
            CompareOp::Eq => {
                lo.cmp_same(want) != Ordering::Greater && hi.cmp_same(want) != Ordering::Less
            }
            CompareOp::Gt => hi.cmp_same(want) == Ordering::Greater,
            CompareOp::Gte => hi.cmp_same(want) != Ordering::Less,
            CompareOp::Lt => lo.cmp_same(want) == Ordering::Less,
            CompareOp::Lte => lo.cmp_same(want) != Ordering::Greater,
        }
    }
}

fn is_nan(c: &Canon) -> bool {
    matches!(c, Canon::Float(f) if f.is_nan())
}

/// One group of a bucket: the values of all the rollup's dimensions (configuration
/// order; `None`: absent) and its measures merged.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSummary {
    pub dimensions: Vec<Option<String>>,
    pub measures: Vec<(String, MeasureState)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BucketSummary {
    pub start_ms: i64,
    /// In the order first seen.
    pub groups: Vec<GroupSummary>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IntervalSummary {
    pub text: String,
    pub ms: i64,
    /// Ascending by start.
    pub buckets: Vec<BucketSummary>,
}

impl IntervalSummary {
    /// Whether every bucket lies inside or outside `[from, to)`: then the segment's
    /// answer for that window is exactly its buckets inside it.
    pub fn aligned_to(&self, from_ms: i64, to_ms: i64) -> bool {
        self.buckets.iter().all(|b| {
            let end = b.start_ms.saturating_add(self.ms);
            let inside = b.start_ms >= from_ms && end <= to_ms;
            let outside = end <= from_ms || b.start_ms >= to_ms;
            inside || outside
        })
    }

    /// The buckets inside `[from, to)`.
    pub fn within(&self, from_ms: i64, to_ms: i64) -> impl Iterator<Item = &BucketSummary> {
        let ms = self.ms;
        self.buckets
            .iter()
            .filter(move |b| b.start_ms >= from_ms && b.start_ms.saturating_add(ms) <= to_ms)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RollupSummary {
    pub name: String,
    pub dimensions: Vec<String>,
    pub intervals: Vec<IntervalSummary>,
}

/// A segment's summary.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentSummary {
    pub segment: u64,
    /// The search configuration it was built under (`search::terms::config_hash`).
    pub search_hash: u64,
    pub records: u64,
    pub columns: Vec<ColumnRange>,
    pub rollups: Vec<RollupSummary>,
}

impl SegmentSummary {
    /// The buckets of `rollup` at `interval` (`None`: not summarised).
    pub fn interval(&self, rollup: &str, interval: &str, ms: i64) -> Option<&IntervalSummary> {
        self.rollups
            .iter()
            .find(|r| r.name == rollup)?
            .intervals
            .iter()
            .find(|i| i.text == interval && i.ms == ms)
    }

    /// Whether a record of the segment may match `q`: `false` only when a comparison on
    /// a column field is ruled out by the field's range (and the query's structure
    /// carries that through); everything else may match.
    pub fn may_match(&self, q: &Query) -> bool {
        match q {
            Query::And(a, b) => self.may_match(a) && self.may_match(b),
            Query::Or(a, b) => self.may_match(a) || self.may_match(b),
            Query::Compare {
                field, op, value, ..
            } => self
                .columns
                .iter()
                .find(|c| &c.field == field)
                .is_none_or(|c| c.may_satisfy(*op, value)),
            Query::Not(_) | Query::Has { .. } | Query::Keyword { .. } | Query::Text { .. } => true,
        }
    }

    /// Whether [`SegmentSummary::add_to`] would answer `req` for this segment.
    pub fn answers(&self, req: &AggregateRequest, config: &SearchConfig) -> bool {
        self.answer_plan(req, config).is_some()
    }

    /// The rollup, the interval and the dimension equalities the query requires, when the
    /// summary answers `req` exactly.
    #[allow(clippy::type_complexity)]
    fn answer_plan<'s, 'q>(
        &'s self,
        req: &'q AggregateRequest,
        config: &SearchConfig,
    ) -> Option<(
        &'s RollupSummary,
        &'s IntervalSummary,
        Vec<(usize, &'q str)>,
    )> {
        let rollup = self.rollups.iter().find(|r| r.name == req.rollup)?;
        let iv = self.interval(&req.rollup, &req.interval, req.interval_ms)?;
        let mut wanted: Vec<(usize, &str)> = Vec::new();
        if let Some(q) = &req.q {
            if !dimension_equalities(q, config, &rollup.dimensions, &mut wanted) {
                return None;
            }
        }
        iv.aligned_to(req.from_ms, req.to_ms)
            .then_some((rollup, iv, wanted))
    }

    /// Adds the segment's part of an `_aggregate` answer to `buckets` when the summary
    /// gives it exactly: the rollup and interval are summarised, no bucket of the segment
    /// straddles `from` or `to`, and the query is absent or only requires dimensions to
    /// equal keywords (`field:value AND …` on keyword dimensions). `false`: nothing was
    /// added; the caller scans the segment.
    pub fn add_to(
        &self,
        req: &AggregateRequest,
        config: &SearchConfig,
        buckets: &mut Buckets,
    ) -> bool {
        let Some((rollup, iv, wanted)) = self.answer_plan(req, config) else {
            return false;
        };
        for b in iv.within(req.from_ms, req.to_ms) {
            for g in &b.groups {
                if !wanted
                    .iter()
                    .all(|(i, v)| g.dimensions.get(*i).and_then(|d| d.as_deref()) == Some(*v))
                {
                    continue;
                }
                let value = |name: &str| {
                    let i = rollup.dimensions.iter().position(|d| d == name)?;
                    g.dimensions.get(i).cloned().flatten()
                };
                buckets.add_group(b.start_ms, value, &g.measures);
            }
        }
        true
    }

    /// An estimate of the memory it holds, for caches.
    pub fn memory_bytes(&self) -> usize {
        let measures = |g: &GroupSummary| -> usize {
            g.measures
                .iter()
                .map(|(n, m)| {
                    n.len()
                        + 64
                        + match m {
                            MeasureState::Summary {
                                histogram: Some(h), ..
                            } => h.iter().map(|(k, _)| k.len() + 32).sum(),
                            _ => 0,
                        }
                })
                .sum()
        };
        let groups: usize = self
            .rollups
            .iter()
            .flat_map(|r| &r.intervals)
            .flat_map(|i| &i.buckets)
            .flat_map(|b| &b.groups)
            .map(|g| {
                32 + g
                    .dimensions
                    .iter()
                    .flatten()
                    .map(|d| d.len() + 24)
                    .sum::<usize>()
                    + measures(g)
            })
            .sum();
        128 + self.columns.len() * 96 + groups
    }
}

/// Whether a configuration has anything a summary holds (`column` fields or rollups):
/// summaries are built, and looked for, only then.
pub fn summarizable(c: &SearchConfig) -> bool {
    c.rollups.as_ref().is_some_and(|r| !r.is_empty())
        || c.fields
            .iter()
            .any(|(_, f)| f.column && f.kind != FieldKind::Text)
}

/// Whether segment summaries can narrow `q` at all (it has a comparison that the
/// query's structure does not negate).
pub fn narrows(q: &Query) -> bool {
    match q {
        Query::And(a, b) | Query::Or(a, b) => narrows(a) || narrows(b),
        Query::Compare { .. } => true,
        Query::Not(_) | Query::Has { .. } | Query::Keyword { .. } | Query::Text { .. } => false,
    }
}

/// Collects `q`'s clauses into `(dimension index, value)` if it is a conjunction of exact
/// keyword clauses on keyword dimensions of the rollup; `false` otherwise.
fn dimension_equalities<'q>(
    q: &'q Query,
    config: &SearchConfig,
    dimensions: &[String],
    out: &mut Vec<(usize, &'q str)>,
) -> bool {
    match q {
        Query::And(a, b) => {
            dimension_equalities(a, config, dimensions, out)
                && dimension_equalities(b, config, dimensions, out)
        }
        Query::Keyword {
            field,
            value,
            prefix: false,
        } => {
            let keyword = config
                .fields
                .iter()
                .any(|(n, f)| n == field && f.kind == FieldKind::Keyword);
            match dimensions.iter().position(|d| d == field) {
                Some(i) if keyword => {
                    out.push((i, value));
                    true
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// Where a bucket's groups are, for merging in place.
#[derive(Default)]
struct BucketIndex {
    groups: HashMap<Vec<Option<String>>, usize>,
}

struct IntervalBuilder {
    text: String,
    ms: i64,
    buckets: std::collections::BTreeMap<i64, (BucketIndex, Vec<GroupSummary>)>,
}

struct RollupBuilder {
    name: String,
    compiled: CompiledRollup,
    dimensions: Vec<String>,
    intervals: Vec<IntervalBuilder>,
}

impl RollupBuilder {
    fn add(&mut self, c: &Contribution) {
        let dims: Vec<Option<String>> = c.dimensions.iter().map(|(_, v)| v.clone()).collect();
        for iv in &mut self.intervals {
            let start = c.timestamp_ms.div_euclid(iv.ms) * iv.ms;
            let (index, groups) = iv.buckets.entry(start).or_default();
            match index.groups.get(&dims) {
                Some(&i) => {
                    let g = &mut groups[i];
                    for (name, state) in &c.measures {
                        match g.measures.iter_mut().find(|(n, _)| n == name) {
                            Some((_, s)) => s.merge(state),
                            None => g.measures.push((name.clone(), state.clone())),
                        }
                    }
                }
                None => {
                    index.groups.insert(dims.clone(), groups.len());
                    groups.push(GroupSummary {
                        dimensions: dims.clone(),
                        measures: c.measures.clone(),
                    });
                }
            }
        }
    }
}

#[derive(Default)]
struct ColumnBuilder {
    count: u64,
    comparable: bool,
    bounds: Option<(Canon, Canon)>,
}

/// Builds a segment's summary from its records, in order.
pub struct SummaryBuilder<'c> {
    config: &'c SearchConfig,
    segment: u64,
    search_hash: u64,
    records: u64,
    columns: Vec<(String, ColumnBuilder)>,
    rollups: Vec<RollupBuilder>,
}

impl<'c> SummaryBuilder<'c> {
    pub fn new(config: &'c SearchConfig, segment: u64, search_hash: u64) -> SummaryBuilder<'c> {
        let columns = config
            .fields
            .iter()
            .filter(|(_, f)| f.column && f.kind != FieldKind::Text)
            .map(|(n, _)| {
                (
                    n.clone(),
                    ColumnBuilder {
                        comparable: true,
                        ..ColumnBuilder::default()
                    },
                )
            })
            .collect();
        let rollups = config
            .rollups
            .iter()
            .flatten()
            // A rollup whose queries do not compile is left out: its queries scan.
            .filter_map(|(name, r)| {
                let compiled = CompiledRollup::new(config, r).ok()?;
                Some(RollupBuilder {
                    name: name.clone(),
                    compiled,
                    dimensions: r.dimensions.clone().unwrap_or_default(),
                    intervals: r
                        .intervals
                        .iter()
                        .filter_map(|i| {
                            Some(IntervalBuilder {
                                text: i.text.clone(),
                                ms: i64::try_from(i.ms).ok().filter(|ms| *ms > 0)?,
                                buckets: Default::default(),
                            })
                        })
                        .collect(),
                })
            })
            .collect();
        SummaryBuilder {
            config,
            segment,
            search_hash,
            records: 0,
            columns,
            rollups,
        }
    }

    /// Adds the next record of the segment, written at schema `version` (a record that
    /// is not JSON is counted and adds nothing else).
    pub fn add(&mut self, version: u64, record: Option<&Value>) {
        self.records += 1;
        let Some(record) = record else {
            return;
        };
        if !self.columns.is_empty() {
            let doc = Document::new(self.config, version, record, None);
            for (field, col) in &mut self.columns {
                for v in doc.exact(field) {
                    col.add(v);
                }
            }
        }
        for r in &mut self.rollups {
            if let Some(c) = contribution(self.config, &r.compiled, version, record) {
                r.add(&c);
            }
        }
    }

    /// A builder of one rollup's buckets only (no column ranges), fed with
    /// contributions the caller computed ([`SummaryBuilder::add_contribution`]).
    pub fn for_rollup(
        config: &'c SearchConfig,
        rollup: &str,
        segment: u64,
        search_hash: u64,
    ) -> SummaryBuilder<'c> {
        let mut b = SummaryBuilder::new(config, segment, search_hash);
        b.columns.clear();
        b.rollups.retain(|r| r.name == rollup);
        b
    }

    /// Adds a record's contribution to the rollup `rollup` (counted as one record).
    pub fn add_contribution(&mut self, rollup: &str, c: Option<&Contribution>) {
        self.records += 1;
        if let (Some(c), Some(r)) = (c, self.rollups.iter_mut().find(|r| r.name == rollup)) {
            r.add(c);
        }
    }

    pub fn finish(self) -> SegmentSummary {
        SegmentSummary {
            segment: self.segment,
            search_hash: self.search_hash,
            records: self.records,
            columns: self
                .columns
                .into_iter()
                .map(|(field, c)| ColumnRange {
                    field,
                    count: c.count,
                    bounds: if c.comparable { c.bounds } else { None },
                })
                .collect(),
            rollups: self
                .rollups
                .into_iter()
                .map(|r| RollupSummary {
                    name: r.name,
                    dimensions: r.dimensions,
                    intervals: r
                        .intervals
                        .into_iter()
                        .map(|i| IntervalSummary {
                            text: i.text,
                            ms: i.ms,
                            buckets: i
                                .buckets
                                .into_iter()
                                .map(|(start_ms, (_, groups))| BucketSummary { start_ms, groups })
                                .collect(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

impl ColumnBuilder {
    fn add(&mut self, v: Canon) {
        self.count += 1;
        if !self.comparable {
            return;
        }
        if is_nan(&v) {
            self.comparable = false;
            return;
        }
        match &mut self.bounds {
            None => self.bounds = Some((v.clone(), v)),
            Some((lo, hi)) => {
                if std::mem::discriminant(lo) != std::mem::discriminant(&v) {
                    self.comparable = false;
                    return;
                }
                if v.cmp_same(lo) == Ordering::Less {
                    *lo = v;
                } else if v.cmp_same(hi) == Ordering::Greater {
                    *hi = v;
                }
            }
        }
    }
}

// ---- encoding ----

struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: usize) {
        self.0.extend_from_slice(&(v as u32).to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn opt_f64(&mut self, v: Option<f64>) {
        match v {
            None => self.u8(0),
            Some(f) => {
                self.u8(1);
                self.f64(f);
            }
        }
    }
    fn canon(&mut self, c: &Canon) {
        match c {
            Canon::Int(i) => {
                self.u8(0);
                self.0.extend_from_slice(&i.to_be_bytes());
            }
            Canon::Float(f) => {
                self.u8(1);
                self.f64(*f);
            }
            Canon::Bool(b) => {
                self.u8(2);
                self.u8(u8::from(*b));
            }
            Canon::Str(s) => {
                self.u8(3);
                self.str(s);
            }
        }
    }
    fn measure(&mut self, m: &MeasureState) {
        match m {
            MeasureState::Count(n) => {
                self.u8(0);
                self.f64(*n);
            }
            MeasureState::Summary {
                count,
                sum,
                min,
                max,
                histogram,
            } => {
                self.u8(1);
                self.f64(*count);
                self.f64(*sum);
                self.opt_f64(*min);
                self.opt_f64(*max);
                match histogram {
                    None => self.u8(0),
                    Some(h) => {
                        self.u8(1);
                        self.u32(h.len());
                        for (k, v) in h {
                            self.str(k);
                            self.f64(*v);
                        }
                    }
                }
            }
        }
    }
}

struct Dec<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Dec<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SummaryError> {
        let end = self.at.checked_add(n).ok_or(SummaryError::Truncated)?;
        let s = self.b.get(self.at..end).ok_or(SummaryError::Truncated)?;
        self.at = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], SummaryError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, SummaryError> {
        Ok(self.take(1)?[0])
    }
    /// A count, bounded by what is left (each item takes at least one byte).
    fn len(&mut self) -> Result<usize, SummaryError> {
        let n = u32::from_be_bytes(self.array()?) as usize;
        if n > self.b.len() - self.at {
            return Err(SummaryError::Corrupt("a count exceeds the data".into()));
        }
        Ok(n)
    }
    fn u64(&mut self) -> Result<u64, SummaryError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, SummaryError> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    fn f64(&mut self) -> Result<f64, SummaryError> {
        Ok(f64::from_bits(self.u64()?))
    }
    fn str(&mut self) -> Result<String, SummaryError> {
        let n = self.len()?;
        String::from_utf8(self.take(n)?.to_vec())
            .map_err(|_| SummaryError::Corrupt("a string is not UTF-8".into()))
    }
    fn flag(&mut self) -> Result<bool, SummaryError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            t => Err(SummaryError::Corrupt(format!("bad flag {t}"))),
        }
    }
    fn opt_f64(&mut self) -> Result<Option<f64>, SummaryError> {
        Ok(if self.flag()? {
            Some(self.f64()?)
        } else {
            None
        })
    }
    fn canon(&mut self) -> Result<Canon, SummaryError> {
        Ok(match self.u8()? {
            0 => Canon::Int(i128::from_be_bytes(self.array()?)),
            1 => Canon::Float(self.f64()?),
            2 => Canon::Bool(self.flag()?),
            3 => Canon::Str(self.str()?),
            t => return Err(SummaryError::Corrupt(format!("bad value tag {t}"))),
        })
    }
    fn measure(&mut self) -> Result<MeasureState, SummaryError> {
        Ok(match self.u8()? {
            0 => MeasureState::Count(self.f64()?),
            1 => {
                let count = self.f64()?;
                let sum = self.f64()?;
                let min = self.opt_f64()?;
                let max = self.opt_f64()?;
                let histogram = if self.flag()? {
                    let n = self.len()?;
                    let mut h = Vec::with_capacity(n);
                    for _ in 0..n {
                        h.push((self.str()?, self.f64()?));
                    }
                    Some(h)
                } else {
                    None
                };
                MeasureState::Summary {
                    count,
                    sum,
                    min,
                    max,
                    histogram,
                }
            }
            t => return Err(SummaryError::Corrupt(format!("bad measure tag {t}"))),
        })
    }
}

impl SegmentSummary {
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc(Vec::new());
        e.u64(self.records);
        e.u32(self.columns.len());
        for c in &self.columns {
            e.str(&c.field);
            e.u64(c.count);
            match &c.bounds {
                Some((lo, hi)) => {
                    e.u8(1);
                    e.canon(lo);
                    e.canon(hi);
                }
                None => e.u8(0),
            }
        }
        e.u32(self.rollups.len());
        for r in &self.rollups {
            e.str(&r.name);
            e.u32(r.dimensions.len());
            for d in &r.dimensions {
                e.str(d);
            }
            e.u32(r.intervals.len());
            for i in &r.intervals {
                e.str(&i.text);
                e.i64(i.ms);
                e.u32(i.buckets.len());
                for b in &i.buckets {
                    e.i64(b.start_ms);
                    e.u32(b.groups.len());
                    for g in &b.groups {
                        for d in &g.dimensions {
                            match d {
                                Some(s) => {
                                    e.u8(1);
                                    e.str(s);
                                }
                                None => e.u8(0),
                            }
                        }
                        e.u32(g.measures.len());
                        for (n, m) in &g.measures {
                            e.str(n);
                            e.measure(m);
                        }
                    }
                }
            }
        }
        // Level 3: summaries are written once per segment and read rarely.
        let (compressed, body) = match zstd::bulk::compress(&e.0, 3) {
            Ok(c) => (1u8, c),
            Err(_) => (0u8, e.0),
        };
        let mut out = Vec::with_capacity(HEADER_LEN + body.len() + 4);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&[compressed, 0, 0]);
        out.extend_from_slice(&self.segment.to_be_bytes());
        out.extend_from_slice(&self.search_hash.to_be_bytes());
        out.extend_from_slice(&(body.len() as u64).to_be_bytes());
        out.extend_from_slice(&body);
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Checks and decodes an encoded summary.
    pub fn decode(bytes: &[u8]) -> Result<SegmentSummary, SummaryError> {
        if bytes.len() < HEADER_LEN + 4 {
            return Err(SummaryError::Truncated);
        }
        let (all, crc) = bytes.split_at(bytes.len() - 4);
        if crc32c::crc32c(all) != u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]) {
            return Err(SummaryError::Checksum);
        }
        if &all[..4] != MAGIC {
            return Err(SummaryError::Magic);
        }
        if all[4] != VERSION {
            return Err(SummaryError::Version(all[4]));
        }
        let mut h = Dec { b: all, at: 8 };
        let segment = h.u64()?;
        let search_hash = h.u64()?;
        let body_len = h.u64()?;
        if body_len != (all.len() - HEADER_LEN) as u64 {
            return Err(SummaryError::Corrupt("length does not add up".into()));
        }
        let raw = &all[HEADER_LEN..];
        let owned;
        let body: &[u8] = if all[5] == 1 {
            owned = zstd::stream::decode_all(raw)
                .map_err(|e| SummaryError::Corrupt(format!("decompressing: {e}")))?;
            &owned
        } else {
            raw
        };
        let mut d = Dec { b: body, at: 0 };
        let records = d.u64()?;
        let mut columns = Vec::new();
        for _ in 0..d.len()? {
            let field = d.str()?;
            let count = d.u64()?;
            let bounds = if d.flag()? {
                Some((d.canon()?, d.canon()?))
            } else {
                None
            };
            columns.push(ColumnRange {
                field,
                count,
                bounds,
            });
        }
        let mut rollups = Vec::new();
        for _ in 0..d.len()? {
            let name = d.str()?;
            let dimensions = (0..d.len()?)
                .map(|_| d.str())
                .collect::<Result<Vec<_>, _>>()?;
            let mut intervals = Vec::new();
            for _ in 0..d.len()? {
                let text = d.str()?;
                let ms = d.i64()?;
                if ms <= 0 {
                    return Err(SummaryError::Corrupt("an interval is not positive".into()));
                }
                let mut buckets = Vec::new();
                for _ in 0..d.len()? {
                    let start_ms = d.i64()?;
                    let mut groups = Vec::new();
                    for _ in 0..d.len()? {
                        let mut dims = Vec::with_capacity(dimensions.len());
                        for _ in &dimensions {
                            dims.push(if d.flag()? { Some(d.str()?) } else { None });
                        }
                        let mut measures = Vec::new();
                        for _ in 0..d.len()? {
                            measures.push((d.str()?, d.measure()?));
                        }
                        groups.push(GroupSummary {
                            dimensions: dims,
                            measures,
                        });
                    }
                    buckets.push(BucketSummary { start_ms, groups });
                }
                if buckets.windows(2).any(|w| w[0].start_ms >= w[1].start_ms) {
                    return Err(SummaryError::Corrupt("buckets out of order".into()));
                }
                intervals.push(IntervalSummary { text, ms, buckets });
            }
            rollups.push(RollupSummary {
                name,
                dimensions,
                intervals,
            });
        }
        if d.at != body.len() {
            return Err(SummaryError::Corrupt("trailing bytes".into()));
        }
        Ok(SegmentSummary {
            segment,
            search_hash,
            records,
            columns,
            rollups,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::search::aggregate::parse_request;
    use crate::search::query::compile_search;

    fn cfg() -> SearchConfig {
        SearchConfig::parse(&json!({
            "primaryTimestampField": "ts",
            "fields": {
                "ts": {"kind": "date", "bindings": [{"version": 1, "jsonPointer": "/ts"}], "column": true, "exact": true},
                "svc": {"kind": "keyword", "bindings": [{"version": 1, "jsonPointer": "/svc"}], "exact": true, "prefix": true, "normalizer": "lowercase_v1"},
                "zone": {"kind": "keyword", "bindings": [{"version": 1, "jsonPointer": "/zone"}], "exact": true},
                "ms": {"kind": "integer", "bindings": [{"version": 1, "jsonPointer": "/ms"}, {"version": 2, "jsonPointer": "/lat"}],
                       "column": true, "exact": true, "aggregatable": true},
                "sz": {"kind": "float", "bindings": [{"version": 1, "jsonPointer": "/sz"}], "column": true, "exact": true}
            },
            "rollups": {
                "r": {"dimensions": ["svc", "zone"], "intervals": ["1m", "1h"],
                      "measures": {"n": {"kind": "count"},
                                   "errs": {"kind": "count", "include": "ms:>=500"},
                                   "lat": {"kind": "summary", "field": "ms", "histogram": "log2_v1"}}},
                "parts": {"timestampField": "ts", "intervals": ["1m"],
                          "measures": {"p": {"kind": "summary_parts", "countJsonPointer": "/c", "sumJsonPointer": "/s",
                                             "minJsonPointer": "/lo", "maxJsonPointer": "/hi", "histogramJsonPointer": "/h"}}}
            }
        }))
        .unwrap()
    }

    fn build(c: &SearchConfig, seg: u64, records: &[(u64, Value)]) -> SegmentSummary {
        let mut b = SummaryBuilder::new(c, seg, 42);
        for (v, r) in records {
            b.add(*v, Some(r));
        }
        b.finish()
    }

    #[test]
    fn a_summary_survives_encoding_and_damage_is_detected() {
        let c = cfg();
        let recs: Vec<(u64, Value)> = (0..50)
            .map(|i| {
                (
                    1 + (i % 2),
                    json!({"ts": i * 7_000, "svc": if i % 3 == 0 {"API"} else {"web"}, "ms": i * 13,
                           "lat": i, "sz": 0.5 * i as f64, "c": 2, "s": 3.25, "lo": 1, "hi": 2,
                           "h": {"le_1": 1, "0.5": 1}}),
                )
            })
            .collect();
        let s = build(&c, 9, &recs);
        assert_eq!(s.records, 50);
        let ms = s.columns.iter().find(|c| c.field == "ms").unwrap();
        assert_eq!(ms.count, 50);
        assert_eq!(
            ms.bounds,
            Some((Canon::Int(0), Canon::Int(48 * 13))),
            "version 2 records read /lat"
        );
        let bytes = s.encode();
        assert_eq!(SegmentSummary::decode(&bytes).unwrap(), s);
        for at in [0, 5, 12, bytes.len() / 2, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x10;
            assert!(
                SegmentSummary::decode(&bad).is_err(),
                "a flipped byte at {at}"
            );
        }
        assert!(SegmentSummary::decode(&bytes[..bytes.len() - 3]).is_err());
        assert_eq!(
            SegmentSummary::decode(&bytes[..10]).unwrap_err(),
            SummaryError::Truncated
        );
    }

    #[test]
    fn column_ranges_rule_out_only_what_cannot_match() {
        let c = cfg();
        let s = build(
            &c,
            0,
            &[
                (1, json!({"ts": 10, "ms": 100})),
                (1, json!({"ts": 20, "ms": [150, 300]})),
            ],
        );
        let q = |text: &str| compile_search(Some(&c), text).unwrap();
        for (text, may) in [
            ("ms:>300", false),
            ("ms:>=300", true),
            ("ms:<100", false),
            ("ms:<=100", true),
            ("ms:200", true),
            ("ms:99", false),
            ("ms:>300 OR ms:<101", true),
            ("ms:>300 AND svc:x", false),
            ("-ms:>300", true),
            ("sz:>1", false),
            ("svc:x", true),
        ] {
            assert_eq!(s.may_match(&q(text)), may, "{text}");
        }
        let mut mixed = ColumnBuilder {
            comparable: true,
            ..ColumnBuilder::default()
        };
        mixed.add(Canon::Int(1));
        mixed.add(Canon::Float(1e9));
        assert!(!mixed.comparable, "mixed kinds give no range");
        let range = ColumnRange {
            field: "x".into(),
            count: mixed.count,
            bounds: None,
        };
        assert!(range.may_satisfy(CompareOp::Gt, &Canon::Int(1 << 40)));
    }

    /// A scan's answer: every record's contribution added in order.
    fn scanned(c: &SearchConfig, req: &AggregateRequest, segs: &[Vec<(u64, Value)>]) -> Value {
        let rollup = CompiledRollup::new(c, c.rollup(&req.rollup).unwrap()).unwrap();
        let mut b = Buckets::new(req);
        for (v, r) in segs.iter().flatten() {
            match contribution(c, &rollup, *v, r) {
                Some(x) if req.admits(c, *v, r, &x) => b.add(&x),
                _ => {}
            }
        }
        b.to_json()
    }

    /// The summaries' answer, scanning the segments they cannot answer.
    fn summarised(
        c: &SearchConfig,
        req: &AggregateRequest,
        segs: &[Vec<(u64, Value)>],
    ) -> (Value, usize) {
        let rollup = CompiledRollup::new(c, c.rollup(&req.rollup).unwrap()).unwrap();
        let mut b = Buckets::new(req);
        let mut used = 0;
        for (i, seg) in segs.iter().enumerate() {
            let s = SegmentSummary::decode(&build(c, i as u64, seg).encode()).unwrap();
            if s.add_to(req, c, &mut b) {
                used += 1;
                continue;
            }
            for (v, r) in seg {
                match contribution(c, &rollup, *v, r) {
                    Some(x) if req.admits(c, *v, r, &x) => b.add(&x),
                    _ => {}
                }
            }
        }
        (b.to_json(), used)
    }

    #[test]
    fn summaries_answer_aligned_windows_and_leave_straddling_ones_to_the_scan() {
        let c = cfg();
        let seg = |from: i64| -> Vec<(u64, Value)> {
            (0..120)
                .map(|i| {
                    let svc = ["api", "web"][i as usize % 2];
                    (1, json!({"ts": from + i * 1000, "svc": svc, "ms": i * 10}))
                })
                .collect()
        };
        // Segment 0: [0, 2m); segment 1: [2m, 4m).
        let segs = vec![seg(0), seg(120_000)];
        let req = |from: i64, to: i64, q: Option<&str>| {
            let mut body = json!({"rollup": "r", "from": from, "to": to, "interval": "1m", "group_by": ["svc"]});
            if let Some(q) = q {
                body["q"] = json!(q);
            }
            parse_request(Some(&c), &body).unwrap()
        };
        for (r, want_used) in [
            (req(0, 240_000, None), 2),
            (req(60_000, 180_000, None), 2),
            (req(30_000, 240_000, None), 1),
            (req(0, 240_000, Some("svc:API")), 2),
            (req(0, 240_000, Some("svc:api AND zone:x")), 2),
            (req(0, 240_000, Some("svc:a*")), 0),
            (req(0, 240_000, Some("ms:>5")), 0),
        ] {
            let (got, used) = summarised(&c, &r, &segs);
            assert_eq!(got, scanned(&c, &r, &segs), "{r:?}");
            assert_eq!(used, want_used, "{r:?}");
        }
    }

    fn record() -> impl Strategy<Value = (u64, Value)> {
        (
            1u64..3,
            -200_000i64..400_000,
            prop_oneof![
                Just(None),
                Just(Some("api")),
                Just(Some("WEB")),
                Just(Some("db"))
            ],
            prop::option::of(0i64..2_000),
            prop::option::of(prop_oneof![Just("a"), Just("b")]),
            prop::collection::btree_map(
                prop_oneof![Just("1"), Just("4"), Just("le_9"), Just("0.5")],
                0u8..5,
                0..3,
            ),
        )
            .prop_map(|(v, ts, svc, ms, zone, h)| {
                let mut r = json!({"ts": ts, "c": 1, "s": 2.0, "lo": 0.5, "hi": 7, "h": h});
                if let Some(s) = svc {
                    r["svc"] = json!(s);
                }
                if let Some(m) = ms {
                    r[if v == 1 { "ms" } else { "lat" }] = json!(m);
                }
                if let Some(z) = zone {
                    r["zone"] = json!(z);
                }
                (v, r)
            })
    }

    proptest! {
        #[test]
        fn the_summarised_answer_equals_the_scan(
            segs in prop::collection::vec(prop::collection::vec(record(), 0..40), 1..6),
            from in -300_000i64..300_000,
            span in 1i64..700_000,
            group in prop::collection::vec(prop_oneof![Just("svc"), Just("zone")], 0..2),
            rollup in prop_oneof![Just("r"), Just("parts")],
            hourly in any::<bool>(),
            q in prop_oneof![Just(None), Just(Some("svc:api")), Just(Some("svc:web AND zone:a")), Just(Some("ms:>100"))],
            aligned in any::<bool>(),
        ) {
            let c = cfg();
            let group: Vec<&str> = if rollup == "r" { group } else { Vec::new() };
            let interval = if hourly && rollup == "r" { "1h" } else { "1m" };
            // Half the windows fall on bucket boundaries, so summaries answer them whole.
            let step = if interval == "1h" { 3_600_000 } else { 60_000 };
            let (from, span) = if aligned {
                (from.div_euclid(step) * step, (span / step + 1) * step)
            } else {
                (from, span)
            };
            let mut body = json!({"rollup": rollup, "from": from, "to": from + span, "interval": interval, "group_by": group});
            if let Some(q) = q {
                body["q"] = json!(q);
            }
            let req = parse_request(Some(&c), &body).unwrap();
            let (got, _) = summarised(&c, &req, &segs);
            prop_assert_eq!(got, scanned(&c, &req, &segs));
        }
    }
}
