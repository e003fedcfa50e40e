//! The store: the signed events of the rooms a node takes part in (or a hub serves), on disk in
//! one SQLite database, so that history survives restarts (docs/decisions/0012). It sits behind
//! the actors: the core never sees it; a participant reads its room's tail once at start
//! ([`Store::tail`]) and hands every event it takes to a [`Writer`], a thread of its own that
//! writes them in batches, so that no write is ever on the delivery path.
//!
//! What is kept is exactly what was received: each event's signed envelope (for a private
//! room, ciphertext), with the few fields needed to order, bound and search it. Everything
//! read back is checked again as any page of history is.

mod db;
mod writer;

pub use db::{SCHEMA_VERSION, Store, StoreError, Stored};
pub use writer::{WRITE_BATCH_DELAY, Writer};

use std::path::{Path, PathBuf};

/// The database of a participant named `user` under the data directory `dir`:
/// `dir/history/NAME.db`, the name spelled as its key file is (one database per name, so two
/// participants on one machine never share one).
pub fn participant_path(dir: &Path, user: &str) -> PathBuf {
    dir.join("history")
        .join(format!("{}.db", crate::identity::file_stem(user)))
}

/// The database of a hub under the data directory `dir`.
pub fn hub_path(dir: &Path) -> PathBuf {
    dir.join("relay.db")
}
