//! The room: one participant's IO-less state machine (docs/PROTOCOL.md, "Clock rules", "Join,
//! message, leave", "Sync" and "Lost participants").
//!
//! It is driven by calls that each carry the input and, where time matters, `now`; every call
//! that may emit one of our events also carries `wall`, the wall-clock time the event is signed
//! with. It never reads a clock, a socket or a terminal. What it wants done comes out of [`Room::poll_output`]: events
//! to publish and things to show. Its timers (the join grace, staggered `lost` announcements)
//! are exposed by [`Room::poll_timeout`] and fired by [`Room::handle_timeout`].
//!
//! The room's validated state (clock, transcript, roster, rate, the rules every received event
//! goes through) is a [`Ledger`], the same type a hub keeps per room; the room adds what only a
//! participant has: the join wait, lines typed before it, the ranking of `lost` announcements
//! (`lost.rs`), its own sequence numbers, and what to show (`show.rs`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::identity::Keypair;

use super::command::UserCommand;
use super::event::{Body, ChatEvent, Event, OrderKey, RoomName, SignedEvent, Username};
use super::hello::Hello;
use super::ledger::{Keeper, Ledger};
use super::sign::Signer;
use super::status::Status;
use super::sync::{SyncRequest, SyncResponse};
use super::time::WallTime;
use super::transcript::{ColdQuery, Holding, Transcript};
use super::verdict::{Rejection, Verdict};
use crate::private::RoomKeys;

/// How long a node that expects peers waits to catch up with a participant before it joins alone.
pub const JOIN_GRACE: Duration = Duration::from_millis(1500);
/// How many typed lines are held while the join is not yet stamped.
pub const PENDING_COMMANDS_CAP: usize = 256;
/// After `/quit` during the join wait, how much longer the join may wait (the node must be gone
/// within 2 s of the quit, leave linger included).
pub const QUIT_JOIN_WAIT: Duration = Duration::from_millis(300);
/// When a participant vanishes, the connected participant with the lowest peer id announces it
/// at once; the next waits this long, the next twice as long, and so on, each standing down if
/// the announcement arrives first. One announcement, one stamp, everywhere. It exceeds the spread
/// of detection times between observers (pings every second), so the second in line does not
/// fire before the first has noticed.
pub const LOST_STAGGER: Duration = Duration::from_millis(1500);
/// Even the first in line waits this long before announcing a loss: a leave on its way by
/// another path (through a hub, say) then arrives first and nothing is announced.
pub const LOST_GRACE: Duration = Duration::from_millis(300);
/// A participant we heard from (a ping answered, a message) this recently, on a connection
/// still open, is alive: a `lost` announcement about it is false. Pings go every second; a
/// vanished one is announced only after its connection closed or 5 s of silence.
pub const ALIVE_WITHIN: Duration = Duration::from_millis(2500);
/// A `lost` announcement about a participant we know to be alive is blamed on its announcer
/// only if we have heard from it without a gap (none longer than [`ALIVE_WITHIN`]) for this
/// long: an honest announcer may have seen it vanish just before it came back (restarted under
/// its key, or thawed after a freeze). A participant that comes back reconnects to everyone
/// within a second or two, which cancels any announcement still waiting its turn.
pub const ALIVE_STEADY: Duration = Duration::from_secs(10);
/// A participant announced lost while it is still here joins again at most this often per
/// announcer: a peer repeating false announcements does not make it join again and again.
pub const REJOIN_EVERY: Duration = Duration::from_secs(60);

/// What the room wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this event to every participant.
    Publish(SignedEvent),
    /// Show this to the user.
    Show(ChatEvent),
    /// `peer` sent or made something only a liar (or a broken node) would: count it against
    /// it (enough of them cut it off, docs/PROTOCOL.md section 8).
    Offence {
        /// Whom to blame.
        peer: PeerId,
        /// What it did.
        reason: Rejection,
    },
}

