//! Peers that lie (docs/PROTOCOL.md section 8, "Lies"): a peer that speaks the protocol
//! correctly, signs its own events properly, and lies. Each lie costs the liar, never the
//! honest; beside each, the honest case its rule must not break.

use super::*;
use crate::core::ledger::{MAX_CLOCK_JUMP, SYNC_BURST, WILD_JUMP};
use crate::core::sync::SyncResponse;
use crate::core::verdict::Verdict;

/// A liar: a key of its own, and events it signs as it likes.
struct Liar {
    key: Keypair,
    seq: u64,
}

impl Liar {
    fn new() -> Self {
        Self {
            key: Keypair::generate_ed25519(),
            seq: 0,
        }
    }

    fn id(&self) -> PeerId {
        self.key.public().to_peer_id()
    }

    /// Signs the next event of its own: stamped `lamport`, said at `time` (ms).
    fn sign(&mut self, lamport: u64, time: u64, body: Body) -> SignedEvent {
        self.seq += 1;
        let e = Event {
            author: self.id(),
            seq: self.seq,
            lamport,
            time: WallTime::from_unix_millis(time).unwrap(),
            user: Username::new("mallory").unwrap(),
            body,
        };
        self.key.sign_event(e, "chitty-chat")
    }

    /// Announces bob (`subject`) lost, stamped `lamport`, now.
    fn lost_about_bob(&mut self, lamport: u64, subject: PeerId) -> SignedEvent {
        self.sign(
            lamport,
            WALL.unix_millis(),
            Body::Lost {
                subject,
                user: Username::new("bob").unwrap(),
            },
        )
    }
}

/// `room` hears from `peer` every second from `from` for [`ALIVE_STEADY`]; returns when that
/// ended.
fn hear_steadily(room: &mut Room, peer: PeerId, from: Instant) -> Instant {
    let mut t = from;
    while t < from + ALIVE_STEADY {
        room.heard_from(peer, t);
        t += Duration::from_secs(1);
    }
    room.heard_from(peer, t);
    t
}

fn offences_of(r: &mut Room) -> Vec<(PeerId, Rejection)> {
    drain_all(r).2
}

fn hello_at(lamport: u64) -> Hello {
    Hello {
        topic: "chitty-chat".into(),
        lamport,
        participants: vec![],
        archive: false,
    }
}

/// One hello told alice her room's clock is 2^33 ahead: it moves nothing, so her next lines
/// are stamped as before and bob takes them; the claim is refused (held against the liar).
/// A claim an honest node could make is taken without a word, and moves nothing either.
#[test]
fn a_claimed_clock_moves_nothing_and_a_wild_claim_is_refused() {
    let now = Instant::now();
    let mut rooms = trio();
    let (mut alice, mut bob) = (rooms.remove(0), rooms.remove(0));
    let liar = Liar::new();
    let before = alice.clock();
    assert!(matches!(
        alice.handle_hello(liar.id(), hello_at(before + (1 << 33))),
        Err(Rejection::WildClaim { .. })
    ));
    assert!(matches!(
        alice.handle_hello(liar.id(), hello_at(MAX_STAMP - 1)),
        Err(Rejection::WildClaim { .. })
    ));
    alice
        .handle_hello(liar.id(), hello_at(before + 1000))
        .unwrap();
    assert_eq!(alice.clock(), before, "claims never move the clock");
    alice.handle_command(say("still here"), now, WALL);
    let (out, _) = drain(&mut alice);
    assert_eq!(out[0].event.lamport, before + 1);
    assert_eq!(
        bob.admit(Ok::<_, &str>(out[0].clone()), false, now, WALL),
        Verdict::Accept(out[0].event.clone()),
        "bob takes alice's line"
    );
}

