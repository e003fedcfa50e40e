//! Tests of the ledger: what a hub keeps, and the admit pipeline both roles go through.

use std::time::{Duration, Instant};

use libp2p::identity::Keypair;

use super::*;
use crate::core::event::{Text, Username};
use crate::core::limit::DEFAULT_RATE;
use crate::core::sign::Signer;
use crate::core::time::WallTime;
use crate::core::verdict::Forward;

const TOPIC: &str = "chitty-chat";

/// When event `seq` was said: a minute apart, from 2026-11-25T13:29:31Z.
fn said(seq: u64) -> WallTime {
    WallTime::from_unix_millis(1_795_613_371_000 + seq * 60_000).unwrap()
}

fn signed_in(topic: &str, key: &Keypair, seq: u64, lamport: u64, body: Body) -> SignedEvent {
    let e = Event {
        author: key.public().to_peer_id(),
        seq,
        lamport,
        time: said(seq),
        user: Username::new("u").unwrap(),
        body,
    };
    key.sign_event(e, topic)
}

fn signed(key: &Keypair, seq: u64, lamport: u64, body: Body) -> SignedEvent {
    signed_in(TOPIC, key, seq, lamport, body)
}

fn archive() -> Ledger {
    Ledger::new(TOPIC.into(), Keeper::Archive, 100, DEFAULT_RATE)
}

fn ok(e: SignedEvent) -> Result<SignedEvent, &'static str> {
    Ok(e)
}

#[test]
fn an_archive_keeps_validated_history_and_knows_who_is_present() {
    let k = Keypair::generate_ed25519();
    let mut a = archive();
    assert!(a.accept(signed(&k, 1, 1, Body::Join)).unwrap().is_some());
    let msg = signed(&k, 2, 2, Body::Message(Text::new("hi").unwrap()));
    let event = a.accept(msg.clone()).unwrap();
    assert_eq!(event.map(|e| e.time), Some(said(2)), "the hub logs it said");
    assert!(a.accept(msg).unwrap().is_none(), "a duplicate is not new");
    assert_eq!(
        a.clock(),
        2,
        "an archive's clock is the highest stamp taken"
    );
    let h = a.hello();
    assert!(h.archive);
    assert_eq!(h.participants.len(), 1);
    assert!(matches!(
        a.accept(signed(&k, 3, u64::MAX, Body::Leave)),
        Err(Rejection::StampTooFar { .. })
    ));
    a.accept(signed(&k, 3, 3, Body::Leave)).unwrap();
    assert!(a.hello().participants.is_empty());
    let all = a.handle_sync_request(
        &SyncRequest {
            topic: TOPIC.into(),
            low: None,
            have: vec![],
        },
        |_| Vec::new(),
    );
    assert_eq!(all.events.len(), 3);
    // Served as signed: each event with the time its author said it.
    for e in &all.events {
        assert_eq!(e.event.time, said(e.event.seq));
    }
    let other = signed_in("chitty-chat/else", &k, 4, 4, Body::Join);
    assert!(matches!(a.accept(other), Err(Rejection::OtherRoom(_))));
}

/// Section 8, for every keeper alike: a stamp merely far ahead of the clock is not for us but
/// may be for another (Ignore, only the author to blame); 2^62 or more is invalid (Reject, the
/// forwarder to blame).
#[test]
fn one_stamp_rule_for_every_keeper() {
    let k = Keypair::generate_ed25519();
    let author = k.public().to_peer_id();
    let relay = libp2p::PeerId::random();
    let now = Instant::now();
    let keepers = [
        Keeper::Archive,
        Keeper::Participant {
            me: libp2p::PeerId::random(),
            first_seq: 0,
        },
    ];
    for keeper in keepers {
        let mut l = Ledger::new(TOPIC.into(), keeper, 100, DEFAULT_RATE);
        let ahead = l.admit(
            ok(signed(&k, 1, (1 << 32) + 10, Body::Join)),
            false,
            now,
            |_| false,
        );
        assert!(
            matches!(
                &ahead,
                Verdict::Unfit {
                    reason: Rejection::StampAhead { .. },
                    ..
                }
            ),
            "{keeper:?}: {ahead:?}"
        );
        assert_eq!(ahead.forward(), Forward::Ignore);
        assert_eq!(ahead.blame(relay), None);
        assert_eq!(ahead.blame(author), Some(author));
        let wild = l.admit(ok(signed(&k, 2, MAX_STAMP, Body::Join)), false, now, |_| {
            false
        });
        assert_eq!(wild.forward(), Forward::Reject, "{keeper:?}");
        assert_eq!(wild.blame(relay), Some(relay));
        assert_eq!(l.clock(), 0, "nothing refused moves the clock");
    }
}

/// The pipeline's order: undecodable and cut-off first, then the checks (so an invalid event
/// counts whatever the rate), then known (not charged to the rate), then the rate.
#[test]
fn admit_checks_then_known_then_rate() {
    let k = Keypair::generate_ed25519();
    let now = Instant::now();
    let mut l = Ledger::new(TOPIC.into(), Keeper::Archive, 10_000, 1);
    let bad: Result<SignedEvent, &str> = Err("not CBOR");
    assert_eq!(
        l.admit(bad, false, now, |_| false).forward(),
        Forward::Reject
    );
    let first = signed(&k, 1, 1, Body::Join);
    assert!(matches!(
        l.admit(ok(first.clone()), true, now, |_| false),
        Verdict::Unfit {
            reason: Rejection::CutOff(_),
            ..
        }
    ));
    assert!(matches!(
        l.admit(ok(first.clone()), false, now, |_| false),
        Verdict::Accept(_)
    ));
    // Replays of a known event never drain the rate.
    for _ in 0..10 {
        assert!(matches!(
            l.admit(ok(first.clone()), false, now, |_| false),
            Verdict::Known(_)
        ));
    }
    let msg = |seq| signed(&k, seq, seq, Body::Message(Text::new("x").unwrap()));
    // A burst of twice the rate (the join took one token), then limited.
    assert!(matches!(
        l.admit(ok(msg(2)), false, now, |_| false),
        Verdict::Accept(_)
    ));
    assert!(matches!(
        l.admit(ok(msg(3)), false, now, |_| false),
        Verdict::Limited(_)
    ));
    let later = now + Duration::from_secs(1);
    assert!(matches!(
        l.admit(ok(msg(3)), false, later, |_| false),
        Verdict::Accept(_)
    ));
    assert_eq!(l.transcript().len(), 3);
}

/// A participant refuses events of this run it never sent (its key is in use elsewhere) but
/// takes its own earlier runs' like anyone's; a hub has no key of its own to protect.
#[test]
fn only_a_participant_guards_its_own_key() {
    let k = Keypair::generate_ed25519();
    let me = k.public().to_peer_id();
    let mut p = Ledger::new(
        TOPIC.into(),
        Keeper::Participant { me, first_seq: 100 },
        100,
        DEFAULT_RATE,
    );
    assert_eq!(
        p.accept(signed(&k, 101, 1, Body::Join)),
        Err(Rejection::ForeignOwn { seq: 101 })
    );
    assert!(p.accept(signed(&k, 50, 1, Body::Join)).unwrap().is_some());
    let mut a = archive();
    assert!(a.accept(signed(&k, 101, 1, Body::Join)).unwrap().is_some());
    assert!(!a.hello().participants.is_empty());
    assert!(!p.hello().archive);
}
