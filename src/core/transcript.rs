//! The transcript: every event this node holds, deduplicated by `(author, seq)`, kept in total
//! order `(lamport, author, seq)` and bounded to the newest `cap` events. It also answers the
//! two questions of history sync: what do I have, and what does a peer lack.
//!
//! Two tiers when the owner keeps history on disk ([`Transcript::spill_to_store`]): only the
//! newest [`MEMORY_EVENTS`] events are held in memory; what is held of the rest (their numbers
//! per author, as runs) is kept, so that deduplication and the sync summary cover everything
//! stored, and what a peer lacks of them is read back by the caller ([`ColdQuery`]). The core
//! stays IO-less: the caller hands in what the store gave. Without a store, the memory tier is
//! the whole transcript, and the bound forgets what it drops.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use libp2p::PeerId;

use super::event::{Event, OrderKey, SignedEvent};
use super::sync::{AuthorHave, MAX_RANGES, PAGE_BYTES, PAGE_EVENTS, SyncRequest, SyncResponse};

/// Default number of events a transcript keeps.
pub const DEFAULT_HISTORY: usize = 10_000;
/// Events held in memory when the rest are on disk: the screen's tail and /history's newest
/// lines, and what a live peer is most likely to lack, at a few hundred KiB.
pub const MEMORY_EVENTS: usize = 1024;
/// Most runs kept per author (a liar numbering with gaps could make more): beyond, the oldest
/// two are merged, and the gap between them counts as held (its events are refused as known).
const MAX_HELD_RUNS: usize = 4 * MAX_RANGES;
/// Most lacking runs one answer asks the store for.
const MAX_COLD_RUNS: usize = 256;

/// Sequence numbers held of one author, as disjoint inclusive runs keyed by their first.
#[derive(Debug, Default, Clone)]
struct Runs {
    runs: BTreeMap<u64, u64>,
    count: usize,
}

impl Runs {
    fn contains(&self, seq: u64) -> bool {
        self.runs
            .range(..=seq)
            .next_back()
            .is_some_and(|(_, &last)| seq <= last)
    }

    /// Adds `seq` (not held yet).
    fn insert(&mut self, seq: u64) {
        let before = self
            .runs
            .range(..seq)
            .next_back()
            .map(|(&a, &b)| (a, b))
            .filter(|&(_, b)| b.checked_add(1) == Some(seq));
        let after = seq
            .checked_add(1)
            .and_then(|n| self.runs.get(&n).map(|&b| (n, b)));
        let (first, mut last) = match before {
            Some((a, _)) => (a, seq),
            None => (seq, seq),
        };
        if let Some((a, b)) = after {
            self.runs.remove(&a);
            last = b;
        }
        self.runs.insert(first, last);
        self.count += 1;
        if self.runs.len() > MAX_HELD_RUNS {
            self.merge_oldest();
        }
    }

    fn merge_oldest(&mut self) {
        let mut it = self.runs.iter();
        if let (Some((&a, _)), Some((&b, &end))) = (it.next(), it.next()) {
            self.runs.remove(&b);
            self.runs.insert(a, end);
        }
    }

    /// Removes `seq` (held).
    fn remove(&mut self, seq: u64) {
        let Some((&a, &b)) = self.runs.range(..=seq).next_back() else {
            return;
        };
        if seq > b {
            return;
        }
        self.runs.remove(&a);
        if a < seq {
            self.runs.insert(a, seq - 1);
        }
        if seq < b {
            self.runs.insert(seq + 1, b);
        }
        self.count = self.count.saturating_sub(1);
    }

    fn newest(&self) -> Option<u64> {
        self.runs.last_key_value().map(|(_, &b)| b)
    }

    fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.runs.iter().map(|(&a, &b)| (a, b))
    }
}

/// What one author's events held show: their numbers, and the earliest and latest `time` (ms)
/// they carried, the span that bounds how many of them sync may bring (section 8).
#[derive(Debug, Default, Clone)]
struct Held {
    seqs: Runs,
    first: u64,
    last: u64,
}

/// What the store holds of one author's events in a room: read at start, so that memory need
/// not hold them to know them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    /// The author.
    pub author: PeerId,
    /// Inclusive runs of its sequence numbers, ascending.
    pub runs: Vec<(u64, u64)>,
    /// How many events.
    pub count: usize,
    /// The `time` (Unix ms) of its earliest and latest events (by number).
    pub times: (u64, u64),
}

