//! The one task that owns the [`Swarm`] and the [`Room`] (docs/ARCHITECTURE.md, "Event loop").
//!
//! It `select!`s over shutdown, user commands, swarm events and its timers, turns each into calls
//! on the IO-less room, and carries out what the room asks: publish an event, show something.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use libp2p::core::transport::ListenerId;
use libp2p::futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, gossipsub, identify, mdns, rendezvous, request_response};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::behaviour::{ChatBehaviour, ChatBehaviourEvent};
use super::dropped::DropWatch;
use super::guard::Guard;
use super::hello::SyncResponseOut;
use super::node::dialer::{Dial, Dialer};
use super::node::hub_client::{
    HubAction, HubClient, REGISTER_REFUSED_RETRY, REGISTER_RETRY, REGISTRATION_TTL,
};
use super::node::leaving::Leaving;
use super::node::outbox::{Full, OUTBOX_CAP, Outbox, Queued};
use super::node::stall::Stall;
use super::paging::{Paging, Rounds, next_page};
use super::swarm::{NetError, build_swarm};
use crate::core::command::{Command, RoomTarget, UserCommand};
use crate::core::event::{
    Body, ChatEvent, LinkView, RoomName, RoomView, SignedEvent, Update, Username,
};
use crate::core::hello::Hello;
use crate::core::room::{Output, Room, RoomConfig};
use crate::core::status::{PublishFailure, Status};
use crate::core::sync::SyncRequest;
use crate::core::time::WallTime;
use crate::core::verdict::{Rejection, Verdict};
use crate::wire;

/// A host name's resolution: the `--connect` target it is for, and its addresses (`None`: it
/// did not resolve).
type Resolution = (usize, Option<Vec<IpAddr>>);

/// Host name resolutions on their way back to the loop (one per `--connect` target at most).
pub const RESOLUTIONS_CAP: usize = 16;
/// How long discovery gets before a node that has met only newcomers joins: less than the join
/// grace, so that a simultaneous start of many nodes is over within a second.
pub const NEWCOMER_WAIT: Duration = Duration::from_millis(400);
/// Most registrations asked for at once.
pub const DISCOVER_LIMIT: u64 = 256;
/// How long a node found by mDNS waits for a neighbour with a lower peer id to dial it before
/// it dials itself (docs/PROTOCOL.md section 2).
pub const DIAL_YIELD: Duration = Duration::from_millis(500);
/// How long a second connection to a peer stays open before the one both sides drop is
/// closed: long enough for gossipsub's first messages on it (the subscriptions) to be through,
/// which libp2p loses if the connection carrying them closes.
pub const DUPLICATE_GRACE: Duration = Duration::from_secs(2);
/// How long publishing waits for a newly connected peer to say hello and subscribe, so that a
/// message sent the moment a peer connects still reaches it. Bounded: a silent peer delays
/// the outbox this long at most.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(1);

/// A room to be in, as the node is started with it.
#[derive(Debug)]
pub struct RoomSpec {
    /// Its name (for a private room, the one its ticket gave, if any).
    pub name: RoomName,
    /// A private room: its secret and keys (docs/PROTOCOL.md section 14).
    pub private: Option<crate::private::PrivateRoom>,
}

/// What the node needs to run.
#[derive(Debug)]
pub struct NodeConfig {
    /// The history database, if this node keeps one (docs/ARCHITECTURE.md, "The store").
    pub store: Option<crate::store::Store>,
    /// Our identity.
    pub keypair: Keypair,
    /// Our username.
    pub user: Username,
    /// Our rooms: the first, then any others (`--room` given again). At least one.
    pub rooms: Vec<RoomSpec>,
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

/// What we know of a connected peer's presence in one of our rooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HelloState {
    /// No hello about the room yet.
    Pending,
    /// Its hello named the room.
    Room,
    /// Its hello named another room, or it has no hello protocol: not a peer of the room.
    Other,
}

/// A connected peer.
#[derive(Debug)]
struct Link {
    since: Instant,
    /// Where the peer was reached (for a hub: where to ask for a relayed address).
    addr: Multiaddr,
}

/// Most rooms one node is in at once.
pub const MAX_JOINED: usize = 16;

