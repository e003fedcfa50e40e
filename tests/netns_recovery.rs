//! Nothing lost: late joiners, a partition that heals, a crash and a frozen process, on hosts in
//! network namespaces with mDNS alone. Each test prints what it measured; none asserts a time.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::Node;
use common::netns::{Lab, Spawn};
use serde_json::Value;

fn lab(n: usize) -> Option<Lab> {
    if let Some(why) = Lab::unavailable() {
        eprintln!("skipped: network namespaces unavailable: {why}");
        return None;
    }
    Some(Lab::bridge(n).expect("lab set-up"))
}

/// One node per host, named `names`; returns once every node has seen every join.
fn start_all(lab: &Lab, names: &[&str]) -> Vec<Node> {
    let mut nodes: Vec<Node> = names
        .iter()
        .enumerate()
        .map(|(i, n)| lab.spawn(i + 1, n, &[]))
        .collect();
    for n in nodes.iter_mut() {
        for who in names {
            n.wait_join(who);
        }
    }
    nodes
}

/// `(event, lamport, peer, text, reason)` of each history line: what must match across nodes.
fn keys(history: &[Value]) -> Vec<String> {
    history
        .iter()
        .map(|v| {
            format!(
                "{} {} {} {} {}",
                v["event"], v["lamport"], v["peer"], v["text"], v["reason"]
            )
        })
        .collect()
}

/// Waits until every node prints the same `/history`; returns it.
fn converge(nodes: &mut [Node], what: &str) -> Vec<Value> {
    let until = Instant::now() + common::TIMEOUT * 2;
    loop {
        let hists: Vec<Vec<Value>> = nodes.iter_mut().map(|n| n.history()).collect();
        let first = keys(&hists[0]);
        if hists.iter().all(|h| keys(h) == first) {
            return hists.into_iter().next().unwrap_or_default();
        }
        if Instant::now() > until {
            let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
            for (n, h) in names.iter().zip(&hists) {
                eprintln!("--- {n}:\n{}", keys(h).join("\n"));
            }
            panic!("{what}: the transcripts never converged");
        }
    }
}

/// A node that joins late sees the conversation so far, in total order, before its own join,
/// marked as caught up.
#[test]
fn a_late_joiner_catches_up_before_its_join() {
    let Some(lab) = lab(3) else { return };
    let mut a = lab.spawn(1, "ann", &[]);
    let mut b = lab.spawn(2, "ben", &[]);
    a.wait_join("ben");
    b.wait_join("ann");
    for i in 0..5 {
        a.send(&format!("early {i}"));
        b.send(&format!("reply {i}"));
    }
    for i in 0..5 {
        a.wait_message("ben", &format!("reply {i}"));
        b.wait_message("ann", &format!("early {i}"));
    }
    let mut c = lab.spawn(3, "cat", &[]);
    c.wait_join("cat");
    let seen: Vec<Value> = c
        .seen()
        .iter()
        .filter(|v| ["join", "message", "leave"].contains(&v["type"].as_str().unwrap_or("")))
        .cloned()
        .collect();
    let own = seen
        .iter()
        .position(|v| v["user"] == "cat")
        .expect("cat's own join");
    let before = &seen[..own];
    assert_eq!(
        before.len(),
        2 + 10,
        "both joins and ten messages before cat's join: {before:?}"
    );
    assert!(before.iter().all(|v| v["sync"] == true), "{before:?}");
    let stamps: Vec<u64> = seen.iter().filter_map(|v| v["lamport"].as_u64()).collect();
    assert!(
        stamps.windows(2).all(|w| w[0] <= w[1]),
        "total order: {stamps:?}"
    );
    drop((a, b, c));
    drop(lab);
}

