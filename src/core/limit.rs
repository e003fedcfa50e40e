//! Per-author rate limiting (docs/PROTOCOL.md, "Validation"): a token bucket per author, so a
//! peer sending faster than a sane rate has the excess dropped while everyone else's messages
//! go through. IO-less: the caller passes `now`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// Default sustained rate, in events per second per author.
pub const DEFAULT_RATE: u32 = 20;
/// How many authors are tracked at most; the longest idle is forgotten first.
pub const AUTHORS_CAP: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets: `rate` events per second, bursts of up to `2 x rate`.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: HashMap<PeerId, Bucket>,
}

impl RateLimiter {
    /// A limiter allowing `rate` events per second per author (at least 1).
    pub fn new(rate: u32) -> Self {
        let rate = f64::from(rate.max(1));
        Self {
            rate,
            burst: 2.0 * rate,
            buckets: HashMap::new(),
        }
    }

    /// A limiter allowing `rate` per second per peer (at least 1), in bursts of `burst` (at
    /// least 1): for costs other than events, such as answers to a peer's requests.
    pub fn with_burst(rate: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: HashMap::new(),
        }
    }

    /// The sustained rate, in events per second.
    pub fn rate(&self) -> u32 {
        // Built from a u32 (at least 1).
        self.rate as u32
    }

    /// Whether `author` may have one more event now; takes a token if so.
    pub fn allow(&mut self, author: PeerId, now: Instant) -> bool {
        if !self.buckets.contains_key(&author) && self.buckets.len() >= AUTHORS_CAP {
            let idle = self
                .buckets
                .iter()
                .min_by_key(|(_, b)| b.last)
                .map(|(p, _)| *p);
            if let Some(p) = idle {
                self.buckets.remove(&p);
            }
        }
        let b = self.buckets.entry(author).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until `author` may send again (zero if it may now).
    pub fn wait(&self, author: &PeerId) -> Duration {
        match self.buckets.get(author) {
            Some(b) if b.tokens < 1.0 => Duration::from_secs_f64((1.0 - b.tokens) / self.rate),
            _ => Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_the_sustained_rate_and_others_unaffected() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(20);
        let (flooder, honest) = (PeerId::random(), PeerId::random());
        let burst = (0..100).filter(|_| l.allow(flooder, t0)).count();
        assert_eq!(burst, 40, "a burst of twice the rate");
        assert!(l.wait(&flooder) > Duration::ZERO);
        assert!(l.allow(honest, t0), "another author is not affected");
        // Over the next second, about the rate.
        let later = (1..=100)
            .filter(|i| l.allow(flooder, t0 + Duration::from_millis(10 * i)))
            .count();
        assert!((19..=21).contains(&later), "{later}");
    }

    #[test]
    fn the_author_table_is_bounded() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(1);
        for i in 0..(AUTHORS_CAP + 10) {
            l.allow(PeerId::random(), t0 + Duration::from_millis(i as u64));
        }
        assert!(l.buckets.len() <= AUTHORS_CAP);
    }
}
