//! Live events dropped over their author's rate (docs/PROTOCOL.md section 8), watched until
//! sync has had its chance to bring them back. The rate limit drops the live copy only: the
//! author (or anyone who has the event) still offers it to anti-entropy sync, so most of a burst
//! arrives a few seconds later, marked as caught up. The user hears of a drop only when some of
//! the events are still missing after that, and never of the ones that came back.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

use crate::core::event::Event;

/// How long after the first drop the watch looks again: two anti-entropy rounds and a margin.
pub const DROP_RECHECK: Duration = Duration::from_secs(7);
/// Most dropped events remembered per author (the rest of a bigger burst still counts).
pub const DROPPED_PER_AUTHOR_CAP: usize = 1024;
/// Most authors watched at once.
pub const DROP_AUTHORS_CAP: usize = 256;

/// The dropped events of one author.
#[derive(Debug)]
struct Watch {
    user: String,
    /// `(seq, lamport)` of each dropped event.
    events: Vec<(u64, u64)>,
    /// Dropped but not remembered (over the cap): missing as far as we can tell.
    unrecorded: usize,
    check_at: Instant,
}

/// What the user should hear: `missing` events of `peer` (signed as `user`) never arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// The author.
    pub peer: PeerId,
    /// The name its events carry.
    pub user: String,
    /// How many are still missing.
    pub missing: usize,
}

/// The watch over dropped events.
#[derive(Debug, Default)]
pub struct DropWatch {
    authors: HashMap<PeerId, Watch>,
}

impl DropWatch {
    /// `event` was dropped at `now` over its author's rate. Returns whether it starts a new
    /// watch for its author (worth a line in the log; the rest of the burst is not).
    pub fn record(&mut self, event: &Event, now: Instant) -> bool {
        let fresh = !self.authors.contains_key(&event.author);
        if fresh && self.authors.len() >= DROP_AUTHORS_CAP {
            return false;
        }
        let w = self.authors.entry(event.author).or_insert_with(|| Watch {
            user: event.user.as_str().to_owned(),
            events: Vec::new(),
            unrecorded: 0,
            check_at: now + DROP_RECHECK,
        });
        if w.events.len() < DROPPED_PER_AUTHOR_CAP {
            w.events.push((event.seq, event.lamport));
        } else {
            w.unrecorded += 1;
        }
        fresh
    }

    /// When [`DropWatch::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.authors.values().map(|w| w.check_at).min()
    }

    /// Looks again at the watches that are due: `known` says whether an event
    /// `(author, seq, lamport)` has arrived since. Returns the authors with events still missing.
    pub fn handle_timeout(
        &mut self,
        now: Instant,
        known: impl Fn(&PeerId, u64, u64) -> bool,
    ) -> Vec<Missing> {
        let due: Vec<PeerId> = self
            .authors
            .iter()
            .filter(|(_, w)| w.check_at <= now)
            .map(|(p, _)| *p)
            .collect();
        let mut out = Vec::new();
        for peer in due {
            let Some(w) = self.authors.remove(&peer) else {
                continue;
            };
            let missing = w
                .events
                .iter()
                .filter(|(seq, lamport)| !known(&peer, *seq, *lamport))
                .count()
                + w.unrecorded;
            if missing > 0 {
                out.push(Missing {
                    peer,
                    user: w.user,
                    missing,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use libp2p::identity::Keypair;

    use super::*;
    use crate::core::event::{Body, Text, Username};
    use crate::core::time::WallTime;

    fn event(author: PeerId, seq: u64) -> Event {
        Event {
            author,
            seq,
            lamport: seq,
            time: WallTime::EPOCH,
            user: Username::new("flooder").unwrap(),
            body: Body::Message(Text::new("x").unwrap()),
        }
    }

    /// Events that sync brought back are never reported; those still missing are, once.
    #[test]
    fn given_drops_when_sync_brings_some_back_then_only_the_rest_is_reported() {
        let now = Instant::now();
        let author = Keypair::generate_ed25519().public().to_peer_id();
        let mut watch = DropWatch::default();
        for seq in 1..=10 {
            watch.record(&event(author, seq), now);
        }
        assert_eq!(watch.poll_timeout(), Some(now + DROP_RECHECK));
        let nothing = watch.handle_timeout(now + DROP_RECHECK / 2, |_, _, _| false);
        assert!(nothing.is_empty(), "not due yet");
        let back: HashSet<u64> = (1..=7).collect();
        let report = watch.handle_timeout(now + DROP_RECHECK, |p, seq, _| {
            *p == author && back.contains(&seq)
        });
        assert_eq!(
            report,
            vec![Missing {
                peer: author,
                user: "flooder".to_owned(),
                missing: 3
            }]
        );
        assert_eq!(watch.poll_timeout(), None, "reported once");
    }

    #[test]
    fn given_drops_when_all_come_back_then_nothing_is_said() {
        let now = Instant::now();
        let author = Keypair::generate_ed25519().public().to_peer_id();
        let mut watch = DropWatch::default();
        for seq in 1..=60 {
            watch.record(&event(author, seq), now);
        }
        assert!(
            watch
                .handle_timeout(now + DROP_RECHECK, |_, _, _| true)
                .is_empty()
        );
        assert_eq!(watch.poll_timeout(), None);
    }

    #[test]
    fn the_watch_is_bounded_and_counts_what_it_could_not_keep() {
        let now = Instant::now();
        let author = Keypair::generate_ed25519().public().to_peer_id();
        let mut watch = DropWatch::default();
        for seq in 1..=(DROPPED_PER_AUTHOR_CAP as u64 + 5) {
            watch.record(&event(author, seq), now);
        }
        let report = watch.handle_timeout(now + DROP_RECHECK, |_, _, _| true);
        assert_eq!(report[0].missing, 5);
        for _ in 0..DROP_AUTHORS_CAP + 3 {
            let other = Keypair::generate_ed25519().public().to_peer_id();
            watch.record(&event(other, 1), now);
        }
        assert_eq!(watch.authors.len(), DROP_AUTHORS_CAP);
    }
}
