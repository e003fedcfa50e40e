//! Keyboard and pipe input: lines become typed commands ([`parse_line`]), read on a thread of
//! their own and handed to the async world over a bounded channel.
//!
//! With a terminal on stdin (and human output) a line editor owns the terminal: cursor keys,
//! history, and incoming chat printed above the line being typed. Otherwise plain lines are read,
//! with no prompt and no escape codes.

use std::io::{BufRead, Read};

use rustyline::error::ReadlineError;
use rustyline::{DefaultEditor, ExternalPrinter};
use tokio::sync::mpsc;

use crate::core::command::{RoomTarget, UserCommand};
use crate::core::event::{NameError, RoomName, Text};
use crate::private::ticket::Ticket;

/// Longest line read from a pipe; longer lines are refused, not cut.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Most lines in one paste into the line editor; a longer paste is refused whole, with a
/// message (a paste that long is more likely a mistake than a message for the room).
pub const MAX_PASTE_LINES: usize = 64;

/// What one input line means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Something for the room.
    Command(UserCommand),
    /// `/help`.
    Help,
    /// A blank line: ignored.
    Empty,
    /// Refused, with the reason to show; nothing is sent.
    Invalid(String),
}

/// The commands, for `/help`.
pub const HELP: &[(&str, &str)] = &[
    ("/who", "list the participants with their short peer ids"),
    (
        "/history [N]",
        "print the transcript in total (Lamport) order, or its last N events",
    ),
    (
        "/search WORDS",
        "find stored messages of this room with every word, newest first",
    ),
    (
        "/invite",
        "print a ticket that lets someone into this private room (share it only with them)",
    ),
    (
        "/join ROOM",
        "open another room (a name, or an invite ticket) beside yours, or go back to one you are in",
    ),
    (
        "/part",
        "leave this room, staying in the others (the last one: as /quit)",
    ),
    ("/rooms", "list the rooms you are in"),
    (
        "/peers",
        "list whom you are connected to, and whether you reach a hub",
    ),
    ("/addr", "print the addresses others can --connect to"),
    ("/help", "show this help"),
    ("/quit", "leave the room and exit (also Ctrl-D, Ctrl-C)"),
    ("//text", "send a message that starts with '/'"),
];

/// `/join ARG`: a ticket (it starts as every ticket does: `chitty1`) or a room name, as typed
/// or as the screen shows it (`#name`; `chitty-chat` is the default room).
fn parse_join(arg: &str) -> Parsed {
    if arg == crate::core::name::BASE_TOPIC {
        return Parsed::Command(UserCommand::Join(RoomTarget::Public(RoomName::lobby())));
    }
    let arg = arg.strip_prefix('#').unwrap_or(arg);
    let target = if Ticket::starts_like_one(arg) {
        match Ticket::decode(arg) {
            Ok(t) => RoomTarget::Private(Box::new(t)),
            Err(e) => return Parsed::Invalid(format!("/join: {e}")),
        }
    } else {
        match RoomName::new(arg) {
            Ok(name) => RoomTarget::Public(name),
            Err(e) => return Parsed::Invalid(format!("/join: {e}")),
        }
    };
    Parsed::Command(UserCommand::Join(target))
}

/// Whether `text` holds a whole invite ticket (a word that decodes as one).
fn holds_ticket(text: &str) -> bool {
    text.split_whitespace()
        .any(|w| Ticket::starts_like_one(w) && Ticket::decode(w).is_ok())
}

