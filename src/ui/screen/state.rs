//! What the chat screen shows, as plain state: one conversation per room (a bounded
//! scrollback, where its view is, its unread count and read marker, who is in it), which room
//! is on screen, how each peer is reached, the input line. It takes [`Update`]s and keys and
//! says which [`Command`]s to send; it draws nothing (the view does) and reads no clock (times
//! come in), so that it is tested without a terminal.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, Local};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent, MouseEventKind};

use crate::core::command::{Command, UserCommand};
use crate::core::event::{
    ChatEvent, EventKind, EventView, LeaveReason, LinkView, ParticipantView, Update,
};
use crate::core::name::MAX_TEXT_CHARS;
use crate::ui::input::{HELP, Input, Parsed, editor_input, parse_line};
use crate::ui::render;

use super::editor::Editor;

/// Conversation lines kept for scrollback, per room; older ones are let go (`/history` still
/// has them).
pub const SCREEN_LINES: usize = 5000;
/// A paste of more lines than this asks before sending them.
pub const MANY_PASTE_LINES: usize = 5;
/// Most lines printed in the shell after the screen closes.
pub const FAREWELL_LINES: usize = 32;
/// Rows one turn of the mouse wheel scrolls.
pub const WHEEL_ROWS: usize = 3;

/// How many rows an entry takes when added after a conversation's last one: the conversation,
/// our peer id, the width. The view measures (the state does not draw).
pub type Measure = fn(&Conversation, Option<&str>, usize, &Entry) -> usize;

/// What kind of line an entry is: how it is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Somebody said something.
    Said,
    /// A join.
    Join,
    /// A leave.
    Leave,
    /// A leave by loss of connection.
    Lost,
    /// Something the system says.
    Info,
    /// Something refused or failed.
    Error,
}

/// One line of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// When it was said (or shown, for the system's lines).
    pub at: DateTime<Local>,
    /// Its Lamport stamp, for chat events.
    pub lamport: Option<u64>,
    /// Who said it: name as shown, and base58 peer id (for the name's colour).
    pub author: Option<(String, String)>,
    /// The text.
    pub text: String,
    /// How it is coloured.
    pub tone: Tone,
    /// It mentions our name.
    pub mention: bool,
}

/// How a participant is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// It is us.
    Me,
    /// A direct connection.
    Direct,
    /// A connection relayed by a hub (`relay` in the pane).
    Relayed,
    /// No connection: its events come through others.
    Heard,
    /// Its connection was lost (it left without a leave).
    Lost,
}

/// A line of the side pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its name.
    pub user: String,
    /// Its base58 peer id.
    pub peer: String,
    /// How it is reached.
    pub reach: Reach,
}

/// Who we are, from `ready`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Me {
    /// Our name.
    pub user: String,
    /// Our base58 peer id.
    pub peer: String,
}

/// One room's conversation.
#[derive(Debug)]
pub struct Conversation {
    /// The room's topic.
    pub topic: String,
    /// The room's name as shown (`#name`, `private room NAME`).
    pub label: String,
    /// A private room.
    pub private: bool,
    /// The node said it is in the room (`ready`, `opened`); until then (a `/join` just typed)
    /// the screen does not ask about it.
    opened: bool,
    entries: VecDeque<Entry>,
    /// How many entries were let go from the front: `entries[i]` is entry number `dropped + i`.
    dropped: u64,
    /// How many rows the view is scrolled up from the newest line (0: it follows).
    pub scroll: usize,
    /// Entries that arrived while this room was not looked at (scrolled up, another room on
    /// screen, or the terminal in the background).
    pub unseen: usize,
    /// Of those, how many mention us.
    pub unseen_mentions: usize,
    /// The number of the first entry that arrived while the room was not looked at: the read
    /// marker is drawn above it.
    pub marker: Option<u64>,
    roster: Vec<ParticipantView>,
    /// Participants lost (peer → name), shown greyed until they come back or leave.
    lost: BTreeMap<String, String>,
    /// The stamp of each participant's newest join or leave seen.
    last_seen: BTreeMap<String, u64>,
    /// For each `/who` sent about this room, oldest first: whether the user asked (its answer
    /// is shown) or the screen did (its answer only updates the pane).
    who_asked: VecDeque<bool>,
}

