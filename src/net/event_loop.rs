//! The one task that owns the [`Swarm`] and the [`Room`] (docs/ARCHITECTURE.md, "Event loop").
//!
//! It `select!`s over shutdown, user commands, swarm events and its timers, turns each into calls
//! on the IO-less room, and carries out what the room asks: publish an event, show something.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use libp2p::core::transport::ListenerId;
use libp2p::core::{Transport, upgrade};
use libp2p::futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, DialError, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, Swarm, gossipsub, identify, mdns, noise, rendezvous, request_response, tcp,
    yamux,
};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::behaviour::{BehaviourError, ChatBehaviour, ChatBehaviourEvent};
use super::dropped::DropWatch;
use super::hello::SyncResponseOut;
use crate::core::command::UserCommand;
use crate::core::event::{Body, ChatEvent, DialOutcome, LinkView, RoomName, SignedEvent, Username};
use crate::core::hello::Hello;
use crate::core::room::{Output, PENDING_COMMANDS_CAP, Room, RoomConfig};
use crate::core::sync::SyncRequest;
use crate::core::time::WallTime;
use crate::core::verdict::Verdict;
use crate::wire;

/// Most events waiting for a peer to subscribe before lines are refused.
pub const OUTBOX_CAP: usize = 1024;
/// How long a leaving node keeps the swarm running for its leave to reach its peers.
pub const LEAVE_LINGER: Duration = Duration::from_millis(1500);
/// First wait before re-dialling a `--connect` address.
pub const REDIAL_MIN: Duration = Duration::from_millis(250);
/// Longest wait between re-dials of a `--connect` address.
pub const REDIAL_MAX: Duration = Duration::from_secs(10);
/// Most peers found by mDNS that are remembered for re-dialling.
pub const MDNS_PEERS_CAP: usize = 1024;
/// Most addresses remembered per peer found by mDNS.
pub const MDNS_ADDRS_CAP: usize = 8;
/// How often a non-empty outbox is retried even without a subscription event.
pub const OUTBOX_RETRY: Duration = Duration::from_millis(500);
/// A connection with no successful ping for this long is closed as dead (a frozen process, a cut
/// cable): with pings every second, a silent peer is noticed within about 5 s.
pub const LIVENESS_TIMEOUT: Duration = Duration::from_secs(5);
/// How long discovery gets before a node that has met only newcomers joins: less than the join
/// grace, so that a simultaneous start of many nodes is over within a second.
pub const NEWCOMER_WAIT: Duration = Duration::from_millis(400);
/// How long a dial, with its Noise and Yamux upgrades, may take.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// First wait before dialling a peer found by mDNS or met before again.
pub const NEIGHBOUR_REDIAL_MIN: Duration = Duration::from_millis(500);
/// Longest wait between re-dials of a peer found by mDNS or met before: short, so that a repaired
/// network is whole again within about a second.
pub const NEIGHBOUR_REDIAL_MAX: Duration = Duration::from_secs(1);
/// How long a peer met through a connection (not mDNS) is re-dialled after it dropped.
pub const NEIGHBOUR_FORGET: Duration = Duration::from_secs(300);
/// How often a node asks one of its room peers, in turn, what it lacks (anti-entropy: repairs
/// whatever gossip lost).
pub const SYNC_INTERVAL: Duration = Duration::from_secs(3);
/// How long a registration with a hub lasts; it is renewed every [`REGISTER_EVERY`].
pub const REGISTRATION_TTL: u64 = 120;
/// How often registrations with hubs are renewed.
pub const REGISTER_EVERY: Duration = Duration::from_secs(60);
/// How often a hub is asked who else is in the room.
pub const DISCOVER_EVERY: Duration = Duration::from_secs(5);
/// The first such question, shortly after the hub was found (after our own registration).
pub const HUB_DISCOVER_FIRST: Duration = Duration::from_millis(500);
/// Longest wait between dials of a peer discovered through a hub but not reached yet.
pub const DISCOVERED_REDIAL_MAX: Duration = Duration::from_secs(10);
/// How long after losing its relayed address a client asks the hub again.
pub const RESERVE_RETRY: Duration = Duration::from_secs(5);
/// Most registrations asked for at once.
pub const DISCOVER_LIMIT: u64 = 256;
/// Invalid messages from one peer, within [`OFFENCE_WINDOW`], that get it cut off.
pub const BAN_AFTER: u32 = 5;
/// The window in which offences add up.
pub const OFFENCE_WINDOW: Duration = Duration::from_secs(60);
/// How long a cut-off peer stays cut off.
pub const BAN_FOR: Duration = Duration::from_secs(600);
/// Most peers tracked for offences, bans and rate episodes.
pub const OFFENDERS_CAP: usize = 1024;
/// Most pages asked for in one exchange (a peer cannot keep us asking for ever).
pub const MAX_SYNC_PAGES: u32 = 64;
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