/// What a sync answer needs from the store: the events numbered within `runs` (per author),
/// after `low` and before `below` in total order, oldest first, at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColdQuery {
    /// The asker's low-water mark: nothing at or before it.
    pub low: Option<OrderKey>,
    /// The oldest event held in memory: the store answers for what comes before.
    pub below: Option<OrderKey>,
    /// Inclusive runs of sequence numbers the asker lacks, per author.
    pub runs: Vec<(PeerId, u64, u64)>,
    /// Most events wanted.
    pub limit: usize,
}

/// A bounded, ordered, deduplicated set of signed events.
#[derive(Debug)]
pub struct Transcript {
    cap: usize,
    /// Events held in memory: all of them, or the newest [`MEMORY_EVENTS`] when the rest are
    /// on disk.
    memory: usize,
    events: BTreeMap<OrderKey, SignedEvent>,
    held: HashMap<PeerId, Held>,
    /// The newest key the bound dropped: anything at or before it is too old to keep, so it
    /// counts as known (an evicted event arriving again is not shown twice). One key, not one
    /// per author, so no peer can make it grow.
    watermark: Option<OrderKey>,
}

impl Transcript {
    /// An empty transcript keeping at most `cap` events (at least 1), all in memory.
    pub fn new(cap: usize) -> Self {
        let cap = cap.max(1);
        Self {
            cap,
            memory: cap,
            events: BTreeMap::new(),
            held: HashMap::new(),
            watermark: None,
        }
    }

    /// From now on, the owner stores every event on disk (and prunes it to the bound there):
    /// memory holds the newest [`MEMORY_EVENTS`], and what it lets go stays held, on disk.
    pub fn spill_to_store(&mut self) {
        self.memory = self.cap.min(MEMORY_EVENTS);
        self.trim();
    }

    /// Adds what the store holds of an author (a superset of what was read back into memory).
    pub fn hold_stored(&mut self, holding: &Holding) {
        let Holding {
            author,
            ref runs,
            count,
            times,
        } = *holding;
        let held = self.held.entry(author).or_insert_with(|| Held {
            seqs: Runs::default(),
            first: times.0,
            last: times.1,
        });
        held.first = held.first.min(times.0);
        held.last = held.last.max(times.1);
        let mut all = std::mem::take(&mut held.seqs.runs);
        for &(a, b) in runs.iter() {
            // A run already listed from `a` keeps the longer end.
            let end = all.get(&a).map_or(b, |&e| e.max(b));
            all.insert(a, end);
        }
        held.seqs.runs = coalesce(&all);
        held.seqs.count = held.seqs.count.max(count);
        while held.seqs.runs.len() > MAX_HELD_RUNS {
            held.seqs.merge_oldest();
        }
    }

    /// Whether `event` is already known, or too old to keep.
    pub fn is_known(&self, event: &Event) -> bool {
        self.knows(&event.author, event.seq, event.lamport)
    }

    /// Whether the event `(author, seq)` stamped `lamport` is known (see [`Transcript::is_known`]).
    pub fn knows(&self, author: &PeerId, seq: u64, lamport: u64) -> bool {
        self.held.get(author).is_some_and(|h| h.seqs.contains(seq))
            || self
                .watermark
                .as_ref()
                .is_some_and(|w| OrderKey::new(lamport, author.to_bytes(), seq) <= *w)
    }

    /// Stores `event`; returns false (and stores nothing) when it is already known.
    /// When memory is full, the oldest event in total order leaves it: forgotten, or, with a
    /// store, still held there.
    pub fn insert(&mut self, event: SignedEvent) -> bool {
        if self.is_known(&event.event) {
            return false;
        }
        let (author, seq) = (event.event.author, event.event.seq);
        let t = event.event.time.unix_millis();
        let held = self.held.entry(author).or_insert_with(|| Held {
            seqs: Runs::default(),
            first: t,
            last: t,
        });
        held.seqs.insert(seq);
        held.first = held.first.min(t);
        held.last = held.last.max(t);
        self.events.insert(event.event.order_key(), event);
        self.trim();
        true
    }

