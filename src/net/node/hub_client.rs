//! The hub client (docs/PROTOCOL.md section 11): for each hub of our room we are connected to,
//! a relayed address reserved on it (for peers that cannot reach us directly), a registration
//! in our room's rendezvous namespace renewed before it expires, and a periodic question of
//! who else is there. IO-less: it says what is due; the actor asks the swarm.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

/// How long a registration with a hub lasts, in seconds; it is renewed every
/// [`REGISTER_EVERY`].
pub const REGISTRATION_TTL: u64 = 120;
/// How often registrations with hubs are renewed.
pub const REGISTER_EVERY: Duration = Duration::from_secs(60);
/// How soon a registration is tried again when the hub could not take it yet (no external
/// address: the relayed one is on its way).
pub const REGISTER_RETRY: Duration = Duration::from_secs(1);
/// How soon a registration the hub refused is tried again.
pub const REGISTER_REFUSED_RETRY: Duration = Duration::from_secs(5);
/// How often a hub is asked who else is in the room.
pub const DISCOVER_EVERY: Duration = Duration::from_secs(5);
/// The first such question, shortly after the hub was found (after our own registration).
pub const HUB_DISCOVER_FIRST: Duration = Duration::from_millis(500);
/// How long after losing its relayed address a client asks the hub again.
pub const RESERVE_RETRY: Duration = Duration::from_secs(5);

/// What to ask of a hub now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubAction {
    /// Register in our room (then tell [`HubClient::register_failed`] if it could not go).
    Register(PeerId),
    /// Ask who else is in the room.
    Discover(PeerId),
    /// Listen on this relayed address (then tell [`HubClient::reserving`]).
    Reserve(PeerId, Multiaddr),
}

/// A hub we are connected to.
#[derive(Debug)]
struct HubLink {
    /// The relayed listener (`<hub>/p2p-circuit`), while it lives.
    circuit: Option<ListenerId>,
    /// The address we reached the hub at, to ask for a relayed address again.
    circuit_addr: Multiaddr,
    /// When to ask again if the relayed listener is gone.
    next_reserve: Instant,
    next_register: Instant,
    next_discover: Instant,
}

/// The hubs we are connected to.
#[derive(Debug, Default)]
pub struct HubClient {
    hubs: HashMap<PeerId, HubLink>,
}

impl HubClient {
    /// Whether `peer` is a hub we are connected to.
    pub fn is_hub(&self, peer: &PeerId) -> bool {
        self.hubs.contains_key(peer)
    }

    /// The hubs.
    pub fn hubs(&self) -> impl Iterator<Item = &PeerId> {
        self.hubs.keys()
    }

    /// `hub`, reached at `reached_at`, said hello as a hub of our room. Returns the relayed
    /// address to listen on (the first time only).
    pub fn found(
        &mut self,
        hub: PeerId,
        reached_at: &Multiaddr,
        now: Instant,
    ) -> Option<Multiaddr> {
        if self.hubs.contains_key(&hub) {
            return None;
        }
        let base: Multiaddr = reached_at
            .iter()
            .take_while(|p| !matches!(p, Protocol::P2p(_) | Protocol::P2pCircuit))
            .collect();
        let circuit_addr = base.with(Protocol::P2p(hub)).with(Protocol::P2pCircuit);
        self.hubs.insert(
            hub,
            HubLink {
                circuit: None,
                circuit_addr: circuit_addr.clone(),
                next_reserve: now + RESERVE_RETRY,
                next_register: now,
                next_discover: now + HUB_DISCOVER_FIRST,
            },
        );
        Some(circuit_addr)
    }

    /// The swarm listens (or could not listen) on `hub`'s relayed address as `listener`.
    pub fn reserving(&mut self, hub: &PeerId, listener: Option<ListenerId>) {
        if let Some(h) = self.hubs.get_mut(hub) {
            h.circuit = listener;
        }
    }

