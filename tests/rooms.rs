//! Several rooms in one node: real `chitty-node` processes on 127.0.0.1, driven through
//! `--json`. Alice is in rooms `a` and `b` at once; bob only in `a`, carol only in `b`.

mod common;

use common::Node;
use serde_json::Value;

const LOCAL: &[&str] = &["--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"];
const A: &str = "chitty-chat/a";
const B: &str = "chitty-chat/b";

fn args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    LOCAL.iter().copied().chain(extra.iter().copied()).collect()
}

fn is_message(v: &Value, user: &str, text: &str) -> bool {
    v["type"] == "message" && v["user"] == user && v["text"] == text
}

/// Two `--room`s: one node in both; what it says goes to its first room, `/join` switches,
/// each room's events carry their room, and neither room sees the other's. `/part` leaves one
/// room (its peers see the leave, the other room's do not), and the node goes on in the other.
#[test]
fn one_node_in_two_rooms_keeps_them_apart() {
    let mut alice = Node::spawn("alice", &args(&["--room", "a", "--room", "b"]));
    let addr = alice.loopback_addr();
    let opened = alice.wait_for("room b opened", |v| v["type"] == "opened");
    assert_eq!(opened["room"], B);
    assert_eq!(opened["name"], "b");
    let mut bob = Node::spawn("bob", &args(&["--room", "a", "--connect", &addr]));
    let mut carol = Node::spawn("carol", &args(&["--room", "b", "--connect", &addr]));
    bob.wait_join("bob");
    carol.wait_join("carol");
    alice.wait_for("bob's join, in room a", |v| {
        v["type"] == "join" && v["user"] == "bob" && v["room"] == A
    });
    alice.wait_for("carol's join, in room b", |v| {
        v["type"] == "join" && v["user"] == "carol" && v["room"] == B
    });
    bob.wait_join("alice");
    carol.wait_join("alice");

    // Typed lines go to the first room at start.
    alice.send("to a");
    bob.wait_message("alice", "to a");
    alice.wait_for("alice's line in a", |v| {
        is_message(v, "alice", "to a") && v["room"] == A
    });
    // `/join b`, already in it, makes it where lines go.
    alice.send("/join b");
    alice.wait_count("b opened again", 2, |v| {
        v["type"] == "opened" && v["room"] == B
    });
    alice.send("to b");
    carol.wait_message("alice", "to b");
    bob.send("a again");
    carol.send("b again");
    alice.wait_for("bob's line, in a", |v| {
        is_message(v, "bob", "a again") && v["room"] == A
    });
    alice.wait_for("carol's line, in b", |v| {
        is_message(v, "carol", "b again") && v["room"] == B
    });
    // The rooms never mix: each peer saw only its room's lines, and a node in one room
    // prints no `room` field.
    bob.wait_message("bob", "a again");
    carol.wait_message("carol", "b again");
    assert!(
        bob.seen()
            .iter()
            .all(|v| v["text"] != "to b" && v["user"] != "carol")
    );
    assert!(
        carol
            .seen()
            .iter()
            .all(|v| v["text"] != "to a" && v["user"] != "bob")
    );
    assert!(bob.seen().iter().all(|v| v.get("room").is_none()));

    // `/part` leaves b (where lines go now); carol sees alice leave, bob does not.
    alice.send("/part");
    carol.wait_leave("alice");
    alice.wait_for("b closed", |v| v["type"] == "closed" && v["room"] == B);
    alice.send("/rooms");
    let rooms = alice.wait_for("the rooms", |v| v["type"] == "rooms");
    let rooms = rooms["rooms"].as_array().cloned().unwrap_or_default();
    assert_eq!(rooms.len(), 1, "{rooms:?}");
    assert_eq!(rooms[0]["room"], A);
    // Back in a alone: lines go there, and alice is still present for bob.
    alice.send("still in a");
    bob.wait_message("alice", "still in a");
    assert!(
        bob.seen()
            .iter()
            .all(|v| !(v["type"] == "leave" && v["user"] == "alice")),
        "bob saw alice leave"
    );
    // A new room by `/join`: the ui hears of it, and lines go there.
    alice.send("/join c");
    let c = alice.wait_for("room c opened", |v| {
        v["type"] == "opened" && v["room"] == "chitty-chat/c"
    });
    assert_eq!(c["private"], false);
    let mut dave = Node::spawn("dave", &args(&["--room", "c", "--connect", &addr]));
    dave.wait_join("alice");
    alice.send("to c");
    dave.wait_message("alice", "to c");

    // `/quit` leaves every room.
    alice.send("/quit");
    bob.wait_leave("alice");
    dave.wait_leave("alice");
    assert!(alice.wait_exit().success());
}

