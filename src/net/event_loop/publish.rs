//! Publishing our events: straight to gossipsub once every connected peer has settled, or
//! through the outbox (nobody subscribed yet, or our own pace); and our leave, until the peers
//! it went to have hung up.

use super::*;

/// Logged when gossipsub took an event but could not send it at once. With content-addressed
/// message ids, an event whose every send queue was full is in gossipsub's cache (announced
/// to peers by gossip, and offered by history sync); publishing it again is refused as a
/// duplicate. Either way it has left our hands.
pub(super) const HANDED_OVER: &str = "event cached by gossipsub; gossip and sync carry it";

/// What became of one event handed to gossipsub.
pub(super) enum Handed {
    /// On its way to at least one peer.
    Sent,
    /// In gossipsub's cache but sent to no one yet ([`HANDED_OVER`]): not to be published again.
    Cached,
    /// No subscribed peer: it waits in the outbox.
    NoPeers,
    /// Refused (too large, say): the user is told.
    Failed(gossipsub::PublishError),
}

/// What the user is told of an event gossipsub refused.
pub(super) fn publish_error(lamport: u64, e: &gossipsub::PublishError) -> ChatEvent {
    let why = match e {
        gossipsub::PublishError::Duplicate => PublishFailure::Duplicate,
        gossipsub::PublishError::SigningError(_) => PublishFailure::Signing,
        gossipsub::PublishError::MessageTooLarge => PublishFailure::TooLarge,
        gossipsub::PublishError::TransformFailed(_) => PublishFailure::Encoding,
        gossipsub::PublishError::NoPeersSubscribedToTopic => PublishFailure::NoPeers,
        gossipsub::PublishError::AllQueuesFull(_) => PublishFailure::QueuesFull,
    };
    ChatEvent::Status(Status::PublishFailed { lamport, why })
}

/// Own events waiting for their turn beyond which typed lines are not stamped yet
/// ([`EventLoop::pacing_full`]).
pub const PACE_AHEAD: usize = 64;

impl EventLoop {
    /// Gets our leave out: it waits in the outbox like any event while connected peers settle,
    /// then goes to whoever is subscribed; at the linger deadline, or with nobody connected at
    /// all, the outbox is pushed out as it is and what cannot go is reported.
    pub(super) async fn progress_leave(&mut self) -> Result<(), NetError> {
        let now = Instant::now();
        if self.leaving.is_none() {
            // Lines still waiting for their turn go out at our pace, before the leave.
            let paced = if self.subscribed_peers().is_empty() {
                Duration::ZERO
            } else {
                self.outbox.drain_time()
            };
            self.leaving = Some(Leaving::new(now, paced));
        }
        let Some(leaving) = self.leaving.as_mut() else {
            return Ok(());
        };
        if leaving.is_sent() {
            return Ok(());
        }
        let nobody = self.links.values().all(|l| l.hello == HelloState::Other);
        let force = leaving.must_force(now) || nobody;
        self.flush_outbox(force).await?;
        if self.outbox.is_empty() {
            let peers = self.subscribed_peers();
            debug!(
                waiting = peers.len(),
                "leave sent; waiting for peers to hang up"
            );
            if let Some(l) = &mut self.leaving {
                l.sent_to(peers);
            }
        } else if force {
            let unsent = self.outbox.abandon();
            if unsent > 0 {
                self.emit(ChatEvent::Status(Status::NeverDelivered { count: unsent }))
                    .await?;
            }
            if let Some(l) = &mut self.leaving {
                l.sent_to(HashSet::new());
            }
        }
        Ok(())
    }

    /// Whether we are leaving and either every peer that got our leave has hung up, or the linger
    /// ran out.
    pub(super) fn leave_done(&self) -> bool {
        self.leaving
            .as_ref()
            .is_some_and(|l| l.is_done(Instant::now(), |p| self.swarm.is_connected(p)))
    }

    pub(super) fn subscribed_peers(&self) -> HashSet<PeerId> {
        let hash = self.topic.hash();
        self.swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .filter(|(_, topics)| topics.contains(&&hash))
            .map(|(p, _)| *p)
            .collect()
    }

    /// Hands the event stamped `lamport` to gossipsub and logs what became of it.
    pub(super) fn hand_to_gossipsub(&mut self, bytes: Vec<u8>, lamport: u64) -> Handed {
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(self.topic.clone(), bytes)
        {
            Ok(id) => {
                info!(lamport, %id, "published");
                Handed::Sent
            }
            Err(
                e
                @ (gossipsub::PublishError::AllQueuesFull(_) | gossipsub::PublishError::Duplicate),
            ) => {
                info!(lamport, error = %e, "{HANDED_OVER}");
                Handed::Cached
            }
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => Handed::NoPeers,
            Err(e) => {
                // The user is told by the caller (`publish_error`).
                info!(lamport, error = %e, "publish failed");
                Handed::Failed(e)
            }
        }
    }

