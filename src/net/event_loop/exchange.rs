//! The hello and history exchange with each room peer (docs/PROTOCOL.md sections 4 and 6):
//! answering hellos and sync requests, merging hellos, paging through what we lack, and
//! anti-entropy rounds.

use super::*;
use crate::core::verdict::Rejection;

impl EventLoop {
    /// Takes `peer`'s hello about the room it names. `asked` is the room our own hello (whose
    /// answer this is) was about: a peer answering about another room is not in it.
    pub(super) async fn merge_hello(
        &mut self,
        peer: PeerId,
        hello: Hello,
        asked: Option<String>,
    ) -> Result<(), NetError> {
        let hub = hello.archive;
        let named = self.room_of(&hello.topic);
        if let Some(asked) = asked.and_then(|t| self.room_of(&t))
            && Some(asked) != named
            && let Some(j) = self.rooms.get_mut(asked)
            && let Some(h) = j.hellos.get_mut(&peer)
        {
            *h = HelloState::Other;
        }
        let Some(i) = named else {
            debug!(%peer, topic = %hello.topic, "hello about a room we are not in");
            return Ok(());
        };
        let state = match self.rooms[i].room.handle_hello(peer, hello) {
            Ok(()) => HelloState::Room,
            Err(e @ Rejection::WildClaim { .. }) => {
                self.offence(peer, &e, Instant::now()).await?;
                HelloState::Other
            }
            Err(e) => {
                debug!(%peer, reason = %e, "hello not merged");
                HelloState::Other
            }
        };
        if self.links.contains_key(&peer) {
            self.rooms[i].hellos.insert(peer, state);
        }
        if state == HelloState::Room {
            self.start_sync(i, peer);
            if hub {
                self.found_hub(peer);
            }
        }
        Ok(())
    }

    /// Asks `peer` for what room `i` lacks, unless an exchange with it about the room is under
    /// way.
    pub(super) fn start_sync(&mut self, i: usize, peer: PeerId) {
        let Some(j) = self.rooms.get(i) else { return };
        if j.leaving.is_some() || self.paging.busy(&peer, &j.room.topic().to_owned()) {
            return;
        }
        self.request_page(i, peer, 1);
    }

    /// Asks `peer` for page `page` of an exchange about room `i`.
    pub(super) fn request_page(&mut self, i: usize, peer: PeerId, page: u32) {
        let Some(j) = self.rooms.get(i) else { return };
        let req = j.room.sync_request();
        let topic = j.room.topic().to_owned();
        debug!(%peer, authors = req.have.len(), page, "asking for history");
        let id = self.swarm.behaviour_mut().sync.send_request(&peer, req);
        self.paging.asked(id, peer, topic, page);
    }

