//! The dialer: whom the node keeps connected to, and when it dials (docs/PROTOCOL.md section 2).
//!
//! Two kinds of peers are dialled again and again:
//! - `--connect` targets: dialled at start and re-dialled after every drop or failed dial, with
//!   a backoff from [`REDIAL_MIN`] doubling to [`REDIAL_MAX`]; the first failure is reported to
//!   the user, with its reason, and so is the success after it.
//! - neighbours: peers found by mDNS (kept while their record lives), met on a connection
//!   (identify), or discovered through a hub (rendezvous); re-dialled quickly, from a fresh
//!   port, until they leave or are forgotten.
//!
//! IO-less: it answers with [`Dial`]s for the actor to hand to the swarm, and hears back what
//! became of them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, DialError};
use libp2p::{Multiaddr, PeerId};

use crate::core::event::{ChatEvent, DialFailure, DialOutcome};

/// First wait before re-dialling a `--connect` address.
pub const REDIAL_MIN: Duration = Duration::from_millis(250);
/// Longest wait between re-dials of a `--connect` address.
pub const REDIAL_MAX: Duration = Duration::from_secs(10);
/// Most neighbours remembered for re-dialling.
pub const MDNS_PEERS_CAP: usize = 1024;
/// Most addresses remembered per neighbour.
pub const MDNS_ADDRS_CAP: usize = 8;
/// First wait before dialling a peer found by mDNS or met before again.
pub const NEIGHBOUR_REDIAL_MIN: Duration = Duration::from_millis(500);
/// Longest wait between re-dials of a peer found by mDNS or met before: short, so that a repaired
/// network is whole again within about a second.
pub const NEIGHBOUR_REDIAL_MAX: Duration = Duration::from_secs(1);
/// How long a peer met through a connection (not mDNS) is re-dialled after it dropped.
pub const NEIGHBOUR_FORGET: Duration = Duration::from_secs(300);
/// Longest wait between dials of a peer discovered through a hub but not reached yet (every
/// dial through a relay costs the hub).
pub const DISCOVERED_REDIAL_MAX: Duration = Duration::from_secs(10);

/// A dial for the actor to start.
#[derive(Debug)]
pub enum Dial {
    /// `--connect` target number `index`; tell [`Dialer::dialing`] or [`Dialer::dial_refused`].
    Target {
        /// Which target.
        index: usize,
        /// How to dial it.
        opts: DialOpts,
    },
    /// `--connect` target number `index` names a host: resolve it (as the system resolves
    /// names, off the event loop's thread), then tell [`Dialer::resolved`].
    Resolve {
        /// Which target.
        index: usize,
        /// The host name.
        host: String,
        /// The TCP port.
        port: u16,
        /// Only IPv4 (`/dns4`), only IPv6 (`/dns6`), or either (`/dns`).
        family: Family,
    },
    /// A neighbour (nothing to report back).
    Neighbour {
        /// Which peer.
        peer: PeerId,
        /// How to dial it.
        opts: DialOpts,
    },
}

/// Which addresses a host name may resolve to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4 or IPv6 (`/dns`).
    Any,
    /// IPv4 only (`/dns4`).
    V4,
    /// IPv6 only (`/dns6`).
    V6,
}

impl Family {
    /// Whether `ip` is of this family.
    pub fn admits(self, ip: &IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        }
    }
}

/// The host, port and family of a `/dns*/HOST/tcp/PORT[/p2p/ID]` address.
fn host_of(addr: &Multiaddr) -> Option<(String, u16, Family)> {
    let mut parts = addr.iter();
    let (host, family) = match parts.next()? {
        Protocol::Dns(h) => (h, Family::Any),
        Protocol::Dns4(h) => (h, Family::V4),
        Protocol::Dns6(h) => (h, Family::V6),
        _ => return None,
    };
    match parts.next()? {
        Protocol::Tcp(port) => Some((host.into_owned(), port, family)),
        _ => None,
    }
}

