//! Diagnostics: `tracing` to stderr (warnings by default; `-v`, `-vv` or `RUST_LOG` for more),
//! and with `--log-file` the full service log: every join, publish, receive and leave with its
//! Lamport stamp and peer ids, and connection events, one timestamped line each.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::Arc;

use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

/// Installs the global subscriber.
pub fn init(verbose: u8, log_file: Option<&Path>) -> std::io::Result<()> {
    let default = match verbose {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let stderr_filter = EnvFilter::builder()
        .with_default_directive(default.into())
        .from_env_lossy();
    let stderr = fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(stderr_filter);
    let file = match log_file {
        Some(path) => {
            let f: File = OpenOptions::new().create(true).append(true).open(path)?;
            Some(
                fmt::layer()
                    .with_writer(Arc::new(f))
                    .with_ansi(false)
                    .with_filter(EnvFilter::new("warn,chitty_node=info")),
            )
        }
        None => None,
    };
    tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .init();
    Ok(())
}
