//! A set of running nodes, on loopback or on the lab's hosts, started until every node has seen
//! every join (the startup measurement), with their lines gathered per node; memory and CPU.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chitty_lab::Lab;
use serde_json::Value;

use crate::cleanup::live;
use crate::config::{BenchConfig, Placement};
use crate::error::BenchError;
use crate::node::{Proc, cpu_ticks, name, rss_kib, ticks_per_second};
use crate::report::Startup;

/// A set of running nodes that have all seen each other join; killed and cleaned up when
/// dropped.
pub struct Cluster {
    /// The nodes, `n0` first.
    pub procs: Vec<Proc>,
    /// Lines read but not yet looked at, per node.
    pub pending: Vec<Vec<(Instant, Value)>>,
    /// The nodes' data directory (`XDG_DATA_HOME`), removed when dropped.
    data: PathBuf,
    /// How long the nodes took to find each other.
    pub startup: Startup,
    /// The namespaces, with `--netns`; dropped after the processes.
    pub lab: Option<Lab>,
    /// The lab's namespaces, as told to the signal handler's list.
    namespaces: Vec<String>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.procs.clear();
        self.lab = None;
        let _ = std::fs::remove_dir_all(&self.data);
        let (ns, data) = (std::mem::take(&mut self.namespaces), self.data.clone());
        live(|l| {
            l.namespaces.retain(|n| !ns.contains(n));
            l.dirs.retain(|d| *d != data);
        });
    }
}

/// Every node's first `ready`: its listen address.
fn wait_ready(
    p: &Proc,
    i: usize,
    deadline: Instant,
) -> Result<(String, Vec<(Instant, Value)>), BenchError> {
    let mut early = Vec::new();
    loop {
        let (t, v) = p
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .map_err(|_| BenchError::Timeout(format!("{} never got ready", name(i))))?;
        if v["type"] == "ready" {
            let addr = v["listen"][0].as_str().unwrap_or_default().to_owned();
            return Ok((addr, early));
        }
        early.push((t, v));
    }
}

impl Cluster {
    /// Starts `cfg.nodes` nodes and waits until every node has seen every join. On loopback,
    /// each node `--connect`s to every earlier one; in namespaces, all start at once and find
    /// each other by mDNS.
    pub fn start(cfg: &BenchConfig, data: &Path) -> Result<Self, BenchError> {
        let _ = std::fs::remove_dir_all(data);
        live(|l| l.dirs.push(data.to_owned()));
        let mut cluster = Cluster {
            procs: Vec::new(),
            pending: vec![Vec::new(); cfg.nodes],
            data: data.to_owned(),
            startup: Startup::default(),
            lab: None,
            namespaces: Vec::new(),
        };
        let bin = cfg.node_bin.to_string_lossy().into_owned();
        // The bench measures the transport, not the flood policy: no per-author limit.
        let common = |i: usize| {
            let mut args = vec![
                "--json".to_owned(),
                "--username".to_owned(),
                name(i),
                "--max-rate".to_owned(),
                "1000000".to_owned(),
            ];
            if cfg.no_store {
                args.push("--no-store".to_owned());
            }
            args
        };
        let err_file = |i: usize| {
            cfg.stderr_dir
                .as_ref()
                .map(|d| d.join(format!("{}.err", name(i))))
        };
        // From the first process start (after the lab is built), to the line that completed
        // the last node's set of joins.
        let mut started = Instant::now();
        let mut deadline = started + cfg.timeout;
        match cfg.placement {
            Placement::Loopback => {
                let mut addrs: Vec<String> = Vec::new();
                for i in 0..cfg.nodes {
                    let mut cmd = Command::new(&bin);
                    cmd.args(common(i))
                        .args(["--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"]);
                    for a in &addrs {
                        cmd.args(["--connect", a]);
                    }
                    let p = Proc::spawn(cmd, data, err_file(i))?;
                    let (addr, early) = wait_ready(&p, i, deadline)?;
                    cluster.pending[i].extend(early);
                    addrs.push(addr);
                    cluster.procs.push(p);
                }
            }
            Placement::Netns => {
                check_neighbour_table(cfg.nodes)?;
                let lab = Lab::bridge(cfg.nodes).map_err(BenchError::Lab)?;
                cluster.namespaces = lab.namespaces();
                let ns = cluster.namespaces.clone();
                live(|l| l.namespaces.extend(ns));
                started = Instant::now();
                deadline = started + cfg.timeout;
                for i in 0..cfg.nodes {
                    let mut cmd = Lab::command(lab.host(i + 1), &bin);
                    cmd.args(common(i));
                    cluster.procs.push(Proc::spawn(cmd, data, err_file(i))?);
                }
                cluster.lab = Some(lab);
            }
        }
        let n = cfg.nodes;
        let mut first_peer: Vec<Option<Duration>> = vec![None; n];
        let mut joins: Vec<HashSet<String>> = vec![HashSet::new(); n];
        let mut last_join = started;
        while joins.iter().any(|j| j.len() < n) {
            if Instant::now() > deadline {
                let seen: Vec<usize> = joins.iter().map(HashSet::len).collect();
                return Err(BenchError::Timeout(format!(
                    "joins seen per node: {seen:?}"
                )));
            }
            cluster.wait_lines(Duration::from_millis(20));
            for (i, lines) in cluster.pending.iter_mut().enumerate() {
                for (t, v) in lines.drain(..) {
                    if v["type"] == "peer" && v["connected"] == true && first_peer[i].is_none() {
                        first_peer[i] = Some(t.saturating_duration_since(cluster.procs[i].started));
                    }
                    if v["type"] == "join"
                        && let Some(u) = v["user"].as_str()
                        && joins[i].insert(u.to_owned())
                    {
                        last_join = last_join.max(t);
                    }
                }
            }
        }
        cluster.startup = Startup {
            all_joined: last_join.saturating_duration_since(started),
            first_peer: first_peer.into_iter().flatten().collect(),
        };
        Ok(cluster)
    }

