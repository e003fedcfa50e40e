//! Validated names and texts (docs/PROTOCOL.md, section 5, "Names and texts").
//!
//! Every type here checks its invariants when it is built ([`Username::new`], [`Text::new`],
//! [`RoomName::new`]), so the rest of the crate never sees an invalid name or text, whether it was
//! typed by the user or sent by a peer.

use std::fmt;

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

    /// What stands for the author's name in an event of a private room this node cannot read
    /// (a hub's): `#sealed`, which no username can be (`#` is refused), so never imitated.
    pub fn sealed() -> Self {
        Self {
            name: "#sealed".to_owned(),
            skeleton: None,
        }
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

/// A room name: 1 to 64 characters, no whitespace, no control or invisible characters. The
/// default is the default room (topic `chitty-chat`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
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

    /// The name, unless this is the default room.
    pub fn name(&self) -> Option<&str> {
        self.0.as_deref()
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

#[cfg(test)]
mod tests {
    /// docs/PROTOCOL.md section 5 lists the whitespace refused in names exactly (Unicode's
    /// White_Space); U+180E, U+200B and U+FEFF are not whitespace but are refused as invisible.
    #[test]
    fn names_refuse_exactly_the_listed_whitespace_and_invisibles() {
        let white: Vec<u32> = (0x09..=0x0D)
            .chain([0x20, 0x85, 0xA0, 0x1680])
            .chain(0x2000..=0x200A)
            .chain([0x2028, 0x2029, 0x202F, 0x205F, 0x3000])
            .collect();
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let listed = white.contains(&(c as u32));
            assert_eq!(c.is_whitespace(), listed, "U+{:04X}", c as u32);
        }
        for code in white.iter().filter(|c| **c > 0x9F || **c == 0x20) {
            let name = format!("a{}b", char::from_u32(*code).unwrap());
            assert!(
                matches!(Username::new(name), Err(NameError::Whitespace { .. })),
                "U+{code:04X}"
            );
        }
        for code in [0x180E, 0x200B, 0xFEFF] {
            let name = format!("a{}b", char::from_u32(code).unwrap());
            assert!(
                matches!(Username::new(name), Err(NameError::Invisible { .. })),
                "U+{code:04X}"
            );
        }
    }

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
