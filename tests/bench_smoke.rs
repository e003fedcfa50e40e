//! Small, fast runs of `chitty-bench`: the tool works end to end, in both placements, and
//! cleans up after itself, also when interrupted. They assert what was delivered and left
//! behind, never how fast.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use serde_json::Value;

fn bench(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_chitty-bench"))
        .args(args)
        .arg("--json")
        .output()
        .expect("chitty-bench runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON report")
}

/// The namespace tests compare `ip netns list` before and after: one at a time.
static NETNS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Why namespaces cannot be used here, if they cannot.
fn no_netns() -> Option<String> {
    let why = chitty_lab::Lab::unavailable();
    if let Some(why) = &why {
        eprintln!("skipped: {why}");
    }
    why
}

fn namespaces() -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_bench_runs_on_loopback_and_every_message_arrives_once() {
    let report = bench(&[
        "--nodes",
        "3",
        "--messages",
        "20",
        "--rate",
        "50",
        "--size",
        "256",
    ]);
    assert_eq!(report["nodes"], 3);
    assert_eq!(report["delivered"], 1.0, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    assert_eq!(report["latency"]["count"], 40, "{report}");
    for key in ["rss_rest_kib", "first_peer_ms"] {
        assert!(
            report[key].as_array().is_some_and(|v| v.len() == 3),
            "{key}: {report}"
        );
    }
    assert!(report["cpu_us_per_delivery"].is_number(), "{report}");
    assert!(report["floor"]["count"].as_u64() > Some(0));
}

/// In namespaces with mDNS: a crash announced, a partition healed with every missed message
/// caught up and identical transcripts, and no namespace left behind.
#[test]
fn the_bench_heals_a_partition_in_namespaces_and_leaves_nothing_behind() {
    if no_netns().is_some() {
        return;
    }
    let _one = NETNS.lock().unwrap_or_else(|e| e.into_inner());
    let before = namespaces();
    let report = bench(&[
        "--netns",
        "--nodes",
        "4",
        "--scenario",
        "recovery",
        "--missed",
        "30",
    ]);
    assert_eq!(report["placement"], "namespaces, mDNS");
    assert!(report["lost_announced_ms"].is_number(), "{report}");
    let p = &report["partition"];
    assert!(p["missed_by_cut"].as_u64() >= Some(30), "{report}");
    // 4 joins, 30 messages, the crash, and the lost and re-joins of the partition.
    assert!(p["transcript"].as_u64() > Some(35), "{report}");
    let after = namespaces();
    let left: Vec<&String> = after.iter().filter(|n| !before.contains(n)).collect();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
}

/// Ctrl-C in the middle of a run: every node and namespace of the bench is gone.
#[test]
fn an_interrupted_bench_cleans_up() {
    if no_netns().is_some() {
        return;
    }
    let _one = NETNS.lock().unwrap_or_else(|e| e.into_inner());
    let before = namespaces();
    let child = Command::new(env!("CARGO_BIN_EXE_chitty-bench"))
        .args([
            "--netns",
            "--nodes",
            "3",
            "--messages",
            "100000",
            "--rate",
            "20",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chitty-bench starts");
    // Killed (with what it made, by its handler) if the test fails before it interrupts it.
    let mut child = Interrupt(child);
    let child = &mut child.0;
    let pid = child.id();
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let line = rx
            .recv_timeout(until.saturating_duration_since(Instant::now()))
            .expect("the bench reaches its latency step");
        if line.contains("latency:") {
            break;
        }
    }
    let during = namespaces();
    assert!(during.len() > before.len(), "the bench made namespaces");
    let nodes = children(pid);
    assert_eq!(nodes.len(), 3, "three nodes run: {nodes:?}");
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break s;
        }
        assert!(Instant::now() < until, "the bench did not stop on SIGINT");
        let _ = rx.recv_timeout(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130));
    let after = namespaces();
    let left: Vec<&String> = after.iter().filter(|n| !before.contains(n)).collect();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
    for n in nodes {
        assert!(
            !std::path::Path::new(&format!("/proc/{n}")).exists()
                || std::fs::read_to_string(format!("/proc/{n}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "node {n} still runs"
        );
    }
}

/// A bench that is sent SIGINT when dropped (so it cleans up), then reaped.
struct Interrupt(std::process::Child);

impl Drop for Interrupt {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-INT", &self.0.id().to_string()])
                .status();
            let _ = self.0.wait();
        }
    }
}

/// The pids whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let mut v = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat"))
                && let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..])
                && rest.split_whitespace().nth(1) == Some(&pid.to_string())
                && stat.contains("(chitty-node)")
            {
                v.push(p);
            }
        }
    }
    v
}
