//! The network layer: the libp2p swarm and the one task that owns it.
//!
//! - [`bans`]: invalid messages counted per peer, and peers cut off for them.
//! - [`behaviour`]: which libp2p protocols run and how they are configured.
//! - [`dial`]: why a dial failed, in a user's terms.
//! - [`dropped`]: live events dropped over their author's rate, watched until sync brings them.
//! - [`gossip`]: the core's verdict on a gossip message, told to gossipsub (both roles).
//! - [`guard`]: offences and bans, what a peer's hellos and history requests may cost us, and
//!   saying each kind of offence once a minute (both roles; [`charge`] applies it).
//! - [`hello`]: the request-response codec of the hello exchange.
//! - [`liveness`]: one liveness rule for nodes and hubs (pings answered, or the connection closed).
//! - [`swarm`]: the swarm both roles build, listening, our dialable addresses, `NetError`.
//! - [`paging`]: history exchanges by request id, page after page, and anti-entropy rounds.
//! - [`one_link`]: which of two connections to one peer both sides close.
//! - [`node`]: the participant's sub-machines (the outbox, ...), each IO-less and unit-tested.
//! - [`event_loop`]: the actor that owns the swarm and the room, and turns swarm events into room
//!   inputs and room outputs into publishes.

pub mod bans;
pub mod behaviour;
pub mod dial;
pub mod dropped;
pub mod event_loop;
pub mod gossip;
pub mod guard;
pub mod hello;
pub mod hub;
pub mod liveness;
pub mod node;
pub mod one_link;
pub mod paging;
pub mod swarm;

pub use event_loop::{EventLoop, MAX_JOINED, NodeConfig, RoomSpec};
pub use swarm::NetError;

use std::time::Instant;

use libp2p::{Swarm, ping};
use liveness::Liveness;

/// The liveness rule, the same for nodes and hubs: an answered ping proves the connection
/// alive; a failed one closes it at once ([`liveness`]). Returns the peer that answered, if it
/// did.
pub(crate) fn handle_ping<B: libp2p::swarm::NetworkBehaviour>(
    swarm: &mut Swarm<B>,
    alive: &mut Liveness,
    event: ping::Event,
    now: Instant,
) -> Option<libp2p::PeerId> {
    let answered = event.result.is_ok();
    if answered {
        alive.ping(event.connection, true, now);
        return Some(event.peer);
    }
    if let Some(peer) = alive.ping(event.connection, answered, now) {
        // Logged, not shown: the room announces a participant lost, in its words.
        if let Err(error) = event.result {
            tracing::info!(%peer, %error, "ping failed; closing the connection");
        }
        swarm.close_connection(event.connection);
    }
    None
}

/// Sends a page of history to `peer`, who asked for it on `channel` (both roles answer alike),
/// if its budget allows ([`guard::Guard::may_serve_page`]); `page` makes the page only then.
/// Over budget, the page is empty and says there is more: the asker comes back later.
pub(crate) fn serve_history(
    swarm: &mut Swarm<behaviour::ChatBehaviour>,
    guard: &mut guard::Guard,
    peer: libp2p::PeerId,
    channel: libp2p::request_response::ResponseChannel<hello::SyncResponseOut>,
    page: impl FnOnce() -> crate::core::sync::SyncResponse,
) {
    let page = if guard.may_serve_page(peer, Instant::now()) {
        page()
    } else {
        tracing::debug!(%peer, "history request over the peer's budget; answered later");
        crate::core::sync::SyncResponse {
            events: Vec::new(),
            more: true,
        }
    };
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

/// Charges `peer` with an offence (both roles alike, docs/PROTOCOL.md section 8): said once a
/// minute per kind, counted, and when it is one too many, the peer is disconnected; then
/// returns true (the caller stops dialling it and tells the user).
pub(crate) fn charge(
    swarm: &mut Swarm<behaviour::ChatBehaviour>,
    guard: &mut guard::Guard,
    peer: libp2p::PeerId,
    reason: &crate::core::verdict::Rejection,
    now: Instant,
) -> bool {
    use bans::Offence;
    // gossipsub's own score may already ignore it (below the graylist threshold): then the
    // next invalid messages would never reach us to be counted.
    let graylisted = swarm
        .behaviour()
        .gossipsub
        .peer_score(&peer)
        .is_some_and(|s| s <= libp2p::gossipsub::PeerScoreThresholds::default().graylist_threshold);
    match guard.offence(peer, now, graylisted) {
        Offence::First | Offence::Again(_) if guard.say(peer, reason.kind(), now) => {
            tracing::warn!(%peer, %reason, "offence")
        }
        Offence::First | Offence::Again(_) => tracing::debug!(%peer, %reason, "offence"),
        Offence::Banned => tracing::debug!(%peer, %reason, "offence by a cut-off peer"),
        Offence::CutOff(count) => {
            // The user is told by the caller.
            tracing::info!(%peer, count, %reason, "cutting off a peer for repeated offences");
            let _ = swarm.disconnect_peer_id(peer);
            return true;
        }
    }
    false
}
