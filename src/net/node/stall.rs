//! Noticing that the node itself was stalled: stopped (SIGSTOP, a suspended laptop) or starved
//! of CPU. Its loop then wakes much later than it planned, and its peers' silence meanwhile (and
//! the connections they closed on it) is its own doing, not theirs: connections that close in
//! the next liveness window are not taken for vanished peers at once. Those still unreachable
//! when the window ends are, then (a real partition may have come with the stall). IO-less.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use libp2p::PeerId;

use crate::net::liveness::LIVENESS_TIMEOUT;

/// Waking this much later than planned means the node was stalled. Below the liveness window
/// (a shorter stall cannot have made peers close on us), above any wake-up delay of a busy
/// machine.
pub const STALL: Duration = Duration::from_secs(3);

/// When the loop planned to wake, and the recovery from a stall.
#[derive(Debug, Default)]
pub struct Stall {
    planned: Option<Instant>,
    recovering_until: Option<Instant>,
    /// Peers whose last connection closed during the recovery, to look at again after it.
    deferred: HashSet<PeerId>,
}

impl Stall {
    /// The loop goes to sleep until `wake` at the latest.
    pub fn sleeping_until(&mut self, wake: Option<Instant>) {
        self.planned = wake;
    }

    /// The loop woke at `now`. Returns true if that is [`STALL`] later than planned: then every
    /// connection deserves a fresh liveness window.
    pub fn woke(&mut self, now: Instant) -> bool {
        let stalled = self.planned.take().is_some_and(|p| now > p + STALL);
        if stalled {
            self.recovering_until = Some(now + LIVENESS_TIMEOUT + STALL);
        }
        stalled
    }

    /// The last connection to `peer` closed at `now`. Returns true if that may be our own
    /// stall's doing: then it is not announced now, but looked at again when the recovery ends.
    pub fn defer_if_recovering(&mut self, peer: PeerId, now: Instant) -> bool {
        let recovering = self.recovering_until.is_some_and(|t| now < t);
        if recovering {
            self.deferred.insert(peer);
        }
        recovering
    }

    /// When the recovery ends, if peers wait for it.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.recovering_until.filter(|_| !self.deferred.is_empty())
    }

    /// At `now`, once the recovery is over: the peers whose connections closed during it, to
    /// announce if they are still unreachable.
    pub fn recovered(&mut self, now: Instant) -> Vec<PeerId> {
        if self.recovering_until.is_some_and(|t| now < t) {
            return Vec::new();
        }
        self.recovering_until = None;
        self.deferred.drain().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wake much later than planned is a stall; connections closing in the next window are
    /// deferred, and handed back when it ends.
    #[test]
    fn a_late_wake_is_a_stall_and_closes_during_recovery_are_deferred_not_dropped() {
        let now = Instant::now();
        let mut s = Stall::default();
        s.sleeping_until(Some(now + Duration::from_secs(1)));
        assert!(
            !s.woke(now + Duration::from_millis(2500)),
            "a little late is fine"
        );
        let peer = PeerId::random();
        assert!(!s.defer_if_recovering(peer, now));
        s.sleeping_until(Some(now + Duration::from_secs(1)));
        let woke = now + Duration::from_secs(10);
        assert!(s.woke(woke));
        assert!(s.defer_if_recovering(peer, woke + Duration::from_secs(1)));
        let end = woke + LIVENESS_TIMEOUT + STALL;
        assert_eq!(s.poll_timeout(), Some(end));
        assert!(s.recovered(end - Duration::from_millis(1)).is_empty());
        assert_eq!(s.recovered(end), vec![peer]);
        assert_eq!(s.poll_timeout(), None);
        assert!(!s.defer_if_recovering(peer, end), "over");
        assert!(
            !s.woke(end + Duration::from_secs(60)),
            "nothing was planned"
        );
    }
}
