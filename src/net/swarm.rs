//! What both roles, a participant and a hub, do with a swarm: build it (TCP + Noise + Yamux,
//! host names through the system resolver, a relay client, [`ChatBehaviour`]), listen on
//! addresses (a taken one refused, with one wording of every listen error), and say which of our
//! addresses others can dial; and the error they stop with ([`NetError`]).

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use libp2p::core::transport::{ListenerId, TransportError};
use libp2p::core::{Transport, upgrade};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, Swarm, noise, tcp, yamux};

use super::behaviour::{BehaviourError, ChatBehaviour};

/// How long a dial, with its Noise and Yamux upgrades, may take.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// Why the node stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The behaviours could not be built.
    #[error(transparent)]
    Behaviour(#[from] BehaviourError),
    /// The transport could not be built.
    #[error("transport: {0}")]
    Transport(String),
    /// A listen address was refused.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
    /// The room's topic could not be subscribed.
    #[error("cannot subscribe to {0}")]
    Subscribe(String),
    /// Every listener failed after it started (the address went away, for instance).
    #[error("no address left to listen on: {0}")]
    ListenersClosed(String),
    /// The ui stopped listening for events.
    /// The history database could not be read.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("the output channel closed")]
    OutputClosed,
}

/// The swarm of a node or a hub: TCP + Noise + Yamux and [`ChatBehaviour`]. (Host names are
/// resolved before dialling, by the system: `node::dialer`.)
pub(crate) fn build_swarm(
    keypair: &Keypair,
    mdns: bool,
    hub: bool,
) -> Result<Swarm<ChatBehaviour>, NetError> {
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair.clone())
        .with_tokio()
        // TCP + Noise + Yamux as `with_tcp` builds it, plus a time limit on dialling and
        // upgrading: a dial into a cut network would otherwise hang for TCP's two minutes.
        .with_other_transport(|key| {
            let noise = noise::Config::new(key)?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
                    .upgrade(upgrade::Version::V1Lazy)
                    .authenticate(noise)
                    .multiplex(yamux::Config::default())
                    .timeout(DIAL_TIMEOUT),
            )
        })
        .map_err(|e| NetError::Transport(e.to_string()))?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| NetError::Transport(e.to_string()))?
        .with_behaviour(|key, relay_client| {
            ChatBehaviour::new(key, mdns, hub, relay_client)
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        })
        .map_err(|e| NetError::Transport(e.to_string()))?
        // A chat may be silent for hours: never close a connection for being idle.
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::MAX))
        .build();
    // gossipsub's peer scores, for both roles (docs/PROTOCOL.md section 8).
    let mut swarm = swarm;
    let (params, thresholds) = super::behaviour::score_params();
    swarm
        .behaviour_mut()
        .gossipsub
        .with_peer_score(params, thresholds)
        .map_err(NetError::Subscribe)?;
    Ok(swarm)
}

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
/// Whether `addr` is a loopback address (useless to anyone on another host).
pub(crate) fn is_loopback(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_loopback(),
        Protocol::Ip6(ip) => ip.is_loopback(),
        _ => false,
    })
}
