//! The hub (`chitty-node --relay`, docs/PROTOCOL.md, "Hub"): an always-on peer for nodes that
//! mDNS cannot bring together. It is not a participant: it never joins. For every room a client
//! names in its hello, it subscribes to the room's topic, validates and forwards the room's
//! gossip through the same admit pipeline as a participant, keeps the room's history (a
//! [`Ledger`](crate::core::ledger::Ledger) kept as an archive, in `rooms.rs`) and answers hellos
//! and sync requests, so that clients that reach only the hub still chat, and catch up, through
//! it.
//!
//! One task owns the swarm, as in [`super::event_loop`]; it uses the same behaviours.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::{Duration, Instant};

use libp2p::futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, gossipsub, relay, rendezvous, request_response};
use tokio::sync::mpsc;
use tracing::{debug, info};

use super::behaviour::{ChatBehaviour, ChatBehaviourEvent};
use super::guard::Guard;
use super::hello::SyncResponseOut;
use super::paging::{Paging, next_page};
use super::swarm::{NetError, build_swarm, is_loopback};
use crate::core::event::{Body, ChatEvent};
use crate::core::hello::Hello;
use crate::core::ledger::Page;
use crate::core::status::Status;
use crate::core::sync::SyncRequest;
use crate::core::verdict::{Rejection, Verdict};

mod rooms;

use rooms::Rooms;

/// The hub's TCP port unless `--listen` says otherwise.
pub const DEFAULT_HUB_PORT: u16 = 4747;
/// How long a stopping hub goes on forwarding what it has accepted.
pub const FLUSH_LINGER: Duration = Duration::from_millis(250);
/// How long the hub waits after a leave before hanging up on the leaver.
pub const HANG_UP_DELAY: Duration = Duration::from_millis(500);
/// Most rooms one hub serves.
pub const MAX_ROOMS: usize = 64;
/// Most rooms one peer may have the hub serve it: a client opening room after room cannot take
/// the hub's rooms from everyone else.
pub const ROOMS_PER_PEER: usize = 8;

/// What the hub needs to run.
#[derive(Debug)]
pub struct HubConfig {
    /// Its persistent identity.
    pub keypair: Keypair,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Events kept per room.
    pub history: usize,
    /// The archive on disk, if the hub keeps one: every room served is read back from it when
    /// first opened, and what the hub takes is written to it.
    pub store: Option<crate::store::Store>,
}

/// The hub's event loop.
pub struct Hub {
    swarm: Swarm<ChatBehaviour>,
    me: PeerId,
    events: mpsc::Sender<ChatEvent>,
    /// One ledger per room served, at most [`MAX_ROOMS`].
    rooms: Rooms,
    listening: Vec<Multiaddr>,
    ready_pending: bool,
    ready_done: bool,
    alive: super::liveness::Liveness,
    /// Sync exchanges the hub asked for: the room and the page count of each request.
    syncing: Paging<request_response::OutboundRequestId, String>,
    /// Leavers to hang up on once their leave has been forwarded (and, soon after, their
    /// unregistration has arrived: it travels on a stream of its own, behind the leave).
    hang_up: Vec<(PeerId, Instant)>,
    /// Offences and bans, and what each peer's requests may cost us: the nodes' rules.
    guard: Guard,
    /// The rooms each connected peer said hello for, at most [`ROOMS_PER_PEER`].
    rooms_of: HashMap<PeerId, HashSet<String>>,
}

impl Hub {
    /// Builds the swarm and starts listening.
    pub fn new(config: HubConfig, events: mpsc::Sender<ChatEvent>) -> Result<Self, NetError> {
        // No mDNS: clients find the hub by its address, and LAN peers find each other.
        let mut swarm = build_swarm(&config.keypair, false, true)?;
        super::swarm::listen_all(&mut swarm, &config.listen)?;
        Ok(Self {
            me: *swarm.local_peer_id(),
            swarm,
            events,
            rooms: Rooms::new(config.history).with_store(config.store)?,
            listening: Vec::new(),
            ready_pending: false,
            ready_done: false,
            alive: super::liveness::Liveness::default(),
            syncing: Paging::default(),
            hang_up: Vec::new(),
            guard: Guard::default(),
            rooms_of: HashMap::new(),
        })
    }

