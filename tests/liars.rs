//! Foreign peers that speak the protocol correctly and lie (docs/PROTOCOL.md section 8): about
//! their clock in hellos, about who vanished, about how much they said, about who they are,
//! with wild stamps, and with more requests than a peer should make. Each lie has a test of
//! what users see (the `--json` lines of honest nodes) and of whether the liar is cut off (its
//! connection closed, a new one closed at once); each has an honest twin that the rule must not
//! break. The liar is `common::liar`, built from the document alone.
//!
//! Loopback only, no mDNS; every wait has a timeout. The few `sleep`s pace what the liar sends
//! (its rate is the scenario), they never wait for something to happen.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::Node;
use common::liar::room::{
    highest_stamp, historian, honest, hub, lines_by, pair, peer_of, said_cut_off, short, star,
    until_either, wait_lines_by, who,
};
use common::liar::{Author, Cmd, HelloMsg, Liar, Seen, TOPIC, empty_summary, now_ms, sync_request};

/// The highest stamp an honest node of these small rooms may show (rules 1 and 6).
const SMALL: u64 = 1 << 24;
/// A pace above one a second: under the hello rate (a burst of 20, then one a second).
const HELLO_PACE: Duration = Duration::from_millis(1100);

/// Rule 1 (a): a hello claiming a clock 2^33 ahead does not move alice's clock, so her next
/// lines reach the room, with small stamps, and nobody cuts alice off.
#[test]
fn given_a_hello_claiming_2_pow_33_when_alice_talks_then_her_lines_reach_everyone_with_small_stamps()
 {
    let (mut a, addr, mut b, mut c) = star();
    let alice = peer_of(&mut a);
    let mut liar = Liar::spawn("mallory");
    let lie = HelloMsg::new(1 << 33, vec![]);
    liar.send(Cmd::SetHello(lie.clone()));
    liar.join_room(&addr, alice);
    // Alice has read the lie once she has answered it.
    liar.hello_answered(alice, lie);
    for i in 0..5 {
        a.send(&format!("after the lie {i}"));
    }
    for n in [&mut a, &mut b, &mut c] {
        for i in 0..5 {
            n.wait_message("alice", &format!("after the lie {i}"));
        }
    }
    for n in [&a, &b, &c] {
        let top = highest_stamp(n);
        assert!(
            top < SMALL,
            "{}: a stamp of {top} shown after a hello's lie",
            n.name
        );
    }
    for n in [&b, &c] {
        assert!(!said_cut_off(n, &alice), "{}: alice was cut off", n.name);
        assert!(
            !n.seen()
                .iter()
                .any(|v| v["type"] == "leave" && v["user"] == "alice"),
            "{}: alice shown leaving",
            n.name
        );
    }
}

/// Rule 1 (b): hellos claiming 2^62 - 1 to everyone freeze nobody's clock: bob's lines reach
/// everyone.
#[test]
fn given_hellos_claiming_2_pow_62_minus_1_to_everyone_when_bob_talks_then_everyone_shows_his_lines()
{
    let (mut a, addr, mut b, mut c) = star();
    let ids = [peer_of(&mut a), peer_of(&mut b), peer_of(&mut c)];
    let addrs = [addr, b.loopback_addr(), c.loopback_addr()];
    let mut liar = Liar::spawn("mallory");
    let lie = HelloMsg::new((1 << 62) - 1, vec![]);
    liar.send(Cmd::SetHello(lie.clone()));
    for (id, addr) in ids.iter().zip(&addrs) {
        liar.join_room(addr, *id);
        liar.hello_answered(*id, lie.clone());
    }
    for i in 0..3 {
        b.send(&format!("bob after the lie {i}"));
    }
    for n in [&mut a, &mut b, &mut c] {
        for i in 0..3 {
            n.wait_message("bob", &format!("bob after the lie {i}"));
        }
    }
    for n in [&a, &b, &c] {
        let top = highest_stamp(n);
        assert!(top < SMALL, "{}: a stamp of {top} shown", n.name);
    }
}

/// Rules 1 and 6, the honest case: a room whose clock is far on (a participant's signed events
/// stamped from 1,000,000) is learned from those events, so a newcomer's join sorts after them.
#[test]
fn given_a_room_whose_clock_is_far_on_when_a_newcomer_joins_then_its_join_sorts_after_the_past() {
    let join = newcomer_after_a_past_at(1_000_000);
    assert!(
        join > 1_000_000 + 3,
        "alice's join {join} sorts after the room's past"
    );
}

