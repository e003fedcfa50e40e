//! The participant's sub-machines: small IO-less pieces of the node's actor
//! ([`crate::net::event_loop`]), each with `handle_*` calls given `now`, a `poll_timeout`, and
//! unit tests without a swarm. The actor routes swarm events to them and sleeps until the
//! earliest of their deadlines.
//!
//! - [`dialer`]: the `--connect` targets and the neighbours, and when to dial them.
//! - [`hub_client`]: relayed address, registration and discovery on each hub of our room.
//! - [`leaving`]: our leave out, and the wait for peers to hang up.
//! - [`stall`]: noticing that the node itself was stopped or starved.
//! - [`outbox`]: our events waiting for a subscribed peer.

pub mod dialer;
pub mod hub_client;
pub mod leaving;
pub mod outbox;
pub mod stall;
