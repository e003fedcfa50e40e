//! Summaries of measurements: latency percentiles (and their JSON), means and maxima.

use std::time::Duration;

use serde_json::{Value, json};

/// Latency percentiles.
#[derive(Debug, Clone, Default)]
pub struct Percentiles {
    /// Samples.
    pub count: usize,
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Worst.
    pub max: Duration,
}

/// A duration in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Percentiles {
    /// The percentiles of `v` (all zero if it is empty).
    pub fn of(v: &[Duration]) -> Self {
        let mut v = v.to_vec();
        if v.is_empty() {
            return Self::default();
        }
        v.sort();
        let at = |q: f64| v[(((v.len() - 1) as f64) * q).round() as usize];
        Self {
            count: v.len(),
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: v[v.len() - 1],
        }
    }

    /// As JSON (milliseconds); [`Percentiles::from_json`] reads it back.
    pub fn json(&self) -> Value {
        json!({"count": self.count, "p50_ms": ms(self.p50), "p90_ms": ms(self.p90), "p99_ms": ms(self.p99), "max_ms": ms(self.max)})
    }

    /// Reads back what [`Percentiles::json`] wrote.
    pub fn from_json(v: &Value) -> Option<Self> {
        let d = |k: &str| v[k].as_f64().map(|m| Duration::from_secs_f64(m / 1000.0));
        Some(Self {
            count: usize::try_from(v["count"].as_u64()?).ok()?,
            p50: d("p50_ms")?,
            p90: d("p90_ms")?,
            p99: d("p99_ms")?,
            max: d("max_ms")?,
        })
    }
}

/// The mean (0 for none).
pub fn mean(v: &[u64]) -> u64 {
    if v.is_empty() {
        0
    } else {
        v.iter().sum::<u64>() / v.len() as u64
    }
}

/// The largest (0 for none).
pub fn max_of(v: &[Duration]) -> Duration {
    v.iter().copied().max().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(v: impl IntoIterator<Item = u64>) -> Vec<Duration> {
        v.into_iter().map(Duration::from_millis).collect()
    }

    /// Each percentile is the sample at that rank (rounded), whatever the order they came in.
    #[test]
    fn percentiles_are_the_samples_at_their_rank() {
        let p = Percentiles::of(&millis((1..=100).rev()));
        assert_eq!(p.count, 100);
        assert_eq!(p.p50, Duration::from_millis(51));
        assert_eq!(p.p90, Duration::from_millis(90));
        assert_eq!(p.p99, Duration::from_millis(99));
        assert_eq!(p.max, Duration::from_millis(100));
    }

    #[test]
    fn no_samples_give_zeros() {
        let p = Percentiles::of(&[]);
        assert_eq!(p.count, 0);
        assert_eq!(p.max, Duration::ZERO);
        assert_eq!(mean(&[]), 0);
        assert_eq!(max_of(&[]), Duration::ZERO);
    }

    /// The echo client hands its percentiles to the bench as JSON: they come back the same
    /// (to the nanosecond), and a malformed object is refused, not read as zeros.
    #[test]
    fn percentiles_read_back_from_their_json() {
        let p = Percentiles::of(&millis([3, 1, 4, 1, 5, 9, 2, 6]));
        let back = Percentiles::from_json(&p.json()).expect("what json() wrote");
        assert_eq!(back.count, p.count);
        for (a, b) in [(back.p50, p.p50), (back.p99, p.p99), (back.max, p.max)] {
            assert!(a.abs_diff(b) <= Duration::from_nanos(1), "{a:?} {b:?}");
        }
        assert!(Percentiles::from_json(&json!({"count": 3})).is_none());
    }
}
