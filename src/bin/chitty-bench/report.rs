//! What a run measured ([`Report`]), as one JSON object or a readable table.

use std::time::Duration;

use serde_json::{Value, json};

use crate::stats::{Percentiles, max_of, mean, ms};

/// From start until the nodes found each other.
#[derive(Debug, Clone, Default)]
pub struct Startup {
    /// Per node: from its process start to its first connected peer.
    pub first_peer: Vec<Duration>,
    /// From the first process start until every node had seen every join.
    pub all_joined: Duration,
}

/// What one load step measured.
#[derive(Debug, Clone, Default)]
pub struct Step {
    /// Messages per second, all senders together.
    pub rate: f64,
    /// Latency at that rate.
    pub latency: Percentiles,
    /// Deliveries seen / expected.
    pub delivered: f64,
    /// Messages seen more than once by a receiver.
    pub duplicates: usize,
    /// CPU seconds of all nodes per delivered message, the nodes' CPU at rest taken out.
    pub cpu_per_delivery: Option<Duration>,
    /// Every delivery's latency (for the SVG).
    pub samples: Vec<Duration>,
}

impl Step {
    /// As JSON (milliseconds, microseconds for CPU).
    fn json(&self) -> Value {
        json!({
            "rate": self.rate,
            "delivered": self.delivered,
            "duplicates": self.duplicates,
            "latency": self.latency.json(),
            "cpu_us_per_delivery": self.cpu_per_delivery.map(|d| d.as_secs_f64() * 1e6),
        })
    }

    /// Whether the step held: nothing lost and p99 within 50 ms.
    pub fn held(&self) -> bool {
        self.delivered >= 1.0 && self.latency.p99 <= Duration::from_millis(50)
    }
}

/// A partition and its repair.
#[derive(Debug, Clone, Default)]
pub struct Partition {
    /// From the cut until both sides had announced each other lost.
    pub noticed: Duration,
    /// From the repair until the cut-off node had shown every message it missed.
    pub caught_up: Duration,
    /// From the repair until every node's `/history` was the same.
    pub identical: Duration,
    /// Events the cut-off node learned after the repair.
    pub missed_by_cut: usize,
    /// Events the others learned after the repair (the most of any one node).
    pub missed_by_rest: usize,
    /// Events in the transcript they agree on.
    pub transcript: usize,
}

/// What was measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Where the nodes ran.
    pub placement: String,
    /// Nodes run.
    pub nodes: usize,
    /// Message size.
    pub size: usize,
    /// Startup of the first cluster.
    pub startup: Startup,
    /// The latency scenario (one sender at a fixed rate).
    pub latency: Option<Step>,
    /// RSS per node at rest, KiB.
    pub rss_rest_kib: Vec<u64>,
    /// RSS per node right after the last load that held, KiB.
    pub rss_load_kib: Vec<u64>,
    /// CPU seconds per second of all nodes together, at rest.
    pub cpu_rest: f64,
    /// One-way latency of a plain TCP echo in the same placement, same payload.
    pub floor: Percentiles,
    /// The throughput steps, the last one the first that did not hold.
    pub throughput: Vec<Step>,
    /// Nodes still running after the throughput steps.
    pub alive_after_throughput: Option<usize>,
    /// RSS per node after the step that did not hold, KiB.
    pub rss_beyond_kib: Vec<u64>,
    /// Time from `kill -9` until every other node announced the node lost.
    pub lost_announced: Option<Duration>,
    /// Partition heal (namespaces only).
    pub partition: Option<Partition>,
}

impl Report {
    /// As one JSON object.
    pub fn json(&self) -> Value {
        let l = self.latency.as_ref();
        json!({
            "placement": self.placement,
            "nodes": self.nodes,
            "size": self.size,
            "first_peer_ms": self.startup.first_peer.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
            "first_peer_max_ms": ms(max_of(&self.startup.first_peer)),
            "all_joined_ms": ms(self.startup.all_joined),
            "latency": l.map(|l| l.latency.json()),
            "delivered": l.map(|l| l.delivered),
            "duplicates": l.map(|l| l.duplicates),
            "cpu_us_per_delivery": l.and_then(|l| l.cpu_per_delivery).map(|d| d.as_secs_f64() * 1e6),
            "cpu_rest_per_s": self.cpu_rest,
            "rss_rest_kib": self.rss_rest_kib,
            "rss_load_kib": self.rss_load_kib,
            "floor": self.floor.json(),
            "throughput": self.throughput.iter().map(Step::json).collect::<Vec<_>>(),
            "highest_rate_held": self.highest_rate_held(),
            "alive_after_throughput": self.alive_after_throughput,
            "rss_beyond_kib": self.rss_beyond_kib,
            "lost_announced_ms": self.lost_announced.map(ms),
            "partition": self.partition.as_ref().map(|p| json!({
                "noticed_ms": ms(p.noticed),
                "caught_up_ms": ms(p.caught_up),
                "identical_ms": ms(p.identical),
                "missed_by_cut": p.missed_by_cut,
                "missed_by_rest": p.missed_by_rest,
                "transcript": p.transcript,
            })),
        })
    }

