//! `chitty-bench`: starts real `chitty-node` processes, drives them through `--json`, and
//! measures what a user feels: how long until the first peer and until everyone sees everyone,
//! delivery latency from a line written to the sender's stdin to the event read from each
//! receiver's stdout, delivery ratio and duplicates, the highest rate that holds, recovery from
//! a crash and from a partition, memory and CPU per node, and a plain TCP echo in the same
//! placement as the floor. Two placements: loopback (`--connect`, anywhere) and one network
//! namespace per node on a bridge (mDNS, as on a LAN; root). (docs/PERFORMANCE.md)

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use chitty_lab::{self as lab, Lab};

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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Percentiles {
    fn of(v: &[Duration]) -> Self {
        let mut v = v.to_vec();
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

    /// As JSON (milliseconds); [`Percentiles::from_json`] reads it back.
    pub fn json(&self) -> Value {
        json!({"count": self.count, "p50_ms": ms(self.p50), "p90_ms": ms(self.p90), "p99_ms": ms(self.p99), "max_ms": ms(self.max)})
    }

    fn from_json(v: &Value) -> Option<Self> {
        let d = |k: &str| v[k].as_f64().map(|m| Duration::from_secs_f64(m / 1000.0));
        Some(Self {
            count: usize::try_from(v["count"].as_u64()?).ok()?,
            p50: d("p50_ms")?,
            p90: d("p90_ms")?,
            p99: d("p99_ms")?,
            max: d("max_ms")?,
        })
    }
}

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
    fn json(&self) -> Value {
        json!({
            "rate": self.rate,
            "delivered": self.delivered,
            "duplicates": self.duplicates,
            "latency": self.latency.json(),
            "cpu_us_per_delivery": self.cpu_per_delivery.map(|d| d.as_secs_f64() * 1e6),
        })
    }

    fn held(&self) -> bool {
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

fn mean(v: &[u64]) -> u64 {
    if v.is_empty() {
        0
    } else {
        v.iter().sum::<u64>() / v.len() as u64
    }
}

fn max_of(v: &[Duration]) -> Duration {
    v.iter().copied().max().unwrap_or_default()
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

    /// The latency scenario's distribution as an SVG histogram (log-spaced bins).
    pub fn svg(&self) -> Option<String> {
        let l = self.latency.as_ref()?;
        let v = &l.samples;
        let lo = v.iter().min()?.as_secs_f64().max(1e-6);
        let hi = v.iter().max()?.as_secs_f64().max(lo * 1.01);
        const BINS: usize = 40;
        let (w, h, pad) = (800.0, 300.0, 50.0);
        let bin = |d: &Duration| {
            let r = (d.as_secs_f64().max(lo).ln() - lo.ln()) / (hi.ln() - lo.ln());
            ((r * BINS as f64) as usize).min(BINS - 1)
        };
        let mut counts = [0usize; BINS];
        for d in v {
            counts[bin(d)] += 1;
        }
        let top = *counts.iter().max()? as f64;
        let bw = (w - 2.0 * pad) / BINS as f64;
        let mut s = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
        );
        s.push_str(&format!(
            r#"<text x="{pad}" y="20">chitty-bench: delivery latency, {} nodes ({}), {} deliveries; p50 {:.2} ms, p99 {:.2} ms</text>"#,
            self.nodes,
            self.placement,
            v.len(),
            ms(l.latency.p50),
            ms(l.latency.p99)
        ));
        for (i, c) in counts.iter().enumerate() {
            let bh = (h - 2.0 * pad) * (*c as f64) / top;
            s.push_str(&format!(
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#4a7"/>"##,
                pad + i as f64 * bw,
                h - pad - bh,
                bw - 1.0,
                bh
            ));
        }
        for q in [l.latency.p50, l.latency.p99] {
            let x = pad + bin(&q) as f64 * bw + bw / 2.0;
            s.push_str(&format!(
                r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#c33"/><text x="{x:.1}" y="{}" fill="#c33">{:.2} ms</text>"##,
                pad,
                h - pad,
                pad - 4.0,
                ms(q)
            ));
        }
        s.push_str(&format!(
            r#"<text x="{pad}" y="{}">{:.3} ms</text><text x="{}" y="{}" text-anchor="end">{:.3} ms (log scale)</text></svg>"#,
            h - pad + 16.0,
            lo * 1000.0,
            w - pad,
            h - pad + 16.0,
            hi * 1000.0
        ));
        Some(s)
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
    /// The namespaces could not be made.
    #[error("network namespaces: {0}")]
    Lab(String),
    /// Something else went wrong.
    #[error("{0}")]
    Other(String),
}

/// What runs now, for [`clean_up`] on a signal: a drop does not run when the process is
/// killed by one.
struct Live {
    pids: Vec<u32>,
    namespaces: Vec<String>,
    dirs: Vec<PathBuf>,
}

static LIVE: Mutex<Live> = Mutex::new(Live {
    pids: Vec::new(),
    namespaces: Vec::new(),
    dirs: Vec::new(),
});

fn live(f: impl FnOnce(&mut Live)) {
    if let Ok(mut l) = LIVE.lock() {
        f(&mut l);
    }
}

/// Kills every node the bench started and removes its namespaces and data: for a signal
/// handler (Ctrl-C) that exits right after.
pub fn clean_up() {
    let Ok(mut l) = LIVE.lock() else { return };
    for pid in l.pids.drain(..) {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    lab::remove(&std::mem::take(&mut l.namespaces));
    // Also those of a lab still being built.
    lab::remove_all_of_this_process();
    for d in l.dirs.drain(..) {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// A running node; killed when dropped.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<(Instant, Value)>,
    started: Instant,
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
        let pid = self.child.id();
        live(|l| l.pids.retain(|p| *p != pid));
    }
}

impl Proc {
    fn spawn(mut cmd: Command, data: &Path, stderr: Option<PathBuf>) -> Result<Proc, BenchError> {
        let program = PathBuf::from(cmd.get_program());
        let stderr = match stderr {
            Some(path) => Stdio::from(
                std::fs::File::create(&path)
                    .map_err(|e| BenchError::Other(format!("{}: {e}", path.display())))?,
            ),
            None => Stdio::null(),
        };
        let started = Instant::now();
        let mut child = cmd
            .env("XDG_DATA_HOME", data)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| BenchError::Spawn(program, e))?;
        let pid = child.id();
        live(|l| l.pids.push(pid));
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| BenchError::Other("no stdout".into()))?;
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            loop {
                line.clear();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                // Timed as read, parsed after.
                let at = Instant::now();
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send((at, v)).is_err()
                {
                    break;
                }
            }
        });
        Ok(Proc {
            stdin: child.stdin.take(),
            child,
            lines: rx,
            started,
        })
    }

    fn send(&mut self, line: &str) -> Result<(), BenchError> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| BenchError::Other("no stdin".into()))?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .map_err(|e| BenchError::Other(format!("writing to a node: {e}")))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
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