impl Conversation {
    fn new(topic: &str, label: String) -> Self {
        Self {
            topic: topic.to_owned(),
            label,
            private: crate::private::is_private_topic(topic),
            opened: false,
            entries: VecDeque::new(),
            dropped: 0,
            scroll: 0,
            unseen: 0,
            unseen_mentions: 0,
            marker: None,
            roster: Vec::new(),
            lost: BTreeMap::new(),
            last_seen: BTreeMap::new(),
            who_asked: VecDeque::new(),
        }
    }

    /// The conversation, oldest first, with the number of the first.
    pub fn entries(&self) -> (u64, &VecDeque<Entry>) {
        (self.dropped, &self.entries)
    }

    /// The participants, us first, then by name; lost ones last. `links` says how each is
    /// reached.
    pub fn members(&self, links: &[LinkView]) -> Vec<Member> {
        let reach_of = |peer: &str| {
            links
                .iter()
                .find(|l| l.peer == peer)
                .map_or(Reach::Heard, |l| {
                    if l.addr.contains("/p2p-circuit") {
                        Reach::Relayed
                    } else {
                        Reach::Direct
                    }
                })
        };
        let mut out: Vec<Member> = self
            .roster
            .iter()
            .filter(|p| !self.lost.contains_key(&p.peer))
            .map(|p| Member {
                user: p.user.clone(),
                peer: p.peer.clone(),
                reach: if p.me { Reach::Me } else { reach_of(&p.peer) },
            })
            .collect();
        out.sort_by(|a, b| {
            (a.reach != Reach::Me, a.user.to_lowercase())
                .cmp(&(b.reach != Reach::Me, b.user.to_lowercase()))
        });
        out.extend(self.lost.iter().map(|(peer, user)| Member {
            user: user.clone(),
            peer: peer.clone(),
            reach: Reach::Lost,
        }));
        out
    }

    /// Adds a line, holding a scrolled view still and counting what is unseen (`looking`:
    /// this room is on screen and the terminal in front). `rows` says how many rows it takes
    /// (read marker included).
    fn push(&mut self, entry: Entry, looking: bool, rows: impl FnOnce(&Self, &Entry) -> usize) {
        if self.scroll > 0 || !looking {
            self.unseen += 1;
            self.unseen_mentions += usize::from(entry.mention);
            if self.marker.is_none() {
                self.marker = Some(self.dropped + self.entries.len() as u64);
            }
        }
        if self.scroll > 0 {
            self.scroll = self.scroll.saturating_add(rows(self, &entry));
        }
        self.entries.push_back(entry);
        if self.entries.len() > SCREEN_LINES {
            self.entries.pop_front();
            self.dropped += 1;
        }
    }

    /// Scrolls up (positive) or down by `rows`; back at the bottom and looked at, what was
    /// unseen is seen.
    pub fn scroll_by(&mut self, rows: isize, looking: bool) {
        self.scroll = self.scroll.saturating_add_signed(rows);
        if self.scroll == 0 && looking {
            self.unseen = 0;
            self.unseen_mentions = 0;
        }
    }

    /// Follows who is lost from each participant's newest join or leave, however late it came.
    fn follow(&mut self, v: &EventView, tone: Tone) -> bool {
        if !matches!(tone, Tone::Join | Tone::Leave | Tone::Lost)
            || self.last_seen.get(&v.peer).is_some_and(|l| *l >= v.lamport)
        {
            return false;
        }
        self.last_seen.insert(v.peer.clone(), v.lamport);
        if tone == Tone::Lost {
            self.lost.insert(v.peer.clone(), v.user.clone());
        } else {
            self.lost.remove(&v.peer);
        }
        true
    }
}

/// Tab completion in progress: repeated Tabs cycle through the candidates.
#[derive(Debug)]
struct Completion {
    /// Where the completed word starts (byte offset).
    from: usize,
    /// The candidates, each with what follows it.
    candidates: Vec<String>,
    /// The one shown.
    shown: usize,
    /// The line as the last completion left it; any other edit ends the completion.
    line: String,
}

