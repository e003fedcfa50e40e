//! `chitty-bench`: measures real `chitty-node` processes; see docs/PERFORMANCE.md.

use std::net::TcpListener;
use std::process::ExitCode;
use std::time::Duration;

use chitty_lab::Lab;
use chitty_node::bench::{self, BenchConfig, Placement, Scenario, run};
use clap::Parser;

/// Starts N real chitty-node processes and measures startup, delivery latency, delivery and
/// duplicates, throughput, recovery from a crash and a partition, memory and CPU, beside a plain
/// TCP echo in the same placement.
#[derive(Debug, Parser)]
#[command(name = "chitty-bench", version)]
struct Args {
    /// How many nodes.
    #[arg(long, default_value_t = 10)]
    nodes: usize,
    /// How many messages node 0 sends in the latency scenario.
    #[arg(long, default_value_t = 200)]
    messages: usize,
    /// Messages per second in the latency scenario.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Message size in bytes.
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// One network namespace per node on a bridge, found by mDNS, as on a LAN (needs root and
    /// `ip`); without it, loopback with --connect.
    #[arg(long)]
    netns: bool,
    /// How many messages a node cut off by a partition misses (recovery, with --netns).
    #[arg(long, default_value_t = 1000)]
    missed: usize,
    /// How long to wait for any one thing (a join, a step's deliveries), in seconds.
    #[arg(long, default_value_t = 20)]
    timeout: u64,
    /// Keep each node's stderr in DIR/n0.err, ... (set RUST_LOG for more than warnings).
    #[arg(long, value_name = "DIR")]
    stderr_dir: Option<std::path::PathBuf>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write the latency distribution as an SVG histogram to this file.
    #[arg(long, value_name = "FILE")]
    svg: Option<std::path::PathBuf>,
    /// What to measure: startup, latency, throughput, recovery or all.
    #[arg(long, default_value = "latency")]
    scenario: String,
    /// (Internal, for the floor in namespaces) serve one TCP echo, printing the port.
    #[arg(long, hide = true)]
    echo_server: bool,
    /// (Internal, for the floor in namespaces) time echoes from this address, print JSON.
    #[arg(long, hide = true, value_name = "ADDR")]
    echo_client: Option<String>,
}

/// Ctrl-C or SIGTERM: remove every process and namespace the bench made, then exit.
fn clean_up_on_signal() {
    std::thread::spawn(|| {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            else {
                return;
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            eprintln!("chitty-bench: interrupted; cleaning up");
            bench::clean_up();
            std::process::exit(130);
        });
    });
}

fn main() -> ExitCode {
    let a = Args::parse();
    if a.echo_server {
        let served = TcpListener::bind("0.0.0.0:0").and_then(|l| {
            println!("{}", l.local_addr()?.port());
            bench::echo_serve(l, a.size)
        });
        return match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("chitty-bench: echo server: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(addr) = &a.echo_client {
        return match bench::echo_client(addr, a.size, a.messages) {
            Ok(p) => {
                println!("{}", p.json());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("chitty-bench: echo client: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if a.nodes < 2 || a.rate <= 0.0 || a.size == 0 || a.size > 512 || a.missed == 0 {
        eprintln!(
            "chitty-bench: need --nodes >= 2, --rate > 0, --size from 1 to 512 and --missed > 0"
        );
        return ExitCode::from(2);
    }
    let scenario = match a.scenario.as_str() {
        "startup" => Scenario::Startup,
        "latency" => Scenario::Latency,
        "throughput" => Scenario::Throughput,
        "recovery" => Scenario::Recovery,
        "all" => Scenario::All,
        other => {
            eprintln!(
                "chitty-bench: unknown --scenario {other:?} (startup, latency, throughput, recovery, all)"
            );
            return ExitCode::from(2);
        }
    };
    if a.netns
        && let Some(why) = Lab::unavailable()
    {
        eprintln!("chitty-bench: --netns needs root and `ip`: {why}");
        return ExitCode::from(2);
    }
    let bench_bin = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("chitty-bench: cannot find chitty-node: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cfg = BenchConfig {
        node_bin: bench_bin.with_file_name("chitty-node"),
        bench_bin,
        placement: if a.netns {
            Placement::Netns
        } else {
            Placement::Loopback
        },
        nodes: a.nodes,
        messages: a.messages,
        rate: a.rate,
        size: a.size,
        missed: a.missed,
        timeout: Duration::from_secs(a.timeout.max(1)),
        stderr_dir: a.stderr_dir.clone(),
    };
    clean_up_on_signal();
    eprintln!(
        "chitty-bench: {} nodes, {}-byte messages, scenario {}",
        a.nodes, a.size, a.scenario
    );
    let mut progress = |what: &str| eprintln!("chitty-bench: {what}");
    let result = run(&cfg, scenario, &mut progress);
    match result {
        Ok(r) => {
            if a.json {
                println!("{}", r.json());
            } else {
                print!("{}", r.table());
            }
            if let Some(path) = &a.svg {
                match r.svg() {
                    Some(svg) => {
                        if let Err(e) = std::fs::write(path, svg) {
                            eprintln!("chitty-bench: cannot write {}: {e}", path.display());
                            return ExitCode::FAILURE;
                        }
                    }
                    None => eprintln!("chitty-bench: no latency samples for an SVG"),
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chitty-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
