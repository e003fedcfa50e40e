//! History sync (docs/PROTOCOL.md, "Sync"): what a node has, as a compact summary, and what a
//! peer lacks, in bounded pages. Anti-entropy: any two nodes that exchange summaries both ways
//! end with the same events (within their history bound).

use libp2p::PeerId;

use super::event::{OrderKey, SignedEvent};

/// Most events sent in one sync page.
pub const PAGE_EVENTS: usize = 256;
/// Most bytes of events sent in one sync page.
pub const PAGE_BYTES: usize = 256 * 1024;
/// Most runs of sequence numbers listed for one author; more gaps than this only cost resends.
pub const MAX_RANGES: usize = 256;

/// What a node holds of one author's events: runs of sequence numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorHave {
    /// The author.
    pub author: PeerId,
    /// Inclusive runs `(first, last)`, ascending and disjoint, at most [`MAX_RANGES`].
    pub ranges: Vec<(u64, u64)>,
}

impl AuthorHave {
    /// Whether this summary covers `seq`.
    pub fn has(&self, seq: u64) -> bool {
        // Ranges are sorted: find the last run starting at or before `seq`.
        let i = self.ranges.partition_point(|r| r.0 <= seq);
        i > 0 && seq <= self.ranges[i - 1].1
    }
}

/// "Here is what I have; send me what I lack."
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRequest {
    /// The requester's room topic; a node in another room answers with nothing.
    pub topic: String,
    /// Events at or before this key in total order are too old for the requester (its history
    /// bound dropped them): not to be sent.
    pub low: Option<OrderKey>,
    /// The requester's holdings, one entry per author it holds events of.
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
