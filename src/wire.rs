//! The wire format: versioned CBOR for signed chat events, hellos and sync messages
//! (docs/PROTOCOL.md, "Events", "Hello", "Sync").
//!
//! This is the only module that knows the encoding (the only user of `serde_cbor`), so it could be
//! swapped without touching the rest. Decoding is strict: a size cap before parsing, no unknown
//! or missing fields, no trailing bytes, a known version, a valid author signature, and every
//! name and text validated by the core's constructors. Every failure is a typed [`WireError`];
//! nothing here panics on input.

use std::sync::Arc;

use libp2p::PeerId;
use libp2p::identity::{Keypair, PublicKey};
use serde::{Deserialize, Serialize};

use crate::core::event::{Body, Event, OrderKey, SignedEvent, Text, Username};
use crate::core::hello::{Hello, Participant};
use crate::core::sign::Signer;
use crate::core::sync::{AuthorHave, MAX_RANGES, SyncRequest, SyncResponse};
use crate::core::time::{MAX_WALL_MILLIS, WallTime};
use crate::private::{Header, NONCE_LEN, OpenError, RoomKeys, TAG_LEN, is_private_topic};

/// The protocol version this node speaks; events, hellos and sync messages of any other version
/// are refused. Version 2 added the author's wall-clock `time` to events.
pub const PROTOCOL_VERSION: u8 = 2;
/// Largest event body (a 128-character message of 4-byte characters is ~650 bytes).
pub const MAX_BODY_BYTES: usize = 1024;
/// Largest signed event accepted: the body, a 64-byte signature and the envelope.
pub const MAX_EVENT_BYTES: usize = MAX_BODY_BYTES + 128;
/// Largest encoded hello accepted.
pub const MAX_HELLO_BYTES: usize = 256 * 1024;
/// Most participants a hello may list.
pub const MAX_HELLO_PARTICIPANTS: usize = 2048;
/// Largest sync request or response accepted.
pub const MAX_SYNC_BYTES: usize = 1024 * 1024;
/// Most authors a sync request may list (more than the default history bound holds events).
pub const MAX_SYNC_AUTHORS: usize = 16_384;
/// Longest room topic accepted in a signed event.
pub const MAX_TOPIC_BYTES: usize = 512;
/// Most events in one sync response.
pub const MAX_SYNC_EVENTS: usize = 512;
/// What an author signs: this context, then the body bytes (domain separation, so a signature
/// made for a chat event cannot be replayed as anything else).
const SIGNING_CONTEXT: &[u8] = b"chitty-chat/event/2:";

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
    /// The signature does not verify against the author's key.
    #[error("bad signature by {0}")]
    Signature(PeerId),
    /// A private room's event that does not open with the room's key.
    #[error("{0}")]
    Sealed(#[from] OpenError),
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

fn check_len(bytes: &[u8], max: usize) -> Result<(), WireError> {
    if bytes.len() > max {
        return Err(WireError::TooLarge {
            len: bytes.len(),
            max,
        });
    }
    Ok(())
}

fn check_version(v: u8) -> Result<(), WireError> {
    if v != PROTOCOL_VERSION {
        return Err(WireError::Version(v));
    }
    Ok(())
}

fn peer(field: &'static str, bytes: &[u8]) -> Result<PeerId, WireError> {
    PeerId::from_bytes(bytes).map_err(|e| invalid(field, e))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Join,
    Message,
    Leave,
    Sealed,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEnvelope {
    v: u8,
    #[serde(with = "serde_bytes")]
    body: Vec<u8>,
    #[serde(with = "serde_bytes")]
    sig: Vec<u8>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireBody {
    topic: String,
    kind: Kind,
    #[serde(with = "serde_bytes")]
    author: Vec<u8>,
    seq: u64,
    lamport: u64,
    /// Milliseconds since the Unix epoch, by the author's clock.
    time: u64,
    /// Absent only in a sealed body: the name is sealed with the rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_bytes")]
    subject: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject_user: Option<String>,
    /// A private room's event: `nonce || ciphertext || tag` of a [`WireContent`]
    /// (docs/PROTOCOL.md section 14).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_bytes")]
    sealed: Option<Vec<u8>>,
}

/// What a sealed body holds, once opened: what a plain body says besides its header, in the
/// same canonical form.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireContent {
    kind: Kind,
    user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_bytes")]
    subject: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject_user: Option<String>,
}

/// What a body says besides its header: kind, text, reason, subject, subject's name.
type Said = (
    Kind,
    Option<String>,
    Option<String>,
    Option<Vec<u8>>,
    Option<String>,
);

fn said(body: &Body) -> Said {
    match body {
        Body::Join => (Kind::Join, None, None, None, None),
        Body::Message(t) => (Kind::Message, Some(t.as_str().to_owned()), None, None, None),
        Body::Leave => (Kind::Leave, None, Some("quit".to_owned()), None, None),
        Body::Lost { subject, user } => (
            Kind::Leave,
            None,
            Some("lost".to_owned()),
            Some(subject.to_bytes()),
            Some(user.as_str().to_owned()),
        ),
        // Never signed as such: a node without the key only forwards sealed events.
        Body::Sealed => (Kind::Sealed, None, None, None, None),
    }
}

/// The body a kind and its fields make, checked.
fn body_of((kind, text, reason, subject, subject_user): Said) -> Result<Body, WireError> {
    Ok(
        match (kind, text, reason.as_deref(), subject, subject_user) {
            (Kind::Join, None, None, None, None) => Body::Join,
            (Kind::Message, Some(text), None, None, None) => {
                Body::Message(Text::new(text).map_err(|e| invalid("text", e))?)
            }
            (Kind::Leave, None, Some("quit"), None, None) => Body::Leave,
            (Kind::Leave, None, Some("lost"), Some(subject), Some(subject_user)) => Body::Lost {
                subject: peer("subject", &subject)?,
                user: Username::new(subject_user).map_err(|e| invalid("subject_user", e))?,
            },
            (Kind::Leave, None, Some(other), None, None) if other != "lost" => {
                return Err(invalid("reason", format!("unknown reason {other:?}")));
            }
            (kind, ..) => {
                return Err(invalid(
                    "kind",
                    format!("{kind:?} with fields that do not belong to it"),
                ));
            }
        },
    )
}

/// `Option<Vec<u8>>` as an optional CBOR byte string.
mod opt_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => serde_bytes::serialize(b, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<serde_bytes::ByteBuf>::deserialize(d).map(|o| o.map(|b| b.into_vec()))
    }
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
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    archive: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireHave {
    #[serde(with = "serde_bytes")]
    author: Vec<u8>,
    ranges: Vec<(u64, u64)>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireKey {
    lamport: u64,
    #[serde(with = "serde_bytes")]
    author: Vec<u8>,
    seq: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireSyncRequest {
    v: u8,
    topic: String,
    low: Option<WireKey>,
    have: Vec<WireHave>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireSyncResponse {
    v: u8,
    events: Vec<serde_bytes::ByteBuf>,
    more: bool,
}

fn to_vec<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising plain structs of strings, integers and byte strings into a Vec cannot fail.
    serde_cbor::to_vec(value).expect("CBOR encoding of an in-memory struct into a Vec")
}

/// The public key inside an ed25519 (identity-multihash) peer id.
fn public_key(author: &PeerId) -> Option<PublicKey> {
    let mh = author.as_ref();
    (mh.code() == 0)
        .then(|| PublicKey::try_decode_protobuf(mh.digest()).ok())
        .flatten()
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNING_CONTEXT.len() + body.len());
    m.extend_from_slice(SIGNING_CONTEXT);
    m.extend_from_slice(body);
    m
}

/// The core signs through this: the author is the key's peer id, the encoding is ours.
impl Signer for Keypair {
    fn peer_id(&self) -> PeerId {
        self.public().to_peer_id()
    }

    fn sign_event(&self, event: Event, topic: &str) -> SignedEvent {
        sign_event(event, topic, self)
    }

    fn seal_event(&self, event: Event, room: &RoomKeys) -> SignedEvent {
        seal_event(event, room, self)
    }
}

/// Encodes and signs one of our events for the public room `topic`. `key` must be the
/// author's key.
pub fn sign_event(event: Event, topic: &str, key: &Keypair) -> SignedEvent {
    let (kind, text, reason, subject, subject_user) = said(&event.body);
    let body = WireBody {
        topic: topic.to_owned(),
        kind,
        author: event.author.to_bytes(),
        seq: event.seq,
        lamport: event.lamport,
        time: event.time.unix_millis(),
        user: Some(event.user.as_str().to_owned()),
        text,
        reason,
        subject,
        subject_user,
        sealed: None,
    };
    sign_body(event, topic, &body, key)
}

/// Encodes, seals and signs one of our events for the private room `room`: what it says
/// (kind, name, text, ...) is sealed under the room's key, bound to the clear header
/// (docs/PROTOCOL.md section 14). The returned event is the plain one, for our transcript.
pub fn seal_event(event: Event, room: &RoomKeys, key: &Keypair) -> SignedEvent {
    let (kind, text, reason, subject, subject_user) = said(&event.body);
    let content = to_vec(&WireContent {
        kind,
        user: event.user.as_str().to_owned(),
        text,
        reason,
        subject,
        subject_user,
    });
    let author = event.author.to_bytes();
    let header = Header {
        topic: room.topic(),
        author: &author,
        seq: event.seq,
        lamport: event.lamport,
        time: event.time.unix_millis(),
    };
    let sealed = room.seal(&header, &content);
    let body = WireBody {
        topic: room.topic().to_owned(),
        kind: Kind::Sealed,
        author,
        seq: event.seq,
        lamport: event.lamport,
        time: event.time.unix_millis(),
        user: None,
        text: None,
        reason: None,
        subject: None,
        subject_user: None,
        sealed: Some(sealed),
    };
    sign_body(event, room.topic(), &body, key)
}

fn sign_body(event: Event, topic: &str, body: &WireBody, key: &Keypair) -> SignedEvent {
    let body = to_vec(body);
    // Signing with an ed25519 key cannot fail (only RSA signing can).
    let sig = key
        .sign(&signed_message(&body))
        .expect("ed25519 signing is infallible");
    let bytes = to_vec(&WireEnvelope {
        v: PROTOCOL_VERSION,
        body,
        sig,
    });
    SignedEvent {
        event,
        topic: topic.to_owned(),
        bytes: Arc::from(bytes),
    }
}

/// Opens a private room's event decoded by [`decode_event`] with the room's key: the event
/// then says who wrote what, as a plain one does; its bytes stay the sealed envelope (what is
/// forwarded, served and stored). An event that is not sealed is returned as it is. An error
/// is the author's fault: it signed what does not open, or opens to something invalid.
pub fn open_event(signed: SignedEvent, room: &RoomKeys) -> Result<SignedEvent, WireError> {
    if !matches!(signed.event.body, Body::Sealed) {
        return Ok(signed);
    }
    // The bytes were checked by `decode_event`; read the sealed field again.
    let env: WireEnvelope = serde_cbor::from_slice(&signed.bytes)?;
    let w: WireBody = serde_cbor::from_slice(&env.body)?;
    let sealed = w.sealed.ok_or_else(|| invalid("sealed", "missing"))?;
    let header = Header {
        topic: &w.topic,
        author: &w.author,
        seq: w.seq,
        lamport: w.lamport,
        time: w.time,
    };
    let plain = room.open(&header, &sealed)?;
    let c: WireContent = serde_cbor::from_slice(&plain)?;
    if to_vec(&c) != plain {
        return Err(invalid("sealed", "content not in canonical form"));
    }
    if c.kind == Kind::Sealed {
        return Err(invalid("sealed", "sealed inside sealed"));
    }
    let user = Username::new(c.user).map_err(|e| invalid("user", e))?;
    let body = body_of((c.kind, c.text, c.reason, c.subject, c.subject_user))?;
    Ok(SignedEvent {
        event: Event {
            user,
            body,
            ..signed.event
        },
        topic: signed.topic,
        bytes: signed.bytes,
    })
}

/// Decodes a signed event from a peer, verifies the author's signature and validates it.
pub fn decode_event(bytes: &[u8]) -> Result<SignedEvent, WireError> {
    check_len(bytes, MAX_EVENT_BYTES)?;
    let env: WireEnvelope = serde_cbor::from_slice(bytes)?;
    // One encoding per event: anyone could otherwise re-encode an event (other key order,
    // longer integers, chunked strings) into a new gossip message id, costing every node a
    // signature check per copy (docs/PROTOCOL.md section 5).
    if to_vec(&env) != bytes {
        return Err(invalid("envelope", "not in canonical form"));
    }
    check_version(env.v)?;
    check_len(&env.body, MAX_BODY_BYTES)?;
    let w: WireBody = serde_cbor::from_slice(&env.body)?;
    // The body is covered by the signature, so it cannot be re-encoded by a forwarder; but an
    // implementation that checks it by the envelope's rules would refuse one in another form,
    // and blame the honest node that forwarded it. One form for both (section 5).
    if to_vec(&w) != env.body {
        return Err(invalid("body", "not in canonical form"));
    }
    let author = peer("author", &w.author)?;
    let key = public_key(&author)
        .ok_or_else(|| invalid("author", "not an ed25519 peer id with an inline key"))?;
    if !key.verify(&signed_message(&env.body), &env.sig) {
        return Err(WireError::Signature(author));
    }
    if w.topic.len() > MAX_TOPIC_BYTES {
        return Err(invalid("topic", "too long"));
    }
    if w.seq == 0 {
        return Err(invalid("seq", "sequence numbers start at 1"));
    }
    let time = WallTime::from_unix_millis(w.time).ok_or_else(|| {
        invalid(
            "time",
            format!(
                "{} ms is past {MAX_WALL_MILLIS} (the end of year 9999)",
                w.time
            ),
        )
    })?;
    // A private room carries sealed events only, a public room none: either way round, the
    // author signed what its room cannot hold.
    let private = is_private_topic(&w.topic);
    let (user, body) = match (w.kind, w.user, w.sealed) {
        (Kind::Sealed, None, Some(sealed))
            if private
                && w.text.is_none()
                && w.reason.is_none()
                && w.subject.is_none()
                && w.subject_user.is_none() =>
        {
            if sealed.len() < NONCE_LEN + TAG_LEN {
                return Err(invalid("sealed", "shorter than a nonce and a tag"));
            }
            (Username::sealed(), Body::Sealed)
        }
        (Kind::Sealed, ..) => {
            return Err(invalid(
                "kind",
                "a sealed event outside a private room, or with fields that do not belong to it",
            ));
        }
        (_, Some(_), _) if private => {
            return Err(invalid("kind", "a plain event in a private room"));
        }
        (kind, Some(user), None) => (
            Username::new(user).map_err(|e| invalid("user", e))?,
            body_of((kind, w.text, w.reason, w.subject, w.subject_user))?,
        ),
        (_, None, _) => return Err(invalid("user", "missing")),
        (_, Some(_), Some(_)) => return Err(invalid("sealed", "in a plain event")),
    };
    Ok(SignedEvent {
        event: Event {
            author,
            seq: w.seq,
            lamport: w.lamport,
            time,
            user,
            body,
        },
        topic: w.topic,
        bytes: Arc::from(bytes),
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
        archive: hello.archive,
    })
}

/// Decodes and validates a hello from a peer.
pub fn decode_hello(bytes: &[u8]) -> Result<Hello, WireError> {
    check_len(bytes, MAX_HELLO_BYTES)?;
    let w: WireHello = serde_cbor::from_slice(bytes)?;
    check_version(w.v)?;
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
                peer: peer("peer", &p.peer)?,
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
        archive: w.archive,
    })
}

/// Encodes a sync request.
pub fn encode_sync_request(req: &SyncRequest) -> Vec<u8> {
    to_vec(&WireSyncRequest {
        v: PROTOCOL_VERSION,
        topic: req.topic.clone(),
        low: req.low.as_ref().map(|k| WireKey {
            lamport: k.lamport(),
            author: k.author().to_vec(),
            seq: k.seq(),
        }),
        have: req
            .have
            .iter()
            .take(MAX_SYNC_AUTHORS)
            .map(|h| WireHave {
                author: h.author.to_bytes(),
                ranges: h.ranges.iter().copied().take(MAX_RANGES).collect(),
            })
            .collect(),
    })
}

/// Decodes and validates a sync request.
pub fn decode_sync_request(bytes: &[u8]) -> Result<SyncRequest, WireError> {
    check_len(bytes, MAX_SYNC_BYTES)?;
    let w: WireSyncRequest = serde_cbor::from_slice(bytes)?;
    check_version(w.v)?;
    if w.have.len() > MAX_SYNC_AUTHORS {
        return Err(invalid("have", format!("{} authors", w.have.len())));
    }
    let have = w
        .have
        .into_iter()
        .map(|h| {
            if h.ranges.len() > MAX_RANGES {
                return Err(invalid("ranges", format!("{} runs", h.ranges.len())));
            }
            // Ascending, disjoint, each first <= last: what `AuthorHave::has` relies on.
            let ordered =
                h.ranges.iter().all(|r| r.0 <= r.1) && h.ranges.windows(2).all(|w| w[0].1 < w[1].0);
            if !ordered {
                return Err(invalid("ranges", "not ascending, disjoint runs"));
            }
            Ok(AuthorHave {
                author: peer("author", &h.author)?,
                ranges: h.ranges,
            })
        })
        .collect::<Result<_, WireError>>()?;
    let low = match w.low {
        Some(k) => {
            // Checked like any author field, then kept in binary form for ordering.
            peer("low", &k.author)?;
            Some(OrderKey::new(k.lamport, k.author, k.seq))
        }
        None => None,
    };
    Ok(SyncRequest {
        topic: w.topic,
        low,
        have,
    })
}

/// Encodes a sync response.
pub fn encode_sync_response(resp: &SyncResponse) -> Vec<u8> {
    to_vec(&WireSyncResponse {
        v: PROTOCOL_VERSION,
        events: resp
            .events
            .iter()
            .take(MAX_SYNC_EVENTS)
            .map(|e| serde_bytes::ByteBuf::from(e.bytes.to_vec()))
            .collect(),
        more: resp.more,
    })
}

/// Decodes a sync response. Each event is verified and validated on its own: a bad one is
/// reported in `rejected` and the others are kept.
pub fn decode_sync_response(bytes: &[u8]) -> Result<(SyncResponse, Vec<WireError>), WireError> {
    check_len(bytes, MAX_SYNC_BYTES)?;
    let w: WireSyncResponse = serde_cbor::from_slice(bytes)?;
    check_version(w.v)?;
    if w.events.len() > MAX_SYNC_EVENTS {
        return Err(invalid("events", format!("{} events", w.events.len())));
    }
    let mut events = Vec::with_capacity(w.events.len());
    let mut rejected = Vec::new();
    for raw in &w.events {
        match decode_event(raw) {
            Ok(e) => events.push(e),
            Err(e) => rejected.push(e),
        }
    }
    Ok((
        SyncResponse {
            events,
            more: w.more,
        },
        rejected,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_cbor::Value as V;

    /// The key of the examples in docs/PROTOCOL.md: the ed25519 secret of 32 bytes of 1.
    fn example_key() -> Keypair {
        Keypair::ed25519_from_bytes([1u8; 32]).expect("32 bytes make an ed25519 key")
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The examples' times: 2026-11-25T13:30:08Z and 13:37:50Z.
    const EXAMPLE_MESSAGE_MS: u64 = 1_795_613_408_000;
    const EXAMPLE_LEAVE_MS: u64 = 1_795_613_870_000;

    fn example_time(ms: u64) -> WallTime {
        WallTime::from_unix_millis(ms).unwrap()
    }

    fn example_message() -> Event {
        Event {
            author: example_key().public().to_peer_id(),
            seq: 2,
            lamport: 5,
            time: example_time(EXAMPLE_MESSAGE_MS),
            user: Username::new("client1").unwrap(),
            body: Body::Message(Text::new("hello").unwrap()),
        }
    }

    /// Re-signs an edited body with the example key, so that body rules can be tested.
    fn signed_body(edit: impl Fn(&mut std::collections::BTreeMap<V, V>)) -> Vec<u8> {
        let good = sign_event(example_message(), "chitty-chat", &example_key());
        let env: WireEnvelope = serde_cbor::from_slice(&good.bytes).unwrap();
        let mut body: V = serde_cbor::from_slice(&env.body).unwrap();
        if let V::Map(m) = &mut body {
            edit(m);
        }
        let body = in_body_order(&body);
        let sig = example_key().sign(&signed_message(&body)).unwrap();
        to_vec(&WireEnvelope {
            v: PROTOCOL_VERSION,
            body,
            sig,
        })
    }

    /// A body map encoded as section 5 orders its keys (unknown keys last), so that the edits
    /// test the rule they mean to, not the form.
    fn in_body_order(body: &V) -> Vec<u8> {
        const ORDER: [&str; 11] = [
            "topic",
            "kind",
            "author",
            "seq",
            "lamport",
            "time",
            "user",
            "text",
            "reason",
            "subject",
            "subject_user",
        ];
        let V::Map(m) = body else {
            return serde_cbor::to_vec(body).unwrap();
        };
        let rank = |k: &V| match k {
            V::Text(t) => ORDER.iter().position(|o| o == t).unwrap_or(ORDER.len()),
            _ => ORDER.len(),
        };
        let mut pairs: Vec<(&V, &V)> = m.iter().collect();
        pairs.sort_by_key(|(k, _)| rank(k));
        assert!(pairs.len() < 24, "a short map header");
        let mut out = vec![0xa0 | pairs.len() as u8];
        for (k, v) in pairs {
            out.extend(serde_cbor::to_vec(k).unwrap());
            out.extend(serde_cbor::to_vec(v).unwrap());
        }
        out
    }

    /// The body has one form too: the same event body in any other encoding (a tag, a longer
    /// integer, a chunked string, another key order) is refused, though its author signed it.
    #[test]
    fn a_body_in_another_form_is_refused_though_signed() {
        let good = sign_event(example_message(), "chitty-chat", &example_key());
        let env: WireEnvelope = serde_cbor::from_slice(&good.bytes).unwrap();
        let resign = |body: Vec<u8>| {
            let sig = example_key().sign(&signed_message(&body)).unwrap();
            to_vec(&WireEnvelope {
                v: PROTOCOL_VERSION,
                body,
                sig,
            })
        };
        // Tag 55799 (self-described CBOR) in front.
        let mut tagged = vec![0xd9, 0xd9, 0xf7];
        tagged.extend(&env.body);
        // `seq` (2) as a two-byte integer: `63 736571 02` becomes `63 736571 19 0002`.
        let seq = [0x63, b's', b'e', b'q', 0x02];
        let at = env.body.windows(5).position(|w| w == seq).unwrap();
        let mut long = env.body[..at + 4].to_vec();
        long.extend([0x19, 0x00, 0x02]);
        long.extend(&env.body[at + 5..]);
        // The keys in another order.
        let v: V = serde_cbor::from_slice(&env.body).unwrap();
        let sorted = serde_cbor::to_vec(&v).unwrap();
        assert_ne!(sorted, env.body);
        for body in [tagged, long, sorted] {
            assert!(
                matches!(
                    decode_event(&resign(body.clone())),
                    Err(WireError::Invalid { field: "body", .. })
                ),
                "{}",
                hex(&body)
            );
        }
        assert!(decode_event(&resign(env.body.clone())).is_ok());
    }

    fn set(key: &'static str, val: V) -> impl Fn(&mut std::collections::BTreeMap<V, V>) {
        move |m| {
            m.insert(V::Text(key.into()), val.clone());
        }
    }

    #[test]
    fn examples_in_protocol_md_match_the_encoder() {
        let doc = include_str!("../docs/PROTOCOL.md");
        let key = example_key();
        let peer = key.public().to_peer_id();
        let msg = hex(&sign_event(example_message(), "chitty-chat", &key).bytes);
        let mut leave = example_message();
        leave.seq = 3;
        leave.lamport = 6;
        leave.time = example_time(EXAMPLE_LEAVE_MS);
        leave.body = Body::Leave;
        let leave = hex(&sign_event(leave, "chitty-chat", &key).bytes);
        let hello = hex(&encode_hello(&Hello {
            topic: "chitty-chat".into(),
            lamport: 6,
            participants: vec![Participant {
                peer,
                user: Username::new("client1").unwrap(),
                lamport: 2,
                seq: 1,
            }],
            archive: false,
        }));
        let sync = hex(&encode_sync_request(&SyncRequest {
            topic: "chitty-chat".into(),
            low: None,
            have: vec![AuthorHave {
                author: peer,
                ranges: vec![(1, 2), (4, 4)],
            }],
        }));
        // Every missing example at once, so that the doc can be brought up to date in one go.
        let missing: Vec<String> = [
            ("message", msg),
            ("leave", leave),
            ("hello", hello),
            ("sync request", sync),
        ]
        .into_iter()
        .filter(|(_, h)| !doc.contains(h))
        .map(|(name, h)| format!("{name}: {h}"))
        .collect();
        assert!(
            missing.is_empty(),
            "docs/PROTOCOL.md lacks these examples:\n{}",
            missing.join("\n")
        );
        assert!(doc.contains(&peer.to_base58()));
        assert!(doc.contains(&hex(&peer.to_bytes())));
    }

    /// The time is signed: moving an event in time breaks its signature.
    #[test]
    fn the_signature_covers_the_time() {
        let good = sign_event(example_message(), "chitty-chat", &example_key());
        assert_eq!(
            decode_event(&good.bytes).unwrap().event.time,
            example_time(EXAMPLE_MESSAGE_MS)
        );
        let mut env: WireEnvelope = serde_cbor::from_slice(&good.bytes).unwrap();
        let mut body: WireBody = serde_cbor::from_slice(&env.body).unwrap();
        body.time -= 3_600_000;
        env.body = to_vec(&body);
        assert!(matches!(
            decode_event(&to_vec(&env)),
            Err(WireError::Signature(_))
        ));
        // The latest representable time is carried as it is.
        let mut late = example_message();
        late.time = WallTime::MAX;
        let s = sign_event(late, "chitty-chat", &example_key());
        assert_eq!(decode_event(&s.bytes).unwrap().event.time, WallTime::MAX);
    }

    #[test]
    fn events_round_trip_and_verify() {
        let s = sign_event(example_message(), "chitty-chat", &example_key());
        let back = decode_event(&s.bytes).unwrap();
        assert_eq!(back, s);
        let lost = Event {
            body: Body::Lost {
                subject: PeerId::random(),
                user: Username::new("gone").unwrap(),
            },
            ..example_message()
        };
        let s = sign_event(lost, "chitty-chat", &example_key());
        assert_eq!(decode_event(&s.bytes).unwrap(), s);
    }

    #[test]
    fn malformed_events_give_typed_errors() {
        let good = sign_event(example_message(), "chitty-chat", &example_key())
            .bytes
            .to_vec();
        assert!(matches!(
            decode_event(&[0xff, 0x00]),
            Err(WireError::Cbor(_))
        ));
        // The same envelope in another key order: a new gossip id for the same event, refused.
        let v: serde_cbor::Value = serde_cbor::from_slice(&good).unwrap();
        let reordered = serde_cbor::to_vec(&v).unwrap();
        assert_ne!(reordered, good);
        assert!(matches!(
            decode_event(&reordered),
            Err(WireError::Invalid {
                field: "envelope",
                ..
            })
        ));
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(matches!(decode_event(&trailing), Err(WireError::Cbor(_))));
        assert!(matches!(
            decode_event(&vec![0u8; MAX_EVENT_BYTES + 1]),
            Err(WireError::TooLarge { .. })
        ));
        // The envelope: version (version 1, without `time`, included), signature.
        let mut env: WireEnvelope = serde_cbor::from_slice(&good).unwrap();
        for v in [1, 3] {
            env.v = v;
            assert!(matches!(
                decode_event(&to_vec(&env)),
                Err(WireError::Version(got)) if got == v
            ));
        }
        env.v = PROTOCOL_VERSION;
        env.sig[0] ^= 1;
        assert!(matches!(
            decode_event(&to_vec(&env)),
            Err(WireError::Signature(_))
        ));
        // A body signed by someone else than its author.
        let mut env: WireEnvelope = serde_cbor::from_slice(&good).unwrap();
        env.sig = Keypair::generate_ed25519()
            .sign(&signed_message(&env.body))
            .unwrap();
        assert!(matches!(
            decode_event(&to_vec(&env)),
            Err(WireError::Signature(_))
        ));
        // The body's fields.
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                signed_body(|m| drop(m.remove(&V::Text("time".into())))),
                "cbor",
            ),
            (signed_body(set("time", V::Integer(-1))), "cbor"),
            (
                signed_body(set("time", V::Integer(i128::from(MAX_WALL_MILLIS) + 1))),
                "time",
            ),
            (signed_body(set("lamport", V::Text("5".into()))), "cbor"),
            (signed_body(set("extra", V::Bool(true))), "cbor"),
            (signed_body(set("kind", V::Text("shout".into()))), "cbor"),
            (signed_body(set("seq", V::Integer(-1))), "cbor"),
            (signed_body(set("text", V::Text("x".repeat(129)))), "text"),
            (
                signed_body(set("text", V::Text("\u{1b}[2J".into()))),
                "text",
            ),
            (
                signed_body(set("user", V::Text("two words".into()))),
                "user",
            ),
            // A look-alike of `pat` (zero-width space) and a line-reordering override.
            (
                signed_body(set("user", V::Text("pat\u{200B}".into()))),
                "user",
            ),
            (
                signed_body(set("text", V::Text("abc\u{202E}fed".into()))),
                "text",
            ),
            (signed_body(set("reason", V::Text("quit".into()))), "kind"),
            (signed_body(set("seq", V::Integer(0))), "seq"),
            (
                signed_body(set("author", V::Bytes(vec![1, 2, 3]))),
                "author",
            ),
        ];
        for (bytes, want) in cases {
            let got = decode_event(&bytes);
            let ok = match (&got, want) {
                (Err(WireError::Cbor(_)), "cbor") => true,
                (Err(WireError::Invalid { field, .. }), f) => *field == f,
                _ => false,
            };
            assert!(ok, "wanted {want}, got {got:?}");
        }
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
            archive: true,
        };
        assert_eq!(decode_hello(&encode_hello(&h)).unwrap(), h);
        let mut v: V = serde_cbor::from_slice(&encode_hello(&h)).unwrap();
        if let V::Map(m) = &mut v {
            m.insert(V::Text("v".into()), V::Integer(9));
        }
        assert!(matches!(
            decode_hello(&serde_cbor::to_vec(&v).unwrap()),
            Err(WireError::Version(9))
        ));
    }

    #[test]
    fn sync_messages_round_trip_and_bad_events_are_singled_out() {
        let req = SyncRequest {
            topic: "chitty-chat".into(),
            low: Some(OrderKey::new(3, PeerId::random().to_bytes(), 1)),
            have: vec![AuthorHave {
                author: PeerId::random(),
                ranges: vec![(1, 7), (9, 9), (12, 20)],
            }],
        };
        let mut bad = req.clone();
        bad.have[0].ranges = vec![(5, 9), (7, 12)];
        assert!(matches!(
            decode_sync_request(&encode_sync_request(&bad)),
            Err(WireError::Invalid {
                field: "ranges",
                ..
            })
        ));
        assert_eq!(
            decode_sync_request(&encode_sync_request(&req)).unwrap(),
            req
        );
        let good = sign_event(example_message(), "chitty-chat", &example_key());
        let mut forged = good.bytes.to_vec();
        let n = forged.len();
        forged[n - 1] ^= 1;
        let raw = to_vec(&WireSyncResponse {
            v: PROTOCOL_VERSION,
            events: vec![
                serde_bytes::ByteBuf::from(good.bytes.to_vec()),
                serde_bytes::ByteBuf::from(forged),
            ],
            more: true,
        });
        let (resp, rejected) = decode_sync_response(&raw).unwrap();
        assert_eq!(resp.events, vec![good]);
        assert!(resp.more);
        assert_eq!(rejected.len(), 1);
    }

    proptest! {
        /// Arbitrary bytes never panic the decoders.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = decode_event(&bytes);
            let _ = decode_hello(&bytes);
            let _ = decode_sync_request(&bytes);
            let _ = decode_sync_response(&bytes);
        }

        /// Every valid event round-trips.
        #[test]
        fn valid_events_round_trip(
            seq in 1u64..,
            lamport in any::<u64>(),
            time in 0..=MAX_WALL_MILLIS,
            user in "[a-zA-Z0-9_\\-é]{1,32}",
            text in "[^\\p{Cc}\\x{61c}\\x{200e}\\x{200f}\\x{202a}-\\x{202e}\\x{2066}-\\x{2069}]{1,128}",
            kind in 0u8..4,
        ) {
            let key = Keypair::generate_ed25519();
            let body = match kind {
                0 => Body::Join,
                1 => Body::Message(Text::new(text).unwrap()),
                2 => Body::Leave,
                _ => Body::Lost { subject: PeerId::random(), user: Username::new(user.clone()).unwrap() },
            };
            let time = WallTime::from_unix_millis(time).unwrap();
            let e = Event { author: key.public().to_peer_id(), seq, lamport, time, user: Username::new(user).unwrap(), body };
            let s = sign_event(e, "chitty-chat", &key);
            prop_assert_eq!(decode_event(&s.bytes).unwrap(), s);
        }
    }

    /// A private room's event: a node without the key (a hub) decodes it as sealed (author,
    /// seq, stamp and time only, the name `#sealed`); a member opens it back into the event
    /// its author wrote, whose bytes stay the sealed envelope; nothing said is in the clear.
    #[test]
    fn sealed_events_round_trip_and_say_nothing_in_the_clear() {
        let room = crate::private::RoomSecret::generate().keys();
        let mut event = example_message();
        event.body = Body::Message(Text::new("the plans for friday").unwrap());
        let signed = seal_event(event.clone(), &room, &example_key());
        assert_eq!(signed.event, event, "our transcript holds the plain event");
        for needle in [&b"friday"[..], b"client1", b"message"] {
            assert!(
                !signed.bytes.windows(needle.len()).any(|w| w == needle),
                "{:?} in the clear",
                String::from_utf8_lossy(needle)
            );
        }
        let blind = decode_event(&signed.bytes).unwrap();
        assert_eq!(blind.event.body, Body::Sealed);
        assert_eq!(blind.event.user, Username::sealed());
        assert_eq!((blind.event.seq, blind.event.lamport), (2, 5));
        assert_eq!(blind.topic, room.topic());
        let opened = open_event(blind.clone(), &room).unwrap();
        assert_eq!(opened.event, event);
        assert_eq!(opened.bytes, signed.bytes);
        // Every kind of event seals and opens.
        let subject = Keypair::generate_ed25519().public().to_peer_id();
        for body in [
            Body::Join,
            Body::Leave,
            Body::Lost {
                subject,
                user: Username::new("bob").unwrap(),
            },
        ] {
            let e = Event {
                body,
                ..example_message()
            };
            let s = seal_event(e.clone(), &room, &example_key());
            assert_eq!(
                open_event(decode_event(&s.bytes).unwrap(), &room)
                    .unwrap()
                    .event,
                e
            );
        }
        // Another room's key does not open it: the author's fault, said as such.
        let other = crate::private::RoomSecret::generate().keys();
        assert!(matches!(
            open_event(blind, &other),
            Err(WireError::Sealed(crate::private::OpenError::Forged))
        ));
    }

    /// A sealed event is refused in a public room, a plain one in a private room, and a sealed
    /// body too short to hold a nonce and a tag, or with clear fields beside it.
    #[test]
    fn sealed_and_plain_events_stay_in_their_own_kind_of_room() {
        let room = crate::private::RoomSecret::generate().keys();
        let plain_in_private = sign_event(example_message(), room.topic(), &example_key());
        assert!(matches!(
            decode_event(&plain_in_private.bytes),
            Err(WireError::Invalid { field: "kind", .. })
        ));
        let sealed = seal_event(example_message(), &room, &example_key());
        let reseal = |edit: &dyn Fn(&mut WireBody)| {
            let env: WireEnvelope = serde_cbor::from_slice(&sealed.bytes).unwrap();
            let mut w: WireBody = serde_cbor::from_slice(&env.body).unwrap();
            edit(&mut w);
            let body = to_vec(&w);
            let sig = example_key().sign(&signed_message(&body)).unwrap();
            to_vec(&WireEnvelope {
                v: PROTOCOL_VERSION,
                body,
                sig,
            })
        };
        for (what, bytes) in [
            (
                "in a public room",
                reseal(&|w| w.topic = "chitty-chat".into()),
            ),
            (
                "with a name beside",
                reseal(&|w| w.user = Some("client1".into())),
            ),
            (
                "with a text beside",
                reseal(&|w| w.text = Some("hi".into())),
            ),
            ("too short", reseal(&|w| w.sealed = Some(vec![0; 39]))),
        ] {
            assert!(
                matches!(decode_event(&bytes), Err(WireError::Invalid { .. })),
                "{what}"
            );
        }
        // Signed, decodable, but moved to another stamp: it no longer opens.
        let moved = reseal(&|w| w.lamport += 1);
        let blind = decode_event(&moved).unwrap();
        assert!(matches!(
            open_event(blind, &room),
            Err(WireError::Sealed(crate::private::OpenError::Forged))
        ));
    }
}
