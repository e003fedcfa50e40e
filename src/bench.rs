//! `chitty-bench`: starts real `chitty-node` processes on loopback (joined with `--connect`),
//! drives them through `--json`, and measures what a user feels: how long until everyone sees
//! everyone, delivery latency from a line written to the sender's stdin to the event read from
//! each receiver's stdout, delivery ratio and duplicates, memory per node, and a plain TCP echo
//! on the same loopback as the floor. (docs/PERFORMANCE.md)

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The chitty-node binary.
    pub node_bin: PathBuf,
    /// How many nodes.
    pub nodes: usize,
    /// How many messages node 0 sends.
    pub messages: usize,
    /// Messages per second.
    pub rate: f64,
    /// Message size in bytes (UTF-8; above 128, two-byte characters keep it within 128 chars).
    pub size: usize,
    /// How long to wait for stragglers and joins.
    pub timeout: Duration,
}

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

impl Percentiles {
    fn of(mut v: Vec<Duration>) -> Self {
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

    fn json(&self) -> Value {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        json!({"count": self.count, "p50_ms": ms(self.p50), "p90_ms": ms(self.p90), "p99_ms": ms(self.p99), "max_ms": ms(self.max)})
    }
}

/// What was measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Nodes run.
    pub nodes: usize,
    /// From the first start until every node had seen every join.
    pub all_joined: Duration,
    /// Delivery latency over all receivers.
    pub latency: Percentiles,
    /// Deliveries seen / deliveries expected.
    pub delivered: f64,
    /// Messages seen more than once by a receiver.
    pub duplicates: usize,
    /// RSS per node at rest, KiB.
    pub rss_rest_kib: Vec<u64>,
    /// RSS per node right after the load, KiB.
    pub rss_load_kib: Vec<u64>,
    /// One-way latency of a plain TCP echo on loopback with the same payload.
    pub floor: Percentiles,
    /// The throughput steps, the last one the first that did not hold.
    pub throughput: Vec<Step>,
    /// Time from `kill -9` until every other node announced the node lost.
    pub lost_announced: Option<Duration>,
}

impl Report {
    /// As one JSON object.
    pub fn json(&self) -> Value {
        json!({
            "nodes": self.nodes,
            "all_joined_ms": self.all_joined.as_secs_f64() * 1000.0,
            "latency": self.latency.json(),
            "delivered": self.delivered,
            "duplicates": self.duplicates,
            "rss_rest_kib": self.rss_rest_kib,
            "rss_load_kib": self.rss_load_kib,
            "floor": self.floor.json(),
            "throughput": self.throughput.iter().map(|s| json!({"rate": s.rate, "delivered": s.delivered, "latency": s.latency.json()})).collect::<Vec<_>>(),
            "highest_rate_held": self.highest_rate_held(),
            "lost_announced_ms": self.lost_announced.map(|d| d.as_secs_f64() * 1000.0),
        })
    }

    /// The highest throughput step with p99 <= 50 ms and nothing lost.
    pub fn highest_rate_held(&self) -> Option<f64> {
        self.throughput
            .iter()
            .filter(|s| s.delivered >= 1.0 && s.latency.p99 <= Duration::from_millis(50))
            .map(|s| s.rate)
            .next_back()
    }