/// A `lost` announcement held back until its subject shows it wrong, or the moment passes.
#[derive(Debug)]
struct Doubt {
    /// When it is shown, if nothing newer came from its subject.
    due: Instant,
    /// The announcement.
    lost: Event,
    /// Whether its subject had said something live within [`ALIVE_WITHIN`] before it came.
    talking: bool,
}

/// Room settings.
#[derive(Debug, Clone)]
pub struct RoomConfig {
    /// Our key: it signs our events.
    pub keypair: Keypair,
    /// Our username.
    pub user: Username,
    /// Our room (a private room's display name, if it has one).
    pub room: RoomName,
    /// A private room's keys: its topic, and the key that seals what we say.
    pub private: Option<RoomKeys>,
    /// How many events the transcript keeps.
    pub history: usize,
    /// How long to wait to catch up with a participant before joining alone.
    pub join_grace: Duration,
    /// The sequence number before our first event. A key outlives a run, and events are
    /// identified by `(author, seq)`: each run must number above every earlier one (the event
    /// loop uses the start time in microseconds), or peers would take new events for old.
    pub first_seq: u64,
    /// Live events taken per second per author (bursts of twice that).
    pub max_rate: u32,
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
    /// The room's validated state, shared in shape with a hub's.
    ledger: Ledger,
    seq: u64,
    phase: Phase,
    pending: VecDeque<UserCommand>,
    /// Peers that had joined when they said hello: catching up with one ends the join wait.
    historians: HashSet<PeerId>,
    /// Participants we saw vanish, and when we announce it unless someone else does first.
    lost: HashMap<PeerId, Instant>,
    /// Peers with an open connection: only they take part in the ranking for announcements.
    connected: HashSet<PeerId>,
    /// When each connected peer was last heard from (a ping answered, a message).
    heard: HashMap<PeerId, Instant>,
    /// Since when each connected peer has been heard from without a gap longer than
    /// [`ALIVE_WITHIN`].
    steady: HashMap<PeerId, Instant>,
    /// Per announcer of a `lost` about us, when we last joined again because of it.
    rejoined: HashMap<PeerId, Instant>,
    /// When we join again, announced lost while here, once [`REJOIN_EVERY`] allows.
    rejoin_at: Option<Instant>,
    /// Live `lost` announcements about a participant we have no connection to (so no sign of
    /// its life of our own), shown only if it says nothing newer within [`ALIVE_WITHIN`] (then
    /// it is gone); if it does, they were false.
    doubtful: Vec<Doubt>,
    /// When each author's newest live event was taken, kept for [`ALIVE_WITHIN`]: whether a
    /// `lost` about it came while it was still talking.
    spoke: HashMap<PeerId, Instant>,
    /// Events learned while waiting to join, shown in total order just before the join.
    held: Vec<(OrderKey, Event, bool)>,
    outputs: VecDeque<Output>,
    /// Whether the user was warned that our key signs events this run never sent.
    told_foreign_own: bool,
}

