//! Who is in the room: per participant, the presence set by its newest join, leave or `lost`
//! (last writer wins, by the total order of events, so ties resolve the same on every node).
//! Bounded: when full, the participant longest gone is forgotten. Shared by the room and the
//! hub's archive.

use std::collections::BTreeMap;

use libp2p::PeerId;

use super::event::{OrderKey, Username};
use super::hello::Participant;

/// How many peers the roster tracks at most.
pub const ROSTER_CAP: usize = 4096;

/// A participant's presence.
#[derive(Debug, Clone)]
pub struct Presence {
    /// The name it uses.
    pub user: Username,
    /// The event that set this presence.
    pub key: OrderKey,
    /// The stamp of its join (for hellos).
    pub lamport: u64,
    /// The sequence number of its join (for hellos).
    pub seq: u64,
    /// Present, or gone.
    pub present: bool,
    /// Gone because it left on purpose (its own leave), not because someone announced it
    /// lost: a later message of its own brings back only a participant announced lost.
    pub left: bool,
    /// The newest presence event about it is a `lost` announcement.
    pub lost: bool,
    /// Whether `key` is that of a join, leave or `lost` (else of a message: nothing else is
    /// known of it).
    pub from_event: bool,
    /// The newest message of its own.
    pub said: Option<OrderKey>,
}

impl Presence {
    /// Presence as the newest events say, whatever order they came in: the newest join, leave
    /// or `lost` decides, except that a `lost` older than its subject's newest message is
    /// refuted (it is still talking), and a participant known only by its messages is here.
    pub fn settle(&mut self) {
        let refuted = self.said.as_ref().is_some_and(|s| *s > self.key);
        self.present = match (self.from_event, self.left, self.lost) {
            // Known only by its messages.
            (false, _, _) => true,
            // Its own leave.
            (true, true, _) => false,
            // Announced lost: unless it spoke after.
            (true, false, true) => refuted,
            // Joined.
            (true, false, false) => true,
        };
    }
}

/// The roster of one room.
#[derive(Debug, Default)]
pub struct Roster {
    map: BTreeMap<PeerId, Presence>,
    /// Whether the full roster was warned about (once: a flood of new keys would repeat it).
    told_full: bool,
}

impl Roster {
    /// Records `new` for `peer` unless a newer event already set its presence.
    pub fn update(&mut self, peer: PeerId, new: Presence) {
        if let Some(p) = self.map.get_mut(&peer) {
            if new.key >= p.key {
                *p = new;
            }
            return;
        }
        self.insert(peer, new);
    }

    /// Records `p` for `peer`, whatever was there.
    pub fn set(&mut self, peer: PeerId, p: Presence) {
        if let Some(old) = self.map.get_mut(&peer) {
            *old = p;
            return;
        }
        self.insert(peer, p);
    }

    fn insert(&mut self, peer: PeerId, new: Presence) {
        if self.map.len() >= ROSTER_CAP {
            let oldest_gone = self
                .map
                .iter()
                .filter(|(_, p)| !p.present)
                .min_by(|a, b| a.1.key.cmp(&b.1.key))
                .map(|(id, _)| *id);
            match oldest_gone {
                Some(id) => {
                    self.map.remove(&id);
                }
                None => {
                    if !self.told_full {
                        self.told_full = true;
                        tracing::warn!(%peer, "roster full; participants not tracked");
                    } else {
                        tracing::debug!(%peer, "roster full; participant not tracked");
                    }
                    return;
                }
            }
        }
        self.map.insert(peer, new);
    }

    /// What is known of `peer`.
    pub fn get(&self, peer: &PeerId) -> Option<&Presence> {
        self.map.get(peer)
    }

    /// Everyone known, present or gone, by peer id.
    pub fn iter(&self) -> impl Iterator<Item = (&PeerId, &Presence)> {
        self.map.iter()
    }

    /// The present participants, as a hello lists them.
    pub fn participants(&self) -> Vec<Participant> {
        self.map
            .iter()
            .filter(|(_, p)| p.present)
            .map(|(peer, p)| Participant {
                peer: *peer,
                user: p.user.clone(),
                lamport: p.lamport,
                seq: p.seq,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence(lamport: u64, present: bool) -> Presence {
        Presence {
            user: Username::new("u").unwrap(),
            key: OrderKey::new(lamport, vec![0], 1),
            lamport,
            seq: 1,
            present,
            left: false,
            lost: false,
            from_event: true,
            said: None,
        }
    }

    #[test]
    fn the_newest_event_wins_and_a_full_roster_forgets_the_longest_gone() {
        let mut r = Roster::default();
        let p = PeerId::random();
        r.update(p, presence(5, true));
        r.update(p, presence(3, false));
        assert!(
            r.get(&p).is_some_and(|x| x.present),
            "an older leave changes nothing"
        );
        r.update(p, presence(7, false));
        assert!(r.get(&p).is_some_and(|x| !x.present));
        for i in 0..ROSTER_CAP - 1 {
            r.update(PeerId::random(), presence(100 + i as u64, true));
        }
        let newcomer = PeerId::random();
        r.update(newcomer, presence(10_000, true));
        assert!(r.get(&newcomer).is_some(), "room was made");
        assert!(r.get(&p).is_none(), "by forgetting the one longest gone");
        assert_eq!(r.participants().len(), ROSTER_CAP);
    }
}
