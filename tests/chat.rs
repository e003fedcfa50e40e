//! End-to-end tests: real `chitty-node` processes on 127.0.0.1, joined with `--connect`, driven
//! through `--json` on stdin and stdout.

mod common;

use common::{Node, without_peer_id};
use serde_json::Value;

const LOCAL: &[&str] = &["--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"];

fn args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    LOCAL.iter().copied().chain(extra.iter().copied()).collect()
}

/// Starts the first node and returns it with its loopback address.
fn first(name: &str, extra: &[&str]) -> (Node, String) {
    let mut a = Node::spawn(name, &args(extra));
    let addr = a.loopback_addr();
    (a, addr)
}

fn messages_from<'a>(seen: &'a [Value], user: &str, text: &str) -> Vec<&'a Value> {
    seen.iter()
        .filter(|v| v["type"] == "message" && v["user"] == user && v["text"] == text)
        .collect()
}

/// The assignment's scenario: three participants, each in its own process; joins, messages and
/// leaves reach everyone with the same Lamport stamps, and causality holds.
#[test]
fn three_nodes_share_joins_messages_and_leaves_with_identical_stamps() {
    let (mut a, addr) = first("alice", &[]);
    let a_join = a.wait_join("alice");

    let mut b = Node::spawn("bob", &args(&["--connect", &addr]));
    let b_join = b.wait_join("bob");
    assert!(
        b_join > a_join,
        "bob's join {b_join} must sort after alice's {a_join}"
    );
    assert_eq!(a.wait_join("bob"), b_join);

    // An address without /p2p/ID works too.
    let mut c = Node::spawn("carol", &args(&["--connect", &without_peer_id(&addr)]));
    let c_join = c.wait_join("carol");
    assert!(
        c_join > b_join,
        "carol merged alice's clock, which had seen bob's join"
    );
    assert_eq!(a.wait_join("carol"), c_join);
    assert_eq!(b.wait_join("carol"), c_join);

    a.send("hello from alice");
    let t = a.wait_message("alice", "hello from alice");
    assert_eq!(b.wait_message("alice", "hello from alice"), t);
    assert_eq!(c.wait_message("alice", "hello from alice"), t);

    // Causality: bob displayed alice's message before replying.
    b.send("hi alice");
    let r = b.wait_message("bob", "hi alice");
    assert!(r > t, "reply {r} must follow {t}");
    assert_eq!(a.wait_message("bob", "hi alice"), r);
    assert_eq!(c.wait_message("bob", "hi alice"), r);

    // Identical lines are distinct messages.
    for _ in 0..3 {
        c.send("ok");
    }
    for n in [&mut a, &mut b, &mut c] {
        let oks = n.wait_count("three ok from carol", 3, |v| {
            v["type"] == "message" && v["user"] == "carol" && v["text"] == "ok"
        });
        let mut stamps: Vec<u64> = oks.iter().filter_map(|v| v["lamport"].as_u64()).collect();
        stamps.dedup();
        assert_eq!(stamps.len(), 3, "{}: {oks:?}", n.name);
    }

    a.send("/who");
    let who = a.wait_for("who", |v| v["type"] == "who");
    let mut names: Vec<&str> = who["participants"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["user"].as_str())
        .collect();
    names.sort();
    assert_eq!(names, ["alice", "bob", "carol"]);

    // /quit: the others see bob leave, with one stamp, and bob exits cleanly.
    b.send("/quit");
    let leave = a.wait_leave("bob");
    assert_eq!(leave["reason"], "quit");
    assert_eq!(c.wait_leave("bob")["lamport"], leave["lamport"]);
    assert!(b.wait_exit().success());
    assert_eq!(b.wait_leave("bob")["lamport"], leave["lamport"]);

    // End of input is a leave too.
    c.close_stdin();
    let c_leave = a.wait_leave("carol");
    assert_eq!(c_leave["reason"], "quit");
    assert!(c.wait_exit().success());

    // Alice's transcript holds everything, in total order.
    a.send("/history");
    let end = a.wait_for("history_end", |v| v["type"] == "history_end");
    let hist: Vec<&Value> = a.seen().iter().filter(|v| v["type"] == "history").collect();
    assert_eq!(end["count"].as_u64(), Some(hist.len() as u64));
    assert_eq!(
        hist.len(),
        3 + 2 + 3 + 2,
        "joins, messages, oks, leaves: {hist:?}"
    );
    let stamps: Vec<u64> = hist.iter().filter_map(|v| v["lamport"].as_u64()).collect();
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "{stamps:?}");
    // The same stamps everywhere: what alice shows matches what the authors showed.
    assert!(
        hist.iter()
            .any(|v| v["event"] == "message" && v["lamport"] == r)
    );
}

/// No typed line is lost: a line typed while alone waits, is reported queued, and reaches the
/// first peer that comes.
#[test]
fn a_line_typed_while_alone_reaches_the_first_peer() {
    let (mut a, addr) = first("alice", &[]);
    a.wait_join("alice");
    a.send("anyone here?");
    let t = a.wait_message("alice", "anyone here?");
    let notice = a.wait_for("queued notice", |v| v["type"] == "notice");
    assert!(
        notice["text"].as_str().unwrap().contains("queued"),
        "{notice}"
    );

    let mut b = Node::spawn("bob", &args(&["--connect", &addr]));
    assert_eq!(b.wait_message("alice", "anyone here?"), t);
    let join = b.wait_join("bob");
    assert!(
        join > t,
        "bob's join {join} sorts after what the room said ({t})"
    );
    a.wait_for("sent notice", |v| {
        v["type"] == "notice" && v["text"].as_str().is_some_and(|t| t.contains("sent"))
    });
}

