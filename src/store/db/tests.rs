use super::*;
use crate::core::event::{Event, Text, Username};
use crate::core::sign::Signer;
use crate::core::time::WallTime;
use libp2p::identity::Keypair;

/// A fresh directory for one test, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("chitty-store-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        Dir(d)
    }

    fn db(&self) -> PathBuf {
        self.0.join("history").join("alice.db")
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn event(key: &Keypair, seq: u64, lamport: u64, body: Body, topic: &str) -> SignedEvent {
    let e = Event {
        author: key.public().to_peer_id(),
        seq,
        lamport,
        time: WallTime::from_unix_millis(1_700_000_000_000 + seq).unwrap(),
        user: Username::new("alice").unwrap(),
        body,
    };
    key.sign_event(e, topic)
}

fn say(key: &Keypair, seq: u64, lamport: u64, text: &str) -> Stored {
    Stored::of(&event(
        key,
        seq,
        lamport,
        Body::Message(Text::new(text).unwrap()),
        "chitty-chat",
    ))
}

#[test]
fn events_round_trip_in_total_order_and_are_stored_once() {
    let dir = Dir::new("round-trip");
    let key = Keypair::generate_ed25519();
    let mut s = Store::open(&dir.db()).unwrap();
    let evs: Vec<Stored> = (1..=5).rev().map(|i| say(&key, i, i * 2, "hi")).collect();
    assert_eq!(s.append(&evs).unwrap(), 5);
    assert_eq!(s.append(&evs[..2]).unwrap(), 0, "already stored");
    let all = s.all("chitty-chat").unwrap();
    let stamps: Vec<u64> = all
        .iter()
        .map(|b| crate::wire::decode_event(b).unwrap().event.lamport)
        .collect();
    assert_eq!(stamps, vec![2, 4, 6, 8, 10]);
    assert_eq!(all[0], evs[4].envelope, "the envelope as received");
    let tail = s.tail("chitty-chat", 2).unwrap();
    assert_eq!(tail, vec![evs[1].envelope.clone(), evs[0].envelope.clone()]);
    assert!(s.tail("chitty-chat/other", 10).unwrap().is_empty());
    drop(s);
    // Reopened: all still there.
    let s = Store::open(&dir.db()).unwrap();
    assert_eq!(s.count("chitty-chat").unwrap(), 5);
    assert_eq!(s.rooms().unwrap(), vec!["chitty-chat".to_owned()]);
}

#[test]
fn pruning_keeps_the_newest_and_their_search_entries_only() {
    let dir = Dir::new("prune");
    let key = Keypair::generate_ed25519();
    let mut s = Store::open(&dir.db()).unwrap();
    let evs: Vec<Stored> = (1..=100)
        .map(|i| say(&key, i, i, &format!("line {i} apple")))
        .collect();
    s.append(&evs).unwrap();
    assert_eq!(s.prune("chitty-chat", 10).unwrap(), 90);
    assert_eq!(s.count("chitty-chat").unwrap(), 10);
    let tail = s.tail("chitty-chat", 100).unwrap();
    assert_eq!(tail.len(), 10);
    assert_eq!(tail[0], evs[90].envelope);
    let found = s.search("chitty-chat", &["apple".into()], 1000).unwrap();
    assert_eq!(found.len(), 10, "pruned lines are gone from the index too");
}

#[test]
fn search_finds_every_word_any_case_newest_first_and_takes_no_syntax() {
    let dir = Dir::new("search");
    let key = Keypair::generate_ed25519();
    let mut s = Store::open(&dir.db()).unwrap();
    s.append(&[
        say(&key, 1, 1, "The quick brown fox"),
        say(&key, 2, 2, "a lazy dog"),
        say(&key, 3, 3, "quick thinking, FOX!"),
        Stored::of(&event(&key, 4, 4, Body::Join, "chitty-chat")),
        Stored::of(&event(
            &key,
            5,
            5,
            Body::Message(Text::new("quick fox elsewhere").unwrap()),
            "chitty-chat/other",
        )),
    ])
    .unwrap();
    let texts = |found: Vec<Vec<u8>>| -> Vec<String> {
        found
            .iter()
            .map(|b| match crate::wire::decode_event(b).unwrap().event.body {
                Body::Message(t) => t.as_str().to_owned(),
                other => format!("{other:?}"),
            })
            .collect()
    };
    assert_eq!(
        texts(
            s.search("chitty-chat", &["fox".into(), "QUICK".into()], 10)
                .unwrap()
        ),
        vec!["quick thinking, FOX!", "The quick brown fox"]
    );
    assert_eq!(
        texts(s.search("chitty-chat", &["fox".into()], 1).unwrap()),
        vec!["quick thinking, FOX!"]
    );
    for odd in ["\"", "fox OR", "NEAR(", "*", "a:b", "-x"] {
        assert!(
            s.search("chitty-chat", &[odd.into()], 10).is_ok(),
            "{odd} is a word, not syntax"
        );
    }
}

#[test]
fn a_second_process_on_the_same_database_is_refused_and_nothing_is_lost() {
    let dir = Dir::new("locked");
    let key = Keypair::generate_ed25519();
    let mut s = Store::open(&dir.db()).unwrap();
    s.append(&[say(&key, 1, 1, "kept")]).unwrap();
    let second = Store::open(&dir.db());
    assert!(
        matches!(second, Err(StoreError::Locked { .. })),
        "{second:?}"
    );
    assert!(second.unwrap_err().to_string().contains("--data-dir"));
    // A reader beside the writer (`--export`) is fine.
    let reader = Store::open_read_only(&dir.db()).unwrap();
    assert_eq!(reader.all("chitty-chat").unwrap().len(), 1);
    drop(s);
    assert_eq!(
        Store::open(&dir.db())
            .unwrap()
            .count("chitty-chat")
            .unwrap(),
        1
    );
}

#[test]
fn a_damaged_file_is_refused_with_what_to_do_and_left_as_it_was() {
    let dir = Dir::new("damaged");
    fs::create_dir_all(dir.db().parent().unwrap()).unwrap();
    let junk = vec![0x5au8; 8192];
    fs::write(dir.db(), &junk).unwrap();
    let e = Store::open(&dir.db()).unwrap_err();
    assert!(matches!(e, StoreError::Damaged { .. }), "{e:?}");
    assert!(e.to_string().contains("move it away"), "{e}");
    assert_eq!(fs::read(dir.db()).unwrap(), junk, "never overwritten");
    // A real database with a page overwritten in the middle.
    let dir = Dir::new("damaged-page");
    let key = Keypair::generate_ed25519();
    {
        let mut s = Store::open(&dir.db()).unwrap();
        let evs: Vec<Stored> = (1..=500)
            .map(|i| say(&key, i, i, &"x".repeat(100)))
            .collect();
        s.append(&evs).unwrap();
        // Everything into the main file.
        s.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
    }
    let mut bytes = fs::read(dir.db()).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 4096] {
        *b = 0xff;
    }
    fs::write(dir.db(), &bytes).unwrap();
    // Found when the damaged part is read: at start, the tail of the room.
    let e = Store::open(&dir.db())
        .and_then(|s| s.tail("chitty-chat", 1000))
        .unwrap_err();
    assert!(matches!(e, StoreError::Damaged { .. }), "{e:?}");
}

