//! What becomes of a received event, and whom to blame for a bad one (docs/PROTOCOL.md,
//! section 8 "Validation"). The rules are applied by `Ledger::admit` (`src/core/ledger.rs`); this
//! module names their outcomes, so that a participant and a hub tell gossipsub the same thing
//! and hold the same peer to account.

use libp2p::PeerId;

use super::event::Event;

/// Why an event or hello from a peer was refused. Nothing of it is shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// It could not be decoded or its signature did not verify (the wire module's words).
    #[error("{0}")]
    Malformed(String),
    /// The stamp is 2^62 or more: no honest clock gets there.
    #[error("stamp {stamp} is beyond any honest clock")]
    StampTooFar {
        /// The received stamp.
        stamp: u64,
        /// Our clock.
        local: u64,
    },
    /// The stamp is more than 2^32 ahead of our clock: refused here, though another node whose
    /// clock is further on may take it (so its forwarder is not to blame).
    #[error("stamp {stamp} is too far ahead of the local clock {local}")]
    StampAhead {
        /// The received stamp.
        stamp: u64,
        /// Our clock.
        local: u64,
    },
    /// The event is signed with our key and numbered as this run numbers its events, but this
    /// run never sent it: only someone holding our key (another process, a copied key file)
    /// can have made it. (Events of earlier runs, numbered below this run's first, are ours
    /// and taken like any other.)
    #[error(
        "event {seq} is signed with our key but this run never sent it (is the key in use elsewhere?)"
    )]
    ForeignOwn {
        /// Its sequence number.
        seq: u64,
    },
    /// A private room's event that does not open with the room's key, or opens to something
    /// invalid: its author signed it so (a forwarder without the key could not tell).
    #[error("sealed event: {0}")]
    Unsealed(String),
    /// The stamp is more than 2^24 ahead of our clock: no honest node gets that far ahead of a
    /// node it shares a room with without events we lack, and those come first by sync (oldest
    /// first). Live, it is dropped and the forwarder asked for history; by sync, refused.
    #[error("stamp {stamp} is wildly ahead of the local clock {local}")]
    StampWild {
        /// The received stamp.
        stamp: u64,
        /// Our clock.
        local: u64,
    },
    /// A hello claims a clock no honest node can have: 2^62 or more, or more than 2^32 ahead of
    /// ours. (Claims never move our clock; this one is held against the claimant.)
    #[error("hello claims clock {claim}, beyond any honest clock (ours is {local})")]
    WildClaim {
        /// The claimed clock.
        claim: u64,
        /// Our clock.
        local: u64,
    },
    /// Learned by sync, but more events of this author than it could have sent at its rate over
    /// the span of time its own events show.
    #[error("more events of {author} than its rate allows over the time its events span")]
    BeyondRate {
        /// The author.
        author: PeerId,
    },
    /// A live `lost` announcement about a participant we heard from a moment ago: it is not
    /// gone, and the announcer is to blame.
    #[error("announced {subject} lost, but it is alive")]
    FalseLost {
        /// The participant said to be lost.
        subject: PeerId,
    },
    /// The event, hello or sync message is from another room.
    #[error("topic {0:?} is another room")]
    OtherRoom(String),
    /// Its author is cut off for earlier offences: ignored whoever relays it.
    #[error("{0} is cut off")]
    CutOff(PeerId),
}

impl Rejection {
    /// Whether the event may still be right for another node, so that whoever forwarded it is
    /// not to blame: a stamp merely far ahead of our clock, our own key used elsewhere, an
    /// author we cut off. Everything else is wrong for everyone.
    pub fn only_author_to_blame(&self) -> bool {
        matches!(
            self,
            Self::StampAhead { .. }
                | Self::StampWild { .. }
                | Self::ForeignOwn { .. }
                | Self::Unsealed(_)
                | Self::CutOff(_)
                | Self::BeyondRate { .. }
        )
    }

    /// The kind of offence, for saying so once per peer per minute, not once per event.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::StampTooFar { .. } => "stamp beyond any clock",
            Self::StampAhead { .. } => "stamp too far ahead",
            Self::StampWild { .. } => "stamp wildly ahead",
            Self::WildClaim { .. } => "wild clock claim",
            Self::BeyondRate { .. } => "history beyond its rate",
            Self::FalseLost { .. } => "false lost announcement",
            Self::ForeignOwn { .. } => "our key used elsewhere",
            Self::Unsealed(_) => "sealed event that does not open",
            Self::OtherRoom(_) => "another room",
            Self::CutOff(_) => "cut off",
        }
    }
}

