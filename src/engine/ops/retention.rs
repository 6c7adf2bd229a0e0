//! Retention of ordinary streams (local mode): the oldest entries of a stream go once they
//! are older than a maximum age, or while the stream holds more than a maximum of payload
//! bytes. What is trimmed answers as the internal streams' trimmed entries do: a read from
//! the start begins at the oldest entry kept, a read at an offset below it is 410.
//!
//! Streams that forks read from are never trimmed (a fork would lose entries it shares),
//! nor are the internal streams, which keep their own entry count. Work is bounded per
//! writer call: a sweep is many small calls, so appends never wait behind a large trim.

use crate::engine::db::ingest;
use crate::engine::db::retention::{self, Candidate, Row};
use crate::engine::writer::{Batch, Submit};
use crate::engine::{Engine, EngineError};

pub use crate::config::RetentionPolicy as Policy;

/// Streams looked at per writer call.
const STREAMS_PER_CALL: usize = 256;
/// Entries removed per writer call at most (a larger trim continues in the next call).
const ROWS_PER_CALL: usize = 20_000;

/// What one writer call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    /// Entries and payload bytes removed.
    pub entries: u64,
    pub bytes: u64,
    /// Where the next call starts: `None` when every stream was looked at and none was
    /// left with work cut short.
    pub resume_after: Option<i64>,
}

impl Engine {
    /// Trims every stream to `policy`, in bounded writer calls; returns the entries and
    /// bytes removed.
    pub async fn apply_retention(&self, policy: Policy) -> Result<(u64, u64), EngineError> {
        let (mut entries, mut bytes) = (0, 0);
        if policy.is_off() {
            return Ok((0, 0));
        }
        let mut after = 0;
        loop {
            let pass = self
                .writer()
                .call(Submit::internal(), move |b| run(b, policy, after))
                .await?;
            entries += pass.entries;
            bytes += pass.bytes;
            match pass.resume_after {
                Some(a) => after = a,
                None => return Ok((entries, bytes)),
            }
        }
    }
}

/// One bounded pass over the streams with an id above `after`.
fn run(b: &mut Batch<'_>, policy: Policy, after: i64) -> Result<Pass, EngineError> {
    let c = b.conn()?;
    let cutoff = policy
        .max_age_ms
        .map(|age| b.now.saturating_sub(i64::try_from(age).unwrap_or(i64::MAX)));
    // An age limit needs every stream's oldest entry; a byte limit alone only the
    // streams above it.
    let over_bytes = policy.max_bytes.filter(|_| policy.max_age_ms.is_none());
    // The streams' rows count every entry appended so far (see `memtable`), so that the
    // byte figures are exact and the tail is past every entry a trim may remove; the
    // entries in the append log go to `ingest` first, where the trim finds them.
    b.spill_log()?;
    ingest::fold(c)?;
    let streams = retention::candidates(c, after, STREAMS_PER_CALL, over_bytes)?;
    let mut pass = Pass::default();
    let mut budget = ROWS_PER_CALL;
    for s in &streams {
        let (target, removed, cut_short) = plan(c, s, policy.max_bytes, cutoff, budget)?;
        if target > s.trimmed_pos {
            retention::trim(c, s.id, target, removed)?;
            let n = target - s.trimmed_pos;
            pass.entries += n;
            pass.bytes += removed;
            budget = budget.saturating_sub(usize::try_from(n).unwrap_or(usize::MAX));
        }
        if cut_short || budget == 0 {
            // Continue with this stream (it may have more to trim) in the next call.
            pass.resume_after = Some(s.id - 1);
            return Ok(pass);
        }
    }
    if streams.len() == STREAMS_PER_CALL {
        pass.resume_after = streams.last().map(|s| s.id);
    }
    Ok(pass)
}

