//! One connection per peer (docs/PROTOCOL.md section 2): two nodes that find each other at once
//! dial each other at once, and two connections come up. Other gossipsub implementations keep
//! one stream per peer and drop the older, losing subscriptions and messages; so both ends
//! close the same one, decided alike on both sides: the connection dialled by the peer with the
//! lower peer id (binary, bytewise) is kept. A node that finds it dialled the same peer twice
//! (a redial while an earlier attempt hung) closes its own newer one. IO-less: it says which
//! connections to close; the actor closes them.

use std::collections::HashMap;

use libp2p::PeerId;
use libp2p::swarm::ConnectionId;

/// Most peers tracked (the swarm allows 1024 established incoming, and our own dials).
pub const LINKS_CAP: usize = 4096;

/// The open connections to each peer, and who dialled each.
#[derive(Debug)]
pub struct OneLink {
    me: PeerId,
    open: HashMap<PeerId, Vec<(ConnectionId, bool)>>,
}

impl OneLink {
    /// For the node `me`.
    pub fn new(me: PeerId) -> Self {
        Self {
            me,
            open: HashMap::new(),
        }
    }

    /// Connection `id` to `peer` is up; `we_dialled` it or not. Returns the connections to
    /// close (this one, or older ones), so that one stays, the same on both sides.
    pub fn opened(
        &mut self,
        peer: PeerId,
        id: ConnectionId,
        we_dialled: bool,
    ) -> Vec<ConnectionId> {
        let we_are_lower = self.me.to_bytes() < peer.to_bytes();
        // Dialled by the lower peer id: the one both sides keep.
        let preferred = |dialled_by_us: bool| dialled_by_us == we_are_lower;
        if !self.open.contains_key(&peer) && self.open.len() >= LINKS_CAP {
            // Untracked: never closed as a duplicate (the swarm's limits still hold).
            return Vec::new();
        }
        let others = self.open.entry(peer).or_default();
        let mut close = Vec::new();
        if others.is_empty() {
            others.push((id, we_dialled));
            return close;
        }
        let has_preferred = others.iter().any(|(_, d)| preferred(*d));
        if preferred(we_dialled) {
            if has_preferred {
                // Two dialled by the same side: that side closes its newer one.
                if we_dialled {
                    close.push(id);
                    return close;
                }
            } else {
                // Ours is the one to keep: the other side's dials go.
                close.extend(others.iter().map(|(c, _)| *c));
                others.clear();
            }
            others.push((id, we_dialled));
        } else if has_preferred || we_dialled {
            // A better one exists (both sides see it), or it is our own second dial.
            close.push(id);
        } else {
            others.push((id, we_dialled));
        }
        close
    }

    /// Connection `id` to `peer` closed.
    pub fn closed(&mut self, peer: &PeerId, id: ConnectionId) {
        if let Some(list) = self.open.get_mut(peer) {
            list.retain(|(c, _)| *c != id);
            if list.is_empty() {
                self.open.remove(peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two nodes that dial each other at once end with the same connection, whatever order
    /// each sees the two come up in.
    #[test]
    fn both_sides_keep_the_connection_dialled_by_the_lower_peer_id() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let (lo, hi) = if a.to_bytes() < b.to_bytes() {
            (a, b)
        } else {
            (b, a)
        };
        // c1 dialled by lo, c2 dialled by hi.
        let (c1, c2) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
        );
        for first_c1 in [true, false] {
            let mut at_lo = OneLink::new(lo);
            let mut at_hi = OneLink::new(hi);
            let (lo_closes, hi_closes) = if first_c1 {
                let mut x = at_lo.opened(hi, c1, true);
                x.extend(at_lo.opened(hi, c2, false));
                let mut y = at_hi.opened(lo, c1, false);
                y.extend(at_hi.opened(lo, c2, true));
                (x, y)
            } else {
                let mut x = at_lo.opened(hi, c2, false);
                x.extend(at_lo.opened(hi, c1, true));
                let mut y = at_hi.opened(lo, c2, true);
                y.extend(at_hi.opened(lo, c1, false));
                (x, y)
            };
            assert_eq!(lo_closes, vec![c2], "first c1: {first_c1}");
            assert_eq!(hi_closes, vec![c2], "first c1: {first_c1}");
        }
    }

    /// A node that dialled one peer twice closes its own newer connection; the other side
    /// leaves it to the dialler. A single connection, whoever dialled it, is never closed.
    #[test]
    fn a_second_dial_by_one_side_is_closed_by_that_side() {
        let (me, peer) = (PeerId::random(), PeerId::random());
        let mut links = OneLink::new(me);
        let (c1, c2, c3) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
            ConnectionId::new_unchecked(3),
        );
        assert!(links.opened(peer, c1, true).is_empty());
        assert_eq!(links.opened(peer, c2, true), vec![c2]);
        links.closed(&peer, c2);
        let mut other = OneLink::new(peer);
        assert!(other.opened(me, c1, false).is_empty());
        assert!(
            other.opened(me, c3, false).is_empty(),
            "the dialler decides"
        );
        links.closed(&peer, c1);
        assert!(links.open.is_empty());
    }
}
