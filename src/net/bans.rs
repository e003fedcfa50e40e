//! Offences and bans (docs/PROTOCOL.md section 8, "What a node does besides"): invalid messages
//! counted per sending peer in a window, and peers cut off for a while once they pass the
//! limit. IO-less and bounded; the actor closes the connections and tells the user.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// Invalid messages from one peer, within [`OFFENCE_WINDOW`], that get it cut off.
pub const BAN_AFTER: u32 = 5;
/// The window in which offences add up.
pub const OFFENCE_WINDOW: Duration = Duration::from_secs(60);
/// How long a cut-off peer stays cut off.
pub const BAN_FOR: Duration = Duration::from_secs(600);
/// Most peers tracked for offences and bans.
pub const OFFENDERS_CAP: usize = 1024;

/// What one more offence means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offence {
    /// The first in its window (worth a warning).
    First,
    /// Another one, counted (worth a debug line).
    Again(u32),
    /// This one cut the peer off: close its connections, tell the user.
    CutOff(u32),
    /// Already cut off.
    Banned,
}

/// The offence counts and the bans.
#[derive(Debug, Default)]
pub struct Bans {
    offences: HashMap<PeerId, (u32, Instant)>,
    banned: HashMap<PeerId, Instant>,
}

impl Bans {
    /// `peer` sent something invalid at `now`. `graylisted`: gossipsub's own score already
    /// ignores it, so its next invalid messages would never reach us to be counted: cut it
    /// off now.
    pub fn offence(&mut self, peer: PeerId, now: Instant, graylisted: bool) -> Offence {
        if self.is_banned(&peer, now) {
            return Offence::Banned;
        }
        if !self.offences.contains_key(&peer) && self.offences.len() >= OFFENDERS_CAP {
            self.offences
                .retain(|_, (_, since)| now.duration_since(*since) < OFFENCE_WINDOW);
        }
        let count = if self.offences.len() < OFFENDERS_CAP || self.offences.contains_key(&peer) {
            let entry = self.offences.entry(peer).or_insert((0, now));
            if now.duration_since(entry.1) >= OFFENCE_WINDOW {
                *entry = (0, now);
            }
            entry.0 += 1;
            entry.0
        } else {
            // Still full: judged alone, without remembering it.
            1
        };
        if count >= BAN_AFTER || graylisted {
            self.ban(peer, now);
            return Offence::CutOff(count);
        }
        if count == 1 {
            Offence::First
        } else {
            Offence::Again(count)
        }
    }

    /// Cuts `peer` off for [`BAN_FOR`] from `now`.
    pub fn ban(&mut self, peer: PeerId, now: Instant) {
        if self.banned.len() >= OFFENDERS_CAP {
            self.banned.retain(|_, until| *until > now);
        }
        if self.banned.len() < OFFENDERS_CAP {
            self.banned.insert(peer, now + BAN_FOR);
        }
    }

    /// Whether `peer` is cut off at `now`.
    pub fn is_banned(&self, peer: &PeerId, now: Instant) -> bool {
        self.banned.get(peer).is_some_and(|until| *until > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> PeerId {
        PeerId::random()
    }

    /// [`BAN_AFTER`] offences within the window cut a peer off for [`BAN_FOR`]; then it is free
    /// again.
    #[test]
    fn given_repeated_offences_when_they_reach_the_limit_then_the_peer_is_cut_off_for_a_while() {
        let now = Instant::now();
        let mut bans = Bans::default();
        let p = peer();
        assert_eq!(bans.offence(p, now, false), Offence::First);
        for n in 2..BAN_AFTER {
            assert_eq!(bans.offence(p, now, false), Offence::Again(n));
        }
        assert_eq!(bans.offence(p, now, false), Offence::CutOff(BAN_AFTER));
        assert!(bans.is_banned(&p, now + BAN_FOR - Duration::from_millis(1)));
        assert_eq!(bans.offence(p, now, false), Offence::Banned);
        assert!(!bans.is_banned(&p, now + BAN_FOR));
    }

    #[test]
    fn offences_in_different_windows_do_not_add_up() {
        let now = Instant::now();
        let mut bans = Bans::default();
        let p = peer();
        for i in 0..2 * BAN_AFTER {
            let at = now + OFFENCE_WINDOW * (i / (BAN_AFTER - 1));
            assert!(!matches!(bans.offence(p, at, false), Offence::CutOff(_)));
        }
    }

    #[test]
    fn a_graylisted_peer_is_cut_off_at_once() {
        let now = Instant::now();
        let mut bans = Bans::default();
        let p = peer();
        assert_eq!(bans.offence(p, now, true), Offence::CutOff(1));
        assert!(bans.is_banned(&p, now));
    }

    #[test]
    fn the_tables_are_bounded() {
        let now = Instant::now();
        let mut bans = Bans::default();
        for _ in 0..OFFENDERS_CAP + 10 {
            bans.offence(peer(), now, false);
            bans.ban(peer(), now);
        }
        assert!(bans.offences.len() <= OFFENDERS_CAP);
        assert!(bans.banned.len() <= OFFENDERS_CAP);
    }
}
