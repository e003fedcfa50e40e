//! The network layer: the libp2p swarm and the one task that owns it.
//!
//! - [`behaviour`]: which libp2p protocols run and how they are configured.
//! - [`hello`]: the request-response codec of the hello exchange.
//! - [`event_loop`]: the actor that owns the swarm and the room, and turns swarm events into room
//!   inputs and room outputs into publishes.

pub mod behaviour;
pub mod event_loop;
pub mod hello;
pub mod hub;

pub use event_loop::{EventLoop, NetError, NodeConfig};
