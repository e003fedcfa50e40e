//! The room: one participant's IO-less state machine (docs/PROTOCOL.md, "Clock rules", "Join,
//! message, leave", "Sync" and "Lost participants").
//!
//! It is driven by calls that each carry the input and, where time matters, `now`; every call
//! that may emit one of our events also carries `wall`, the wall-clock time the event is signed
//! with. It never reads a clock, a socket or a terminal. What it wants done comes out of [`Room::poll_output`]: events
//! to publish and things to show. Its timers (the join grace, staggered `lost` announcements)
//! are exposed by [`Room::poll_timeout`] and fired by [`Room::handle_timeout`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::identity::Keypair;

use super::clock::LamportClock;
use super::event::{
    Body, ChatEvent, Event, EventView, OrderKey, ParticipantView, RoomName, SignedEvent, Text,
    Username,
};
use super::roster::{Presence, Roster};
use super::sync::{SyncRequest, SyncResponse};
use super::time::WallTime;
use super::transcript::Transcript;
use crate::wire;

/// How long a node that expects peers waits to catch up with a participant before it joins alone.
pub const JOIN_GRACE: Duration = Duration::from_millis(1500);
/// How many typed lines are held while the join is not yet stamped.
pub const PENDING_COMMANDS_CAP: usize = 256;
/// How many peers the roster tracks at most.
pub const ROSTER_CAP: usize = 4096;
/// After `/quit` during the join wait, how much longer the join may wait (the node must be gone
/// within 2 s of the quit, leave linger included).
pub const QUIT_JOIN_WAIT: Duration = Duration::from_millis(300);
/// A received stamp may be at most this far ahead of the local clock.
pub const MAX_CLOCK_JUMP: u64 = 1 << 32;
/// No stamp may reach this value: it leaves the clock room for centuries of honest chat.
pub const MAX_STAMP: u64 = 1 << 62;
/// When a participant vanishes, the connected participant with the lowest peer id announces it
/// at once; the next waits this long, the next twice as long, and so on, each standing down if
/// the announcement arrives first. One announcement, one stamp, everywhere. It exceeds the spread
/// of detection times between observers (pings every second), so the second in line does not
/// fire before the first has noticed.
pub const LOST_STAGGER: Duration = Duration::from_millis(1500);
/// Even the first in line waits this long before announcing a loss: a leave on its way by
/// another path (through a hub, say) then arrives first and nothing is announced.
pub const LOST_GRACE: Duration = Duration::from_millis(300);

/// What a user asked for that needs the room's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCommand {
    /// Send a message.
    Say(Text),
    /// Show the participants.
    Who,
    /// Show the transcript in total order: all of it, or its last N events.
    History(Option<usize>),
    /// Show whom we are connected to (the network layer answers).
    Peers,
    /// Show our addresses again (the network layer answers).
    Addresses,
    /// Leave the room.
    Quit,
}

/// A participant as the hello exchange lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// Their peer id.
    pub peer: PeerId,
    /// Their username.
    pub user: Username,
    /// The stamp of their join.
    pub lamport: u64,
    /// The sequence number of their join event.
    pub seq: u64,
}

/// What two nodes tell each other on every new connection: which room, what time it is, who is
/// here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The sender's gossipsub topic; hellos from other rooms are ignored.
    pub topic: String,
    /// The sender's Lamport clock.
    pub lamport: u64,
    /// The participants the sender knows to be present, itself included once it has joined.
    pub participants: Vec<Participant>,
    /// The sender is a hub keeping the room's history (not a participant): a joining node
    /// catches up with it as with a participant.
    pub archive: bool,
}

/// What the room wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this event to every participant.
    Publish(SignedEvent),
    /// Show this to the user.
    Show(ChatEvent),
}

/// Why an event or hello from a peer was refused. The peer is at fault; nothing is shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The stamp is 2^62 or more: no honest clock gets there.
    #[error("stamp {stamp} is beyond any honest clock")]
    StampTooFar {
        /// The received stamp.
        stamp: u64,
        /// Our clock.
        local: u64,
    },
    /// The stamp is more than 2^32 ahead of our clock: refused here, though another node whose
    /// clock is further on may take it (so its forwarder is not to blame).
    #[error("stamp {stamp} is too far ahead of the local clock {local}")]
    StampAhead {
        /// The received stamp.
        stamp: u64,
        /// Our clock.
        local: u64,
    },
    /// The event is signed with our key and numbered as this run numbers its events, but this
    /// run never sent it: only someone holding our key (another process, a copied key file)
    /// can have made it. (Events of earlier runs, numbered below this run's first, are ours
    /// and taken like any other.)
    #[error(
        "event {seq} is signed with our key but this run never sent it (is the key in use elsewhere?)"
    )]
    ForeignOwn {
        /// Its sequence number.
        seq: u64,
    },
    /// The hello or sync message is from a node in another room.
    #[error("topic {0:?} is another room")]
    OtherRoom(String),
}

/// Room settings.
#[derive(Debug, Clone)]
pub struct RoomConfig {
    /// Our key: it signs our events.
    pub keypair: Keypair,
    /// Our username.
    pub user: Username,
    /// Our room.
    pub room: RoomName,
    /// How many events the transcript keeps.
    pub history: usize,
    /// How long to wait to catch up with a participant before joining alone.
    pub join_grace: Duration,
    /// The sequence number before our first event. A key outlives a run, and events are
    /// identified by `(author, seq)`: each run must number above every earlier one (the event
    /// loop uses the start time in microseconds), or peers would take new events for old.
    pub first_seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Created,
    Waiting { deadline: Instant },
    Joined,
    Left,
}

/// One participant's view of the room.
#[derive(Debug)]
pub struct Room {
    cfg: RoomConfig,
    me: PeerId,
    topic: String,
    clock: LamportClock,
    seq: u64,
    phase: Phase,
    pending: VecDeque<UserCommand>,
    roster: Roster,
    transcript: Transcript,
    /// Peers that had joined when they said hello: catching up with one ends the join wait.
    historians: HashSet<PeerId>,
    /// Participants we saw vanish, and when we announce it unless someone else does first.
    lost: HashMap<PeerId, Instant>,
    /// Peers with an open connection: only they take part in the ranking for announcements.
    connected: HashSet<PeerId>,
    /// Events learned while waiting to join, shown in total order just before the join.
    held: Vec<(OrderKey, EventView)>,
    outputs: VecDeque<Output>,
    /// Whether the user was warned that our key signs events this run never sent.
    told_foreign_own: bool,
}

impl Room {
    /// A room not yet started: call [`Room::start`].
    pub fn new(cfg: RoomConfig) -> Self {
        let seq = cfg.first_seq;
        Self {
            me: cfg.keypair.public().to_peer_id(),
            topic: cfg.room.topic(),
            transcript: Transcript::new(cfg.history),
            cfg,
            clock: LamportClock::new(),
            seq,
            phase: Phase::Created,
            pending: VecDeque::new(),
            roster: Roster::default(),
            historians: HashSet::new(),
            lost: HashMap::new(),
            connected: HashSet::new(),
            held: Vec::new(),
            outputs: VecDeque::new(),
            told_foreign_own: false,
        }
    }