/// A `--connect` address and the state of our link to it.
#[derive(Debug)]
struct Target {
    addr: Multiaddr,
    /// The peer id the address names (`/p2p/ID`); the dial must reach that peer.
    named: Option<PeerId>,
    /// The peer last reached at this address. Without `/p2p/ID` it may change: a restarted
    /// peer with a new key at the same address is still the one to keep connected to.
    peer: Option<PeerId>,
    dialing: Option<ConnectionId>,
    connected: bool,
    backoff: Duration,
    retry_at: Option<Instant>,
    /// A failure was reported to the user since the last success: say nothing more until it
    /// works, and then say so.
    told: bool,
    /// Failed dials of a host name since it last worked: each tries the next address it
    /// resolves to (without a peer id, a dial takes one address).
    attempt: usize,
    /// No longer wanted (a ticket's address, its room left): never dialled again, unless it
    /// is added again.
    retired: bool,
}

impl Target {
    /// How to dial it at `addrs` (its own address, or what its host name resolved to; never
    /// empty).
    fn opts(&self, mut addrs: Vec<Multiaddr>) -> DialOpts {
        match self.named {
            Some(peer) => DialOpts::peer_id(peer)
                .addresses(addrs)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build(),
            // Without a peer id, one address per dial: in turn, one more each failure.
            None => {
                let pick = self.attempt % addrs.len().max(1);
                DialOpts::unknown_peer_id()
                    .address(addrs.swap_remove(pick))
                    .build()
            }
        }
    }
}

/// A peer kept connected while we know where it is.
#[derive(Debug)]
struct Neighbour {
    addrs: Vec<Multiaddr>,
    retry_at: Option<Instant>,
    backoff: Duration,
    /// It said goodbye (or was cut off): do not dial it again (if it comes back, it dials us).
    left: bool,
    /// Found by mDNS: kept while its record lives. Otherwise learned by identify or a hub's
    /// rendezvous, and forgotten when `forget_at` passes.
    mdns: bool,
    forget_at: Option<Instant>,
    /// The longest wait between dials.
    max_backoff: Duration,
}

impl Neighbour {
    fn new(mdns: bool, max_backoff: Duration) -> Self {
        Self {
            addrs: Vec::new(),
            retry_at: None,
            backoff: NEIGHBOUR_REDIAL_MIN,
            left: false,
            mdns,
            forget_at: None,
            max_backoff,
        }
    }

    fn add_addr(&mut self, addr: Multiaddr) {
        if !self.addrs.contains(&addr) && self.addrs.len() < MDNS_ADDRS_CAP {
            self.addrs.push(addr);
        }
    }
}

/// The `--connect` targets and the neighbours.
#[derive(Debug, Default)]
pub struct Dialer {
    targets: Vec<Target>,
    neighbours: HashMap<PeerId, Neighbour>,
}

impl Dialer {
    /// Targets for these `--connect` addresses, all due at `now`.
    pub fn new(connect: &[Multiaddr], now: Instant) -> Self {
        let targets = connect
            .iter()
            .map(|addr| Target {
                named: match addr.iter().last() {
                    Some(Protocol::P2p(p)) => Some(p),
                    _ => None,
                },
                peer: None,
                addr: addr.clone(),
                dialing: None,
                connected: false,
                backoff: REDIAL_MIN,
                retry_at: Some(now),
                told: false,
                attempt: 0,
                retired: false,
            })
            .collect();
        Self {
            targets,
            neighbours: HashMap::new(),
        }
    }

    /// More targets, as for `--connect`, due at `now` (a ticket's addresses, for `/join`);
    /// addresses already targets are not added twice.
    pub fn add_targets(&mut self, addrs: &[Multiaddr], now: Instant) {
        for t in self.targets.iter_mut().filter(|t| t.retired) {
            if addrs.contains(&t.addr) {
                t.retired = false;
                t.retry_at = Some(now);
            }
        }
        let mut fresh: Vec<Multiaddr> = Vec::new();
        for a in addrs {
            if !self.targets.iter().any(|t| &t.addr == a) && !fresh.contains(a) {
                fresh.push(a.clone());
            }
        }
        self.targets.extend(Dialer::new(&fresh, now).targets);
    }

