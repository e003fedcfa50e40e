//! Honest nodes for the liar tests, and what they show: loopback `chitty-node --json`
//! processes, rooms of two or three, `/who`, the lines of one author, and waits that end on
//! whichever of a node and the liar sees the outcome first.

use std::time::{Duration, Instant};

use libp2p::PeerId;

use super::wire::{Author, HelloMsg, Signed, backlog, now_ms};
use super::{Cmd, Liar, Seen};
use crate::common::{Node, TIMEOUT};

/// Node flags for loopback tests: no mDNS, a random port on 127.0.0.1.
pub const LOCAL: &[&str] = &["--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"];

/// Starts an honest `chitty-node --json` on loopback, with `extra` flags.
pub fn honest(name: &str, extra: &[&str]) -> Node {
    let args: Vec<&str> = LOCAL.iter().chain(extra).copied().collect();
    Node::spawn(name, &args)
}

/// Starts a hub (`--relay`) on loopback, its key in its own data directory.
pub fn hub() -> Node {
    let mut c = std::process::Command::new(crate::common::bin());
    c.args(["--json", "--relay", "--listen", "/ip4/127.0.0.1/tcp/0"]);
    Node::start("hub", c)
}

/// The peer id a node printed in its `ready` line.
pub fn peer_of(n: &mut Node) -> PeerId {
    n.ready().0.parse().expect("a node's peer id")
}

/// Three honest nodes in a star: bob and carol `--connect` to alice; every one has seen every
/// join. Returns alice, her address, bob and carol.
pub fn star() -> (Node, String, Node, Node) {
    let mut a = honest("alice", &[]);
    let addr = a.loopback_addr();
    a.wait_join("alice");
    let mut b = honest("bob", &["--connect", &addr]);
    b.wait_join("bob");
    let mut c = honest("carol", &["--connect", &addr]);
    c.wait_join("carol");
    a.wait_join("bob");
    a.wait_join("carol");
    c.wait_join("bob");
    b.wait_join("carol");
    (a, addr, b, c)
}

/// Two honest nodes: bob `--connect`s to alice. Returns alice, her address and bob.
pub fn pair() -> (Node, String, Node) {
    let mut a = honest("alice", &[]);
    let addr = a.loopback_addr();
    let mut b = honest("bob", &["--connect", &addr]);
    b.wait_join("bob");
    a.wait_join("bob");
    b.wait_join("alice");
    (a, addr, b)
}

/// The chat lines (joins, messages, leaves, live or caught up) a node showed from `peer`.
pub fn lines_by<'a>(n: &'a Node, peer: &PeerId) -> Vec<&'a serde_json::Value> {
    let id = peer.to_base58();
    n.seen()
        .iter()
        .filter(|v| {
            ["join", "message", "leave"].contains(&v["type"].as_str().unwrap_or_default())
                && v["peer"] == id.as_str()
        })
        .collect()
}

/// The highest stamp of any chat line a node showed.
pub fn highest_stamp(n: &Node) -> u64 {
    n.seen()
        .iter()
        .filter(|v| ["join", "message", "leave"].contains(&v["type"].as_str().unwrap_or_default()))
        .filter_map(|v| v["lamport"].as_u64())
        .max()
        .unwrap_or(0)
}

/// Asks a node for `/who` and returns the names it lists.
pub fn who(n: &mut Node) -> Vec<String> {
    let from = n.seen().len();
    n.send("/who");
    n.wait_until("/who", |seen| {
        seen.get(from..)?
            .iter()
            .find(|v| v["type"] == "who")
            .map(|w| {
                w["participants"]
                    .as_array()
                    .map(|l| {
                        l.iter()
                            .filter_map(|p| p["user"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default()
            })
    })
}

/// The last 8 characters of a peer id, as nodes show them.
pub fn short(peer: &PeerId) -> String {
    let s = peer.to_base58();
    s[s.len() - 8..].to_owned()
}

/// Whether a node said it cut `peer` off (a notice naming it).
pub fn said_cut_off(n: &Node, peer: &PeerId) -> bool {
    let short = short(peer);
    n.seen().iter().any(|v| {
        v["type"] == "notice"
            && v["text"]
                .as_str()
                .is_some_and(|t| t.contains("cut off") && t.contains(&short))
    })
}

/// A listening foreign peer that holds `authors` x `per_author` honest events (see
/// [`backlog`], said from 40 s ago) and serves them; it lists nobody (it is no participant).
pub fn historian(authors: usize, per_author: usize) -> (Liar, String, Vec<Author>, Vec<Signed>) {
    let (mut h, addr) = Liar::listening("historian");
    let (who, events) = backlog(authors, per_author, now_ms() - 40_000);
    let top = events.iter().map(|e| e.lamport).max().unwrap_or(0);
    h.send(Cmd::Serve(events.clone()));
    h.send(Cmd::SetHello(HelloMsg::new(top, vec![])));
    h.drain();
    (h, addr, who, events)
}

/// Waits until a node has shown `n` chat lines by any of `authors`.
pub fn wait_lines_by(node: &mut Node, authors: &[Author], n: usize) {
    let ids: Vec<String> = authors.iter().map(|a| a.peer.to_base58()).collect();
    node.wait_until(&format!("{n} lines by the backlog's authors"), |seen| {
        let count = seen
            .iter()
            .filter(|v| {
                ["join", "message"].contains(&v["type"].as_str().unwrap_or_default())
                    && v["peer"]
                        .as_str()
                        .is_some_and(|p| ids.iter().any(|i| i == p))
            })
            .count();
        (count >= n).then_some(())
    });
}

/// Waits until `node` shows a line `shown` picks, or `liar` reports what `reported` picks,
/// whichever comes first (at most [`TIMEOUT`]); says which. For outcomes that show on either
/// side: a lie taken shows on the node, a liar cut off shows on the liar's connections.
pub fn until_either(
    node: &mut Node,
    liar: &mut Liar,
    what: &str,
    shown: impl Fn(&serde_json::Value) -> bool,
    reported: impl Fn(&Seen) -> bool,
) -> Either {
    let until = Instant::now() + TIMEOUT;
    let slice = Duration::from_millis(100);
    loop {
        if node.seen().iter().any(&shown) {
            return Either::Shown;
        }
        liar.drain();
        if liar.seen.iter().any(&reported) {
            return Either::Reported;
        }
        if Instant::now() >= until {
            node.fail(&format!("timed out waiting for {what}"));
        }
        // Reads the node's lines for a moment (this is the wait's polling, not a sleep).
        node.watch(slice);
    }
}

/// Which side [`until_either`] saw first.
#[derive(Debug, PartialEq, Eq)]
pub enum Either {
    /// The node showed it.
    Shown,
    /// The liar reported it.
    Reported,
}
