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

use std::collections::HashMap;
use std::time::Instant;

use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId, Swarm};

/// Closes every connection with no sign of life (established, or a ping answered) for
/// [`event_loop::LIVENESS_TIMEOUT`]: libp2p closes none by itself. Shared by nodes and hubs.
pub(crate) fn close_silent<B: libp2p::swarm::NetworkBehaviour>(
    swarm: &mut Swarm<B>,
    alive: &mut HashMap<ConnectionId, (PeerId, Instant)>,
    now: Instant,
) {
    let timeout = event_loop::LIVENESS_TIMEOUT;
    alive.retain(|connection, (peer, since)| {
        if now.duration_since(*since) < timeout {
            return true;
        }
        tracing::warn!(%peer, "no answer to pings for {timeout:?}; closing the connection");
        swarm.close_connection(*connection);
        false
    });
}

/// Our listen addresses as others dial them: each ending in `/p2p/<us>`.
pub(crate) fn full_addresses(listening: &[Multiaddr], me: PeerId) -> Vec<String> {
    listening
        .iter()
        .map(|a| a.clone().with(Protocol::P2p(me)).to_string())
        .collect()
}