    fn trim(&mut self) {
        let spilling = self.memory < self.cap;
        while self.events.len() > self.memory {
            let Some((key, old)) = self.events.pop_first() else {
                break;
            };
            if spilling {
                // Still held: on disk, pruned to the bound there.
                continue;
            }
            if let Some(h) = self.held.get_mut(&old.event.author) {
                h.seqs.remove(old.event.seq);
                if h.seqs.count == 0 {
                    self.held.remove(&old.event.author);
                }
            }
            self.watermark = Some(key);
        }
    }

    /// How many events of `author` are held, and the earliest and latest `time` (Unix ms)
    /// those it ever held carried.
    pub fn author_span(&self, author: &PeerId) -> Option<(usize, u64, u64)> {
        let h = self.held.get(author)?;
        Some((h.seqs.count, h.first, h.last))
    }

    /// The highest sequence number of `author` held.
    pub fn newest_seq(&self, author: &PeerId) -> Option<u64> {
        self.held.get(author).and_then(|h| h.seqs.newest())
    }

    /// The events held in memory, in total order.
    pub fn iter(&self) -> impl Iterator<Item = &SignedEvent> {
        self.events.values()
    }

    /// How many events are held in memory.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether no event is held in memory.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The oldest event in memory, when older ones are held on disk only: the store has what
    /// comes before it.
    pub fn cold_below(&self) -> Option<Option<&OrderKey>> {
        // Held in all (the runs count what memory let go, and what the store holds besides)
        // beyond what memory has.
        let held: usize = self.held.values().map(|h| h.seqs.count).sum();
        (held > self.events.len()).then(|| self.events.keys().next())
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
    /// room. `cold` reads what memory no longer holds from the store (see [`ColdQuery`]).
    pub fn answer(
        &self,
        topic: &str,
        req: &SyncRequest,
        cold: impl FnOnce(&ColdQuery) -> Vec<SignedEvent>,
    ) -> SyncResponse {
        if req.topic != topic {
            return SyncResponse {
                events: Vec::new(),
                more: false,
            };
        }
        let (events, more) = self.missing_with(req.low.as_ref(), &req.have, cold);
        SyncResponse { events, more }
    }

    /// What this transcript holds, per author, as runs of sequence numbers: at most
    /// [`MAX_RANGES`] runs, the newest kept apart and the oldest merged into the first (a
    /// low-water mark: the asker gives up whatever the gaps between its oldest runs might hold,
    /// which are, in practice, the gaps between two runs of a process that restarted, holding
    /// nothing). So every newer event is covered and never sent twice.
    pub fn summary(&self) -> Vec<AuthorHave> {
        let mut authors: Vec<&PeerId> = self.held.keys().collect();
        authors.sort();
        authors
            .into_iter()
            .map(|author| {
                let mut ranges: Vec<(u64, u64)> = self.held[author].seqs.iter().collect();
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
    /// page at most; and whether more are missing beyond the page. Memory only.
    #[cfg(test)]
    pub fn missing(&self, low: Option<&OrderKey>, have: &[AuthorHave]) -> (Vec<SignedEvent>, bool) {
        self.missing_with(low, have, |_| Vec::new())
    }

    /// [`Transcript::missing`], asking `cold` for what only the store holds.
    pub fn missing_with(
        &self,
        low: Option<&OrderKey>,
        have: &[AuthorHave],
        cold: impl FnOnce(&ColdQuery) -> Vec<SignedEvent>,
    ) -> (Vec<SignedEvent>, bool) {
        let index: HashMap<&PeerId, &AuthorHave> = have.iter().map(|h| (&h.author, h)).collect();
        let mut page = Vec::new();
        let mut bytes = 0;
        let mut cold_full = false;
        if let Some(query) = self.cold_query(low, &index) {
            let found = cold(&query);
            cold_full = found.len() >= query.limit;
            for e in found {
                if page.len() >= PAGE_EVENTS || bytes + e.bytes.len() > PAGE_BYTES {
                    return (page, true);
                }
                bytes += e.bytes.len();
                page.push(e);
            }
        }
        let start = match low {
            Some(k) => Bound::Excluded(k.clone()),
            None => Bound::Unbounded,
        };
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
        (page, cold_full)
    }

    /// What to ask the store: the runs the asker lacks of events older than memory holds, if
    /// any (their stamps are not known here: the store filters by `low`).
    fn cold_query(
        &self,
        low: Option<&OrderKey>,
        have: &HashMap<&PeerId, &AuthorHave>,
    ) -> Option<ColdQuery> {
        let below = self.cold_below()?;
        if let (Some(low), Some(below)) = (low, below)
            && low >= below
        {
            return None;
        }
        // Per author, the lowest number memory holds: only lacking numbers below it can be
        // on disk only.
        let mut in_memory: HashMap<&PeerId, u64> = HashMap::new();
        for e in self.events.values() {
            let m = in_memory.entry(&e.event.author).or_insert(e.event.seq);
            *m = (*m).min(e.event.seq);
        }
        let mut runs = Vec::new();
        let mut authors: Vec<&PeerId> = self.held.keys().collect();
        authors.sort();
        'authors: for author in authors {
            let limit = in_memory.get(author).copied();
            let theirs = have.get(author).map_or(&[][..], |h| &h.ranges[..]);
            for (a, b) in self.held[author].seqs.iter() {
                let b = match limit {
                    Some(m) if a >= m => break,
                    Some(m) => b.min(m - 1),
                    None => b,
                };
                for (x, y) in lacking(a, b, theirs) {
                    if runs.len() >= MAX_COLD_RUNS {
                        break 'authors;
                    }
                    runs.push((*author, x, y));
                }
            }
        }
        (!runs.is_empty()).then(|| ColdQuery {
            low: low.cloned(),
            below: below.cloned(),
            runs,
            limit: PAGE_EVENTS,
        })
    }
}

/// Adjacent runs joined into one.
fn coalesce(runs: &BTreeMap<u64, u64>) -> BTreeMap<u64, u64> {
    let mut out: BTreeMap<u64, u64> = BTreeMap::new();
    let mut cur: Option<(u64, u64)> = None;
    for (&a, &b) in runs {
        cur = match cur {
            Some((x, y)) if a.saturating_sub(1) <= y => Some((x, y.max(b))),
            Some(r) => {
                out.insert(r.0, r.1);
                Some((a, b))
            }
            None => Some((a, b)),
        };
    }
    if let Some((x, y)) = cur {
        out.insert(x, y);
    }
    out
}

/// The parts of `a..=b` that `have` (sorted, disjoint runs) does not cover.
fn lacking(a: u64, b: u64, have: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut from = a;
    for &(x, y) in have {
        if y < from {
            continue;
        }
        if x > b {
            break;
        }
        if x > from {
            out.push((from, x - 1));
        }
        match y.checked_add(1) {
            Some(n) => from = n,
            None => return out,
        }
        if from > b {
            return out;
        }
    }
    out.push((from, b));
    out
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

    /// What the store would answer: the events of `disk` within the query's runs, after its
    /// `low`, before its `below`, oldest first, at most its limit.
    fn store_answer(disk: &[SignedEvent], q: &ColdQuery) -> Vec<SignedEvent> {
        let mut found: Vec<SignedEvent> = disk
            .iter()
            .filter(|e| {
                let k = e.event.order_key();
                q.runs
                    .iter()
                    .any(|(a, x, y)| *a == e.event.author && (*x..=*y).contains(&e.event.seq))
                    && q.low.as_ref().is_none_or(|l| k > *l)
                    && q.below.as_ref().is_none_or(|b| k < *b)
            })
            .cloned()
            .collect();
        found.sort_by_key(|e| e.event.order_key());
        found.truncate(q.limit);
        found
    }

    #[test]
    fn runs_insert_and_remove_keep_disjoint_runs_and_a_count() {
        let mut r = Runs::default();
        for s in [5, 1, 3, 2, 7, 6] {
            r.insert(s);
        }
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![(1, 3), (5, 7)]);
        assert_eq!(r.count, 6);
        assert!(r.contains(2) && r.contains(7) && !r.contains(4) && !r.contains(8));
        r.insert(4);
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![(1, 7)]);
        r.remove(1);
        r.remove(4);
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![(2, 3), (5, 7)]);
        assert_eq!((r.count, r.newest()), (5, Some(7)));
        assert_eq!(
            lacking(1, 10, &[(2, 3), (5, 7)]),
            vec![(1, 1), (4, 4), (8, 10)]
        );
        assert_eq!(lacking(2, 3, &[(1, 5)]), vec![]);
    }

