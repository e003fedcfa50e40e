//! The hub's rooms (docs/PROTOCOL.md, section 11): a bounded map of room topic to [`Ledger`],
//! each kept as an archive (`Keeper::Archive`), the same type a participant's room holds, so
//! that the hub judges gossip by the participants' rules (section 8).

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use libp2p::gossipsub;
use tracing::{debug, info, warn};

use super::MAX_ROOMS;
use crate::core::event::{BASE_TOPIC, RoomName};
use crate::core::ledger::{Keeper, Ledger};
use crate::core::limit::DEFAULT_RATE;
use crate::core::sync::{SyncRequest, SyncResponse};
use crate::core::verdict::{Rejection, Verdict};
use crate::net::NetError;
use crate::store::{Kept, Store};
use crate::wire;

/// Whether `topic` names a ChittyChat room (`chitty-chat`, `chitty-chat/NAME`, or a private
/// room's `chitty-private/ID`, served blind).
fn valid_topic(topic: &str) -> bool {
    if crate::private::is_private_topic(topic) {
        return true;
    }
    match topic.strip_prefix(BASE_TOPIC) {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix('/')
            .is_some_and(|name| RoomName::new(name).is_ok()),
        None => false,
    }
}

/// The rooms a hub serves, at most [`MAX_ROOMS`].
#[derive(Debug)]
pub(super) struct Rooms {
    map: HashMap<String, Ledger>,
    /// Events kept per room.
    history: usize,
    /// The archive on disk: read when a room is opened and when a peer lacks what memory no
    /// longer holds; written by its thread with what the rooms take.
    store: Option<Kept>,
}

impl Rooms {
    /// No room yet; each will keep `history` events.
    pub(super) fn new(history: usize) -> Self {
        Self {
            map: HashMap::new(),
            history,
            store: None,
        }
    }

    /// Keeps the rooms in `store` (none: in memory only).
    pub(super) fn with_store(mut self, store: Option<Store>) -> Result<Self, NetError> {
        if let Some(store) = store {
            self.store = Some(Kept::open(store, self.history)?);
        }
        Ok(self)
    }

    /// Hands what every room took since the last call to the store's thread.
    pub(super) fn store_new(&mut self) {
        if let Some(store) = &mut self.store {
            for ledger in self.map.values_mut() {
                store.writer().append(&ledger.drain_kept());
            }
        }
    }

    /// The oldest page of what a peer lacks of the room it asks about (nothing for a room not
    /// served), memory's and the store's.
    pub(super) fn answer(&self, request: &SyncRequest) -> SyncResponse {
        match self.map.get(&request.topic) {
            Some(ledger) => ledger.handle_sync_request(request, |q| {
                self.store
                    .as_ref()
                    .map(|s| s.cold(&request.topic, q))
                    .unwrap_or_default()
            }),
            None => SyncResponse {
                events: Vec::new(),
                more: false,
            },
        }
    }

    /// Whether `peer` is a present participant of any room served.
    pub(super) fn present_anywhere(&self, peer: &libp2p::PeerId) -> bool {
        self.map.values().any(|l| l.is_present(peer))
    }

    /// Whether room `topic` is served.
    pub(super) fn contains(&self, topic: &str) -> bool {
        self.map.contains_key(topic)
    }

    /// The ledger of `topic`, if served.
    pub(super) fn get(&self, topic: &str) -> Option<&Ledger> {
        self.map.get(topic)
    }

    /// The ledger of `topic`, if served, to change.
    pub(super) fn get_mut(&mut self, topic: &str) -> Option<&mut Ledger> {
        self.map.get_mut(topic)
    }