/// The new retention point of `s`: the first entry that is young enough and within the
/// byte limit, at most `budget` entries on. Returns it, the payload bytes below it that
/// go, and whether the budget stopped the walk before it found the point.
fn plan(
    c: &rusqlite::Connection,
    s: &Candidate,
    max_bytes: Option<u64>,
    cutoff: Option<i64>,
    budget: usize,
) -> rusqlite::Result<(u64, u64, bool)> {
    let mut held = s.held_bytes;
    let mut target = s.trimmed_pos;
    let mut removed = 0;
    let mut cut_short = false;
    let mut taken = 0;
    // Stops at the first entry that stays; if none does, every entry goes.
    retention::walk(c, s.id, s.trimmed_pos, |row: Row| {
        let too_old = cutoff.is_some_and(|t| row.ts_ms < t);
        let too_big = max_bytes.is_some_and(|m| held > m);
        if !too_old && !too_big {
            return false;
        }
        if taken == budget {
            cut_short = true;
            return false;
        }
        taken += 1;
        held = held.saturating_sub(row.bytes);
        removed += row.bytes;
        target = row.pos + 1;
        true
    })?;
    Ok((target, removed, cut_short))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testing::{append_cmd, create_cmd, engine_at, TestEngine};
    use crate::engine::ForkSpec;

    fn engine() -> TestEngine {
        engine_at(1_000)
    }

    async fn create(e: &Engine, name: &str, fork: Option<ForkSpec>) {
        e.create(create_cmd(name, "text/plain", fork))
            .await
            .unwrap();
    }

    /// Appends `n` entries of 10 bytes, one per entry.
    async fn append(e: &Engine, name: &str, n: usize) {
        let entries = vec![bytes::Bytes::from_static(b"0123456789"); n];
        e.append(append_cmd(name, "text/plain", entries))
            .await
            .unwrap();
    }

    async fn trimmed(e: &Engine, name: &str) -> u64 {
        e.lookup(name).await.unwrap().unwrap().tier.trimmed_pos
    }

    fn bytes(max: u64) -> Policy {
        Policy {
            max_age_ms: None,
            max_bytes: Some(max),
        }
    }

    #[test]
    fn a_policy_without_limits_is_off() {
        assert!(Policy::default().is_off());
        assert!(!bytes(1).is_off());
    }

    #[tokio::test]
    async fn the_oldest_entries_go_until_the_stream_fits() {
        let TestEngine {
            dir: _dir,
            engine: e,
            ..
        } = engine();
        create(&e, "s", None).await;
        append(&e, "s", 10).await;
        assert_eq!(e.apply_retention(bytes(35)).await.unwrap(), (7, 70));
        assert_eq!(trimmed(&e, "s").await, 7, "30 bytes kept");
        assert_eq!(e.apply_retention(bytes(35)).await.unwrap(), (0, 0));
        append(&e, "s", 1).await;
        assert_eq!(e.apply_retention(bytes(35)).await.unwrap(), (1, 10));
        assert_eq!(trimmed(&e, "s").await, 8);
        assert_eq!(e.apply_retention(bytes(0)).await.unwrap(), (3, 30));
        assert_eq!(trimmed(&e, "s").await, 11, "everything may go");
        assert_eq!(e.apply_retention(Policy::default()).await.unwrap(), (0, 0));
    }

    #[tokio::test]
    async fn entries_older_than_the_age_go() {
        let TestEngine {
            dir: _dir,
            engine: e,
            clock,
        } = engine();
        create(&e, "s", None).await;
        append(&e, "s", 3).await;
        clock.advance_ms(4_000);
        append(&e, "s", 2).await;
        let age = Policy {
            max_age_ms: Some(2_000),
            max_bytes: None,
        };
        assert_eq!(e.apply_retention(age).await.unwrap(), (3, 30));
        assert_eq!(trimmed(&e, "s").await, 3);
        clock.advance_ms(1_000);
        assert_eq!(e.apply_retention(age).await.unwrap(), (0, 0), "still young");
        clock.advance_ms(1_001);
        assert_eq!(e.apply_retention(age).await.unwrap(), (2, 20));
    }

    #[tokio::test]
    async fn a_stream_that_forks_read_is_kept_whole() {
        let TestEngine {
            dir: _dir,
            engine: e,
            ..
        } = engine();
        create(&e, "src", None).await;
        append(&e, "src", 5).await;
        let fork = ForkSpec {
            source: "src".into(),
            pos: Some(2),
            sub_offset: 0,
            entry: None,
        };
        create(&e, "fork", Some(fork)).await;
        append(&e, "fork", 4).await;
        assert_eq!(e.apply_retention(bytes(20)).await.unwrap(), (2, 20));
        assert_eq!(trimmed(&e, "src").await, 0, "the fork shares its entries");
        assert_eq!(
            trimmed(&e, "fork").await,
            4,
            "own entries only, from the fork point"
        );
    }

    #[tokio::test]
    async fn a_large_trim_takes_several_bounded_calls() {
        let TestEngine {
            dir: _dir,
            engine: e,
            ..
        } = engine();
        create(&e, "s", None).await;
        append(&e, "s", 2 * ROWS_PER_CALL + 5).await;
        let n = (2 * ROWS_PER_CALL + 5) as u64;
        assert_eq!(e.apply_retention(bytes(0)).await.unwrap(), (n, 10 * n));
        assert_eq!(trimmed(&e, "s").await, n);
    }
}
