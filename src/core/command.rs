//! What a user can ask of the chat: the ui parses lines into these, the room and the network
//! layer answer them.

use super::event::Text;

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
    /// Leave the room.
    Quit,
}
