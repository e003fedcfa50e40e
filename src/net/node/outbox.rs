//! The outbox: our events waiting for a subscribed peer (docs/PROTOCOL.md section 10,
//! "Alone"), or for their turn under our own rate. gossipsub drops a publish that no peer is
//! subscribed to, so an event that finds nobody waits here, in order, and goes out when someone
//! arrives. And every receiver drops live events beyond an author's rate (section 8; sync brings
//! them later, marked caught up): so a burst (a long paste, a pipe) is paced here, a little under
//! the rate receivers allow, instead of being dropped there. IO-less: the actor hands the front
//! to gossipsub and says what became of it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use libp2p::PeerId;

use crate::core::limit::RateLimiter;
use crate::core::room::PENDING_COMMANDS_CAP;

/// Most events waiting for a peer to subscribe before lines are refused.
pub const OUTBOX_CAP: usize = 1024;
/// How often a non-empty outbox is retried even without a subscription event.
pub const OUTBOX_RETRY: Duration = Duration::from_millis(500);
/// The hard bound: lines are refused at [`OUTBOX_CAP`] before they are stamped; only a join, a
/// leave and lines typed before the join can come on top.
pub const OUTBOX_HARD_CAP: usize = OUTBOX_CAP + PENDING_COMMANDS_CAP + 2;

/// An event waiting for a subscribed peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// The signed event's bytes.
    pub bytes: Vec<u8>,
    /// Its stamp (for the log and the user).
    pub lamport: u64,
    /// Whether it is a message (what the user is told about), not a join or leave.
    pub is_message: bool,
}

/// The queue, its retry timer, our own pace and whether the user was told that lines wait.
#[derive(Debug)]
pub struct Outbox {
    queue: VecDeque<Queued>,
    retry_at: Option<Instant>,
    told: bool,
    /// Our own events under our own rate (a bucket keyed by our peer id).
    pace: RateLimiter,
    me: PeerId,
}

/// The outbox is full: the event is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

impl Outbox {
    /// An empty outbox for `me`, pacing our events a tenth under `rate` (events per second, the
    /// rate receivers accept from one author; bursts of twice that), so that arrival jitter does
    /// not push a paced burst over a receiver's limit.
    pub fn new(me: PeerId, rate: u32) -> Self {
        Self {
            queue: VecDeque::new(),
            retry_at: None,
            told: false,
            pace: RateLimiter::new(rate.saturating_sub(rate / 10).max(1)),
            me,
        }
    }

    /// Takes our turn to send one event at `now`, if the pace allows; otherwise the retry timer
    /// is set to when it will.
    pub fn take_turn(&mut self, now: Instant) -> bool {
        if self.pace.allow(self.me, now) {
            return true;
        }
        self.retry_at = Some(now + self.pace.wait(&self.me).max(Duration::from_millis(1)));
        false
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// How many events wait.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether a new line must be refused before it is stamped.
    pub fn refuses_lines(&self) -> bool {
        self.queue.len() >= OUTBOX_CAP
    }

    /// Queues an event at `now`. Returns whether the user should now be told that lines wait
    /// (a message, nobody subscribed, and not told yet in this wait).
    pub fn push(&mut self, q: Queued, nobody: bool, now: Instant) -> Result<bool, Full> {
        if self.queue.len() >= OUTBOX_HARD_CAP {
            return Err(Full);
        }
        let tell = q.is_message && nobody && !self.told;
        self.told |= tell;
        self.queue.push_back(q);
        // An earlier turn (the pace's) stands.
        let retry = now + OUTBOX_RETRY;
        self.retry_at = Some(
            self.retry_at
                .filter(|t| *t > now)
                .map_or(retry, |t| t.min(retry)),
        );
        Ok(tell)
    }

    /// How long our pace takes to send what waits (if peers are there to take it).
    pub fn drain_time(&self) -> Duration {
        Duration::from_secs_f64(self.queue.len() as f64 / f64::from(self.pace.rate()))
    }

    /// Whether our event stamped `lamport` still waits here.
    pub fn holds(&self, lamport: u64) -> bool {
        self.queue.iter().any(|q| q.lamport == lamport)
    }

    /// The oldest event, to hand to gossipsub.
    pub fn front(&self) -> Option<&Queued> {
        self.queue.front()
    }

    /// The oldest event has left our hands (sent, cached or refused).
    pub fn pop_front(&mut self) -> Option<Queued> {
        self.queue.pop_front()
    }

    /// Not flushed now (peers still settling): try again later.
    pub fn hold(&mut self, now: Instant) {
        if !self.queue.is_empty() {
            self.retry_at = Some(now + OUTBOX_RETRY);
        }
    }

    /// A flush ended at `now` having sent `sent_messages` messages to someone. Returns how many
    /// to report as sent, when the user had been told that lines wait.
    pub fn flushed(&mut self, sent_messages: usize, now: Instant) -> Option<usize> {
        let paced = self
            .retry_at
            .filter(|t| *t > now && *t < now + OUTBOX_RETRY);
        self.retry_at = (!self.queue.is_empty()).then(|| paced.unwrap_or(now + OUTBOX_RETRY));
        if sent_messages > 0 && self.told {
            self.told = false;
            return Some(sent_messages);
        }
        None
    }

    /// Empties the outbox (leaving with nobody to take it); returns how many messages were never
    /// delivered.
    pub fn abandon(&mut self) -> usize {
        let unsent = self.queue.iter().filter(|q| q.is_message).count();
        self.queue.clear();
        self.retry_at = None;
        unsent
    }

    /// When to try again.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.retry_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(lamport: u64) -> Queued {
        Queued {
            bytes: vec![1, 2, 3],
            lamport,
            is_message: true,
        }
    }

