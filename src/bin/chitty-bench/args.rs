//! The command line (its doc comments are `--help`).

use clap::Parser;

/// Starts N real chitty-node processes and measures startup, delivery latency, delivery and
/// duplicates, throughput, recovery from a crash and a partition, memory and CPU, beside a plain
/// TCP echo in the same placement.
#[derive(Debug, Parser)]
#[command(name = "chitty-bench", version)]
pub struct Args {
    /// How many nodes.
    #[arg(long, default_value_t = 10)]
    pub nodes: usize,
    /// How many messages node 0 sends in the latency scenario.
    #[arg(long, default_value_t = 200)]
    pub messages: usize,
    /// Messages per second: from one sender in the latency scenario (default 20), from all
    /// participants together in the chaos scenario (default 4).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Message size in bytes.
    #[arg(long, default_value_t = 256)]
    pub size: usize,
    /// One network namespace per node on a bridge, found by mDNS, as on a LAN (needs root and
    /// `ip`); without it, loopback with --connect.
    #[arg(long)]
    pub netns: bool,
    /// How many messages a node cut off by a partition misses (recovery, with --netns).
    #[arg(long, default_value_t = 1000)]
    pub missed: usize,
    /// How long to wait for any one thing (a join, a step's deliveries), in seconds.
    #[arg(long, default_value_t = 20)]
    pub timeout: u64,
    /// Keep each node's stderr in DIR/n0.err, ... (set RUST_LOG for more than warnings).
    #[arg(long, value_name = "DIR")]
    pub stderr_dir: Option<std::path::PathBuf>,
    /// Run the nodes with --no-store (no history on disk), to compare with the default.
    #[arg(long)]
    pub no_store: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write the latency distribution as an SVG histogram to this file.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<std::path::PathBuf>,
    /// How long the chaos scenario's disruptions go on: `90`, `90s`, `10m`.
    #[arg(long, default_value = "5m")]
    pub duration: String,
    /// The seed of the chaos scenario's schedule (printed; the same seed replays the same
    /// schedule). Default: from the clock.
    #[arg(long)]
    pub seed: Option<u64>,
    /// What to measure: startup, latency, throughput, recovery, all (these four), chaos
    /// (namespaces: joins, quits, kill -9, freezes and partitions while everyone talks) or
    /// store (history on disk: write cost, start-up and memory with --events stored).
    #[arg(long, default_value = "latency")]
    pub scenario: String,
    /// How many events the store scenario writes to the database it starts a node on.
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    /// (Internal, for the floor in namespaces) serve one TCP echo, printing the port.
    #[arg(long, hide = true)]
    pub echo_server: bool,
    /// (Internal, for the floor in namespaces) time echoes from this address, print JSON.
    #[arg(long, hide = true, value_name = "ADDR")]
    pub echo_client: Option<String>,
}