    /// As a readable table.
    pub fn table(&self) -> String {
        let ms = |d: Duration| format!("{:.3} ms", d.as_secs_f64() * 1000.0);
        let x = |d: Duration| {
            let f = self.floor.p50.as_secs_f64();
            if f > 0.0 {
                format!("{:.1}x floor", d.as_secs_f64() / f)
            } else {
                String::new()
            }
        };
        let mean = |v: &[u64]| {
            if v.is_empty() {
                0
            } else {
                v.iter().sum::<u64>() / v.len() as u64
            }
        };
        let l = &self.latency;
        let mut extra = String::new();
        for st in &self.throughput {
            extra.push_str(&format!(
                "throughput {:>6}/s    p50 {}  p99 {}  delivered {:.2}%\n",
                st.rate,
                ms(st.latency.p50),
                ms(st.latency.p99),
                st.delivered * 100.0
            ));
        }
        if let Some(r) = self.highest_rate_held() {
            extra.push_str(&format!(
                "highest rate held     {r}/s (p99 <= 50 ms, nothing lost)\n"
            ));
        }
        if let Some(d) = self.lost_announced {
            extra.push_str(&format!("kill -9 announced in  {}\n", ms(d)));
        }
        format!(
            "nodes                 {}\n\
             every join seen after {}\n\
             latency p50           {}  ({})\n\
             latency p90           {}\n\
             latency p99           {}  ({})\n\
             latency max           {}\n\
             delivered             {:.2}%  ({} samples)\n\
             duplicates            {}\n\
             RSS at rest (mean)    {} KiB\n\
             RSS under load (mean) {} KiB\n\
             floor (TCP echo) p50  {}   p99 {}\n{}",
            self.nodes,
            ms(self.all_joined),
            ms(l.p50),
            x(l.p50),
            ms(l.p90),
            ms(l.p99),
            x(l.p99),
            ms(l.max),
            self.delivered * 100.0,
            l.count,
            self.duplicates,
            mean(&self.rss_rest_kib),
            mean(&self.rss_load_kib),
            ms(self.floor.p50),
            ms(self.floor.p99),
            extra,
        )
    }
}

/// Why the bench could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A node could not be started.
    #[error("cannot start {0}: {1}")]
    Spawn(PathBuf, std::io::Error),
    /// A node did not get ready, or not everyone joined, in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// Something else went wrong.
    #[error("{0}")]
    Other(String),
}

/// A running node; killed when dropped.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<(Instant, Value)>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(bin: &PathBuf, name: &str, args: &[String], data: &PathBuf) -> Result<Proc, BenchError> {
    let mut child = Command::new(bin)
        .args([
            "--json",
            "--no-mdns",
            "--username",
            name,
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
        ])
        .args(args)
        .env("XDG_DATA_HOME", data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| BenchError::Spawn(bin.clone(), e))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| BenchError::Other("no stdout".into()))?;
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && tx.send((Instant::now(), v)).is_err()
            {
                break;
            }
        }
    });
    Ok(Proc {
        stdin: child.stdin.take(),
        child,
        lines: rx,
    })
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
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

/// One-way latency of a TCP echo of `size` bytes on loopback, `n` times.
fn floor(size: usize, n: usize) -> Result<Percentiles, BenchError> {
    let err = |e: std::io::Error| BenchError::Other(format!("TCP echo: {e}"));
    let listener = TcpListener::bind("127.0.0.1:0").map_err(err)?;
    let addr = listener.local_addr().map_err(err)?;
    let server = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut buf = vec![0u8; size];
        loop {
            if s.read_exact(&mut buf).is_err() {
                return Ok(());
            }
            s.write_all(&buf)?;
        }
    });
    let mut c = TcpStream::connect(addr).map_err(err)?;
    c.set_nodelay(true).map_err(err)?;
    let buf = vec![7u8; size];
    let mut back = vec![0u8; size];
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        c.write_all(&buf).map_err(err)?;
        c.read_exact(&mut back).map_err(err)?;
        v.push(t.elapsed() / 2);
    }
    drop(c);
    let _ = server.join();
    Ok(Percentiles::of(v))
}

