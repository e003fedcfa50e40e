//! Tests of the room: single rooms, small groups, and a seeded simulation of many.

use super::*;
use crate::core::event::{EventKind, LeaveReason, Text};
use crate::core::hello::Participant;
use crate::core::ledger::MAX_STAMP;
use crate::core::limit::DEFAULT_RATE;

/// The wall-clock time of tests that do not look at it.
const WALL: WallTime = WallTime::EPOCH;

fn room(name: &str) -> Room {
    Room::new(RoomConfig {
        keypair: Keypair::generate_ed25519(),
        user: Username::new(name).unwrap(),
        room: RoomName::lobby(),
        private: None,
        history: 10_000,
        join_grace: JOIN_GRACE,
        first_seq: 0,
        max_rate: DEFAULT_RATE,
    })
}

fn drain(r: &mut Room) -> (Vec<SignedEvent>, Vec<ChatEvent>) {
    let (mut p, mut s) = (vec![], vec![]);
    while let Some(o) = r.poll_output() {
        match o {
            Output::Publish(e) => p.push(e),
            Output::Show(c) => s.push(c),
            // Honest exchanges blame nobody: the tests of lies look at offences with
            // `drain_all`.
            Output::Offence { peer, reason } => panic!("unexpected offence by {peer}: {reason}"),
        }
    }
    (p, s)
}

/// What the room published, showed, and held against whom.
fn drain_all(r: &mut Room) -> (Vec<SignedEvent>, Vec<ChatEvent>, Vec<(PeerId, Rejection)>) {
    let (mut p, mut s, mut o) = (vec![], vec![], vec![]);
    while let Some(out) = r.poll_output() {
        match out {
            Output::Publish(e) => p.push(e),
            Output::Show(c) => s.push(c),
            Output::Offence { peer, reason } => o.push((peer, reason)),
        }
    }
    (p, s, o)
}

fn say(s: &str) -> UserCommand {
    UserCommand::Say(Text::new(s).unwrap())
}

fn chats(shown: &[ChatEvent]) -> Vec<crate::core::event::EventView> {
    shown
        .iter()
        .filter_map(|c| match c {
            ChatEvent::Chat(v) => Some(v.clone()),
            _ => None,
        })
        .collect()
}

/// Delivers events to `to`, as gossipsub would.
fn deliver(events: &[SignedEvent], to: &mut Room) {
    for e in events {
        to.handle_remote(e.clone(), Instant::now(), WALL).unwrap();
    }
}

/// Runs a full sync: `to` asks `from` until it has everything.
fn sync(from: &Room, to: &mut Room) {
    loop {
        let resp = from.handle_sync_request(&to.sync_request(), |_| Vec::new());
        if !to.handle_sync_response(from.me(), resp, Instant::now(), WALL) {
            break;
        }
    }
}

fn key(r: &Room) -> Vec<(PeerId, u64, u64)> {
    r.transcript()
        .iter()
        .map(|e| (e.event.author, e.event.seq, e.event.lamport))
        .collect()
}

/// A room under `keypair` whose run numbers its events above `first_seq`.
fn rerun(name: &str, keypair: &Keypair, first_seq: u64) -> Room {
    Room::new(RoomConfig {
        keypair: keypair.clone(),
        user: Username::new(name).unwrap(),
        room: RoomName::lobby(),
        private: None,
        history: 10_000,
        join_grace: JOIN_GRACE,
        first_seq,
        max_rate: DEFAULT_RATE,
    })
}

/// Restarting under one's own name (the same key) is ordinary: the events of the earlier
/// run come back by sync and are taken, so both nodes hold the same transcript again, and
/// the new join follows them.
#[test]
fn given_a_restart_under_the_same_key_when_syncing_then_the_earlier_runs_events_are_ours() {
    let now = Instant::now();
    let mut a = room("a");
    a.start(now, WALL, false);
    let key_b = Keypair::generate_ed25519();
    let mut b1 = rerun("b", &key_b, 1_000);
    b1.start(now, WALL, true);
    b1.handle_hello(a.me(), a.hello()).unwrap();
    sync(&a, &mut b1);
    b1.handle_command(say("before the restart"), now, WALL);
    b1.handle_command(UserCommand::Quit, now, WALL);
    deliver(&drain(&mut b1).0, &mut a);
    drain(&mut a);

    let mut b2 = rerun("b", &key_b, 2_000);
    b2.start(now, WALL, true);
    b2.handle_hello(a.me(), a.hello()).unwrap();
    sync(&a, &mut b2);
    let (published, shown) = drain(&mut b2);
    assert!(b2.has_joined(), "the join follows the caught-up past");
    let views = chats(&shown);
    assert!(
        views
            .iter()
            .any(|v| v.sync && v.text.as_deref() == Some("before the restart")),
        "{views:?}"
    );
    deliver(&published, &mut a);
    assert_eq!(key(&a), key(&b2), "one transcript on both nodes");
    assert!(b2.is_present(&b2.me()));
    assert!(a.is_present(&b2.me()));
}

