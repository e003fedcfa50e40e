//! `chitty-bench`: measures real `chitty-node` processes; see docs/PERFORMANCE.md.

use std::process::ExitCode;
use std::time::Duration;

use chitty_node::bench::{BenchConfig, Scenario, run};
use clap::Parser;

/// Starts N real chitty-node processes on loopback and measures delivery latency, delivery,
/// duplicates, time until every join is seen, memory, and a TCP echo floor.
#[derive(Debug, Parser)]
#[command(name = "chitty-bench", version)]
struct Args {
    /// How many nodes.
    #[arg(long, default_value_t = 10)]
    nodes: usize,
    /// How many messages node 0 sends.
    #[arg(long, default_value_t = 200)]
    messages: usize,
    /// Messages per second.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Message size in bytes.
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// What to measure: latency, throughput, recovery or all.
    #[arg(long, default_value = "latency")]
    scenario: String,
}

fn main() -> ExitCode {
    let a = Args::parse();
    if a.nodes < 2 || a.rate <= 0.0 || a.size == 0 || a.size > 512 {
        eprintln!("chitty-bench: need --nodes >= 2, --rate > 0 and --size from 1 to 512");
        return ExitCode::from(2);
    }
    let scenario = match a.scenario.as_str() {
        "latency" => Scenario::Latency,
        "throughput" => Scenario::Throughput,
        "recovery" => Scenario::Recovery,
        "all" => Scenario::All,
        other => {
            eprintln!(
                "chitty-bench: unknown --scenario {other:?} (latency, throughput, recovery, all)"
            );
            return ExitCode::from(2);
        }
    };
    let node_bin = match std::env::current_exe() {
        Ok(p) => p.with_file_name("chitty-node"),
        Err(e) => {
            eprintln!("chitty-bench: cannot find chitty-node: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cfg = BenchConfig {
        node_bin,
        nodes: a.nodes,
        messages: a.messages,
        rate: a.rate,
        size: a.size,
        timeout: Duration::from_secs(20),
    };
    eprintln!(
        "chitty-bench: {} nodes, {} messages of {} bytes at {}/s ...",
        a.nodes, a.messages, a.size, a.rate
    );
    let mut progress = |what: &str| eprintln!("chitty-bench: {what}");
    match run(&cfg, scenario, &mut progress) {
        Ok(r) => {
            if a.json {
                println!("{}", r.json());
            } else {
                print!("{}", r.table());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chitty-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
