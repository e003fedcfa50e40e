//! The network layer: the libp2p swarm and the one task that owns it.
//!
//! - [`bans`]: invalid messages counted per peer, and peers cut off for them.
//! - [`behaviour`]: which libp2p protocols run and how they are configured.
//! - [`dial`]: why a dial failed, in a user's terms.
//! - [`dropped`]: live events dropped over their author's rate, watched until sync brings them.
//! - [`gossip`]: the core's verdict on a gossip message, told to gossipsub (both roles).
//! - [`hello`]: the request-response codec of the hello exchange.
//! - [`liveness`]: one liveness rule for nodes and hubs (pings answered, or the connection closed).
//! - [`node`]: the participant's sub-machines (the outbox, ...), each IO-less and unit-tested.
//! - [`event_loop`]: the actor that owns the swarm and the room, and turns swarm events into room
//!   inputs and room outputs into publishes.

pub mod bans;
pub mod behaviour;
pub mod dial;
pub mod dropped;
pub mod event_loop;
pub mod gossip;
pub mod hello;
pub mod hub;
pub mod liveness;
pub mod node;

pub use event_loop::{EventLoop, NetError, NodeConfig};

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use libp2p::core::transport::{ListenerId, TransportError};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, Swarm, ping};
use liveness::Liveness;

/// Starts listening on every address, for a node and a hub alike; the first that cannot be
/// listened on is an error naming it.
///
/// libp2p's TCP transport sets `SO_REUSEPORT` on its listeners (so that dials can leave from the
/// listening port), and so a second process asking for the same port gets it too: two nodes
/// would share one address, and dialers land on either. So an address with a port of its own
/// (not 0) is first bound without `SO_REUSEPORT`, which fails while anyone listens there.
pub(crate) fn listen_all<B: libp2p::swarm::NetworkBehaviour>(
    swarm: &mut Swarm<B>,
    addrs: &[Multiaddr],
) -> Result<HashSet<ListenerId>, NetError> {
    let mut ids = HashSet::new();
    for addr in addrs {
        let refused = |reason: String| NetError::Listen {
            addr: addr.clone(),
            reason,
        };
        if let Some(socket) = fixed_port(addr) {
            std::net::TcpListener::bind(socket).map_err(|e| {
                refused(match e.kind() {
                    std::io::ErrorKind::AddrInUse => {
                        "the address is already in use (another chitty-node, or another program, \
                         listens there); stop it or choose another port with --listen"
                            .to_owned()
                    }
                    _ => e.to_string(),
                })
            })?;
        }
        let id = swarm.listen_on(addr.clone()).map_err(|e| {
            refused(match e {
                TransportError::MultiaddrNotSupported(_) => {
                    "not a TCP address (expected /ip4/ADDR/tcp/PORT or /ip6/ADDR/tcp/PORT)"
                        .to_owned()
                }
                TransportError::Other(io) => io.to_string(),
            })
        })?;
        ids.insert(id);
    }
    Ok(ids)
}

/// The socket address of `/ip4|ip6/ADDR/tcp/PORT` with a port other than 0.
fn fixed_port(addr: &Multiaddr) -> Option<SocketAddr> {
    let mut parts = addr.iter();
    let ip = match parts.next()? {
        Protocol::Ip4(ip) => IpAddr::V4(ip),
        Protocol::Ip6(ip) => IpAddr::V6(ip),
        _ => return None,
    };
    match parts.next()? {
        Protocol::Tcp(port) if port != 0 => Some(SocketAddr::new(ip, port)),
        _ => None,
    }
}

/// The liveness rule, the same for nodes and hubs: an answered ping proves the connection
/// alive; a failed one closes it at once ([`liveness`]).
pub(crate) fn handle_ping<B: libp2p::swarm::NetworkBehaviour>(
    swarm: &mut Swarm<B>,
    alive: &mut Liveness,
    event: ping::Event,
    now: Instant,
) {
    let answered = event.result.is_ok();
    if let Some(peer) = alive.ping(event.connection, answered, now) {
        // Logged, not shown: the room announces a participant lost, in its words.
        if let Err(error) = event.result {
            tracing::info!(%peer, %error, "ping failed; closing the connection");
        }
        swarm.close_connection(event.connection);
    }
}

/// Closes every connection silent for [`liveness::LIVENESS_TIMEOUT`] ([`liveness`]).
pub(crate) fn close_silent<B: libp2p::swarm::NetworkBehaviour>(
    swarm: &mut Swarm<B>,
    alive: &mut Liveness,
    now: Instant,
) {
    for (connection, peer) in alive.silent(now) {
        // Logged, not shown: the room announces a participant lost, in its words.
        tracing::info!(%peer, "no answer to pings; closing the connection");
        swarm.close_connection(connection);
    }
}

/// Our listen addresses as others dial them: each ending in `/p2p/<us>`.
pub(crate) fn full_addresses(listening: &[Multiaddr], me: PeerId) -> Vec<String> {
    listening
        .iter()
        .map(|a| match a.iter().last() {
            Some(Protocol::P2p(p)) if p == me => a.to_string(),
            _ => a.clone().with(Protocol::P2p(me)).to_string(),
        })
        .collect()
}