/// One room the node is in, and what goes with it: its state machine, its topic, the events
/// waiting to go out in it, its anti-entropy turns, what each peer's hello said of it, and our
/// leave of it.
struct Joined {
    room: Room,
    topic: gossipsub::IdentTopic,
    outbox: Outbox,
    /// Anti-entropy: when to ask the next peer of this room, in turn, what we lack.
    rounds: Rounds,
    /// Live events dropped over their author's rate, until sync has had its chance.
    drops: DropWatch,
    /// What each connected peer's hello said of this room.
    hellos: HashMap<PeerId, HelloState>,
    /// Set once our leave of this room is stamped.
    leaving: Option<Leaving>,
    /// When the room started (its join wait began).
    started_at: Instant,
    /// The end of our stored history of the room, shown once the room is announced.
    stored: Vec<ChatEvent>,
    /// A private room's secret and keys: every event received is opened with them, and
    /// tickets carry the secret.
    private: Option<crate::private::PrivateRoom>,
    /// The room's name as given (for tickets, and for `/rooms`).
    name: RoomName,
    /// Addresses kept connected for this room only (its ticket's, on `/join`): let go with it.
    dials: Vec<Multiaddr>,
}

impl Joined {
    fn view(&self) -> RoomView {
        RoomView {
            topic: self.room.topic().to_owned(),
            name: if self.private.is_some() {
                self.name.name().map(str::to_owned)
            } else {
                Some(
                    self.name
                        .name()
                        .unwrap_or(crate::core::name::BASE_TOPIC)
                        .to_owned(),
                )
            },
            private: self.private.is_some(),
            present: self.room.present_count(),
        }
    }

    /// The peers whose hello named this room.
    fn room_peers(&self) -> Vec<PeerId> {
        self.hellos
            .iter()
            .filter(|(_, h)| **h == HelloState::Room)
            .map(|(p, _)| *p)
            .collect()
    }
}

/// The event loop's state.
pub struct EventLoop {
    swarm: Swarm<ChatBehaviour>,
    /// Our rooms, the first one first; a room we left is removed once its leave is out.
    rooms: Vec<Joined>,
    commands: mpsc::Receiver<Command>,
    commands_open: bool,
    events: mpsc::Sender<Update>,
    me: PeerId,
    user: Username,
    mdns: bool,
    listening: Vec<Multiaddr>,
    /// Our own listeners (not relayed ones); the node stops when the last one fails.
    tcp_listeners: HashSet<ListenerId>,
    ready_pending: bool,
    started: bool,
    /// Whom we keep connected to, and when we dial.
    dialer: Dialer,
    links: HashMap<PeerId, Link>,
    /// Every open connection and when it last proved alive (established, or a ping answered).
    alive: super::liveness::Liveness,
    /// Offences and bans, and what each peer's requests may cost us.
    guard: Guard,
    /// The connections to each peer, to keep one.
    one_link: super::one_link::OneLink,
    /// Second connections to close, and when ([`DUPLICATE_GRACE`]).
    duplicates: Vec<(libp2p::swarm::ConnectionId, Instant)>,
    /// History exchanges under way (one at a time per peer and room), by request id, with the
    /// room's topic.
    paging: Paging<request_response::OutboundRequestId, String>,
    /// Our hellos under way, by request id, with the topic each is about (the answer may name
    /// another room).
    hello_asks: HashMap<request_response::OutboundRequestId, String>,
    /// The hubs of our rooms we are connected to.
    hubs: HubClient,
    /// Set when the whole node leaves (`/quit`, a signal, the end of input, an error).
    quitting: bool,
    /// An error that ends the node once the leave is out.
    fatal: Option<NetError>,
    /// Reports for the user made where nothing can be awaited, shown at the next turn.
    reports: Vec<ChatEvent>,
    /// Whether the loop woke much later than planned (the node was stopped or starved).
    stall: Stall,
    /// Host names of `--connect` targets resolved on blocking threads, back to the loop.
    resolutions: (mpsc::Sender<Resolution>, mpsc::Receiver<Resolution>),
    /// The store's thread, if we keep history on disk.
    store: Option<crate::store::Kept>,
    /// The `--connect` addresses (a hub's, most likely), for tickets.
    connect: Vec<Multiaddr>,
    /// What every room is made with (our key, name, bounds).
    template: RoomConfig,
}

/// How many stored lines of earlier runs a node shows at start: about a screenful.
pub const STORED_SHOWN: usize = 20;
/// The most results `/search` shows.
pub const SEARCH_RESULTS: usize = 50;

/// A private room's event that does not open: its author, and why.
struct Unsealed {
    author: PeerId,
    reason: Box<Rejection>,
}

