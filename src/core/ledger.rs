//! One room's validated ledger (docs/PROTOCOL.md, sections 6 "Sync", 8 "Validation" and
//! 9 "Clock rules"): the topic, the clock, the transcript, the roster, the per-author rate and
//! the one admit pipeline every received event goes through. Both roles hold it: a participant's
//! `Room` (`src/core/room`) holds one beside its participant-only state, and a hub holds one
//! per room it serves, so the rules cannot drift between them. IO-less: `now` is handed in.

use std::time::Instant;

use libp2p::PeerId;

use super::clock::LamportClock;
use super::event::{Body, Event, SignedEvent};
use super::hello::Hello;
use super::limit::RateLimiter;
use super::roster::{Presence, Roster};
use super::sync::{SyncRequest, SyncResponse};
use super::transcript::Transcript;
use super::verdict::{Rejection, Verdict};

/// A received stamp may be at most this far ahead of the local clock.
pub const MAX_CLOCK_JUMP: u64 = 1 << 32;
/// No stamp may reach this value: it leaves the clock room for centuries of honest chat.
pub const MAX_STAMP: u64 = 1 << 62;

/// Whose ledger it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keeper {
    /// A participant: it signs events with the key of `me`, numbering this run's above
    /// `first_seq`; its clock counts every event (`C := max(C, t) + 1`).
    Participant {
        /// Its peer id.
        me: PeerId,
        /// The sequence number before this run's first event.
        first_seq: u64,
    },
    /// A hub keeping the room's history: it signs nothing, its clock is the highest stamp it
    /// has taken, and its hello says it keeps history.
    Archive,
}

/// One room's validated state.
#[derive(Debug)]
pub struct Ledger {
    topic: String,
    keeper: Keeper,
    clock: LamportClock,
    transcript: Transcript,
    roster: Roster,
    limiter: RateLimiter,
}

impl Ledger {
    /// An empty ledger of room `topic`, keeping at most `history` events, taking at most
    /// `max_rate` live events a second from each author.
    pub fn new(topic: String, keeper: Keeper, history: usize, max_rate: u32) -> Self {
        Self {
            topic,
            keeper,
            clock: LamportClock::new(),
            transcript: Transcript::new(history),
            roster: Roster::default(),
            limiter: RateLimiter::new(max_rate),
        }
    }

    /// The room's topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The clock.
    pub fn clock(&self) -> u64 {
        self.clock.now()
    }

    /// The events kept, in total order.
    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// Who is and was here.
    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// The sustained rate of live events taken per author, per second.
    pub fn max_rate(&self) -> u32 {
        self.limiter.rate()
    }

    /// Whether `peer` is a present participant.
    pub fn is_present(&self, peer: &PeerId) -> bool {
        self.roster.get(peer).is_some_and(|p| p.present)
    }

    /// The stamp rule, the same for every role: under 2^62 (or the event is invalid for
    /// everyone), and at most 2^32 ahead of our clock (or it is not for us, though it may be
    /// for a node whose clock is further on).
    pub fn check_stamp(&self, stamp: u64) -> Result<(), Rejection> {
        let local = self.clock.now();
        if stamp >= MAX_STAMP {
            return Err(Rejection::StampTooFar { stamp, local });
        }
        if stamp > local.saturating_add(MAX_CLOCK_JUMP) {
            return Err(Rejection::StampAhead { stamp, local });
        }
        Ok(())
    }

    /// Everything [`Ledger::accept`] would refuse, without taking the event: another room, our
    /// own key used elsewhere, the stamp rule. (Its author's signature was checked when it was
    /// decoded.)
    pub fn check(&self, signed: &SignedEvent) -> Result<(), Rejection> {
        if signed.topic != self.topic {
            return Err(Rejection::OtherRoom(signed.topic.clone()));
        }
        let event = &signed.event;
        // Events signed with our key come back to us. Those this run sent are known; those of
        // an earlier run (numbered at or below this run's first) are ours as much as anyone's.
        // Only one numbered as this run's that this run never sent is refused.
        if let Keeper::Participant { me, first_seq } = self.keeper
            && event.author == me
            && event.seq > first_seq
            && !self.transcript.is_known(event)
        {
            return Err(Rejection::ForeignOwn { seq: event.seq });
        }
        self.check_stamp(event.lamport)
    }

