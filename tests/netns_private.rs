//! A private room across two subnets that reach each other only through a hub (no forwarding):
//! three members (one on the other subnet, joined by ticket through the hub) chat with one
//! stamp; a node on the same LAN without the ticket, a plain gossipsub sniffer that subscribes
//! to every topic it sees, and the hub read nothing of it; a late member catches up from the
//! hub alone. Needs root and `ip`; skips otherwise.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::TIMEOUT;
use common::liar::{Cmd, Liar, Seen};
use common::netns::{Lab, Spawn};

/// Tells the sniffer to subscribe to every topic it sees subscribed, and keeps every gossip
/// message it got; returns once `enough` says so, or fails at the timeout.
fn sniff(
    sniffer: &mut Liar,
    topics: &mut HashSet<String>,
    got: &mut Vec<(String, Vec<u8>)>,
    enough: impl Fn(&HashSet<String>, &[(String, Vec<u8>)]) -> bool,
) {
    let until = Instant::now() + TIMEOUT;
    let mut next = 0;
    while !enough(topics, got) {
        assert!(
            Instant::now() < until,
            "sniffer: topics {topics:?}, {} messages",
            got.len()
        );
        let _ = sniffer.wait_until("a report", Duration::from_millis(200), |s| {
            (s.len() > next).then_some(())
        });
        let mut subscribe = Vec::new();
        for s in sniffer.seen_since(next) {
            match s {
                Seen::Subscribed { topic, .. } if topics.insert(topic.clone()) => {
                    subscribe.push(topic.clone());
                }
                Seen::Raw { topic, data } => got.push((topic.clone(), data.clone())),
                _ => {}
            }
        }
        next = sniffer.seen_since(0).len();
        for t in subscribe {
            sniffer.send(Cmd::Subscribe(t));
        }
    }
}

/// [`sniff`] for `window` at most, whatever comes.
fn sniff_for(
    sniffer: &mut Liar,
    topics: &mut HashSet<String>,
    got: &mut Vec<(String, Vec<u8>)>,
    window: Duration,
) {
    let until = Instant::now() + window;
    sniff(sniffer, topics, got, |_, _| Instant::now() >= until);
}

#[test]
fn a_private_room_across_subnets_is_read_by_its_members_only() {
    if let Some(why) = Lab::unavailable() {
        eprintln!("skipped: network namespaces unavailable: {why}");
        return;
    }
    let lab = Lab::routed(3, 2, false).expect("lab set-up");
    let dir = std::env::temp_dir().join(format!("chitty-netns-private-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let dir_s = dir.to_str().expect("a UTF-8 temp path").to_owned();
    let mut hub = lab.spawn_router("hub", &["--relay", "--json", "--data-dir", &dir_s]);
    let (hub_peer, _) = hub.ready();
    let hub_addr = format!("/ip4/10.81.1.254/tcp/4747/p2p/{hub_peer}");

    let mut alice = lab.spawn(
        1,
        "zaphodb",
        &["--private", "--room", "plans", "--connect", &hub_addr],
    );
    let ticket = alice.wait_for("zaphodb's ticket", |v| v["type"] == "ticket")["ticket"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    alice.wait_join("zaphodb");
    let mut bob = lab.spawn(2, "trillian", &["--join", &ticket]);
    // carol is on the other subnet: of the ticket's addresses only the hub's answers her.
    let mut carol = lab.spawn(4, "marvinpa", &["--join", &ticket]);
    // eve is on zaphodb's LAN, in the public room, and uses the hub too.
    let mut eve = lab.spawn(3, "eve", &["--connect", &hub_addr]);
    let mut sniffer = Liar::sniffer(lab.host(3));
    sniffer.dial(&hub_addr);
    let mut members = [&mut alice, &mut bob, &mut carol];
    for who in ["zaphodb", "trillian", "marvinpa"] {
        let stamps: HashSet<u64> = members.iter_mut().map(|n| n.wait_join(who)).collect();
        assert_eq!(stamps.len(), 1, "{who}'s join has one stamp everywhere");
    }
    eve.wait_join("eve");
    // The sniffer has found the private room's topic on the hub and subscribed to it.
    let (mut topics, mut got) = (HashSet::new(), Vec::new());
    sniff(&mut sniffer, &mut topics, &mut got, |t, _| {
        t.iter().any(|t| t.starts_with("chitty-private/"))
    });

    // Its subscription reaches the hub's mesh within a heartbeat or so: lines that say nothing
    // until one reaches it.
    let private = |g: &[(String, Vec<u8>)]| {
        g.iter()
            .filter(|(t, _)| t.starts_with("chitty-private/"))
            .count()
    };
    let warm_until = Instant::now() + TIMEOUT;
    for i in 0.. {
        assert!(
            Instant::now() < warm_until,
            "the sniffer never got the room's traffic"
        );
        alice.send(&format!("warming up {i}"));
        alice.wait_message("zaphodb", &format!("warming up {i}"));
        sniff_for(&mut sniffer, &mut topics, &mut got, Duration::from_secs(1));
        if private(&got) > 0 {
            break;
        }
    }
    let warm = private(&got);
    let secret_line = "the vault code is 4711";
    alice.send(secret_line);
    carol.send("see you at the harbour");
    for (who, text) in [
        ("zaphodb", secret_line),
        ("marvinpa", "see you at the harbour"),
    ] {
        let mut members = [&mut alice, &mut bob, &mut carol];
        let stamps: HashSet<u64> = members
            .iter_mut()
            .map(|n| n.wait_message(who, text))
            .collect();
        assert_eq!(stamps.len(), 1, "{text:?} has one stamp everywhere");
    }
    // The sniffer got the room's traffic, sealed: the two lines too.
    sniff(&mut sniffer, &mut topics, &mut got, |_, g| {
        private(g) >= warm + 2
    });

    for n in [&mut alice, &mut bob, &mut carol] {
        n.send("/quit");
        n.wait_exit();
    }
    let mut dave = lab.spawn(5, "fordprefect", &["--join", &ticket]);
    let caught = dave.wait_for("dave reads the history from the hub alone", |v| {
        v["text"] == secret_line && v["sync"] == true
    });
    assert_eq!(caught["user"], "zaphodb");
    dave.wait_message("marvinpa", "see you at the harbour");

    let needles = [
        secret_line,
        "4711",
        "harbour",
        "zaphodb",
        "trillian",
        "marvinpa",
        "fordprefect",
        "plans",
        &ticket[..40],
    ];
    let mut places = eve.outputs();
    places.extend(
        got.iter()
            .map(|(t, d)| (format!("the sniffer's message on {t}"), d.clone())),
    );
    hub.signal("TERM");
    hub.wait_exit();
    places.extend(hub.outputs());
    places.extend(
        common::files_under(&dir)
            .into_iter()
            .map(|(p, b)| (format!("the hub's {}", p.display()), b)),
    );
    for (place, bytes) in &places {
        for needle in needles {
            assert!(!common::holds(bytes, needle), "{needle:?} found in {place}");
        }
    }
    assert!(
        !eve.seen().iter().any(|v| v["type"] == "message"),
        "eve saw a message"
    );
    drop(dave);
    drop(eve);
    let _ = std::fs::remove_dir_all(&dir);
}
