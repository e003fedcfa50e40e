//! The gossip-verdict step both roles share: the core's [`Verdict`] on a received message, told
//! to gossipsub (docs/PROTOCOL.md, section 8). The rules and the blame live in the core
//! (`src/core/ledger.rs`, `src/core/verdict.rs`); this is only their translation.

use libp2p::gossipsub::{MessageAcceptance, MessageId};
use libp2p::{PeerId, Swarm};

use super::behaviour::ChatBehaviour;
use crate::core::verdict::{Forward, Verdict};

/// Tells gossipsub the verdict on message `id` from `source`: only then does it forward it (or
/// lower the forwarder's score).
pub(crate) fn report(
    swarm: &mut Swarm<ChatBehaviour>,
    id: &MessageId,
    source: &PeerId,
    verdict: &Verdict,
) {
    swarm
        .behaviour_mut()
        .gossipsub
        .report_message_validation_result(id, source, acceptance(verdict));
}

/// What gossipsub is told of a message the core judged `verdict`.
pub(crate) fn acceptance(verdict: &Verdict) -> MessageAcceptance {
    match verdict.forward() {
        Forward::Accept => MessageAcceptance::Accept,
        Forward::Ignore => MessageAcceptance::Ignore,
        Forward::Reject => MessageAcceptance::Reject,
    }
}