/// Rule 1 (c): a peer that keeps sending wild hellos (2^40, far more than 2^32 ahead), five
/// within a minute on one connection, is cut off.
#[test]
fn given_a_peer_that_keeps_claiming_wild_clocks_then_it_is_cut_off() {
    let (mut a, addr, mut b) = pair();
    let alice = peer_of(&mut a);
    let mut liar = Liar::spawn("mallory");
    let wild = HelloMsg::new(1 << 40, vec![]);
    liar.join_room(&addr, alice);
    for _ in 0..5 {
        liar.drain();
        if liar.closed_by(alice, 0) {
            break;
        }
        liar.hello(alice, wild.clone());
        std::thread::sleep(HELLO_PACE);
    }
    liar.assert_cut_off(alice, &addr, "five wild hellos in a minute");
    a.wait_for("alice says she cut the liar off", |v| {
        v["type"] == "notice" && v["text"].as_str().is_some_and(|t| t.contains("cut off"))
    });
    // The room goes on, with small stamps.
    a.send("still fine");
    assert!(b.wait_message("alice", "still fine") < SMALL);
}

/// Rule 1 (c), the honest case: a peer repeating honest hellos (its true clock), five within a
/// minute, is answered every time and stays connected.
#[test]
fn given_a_peer_repeating_honest_hellos_then_it_is_answered_and_stays_connected() {
    let (mut a, addr, _b) = pair();
    let alice = peer_of(&mut a);
    let mut liar = Liar::spawn("honest");
    liar.join_room(&addr, alice);
    for _ in 0..5 {
        let clock = liar.clock();
        liar.hello_answered(alice, HelloMsg::new(clock, vec![]));
        std::thread::sleep(HELLO_PACE);
    }
    a.send("you are still heard");
    liar.wait("alice's line, by gossip", |s| match s {
        Seen::Gossip { event, .. } if event.text.as_deref() == Some("you are still heard") => {
            Some(())
        }
        _ => None,
    });
    liar.drain();
    assert!(!liar.closed_by(alice, 0), "alice closed an honest peer");
}

/// Rule 2: a joined participant announcing bob lost once a second while bob talks: no screen
/// shows bob leave, each shows at most one extra join of bob, and the announcer is cut off
/// (once bob has been heard from long enough, `ALIVE_STEADY`, for the lie to be plain).
#[test]
fn given_false_lost_announcements_about_a_talking_participant_then_nobody_shows_him_leave_and_the_announcer_is_cut_off()
 {
    let (mut a, addr, mut b, mut c) = star();
    let alice = peer_of(&mut a);
    let bob = peer_of(&mut b);
    let mut liar = Liar::spawn("mallory");
    let clock = liar.join_room(&addr, alice);
    let join = liar.me.join(clock + 1, now_ms());
    liar.publish(&join);
    liar.send(Cmd::SetHello(HelloMsg::new(
        clock + 1,
        vec![liar.me.entry(join.lamport, join.seq)],
    )));
    for n in [&mut a, &mut b, &mut c] {
        n.wait_join("mallory");
    }
    for i in 0..30 {
        b.send(&format!("bob is here {i}"));
        let t = liar.clock();
        let lost = liar.me.lost(t + 1, now_ms(), &bob, "bob");
        liar.publish(&lost);
        // The liar's pace: one a second, until it is cut off.
        if liar.closed_within(alice, Duration::from_secs(1)) {
            break;
        }
    }
    b.send("bob's last word");
    for n in [&mut a, &mut b, &mut c] {
        n.wait_message("bob", "bob's last word");
    }
    for n in [&mut a, &mut c] {
        let names = who(n);
        assert!(
            names.iter().any(|u| u == "bob"),
            "{}: bob is absent from /who: {names:?}",
            n.name
        );
    }
    for n in [&a, &b, &c] {
        let left: Vec<_> = n
            .seen()
            .iter()
            .filter(|v| v["type"] == "leave" && v["user"] == "bob")
            .collect();
        assert!(
            left.is_empty(),
            "{}: bob shown leaving: {left:?}\nSTDERR {}",
            n.name,
            n.stderr_text()
        );
        let joins = n
            .seen()
            .iter()
            .filter(|v| v["type"] == "join" && v["user"] == "bob")
            .count();
        assert!(
            joins <= 2,
            "{}: bob shown joining {joins} times (his join and at most one more)",
            n.name
        );
    }
    liar.assert_cut_off(alice, &addr, "false lost announcements once a second");
}

/// Rule 2, the honest case: bob killed (SIGKILL) is shown lost, exactly once, by the others.
#[test]
fn given_a_participant_killed_then_the_others_show_it_lost_exactly_once() {
    let (mut a, _addr, b, mut c) = star();
    b.signal("KILL");
    for n in [&mut a, &mut c] {
        let v = n.wait_leave("bob");
        assert_eq!(v["reason"], "lost", "{}: {v}", n.name);
    }
    a.send("bob is gone");
    c.wait_message("alice", "bob is gone");
    // A window for a second announcement, which must not come.
    a.watch(Duration::from_secs(3));
    c.watch(Duration::from_millis(100));
    for n in [&a, &c] {
        let lost = n
            .seen()
            .iter()
            .filter(|v| v["type"] == "leave" && v["user"] == "bob")
            .count();
        assert_eq!(lost, 1, "{}: bob shown lost {lost} times", n.name);
    }
}