/// Parses one line (without its line ending).
pub fn parse_line(line: &str) -> Parsed {
    if line.trim().is_empty() {
        return Parsed::Empty;
    }
    let text = match line.strip_prefix('/') {
        Some(rest) if rest.starts_with('/') => rest,
        Some(rest) => {
            let mut words = rest.split_whitespace();
            let name = words.next().unwrap_or_default();
            let cmd = match name {
                "quit" => Parsed::Command(UserCommand::Quit),
                "who" => Parsed::Command(UserCommand::Who),
                "history" => {
                    let last = match (words.next(), words.next()) {
                        (None, _) => None,
                        (Some(n), None) => match n.parse::<usize>() {
                            Ok(n) if n > 0 => Some(n),
                            _ => {
                                return Parsed::Invalid(format!(
                                    "/history takes a number of events (1 or more), not {n:?}"
                                ));
                            }
                        },
                        (Some(_), Some(_)) => {
                            return Parsed::Invalid(
                                "/history takes at most one argument, a number of events"
                                    .to_owned(),
                            );
                        }
                    };
                    return Parsed::Command(UserCommand::History(last));
                }
                "search" => {
                    let words: Vec<String> = words.map(str::to_owned).collect();
                    if words.is_empty() {
                        return Parsed::Invalid(
                            "/search takes the words to look for: /search WORDS".to_owned(),
                        );
                    }
                    return Parsed::Command(UserCommand::Search(words));
                }
                "join" => {
                    let args: Vec<&str> = words.collect();
                    // A ticket copied off a screen that wrapped it comes in pieces: one ticket
                    // has no spaces, so the pieces are put back together.
                    let arg = match args.as_slice() {
                        [one] => (*one).to_owned(),
                        [first, ..] if Ticket::starts_like_one(first) => args.concat(),
                        _ => {
                            return Parsed::Invalid(
                                "/join takes one room: a name, or an invite ticket (chitty1...)"
                                    .to_owned(),
                            );
                        }
                    };
                    return parse_join(&arg);
                }
                "part" => Parsed::Command(UserCommand::Part),
                "rooms" => Parsed::Command(UserCommand::Rooms),
                "peers" => Parsed::Command(UserCommand::Peers),
                "addr" => Parsed::Command(UserCommand::Addresses),
                "invite" => Parsed::Command(UserCommand::Invite),
                "help" => Parsed::Help,
                _ => {
                    return Parsed::Invalid(format!(
                        "unknown command /{name}; /help lists the commands (start a message with // to send a leading /)"
                    ));
                }
            };
            if words.next().is_some() {
                return Parsed::Invalid(format!("/{name} takes no arguments"));
            }
            return cmd;
        }
        None => line,
    };
    if holds_ticket(text) {
        return Parsed::Invalid(
            "that line holds an invite ticket, a key to a private room: it is not sent to a room (everyone here could get in with it); /join TICKET joins its room, and tickets are shared privately"
                .to_owned(),
        );
    }
    match Text::new(text) {
        Ok(t) => Parsed::Command(UserCommand::Say(t)),
        Err(
            e @ (NameError::TooLong { .. } | NameError::Control { .. } | NameError::Bidi { .. }),
        ) => Parsed::Invalid(format!("{e}; not sent")),
        Err(e) => Parsed::Invalid(format!("{e}")),
    }
}

/// One thing read from the user.
#[derive(Debug)]
pub enum Input {
    /// A parsed line.
    Line(Parsed),
    /// The lines of one multi-line paste, in order, handed over together (one slot of the
    /// input channel, so that a paste is never cut in the middle by a full channel).
    Paste(Vec<Parsed>),
    /// End of input, or Ctrl-C / Ctrl-D at the prompt: leave.
    End,
}

/// Where rendered lines go: stdout, or above the line editor's prompt.
pub enum Sink {
    /// Plain stdout.
    Stdout,
    /// The line editor's printer, which redraws the prompt below each line.
    Editor(Box<dyn ExternalPrinter + Send>),
}

/// Starts reading input on its own thread; lines arrive on `tx`. Returns where output must be
/// written so that it does not garble the line being typed.
pub fn spawn(tx: mpsc::Sender<Input>, line_editor: bool) -> Sink {
    if line_editor {
        match DefaultEditor::new() {
            Ok(mut editor) => match editor.create_external_printer() {
                Ok(printer) => {
                    std::thread::spawn(move || read_editor(editor, tx));
                    return Sink::Editor(Box::new(printer));
                }
                Err(e) => tracing::warn!(error = %e, "no line editor printer; reading plain lines"),
            },
            Err(e) => tracing::warn!(error = %e, "no line editor; reading plain lines"),
        }
    }
    std::thread::spawn(move || read_plain(std::io::stdin().lock(), tx));
    Sink::Stdout
}

