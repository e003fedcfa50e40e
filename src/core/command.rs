//! What a user can ask of the chat: the ui parses lines into these, the room and the network
//! layer answer them.

use super::event::{RoomName, Text};
use crate::private::ticket::Ticket;

/// A room to open beside the ones we are in (`/join`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomTarget {
    /// A public room, by name.
    Public(RoomName),
    /// A private room, by invite ticket.
    Private(Box<Ticket>),
}

impl RoomTarget {
    /// The room's gossipsub topic: what commands for it are addressed to.
    pub fn topic(&self) -> String {
        match self {
            RoomTarget::Public(name) => name.topic(),
            RoomTarget::Private(ticket) => ticket.secret.keys().topic().to_owned(),
        }
    }
}

/// A command and the room it is for: the topic of one of ours, or `None` for the node as a
/// whole (and for room commands, the first room we are in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The room's gossipsub topic.
    pub room: Option<String>,
    /// What is asked.
    pub cmd: UserCommand,
}

impl Command {
    /// `cmd` for the node, or the first room.
    pub fn plain(cmd: UserCommand) -> Self {
        Self { room: None, cmd }
    }
}

/// What a user asked for that needs the room's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCommand {
    /// Send a message.
    Say(Text),
    /// Show the participants.
    Who,
    /// Show the transcript in total order: all of it, or its last N events.
    History(Option<usize>),
    /// `/search WORDS`: stored messages of the room with every word, newest first.
    Search(Vec<String>),
    /// Show whom we are connected to (the network layer answers).
    Peers,
    /// Show our addresses again (the network layer answers).
    Addresses,
    /// `/invite`: a fresh ticket for our private room (the network layer answers).
    Invite,
    /// `/join ROOM` or `/join TICKET`: open that room too (or, already in it, say so again, so
    /// the ui shows it).
    Join(RoomTarget),
    /// `/part`: leave this room, staying in the others (the last one: as `/quit`).
    Part,
    /// `/rooms`: the rooms we are in.
    Rooms,
    /// Leave every room, and exit.
    Quit,
}
