//! The network layer: the libp2p swarm and the one task that owns it.
//!
//! - [`bans`]: invalid messages counted per peer, and peers cut off for them.
//! - [`behaviour`]: which libp2p protocols run and how they are configured.
//! - [`dial`]: why a dial failed, in a user's terms.
//! - [`dropped`]: live events dropped over their author's rate, watched until sync brings them.
//! - [`gossip`]: the core's verdict on a gossip message, told to gossipsub (both roles).
//! - [`hello`]: the request-response codec of the hello exchange.
//! - [`liveness`]: one liveness rule for nodes and hubs (pings answered, or the connection closed).
//! - [`swarm`]: the swarm both roles build, listening, our dialable addresses, `NetError`.
//! - [`paging`]: history exchanges by request id, page after page, and anti-entropy rounds.
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
pub mod paging;
pub mod swarm;

pub use event_loop::{EventLoop, NodeConfig};
pub use swarm::NetError;

use std::time::Instant;

use libp2p::{Swarm, ping};
use liveness::Liveness;

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

/// Sends a page of history to `peer`, who asked for it on `channel` (both roles answer alike).
pub(crate) fn serve_history(
    swarm: &mut Swarm<behaviour::ChatBehaviour>,
    peer: libp2p::PeerId,
    channel: libp2p::request_response::ResponseChannel<hello::SyncResponseOut>,
    page: crate::core::sync::SyncResponse,
) {
    tracing::debug!(%peer, events = page.events.len(), more = page.more, "serving history");
    let out = hello::SyncResponseOut::Send(page);
    if swarm
        .behaviour_mut()
        .sync
        .send_response(channel, out)
        .is_err()
    {
        tracing::debug!(%peer, "history not sent: stream closed");
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
