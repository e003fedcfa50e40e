//! The user interface: reads the keyboard or a pipe, renders [`ChatEvent`]s. It knows nothing of
//! libp2p: it sends [`UserCommand`]s down and receives [`ChatEvent`]s up.
//!
//! - [`input`]: lines to commands, on a thread of their own.
//! - [`render`]: human and JSON renderers.
//! - [`screen`]: the full-screen chat, on a terminal.
//! - [`terminal`]: the terminal's modes, saved at start and put back on every way out.

pub mod input;
pub mod render;
pub mod screen;
pub mod terminal;

use std::collections::VecDeque;
use std::io::Write;

use tokio::sync::mpsc;

use crate::core::command::{Command, UserCommand};
use crate::core::event::{ChatEvent, Update};
use crate::logging::Notices;
use input::{Input, Parsed, Sink};
use render::Format;

/// Lines read but not yet handled: the input thread waits when the ui is this far behind.
pub const INPUT_CAP: usize = 64;

fn write_lines(sink: &mut Sink, lines: Vec<String>) {
    match sink {
        Sink::Stdout => {
            let mut out = std::io::stdout().lock();
            for l in lines {
                // A closed stdout (the reader went away) is not worth dying for mid-leave.
                let _ = writeln!(out, "{l}");
            }
            let _ = out.flush();
        }
        Sink::Editor(printer) => {
            for l in lines {
                if printer.print(format!("{l}\n")).is_err() {
                    tracing::debug!("line editor printer closed");
                }
            }
        }
    }
}

/// Lines parsed but not yet taken by the event loop. The ui keeps rendering while it waits for
/// the event loop (which may itself be waiting for the ui to take events); when this many wait,
/// it stops reading input, which holds back a pipe (the line editor's thread refuses lines
/// instead of blocking, see `input::forward_now`).
pub const BACKLOG_CAP: usize = 256;

/// Commands on their way down to the event loop: a backlog, sent one at a time with a permit
/// reserved beside the ui's other waits (so the ui never waits to hand a command down while
/// events wait for it), each with whether the user typed it (or the ui asked on its own).
/// Nothing more goes down after `/quit`, or once the event loop is gone.
pub struct Outgoing {
    tx: Option<mpsc::Sender<Command>>,
    backlog: VecDeque<(Command, bool)>,
}

impl Outgoing {
    /// Commands for `tx`.
    pub fn new(tx: mpsc::Sender<Command>) -> Self {
        Self {
            tx: Some(tx),
            backlog: VecDeque::new(),
        }
    }

    /// Whether commands still go down.
    pub fn is_open(&self) -> bool {
        self.tx.is_some()
    }

    /// How many wait.
    pub fn len(&self) -> usize {
        self.backlog.len()
    }

    /// Whether none wait.
    pub fn is_empty(&self) -> bool {
        self.backlog.is_empty()
    }

    /// Whether one the ui asked on its own waits.
    pub fn has_own(&self) -> bool {
        self.backlog.iter().any(|(_, by_user)| !by_user)
    }

    /// Queues `cmd` (dropped once closed).
    pub fn push(&mut self, cmd: Command, by_user: bool) {
        if self.tx.is_some() {
            self.backlog.push_back((cmd, by_user));
        }
    }

    /// A permit to send the oldest; `None` when the event loop is gone. Pending for ever once
    /// closed (a `select!` branch guarded by `!is_empty()` then never runs).
    pub fn slot(&self) -> impl std::future::Future<Output = Option<mpsc::OwnedPermit<Command>>> {
        let sender = self.tx.clone();
        async move {
            match sender {
                Some(tx) => tx.reserve_owned().await.ok(),
                None => std::future::pending().await,
            }
        }
    }

    /// Sends the oldest with `permit` (from [`Outgoing::slot`]), telling `before` what goes;
    /// after `/quit`, or without a permit, closes.
    pub fn send(
        &mut self,
        permit: Option<mpsc::OwnedPermit<Command>>,
        before: impl FnOnce(&Command, bool),
    ) {
        match (permit, self.backlog.pop_front()) {
            (Some(permit), Some((cmd, by_user))) => {
                before(&cmd, by_user);
                let quit = cmd.cmd == UserCommand::Quit;
                permit.send(cmd);
                if quit {
                    self.close();
                }
            }
            _ => self.close(),
        }
    }

    fn close(&mut self) {
        self.tx = None;
        self.backlog.clear();
    }
}

/// How a participant's ui meets the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The full-screen chat (a terminal, human output, no `--plain`).
    Screen,
    /// Lines printed above a line editor (a terminal with `--plain`).
    LineEditor,
    /// Lines in, lines out (a pipe, a file, or `--json`).
    Plain,
}

/// Runs the ui until the network layer has finished (it closes `events` after our leave).
///
/// In the line modes, input is held back until the node is `ready`, so that `ready` is always
/// the first line. `notices` (diagnostics meant for the user, see [`crate::logging`]) are shown
/// as `System:` lines; they only arrive on a terminal. A terminal that cannot take the screen's
/// modes gets the line editor.
pub async fn run(
    format: Format,
    mode: Mode,
    commands: mpsc::Sender<Command>,
    events: mpsc::Receiver<Update>,
    notices: Notices,
) {
    if mode == Mode::Screen && format == Format::Human {
        match screen::Guard::enter() {
            Ok(guard) => {
                screen::run(guard, commands, events, notices).await;
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "the terminal cannot show the chat screen; using lines");
            }
        }
    }
    run_lines(format, mode != Mode::Plain, commands, events, notices).await;
}