    /// Waits up to `max` for any line, then moves whatever the nodes printed into `pending`.
    pub fn wait_lines(&mut self, max: Duration) {
        // One blocking wait on node 0 (most lines arrive everywhere at once), then a sweep.
        if let Some(p) = self.procs.first() {
            match p.lines.recv_timeout(max) {
                Ok(x) => self.pending[0].push(x),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(max),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
        for (i, p) in self.procs.iter().enumerate() {
            while let Ok(x) = p.lines.try_recv() {
                self.pending[i].push(x);
            }
        }
    }

    /// RSS per node, KiB.
    pub fn rss(&self) -> Vec<u64> {
        self.procs.iter().map(|p| rss_kib(p.pid())).collect()
    }

    /// User and system CPU of all nodes together, in clock ticks.
    pub fn cpu(&self) -> u64 {
        self.procs.iter().map(|p| cpu_ticks(p.pid())).sum()
    }

    /// CPU seconds per second of all nodes, over `window` of rest.
    pub fn cpu_at_rest(&mut self, window: Duration) -> f64 {
        let before = self.cpu();
        let t = Instant::now();
        while t.elapsed() < window {
            self.wait_lines(Duration::from_millis(100));
            for p in &mut self.pending {
                p.clear();
            }
        }
        (self.cpu() - before) as f64 / ticks_per_second() / t.elapsed().as_secs_f64()
    }
}

/// The kernel keeps one ARP table for all namespaces, and drops what it cannot resolve once
/// it holds `gc_thresh3` entries: every send of a host that came too late then fails (ENOBUFS),
/// mDNS included, and it never finds anyone. A full mesh of `n` hosts needs about n x (n - 1)
/// entries; on a real LAN each host has a table of its own.
pub fn check_neighbour_table(n: usize) -> Result<(), BenchError> {
    const KNOB: &str = "/proc/sys/net/ipv4/neigh/default/gc_thresh3";
    let need = n * (n - 1) + 4 * n;
    match std::fs::read_to_string(KNOB)
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
    {
        Some(have) if have < need => Err(BenchError::Lab(format!(
            "{n} hosts need about {need} ARP entries, and the kernel keeps at most {have} for all namespaces together; raise it for the run with `sysctl -w net.ipv4.neigh.default.gc_thresh3={}` (and gc_thresh2 with it)",
            need.next_power_of_two()
        ))),
        _ => Ok(()),
    }
}
