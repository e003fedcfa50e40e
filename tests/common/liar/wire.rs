//! What docs/PROTOCOL.md specifies, built and read with `serde_cbor` values and
//! `libp2p::identity` keys: signed events (section 5), hellos (section 4), sync messages
//! (section 6), laid out exactly as the document's examples.

use std::time::{SystemTime, UNIX_EPOCH};

use libp2p::PeerId;
use libp2p::identity::Keypair;
use serde_cbor::Value;

use super::{CONTEXT, TOPIC};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(super) fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

pub(super) fn uint(n: u64) -> Value {
    Value::Integer(n.into())
}

pub(super) fn cbor(v: &Value) -> Vec<u8> {
    serde_cbor::to_vec(v).expect("CBOR of a value")
}

/// CBOR laid out as the document shows it: a map keeps its keys in the order given
/// (serde_cbor's `Value::Map` would sort them), every integer and length in its shortest form,
/// definite lengths. The leaves are encoded by serde_cbor.
pub(super) enum C {
    /// A leaf value.
    V(Value),
    /// An array.
    A(Vec<C>),
    /// A map of text keys, in this order.
    M(Vec<(&'static str, C)>),
}

/// The head of a CBOR item of `major` type with argument `n`, in its shortest form.
fn head(major: u8, n: u64, out: &mut Vec<u8>) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend([m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend((n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend((n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend(n.to_be_bytes());
        }
    }
}

fn encode_into(c: &C, out: &mut Vec<u8>) {
    match c {
        C::V(v) => out.extend(cbor(v)),
        C::A(items) => {
            head(4, items.len() as u64, out);
            for i in items {
                encode_into(i, out);
            }
        }
        C::M(entries) => {
            head(5, entries.len() as u64, out);
            for (k, v) in entries {
                out.extend(cbor(&text(k)));
                encode_into(v, out);
            }
        }
    }
}

pub(super) fn ordered(c: &C) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(c, &mut out);
    out
}

pub(super) fn get<'a>(m: &'a Value, key: &str) -> Option<&'a Value> {
    match m {
        Value::Map(m) => m.get(&text(key)),
        _ => None,
    }
}

pub(super) fn get_u64(m: &Value, key: &str) -> Option<u64> {
    match get(m, key)? {
        Value::Integer(i) => u64::try_from(*i).ok(),
        _ => None,
    }
}

pub(super) fn get_text(m: &Value, key: &str) -> Option<String> {
    match get(m, key)? {
        Value::Text(t) => Some(t.clone()),
        _ => None,
    }
}

pub(super) fn get_bytes(m: &Value, key: &str) -> Option<Vec<u8>> {
    match get(m, key)? {
        Value::Bytes(b) => Some(b.clone()),
        _ => None,
    }
}

/// A signed event: its bytes as sent, and the fields the liar orders and filters by.
#[derive(Clone, Debug)]
pub struct Signed {
    /// The envelope, canonical (section 5).
    pub bytes: Vec<u8>,
    /// Its author.
    pub author: PeerId,
    /// The author's sequence number.
    pub seq: u64,
    /// Its Lamport stamp.
    pub lamport: u64,
    /// Its `time`.
    pub time: u64,
}

impl Signed {
    /// The total-order key (section 9): stamp, author in binary form, seq.
    pub(super) fn key(&self) -> (u64, Vec<u8>, u64) {
        (self.lamport, self.author.to_bytes(), self.seq)
    }
}

/// An author: a key, a name and its event counter. The liar signs for its own author and for
/// any number of invented ones.
#[derive(Clone)]
pub struct Author {
    key: Keypair,
    /// Its peer id.
    pub peer: PeerId,
    /// The name it signs with.
    pub user: String,
    /// The last `seq` used (0: none yet).
    pub seq: u64,
    /// The room it signs for.
    pub topic: String,
}

impl Author {
    /// A new author with a fresh key, in the default room.
    pub fn new(user: &str) -> Author {
        Author::with_key(Keypair::generate_ed25519(), user)
    }

    /// An author with `key`.
    pub fn with_key(key: Keypair, user: &str) -> Author {
        Author {
            peer: key.public().to_peer_id(),
            key,
            user: user.to_owned(),
            seq: 0,
            topic: TOPIC.to_owned(),
        }
    }

    /// Its key.
    pub fn key(&self) -> Keypair {
        self.key.clone()
    }

    /// A hello participant entry for this author's join stamped `lamport` with `seq`.
    pub fn entry(&self, lamport: u64, seq: u64) -> Entry {
        Entry {
            peer: self.peer,
            user: self.user.clone(),
            lamport,
            seq,
        }
    }

    /// Signs its join.
    pub fn join(&mut self, lamport: u64, time: u64) -> Signed {
        self.sign("join", lamport, time, vec![])
    }

    /// Signs a message.
    pub fn message(&mut self, lamport: u64, time: u64, line: &str) -> Signed {
        self.sign("message", lamport, time, vec![("text", text(line))])
    }

    /// Signs its leave (`quit`).
    pub fn quit(&mut self, lamport: u64, time: u64) -> Signed {
        self.sign("leave", lamport, time, vec![("reason", text("quit"))])
    }

    /// Signs a `lost` announcement about `subject`, known as `subject_user`.
    pub fn lost(
        &mut self,
        lamport: u64,
        time: u64,
        subject: &PeerId,
        subject_user: &str,
    ) -> Signed {
        self.sign(
            "leave",
            lamport,
            time,
            vec![
                ("reason", text("lost")),
                ("subject", Value::Bytes(subject.to_bytes())),
                ("subject_user", text(subject_user)),
            ],
        )
    }

    /// Signs an event of `kind` with the next `seq` and the extra body fields.
    fn sign(
        &mut self,
        kind: &str,
        lamport: u64,
        time: u64,
        extra: Vec<(&'static str, Value)>,
    ) -> Signed {
        self.seq += 1;
        // The body's keys in the order of section 5's table and examples.
        let mut fields = vec![
            ("topic", text(&self.topic)),
            ("kind", text(kind)),
            ("author", Value::Bytes(self.peer.to_bytes())),
            ("seq", uint(self.seq)),
            ("lamport", uint(lamport)),
            ("time", uint(time)),
            ("user", text(&self.user)),
        ];
        fields.extend(extra);
        let body = ordered(&C::M(
            fields.into_iter().map(|(k, v)| (k, C::V(v))).collect(),
        ));
        let mut signed = CONTEXT.to_vec();
        signed.extend_from_slice(&body);
        let sig = self.key.sign(&signed).expect("ed25519 signs");
        // The canonical envelope: keys in the order v, body, sig (section 5).
        let bytes = ordered(&C::M(vec![
            ("v", C::V(uint(2))),
            ("body", C::V(Value::Bytes(body))),
            ("sig", C::V(Value::Bytes(sig))),
        ]));
        Signed {
            bytes,
            author: self.peer,
            seq: self.seq,
            lamport,
            time,
        }
    }
}

/// A hello's participant entry (section 4).
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The participant.
    pub peer: PeerId,
    /// Its name.
    pub user: String,
    /// Its join stamp.
    pub lamport: u64,
    /// Its join's seq.
    pub seq: u64,
}

/// A hello (section 4).
#[derive(Clone, Debug, PartialEq)]
pub struct HelloMsg {
    /// The sender's room.
    pub topic: String,
    /// The clock it claims.
    pub lamport: u64,
    /// Whom it lists.
    pub participants: Vec<Entry>,
    /// `archive: true` (a hub's).
    pub archive: bool,
}

impl HelloMsg {
    /// A hello of the default room claiming `lamport`, listing `participants`.
    pub fn new(lamport: u64, participants: Vec<Entry>) -> HelloMsg {
        HelloMsg {
            topic: TOPIC.to_owned(),
            lamport,
            participants,
            archive: false,
        }
    }

    /// The hello's CBOR, keys in the order of section 4's table.
    pub fn encode(&self) -> Vec<u8> {
        let participants = self
            .participants
            .iter()
            .map(|p| {
                C::M(vec![
                    ("peer", C::V(Value::Bytes(p.peer.to_bytes()))),
                    ("user", C::V(text(&p.user))),
                    ("lamport", C::V(uint(p.lamport))),
                    ("seq", C::V(uint(p.seq))),
                ])
            })
            .collect();
        let mut fields = vec![
            ("v", C::V(uint(2))),
            ("topic", C::V(text(&self.topic))),
            ("lamport", C::V(uint(self.lamport))),
            ("participants", C::A(participants)),
        ];
        if self.archive {
            fields.push(("archive", C::V(Value::Bool(true))));
        }
        ordered(&C::M(fields))
    }

    pub(super) fn decode(bytes: &[u8]) -> Result<HelloMsg, String> {
        let v: Value = serde_cbor::from_slice(bytes).map_err(|e| format!("not CBOR: {e}"))?;
        if get_u64(&v, "v") != Some(2) {
            return Err(format!("hello of version {:?}", get(&v, "v")));
        }
        let topic = get_text(&v, "topic").ok_or("hello without topic")?;
        let lamport = get_u64(&v, "lamport").ok_or("hello without lamport")?;
        let archive = matches!(get(&v, "archive"), Some(Value::Bool(true)));
        let mut participants = Vec::new();
        if let Some(Value::Array(list)) = get(&v, "participants") {
            for p in list {
                let peer = get_bytes(p, "peer")
                    .and_then(|b| PeerId::from_bytes(&b).ok())
                    .ok_or("participant without a peer id")?;
                participants.push(Entry {
                    peer,
                    user: get_text(p, "user").ok_or("participant without user")?,
                    lamport: get_u64(p, "lamport").ok_or("participant without lamport")?,
                    seq: get_u64(p, "seq").ok_or("participant without seq")?,
                });
            }
        } else {
            return Err("hello without participants".into());
        }
        Ok(HelloMsg {
            topic,
            lamport,
            participants,
            archive,
        })
    }
}

/// A sync request with an empty summary (`low` null, `have` empty): "send me everything".
pub fn empty_summary(topic: &str) -> Vec<u8> {
    sync_request(topic, &[])
}

/// A sync request (section 6) with `low` null and `have` listing, per author, the runs of
/// `seq`s held.
pub fn sync_request(topic: &str, have: &[(PeerId, Vec<(u64, u64)>)]) -> Vec<u8> {
    let have = have
        .iter()
        .map(|(author, ranges)| {
            C::M(vec![
                ("author", C::V(Value::Bytes(author.to_bytes()))),
                (
                    "ranges",
                    C::A(
                        ranges
                            .iter()
                            .map(|(a, b)| C::A(vec![C::V(uint(*a)), C::V(uint(*b))]))
                            .collect(),
                    ),
                ),
            ])
        })
        .collect();
    ordered(&C::M(vec![
        ("v", C::V(uint(2))),
        ("topic", C::V(text(topic))),
        ("low", C::V(Value::Null)),
        ("have", C::A(have)),
    ]))
}

/// What an event says, as far as the liar reads it.
#[derive(Clone, Debug)]
pub struct Read {
    /// Its author.
    pub author: PeerId,
    /// `join`, `message` or `leave`.
    pub kind: String,
    /// Its name.
    pub user: String,
    /// Its seq.
    pub seq: u64,
    /// Its stamp.
    pub lamport: u64,
    /// A message's text.
    pub text: Option<String>,
}

/// Reads a signed event (without checking the signature: the liar only reports).
pub fn read_event(bytes: &[u8]) -> Result<Read, String> {
    let env: Value = serde_cbor::from_slice(bytes).map_err(|e| format!("not CBOR: {e}"))?;
    let body = get_bytes(&env, "body").ok_or("envelope without body")?;
    let b: Value = serde_cbor::from_slice(&body).map_err(|e| format!("body not CBOR: {e}"))?;
    Ok(Read {
        author: get_bytes(&b, "author")
            .and_then(|a| PeerId::from_bytes(&a).ok())
            .ok_or("body without author")?,
        kind: get_text(&b, "kind").ok_or("body without kind")?,
        user: get_text(&b, "user").ok_or("body without user")?,
        seq: get_u64(&b, "seq").ok_or("body without seq")?,
        lamport: get_u64(&b, "lamport").ok_or("body without lamport")?,
        text: get_text(&b, "text"),
    })
}

/// Stamps for a backlog: `authors` invented authors, each with a signed join and then
/// `per_author - 1` messages, interleaved round by round as if everyone heard everyone (stamp
/// `n` for the n-th event of the room, from 1), the `i`-th event of each author said
/// `100 ms x i` after `start_ms` (10 a second per author).
pub fn backlog(authors: usize, per_author: usize, start_ms: u64) -> (Vec<Author>, Vec<Signed>) {
    let mut who: Vec<Author> = (0..authors)
        .map(|a| Author::new(&format!("old{a}")))
        .collect();
    let mut events = Vec::with_capacity(authors * per_author);
    let mut lamport = 0;
    for i in 0..per_author {
        for a in who.iter_mut() {
            lamport += 1;
            let time = start_ms + 100 * i as u64;
            let e = if i == 0 {
                a.join(lamport, time)
            } else {
                a.message(lamport, time, &format!("{} line {i}", a.user))
            };
            events.push(e);
        }
    }
    (who, events)
}