/// A `lost` about bob, who has answered alice's pings without a break for a while, is
/// recorded (every transcript stays the same) but not shown, bob stays in alice's `/who`, and
/// the announcer is blamed. carol, who has no sign of bob's life, takes it as true; bob's next
/// message brings him back for her.
#[test]
fn a_false_lost_is_recorded_not_shown_and_blamed_on_the_announcer() {
    let start = Instant::now();
    let mut rooms = trio();
    let (mut alice, bob, mut carol) = (rooms.remove(0), rooms.remove(0), rooms.remove(0));
    let mut liar = Liar::new();
    let now = hear_steadily(&mut alice, bob.me(), start);
    let lost = liar.lost_about_bob(alice.clock() + 1, bob.me());
    let verdict = alice.admit(Ok::<_, &str>(lost.clone()), false, now, WALL);
    assert!(matches!(verdict, Verdict::Accept(_)), "{verdict:?}");
    let (published, shown, offences) = drain_all(&mut alice);
    assert!(
        published.is_empty() && chats(&shown).is_empty(),
        "{shown:?}"
    );
    assert_eq!(
        offences,
        vec![(liar.id(), Rejection::FalseLost { subject: bob.me() })]
    );
    assert!(alice.is_present(&bob.me()), "bob is still here for alice");
    assert!(
        alice
            .transcript()
            .knows(&liar.id(), lost.event.seq, lost.event.lamport)
    );
    // Heard from too long ago, or not connected: taken as announced.
    let later = now + ALIVE_WITHIN;
    let _ = start;
    let mut liar2 = Liar::new();
    let lost2 = liar2.lost_about_bob(alice.clock() + 1, bob.me());
    alice.admit(Ok::<_, &str>(lost2), false, later, WALL);
    let (_, shown, offences) = drain_all(&mut alice);
    assert_eq!(chats(&shown).len(), 1);
    assert!(offences.is_empty());
    assert!(!alice.is_present(&bob.me()));
    // carol, with no sign of bob's life, takes the first one; bob talking brings him back.
    carol.admit(Ok::<_, &str>(lost.clone()), false, now, WALL);
    drain(&mut carol);
    assert!(!carol.is_present(&bob.me()));
    let mut bob = bob;
    deliver(&[lost], &mut bob);
    let (rejoin, _) = drain(&mut bob);
    bob.handle_command(say("I am here"), now, WALL);
    let (line, _) = drain(&mut bob);
    let _ = rejoin;
    deliver(&line, &mut carol);
    drain(&mut carol);
    assert!(
        carol.is_present(&bob.me()),
        "a message after a lost: present"
    );
}

/// bob has just come back (restarted under his key, or thawed after a freeze): alice hears
/// from him again, but not for long, when a `lost` about him arrives. An honest announcer may
/// have seen him vanish just before: not shown (he is here), and nobody blamed.
#[test]
fn a_lost_about_someone_just_back_is_not_shown_and_not_blamed() {
    let start = Instant::now();
    let mut rooms = trio();
    let (mut alice, bob) = (rooms.remove(0), rooms.remove(0));
    let mut announcer = Liar::new();
    // Steadily heard, then a break (a freeze, a restart), then heard again.
    let t = hear_steadily(&mut alice, bob.me(), start);
    let back = t + Duration::from_secs(6);
    alice.heard_from(bob.me(), back);
    let lost = announcer.lost_about_bob(alice.clock() + 1, bob.me());
    let at = back + Duration::from_secs(1);
    alice.heard_from(bob.me(), at);
    alice.admit(Ok::<_, &str>(lost.clone()), false, at, WALL);
    let (_, shown, offences) = drain_all(&mut alice);
    assert!(chats(&shown).is_empty(), "{shown:?}");
    assert!(offences.is_empty(), "{offences:?}");
    assert!(alice.is_present(&bob.me()));
    // The same after his connection closed and opened again (a restart).
    alice.peer_gone(bob.me(), at, WALL);
    alice.peer_back(&bob.me());
    let again = at + Duration::from_millis(1500);
    alice.heard_from(bob.me(), again);
    let lost = announcer.lost_about_bob(alice.clock() + 1, bob.me());
    alice.admit(Ok::<_, &str>(lost), false, again, WALL);
    let (_, _, offences) = drain_all(&mut alice);
    assert!(offences.is_empty(), "{offences:?}");
}

