//! History sync (docs/PROTOCOL.md, "Sync"): what a node has, as a compact summary, and what a
//! peer lacks, in bounded pages. Anti-entropy: any two nodes that exchange summaries both ways
//! end with the same events (up to the transcript bound).

use libp2p::PeerId;

use super::event::SignedEvent;

/// Most events sent in one sync page.
pub const PAGE_EVENTS: usize = 256;
/// Most bytes of events sent in one sync page.
pub const PAGE_BYTES: usize = 256 * 1024;

/// What a node holds of one author's events: every `seq` from 1 to `upto`, plus `extra`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorHave {
    /// The author.
    pub author: PeerId,
    /// All of `1..=upto` are held (or were held and evicted by the transcript bound).
    pub upto: u64,
    /// Sequence numbers above `upto` that are held too (at most `wire::MAX_SYNC_EXTRA`).
    pub extra: Vec<u64>,
}

impl AuthorHave {
    /// Whether this summary covers `seq`.
    pub fn has(&self, seq: u64) -> bool {
        seq <= self.upto || self.extra.contains(&seq)
    }
}

/// "Here is what I have; send me what I lack."
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRequest {
    /// The requester's room topic; a node in another room answers with nothing.
    pub topic: String,
    /// The requester's summary, one entry per author it knows.
    pub have: Vec<AuthorHave>,
}

/// A page of what the requester lacks, in total order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResponse {
    /// Signed events, oldest first in total order.
    pub events: Vec<SignedEvent>,
    /// Whether more is missing beyond this page: ask again with the updated summary.
    pub more: bool,
}
