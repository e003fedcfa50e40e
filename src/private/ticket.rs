//! Invite tickets (docs/PROTOCOL.md section 14): one string that holds a private room's secret,
//! its display name if it has one, and where to find members now. bech32m, human-readable part
//! `chitty`: so every ticket starts `chitty1`, uses one case and 32 unambiguous characters, and
//! carries a checksum that finds any mistyped character of up to four and almost any other
//! damage.
//!
//! The payload, before bech32m: a version byte (1); the 32-byte secret; the name's length (one
//! byte, 0 for none) and its UTF-8 bytes; the number of addresses (one byte) and each address
//! as its length (one byte) and its binary multiaddr.

use bech32::{Bech32m, Hrp};
use libp2p::Multiaddr;

use super::{RoomSecret, SECRET_LEN};
use crate::core::event::RoomName;

/// The human-readable part: tickets start `chitty1`.
pub const HRP: &str = "chitty";
/// The payload's version.
pub const VERSION: u8 = 1;
/// The longest ticket bech32m allows (its checksum's guarantees hold up to this): addresses
/// that would make it longer are left out.
pub const MAX_LEN: usize = 1023;

/// What a ticket holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The room's secret.
    pub secret: RoomSecret,
    /// The room's display name, if it was given one.
    pub name: Option<RoomName>,
    /// Where members were when it was made (with `/p2p/` peer ids where known).
    pub addrs: Vec<Multiaddr>,
}

/// Why a string is not a ticket. Each says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// No `chitty1` prefix, but it looks like a room name.
    #[error(
        "{0:?} is not a ticket: tickets start with chitty1 (for a public room, use --room NAME)"
    )]
    RoomName(String),
    /// No `chitty1` prefix.
    #[error("not a ticket: tickets start with chitty1; copy the whole ticket")]
    Prefix,
    /// The checksum does not match: mistyped, or cut short.
    #[error(
        "the ticket is damaged (mistyped or cut short: its checksum does not match); copy it again"
    )]
    Checksum,
    /// A ticket of a later chitty-node.
    #[error("the ticket is of version {0}, newer than this chitty-node reads; update it")]
    Version(u8),
    /// The checksum matched but the contents do not parse.
    #[error("the ticket is malformed ({0}); ask for a new one")]
    Malformed(&'static str),
}

impl Ticket {
    /// The ticket as a string: `chitty1...`. Addresses beyond what fits in [`MAX_LEN`]
    /// characters are left out (the secret and name always fit).
    pub fn encode(&self) -> String {
        let hrp = Hrp::parse_unchecked(HRP);
        let mut addrs = self.addrs.len();
        loop {
            let payload = self.payload(addrs);
            if let Ok(s) = bech32::encode::<Bech32m>(hrp, &payload)
                && s.len() <= MAX_LEN
            {
                return s;
            }
            if addrs == 0 {
                // Unreachable: a secret and a 64-character name are far below the limit.
                return String::new();
            }
            addrs -= 1;
        }
    }

    fn payload(&self, addrs: usize) -> Vec<u8> {
        let mut p = vec![VERSION];
        p.extend_from_slice(self.secret.as_bytes());
        let name = self.name.as_ref().and_then(RoomName::name).unwrap_or("");
        p.push(name.len().min(255) as u8);
        p.extend_from_slice(&name.as_bytes()[..name.len().min(255)]);
        let fitting: Vec<Vec<u8>> = self
            .addrs
            .iter()
            .map(|a| a.to_vec())
            .filter(|b| b.len() <= 255)
            .take(addrs.min(255))
            .collect();
        p.push(fitting.len() as u8);
        for a in fitting {
            p.push(a.len() as u8);
            p.extend_from_slice(&a);
        }
        p
    }

    /// Whether `s` starts as every ticket does (`chitty1`, either case): a ticket, or a piece of
    /// one, rather than a room name.
    pub fn starts_like_one(s: &str) -> bool {
        s.get(..HRP.len() + 1)
            .is_some_and(|head| head.eq_ignore_ascii_case(&format!("{HRP}1")))
    }

    /// Reads a ticket, as pasted (surrounding whitespace ignored; either case).
    pub fn decode(s: &str) -> Result<Ticket, TicketError> {
        let s = s.trim();
        if !Ticket::starts_like_one(s) {
            let room_like = !s.is_empty() && RoomName::new(s).is_ok() && s.len() <= 64;
            return Err(if room_like {
                TicketError::RoomName(s.to_owned())
            } else {
                TicketError::Prefix
            });
        }
        let checked = bech32::primitives::decode::CheckedHrpstring::new::<Bech32m>(s)
            .map_err(|_| TicketError::Checksum)?;
        if !checked.hrp().as_str().eq_ignore_ascii_case(HRP) {
            return Err(TicketError::Prefix);
        }
        let p: Vec<u8> = checked.byte_iter().collect();
        let mut r = Reader(&p);
        let version = r.byte("empty")?;
        if version != VERSION {
            return Err(TicketError::Version(version));
        }
        let secret: [u8; SECRET_LEN] = r
            .take(SECRET_LEN, "secret cut short")?
            .try_into()
            .map_err(|_| TicketError::Malformed("secret cut short"))?;
        let name_len = r.byte("name length missing")? as usize;
        let name = if name_len == 0 {
            None
        } else {
            let raw = r.take(name_len, "name cut short")?;
            let text = std::str::from_utf8(raw)
                .map_err(|_| TicketError::Malformed("name is not UTF-8"))?;
            Some(RoomName::new(text).map_err(|_| TicketError::Malformed("invalid room name"))?)
        };
        let count = r.byte("address count missing")? as usize;
        let mut addrs = Vec::with_capacity(count);
        for _ in 0..count {
            let len = r.byte("address length missing")? as usize;
            let raw = r.take(len, "address cut short")?;
            addrs.push(
                Multiaddr::try_from(raw.to_vec())
                    .map_err(|_| TicketError::Malformed("invalid address"))?,
            );
        }
        if !r.0.is_empty() {
            return Err(TicketError::Malformed("bytes after the addresses"));
        }
        Ok(Ticket {
            secret: RoomSecret::from_bytes(secret),
            name,
            addrs,
        })
    }
}

/// Reads a payload front to back.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self, what: &'static str) -> Result<u8, TicketError> {
        let (&b, rest) = self.0.split_first().ok_or(TicketError::Malformed(what))?;
        self.0 = rest;
        Ok(b)
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], TicketError> {
        if self.0.len() < n {
            return Err(TicketError::Malformed(what));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
}
