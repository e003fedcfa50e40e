//! The chat's vocabulary: validated names and texts, events, and what the ui is shown.
//!
//! Every type here checks its invariants when it is built ([`Username::new`], [`Text::new`],
//! [`RoomName::new`]), so the rest of the crate never sees an invalid name or text, whether it was
//! typed by the user or sent by a peer (docs/PROTOCOL.md, section 5, "Names and texts").

use std::fmt;

use libp2p::PeerId;

use super::time::WallTime;

/// Longest chat message, in Unicode scalar values (the assignment's 128 characters).
pub const MAX_TEXT_CHARS: usize = 128;
/// Longest username, in Unicode scalar values.
pub const MAX_USERNAME_CHARS: usize = 32;
/// Longest room name, in Unicode scalar values.
pub const MAX_ROOM_CHARS: usize = 64;
/// The gossipsub topic of the default room; `--room NAME` uses `chitty-chat/NAME`.
pub const BASE_TOPIC: &str = "chitty-chat";

/// Why a username, room name or text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Nothing was given.
    #[error("{what} is empty")]
    Empty {
        /// What was being named ("username", "room name", "message").
        what: &'static str,
    },
    /// More characters than the limit.
    #[error("{what} has {chars} characters; the limit is {limit}")]
    TooLong {
        /// What was being named.
        what: &'static str,
        /// How many characters it had.
        chars: usize,
        /// The limit.
        limit: usize,
    },
    /// A whitespace character where none is allowed.
    #[error("{what} contains whitespace")]
    Whitespace {
        /// What was being named.
        what: &'static str,
    },
    /// A `#` in a username.
    #[error(
        "username contains '#', which marks the peer id suffix of names shared by several participants"
    )]
    Hash,
    /// A control character (escape sequences, newlines, NUL...), which could corrupt a terminal.
    #[error("{what} contains a control character (U+{code:04X})")]
    Control {
        /// What was being named.
        what: &'static str,
        /// The offending code point.
        code: u32,
    },
    /// An invisible character in a username or room name (Unicode Default_Ignorable_Code_Point:
    /// zero-width spaces and joiners, bidirectional controls, variation selectors, Hangul
    /// fillers, tags...): `pat` followed by a zero-width space would look exactly like `pat`.
    #[error("{what} contains an invisible character (U+{code:04X})")]
    Invisible {
        /// What was being named.
        what: &'static str,
        /// The offending code point.
        code: u32,
    },
    /// A bidirectional control character in a message (Unicode Bidi_Control): it would reorder
    /// the rest of the terminal line it is shown on.
    #[error(
        "{what} contains a bidirectional control character (U+{code:04X}), which would reorder the line it is shown on"
    )]
    Bidi {
        /// What was being named.
        what: &'static str,
        /// The offending code point.
        code: u32,
    },
}

/// Unicode's Default_Ignorable_Code_Point property (DerivedCoreProperties.txt, the same ranges
/// from Unicode 14.0 to 16.0): code points a renderer shows as nothing at all. It is the set
/// that TR39 skeletons drop, so a name holding one would also pass for the name without it.
const DEFAULT_IGNORABLE: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{034F}', '\u{034F}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{115F}', '\u{1160}'),
    ('\u{17B4}', '\u{17B5}'),
    ('\u{180B}', '\u{180F}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{206F}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{FE00}', '\u{FE0F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFA0}', '\u{FFA0}'),
    ('\u{FFF0}', '\u{FFF8}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0000}', '\u{E0FFF}'),
];

/// Unicode's Bidi_Control property (PropList.txt): the marks, embeddings, overrides and isolates
/// that change the display order of the text around them.
const BIDI_CONTROL: &[(char, char)] = &[
    ('\u{061C}', '\u{061C}'),
    ('\u{200E}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2066}', '\u{2069}'),
];

fn in_ranges(c: char, ranges: &[(char, char)]) -> bool {
    ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi)
}

/// Whether `c` is invisible (Default_Ignorable_Code_Point), refused in names.
pub fn is_invisible(c: char) -> bool {
    in_ranges(c, DEFAULT_IGNORABLE)
}

/// Whether `c` is a bidirectional control (Bidi_Control), refused in names and texts.
pub fn is_bidi_control(c: char) -> bool {
    in_ranges(c, BIDI_CONTROL)
}

/// Which characters a string may hold besides the printable ones.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rules {
    /// A name: no whitespace, nothing invisible (bidirectional controls included).
    Name,
    /// A message: spaces allowed, invisible joiners allowed (emoji sequences, Persian and Indic
    /// scripts need them), bidirectional controls refused.
    Text,
}

