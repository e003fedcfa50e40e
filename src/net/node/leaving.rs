//! Leaving (docs/PROTOCOL.md section 10, "Leaving"): our leave is stamped, goes out like any
//! event, and the node keeps driving the swarm until every peer it went to has hung up (peers
//! hang up on a leaver as soon as they accept its leave: the acknowledgment that the frame left
//! the machine) or [`LEAVE_LINGER`] has passed. IO-less.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// How long a leaving node keeps the swarm running for its leave to reach its peers.
pub const LEAVE_LINGER: Duration = Duration::from_millis(1500);
/// Most extra time a leaving node gives its own events still waiting for their turn under its
/// pace (at most 64 with peers there: under 4 s at the default rate), so that the end of a
/// piped burst is not pushed out at once, over receivers' rate limits, and lost.
pub const PACED_LINGER: Duration = Duration::from_secs(4);

/// Where our departure stands.
#[derive(Debug)]
pub struct Leaving {
    /// When we give up and exit anyway.
    deadline: Instant,
    /// Once the leave is out: the peers that had it sent to them and must still hang up.
    waiting: Option<HashSet<PeerId>>,
}

impl Leaving {
    /// Leaving from `now`, with `paced` more for our events still waiting for their turn
    /// (at most [`PACED_LINGER`]).
    pub fn new(now: Instant, paced: Duration) -> Self {
        Self {
            deadline: now + LEAVE_LINGER + paced.min(PACED_LINGER),
            waiting: None,
        }
    }

    /// Whether the leave is out (or given up on).
    pub fn is_sent(&self) -> bool {
        self.waiting.is_some()
    }

    /// Whether the linger has run out: whatever waits is pushed out as it is.
    pub fn must_force(&self, now: Instant) -> bool {
        now >= self.deadline
    }

    /// The leave went to these peers; they must hang up (none: nobody to wait for).
    pub fn sent_to(&mut self, peers: HashSet<PeerId>) {
        self.waiting = Some(peers);
    }

    /// Whether we may exit: every peer that got the leave has hung up, or the linger ran out.
    pub fn is_done(&self, now: Instant, connected: impl Fn(&PeerId) -> bool) -> bool {
        now >= self.deadline
            || self
                .waiting
                .as_ref()
                .is_some_and(|w| w.iter().all(|p| !connected(p)))
    }

    /// When to give up.
    pub fn poll_timeout(&self) -> Instant {
        self.deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The node exits as soon as everyone who got the leave hung up, and at the linger's end
    /// at the latest.
    #[test]
    fn given_a_leave_sent_when_peers_hang_up_or_time_runs_out_then_we_are_done() {
        let now = Instant::now();
        let (a, b) = (PeerId::random(), PeerId::random());
        let mut l = Leaving::new(now, Duration::ZERO);
        assert!(!l.is_sent());
        assert!(!l.is_done(now, |_| false), "not sent yet");
        l.sent_to([a, b].into_iter().collect());
        assert!(!l.is_done(now, |p| *p == b), "b still connected");
        assert!(l.is_done(now, |_| false));
        assert!(
            l.is_done(now + LEAVE_LINGER, |_| true),
            "the linger ran out"
        );
        assert!(l.must_force(l.poll_timeout()));
    }

    #[test]
    fn with_nobody_to_wait_for_we_are_done_at_once() {
        let now = Instant::now();
        let mut l = Leaving::new(now, Duration::ZERO);
        l.sent_to(HashSet::new());
        assert!(l.is_done(now, |_| true));
    }
}