/// Why the node stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The behaviours could not be built.
    #[error(transparent)]
    Behaviour(#[from] BehaviourError),
    /// The transport could not be built.
    #[error("transport: {0}")]
    Transport(String),
    /// A listen address was refused.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
    /// The room's topic could not be subscribed.
    #[error("cannot subscribe to {0}")]
    Subscribe(String),
    /// Every listener failed after it started (the address went away, for instance).
    #[error("no address left to listen on: {0}")]
    ListenersClosed(String),
    /// The ui stopped listening for events.
    #[error("the output channel closed")]
    OutputClosed,
}

/// A `--connect` address and the state of our link to it.
#[derive(Debug)]
struct Target {
    addr: Multiaddr,
    /// The peer id the address names (`/p2p/ID`); the dial must reach that peer.
    named: Option<PeerId>,
    /// The peer last reached at this address. Without `/p2p/ID` it may change: a restarted
    /// peer with a new key at the same address is still the one to keep connected to.
    peer: Option<PeerId>,
    dialing: Option<ConnectionId>,
    connected: bool,
    backoff: Duration,
    retry_at: Option<Instant>,
    /// A failure was reported to the user since the last success: say nothing more until it
    /// works, and then say so.
    told: bool,
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

/// A hub we are connected to (its hello said it keeps the room's history): we reserve a relayed
/// address on it, register in our room there, and discover the room's other clients through it.
#[derive(Debug)]
struct HubLink {
    /// The relayed listener (`<hub>/p2p-circuit`), while it lives.
    circuit: Option<ListenerId>,
    /// The address we reached the hub at, to ask for a relayed address again.
    circuit_addr: Multiaddr,
    /// When to ask again if the relayed listener is gone.
    next_reserve: Instant,
    next_register: Instant,
    next_discover: Instant,
}

/// A peer found by mDNS, kept connected while its record lives.
#[derive(Debug)]
struct Neighbour {
    addrs: Vec<Multiaddr>,
    retry_at: Option<Instant>,
    backoff: Duration,
    /// It said goodbye: do not dial it again (if it comes back, it dials us).
    left: bool,
    /// Found by mDNS: kept while its record lives. Otherwise learned by identify or a hub's
    /// rendezvous, and forgotten when `forget_at` passes.
    mdns: bool,
    forget_at: Option<Instant>,
    /// The longest wait between dials: short for peers we have met, longer for peers only
    /// discovered through a hub (every dial through a relay costs the hub).
    max_backoff: Duration,
}

impl Neighbour {
    fn new(mdns: bool) -> Self {
        Self {
            addrs: Vec::new(),
            retry_at: None,
            backoff: NEIGHBOUR_REDIAL_MIN,
            left: false,
            mdns,
            forget_at: None,
            max_backoff: NEIGHBOUR_REDIAL_MAX,
        }
    }