/// An event signed with our key, numbered as this run numbers its events, that this run
/// never sent: someone else holds our key. Refused, live or by sync, and warned once.
#[test]
fn given_our_key_elsewhere_when_an_event_of_this_run_we_never_sent_arrives_then_it_is_refused() {
    let now = Instant::now();
    let key_b = Keypair::generate_ed25519();
    let mut b = rerun("b", &key_b, 1_000);
    b.start(now, WALL, false);
    drain(&mut b);
    // Another process with the same key, numbering above ours.
    let mut twin = rerun("b", &key_b, 5_000);
    twin.start(now, WALL, false);
    let (events, _) = drain(&mut twin);
    assert_eq!(
        b.handle_remote(events[0].clone(), Instant::now(), WALL),
        Err(Rejection::ForeignOwn { seq: 5_001 })
    );
    assert!(b.check_remote(&events[0]).is_err());
    // Our own event, come back, is simply known.
    let mut c = room("c");
    c.start(now, WALL, false);
    b.handle_command(say("mine"), now, WALL);
    let (mine, _) = drain(&mut b);
    assert_eq!(b.check_remote(&mine[0]), Ok(()));
    assert_eq!(
        b.handle_remote(mine[0].clone(), Instant::now(), WALL),
        Ok(false)
    );
}

#[test]
fn alone_joins_at_once_with_stamp_one() {
    let mut a = room("a");
    a.start(Instant::now(), WALL, false);
    let (p, s) = drain(&mut a);
    assert_eq!(p.len(), 1);
    assert_eq!((p[0].event.lamport, &p[0].event.body), (1, &Body::Join));
    assert!(
        matches!(&s[0], ChatEvent::Chat(v) if v.kind == EventKind::Join && v.lamport == 1 && !v.sync)
    );
}

#[test]
fn a_late_joiner_catches_up_in_order_before_its_own_join() {
    let now = Instant::now();
    let mut a = room("a");
    a.start(now, WALL, false);
    for i in 0..5 {
        a.handle_command(say(&format!("m{i}")), now, WALL);
    }
    drain(&mut a);
    let mut b = room("b");
    b.start(now, WALL, true);
    b.handle_hello(a.me(), a.hello()).unwrap();
    assert!(!b.has_joined(), "the join waits for the history");
    sync(&a, &mut b);
    let (p, shown) = drain(&mut b);
    let views = chats(&shown);
    assert_eq!(
        views.len(),
        7,
        "a's join, five messages, then b's join: {views:?}"
    );
    assert!(views[..6].iter().all(|v| v.sync && v.user == "a"));
    let stamps: Vec<u64> = views.iter().map(|v| v.lamport).collect();
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{stamps:?}");
    assert_eq!(views[6].kind, EventKind::Join);
    assert_eq!(p[0].event.body, Body::Join);
    assert!(p[0].event.lamport > a.clock());
}

/// Catching up is one receipt for the clock: a late joiner that learns 111 events by sync
/// stamps its join one after the newest of them, not 111 further on, so nodes that caught up
/// different amounts do not drift apart (docs/PROTOCOL.md section 9).
#[test]
fn a_page_of_history_moves_the_clock_once() {
    let now = Instant::now();
    let mut a = room("a");
    a.start(now, WALL, false);
    for i in 0..110 {
        a.handle_command(say(&format!("line {i}")), now, WALL);
    }
    drain(&mut a);
    assert_eq!(a.clock(), 111);
    let mut b = room("b");
    b.start(now, WALL, true);
    b.handle_hello(a.me(), a.hello()).unwrap();
    sync(&a, &mut b);
    let (p, _) = drain(&mut b);
    assert_eq!(p[0].event.body, Body::Join);
    assert_eq!(
        p[0].event.lamport, 113,
        "max T + 1 for the page, + 1 for the join"
    );
}

