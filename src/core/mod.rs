//! The chat core: Lamport clock, events, roster and transcript, as a pure state machine.
//!
//! Nothing in here touches a socket, a terminal or the system clock, so whole conversations can
//! be run in unit tests. See [`room::Room`] for the entry point, and [`ledger::Ledger`] for one
//! room's validated state, which a participant's room and a hub share (docs/decisions/0010).

pub mod clock;
pub mod command;
pub mod event;
pub mod hello;
pub mod ledger;
pub mod limit;
pub mod name;
pub mod room;
pub mod roster;
pub mod sign;
pub mod status;
pub mod sync;
pub mod time;
pub mod transcript;
pub mod verdict;
