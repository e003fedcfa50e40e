//! The one task that owns the [`Swarm`] and the [`Room`] (docs/ARCHITECTURE.md, "Event loop").
//!
//! It `select!`s over shutdown, user commands, swarm events and its timers, turns each into calls
//! on the IO-less room, and carries out what the room asks: publish an event, show something.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use libp2p::core::transport::ListenerId;
use libp2p::futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, gossipsub, identify, mdns, rendezvous, request_response};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::bans::{Bans, OFFENCE_WINDOW, OFFENDERS_CAP, Offence};
use super::behaviour::{ChatBehaviour, ChatBehaviourEvent};
use super::dropped::DropWatch;
use super::hello::{MAX_SYNC_PAGES, SYNC_INTERVAL, SyncResponseOut};
use super::node::dialer::{Dial, Dialer};
use super::node::hub_client::{
    HubAction, HubClient, REGISTER_REFUSED_RETRY, REGISTER_RETRY, REGISTRATION_TTL,
};
use super::node::leaving::Leaving;
use super::node::outbox::{Full, OUTBOX_CAP, Outbox, Queued};
use super::swarm::{NetError, build_swarm};
use crate::core::command::UserCommand;
use crate::core::event::{Body, ChatEvent, LinkView, RoomName, SignedEvent, Username};
use crate::core::hello::Hello;
use crate::core::room::{Output, Room, RoomConfig};
use crate::core::status::{PublishFailure, Status};
use crate::core::sync::SyncRequest;
use crate::core::time::WallTime;
use crate::core::verdict::Verdict;
use crate::wire;

/// Waking this much later than planned means the node itself was stopped (SIGSTOP, a suspended
/// laptop) or starved of CPU: then the silence of its peers is its own doing (see
/// [`EventLoop::note_wake`]).
pub const STALL: Duration = Duration::from_secs(2);
/// How long discovery gets before a node that has met only newcomers joins: less than the join
/// grace, so that a simultaneous start of many nodes is over within a second.
pub const NEWCOMER_WAIT: Duration = Duration::from_millis(400);
/// Most registrations asked for at once.
pub const DISCOVER_LIMIT: u64 = 256;
/// How long publishing waits for a newly connected peer to say hello and subscribe, so that a
/// message sent the moment a peer connects still reaches it. Bounded: a silent peer delays
/// the outbox this long at most.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(1);

/// What the node needs to run.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Our identity.
    pub keypair: Keypair,
    /// Our username.
    pub user: Username,
    /// Our room.
    pub room: RoomName,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start and re-dial whenever the connection drops.
    pub connect: Vec<Multiaddr>,
    /// Whether mDNS discovery runs.
    pub mdns: bool,
    /// How many events the transcript keeps.
    pub history: usize,
    /// How long to wait for a first hello before joining alone.
    pub join_grace: Duration,
    /// Live events accepted per second per author (bursts of twice that).
    pub max_rate: u32,
}

/// What we know of a connected peer's room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HelloState {
    /// No hello yet.
    Pending,
    /// Its hello named our room.
    Room,
    /// Another room, or no hello protocol: not a peer of this chat.
    Other,
}

/// A connected peer.
#[derive(Debug)]
struct Link {
    since: Instant,
    hello: HelloState,
    /// Where the peer was reached (for a hub: where to ask for a relayed address).
    addr: Multiaddr,
}

/// The event loop's state.
pub struct EventLoop {
    swarm: Swarm<ChatBehaviour>,
    room: Room,
    topic: gossipsub::IdentTopic,
    commands: mpsc::Receiver<UserCommand>,
    commands_open: bool,
    events: mpsc::Sender<ChatEvent>,
    me: PeerId,
    user: Username,
    mdns: bool,
    listening: Vec<Multiaddr>,
    /// Listeners not yet closed; the node stops when the last one fails.
    /// Our own listeners (not relayed ones); the node stops when the last one fails.
    tcp_listeners: HashSet<ListenerId>,
    ready_pending: bool,
    started: bool,
    /// When the room started (the join wait began).
    started_at: Instant,
    /// Whom we keep connected to, and when we dial.
    dialer: Dialer,
    outbox: Outbox,
    links: HashMap<PeerId, Link>,
    /// Every open connection and when it last proved alive (established, or a ping answered).
    alive: super::liveness::Liveness,
    /// Authors found over their rate, and when the user was last told.
    limited: HashMap<PeerId, Instant>,
    /// Invalid messages per sending peer, and the peers cut off for them.
    bans: Bans,
    /// Peers we are catching up with (one sync exchange at a time per peer), with the number
    /// of pages asked for in this exchange.
    syncing: HashMap<PeerId, u32>,
    /// When to ask the next room peer, in turn, what we lack.
    next_sync_at: Instant,
    /// Round-robin position for anti-entropy.
    sync_turn: usize,
    /// The hubs of our room we are connected to.
    hubs: HubClient,
    /// Set once our leave is stamped.
    leaving: Option<Leaving>,
    /// An error that ends the node once the leave is out.
    fatal: Option<NetError>,
    /// Reports for the user made where nothing can be awaited, shown at the next turn.
    reports: Vec<ChatEvent>,
    /// When the loop planned to wake at the latest (to notice that it was stalled).
    planned_wake: Option<Instant>,
    /// After a stall, until when closed connections are not announced as lost participants.
    stall_recovery_until: Option<Instant>,
    /// Live events dropped over their author's rate, until sync has had its chance.
    drops: DropWatch,
}

