//! A hub's view of one room (docs/PROTOCOL.md, "Hub"): not a participant, but a keeper of the
//! room's history. It validates what passes through (so gossipsub forwards nothing invalid),
//! keeps the bounded transcript, knows who is present, and answers hellos and sync requests so
//! that clients behind it catch up as with any participant. IO-less, like the room.

use super::event::{Body, EventView, SignedEvent};
use super::hello::Hello;
use super::room::{MAX_CLOCK_JUMP, MAX_STAMP, Rejection};
use super::roster::{Presence, Roster};
use super::sync::{SyncRequest, SyncResponse};
use super::transcript::Transcript;

/// One room's history, as a hub keeps it.
#[derive(Debug)]
pub struct Archive {
    topic: String,
    transcript: Transcript,
    /// The highest stamp accepted: the archive's clock, for hellos and the stamp sanity check.
    clock: u64,
    roster: Roster,
}

impl Archive {
    /// An empty archive of room `topic`, keeping at most `history` events.
    pub fn new(topic: String, history: usize) -> Self {
        Self {
            topic,
            transcript: Transcript::new(history),
            clock: 0,
            roster: Roster::default(),
        }
    }

    /// The room's topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The events kept, in total order.
    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// What [`Archive::accept`] would refuse: another room, a wild stamp.
    pub fn check(&self, signed: &SignedEvent) -> Result<(), Rejection> {
        if signed.topic != self.topic {
            return Err(Rejection::OtherRoom(signed.topic.clone()));
        }
        let e = &signed.event;
        if e.lamport >= MAX_STAMP || e.lamport > self.clock.saturating_add(MAX_CLOCK_JUMP) {
            return Err(Rejection::StampTooFar {
                stamp: e.lamport,
                local: self.clock,
            });
        }
        Ok(())
    }

    /// Checks and keeps an event, live or learned by sync (its author's signature was checked
    /// when it was decoded). Returns the event's view when it was new.
    pub fn accept(&mut self, signed: SignedEvent) -> Result<Option<EventView>, Rejection> {
        self.check(&signed)?;
        let e = &signed.event;
        if self.transcript.is_known(e) {
            return Ok(None);
        }
        self.clock = self.clock.max(e.lamport);
        let (who, user) = e.participant();
        let present = match e.body {
            Body::Join => Some(true),
            Body::Leave | Body::Lost { .. } => Some(false),
            Body::Message(_) => None,
        };
        if let Some(present) = present {
            let new = Presence {
                user: user.clone(),
                key: e.order_key(),
                lamport: e.lamport,
                seq: e.seq,
                present,
            };
            self.roster.update(who, new);
        }
        let view = e.view(false);
        self.transcript.insert(signed);
        Ok(Some(view))
    }

    /// The hub's hello for this room: its clock, who is present, and that it keeps history.
    pub fn hello(&self) -> Hello {
        Hello {
            topic: self.topic.clone(),
            lamport: self.clock,
            participants: self.roster.participants(),
            archive: true,
        }
    }

    /// What the hub has, to rebuild its history from a client (after a restart, say).
    pub fn sync_request(&self) -> SyncRequest {
        self.transcript.sync_request(&self.topic)
    }

    /// The oldest page of what a client lacks.
    pub fn handle_sync_request(&self, req: &SyncRequest) -> SyncResponse {
        self.transcript.answer(&self.topic, req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::event::{Event, Text, Username};
    use crate::core::time::WallTime;
    use libp2p::identity::Keypair;

    /// When event `seq` was said: a minute apart, from 2026-11-25T13:29:31Z.
    fn said(seq: u64) -> WallTime {
        WallTime::from_unix_millis(1_795_613_371_000 + seq * 60_000).unwrap()
    }

    fn signed(key: &Keypair, seq: u64, lamport: u64, body: Body) -> SignedEvent {
        let e = Event {
            author: key.public().to_peer_id(),
            seq,
            lamport,
            time: said(seq),
            user: Username::new("u").unwrap(),
            body,
        };
        crate::wire::sign_event(e, "chitty-chat", key)
    }

    #[test]
    fn keeps_validated_history_and_knows_who_is_present() {
        let k = Keypair::generate_ed25519();
        let me = k.public().to_peer_id();
        let mut a = Archive::new("chitty-chat".into(), 100);
        assert!(a.accept(signed(&k, 1, 1, Body::Join)).unwrap().is_some());
        let msg = signed(&k, 2, 2, Body::Message(Text::new("hi").unwrap()));
        let view = a.accept(msg.clone()).unwrap();
        assert_eq!(view.map(|v| v.time), Some(said(2)), "the hub logs it said");
        assert!(a.accept(msg).unwrap().is_none(), "a duplicate is not new");
        let h = a.hello();
        assert!(h.archive);
        assert_eq!(h.participants.len(), 1);
        assert!(matches!(
            a.accept(signed(&k, 3, u64::MAX, Body::Leave)),
            Err(Rejection::StampTooFar { .. })
        ));
        a.accept(signed(&k, 3, 3, Body::Leave)).unwrap();
        assert!(a.hello().participants.is_empty());
        let all = a.handle_sync_request(&SyncRequest {
            topic: "chitty-chat".into(),
            low: None,
            have: vec![],
        });
        assert_eq!(all.events.len(), 3);
        // Served as signed: each event with the time its author said it.
        for e in &all.events {
            let back = crate::wire::decode_event(&e.bytes).unwrap();
            assert_eq!(back.event.time, said(back.event.seq));
        }
        let other = crate::wire::sign_event(
            Event {
                author: me,
                seq: 4,
                lamport: 4,
                time: said(4),
                user: Username::new("u").unwrap(),
                body: Body::Join,
            },
            "chitty-chat/else",
            &k,
        );
        assert!(matches!(a.accept(other), Err(Rejection::OtherRoom(_))));
    }
}