    /// The highest throughput step with p99 <= 50 ms and nothing lost.
    pub fn highest_rate_held(&self) -> Option<f64> {
        self.throughput
            .iter()
            .filter(|s| s.held())
            .map(|s| s.rate)
            .next_back()
    }

    /// As a readable table.
    pub fn table(&self) -> String {
        let f = |d: Duration| format!("{:.3} ms", ms(d));
        let x = |d: Duration| {
            let fl = self.floor.p50.as_secs_f64();
            if fl > 0.0 {
                format!("  ({:.0}x floor)", d.as_secs_f64() / fl)
            } else {
                String::new()
            }
        };
        let cpu = |c: Option<Duration>| {
            c.map(|d| format!("{:.0} us", d.as_secs_f64() * 1e6))
                .unwrap_or_else(|| "-".into())
        };
        let mut t = String::new();
        let mut line = |k: &str, v: String| t.push_str(&format!("{k:<28}{v}\n"));
        line(
            "nodes",
            format!(
                "{} ({}), {} B messages",
                self.nodes, self.placement, self.size
            ),
        );
        let mut fp = self.startup.first_peer.clone();
        fp.sort();
        if !fp.is_empty() {
            line(
                "first peer after start",
                format!("median {}  max {}", f(fp[fp.len() / 2]), f(max_of(&fp))),
            );
        }
        line("every join seen after", f(self.startup.all_joined));
        if let Some(l) = &self.latency {
            let p = &l.latency;
            line("latency p50", format!("{}{}", f(p.p50), x(p.p50)));
            line("latency p90", f(p.p90));
            line("latency p99", format!("{}{}", f(p.p99), x(p.p99)));
            line("latency max", f(p.max));
            line(
                "delivered",
                format!("{:.2}% ({} deliveries)", l.delivered * 100.0, p.count),
            );
            line("duplicates", l.duplicates.to_string());
            line("CPU per delivery", cpu(l.cpu_per_delivery));
        }
        line(
            "CPU at rest, all nodes",
            format!("{:.3} s/s", self.cpu_rest),
        );
        line(
            "RSS at rest (mean)",
            format!("{} KiB", mean(&self.rss_rest_kib)),
        );
        if !self.rss_load_kib.is_empty() {
            line(
                "RSS after load (mean)",
                format!("{} KiB", mean(&self.rss_load_kib)),
            );
        }
        line(
            "floor (TCP echo, one way)",
            format!("p50 {}  p99 {}", f(self.floor.p50), f(self.floor.p99)),
        );
        for s in &self.throughput {
            line(
                &format!("throughput {}/s", s.rate),
                format!(
                    "p50 {}  p99 {}  delivered {:.2}%  CPU/delivery {}",
                    f(s.latency.p50),
                    f(s.latency.p99),
                    s.delivered * 100.0,
                    cpu(s.cpu_per_delivery)
                ),
            );
        }
        if !self.throughput.is_empty() {
            line(
                "highest rate held",
                self.highest_rate_held()
                    .map(|r| format!("{r}/s (p99 <= 50 ms, nothing lost)"))
                    .unwrap_or_else(|| "none".into()),
            );
        }
        if let Some(n) = self.alive_after_throughput {
            line(
                "beyond it",
                format!(
                    "{n} of {} nodes running, RSS {} KiB (mean)",
                    self.nodes,
                    mean(&self.rss_beyond_kib)
                ),
            );
        }
        if let Some(d) = self.lost_announced {
            line("kill -9 announced in", f(d));
        }
        if let Some(p) = &self.partition {
            line("partition noticed in", f(p.noticed));
            line(
                "after repair: caught up in",
                format!(
                    "{} ({} events missed by the cut-off node, {} by the others)",
                    f(p.caught_up),
                    p.missed_by_cut,
                    p.missed_by_rest
                ),
            );
            line(
                "after repair: identical in",
                format!("{} ({} events)", f(p.identical), p.transcript),
            );
        }
        t
    }
}
