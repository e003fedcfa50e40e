use super::ticket::{Ticket, TicketError};
use super::*;

/// The secret of the test vectors: bytes 0x00 to 0x1f.
fn vector_secret() -> RoomSecret {
    let mut b = [0u8; SECRET_LEN];
    for (i, x) in b.iter_mut().enumerate() {
        *x = i as u8;
    }
    RoomSecret::from_bytes(b)
}

const AUTHOR: &[u8] = &[0x00, 0x24, 0x08, 0x01, 0x12, 0x20, 0xaa, 0xbb];

fn header(topic: &str) -> Header<'_> {
    Header {
        topic,
        author: AUTHOR,
        seq: 2,
        lamport: 5,
        time: 1_795_613_408_000,
    }
}

#[test]
fn derivations_match_the_vectors_of_protocol_md() {
    let keys = vector_secret().keys();
    assert_eq!(keys.topic(), VECTOR_TOPIC);
    let sealed = keys.seal_with_nonce(&header(keys.topic()), b"hello", [0x42; NONCE_LEN]);
    assert_eq!(hex(&sealed), VECTOR_SEALED);
}

/// Written in docs/PROTOCOL.md section 14, and checked there against an independent HKDF and
/// XChaCha20-Poly1305.
const VECTOR_TOPIC: &str = "chitty-private/7b217e416c25aad7862c1c0403f3f519";
const VECTOR_SEALED: &str =
    "4242424242424242424242424242424242424242424242428f26d865679f3a6f6746d20cad18e71aeab7a0130b";

#[test]
fn sealed_bodies_open_only_under_the_same_key_and_header() {
    let keys = RoomSecret::generate().keys();
    let t = keys.topic().to_owned();
    let h = header(&t);
    let sealed = keys.seal(&h, b"a secret line");
    assert_eq!(keys.open(&h, &sealed).as_deref(), Ok(&b"a secret line"[..]));
    assert_ne!(
        keys.seal(&h, b"a secret line"),
        sealed,
        "a fresh nonce each time"
    );
    // Every bit of nonce, ciphertext and tag matters.
    for i in 0..sealed.len() {
        let mut bad = sealed.clone();
        bad[i] ^= 0x01;
        assert_eq!(
            keys.open(&h, &bad),
            Err(OpenError::Forged),
            "bit flip at {i}"
        );
    }
    // So does every field of the header.
    let other = "chitty-private/00000000000000000000000000000000";
    for bad in [
        Header { seq: 3, ..h },
        Header { lamport: 6, ..h },
        Header {
            time: h.time + 1,
            ..h
        },
        Header {
            author: &AUTHOR[1..],
            ..h
        },
        Header { topic: other, ..h },
    ] {
        assert_eq!(keys.open(&bad, &sealed), Err(OpenError::Forged), "{bad:?}");
    }
    assert_eq!(
        RoomSecret::generate().keys().open(&h, &sealed),
        Err(OpenError::Forged),
        "another room's key"
    );
    assert_eq!(
        keys.open(&h, &sealed[..sealed.len() - 1]),
        Err(OpenError::Forged)
    );
    assert_eq!(keys.open(&h, &sealed[..39]), Err(OpenError::TooShort(39)));
    assert_eq!(keys.open(&h, &[]), Err(OpenError::TooShort(0)));
}

#[test]
fn private_topics_are_told_apart_from_public_ones() {
    let keys = vector_secret().keys();
    assert!(is_private_topic(keys.topic()));
    assert_ne!(keys.topic(), RoomSecret::generate().keys().topic());
    for public in [
        "chitty-chat",
        "chitty-chat/private",
        "chitty-private/xyz",
        "chitty-private/",
    ] {
        assert!(!is_private_topic(public), "{public}");
    }
    assert!(
        !format!("{:?}", vector_secret()).contains("1f"),
        "the secret is never printed"
    );
}

