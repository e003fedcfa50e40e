//! Load on a cluster: tagged messages sent at a pace from some of the nodes, each delivery
//! timed at every receiver, duplicates counted, and the CPU it cost.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::Cluster;
use crate::error::BenchError;
use crate::node::ticks_per_second;
use crate::report::Step;
use crate::stats::Percentiles;

/// What one load measured.
pub struct Load {
    /// Each first delivery's latency.
    pub latencies: Vec<Duration>,
    /// Deliveries expected: messages times receivers.
    pub expected: usize,
    /// Messages seen more than once by a receiver.
    pub duplicates: usize,
    /// From the first send until the deliveries were in (or the wait ended).
    pub elapsed: Duration,
}

/// A payload of `size` bytes and at most 128 characters, starting with `tag`.
fn payload(tag: &str, size: usize) -> String {
    let mut s = tag.to_owned();
    let fill = if size > 128 { 'é' } else { 'x' };
    while s.len() + fill.len_utf8() <= size && s.chars().count() < 128 {
        s.push(fill);
    }
    s
}

/// The tag a [`payload`] starts with, read back from a `message` line.
pub fn tag_of(v: &Value) -> Option<&str> {
    v["text"].as_str()?.split(' ').next()
}

/// How long a load goes on listening after its last first delivery, for late duplicates.
const LATE_DUPLICATES: Duration = Duration::from_millis(200);

impl Cluster {
    /// Sends `messages` lines of `size` bytes at `rate` per second in all, round-robin from the
    /// first `senders` nodes, and times each delivery at every other node but `absent`.
    #[allow(clippy::too_many_arguments)]
    pub fn load(
        &mut self,
        senders: usize,
        messages: usize,
        rate: f64,
        size: usize,
        step: &str,
        absent: Option<usize>,
        timeout: Duration,
    ) -> Result<Load, BenchError> {
        let n = self.procs.len();
        let senders = senders.clamp(1, n);
        let mut sent: HashMap<String, (usize, Instant)> = HashMap::new();
        let gap = Duration::from_secs_f64(1.0 / rate.max(0.001));
        let start = Instant::now();
        for i in 0..messages {
            let s = i % senders;
            let tag = format!("{step}{i}");
            let line = payload(&format!("{tag} "), size);
            sent.insert(tag, (s, Instant::now()));
            self.procs[s].send(&line)?;
            // The pace of the workload.
            let next = start + gap.mul_f64((i + 1) as f64);
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        let receivers = n - 1 - usize::from(absent.is_some());
        let expected = messages * receivers;
        let mut latencies = Vec::with_capacity(expected);
        let mut seen: Vec<HashMap<String, usize>> = vec![HashMap::new(); n];
        let mut until = Instant::now() + timeout;
        let mut drained = false;
        while Instant::now() < until {
            self.wait_lines(Duration::from_millis(20));
            for (i, lines) in self.pending.iter_mut().enumerate() {
                for (t, v) in lines.drain(..) {
                    if v["type"] != "message" || Some(i) == absent {
                        continue;
                    }
                    let Some(tag) = tag_of(&v) else {
                        continue;
                    };
                    let Some((s, at)) = sent.get(tag) else {
                        continue;
                    };
                    if *s == i {
                        continue;
                    }
                    let count = seen[i].entry(tag.to_owned()).or_insert(0);
                    *count += 1;
                    if *count == 1 {
                        latencies.push(t.saturating_duration_since(*at));
                    }
                }
            }
            if latencies.len() >= expected && !drained {
                // A moment more for duplicates that come after the last first delivery.
                drained = true;
                until = Instant::now() + LATE_DUPLICATES;
            }
        }
        let duplicates = seen
            .iter()
            .flat_map(|m| m.values())
            .filter(|c| **c > 1)
            .count();
        Ok(Load {
            latencies,
            expected,
            duplicates,
            elapsed: start.elapsed(),
        })
    }

    /// A load measured as a [`Step`], with CPU per delivery (the CPU at rest, `cpu_rest` per
    /// second, taken out).
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        senders: usize,
        messages: usize,
        rate: f64,
        size: usize,
        tag: &str,
        cpu_rest: f64,
        timeout: Duration,
    ) -> Result<Step, BenchError> {
        let before = self.cpu();
        let load = self.load(senders, messages, rate, size, tag, None, timeout)?;
        let used = (self.cpu() - before) as f64 / ticks_per_second()
            - cpu_rest * load.elapsed.as_secs_f64();
        let delivered = load.latencies.len();
        Ok(Step {
            rate,
            latency: Percentiles::of(&load.latencies),
            delivered: if load.expected == 0 {
                1.0
            } else {
                delivered as f64 / load.expected as f64
            },
            duplicates: load.duplicates,
            cpu_per_delivery: (delivered > 0)
                .then(|| Duration::from_secs_f64(used.max(0.0) / delivered as f64)),
            samples: load.latencies,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A payload is `size` bytes, or as many as 128 characters (the most a chat line may hold)
    /// of two-byte fill allow, and its tag reads back from the message line.
    #[test]
    fn a_payload_has_its_size_within_128_characters_and_its_tag_reads_back() {
        for size in [16, 128, 256, 512] {
            let p = payload("t3-17 ", size);
            assert!(p.len() <= size, "{size}: {}", p.len());
            if size <= 128 {
                assert_eq!(p.len(), size);
            } else {
                assert_eq!(p.chars().count(), 128, "{size}");
            }
            let line = serde_json::json!({"type": "message", "text": p});
            assert_eq!(tag_of(&line), Some("t3-17"));
        }
    }
}