/// carol is not connected to bob (she hears him through others): a `lost` about him is held
/// back a moment; his next message, newer than the announcement, proves it false (never
/// shown, the announcer blamed). A newer join proves nothing after a silence (he may have
/// vanished and come back): the announcement is shown, then the join; but a join answering an
/// announcement made while he was talking shows nothing of it. When he really is gone, it is
/// shown a moment late.
#[test]
fn a_lost_about_someone_still_talking_is_held_back_and_refuted_by_his_next_event() {
    let now = Instant::now();
    let mut rooms = trio();
    let (mut bob, mut carol) = (rooms.remove(1), rooms.remove(1));
    let mut liar = Liar::new();
    let bob_id = bob.me();
    // carol reaches bob only through others.
    carol.peer_unreachable(&bob_id);
    let mut lost_about_bob = |clock: u64| liar.lost_about_bob(clock + 1, bob_id);
    bob.handle_command(say("one"), now, WALL);
    let (one, _) = drain(&mut bob);
    carol.admit(Ok::<_, &str>(one[0].clone()), false, now, WALL);
    drain(&mut carol);
    let lost = lost_about_bob(carol.clock());
    carol.admit(Ok::<_, &str>(lost.clone()), false, now, WALL);
    let (_, shown, offences) = drain_all(&mut carol);
    assert!(
        chats(&shown).is_empty() && offences.is_empty(),
        "held back: {shown:?}"
    );
    // bob, still talking, says something newer (having heard carol, after the announcement).
    carol.handle_command(say("anyone?"), now, WALL);
    let (asked, _) = drain(&mut carol);
    deliver(&asked, &mut bob);
    drain(&mut bob);
    bob.handle_command(say("still here"), now, WALL);
    let (still, _) = drain(&mut bob);
    let still: Vec<_> = still
        .into_iter()
        .filter(|e| matches!(e.event.body, Body::Message(_)))
        .collect();
    assert!(still[0].event.lamport > lost.event.lamport);
    carol.admit(Ok::<_, &str>(still[0].clone()), false, now, WALL);
    let (_, shown, offences) = drain_all(&mut carol);
    assert!(
        chats(&shown).iter().all(|v| v.kind != EventKind::Leave),
        "{shown:?}"
    );
    assert_eq!(offences.len(), 1, "the announcer is blamed");
    carol.handle_timeout(now + ALIVE_WITHIN, WALL);
    let (_, shown, _) = drain_all(&mut carol);
    assert!(chats(&shown).is_empty(), "and the announcement never shown");
    assert!(carol.is_present(&bob_id));
    // Announced again once bob has been silent a while (as a real loss is seen); this time
    // bob's answer is a join: he may have been gone. The announcement is shown before it.
    let quiet = now + Duration::from_secs(5);
    let lost = lost_about_bob(carol.clock());
    carol.admit(Ok::<_, &str>(lost.clone()), false, quiet, WALL);
    assert!(chats(&drain_all(&mut carol).1).is_empty(), "held back");
    deliver(std::slice::from_ref(&lost), &mut bob);
    let (rejoin, _) = drain(&mut bob);
    assert_eq!(rejoin[0].event.body, Body::Join);
    carol.admit(Ok::<_, &str>(rejoin[0].clone()), false, quiet, WALL);
    let (_, shown, offences) = drain_all(&mut carol);
    let kinds: Vec<EventKind> = chats(&shown).iter().map(|v| v.kind).collect();
    assert_eq!(kinds, vec![EventKind::Leave, EventKind::Join], "{shown:?}");
    assert!(offences.is_empty(), "{offences:?}");
    assert!(carol.is_present(&bob_id));
    // Announced (by another) while bob is talking, and bob's answer is a join: he was never
    // gone. Nothing of it is shown, and nobody is blamed for it, whether his join comes
    // before his next line or after.
    let talking = now + Duration::from_secs(10);
    bob.handle_command(say("talking"), talking, WALL);
    let (line, _) = drain(&mut bob);
    carol.admit(Ok::<_, &str>(line[0].clone()), false, talking, WALL);
    drain(&mut carol);
    let mut other = Liar::new();
    let lost = other.lost_about_bob(carol.clock() + 1, bob_id);
    carol.admit(Ok::<_, &str>(lost.clone()), false, talking, WALL);
    assert!(chats(&drain_all(&mut carol).1).is_empty(), "held back");
    deliver(std::slice::from_ref(&lost), &mut bob);
    let (rejoin, _) = drain(&mut bob);
    assert_eq!(rejoin[0].event.body, Body::Join);
    carol.admit(Ok::<_, &str>(rejoin[0].clone()), false, talking, WALL);
    carol.handle_timeout(talking + ALIVE_WITHIN, WALL);
    let (_, shown, offences) = drain_all(&mut carol);
    assert!(
        chats(&shown).iter().all(|v| v.kind != EventKind::Leave),
        "{shown:?}"
    );
    assert!(offences.is_empty(), "{offences:?}");
    assert!(carol.is_present(&bob_id));
    // Silent after a line, then announced: shown once the moment has passed.
    let later = now + Duration::from_secs(30);
    bob.handle_command(say("last"), later, WALL);
    let (last, _) = drain(&mut bob);
    carol.admit(Ok::<_, &str>(last[0].clone()), false, later, WALL);
    drain(&mut carol);
    let lost = lost_about_bob(carol.clock());
    carol.admit(Ok::<_, &str>(lost), false, later, WALL);
    assert!(chats(&drain_all(&mut carol).1).is_empty());
    carol.handle_timeout(later + ALIVE_WITHIN, WALL);
    let shown = chats(&drain_all(&mut carol).1);
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].reason, Some(LeaveReason::Lost));
}