    fn add_addr(&mut self, addr: Multiaddr) {
        if !self.addrs.contains(&addr) && self.addrs.len() < MDNS_ADDRS_CAP {
            self.addrs.push(addr);
        }
    }
}

/// Where our departure stands.
#[derive(Debug)]
struct Leaving {
    /// When we give up and exit anyway.
    deadline: Instant,
    /// Once the leave is out: the peers that had it sent to them and must still hang up.
    waiting: Option<HashSet<PeerId>>,
}

/// An event waiting for a subscribed peer.
#[derive(Debug)]
struct Queued {
    bytes: Vec<u8>,
    lamport: u64,
    is_message: bool,
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
    targets: Vec<Target>,
    outbox: VecDeque<Queued>,
    outbox_retry_at: Option<Instant>,
    links: HashMap<PeerId, Link>,
    /// Whether the user was told that messages are queued (and so should hear when they go).
    told_queued: bool,
    /// Every open connection and when it last proved alive (established, or a ping answered).
    alive: HashMap<ConnectionId, (PeerId, Instant)>,
    /// Authors found over their rate, and when the user was last told.
    limited: HashMap<PeerId, Instant>,
    /// Invalid messages per sending peer: how many, since when.
    offences: HashMap<PeerId, (u32, Instant)>,
    /// Peers cut off for sending invalid messages, until when.
    banned: HashMap<PeerId, Instant>,
    /// Peers we are catching up with (one sync exchange at a time per peer), with the number
    /// of pages asked for in this exchange.
    syncing: HashMap<PeerId, u32>,
    /// When to ask the next room peer, in turn, what we lack.
    next_sync_at: Instant,
    /// Round-robin position for anti-entropy.
    sync_turn: usize,
    neighbours: HashMap<PeerId, Neighbour>,
    hubs: HashMap<PeerId, HubLink>,
    /// Set once our leave is stamped.
    leaving: Option<Leaving>,
    /// An error that ends the node once the leave is out.
    fatal: Option<NetError>,
    /// Reports for the user made where nothing can be awaited, shown at the next turn.
    reports: Vec<ChatEvent>,
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

/// The user's words for an event gossipsub refused.
/// The system's wall-clock time, for the events the room may sign now (the core never reads a
/// clock).
fn wall_now() -> WallTime {
    WallTime::from_system(SystemTime::now())
}

fn publish_error(lamport: u64, e: &gossipsub::PublishError) -> ChatEvent {
    ChatEvent::Error(format!(
        "could not send the event stamped {lamport}: {}",
        describe_publish_error(e)
    ))
}

/// Words for the user instead of libp2p's error names.
fn describe_publish_error(e: &gossipsub::PublishError) -> &'static str {
    match e {
        gossipsub::PublishError::Duplicate => "it was already sent",
        gossipsub::PublishError::SigningError(_) => "it could not be signed",
        gossipsub::PublishError::MessageTooLarge => "it is too large for the network",
        gossipsub::PublishError::TransformFailed(_) => "it could not be encoded",
        gossipsub::PublishError::NoPeersSubscribedToTopic => "no one else is in the room",
        gossipsub::PublishError::AllQueuesFull(_) => "every peer's send queue is full",
    }
}

/// The swarm of a node or a hub: TCP + Noise + Yamux and [`ChatBehaviour`].
pub(crate) fn build_swarm(
    keypair: &Keypair,
    mdns: bool,
    hub: bool,
) -> Result<Swarm<ChatBehaviour>, NetError> {
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair.clone())
        .with_tokio()
        // TCP + Noise + Yamux as `with_tcp` builds it, plus a time limit on dialling and
        // upgrading: a dial into a cut network would otherwise hang for TCP's two minutes.
        .with_other_transport(|key| {
            let noise = noise::Config::new(key)?;
            let tcp = || tcp::tokio::Transport::new(tcp::Config::default().nodelay(true));
            // Host names (`/dns4/...`, `--connect host:port`) resolve as the system does. Without
            // a readable system configuration, only the hosts file answers.
            let tcp = libp2p::dns::tokio::Transport::system(tcp()).unwrap_or_else(|e| {
                warn!(error = %e, "no DNS configuration; only the hosts file resolves names");
                libp2p::dns::tokio::Transport::custom(
                    tcp(),
                    libp2p::dns::ResolverConfig::from_name_servers(Vec::new()),
                    libp2p::dns::ResolverOpts::default(),
                )
            });
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                tcp.upgrade(upgrade::Version::V1Lazy)
                    .authenticate(noise)
                    .multiplex(yamux::Config::default())
                    .timeout(DIAL_TIMEOUT),
            )
        })
        .map_err(|e| NetError::Transport(e.to_string()))?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| NetError::Transport(e.to_string()))?
        .with_behaviour(|key, relay_client| {
            ChatBehaviour::new(key, mdns, hub, relay_client)
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        })
        .map_err(|e| NetError::Transport(e.to_string()))?
        // A chat may be silent for hours: never close a connection for being idle.
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::MAX))
        .build();
    Ok(swarm)
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
        let tcp_listeners = super::listen_all(&mut swarm, &config.listen)?;
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
        let targets = config
            .connect
            .iter()
            .map(|addr| Target {
                named: match addr.iter().last() {
                    Some(Protocol::P2p(p)) => Some(p),
                    _ => None,
                },
                peer: None,
                addr: addr.clone(),
                dialing: None,
                connected: false,
                backoff: REDIAL_MIN,
                retry_at: Some(Instant::now()),
                told: false,
            })
            .collect();
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
            targets,
            outbox: VecDeque::new(),
            outbox_retry_at: None,
            links: HashMap::new(),
            told_queued: false,
            alive: HashMap::new(),
            limited: HashMap::new(),
            offences: HashMap::new(),
            banned: HashMap::new(),
            syncing: HashMap::new(),
            next_sync_at: Instant::now() + SYNC_INTERVAL,
            sync_turn: 0,
            neighbours: HashMap::new(),
            hubs: HashMap::new(),
            leaving: None,
            fatal: None,
            reports: Vec::new(),
            drops: DropWatch::default(),
        })
    }

    /// Runs until our leave has reached our peers (or [`LEAVE_LINGER`] ran out). A finished
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
            let sleep = tokio::time::sleep_until(
                deadline
                    .map(tokio::time::Instant::from_std)
                    .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600)),
            );
            tokio::select! {
                biased;
                _ = &mut shutdown, if !shutdown_done => {
                    shutdown_done = true;
                    info!("shutdown requested");
                    self.quit();
                }
                cmd = self.commands.recv(), if self.commands_open && self.started => match cmd {
                    Some(cmd) => self.handle_command(cmd).await?,
                    None => {
                        self.commands_open = false;
                        self.quit();
                    }
                },
                event = self.swarm.select_next_some() => self.handle_swarm_event(event).await?,
                _ = sleep => self.handle_timers(Instant::now()).await?,
                // Lowest priority: runs only once the swarm has nothing more to say, so the
                // ready event lists every listen address the first poll produced.
                _ = std::future::ready(()), if self.ready_pending => self.announce_ready().await?,
            }
        }
    }

    /// Leaves, unless already gone (`/quit` followed by the end of input is one leave).
    fn quit(&mut self) {
        if !self.room.has_left() {
            self.room
                .handle_command(UserCommand::Quit, Instant::now(), wall_now());
            // Leave the hubs' directories too (an expired registration would go in a minute).
            if let Ok(ns) = rendezvous::Namespace::new(self.room.topic().to_owned()) {
                let hubs: Vec<PeerId> = self.hubs.keys().copied().collect();
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
        if matches!(cmd, UserCommand::Say(_)) && self.outbox.len() >= OUTBOX_CAP {
            return self
                .emit(ChatEvent::Error(format!(
                    "not sent: {OUTBOX_CAP} messages are already waiting for someone to join"
                )))
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
                        hub: self.hubs.contains_key(peer),
                    })
                    .collect();
                links.sort_by(|a, b| (!a.hub, &a.user, &a.peer).cmp(&(!b.hub, &b.user, &b.peer)));
                self.emit(ChatEvent::Links(links)).await?;
            }
            UserCommand::Addresses => {
                // Our own listeners, then relayed addresses on hubs.
                let mut addrs = self.listening.clone();
                addrs.extend(self.swarm.external_addresses().cloned());
                let listen = super::full_addresses(&addrs, self.me);
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
        let listen = super::full_addresses(&self.listening, self.me);
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
            let expect_peers = self.mdns || !self.targets.is_empty();
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
        let leaving = self.leaving.get_or_insert(Leaving {
            deadline: now + LEAVE_LINGER,
            waiting: None,
        });
        if leaving.waiting.is_some() {
            return Ok(());
        }
        let deadline = leaving.deadline;
        let nobody = self.links.values().all(|l| l.hello == HelloState::Other);
        let force = now >= deadline || nobody;
        self.flush_outbox(force).await?;
        if self.outbox.is_empty() {
            let peers = self.subscribed_peers();
            debug!(
                waiting = peers.len(),
                "leave sent; waiting for peers to hang up"
            );
            if let Some(l) = &mut self.leaving {
                l.waiting = Some(peers);
            }
        } else if force {
            let unsent = self.outbox.iter().filter(|q| q.is_message).count();
            if unsent > 0 {
                self.emit(ChatEvent::Error(format!(
                    "{unsent} queued message(s) were never delivered: no one else was in the room"
                )))
                .await?;
            }
            self.outbox.clear();
            if let Some(l) = &mut self.leaving {
                l.waiting = Some(HashSet::new());
            }
        }
        Ok(())
    }

    /// Whether we are leaving and either every peer that got our leave has hung up, or the linger
    /// ran out.
    fn leave_done(&self) -> bool {
        match &self.leaving {
            Some(l) => {
                Instant::now() >= l.deadline
                    || l.waiting
                        .as_ref()
                        .is_some_and(|w| w.iter().all(|p| !self.swarm.is_connected(p)))
            }
            None => false,
        }
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
        if self.outbox.is_empty() && self.settled(Instant::now()) {
            match self.hand_to_gossipsub(bytes.clone(), event.lamport) {
                Handed::Sent | Handed::Cached => return Ok(()),
                Handed::NoPeers => {}
                Handed::Failed(e) => return self.emit(publish_error(event.lamport, &e)).await,
            }
        }
        // Lines are refused before they are stamped once OUTBOX_CAP is reached (handle_command);
        // only a join, a leave and lines typed before the join can come on top.
        if self.outbox.len() >= OUTBOX_CAP + PENDING_COMMANDS_CAP + 2 {
            info!(lamport = event.lamport, "outbox full; event dropped");
            return self
                .emit(ChatEvent::Error(format!(
                    "the event stamped {} was not sent: too many events are waiting",
                    event.lamport
                )))
                .await;
        }
        info!(
            lamport = event.lamport,
            kind = ?event.body,
            queued = self.outbox.len() + 1,
            "queued until peers subscribe"
        );
        self.outbox.push_back(Queued {
            bytes,
            lamport: event.lamport,
            is_message,
        });
        self.outbox_retry_at = Some(Instant::now() + OUTBOX_RETRY);
        if is_message && !self.told_queued && self.subscribed_peers().is_empty() {
            // Once per wait, not once per line.
            self.told_queued = true;
            self.emit(ChatEvent::Notice(format!(
                "no one else is in the room yet: your messages (from [{}]) are queued and go out when someone joins",
                event.lamport
            )))
            .await?;
        }
        Ok(())
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
        if !force && !self.settled(Instant::now()) {
            // The settle deadline wakes us; this keeps the retry time in the future.
            self.outbox_retry_at = Some(Instant::now() + OUTBOX_RETRY);
            return Ok(());
        }
        let mut sent_messages = 0;
        while let Some(front) = self.outbox.front() {
            let (bytes, lamport, is_message) =
                (front.bytes.clone(), front.lamport, front.is_message);
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
        self.outbox_retry_at = (!self.outbox.is_empty()).then(|| Instant::now() + OUTBOX_RETRY);
        if sent_messages > 0 && self.told_queued {
            self.told_queued = false;
            self.emit(ChatEvent::Notice(format!(
                "{sent_messages} queued message(s) sent"
            )))
            .await?;
        }
        Ok(())
    }

    fn next_deadline(&self) -> Option<Instant> {
        // A leaving node dials nobody, so redials must not wake it.
        let redial = self
            .targets
            .iter()
            .filter_map(|t| t.retry_at)
            .chain(self.neighbours.values().filter_map(|n| n.retry_at))
            .filter(|_| self.leaving.is_none());
        let settle = if self.outbox.is_empty() {
            None
        } else {
            self.unsettled_until(Instant::now())
        };
        [
            self.room.poll_timeout(),
            self.outbox_retry_at,
            self.leaving.as_ref().map(|l| l.deadline),
            settle,
            self.leaving.is_none().then_some(self.next_sync_at),
            self.drops.poll_timeout(),
            // Only while it is ahead: past it, hellos (not the clock) end the wait.
            Some(self.started_at + NEWCOMER_WAIT)
                .filter(|t| self.room.is_waiting() && *t > Instant::now()),
            self.alive
                .values()
                .map(|(_, t)| *t + LIVENESS_TIMEOUT)
                .min(),
            self.hubs
                .values()
                .map(|h| {
                    let reserve = if h.circuit.is_none() {
                        h.next_reserve
                    } else {
                        h.next_discover
                    };
                    h.next_register.min(h.next_discover).min(reserve)
                })
                .min()
                .filter(|_| self.leaving.is_none()),
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
        for i in 0..self.targets.len() {
            if self.targets[i].retry_at.is_some_and(|t| t <= now) {
                self.targets[i].retry_at = None;
                self.dial_target(i, now);
            }
        }
        if now >= self.next_sync_at {
            self.next_sync_at = now + SYNC_INTERVAL;
            self.sync_next();
        }
        self.neighbours
            .retain(|_, n| n.forget_at.is_none_or(|t| t > now));
        let due: Vec<PeerId> = self
            .neighbours
            .iter()
            .filter(|(_, n)| n.retry_at.is_some_and(|t| t <= now))
            .map(|(p, _)| *p)
            .collect();
        for peer in due {
            self.dial_neighbour(peer, now);
        }
        Ok(())
    }

    /// Dials a peer found by mDNS, unless connected; a failure is retried with backoff while
    /// its record lives (libp2p-mdns reports a peer once per record, not once per query).
    fn dial_neighbour(&mut self, peer: PeerId, now: Instant) {
        let Some(n) = self.neighbours.get_mut(&peer) else {
            return;
        };
        n.retry_at = None;
        if n.left || n.addrs.is_empty() || self.swarm.is_connected(&peer) {
            return;
        }
        if self.banned.get(&peer).is_some_and(|until| *until > now) {
            return;
        }
        // The next attempt is scheduled now, even if this one hangs in a cut network: the first
        // dial after a repair then starts within NEIGHBOUR_REDIAL_MAX, and DIAL_TIMEOUT bounds
        // how many attempts can be pending at once.
        n.retry_at = Some(now + n.backoff);
        n.backoff = (n.backoff * 2).min(n.max_backoff);
        // From a new port, not the listening one: two nodes that find each other at the same
        // instant dial each other at once, and from both listening ports the two dials are one
        // TCP simultaneous open (the same four-tuple), whose security handshake fails on both
        // sides (both are initiators), again and again in lockstep. From fresh ports they are
        // two connections, and both succeed.
        let opts = DialOpts::peer_id(peer)
            .addresses(n.addrs.clone())
            .condition(PeerCondition::Always)
            .allocate_new_port()
            .build();
        match self.swarm.dial(opts) {
            Ok(()) => debug!(%peer, "dialling a neighbour"),
            Err(e) => debug!(%peer, error = %e, "cannot dial a neighbour"),
        }
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

    /// Dials `--connect` address number `i`.
    fn dial_target(&mut self, i: usize, now: Instant) {
        if let Some(p) = self.targets[i].peer
            && self.is_banned(&p)
        {
            self.targets[i].retry_at = Some(now + REDIAL_MAX);
            return;
        }
        let t = &mut self.targets[i];
        let opts = match t.named {
            Some(peer) => DialOpts::peer_id(peer)
                .addresses(vec![t.addr.clone()])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build(),
            None => DialOpts::unknown_peer_id().address(t.addr.clone()).build(),
        };
        let id = opts.connection_id();
        match self.swarm.dial(opts) {
            Ok(()) => {
                debug!(addr = %t.addr, "dialling");
                t.dialing = Some(id);
            }
            Err(DialError::DialPeerConditionFalse(_)) => {
                // Already connected or being dialled: the connection events will tell.
                t.connected = t.named.is_some_and(|p| self.swarm.is_connected(&p));
                if !t.connected {
                    t.retry_at = Some(now + t.backoff);
                }
            }
            Err(e) => {
                debug!(addr = %t.addr, error = %e, "cannot dial");
                t.retry_at = Some(now + t.backoff);
                t.backoff = (t.backoff * 2).min(REDIAL_MAX);
                self.dial_failed(i, &e);
            }
        }
    }

    /// A dial of `--connect` address number `i` failed: the user hears of it once, with the
    /// reason, until it works again.
    fn dial_failed(&mut self, i: usize, error: &DialError) {
        let t = &mut self.targets[i];
        if t.told {
            return;
        }
        t.told = true;
        self.reports.push(ChatEvent::Dial {
            addr: t.addr.to_string(),
            outcome: DialOutcome::Failed(super::dial::classify(error)),
        });
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
                let relayed = self
                    .hubs
                    .values_mut()
                    .find(|h| h.circuit == Some(listener_id));
                if let Some(hub) = relayed {
                    // A relayed address on a hub: others who cannot reach us directly use it.
                    info!(%address, "relayed address");
                    hub.next_register = Instant::now();
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
                    if let Some(hub) = self
                        .hubs
                        .values_mut()
                        .find(|h| h.circuit == Some(listener_id))
                    {
                        hub.circuit = None;
                        hub.next_reserve = Instant::now() + RESERVE_RETRY;
                    }
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
                for t in &mut self.targets {
                    let ours = t.dialing == Some(connection_id)
                        || t.named == Some(peer_id)
                        || t.peer == Some(peer_id);
                    if ours && t.told {
                        t.told = false;
                        self.reports.push(ChatEvent::Dial {
                            addr: t.addr.to_string(),
                            outcome: DialOutcome::Connected {
                                peer: peer_id.to_base58(),
                            },
                        });
                    }
                    if ours {
                        t.peer = Some(peer_id);
                        t.dialing = None;
                        t.connected = true;
                        t.retry_at = None;
                        t.backoff = REDIAL_MIN;
                    }
                }
                if self.is_banned(&peer_id) {
                    debug!(peer = %peer_id, "refusing a cut-off peer");
                    self.swarm.close_connection(connection_id);
                    return Ok(());
                }
                self.alive.insert(connection_id, (peer_id, Instant::now()));
                if let Some(n) = self.neighbours.get_mut(&peer_id) {
                    n.retry_at = None;
                    n.forget_at = None;
                    n.backoff = NEIGHBOUR_REDIAL_MIN;
                }
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
                self.alive.remove(&connection_id);
                info!(peer = %peer_id, num_established, cause = ?cause, "connection closed");
                if num_established == 0 {
                    let now = Instant::now();
                    self.links.remove(&peer_id);
                    self.syncing.remove(&peer_id);
                    self.hubs.remove(&peer_id);
                    self.emit(ChatEvent::Peer {
                        peer: peer_id.to_base58(),
                        connected: false,
                        addr: endpoint.get_remote_address().to_string(),
                    })
                    .await?;
                    if self.leaving.is_none() {
                        // The room decides: a present participant gone without a leave is lost
                        // (a leaver we hung up on is no longer present).
                        self.room.peer_gone(peer_id, now, wall_now());
                    }
                    self.flush_outbox(false).await?;
                    for t in &mut self.targets {
                        if t.peer == Some(peer_id) && t.connected {
                            t.connected = false;
                            t.retry_at = Some(now + t.backoff);
                        }
                    }
                    if let Some(n) = self.neighbours.get_mut(&peer_id) {
                        if !n.left {
                            n.retry_at = Some(now + NEIGHBOUR_REDIAL_MIN);
                        }
                        if !n.mdns {
                            n.forget_at = Some(now + NEIGHBOUR_FORGET);
                        }
                    }
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                debug!(peer = ?peer_id, error = %error, "dial failed");
                let now = Instant::now();
                if let Some(i) = self
                    .targets
                    .iter()
                    .position(|t| t.dialing == Some(connection_id))
                {
                    let t = &mut self.targets[i];
                    t.dialing = None;
                    t.retry_at = Some(now + t.backoff);
                    t.backoff = (t.backoff * 2).min(REDIAL_MAX);
                    self.dial_failed(i, &error);
                }
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
                // Remembered so that a dropped peer is dialled again without waiting for mDNS.
                if self.neighbours.len() < MDNS_PEERS_CAP || self.neighbours.contains_key(&peer_id)
                {
                    let n = self
                        .neighbours
                        .entry(peer_id)
                        .or_insert_with(|| Neighbour::new(false));
                    for addr in info.listen_addrs {
                        n.add_addr(addr);
                    }
                }
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
                        if gone && let Some(n) = self.neighbours.get_mut(&source) {
                            n.left = true;
                            n.retry_at = None;
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

    /// `peer` sent an invalid message: logged at warn the first time, then quietly; after
    /// [`BAN_AFTER`] within [`OFFENCE_WINDOW`] the peer is cut off for [`BAN_FOR`].
    async fn offence(&mut self, peer: PeerId, reason: &str, now: Instant) -> Result<(), NetError> {
        if !self.offences.contains_key(&peer) && self.offences.len() >= OFFENDERS_CAP {
            self.offences
                .retain(|_, (_, since)| now.duration_since(*since) < OFFENCE_WINDOW);
            if self.offences.len() >= OFFENDERS_CAP {
                // Still full: judge this one alone, without remembering it.
                warn!(%peer, %reason, "rejected message");
                return Ok(());
            }
        }
        let entry = self.offences.entry(peer).or_insert((0, now));
        if now.duration_since(entry.1) >= OFFENCE_WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
        let count = entry.0;
        if count == 1 {
            warn!(%peer, %reason, "rejected message");
        } else {
            debug!(%peer, %reason, count, "rejected message");
        }
        // gossipsub's own score may already ignore it (below the graylist threshold): then the
        // next invalid messages would never reach us to be counted.
        let graylisted = self
            .swarm
            .behaviour()
            .gossipsub
            .peer_score(&peer)
            .is_some_and(|s| s <= gossipsub::PeerScoreThresholds::default().graylist_threshold);
        if (count >= BAN_AFTER || graylisted) && !self.banned.contains_key(&peer) {
            // The user is told by the notice below.
            info!(%peer, count, "cutting off a peer that keeps sending invalid messages");
            if self.banned.len() >= OFFENDERS_CAP {
                self.banned.retain(|_, until| *until > now);
            }
            if self.banned.len() < OFFENDERS_CAP {
                self.banned.insert(peer, now + BAN_FOR);
            }
            if let Some(n) = self.neighbours.get_mut(&peer) {
                n.left = true;
                n.retry_at = None;
            }
            let _ = self.swarm.disconnect_peer_id(peer);
            self.emit(ChatEvent::Notice(format!(
                "cut off peer {} for sending invalid messages",
                crate::ui::render::short_id(&peer.to_base58())
            )))
            .await?;
        }
        Ok(())
    }

    /// Whether `peer` is cut off now.
    fn is_banned(&self, peer: &PeerId) -> bool {
        self.banned
            .get(peer)
            .is_some_and(|until| *until > Instant::now())
    }

    fn handle_mdns(&mut self, event: mdns::Event) {
        match event {
            mdns::Event::Discovered(found) => {
                let now = Instant::now();
                let mut fresh = Vec::new();
                for (peer, addr) in found {
                    self.swarm.add_peer_address(peer, addr.clone());
                    if !self.neighbours.contains_key(&peer) {
                        if self.neighbours.len() >= MDNS_PEERS_CAP {
                            debug!(%peer, "too many mDNS neighbours; not remembered");
                            continue;
                        }
                        self.neighbours.insert(peer, Neighbour::new(true));
                    }
                    if let Some(n) = self.neighbours.get_mut(&peer) {
                        // A fresh record means the peer is (back) on the LAN.
                        n.left = false;
                        n.mdns = true;
                        n.add_addr(addr);
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
                    if let Some(n) = self.neighbours.get_mut(&peer) {
                        n.addrs.retain(|a| a != &addr);
                        if n.addrs.is_empty() {
                            self.neighbours.remove(&peer);
                        }
                    }
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
        if self.leaving.is_some() || self.hubs.contains_key(&hub) {
            return;
        }
        let Some(addr) = self.links.get(&hub).map(|l| l.addr.clone()) else {
            return;
        };
        let base: Multiaddr = addr
            .iter()
            .take_while(|p| !matches!(p, Protocol::P2p(_) | Protocol::P2pCircuit))
            .collect();
        let circuit_addr = base.with(Protocol::P2p(hub)).with(Protocol::P2pCircuit);
        let circuit = match self.swarm.listen_on(circuit_addr.clone()) {
            Ok(id) => Some(id),
            Err(e) => {
                warn!(%hub, error = %e, "cannot ask the hub for a relayed address");
                None
            }
        };
        // Our own addresses, for peers that can reach us directly (registration needs at least
        // one confirmed external address).
        for a in self.listening.clone() {
            if !super::hub::is_loopback(&a) {
                self.swarm.add_external_address(a);
            }
        }
        info!(%hub, %circuit_addr, "found a hub");
        let now = Instant::now();
        self.hubs.insert(
            hub,
            HubLink {
                circuit,
                circuit_addr,
                next_reserve: now + RESERVE_RETRY,
                next_register: now,
                next_discover: now + HUB_DISCOVER_FIRST,
            },
        );
    }

    /// Registers with each hub (again before the registration expires) and asks it who else is
    /// in the room.
    fn hub_timers(&mut self, now: Instant) {
        let Ok(ns) = rendezvous::Namespace::new(self.room.topic().to_owned()) else {
            return;
        };
        let hubs: Vec<PeerId> = self.hubs.keys().copied().collect();
        for hub in hubs {
            let Some(link) = self.hubs.get_mut(&hub) else {
                continue;
            };
            let Some(client) = self.swarm.behaviour_mut().rendezvous_client.as_mut() else {
                return;
            };
            if now >= link.next_register {
                link.next_register = match client.register(ns.clone(), hub, Some(REGISTRATION_TTL))
                {
                    Ok(()) => now + REGISTER_EVERY,
                    Err(e) => {
                        // No external address yet: the relayed one is on its way.
                        debug!(%hub, error = %e, "not registered yet");
                        now + Duration::from_secs(1)
                    }
                };
            }
            if now >= link.next_discover {
                link.next_discover = now + DISCOVER_EVERY;
                client.discover(Some(ns.clone()), None, Some(DISCOVER_LIMIT), hub);
            }
            if link.circuit.is_none() && now >= link.next_reserve {
                link.next_reserve = now + RESERVE_RETRY;
                let addr = link.circuit_addr.clone();
                match self.swarm.listen_on(addr) {
                    Ok(id) => {
                        if let Some(link) = self.hubs.get_mut(&hub) {
                            link.circuit = Some(id);
                        }
                    }
                    Err(e) => debug!(%hub, error = %e, "cannot ask the hub for a relayed address"),
                }
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
                    if self.neighbours.len() >= MDNS_PEERS_CAP
                        && !self.neighbours.contains_key(&peer)
                    {
                        continue;
                    }
                    if self.room.has_departed(&peer) {
                        // Its registration outlives it for up to a TTL.
                        continue;
                    }
                    let n = self.neighbours.entry(peer).or_insert_with(|| {
                        let mut n = Neighbour::new(false);
                        n.max_backoff = DISCOVERED_REDIAL_MAX;
                        n
                    });
                    // The registration is the truth about its addresses: relayed ones first,
                    // so that they fit under the cap.
                    let mut addrs: Vec<Multiaddr> = r.record.addresses().to_vec();
                    addrs.sort_by_key(|a| !a.iter().any(|p| matches!(p, Protocol::P2pCircuit)));
                    addrs.truncate(MDNS_ADDRS_CAP);
                    if !n.mdns {
                        n.addrs = addrs;
                        // Forgotten unless discovered again before its registration would lapse.
                        n.forget_at = Some(now + Duration::from_secs(REGISTRATION_TTL));
                    } else {
                        for a in addrs {
                            n.add_addr(a);
                        }
                    }
                    if !self.swarm.is_connected(&peer) && n.retry_at.is_none() {
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
                if let Some(l) = self.hubs.get_mut(&rendezvous_node) {
                    l.next_register = Instant::now() + Duration::from_secs(5);
                }
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
                    let resp = self.room.handle_sync_request(&request);
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