    /// With a store, memory holds only the newest events, yet everything held is known, listed
    /// in the summary and served: what memory let go is asked of the store, the oldest first,
    /// and a peer lacking only some of it gets exactly that.
    #[test]
    fn a_spilled_transcript_knows_and_serves_what_only_the_store_holds() {
        let (ka, kb) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let mut t = Transcript::new(100_000);
        t.spill_to_store();
        let mut disk = Vec::new();
        let mut seqs = [0u64; 2];
        for i in 1..=3000u64 {
            let who = usize::from(i % 3 == 0);
            seqs[who] += 1;
            let e = ev([&ka, &kb][who], seqs[who], i);
            disk.push(e.clone());
            assert!(t.insert(e));
        }
        assert_eq!(t.len(), MEMORY_EVENTS);
        assert!(t.cold_below().is_some());
        assert!(
            t.is_known(&disk[0].event),
            "what memory let go is still known"
        );
        assert!(!t.insert(disk[10].clone()));
        let total: usize = t.summary().iter().map(|h| h.ranges.len()).sum();
        assert!(total > 0);
        let held: usize = [&ka, &kb]
            .iter()
            .map(|k| t.author_span(&k.public().to_peer_id()).unwrap().0)
            .sum();
        assert_eq!(held, 3000);

        // A newcomer pages through all of it, in order, each event once.
        let mut fresh = Transcript::new(100_000);
        loop {
            let (page, more) = t.missing_with(fresh.watermark(), &fresh.summary(), |q| {
                store_answer(&disk, q)
            });
            for e in page {
                assert!(fresh.insert(e));
            }
            if !more {
                break;
            }
        }
        assert_eq!(fresh.len(), 3000);
        let order: Vec<u64> = fresh.iter().map(|e| e.event.lamport).collect();
        assert_eq!(order, (1..=3000).collect::<Vec<_>>());

        // A peer lacking only a few old events gets exactly those.
        let mut gappy = Transcript::new(100_000);
        let gap = |e: &SignedEvent| (100..110).contains(&e.event.lamport);
        for e in disk.iter().filter(|e| !gap(e)) {
            gappy.insert(e.clone());
        }
        let (page, more) = t.missing_with(None, &gappy.summary(), |q| store_answer(&disk, q));
        let stamps: Vec<u64> = page.iter().map(|e| e.event.lamport).collect();
        assert_eq!((stamps, more), ((100..110).collect(), false));

        // A peer holding everything costs no read of the store.
        let (page, more) = t.missing_with(None, &fresh.summary(), |_| {
            panic!("the store is not asked when the peer lacks nothing")
        });
        assert_eq!((page.len(), more), (0, false));
    }