/// A liar connected to bob, and answering him, announces bob lost over and over: bob joins
/// again once, and then at most once a minute, not once per announcement, and each is held
/// against the liar. From an announcer bob has no live connection with, it is no lie (bob may
/// have been frozen): he joins again, and blames nobody.
#[test]
fn the_victim_of_false_losts_joins_again_at_most_once_per_announcer_per_minute() {
    let now = Instant::now();
    let mut rooms = trio();
    let mut bob = rooms.remove(1);
    let mut liar = Liar::new();
    let mut joins = 0;
    bob.peer_back(&liar.id());
    let now = hear_steadily(&mut bob, liar.id(), now);
    for i in 0..10u64 {
        let at = now + Duration::from_secs(i);
        bob.heard_from(liar.id(), at);
        let lost = liar.sign(
            bob.clock() + 1,
            WALL.unix_millis() + i * 1000,
            Body::Lost {
                subject: bob.me(),
                user: Username::new("bob").unwrap(),
            },
        );
        bob.admit(Ok::<_, &str>(lost), false, at, WALL);
        bob.handle_timeout(at, WALL);
        let (published, shown, offences) = drain_all(&mut bob);
        joins += published
            .iter()
            .filter(|e| e.event.body == Body::Join)
            .count();
        assert!(chats(&shown).iter().all(|v| v.kind != EventKind::Leave));
        assert_eq!(offences.len(), 1, "each one is held against the liar");
    }
    assert_eq!(joins, 1, "once in the first minute");
    bob.handle_timeout(now + REJOIN_EVERY, WALL);
    let (published, _, _) = drain_all(&mut bob);
    assert_eq!(published.len(), 1, "then once the minute is over");
    assert!(bob.is_present(&bob.me()));
    // An announcer we are not connected to: perhaps we were the silent one.
    let mut far = Liar::new();
    let lost = far.lost_about_bob(bob.clock() + 1, bob.me());
    bob.admit(Ok::<_, &str>(lost), false, now + REJOIN_EVERY, WALL);
    let (published, _, offences) = drain_all(&mut bob);
    assert!(offences.is_empty(), "{offences:?}");
    assert_eq!(published.len(), 1, "joins again");
}

/// A newcomer that signs 2,000 messages at once and offers them as history gets no more of
/// them taken than its rate allows over the time they span (nothing) plus a burst, and is
/// blamed; an honest backlog
/// (1,000 events by 5 authors over 20 s, as after a split) is taken whole.
#[test]
fn history_beyond_an_authors_rate_is_refused_and_an_honest_backlog_is_taken() {
    let now = Instant::now();
    let mut alice = room("alice");
    alice.start(now, WALL, false);
    drain(&mut alice);
    let mut liar = Liar::new();
    let t = WALL.unix_millis();
    let base = alice.clock();
    let flood: Vec<SignedEvent> = (0..2000)
        .map(|i| liar.sign(base + 1 + i, t, Body::Message(Text::new("spam").unwrap())))
        .collect();
    let mut blamed = Vec::new();
    for page in flood.chunks(256) {
        alice.handle_sync_response(
            liar.id(),
            SyncResponse {
                events: page.to_vec(),
                more: true,
            },
            now,
            WALL,
        );
        blamed.extend(offences_of(&mut alice));
    }
    let taken = alice
        .transcript()
        .iter()
        .filter(|e| e.event.author == liar.id())
        .count();
    assert_eq!(taken as u64, SYNC_BURST, "a burst's worth, no more");
    assert!(
        blamed
            .iter()
            .all(|(p, r)| *p == liar.id() && matches!(r, Rejection::BeyondRate { .. })),
        "{blamed:?}"
    );
    assert_eq!(
        blamed.len(),
        flood.len().div_ceil(256) - 1,
        "once per page refused"
    );

    // The honest backlog: 5 authors, each a join then 199 messages, 10 a second for 20 s.
    let mut bob = room("bob");
    bob.start(now, WALL, false);
    drain(&mut bob);
    let mut authors: Vec<Liar> = (0..5).map(|_| Liar::new()).collect();
    let mut backlog = Vec::new();
    for step in 0..200u64 {
        for (i, a) in authors.iter_mut().enumerate() {
            let body = if step == 0 {
                Body::Join
            } else {
                Body::Message(Text::new("honest").unwrap())
            };
            backlog.push(a.sign(1 + step * 5 + i as u64, t + step * 100, body));
        }
    }
    let historian = PeerId::random();
    let mut have = bob.sync_request();
    loop {
        let (events, more) = {
            let mut held = Transcript::new(10_000);
            for e in &backlog {
                held.insert(e.clone());
            }
            held.missing(have.low.as_ref(), &have.have)
        };
        let again = bob.handle_sync_response(historian, SyncResponse { events, more }, now, WALL);
        drain(&mut bob);
        if !again {
            break;
        }
        have = bob.sync_request();
    }
    assert_eq!(
        bob.transcript().len(),
        1000 + 1,
        "the backlog and bob's join"
    );
}