fn check_chars(s: &str, what: &'static str, limit: usize, rules: Rules) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty { what });
    }
    let chars = s.chars().count();
    if chars > limit {
        return Err(NameError::TooLong { what, chars, limit });
    }
    for c in s.chars() {
        if c.is_control() {
            return Err(NameError::Control {
                what,
                code: c as u32,
            });
        }
        let code = c as u32;
        match rules {
            Rules::Name if c.is_whitespace() => return Err(NameError::Whitespace { what }),
            Rules::Name if is_invisible(c) => return Err(NameError::Invisible { what, code }),
            Rules::Text if is_bidi_control(c) => return Err(NameError::Bidi { what, code }),
            Rules::Name | Rules::Text => {}
        }
    }
    Ok(())
}

/// A participant's chosen name: 1 to 32 characters, no whitespace, no control or invisible
/// characters, no `#`.
///
/// It carries its Unicode TR39 skeleton, computed once when the name is built: two names with
/// the same skeleton look alike (`pat` with a Latin or a Cyrillic `а`, `client1` and `clientl`),
/// and the ui tells them apart as it tells apart two uses of one name. Equality, order and hash
/// are the name's own; the skeleton follows from it.
#[derive(Debug, Clone)]
pub struct Username {
    name: String,
    /// The skeleton, when it differs from the name (most names are their own skeleton, and keep
    /// no second copy).
    skeleton: Option<Box<str>>,
}

impl Username {
    /// Validates `s` as a username. `#` is refused: it marks the peer-id suffix that tells
    /// apart two participants of the same name (`client1#a1b2c3`), which no name may imitate.
    pub fn new(s: impl Into<String>) -> Result<Self, NameError> {
        let s = s.into();
        check_chars(&s, "username", MAX_USERNAME_CHARS, Rules::Name)?;
        if s.contains('#') {
            return Err(NameError::Hash);
        }
        let skeleton: String = unicode_security::skeleton(&s).collect();
        Ok(Self {
            skeleton: (skeleton != s).then(|| skeleton.into_boxed_str()),
            name: s,
        })
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The name's TR39 skeleton: what it looks like, whatever script its letters come from.
    pub fn skeleton(&self) -> &str {
        self.skeleton.as_deref().unwrap_or(&self.name)
    }

    /// Whether the two names look alike (same skeleton), identical names included.
    pub fn looks_like(&self, other: &Username) -> bool {
        self.skeleton() == other.skeleton()
    }
}

impl PartialEq for Username {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Username {}

impl PartialOrd for Username {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Username {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name.cmp(&other.name)
    }
}

impl std::hash::Hash for Username {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// A room name: 1 to 64 characters, no whitespace, no control or invisible characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoomName(Option<String>);

impl RoomName {
    /// The default room, topic `chitty-chat`.
    pub fn lobby() -> Self {
        Self(None)
    }

    /// Validates `s` as a room name (topic `chitty-chat/<s>`).
    pub fn new(s: impl Into<String>) -> Result<Self, NameError> {
        let s = s.into();
        check_chars(&s, "room name", MAX_ROOM_CHARS, Rules::Name)?;
        Ok(Self(Some(s)))
    }

    /// The gossipsub topic this room uses; it is also what the hello exchange compares.
    pub fn topic(&self) -> String {
        match &self.0 {
            None => BASE_TOPIC.to_owned(),
            Some(name) => format!("{BASE_TOPIC}/{name}"),
        }
    }
}

/// The text of a chat message: 1 to 128 characters, no control characters, no bidirectional
/// controls.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Text(String);

impl Text {
    /// Validates `s` as a message text.
    pub fn new(s: impl Into<String>) -> Result<Self, NameError> {
        let s = s.into();
        check_chars(&s, "message", MAX_TEXT_CHARS, Rules::Text)?;
        Ok(Self(s))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

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
}

impl EventKind {
    /// The name used in JSON output (`"join"`, `"message"`, `"leave"`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Join => "join",
            EventKind::Message => "message",
            EventKind::Leave => "leave",
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
    /// Whether another participant uses the same username: the ui then shows the name with a
    /// peer id suffix (`client1#a1b2c3`), so that nobody can pass for someone else.
    pub ambiguous: bool,
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
    /// The answer to `/history`: the transcript in total order.
    History(Vec<EventView>),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_rules() {
        assert!(Username::new("client1").is_ok());
        assert!(Username::new("ü".repeat(32)).is_ok());
        assert_eq!(
            Username::new(""),
            Err(NameError::Empty { what: "username" })
        );
        assert!(matches!(
            Username::new("a".repeat(33)),
            Err(NameError::TooLong { chars: 33, .. })
        ));
        assert!(matches!(
            Username::new("a b"),
            Err(NameError::Whitespace { .. })
        ));
        assert_eq!(Username::new("client1#a1b2c3"), Err(NameError::Hash));
        assert!(matches!(
            Username::new("a\u{1b}[2J"),
            Err(NameError::Control { code: 0x1b, .. })
        ));
    }

