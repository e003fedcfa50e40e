//! The node on a terminal, as a person runs it: a pseudo-terminal (tests/common/pty.rs) with the
//! line editor reading it, talking over loopback to a `--json` peer.

mod common;

use common::Node;
use common::pty::Pty;

const LOCAL: &[&str] = &["--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"];

/// A `--json` peer on loopback and its address.
fn peer(name: &str) -> (Node, String) {
    let mut n = Node::spawn(name, LOCAL);
    let addr = n.loopback_addr();
    (n, addr)
}

/// A node on a terminal, connected to `addr` when given.
fn on_terminal(name: &str, connect: Option<&str>, extra: &[&str]) -> Pty {
    let mut args: Vec<&str> = LOCAL.to_vec();
    if let Some(a) = connect {
        args.extend(["--connect", a]);
    }
    args.extend(extra);
    Pty::spawn(name, &args)
}

/// A line typed at the prompt reaches a peer, and the typist's screen shows it.
#[test]
fn a_typed_line_is_sent_and_shown() {
    let (mut bob, addr) = peer("bob");
    let alice = on_terminal("alice", Some(&addr), &[]);
    bob.wait_join("alice");
    alice.wait_for_text("Participant alice joined");
    alice.wait_for_prompt();
    let mut alice = alice;
    alice.send(b"hello bob\r");
    bob.wait_message("alice", "hello bob");
    alice.wait_for_text("alice: hello bob");
}
