//! History exchanges (docs/PROTOCOL.md section 6), one piece for both roles: each request we
//! sent is remembered by its request id with whom we asked, about which room and which page of
//! the exchange it is; an answer that taught us something and says there is more leads to the
//! next page, up to [`MAX_SYNC_PAGES`] (a peer cannot keep us asking for ever). And the
//! anti-entropy rounds of a participant: every [`SYNC_INTERVAL`], the next room peer in turn.
//! IO-less: the actor sends the requests.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// Most pages asked for in one exchange.
pub const MAX_SYNC_PAGES: u32 = 64;
/// How often a participant asks one of its room peers, in turn, what it lacks (anti-entropy:
/// repairs whatever gossip lost).
pub const SYNC_INTERVAL: Duration = Duration::from_secs(3);
/// Most requests remembered at once (one per peer and room in practice).
pub const PAGING_CAP: usize = 4096;

/// The exchanges under way, by request id (`I`, libp2p's `OutboundRequestId`); `K` says which
/// room (its topic).
#[derive(Debug)]
pub struct Paging<I, K> {
    asked: HashMap<I, (PeerId, K, u32)>,
}

impl<I, K> Default for Paging<I, K> {
    fn default() -> Self {
        Self {
            asked: HashMap::new(),
        }
    }
}

impl<I: Eq + Hash, K: PartialEq> Paging<I, K> {
    /// Whether an exchange with `peer` about `room` is under way (one at a time).
    pub fn busy(&self, peer: &PeerId, room: &K) -> bool {
        self.asked.values().any(|(p, k, _)| p == peer && k == room)
    }

    /// Request `id` asked `peer` for page `page` about `room`. Returns false (and remembers
    /// nothing) when too many are under way.
    pub fn asked(&mut self, id: I, peer: PeerId, room: K, page: u32) -> bool {
        if self.asked.len() >= PAGING_CAP {
            return false;
        }
        self.asked.insert(id, (peer, room, page));
        true
    }

    /// The answer to request `id` came: whom we asked, about which room, which page. `None` for
    /// an answer to nothing we asked.
    pub fn answered(&mut self, id: I) -> Option<(PeerId, K, u32)> {
        self.asked.remove(&id)
    }

    /// Request `id` failed: the exchange ends (the next round starts another).
    pub fn failed(&mut self, id: I) {
        self.asked.remove(&id);
    }

    /// The connection to `peer` is gone: its exchanges end.
    pub fn disconnected(&mut self, peer: &PeerId) {
        self.asked.retain(|_, (p, _, _)| p != peer);
    }

    /// We left `room`: its exchanges end (their answers are dropped).
    pub fn forget_room<Q: ?Sized>(&mut self, room: &Q)
    where
        K: PartialEq<Q>,
    {
        self.asked.retain(|_, (_, k, _)| k != room);
    }
}

/// After page `page` of an exchange: the next page to ask for, if the answer said there is more
/// and taught us something (a page that taught us nothing cannot lead anywhere new), within
/// [`MAX_SYNC_PAGES`].
pub fn next_page(page: u32, more_and_new: bool) -> Option<u32> {
    (more_and_new && page < MAX_SYNC_PAGES).then_some(page + 1)
}

/// Anti-entropy rounds: when the next is due, and whose turn it is.
#[derive(Debug)]
pub struct Rounds {
    next_at: Instant,
    turn: usize,
}

impl Rounds {
    /// The first round one interval after `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            next_at: now + SYNC_INTERVAL,
            turn: 0,
        }
    }

    /// When the next round is due.
    pub fn poll_timeout(&self) -> Instant {
        self.next_at
    }

    /// If a round is due at `now`, the room peer to ask, in turn among `peers`.
    pub fn due(&mut self, now: Instant, mut peers: Vec<PeerId>) -> Option<PeerId> {
        if now < self.next_at {
            return None;
        }
        self.next_at = now + SYNC_INTERVAL;
        if peers.is_empty() {
            return None;
        }
        peers.sort();
        self.turn = self.turn.wrapping_add(1);
        Some(peers[self.turn % peers.len()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One exchange at a time per peer and room; the answer says which page it was; the next
    /// page follows only while there is more and it taught us something, up to the bound.
    #[test]
    fn given_an_exchange_when_pages_come_then_it_goes_on_within_the_bound() {
        let ids = [1u64, 2, 3];
        let (a, b) = (PeerId::random(), PeerId::random());
        let mut p: Paging<u64, String> = Paging::default();
        assert!(!p.busy(&a, &"room".to_owned()));
        assert!(p.asked(ids[0], a, "room".to_owned(), 1));
        assert!(p.busy(&a, &"room".to_owned()));
        assert!(!p.busy(&a, &"other".to_owned()));
        assert!(!p.busy(&b, &"room".to_owned()));
        assert_eq!(p.answered(ids[0]), Some((a, "room".to_owned(), 1)));
        assert_eq!(p.answered(ids[0]), None, "answered once");
        assert_eq!(next_page(1, true), Some(2));
        assert_eq!(next_page(1, false), None);
        assert_eq!(next_page(MAX_SYNC_PAGES, true), None);
        p.asked(ids[1], b, "room".to_owned(), 2);
        p.asked(ids[2], a, "room".to_owned(), 1);
        p.disconnected(&b);
        assert!(!p.busy(&b, &"room".to_owned()));
        p.failed(ids[2]);
        assert!(!p.busy(&a, &"room".to_owned()));
    }

    /// Anti-entropy asks one room peer a round, each in turn, every interval.
    #[test]
    fn rounds_take_the_room_peers_in_turn() {
        let now = Instant::now();
        let mut r = Rounds::new(now);
        let peers = vec![PeerId::random(), PeerId::random()];
        assert_eq!(r.due(now, peers.clone()), None, "not yet");
        let first = r.due(now + SYNC_INTERVAL, peers.clone()).expect("due");
        assert_eq!(r.poll_timeout(), now + SYNC_INTERVAL * 2);
        let second = r.due(now + SYNC_INTERVAL * 2, peers.clone()).expect("due");
        assert_ne!(first, second);
        assert_eq!(r.due(now + SYNC_INTERVAL * 3, Vec::new()), None, "nobody");
    }
}
