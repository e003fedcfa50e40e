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
/// A signal from another process (SIGTERM, SIGINT, SIGHUP) while the line editor reads is a
/// leave: exit code 0, and the terminal is handed back in the modes it had before.
#[test]
fn a_signal_while_reading_leaves_and_restores_the_terminal() {
    for sig in ["TERM", "INT", "HUP"] {
        let mut alice = on_terminal("alice", None, &[]);
        alice.wait_for_text("Participant alice joined");
        alice.wait_for_prompt();
        alice.send(b"half a li");
        alice.wait_for_text("> half a li");
        assert_ne!(
            alice.modes(),
            alice.initial,
            "the line editor reads in raw mode"
        );
        alice.signal(sig);
        let status = alice.wait_exit();
        assert!(
            status.success(),
            "SIG{sig}: exit {status:?}\n{}",
            alice.screen()
        );
        assert_eq!(
            alice.modes(),
            alice.initial,
            "SIG{sig}: the terminal's modes after exit"
        );
        let bytes = alice.bytes();
        let on = find_last(&bytes, b"\x1b[?2004h");
        let off = find_last(&bytes, b"\x1b[?2004l");
        assert!(
            off > on,
            "SIG{sig}: bracketed paste is switched off at the end"
        );
    }
}

fn find_last(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// Waits until `texts` are on the screen as alice's lines, in this order, and under the prompt
/// line nothing is left over.
fn wait_lines_in_order(pty: &Pty, texts: &[&str]) {
    pty.wait_for_screen(&format!("alice's lines {texts:?} in order"), |s| {
        let mut from = 0;
        texts.iter().all(|t| {
            let line = format!("alice: {t}\n");
            match s[from..].find(&line) {
                Some(i) => {
                    from += i + line.len();
                    true
                }
                None => false,
            }
        })
    });
}

/// Waits until the peer has every line of `texts` from alice, stamped in this order.
fn wait_messages_in_order(peer: &mut Node, texts: &[&str]) {
    let stamps: Vec<u64> = texts
        .iter()
        .map(|t| peer.wait_message("alice", t))
        .collect();
    assert!(
        stamps.windows(2).all(|w| w[0] < w[1]),
        "{texts:?} stamped {stamps:?}"
    );
}

/// A paste of several lines sends every line, in order: as terminals paste (bracketed, the
/// lines inside one paste, then Enter) and as a plain burst of lines written at once.
#[test]
fn every_pasted_line_is_sent_in_order() {
    let (mut bob, addr) = peer("bob");
    let mut alice = on_terminal("alice", Some(&addr), &[]);
    bob.wait_join("alice");
    alice.wait_for_text("Participant alice joined");
    alice.wait_for_prompt();

    alice.send(b"\x1b[200~one\ntwo\n\nthree\x1b[201~\r");
    wait_messages_in_order(&mut bob, &["one", "two", "three"]);
    wait_lines_in_order(&alice, &["one", "two", "three"]);

    alice.send(b"four\rfive\rsix\r");
    wait_messages_in_order(&mut bob, &["four", "five", "six"]);
    wait_lines_in_order(&alice, &["four", "five", "six"]);
    assert!(
        !alice.screen().contains("Error"),
        "nothing refused:\n{}",
        alice.screen()
    );

    // Too long a paste is refused whole, and says so.
    let lines = vec!["spam"; 65].join("\n");
    alice.send(format!("\x1b[200~{lines}\x1b[201~\r").as_bytes());
    alice.wait_for_text("Error: a paste of 65 lines is more than 64; nothing sent");
}
