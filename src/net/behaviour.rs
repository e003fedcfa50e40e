//! The libp2p behaviours a node runs, and their configuration (docs/ARCHITECTURE.md, "Network").

use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    connection_limits, gossipsub, identify, mdns, ping, relay, rendezvous, request_response,
};

use super::hello::{HELLO_PROTOCOL, HelloCodec, SYNC_PROTOCOL, SyncCodec};

/// How often mDNS asks the LAN who is there. libp2p's default (5 minutes, and no more queries
/// once anyone answered) misses peers whose answers were lost or who started a moment later;
/// asking every second finds every peer within about a second, at the cost of one small query
/// a second per LAN (a query that gets answers resets every listener's timer).
pub const MDNS_QUERY_INTERVAL: Duration = Duration::from_secs(1);
/// How long a hello or a sync page may take before it is abandoned.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often each connection is pinged.
pub const PING_INTERVAL: Duration = Duration::from_secs(1);
/// How long one ping may take. (libp2p-ping reports only the second failure in a row, and the
/// retry waits for a new stream's negotiation, up to 10 s: the event loop does not wait for
/// that, see `liveness::LIVENESS_TIMEOUT`.)
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest gossipsub frame we send or accept. Chat events are at most 1152 bytes; the rest is
/// room for control messages (a heartbeat's IHAVE lists). It also bounds what a peer can pad
/// onto a message in the one field anonymous validation leaves unchecked (`key`).
pub const GOSSIP_MAX_TRANSMIT: usize = 16 * 1024;
/// The shortest registration a hub's rendezvous server accepts: registrations of clients that
/// left or crashed are gone within this long (libp2p's default minimum is 2 hours).
pub const RENDEZVOUS_MIN_TTL: u64 = 60;
/// How long a relayed connection through a hub may last (libp2p's default: 2 minutes).
pub const CIRCUIT_MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// The longest registration a hub's rendezvous server accepts (libp2p's default: 72 hours).
pub const RENDEZVOUS_MAX_TTL: u64 = 300;
/// How many relayed connections one peer may be an end of.
pub const CIRCUITS_PER_PEER: usize = 64;
/// Relay requests a peer (or an IP address) may make in a burst...
pub const RATE_BURST: std::num::NonZeroU32 = std::num::NonZeroU32::new(120).expect("120 > 0");
/// ...and how often one more is allowed.
pub const RATE_INTERVAL: Duration = Duration::from_secs(1);
/// How many relayed connections a hub carries at once (each counts against the defaults'
/// rate limits per peer and per IP too).
pub const CIRCUITS_MAX: usize = 256;
/// The identify protocol version string.
pub const IDENTIFY_PROTOCOL: &str = "/chitty-chat/id/1";

/// Why the network could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BehaviourError {
    /// gossipsub refused its configuration.
    #[error("gossipsub configuration: {0}")]
    Gossipsub(String),
    /// The mesh parameters break gossipsub's invariants (which its builder does not check).
    #[error("gossipsub mesh parameters are inconsistent: {0}")]
    Mesh(String),
    /// mDNS could not start.
    #[error("mDNS: {0}")]
    Mdns(#[from] std::io::Error),
}

/// Most connections being set up from outside at once.
pub const MAX_PENDING_INCOMING: u32 = 64;
/// Most established connections from outside (a hub serves this many clients).
pub const MAX_ESTABLISHED_INCOMING: u32 = 1024;
/// Most established connections with one peer (simultaneous dials, a relayed and a direct one).
pub const MAX_PER_PEER: u32 = 4;

/// Everything a chat node speaks.
#[derive(NetworkBehaviour)]
pub struct ChatBehaviour {
    /// Bounds connections, so no peer can grow our per-connection state without limit.
    pub limits: connection_limits::Behaviour,
    /// The chat itself: one topic per room.
    pub gossipsub: gossipsub::Behaviour,
    /// LAN discovery; off with `--no-mdns`.
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    /// The hello exchange on every new connection.
    pub hello: request_response::Behaviour<HelloCodec>,
    /// History sync: on every new connection and periodically.
    pub sync: request_response::Behaviour<SyncCodec>,
    /// Learns peers' listen addresses, for re-dialling.
    pub identify: identify::Behaviour,
    /// Keeps idle connections alive through NATs and finds dead ones (the event loop closes a
    /// connection whose ping fails: libp2p does not).
    pub ping: ping::Behaviour,
    /// Reserves a slot on a hub's relay and dials peers through it.
    pub relay_client: relay::client::Behaviour,
    /// A hub's circuit relay server.
    pub relay: Toggle<relay::Behaviour>,
    /// A hub's rendezvous server: clients register under their room.
    pub rendezvous: Toggle<rendezvous::server::Behaviour>,
    /// A client's rendezvous client: registers with hubs and discovers the room through them.
    pub rendezvous_client: Toggle<rendezvous::client::Behaviour>,
}

