//! One running `chitty-node`: started with piped stdin and stdout, its `--json` lines read and
//! timed on a thread of their own, lines written to its stdin, killed when dropped; and what
//! /proc says of a process's memory and CPU.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Instant;

use serde_json::Value;

use crate::cleanup::live;
use crate::error::BenchError;

/// The username of node `i`: `n0`, `n1`, ...
pub fn name(i: usize) -> String {
    format!("n{i}")
}

/// A running node; killed when dropped.
pub struct Proc {
    /// The process.
    pub child: Child,
    /// Its stdin, closed before it is killed.
    stdin: Option<ChildStdin>,
    /// Its stdout's JSON lines, each with the time it was read.
    pub lines: Receiver<(Instant, Value)>,
    /// When it was started.
    pub started: Instant,
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
    /// Starts `cmd` with `XDG_DATA_HOME=data` and its stderr to `stderr` (or nowhere), and
    /// starts reading its JSON lines.
    pub fn spawn(
        mut cmd: Command,
        data: &Path,
        stderr: Option<PathBuf>,
    ) -> Result<Proc, BenchError> {
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

    /// Writes `line` to the node's stdin.
    pub fn send(&mut self, line: &str) -> Result<(), BenchError> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| BenchError::Other("no stdin".into()))?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .map_err(|e| BenchError::Other(format!("writing to a node: {e}")))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Resident memory of a process, KiB (0 if it cannot be read).
pub fn rss_kib(pid: u32) -> u64 {
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
pub fn cpu_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // The command name, in parentheses, may hold spaces: count fields after it.
            let rest = s.get(s.rfind(')')? + 2..)?;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

/// Clock ticks per second (`getconf CLK_TCK`, asked once; 100 on Linux unless told otherwise).
pub fn ticks_per_second() -> f64 {
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
