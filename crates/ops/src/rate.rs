//! Token buckets: steady `rate` per second, bursts up to twice that, `0`
//! meaning unlimited. Per connection for messages (`MSG_RATE`), per client
//! address for new connections (`HANDSHAKE_RATE`, see [`crate::admission`]).

use std::time::Instant;

/// One token bucket: `try_take` says whether one more event fits the rate.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate_per_sec: f64,
    capacity: f64,
    tokens: f64,
    refilled_at: Instant,
}

impl TokenBucket {
    /// A full bucket for `rate_per_sec` (`0`: unlimited).
    pub fn new(rate_per_sec: u32) -> TokenBucket {
        let rate = f64::from(rate_per_sec);
        TokenBucket {
            rate_per_sec: rate,
            capacity: rate * 2.0,
            tokens: rate * 2.0,
            refilled_at: Instant::now(),
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self) -> bool {
        self.try_take_at(Instant::now())
    }

    /// `try_take` with an explicit clock, for tests.
    pub fn try_take_at(&mut self, now: Instant) -> bool {
        if self.rate_per_sec == 0.0 {
            return true;
        }
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate_per_sec).min(self.capacity);
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether the bucket would be full at `now`: it then remembers nothing
    /// and a new bucket would behave the same.
    pub fn is_full_at(&self, now: Instant) -> bool {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.rate_per_sec == 0.0 || self.tokens + elapsed * self.rate_per_sec >= self.capacity
    }
}

/// Counts refusals in a row so a session can tell a burst from abuse.
#[derive(Debug, Clone, Default)]
pub struct AbuseCounter {
    refused_in_a_row: u32,
}

impl AbuseCounter {
    /// After this many refusals without one accepted message, the sender is
    /// flooding far past the limit rather than typing fast.
    pub const LIMIT: u32 = 50;

    /// Records one decision; true when the sender should be cut off.
    pub fn record(&mut self, accepted: bool) -> bool {
        if accepted {
            self.refused_in_a_row = 0;
            false
        } else {
            self.refused_in_a_row += 1;
            self.refused_in_a_row >= Self::LIMIT
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn allows_a_burst_of_twice_the_rate_then_refills() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(5);
        bucket.refilled_at = start;
        let accepted = (0..20).filter(|_| bucket.try_take_at(start)).count();
        assert_eq!(accepted, 10);
        assert!(!bucket.try_take_at(start));
        assert!(bucket.try_take_at(start + Duration::from_millis(200)));
        assert!(!bucket.try_take_at(start + Duration::from_millis(200)));
        // A long pause never refills past the burst size.
        let later = start + Duration::from_secs(60);
        let accepted = (0..20).filter(|_| bucket.try_take_at(later)).count();
        assert_eq!(accepted, 10);
    }

    #[test]
    fn a_bucket_is_full_again_once_its_burst_has_refilled() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10);
        bucket.refilled_at = start;
        assert!(bucket.is_full_at(start));
        assert!(bucket.try_take_at(start));
        assert!(!bucket.is_full_at(start));
        assert!(!bucket.is_full_at(start + Duration::from_millis(50)));
        assert!(bucket.is_full_at(start + Duration::from_millis(100)));
    }

    #[test]
    fn zero_means_unlimited() {
        let mut bucket = TokenBucket::new(0);
        assert!((0..10_000).all(|_| bucket.try_take()));
    }

    #[test]
    fn abuse_needs_many_refusals_in_a_row() {
        let mut abuse = AbuseCounter::default();
        for _ in 0..AbuseCounter::LIMIT - 1 {
            assert!(!abuse.record(false));
        }
        assert!(!abuse.record(true));
        for _ in 0..AbuseCounter::LIMIT - 1 {
            assert!(!abuse.record(false));
        }
        assert!(abuse.record(false));
    }
}
