//! `Stream-Cursor`: the CDN request-collapsing cursor.
//!
//! Time is divided into 20-second intervals counted from 2024-10-09T00:00:00Z; the cursor
//! is the interval number. When a client echoes a cursor that is not behind the current
//! interval, the server answers with a strictly larger one (current interval plus a random
//! jitter of 1 to 3600 seconds, rounded up to whole intervals), which breaks cache loops.

/// 2024-10-09T00:00:00Z in Unix milliseconds.
pub const EPOCH_MS: i64 = 1_728_432_000_000;
/// Interval length.
pub const INTERVAL_MS: i64 = 20_000;

/// The cursor to send, given the clock, the client's echoed cursor (if any) and a random
/// jitter in seconds (1..=3600) drawn by the caller's injected randomness.
pub fn next_cursor(now_ms: i64, client: Option<&str>, jitter_s: u64) -> u64 {
    let current = (now_ms.saturating_sub(EPOCH_MS).max(0) / INTERVAL_MS) as u64;
    let echoed = client
        .filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|c| c.parse::<u64>().ok());
    match echoed {
        Some(c) if c >= current => {
            let jitter_intervals = jitter_s.clamp(1, 3600).div_ceil(INTERVAL_MS as u64 / 1000);
            c.saturating_add(jitter_intervals.max(1))
        }
        _ => current,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_counts_intervals_and_jumps_ahead_of_echoes() {
        let now = EPOCH_MS + 45_000;
        assert_eq!(next_cursor(now, None, 1), 2);
        assert_eq!(next_cursor(now, Some("1"), 1), 2);
        assert_eq!(next_cursor(now, Some("2"), 1), 3);
        assert_eq!(next_cursor(now, Some("2"), 3600), 2 + 180);
        assert_eq!(next_cursor(now, Some("junk"), 5), 2);
        assert_eq!(next_cursor(now, Some("999"), 30), 1001);
    }

    proptest::proptest! {
        /// Any echoed text and any clock: never a panic, never behind the current interval.
        #[test]
        fn any_echo_gives_a_cursor_not_behind_now(
            now in proptest::num::i64::ANY,
            echo in proptest::option::of("\\PC{0,30}"),
            jitter in proptest::num::u64::ANY,
        ) {
            let c = next_cursor(now, echo.as_deref(), jitter);
            let current = (now.saturating_sub(EPOCH_MS).max(0) / INTERVAL_MS) as u64;
            proptest::prop_assert!(c >= current);
        }
    }
}