    /// Starts the room. A node that expects peers (mDNS on, or `--connect` given) waits up to the
    /// join grace to catch up with a participant, so that its join is stamped after the room's
    /// past and shown after it; a node that cannot meet anyone joins at once. (`wall`, like in
    /// every call that may emit our events, is the wall-clock time they are signed with.)
    pub fn start(&mut self, now: Instant, wall: WallTime, expect_peers: bool) {
        if self.phase != Phase::Created {
            return;
        }
        if expect_peers {
            self.phase = Phase::Waiting {
                deadline: now + self.cfg.join_grace,
            };
        } else {
            self.join(wall);
        }
    }

    /// Our peer id.
    pub fn me(&self) -> PeerId {
        self.me
    }

    /// Our gossipsub topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Our Lamport clock.
    pub fn clock(&self) -> u64 {
        self.clock.now()
    }

    /// Whether our join has been stamped and not yet followed by our leave.
    pub fn has_joined(&self) -> bool {
        self.phase == Phase::Joined
    }

    /// Whether our leave has been stamped.
    pub fn has_left(&self) -> bool {
        self.phase == Phase::Left
    }

    /// Whether `peer` is a present participant.
    pub fn is_present(&self, peer: &PeerId) -> bool {
        self.roster.get(peer).is_some_and(|p| p.present)
    }

    /// The name of `peer`, if it is a present participant.
    pub fn name_of(&self, peer: &PeerId) -> Option<&Username> {
        self.roster.get(peer).filter(|p| p.present).map(|p| &p.user)
    }

    /// Whether `peer` was a participant and is known to have left or vanished.
    pub fn has_departed(&self, peer: &PeerId) -> bool {
        self.roster.get(peer).is_some_and(|p| !p.present)
    }