    #[test]
    fn texts_count_characters_not_bytes() {
        assert!(Text::new("é".repeat(128)).is_ok());
        assert!(matches!(
            Text::new("é".repeat(129)),
            Err(NameError::TooLong {
                chars: 129,
                limit: 128,
                ..
            })
        ));
        assert!(Text::new("hello world").is_ok());
        assert!(matches!(
            Text::new("bell\u{7}"),
            Err(NameError::Control { code: 7, .. })
        ));
        assert!(matches!(Text::new(""), Err(NameError::Empty { .. })));
    }

    /// Names that would look like another name are refused, naming the code point.
    #[test]
    fn names_with_invisible_or_bidi_characters_are_refused() {
        for (name, code) in [
            ("pat\u{200B}", 0x200B),
            ("p\u{00AD}at", 0xAD),
            ("pat\u{202E}", 0x202E),
            ("\u{2066}pat", 0x2066),
            ("pat\u{FE0F}", 0xFE0F),
            ("pat\u{3164}", 0x3164),
            ("pat\u{E0041}", 0xE0041),
            ("pat\u{061C}", 0x61C),
        ] {
            assert_eq!(
                Username::new(name),
                Err(NameError::Invisible {
                    what: "username",
                    code
                }),
                "{name:?}"
            );
            assert_eq!(
                RoomName::new(name),
                Err(NameError::Invisible {
                    what: "room name",
                    code
                }),
                "{name:?}"
            );
        }
        assert_eq!(
            Username::new("pat\u{200B}").unwrap_err().to_string(),
            "username contains an invisible character (U+200B)"
        );
        assert!(Username::new("pât").is_ok(), "visible accents are fine");
    }

    /// Bidirectional controls cannot reorder a message's line; invisible joiners stay allowed.
    #[test]
    fn texts_refuse_bidi_controls_only() {
        for code in [0x202A, 0x202E, 0x2066, 0x2069, 0x200E, 0x200F, 0x061C] {
            let c = char::from_u32(code).unwrap();
            assert_eq!(
                Text::new(format!("abc{c}def")),
                Err(NameError::Bidi {
                    what: "message",
                    code
                })
            );
        }
        assert!(
            Text::new("\u{1F469}\u{200D}\u{1F4BB} and می\u{200C}خواهم").is_ok(),
            "ZWJ emoji and ZWNJ words are text"
        );
        assert!(
            Text::new("שלום and مرحبا").is_ok(),
            "right-to-left scripts are text"
        );
    }

    /// The invisible set here is the one TR39 skeletons drop: a name refused for an invisible
    /// character is exactly one whose character would vanish from its skeleton.
    #[test]
    fn the_invisible_set_is_unicodes_default_ignorable_set() {
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let vanishes = unicode_security::skeleton(c.encode_utf8(&mut [0; 4]))
                .next()
                .is_none();
            assert_eq!(is_invisible(c), vanishes, "U+{:04X}", c as u32);
        }
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            assert!(!is_bidi_control(c) || is_invisible(c), "U+{:04X}", c as u32);
        }
    }

    /// Names that look alike share a skeleton, whatever their scripts; names that do not, do not.
    #[test]
    fn look_alike_names_share_a_skeleton() {
        let name = |s: &str| Username::new(s).unwrap();
        assert!(name("p\u{0430}t").looks_like(&name("pat")), "Cyrillic а");
        assert!(
            name("client1").looks_like(&name("clientl")),
            "digit one and l"
        );
        assert!(name("pat").looks_like(&name("pat")));
        assert!(!name("pat").looks_like(&name("pet")));
        assert_ne!(name("p\u{0430}t"), name("pat"), "still two names");
        assert_eq!(name("pat").skeleton(), "pat");
    }

    #[test]
    fn rooms_map_to_topics() {
        assert_eq!(RoomName::lobby().topic(), "chitty-chat");
        assert_eq!(RoomName::new("dev").unwrap().topic(), "chitty-chat/dev");
        assert!(RoomName::new("a b").is_err());
    }
}
