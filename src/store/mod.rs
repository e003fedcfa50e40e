//! The store: the signed events of the rooms a node takes part in (or a hub serves), on disk in
//! one SQLite database, so that history survives restarts (docs/decisions/0012). It sits behind
//! the actors: the core never sees it. An actor reads back its room's newest events and what is
//! held of the rest once at start ([`Kept::read_back`]), hands every event it takes to a
//! [`Writer`], a thread of its own that writes them in batches, so that no write is ever on the
//! delivery path, and reads what memory no longer holds when a peer lacks it ([`Kept::cold`])
//! or the user asks for it (`/history`), on a connection of its own.
//!
//! What is kept is exactly what was received: each event's signed envelope (for a private
//! room, ciphertext), with the few fields needed to order, bound and search it. Everything
//! read back is checked again as any page of history is.

mod db;
mod writer;

pub use db::{SCHEMA_VERSION, Store, StoreError, Stored};
pub use writer::{WRITE_BATCH_DELAY, Writer};

use std::path::{Path, PathBuf};

use crate::core::event::{OrderKey, SignedEvent};
use crate::core::transcript::{ColdQuery, Holding, MEMORY_EVENTS};

/// A store in an actor's use: the thread that writes, and a connection of the actor's own that
/// reads (WAL: it sees every batch committed while the thread writes the next).
#[derive(Debug)]
pub struct Kept {
    reader: Store,
    writer: Writer,
}

impl Kept {
    /// Starts the writer's thread on `store`, keeping `keep` events per room, and opens a
    /// reader beside it.
    pub fn open(store: Store, keep: usize) -> Result<Kept, StoreError> {
        let reader = Store::open_read_only(store.path())?;
        Ok(Kept {
            reader,
            writer: Writer::spawn(store, keep),
        })
    }

    /// The writer's thread.
    pub fn writer(&mut self) -> &mut Writer {
        &mut self.writer
    }

    /// What a room starts with: its newest events for memory (at most [`MEMORY_EVENTS`]),
    /// and what the store holds of every author's.
    pub fn read_back(&self, topic: &str) -> Result<(Vec<SignedEvent>, Vec<Holding>), StoreError> {
        let events = self.reader.tail_events(topic, MEMORY_EVENTS)?;
        let holds = self.reader.holdings(topic)?;
        Ok((events, holds))
    }

    /// The events of room `topic` a sync answer asks of the store; none, with a warning, when
    /// it cannot be read (the asker asks again).
    pub fn cold(&self, topic: &str, q: &ColdQuery) -> Vec<SignedEvent> {
        self.reader.cold(topic, q).unwrap_or_else(|e| {
            tracing::warn!(topic, error = %e, "stored history cannot be read for a peer");
            Vec::new()
        })
    }

    /// The newest `limit` stored events of `topic` before `below`, oldest first.
    pub fn before(
        &self,
        topic: &str,
        below: Option<&OrderKey>,
        limit: usize,
    ) -> Result<Vec<SignedEvent>, StoreError> {
        self.reader.before(topic, below, limit)
    }

    /// Writes what is left and waits for the writer's thread to end.
    pub fn close(self) {
        self.writer.close();
    }
}

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