/// User + system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // The command name, in parentheses, may hold spaces: count fields after it.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

/// Clock ticks per second (`getconf CLK_TCK`, asked once; 100 on Linux unless told otherwise).
fn ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
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

/// The tag a [`payload`] starts with, read back from a `message` line.
fn tag_of(v: &Value) -> Option<&str> {
    v["text"].as_str()?.split(' ').next()
}

/// Serves one TCP echo connection on `listener`.
pub fn echo_serve(listener: TcpListener, size: usize) -> std::io::Result<()> {
    let (mut s, _) = listener.accept()?;
    s.set_nodelay(true)?;
    let mut buf = vec![0u8; size];
    loop {
        if s.read_exact(&mut buf).is_err() {
            return Ok(());
        }
        s.write_all(&buf)?;
    }
}

/// One-way latency (half the round trip) of `n` echoes of `size` bytes from `addr`, paced
/// [`ECHO_GAP`] apart: as chat traffic is, so that waking the threads up is in it too (back to
/// back, both threads stay awake and loopback looks ten times cheaper than any chat message
/// could be).
pub fn echo_client(addr: &str, size: usize, n: usize) -> Result<Percentiles, BenchError> {
    let err = |e: std::io::Error| BenchError::Other(format!("TCP echo: {e}"));
    let mut c = TcpStream::connect(addr).map_err(err)?;
    c.set_nodelay(true).map_err(err)?;
    c.set_read_timeout(Some(ECHO_TIMEOUT)).map_err(err)?;
    c.set_write_timeout(Some(ECHO_TIMEOUT)).map_err(err)?;
    let buf = vec![7u8; size];
    let mut back = vec![0u8; size];
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        c.write_all(&buf).map_err(err)?;
        c.read_exact(&mut back).map_err(err)?;
        v.push(t.elapsed() / 2);
        std::thread::sleep(ECHO_GAP);
    }
    Ok(Percentiles::of(&v))
}

/// How long a load goes on listening after its last first delivery, for late duplicates.
const LATE_DUPLICATES: Duration = Duration::from_millis(200);

