//! The database itself: schema, migrations, reads and writes. Synchronous; the participant's
//! and hub's actors use it through [`super::Writer`] for writes.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, params};

use crate::core::event::{Body, OrderKey, SignedEvent};
use crate::core::transcript::{ColdQuery, Holding};

/// The schema this build writes. Older databases are migrated on open; a newer one is refused.
pub const SCHEMA_VERSION: i64 = 2;

/// Each migration takes the database from version `i` to `i + 1`.
const MIGRATIONS: [&str; 2] = [
    // 1: rooms, their events (the signed envelope as received), and a full-text index of the
    // messages' text (external content: the text is kept once, in `events`).
    "CREATE TABLE rooms (
         id INTEGER PRIMARY KEY,
         topic TEXT NOT NULL UNIQUE
     );
     CREATE TABLE events (
         id INTEGER PRIMARY KEY,
         room INTEGER NOT NULL REFERENCES rooms (id),
         lamport INTEGER NOT NULL,
         author BLOB NOT NULL,
         seq INTEGER NOT NULL,
         text TEXT,
         envelope BLOB NOT NULL,
         UNIQUE (room, author, seq)
     );
     CREATE INDEX events_order ON events (room, lamport, author, seq);
     CREATE VIRTUAL TABLE texts USING fts5 (text, content = 'events', content_rowid = 'id');
     CREATE TRIGGER events_indexed AFTER INSERT ON events WHEN new.text IS NOT NULL BEGIN
         INSERT INTO texts (rowid, text) VALUES (new.id, new.text);
     END;
     CREATE TRIGGER events_unindexed AFTER DELETE ON events WHEN old.text IS NOT NULL BEGIN
         INSERT INTO texts (texts, rowid, text) VALUES ('delete', old.id, old.text);
     END;",
    // 2: the full-text index is written once per batch (`Store::append`), not by a trigger per
    // row: a third of the cost per event (docs/PERFORMANCE.md, "History on disk").
    "DROP TRIGGER events_indexed;",
];

/// Why the store cannot be used. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the database.
    #[error(
        "history database {path} is in use by another chitty-node; stop that one, or give another --data-dir"
    )]
    Locked {
        /// The database.
        path: PathBuf,
    },
    /// Not a database, or a damaged one.
    #[error(
        "history database {path} is damaged ({why}); move it away (peers give the history back on the next start) or run with --no-store"
    )]
    Damaged {
        /// The database.
        path: PathBuf,
        /// What SQLite said.
        why: String,
    },
    /// Written by a newer chitty-node.
    #[error(
        "history database {path} has schema version {found}, newer than this chitty-node knows ({SCHEMA_VERSION}); use the newer chitty-node, or give another --data-dir"
    )]
    Newer {
        /// The database.
        path: PathBuf,
        /// Its version.
        found: i64,
    },
    /// The disk is full.
    #[error("history database {path}: the disk is full; free some space, or run with --no-store")]
    Full {
        /// The database.
        path: PathBuf,
    },
    /// It, or its directory, cannot be written.
    #[error(
        "history database {path} cannot be written ({why}); check the permissions of it and its directory, give another --data-dir, or run with --no-store"
    )]
    ReadOnly {
        /// The database.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
    /// No such database (`--export` of a name or hub that never stored anything).
    #[error(
        "no history database at {path}: nothing was stored there (check --data-dir, --username)"
    )]
    Missing {
        /// The database.
        path: PathBuf,
    },
    /// Anything else SQLite or the file system said.
    #[error("history database {path}: {why}")]
    Other {
        /// The database.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
}

impl StoreError {
    /// Reads an error of SQLite or of the file system into what the user can act on.
    fn of(path: &Path, e: impl Into<Cause>) -> Self {
        let path = path.to_owned();
        match e.into() {
            Cause::Sql(e) => {
                let why = e.to_string();
                match e.sqlite_error_code() {
                    Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                        StoreError::Locked { path }
                    }
                    Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
                        StoreError::Damaged { path, why }
                    }
                    Some(ErrorCode::DiskFull) => StoreError::Full { path },
                    Some(
                        ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied,
                    ) => StoreError::ReadOnly { path, why },
                    _ => StoreError::Other { path, why },
                }
            }
            Cause::Io(e) => match e.raw_os_error() {
                Some(libc::ENOSPC) => StoreError::Full { path },
                Some(libc::EACCES | libc::EROFS | libc::EPERM) => StoreError::ReadOnly {
                    path,
                    why: e.to_string(),
                },
                _ => StoreError::Other {
                    path,
                    why: e.to_string(),
                },
            },
        }
    }
}