/// Opens what a private room's store gave back; what does not open is skipped with a warning
/// (our own disk: nobody to blame).
fn unseal_all(
    private: Option<&crate::private::PrivateRoom>,
    events: Vec<SignedEvent>,
) -> Vec<SignedEvent> {
    let Some(p) = private else { return events };
    let n = events.len();
    let opened: Vec<SignedEvent> = events
        .into_iter()
        .filter_map(|e| wire::open_event(e, &p.keys).ok())
        .collect();
    if opened.len() < n {
        warn!(
            bad = n - opened.len(),
            "stored events of the private room that do not open were skipped"
        );
    }
    opened
}

/// The system's wall-clock time, for the events the room may sign now (the core never reads a
/// clock).
fn wall_now() -> WallTime {
    WallTime::from_system(SystemTime::now())
}

mod connections;
mod exchange;
mod gossip;
mod publish;

impl EventLoop {
    /// Builds the swarm, starts listening and subscribes to the rooms' topics.
    pub fn new(
        config: NodeConfig,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<Update>,
    ) -> Result<Self, NetError> {
        let mut swarm = build_swarm(&config.keypair, config.mdns, false)?;
        let me = *swarm.local_peer_id();
        let tcp_listeners = super::swarm::listen_all(&mut swarm, &config.listen)?;
        let store = match config.store {
            Some(store) => Some(crate::store::Kept::open(store, config.history)?),
            None => None,
        };
        let template = RoomConfig {
            keypair: config.keypair.clone(),
            user: config.user.clone(),
            room: RoomName::default(),
            private: None,
            history: config.history,
            join_grace: config.join_grace,
            first_seq: 0,
            max_rate: config.max_rate,
        };
        let mut node = Self {
            swarm,
            rooms: Vec::new(),
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
            dialer: Dialer::new(&config.connect, Instant::now()),
            links: HashMap::new(),
            alive: super::liveness::Liveness::default(),
            guard: Guard::default(),
            one_link: super::one_link::OneLink::new(me),
            duplicates: Vec::new(),
            paging: Paging::default(),
            hello_asks: HashMap::new(),
            hubs: HubClient::default(),
            quitting: false,
            fatal: None,
            reports: Vec::new(),
            stall: Stall::default(),
            resolutions: mpsc::channel(RESOLUTIONS_CAP),
            store,
            connect: config.connect.clone(),
            template,
        };
        for spec in config.rooms {
            node.open_room(spec)?;
        }
        if node.rooms.is_empty() {
            return Err(NetError::Subscribe("no room to be in".to_owned()));
        }
        Ok(node)
    }

