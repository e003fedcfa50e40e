//! A foreign peer written from docs/PROTOCOL.md alone: plain libp2p (TCP, Noise, Yamux,
//! anonymous gossipsub, identify, ping, two request-response protocols of raw CBOR), events
//! built as `serde_cbor` values and signed with `libp2p::identity` ed25519 keys. None of
//! chitty-node's types are used, so what it sends is what a stranger implementing the document
//! would send.
//!
//! It speaks the protocol correctly (it answers hellos with its own, serves history by the
//! asker's summary in pages, forwards gossip) and can lie in any field it is told to: its clock
//! in a hello, who it lists, the stamps and times of events it signs, for its own key or keys it
//! invents, and how much history it offers.
//!
//! The peer runs on a thread of its own, driven by [`Cmd`]s over a bounded channel, and reports
//! what it sees ([`Seen`]) over another; [`Liar`] is the test's handle, whose waits all have a
//! timeout.
//!
//! Layout: [`wire`] builds and reads what the document specifies (events, hellos, sync
//! messages); [`peer`] is the task that drives the swarm; [`room`] starts honest nodes and
//! reads what they show; this file holds the commands, the reports and the test's handle.

mod peer;
pub mod room;
pub mod wire;

use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId, StreamProtocol};
use tokio::sync::mpsc;

use super::TIMEOUT;
use peer::run;
pub use wire::*;

/// The default room's topic (docs/PROTOCOL.md section 3).
pub const TOPIC: &str = "chitty-chat";
/// The hello protocol (section 4).
pub const HELLO: StreamProtocol = StreamProtocol::new("/chitty-chat/hello/1");
/// The sync protocol (section 6).
pub const SYNC: StreamProtocol = StreamProtocol::new("/chitty-chat/sync/1");
/// The signing context of version 2 (section 5).
const CONTEXT: &[u8] = b"chitty-chat/event/2:";
/// Most events per sync page (section 6).
pub const PAGE: usize = 256;
/// Most bytes of events per sync page (section 6).
const PAGE_BYTES: usize = 256 * 1024;
/// Capacity of the command channel.
const CMD_CAP: usize = 256;
/// Capacity of the report channel; reports beyond it are counted as lost, never waited for
/// (a liar that stopped driving its swarm would stop answering pings and be dropped for that).
const SEEN_CAP: usize = 16 * 1024;
/// How long the liar waits for an answer to a request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Within this long of its opening, a connection closed by the other side was "closed at once".
pub const AT_ONCE: Duration = Duration::from_secs(3);

/// What the liar is told to do.
pub enum Cmd {
    /// Dial this address.
    Dial(Multiaddr),
    /// The hello it sends on every new connection and answers every hello with.
    SetHello(HelloMsg),
    /// Send this hello as a request to `to` (an extra one: several may go on one connection);
    /// its answer, or its failure, is reported with `tag`.
    Hello {
        to: PeerId,
        hello: HelloMsg,
        tag: u64,
    },
    /// Publish these bytes on the topic.
    Publish(Vec<u8>),
    /// Hold these events as history and serve them to sync requests.
    Serve(Vec<Signed>),
    /// Send a sync request, as raw CBOR, to `to`.
    Sync { to: PeerId, request: Vec<u8> },
    /// Subscribe to another topic.
    Subscribe(String),
    /// Close every connection to `peer`.
    Disconnect(PeerId),
    /// Report the liar's clock: the highest stamp it has seen (hellos and events).
    Clock(std_mpsc::SyncSender<u64>),
}

