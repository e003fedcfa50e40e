//! A foreign peer: a plain libp2p gossipsub node written here, with none of chitty-node's types,
//! joins the room and sends garbage, oversize and escape-laden text, forged authors, wild stamps,
//! a name that is not its own, look-alike names, line-reordering text, clocks far off, and a
//! flood. The chitty nodes show none of the invalid, keep
//! chatting in order, tell the impostor apart, and cut the offender off.

mod common;

use std::time::{Duration, Instant};

use common::Node;
use libp2p::futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, gossipsub, identify, noise, ping, tcp, yamux};
use serde_cbor::Value;
use serde_json::Value as Json;
use tokio::sync::mpsc;

#[derive(NetworkBehaviour)]
struct Foreign {
    gossipsub: gossipsub::Behaviour,
    ping: ping::Behaviour,
    identify: identify::Behaviour,
}

enum Seen {
    Subscribed,
    Closed,
}

/// What the foreign node is told to do.
enum Cmd {
    /// Publish these bytes.
    Publish(Vec<u8>),
    /// Publish again the last message it received (someone else's signed event), encoded
    /// otherwise (the envelope's keys in another order), so that gossipsub takes it for a new
    /// message: refused as not canonical.
    Replay,
}

/// Runs the foreign node: dials `addr`, joins topic `chitty-chat`, publishes what it is given.
async fn foreign(
    key: Keypair,
    addr: Multiaddr,
    mut publish: mpsc::Receiver<Cmd>,
    seen: mpsc::Sender<Seen>,
) {
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key.clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("a tcp transport")
        .with_behaviour(|key| Foreign {
            // As docs/PROTOCOL.md says: anonymous gossip, the SHA-256 of a message its id.
            gossipsub: gossipsub::Behaviour::new(
                gossipsub::MessageAuthenticity::Anonymous,
                gossipsub::ConfigBuilder::default()
                    .max_transmit_size(1 << 20)
                    .validation_mode(gossipsub::ValidationMode::Anonymous)
                    .message_id_fn(|m: &gossipsub::Message| {
                        use sha2::Digest;
                        gossipsub::MessageId::new(&sha2::Sha256::digest(&m.data))
                    })
                    .build()
                    .expect("a gossipsub config"),
            )
            .expect("gossipsub"),
            ping: ping::Behaviour::default(),
            identify: identify::Behaviour::new(identify::Config::new(
                "/foreign/1".into(),
                key.public(),
            )),
        })
        .expect("behaviours")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    let topic = gossipsub::IdentTopic::new("chitty-chat");
    swarm
        .behaviour_mut()
        .gossipsub
        .subscribe(&topic)
        .expect("subscribe");
    swarm.dial(addr).expect("dial");
    let mut last: Option<Vec<u8>> = None;
    loop {
        tokio::select! {
                        cmd = publish.recv() => match cmd {
                Some(Cmd::Publish(data)) => {
                    let _ = swarm.behaviour_mut().gossipsub.publish(topic.clone(), data);
                }
                Some(Cmd::Replay) => {
                    if let Some(data) = last.clone() {
                        let v: Value = serde_cbor::from_slice(&data).expect("a CBOR envelope");
                        let again = cbor(&v);
                        assert_ne!(again, data, "the envelope re-encoded in key order");
                        let _ = swarm.behaviour_mut().gossipsub.publish(topic.clone(), again);
                    }
                }
                None => return,
            },
            event = swarm.select_next_some() => match event {
                                SwarmEvent::Behaviour(ForeignEvent::Gossipsub(gossipsub::Event::Subscribed { .. })) => {
                    let _ = seen.send(Seen::Subscribed).await;
                }
                SwarmEvent::Behaviour(ForeignEvent::Gossipsub(gossipsub::Event::Message { message, .. })) => {
                    last = Some(message.data);
                }
                SwarmEvent::ConnectionClosed { num_established: 0, .. } => {
                    let _ = seen.send(Seen::Closed).await;
                }
                _ => {}
            },
        }
    }
}

fn cbor(v: &Value) -> Vec<u8> {
    serde_cbor::to_vec(v).expect("CBOR of a value")
}