/// Whether `input` ends the reading: end of input, or `/quit` (alone or in a paste).
fn is_last(input: &Input) -> bool {
    let quit = |p: &Parsed| *p == Parsed::Command(UserCommand::Quit);
    match input {
        Input::End => true,
        Input::Line(p) => quit(p),
        Input::Paste(lines) => lines.iter().any(quit),
    }
}

/// What the line editor read: one line, or the lines of a multi-line paste (rustyline hands a
/// bracketed paste over with its line breaks as `\n`). Blank lines of a paste are dropped.
pub fn editor_input(text: &str) -> Input {
    if !text.contains(['\n', '\r']) {
        return Input::Line(parse_line(text));
    }
    let lines: Vec<&str> = text
        .split(['\n', '\r'])
        .filter(|l| !l.trim().is_empty())
        .collect();
    match lines.len() {
        0 => Input::Line(Parsed::Empty),
        1 => Input::Line(parse_line(lines[0])),
        n if n > MAX_PASTE_LINES => Input::Line(Parsed::Invalid(format!(
            "a paste of {n} lines is more than {MAX_PASTE_LINES}; nothing sent"
        ))),
        _ => Input::Paste(lines.into_iter().map(parse_line).collect()),
    }
}

/// Sends `input`; false when the ui is gone or the user quit, so reading should stop.
fn forward(tx: &mpsc::Sender<Input>, input: Input) -> bool {
    let stop = is_last(&input);
    tx.blocking_send(input).is_ok() && !stop
}

