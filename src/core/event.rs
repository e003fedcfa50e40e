//! The chat's vocabulary: events, their order, and what the ui is shown. The validated names
//! and texts events carry live in [`super::name`] and are re-exported here.

use libp2p::PeerId;

pub use super::name::{
    BASE_TOPIC, MAX_ROOM_CHARS, MAX_TEXT_CHARS, MAX_USERNAME_CHARS, NameError, RoomName, Text,
    Username, is_bidi_control, is_invisible,
};
use super::time::WallTime;

/// Why a participant left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeaveReason {
    /// The participant left on purpose (`/quit`, end of input, Ctrl-C, SIGTERM).
    Quit,
    /// The participant's node vanished (crashed, frozen, cut off); announced by another node.
    Lost,
}

impl LeaveReason {
    /// The name used in JSON output and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            LeaveReason::Quit => "quit",
            LeaveReason::Lost => "lost",
        }
    }
}

/// What an event says.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Body {
    /// The author joined the room.
    Join,
    /// The author said something.
    Message(Text),
    /// The author left the room (`/quit` and the like).
    Leave,
    /// The author announces that another participant is gone: its node vanished.
    Lost {
        /// The participant that is gone.
        subject: PeerId,
        /// Its username.
        user: Username,
    },
    /// An event of a private room, as a node without the room's key holds it (a hub): what
    /// it says is sealed in its envelope (docs/PROTOCOL.md section 14); its user is
    /// [`Username::sealed`].
    Sealed,
}

/// An event with its signed encoding, exactly as its author produced it: what is published,
/// stored and served to peers catching up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedEvent {
    /// The decoded event.
    pub event: Event,
    /// The room topic the author signed it for: an event is never valid in another room.
    pub topic: String,
    /// The signed envelope (docs/PROTOCOL.md, "Events").
    pub bytes: std::sync::Arc<[u8]>,
}

/// One entry of the chat: authored by a peer, stamped with the author's Lamport time.
///
/// An event is identified by `(author, seq)`: every author numbers its own events 1, 2, 3...
/// Events are ordered by `(lamport, author's peer id bytes, seq)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Event {
    /// The authenticated author (the gossipsub message's signed source).
    pub author: PeerId,
    /// The author's per-run sequence number of this event, from 1.
    pub seq: u64,
    /// The author's Lamport stamp: the same number at every node.
    pub lamport: u64,
    /// When the author said it, by the author's clock: shown, never used for ordering.
    pub time: WallTime,
    /// The author's username.
    pub user: Username,
    /// What happened.
    pub body: Body,
}

/// The total-order key of an event: Lamport stamp, then author, then sequence number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrderKey {
    lamport: u64,
    author: Vec<u8>,
    seq: u64,
}

impl OrderKey {
    /// The key of `(lamport, author's peer id bytes, seq)`.
    pub fn new(lamport: u64, author: Vec<u8>, seq: u64) -> Self {
        Self {
            lamport,
            author,
            seq,
        }
    }

    /// The Lamport stamp.
    pub fn lamport(&self) -> u64 {
        self.lamport
    }

    /// The author's peer id, binary form.
    pub fn author(&self) -> &[u8] {
        &self.author
    }

    /// The sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

impl Event {
    /// Where this event sits in the total order.
    pub fn order_key(&self) -> OrderKey {
        OrderKey {
            lamport: self.lamport,
            author: self.author.to_bytes(),
            seq: self.seq,
        }
    }

    /// The participant the event is about: the author, or the subject of a `Lost`.
    pub fn participant(&self) -> (PeerId, &Username) {
        match &self.body {
            Body::Lost { subject, user } => (*subject, user),
            _ => (self.author, &self.user),
        }
    }

    /// The ui's view of this event; `sync` tells whether it arrived by catching up.
    pub fn view(&self, sync: bool) -> EventView {
        let (kind, text, reason) = match &self.body {
            Body::Join => (EventKind::Join, None, None),
            Body::Message(t) => (EventKind::Message, Some(t.as_str().to_owned()), None),
            Body::Leave => (EventKind::Leave, None, Some(LeaveReason::Quit)),
            Body::Lost { .. } => (EventKind::Leave, None, Some(LeaveReason::Lost)),
            Body::Sealed => (EventKind::Sealed, None, None),
        };
        let (peer, user) = self.participant();
        EventView {
            kind,
            lamport: self.lamport,
            time: self.time,
            user: user.as_str().to_owned(),
            peer: peer.to_base58(),
            text,
            reason,
            by: matches!(self.body, Body::Lost { .. }).then(|| self.author.to_base58()),
            sync,
            stored: false,
            ambiguous: false,
        }
    }
}

/// The kind of a chat event, as the ui names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A participant joined.
    Join,
    /// A participant said something.
    Message,
    /// A participant left.
    Leave,
    /// An event of a private room this node cannot read (a hub's log).
    Sealed,
}

impl EventKind {
    /// The name used in JSON output (`"join"`, `"message"`, `"leave"`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Join => "join",
            EventKind::Message => "message",
            EventKind::Leave => "leave",
            EventKind::Sealed => "sealed",
        }
    }
}