/// Logged when gossipsub took an event but could not send it at once. With content-addressed
/// message ids, an event whose every send queue was full is in gossipsub's cache (announced
/// to peers by gossip, and offered by history sync); publishing it again is refused as a
/// duplicate. Either way it has left our hands.
const HANDED_OVER: &str = "event cached by gossipsub; gossip and sync carry it";

/// What became of one event handed to gossipsub.
enum Handed {
    /// On its way to at least one peer.
    Sent,
    /// In gossipsub's cache but sent to no one yet ([`HANDED_OVER`]): not to be published again.
    Cached,
    /// No subscribed peer: it waits in the outbox.
    NoPeers,
    /// Refused (too large, say): the user is told.
    Failed(gossipsub::PublishError),
}

/// The system's wall-clock time, for the events the room may sign now (the core never reads a
/// clock).
fn wall_now() -> WallTime {
    WallTime::from_system(SystemTime::now())
}

/// What the user is told of an event gossipsub refused.
fn publish_error(lamport: u64, e: &gossipsub::PublishError) -> ChatEvent {
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

impl EventLoop {
    /// Builds the swarm, starts listening and subscribes to the room's topic.
    pub fn new(
        config: NodeConfig,
        commands: mpsc::Receiver<UserCommand>,
        events: mpsc::Sender<ChatEvent>,
    ) -> Result<Self, NetError> {
        let mut swarm = build_swarm(&config.keypair, config.mdns, false)?;
        let me = *swarm.local_peer_id();
        let tcp_listeners = super::swarm::listen_all(&mut swarm, &config.listen)?;
        let room = Room::new(RoomConfig {
            keypair: config.keypair.clone(),
            user: config.user.clone(),
            room: config.room.clone(),
            history: config.history,
            join_grace: config.join_grace,
            first_seq: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2))
                .unwrap_or(0),
            max_rate: config.max_rate,
        });
        let topic = gossipsub::IdentTopic::new(room.topic());
        let (params, thresholds) = super::behaviour::score_params();
        let gossip = &mut swarm.behaviour_mut().gossipsub;
        gossip
            .with_peer_score(params, thresholds)
            .map_err(NetError::Subscribe)?;
        gossip
            .set_topic_params(topic.clone(), super::behaviour::topic_score_params())
            .map_err(|e| NetError::Subscribe(e.to_owned()))?;
        gossip
            .subscribe(&topic)
            .map_err(|e| NetError::Subscribe(format!("{}: {e}", room.topic())))?;
        Ok(Self {
            swarm,
            room,
            topic,
            commands,
            commands_open: true,
            events,
            me,
            user: config.user,
            mdns: config.mdns,
            listening: Vec::new(),
            tcp_listeners,
            ready_pending: false,
            started: false,
            started_at: Instant::now(),
            dialer: Dialer::new(&config.connect, Instant::now()),
            outbox: Outbox::new(me, config.max_rate),
            links: HashMap::new(),
            alive: super::liveness::Liveness::default(),
            limited: HashMap::new(),
            bans: Bans::default(),
            syncing: HashMap::new(),
            next_sync_at: Instant::now() + SYNC_INTERVAL,
            sync_turn: 0,
            hubs: HubClient::default(),
            leaving: None,
            fatal: None,
            reports: Vec::new(),
            planned_wake: None,
            stall_recovery_until: None,
            drops: DropWatch::default(),
        })
    }

    /// Runs until our leave has reached our peers (or [`LEAVE_LINGER`](super::node::leaving::LEAVE_LINGER) ran out). A finished
    /// `shutdown` future, or the command channel closing, means `/quit`.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), NetError> {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut shutdown_done = false;
        loop {
            if self.started {
                // Every turn, not only on its timer: once the moment has passed while other
                // events kept the loop busy, the timer is no longer asked for.
                self.maybe_end_wait(Instant::now());
            }
            self.drain_room().await?;
            for report in std::mem::take(&mut self.reports) {
                self.emit(report).await?;
            }
            if self.room.has_left() {
                self.progress_leave().await?;
                if self.leave_done() {
                    return self.fatal.take().map_or(Ok(()), Err);
                }
            }
            let deadline = self.next_deadline();
            self.planned_wake = deadline;
            let sleep = tokio::time::sleep_until(
                deadline
                    .map(tokio::time::Instant::from_std)
                    .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600)),
            );
            tokio::select! {
                biased;
                _ = &mut shutdown, if !shutdown_done => {
                    self.note_wake(Instant::now());
                    shutdown_done = true;
                    info!("shutdown requested");
                    self.quit();
                }
                cmd = self.commands.recv(), if self.commands_open && self.started => match cmd {
                    Some(cmd) => {
                        self.note_wake(Instant::now());
                        self.handle_command(cmd).await?
                    }
                    None => {
                        self.commands_open = false;
                        self.quit();
                    }
                },
                event = self.swarm.select_next_some() => {
                    self.note_wake(Instant::now());
                    self.handle_swarm_event(event).await?
                }
                _ = sleep => {
                    self.note_wake(Instant::now());
                    self.handle_timers(Instant::now()).await?
                }
                // Lowest priority: runs only once the swarm has nothing more to say, so the
                // ready event lists every listen address the first poll produced.
                _ = std::future::ready(()), if self.ready_pending => self.announce_ready().await?,
            }
        }
    }

    /// Called first on every wake. If it comes [`STALL`] later than planned, the node itself
    /// was stopped or starved: its peers may have closed their connections to it meanwhile,
    /// and their pings went unanswered by us. Their silence says nothing about them, so every
    /// connection gets a fresh liveness window, and connections found closed in the next one are
    /// not announced as lost participants (those who really vanished are announced by others).
    fn note_wake(&mut self, now: Instant) {
        if let Some(planned) = self.planned_wake.take()
            && now > planned + STALL
        {
            info!(late = ?now.duration_since(planned), "this node was stalled; peers' silence meanwhile is not held against them");
            self.alive.refresh_all(now);
            self.stall_recovery_until = Some(now + super::liveness::LIVENESS_TIMEOUT + STALL);
        }
    }

    /// Whether connections closing now may be our own stall's doing.
    fn recovering_from_stall(&self, now: Instant) -> bool {
        self.stall_recovery_until.is_some_and(|t| now < t)
    }

    /// Leaves, unless already gone (`/quit` followed by the end of input is one leave).
    fn quit(&mut self) {
        if !self.room.has_left() {
            self.room
                .handle_command(UserCommand::Quit, Instant::now(), wall_now());
            // Leave the hubs' directories too (an expired registration would go in a minute).
            if let Ok(ns) = rendezvous::Namespace::new(self.room.topic().to_owned()) {
                let hubs: Vec<PeerId> = self.hubs.hubs().copied().collect();
                if let Some(client) = self.swarm.behaviour_mut().rendezvous_client.as_mut() {
                    for hub in hubs {
                        client.unregister(ns.clone(), hub);
                    }
                }
            }
        }
    }

    /// A command from the ui. A line is refused before it is stamped when the outbox is full,
    /// so nothing is shown as said that cannot be sent.
    async fn handle_command(&mut self, cmd: UserCommand) -> Result<(), NetError> {
        if matches!(cmd, UserCommand::Say(_)) && self.outbox.refuses_lines() {
            return self
                .emit(ChatEvent::Status(Status::OutboxFull { cap: OUTBOX_CAP }))
                .await;
        }
        match cmd {
            // Leaving is more than the room's leave: the hubs are told too.
            UserCommand::Quit => self.quit(),
            UserCommand::Peers => {
                let mut links: Vec<LinkView> = self
                    .links
                    .iter()
                    .map(|(peer, link)| LinkView {
                        peer: peer.to_base58(),
                        user: self.room.name_of(peer).map(|u| u.as_str().to_owned()),
                        addr: link.addr.to_string(),
                        hub: self.hubs.is_hub(peer),
                    })
                    .collect();
                links.sort_by(|a, b| (!a.hub, &a.user, &a.peer).cmp(&(!b.hub, &b.user, &b.peer)));
                self.emit(ChatEvent::Links(links)).await?;
            }
            UserCommand::Addresses => {
                // Our own listeners, then relayed addresses on hubs.
                let mut addrs = self.listening.clone();
                addrs.extend(self.swarm.external_addresses().cloned());
                let listen = super::swarm::full_addresses(&addrs, self.me);
                self.emit(ChatEvent::Addresses {
                    peer: self.me.to_base58(),
                    listen,
                })
                .await?;
            }
            cmd => self.room.handle_command(cmd, Instant::now(), wall_now()),
        }
        Ok(())
    }

    async fn emit(&self, event: ChatEvent) -> Result<(), NetError> {
        self.events
            .send(event)
            .await
            .map_err(|_| NetError::OutputClosed)
    }

    async fn announce_ready(&mut self) -> Result<(), NetError> {
        self.ready_pending = false;
        let listen = super::swarm::full_addresses(&self.listening, self.me);
        info!(peer = %self.me, "ready");
        self.emit(ChatEvent::Ready {
            peer: self.me.to_base58(),
            user: self.user.as_str().to_owned(),
            topic: self.room.topic().to_owned(),
            listen,
        })
        .await?;
        if !self.started {
            self.started = true;
            let expect_peers = self.mdns || self.dialer.has_targets();
            self.room.start(Instant::now(), wall_now(), expect_peers);
            self.started_at = Instant::now();
        }
        Ok(())
    }

    /// Carries out everything the room asked for: what goes to peers first, so that the
    /// connection tasks, woken in that order, send before the ui renders our own line.
    async fn drain_room(&mut self) -> Result<(), NetError> {
        let mut outputs = Vec::new();
        while let Some(out) = self.room.poll_output() {
            outputs.push(out);
        }
        outputs.sort_by_key(|o| !matches!(o, Output::Publish(_)));
        for out in outputs {
            match out {
                Output::Show(ev) => {
                    if let ChatEvent::Chat(v) = &ev {
                        // The service log: every join, message and leave shown, with its stamp.
                        info!(
                            event = v.kind.as_str(),
                            lamport = v.lamport,
                            user = %v.user,
                            author = %v.peer,
                            text = v.text.as_deref().unwrap_or_default(),
                            "chat"
                        );
                    }
                    self.emit(ev).await?
                }
                Output::Publish(ev) => self.publish(&ev).await?,
            }
        }
        Ok(())
    }

    /// Gets our leave out: it waits in the outbox like any event while connected peers settle,
    /// then goes to whoever is subscribed; at the linger deadline, or with nobody connected at
    /// all, the outbox is pushed out as it is and what cannot go is reported.
    async fn progress_leave(&mut self) -> Result<(), NetError> {
        let now = Instant::now();
        let leaving = self.leaving.get_or_insert_with(|| Leaving::new(now));
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
    fn leave_done(&self) -> bool {
        self.leaving
            .as_ref()
            .is_some_and(|l| l.is_done(Instant::now(), |p| self.swarm.is_connected(p)))
    }

    fn subscribed_peers(&self) -> HashSet<PeerId> {
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
    fn hand_to_gossipsub(&mut self, bytes: Vec<u8>, lamport: u64) -> Handed {
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

    async fn publish(&mut self, signed: &SignedEvent) -> Result<(), NetError> {
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
    fn settled(&self, now: Instant) -> bool {
        self.unsettled_until(now).is_none()
    }

    /// When the last unsettled peer stops counting, if any is unsettled now.
    fn unsettled_until(&self, now: Instant) -> Option<Instant> {
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
    async fn flush_outbox(&mut self, force: bool) -> Result<(), NetError> {
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

    fn next_deadline(&self) -> Option<Instant> {
        // A leaving node dials nobody, so redials must not wake it.
        let redial = self
            .dialer
            .poll_timeout()
            .filter(|_| self.leaving.is_none());
        let settle = if self.outbox.is_empty() {
            None
        } else {
            self.unsettled_until(Instant::now())
        };
        [
            self.room.poll_timeout(),
            self.outbox.poll_timeout(),
            self.leaving.as_ref().map(Leaving::poll_timeout),
            settle,
            self.leaving.is_none().then_some(self.next_sync_at),
            self.drops.poll_timeout(),
            // Only while it is ahead: past it, hellos (not the clock) end the wait.
            Some(self.started_at + NEWCOMER_WAIT)
                .filter(|t| self.room.is_waiting() && *t > Instant::now()),
            self.alive.poll_timeout(),
            self.hubs.poll_timeout().filter(|_| self.leaving.is_none()),
        ]
        .into_iter()
        .flatten()
        .chain(redial)
        .min()
    }

    async fn handle_timers(&mut self, now: Instant) -> Result<(), NetError> {
        if self.started {
            self.room.handle_timeout(now, wall_now());
            self.maybe_end_wait(now);
        }
        if !self.outbox.is_empty() {
            self.flush_outbox(false).await?;
        }
        super::close_silent(&mut self.swarm, &mut self.alive, now);
        let transcript = self.room.transcript();
        let missing = self.drops.handle_timeout(now, |peer, seq, lamport| {
            transcript.knows(peer, seq, lamport)
        });
        for m in missing {
            self.emit(ChatEvent::Dropped {
                user: m.user,
                peer: m.peer.to_base58(),
                missing: m.missing,
                rate: self.room.max_rate(),
            })
            .await?;
        }
        if self.leaving.is_some() {
            return Ok(());
        }
        self.hub_timers(now);
        if now >= self.next_sync_at {
            self.next_sync_at = now + SYNC_INTERVAL;
            self.sync_next();
        }
        let bans = &self.bans;
        let swarm = &self.swarm;
        let dials = self
            .dialer
            .due(now, |p| swarm.is_connected(p), |p| bans.is_banned(p, now));
        self.start_dials(dials, now);
        Ok(())
    }

    /// Hands dials to the swarm and tells the dialer what became of them.
    fn start_dials(&mut self, dials: Vec<Dial>, now: Instant) {
        for dial in dials {
            match dial {
                Dial::Neighbour { peer, opts } => match self.swarm.dial(opts) {
                    Ok(()) => debug!(%peer, "dialling a neighbour"),
                    Err(e) => debug!(%peer, error = %e, "cannot dial a neighbour"),
                },
                Dial::Target { index, opts } => {
                    let id = opts.connection_id();
                    match self.swarm.dial(opts) {
                        Ok(()) => {
                            debug!(index, "dialling a --connect address");
                            self.dialer.dialing(index, id);
                        }
                        Err(e) => {
                            debug!(index, error = %e, "cannot dial a --connect address");
                            let swarm = &self.swarm;
                            let report =
                                self.dialer
                                    .dial_refused(index, &e, |p| swarm.is_connected(p), now);
                            self.reports.extend(report);
                        }
                    }
                }
            }
        }
    }

    /// Dials neighbour `peer` now (just discovered), unless connected or cut off.
    fn dial_neighbour(&mut self, peer: PeerId, now: Instant) {
        let connected = self.swarm.is_connected(&peer);
        let banned = self.bans.is_banned(&peer, now);
        let dial = self.dialer.dial_now(peer, now, connected, banned);
        self.start_dials(dial.into_iter().collect(), now);
    }

    /// Ends the join wait early when discovery has had [`NEWCOMER_WAIT`] and everyone reached
    /// has said hello: the room then knows whether anyone has a past to catch up with.
    fn maybe_end_wait(&mut self, now: Instant) {
        if !self.room.is_waiting() || now < self.started_at + NEWCOMER_WAIT || self.links.is_empty()
        {
            return;
        }
        if self.links.values().all(|l| l.hello != HelloState::Pending) {
            self.room.end_wait_among_newcomers(wall_now());
        }
    }

    async fn handle_swarm_event(
        &mut self,
        event: SwarmEvent<ChatBehaviourEvent>,
    ) -> Result<(), NetError> {
        match event {
            SwarmEvent::NewListenAddr {
                address,
                listener_id,
            } => {
                if self.hubs.relayed_address(listener_id, Instant::now()) {
                    // A relayed address on a hub: others who cannot reach us directly use it.
                    info!(%address, "relayed address");
                    self.swarm.add_external_address(address);
                    return Ok(());
                }
                info!(%address, "listening");
                self.listening.push(address);
                if !self.started {
                    self.ready_pending = true;
                }
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listening.retain(|a| a != &address);
            }
            SwarmEvent::ListenerClosed {
                reason,
                addresses,
                listener_id,
            } => {
                if !self.tcp_listeners.contains(&listener_id) {
                    // A relayed listener: its hub went away or refused; its addresses are no
                    // longer ours to announce. The hub's timer asks again if it is still there.
                    debug!(?addresses, ?reason, "relayed listener closed");
                    self.hubs.circuit_closed(listener_id, Instant::now());
                    for a in addresses {
                        self.swarm.remove_external_address(&a);
                    }
                    return Ok(());
                }
                warn!(?addresses, ?reason, "listener closed");
                self.tcp_listeners.remove(&listener_id);
                if self.tcp_listeners.is_empty() && self.fatal.is_none() {
                    let why = match reason {
                        Err(e) => e.to_string(),
                        Ok(()) => "the listener closed".to_owned(),
                    };
                    // Say goodbye over the connections we still have, then stop with the error.
                    self.fatal = Some(NetError::ListenersClosed(why));
                    self.quit();
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                info!(peer = %peer_id, addr = %endpoint.get_remote_address(), num_established, "connection established");
                let reports = self.dialer.connected(peer_id, connection_id);
                self.reports.extend(reports);
                if self.is_banned(&peer_id) {
                    debug!(peer = %peer_id, "refusing a cut-off peer");
                    self.swarm.close_connection(connection_id);
                    return Ok(());
                }
                self.alive.opened(connection_id, peer_id, Instant::now());
                self.room.peer_back(&peer_id);
                if num_established.get() == 1 {
                    self.links.insert(
                        peer_id,
                        Link {
                            since: Instant::now(),
                            hello: HelloState::Pending,
                            addr: endpoint.get_remote_address().clone(),
                        },
                    );
                    self.emit(ChatEvent::Peer {
                        peer: peer_id.to_base58(),
                        connected: true,
                        addr: endpoint.get_remote_address().to_string(),
                    })
                    .await?;
                }
                if num_established.get() == 1 && self.leaving.is_none() {
                    let hello = self.room.hello();
                    self.swarm
                        .behaviour_mut()
                        .hello
                        .send_request(&peer_id, hello);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                cause,
                endpoint,
                ..
            } => {
                self.alive.closed(connection_id);
                info!(peer = %peer_id, num_established, cause = ?cause, "connection closed");
                if num_established == 0 {
                    let now = Instant::now();
                    self.links.remove(&peer_id);
                    self.syncing.remove(&peer_id);
                    self.hubs.disconnected(&peer_id);
                    self.emit(ChatEvent::Peer {
                        peer: peer_id.to_base58(),
                        connected: false,
                        addr: endpoint.get_remote_address().to_string(),
                    })
                    .await?;
                    if self.recovering_from_stall(now) {
                        debug!(peer = %peer_id, "closed while we recover from a stall; not announced");
                    } else if self.leaving.is_none() {
                        // The room decides: a present participant gone without a leave is lost
                        // (a leaver we hung up on is no longer present).
                        self.room.peer_gone(peer_id, now, wall_now());
                    }
                    self.flush_outbox(false).await?;
                    self.dialer.disconnected(peer_id, now);
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                debug!(peer = ?peer_id, error = %error, "dial failed");
                let report = self.dialer.failed(connection_id, &error, Instant::now());
                self.reports.extend(report);
            }
            SwarmEvent::Behaviour(ChatBehaviourEvent::Gossipsub(ev)) => {
                self.handle_gossip(ev).await?
            }
            SwarmEvent::Behaviour(ChatBehaviourEvent::Mdns(ev)) => self.handle_mdns(ev),
            SwarmEvent::Behaviour(ChatBehaviourEvent::Sync(ev)) => {
                self.handle_sync(ev);
            }
            SwarmEvent::Behaviour(ChatBehaviourEvent::RendezvousClient(ev)) => {
                self.handle_rendezvous(ev);
            }
            SwarmEvent::Behaviour(ChatBehaviourEvent::Ping(ev)) => {
                super::handle_ping(&mut self.swarm, &mut self.alive, ev, Instant::now());
            }
            SwarmEvent::Behaviour(ChatBehaviourEvent::Hello(ev)) => {
                self.handle_hello(ev);
                if self.started {
                    self.maybe_end_wait(Instant::now());
                }
                self.flush_outbox(false).await?;
            }
            SwarmEvent::Behaviour(ChatBehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                debug!(peer = %peer_id, agent = %info.agent_version, "identified");
                self.dialer.met(peer_id, info.listen_addrs);
            }
            other => debug!(event = ?other, "swarm event"),
        }
        Ok(())
    }

    async fn handle_gossip(&mut self, event: gossipsub::Event) -> Result<(), NetError> {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let now = Instant::now();
                let decoded = wire::decode_event(&message.data);
                // A cut-off author is ignored whoever relays it.
                let cut_off = decoded
                    .as_ref()
                    .is_ok_and(|e| self.is_banned(&e.event.author));
                // The core's one admit pipeline: checks, known, rate, then taken and shown.
                let verdict = self.room.admit(decoded, cut_off, now, wall_now());
                if matches!(verdict, Verdict::Accept(_)) {
                    // Shown before it is forwarded: the ui task is woken before the connection
                    // tasks that forward it, and our user need not wait for those.
                    self.drain_room().await?;
                }
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(
                        &message_id,
                        &propagation_source,
                        super::gossip::acceptance(&verdict),
                    );
                let blamed = verdict.blame(propagation_source);
                match verdict {
                    Verdict::Accept(event) => {
                        let source = event.author;
                        let lamport = event.lamport;
                        info!(author = %source, via = %propagation_source, lamport, new = true, "received");
                        // A leave that actually ends the author's presence: an old one from an
                        // earlier run, replayed, does not (its join is later in total order).
                        let gone =
                            matches!(event.body, Body::Leave) && !self.room.is_present(&source);
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
                        self.drops.record(&event, now);
                        let source = event.author;
                        // Told at most once a minute per author.
                        let told = self
                            .limited
                            .get(&source)
                            .is_some_and(|t| now.duration_since(*t) < OFFENCE_WINDOW);
                        if self.limited.len() >= OFFENDERS_CAP {
                            self.limited
                                .retain(|_, t| now.duration_since(*t) < OFFENCE_WINDOW);
                        }
                        if !told && self.limited.len() < OFFENDERS_CAP {
                            self.limited.insert(source, now);
                            info!(author = %source, "over the rate limit; live copies dropped, sync may bring them");
                        } else {
                            debug!(author = %source, "rate-limited message dropped");
                        }
                    }
                    Verdict::Known(_) => debug!(via = %propagation_source, "known event dropped"),
                    Verdict::Unfit { reason, .. } | Verdict::Reject { reason, .. } => {
                        match blamed {
                            Some(peer) => self.offence(peer, &reason.to_string(), now).await?,
                            None => {
                                debug!(via = %propagation_source, %reason, "dropped a message unfit for us")
                            }
                        }
                    }
                }
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                debug!(peer = %peer_id, %topic, "subscribed");
                if topic == self.topic.hash() {
                    self.flush_outbox(false).await?;
                }
            }
            other => debug!(event = ?other, "gossipsub event"),
        }
        Ok(())
    }

    /// `peer` sent an invalid message: logged at warn the first time, then quietly; enough of
    /// them cut the peer off (see [`Bans`]).
    async fn offence(&mut self, peer: PeerId, reason: &str, now: Instant) -> Result<(), NetError> {
        // gossipsub's own score may already ignore it (below the graylist threshold): then the
        // next invalid messages would never reach us to be counted.
        let graylisted = self
            .swarm
            .behaviour()
            .gossipsub
            .peer_score(&peer)
            .is_some_and(|s| s <= gossipsub::PeerScoreThresholds::default().graylist_threshold);
        match self.bans.offence(peer, now, graylisted) {
            Offence::First => warn!(%peer, %reason, "rejected message"),
            Offence::Again(count) => debug!(%peer, %reason, count, "rejected message"),
            Offence::Banned => debug!(%peer, %reason, "rejected message from a cut-off peer"),
            Offence::CutOff(count) => {
                // The user is told by the notice below.
                info!(%peer, count, %reason, "cutting off a peer that keeps sending invalid messages");
                self.dialer.gone(&peer);
                let _ = self.swarm.disconnect_peer_id(peer);
                self.emit(ChatEvent::Status(Status::CutOff {
                    peer: peer.to_base58(),
                }))
                .await?;
            }
        }
        Ok(())
    }

    /// Whether `peer` is cut off now.
    fn is_banned(&self, peer: &PeerId) -> bool {
        self.bans.is_banned(peer, Instant::now())
    }

    fn handle_mdns(&mut self, event: mdns::Event) {
        match event {
            mdns::Event::Discovered(found) => {
                let now = Instant::now();
                let mut fresh = Vec::new();
                for (peer, addr) in found {
                    self.swarm.add_peer_address(peer, addr.clone());
                    if !self.dialer.found_by_mdns(peer, addr) {
                        debug!(%peer, "too many neighbours; not remembered");
                        continue;
                    }
                    if !fresh.contains(&peer) {
                        fresh.push(peer);
                    }
                }
                if self.leaving.is_some() {
                    return;
                }
                for peer in fresh {
                    self.dial_neighbour(peer, now);
                }
            }
            // Expiry only means no record was refreshed: it is not a sign that the peer is gone
            // from the chat, but there is no address left to dial it at.
            mdns::Event::Expired(gone) => {
                for (peer, addr) in gone {
                    self.dialer.expired_in_mdns(&peer, &addr);
                }
            }
        }
    }

    fn merge_hello(&mut self, peer: PeerId, hello: Hello) {
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

    /// A hub of our room: reserve a relayed address on it, so that clients that cannot reach us
    /// directly can through it, and register there (see `hub_timers`).
    fn found_hub(&mut self, hub: PeerId) {
        if self.leaving.is_some() {
            return;
        }
        let Some(addr) = self.links.get(&hub).map(|l| l.addr.clone()) else {
            return;
        };
        let Some(circuit_addr) = self.hubs.found(hub, &addr, Instant::now()) else {
            return;
        };
        let circuit = match self.swarm.listen_on(circuit_addr.clone()) {
            Ok(id) => Some(id),
            Err(e) => {
                warn!(%hub, error = %e, "cannot ask the hub for a relayed address");
                None
            }
        };
        self.hubs.reserving(&hub, circuit);
        // Our own addresses, for peers that can reach us directly (registration needs at least
        // one confirmed external address).
        for a in self.listening.clone() {
            if !super::swarm::is_loopback(&a) {
                self.swarm.add_external_address(a);
            }
        }
        info!(%hub, %circuit_addr, "found a hub");
    }

    /// Registers with each hub (again before the registration expires), asks it who else is
    /// in the room, and asks again for a relayed address that was lost.
    fn hub_timers(&mut self, now: Instant) {
        let Ok(ns) = rendezvous::Namespace::new(self.room.topic().to_owned()) else {
            return;
        };
        for action in self.hubs.due(now) {
            match action {
                HubAction::Register(hub) => {
                    let Some(client) = self.swarm.behaviour_mut().rendezvous_client.as_mut() else {
                        return;
                    };
                    if let Err(e) = client.register(ns.clone(), hub, Some(REGISTRATION_TTL)) {
                        // No external address yet: the relayed one is on its way.
                        debug!(%hub, error = %e, "not registered yet");
                        self.hubs.register_failed(&hub, now, REGISTER_RETRY);
                    }
                }
                HubAction::Discover(hub) => {
                    let Some(client) = self.swarm.behaviour_mut().rendezvous_client.as_mut() else {
                        return;
                    };
                    client.discover(Some(ns.clone()), None, Some(DISCOVER_LIMIT), hub);
                }
                HubAction::Reserve(hub, addr) => match self.swarm.listen_on(addr) {
                    Ok(id) => self.hubs.reserving(&hub, Some(id)),
                    Err(e) => debug!(%hub, error = %e, "cannot ask the hub for a relayed address"),
                },
            }
        }
    }

    fn handle_rendezvous(&mut self, event: rendezvous::client::Event) {
        match event {
            rendezvous::client::Event::Discovered { registrations, .. } => {
                let now = Instant::now();
                for r in registrations {
                    let peer = r.record.peer_id();
                    if peer == self.me || r.namespace.to_string() != self.room.topic() {
                        continue;
                    }
                    if self.room.has_departed(&peer) {
                        // Its registration outlives it for up to a TTL.
                        continue;
                    }
                    let fresh = self
                        .dialer
                        .discovered_via_hub(peer, r.record.addresses(), now);
                    if fresh && !self.swarm.is_connected(&peer) {
                        debug!(%peer, "discovered through a hub; dialling");
                        self.dial_neighbour(peer, now);
                    }
                }
            }
            rendezvous::client::Event::Registered {
                rendezvous_node,
                ttl,
                ..
            } => {
                info!(hub = %rendezvous_node, ttl, "registered with the hub");
            }
            rendezvous::client::Event::RegisterFailed {
                rendezvous_node,
                error,
                ..
            } => {
                warn!(hub = %rendezvous_node, ?error, "registration refused");
                self.hubs
                    .register_failed(&rendezvous_node, Instant::now(), REGISTER_REFUSED_RETRY);
            }
            other => debug!(event = ?other, "rendezvous"),
        }
    }

    /// Asks `peer` for what we lack, unless an exchange with it is under way.
    fn start_sync(&mut self, peer: PeerId) {
        if self.leaving.is_some() || self.syncing.contains_key(&peer) {
            return;
        }
        self.request_page(peer, 1);
    }

    /// Asks `peer` for page `page` of an exchange.
    fn request_page(&mut self, peer: PeerId, page: u32) {
        self.syncing.insert(peer, page);
        let req = self.room.sync_request();
        debug!(%peer, authors = req.have.len(), "asking for history");
        self.swarm.behaviour_mut().sync.send_request(&peer, req);
    }

    fn handle_sync(&mut self, event: request_response::Event<SyncRequest, SyncResponseOut>) {
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
                    debug!(%peer, events = resp.events.len(), more = resp.more, "serving history");
                    let out = SyncResponseOut::Send(resp);
                    if self
                        .swarm
                        .behaviour_mut()
                        .sync
                        .send_response(channel, out)
                        .is_err()
                    {
                        debug!(%peer, "history not sent: stream closed");
                    }
                }
                request_response::Message::Response { response, .. } => {
                    let SyncResponseOut::Received((resp, rejected)) = response else {
                        return;
                    };
                    for e in rejected {
                        warn!(%peer, error = %e, "history event rejected");
                    }
                    debug!(%peer, events = resp.events.len(), more = resp.more, "history received");
                    let pages = self.syncing.remove(&peer).unwrap_or(0);
                    if self.room.handle_sync_response(peer, resp, wall_now())
                        && self.leaving.is_none()
                    {
                        if pages < MAX_SYNC_PAGES {
                            self.request_page(peer, pages + 1);
                        } else {
                            // The next anti-entropy round goes on from where this one stopped.
                            debug!(%peer, pages, "history exchange paused");
                        }
                    }
                }
            },
            request_response::Event::OutboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "history request failed");
                self.syncing.remove(&peer);
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "history request from a peer failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// Anti-entropy: the next room peer, in turn, is asked what we lack.
    fn sync_next(&mut self) {
        let mut peers: Vec<PeerId> = self
            .links
            .iter()
            .filter(|(_, l)| l.hello == HelloState::Room)
            .map(|(p, _)| *p)
            .collect();
        if peers.is_empty() {
            return;
        }
        peers.sort();
        self.sync_turn = self.sync_turn.wrapping_add(1);
        let peer = peers[self.sync_turn % peers.len()];
        self.start_sync(peer);
    }

    fn handle_hello(&mut self, event: request_response::Event<Hello, Hello>) {
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