/// The whole screen's state.
#[derive(Debug, Default)]
pub struct Screen {
    /// Who we are, once ready.
    pub me: Option<Me>,
    /// The rooms' conversations, in the order they were opened (Alt-1 is the first).
    pub rooms: Vec<Conversation>,
    /// The one on screen.
    pub current: usize,
    /// The terminal lost focus.
    away: bool,
    links: Vec<LinkView>,
    /// Peers we are connected to now (from connection events, between polls).
    connections: BTreeSet<String>,
    /// The side pane: shown, hidden, or as wide enough terminals have it (`None`).
    pub pane: Option<bool>,
    /// Whether the last draw showed the pane.
    pub pane_shown: bool,
    /// The input line.
    pub editor: Editor,
    /// A paste of many lines waiting for the user's yes, and the room (topic) it is for.
    pub confirm: Option<(Vec<Parsed>, String)>,
    completion: Option<Completion>,
    /// For each `/peers` sent, oldest first: whether the user asked.
    peers_asked: VecDeque<bool>,
    /// A join or leave came: who is here should be asked again.
    pub poll_due: bool,
    /// Columns of the conversation at the last draw (for holding a scrolled view still).
    pub width: usize,
    /// Our own leave lines, and the errors said after the first (queued lines never
    /// delivered), printed again in the shell when the screen closes (at most
    /// [`FAREWELL_LINES`]).
    pub farewell: Vec<String>,
    /// No colours, only bold, reverse and the like (`NO_COLOR` is set).
    pub no_colour: bool,
}

impl Screen {
    /// The conversation on screen.
    pub fn room(&self) -> Option<&Conversation> {
        self.rooms.get(self.current)
    }

    /// Peers we are connected to.
    pub fn connected(&self) -> usize {
        self.connections.len()
    }

    /// The hub we reach, if any (its base58 peer id).
    pub fn hub(&self) -> Option<&str> {
        self.links.iter().find(|l| l.hub).map(|l| l.peer.as_str())
    }

    /// The participants of the room on screen (see [`Conversation::members`]).
    pub fn members(&self) -> Vec<Member> {
        self.room()
            .map(|c| c.members(&self.links))
            .unwrap_or_default()
    }

    /// The other rooms with something unread: their number (Alt-N) and conversation.
    pub fn hotlist(&self) -> Vec<(usize, &Conversation)> {
        self.rooms
            .iter()
            .enumerate()
            .filter(|(i, c)| *i != self.current && c.unseen > 0)
            .map(|(i, c)| (i + 1, c))
            .collect()
    }

    /// Whether room `i` is looked at: on screen, with the terminal in front.
    fn looking(&self, i: usize) -> bool {
        i == self.current && !self.away
    }

    /// The conversation of room `topic`, made if it is new (the node opened it, or the user
    /// just asked to join it).
    fn open(&mut self, topic: &str) -> usize {
        match self.rooms.iter().position(|c| c.topic == topic) {
            Some(i) => i,
            None => {
                self.rooms
                    .push(Conversation::new(topic, render::room_label(topic, None)));
                self.rooms.len() - 1
            }
        }
    }

    /// The conversation an update goes to: its room's, or for the node's own news (and news of
    /// a room no longer open), the one on screen.
    fn conversation(&mut self, room: Option<&str>) -> usize {
        if let Some(i) = room.and_then(|t| self.rooms.iter().position(|c| c.topic == t)) {
            return i;
        }
        if self.rooms.is_empty() {
            // News before the first room is known (a notice at start).
            self.rooms.push(Conversation::new("", "…".to_owned()));
        }
        self.current.min(self.rooms.len() - 1)
    }

