//! The transcript: every event this node knows, deduplicated by `(author, seq)`, kept in total
//! order `(lamport, author, seq)` and bounded to the newest `cap` events.

use std::collections::{BTreeMap, HashMap, HashSet};

use libp2p::PeerId;

use super::event::{Event, OrderKey};

/// Default number of events a transcript keeps.
pub const DEFAULT_HISTORY: usize = 10_000;

/// A bounded, ordered, deduplicated set of events.
#[derive(Debug)]
pub struct Transcript {
    cap: usize,
    events: BTreeMap<OrderKey, Event>,
    ids: HashSet<(PeerId, u64)>,
    /// Per author, the highest sequence number evicted: anything at or below it counts as known,
    /// so an evicted event arriving again is not shown twice.
    floor: HashMap<PeerId, u64>,
}

impl Transcript {
    /// An empty transcript keeping at most `cap` events (at least 1).
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            events: BTreeMap::new(),
            ids: HashSet::new(),
            floor: HashMap::new(),
        }
    }

    /// Whether the event `(author, seq)` is already known.
    pub fn contains(&self, author: &PeerId, seq: u64) -> bool {
        self.ids.contains(&(*author, seq)) || self.floor.get(author).is_some_and(|f| seq <= *f)
    }

    /// Stores `event`; returns false (and stores nothing) when it is already known.
    /// When the transcript is full, the oldest event in total order is dropped.
    pub fn insert(&mut self, event: Event) -> bool {
        if self.contains(&event.author, event.seq) {
            return false;
        }
        self.ids.insert((event.author, event.seq));
        self.events.insert(event.order_key(), event);
        while self.events.len() > self.cap {
            if let Some((_, old)) = self.events.pop_first() {
                self.ids.remove(&(old.author, old.seq));
                let f = self.floor.entry(old.author).or_default();
                *f = (*f).max(old.seq);
            }
        }
        true
    }

    /// The events in total order.
    pub fn iter(&self) -> impl Iterator<Item = &Event> {
        self.events.values()
    }

    /// How many events are kept.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether no event is kept.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::event::{Body, Username};

    fn ev(author: PeerId, seq: u64, lamport: u64) -> Event {
        Event {
            author,
            seq,
            lamport,
            user: Username::new("u").unwrap(),
            body: Body::Join,
        }
    }

    #[test]
    fn orders_by_stamp_then_author_and_drops_duplicates() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let (lo, hi) = if a.to_bytes() < b.to_bytes() {
            (a, b)
        } else {
            (b, a)
        };
        let mut t = Transcript::new(10);
        assert!(t.insert(ev(hi, 1, 5)));
        assert!(t.insert(ev(lo, 1, 5)));
        assert!(t.insert(ev(lo, 2, 3)));
        assert!(!t.insert(ev(lo, 2, 3)));
        let order: Vec<_> = t.iter().map(|e| (e.lamport, e.author)).collect();
        assert_eq!(order, vec![(3, lo), (5, lo), (5, hi)]);
    }

    #[test]
    fn keeps_only_the_newest_cap_events() {
        let a = PeerId::random();
        let mut t = Transcript::new(2);
        for i in 1..=5 {
            t.insert(ev(a, i, i));
        }
        assert_eq!(t.len(), 2);
        assert_eq!(t.iter().map(|e| e.lamport).collect::<Vec<_>>(), vec![4, 5]);
        assert!(t.contains(&a, 1), "an evicted event still counts as known");
        assert!(!t.insert(ev(a, 2, 2)));
    }
}
