//! What the chat screen shows, as plain state: the conversation (a bounded scrollback), where the
//! view is, who is here and how each is reached, the input line. It takes [`ChatEvent`]s and
//! keys and says which [`UserCommand`]s to send; it draws nothing (the view does) and reads no
//! clock (times come in), so that it is tested without a terminal.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, Local};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent, MouseEventKind};

use crate::core::command::UserCommand;
use crate::core::event::{ChatEvent, EventKind, EventView, LeaveReason, LinkView, ParticipantView};
use crate::core::name::MAX_TEXT_CHARS;
use crate::ui::input::{HELP, Input, Parsed, editor_input, parse_line};
use crate::ui::render;

use super::editor::Editor;

/// Conversation lines kept for scrollback; older ones are let go (`/history` still has them).
pub const SCREEN_LINES: usize = 5000;
/// A paste of more lines than this asks before sending them.
pub const MANY_PASTE_LINES: usize = 5;
/// Rows one turn of the mouse wheel scrolls.
pub const WHEEL_ROWS: usize = 3;

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

/// One line of the conversation.
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
    /// The room's name as shown.
    pub room: String,
    /// A private room.
    pub private: bool,
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
    entries: VecDeque<Entry>,
    /// How many entries were let go from the front: `entries[i]` is entry number `dropped + i`.
    dropped: u64,
    /// How many rows the view is scrolled up from the newest line (0: it follows).
    pub scroll: usize,
    /// Entries that arrived while scrolled up or away.
    pub unseen: usize,
    /// Of those, how many mention us.
    pub unseen_mentions: usize,
    /// The number of the first entry that arrived while we were away or scrolled up: the read
    /// marker is drawn above it.
    pub marker: Option<u64>,
    /// The terminal lost focus.
    away: bool,
    roster: Vec<ParticipantView>,
    /// Participants lost (peer → name), shown greyed until they come back or leave.
    lost: BTreeMap<String, String>,
    /// The stamp of each participant's newest join or leave seen.
    last_seen: BTreeMap<String, u64>,
    links: Vec<LinkView>,
    /// Peers we are connected to now (from connection events, between polls).
    connections: BTreeSet<String>,
    /// The side pane: shown, hidden, or as wide enough terminals have it (`None`).
    pub pane: Option<bool>,
    /// Whether the last draw showed the pane.
    pub pane_shown: bool,
    /// The input line.
    pub editor: Editor,
    /// A paste of many lines waiting for the user's yes.
    pub confirm: Option<Vec<Parsed>>,
    completion: Option<Completion>,
    /// For each `/who` sent, oldest first: whether the user asked (its answer is shown) or the
    /// screen did (its answer only updates the pane).
    who_asked: VecDeque<bool>,
    /// The same for `/peers`.
    peers_asked: VecDeque<bool>,
    /// A join or leave came: who is here should be asked again.
    pub poll_due: bool,
    /// Columns of the conversation at the last draw (for holding a scrolled view still).
    pub width: usize,
    /// The line our own leave was shown with, printed again when the screen closes.
    pub farewell: Option<String>,
}

impl Screen {
    /// The conversation, oldest first, with the number of the first.
    pub fn entries(&self) -> (u64, &VecDeque<Entry>) {
        (self.dropped, &self.entries)
    }

    /// Peers we are connected to.
    pub fn connected(&self) -> usize {
        self.connections.len()
    }

    /// The hub we reach, if any (its base58 peer id).
    pub fn hub(&self) -> Option<&str> {
        self.links.iter().find(|l| l.hub).map(|l| l.peer.as_str())
    }