    /// Adds `entry` to conversation `i`.
    fn push(&mut self, i: usize, entry: Entry, measure: Measure) {
        let looking = self.looking(i);
        let width = self.width.max(1);
        // (Two fields borrowed apart: no copy of our peer id per line of a burst.)
        let me = self.me.as_ref().map(|m| m.peer.as_str());
        let Some(c) = self.rooms.get_mut(i) else {
            return;
        };
        c.push(entry, looking, |c, e| measure(c, me, width, e));
    }

    fn say(&mut self, i: usize, at: DateTime<Local>, tone: Tone, text: String, measure: Measure) {
        self.push(
            i,
            Entry {
                at,
                lamport: None,
                author: None,
                text,
                tone,
                mention: false,
            },
            measure,
        );
    }

    /// The lines the line renderer has for `event`, as system lines of conversation `i`.
    fn say_lines(&mut self, i: usize, event: &ChatEvent, now: DateTime<Local>, measure: Measure) {
        for (at, line) in render::human_lines(event) {
            let at = at.and_then(local).unwrap_or(now);
            let (tone, text) = if let Some(t) = line.strip_prefix("Error: ") {
                if !self.farewell.is_empty() {
                    // Said while leaving: the shell gets it too (the screen is about to go).
                    self.farewell_line(line.clone());
                }
                (Tone::Error, t.to_owned())
            } else {
                (
                    Tone::Info,
                    line.strip_prefix("System: ").unwrap_or(&line).to_owned(),
                )
            };
            self.say(i, at, tone, text, measure);
        }
    }

    /// Keeps `line` for the shell after the screen closes.
    fn farewell_line(&mut self, line: String) {
        if self.farewell.len() < FAREWELL_LINES {
            self.farewell.push(line);
        }
    }

    /// Whether `text` names us as a word (any case), said by someone else.
    fn mentions_me(&self, v: &EventView) -> bool {
        let Some(me) = &self.me else { return false };
        if v.peer == me.peer || v.kind != EventKind::Message {
            return false;
        }
        let name = me.user.to_lowercase();
        let text = v.text.as_deref().unwrap_or_default().to_lowercase();
        text.match_indices(&name).any(|(i, m)| {
            let before = text[..i].chars().next_back();
            let after = text[i + m.len()..].chars().next();
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
        })
    }

    /// Takes an update from the node. `measure` measures an entry at the current width.
    pub fn on_update(&mut self, update: &Update, now: DateTime<Local>, measure: Measure) {
        let room = update.room.as_deref();
        match &update.event {
            ChatEvent::Ready {
                peer,
                user,
                topic,
                listen,
            } => {
                self.me = Some(Me {
                    user: user.clone(),
                    peer: peer.clone(),
                });
                // A placeholder that took the notices before ready gives them to the room.
                let placeholder = self
                    .rooms
                    .iter()
                    .position(|c| c.topic.is_empty())
                    .map(|p| self.rooms.remove(p));
                let i = self.open(topic);
                self.rooms[i].opened = true;
                for e in placeholder.into_iter().flat_map(|p| p.entries) {
                    self.push(i, e, measure);
                }
                self.current = i;
                self.poll_due = true;
                // The status line shows who and where we are: the banner keeps to the addresses.
                let head = format!(
                    "you are {user}#{} in {}; others can --connect to:",
                    render::short_id(peer),
                    render::room_label(topic, None)
                );
                self.say(i, now, Tone::Info, head, measure);
                for a in listen {
                    self.say(i, now, Tone::Info, format!("  {a}"), measure);
                }
            }
            ChatEvent::Opened(v) => {
                let i = self.open(&v.topic);
                if let Some(c) = self.rooms.get_mut(i) {
                    c.label = render::room_label(&v.topic, v.name.as_deref());
                    c.private = v.private;
                    c.opened = true;
                }
                self.poll_due = true;
                self.say_lines(i, &update.event, now, measure);
            }
            ChatEvent::Closed { topic } => {
                let mut label = render::room_label(topic, None);
                if let Some(i) = self.rooms.iter().position(|c| &c.topic == topic) {
                    label = self.rooms.remove(i).label;
                    if self.current >= i && self.current > 0 {
                        self.current -= 1;
                    }
                }
                let i = self.conversation(None);
                self.say(i, now, Tone::Info, format!("left {label}"), measure);
                self.switch(i);
            }
            ChatEvent::Chat(v) => {
                let i = self.conversation(room);
                self.on_chat(i, v, now, measure);
            }
            ChatEvent::Who(list) => {
                let i = self.conversation(room);
                let c = &mut self.rooms[i];
                c.roster = list.clone();
                if c.who_asked.pop_front().unwrap_or(true) {
                    self.say_lines(i, &update.event, now, measure);
                }
            }
            ChatEvent::Links(links) => {
                self.links = links.clone();
                self.connections = links.iter().map(|l| l.peer.clone()).collect();
                if self.peers_asked.pop_front().unwrap_or(true) {
                    let i = self.conversation(None);
                    self.say_lines(i, &update.event, now, measure);
                }
            }
            ChatEvent::Peer {
                peer, connected, ..
            } => {
                if *connected {
                    self.connections.insert(peer.clone());
                } else {
                    self.connections.remove(peer);
                    self.links.retain(|l| &l.peer != peer);
                }
                self.poll_due = true;
            }
            other => {
                let i = self.conversation(room);
                self.say_lines(i, other, now, measure);
            }
        }
    }