    /// The ledger of `topic`, subscribing `gossip` to it on first use; `None` for a topic that
    /// is not a ChittyChat room, or when [`MAX_ROOMS`] are served and none is idle.
    pub(super) fn open(
        &mut self,
        topic: &str,
        gossip: &mut gossipsub::Behaviour,
    ) -> Option<&mut Ledger> {
        if !self.map.contains_key(topic) {
            if !valid_topic(topic) {
                return None;
            }
            if self.map.len() >= MAX_ROOMS {
                // Make room by dropping a room nobody is subscribed to any more.
                let subscribed: HashSet<String> = gossip
                    .all_peers()
                    .flat_map(|(_, topics)| topics.into_iter().map(|t| t.as_str().to_owned()))
                    .collect();
                let idle = self.map.keys().find(|t| !subscribed.contains(*t)).cloned();
                match idle {
                    Some(t) => {
                        let _ = gossip.unsubscribe(&gossipsub::IdentTopic::new(t.clone()));
                        self.map.remove(&t);
                        info!(topic = %t, "stopped serving an idle room");
                    }
                    None => return None,
                }
            }
            let t = gossipsub::IdentTopic::new(topic);
            if let Err(e) =
                gossip.set_topic_params(t.clone(), super::super::behaviour::topic_score_params())
            {
                debug!(topic, error = e, "no score parameters for the topic");
            }
            if let Err(e) = gossip.subscribe(&t) {
                warn!(topic, error = %e, "cannot subscribe");
                return None;
            }
            info!(topic, "serving a new room");
            // The same per-author rate as participants, so that a flood does not fill the
            // history or pass through the hub.
            let mut ledger = Ledger::new(
                topic.to_owned(),
                Keeper::Archive,
                self.history,
                DEFAULT_RATE,
            );
            if let Some(store) = &self.store {
                // The room's archive from earlier runs, checked as any history is: its newest
                // events in memory, what is held of the rest from the store's index.
                match store.read_back(topic) {
                    Ok((events, holds)) => {
                        let page = ledger.restore_stored(events, &holds);
                        info!(
                            topic,
                            events = page.taken.len(),
                            "room history read from the store"
                        );
                    }
                    Err(e) => {
                        warn!(topic, error = %e, "cannot read the room's stored history");
                        ledger.keep_new();
                    }
                }
            }
            self.map.insert(topic.to_owned(), ledger);
        }
        self.map.get_mut(topic)
    }

    /// The hub's verdict on a gossip message of `topic`: the room's ledger judges it as a
    /// participant's would (docs/PROTOCOL.md, section 8), an author `banned` ignored; a topic
    /// the hub does not serve is rejected.
    pub(super) fn judge(
        &mut self,
        topic: &str,
        data: &[u8],
        now: Instant,
        banned: impl Fn(&libp2p::PeerId) -> bool,
    ) -> Verdict {
        match self.map.get_mut(topic) {
            None => Verdict::refused(None, Rejection::OtherRoom(topic.to_owned())),
            Some(ledger) => {
                let decoded = wire::decode_event(data);
                let cut_off = decoded.as_ref().is_ok_and(|e| banned(&e.event.author));
                // The hub is no participant: it has no sign of anyone's life to weigh a `lost`
                // announcement against.
                ledger.admit(decoded, cut_off, now, |_| false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::event::{Body, Event, Username};
    use crate::net::gossip::acceptance;
    use libp2p::PeerId;
    use libp2p::identity::Keypair;

    #[test]
    fn only_chitty_chat_topics_are_served() {
        assert!(valid_topic("chitty-chat"));
        assert!(valid_topic("chitty-chat/dev"));
        assert!(!valid_topic("chitty-chat/"));
        assert!(!valid_topic("chitty-chat/a b"));
        assert!(!valid_topic("other"));
        assert!(!valid_topic("chitty-chatx"));
    }

    /// docs/PROTOCOL.md section 8, at the hub: a stamp merely far ahead of the hub's clock is
    /// ignored and held against its author only (the hub's archive used to reject it, and so
    /// penalise whoever forwarded it); a stamp of 2^62 or more is rejected.
    #[test]
    fn the_hub_ignores_a_far_ahead_stamp_and_rejects_a_wild_one() {
        let key = Keypair::generate_ed25519();
        let author = key.public().to_peer_id();
        let relay = PeerId::random();
        let topic = "chitty-chat";
        let mut rooms = Rooms::new(100);
        rooms.map.insert(
            topic.to_owned(),
            Ledger::new(topic.to_owned(), Keeper::Archive, 100, DEFAULT_RATE),
        );
        let event = |seq, lamport| {
            let e = Event {
                author,
                seq,
                lamport,
                time: crate::core::time::WallTime::EPOCH,
                user: Username::new("far").unwrap(),
                body: Body::Join,
            };
            wire::sign_event(e, topic, &key).bytes.to_vec()
        };
        let now = Instant::now();
        let ahead = rooms.judge(topic, &event(1, (1 << 32) + 10), now, |_| false);
        assert_eq!(
            acceptance(&ahead),
            gossipsub::MessageAcceptance::Ignore,
            "{ahead:?}"
        );
        assert_eq!(ahead.blame(relay), None, "the forwarder is not to blame");
        assert_eq!(ahead.blame(author), Some(author));
        let wild = rooms.judge(topic, &event(2, 1 << 62), now, |_| false);
        assert_eq!(acceptance(&wild), gossipsub::MessageAcceptance::Reject);
        let fine = rooms.judge(topic, &event(3, 1), now, |_| false);
        assert_eq!(acceptance(&fine), gossipsub::MessageAcceptance::Accept);
        let elsewhere = rooms.judge("chitty-chat/else", &event(4, 2), now, |_| false);
        assert_eq!(acceptance(&elsewhere), gossipsub::MessageAcceptance::Reject);
    }
}