/// A chat event as the ui sees it: plain strings, no libp2p types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventView {
    /// Join, message or leave.
    pub kind: EventKind,
    /// The origin Lamport stamp.
    pub lamport: u64,
    /// When the author said it, by the author's clock (for a `lost` leave: when it was
    /// announced).
    pub time: WallTime,
    /// The participant's username (the author's, or for a `lost` leave the one who is gone).
    pub user: String,
    /// The participant's base58 peer id.
    pub peer: String,
    /// The message text (messages only).
    pub text: Option<String>,
    /// Why the participant left (leaves only).
    pub reason: Option<LeaveReason>,
    /// For a `lost` leave: the base58 peer id of the node that announced it.
    pub by: Option<String>,
    /// Whether the event arrived by catching up (history sync) rather than live.
    pub sync: bool,
    /// Whether it is earlier history read from this node's own store at start.
    pub stored: bool,
    /// Whether another participant uses the same username: the ui then shows the name with a
    /// peer id suffix (`client1#a1b2c3`), so that nobody can pass for someone else.
    pub ambiguous: bool,
}

/// An event for the ui and the room it is about: the topic of one of ours, or `None` for the
/// node as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The room's gossipsub topic.
    pub room: Option<String>,
    /// What happened.
    pub event: ChatEvent,
}

/// A room we are in, as `/rooms` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomView {
    /// Its gossipsub topic.
    pub topic: String,
    /// Its name (a private room's, if its ticket gave one).
    pub name: Option<String>,
    /// A private room.
    pub private: bool,
    /// How many are present, us included.
    pub present: usize,
}

/// A participant as `/who` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantView {
    /// Username.
    pub user: String,
    /// Base58 peer id.
    pub peer: String,
    /// Whether this is the local node.
    pub me: bool,
}

/// Everything the ui can be asked to show. Only the ui layer turns these into output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatEvent {
    /// The node listens: its peer id and full listen addresses.
    Ready {
        /// Our base58 peer id.
        peer: String,
        /// Our username.
        user: String,
        /// The gossipsub topic of our room.
        topic: String,
        /// Listen addresses, each ending in `/p2p/<peer>`.
        listen: Vec<String>,
    },
    /// A live join, message or leave.
    Chat(EventView),
    /// The answer to `/who`.
    Who(Vec<ParticipantView>),
    /// A room was opened beside the first (`--room` again, `/join`), or `/join` named one we
    /// are in already. Its events follow, tagged with `topic`.
    Opened(RoomView),
    /// We left a room (`/part`) and its leave is out: nothing more comes from it.
    Closed {
        /// Its topic.
        topic: String,
    },
    /// The answer to `/rooms`.
    Rooms(Vec<RoomView>),
    /// The answer to `/history`: the transcript in total order.
    History(Vec<EventView>),
    /// The answer to `/search`: stored messages with all the words, newest first.
    Search {
        /// The words, as typed.
        query: String,
        /// What was found.
        found: Vec<EventView>,
    },
    /// Something the user should know that is not an error (queued messages, for instance).
    Notice(String),
    /// A connection to a peer opened or closed (shown by the hub's log).
    Peer {
        /// Its base58 peer id.
        peer: String,
        /// Opened (true) or closed (false).
        connected: bool,
        /// The remote address.
        addr: String,
    },
    /// The hub started serving a room (gossipsub topic).
    Room {
        /// The topic.
        topic: String,
    },
    /// The user's input was refused, or something went wrong; nothing was sent.
    Error(String),
    /// A hub stopped (its last line).
    Stopped,
    /// Something the core or the network layer tells the user, typed; the ui words it.
    Status(crate::core::status::Status),
    /// A `--connect` address could not be reached (said once until it works), or works again
    /// after that.
    Dial {
        /// The address as given.
        addr: String,
        /// What happened.
        outcome: DialOutcome,
    },
    /// The answer to `/peers`: whom we are connected to.
    Links(Vec<LinkView>),
    /// A private room's invite ticket (at start, and for `/invite`): a bearer secret, shown
    /// only to our user, never logged.
    Ticket(String),
    /// The answer to `/addr`: our peer id and the addresses others can dial.
    Addresses {
        /// Our base58 peer id.
        peer: String,
        /// Listen addresses, each ending in `/p2p/<peer>`, relayed ones included.
        listen: Vec<String>,
    },
    /// Live events of one author were dropped over its rate, and sync has not brought them
    /// back since (said only when something is really missing).
    Dropped {
        /// The author's username, as it signed them.
        user: String,
        /// The author's base58 peer id.
        peer: String,
        /// How many of its events are still missing.
        missing: usize,
        /// The rate limit that dropped them (events per second).
        rate: u32,
    },
}

/// What became of dialling a `--connect` address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialOutcome {
    /// The dial failed; it is retried with backoff.
    Failed(DialFailure),
    /// Connected (after a failure that was reported).
    Connected {
        /// The peer reached there.
        peer: String,
    },
}

/// Why a dial failed, in the terms a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialFailure {
    /// Nothing listens at that address and port.
    Refused,
    /// No answer in time (a firewall, a host that is down, a wrong address).
    TimedOut,
    /// No route to that network or host.
    Unreachable,
    /// The host name did not resolve.
    NoSuchHost,
    /// Someone answered, but with another peer id than the address's `/p2p/ID`.
    WrongPeer {
        /// The peer id that answered.
        found: String,
    },
    /// The address is this node's own.
    OwnAddress,
    /// Anything else, as the network layer describes it.
    Other(String),
}

/// A connected peer, for `/peers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkView {
    /// Its base58 peer id.
    pub peer: String,
    /// Its username, if it is a present participant of our room.
    pub user: Option<String>,
    /// Where it was reached (`/p2p-circuit` for a connection relayed by a hub).
    pub addr: String,
    /// It is a hub (its hello said it keeps the room's history).
    pub hub: bool,
}