/// A restart with a store: the earlier history read back is taken (the clock follows it, the
/// join comes after it), its newest lines are shown marked as stored, and only what is new is
/// handed back for storing.
#[test]
fn restored_history_is_shown_marked_and_not_stored_again() {
    let now = Instant::now();
    let mut a = room("a");
    a.start(now, WALL, false);
    for i in 0..29 {
        a.handle_command(say(&format!("line {i}")), now, WALL);
    }
    drain(&mut a);
    let stored: Vec<SignedEvent> = a.transcript().iter().cloned().collect();
    let mut b = room("b");
    let shown = b.restore(stored, &[], 20);
    assert!(
        drain(&mut b).1.is_empty(),
        "shown by the caller, when it is ready"
    );
    let views = chats(&shown);
    assert_eq!(views.len(), 20);
    assert!(views.iter().all(|v| v.stored && !v.sync));
    assert_eq!(views[19].text.as_deref(), Some("line 28"));
    b.start(now, WALL, false);
    let (p, _) = drain(&mut b);
    assert_eq!(
        p[0].event.lamport, 32,
        "max T + 1 for the stored page, + 1 for the join"
    );
    let kept = b.drain_kept();
    assert_eq!(kept.len(), 1, "only the new join is to be stored");
    assert_eq!(kept[0].event.body, Body::Join);
}

/// `pat` and `pаt` (Cyrillic а) look the same: once both are in the roster, both are shown
/// apart, with the suffix; a name that only resembles nobody's is not.
#[test]
fn look_alike_names_are_shown_apart_like_identical_ones() {
    let now = Instant::now();
    let mut latin = room("pat");
    let mut cyrillic = room("p\u{0430}t");
    let mut other = room("pet");
    for r in [&mut latin, &mut cyrillic, &mut other] {
        r.start(now, WALL, false);
    }
    let joins: Vec<SignedEvent> = [&mut latin, &mut cyrillic, &mut other]
        .into_iter()
        .flat_map(|r| drain(r).0)
        .collect();
    deliver(&joins[1..], &mut latin);
    latin.handle_command(say("hi"), now, WALL);
    cyrillic.handle_command(say("hi"), now, WALL);
    other.handle_command(say("hi"), now, WALL);
    let said: Vec<SignedEvent> = [&mut cyrillic, &mut other]
        .into_iter()
        .flat_map(|r| drain(r).0)
        .collect();
    deliver(&said, &mut latin);
    let (_, shown) = drain(&mut latin);
    let ambiguous: Vec<(String, bool)> = chats(&shown)
        .into_iter()
        .filter(|v| v.kind == EventKind::Message)
        .map(|v| (v.user, v.ambiguous))
        .collect();
    assert_eq!(
        ambiguous,
        vec![
            ("pat".to_owned(), true),
            ("p\u{0430}t".to_owned(), true),
            ("pet".to_owned(), false)
        ]
    );
}

/// A late joiner's backlog is shown with the suffix rule of the whole room: `pat`'s join, learned
/// from a third participant before `pаt`'s, is shown apart too (its view is made at the join,
/// not when it arrived).
#[test]
fn a_late_joiners_backlog_shows_look_alikes_apart() {
    let now = Instant::now();
    let mut alice = room("alice");
    alice.start(now, WALL, false);
    let mut latin = room("pat");
    latin.start(now, WALL, false);
    let (joined, _) = drain(&mut latin);
    deliver(&joined, &mut alice);
    // The look-alike joins later, after the room's clock has moved on.
    let mut cyrillic = room("p\u{0430}t");
    cyrillic.start(now, WALL, true);
    cyrillic.handle_hello(alice.me(), alice.hello()).unwrap();
    sync(&alice, &mut cyrillic);
    let (joined, _) = drain(&mut cyrillic);
    deliver(&joined, &mut alice);
    drain(&mut alice);
    let mut late = room("dave");
    late.start(now, WALL, true);
    late.handle_hello(alice.me(), alice.hello()).unwrap();
    sync(&alice, &mut late);
    let (_, shown) = drain(&mut late);
    let joins: Vec<(String, bool)> = chats(&shown)
        .into_iter()
        .filter(|v| v.kind == EventKind::Join && v.user.starts_with('p'))
        .map(|v| (v.user, v.ambiguous))
        .collect();
    assert_eq!(
        joins,
        vec![("pat".to_owned(), true), ("p\u{0430}t".to_owned(), true)]
    );
}