/// An error of either kind.
enum Cause {
    Sql(rusqlite::Error),
    Io(std::io::Error),
}

impl From<rusqlite::Error> for Cause {
    fn from(e: rusqlite::Error) -> Self {
        Cause::Sql(e)
    }
}

impl From<std::io::Error> for Cause {
    fn from(e: std::io::Error) -> Self {
        Cause::Io(e)
    }
}

/// One event as stored: its room, its place in the total order, its text (for search) and
/// the envelope as received.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The room's topic.
    pub topic: String,
    /// The author's stamp.
    pub lamport: u64,
    /// The author's peer id bytes.
    pub author: Vec<u8>,
    /// The author's sequence number.
    pub seq: u64,
    /// A message's text.
    pub text: Option<String>,
    /// The signed envelope.
    pub envelope: Vec<u8>,
}

impl Stored {
    /// What is stored of `event`.
    pub fn of(event: &SignedEvent) -> Self {
        Stored {
            topic: event.topic.clone(),
            lamport: event.event.lamport,
            author: event.event.author.to_bytes(),
            seq: event.event.seq,
            // A private room's text stays sealed on disk too: not indexed, not searchable.
            text: match &event.event.body {
                Body::Message(t) if !crate::private::is_private_topic(&event.topic) => {
                    Some(t.as_str().to_owned())
                }
                _ => None,
            },
            envelope: event.bytes.to_vec(),
        }
    }
}

/// SQLite stores signed 64-bit integers: stamps are below 2^62, sequence numbers are kept bit
/// for bit (the order among one author's events of one stamp does not matter to the store).
fn int(v: u64) -> i64 {
    v as i64
}

/// An open database, and the lock that keeps every other process off it.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// An exclusive lock on `PATH.lock`, held while the store is open. (Not on the database
    /// file itself: SQLite's own POSIX locks on it would be dropped when any other descriptor
    /// of it closed.)
    _lock: Option<fs::File>,
}