/// Five nodes chat while one host's link is down for 20 s; after the repair they reconnect by
/// themselves, each side's messages reach the other, and every `/history` is the same.
#[test]
fn five_nodes_heal_a_twenty_second_partition() {
    let Some(lab) = lab(5) else { return };
    let names = ["n1", "n2", "n3", "n4", "n5"];
    let mut nodes = start_all(&lab, &names);
    let mut sent = Vec::new();
    let mut say = |nodes: &mut [Node], i: usize, text: String| {
        nodes[i].send(&text);
        sent.push(text);
    };
    for (i, _) in names.iter().enumerate() {
        say(&mut nodes, i, format!("before {i}"));
    }
    lab.set_link(5, false).expect("cut n5");
    let cut = Instant::now();
    // Both sides notice the split (pings fail), and keep chatting through it.
    nodes[0].wait_for("n5 lost", |v| v["type"] == "leave" && v["user"] == "n5");
    nodes[4].wait_for("n1 lost", |v| v["type"] == "leave" && v["user"] == "n1");
    eprintln!("split noticed after {:?}", cut.elapsed());
    let mut round = 0;
    while cut.elapsed() < Duration::from_secs(20) {
        for i in 0..5 {
            say(&mut nodes, i, format!("during {round} from {i}"));
        }
        // The chat's pace (a workload, not a synchronisation): a round of five lines every
        // 200 ms, about a hundred rounds during the split.
        let last = format!("during {round} from 3");
        nodes[0].wait_message("n4", &last);
        std::thread::sleep(Duration::from_millis(200));
        round += 1;
    }
    lab.set_link(5, true).expect("repair n5");
    let repaired = Instant::now();
    // n5 was declared lost; it is present again on every screen once an event of its own
    // stamped after that `lost` arrives (its lines from the other side of the split, or a join
    // again if the `lost` outranks them all): section 7's presence rule.
    for n in nodes.iter_mut().take(4) {
        n.wait_until("n5 back after its lost", |seen| {
            let lost = seen
                .iter()
                .filter(|v| v["type"] == "leave" && v["user"] == "n5")
                .filter_map(|v| v["lamport"].as_u64())
                .max()?;
            seen.iter()
                .any(|v| {
                    (v["type"] == "join" || v["type"] == "message")
                        && v["user"] == "n5"
                        && v["lamport"].as_u64().is_some_and(|l| l > lost)
                })
                .then_some(())
        });
    }
    eprintln!(
        "n5 back in everyone's view {:?} after the repair",
        repaired.elapsed()
    );
    for i in 0..5 {
        say(&mut nodes, i, format!("after {i}"));
    }
    let history = converge(&mut nodes, "after the partition");
    eprintln!(
        "identical transcripts {:?} after the repair ({} events)",
        repaired.elapsed(),
        history.len()
    );
    for n in nodes.iter_mut() {
        let names = common::liar::room::who(n);
        assert!(
            names.iter().any(|u| u == "n5"),
            "{}: n5 is absent from /who after the repair: {names:?}",
            n.name
        );
    }
    let texts: HashSet<&str> = history.iter().filter_map(|v| v["text"].as_str()).collect();
    for t in &sent {
        assert!(
            texts.contains(t.as_str()),
            "{t:?} is missing from the transcript"
        );
    }
    drop(nodes);
    drop(lab);
}

/// Counts the `lost` leaves about `user` in a history.
fn lost_count(history: &[Value], user: &str) -> usize {
    history
        .iter()
        .filter(|v| v["event"] == "leave" && v["reason"] == "lost" && v["user"] == user)
        .count()
}

/// A killed participant is announced once, with the same stamp everywhere; a frozen one too, and
/// when it resumes it joins again.
#[test]
fn crashed_and_frozen_participants_are_announced_once() {
    let Some(lab) = lab(4) else { return };
    let names = ["k1", "k2", "k3", "k4"];
    let mut nodes = start_all(&lab, &names);
    // kill -9 k4.
    let killed = Instant::now();
    nodes[3].signal("KILL");
    let mut stamps = HashSet::new();
    for n in nodes.iter_mut().take(3) {
        let v = n.wait_for("k4 lost", |v| v["type"] == "leave" && v["user"] == "k4");
        assert_eq!(v["reason"], "lost");
        stamps.insert(v["lamport"].as_u64());
    }
    eprintln!("kill -9 announced everywhere after {:?}", killed.elapsed());
    assert_eq!(stamps.len(), 1, "one stamp everywhere: {stamps:?}");

    // SIGSTOP k3: its pings go unanswered.
    let frozen = Instant::now();
    nodes[2].signal("STOP");
    let mut stamps = HashSet::new();
    for n in nodes.iter_mut().take(2) {
        let v = n.wait_for("k3 lost", |v| v["type"] == "leave" && v["user"] == "k3");
        stamps.insert(v["lamport"].as_u64());
    }
    eprintln!("SIGSTOP announced everywhere after {:?}", frozen.elapsed());
    assert_eq!(stamps.len(), 1, "one stamp everywhere: {stamps:?}");
    nodes[2].signal("CONT");
    // It comes back and joins again; everyone agrees, with one announcement of each loss.
    for n in nodes.iter_mut().take(2) {
        n.wait_until("k3 joins again", |seen| {
            (seen
                .iter()
                .filter(|v| v["type"] == "join" && v["user"] == "k3")
                .count()
                >= 2)
                .then_some(())
        });
    }
    let alive = &mut nodes[..3];
    let history = converge(alive, "after the crash and the freeze");
    assert_eq!(lost_count(&history, "k4"), 1, "{history:?}");
    assert_eq!(lost_count(&history, "k3"), 1, "{history:?}");
    drop(nodes);
    drop(lab);
}