/// Each event carries the wall-clock time its author's node was given when it signed it, and
/// a late joiner shows those times, not its own; its own join gets its own time.
#[test]
fn caught_up_events_keep_the_time_their_author_said_them() {
    let now = Instant::now();
    let at = |s: u64| WallTime::from_unix_millis(1_795_613_371_000 + s * 1000).unwrap();
    let mut a = room("a");
    a.start(now, at(0), false);
    for i in 1..=3 {
        a.handle_command(say(&format!("m{i}")), now, at(60 * i));
    }
    drain(&mut a);
    let mut b = room("b");
    b.start(now, at(3600), true);
    b.handle_hello(a.me(), a.hello()).unwrap();
    loop {
        let resp = a.handle_sync_request(&b.sync_request(), |_| Vec::new());
        if !b.handle_sync_response(a.me(), resp, Instant::now(), at(3601)) {
            break;
        }
    }
    let (p, shown) = drain(&mut b);
    let times: Vec<(String, WallTime)> = chats(&shown)
        .into_iter()
        .map(|v| (v.user, v.time))
        .collect();
    let want: Vec<(String, WallTime)> = [0, 60, 120, 180]
        .into_iter()
        .map(|s| ("a".to_owned(), at(s)))
        .chain([("b".to_owned(), at(3601))])
        .collect();
    assert_eq!(times, want);
    assert_eq!(
        p[0].event.time,
        at(3601),
        "b's join is signed with b's time"
    );
    b.handle_command(UserCommand::History(None), now, at(3700));
    let (_, shown) = drain(&mut b);
    let Some(ChatEvent::History(h)) = shown.last() else {
        panic!("{shown:?}")
    };
    assert_eq!(
        h.iter().map(|v| v.time).collect::<Vec<_>>(),
        want.into_iter().map(|w| w.1).collect::<Vec<_>>()
    );
}

