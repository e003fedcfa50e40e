//! The `chitty-node` binary: parse arguments, set up logging, run the node, map the outcome to an
//! exit code (0 done, 1 runtime error, 2 usage error).

use std::process::ExitCode;

use chitty_node::cli::{Args, Config};
use clap::Parser;

/// Resolves on Ctrl-C or SIGTERM: both mean "leave".
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn main() -> ExitCode {
    let config = match Config::try_from(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("chitty-node: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = chitty_node::logging::init(config.verbose, config.log_file.as_deref()) {
        eprintln!("chitty-node: cannot open the log file: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("chitty-node: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(chitty_node::run(config, shutdown_signal()));
    // Do not wait for the stdin thread, which may be blocked reading.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chitty-node: {e:#}");
            if e.is_usage() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
