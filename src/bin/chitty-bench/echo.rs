//! The floor: a plain TCP echo of the same payload in the same placement, within the bench on
//! loopback, or `chitty-bench --echo-server` and `--echo-client` on two hosts of the lab.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use chitty_lab::Lab;
use serde_json::Value;

use crate::cleanup::live;
use crate::config::BenchConfig;
use crate::error::BenchError;
use crate::stats::Percentiles;

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

/// How many echoes make the floor.
const FLOOR_ECHOES: usize = 500;
/// The pause between two echoes of the floor.
pub const ECHO_GAP: Duration = Duration::from_millis(2);
/// How long one echo may take before the floor gives up.
const ECHO_TIMEOUT: Duration = Duration::from_secs(5);

/// The floor on loopback: a TCP echo within this process.
pub fn floor_loopback(size: usize) -> Result<Percentiles, BenchError> {
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
pub fn floor_netns(cfg: &BenchConfig, lab: &Lab) -> Result<Percentiles, BenchError> {
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