/// The rooms the node is in, as the ui follows them, and the one typed lines go to: the first
/// at start, then each room `/join` names (from the moment it is typed, so that the lines after
/// it in a pipe go there too), and after a `/part` the room joined last of those left.
#[derive(Debug, Default)]
pub struct Rooms {
    open: Vec<String>,
    current: Option<String>,
}

impl Rooms {
    /// Follows `update`.
    pub fn seen(&mut self, update: &Update) {
        match &update.event {
            ChatEvent::Ready { topic, .. } => {
                if !self.open.contains(topic) {
                    self.open.push(topic.clone());
                }
                self.current.get_or_insert_with(|| topic.clone());
            }
            ChatEvent::Opened(v) if !self.open.contains(&v.topic) => {
                self.open.push(v.topic.clone());
            }
            ChatEvent::Closed { topic } => {
                self.open.retain(|t| t != topic);
                if self.current.as_ref() == Some(topic) {
                    self.current = self.open.last().cloned();
                }
            }
            _ => {}
        }
    }

    /// `cmd`, for the current room; a `/join` makes its room current, a `/part` the room
    /// opened last of the others.
    pub fn address(&mut self, cmd: UserCommand) -> Command {
        let room = self.current.clone();
        match &cmd {
            UserCommand::Join(target) => {
                let topic = target.topic();
                self.open.retain(|t| t != &topic);
                self.open.push(topic.clone());
                self.current = Some(topic);
            }
            UserCommand::Part if self.open.len() > 1 => {
                if let Some(gone) = &room {
                    self.open.retain(|t| t != gone);
                }
                self.current = self.open.last().cloned();
            }
            _ => {}
        }
        Command { room, cmd }
    }

    /// Whether the node is in more than one room: events then say which.
    pub fn multi(&self) -> bool {
        self.open.len() > 1
    }
}

/// The line modes of [`run`]: `line_editor` asks for the interactive line editor.
async fn run_lines(
    format: Format,
    line_editor: bool,
    commands: mpsc::Sender<Command>,
    mut events: mpsc::Receiver<Update>,
    notices: Notices,
) {
    let (input_tx, mut input_rx) = mpsc::channel(INPUT_CAP);
    let mut sink = input::spawn(input_tx, line_editor && format == Format::Human);
    let mut out = Outgoing::new(commands);
    let mut rooms = Rooms::default();
    let mut ready = false;
    let mut input_open = true;
    loop {
        let send_slot = out.slot();
        tokio::select! {
            event = events.recv() => match event {
                Some(update) => {
                    ready |= matches!(update.event, ChatEvent::Ready { .. });
                    rooms.seen(&update);
                    let lines = render::render_update(&update, format, chrono::Local::now(), rooms.multi());
                    write_lines(&mut sink, lines);
                }
                None => return,
            },
            Some(text) = notices.recv() => {
                let lines = render::render(&ChatEvent::Notice(text), format, chrono::Local::now());
                write_lines(&mut sink, lines);
            }
            permit = send_slot, if !out.is_empty() => out.send(permit, |_, _| {}),
            input = input_rx.recv(), if ready && input_open && out.is_open() && out.len() < BACKLOG_CAP => {
                // A paste adds at most `input::MAX_PASTE_LINES` beyond the cap.
                let lines = match input {
                    Some(Input::Line(parsed)) => vec![parsed],
                    Some(Input::Paste(lines)) => lines,
                    Some(Input::End) | None => vec![Parsed::Command(UserCommand::Quit)],
                };
                for parsed in lines {
                    let cmd = match parsed {
                        Parsed::Command(cmd) => cmd,
                        Parsed::Help => {
                            write_lines(&mut sink, render::help(format, chrono::Local::now()));
                            continue;
                        }
                        Parsed::Empty => continue,
                        Parsed::Invalid(msg) => {
                            let lines = render::render(&ChatEvent::Error(msg), format, chrono::Local::now());
                            write_lines(&mut sink, lines);
                            continue;
                        }
                    };
                    let quit = cmd == UserCommand::Quit;
                    out.push(rooms.address(cmd), true);
                    if quit {
                        // Nothing is read after a leave, not even the rest of a paste.
                        input_open = false;
                        break;
                    }
                }
            }
        }
    }
}

/// The hub's ui: it reads no input, and renders events until the hub stops.
pub async fn run_log(format: Format, mut events: mpsc::Receiver<ChatEvent>) {
    let mut sink = Sink::Stdout;
    while let Some(event) = events.recv().await {
        write_lines(
            &mut sink,
            render::render(&event, format, chrono::Local::now()),
        );
    }
}

/// Prints a hub's `ready` before a participant in the same process takes the screen: as the
/// hub's log does in human mode, as a `hub` object in JSON (the `ready` that follows is the
/// participant's).
pub fn print_hub_ready(json: bool, event: &ChatEvent) {
    let lines = if json {
        match event {
            ChatEvent::Ready { peer, listen, .. } => {
                vec![serde_json::json!({"type": "hub", "peer": peer, "listen": listen}).to_string()]
            }
            _ => Vec::new(),
        }
    } else {
        render::render(event, Format::HubLog, chrono::Local::now())
    };
    write_lines(&mut Sink::Stdout, lines);
}