/// What the liar saw.
#[derive(Clone, Debug)]
pub enum Seen {
    /// It listens here.
    Listening(Multiaddr),
    /// A connection to `peer` opened (`dialer`: the liar dialled it).
    Connected {
        peer: PeerId,
        dialer: bool,
        at: Instant,
    },
    /// A connection to `peer` closed; `remaining` connections are left.
    Closed {
        peer: PeerId,
        remaining: u32,
        at: Instant,
    },
    /// A dial failed.
    DialFailed { peer: Option<PeerId>, error: String },
    /// `peer` subscribed to `topic`.
    Subscribed { peer: PeerId, topic: String },
    /// A hello from `peer`: a request it sent (`response` false) or its answer to ours (with
    /// the tag of a [`Cmd::Hello`]; none for the hello of a new connection).
    Hello {
        peer: PeerId,
        hello: HelloMsg,
        response: bool,
        tag: Option<u64>,
    },
    /// A hello from `peer` that the liar could not read (`tag` as in [`Seen::Hello`]).
    BadHello {
        peer: PeerId,
        error: String,
        tag: Option<u64>,
    },
    /// A request of ours to `peer` went unanswered (`protocol` hello or sync; `tag` that of a
    /// [`Cmd::Hello`]).
    Unanswered {
        peer: PeerId,
        protocol: &'static str,
        error: String,
        tag: Option<u64>,
    },
    /// `peer` sent a sync request the liar could not read (it answered with no events).
    BadRequest { peer: PeerId, error: String },
    /// `peer` asked for history; the liar served `events`, `more` after them.
    SyncAsked {
        peer: PeerId,
        events: usize,
        more: bool,
    },
    /// `peer` answered a sync request of ours.
    SyncPage {
        peer: PeerId,
        events: usize,
        more: bool,
        max_lamport: u64,
    },
    /// A live event forwarded by `via`.
    Gossip { via: PeerId, event: Read },
    /// A gossip message from `via` that is no event the liar can read.
    Garbage { via: PeerId, error: String },
    /// A sniffer's report of a gossip message, as it came.
    Raw { topic: String, data: Vec<u8> },
}