/// The foreign node's clock: 2001-09-09T01:46:40Z, far off, and shown as it claims.
const FOREIGN_TIME_MS: u64 = 1_000_000_000_000;
const FOREIGN_TIME: &str = "2001-09-09T01:46:40.000Z";

/// An event body, built field by field as docs/PROTOCOL.md describes it, said at
/// [`FOREIGN_TIME_MS`].
fn body(author: &PeerId, seq: u64, lamport: u64, user: &str, text_: &str) -> Vec<u8> {
    body_at(author, seq, lamport, FOREIGN_TIME_MS, user, text_)
}

/// An event body said at `time` (milliseconds since the Unix epoch), in its one form: the keys
/// in the order docs/PROTOCOL.md section 5 gives.
fn body_at(author: &PeerId, seq: u64, lamport: u64, time: u64, user: &str, text_: &str) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        topic: &'a str,
        kind: &'a str,
        #[serde(with = "serde_bytes")]
        author: Vec<u8>,
        seq: u64,
        lamport: u64,
        time: u64,
        user: &'a str,
        text: &'a str,
    }
    serde_cbor::to_vec(&Body {
        topic: "chitty-chat",
        kind: "message",
        author: author.to_bytes(),
        seq,
        lamport,
        time,
        user,
        text: text_,
    })
    .expect("CBOR of a body")
}

