//! chitty-node: ChittyChat without a hub. Every participant runs a libp2p node (TCP + Noise +
//! Yamux) that finds its neighbours by mDNS and chats over gossipsub; Lamport clocks give every
//! join, message and leave the same stamp on every screen.
//!
//! # Layout
//! Three layers, arrows pointing down only (docs/ARCHITECTURE.md):
//! - [`ui`]: reads the keyboard or a pipe ([`ui::input`]), renders events as human lines or JSON
//!   ([`ui::render`]) or as the full-screen chat ([`ui::screen`]). Knows nothing of libp2p.
//! - [`core`]: the IO-less chat state machine: Lamport clock ([`core::clock`]), events and
//!   validated names ([`core::event`]), the room ([`core::room`]), the transcript
//!   ([`core::transcript`]), history sync ([`core::sync`]) and the wall-clock time events
//!   carry ([`core::time`]).
//! - [`net`]: the swarm and the one event loop that owns it ([`net::event_loop`]), its
//!   behaviours ([`net::behaviour`]), the hello and sync codecs ([`net::hello`]), and the hub's
//!   own event loop ([`net::hub`], `--relay`), whose per-room state is a [`core::ledger`], as a
//!   participant's room's is.
//!
//! Beside them: [`app`], the wiring of one process's tasks and channels ([`run`]); [`wire`], the
//! versioned CBOR encoding (the only `serde_cbor` user); [`cli`], the arguments; [`identity`],
//! persistent keys; [`store`], the history on disk (SQLite, behind the actors); and
//! [`logging`], the tracing set-up.
//!
//! Not here: the benchmark is the `chitty-bench` binary's own (`src/bin/chitty-bench/`), and the
//! network-namespace lab of the tests and the bench is the `chitty-lab` crate
//! (`crates/netns-lab`); neither uses a chat type.

pub mod app;
pub mod cli;
pub mod core;
pub mod identity;
pub mod logging;
pub mod net;
pub mod private;
pub mod store;
pub mod ui;
pub mod wire;

pub use app::{COMMANDS_CAP, EVENTS_CAP, RunError, run, shutdown_signal, ui_mode, uses_terminal};
pub use cli::{Config, Role};
pub use net::NetError;