/// Bad input gets an error line, sends nothing, and the node keeps working.
#[test]
fn bad_input_is_refused_and_the_node_keeps_chatting() {
    let (mut a, addr) = first("alice", &[]);
    let mut b = Node::spawn("bob", &args(&["--connect", &addr]));
    b.wait_join("bob");
    a.wait_join("bob");

    let long = "x".repeat(129);
    a.send(&long);
    let e = a.wait_for("length error", |v| v["type"] == "error");
    assert!(
        e["message"].as_str().unwrap().contains("the limit is 128"),
        "{e}"
    );
    a.send("/dance");
    a.wait_for("unknown command error", |v| {
        v["type"] == "error"
            && v["message"]
                .as_str()
                .unwrap()
                .contains("unknown command /dance")
    });
    a.send_bytes(b"bad \xff utf8\n");
    a.wait_for("utf-8 error", |v| {
        v["type"] == "error" && v["message"].as_str().unwrap().contains("UTF-8")
    });
    a.send("\u{1b}[2Jclear screen");
    a.wait_for("control character error", |v| {
        v["type"] == "error" && v["message"].as_str().unwrap().contains("control character")
    });
    a.send("");
    a.send("/help");
    a.wait_for("help", |v| v["type"] == "help");
    let max = "é".repeat(128);
    a.send(&max);
    a.send("still here");
    b.wait_message("alice", &max);
    b.wait_message("alice", "still here");
    let from_alice: Vec<&Value> = b
        .seen()
        .iter()
        .filter(|v| v["type"] == "message" && v["user"] == "alice")
        .collect();
    assert_eq!(
        from_alice.len(),
        2,
        "only the valid lines arrive: {from_alice:?}"
    );
    assert!(messages_from(b.seen(), "alice", &long).is_empty());
}

/// SIGTERM leaves like /quit.
#[test]
fn sigterm_sends_the_leave() {
    let (mut a, addr) = first("alice", &[]);
    let mut b = Node::spawn("bob", &args(&["--connect", &addr]));
    a.wait_join("bob");
    b.wait_join("bob");
    b.signal("TERM");
    assert_eq!(a.wait_leave("bob")["reason"], "quit");
    assert!(b.wait_exit().success());
}

/// Rooms are separate topics: connected nodes in different rooms never see each other's chat.
#[test]
fn rooms_never_see_each_other() {
    let (mut a, addr) = first("alice", &["--room", "x"]);
    let mut c = Node::spawn("carol", &args(&["--room", "x", "--connect", &addr]));
    let mut b = Node::spawn("bob", &args(&["--room", "y", "--connect", &addr]));
    let b_addr = b.loopback_addr();
    // Dave reaches bob directly: alice, in room x, relays nothing of room y.
    let mut d = Node::spawn(
        "dave",
        &args(&["--room", "y", "--connect", &addr, "--connect", &b_addr]),
    );
    c.wait_join("carol");
    d.wait_join("dave");
    a.wait_join("carol");
    b.wait_join("dave");

    a.send("for room x");
    b.send("for room y");
    // Then a last line in each room, sent after the first ones, seen by everyone in that room.
    c.wait_message("alice", "for room x");
    d.wait_message("bob", "for room y");
    c.send("x done");
    d.send("y done");
    for n in [&mut a, &mut c] {
        n.wait_message("carol", "x done");
    }
    for n in [&mut b, &mut d] {
        n.wait_message("dave", "y done");
    }
    for n in [&a, &c] {
        assert!(
            n.seen()
                .iter()
                .all(|v| v["user"] != "bob" && v["user"] != "dave"),
            "{}",
            n.name
        );
    }
    for n in [&b, &d] {
        assert!(
            n.seen()
                .iter()
                .all(|v| v["user"] != "alice" && v["user"] != "carol"),
            "{}",
            n.name
        );
    }
}

/// `echo hi | chitty-node --connect X`: input ends before any peer answered, yet the node
/// joins, says its line and leaves, and X sees all three.
#[test]
fn a_piped_line_and_immediate_end_of_input_still_reach_the_peer() {
    let (mut a, addr) = first("alice", &[]);
    a.wait_join("alice");
    let mut b = Node::spawn("bob", &args(&["--connect", &addr]));
    b.send("hi and bye");
    b.close_stdin();
    let join = a.wait_join("bob");
    let msg = a.wait_message("bob", "hi and bye");
    let leave = a.wait_leave("bob")["lamport"].as_u64().unwrap();
    assert!(join < msg && msg < leave, "{join} {msg} {leave}");
    assert!(b.wait_exit().success());
}

/// A flood of piped lines while alone neither blocks the node nor loses a line silently: each
/// line is either queued and shown, or refused with an error; commands still answer.
#[test]
fn a_flood_of_lines_while_alone_is_bounded_and_answered() {
    let (mut a, _) = first("alice", &[]);
    a.wait_join("alice");
    let n = 1500;
    let mut input = String::new();
    for i in 0..n {
        input.push_str(&format!("line {i}\n"));
    }
    input.push_str("/who\n");
    a.send_bytes(input.as_bytes());
    a.wait_for("who after the flood", |v| v["type"] == "who");
    let shown = a.seen().iter().filter(|v| v["type"] == "message").count();
    let refused = a
        .seen()
        .iter()
        .filter(|v| {
            v["type"] == "error"
                && v["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("not sent"))
        })
        .count();
    assert_eq!(shown + refused, n, "every line is either shown or refused");
    assert!(refused > 0, "the outbox is bounded");
    a.close_stdin();
    let e = a.wait_for("undelivered report", |v| {
        v["type"] == "error"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.contains("never delivered"))
    });
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with(&shown.to_string()),
        "{e}"
    );
    assert!(a.wait_exit().success());
}