impl Store {
    /// Opens (creating it and its directory if need be) the database at `path` for reading and
    /// writing, after taking its lock; migrates an older schema.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let err = |e: Cause| StoreError::of(path, e);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let mut b = fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.create(dir).map_err(|e| err(e.into()))?;
        }
        let lock_path = lock_path(path);
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| err(e.into()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    path: path.to_owned(),
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(err(e.into())),
        }
        let conn = Connection::open(path).map_err(|e| err(e.into()))?;
        let mut store = Store {
            conn,
            path: path.to_owned(),
            _lock: Some(lock),
        };
        store.prepare().map_err(|e| err(e.into()))?;
        store.migrate()?;
        Ok(store)
    }

    /// Opens an existing database for reading only (`--export`), beside a running node.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing {
                path: path.to_owned(),
            });
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StoreError::of(path, e))?;
        conn.busy_timeout(Duration::from_secs(5))
            .and_then(|()| conn.execute_batch("PRAGMA cache_size = -512;"))
            .map_err(|e| StoreError::of(path, e))?;
        let store = Store {
            conn,
            path: path.to_owned(),
            _lock: None,
        };
        let found = store.version()?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::Newer {
                path: path.to_owned(),
                found,
            });
        }
        if found < SCHEMA_VERSION {
            return Err(StoreError::Other {
                path: path.to_owned(),
                why: format!(
                    "schema version {found}: start a chitty-node on it once to bring it up to date"
                ),
            });
        }
        Ok(store)
    }

    /// The database's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// WAL (readers beside the writer; a crash never leaves a half-written transaction) and
    /// `synchronous = NORMAL` (a commit is in the WAL file when it returns, so `kill -9` loses
    /// nothing committed; a power cut may lose the last commits, never the database's
    /// consistency, and sync brings the events back).
    fn prepare(&mut self) -> Result<(), rusqlite::Error> {
        self.conn.busy_timeout(Duration::from_secs(1))?;
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(%mode, path = %self.path.display(), "the history database is not in WAL mode");
        }
        // A small page cache (512 KiB, not SQLite's 2 MiB): the store is written far more than
        // read, and a node's memory at rest is a target (docs/PERFORMANCE.md).
        self.conn.execute_batch(
            "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA trusted_schema = OFF;
             PRAGMA cache_size = -512;",
        )?;
        // No integrity check here: it reads every page (seconds for a large history, and memory).
        // A damaged page is found when it is read, and said then (`StoreError::Damaged`).
        Ok(())
    }

    fn version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| StoreError::of(&self.path, e))
    }

    /// Brings the schema up to [`SCHEMA_VERSION`], one migration per transaction.
    fn migrate(&mut self) -> Result<(), StoreError> {
        let found = self.version()?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::Newer {
                path: self.path.clone(),
                found,
            });
        }
        for (from, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
            let to = from as i64 + 1;
            let tx = self
                .conn
                .transaction()
                .map_err(|e| StoreError::of(&self.path, e))?;
            tx.execute_batch(sql)
                .and_then(|()| tx.pragma_update(None, "user_version", to))
                .and_then(|()| tx.commit())
                .map_err(|e| StoreError::of(&self.path, e))?;
            tracing::info!(path = %self.path.display(), version = to, "history database schema");
        }
        Ok(())
    }

    /// Writes `events` in one transaction; an event already stored is skipped. Returns how
    /// many were new. The messages among them are added to the full-text index in one
    /// statement at the end (rows are numbered upwards: the new ones are above the highest
    /// number before).
    pub fn append(&mut self, events: &[Stored]) -> Result<usize, StoreError> {
        let path = self.path.clone();
        let err = |e| StoreError::of(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        let mut new = 0;
        let before: i64 = tx
            .query_row("SELECT coalesce(max(id), 0) FROM events", [], |r| r.get(0))
            .map_err(err)?;
        {
            let mut ids: Vec<(&str, i64)> = Vec::new();
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO events (room, lamport, author, seq, text, envelope)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(err)?;
            for e in events {
                let room = match ids.iter().find(|(t, _)| *t == e.topic) {
                    Some((_, id)) => *id,
                    None => {
                        let id = room_id(&tx, &e.topic).map_err(err)?;
                        ids.push((&e.topic, id));
                        id
                    }
                };
                new += insert
                    .execute(params![
                        room,
                        int(e.lamport),
                        e.author,
                        int(e.seq),
                        e.text,
                        e.envelope
                    ])
                    .map_err(err)?;
            }
        }
        if new > 0 {
            tx.execute(
                "INSERT INTO texts (rowid, text)
                 SELECT id, text FROM events WHERE id > ?1 AND text IS NOT NULL",
                params![before],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(new)
    }

    /// How many events of the room are stored.
    pub fn count(&self, topic: &str) -> Result<u64, StoreError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM events JOIN rooms ON rooms.id = events.room
                 WHERE rooms.topic = ?1",
                params![topic],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(|e| StoreError::of(&self.path, e))
    }

    /// Deletes all but the newest `keep` events of the room; returns how many went.
    pub fn prune(&mut self, topic: &str, keep: usize) -> Result<usize, StoreError> {
        let path = self.path.clone();
        let err = |e| StoreError::of(&path, e);
        let room = room_id(&self.conn, topic).map_err(err)?;
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        self.conn
            .execute(
                "DELETE FROM events WHERE id IN (
                     SELECT id FROM events WHERE room = ?1
                     ORDER BY lamport DESC, author DESC, seq DESC LIMIT -1 OFFSET ?2)",
                params![room, keep],
            )
            .map_err(err)
    }

    /// The newest `limit` events of the room, oldest first, decoded and verified again (a row
    /// that no longer verifies is skipped, with a warning): what a node or a hub reads back
    /// at start.
    pub fn tail_events(&self, topic: &str, limit: usize) -> Result<Vec<SignedEvent>, StoreError> {
        self.before(topic, None, limit)
    }

    /// The newest `limit` events of the room before `below` in total order (all, without),
    /// oldest first, decoded and verified again.
    pub fn before(
        &self,
        topic: &str,
        below: Option<&OrderKey>,
        limit: usize,
    ) -> Result<Vec<SignedEvent>, StoreError> {
        Ok(verified(
            topic,
            &self.envelopes_before(topic, below, limit)?,
        ))
    }

    /// The envelopes of [`Store::before`], as stored.
    fn envelopes_before(
        &self,
        topic: &str,
        below: Option<&OrderKey>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (l, a, s) = key_params(below);
        self.query(
            "SELECT envelope FROM (
                 SELECT envelope, lamport, author, seq FROM events
                 JOIN rooms ON rooms.id = events.room
                 WHERE rooms.topic = ?1
                   AND (?2 IS NULL OR (lamport, author, seq) < (?2, ?3, ?4))
                 ORDER BY lamport DESC, author DESC, seq DESC LIMIT ?5)
             ORDER BY lamport, author, seq",
            params![topic, l, a, s, limit],
        )
    }

    /// What the store holds of each author's events in the room: runs of numbers, how many,
    /// the times of the first and last. One scan of an index (no envelope is read but two
    /// per author).
    pub fn holdings(&self, topic: &str) -> Result<Vec<Holding>, StoreError> {
        let err = |e| StoreError::of(&self.path, e);
        // Per author (its id bytes): runs of numbers, and how many.
        type Runs = (Vec<u8>, Vec<(u64, u64)>, usize);
        let mut out: Vec<Runs> = Vec::new();
        {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT author, seq FROM events JOIN rooms ON rooms.id = events.room
                     WHERE rooms.topic = ?1 ORDER BY author, seq",
                )
                .map_err(err)?;
            let mut rows = stmt.query(params![topic]).map_err(err)?;
            while let Some(row) = rows.next().map_err(err)? {
                let author: Vec<u8> = row.get(0).map_err(err)?;
                let seq = row.get::<_, i64>(1).map_err(err)? as u64;
                match out.last_mut() {
                    Some((a, runs, n)) if *a == author => {
                        *n += 1;
                        match runs.last_mut() {
                            Some(r) if r.1.checked_add(1) == Some(seq) => r.1 = seq,
                            _ => runs.push((seq, seq)),
                        }
                    }
                    _ => out.push((author, vec![(seq, seq)], 1)),
                }
            }
        }
        let mut holds = Vec::with_capacity(out.len());
        for (author, runs, count) in out {
            let Ok(peer) = libp2p::PeerId::from_bytes(&author) else {
                continue;
            };
            let first = runs.first().map_or(0, |r| r.0);
            let last = runs.last().map_or(0, |r| r.1);
            let time = |seq: u64| -> Result<Option<u64>, StoreError> {
                let found = self.query(
                    "SELECT envelope FROM events JOIN rooms ON rooms.id = events.room
                     WHERE rooms.topic = ?1 AND author = ?2 AND seq = ?3",
                    params![topic, author, int(seq)],
                )?;
                Ok(found
                    .first()
                    .and_then(|b| crate::wire::decode_event(b).ok())
                    .map(|e| e.event.time.unix_millis()))
            };
            // An envelope that no longer verifies leaves the span open (no bound from it).
            let (t0, t1) = (
                time(first)?.unwrap_or(0),
                time(last)?.unwrap_or(u64::MAX / 2),
            );
            holds.push(Holding {
                author: peer,
                runs,
                count,
                times: (t0.min(t1), t0.max(t1)),
            });
        }
        Ok(holds)
    }

    /// What a sync answer asks of events memory no longer holds (see [`ColdQuery`]): those
    /// numbered within its runs, after its `low` and before its `below`, oldest first, at most
    /// its `limit`, verified again.
    pub fn cold(&self, topic: &str, q: &ColdQuery) -> Result<Vec<SignedEvent>, StoreError> {
        let err = |e| StoreError::of(&self.path, e);
        let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
        let (ll, la, ls) = key_params(q.low.as_ref());
        let (bl, ba, bs) = key_params(q.below.as_ref());
        let mut found: Vec<(OrderKey, Vec<u8>)> = Vec::new();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT lamport, seq, envelope FROM events JOIN rooms ON rooms.id = events.room
                 WHERE rooms.topic = ?1 AND author = ?2 AND seq BETWEEN ?3 AND ?4
                   AND (?5 IS NULL OR (lamport, author, seq) > (?5, ?6, ?7))
                   AND (?8 IS NULL OR (lamport, author, seq) < (?8, ?9, ?10))
                 ORDER BY lamport, seq LIMIT ?11",
            )
            .map_err(err)?;
        for (author, a, b) in &q.runs {
            let author = author.to_bytes();
            let rows = stmt
                .query_map(
                    params![
                        topic,
                        author,
                        int(*a),
                        int(*b),
                        ll,
                        la,
                        ls,
                        bl,
                        ba,
                        bs,
                        limit
                    ],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)? as u64,
                            r.get::<_, i64>(1)? as u64,
                            r.get::<_, Vec<u8>>(2)?,
                        ))
                    },
                )
                .map_err(err)?;
            for row in rows {
                let (lamport, seq, envelope) = row.map_err(err)?;
                found.push((OrderKey::new(lamport, author.clone(), seq), envelope));
            }
            // Only the oldest `limit` of all runs are wanted: keep no more than that.
            if found.len() > 2 * q.limit {
                found.sort_by(|x, y| x.0.cmp(&y.0));
                found.truncate(q.limit);
            }
        }
        found.sort_by(|x, y| x.0.cmp(&y.0));
        found.truncate(q.limit);
        let envelopes: Vec<Vec<u8>> = found.into_iter().map(|(_, e)| e).collect();
        Ok(verified(topic, &envelopes))
    }

    /// The newest `limit` envelopes of the room, oldest first, as stored.
    pub fn tail(&self, topic: &str, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        self.envelopes_before(topic, None, limit)
    }

    /// Every envelope of the room in total order (`--export`).
    pub fn all(&self, topic: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        self.query(
            "SELECT envelope FROM events JOIN rooms ON rooms.id = events.room
             WHERE rooms.topic = ?1 ORDER BY lamport, author, seq",
            params![topic],
        )
    }

    /// The rooms stored, by topic.
    pub fn rooms(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT topic FROM rooms ORDER BY topic")
            .map_err(|e| StoreError::of(&self.path, e))?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .map_err(|e| StoreError::of(&self.path, e))?;
        rows.collect::<Result<Vec<String>, _>>()
            .map_err(|e| StoreError::of(&self.path, e))
    }

    /// Messages of the room containing every one of `words` (whole words, any case), newest
    /// first, at most `limit`.
    pub fn search(
        &self,
        topic: &str,
        words: &[String],
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        // Each word a quoted FTS5 string: nothing the user types is query syntax.
        let query = words
            .iter()
            .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" ");
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.query(
            "SELECT events.envelope FROM texts
             JOIN events ON events.id = texts.rowid
             JOIN rooms ON rooms.id = events.room
             WHERE texts MATCH ?1 AND rooms.topic = ?2
             ORDER BY events.lamport DESC, events.author DESC, events.seq DESC LIMIT ?3",
            params![query, topic, limit],
        )
    }

    fn query(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Vec<u8>>, StoreError> {
        let err = |e| StoreError::of(&self.path, e);
        let mut stmt = self.conn.prepare_cached(sql).map_err(err)?;
        let rows = stmt.query_map(params, |r| r.get(0)).map_err(err)?;
        rows.collect::<Result<Vec<Vec<u8>>, _>>().map_err(err)
    }
}