    /// The participants, us first, then by name; lost ones last.
    pub fn members(&self) -> Vec<Member> {
        let reach_of = |peer: &str| {
            self.links
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

    /// Adds a line to the conversation, holding a scrolled view still and counting what is
    /// unseen. `rows` is how many rows it takes at the current width.
    fn push(&mut self, entry: Entry, rows: impl Fn(&Screen, &Entry) -> usize) {
        if self.scroll > 0 || self.away {
            self.unseen += 1;
            self.unseen_mentions += usize::from(entry.mention);
            if self.marker.is_none() {
                self.marker = Some(self.dropped + self.entries.len() as u64);
            }
        }
        if self.scroll > 0 {
            self.scroll += rows(self, &entry);
        }
        self.entries.push_back(entry);
        if self.entries.len() > SCREEN_LINES {
            self.entries.pop_front();
            self.dropped += 1;
        }
    }

    fn say(
        &mut self,
        at: DateTime<Local>,
        tone: Tone,
        text: String,
        rows: impl Fn(&Screen, &Entry) -> usize,
    ) {
        self.push(
            Entry {
                at,
                lamport: None,
                author: None,
                text,
                tone,
                mention: false,
            },
            rows,
        );
    }

    /// The lines the line renderer has for `event`, as system lines.
    fn say_lines(
        &mut self,
        event: &ChatEvent,
        now: DateTime<Local>,
        rows: impl Fn(&Screen, &Entry) -> usize + Copy,
    ) {
        for (at, line) in render::human_lines(event) {
            let at = at.and_then(local).unwrap_or(now);
            let (tone, text) = if let Some(t) = line.strip_prefix("Error: ") {
                (Tone::Error, t.to_owned())
            } else {
                (
                    Tone::Info,
                    line.strip_prefix("System: ").unwrap_or(&line).to_owned(),
                )
            };
            self.say(at, tone, text, rows);
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

    /// Takes an event of the room or the node. `rows` measures an entry at the current width.
    pub fn on_event(
        &mut self,
        event: &ChatEvent,
        now: DateTime<Local>,
        rows: impl Fn(&Screen, &Entry) -> usize + Copy,
    ) {
        match event {
            ChatEvent::Ready {
                peer,
                user,
                topic,
                listen,
            } => {
                let private = crate::private::is_private_topic(topic);
                let room = if private {
                    "private room".to_owned()
                } else {
                    topic
                        .strip_prefix(crate::core::name::BASE_TOPIC)
                        .and_then(|r| r.strip_prefix('/'))
                        .map_or_else(|| topic.clone(), |r| format!("#{r}"))
                };
                self.me = Some(Me {
                    user: user.clone(),
                    peer: peer.clone(),
                    room,
                    private,
                });
                self.poll_due = true;
                // The status line shows who and where we are: the banner keeps to the addresses.
                let head = format!(
                    "you are {user}#{} in {}; others can --connect to:",
                    render::short_id(peer),
                    if private { "a private room" } else { topic }
                );
                self.say(now, Tone::Info, head, rows);
                for a in listen {
                    self.say(now, Tone::Info, format!("  {a}"), rows);
                }
            }
            ChatEvent::Chat(v) => self.on_chat(v, now, rows),
            ChatEvent::Who(list) => {
                self.roster = list.clone();
                if self.who_asked.pop_front().unwrap_or(true) {
                    self.say_lines(event, now, rows);
                }
            }
            ChatEvent::Links(links) => {
                self.links = links.clone();
                self.connections = links.iter().map(|l| l.peer.clone()).collect();
                if self.peers_asked.pop_front().unwrap_or(true) {
                    self.say_lines(event, now, rows);
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
            other => self.say_lines(other, now, rows),
        }
    }

    fn on_chat(
        &mut self,
        v: &EventView,
        now: DateTime<Local>,
        rows: impl Fn(&Screen, &Entry) -> usize + Copy,
    ) {
        let (author, text) = render::event_parts(v);
        let tone = match (v.kind, v.reason) {
            (EventKind::Message, _) => Tone::Said,
            (EventKind::Join, _) => Tone::Join,
            (EventKind::Leave, Some(LeaveReason::Lost)) => Tone::Lost,
            (EventKind::Leave, _) => Tone::Leave,
            (EventKind::Sealed, _) => Tone::Info,
        };
        // Who is lost follows each participant's newest join or leave, however late it came.
        if matches!(tone, Tone::Join | Tone::Leave | Tone::Lost)
            && self.last_seen.get(&v.peer).is_none_or(|l| *l < v.lamport)
        {
            self.last_seen.insert(v.peer.clone(), v.lamport);
            if tone == Tone::Lost {
                self.lost.insert(v.peer.clone(), v.user.clone());
            } else {
                self.lost.remove(&v.peer);
            }
            self.poll_due = true;
        }
        let mention = self.mentions_me(v);
        let text = format!("{text}{}", render::event_suffix(v));
        if v.kind == EventKind::Leave && self.me.as_ref().is_some_and(|m| m.peer == v.peer) {
            self.farewell = Some(format!("[{}] {text}", v.lamport));
        }
        self.push(
            Entry {
                at: local(v.time).unwrap_or(now),
                lamport: Some(v.lamport),
                author: author.map(|a| (a, v.peer.clone())),
                text,
                tone,
                mention,
            },
            rows,
        );
    }

    /// The commands the screen sends on its own to keep the pane true: who is here, and how
    /// they are reached. Their answers are not shown.
    pub fn poll(&mut self) -> Vec<UserCommand> {
        self.poll_due = false;
        vec![UserCommand::Who, UserCommand::Peers]
    }

    /// Notes that `cmd` was sent (so that the answer to a `/who` or `/peers` the user typed is
    /// shown, and one the screen sent is not).
    pub fn sent(&mut self, cmd: &UserCommand, by_user: bool) {
        match cmd {
            UserCommand::Who => self.who_asked.push_back(by_user),
            UserCommand::Peers => self.peers_asked.push_back(by_user),
            _ => {}
        }
    }

    /// The terminal gained (true) or lost focus.
    pub fn focus(&mut self, on: bool) {
        self.away = !on;
        if on && self.scroll == 0 {
            self.unseen = 0;
            self.unseen_mentions = 0;
        }
    }

    /// Scrolls up (positive) or down by `rows`; back at the bottom, what was unseen is seen.
    pub fn scroll_by(&mut self, rows: isize) {
        self.scroll = self.scroll.saturating_add_signed(rows);
        if self.scroll == 0 && !self.away {
            self.unseen = 0;
            self.unseen_mentions = 0;
        }
    }

    /// Takes a mouse event: the wheel scrolls.
    pub fn on_mouse(&mut self, m: MouseEvent) {
        match m.kind {
            MouseEventKind::ScrollUp => self.scroll_by(WHEEL_ROWS as isize),
            MouseEventKind::ScrollDown => self.scroll_by(-(WHEEL_ROWS as isize)),
            _ => {}
        }
    }

    /// What the user typed or pasted becomes commands; help and refusals are shown here.
    fn submit(
        &mut self,
        parsed: Vec<Parsed>,
        now: DateTime<Local>,
        rows: impl Fn(&Screen, &Entry) -> usize + Copy,
    ) -> Vec<UserCommand> {
        let mut out = Vec::new();
        for p in parsed {
            match p {
                Parsed::Command(cmd) => {
                    if matches!(cmd, UserCommand::Say(_)) {
                        // Speaking is coming back: the read marker has done its job.
                        self.marker = None;
                    }
                    let quit = cmd == UserCommand::Quit;
                    out.push(cmd);
                    if quit {
                        break;
                    }
                }
                Parsed::Help => {
                    self.say(
                        now,
                        Tone::Info,
                        "type a line to send it; commands:".to_owned(),
                        rows,
                    );
                    for (c, d) in HELP {
                        self.say(now, Tone::Info, format!("  {c:<13} {d}"), rows);
                    }
                    for (k, d) in KEYS {
                        self.say(now, Tone::Info, format!("  {k:<13} {d}"), rows);
                    }
                }
                Parsed::Empty => {}
                Parsed::Invalid(msg) => self.say(now, Tone::Error, msg, rows),
            }
        }
        if !out.is_empty() && self.scroll > 0 {
            // Who sends wants to see the answer.
            self.scroll_by(-(self.scroll as isize));
        }
        out
    }

    /// Takes a paste: one line goes into the input line; several are sent as messages, after a
    /// yes when there are many.
    pub fn on_paste(
        &mut self,
        text: &str,
        now: DateTime<Local>,
        rows: impl Fn(&Screen, &Entry) -> usize + Copy,
    ) -> Vec<UserCommand> {
        self.completion = None;
        match editor_input(text) {
            Input::Line(Parsed::Invalid(msg)) if text.contains(['\n', '\r']) => {
                self.say(now, Tone::Error, msg, rows);
                Vec::new()
            }
            Input::Line(_) | Input::End => {
                self.editor.insert(text.trim_matches(['\n', '\r']));
                Vec::new()
            }
            Input::Paste(lines) if lines.len() > MANY_PASTE_LINES => {
                self.confirm = Some(lines);
                Vec::new()
            }
            Input::Paste(lines) => self.submit(lines, now, rows),
        }
    }

    /// Takes a key; returns the commands to send. `page` is the conversation's height.
    pub fn on_key(
        &mut self,
        key: KeyEvent,
        page: usize,
        now: DateTime<Local>,
        rows: impl Fn(&Screen, &Entry) -> usize + Copy,
    ) -> Vec<UserCommand> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        if let Some(lines) = self.confirm.take() {
            return match key.code {
                KeyCode::Char('y' | 'Y') | KeyCode::Enter if !ctrl => self.submit(lines, now, rows),
                KeyCode::Char('c') if ctrl => vec![UserCommand::Quit],
                _ => {
                    self.say(
                        now,
                        Tone::Info,
                        format!("the paste of {} lines was not sent", lines.len()),
                        rows,
                    );
                    Vec::new()
                }
            };
        }
        if key.code != KeyCode::Tab {
            self.completion = None;
        }
        let page = page.saturating_sub(1).max(1) as isize;
        let e = &mut self.editor;
        match key.code {
            KeyCode::Char('c') if ctrl => return vec![UserCommand::Quit],
            KeyCode::Char('d') if ctrl && e.text().is_empty() => return vec![UserCommand::Quit],
            KeyCode::Char('d') if ctrl => e.delete(),
            KeyCode::Char('a') if ctrl => e.home(),
            KeyCode::Char('e') if ctrl => e.end(),
            KeyCode::Char('b') if ctrl => e.left(),
            KeyCode::Char('f') if ctrl => e.right(),
            KeyCode::Char('w') if ctrl => e.delete_word(),
            KeyCode::Char('h') if ctrl => e.backspace(),
            KeyCode::Char('u') if ctrl => e.delete_to_start(),
            KeyCode::Char('k') if ctrl => e.delete_to_end(),
            KeyCode::Char('p') if ctrl => e.history_back(),
            KeyCode::Char('n') if ctrl => e.history_forward(),
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
            KeyCode::End if ctrl || e.text().is_empty() => self.scroll_by(-(self.scroll as isize)),
            KeyCode::Home => e.home(),
            KeyCode::End => e.end(),
            KeyCode::PageUp => self.scroll_by(page),
            KeyCode::PageDown => self.scroll_by(-page),
            KeyCode::Esc => self.scroll_by(-(self.scroll as isize)),
            KeyCode::F(2) => self.pane = Some(!self.pane_shown),
            KeyCode::Tab => self.complete(),
            KeyCode::Enter => {
                let line = e.take();
                return self.submit(vec![parse_line(&line)], now, rows);
            }
            _ => {}
        }
        Vec::new()
    }

    /// Tab: completes the word before the cursor: a command at the start of the line, else a
    /// participant's name (followed by ": " at the start of the line). Again: the next one.
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
        } else {
            let lower = word.to_lowercase();
            let mut names: Vec<String> = self
                .roster
                .iter()
                .filter(|p| !p.me)
                .map(|p| p.user.clone())
                .chain(self.lost.values().cloned())
                .filter(|n| n.to_lowercase().starts_with(&lower))
                .collect();
            names.sort_by_key(|n| n.to_lowercase());
            names.dedup();
            let tail = if from == 0 { ": " } else { " " };
            names.into_iter().map(|n| format!("{n}{tail}")).collect()
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