    /// At start, memory gets the store's newest events and the store's holdings: what is
    /// held only there is known and served.
    #[test]
    fn holdings_read_back_make_the_stored_rest_known() {
        let k = Keypair::generate_ed25519();
        let disk: Vec<SignedEvent> = (1..=2000u64).map(|i| ev(&k, i, i)).collect();
        let mut t = Transcript::new(100_000);
        t.spill_to_store();
        for e in &disk[disk.len() - MEMORY_EVENTS..] {
            t.insert(e.clone());
        }
        assert!(
            t.cold_below().is_none(),
            "nothing cold yet: memory has all it knows"
        );
        t.hold_stored(&Holding {
            author: k.public().to_peer_id(),
            runs: vec![(1, 2000)],
            count: 2000,
            times: (0, 0),
        });
        assert!(t.cold_below().is_some());
        assert!(t.is_known(&disk[0].event));
        assert_eq!(t.summary()[0].ranges, vec![(1, 2000)]);
        assert_eq!(t.author_span(&k.public().to_peer_id()).unwrap().0, 2000);
        let (page, more) = t.missing_with(None, &[], |q| store_answer(&disk, q));
        assert_eq!(page.len(), PAGE_EVENTS);
        assert!(more);
        assert_eq!(page[0].event.seq, 1);
    }
}