    /// The admit pipeline for a live event: decoded -> author cut off? -> checks -> known ->
    /// rate -> taken. Invalid is invalid whatever the rate: checked first, so that it counts.
    /// A known event is not charged to its author's rate (a replayer would drain it).
    pub fn admit<E: std::fmt::Display>(
        &mut self,
        decoded: Result<SignedEvent, E>,
        cut_off: bool,
        now: Instant,
    ) -> Verdict {
        let signed = match decoded {
            Ok(signed) => signed,
            Err(e) => return Verdict::refused(None, Rejection::Malformed(e.to_string())),
        };
        let author = signed.event.author;
        if cut_off {
            return Verdict::refused(Some(author), Rejection::CutOff(author));
        }
        if let Err(reason) = self.check(&signed) {
            return Verdict::refused(Some(author), reason);
        }
        if self.transcript.is_known(&signed.event) {
            return Verdict::Known(author);
        }
        if !self.limiter.allow(author, now) {
            return Verdict::Limited(signed.event);
        }
        match self.accept(signed) {
            Ok(Some(event)) => Verdict::Accept(event),
            Ok(None) => Verdict::Known(author),
            Err(reason) => Verdict::refused(Some(author), reason),
        }
    }

    /// Checks and takes an event, live or learned by sync: merges the clock, updates the
    /// roster, keeps it. Returns the event when it was new.
    pub fn accept(&mut self, signed: SignedEvent) -> Result<Option<Event>, Rejection> {
        self.check(&signed)?;
        if self.transcript.is_known(&signed.event) {
            return Ok(None);
        }
        let stamp = signed.event.lamport;
        match self.keeper {
            Keeper::Participant { .. } => {
                self.clock.receive(stamp);
            }
            Keeper::Archive => self.clock.merge(stamp),
        }
        self.update_presence(&signed.event);
        let event = signed.event.clone();
        self.transcript.insert(signed);
        Ok(Some(event))
    }

    /// The stamp for our next event (`C := C + 1`).
    pub fn tick(&mut self) -> u64 {
        self.clock.tick()
    }

    /// Records one of our own events, stamped with [`Ledger::tick`] and signed.
    pub fn record_own(&mut self, signed: SignedEvent) {
        self.update_presence(&signed.event);
        self.transcript.insert(signed);
    }

    /// Presence changes with joins and leaves only: a hello lists each participant's join.
    fn update_presence(&mut self, event: &Event) {
        let present = match event.body {
            Body::Join => true,
            Body::Leave | Body::Lost { .. } => false,
            Body::Message(_) => return,
        };
        let (who, user) = event.participant();
        // A lost announcement is not the subject's own event: its number is not theirs.
        let seq = match event.body {
            Body::Lost { .. } => 0,
            _ => event.seq,
        };
        self.roster.update(
            who,
            Presence {
                user: user.clone(),
                key: event.order_key(),
                lamport: event.lamport,
                seq,
                present,
            },
        );
    }

    /// Our hello for this room: the clock, who is present, and whether we keep history for
    /// others (a hub).
    pub fn hello(&self) -> Hello {
        Hello {
            topic: self.topic.clone(),
            lamport: self.clock.now(),
            participants: self.roster.participants(),
            archive: self.keeper == Keeper::Archive,
        }
    }

    /// Takes a peer's hello: merges its clock and the sender's own entry (only the sender speaks
    /// for itself: other entries are unsigned hearsay; other participants are learned from their
    /// own signed joins). Returns whether the sender listed itself, as a participant does.
    pub fn merge_hello(&mut self, from: PeerId, hello: Hello) -> Result<bool, Rejection> {
        if hello.topic != self.topic {
            return Err(Rejection::OtherRoom(hello.topic));
        }
        // Only the absolute bound: a hello is how a newcomer learns how far the room's clock
        // has come, however far that is from its own.
        if hello.lamport >= MAX_STAMP {
            return Err(Rejection::StampTooFar {
                stamp: hello.lamport,
                local: self.clock.now(),
            });
        }
        self.clock.merge(hello.lamport);
        let mut listed = false;
        for p in hello.participants {
            if p.peer != from || p.lamport >= MAX_STAMP {
                continue;
            }
            listed = true;
            self.roster.update(
                p.peer,
                Presence {
                    user: p.user,
                    key: super::event::OrderKey::new(p.lamport, p.peer.to_bytes(), p.seq),
                    lamport: p.lamport,
                    seq: p.seq,
                    present: true,
                },
            );
        }
        Ok(listed)
    }

    /// What we have, for a peer to send us what we lack.
    pub fn sync_request(&self) -> SyncRequest {
        self.transcript.sync_request(&self.topic)
    }

    /// The oldest page of what a peer lacks (nothing for another room's request).
    pub fn handle_sync_request(&self, req: &SyncRequest) -> SyncResponse {
        self.transcript.answer(&self.topic, req)
    }
}

#[cfg(test)]
mod tests;