    fn on_chat(&mut self, i: usize, v: &EventView, now: DateTime<Local>, measure: Measure) {
        let (author, text) = render::event_parts(v);
        let tone = match (v.kind, v.reason) {
            (EventKind::Message, _) => Tone::Said,
            (EventKind::Join, _) => Tone::Join,
            (EventKind::Leave, Some(LeaveReason::Lost)) => Tone::Lost,
            (EventKind::Leave, _) => Tone::Leave,
            (EventKind::Sealed, _) => Tone::Info,
        };
        if self.rooms[i].follow(v, tone) {
            self.poll_due = true;
        }
        let mention = self.mentions_me(v);
        let text = format!("{text}{}", render::event_suffix(v));
        if v.kind == EventKind::Leave && self.me.as_ref().is_some_and(|m| m.peer == v.peer) {
            self.farewell_line(format!("[{}] {text}", v.lamport));
        }
        self.push(
            i,
            Entry {
                at: local(v.time).unwrap_or(now),
                lamport: Some(v.lamport),
                author: author.map(|a| (a, v.peer.clone())),
                text,
                tone,
                mention,
            },
            measure,
        );
    }

    /// The commands the screen sends on its own to keep the pane true: who is in each room,
    /// and how peers are reached. Their answers are not shown.
    pub fn poll(&mut self) -> Vec<Command> {
        self.poll_due = false;
        let mut out: Vec<Command> = self
            .rooms
            .iter()
            .filter(|c| c.opened)
            .map(|c| Command {
                room: Some(c.topic.clone()),
                cmd: UserCommand::Who,
            })
            .collect();
        out.push(Command::plain(UserCommand::Peers));
        out
    }

    /// Notes that `cmd` was sent (so that the answer to a `/who` or `/peers` the user typed is
    /// shown, and one the screen sent is not).
    pub fn sent(&mut self, cmd: &Command, by_user: bool) {
        match &cmd.cmd {
            UserCommand::Who => {
                // (Its answer, when the room is still open, goes to the room's conversation.)
                let i = self.conversation(cmd.room.as_deref());
                self.rooms[i].who_asked.push_back(by_user);
            }
            UserCommand::Peers => self.peers_asked.push_back(by_user),
            _ => {}
        }
    }

    /// Puts room `i` on screen; what was unseen there is seen, unless scrolled up.
    pub fn switch(&mut self, i: usize) {
        if i >= self.rooms.len() {
            return;
        }
        self.current = i;
        self.completion = None;
        let looking = self.looking(i);
        if let Some(c) = self.rooms.get_mut(i) {
            c.scroll_by(0, looking);
        }
    }

    /// The terminal gained (true) or lost focus.
    pub fn focus(&mut self, on: bool) {
        self.away = !on;
        let looking = self.looking(self.current);
        if let Some(c) = self.rooms.get_mut(self.current) {
            c.scroll_by(0, looking);
        }
    }