/// Invalid usernames are refused with a clear message and exit code 2.
#[test]
fn invalid_usernames_exit_with_code_2() {
    for bad in ["", "two words", &"x".repeat(33), "bell\u{7}"] {
        let out = std::process::Command::new(common::bin())
            .args(["--username", bad, "--no-mdns"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--username"), "{bad:?}: {err}");
        assert!(out.stdout.is_empty());
    }
}

/// A name that would look like another (an invisible zero-width space, a right-to-left
/// override) is refused with exit code 2 and a message naming the code point.
#[test]
fn look_alike_usernames_exit_with_code_2_naming_the_code_point() {
    for (bad, code) in [("pat\u{200B}", "U+200B"), ("pat\u{202E}", "U+202E")] {
        let out = std::process::Command::new(common::bin())
            .args(["--username", bad, "--no-mdns"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--username") && err.contains(&format!("invisible character ({code})")),
            "{bad:?}: {err}"
        );
        assert!(out.stdout.is_empty());
    }
}

/// A hub on 127.0.0.1 (`--json`), with its key in a new directory named after `tag`, which the
/// test removes at its end.
fn loopback_hub(tag: &str) -> (Node, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("chitty-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let key = dir.join("relay.key");
    let hub = Node::start("hub", {
        let mut c = std::process::Command::new(common::bin());
        c.args(["--json", "--relay", "--identity", key.to_str().unwrap()])
            .args(["--listen", "/ip4/127.0.0.1/tcp/0"]);
        c
    });
    (hub, dir)
}

/// A free TCP port on 127.0.0.1 (bound, then released for the node to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `--connect` keeps the link: when the peer behind the address dies and comes back (with a new
/// key, so the address has no /p2p/ID), the node dials again by itself and the chat goes on.
#[test]
fn connect_redials_a_peer_that_comes_back() {
    let port = free_port();
    let listen = format!("/ip4/127.0.0.1/tcp/{port}");
    let mut a = Node::spawn("alice", &["--no-mdns", "--listen", &listen]);
    a.wait_join("alice");
    let mut b = Node::spawn("bob", &args(&["--connect", &listen]));
    a.wait_join("bob");
    b.wait_join("bob");

    a.signal("KILL");
    a.wait_exit();
    let mut a2 = Node::spawn("alice2", &["--no-mdns", "--listen", &listen]);
    // Alice2 joined alone or after bob's redial: either way bob shows her join.
    b.wait_join("alice2");
    a2.send("back again");
    b.wait_message("alice2", "back again");
    b.send("welcome back");
    a2.wait_message("bob", "welcome back");
}

/// `--log-file` writes the service log: joins, messages and leaves with their stamps and peer
/// ids, and connection events.
#[test]
fn log_file_records_the_service_log() {
    let dir = std::env::temp_dir().join(format!("chitty-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("alice.log");
    let (mut a, addr) = first("alice", &["--log-file", path.to_str().unwrap()]);
    let mut b = Node::spawn("bob", &args(&["--connect", &addr]));
    b.wait_join("bob");
    b.send("logged line");
    a.wait_message("bob", "logged line");
    b.send("/quit");
    a.wait_leave("bob");
    a.send("/quit");
    assert!(a.wait_exit().success());
    let log = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    for needle in [
        "connection established",
        "event=\"join\"",
        "event=\"message\"",
        "text=\"logged line\"",
        "event=\"leave\"",
        "published",
        "received",
    ] {
        assert!(log.contains(needle), "log lacks {needle:?}:\n{log}");
    }
    assert!(
        log.lines().all(|l| l.starts_with("20")),
        "every line is timestamped:\n{log}"
    );
}

/// `--relay --username NAME` runs a hub that also chats: its address comes first, ready to
/// paste, then the participant's own chat, and a client of the hub chats with it.
#[test]
fn a_hub_given_a_username_also_chats() {
    let dir = std::env::temp_dir().join(format!("chitty-hubchat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let key = dir.join("relay.key");
    let port = free_port();
    let listen = format!("/ip4/127.0.0.1/tcp/{port}");
    let mut h = Node::spawn(
        "alice",
        &[
            "--relay",
            "--no-mdns",
            "--identity",
            key.to_str().unwrap(),
            "--listen",
            &listen,
        ],
    );
    let hub = h.wait_for("the hub's address", |v| v["type"] == "hub");
    let hub_addr = hub["listen"][0].as_str().unwrap().to_owned();
    assert!(hub_addr.ends_with(hub["peer"].as_str().unwrap()), "{hub}");
    let first = &h.seen()[0];
    assert_eq!(first["type"], "hub", "the hub's address comes first");
    h.wait_join("alice");
    let mut b = Node::spawn("bob", &args(&["--connect", &hub_addr]));
    b.wait_join("alice");
    h.wait_join("bob");
    b.send("hi hub owner");
    h.wait_message("bob", "hi hub owner");
    h.send("/quit");
    assert_eq!(b.wait_leave("alice")["reason"], "quit");
    assert!(h.wait_exit().success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A username keeps its peer id across restarts: the key lives in the data directory, created
/// owner-only; a second process with the same name at once gets a key of its own.
#[test]
fn a_username_keeps_its_peer_id_across_restarts() {
    let data = std::env::temp_dir().join(format!("chitty-ids-{}", std::process::id()));
    let run = |name: &str| -> String {
        let out = std::process::Command::new(common::bin())
            .args([
                "--json",
                "--no-mdns",
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
                "--username",
                name,
            ])
            .env("XDG_DATA_HOME", &data)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("runs");
        let first = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        let v: Value = serde_json::from_str(&first).expect("a ready line");
        v["peer"].as_str().expect("a peer id").to_owned()
    };
    let a = run("client1");
    assert_eq!(run("client1"), a, "same name, same peer");
    assert_ne!(run("client2"), a);
    let key = data
        .join("chitty-node")
        .join("identities")
        .join("client1.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key)
            .expect("the key file")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
    // Two at once: the second must not share the first one's peer id.
    let mut held = Node::start("client1", {
        let mut c = std::process::Command::new(common::bin());
        c.args([
            "--json",
            "--no-mdns",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--username",
            "client1",
        ])
        .env("XDG_DATA_HOME", &data);
        c
    });
    let (p1, _) = held.ready();
    assert_eq!(p1, a);
    assert_ne!(run("client1"), a, "the key is in use: a fresh one");
    drop(held);
    let _ = std::fs::remove_dir_all(&data);
}

/// Two participants claiming the same name are shown apart, by a peer id suffix, and a message
/// never appears under the other's name.
#[test]
fn two_participants_of_one_name_are_told_apart() {
    let (mut a, addr) = first("alice", &[]);
    let mut t1 = Node::spawn("twin", &args(&["--connect", &addr]));
    let mut t2 = Node::spawn("twin", &args(&["--connect", &addr]));
    let (p1, _) = t1.ready();
    let (p2, _) = t2.ready();
    assert_ne!(p1, p2);
    for n in [&mut t1, &mut t2] {
        n.wait_join("alice");
    }
    a.wait_count("both twins' joins", 2, |v| {
        v["type"] == "join" && v["user"] == "twin"
    });
    t1.send("from the first");
    t2.send("from the second");
    let m1 = a.wait_for("first", |v| v["text"] == "from the first");
    let m2 = a.wait_for("second", |v| v["text"] == "from the second");
    assert_eq!(m1["peer"], p1.as_str());
    assert_eq!(m2["peer"], p2.as_str());
    let d1 = m1["display"]
        .as_str()
        .expect("an ambiguous name is displayed with a suffix");
    let d2 = m2["display"]
        .as_str()
        .expect("an ambiguous name is displayed with a suffix");
    assert_ne!(d1, d2);
    assert!(
        d1.starts_with("twin#") && p1.ends_with(&d1["twin#".len()..]),
        "{d1} {p1}"
    );
    assert!(
        d2.starts_with("twin#") && p2.ends_with(&d2["twin#".len()..]),
        "{d2} {p2}"
    );
    a.send("/who");
    let who = a.wait_for("who", |v| v["type"] == "who");
    let twins: Vec<&str> = who["participants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["user"] == "twin")
        .filter_map(|p| p["peer"].as_str())
        .collect();
    assert_eq!(twins.len(), 2, "{who}");
}

/// `pat` and `pаt` (Cyrillic а) look the same on screen: on both nodes, both names are shown
/// with their peer id suffix, exactly as two uses of one name are.
#[test]
fn look_alike_names_are_told_apart() {
    const CYRILLIC: &str = "p\u{0430}t";
    let (mut latin, addr) = first("pat", &[]);
    let mut cyrillic = Node::spawn(CYRILLIC, &args(&["--connect", &addr]));
    let (p_latin, _) = latin.ready();
    let (p_cyrillic, _) = cyrillic.ready();
    cyrillic.wait_join("pat");
    cyrillic.wait_join(CYRILLIC);
    latin.wait_join(CYRILLIC);
    latin.send("from the latin pat");
    cyrillic.send("from the cyrillic pat");
    for node in [&mut latin, &mut cyrillic] {
        for (user, peer, text) in [
            ("pat", &p_latin, "from the latin pat"),
            (CYRILLIC, &p_cyrillic, "from the cyrillic pat"),
        ] {
            let m = node.wait_for(text, |v| v["type"] == "message" && v["text"] == text);
            assert_eq!(
                (m["user"].as_str(), m["peer"].as_str()),
                (Some(user), Some(peer.as_str()))
            );
            let shown = m["display"].as_str().unwrap_or_else(|| {
                node.fail(&format!("{user:?} is shown without its suffix: {m}"))
            });
            let suffix = shown
                .strip_prefix(&format!("{user}#"))
                .unwrap_or_else(|| node.fail(&format!("bad display {shown:?}")));
            assert!(
                suffix.len() == 8 && peer.ends_with(suffix),
                "{shown} {peer}"
            );
        }
    }
}

/// Every chat event carries the time its author said it: a late joiner's caught-up lines and
/// both nodes' `/history` show alice's times, equal to the millisecond on both nodes, in RFC 3339.
#[test]
fn caught_up_lines_and_history_carry_the_authors_times() {
    let (mut a, addr) = first("alice", &[]);
    a.wait_join("alice");
    for i in 0..3 {
        a.send(&format!("early {i}"));
    }
    let said: Vec<Value> = a
        .wait_count("alice's three lines", 3, |v| v["type"] == "message")
        .into_iter()
        .chain([a.wait_for("alice's join", |v| v["type"] == "join")])
        .collect();
    for e in &said {
        let t = e["time"]
            .as_str()
            .unwrap_or_else(|| a.fail(&format!("no time: {e}")));
        chrono::DateTime::parse_from_rfc3339(t)
            .unwrap_or_else(|err| a.fail(&format!("{t}: {err}")));
    }

    // Bob learns them by catching up (or from gossip's recent-message cache): either way, late.
    let mut b = Node::spawn("bob", &args(&["--connect", &addr]));
    b.wait_join("bob");
    let same = |x: &Value, y: &Value| x["lamport"] == y["lamport"] && x["peer"] == y["peer"];
    for e in &said {
        let got = b.wait_for("a caught-up line", |v| v["type"] == e["type"] && same(v, e));
        assert_eq!(got["time"], e["time"], "bob shows alice's time: {got} {e}");
    }
    for node in [&mut a, &mut b] {
        let history = node.history();
        for e in &said {
            let h = history
                .iter()
                .find(|h| same(h, e))
                .unwrap_or_else(|| node.fail(&format!("{e} not in history")));
            assert_eq!(h["time"], e["time"], "{h}");
        }
        assert!(history.iter().all(|h| h["time"].is_string()), "{history:?}");
    }
}

/// A participant that restarts with the same key (same name) is heard again: its new events are
/// not taken for the old ones.
#[test]
fn a_restarted_participant_is_heard_again() {
    let data = std::env::temp_dir().join(format!("chitty-rerun-{}", std::process::id()));
    let (mut a, addr) = first("alice", &[]);
    let run = |line: &str| {
        let mut c = std::process::Command::new(common::bin());
        c.args(["--json", "--username", "client1"])
            .args(args(&["--connect", &addr]))
            .env("XDG_DATA_HOME", &data);
        let mut n = Node::start("client1", c);
        n.wait_join("client1");
        n.send(line);
        n.send("/quit");
        assert!(n.wait_exit().success());
        n.ready().0
    };
    let p1 = run("first run");
    a.wait_message("client1", "first run");
    let p2 = run("second run");
    assert_eq!(p1, p2, "the same key");
    a.wait_message("client1", "second run");
    let joins = a.wait_count("both joins", 2, |v| {
        v["type"] == "join" && v["user"] == "client1"
    });
    assert_ne!(joins[0]["lamport"], joins[1]["lamport"]);
    let _ = std::fs::remove_dir_all(&data);
}

/// The ordering key of history entries: what must be the same on every node.
fn history_keys(history: &[Value]) -> Vec<(u64, String, String)> {
    history
        .iter()
        .map(|v| {
            (
                v["lamport"].as_u64().unwrap_or_default(),
                v["peer"].as_str().unwrap_or_default().to_owned(),
                v["event"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Restarting under one's own name is the most ordinary thing a user does: the restarted node
/// takes back its earlier run's events, from its store (shown marked as stored) or, with
/// `--no-store`, by sync (signed with its own key), holds the same transcript as the room, and
/// says nothing about them.
fn restart_under_the_same_name(store: bool) {
    let data = std::env::temp_dir().join(format!("chitty-restart-{}-{store}", std::process::id()));
    let (mut a, addr) = first("pat", &[]);
    let start = || {
        let mut c = std::process::Command::new(common::bin());
        c.args(["--json", "--username", "quinn"])
            .args(args(&["--connect", &addr]))
            .env("XDG_DATA_HOME", &data);
        if !store {
            c.arg("--no-store");
        }
        Node::start("quinn", c)
    };
    let mut b = start();
    b.wait_join("quinn");
    b.send("said before the restart");
    b.send("/quit");
    assert!(b.wait_exit().success());
    a.wait_leave("quinn");
    drop(b);

    let mut b = start();
    let own = b.wait_for("the earlier run's line, back", |v| {
        v["type"] == "message" && v["text"] == "said before the restart"
    });
    if store {
        assert_eq!(own["stored"], true, "{own}");
    } else {
        assert_eq!(own["sync"], true, "{own}");
    }
    b.wait_count("both of quinn's joins", 2, |v| {
        v["type"] == "join" && v["user"] == "quinn"
    });
    a.wait_count("both of quinn's joins", 2, |v| {
        v["type"] == "join" && v["user"] == "quinn"
    });
    let at_a = history_keys(&a.history());
    let at_b = history_keys(&b.history());
    assert_eq!(at_a.len(), 5, "{at_a:?}");
    assert_eq!(at_a, at_b, "one transcript on both nodes");
    let err = b.stderr_text();
    assert!(!err.contains("refused"), "nothing to warn about: {err}");
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_restart_under_the_same_name_holds_the_whole_transcript_again() {
    restart_under_the_same_name(true);
}

#[test]
fn a_restart_without_a_store_gets_the_whole_transcript_back_by_sync() {
    restart_under_the_same_name(false);
}

/// A child process killed when the test ends, whether it passes or fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a participant with `--identity identity` to its end; returns (exit code, stderr).
fn run_with_identity(identity: &std::path::Path, data: &std::path::Path) -> (Option<i32>, String) {
    let identity = identity.to_str().expect("a UTF-8 temp path");
    run_to_end(&["--no-mdns", "-u", "pat", "--identity", identity], data)
}

/// Runs the binary to its end with no input; returns (exit code, stderr).
fn run_to_end(args: &[&str], data: &std::path::Path) -> (Option<i32>, String) {
    let out = std::process::Command::new(common::bin())
        .args(args)
        .env("XDG_DATA_HOME", data)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A listen address someone already listens on is refused at start, naming the address: two
/// nodes (or two hubs) sharing a port would split the room between them.
#[test]
fn a_listen_address_in_use_is_refused_at_start() {
    let data = std::env::temp_dir().join(format!("chitty-taken-{}", std::process::id()));
    let listen = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let mut a = Node::spawn("pat", &["--no-mdns", "--listen", &listen]);
    a.wait_join("pat");
    let (code, err) = run_to_end(
        &["--json", "--no-mdns", "-u", "quinn", "--listen", &listen],
        &data,
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot listen on {listen}")) && err.contains("already in use"),
        "{err}"
    );

    // A hub on a taken port: the same, instead of a second hub with a new key.
    let hub_listen = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let key = data.join("hub.key");
    let key = key.to_str().expect("a UTF-8 path");
    let mut hub = Node::start("hub", {
        let mut c = std::process::Command::new(common::bin());
        c.args([
            "--json",
            "--relay",
            "--identity",
            key,
            "--listen",
            &hub_listen,
        ]);
        c
    });
    hub.ready();
    let (code, err) = run_to_end(
        &["--relay", "--identity", key, "--listen", &hub_listen],
        &data,
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("already in use"), "{err}");
    let _ = std::fs::remove_dir_all(&data);
}

/// A `--connect` that cannot work says so once, with the reason a user can act on, keeps
/// retrying, and says when it works; `HOST:PORT` (an IP address or a host name) is taken as
/// well as a multiaddr.
#[test]
fn a_failing_connect_is_reported_once_and_its_success_too() {
    let port = free_port();
    let plain = format!("127.0.0.1:{port}");
    let listen = format!("/ip4/127.0.0.1/tcp/{port}");
    let mut b = Node::spawn("quinn", &args(&["--connect", &plain]));
    let failed = b.wait_for("the dial failure", |v| v["type"] == "dial");
    assert_eq!(failed["ok"], false, "{failed}");
    assert_eq!(failed["error"], "refused", "{failed}");
    assert_eq!(failed["addr"], listen.as_str(), "{failed}");

    // Retried with backoff: once someone listens there, the link is made and reported.
    let mut a = Node::spawn("pat", &["--no-mdns", "--listen", &listen]);
    let (a_peer, _) = a.ready();
    let ok = b.wait_for("the dial success", |v| {
        v["type"] == "dial" && v["ok"] == true
    });
    assert_eq!(ok["peer"], a_peer.as_str(), "{ok}");
    b.wait_join("pat");
    let dials = b.seen().iter().filter(|v| v["type"] == "dial").count();
    assert_eq!(dials, 2, "one failure, one success: {:?}", b.seen());

    // The wrong /p2p/ID: someone answers, but not the peer the address names.
    let (b_peer, _) = b.ready();
    let wrong = format!("{listen}/p2p/{b_peer}");
    let mut c = Node::spawn("ria", &args(&["--connect", &wrong]));
    let failed = c.wait_for("the dial failure", |v| v["type"] == "dial");
    assert_eq!(failed["error"], "wrong_peer", "{failed}");
    assert!(
        failed["message"]
            .as_str()
            .is_some_and(|m| m.contains(&a_peer)),
        "names who answered: {failed}"
    );

    // A host name.
    let mut d = Node::spawn("sam", &args(&["--connect", &format!("localhost:{port}")]));
    d.wait_join("pat");
    a.wait_join("sam");
}

/// `/peers` says whom we are connected to and whether we reach a hub; `/addr` prints our
/// addresses again; `/history N` shows the last N events.
#[test]
fn peers_addr_and_the_last_n_events_of_history() {
    let (mut hub, dir) = loopback_hub("peers");
    let (hub_peer, hub_listen) = hub.ready();
    let (mut a, addr) = first("pat", &["--connect", &hub_listen[0]]);
    let (a_peer, _) = a.ready();
    let mut b = Node::spawn("quinn", &args(&["--connect", &addr]));
    b.wait_join("pat");
    a.wait_join("quinn");

    a.send("/peers");
    let peers = a.wait_for("the peers", |v| v["type"] == "peers");
    assert_eq!(peers["hub"], true, "{peers}");
    let list = peers["peers"].as_array().expect("a list");
    assert!(
        list.iter()
            .any(|p| p["peer"] == hub_peer.as_str() && p["hub"] == true),
        "{peers}"
    );
    assert!(
        list.iter()
            .any(|p| p["user"] == "quinn" && p["hub"] == false),
        "{peers}"
    );
    b.send("/peers");
    let peers = b.wait_for("the peers", |v| v["type"] == "peers");
    assert_eq!(peers["hub"], false, "{peers}");

    b.send("/addr");
    let addrs = b.wait_for("the addresses", |v| v["type"] == "addresses");
    let (b_peer, b_listen) = b.ready();
    assert_eq!(addrs["peer"], b_peer.as_str());
    assert_eq!(addrs["listen"][0], b_listen[0].as_str(), "{addrs}");

    for i in 0..3 {
        b.send(&format!("line {i}"));
        a.wait_message("quinn", &format!("line {i}"));
    }
    let from = a.seen().len();
    a.send("/history 2");
    let last = a.wait_until("the last two events", |seen| {
        let end = seen[from..]
            .iter()
            .position(|v| v["type"] == "history_end")?;
        Some(seen[from..from + end].to_vec())
    });
    let texts: Vec<&str> = last.iter().filter_map(|v| v["text"].as_str()).collect();
    assert_eq!(texts, ["line 1", "line 2"], "{last:?}");
    assert_ne!(a_peer, b_peer);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A burst is paced by its sender under the rate receivers accept: a 100-line paste arrives
/// whole, and nothing is said about rates.
#[test]
fn a_burst_is_paced_by_its_sender_and_arrives_whole() {
    let (mut b, addr) = first("quinn", &[]);
    let mut a = Node::spawn("pat", &args(&["--connect", &addr]));
    b.wait_join("pat");
    a.wait_join("quinn");
    let burst: String = (0..100).map(|i| format!("burst {i}\n")).collect();
    a.send_bytes(burst.as_bytes());
    let got = b.wait_count("all 100 lines", 100, |v| {
        v["type"] == "message" && v["user"] == "pat"
    });
    let texts: Vec<String> = got
        .iter()
        .filter_map(|v| v["text"].as_str().map(str::to_owned))
        .collect();
    let expected: Vec<String> = (0..100).map(|i| format!("burst {i}")).collect();
    let mut sorted = texts.clone();
    sorted.sort_by_key(|t| t[6..].parse::<u32>().unwrap_or(0));
    assert_eq!(sorted, expected);
    let caught_up: Vec<&Value> = got.iter().filter(|v| v["sync"] == true).collect();
    assert!(
        caught_up.is_empty(),
        "every line came live, none dropped and repaired: {caught_up:?}"
    );
    let said: Vec<&Value> = b
        .seen()
        .iter()
        .filter(|v| v["type"] == "dropped" || v["type"] == "notice")
        .collect();
    assert!(said.is_empty(), "{said:?}");
}

/// A burst over the receiver's rate limit (here a receiver stricter than the sender's pace)
/// loses its live copies only: sync brings them, and nothing is said about it. Only events that
/// are really missing after sync had its chance are reported, naming the author as everywhere
/// else.
#[test]
fn the_rate_limit_reports_only_what_is_really_missing() {
    let (mut b, addr) = first("quinn", &["--max-rate", "5"]);
    let mut a = Node::spawn("pat", &args(&["--connect", &addr]));
    let (a_peer, _) = a.ready();
    b.wait_join("pat");
    a.wait_join("quinn");
    let burst: String = (0..100).map(|i| format!("burst {i}\n")).collect();
    a.send_bytes(burst.as_bytes());
    b.wait_count("all 100 lines, live or caught up", 100, |v| {
        v["type"] == "message" && v["user"] == "pat"
    });
    let said: Vec<&Value> = b
        .seen()
        .iter()
        .filter(|v| v["type"] == "dropped" || v["type"] == "notice")
        .collect();
    assert!(said.is_empty(), "nothing was lost: {said:?}");
    assert!(
        b.seen().iter().any(|v| v["sync"] == true),
        "some came by sync, so the limit did drop live copies"
    );

    // A receiver with a tight limit, and a sender that dies before sync can repair anything
    // (and no one else to have its lines). If an anti-entropy round happens to fall between the
    // first line and the kill, everything is repaired and rightly nothing is said: then the
    // scenario runs again (a round every 3 s, a window of milliseconds).
    for attempt in 1..=3 {
        let (mut c, c_addr) = first("ria", &["--max-rate", "1"]);
        let mut e = Node::spawn("sam", &args(&["--connect", &c_addr]));
        let (e_peer, _) = e.ready();
        assert_ne!(a_peer, e_peer);
        c.wait_join("sam");
        e.wait_join("ria");
        let burst: String = (0..30).map(|i| format!("second burst {i}\n")).collect();
        e.send_bytes(burst.as_bytes());
        // Every line handed to the network (a node shows its own line after handing it on; a
        // burst of 30 is within its pace)
        // and some arrived, before the sender dies.
        e.wait_message("sam", "second burst 29");
        c.wait_message("sam", "second burst 0");
        e.signal("KILL");
        let from_sam = |seen: &[Value]| {
            seen.iter()
                .filter(|v| v["type"] == "message" && v["user"] == "sam")
                .count()
        };
        let outcome = c.wait_until("a report, or every line repaired", |seen| {
            seen.iter()
                .find(|v| v["type"] == "dropped")
                .cloned()
                .map(Some)
                .or_else(|| (from_sam(seen) == 30).then_some(None))
        });
        let Some(dropped) = outcome else {
            assert!(attempt < 3, "sync repaired everything three times in a row");
            continue;
        };
        assert_eq!(dropped["user"], "sam", "{dropped}");
        assert_eq!(dropped["peer"], e_peer.as_str(), "{dropped}");
        assert_eq!(dropped["rate"], 1, "{dropped}");
        let got = from_sam(c.seen());
        let missing = dropped["missing"].as_u64().expect("a count") as usize;
        assert!(
            missing > 0 && got + missing <= 30,
            "{got} + {missing}: {dropped}"
        );
        break;
    }
}

/// A pipe of 300 lines, then the end of input: the lines are stamped as the node's pace lets
/// them out (so they carry the times they really went, as others' sync bounds expect), every one
/// arrives live, and the leave after them too, instead of the tail being pushed out at once at
/// the leave, dropped over the receiver's rate and lost with the sender.
#[test]
fn a_long_pipe_then_end_of_input_arrives_whole_and_live_with_the_leave() {
    let (mut b, addr) = first("quinn", &[]);
    let mut a = Node::spawn("pat", &args(&["--connect", &addr]));
    a.ready();
    b.wait_join("pat");
    let lines: String = (1..=300).map(|i| format!("piped {i}\n")).collect();
    a.send_bytes(lines.as_bytes());
    a.close_stdin();
    b.wait_leave("pat");
    let got: Vec<&Value> = b
        .seen()
        .iter()
        .filter(|v| v["type"] == "message" && v["user"] == "pat")
        .collect();
    assert_eq!(got.len(), 300, "every line before the leave");
    assert!(
        got.iter().all(|v| v["sync"] != true),
        "all live, none repaired by sync"
    );
    let leave = b.wait_leave("pat");
    assert_eq!(leave["reason"], "quit", "{leave}");
    assert!(a.wait_exit().success());
}

/// Diagnostics written to a pipe carry no colour codes.
#[test]
fn stderr_to_a_pipe_has_no_colour_codes() {
    let (a, _) = first("alice", &[]);
    let lines = a.wait_stderr("listening");
    assert!(
        lines.iter().all(|l| !l.contains('\u{1b}')),
        "colour codes on a pipe: {lines:?}"
    );
}

/// A log file that cannot be opened is a usage error that names the path.
#[test]
fn an_unusable_log_file_is_named() {
    let path = "/nonexistent-chitty-dir/sub/node.log";
    let out = std::process::Command::new(common::bin())
        .args(["--username", "alice", "--no-mdns", "--log-file", path])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the chitty-node binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "chitty-node: cannot open the log file {path}: No such file or directory"
        )),
        "{stderr}"
    );
}

/// A given `--identity` whose directory does not exist is refused (a typo must not silently
/// make a new key in a new directory), naming the directory; nothing is created.
#[test]
fn an_identity_in_a_missing_directory_is_refused() {
    let data = std::env::temp_dir().join(format!("chitty-noid-{}", std::process::id()));
    let missing = data.join("no-such-dir");
    let key = missing.join("pat.key");
    let (code, err) = run_with_identity(&key, &data);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "the directory {} does not exist",
            missing.display()
        )),
        "{err}"
    );
    assert!(!missing.exists(), "nothing was created");
}

/// The hub's log: a client's ordinary exit raises no warning, a line it relayed is said to be
/// broadcast, and the hub says when it stops. (That history it merely learned is not said to
/// be broadcast is a renderer test: whether the hub learns a line by sync or by gossip's cache
/// is up to timing.)
#[test]
fn the_hub_log_is_quiet_about_ordinary_exits_and_says_when_it_stops() {
    let dir = std::env::temp_dir().join(format!("chitty-hublog-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let key = dir.join("relay.key");
    let (mut a, addr) = first("pat", &[]);
    a.send("said before the hub came");
    a.wait_message("pat", "said before the hub came");
    let mut hub = std::process::Command::new(common::bin())
        .args(["--relay", "--identity", key.to_str().unwrap()])
        .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map(KillOnDrop)
        .expect("the hub starts");
    let out = hub.0.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let wait = |log: &mut Vec<String>, what: &str| {
        let until = std::time::Instant::now() + common::TIMEOUT;
        while !log.iter().any(|l| l.contains(what)) {
            let left = until.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => log.push(line),
                Err(_) => panic!("no {what:?} in the hub's log: {log:?}"),
            }
        }
    };
    wait(&mut log, "--connect /ip4/127.0.0.1/");
    let hub_addr = log
        .iter()
        .find_map(|l| l.split("--connect ").nth(1))
        .expect("the hub's address")
        .to_owned();
    let mut b = Node::spawn(
        "quinn",
        &args(&["--connect", &hub_addr, "--connect", &addr]),
    );
    b.wait_join("quinn");
    wait(&mut log, "quinn enter the chat system");
    b.send("live through the hub");
    wait(&mut log, "live through the hub");
    b.send("/quit");
    assert!(b.wait_exit().success());
    wait(&mut log, "quinn leave the chat system");
    wait(&mut log, "closed");
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &hub.0.id().to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok);
    wait(&mut log, "chitty-node hub stopped");
    let status = hub.0.wait().expect("the hub exits");
    assert!(status.success());
    let mut err = String::new();
    use std::io::Read;
    let _ = hub.0.stderr.take().expect("piped").read_to_string(&mut err);
    assert!(err.is_empty(), "nothing on stderr: {err}");
    let live = log
        .iter()
        .position(|l| l.contains("live through the hub"))
        .expect("logged");
    assert!(
        log[live + 1].contains("The message has been broadcasted"),
        "{log:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A node that was stopped (SIGSTOP, a suspended laptop) long enough to be announced lost comes
/// back and joins again; the connections its peers closed meanwhile are its own doing, so it
/// announces none of the healthy others as lost.
#[test]
fn a_node_resumed_after_a_freeze_does_not_announce_the_others_lost() {
    // Carol is dialled by the others: after her freeze, she is the one who sees their
    // connections closed, and they are her neighbours (re-dialled after 500 ms), not her
    // --connect targets.
    let (mut c, c_addr) = first("carol", &[]);
    let (mut a, a_addr) = first("alice", &["--connect", &c_addr]);
    let mut b = Node::spawn("bob", &args(&["--connect", &a_addr, "--connect", &c_addr]));
    for n in [&mut a, &mut b, &mut c] {
        n.wait_join("alice");
        n.wait_join("bob");
    }
    c.signal("STOP");
    for n in [&mut a, &mut b] {
        let left = n.wait_leave("carol");
        assert_eq!(left["reason"], "lost", "{left}");
    }
    c.signal("CONT");
    a.wait_count("carol's second join", 2, |v| {
        v["type"] == "join" && v["user"] == "carol"
    });
    c.send("back again");
    for n in [&mut a, &mut b, &mut c] {
        n.wait_message("carol", "back again");
    }
    for n in [&a, &b, &c] {
        let false_leaves: Vec<&Value> = n
            .seen()
            .iter()
            .filter(|v| v["type"] == "leave" && (v["user"] == "alice" || v["user"] == "bob"))
            .collect();
        assert!(
            false_leaves.is_empty(),
            "{}: healthy participants announced lost: {false_leaves:?}",
            n.name
        );
    }
}

/// `--connect` to the node's own address is said once and not dialled again; a directory given
/// as `--identity` is a usage error.
#[test]
fn connecting_to_oneself_and_an_identity_that_is_a_directory_are_refused() {
    let listen = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let mut a = Node::spawn(
        "pat",
        &["--no-mdns", "--listen", &listen, "--connect", &listen],
    );
    let own = a.wait_for("the refusal", |v| v["type"] == "dial");
    assert_eq!(own["error"], "own_address", "{own}");
    a.wait_join("pat");

    let data = std::env::temp_dir().join(format!("chitty-iddir-{}", std::process::id()));
    std::fs::create_dir_all(&data).expect("a temp dir");
    let (code, err) = run_with_identity(&data, &data);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("Is a directory"), "{err}");
    let _ = std::fs::remove_dir_all(&data);
}

/// A client frozen in place (SIGSTOP: its connection stays open, its pings go unanswered) is
/// dropped by the hub by the same liveness rule as a node drops a silent peer.
#[test]
fn a_hub_drops_a_frozen_client() {
    let (mut hub, dir) = loopback_hub("frozen");
    let (_, hub_listen) = hub.ready();
    let (mut a, _) = first("frozen", &["--connect", &hub_listen[0]]);
    let (a_peer, _) = a.ready();
    a.wait_join("frozen");
    hub.wait_for("the client connected", |v| {
        v["type"] == "peer" && v["peer"] == a_peer.as_str() && v["connected"] == true
    });
    a.signal("STOP");
    hub.wait_for("the frozen client dropped", |v| {
        v["type"] == "peer" && v["peer"] == a_peer.as_str() && v["connected"] == false
    });
    a.signal("CONT");
    let _ = std::fs::remove_dir_all(&dir);
}