#[test]
fn grace_runs_out_and_the_node_joins_alone() {
    let now = Instant::now();
    let mut b = room("b");
    b.start(now, WALL, true);
    b.handle_command(say("early"), now, WALL);
    b.handle_timeout(now + Duration::from_millis(10), WALL);
    assert!(drain(&mut b).0.is_empty());
    assert_eq!(b.poll_timeout(), Some(now + JOIN_GRACE));
    b.handle_timeout(now + JOIN_GRACE, WALL);
    let (p, _) = drain(&mut b);
    assert_eq!(
        p.iter().map(|e| e.event.lamport).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(p[1].event.body, Body::Message(Text::new("early").unwrap()));
}

#[test]
fn quit_while_waiting_shortens_the_wait_then_joins_says_and_leaves() {
    let now = Instant::now();
    let mut b = room("b");
    b.start(now, WALL, true);
    b.handle_command(say("hi"), now, WALL);
    b.handle_command(UserCommand::Quit, now, WALL);
    assert!(drain(&mut b).0.is_empty(), "still waiting");
    assert_eq!(b.poll_timeout(), Some(now + QUIT_JOIN_WAIT));
    b.handle_timeout(now + QUIT_JOIN_WAIT, WALL);
    let (p, _) = drain(&mut b);
    let bodies: Vec<_> = p.iter().map(|e| e.event.body.clone()).collect();
    assert_eq!(
        bodies,
        vec![
            Body::Join,
            Body::Message(Text::new("hi").unwrap()),
            Body::Leave
        ]
    );
    assert!(b.has_left());
}

#[test]
fn among_newcomers_only_the_wait_can_end_early() {
    let now = Instant::now();
    let mut b = room("b");
    let mut c = room("c");
    b.start(now, WALL, true);
    c.start(now, WALL, true);
    b.handle_hello(c.me(), c.hello()).unwrap();
    b.end_wait_among_newcomers(WALL);
    assert!(b.has_joined(), "no participant to catch up with");
    // With a participant around, the wait goes on until its history is in.
    let mut a = room("a");
    a.start(now, WALL, false);
    let mut d = room("d");
    d.start(now, WALL, true);
    d.handle_hello(a.me(), a.hello()).unwrap();
    d.end_wait_among_newcomers(WALL);
    assert!(!d.has_joined());
}

#[test]
fn catching_up_with_another_newcomer_does_not_end_the_wait() {
    let now = Instant::now();
    let mut b = room("b");
    let mut c = room("c");
    b.start(now, WALL, true);
    c.start(now, WALL, true);
    b.handle_hello(c.me(), c.hello()).unwrap();
    sync(&c, &mut b);
    assert!(
        !b.has_joined(),
        "c has not joined: its history is not the room's"
    );
}

#[test]
fn received_events_keep_their_origin_stamp_and_causality_holds() {
    let mut a = room("a");
    let mut b = room("b");
    a.start(Instant::now(), WALL, false);
    b.start(Instant::now(), WALL, false);
    for _ in 0..10 {
        a.handle_command(say("tick"), Instant::now(), WALL);
    }
    let (pa, _) = drain(&mut a);
    drain(&mut b);
    deliver(&pa, &mut b);
    let (_, shown) = drain(&mut b);
    let stamps: Vec<u64> = chats(&shown).iter().map(|v| v.lamport).collect();
    assert_eq!(
        stamps,
        pa.iter().map(|e| e.event.lamport).collect::<Vec<_>>()
    );
    b.handle_command(say("reply"), Instant::now(), WALL);
    let (pb, _) = drain(&mut b);
    assert!(pb[0].event.lamport > pa.last().unwrap().event.lamport);
}

#[test]
fn duplicates_are_shown_once_and_identical_texts_are_distinct_events() {
    let mut a = room("a");
    let mut b = room("b");
    a.start(Instant::now(), WALL, false);
    b.start(Instant::now(), WALL, false);
    a.handle_command(say("ok"), Instant::now(), WALL);
    a.handle_command(say("ok"), Instant::now(), WALL);
    let (pa, _) = drain(&mut a);
    drain(&mut b);
    deliver(&pa, &mut b);
    assert_eq!(
        b.handle_remote(pa[1].clone(), Instant::now(), WALL),
        Ok(false)
    );
    let (_, shown) = drain(&mut b);
    assert_eq!(shown.len(), 3, "join + two distinct ok messages: {shown:?}");
}

#[test]
fn wild_stamps_are_rejected() {
    let mut a = room("a");
    let mut b = room("b");
    a.start(Instant::now(), WALL, false);
    b.start(Instant::now(), WALL, false);
    let (pa, _) = drain(&mut a);
    let mut wild = pa[0].clone();
    wild.event.lamport = u64::MAX;
    assert!(matches!(
        b.handle_remote(wild, Instant::now(), WALL),
        Err(Rejection::StampTooFar { .. })
    ));
    assert!(b.clock() < 10);
}

#[test]
fn hellos_and_syncs_from_other_rooms_change_nothing() {
    let mut b = room("b");
    b.start(Instant::now(), WALL, true);
    let other = Hello {
        topic: "chitty-chat/elsewhere".into(),
        lamport: 99,
        participants: vec![],
        archive: false,
    };
    assert!(matches!(
        b.handle_hello(PeerId::random(), other),
        Err(Rejection::OtherRoom(_))
    ));
    assert_eq!(b.clock(), 0);
    let req = SyncRequest {
        topic: "chitty-chat/elsewhere".into(),
        low: None,
        have: vec![],
    };
    assert_eq!(b.handle_sync_request(&req, |_| Vec::new()).events, vec![]);
}

#[test]
fn leave_removes_from_who_and_history_is_in_total_order() {
    let mut a = room("a");
    let mut b = room("b");
    a.start(Instant::now(), WALL, false);
    b.start(Instant::now(), WALL, false);
    a.handle_command(UserCommand::Quit, Instant::now(), WALL);
    let (pa, _) = drain(&mut a);
    drain(&mut b);
    deliver(&pa, &mut b);
    b.handle_command(UserCommand::Who, Instant::now(), WALL);
    b.handle_command(UserCommand::History(None), Instant::now(), WALL);
    let (_, s) = drain(&mut b);
    let who = s.iter().find_map(|c| match c {
        ChatEvent::Who(l) => Some(l.clone()),
        _ => None,
    });
    assert_eq!(
        who.unwrap()
            .iter()
            .map(|p| p.user.as_str())
            .collect::<Vec<_>>(),
        vec!["b"]
    );
    let hist = s.iter().find_map(|c| match c {
        ChatEvent::History(h) => Some(h.clone()),
        _ => None,
    });
    let keys: Vec<u64> = hist.unwrap().iter().map(|v| v.lamport).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(keys.len(), 3);
}

#[test]
fn hello_entries_with_wild_stamps_are_ignored() {
    let mut b = room("b");
    b.start(Instant::now(), WALL, false);
    let hello = Hello {
        topic: "chitty-chat".into(),
        lamport: 3,
        participants: vec![Participant {
            peer: PeerId::random(),
            user: Username::new("ghost").unwrap(),
            lamport: MAX_STAMP - 1,
            seq: 1,
        }],
        archive: false,
    };
    b.handle_hello(PeerId::random(), hello).unwrap();
    b.handle_command(UserCommand::Who, Instant::now(), WALL);
    let (_, s) = drain(&mut b);
    let ChatEvent::Who(list) = s.last().unwrap() else {
        panic!("{s:?}")
    };
    assert!(list.iter().all(|p| p.user != "ghost"), "{list:?}");
}

/// Three participants who all know each other.
fn trio() -> Vec<Room> {
    let mut rooms = vec![room("a"), room("b"), room("c")];
    for r in &mut rooms {
        r.start(Instant::now(), WALL, false);
    }
    let out: Vec<Vec<SignedEvent>> = rooms.iter_mut().map(|r| drain(r).0).collect();
    let ids: Vec<PeerId> = rooms.iter().map(|r| r.me()).collect();
    for (i, r) in rooms.iter_mut().enumerate() {
        for (j, events) in out.iter().enumerate() {
            if i != j {
                deliver(events, r);
                r.peer_back(&ids[j]);
            }
        }
        drain(r);
    }
    rooms
}

#[test]
fn a_vanished_participant_is_announced_once_with_one_stamp() {
    let now = Instant::now();
    let mut rooms = trio();
    let gone = rooms.pop().unwrap();
    let (mut x, mut y) = (rooms.remove(0), rooms.remove(0));
    x.peer_gone(gone.me(), now, WALL);
    y.peer_gone(gone.me(), now, WALL);
    assert!(
        drain(&mut x).0.is_empty() && drain(&mut y).0.is_empty(),
        "a short grace first"
    );
    x.handle_timeout(now + LOST_GRACE, WALL);
    y.handle_timeout(now + LOST_GRACE, WALL);
    let (px, _) = drain(&mut x);
    let (py, _) = drain(&mut y);
    assert_eq!(
        px.len() + py.len(),
        1,
        "exactly one announces after the grace"
    );
    let (announcer, other, lost) = if px.is_empty() {
        (&mut y, &mut x, py[0].clone())
    } else {
        (&mut x, &mut y, px[0].clone())
    };
    assert!(matches!(&lost.event.body, Body::Lost { subject, .. } if *subject == gone.me()));
    let _ = announcer;
    deliver(std::slice::from_ref(&lost), other);
    let (_, shown) = drain(other);
    let v = &chats(&shown)[0];
    assert_eq!(
        (v.kind, v.reason, v.user.as_str()),
        (EventKind::Leave, Some(LeaveReason::Lost), "c")
    );
    assert_eq!(v.lamport, lost.event.lamport);
    other.handle_timeout(now + LOST_STAGGER * 4, WALL);
    assert!(drain(other).0.is_empty(), "the second in line stood down");
    // Had the announcement not come, the second in line would have made it.
    let mut rooms = trio();
    let gone = rooms.pop().unwrap().me();
    let (mut x, mut y) = (rooms.remove(0), rooms.remove(0));
    x.peer_gone(gone, now, WALL);
    y.peer_gone(gone, now, WALL);
    x.handle_timeout(now + LOST_GRACE, WALL);
    y.handle_timeout(now + LOST_GRACE, WALL);
    let second = if drain(&mut x).0.is_empty() {
        &mut x
    } else {
        &mut y
    };
    second.handle_timeout(now + LOST_GRACE + LOST_STAGGER, WALL);
    assert_eq!(drain(second).0.len(), 1);
}

#[test]
fn a_leave_arriving_during_the_grace_is_not_followed_by_a_lost() {
    let now = Instant::now();
    let mut rooms = trio();
    let mut leaver = rooms.pop().unwrap();
    let mut x = rooms.remove(0);
    x.peer_gone(leaver.me(), now, WALL);
    leaver.handle_command(UserCommand::Quit, now, WALL);
    let (pl, _) = drain(&mut leaver);
    deliver(&pl, &mut x);
    x.handle_timeout(now + LOST_STAGGER * 4, WALL);
    assert!(drain(&mut x).0.is_empty());
}

#[test]
fn a_participant_declared_lost_joins_again() {
    let now = Instant::now();
    let mut rooms = trio();
    let (mut x, mut y) = (rooms.remove(0), rooms.remove(0));
    // x and y lose each other (a partition); each sees the other vanish.
    x.peer_gone(y.me(), now, WALL);
    y.peer_gone(x.me(), now, WALL);
    x.handle_timeout(now + LOST_STAGGER * 4, WALL);
    y.handle_timeout(now + LOST_STAGGER * 4, WALL);
    let (px, _) = drain(&mut x);
    let (py, _) = drain(&mut y);
    deliver(&px, &mut y);
    deliver(&py, &mut x);
    let (px2, _) = drain(&mut x);
    let (py2, _) = drain(&mut y);
    assert_eq!(
        px2.iter().map(|e| &e.event.body).collect::<Vec<_>>(),
        vec![&Body::Join]
    );
    assert_eq!(
        py2.iter().map(|e| &e.event.body).collect::<Vec<_>>(),
        vec![&Body::Join]
    );
    deliver(&px2, &mut y);
    deliver(&py2, &mut x);
    assert!(x.is_present(&y.me()) && y.is_present(&x.me()));
    assert_eq!(key(&x), key(&y));
}

/// A tiny deterministic generator for the simulation (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Whole conversations under random delays, duplicates, reordering, partitions and crashes:
/// once the network is whole again and anti-entropy has run, every surviving node holds the
/// same transcript, every event with its original stamp, in the same order.
#[test]
fn simulation_every_survivor_ends_with_the_same_transcript() {
    for seed in 1..=60u64 {
        simulate(seed);
    }
}

fn simulate(seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let t0 = Instant::now();
    // A third of the schedules keep a short history, so the bound and its watermark matter.
    let history = if seed.is_multiple_of(3) { 40 } else { 10_000 };
    // Two more nodes sleep until they join late, catching up by sync.
    let n = 5 + rng.below(4) as usize;
    let mut nodes: Vec<Option<Room>> = (0..n)
        .map(|i| {
            Some(Room::new(RoomConfig {
                keypair: Keypair::generate_ed25519(),
                user: Username::new(format!("n{i}")).unwrap(),
                room: RoomName::lobby(),
                private: None,
                history,
                join_grace: JOIN_GRACE,
                first_seq: 0,
                max_rate: DEFAULT_RATE,
            }))
        })
        .collect();
    let mut awake: Vec<bool> = (0..n).map(|i| i < n - 2).collect();
    for r in nodes.iter_mut().take(n - 2).flatten() {
        r.start(t0, WALL, false);
    }
    let ids: Vec<PeerId> = nodes.iter().flatten().map(|r| r.me()).collect();
    let connect = |nodes: &mut Vec<Option<Room>>, cross: &dyn Fn(usize, usize) -> bool| {
        for (i, r) in nodes.iter_mut().enumerate() {
            for (j, id) in ids.iter().enumerate() {
                if let (Some(r), true) = (r.as_mut(), i != j && cross(i, j)) {
                    r.peer_back(id);
                }
            }
        }
    };
    let sleeping = awake.clone();
    connect(&mut nodes, &|i, j| sleeping[i] && sleeping[j]);
    // Wakes node `k`: it starts, hears a hello from each awake peer and catches up.
    let wake = |nodes: &mut Vec<Option<Room>>, awake: &mut Vec<bool>, k: usize, now: Instant| {
        awake[k] = true;
        let Some(mut late) = nodes[k].take() else {
            return;
        };
        late.start(now, WALL, true);
        for (j, peer) in nodes.iter_mut().enumerate() {
            if let (Some(p), true) = (peer.as_mut(), awake[j] && j != k) {
                late.handle_hello(p.me(), p.hello()).unwrap();
                late.peer_back(&p.me());
                p.peer_back(&late.me());
                sync(p, &mut late);
                sync(&late, p);
            }
        }
        late.handle_timeout(now + JOIN_GRACE, WALL);
        nodes[k] = Some(late);
    };
    // In flight: (due step, to, event).
    let mut wire: Vec<(u64, usize, SignedEvent)> = Vec::new();
    let mut side: Vec<bool> = vec![false; n];
    let mut split = false;
    let reachable = |side: &[bool], split: bool, a: usize, b: usize| !split || side[a] == side[b];
    let steps = 300;
    for step in 0..steps {
        let now = t0 + Duration::from_millis(step * 10);
        // Collect what every node published this step.
        for (i, node) in nodes.iter_mut().enumerate() {
            let Some(r) = node.as_mut() else { continue };
            r.handle_timeout(now, WALL);
            let (published, _) = drain(r);
            for e in published {
                for (j, up) in awake.iter().enumerate() {
                    if j != i && *up && reachable(&side, split, i, j) {
                        wire.push((step + rng.below(8), j, e.clone()));
                        if rng.below(10) == 0 {
                            wire.push((step + rng.below(20), j, e.clone()));
                        }
                    }
                }
            }
        }
        match rng.below(20) {
            0..=7 => {
                let i = rng.below(n as u64) as usize;
                if let (Some(r), true) = (nodes[i].as_mut(), awake[i]) {
                    r.handle_command(say(&format!("s{step}")), now, WALL);
                }
            }
            13 if step > 50 => {
                if let Some(k) = (0..n).find(|k| !awake[*k]) {
                    wake(&mut nodes, &mut awake, k, now);
                }
            }
            8 => {
                if split {
                    // Heal: the connections come back.
                    let sides = side.clone();
                    connect(&mut nodes, &|i, j| sides[i] != sides[j]);
                }
                split = !split;
                for s in side.iter_mut() {
                    *s = rng.below(2) == 0;
                }
                if split {
                    // Each side sees the other vanish.
                    let alive: Vec<bool> = nodes
                        .iter()
                        .zip(&awake)
                        .map(|(r, a)| r.is_some() && *a)
                        .collect();
                    for (i, r) in nodes.iter_mut().enumerate() {
                        for j in 0..n {
                            if side[i] != side[j]
                                && alive[j]
                                && let Some(r) = r.as_mut()
                            {
                                r.peer_gone(ids[j], now, WALL);
                            }
                        }
                    }
                }
            }
            9 if step > 100 && nodes.iter().filter(|r| r.is_some()).count() > 2 => {
                let k = rng.below(n as u64) as usize;
                if awake[k]
                    && let Some(dead) = nodes[k].take()
                {
                    for r in nodes.iter_mut().flatten() {
                        r.peer_gone(dead.me(), now, WALL);
                    }
                }
            }
            10..=12 => {
                // Anti-entropy between two reachable nodes.
                let (i, j) = (rng.below(n as u64) as usize, rng.below(n as u64) as usize);
                if i != j
                    && awake[i]
                    && awake[j]
                    && reachable(&side, split, i, j)
                    && nodes[i].is_some()
                    && nodes[j].is_some()
                {
                    let from = nodes[i].take().unwrap();
                    sync(&from, nodes[j].as_mut().unwrap());
                    nodes[i] = Some(from);
                }
            }
            _ => {}
        }
        // Deliver what is due, in random order (reordering); partitions drop it.
        let mut due: Vec<(u64, usize, SignedEvent)> = Vec::new();
        wire.retain(|w| {
            if w.0 <= step {
                due.push(w.clone());
                false
            } else {
                true
            }
        });
        while !due.is_empty() {
            let (_, to, e) = due.swap_remove(rng.below(due.len() as u64) as usize);
            if let Some(r) = nodes[to].as_mut() {
                let _ = r.handle_remote(e, Instant::now(), WALL);
            }
        }
    }
    // Heal: everyone awake, no partition, then anti-entropy until nothing changes.
    let end = t0 + Duration::from_secs(3600);
    for k in 0..n {
        if !awake[k] {
            wake(&mut nodes, &mut awake, k, end);
        }
    }
    connect(&mut nodes, &|_, _| true);
    for _round in 0..20 {
        let mut changed = false;
        for r in nodes.iter_mut().flatten() {
            r.handle_timeout(end, WALL);
            changed |= !drain(r).0.is_empty();
        }
        for i in 0..n {
            for j in 0..n {
                if i != j && nodes[i].is_some() && nodes[j].is_some() {
                    let from = nodes[i].take().unwrap();
                    let before = key(nodes[j].as_ref().unwrap());
                    sync(&from, nodes[j].as_mut().unwrap());
                    // Compared as sets of keys: a full transcript keeps its length.
                    changed |= key(nodes[j].as_ref().unwrap()) != before;
                    nodes[i] = Some(from);
                }
            }
        }
        if !changed {
            break;
        }
    }
    let alive: Vec<&Room> = nodes.iter().flatten().collect();
    let reference = key(alive[0]);
    for r in &alive[1..] {
        assert_eq!(key(r), reference, "seed {seed}: transcripts differ");
    }
    // Every survivor is present in everyone's view (with the whole history at hand).
    for r in alive.iter().filter(|_| history > 1000) {
        for s in &alive {
            if !r.is_present(&s.me()) {
                let trail: Vec<String> = r
                    .transcript()
                    .iter()
                    .filter(|e| e.event.participant().0 == s.me())
                    .map(|e| {
                        format!(
                            "{}:{:?}/{}",
                            e.event.lamport,
                            e.event.body,
                            e.event.author == s.me()
                        )
                    })
                    .collect();
                panic!(
                    "seed {seed}: a survivor is missing from the roster: {trail:?} (is_present at itself: {})",
                    s.is_present(&s.me())
                );
            }
        }
    }
}

mod hub_sim;
mod lies;