    /// Scrolls the room on screen up (positive) or down by `rows`.
    pub fn scroll_by(&mut self, rows: isize) {
        let looking = self.looking(self.current);
        if let Some(c) = self.rooms.get_mut(self.current) {
            c.scroll_by(rows, looking);
        }
    }

    /// How far the room on screen is scrolled up.
    pub fn scroll(&self) -> usize {
        self.room().map_or(0, |c| c.scroll)
    }

    /// Takes a mouse event: the wheel scrolls.
    pub fn on_mouse(&mut self, m: MouseEvent) {
        match m.kind {
            MouseEventKind::ScrollUp => self.scroll_by(WHEEL_ROWS as isize),
            MouseEventKind::ScrollDown => self.scroll_by(-(WHEEL_ROWS as isize)),
            _ => {}
        }
    }

    /// What the user typed or pasted for room `i` becomes commands; help and refusals are
    /// shown here.
    fn submit(
        &mut self,
        i: usize,
        parsed: Vec<Parsed>,
        now: DateTime<Local>,
        measure: Measure,
    ) -> Vec<Command> {
        let mut topic = self
            .rooms
            .get(i)
            .map(|c| c.topic.clone())
            .filter(|t| !t.is_empty());
        let mut out = Vec::new();
        for p in parsed {
            match p {
                Parsed::Command(cmd) => {
                    if matches!(cmd, UserCommand::Say(_))
                        && let Some(c) = self.rooms.get_mut(i)
                    {
                        // Speaking is coming back: the read marker has done its job.
                        c.marker = None;
                    }
                    let quit = cmd == UserCommand::Quit;
                    // The room `/join` names comes on screen at once: what is typed next goes
                    // there.
                    let joined = match &cmd {
                        UserCommand::Join(target) => Some(target.topic()),
                        _ => None,
                    };
                    let parted = cmd == UserCommand::Part;
                    out.push(Command {
                        room: topic.clone(),
                        cmd,
                    });
                    if let Some(t) = joined {
                        let j = self.open(&t);
                        self.switch(j);
                        topic = Some(t);
                    } else if parted
                        && let Some(j) = (0..self.rooms.len()).rev().find(|k| {
                            self.rooms[*k].opened && Some(&self.rooms[*k].topic) != topic.as_ref()
                        })
                    {
                        // On to the room opened last of the others: what is typed next goes
                        // there (the parted one goes when its leave is out).
                        self.switch(j);
                        topic = Some(self.rooms[j].topic.clone());
                    }
                    if quit {
                        break;
                    }
                }
                Parsed::Help => {
                    self.say(
                        i,
                        now,
                        Tone::Info,
                        "type a line to send it; commands:".to_owned(),
                        measure,
                    );
                    for (c, d) in HELP {
                        self.say(i, now, Tone::Info, format!("  {c:<13} {d}"), measure);
                    }
                    for (k, d) in KEYS {
                        self.say(i, now, Tone::Info, format!("  {k:<13} {d}"), measure);
                    }
                }
                Parsed::Empty => {}
                Parsed::Invalid(msg) => self.say(i, now, Tone::Error, msg, measure),
            }
        }
        if !out.is_empty() && self.scroll() > 0 {
            // Who sends wants to see the answer.
            let rows = self.scroll() as isize;
            self.scroll_by(-rows);
        }
        out
    }

    /// Takes a paste: one line, or any paste into a line already begun, goes into the input
    /// line (line breaks become spaces, a wrapped line's indentation goes); several lines into
    /// an empty input line are sent as messages, after a yes when there are many. Tabs are
    /// spaces.
    pub fn on_paste(&mut self, text: &str, now: DateTime<Local>, measure: Measure) -> Vec<Command> {
        self.completion = None;
        let i = self.current;
        let text = text.replace('\t', " ");
        if !self.editor.text().is_empty() {
            let joined: Vec<&str> = text
                .split(['\n', '\r'])
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            self.editor.insert(&joined.join(" "));
            return Vec::new();
        }
        let text = text.as_str();
        match editor_input(text) {
            Input::Line(Parsed::Invalid(msg)) if text.contains(['\n', '\r']) => {
                self.say(i, now, Tone::Error, msg, measure);
                Vec::new()
            }
            Input::Line(_) | Input::End => {
                self.editor.insert(text.trim_matches(['\n', '\r']));
                Vec::new()
            }
            Input::Paste(lines) if lines.len() > MANY_PASTE_LINES => {
                let topic = self
                    .rooms
                    .get(i)
                    .map(|c| c.topic.clone())
                    .unwrap_or_default();
                self.confirm = Some((lines, topic));
                Vec::new()
            }
            Input::Paste(lines) => self.submit(i, lines, now, measure),
        }
    }