/// Bad `/join`s are refused with a message, and nothing else changes.
#[test]
fn a_bad_join_is_refused_and_says_why() {
    let mut alice = Node::spawn("alice", &args(&[]));
    alice.ready();
    alice.send("/join two words");
    alice.wait_for("the refusal of two words", |v| {
        v["type"] == "error"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.contains("/join takes one room"))
    });
    alice.send("/join chitty1notaticket");
    alice.wait_for("the refusal of a bad ticket", |v| {
        v["type"] == "error"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("/join"))
    });
    alice.send("/rooms");
    let rooms = alice.wait_for("the rooms", |v| v["type"] == "rooms");
    assert_eq!(rooms["rooms"].as_array().map(Vec::len), Some(1));
    alice.send("/quit");
    assert!(alice.wait_exit().success());
}

/// A line right behind a `/join` (a pipe, a paste) goes to the room joined, and one right behind
/// a `/part` to the room left over: where a line goes is decided as it is read, not when the
/// node answers.
#[test]
fn lines_right_behind_join_and_part_go_where_they_were_typed() {
    let mut bob = Node::spawn("bob", &args(&["--room", "b"]));
    let addr = bob.loopback_addr();
    let mut alice = Node::spawn("alice", &args(&["--room", "a", "--connect", &addr]));
    alice.ready();
    alice.send_bytes(b"/join b\nright behind the join\n/part\nright behind the part\n");
    bob.wait_message("alice", "right behind the join");
    // In a (alone in it again: its lines carry no room).
    let line = alice.wait_for("the line behind the part", |v| {
        is_message(v, "alice", "right behind the part")
    });
    assert!(line.get("room").is_none_or(|r| r == A), "{line}");
    alice.wait_for("b closed", |v| v["type"] == "closed");
    alice.send("/join b");
    alice.send("back in b");
    bob.wait_message("alice", "back in b");
    assert!(
        bob.seen()
            .iter()
            .all(|v| v["text"] != "right behind the part")
    );
    alice.send("/quit");
    assert!(alice.wait_exit().success());
}

/// Through a hub: alice is in rooms a and b, bob only in a, carol only in b, and each reaches
/// the others only through the hub. Alice's `/part` of b is her leave there (carol sees it),
/// and the hub does not hang up on her: she goes on talking with bob in a on the same
/// connection.
#[test]
fn part_through_a_hub_keeps_the_hub_connection_for_the_other_room() {
    let mut cmd = std::process::Command::new(common::bin());
    cmd.args(["--json", "--relay", "--listen", "/ip4/127.0.0.1/tcp/0"]);
    let mut hub = Node::start("hub", cmd);
    let haddr = hub.loopback_addr();
    let mut alice = Node::spawn(
        "alice",
        &args(&["--room", "a", "--room", "b", "--connect", &haddr]),
    );
    let mut bob = Node::spawn("bob", &args(&["--room", "a", "--connect", &haddr]));
    let mut carol = Node::spawn("carol", &args(&["--room", "b", "--connect", &haddr]));
    for n in [&mut bob, &mut carol] {
        n.wait_join("alice");
    }
    alice.wait_for("carol in b", |v| {
        v["type"] == "join" && v["user"] == "carol"
    });
    alice.wait_for("bob in a", |v| v["type"] == "join" && v["user"] == "bob");
    let hub_peer = hub.ready().0;
    alice.send("/join b");
    alice.send("/part");
    carol.wait_leave("alice");
    alice.wait_for("b closed", |v| v["type"] == "closed" && v["room"] == B);
    bob.send("still with you in a");
    alice.wait_message("bob", "still with you in a");
    alice.send("and I hear you");
    bob.wait_message("alice", "and I hear you");
    assert!(
        alice
            .seen()
            .iter()
            .all(|v| !(v["type"] == "peer" && v["peer"] == hub_peer && v["connected"] == false)),
        "the hub hung up on alice"
    );
    assert!(
        bob.seen()
            .iter()
            .all(|v| !(v["type"] == "leave" && v["user"] == "alice"))
    );
}