/// The id of the room `topic` (on a connection or in a transaction), made if new.
fn room_id(conn: &Connection, topic: &str) -> Result<i64, rusqlite::Error> {
    conn.execute(
        "INSERT INTO rooms (topic) VALUES (?1) ON CONFLICT (topic) DO NOTHING",
        params![topic],
    )?;
    conn.query_row(
        "SELECT id FROM rooms WHERE topic = ?1",
        params![topic],
        |r| r.get(0),
    )
}

/// A key as three parameters (all NULL for none).
fn key_params(key: Option<&OrderKey>) -> (Option<i64>, Option<Vec<u8>>, Option<i64>) {
    match key {
        Some(k) => (
            Some(int(k.lamport())),
            Some(k.author().to_vec()),
            Some(int(k.seq())),
        ),
        None => (None, None, None),
    }
}

/// The envelopes that still decode and verify; a warning counts those that do not.
fn verified(topic: &str, envelopes: &[Vec<u8>]) -> Vec<SignedEvent> {
    let events: Vec<SignedEvent> = envelopes
        .iter()
        .filter_map(|b| crate::wire::decode_event(b).ok())
        .collect();
    if events.len() < envelopes.len() {
        tracing::warn!(
            bad = envelopes.len() - events.len(),
            topic,
            "stored events that do not verify were skipped"
        );
    }
    events
}

/// The lock file beside the database.
fn lock_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

#[cfg(test)]
mod tests;