/// A signed envelope: `sig` by `key` over the context and the body.
fn envelope(key: &Keypair, body: Vec<u8>) -> Vec<u8> {
    let mut msg = b"chitty-chat/event/2:".to_vec();
    msg.extend_from_slice(&body);
    let sig = key.sign(&msg).expect("ed25519 signs");
    // The canonical encoding: keys in the order v, body, sig (docs/PROTOCOL.md section 5).
    #[derive(serde::Serialize)]
    struct Envelope {
        v: u8,
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
        #[serde(with = "serde_bytes")]
        sig: Vec<u8>,
    }
    serde_cbor::to_vec(&Envelope { v: 2, body, sig }).expect("CBOR of an envelope")
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_peer_cannot_disrupt_the_room() {
    let mut a = Node::spawn("alice", &["--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"]);
    let addr = a.loopback_addr();
    let mut b = Node::spawn(
        "bob",
        &[
            "--no-mdns",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--connect",
            &addr,
        ],
    );
    b.wait_join("bob");
    a.wait_join("bob");

    let key = Keypair::generate_ed25519();
    let me = key.public().to_peer_id();
    let (to_foreign, publish) = mpsc::channel::<Cmd>(4096);
    let (seen_tx, mut seen) = mpsc::channel(16);
    let target: Multiaddr = addr.parse().expect("alice's address");
    tokio::spawn(foreign(key.clone(), target, publish, seen_tx));
    match tokio::time::timeout(common::TIMEOUT, seen.recv()).await {
        Ok(Some(Seen::Subscribed)) => {}
        _ => panic!("the foreign node never saw alice's subscription"),
    }

    // A valid message under an honest participant's name: shown apart.
    let _ = to_foreign
        .send(Cmd::Publish(envelope(
            &key,
            body(&me, 1, 1, "alice", "I am alice"),
        )))
        .await;
    a.wait_for("the impostor's line", |v| v["text"] == "I am alice");
    // A flood of valid messages: rate-limited.
    let flood = 500u64;
    let started = Instant::now();
    for i in 0..flood {
        let e = envelope(
            &key,
            body(&me, i + 2, i + 2, "flooder", &format!("flood {i}")),
        );
        let _ = to_foreign.send(Cmd::Publish(e)).await;
    }
    // Someone else's signed event, replayed in another encoding: refused, shown once.
    a.send("sign me");
    b.wait_message("alice", "sign me");
    let _ = to_foreign.send(Cmd::Replay).await;
    // Now the invalid: each is rejected, and enough of them get the peer cut off.
    let alice: PeerId = a.ready().0.parse().expect("alice's peer id");
    let invalid: Vec<Vec<u8>> = vec![
        b"\xff\x00 not CBOR at all".to_vec(),
        envelope(
            &key,
            body(&me, flood + 2, flood + 2, "mallory", &"x".repeat(200)),
        ),
        envelope(
            &key,
            body(
                &me,
                flood + 3,
                flood + 3,
                "mallory",
                "\u{1b}[2J\u{1b}[31mpwned",
            ),
        ),
        envelope(&key, body(&alice, 99, flood + 4, "alice", "forged author")),
        envelope(
            &key,
            body(&me, flood + 5, u64::MAX, "mallory", "the end of time"),
        ),
        envelope(
            &key,
            body(&me, flood + 6, 1 << 62, "mallory", "almost the end of time"),
        ),
        {
            let mut e = envelope(&key, body(&me, flood + 7, flood + 7, "mallory", "trailing"));
            e.push(0);
            e
        },
        // A look-alike of alice (a zero-width space), and a line-reordering override.
        envelope(
            &key,
            body(&me, flood + 8, flood + 8, "alice\u{200B}", "invisible"),
        ),
        envelope(
            &key,
            body(&me, flood + 9, flood + 9, "mallory", "\u{202E}desrever"),
        ),
        // A time past what RFC 3339 can write.
        envelope(
            &key,
            body_at(&me, flood + 10, flood + 10, u64::MAX, "mallory", "never"),
        ),
    ];
    for e in invalid {
        let _ = to_foreign.send(Cmd::Publish(e)).await;
    }

    // Alice cuts the offender off.
    a.wait_for("the offender cut off", |v| {
        v["type"] == "notice" && v["text"].as_str().is_some_and(|t| t.contains("cut off"))
    });
    match tokio::time::timeout(common::TIMEOUT, seen.recv()).await {
        Ok(Some(Seen::Closed)) => {}
        _ => panic!("alice never closed the connection to the foreign node"),
    }
    let rss = rss_kib(a.pid());
    eprintln!(
        "flood of {flood} sent in {:?}; alice's RSS after it: {rss:?} KiB",
        started.elapsed()
    );
    if let Some(kib) = rss {
        assert!(
            kib < 40 * 1024,
            "alice's memory stays bounded under a flood: {kib} KiB"
        );
    }

    // The honest conversation goes on, in order.
    a.send("still here");
    let t1 = b.wait_message("alice", "still here");
    b.send("me too");
    let t2 = a.wait_message("bob", "me too");
    assert!(t2 > t1);

    for n in [&a, &b] {
        let from_foreign: Vec<&Json> = n
            .seen()
            .iter()
            .filter(|v| {
                ["join", "message", "leave"].contains(&v["type"].as_str().unwrap_or_default())
                    && v["peer"] == me.to_base58().as_str()
            })
            .collect();
        for v in &from_foreign {
            let t = v["text"].as_str().unwrap_or_default();
            assert!(
                t.starts_with("flood ") || t == "I am alice",
                "{}: {v}",
                n.name
            );
            assert!(v["lamport"].as_u64().is_some_and(|l| l < 1 << 62));
        }
        let floods = from_foreign
            .iter()
            .filter(|v| v["user"] == "flooder")
            .count() as u64;
        // A burst of 40, then 20 a second: far from the 500 sent.
        assert!(
            floods <= 100,
            "{}: the flood was not limited ({floods})",
            n.name
        );
        let signed = n.seen().iter().filter(|v| v["text"] == "sign me").count();
        assert_eq!(signed, 1, "{}: alice's line once, under alice only", n.name);
        for v in n.seen() {
            let t = v["text"].as_str().unwrap_or_default();
            assert!(
                !t.contains('\u{1b}'),
                "{}: an escape sequence reached the screen",
                n.name
            );
            assert!(t != "forged author", "{}: {v}", n.name);
            assert!(
                !["invisible", "never"].contains(&t) && !t.contains('\u{202E}'),
                "{}: {v}",
                n.name
            );
        }
    }
    // The impostor is told apart from alice.
    let v = a
        .seen()
        .iter()
        .find(|v| v["text"] == "I am alice")
        .expect("the impostor's line");
    assert_eq!(v["peer"], me.to_base58().as_str());
    assert_eq!(
        v["time"], FOREIGN_TIME,
        "a clock far off is shown as it claims"
    );
    assert!(
        v["display"]
            .as_str()
            .is_some_and(|d| d.starts_with("alice#")),
        "{v}"
    );
    drop(to_foreign);
}