/// Moves this thread (only: a network namespace is per thread) into the named network
/// namespace, so that its sockets are that host's.
fn enter_namespace(name: &str) {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(format!("/var/run/netns/{name}")).expect("the namespace exists");
    // SAFETY: setns on a valid descriptor of a network namespace; it changes this thread only.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

/// The test's handle on a running liar.
pub struct Liar {
    /// Its own author (key, name, counter).
    pub me: Author,
    cmds: mpsc::Sender<Cmd>,
    seen_rx: std_mpsc::Receiver<Seen>,
    /// Everything reported so far.
    pub seen: Vec<Seen>,
    next_tag: u64,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Liar {
    /// Starts a liar named `user` (the name it signs with), not listening.
    pub fn spawn(user: &str) -> Liar {
        Liar::start(Author::new(user), false, None)
    }

    /// Starts a sniffer: a plain gossipsub peer in network namespace `namespace` that reports
    /// every gossip message it gets as it came ([`Seen::Raw`]), and whom the test may tell to
    /// subscribe to every topic it sees.
    pub fn sniffer(namespace: &str) -> Liar {
        Liar::start(Author::new("sniffer"), false, Some(namespace.to_owned()))
    }

    /// Starts a liar that also listens on 127.0.0.1; returns it with its address
    /// (`/ip4/127.0.0.1/tcp/PORT/p2p/ID`).
    pub fn listening(user: &str) -> (Liar, String) {
        let mut l = Liar::start(Author::new(user), true, None);
        let addr = l.wait("a listen address", |s| match s {
            Seen::Listening(a) => Some(a.clone()),
            _ => None,
        });
        let peer = l.me.peer;
        (l, format!("{addr}/p2p/{peer}"))
    }

    fn start(me: Author, listen: bool, namespace: Option<String>) -> Liar {
        let (cmds, cmd_rx) = mpsc::channel(CMD_CAP);
        let (seen_tx, seen_rx) = std_mpsc::sync_channel(SEEN_CAP);
        let key = me.key();
        let raw = namespace.is_some();
        let thread = std::thread::spawn(move || {
            if let Some(ns) = namespace {
                enter_namespace(&ns);
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime for the liar");
            rt.block_on(run(key, listen, raw, cmd_rx, seen_tx));
        });
        Liar {
            me,
            cmds,
            seen_rx,
            seen: Vec::new(),
            next_tag: 0,
            thread: Some(thread),
        }
    }

    /// Its peer id.
    pub fn peer(&self) -> PeerId {
        self.me.peer
    }

    /// Sends a command (waits while the channel is full).
    pub fn send(&self, cmd: Cmd) {
        if self.cmds.blocking_send(cmd).is_err() {
            panic!("the liar's task has ended");
        }
    }

    /// Dials `addr` (a multiaddr string).
    pub fn dial(&self, addr: &str) {
        self.send(Cmd::Dial(addr.parse().expect("a multiaddr")));
    }

    /// Sends `hello` to `to` as a request of its own; returns the tag its answer will carry.
    pub fn hello(&mut self, to: PeerId, hello: HelloMsg) -> u64 {
        self.next_tag += 1;
        let tag = self.next_tag;
        self.send(Cmd::Hello { to, hello, tag });
        tag
    }

    /// Waits for the answer to the hello tagged `tag`: the hello, or why there was none.
    pub fn answer(&mut self, tag: u64) -> Result<HelloMsg, String> {
        self.wait_until(&format!("the answer to hello {tag}"), TIMEOUT, |seen| {
            seen.iter().find_map(|s| match s {
                Seen::Hello {
                    hello,
                    tag: Some(t),
                    ..
                } if *t == tag => Some(Ok(hello.clone())),
                Seen::Unanswered {
                    error,
                    tag: Some(t),
                    ..
                }
                | Seen::BadHello {
                    error,
                    tag: Some(t),
                    ..
                } if *t == tag => Some(Err(error.clone())),
                _ => None,
            })
        })?
    }

    /// Sends `hello` to `to` and waits for its answer; panics without one.
    pub fn hello_answered(&mut self, to: PeerId, hello: HelloMsg) -> HelloMsg {
        let tag = self.hello(to, hello);
        self.answer(tag)
            .unwrap_or_else(|e| panic!("{to} did not answer the liar's hello: {e}"))
    }

    /// Publishes a signed event.
    pub fn publish(&self, e: &Signed) {
        self.send(Cmd::Publish(e.bytes.clone()));
    }

    /// The highest stamp the liar has seen.
    pub fn clock(&self) -> u64 {
        let (tx, rx) = std_mpsc::sync_channel(1);
        self.send(Cmd::Clock(tx));
        rx.recv_timeout(TIMEOUT)
            .expect("the liar reports its clock")
    }

    /// Takes reports until `until`; false when none came in time.
    fn pull(&mut self, until: Instant) -> bool {
        let left = until.saturating_duration_since(Instant::now());
        match self.seen_rx.recv_timeout(left) {
            Ok(s) => {
                self.seen.push(s);
                true
            }
            Err(_) => false,
        }
    }

    /// The reports taken so far, from index `from`.
    pub fn seen_since(&self, from: usize) -> &[Seen] {
        self.seen.get(from..).unwrap_or_default()
    }

    /// Takes every report that has come, without waiting.
    pub fn drain(&mut self) {
        while let Ok(s) = self.seen_rx.try_recv() {
            self.seen.push(s);
        }
    }

    /// Waits until `check` finds what it wants among the reports (all of them, from the
    /// start), at most `within`.
    pub fn wait_until<T>(
        &mut self,
        what: &str,
        within: Duration,
        mut check: impl FnMut(&[Seen]) -> Option<T>,
    ) -> Result<T, String> {
        let until = Instant::now() + within;
        loop {
            if let Some(t) = check(&self.seen) {
                return Ok(t);
            }
            if !self.pull(until) {
                return check(&self.seen).ok_or_else(|| {
                    format!("the liar timed out after {within:?} waiting for {what}")
                });
            }
        }
    }

    /// Waits for the first report (from index `from`) that `pick` picks; panics after
    /// [`TIMEOUT`].
    pub fn wait_from<T>(
        &mut self,
        what: &str,
        from: usize,
        pick: impl Fn(&Seen) -> Option<T>,
    ) -> T {
        self.wait_until(what, TIMEOUT, |seen| {
            seen.get(from..).and_then(|s| s.iter().find_map(&pick))
        })
        .unwrap_or_else(|e| panic!("{e}; saw: {:?}", self.summary()))
    }

    /// Waits for the first report that `pick` picks; panics after [`TIMEOUT`].
    pub fn wait<T>(&mut self, what: &str, pick: impl Fn(&Seen) -> Option<T>) -> T {
        self.wait_from(what, 0, pick)
    }

    /// A short account of the reports, for failure messages.
    pub fn summary(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in &self.seen {
            let line = match s {
                Seen::Gossip { event, .. } => format!(
                    "gossip {} {} [{}] {:?}",
                    event.kind, event.user, event.lamport, event.text
                ),
                Seen::Hello {
                    hello, response, ..
                } => format!(
                    "hello{} topic {} lamport {} participants {:?}",
                    if *response { " answer" } else { "" },
                    hello.topic,
                    hello.lamport,
                    hello
                        .participants
                        .iter()
                        .map(|p| &p.user)
                        .collect::<Vec<_>>()
                ),
                other => format!("{other:?}"),
            };
            out.push(line);
        }
        if out.len() > 80 {
            let tail = out.split_off(out.len() - 60);
            out.truncate(20);
            out.push("...".into());
            out.extend(tail);
        }
        out
    }

    /// Waits until `peer` has a connection open with the liar and has subscribed to the room,
    /// and returns the clock it claimed in its hello.
    pub fn wait_room(&mut self, peer: PeerId) -> u64 {
        self.wait(&format!("{peer} subscribed"), |s| match s {
            Seen::Subscribed { peer: p, topic } if *p == peer && topic == TOPIC => Some(()),
            _ => None,
        });
        self.wait(&format!("a hello from {peer}"), |s| match s {
            Seen::Hello { peer: p, hello, .. } if *p == peer => Some(hello.lamport),
            _ => None,
        })
    }

    /// Dials `addr` (of `peer`) and waits for the room's subscription and hello there.
    pub fn join_room(&mut self, addr: &str, peer: PeerId) -> u64 {
        self.dial(addr);
        self.wait_room(peer)
    }

    /// Whether `peer` closed the liar's last connection to it (after report `from`).
    pub fn closed_by(&self, peer: PeerId, from: usize) -> bool {
        self.seen.get(from..).is_some_and(|s| {
            s.iter()
                .any(|s| matches!(s, Seen::Closed { peer: p, remaining: 0, .. } if *p == peer))
        })
    }

    /// Asserts that `peer` has cut the liar off: its connection is closed (waiting up to
    /// [`TIMEOUT`]), and a new dial to `addr` fails or is closed at once ([`AT_ONCE`]).
    pub fn assert_cut_off(&mut self, peer: PeerId, addr: &str, why: &str) {
        self.assert_cut_off_within(peer, addr, why, TIMEOUT);
    }

    /// Whether our last connection to `peer` closes within `within`.
    pub fn closed_within(&mut self, peer: PeerId, within: Duration) -> bool {
        self.wait_until("the connection closed", within, |seen| {
            seen.iter()
                .any(|s| matches!(s, Seen::Closed { peer: p, remaining: 0, .. } if *p == peer))
                .then_some(())
        })
        .is_ok()
    }

    /// As [`Liar::assert_cut_off`], waiting up to `within` for the connection to close.
    pub fn assert_cut_off_within(&mut self, peer: PeerId, addr: &str, why: &str, within: Duration) {
        let closed = self.wait_until("the connection closed", within, |seen| {
            seen.iter()
                .any(|s| matches!(s, Seen::Closed { peer: p, remaining: 0, .. } if *p == peer))
                .then_some(())
        });
        if let Err(e) = closed {
            panic!(
                "{why}: the liar was not cut off by {peer}: {e}; saw: {:?}",
                self.summary()
            );
        }
        self.assert_refused(peer, addr, why);
    }

    /// Asserts that a new dial from the liar to `addr` (of `peer`) fails or is closed at once.
    pub fn assert_refused(&mut self, peer: PeerId, addr: &str, why: &str) {
        let from = self.seen.len();
        self.dial(addr);
        let outcome = self.wait_until("the redial's outcome", TIMEOUT, |seen| {
            let new = seen.get(from..)?;
            if new.iter().any(|s| matches!(s, Seen::DialFailed { .. })) {
                return Some(Ok(()));
            }
            let opened = new.iter().find_map(|s| match s {
                Seen::Connected { peer: p, at, .. } if *p == peer => Some(*at),
                _ => None,
            })?;
            let closed = new.iter().find_map(|s| match s {
                Seen::Closed { peer: p, at, .. } if *p == peer => Some(*at),
                _ => None,
            });
            match closed {
                Some(c) if c.duration_since(opened) <= AT_ONCE => Some(Ok(())),
                Some(c) => Some(Err(format!(
                    "closed only after {:?}",
                    c.duration_since(opened)
                ))),
                None if opened.elapsed() > AT_ONCE => {
                    Some(Err(format!("still open after {AT_ONCE:?}")))
                }
                None => None,
            }
        });
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) | Err(e) => panic!(
                "{why}: a new connection from the liar to {peer} was not refused: {e}; saw: {:?}",
                self.summary()
            ),
        }
    }

    /// The live events the liar received.
    pub fn gossip(&self) -> Vec<&Read> {
        self.seen
            .iter()
            .filter_map(|s| match s {
                Seen::Gossip { event, .. } => Some(event),
                _ => None,
            })
            .collect()
    }
}

impl Drop for Liar {
    fn drop(&mut self) {
        // Closing the command channel ends the task (and its connections).
        let (dead, _) = mpsc::channel(1);
        self.cmds = dead;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
