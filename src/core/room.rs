//! The room: one participant's IO-less state machine (docs/PROTOCOL.md, "Clock rules" and
//! "Join, message, leave").
//!
//! It is driven by calls that each carry the input and, where time matters, `now`; it never reads
//! a clock, a socket or a terminal. What it wants done comes out of [`Room::poll_output`]: events
//! to publish and things to show. Its only timer, the join grace, is exposed by
//! [`Room::poll_timeout`] and fired by [`Room::handle_timeout`].

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use libp2p::PeerId;

use super::clock::LamportClock;
use super::event::{
    Body, ChatEvent, Event, LeaveReason, ParticipantView, RoomName, Text, Username,
};
use super::transcript::Transcript;

/// How long a node that expects peers waits for a first hello before it joins alone.
pub const JOIN_GRACE: Duration = Duration::from_millis(1500);
/// How many typed lines are held while the join is not yet stamped.
pub const PENDING_COMMANDS_CAP: usize = 256;
/// How many peers the roster tracks at most.
pub const ROSTER_CAP: usize = 4096;
/// After `/quit` during the join wait, how much longer the join may wait for a first hello (the
/// node must be gone within 2 s of the quit, leave linger included).
pub const QUIT_JOIN_WAIT: Duration = Duration::from_millis(300);
/// A received stamp may be at most this far ahead of the local clock.
pub const MAX_CLOCK_JUMP: u64 = 1 << 32;
/// No stamp may reach this value: it leaves the clock room for centuries of honest chat.
pub const MAX_STAMP: u64 = 1 << 62;

/// What a user asked for that needs the room's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCommand {
    /// Send a message.
    Say(Text),
    /// Show the participants.
    Who,
    /// Show the transcript in total order.
    History,
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
}

/// What the room wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this event to every participant.
    Publish(Event),
    /// Show this to the user.
    Show(ChatEvent),
}

/// Why an event or hello from a peer was refused. The peer is at fault; nothing is shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The event claims an author other than the peer that signed it.
    #[error("event claims author {claimed}, not its signer")]
    ForgedAuthor {
        /// The author named in the event.
        claimed: PeerId,
    },
    /// The stamp is absurdly far ahead of our clock, or too close to overflow.
    #[error("stamp {stamp} is too far ahead of the local clock {local}")]
    StampTooFar {
        /// The received stamp.
        stamp: u64,
        /// Our clock.
        local: u64,
    },
    /// The event claims to be ours.
    #[error("event claims to be our own")]
    OwnEvent,
    /// The hello is from a node in another room.
    #[error("hello from topic {0:?}, another room")]
    OtherRoom(String),
}

/// Room settings.
#[derive(Debug, Clone)]
pub struct RoomConfig {
    /// Our peer id.
    pub me: PeerId,
    /// Our username.
    pub user: Username,
    /// Our room.
    pub room: RoomName,
    /// How many events the transcript keeps.
    pub history: usize,
    /// How long to wait for a first hello before joining alone.
    pub join_grace: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Created,
    Waiting { deadline: Instant },
    Joined,
    Left,
}

#[derive(Debug, Clone)]
struct Presence {
    user: Username,
    lamport: u64,
    seq: u64,
    present: bool,
}

/// One participant's view of the room.
#[derive(Debug)]
pub struct Room {
    cfg: RoomConfig,
    topic: String,
    clock: LamportClock,
    seq: u64,
    phase: Phase,
    pending: VecDeque<UserCommand>,
    roster: BTreeMap<PeerId, Presence>,
    transcript: Transcript,
    outputs: VecDeque<Output>,
}

impl Room {
    /// A room not yet started: call [`Room::start`].
    pub fn new(cfg: RoomConfig) -> Self {
        Self {
            topic: cfg.room.topic(),
            transcript: Transcript::new(cfg.history),
            cfg,
            clock: LamportClock::new(),
            seq: 0,
            phase: Phase::Created,
            pending: VecDeque::new(),
            roster: BTreeMap::new(),
            outputs: VecDeque::new(),
        }
    }