    /// Whether typed lines wait (unsigned, in the command channel, or in the pipe behind it)
    /// instead of being stamped now: while [`PACE_AHEAD`] of our events wait for their turn
    /// under our pace with peers there to take them, or as many typed lines wait for our join.
    /// So we never sign much more than our pace allows over the time our events show, which is
    /// what others take of an author by sync (docs/PROTOCOL.md section 8).
    pub(super) fn pacing_full(&self) -> bool {
        self.room.pending_len() >= PACE_AHEAD
            || self.outbox.len() >= PACE_AHEAD && !self.subscribed_peers().is_empty()
    }

    pub(super) async fn publish(&mut self, signed: &SignedEvent) -> Result<(), NetError> {
        let event = &signed.event;
        let bytes = signed.bytes.to_vec();
        let is_message = matches!(event.body, Body::Message(_));
        let now = Instant::now();
        if self.outbox.is_empty() && self.settled(now) && self.outbox.take_turn(now) {
            match self.hand_to_gossipsub(bytes.clone(), event.lamport) {
                Handed::Sent | Handed::Cached => return Ok(()),
                Handed::NoPeers => {}
                Handed::Failed(e) => return self.emit(publish_error(event.lamport, &e)).await,
            }
        }
        let queued = Queued {
            bytes,
            lamport: event.lamport,
            is_message,
        };
        let nobody = is_message && self.subscribed_peers().is_empty();
        match self.outbox.push(queued, nobody, Instant::now()) {
            Err(Full) => {
                info!(lamport = event.lamport, "outbox full; event dropped");
                self.emit(ChatEvent::Status(Status::EventNotSent {
                    lamport: event.lamport,
                }))
                .await
            }
            Ok(tell) => {
                info!(
                    lamport = event.lamport,
                    kind = ?event.body,
                    queued = self.outbox.len(),
                    "queued until peers subscribe"
                );
                if tell {
                    self.emit(ChatEvent::Status(Status::Queued {
                        from: event.lamport,
                    }))
                    .await?;
                }
                Ok(())
            }
        }
    }

    /// Whether every connected peer of our room has said hello and subscribed (or had
    /// [`SETTLE_TIMEOUT`] to do so), so that a publish now reaches all of them.
    pub(super) fn settled(&self, now: Instant) -> bool {
        self.unsettled_until(now).is_none()
    }

    /// When the last unsettled peer stops counting, if any is unsettled now.
    pub(super) fn unsettled_until(&self, now: Instant) -> Option<Instant> {
        let hash = self.topic.hash();
        let gossip = &self.swarm.behaviour().gossipsub;
        self.links
            .iter()
            .filter(|(peer, link)| match link.hello {
                HelloState::Other => false,
                HelloState::Pending => true,
                HelloState::Room => !gossip
                    .all_peers()
                    .any(|(p, topics)| p == *peer && topics.contains(&&hash)),
            })
            .map(|(_, link)| link.since + SETTLE_TIMEOUT)
            .filter(|t| *t > now)
            .max()
    }

    /// Sends what waits in the outbox, in order, as far as gossipsub takes it; unless `force`,
    /// only once every connected peer has settled.
    pub(super) async fn flush_outbox(&mut self, force: bool) -> Result<(), NetError> {
        if self.outbox.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        if !force && !self.settled(now) {
            // The settle deadline wakes us; this keeps the retry time in the future.
            self.outbox.hold(now);
            return Ok(());
        }
        let mut sent_messages = 0;
        while let Some(front) = self.outbox.front() {
            let (bytes, lamport, is_message) =
                (front.bytes.clone(), front.lamport, front.is_message);
            // Our own pace (receivers drop what comes faster); a leave that must go now goes.
            if !force && !self.outbox.take_turn(now) {
                break;
            }
            match self.hand_to_gossipsub(bytes, lamport) {
                Handed::Sent => {
                    sent_messages += usize::from(is_message);
                    self.outbox.pop_front();
                }
                // Not counted as sent: no peer has it yet.
                Handed::Cached => {
                    self.outbox.pop_front();
                }
                Handed::NoPeers => break,
                Handed::Failed(e) => {
                    self.outbox.pop_front();
                    self.emit(publish_error(lamport, &e)).await?;
                }
            }
        }
        if let Some(sent) = self.outbox.flushed(sent_messages, Instant::now()) {
            self.emit(ChatEvent::Status(Status::QueuedSent { count: sent }))
                .await?;
        }
        Ok(())
    }
}