/// How many echoes make the floor.
const FLOOR_ECHOES: usize = 500;
/// The pause between two echoes of the floor.
pub const ECHO_GAP: Duration = Duration::from_millis(2);
/// How long one echo may take before the floor gives up.
const ECHO_TIMEOUT: Duration = Duration::from_secs(5);

/// The floor on loopback: a TCP echo within this process.
fn floor_loopback(size: usize) -> Result<Percentiles, BenchError> {
    let err = |e: std::io::Error| BenchError::Other(format!("TCP echo: {e}"));
    let listener = TcpListener::bind("127.0.0.1:0").map_err(err)?;
    let addr = listener.local_addr().map_err(err)?;
    let server = std::thread::spawn(move || echo_serve(listener, size));
    let p = echo_client(&addr.to_string(), size, FLOOR_ECHOES);
    let _ = server.join();
    p
}

/// The floor between hosts 1 and 2 of `lab`: `chitty-bench --echo-server` in one,
/// `--echo-client` in the other.
fn floor_netns(cfg: &BenchConfig, lab: &Lab) -> Result<Percentiles, BenchError> {
    let bin = cfg.bench_bin.to_string_lossy().into_owned();
    let spawn_err = |e| BenchError::Spawn(cfg.bench_bin.clone(), e);
    let mut server = Lab::command(lab.host(2), &bin)
        .args(["--echo-server", "--size", &cfg.size.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    let pid = server.id();
    live(|l| l.pids.push(pid));
    let port = server.stdout.take().and_then(|o| {
        let mut line = String::new();
        BufReader::new(o).read_line(&mut line).ok()?;
        line.trim().parse::<u16>().ok()
    });
    let result = match port {
        None => Err(BenchError::Other("the echo server gave no port".into())),
        Some(port) => Lab::command(lab.host(1), &bin)
            .args([
                "--echo-client",
                &format!("10.77.0.2:{port}"),
                "--size",
                &cfg.size.to_string(),
                "--messages",
                &FLOOR_ECHOES.to_string(),
            ])
            .output()
            .map_err(spawn_err)
            .and_then(|o| {
                serde_json::from_slice::<Value>(&o.stdout)
                    .ok()
                    .and_then(|v| Percentiles::from_json(&v))
                    .ok_or_else(|| {
                        BenchError::Other(format!(
                            "the echo client failed: {}",
                            String::from_utf8_lossy(&o.stderr).trim()
                        ))
                    })
            }),
    };
    let _ = server.kill();
    let _ = server.wait();
    live(|l| l.pids.retain(|p| *p != pid));
    result
}

/// A set of running nodes that have all seen each other join; killed and cleaned up when
/// dropped.
struct Cluster {
    procs: Vec<Proc>,
    /// Lines read but not yet looked at, per node.
    pending: Vec<Vec<(Instant, Value)>>,
    data: PathBuf,
    startup: Startup,
    /// The namespaces, with `--netns`; dropped after the processes.
    lab: Option<Lab>,
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

/// What one load measured.
struct Load {
    latencies: Vec<Duration>,
    expected: usize,
    duplicates: usize,
    elapsed: Duration,
}

fn name(i: usize) -> String {
    format!("n{i}")
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
    fn start(cfg: &BenchConfig, data: &Path) -> Result<Self, BenchError> {
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
            vec![
                "--json".to_owned(),
                "--username".to_owned(),
                name(i),
                "--max-rate".to_owned(),
                "1000000".to_owned(),
            ]
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
    fn wait_lines(&mut self, max: Duration) {
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

    fn rss(&self) -> Vec<u64> {
        self.procs.iter().map(|p| rss_kib(p.pid())).collect()
    }

    fn cpu(&self) -> u64 {
        self.procs.iter().map(|p| cpu_ticks(p.pid())).sum()
    }

    /// CPU seconds per second of all nodes, over `window` of rest.
    fn cpu_at_rest(&mut self, window: Duration) -> f64 {
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

    /// Sends `messages` lines of `size` bytes at `rate` per second in all, round-robin from the
    /// first `senders` nodes, and times each delivery at every other node but `absent`.
    #[allow(clippy::too_many_arguments)]
    fn load(
        &mut self,
        senders: usize,
        messages: usize,
        rate: f64,
        size: usize,
        step: &str,
        absent: Option<usize>,
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
            sent.insert(tag, (s, Instant::now()));
            self.procs[s].send(&line)?;
            // The pace of the workload.
            let next = start + gap.mul_f64((i + 1) as f64);
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        let receivers = n - 1 - usize::from(absent.is_some());
        let expected = messages * receivers;
        let mut latencies = Vec::with_capacity(expected);
        let mut seen: Vec<HashMap<String, usize>> = vec![HashMap::new(); n];
        let mut until = Instant::now() + timeout;
        let mut drained = false;
        while Instant::now() < until {
            self.wait_lines(Duration::from_millis(20));
            for (i, lines) in self.pending.iter_mut().enumerate() {
                for (t, v) in lines.drain(..) {
                    if v["type"] != "message" || Some(i) == absent {
                        continue;
                    }
                    let Some(tag) = tag_of(&v) else {
                        continue;
                    };
                    let Some((s, at)) = sent.get(tag) else {
                        continue;
                    };
                    if *s == i {
                        continue;
                    }
                    let count = seen[i].entry(tag.to_owned()).or_insert(0);
                    *count += 1;
                    if *count == 1 {
                        latencies.push(t.saturating_duration_since(*at));
                    }
                }
            }
            if latencies.len() >= expected && !drained {
                // A moment more for duplicates that come after the last first delivery.
                drained = true;
                until = Instant::now() + LATE_DUPLICATES;
            }
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
            elapsed: start.elapsed(),
        })
    }

    /// A load measured as a [`Step`], with CPU per delivery (the CPU at rest, `cpu_rest` per
    /// second, taken out).
    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        senders: usize,
        messages: usize,
        rate: f64,
        size: usize,
        tag: &str,
        cpu_rest: f64,
        timeout: Duration,
    ) -> Result<Step, BenchError> {
        let before = self.cpu();
        let load = self.load(senders, messages, rate, size, tag, None, timeout)?;
        let used = (self.cpu() - before) as f64 / ticks_per_second()
            - cpu_rest * load.elapsed.as_secs_f64();
        let delivered = load.latencies.len();
        Ok(Step {
            rate,
            latency: Percentiles::of(&load.latencies),
            delivered: if load.expected == 0 {
                1.0
            } else {
                delivered as f64 / load.expected as f64
            },
            duplicates: load.duplicates,
            cpu_per_delivery: (delivered > 0)
                .then(|| Duration::from_secs_f64(used.max(0.0) / delivered as f64)),
            samples: load.latencies,
        })
    }

    /// Kills the last node (`kill -9`) and times until every other node has announced it lost.
    fn kill_last(&mut self, timeout: Duration) -> Result<Duration, BenchError> {
        let last = self.procs.len() - 1;
        let killed = Instant::now();
        let _ = self.procs[last].child.kill();
        // When each node printed the announcement.
        let mut done: Vec<Option<Instant>> = vec![None; last];
        while done.iter().any(Option::is_none) {
            if killed.elapsed() > timeout {
                return Err(BenchError::Timeout(format!(
                    "{} was not announced lost everywhere",
                    name(last)
                )));
            }
            self.wait_lines(Duration::from_millis(5));
            for (i, lines) in self.pending.iter_mut().enumerate().take(last) {
                if let Some((t, _)) = lines.iter().find(|(_, v)| is_lost(v, &name(last))) {
                    done[i].get_or_insert(*t);
                }
                lines.clear();
            }
        }
        Ok(done
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(killed)
            .saturating_duration_since(killed))
    }

    /// Every node's `/history`, as comparable keys.
    fn histories(&mut self, timeout: Duration) -> Result<Vec<Vec<String>>, BenchError> {
        for p in &mut self.pending {
            p.clear();
        }
        for p in &mut self.procs {
            p.send("/history")?;
        }
        let n = self.procs.len();
        let mut out: Vec<Vec<String>> = vec![Vec::new(); n];
        let mut done = vec![false; n];
        let until = Instant::now() + timeout;
        while done.iter().any(|d| !d) {
            if Instant::now() > until {
                return Err(BenchError::Timeout("a /history never ended".into()));
            }
            self.wait_lines(Duration::from_millis(20));
            for (i, lines) in self.pending.iter_mut().enumerate() {
                for (_, v) in lines.drain(..) {
                    if done[i] {
                        continue;
                    }
                    if v["type"] == "history_end" {
                        done[i] = true;
                    } else if v["type"] == "history" {
                        out[i].push(format!(
                            "{} {} {} {} {}",
                            v["event"], v["lamport"], v["peer"], v["text"], v["reason"]
                        ));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Cuts the last node off, lets node 0 send `missed` messages, repairs the link, and times
    /// until everyone agrees again.
    fn partition(
        &mut self,
        missed: usize,
        size: usize,
        timeout: Duration,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Partition, BenchError> {
        let cut = self.procs.len() - 1;
        let lab = self
            .lab
            .as_ref()
            .ok_or_else(|| BenchError::Other("a partition needs --netns".into()))?;
        progress(&format!("recovery: cutting {} off the bridge", name(cut)));
        let t_cut = Instant::now();
        lab.set_link(cut + 1, false).map_err(BenchError::Lab)?;
        // Both sides notice: node 0 announces the cut-off node lost, and it announces node 0.
        let (mut rest_saw, mut cut_saw) = (None, None);
        while rest_saw.is_none() || cut_saw.is_none() {
            if t_cut.elapsed() > timeout {
                return Err(BenchError::Timeout(
                    "the partition was never noticed".into(),
                ));
            }
            self.wait_lines(Duration::from_millis(20));
            let when = |lines: &[(Instant, Value)], who: &str| {
                lines.iter().find(|(_, v)| is_lost(v, who)).map(|(t, _)| *t)
            };
            rest_saw = rest_saw.or(when(&self.pending[0], &name(cut)));
            cut_saw = cut_saw.or(when(&self.pending[cut], &name(0)));
            for p in &mut self.pending {
                p.clear();
            }
        }
        let noticed = rest_saw
            .max(cut_saw)
            .unwrap_or(t_cut)
            .saturating_duration_since(t_cut);
        progress(&format!(
            "recovery: {} messages while {} is cut off",
            missed,
            name(cut)
        ));
        let load = self.load(1, missed, 500.0, size, "p", Some(cut), timeout)?;
        if load.latencies.len() < load.expected {
            return Err(BenchError::Timeout(format!(
                "{} of {} deliveries during the partition",
                load.latencies.len(),
                load.expected
            )));
        }
        progress("recovery: repairing the link");
        let lab = self
            .lab
            .as_ref()
            .ok_or_else(|| BenchError::Other("a partition needs --netns".into()))?;
        let t_heal = Instant::now();
        lab.set_link(cut + 1, true).map_err(BenchError::Lab)?;
        let mut got: HashSet<String> = HashSet::new();
        let mut learned = vec![0usize; self.procs.len()];
        let mut caught_up = None;
        // Every other node sees the cut-off node join again (they had announced it lost).
        let mut rejoined = vec![false; self.procs.len()];
        rejoined[cut] = true;
        loop {
            if t_heal.elapsed() > timeout {
                return Err(BenchError::Timeout(format!(
                    "after the repair: {} of {missed} missed messages shown, rejoin seen by {:?}",
                    got.len(),
                    rejoined
                )));
            }
            self.wait_lines(Duration::from_millis(10));
            for (i, lines) in self.pending.iter_mut().enumerate() {
                for (t, v) in lines.drain(..) {
                    let ty = v["type"].as_str().unwrap_or_default();
                    if !["join", "message", "leave"].contains(&ty) {
                        continue;
                    }
                    learned[i] += 1;
                    if ty == "join" && i != cut && v["user"] == name(cut).as_str() {
                        rejoined[i] = true;
                    }
                    if i == cut
                        && ty == "message"
                        && let Some(tag) = tag_of(&v)
                        && tag.starts_with('p')
                    {
                        got.insert(tag.to_owned());
                        if got.len() == missed {
                            caught_up = Some(t.saturating_duration_since(t_heal));
                        }
                    }
                }
            }
            if caught_up.is_some() && rejoined.iter().all(|r| *r) {
                break;
            }
        }
        // Then compare transcripts until they agree.
        loop {
            let h = self.histories(timeout)?;
            if h.iter().all(|x| *x == h[0]) {
                return Ok(Partition {
                    noticed,
                    caught_up: caught_up.unwrap_or_default(),
                    identical: t_heal.elapsed(),
                    missed_by_cut: learned[cut],
                    missed_by_rest: learned[..cut].iter().copied().max().unwrap_or(0),
                    transcript: h[0].len(),
                });
            }
            if t_heal.elapsed() > timeout {
                return Err(BenchError::Timeout(
                    "the transcripts never became identical".into(),
                ));
            }
        }
    }
}

/// The kernel keeps one ARP table for all namespaces, and drops what it cannot resolve once
/// it holds `gc_thresh3` entries: every send of a host that came too late then fails (ENOBUFS),
/// mDNS included, and it never finds anyone. A full mesh of `n` hosts needs about n x (n - 1)
/// entries; on a real LAN each host has a table of its own.
fn check_neighbour_table(n: usize) -> Result<(), BenchError> {
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

fn is_lost(v: &Value, user: &str) -> bool {
    v["type"] == "leave" && v["user"] == user && v["reason"] == "lost"
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
