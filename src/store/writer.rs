//! The store's thread: it owns the open [`Store`], writes what the actor hands it in batches
//! (one transaction per [`WRITE_BATCH_DELAY`] at most), prunes each room to its bound, and
//! answers searches. The actor never waits for it: handing events over is a `try_send`.

use std::collections::HashMap;
use std::sync::mpsc::{self, SyncSender, TryRecvError, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

use super::db::{Store, StoreError, Stored};
use crate::core::event::SignedEvent;

/// How long the thread gathers events before it writes them in one transaction: an event taken
/// is on disk within about this (plus the commit), and a busy room costs one commit per period.
pub const WRITE_BATCH_DELAY: Duration = Duration::from_millis(100);
/// Batches waiting for the thread; beyond, a batch is not stored (a peer gives it back after
/// the next start) and a warning says so.
const QUEUE: usize = 1024;
/// A room is pruned back to its bound once it holds this many more (a tenth, at least 64).
fn slack(keep: usize) -> usize {
    (keep / 10).max(64)
}

/// A search's answer: the envelopes found, newest first, or why there are none.
pub type Found = Result<Vec<Vec<u8>>, String>;

enum Job {
    Append(Vec<Stored>),
    Search {
        topic: String,
        words: Vec<String>,
        limit: usize,
        reply: oneshot::Sender<Found>,
    },
}

/// The handle of the store's thread. Dropping it (or [`Writer::close`]) writes what is left
/// and waits for the thread to end.
#[derive(Debug)]
pub struct Writer {
    tx: Option<SyncSender<Job>>,
    thread: Option<JoinHandle<()>>,
    /// Whether the warning about a full queue was given.
    warned_full: bool,
}

impl Writer {
    /// Starts the thread on `store`, keeping at most `keep` events per room.
    pub fn spawn(store: Store, keep: usize) -> Writer {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("store".into())
            .spawn(move || run(store, keep, rx))
            .ok();
        if thread.is_none() {
            tracing::warn!("could not start the history database's thread; nothing is stored");
        }
        Writer {
            tx: thread.is_some().then_some(tx),
            thread,
            warned_full: false,
        }
    }

    /// Hands `events` over to be written.
    pub fn append(&mut self, events: &[SignedEvent]) {
        let Some(tx) = &self.tx else { return };
        if events.is_empty() {
            return;
        }
        let batch = events.iter().map(Stored::of).collect();
        match tx.try_send(Job::Append(batch)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                if !self.warned_full {
                    self.warned_full = true;
                    tracing::warn!(
                        "the history database falls behind; some events are not stored (peers give them back after a restart)"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => self.tx = None,
        }
    }

    /// Asks for the messages of `topic` containing all of `words`, newest first, at most
    /// `limit`; the answer comes on the returned channel.
    pub fn search(
        &mut self,
        topic: &str,
        words: Vec<String>,
        limit: usize,
    ) -> oneshot::Receiver<Found> {
        let (reply, answer) = oneshot::channel();
        let job = Job::Search {
            topic: topic.to_owned(),
            words,
            limit,
            reply,
        };
        let refused = match &self.tx {
            Some(tx) => match tx.try_send(job) {
                Ok(()) => None,
                Err(TrySendError::Full(Job::Search { reply, .. })) => {
                    Some((reply, "the history database is busy; try again in a moment"))
                }
                Err(TrySendError::Disconnected(Job::Search { reply, .. })) => {
                    Some((reply, "the history database is closed"))
                }
                Err(_) => None,
            },
            None => match job {
                Job::Search { reply, .. } => Some((reply, "the history database is closed")),
                Job::Append(_) => None,
            },
        };
        if let Some((reply, why)) = refused {
            let _ = reply.send(Err(why.to_owned()));
        }
        answer
    }

    /// Writes what is left and waits for the thread to end.
    pub fn close(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the history database's thread panicked");
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.shut();
    }
}

/// The thread: batches, writes, prunes, answers. It runs at a lower priority (nice 10) than
/// the rest of the node, so that on a busy machine writing history yields to delivering it.
fn run(mut store: Store, keep: usize, rx: mpsc::Receiver<Job>) {
    lower_priority();
    let mut counts: HashMap<String, u64> = HashMap::new();
    let mut failing = false;
    while let Ok(job) = rx.recv() {
        let mut batch = Vec::new();
        let mut searches = Vec::new();
        let mut closed = false;
        let mut take = |job: Job| match job {
            Job::Append(b) => batch.extend(b),
            s => searches.push(s),
        };
        let appending = matches!(job, Job::Append(_));
        take(job);
        if appending {
            // Asleep, not waiting on the channel: what the actor hands over meanwhile costs
            // it no wake-up of this thread (one per event, on a busy machine, cost more than
            // the writing). Then everything that came is taken at once.
            std::thread::sleep(WRITE_BATCH_DELAY);
            loop {
                match rx.try_recv() {
                    Ok(job) => take(job),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
        }
        if !batch.is_empty() {
            match write(&mut store, &batch, keep, &mut counts) {
                Ok(()) => {
                    if failing {
                        failing = false;
                        tracing::warn!(path = %store.path().display(), "history is stored again");
                    }
                }
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(
                        "{e}; history is not stored until this is fixed (peers give it back after a restart)"
                    );
                }
                Err(e) => tracing::debug!(%e, "history not stored"),
            }
        }
        for s in searches {
            if let Job::Search {
                topic,
                words,
                limit,
                reply,
            } = s
            {
                let found = store
                    .search(&topic, &words, limit)
                    .map_err(|e| e.to_string());
                let _ = reply.send(found);
            }
        }
        if closed {
            break;
        }
    }
}

/// Writes one batch, then prunes any room grown past its bound.
fn write(
    store: &mut Store,
    batch: &[Stored],
    keep: usize,
    counts: &mut HashMap<String, u64>,
) -> Result<(), StoreError> {
    store.append(batch)?;
    let mut topics: Vec<&str> = batch.iter().map(|s| s.topic.as_str()).collect();
    topics.sort_unstable();
    topics.dedup();
    for topic in topics {
        // Counted once per room and run (a count is a scan), then kept up to date roughly:
        // events already stored count again, which only prunes a little early.
        let n = match counts.get(topic) {
            Some(n) => *n + batch.iter().filter(|s| s.topic == topic).count() as u64,
            None => store.count(topic)?,
        };
        let n = if n > (keep + slack(keep)) as u64 {
            let gone = store.prune(topic, keep)?;
            tracing::debug!(topic, gone, "history pruned");
            store.count(topic)?
        } else {
            n
        };
        counts.insert(topic.to_owned(), n);
    }
    Ok(())
}

/// Lowers this thread's scheduling priority (Linux: `setpriority` on a thread id applies to
/// that thread alone). Failing is harmless: the thread then runs at the node's priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid and setpriority have no memory-safety preconditions.
        let rc = unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10)
        };
        if rc != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "store thread keeps the node's priority");
        }
    }
}
