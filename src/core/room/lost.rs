//! Lost participants (docs/PROTOCOL.md, section 10): when a connection to a present participant
//! closes without a leave, the room ranks who announces it, and stands down if someone else's
//! announcement arrives first.

use std::time::Instant;

use libp2p::PeerId;

use super::{LOST_GRACE, LOST_STAGGER, Phase, Room};
use crate::core::event::Body;
use crate::core::time::WallTime;

impl Room {
    /// The last connection to `peer` closed without a leave from it. If it is a participant, the
    /// room says so: at once if we rank first among the present participants (by peer id), a
    /// little later otherwise, unless someone else's announcement arrives first.
    pub fn peer_gone(&mut self, peer: PeerId, now: Instant, wall: WallTime) {
        self.forget_link(&peer);
        if peer == self.me || !self.is_present(&peer) || self.phase != Phase::Joined {
            return;
        }
        // Ranked: the present participants we are connected to, and ourselves. (Roster entries
        // we cannot reach, stale or made up, must not delay the announcement.)
        let mut ranks: Vec<Vec<u8>> = self
            .ledger
            .roster()
            .iter()
            .filter(|(p, pr)| {
                pr.present && **p != peer && (**p == self.me || self.connected.contains(*p))
            })
            .map(|(p, _)| p.to_bytes())
            .collect();
        ranks.sort();
        let mine = self.me.to_bytes();
        let rank = ranks.iter().position(|p| *p == mine).unwrap_or(0);
        let rank = u32::try_from(rank).unwrap_or(u32::MAX);
        self.lost
            .insert(peer, now + LOST_GRACE + LOST_STAGGER.saturating_mul(rank));
        self.handle_timeout(now, wall);
    }

    /// The last connection to `peer` closed, but not as a sign that it vanished (we were the
    /// silent one): it no longer counts among the connected for the ranking, and nothing is
    /// announced.
    pub fn peer_unreachable(&mut self, peer: &PeerId) {
        self.forget_link(peer);
    }

    /// No connection to `peer` is left: its signs of life start again with the next one.
    fn forget_link(&mut self, peer: &PeerId) {
        self.connected.remove(peer);
        self.heard.remove(peer);
        self.steady.remove(peer);
    }

    /// A connection to `peer` is open (again): no need to announce it lost.
    pub fn peer_back(&mut self, peer: &PeerId) {
        self.lost.remove(peer);
        self.connected.insert(*peer);
    }

    pub(super) fn announce_lost(&mut self, peer: PeerId, wall: WallTime) {
        if self.phase != Phase::Joined {
            return;
        }
        let Some(p) = self.ledger.roster().get(&peer).filter(|p| p.present) else {
            return;
        };
        let user = p.user.clone();
        self.emit(
            Body::Lost {
                subject: peer,
                user,
            },
            wall,
        );
    }
}
