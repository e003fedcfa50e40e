//! Live events from gossipsub: the room's verdict (docs/PROTOCOL.md section 8) reported to
//! gossipsub, and the offences that get a peer cut off.

use super::*;

impl EventLoop {
    pub(super) async fn handle_gossip(&mut self, event: gossipsub::Event) -> Result<(), NetError> {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let now = Instant::now();
                for j in &mut self.rooms {
                    j.room.heard_from(propagation_source, now);
                }
                let Some(i) = self.room_of_hash(&message.topic) else {
                    // A room we just left (or never were in: gossipsub only hands us what we
                    // subscribed to).
                    debug!(via = %propagation_source, topic = %message.topic, "a message of a room we are not in");
                    return Ok(());
                };
                // A private room's event is opened first: what does not open is its author's.
                let opened = match wire::decode_event(&message.data) {
                    Ok(signed) => self.unseal(i, signed).map(Ok),
                    Err(e) => Ok(Err(e)),
                };
                let verdict = match opened {
                    Err(Unsealed { author, reason }) => Verdict::refused(Some(author), *reason),
                    Ok(decoded) => {
                        // A cut-off author is ignored whoever relays it.
                        let cut_off = decoded
                            .as_ref()
                            .is_ok_and(|e| self.is_banned(&e.event.author));
                        // The core's one admit pipeline: checks, known, rate, then taken and
                        // shown.
                        self.rooms[i].room.admit(decoded, cut_off, now, wall_now())
                    }
                };
                if matches!(verdict, Verdict::Accept(_)) {
                    // Shown before it is forwarded: the ui task is woken before the connection
                    // tasks that forward it, and our user need not wait for those.
                    self.drain_room(i).await?;
                }
                crate::net::gossip::report(
                    &mut self.swarm,
                    &message_id,
                    &propagation_source,
                    &verdict,
                );
                let blamed = verdict.blame(propagation_source);
                match verdict {
                    Verdict::Accept(event) => {
                        let source = event.author;
                        let lamport = event.lamport;
                        info!(author = %source, via = %propagation_source, lamport, new = true, "received");
                        // A leave that actually ends the author's presence: an old one from an
                        // earlier run, replayed, does not (its join is later in total order).
                        // (A peer that only parted this room, and is with us in another, stays.)
                        let gone = matches!(event.body, Body::Leave)
                            && !self.rooms[i].room.is_present(&source)
                            && !self.shares_another_room(i, &source);
                        if gone {
                            self.dialer.gone(&source);
                        }
                        if gone {
                            // Hanging up tells the leaver its leave arrived (docs/PROTOCOL.md,
                            // "Leaving"), so it can exit without waiting.
                            let _ = self.swarm.disconnect_peer_id(source);
                        }
                    }
                    Verdict::Limited(event) => {
                        // Watched: sync usually brings it back, and the user hears of it only
                        // if it does not.
                        if self.rooms[i].drops.record(&event, now) {
                            info!(author = %event.author, "over the rate limit; live copies dropped, sync may bring them");
                        } else {
                            debug!(author = %event.author, "rate-limited message dropped");
                        }
                    }
                    Verdict::Known(_) => debug!(via = %propagation_source, "known event dropped"),
                    Verdict::Unfit { reason, .. } | Verdict::Reject { reason, .. } => {
                        if matches!(
                            reason,
                            Rejection::StampWild { .. } | Rejection::StampAhead { .. }
                        ) {
                            // An honest forwarder holds what led its clock on: ask it. (Its
                            // author, if it has nothing of the kind, is blamed by sync.)
                            self.start_sync(i, propagation_source);
                        }
                        match blamed {
                            Some(peer) => self.offence(peer, &reason, now).await?,
                            None => {
                                debug!(via = %propagation_source, %reason, "dropped a message unfit for us")
                            }
                        }
                    }
                }
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                debug!(peer = %peer_id, %topic, "subscribed");
                if let Some(i) = self.room_of_hash(&topic) {
                    self.flush_outbox(i, false).await?;
                }
            }
            other => debug!(event = ?other, "gossipsub event"),
        }
        Ok(())
    }

    /// `peer` sent an invalid message or told a lie: logged at warn the first time in a
    /// minute for each kind, then quietly; enough of them cut the peer off (see
    /// [`Bans`](crate::net::bans::Bans)).
    pub(super) async fn offence(
        &mut self,
        peer: PeerId,
        reason: &Rejection,
        now: Instant,
    ) -> Result<(), NetError> {
        if crate::net::charge(&mut self.swarm, &mut self.guard, peer, reason, now) {
            self.dialer.gone(&peer);
            self.emit(ChatEvent::Status(Status::CutOff {
                peer: peer.to_base58(),
            }))
            .await?;
        }
        Ok(())
    }

    /// Whether `peer` is cut off now.
    pub(super) fn is_banned(&self, peer: &PeerId) -> bool {
        self.guard.is_banned(peer, Instant::now())
    }
}
