//! The hello and history exchange with each room peer (docs/PROTOCOL.md sections 4 and 6):
//! answering hellos and sync requests, merging hellos, paging through what we lack, and
//! anti-entropy rounds.

use super::*;
use crate::core::verdict::Rejection;

impl EventLoop {
    pub(super) async fn merge_hello(&mut self, peer: PeerId, hello: Hello) -> Result<(), NetError> {
        let hub = hello.archive;
        let state = match self.room.handle_hello(peer, hello) {
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
        if let Some(link) = self.links.get_mut(&peer) {
            link.hello = state;
        }
        if state == HelloState::Room {
            self.start_sync(peer);
            if hub {
                self.found_hub(peer);
            }
        }
        Ok(())
    }

    /// Asks `peer` for what we lack, unless an exchange with it is under way.
    pub(super) fn start_sync(&mut self, peer: PeerId) {
        if self.leaving.is_some() || self.paging.busy(&peer, &()) {
            return;
        }
        self.request_page(peer, 1);
    }

    /// Asks `peer` for page `page` of an exchange.
    pub(super) fn request_page(&mut self, peer: PeerId, page: u32) {
        let req = self.room.sync_request();
        debug!(%peer, authors = req.have.len(), page, "asking for history");
        let id = self.swarm.behaviour_mut().sync.send_request(&peer, req);
        self.paging.asked(id, peer, (), page);
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
                    let (room, me, waiting) = (&self.room, self.me, &self.outbox);
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
                    // A private room's events are opened; what does not open is its author's
                    // fault (one offence per author and page), not the server's.
                    let mut resp = resp;
                    if self.private.is_some() {
                        let mut opened = Vec::with_capacity(resp.events.len());
                        let mut blamed: Vec<PeerId> = Vec::new();
                        for e in std::mem::take(&mut resp.events) {
                            match self.unseal(e) {
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
                    // Taken even if we did not ask (every event is checked like a live one), but
                    // only an exchange we started goes on to the next page.
                    let page = self.paging.answered(request_id).map(|(_, (), page)| page);
                    let more =
                        self.room
                            .handle_sync_response(peer, resp, Instant::now(), wall_now());
                    if more && self.leaving.is_none() {
                        if let Some(next) = page.and_then(|p| next_page(p, true)) {
                            self.request_page(peer, next);
                        } else {
                            // The next anti-entropy round goes on from where this one stopped.
                            debug!(%peer, ?page, "history exchange paused");
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
                self.paging.failed(request_id);
                // Its connection was the duplicate we or the peer closed: ask on the one kept.
                if matches!(error, request_response::OutboundFailure::ConnectionClosed)
                    && self.swarm.is_connected(&peer)
                {
                    self.start_sync(peer);
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
                    self.merge_hello(peer, request).await?;
                    let answer = self.room.hello();
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
                request_response::Message::Response { response, .. } => {
                    self.merge_hello(peer, response).await?;
                }
            },
            request_response::Event::OutboundFailure { peer, error, .. } => {
                let pending = self
                    .links
                    .get(&peer)
                    .is_some_and(|l| l.hello == HelloState::Pending);
                if matches!(error, request_response::OutboundFailure::ConnectionClosed)
                    && self.swarm.is_connected(&peer)
                {
                    // Its connection was the duplicate we or the peer closed: again, on the
                    // one kept.
                    debug!(%peer, "hello's connection closed; saying it again");
                    if pending && self.leaving.is_none() {
                        let hello = self.room.hello();
                        self.swarm.behaviour_mut().hello.send_request(&peer, hello);
                    }
                    return Ok(());
                }
                debug!(%peer, %error, "hello failed (is it a chitty-node?)");
                if let Some(link) = self.links.get_mut(&peer)
                    && pending
                {
                    link.hello = HelloState::Other;
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
