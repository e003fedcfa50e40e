//! The wire format: versioned CBOR for chat events and hellos (docs/PROTOCOL.md, "Messages").
//!
//! This is the only module that knows the encoding (the only user of `serde_cbor`), so it could be
//! swapped without touching the rest. Decoding is strict: a size cap before parsing, no unknown
//! or missing fields, no trailing bytes, a known version, and every name and text validated by
//! the core's constructors. Every failure is a typed [`WireError`]; nothing here panics on input.

use libp2p::PeerId;
use serde::{Deserialize, Serialize};

use crate::core::event::{Body, Event, LeaveReason, Text, Username};
use crate::core::room::{Hello, Participant};

/// The protocol version this node speaks; events and hellos of any other version are refused.
pub const PROTOCOL_VERSION: u8 = 1;
/// Largest encoded event accepted (a 128-character message of 4-byte characters is ~650 bytes).
pub const MAX_EVENT_BYTES: usize = 1024;
/// Largest encoded hello accepted.
pub const MAX_HELLO_BYTES: usize = 256 * 1024;
/// Most participants a hello may list.
pub const MAX_HELLO_PARTICIPANTS: usize = 2048;

/// Why bytes from a peer could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// More bytes than the cap for this kind of message.
    #[error("{len} bytes is over the {max}-byte limit")]
    TooLarge {
        /// Bytes received.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// Not CBOR of the expected shape: bad bytes, wrong field types, unknown, missing or
    /// duplicate fields, or trailing bytes.
    #[error("malformed CBOR: {0}")]
    Cbor(#[from] serde_cbor::Error),
    /// A protocol version this node does not speak.
    #[error("unsupported protocol version {0}")]
    Version(u8),
    /// Well-formed CBOR whose content breaks a rule.
    #[error("invalid {field}: {why}")]
    Invalid {
        /// The field at fault.
        field: &'static str,
        /// What is wrong with it.
        why: String,
    },
}

fn invalid(field: &'static str, why: impl ToString) -> WireError {
    WireError::Invalid {
        field,
        why: why.to_string(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Join,
    Message,
    Leave,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEvent {
    v: u8,
    kind: Kind,
    #[serde(with = "serde_bytes")]
    author: Vec<u8>,
    seq: u64,
    lamport: u64,
    user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireParticipant {
    #[serde(with = "serde_bytes")]
    peer: Vec<u8>,
    user: String,
    lamport: u64,
    seq: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireHello {
    v: u8,
    topic: String,
    lamport: u64,
    participants: Vec<WireParticipant>,
}

fn to_vec<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising plain structs of strings, integers and byte strings into a Vec cannot fail.
    serde_cbor::to_vec(value).expect("CBOR encoding of an in-memory struct into a Vec")
}

/// Encodes one of our events.
pub fn encode_event(event: &Event) -> Vec<u8> {
    let (kind, text, reason) = match &event.body {
        Body::Join => (Kind::Join, None, None),
        Body::Message(t) => (Kind::Message, Some(t.as_str().to_owned()), None),
        Body::Leave(r) => (Kind::Leave, None, Some(r.as_str().to_owned())),
    };
    to_vec(&WireEvent {
        v: PROTOCOL_VERSION,
        kind,
        author: event.author.to_bytes(),
        seq: event.seq,
        lamport: event.lamport,
        user: event.user.as_str().to_owned(),
        text,
        reason,
    })
}

/// Decodes and validates an event from a peer.
pub fn decode_event(bytes: &[u8]) -> Result<Event, WireError> {
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(WireError::TooLarge {
            len: bytes.len(),
            max: MAX_EVENT_BYTES,
        });
    }
    let w: WireEvent = serde_cbor::from_slice(bytes)?;
    if w.v != PROTOCOL_VERSION {
        return Err(WireError::Version(w.v));
    }
    let author = PeerId::from_bytes(&w.author).map_err(|e| invalid("author", e))?;
    let user = Username::new(w.user).map_err(|e| invalid("user", e))?;
    if w.seq == 0 {
        return Err(invalid("seq", "sequence numbers start at 1"));
    }
    let body = match (w.kind, w.text, w.reason) {
        (Kind::Join, None, None) => Body::Join,
        (Kind::Message, Some(text), None) => {
            Body::Message(Text::new(text).map_err(|e| invalid("text", e))?)
        }
        (Kind::Leave, None, Some(reason)) => match reason.as_str() {
            "quit" => Body::Leave(LeaveReason::Quit),
            other => return Err(invalid("reason", format!("unknown reason {other:?}"))),
        },
        (kind, text, reason) => {
            return Err(invalid(
                "kind",
                format!(
                    "{kind:?} with text {} and reason {}",
                    if text.is_some() { "present" } else { "absent" },
                    if reason.is_some() {
                        "present"
                    } else {
                        "absent"
                    }
                ),
            ));
        }
    };
    Ok(Event {
        author,
        seq: w.seq,
        lamport: w.lamport,
        user,
        body,
    })
}

/// Encodes a hello.
pub fn encode_hello(hello: &Hello) -> Vec<u8> {
    to_vec(&WireHello {
        v: PROTOCOL_VERSION,
        topic: hello.topic.clone(),
        lamport: hello.lamport,
        participants: hello
            .participants
            .iter()
            .take(MAX_HELLO_PARTICIPANTS)
            .map(|p| WireParticipant {
                peer: p.peer.to_bytes(),
                user: p.user.as_str().to_owned(),
                lamport: p.lamport,
                seq: p.seq,
            })
            .collect(),
    })
}

/// Decodes and validates a hello from a peer.
pub fn decode_hello(bytes: &[u8]) -> Result<Hello, WireError> {
    if bytes.len() > MAX_HELLO_BYTES {
        return Err(WireError::TooLarge {
            len: bytes.len(),
            max: MAX_HELLO_BYTES,
        });
    }
    let w: WireHello = serde_cbor::from_slice(bytes)?;
    if w.v != PROTOCOL_VERSION {
        return Err(WireError::Version(w.v));
    }
    if w.participants.len() > MAX_HELLO_PARTICIPANTS {
        return Err(invalid(
            "participants",
            format!("{} entries", w.participants.len()),
        ));
    }
    let participants = w
        .participants
        .into_iter()
        .map(|p| {
            Ok(Participant {
                peer: PeerId::from_bytes(&p.peer).map_err(|e| invalid("peer", e))?,
                user: Username::new(p.user).map_err(|e| invalid("user", e))?,
                lamport: p.lamport,
                seq: p.seq,
            })
        })
        .collect::<Result<_, WireError>>()?;
    Ok(Hello {
        topic: w.topic,
        lamport: w.lamport,
        participants,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::identity::Keypair;
    use proptest::prelude::*;

    /// The peer of the examples in docs/PROTOCOL.md: the ed25519 key whose secret is 32 bytes of 1.
    fn example_peer() -> PeerId {
        let kp = Keypair::ed25519_from_bytes([1u8; 32]).expect("32 bytes make an ed25519 key");
        kp.public().to_peer_id()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn example_message() -> Event {
        Event {
            author: example_peer(),
            seq: 2,
            lamport: 5,
            user: Username::new("client1").unwrap(),
            body: Body::Message(Text::new("hello").unwrap()),
        }
    }

    #[test]
    fn examples_in_protocol_md_match_the_encoder() {
        let doc = include_str!("../docs/PROTOCOL.md");
        let msg = hex(&encode_event(&example_message()));
        let mut leave = example_message();
        leave.seq = 3;
        leave.lamport = 6;
        leave.body = Body::Leave(LeaveReason::Quit);
        let leave = hex(&encode_event(&leave));
        let hello = hex(&encode_hello(&Hello {
            topic: "chitty-chat".into(),
            lamport: 6,
            participants: vec![Participant {
                peer: example_peer(),
                user: Username::new("client1").unwrap(),
                lamport: 2,
                seq: 1,
            }],
        }));
        for (name, h) in [("message", msg), ("leave", leave), ("hello", hello)] {
            assert!(
                doc.contains(&h),
                "docs/PROTOCOL.md lacks the {name} example {h}"
            );
        }
        assert!(doc.contains(&example_peer().to_base58()));
    }

    #[test]
    fn events_round_trip() {
        let e = example_message();
        assert_eq!(decode_event(&encode_event(&e)).unwrap(), e);
    }

    #[test]
    fn malformed_events_give_typed_errors() {
        let good = encode_event(&example_message());
        assert!(matches!(
            decode_event(&[0xff, 0x00]),
            Err(WireError::Cbor(_))
        ));
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(matches!(decode_event(&trailing), Err(WireError::Cbor(_))));
        assert!(matches!(
            decode_event(&vec![0u8; MAX_EVENT_BYTES + 1]),
            Err(WireError::TooLarge { .. })
        ));
        let value = |f: &dyn Fn(&mut serde_cbor::value::Value)| {
            let mut v: serde_cbor::Value = serde_cbor::from_slice(&good).unwrap();
            f(&mut v);
            serde_cbor::to_vec(&v).unwrap()
        };
        let set = |key: &str, val: serde_cbor::Value| {
            let key = key.to_owned();
            value(&move |v| {
                if let serde_cbor::Value::Map(m) = v {
                    m.insert(serde_cbor::Value::Text(key.clone()), val.clone());
                }
            })
        };
        use serde_cbor::Value as V;
        assert!(matches!(
            decode_event(&set("v", V::Integer(2))),
            Err(WireError::Version(2))
        ));
        assert!(matches!(
            decode_event(&set("lamport", V::Text("5".into()))),
            Err(WireError::Cbor(_))
        ));
        assert!(matches!(
            decode_event(&set("extra", V::Bool(true))),
            Err(WireError::Cbor(_))
        ));
        assert!(matches!(
            decode_event(&set("kind", V::Text("shout".into()))),
            Err(WireError::Cbor(_))
        ));
        assert!(matches!(
            decode_event(&set("text", V::Text("x".repeat(129)))),
            Err(WireError::Invalid { field: "text", .. })
        ));
        assert!(matches!(
            decode_event(&set("text", V::Text("\u{1b}[2J".into()))),
            Err(WireError::Invalid { field: "text", .. })
        ));
        assert!(matches!(
            decode_event(&set("user", V::Text("two words".into()))),
            Err(WireError::Invalid { field: "user", .. })
        ));
        assert!(matches!(
            decode_event(&set("author", V::Bytes(vec![1, 2, 3]))),
            Err(WireError::Invalid {
                field: "author",
                ..
            })
        ));
        assert!(matches!(
            decode_event(&set("reason", V::Text("quit".into()))),
            Err(WireError::Invalid { field: "kind", .. })
        ));
        assert!(matches!(
            decode_event(&set("seq", V::Integer(0))),
            Err(WireError::Invalid { field: "seq", .. })
        ));
        assert!(matches!(
            decode_event(&set("seq", V::Integer(-1))),
            Err(WireError::Cbor(_))
        ));
    }

    #[test]
    fn hellos_round_trip_and_refuse_other_versions() {
        let h = Hello {
            topic: "chitty-chat/dev".into(),
            lamport: 42,
            participants: vec![Participant {
                peer: PeerId::random(),
                user: Username::new("x").unwrap(),
                lamport: 3,
                seq: 1,
            }],
        };
        assert_eq!(decode_hello(&encode_hello(&h)).unwrap(), h);
        let mut v: serde_cbor::Value = serde_cbor::from_slice(&encode_hello(&h)).unwrap();
        if let serde_cbor::Value::Map(m) = &mut v {
            m.insert(
                serde_cbor::Value::Text("v".into()),
                serde_cbor::Value::Integer(9),
            );
        }
        assert!(matches!(
            decode_hello(&serde_cbor::to_vec(&v).unwrap()),
            Err(WireError::Version(9))
        ));
    }

    proptest! {
        /// Arbitrary bytes never panic the decoders.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = decode_event(&bytes);
            let _ = decode_hello(&bytes);
        }

        /// Every valid event round-trips.
        #[test]
        fn valid_events_round_trip(
            seq in 1u64..,
            lamport in any::<u64>(),
            user in "[a-zA-Z0-9_\\-é]{1,32}",
            text in "[^\\p{Cc}]{1,128}",
            kind in 0u8..3,
        ) {
            let body = match kind {
                0 => Body::Join,
                1 => Body::Message(Text::new(text).unwrap()),
                _ => Body::Leave(LeaveReason::Quit),
            };
            let e = Event { author: PeerId::random(), seq, lamport, user: Username::new(user).unwrap(), body };
            prop_assert_eq!(decode_event(&encode_event(&e)).unwrap(), e);
        }
    }
}
