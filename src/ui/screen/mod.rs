//! The full-screen chat: a renderer of the same [`ChatEvent`] stream as the line, JSON and hub
//! renderers, drawn with ratatui on crossterm when stdin and stdout are a terminal (and neither
//! `--json` nor `--plain` is given).
//!
//! - [`state`]: what is shown (scrollback, who is here, the input line), from events and keys;
//! - [`view`]: drawing it, at any terminal size;
//! - [`editor`]: the input line.
//!
//! Keys are read on a thread of their own (crossterm's `read` blocks) and handed over a bounded
//! channel, so a burst of chat never delays typing and typing never garbles the chat: the screen
//! is redrawn whole, from state, after each batch of events.

pub mod editor;
pub mod state;
pub mod view;

#[cfg(test)]
mod tests;

use std::io::Write;
use std::time::Duration;

use crossterm::event::{
    DisableBracketedPaste, DisableFocusChange, DisableMouseCapture, EnableBracketedPaste,
    EnableFocusChange, EnableMouseCapture, Event,
};
use crossterm::execute;
use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::mpsc;

use crate::core::command::{Command, UserCommand};
use crate::core::event::{ChatEvent, Update};
use crate::logging::Notices;
use state::Screen;

/// Terminal events (keys, pastes, resizes) read but not yet taken.
pub const KEYS_CAP: usize = 256;
/// Events taken in one go before the screen is drawn again: a burst is drawn once, not per line.
pub const BATCH: usize = 256;
/// How often the screen asks who is here and how they are reached, for the side pane, when
/// nothing else made it ask (joins, leaves and connection changes do, at once): a safety net,
/// rare enough that a node at rest is not woken for it.
pub const POLL_EVERY: Duration = Duration::from_secs(30);

/// The terminal in the screen's modes while it lives; back as it was when dropped.
pub struct Guard;

impl Guard {
    /// Puts the terminal in the screen's modes: raw, the alternate screen, bracketed paste,
    /// mouse and focus reports. On an error, what was changed is changed back (the drop).
    pub fn enter() -> std::io::Result<Guard> {
        crossterm::terminal::enable_raw_mode()?;
        super::terminal::screen_on(true);
        let guard = Guard;
        execute!(
            std::io::stdout(),
            EnterAlternateScreen,
            EnableBracketedPaste,
            EnableMouseCapture,
            EnableFocusChange
        )?;
        Ok(guard)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = execute!(
            std::io::stdout(),
            DisableFocusChange,
            DisableMouseCapture,
            DisableBracketedPaste,
            LeaveAlternateScreen,
            crossterm::cursor::Show
        );
        let _ = crossterm::terminal::disable_raw_mode();
        super::terminal::screen_on(false);
    }
}

/// Reads the terminal's events on a thread of its own until the screen is gone.
fn spawn_reader(tx: mpsc::Sender<Event>) {
    std::thread::spawn(move || {
        loop {
            match crossterm::event::read() {
                Ok(ev) => {
                    if tx.blocking_send(ev).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "reading the terminal failed");
                    return;
                }
            }
        }
    });
}

/// Runs the chat screen on the terminal `guard` holds until the network layer has finished (it
/// closes `events` after our leave), then hands the terminal back and prints our leave.
pub async fn run(
    guard: Guard,
    commands: mpsc::Sender<Command>,
    mut events: mpsc::Receiver<Update>,
    notices: Notices,
) {
    let mut terminal = match Terminal::new(CrosstermBackend::new(std::io::stdout())) {
        Ok(t) => t,
        Err(e) => {
            // Cannot happen with crossterm (it asks nothing of the terminal here); said anyway.
            tracing::warn!(error = %e, "the chat screen cannot start");
            return;
        }
    };
    let (key_tx, mut keys) = mpsc::channel(KEYS_CAP);
    spawn_reader(key_tx);
    let mut screen = Screen::default();
    // The convention of no-color.org: set and not empty.
    screen.no_colour = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let mut out = super::Outgoing::new(commands);
    let mut poll = tokio::time::interval(POLL_EVERY);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut page = 1usize;
    let mut dirty = true;
    let mut keys_open = true;
    loop {
        if dirty {
            let drawn = terminal.draw(|f| {
                view::draw(f, &mut screen);
                page = usize::from(view::areas(f.area(), screen.pane).conversation.height);
            });
            if let Err(e) = drawn {
                tracing::debug!(error = %e, "drawing failed: the terminal is gone");
                out.push(Command::plain(UserCommand::Quit), true);
            }
            dirty = false;
        }
        let send_slot = out.slot();
        let ready = screen.me.is_some();
        let mut typed: Vec<Command> = Vec::new();
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => {
                    let now = chrono::Local::now();
                    screen.on_update(&event, now, view::rows_of);
                    // A burst is taken whole, then drawn once.
                    for _ in 0..BATCH {
                        match events.try_recv() {
                            Ok(event) => screen.on_update(&event, now, view::rows_of),
                            Err(_) => break,
                        }
                    }
                    dirty = true;
                }
                None => break,
            },
            Some(text) = notices.recv() => {
                let notice = Update { room: None, event: ChatEvent::Notice(text) };
                screen.on_update(&notice, chrono::Local::now(), view::rows_of);
                dirty = true;
            }
            key = keys.recv(), if keys_open && out.len() < super::BACKLOG_CAP => {
                let now = chrono::Local::now();
                typed = match key {
                    Some(Event::Key(k)) => screen.on_key(k, page, now, view::rows_of),
                    Some(Event::Paste(text)) => screen.on_paste(&text, now, view::rows_of),
                    Some(Event::Mouse(m)) => { screen.on_mouse(m); Vec::new() }
                    Some(Event::FocusGained) => { screen.focus(true); Vec::new() }
                    Some(Event::FocusLost) => { screen.focus(false); Vec::new() }
                    Some(Event::Resize(..)) => Vec::new(),
                    None => {
                        // The terminal is gone (closed, or unreadable): leave.
                        keys_open = false;
                        vec![Command::plain(UserCommand::Quit)]
                    }
                };
                dirty = true;
            }
            _ = poll.tick(), if ready => {
                for cmd in screen.poll() {
                    out.push(cmd, false);
                }
            }
            permit = send_slot, if !out.is_empty() => {
                out.send(permit, |cmd, by_user| screen.sent(cmd, by_user));
            }
        }
        for cmd in typed {
            let quit = cmd.cmd == UserCommand::Quit;
            out.push(cmd, true);
            if quit {
                // Nothing is read after a leave, not even the rest of a paste.
                keys_open = false;
                break;
            }
        }
        // One poll at a time: a burst of joins asks once.
        if screen.poll_due && ready && out.is_open() && !out.has_own() {
            for cmd in screen.poll() {
                out.push(cmd, false);
            }
        }
    }
    drop(terminal);
    drop(guard);
    let mut stdout = std::io::stdout().lock();
    for line in std::mem::take(&mut screen.farewell) {
        let _ = writeln!(stdout, "{line}");
    }
    let _ = stdout.flush();
}
