//! The full-screen chat, as a person uses it: the real binary on a pseudo-terminal
//! (tests/common/pty.rs), its screen read by a terminal emulator (vt100), with two `--json`
//! peers on loopback for company. Waits are for what is on the screen, with timeouts.

mod common;

use common::Node;
use common::pty::{COLS, Pty, ROWS};

const LOCAL: &[&str] = &["--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"];

/// The status line: the row above the input line.
const STATUS: u16 = ROWS - 2;

/// Bob (with an address to connect to) and carol, connected to bob: `--json` peers.
fn company() -> (Node, Node, String) {
    let mut bob = Node::spawn("bob", LOCAL);
    let addr = bob.loopback_addr();
    let mut args = LOCAL.to_vec();
    args.extend(["--connect", &addr]);
    let mut carol = Node::spawn("carol", &args);
    bob.wait_join("carol");
    carol.wait_join("bob");
    (bob, carol, addr)
}

/// Alice on the chat screen, connected to `addr`, once she sees bob and carol in the pane.
fn alice(addr: &str, bob: &mut Node, carol: &mut Node) -> Pty {
    let mut args = LOCAL.to_vec();
    args.extend(["--connect", addr]);
    let alice = Pty::spawn("alice", &args);
    bob.wait_join("alice");
    carol.wait_join("alice");
    alice.wait_for_text("here: 3");
    alice
}

/// The screen's row `y`, as text.
fn row(pty: &Pty, y: u16) -> String {
    pty.with_screen(|s| s.rows(0, COLS).nth(usize::from(y)).unwrap_or_default())
}

/// The input line: the last row.
fn input(pty: &Pty) -> String {
    row(pty, ROWS - 1).trim_end().to_owned()
}

/// A line typed halfway stays whole on the input line while a burst of lines arrives, and goes
/// out whole when finished.
#[test]
fn a_half_typed_line_is_intact_while_a_burst_arrives() {
    let (mut bob, mut carol, addr) = company();
    let mut alice = alice(&addr, &mut bob, &mut carol);
    alice.send("half a lï".as_bytes());
    alice.wait_for_screen("the half line", |_| input(&alice) == "> half a lï");
    for i in 0..40 {
        carol.send(&format!("burst line {i}"));
    }
    alice.wait_for_text("carol: burst line 39");
    assert_eq!(input(&alice), "> half a lï");
    alice.send(b"ne\r");
    bob.wait_message("alice", "half a lïne");
    alice.wait_for_text("alice: half a lïne");
    assert_eq!(input(&alice), ">");
}

/// Scrolled up, the view holds still while lines arrive, and says how many are new; End goes
/// back to the newest.
#[test]
fn scrolling_up_holds_the_view_while_lines_arrive() {
    let (mut bob, mut carol, addr) = company();
    let mut alice = alice(&addr, &mut bob, &mut carol);
    for i in 0..60 {
        carol.send(&format!("early {i}"));
    }
    alice.wait_for_text("carol: early 59");
    // PageUp.
    alice.send(b"\x1b[5~");
    alice.wait_for_text("scrolled up; End or Esc");
    let held: Vec<String> = (0..ROWS - 4).map(|y| row(&alice, y)).collect();
    for i in 0..3 {
        bob.send(&format!("late {i}"));
    }
    alice.wait_for_text("3 new; End or Esc");
    let now: Vec<String> = (0..ROWS - 4).map(|y| row(&alice, y)).collect();
    assert_eq!(held, now, "the view moved");
    assert!(!alice.screen().contains("bob: late 2"));
    // End (on an empty input line).
    alice.send(b"\x1b[F");
    alice.wait_for_text("bob: late 2");
    assert!(!alice.screen().contains("End or Esc"));
}

/// Tab completes a participant's name, and a line naming us is highlighted.
#[test]
fn tab_completes_a_name_and_a_mention_is_highlighted() {
    let (mut bob, mut carol, addr) = company();
    let mut alice = alice(&addr, &mut bob, &mut carol);
    alice.send(b"ca\t");
    alice.wait_for_screen("the completed name", |_| input(&alice) == "> carol:");
    alice.send(b"hi\r");
    carol.wait_message("alice", "carol: hi");

    carol.send("hello alice, welcome");
    carol.send("an unrelated line");
    let screen = alice.wait_for_text("carol: an unrelated line");
    let y = screen
        .lines()
        .position(|l| l.contains("carol: hello alice"))
        .unwrap_or_else(|| alice.fail("the mention is not on screen"));
    let x = screen
        .lines()
        .nth(y)
        .and_then(|l| l.find("carol: hello"))
        .unwrap_or_default();
    let y = u16::try_from(y).unwrap();
    let x = u16::try_from(x).unwrap();
    let inverse =
        |y: u16, x: u16| alice.with_screen(|s| s.cell(y, x).is_some_and(vt100::Cell::inverse));
    assert!(inverse(y, x), "the mention's name is not highlighted");
    let other = u16::try_from(
        screen
            .lines()
            .position(|l| l.contains("carol: an unrelated"))
            .unwrap_or_default(),
    )
    .unwrap();
    assert!(!inverse(other, x), "a line without our name is highlighted");
}

