//! The `chitty-node` binary: parse arguments, set up logging, run the node, map the outcome to an
//! exit code (0 done, 1 runtime error, 2 usage error).

use std::process::ExitCode;

use chitty_node::cli::{Args, Config};
use chitty_node::ui::terminal;
use clap::Parser;

fn main() -> ExitCode {
    let config = match Config::try_from(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("chitty-node: {e}");
            return ExitCode::from(2);
        }
    };
    let editor = chitty_node::uses_terminal(&config);
    let notices =
        match chitty_node::logging::init(config.verbose, config.log_file.as_deref(), editor) {
            Ok(n) => n,
            Err(e) => {
                eprintln!("chitty-node: {e}");
                return ExitCode::from(2);
            }
        };
    // Before the line editor changes the terminal's modes: they are put back on every way out.
    terminal::save();
    terminal::restore_on_panic();
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
    let shutdown = chitty_node::shutdown_signal();
    let result = runtime.block_on(chitty_node::run(config, shutdown, notices.clone()));
    // Do not wait for the stdin thread, which may be blocked reading (the terminal still raw).
    runtime.shutdown_background();
    terminal::restore();
    // Notices that came after the ui stopped (or before it could start).
    for text in notices.drain() {
        eprintln!("chitty-node: {text}");
    }
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
