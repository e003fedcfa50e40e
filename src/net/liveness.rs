//! Liveness, one rule for nodes and hubs (docs/PROTOCOL.md section 2): libp2p closes no
//! connection by itself, not even one whose pings fail, so a frozen or cut-off peer would look
//! connected for ever. Every connection must show a sign of life (established, or a ping
//! answered) every [`LIVENESS_TIMEOUT`], and one whose ping fails is closed at once. IO-less: it
//! says which connections to close; the actor closes them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::swarm::ConnectionId;

/// A connection with no successful ping for this long is closed as dead (a frozen process, a cut
/// cable): with pings every second, a silent peer is noticed within about 5 s.
pub const LIVENESS_TIMEOUT: Duration = Duration::from_secs(5);

/// Every open connection and when it last proved alive.
#[derive(Debug, Default)]
pub struct Liveness {
    alive: HashMap<ConnectionId, (PeerId, Instant)>,
}

impl Liveness {
    /// Connection `id` to `peer` opened at `now`.
    pub fn opened(&mut self, id: ConnectionId, peer: PeerId, now: Instant) {
        self.alive.insert(id, (peer, now));
    }

    /// Connection `id` closed.
    pub fn closed(&mut self, id: ConnectionId) {
        self.alive.remove(&id);
    }

    /// A ping on connection `id` was answered at `now` (`Ok`), or failed (`Err`): then the
    /// connection is to be closed now, and is forgotten here.
    pub fn ping(&mut self, id: ConnectionId, answered: bool, now: Instant) -> Option<PeerId> {
        if answered {
            if let Some(a) = self.alive.get_mut(&id) {
                a.1 = now;
            }
            return None;
        }
        self.alive.remove(&id).map(|(peer, _)| peer)
    }

    /// The connections silent for [`LIVENESS_TIMEOUT`] at `now`, to close; forgotten here.
    pub fn silent(&mut self, now: Instant) -> Vec<(ConnectionId, PeerId)> {
        let mut out = Vec::new();
        self.alive.retain(|id, (peer, since)| {
            let keep = now.duration_since(*since) < LIVENESS_TIMEOUT;
            if !keep {
                out.push((*id, *peer));
            }
            keep
        });
        out
    }

    /// Every connection gets a fresh window from `now` (we, not they, were silent: a stall).
    pub fn refresh_all(&mut self, now: Instant) {
        for (_, seen) in self.alive.values_mut() {
            *seen = now;
        }
    }

    /// When the next connection would turn silent.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.alive
            .values()
            .map(|(_, t)| *t + LIVENESS_TIMEOUT)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection that answers its pings stays; one silent for the whole window is closed;
    /// one whose ping fails is closed at once.
    #[test]
    fn given_connections_when_pings_come_fail_or_stop_then_the_silent_are_closed() {
        let now = Instant::now();
        let mut l = Liveness::default();
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let (ca, cb, cc) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
            ConnectionId::new_unchecked(3),
        );
        l.opened(ca, a, now);
        l.opened(cb, b, now);
        l.opened(cc, c, now);
        assert_eq!(l.poll_timeout(), Some(now + LIVENESS_TIMEOUT));
        let later = now + Duration::from_secs(3);
        assert_eq!(l.ping(ca, true, later), None);
        assert_eq!(
            l.ping(cc, false, later),
            Some(c),
            "a failed ping closes at once"
        );
        assert_eq!(l.silent(now + LIVENESS_TIMEOUT), vec![(cb, b)]);
        assert_eq!(l.poll_timeout(), Some(later + LIVENESS_TIMEOUT));
        l.refresh_all(now + Duration::from_secs(20));
        assert!(
            l.silent(now + Duration::from_secs(21)).is_empty(),
            "after a stall"
        );
        l.closed(ca);
        assert_eq!(l.poll_timeout(), None);
    }
}
