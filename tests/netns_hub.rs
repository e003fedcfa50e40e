//! The hub: clients on two subnets joined by a router (no multicast crosses it, so mDNS cannot
//! join them), started with only the hub's address. Needs root and `ip`; skips otherwise.

mod common;

use std::collections::HashSet;

use common::Node;
use common::netns::{Lab, Spawn};

fn lab(forwarding: bool) -> Option<Lab> {
    if let Some(why) = Lab::unavailable() {
        eprintln!("skipped: network namespaces unavailable: {why}");
        return None;
    }
    Some(Lab::routed(2, 2, forwarding).expect("lab set-up"))
}

/// Starts the hub on the router with a key in `dir`; returns it and its peer id.
fn hub(lab: &Lab, dir: &std::path::Path) -> (Node, String) {
    let key = dir.join("relay.key");
    let key = key.to_str().expect("a UTF-8 temp path");
    let mut h = lab.spawn_router("hub", &["--relay", "--json", "--identity", key]);
    let (peer, listen) = h.ready();
    assert!(
        listen.iter().any(|a| a.contains("/tcp/4747/")),
        "the hub listens on its documented port: {listen:?}"
    );
    (h, peer)
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("chitty-hub-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).expect("a temp dir");
    d
}

/// Four clients, two per subnet, each given only the hub's address on its side.
fn clients(lab: &Lab, peer: &str) -> Vec<Node> {
    let names = ["l1", "l2", "r1", "r2"];
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let side = if i < 2 { 1 } else { 2 };
            let addr = format!("/ip4/10.81.{side}.254/tcp/4747/p2p/{peer}");
            lab.spawn(i + 1, n, &["--connect", &addr])
        })
        .collect()
}

fn chat_across(nodes: &mut [Node]) {
    let names = ["l1", "l2", "r1", "r2"];
    for who in names {
        let stamps: HashSet<u64> = nodes.iter_mut().map(|n| n.wait_join(who)).collect();
        assert_eq!(stamps.len(), 1, "{who}'s join has one stamp everywhere");
    }
    nodes[0].send("hello from the left");
    nodes[3].send("hello from the right");
    for (who, text) in [
        ("l1", "hello from the left"),
        ("r2", "hello from the right"),
    ] {
        let stamps: HashSet<u64> = nodes
            .iter_mut()
            .map(|n| n.wait_message(who, text))
            .collect();
        assert_eq!(stamps.len(), 1, "{text:?} has one stamp everywhere");
    }
    nodes[2].send("/quit");
    let mut stamps = HashSet::new();
    for i in [0, 1, 3] {
        let v = nodes[i].wait_leave("r1");
        assert_eq!(v["reason"], "quit");
        stamps.insert(v["lamport"].as_u64());
    }
    assert_eq!(stamps.len(), 1);
    assert!(nodes[2].wait_exit().success());
}

/// With the router forwarding: everyone sees every join, message and leave, with one stamp.
#[test]
fn clients_on_two_subnets_chat_through_the_hub() {
    let Some(lab) = lab(true) else { return };
    let dir = temp_dir("fwd");
    let (mut h, peer) = hub(&lab, &dir);
    let mut nodes = clients(&lab, &peer);
    chat_across(&mut nodes);
    h.wait_for("the hub relayed", |v| {
        v["type"] == "message" && v["text"] == "hello from the left"
    });
    for what in [
        "registered in room",
        "reserved a relay slot",
        "unregistered from room",
    ] {
        h.wait_for(what, |v| {
            v["type"] == "notice" && v["text"].as_str().is_some_and(|t| t.contains(what))
        });
    }
    drop(nodes);
    drop(h);
    drop(lab);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Without forwarding the subnets cannot reach each other at all, only the hub: every message
/// still arrives, through the hub's gossipsub.
#[test]
fn clients_that_cannot_reach_each_other_chat_through_the_hub() {
    let Some(lab) = lab(false) else { return };
    let dir = temp_dir("nofwd");
    let (_h, peer) = hub(&lab, &dir);
    let mut nodes = clients(&lab, &peer);
    chat_across(&mut nodes);
}

/// The hub restarts mid-chat (same key, same port): clients reconnect by themselves and later
/// messages arrive; the hub's address stayed valid.
#[test]
fn clients_reconnect_after_the_hub_restarts() {
    let Some(lab) = lab(false) else { return };
    let dir = temp_dir("restart");
    let (mut h, peer) = hub(&lab, &dir);
    let mut nodes = clients(&lab, &peer);
    nodes[0].wait_join("r2");
    nodes[3].wait_join("l1");
    nodes[0].send("before the restart");
    nodes[3].wait_message("l1", "before the restart");
    h.signal("KILL");
    h.wait_exit();
    let (mut h2, peer2) = hub(&lab, &dir);
    assert_eq!(peer2, peer, "the hub's identity persists");
    // Every client finds the new hub, registers again and reserves a relay slot again.
    h2.wait_count("four registrations", 4, |v| {
        v["type"] == "notice"
            && v["text"]
                .as_str()
                .is_some_and(|t| t.contains("registered in room"))
    });
    h2.wait_for("a relay slot", |v| {
        v["type"] == "notice"
            && v["text"]
                .as_str()
                .is_some_and(|t| t.contains("reserved a relay slot"))
    });
    nodes[0].send("after the restart");
    nodes[3].wait_message("l1", "after the restart");
    nodes[3].send("and back");
    nodes[0].wait_message("r2", "and back");
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}
