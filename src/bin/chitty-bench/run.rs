//! The scenarios in order: one cluster for startup, rest, the floor, latency and throughput, a
//! fresh one for recovery.

use std::time::Duration;

use crate::cluster::Cluster;
use crate::config::{BenchConfig, Placement, Scenario};
use crate::echo::{floor_loopback, floor_netns};
use crate::error::BenchError;
use crate::report::Report;

/// The total rates the throughput scenario tries, two seconds each, until one does not hold.
const RATES: [f64; 12] = [
    50.0, 100.0, 200.0, 400.0, 600.0, 800.0, 1000.0, 1200.0, 1600.0, 2000.0, 3200.0, 6400.0,
];

/// How long the nodes rest before memory and CPU at rest are read.
const REST: Duration = Duration::from_secs(2);

/// Runs the chosen scenarios; each cluster is cleaned up before the next starts.
pub fn run(
    cfg: &BenchConfig,
    scenario: Scenario,
    progress: &mut dyn FnMut(&str),
) -> Result<Report, BenchError> {
    let data = std::env::temp_dir().join(format!("chitty-bench-{}", std::process::id()));
    let placement = match cfg.placement {
        Placement::Loopback => "loopback",
        Placement::Netns => "namespaces, mDNS",
    };
    progress(&format!("starting {} nodes ({placement})", cfg.nodes));
    let mut c = Cluster::start(cfg, &data)?;
    let mut report = Report {
        placement: placement.into(),
        nodes: cfg.nodes,
        size: cfg.size,
        startup: c.startup.clone(),
        ..Default::default()
    };
    progress("at rest: memory, CPU, TCP floor");
    report.cpu_rest = c.cpu_at_rest(REST);
    report.rss_rest_kib = c.rss();
    report.floor = match &c.lab {
        Some(lab) => floor_netns(cfg, lab)?,
        None => floor_loopback(cfg.size.max(1))?,
    };
    if matches!(scenario, Scenario::Latency | Scenario::All) {
        progress(&format!(
            "latency: {} messages at {}/s",
            cfg.messages, cfg.rate
        ));
        let step = c.step(
            1,
            cfg.messages,
            cfg.rate,
            cfg.size,
            "l",
            report.cpu_rest,
            cfg.timeout,
        )?;
        report.rss_load_kib = c.rss();
        report.latency = Some(step);
    }
    if matches!(scenario, Scenario::Throughput | Scenario::All) {
        for (k, rate) in RATES.iter().enumerate() {
            progress(&format!("throughput: {rate}/s in all, from every node"));
            let step = c.step(
                cfg.nodes,
                (rate * 2.0) as usize,
                *rate,
                cfg.size,
                &format!("t{k}-"),
                report.cpu_rest,
                cfg.timeout,
            )?;
            let held = step.held();
            report.throughput.push(step);
            if !held {
                break;
            }
            report.rss_load_kib = c.rss();
        }
        report.rss_beyond_kib = c.rss();
        report.alive_after_throughput = Some(
            c.procs
                .iter_mut()
                .map(|p| matches!(p.child.try_wait(), Ok(None)))
                .filter(|running| *running)
                .count(),
        );
    }
    if matches!(scenario, Scenario::Recovery | Scenario::All) {
        // A fresh cluster: after a saturating step nodes are still printing their backlog,
        // which would be timed instead of the recovery.
        drop(c);
        progress(&format!("recovery: {} fresh nodes", cfg.nodes));
        let mut fresh = Cluster::start(cfg, &data)?;
        progress("recovery: kill -9 of one node");
        report.lost_announced = Some(fresh.kill_last(cfg.timeout)?);
        fresh.procs.pop();
        fresh.pending.pop();
        if cfg.placement == Placement::Netns && fresh.procs.len() >= 2 {
            let timeout = cfg.timeout * 3;
            report.partition = Some(fresh.partition(cfg.missed, cfg.size, timeout, progress)?);
        }
    }
    Ok(report)
}
