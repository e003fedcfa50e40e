//! What to run: the placement, the sizes and limits, and which scenarios.

use std::path::PathBuf;
use std::time::Duration;

/// Where the nodes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// On loopback, each node `--connect`ing to every earlier one (a full mesh, as mDNS makes).
    Loopback,
    /// One network namespace per node on a bridge; nodes find each other by mDNS.
    Netns,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The chitty-node binary.
    pub node_bin: PathBuf,
    /// The chitty-bench binary (the TCP echo floor runs it inside namespaces).
    pub bench_bin: PathBuf,
    /// Where the nodes run.
    pub placement: Placement,
    /// How many nodes.
    pub nodes: usize,
    /// How many messages node 0 sends in the latency scenario.
    pub messages: usize,
    /// Messages per second in the latency scenario.
    pub rate: f64,
    /// Message size in bytes (UTF-8; above 128, two-byte characters keep it within 128 chars).
    pub size: usize,
    /// How many messages a partitioned node misses (recovery, namespaces only).
    pub missed: usize,
    /// How long to wait for any one thing (a join, the deliveries of a step, a convergence).
    pub timeout: Duration,
    /// Where each node's stderr goes (`n0.err`, ...), with `RUST_LOG` passed on; discarded if
    /// `None`.
    pub stderr_dir: Option<PathBuf>,
    /// Nodes keep no history on disk (`--no-store`).
    pub no_store: bool,
}

/// Which measurements to make. Startup, memory, CPU at rest and the floor come with every one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Startup only.
    Startup,
    /// Latency at a fixed rate from one sender.
    Latency,
    /// Raise the rate (every node sending) until p99 passes 50 ms or something is lost.
    Throughput,
    /// Time to announce a killed node; with namespaces, a partition healed.
    Recovery,
    /// All of them.
    All,
}