/// Checks what `gossipsub::ConfigBuilder::build` does not: the mesh invariants of the gossipsub
/// v1.1 spec.
fn check_mesh(c: &gossipsub::Config) -> Result<(), BehaviourError> {
    let (lo, n, hi, out) = (
        c.mesh_n_low(),
        c.mesh_n(),
        c.mesh_n_high(),
        c.mesh_outbound_min(),
    );
    if !(lo <= n && n <= hi) {
        return Err(BehaviourError::Mesh(format!(
            "need mesh_n_low {lo} <= mesh_n {n} <= mesh_n_high {hi}"
        )));
    }
    if out * 2 > n || out > lo {
        return Err(BehaviourError::Mesh(format!(
            "need mesh_outbound_min {out} <= mesh_n_low {lo} and 2 x {out} <= mesh_n {n}"
        )));
    }
    Ok(())
}

/// The mesh degree D: how many peers each node forwards a message to. Every message is also
/// flood-published by its author to every subscribed peer it is connected to, so on a LAN, where
/// mDNS connects everyone to everyone, the mesh only carries copies its members already have; in
/// a room of 10, libp2p's D = 6 made about 65 TCP sends per message, and D = 3 cut the CPU per
/// delivery by a fifth (docs/PERFORMANCE.md). The mesh matters where peers are not all
/// connected (through a hub): 3 keeps each message on more than one path there, and history
/// sync repairs what a path loses.
pub const MESH_N: usize = 3;
/// The fewest mesh peers before gossipsub grafts more.
pub const MESH_N_LOW: usize = 2;
/// The most mesh peers before gossipsub prunes some.
pub const MESH_N_HIGH: usize = 6;

/// The gossipsub configuration (docs/PROTOCOL.md, "Gossipsub").
pub fn gossipsub_config() -> Result<gossipsub::Config, BehaviourError> {
    let config = gossipsub::ConfigBuilder::default()
        // Every message waits for our verdict before it is forwarded.
        .validate_messages()
        // No gossipsub signature: every chat event carries its author's signature already,
        // checked once per message by `wire::decode_event`. gossipsub would check its own on
        // every copy, before it drops duplicates (a node of a 10-node room gets each message
        // about 6 times): that was a quarter of all CPU time (docs/PERFORMANCE.md). Anonymous
        // messages carry no source, sequence number or signature, and any that does is
        // refused (validation mode `None` would forward whatever a peer put there).
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .mesh_n(MESH_N)
        .mesh_n_low(MESH_N_LOW)
        .mesh_n_high(MESH_N_HIGH)
        .mesh_outbound_min(1)
        .message_id_fn(|m: &gossipsub::Message| message_id(&m.data))
        // Form the mesh soon after start instead of after libp2p's default 5 s.
        .heartbeat_initial_delay(Duration::from_millis(100))
        .max_transmit_size(GOSSIP_MAX_TRANSMIT)
        .build()
        .map_err(|e| BehaviourError::Gossipsub(e.to_string()))?;
    check_mesh(&config)?;
    Ok(config)
}

/// A gossip message's id: the SHA-256 of its bytes. Each event is unique (its author and
/// sequence number are inside), so equal ids mean equal bytes; a cryptographic hash means a
/// peer cannot send a different message under the id of one it expects, to have the real one
/// dropped as a duplicate.
pub fn message_id(data: &[u8]) -> gossipsub::MessageId {
    use sha2::Digest;
    gossipsub::MessageId::new(&sha2::Sha256::digest(data))
}

/// Peer scoring (gossipsub v1.1): only what suits a chat. Invalid messages weigh heavily (a
/// few put a peer below the graylist threshold, after which gossipsub ignores it); the
/// throughput and mesh-delivery terms are off (a quiet room is not a misbehaving one), and so
/// is the IP colocation term (many honest nodes share a host or a NAT).
pub fn score_params() -> (gossipsub::PeerScoreParams, gossipsub::PeerScoreThresholds) {
    let params = gossipsub::PeerScoreParams {
        ip_colocation_factor_weight: 0.0,
        ..Default::default()
    };
    (params, gossipsub::PeerScoreThresholds::default())
}