/// The status line names us and the room, and counts peers; alone, it says lines are queued.
#[test]
fn the_status_line_says_when_we_are_alone() {
    let (mut bob, mut carol, addr) = company();
    let alice = alice(&addr, &mut bob, &mut carol);
    alice.wait_for_screen("1 peer", |_| row(&alice, STATUS).contains("1 peer"));
    let status = row(&alice, STATUS);
    assert!(status.contains("alice#"), "{status}");
    assert!(status.contains("chitty-chat"), "{status}");
    bob.signal("KILL");
    carol.signal("KILL");
    alice.wait_for_screen("alone", |_| {
        row(&alice, STATUS).contains("alone: lines will be queued")
    });
}

/// Every way out (Ctrl-C, Ctrl-D, /quit, SIGTERM, SIGHUP) leaves the room, exits 0, and hands
/// the terminal back as it was: its modes, the main screen, our leave printed there.
#[test]
fn every_way_out_restores_the_terminal() {
    let ways: [(&str, &[u8], Option<&str>); 5] = [
        ("Ctrl-C", b"\x03", None),
        ("Ctrl-D on an empty line", b"\x15\x04", None),
        ("/quit", b"\x15/quit\r", None),
        ("SIGTERM", b"", Some("TERM")),
        ("SIGHUP", b"", Some("HUP")),
    ];
    for (way, keys, sig) in ways {
        let mut alice = Pty::spawn("alice", LOCAL);
        alice.wait_for_text("Participant alice joined");
        alice.wait_for_screen("the alternate screen", |_| {
            alice.with_screen(vt100::Screen::alternate_screen)
        });
        alice.send(b"half a li");
        alice.wait_for_screen("the half line", |_| input(&alice) == "> half a li");
        assert_ne!(
            alice.modes(),
            alice.initial,
            "{way}: the screen reads in raw mode"
        );
        match sig {
            Some(sig) => alice.signal(sig),
            None => alice.send(keys),
        }
        let status = alice.wait_exit();
        assert!(
            status.success(),
            "{way}: exit {status:?}\n{}",
            alice.screen()
        );
        assert_eq!(alice.modes(), alice.initial, "{way}: the terminal's modes");
        alice.wait_for_text("Participant alice left Chitty-Chat");
        assert!(
            !alice.with_screen(vt100::Screen::alternate_screen),
            "{way}: still on the alternate screen"
        );
        let bytes = alice.bytes();
        let tail = String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(400)..]).into_owned();
        for off in ["\x1b[?1049l", "\x1b[?2004l", "\x1b[?1000l"] {
            assert!(
                tail.contains(off),
                "{way}: {off:?} not sent at the end: {tail:?}"
            );
        }
    }
}

/// `--plain` keeps the line mode on a terminal: no alternate screen, a prompt.
#[test]
fn plain_keeps_the_line_mode() {
    let mut args = LOCAL.to_vec();
    args.push("--plain");
    let mut alice = Pty::spawn("alice", &args);
    alice.wait_for_text("Participant alice joined");
    alice.wait_for_prompt();
    assert!(!alice.with_screen(vt100::Screen::alternate_screen));
    alice.send(b"/quit\r");
    assert!(alice.wait_exit().success());
}

/// `/join` opens a second room on the screen; each room shows its own conversation; a room not
/// on screen counts what arrives (mentions apart) in the status line's hotlist; Alt-N switches.
#[test]
fn join_opens_a_room_and_switching_shows_its_conversation_and_unread_counts() {
    let mut bob = Node::spawn("bob", &[LOCAL, &["--room", "a"]].concat());
    let addr = bob.loopback_addr();
    let mut carol = Node::spawn("carol", &[LOCAL, &["--room", "b"]].concat());
    let carol_addr = carol.loopback_addr();
    let connect = ["--room", "a", "--connect", &addr, "--connect", &carol_addr];
    let mut alice = Pty::spawn("alice", &[LOCAL, &connect].concat());
    bob.wait_join("alice");
    alice.wait_for_text("Participant bob joined");
    alice.send(b"/join b\r");
    // Room b on screen: carol, already connected, is asked about it and met there.
    alice.wait_for_screen("room 2 on screen", |_| row(&alice, STATUS).contains("2:#b"));
    carol.wait_join("alice");
    carol.send("hello room b");
    alice.wait_for_text("carol: hello room b");
    bob.send("hello room a");
    // Bob's line is in room a, not on screen: counted in the hotlist, not shown.
    alice.wait_for_screen("room a in the hotlist", |_| {
        row(&alice, STATUS).contains("1:#a 1")
    });
    assert!(!alice.screen().contains("bob: hello room a"));
    bob.send("alice, are you there?");
    alice.wait_for_screen("a mention counted", |_| {
        row(&alice, STATUS).contains("1:#a 2,1@")
    });
    // Alt-1: room a, with both lines and the marker above the first unread.
    alice.send(b"\x1b1");
    let screen = alice.wait_for_text("bob: alice, are you there?");
    assert!(screen.contains("bob: hello room a"), "{screen}");
    assert!(screen.contains("new since you were away"), "{screen}");
    assert!(!screen.contains("carol: hello room b"), "{screen}");
    assert!(
        row(&alice, STATUS).contains("1:#a"),
        "{}",
        row(&alice, STATUS)
    );
    // Typed lines go to the room on screen.
    alice.send(b"back in a\r");
    bob.wait_message("alice", "back in a");
    assert!(carol.seen().iter().all(|v| v["text"] != "back in a"));
    // Alt-2, and a line there goes to b.
    alice.send(b"\x1b2");
    alice.wait_for_screen("room 2 on screen", |_| row(&alice, STATUS).contains("2:#b"));
    alice.send(b"over in b\r");
    carol.wait_message("alice", "over in b");
}