    /// Runs until `shutdown` resolves (Ctrl-C, SIGTERM), then for [`FLUSH_LINGER`] more, so that
    /// what it has just accepted is still forwarded (gossipsub drops a connection's queued
    /// messages when the swarm goes). The hub reads no input.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), NetError> {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut stop_at: Option<Instant> = None;
        loop {
            self.rooms.store_new();
            if stop_at.is_some_and(|t| Instant::now() >= t) {
                info!("hub stopped");
                return self.emit(ChatEvent::Stopped).await;
            }
            self.hang_up_due(Instant::now());
            let liveness = self
                .alive
                .poll_timeout()
                .into_iter()
                .chain(self.hang_up.iter().map(|h| h.1))
                .min()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            let liveness = stop_at.map_or(liveness, |t| liveness.min(t));
            tokio::select! {
                biased;
                _ = &mut shutdown, if stop_at.is_none() => {
                    info!("hub shutting down");
                    stop_at = Some(Instant::now() + FLUSH_LINGER);
                }
                event = self.swarm.select_next_some() => self.handle_swarm_event(event).await?,
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(liveness)) => {
                    self.sweep_dead(Instant::now());
                }
                _ = std::future::ready(()), if self.ready_pending => self.announce_ready().await?,
            }
        }
    }

    // `&mut self`: a `&Hub` held across the await would need the swarm to be `Sync`.
    async fn emit(&mut self, event: ChatEvent) -> Result<(), NetError> {
        self.events
            .send(event)
            .await
            .map_err(|_| NetError::OutputClosed)
    }

    async fn announce_ready(&mut self) -> Result<(), NetError> {
        self.ready_pending = false;
        self.ready_done = true;
        let listen = super::swarm::full_addresses(&self.listening, self.me);
        self.emit(ChatEvent::Ready {
            peer: self.me.to_base58(),
            user: String::new(),
            topic: String::new(),
            listen,
        })
        .await
    }

    fn hang_up_due(&mut self, now: Instant) {
        let (due, later): (Vec<_>, Vec<_>) = self.hang_up.drain(..).partition(|h| h.1 <= now);
        self.hang_up = later;
        for (peer, _) in due {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    fn sweep_dead(&mut self, now: Instant) {
        super::close_silent(&mut self.swarm, &mut self.alive, now);
    }

    async fn handle_swarm_event(
        &mut self,
        event: SwarmEvent<ChatBehaviourEvent>,
    ) -> Result<(), NetError> {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                // The relay server offers reservations, and the addresses in them, only once
                // it has a confirmed external address: the hub is reached where it listens.
                if !is_loopback(&address) {
                    self.swarm.add_external_address(address.clone());
                }
                self.listening.push(address);
                if !self.ready_done {
                    self.ready_pending = true;
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                if self.guard.is_banned(&peer_id, Instant::now()) {
                    debug!(peer = %peer_id, "refusing a cut-off peer");
                    self.swarm.close_connection(connection_id);
                    return Ok(());
                }
                self.alive.opened(connection_id, peer_id, Instant::now());
                if num_established.get() == 1 {
                    info!(peer = %peer_id, addr = %endpoint.get_remote_address(), "connection established");
                    self.emit(ChatEvent::Peer {
                        peer: peer_id.to_base58(),
                        connected: true,
                        addr: endpoint.get_remote_address().to_string(),
                    })
                    .await?;
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                endpoint,
                ..
            } => {
                self.alive.closed(connection_id);
                if num_established == 0 {
                    self.rooms_of.remove(&peer_id);
                    info!(peer = %peer_id, "connection closed");
                    self.emit(ChatEvent::Peer {
                        peer: peer_id.to_base58(),
                        connected: false,
                        addr: endpoint.get_remote_address().to_string(),
                    })
                    .await?;
                }
            }
            SwarmEvent::Behaviour(ChatBehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                let topic = message.topic.as_str().to_owned();
                let now = Instant::now();
                let guard = &self.guard;
                let verdict = self
                    .rooms
                    .judge(&topic, &message.data, now, |a| guard.is_banned(a, now));
                super::gossip::report(&mut self.swarm, &message_id, &propagation_source, &verdict);
                if let (Some(peer), Some(reason)) =
                    (verdict.blame(propagation_source), verdict.reason())
                {
                    let reason = reason.clone();
                    self.charge(peer, &reason, now).await?;
                }
                match verdict {
                    Verdict::Accept(event) => {
                        if matches!(event.body, Body::Leave)
                            && !self.rooms.present_anywhere(&event.author)
                        {
                            // As a participant does: hanging up tells the leaver its leave is
                            // out; a moment later, so that its unregistration gets in. (Not
                            // while it is in another room here: that was a `/part`.)
                            self.hang_up
                                .push((event.author, Instant::now() + HANG_UP_DELAY));
                        }
                        let view = event.view(false);
                        info!(%topic, lamport = view.lamport, user = %view.user, "relayed");
                        self.emit(ChatEvent::Chat(view)).await?;
                    }
                    Verdict::Known(_) | Verdict::Limited(_) => {
                        debug!(author = ?verdict.author(), "known or rate-limited message dropped");
                    }
                    // Not for us, though it may be for a node whose clock is further on: not
                    // forwarded, and the forwarder not penalised.
                    Verdict::Unfit { author, reason } => {
                        debug!(%author, via = %propagation_source, %reason, "dropped a message unfit for us");
                    }
                    // Said by `charge`, once a minute per peer.
                    Verdict::Reject { reason, .. } => {
                        debug!(via = %propagation_source, %reason, "rejected message");
                    }
                }
            }
            SwarmEvent::Behaviour(ChatBehaviourEvent::Hello(
                request_response::Event::Message {
                    peer,
                    message:
                        request_response::Message::Request {
                            request, channel, ..
                        },
                    ..
                },
            )) => self.handle_hello(peer, request, channel).await?,
            SwarmEvent::Behaviour(ChatBehaviourEvent::Sync(ev)) => self.handle_sync(ev).await?,
            SwarmEvent::Behaviour(ChatBehaviourEvent::Rendezvous(ev)) => {
                let line = match ev {
                    rendezvous::server::Event::PeerRegistered { peer, registration } => {
                        Some(Status::Registered {
                            peer: peer.to_base58(),
                            room: registration.namespace.to_string(),
                            ttl: registration.ttl,
                        })
                    }
                    rendezvous::server::Event::PeerUnregistered { peer, namespace } => {
                        // Its last word: no need to wait any longer before hanging up.
                        for h in self.hang_up.iter_mut().filter(|h| h.0 == peer) {
                            h.1 = Instant::now();
                        }
                        Some(Status::Unregistered {
                            peer: peer.to_base58(),
                            room: namespace.to_string(),
                        })
                    }
                    rendezvous::server::Event::RegistrationExpired(r) => {
                        Some(Status::RegistrationExpired {
                            peer: r.record.peer_id().to_base58(),
                            room: r.namespace.to_string(),
                        })
                    }
                    other => {
                        debug!(event = ?other, "rendezvous");
                        None
                    }
                };
                if let Some(status) = line {
                    info!(?status, "rendezvous");
                    self.emit(ChatEvent::Status(status)).await?;
                }
            }
            SwarmEvent::Behaviour(ChatBehaviourEvent::Relay(ev)) => {
                let line = match ev {
                    relay::Event::ReservationReqAccepted { src_peer_id, .. } => {
                        Some(Status::RelaySlot {
                            peer: src_peer_id.to_base58(),
                        })
                    }
                    relay::Event::CircuitReqAccepted {
                        src_peer_id,
                        dst_peer_id,
                    } => Some(Status::Relaying {
                        from: src_peer_id.to_base58(),
                        to: dst_peer_id.to_base58(),
                    }),
                    other => {
                        debug!(event = ?other, "relay");
                        None
                    }
                };
                if let Some(status) = line {
                    info!(?status, "relay");
                    self.emit(ChatEvent::Status(status)).await?;
                }
            }
            // The nodes' liveness rule: a frozen client is dropped as a node drops a peer.
            SwarmEvent::Behaviour(ChatBehaviourEvent::Ping(ev)) => {
                let _ = super::handle_ping(&mut self.swarm, &mut self.alive, ev, Instant::now());
            }
            other => debug!(event = ?other, "swarm event"),
        }
        Ok(())
    }

    async fn handle_hello(
        &mut self,
        peer: PeerId,
        hello: Hello,
        channel: request_response::ResponseChannel<Hello>,
    ) -> Result<(), NetError> {
        let now = Instant::now();
        // A peer's hellos cost us a bounded amount: over its budget, no answer.
        if !self.guard.may_answer_hello(peer, now) {
            debug!(%peer, "hello over the peer's budget; not answered");
            return Ok(());
        }
        let topic = hello.topic.clone();
        let new_room = !self.rooms.contains(&topic);
        let theirs = self.rooms_of.entry(peer).or_default();
        let allowed = theirs.contains(&topic) || theirs.len() < ROOMS_PER_PEER;
        let gossip = &mut self.swarm.behaviour_mut().gossipsub;
        let opened = if allowed {
            self.rooms.open(&topic, gossip)
        } else {
            debug!(%peer, %topic, "peer has its share of rooms; not served");
            None
        };
        let mut claim = None;
        let answer = match opened {
            Some(ledger) => {
                // The hello's claims move nothing here either; a wild one is held against it.
                if let Err(e) = ledger.merge_hello(peer, hello) {
                    claim = Some(e);
                }
                ledger.hello()
            }
            // Not a room we serve: an answer naming no room, so the client treats us as
            // another room's node.
            None => Hello {
                topic: String::new(),
                lamport: 0,
                participants: Vec::new(),
                archive: false,
            },
        };
        let served = !answer.topic.is_empty();
        if served {
            self.rooms_of.entry(peer).or_default().insert(topic.clone());
        }
        if let Some(e) = claim {
            self.charge(peer, &e, now).await?;
        }
        if self
            .swarm
            .behaviour_mut()
            .hello
            .send_response(channel, answer)
            .is_err()
        {
            debug!(%peer, "hello answer not sent");
        }
        if served {
            if new_room {
                self.emit(ChatEvent::Room {
                    topic: topic.clone(),
                })
                .await?;
            }
            // Learn what the client has that we lack (all of it, after a hub restart).
            self.request_page(peer, topic, 1);
        }
        Ok(())
    }

    fn request_page(&mut self, peer: PeerId, topic: String, page: u32) {
        let Some(ledger) = self.rooms.get(&topic) else {
            return;
        };
        let req = ledger.sync_request();
        let id = self.swarm.behaviour_mut().sync.send_request(&peer, req);
        self.syncing.asked(id, peer, topic, page);
    }

    async fn handle_sync(
        &mut self,
        event: request_response::Event<SyncRequest, SyncResponseOut>,
    ) -> Result<(), NetError> {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let rooms = &self.rooms;
                    let page = || rooms.answer(&request);
                    super::serve_history(&mut self.swarm, &mut self.guard, peer, channel, page);
                }
                request_response::Message::Response {
                    response,
                    request_id,
                } => {
                    let SyncResponseOut::Received((resp, rejected)) = response else {
                        return Ok(());
                    };
                    let now = Instant::now();
                    // Events that do not even decode: the server's fault, one offence per page.
                    if let Some(first) = rejected.first() {
                        let reason = Rejection::Malformed(first.to_string());
                        self.charge(peer, &reason, now).await?;
                    }
                    let Some((_, topic, pages)) = self.syncing.answered(request_id) else {
                        return Ok(());
                    };
                    // The participants' rules for a page of history, and their blame.
                    let page = match self.rooms.get_mut(&topic) {
                        Some(ledger) => ledger.take_page(peer, resp.events),
                        None => Page::default(),
                    };
                    let new = page.taken.len();
                    for event in page.taken {
                        self.emit(ChatEvent::Chat(event.view(true))).await?;
                    }
                    for (blamed, reason) in page.refused {
                        match blamed {
                            Some(p) => self.charge(p, &reason, now).await?,
                            None => debug!(%peer, %reason, "history event refused"),
                        }
                    }
                    if let Some(next) = next_page(pages, resp.more && new > 0) {
                        self.request_page(peer, topic, next);
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
                self.syncing.failed(request_id);
            }
            _ => {}
        }
        Ok(())
    }

    /// Charges `peer` with an offence, by the nodes' rules ([`super::charge`]); one too many
    /// cuts it off, and the log says so.
    async fn charge(
        &mut self,
        peer: PeerId,
        reason: &Rejection,
        now: Instant,
    ) -> Result<(), NetError> {
        if super::charge(&mut self.swarm, &mut self.guard, peer, reason, now) {
            self.rooms_of.remove(&peer);
            self.emit(ChatEvent::Status(Status::CutOff {
                peer: peer.to_base58(),
            }))
            .await?;
        }
        Ok(())
    }
}