/// The line editor's thread must never block outside `readline`: rustyline's printer waits for
/// `readline` to draw what the ui prints, and the ui may be waiting for this thread. So a line
/// that finds the channel full is refused on the spot, visibly.
fn forward_now(tx: &mpsc::Sender<Input>, input: Input) -> bool {
    let stop = is_last(&input);
    match tx.try_send(input) {
        Ok(()) => !stop,
        Err(mpsc::error::TrySendError::Full(Input::End)) => {
            // Leaving must not be lost: wait for room, the ui is draining.
            let _ = tx.blocking_send(Input::End);
            false
        }
        Err(mpsc::error::TrySendError::Full(input)) => {
            // Printed while `readline` is not running: the terminal is in its usual mode.
            println!(
                "Error: typing faster than the chat can send; not sent: {}",
                describe(&input)
            );
            !stop
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

/// Names what was refused, so that nothing is lost without the user knowing which.
fn describe(input: &Input) -> String {
    match input {
        Input::Line(Parsed::Command(UserCommand::Say(text))) => format!("{:?}", text.as_str()),
        Input::Paste(lines) => format!("a paste of {} lines", lines.len()),
        _ => "that line".to_owned(),
    }
}

fn read_editor(mut editor: DefaultEditor, tx: mpsc::Sender<Input>) {
    loop {
        let input = match editor.readline("> ") {
            Ok(text) => {
                for line in text.split(['\n', '\r']) {
                    if !line.trim().is_empty() {
                        let _ = editor.add_history_entry(line);
                    }
                }
                editor_input(&text)
            }
            Err(ReadlineError::Interrupted | ReadlineError::Eof) => Input::End,
            Err(e) => {
                tracing::warn!(error = %e, "reading the terminal failed");
                Input::End
            }
        };
        if !forward_now(&tx, input) {
            return;
        }
    }
}

/// Reads lines from a pipe or file. Invalid UTF-8 and over-long lines are refused one by one.
pub fn read_plain(mut reader: impl BufRead, tx: mpsc::Sender<Input>) {
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf);
        let parsed = match read {
            Ok(0) => {
                let _ = forward(&tx, Input::End);
                return;
            }
            Ok(_) if buf.len() > MAX_LINE_BYTES && buf.last() != Some(&b'\n') => {
                // Skip the rest of the over-long line.
                let mut rest = Vec::new();
                let _ = reader.read_until(b'\n', &mut rest);
                Parsed::Invalid(format!("line longer than {MAX_LINE_BYTES} bytes; not sent"))
            }
            Ok(_) => {
                while matches!(buf.last(), Some(b'\n' | b'\r')) {
                    buf.pop();
                }
                match std::str::from_utf8(&buf) {
                    Ok(line) => parse_line(line),
                    Err(_) => Parsed::Invalid("line is not valid UTF-8; not sent".to_owned()),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading stdin failed");
                let _ = forward(&tx, Input::End);
                return;
            }
        };
        if !forward(&tx, Input::Line(parsed)) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn say(s: &str) -> Parsed {
        Parsed::Command(UserCommand::Say(Text::new(s).unwrap()))
    }

    /// `/join` takes a name as typed or shown (`#b`), the default room by its topic, and a
    /// ticket whole or in the pieces a wrapped screen line gives; a line holding a ticket is
    /// not sent as a message.
    #[test]
    fn join_names_tickets_and_tickets_kept_out_of_messages() {
        let public = |n: &str| {
            Parsed::Command(UserCommand::Join(RoomTarget::Public(
                RoomName::new(n).unwrap(),
            )))
        };
        assert_eq!(parse_line("/join b"), public("b"));
        assert_eq!(parse_line("/join #b"), public("b"));
        assert_eq!(
            parse_line("/join chitty-chat"),
            Parsed::Command(UserCommand::Join(RoomTarget::Public(RoomName::lobby())))
        );
        assert!(matches!(parse_line("/join a b"), Parsed::Invalid(_)));
        assert!(matches!(parse_line("/join"), Parsed::Invalid(_)));
        let ticket = crate::private::ticket::Ticket {
            secret: crate::private::RoomSecret::from_bytes([7; 32]),
            name: None,
            addrs: Vec::new(),
        }
        .encode();
        let (head, tail) = ticket.split_at(20);
        for typed in [format!("/join {ticket}"), format!("/join {head}   {tail}")] {
            assert!(
                matches!(
                    parse_line(&typed),
                    Parsed::Command(UserCommand::Join(RoomTarget::Private(_)))
                ),
                "{typed}"
            );
        }
        assert!(matches!(
            parse_line(&format!("here: {ticket}")),
            Parsed::Invalid(m) if m.contains("invite ticket")
        ));
        assert_eq!(parse_line("chitty1 is a word"), say("chitty1 is a word"));
    }

    #[test]
    fn commands_and_messages() {
        assert_eq!(parse_line("/quit"), Parsed::Command(UserCommand::Quit));
        assert_eq!(parse_line("/who "), Parsed::Command(UserCommand::Who));
        assert_eq!(
            parse_line("/history"),
            Parsed::Command(UserCommand::History(None))
        );
        assert_eq!(
            parse_line("/history 5"),
            Parsed::Command(UserCommand::History(Some(5)))
        );
        assert!(matches!(parse_line("/history 0"), Parsed::Invalid(_)));
        assert!(matches!(parse_line("/history x"), Parsed::Invalid(_)));
        assert!(matches!(parse_line("/history 1 2"), Parsed::Invalid(_)));
        assert_eq!(parse_line("/peers"), Parsed::Command(UserCommand::Peers));
        assert_eq!(parse_line("/addr"), Parsed::Command(UserCommand::Addresses));
        assert_eq!(parse_line("/help"), Parsed::Help);
        assert_eq!(parse_line("hello"), say("hello"));
        assert_eq!(parse_line("//etc/passwd"), say("/etc/passwd"));
        assert_eq!(parse_line("   "), Parsed::Empty);
        assert_eq!(parse_line(""), Parsed::Empty);
    }

    #[test]
    fn bad_lines_are_refused_with_a_reason() {
        let Parsed::Invalid(m) = parse_line("/dance") else {
            panic!()
        };
        assert!(m.contains("unknown command /dance"), "{m}");
        let Parsed::Invalid(m) = parse_line("/who all") else {
            panic!()
        };
        assert!(m.contains("takes no arguments"), "{m}");
        let Parsed::Invalid(m) = parse_line(&"x".repeat(129)) else {
            panic!()
        };
        assert!(m.contains("129 characters; the limit is 128"), "{m}");
        assert_eq!(parse_line(&"é".repeat(128)), say(&"é".repeat(128)));
        let Parsed::Invalid(m) = parse_line("\u{1b}[31mred") else {
            panic!()
        };
        assert!(m.contains("control character"), "{m}");
        let Parsed::Invalid(m) = parse_line("abc \u{202E}fed") else {
            panic!()
        };
        assert!(
            m.contains("bidirectional control character (U+202E)") && m.ends_with("not sent"),
            "{m}"
        );
    }

    proptest::proptest! {
        /// Any line parses to something, without panicking; a message never carries a control
        /// character, a bidirectional control or more than 128 characters.
        #[test]
        fn any_line_parses_without_panicking(line in "\\PC{0,300}|[\\x00-\\x7f]{0,200}") {
            if let Parsed::Command(UserCommand::Say(t)) = parse_line(&line) {
                proptest::prop_assert!(t.as_str().chars().count() <= 128);
                proptest::prop_assert!(!t.as_str().chars().any(char::is_control));
                proptest::prop_assert!(!t.as_str().chars().any(crate::core::event::is_bidi_control));
            }
        }
    }

    /// A multi-line paste becomes its lines, in order, blank ones dropped; each line is judged
    /// on its own; a paste longer than the limit is refused whole.
    #[test]
    fn a_paste_becomes_its_lines() {
        let Input::Paste(lines) = editor_input("one\ntwo\n\n  \r\nthree\n") else {
            panic!()
        };
        assert_eq!(lines, vec![say("one"), say("two"), say("three")]);
        let Input::Paste(lines) = editor_input(&format!("ok\n{}", "x".repeat(129))) else {
            panic!()
        };
        assert_eq!(lines[0], say("ok"));
        assert!(matches!(&lines[1], Parsed::Invalid(m) if m.contains("the limit is 128")));
        assert!(matches!(editor_input("one\n"), Input::Line(p) if p == say("one")));
        assert!(matches!(editor_input("hello"), Input::Line(p) if p == say("hello")));
        let many = vec!["x"; MAX_PASTE_LINES + 1].join("\n");
        assert!(
            matches!(editor_input(&many), Input::Line(Parsed::Invalid(m)) if m.contains("nothing sent"))
        );
        let Input::Paste(lines) = editor_input("one\n/quit\ntwo") else {
            panic!()
        };
        assert!(is_last(&Input::Paste(lines)));
    }

    #[test]
    fn plain_reader_refuses_bad_utf8_and_long_lines_and_keeps_going() {
        let mut data = b"one\r\n\xff\xfe\n".to_vec();
        data.extend(vec![b'a'; MAX_LINE_BYTES + 10]);
        data.extend(b"\ntwo");
        let (tx, mut rx) = mpsc::channel(16);
        read_plain(std::io::Cursor::new(data), tx);
        let mut got = vec![];
        while let Ok(i) = rx.try_recv() {
            got.push(format!("{i:?}"));
        }
        assert_eq!(got.len(), 5, "{got:?}");
        assert!(got[0].contains("\"one\""));
        assert!(got[1].contains("UTF-8"));
        assert!(got[2].contains("longer than"));
        assert!(got[3].contains("\"two\""));
        assert_eq!(got[4], "End");
    }
}