    /// The events we know, in total order.
    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// When [`Room::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let join = match self.phase {
            Phase::Waiting { deadline } => Some(deadline),
            _ => None,
        };
        join.into_iter().chain(self.lost.values().copied()).min()
    }

    /// Every peer we could reach has said hello and none is a participant or a hub: there is no
    /// past to catch up with, so the join need not wait out the grace. (Called by the event
    /// loop once discovery has had its time; a participant found later is caught up with then.)
    pub fn end_wait_among_newcomers(&mut self, wall: WallTime) {
        if matches!(self.phase, Phase::Waiting { .. }) && self.historians.is_empty() {
            self.join(wall);
        }
    }

    /// Whether the join is still waiting.
    pub fn is_waiting(&self) -> bool {
        matches!(self.phase, Phase::Waiting { .. })
    }

    /// Fires what is due: the end of the join wait, `lost` announcements.
    pub fn handle_timeout(&mut self, now: Instant, wall: WallTime) {
        if let Phase::Waiting { deadline } = self.phase
            && now >= deadline
        {
            self.join(wall);
        }
        let due: Vec<PeerId> = self
            .lost
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(p, _)| *p)
            .collect();
        for peer in due {
            self.lost.remove(&peer);
            self.announce_lost(peer, wall);
        }
    }

    /// The next thing the room wants done.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Our hello, sent on every new connection and as the answer to every hello.
    pub fn hello(&self) -> Hello {
        Hello {
            topic: self.topic.clone(),
            lamport: self.clock.now(),
            participants: self.roster.participants(),
            archive: false,
        }
    }

    /// Takes a peer's hello: merges its clock and learns who is present. If the sender lists
    /// itself it is a participant, whose history the join waits for (see
    /// [`Room::handle_sync_response`]).
    pub fn handle_hello(&mut self, from: PeerId, hello: Hello) -> Result<(), Rejection> {
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
        for p in hello.participants {
            // Only the sender speaks for itself: other entries are unsigned hearsay (a peer could
            // rename someone or fill the roster); other participants are learned from their
            // own signed joins, by gossip or sync.
            if p.peer != from || p.lamport >= MAX_STAMP {
                continue;
            }
            if p.peer == from && matches!(self.phase, Phase::Waiting { .. }) {
                self.historians.insert(from);
            }
            let key = OrderKey::new(p.lamport, p.peer.to_bytes(), p.seq);
            self.update_presence(p.peer, p.user, key, p.lamport, p.seq, true);
        }
        if hello.archive && matches!(self.phase, Phase::Waiting { .. }) {
            self.historians.insert(from);
        }
        tracing::debug!(%from, lamport = hello.lamport, "merged hello");
        Ok(())
    }

    /// What we have, for a peer to send us what we lack.
    pub fn sync_request(&self) -> SyncRequest {
        self.transcript.sync_request(&self.topic)
    }

    /// Answers a peer's sync request with the oldest page of what it lacks.
    pub fn handle_sync_request(&self, req: &SyncRequest) -> SyncResponse {
        self.transcript.answer(&self.topic, req)
    }

    /// Takes a page of history from `from`: each event is merged and shown like a live one, marked
    /// as caught up. Returns whether to ask for the next page. Catching up completely with a
    /// participant ends the join wait: its past is now ours, and our join follows it.
    pub fn handle_sync_response(
        &mut self,
        from: PeerId,
        resp: SyncResponse,
        wall: WallTime,
    ) -> bool {
        let mut new = 0;
        for e in resp.events {
            match self.accept(e, true, wall) {
                Ok(true) => new += 1,
                Ok(false) => {}
                // Said once: the same events come back with every anti-entropy round.
                Err(e @ Rejection::ForeignOwn { .. }) if !self.told_foreign_own => {
                    self.told_foreign_own = true;
                    tracing::warn!(%from, reason = %e, "sync event refused");
                }
                Err(e @ Rejection::ForeignOwn { .. }) => {
                    tracing::debug!(%from, reason = %e, "sync event refused")
                }
                Err(e) => tracing::warn!(%from, reason = %e, "sync event refused"),
            }
        }
        // Caught up with a participant: its past is ours, the join can follow it.
        if !resp.more
            && self.historians.contains(&from)
            && matches!(self.phase, Phase::Waiting { .. })
        {
            self.join(wall);
        }
        // A page that taught us nothing cannot lead anywhere new.
        resp.more && new > 0
    }

    /// A user command. Lines typed before the join is stamped wait for it; `/quit` shortens the
    /// wait to [`QUIT_JOIN_WAIT`] so that leaving is never delayed much.
    pub fn handle_command(&mut self, cmd: UserCommand, now: Instant, wall: WallTime) {
        match cmd {
            UserCommand::Who => self.show_who(),
            UserCommand::History(last) => self.show_history(last),
            // Questions about the network, not the room.
            UserCommand::Peers | UserCommand::Addresses => {}
            UserCommand::Say(_) | UserCommand::Quit => match self.phase {
                Phase::Created | Phase::Waiting { .. } => {
                    let quit = cmd == UserCommand::Quit;
                    if self.pending.len() >= PENDING_COMMANDS_CAP && !quit {
                        self.show_error(
                            "too many lines typed before joining; this one was not sent",
                        );
                        return;
                    }
                    self.pending.push_back(cmd);
                    match self.phase {
                        Phase::Waiting { deadline } if quit => {
                            self.phase = Phase::Waiting {
                                deadline: deadline.min(now + QUIT_JOIN_WAIT),
                            };
                        }
                        // Not started: nobody can have heard of us; join and leave at once.
                        Phase::Created if quit => self.join(wall),
                        _ => {}
                    }
                }
                Phase::Joined => self.act(cmd, wall),
                Phase::Left => self.show_error("you have left the room"),
            },
        }
    }

    /// Checks a live event without taking it: what [`Room::handle_remote`] would refuse. (Its
    /// author's signature was checked when it was decoded.)
    pub fn check_remote(&self, event: &SignedEvent) -> Result<(), Rejection> {
        if event.topic != self.topic {
            return Err(Rejection::OtherRoom(event.topic.clone()));
        }
        self.check_own(&event.event)?;
        self.check_stamp(event.event.lamport)
    }

    /// A live chat event from gossipsub. Returns whether it was new (and shown); a duplicate is
    /// accepted but shown once.
    pub fn handle_remote(&mut self, event: SignedEvent, wall: WallTime) -> Result<bool, Rejection> {
        self.accept(event, false, wall)
    }

    /// The last connection to `peer` closed without a leave from it. If it is a participant, the
    /// room says so: at once if we rank first among the present participants (by peer id), a
    /// little later otherwise, unless someone else's announcement arrives first.
    pub fn peer_gone(&mut self, peer: PeerId, now: Instant, wall: WallTime) {
        self.connected.remove(&peer);
        if peer == self.me || !self.is_present(&peer) || self.phase != Phase::Joined {
            return;
        }
        // Ranked: the present participants we are connected to, and ourselves. (Roster entries
        // we cannot reach, stale or made up, must not delay the announcement.)
        let mut ranks: Vec<Vec<u8>> = self
            .roster
            .iter()
            .filter(|(p, pr)| {
                pr.present && **p != peer && (**p == self.me || self.connected.contains(*p))
            })
            .map(|(p, _)| p.to_bytes())
            .collect();
        ranks.sort();
        let mine = self.me.to_bytes();
        let rank = ranks.iter().position(|p| *p == mine).unwrap_or(0);
        let rank = u32::try_from(rank).unwrap_or(u32::MAX);
        self.lost
            .insert(peer, now + LOST_GRACE + LOST_STAGGER.saturating_mul(rank));
        self.handle_timeout(now, wall);
    }

    /// A connection to `peer` is open (again): no need to announce it lost.
    pub fn peer_back(&mut self, peer: &PeerId) {
        self.lost.remove(peer);
        self.connected.insert(*peer);
    }

    fn announce_lost(&mut self, peer: PeerId, wall: WallTime) {
        if self.phase != Phase::Joined {
            return;
        }
        let Some(p) = self.roster.get(&peer).filter(|p| p.present) else {
            return;
        };
        let user = p.user.clone();
        self.emit(
            Body::Lost {
                subject: peer,
                user,
            },
            wall,
        );
    }

    /// Events signed with our key come back to us. Those this run sent are known; those of an
    /// earlier run (numbered at or below this run's first sequence number) are ours as much as
    /// anyone's and are taken like any other, so a restarted node holds the same transcript
    /// as the room. Only an event numbered as this run's that this run never sent is refused.
    fn check_own(&self, event: &Event) -> Result<(), Rejection> {
        if event.author == self.me
            && event.seq > self.cfg.first_seq
            && !self.transcript.is_known(event)
        {
            return Err(Rejection::ForeignOwn { seq: event.seq });
        }
        Ok(())
    }

    fn check_stamp(&self, stamp: u64) -> Result<(), Rejection> {
        let local = self.clock.now();
        if stamp >= MAX_STAMP {
            return Err(Rejection::StampTooFar { stamp, local });
        }
        if stamp > local.saturating_add(MAX_CLOCK_JUMP) {
            return Err(Rejection::StampAhead { stamp, local });
        }
        Ok(())
    }

    /// Takes a validated, signed event (live or caught up): merges the clock, updates the
    /// roster and the transcript, shows it. (`wall` is for our rejoin, should the event say we
    /// are gone.)
    fn accept(
        &mut self,
        signed: SignedEvent,
        sync: bool,
        wall: WallTime,
    ) -> Result<bool, Rejection> {
        if signed.topic != self.topic {
            return Err(Rejection::OtherRoom(signed.topic));
        }
        let event = &signed.event;
        self.check_own(event)?;
        self.check_stamp(event.lamport)?;
        if self.transcript.is_known(event) {
            return Ok(false);
        }
        self.clock.receive(event.lamport);
        let (who, user) = event.participant();
        let user = user.clone();
        let key = event.order_key();
        match &event.body {
            Body::Join => self.update_presence(who, user, key, event.lamport, event.seq, true),
            Body::Leave => {
                self.update_presence(who, user, key, event.lamport, event.seq, false);
                // Left on purpose: nothing to announce.
                self.lost.remove(&who);
            }
            Body::Lost { subject, .. } => {
                self.update_presence(who, user, key, event.lamport, 0, false);
                if !self.is_present(subject) {
                    self.lost.remove(subject);
                }
            }
            Body::Message(_) => {}
        }
        let view = self.view(event, sync);
        let declared_lost =
            matches!(&event.body, Body::Lost { subject, .. } if *subject == self.me);
        if matches!(self.phase, Phase::Created | Phase::Waiting { .. }) {
            // Shown with the rest of the past, in order, just before our join.
            self.held.push((event.order_key(), view));
        } else {
            self.outputs.push_back(Output::Show(ChatEvent::Chat(view)));
        }
        self.transcript.insert(signed);
        if declared_lost && self.phase == Phase::Joined && !self.is_present(&self.me) {
            // Someone thought we were gone (a partition, a frozen process): we are back.
            self.emit(Body::Join, wall);
        }
        Ok(true)
    }

    fn join(&mut self, wall: WallTime) {
        if !matches!(self.phase, Phase::Created | Phase::Waiting { .. }) {
            return;
        }
        self.phase = Phase::Joined;
        self.historians.clear();
        let mut held = std::mem::take(&mut self.held);
        held.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, view) in held {
            self.outputs.push_back(Output::Show(ChatEvent::Chat(view)));
        }
        self.emit(Body::Join, wall);
        while let Some(cmd) = self.pending.pop_front() {
            self.act(cmd, wall);
        }
    }

    fn act(&mut self, cmd: UserCommand, wall: WallTime) {
        match cmd {
            UserCommand::Say(text) => self.emit(Body::Message(text), wall),
            UserCommand::Quit => {
                self.emit(Body::Leave, wall);
                self.phase = Phase::Left;
                self.pending.clear();
                self.lost.clear();
            }
            UserCommand::Who => self.show_who(),
            UserCommand::History(last) => self.show_history(last),
            UserCommand::Peers | UserCommand::Addresses => {}
        }
    }

    /// Stamps, signs, records, shows and publishes one of our own events, said at `wall`.
    fn emit(&mut self, body: Body, wall: WallTime) {
        let lamport = self.clock.tick();
        self.seq += 1;
        let event = Event {
            author: self.me,
            seq: self.seq,
            lamport,
            time: wall,
            user: self.cfg.user.clone(),
            body,
        };
        // Presence changes with joins and leaves only: a hello lists each participant's join.
        let key = event.order_key();
        let (me, user, seq) = (self.me, self.cfg.user.clone(), self.seq);
        match &event.body {
            Body::Join => self.update_presence(me, user, key, lamport, seq, true),
            Body::Leave => self.update_presence(me, user, key, lamport, seq, false),
            Body::Lost { subject, user } => {
                self.update_presence(*subject, user.clone(), key, lamport, 0, false)
            }
            Body::Message(_) => {}
        }
        let signed = wire::sign_event(event, &self.topic, &self.cfg.keypair);
        // Shown first, so that whatever publishing reports (a queued notice) follows the line.
        self.outputs.push_back(Output::Show(ChatEvent::Chat(
            self.view(&signed.event, false),
        )));
        self.outputs.push_back(Output::Publish(signed.clone()));
        self.transcript.insert(signed);
    }

    /// Records a presence (see [`Roster::update`]).
    fn update_presence(
        &mut self,
        peer: PeerId,
        user: Username,
        key: OrderKey,
        lamport: u64,
        seq: u64,
        present: bool,
    ) {
        self.roster.update(
            peer,
            Presence {
                user,
                key,
                lamport,
                seq,
                present,
            },
        );
    }

    /// The ui's view of `event`, marking names that several participants use.
    fn view(&self, event: &Event, sync: bool) -> EventView {
        let mut v = event.view(sync);
        let (who, user) = event.participant();
        let known = self.roster.get(&who).map(|p| &p.user);
        let lost = matches!(event.body, Body::Lost { .. });
        // The announcer's word for the name counts for nothing: the name is the one the
        // vanished participant used itself.
        let shown = match known {
            Some(name) if lost => name,
            _ => user,
        };
        v.user = shown.as_str().to_owned();
        // Shown apart when another participant uses a name that looks the same (the same
        // TR39 skeleton, kept in each name: `pat` and `pаt` with a Cyrillic а), or when an
        // author uses a name other than the one it joined with.
        v.ambiguous = self
            .roster
            .iter()
            .any(|(peer, p)| *peer != who && p.user.looks_like(shown))
            || (!lost && known.is_some_and(|n| n != user));
        v
    }

    fn show_history(&mut self, last: Option<usize>) {
        let skip = last.map_or(0, |n| self.transcript.len().saturating_sub(n));
        let events = self
            .transcript
            .iter()
            .skip(skip)
            .map(|e| self.view(&e.event, false))
            .collect();
        self.outputs
            .push_back(Output::Show(ChatEvent::History(events)));
    }

    fn show_who(&mut self) {
        let mut list: Vec<ParticipantView> = self
            .roster
            .iter()
            .filter(|(_, p)| p.present)
            .map(|(peer, p)| ParticipantView {
                user: p.user.as_str().to_owned(),
                peer: peer.to_base58(),
                me: *peer == self.me,
            })
            .collect();
        list.sort_by(|a, b| (&a.user, &a.peer).cmp(&(&b.user, &b.peer)));
        self.outputs.push_back(Output::Show(ChatEvent::Who(list)));
    }

    fn show_error(&mut self, msg: &str) {
        self.outputs
            .push_back(Output::Show(ChatEvent::Error(msg.to_owned())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::event::{EventKind, LeaveReason};

    /// The wall-clock time of tests that do not look at it.
    const WALL: WallTime = WallTime::EPOCH;

    fn room(name: &str) -> Room {
        Room::new(RoomConfig {
            keypair: Keypair::generate_ed25519(),
            user: Username::new(name).unwrap(),
            room: RoomName::lobby(),
            history: 10_000,
            join_grace: JOIN_GRACE,
            first_seq: 0,
        })
    }

    fn drain(r: &mut Room) -> (Vec<SignedEvent>, Vec<ChatEvent>) {
        let (mut p, mut s) = (vec![], vec![]);
        while let Some(o) = r.poll_output() {
            match o {
                Output::Publish(e) => p.push(e),
                Output::Show(c) => s.push(c),
            }
        }
        (p, s)
    }

    fn say(s: &str) -> UserCommand {
        UserCommand::Say(Text::new(s).unwrap())
    }

    fn chats(shown: &[ChatEvent]) -> Vec<crate::core::event::EventView> {
        shown
            .iter()
            .filter_map(|c| match c {
                ChatEvent::Chat(v) => Some(v.clone()),
                _ => None,
            })
            .collect()
    }

    /// Delivers events to `to`, as gossipsub would.
    fn deliver(events: &[SignedEvent], to: &mut Room) {
        for e in events {
            to.handle_remote(e.clone(), WALL).unwrap();
        }
    }

    /// Runs a full sync: `to` asks `from` until it has everything.
    fn sync(from: &Room, to: &mut Room) {
        loop {
            let resp = from.handle_sync_request(&to.sync_request());
            if !to.handle_sync_response(from.me(), resp, WALL) {
                break;
            }
        }
    }

    fn key(r: &Room) -> Vec<(PeerId, u64, u64)> {
        r.transcript()
            .iter()
            .map(|e| (e.event.author, e.event.seq, e.event.lamport))
            .collect()
    }

    /// A room under `keypair` whose run numbers its events above `first_seq`.
    fn rerun(name: &str, keypair: &Keypair, first_seq: u64) -> Room {
        Room::new(RoomConfig {
            keypair: keypair.clone(),
            user: Username::new(name).unwrap(),
            room: RoomName::lobby(),
            history: 10_000,
            join_grace: JOIN_GRACE,
            first_seq,
        })
    }

    /// Restarting under one's own name (the same key) is ordinary: the events of the earlier
    /// run come back by sync and are taken, so both nodes hold the same transcript again, and
    /// the new join follows them.
    #[test]
    fn given_a_restart_under_the_same_key_when_syncing_then_the_earlier_runs_events_are_ours() {
        let now = Instant::now();
        let mut a = room("a");
        a.start(now, WALL, false);
        let key_b = Keypair::generate_ed25519();
        let mut b1 = rerun("b", &key_b, 1_000);
        b1.start(now, WALL, true);
        b1.handle_hello(a.me(), a.hello()).unwrap();
        sync(&a, &mut b1);
        b1.handle_command(say("before the restart"), now, WALL);
        b1.handle_command(UserCommand::Quit, now, WALL);
        deliver(&drain(&mut b1).0, &mut a);
        drain(&mut a);

        let mut b2 = rerun("b", &key_b, 2_000);
        b2.start(now, WALL, true);
        b2.handle_hello(a.me(), a.hello()).unwrap();
        sync(&a, &mut b2);
        let (published, shown) = drain(&mut b2);
        assert!(b2.has_joined(), "the join follows the caught-up past");
        let views = chats(&shown);
        assert!(
            views
                .iter()
                .any(|v| v.sync && v.text.as_deref() == Some("before the restart")),
            "{views:?}"
        );
        deliver(&published, &mut a);
        assert_eq!(key(&a), key(&b2), "one transcript on both nodes");
        assert!(b2.is_present(&b2.me()));
        assert!(a.is_present(&b2.me()));
    }

    /// An event signed with our key, numbered as this run numbers its events, that this run
    /// never sent: someone else holds our key. Refused, live or by sync, and warned once.
    #[test]
    fn given_our_key_elsewhere_when_an_event_of_this_run_we_never_sent_arrives_then_it_is_refused()
    {
        let now = Instant::now();
        let key_b = Keypair::generate_ed25519();
        let mut b = rerun("b", &key_b, 1_000);
        b.start(now, WALL, false);
        drain(&mut b);
        // Another process with the same key, numbering above ours.
        let mut twin = rerun("b", &key_b, 5_000);
        twin.start(now, WALL, false);
        let (events, _) = drain(&mut twin);
        assert_eq!(
            b.handle_remote(events[0].clone(), WALL),
            Err(Rejection::ForeignOwn { seq: 5_001 })
        );
        assert!(b.check_remote(&events[0]).is_err());
        // Our own event, come back, is simply known.
        let mut c = room("c");
        c.start(now, WALL, false);
        b.handle_command(say("mine"), now, WALL);
        let (mine, _) = drain(&mut b);
        assert_eq!(b.check_remote(&mine[0]), Ok(()));
        assert_eq!(b.handle_remote(mine[0].clone(), WALL), Ok(false));
    }

    #[test]
    fn alone_joins_at_once_with_stamp_one() {
        let mut a = room("a");
        a.start(Instant::now(), WALL, false);
        let (p, s) = drain(&mut a);
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].event.lamport, &p[0].event.body), (1, &Body::Join));
        assert!(
            matches!(&s[0], ChatEvent::Chat(v) if v.kind == EventKind::Join && v.lamport == 1 && !v.sync)
        );
    }

    #[test]
    fn a_late_joiner_catches_up_in_order_before_its_own_join() {
        let now = Instant::now();
        let mut a = room("a");
        a.start(now, WALL, false);
        for i in 0..5 {
            a.handle_command(say(&format!("m{i}")), now, WALL);
        }
        drain(&mut a);
        let mut b = room("b");
        b.start(now, WALL, true);
        b.handle_hello(a.me(), a.hello()).unwrap();
        assert!(!b.has_joined(), "the join waits for the history");
        sync(&a, &mut b);
        let (p, shown) = drain(&mut b);
        let views = chats(&shown);
        assert_eq!(
            views.len(),
            7,
            "a's join, five messages, then b's join: {views:?}"
        );
        assert!(views[..6].iter().all(|v| v.sync && v.user == "a"));
        let stamps: Vec<u64> = views.iter().map(|v| v.lamport).collect();
        assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{stamps:?}");
        assert_eq!(views[6].kind, EventKind::Join);
        assert_eq!(p[0].event.body, Body::Join);
        assert!(p[0].event.lamport > a.clock());
    }

    /// `pat` and `pаt` (Cyrillic а) look the same: once both are in the roster, both are shown
    /// apart, with the suffix; a name that only resembles nobody's is not.
    #[test]
    fn look_alike_names_are_shown_apart_like_identical_ones() {
        let now = Instant::now();
        let mut latin = room("pat");
        let mut cyrillic = room("p\u{0430}t");
        let mut other = room("pet");
        for r in [&mut latin, &mut cyrillic, &mut other] {
            r.start(now, WALL, false);
        }
        let joins: Vec<SignedEvent> = [&mut latin, &mut cyrillic, &mut other]
            .into_iter()
            .flat_map(|r| drain(r).0)
            .collect();
        deliver(&joins[1..], &mut latin);
        latin.handle_command(say("hi"), now, WALL);
        cyrillic.handle_command(say("hi"), now, WALL);
        other.handle_command(say("hi"), now, WALL);
        let said: Vec<SignedEvent> = [&mut cyrillic, &mut other]
            .into_iter()
            .flat_map(|r| drain(r).0)
            .collect();
        deliver(&said, &mut latin);
        let (_, shown) = drain(&mut latin);
        let ambiguous: Vec<(String, bool)> = chats(&shown)
            .into_iter()
            .filter(|v| v.kind == EventKind::Message)
            .map(|v| (v.user, v.ambiguous))
            .collect();
        assert_eq!(
            ambiguous,
            vec![
                ("pat".to_owned(), true),
                ("p\u{0430}t".to_owned(), true),
                ("pet".to_owned(), false)
            ]
        );
    }

    /// Each event carries the wall-clock time its author's node was given when it signed it, and
    /// a late joiner shows those times, not its own; its own join gets its own time.
    #[test]
    fn caught_up_events_keep_the_time_their_author_said_them() {
        let now = Instant::now();
        let at = |s: u64| WallTime::from_unix_millis(1_795_613_371_000 + s * 1000).unwrap();
        let mut a = room("a");
        a.start(now, at(0), false);
        for i in 1..=3 {
            a.handle_command(say(&format!("m{i}")), now, at(60 * i));
        }
        drain(&mut a);
        let mut b = room("b");
        b.start(now, at(3600), true);
        b.handle_hello(a.me(), a.hello()).unwrap();
        loop {
            let resp = a.handle_sync_request(&b.sync_request());
            if !b.handle_sync_response(a.me(), resp, at(3601)) {
                break;
            }
        }
        let (p, shown) = drain(&mut b);
        let times: Vec<(String, WallTime)> = chats(&shown)
            .into_iter()
            .map(|v| (v.user, v.time))
            .collect();
        let want: Vec<(String, WallTime)> = [0, 60, 120, 180]
            .into_iter()
            .map(|s| ("a".to_owned(), at(s)))
            .chain([("b".to_owned(), at(3601))])
            .collect();
        assert_eq!(times, want);
        assert_eq!(
            p[0].event.time,
            at(3601),
            "b's join is signed with b's time"
        );
        b.handle_command(UserCommand::History(None), now, at(3700));
        let (_, shown) = drain(&mut b);
        let Some(ChatEvent::History(h)) = shown.last() else {
            panic!("{shown:?}")
        };
        assert_eq!(
            h.iter().map(|v| v.time).collect::<Vec<_>>(),
            want.into_iter().map(|w| w.1).collect::<Vec<_>>()
        );
    }

    #[test]
    fn grace_runs_out_and_the_node_joins_alone() {
        let now = Instant::now();
        let mut b = room("b");
        b.start(now, WALL, true);
        b.handle_command(say("early"), now, WALL);
        b.handle_timeout(now + Duration::from_millis(10), WALL);
        assert!(drain(&mut b).0.is_empty());
        assert_eq!(b.poll_timeout(), Some(now + JOIN_GRACE));
        b.handle_timeout(now + JOIN_GRACE, WALL);
        let (p, _) = drain(&mut b);
        assert_eq!(
            p.iter().map(|e| e.event.lamport).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(p[1].event.body, Body::Message(Text::new("early").unwrap()));
    }

    #[test]
    fn quit_while_waiting_shortens_the_wait_then_joins_says_and_leaves() {
        let now = Instant::now();
        let mut b = room("b");
        b.start(now, WALL, true);
        b.handle_command(say("hi"), now, WALL);
        b.handle_command(UserCommand::Quit, now, WALL);
        assert!(drain(&mut b).0.is_empty(), "still waiting");
        assert_eq!(b.poll_timeout(), Some(now + QUIT_JOIN_WAIT));
        b.handle_timeout(now + QUIT_JOIN_WAIT, WALL);
        let (p, _) = drain(&mut b);
        let bodies: Vec<_> = p.iter().map(|e| e.event.body.clone()).collect();
        assert_eq!(
            bodies,
            vec![
                Body::Join,
                Body::Message(Text::new("hi").unwrap()),
                Body::Leave
            ]
        );
        assert!(b.has_left());
    }

    #[test]
    fn among_newcomers_only_the_wait_can_end_early() {
        let now = Instant::now();
        let mut b = room("b");
        let mut c = room("c");
        b.start(now, WALL, true);
        c.start(now, WALL, true);
        b.handle_hello(c.me(), c.hello()).unwrap();
        b.end_wait_among_newcomers(WALL);
        assert!(b.has_joined(), "no participant to catch up with");
        // With a participant around, the wait goes on until its history is in.
        let mut a = room("a");
        a.start(now, WALL, false);
        let mut d = room("d");
        d.start(now, WALL, true);
        d.handle_hello(a.me(), a.hello()).unwrap();
        d.end_wait_among_newcomers(WALL);
        assert!(!d.has_joined());
    }

    #[test]
    fn catching_up_with_another_newcomer_does_not_end_the_wait() {
        let now = Instant::now();
        let mut b = room("b");
        let mut c = room("c");
        b.start(now, WALL, true);
        c.start(now, WALL, true);
        b.handle_hello(c.me(), c.hello()).unwrap();
        sync(&c, &mut b);
        assert!(
            !b.has_joined(),
            "c has not joined: its history is not the room's"
        );
    }

    #[test]
    fn received_events_keep_their_origin_stamp_and_causality_holds() {
        let mut a = room("a");
        let mut b = room("b");
        a.start(Instant::now(), WALL, false);
        b.start(Instant::now(), WALL, false);
        for _ in 0..10 {
            a.handle_command(say("tick"), Instant::now(), WALL);
        }
        let (pa, _) = drain(&mut a);
        drain(&mut b);
        deliver(&pa, &mut b);
        let (_, shown) = drain(&mut b);
        let stamps: Vec<u64> = chats(&shown).iter().map(|v| v.lamport).collect();
        assert_eq!(
            stamps,
            pa.iter().map(|e| e.event.lamport).collect::<Vec<_>>()
        );
        b.handle_command(say("reply"), Instant::now(), WALL);
        let (pb, _) = drain(&mut b);
        assert!(pb[0].event.lamport > pa.last().unwrap().event.lamport);
    }

    #[test]
    fn duplicates_are_shown_once_and_identical_texts_are_distinct_events() {
        let mut a = room("a");
        let mut b = room("b");
        a.start(Instant::now(), WALL, false);
        b.start(Instant::now(), WALL, false);
        a.handle_command(say("ok"), Instant::now(), WALL);
        a.handle_command(say("ok"), Instant::now(), WALL);
        let (pa, _) = drain(&mut a);
        drain(&mut b);
        deliver(&pa, &mut b);
        assert_eq!(b.handle_remote(pa[1].clone(), WALL), Ok(false));
        let (_, shown) = drain(&mut b);
        assert_eq!(shown.len(), 3, "join + two distinct ok messages: {shown:?}");
    }

    #[test]
    fn wild_stamps_are_rejected() {
        let mut a = room("a");
        let mut b = room("b");
        a.start(Instant::now(), WALL, false);
        b.start(Instant::now(), WALL, false);
        let (pa, _) = drain(&mut a);
        let mut wild = pa[0].clone();
        wild.event.lamport = u64::MAX;
        assert!(matches!(
            b.handle_remote(wild, WALL),
            Err(Rejection::StampTooFar { .. })
        ));
        assert!(b.clock() < 10);
    }

    #[test]
    fn hellos_and_syncs_from_other_rooms_change_nothing() {
        let mut b = room("b");
        b.start(Instant::now(), WALL, true);
        let other = Hello {
            topic: "chitty-chat/elsewhere".into(),
            lamport: 99,
            participants: vec![],
            archive: false,
        };
        assert!(matches!(
            b.handle_hello(PeerId::random(), other),
            Err(Rejection::OtherRoom(_))
        ));
        assert_eq!(b.clock(), 0);
        let req = SyncRequest {
            topic: "chitty-chat/elsewhere".into(),
            low: None,
            have: vec![],
        };
        assert_eq!(b.handle_sync_request(&req).events, vec![]);
    }

    #[test]
    fn leave_removes_from_who_and_history_is_in_total_order() {
        let mut a = room("a");
        let mut b = room("b");
        a.start(Instant::now(), WALL, false);
        b.start(Instant::now(), WALL, false);
        a.handle_command(UserCommand::Quit, Instant::now(), WALL);
        let (pa, _) = drain(&mut a);
        drain(&mut b);
        deliver(&pa, &mut b);
        b.handle_command(UserCommand::Who, Instant::now(), WALL);
        b.handle_command(UserCommand::History(None), Instant::now(), WALL);
        let (_, s) = drain(&mut b);
        let who = s.iter().find_map(|c| match c {
            ChatEvent::Who(l) => Some(l.clone()),
            _ => None,
        });
        assert_eq!(
            who.unwrap()
                .iter()
                .map(|p| p.user.as_str())
                .collect::<Vec<_>>(),
            vec!["b"]
        );
        let hist = s.iter().find_map(|c| match c {
            ChatEvent::History(h) => Some(h.clone()),
            _ => None,
        });
        let keys: Vec<u64> = hist.unwrap().iter().map(|v| v.lamport).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(keys.len(), 3);
    }

    #[test]
    fn hello_entries_with_wild_stamps_are_ignored() {
        let mut b = room("b");
        b.start(Instant::now(), WALL, false);
        let hello = Hello {
            topic: "chitty-chat".into(),
            lamport: 3,
            participants: vec![Participant {
                peer: PeerId::random(),
                user: Username::new("ghost").unwrap(),
                lamport: MAX_STAMP - 1,
                seq: 1,
            }],
            archive: false,
        };
        b.handle_hello(PeerId::random(), hello).unwrap();
        b.handle_command(UserCommand::Who, Instant::now(), WALL);
        let (_, s) = drain(&mut b);
        let ChatEvent::Who(list) = s.last().unwrap() else {
            panic!("{s:?}")
        };
        assert!(list.iter().all(|p| p.user != "ghost"), "{list:?}");
    }

    /// Three participants who all know each other.
    fn trio() -> Vec<Room> {
        let mut rooms = vec![room("a"), room("b"), room("c")];
        for r in &mut rooms {
            r.start(Instant::now(), WALL, false);
        }
        let out: Vec<Vec<SignedEvent>> = rooms.iter_mut().map(|r| drain(r).0).collect();
        let ids: Vec<PeerId> = rooms.iter().map(|r| r.me()).collect();
        for (i, r) in rooms.iter_mut().enumerate() {
            for (j, events) in out.iter().enumerate() {
                if i != j {
                    deliver(events, r);
                    r.peer_back(&ids[j]);
                }
            }
            drain(r);
        }
        rooms
    }

    #[test]
    fn a_vanished_participant_is_announced_once_with_one_stamp() {
        let now = Instant::now();
        let mut rooms = trio();
        let gone = rooms.pop().unwrap();
        let (mut x, mut y) = (rooms.remove(0), rooms.remove(0));
        x.peer_gone(gone.me(), now, WALL);
        y.peer_gone(gone.me(), now, WALL);
        assert!(
            drain(&mut x).0.is_empty() && drain(&mut y).0.is_empty(),
            "a short grace first"
        );
        x.handle_timeout(now + LOST_GRACE, WALL);
        y.handle_timeout(now + LOST_GRACE, WALL);
        let (px, _) = drain(&mut x);
        let (py, _) = drain(&mut y);
        assert_eq!(
            px.len() + py.len(),
            1,
            "exactly one announces after the grace"
        );
        let (announcer, other, lost) = if px.is_empty() {
            (&mut y, &mut x, py[0].clone())
        } else {
            (&mut x, &mut y, px[0].clone())
        };
        assert!(matches!(&lost.event.body, Body::Lost { subject, .. } if *subject == gone.me()));
        let _ = announcer;
        deliver(std::slice::from_ref(&lost), other);
        let (_, shown) = drain(other);
        let v = &chats(&shown)[0];
        assert_eq!(
            (v.kind, v.reason, v.user.as_str()),
            (EventKind::Leave, Some(LeaveReason::Lost), "c")
        );
        assert_eq!(v.lamport, lost.event.lamport);
        other.handle_timeout(now + LOST_STAGGER * 4, WALL);
        assert!(drain(other).0.is_empty(), "the second in line stood down");
        // Had the announcement not come, the second in line would have made it.
        let mut rooms = trio();
        let gone = rooms.pop().unwrap().me();
        let (mut x, mut y) = (rooms.remove(0), rooms.remove(0));
        x.peer_gone(gone, now, WALL);
        y.peer_gone(gone, now, WALL);
        x.handle_timeout(now + LOST_GRACE, WALL);
        y.handle_timeout(now + LOST_GRACE, WALL);
        let second = if drain(&mut x).0.is_empty() {
            &mut x
        } else {
            &mut y
        };
        second.handle_timeout(now + LOST_GRACE + LOST_STAGGER, WALL);
        assert_eq!(drain(second).0.len(), 1);
    }

    #[test]
    fn a_leave_arriving_during_the_grace_is_not_followed_by_a_lost() {
        let now = Instant::now();
        let mut rooms = trio();
        let mut leaver = rooms.pop().unwrap();
        let mut x = rooms.remove(0);
        x.peer_gone(leaver.me(), now, WALL);
        leaver.handle_command(UserCommand::Quit, now, WALL);
        let (pl, _) = drain(&mut leaver);
        deliver(&pl, &mut x);
        x.handle_timeout(now + LOST_STAGGER * 4, WALL);
        assert!(drain(&mut x).0.is_empty());
    }

    #[test]
    fn a_participant_declared_lost_joins_again() {
        let now = Instant::now();
        let mut rooms = trio();
        let (mut x, mut y) = (rooms.remove(0), rooms.remove(0));
        // x and y lose each other (a partition); each sees the other vanish.
        x.peer_gone(y.me(), now, WALL);
        y.peer_gone(x.me(), now, WALL);
        x.handle_timeout(now + LOST_STAGGER * 4, WALL);
        y.handle_timeout(now + LOST_STAGGER * 4, WALL);
        let (px, _) = drain(&mut x);
        let (py, _) = drain(&mut y);
        deliver(&px, &mut y);
        deliver(&py, &mut x);
        let (px2, _) = drain(&mut x);
        let (py2, _) = drain(&mut y);
        assert_eq!(
            px2.iter().map(|e| &e.event.body).collect::<Vec<_>>(),
            vec![&Body::Join]
        );
        assert_eq!(
            py2.iter().map(|e| &e.event.body).collect::<Vec<_>>(),
            vec![&Body::Join]
        );
        deliver(&px2, &mut y);
        deliver(&py2, &mut x);
        assert!(x.is_present(&y.me()) && y.is_present(&x.me()));
        assert_eq!(key(&x), key(&y));
    }

    /// A tiny deterministic generator for the simulation (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    /// Whole conversations under random delays, duplicates, reordering, partitions and crashes:
    /// once the network is whole again and anti-entropy has run, every surviving node holds the
    /// same transcript, every event with its original stamp, in the same order.
    #[test]
    fn simulation_every_survivor_ends_with_the_same_transcript() {
        for seed in 1..=60u64 {
            simulate(seed);
        }
    }

    fn simulate(seed: u64) {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let t0 = Instant::now();
        // A third of the schedules keep a short history, so the bound and its watermark matter.
        let history = if seed.is_multiple_of(3) { 40 } else { 10_000 };
        // Two more nodes sleep until they join late, catching up by sync.
        let n = 5 + rng.below(4) as usize;
        let mut nodes: Vec<Option<Room>> = (0..n)
            .map(|i| {
                Some(Room::new(RoomConfig {
                    keypair: Keypair::generate_ed25519(),
                    user: Username::new(format!("n{i}")).unwrap(),
                    room: RoomName::lobby(),
                    history,
                    join_grace: JOIN_GRACE,
                    first_seq: 0,
                }))
            })
            .collect();
        let mut awake: Vec<bool> = (0..n).map(|i| i < n - 2).collect();
        for r in nodes.iter_mut().take(n - 2).flatten() {
            r.start(t0, WALL, false);
        }
        let ids: Vec<PeerId> = nodes.iter().flatten().map(|r| r.me()).collect();
        let connect = |nodes: &mut Vec<Option<Room>>, cross: &dyn Fn(usize, usize) -> bool| {
            for (i, r) in nodes.iter_mut().enumerate() {
                for (j, id) in ids.iter().enumerate() {
                    if let (Some(r), true) = (r.as_mut(), i != j && cross(i, j)) {
                        r.peer_back(id);
                    }
                }
            }
        };
        let sleeping = awake.clone();
        connect(&mut nodes, &|i, j| sleeping[i] && sleeping[j]);
        // Wakes node `k`: it starts, hears a hello from each awake peer and catches up.
        let wake =
            |nodes: &mut Vec<Option<Room>>, awake: &mut Vec<bool>, k: usize, now: Instant| {
                awake[k] = true;
                let Some(mut late) = nodes[k].take() else {
                    return;
                };
                late.start(now, WALL, true);
                for (j, peer) in nodes.iter_mut().enumerate() {
                    if let (Some(p), true) = (peer.as_mut(), awake[j] && j != k) {
                        late.handle_hello(p.me(), p.hello()).unwrap();
                        late.peer_back(&p.me());
                        p.peer_back(&late.me());
                        sync(p, &mut late);
                        sync(&late, p);
                    }
                }
                late.handle_timeout(now + JOIN_GRACE, WALL);
                nodes[k] = Some(late);
            };
        // In flight: (due step, to, event).
        let mut wire: Vec<(u64, usize, SignedEvent)> = Vec::new();
        let mut side: Vec<bool> = vec![false; n];
        let mut split = false;
        let reachable =
            |side: &[bool], split: bool, a: usize, b: usize| !split || side[a] == side[b];
        let steps = 300;
        for step in 0..steps {
            let now = t0 + Duration::from_millis(step * 10);
            // Collect what every node published this step.
            for (i, node) in nodes.iter_mut().enumerate() {
                let Some(r) = node.as_mut() else { continue };
                r.handle_timeout(now, WALL);
                let (published, _) = drain(r);
                for e in published {
                    for (j, up) in awake.iter().enumerate() {
                        if j != i && *up && reachable(&side, split, i, j) {
                            wire.push((step + rng.below(8), j, e.clone()));
                            if rng.below(10) == 0 {
                                wire.push((step + rng.below(20), j, e.clone()));
                            }
                        }
                    }
                }
            }
            match rng.below(20) {
                0..=7 => {
                    let i = rng.below(n as u64) as usize;
                    if let (Some(r), true) = (nodes[i].as_mut(), awake[i]) {
                        r.handle_command(say(&format!("s{step}")), now, WALL);
                    }
                }
                13 if step > 50 => {
                    if let Some(k) = (0..n).find(|k| !awake[*k]) {
                        wake(&mut nodes, &mut awake, k, now);
                    }
                }
                8 => {
                    if split {
                        // Heal: the connections come back.
                        let sides = side.clone();
                        connect(&mut nodes, &|i, j| sides[i] != sides[j]);
                    }
                    split = !split;
                    for s in side.iter_mut() {
                        *s = rng.below(2) == 0;
                    }
                    if split {
                        // Each side sees the other vanish.
                        let alive: Vec<bool> = nodes
                            .iter()
                            .zip(&awake)
                            .map(|(r, a)| r.is_some() && *a)
                            .collect();
                        for (i, r) in nodes.iter_mut().enumerate() {
                            for j in 0..n {
                                if side[i] != side[j]
                                    && alive[j]
                                    && let Some(r) = r.as_mut()
                                {
                                    r.peer_gone(ids[j], now, WALL);
                                }
                            }
                        }
                    }
                }
                9 if step > 100 && nodes.iter().filter(|r| r.is_some()).count() > 2 => {
                    let k = rng.below(n as u64) as usize;
                    if awake[k]
                        && let Some(dead) = nodes[k].take()
                    {
                        for r in nodes.iter_mut().flatten() {
                            r.peer_gone(dead.me(), now, WALL);
                        }
                    }
                }
                10..=12 => {
                    // Anti-entropy between two reachable nodes.
                    let (i, j) = (rng.below(n as u64) as usize, rng.below(n as u64) as usize);
                    if i != j
                        && awake[i]
                        && awake[j]
                        && reachable(&side, split, i, j)
                        && nodes[i].is_some()
                        && nodes[j].is_some()
                    {
                        let from = nodes[i].take().unwrap();
                        sync(&from, nodes[j].as_mut().unwrap());
                        nodes[i] = Some(from);
                    }
                }
                _ => {}
            }
            // Deliver what is due, in random order (reordering); partitions drop it.
            let mut due: Vec<(u64, usize, SignedEvent)> = Vec::new();
            wire.retain(|w| {
                if w.0 <= step {
                    due.push(w.clone());
                    false
                } else {
                    true
                }
            });
            while !due.is_empty() {
                let (_, to, e) = due.swap_remove(rng.below(due.len() as u64) as usize);
                if let Some(r) = nodes[to].as_mut() {
                    let _ = r.handle_remote(e, WALL);
                }
            }
        }
        // Heal: everyone awake, no partition, then anti-entropy until nothing changes.
        let end = t0 + Duration::from_secs(3600);
        for k in 0..n {
            if !awake[k] {
                wake(&mut nodes, &mut awake, k, end);
            }
        }
        connect(&mut nodes, &|_, _| true);
        for _round in 0..20 {
            let mut changed = false;
            for r in nodes.iter_mut().flatten() {
                r.handle_timeout(end, WALL);
                changed |= !drain(r).0.is_empty();
            }
            for i in 0..n {
                for j in 0..n {
                    if i != j && nodes[i].is_some() && nodes[j].is_some() {
                        let from = nodes[i].take().unwrap();
                        let before = key(nodes[j].as_ref().unwrap());
                        sync(&from, nodes[j].as_mut().unwrap());
                        // Compared as sets of keys: a full transcript keeps its length.
                        changed |= key(nodes[j].as_ref().unwrap()) != before;
                        nodes[i] = Some(from);
                    }
                }
            }
            if !changed {
                break;
            }
        }
        let alive: Vec<&Room> = nodes.iter().flatten().collect();
        let reference = key(alive[0]);
        for r in &alive[1..] {
            assert_eq!(key(r), reference, "seed {seed}: transcripts differ");
        }
        // Every survivor is present in everyone's view (with the whole history at hand).
        for r in alive.iter().filter(|_| history > 1000) {
            for s in &alive {
                assert!(
                    r.is_present(&s.me()),
                    "seed {seed}: a survivor is missing from the roster"
                );
            }
        }
    }
}