/// Six messages each stamped just under 2^32 ahead of alice's clock, sent by their author:
/// none is shown, alice's clock stays where it was, and each is held against the author. By
/// sync, the same events are refused and blamed when their author serves them, and only
/// refused when an honest node forwards them; a newcomer, which knows nothing of the room's
/// clock yet, takes a far stamp; and an honest chain of big steps, oldest first, is taken.
#[test]
fn wild_stamps_are_refused_and_held_against_their_author() {
    let now = Instant::now();
    let mut rooms = trio();
    let mut alice = rooms.remove(0);
    let mut liar = Liar::new();
    let start = alice.clock();
    for _ in 0..6 {
        let e = liar.sign(
            alice.clock() + MAX_CLOCK_JUMP - 1,
            WALL.unix_millis(),
            Body::Message(Text::new("from the future").unwrap()),
        );
        let verdict = alice.admit(Ok::<_, &str>(e), false, now, WALL);
        assert!(
            matches!(
                verdict.reason(),
                Some(Rejection::StampWild { .. } | Rejection::StampAhead { .. })
            ),
            "{verdict:?}"
        );
        assert_eq!(
            verdict.blame(liar.id()),
            Some(liar.id()),
            "sent by its author"
        );
        assert_eq!(verdict.blame(PeerId::random()), None, "forwarded: nobody");
        let (_, shown, _) = drain_all(&mut alice);
        assert!(chats(&shown).is_empty());
    }
    assert_eq!(alice.clock(), start);
    let wild = liar.sign(start + WILD_JUMP + 10, WALL.unix_millis(), Body::Join);
    let page = |e: &SignedEvent| SyncResponse {
        events: vec![e.clone()],
        more: false,
    };
    alice.handle_sync_response(PeerId::random(), page(&wild), now, WALL);
    assert!(offences_of(&mut alice).is_empty(), "an honest forwarder");
    alice.handle_sync_response(liar.id(), page(&wild), now, WALL);
    assert_eq!(
        offences_of(&mut alice)
            .into_iter()
            .map(|(p, _)| p)
            .collect::<Vec<_>>(),
        vec![liar.id()]
    );
    assert_eq!(alice.clock(), start);
    // A newcomer takes a room's far clock.
    let mut newcomer = room("new");
    newcomer.start(now, WALL, true);
    newcomer.handle_sync_response(liar.id(), page(&wild), now, WALL);
    assert_eq!(newcomer.clock(), wild.event.lamport + 1);
    // An honest chain: each step within the bound of the clock the one before made.
    let mut stepper = Liar::new();
    let first = stepper.sign(start + WILD_JUMP - 5, WALL.unix_millis(), Body::Join);
    let second = stepper.sign(
        start + 2 * WILD_JUMP - 10,
        WALL.unix_millis(),
        Body::Message(Text::new("step").unwrap()),
    );
    alice.handle_sync_response(
        PeerId::random(),
        SyncResponse {
            events: vec![first, second.clone()],
            more: false,
        },
        now,
        WALL,
    );
    drain(&mut alice);
    assert_eq!(alice.clock(), second.event.lamport + 1);
}

