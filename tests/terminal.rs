//! The node on a terminal in line mode (`--plain`), as a person runs it: a pseudo-terminal
//! (tests/common/pty.rs) with the line editor reading it, talking over loopback to a `--json`
//! peer. The full-screen chat has its own tests (tests/screen.rs).

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
    args.push("--plain");
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
        alice.wait_for_bytes(
            &format!("SIG{sig}: bracketed paste switched off last"),
            |b| find_last(b, b"\x1b[?2004l") > find_last(b, b"\x1b[?2004h"),
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

/// A warning meant for the user (here: the same name started twice on one machine, so the key
/// file is locked) is shown as a readable notice above the prompt: words and useful fields, no
/// colour codes, no target path or timestamp; the prompt stays usable.
#[test]
fn a_warning_is_a_readable_notice_above_the_prompt() {
    let shared = std::env::temp_dir().join(format!("chitty-pty-shared-{}", std::process::id()));
    let mut cmd = std::process::Command::new(common::bin());
    cmd.args(["--json", "--username", "alice"])
        .args(LOCAL)
        .env("XDG_DATA_HOME", &shared);
    let mut first = Node::start("alice", cmd);
    let addr = first.loopback_addr();
    first.wait_join("alice");

    let mut cmd = std::process::Command::new(common::bin());
    cmd.args(["--plain", "--username", "alice", "--connect", &addr])
        .args(LOCAL)
        .env("XDG_DATA_HOME", &shared);
    let mut second = Pty::start(cmd, shared);
    let sentence =
        "System: warning: identity in use by another process; using a new key for this run";
    let screen = second.wait_for_text(sentence);
    let line = screen
        .lines()
        .find(|l| l.contains(sentence))
        .unwrap_or_default()
        .to_owned();
    for noise in ["WARN", "chitty_node::", "Z "] {
        assert!(!line.contains(noise), "{noise:?} in the notice: {line:?}");
    }
    let bytes = second.bytes();
    let at = bytes
        .windows(sentence.len())
        .position(|w| w == sentence.as_bytes())
        .unwrap_or_else(|| second.fail("the notice is not in the output"));
    let end = bytes[at..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |i| at + i);
    assert!(
        !bytes[at..end].contains(&0x1b),
        "an escape code in the notice: {:?}",
        String::from_utf8_lossy(&bytes[at..end])
    );

    second.wait_for_prompt();
    second.send(b"still here\r");
    first.wait_message("alice", "still here");
    second.wait_for_text("still here");
    second.wait_for_prompt();
}

/// `NO_COLOR` keeps colour codes off a terminal's stderr (without the line editor, `--json`).
#[test]
fn no_color_means_no_colour_codes_on_a_terminal() {
    let data = std::env::temp_dir().join(format!("chitty-pty-nocolor-{}", std::process::id()));
    let mut cmd = std::process::Command::new(common::bin());
    cmd.args(["--json", "-v", "--username", "alice"])
        .args(LOCAL)
        .env("XDG_DATA_HOME", &data)
        .env("NO_COLOR", "1");
    let pty = Pty::start(cmd, data);
    pty.wait_for_text("listening");
    assert!(
        find_last(&pty.bytes(), b"\x1b[").is_none(),
        "{:?}",
        String::from_utf8_lossy(&pty.bytes())
    );
}
