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
        })
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
             floor (TCP echo) p50  {}   p99 {}\n",
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

/// Runs the latency scenario once.
pub fn run(cfg: &BenchConfig) -> Result<Report, BenchError> {
    let data = std::env::temp_dir().join(format!("chitty-bench-{}", std::process::id()));
    let started = Instant::now();
    let mut procs = Vec::new();
    let first = spawn(&cfg.node_bin, "n0", &[], &data)?;
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
    procs.push(first);
    for i in 1..cfg.nodes {
        procs.push(spawn(
            &cfg.node_bin,
            &format!("n{i}"),
            &["--connect".into(), addr.clone()],
            &data,
        )?);
    }
    // Everyone sees every join.
    let mut joins: Vec<usize> = vec![0; cfg.nodes];
    let mut pending: Vec<Vec<(Instant, Value)>> = vec![Vec::new(); cfg.nodes];
    while joins.iter().any(|j| *j < cfg.nodes) {
        if Instant::now() > deadline {
            return Err(BenchError::Timeout(format!("joins seen: {joins:?}")));
        }
        for (i, p) in procs.iter().enumerate() {
            while let Ok((t, v)) = p.lines.try_recv() {
                if v["type"] == "join" {
                    joins[i] += 1;
                }
                pending[i].push((t, v));
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let all_joined = started.elapsed();
    let rss_rest_kib = procs.iter().map(|p| rss_kib(p.child.id())).collect();
    // The load: node 0 writes lines at the rate; every other node reads them.
    let mut sent: HashMap<String, Instant> = HashMap::new();
    let gap = Duration::from_secs_f64(1.0 / cfg.rate.max(0.001));
    let sender = procs[0]
        .stdin
        .as_mut()
        .ok_or_else(|| BenchError::Other("no stdin".into()))?;
    let load_start = Instant::now();
    for i in 0..cfg.messages {
        let tag = format!("b{i} ");
        let line = payload(&tag, cfg.size);
        sent.insert(tag.trim().to_owned(), Instant::now());
        writeln!(sender, "{line}").map_err(|e| BenchError::Other(e.to_string()))?;
        sender
            .flush()
            .map_err(|e| BenchError::Other(e.to_string()))?;
        // Pacing of the workload.
        let next = load_start + gap * (i as u32 + 1);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let rss_load_kib = procs.iter().map(|p| rss_kib(p.child.id())).collect();
    let expected = cfg.messages * (cfg.nodes - 1);
    let mut latencies = Vec::with_capacity(expected);
    let mut seen: Vec<HashMap<String, usize>> = vec![HashMap::new(); cfg.nodes];
    let until = Instant::now() + cfg.timeout;
    loop {
        for (i, p) in procs.iter().enumerate().skip(1) {
            let mut take = |t: Instant, v: &Value| {
                if v["type"] == "message" && v["user"] == "n0" {
                    let tag = v["text"]
                        .as_str()
                        .unwrap_or_default()
                        .split(' ')
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    if let Some(s) = sent.get(&tag) {
                        let n = seen[i].entry(tag).or_insert(0);
                        *n += 1;
                        if *n == 1 {
                            latencies.push(t.saturating_duration_since(*s));
                        }
                    }
                }
            };
            for (t, v) in pending[i].drain(..) {
                take(t, &v);
            }
            while let Ok((t, v)) = p.lines.try_recv() {
                take(t, &v);
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
        .filter(|n| **n > 1)
        .count();
    let delivered = if expected == 0 {
        1.0
    } else {
        latencies.len() as f64 / expected as f64
    };
    drop(procs);
    let _ = std::fs::remove_dir_all(&data);
    Ok(Report {
        nodes: cfg.nodes,
        all_joined,
        latency: Percentiles::of(latencies),
        delivered,
        duplicates,
        rss_rest_kib,
        rss_load_kib,
        floor: floor(cfg.size.max(1), 1000)?,
    })
}
