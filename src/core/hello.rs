//! The hello exchange's message (docs/PROTOCOL.md, section 4 "Hello"): which room, what time it
//! is, who is here. Shared by the ledger that answers it, the wire codec that carries it and the
//! roster that lists its participants.

use libp2p::PeerId;

use super::event::Username;

/// A participant as the hello exchange lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// Their peer id.
    pub peer: PeerId,
    /// Their username.
    pub user: Username,
    /// The stamp of their join.
    pub lamport: u64,
    /// The sequence number of their join event.
    pub seq: u64,
}

/// What two nodes tell each other on every new connection: which room, what time it is, who is
/// here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The sender's gossipsub topic; hellos from other rooms are ignored.
    pub topic: String,
    /// The sender's Lamport clock.
    pub lamport: u64,
    /// The participants the sender knows to be present, itself included once it has joined.
    pub participants: Vec<Participant>,
    /// The sender is a hub keeping the room's history (not a participant): a joining node
    /// catches up with it as with a participant.
    pub archive: bool,
}