    /// `listener` produced an address: if it is a relayed one, register at once (others learn
    /// it from the registration). Returns whether it is relayed.
    pub fn relayed_address(&mut self, listener: ListenerId, now: Instant) -> bool {
        match self.hubs.values_mut().find(|h| h.circuit == Some(listener)) {
            Some(h) => {
                h.next_register = now;
                true
            }
            None => false,
        }
    }

    /// A relayed `listener` closed (its hub went away or refused): ask again later if the hub
    /// is still there.
    pub fn circuit_closed(&mut self, listener: ListenerId, now: Instant) {
        if let Some(h) = self.hubs.values_mut().find(|h| h.circuit == Some(listener)) {
            h.circuit = None;
            h.next_reserve = now + RESERVE_RETRY;
        }
    }

    /// A registration could not go, or was refused: try again after `retry`.
    pub fn register_failed(&mut self, hub: &PeerId, now: Instant, retry: Duration) {
        if let Some(h) = self.hubs.get_mut(hub) {
            h.next_register = now + retry;
        }
    }

    /// The connection to `hub` is gone.
    pub fn disconnected(&mut self, hub: &PeerId) {
        self.hubs.remove(hub);
    }

    /// When something is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.hubs
            .values()
            .map(|h| {
                let reserve = if h.circuit.is_none() {
                    h.next_reserve
                } else {
                    h.next_discover
                };
                h.next_register.min(h.next_discover).min(reserve)
            })
            .min()
    }

    /// What is due at `now`; the next times are set as if each action succeeds.
    pub fn due(&mut self, now: Instant) -> Vec<HubAction> {
        let mut actions = Vec::new();
        for (hub, h) in &mut self.hubs {
            if now >= h.next_register {
                h.next_register = now + REGISTER_EVERY;
                actions.push(HubAction::Register(*hub));
            }
            if now >= h.next_discover {
                h.next_discover = now + DISCOVER_EVERY;
                actions.push(HubAction::Discover(*hub));
            }
            if h.circuit.is_none() && now >= h.next_reserve {
                h.next_reserve = now + RESERVE_RETRY;
                actions.push(HubAction::Reserve(*hub, h.circuit_addr.clone()));
            }
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hub found is registered with at once, asked who is there shortly after, then both are
    /// renewed on their schedules; a failed registration is retried sooner.
    #[test]
    fn given_a_hub_when_time_passes_then_register_and_discover_come_on_schedule() {
        let now = Instant::now();
        let mut c = HubClient::default();
        let hub = PeerId::random();
        let at: Multiaddr = format!("/ip4/127.0.0.1/tcp/4747/p2p/{hub}")
            .parse()
            .unwrap();
        let circuit = c
            .found(hub, &at, now)
            .expect("a relayed address to ask for");
        assert_eq!(
            circuit.to_string(),
            format!("/ip4/127.0.0.1/tcp/4747/p2p/{hub}/p2p-circuit")
        );
        assert!(c.found(hub, &at, now).is_none(), "once");
        assert_eq!(c.due(now), vec![HubAction::Register(hub)]);
        c.register_failed(&hub, now, REGISTER_RETRY);
        assert_eq!(c.poll_timeout(), Some(now + HUB_DISCOVER_FIRST));
        assert_eq!(
            c.due(now + HUB_DISCOVER_FIRST),
            vec![HubAction::Discover(hub)]
        );
        assert_eq!(
            c.due(now + REGISTER_RETRY),
            vec![HubAction::Register(hub)],
            "the failed registration again"
        );
        let later = now + REGISTER_RETRY + REGISTER_EVERY;
        let due = c.due(later);
        assert!(due.contains(&HubAction::Register(hub)), "{due:?}");
        assert!(due.contains(&HubAction::Discover(hub)), "{due:?}");
        assert!(
            due.contains(&HubAction::Reserve(hub, circuit)),
            "no relayed listener yet: asked again"
        );
        c.disconnected(&hub);
        assert_eq!(c.poll_timeout(), None);
    }
}
