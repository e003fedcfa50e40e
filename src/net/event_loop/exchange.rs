//! The hello and history exchange with each room peer (docs/PROTOCOL.md sections 4 and 6):
//! answering hellos and sync requests, merging hellos, paging through what we lack, and
//! anti-entropy rounds.

use super::*;

impl EventLoop {
    pub(super) fn merge_hello(&mut self, peer: PeerId, hello: Hello) {
        let hub = hello.archive;
        let state = match self.room.handle_hello(peer, hello) {
            Ok(()) => HelloState::Room,
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

    pub(super) fn handle_sync(
        &mut self,
        event: request_response::Event<SyncRequest, SyncResponseOut>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let mut resp = self.room.handle_sync_request(&request);
                    // Our own events still waiting for their turn go out live, paced: sync must
                    // not hand them over first (the asker gets them then, or next round).
                    let me = self.me;
                    let waiting = &self.outbox;
                    resp.events
                        .retain(|e| e.event.author != me || !waiting.holds(e.event.lamport));
                    crate::net::serve_history(&mut self.swarm, peer, channel, resp);
                }
                request_response::Message::Response {
                    response,
                    request_id,
                } => {
                    let SyncResponseOut::Received((resp, rejected)) = response else {
                        return;
                    };
                    // One line per page, not per event: a page may hold hundreds.
                    if let Some(first) = rejected.first() {
                        warn!(%peer, count = rejected.len(), error = %first, "history events rejected");
                    }
                    debug!(%peer, events = resp.events.len(), more = resp.more, "history received");
                    // Taken even if we did not ask (every event is checked like a live one), but
                    // only an exchange we started goes on to the next page.
                    let page = self.paging.answered(request_id).map(|(_, (), page)| page);
                    let more = self.room.handle_sync_response(peer, resp, wall_now());
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
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "history request from a peer failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    pub(super) fn handle_hello(&mut self, event: request_response::Event<Hello, Hello>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    self.merge_hello(peer, request);
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
                    self.merge_hello(peer, response);
                }
            },
            request_response::Event::OutboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "hello failed (is it a chitty-node?)");
                if let Some(link) = self.links.get_mut(&peer)
                    && link.hello == HelloState::Pending
                {
                    link.hello = HelloState::Other;
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "inbound hello failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }
}