#[test]
fn tickets_round_trip_with_name_and_addresses() {
    let addrs: Vec<libp2p::Multiaddr> = vec![
        "/ip4/10.0.0.2/tcp/4001/p2p/12D3KooWPxVU8erHEdu6yrYiVKX6Ett3g5cpBejpX8SVX3dLePtG"
            .parse()
            .unwrap(),
        "/ip6/::1/tcp/4002".parse().unwrap(),
    ];
    for (name, addrs) in [
        (None, vec![]),
        (
            Some(crate::core::event::RoomName::new("plans").unwrap()),
            addrs.clone(),
        ),
    ] {
        let t = Ticket {
            secret: RoomSecret::generate(),
            name,
            addrs,
        };
        let s = t.encode();
        assert!(s.starts_with("chitty1"), "{s}");
        assert_eq!(Ticket::decode(&s), Ok(t.clone()));
        assert_eq!(Ticket::decode(&format!("  {}\n", s.to_uppercase())), Ok(t));
    }
}

#[test]
fn a_ticket_with_too_many_addresses_leaves_the_last_out() {
    let addr: libp2p::Multiaddr =
        "/ip4/10.0.0.2/tcp/4001/p2p/12D3KooWPxVU8erHEdu6yrYiVKX6Ett3g5cpBejpX8SVX3dLePtG"
            .parse()
            .unwrap();
    let t = Ticket {
        secret: RoomSecret::generate(),
        name: None,
        addrs: vec![addr; 40],
    };
    let s = t.encode();
    assert!(s.len() <= ticket::MAX_LEN);
    let back = Ticket::decode(&s).unwrap();
    assert!(!back.addrs.is_empty() && back.addrs.len() < 40);
    assert_eq!(back.secret, t.secret);
}

#[test]
fn bad_tickets_are_refused_with_what_to_do() {
    let s = Ticket {
        secret: vector_secret(),
        name: None,
        addrs: vec![],
    }
    .encode();
    assert_eq!(
        Ticket::decode(&s[..s.len() - 3]),
        Err(TicketError::Checksum)
    );
    let mut typo: Vec<char> = s.chars().collect();
    typo[12] = if typo[12] == 'q' { 'p' } else { 'q' };
    let typo: String = typo.into_iter().collect();
    assert_eq!(Ticket::decode(&typo), Err(TicketError::Checksum));
    assert_eq!(
        Ticket::decode(&s.replacen("chitty1", "chatty1", 1)),
        Err(TicketError::Prefix)
    );
    assert_eq!(
        Ticket::decode("plans"),
        Err(TicketError::RoomName("plans".into()))
    );
    assert_eq!(Ticket::decode(""), Err(TicketError::Prefix));
    // A well-formed bech32m string of other contents: a later version, and garbage.
    let hrp = bech32::Hrp::parse_unchecked(ticket::HRP);
    let v2 = bech32::encode::<bech32::Bech32m>(hrp, &[2, 0, 0]).unwrap();
    assert_eq!(Ticket::decode(&v2), Err(TicketError::Version(2)));
    let short = bech32::encode::<bech32::Bech32m>(hrp, &[1, 7, 7]).unwrap();
    assert!(matches!(
        Ticket::decode(&short),
        Err(TicketError::Malformed(_))
    ));
    // The old bech32 checksum is not bech32m's.
    let old = bech32::encode::<bech32::Bech32>(hrp, &[1; 40]).unwrap();
    assert_eq!(Ticket::decode(&old), Err(TicketError::Checksum));
    for e in [TicketError::Checksum, TicketError::Prefix] {
        assert!(e.to_string().contains("ticket"));
    }
}

/// The ticket of docs/PROTOCOL.md section 14's vector: the vector secret, name `plans`, one
/// address.
#[test]
fn the_ticket_vector_of_protocol_md() {
    let t = Ticket {
        secret: vector_secret(),
        name: Some(crate::core::event::RoomName::new("plans").unwrap()),
        addrs: vec!["/ip4/10.0.0.2/tcp/4001".parse().unwrap()],
    };
    assert_eq!(t.encode(), VECTOR_TICKET);
    assert_eq!(Ticket::decode(VECTOR_TICKET), Ok(t));
}

const VECTOR_TICKET: &str =
    "chitty1qyqqzqsrqszsvpcgpy9qkrqdpc83qygjzv2p29shrqv35xcur50p7ptsd3skuucppqzq5qqqqgrqlgg5ykfcm";