/// Rule 3: a newcomer offering 2,000 lines of its own, all said now, as history: alice takes at
/// most 256 of them plus the rate over the seconds their times span (none here), and cuts the liar off after
/// repeated pages.
#[test]
fn given_a_newcomer_offering_2000_lines_said_now_as_history_then_at_most_a_burst_is_shown_and_it_is_cut_off()
 {
    let (mut a, addr, mut b) = pair();
    let alice = peer_of(&mut a);
    let mut liar = Liar::spawn("flooder");
    let clock = liar.join_room(&addr, alice);
    let now = now_ms();
    let join = liar.me.join(clock + 1, now);
    let entry = liar.me.entry(join.lamport, join.seq);
    let mut offer = vec![join];
    for i in 0..2000 {
        offer.push(liar.me.message(clock + 2 + i, now, &format!("flood {i}")));
    }
    let top = clock + 2001;
    liar.send(Cmd::Serve(offer));
    let hello = HelloMsg::new(top, vec![entry]);
    liar.send(Cmd::SetHello(hello.clone()));
    // A hello makes alice ask for history (section 6).
    liar.hello(alice, hello);
    // Until alice cut the liar off, or took all it offered: she asked again after a last page
    // (one with events and nothing more), so she has handled that page.
    let outcome = liar.wait_until("alice cut the liar off or took it all", TIMEOUT2, |seen| {
        let last = seen.iter().position(|s| {
            matches!(s, Seen::SyncAsked { peer, more: false, events } if *peer == alice && *events > 0)
        });
        seen.iter().enumerate().find_map(|(i, s)| match s {
            Seen::Closed {
                peer, remaining: 0, ..
            } if *peer == alice => Some("cut off"),
            Seen::SyncAsked { peer, .. } if *peer == alice && last.is_some_and(|l| i > l) => {
                Some("all served")
            }
            _ => None,
        })
    });
    eprintln!("flood offered: {outcome:?}");
    a.send("after the flood");
    a.wait_message("alice", "after the flood");
    b.wait_message("alice", "after the flood");
    let me = liar.peer();
    for n in [&a, &b] {
        let shown = lines_by(n, &me).len();
        assert!(
            shown <= 256 + 2,
            "{}: {shown} of the liar's 2,001 events shown, not at most a burst (256, and its join)",
            n.name
        );
    }
    // Each exchange stops at a page that brings nothing new, and alice asks its peers in turn
    // every 3 s: repeated pages take a few rounds.
    liar.assert_cut_off_within(
        alice,
        &addr,
        "2,000 lines said at once, offered by sync",
        Duration::from_secs(60),
    );
}

/// A longer wait, for exchanges of many pages.
const TIMEOUT2: Duration = Duration::from_secs(30);

/// Rule 3, the honest case: a historian serving 1,000 honest events by 5 authors (each joined,
/// 10 a second over 20 s) gets all of them shown by a newcomer.
#[test]
fn given_an_honest_backlog_of_1000_events_by_5_authors_then_a_newcomer_shows_all_of_them() {
    let (_h, addr, authors, events) = historian(5, 200);
    assert_eq!(events.len(), 1000);
    let mut a = honest("alice", &["--connect", &addr]);
    wait_lines_by(&mut a, &authors, 1000);
}

