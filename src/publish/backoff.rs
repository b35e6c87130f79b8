//! Exponential back-off with jitter, for retries (`lvahttpsink`) and reconnects (the publishing
//! sinks), and a process-unique random number to seed it.

use std::time::{Duration, SystemTime};

/// Exponential back-off with jitter: attempt n waits a random time in
/// [d/2, d] where d = first · 2^n, capped at `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    attempt: u32,
    state: u64,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration, seed: u64) -> Backoff {
        Backoff {
            first,
            max: max.max(first),
            attempt: 0,
            // xorshift must not start at 0.
            state: seed | 1,
        }
    }

    /// The wait before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let d = self
            .first
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        // xorshift64: good enough to spread retries of many senders.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let fraction = (self.state >> 11) as f64 / (1u64 << 53) as f64;
        d.mul_f64(0.5 + 0.5 * fraction)
    }

    /// Starts again from the first delay (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// A random number that differs between calls and processes (from std's hasher keys).
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1), 42);
        let waits: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        let bounds = [100, 200, 400, 800, 1000, 1000, 1000, 1000];
        for (w, max) in waits.iter().zip(bounds) {
            let max = Duration::from_millis(max);
            assert!(
                *w >= max / 2 && *w <= max,
                "{w:?} outside [{:?}, {max:?}]",
                max / 2
            );
        }
        let mut other = Backoff::new(Duration::from_millis(100), Duration::from_secs(1), 7);
        let others: Vec<Duration> = (0..8).map(|_| other.next_delay()).collect();
        assert_ne!(waits, others, "different seeds spread the retries");
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
