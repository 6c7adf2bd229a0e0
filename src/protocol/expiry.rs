//! Stream expiry: a sliding idle TTL or an absolute deadline, never both.

/// How a stream expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Never.
    None,
    /// Idle window in seconds, renewed by every read or write (HEAD excluded).
    Ttl(u64),
    /// Absolute deadline in Unix milliseconds.
    At(i64),
}

impl Expiry {
    /// The instant (Unix ms) after which the stream is gone, given its last access.
    pub fn deadline_ms(self, last_access_ms: i64) -> Option<i64> {
        match self {
            Expiry::None => None,
            Expiry::Ttl(s) => {
                let window = i64::try_from(s).unwrap_or(i64::MAX).saturating_mul(1000);
                Some(last_access_ms.saturating_add(window))
            }
            Expiry::At(at) => Some(at),
        }
    }

    /// Whether the stream has expired at `now_ms`.
    pub fn is_expired(self, last_access_ms: i64, now_ms: i64) -> bool {
        self.deadline_ms(last_access_ms)
            .is_some_and(|d| now_ms >= d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_slides_and_deadline_is_fixed() {
        assert!(!Expiry::None.is_expired(0, i64::MAX));
        assert!(!Expiry::Ttl(2).is_expired(1_000, 2_999));
        assert!(Expiry::Ttl(2).is_expired(1_000, 3_000));
        assert!(!Expiry::Ttl(2).is_expired(2_500, 3_000));
        assert!(Expiry::At(10).is_expired(999, 10));
        assert_eq!(Expiry::Ttl(u64::MAX).deadline_ms(5), Some(i64::MAX));
    }
}
