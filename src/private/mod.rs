//! Private rooms (docs/PROTOCOL.md section 14, docs/decisions/0013): a room's 256-bit secret,
//! the topic and content key derived from it (HKDF-SHA-256, one label each), sealing and
//! opening what members say (XChaCha20-Poly1305, a random 24-byte nonce per event, the clear
//! header bound as associated data), and invite tickets ([`ticket`]). Pure computation: the
//! only thing drawn from the system is randomness, for secrets and nonces.

pub mod ticket;

use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload, rand_core::RngCore};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;

/// Bytes of a room secret.
pub const SECRET_LEN: usize = 32;
/// Bytes of a nonce, sent before each ciphertext.
pub const NONCE_LEN: usize = 24;
/// Bytes of the authentication tag after each ciphertext.
pub const TAG_LEN: usize = 16;
/// The HKDF salt of every derivation (version 1 of the scheme).
pub const SALT: &[u8] = b"chitty-chat/private/1";
/// The HKDF label of the topic identifier.
pub const TOPIC_LABEL: &[u8] = b"topic";
/// The HKDF label of the content key.
pub const CONTENT_LABEL: &[u8] = b"content";
/// Every private room's gossipsub topic starts so; 32 hex digits of the derived identifier
/// follow. No public room's topic can (those are `chitty-chat` and `chitty-chat/NAME`).
pub const TOPIC_PREFIX: &str = "chitty-private/";
/// What the associated data of a sealed body starts with.
const AAD_LABEL: &[u8] = b"chitty-chat/sealed/1:";

/// A private room's secret: whoever holds it is a member. Never printed (its `Debug` says
/// nothing of it) and never logged; it leaves the process only in a ticket the user asked for.
#[derive(Clone, PartialEq, Eq)]
pub struct RoomSecret([u8; SECRET_LEN]);

impl std::fmt::Debug for RoomSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoomSecret(..)")
    }
}

impl RoomSecret {
    /// A new random secret, from the operating system's generator.
    pub fn generate() -> Self {
        let mut b = [0u8; SECRET_LEN];
        OsRng.fill_bytes(&mut b);
        Self(b)
    }

    /// The secret of these bytes (from a ticket, or a test vector).
    pub fn from_bytes(bytes: [u8; SECRET_LEN]) -> Self {
        Self(bytes)
    }

    /// Its bytes, for a ticket.
    pub fn as_bytes(&self) -> &[u8; SECRET_LEN] {
        &self.0
    }

    /// What is derived from it.
    pub fn keys(&self) -> RoomKeys {
        let hk = Hkdf::<Sha256>::new(Some(SALT), &self.0);
        let mut id = [0u8; 16];
        let mut key = [0u8; 32];
        // Both lengths are far below HKDF's limit (255 blocks): expanding cannot fail.
        hk.expand(TOPIC_LABEL, &mut id)
            .and_then(|()| hk.expand(CONTENT_LABEL, &mut key))
            .expect("HKDF-SHA-256 expands 16 and 32 bytes");
        let topic = format!("{TOPIC_PREFIX}{}", hex(&id));
        RoomKeys {
            topic,
            cipher: XChaCha20Poly1305::new(&key.into()),
        }
    }
}

/// A private room as a node runs it: its secret (for tickets) and what is derived from it.
#[derive(Debug, Clone)]
pub struct PrivateRoom {
    /// The secret.
    pub secret: RoomSecret,
    /// Its topic and content key.
    pub keys: RoomKeys,
    /// Whether this run made it (`--private`): its ticket is shown at start.
    pub made: bool,
}

impl PrivateRoom {
    /// A new room, made by this run.
    pub fn make() -> Self {
        let secret = RoomSecret::generate();
        Self {
            keys: secret.keys(),
            secret,
            made: true,
        }
    }

    /// The room of `secret`, joined (from a ticket).
    pub fn join(secret: RoomSecret) -> Self {
        Self {
            keys: secret.keys(),
            secret,
            made: false,
        }
    }
}

/// Whether `topic` is a private room's.
pub fn is_private_topic(topic: &str) -> bool {
    topic.strip_prefix(TOPIC_PREFIX).is_some_and(|id| {
        id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// What an event says in the clear, bound to its sealed body: a body moved to another event,
/// stamp, author or room no longer opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The room's topic.
    pub topic: &'a str,
    /// The author's peer id, binary form.
    pub author: &'a [u8],
    /// The author's sequence number.
    pub seq: u64,
    /// The Lamport stamp.
    pub lamport: u64,
    /// The author's clock, ms since the Unix epoch.
    pub time: u64,
}

impl Header<'_> {
    /// The associated data: the label, then the topic and the author each after its length
    /// (two bytes, one byte, big-endian), then `seq`, `lamport` and `time` as 8 bytes each,
    /// big-endian.
    pub fn associated_data(&self) -> Vec<u8> {
        let mut a =
            Vec::with_capacity(AAD_LABEL.len() + 2 + self.topic.len() + 1 + self.author.len() + 24);
        a.extend_from_slice(AAD_LABEL);
        a.extend_from_slice(&(self.topic.len().min(u16::MAX as usize) as u16).to_be_bytes());
        a.extend_from_slice(self.topic.as_bytes());
        a.push(self.author.len().min(u8::MAX as usize) as u8);
        a.extend_from_slice(self.author);
        a.extend_from_slice(&self.seq.to_be_bytes());
        a.extend_from_slice(&self.lamport.to_be_bytes());
        a.extend_from_slice(&self.time.to_be_bytes());
        a
    }
}

/// Why a sealed body does not open. A member treats either as an invalid event of its author.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Shorter than a nonce and a tag.
    #[error("sealed body of {0} bytes is shorter than a nonce and a tag")]
    TooShort(usize),
    /// The tag does not verify: another room's key, or the body, nonce or header altered.
    #[error("sealed body does not open: another room's, or altered")]
    Forged,
}

/// A private room's topic and content key.
#[derive(Clone)]
pub struct RoomKeys {
    topic: String,
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for RoomKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomKeys")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl RoomKeys {
    /// The room's gossipsub topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Seals `plain` under `header` with a fresh random nonce: `nonce || ciphertext || tag`.
    pub fn seal(&self, header: &Header<'_>, plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        self.seal_with_nonce(header, plain, nonce)
    }

    /// [`RoomKeys::seal`] with a given nonce (test vectors; never reuse one).
    pub fn seal_with_nonce(
        &self,
        header: &Header<'_>,
        plain: &[u8],
        nonce: [u8; NONCE_LEN],
    ) -> Vec<u8> {
        let aad = header.associated_data();
        let n = XNonce::from(nonce);
        // Encryption fails only for a plaintext beyond 256 GiB.
        let ct = self
            .cipher
            .encrypt(
                &n,
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 seals a small body");
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens what [`RoomKeys::seal`] made under the same header.
    pub fn open(&self, header: &Header<'_>, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(OpenError::TooShort(sealed.len()));
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let aad = header.associated_data();
        self.cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| OpenError::Forged)
    }
}

/// Lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
