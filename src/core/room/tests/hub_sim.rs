//! The simulation again (seeded, keys included), with a hub: clients that reach each other only
//! through it (as behind NATs, each with one connection, to the hub), links that drop and come
//! back, late joiners, crashes and a hub restart that loses everything the hub held. The hub is
//! what the real one is in the core: a [`Ledger`] kept as an archive, judging every live event
//! with [`Ledger::admit`], forwarding what it accepts, asking each client that says hello for
//! what it lacks, and answering sync requests.

use super::*;
use crate::core::ledger::{Keeper, Ledger};
use crate::core::verdict::Verdict;

/// The clients' sync with the hub: the client asks until it has everything.
fn client_from_hub(hub: &Ledger, hub_id: PeerId, to: &mut Room) {
    loop {
        let resp = hub.handle_sync_request(&to.sync_request(), |_| Vec::new());
        if !to.handle_sync_response(hub_id, resp, Instant::now(), WALL) {
            break;
        }
    }
}

/// The hub's sync with a client, as `net::hub` pages it: on while pages teach it something.
fn hub_from_client(from: &Room, hub: &mut Ledger) {
    loop {
        let resp = from.handle_sync_request(&hub.sync_request(), |_| Vec::new());
        let more = resp.more;
        let new = resp
            .events
            .into_iter()
            .filter(|e| matches!(hub.accept(e.clone()), Ok(Some(_))))
            .count();
        if !(more && new > 0) {
            break;
        }
    }
}

/// A client's connection to the hub comes up: hellos both ways (the hub's marked `archive`),
/// the hub asks the client for what it lacks, the client asks the hub.
fn link_up(hub: &mut Ledger, hub_id: PeerId, c: &mut Room) {
    c.handle_hello(hub_id, hub.hello()).unwrap();
    c.peer_back(&hub_id);
    hub_from_client(c, hub);
    client_from_hub(hub, hub_id, c);
}

fn keys(t: &Transcript) -> Vec<(PeerId, u64, u64)> {
    t.iter()
        .map(|e| (e.event.author, e.event.seq, e.event.lamport))
        .collect()
}

/// A key drawn from the schedule's generator, so that peer ids, and so the total order of
/// concurrent events, are the same on every run of a seed.
fn seeded_key(rng: &mut Rng) -> Keypair {
    let mut secret = [0u8; 32];
    for chunk in secret.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next().to_le_bytes());
    }
    Keypair::ed25519_from_bytes(secret).expect("any 32 bytes are an ed25519 secret key")
}

fn new_hub(history: usize) -> Ledger {
    Ledger::new(
        RoomName::lobby().topic(),
        Keeper::Archive,
        history,
        DEFAULT_RATE,
    )
}

/// Conversations through a hub under random delays, duplicates, reordering, dropped links,
/// crashes and a hub restart: once every link is up and sync has run, every surviving client
/// and the hub hold the same transcript, every event with its original stamp.
#[test]
fn simulation_through_a_hub_every_survivor_and_the_hub_end_with_the_same_transcript() {
    for seed in 1..=40u64 {
        simulate_with_hub(seed);
    }
}