    /// Lines typed alone wait in order; the user hears once that they wait, and once how many
    /// went when someone came.
    #[test]
    fn given_lines_while_alone_when_a_peer_comes_then_they_go_in_order_and_the_user_hears_twice() {
        let now = Instant::now();
        let mut out = Outbox::new(PeerId::random(), 20);
        assert_eq!(out.push(line(1), true, now), Ok(true));
        assert_eq!(
            out.push(line(2), true, now),
            Ok(false),
            "told once per wait"
        );
        assert_eq!(out.poll_timeout(), Some(now + OUTBOX_RETRY));
        let later = now + Duration::from_secs(1);
        out.hold(later);
        assert_eq!(out.poll_timeout(), Some(later + OUTBOX_RETRY));
        assert_eq!(out.pop_front().map(|q| q.lamport), Some(1));
        assert_eq!(out.pop_front().map(|q| q.lamport), Some(2));
        assert_eq!(out.flushed(2, later), Some(2));
        assert_eq!(out.poll_timeout(), None);
        assert_eq!(out.flushed(1, later), None, "said once");
        assert_eq!(out.push(line(3), true, later), Ok(true), "a new wait");
    }

    #[test]
    fn a_join_or_a_leave_is_not_worth_telling_and_the_queue_is_bounded() {
        let now = Instant::now();
        let mut out = Outbox::new(PeerId::random(), 20);
        let join = Queued {
            is_message: false,
            ..line(1)
        };
        assert_eq!(out.push(join, true, now), Ok(false));
        for i in 1..OUTBOX_HARD_CAP {
            assert!(out.push(line(i as u64), false, now).is_ok());
        }
        assert!(out.refuses_lines());
        assert_eq!(out.push(line(0), false, now), Err(Full));
        assert_eq!(out.abandon(), OUTBOX_HARD_CAP - 1);
        assert!(out.is_empty());
    }

    /// A burst is paced a little under the receivers' rate: the bucket's burst at once, then
    /// turns spaced by the rate, each miss setting the retry timer to the next turn.
    #[test]
    fn a_burst_is_paced_under_the_rate() {
        let now = Instant::now();
        let mut out = Outbox::new(PeerId::random(), 20);
        let burst = (0..100).take_while(|_| out.take_turn(now)).count();
        assert_eq!(burst, 36, "twice 18, a tenth under 20");
        let next = out.poll_timeout().expect("a turn to wait for");
        assert!(
            next > now && next <= now + Duration::from_millis(60),
            "{:?}",
            next - now
        );
        assert!(out.take_turn(next));
    }
}