impl Room {
    /// A room not yet started: call [`Room::start`].
    pub fn new(cfg: RoomConfig) -> Self {
        let seq = cfg.first_seq;
        let me = cfg.keypair.peer_id();
        let keeper = Keeper::Participant {
            me,
            first_seq: cfg.first_seq,
        };
        Self {
            me,
            ledger: Ledger::new(
                cfg.private
                    .as_ref()
                    .map_or_else(|| cfg.room.topic(), |k| k.topic().to_owned()),
                keeper,
                cfg.history,
                cfg.max_rate,
            ),
            cfg,
            seq,
            phase: Phase::Created,
            pending: VecDeque::new(),
            historians: HashSet::new(),
            lost: HashMap::new(),
            connected: HashSet::new(),
            heard: HashMap::new(),
            steady: HashMap::new(),
            rejoined: HashMap::new(),
            rejoin_at: None,
            doubtful: Vec::new(),
            spoke: HashMap::new(),
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

    /// Takes the room's earlier history, read from this node's own store, before the room
    /// starts: checked like any page of history (nobody blamed: it is our own disk). Returns the
    /// newest `show` of them, marked as stored, for the caller to show when it is ready. Then
    /// every event newly taken is also held for the store ([`Room::drain_kept`]); these are
    /// not, being stored already.
    pub fn restore(
        &mut self,
        events: Vec<SignedEvent>,
        holds: &[Holding],
        show: usize,
    ) -> Vec<ChatEvent> {
        let page = self.ledger.restore_stored(events, holds);
        for (_, reason) in &page.refused {
            tracing::debug!(%reason, "a stored event not taken");
        }
        let skip = page.taken.len().saturating_sub(show);
        page.taken
            .iter()
            .skip(skip)
            .map(|event| {
                let mut view = self.view(event, false);
                view.stored = true;
                ChatEvent::Chat(view)
            })
            .collect()
    }

    /// The events newly taken (ours, live, by sync) since the last call, for the store; only
    /// after [`Room::restore`] (a room without a store keeps nothing for it).
    pub fn drain_kept(&mut self) -> Vec<SignedEvent> {
        self.ledger.drain_kept()
    }

    /// Our peer id.
    pub fn me(&self) -> PeerId {
        self.me
    }

    /// Our gossipsub topic.
    pub fn topic(&self) -> &str {
        self.ledger.topic()
    }

    /// Our Lamport clock.
    pub fn clock(&self) -> u64 {
        self.ledger.clock()
    }

    /// The sustained rate of live events taken per author, per second.
    pub fn max_rate(&self) -> u32 {
        self.ledger.max_rate()
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
        self.ledger.is_present(peer)
    }

    /// How many participants are present, us included once joined.
    pub fn present_count(&self) -> usize {
        self.ledger
            .roster()
            .iter()
            .filter(|(_, p)| p.present)
            .count()
    }

    /// The name of `peer`, if it is a present participant.
    pub fn name_of(&self, peer: &PeerId) -> Option<&Username> {
        self.ledger
            .roster()
            .get(peer)
            .filter(|p| p.present)
            .map(|p| &p.user)
    }

    /// Whether `peer` was a participant and is known to have left or vanished.
    pub fn has_departed(&self, peer: &PeerId) -> bool {
        self.ledger.roster().get(peer).is_some_and(|p| !p.present)
    }

    /// The events we know, in total order.
    pub fn transcript(&self) -> &Transcript {
        self.ledger.transcript()
    }

    /// When [`Room::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let join = match self.phase {
            Phase::Waiting { deadline } => Some(deadline),
            _ => None,
        };
        join.into_iter()
            .chain(self.lost.values().copied())
            .chain(self.rejoin_at)
            .chain(self.doubtful.iter().map(|d| d.due))
            .min()
    }

    /// Every peer we could reach has said hello and none is a participant or a hub: there is no
    /// past to catch up with, so the join need not wait out the grace. (Called by the event
    /// loop once discovery has had its time; a participant found later is caught up with then.)
    pub fn end_wait_among_newcomers(&mut self, wall: WallTime) {
        if matches!(self.phase, Phase::Waiting { .. }) && self.historians.is_empty() {
            self.join(wall);
        }
    }