    /// These targets are no longer wanted (added for a room that is left): not dialled again.
    pub fn retire_targets(&mut self, addrs: &[Multiaddr]) {
        for t in self.targets.iter_mut().filter(|t| addrs.contains(&t.addr)) {
            t.retired = true;
            t.retry_at = None;
        }
    }

    /// Whether any `--connect` address was given.
    pub fn has_targets(&self) -> bool {
        !self.targets.is_empty()
    }

    /// When a dial is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.targets
            .iter()
            .filter(|t| !t.retired)
            .filter_map(|t| t.retry_at)
            .chain(self.neighbours.values().filter_map(|n| n.retry_at))
            .chain(self.neighbours.values().filter_map(|n| n.forget_at))
            .min()
    }

    /// The dials due at `now`. `connected` and `banned` say what the swarm and the bans know.
    pub fn due(
        &mut self,
        now: Instant,
        connected: impl Fn(&PeerId) -> bool,
        banned: impl Fn(&PeerId) -> bool,
    ) -> Vec<Dial> {
        let mut dials = Vec::new();
        for (index, t) in self.targets.iter_mut().enumerate() {
            if t.retired {
                t.retry_at = None;
                continue;
            }
            if t.retry_at.is_none_or(|at| at > now) {
                continue;
            }
            t.retry_at = None;
            if t.peer.is_some_and(|p| banned(&p)) {
                t.retry_at = Some(now + REDIAL_MAX);
                continue;
            }
            if let Some((host, port, family)) = host_of(&t.addr) {
                dials.push(Dial::Resolve {
                    index,
                    host,
                    port,
                    family,
                });
                continue;
            }
            dials.push(Dial::Target {
                index,
                opts: t.opts(vec![t.addr.clone()]),
            });
        }
        self.neighbours
            .retain(|_, n| n.forget_at.is_none_or(|t| t > now));
        let due: Vec<PeerId> = self
            .neighbours
            .iter()
            .filter(|(_, n)| n.retry_at.is_some_and(|t| t <= now))
            .map(|(p, _)| *p)
            .collect();
        for peer in due {
            dials.extend(self.dial_now(peer, now, connected(&peer), banned(&peer)));
        }
        dials
    }

    /// Neighbour `peer`, just found, is dialled at `at` rather than now (unless a dial is
    /// already due earlier): the peer with the higher id lets the lower dial first, so that two
    /// nodes finding each other at once do not both dial (one connection per peer,
    /// docs/PROTOCOL.md section 2). If the other never dials, we do, a moment later.
    pub fn dial_at(&mut self, peer: &PeerId, at: Instant) {
        if let Some(n) = self.neighbours.get_mut(peer) {
            n.retry_at = Some(n.retry_at.map_or(at, |t| t.min(at)));
        }
    }

    /// Dials neighbour `peer` now (just found, or due), unless connected, cut off or gone; a
    /// failure is retried with backoff.
    pub fn dial_now(
        &mut self,
        peer: PeerId,
        now: Instant,
        connected: bool,
        banned: bool,
    ) -> Option<Dial> {
        let n = self.neighbours.get_mut(&peer)?;
        n.retry_at = None;
        if n.left || n.addrs.is_empty() || connected || banned {
            return None;
        }
        // The next attempt is scheduled now, even if this one hangs in a cut network: the first
        // dial after a repair then starts within NEIGHBOUR_REDIAL_MAX, and the dial timeout
        // bounds how many attempts can be pending at once.
        n.retry_at = Some(now + n.backoff);
        n.backoff = (n.backoff * 2).min(n.max_backoff);
        // From a new port, not the listening one: two nodes that find each other at the same
        // instant dial each other at once, and from both listening ports the two dials are one
        // TCP simultaneous open (the same four-tuple), whose security handshake fails on both
        // sides (both are initiators), again and again in lockstep. From fresh ports they are
        // two connections, and both succeed.
        let opts = DialOpts::peer_id(peer)
            .addresses(n.addrs.clone())
            .condition(PeerCondition::Always)
            .allocate_new_port()
            .build();
        Some(Dial::Neighbour { peer, opts })
    }

    /// Target `index`'s host name resolved to `ips` (or did not, `None`) at `now`: the dial to
    /// start, or a report for the user (the first failure) and a retry after the backoff.
    pub fn resolved(
        &mut self,
        index: usize,
        ips: Option<Vec<IpAddr>>,
        now: Instant,
    ) -> Result<Dial, Option<ChatEvent>> {
        let Some(t) = self.targets.get_mut(index) else {
            return Err(None);
        };
        let (_, port, family) = host_of(&t.addr).ok_or(None)?;
        let mut ips: Vec<IpAddr> = ips
            .unwrap_or_default()
            .into_iter()
            .filter(|ip| family.admits(ip))
            .collect();
        // IPv4 first: nodes listen on IPv4 by default, and `localhost` often resolves to ::1
        // first.
        ips.sort_by_key(|ip| ip.is_ipv6());
        ips.dedup();
        let addrs: Vec<Multiaddr> = ips
            .into_iter()
            .map(|ip| Multiaddr::from(ip).with(Protocol::Tcp(port)))
            .collect();
        if addrs.is_empty() {
            t.retry_at = Some(now + t.backoff);
            t.backoff = (t.backoff * 2).min(REDIAL_MAX);
            if t.told {
                return Err(None);
            }
            t.told = true;
            return Err(Some(ChatEvent::Dial {
                addr: t.addr.to_string(),
                outcome: DialOutcome::Failed(DialFailure::NoSuchHost),
            }));
        }
        Ok(Dial::Target {
            index,
            opts: t.opts(addrs),
        })
    }

    /// The swarm took the dial of target `index` as connection `id`.
    pub fn dialing(&mut self, index: usize, id: ConnectionId) {
        if let Some(t) = self.targets.get_mut(index) {
            t.dialing = Some(id);
        }
    }

    /// The swarm refused to start the dial of target `index`. `connected` says which peers are
    /// connected. Returns a report for the user, the first time.
    pub fn dial_refused(
        &mut self,
        index: usize,
        error: &DialError,
        connected: impl Fn(&PeerId) -> bool,
        now: Instant,
    ) -> Option<ChatEvent> {
        let t = self.targets.get_mut(index)?;
        if matches!(error, DialError::DialPeerConditionFalse(_)) {
            // Already connected or being dialled: the connection events will tell.
            t.connected = t.named.is_some_and(|p| connected(&p));
            if !t.connected {
                t.retry_at = Some(now + t.backoff);
            }
            return None;
        }
        t.retry_at = Some(now + t.backoff);
        t.backoff = (t.backoff * 2).min(REDIAL_MAX);
        self.failed_target(index, error)
    }

    /// A dial failed after it started. Returns a report for the user, the first time for a
    /// target.
    pub fn failed(
        &mut self,
        id: ConnectionId,
        error: &DialError,
        now: Instant,
    ) -> Option<ChatEvent> {
        let index = self.targets.iter().position(|t| t.dialing == Some(id))?;
        let t = &mut self.targets[index];
        t.dialing = None;
        t.attempt = t.attempt.wrapping_add(1);
        t.retry_at = Some(now + t.backoff);
        t.backoff = (t.backoff * 2).min(REDIAL_MAX);
        self.failed_target(index, error)
    }

    fn failed_target(&mut self, index: usize, error: &DialError) -> Option<ChatEvent> {
        let t = self.targets.get_mut(index)?;
        let why = crate::net::dial::classify(error);
        if why == DialFailure::OwnAddress {
            // Dialling ourselves again will not help.
            t.retry_at = None;
        }
        if t.told {
            return None;
        }
        t.told = true;
        Some(ChatEvent::Dial {
            addr: t.addr.to_string(),
            outcome: DialOutcome::Failed(why),
        })
    }

    /// A connection `id` to `peer` is established: the targets it serves and the neighbour are
    /// reset. Returns reports for the user (a target that works again after a failure).
    pub fn connected(&mut self, peer: PeerId, id: ConnectionId) -> Vec<ChatEvent> {
        let mut reports = Vec::new();
        for t in &mut self.targets {
            let ours = t.dialing == Some(id) || t.named == Some(peer) || t.peer == Some(peer);
            if !ours {
                continue;
            }
            if t.told {
                t.told = false;
                reports.push(ChatEvent::Dial {
                    addr: t.addr.to_string(),
                    outcome: DialOutcome::Connected {
                        peer: peer.to_base58(),
                    },
                });
            }
            t.peer = Some(peer);
            t.dialing = None;
            t.attempt = 0;
            t.connected = true;
            t.retry_at = None;
            t.backoff = REDIAL_MIN;
        }
        if let Some(n) = self.neighbours.get_mut(&peer) {
            n.retry_at = None;
            n.forget_at = None;
            n.backoff = NEIGHBOUR_REDIAL_MIN;
            // It is back (a rejoin under its key, a ban that ran out): dialled again if it drops.
            n.left = false;
        }
        reports
    }

    /// The last connection to `peer` closed at `now`: dial it again (a target after its backoff,
    /// a neighbour soon, unless it left).
    pub fn disconnected(&mut self, peer: PeerId, now: Instant) {
        for t in &mut self.targets {
            if t.peer == Some(peer) && t.connected {
                t.connected = false;
                t.retry_at = Some(now + t.backoff);
            }
        }
        if let Some(n) = self.neighbours.get_mut(&peer) {
            if !n.left {
                n.retry_at = Some(now + NEIGHBOUR_REDIAL_MIN);
            }
            if !n.mdns {
                n.forget_at = Some(now + NEIGHBOUR_FORGET);
            }
        }
    }

    /// `peer` left (or was cut off): never dialled again until mDNS finds it anew.
    pub fn gone(&mut self, peer: &PeerId) {
        if let Some(n) = self.neighbours.get_mut(peer) {
            n.left = true;
            n.retry_at = None;
        }
        // A --connect target is still re-dialled, but its failures while the peer is away are
        // no news (the user saw it leave); that it is back is.
        for t in self.targets.iter_mut().filter(|t| t.peer == Some(*peer)) {
            t.told = true;
        }
    }

    /// mDNS found `peer` at `addr`. Returns whether it is remembered (and so worth a dial).
    pub fn found_by_mdns(&mut self, peer: PeerId, addr: Multiaddr) -> bool {
        if !self.neighbours.contains_key(&peer) {
            if self.neighbours.len() >= MDNS_PEERS_CAP {
                return false;
            }
            self.neighbours
                .insert(peer, Neighbour::new(true, NEIGHBOUR_REDIAL_MAX));
        }
        let Some(n) = self.neighbours.get_mut(&peer) else {
            return false;
        };
        // A fresh record means the peer is (back) on the LAN: kept while the record lives.
        n.left = false;
        n.mdns = true;
        n.forget_at = None;
        n.add_addr(addr);
        true
    }

    /// mDNS's record of `peer` at `addr` expired at `now`: not a sign that it is gone from the
    /// chat, but that address is no longer the LAN's word. Addresses learned otherwise
    /// (identify, a hub) are kept, as for any peer met on a connection: forgotten after
    /// [`NEIGHBOUR_FORGET`] unless it connects again.
    pub fn expired_in_mdns(&mut self, peer: &PeerId, addr: &Multiaddr, now: Instant) {
        if let Some(n) = self.neighbours.get_mut(peer) {
            n.addrs.retain(|a| a != addr);
            if n.addrs.is_empty() {
                self.neighbours.remove(peer);
            } else if n.mdns {
                n.mdns = false;
                n.forget_at = Some(now + NEIGHBOUR_FORGET);
            }
        }
    }

    /// Identify told us where `peer` listens: remembered, so that a dropped peer is dialled
    /// again without waiting for mDNS.
    pub fn met(&mut self, peer: PeerId, addrs: Vec<Multiaddr>) {
        if self.neighbours.len() >= MDNS_PEERS_CAP && !self.neighbours.contains_key(&peer) {
            return;
        }
        let n = self
            .neighbours
            .entry(peer)
            .or_insert_with(|| Neighbour::new(false, NEIGHBOUR_REDIAL_MAX));
        for addr in addrs {
            n.add_addr(addr);
        }
    }

    /// A hub's rendezvous says `peer` is in our room at `addrs` (its registration, the truth
    /// about its addresses). Returns whether it is remembered and not yet being dialled.
    pub fn discovered_via_hub(&mut self, peer: PeerId, addrs: &[Multiaddr], now: Instant) -> bool {
        if self.neighbours.len() >= MDNS_PEERS_CAP && !self.neighbours.contains_key(&peer) {
            return false;
        }
        let n = self
            .neighbours
            .entry(peer)
            .or_insert_with(|| Neighbour::new(false, DISCOVERED_REDIAL_MAX));
        // Relayed ones first, so that they fit under the cap.
        let mut addrs = addrs.to_vec();
        addrs.sort_by_key(|a| !a.iter().any(|p| matches!(p, Protocol::P2pCircuit)));
        addrs.truncate(MDNS_ADDRS_CAP);
        if !n.mdns {
            n.addrs = addrs;
            // Forgotten unless discovered again before its registration would lapse.
            n.forget_at = Some(now + Duration::from_secs(super::hub_client::REGISTRATION_TTL));
        } else {
            for a in addrs {
                n.add_addr(a);
            }
        }
        n.retry_at.is_none()
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use libp2p::core::transport::TransportError;

    use super::*;

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()
    }

    fn refused() -> DialError {
        DialError::Transport(vec![(
            addr(1),
            TransportError::Other(io::Error::from(io::ErrorKind::ConnectionRefused)),
        )])
    }

    fn target_dial(d: &mut Dialer, now: Instant) -> (usize, ConnectionId) {
        let dials = d.due(now, |_| false, |_| false);
        match dials.as_slice() {
            [Dial::Target { index, opts }] => (*index, opts.connection_id()),
            other => panic!("one target dial expected: {other:?}"),
        }
    }

    /// A ticket's address added for a `/join` is dialled like a `--connect` one; retired when
    /// its room is left, it is not dialled again, even after it drops or fails, until it is
    /// added again.
    #[test]
    fn a_retired_target_is_not_dialled_until_added_again() {
        let now = Instant::now();
        let mut d = Dialer::new(&[], now);
        d.add_targets(&[addr(7), addr(7)], now);
        let (index, id) = target_dial(&mut d, now);
        assert_eq!(index, 0);
        d.retire_targets(&[addr(7)]);
        let _ = d.failed(id, &refused(), now);
        let later = now + REDIAL_MAX * 2;
        assert!(d.due(later, |_| false, |_| false).is_empty());
        assert_eq!(d.poll_timeout(), None);
        d.add_targets(&[addr(7)], later);
        assert_eq!(target_dial(&mut d, later).0, 0, "the same target, again");
    }

    /// A `--connect` address that keeps failing is retried with a doubling backoff (up to
    /// [`REDIAL_MAX`]); the user hears of the failure once, and of the success after it.
    #[test]
    fn given_a_failing_target_when_it_finally_answers_then_failure_and_success_are_said_once() {
        let t0 = Instant::now();
        let mut d = Dialer::new(&[addr(4747)], t0);
        assert_eq!(d.poll_timeout(), Some(t0));
        let mut now = t0;
        let mut reports = Vec::new();
        let mut waits = Vec::new();
        for _ in 0..8 {
            let (index, id) = target_dial(&mut d, now);
            d.dialing(index, id);
            reports.extend(d.failed(id, &refused(), now));
            let next = d.poll_timeout().expect("retried");
            waits.push(next - now);
            now = next;
        }
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert!(matches!(
            &reports[0],
            ChatEvent::Dial {
                outcome: DialOutcome::Failed(crate::core::event::DialFailure::Refused),
                ..
            }
        ));
        assert_eq!(waits[0], REDIAL_MIN);
        assert_eq!(waits[1], REDIAL_MIN * 2);
        assert_eq!(*waits.last().unwrap(), REDIAL_MAX);
        let (index, id) = target_dial(&mut d, now);
        d.dialing(index, id);
        let peer = PeerId::random();
        let ok = d.connected(peer, id);
        assert!(matches!(
            ok.as_slice(),
            [ChatEvent::Dial {
                outcome: DialOutcome::Connected { .. },
                ..
            }]
        ));
        assert_eq!(d.poll_timeout(), None, "connected: nothing due");
        // Dropped: dialled again after the (reset) backoff.
        d.disconnected(peer, now);
        assert_eq!(d.poll_timeout(), Some(now + REDIAL_MIN));
    }

    /// A neighbour found by mDNS is dialled at once, from a fresh port, then again quickly until
    /// connected; one that left is never dialled again.
    #[test]
    fn given_a_neighbour_when_it_drops_or_leaves_then_it_is_redialled_or_not() {
        let now = Instant::now();
        let mut d = Dialer::default();
        let peer = PeerId::random();
        assert!(d.found_by_mdns(peer, addr(5000)));
        let dial = d.dial_now(peer, now, false, false).expect("a dial");
        assert!(matches!(dial, Dial::Neighbour { peer: p, .. } if p == peer));
        assert_eq!(d.poll_timeout(), Some(now + NEIGHBOUR_REDIAL_MIN));
        assert!(d.dial_now(peer, now, true, false).is_none(), "connected");
        d.connected(peer, ConnectionId::new_unchecked(1));
        d.disconnected(peer, now);
        let later = now + NEIGHBOUR_REDIAL_MIN;
        assert_eq!(d.due(later, |_| false, |_| false).len(), 1);
        d.gone(&peer);
        assert!(d.due(later + REDIAL_MAX, |_| false, |_| false).is_empty());
        assert!(d.dial_now(peer, later, false, false).is_none());
        // mDNS finding it again means it is back.
        d.found_by_mdns(peer, addr(5000));
        assert!(d.dial_now(peer, later, false, false).is_some());
        assert!(d.dial_now(peer, later, false, true).is_none(), "cut off");
    }

    /// A peer met on a connection (not by mDNS) is re-dialled for [`NEIGHBOUR_FORGET`] after it
    /// dropped, then forgotten.
    #[test]
    fn a_peer_met_on_a_connection_is_forgotten_after_a_while() {
        let now = Instant::now();
        let mut d = Dialer::default();
        let peer = PeerId::random();
        d.met(peer, vec![addr(6000)]);
        d.disconnected(peer, now);
        let gone = now + NEIGHBOUR_FORGET;
        assert!(d.due(gone, |_| false, |_| false).is_empty());
        assert_eq!(d.poll_timeout(), None);
    }

    /// A host name is resolved before each dial; one that does not resolve is reported once
    /// and retried; the addresses it resolves to are dialled (of its family only).
    #[test]
    fn a_host_name_is_resolved_then_dialled_and_a_failure_said_once() {
        let now = Instant::now();
        let named: Multiaddr = "/dns4/hub.example/tcp/4747".parse().unwrap();
        let mut d = Dialer::new(&[named], now);
        let dials = d.due(now, |_| false, |_| false);
        assert!(matches!(
            dials.as_slice(),
            [Dial::Resolve { index: 0, host, port: 4747, family: Family::V4 }] if host == "hub.example"
        ));
        assert!(matches!(
            d.resolved(0, None, now),
            Err(Some(ChatEvent::Dial {
                outcome: DialOutcome::Failed(DialFailure::NoSuchHost),
                ..
            }))
        ));
        assert_eq!(d.poll_timeout(), Some(now + REDIAL_MIN));
        assert!(
            matches!(d.resolved(0, Some(Vec::new()), now), Err(None)),
            "said once"
        );
        let v6: IpAddr = "::1".parse().unwrap();
        let v4: IpAddr = "127.0.0.1".parse().unwrap();
        match d.resolved(0, Some(vec![v6, v4]), now) {
            Ok(Dial::Target { index: 0, .. }) => {}
            other => panic!("a dial of the IPv4 address expected: {other:?}"),
        }
        assert!(
            matches!(d.resolved(0, Some(vec![v6]), now), Err(None)),
            "IPv4 only"
        );
    }

    /// Without a peer id a dial takes one address: IPv4 first, and after each failure the next
    /// one the name resolves to.
    #[test]
    fn each_failed_dial_of_a_host_name_tries_its_next_address() {
        let now = Instant::now();
        let any: Multiaddr = "/dns/localhost/tcp/4747".parse().unwrap();
        let mut d = Dialer::new(&[any], now);
        let ips: Vec<IpAddr> = vec!["::1".parse().unwrap(), "127.0.0.1".parse().unwrap()];
        let mut tried = Vec::new();
        for _ in 0..3 {
            let Ok(Dial::Target { index, opts }) = d.resolved(0, Some(ips.clone()), now) else {
                panic!("a dial expected");
            };
            let id = opts.connection_id();
            let shown = format!("{opts:?}");
            tried.push(if shown.contains("/ip6/::1/") {
                "v6"
            } else {
                "v4"
            });
            d.dialing(index, id);
            d.failed(id, &refused(), now);
        }
        assert_eq!(tried, ["v4", "v6", "v4"]);
    }

    /// A --connect peer that left on purpose: re-dialled quietly, and its return is said.
    #[test]
    fn a_target_that_left_is_redialled_without_failure_reports() {
        let now = Instant::now();
        let mut d = Dialer::new(&[addr(4747)], now);
        let (index, id) = target_dial(&mut d, now);
        d.dialing(index, id);
        let peer = PeerId::random();
        assert!(
            d.connected(peer, id).is_empty(),
            "worked at once: nothing to say"
        );
        d.gone(&peer);
        d.disconnected(peer, now);
        let later = now + REDIAL_MIN;
        let (index, id) = target_dial(&mut d, later);
        d.dialing(index, id);
        assert_eq!(d.failed(id, &refused(), later), None);
        let (index, id) = target_dial(&mut d, later + REDIAL_MAX);
        d.dialing(index, id);
        assert_eq!(d.connected(peer, id).len(), 1, "back: said");
    }

    /// A neighbour that left and comes back (it connects again) is dialled again if it drops.
    #[test]
    fn a_neighbour_that_comes_back_after_leaving_is_redialled_again() {
        let now = Instant::now();
        let mut d = Dialer::default();
        let peer = PeerId::random();
        d.met(peer, vec![addr(7000)]);
        d.gone(&peer);
        d.connected(peer, ConnectionId::new_unchecked(9));
        d.disconnected(peer, now);
        assert_eq!(d.poll_timeout(), Some(now + NEIGHBOUR_REDIAL_MIN));
    }

    /// Our own address is not dialled again and again.
    #[test]
    fn a_target_that_is_our_own_address_is_given_up() {
        let now = Instant::now();
        let mut d = Dialer::new(&[addr(4747)], now);
        let (index, _) = target_dial(&mut d, now);
        let report = d.dial_refused(index, &DialError::NoAddresses, |_| false, now);
        assert!(matches!(
            report,
            Some(ChatEvent::Dial {
                outcome: DialOutcome::Failed(DialFailure::OwnAddress),
                ..
            })
        ));
        assert_eq!(d.poll_timeout(), None);
    }

    #[test]
    fn neighbours_and_their_addresses_are_bounded() {
        let mut d = Dialer::default();
        for _ in 0..MDNS_PEERS_CAP + 5 {
            d.found_by_mdns(PeerId::random(), addr(1));
        }
        assert_eq!(d.neighbours.len(), MDNS_PEERS_CAP);
        let peer = *d.neighbours.keys().next().unwrap();
        d.met(peer, (0..20).map(|p| addr(2000 + p)).collect());
        assert_eq!(d.neighbours[&peer].addrs.len(), MDNS_ADDRS_CAP);
    }
}
