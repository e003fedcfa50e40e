//! Private rooms through the real binary on loopback: made with `--private`, joined with the
//! ticket, read by members only; a hub keeps and serves the room blind; a late member catches
//! up from the hub alone; bad tickets are refused with exit code 2.

mod common;

use std::process::Command;

use common::{Dir, Node};

const LOOPBACK: [&str; 3] = ["--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"];

fn node(name: &str, extra: &[&str]) -> Node {
    let mut args: Vec<&str> = LOOPBACK.to_vec();
    args.extend(extra);
    Node::spawn(name, &args)
}

fn ticket_of(n: &mut Node) -> String {
    let t = n.wait_for("a ticket", |v| v["type"] == "ticket");
    t["ticket"].as_str().unwrap_or_default().to_owned()
}

/// alice makes a private room and gets a ticket; bob joins with it; they chat with matching
/// stamps through a hub. eve, in the public room on the same hub and connected to alice, and
/// the hub itself see nothing of it: no text, no name, no ticket in their output or on the
/// hub's disk. With alice and bob gone, dave joins with the ticket and catches up from the
/// hub alone, and reads it.
#[test]
fn a_private_room_is_read_by_its_members_only_and_kept_blind_by_the_hub() {
    let hub_dir = Dir::new("hub");
    let mut cmd = Command::new(common::bin());
    cmd.args([
        "--json",
        "--relay",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--data-dir",
    ])
    .arg(&hub_dir.0);
    let mut hub = Node::start("hub", cmd);
    let haddr = hub.loopback_addr();
    let mut alice = node(
        "zaphodb",
        &["--private", "--room", "plans", "--connect", &haddr],
    );
    let ready = alice.wait_for("alice ready", |v| v["type"] == "ready");
    assert_eq!(ready["private"], true, "{ready}");
    let topic = ready["topic"].as_str().unwrap_or_default().to_owned();
    assert!(topic.starts_with("chitty-private/"), "{topic}");
    let aaddr = alice.loopback_addr();
    let ticket = ticket_of(&mut alice);
    assert!(ticket.starts_with("chitty1"), "{ticket}");
    alice.wait_join("zaphodb");

    let bob_dir = Dir::new("bob");
    let bob_data = bob_dir.0.to_str().unwrap_or_default().to_owned();
    let mut bob = node("trillian", &["--join", &ticket, "--data-dir", &bob_data]);
    bob.wait_join("trillian");
    alice.wait_join("trillian");
    assert!(
        !bob.seen().iter().any(|v| v["type"] == "ticket"),
        "a joiner is not shown the ticket unasked"
    );
    let mut eve = node("eve", &["--connect", &haddr, "--connect", &aaddr]);
    eve.wait_join("eve");

    let secret_line = "the password is swordfish";
    let a_stamp = {
        alice.send(secret_line);
        alice.wait_message("zaphodb", secret_line)
    };
    assert_eq!(
        bob.wait_message("zaphodb", secret_line),
        a_stamp,
        "one stamp everywhere"
    );
    bob.send("meet at the usual place");
    let b_stamp = bob.wait_message("trillian", "meet at the usual place");
    assert_eq!(
        alice.wait_message("trillian", "meet at the usual place"),
        b_stamp
    );
    bob.send("/invite");
    let again = ticket_of(&mut bob);
    assert!(
        again.starts_with("chitty1") && again != ticket,
        "a fresh ticket, new addresses"
    );
    // The hub has taken both lines (sealed) before anyone leaves.
    hub.wait_for("the hub takes trillian's line", |v| {
        v["type"] == "sealed" && v["lamport"].as_u64() == Some(b_stamp)
    });

    for n in [&mut alice, &mut bob] {
        n.send("/quit");
        n.wait_exit();
    }
    // bob's history, stored sealed, is printed with the ticket, and only with it.
    let export = |extra: &[&str]| {
        Command::new(common::bin())
            .args([
                "--username",
                "trillian",
                "--data-dir",
                &bob_data,
                "--export",
            ])
            .args(extra)
            .output()
            .expect("chitty-node runs")
    };
    let out = export(&["--join", &ticket]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(secret_line) && text.contains("zaphodb"),
        "{text}"
    );
    let without = export(&[]);
    assert_eq!(
        without.status.code(),
        Some(1),
        "the default room holds nothing"
    );
    assert!(!common::holds(&without.stderr, secret_line));
    let mut dave = node("fordprefect", &["--join", &ticket]);
    let caught = dave.wait_for("dave reads the history from the hub alone", |v| {
        v["text"] == secret_line && v["sync"] == true
    });
    assert_eq!(caught["user"], "zaphodb");
    assert_eq!(caught["lamport"].as_u64(), Some(a_stamp));
    dave.wait_message("trillian", "meet at the usual place");

    // Nothing readable anywhere but on the members' screens: not on bob's disk either.
    let needles = [
        secret_line,
        "swordfish",
        "usual place",
        "zaphodb",
        "trillian",
        "fordprefect",
        "plans",
        &ticket[..40],
    ];
    let mut places = eve.outputs();
    places.extend(hub.outputs());
    hub.signal("TERM");
    hub.wait_exit();
    // A member's own disk holds its history sealed too.
    for (p, bytes) in common::files_under(&bob_dir.0) {
        places.push((format!("bob's {}", p.display()), bytes));
    }
    for (p, bytes) in common::files_under(&hub_dir.0) {
        places.push((format!("the hub's {}", p.display()), bytes));
    }
    assert!(places.len() > 4, "the hub stored something");
    for (place, bytes) in &places {
        for needle in needles {
            assert!(!common::holds(bytes, needle), "{needle:?} found in {place}");
        }
    }
    // Nor do the members log the ticket.
    assert!(!dave.stderr_text().contains(&ticket[..40]));
    // eve saw none of it.
    assert!(
        !eve.seen().iter().any(|v| v["type"] == "message"),
        "eve saw a message"
    );
}

/// A ticket that is cut short, mistyped, of another kind, or a room's name: a clear message
/// and exit code 2.
#[test]
fn bad_tickets_are_refused_with_exit_code_2() {
    let mut alice = node("zaphodb", &["--private"]);
    let ticket = ticket_of(&mut alice);
    let mut typo: Vec<char> = ticket.chars().collect();
    typo[20] = if typo[20] == 'q' { 'p' } else { 'q' };
    let typo: String = typo.into_iter().collect();
    for (given, said) in [
        (&ticket[..ticket.len() - 5], "damaged"),
        (typo.as_str(), "damaged"),
        ("chatty1qqqqqqqqqqqq", "start with chitty1"),
        ("plans", "--room NAME"),
    ] {
        let out = Command::new(common::bin())
            .args(["--username", "trillian", "--no-mdns", "--join", given])
            .output()
            .expect("chitty-node runs");
        assert_eq!(out.status.code(), Some(2), "{given}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(said), "{given}: {err}");
    }
    let out = Command::new(common::bin())
        .args(["--username", "trillian", "--private", "--join", &ticket])
        .output()
        .expect("chitty-node runs");
    assert_eq!(out.status.code(), Some(2), "--private with --join");
}
