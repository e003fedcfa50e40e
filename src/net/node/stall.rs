//! Noticing that the node itself was stalled: stopped (SIGSTOP, a suspended laptop) or starved
//! of CPU. Its loop then wakes much later than it planned, and its peers' silence meanwhile (and
//! the connections they closed on it) is its own doing, not theirs. IO-less.

use std::time::{Duration, Instant};

use crate::net::liveness::LIVENESS_TIMEOUT;

/// Waking this much later than planned means the node was stalled.
pub const STALL: Duration = Duration::from_secs(2);

/// When the loop planned to wake, and until when it recovers from a stall.
#[derive(Debug, Default)]
pub struct Stall {
    planned: Option<Instant>,
    recovering_until: Option<Instant>,
}

impl Stall {
    /// The loop goes to sleep until `wake` at the latest.
    pub fn sleeping_until(&mut self, wake: Option<Instant>) {
        self.planned = wake;
    }

    /// The loop woke at `now`. Returns true if that is [`STALL`] later than planned: then every
    /// connection deserves a fresh liveness window, and for one window connections that close
    /// are not taken for vanished peers.
    pub fn woke(&mut self, now: Instant) -> bool {
        let stalled = self.planned.take().is_some_and(|p| now > p + STALL);
        if stalled {
            self.recovering_until = Some(now + LIVENESS_TIMEOUT + STALL);
        }
        stalled
    }

    /// Whether connections closing at `now` may be our own stall's doing.
    pub fn recovering(&self, now: Instant) -> bool {
        self.recovering_until.is_some_and(|t| now < t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_wake_is_a_stall_and_its_recovery_lasts_one_liveness_window() {
        let now = Instant::now();
        let mut s = Stall::default();
        s.sleeping_until(Some(now + Duration::from_secs(1)));
        assert!(
            !s.woke(now + Duration::from_millis(1500)),
            "a little late is fine"
        );
        assert!(!s.recovering(now));
        s.sleeping_until(Some(now + Duration::from_secs(1)));
        let woke = now + Duration::from_secs(10);
        assert!(s.woke(woke));
        assert!(s.recovering(woke + LIVENESS_TIMEOUT));
        assert!(!s.recovering(woke + LIVENESS_TIMEOUT + STALL));
        assert!(
            !s.woke(woke + Duration::from_secs(60)),
            "nothing was planned"
        );
    }
}