    /// Takes a key; returns the commands to send. `page` is the conversation's height.
    pub fn on_key(
        &mut self,
        key: KeyEvent,
        page: usize,
        now: DateTime<Local>,
        measure: Measure,
    ) -> Vec<Command> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        if let Some((lines, topic)) = self.confirm.take() {
            // To the room it was pasted in, if still open.
            let i = self.conversation(Some(&topic));
            return match key.code {
                // `[y/N]`: only a yes sends; Enter is the default, no.
                KeyCode::Char('y' | 'Y') if !ctrl && !alt => self.submit(i, lines, now, measure),
                KeyCode::Char('c') if ctrl => vec![Command::plain(UserCommand::Quit)],
                _ => {
                    self.say(
                        i,
                        now,
                        Tone::Info,
                        format!("the paste of {} lines was not sent", lines.len()),
                        measure,
                    );
                    Vec::new()
                }
            };
        }
        if key.code != KeyCode::Tab {
            self.completion = None;
        }
        let page = page.saturating_sub(1).max(1) as isize;
        let rooms = self.rooms.len().max(1);
        let e = &mut self.editor;
        match key.code {
            KeyCode::Char('c') if ctrl => return vec![Command::plain(UserCommand::Quit)],
            KeyCode::Char('d') if ctrl && e.text().is_empty() => {
                return vec![Command::plain(UserCommand::Quit)];
            }
            KeyCode::Char('d') if ctrl => e.delete(),
            KeyCode::Char('a') if ctrl => e.home(),
            KeyCode::Char('e') if ctrl => e.end(),
            KeyCode::Char('b') if ctrl => e.left(),
            KeyCode::Char('f') if ctrl => e.right(),
            KeyCode::Char('w') if ctrl => e.delete_word(),
            KeyCode::Char('h') if ctrl => e.backspace(),
            KeyCode::Char('u') if ctrl => e.delete_to_start(),
            KeyCode::Char('k') if ctrl => e.delete_to_end(),
            KeyCode::Char('n') if ctrl => self.switch((self.current + 1) % rooms),
            KeyCode::Char('p') if ctrl => self.switch((self.current + rooms - 1) % rooms),
            KeyCode::Char(d @ '1'..='9') if alt => {
                self.switch(usize::from(d as u8 - b'1'));
            }
            KeyCode::Char('b') if alt => e.word_left(),
            KeyCode::Char('f') if alt => e.word_right(),
            KeyCode::Backspace if alt || ctrl => e.delete_word(),
            KeyCode::Char(_) if ctrl || alt => {}
            KeyCode::Char(c) => e.insert(c.encode_utf8(&mut [0; 4])),
            KeyCode::Backspace => e.backspace(),
            KeyCode::Delete => e.delete(),
            KeyCode::Left if ctrl || alt => e.word_left(),
            KeyCode::Right if ctrl || alt => e.word_right(),
            KeyCode::Left => e.left(),
            KeyCode::Right => e.right(),
            KeyCode::Up => e.history_back(),
            KeyCode::Down => e.history_forward(),
            KeyCode::Home if ctrl || e.text().is_empty() => self.scroll_by(isize::MAX),
            KeyCode::End if ctrl || e.text().is_empty() => {
                let rows = self.scroll() as isize;
                self.scroll_by(-rows);
            }
            KeyCode::Home => e.home(),
            KeyCode::End => e.end(),
            KeyCode::PageUp => self.scroll_by(page),
            KeyCode::PageDown => self.scroll_by(-page),
            KeyCode::Esc => {
                let rows = self.scroll() as isize;
                self.scroll_by(-rows);
            }
            KeyCode::F(2) => self.pane = Some(!self.pane_shown),
            KeyCode::Tab => self.complete(),
            KeyCode::Enter => {
                let line = e.take();
                let parsed = parse_line(&line);
                if matches!(parsed, Parsed::Invalid(_)) {
                    // Refused (too long, a mistyped command): kept, to be mended.
                    e.insert(&line);
                }
                let i = self.current;
                return self.submit(i, vec![parsed], now, measure);
            }
            _ => {}
        }
        Vec::new()
    }

    /// Tab: completes the word before the cursor: a command at the start of the line, else a
    /// participant's name of the room on screen (followed by ": " at the start of the line).
    /// Again: the next one.
    fn complete(&mut self) {
        if let Some(c) = &mut self.completion
            && c.line == self.editor.text()
        {
            c.shown = (c.shown + 1) % c.candidates.len();
            let with = c.candidates[c.shown].clone();
            let from = c.from;
            self.editor.replace_before_cursor(from, &with);
            if let Some(c) = &mut self.completion {
                c.line = self.editor.text().to_owned();
            }
            return;
        }
        let before = &self.editor.text()[..self.editor.cursor()];
        let from = before.rfind(char::is_whitespace).map_or(0, |i| {
            i + before[i..].chars().next().map_or(1, char::len_utf8)
        });
        let word = &before[from..];
        let candidates: Vec<String> = if from == 0 && word.starts_with('/') {
            HELP.iter()
                .filter_map(|(c, _)| c.split_whitespace().next())
                .filter(|c| c.starts_with(word) && !c.starts_with("//"))
                .map(|c| format!("{c} "))
                .collect()
        } else if word.is_empty() {
            Vec::new()
        } else if let Some(room) = self.room() {
            let lower = word.to_lowercase();
            let mut names: Vec<String> = room
                .roster
                .iter()
                .filter(|p| !p.me)
                .map(|p| p.user.clone())
                .chain(room.lost.values().cloned())
                .filter(|n| n.to_lowercase().starts_with(&lower))
                .collect();
            names.sort_by_key(|n| n.to_lowercase());
            names.dedup();
            let tail = if from == 0 { ": " } else { " " };
            names.into_iter().map(|n| format!("{n}{tail}")).collect()
        } else {
            Vec::new()
        };
        let Some(first) = candidates.first().cloned() else {
            return;
        };
        self.editor.replace_before_cursor(from, &first);
        self.completion = Some(Completion {
            from,
            candidates,
            shown: 0,
            line: self.editor.text().to_owned(),
        });
    }

    /// The character count to show near the input line: when the line nears the limit.
    pub fn count(&self) -> Option<(usize, bool)> {
        let n = self.editor.chars();
        (n + 28 >= MAX_TEXT_CHARS && !self.editor.text().starts_with('/'))
            .then_some((n, n > MAX_TEXT_CHARS))
    }
}

/// The screen's keys, for `/help`.
pub const KEYS: &[(&str, &str)] = &[
    (
        "PgUp/PgDn",
        "scroll the conversation (also the mouse wheel)",
    ),
    (
        "Ctrl-Home/End",
        "oldest / newest line (Home/End on an empty line)",
    ),
    ("Esc", "back to the newest line"),
    (
        "Alt-1..9",
        "the first to ninth room (Ctrl-N/P: next, previous)",
    ),
    ("Tab", "complete a name or a command"),
    ("Up/Down", "lines sent before"),
    ("F2", "show or hide who is here"),
    ("Ctrl-C, Ctrl-D", "leave (as /quit)"),
];

/// An event's time on the local clock.
fn local(t: crate::core::time::WallTime) -> Option<DateTime<Local>> {
    DateTime::from_timestamp_millis(i64::try_from(t.unix_millis()).ok()?)
        .map(|t| t.with_timezone(&Local))
}
