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
    /// Gets our leaves out, for every room we are leaving, and lets go of each room whose
    /// leave is done (the ui hears `closed` of it, unless the whole node is going).
    pub(super) async fn progress_leaves(&mut self) -> Result<(), NetError> {
        let mut i = 0;
        while i < self.rooms.len() {
            if self.rooms[i].room.has_left() {
                self.progress_leave(i).await?;
                if self.leave_done(i) {
                    let j = self.rooms.remove(i);
                    if !self.swarm.behaviour_mut().gossipsub.unsubscribe(&j.topic) {
                        debug!(room = j.room.topic(), "was not subscribed");
                    }
                    self.paging.forget_room(j.room.topic());
                    // Its ticket's addresses are let go, unless something else wants them.
                    let keep: Vec<&Multiaddr> = self
                        .connect
                        .iter()
                        .chain(self.rooms.iter().flat_map(|o| o.dials.iter()))
                        .collect();
                    let retire: Vec<Multiaddr> = j
                        .dials
                        .iter()
                        .filter(|a| !keep.contains(a))
                        .cloned()
                        .collect();
                    self.dialer.retire_targets(&retire);
                    info!(room = j.room.topic(), "left the room");
                    if !self.quitting {
                        self.send(
                            Some(j.room.topic().to_owned()),
                            ChatEvent::Closed {
                                topic: j.room.topic().to_owned(),
                            },
                        )
                        .await?;
                    }
                    continue;
                }
            }
            i += 1;
        }
        Ok(())
    }

    /// Gets our leave of room `i` out: it waits in the outbox like any event while connected
    /// peers settle, then goes to whoever is subscribed; at the linger deadline, or with nobody
    /// of the room connected at all, the outbox is pushed out as it is and what cannot go is
    /// reported.
    async fn progress_leave(&mut self, i: usize) -> Result<(), NetError> {
        let now = Instant::now();
        let subscribed = self.subscribed_peers(i);
        let Some(j) = self.rooms.get_mut(i) else {
            return Ok(());
        };
        if j.leaving.is_none() {
            // Lines still waiting for their turn go out at our pace, before the leave.
            let paced = if subscribed.is_empty() {
                Duration::ZERO
            } else {
                j.outbox.drain_time()
            };
            j.leaving = Some(Leaving::new(now, paced));
        }
        let Some(leaving) = j.leaving.as_ref() else {
            return Ok(());
        };
        if leaving.is_sent() {
            return Ok(());
        }
        let nobody = j.hellos.values().all(|h| *h == HelloState::Other);
        let force = leaving.must_force(now) || nobody;
        self.flush_outbox(i, force).await?;
        let peers = self.subscribed_peers(i);
        let Some(j) = self.rooms.get_mut(i) else {
            return Ok(());
        };
        if j.outbox.is_empty() {
            debug!(
                waiting = peers.len(),
                "leave sent; waiting for peers to hang up"
            );
            if let Some(l) = &mut j.leaving {
                // Peers we share another room with stay connected: not waited for.
                l.sent_to(peers);
            }
        } else if force {
            let unsent = j.outbox.abandon();
            if let Some(l) = &mut j.leaving {
                l.sent_to(HashSet::new());
            }
            if unsent > 0 {
                self.emit_in(
                    i,
                    ChatEvent::Status(Status::NeverDelivered { count: unsent }),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Whether we are leaving room `i` and either every peer that got our leave has hung up
    /// (or stays for another room of ours), or the linger ran out.
    fn leave_done(&self, i: usize) -> bool {
        let Some(j) = self.rooms.get(i) else {
            return true;
        };
        j.leaving.as_ref().is_some_and(|l| {
            l.is_done(Instant::now(), |p| {
                self.swarm.is_connected(p) && !self.shares_another_room(i, p)
            })
        })
    }

    /// The peers subscribed to room `i`'s topic.
    pub(super) fn subscribed_peers(&self, i: usize) -> HashSet<PeerId> {
        let Some(j) = self.rooms.get(i) else {
            return HashSet::new();
        };
        let hash = j.topic.hash();
        self.swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .filter(|(_, topics)| topics.contains(&&hash))
            .map(|(p, _)| *p)
            .collect()
    }

    /// Hands the event of room `i` stamped `lamport` to gossipsub and logs what became of it.
    pub(super) fn hand_to_gossipsub(&mut self, i: usize, bytes: Vec<u8>, lamport: u64) -> Handed {
        let Some(topic) = self.rooms.get(i).map(|j| j.topic.clone()) else {
            return Handed::NoPeers;
        };
        match self.swarm.behaviour_mut().gossipsub.publish(topic, bytes) {
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
    /// instead of being stamped now: while, in any room, [`PACE_AHEAD`] of our events wait for
    /// their turn under our pace with peers there to take them, or as many typed lines wait for
    /// our join. So we never sign much more than our pace allows over the time our events show,
    /// which is what others take of an author by sync (docs/PROTOCOL.md section 8).
    pub(super) fn pacing_full(&self) -> bool {
        (0..self.rooms.len()).any(|i| {
            let j = &self.rooms[i];
            j.room.pending_len() >= PACE_AHEAD
                || j.outbox.len() >= PACE_AHEAD && !self.subscribed_peers(i).is_empty()
        })
    }

    pub(super) async fn publish(&mut self, i: usize, signed: &SignedEvent) -> Result<(), NetError> {
        let event = &signed.event;
        let bytes = signed.bytes.to_vec();
        let is_message = matches!(event.body, Body::Message(_));
        let now = Instant::now();
        let Some(j) = self.rooms.get(i) else {
            return Ok(());
        };
        let settled = self.unsettled_until(j, now).is_none();
        if let Some(j) = self.rooms.get_mut(i)
            && j.outbox.is_empty()
            && settled
            && j.outbox.take_turn(now)
        {
            match self.hand_to_gossipsub(i, bytes.clone(), event.lamport) {
                Handed::Sent | Handed::Cached => return Ok(()),
                Handed::NoPeers => {}
                Handed::Failed(e) => {
                    return self.emit_in(i, publish_error(event.lamport, &e)).await;
                }
            }
        }
        let queued = Queued {
            bytes,
            lamport: event.lamport,
            is_message,
        };
        let nobody = is_message && self.subscribed_peers(i).is_empty();
        let Some(j) = self.rooms.get_mut(i) else {
            return Ok(());
        };
        match j.outbox.push(queued, nobody, Instant::now()) {
            Err(Full) => {
                info!(lamport = event.lamport, "outbox full; event dropped");
                self.emit_in(
                    i,
                    ChatEvent::Status(Status::EventNotSent {
                        lamport: event.lamport,
                    }),
                )
                .await
            }
            Ok(tell) => {
                info!(
                    lamport = event.lamport,
                    kind = ?event.body,
                    queued = j.outbox.len(),
                    "queued until peers subscribe"
                );
                if tell {
                    self.emit_in(
                        i,
                        ChatEvent::Status(Status::Queued {
                            from: event.lamport,
                        }),
                    )
                    .await?;
                }
                Ok(())
            }
        }
    }

    /// When the last unsettled peer of room `j` stops counting, if any is unsettled now: a
    /// connected peer that has not said hello about the room, or said it but not subscribed
    /// (each for at most [`SETTLE_TIMEOUT`]). Until then, a publish might miss it.
    pub(super) fn unsettled_until(&self, j: &Joined, now: Instant) -> Option<Instant> {
        let hash = j.topic.hash();
        let gossip = &self.swarm.behaviour().gossipsub;
        j.hellos
            .iter()
            .filter(|(peer, hello)| match hello {
                HelloState::Other => false,
                HelloState::Pending => true,
                HelloState::Room => !gossip
                    .all_peers()
                    .any(|(p, topics)| p == *peer && topics.contains(&&hash)),
            })
            .filter_map(|(peer, _)| self.links.get(peer))
            .map(|link| link.since + SETTLE_TIMEOUT)
            .filter(|t| *t > now)
            .max()
    }

    /// Sends what waits in room `i`'s outbox, in order, as far as gossipsub takes it; unless
    /// `force`, only once every connected peer of the room has settled.
    pub(super) async fn flush_outbox(&mut self, i: usize, force: bool) -> Result<(), NetError> {
        let now = Instant::now();
        let Some(j) = self.rooms.get(i) else {
            return Ok(());
        };
        if j.outbox.is_empty() {
            return Ok(());
        }
        let settled = self.unsettled_until(j, now).is_none();
        if !force && !settled {
            // The settle deadline wakes us; this keeps the retry time in the future.
            if let Some(j) = self.rooms.get_mut(i) {
                j.outbox.hold(now);
            }
            return Ok(());
        }
        let mut sent_messages = 0;
        loop {
            let Some(j) = self.rooms.get_mut(i) else {
                return Ok(());
            };
            let Some(front) = j.outbox.front() else { break };
            let (bytes, lamport, is_message) =
                (front.bytes.clone(), front.lamport, front.is_message);
            // Our own pace (receivers drop what comes faster); a leave that must go now goes.
            if !force && !j.outbox.take_turn(now) {
                break;
            }
            let handed = self.hand_to_gossipsub(i, bytes, lamport);
            let Some(j) = self.rooms.get_mut(i) else {
                return Ok(());
            };
            match handed {
                Handed::Sent => {
                    sent_messages += usize::from(is_message);
                    j.outbox.pop_front();
                }
                // Not counted as sent: no peer has it yet.
                Handed::Cached => {
                    j.outbox.pop_front();
                }
                Handed::NoPeers => break,
                Handed::Failed(e) => {
                    j.outbox.pop_front();
                    self.emit_in(i, publish_error(lamport, &e)).await?;
                }
            }
        }
        let Some(j) = self.rooms.get_mut(i) else {
            return Ok(());
        };
        if let Some(sent) = j.outbox.flushed(sent_messages, Instant::now()) {
            self.emit_in(i, ChatEvent::Status(Status::QueuedSent { count: sent }))
                .await?;
        }
        Ok(())
    }

    /// Sends what waits in every room's outbox that can go now.
    pub(super) async fn flush_outboxes(&mut self) -> Result<(), NetError> {
        for i in 0..self.rooms.len() {
            self.flush_outbox(i, false).await?;
        }
        Ok(())
    }
}
