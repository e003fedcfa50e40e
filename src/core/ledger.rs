//! One room's validated ledger (docs/PROTOCOL.md, sections 6 "Sync", 8 "Validation" and
//! 9 "Clock rules"): the topic, the clock, the transcript, the roster, the per-author rate and
//! the one admit pipeline every received event goes through. Both roles hold it: a participant's
//! `Room` (`src/core/room`) holds one beside its participant-only state, and a hub holds one
//! per room it serves, so the rules cannot drift between them. IO-less: `now` is handed in.

use std::time::Instant;

use libp2p::PeerId;

use super::clock::LamportClock;
use super::event::{Body, Event, SignedEvent, Username};
use super::hello::Hello;
use super::limit::RateLimiter;
use super::roster::{Presence, Roster};
use super::sync::{SyncRequest, SyncResponse};
use super::transcript::{ColdQuery, Holding, Transcript};
use super::verdict::{Rejection, Verdict};

/// A received stamp may be at most this far ahead of the local clock.
pub const MAX_CLOCK_JUMP: u64 = 1 << 32;
/// A stamp further ahead than this is wild, unless we have taken no one else's event yet (a
/// newcomer does not know how far the room's clock has come): an honest node is never this far
/// ahead without events we lack, and sync hands those over first.
pub const WILD_JUMP: u64 = 1 << 24;
/// No stamp may reach this value: it leaves the clock room for centuries of honest chat.
pub const MAX_STAMP: u64 = 1 << 62;
/// By sync, an author's events are taken up to its rate over the span of time its events show,
/// plus this many (section 8). An honest author never signs more than this ahead of its pace:
/// a chitty-node signs typed lines only while fewer than 64 wait for their turn (and 64 before
/// its join), and its pace allows bursts of 36.
pub const SYNC_BURST: u64 = 256;

/// What a page of history taught: the events taken, in the order given, and the offences it
/// showed, each once per page and kind.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Page {
    /// The new events taken.
    pub taken: Vec<Event>,
    /// Events refused: why, and whom it is held against (nobody, when an honest node may have
    /// sent it).
    pub refused: Vec<(Option<PeerId>, Rejection)>,
}

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
    /// Whether an event of someone else's was ever taken: until then the clock says nothing
    /// of the room's, and no stamp is wild.
    heard: bool,
    /// Events newly taken, for the owner to store on disk ([`Ledger::keep_new`]), at most
    /// [`KEPT_CAP`] between two drains.
    kept: Option<Vec<SignedEvent>>,
}

