//! What a node and a hub do to protect themselves from their peers, one piece for both roles
//! (docs/PROTOCOL.md section 8, "What a node does besides"): offences and bans ([`Bans`]), what
//! a peer's requests may cost us (hellos and history pages answered per peer per second), and
//! saying each kind of offence about a peer once a minute, not once per message. IO-less and
//! bounded; the actors close connections and answer or not as it says.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

use super::bans::{Bans, OFFENDERS_CAP, Offence};
use crate::core::limit::RateLimiter;

/// Hellos answered per peer: a burst of this many (a connection is opened with one hello per
/// room its node is in, up to `MAX_JOINED`, and a second connection may overlap it a moment)...
pub const HELLO_BURST: u32 = crate::net::MAX_JOINED as u32 + 4;
/// ...then this many a second.
pub const HELLO_RATE: u32 = 1;
/// History pages served per peer: a burst of this many (a newcomer's whole history of 10,000
/// events is 40 pages)...
pub const SERVE_BURST: u32 = 48;
/// ...then this many a second (anti-entropy asks one peer every 3 s).
pub const SERVE_RATE: u32 = 2;
/// Each kind of offence is said (warned) once per peer in this long.
pub const SAY_EVERY: Duration = Duration::from_secs(60);

/// Offences, bans, and the per-peer budgets for answering.
#[derive(Debug)]
pub struct Guard {
    bans: Bans,
    hellos: RateLimiter,
    pages: RateLimiter,
    said: HashMap<(PeerId, &'static str), Instant>,
}

impl Default for Guard {
    fn default() -> Self {
        Self {
            bans: Bans::default(),
            hellos: RateLimiter::with_burst(HELLO_RATE, HELLO_BURST),
            pages: RateLimiter::with_burst(SERVE_RATE, SERVE_BURST),
            said: HashMap::new(),
        }
    }
}

impl Guard {
    /// `peer` did something only a liar or a broken node does, at `now` (see
    /// [`Bans::offence`]).
    pub fn offence(&mut self, peer: PeerId, now: Instant, graylisted: bool) -> Offence {
        self.bans.offence(peer, now, graylisted)
    }

    /// Whether `peer` is cut off at `now`.
    pub fn is_banned(&self, peer: &PeerId, now: Instant) -> bool {
        self.bans.is_banned(peer, now)
    }

    /// Whether a hello from `peer` is answered (and taken) at `now`.
    pub fn may_answer_hello(&mut self, peer: PeerId, now: Instant) -> bool {
        self.hellos.allow(peer, now)
    }

    /// Whether a page of history is served to `peer` at `now`; when not, it is told there is
    /// more, with nothing in the page: it comes back with its next round.
    pub fn may_serve_page(&mut self, peer: PeerId, now: Instant) -> bool {
        self.pages.allow(peer, now)
    }

    /// Whether an offence of kind `kind` by `peer` is to be said now: the first in
    /// [`SAY_EVERY`] is; the others are only counted.
    pub fn say(&mut self, peer: PeerId, kind: &'static str, now: Instant) -> bool {
        if let Some(last) = self.said.get(&(peer, kind))
            && now.saturating_duration_since(*last) < SAY_EVERY
        {
            return false;
        }
        if self.said.len() >= OFFENDERS_CAP {
            self.said
                .retain(|_, t| now.saturating_duration_since(*t) < SAY_EVERY);
        }
        if self.said.len() < OFFENDERS_CAP {
            self.said.insert((peer, kind), now);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer asking for history over and over is served a burst, then a steady trickle:
    /// what it can make us upload per second is bounded, whatever it asks.
    #[test]
    fn pages_served_to_one_peer_are_bounded_per_second() {
        let mut g = Guard::default();
        let (greedy, other) = (PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        let burst = (0..1000).filter(|_| g.may_serve_page(greedy, t0)).count();
        assert_eq!(burst, SERVE_BURST as usize);
        let later = t0 + Duration::from_secs(10);
        let more = (0..1000)
            .filter(|_| g.may_serve_page(greedy, later))
            .count();
        assert_eq!(more, 10 * SERVE_RATE as usize);
        assert!(g.may_serve_page(other, later), "other peers are served");
    }

    #[test]
    fn hellos_are_answered_in_a_small_burst_then_one_a_second() {
        let mut g = Guard::default();
        let p = PeerId::random();
        let t0 = Instant::now();
        assert_eq!(
            (0..100).filter(|_| g.may_answer_hello(p, t0)).count(),
            HELLO_BURST as usize
        );
        assert!(g.may_answer_hello(p, t0 + Duration::from_secs(1)));
    }

    /// One line per peer per kind per minute: a peer repeating an offence does not fill the
    /// log or the screen.
    #[test]
    fn each_kind_of_offence_is_said_once_a_minute_per_peer() {
        let mut g = Guard::default();
        let (p, q) = (PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        assert!(g.say(p, "a", t0));
        assert!(!g.say(p, "a", t0 + Duration::from_secs(59)));
        assert!(g.say(p, "b", t0), "another kind");
        assert!(g.say(q, "a", t0), "another peer");
        assert!(g.say(p, "a", t0 + SAY_EVERY));
    }
}