    /// Starts the room. A node that expects peers (mDNS on, or `--connect` given) waits up to the
    /// join grace for a first hello so that its join is stamped after the room's past; a node
    /// that cannot meet anyone joins at once.
    pub fn start(&mut self, now: Instant, expect_peers: bool) {
        if self.phase != Phase::Created {
            return;
        }
        if expect_peers {
            self.phase = Phase::Waiting {
                deadline: now + self.cfg.join_grace,
            };
        } else {
            self.join();
        }
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

    /// When [`Room::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Waiting { deadline } => Some(deadline),
            _ => None,
        }
    }

    /// Fires the join grace if it has run out.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Phase::Waiting { deadline } = self.phase
            && now >= deadline
        {
            self.join();
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
            participants: self
                .roster
                .iter()
                .filter(|(_, p)| p.present)
                .map(|(peer, p)| Participant {
                    peer: *peer,
                    user: p.user.clone(),
                    lamport: p.lamport,
                    seq: p.seq,
                })
                .collect(),
        }
    }

    /// Takes a peer's hello: merges its clock and learns who is present. The sender's own entry
    /// is its join event, authenticated by the connection: shown if we had not seen it (it was
    /// published before we were connected). The first hello from our room ends the wait for the
    /// join.
    pub fn handle_hello(&mut self, from: PeerId, hello: Hello) -> Result<(), Rejection> {
        if hello.topic != self.topic {
            return Err(Rejection::OtherRoom(hello.topic));
        }
        self.check_stamp(hello.lamport)?;
        self.clock.merge(hello.lamport);
        for p in hello.participants {
            if p.peer == self.cfg.me || self.check_stamp(p.lamport).is_err() {
                continue;
            }
            if p.peer == from {
                let join = Event {
                    author: from,
                    seq: p.seq,
                    lamport: p.lamport,
                    user: p.user,
                    body: Body::Join,
                };
                if let Err(e) = self.handle_remote(from, join) {
                    tracing::debug!(%from, reason = %e, "join in hello refused");
                }
            } else {
                self.update_presence(p.peer, p.user, p.lamport, p.seq, true);
            }
        }
        tracing::debug!(%from, lamport = hello.lamport, "merged hello");
        // Only a participant's clock holds the room's past: a hello from another newcomer that
        // has not joined yet does not end the wait. (A joined sender's own entry went through
        // handle_remote above, which ends it.)
        Ok(())
    }

    /// A user command. Lines typed before the join is stamped wait for it; `/quit` shortens the
    /// wait to [`QUIT_JOIN_WAIT`] so that leaving is never delayed much.
    pub fn handle_command(&mut self, cmd: UserCommand, now: Instant) {
        match cmd {
            UserCommand::Who => self.show_who(),
            UserCommand::History => self.show_history(),
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
                        Phase::Created if quit => self.join(),
                        _ => {}
                    }
                }
                Phase::Joined => self.act(cmd),
                Phase::Left => self.show_error("you have left the room"),
            },
        }
    }

    /// A chat event from the network, signed by `source`. Returns whether it was new (and shown);
    /// a duplicate is accepted but shown once only.
    pub fn handle_remote(&mut self, source: PeerId, event: Event) -> Result<bool, Rejection> {
        if event.author != source {
            return Err(Rejection::ForgedAuthor {
                claimed: event.author,
            });
        }
        if event.author == self.cfg.me {
            return Err(Rejection::OwnEvent);
        }
        self.check_stamp(event.lamport)?;
        if self.transcript.contains(&event.author, event.seq) {
            return Ok(false);
        }
        self.clock.receive(event.lamport);
        // A participant's event carries its clock: the room's past is merged, the wait is over.
        let ends_wait = matches!(self.phase, Phase::Waiting { .. });
        match &event.body {
            Body::Join => self.update_presence(
                event.author,
                event.user.clone(),
                event.lamport,
                event.seq,
                true,
            ),
            Body::Leave(_) => self.update_presence(
                event.author,
                event.user.clone(),
                event.lamport,
                event.seq,
                false,
            ),
            Body::Message(_) => {}
        }
        self.outputs
            .push_back(Output::Show(ChatEvent::Chat(event.view())));
        self.transcript.insert(event);
        if ends_wait {
            self.join();
        }
        Ok(true)
    }

    fn check_stamp(&self, stamp: u64) -> Result<(), Rejection> {
        let local = self.clock.now();
        if stamp >= MAX_STAMP || stamp > local.saturating_add(MAX_CLOCK_JUMP) {
            return Err(Rejection::StampTooFar { stamp, local });
        }
        Ok(())
    }

    fn join(&mut self) {
        if !matches!(self.phase, Phase::Created | Phase::Waiting { .. }) {
            return;
        }
        self.phase = Phase::Joined;
        self.emit(Body::Join);
        while let Some(cmd) = self.pending.pop_front() {
            self.act(cmd);
        }
    }

    fn act(&mut self, cmd: UserCommand) {
        match cmd {
            UserCommand::Say(text) => self.emit(Body::Message(text)),
            UserCommand::Quit => {
                self.emit(Body::Leave(LeaveReason::Quit));
                self.phase = Phase::Left;
                self.pending.clear();
            }
            UserCommand::Who => self.show_who(),
            UserCommand::History => self.show_history(),
        }
    }

    /// Stamps, records, publishes and shows one of our own events.
    fn emit(&mut self, body: Body) {
        let lamport = self.clock.tick();
        self.seq += 1;
        let event = Event {
            author: self.cfg.me,
            seq: self.seq,
            lamport,
            user: self.cfg.user.clone(),
            body,
        };
        // Presence changes with joins and leaves only: a hello lists each participant's join.
        match event.body {
            Body::Join => {
                self.update_presence(self.cfg.me, self.cfg.user.clone(), lamport, self.seq, true)
            }
            Body::Leave(_) => {
                self.update_presence(self.cfg.me, self.cfg.user.clone(), lamport, self.seq, false)
            }
            Body::Message(_) => {}
        }
        // Shown first, so that whatever publishing reports (a queued notice) follows the line.
        self.outputs
            .push_back(Output::Show(ChatEvent::Chat(event.view())));
        self.outputs.push_back(Output::Publish(event.clone()));
        self.transcript.insert(event);
    }

    /// Last writer wins, by Lamport stamp.
    fn update_presence(
        &mut self,
        peer: PeerId,
        user: Username,
        lamport: u64,
        seq: u64,
        present: bool,
    ) {
        let new = Presence {
            user,
            lamport,
            seq,
            present,
        };
        if let Some(p) = self.roster.get_mut(&peer) {
            if lamport >= p.lamport {
                *p = new;
            }
            return;
        }
        if self.roster.len() >= ROSTER_CAP {
            tracing::warn!(%peer, "roster full; participant not tracked");
            return;
        }
        self.roster.insert(peer, new);
    }

    fn show_history(&mut self) {
        let events = self.transcript.iter().map(Event::view).collect();
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
                me: *peer == self.cfg.me,
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
    use crate::core::event::EventKind;

    fn room(name: &str) -> Room {
        Room::new(RoomConfig {
            me: PeerId::random(),
            user: Username::new(name).unwrap(),
            room: RoomName::lobby(),
            history: 100,
            join_grace: JOIN_GRACE,
        })
    }

    fn drain(r: &mut Room) -> (Vec<Event>, Vec<ChatEvent>) {
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

    /// Delivers every event `from` published to `to`, as gossipsub would.
    fn deliver(events: &[Event], to: &mut Room) {
        for e in events {
            to.handle_remote(e.author, e.clone()).unwrap();
        }
    }

    #[test]
    fn alone_joins_at_once_with_stamp_one() {
        let mut a = room("a");
        a.start(Instant::now(), false);
        let (p, s) = drain(&mut a);
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].lamport, &p[0].body), (1, &Body::Join));
        assert!(matches!(&s[0], ChatEvent::Chat(v) if v.kind == EventKind::Join && v.lamport == 1));
    }

    #[test]
    fn join_waits_for_a_hello_and_sorts_after_the_rooms_past() {
        let now = Instant::now();
        let mut a = room("a");
        a.start(now, false);
        for _ in 0..5 {
            a.handle_command(say("x"), Instant::now());
        }
        drain(&mut a);
        let mut b = room("b");
        b.start(now, true);
        assert!(
            drain(&mut b).0.is_empty(),
            "no join before the hello or the grace"
        );
        assert_eq!(b.poll_timeout(), Some(now + JOIN_GRACE));
        b.handle_hello(a.cfg.me, a.hello()).unwrap();
        let (p, _) = drain(&mut b);
        assert_eq!(p[0].body, Body::Join);
        assert!(
            p[0].lamport > a.clock(),
            "join {} must follow {}",
            p[0].lamport,
            a.clock()
        );
        b.handle_command(UserCommand::Who, Instant::now());
        let (_, s) = drain(&mut b);
        let ChatEvent::Who(list) = &s[0] else {
            panic!("{s:?}")
        };
        assert_eq!(list.len(), 2, "{list:?}");
    }

    #[test]
    fn grace_runs_out_and_the_node_joins_alone() {
        let now = Instant::now();
        let mut b = room("b");
        b.start(now, true);
        b.handle_command(say("early"), Instant::now());
        b.handle_timeout(now + Duration::from_millis(10));
        assert!(drain(&mut b).0.is_empty());
        b.handle_timeout(now + JOIN_GRACE);
        let (p, _) = drain(&mut b);
        assert_eq!(p.iter().map(|e| e.lamport).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(p[1].body, Body::Message(Text::new("early").unwrap()));
    }

    #[test]
    fn quit_while_waiting_shortens_the_wait_then_joins_says_and_leaves() {
        let now = Instant::now();
        let mut b = room("b");
        b.start(now, true);
        b.handle_command(say("hi"), now);
        b.handle_command(UserCommand::Quit, now);
        assert!(drain(&mut b).0.is_empty(), "still waiting for a hello");
        assert_eq!(b.poll_timeout(), Some(now + QUIT_JOIN_WAIT));
        b.handle_timeout(now + QUIT_JOIN_WAIT);
        let (p, _) = drain(&mut b);
        let bodies: Vec<_> = p.iter().map(|e| e.body.clone()).collect();
        assert_eq!(
            bodies,
            vec![
                Body::Join,
                Body::Message(Text::new("hi").unwrap()),
                Body::Leave(LeaveReason::Quit)
            ]
        );
        assert!(b.has_left());
    }

    #[test]
    fn a_hello_from_another_newcomer_does_not_end_the_wait() {
        let now = Instant::now();
        let mut b = room("b");
        let mut c = room("c");
        b.start(now, true);
        c.start(now, true);
        b.handle_hello(c.cfg.me, c.hello()).unwrap();
        assert!(
            !b.has_joined(),
            "c has not joined: its clock is not the room's"
        );
        // A joined participant's event ends it.
        let mut a = room("a");
        a.start(now, false);
        let (pa, _) = drain(&mut a);
        b.handle_remote(pa[0].author, pa[0].clone()).unwrap();
        assert!(b.has_joined());
        let (pb, _) = drain(&mut b);
        assert!(pb[0].lamport > pa[0].lamport);
    }

    #[test]
    fn hello_entries_with_wild_stamps_are_ignored() {
        let mut b = room("b");
        b.start(Instant::now(), false);
        let liar = PeerId::random();
        let hello = Hello {
            topic: "chitty-chat".into(),
            lamport: 3,
            participants: vec![Participant {
                peer: PeerId::random(),
                user: Username::new("ghost").unwrap(),
                lamport: MAX_STAMP - 1,
                seq: 1,
            }],
        };
        b.handle_hello(liar, hello).unwrap();
        b.handle_command(UserCommand::Who, Instant::now());
        let (_, s) = drain(&mut b);
        let ChatEvent::Who(list) = s.last().unwrap() else {
            panic!("{s:?}")
        };
        assert!(list.iter().all(|p| p.user != "ghost"), "{list:?}");
    }

    #[test]
    fn received_events_keep_their_origin_stamp_and_causality_holds() {
        let mut a = room("a");
        let mut b = room("b");
        a.start(Instant::now(), false);
        b.start(Instant::now(), false);
        for _ in 0..10 {
            a.handle_command(say("tick"), Instant::now());
        }
        let (pa, _) = drain(&mut a);
        drain(&mut b);
        deliver(&pa, &mut b);
        let (_, shown) = drain(&mut b);
        let stamps: Vec<u64> = shown
            .iter()
            .filter_map(|c| match c {
                ChatEvent::Chat(v) => Some(v.lamport),
                _ => None,
            })
            .collect();
        assert_eq!(stamps, pa.iter().map(|e| e.lamport).collect::<Vec<_>>());
        b.handle_command(say("reply"), Instant::now());
        let (pb, _) = drain(&mut b);
        assert!(pb[0].lamport > pa.last().unwrap().lamport);
    }

    #[test]
    fn duplicates_are_shown_once_and_identical_texts_are_distinct_events() {
        let mut a = room("a");
        let mut b = room("b");
        a.start(Instant::now(), false);
        b.start(Instant::now(), false);
        a.handle_command(say("ok"), Instant::now());
        a.handle_command(say("ok"), Instant::now());
        let (pa, _) = drain(&mut a);
        drain(&mut b);
        deliver(&pa, &mut b);
        assert_eq!(b.handle_remote(pa[1].author, pa[1].clone()), Ok(false));
        let (_, shown) = drain(&mut b);
        assert_eq!(shown.len(), 3, "join + two distinct ok messages: {shown:?}");
    }

    #[test]
    fn forged_authors_and_wild_stamps_are_rejected() {
        let mut a = room("a");
        let mut b = room("b");
        a.start(Instant::now(), false);
        b.start(Instant::now(), false);
        let (pa, _) = drain(&mut a);
        let mallory = PeerId::random();
        assert!(matches!(
            b.handle_remote(mallory, pa[0].clone()),
            Err(Rejection::ForgedAuthor { .. })
        ));
        let mut wild = pa[0].clone();
        wild.lamport = u64::MAX;
        assert!(matches!(
            b.handle_remote(wild.author, wild),
            Err(Rejection::StampTooFar { .. })
        ));
        assert!(b.clock() < 10);
    }

    #[test]
    fn a_join_published_before_we_connected_arrives_with_the_senders_hello() {
        let mut a = room("a");
        a.start(Instant::now(), false);
        let (pa, _) = drain(&mut a);
        let mut b = room("b");
        b.start(Instant::now(), true);
        a.handle_command(say("after the join"), Instant::now());
        drain(&mut a);
        let listed = a.hello().participants;
        assert_eq!(
            (listed[0].lamport, listed[0].seq),
            (pa[0].lamport, pa[0].seq),
            "the hello lists the join, not the latest event"
        );
        b.handle_hello(a.cfg.me, a.hello()).unwrap();
        let (pb, shown) = drain(&mut b);
        assert!(
            matches!(&shown[0], ChatEvent::Chat(v) if v.kind == EventKind::Join && v.user == "a" && v.lamport == pa[0].lamport)
        );
        assert!(pb[0].lamport > a.clock());
        // The same join arriving later by gossip is not shown twice.
        assert_eq!(b.handle_remote(pa[0].author, pa[0].clone()), Ok(false));
    }

    #[test]
    fn hellos_from_other_rooms_change_nothing() {
        let mut b = room("b");
        b.start(Instant::now(), true);
        let other = Hello {
            topic: "chitty-chat/elsewhere".into(),
            lamport: 99,
            participants: vec![],
        };
        assert!(matches!(
            b.handle_hello(PeerId::random(), other),
            Err(Rejection::OtherRoom(_))
        ));
        assert_eq!(b.clock(), 0);
        assert!(!b.has_joined());
    }

    #[test]
    fn leave_removes_from_who_and_history_is_in_total_order() {
        let mut a = room("a");
        let mut b = room("b");
        a.start(Instant::now(), false);
        b.start(Instant::now(), false);
        a.handle_command(UserCommand::Quit, Instant::now());
        let (pa, _) = drain(&mut a);
        drain(&mut b);
        deliver(&pa, &mut b);
        b.handle_command(UserCommand::Who, Instant::now());
        b.handle_command(UserCommand::History, Instant::now());
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
}
