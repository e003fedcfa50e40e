//! Test helpers: run the real `chitty-node` binary with `--json`, feed its stdin, and wait for
//! what it prints, with timeouts (never fixed sleeps).
#![allow(dead_code)]

pub mod liar;
pub mod netns;
pub mod pty;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A directory of the test's own (a node's data directory, say), removed when dropped.
pub struct Dir(pub std::path::PathBuf);

impl Dir {
    /// A fresh, empty directory named after `name` and this test process.
    pub fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("chitty-dir-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("a temp dir");
        Dir(d)
    }

    /// Its path, as an argument.
    pub fn s(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temp path")
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How long any single expected event may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_chitty-node")
}

/// A running node.
pub struct Node {
    pub name: String,
    data: std::path::PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
    rx: Receiver<Value>,
    seen: Vec<Value>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Node {
    /// `chitty-node --json --username NAME ARGS...` on this host.
    pub fn spawn(name: &str, args: &[&str]) -> Node {
        let mut cmd = Command::new(bin());
        cmd.args(["--json", "--username", name]).args(args);
        Node::start(name, cmd)
    }

    /// Starts `cmd` (which must run chitty-node with `--json`), with a data directory of its
    /// own (so that nodes of the same name do not share a key file).
    pub fn start(name: &str, mut cmd: Command) -> Node {
        let data = std::env::temp_dir().join(format!(
            "chitty-test-{}-{}",
            std::process::id(),
            NODES.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        if !cmd.get_envs().any(|(k, _)| k == "XDG_DATA_HOME") {
            cmd.env("XDG_DATA_HOME", &data);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("RUST_LOG", "warn,chitty_node=info");
        let mut child = cmd.spawn().expect("the chitty-node binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = channel();
        let who = name.to_owned();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => {
                        if tx.send(v).is_err() {
                            break;
                        }
                    }
                    Err(e) => panic!("{who}: stdout line is not JSON ({e}): {line:?}"),
                }
            }
        });
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut l) = sink.lock() {
                    l.push(line);
                }
            }
        });
        Node {
            name: name.to_owned(),
            data,
            stdin: child.stdin.take(),
            child,
            rx,
            seen: Vec::new(),
            stderr: log,
        }
    }

    /// Types a line.
    pub fn send(&mut self, line: &str) {
        self.send_bytes(format!("{line}\n").as_bytes());
    }

    /// Writes raw bytes to stdin.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(bytes).expect("write to the node's stdin");
        stdin.flush().expect("flush the node's stdin");
    }

    /// Closes stdin: end of input.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything printed so far (after the last wait).
    pub fn seen(&self) -> &[Value] {
        &self.seen
    }

    /// Takes one line, waiting until `until` at most. False when none came: timeout, or the
    /// process ended and its output is drained.
    fn pull(&mut self, until: Instant) -> bool {
        let left = until.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(left) {
            Ok(v) => {
                self.seen.push(v);
                true
            }
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => false,
        }
    }

    /// Waits until `check` finds what it wants in everything printed so far.
    pub fn wait_until<T>(&mut self, what: &str, mut check: impl FnMut(&[Value]) -> Option<T>) -> T {
        let until = Instant::now() + TIMEOUT;
        loop {
            if let Some(t) = check(&self.seen) {
                return t;
            }
            if !self.pull(until) {
                if let Some(t) = check(&self.seen) {
                    return t;
                }
                let why = if Instant::now() >= until {
                    "timed out"
                } else {
                    "process ended"
                };
                self.fail(&format!("{why} waiting for {what}"));
            }
        }
    }

    /// Waits for the first line matching `pred`.
    pub fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_until(what, |seen| seen.iter().find(|v| pred(v)).cloned())
    }

    /// Waits until `n` lines match `pred`; returns them.
    pub fn wait_count(
        &mut self,
        what: &str,
        n: usize,
        pred: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        self.wait_until(what, |seen| {
            let m: Vec<Value> = seen.iter().filter(|v| pred(v)).cloned().collect();
            (m.len() >= n).then_some(m)
        })
    }

    /// Waits for `ready`; returns (peer id, listen addresses).
    pub fn ready(&mut self) -> (String, Vec<String>) {
        let r = self.wait_for("ready", |v| v["type"] == "ready");
        let listen = r["listen"]
            .as_array()
            .expect("listen is an array")
            .iter()
            .map(|a| a.as_str().expect("addresses are strings").to_owned())
            .collect();
        (
            r["peer"].as_str().expect("peer is a string").to_owned(),
            listen,
        )
    }

    /// The listen address on 127.0.0.1.
    pub fn loopback_addr(&mut self) -> String {
        let (_, listen) = self.ready();
        listen
            .into_iter()
            .find(|a| a.starts_with("/ip4/127.0.0.1/"))
            .unwrap_or_else(|| self.fail("no loopback listen address"))
    }

    /// Waits for the join of `user`; returns its stamp.
    pub fn wait_join(&mut self, user: &str) -> u64 {
        self.wait_event("join", user, None)["lamport"]
            .as_u64()
            .expect("lamport")
    }

    /// Waits for the leave of `user`.
    pub fn wait_leave(&mut self, user: &str) -> Value {
        self.wait_event("leave", user, None)
    }

    /// Waits for the message `text` by `user`; returns its stamp.
    pub fn wait_message(&mut self, user: &str, text: &str) -> u64 {
        self.wait_event("message", user, Some(text))["lamport"]
            .as_u64()
            .expect("lamport")
    }

    fn wait_event(&mut self, kind: &str, user: &str, text: Option<&str>) -> Value {
        let what = format!("{kind} of {user} {}", text.unwrap_or_default());
        self.wait_for(&what, |v| {
            v["type"] == kind && v["user"] == user && text.is_none_or(|t| v["text"] == t)
        })
    }

    /// Asks for `/history` and returns its events, in the order printed.
    pub fn history(&mut self) -> Vec<Value> {
        let from = self.seen.len();
        self.send("/history");
        self.wait_until("history", |seen| {
            let end = seen[from.min(seen.len())..]
                .iter()
                .position(|v| v["type"] == "history_end")?;
            Some(
                seen[from..from + end]
                    .iter()
                    .filter(|v| v["type"] == "history")
                    .cloned()
                    .collect(),
            )
        })
    }

    /// Takes every line printed during the next `window` (a window to look at, not a wait for
    /// something: for properties like "no such line appears").
    pub fn watch(&mut self, window: Duration) -> &[Value] {
        let until = Instant::now() + window;
        while Instant::now() < until {
            self.pull(until);
        }
        &self.seen
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let until = Instant::now() + TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < until => {
                    // Drain stdout meanwhile; returns as soon as a line or the timeout comes.
                    self.pull(Instant::now() + Duration::from_millis(50));
                }
                _ => self.fail("timed out waiting for exit"),
            }
        }
    }

    /// Sends a signal with kill(1).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -{sig} {}", self.pid());
    }

    /// Everything the node wrote to stderr so far.
    /// What it printed: its stdout (the JSON read so far) and its stderr, each named, for
    /// tests that search them.
    pub fn outputs(&self) -> Vec<(String, Vec<u8>)> {
        vec![
            (
                format!("{}'s stdout", self.name),
                serde_json::to_vec(&self.seen).unwrap_or_default(),
            ),
            (
                format!("{}'s stderr", self.name),
                self.stderr_text().into_bytes(),
            ),
        ]
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// Everything the node wrote to stderr so far, one string per line.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits until a line on stderr contains `text`; returns every line so far.
    pub fn wait_stderr(&self, text: &str) -> Vec<String> {
        let until = Instant::now() + TIMEOUT;
        loop {
            let lines = self.stderr_lines();
            if lines.iter().any(|l| l.contains(text)) {
                return lines;
            }
            if Instant::now() >= until {
                self.fail(&format!("timed out waiting for {text:?} on stderr"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Panics with everything the node printed.
    pub fn fail(&self, why: &str) -> ! {
        let err = self.stderr.lock().map(|l| l.join("\n")).unwrap_or_default();
        let out: Vec<String> = self.seen.iter().map(Value::to_string).collect();
        panic!(
            "{}: {why}\n--- stdout ---\n{}\n--- stderr (tail) ---\n{}",
            self.name,
            out.join("\n"),
            err.lines()
                .rev()
                .take(60)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

static NODES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Removes the `/p2p/ID` suffix of an address.
pub fn without_peer_id(addr: &str) -> String {
    match addr.find("/p2p/") {
        Some(i) => addr[..i].to_owned(),
        None => addr.to_owned(),
    }
}

/// Every file under `dir`, read whole (for tests that search what a node left on disk).
pub fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.push((p, bytes));
        }
    }
    out
}

/// Whether `needle` occurs in `hay`.
pub fn holds(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}