fn simulate_with_hub(seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1);
    let t0 = Instant::now();
    let history = if seed.is_multiple_of(3) { 40 } else { 10_000 };
    let hub_id = seeded_key(&mut rng).public().to_peer_id();
    let mut hub: Option<Ledger> = Some(new_hub(history));
    let mut hub_back_at = 0u64;
    let n = 4 + rng.below(4) as usize;
    let mut clients: Vec<Option<Room>> = (0..n)
        .map(|i| {
            Some(Room::new(RoomConfig {
                keypair: seeded_key(&mut rng),
                user: Username::new(format!("c{i}")).unwrap(),
                room: RoomName::lobby(),
                private: None,
                history,
                join_grace: JOIN_GRACE,
                first_seq: 0,
                max_rate: DEFAULT_RATE,
            }))
        })
        .collect();
    // The last two sleep until they join late.
    let mut awake: Vec<bool> = (0..n).map(|i| i < n - 2).collect();
    let mut linked = vec![false; n];
    let hub_ref = hub.as_mut().unwrap();
    for i in 0..n - 2 {
        let c = clients[i].as_mut().unwrap();
        c.start(t0, WALL, true);
        link_up(hub_ref, hub_id, c);
        linked[i] = true;
    }
    // In flight: (due step, client, event), to the hub and from it.
    let mut to_hub: Vec<(u64, usize, SignedEvent)> = Vec::new();
    let mut from_hub: Vec<(u64, usize, SignedEvent)> = Vec::new();
    let mut restarts = 0;
    for step in 0..300u64 {
        let now = t0 + Duration::from_millis(step * 10);
        for (i, c) in clients.iter_mut().enumerate() {
            let Some(c) = c.as_mut() else { continue };
            c.handle_timeout(now, WALL);
            for e in drain(c).0 {
                if linked[i] && hub.is_some() {
                    to_hub.push((step + rng.below(8), i, e.clone()));
                    if rng.below(10) == 0 {
                        to_hub.push((step + rng.below(20), i, e));
                    }
                }
            }
        }
        // The hub comes back empty after a restart; every live client says hello again.
        if hub.is_none() && step >= hub_back_at {
            let mut fresh = new_hub(history);
            for (i, c) in clients.iter_mut().enumerate() {
                if let (Some(c), true) = (c.as_mut(), awake[i] && linked[i]) {
                    link_up(&mut fresh, hub_id, c);
                }
            }
            hub = Some(fresh);
        }
        match rng.below(20) {
            0..=7 => {
                let i = rng.below(n as u64) as usize;
                if let (Some(c), true) = (clients[i].as_mut(), awake[i]) {
                    c.handle_command(say(&format!("h{step}")), now, WALL);
                }
            }
            8 => {
                // A client's link drops, or comes back.
                let i = rng.below(n as u64) as usize;
                if let (Some(c), true) = (clients[i].as_mut(), awake[i]) {
                    linked[i] = !linked[i];
                    match hub.as_mut() {
                        Some(h) if linked[i] => link_up(h, hub_id, c),
                        _ => c.peer_gone(hub_id, now, WALL),
                    }
                }
            }
            9 if step > 100 && clients.iter().flatten().count() > 2 => {
                // Now and then, a client crashes.
                let k = rng.below(n as u64) as usize;
                if awake[k] && rng.below(3) == 0 {
                    clients[k] = None;
                }
            }
            10..=12 => {
                // Anti-entropy: a client asks the hub what it lacks.
                let i = rng.below(n as u64) as usize;
                if let (Some(c), Some(h), true) = (clients[i].as_mut(), hub.as_ref(), linked[i]) {
                    client_from_hub(h, hub_id, c);
                }
            }
            13 if step > 50 => {
                if let Some(k) = (0..n).find(|k| !awake[*k]) {
                    awake[k] = true;
                    linked[k] = true;
                    if let Some(c) = clients[k].as_mut() {
                        c.start(now, WALL, true);
                        if let Some(h) = hub.as_mut() {
                            link_up(h, hub_id, c);
                        }
                    }
                }
            }
            14 if step > 80 && restarts < 2 && hub.is_some() => {
                // The hub restarts: everything it held, and everything in flight, is gone.
                restarts += 1;
                hub = None;
                hub_back_at = step + 5 + rng.below(30);
                to_hub.clear();
                from_hub.clear();
                for c in clients.iter_mut().flatten() {
                    c.peer_gone(hub_id, now, WALL);
                }
            }
            _ => {}
        }
        // The hub judges what is due, in random order, and forwards what it accepts.
        let mut due: Vec<(u64, usize, SignedEvent)> = Vec::new();
        to_hub.retain(|w| (w.0 > step) || (due.push(w.clone()), false).1);
        while !due.is_empty() {
            let (_, from, e) = due.swap_remove(rng.below(due.len() as u64) as usize);
            let Some(h) = hub.as_mut() else { break };
            if !linked[from] {
                continue;
            }
            if let Verdict::Accept(_) = h.admit(Ok::<_, &str>(e.clone()), false, now, |_| false) {
                for (j, up) in linked.iter().enumerate() {
                    if j != from && *up && awake[j] {
                        from_hub.push((step + rng.below(8), j, e.clone()));
                    }
                }
            }
        }
        let mut due: Vec<(u64, usize, SignedEvent)> = Vec::new();
        from_hub.retain(|w| (w.0 > step) || (due.push(w.clone()), false).1);
        while !due.is_empty() {
            let (_, to, e) = due.swap_remove(rng.below(due.len() as u64) as usize);
            if let (Some(c), true) = (clients[to].as_mut(), linked[to]) {
                let _ = c.handle_remote(e, Instant::now(), WALL);
            }
        }
    }
    // Heal: the hub up, every client awake and linked, then sync until nothing changes.
    let end = t0 + Duration::from_secs(3600);
    let mut h = hub.take().unwrap_or_else(|| new_hub(history));
    for (i, c) in clients.iter_mut().enumerate() {
        if let Some(c) = c.as_mut() {
            if !awake[i] {
                c.start(end, WALL, true);
            }
            link_up(&mut h, hub_id, c);
            c.handle_timeout(end + JOIN_GRACE, WALL);
        }
    }
    for _round in 0..20 {
        let before: Vec<_> = clients
            .iter()
            .flatten()
            .map(|c| keys(c.transcript()))
            .chain([keys(h.transcript())])
            .collect();
        for c in clients.iter_mut().flatten() {
            c.handle_timeout(end + JOIN_GRACE, WALL);
            for e in drain(c).0 {
                let _ = h.accept(e);
            }
            hub_from_client(c, &mut h);
        }
        for c in clients.iter_mut().flatten() {
            client_from_hub(&h, hub_id, c);
        }
        let after: Vec<_> = clients
            .iter()
            .flatten()
            .map(|c| keys(c.transcript()))
            .chain([keys(h.transcript())])
            .collect();
        if after == before {
            break;
        }
    }
    let reference = keys(h.transcript());
    assert!(!reference.is_empty(), "seed {seed}: the hub holds the room");
    let alive: Vec<&Room> = clients.iter().flatten().collect();
    for c in &alive {
        assert_eq!(
            keys(c.transcript()),
            reference,
            "seed {seed}: a client and the hub differ"
        );
    }
    for c in alive.iter().filter(|_| history > 1000) {
        for s in &alive {
            assert!(
                c.is_present(&s.me()),
                "seed {seed}: a survivor is missing from a roster"
            );
            assert!(h.is_present(&s.me()), "seed {seed}: the hub misses one");
        }
    }
}