    /// How many typed lines wait for our join.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
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
        // Nothing newer from its subject: the announcement was true, and is shown now.
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.doubtful)
            .into_iter()
            .partition(|d| d.due <= now);
        self.doubtful = later;
        self.spoke
            .retain(|_, t| now.saturating_duration_since(*t) < ALIVE_WITHIN);
        for Doubt { lost, .. } in due {
            let view = self.view(&lost, false);
            self.outputs.push_back(Output::Show(ChatEvent::Chat(view)));
        }
        if self.rejoin_at.is_some_and(|t| t <= now) {
            self.rejoin_at = None;
            if self.phase == Phase::Joined && !self.is_present(&self.me) {
                self.emit(Body::Join, wall);
            }
        }
    }

    /// The next thing the room wants done.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Our hello, sent on every new connection and as the answer to every hello.
    pub fn hello(&self) -> Hello {
        self.ledger.hello()
    }

    /// Takes a peer's hello (it moves neither our clock nor `/who`: see
    /// [`Ledger::merge_hello`]). If the sender lists itself it is a participant, whose history
    /// the join waits for (see [`Room::handle_sync_response`]). An error is held against the
    /// sender when it is a [`Rejection::WildClaim`].
    pub fn handle_hello(&mut self, from: PeerId, hello: Hello) -> Result<(), Rejection> {
        let (lamport, archive) = (hello.lamport, hello.archive);
        let listed = self.ledger.merge_hello(from, hello)?;
        if (listed || archive) && matches!(self.phase, Phase::Waiting { .. }) {
            self.historians.insert(from);
        }
        tracing::debug!(%from, lamport, "merged hello");
        Ok(())
    }

    /// The oldest event in memory, when older ones are held in the store only.
    pub fn cold_below(&self) -> Option<Option<OrderKey>> {
        self.transcript().cold_below().map(|k| k.cloned())
    }

    /// What we have, for a peer to send us what we lack.
    pub fn sync_request(&self) -> SyncRequest {
        self.ledger.sync_request()
    }

    /// Answers a peer's sync request with the oldest page of what it lacks; `cold` reads what
    /// memory no longer holds from the store.
    pub fn handle_sync_request(
        &self,
        req: &SyncRequest,
        cold: impl FnOnce(&ColdQuery) -> Vec<SignedEvent>,
    ) -> SyncResponse {
        self.ledger.handle_sync_request(req, cold)
    }

    /// Takes a page of history from `from`: each event is merged and shown like a live one, marked
    /// as caught up. Returns whether to ask for the next page. Catching up completely with a
    /// participant ends the join wait: its past is now ours, and our join follows it.
    pub fn handle_sync_response(
        &mut self,
        from: PeerId,
        resp: SyncResponse,
        now: Instant,
        wall: WallTime,
    ) -> bool {
        let page = self.ledger.take_page(from, resp.events);
        let new = page.taken.len();
        for event in page.taken {
            self.took(&event, true, now, wall);
        }
        for (blamed, reason) in page.refused {
            match (&reason, blamed) {
                // Said once: the same events come back with every anti-entropy round.
                (Rejection::ForeignOwn { .. }, _) if !self.told_foreign_own => {
                    self.told_foreign_own = true;
                    tracing::warn!(%from, %reason, "sync event refused");
                }
                (_, Some(peer)) => self.outputs.push_back(Output::Offence { peer, reason }),
                (_, None) => tracing::debug!(%from, %reason, "sync event refused"),
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
            UserCommand::Peers
            | UserCommand::Addresses
            | UserCommand::Invite
            | UserCommand::Search(_)
            | UserCommand::Join(_)
            | UserCommand::Rooms => {}
            // Leaving one room is the room's leave.
            UserCommand::Part => self.handle_command(UserCommand::Quit, now, wall),
            UserCommand::Say(_) | UserCommand::Quit => match self.phase {
                Phase::Created | Phase::Waiting { .. } => {
                    let quit = cmd == UserCommand::Quit;
                    if self.pending.len() >= PENDING_COMMANDS_CAP && !quit {
                        self.show(Status::TooManyPending);
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
                Phase::Left => self.show(Status::HaveLeft),
            },
        }
    }

    /// Checks a live event without taking it: what [`Room::handle_remote`] would refuse. (Its
    /// author's signature was checked when it was decoded.)
    pub fn check_remote(&self, event: &SignedEvent) -> Result<(), Rejection> {
        self.ledger.check(event)
    }

    /// A live chat event, without the rate limit. Returns whether it was new (and shown); a
    /// duplicate is accepted but shown once.
    pub fn handle_remote(
        &mut self,
        event: SignedEvent,
        now: Instant,
        wall: WallTime,
    ) -> Result<bool, Rejection> {
        match self.ledger.accept(event)? {
            Some(event) => {
                self.took(&event, false, now, wall);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// `peer` showed a sign of life at `now` (a ping answered, a message): a `lost`
    /// announcement about it in the next [`ALIVE_WITHIN`] is false.
    pub fn heard_from(&mut self, peer: PeerId, now: Instant) {
        if self.connected.contains(&peer) {
            let gap = self
                .heard
                .insert(peer, now)
                .is_none_or(|t| now.saturating_duration_since(t) >= ALIVE_WITHIN);
            if gap {
                self.steady.insert(peer, now);
            }
        }
    }

    /// Whether we know `peer` to be alive at `now`: connected and heard from a moment ago.
    fn known_alive(&self, peer: &PeerId, now: Instant) -> bool {
        *peer == self.me
            || self.connected.contains(peer)
                && self
                    .heard
                    .get(peer)
                    .is_some_and(|t| now.saturating_duration_since(*t) < ALIVE_WITHIN)
    }

    /// Whether `peer` has been alive to us for a while without a break ([`ALIVE_STEADY`]), so
    /// that nobody honest can have seen it vanish lately.
    fn steadily_alive(&self, peer: &PeerId, now: Instant) -> bool {
        *peer == self.me
            || self.known_alive(peer, now)
                && self
                    .steady
                    .get(peer)
                    .is_some_and(|t| now.saturating_duration_since(*t) >= ALIVE_STEADY)
    }

    /// A live chat event from gossipsub, through the ledger's admit pipeline (decoded, author
    /// `cut_off` or not, checked, known, within its author's rate): what to tell gossipsub and
    /// whom to blame. An accepted event is shown like any other.
    pub fn admit<E: std::fmt::Display>(
        &mut self,
        decoded: Result<SignedEvent, E>,
        cut_off: bool,
        now: Instant,
        wall: WallTime,
    ) -> Verdict {
        // Our own presence follows what others were told (so that we join again); anyone
        // else's stays as we see it.
        // A join of someone this screen shows joined (never shown gone): it rejoined after a
        // `lost` about it that we judged false, or came back before anyone told us it left.
        // Taken, not shown again.
        let joined_already = decoded.as_ref().ok().is_some_and(|e| {
            matches!(e.event.body, Body::Join)
                && self
                    .ledger
                    .roster()
                    .get(&e.event.author)
                    .is_some_and(|p| p.present && p.from_event && !p.left && !p.lost)
        });
        let (connected, heard) = (&self.connected, &self.heard);
        let alive = |p: &PeerId| {
            connected.contains(p)
                && heard
                    .get(p)
                    .is_some_and(|t| now.saturating_duration_since(*t) < ALIVE_WITHIN)
        };
        let verdict = self.ledger.admit(decoded, cut_off, now, alive);
        if let Verdict::Accept(event) = &verdict {
            self.still_talking(event);
            if !matches!(event.body, Body::Lost { .. }) {
                self.spoke.insert(event.author, now);
            }
            match &event.body {
                Body::Lost { subject, .. } if self.known_alive(subject, now) => {
                    self.false_lost(event, *subject, now, wall)
                }
                Body::Lost { subject, .. }
                    if self.phase == Phase::Joined
                        && !self.connected.contains(subject)
                        && !self.lost.contains_key(subject) =>
                {
                    // No view of our own (we did not see it vanish either): taken (presence and
                    // transcript as everywhere), shown only if its subject says nothing newer
                    // in a moment.
                    self.took_quietly(event, now);
                    let talking = self
                        .spoke
                        .get(subject)
                        .is_some_and(|t| now.saturating_duration_since(*t) < ALIVE_WITHIN);
                    self.doubtful.push(Doubt {
                        due: now + ALIVE_WITHIN,
                        lost: event.clone(),
                        talking,
                    });
                }
                Body::Join if joined_already && self.phase == Phase::Joined => {
                    tracing::debug!(author = %event.author, "a join of someone shown here all along: not shown again");
                }
                _ => self.took(event, false, now, wall),
            }
        }
        verdict
    }

    /// A live event of `event.author`'s own: it is alive, and any `lost` announcement about it
    /// held back and stamped before this event was false (blamed on its announcer, never
    /// shown). A join is no such proof: a participant that really vanished and came back
    /// (restarted, or back from a partition) joins again, and the announcement is then shown
    /// before it; unless the announcement came while it was still talking (a real loss is
    /// seen only seconds after the last sign of life), when the join answers a `lost` about
    /// itself: then the announcement is dropped, neither shown nor blamed (the two orders of
    /// the same events must not make a difference).
    fn still_talking(&mut self, event: &Event) {
        let author = event.author;
        let stamp = event.lamport;
        let rejoined = matches!(event.body, Body::Join);
        let mut false_ones = Vec::new();
        let mut true_ones = Vec::new();
        self.doubtful.retain(|d| {
            let lost = &d.lost;
            let older = matches!(&lost.body, Body::Lost { subject, .. } if *subject == author)
                && lost.lamport < stamp;
            if older && rejoined && d.talking {
                tracing::debug!(announcer = %lost.author, subject = %author, "a lost about someone talking, answered by a join: not shown");
            } else if older && rejoined {
                true_ones.push(lost.clone());
            } else if older {
                false_ones.push((lost.author, author));
            }
            !older
        });
        for lost in true_ones {
            let view = self.view(&lost, false);
            self.outputs.push_back(Output::Show(ChatEvent::Chat(view)));
        }
        for (announcer, subject) in false_ones {
            tracing::debug!(%announcer, %subject, "lost announcement refuted by its subject");
            self.outputs.push_back(Output::Offence {
                peer: announcer,
                reason: Rejection::FalseLost { subject },
            });
        }
    }

    /// What [`Room::took`] does for a `lost` announcement, but not showing it (yet).
    fn took_quietly(&mut self, event: &Event, _now: Instant) {
        if let Body::Lost { subject, .. } = &event.body
            && !self.is_present(subject)
        {
            self.lost.remove(subject);
        }
    }

    /// A live `lost` announcement about a participant we know to be alive: recorded (so every
    /// transcript is the same) but not shown, the subject still present here, and the
    /// announcer blamed. About us, it made the others think us gone: we join again, at most
    /// once per announcer per [`REJOIN_EVERY`]; and the announcer is blamed only if it is
    /// itself connected to us and answering (it would have no connection to us to lose): we
    /// may well have been frozen or cut off, and be hearing it late. Either way only if that
    /// sign of life has lasted [`ALIVE_STEADY`] without a break.
    fn false_lost(&mut self, event: &Event, subject: PeerId, now: Instant, wall: WallTime) {
        tracing::debug!(announcer = %event.author, %subject, "false lost announcement");
        let witness = if subject == self.me {
            event.author
        } else {
            subject
        };
        if self.steadily_alive(&witness, now) {
            self.outputs.push_back(Output::Offence {
                peer: event.author,
                reason: Rejection::FalseLost { subject },
            });
        }
        if subject == self.me {
            self.rejoin(event.author, now, wall);
        }
    }

    /// What the room does with an event the ledger has just taken: no loss to announce for
    /// whoever left, show it (or hold it until our join), rejoin if it says we are gone.
    fn took(&mut self, event: &Event, sync: bool, now: Instant, wall: WallTime) {
        match &event.body {
            // Left on purpose: nothing to announce.
            Body::Leave => {
                self.lost.remove(&event.author);
            }
            Body::Lost { subject, .. } => {
                if !self.is_present(subject) {
                    self.lost.remove(subject);
                }
            }
            Body::Join | Body::Message(_) | Body::Sealed => {}
        }
        let declared_lost =
            matches!(&event.body, Body::Lost { subject, .. } if *subject == self.me);
        // A `lost` learned by sync whose subject has since said something of its own (newer
        // in total order, already here) was false or is past: recorded, not shown.
        let refuted = sync
            && matches!(&event.body, Body::Lost { subject, .. } if self
                .ledger
                .roster()
                .get(subject)
                .and_then(|p| p.said.as_ref())
                .is_some_and(|said| *said > event.order_key()));
        if refuted {
            tracing::debug!(announcer = %event.author, "a lost learned by sync, refuted by its subject's newer line: not shown");
        } else if matches!(self.phase, Phase::Created | Phase::Waiting { .. }) {
            // Shown with the rest of the past, in order, just before our join; its view is made
            // then, when the roster knows everyone the past names (so a name that looks like a
            // later participant's gets its suffix too).
            self.held.push((event.order_key(), event.clone(), sync));
        } else {
            let view = self.view(event, sync);
            self.outputs.push_back(Output::Show(ChatEvent::Chat(view)));
        }
        if declared_lost {
            // Someone thought we were gone (a partition, a frozen process): we are back.
            self.rejoin(event.author, now, wall);
        }
    }

    /// Joins again after `announcer` announced us lost while we are here: at once, unless this
    /// announcer made us join again within [`REJOIN_EVERY`]; then when that has passed, if we
    /// are still taken for gone.
    fn rejoin(&mut self, announcer: PeerId, now: Instant, wall: WallTime) {
        if self.phase != Phase::Joined || self.is_present(&self.me) {
            return;
        }
        match self.rejoined.get(&announcer) {
            Some(last) if now < *last + REJOIN_EVERY => {
                let at = *last + REJOIN_EVERY;
                self.rejoin_at = Some(self.rejoin_at.map_or(at, |t| t.min(at)));
            }
            _ => {
                if self.rejoined.len() >= crate::core::roster::ROSTER_CAP {
                    self.rejoined
                        .retain(|_, t| now.saturating_duration_since(*t) < REJOIN_EVERY);
                }
                if self.rejoined.len() < crate::core::roster::ROSTER_CAP {
                    self.rejoined.insert(announcer, now);
                }
                self.emit(Body::Join, wall);
            }
        }
    }

    fn join(&mut self, wall: WallTime) {
        if !matches!(self.phase, Phase::Created | Phase::Waiting { .. }) {
            return;
        }
        self.phase = Phase::Joined;
        self.historians.clear();
        let mut held = std::mem::take(&mut self.held);
        held.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, event, sync) in held {
            let view = self.view(&event, sync);
            self.outputs.push_back(Output::Show(ChatEvent::Chat(view)));
        }
        self.emit(Body::Join, wall);
        while let Some(cmd) = self.pending.pop_front() {
            self.act(cmd, wall);
        }
    }

    /// Says a line or leaves, once joined: the only commands that wait for the join
    /// ([`Room::handle_command`] answers the others, and turns `/part` into the leave).
    fn act(&mut self, cmd: UserCommand, wall: WallTime) {
        match cmd {
            UserCommand::Say(text) => self.emit(Body::Message(text), wall),
            UserCommand::Quit => {
                self.emit(Body::Leave, wall);
                self.phase = Phase::Left;
                self.pending.clear();
                self.lost.clear();
            }
            // Never waits nor comes here.
            _ => {}
        }
    }

    /// Stamps, signs, records, shows and publishes one of our own events, said at `wall`.
    fn emit(&mut self, body: Body, wall: WallTime) {
        let lamport = self.ledger.tick();
        self.seq += 1;
        let event = Event {
            author: self.me,
            seq: self.seq,
            lamport,
            time: wall,
            user: self.cfg.user.clone(),
            body,
        };
        let signed = match &self.cfg.private {
            Some(room) => self.cfg.keypair.seal_event(event, room),
            None => self.cfg.keypair.sign_event(event, self.ledger.topic()),
        };
        self.ledger.record_own(signed.clone());
        // Shown first, so that whatever publishing reports (a queued notice) follows the line.
        self.outputs.push_back(Output::Show(ChatEvent::Chat(
            self.view(&signed.event, false),
        )));
        self.outputs.push_back(Output::Publish(signed));
    }
}

mod lost;
mod show;

#[cfg(test)]
mod tests;