#[test]
fn a_newer_schema_is_refused_and_the_first_is_opened_as_it_is() {
    let dir = Dir::new("newer");
    drop(Store::open(&dir.db()).unwrap());
    {
        let c = Connection::open(dir.db()).unwrap();
        c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
    }
    let e = Store::open(&dir.db()).unwrap_err();
    assert!(matches!(e, StoreError::Newer { .. }), "{e:?}");
    assert!(e.to_string().contains("newer"), "{e}");
    // A database of the first schema, as its migration made it, with an event in it: opened
    // (migrated to the current schema) with the event kept.
    let dir = Dir::new("first");
    fs::create_dir_all(dir.db().parent().unwrap()).unwrap();
    let key = Keypair::generate_ed25519();
    let ev = say(&key, 1, 1, "from the first schema");
    {
        let c = Connection::open(dir.db()).unwrap();
        c.execute_batch(MIGRATIONS[0]).unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        c.execute("INSERT INTO rooms (topic) VALUES ('chitty-chat')", [])
            .unwrap();
        c.execute(
            "INSERT INTO events (room, lamport, author, seq, text, envelope)
             VALUES (1, 1, ?1, 1, ?2, ?3)",
            params![ev.author, ev.text, ev.envelope],
        )
        .unwrap();
    }
    let mut s = Store::open(&dir.db()).unwrap();
    assert_eq!(s.version().unwrap(), SCHEMA_VERSION);
    assert_eq!(s.all("chitty-chat").unwrap(), vec![ev.envelope]);
    assert_eq!(
        s.search("chitty-chat", &["schema".into()], 5)
            .unwrap()
            .len(),
        1
    );
    // Written by this version: indexed too, once.
    s.append(&[say(&key, 2, 2, "after the schema changed")])
        .unwrap();
    s.append(&[say(&key, 2, 2, "after the schema changed")])
        .unwrap();
    assert_eq!(
        s.search("chitty-chat", &["schema".into()], 5)
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn a_directory_that_cannot_hold_the_database_gives_a_clear_error() {
    let dir = Dir::new("not-a-dir");
    fs::create_dir_all(&dir.0).unwrap();
    // `history` is a file, so the database's directory cannot be made.
    fs::write(dir.0.join("history"), b"a file").unwrap();
    let e = Store::open(&dir.db()).unwrap_err();
    assert!(e.to_string().contains("history database"), "{e}");
}

/// What is held per author comes from the index as runs, with the times of its first and last
/// event; a sync answer's query reads exactly the lacking runs, within its bounds, in order.
#[test]
fn holdings_and_cold_reads_answer_from_the_index() {
    let dir = Dir::new("cold");
    let (ka, kb) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
    let mut s = Store::open(&dir.db()).unwrap();
    // a: 1..=5 and 8..=9; b: 1..=3. Stamps interleave.
    let mut evs: Vec<Stored> = [1, 2, 3, 4, 5, 8, 9]
        .iter()
        .map(|&q| say(&ka, q, q * 2, "a"))
        .collect();
    evs.extend((1..=3).map(|q| say(&kb, q, q * 2 + 1, "b")));
    s.append(&evs).unwrap();
    let mut holds = s.holdings("chitty-chat").unwrap();
    holds.sort_by_key(|h| h.count);
    let (hb, ha) = (&holds[0], &holds[1]);
    assert_eq!(ha.author, ka.public().to_peer_id());
    assert_eq!((ha.runs.clone(), ha.count), (vec![(1, 5), (8, 9)], 7));
    assert_eq!(ha.times, (1_700_000_000_001, 1_700_000_000_009));
    assert_eq!((hb.runs.clone(), hb.count), (vec![(1, 3)], 3));
    assert!(s.holdings("chitty-chat/other").unwrap().is_empty());

    let a = ka.public().to_peer_id();
    let b = kb.public().to_peer_id();
    let key = |l: u64, k: &Keypair, q: u64| OrderKey::new(l, k.public().to_peer_id().to_bytes(), q);
    let q = ColdQuery {
        low: Some(key(2, &ka, 1)),
        below: Some(key(16, &ka, 8)),
        runs: vec![(a, 1, 9), (b, 2, 3)],
        limit: 10,
    };
    let got: Vec<(u64, u64)> = s
        .cold("chitty-chat", &q)
        .unwrap()
        .iter()
        .map(|e| (e.event.lamport, e.event.seq))
        .collect();
    // After a's stamp 2, before its stamp 16: a 2..=5 (stamps 4..10) and b 2..=3 (5, 7).
    assert_eq!(got, vec![(4, 2), (5, 2), (6, 3), (7, 3), (8, 4), (10, 5)]);
    let first_two = s
        .cold(
            "chitty-chat",
            &ColdQuery {
                limit: 2,
                ..q.clone()
            },
        )
        .unwrap();
    assert_eq!(first_two.len(), 2);
    assert_eq!(first_two[1].event.lamport, 5);
    // The newest two before a's stamp 16, oldest first.
    let before: Vec<u64> = s
        .before("chitty-chat", q.below.as_ref(), 2)
        .unwrap()
        .iter()
        .map(|e| e.event.lamport)
        .collect();
    assert_eq!(before, vec![8, 10]);
}