/// The score parameters of a room's topic.
pub fn topic_score_params() -> gossipsub::TopicScoreParams {
    gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.01,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 100.0,
        first_message_deliveries_weight: 0.1,
        first_message_deliveries_decay: 0.9,
        first_message_deliveries_cap: 100.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        // Three invalid messages: 3^2 x -10 = -90, below the graylist threshold (-80).
        invalid_message_deliveries_weight: -10.0,
        invalid_message_deliveries_decay: 0.9,
        ..Default::default()
    }
}

impl ChatBehaviour {
    /// Builds the behaviours for `key`: a client's, or a hub's (`hub`).
    pub fn new(
        key: &Keypair,
        mdns_on: bool,
        hub: bool,
        relay_client: relay::client::Behaviour,
    ) -> Result<Self, BehaviourError> {
        let peer = key.public().to_peer_id();
        let gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Anonymous,
            gossipsub_config()?,
        )
        .map_err(|e| BehaviourError::Gossipsub(e.to_owned()))?;
        let mdns = if mdns_on {
            let config = mdns::Config {
                query_interval: MDNS_QUERY_INTERVAL,
                ..Default::default()
            };
            Some(mdns::tokio::Behaviour::new(config, peer)?)
        } else {
            None
        };
        let hello = request_response::Behaviour::new(
            [(HELLO_PROTOCOL, request_response::ProtocolSupport::Full)],
            request_response::Config::default().with_request_timeout(REQUEST_TIMEOUT),
        );
        let sync = request_response::Behaviour::new(
            [(SYNC_PROTOCOL, request_response::ProtocolSupport::Full)],
            request_response::Config::default().with_request_timeout(REQUEST_TIMEOUT),
        );
        let identify = identify::Behaviour::new(
            identify::Config::new(IDENTIFY_PROTOCOL.to_owned(), key.public())
                .with_agent_version(format!("chitty-node/{}", env!("CARGO_PKG_VERSION"))),
        );
        Ok(Self {
            limits: connection_limits::Behaviour::new(
                connection_limits::ConnectionLimits::default()
                    .with_max_pending_incoming(Some(MAX_PENDING_INCOMING))
                    .with_max_established_incoming(Some(MAX_ESTABLISHED_INCOMING))
                    .with_max_established_per_peer(Some(MAX_PER_PEER)),
            ),
            gossipsub,
            mdns: mdns.into(),
            hello,
            sync,
            identify,
            ping: ping::Behaviour::new(
                ping::Config::new()
                    .with_interval(PING_INTERVAL)
                    .with_timeout(PING_TIMEOUT),
            ),
            relay_client,
            relay: hub
                .then(|| {
                    relay::Behaviour::new(
                        peer,
                        relay::Config {
                            max_circuit_duration: CIRCUIT_MAX_DURATION,
                            // 0: no byte limit on a circuit (a chat trickles for hours).
                            max_circuit_bytes: 0,
                            max_circuits: CIRCUITS_MAX,
                            // A client may be one end of a relayed link to each room member.
                            max_circuits_per_peer: CIRCUITS_PER_PEER,
                            // libp2p's defaults allow one circuit request per peer every two
                            // minutes; chat clients discovering each other need more.
                            reservation_rate_limiters: Vec::new(),
                            circuit_src_rate_limiters: Vec::new(),
                            ..Default::default()
                        }
                        .reservation_rate_per_peer(RATE_BURST, RATE_INTERVAL)
                        .reservation_rate_per_ip(RATE_BURST, RATE_INTERVAL)
                        .circuit_src_per_peer(RATE_BURST, RATE_INTERVAL)
                        .circuit_src_per_ip(RATE_BURST, RATE_INTERVAL),
                    )
                })
                .into(),
            rendezvous: hub
                .then(|| {
                    rendezvous::server::Behaviour::new(
                        rendezvous::server::Config::default()
                            .with_min_ttl(RENDEZVOUS_MIN_TTL)
                            .with_max_ttl(RENDEZVOUS_MAX_TTL),
                    )
                })
                .into(),
            rendezvous_client: (!hub)
                .then(|| rendezvous::client::Behaviour::new(key.clone()))
                .into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_gossipsub_config_passes_the_mesh_check() {
        gossipsub_config().unwrap();
    }

    #[test]
    fn inconsistent_mesh_parameters_are_caught() {
        let bad = gossipsub::ConfigBuilder::default()
            .mesh_n(4)
            .mesh_n_low(5)
            .mesh_n_high(12)
            .mesh_outbound_min(1)
            .build()
            .unwrap();
        assert!(matches!(check_mesh(&bad), Err(BehaviourError::Mesh(_))));
    }
}