/// What becomes of one received live event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Valid and new: taken (recorded, shown) and forwarded.
    Accept(Event),
    /// An event we have (learned by sync first, say): dropped, not forwarded, nobody blamed,
    /// and not charged to its author's rate, which a replayer would drain.
    Known(PeerId),
    /// Valid, but over its author's rate: dropped, not forwarded, nobody blamed. Sync may still
    /// bring it.
    Limited(Event),
    /// Valid but not for us ([`Rejection::only_author_to_blame`]): dropped, not forwarded, and
    /// held against its author only.
    Unfit {
        /// Who signed it.
        author: PeerId,
        /// Why it is not for us.
        reason: Rejection,
    },
    /// Invalid for everyone: dropped, and held against whoever forwarded it.
    Reject {
        /// Who signed it, if it decoded that far.
        author: Option<PeerId>,
        /// What is wrong with it.
        reason: Rejection,
    },
}

/// What to tell gossipsub about a message: the three answers of its validation API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forward {
    /// Forward it.
    Accept,
    /// Drop it without penalty.
    Ignore,
    /// Drop it and penalise the peer it came from.
    Reject,
}

impl Verdict {
    /// The verdict on an event that failed a check: [`Verdict::Unfit`] or [`Verdict::Reject`]
    /// by [`Rejection::only_author_to_blame`].
    pub fn refused(author: Option<PeerId>, reason: Rejection) -> Self {
        match author {
            Some(author) if reason.only_author_to_blame() => Self::Unfit { author, reason },
            author => Self::Reject { author, reason },
        }
    }

    /// Who signed the event, if it decoded.
    pub fn author(&self) -> Option<PeerId> {
        match self {
            Self::Accept(e) | Self::Limited(e) => Some(e.author),
            Self::Known(a) | Self::Unfit { author: a, .. } => Some(*a),
            Self::Reject { author, .. } => *author,
        }
    }

    /// What gossipsub is told.
    pub fn forward(&self) -> Forward {
        match self {
            Self::Accept(_) => Forward::Accept,
            Self::Known(_) | Self::Limited(_) | Self::Unfit { .. } => Forward::Ignore,
            Self::Reject { .. } => Forward::Reject,
        }
    }

    /// Whom an offence is charged to when the message came from `forwarder`: the forwarder of
    /// an invalid event; the author of an unfit one only when it sent it itself (a node whose
    /// clock is further on may rightly have forwarded it), unless it is already cut off;
    /// nobody otherwise.
    pub fn blame(&self, forwarder: PeerId) -> Option<PeerId> {
        match self {
            Self::Reject { .. } => Some(forwarder),
            Self::Unfit {
                reason: Rejection::CutOff(_),
                ..
            } => None,
            Self::Unfit { author, .. } if *author == forwarder => Some(forwarder),
            // Signed by its author, and no forwarder without the key could tell.
            Self::Unfit {
                author,
                reason: Rejection::Unsealed(_),
            } => Some(*author),
            _ => None,
        }
    }

    /// Why it was refused, if it was.
    pub fn reason(&self) -> Option<&Rejection> {
        match self {
            Self::Unfit { reason, .. } | Self::Reject { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Section 8: a stamp merely far ahead is ignored and blamed on its author only; a wild
    /// stamp is rejected and blamed on the forwarder.
    #[test]
    fn far_ahead_blames_only_the_author_and_wild_blames_the_forwarder() {
        let (author, relay) = (PeerId::random(), PeerId::random());
        let ahead = Verdict::refused(
            Some(author),
            Rejection::StampAhead {
                stamp: 1 << 40,
                local: 0,
            },
        );
        assert_eq!(ahead.forward(), Forward::Ignore);
        assert_eq!(ahead.blame(relay), None);
        assert_eq!(ahead.blame(author), Some(author));
        let wild = Verdict::refused(
            Some(author),
            Rejection::StampTooFar {
                stamp: u64::MAX,
                local: 0,
            },
        );
        assert_eq!(wild.forward(), Forward::Reject);
        assert_eq!(wild.blame(relay), Some(relay));
        let cut_off = Verdict::refused(Some(author), Rejection::CutOff(author));
        assert_eq!(cut_off.forward(), Forward::Ignore);
        assert_eq!(
            cut_off.blame(author),
            None,
            "already cut off: not charged again"
        );
        let garbage = Verdict::refused(None, Rejection::Malformed("not CBOR".into()));
        assert_eq!(
            (garbage.forward(), garbage.author()),
            (Forward::Reject, None)
        );
    }
}