    /// Opens a room: its state machine, with our stored history of it read back (shown once
    /// the room is announced, marked as stored; sync then asks peers only for what it lacks),
    /// and its topic subscribed. Returns its index.
    fn open_room(&mut self, spec: RoomSpec) -> Result<usize, NetError> {
        let mut room = Room::new(RoomConfig {
            room: spec.name.clone(),
            private: spec.private.as_ref().map(|p| p.keys.clone()),
            // Each run numbers above every earlier one: the start time in microseconds.
            first_seq: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2))
                .unwrap_or(0),
            ..self.template.clone()
        });
        let mut stored = Vec::new();
        if let Some(kept) = &self.store {
            let (events, holds) = kept.read_back(room.topic())?;
            let events = unseal_all(spec.private.as_ref(), events);
            info!(
                room = room.topic(),
                events = events.len(),
                authors = holds.len(),
                "history read from the store"
            );
            stored = room.restore(events, &holds, STORED_SHOWN);
        }
        let topic = gossipsub::IdentTopic::new(room.topic());
        let gossip = &mut self.swarm.behaviour_mut().gossipsub;
        gossip
            .set_topic_params(topic.clone(), super::behaviour::topic_score_params())
            .map_err(|e| NetError::Subscribe(e.to_owned()))?;
        gossip
            .subscribe(&topic)
            .map_err(|e| NetError::Subscribe(format!("{}: {e}", room.topic())))?;
        let now = Instant::now();
        // Every peer already connected is asked about the new room.
        let hellos = self
            .links
            .keys()
            .map(|p| (*p, HelloState::Pending))
            .collect();
        self.rooms.push(Joined {
            room,
            topic,
            outbox: Outbox::new(self.me, self.template.max_rate),
            rounds: Rounds::new(now),
            drops: DropWatch::default(),
            hellos,
            leaving: None,
            started_at: now,
            stored,
            private: spec.private,
            name: spec.name,
            dials: Vec::new(),
        });
        Ok(self.rooms.len() - 1)
    }

    /// The index of our room with `topic`.
    fn room_of(&self, topic: &str) -> Option<usize> {
        self.rooms.iter().position(|j| j.room.topic() == topic)
    }

    /// The index of our room with gossipsub topic `hash`.
    fn room_of_hash(&self, hash: &gossipsub::TopicHash) -> Option<usize> {
        self.rooms.iter().position(|j| j.topic.hash() == *hash)
    }

    /// Whether `peer` is with us in a room other than room `i` that we are not leaving (its
    /// hello named it): a leave of room `i` is then a `/part`, and the connection stays.
    fn shares_another_room(&self, i: usize, peer: &PeerId) -> bool {
        self.rooms.iter().enumerate().any(|(k, j)| {
            k != i && !j.room.has_left() && j.hellos.get(peer) == Some(&HelloState::Room)
        })
    }

    /// Sends our hello about room `i` to `peer`.
    fn send_hello(&mut self, i: usize, peer: PeerId) {
        let Some(j) = self.rooms.get(i) else { return };
        let hello = j.room.hello();
        let topic = j.room.topic().to_owned();
        let id = self.swarm.behaviour_mut().hello.send_request(&peer, hello);
        if self.hello_asks.len() < super::paging::PAGING_CAP {
            self.hello_asks.insert(id, topic);
        }
    }

    /// Runs until our leave of every room has reached our peers (or
    /// [`LEAVE_LINGER`](super::node::leaving::LEAVE_LINGER) ran out). A finished `shutdown`
    /// future, or the command channel closing, means `/quit`.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), NetError> {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut shutdown_done = false;
        loop {
            if self.started {
                // Every turn, not only on its timer: once the moment has passed while other
                // events kept the loop busy, the timer is no longer asked for.
                self.maybe_end_waits(Instant::now());
            }
            self.drain_rooms().await?;
            for report in std::mem::take(&mut self.reports) {
                self.emit(report).await?;
            }
            self.progress_leaves().await?;
            if self.rooms.is_empty() {
                return self.fatal.take().map_or(Ok(()), Err);
            }
            // Timers that are due run before anything else: a steady stream of swarm events
            // (the first branch of the biased select below) must not starve them.
            // (Only once started: before that, the swarm's first events, our listen addresses,
            // come first, so that a dial never goes to our own address unrecognised.)
            let now = Instant::now();
            if self.started && self.next_deadline().is_some_and(|d| d <= now) {
                self.handle_timers(now).await?;
            }
            let deadline = self.next_deadline();
            // A stall is a wake much later than planned, and planned is never before now.
            self.stall
                .sleeping_until(deadline.map(|d| d.max(Instant::now())));
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
                    // Lines typed before the signal and not yet stamped (held back by our
                    // pace) are said before the leave.
                    while let Ok(cmd) = self.commands.try_recv() {
                        if matches!(cmd.cmd, UserCommand::Say(_)) {
                            self.handle_command(cmd).await?;
                        }
                    }
                    self.quit();
                }
                cmd = self.commands.recv(), if self.commands_open && self.started && !self.pacing_full() => match cmd {
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
                Some((index, ips)) = self.resolutions.1.recv() => {
                    let now = Instant::now();
                    self.note_wake(now);
                    match self.dialer.resolved(index, ips, now) {
                        Ok(dial) => self.start_dials(vec![dial], now),
                        Err(report) => self.reports.extend(report),
                    }
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

    /// Called first on every wake. If it comes much later than planned, the node itself was
    /// stopped or starved ([`Stall`]): its peers may have closed their connections to it
    /// meanwhile, and their pings went unanswered by us. Their silence says nothing about them,
    /// so every connection gets a fresh liveness window, and connections found closed in the
    /// next one are not announced as lost participants (those who really vanished are
    /// announced by others).
    fn note_wake(&mut self, now: Instant) {
        if self.stall.woke(now) {
            info!("this node was stalled; peers' silence meanwhile is not held against them");
            self.alive.refresh_all(now);
        }
    }

    /// Leaves every room (`/quit`, a signal, the end of input, a fatal error).
    fn quit(&mut self) {
        self.quitting = true;
        for i in 0..self.rooms.len() {
            self.part(i);
        }
    }

    /// Leaves room `i`, unless already gone (`/quit` followed by the end of input is one
    /// leave).
    fn part(&mut self, i: usize) {
        let Some(j) = self.rooms.get_mut(i) else {
            return;
        };
        if j.room.has_left() {
            return;
        }
        j.room
            .handle_command(UserCommand::Quit, Instant::now(), wall_now());
        // Leave the hubs' directories too (an expired registration would go in a minute).
        if let Ok(ns) = rendezvous::Namespace::new(j.room.topic().to_owned()) {
            let hubs: Vec<PeerId> = self.hubs.hubs().copied().collect();
            if let Some(client) = self.swarm.behaviour_mut().rendezvous_client.as_mut() {
                for hub in hubs {
                    client.unregister(ns.clone(), hub);
                }
            }
        }
    }

    /// Whether the node as a whole is leaving: nothing new is started (dials, hubs, rounds).
    fn leaving(&self) -> bool {
        self.quitting
    }

    /// A command from the ui, for the room it names (or the first). A line is refused before
    /// it is stamped when the room's outbox is full, so nothing is shown as said that cannot
    /// be sent.
    async fn handle_command(&mut self, command: Command) -> Result<(), NetError> {
        let Command { room, cmd } = command;
        // The node's own commands run whatever room they were typed in.
        let node_wide = matches!(
            cmd,
            UserCommand::Quit
                | UserCommand::Join(_)
                | UserCommand::Rooms
                | UserCommand::Peers
                | UserCommand::Addresses
        );
        let i = match &room {
            None => 0,
            Some(topic) => match self.room_of(topic) {
                Some(i) => i,
                None if node_wide => 0,
                None => {
                    // Typed into a room we just left: said, not sent.
                    return self
                        .send(
                            Some(topic.clone()),
                            ChatEvent::Error(
                                "you are not in that room (any more); nothing was sent".to_owned(),
                            ),
                        )
                        .await;
                }
            },
        };
        let Some(j) = self.rooms.get(i) else {
            return Ok(());
        };
        if matches!(cmd, UserCommand::Say(_)) && j.outbox.refuses_lines() {
            return self
                .emit_in(i, ChatEvent::Status(Status::OutboxFull { cap: OUTBOX_CAP }))
                .await;
        }
        match cmd {
            // Leaving is more than the room's leave: the hubs are told too.
            UserCommand::Quit => self.quit(),
            UserCommand::Part if j.room.has_left() => {
                self.emit_in(
                    i,
                    ChatEvent::Error("you are leaving this room already".to_owned()),
                )
                .await?;
            }
            UserCommand::Part => {
                let others = self
                    .rooms
                    .iter()
                    .enumerate()
                    .any(|(k, o)| k != i && !o.room.has_left());
                if others {
                    self.part(i);
                } else {
                    // The last room: leaving it is leaving.
                    self.quit();
                }
            }
            UserCommand::Join(target) => self.join(target).await?,
            UserCommand::Rooms => {
                let rooms = self.rooms.iter().map(Joined::view).collect();
                self.emit(ChatEvent::Rooms(rooms)).await?;
            }
            UserCommand::Search(words) => self.search(i, words).await?,
            UserCommand::Peers => {
                let mut links: Vec<LinkView> = self
                    .links
                    .iter()
                    .map(|(peer, link)| LinkView {
                        peer: peer.to_base58(),
                        user: self
                            .rooms
                            .iter()
                            .find_map(|j| j.room.name_of(peer))
                            .map(|u| u.as_str().to_owned()),
                        addr: link.addr.to_string(),
                        hub: self.hubs.is_hub(peer),
                    })
                    .collect();
                links.sort_by(|a, b| (!a.hub, &a.user, &a.peer).cmp(&(!b.hub, &b.user, &b.peer)));
                self.emit(ChatEvent::Links(links)).await?;
            }
            UserCommand::Invite => match self.ticket(i) {
                Some(t) => self.emit_in(i, ChatEvent::Ticket(t)).await?,
                None => {
                    self.emit_in(i, ChatEvent::Error(
                        "this room is public: others join it with --room and the same name; /invite is for private rooms (start one with --private)".to_owned(),
                    ))
                    .await?
                }
            },
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
            // What memory no longer holds comes from the store, before the room shows it.
            UserCommand::History(last) if j.room.cold_below().is_some() => {
                let older = self.stored_before(i, last);
                if let Some(j) = self.rooms.get_mut(i) {
                    j.room.show_history_with(older, last);
                }
            }
            cmd => {
                if let Some(j) = self.rooms.get_mut(i) {
                    j.room.handle_command(cmd, Instant::now(), wall_now());
                }
            }
        }
        Ok(())
    }

    /// `/join`: opens the room, starts it, and asks every connected peer about it (a ticket's
    /// addresses are dialled too). A room we are in already is announced again, so the ui
    /// shows it.
    async fn join(&mut self, target: RoomTarget) -> Result<(), NetError> {
        let mut dials = Vec::new();
        let spec = match target {
            RoomTarget::Public(name) => RoomSpec {
                name,
                private: None,
            },
            RoomTarget::Private(ticket) => {
                // Its addresses are kept connected, as `--join`'s are (relayed ones are reached
                // through the hub's, which a ticket carries too).
                let addrs: Vec<Multiaddr> = ticket
                    .addrs
                    .iter()
                    .filter(|a| {
                        !a.iter()
                            .any(|p| p == libp2p::multiaddr::Protocol::P2pCircuit)
                    })
                    .cloned()
                    .collect();
                self.dialer.add_targets(&addrs, Instant::now());
                dials = addrs;
                RoomSpec {
                    name: ticket.name.clone().unwrap_or_default(),
                    private: Some(crate::private::PrivateRoom::join(ticket.secret.clone())),
                }
            }
        };
        let topic = match &spec.private {
            Some(p) => p.keys.topic().to_owned(),
            None => spec.name.topic(),
        };
        if let Some(i) = self.room_of(&topic) {
            if self.rooms[i].room.has_left() {
                // Its leave is still on its way out: the room is not ours to rejoin yet.
                return self
                    .emit_in(
                        i,
                        ChatEvent::Error(
                            "you are leaving that room; /join it again once it is closed"
                                .to_owned(),
                        ),
                    )
                    .await;
            }
            let view = self.rooms[i].view();
            return self.emit_in(i, ChatEvent::Opened(view)).await;
        }
        let refused = if self.rooms.len() >= MAX_JOINED {
            Some(format!("already in {MAX_JOINED} rooms: /part one first"))
        } else {
            None
        };
        let opened = match refused {
            Some(why) => Err(why),
            None => self.open_room(spec).map_err(|e| {
                warn!(error = %e, "cannot open the room");
                format!("cannot open the room: {e}")
            }),
        };
        let i = match opened {
            Ok(i) => i,
            Err(why) => {
                // The ui may have made the room its current one already: `closed` tells it
                // the room is not ours.
                self.send(Some(topic.clone()), ChatEvent::Error(why))
                    .await?;
                return self
                    .send(Some(topic.clone()), ChatEvent::Closed { topic })
                    .await;
            }
        };
        self.rooms[i].dials = dials;
        self.start_room(i).await?;
        let peers: Vec<PeerId> = self.links.keys().copied().collect();
        for peer in peers {
            self.send_hello(i, peer);
        }
        Ok(())
    }

    /// Announces room `i` to the ui (`ready` for the first, `opened` for others), shows our
    /// stored history of it, and starts its join.
    async fn start_room(&mut self, i: usize) -> Result<(), NetError> {
        let expect_peers = self.mdns || self.dialer.has_targets() || !self.links.is_empty();
        let Some(j) = self.rooms.get_mut(i) else {
            return Ok(());
        };
        let stored = std::mem::take(&mut j.stored);
        let view = j.view();
        let made = j.private.as_ref().is_some_and(|p| p.made);
        if i > 0 {
            self.emit_in(i, ChatEvent::Opened(view)).await?;
        }
        if made && let Some(t) = self.ticket(i) {
            self.emit_in(i, ChatEvent::Ticket(t)).await?;
        }
        for event in stored {
            self.emit_in(i, event).await?;
        }
        if let Some(j) = self.rooms.get_mut(i) {
            j.room.start(Instant::now(), wall_now(), expect_peers);
            j.started_at = Instant::now();
        }
        Ok(())
    }

    /// For `/history [N]` in room `i`: the stored events older than memory holds, as many as
    /// the command wants beyond memory (all kept, without N), read on this thread (one indexed
    /// read).
    fn stored_before(&self, i: usize, last: Option<usize>) -> Vec<SignedEvent> {
        let Some(j) = self.rooms.get(i) else {
            return Vec::new();
        };
        let (Some(store), Some(below)) = (&self.store, j.room.cold_below()) else {
            return Vec::new();
        };
        let want = last.map_or(usize::MAX, |n| n.saturating_sub(j.room.transcript().len()));
        if want == 0 {
            return Vec::new();
        }
        let events = store
            .before(j.room.topic(), below.as_ref(), want)
            .unwrap_or_else(|e| {
                warn!(error = %e, "stored history cannot be read");
                Vec::new()
            });
        unseal_all(j.private.as_ref(), events)
    }

    /// An event of room `i` opened with the room's key when it is private (a public room's as
    /// it is); what does not open is its author's fault.
    fn unseal(&self, i: usize, signed: SignedEvent) -> Result<SignedEvent, Unsealed> {
        match self.rooms.get(i).and_then(|j| j.private.as_ref()) {
            None => Ok(signed),
            Some(p) => {
                let author = signed.event.author;
                wire::open_event(signed, &p.keys).map_err(|e| Unsealed {
                    author,
                    reason: Box::new(Rejection::Unsealed(e.to_string())),
                })
            }
        }
    }

    /// `/invite`, and at start in a private room: a ticket with the room's secret, its name,
    /// and where to find us now (our addresses, relayed ones included, and the `--connect`
    /// ones).
    fn ticket(&self, i: usize) -> Option<String> {
        let j = self.rooms.get(i)?;
        let p = j.private.as_ref()?;
        let mut addrs = self.listening.clone();
        addrs.extend(self.swarm.external_addresses().cloned());
        let mut addrs: Vec<Multiaddr> = super::swarm::full_addresses(&addrs, self.me)
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect();
        addrs.extend(self.connect.iter().cloned());
        let ticket = crate::private::ticket::Ticket {
            secret: p.secret.clone(),
            name: j.name.name().map(|_| j.name.clone()),
            addrs,
        };
        Some(ticket.encode())
    }

    /// Tells the ui something about the node as a whole (or the first room, when only one).
    async fn emit(&self, event: ChatEvent) -> Result<(), NetError> {
        self.send(None, event).await
    }

    /// Tells the ui something about room `i`.
    async fn emit_in(&self, i: usize, event: ChatEvent) -> Result<(), NetError> {
        let room = self.rooms.get(i).map(|j| j.room.topic().to_owned());
        self.send(room, event).await
    }

    async fn send(&self, room: Option<String>, event: ChatEvent) -> Result<(), NetError> {
        self.events
            .send(Update { room, event })
            .await
            .map_err(|_| NetError::OutputClosed)
    }

    async fn announce_ready(&mut self) -> Result<(), NetError> {
        self.ready_pending = false;
        let listen = super::swarm::full_addresses(&self.listening, self.me);
        info!(peer = %self.me, "ready");
        let topic = self
            .rooms
            .first()
            .map(|j| j.room.topic().to_owned())
            .unwrap_or_default();
        self.emit_in(
            0,
            ChatEvent::Ready {
                peer: self.me.to_base58(),
                user: self.user.as_str().to_owned(),
                topic,
                listen,
            },
        )
        .await?;
        if !self.started {
            self.started = true;
            for i in 0..self.rooms.len() {
                self.start_room(i).await?;
            }
        }
        Ok(())
    }

    /// `/search` in room `i`: asked of the store's thread; the answer goes to the ui when it
    /// comes, so the loop never waits for the disk.
    async fn search(&mut self, i: usize, words: Vec<String>) -> Result<(), NetError> {
        let Some(j) = self.rooms.get(i) else {
            return Ok(());
        };
        let topic = j.room.topic().to_owned();
        let private = j.private.is_some();
        let Some(store) = &mut self.store else {
            return self
                .emit_in(i, ChatEvent::Error(
                    "no history is stored in this run (--no-store, or the database is in use by another node); nothing to search"
                        .to_owned(),
                ))
                .await;
        };
        if private {
            return self
                .emit_in(i, ChatEvent::Error(
                    "a private room's history is stored sealed, not indexed: /search finds nothing in it".to_owned(),
                ))
                .await;
        }
        let query = words.join(" ");
        let answer = store.writer().search(&topic, words, SEARCH_RESULTS);
        let events = self.events.clone();
        tokio::spawn(async move {
            let event = match answer.await {
                Ok(Ok(found)) => ChatEvent::Search {
                    query,
                    found: found
                        .iter()
                        .filter_map(|b| wire::decode_event(b).ok())
                        .map(|e| e.event.view(false))
                        .collect(),
                },
                Ok(Err(why)) => ChatEvent::Error(format!("search failed: {why}")),
                Err(_) => ChatEvent::Error("search failed: the history database closed".into()),
            };
            let _ = events
                .send(Update {
                    room: Some(topic),
                    event,
                })
                .await;
        });
        Ok(())
    }

    /// Carries out everything the rooms asked for.
    async fn drain_rooms(&mut self) -> Result<(), NetError> {
        for i in 0..self.rooms.len() {
            self.drain_room(i).await?;
        }
        Ok(())
    }

    /// Carries out everything room `i` asked for: what goes to peers first, so that the
    /// connection tasks, woken in that order, send before the ui renders our own line.
    async fn drain_room(&mut self, i: usize) -> Result<(), NetError> {
        let Some(j) = self.rooms.get_mut(i) else {
            return Ok(());
        };
        let mut outputs = Vec::new();
        while let Some(out) = j.room.poll_output() {
            outputs.push(out);
        }
        outputs.sort_by_key(|o| !matches!(o, Output::Publish(_)));
        // What the room took is handed to the store's thread; it writes off this path.
        let kept = j.room.drain_kept();
        if let Some(store) = &mut self.store {
            store.writer().append(&kept);
        }
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
                    self.emit_in(i, ev).await?
                }
                Output::Publish(ev) => self.publish(i, &ev).await?,
                Output::Offence { peer, reason } => {
                    self.offence(peer, &reason, Instant::now()).await?
                }
            }
        }
        Ok(())
    }

    fn next_deadline(&self) -> Option<Instant> {
        // A leaving node dials nobody, so redials must not wake it.
        let redial = self.dialer.poll_timeout().filter(|_| !self.leaving());
        let now = Instant::now();
        let rooms = self.rooms.iter().flat_map(|j| {
            let settle = if j.outbox.is_empty() {
                None
            } else {
                self.unsettled_until(j, now)
            };
            [
                j.room.poll_timeout(),
                j.outbox.poll_timeout(),
                j.leaving.as_ref().map(Leaving::poll_timeout),
                settle,
                (j.leaving.is_none() && !self.leaving()).then(|| j.rounds.poll_timeout()),
                j.drops.poll_timeout(),
                // Only while it is ahead: past it, hellos (not the clock) end the wait.
                Some(j.started_at + NEWCOMER_WAIT).filter(|t| j.room.is_waiting() && *t > now),
            ]
        });
        [
            self.stall.poll_timeout(),
            self.alive.poll_timeout(),
            self.hubs.poll_timeout().filter(|_| !self.leaving()),
            self.duplicates.iter().map(|d| d.1).min(),
        ]
        .into_iter()
        .chain(rooms)
        .flatten()
        .chain(redial)
        .min()
    }

    async fn handle_timers(&mut self, now: Instant) -> Result<(), NetError> {
        if self.started {
            for j in &mut self.rooms {
                j.room.handle_timeout(now, wall_now());
            }
            self.maybe_end_waits(now);
        }
        for i in 0..self.rooms.len() {
            if !self.rooms[i].outbox.is_empty() {
                self.flush_outbox(i, false).await?;
            }
        }
        super::close_silent(&mut self.swarm, &mut self.alive, now);
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.duplicates)
            .into_iter()
            .partition(|d| d.1 <= now);
        self.duplicates = later;
        for (dup, _) in due {
            debug!(connection = ?dup, "closing a second connection to a peer");
            self.swarm.close_connection(dup);
        }
        for i in 0..self.rooms.len() {
            let j = &mut self.rooms[i];
            let transcript = j.room.transcript();
            let missing = j.drops.handle_timeout(now, |peer, seq, lamport| {
                transcript.knows(peer, seq, lamport)
            });
            let rate = j.room.max_rate();
            for m in missing {
                self.emit_in(
                    i,
                    ChatEvent::Dropped {
                        user: m.user,
                        peer: m.peer.to_base58(),
                        missing: m.missing,
                        rate,
                    },
                )
                .await?;
            }
        }
        for peer in self.stall.recovered(now) {
            // Still unreachable after our stall's window: it really is gone (or cut off).
            if !self.swarm.is_connected(&peer) && !self.leaving() {
                for j in &mut self.rooms {
                    j.room.peer_gone(peer, now, wall_now());
                }
            }
        }
        if self.leaving() {
            return Ok(());
        }
        self.hub_timers(now);
        for i in 0..self.rooms.len() {
            let j = &mut self.rooms[i];
            if j.leaving.is_some() {
                continue;
            }
            let peers = j.room_peers();
            if let Some(peer) = j.rounds.due(now, peers) {
                self.start_sync(i, peer);
            }
        }
        let guard = &self.guard;
        let swarm = &self.swarm;
        let dials = self
            .dialer
            .due(now, |p| swarm.is_connected(p), |p| guard.is_banned(p, now));
        self.start_dials(dials, now);
        Ok(())
    }

    /// Ends each room's join wait early when discovery has had [`NEWCOMER_WAIT`] and everyone
    /// reached has said hello about it: the room then knows whether anyone has a past to catch
    /// up with.
    fn maybe_end_waits(&mut self, now: Instant) {
        for j in &mut self.rooms {
            if !j.room.is_waiting() || now < j.started_at + NEWCOMER_WAIT || j.hellos.is_empty() {
                continue;
            }
            if j.hellos.values().all(|h| *h != HelloState::Pending) {
                j.room.end_wait_among_newcomers(wall_now());
            }
        }
    }
}
