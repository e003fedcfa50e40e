//! The transcript: every event this node knows, deduplicated by `(author, seq)`, kept in total
//! order `(lamport, author, seq)` and bounded to the newest `cap` events. It also answers the
//! two questions of history sync: what do I have, and what does a peer lack.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use libp2p::PeerId;

use super::event::{Event, OrderKey, SignedEvent};
use super::sync::{AuthorHave, MAX_RANGES, PAGE_BYTES, PAGE_EVENTS, SyncRequest, SyncResponse};

/// Default number of events a transcript keeps.
pub const DEFAULT_HISTORY: usize = 10_000;

/// A bounded, ordered, deduplicated set of signed events.
#[derive(Debug)]
pub struct Transcript {
    cap: usize,
    events: BTreeMap<OrderKey, SignedEvent>,
    by_author: HashMap<PeerId, BTreeSet<u64>>,
    /// Per author held, the earliest and latest `time` (ms) its events carried: the span of
    /// time its events show, which bounds how many of them sync may bring (section 8).
    times: HashMap<PeerId, (u64, u64)>,
    /// The newest key the bound dropped: anything at or before it is too old to keep, so it
    /// counts as known (an evicted event arriving again is not shown twice). One key, not one
    /// per author, so no peer can make it grow.
    watermark: Option<OrderKey>,
}