/// A set of running nodes joined on loopback; killed and cleaned up when dropped.
struct Cluster {
    procs: Vec<Proc>,
    /// Lines read but not yet looked at, per node.
    pending: Vec<Vec<(Instant, Value)>>,
    data: PathBuf,
    all_joined: Duration,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.procs.clear();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// What one load step measured.
struct Load {
    latencies: Vec<Duration>,
    expected: usize,
    duplicates: usize,
}

impl Cluster {
    /// Starts `cfg.nodes` nodes (node 0 listens, the others `--connect` to it) and waits until
    /// every node has seen every join.
    fn start(cfg: &BenchConfig) -> Result<Self, BenchError> {
        let data = std::env::temp_dir().join(format!("chitty-bench-{}", std::process::id()));
        let started = Instant::now();
        // The bench measures the transport, not the flood policy: no per-author limit.
        let extra = |mut v: Vec<String>| {
            v.extend(["--max-rate".to_owned(), "1000000".to_owned()]);
            v
        };
        let first = spawn(&cfg.node_bin, "n0", &extra(vec![]), &data)?;
        let deadline = Instant::now() + cfg.timeout;
        let addr = loop {
            let (_, v) = first
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .map_err(|_| BenchError::Timeout("n0 never got ready".into()))?;
            if v["type"] == "ready" {
                break v["listen"][0].as_str().unwrap_or_default().to_owned();
            }
        };
        // A full mesh, as mDNS makes on a LAN: each node dials every earlier one.
        let mut procs = vec![first];
        let mut addrs = vec![addr];
        for i in 1..cfg.nodes {
            let mut args = Vec::new();
            for a in &addrs {
                args.extend(["--connect".to_owned(), a.clone()]);
            }
            let p = spawn(&cfg.node_bin, &format!("n{i}"), &extra(args), &data)?;
            let a = loop {
                let (_, v) = p
                    .lines
                    .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                    .map_err(|_| BenchError::Timeout(format!("n{i} never got ready")))?;
                if v["type"] == "ready" {
                    break v["listen"][0].as_str().unwrap_or_default().to_owned();
                }
            };
            addrs.push(a);
            procs.push(p);
        }
        let mut cluster = Cluster {
            pending: vec![Vec::new(); procs.len()],
            procs,
            data,
            all_joined: Duration::ZERO,
        };
        let mut joins: Vec<usize> = vec![0; cfg.nodes];
        while joins.iter().any(|j| *j < cfg.nodes) {
            if Instant::now() > deadline {
                return Err(BenchError::Timeout(format!("joins seen: {joins:?}")));
            }
            cluster.poll();
            for (i, p) in cluster.pending.iter().enumerate() {
                joins[i] = p.iter().filter(|(_, v)| v["type"] == "join").count();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        cluster.all_joined = started.elapsed();
        for p in &mut cluster.pending {
            p.clear();
        }
        Ok(cluster)
    }

    /// Moves whatever the nodes printed into `pending`.
    fn poll(&mut self) {
        for (i, p) in self.procs.iter().enumerate() {
            while let Ok(x) = p.lines.try_recv() {
                self.pending[i].push(x);
            }
        }
    }

    fn rss(&self) -> Vec<u64> {
        self.procs.iter().map(|p| rss_kib(p.child.id())).collect()
    }

    /// Sends `messages` lines of `size` bytes at `rate` per second in all, round-robin from the
    /// first `senders` nodes, and times each delivery at every other node.
    fn load(
        &mut self,
        senders: usize,
        messages: usize,
        rate: f64,
        size: usize,
        step: &str,
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
            let stdin = self.procs[s]
                .stdin
                .as_mut()
                .ok_or_else(|| BenchError::Other("no stdin".into()))?;
            sent.insert(tag, (s, Instant::now()));
            writeln!(stdin, "{line}").map_err(|e| BenchError::Other(e.to_string()))?;
            stdin
                .flush()
                .map_err(|e| BenchError::Other(e.to_string()))?;
            // The pace of the workload.
            let next = start + gap.mul_f64((i + 1) as f64);
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        let expected = messages * (n - 1);
        let mut latencies = Vec::with_capacity(expected);
        let mut seen: Vec<HashMap<String, usize>> = vec![HashMap::new(); n];
        let until = Instant::now() + timeout;
        loop {
            self.poll();
            for (i, lines) in self.pending.iter_mut().enumerate() {
                for (t, v) in lines.drain(..) {
                    if v["type"] != "message" {
                        continue;
                    }
                    let tag = v["text"]
                        .as_str()
                        .unwrap_or_default()
                        .split(' ')
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let Some((s, at)) = sent.get(&tag) else {
                        continue;
                    };
                    if *s == i {
                        continue;
                    }
                    let count = seen[i].entry(tag).or_insert(0);
                    *count += 1;
                    if *count == 1 {
                        latencies.push(t.saturating_duration_since(*at));
                    }
                }
            }
            if latencies.len() >= expected || Instant::now() > until {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
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
        })
    }

    /// Kills the last node (`kill -9`) and times until every other node has announced it lost.
    fn kill_last(&mut self, timeout: Duration) -> Result<Duration, BenchError> {
        let last = self.procs.len() - 1;
        let name = format!("n{last}");
        let killed = Instant::now();
        let _ = self.procs[last].child.kill();
        let mut done = vec![false; last];
        while done.iter().any(|d| !d) {
            if killed.elapsed() > timeout {
                return Err(BenchError::Timeout(format!(
                    "{name} was not announced lost everywhere"
                )));
            }
            self.poll();
            for (i, lines) in self.pending.iter_mut().enumerate().take(last) {
                if lines.iter().any(|(_, v)| {
                    v["type"] == "leave" && v["user"] == name.as_str() && v["reason"] == "lost"
                }) {
                    done[i] = true;
                }
                lines.clear();
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(killed.elapsed())
    }
}

/// One step of the throughput scenario.
#[derive(Debug, Clone)]
pub struct Step {
    /// Messages per second, all senders together.
    pub rate: f64,
    /// Latency at that rate.
    pub latency: Percentiles,
    /// Deliveries seen / expected.
    pub delivered: f64,
}

/// Which measurements to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Latency at a fixed rate from one sender.
    Latency,
    /// Raise the rate (every node sending) until p99 passes 50 ms or something is lost.
    Throughput,
    /// Time to announce a killed node.
    Recovery,
    /// All of them, in one cluster.
    All,
}

/// Runs the chosen scenarios on one cluster.
pub fn run(
    cfg: &BenchConfig,
    scenario: Scenario,
    progress: &mut dyn FnMut(&str),
) -> Result<Report, BenchError> {
    progress(&format!("starting {} nodes", cfg.nodes));
    let mut c = Cluster::start(cfg)?;
    let mut report = Report {
        nodes: cfg.nodes,
        all_joined: c.all_joined,
        rss_rest_kib: c.rss(),
        floor: floor(cfg.size.max(1), 1000)?,
        ..Default::default()
    };
    if matches!(scenario, Scenario::Latency | Scenario::All) {
        progress(&format!(
            "latency: {} messages at {}/s",
            cfg.messages, cfg.rate
        ));
        let load = c.load(1, cfg.messages, cfg.rate, cfg.size, "l", cfg.timeout)?;
        report.rss_load_kib = c.rss();
        report.delivered = ratio(&load);
        report.duplicates = load.duplicates;
        report.latency = Percentiles::of(load.latencies);
    }
    if matches!(scenario, Scenario::Throughput | Scenario::All) {
        let mut rate = 50.0;
        let mut k = 0;
        while rate <= 12_800.0 {
            progress(&format!("throughput: {rate}/s from every node"));
            let messages = (rate * 2.0) as usize;
            let load = c.load(
                cfg.nodes,
                messages,
                rate,
                cfg.size,
                &format!("t{k}-"),
                cfg.timeout,
            )?;
            let step = Step {
                rate,
                delivered: ratio(&load),
                latency: Percentiles::of(load.latencies),
            };
            let held = step.delivered >= 1.0 && step.latency.p99 <= Duration::from_millis(50);
            report.throughput.push(step);
            if !held {
                break;
            }
            report.rss_load_kib = c.rss();
            rate *= 2.0;
            k += 1;
        }
    }
    if matches!(scenario, Scenario::Recovery | Scenario::All) {
        // On a fresh cluster: after a saturating throughput step, nodes are still printing
        // their backlog, which would be timed instead of the announcement.
        drop(c);
        progress(&format!("recovery: {} fresh nodes, kill -9 one", cfg.nodes));
        let mut fresh = Cluster::start(cfg)?;
        report.lost_announced = Some(fresh.kill_last(cfg.timeout)?);
    }
    Ok(report)
}

fn ratio(load: &Load) -> f64 {
    if load.expected == 0 {
        1.0
    } else {
        load.latencies.len() as f64 / load.expected as f64
    }
}
