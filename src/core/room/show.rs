//! What the room shows: the ui's view of an event (names that look alike marked), `/who`,
//! `/history` and refusals.

use super::{Output, Room};
use crate::core::event::{Body, ChatEvent, Event, EventView, ParticipantView, SignedEvent};

impl Room {
    /// The ui's view of `event`, marking names that several participants use.
    pub(super) fn view(&self, event: &Event, sync: bool) -> EventView {
        let mut v = event.view(sync);
        let (who, user) = event.participant();
        let known = self.ledger.roster().get(&who).map(|p| &p.user);
        let lost = matches!(event.body, Body::Lost { .. });
        // The announcer's word for the name counts for nothing: the name is the one the
        // vanished participant used itself.
        let shown = match known {
            Some(name) if lost => name,
            _ => user,
        };
        v.user = shown.as_str().to_owned();
        // Shown apart when another participant uses a name that looks the same (the same
        // TR39 skeleton, kept in each name: `pat` and `pаt` with a Cyrillic а), or when an
        // author uses a name other than the one it joined with.
        v.ambiguous = self
            .ledger
            .roster()
            .iter()
            .any(|(peer, p)| *peer != who && p.user.looks_like(shown))
            || (!lost && known.is_some_and(|n| n != user));
        v
    }

    pub(super) fn show_history(&mut self, last: Option<usize>) {
        self.show_history_with(Vec::new(), last);
    }

    /// `/history [N]`: the newest N events (all kept, without N), `older` (read from the store,
    /// oldest first, all before what memory holds) then memory's.
    pub fn show_history_with(&mut self, older: Vec<SignedEvent>, last: Option<usize>) {
        let all = older.len() + self.transcript().len();
        let skip = last.map_or(0, |n| all.saturating_sub(n));
        let events = older
            .iter()
            .chain(self.transcript().iter())
            .skip(skip)
            .map(|e| self.view(&e.event, false))
            .collect();
        self.outputs
            .push_back(Output::Show(ChatEvent::History(events)));
    }

    pub(super) fn show_who(&mut self) {
        let mut list: Vec<ParticipantView> = self
            .ledger
            .roster()
            .iter()
            .filter(|(_, p)| p.present)
            .map(|(peer, p)| ParticipantView {
                user: p.user.as_str().to_owned(),
                peer: peer.to_base58(),
                me: *peer == self.me,
            })
            .collect();
        list.sort_by(|a, b| (&a.user, &a.peer).cmp(&(&b.user, &b.peer)));
        self.outputs.push_back(Output::Show(ChatEvent::Who(list)));
    }

    pub(super) fn show(&mut self, status: crate::core::status::Status) {
        self.outputs
            .push_back(Output::Show(ChatEvent::Status(status)));
    }
}
