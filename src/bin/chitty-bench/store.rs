//! `--scenario store`: what history on disk costs. It fills a participant's database with
//! `--events` signed events (three authors, a join each and messages, in transactions of 100 as
//! the store's thread writes them), timing the writes; then it starts one node alone
//! (`--no-mdns`) on that database, on an empty data directory, and with `--no-store`, three
//! times each, timing process start to `ready` and reading its resident memory two seconds
//! after.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chitty_node::core::event::{Body, Event, Text, Username};
use chitty_node::core::sign::Signer;
use chitty_node::core::time::WallTime;
use chitty_node::store::{Store, Stored, participant_path};
use libp2p::identity::Keypair;
use serde_json::{Value, json};

use crate::error::BenchError;
use crate::node::{Proc, rss_kib};

/// Events written per transaction while filling, as the store's thread batches them.
const FILL_BATCH: u64 = 100;
/// Starts per placement.
const RUNS: usize = 3;

/// One start of a node: how long to `ready`, and its memory once settled.
struct Start {
    ready: Duration,
    rss_kib: u64,
}

/// Runs the scenario with `events` stored, `timeout` for any one start.
pub fn run(node_bin: &Path, events: u64, timeout: Duration) -> Result<Value, BenchError> {
    let base = std::env::temp_dir().join(format!("chitty-bench-store-{}", std::process::id()));
    let result = measure(node_bin, &base, events, timeout);
    let _ = std::fs::remove_dir_all(&base);
    result
}

fn measure(
    node_bin: &Path,
    base: &Path,
    events: u64,
    timeout: Duration,
) -> Result<Value, BenchError> {
    let full = base.join("full");
    let empty = base.join("empty");
    for d in [&full, &empty] {
        std::fs::create_dir_all(d)
            .map_err(|e| BenchError::Other(format!("{}: {e}", d.display())))?;
    }
    let db = participant_path(&full, "alice");
    let fill_secs = fill(&db, events)?.as_secs_f64();
    let db_bytes = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(db.with_extension("db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    let history = (events + 1).max(10_000).to_string();
    let mut placements = Vec::new();
    for (name, dir, extra) in [
        ("stored", &full, vec!["--history", history.as_str()]),
        ("empty store", &empty, vec![]),
        ("--no-store", &empty, vec!["--no-store"]),
    ] {
        let mut starts = Vec::new();
        for _ in 0..RUNS {
            starts.push(start(node_bin, dir, &extra, timeout)?);
        }
        placements.push((name, starts));
    }
    let per_event_us = fill_secs * 1e6 / events.max(1) as f64;
    let rows: Vec<Value> = placements
        .iter()
        .map(|(name, starts)| {
            json!({
                "placement": name,
                "ready_ms": starts.iter().map(|s| s.ready.as_secs_f64() * 1e3).collect::<Vec<_>>(),
                "rss_kib": starts.iter().map(|s| s.rss_kib).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json!({
        "scenario": "store",
        "events": events,
        "write_us_per_event": per_event_us,
        "database_bytes": db_bytes,
        "starts": rows,
    }))
}

/// Prints the scenario's result as a table.
pub fn print_table(v: &Value) {
    println!(
        "store: {} events written in batches of {FILL_BATCH}: {:.1} us per event, database {:.1} MiB",
        v["events"],
        v["write_us_per_event"].as_f64().unwrap_or(0.0),
        v["database_bytes"].as_u64().unwrap_or(0) as f64 / (1024.0 * 1024.0)
    );
    println!(
        "{:<14} {:>28} {:>28}",
        "start", "to ready (ms)", "RSS 2 s after (MiB)"
    );
    for row in v["starts"].as_array().into_iter().flatten() {
        let list = |key: &str, scale: f64| {
            row[key]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| format!("{:.1}", x.as_f64().unwrap_or(0.0) / scale))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        println!(
            "{:<14} {:>28} {:>28}",
            row["placement"].as_str().unwrap_or_default(),
            list("ready_ms", 1.0),
            list("rss_kib", 1024.0)
        );
    }
}

/// Writes `n` events of room `chitty-chat` to the database at `path`: three authors, each a
/// join then messages, a tenth of a second apart and ending now. Returns the time spent
/// writing (not signing).
fn fill(path: &Path, n: u64) -> Result<Duration, BenchError> {
    let err = |e: chitty_node::store::StoreError| BenchError::Other(e.to_string());
    let keys: Vec<Keypair> = (0..3).map(|_| Keypair::generate_ed25519()).collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut store = Store::open(path).map_err(err)?;
    let mut batch = Vec::new();
    let mut writing = Duration::ZERO;
    for i in 0..n {
        let k = (i % 3) as usize;
        let text = format!("stored line {i} of the benchmark's history, some words to index");
        let body = match (i < 3, Text::new(text)) {
            (false, Ok(t)) => Body::Message(t),
            _ => Body::Join,
        };
        let (Ok(user), Some(time)) = (
            Username::new(format!("old{k}")),
            WallTime::from_unix_millis(now.saturating_sub((n - i) * 100)),
        ) else {
            return Err(BenchError::Other("cannot make an event".into()));
        };
        let e = Event {
            author: keys[k].public().to_peer_id(),
            seq: i / 3 + 1,
            lamport: i + 1,
            time,
            user,
            body,
        };
        batch.push(Stored::of(&keys[k].sign_event(e, "chitty-chat")));
        if batch.len() as u64 == FILL_BATCH || i + 1 == n {
            let t = Instant::now();
            store.append(&batch).map_err(err)?;
            writing += t.elapsed();
            batch.clear();
        }
    }
    Ok(writing)
}

/// Starts alice alone under `dir`, waits for `ready`, reads her RSS two seconds later.
fn start(
    node_bin: &Path,
    dir: &PathBuf,
    extra: &[&str],
    timeout: Duration,
) -> Result<Start, BenchError> {
    let mut cmd = Command::new(node_bin);
    cmd.args([
        "--json",
        "--username",
        "alice",
        "--no-mdns",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
    ])
    .arg("--data-dir")
    .arg(dir)
    .args(extra);
    let node = Proc::spawn(cmd, dir, None)?;
    let until = node.started + timeout;
    let ready = loop {
        let left = until.saturating_duration_since(Instant::now());
        match node.lines.recv_timeout(left) {
            Ok((at, v)) if v["type"] == "ready" => break at.duration_since(node.started),
            Ok(_) => {}
            Err(_) => {
                return Err(BenchError::Timeout(
                    "a node on the stored history to get ready".into(),
                ));
            }
        }
    };
    std::thread::sleep(Duration::from_secs(2));
    Ok(Start {
        ready,
        rss_kib: rss_kib(node.pid()),
    })
}