/// Rule 4: a peer asking for the whole history 100 times within about 4 s gets at most its
/// budget: 48 pages in a burst, then 2 a second.
#[test]
fn given_100_sync_requests_within_4_s_then_the_asker_gets_at_most_its_budget() {
    let (_h, hist_addr, authors, events) = historian(10, 260);
    let mut a = honest("alice", &["--connect", &hist_addr]);
    let addr = a.loopback_addr();
    let alice = peer_of(&mut a);
    wait_lines_by(&mut a, &authors, events.len());
    let mut liar = Liar::spawn("asker");
    liar.join_room(&addr, alice);
    let from = liar.seen.len();
    let start = Instant::now();
    for _ in 0..100 {
        liar.send(Cmd::Sync {
            to: alice,
            request: empty_summary(TOPIC),
        });
        // The liar's pace: 100 requests in 4 s.
        std::thread::sleep(Duration::from_millis(40));
    }
    let pages = liar
        .wait_until("100 answers (or failures)", TIMEOUT2, |seen| {
            let new = seen.get(from..)?;
            let done = new
                .iter()
                .filter(|s| {
                    matches!(s, Seen::SyncPage { peer, .. } | Seen::Unanswered { peer, protocol: "sync", .. } if *peer == alice)
                })
                .count();
            let closed = new
                .iter()
                .any(|s| matches!(s, Seen::Closed { peer, remaining: 0, .. } if *peer == alice));
            (done >= 100 || closed).then(|| {
                new.iter()
                    .filter_map(|s| match s {
                        Seen::SyncPage { peer, events, .. } if *peer == alice => Some(*events),
                        _ => None,
                    })
                    .collect::<Vec<usize>>()
            })
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let elapsed = start.elapsed().as_secs_f64().ceil() as usize;
    let total: usize = pages.iter().sum();
    let budget = (48 + 2 * elapsed + 2) * 256;
    assert!(
        total <= budget,
        "the asker got {total} events in {} pages within {elapsed} s; its budget is {budget}",
        pages.len()
    );
}

/// Rule 4, the honest case: a newcomer still catches up with a history of 2,600 events.
#[test]
fn given_a_history_of_2600_events_then_a_newcomer_catches_up_with_all_of_it() {
    let (_h, hist_addr, authors, events) = historian(10, 260);
    let mut a = honest("alice", &["--connect", &hist_addr]);
    let addr = a.loopback_addr();
    wait_lines_by(&mut a, &authors, events.len());
    // Bob reaches only alice.
    let mut b = honest("bob", &["--connect", &addr]);
    wait_lines_by(&mut b, &authors, events.len());
    b.wait_join("bob");
}

/// Rule 5: a hello speaks only for its sender, and only signed events put names in `/who`: a
/// liar joined as mallory that lists itself as alice2 (join stamp 2^62 - 1) is shown as
/// mallory; after its signed leave it is gone from `/who`, and nobody announces it lost.
#[test]
fn given_a_hello_listing_its_sender_under_another_name_then_who_shows_only_its_signed_name() {
    let (mut a, addr, mut b) = pair();
    let alice = peer_of(&mut a);
    let mut liar = Liar::spawn("mallory");
    let clock = liar.join_room(&addr, alice);
    let join = liar.me.join(clock + 1, now_ms());
    liar.publish(&join);
    a.wait_join("mallory");
    b.wait_join("mallory");
    let mut alias = liar.me.entry((1 << 62) - 1, join.seq);
    alias.user = "alice2".into();
    let hello = HelloMsg::new(clock + 1, vec![alias]);
    liar.send(Cmd::SetHello(hello.clone()));
    liar.hello_answered(alice, hello);
    for n in [&mut a, &mut b] {
        let names = who(n);
        assert!(
            names.iter().any(|u| u == "mallory") && !names.iter().any(|u| u == "alice2"),
            "{}: /who lists {names:?}",
            n.name
        );
    }
    quit_and_vanish(&mut liar, alice, &mut a, &mut b);
}

/// The liar leaves (signed, `quit`) and disconnects: `/who` drops it and, in the next 10 s,
/// nobody announces it lost.
fn quit_and_vanish(liar: &mut Liar, alice: libp2p::PeerId, a: &mut Node, b: &mut Node) {
    let t = liar.clock();
    let quit = liar.me.quit(t + 1, now_ms());
    liar.publish(&quit);
    a.wait_leave("mallory");
    b.wait_leave("mallory");
    liar.send(Cmd::Disconnect(alice));
    a.watch(Duration::from_secs(10));
    b.watch(Duration::from_millis(100));
    for n in [a, b] {
        let lost: Vec<_> = n
            .seen()
            .iter()
            .filter(|v| v["type"] == "leave" && v["reason"] == "lost")
            .collect();
        assert!(lost.is_empty(), "{}: {lost:?}", n.name);
        let names = who(n);
        assert!(
            !names.iter().any(|u| u == "mallory" || u == "alice2"),
            "{}: /who still lists {names:?}",
            n.name
        );
    }
}

/// Rule 5, the honest case: a foreign participant that joins as mallory and lists itself
/// truthfully is in `/who`; after its signed leave it is not, and nobody announces it lost.
#[test]
fn given_a_foreign_participant_that_joins_and_quits_then_who_follows_its_signed_events() {
    let (mut a, addr, mut b) = pair();
    let alice = peer_of(&mut a);
    let mut liar = Liar::spawn("mallory");
    let clock = liar.join_room(&addr, alice);
    let join = liar.me.join(clock + 1, now_ms());
    liar.publish(&join);
    a.wait_join("mallory");
    b.wait_join("mallory");
    let hello = HelloMsg::new(clock + 1, vec![liar.me.entry(join.lamport, join.seq)]);
    liar.send(Cmd::SetHello(hello.clone()));
    liar.hello_answered(alice, hello);
    for n in [&mut a, &mut b] {
        let names = who(n);
        assert!(
            names.iter().any(|u| u == "mallory"),
            "{}: /who lists {names:?}",
            n.name
        );
    }
    quit_and_vanish(&mut liar, alice, &mut a, &mut b);
}

/// Rule 6: six messages stamped 2^32 - 1 ahead of alice's clock, sent by their author itself:
/// none is shown, the room's stamps stay small, and the author is cut off.
#[test]
fn given_six_messages_stamped_2_pow_32_ahead_by_their_author_then_none_is_shown_and_it_is_cut_off()
{
    let (mut a, addr, mut b) = pair();
    let alice = peer_of(&mut a);
    let mut liar = Liar::spawn("mallory");
    let clock = liar.join_room(&addr, alice);
    let join = liar.me.join(clock + 1, now_ms());
    liar.publish(&join);
    a.wait_join("mallory");
    for i in 0..6 {
        let t = liar.clock();
        let e = liar
            .me
            .message(t + (1 << 32) - 1, now_ms(), &format!("from the future {i}"));
        liar.publish(&e);
    }
    // Alice has handled the wild lines once she shows one, or closes their author's connection.
    until_either(
        &mut a,
        &mut liar,
        "a wild line shown, or its author cut off",
        |v| {
            v["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("from the future"))
        },
        |s| matches!(s, Seen::Closed { peer, remaining: 0, .. } if *peer == alice),
    );
    a.send("back to now");
    a.wait_message("alice", "back to now");
    b.wait_message("alice", "back to now");
    for n in [&a, &b] {
        let future: Vec<_> = n
            .seen()
            .iter()
            .filter(|v| {
                v["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("from the future"))
            })
            .collect();
        assert!(future.is_empty(), "{}: shown {future:?}", n.name);
        let top = highest_stamp(n);
        assert!(top < SMALL, "{}: a stamp of {top} shown", n.name);
    }
    liar.assert_cut_off(alice, &addr, "six wild stamps from their author");
}

/// Rule 6, the honest case: a message stamped 1000 ahead of alice's clock is shown, and
/// forwarded.
#[test]
fn given_a_message_stamped_1000_ahead_then_it_is_shown_and_forwarded() {
    let (mut a, addr, mut b) = pair();
    let alice = peer_of(&mut a);
    let mut liar = Liar::spawn("mallory");
    let clock = liar.join_room(&addr, alice);
    let join = liar.me.join(clock + 1, now_ms());
    liar.publish(&join);
    a.wait_join("mallory");
    let t = liar.clock();
    let e = liar.me.message(t + 1000, now_ms(), "a little ahead");
    liar.publish(&e);
    assert_eq!(a.wait_message("mallory", "a little ahead"), t + 1000);
    assert_eq!(b.wait_message("mallory", "a little ahead"), t + 1000);
}

/// Rule 7: after a flood of offences of several kinds (wild hellos, wild stamps, garbage) and
/// redials once cut off, alice's stderr names each kind of offence of the liar once, and her
/// notices about it are not repeated either.
#[test]
fn given_a_flood_of_offences_then_stderr_names_each_kind_once() {
    let (mut a, addr, _b) = pair();
    let alice = peer_of(&mut a);
    let mut liar = Liar::spawn("mallory");
    liar.join_room(&addr, alice);
    for _ in 0..2 {
        liar.hello(alice, HelloMsg::new(1 << 40, vec![]));
    }
    for i in 0..2 {
        let t = liar.clock();
        let e = liar
            .me
            .message(t + (1 << 40), now_ms(), &format!("far ahead {i}"));
        liar.publish(&e);
    }
    for i in 0..3u8 {
        liar.send(Cmd::Publish(vec![0xff, i, b'x']));
    }
    liar.assert_cut_off(alice, &addr, "a flood of offences");
    for _ in 0..2 {
        liar.assert_refused(alice, &addr, "a flood of offences");
    }
    a.send("marker");
    a.wait_message("alice", "marker");
    let me = liar.peer();
    let id = me.to_base58();
    let mut kinds: HashMap<String, Vec<String>> = HashMap::new();
    for line in a.stderr_lines() {
        if line.contains(&id) && (line.contains("WARN") || line.contains("ERROR")) {
            kinds.entry(kind(&line, &id)).or_default().push(line);
        }
    }
    assert!(
        !kinds.is_empty(),
        "alice's stderr never names the liar's offences:\n{}",
        a.stderr_text()
    );
    let repeated: Vec<_> = kinds.values().filter(|l| l.len() > 1).collect();
    assert!(
        repeated.is_empty(),
        "alice's stderr repeats a kind of warning about the liar: {repeated:#?}"
    );
    let short = short(&me);
    let mut notices: HashMap<String, usize> = HashMap::new();
    for v in a.seen() {
        if let Some(t) = v["text"].as_str()
            && v["type"] == "notice"
            && t.contains(&short)
        {
            *notices.entry(t.to_owned()).or_default() += 1;
        }
    }
    assert!(
        notices.values().all(|n| *n == 1),
        "alice's notices about the liar repeat: {notices:?}"
    );
}

/// The kind of a log line: its target, message and fields, without the time, the spans and
/// the numbers (`... WARN node{user=alice}: chitty_node::net::x: rejected message peer=P
/// reason=stamp 1099511627780 is too far ahead` is `chitty_node::net::x: rejected message
/// peer=<peer> reason=stamp # is too far ahead`): two reasons are two kinds.
fn kind(line: &str, id: &str) -> String {
    let line = line.replace(id, "<peer>");
    let rest = line
        .split_once(" WARN ")
        .or_else(|| line.split_once(" ERROR "))
        .map_or(line.as_str(), |(_, r)| r);
    let words: Vec<&str> = rest.split_whitespace().collect();
    let target = words
        .iter()
        .position(|w| w.contains("::") && w.ends_with(':'))
        .unwrap_or(0);
    words[target..]
        .iter()
        .map(|w| w.replace(|c: char| c.is_ascii_digit(), "#"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The hub bounds rooms per peer: a client saying hello in 20 rooms (at the hello rate) is
/// served in at most 8.
#[test]
fn given_a_client_opening_20_rooms_on_a_hub_then_at_most_8_are_served() {
    let mut h = hub();
    let hub_peer = peer_of(&mut h);
    let addr = h.loopback_addr();
    let mut liar = Liar::spawn("roomer");
    let room = |i: usize| {
        let mut m = HelloMsg::new(0, vec![]);
        m.topic = format!("chitty-chat/r{i}");
        m
    };
    liar.send(Cmd::SetHello(room(1)));
    liar.dial(&addr);
    let mut tags = Vec::new();
    for i in 2..=20 {
        tags.push(liar.hello(hub_peer, room(i)));
        std::thread::sleep(HELLO_PACE);
    }
    let served = liar
        .wait_until("20 answers (or failures)", TIMEOUT2, |seen| {
            // The connection's hello (room 1), and ours.
            let answered = seen
                .iter()
                .filter(|s| {
                    matches!(s, Seen::Hello { peer, response: true, .. } | Seen::Unanswered { peer, protocol: "hello", .. } if *peer == hub_peer)
                })
                .count();
            let closed = seen
                .iter()
                .any(|s| matches!(s, Seen::Closed { peer, remaining: 0, .. } if *peer == hub_peer));
            (answered >= 20 || closed).then(|| {
                let mut rooms: Vec<String> = seen
                    .iter()
                    .filter_map(|s| match s {
                        Seen::Hello {
                            peer,
                            response: true,
                            hello,
                            ..
                        } if *peer == hub_peer && hello.topic.starts_with("chitty-chat/r") => {
                            Some(hello.topic.clone())
                        }
                        _ => None,
                    })
                    .collect();
                rooms.sort();
                rooms.dedup();
                rooms
            })
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        served.len() <= 8,
        "the hub served {} rooms to one client: {served:?}",
        served.len()
    );
}

/// The hub, the honest case: a client in 3 rooms is served in all 3 and stays connected.
#[test]
fn given_a_client_opening_3_rooms_on_a_hub_then_all_are_served() {
    let mut h = hub();
    let hub_peer = peer_of(&mut h);
    let addr = h.loopback_addr();
    let mut liar = Liar::spawn("roomer");
    let room = |i: usize| {
        let mut m = HelloMsg::new(0, vec![]);
        m.topic = format!("chitty-chat/r{i}");
        m
    };
    liar.send(Cmd::SetHello(room(1)));
    liar.dial(&addr);
    let first = liar.wait("the hub's hello in chitty-chat/r1", |s| match s {
        Seen::Hello {
            peer,
            response: true,
            hello,
            ..
        } if *peer == hub_peer => Some(hello.clone()),
        _ => None,
    });
    let mut answers = vec![first];
    for i in 2..=3 {
        answers.push(liar.hello_answered(hub_peer, room(i)));
    }
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a.topic, format!("chitty-chat/r{}", i + 1), "{a:?}");
        assert!(a.archive, "the hub's hello says archive: {a:?}");
    }
    liar.drain();
    assert!(
        !liar.closed_by(hub_peer, 0),
        "the hub closed an honest client"
    );
}

/// The hub applies the offence and ban rules too: a client claiming wild clocks (2^40) in five
/// hellos within a minute is cut off.
#[test]
fn given_a_client_claiming_wild_clocks_to_a_hub_then_the_hub_cuts_it_off() {
    let mut h = hub();
    let hub_peer = peer_of(&mut h);
    let addr = h.loopback_addr();
    let mut liar = Liar::spawn("mallory");
    let wild = HelloMsg::new(1 << 40, vec![]);
    liar.dial(&addr);
    liar.wait("the hub's hello", |s| match s {
        Seen::Hello { peer, .. } if *peer == hub_peer => Some(()),
        _ => None,
    });
    for _ in 0..5 {
        liar.drain();
        if liar.closed_by(hub_peer, 0) {
            break;
        }
        liar.hello(hub_peer, wild.clone());
        std::thread::sleep(HELLO_PACE);
    }
    liar.assert_cut_off(hub_peer, &addr, "five wild hellos to a hub");
}

/// Rule 4, hellos: a peer sending 40 hellos at once is answered for a burst of 20 (a hello for
/// each of up to 16 rooms, and a few more), then one a second; the rest go unanswered.
#[test]
fn given_40_hellos_at_once_then_at_most_the_burst_and_one_a_second_are_answered() {
    let mut a = honest("alice", &[]);
    let addr = a.loopback_addr();
    let alice = peer_of(&mut a);
    let mut liar = Liar::spawn("chatty");
    let clock = liar.join_room(&addr, alice);
    let start = Instant::now();
    let tags: Vec<u64> = (0..40)
        .map(|_| liar.hello(alice, HelloMsg::new(clock, vec![])))
        .collect();
    let answered = tags.into_iter().filter(|t| liar.answer(*t).is_ok()).count();
    let elapsed = start.elapsed().as_secs_f64().ceil() as usize;
    // The connection's own hello took one of the burst already; one more for rounding.
    assert!(
        answered <= 20 + elapsed + 1,
        "{answered} of 40 hellos sent at once answered within {elapsed} s"
    );
}

/// Rule 5: a hello listing its sender, with a join it never signed, puts nobody in `/who`.
#[test]
fn given_a_hello_listing_its_sender_without_a_signed_join_then_who_does_not_list_it() {
    let (mut a, addr, mut b) = pair();
    let alice = peer_of(&mut a);
    let mut liar = Liar::spawn("ghost");
    let ghost = HelloMsg::new(0, vec![liar.me.entry(1, 1)]);
    liar.send(Cmd::SetHello(ghost.clone()));
    let clock = liar.join_room(&addr, alice);
    liar.hello_answered(alice, HelloMsg::new(clock, ghost.participants.clone()));
    for n in [&mut a, &mut b] {
        let names = who(n);
        assert!(
            !names.iter().any(|u| u == "ghost"),
            "{}: /who lists {names:?}",
            n.name
        );
    }
}

/// Rule 6, by sync: events their author serves itself stamped 2^30 ahead of alice's clock
/// (alice has taken other authors' events) are refused: not shown, the stamps stay small.
#[test]
fn given_history_stamped_2_pow_30_ahead_served_by_its_author_then_none_is_shown() {
    let (mut a, addr, mut b) = pair();
    let alice = peer_of(&mut a);
    let mut liar = Liar::spawn("mallory");
    let clock = liar.join_room(&addr, alice);
    let join = liar.me.join(clock + 1, now_ms());
    liar.publish(&join);
    a.wait_join("mallory");
    let entry = liar.me.entry(join.lamport, join.seq);
    let mut offer = vec![join];
    for i in 0..3 {
        offer.push(liar.me.message(
            clock + 2 + (1 << 30) + i,
            now_ms(),
            &format!("far ahead {i}"),
        ));
    }
    liar.send(Cmd::Serve(offer));
    // A hello makes alice ask for history (section 6).
    liar.hello(alice, HelloMsg::new(clock + 1, vec![entry]));
    // Alice has handled the page once she asks again, or has cut the liar off.
    liar.wait_until("alice handled the wild page", TIMEOUT2, |seen| {
        let page = seen.iter().position(
            |s| matches!(s, Seen::SyncAsked { peer, events, .. } if *peer == alice && *events > 0),
        )?;
        seen[page + 1..]
            .iter()
            .any(|s| match s {
                Seen::SyncAsked { peer, .. } => *peer == alice,
                Seen::Closed {
                    peer, remaining: 0, ..
                } => *peer == alice,
                _ => false,
            })
            .then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", liar.summary()));
    a.send("back to now");
    a.wait_message("alice", "back to now");
    b.wait_message("alice", "back to now");
    for n in [&a, &b] {
        let far: Vec<_> = n
            .seen()
            .iter()
            .filter(|v| {
                v["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("far ahead"))
            })
            .collect();
        assert!(far.is_empty(), "{}: shown {far:?}", n.name);
        let top = highest_stamp(n);
        assert!(top < SMALL, "{}: a stamp of {top} shown", n.name);
    }
}

/// Rule 6, the honest case by sync: a newcomer that has taken no other author's event yet takes
/// a room's history however far on its stamps are (here from 2^30), and joins after it.
#[test]
fn given_a_newcomer_and_a_room_whose_clock_is_at_2_pow_30_then_it_takes_the_history_and_joins_after_it()
 {
    let join = newcomer_after_a_past_at(1 << 30);
    assert!(
        join > (1 << 30) + 3,
        "alice's join {join} sorts after the past"
    );
}

/// The hub applies the offence and ban rules to events too: a client sending six messages of
/// its own stamped 2^32 - 1 ahead is cut off.
#[test]
fn given_a_client_sending_wild_stamps_to_a_hub_then_the_hub_cuts_it_off() {
    let mut h = hub();
    let hub_peer = peer_of(&mut h);
    let addr = h.loopback_addr();
    let mut liar = Liar::spawn("mallory");
    let clock = liar.join_room(&addr, hub_peer);
    let join = liar.me.join(clock + 1, now_ms());
    liar.publish(&join);
    for i in 0..6 {
        let e = liar.me.message(
            clock + (1 << 32) - 1,
            now_ms(),
            &format!("from the future {i}"),
        );
        liar.publish(&e);
    }
    liar.assert_cut_off(hub_peer, &addr, "six wild stamps to a hub");
}

/// The liar is built from the document: its encoders reproduce, byte for byte, the examples of
/// docs/PROTOCOL.md (the ed25519 key whose secret is 32 bytes of 1; signatures are
/// deterministic).
#[test]
fn the_liars_encodings_reproduce_the_documents_examples() {
    let doc = include_str!("../docs/PROTOCOL.md");
    let key = libp2p::identity::Keypair::ed25519_from_bytes([1u8; 32]).expect("an ed25519 key");
    let mut client = Author::with_key(key, "client1");
    let peer = client.peer;
    assert_eq!(
        peer.to_base58(),
        "12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5"
    );
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    client.seq = 1;
    let message = client.message(5, 1_795_613_408_000, "hello");
    let leave = client.quit(6, 1_795_613_870_000);
    let hello = HelloMsg::new(6, vec![client.entry(2, 1)]).encode();
    let sync = sync_request(TOPIC, &[(peer, vec![(1, 2), (4, 4)])]);
    for (what, bytes) in [
        ("the message", message.bytes),
        ("the leave", leave.bytes),
        ("the hello", hello),
        ("the sync request", sync),
    ] {
        let h = hex(&bytes);
        assert!(
            doc.contains(&h),
            "{what} is not the document's example: {h}"
        );
    }
}

/// docs/PROTOCOL.md section 5, "Versioning": a sync request of a version the node does not
/// speak gets no answer (the stream is reset, nothing written), and the asker is not cut off
/// for it: the same peer's next request, in version 2, is answered.
#[test]
fn given_a_sync_request_of_another_version_then_it_gets_no_answer_and_the_next_is_served() {
    let (mut a, addr, _b) = pair();
    let alice = peer_of(&mut a);
    let mut liar = Liar::spawn("asker");
    liar.join_room(&addr, alice);
    let from = liar.seen.len();
    // The same request with `v` 3: its first bytes are a map header, then `v` and 2.
    let mut v3 = empty_summary(TOPIC);
    let at = v3
        .windows(3)
        .position(|w| w == [0x61, b'v', 0x02])
        .expect("a request starts with v: 2");
    v3[at + 2] = 0x03;
    liar.send(Cmd::Sync {
        to: alice,
        request: v3,
    });
    liar.wait_from("the version-3 request unanswered", from, |s| match s {
        Seen::Unanswered {
            peer,
            protocol: "sync",
            ..
        } if *peer == alice => Some(()),
        Seen::SyncPage { peer, .. } if *peer == alice => {
            panic!("a version-3 request was answered")
        }
        _ => None,
    });
    let from = liar.seen.len();
    liar.send(Cmd::Sync {
        to: alice,
        request: empty_summary(TOPIC),
    });
    let events = liar.wait_from("the version-2 request answered", from, |s| match s {
        Seen::SyncPage { peer, events, .. } if *peer == alice => Some(*events),
        _ => None,
    });
    assert!(events >= 2, "alice's and bob's joins at least: {events}");
    assert!(!liar.closed_by(alice, 0), "not cut off for it");
}

/// An elder serves a past of a join and three messages stamped from `base` on; a newcomer,
/// alice, shows them with their stamps and joins. Returns the stamp of alice's join.
fn newcomer_after_a_past_at(base: u64) -> u64 {
    let (mut old, addr) = Liar::listening("elder");
    let now = now_ms();
    let mut past = vec![old.me.join(base, now - 3000)];
    for i in 1..=3 {
        past.push(
            old.me
                .message(base + i, now - 3000 + i, &format!("old news {i}")),
        );
    }
    old.send(Cmd::Serve(past));
    let entry = old.me.entry(base, 1);
    old.send(Cmd::SetHello(HelloMsg::new(base + 3, vec![entry])));
    old.drain();
    let mut a = honest("alice", &["--connect", &addr]);
    for i in 1..=3 {
        assert_eq!(a.wait_message("elder", &format!("old news {i}")), base + i);
    }
    a.wait_join("alice")
}
