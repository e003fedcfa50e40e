//! What the core and the network layer have to tell the user, as typed outcomes: the ui words
//! them (the ui layer's renderers), so that no layer below it formats text for people.

/// Something the user should know that is not a chat event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Nobody else is in the room: our lines from the one stamped `from` wait, and go out when
    /// someone joins.
    Queued {
        /// The stamp of the first waiting line.
        from: u64,
    },
    /// Lines that waited for someone went out.
    QueuedSent {
        /// How many.
        count: usize,
    },
    /// We left with lines that never found anyone.
    NeverDelivered {
        /// How many.
        count: usize,
    },
    /// A line was refused before it was stamped: this many already wait for someone to join.
    OutboxFull {
        /// The bound.
        cap: usize,
    },
    /// An event was not sent: too many events wait.
    EventNotSent {
        /// Its stamp.
        lamport: u64,
    },
    /// gossipsub refused one of our events.
    PublishFailed {
        /// Its stamp.
        lamport: u64,
        /// Why.
        why: PublishFailure,
    },
    /// A peer was cut off for sending invalid messages.
    CutOff {
        /// Its base58 peer id.
        peer: String,
    },
    /// A line typed while the join waited was refused: too many wait already.
    TooManyPending,
    /// A line typed after our leave.
    HaveLeft,
    /// On a hub: a client registered in a room.
    Registered {
        /// The client's base58 peer id.
        peer: String,
        /// The room (rendezvous namespace, the room's topic).
        room: String,
        /// For how long, in seconds.
        ttl: u64,
    },
    /// On a hub: a client unregistered from a room.
    Unregistered {
        /// The client's base58 peer id.
        peer: String,
        /// The room.
        room: String,
    },
    /// On a hub: a registration expired.
    RegistrationExpired {
        /// The client's base58 peer id.
        peer: String,
        /// The room.
        room: String,
    },
    /// On a hub: a client reserved a relay slot.
    RelaySlot {
        /// The client's base58 peer id.
        peer: String,
    },
    /// On a hub: a relayed connection between two clients.
    Relaying {
        /// Who dialled.
        from: String,
        /// Whom.
        to: String,
    },
}

/// Why gossipsub refused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishFailure {
    /// It was already sent.
    Duplicate,
    /// It could not be signed.
    Signing,
    /// Too large for the network.
    TooLarge,
    /// It could not be encoded.
    Encoding,
    /// No one else is in the room.
    NoPeers,
    /// Every peer's send queue is full.
    QueuesFull,
}

impl Status {
    /// Whether it reports something that went wrong (an error line), rather than a notice.
    pub fn is_error(&self) -> bool {
        matches!(
            self,
            Status::NeverDelivered { .. }
                | Status::OutboxFull { .. }
                | Status::EventNotSent { .. }
                | Status::PublishFailed { .. }
                | Status::TooManyPending
                | Status::HaveLeft
        )
    }

    /// A short name for scripts (`kind` in JSON).
    pub fn kind(&self) -> &'static str {
        match self {
            Status::Queued { .. } => "queued",
            Status::QueuedSent { .. } => "queued_sent",
            Status::NeverDelivered { .. } => "never_delivered",
            Status::OutboxFull { .. } => "outbox_full",
            Status::EventNotSent { .. } => "event_not_sent",
            Status::PublishFailed { .. } => "publish_failed",
            Status::CutOff { .. } => "cut_off",
            Status::TooManyPending => "too_many_pending",
            Status::HaveLeft => "have_left",
            Status::Registered { .. } => "registered",
            Status::Unregistered { .. } => "unregistered",
            Status::RegistrationExpired { .. } => "registration_expired",
            Status::RelaySlot { .. } => "relay_slot",
            Status::Relaying { .. } => "relaying",
        }
    }
}