    pub(super) async fn handle_sync(
        &mut self,
        event: request_response::Event<SyncRequest, SyncResponseOut>,
    ) -> Result<(), NetError> {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    // A room we are not in is answered with nothing (as the room itself would).
                    let i = self.room_of(&request.topic).unwrap_or(0);
                    let Some(j) = self.rooms.get(i) else {
                        return Ok(());
                    };
                    let (room, me, waiting) = (&j.room, self.me, &j.outbox);
                    let store = self.store.as_ref();
                    let page = || {
                        // What memory no longer holds is read from the store, here: a few
                        // indexed reads of at most one page.
                        let mut resp = room.handle_sync_request(&request, |q| {
                            store.map(|s| s.cold(room.topic(), q)).unwrap_or_default()
                        });
                        // Our own events still waiting for their turn go out live, paced: sync
                        // must not hand them over first (the asker gets them then, or next
                        // round).
                        resp.events
                            .retain(|e| e.event.author != me || !waiting.holds(e.event.lamport));
                        resp
                    };
                    crate::net::serve_history(
                        &mut self.swarm,
                        &mut self.guard,
                        peer,
                        channel,
                        page,
                    );
                }
                request_response::Message::Response {
                    response,
                    request_id,
                } => {
                    let SyncResponseOut::Received((resp, rejected)) = response else {
                        return Ok(());
                    };
                    // Events that do not even decode: the server's fault, one offence per page.
                    if let Some(first) = rejected.first() {
                        debug!(%peer, count = rejected.len(), error = %first, "history events rejected");
                        let reason = Rejection::Malformed(first.to_string());
                        self.offence(peer, &reason, Instant::now()).await?;
                    }
                    // Only an answer to what we asked, about a room we are still in.
                    let Some((_, topic, page)) = self.paging.answered(request_id) else {
                        return Ok(());
                    };
                    let Some(i) = self.room_of(&topic) else {
                        return Ok(());
                    };
                    // A private room's events are opened; what does not open is its author's
                    // fault (one offence per author and page), not the server's.
                    let mut resp = resp;
                    if self.rooms[i].private.is_some() {
                        let mut opened = Vec::with_capacity(resp.events.len());
                        let mut blamed: Vec<PeerId> = Vec::new();
                        for e in std::mem::take(&mut resp.events) {
                            match self.unseal(i, e) {
                                Ok(o) => opened.push(o),
                                Err(Unsealed { author, reason }) if !blamed.contains(&author) => {
                                    blamed.push(author);
                                    self.offence(author, &reason, Instant::now()).await?;
                                }
                                Err(_) => {}
                            }
                        }
                        resp.events = opened;
                    }
                    debug!(%peer, events = resp.events.len(), more = resp.more, "history received");
                    let Some(j) = self.rooms.get_mut(i) else {
                        return Ok(());
                    };
                    let more = j
                        .room
                        .handle_sync_response(peer, resp, Instant::now(), wall_now());
                    if more && j.leaving.is_none() {
                        if let Some(next) = next_page(page, true) {
                            self.request_page(i, peer, next);
                        } else {
                            // The next anti-entropy round goes on from where this one stopped.
                            debug!(%peer, page, "history exchange paused");
                        }
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                error,
                request_id,
                ..
            } => {
                debug!(%peer, %error, "history request failed");
                let topic = self.paging.answered(request_id).map(|(_, t, _)| t);
                // Its connection was the duplicate we or the peer closed: ask on the one kept.
                if matches!(error, request_response::OutboundFailure::ConnectionClosed)
                    && self.swarm.is_connected(&peer)
                    && let Some(i) = topic.and_then(|t| self.room_of(&t))
                {
                    self.start_sync(i, peer);
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "history request from a peer failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
        Ok(())
    }

    pub(super) async fn handle_hello(
        &mut self,
        event: request_response::Event<Hello, Hello>,
    ) -> Result<(), NetError> {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    // What a peer's hellos may cost us is bounded: over its budget, a hello is
                    // neither answered nor taken.
                    if !self.guard.may_answer_hello(peer, Instant::now()) {
                        debug!(%peer, "hello over the peer's budget; not answered");
                        return Ok(());
                    }
                    // Answered about the room it names, when we are in it; otherwise about
                    // our first room (which tells it we are not in its room).
                    let i = self.room_of(&request.topic).unwrap_or(0);
                    self.merge_hello(peer, request, None).await?;
                    let Some(answer) = self.rooms.get(i).map(|j| j.room.hello()) else {
                        return Ok(());
                    };
                    if self
                        .swarm
                        .behaviour_mut()
                        .hello
                        .send_response(channel, answer)
                        .is_err()
                    {
                        debug!(%peer, "hello answer not sent: stream closed");
                    }
                }
                request_response::Message::Response {
                    response,
                    request_id,
                } => {
                    let asked = self.hello_asks.remove(&request_id);
                    self.merge_hello(peer, response, asked).await?;
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                error,
                request_id,
                ..
            } => {
                let asked = self.hello_asks.remove(&request_id);
                let Some(i) = asked.and_then(|t| self.room_of(&t)) else {
                    return Ok(());
                };
                let pending = self.rooms[i].hellos.get(&peer) == Some(&HelloState::Pending);
                if matches!(error, request_response::OutboundFailure::ConnectionClosed)
                    && self.swarm.is_connected(&peer)
                {
                    // Its connection was the duplicate we or the peer closed: again, on the
                    // one kept.
                    debug!(%peer, "hello's connection closed; saying it again");
                    if pending && self.rooms[i].leaving.is_none() {
                        self.send_hello(i, peer);
                    }
                    return Ok(());
                }
                debug!(%peer, %error, "hello failed (is it a chitty-node?)");
                if pending && let Some(h) = self.rooms[i].hellos.get_mut(&peer) {
                    *h = HelloState::Other;
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "inbound hello failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
        Ok(())
    }
}
