//! `chitty-bench`: starts real `chitty-node` processes, drives them through `--json`, and
//! measures what a user feels: how long until the first peer and until everyone sees everyone,
//! delivery latency from a line written to the sender's stdin to the event read from each
//! receiver's stdout, delivery ratio and duplicates, the highest rate that holds, recovery from
//! a crash and from a partition, memory and CPU per node, and a plain TCP echo in the same
//! placement as the floor. Two placements: loopback (`--connect`, anywhere) and one network
//! namespace per node on a bridge (mDNS, as on a LAN; root), from the `chitty-lab` crate.
//! (docs/PERFORMANCE.md)
//!
//! # Layout
//! This file reads the arguments, installs the clean-up on Ctrl-C and SIGTERM, and prints the
//! report. Beside it, one job each:
//! - [`args`], the command line; [`config`], what to run; [`run`], the scenarios in order;
//! - [`cluster`], nodes started until all have joined (startup); [`node`], one node process and
//!   its memory and CPU; [`load`], paced messages and timed deliveries; [`recovery`], a crash
//!   and a partition; [`chaos`], minutes of joins, quits, crashes, freezes and partitions;
//! - [`echo`], the TCP floor; [`stats`], percentiles; [`report`], the table and the JSON;
//!   [`svg`], the latency histogram;
//! - [`cleanup`], what runs, for the signal handler; [`error`], why a run failed.
//!
//! It uses nothing of the chitty-node library: it drives the binary, as a user would.

mod args;
mod chaos;
mod cleanup;
mod cluster;
mod config;
mod echo;
mod error;
mod load;
mod node;
mod recovery;
mod report;
mod run;
mod stats;
mod store;
mod svg;

use std::net::TcpListener;
use std::process::ExitCode;
use std::time::Duration;

use chitty_lab::Lab;
use clap::Parser;

use args::Args;
use config::{BenchConfig, Placement, Scenario};
use run::run;

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
            cleanup::clean_up();
            std::process::exit(130);
        });
    });
}

/// The chaos scenario: in namespaces always; exit code 1 if it did not pass (the report is
/// printed either way, with the seed that replays it).
/// `--scenario store`: the store's write cost and start-up on a large history.
fn run_store(a: &Args) -> ExitCode {
    let Ok(node_bin) = std::env::current_exe().map(|p| p.with_file_name("chitty-node")) else {
        eprintln!("chitty-bench: cannot find chitty-node");
        return ExitCode::FAILURE;
    };
    match store::run(&node_bin, a.events, Duration::from_secs(a.timeout)) {
        Ok(v) => {
            if a.json {
                println!("{v}");
            } else {
                store::print_table(&v);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chitty-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_chaos(a: &Args, rate: f64) -> ExitCode {
    if let Some(why) = Lab::unavailable() {
        eprintln!(
            "chitty-bench: --scenario chaos runs in network namespaces and needs root and `ip`: {why}"
        );
        return ExitCode::from(2);
    }
    let Some(duration) = chaos::parse_duration(&a.duration) else {
        eprintln!(
            "chitty-bench: --duration {:?}: give seconds (90, 90s), minutes (10m) or hours (1h)",
            a.duration
        );
        return ExitCode::from(2);
    };
    if a.nodes < 3 {
        eprintln!("chitty-bench: the chaos scenario needs --nodes >= 3");
        return ExitCode::from(2);
    }
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(1)
    });
    let Ok(node_bin) = std::env::current_exe().map(|p| p.with_file_name("chitty-node")) else {
        eprintln!("chitty-bench: cannot find chitty-node");
        return ExitCode::FAILURE;
    };
    let cfg = chaos::ChaosConfig {
        node_bin,
        nodes: a.nodes,
        duration,
        seed,
        rate,
        timeout: Duration::from_secs(a.timeout.max(1)),
        stderr_dir: a.stderr_dir.clone(),
    };
    clean_up_on_signal();
    let mut progress = |what: &str| eprintln!("chitty-bench: {what}");
    match chaos::run(&cfg, &mut progress) {
        Ok(r) => {
            if a.json {
                println!("{}", r.json());
            } else {
                print!("{}", r.table());
            }
            if r.passed() {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "chitty-bench: chaos FAILED (replay with --seed {seed}): {}",
                    r.failures().join("; ")
                );
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("chitty-bench: chaos (seed {seed}): {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let a = Args::parse();
    if a.echo_server {
        let served = TcpListener::bind("0.0.0.0:0").and_then(|l| {
            println!("{}", l.local_addr()?.port());
            echo::echo_serve(l, a.size)
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
        return match echo::echo_client(addr, a.size, a.messages) {
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
    let rate = a
        .rate
        .unwrap_or(if a.scenario == "chaos" { 4.0 } else { 20.0 });
    if a.nodes < 2 || rate <= 0.0 || a.size == 0 || a.size > 512 || a.missed == 0 {
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
        "chaos" => return run_chaos(&a, rate),
        "store" => return run_store(&a),
        other => {
            eprintln!(
                "chitty-bench: unknown --scenario {other:?} (startup, latency, throughput, recovery, all, chaos, store)"
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
        rate,
        size: a.size,
        missed: a.missed,
        timeout: Duration::from_secs(a.timeout.max(1)),
        stderr_dir: a.stderr_dir.clone(),
        no_store: a.no_store,
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