/// Most newly taken events held for the store between two drains ([`Ledger::drain_kept`]):
/// the owner drains after every call, so more means it stopped; what is dropped is stored
/// again the next time it is learned (sync).
pub const KEPT_CAP: usize = 4096;

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
            heard: false,
            kept: None,
        }
    }

    /// From now on, every event newly taken (ours, live, learned by sync) is also held for the
    /// owner to store (see [`Ledger::drain_kept`]), and memory holds only the newest events:
    /// the store answers for the rest.
    pub fn keep_new(&mut self) {
        self.kept.get_or_insert_with(Vec::new);
        self.transcript.spill_to_store();
    }

    /// The events taken since the last drain, in the order they were taken.
    pub fn drain_kept(&mut self) -> Vec<SignedEvent> {
        self.kept.as_mut().map(std::mem::take).unwrap_or_default()
    }

    fn keep(&mut self, signed: &SignedEvent) {
        if let Some(kept) = self.kept.as_mut() {
            if kept.len() < KEPT_CAP {
                kept.push(signed.clone());
            } else {
                tracing::debug!("store queue full; an event is not stored this time");
            }
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
    /// everyone), at most 2^32 ahead of our clock (or it is not for us, though it may be for a
    /// node whose clock is further on), and at most 2^24 ahead once we have heard from the room
    /// (wild: see [`WILD_JUMP`]).
    pub fn check_stamp(&self, stamp: u64) -> Result<(), Rejection> {
        let local = self.clock.now();
        if stamp >= MAX_STAMP {
            return Err(Rejection::StampTooFar { stamp, local });
        }
        if stamp > local.saturating_add(MAX_CLOCK_JUMP) {
            return Err(Rejection::StampAhead { stamp, local });
        }
        if self.heard && stamp > local.saturating_add(WILD_JUMP) {
            return Err(Rejection::StampWild { stamp, local });
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
    ///
    /// `alive` says which participants we have just heard from ourselves: a `lost`
    /// announcement about one of them is recorded (every node holds the same transcript) but
    /// leaves its presence as it was, and the caller blames the announcer.
    pub fn admit<E: std::fmt::Display>(
        &mut self,
        decoded: Result<SignedEvent, E>,
        cut_off: bool,
        now: Instant,
        alive: impl Fn(&PeerId) -> bool,
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
        // Only what is newer than the author's newest event we hold is charged to its rate: an
        // old event replayed (one we never had) would otherwise drain it.
        let fresh = self
            .transcript
            .newest_seq(&author)
            .is_none_or(|newest| signed.event.seq > newest);
        if fresh && !self.limiter.allow(author, now) {
            return Verdict::Limited(signed.event);
        }
        let spare = match &signed.event.body {
            Body::Lost { subject, .. } if alive(subject) => Some(*subject),
            _ => None,
        };
        match self.take(signed, spare, false) {
            Ok(Some(event)) => Verdict::Accept(event),
            Ok(None) => Verdict::Known(author),
            Err(reason) => Verdict::refused(Some(author), reason),
        }
    }

    /// Checks and takes an event, live or learned by sync: merges the clock, updates the
    /// roster, keeps it. Returns the event when it was new.
    pub fn accept(&mut self, signed: SignedEvent) -> Result<Option<Event>, Rejection> {
        self.take(signed, None, false)
    }

    /// [`Ledger::accept`], leaving the presence of `spare` as it is (a `lost` announcement
    /// about a participant we know to be alive). In a `batch` (a page of history), a
    /// participant's clock only adopts the stamp (`C := max(C, T)`); the caller counts the batch
    /// once at its end.
    fn take(
        &mut self,
        signed: SignedEvent,
        spare: Option<PeerId>,
        batch: bool,
    ) -> Result<Option<Event>, Rejection> {
        self.check(&signed)?;
        if self.transcript.is_known(&signed.event) {
            return Ok(None);
        }
        let stamp = signed.event.lamport;
        match self.keeper {
            Keeper::Participant { .. } if !batch => {
                self.clock.receive(stamp);
            }
            Keeper::Participant { .. } => self.clock.merge(stamp),
            Keeper::Archive => self.clock.merge(stamp),
        }
        if !matches!(self.keeper, Keeper::Participant { me, .. } if me == signed.event.author) {
            self.heard = true;
        }
        if spare.is_none_or(|p| p != signed.event.participant().0) {
            self.update_presence(&signed.event);
        }
        let event = signed.event.clone();
        self.keep(&signed);
        self.transcript.insert(signed);
        Ok(Some(event))
    }

    /// Takes a page of history from `from`, in the order given (the oldest first, so that
    /// whatever led an honest node's clock on comes before what it stamped after): each event
    /// is checked as a live one (against the clock as the page has moved it so far), and an
    /// author's events are taken up to what its rate allows over the span of time its events
    /// show ([`Ledger::within_rate`]). The page is one receipt for the clock: a participant's
    /// becomes `max(C, max T) + 1`, not the backlog's size further on (section 9). A refusal is held
    /// against the author when the author itself served it, or when it goes beyond its rate;
    /// against `from` when the event is invalid for everyone.
    pub fn take_page(&mut self, from: PeerId, events: Vec<SignedEvent>) -> Page {
        self.take_events(from, events, true)
    }

    /// Takes what our own store holds: its newest `events` (oldest first) into memory, as one
    /// page without the per-author bound (they were within it when taken, perhaps under another
    /// `--max-rate`), and what it `holds` of the rest; from then on, every event newly taken is
    /// held for the store ([`Ledger::keep_new`]).
    pub fn restore_stored(&mut self, events: Vec<SignedEvent>, holds: &[Holding]) -> Page {
        let page = self.restore(events);
        self.keep_new();
        for h in holds {
            self.transcript.hold_stored(h);
        }
        page
    }

    /// Takes events read back from our own store, oldest first, as one page, without the
    /// per-author bound.
    pub fn restore(&mut self, events: Vec<SignedEvent>) -> Page {
        // Served by nobody: whatever is refused is held against no one.
        let mut page = self.take_events(PeerId::random(), events, false);
        for (blamed, _) in &mut page.refused {
            *blamed = None;
        }
        page
    }

    fn take_events(&mut self, from: PeerId, events: Vec<SignedEvent>, bounded: bool) -> Page {
        let mut page = Page::default();
        for signed in events {
            let author = signed.event.author;
            let result = if self.transcript.is_known(&signed.event) {
                Ok(None)
            } else if bounded && !self.within_rate(&signed.event) {
                Err(Rejection::BeyondRate { author })
            } else {
                self.take(signed, None, true)
            };
            match result {
                Ok(Some(event)) => page.taken.push(event),
                Ok(None) => {}
                Err(reason) => {
                    let blamed = match reason {
                        Rejection::BeyondRate { .. } => Some(author),
                        Rejection::ForeignOwn { .. } | Rejection::CutOff(_) => None,
                        _ if reason.only_author_to_blame() => (author == from).then_some(author),
                        _ => Some(from),
                    };
                    let seen = page
                        .refused
                        .iter()
                        .any(|(p, r)| *p == blamed && r.kind() == reason.kind());
                    if !seen {
                        page.refused.push((blamed, reason));
                    }
                }
            }
        }
        if !page.taken.is_empty() && matches!(self.keeper, Keeper::Participant { .. }) {
            self.clock.tick();
        }
        page
    }

    /// Whether one more event of its author, learned by sync, stays within what the author
    /// could have sent: its rate (ours, at least the default) over the span between the earliest and latest `time` of its
    /// events (those held and this one), plus [`SYNC_BURST`]. (Live events have the
    /// token bucket.) A backlog of honest chat always fits; one signed in a burst does not.
    fn within_rate(&self, event: &Event) -> bool {
        let t = event.time.unix_millis();
        let (held, first, last) = self
            .transcript
            .author_span(&event.author)
            .unwrap_or((0, t, t));
        let span_secs = last.max(t).saturating_sub(first.min(t)) / 1000;
        // Never below the protocol's default: a node configured with a lower limit for live
        // events must not blame an honest author paced at the default.
        let rate = u64::from(self.limiter.rate().max(super::limit::DEFAULT_RATE));
        let allowed = rate.saturating_mul(span_secs).saturating_add(SYNC_BURST);
        (held as u64) < allowed
    }

    /// The stamp for our next event (`C := C + 1`).
    pub fn tick(&mut self) -> u64 {
        self.clock.tick()
    }

    /// Records one of our own events, stamped with [`Ledger::tick`] and signed.
    pub fn record_own(&mut self, signed: SignedEvent) {
        self.update_presence(&signed.event);
        self.keep(&signed);
        self.transcript.insert(signed);
    }

    /// Presence follows a participant's newest join, leave or `lost` in total order; a
    /// message of its own is a sign of presence too when nothing else is known of it (its join
    /// is older than what we hold) or when it is newer than the `lost` (it is still here).
    /// Order-independent: what events arrive in which order changes nothing
    /// ([`Presence::settle`]).
    fn update_presence(&mut self, event: &Event) {
        // A sealed event says nothing a node without the room's key could read: no presence.
        if matches!(event.body, Body::Sealed) {
            return;
        }
        let (who, user) = event.participant();
        let key = event.order_key();
        let mut p = self.roster.get(&who).cloned().unwrap_or_else(|| Presence {
            user: user.clone(),
            key: key.clone(),
            lamport: event.lamport,
            seq: event.seq,
            present: true,
            left: false,
            lost: false,
            from_event: false,
            said: None,
        });
        match event.body {
            Body::Message(_) => {
                if p.said.as_ref().is_none_or(|s| key > *s) {
                    p.said = Some(key);
                }
            }
            Body::Sealed => {}
            Body::Join | Body::Leave | Body::Lost { .. } => {
                if !p.from_event || key >= p.key {
                    p.user = user.clone();
                    p.key = key;
                    p.lamport = event.lamport;
                    // A lost announcement is not the subject's own event: its number is not
                    // theirs.
                    p.seq = match event.body {
                        Body::Lost { .. } => 0,
                        _ => event.seq,
                    };
                    p.from_event = true;
                    p.left = matches!(event.body, Body::Leave);
                    p.lost = matches!(event.body, Body::Lost { .. });
                }
            }
        }
        p.settle();
        self.roster.set(who, p);
    }

    /// Our hello for this room: the clock, who is present, and whether we keep history for
    /// others (a hub).
    pub fn hello(&self) -> Hello {
        let mut participants = self.roster.participants();
        if crate::private::is_private_topic(&self.topic) {
            // A hello is not sealed: in a private room it names nobody (anyone who connects
            // reads it); only who is here, by peer id, which every event shows anyway.
            let member = Username::new("member").expect("a valid username");
            for p in &mut participants {
                p.user = member.clone();
            }
        }
        Hello {
            topic: self.topic.clone(),
            lamport: self.clock.now(),
            participants,
            archive: self.keeper == Keeper::Archive,
        }
    }

    /// Takes a peer's hello. It speaks only for its sender, and moves nothing: its clock is a
    /// claim (only signed events move ours, or anyone could push our stamps to where others
    /// refuse them), and its participants are unsigned (`/who` comes from signed events). A
    /// claim no honest node can make is refused, to be held against the sender. Returns whether
    /// the sender lists itself, as a joined participant does: the join waits for its history.
    pub fn merge_hello(&mut self, from: PeerId, hello: Hello) -> Result<bool, Rejection> {
        if hello.topic != self.topic {
            return Err(Rejection::OtherRoom(hello.topic));
        }
        let local = self.clock.now();
        if hello.lamport >= MAX_STAMP || hello.lamport > local.saturating_add(MAX_CLOCK_JUMP) {
            return Err(Rejection::WildClaim {
                claim: hello.lamport,
                local,
            });
        }
        Ok(hello.participants.iter().any(|p| p.peer == from))
    }

    /// What we have, for a peer to send us what we lack.
    pub fn sync_request(&self) -> SyncRequest {
        self.transcript.sync_request(&self.topic)
    }

    /// The oldest page of what a peer lacks (nothing for another room's request); `cold`
    /// reads what memory no longer holds from the store.
    pub fn handle_sync_request(
        &self,
        req: &SyncRequest,
        cold: impl FnOnce(&ColdQuery) -> Vec<SignedEvent>,
    ) -> SyncResponse {
        self.transcript.answer(&self.topic, req, cold)
    }
}

#[cfg(test)]
mod tests;
