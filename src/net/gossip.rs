//! The gossip-verdict step both roles share: the core's [`Verdict`] on a received message, told
//! to gossipsub (docs/PROTOCOL.md, section 8). The rules and the blame live in the core
//! (`src/core/ledger.rs`, `src/core/verdict.rs`); this is only their translation.

use libp2p::gossipsub::MessageAcceptance;

use crate::core::verdict::{Forward, Verdict};

/// What gossipsub is told of a message the core judged `verdict`.
pub(crate) fn acceptance(verdict: &Verdict) -> MessageAcceptance {
    match verdict.forward() {
        Forward::Accept => MessageAcceptance::Accept,
        Forward::Ignore => MessageAcceptance::Ignore,
        Forward::Reject => MessageAcceptance::Reject,
    }
}