impl Transcript {
    /// An empty transcript keeping at most `cap` events (at least 1).
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            events: BTreeMap::new(),
            by_author: HashMap::new(),
            times: HashMap::new(),
            watermark: None,
        }
    }

    /// Whether `event` is already known, or too old to keep.
    pub fn is_known(&self, event: &Event) -> bool {
        self.knows(&event.author, event.seq, event.lamport)
    }

    /// Whether the event `(author, seq)` stamped `lamport` is known (see [`Transcript::is_known`]).
    pub fn knows(&self, author: &PeerId, seq: u64, lamport: u64) -> bool {
        self.by_author.get(author).is_some_and(|s| s.contains(&seq))
            || self
                .watermark
                .as_ref()
                .is_some_and(|w| OrderKey::new(lamport, author.to_bytes(), seq) <= *w)
    }

    /// Stores `event`; returns false (and stores nothing) when it is already known.
    /// When the transcript is full, the oldest event in total order is dropped.
    pub fn insert(&mut self, event: SignedEvent) -> bool {
        if self.is_known(&event.event) {
            return false;
        }
        let (author, seq) = (event.event.author, event.event.seq);
        self.by_author.entry(author).or_default().insert(seq);
        let t = event.event.time.unix_millis();
        let span = self.times.entry(author).or_insert((t, t));
        *span = (span.0.min(t), span.1.max(t));
        self.events.insert(event.event.order_key(), event);
        while self.events.len() > self.cap {
            if let Some((key, old)) = self.events.pop_first() {
                if let Some(set) = self.by_author.get_mut(&old.event.author) {
                    set.remove(&old.event.seq);
                    if set.is_empty() {
                        self.by_author.remove(&old.event.author);
                        self.times.remove(&old.event.author);
                    }
                }
                self.watermark = Some(key);
            }
        }
        true
    }

    /// How many events of `author` are kept, and the earliest and latest `time` (Unix ms)
    /// those it ever kept carried.
    pub fn author_span(&self, author: &PeerId) -> Option<(usize, u64, u64)> {
        let count = self.by_author.get(author)?.len();
        let (first, last) = self.times.get(author).copied()?;
        Some((count, first, last))
    }

    /// The highest sequence number of `author` kept.
    pub fn newest_seq(&self, author: &PeerId) -> Option<u64> {
        self.by_author.get(author).and_then(|s| s.last().copied())
    }

    /// The events in total order.
    pub fn iter(&self) -> impl Iterator<Item = &SignedEvent> {
        self.events.values()
    }

    /// How many events are kept.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether no event is kept.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The key below which nothing is kept any more, if the bound was ever reached.
    pub fn watermark(&self) -> Option<&OrderKey> {
        self.watermark.as_ref()
    }

    /// "Here is what I have" for room `topic`: the request a node or hub sends to catch up.
    pub fn sync_request(&self, topic: &str) -> SyncRequest {
        SyncRequest {
            topic: topic.to_owned(),
            low: self.watermark().cloned(),
            have: self.summary(),
        }
    }

    /// The answer to a peer's request: the oldest page of what it lacks, or nothing for another
    /// room.
    pub fn answer(&self, topic: &str, req: &SyncRequest) -> SyncResponse {
        if req.topic != topic {
            return SyncResponse {
                events: Vec::new(),
                more: false,
            };
        }
        let (events, more) = self.missing(req.low.as_ref(), &req.have);
        SyncResponse { events, more }
    }

    /// What this transcript holds, per author, as runs of sequence numbers: at most
    /// [`MAX_RANGES`] runs, the newest kept apart and the oldest merged into the first (a
    /// low-water mark: the asker gives up whatever the gaps between its oldest runs might hold,
    /// which are, in practice, the gaps between two runs of a process that restarted, holding
    /// nothing). So every newer event is covered and never sent twice.
    pub fn summary(&self) -> Vec<AuthorHave> {
        let mut authors: Vec<&PeerId> = self.by_author.keys().collect();
        authors.sort();
        authors
            .into_iter()
            .map(|author| {
                let mut ranges: Vec<(u64, u64)> = Vec::new();
                for &s in &self.by_author[author] {
                    match ranges.last_mut() {
                        Some(r) if r.1.checked_add(1) == Some(s) => r.1 = s,
                        _ => ranges.push((s, s)),
                    }
                }
                if ranges.len() > MAX_RANGES {
                    // The oldest runs, up to the one that leaves MAX_RANGES in all, become one.
                    let oldest = ranges[0].0;
                    ranges.drain(..ranges.len() - MAX_RANGES);
                    ranges[0].0 = oldest;
                }
                AuthorHave {
                    author: *author,
                    ranges,
                }
            })
            .collect()
    }

    /// The oldest events (in total order, after `low`) that a peer holding `have` lacks, one
    /// page at most; and whether more are missing beyond the page.
    pub fn missing(&self, low: Option<&OrderKey>, have: &[AuthorHave]) -> (Vec<SignedEvent>, bool) {
        let index: HashMap<&PeerId, &AuthorHave> = have.iter().map(|h| (&h.author, h)).collect();
        let start = match low {
            Some(k) => Bound::Excluded(k.clone()),
            None => Bound::Unbounded,
        };
        let mut page = Vec::new();
        let mut bytes = 0;
        for e in self.events.range((start, Bound::Unbounded)).map(|(_, e)| e) {
            let known = index
                .get(&e.event.author)
                .is_some_and(|h| h.has(e.event.seq));
            if known {
                continue;
            }
            if page.len() >= PAGE_EVENTS || bytes + e.bytes.len() > PAGE_BYTES {
                return (page, true);
            }
            bytes += e.bytes.len();
            page.push(e.clone());
        }
        (page, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::event::{Body, Event, Username};
    use crate::core::sign::Signer;
    use libp2p::identity::Keypair;

    fn ev(key: &Keypair, seq: u64, lamport: u64) -> SignedEvent {
        let e = Event {
            author: key.public().to_peer_id(),
            seq,
            lamport,
            time: crate::core::time::WallTime::EPOCH,
            user: Username::new("u").unwrap(),
            body: Body::Join,
        };
        key.sign_event(e, "chitty-chat")
    }

    #[test]
    fn orders_by_stamp_then_author_and_drops_duplicates() {
        let (ka, kb) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let (a, b) = (ka.public().to_peer_id(), kb.public().to_peer_id());
        let ((lo, klo), (hi, khi)) = if a.to_bytes() < b.to_bytes() {
            ((a, &ka), (b, &kb))
        } else {
            ((b, &kb), (a, &ka))
        };
        let mut t = Transcript::new(10);
        assert!(t.insert(ev(khi, 1, 5)));
        assert!(t.insert(ev(klo, 1, 5)));
        assert!(t.insert(ev(klo, 2, 3)));
        assert!(!t.insert(ev(klo, 2, 3)));
        let order: Vec<_> = t
            .iter()
            .map(|e| (e.event.lamport, e.event.author))
            .collect();
        assert_eq!(order, vec![(3, lo), (5, lo), (5, hi)]);
    }

    #[test]
    fn keeps_only_the_newest_cap_events() {
        let k = Keypair::generate_ed25519();
        let a = k.public().to_peer_id();
        let mut t = Transcript::new(2);
        for i in 1..=5 {
            t.insert(ev(&k, i, i));
        }
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.iter().map(|e| e.event.lamport).collect::<Vec<_>>(),
            vec![4, 5]
        );
        assert!(
            t.is_known(&ev(&k, 1, 1).event),
            "an evicted event still counts as known"
        );
        assert!(!t.insert(ev(&k, 2, 2)));
        assert_eq!(t.summary()[0].ranges, vec![(4, 5)]);
        let _ = a;
    }

    #[test]
    fn summary_lists_the_contiguous_prefix_and_the_extras() {
        let k = Keypair::generate_ed25519();
        let mut t = Transcript::new(100);
        for s in [1, 2, 3, 5, 7] {
            t.insert(ev(&k, s, s));
        }
        let sum = t.summary();
        assert_eq!(sum[0].ranges, vec![(1, 3), (5, 5), (7, 7)]);
        assert!(sum[0].has(2) && sum[0].has(5) && !sum[0].has(4) && !sum[0].has(8));
    }

    /// An author with more runs than a summary lists (a process restarted 300 times, one event
    /// a run): the summary stays bounded and covers every newer event, so nothing is sent again
    /// (the oldest runs were merged: the gaps between them held nothing).
    #[test]
    fn a_summary_of_more_runs_than_allowed_keeps_the_newest_and_merges_the_oldest() {
        let k = Keypair::generate_ed25519();
        let mut t = Transcript::new(10_000);
        for run in 0..300u64 {
            t.insert(ev(&k, run * 1000 + 1, run + 1));
        }
        let sum = t.summary();
        assert_eq!(sum[0].ranges.len(), MAX_RANGES);
        assert_eq!(sum[0].ranges[0], (1, 44 * 1000 + 1));
        assert_eq!(sum[0].ranges[MAX_RANGES - 1], (299_001, 299_001));
        assert_eq!(t.missing(None, &sum), (vec![], false), "nothing sent again");
    }

    #[test]
    fn missing_sends_what_the_peer_lacks_in_order_and_in_pages() {
        let k = Keypair::generate_ed25519();
        let mut full = Transcript::new(10_000);
        for s in 1..=(PAGE_EVENTS as u64 + 10) {
            full.insert(ev(&k, s, s));
        }
        let mut partial = Transcript::new(10_000);
        for s in [1, 2, 4] {
            partial.insert(ev(&k, s, s));
        }
        // A late joiner holding only a late run, far beyond what ranges could list one by one.
        let mut late = Transcript::new(10_000);
        for s in 100..=(PAGE_EVENTS as u64 + 10) {
            late.insert(ev(&k, s, s));
        }
        let (page, more) = full.missing(late.watermark(), &late.summary());
        assert_eq!((page.len(), more), (99, false), "only 1..=99 are missing");
        let (page, more) = full.missing(partial.watermark(), &partial.summary());
        assert!(more);
        assert_eq!(page.len(), PAGE_EVENTS);
        assert_eq!(page[0].event.seq, 3);
        assert_eq!(page[1].event.seq, 5);
        for e in page {
            partial.insert(e);
        }
        let (rest, more) = full.missing(partial.watermark(), &partial.summary());
        assert!(!more);
        for e in rest {
            partial.insert(e);
        }
        assert_eq!(
            full.missing(partial.watermark(), &partial.summary()),
            (vec![], false)
        );
        assert_eq!(partial.len(), full.len());
    }
}