/// A hello's participants put nobody in `/who`, not even its sender under another name: only
/// signed events do.
#[test]
fn a_hello_names_nobody_in_who() {
    let now = Instant::now();
    let mut rooms = trio();
    let mut alice = rooms.remove(0);
    let mut liar = Liar::new();
    let join = liar.sign(alice.clock() + 1, WALL.unix_millis(), Body::Join);
    deliver(&[join], &mut alice);
    let mut hello = hello_at(alice.clock());
    hello.participants.push(Participant {
        peer: liar.id(),
        user: Username::new("alice2").unwrap(),
        lamport: MAX_STAMP - 1,
        seq: 99,
    });
    alice.handle_hello(liar.id(), hello).unwrap();
    alice.handle_command(UserCommand::Who, now, WALL);
    let (_, s) = drain(&mut alice);
    let Some(ChatEvent::Who(list)) = s.last() else {
        panic!("{s:?}")
    };
    assert!(list.iter().any(|p| p.user == "mallory"), "{list:?}");
    assert!(list.iter().all(|p| p.user != "alice2"), "{list:?}");
    // Its leave ends its presence: no stale entry outlives it.
    let leave = liar.sign(alice.clock() + 1, WALL.unix_millis(), Body::Leave);
    deliver(&[leave], &mut alice);
    drain(&mut alice);
    assert!(!alice.is_present(&liar.id()));
}

/// An old event of an author, replayed by someone to a node that never had it, is taken but
/// not charged to the author's rate: the author's own new events still get through.
#[test]
fn a_replayed_old_event_is_not_charged_to_its_author() {
    let now = Instant::now();
    let mut alice = room("alice");
    alice.start(now, WALL, false);
    drain(&mut alice);
    let mut author = Liar::new();
    let old: Vec<SignedEvent> = (0..200)
        .map(|i| {
            author.sign(
                2 + i,
                WALL.unix_millis(),
                Body::Message(Text::new("old").unwrap()),
            )
        })
        .collect();
    let newest = author.sign(300, WALL.unix_millis(), Body::Join);
    assert!(matches!(
        alice.admit(Ok::<_, &str>(newest), false, now, WALL),
        Verdict::Accept(_)
    ));
    for e in old {
        let v = alice.admit(Ok::<_, &str>(e), false, now, WALL);
        assert!(matches!(v, Verdict::Accept(_)), "{v:?}");
    }
    drain(&mut alice);
    let fresh = author.sign(
        400,
        WALL.unix_millis(),
        Body::Message(Text::new("new").unwrap()),
    );
    assert!(matches!(
        alice.admit(Ok::<_, &str>(fresh), false, now, WALL),
        Verdict::Accept(_)
    ));
}

/// alice judged a `lost` about bob false (she hears him); bob, who took it about himself,
/// joins again. alice never showed him leave, so she does not show him join a second time; a
/// screen that did show him leave shows the join.
#[test]
fn a_rejoin_after_a_false_lost_is_not_shown_where_the_lost_was_not() {
    let start = Instant::now();
    let mut rooms = trio();
    let (mut alice, mut bob, mut carol) = (rooms.remove(0), rooms.remove(0), rooms.remove(0));
    let mut liar = Liar::new();
    let now = hear_steadily(&mut alice, bob.me(), start);
    let lost = liar.lost_about_bob(alice.clock() + 1, bob.me());
    alice.admit(Ok::<_, &str>(lost.clone()), false, now, WALL);
    assert!(chats(&drain_all(&mut alice).1).is_empty());
    // carol, with no connection to bob, holds it back, and shows it once the moment passed.
    carol.peer_unreachable(&bob.me());
    carol.admit(Ok::<_, &str>(lost.clone()), false, now, WALL);
    carol.handle_timeout(now + ALIVE_WITHIN, WALL);
    assert_eq!(chats(&drain_all(&mut carol).1).len(), 1, "the lost, shown");
    deliver(std::slice::from_ref(&lost), &mut bob);
    let (rejoin, _) = drain(&mut bob);
    assert_eq!(rejoin[0].event.body, Body::Join);
    let later = now + ALIVE_WITHIN;
    alice.admit(Ok::<_, &str>(rejoin[0].clone()), false, later, WALL);
    assert!(
        chats(&drain_all(&mut alice).1).is_empty(),
        "alice never showed bob leave"
    );
    carol.admit(Ok::<_, &str>(rejoin[0].clone()), false, later, WALL);
    let shown = chats(&drain_all(&mut carol).1);
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert_eq!(shown[0].kind, EventKind::Join);
}
