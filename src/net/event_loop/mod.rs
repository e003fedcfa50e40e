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
use crate::core::command::UserCommand;
use crate::core::event::{Body, ChatEvent, LinkView, RoomName, SignedEvent, Username};
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

/// What the node needs to run.
#[derive(Debug)]
pub struct NodeConfig {
    /// The history database, if this node keeps one (docs/ARCHITECTURE.md, "The store").
    pub store: Option<crate::store::Store>,
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
    /// A private room: its secret and keys (docs/PROTOCOL.md section 14).
    pub private: Option<crate::private::PrivateRoom>,
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
    /// Offences and bans, and what each peer's requests may cost us.
    guard: Guard,
    /// The connections to each peer, to keep one.
    one_link: super::one_link::OneLink,
    /// Second connections to close, and when ([`DUPLICATE_GRACE`]).
    duplicates: Vec<(libp2p::swarm::ConnectionId, Instant)>,
    /// History exchanges under way (one at a time per peer), by request id.
    paging: Paging<request_response::OutboundRequestId, ()>,
    /// Anti-entropy: when to ask the next room peer, in turn, what we lack.
    rounds: Rounds,
    /// The hubs of our room we are connected to.
    hubs: HubClient,
    /// Set once our leave is stamped.
    leaving: Option<Leaving>,
    /// An error that ends the node once the leave is out.
    fatal: Option<NetError>,
    /// Reports for the user made where nothing can be awaited, shown at the next turn.
    reports: Vec<ChatEvent>,
    /// Whether the loop woke much later than planned (the node was stopped or starved).
    stall: Stall,
    /// Host names of `--connect` targets resolved on blocking threads, back to the loop.
    resolutions: (mpsc::Sender<Resolution>, mpsc::Receiver<Resolution>),
    /// Live events dropped over their author's rate, until sync has had its chance.
    drops: DropWatch,
    /// The store's thread, if we keep history on disk.
    store: Option<crate::store::Kept>,
    /// The end of our stored history, shown right after `ready`.
    stored: Vec<ChatEvent>,
    /// A private room's secret and keys: every event received is opened with them, and
    /// tickets carry the secret.
    private: Option<crate::private::PrivateRoom>,
    /// The `--connect` addresses (a hub's, most likely), for tickets.
    connect: Vec<Multiaddr>,
    /// A private room's display name, for tickets.
    room_name: Option<RoomName>,
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
    /// Builds the swarm, starts listening and subscribes to the room's topic.
    pub fn new(
        config: NodeConfig,
        commands: mpsc::Receiver<UserCommand>,
        events: mpsc::Sender<ChatEvent>,
    ) -> Result<Self, NetError> {
        let mut swarm = build_swarm(&config.keypair, config.mdns, false)?;
        let me = *swarm.local_peer_id();
        let tcp_listeners = super::swarm::listen_all(&mut swarm, &config.listen)?;
        let mut room = Room::new(RoomConfig {
            keypair: config.keypair.clone(),
            user: config.user.clone(),
            room: config.room.clone(),
            private: config.private.as_ref().map(|p| p.keys.clone()),
            history: config.history,
            join_grace: config.join_grace,
            first_seq: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2))
                .unwrap_or(0),
            max_rate: config.max_rate,
        });
        // Our earlier history, read back before anything happens: shown right after `ready`,
        // marked as stored, and sync then asks peers only for what it lacks.
        let mut stored = Vec::new();
        let store = match config.store {
            Some(store) => {
                let kept = crate::store::Kept::open(store, config.history)?;
                let (events, holds) = kept.read_back(room.topic())?;
                let events = unseal_all(config.private.as_ref(), events);
                info!(
                    events = events.len(),
                    authors = holds.len(),
                    "history read from the store"
                );
                stored = room.restore(events, &holds, STORED_SHOWN);
                Some(kept)
            }
            None => None,
        };
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
            guard: Guard::default(),
            one_link: super::one_link::OneLink::new(me),
            duplicates: Vec::new(),
            paging: Paging::default(),
            rounds: Rounds::new(Instant::now()),
            hubs: HubClient::default(),
            leaving: None,
            fatal: None,
            reports: Vec::new(),
            stall: Stall::default(),
            resolutions: mpsc::channel(RESOLUTIONS_CAP),
            drops: DropWatch::default(),
            store,
            stored,
            private: config.private,
            connect: config.connect.clone(),
            room_name: config.room.name().map(|_| config.room.clone()),
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
                        if matches!(cmd, UserCommand::Say(_)) {
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
            UserCommand::Search(words) => self.search(words).await?,
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
            UserCommand::Invite => match self.ticket() {
                Some(t) => self.emit(ChatEvent::Ticket(t)).await?,
                None => {
                    self.emit(ChatEvent::Error(
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
            UserCommand::History(last) if self.room.cold_below().is_some() => {
                let older = self.stored_before(last);
                self.room.show_history_with(older, last);
            }
            cmd => self.room.handle_command(cmd, Instant::now(), wall_now()),
        }
        Ok(())
    }

    /// For `/history [N]`: the stored events older than memory holds, as many as the command
    /// wants beyond memory (all kept, without N), read on this thread (one indexed read).
    fn stored_before(&self, last: Option<usize>) -> Vec<SignedEvent> {
        let (Some(store), Some(below)) = (&self.store, self.room.cold_below()) else {
            return Vec::new();
        };
        let want = last.map_or(usize::MAX, |n| {
            n.saturating_sub(self.room.transcript().len())
        });
        if want == 0 {
            return Vec::new();
        }
        let events = store
            .before(self.room.topic(), below.as_ref(), want)
            .unwrap_or_else(|e| {
                warn!(error = %e, "stored history cannot be read");
                Vec::new()
            });
        unseal_all(self.private.as_ref(), events)
    }

    /// A private room's event opened with the room's key (a public room's as it is); what
    /// does not open is its author's fault.
    fn unseal(&self, signed: SignedEvent) -> Result<SignedEvent, Unsealed> {
        match &self.private {
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
    fn ticket(&self) -> Option<String> {
        let p = self.private.as_ref()?;
        let mut addrs = self.listening.clone();
        addrs.extend(self.swarm.external_addresses().cloned());
        let mut addrs: Vec<Multiaddr> = super::swarm::full_addresses(&addrs, self.me)
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect();
        addrs.extend(self.connect.iter().cloned());
        let ticket = crate::private::ticket::Ticket {
            secret: p.secret.clone(),
            name: self.room_name.clone(),
            addrs,
        };
        Some(ticket.encode())
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
        if !self.started
            && self.private.as_ref().is_some_and(|p| p.made)
            && let Some(t) = self.ticket()
        {
            self.emit(ChatEvent::Ticket(t)).await?;
        }
        for event in std::mem::take(&mut self.stored) {
            self.emit(event).await?;
        }
        if !self.started {
            self.started = true;
            let expect_peers = self.mdns || self.dialer.has_targets();
            self.room.start(Instant::now(), wall_now(), expect_peers);
            self.started_at = Instant::now();
        }
        Ok(())
    }

    /// `/search`: asked of the store's thread; the answer goes to the ui when it comes, so the
    /// loop never waits for the disk.
    async fn search(&mut self, words: Vec<String>) -> Result<(), NetError> {
        let Some(store) = &mut self.store else {
            return self
                .emit(ChatEvent::Error(
                    "no history is stored in this run (--no-store, or the database is in use by another node); nothing to search"
                        .to_owned(),
                ))
                .await;
        };
        if self.private.is_some() {
            return self
                .emit(ChatEvent::Error(
                    "a private room's history is stored sealed, not indexed: /search finds nothing in it".to_owned(),
                ))
                .await;
        }
        let query = words.join(" ");
        let answer = store
            .writer()
            .search(self.room.topic(), words, SEARCH_RESULTS);
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
            let _ = events.send(event).await;
        });
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
        // What the room took is handed to the store's thread; it writes off this path.
        if let Some(store) = &mut self.store {
            store.writer().append(&self.room.drain_kept());
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
                    self.emit(ev).await?
                }
                Output::Publish(ev) => self.publish(&ev).await?,
                Output::Offence { peer, reason } => {
                    self.offence(peer, &reason, Instant::now()).await?
                }
            }
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
            self.leaving.is_none().then(|| self.rounds.poll_timeout()),
            self.drops.poll_timeout(),
            self.stall.poll_timeout(),
            // Only while it is ahead: past it, hellos (not the clock) end the wait.
            Some(self.started_at + NEWCOMER_WAIT)
                .filter(|t| self.room.is_waiting() && *t > Instant::now()),
            self.alive.poll_timeout(),
            self.hubs.poll_timeout().filter(|_| self.leaving.is_none()),
            self.duplicates.iter().map(|d| d.1).min(),
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
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.duplicates)
            .into_iter()
            .partition(|d| d.1 <= now);
        self.duplicates = later;
        for (dup, _) in due {
            debug!(connection = ?dup, "closing a second connection to a peer");
            self.swarm.close_connection(dup);
        }
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
        for peer in self.stall.recovered(now) {
            // Still unreachable after our stall's window: it really is gone (or cut off).
            if !self.swarm.is_connected(&peer) && self.leaving.is_none() {
                self.room.peer_gone(peer, now, wall_now());
            }
        }
        if self.leaving.is_some() {
            return Ok(());
        }
        self.hub_timers(now);
        let room_peers = self
            .links
            .iter()
            .filter(|(_, l)| l.hello == HelloState::Room)
            .map(|(p, _)| *p)
            .collect();
        if let Some(peer) = self.rounds.due(now, room_peers) {
            self.start_sync(peer);
        }
        let guard = &self.guard;
        let swarm = &self.swarm;
        let dials = self
            .dialer
            .due(now, |p| swarm.is_connected(p), |p| guard.is_banned(p, now));
        self.start_dials(dials, now);
        Ok(())
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
}
