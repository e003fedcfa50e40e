//! Signing, as the core sees it: a small trait, so that the core stamps and records its own
//! events without knowing their encoding. The wire module implements it for a libp2p
//! [`Keypair`](libp2p::identity::Keypair) (docs/PROTOCOL.md, section 5 "Events").

use libp2p::PeerId;

use super::event::{Event, SignedEvent};
use crate::private::RoomKeys;

/// Signs our events.
pub trait Signer {
    /// The author our events carry: the peer id of the signing key.
    fn peer_id(&self) -> PeerId;
    /// Encodes `event` for room `topic` and signs it.
    fn sign_event(&self, event: Event, topic: &str) -> SignedEvent;
    /// Encodes `event` for the private room `room`, seals what it says and signs it.
    fn seal_event(&self, event: Event, room: &RoomKeys) -> SignedEvent;
}
