//! The user interface: reads the keyboard or a pipe, renders [`ChatEvent`]s. It knows nothing of
//! libp2p: it sends [`UserCommand`]s down and receives [`ChatEvent`]s up.
//!
//! - [`input`]: lines to commands, on a thread of their own.
//! - [`render`]: human and JSON renderers.

pub mod input;
pub mod render;

use std::io::Write;

use tokio::sync::mpsc;

use crate::core::event::ChatEvent;
use crate::core::room::UserCommand;
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

/// Runs the ui until the network layer has finished (it closes `events` after our leave).
/// `line_editor` asks for the interactive line editor (stdin is a terminal).
pub async fn run(
    format: Format,
    line_editor: bool,
    commands: mpsc::Sender<UserCommand>,
    mut events: mpsc::Receiver<ChatEvent>,
) {
    let (input_tx, mut input_rx) = mpsc::channel(INPUT_CAP);
    let mut sink = input::spawn(input_tx, line_editor && format == Format::Human);
    let mut commands = Some(commands);
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => write_lines(&mut sink, render::render(&event, format, chrono::Local::now())),
                None => return,
            },
            input = input_rx.recv(), if commands.is_some() => {
                let cmd = match input {
                    Some(Input::Line(Parsed::Command(cmd))) => Some(cmd),
                    Some(Input::Line(Parsed::Help)) => {
                        write_lines(&mut sink, render::help(format, chrono::Local::now()));
                        None
                    }
                    Some(Input::Line(Parsed::Empty)) => None,
                    Some(Input::Line(Parsed::Invalid(msg))) => {
                        let lines = render::render(&ChatEvent::Error(msg), format, chrono::Local::now());
                        write_lines(&mut sink, lines);
                        None
                    }
                    Some(Input::End) | None => Some(UserCommand::Quit),
                };
                if let (Some(cmd), Some(tx)) = (cmd, &commands) {
                    let quit = cmd == UserCommand::Quit;
                    if tx.send(cmd).await.is_err() || quit {
                        // Dropping the sender after /quit: nothing more goes down.
                        commands = None;
                    }
                }
            }
        }
    }
}
